//! An owner's data deleted on request, on Slack: `/forget`, or the same
//! words typed in the DM with the app, ask first (a message with two
//! buttons in the DM, Japanese first); "削除する" deletes the owner's data
//! in the store and then what the app posted of it in the hubs' Slack
//! channels — the case posts become tombstones, the rest of a long case
//! sheet and the owner's messages relayed into case threads are deleted
//! (`chat.delete`) — and clears the question the owner was on. The wording
//! is Discord's ([`crate::privacy::forget_texts`]).
//!
//! What stays: the consent and hand-over records the law requires, and the
//! app's earlier messages in the owner's own DM (Slack keeps no list of
//! them for the app; the owner can delete the conversation themselves).

use super::events::Action;
use super::render::{actions, button, section};
use super::Api;
use super::{user_key, ApiFail, Bot};
use crate::desk::DeskTexts;
use crate::desk::{Arg, Text};
use crate::privacy::forget_texts;
use crate::script::Lang;
use crate::store::{CasePost, ForgetReport};
use serde_json::json;
use std::collections::HashSet;

/// The id of a confirmation button: `g:{y|n}:{user}`, so a press is
/// honoured only for the owner it was shown to.
fn press_id(yes: bool, user: &str) -> String {
    format!("g:{}:{user}", if yes { 'y' } else { 'n' })
}

/// How the outbox records a piece of a long case sheet posted in the
/// case's thread (`slack::hub`, as `discord::outbox`).
use crate::relay::SHEET_PIECE;

/// A Slack id, not a Discord snowflake: only those are the app's to delete.
fn is_slack_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

#[derive(Debug, thiserror::Error)]
enum ForgetError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Bot {
    /// Asks the owner, in their DM, whether to delete their data.
    pub(crate) async fn ask_forget(&self, user: &str, lang: Lang) -> Result<(), ApiFail> {
        let channel = self.dm_channel(user).await?;
        let text = forget_texts::confirm(lang);
        let body = json!({
            "channel": channel,
            "text": text,
            "blocks": [
                section(&crate::escape::slack(&text)),
                actions(vec![
                    button(&press_id(true, user), &forget_texts::yes_label(lang), Some("danger")),
                    button(&press_id(false, user), &forget_texts::no_label(lang), None),
                ]),
            ],
            "unfurl_links": false,
            "unfurl_media": false,
        });
        self.post_message(&body).await.map(|_| ())
    }

    /// `/forget` (in the DM or a channel): the confirmation goes to the DM.
    pub(crate) async fn on_forget_command(&self, user: &str, channel: &str) {
        let Some(key) = user_key(user) else { return };
        let lang = self.lang_for(&key, None).await;
        if let Err(e) = self.ask_forget(user, lang).await {
            tracing::warn!(user, error = %e, "could not ask to confirm /forget");
            if !channel.is_empty() {
                self.ephemeral(channel, user, &forget_texts::failed(lang))
                    .await;
            }
        }
    }

    /// A press on the confirmation (`g:y:U…` or `g:n:U…`).
    pub(crate) async fn on_forget_press(&self, a: &Action, rest: &str) {
        let Some(key) = user_key(&a.user) else { return };
        let lang = self.lang_for(&key, None).await;
        let (yes, owner) = match rest.split_once(':') {
            Some(("y", u)) => (true, u),
            Some(("n", u)) => (false, u),
            _ => return,
        };
        if owner != a.user {
            return self
                .ephemeral(&a.channel, &a.user, &forget_texts::not_yours(lang))
                .await;
        }
        // The buttons go at once, so a second press cannot start a second
        // deletion.
        let first = if yes {
            forget_texts::deleting(lang)
        } else {
            forget_texts::kept(lang)
        };
        self.replace_message(&a.channel, &a.message_ts, &first)
            .await;
        if !yes {
            return;
        }
        let lock = self.user_lock(&a.user);
        let _g = lock.lock().await;
        let text = match self.forget(&a.user).await {
            Ok(r) => forget_texts::done(lang, &r),
            Err(e) => {
                tracing::error!(user = %a.user, error = %e, "forget failed");
                forget_texts::failed(lang)
            }
        };
        self.replace_message(&a.channel, &a.message_ts, &text).await;
    }

    /// Replaces a message of the app with plain text (no buttons).
    async fn replace_message(&self, channel: &str, ts: &str, text: &str) {
        let body = json!({
            "channel": channel,
            "ts": ts,
            "text": text,
            "blocks": [section(&crate::escape::slack(text))],
        });
        if let Err(e) = self.api.post("chat.update", &body).await {
            tracing::warn!(channel, error = %e, "could not update a message");
        }
    }

