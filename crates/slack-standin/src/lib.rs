//! A local Slack stand-in for integration tests and the Slack benchmark: one HTTP server
//! on 127.0.0.1 (OS-chosen port) speaking Slack's Web API (`/api/<method>`) and Socket
//! Mode (the WebSocket URL `apps.connections.open` returns), driven by the REAL
//! slack-morphism client.
//!
//! See `README.md` next to this file for the guide; in short:
//!
//! ```ignore
//! let slack = SlackStandIn::start().await;
//! slack.add_user("U0OWNER", "owner");
//! let client = slack.client();                  // slack-morphism client aimed at the stand-in
//! // … start a Socket Mode listener with slack.app_token() …
//! slack.wait_connected().await;
//! slack.user_sends_dm("U0OWNER", "こんにちは").await;
//! let call = slack.wait_for_call(|c| c.method == "chat.postMessage").await;
//! ```
//!
//! Every envelope the stand-in sends is first decoded with slack-morphism's
//! `SlackSocketModeEvent`, and every successful Web API answer with the response model
//! slack-morphism reads it into; a failure lands in `stand_in_errors()` (and makes the
//! `user_*` action panic) instead of being silently dropped by the client.

mod events;
#[doc(hidden)]
pub mod model;
mod socket;
mod state;
mod web;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use slack_morphism::prelude::*;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The slack-morphism the stand-in checks against and wires (`client()`, `connector()`),
/// for tests that drive it without depending on the crate themselves.
pub use slack_morphism;
pub use state::{Ack, ApiCall, Envelope, Ephemeral, ViewRec, ACK_DEADLINE};
use state::{Channel, Fault, FaultKind, Out, Shared, State, User};

/// Start-up options; `SlackStandIn::start()` uses the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    pub team_id: String,
    pub team_domain: String,
    pub app_id: String,
    /// The bot user's id (`U…`), as `auth.test` answers.
    pub bot_user_id: String,
    /// The bot's `bot_id` (`B…`), carried by its messages.
    pub bot_id: String,
    pub bot_name: String,
    /// Deliver the bot's own messages back to it as `message` events (with `bot_id`), as
    /// Slack does. On by default: a bot must ignore them.
    pub echo_bot_messages: bool,
    /// Decode every envelope and Web API answer with slack-morphism's models (default).
    pub check_models: bool,
    /// `views.open` answers `expired_trigger_id` when its trigger is older than this.
    /// Slack's limit is 3 s; the default (`None`) only records each trigger's age (see
    /// `views()`), so a loaded test machine does not make tests flaky.
    pub trigger_ttl: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            team_id: "T0STANDIN1".into(),
            team_domain: "standin".into(),
            app_id: "A0MADOGUCHI".into(),
            bot_user_id: "U0MADOBOT1".into(),
            bot_id: "B0MADOBOT1".into(),
            bot_name: "madoguchi".into(),
            echo_bot_messages: true,
            check_models: true,
            trigger_ttl: None,
        }
    }
}

/// The interactive elements (buttons, selects, checkboxes, inputs) of a message or view's
/// blocks: what a test looks through to find the `action_id` to use.
pub fn elements(blocks: &Value) -> Vec<Value> {
    model::elements(blocks)
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// The element whose `action_id` is `key`, whose `action_id` starts with `key`, or whose
/// label (`text.text`) is `key`.
pub fn element(blocks: &Value, key: &str) -> Option<Value> {
    let all = elements(blocks);
    all.iter()
        .find(|e| e["action_id"] == key)
        .or_else(|| all.iter().find(|e| e["text"]["text"] == key))
        .or_else(|| {
            all.iter()
                .find(|e| e["action_id"].as_str().is_some_and(|a| a.starts_with(key)))
        })
        .cloned()
}

/// Socket Mode counters (see `socket_stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketStats {
    /// WebSocket connections accepted so far.
    pub connections: usize,
    /// Connections open now that receive envelopes.
    pub live: usize,
    /// `apps.connections.open` calls answered `ok`.
    pub urls_issued: usize,
    /// Envelopes waiting for a live connection.
    pub pending: usize,
    pub envelopes: usize,
    pub acked: usize,
    pub disconnects_sent: usize,
    pub drops: usize,
}

pub struct SlackStandIn {
    shared: Arc<Shared>,
    api_url: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SlackStandIn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug)]
struct ConnectionDropped;
impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response dropped on purpose")
    }
}
impl std::error::Error for ConnectionDropped {}

