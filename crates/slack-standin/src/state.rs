//! The stand-in's in-memory Slack workspace: users, channels, messages, views, triggers,
//! recorded Web API calls, injected faults and Socket Mode connections with their
//! envelopes and acknowledgements.
//!
//! Everything lives behind one `std::sync::Mutex<State>` (never held across an `.await`);
//! every change wakes waiters through a `tokio::sync::Notify`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use crate::model::{self, TsClock};

/// How long Slack waits for a Socket Mode acknowledgement before it shows the user an
/// error (interactions) or retries (events).
pub const ACK_DEADLINE: Duration = Duration::from_secs(3);

/// One Web API request the bot made, in arrival order.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// Position in `calls()`.
    pub index: usize,
    /// The Web API method, e.g. `chat.postMessage`.
    pub method: String,
    /// `GET` or `POST`.
    pub http_method: String,
    /// Every parameter, merged from the query string and the body (form or JSON), with
    /// the JSON-in-form fields (`blocks`, `metadata`, `view`) parsed. Never the token.
    pub params: Value,
    /// `bot`, `app`, `none` or `invalid`: which token the call carried.
    pub token_kind: &'static str,
    /// HTTP status answered (200 for `ok:false` answers too, as Slack does).
    pub status: u16,
    /// The JSON answered (`Value::Null` when the connection was dropped instead).
    pub response: Value,
    /// Set when the answer came from an injected fault: `rate_limited`, `status`,
    /// `dropped_after_commit`.
    pub injected: Option<&'static str>,
    /// When the request reached the stand-in.
    pub at: Instant,
}

impl ApiCall {
    /// `ok: true` in the answer.
    pub fn ok(&self) -> bool {
        self.response["ok"] == true
    }
    /// The `error` of an `ok: false` answer.
    pub fn error(&self) -> Option<&str> {
        self.response["error"].as_str()
    }
    /// A parameter as a string (`""` when absent).
    pub fn param(&self, key: &str) -> &str {
        self.params[key].as_str().unwrap_or("")
    }
}

/// One Socket Mode envelope sent (or queued) to the bot.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub envelope_id: String,
    /// `events_api`, `interactive` or `slash_commands`.
    pub kind: &'static str,
    /// The inner payload's type: the event type (`message`, `app_home_opened`), the
    /// interaction type (`block_actions`, `view_submission`, …) or the command (`/consult`).
    pub subtype: String,
    /// The whole frame as sent.
    pub frame: Value,
    /// Connection it was written to (None while queued for lack of a live connection).
    pub conn: Option<u64>,
    /// When it was written to a connection.
    pub sent_at: Option<Instant>,
    pub retry_attempt: u32,
    pub ack: Option<Ack>,
    /// Its ack will be recorded as lost (`SlackStandIn::lose_next_acks`).
    pub lose_ack: bool,
}

impl Envelope {
    pub fn payload(&self) -> &Value {
        &self.frame["payload"]
    }
    /// Acknowledged (and the ack was not made to get lost) within 3 s of sending.
    pub fn acked_in_time(&self) -> bool {
        self.ack
            .as_ref()
            .is_some_and(|a| !a.lost && a.within_deadline)
    }
}

/// The bot's acknowledgement of an envelope.
#[derive(Clone, Debug)]
pub struct Ack {
    pub at: Instant,
    /// From sending the envelope to receiving the ack.
    pub latency: Duration,
    /// `latency <= 3 s` (Slack's deadline).
    pub within_deadline: bool,
    /// The ack's `payload` (slash command reply, `response_action` of a view submission).
    pub payload: Option<Value>,
    /// Dropped on purpose by `lose_next_acks`: Slack behaves as if it never came.
    pub lost: bool,
    /// The connection it came on.
    pub conn: u64,
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    RateLimited {
        retry_after_secs: u64,
    },
    Status {
        status: u16,
        body: Value,
    },
    /// Carry the call out, then close the connection without an answer.
    DropAfterCommit,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub method: String,
    pub kind: FaultKind,
    pub remaining: usize,
    /// Only calls whose parameters, as JSON text, contain this.
    pub params_contain: Option<String>,
}

