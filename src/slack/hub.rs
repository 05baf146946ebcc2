//! Cases in hubs' Slack channels: the outbox's [`Sender`] for Slack.
//!
//! A delivery is one `chat.postMessage` in the hub's channel: the head
//! line (with the staff user group's mention, the only ping the app ever
//! sends), the case sheet, why the case came to this hub, and the action
//! buttons. A sheet longer than the post holds continues in the post's
//! thread. Everything from the owner is escaped for mrkdwn and nothing
//! unfurls.
//!
//! `chat.postMessage` has no idempotency key, so every post carries
//! message metadata (`event_type` [`CASE_EVENT`], the delivery id and the
//! piece number). When an attempt's outcome is unknown the outbox calls
//! [`Sender::find_existing`], which looks for that metadata in the
//! channel's recent history (`conversations.history` with
//! `include_all_metadata`), and the thread pieces already posted are found
//! the same way in the thread (`conversations.replies`), so a case is
//! posted exactly once however its attempts end. A 429 is returned with
//! Slack's `Retry-After` and the method as its scope.

use super::render::{actions, button, context, section};
use super::{Api, ApiFail};
use crate::desk::DeskTexts;
use crate::escape::slack as esc;
use crate::outbox::{Fail, RelayProgress, Sender, Sent};
use crate::render::prompt::{split_text, truncate};
use crate::routing::SlackStaff;
use crate::runner::Runner;
use crate::store::{CasePost, CaseRecord, CaseStatus, DeliveryRecord};
use crate::store::{RelayKind, RelayRecord};
use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;

/// The metadata `event_type` of the app's case posts.
pub const CASE_EVENT: &str = "madoguchi_case";
/// The sheet's characters in the post itself; the rest goes in the thread.
const SHEET_IN_POST: usize = 2500;
/// How far back the channel's history is searched for an earlier post.
const HISTORY_LIMIT: usize = 200;

pub(crate) fn sender(api: Api, runner: Arc<Runner>, texts: DeskTexts) -> Arc<dyn Sender> {
    Arc::new(SlackSender { api, runner, texts })
}

pub struct SlackSender {
    api: Api,
    runner: Arc<Runner>,
    /// Desk texts, for relay messages.
    texts: DeskTexts,
}

/// The metadata `event_type` of relay messages (to an owner, into a case
/// thread), carrying the relay id and the piece number, so that a retry
/// finds a piece an earlier attempt posted without knowing.
pub const RELAY_EVENT: &str = "madoguchi_relay";
/// Characters of a relay message per Slack message.
const RELAY_PIECE: usize = 3500;

/// The case post and what continues in its thread.
#[derive(Debug, Clone, PartialEq)]
pub struct PostView {
    pub text: String,
    pub blocks: Vec<Value>,
    pub thread: Vec<String>,
}

