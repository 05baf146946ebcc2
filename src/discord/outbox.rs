//! The delivery worker: posts routed cases from the store's outbox to the
//! hubs' channels, never losing or duplicating one.
//!
//! - Rows come from `Store::due_deliveries("discord", ..)`, written in the
//!   same transaction as the case; a restart simply finds them again.
//! - A delivery is, in the common case, ONE call: the case message, whose
//!   embed holds the summary and whose content holds what staff need first
//!   (the staff role's ping, how to reply, why the case came to this hub).
//!   Its thread is not made here but on first use (`Bot::ensure_thread`: the
//!   first relayed owner message or staff note), so handing a case to two
//!   hubs costs two calls, not six.
//! - The case message is created with `nonce = "mdg-d{delivery id}"` and
//!   `enforce_nonce`, so a retry after an unknown outcome (timeout, crash)
//!   gets the original message back instead of a second post. Its id is
//!   stored (`set_delivery_external_id`) before anything else is done; a
//!   later attempt checks that message exists and only finishes the rest.
//! - Only when the post cannot hold everything (a summary longer than the
//!   embed allows, an intro longer than the content allows) does the
//!   delivery make the thread and post the rest there, each piece with
//!   `nonce = "mdg-d{delivery id}t{i}"` and `enforce_nonce`, so a retried
//!   delivery does not repeat a piece; the thread's id is stored with the
//!   post, and a thread that already exists (Discord's 160004) is the one
//!   with the message's id.
//! - Every attempt is recorded (`record_attempt`): 5xx and network errors
//!   retry with exponential backoff, 429 waits exactly `retry_after`, other
//!   4xx (missing permission, unknown channel) fail at once with the reason.
//!
//! # Why the case message bypasses serenity's `Http` call
//!
//! serenity 0.12.5 turns any non-2xx answer into
//! `HttpError::UnsuccessfulRequest(ErrorResponse)`, which keeps only the
//! status, URL and the decoded `{code, message}` body. Discord's 429 body
//! (`{"message", "retry_after", "global"}`) has no `code`, so decoding fails
//! and neither the body nor the `Retry-After` header is reachable. With a
//! proxy (tests), serenity's rate limiter must also be off, so nothing
//! retries for us. The worker therefore builds the request with serenity's
//! own `Request`/`Route` (same URL, headers and proxy rewrite) and sends it
//! with its own reqwest client, reading the status, `retry_after` from the
//! body (or the `Retry-After` header) itself. In production serenity's rate
//! limiter stays on for every other call.

use super::render;
use super::{code_of, status_of, Bot, BotError};
use crate::store::{AttemptOutcome, CasePost, DeliveryRecord, RelayMessage};
use serde_json::{json, Value};
use serenity::all::{ChannelId, InteractionId, MessageId};
use serenity::http::{LightMethod, Request, Route};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Message creation with a readable response.
pub(crate) struct RawApi {
    client: reqwest::Client,
    base: Option<String>,
    auth: String,
}

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Fail {
    /// 429: wait this long.
    RateLimited(Duration, String),
    /// 5xx, network, timeout: try again later.
    Transient(String),
    /// Anything else: retrying will not help.
    Permanent(String),
}

impl RawApi {
    pub(crate) fn new(token: &str, base: Option<String>) -> RawApi {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        RawApi {
            client,
            base: base.map(|b| b.trim_end_matches('/').to_string()),
            auth: format!("Bot {token}"),
        }
    }

    /// POST /channels/{id}/messages; returns the new message's id.
    pub(crate) async fn create_message(
        &self,
        channel: ChannelId,
        body: &Value,
    ) -> Result<MessageId, Fail> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Fail::Permanent(format!("cannot encode the message: {e}")))?;
        let req = Request::new(
            Route::ChannelMessages {
                channel_id: channel,
            },
            LightMethod::Post,
        )
        .body(Some(bytes));
        let req = req
            .build(&self.client, &self.auth, self.base.as_deref())
            .map_err(|e| Fail::Permanent(format!("cannot build the request: {e}")))?;
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(Fail::Transient(format!(
                    "network error: {}",
                    without_url(&e)
                )))
            }
        };
        let status = resp.status();
        let header_wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        let text = resp.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return json["id"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n != 0)
                .map(MessageId::new)
                .ok_or_else(|| Fail::Transient("discord answered without a message id".into()));
        }
        let what = format!(
            "{} {}",
            status.as_u16(),
            json["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        );
        if status.as_u16() == 429 {
            let secs = json["retry_after"]
                .as_f64()
                .or(header_wait)
                .unwrap_or(5.0)
                .clamp(0.0, 3600.0);
            return Err(Fail::RateLimited(
                Duration::from_millis((secs * 1000.0).ceil() as u64),
                format!("rate limited ({what})"),
            ));
        }
        if status.is_server_error() {
            return Err(Fail::Transient(format!("discord server error {what}")));
        }
        Err(Fail::Permanent(refusal(
            status.as_u16(),
            json["code"].as_i64().unwrap_or(0),
            &what,
            channel,
        )))
    }
}