#[derive(Debug)]
pub enum Out {
    Text(String),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Send a close frame, then end the connection.
    Close(u16, String),
}

#[derive(Debug)]
pub struct Conn {
    pub tx: UnboundedSender<Out>,
    /// `hello` written; envelopes may follow.
    pub ready: bool,
    /// A `disconnect` was sent: no new envelopes go to it.
    pub draining: bool,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub is_admin: bool,
    pub is_bot: bool,
    pub locale: String,
}

#[derive(Clone, Debug)]
pub struct Channel {
    pub name: String,
    /// `channel` (public), `group` (private) or `im`.
    pub kind: &'static str,
    pub members: BTreeSet<String>,
    /// Top-level messages (and thread broadcasts), oldest first.
    pub timeline: Vec<String>,
}

/// A message in a channel: Slack's own message object plus the stand-in's bookkeeping.
#[derive(Clone, Debug)]
pub struct Msg {
    pub channel: String,
    pub ts: String,
    /// The message as `conversations.history` returns it with `include_all_metadata`.
    pub json: Value,
    pub thread_ts: Option<String>,
    /// Replies (ts), oldest first, when this is a thread's parent.
    pub replies: Vec<String>,
    pub deleted: bool,
}

/// An ephemeral message (only `user` sees it; not in history).
#[derive(Clone, Debug)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub json: Value,
    /// `chat.postEphemeral`, `slash_command_ack`, `response_url`.
    pub source: &'static str,
}

#[derive(Clone, Debug)]
pub struct Trigger {
    pub user: String,
    pub issued_at: Instant,
    pub used: bool,
}

/// A modal the bot opened for a user.
#[derive(Clone, Debug)]
pub struct ViewRec {
    pub id: String,
    pub user: String,
    /// The view as Slack returns it (`id`, `hash`, `state`, …).
    pub json: Value,
    pub open: bool,
    /// How old the trigger was when `views.open` used it.
    pub trigger_age: Option<Duration>,
}

/// What a `response_url` answers for.
#[derive(Clone, Debug)]
pub struct ResponseUrl {
    pub channel: String,
    pub user: String,
    pub message_ts: Option<String>,
    pub uses: usize,
}

pub struct State {
    pub team_id: String,
    pub team_domain: String,
    pub app_id: String,
    pub bot_user_id: String,
    pub bot_id: String,
    pub bot_name: String,
    pub bot_token: String,
    pub app_token: String,
    pub http_base: String,
    pub ws_base: String,
    pub echo_bot_messages: bool,
    pub check_models: bool,
    pub trigger_ttl: Option<Duration>,

    pub clock: TsClock,
    pub counter: u64,
    pub users: BTreeMap<String, User>,
    pub channels: BTreeMap<String, Channel>,
    pub dms: HashMap<String, String>,
    pub usergroups: BTreeMap<String, (String, Vec<String>)>,
    pub messages: HashMap<String, Msg>,
    pub ephemerals: Vec<Ephemeral>,
    pub triggers: HashMap<String, Trigger>,
    pub views: BTreeMap<String, ViewRec>,
    pub response_urls: HashMap<String, ResponseUrl>,
    /// What each user has set in the stateful elements (checkboxes,
    /// selects) of each message, by (user, message ts): Slack sends it as
    /// `state.values` with every later `block_actions` on that message, so
    /// a "done" button carries the boxes ticked before it.
    pub element_states: HashMap<(String, String), Value>,

    pub calls: Vec<ApiCall>,
    /// Receivers of every call as it is recorded (`subscribe_calls`).
    pub call_subscribers: Vec<tokio::sync::mpsc::UnboundedSender<ApiCall>>,
    pub faults: Vec<Fault>,
    pub errors: Vec<String>,

