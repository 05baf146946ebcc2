//! Discord's [`Sender`] for the outbox ([`crate::outbox`]): posts routed
//! cases to the hubs' channels, never losing or duplicating one.
//!
//! - The outbox worker leases the `discord` deliveries, calls
//!   [`DiscordSender::send`] outside any transaction and records the
//!   result; this file only knows how to post one case.
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
//! - When an earlier attempt's outcome is unknown and no message id was
//!   stored (the worker died between Discord's answer and storing the id,
//!   and its lease was taken over after the nonce's few minutes had
//!   passed), [`DiscordSender::find_existing`] looks for the case's post
//!   among the channel's recent messages: a bot message whose embed footer
//!   names the case and that no other hub's post of the case is.
//! - Failures are classified for the worker ([`Fail`]): 5xx and network
//!   errors are transient (exponential backoff), 429 waits exactly
//!   `retry_after` and holds back the channel's message route, other 4xx
//!   (missing permission, unknown channel) fail at once with the reason.
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
use crate::outbox::{Fail, RelayProgress, Sender, Sent};
use crate::store::{CasePost, CaseRecord, DeliveryRecord, RelayKind, RelayMessage, RelayRecord};
use async_trait::async_trait;
use serde_json::{json, Value};
use serenity::all::{ChannelId, InteractionId, MessageId};
use serenity::http::{LightMethod, Request, Route};
use std::sync::Arc;
use std::time::Duration;

/// Message creation with a readable response.
pub(crate) struct RawApi {
    client: reqwest::Client,
    base: Option<String>,
    auth: String,
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
            return Err(Fail::RetryAfter {
                wait: Duration::from_millis((secs * 1000.0).ceil() as u64),
                scope: Some(message_route(channel)),
                error: format!("rate limited ({what})"),
            });
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
        Some(429) => Fail::RetryAfter {
            wait: Duration::from_secs(2),
            scope: None,
            error: format!("{what}: rate limited"),
        },
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

/// The rate-limit scope of posting in a channel: Discord's bucket for
/// `POST /channels/{id}/messages` is per channel.
fn message_route(channel: impl std::fmt::Display) -> String {
    format!("discord POST /channels/{channel}/messages")
}

/// Posts cases for the outbox. It needs the bot's HTTP client and
/// configuration, not its gateway connection, so it runs on an instance
/// that does not lead (see [`super::sender`]).
pub struct DiscordSender {
    pub(crate) bot: Arc<Bot>,
}

#[async_trait]
impl Sender for DiscordSender {
    fn transport(&self) -> &str {
        "discord"
    }

    fn scope(&self, d: &DeliveryRecord) -> Option<String> {
        Some(message_route(&d.target))
    }

    async fn find_existing(
        &self,
        d: &DeliveryRecord,
        case: &CaseRecord,
    ) -> Result<Option<String>, Fail> {
        self.bot.find_case_message(d, case).await
    }

    fn relays(&self) -> bool {
        true
    }

    async fn send_relay(
        &self,
        r: &RelayRecord,
        body: &crate::relay::Body,
        case: &CaseRecord,
        progress: &RelayProgress<'_>,
    ) -> Result<(), Fail> {
        self.bot.try_relay(r, body, case, progress).await
    }

    /// Every post and message is tried; a message already gone counts as
    /// done, so the whole job can run again. Any other failure is given
    /// to the outbox (the one most worth retrying: a rate limit, then a
    /// server or network error, then a refusal), which retries the job
    /// with its backoff and marks it failed with the reason after
    /// `max_attempts`.
    async fn erase(&self, r: &RelayRecord, job: &crate::relay::Erase) -> Result<(), Fail> {
        let mut failed = Vec::new();
        for p in job.case_posts(r.case, "discord", r.created_at) {
            failed.extend(self.bot.tombstone_post(&p).await);
        }
        let messages: Vec<(String, String)> = job
            .messages
            .iter()
            .map(|m| (m.channel_id.clone(), m.message_id.clone()))
            .collect();
        failed.extend(self.bot.delete_relayed(&messages).await);
        let rank = |f: &Fail| match f {
            Fail::RetryAfter { .. } => 2,
            Fail::Transient(_) => 1,
            Fail::Permanent(_) => 0,
        };
        let n = failed.len();
        match failed
            .iter()
            .map(|e| classify(e, "erasing a forgotten owner's case"))
            .max_by_key(rank)
        {
            None => Ok(()),
            Some(Fail::Permanent(e)) => Err(Fail::Permanent(format!("{e} ({n} call(s) failed)"))),
            Some(Fail::Transient(e)) => Err(Fail::Transient(format!("{e} ({n} call(s) failed)"))),
            Some(f) => Err(f),
        }
    }

