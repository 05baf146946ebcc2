//! The stand-in's in-memory Discord: users, guilds, channels, messages, commands,
//! interactions, recorded REST calls, injected faults and gateway sessions.
//!
//! Everything lives behind one `std::sync::Mutex<State>` (never held across an `.await`);
//! every change wakes waiters through a `tokio::sync::Notify`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use super::model::*;
use super::RecordedCall;

/// Frames queued to one gateway connection task.
#[derive(Debug)]
pub enum Out {
    Text(String),
    /// Send a close frame with this code, then end the connection.
    Close(u16, String),
    /// Drop the TCP connection without a close frame.
    Drop,
}

#[derive(Debug)]
pub struct Conn {
    pub tx: UnboundedSender<Out>,
    pub session: Option<String>,
}

#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub seq: u64,
    /// Every dispatch of the session (`(seq, frame)`), kept for RESUME replay.
    pub buffer: Vec<(u64, String)>,
    pub intents: u64,
    pub conn: Option<u64>,
    pub resumable: bool,
}

#[derive(Debug, Default)]
pub struct Gateway {
    pub sessions: HashMap<String, Session>,
    /// The most recently identified session: user actions are dispatched to it.
    pub current: Option<String>,
    pub conns: HashMap<u64, Conn>,
    pub next_conn: u64,
    pub session_counter: u64,
    pub connections_total: usize,
    pub identifies: usize,
    pub resumes: usize,
    pub heartbeats: usize,
    pub urls: Vec<String>,
    pub identify_payloads: Vec<Value>,
    pub dispatched: Vec<(String, Value)>,
    pub heartbeat_interval_ms: u64,
    /// When the last dispatch was queued to a live connection.
    pub last_dispatch_at: Option<Instant>,
    /// Dispatches re-sent on RESUME.
    pub replayed: usize,
    /// While true, RESUME payloads are parked in `parked_resumes` (see `hold_resumes`).
    pub hold_resumes: bool,
    pub parked_resumes: Vec<(u64, Value)>,
}

impl Gateway {
    /// The current session, if it has a live connection (READY/RESUMED already queued).
    pub fn connected(&self) -> bool {
        self.current
            .as_ref()
            .and_then(|s| self.sessions.get(s))
            .is_some_and(|s| s.conn.is_some())
    }
}

#[derive(Debug)]
pub struct GuildRec {
    pub name: String,
    pub roles: BTreeMap<u64, String>,
    pub members: BTreeMap<u64, MemberRec>,
    pub channels: Vec<u64>,
    pub joined_at: String,
}

#[derive(Debug, Clone)]
pub struct MemberRec {
    pub roles: Vec<u64>,
    pub joined_at: String,
}

#[derive(Debug, Clone)]
pub struct InteractionRec {
    pub id: u64,
    pub token: String,
    pub kind: u64,
    pub channel_id: u64,
    pub guild_id: Option<u64>,
    pub user_id: u64,
    /// Component interactions: the message carrying the component. Modal submits: the
    /// message whose component opened the modal (if any).
    pub message_id: Option<u64>,
    pub name: String,
    pub response_type: Option<u64>,
    pub original: Option<u64>,
    pub callbacks: Vec<Value>,
    pub followups: Vec<u64>,
    /// `interaction_metadata` for messages created in response.
    pub metadata: Value,
}

#[derive(Debug, Clone)]
pub struct ModalRec {
    pub interaction_id: u64,
    pub user_id: u64,
    pub channel_id: u64,
    pub custom_id: String,
    pub data: Value,
    pub source_message: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub method: String,
    pub path_prefix: String,
    pub status: u16,
    pub body: Value,
    pub remaining: usize,
    /// Carry the request out first and only then answer with the fault: a response lost
    /// after Discord acted (a 502/504 from its edge, a timeout).
    pub after: bool,
    /// Only requests whose JSON body, as text, contains this.
    pub body_contains: Option<String>,
}

/// A REST reply (status, JSON body, extra headers).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

