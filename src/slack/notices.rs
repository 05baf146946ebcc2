//! Reminders on Slack: the timer loop's [`NoticeSink`] for hubs whose
//! `targets.slack` names a channel and for owners who consult on Slack.
//!
//! A staff notice goes in the case post's thread when the hub has one (the
//! case was delivered to its Slack channel), else in the hub's channel. It
//! mentions the hub's staff user group (`<!subteam^S…>`) or its listed
//! members, or the one member a nudge is for; nothing else pings, since
//! every text is escaped for mrkdwn. An owner notice goes to the owner's
//! DM with the app.
//!
//! `chat.postMessage` has no idempotency key, so every message carries
//! message metadata naming the timer (`event_type` [`REMINDER_EVENT`], the
//! timer key and the piece). Before posting, the sink looks for that
//! metadata in the conversation's recent messages (the thread's replies,
//! else the channel's history), so a timer retried after an attempt whose
//! outcome was unknown posts its notice once.
//!
//! The sink holds its own Web API client (the same bot token and base URL
//! as the app), so the timer loop can run beside the app without reaching
//! into it.

use super::{Api, ApiFail, SlackConfig, SlackError};
use crate::domain::ids::{Transport, UserKey};
use crate::network::reminders::Mention;
use crate::network::worker::{NoticeError, NoticeSink, StaffNotice};
use crate::render::prompt::split_text;
use crate::routing::SlackStaff;
use crate::store::{RelayMessage, Store};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The metadata `event_type` of the app's reminder messages.
pub const REMINDER_EVENT: &str = "madoguchi_reminder";
/// How far back a conversation is searched for an earlier attempt.
const HISTORY_LIMIT: usize = 100;
/// The characters of one message of a sheet that follows a notice.
const SHEET_PIECE: usize = 2900;

/// The sink for `madoguchi run` (and tests): a client of its own with the
/// bot token of `cfg`.
pub fn notice_sink(
    cfg: &SlackConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::runner::Clock>,
) -> Result<Arc<dyn NoticeSink>, SlackError> {
    let client = super::client(cfg)?;
    Ok(Arc::new(SlackNotices {
        api: Api::new(client, &cfg.bot_token),
        store,
        clock,
        dms: Mutex::new(HashMap::new()),
        admin_channel: cfg.admin_channel.as_ref().map(|c| c.to_string()),
    }))
}

pub struct SlackNotices {
    api: Api,
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::runner::Clock>,
    /// Owners' DM channels, opened once per process.
    dms: Mutex<HashMap<String, String>>,
    /// `SLACK_ADMIN_CHANNEL`: where the monthly KPI summary goes.
    admin_channel: Option<String>,
}

/// The mention a staff notice starts with (pure): the hub's user group or
/// listed members for the staff, the member itself for a nudge when they
/// are on Slack, nothing otherwise.
pub fn mention_prefix(mention: &Mention, staff: &SlackStaff) -> String {
    match mention {
        Mention::StaffRole => match staff {
            SlackStaff::Group(g) => format!("<!subteam^{g}> "),
            SlackStaff::Members(m) => m.iter().map(|u| format!("<@{u}> ")).collect(),
        },
        Mention::Member(who) => match who
            .strip_prefix("slack:")
            .and_then(|u| crate::routing::SlackId::parse(u, &['U', 'W']))
        {
            Some(u) => format!("<@{u}> "),
            None => String::new(),
        },
        Mention::Nobody => String::new(),
    }
}

/// The metadata of piece `piece` of the notice of timer `key`.
fn metadata(key: &str, piece: usize) -> Value {
    json!({
        "event_type": REMINDER_EVENT,
        "event_payload": { "timer": key, "piece": piece.to_string() },
    })
}

fn is_piece(m: &Value, key: &str, piece: usize) -> bool {
    let md = &m["metadata"];
    md["event_type"] == REMINDER_EVENT
        && md["event_payload"]["timer"].as_str() == Some(key)
        && md["event_payload"]["piece"].as_str() == Some(piece.to_string().as_str())
}