    async fn refresh(&self, case: &CaseRecord, posts: &[CasePost], text: bool) -> Result<(), Fail> {
        for p in posts {
            if let Some(Err(e)) = self.bot.refresh_post(case, p, text).await {
                match classify(&e, "editing a case post") {
                    Fail::Permanent(why) => {
                        tracing::warn!(case = %case.id, message = %p.message_id, error = %why, "a case post cannot be refreshed; left as it is")
                    }
                    f => return Err(f),
                }
            }
        }
        Ok(())
    }

    async fn send(&self, d: &DeliveryRecord, case: &CaseRecord) -> Result<Sent, Fail> {
        let m = self.bot.try_deliver(d, case).await?;
        tracing::info!(delivery = d.id, case = %d.case, hub = %d.hub_id, message = %m, "case posted");
        Ok(Sent {
            external_id: Some(m.to_string()),
        })
    }
}

fn channel_of(d: &DeliveryRecord) -> Result<ChannelId, Fail> {
    d.target
        .parse::<u64>()
        .ok()
        .filter(|c| *c != 0)
        .map(ChannelId::new)
        .ok_or_else(|| {
            Fail::Permanent(format!(
                "`{}` is not a channel id: fix targets.discord.channel of {} in routing.yaml",
                d.target, d.hub_id
            ))
        })
}

/// How many messages one page of the search for a lost post reads.
const SEARCH_LIMIT: u8 = 100;

/// The most pages read back: a busy channel (a network's shared desk,
/// hundreds of cases while a dead instance's lease ran out) has many posts
/// after the lost one, so the latest page alone missed it and the case was
/// posted twice.
const SEARCH_PAGES: usize = 10;

impl Bot {
    /// One attempt at a relay message ([`crate::relay`]): the owner's DM,
    /// or the thread of the case's post for the hub (made on first use).
    /// Each piece carries the nonce `mdg-r{relay}p{piece}` with
    /// `enforce_nonce`, so a retry after an unknown outcome gets the
    /// earlier message back instead of a second one; a retry after
    /// Discord's nonce window first looks for the piece in the channel
    /// ([`Bot::find_relay_piece`]).
    async fn try_relay(
        &self,
        r: &RelayRecord,
        body: &crate::relay::Body,
        case: &CaseRecord,
        progress: &RelayProgress<'_>,
    ) -> Result<(), Fail> {
        let lang =
            crate::relay::reader_lang(self.store.as_ref(), r, self.cfg.discord.default_lang).await;
        let mut text = body
            .texts
            .iter()
            .map(|t| self.render_text(lang, t))
            .collect::<Vec<_>>()
            .join("\n");
        // A forward to a hub that had a copy pings its staff role here, as
        // the Discord button does (see `relay::Body::ping`).
        let ping_role = (r.kind == RelayKind::ToHub && body.ping)
            .then(|| self.hub_target(&r.target).and_then(|t| t.staff_role))
            .flatten();
        if let Some(role) = ping_role {
            text = format!("<@&{role}> {text}");
        }
        let channel = match r.kind {
            RelayKind::ToOwner => {
                let user = r
                    .target
                    .parse::<u64>()
                    .ok()
                    .filter(|u| *u != 0)
                    .ok_or_else(|| {
                        Fail::Permanent(format!("`{}` is not a Discord user", r.target))
                    })?;
                self.dm_channel(serenity::all::UserId::new(user))
                    .await
                    .map_err(|e| classify(&e, "opening the owner's DM"))?
            }
            RelayKind::Erase | RelayKind::Refresh => {
                return Err(Fail::Permanent(
                    "an erase or refresh job has no message to post".into(),
                ))
            }
            RelayKind::ToHub => {
                let posts = self
                    .store
                    .case_posts(case.id)
                    .await
                    .map_err(|e| Fail::Transient(format!("store: {e}")))?;
                let Some(post) = posts
                    .into_iter()
                    .find(|p| p.transport == "discord" && p.hub_id == r.target)
                else {
                    // The case post is still in the outbox: wait for it,
                    // without counting this as a failed attempt.
                    return Err(Fail::RetryAfter {
                        wait: Duration::from_secs(5),
                        scope: None,
                        error: "the case is not posted in the hub's channel yet".into(),
                    });
                };
                match self.ensure_thread(&post, &case.headline).await {
                    Ok(t) => t,
                    // Without Create Public Threads the message still
                    // reaches staff, in the channel.
                    Err(BotError::Api(e)) if status_of(&e).is_some_and(|s| s < 500 && s != 429) => {
                        tracing::warn!(case = %case.id, error = %e, "could not make the case thread; relaying to the channel");
                        ChannelId::new(post.channel_id.parse::<u64>().unwrap_or(0).max(1))
                    }
                    Err(BotError::Api(e)) => return Err(classify(&e, "creating the case thread")),
                    Err(e) => {
                        return Err(Fail::Transient(format!("creating the case thread: {e}")))
                    }
                }
            }
        };
        let pieces = render::split_text(&text, 1900);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate().skip(progress.done()) {
            // Only the first piece still to post can have been made by an
            // attempt whose outcome is unknown: each piece is recorded
            // before the next is sent. The nonce below covers a retry in
            // Discord's window; this covers one after it.
            if progress.unknown() && i == progress.done() {
                if let Some(m) = self.find_relay_piece(r, channel, piece).await? {
                    tracing::info!(relay = r.id, case = %r.case, piece = i, "found the piece an earlier attempt posted; not posting it again");
                    if !progress
                        .posted(&channel.to_string(), &m.to_string())
                        .await?
                    {
                        self.delete_for_forgotten(channel, m).await;
                        return Err(Fail::Permanent("the owner deleted their data".into()));
                    }
                    continue;
                }
            }
            let mut msg = json!({
                "content": piece,
                "allowed_mentions": { "parse": [] },
                "nonce": format!("mdg-r{}p{}", r.id, i),
                "enforce_nonce": true,
            });
            if let (Some(role), 0) = (ping_role, i) {
                msg["allowed_mentions"] = json!({ "parse": [], "roles": [role.to_string()] });
            }
            if let (Some(req), true) = (body.ask, i == last) {
                msg["components"] = json!([render::row(vec![
                    render::button(
                        &format!("f:y:{req}"),
                        &self.render_text(lang, &crate::desk::Text::new("owner.agree")),
                        render::STYLE_SUCCESS
                    ),
                    render::button(
                        &format!("f:n:{req}"),
                        &self.render_text(lang, &crate::desk::Text::new("owner.disagree")),
                        render::STYLE_SECONDARY
                    ),
                ])]);
            }
            let m = self.raw.create_message(channel, &msg).await?;
            if !progress
                .posted(&channel.to_string(), &m.to_string())
                .await?
            {
                // The owner was forgotten meanwhile: the piece goes again.
                self.delete_for_forgotten(channel, m).await;
                return Err(Fail::Permanent("the owner deleted their data".into()));
            }
        }
        Ok(())
    }

