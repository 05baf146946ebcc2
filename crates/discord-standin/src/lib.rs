//! A local Discord stand-in for integration tests and the Discord benchmark: an HTTP server speaking Discord's REST
//! API v10 and a WebSocket server speaking the gateway protocol (v10, JSON text frames),
//! both on 127.0.0.1 with OS-chosen ports, driven by the REAL serenity 0.12.5 client.
//!
//! See `README.md` next to this file for the full guide and worked examples; in short:
//!
//! ```ignore
//! let discord = DiscordStandIn::start().await;
//! discord.add_guild(GUILD, "HQ");
//! discord.add_text_channel(GUILD, STAFF, "staff");
//! discord.add_member(GUILD, OWNER, "owner", &[ROLE]);
//! let client = discord
//!     .client_builder(GatewayIntents::non_privileged() | GatewayIntents::MESSAGE_CONTENT)
//!     .event_handler(MyHandler)
//!     .await
//!     .unwrap();
//! let bot = RunningClient::spawn(client);
//! discord.wait_ready().await;
//! discord.user_sends_dm(OWNER, "ping").await;
//! let call = discord.wait_for_call(|c| c.is("POST", "/channels/") && c.json()["content"] == "pong").await;
//! bot.shutdown().await;
//! ```
//!
//! How serenity is pointed at it (verified in serenity 0.12.5's source):
//! * REST: `HttpBuilder::new(token).proxy(http_base()).ratelimiter_disabled(true)`.
//!   `Request::build` (src/http/request.rs) replaces `https://discord.com` with the proxy
//!   string, but ONLY on the no-ratelimiter path of `Http::request` (src/http/client.rs);
//!   the ratelimiter path (`Ratelimiter::perform`, src/http/ratelimiting.rs) passes
//!   `proxy = None` and would go to the real Discord. So `ratelimiter_disabled(true)` is
//!   mandatory, and then serenity does NOT retry 429s: the bot code sees them as
//!   `Error::Http(HttpError::UnsuccessfulRequest(ErrorResponse { status_code: 429, .. }))`.
//! * Gateway: `ClientBuilder`'s `IntoFuture` (src/client/mod.rs) calls GET /gateway (not
//!   /gateway/bot; only `start_autosharded` calls /gateway/bot) and uses `url`; the shard
//!   (src/gateway/shard.rs `connect`) appends `?v=10` — no `encoding`, no `compress`
//!   query — and IDENTIFY sends `compress: true`, but `WsClient::recv_json`
//!   (src/gateway/ws.rs) reads plain Text frames as JSON (it only zlib-inflates Binary
//!   frames), so the stand-in sends uncompressed text. `ws://` works (tokio-tungstenite).
//! * Token: serenity never validates the token format for the client; `HttpBuilder` only
//!   prefixes `Bot `. The fake token still passes `serenity::utils::validate_token`.
//!   IDENTIFY/RESUME carry the token *with* the `Bot ` prefix; the stand-in accepts both.
//! * Every dispatch the stand-in sends is first deserialized as
//!   `serenity::model::event::Event`; every typed REST response as the serenity model the
//!   caller decodes. A dispatch serenity could not read would be dropped silently by its
//!   shard runner, so any failure is recorded in `stand_in_errors()` and makes the
//!   `user_*` actions panic.

#![allow(dead_code)]

mod gateway;
/// Discord's JSON shapes and helpers; public only for the smoke tests.
#[doc(hidden)]
pub mod model;
mod rest;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use model::{as_id, id, DEFAULT_PERMISSIONS};
#[allow(unused_imports)]
pub use model::{
    FLAG_EPHEMERAL, FLAG_HAS_THREAD, FLAG_LOADING, INTENT_DIRECT_MESSAGES, INTENT_GUILDS,
    INTENT_GUILD_MEMBERS, INTENT_GUILD_MESSAGES, INTENT_MESSAGE_CONTENT,
};
use state::{Fault, InteractionRec, Out, Shared, State};

/// One REST request the bot made, in arrival order.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    /// Position in `calls()` (time order).
    pub index: usize,
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the `/api/v10` prefix, e.g. `/channels/42/messages`.
    pub path: String,
    /// Raw query string (serenity writes `?&key=value`, so this starts with `&`).
    pub query: Option<String>,
    /// JSON body (for multipart requests: the parsed `payload_json` part).
    pub body: Option<Value>,
    /// File names of multipart uploads.
    pub files: Vec<String>,
    /// Status the stand-in answered with.
    pub status: u16,
    /// Body the stand-in answered with (None for 204).
    pub response: Option<Value>,
    /// True when the answer came from `fail_next`.
    pub injected: bool,
    /// `X-Audit-Log-Reason` header, if sent.
    pub audit_log_reason: Option<String>,
    /// When the request reached the stand-in.
    pub at: std::time::Instant,
}

