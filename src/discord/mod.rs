//! The Discord adapter: owners consult the bot by DM (or `/consult`), and
//! hub staff receive and work routed cases in their channels.
//!
//! Like [`crate::chat`], it sits around the [`Runner`]: every owner input
//! goes through `Runner::handle`, which commits the step before anything is
//! sent. The modules:
//!
//! - [`config`] — `madoguchi.toml`.
//! - [`render`] — a turn as message content and components, the custom_id
//!   scheme (pure, unit-tested).
//! - `owner`: DMs, `/consult`, presses, forms, `/forget`.
//! - `staff`: the case post (embed, thread, buttons), staff permissions,
//!   claim / release / forward / advance / close, the owner's answer to a
//!   forward request.
//! - `relay`: staff ↔ owner messages through the bot after routing.
//! - `outbox`: Discord's sender for the outbox ([`crate::outbox`]), which
//!   posts each case exactly once.
//!
//! Every message the bot sends carries `allowed_mentions`; only the hub's
//! staff role is ever pinged, and only on a new case. Logs carry ids, never
//! owners' answers or the token.

pub(crate) mod admin;
pub mod config;
mod desk;
mod follow_up;
mod notices;
mod outbox;
pub(crate) mod owner;
pub(crate) mod prompts;
mod relay;
pub mod render;
mod staff;

pub use config::Config;
pub use outbox::DiscordSender;