    /// The message of an earlier attempt at `d` whose id was never stored:
    /// one by a bot whose embed footer is this case's (`madoguchi · C-…`)
    /// and that is not the recorded post of another hub (two hubs may share
    /// a channel). The channel is read back page by page until messages
    /// older than the case (by their ids' time, less a minute for clocks),
    /// at most [`SEARCH_PAGES`] pages; the oldest such post is the one to
    /// keep.
    async fn find_case_message(
        &self,
        d: &DeliveryRecord,
        case: &CaseRecord,
    ) -> Result<Option<String>, Fail> {
        let channel = channel_of(d)?;
        let footer = format!("madoguchi · {}", case.id);
        let others: Vec<String> = self
            .store
            .case_posts(case.id)
            .await
            .map_err(|e| Fail::Transient(format!("store: {e}")))?
            .into_iter()
            .filter(|p| p.hub_id != d.hub_id)
            .map(|p| p.message_id)
            .collect();
        let since = case.created_at - chrono::Duration::minutes(1);
        let found = self
            .search_channel(channel, since, "an earlier post of the case", |m| {
                m.author.bot
                    && !others.contains(&m.id.to_string())
                    && m.embeds
                        .iter()
                        .any(|e| e.footer.as_ref().is_some_and(|f| f.text == footer))
            })
            .await?;
        Ok(found.map(|m| m.to_string()))
    }