    pub conns: BTreeMap<u64, Conn>,
    pub next_conn: u64,
    pub connections_total: usize,
    pub tickets: HashMap<String, bool>,
    pub rr: usize,
    pub envelopes: Vec<Envelope>,
    pub by_envelope: HashMap<String, usize>,
    /// Envelopes waiting for a live connection (indexes into `envelopes`).
    pub pending: VecDeque<usize>,
    /// How many of the next envelopes get `lose_ack`.
    pub lose_acks: usize,
    pub unknown_acks: Vec<String>,
    pub disconnects_sent: usize,
    pub drops: usize,
}

pub struct Shared {
    pub state: Mutex<State>,
    pub changed: Notify,
    pub wait_timeout: Mutex<Duration>,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn notify(&self) {
        self.changed.notify_waiters();
    }
}

impl State {
    pub fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub fn new_id(&mut self, prefix: &str) -> String {
        let n = self.next();
        format!("{prefix}0{}", model::suffix(n, 8))
    }

    pub fn user_name(&self, id: &str) -> String {
        self.users
            .get(id)
            .map(|u| u.name.clone())
            .unwrap_or_else(|| id.to_lowercase())
    }

    pub fn ensure_user(&mut self, id: &str) {
        if !self.users.contains_key(id) {
            self.users.insert(
                id.to_string(),
                User {
                    id: id.to_string(),
                    name: id.to_lowercase(),
                    real_name: id.to_string(),
                    is_admin: false,
                    is_bot: false,
                    locale: "ja-JP".into(),
                },
            );
        }
    }

    /// The app's DM with `user` (Slack's `D…` channel), created on first use.
    pub fn ensure_dm(&mut self, user: &str) -> String {
        if let Some(d) = self.dms.get(user) {
            return d.clone();
        }
        let id = self.new_id("D");
        let mut members = BTreeSet::new();
        members.insert(user.to_string());
        members.insert(self.bot_user_id.clone());
        self.channels.insert(
            id.clone(),
            Channel {
                name: id.clone(),
                kind: "im",
                members,
                timeline: vec![],
            },
        );
        self.dms.insert(user.to_string(), id.clone());
        id
    }

    pub fn user_json(&self, id: &str, include_locale: bool) -> Option<Value> {
        let u = self.users.get(id)?;
        let mut v = json!({
            "id": u.id,
            "team_id": self.team_id,
            "name": u.name,
            "deleted": false,
            "color": "9f69e7",
            "real_name": u.real_name,
            "tz": "Asia/Tokyo",
            "tz_label": "Japan Standard Time",
            "tz_offset": 32400,
            "profile": {
                "real_name": u.real_name,
                "real_name_normalized": u.real_name,
                "display_name": u.name,
                "display_name_normalized": u.name,
                "team": self.team_id,
                "avatar_hash": "standin",
                "image_48": "https://standin.invalid/avatar_48.png",
            },
            "is_admin": u.is_admin,
            "is_owner": false,
            "is_primary_owner": false,
            "is_restricted": false,
            "is_ultra_restricted": false,
            "is_bot": u.is_bot,
            "is_app_user": false,
            "updated": self.clock.now_secs(),
        });
        if include_locale {
            v["locale"] = json!(u.locale);
        }
        Some(v)
    }

    pub fn basic_user(&self, id: &str) -> Value {
        let name = self.user_name(id);
        json!({ "id": id, "username": name, "name": name, "team_id": self.team_id })
    }

    pub fn team_json(&self) -> Value {
        json!({ "id": self.team_id, "domain": self.team_domain })
    }

    pub fn bot_profile(&self) -> Value {
        json!({
            "id": self.bot_id,
            "deleted": false,
            "name": self.bot_name,
            "updated": self.clock.now_secs(),
            "app_id": self.app_id,
            "icons": { "image_36": "https://standin.invalid/bot_36.png" },
            "team_id": self.team_id,
        })
    }