use crate::domain::ids::{Transport, UserKey};
use crate::render::RenderMode;
use crate::runner::{RunError, Runner, RunnerConfig};
use crate::script::Lang;
use crate::store::{Store, StoreError};
use serde_json::{json, Value};
use serenity::all::{
    ChannelId, Command, CommandOptionType, Context, CreateCommand, CreateCommandOption,
    EventHandler, GatewayIntents, Http, HttpBuilder, InstallationContext, Interaction,
    InteractionContext, InteractionId, Message, MessageId, Ready, UserId,
};
use serenity::http::HttpError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The bot token. Its `Debug` never shows it, so it cannot leak into logs.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Accepts the token as the developer portal shows it (a leading
    /// `Bot ` is tolerated).
    pub fn new(s: &str) -> Result<Token, EmptyToken> {
        let s = s.trim();
        let s = s.strip_prefix("Bot ").unwrap_or(s).trim();
        if s.is_empty() {
            return Err(EmptyToken);
        }
        Ok(Token(s.to_string()))
    }
    fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DISCORD_TOKEN is empty: put the bot token from the Discord developer portal (Bot → Reset Token) in it")]
pub struct EmptyToken;

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("cannot start the Discord client: {0}; check DISCORD_TOKEN and the network")]
    Start(#[source] serenity::Error),
    #[error("the Discord connection ended: {0}; check DISCORD_TOKEN, the intents enabled in the developer portal, and the network")]
    Gateway(#[source] serenity::Error),
    #[error("the Discord client stopped unexpectedly: {0}")]
    Crashed(String),
    #[error("cannot load the staff texts: {0}")]
    DeskTexts(#[from] crate::desk::texts::TextsError),
}

/// Errors while handling one event. They are logged (with ids only) and
/// the owner or staff member gets a short apology, never the raw error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BotError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("discord api error: {0}")]
    Api(#[from] serenity::Error),
    #[error("could not answer an interaction: {0}")]
    Reply(String),
}

/// The runner settings the Discord bot needs: cases are delivered on the
/// `discord` transport and owner text is escaped for Discord markdown.
pub fn runner_config(cfg: &Config) -> RunnerConfig {
    RunnerConfig {
        script_id: cfg.discord.script.clone(),
        default_lang: cfg.discord.default_lang,
        transports: vec!["discord".into()],
        mode: RenderMode::Markdown,
    }
}

/// The gateway intents the bot asks for. MESSAGE_CONTENT (privileged) and
/// GUILD_MESSAGES only when staff may relay with a typed prefix.
pub fn intents(cfg: &Config) -> GatewayIntents {
    let mut i = GatewayIntents::GUILDS | GatewayIntents::DIRECT_MESSAGES;
    if cfg.discord.prefix().is_some() {
        i |= GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
    }
    i
}

/// The bot's shared state.
pub(crate) struct Bot {
    pub(crate) runner: Arc<Runner>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cfg: Config,
    pub(crate) http: Arc<Http>,
    pub(crate) raw: outbox::RawApi,
    /// Wakes the outbox that delivers this bot's cases.
    pub(crate) wake: Arc<Notify>,
    /// The owners' current questions (written behind the turn).
    pub(crate) prompts: Arc<prompts::Prompts>,
    /// Staff-facing texts (and the owner's texts about forwards and
    /// replies), from `dialogs/desk/`.
    pub(crate) desk_texts: crate::desk::DeskTexts,
    dm_channels: Mutex<HashMap<u64, ChannelId>>,
    user_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    started: AtomicBool,
}

impl Bot {
    /// One lock per owner: a turn (engine step, sends, current-question
    /// bookkeeping) finishes before the owner's next input is handled.
    pub(crate) fn user_lock(&self, user: UserId) -> Arc<tokio::sync::Mutex<()>> {
        self.user_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user.get())
            .or_default()
            .clone()
    }

    pub(crate) fn remember_dm(&self, user: UserId, channel: ChannelId) {
        self.dm_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.get(), channel);
    }

    /// The DM channel with a user (opened once, then cached).
    pub(crate) async fn dm_channel(&self, user: UserId) -> Result<ChannelId, serenity::Error> {
        if let Some(c) = self
            .dm_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user.get())
        {
            return Ok(*c);
        }
        let ch = self
            .http
            .create_private_channel(&json!({ "recipient_id": user.to_string() }))
            .await?;
        self.remember_dm(user, ch.id);
        Ok(ch.id)
    }

    /// The language for an owner: an explicit choice, else their Discord
    /// locale, else the language of their last consultation, else the
    /// configured default.
    pub(crate) async fn lang_for(
        &self,
        user: &UserKey,
        explicit: Option<Lang>,
        locale: Option<&str>,
    ) -> Lang {
        if let Some(l) = explicit.or_else(|| locale.and_then(locale_lang)) {
            return l;
        }
        match self.store.latest_session(user).await {
            Ok(Some(s)) => s.lang,
            _ => self.cfg.discord.default_lang,
        }
    }

    /// Sends a message, retrying server errors and rate limits a few times.
    /// The nonce with `enforce_nonce` makes a retry after an unknown
    /// outcome return the first message instead of posting twice.
    pub(crate) async fn send(
        &self,
        channel: ChannelId,
        mut body: Value,
    ) -> Result<Message, serenity::Error> {
        guard_mentions(&mut body);
        if body.get("nonce").is_none() {
            body["nonce"] = json!(new_nonce());
            body["enforce_nonce"] = json!(true);
        }
        let mut attempt = 0;
        loop {
            match self.http.send_message(channel, vec![], &body).await {
                Err(e) if attempt < 3 && retryable(&e) => {
                    attempt += 1;
                    tracing::debug!(channel = %channel, attempt, "retrying a message");
                    tokio::time::sleep(retry_wait(&e, attempt)).await;
                }
                r => return r,
            }
        }
    }

    /// Edits a message (same retries as [`Bot::send`]).
    pub(crate) async fn edit(
        &self,
        channel: ChannelId,
        message: MessageId,
        mut body: Value,
    ) -> Result<Message, serenity::Error> {
        guard_mentions(&mut body);
        let mut attempt = 0;
        loop {
            match self
                .http
                .edit_message(channel, message, &body, vec![])
                .await
            {
                Err(e) if attempt < 3 && retryable(&e) => {
                    attempt += 1;
                    tokio::time::sleep(retry_wait(&e, attempt)).await;
                }
                r => return r,
            }
        }
    }

    /// Answers an interaction (once; Discord's 3-second window leaves no
    /// room for retries).
    pub(crate) async fn respond(
        &self,
        id: InteractionId,
        token: &str,
        mut body: Value,
    ) -> Result<(), serenity::Error> {
        // Message replies (4) and updates (7) carry allowed_mentions; a
        // modal (9) or a bare acknowledgement (5, 6) has no message text.
        if matches!(body["type"].as_u64(), Some(4) | Some(7)) {
            if let Some(data) = body.get_mut("data") {
                guard_mentions(data);
            }
        }
        self.http
            .create_interaction_response(id, token, &body, vec![])
            .await
    }

    /// Answers an interaction with a message (callback type 4) and returns
    /// the new message's id, all in one call (`?with_response=true`; if
    /// Discord leaves the message out, it is fetched).
    pub(crate) async fn reply_with_message(
        &self,
        id: InteractionId,
        token: &str,
        mut data: Value,
    ) -> Result<MessageId, BotError> {
        guard_mentions(&mut data);
        let body = json!({ "type": 4, "data": data });
        match self.raw.interaction_reply(id, token, &body).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Ok(self.http.get_original_interaction_response(token).await?.id),
            Err(e) => Err(BotError::Reply(e)),
        }
    }

    /// An ephemeral reply to an interaction.
    pub(crate) async fn respond_ephemeral(&self, id: InteractionId, token: &str, content: &str) {
        let body = json!({ "type": 4, "data": { "content": content, "flags": 64 } });
        if let Err(e) = self.respond(id, token, body).await {
            tracing::warn!(interaction = %id, error = %e, "could not answer an interaction");
        }
    }

    pub(crate) async fn edit_original(
        &self,
        token: &str,
        mut body: Value,
    ) -> Result<Message, serenity::Error> {
        guard_mentions(&mut body);
        self.http
            .edit_original_interaction_response(token, &body, vec![])
            .await
    }

    pub(crate) async fn followup_ephemeral(&self, token: &str, content: &str) {
        let mut body = json!({ "content": content, "flags": 64 });
        guard_mentions(&mut body);
        if let Err(e) = self
            .http
            .create_followup_message(token, &body, vec![])
            .await
        {
            tracing::warn!(error = %e, "could not send a followup");
        }
    }

    async fn on_ready(&self, ready: &Ready) {
        tracing::info!(bot = %ready.user.id, guilds = ready.guilds.len(), "connected to Discord");
        if let Err(e) = Command::set_global_commands(&self.http, commands()).await {
            tracing::error!(error = %e, "could not register the slash commands; /consult, /forget and /reply will not work until the next start");
        }
        if !self.started.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
            self.resume_consultations().await;
        }
    }

    async fn on_interaction(&self, interaction: Interaction) {
        match interaction {
            Interaction::Command(cmd) => match cmd.data.name.as_str() {
                "consult" => self.on_consult(&cmd).await,
                "forget" => self.on_forget(&cmd).await,
                "reply" => self.on_reply_command(&cmd).await,
                "admin" => self.on_admin(&cmd).await,
                other => tracing::debug!(command = other, "unknown command"),
            },
            Interaction::Component(comp) => {
                let id = comp.data.custom_id.clone();
                if let Some(oid) = render::owner_id(&id) {
                    self.on_owner_component(&comp, oid).await;
                } else if let Some(rest) = id.strip_prefix("s:") {
                    self.on_staff_component(&comp, rest).await;
                } else if let Some(rest) = id.strip_prefix("f:") {
                    self.on_forward_answer(&comp, rest).await;
                } else if let Some(rest) = id.strip_prefix("g:") {
                    self.on_forget_press(&comp, rest).await;
                } else {
                    tracing::debug!(custom_id = %id, "unknown component");
                }
            }
            Interaction::Modal(m) => {
                let id = m.data.custom_id.clone();
                if let Some(oid) = render::owner_id(&id).filter(|o| o.kind == 't') {
                    self.on_owner_modal(&m, oid).await;
                } else if let Some(rest) = id.strip_prefix("s:") {
                    self.on_staff_modal(&m, rest).await;
                }
            }
            _ => {}
        }
    }

    async fn on_message(&self, msg: Message) {
        if msg.author.bot {
            return;
        }
        if msg.guild_id.is_none() {
            self.on_dm(&msg).await;
        } else if let Some(prefix) = self.cfg.discord.prefix() {
            if let Some(text) = msg.content.strip_prefix(prefix) {
                let text = text.trim().to_string();
                self.on_prefix_relay(&msg, &text).await;
            }
        }
    }
}