/// Renders a case for `hub_id`'s channel (pure). `hub_name` names hubs,
/// `staff` is the hub's staff (a user group is mentioned on a new case).
pub fn post_view(
    case: &CaseRecord,
    hub_id: &str,
    hub_name: &dyn Fn(&str) -> String,
    staff: Option<&SlackStaff>,
) -> PostView {
    let primary = hub_id == case.hub_id;
    let head = if primary {
        "新しい案件です (new case)"
    } else {
        "案件の写しです (copy of a case)"
    };
    let ping = match staff {
        Some(SlackStaff::Group(g)) if primary => format!("<!subteam^{g}> "),
        _ => String::new(),
    };
    let headline = truncate(&esc(&case.headline), 300);
    let title = format!("{ping}*{head}*: {} {headline}", case.id);
    let status = match case.status {
        CaseStatus::Open => "受付待ち (open)".to_string(),
        CaseStatus::Claimed => format!(
            "対応中 (claimed): {}",
            case.claimed_by
                .as_deref()
                .map(|a| crate::desk::Medium::actor(&super::staff::SlackMedium, a))
                .unwrap_or_default()
        ),
        CaseStatus::Closed => format!(
            "完了 (closed): {}",
            esc(case.outcome.as_deref().unwrap_or(""))
        ),
    };
    let mut hub = esc(&hub_name(&case.hub_id));
    if !primary {
        hub.push_str("（こちらは写し / this is a copy）");
    }
    let facts = format!(
        "*担当拠点 (hub)*: {hub}\n*段階 (step)*: STEP {}\n*状態 (status)*: {status}",
        case.step
    );
    let mut why = format!(
        "*振り分けの理由 (why this hub)*: ルール `{}` — {}",
        esc(&case.route.rule),
        esc(&case.route.reason)
    );
    for (rule, r) in &case.route.passed_over {
        why.push_str(&format!("\n・見送ったルール `{}`: {}", esc(rule), esc(r)));
    }
    let sheet = esc(case.summary_plain.trim());
    let mut pieces = split_text(&sheet, SHEET_IN_POST);
    let first = if pieces.is_empty() {
        String::new()
    } else {
        pieces.remove(0)
    };
    let thread: Vec<String> = if pieces.is_empty() {
        Vec::new()
    } else {
        split_text(&pieces.join("\n"), 2900)
    };
    let mut blocks = vec![section(&title), section(&facts)];
    if !first.is_empty() {
        let more = if thread.is_empty() {
            ""
        } else {
            "\n…（続きはスレッドに掲載 / continued in the thread）"
        };
        blocks.push(section(&format!("{first}{more}")));
    }
    blocks.push(section(&truncate(&why, 2900)));
    if primary && case.status != CaseStatus::Closed {
        let id = case.id.0;
        let claim = if case.status == CaseStatus::Claimed {
            button(&format!("s:release:{id}"), "担当を外れる (Release)", None)
        } else {
            button(
                &format!("s:claim:{id}"),
                "担当する (Claim)",
                Some("primary"),
            )
        };
        blocks.push(actions(vec![
            claim,
            button(&format!("s:fwd:{id}"), "他の拠点へ (Forward)", None),
            button(
                &format!("s:adv:{id}"),
                &format!("STEP {} へ進める (Advance)", (case.step + 1).min(5)),
                None,
            ),
            button(&format!("s:close:{id}"), "完了 (Close)", Some("danger")),
        ]));
    }
    blocks.push(context(&format!(
        "スレッドで相談者とのやり取りと対応記録が続きます / the case's thread holds notes and messages · madoguchi {}",
        case.id
    )));
    PostView {
        text: format!("{head}: {} {headline}", case.id),
        blocks,
        thread,
    }
}

/// The `chat.update` that brings case post `p` up to date with the case
/// as it is: what a button press shows, and what a refresh job from the
/// relay's outbox does. The staff group is not mentioned again.
pub(crate) fn update_body(
    case: &CaseRecord,
    p: &CasePost,
    hub_name: &dyn Fn(&str) -> String,
) -> Value {
    let v = post_view(case, &p.hub_id, hub_name, None);
    json!({
        "channel": p.channel_id,
        "ts": p.message_id,
        "text": v.text,
        "blocks": v.blocks,
    })
}

/// The metadata that identifies a post of delivery `d` (piece 0 is the
/// case post, 1… its thread pieces).
///
/// The values are strings: slack-morphism reads `event_payload` as a map
/// of strings, and the history it returns must decode.
fn metadata(d: &DeliveryRecord, piece: usize) -> Value {
    json!({
        "event_type": CASE_EVENT,
        "event_payload": { "delivery": d.id.to_string(), "case": d.case.to_string(), "piece": piece.to_string() },
    })
}

/// Is `m` (a message from history) this delivery's piece `piece`?
fn is_piece(m: &Value, d: &DeliveryRecord, piece: usize) -> bool {
    let md = &m["metadata"];
    let field = |k: &str| {
        md["event_payload"][k]
            .as_str()
            .and_then(|v| v.parse::<i64>().ok())
    };
    md["event_type"] == CASE_EVENT
        && field("delivery") == Some(d.id)
        && field("piece") == Some(piece as i64)
}