impl RawApi {
    /// POST /interactions/{id}/{token}/callback?with_response=true; returns
    /// the id of the message the response created, when Discord includes it
    /// (serenity 0.12's `create_interaction_response` cannot ask for it).
    pub(crate) async fn interaction_reply(
        &self,
        id: InteractionId,
        token: &str,
        body: &Value,
    ) -> Result<Option<MessageId>, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| format!("cannot encode: {e}"))?;
        let req = Request::new(
            Route::InteractionResponse {
                interaction_id: id,
                token,
            },
            LightMethod::Post,
        )
        .body(Some(bytes))
        .params(Some(vec![("with_response", "true".to_string())]));
        let req = req
            .build(&self.client, &self.auth, self.base.as_deref())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let resp = req
            .send()
            .await
            .map_err(|e| format!("network error: {}", without_url(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "{} {}",
                status.as_u16(),
                text.chars().take(200).collect::<String>()
            ));
        }
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(json["resource"]["message"]["id"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n != 0)
            .map(MessageId::new))
    }
}

/// A reqwest error without the URL (which could, with a proxy, carry more
/// than we want in logs).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

fn refusal(status: u16, code: i64, what: &str, channel: ChannelId) -> String {
    match (status, code) {
        (403, _) => format!("discord refused ({what}): give the bot View Channel, Send Messages, Embed Links and Create Public Threads in channel {channel}"),
        (404, _) => format!("discord does not know channel {channel} ({what}): fix targets.discord.channel in routing.yaml"),
        _ => format!("discord refused the case message ({what})"),
    }
}

/// Classifies an error from a serenity call made during a delivery.
fn classify(e: &serenity::Error, what: &str) -> Fail {
    match status_of(e) {
        // serenity does not expose retry_after; wait a conservative while.
        Some(429) => Fail::RateLimited(Duration::from_secs(2), format!("{what}: rate limited")),
        Some(s) if s >= 500 => Fail::Transient(format!("{what}: discord server error {s}")),
        Some(s) => Fail::Permanent(format!(
            "{what}: discord refused ({s}, code {})",
            code_of(e).unwrap_or(0)
        )),
        None => Fail::Transient(format!("{what}: {e}")),
    }
}

/// The `direction` of a recorded message that continues a case's sheet in
/// its thread (see [`RelayMessage`]).
pub(crate) const SHEET_PIECE: &str = "case_sheet";

/// Deliveries read from the outbox at a time.
const BATCH: i64 = 20;

/// Runs until `stop` turns true: delivers what is due, then sleeps until
/// woken (a new case) or the poll interval passes. A full batch means more
/// may be due, so the next is read at once: many cases finishing together
/// (one wake-up for all of them) must not wait a poll interval per batch.
pub(crate) async fn run_worker(bot: Arc<Bot>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        match bot.deliver_due(&stop).await {
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "the delivery worker cannot read the outbox; retrying")
            }
        }
        tokio::select! {
            _ = bot.wake.notified() => {}
            _ = tokio::time::sleep(bot.cfg.outbox.poll_interval()) => {}
            _ = stop.changed() => {}
        }
    }
}

impl Bot {
    async fn deliver_due(
        &self,
        stop: &watch::Receiver<bool>,
    ) -> Result<usize, crate::store::StoreError> {
        let now = self.runner.clock().now();
        let due = self.store.due_deliveries("discord", now, BATCH).await?;
        let n = due.len();
        for d in due {
            if *stop.borrow() {
                break;
            }
            let result = self.try_deliver(&d).await;
            let now = self.runner.clock().now();
            let outcome = match result {
                Ok(mid) => {
                    tracing::info!(delivery = d.id, case = %d.case, hub = %d.hub_id, message = %mid, "case posted");
                    AttemptOutcome::Delivered {
                        external_id: Some(mid.to_string()),
                    }
                }
                Err(Fail::RateLimited(wait, error)) => {
                    tracing::warn!(delivery = d.id, case = %d.case, wait_ms = wait.as_millis() as u64, "case delivery rate limited");
                    AttemptOutcome::Retry {
                        at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                        error,
                    }
                }
                Err(Fail::Transient(error)) if d.attempts + 1 < self.cfg.outbox.max_attempts => {
                    let wait = self.cfg.outbox.backoff(d.attempts);
                    tracing::warn!(delivery = d.id, case = %d.case, attempt = d.attempts + 1, error = %error, "case delivery failed; will retry");
                    AttemptOutcome::Retry {
                        at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                        error,
                    }
                }
                Err(Fail::Transient(error)) | Err(Fail::Permanent(error)) => {
                    tracing::error!(delivery = d.id, case = %d.case, hub = %d.hub_id, error = %error, "case delivery failed for good; see `madoguchi cases show`");
                    AttemptOutcome::Failed { error }
                }
            };
            self.store.record_attempt(d.id, &outcome, now).await?;
        }
        Ok(n)
    }