impl RecordedCall {
    /// `method` matches exactly and the path starts with `path_prefix`.
    pub fn is(&self, method: &str, path_prefix: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.path.starts_with(path_prefix)
    }
    /// The JSON body, or `Value::Null`.
    pub fn json(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.body.as_ref().unwrap_or(&NULL)
    }
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Gateway counters (see `gateway_stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayStats {
    /// WebSocket connections accepted so far.
    pub connections: usize,
    pub identifies: usize,
    /// Successful RESUMEs (RESUMED sent).
    pub resumes: usize,
    pub heartbeats: usize,
    /// Dispatches re-sent during RESUMEs.
    pub replayed: usize,
    /// RESUMEs currently parked by `hold_resumes`.
    pub parked_resumes: usize,
    /// The current session has a live connection.
    pub connected: bool,
}

fn stats(st: &State) -> GatewayStats {
    GatewayStats {
        connections: st.gw.connections_total,
        identifies: st.gw.identifies,
        resumes: st.gw.resumes,
        heartbeats: st.gw.heartbeats,
        replayed: st.gw.replayed,
        parked_resumes: st.gw.parked_resumes.len(),
        connected: st.gw.connected(),
    }
}

/// Start-up options; `DiscordStandIn::start()` uses the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub bot_user_id: u64,
    pub application_id: u64,
    pub bot_name: String,
    /// HELLO's heartbeat_interval (Discord sends ~41250 ms).
    pub heartbeat_interval_ms: u64,
    /// Decode every dispatch and typed REST answer with serenity's own models first
    /// (default). A load benchmark whose payloads the tests already cover may turn it
    /// off, so the stand-in's own cost does not crowd out the bot's.
    pub check_models: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bot_user_id: 900_000_000_000_000_001,
            application_id: 900_000_000_000_000_001,
            bot_name: "madoguchi".into(),
            heartbeat_interval_ms: 5_000,
            check_models: true,
        }
    }
}

/// The components of a message (buttons, selects), its action rows
/// flattened: what a driver looks through to press one.
pub fn components(msg: &Value) -> Vec<Value> {
    msg["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["components"].as_array().cloned().unwrap_or_default())
        .collect()
}

pub struct DiscordStandIn {
    shared: Arc<Shared>,
    http_base: String,
    gateway_url: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DiscordStandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A serenity `Client` running in a background task.
pub struct RunningClient {
    pub shard_manager: Arc<serenity::gateway::ShardManager>,
    pub http: Arc<serenity::http::Http>,
    handle: Option<JoinHandle<Result<(), serenity::Error>>>,
}

impl RunningClient {
    /// `client.start()` (one shard) in a spawned task.
    pub fn spawn(mut client: serenity::Client) -> Self {
        let shard_manager = client.shard_manager.clone();
        let http = client.http.clone();
        let handle = tokio::spawn(async move { client.start().await });
        Self {
            shard_manager,
            http,
            handle: Some(handle),
        }
    }

    /// `shard_manager.shutdown_all()` and wait (10 s max) for `start()` to return.
    pub async fn shutdown(mut self) -> Result<(), serenity::Error> {
        self.shard_manager.shutdown_all().await;
        let handle = self.handle.take().unwrap();
        match tokio::time::timeout(Duration::from_secs(10), handle).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("serenity client task panicked: {e}"),
            Err(_) => panic!("serenity client did not stop within 10 s of shutdown_all"),
        }
    }
}

impl Drop for RunningClient {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

impl DiscordStandIn {
    /// Bind REST and gateway servers on 127.0.0.1 (port 0) with default options.
    pub async fn start() -> DiscordStandIn {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> DiscordStandIn {
        let mut st = State::new(opts.bot_user_id, opts.application_id, &opts.bot_name);
        st.gw.heartbeat_interval_ms = opts.heartbeat_interval_ms;
        st.check_models = opts.check_models;
        let rest_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind REST listener");
        let gw_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gateway listener");
        let http_base = format!("http://{}", rest_listener.local_addr().unwrap());
        // Like Discord's `wss://gateway.discord.gg`: no path; serenity appends `?v=10`.
        let gateway_url = format!("ws://{}", gw_listener.local_addr().unwrap());
        st.gateway_url = gateway_url.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            changed: tokio::sync::Notify::new(),
            // A bound, not a timing: waits end as soon as what they wait for
            // happens. It is generous because CI runs the end-to-end tests
            // two at a time on two loaded cores, where a consultation and
            // its deliveries took over 10 s.
            wait_timeout: Mutex::new(Duration::from_secs(30)),
        });
        let rest_app = axum::Router::new()
            .fallback(rest::rest_handler)
            .with_state(shared.clone());
        let gw_app = axum::Router::new()
            .route("/", axum::routing::get(gateway::ws_handler))
            .with_state(shared.clone());
        let t1 = tokio::spawn(async move {
            let _ = axum::serve(rest_listener, rest_app).await;
        });
        let t2 = tokio::spawn(async move {
            let _ = axum::serve(gw_listener, gw_app).await;
        });
        DiscordStandIn {
            shared,
            http_base,
            gateway_url,
            tasks: vec![t1, t2],
        }
    }

    // ------------------------------------------------------------------ identity & wiring

    /// `http://127.0.0.1:PORT`, for `HttpBuilder::proxy`.
    pub fn http_base(&self) -> String {
        self.http_base.clone()
    }
    /// `ws://127.0.0.1:PORT` (what GET /gateway returns).
    pub fn gateway_url(&self) -> String {
        self.gateway_url.clone()
    }
    /// A valid-looking fake token (`base64(bot id).xxxxxx.yyyy`); the only one accepted.
    pub fn bot_token(&self) -> String {
        self.shared.lock().token.clone()
    }
    pub fn bot_user_id(&self) -> u64 {
        self.shared.lock().bot_id
    }
    pub fn application_id(&self) -> u64 {
        self.shared.lock().app_id
    }

    /// serenity `Http` aimed at the stand-in (proxy + ratelimiter disabled).
    pub fn http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(self.bot_token())
            .proxy(self.http_base())
            .ratelimiter_disabled(true)
            .build()
    }

    /// `ClientBuilder::new_with_http(self.http(), intents)`.
    pub fn client_builder(
        &self,
        intents: serenity::all::GatewayIntents,
    ) -> serenity::all::ClientBuilder {
        serenity::all::ClientBuilder::new_with_http(self.http(), intents)
    }

    /// Timeout of every `wait_*` helper (default 10 s).
    pub fn set_wait_timeout(&self, d: Duration) {
        *self.shared.wait_timeout.lock().unwrap() = d;
    }

    // ------------------------------------------------------------------ world set-up

    /// Add a guild the bot is in (listed in READY, then GUILD_CREATE; dispatched at once if
    /// the bot is already connected). The guild's @everyone role has the guild's id.
    pub fn add_guild(&self, guild_id: u64, name: &str) {
        self.mutate(|st| st.add_guild(guild_id, name));
    }
    pub fn add_text_channel(&self, guild_id: u64, channel_id: u64, name: &str) {
        self.mutate(|st| st.add_text_channel(guild_id, channel_id, name));
    }
    /// Add a member (roles are created on the fly as `role-{id}`).
    pub fn add_member(&self, guild_id: u64, user_id: u64, name: &str, roles: &[u64]) {
        self.mutate(|st| st.add_member(guild_id, user_id, name, roles));
    }
    pub fn add_role(&self, guild_id: u64, role_id: u64, name: &str) {
        self.mutate(|st| {
            st.guilds
                .get_mut(&guild_id)
                .expect("unknown guild")
                .roles
                .insert(role_id, name.to_string());
        });
    }
    /// Register a user outside any guild (for DMs); unknown ids get the name `user{id}`.
    pub fn add_user(&self, user_id: u64, name: &str) {
        self.mutate(|st| {
            st.users.insert(user_id, name.to_string());
        });
    }

    // ------------------------------------------------------------------ acting as users

    /// A user DMs the bot: MESSAGE_CREATE in the user's DM channel (created if needed), no
    /// guild_id. Returns the message id.
    pub async fn user_sends_dm(&self, user_id: u64, content: &str) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            st.ensure_user(user_id);
            let cid = st.ensure_dm(user_id);
            let payload = json!({ "content": content });
            let (msg, _) = st
                .create_message(cid, user_id, &payload, &[], 0, json!({}), false)
                .map_err(|r| format!("{r:?}"))?;
            st.dispatch_message_create(&msg)?;
            let mid = as_id(&msg["id"]).unwrap();
            record_dispatch(st, mid);
            Ok(mid)
        })
    }

    /// A member posts in a guild channel (or thread). Content is blanked in the dispatch
    /// when the bot lacks MESSAGE_CONTENT and is not mentioned, like Discord.
    pub async fn user_sends_guild_message(
        &self,
        guild_id: u64,
        channel_id: u64,
        user_id: u64,
        content: &str,
    ) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            check_guild_channel(st, guild_id, channel_id)?;
            check_member(st, guild_id, user_id)?;
            let payload = json!({ "content": content });
            let (msg, _) = st
                .create_message(channel_id, user_id, &payload, &[], 0, json!({}), false)
                .map_err(|r| format!("{r:?}"))?;
            st.dispatch_message_create(&msg)?;
            Ok(as_id(&msg["id"]).unwrap())
        })
    }

    /// A member starts a thread on a message in a guild channel, as "Create Thread" on a
    /// message does in Discord's client (the same POST `/channels/{c}/messages/{m}/threads`
    /// by the user): the thread's id is the message's id, THREAD_CREATE is dispatched, and
    /// the bot's own attempt afterwards gets 400/160004. Returns the thread id.
    pub async fn user_starts_thread(
        &self,
        guild_id: u64,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        name: &str,
    ) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            check_guild_channel(st, guild_id, channel_id)?;
            check_member(st, guild_id, user_id)?;
            let in_channel = st
                .messages
                .get(&message_id)
                .is_some_and(|m| as_id(&m["channel_id"]) == Some(channel_id));
            if !in_channel {
                return Err(format!(
                    "message {message_id} is not in channel {channel_id}"
                ));
            }
            let body = json!({ "name": name, "auto_archive_duration": 4320 });
            let th = st
                .start_thread_from_message(channel_id, message_id, user_id, &body)
                .map_err(|r| format!("{r:?}"))?;
            Ok(as_id(&th["id"]).unwrap())
        })
    }

    /// A user runs `/name`. The command must have been registered by the bot (global, or for
    /// this guild); in DMs only global commands whose contexts allow BOT_DM. `options` is
    /// either Discord's array (`[{"name","type","value"}]`) or a JSON object
    /// `{"option": value}` whose types are taken from the registered command. Pass
    /// `guild_id: None, channel_id: 0` to run it in the user's DM with the bot.
    pub async fn user_runs_slash_command(
        &self,
        guild_id: Option<u64>,
        channel_id: u64,
        user_id: u64,
        name: &str,
        options: Value,
        locale: &str,
    ) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            let channel_id = resolve_channel(st, guild_id, channel_id, user_id)?;
            let mut cmd = None;
            if let Some(g) = guild_id {
                cmd = st.guild_commands.get(&g).and_then(|l| find_command(l, name)).cloned();
            }
            let cmd = match cmd.or_else(|| find_command(&st.global_commands, name).cloned()) {
                Some(c) => c,
                None => {
                    return Err(format!(
                        "/{name} is not registered (global: {:?}, guild: {:?}); the bot must register it first",
                        names(&st.global_commands),
                        guild_id.and_then(|g| st.guild_commands.get(&g)).map(|l| names(l)),
                    ))
                }
            };
            if guild_id.is_none() {
                let contexts_ok = cmd.get("contexts").and_then(Value::as_array).is_none_or(|c| c.iter().any(|x| x.as_u64() == Some(1)));
                if !contexts_ok || cmd.get("dm_permission") == Some(&json!(false)) {
                    return Err(format!("/{name} is not available in DMs (contexts/dm_permission)"));
                }
            }
            let options = convert_options(&cmd, options);
            let mut data = json!({ "id": cmd["id"], "name": name, "type": 1, "options": options });
            if let Some(g) = cmd.get("guild_id").filter(|g| !g.is_null()) {
                data["guild_id"] = g.clone();
            }
            let rec = new_interaction(st, 2, channel_id, guild_id, user_id, None, name);
            let payload = interaction_payload(st, &rec, data, None, locale);
            register_and_dispatch(st, rec, payload)
        })
    }

    /// A user clicks the button `custom_id` on message `message_id` (must exist on it and
    /// not be disabled).
    pub async fn user_presses_button(
        &self,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        guild_id: Option<u64>,
        custom_id: &str,
        locale: &str,
    ) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            let (msg, comp) =
                find_component(st, channel_id, message_id, guild_id, user_id, custom_id)?;
            if comp["type"].as_u64() != Some(2) {
                return Err(format!("component {custom_id} is not a button: {comp}"));
            }
            let data = json!({ "custom_id": custom_id, "component_type": 2 });
            let rec = new_interaction(
                st,
                3,
                channel_id,
                guild_id,
                user_id,
                Some(message_id),
                custom_id,
            );
            let payload = interaction_payload(st, &rec, data, Some(msg), locale);
            register_and_dispatch(st, rec, payload)
        })
    }

    /// A user picks `values` in the select menu `custom_id` on `message_id` (string selects
    /// are checked against their options and min/max_values).
    #[allow(clippy::too_many_arguments)]
    pub async fn user_selects(
        &self,
        channel_id: u64,
        message_id: u64,
        user_id: u64,
        guild_id: Option<u64>,
        custom_id: &str,
        values: &[&str],
        locale: &str,
    ) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            let (msg, comp) =
                find_component(st, channel_id, message_id, guild_id, user_id, custom_id)?;
            let kind = comp["type"].as_u64().unwrap_or(0);
            if !(3..=8).contains(&kind) || kind == 4 {
                return Err(format!(
                    "component {custom_id} is not a select menu: {comp}"
                ));
            }
            let min = comp.get("min_values").and_then(Value::as_u64).unwrap_or(1) as usize;
            let max = comp.get("max_values").and_then(Value::as_u64).unwrap_or(1) as usize;
            if values.len() < min || values.len() > max {
                return Err(format!(
                    "select {custom_id} takes {min}..={max} values, got {values:?}"
                ));
            }
            if kind == 3 {
                let allowed: Vec<&str> = comp["options"]
                    .as_array()
                    .map(|o| o.iter().filter_map(|x| x["value"].as_str()).collect())
                    .unwrap_or_default();
                if let Some(bad) = values.iter().find(|v| !allowed.contains(v)) {
                    return Err(format!(
                        "select {custom_id} has no option {bad:?} (options: {allowed:?})"
                    ));
                }
            }
            let data = json!({ "custom_id": custom_id, "component_type": kind, "values": values });
            let rec = new_interaction(
                st,
                3,
                channel_id,
                guild_id,
                user_id,
                Some(message_id),
                custom_id,
            );
            let payload = interaction_payload(st, &rec, data, Some(msg), locale);
            register_and_dispatch(st, rec, payload)
        })
    }

    /// A user submits the modal `custom_id` the bot showed them (type 9 response). Fields
    /// are `(text input custom_id, value)`; unknown inputs and missing required ones panic.
    pub async fn user_submits_modal(
        &self,
        channel_id: u64,
        user_id: u64,
        guild_id: Option<u64>,
        custom_id: &str,
        fields: &[(&str, &str)],
        locale: &str,
    ) -> u64 {
        self.wait_session().await;
        self.act(|st| {
            let channel_id = resolve_channel(st, guild_id, channel_id, user_id)?;
            let Some(pos) = st.modals.iter().rposition(|m| m.custom_id == custom_id && m.user_id == user_id && m.channel_id == channel_id) else {
                return Err(format!(
                    "no modal {custom_id:?} was shown to user {user_id} in channel {channel_id} (shown: {:?})",
                    st.modals.iter().map(|m| (&m.custom_id, m.user_id, m.channel_id)).collect::<Vec<_>>()
                ));
            };
            let modal = st.modals.remove(pos);
            let inputs: Vec<Value> = modal.data["components"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
                .filter(|c| c["type"].as_u64() == Some(4))
                .collect();
            for (k, _) in fields {
                if !inputs.iter().any(|i| i["custom_id"].as_str() == Some(k)) {
                    return Err(format!("modal {custom_id} has no text input {k:?}"));
                }
            }
            let mut rows = vec![];
            for input in &inputs {
                let cid = input["custom_id"].as_str().unwrap_or("");
                let value = fields.iter().find(|(k, _)| *k == cid).map(|(_, v)| *v);
                let required = input.get("required").and_then(Value::as_bool).unwrap_or(true);
                if value.is_none() && required {
                    return Err(format!("modal {custom_id}: required input {cid:?} not filled"));
                }
                rows.push(json!({ "type": 1, "components": [{ "type": 4, "custom_id": cid, "value": value.unwrap_or("") }] }));
            }
            let data = json!({ "custom_id": custom_id, "components": rows });
            let message = modal.source_message.and_then(|m| st.messages.get(&m).cloned());
            let trigger = st.interactions.get(&modal.interaction_id).map(|r| r.metadata.clone());
            let mut rec = new_interaction(st, 5, channel_id, guild_id, user_id, modal.source_message, custom_id);
            if let Some(t) = trigger {
                rec.metadata["triggering_interaction_metadata"] = t;
            } else {
                rec.metadata = Value::Null;
            }
            let payload = interaction_payload(st, &rec, data, message, locale);
            register_and_dispatch(st, rec, payload)
        })
    }

    // ------------------------------------------------------------------ observing the bot

    /// Every REST call so far, in arrival order (unknown endpoints and injected failures
    /// included).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// How many REST calls were recorded so far (without copying them).
    pub fn call_count(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// Every REST call from now on, as it is recorded (for load drivers that must not
    /// scan `calls()` again and again). Dropping the receiver unsubscribes.
    pub fn subscribe_calls(&self) -> tokio::sync::mpsc::UnboundedReceiver<RecordedCall> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.shared.lock().call_subscribers.push(tx);
        rx
    }

    /// When the user action `id` (a DM's message id or an interaction id returned by a
    /// `user_*` method) was queued on the bot's live gateway connection; `None` if the
    /// bot was disconnected then (it gets the event on RESUME).
    pub fn dispatched_at(&self, id: u64) -> Option<std::time::Instant> {
        self.shared.lock().dispatch_at.get(&id).copied()
    }

    /// First call (past or future) matching `pred`; panics with all calls after the timeout.
    pub async fn wait_for_call(&self, pred: impl Fn(&RecordedCall) -> bool) -> RecordedCall {
        self.wait_until("a matching REST call", |st| {
            st.calls.iter().find(|c| pred(c)).cloned()
        })
        .await
    }

    /// Wait until `pred(all calls so far)` holds; returns the calls.
    pub async fn wait_for(&self, pred: impl Fn(&[RecordedCall]) -> bool) -> Vec<RecordedCall> {
        self.wait_until("the calls predicate", |st| {
            pred(&st.calls).then(|| st.calls.clone())
        })
        .await
    }

    /// Current messages of a channel, oldest first, after edits/deletes. Ephemeral and
    /// deferred ("thinking", flag 128) interaction messages are included with their flags.
    pub fn messages_in(&self, channel_id: u64) -> Vec<Value> {
        self.shared.lock().messages_in(channel_id)
    }
    pub fn message(&self, message_id: u64) -> Option<Value> {
        self.shared.lock().messages.get(&message_id).cloned()
    }
    pub fn channel(&self, channel_id: u64) -> Option<Value> {
        self.shared.lock().channels.get(&channel_id).cloned()
    }
    pub fn dm_channel_of(&self, user_id: u64) -> Option<u64> {
        self.shared.lock().dm_channels.get(&user_id).copied()
    }
    /// Every body POSTed to /interactions/{id}/{token}/callback for this interaction, in
    /// order, including rejected second acknowledgements (see `calls()` for statuses).
    pub fn interaction_responses(&self, interaction_id: u64) -> Vec<Value> {
        self.shared
            .lock()
            .interactions
            .get(&interaction_id)
            .map(|r| r.callbacks.clone())
            .unwrap_or_default()
    }
    /// The message `@original` currently refers to (after webhook edits).
    pub fn original_response(&self, interaction_id: u64) -> Option<Value> {
        let st = self.shared.lock();
        let mid = st.interactions.get(&interaction_id)?.original?;
        st.messages.get(&mid).cloned()
    }
    /// Followup messages created through POST /webhooks/{app}/{token}.
    pub fn followups(&self, interaction_id: u64) -> Vec<Value> {
        let st = self.shared.lock();
        st.interactions
            .get(&interaction_id)
            .map(|r| {
                r.followups
                    .iter()
                    .filter_map(|m| st.messages.get(m).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Commands registered by the bot: `None` = global, `Some(guild)` = that guild's.
    pub fn commands(&self, guild_id: Option<u64>) -> Vec<Value> {
        let st = self.shared.lock();
        match guild_id {
            Some(g) => st.guild_commands.get(&g).cloned().unwrap_or_default(),
            None => st.global_commands.clone(),
        }
    }
    /// Every dispatch sent on the gateway (`(t, d)`), in order; replays are not repeated.
    pub fn dispatched_events(&self) -> Vec<(String, Value)> {
        self.shared.lock().gw.dispatched.clone()
    }
    /// IDENTIFY payloads received (token included), e.g. to check intents.
    pub fn identify_payloads(&self) -> Vec<Value> {
        self.shared.lock().gw.identify_payloads.clone()
    }
    /// Gateway URLs the bot connected to, query included (`ws://127.0.0.1:P?v=10`).
    pub fn gateway_urls(&self) -> Vec<String> {
        self.shared.lock().gw.urls.clone()
    }
    /// Problems the stand-in detected (payloads serenity could not decode, protocol misuse).
    pub fn stand_in_errors(&self) -> Vec<String> {
        self.shared.lock().errors.clone()
    }

    // ------------------------------------------------------------------ fault injection

    /// Answer the next `times` requests whose method matches (`"*"` = any) and whose path
    /// (without `/api/v10`) starts with `path_prefix` with `status` + `body`. For 429 the
    /// Discord headers are added from the body: `Retry-After` (whole seconds, rounded up),
    /// `X-RateLimit-Limit/Remaining(0)/Reset/Reset-After/Bucket/Scope` and
    /// `X-RateLimit-Global` when `"global": true`. See `rate_limit_body`.
    pub fn fail_next(
        &self,
        method: &str,
        path_prefix: &str,
        status: u16,
        body: Value,
        times: usize,
    ) {
        self.push_fault(method, path_prefix, None, status, body, times, false);
    }

    /// Like `fail_next`, but each matching request is carried out first and only its answer
    /// is replaced: Discord acted (a message was created, a thread made) and the caller got
    /// `status` + `body` instead of the result, as when a response is lost at Discord's edge
    /// (502/504) or times out. This is the case nonces and `enforce_nonce` exist for. With
    /// `body_contains`, only requests whose JSON body (as text; JSON escapes apply to quotes
    /// and control characters, not to other Unicode) contains that text match, e.g. one
    /// message among several posted to the same place.
    pub fn fail_next_after_processing(
        &self,
        method: &str,
        path_prefix: &str,
        body_contains: Option<&str>,
        status: u16,
        body: Value,
        times: usize,
    ) {
        self.push_fault(
            method,
            path_prefix,
            body_contains,
            status,
            body,
            times,
            true,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn push_fault(
        &self,
        method: &str,
        path_prefix: &str,
        body_contains: Option<&str>,
        status: u16,
        body: Value,
        times: usize,
        after: bool,
    ) {
        let prefix = path_prefix
            .strip_prefix("/api/v10")
            .unwrap_or(path_prefix)
            .to_string();
        self.mutate(|st| {
            st.faults.push(Fault {
                method: method.to_string(),
                path_prefix: prefix,
                status,
                body,
                remaining: times,
                after,
                body_contains: body_contains.map(str::to_string),
            })
        });
    }

    /// How long a nonce with `enforce_nonce` is remembered (5 minutes by
    /// default). `Duration::ZERO` plays a retry that comes after Discord's
    /// window: the same nonce creates a second message.
    pub fn set_nonce_window(&self, window: std::time::Duration) {
        self.mutate(|st| st.nonce_window = window);
    }

    /// The JSON body Discord sends with a 429.
    pub fn rate_limit_body(retry_after_secs: f64, global: bool) -> Value {
        json!({ "message": "You are being rate limited.", "retry_after": retry_after_secs, "global": global })
    }

    // ------------------------------------------------------------------ gateway control

    /// Drop the bot's gateway TCP connection without a close frame. serenity reconnects and
    /// RESUMEs; dispatches sent meanwhile are buffered and replayed. Returns once the old
    /// connection is gone.
    pub async fn disconnect_gateway(&self) {
        let conn = {
            let mut st = self.shared.lock();
            let c = st.detach_current();
            if let Some(c) = c {
                st.send_to_conn(c, Out::Drop);
            }
            c
        };
        self.shared.notify();
        if let Some(c) = conn {
            self.wait_until("the old gateway connection to close", |st| {
                (!st.gw.conns.contains_key(&c)).then_some(())
            })
            .await;
        }
    }

    /// Send op 7 RECONNECT; serenity opens a new connection and RESUMEs.
    pub async fn send_reconnect(&self) {
        self.gateway_op(|st, c| st.send_to_conn(c, Out::Text(model::op_frame(7, Value::Null))));
    }

    /// Send op 9 INVALID_SESSION. With `resumable = false` the session is dead and serenity
    /// re-IDENTIFIES (its shard queuer waits up to 5 s between identifies).
    pub async fn invalidate_session(&self, resumable: bool) {
        self.gateway_op(|st, c| {
            if !resumable {
                st.invalidate_current();
            }
            st.send_to_conn(c, Out::Text(model::op_frame(9, json!(resumable))));
        });
    }

    /// Close the bot's connection with a close code (e.g. 4000 resumable, 4009 session
    /// timed out, 4004 authentication failed — serenity stops on the latter).
    pub async fn close_gateway(&self, code: u16, reason: &str) {
        self.gateway_op(|st, _| {
            if let Some(c) = st.detach_current() {
                if code == 4009 || code == 4004 {
                    st.invalidate_current();
                }
                st.send_to_conn(c, Out::Close(code, reason.to_string()));
            }
        });
    }

    /// Park every RESUME the bot sends until `release_resumes` (the bot stays disconnected,
    /// so dispatches made meanwhile are deterministically buffered and then replayed).
    pub fn hold_resumes(&self) {
        self.mutate(|st| st.gw.hold_resumes = true);
    }

    /// Process the parked RESUMEs (replay + RESUMED) and stop parking.
    pub fn release_resumes(&self) {
        self.mutate(|st| {
            st.gw.hold_resumes = false;
            for (conn, d) in std::mem::take(&mut st.gw.parked_resumes) {
                gateway::resume(st, conn, &d);
            }
        });
    }

    /// Snapshot of the gateway counters.
    pub fn gateway_stats(&self) -> GatewayStats {
        let st = self.shared.lock();
        stats(&st)
    }

    /// Wait until `pred(gateway counters)` holds.
    pub async fn wait_gateway(&self, pred: impl Fn(&GatewayStats) -> bool) -> GatewayStats {
        self.wait_until("the gateway predicate", |st| {
            let s = stats(st);
            pred(&s).then_some(s)
        })
        .await
    }

    pub fn gateway_connections(&self) -> usize {
        self.shared.lock().gw.connections_total
    }
    pub fn resumes(&self) -> usize {
        self.shared.lock().gw.resumes
    }
    pub fn identifies(&self) -> usize {
        self.shared.lock().gw.identifies
    }
    pub fn heartbeats(&self) -> usize {
        self.shared.lock().gw.heartbeats
    }
    pub fn is_connected(&self) -> bool {
        self.shared.lock().gw.connected()
    }

    /// Until the bot's current session has a live connection after READY or RESUMED.
    pub async fn wait_ready(&self) {
        self.wait_until("the bot to be connected (READY/RESUMED)", |st| {
            st.gw.connected().then_some(())
        })
        .await
    }

    // ------------------------------------------------------------------ internals

    fn mutate<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.shared.lock());
        self.shared.notify();
        out
    }

    fn act<T>(&self, f: impl FnOnce(&mut State) -> Result<T, String>) -> T {
        let (out, errors) = {
            let mut st = self.shared.lock();
            (f(&mut st), st.errors.clone())
        };
        self.shared.notify();
        match out {
            Ok(v) => v,
            Err(e) => panic!("DiscordStandIn: {e}\nstand-in errors so far: {errors:#?}"),
        }
    }

    fn gateway_op(&self, f: impl FnOnce(&mut State, u64)) {
        {
            let mut st = self.shared.lock();
            let Some(c) = st.current_conn() else {
                panic!("DiscordStandIn: the bot has no live gateway connection");
            };
            f(&mut st, c);
        }
        self.shared.notify();
    }

    /// Until the bot has identified at least once (user actions need a session).
    async fn wait_session(&self) {
        self.wait_until("the bot to IDENTIFY", |st| {
            st.gw.current.is_some().then_some(())
        })
        .await
    }

    async fn wait_until<T>(&self, what: &str, mut f: impl FnMut(&State) -> Option<T>) -> T {
        let timeout = *self.shared.wait_timeout.lock().unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = f(&self.shared.lock()) {
                return v;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let st = self.shared.lock();
                let calls: Vec<String> = st
                    .calls
                    .iter()
                    .map(|c| {
                        format!(
                            "#{} {} {}{} -> {} {}",
                            c.index,
                            c.method,
                            c.path,
                            c.query
                                .as_deref()
                                .map(|q| format!("?{q}"))
                                .unwrap_or_default(),
                            c.status,
                            c.body.as_ref().map(|b| b.to_string()).unwrap_or_default()
                        )
                    })
                    .collect();
                panic!(
                    "DiscordStandIn: timed out after {timeout:?} waiting for {what}\n\
                     REST calls so far ({}):\n  {}\n\
                     gateway: connections={} identifies={} resumes={} connected={}\n\
                     stand-in errors: {:#?}",
                    calls.len(),
                    calls.join("\n  "),
                    st.gw.connections_total,
                    st.gw.identifies,
                    st.gw.resumes,
                    st.gw.connected(),
                    st.errors
                );
            }
        }
    }
}

// ---------------------------------------------------------------------- helpers

/// Remembers when a user action was handed to the bot's live connection.
fn record_dispatch(st: &mut State, id: u64) {
    if let Some(at) = st.gw.last_dispatch_at {
        st.dispatch_at.insert(id, at);
    }
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

fn find_command<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter()
        .find(|c| c["name"].as_str() == Some(name) && c["type"].as_u64().unwrap_or(1) == 1)
}

fn convert_options(cmd: &Value, options: Value) -> Value {
    match options {
        Value::Null => json!([]),
        Value::Object(map) => {
            let defs = cmd["options"].as_array().cloned().unwrap_or_default();
            let list: Vec<Value> = map
                .into_iter()
                .map(|(k, v)| {
                    let declared = defs
                        .iter()
                        .find(|d| d["name"].as_str() == Some(k.as_str()))
                        .and_then(|d| d["type"].as_u64());
                    let kind = declared.unwrap_or(match &v {
                        Value::Bool(_) => 5,
                        Value::Number(n) if n.is_i64() || n.is_u64() => 4,
                        Value::Number(_) => 10,
                        _ => 3,
                    });
                    json!({ "name": k, "type": kind, "value": v })
                })
                .collect();
            json!(list)
        }
        other => other,
    }
}

fn check_guild_channel(st: &State, guild_id: u64, channel_id: u64) -> Result<(), String> {
    match st.guild_of_channel(channel_id) {
        Some(g) if g == guild_id => Ok(()),
        Some(g) => Err(format!("channel {channel_id} belongs to guild {g}, not {guild_id}")),
        None => Err(format!("channel {channel_id} is not a known channel of guild {guild_id}; call add_text_channel")),
    }
}

fn check_member(st: &State, guild_id: u64, user_id: u64) -> Result<(), String> {
    let g = st
        .guilds
        .get(&guild_id)
        .ok_or_else(|| format!("unknown guild {guild_id}; call add_guild"))?;
    if g.members.contains_key(&user_id) {
        Ok(())
    } else {
        Err(format!(
            "user {user_id} is not a member of guild {guild_id}; call add_member"
        ))
    }
}

/// Guild interactions: the channel must belong to the guild and the user be a member.
/// DM interactions: the user's DM channel (created if needed); pass 0 or that channel id.
fn resolve_channel(
    st: &mut State,
    guild_id: Option<u64>,
    channel_id: u64,
    user_id: u64,
) -> Result<u64, String> {
    match guild_id {
        Some(g) => {
            check_guild_channel(st, g, channel_id)?;
            check_member(st, g, user_id)?;
            Ok(channel_id)
        }
        None => {
            st.ensure_user(user_id);
            let dm = st.ensure_dm(user_id);
            if channel_id == 0 || channel_id == dm {
                Ok(dm)
            } else {
                Err(format!("channel {channel_id} is not user {user_id}'s DM channel ({dm}); pass 0 or guild_id"))
            }
        }
    }
}

fn find_component(
    st: &mut State,
    channel_id: u64,
    message_id: u64,
    guild_id: Option<u64>,
    user_id: u64,
    custom_id: &str,
) -> Result<(Value, Value), String> {
    let msg = st
        .messages
        .get(&message_id)
        .cloned()
        .ok_or_else(|| format!("unknown message {message_id}"))?;
    if as_id(&msg["channel_id"]) != Some(channel_id) {
        return Err(format!(
            "message {message_id} is not in channel {channel_id}"
        ));
    }
    resolve_channel(st, guild_id, channel_id, user_id)?;
    let comps: Vec<Value> = msg["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .collect();
    let comp = comps
        .iter()
        .find(|c| c["custom_id"].as_str() == Some(custom_id))
        .cloned()
        .ok_or_else(|| {
            format!(
                "message {message_id} has no component {custom_id:?} (has {:?})",
                comps
                    .iter()
                    .filter_map(|c| c["custom_id"].as_str())
                    .collect::<Vec<_>>()
            )
        })?;
    if comp["disabled"].as_bool() == Some(true) {
        return Err(format!("component {custom_id} is disabled"));
    }
    Ok((msg, comp))
}

fn new_interaction(
    st: &mut State,
    kind: u64,
    channel_id: u64,
    guild_id: Option<u64>,
    user_id: u64,
    message_id: Option<u64>,
    name: &str,
) -> InteractionRec {
    let iid = st.next_id();
    let token = format!("aW50ZXJhY3Rpb246{iid}OnN0YW5kLWlu");
    let owners = json!({ "0": guild_id.map_or_else(|| "0".to_string(), |g| g.to_string()) });
    let mut metadata = json!({ "id": id(iid), "type": kind, "user": st.user_obj(user_id), "authorizing_integration_owners": owners });
    if kind == 3 {
        metadata["interacted_message_id"] = id(message_id.unwrap_or(0));
    }
    InteractionRec {
        id: iid,
        token,
        kind,
        channel_id,
        guild_id,
        user_id,
        message_id,
        name: name.to_string(),
        response_type: None,
        original: None,
        callbacks: vec![],
        followups: vec![],
        metadata,
    }
}

fn interaction_payload(
    st: &State,
    rec: &InteractionRec,
    data: Value,
    message: Option<Value>,
    locale: &str,
) -> Value {
    let mut channel = st
        .channels
        .get(&rec.channel_id)
        .cloned()
        .unwrap_or(Value::Null);
    let mut v = json!({
        "id": id(rec.id),
        "application_id": id(st.app_id),
        "type": rec.kind,
        "data": data,
        "channel_id": id(rec.channel_id),
        "token": rec.token,
        "version": 1,
        "locale": locale,
        "app_permissions": DEFAULT_PERMISSIONS,
        "entitlements": [],
        "authorizing_integration_owners": rec.metadata["authorizing_integration_owners"],
        "context": if rec.guild_id.is_some() { 0 } else { 1 },
        "attachment_size_limit": 10_485_760,
    });
    match rec.guild_id {
        Some(g) => {
            channel["permissions"] = json!(DEFAULT_PERMISSIONS);
            let mut member = st.member_obj(g, rec.user_id).unwrap_or(Value::Null);
            member["permissions"] = json!(DEFAULT_PERMISSIONS);
            v["guild_id"] = id(g);
            v["guild"] = json!({ "id": id(g), "locale": "en-US", "features": [] });
            v["guild_locale"] = json!("en-US");
            v["member"] = member;
        }
        None => v["user"] = st.user_obj(rec.user_id),
    }
    v["channel"] = channel;
    if let Some(m) = message {
        v["message"] = m;
    }
    v
}

fn register_and_dispatch(
    st: &mut State,
    rec: InteractionRec,
    payload: Value,
) -> Result<u64, String> {
    let iid = rec.id;
    st.interactions.insert(iid, rec);
    st.dispatch("INTERACTION_CREATE", payload, None)?;
    record_dispatch(st, iid);
    Ok(iid)
}
