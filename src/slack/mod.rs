//! The Slack adapter (issue 13): owners consult the app in a direct
//! message (or start with `/consult` in a channel), and routed cases are
//! posted to the hubs' Slack channels by the outbox's Slack sender.
//!
//! Like [`crate::discord`], it sits around the [`Runner`]: every owner input
//! goes through `Runner::handle`, which commits the step before anything is
//! sent. The client is `slack-morphism` (Web API over its hyper connector,
//! Socket Mode over WebSocket); its API base URL comes from the config, so
//! the tests point the real client at a local stand-in.
//!
//! - [`config`]: tokens and the connection, from the environment.
//! - [`render`]: a turn as Block Kit blocks (pure, unit-tested).
//! - [`events`]: what an event or interaction payload asks for (pure).
//! - [`signature`]: `X-Slack-Signature` verification for the Events API
//!   over HTTP, and the de-duplication of Slack's retries.
//! - `owner`: the consultation in the DM.
//! - [`hub`]: the outbox's [`crate::outbox::Sender`] for Slack channels.
//! - [`notices`]: reminders and escalations (the timer loop's sink).
//! - `http`: the Events API over HTTP (the option to Socket Mode).
//!
//! Slack wants every interaction acknowledged within 3 seconds: the
//! handlers given to slack-morphism only hand the payload to a task and
//! return, so the acknowledgement goes out at once and the work follows.
//! Owner text is escaped for mrkdwn ([`crate::escape::slack`]) and never
//! unfurled. Logs carry ids, never owners' answers or tokens.

mod admin;
pub mod config;
pub mod events;
mod follow_up;
mod forget;
mod http;
pub mod hub;
pub mod notices;
mod owner;
mod relay;
pub mod render;
pub mod signature;
pub mod staff;

pub use config::{Connection, SlackConfig, SlackConfigError, SlackSecret};

use crate::domain::ids::{Transport, UserKey};
use crate::runner::Runner;
use crate::script::Lang;
use crate::store::Store;
use events::Event;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

pub(crate) type Client = SlackClient<SlackClientHyperHttpsConnector>;

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("cannot set up the Slack client: {0}")]
    Setup(String),
    #[error("cannot connect to Slack with Socket Mode: {0}; check SLACK_APP_TOKEN (an app-level token with connections:write) and that Socket Mode is on")]
    SocketMode(String),
    #[error("cannot serve the Slack Events API on {addr}: {error}; choose a free address in SLACK_EVENTS_ADDR")]
    Http { addr: String, error: String },
}

/// How one Web API call failed, classified for retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFail {
    /// 429: the method's rate limit; wait this long (Slack's `Retry-After`).
    RateLimited(Duration),
    /// 5xx, network, timeout: the call may or may not have taken effect.
    Transient(String),
    /// Slack refused (`ok: false` with an error code, or another 4xx).
    Refused(String),
}

impl std::fmt::Display for ApiFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiFail::RateLimited(d) => write!(f, "rate limited for {} ms", d.as_millis()),
            ApiFail::Transient(e) => write!(f, "{e}"),
            ApiFail::Refused(e) => write!(f, "slack refused: {e}"),
        }
    }
}

fn classify(e: SlackClientError) -> ApiFail {
    match e {
        SlackClientError::RateLimitError(r) => {
            ApiFail::RateLimited(r.retry_after.unwrap_or(Duration::from_secs(1)))
        }
        SlackClientError::ApiError(a) => ApiFail::Refused(a.code),
        SlackClientError::HttpError(h) if h.status_code.is_server_error() => {
            ApiFail::Transient(format!("slack server error {}", h.status_code.as_u16()))
        }
        SlackClientError::HttpError(h) => {
            ApiFail::Refused(format!("http {}", h.status_code.as_u16()))
        }
        other => ApiFail::Transient(format!("network error: {other}")),
    }
}

/// The Web API with the bot token. Calls go through slack-morphism's
/// generic session methods with JSON bodies, so what is sent is exactly
/// what [`render`] built.
#[derive(Clone)]
pub(crate) struct Api {
    client: Arc<Client>,
    token: SlackApiToken,
}

impl Api {
    pub(crate) fn new(client: Arc<Client>, token: &SlackSecret) -> Api {
        Api {
            client,
            token: SlackApiToken::new(SlackApiTokenValue(token.secret().to_string())),
        }
    }