    /// The oldest of the channel's messages since `since` for which
    /// `wanted` holds: the channel is read back page by page (newest
    /// first) until messages older than `since` (by their ids' time), at
    /// most [`SEARCH_PAGES`] pages. What a post whose outcome was unknown
    /// (a case post, a relayed piece) is looked for with before it is
    /// made again.
    async fn search_channel(
        &self,
        channel: ChannelId,
        since: chrono::DateTime<chrono::Utc>,
        what: &str,
        wanted: impl Fn(&serenity::all::Message) -> bool,
    ) -> Result<Option<MessageId>, Fail> {
        let mut found = None;
        let mut before: Option<MessageId> = None;
        for _ in 0..SEARCH_PAGES {
            let page = self
                .http
                .get_messages(
                    channel,
                    before.map(serenity::all::MessagePagination::Before),
                    Some(SEARCH_LIMIT),
                )
                .await
                .map_err(|e| classify(&e, &format!("looking for {what}")))?;
            // Newest first: the last match is the oldest so far.
            if let Some(m) = page.iter().rev().find(|m| wanted(m)) {
                found = Some(m.id);
            }
            let Some(oldest) = page.last() else { break };
            let older =
                chrono::DateTime::from_timestamp(oldest.id.created_at().unix_timestamp(), 0)
                    .is_some_and(|t| t < since);
            if page.len() < SEARCH_LIMIT as usize || older {
                break;
            }
            before = Some(oldest.id);
        }
        Ok(found)
    }

    /// Deletes a relayed piece recorded after its owner was forgotten.
    async fn delete_for_forgotten(&self, channel: ChannelId, m: MessageId) {
        if let Err(e) = self
            .http
            .delete_message(channel, m, Some("the owner deleted their data"))
            .await
        {
            tracing::warn!(error = %e, "could not delete a relayed message of a forgotten owner");
        }
    }

    /// A piece of relay message `r` that an earlier attempt may have
    /// posted without learning so (a response lost after Discord made the
    /// message, past the nonce's few minutes). Discord keeps nothing but
    /// the text of a plain message, so the marker is the piece itself:
    /// the bot's own message in `channel` with exactly this text, made
    /// after the relay was queued (less a minute for clocks), that is not
    /// already recorded for another relay message of the owner (the same
    /// words relayed twice are two messages).
    async fn find_relay_piece(
        &self,
        r: &RelayRecord,
        channel: ChannelId,
        piece: &str,
    ) -> Result<Option<MessageId>, Fail> {
        let recorded: std::collections::HashSet<String> = self
            .store
            .relay_messages_of_user(&r.user)
            .await
            .map_err(|e| Fail::Transient(format!("store: {e}")))?
            .into_iter()
            .map(|m| m.message_id)
            .collect();
        let since = r.created_at - chrono::Duration::minutes(1);
        let piece = piece.trim();
        self.search_channel(
            channel,
            since,
            "an earlier post of a relayed message",
            |m| {
                m.author.bot
                    && m.content.trim() == piece
                    && !recorded.contains(&m.id.to_string())
                    && chrono::DateTime::from_timestamp(m.id.created_at().unix_timestamp(), 0)
                        .is_some_and(|t| t >= since)
            },
        )
        .await
    }

    /// One attempt: the case message (once), carrying the intro; the thread
    /// and what continues there only when the post could not hold it all.
    async fn try_deliver(&self, d: &DeliveryRecord, case: &CaseRecord) -> Result<MessageId, Fail> {
        let store_err = |e: crate::store::StoreError| Fail::Transient(format!("store: {e}"));
        let channel = channel_of(d)?;
        let view = self.post_view(case, &d.hub_id);
        let (content, intro_rest, role) = self.post_text(case, &d.hub_id).await;

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