impl SlackStandIn {
    /// Bind the server on 127.0.0.1 (port 0) with default options.
    pub async fn start() -> SlackStandIn {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> SlackStandIn {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Slack stand-in on 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let http_base = format!("http://{addr}");
        let st = State {
            team_id: opts.team_id.clone(),
            team_domain: opts.team_domain.clone(),
            app_id: opts.app_id.clone(),
            bot_user_id: opts.bot_user_id.clone(),
            bot_id: opts.bot_id.clone(),
            bot_name: opts.bot_name.clone(),
            bot_token: format!("xoxb-1-standin-{}", opts.bot_id.to_lowercase()),
            app_token: format!("xapp-1-{}-1-standin", opts.app_id),
            http_base: http_base.clone(),
            ws_base: format!("ws://{addr}"),
            echo_bot_messages: opts.echo_bot_messages,
            check_models: opts.check_models,
            trigger_ttl: opts.trigger_ttl,
            clock: model::TsClock::new(),
            counter: 0,
            users: BTreeMap::new(),
            channels: BTreeMap::new(),
            dms: Default::default(),
            usergroups: BTreeMap::new(),
            messages: Default::default(),
            ephemerals: vec![],
            triggers: Default::default(),
            views: BTreeMap::new(),
            response_urls: Default::default(),
            element_states: Default::default(),
            calls: vec![],
            call_subscribers: vec![],
            faults: vec![],
            errors: vec![],
            conns: BTreeMap::new(),
            next_conn: 0,
            connections_total: 0,
            tickets: Default::default(),
            rr: 0,
            envelopes: vec![],
            by_envelope: Default::default(),
            pending: Default::default(),
            lose_acks: 0,
            unknown_acks: vec![],
            disconnects_sent: 0,
            drops: 0,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(st),
            changed: tokio::sync::Notify::new(),
            // A bound, not a timing: waits end as soon as what they wait for
            // happens. It is generous because CI runs the end-to-end tests
            // two at a time on two loaded cores, where a consultation and
            // its deliveries took over 10 s.
            wait_timeout: Mutex::new(Duration::from_secs(30)),
        });
        {
            let mut st = shared.lock();
            let bot = opts.bot_user_id.clone();
            st.users.insert(
                bot.clone(),
                User {
                    id: bot,
                    name: opts.bot_name.clone(),
                    real_name: opts.bot_name.clone(),
                    is_admin: false,
                    is_bot: true,
                    locale: "ja-JP".into(),
                },
            );
        }
        let app = axum::Router::new()
            .route("/api/{method}", axum::routing::any(web::api_handler))
            .route(
                "/actions/{*rest}",
                axum::routing::post(web::response_url_handler),
            )
            .route("/link/", axum::routing::get(socket::ws_handler))
            .with_state(shared.clone());
        let task = tokio::spawn(serve(listener, app));
        SlackStandIn {
            shared,
            api_url: format!("{http_base}/api"),
            tasks: vec![task],
        }
    }

    // ------------------------------------------------------------------ wiring

    /// `http://127.0.0.1:PORT/api`, for `SlackClientHyperConnector::with_slack_api_url`.
    pub fn api_url(&self) -> String {
        self.api_url.clone()
    }
    /// The bot token (`xoxb-…`), the only one the Web API methods accept.
    pub fn bot_token_value(&self) -> String {
        self.shared.lock().bot_token.clone()
    }
    /// The app-level token (`xapp-…`), the only one `apps.connections.open` accepts.
    pub fn app_token_value(&self) -> String {
        self.shared.lock().app_token.clone()
    }
    pub fn bot_token(&self) -> SlackApiToken {
        SlackApiToken::new(SlackApiTokenValue::new(self.bot_token_value()))
    }
    pub fn app_token(&self) -> SlackApiToken {
        SlackApiToken::new(SlackApiTokenValue::new(self.app_token_value()))
    }
    pub fn bot_user_id(&self) -> String {
        self.shared.lock().bot_user_id.clone()
    }
    pub fn bot_id(&self) -> String {
        self.shared.lock().bot_id.clone()
    }
    pub fn team_id(&self) -> String {
        self.shared.lock().team_id.clone()
    }
    pub fn app_id(&self) -> String {
        self.shared.lock().app_id.clone()
    }

    /// slack-morphism's hyper connector (the `SlackClientHyperHttpsConnector` type the
    /// bot uses, allowing plain `http://`) aimed at the stand-in.
    pub fn connector(&self) -> SlackClientHyperHttpsConnector {
        connector_for(&self.api_url)
    }

    /// A slack-morphism client aimed at the stand-in.
    pub fn client(&self) -> Arc<SlackClient<SlackClientHyperHttpsConnector>> {
        Arc::new(SlackClient::new(self.connector()))
    }

    /// Timeout of every `wait_*` helper (default 10 s).
    pub fn set_wait_timeout(&self, d: Duration) {
        *self.shared.wait_timeout.lock().unwrap() = d;
    }

    /// See `Options::trigger_ttl`.
    pub fn set_trigger_ttl(&self, ttl: Option<Duration>) {
        self.mutate(|st| st.trigger_ttl = ttl);
    }

    // ------------------------------------------------------------------ world set-up

    /// A workspace member (locale `ja-JP`, time zone Asia/Tokyo).
    pub fn add_user(&self, id: &str, name: &str) {
        self.mutate(|st| {
            st.users.insert(
                id.to_string(),
                User {
                    id: id.to_string(),
                    name: name.to_string(),
                    real_name: name.to_string(),
                    is_admin: false,
                    is_bot: false,
                    locale: "ja-JP".into(),
                },
            );
        });
    }