    /// A POST method (`chat.postMessage`, `views.open`, …) with a JSON body.
    pub(crate) async fn post(&self, method: &str, body: &Value) -> Result<Value, ApiFail> {
        let s = self.client.open_session(&self.token);
        s.http_session_api
            .http_post::<Value, Value>(method, body, None)
            .await
            .map_err(classify)
    }

    /// A read method (`conversations.history`, …) with query parameters.
    pub(crate) async fn get(
        &self,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Value, ApiFail> {
        let s = self.client.open_session(&self.token);
        let ps: Vec<(&str, Option<&String>)> = params.iter().map(|(k, v)| (*k, Some(v))).collect();
        s.http_session_api
            .http_get::<Value, _, &String>(method, &ps, None)
            .await
            .map_err(classify)
    }
}

/// The HTTP connector: HTTPS with the system's roots, and plain HTTP for
/// an `api_base` on the loopback (the tests' stand-in).
pub(crate) fn client(cfg: &SlackConfig) -> Result<Arc<Client>, SlackError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| SlackError::Setup(format!("no TLS root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let mut connector = SlackClientHyperConnector::with_connector(https);
    if let Some(base) = &cfg.api_base {
        // slack-morphism joins `{base}/{method}`, as its default
        // `https://slack.com/api` is written.
        connector = connector.with_slack_api_url(base.trim_end_matches('/'));
    }
    Ok(Arc::new(SlackClient::new(connector)))
}

/// The app's shared state.
pub(crate) struct Bot {
    pub(crate) runner: Arc<Runner>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) api: Api,
    pub(crate) wake: Arc<Notify>,
    pub(crate) prompts: Arc<crate::discord::prompts::Prompts>,
    /// Staff-facing texts (`dialogs/desk/{ja,en}.yaml`).
    pub(crate) texts: crate::desk::DeskTexts,
    dm_channels: Mutex<HashMap<String, String>>,
    /// The boxes an owner ticked on a multiple-choice question, by (user,
    /// session, node), until they press "done".
    pub(crate) ticks: Mutex<HashMap<(String, i64, u16), Vec<String>>>,
    user_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The dialogs folder (`/madoguchi-admin reload` reads it).
    pub(crate) dialogs: std::path::PathBuf,
    /// Who may reload (`SLACK_ADMINS`).
    pub(crate) admins: Vec<crate::routing::SlackId>,
}

impl Bot {
    pub(crate) fn user_lock(&self, user: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.user_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn remember_dm(&self, user: &str, channel: &str) {
        self.dm_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.to_string(), channel.to_string());
    }

    /// The DM with a user: known from their messages, else opened once.
    pub(crate) async fn dm_channel(&self, user: &str) -> Result<String, ApiFail> {
        if let Some(c) = self
            .dm_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
        {
            return Ok(c.clone());
        }
        let r = self
            .api
            .post("conversations.open", &serde_json::json!({ "users": user }))
            .await?;
        let c = r["channel"]["id"]
            .as_str()
            .ok_or_else(|| ApiFail::Transient("conversations.open returned no channel".into()))?
            .to_string();
        self.remember_dm(user, &c);
        Ok(c)
    }

    /// The language for an owner: an explicit choice, else the language of
    /// their last consultation, else the runner's default.
    pub(crate) async fn lang_for(&self, user: &UserKey, explicit: Option<Lang>) -> Lang {
        if let Some(l) = explicit {
            return l;
        }
        match self.store.latest_session(user).await {
            Ok(Some(s)) => s.lang,
            _ => self.runner.config().default_lang,
        }
    }

    /// Handles one event in its own task (the caller has acknowledged it).
    pub(crate) fn dispatch(self: &Arc<Self>, ev: Event) {
        if matches!(ev, Event::Ignore) {
            return;
        }
        // Ticks on a multiple choice are remembered here, before the next
        // event is read, so a "done" pressed right after sees them even
        // when its payload carries no state of the other elements.
        if let Event::Action(a) = &ev {
            if let Some(oid) = render::owner_id(&a.action_id).filter(|o| o.kind == 'x') {
                self.ticks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((a.user.clone(), oid.session, oid.node), a.values.clone());
                return;
            }
        }
        let bot = self.clone();
        tokio::spawn(async move { bot.handle(ev).await });
    }