/// Adds an `allowed_mentions` that pings nobody, unless the caller set one.
fn guard_mentions(body: &mut Value) {
    if body.get("allowed_mentions").is_none() {
        body["allowed_mentions"] = render::no_mentions();
    }
}

/// A nonce unique to this process run (≤ 25 characters, as Discord asks).
fn new_nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let s = format!("m{t:x}{n:x}");
    s.chars().take(25).collect()
}

pub(crate) fn status_of(e: &serenity::Error) -> Option<u16> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => Some(r.status_code.as_u16()),
        _ => None,
    }
}

/// The Discord error code (e.g. 50007: cannot DM this user).
pub(crate) fn code_of(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => Some(r.error.code),
        _ => None,
    }
}

fn retryable(e: &serenity::Error) -> bool {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            r.status_code.as_u16() == 429 || r.status_code.is_server_error()
        }
        serenity::Error::Http(HttpError::Request(_)) => true,
        _ => false,
    }
}

/// serenity's error does not carry `retry_after` (see `outbox`), so
/// messages outside the outbox wait a conservative second on a 429.
fn retry_wait(e: &serenity::Error, attempt: u32) -> Duration {
    if status_of(e) == Some(429) {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(250 * u64::from(attempt))
    }
}

/// `ja` → Japanese, `en-US`/`en-GB` → English, anything else: no opinion.
pub fn locale_lang(locale: &str) -> Option<Lang> {
    let l = locale.to_ascii_lowercase();
    if l.starts_with("ja") {
        Some(Lang::Ja)
    } else if l.starts_with("en") {
        Some(Lang::En)
    } else {
        None
    }
}