impl SlackNotices {
    /// The pieces of timer `key` already in the conversation (a thread's
    /// replies, or the channel's recent history).
    async fn posted(
        &self,
        channel: &str,
        thread: Option<&str>,
        key: &str,
    ) -> Result<Vec<usize>, NoticeError> {
        let mut params = vec![
            ("channel", channel.to_string()),
            ("limit", HISTORY_LIMIT.to_string()),
            ("include_all_metadata", "true".to_string()),
        ];
        let method = match thread {
            Some(ts) => {
                params.push(("ts", ts.to_string()));
                "conversations.replies"
            }
            None => "conversations.history",
        };
        let r = self
            .api
            .get(method, &params)
            .await
            .map_err(|e| show(e, method, channel))?;
        Ok(r["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["metadata"]["event_type"] == REMINDER_EVENT)
            .filter_map(|m| {
                let p = m["metadata"]["event_payload"]["piece"]
                    .as_str()?
                    .parse()
                    .ok()?;
                is_piece(m, key, p).then_some(p)
            })
            .collect())
    }

    /// Posts the pieces of timer `key` not yet in the conversation; returns
    /// the message ids of the pieces it posted.
    async fn post_once(
        &self,
        channel: &str,
        thread: Option<&str>,
        key: &str,
        pieces: &[String],
    ) -> Result<Vec<(usize, String)>, NoticeError> {
        let done = self.posted(channel, thread, key).await?;
        let mut out = Vec::new();
        for (i, text) in pieces.iter().enumerate() {
            if done.contains(&i) {
                continue;
            }
            let mut body = json!({
                "channel": channel,
                "text": text,
                "metadata": metadata(key, i),
                "unfurl_links": false,
                "unfurl_media": false,
            });
            if let Some(ts) = thread {
                body["thread_ts"] = json!(ts);
            }
            let r = self
                .api
                .post("chat.postMessage", &body)
                .await
                .map_err(|e| show(e, "chat.postMessage", channel))?;
            if let Some(ts) = r["ts"].as_str() {
                out.push((i, ts.to_string()));
            }
        }
        Ok(out)
    }

    async fn dm_channel(&self, user: &str) -> Result<String, NoticeError> {
        if let Some(c) = self.dms.lock().unwrap_or_else(|e| e.into_inner()).get(user) {
            return Ok(c.clone());
        }
        let r = self
            .api
            .post("conversations.open", &json!({ "users": user }))
            .await
            .map_err(|e| show(e, "conversations.open", user))?;
        let c = r["channel"]["id"]
            .as_str()
            .ok_or("conversations.open returned no channel")?
            .to_string();
        self.dms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.to_string(), c.clone());
        Ok(c)
    }
}

/// A failed call as the timer loop logs and retries it: after a 429's
/// `Retry-After`, else after the loop's own wait.
fn show(e: ApiFail, method: &str, target: &str) -> NoticeError {
    let retry_after = match &e {
        ApiFail::RateLimited(wait) => Some(*wait),
        _ => None,
    };
    let message = match e {
        ApiFail::Refused(code) if code == "channel_not_found" => format!("slack does not know channel {target}: fix targets.slack.channel in routing.yaml"),
        ApiFail::Refused(code) if code == "not_in_channel" => format!("the app cannot post in channel {target}: invite the app to the channel (/invite @madoguchi)"),
        other => format!("{method}: {other}"),
    };
    NoticeError {
        message,
        retry_after,
    }
}

#[async_trait]
impl NoticeSink for SlackNotices {
    /// The administrators' channel, once: the message carries the summary's
    /// key in its metadata, so a retry after an unknown outcome finds it.
    async fn admin(&self, post: &crate::report::monthly::AdminPost) -> Result<bool, NoticeError> {
        let Some(channel) = &self.admin_channel else {
            return Ok(false);
        };
        let text = crate::escape::slack(&post.text);
        self.post_once(channel, None, &post.key, &[text]).await?;
        Ok(true)
    }

