//! Step 5 on Discord: when a follow-up after a match is due, the bot DMs
//! its owner the follow-up dialog; an offered one left unanswered gets one
//! reminder. The follow-up rows in the store decide what is due
//! ([`crate::followup::pass`]), so a restart neither repeats nor loses an
//! offer; this loop only sends.

use super::Bot;
use crate::domain::ids::Transport;
use crate::followup;
use crate::store::FollowUp;
use serenity::all::UserId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often due follow-ups are looked for. They are due by the day, so a
/// minute is prompt enough and costs one small query.
const EVERY: Duration = Duration::from_secs(60);

/// Runs until `stop` turns true.
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
    /// One pass: what is due for Discord owners is decided by
    /// [`followup::pass`]; this sends it (offers first started dialogs,
    /// reminders the note and the open question again).
    pub(crate) async fn follow_ups_once(&self) -> anyhow::Result<()> {
        let Some(policy) = followup::policy(&self.runner.bundle()) else {
            return Ok(());
        };
        let now = self.runner.clock().now();
        let sends = followup::pass(self.store.as_ref(), &policy, now, Transport::Discord).await?;
        for f in &sends.reminders {
            if let Err(e) = self.remind(f).await {
                tracing::warn!(follow_up = f.id, error = %e, "could not send a follow-up reminder");
            }
        }
        for f in &sends.offers {
            if let Err(e) = self.offer(f).await {
                tracing::warn!(follow_up = f.id, error = %e, "could not start a follow-up");
            }
        }
        Ok(())
    }

    fn owner(f: &FollowUp) -> Option<UserId> {
        if f.user.transport() != Transport::Discord {
            return None;
        }
        f.user.id().parse::<u64>().ok().map(UserId::new)
    }

    /// Starts the follow-up dialog in the owner's DMs (unless they are in
    /// another conversation: then it waits for the next pass).
    async fn offer(&self, f: &FollowUp) -> anyhow::Result<()> {
        let Some(user) = Self::owner(f) else {
            return Ok(());
        };
        let lock = self.user_lock(user);
        let _g = lock.lock().await;
        if let Some(turn) = followup::start(&self.runner, f).await? {
            self.send_turn(user, &turn, None).await?;
        }
        Ok(())
    }

    /// The one reminder: a short note and the open question again.
    async fn remind(&self, f: &FollowUp) -> anyhow::Result<()> {
        let Some(user) = Self::owner(f) else {
            return Ok(());
        };
        let lock = self.user_lock(user);
        let _g = lock.lock().await;
        let Some((lang, turn)) = followup::reminder_turn(&self.runner, f).await? else {
            return Ok(());
        };
        let channel = self.dm_channel(user).await?;
        self.send(
            channel,
            serde_json::json!({ "content": followup::reminder_text(lang) }),
        )
        .await?;
        self.send_turn(user, &turn, None).await?;
        Ok(())
    }
}