/// A new thread's name (required), auto-archive minutes and slow mode, from
/// the body of either way of starting one, with Discord's defaults.
pub(crate) fn thread_options(body: &Value) -> Result<(&str, u64, u64), Reply> {
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return Err(Reply::invalid_form("name: This field is required"));
    };
    let archive = body
        .get("auto_archive_duration")
        .and_then(Value::as_u64)
        .unwrap_or(4320);
    let slow = body
        .get("rate_limit_per_user")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok((name, archive, slow))
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: vec![],
        }
    }
    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }
    pub fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            headers: vec![],
        }
    }
    /// Discord's error shape: `{"message": ..., "code": ...}`.
    pub fn error(status: u16, code: u64, message: &str) -> Self {
        Self::json(status, json!({ "message": message, "code": code }))
    }
    pub fn not_found() -> Self {
        Self::error(404, 0, "404: Not Found")
    }
    pub fn unknown_channel() -> Self {
        Self::error(404, 10003, "Unknown Channel")
    }
    pub fn unknown_message() -> Self {
        Self::error(404, 10008, "Unknown Message")
    }
    pub fn invalid_form(msg: &str) -> Self {
        Self::json(
            400,
            json!({ "message": "Invalid Form Body", "code": 50035, "errors": {
            "_errors": [{ "code": "BASE_TYPE_INVALID", "message": msg }] } }),
        )
    }
}

/// Nonces seen in the last 5 minutes: `(author, nonce)` → message, plus their order of
/// arrival for expiry (a map, so a long benchmark run does not scan every nonce).
#[derive(Default)]
struct Nonces {
    by_key: HashMap<(u64, String), u64>,
    order: VecDeque<(Instant, u64, String)>,
}

