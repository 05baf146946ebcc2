//! Reminders on Discord: the one function the timer loop posts through
//! ([`crate::network::worker::NoticeSink`]), kept apart from the staff
//! handlers so it can move onto a platform-neutral desk as it is. Staff
//! notices go to the case's thread at the hub when there is one, else the
//! hub's channel, and ping only the role or member they name; owner
//! notices go to the owner's DM. The texts come from
//! `data/reminder_texts.yaml`; only the mention syntax is Discord's.

use super::{render, Bot};
use crate::domain::ids::{Transport, UserKey};
use crate::network::reminders::Mention;
use crate::network::worker::{NoticeError, NoticeSink, StaffNotice};
use crate::store::RelayMessage;
use async_trait::async_trait;
use serde_json::json;
use serenity::all::{ChannelId, UserId};
use std::sync::Arc;

pub(crate) struct DiscordNotices(pub(crate) Arc<Bot>);

#[async_trait]
impl NoticeSink for DiscordNotices {
    /// The administrators' channel (`admin_channel`), when configured.
    async fn admin(&self, post: &crate::report::monthly::AdminPost) -> Result<bool, NoticeError> {
        if self.0.cfg.discord.admin_channel_id().is_none() {
            return Ok(false);
        }
        if self.0.post_admin_checked(post.text.clone()).await {
            Ok(true)
        } else {
            Err("the Discord admin channel did not take the monthly summary".into())
        }
    }

    async fn staff(&self, n: &StaffNotice<'_>) -> Result<bool, NoticeError> {
        let Some(target) = &n.hub.discord else {
            return Ok(false);
        };
        let bot = &self.0;
        let posts = bot
            .store
            .case_posts(n.case.id)
            .await
            .map_err(|e| e.to_string())?;
        let channel = posts
            .iter()
            .find(|p| p.hub_id == n.hub.id.as_str() && p.transport == "discord")
            .and_then(|p| p.thread_id.as_deref().or(Some(p.channel_id.as_str())))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|c| *c != 0)
            .unwrap_or(target.channel);
        let member = |who: &str| {
            who.strip_prefix("discord:")
                .and_then(|u| u.parse::<u64>().ok())
        };
        let (prefix, allowed) = match (n.mention, target.staff_role) {
            (Mention::StaffRole, Some(role)) => (
                format!("<@&{role}> "),
                json!({ "parse": [], "roles": [role.to_string()] }),
            ),
            (Mention::Member(who), _) if member(who).is_some() => {
                let u = member(who).unwrap_or_default();
                (
                    format!("<@{u}> "),
                    json!({ "parse": [], "users": [u.to_string()] }),
                )
            }
            _ => (String::new(), render::no_mentions()),
        };
        let channel = ChannelId::new(channel);
        bot.send(
            channel,
            json!({ "content": format!("{prefix}{}", n.text), "allowed_mentions": allowed }),
        )
        .await
        .map_err(|e| e.to_string())?;
        if let Some(sheet) = n.sheet {
            for part in render::split_text(&crate::escape::discord(sheet), 1900) {
                let m = bot
                    .send(
                        channel,
                        json!({ "content": part, "allowed_mentions": render::no_mentions() }),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                // The sheet holds the owner's answers: recorded so that
                // `/forget` deletes it like a relayed message.
                bot.store
                    .add_relay_message(&RelayMessage {
                        case: n.case.id,
                        user: n.case.user.clone(),
                        direction: "case_sheet".into(),
                        channel_id: channel.to_string(),
                        message_id: m.id.to_string(),
                        at: bot.runner.clock().now(),
                    })
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(true)
    }

    async fn owner(&self, user: &UserKey, text: &str, _key: &str) -> Result<bool, NoticeError> {
        if user.transport() != Transport::Discord {
            return Ok(false);
        }
        let Ok(id) = user.id().parse::<u64>() else {
            return Ok(false);
        };
        let bot = &self.0;
        let ch = bot
            .dm_channel(UserId::new(id))
            .await
            .map_err(|e| e.to_string())?;
        bot.send(
            ch,
            json!({ "content": text, "allowed_mentions": render::no_mentions() }),
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(true)
    }
}