pub(crate) fn user_key(user: UserId) -> UserKey {
    UserKey::new(Transport::Discord, &user.to_string()).expect("a snowflake is a valid user id")
}

/// The slash commands: `/consult [lang]` and `/forget` in servers and DMs,
/// `/reply message` in servers (case threads).
fn commands() -> Vec<CreateCommand> {
    let everywhere = vec![InteractionContext::Guild, InteractionContext::BotDm];
    vec![
        CreateCommand::new("consult")
            .description("Start or continue a consultation (in DM)")
            .description_localized("ja", "相談を始める・続ける（DMで）")
            .integration_types(vec![InstallationContext::Guild])
            .contexts(everywhere.clone())
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "lang",
                    "Language of the consultation",
                )
                .description_localized("ja", "相談の言語")
                .add_string_choice_localized(
                    "日本語",
                    "ja",
                    [("en-US", "Japanese"), ("en-GB", "Japanese")],
                )
                .add_string_choice_localized("English", "en", [("ja", "英語")])
                .required(false),
            ),
        CreateCommand::new("forget")
            .description("Delete my answers and consultations")
            .description_localized("ja", "自分の回答と相談の記録を削除する")
            .integration_types(vec![InstallationContext::Guild])
            .contexts(everywhere),
        CreateCommand::new("admin")
            .description("Administrators: reload the dialog scripts and routing")
            .description_localized(
                "ja",
                "管理者用：対話スクリプトとルーティングを再読み込みする",
            )
            .integration_types(vec![InstallationContext::Guild])
            .contexts(vec![InteractionContext::Guild])
            .default_member_permissions(serenity::all::Permissions::MANAGE_GUILD)
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::SubCommand,
                    "reload",
                    "Check the edited dialogs and use them if they have no errors",
                )
                .description_localized(
                    "ja",
                    "編集した対話ファイルを検査し、エラーがなければ使い始める",
                ),
            ),
        CreateCommand::new("reply")
            .description("Staff: write to the owner of this case thread")
            .description_localized("ja", "スタッフ用：この案件スレッドから相談者に返信する")
            .integration_types(vec![InstallationContext::Guild])
            .contexts(vec![InteractionContext::Guild])
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "message",
                    "What to send to the owner",
                )
                .description_localized("ja", "相談者に送る内容")
                .max_length(1800)
                .required(true),
            ),
    ]
}