    /// A trigger id as Slack issues them with every interaction and slash command.
    pub fn issue_trigger(&mut self, user: &str) -> String {
        let n = self.next();
        let t = format!("{}.{}.{:032x}", n, self.clock.now_secs(), n * 7919 + 13);
        self.triggers.insert(
            t.clone(),
            Trigger {
                user: user.to_string(),
                issued_at: Instant::now(),
                used: false,
            },
        );
        t
    }

    pub fn issue_response_url(
        &mut self,
        channel: &str,
        user: &str,
        message_ts: Option<&str>,
    ) -> String {
        let n = self.next();
        let token = format!(
            "{}/{}/{}",
            self.team_id,
            n,
            model::uuid_like(n, 77).replace('-', "")
        );
        self.response_urls.insert(
            token.clone(),
            ResponseUrl {
                channel: channel.to_string(),
                user: user.to_string(),
                message_ts: message_ts.map(str::to_string),
                uses: 0,
            },
        );
        format!("{}/actions/{token}", self.http_base)
    }

    pub fn check(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.errors.push(e);
        }
    }

    // ------------------------------------------------------------------ messages

    /// Store a new message and return its ts. `thread_ts` makes it a reply (the parent's
    /// `reply_count`, `reply_users`, `latest_reply` follow, as Slack keeps them).
    pub fn insert_message(
        &mut self,
        channel: &str,
        mut json: Value,
        thread_ts: Option<&str>,
        broadcast: bool,
    ) -> String {
        let ts = self.clock.next_ts();
        json["ts"] = json!(ts);
        json["type"] = json!("message");
        let thread_ts = thread_ts.map(str::to_string);
        if let Some(parent) = &thread_ts {
            json["thread_ts"] = json!(parent);
            let author = json["user"].as_str().unwrap_or("").to_string();
            if let Some(p) = self.messages.get_mut(parent) {
                p.replies.push(ts.clone());
                json["parent_user_id"] = p.json["user"].clone();
                let pj = &mut p.json;
                pj["thread_ts"] = json!(parent);
                pj["reply_count"] = json!(p.replies.len());
                pj["latest_reply"] = json!(ts);
                let mut users: Vec<String> = pj["reply_users"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|u| u.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if !author.is_empty() && !users.contains(&author) {
                    users.push(author);
                }
                pj["reply_users_count"] = json!(users.len());
                pj["reply_users"] = json!(users);
            }
            if broadcast {
                json["subtype"] = json!("thread_broadcast");
            }
        }
        if thread_ts.is_none() || broadcast {
            if let Some(c) = self.channels.get_mut(channel) {
                c.timeline.push(ts.clone());
            }
        }
        self.messages.insert(
            ts.clone(),
            Msg {
                channel: channel.to_string(),
                ts: ts.clone(),
                json,
                thread_ts,
                replies: vec![],
                deleted: false,
            },
        );
        ts
    }

    /// A message as the Web API returns it: metadata only when asked for.
    pub fn public_message(&self, ts: &str, with_metadata: bool) -> Option<Value> {
        let m = self.messages.get(ts)?;
        let mut v = m.json.clone();
        if !with_metadata {
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
            }
        }
        Some(v)
    }

    // ------------------------------------------------------------------ socket mode

    /// The live connection the next envelope goes to (round robin over ready, not
    /// draining connections), like Slack spreading envelopes over an app's connections.
    pub fn pick_conn(&mut self) -> Option<u64> {
        let live: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.ready && !c.draining)
            .map(|(id, _)| *id)
            .collect();
        if live.is_empty() {
            return None;
        }
        self.rr = self.rr.wrapping_add(1);
        Some(live[self.rr % live.len()])
    }

    pub fn live_connections(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.ready && !c.draining)
            .count()
    }

    /// Queue an envelope (`kind`, payload) for the bot: written at once to a live
    /// connection, or kept until one says `hello`. Returns the envelope id.
    pub fn enqueue(
        &mut self,
        kind: &'static str,
        subtype: String,
        payload: Value,
    ) -> Result<String, String> {
        let n = self.next();
        let envelope_id = model::uuid_like(n, 0x5eed);
        let accepts = match kind {
            "slash_commands" => true,
            "interactive" => matches!(
                payload["type"].as_str(),
                Some("view_submission" | "block_suggestion")
            ),
            _ => false,
        };
        let mut frame = json!({
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts,
        });
        if kind == "events_api" {
            frame["retry_attempt"] = json!(0);
            frame["retry_reason"] = json!("");
        }
        if self.check_models {
            model::check_frame(&frame)?;
        }
        let idx = self.envelopes.len();
        let lose_ack = self.lose_acks > 0;
        if lose_ack {
            self.lose_acks -= 1;
        }
        self.envelopes.push(Envelope {
            envelope_id: envelope_id.clone(),
            kind,
            subtype,
            frame,
            conn: None,
            sent_at: None,
            retry_attempt: 0,
            ack: None,
            lose_ack,
        });
        self.by_envelope.insert(envelope_id.clone(), idx);
        self.pending.push_back(idx);
        self.flush_pending();
        Ok(envelope_id)
    }

    /// Write queued envelopes to live connections.
    pub fn flush_pending(&mut self) {
        while let Some(&idx) = self.pending.front() {
            let Some(conn) = self.pick_conn() else { return };
            self.pending.pop_front();
            let text = self.envelopes[idx].frame.to_string();
            if let Some(c) = self.conns.get(&conn) {
                let _ = c.tx.send(Out::Text(text));
            }
            let e = &mut self.envelopes[idx];
            e.conn = Some(conn);
            e.sent_at = Some(Instant::now());
        }
    }

    /// A frame from the bot: an acknowledgement (`{"envelope_id": …, "payload": …}`).
    pub fn on_client_frame(&mut self, conn: u64, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            self.errors.push(format!(
                "the bot sent a Socket Mode frame that is not JSON: {text}"
            ));
            return;
        };
        let Some(id) = v["envelope_id"].as_str() else {
            self.errors.push(format!(
                "the bot sent a Socket Mode frame without envelope_id: {text}"
            ));
            return;
        };
        let Some(&idx) = self.by_envelope.get(id) else {
            self.unknown_acks.push(id.to_string());
            self.errors
                .push(format!("the bot acknowledged an unknown envelope {id}"));
            return;
        };
        let now = Instant::now();
        let lost = self.envelopes[idx].lose_ack;
        let payload = v.get("payload").cloned().filter(|p| !p.is_null());
        let env = &self.envelopes[idx];
        if env.ack.as_ref().is_some_and(|a| !a.lost) {
            self.errors
                .push(format!("the bot acknowledged envelope {id} twice"));
            return;
        }
        let latency = env.sent_at.map(|s| now - s).unwrap_or_default();
        let kind = env.kind;
        let frame_payload = env.frame["payload"].clone();
        self.envelopes[idx].ack = Some(Ack {
            at: now,
            latency,
            within_deadline: latency <= ACK_DEADLINE,
            payload: payload.clone(),
            lost,
            conn,
        });
        if lost {
            return;
        }
        if let Some(p) = payload {
            self.apply_ack_payload(kind, &frame_payload, &p);
        }
    }

    /// What Slack does with an ack's payload: a slash command's reply is shown (to the
    /// user only, unless `response_type: in_channel`); a view submission's
    /// `response_action` updates, pushes, clears or keeps the modal with errors.
    fn apply_ack_payload(&mut self, kind: &str, request: &Value, p: &Value) {
        match kind {
            "slash_commands" => {
                if p["text"].is_null() && p["blocks"].is_null() {
                    return;
                }
                let channel = request["channel_id"].as_str().unwrap_or("").to_string();
                let user = request["user_id"].as_str().unwrap_or("").to_string();
                if p["response_type"] == "in_channel" {
                    let mut m = self.bot_message_json(p);
                    m["channel"] = json!(channel);
                    self.insert_message(&channel, m, None, false);
                } else {
                    let ts = self.clock.next_ts();
                    let mut m = self.bot_message_json(p);
                    m["ts"] = json!(ts);
                    self.ephemerals.push(Ephemeral {
                        channel,
                        user,
                        ts,
                        thread_ts: None,
                        json: m,
                        source: "slash_command_ack",
                    });
                }
            }
            "interactive" if request["type"] == "view_submission" => {
                let view_id = request["view"]["id"].as_str().unwrap_or("").to_string();
                match p["response_action"].as_str() {
                    // The modal stays open, showing the errors under the inputs.
                    Some("errors") => {
                        if let Some(v) = self.views.get_mut(&view_id) {
                            v.json["standin_errors"] = p["errors"].clone();
                            v.open = true;
                        }
                    }
                    Some("update") => {
                        if let Some(v) = self.views.get_mut(&view_id) {
                            let mut nv = p["view"].clone();
                            for k in ["id", "team_id", "app_id", "bot_id", "root_view_id"] {
                                nv[k] = v.json[k].clone();
                            }
                            nv["hash"] = json!(format!(
                                "{}.{}",
                                view_id,
                                v.json["hash"].as_str().unwrap_or("").len() + 1
                            ));
                            nv["state"] = json!({ "values": {} });
                            v.json = nv;
                            v.open = true;
                        }
                    }
                    Some("push") => {
                        let user = request["user"]["id"].as_str().unwrap_or("").to_string();
                        let _ = self.open_view(&user, p["view"].clone(), Some(&view_id), None);
                    }
                    Some("clear") => {
                        for v in self.views.values_mut() {
                            if v.user == request["user"]["id"].as_str().unwrap_or("") {
                                v.open = false;
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A message written by the bot, from the content fields of a request.
    pub fn bot_message_json(&self, p: &Value) -> Value {
        let mut m = json!({
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": p["text"].as_str().unwrap_or(""),
            "bot_profile": self.bot_profile(),
        });
        if p["blocks"].is_array() {
            m["blocks"] = p["blocks"].clone();
        }
        if p["attachments"].is_array() {
            m["attachments"] = p["attachments"].clone();
        }
        if p["metadata"].is_object() {
            m["metadata"] = p["metadata"].clone();
        }
        m
    }

    /// Open a modal (or push one on `previous`): the stateful view Slack returns.
    pub fn open_view(
        &mut self,
        user: &str,
        view: Value,
        previous: Option<&str>,
        trigger_age: Option<Duration>,
    ) -> Value {
        let id = self.new_id("V");
        let mut v = view;
        let root = previous
            .and_then(|p| self.views.get(p))
            .map(|p| p.json["root_view_id"].clone())
            .unwrap_or(json!(id));
        v["id"] = json!(id);
        v["team_id"] = json!(self.team_id);
        v["app_id"] = json!(self.app_id);
        v["app_installed_team_id"] = json!(self.team_id);
        v["bot_id"] = json!(self.bot_id);
        v["hash"] = json!(format!("{}.1", id));
        v["state"] = json!({ "values": {} });
        v["previous_view_id"] = previous.map_or(Value::Null, |p| json!(p));
        v["root_view_id"] = root;
        for k in ["private_metadata", "callback_id", "external_id"] {
            if v[k].is_null() {
                v[k] = json!("");
            }
        }
        if v["clear_on_close"].is_null() {
            v["clear_on_close"] = json!(false);
        }
        if v["notify_on_close"].is_null() {
            v["notify_on_close"] = json!(false);
        }
        self.views.insert(
            id,
            ViewRec {
                id: v["id"].as_str().unwrap().to_string(),
                user: user.to_string(),
                json: v.clone(),
                open: true,
                trigger_age,
            },
        );
        v
    }
}
