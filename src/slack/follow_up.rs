//! Step 5 on Slack: when a follow-up after a match is due, the app starts
//! the follow-up dialog in its owner's DM (its first question offers
//! answering now, not this time, or no more follow-ups, as buttons), and
//! an offered one left open gets one reminder. What is due is decided by
//! [`crate::followup::pass`] from the store's rows (shared with Discord),
//! so a restart or a second instance neither repeats nor loses an offer;
//! this loop only sends. The dialog then runs like a consultation
//! (`owner`), and its answers go to the step-5 hub through the outbox, on
//! whatever platform that hub is.

use super::Bot;
use crate::domain::ids::Transport;
use crate::followup;
use crate::store::FollowUp;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often due follow-ups are looked for. They are due by the day, so a
/// minute is prompt enough and costs one small query.
const EVERY: Duration = Duration::from_secs(60);

/// Runs until `stop` turns true; the first pass runs at once (a restart
/// sends what came due while the app was stopped).
pub(crate) async fn run(bot: Arc<Bot>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        if let Err(e) = bot.follow_ups_once().await {
            tracing::error!(error = %e, "follow-ups could not be checked; trying again later");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            // A dropped sender (the app failed to start) ends the loop too.
            r = stop.changed() => if r.is_err() { break },
        }
    }
}

impl Bot {
    /// One pass for Slack owners.
    pub(crate) async fn follow_ups_once(&self) -> anyhow::Result<()> {
        let Some(policy) = followup::policy(&self.runner.bundle()) else {
            return Ok(());
        };
        let now = self.runner.clock().now();
        let sends = followup::pass(self.store.as_ref(), &policy, now, Transport::Slack).await?;
        for f in &sends.reminders {
            if let Err(e) = self.remind_follow_up(f).await {
                tracing::warn!(follow_up = f.id, error = %e, "could not send a follow-up reminder");
            }
        }
        for f in &sends.offers {
            if let Err(e) = self.offer_follow_up(f).await {
                tracing::warn!(follow_up = f.id, error = %e, "could not start a follow-up");
            }
        }
        Ok(())
    }

    /// Starts the follow-up dialog in the owner's DM (unless they are in
    /// another conversation: then it waits for the next pass).
    async fn offer_follow_up(&self, f: &FollowUp) -> anyhow::Result<()> {
        let user = f.user.id().to_string();
        let lock = self.user_lock(&user);
        let _g = lock.lock().await;
        if let Some(turn) = followup::start(&self.runner, f).await? {
            self.send_turn(&user, &turn).await?;
        }
        Ok(())
    }

    /// The one reminder: a short note and the open question again (as a
    /// new message, which becomes the live question).
    async fn remind_follow_up(&self, f: &FollowUp) -> anyhow::Result<()> {
        let user = f.user.id().to_string();
        let lock = self.user_lock(&user);
        let _g = lock.lock().await;
        let Some((lang, turn)) = followup::reminder_turn(&self.runner, f).await? else {
            return Ok(());
        };
        let channel = self
            .dm_channel(&user)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.post_message(&json!({
            "channel": channel,
            "text": crate::escape::slack(followup::reminder_text(lang)),
            "unfurl_links": false,
            "unfurl_media": false,
        }))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.send_turn(&user, &turn).await?;
        Ok(())
    }
}