    /// A workspace admin (`is_admin: true` in `users.info`).
    pub fn add_admin(&self, id: &str, name: &str) {
        self.add_user(id, name);
        self.mutate(|st| st.users.get_mut(id).unwrap().is_admin = true);
    }

    /// The locale `users.info` answers with `include_locale` (e.g. `en-US`).
    pub fn set_user_locale(&self, id: &str, locale: &str) {
        self.mutate(|st| {
            st.ensure_user(id);
            st.users.get_mut(id).unwrap().locale = locale.to_string();
        });
    }

    /// A public channel with these members and the bot (unknown users are created).
    pub fn add_channel(&self, id: &str, name: &str, members: &[&str]) {
        self.add_channel_of_kind(id, name, members, "channel");
    }

    /// A private channel with these members and the bot.
    pub fn add_private_channel(&self, id: &str, name: &str, members: &[&str]) {
        self.add_channel_of_kind(id, name, members, "group");
    }

    fn add_channel_of_kind(&self, id: &str, name: &str, members: &[&str], kind: &'static str) {
        self.mutate(|st| {
            let mut set: std::collections::BTreeSet<String> =
                members.iter().map(|m| m.to_string()).collect();
            for m in members {
                st.ensure_user(m);
            }
            set.insert(st.bot_user_id.clone());
            st.channels.insert(
                id.to_string(),
                Channel {
                    name: name.to_string(),
                    kind,
                    members: set,
                    timeline: vec![],
                },
            );
        });
    }

    /// Add a member to a channel.
    pub fn join_channel(&self, channel: &str, user: &str) {
        self.mutate(|st| {
            st.ensure_user(user);
            st.channels
                .get_mut(channel)
                .unwrap_or_else(|| panic!("SlackStandIn: unknown channel {channel}"))
                .members
                .insert(user.to_string());
        });
    }

    /// A user group (`S…`, mention handle) with these members, for `usergroups.users.list`.
    pub fn add_usergroup(&self, id: &str, handle: &str, members: &[&str]) {
        self.mutate(|st| {
            for m in members {
                st.ensure_user(m);
            }
            st.usergroups.insert(
                id.to_string(),
                (
                    handle.to_string(),
                    members.iter().map(|m| m.to_string()).collect(),
                ),
            );
        });
    }

    /// Replace a user group's members.
    pub fn set_usergroup_members(&self, id: &str, members: &[&str]) {
        self.mutate(|st| {
            let g = st
                .usergroups
                .get_mut(id)
                .unwrap_or_else(|| panic!("SlackStandIn: unknown user group {id}"));
            g.1 = members.iter().map(|m| m.to_string()).collect();
        });
    }

    /// The app's DM channel with `user`, if it exists yet (made by the user's first DM or
    /// the bot's `conversations.open`).
    pub fn dm_channel_of(&self, user: &str) -> Option<String> {
        self.shared.lock().dms.get(user).cloned()
    }

    // ------------------------------------------------------------------ acting as users