struct Handler(Arc<OnceLock<Arc<Bot>>>);

impl Handler {
    fn bot(&self) -> Option<Arc<Bot>> {
        self.0.get().cloned()
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        if let Some(bot) = self.bot() {
            bot.on_ready(&ready).await;
        }
    }

    async fn message(&self, _ctx: Context, msg: Message) {
        if let Some(bot) = self.bot() {
            bot.on_message(msg).await;
        }
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        if let Some(bot) = self.bot() {
            bot.on_interaction(interaction).await;
        }
    }
}

/// Who delivers the cases a bot creates.
#[derive(Debug, Clone, Default)]
pub enum Deliveries {
    /// An outbox [`start`] runs beside the gateway (one instance).
    #[default]
    WithTheBot,
    /// An outbox the caller runs, for every platform and whether or not
    /// this instance holds the gateway (`madoguchi run`, see
    /// [`crate::outbox::for_run`]); the bot wakes it when it creates a
    /// case.
    Elsewhere(Arc<Notify>),
}

/// The HTTP client the bot uses. With a stand-in (tests) serenity's rate
/// limiter must be off for the proxy to apply; the bot then handles 429s
/// itself (see `outbox`).
fn http_client(cfg: &Config, token: &Token) -> Http {
    let mut builder = HttpBuilder::new(token.secret());
    if let Some(base) = &cfg.discord.api_base {
        builder = builder
            .proxy(base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    builder.build()
}

impl Bot {
    fn new(
        cfg: Config,
        token: &Token,
        runner: Arc<Runner>,
        http: Arc<Http>,
        wake: Arc<Notify>,
    ) -> Bot {
        let raw = outbox::RawApi::new(token.secret(), cfg.discord.api_base.clone());
        let store = runner.store().clone();
        let cfg_dialogs = cfg.dialogs.clone();
        Bot {
            runner,
            store,
            cfg,
            http,
            raw,
            wake,
            prompts: Arc::new(prompts::Prompts::default()),
            // The desk's texts were checked when the dialogs loaded; the
            // shipped ones stand in only if the folder changed since.
            desk_texts: crate::desk::DeskTexts::load(&cfg_dialogs).unwrap_or_else(|e| {
                tracing::error!(error = %e, "the desk texts do not load; using the shipped ones");
                crate::desk::DeskTexts::shipped()
            }),
            dm_channels: Mutex::new(HashMap::new()),
            user_locks: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
        }
    }
}

/// The outbox's sender for Discord, for an instance that may not hold the
/// gateway: posting a case needs only the HTTP API.
pub fn sender(cfg: &Config, token: &Token, runner: Arc<Runner>) -> Arc<dyn crate::outbox::Sender> {
    let http = Arc::new(http_client(cfg, token));
    Arc::new(DiscordSender {
        bot: Arc::new(Bot::new(
            cfg.clone(),
            token,
            runner,
            http,
            Arc::new(Notify::new()),
        )),
    })
}

/// The timer loop's sink for Discord, for a loop `madoguchi run` runs
/// beside the bot (its own HTTP client, like [`sender`]).
pub fn notice_sink(
    cfg: &Config,
    token: &Token,
    runner: Arc<Runner>,
) -> Arc<dyn crate::network::worker::NoticeSink> {
    let http = Arc::new(http_client(cfg, token));
    Arc::new(notices::DiscordNotices(Arc::new(Bot::new(
        cfg.clone(),
        token,
        runner,
        http,
        Arc::new(Notify::new()),
    ))))
}

/// A running bot: the gateway client and the delivery worker.
pub struct RunningBot {
    shard_manager: Arc<serenity::gateway::ShardManager>,
    client: tokio::task::JoinHandle<Result<(), serenity::Error>>,
    /// The outbox, unless it runs elsewhere ([`Deliveries`]).
    worker: Option<tokio::task::JoinHandle<()>>,
    /// Saves the owners' current questions; flushes when stopped.
    prompt_writer: tokio::task::JoinHandle<()>,
    prompts: Arc<prompts::Prompts>,
    store: Arc<dyn Store>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// The reminder timer loop, unless it runs beside the bot.
    timers: Option<tokio::task::JoinHandle<()>>,
    /// Step 5: due follow-ups DMed to owners (a pass in progress finishes
    /// before shutdown returns).
    follow_ups: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl RunningBot {
    /// Disconnects from Discord and stops the delivery worker (a delivery
    /// in progress is finished or left pending for the next start).
    pub async fn shutdown(self) -> Result<(), DiscordError> {
        let _ = self.stop.send(true);
        if let Some(w) = &self.watcher {
            w.abort();
        }
        self.shard_manager.shutdown_all().await;
        let r = match tokio::time::timeout(Duration::from_secs(10), self.client).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(DiscordError::Gateway(e)),
            Ok(Err(e)) => Err(DiscordError::Crashed(e.to_string())),
            Err(_) => Err(DiscordError::Crashed(
                "the client did not stop within 10 s".into(),
            )),
        };
        if let Some(w) = self.worker {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        if let Some(t) = self.timers {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.follow_ups).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.prompt_writer).await;
        // After the client: a turn that was finishing has recorded its prompt.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), self.prompts.flush(&self.store)).await;
        r
    }

    /// Waits until the client stops by itself (an error such as a revoked
    /// token or missing privileged intents).
    pub async fn wait(&mut self) -> Result<(), DiscordError> {
        match (&mut self.client).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DiscordError::Gateway(e)),
            Err(e) => Err(DiscordError::Crashed(e.to_string())),
        }
    }
}

