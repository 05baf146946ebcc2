//! The relay on Slack ([`crate::relay`]): staff write to the owner of a
//! case with `/madoguchi reply C-000001 …` or the "Reply to owner" message
//! shortcut on the case post or in its thread (a form opens); an owner's
//! direct message after their case was routed goes into the case's thread
//! on whichever platform the hub is; an owner answers a forward's consent
//! request with its buttons. Messages for the other side are queued in
//! the relay's outbox and sent by the outbox, never here, so a failure of
//! Slack or Discord delays them instead of losing them.

use super::events::{Action, MessageAction, SlashCommand, StaffCommand};
use super::owner::OwnerError;
use super::staff::STAFF_LANG;
use super::{user_key, Bot};
use crate::casework::{self, Outcome};
use crate::desk::{self, Arg, Text};
use crate::domain::ids::{CaseId, UserKey};
use crate::store::{CaseStatus, ForwardStatus};
use serde_json::json;

/// The callback id of the "Reply to owner" message shortcut (see
/// `deploy/slack-app-manifest.yaml`).
pub const REPLY_SHORTCUT: &str = "reply_to_owner";

impl Bot {
    /// `/madoguchi …` from staff.
    pub(crate) async fn on_staff_command(&self, c: SlashCommand) {
        match super::events::staff_command(&c.text) {
            StaffCommand::Usage => {
                let t = self.render_text(STAFF_LANG, &Text::new("slack.reply_usage"));
                self.ephemeral(&c.channel, &c.user, &t).await
            }
            StaffCommand::Reply { case, text } => {
                let hub = self.hub_in_channel(case, &c.channel).await;
                self.act(
                    &c.user,
                    &c.channel,
                    case,
                    hub.as_deref(),
                    desk::Action::Reply { text },
                )
                .await
            }
        }
    }

    /// The hub whose Slack post of `case` is in `channel`, if any.
    async fn hub_in_channel(&self, case: CaseId, channel: &str) -> Option<String> {
        self.store
            .case_posts(case)
            .await
            .ok()?
            .into_iter()
            .find(|p| p.transport == "slack" && p.channel_id == channel)
            .map(|p| p.hub_id)
    }

    /// The "Reply to owner" shortcut on a message: on the case post or in
    /// its thread, a form for the message opens (at once: the trigger
    /// expires after 3 seconds); the desk decides when it is submitted.
    pub(crate) async fn on_message_action(&self, m: MessageAction) {
        if m.callback_id != REPLY_SHORTCUT {
            return;
        }
        let post = self
            .store
            .find_case_post("slack", &m.thread_ts)
            .await
            .ok()
            .flatten()
            .filter(|p| p.channel_id == m.channel);
        let Some(post) = post else {
            let t = self.render_text(STAFF_LANG, &Text::new("error.not_in_case_thread"));
            return self.ephemeral(&m.channel, &m.user, &t).await;
        };
        let plain = |k: &str| {
            self.texts
                .render(STAFF_LANG, &Text::new(k), &desk::texts::Plain)
                .unwrap_or_else(|_| k.to_string())
        };
        let view = json!({
            "type": "modal",
            "callback_id": format!("s:reply:{}", post.case.0),
            "private_metadata": format!("{}|{}|{}", m.channel, post.message_id, post.hub_id),
            "title": super::render::plain(&plain("form.reply_title"), 24),
            "submit": super::render::plain("OK", 24),
            "blocks": [{
                "type": "input",
                "block_id": "text",
                "label": super::render::plain(&plain("form.reply_label"), 2000),
                "element": { "type": "plain_text_input", "action_id": "text", "multiline": true, "max_length": 3000 },
            }],
        });
        if let Err(e) = self
            .api
            .post(
                "views.open",
                &json!({ "trigger_id": m.trigger_id, "view": view }),
            )
            .await
        {
            tracing::warn!(error = %e, "could not open the reply form");
        }
    }

    /// Whether `text` is the owner's word for starting over (which starts
    /// a new consultation rather than writing to staff).
    fn is_restart_word(&self, text: &str) -> bool {
        let b = self.runner.bundle();
        let folded = crate::domain::text::fold_for_match(text);
        b.flows.first().and_then(|f| f.commands.recognize(&folded))
            == Some(crate::script::Command::Restart)
    }