    async fn staff(&self, n: &StaffNotice<'_>) -> Result<bool, NoticeError> {
        let Some(target) = &n.hub.slack else {
            return Ok(false);
        };
        let posts = self
            .store
            .case_posts(n.case.id)
            .await
            .map_err(|e| e.to_string())?;
        // The case post's thread at this hub, when the case was posted to
        // its Slack channel; else the channel itself.
        let (channel, thread) = match posts
            .iter()
            .find(|p| p.hub_id == n.hub.id.as_str() && p.transport == "slack")
        {
            Some(p) => (
                p.channel_id.clone(),
                Some(p.thread_id.clone().unwrap_or_else(|| p.message_id.clone())),
            ),
            None => (target.channel.to_string(), None),
        };
        let mut pieces = vec![format!(
            "{}{}",
            mention_prefix(n.mention, &target.staff),
            crate::escape::slack(n.text)
        )];
        if let Some(sheet) = n.sheet {
            pieces.extend(split_text(&crate::escape::slack(sheet.trim()), SHEET_PIECE));
        }
        let posted = self
            .post_once(&channel, thread.as_deref(), n.key, &pieces)
            .await?;
        // The sheet holds the owner's answers: recorded like a relayed
        // message, so that forgetting the owner deletes it too.
        for (_, ts) in posted.iter().filter(|(i, _)| *i > 0) {
            self.store
                .add_relay_message(&RelayMessage {
                    case: n.case.id,
                    user: n.case.user.clone(),
                    direction: "case_sheet".into(),
                    channel_id: channel.clone(),
                    message_id: ts.clone(),
                    at: self.clock.now(),
                })
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(true)
    }

    async fn owner(&self, user: &UserKey, text: &str, key: &str) -> Result<bool, NoticeError> {
        if user.transport() != Transport::Slack {
            return Ok(false);
        }
        let channel = self.dm_channel(user.id()).await?;
        self.post_once(&channel, None, key, &[crate::escape::slack(text)])
            .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::SlackId;

    fn id(s: &str) -> SlackId {
        SlackId::parse(s, &['S', 'U', 'W']).unwrap()
    }

    #[test]
    fn the_staff_are_mentioned_by_group_or_members_and_a_nudge_its_claimer() {
        let group = SlackStaff::Group(id("S0PROSTAF1"));
        let members = SlackStaff::Members(vec![id("U0AAAAAAA1"), id("U0BBBBBBB2")]);
        assert_eq!(
            mention_prefix(&Mention::StaffRole, &group),
            "<!subteam^S0PROSTAF1> "
        );
        assert_eq!(
            mention_prefix(&Mention::StaffRole, &members),
            "<@U0AAAAAAA1> <@U0BBBBBBB2> "
        );
        assert_eq!(
            mention_prefix(&Mention::Member("slack:U0CCCCCCC3".into()), &group),
            "<@U0CCCCCCC3> "
        );
        // A claimer on another platform, or a malformed id, pings nobody.
        for who in ["discord:42", "slack:<!channel>", "slack:u0lower01"] {
            assert_eq!(mention_prefix(&Mention::Member(who.into()), &group), "");
        }
        assert_eq!(mention_prefix(&Mention::Nobody, &group), "");
    }

    #[test]
    fn a_piece_is_found_by_its_timer_and_number() {
        let m = json!({ "metadata": metadata("17", 1) });
        assert!(is_piece(&m, "17", 1));
        assert!(!is_piece(&m, "17", 0));
        assert!(!is_piece(&m, "170", 1));
        assert!(!is_piece(
            &json!({ "metadata": { "event_type": "madoguchi_case", "event_payload": { "timer": "17", "piece": "1" } } }),
            "17",
            1
        ));
    }
}