    async fn handle(&self, ev: Event) {
        match ev {
            Event::Dm {
                user,
                channel,
                ts,
                text,
            } => self.on_dm(&user, &channel, &ts, text).await,
            Event::Action(a) if a.action_id.starts_with("s:") => self.on_staff_action(a).await,
            Event::Action(a) if a.action_id.starts_with("f:") => self.on_forward_answer(a).await,
            Event::Action(a) => self.on_action(a).await,
            Event::ViewSubmit(v) if v.callback_id.starts_with("s:") => self.on_staff_form(v).await,
            Event::ViewSubmit(v) => self.on_view_submit(v).await,
            Event::Command(c) if c.command == "/madoguchi" => self.on_staff_command(c).await,
            Event::Command(c) => self.on_command(c).await,
            Event::MessageAction(m) => self.on_message_action(m).await,
            Event::Ignore => {}
        }
    }
}

/// The Slack staff of hub `id` (its user group or listed members) in the
/// routing loaded now, when the hub is on Slack.
pub(crate) fn hub_staff(runner: &Runner, id: &str) -> Option<crate::routing::SlackStaff> {
    let b = runner.bundle();
    b.flows
        .first()
        .and_then(|f| f.routing.hub(id))
        .and_then(|h| h.slack.as_ref())
        .map(|s| s.staff.clone())
}

pub(crate) fn user_key(user: &str) -> Option<UserKey> {
    UserKey::new(Transport::Slack, user).ok()
}

// The callbacks given to slack-morphism: each turns the typed payload back
// into JSON for `events`, hands it on and returns at once, so the Socket
// Mode acknowledgement is sent before any work is done.

async fn bot_of(states: &SlackClientEventsUserState) -> Option<Arc<Bot>> {
    states.read().await.get_user_state::<Arc<Bot>>().cloned()
}

async fn on_push(
    ev: SlackPushEventCallback,
    _client: Arc<Client>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let (Some(bot), Ok(v)) = (bot_of(&states).await, serde_json::to_value(&ev)) {
        bot.dispatch(events::from_push(&v));
    }
    Ok(())
}

async fn on_interaction(
    ev: SlackInteractionEvent,
    _client: Arc<Client>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let (Some(bot), Ok(v)) = (bot_of(&states).await, serde_json::to_value(&ev)) {
        bot.dispatch(events::from_interaction(&v));
    }
    Ok(())
}

async fn on_command(
    ev: SlackCommandEvent,
    _client: Arc<Client>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let mut text = String::new();
    if let (Some(bot), Ok(v)) = (bot_of(&states).await, serde_json::to_value(&ev)) {
        let e = events::from_command(&v);
        text = bot.command_ack(&e).await;
        bot.dispatch(e);
    }
    Ok(
        SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
            .with_response_type(SlackMessageResponseType::Ephemeral),
    )
}

fn on_error(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _states: SlackClientEventsUserState,
) -> HttpStatusCode {
    tracing::warn!(error = %err, "slack event error");
    HttpStatusCode::OK
}

/// A running Slack app: the connection (Socket Mode or the HTTP Events
/// API), the current-question writer and, unless it runs elsewhere, the
/// outbox with the Slack sender.
pub struct RunningSlack {
    socket: Option<Arc<SlackClientSocketModeListener<SlackClientHyperHttpsConnector>>>,
    http: Option<tokio::task::JoinHandle<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    prompt_writer: tokio::task::JoinHandle<()>,
    /// Step 5: due follow-ups offered in owners' DMs.
    follow_ups: tokio::task::JoinHandle<()>,
    prompts: Arc<crate::discord::prompts::Prompts>,
    store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    /// The address the HTTP Events API listens on, when that is the
    /// connection.
    pub http_addr: Option<std::net::SocketAddr>,
}

impl RunningSlack {
    /// Disconnects and stops the workers (a delivery in progress is
    /// finished or left for the next start).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(s) = &self.socket {
            let _ = tokio::time::timeout(Duration::from_secs(10), s.shutdown()).await;
        }
        if let Some(h) = self.http {
            h.abort();
        }
        if let Some(w) = self.worker {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.prompt_writer).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.follow_ups).await;
        let _ =
            tokio::time::timeout(Duration::from_secs(10), self.prompts.flush(&self.store)).await;
    }
}

/// Who delivers the cases: an outbox started with the app, or one the
/// caller runs (both platforms in one process share one outbox).
#[derive(Clone, Default)]
pub enum Deliveries {
    #[default]
    WithTheApp,
    Elsewhere(Arc<Notify>),
}