/// Connects the bot and starts the delivery worker. `madoguchi run` and
/// the end-to-end tests both start the bot through here; the tests set
/// `cfg.discord.api_base` to a local Discord stand-in.
pub async fn start(
    cfg: Config,
    token: Token,
    runner: Arc<Runner>,
) -> Result<RunningBot, DiscordError> {
    let http = http_client(&cfg, &token);
    let cell: Arc<OnceLock<Arc<Bot>>> = Arc::new(OnceLock::new());
    let client = serenity::all::ClientBuilder::new_with_http(http, intents(&cfg))
        .event_handler(Handler(cell.clone()));
    let mut client = client.await.map_err(DiscordError::Start)?;
    let (wake, own_outbox) = match &cfg.deliveries {
        Deliveries::WithTheBot => (Arc::new(Notify::new()), true),
        Deliveries::Elsewhere(w) => (w.clone(), false),
    };
    let bot = Arc::new(Bot::new(
        cfg,
        &token,
        runner,
        client.http.clone(),
        wake.clone(),
    ));
    let _ = cell.set(bot.clone());
    let (stop, stop_rx) = watch::channel(false);
    let prompt_writer = tokio::spawn(
        bot.prompts
            .clone()
            .run_writer(bot.store.clone(), stop_rx.clone()),
    );
    // Step 5: due follow-ups are DMed to their owners (ends with `stop`).
    let follow_ups = tokio::spawn(follow_up::run(bot.clone(), stop_rx.clone()));
    let timers = (!bot.cfg.reminders.elsewhere)
        .then(|| tokio::spawn(reminder_loop(bot.clone(), stop_rx.clone())));
    let worker = own_outbox.then(|| {
        let outbox = crate::outbox::Outbox::new(
            bot.store.clone(),
            bot.runner.clock().clone(),
            bot.cfg.outbox.clone(),
        )
        .with_wake(wake)
        .with_sender(Arc::new(DiscordSender { bot: bot.clone() }));
        tokio::spawn(Arc::new(outbox).run(stop_rx))
    });
    let watcher = bot.cfg.discord.watch_dialogs.then(|| {
        let b = bot.clone();
        let every = Duration::from_millis(bot.cfg.discord.watch_interval_ms.max(100));
        crate::runner::watch_dialogs(
            bot.runner.clone(),
            bot.cfg.dialogs.clone(),
            every,
            move |res| {
                let text = admin::report_text(res, b.cfg.discord.default_lang, "dialogs/");
                let b = b.clone();
                tokio::spawn(async move { b.post_admin(text).await });
            },
        )
    });
    let shard_manager = client.shard_manager.clone();
    let handle = tokio::spawn(async move { client.start().await });
    Ok(RunningBot {
        shard_manager,
        client: handle,
        worker,
        prompt_writer,
        prompts: bot.prompts.clone(),
        store: bot.store.clone(),
        watcher,
        timers,
        follow_ups,
        stop,
    })
}