fn fail(e: ApiFail, method: &str, channel: &str) -> Fail {
    match e {
        ApiFail::RateLimited(wait) => Fail::RetryAfter {
            wait,
            scope: Some(method.to_string()),
            error: format!("{method}: rate limited"),
        },
        ApiFail::Transient(e) => Fail::Transient(format!("{method}: {e}")),
        ApiFail::Refused(code) => Fail::Permanent(match code.as_str() {
            "channel_not_found" => format!("slack does not know channel {channel}: fix targets.slack.channel in routing.yaml"),
            "not_in_channel" | "is_archived" => format!("the app cannot post in channel {channel} ({code}): invite the app to the channel (/invite @madoguchi)"),
            _ => format!("{method}: slack refused ({code})"),
        }),
    }
}

impl SlackSender {
    fn hub_name(&self, id: &str) -> String {
        let b = self.runner.bundle();
        b.flows
            .first()
            .and_then(|f| f.routing.hub(id))
            .map(|h| h.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    fn staff(&self, id: &str) -> Option<SlackStaff> {
        super::hub_staff(&self.runner, id)
    }

    /// The app's earlier message of delivery `d`, piece `piece`, among the
    /// channel's recent messages (piece 0) or the thread's replies.
    async fn find(
        &self,
        d: &DeliveryRecord,
        piece: usize,
        thread: Option<&str>,
    ) -> Result<Option<String>, Fail> {
        let mut params = vec![
            ("channel", d.target.clone()),
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
            .map_err(|e| fail(e, method, &d.target))?;
        Ok(r["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| is_piece(m, d, piece))
            .and_then(|m| m["ts"].as_str().map(str::to_string)))
    }
}

impl SlackSender {
    /// Piece `piece` of relay `r`, posted by an earlier attempt, among the
    /// DM's recent messages or the thread's replies.
    async fn find_relay(
        &self,
        r: &RelayRecord,
        channel: &str,
        thread: Option<&str>,
        piece: usize,
    ) -> Result<Option<String>, Fail> {
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
        let found = self
            .api
            .get(method, &params)
            .await
            .map_err(|e| fail(e, method, channel))?;
        let field = |m: &Value, k: &str| {
            m["metadata"]["event_payload"][k]
                .as_str()
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(found["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                m["metadata"]["event_type"] == RELAY_EVENT
                    && field(m, "relay") == Some(r.id)
                    && field(m, "piece") == Some(piece as i64)
            })
            .and_then(|m| m["ts"].as_str().map(str::to_string)))
    }

    /// Deletes a piece posted while the owner was being forgotten.
    async fn withdraw(&self, channel: &str, ts: &str) -> Result<(), Fail> {
        if let Err(e) = self
            .api
            .post("chat.delete", &json!({ "channel": channel, "ts": ts }))
            .await
        {
            tracing::warn!(error = %e, "could not delete a relayed message of a forgotten owner");
        }
        Err(Fail::Permanent("the owner deleted their data".into()))
    }

    /// Where a relay message goes: the owner's DM, or the thread of the
    /// case's post in the hub's channel (which must exist first).
    async fn relay_place(
        &self,
        r: &RelayRecord,
        case: &CaseRecord,
    ) -> Result<(String, Option<String>), Fail> {
        match r.kind {
            RelayKind::ToOwner => {
                let o = self
                    .api
                    .post("conversations.open", &json!({ "users": r.target }))
                    .await
                    .map_err(|e| fail(e, "conversations.open", &r.target))?;
                let c = o["channel"]["id"].as_str().ok_or_else(|| {
                    Fail::Transient("conversations.open returned no channel".into())
                })?;
                Ok((c.to_string(), None))
            }
            RelayKind::Erase | RelayKind::Refresh => Err(Fail::Permanent(
                "an erase or refresh job has no message to post".into(),
            )),
            RelayKind::ToHub => {
                let posts = self
                    .runner
                    .store()
                    .case_posts(case.id)
                    .await
                    .map_err(|e| Fail::Transient(format!("store: {e}")))?;
                let Some(p) = posts
                    .into_iter()
                    .find(|p| p.transport == "slack" && p.hub_id == r.target)
                else {
                    // The case post is still in the outbox: wait for it,
                    // without counting this as a failed attempt.
                    return Err(Fail::RetryAfter {
                        wait: std::time::Duration::from_secs(5),
                        scope: None,
                        error: "the case is not posted in the hub's channel yet".into(),
                    });
                };
                let thread = p.thread_id.clone().unwrap_or_else(|| p.message_id.clone());
                Ok((p.channel_id, Some(thread)))
            }
        }
    }
}

#[async_trait]
impl Sender for SlackSender {
    fn transport(&self) -> &str {
        "slack"
    }

    fn scope(&self, _d: &DeliveryRecord) -> Option<String> {
        Some("chat.postMessage".into())
    }

    fn relays(&self) -> bool {
        true
    }

    fn relay_scope(&self, r: &RelayRecord) -> Option<String> {
        Some(match r.kind {
            RelayKind::Refresh => "chat.update".into(),
            _ => "chat.postMessage".into(),
        })
    }

    /// Slack's post is rewritten whole every time (`update_body`), so
    /// `text` asks nothing more here.
    async fn refresh(
        &self,
        case: &CaseRecord,
        posts: &[CasePost],
        _text: bool,
    ) -> Result<(), Fail> {
        for p in posts.iter().filter(|p| p.transport == "slack") {
            let body = update_body(case, p, &|h| self.hub_name(h));
            match self.api.post("chat.update", &body).await {
                Ok(_) => {}
                Err(ApiFail::Refused(code)) => {
                    tracing::warn!(case = %case.id, channel = %p.channel_id, error = %code, "a case post cannot be refreshed; left as it is")
                }
                Err(e) => return Err(fail(e, "chat.update", &p.channel_id)),
            }
        }
        Ok(())
    }

    async fn erase(&self, r: &RelayRecord, job: &crate::relay::Erase) -> Result<(), Fail> {
        let posts = job.case_posts(r.case, "slack", r.created_at);
        let messages: Vec<(String, String)> = job
            .messages
            .iter()
            .map(|m| (m.channel_id.clone(), m.message_id.clone()))
            .collect();
        super::forget::erase_on_slack(&self.api, &self.texts, &posts, &messages)
            .await
            .map_err(|e| fail(e, "chat.update", ""))
    }

    async fn send_relay(
        &self,
        r: &RelayRecord,
        body: &crate::relay::Body,
        case: &CaseRecord,
        progress: &RelayProgress<'_>,
    ) -> Result<(), Fail> {
        let store = self.runner.store();
        let lang =
            crate::relay::reader_lang(store.as_ref(), r, self.runner.config().default_lang).await;
        let mut rendered = Vec::new();
        for t in &body.texts {
            rendered.push(
                self.texts
                    .render(lang, t, &super::staff::SlackMedium)
                    .map_err(|e| Fail::Permanent(format!("a desk text does not render: {e}")))?,
            );
        }
        let (channel, thread) = self.relay_place(r, case).await?;
        let mut text = rendered.join("\n");
        // A forward to a hub that had a copy mentions its staff in the
        // thread (see `relay::Body::ping`); the texts are already escaped,
        // so this is the only mention in the message.
        if r.kind == RelayKind::ToHub && body.ping {
            if let Some(staff) = self.staff(&r.target) {
                text = format!(
                    "{}{text}",
                    super::notices::mention_prefix(
                        &crate::network::reminders::Mention::StaffRole,
                        &staff
                    )
                );
            }
        }
        let pieces = split_text(&text, RELAY_PIECE);
        let last = pieces.len().saturating_sub(1);
        for (i, text) in pieces.iter().enumerate().skip(progress.done()) {
            if progress.unknown() {
                if let Some(ts) = self.find_relay(r, &channel, thread.as_deref(), i).await? {
                    if !progress.posted(&channel, &ts).await? {
                        return self.withdraw(&channel, &ts).await;
                    }
                    continue;
                }
            }
            let mut msg = json!({
                "channel": channel,
                "text": text,
                "metadata": {
                    "event_type": RELAY_EVENT,
                    "event_payload": { "relay": r.id.to_string(), "case": r.case.to_string(), "piece": i.to_string() },
                },
                "unfurl_links": false,
                "unfurl_media": false,
            });
            if let Some(ts) = &thread {
                msg["thread_ts"] = json!(ts);
            }
            // A consent request ends with the owner's two buttons.
            if let (Some(req), true) = (body.ask, i == last) {
                let label = |k: &str| {
                    self.texts
                        .render(lang, &crate::desk::Text::new(k), &crate::desk::texts::Plain)
                        .unwrap_or_else(|_| k.to_string())
                };
                msg["blocks"] = json!([
                    section(&truncate(text, 2900)),
                    actions(vec![
                        button(
                            &format!("f:y:{req}"),
                            &label("owner.agree"),
                            Some("primary")
                        ),
                        button(&format!("f:n:{req}"), &label("owner.disagree"), None),
                    ]),
                ]);
            }
            let sent = self
                .api
                .post("chat.postMessage", &msg)
                .await
                .map_err(|e| fail(e, "chat.postMessage", &channel))?;
            let ts = sent["ts"]
                .as_str()
                .ok_or_else(|| Fail::Transient("chat.postMessage returned no ts".into()))?;
            if !progress.posted(&channel, ts).await? {
                return self.withdraw(&channel, ts).await;
            }
        }
        Ok(())
    }

    async fn find_existing(
        &self,
        d: &DeliveryRecord,
        _case: &CaseRecord,
    ) -> Result<Option<String>, Fail> {
        self.find(d, 0, None).await
    }

    async fn send(&self, d: &DeliveryRecord, case: &CaseRecord) -> Result<Sent, Fail> {
        let store = self.runner.store();
        let store_err = |e: crate::store::StoreError| Fail::Transient(format!("store: {e}"));
        let staff = self.staff(&d.hub_id);
        let view = post_view(case, &d.hub_id, &|h| self.hub_name(h), staff.as_ref());
        let ts = match &d.external_id {
            Some(ts) => ts.clone(),
            None => {
                let body = json!({
                    "channel": d.target,
                    "text": view.text,
                    "blocks": view.blocks,
                    "metadata": metadata(d, 0),
                    "unfurl_links": false,
                    "unfurl_media": false,
                });
                let r = self
                    .api
                    .post("chat.postMessage", &body)
                    .await
                    .map_err(|e| fail(e, "chat.postMessage", &d.target))?;
                let ts = r["ts"]
                    .as_str()
                    .ok_or_else(|| Fail::Transient("chat.postMessage returned no ts".into()))?
                    .to_string();
                store
                    .set_delivery_external_id(d.id, &ts)
                    .await
                    .map_err(store_err)?;
                ts
            }
        };
        store
            .save_case_post(&CasePost {
                case: case.id,
                hub_id: d.hub_id.clone(),
                transport: "slack".into(),
                channel_id: d.target.clone(),
                message_id: ts.clone(),
                thread_id: Some(ts.clone()),
                created_at: self.runner.clock().now(),
            })
            .await
            .map_err(store_err)?;
        // The rest of a long sheet, in the thread, each piece once: a retry
        // first looks for the pieces an earlier attempt posted.
        let retry = d.attempts > 0 || d.external_id.is_some();
        for (i, text) in view.thread.iter().enumerate() {
            let piece = i + 1;
            if retry && self.find(d, piece, Some(&ts)).await?.is_some() {
                continue;
            }
            let body = json!({
                "channel": d.target,
                "thread_ts": ts,
                "text": text,
                "metadata": metadata(d, piece),
                "unfurl_links": false,
                "unfurl_media": false,
            });
            let r = self
                .api
                .post("chat.postMessage", &body)
                .await
                .map_err(|e| fail(e, "chat.postMessage", &d.target))?;
            // Held like a relayed message, so that forgetting the owner
            // deletes it too.
            if let Some(m) = r["ts"].as_str() {
                store
                    .add_relay_message(&crate::store::RelayMessage {
                        case: case.id,
                        user: case.user.clone(),
                        direction: "case_sheet".into(),
                        channel_id: d.target.clone(),
                        message_id: m.to_string(),
                        at: self.runner.clock().now(),
                    })
                    .await
                    .map_err(store_err)?;
            }
        }
        Ok(Sent {
            external_id: Some(ts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{CaseId, SessionId, Transport, UserKey};
    use crate::routing::SlackId;

    fn case(summary: &str, headline: &str) -> CaseRecord {
        let now = chrono::Utc::now();
        CaseRecord {
            id: CaseId(7),
            session: SessionId(1),
            user: UserKey::new(Transport::Slack, "U1").unwrap(),
            version: "v".into(),
            headline: headline.into(),
            summary_plain: summary.into(),
            summary_markdown: summary.into(),
            route: crate::routing::RouteDecision {
                rule: "r".into(),
                reason: "<!channel> 理由".into(),
                primary: crate::routing::HubRef {
                    id: "hyogo-pro".into(),
                    name: "n".into(),
                },
                copies: vec![],
                step: 1,
                passed_over: vec![],
                follow_up: None,
            },
            hub_id: "hyogo-pro".into(),
            tags: vec![],
            step: 1,
            status: CaseStatus::Open,
            claimed_by: None,
            outcome: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn all_text(v: &PostView) -> String {
        let mut s = v.text.clone();
        for b in &v.blocks {
            s.push_str(&b.to_string());
        }
        s.push_str(&v.thread.join("\n"));
        s
    }

    #[test]
    fn owner_text_pings_and_links_nothing_and_only_the_staff_group_is_mentioned() {
        let hostile = "<!channel> <!here> <@U999> <https://evil.example|銀行> https://evil.example";
        let staff = SlackStaff::Group(SlackId::parse("S0123ABCD", &['S']).unwrap());
        let v = post_view(
            &case(hostile, hostile),
            "hyogo-pro",
            &|h| h.to_string(),
            Some(&staff),
        );
        let text = all_text(&v);
        assert!(
            !text.contains("<!channel>") && !text.contains("<!here>") && !text.contains("<@U999>"),
            "{text}"
        );
        assert!(
            !text.contains("<https:") && !text.contains("https://evil"),
            "{text}"
        );
        assert_eq!(text.matches("<!subteam^S0123ABCD>").count(), 1);
        assert_eq!(
            action_ids(&v),
            ["s:claim:7", "s:fwd:7", "s:adv:7", "s:close:7"]
        );
    }

    fn action_ids(v: &PostView) -> Vec<String> {
        super::super::render::action_ids(&v.blocks)
    }

    #[test]
    fn a_long_sheet_continues_in_the_thread_and_a_copy_has_no_buttons() {
        let line = "あ".repeat(900);
        let long = format!("{line}\n{line}\n{line}\n{line}\n{line}");
        let v = post_view(&case(&long, "h"), "hyogo-pro", &|h| h.to_string(), None);
        assert!(!v.thread.is_empty());
        assert!(v
            .blocks
            .iter()
            .all(|b| b["text"]["text"].as_str().map_or(0, |t| t.chars().count()) <= 3000));
        let shown: usize = v.thread.iter().map(|t| t.chars().count()).sum::<usize>()
            + v.blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count();
        assert!(shown >= 4500, "nothing of the sheet is lost");
        let copy = post_view(&case("s", "h"), "other", &|h| h.to_string(), None);
        assert!(action_ids(&copy).is_empty());
    }
}