    /// One attempt: the case message (once), carrying the intro; the thread
    /// and what continues there only when the post could not hold it all.
    async fn try_deliver(&self, d: &DeliveryRecord) -> Result<MessageId, Fail> {
        let store_err = |e: crate::store::StoreError| Fail::Transient(format!("store: {e}"));
        let case = self
            .store
            .case(d.case)
            .await
            .map_err(store_err)?
            .ok_or_else(|| Fail::Permanent("the case no longer exists".into()))?;
        let channel = d
            .target
            .parse::<u64>()
            .ok()
            .filter(|c| *c != 0)
            .map(ChannelId::new)
            .ok_or_else(|| {
                Fail::Permanent(format!(
                    "`{}` is not a channel id: fix targets.discord.channel of {} in routing.yaml",
                    d.target, d.hub_id
                ))
            })?;
        let view = self.post_view(&case, &d.hub_id);
        let (content, intro_rest, role) = self.post_text(&case, &d.hub_id).await;

        // 1. The message, exactly once.
        let known = match d
            .external_id
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n != 0)
        {
            Some(m) => match self.http.get_message(channel, MessageId::new(m)).await {
                Ok(_) => Some(MessageId::new(m)),
                Err(e) if status_of(&e) == Some(404) => None,
                Err(e) => return Err(classify(&e, "checking the posted case")),
            },
            None => None,
        };
        let message = match known {
            Some(m) => m,
            None => {
                // A message we posted and that was deleted since: post anew.
                let nonce = if d.external_id.is_some() {
                    format!("mdg-d{}r{}", d.id, d.attempts)
                } else {
                    format!("mdg-d{}", d.id)
                };
                let body = json!({
                    "content": content,
                    "embeds": [view.embed],
                    "components": view.components,
                    "allowed_mentions": { "parse": [], "roles": role.map(|r| vec![r.to_string()]).unwrap_or_default() },
                    "nonce": render::truncate(&nonce, 25),
                    "enforce_nonce": true,
                });
                let m = self.raw.create_message(channel, &body).await?;
                self.store
                    .set_delivery_external_id(d.id, &m.to_string())
                    .await
                    .map_err(store_err)?;
                m
            }
        };
        // The stored post keeps its thread only while the message is the
        // same: a thread belongs to the message it was started from.
        let thread_id = self
            .store
            .case_posts(case.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .find(|p| p.hub_id == d.hub_id && p.message_id == message.to_string())
            .and_then(|p| p.thread_id);
        let post = CasePost {
            case: case.id,
            hub_id: d.hub_id.clone(),
            transport: "discord".into(),
            channel_id: channel.to_string(),
            message_id: message.to_string(),
            thread_id,
            created_at: self.runner.clock().now(),
        };
        self.store.save_case_post(&post).await.map_err(store_err)?;

        // 2. Only when something did not fit in the post (a summary too long
        // for the embed, an intro too long for the content): the thread, and
        // the rest in it. Nonces again, so a retried delivery does not
        // repeat a piece. Otherwise the thread waits for its first use.
        let rest: Vec<String> = intro_rest.into_iter().chain(view.overflow).collect();
        if !rest.is_empty() {
            let thread = match self.ensure_thread(&post, &case.headline).await {
                Ok(t) => t,
                Err(BotError::Api(e)) => return Err(classify(&e, "creating the case thread")),
                Err(e) => return Err(Fail::Transient(format!("creating the case thread: {e}"))),
            };
            for (i, text) in rest.into_iter().enumerate() {
                let body = json!({ "content": text, "nonce": format!("mdg-d{}t{}", d.id, i), "enforce_nonce": true });
                let sent = self
                    .send(thread, body)
                    .await
                    .map_err(|e| classify(&e, "posting in the case thread"))?;
                // The rest of the sheet holds the owner's answers: recorded
                // like a relayed message, so that `/forget` deletes it too.
                // (A retry gets the same message back through its nonce
                // and records it again; deletion goes by message id.)
                self.store
                    .add_relay_message(&RelayMessage {
                        case: case.id,
                        user: case.user.clone(),
                        direction: SHEET_PIECE.into(),
                        channel_id: thread.to_string(),
                        message_id: sent.id.to_string(),
                        at: self.runner.clock().now(),
                    })
                    .await
                    .map_err(store_err)?;
            }
        }
        Ok(message)
    }
}