/// The outbox's sender for Slack, for an outbox the caller runs (both
/// platforms in one process).
pub fn sender(
    cfg: &SlackConfig,
    runner: Arc<Runner>,
) -> Result<Arc<dyn crate::outbox::Sender>, SlackError> {
    let client = client(cfg)?;
    Ok(hub::sender(
        Api::new(client, &cfg.bot_token),
        runner,
        desk_texts(cfg),
    ))
}

/// The desk texts of the dialogs folder, or the shipped ones.
fn desk_texts(cfg: &SlackConfig) -> crate::desk::DeskTexts {
    crate::desk::DeskTexts::load(&cfg.dialogs).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the desk texts do not load; using the shipped ones");
        crate::desk::DeskTexts::shipped()
    })
}

/// Connects the app and starts its workers. `madoguchi run` and the
/// end-to-end tests both start it through here.
pub async fn start(
    cfg: SlackConfig,
    runner: Arc<Runner>,
    deliveries: Deliveries,
    outbox: crate::outbox::OutboxConfig,
) -> Result<RunningSlack, SlackError> {
    let client = client(&cfg)?;
    let api = Api::new(client.clone(), &cfg.bot_token);
    let store = runner.store().clone();
    let (wake, own) = match deliveries {
        Deliveries::WithTheApp => (Arc::new(Notify::new()), true),
        Deliveries::Elsewhere(w) => (w, false),
    };
    let bot = Arc::new(Bot {
        runner: runner.clone(),
        store: store.clone(),
        api: api.clone(),
        wake: wake.clone(),
        prompts: Arc::new(Default::default()),
        texts: desk_texts(&cfg),
        dm_channels: Mutex::new(HashMap::new()),
        ticks: Mutex::new(HashMap::new()),
        user_locks: Mutex::new(HashMap::new()),
        dialogs: cfg.dialogs.clone(),
        admins: cfg.admins.clone(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let prompt_writer = tokio::spawn(
        bot.prompts
            .clone()
            .run_writer(store.clone(), stop_rx.clone()),
    );
    let worker = own.then(|| {
        let ob = crate::outbox::Outbox::new(store.clone(), runner.clock().clone(), outbox)
            .with_wake(wake.clone())
            .with_sender(hub::sender(api.clone(), runner.clone(), desk_texts(&cfg)));
        tokio::spawn(Arc::new(ob).run(stop_rx.clone()))
    });
    let mut running = RunningSlack {
        socket: None,
        http: None,
        worker,
        prompt_writer,
        follow_ups: tokio::spawn(follow_up::run(bot.clone(), stop_rx.clone())),
        prompts: bot.prompts.clone(),
        store,
        stop,
        http_addr: None,
    };
    match &cfg.connection {
        Connection::SocketMode => {
            let app_token = cfg
                .app_token
                .as_ref()
                .ok_or_else(|| SlackError::SocketMode("SLACK_APP_TOKEN is not set".into()))?;
            let env = Arc::new(
                SlackClientEventsListenerEnvironment::new(client.clone())
                    .with_error_handler(on_error)
                    .with_user_state(bot.clone()),
            );
            let callbacks = SlackSocketModeListenerCallbacks::new()
                .with_command_events(on_command)
                .with_interaction_events(on_interaction)
                .with_push_events(on_push);
            let sm = SlackClientSocketModeConfig::new()
                .with_max_connections_count(1)
                .with_initial_backoff_in_seconds(cfg.reconnect_backoff_secs)
                .with_reconnect_timeout_in_seconds(cfg.reconnect_backoff_secs.max(1) * 6);
            let listener = Arc::new(SlackClientSocketModeListener::new(&sm, env, callbacks));
            let token = SlackApiToken::new(SlackApiTokenValue(app_token.secret().to_string()));
            listener
                .listen_for(&token)
                .await
                .map_err(|e| SlackError::SocketMode(e.to_string()))?;
            listener.start().await;
            running.socket = Some(listener);
        }
        Connection::Http { addr, secret } => {
            let (bound, task) = http::serve(bot.clone(), *addr, secret.clone())
                .await
                .map_err(|e| SlackError::Http {
                    addr: addr.to_string(),
                    error: e.to_string(),
                })?;
            running.http = Some(task);
            running.http_addr = Some(bound);
        }
    }
    let b = bot.clone();
    tokio::spawn(async move { b.resume_consultations().await });
    Ok(running)
}