/// Reminders and escalations ([`crate::network::worker`]): on Discord where
/// a hub has a channel, else in the local inbox.
async fn reminder_loop(bot: Arc<Bot>, stop: watch::Receiver<bool>) {
    let mut sinks: Vec<Arc<dyn crate::network::worker::NoticeSink>> =
        vec![Arc::new(notices::DiscordNotices(bot.clone()))];
    if let Some(inbox) = &bot.cfg.reminders.inbox {
        sinks.push(Arc::new(crate::network::worker::InboxSink {
            inbox: inbox.clone(),
        }));
    }
    let mut worker = crate::network::worker::TimerWorker::new(
        bot.store.clone(),
        sinks,
        bot.cfg.discord.default_lang,
    );
    worker.sync_every = chrono::Duration::seconds(bot.cfg.reminders.sync_secs.max(1) as i64);
    let worker = Arc::new(worker);
    let every = Duration::from_secs(bot.cfg.reminders.tick_secs.max(1));
    crate::network::worker::run_loop(worker, bot.runner.clone(), every, stop).await
}

/// Runs the bot until Ctrl-C (or SIGTERM), then shuts it down cleanly.
pub async fn run(cfg: Config, token: Token, runner: Arc<Runner>) -> Result<(), DiscordError> {
    let mut bot = start(cfg, token, runner).await?;
    let ended = tokio::select! {
        r = bot.wait() => Some(r),
        _ = shutdown_signal() => None,
    };
    match ended {
        Some(r) => r,
        None => {
            tracing::info!("shutting down");
            bot.shutdown().await
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_never_shown() {
        let t = Token::new("Bot abc.def.ghi").unwrap();
        assert_eq!(t.secret(), "abc.def.ghi");
        assert_eq!(format!("{t:?}"), "Token([redacted])");
        assert!(Token::new("  ").is_err());
    }

    #[test]
    fn locales_and_nonces() {
        assert_eq!(locale_lang("ja"), Some(Lang::Ja));
        assert_eq!(locale_lang("en-GB"), Some(Lang::En));
        assert_eq!(locale_lang("fr"), None);
        let a = new_nonce();
        assert!(a.len() <= 25);
        assert_ne!(a, new_nonce());
    }

    #[test]
    fn intents_follow_the_relay_prefix() {
        let mut c = Config::default();
        assert!(!intents(&c).contains(GatewayIntents::MESSAGE_CONTENT));
        c.discord.relay_prefix = Some("!reply".into());
        assert!(
            intents(&c).contains(GatewayIntents::MESSAGE_CONTENT | GatewayIntents::GUILD_MESSAGES)
        );
    }
}