pub struct State {
    pub bot_id: u64,
    pub app_id: u64,
    pub bot_name: String,
    pub token: String,
    pub ids: Snowflakes,
    pub users: HashMap<u64, String>,
    pub guilds: BTreeMap<u64, GuildRec>,
    pub channels: HashMap<u64, Value>,
    pub messages: HashMap<u64, Value>,
    pub channel_messages: HashMap<u64, Vec<u64>>,
    pub dm_channels: HashMap<u64, u64>,
    nonces: Nonces,
    /// How long Discord remembers a nonce (a few minutes; tests shorten it
    /// to play a retry that comes after the window).
    pub nonce_window: Duration,
    pub global_commands: Vec<Value>,
    pub guild_commands: HashMap<u64, Vec<Value>>,
    pub interactions: HashMap<u64, InteractionRec>,
    pub modals: Vec<ModalRec>,
    pub calls: Vec<RecordedCall>,
    /// Receivers of every recorded call (`DiscordStandIn::subscribe_calls`).
    pub call_subscribers: Vec<UnboundedSender<RecordedCall>>,
    /// When each user action (message or interaction id) was dispatched on the gateway.
    pub dispatch_at: HashMap<u64, Instant>,
    pub faults: Vec<Fault>,
    /// Problems the stand-in detected in its own payloads or in the bot's protocol use.
    pub errors: Vec<String>,
    pub gw: Gateway,
    pub gateway_url: String,
    /// Check every dispatch and typed REST answer against serenity's models.
    pub check_models: bool,
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
    pub fn new(bot_id: u64, app_id: u64, bot_name: &str) -> Self {
        let mut users = HashMap::new();
        users.insert(bot_id, bot_name.to_string());
        Self {
            bot_id,
            app_id,
            bot_name: bot_name.to_string(),
            token: fake_token(bot_id),
            ids: Snowflakes::new(),
            users,
            guilds: BTreeMap::new(),
            channels: HashMap::new(),
            messages: HashMap::new(),
            channel_messages: HashMap::new(),
            dm_channels: HashMap::new(),
            nonces: Nonces::default(),
            nonce_window: Duration::from_secs(300),
            global_commands: Vec::new(),
            guild_commands: HashMap::new(),
            interactions: HashMap::new(),
            modals: Vec::new(),
            calls: Vec::new(),
            call_subscribers: Vec::new(),
            dispatch_at: HashMap::new(),
            faults: Vec::new(),
            errors: Vec::new(),
            gw: Gateway {
                heartbeat_interval_ms: 41_250,
                ..Gateway::default()
            },
            gateway_url: String::new(),
            check_models: true,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.ids.next()
    }

    // ---------------------------------------------------------------- users & guilds

    pub fn user_obj(&self, user_id: u64) -> Value {
        if user_id == self.bot_id {
            return user_json(user_id, &self.bot_name, true);
        }
        let name = self
            .users
            .get(&user_id)
            .cloned()
            .unwrap_or_else(|| format!("user{user_id}"));
        user_json(user_id, &name, false)
    }

    pub fn ensure_user(&mut self, user_id: u64) {
        self.users
            .entry(user_id)
            .or_insert_with(|| format!("user{user_id}"));
    }

    pub fn member_obj(&self, guild_id: u64, user_id: u64) -> Option<Value> {
        let g = self.guilds.get(&guild_id)?;
        let m = g.members.get(&user_id)?;
        Some(member_json(
            self.user_obj(user_id),
            &m.roles,
            &m.joined_at,
            None,
        ))
    }

    pub fn guild_of_channel(&self, channel_id: u64) -> Option<u64> {
        self.channels
            .get(&channel_id)
            .and_then(|c| c.get("guild_id"))
            .and_then(as_id)
    }

    pub fn add_guild(&mut self, guild_id: u64, name: &str) {
        let joined_at = timestamp();
        let mut roles = BTreeMap::new();
        roles.insert(guild_id, "@everyone".to_string());
        let mut members = BTreeMap::new();
        members.insert(
            self.bot_id,
            MemberRec {
                roles: vec![],
                joined_at: joined_at.clone(),
            },
        );
        self.guilds.insert(
            guild_id,
            GuildRec {
                name: name.to_string(),
                roles,
                members,
                channels: vec![],
                joined_at,
            },
        );
        if self.gw.current.is_some() {
            let g = self.guild_create_json(guild_id);
            self.dispatch_or_record("GUILD_CREATE", g, Some(INTENT_GUILDS));
        }
    }

    pub fn add_text_channel(&mut self, guild_id: u64, channel_id: u64, name: &str) {
        let g = self.guilds.get_mut(&guild_id).unwrap_or_else(|| {
            panic!(
                "DiscordStandIn::add_text_channel: guild {guild_id} unknown; call add_guild first"
            )
        });
        let position = g.channels.len() as u64;
        g.channels.push(channel_id);
        let ch = text_channel_json(channel_id, guild_id, name, position);
        self.channels.insert(channel_id, ch.clone());
        if self.gw.current.is_some() {
            self.dispatch_or_record("CHANNEL_CREATE", ch, Some(INTENT_GUILDS));
        }
    }

    pub fn add_member(&mut self, guild_id: u64, user_id: u64, name: &str, roles: &[u64]) {
        self.users.insert(user_id, name.to_string());
        let g = self.guilds.get_mut(&guild_id).unwrap_or_else(|| {
            panic!("DiscordStandIn::add_member: guild {guild_id} unknown; call add_guild first")
        });
        for r in roles {
            g.roles.entry(*r).or_insert_with(|| format!("role-{r}"));
        }
        g.members.insert(
            user_id,
            MemberRec {
                roles: roles.to_vec(),
                joined_at: timestamp(),
            },
        );
        if self.gw.current.is_some() {
            let mut m = self.member_obj(guild_id, user_id).unwrap();
            m["guild_id"] = id(guild_id);
            self.dispatch_or_record("GUILD_MEMBER_ADD", m, Some(INTENT_GUILD_MEMBERS));
        }
    }

    pub fn roles_json(&self, guild_id: u64) -> Vec<Value> {
        let Some(g) = self.guilds.get(&guild_id) else {
            return vec![];
        };
        g.roles
            .iter()
            .enumerate()
            .map(|(i, (rid, name))| {
                let perms = if *rid == guild_id {
                    DEFAULT_PERMISSIONS
                } else {
                    "0"
                };
                role_json(
                    *rid,
                    name,
                    if *rid == guild_id { 0 } else { i as u64 },
                    perms,
                )
            })
            .collect()
    }

    /// Full guild object as sent in GUILD_CREATE.
    pub fn guild_create_json(&self, guild_id: u64) -> Value {
        let mut g = self.partial_guild_json(guild_id);
        let rec = &self.guilds[&guild_id];
        let members: Vec<Value> = rec
            .members
            .keys()
            .filter_map(|u| self.member_obj(guild_id, *u))
            .collect();
        let channels: Vec<Value> = rec
            .channels
            .iter()
            .filter_map(|c| self.channels.get(c).cloned())
            .collect();
        let threads: Vec<Value> = self
            .channels
            .values()
            .filter(|c| {
                c.get("guild_id").and_then(as_id) == Some(guild_id)
                    && matches!(c["type"].as_u64(), Some(10..=12))
            })
            .cloned()
            .collect();
        let m = g.as_object_mut().unwrap();
        m.insert("joined_at".into(), json!(rec.joined_at));
        m.insert("large".into(), json!(false));
        m.insert("unavailable".into(), json!(false));
        m.insert("member_count".into(), json!(members.len()));
        m.insert("voice_states".into(), json!([]));
        m.insert("members".into(), json!(members));
        m.insert("channels".into(), json!(channels));
        m.insert("threads".into(), json!(threads));
        m.insert("presences".into(), json!([]));
        m.insert("stage_instances".into(), json!([]));
        m.insert("guild_scheduled_events".into(), json!([]));
        m.insert("soundboard_sounds".into(), json!([]));
        g
    }

    /// Guild object as returned by GET /guilds/{id}.
    pub fn partial_guild_json(&self, guild_id: u64) -> Value {
        let rec = &self.guilds[&guild_id];
        json!({
            "id": id(guild_id),
            "name": rec.name,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": id(self.guild_owner(guild_id)),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self.roles_json(guild_id),
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": null,
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "max_presences": null,
            "max_members": 500000,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": null,
            "incidents_data": null,
        })
    }

    fn guild_owner(&self, guild_id: u64) -> u64 {
        // The first human member, else the bot: serenity only needs a valid id.
        self.guilds[&guild_id]
            .members
            .keys()
            .copied()
            .find(|u| *u != self.bot_id)
            .unwrap_or(self.bot_id)
    }

    pub fn ensure_dm(&mut self, user_id: u64) -> u64 {
        if let Some(c) = self.dm_channels.get(&user_id) {
            return *c;
        }
        self.ensure_user(user_id);
        let cid = self.next_id();
        let ch = dm_channel_json(cid, self.user_obj(user_id));
        self.channels.insert(cid, ch);
        self.dm_channels.insert(user_id, cid);
        cid
    }

    // ---------------------------------------------------------------- messages

    /// Create a message from a Discord "create message" payload. `extra` fields are merged
    /// into the stored message (webhook_id, interaction_metadata, ...).
    #[allow(clippy::too_many_arguments)]
    pub fn create_message(
        &mut self,
        channel_id: u64,
        author_id: u64,
        payload: &Value,
        files: &[String],
        kind: u64,
        extra: Value,
        allow_empty: bool,
    ) -> Result<(Value, bool), Reply> {
        let Some(channel) = self.channels.get(&channel_id) else {
            return Err(Reply::unknown_channel());
        };
        if matches!(channel["type"].as_u64(), Some(10..=12))
            && channel["thread_metadata"]["locked"].as_bool() == Some(true)
        {
            return Err(Reply::error(403, 50083, "Thread is locked"));
        }
        let content = payload
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if content.chars().count() > 2000 {
            return Err(Reply::invalid_form(
                "content: Must be 2000 or fewer in length.",
            ));
        }
        let embeds: Vec<Value> = payload
            .get("embeds")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(normalise_embed).collect())
            .unwrap_or_default();
        let components = payload
            .get("components")
            .map(normalise_components)
            .unwrap_or(json!([]));
        let has_components = components.as_array().is_some_and(|a| !a.is_empty());
        let has_stickers = payload
            .get("sticker_ids")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let has_poll = payload.get("poll").is_some_and(|p| !p.is_null());
        if !allow_empty
            && content.is_empty()
            && embeds.is_empty()
            && !has_components
            && files.is_empty()
            && !has_stickers
            && !has_poll
        {
            return Err(Reply::error(400, 50006, "Cannot send an empty message"));
        }

        // Discord's nonce de-duplication: same author + same nonce within a few minutes
        // returns the original message instead of creating a new one.
        let nonce = payload.get("nonce").filter(|n| !n.is_null()).cloned();
        let enforce = payload.get("enforce_nonce").and_then(Value::as_bool) == Some(true);
        let mut nonce_key = None;
        if let (Some(n), true) = (&nonce, enforce) {
            let key = match n {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            while let Some((at, author, nonce)) = self.nonces.order.front() {
                if at.elapsed() < self.nonce_window {
                    break;
                }
                let k = (*author, nonce.clone());
                self.nonces.by_key.remove(&k);
                self.nonces.order.pop_front();
            }
            if let Some(mid) = self.nonces.by_key.get(&(author_id, key.clone())) {
                if let Some(m) = self.messages.get(mid) {
                    return Ok((m.clone(), false));
                }
            }
            nonce_key = Some(key);
        }

        let (users, roles, everyone) = parse_mentions(&content);
        let (users, roles, everyone) =
            apply_allowed_mentions(payload.get("allowed_mentions"), users, roles, everyone);
        let mentions: Vec<Value> = users.iter().map(|u| self.user_obj(*u)).collect();

        let mid = self.next_id();
        let attachments: Vec<Value> = files
            .iter()
            .map(|f| {
                let aid = self.next_id();
                json!({
                    "id": id(aid), "filename": f, "size": 0,
                    "url": format!("https://cdn.discordapp.com/attachments/{channel_id}/{aid}/{f}"),
                    "proxy_url": format!("https://media.discordapp.net/attachments/{channel_id}/{aid}/{f}"),
                })
            })
            .collect();
        let flags = payload.get("flags").and_then(Value::as_u64).unwrap_or(0);
        let mut msg = json!({
            "id": id(mid),
            "channel_id": id(channel_id),
            "author": self.user_obj(author_id),
            "content": content,
            "timestamp": timestamp(),
            "edited_timestamp": null,
            "tts": payload.get("tts").and_then(Value::as_bool).unwrap_or(false),
            "mention_everyone": everyone,
            "mentions": mentions,
            "mention_roles": roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
            "attachments": attachments,
            "embeds": embeds,
            "components": components,
            "pinned": false,
            "type": kind,
            "flags": flags,
        });
        let m = msg.as_object_mut().unwrap();
        if let Some(n) = nonce {
            m.insert("nonce".into(), n);
        }
        if let Some(r) = payload.get("message_reference").filter(|r| !r.is_null()) {
            let ref_id = r.get("message_id").and_then(as_id);
            let mut reference = json!({ "channel_id": id(channel_id), "type": 0 });
            if let Some(rid) = ref_id {
                reference["message_id"] = id(rid);
                if let Some(g) = self.guild_of_channel(channel_id) {
                    reference["guild_id"] = id(g);
                }
                m.insert(
                    "referenced_message".into(),
                    self.messages.get(&rid).cloned().unwrap_or(Value::Null),
                );
                m.insert("type".into(), json!(19));
            }
            m.insert("message_reference".into(), reference);
        }
        if let Some(p) = payload.get("poll").filter(|p| !p.is_null()) {
            m.insert("poll".into(), p.clone());
        }
        if let Some(e) = extra.as_object() {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        if let Some(key) = nonce_key {
            self.nonces
                .order
                .push_back((Instant::now(), author_id, key.clone()));
            self.nonces.by_key.insert((author_id, key), mid);
        }
        self.messages.insert(mid, msg.clone());
        self.channel_messages
            .entry(channel_id)
            .or_default()
            .push(mid);
        if let Some(ch) = self.channels.get_mut(&channel_id) {
            ch["last_message_id"] = id(mid);
            if let Some(n) = ch.get("message_count").and_then(Value::as_u64) {
                ch["message_count"] = json!(n + 1);
                ch["total_message_sent"] = json!(n + 1);
            }
        }
        Ok((msg, true))
    }

    /// Apply an edit payload (content, embeds, components, flags, attachments) to a stored
    /// message and return the new message JSON.
    pub fn edit_message(
        &mut self,
        message_id: u64,
        patch: &Value,
        mark_edited: bool,
    ) -> Result<Value, Reply> {
        let Some(msg) = self.messages.get_mut(&message_id) else {
            return Err(Reply::unknown_message());
        };
        if let Some(c) = patch.get("content") {
            let c = c.as_str().unwrap_or("");
            if c.chars().count() > 2000 {
                return Err(Reply::invalid_form(
                    "content: Must be 2000 or fewer in length.",
                ));
            }
            msg["content"] = json!(c);
        }
        if let Some(e) = patch.get("embeds") {
            msg["embeds"] = json!(e
                .as_array()
                .map(|a| a.iter().map(normalise_embed).collect::<Vec<_>>())
                .unwrap_or_default());
        }
        if let Some(c) = patch.get("components") {
            msg["components"] = if c.is_null() {
                json!([])
            } else {
                normalise_components(c)
            };
        }
        if let Some(a) = patch.get("attachments") {
            // Keep only the attachments the edit lists (by id).
            let keep: Vec<u64> = a
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|x| x.get("id").and_then(as_id))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(list) = msg["attachments"].as_array_mut() {
                list.retain(|x| {
                    x.get("id")
                        .and_then(as_id)
                        .is_some_and(|i| keep.contains(&i))
                });
            }
        }
        if let Some(f) = patch.get("flags").and_then(Value::as_u64) {
            // Only SUPPRESS_EMBEDS (1<<2) can be changed by an edit.
            let old = msg["flags"].as_u64().unwrap_or(0);
            msg["flags"] = json!((old & !4) | (f & 4));
        }
        if let Some(content) = msg["content"].as_str().map(str::to_string) {
            if patch.get("content").is_some() {
                let (users, roles, everyone) = parse_mentions(&content);
                let (users, roles, everyone) =
                    apply_allowed_mentions(patch.get("allowed_mentions"), users, roles, everyone);
                let mentions: Vec<Value> = users
                    .iter()
                    .map(|u| user_json(*u, &format!("user{u}"), false))
                    .collect();
                msg["mentions"] = json!(mentions);
                msg["mention_roles"] = json!(roles.iter().map(|r| id(*r)).collect::<Vec<_>>());
                msg["mention_everyone"] = json!(everyone);
            }
        }
        if mark_edited {
            msg["edited_timestamp"] = json!(timestamp());
        }
        let out = msg.clone();
        // Fix mentioned users' names from the registry.
        let mut out = out;
        if let Some(list) = out["mentions"].as_array_mut() {
            for u in list.iter_mut() {
                if let Some(uid) = u.get("id").and_then(as_id) {
                    *u = self.user_obj(uid);
                }
            }
        }
        self.messages.insert(message_id, out.clone());
        Ok(out)
    }

    pub fn delete_message(&mut self, message_id: u64) -> bool {
        let Some(msg) = self.messages.remove(&message_id) else {
            return false;
        };
        if let Some(cid) = msg.get("channel_id").and_then(as_id) {
            if let Some(list) = self.channel_messages.get_mut(&cid) {
                list.retain(|m| *m != message_id);
            }
        }
        true
    }

    pub fn messages_in(&self, channel_id: u64) -> Vec<Value> {
        self.channel_messages
            .get(&channel_id)
            .map(|l| {
                l.iter()
                    .filter_map(|m| self.messages.get(m).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------- gateway dispatch

    /// Queue a dispatch on the current session (sent now if connected, replayed on RESUME
    /// otherwise). Returns Ok(false) if the session's intents filter the event out.
    pub fn dispatch(&mut self, t: &str, d: Value, intent: Option<u64>) -> Result<bool, String> {
        if self.check_models {
            check_event(t, &d)?;
        }
        let Some(sid) = self.gw.current.clone() else {
            return Err(format!(
                "no gateway session to dispatch {t} to (the bot never identified)"
            ));
        };
        let Some(session) = self.gw.sessions.get_mut(&sid) else {
            return Err(format!("session {sid} vanished"));
        };
        if let Some(bit) = intent {
            if session.intents & bit == 0 {
                return Ok(false);
            }
        }
        session.seq += 1;
        let seq = session.seq;
        let frame = dispatch_frame(seq, t, &d);
        session.buffer.push((seq, frame.clone()));
        self.gw.last_dispatch_at = None;
        if let Some(conn) = session.conn.and_then(|c| self.gw.conns.get(&c)) {
            let _ = conn.tx.send(Out::Text(frame));
            self.gw.last_dispatch_at = Some(Instant::now());
        }
        self.gw.dispatched.push((t.to_string(), d));
        Ok(true)
    }

    /// Like `dispatch`, but problems are recorded in `errors` instead of returned (used for
    /// dispatches triggered by the bot's own REST calls).
    pub fn dispatch_or_record(&mut self, t: &str, d: Value, intent: Option<u64>) {
        if self.gw.current.is_none() {
            return;
        }
        if let Err(e) = self.dispatch(t, d, intent) {
            self.errors.push(e);
        }
    }

    pub fn current_intents(&self) -> u64 {
        self.gw
            .current
            .as_ref()
            .and_then(|s| self.gw.sessions.get(s))
            .map_or(0, |s| s.intents)
    }

    /// MESSAGE_CREATE for a stored message, with guild_id/member added and the content
    /// blanked when the MESSAGE_CONTENT intent is missing (as Discord does).
    pub fn message_create_event(&self, msg: &Value) -> (Value, u64) {
        let mut d = msg.clone();
        let cid = msg["channel_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let author = msg["author"]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match self.guild_of_channel(cid) {
            Some(gid) => {
                d["guild_id"] = id(gid);
                if let Some(mut m) = self.member_obj(gid, author) {
                    m.as_object_mut().unwrap().remove("user");
                    d["member"] = m;
                }
                let mentions_bot = msg["mentions"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|u| u["id"].as_str() == Some(&self.bot_id.to_string()))
                });
                if self.current_intents() & INTENT_MESSAGE_CONTENT == 0
                    && author != self.bot_id
                    && !mentions_bot
                {
                    d["content"] = json!("");
                    d["embeds"] = json!([]);
                    d["attachments"] = json!([]);
                    d["components"] = json!([]);
                    if let Some(o) = d.as_object_mut() {
                        o.remove("poll");
                    }
                }
                (d, INTENT_GUILD_MESSAGES)
            }
            None => (d, INTENT_DIRECT_MESSAGES),
        }
    }

    /// POST /channels/{parent}/messages/{message}/threads by `creator` (the bot through
    /// REST, or a member through `user_starts_thread`), as Discord does it: the thread's id
    /// is the message's id, the starter message gets HAS_THREAD and `thread`, a second
    /// thread for the same message is 400/160004, and THREAD_CREATE (`newly_created`) goes
    /// to the bot (GUILDS intent). The thread's `member` (the current user's membership) is
    /// present only when the bot made the thread: a member's thread has not been joined by
    /// the bot.
    pub fn start_thread_from_message(
        &mut self,
        parent: u64,
        message: u64,
        creator: u64,
        body: &Value,
    ) -> Result<Value, Reply> {
        let Some(gid) = self.guild_of_channel(parent) else {
            return Err(Reply::error(
                400,
                50024,
                "Cannot execute action on this channel type",
            ));
        };
        if self.channels.contains_key(&message) {
            return Err(Reply::error(
                400,
                160004,
                "A thread has already been created for this message",
            ));
        }
        let (name, archive, slow) = thread_options(body)?;
        // Discord: a thread started from a message has the message's id.
        let mut th = thread_json(message, gid, parent, creator, name, 11, archive, slow);
        if creator != self.bot_id {
            if let Some(o) = th.as_object_mut() {
                o.remove("member");
            }
        }
        self.channels.insert(message, th.clone());
        if let Some(msg) = self.messages.get_mut(&message) {
            msg["flags"] = json!(msg["flags"].as_u64().unwrap_or(0) | FLAG_HAS_THREAD);
            msg["thread"] = th.clone();
        }
        let mut ev = th.clone();
        ev["newly_created"] = json!(true);
        self.dispatch_or_record("THREAD_CREATE", ev, Some(INTENT_GUILDS));
        Ok(th)
    }

    pub fn dispatch_message_create(&mut self, msg: &Value) -> Result<bool, String> {
        let (d, intent) = self.message_create_event(msg);
        self.dispatch("MESSAGE_CREATE", d, Some(intent))
    }

    pub fn check(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            self.errors.push(e);
        }
    }
}
