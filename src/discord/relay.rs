//! After routing, the conversation continues through the bot: staff write
//! to the owner from the case thread (`/reply`, or a configured prefix) and
//! the owner's later DMs are posted into the thread. Only ids of relayed
//! messages are stored (so `/forget` can remove them), never their text.

use super::render::{self, t};
use super::{user_key, Bot, BotError};
use crate::render::escape_markdown;
use crate::store::{CasePost, CaseRecord, CaseStatus, RelayMessage};
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
        let Some(post) = post else {
            let text = t(
                lang,
                &format!("ご相談 {} は、いま担当窓口へお送りしているところです。少し待ってから、もう一度お送りください。", case.id),
                &format!("Your consultation {} is being delivered to the support hub. Please send your message again in a moment.", case.id),
            );
            self.send(msg.channel_id, json!({ "content": text }))
                .await?;
            return Ok(());
        };
        // The first message after the hand-over makes the thread. If it
        // cannot be made (no Create Public Threads), the owner's words still
        // reach staff, in the channel.
        let target = match self.ensure_thread(post, &case.headline).await {
            Ok(t) => t.get(),
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "could not make the case thread; relaying to the channel");
                post.channel_id.parse().unwrap_or(0)
            }
        };
        let mut text = format!(
            "💬 **相談者より (from the owner)** — {}\n{}",
            case.id,
            escape_markdown(&msg.content)
        );
        if !msg.attachments.is_empty() {
            text.push_str("\n-# （添付ファイルは転送されません / attachments are not relayed）");
        }
        let now = self.runner.clock().now();
        let mut ids = Vec::new();
        for piece in render::split_text(&text, 1900) {
            let sent = self
                .send(ChannelId::new(target.max(1)), json!({ "content": piece }))
                .await?;
            self.store
                .add_relay_message(&RelayMessage {
                    case: case.id,
                    user: key.clone(),
                    direction: "to_staff".into(),
                    channel_id: target.to_string(),
                    message_id: sent.id.to_string(),
                    at: now,
                })
                .await?;
            ids.push(sent.id.to_string());
        }
        self.store
            .append_audit(
                Some(case.id),
                &key.to_string(),
                "relay_to_staff",
                &json!({ "messages": ids }),
                now,
            )
            .await?;
        tracing::info!(case = %case.id, user = %msg.author.id, "owner message relayed to staff");
        if let Err(e) = self
            .http
            .create_reaction(msg.channel_id, msg.id, &ReactionType::Unicode("✅".into()))
            .await
        {
            tracing::debug!(error = %e, "could not react to the owner's message");
        }
        Ok(())
    }

    /// Checks that `channel` is a case thread the member may reply from.
    async fn reply_target(
        &self,
        channel: ChannelId,
        roles: Option<&[RoleId]>,
    ) -> Result<Result<CaseRecord, String>, BotError> {
        let Some(post) = self
            .store
            .find_case_post("discord", &channel.to_string())
            .await?
        else {
            return Ok(Err(
                "案件のスレッドの中で使ってください。 (use this in a case thread)".into(),
            ));
        };
        let Some(case) = self.store.case(post.case).await? else {
            return Ok(Err("この案件は見つかりません。 (unknown case)".into()));
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
        if !self
            .store
            .cases_of_user(&case.user)
            .await?
            .iter()
            .any(|c| c.id == case.id)
        {
            return Ok(Err("相談者がデータの削除を依頼したため、連絡できません。 (the owner deleted their data)".into()));
        }
        if let Err(refusal) = self.staff_check(roles, &case.hub_id) {
            return Ok(Err(refusal));
        }
        if post.hub_id != case.hub_id {
            return Ok(Err(format!(
                "この案件の担当は {} です。担当拠点のスレッドから返信してください。 (reply from the responsible hub's thread)",
                escape_markdown(&self.hub_name(&case.hub_id))
            )));
        }
        if case.status == CaseStatus::Closed {
            return Ok(Err("完了した案件です。 (the case is closed)".into()));
        }
        Ok(Ok(case))
    }

    /// Sends staff text to the owner's DM and records it.
    async fn staff_to_owner(
        &self,
        case: &CaseRecord,
        staff: UserId,
        text: &str,
    ) -> Result<(), BotError> {
        let owner: u64 = case.user.id().parse().unwrap_or(0);
        let owner = UserId::new(owner.max(1));
        let lang = self.lang_for(&case.user, None, None).await;
        let hub = escape_markdown(&self.hub_name(&case.hub_id));
        let content = t(
            lang,
            &format!("📨 **{hub} の担当者より**（ご相談 {}）\n{}\n\n-# このDMに返信すると、担当者に届きます。", case.id, escape_markdown(text)),
            &format!("📨 **From the staff of {hub}** (consultation {})\n{}\n\n-# Reply to this DM to answer them.", case.id, escape_markdown(text)),
        );
        let dm = self.dm_channel(owner).await?;
        let now = self.runner.clock().now();
        let mut ids = Vec::new();
        for piece in render::split_text(&content, 1900) {
            let sent = self.send(dm, json!({ "content": piece })).await?;
            self.store
                .add_relay_message(&RelayMessage {
                    case: case.id,
                    user: case.user.clone(),
                    direction: "to_owner".into(),
                    channel_id: dm.to_string(),
                    message_id: sent.id.to_string(),
                    at: now,
                })
                .await?;
            ids.push(sent.id.to_string());
        }
        self.store
            .append_audit(
                Some(case.id),
                &super::staff::actor(staff),
                "relay_to_owner",
                &json!({ "messages": ids }),
                now,
            )
            .await?;
        tracing::info!(case = %case.id, staff = %staff, "staff message relayed to the owner");
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
        let case = match self.reply_target(cmd.channel_id, roles).await {
            Ok(Ok(c)) => c,
            Ok(Err(refusal)) => return self.respond_ephemeral(cmd.id, &cmd.token, &refusal).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check /reply");
                return self.respond_ephemeral(cmd.id, &cmd.token, "いまは送れません。少し待ってからもう一度お試しください。 (try again shortly)").await;
            }
        };
        if text.is_empty() {
            return self
                .respond_ephemeral(
                    cmd.id,
                    &cmd.token,
                    "送る内容を書いてください。 (write a message)",
                )
                .await;
        }
        if let Err(e) = self.respond(cmd.id, &cmd.token, json!({ "type": 5 })).await {
            tracing::warn!(error = %e, "could not acknowledge /reply");
            return;
        }
        let content = match self.staff_to_owner(&case, cmd.user.id, &text).await {
            Ok(()) => format!(
                "➡️ <@{}> が相談者に送りました (sent to the owner):\n>>> {}",
                cmd.user.id,
                escape_markdown(&text)
            ),
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "relay to the owner failed");
                "相談者に送れませんでした（DMを受け付けていない可能性があります）。 (could not reach the owner)".to_string()
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
        let outcome = match self.reply_target(msg.channel_id, roles).await {
            Ok(Ok(case)) if !text.is_empty() => self
                .staff_to_owner(&case, msg.author.id, text)
                .await
                .map_err(|e| {
                    tracing::warn!(case = %case.id, error = %e, "relay to the owner failed");
                    "相談者に送れませんでした。 (could not reach the owner)".to_string()
                }),
            Ok(Ok(_)) => {
                Err("送る内容を書いてください。 (write a message after the prefix)".into())
            }
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
                Err("いまは送れません。 (try again shortly)".into())
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
