//! The runner: the one place where the engine meets the store.
//!
//! For each input it loads the owner's session, runs one engine step on the
//! session's pinned flow version, commits the step's effects in one
//! transaction, and only then hands the effects to the adapter to send. It
//! also owns the set of loaded flow versions: the current bundle from
//! `dialogs/`, and older versions reloaded from the store for sessions that
//! started on them.

use crate::domain::ids::{CaseId, SessionId, UserKey};
use crate::engine::{self, Ctx, Effect, Input};
use crate::render::RenderMode;
use crate::script::{compile_flow, Bundle, Flow, Lang, Sources};
use crate::store::{NewDelivery, NewSession, SessionRecord, StepCommit, Store, StoreError, VersionRecord};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// Where time comes from. Tests use [`FixedClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told otherwise.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(t: DateTime<Utc>) -> FixedClock {
        FixedClock(Mutex::new(t))
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
    pub fn advance(&self, d: chrono::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += d;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("script version {version} of this session is neither loaded nor stored; the database may have been edited by hand")]
    MissingVersion { version: String },
    #[error("stored script version {version} no longer compiles: {detail}")]
    BrokenVersion { version: String, detail: String },
    #[error("no dialog script `{script}` in {lang}; check the dialogs directory")]
    NoScript { script: String, lang: Lang },
}

/// The result of one input, already durable.
#[derive(Debug, Clone)]
pub struct Turn {
    pub session: SessionId,
    pub flow: Arc<Flow>,
    pub effects: Vec<Effect>,
    pub case: Option<CaseId>,
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The script new sessions run.
    pub script_id: String,
    pub default_lang: Lang,
    /// Transports a finished case is delivered on: `local`, `discord`.
    pub transports: Vec<String>,
    pub mode: RenderMode,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig { script_id: "first_contact".into(), default_lang: Lang::Ja, transports: vec!["local".into()], mode: RenderMode::Plain }
    }
}

pub struct Runner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: RunnerConfig,
    bundle: RwLock<Arc<Bundle>>,
    /// Versions loaded for sessions pinned to them, by content hash.
    versions: Mutex<HashMap<String, Arc<Flow>>>,
    /// One lock per owner, so two messages from the same owner are handled
    /// one after the other.
    locks: Mutex<HashMap<UserKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl Runner {
    /// Creates a runner and records the bundle's versions in the store.
    pub async fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, bundle: Bundle, config: RunnerConfig) -> Result<Runner, RunError> {
        let r = Runner {
            store,
            clock,
            config,
            bundle: RwLock::new(Arc::new(Bundle::default())),
            versions: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        };
        r.install(bundle).await?;
        Ok(r)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }
    pub fn bundle(&self) -> Arc<Bundle> {
        self.bundle.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes a (checked) bundle current: new sessions start on it; sessions
    /// already running stay on their versions.
    pub async fn install(&self, bundle: Bundle) -> Result<(), RunError> {
        let now = self.clock.now();
        for f in &bundle.flows {
            self.store
                .save_version(&VersionRecord {
                    version: f.version.clone(),
                    script_id: f.script_id.clone(),
                    lang: f.lang,
                    script_name: f.sources.script_name.clone(),
                    script_text: f.sources.script_text.clone(),
                    routing_name: f.sources.routing_name.clone(),
                    routing_text: f.sources.routing_text.clone(),
                    created_at: now,
                })
                .await?;
        }
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        for f in &bundle.flows {
            versions.insert(f.version.clone(), f.clone());
        }
        drop(versions);
        *self.bundle.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(bundle);
        Ok(())
    }

    /// The flow a session is pinned to, loading it from the store if it is
    /// no longer the current one.
    pub async fn flow_for(&self, version: &str) -> Result<Arc<Flow>, RunError> {
        if let Some(f) = self.versions.lock().unwrap_or_else(|e| e.into_inner()).get(version) {
            return Ok(f.clone());
        }
        let rec = self.store.load_version(version).await?.ok_or_else(|| RunError::MissingVersion { version: version.into() })?;
        let (flow, diags) = compile_flow(Sources {
            script_name: rec.script_name,
            script_text: rec.script_text,
            routing_name: rec.routing_name,
            routing_text: rec.routing_text,
        });
        let flow = Arc::new(flow.ok_or_else(|| RunError::BrokenVersion {
            version: version.into(),
            detail: diags.first().map(|d| d.to_string()).unwrap_or_default(),
        })?);
        self.versions.lock().unwrap_or_else(|e| e.into_inner()).insert(version.to_string(), flow.clone());
        Ok(flow)
    }

    fn current_flow(&self, lang: Lang) -> Result<Arc<Flow>, RunError> {
        let b = self.bundle();
        b.flow(&self.config.script_id, lang)
            .or_else(|| b.flow(&self.config.script_id, self.config.default_lang))
            .ok_or(RunError::NoScript { script: self.config.script_id.clone(), lang })
    }

    fn lock_for(&self, user: &UserKey) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(user.clone()).or_default().clone()
    }

    /// The owner's open session, or a new one on the current version.
    pub async fn session_for(&self, user: &UserKey, lang: Option<Lang>) -> Result<SessionRecord, RunError> {
        if let Some(s) = self.store.open_session(user).await? {
            return Ok(s);
        }
        let flow = self.current_flow(lang.unwrap_or(self.config.default_lang))?;
        Ok(self
            .store
            .create_session(&NewSession {
                user: user.clone(),
                script_id: flow.script_id.clone(),
                lang: flow.lang,
                version: flow.version.clone(),
                now: self.clock.now(),
            })
            .await?)
    }

    /// Handles one input from an owner. The effects are durable when this
    /// returns; the caller sends them.
    pub async fn handle(&self, user: &UserKey, input: Input, lang: Option<Lang>) -> Result<Turn, RunError> {
        let lock = self.lock_for(user);
        let _guard = lock.lock().await;
        let session = self.session_for(user, lang).await?;
        let flow = self.flow_for(&session.version).await?;
        let mut state = session.state;
        let now = self.clock.now();
        let effects = engine::step(&flow, &mut state, input, &Ctx::new(now, self.config.mode));
        let deliveries = match effects.iter().find_map(|e| match e {
            Effect::CaseReady(d) => Some(d),
            _ => None,
        }) {
            Some(draft) => self.deliveries_for(&flow, draft.route.recipients().map(|h| h.id.as_str())),
            None => Vec::new(),
        };
        let node = flow.node(state.node).id.clone();
        let outcome = self
            .store
            .commit_step(&StepCommit { session: session.id, now, state: &state, current_node: &node, effects: &effects, deliveries })
            .await?;
        Ok(Turn { session: session.id, flow, effects, case: outcome.case })
    }

    /// The delivery rows for a set of hubs on the configured transports.
    pub fn deliveries_for<'a>(&self, flow: &Flow, hubs: impl Iterator<Item = &'a str>) -> Vec<NewDelivery> {
        let mut out = Vec::new();
        for id in hubs {
            let Some(hub) = flow.routing.hub(id) else { continue };
            for t in &self.config.transports {
                let target = match t.as_str() {
                    "local" => Some(hub.terminal.clone().unwrap_or_else(|| hub.id.to_string())),
                    "discord" => hub.discord.as_ref().map(|d| d.channel.to_string()),
                    _ => None,
                };
                if let Some(target) = target {
                    out.push(NewDelivery { hub_id: id.to_string(), transport: t.clone(), target });
                }
            }
        }
        out
    }
}