    /// A user types `text` in their DM with the app: stored, and a `message` event
    /// (`channel_type: im`) is sent. Returns the message's ts.
    pub async fn user_sends_dm(&self, user: &str, text: &str) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            st.ensure_user(user);
            let dm = st.ensure_dm(user);
            let (ts, ev) = events::user_message(st, &dm, user, text, None)?;
            let payload = events::event_callback(st, ev);
            st.enqueue("events_api", "message".into(), payload)?;
            Ok(ts)
        })
    }

    /// A user posts `text` in a channel. Returns the message's ts.
    pub async fn user_sends_message(&self, channel: &str, user: &str, text: &str) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            check_member(st, channel, user)?;
            let (ts, ev) = events::user_message(st, channel, user, text, None)?;
            let payload = events::event_callback(st, ev);
            st.enqueue("events_api", "message".into(), payload)?;
            Ok(ts)
        })
    }

    /// A user replies in the thread under `thread_ts` (in a channel or a DM). Returns the
    /// reply's ts.
    pub async fn user_replies_in_thread(
        &self,
        channel: &str,
        thread_ts: &str,
        user: &str,
        text: &str,
    ) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            check_member(st, channel, user)?;
            let (ts, ev) = events::user_message(st, channel, user, text, Some(thread_ts))?;
            let payload = events::event_callback(st, ev);
            st.enqueue("events_api", "message".into(), payload)?;
            Ok(ts)
        })
    }

    /// A user opens the app's Home (`app_home_opened`, tab `messages` or `home`). Returns
    /// the envelope id.
    pub async fn user_opens_app_home(&self, user: &str, tab: &str) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            st.ensure_user(user);
            let dm = st.ensure_dm(user);
            let ts = st.clock.next_ts();
            let ev = json!({
                "type": "app_home_opened",
                "user": user,
                "channel": dm,
                "tab": tab,
                "event_ts": ts,
            });
            let payload = events::event_callback(st, ev);
            st.enqueue("events_api", "app_home_opened".into(), payload)
        })
    }

    /// A user clicks the button `action_id` on the message `message_ts` in `channel` (a
    /// channel message or an ephemeral one shown to this user). Returns the envelope id.
    pub async fn user_clicks_button(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
    ) -> String {
        self.user_uses_element(user, channel, message_ts, action_id, &[], "button")
            .await
    }

    /// A user picks `values` in the element `action_id` of a message: one value for a
    /// `static_select`, `radio_buttons` or `overflow`; any number for `checkboxes` and
    /// `multi_static_select` (each must be one of its options). Returns the envelope id.
    pub async fn user_selects(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        values: &[&str],
    ) -> String {
        self.user_uses_element(user, channel, message_ts, action_id, values, "select")
            .await
    }

    async fn user_uses_element(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        values: &[&str],
        what: &str,
    ) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            check_member(st, channel, user)?;
            let target = events::find_target(st, channel, message_ts, user)?;
            let (block_id, el) = events::find_element(&target.blocks, action_id)?;
            if what == "button" && el["type"] != "button" {
                return Err(format!("{action_id} is a {}, not a button", el["type"]));
            }
            if what == "select" && el["type"] == "button" {
                return Err(format!("{action_id} is a button; use user_clicks_button"));
            }
            let payload = events::block_actions(st, user, &target, &block_id, &el, values)?;
            st.enqueue("interactive", "block_actions".into(), payload)
        })
    }

    /// A user submits the open modal `view_id` with `fields`: `{action_id (or block_id):
    /// value}`, a string for text inputs and single selects, an array of option values for
    /// checkboxes and multi-selects. Required inputs are enforced. Returns the envelope id.
    pub async fn user_submits_modal(&self, user: &str, view_id: &str, fields: Value) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            let rec = st.views.get(view_id).cloned().ok_or_else(|| {
                format!(
                    "no view {view_id}; the bot opened {:?}",
                    st.views.keys().collect::<Vec<_>>()
                )
            })?;
            if rec.user != user {
                return Err(format!(
                    "view {view_id} was opened for {}, not {user}",
                    rec.user
                ));
            }
            if !rec.open {
                return Err(format!("view {view_id} is closed"));
            }
            let state = events::view_state(&rec.json, &fields)?;
            let mut view = rec.json.clone();
            view["state"] = state.clone();
            if let Some(o) = view.as_object_mut() {
                o.remove("standin_errors");
            }
            if let Some(r) = st.views.get_mut(view_id) {
                r.json["state"] = state;
                if let Some(o) = r.json.as_object_mut() {
                    o.remove("standin_errors");
                }
                // Closed unless the ack answers with `errors`, `update` or `push`.
                r.open = false;
            }
            let trigger = st.issue_trigger(user);
            let payload = json!({
                "type": "view_submission",
                "team": st.team_json(),
                "user": st.basic_user(user),
                "api_app_id": st.app_id,
                "token": "standin-verification-token",
                "trigger_id": trigger,
                "view": view,
                "response_urls": [],
                "is_enterprise_install": false,
                "enterprise": null,
            });
            st.enqueue("interactive", "view_submission".into(), payload)
        })
    }

    /// A user runs a slash command (`/consult`, `/madoguchi reply …`) in a channel or
    /// their DM with the app (pass the DM id from `dm_channel_of`, or `""` for it). Returns
    /// the envelope id.
    pub async fn user_runs_slash_command(
        &self,
        user: &str,
        channel: &str,
        command: &str,
        text: &str,
    ) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            let channel = if channel.is_empty() {
                st.ensure_user(user);
                st.ensure_dm(user)
            } else {
                check_member(st, channel, user)?;
                channel.to_string()
            };
            if !command.starts_with('/') {
                return Err(format!("a slash command starts with '/': {command:?}"));
            }
            let payload = events::slash_command(st, user, &channel, command, text);
            st.enqueue("slash_commands", command.to_string(), payload)
        })
    }

    /// A user runs the message shortcut `callback_id` on a message (`message_action`).
    /// Returns the envelope id.
    pub async fn user_runs_message_action(
        &self,
        user: &str,
        channel: &str,
        message_ts: &str,
        callback_id: &str,
    ) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            check_member(st, channel, user)?;
            let mut message = st
                .public_message(message_ts, false)
                .filter(|_| st.messages[message_ts].channel == channel)
                .ok_or_else(|| format!("no message {message_ts} in {channel}"))?;
            web::strip_standin(&mut message);
            if let Some(o) = message.as_object_mut() {
                o.remove("channel");
            }
            let trigger = st.issue_trigger(user);
            let response_url = st.issue_response_url(channel, user, Some(message_ts));
            let name = st.channels[channel].name.clone();
            let payload = json!({
                "type": "message_action",
                "token": "standin-verification-token",
                "action_ts": st.clock.next_ts(),
                "team": st.team_json(),
                "user": st.basic_user(user),
                "channel": { "id": channel, "name": name },
                "is_enterprise_install": false,
                "enterprise": null,
                "callback_id": callback_id,
                "trigger_id": trigger,
                "response_url": response_url,
                "message_ts": message_ts,
                "message": message,
            });
            st.enqueue("interactive", "message_action".into(), payload)
        })
    }

    /// A user runs the global shortcut `callback_id`. Returns the envelope id.
    pub async fn user_runs_shortcut(&self, user: &str, callback_id: &str) -> String {
        self.wait_first_connection().await;
        self.act(|st| {
            st.ensure_user(user);
            let trigger = st.issue_trigger(user);
            let payload = json!({
                "type": "shortcut",
                "token": "standin-verification-token",
                "action_ts": st.clock.next_ts(),
                "team": st.team_json(),
                "user": st.basic_user(user),
                "is_enterprise_install": false,
                "enterprise": null,
                "callback_id": callback_id,
                "trigger_id": trigger,
            });
            st.enqueue("interactive", "shortcut".into(), payload)
        })
    }

    // ------------------------------------------------------------------ observing

    /// Every Web API call (and `response_url` POST, method `response_url`) in order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.lock().calls.clone()
    }

    /// Every Web API call from now on, as it is recorded: for a driver with many users
    /// at once (the benchmark), which routes each call to its user instead of each user
    /// searching all calls.
    pub fn subscribe_calls(&self) -> tokio::sync::mpsc::UnboundedReceiver<ApiCall> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.shared.lock().call_subscribers.push(tx);
        rx
    }

    /// The calls of one method.
    pub fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub fn call_count(&self, method: &str) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .count()
    }

    /// Calls per method (all answers, failed and injected ones included).
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in &self.shared.lock().calls {
            *out.entry(c.method.clone()).or_insert(0) += 1;
        }
        out
    }

    /// Total Web API calls so far (for per-turn figures).
    pub fn total_calls(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// The first call (past or future) matching `pred`.
    pub async fn wait_for_call(&self, pred: impl Fn(&ApiCall) -> bool) -> ApiCall {
        self.wait_until("a Web API call matching the predicate", |st| {
            st.calls.iter().find(|c| pred(c)).cloned()
        })
        .await
    }

    /// Until `pred(all calls)` holds; returns the calls.
    pub async fn wait_for(&self, pred: impl Fn(&[ApiCall]) -> bool) -> Vec<ApiCall> {
        self.wait_until_unlocked(
            "the calls predicate",
            |st| st.calls.clone(),
            |calls| pred(&calls).then_some(calls),
        )
        .await
    }

    /// Top-level messages of a channel (what a member sees, deleted ones gone), oldest
    /// first, each as Slack's message object with `metadata`, `blocks`, `thread_ts`,
    /// `reply_count`, and — for the bot's posts — `standin_unfurl_links` /
    /// `standin_unfurl_media` / `standin_mrkdwn` / `standin_parse` as the bot sent them.
    pub fn messages_in(&self, channel: &str) -> Vec<Value> {
        let st = self.shared.lock();
        let Some(c) = st.channels.get(channel) else {
            return vec![];
        };
        c.timeline
            .iter()
            .filter_map(|t| st.messages.get(t))
            .filter(|m| !m.deleted)
            .map(|m| with_channel(&m.json, &m.channel))
            .collect()
    }

    /// A thread: its parent first, then the replies, oldest first.
    pub fn thread(&self, channel: &str, thread_ts: &str) -> Vec<Value> {
        let st = self.shared.lock();
        let Some(parent) = st.messages.get(thread_ts).filter(|m| m.channel == channel) else {
            return vec![];
        };
        let mut out = vec![with_channel(&parent.json, channel)];
        for r in &parent.replies {
            if let Some(m) = st.messages.get(r).filter(|m| !m.deleted) {
                out.push(with_channel(&m.json, channel));
            }
        }
        out
    }

    /// Every message of a channel, thread replies included, in the order they were
    /// posted (for "was this posted exactly once" checks).
    pub fn all_messages_in(&self, channel: &str) -> Vec<Value> {
        let st = self.shared.lock();
        let mut list: Vec<&state::Msg> = st
            .messages
            .values()
            .filter(|m| m.channel == channel && !m.deleted)
            .collect();
        list.sort_by(|a, b| ts_key(&a.ts).total_cmp(&ts_key(&b.ts)));
        list.iter()
            .map(|m| with_channel(&m.json, channel))
            .collect()
    }

    /// The bot's messages in a channel, thread replies included, oldest first.
    pub fn bot_messages_in(&self, channel: &str) -> Vec<Value> {
        let bot = self.bot_user_id();
        self.all_messages_in(channel)
            .into_iter()
            .filter(|m| m["user"] == bot.as_str())
            .collect()
    }

    /// One message by ts (deleted ones included, with `"standin_deleted": true`).
    pub fn message(&self, ts: &str) -> Option<Value> {
        let st = self.shared.lock();
        st.messages.get(ts).map(|m| {
            let mut v = with_channel(&m.json, &m.channel);
            if m.deleted {
                v["standin_deleted"] = json!(true);
            }
            v
        })
    }

    /// Ephemeral messages shown to `user` in `channel`, oldest first (from
    /// `chat.postEphemeral`, a slash command's ack, or a `response_url`).
    pub fn ephemerals(&self, channel: &str, user: &str) -> Vec<Ephemeral> {
        self.shared
            .lock()
            .ephemerals
            .iter()
            .filter(|e| e.channel == channel && e.user == user)
            .cloned()
            .collect()
    }

    /// Every ephemeral message, oldest first.
    pub fn all_ephemerals(&self) -> Vec<Ephemeral> {
        self.shared.lock().ephemerals.clone()
    }

    /// Every modal the bot opened (or pushed), oldest first.
    pub fn views(&self) -> Vec<ViewRec> {
        let st = self.shared.lock();
        let mut v: Vec<ViewRec> = st.views.values().cloned().collect();
        v.sort_by_key(|r| r.id.clone());
        v
    }

    /// The modal open for `user` now (the most recent one), if any.
    pub fn open_view_of(&self, user: &str) -> Option<ViewRec> {
        self.views().into_iter().rfind(|v| v.user == user && v.open)
    }

    /// Until the bot has opened a modal for `user`; returns it.
    pub async fn wait_for_view(&self, user: &str) -> ViewRec {
        self.wait_until("a modal for the user", |st| {
            let mut v: Vec<&ViewRec> = st
                .views
                .values()
                .filter(|v| v.user == user && v.open)
                .collect();
            v.sort_by_key(|r| r.id.clone());
            v.last().map(|r| (*r).clone())
        })
        .await
    }

    /// Every envelope sent or queued, in order.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.shared.lock().envelopes.clone()
    }

    pub fn envelope(&self, envelope_id: &str) -> Option<Envelope> {
        let st = self.shared.lock();
        st.by_envelope
            .get(envelope_id)
            .map(|i| st.envelopes[*i].clone())
    }

    /// The envelopes (first delivery, then retries) that carried the `message` event of
    /// the user message `ts` (what `user_sends_dm` and friends return).
    pub fn envelopes_for_message(&self, ts: &str) -> Vec<Envelope> {
        self.shared
            .lock()
            .envelopes
            .iter()
            .filter(|e| e.kind == "events_api" && e.frame["payload"]["event"]["ts"] == ts)
            .cloned()
            .collect()
    }

    /// Until the bot acknowledges `envelope_id`; returns the ack (check
    /// `within_deadline` for Slack's 3 s).
    pub async fn wait_for_ack(&self, envelope_id: &str) -> Ack {
        self.wait_until("the envelope's acknowledgement", |st| {
            st.by_envelope
                .get(envelope_id)
                .and_then(|i| st.envelopes[*i].ack.clone())
        })
        .await
    }

    /// Envelopes sent but not acknowledged in time (never, late, or lost on purpose).
    pub fn unacked_or_late(&self) -> Vec<Envelope> {
        self.shared
            .lock()
            .envelopes
            .iter()
            .filter(|e| e.sent_at.is_some() && !e.acked_in_time())
            .cloned()
            .collect()
    }

    pub fn socket_stats(&self) -> SocketStats {
        let st = self.shared.lock();
        socket_stats(&st)
    }

    /// Until `pred(socket counters)` holds.
    pub async fn wait_socket(&self, pred: impl Fn(&SocketStats) -> bool) -> SocketStats {
        self.wait_until("the Socket Mode predicate", |st| {
            let s = socket_stats(st);
            pred(&s).then_some(s)
        })
        .await
    }

    /// Until at least one Socket Mode connection is live (has had `hello`).
    pub async fn wait_connected(&self) {
        self.wait_socket(|s| s.live >= 1).await;
    }

    /// Problems the stand-in found in its own payloads or in the bot's use of Slack
    /// (double acks, unknown envelopes, replies to missing threads, reused tickets).
    pub fn stand_in_errors(&self) -> Vec<String> {
        self.shared.lock().errors.clone()
    }

    // ------------------------------------------------------------------ faults

    /// The next `times` calls of `method` (`"*"` for any) answer HTTP 429 with
    /// `Retry-After: retry_after_secs` and `{"ok":false,"error":"ratelimited"}`.
    pub fn rate_limit(&self, method: &str, retry_after_secs: u64, times: usize) {
        self.push_fault(
            method,
            FaultKind::RateLimited { retry_after_secs },
            times,
            None,
        );
    }

    /// The next `times` calls of `method` answer `status` (e.g. 500, 503) with
    /// `{"ok":false,"error":"fatal_error"}`; nothing is carried out.
    pub fn fail_with_status(&self, method: &str, status: u16, times: usize) {
        self.fail_next(
            method,
            status,
            json!({ "ok": false, "error": "fatal_error" }),
            times,
        );
    }

    /// The next `times` calls of `method` answer `status` with `body`.
    pub fn fail_next(&self, method: &str, status: u16, body: Value, times: usize) {
        self.push_fault(method, FaultKind::Status { status, body }, times, None);
    }

    /// The next `times` calls of `method` (whose parameters, as JSON text, contain
    /// `params_contain` if given) are carried out — the message is posted — and then the
    /// connection is closed without an answer: the caller cannot know, and must look
    /// (e.g. `conversations.history` with `include_all_metadata`) before retrying.
    pub fn lose_response_after_commit(
        &self,
        method: &str,
        params_contain: Option<&str>,
        times: usize,
    ) {
        self.push_fault(method, FaultKind::DropAfterCommit, times, params_contain);
    }

    /// Faults not used up yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.iter().map(|f| f.remaining).sum()
    }

    fn push_fault(
        &self,
        method: &str,
        kind: FaultKind,
        times: usize,
        params_contain: Option<&str>,
    ) {
        self.mutate(|st| {
            st.faults.push(Fault {
                method: method.to_string(),
                kind,
                remaining: times,
                params_contain: params_contain.map(str::to_string),
            })
        });
    }

    /// Drop every live Socket Mode connection's TCP connection (no close frame). Envelopes
    /// from then on wait for the bot's next connection (made through
    /// `apps.connections.open`). Returns how many were dropped.
    pub fn drop_sockets(&self) -> usize {
        self.mutate(|st| {
            let ids: Vec<u64> = st.conns.keys().copied().collect();
            for id in &ids {
                if let Some(c) = st.conns.remove(id) {
                    let _ = c.tx.send(Out::Drop);
                }
            }
            st.drops += ids.len();
            ids.len()
        })
    }

    /// Send `{"type":"disconnect","reason":…}` on every live connection (Slack's
    /// `refresh_requested`, `link_disabled`, `warning`): no more envelopes go to them and
    /// the bot is expected to open a new connection. Returns how many got it.
    pub fn send_disconnect(&self, reason: &str) -> usize {
        self.mutate(|st| {
            let frame = json!({
                "type": "disconnect",
                "reason": reason,
                "debug_info": { "host": "applink-standin" },
            });
            if st.check_models {
                let r = model::check_frame(&frame);
                st.check(r);
            }
            let text = frame.to_string();
            let mut n = 0;
            for c in st.conns.values_mut().filter(|c| !c.draining) {
                c.draining = true;
                let _ = c.tx.send(Out::Text(text.clone()));
                n += 1;
            }
            st.disconnects_sent += n;
            n
        })
    }

    /// Close every live connection with a WebSocket close frame (`code`, `reason`).
    pub fn close_sockets(&self, code: u16, reason: &str) -> usize {
        self.mutate(|st| {
            let ids: Vec<u64> = st.conns.keys().copied().collect();
            for id in &ids {
                if let Some(c) = st.conns.remove(id) {
                    let _ = c.tx.send(Out::Close(code, reason.to_string()));
                }
            }
            ids.len()
        })
    }

    /// The acknowledgements of the next `n` envelopes made from now on (by `user_*`
    /// actions or echoes of the bot's own posts) are recorded as lost (`Ack::lost`): Slack
    /// acts as if they never came (an interaction shows the user an error; an event is
    /// retried by `redeliver_unacked`).
    pub fn lose_next_acks(&self, n: usize) {
        self.mutate(|st| st.lose_acks += n);
    }

    /// Slack's retry of events the bot did not acknowledge in time: every `events_api`
    /// envelope sent without a (kept) ack is sent again as a new envelope with
    /// `retry_attempt` + 1 and `retry_reason: "timeout"`, same `event_id`. Returns the new
    /// envelope ids.
    pub fn redeliver_unacked(&self) -> Vec<String> {
        let out = self.mutate(|st| {
            let todo: Vec<usize> = (0..st.envelopes.len())
                .filter(|i| {
                    let e = &st.envelopes[*i];
                    e.kind == "events_api"
                        && e.sent_at.is_some()
                        && e.ack.as_ref().is_none_or(|a| a.lost)
                        && !st.envelopes.iter().any(|o| {
                            o.retry_attempt > e.retry_attempt
                                && o.frame["payload"]["event_id"] == e.frame["payload"]["event_id"]
                        })
                })
                .collect();
            let mut ids = vec![];
            for i in todo {
                let e = st.envelopes[i].clone();
                let n = st.next();
                let id = model::uuid_like(n, 0x5eed);
                let mut frame = e.frame.clone();
                frame["envelope_id"] = json!(id);
                frame["retry_attempt"] = json!(e.retry_attempt + 1);
                frame["retry_reason"] = json!("timeout");
                let idx = st.envelopes.len();
                st.envelopes.push(Envelope {
                    envelope_id: id.clone(),
                    kind: e.kind,
                    subtype: e.subtype.clone(),
                    frame,
                    conn: None,
                    sent_at: None,
                    retry_attempt: e.retry_attempt + 1,
                    ack: None,
                    lose_ack: false,
                });
                st.by_envelope.insert(id.clone(), idx);
                st.pending.push_back(idx);
                ids.push(id);
            }
            st.flush_pending();
            ids
        });
        out
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
            Err(e) => panic!("SlackStandIn: {e}\nstand-in errors so far: {errors:#?}"),
        }
    }

    /// User actions need the bot to have connected at least once; after that, envelopes
    /// made while it is away wait for its next connection.
    async fn wait_first_connection(&self) {
        self.wait_until("the bot's first Socket Mode connection", |st| {
            (st.connections_total > 0).then_some(())
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
                self.timed_out(what, timeout)
            }
        }
    }

    /// Like [`Self::wait_until`], but `test` runs on a snapshot taken by
    /// `snap` after the state's lock is released: a test may then call the
    /// driver's other readers (`dm_channel_of`, `message`, …), which take
    /// the same lock (it is not reentrant, so calling them while it is held
    /// would block the test's thread for ever).
    async fn wait_until_unlocked<S, T>(
        &self,
        what: &str,
        snap: impl Fn(&State) -> S,
        mut test: impl FnMut(S) -> Option<T>,
    ) -> T {
        let timeout = *self.shared.wait_timeout.lock().unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let s = snap(&self.shared.lock());
            if let Some(v) = test(s) {
                return v;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                self.timed_out(what, timeout)
            }
        }
    }

    /// Panics with everything the stand-in saw, after a wait timed out.
    fn timed_out(&self, what: &str, timeout: std::time::Duration) -> ! {
        let st = self.shared.lock();
        let calls: Vec<String> = st
            .calls
            .iter()
            .map(|c| {
                format!(
                    "#{} {} {} -> {} {}{}",
                    c.index,
                    c.method,
                    c.params,
                    c.status,
                    c.response,
                    c.injected.map(|i| format!(" [{i}]")).unwrap_or_default()
                )
            })
            .collect();
        let envs: Vec<String> = st
            .envelopes
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} conn={:?} ack={}",
                    e.envelope_id,
                    e.kind,
                    e.subtype,
                    e.conn,
                    e.ack.as_ref().map_or("none".to_string(), |a| format!(
                        "{:?}{}",
                        a.latency,
                        if a.lost { " lost" } else { "" }
                    ))
                )
            })
            .collect();
        panic!(
            "SlackStandIn: timed out after {timeout:?} waiting for {what}\n\
             Web API calls so far ({}):\n  {}\n\
             envelopes ({}):\n  {}\n\
             socket: {:?}\n\
             stand-in errors: {:#?}",
            calls.len(),
            calls.join("\n  "),
            envs.len(),
            envs.join("\n  "),
            socket_stats(&st),
            st.errors
        );
    }
}

