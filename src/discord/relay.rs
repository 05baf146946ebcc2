//! After routing, the conversation continues through the bot: staff write
//! to the owner from the case thread (`/reply`, or a configured prefix) and
//! the owner's later DMs are posted into the case's thread, on whichever
//! platform each side is. Both go through the relay's outbox
//! ([`crate::relay`]): queued here, sent by the outbox's sender of the
//! target platform (Discord's in [`super::outbox`]), retried there. Only
//! ids of relayed messages are kept (so `/forget` can remove them), never
//! their text once sent.

use super::render;
use super::{user_key, Bot, BotError};
use crate::desk::{Action, Decision, Effects, Text};
use crate::store::{CasePost, CaseRecord};
use serde_json::json;
use serenity::all::{ChannelId, CommandInteraction, Message, ReactionType, RoleId, UserId};

impl Bot {
    /// An owner's DM about their routed case, posted in the case thread.
    pub(crate) async fn owner_to_staff(
        &self,
        msg: &Message,
        case: &CaseRecord,
        post: Option<&CasePost>,
    ) -> Result<(), BotError> {
        let key = user_key(msg.author.id);
        let lang = self.lang_for(&key, None, None).await;
        // A post still in (or failed in) the outbox: the message is
        // queued and waits for it. Only a hub without any chat thread (a
        // local inbox) cannot take it.
        let deliveries = self.store.deliveries(case.id).await?;
        let posts: Vec<CasePost> = post.into_iter().cloned().collect();
        if crate::relay::hub_transport(&case.hub_id, &posts, &deliveries).is_none() {
            let text = self.render_text(
                lang,
                &Text::new("owner.case_being_delivered")
                    .arg("case", crate::desk::Arg::code(&case.id.to_string())),
            );
            self.send(msg.channel_id, json!({ "content": text }))
                .await?;
            return Ok(());
        };
        // The post may be on another platform (a hub on Slack); the
        // thread is made on first use by the sender that posts there.
        let fx = crate::desk::owner_message(case, &msg.content, !msg.attachments.is_empty());
        let now = self.runner.clock().now();
        let what = crate::relay::What {
            owner: false,
            notes: true,
        };
        match crate::relay::queue(self.store.as_ref(), case, &fx, None, what, now).await {
            Ok(_) => self.wake.notify_one(),
            Err(crate::relay::RelayError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(BotError::Reply(e.to_string())),
        }
        tracing::info!(case = %case.id, user = %msg.author.id, "owner message queued for the case thread");
        if let Err(e) = self
            .http
            .create_reaction(msg.channel_id, msg.id, &ReactionType::Unicode("✅".into()))
            .await
        {
            tracing::debug!(error = %e, "could not react to the owner's message");
        }
        Ok(())
    }

    /// Asks the desk whether the member may send `text` to the owner from
    /// `channel` (a case thread, or the case post's channel message):
    /// the case and the decision's effects, or the refusal to show.
    async fn reply_target(
        &self,
        channel: ChannelId,
        user: UserId,
        roles: Option<&[RoleId]>,
        text: &str,
    ) -> Result<Result<(CaseRecord, Effects), String>, BotError> {
        let Some(post) = self
            .store
            .find_case_post("discord", &channel.to_string())
            .await?
        else {
            return Ok(Err(self.staff_text(&Text::new("error.not_in_case_thread"))));
        };
        // A thread staff started by hand on the post has the post's id and
        // is not stored yet: remember it, so the owner's messages go there
        // without asking Discord first.
        if post.thread_id.is_none() && post.message_id == channel.to_string() {
            self.store
                .save_case_post(&CasePost {
                    thread_id: Some(channel.to_string()),
                    ..post.clone()
                })
                .await?;
        }
        let Some(view) = crate::casework::load(self.store.as_ref(), post.case).await? else {
            return Ok(Err(self.staff_text(&Text::new("refused.unknown_case"))));
        };
        let actor = super::desk::actor(user, roles);
        let req = crate::desk::Request {
            actor: &actor,
            from_hub: Some(&post.hub_id),
            action: Action::Reply {
                text: text.to_string(),
            },
            now: self.runner.clock().now(),
        };
        Ok(match crate::desk::decide(&self.network(), &view, &req) {
            Decision::Refused(t) => Err(self.staff_text(&t)),
            Decision::Accepted(fx) => Ok((view.case, fx)),
        })
    }

    /// Queues the decision's messages for the owner's DM (on the owner's
    /// platform); the outbox sends them and records their ids.
    async fn staff_to_owner(
        &self,
        case: &CaseRecord,
        staff: UserId,
        fx: &Effects,
    ) -> Result<(), BotError> {
        let now = self.runner.clock().now();
        let what = crate::relay::What {
            owner: true,
            notes: false,
        };
        match crate::relay::queue(self.store.as_ref(), case, fx, None, what, now).await {
            Ok(_) => self.wake.notify_one(),
            Err(crate::relay::RelayError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(BotError::Reply(e.to_string())),
        }
        tracing::info!(case = %case.id, staff = %staff, "staff message queued for the owner");
        Ok(())
    }

    /// `/reply message:` in a case thread.
    pub(crate) async fn on_reply_command(&self, cmd: &CommandInteraction) {
        let text = cmd
            .data
            .options
            .iter()
            .find(|o| o.name == "message")
            .and_then(|o| o.value.as_str())
            .unwrap_or_default()
            .trim()
            .to_string();
        let roles = cmd.member.as_ref().map(|m| m.roles.as_slice());
        let (case, fx) = match self
            .reply_target(cmd.channel_id, cmd.user.id, roles, &text)
            .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(refusal)) => return self.respond_ephemeral(cmd.id, &cmd.token, &refusal).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check /reply");
                return self
                    .respond_ephemeral(
                        cmd.id,
                        &cmd.token,
                        &self.staff_text(&Text::new("error.try_again_shortly")),
                    )
                    .await;
            }
        };
        if let Err(e) = self.respond(cmd.id, &cmd.token, json!({ "type": 5 })).await {
            tracing::warn!(error = %e, "could not acknowledge /reply");
            return;
        }
        // The confirmation in the thread is the decision's note (who sent
        // what), as the deferred answer to the command.
        let content = match self.staff_to_owner(&case, cmd.user.id, &fx).await {
            Ok(()) => fx
                .notes
                .iter()
                .map(|n| self.staff_text(&n.text))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "relay to the owner failed");
                self.staff_text(&Text::new("error.owner_unreachable"))
            }
        };
        if let Err(e) = self
            .edit_original(
                &cmd.token,
                json!({ "content": render::truncate(&content, render::MAX_CONTENT) }),
            )
            .await
        {
            tracing::warn!(error = %e, "could not confirm /reply");
        }
    }

    /// `<prefix> text` typed in a case thread.
    pub(crate) async fn on_prefix_relay(&self, msg: &Message, text: &str) {
        let roles = msg.member.as_ref().map(|m| m.roles.as_slice());
        let outcome = match self
            .reply_target(msg.channel_id, msg.author.id, roles, text)
            .await
        {
            Ok(Ok((case, fx))) => self
                .staff_to_owner(&case, msg.author.id, &fx)
                .await
                .map_err(|e| {
                    tracing::warn!(case = %case.id, error = %e, "relay to the owner failed");
                    self.staff_text(&Text::new("error.owner_unreachable"))
                }),
            Ok(Err(refusal)) => {
                // Outside a case thread the prefix is just text; say nothing.
                if self
                    .store
                    .find_case_post("discord", &msg.channel_id.to_string())
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                {
                    return;
                }
                Err(refusal)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check a relay");
                Err(self.staff_text(&Text::new("error.try_again_shortly")))
            }
        };
        match outcome {
            Ok(()) => {
                let _ = self
                    .http
                    .create_reaction(msg.channel_id, msg.id, &ReactionType::Unicode("✅".into()))
                    .await;
            }
            Err(why) => {
                let _ = self.send(msg.channel_id, json!({ "content": why, "message_reference": { "message_id": msg.id.to_string() } })).await;
            }
        }
    }
}