    /// Deletes the owner's data in the store, then what the app posted of
    /// it on Slack. The store goes first: if Slack fails afterwards, the
    /// data is gone from the bot and only a post is left to clean.
    async fn forget(&self, user: &str) -> Result<ForgetReport, ForgetError> {
        let Some(key) = user_key(user) else {
            return Ok(ForgetReport::default());
        };
        let cases = self.store.cases_of_user(&key).await?;
        let mut posts = Vec::new();
        for c in &cases {
            posts.extend(self.store.case_posts(c.id).await?);
        }
        let all_posts = posts.clone();
        let relayed = self.store.relay_messages_of_user(&key).await?;
        let live = self.prompts.get(&self.store, &key).await?;
        self.prompts.forget(&key).await;
        self.ticks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(u, _, _), _| u != user);
        let report = self
            .store
            .forget_user(&key, self.runner.clock().now())
            .await?;
        tracing::info!(user, cases = report.cases, "owner data deleted on request");
        // Those recorded while the owner was being forgotten come back in
        // the report.
        let relayed: Vec<_> = relayed
            .into_iter()
            .chain(report.relayed.iter().cloned())
            .collect();
        // What staff's channels hold of the owner's words: their relayed
        // messages and the rest of a long case sheet (each once; a retried
        // delivery records its pieces again).
        let posts: Vec<CasePost> = posts
            .into_iter()
            .filter(|p| p.transport == "slack")
            .collect();
        let messages: Vec<(String, String)> = relayed
            .iter()
            .filter(|m| {
                (m.direction == "to_staff" || m.direction == SHEET_PIECE)
                    && is_slack_id(&m.channel_id)
            })
            .map(|m| (m.channel_id.clone(), m.message_id.clone()))
            .collect();
        if let Err(e) = erase_on_slack(&self.api, &self.texts, &posts, &messages).await {
            tracing::warn!(user, error = %e, "could not clear every case post and relayed message");
        }
        // A hub on another platform (Discord) is cleaned by that
        // platform's sender, through the outbox.
        crate::relay::queue_erase_and_wake(
            self.store.as_ref(),
            &key,
            "slack",
            &all_posts,
            &relayed,
            self.runner.clock().now(),
            || self.wake.notify_one(),
        )
        .await;
        // The question the owner was on goes (with its buttons): it may
        // show their answers (the confirmation before sending).
        if let Some(l) = live.filter(|l| is_slack_id(&l.channel_id)) {
            let r = self
                .api
                .post(
                    "chat.delete",
                    &json!({ "channel": l.channel_id, "ts": l.message_id }),
                )
                .await;
            if let Err(e) = r {
                tracing::warn!(user, error = %e, "could not remove the last question");
            }
        }
        Ok(report)
    }
}

/// Turns case posts into tombstones (the case id and a note, no sheet, no
/// company name, no buttons) and deletes messages (`(channel, ts)`), on
/// Slack: for the owner's own forget here, and for an erase job queued by
/// another platform's forget ([`super::hub::SlackSender`]). Every item is
/// tried; a message already gone counts as done, so the whole call can be
/// repeated. The error returned is the one most worth retrying.
pub(crate) async fn erase_on_slack(
    api: &Api,
    texts: &DeskTexts,
    posts: &[CasePost],
    messages: &[(String, String)],
) -> Result<(), ApiFail> {
    let render = |t: &Text| {
        texts
            .render(Lang::Ja, t, &super::staff::SlackMedium)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "a desk text does not render");
                t.key.clone()
            })
    };
    let mut worst: Option<ApiFail> = None;
    let mut note = |e: ApiFail| {
        let rank = |e: &ApiFail| match e {
            ApiFail::RateLimited(_) => 2,
            ApiFail::Transient(_) => 1,
            ApiFail::Refused(_) => 0,
        };
        if worst.as_ref().is_none_or(|w| rank(&e) > rank(w)) {
            worst = Some(e);
        }
    };
    for p in posts {
        let title =
            render(&Text::new("post.deleted_title").arg("case", Arg::code(&p.case.to_string())));
        let body = render(&Text::new("post.deleted_body"));
        let text = format!("*{title}*\n{body}");
        let r = api
            .post(
                "chat.update",
                &json!({
                    "channel": p.channel_id,
                    "ts": p.message_id,
                    "text": text,
                    "blocks": [section(&text)],
                }),
            )
            .await;
        match r {
            Ok(_) => {}
            // Deleted by staff: nothing of the owner is left in it.
            Err(ApiFail::Refused(code)) if code == "message_not_found" => {}
            Err(e) => {
                tracing::warn!(case = %p.case, error = %e, "could not clear a case post");
                note(e);
            }
        }
    }
    let mut seen = HashSet::new();
    for (channel, ts) in messages.iter().filter(|m| seen.insert((*m).clone())) {
        let body = json!({ "channel": channel, "ts": ts });
        match api.post("chat.delete", &body).await {
            Ok(_) => {}
            // Already gone (staff deleted it): nothing left to do.
            Err(ApiFail::Refused(code)) if code == "message_not_found" => {}
            Err(e) => {
                tracing::warn!(message = %ts, error = %e, "could not delete a relayed message");
                note(e);
            }
        }
    }
    worst.map_or(Ok(()), Err)
}