fn socket_stats(st: &State) -> SocketStats {
    SocketStats {
        connections: st.connections_total,
        live: st.live_connections(),
        urls_issued: st.tickets.len(),
        pending: st.pending.len(),
        envelopes: st.envelopes.len(),
        acked: st.envelopes.iter().filter(|e| e.ack.is_some()).count(),
        disconnects_sent: st.disconnects_sent,
        drops: st.drops,
    }
}

fn ts_key(ts: &str) -> f64 {
    ts.parse().unwrap_or(0.0)
}

fn with_channel(v: &Value, channel: &str) -> Value {
    let mut v = v.clone();
    v["channel"] = json!(channel);
    v
}

fn check_member(st: &mut State, channel: &str, user: &str) -> Result<(), String> {
    st.ensure_user(user);
    let c = st
        .channels
        .get(channel)
        .ok_or_else(|| format!("unknown channel {channel}; call add_channel"))?;
    if c.members.contains(user) {
        Ok(())
    } else {
        Err(format!(
            "{user} is not a member of {channel}; list them in add_channel or call join_channel"
        ))
    }
}

/// slack-morphism's https connector that also allows `http://` (the stand-in has no TLS),
/// with an empty root store: it never needs to trust anyone.
pub fn connector_for(api_url: &str) -> SlackClientHyperHttpsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    SlackClientHyperConnector::from(https).with_slack_api_url(api_url)
}

/// The server loop: hyper's HTTP/1 with upgrades (for the WebSocket), around the axum
/// router; a response marked `DropConnection` closes the connection unanswered.
async fn serve(listener: TcpListener, app: axum::Router) {
    use tower::ServiceExt;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let app = app.clone();
                    async move {
                        let resp = app
                            .oneshot(req.map(axum::body::Body::new))
                            .await
                            .unwrap_or_else(|e| match e {});
                        if resp.extensions().get::<web::DropConnection>().is_some() {
                            Err(ConnectionDropped)
                        } else {
                            Ok(resp)
                        }
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