    /// An owner's DM while no consultation is open: when they have a case
    /// being worked, it is for that case's staff and is queued for its
    /// thread (true); otherwise it is not handled here (false).
    pub(crate) async fn relay_from_owner(
        &self,
        key: &UserKey,
        channel: &str,
        text: &str,
    ) -> Result<bool, OwnerError> {
        if self.is_restart_word(text) {
            return Ok(false);
        }
        let cases = self.store.cases_of_user(key).await?;
        let Some(case) = cases
            .into_iter()
            .rev()
            .find(|c| c.status != CaseStatus::Closed)
        else {
            return Ok(false);
        };
        let lang = self.lang_for(key, None).await;
        let posts = self.store.case_posts(case.id).await?;
        let deliveries = self.store.deliveries(case.id).await?;
        let key_text = if crate::relay::hub_transport(&case.hub_id, &posts, &deliveries).is_none() {
            // No chat thread at the hub at all (a local inbox only): the
            // owner hears so, and nothing is queued for a thread that
            // cannot exist. A post still in (or failed in) the outbox gets
            // the message queued; it waits for the post.
            "owner.case_being_delivered"
        } else {
            let fx = desk::owner_message(&case, text, false);
            let what = crate::relay::What {
                owner: false,
                notes: true,
            };
            let now = self.runner.clock().now();
            match crate::relay::queue(self.store.as_ref(), &case, &fx, None, what, now).await {
                Ok(_) => self.wake.notify_one(),
                Err(crate::relay::RelayError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(case = %case.id, error = %e, "could not queue an owner's message");
                    return Ok(false);
                }
            }
            tracing::info!(case = %case.id, "owner message queued for the case thread");
            "owner.relayed"
        };
        let t = Text::new(key_text).arg("case", Arg::code(&case.id.to_string()));
        let body = json!({ "channel": channel, "text": self.render_text(lang, &t), "unfurl_links": false, "unfurl_media": false });
        self.post_message(&body).await?;
        Ok(true)
    }

    /// The owner's answer to a forward's consent request (`f:y:ID`,
    /// `f:n:ID` on the request's buttons).
    pub(crate) async fn on_forward_answer(&self, a: Action) {
        let mut parts = a.action_id.splitn(3, ':').skip(1);
        let (Some(yn), Some(Ok(id))) = (parts.next(), parts.next().map(str::parse::<i64>)) else {
            return;
        };
        let Some(key) = user_key(&a.user) else { return };
        let lang = self.lang_for(&key, None).await;
        let req = match self.store.forward_request(id).await {
            Ok(Some(r)) if r.user == key => r,
            _ => {
                let t = self.render_text(lang, &Text::new("owner.request_gone"));
                return self.ephemeral(&a.channel, &a.user, &t).await;
            }
        };
        // An answered or withdrawn request: the desk says which (and, for
        // a withdrawn one, why), and nothing is applied.
        if req.status != ForwardStatus::Pending {
            let now = self.runner.clock().now();
            let network = self.network();
            let r = casework::owner_answer(self.store.as_ref(), &network, &req, yn == "y", "", now);
            let t = match r.await {
                Ok(Outcome::Refused(t)) => t,
                _ => Text::new("owner.already_answered"),
            };
            let t = self.render_text(lang, &t);
            return self.ephemeral(&a.channel, &a.user, &t).await;
        }
        // The request stays as it was shown, without its buttons.
        let update = json!({ "channel": a.channel, "ts": a.message_ts, "text": a.message_text, "blocks": [] });
        if let Err(e) = self.api.post("chat.update", &update).await {
            tracing::debug!(error = %e, "could not take the buttons off a consent request");
        }
        let now = self.runner.clock().now();
        let network = self.network();
        let r = casework::owner_answer(
            self.store.as_ref(),
            &network,
            &req,
            yn == "y",
            &a.message_text,
            now,
        )
        .await;
        let text = match r {
            Ok(Outcome::Refused(t)) => self.render_text(lang, &t),
            Ok(Outcome::Done {
                effects, applied, ..
            }) => {
                // The notes go to each hub's thread wherever it is, and a
                // forwarded case's new post through the outbox.
                let what = crate::relay::What {
                    owner: false,
                    notes: true,
                };
                if let Err(e) = crate::relay::queue(
                    self.store.as_ref(),
                    &applied.case,
                    &effects,
                    None,
                    what,
                    now,
                )
                .await
                {
                    tracing::warn!(case = %applied.case.id, error = %e, "could not queue the notes of an owner's answer");
                }
                // The case's posts, wherever they are, show the forward.
                if let Some(job) = crate::relay::Refresh::of(&effects) {
                    let (store, case) = (self.store.as_ref(), &applied.case);
                    if let Err(e) = crate::relay::queue_refresh(store, case, job, None, now).await {
                        tracing::warn!(case = %case.id, error = %e, "could not queue the refresh of the case's posts");
                    }
                }
                self.wake.notify_one();
                effects
                    .reply
                    .as_ref()
                    .map(|t| self.render_text(lang, t))
                    .unwrap_or_default()
            }
            Err(e) => {
                tracing::warn!(request = id, error = %e, "could not apply the owner's answer");
                crate::discord::owner::sorry_text(lang)
            }
        };
        if !text.is_empty() {
            let _ = self
                .post_message(&json!({ "channel": a.channel, "text": text, "unfurl_links": false, "unfurl_media": false }))
                .await;
        }
    }
}
