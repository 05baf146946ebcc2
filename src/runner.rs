//! The runner: the one place where the engine meets the store.
//!
//! For each input it loads the owner's session, runs one engine step on the
//! session's pinned flow version, commits the step's effects in one
//! transaction, and only then hands the effects to the adapter to send. It
//! also owns the set of loaded flow versions: the current bundle from
//! `dialogs/`, and older versions reloaded from the store for sessions that
//! started on them.

use crate::domain::ids::{CaseId, SessionId, UserKey};
use crate::engine::{self, Ctx, Effect, Input, SessionState};
use crate::render::RenderMode;
use crate::script::{compile_flow, Bundle, Flow, Lang, Sources};
use crate::store::batch::{GroupCommitOptions, GroupCommitter, GroupReader, OwnedStep};
use crate::store::{
    NewDelivery, NewSession, Presumption, SessionRecord, Store, StoreError, VersionRecord,
};
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
    /// Transports a finished case is delivered on: `local`, `discord`, `slack`.
    pub transports: Vec<String>,
    /// How owner text is escaped; a Slack owner's turns always use
    /// `RenderMode::Slack` (one runner serves both platforms).
    pub mode: RenderMode,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            script_id: "first_contact".into(),
            default_lang: Lang::Ja,
            transports: vec!["local".into()],
            mode: RenderMode::Plain,
        }
    }
}

/// How the runner commits and what it keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerOptions {
    /// Commit the steps of concurrent conversations together (one
    /// transaction and one fsync for many turns; see
    /// [`crate::store::batch`]). Each `handle` still returns only after its
    /// own step is durable. On by default.
    pub group_commit: bool,
    pub group_commit_options: GroupCommitOptions,
    /// Keep open sessions in memory instead of reading them from the store
    /// at every turn. On by default. It is safe with other processes
    /// changing the same database (a second bot instance, `madoguchi
    /// forget`): every step is written only over the session revision it
    /// was computed from, so a step computed from a cached state that has
    /// gone stale is refused by the store, and the runner reads the session
    /// again and runs the input on it. [`Runner::forget_cached`] saves that
    /// round trip when this process changed a session itself.
    pub session_cache: bool,
    /// The most sessions the cache holds (≈ 2 KiB each); when it is full an
    /// arbitrary entry makes room, and its owner's next turn reads the
    /// store.
    pub session_cache_max: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            group_commit: true,
            group_commit_options: GroupCommitOptions::default(),
            session_cache: true,
            session_cache_max: 100_000,
        }
    }
}

/// One lock per owner, so that an owner's messages are handled one after
/// the other. Locks nobody holds are pruned now and then (when the map has
/// doubled since the last pruning), so the map holds about the owners being
/// served rather than every owner ever seen, without a second trip through
/// its mutex at every turn. Every clone of a lock is taken under the map's
/// mutex, so a count of one (the map's own), checked under it, means no
/// task holds or waits for that lock.
struct OwnerLocks {
    map: HashMap<UserKey, Arc<tokio::sync::Mutex<()>>>,
    prune_at: usize,
}

impl Default for OwnerLocks {
    fn default() -> Self {
        OwnerLocks {
            map: HashMap::new(),
            prune_at: OwnerLocks::MIN_PRUNE,
        }
    }
}

impl OwnerLocks {
    const MIN_PRUNE: usize = 1024;

    fn get(&mut self, user: &UserKey) -> Arc<tokio::sync::Mutex<()>> {
        if let Some(l) = self.map.get(user) {
            return l.clone();
        }
        if self.map.len() >= self.prune_at {
            self.map.retain(|_, l| Arc::strong_count(l) > 1);
            self.prune_at = (self.map.len() * 2).max(OwnerLocks::MIN_PRUNE);
        }
        self.map.entry(user.clone()).or_default().clone()
    }

    fn in_use(&self) -> usize {
        self.map
            .values()
            .filter(|l| Arc::strong_count(l) > 1)
            .count()
    }
}

/// An open session held in memory (see [`RunnerOptions::session_cache`]).
struct CachedSession {
    id: SessionId,
    rev: i64,
    flow: Arc<Flow>,
    state: SessionState,
}

/// How many times a turn is computed again after the store found the state
/// it was computed from stale. More than one conflict in a row means another
/// process is writing the same session at the same moment.
const STALE_RETRIES: usize = 3;

pub struct Runner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: RunnerConfig,
    bundle: RwLock<Arc<Bundle>>,
    /// Versions loaded for sessions pinned to them, by content hash.
    versions: Mutex<HashMap<String, Arc<Flow>>>,
    /// One lock per owner, so two messages from the same owner are handled
    /// one after the other.
    locks: Mutex<OwnerLocks>,
    committer: Option<GroupCommitter>,
    /// Reads the sessions of owners not in the cache, many in one query;
    /// on whenever group commit is (both are for many owners at once).
    reader: Option<GroupReader>,
    /// Open sessions by owner, when the cache is on.
    cache: Option<Mutex<HashMap<UserKey, CachedSession>>>,
    cache_max: usize,
    /// Owners known to have stored sessions though the cache does not hold
    /// them (their consultation ended, or they were presumed new wrongly):
    /// their next message reads the store first instead of being presumed
    /// new (see `Runner::load`). Bounded like the cache; forgetting an
    /// owner costs at most one refused commit.
    known: Mutex<std::collections::HashSet<UserKey>>,
}

impl Runner {
    /// Creates a runner and records the bundle's versions in the store.
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bundle: Bundle,
        config: RunnerConfig,
    ) -> Result<Runner, RunError> {
        Runner::with_options(store, clock, bundle, config, RunnerOptions::default()).await
    }

    /// [`Runner::new`] with explicit [`RunnerOptions`].
    pub async fn with_options(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bundle: Bundle,
        config: RunnerConfig,
        options: RunnerOptions,
    ) -> Result<Runner, RunError> {
        // The parsers' tables are built now rather than on the first
        // owners' turns (see `engine::warm_up`), off the runtime's threads;
        // a panic there would surface again at the first turn that needs
        // the table, so its result is not needed here.
        let _ = tokio::task::spawn_blocking(crate::engine::warm_up).await;
        let committer = if options.group_commit {
            GroupCommitter::spawn(store.clone(), options.group_commit_options)
        } else {
            None
        };
        let reader = committer
            .as_ref()
            .and_then(|_| GroupReader::spawn(store.clone()));
        let r = Runner {
            store,
            clock,
            config,
            bundle: RwLock::new(Arc::new(Bundle::default())),
            versions: Mutex::new(HashMap::new()),
            locks: Mutex::new(OwnerLocks::default()),
            reader,
            committer,
            cache: options.session_cache.then(|| Mutex::new(HashMap::new())),
            cache_max: options.session_cache_max,
            known: Mutex::new(std::collections::HashSet::new()),
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
        self.bundle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        if let Some(f) = self
            .versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(version)
        {
            return Ok(f.clone());
        }
        let rec =
            self.store
                .load_version(version)
                .await?
                .ok_or_else(|| RunError::MissingVersion {
                    version: version.into(),
                })?;
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
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(version.to_string(), flow.clone());
        Ok(flow)
    }

    fn current_flow(&self, lang: Lang) -> Result<Arc<Flow>, RunError> {
        let b = self.bundle();
        b.flow(&self.config.script_id, lang)
            .or_else(|| b.flow(&self.config.script_id, self.config.default_lang))
            .ok_or(RunError::NoScript {
                script: self.config.script_id.clone(),
                lang,
            })
    }

    fn lock_for(&self, user: &UserKey) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
    }

    /// The owner's open session, or a new one on the current version.
    pub async fn session_for(
        &self,
        user: &UserKey,
        lang: Option<Lang>,
    ) -> Result<SessionRecord, RunError> {
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
                presumed: Presumption::Read,
            })
            .await?)
    }

    /// Whether the owner has an open consultation: answered from the
    /// session cache when the owner is in it (every owner mid-way through
    /// a consultation on this instance), else from the store
    /// ([`Store::has_open_session`]: the owner's session rows through
    /// their index, not the sessions' answers). Adapters ask
    /// it at every message to tell a consultation answer from, say, a
    /// message for the hub's staff; a query each time cost the SQLite
    /// worker threads about a quarter of their CPU in the Discord benchmark
    /// (3.65 s → 2.8 s over 26,000 turns). A cached session another
    /// process closed meanwhile still answers yes; the turn then finds the
    /// stored state (see `handle_locked`'s stale retry).
    pub async fn has_open_session(&self, user: &UserKey) -> Result<bool, RunError> {
        if let Some(cache) = &self.cache {
            if cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(user)
            {
                return Ok(true);
            }
        }
        Ok(self.store.has_open_session(user).await?)
    }

    /// What a closed session said at its end, to tell again (see
    /// [`engine::ending`]); nothing is written. `None` when the session is
    /// unknown, belongs to someone else or is still open.
    pub async fn ending(
        &self,
        user: &UserKey,
        session: SessionId,
    ) -> Result<Option<Turn>, RunError> {
        let Some(rec) = self.store.session(session).await? else {
            return Ok(None);
        };
        if &rec.user != user || rec.status.is_open() {
            return Ok(None);
        }
        let flow = self.flow_for(&rec.version).await?;
        let mode = match user.transport() {
            crate::domain::ids::Transport::Slack => RenderMode::Slack,
            _ => self.config.mode,
        };
        let effects = engine::ending(&flow, &rec.state, &Ctx::new(self.clock.now(), mode));
        Ok(Some(Turn {
            session,
            flow,
            effects,
            case: None,
        }))
    }

    /// Handles one input from an owner. The effects are durable when this
    /// returns; the caller sends them.
    pub async fn handle(
        &self,
        user: &UserKey,
        input: Input,
        lang: Option<Lang>,
    ) -> Result<Turn, RunError> {
        self.handle_locked(user, input, lang).await
    }

    /// [`Runner::handle`] under the owner's lock (taken here, released
    /// before it returns).
    async fn handle_locked(
        &self,
        user: &UserKey,
        input: Input,
        lang: Option<Lang>,
    ) -> Result<Turn, RunError> {
        let mut guard = self.lock_for(user).lock_owned().await;
        let mut attempt = 0;
        loop {
            // The cache is skipped after a stale attempt: the store has the
            // newer state.
            let cached = if attempt == 0 {
                self.cache_take(user)
            } else {
                None
            };
            let (session, rev, flow, mut state, new_session) = match cached {
                Some(c) => (c.id, c.rev, c.flow, c.state, None),
                // An owner the cache does not hold is presumed new on the
                // first attempt (see `Presumption`); if they are not, the
                // commit says so and the next attempt reads the store.
                None => self.load(user, &input, lang, attempt == 0).await?,
            };
            let now = self.clock.now();
            // A new session has no stored status yet.
            let prev_status = new_session.is_none().then_some(state.status);
            let effects = engine::step(
                &flow,
                &mut state,
                input.for_session(session.0),
                // Owner text is escaped for the medium the owner reads it
                // in: one runner serves Discord and Slack owners alike.
                &Ctx::new(
                    now,
                    match user.transport() {
                        crate::domain::ids::Transport::Slack => RenderMode::Slack,
                        _ => self.config.mode,
                    },
                ),
            );
            // A refused step (a template failed) is committed like any
            // other, with the state as it was, so the owner's answers stay
            // as they were; administrators learn of it here. No owner data:
            // the script, its version, the node and the template's name.
            for e in &effects {
                if let Effect::Fault(f) = e {
                    tracing::error!(
                        script = %flow.script_id,
                        lang = %flow.lang,
                        version = %flow.short_version(),
                        node = %f.node,
                        template = %f.template,
                        reason = %f.reason,
                        "a script template failed; the owner's step was refused; fix the script and run `madoguchi dialogs check`"
                    );
                }
            }
            // A case gets its reminder timers in the transaction that makes
            // it (see `CaseTimers`).
            let (deliveries, case_timers) = match effects.iter().find_map(|e| match e {
                Effect::CaseReady(d) => Some(d),
                _ => None,
            }) {
                Some(draft) => (
                    self.deliveries_for(&flow, draft.route.recipients().map(|h| h.id.as_str())),
                    Some(case_timers_for(&flow, &draft.route.primary.id)),
                ),
                None => (Vec::new(), None),
            };
            let node = flow.node(state.node).id.clone();
            // Serialised here, in the owner's task, so that a group commit
            // does not serialise a whole batch of states one after another.
            let state_json = serde_json::to_string(&state).expect("a session state serialises");
            let step = OwnedStep {
                session,
                rev,
                now,
                state,
                current_node: node,
                effects,
                deliveries,
                new_session,
                state_json: Some(state_json),
                prev_status,
                case_timers,
                guard: Some(guard),
            };
            let (outcome, step) = match &self.committer {
                Some(c) => c.commit(step).await,
                None => (self.store.commit_step(&step.as_commit()).await, step),
            };
            let OwnedStep {
                state,
                effects,
                new_session,
                guard: g,
                ..
            } = step;
            guard = match g {
                Some(g) => g,
                // The committer died holding the step (it returns an error).
                None => self.lock_for(user).lock_owned().await,
            };
            // On failure nothing is cached, so the next turn reads the
            // store.
            let outcome = match outcome {
                // The session changed or was deleted (e.g. `madoguchi
                // forget`) since it was read: run the input on what the
                // store has now.
                Err(StoreError::Stale(_) | StoreError::NotFound(_))
                    if new_session.is_none() && attempt < STALE_RETRIES =>
                {
                    tracing::debug!(session = %session, "session changed elsewhere; running the input again on the stored state");
                    attempt += 1;
                    continue;
                }
                // The owner was presumed new but has sessions: run the
                // input on what the store has (the next attempt reads it).
                Err(StoreError::NotNew(_))
                    if new_session
                        .as_ref()
                        .is_some_and(|n| n.presumed != Presumption::Read)
                        && attempt < STALE_RETRIES =>
                {
                    tracing::debug!("owner presumed new has sessions; running the input again on the stored state");
                    self.remember_known(user);
                    attempt += 1;
                    continue;
                }
                r => r?,
            };
            let (session, rev) = match outcome.created {
                Some(id) => (id, 1),
                None => (session, rev + 1),
            };
            // A follow-up dialog that ended records how on its follow-up
            // (answered, declined, …), whatever platform it ran on.
            if let (true, Some(link)) = (flow.follow_up, state.follow_up.as_deref()) {
                if let Some(end) = effects.iter().find_map(|e| match e {
                    Effect::Finished(s) => Some(*s),
                    _ => None,
                }) {
                    crate::followup::record_end(self.store.as_ref(), link, end, outcome.case, now)
                        .await;
                }
            }
            self.cache_put(user, session, rev, &flow, state);
            drop(guard);
            // A case handed over now has its reminder timers already: they
            // were written with it (`case_timers` above; the timer loop fires
            // them, its periodic sync is only a backstop).
            crate::metrics::record_turn(
                user.transport().as_str(),
                effects
                    .iter()
                    .filter(|e| matches!(e, Effect::Reask { .. }))
                    .count() as u64,
            );
            return Ok(Turn {
                session,
                flow,
                effects,
                case: outcome.case,
            });
        }
    }

    /// The owner's session from the store (the open one, or the last one
    /// if this input does not start anew), or a new one to be created with
    /// the first step.
    ///
    /// With `presume` and the session cache on, the store is not read: an
    /// owner the cache does not hold is nearly always one writing for the
    /// first time (everyone mid-way through a consultation on this
    /// instance is in the cache), so a new session is started on the
    /// presumption that the owner has none ([`Presumption`]), which the
    /// commit checks. This takes a read from the store off every first turn,
    /// at the price of a refused commit for an owner who had a session
    /// after all (after a restart, or when the cache was full). Owners this
    /// runner knows to have sessions (their consultation ended here, or
    /// they were presumed wrongly once) are read first.
    async fn load(
        &self,
        user: &UserKey,
        input: &Input,
        lang: Option<Lang>,
        presume: bool,
    ) -> Result<(SessionId, i64, Arc<Flow>, SessionState, Option<NewSession>), RunError> {
        let known = || {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(user)
        };
        let presumed = match input {
            _ if !presume || self.cache.is_none() || known() => None,
            // An explicit start ignores consultations that ended, so only
            // an open one would make it wrong.
            Input::Start | Input::Command(crate::script::Command::Restart) => {
                Some(Presumption::NoOpenSession)
            }
            _ => Some(Presumption::NoSession),
        };
        let found = match presumed {
            Some(_) => None,
            None => {
                let candidate = match &self.reader {
                    Some(r) => r.session_to_resume(user).await?,
                    None => self.store.session_to_resume(user).await?,
                };
                match candidate {
                    Some(s) if s.status.is_open() => Some(s),
                    // An owner who writes again after their consultation
                    // ended is told so (and how to start over) rather than
                    // dropped into a new one mid-sentence; "restart" or an
                    // explicit start opens a new consultation.
                    Some(last) if !self.starts_anew(&last, input).await? => Some(last),
                    _ => None,
                }
            }
        };
        Ok(match found {
            Some(s) => {
                let flow = self.flow_for(&s.version).await?;
                (s.id, s.rev, flow, s.state, None)
            }
            // A new session is created in the same transaction as its first
            // step.
            None => {
                let flow = self.current_flow(lang.unwrap_or(self.config.default_lang))?;
                let new = NewSession {
                    user: user.clone(),
                    script_id: flow.script_id.clone(),
                    lang: flow.lang,
                    version: flow.version.clone(),
                    now: self.clock.now(),
                    presumed: presumed.unwrap_or_default(),
                };
                (SessionId(0), 0, flow, SessionState::default(), Some(new))
            }
        })
    }

    /// Takes the owner's session out of the cache (it goes back after the
    /// step is committed).
    fn cache_take(&self, user: &UserKey) -> Option<CachedSession> {
        let cache = self.cache.as_ref()?;
        cache.lock().unwrap_or_else(|e| e.into_inner()).remove(user)
    }

    fn cache_put(
        &self,
        user: &UserKey,
        id: SessionId,
        rev: i64,
        flow: &Arc<Flow>,
        state: SessionState,
    ) {
        let Some(cache) = &self.cache else { return };
        if !state.status.is_open() {
            // Not cached, but their next message must not be presumed to
            // be their first.
            self.remember_known(user);
            return;
        }
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        // Full (mostly consultations abandoned half-way): make room by
        // dropping an arbitrary entry, which at worst costs its owner one
        // read from the store on their next message. Refusing new entries
        // instead would leave the cache to the abandoned ones for good.
        if c.len() >= self.cache_max.max(1) && !c.contains_key(user) {
            if let Some(k) = c.keys().next().cloned() {
                c.remove(&k);
            }
        }
        c.insert(
            user.clone(),
            CachedSession {
                id,
                rev,
                flow: flow.clone(),
                state,
            },
        );
    }

    fn remember_known(&self, user: &UserKey) {
        if self.cache.is_none() {
            return;
        }
        let mut k = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if k.len() >= self.cache_max.max(1) && !k.contains(user) {
            k.clear();
        }
        k.insert(user.clone());
    }

    /// How many owners the runner holds per-owner state for: (locks in use,
    /// cached sessions). Between turns no lock is in use, and the cache
    /// holds at most `session_cache_max` sessions.
    pub fn held(&self) -> (usize, usize) {
        let locks = self
            .locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_use();
        let cached = self
            .cache
            .as_ref()
            .map_or(0, |c| c.lock().unwrap_or_else(|e| e.into_inner()).len());
        (locks, cached)
    }

    /// A copy of the owner's session state as the cache holds it (`None`
    /// without the cache, or when it holds none). The transcript harness
    /// compares it with the session read back from the store after every
    /// turn.
    pub fn cached_state(&self, user: &UserKey) -> Option<SessionState> {
        let cache = self.cache.as_ref()?;
        let c = cache.lock().unwrap_or_else(|e| e.into_inner());
        c.get(user).map(|c| c.state.clone())
    }

    /// Drops what the session cache holds for an owner, after their
    /// sessions were changed other than through [`Runner::handle`] (e.g.
    /// deleted on request). A no-op without the cache.
    pub fn forget_cached(&self, user: &UserKey) {
        if let Some(cache) = &self.cache {
            cache.lock().unwrap_or_else(|e| e.into_inner()).remove(user);
        }
    }

    async fn starts_anew(&self, last: &SessionRecord, input: &Input) -> Result<bool, RunError> {
        Ok(match input {
            Input::Start => true,
            Input::Command(c) => *c == crate::script::Command::Restart,
            Input::Text(t) | Input::TextUnder { text: t, .. } => {
                let flow = self.flow_for(&last.version).await?;
                flow.commands
                    .recognize(&crate::domain::text::fold_for_match(t))
                    == Some(crate::script::Command::Restart)
            }
            Input::Resume | Input::Pick { .. } => false,
        })
    }

    /// Starts a follow-up dialog (the script `script_id` with `follow_up:
    /// true`) for the owner, its recipient already chosen (`route`) and
    /// linked to its follow-up and case. Returns `None`, starting nothing,
    /// while the owner has another open session: the follow-up waits for
    /// their next free moment rather than interrupt a consultation. When
    /// the open session is this follow-up's own (started before a crash),
    /// it is resumed instead of started twice.
    pub async fn start_follow_up(
        &self,
        user: &UserKey,
        script_id: &str,
        lang: Lang,
        route: crate::routing::RouteDecision,
        link: engine::FollowUpLink,
    ) -> Result<Option<Turn>, RunError> {
        if let Some(open) = self.store.open_session(user).await? {
            if open.state.follow_up.as_deref() == Some(&link) {
                return self.handle(user, Input::Resume, Some(lang)).await.map(Some);
            }
            return Ok(None);
        }
        let guard = self.lock_for(user).lock_owned().await;
        let b = self.bundle();
        let flow = b
            .flow(script_id, lang)
            .or_else(|| b.flow(script_id, self.config.default_lang))
            .filter(|f| f.follow_up)
            .ok_or(RunError::NoScript {
                script: script_id.to_string(),
                lang,
            })?;
        let now = self.clock.now();
        let mut state = SessionState {
            route: Some(Box::new(route)),
            follow_up: Some(Box::new(link)),
            ..SessionState::default()
        };
        let effects = engine::step(
            &flow,
            &mut state,
            Input::Start,
            &Ctx::new(now, self.config.mode),
        );
        let new = NewSession {
            user: user.clone(),
            script_id: flow.script_id.clone(),
            lang: flow.lang,
            version: flow.version.clone(),
            now,
            // Checked in the writing transaction: a consultation started
            // meanwhile (another instance) keeps the owner, and the
            // follow-up waits.
            presumed: Presumption::NoOpenSession,
        };
        let node = flow.node(state.node).id.clone();
        let commit = crate::store::StepCommit {
            session: SessionId(0),
            rev: 0,
            now,
            state: &state,
            current_node: &node,
            effects: &effects,
            deliveries: Vec::new(),
            new_session: Some(&new),
            state_json: None,
            prev_status: None,
            case_timers: None,
        };
        let outcome = match self.store.commit_step(&commit).await {
            Ok(o) => o,
            Err(StoreError::NotNew(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let session = outcome.created.ok_or_else(|| {
            RunError::Store(StoreError::Conflict(
                "the follow-up session was not created".into(),
            ))
        })?;
        // The cache may hold the owner's previous (ended) session.
        self.forget_cached(user);
        self.cache_put(user, session, 1, &flow, state);
        drop(guard);
        Ok(Some(Turn {
            session,
            flow,
            effects,
            case: None,
        }))
    }

    /// The delivery rows for a set of hubs on the configured transports.
    pub fn deliveries_for<'a>(
        &self,
        flow: &Flow,
        hubs: impl Iterator<Item = &'a str>,
    ) -> Vec<NewDelivery> {
        let mut out = Vec::new();
        for id in hubs {
            let Some(hub) = flow.routing.hub(id) else {
                continue;
            };
            for t in &self.config.transports {
                let target = match t.as_str() {
                    "local" => Some(hub.terminal.clone().unwrap_or_else(|| hub.id.to_string())),
                    "discord" => hub.discord.as_ref().map(|d| d.channel.to_string()),
                    "slack" => hub.slack.as_ref().map(|s| s.channel.to_string()),
                    _ => None,
                };
                if let Some(target) = target {
                    out.push(NewDelivery {
                        hub_id: id.to_string(),
                        transport: t.clone(),
                        target,
                    });
                }
            }
        }
        out
    }
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// (script, language, old version, new version) for every flow whose
    /// version changed; old is empty for a new flow.
    pub changed: Vec<(String, Lang, String, String)>,
    pub warnings: Vec<crate::script::Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the edited dialogs have {} error(s); the running version keeps serving", .0.iter().filter(|d| d.severity == crate::script::Severity::Error).count())]
    Invalid(Vec<crate::script::Diagnostic>),
    #[error(transparent)]
    Load(#[from] crate::script::compile::LoadError),
    #[error(transparent)]
    Run(#[from] RunError),
}

impl Runner {
    /// Checks the dialogs folder and, if it has no errors, makes it current.
    /// Sessions already running keep their pinned versions. Every attempt is
    /// written to the audit log with who asked and the versions involved.
    pub async fn reload(
        &self,
        dir: &std::path::Path,
        actor: &str,
    ) -> Result<ReloadReport, ReloadError> {
        let now = self.clock.now();
        let old = self.bundle();
        let bundle = match crate::script::load_dir(dir) {
            Ok(b) => b,
            Err(crate::script::compile::LoadError::Invalid(diags)) => {
                let first: Vec<String> = diags
                    .iter()
                    .filter(|d| d.severity == crate::script::Severity::Error)
                    .take(5)
                    .map(|d| d.to_string())
                    .collect();
                let detail = serde_json::json!({ "errors": first });
                self.store
                    .append_audit(None, actor, "reload_rejected", &detail, now)
                    .await
                    .map_err(RunError::from)?;
                return Err(ReloadError::Invalid(diags));
            }
            Err(e) => return Err(e.into()),
        };
        let mut changed = Vec::new();
        for f in &bundle.flows {
            let before = old
                .flow(&f.script_id, f.lang)
                .map(|o| o.version.clone())
                .unwrap_or_default();
            if before != f.version {
                changed.push((f.script_id.clone(), f.lang, before, f.version.clone()));
            }
        }
        let mut warnings = bundle.warnings.clone();
        warnings.extend(crate::script::lint_bundle(&bundle));
        // Every current version, not only the changed ones: another
        // instance on the same database makes exactly this set current
        // (see `Runner::adopt_reload`).
        let current: Vec<String> = bundle.flows.iter().map(|f| f.version.clone()).collect();
        self.install(bundle).await?;
        let detail = serde_json::json!({
            "changed": changed.iter().map(|(s, l, from, to)| serde_json::json!({"script": s, "lang": l, "from": from, "to": to})).collect::<Vec<_>>(),
            "current": current,
        });
        self.store
            .append_audit(None, actor, "reload", &detail, now)
            .await
            .map_err(RunError::from)?;
        // The reload is recorded: wake the other instances to read it. A
        // lost notification only delays them until their next poll.
        if let Err(e) = self.store.signal("reload").await {
            tracing::warn!(error = %e, "cannot notify the other instances of the reload; they see it at their next poll");
        }
        Ok(ReloadReport { changed, warnings })
    }

    /// Makes current the versions a reload on another instance recorded
    /// (the `reload` audit entry's `current` list), loading each from the
    /// store. Returns whether anything changed: an entry this instance
    /// wrote itself, or one already adopted, changes nothing.
    pub async fn adopt_reload(&self, entry: &crate::store::AuditEntry) -> Result<bool, RunError> {
        let Some(current) = entry.detail.get("current").and_then(|c| c.as_array()) else {
            // Written before reloads named every current version: nothing
            // to follow.
            return Ok(false);
        };
        let versions: Vec<&str> = current.iter().filter_map(|v| v.as_str()).collect();
        let old = self.bundle();
        let mut now: Vec<&str> = old.flows.iter().map(|f| f.version.as_str()).collect();
        let mut want = versions.clone();
        now.sort_unstable();
        want.sort_unstable();
        if now == want {
            return Ok(false);
        }
        let mut flows = Vec::with_capacity(versions.len());
        for v in versions {
            flows.push(self.flow_for(v).await?);
        }
        *self.bundle.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Bundle {
            flows,
            warnings: Vec::new(),
        });
        Ok(true)
    }
}

/// A fingerprint of the dialogs folder's files (names and contents), for
/// noticing edits by polling. Polling a handful of small files is cheap and
/// works the same with every editor's way of saving (rename, truncate,
/// write), which file-event APIs do not.
pub fn dialogs_fingerprint(dir: &std::path::Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml") | Some("yml")
                )
        })
        .collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        h.update(n.display().to_string().as_bytes());
        h.update(std::fs::read(&n).ok()?);
    }
    Some(format!("{:x}", h.finalize()))
}

/// Watches the dialogs folder and reloads on change until the returned
/// handle is dropped or aborted. Rejected edits are logged with their
/// diagnostics and `on_result` is told, so an adapter can notify admins.
pub fn watch_dialogs(
    runner: Arc<Runner>,
    dir: std::path::PathBuf,
    every: std::time::Duration,
    on_result: impl Fn(&Result<ReloadReport, ReloadError>) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    // The baseline is taken now, not when the task first runs, so an edit
    // made right after this call is noticed.
    let mut last = dialogs_fingerprint(&dir);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = dialogs_fingerprint(&dir);
            if now.is_none() || now == last {
                continue;
            }
            last = now;
            let r = runner.reload(&dir, "file-watcher").await;
            match &r {
                Ok(rep) => tracing::info!(changed = rep.changed.len(), "dialogs reloaded"),
                Err(ReloadError::Invalid(d)) => {
                    for x in d
                        .iter()
                        .filter(|d| d.severity == crate::script::Severity::Error)
                    {
                        tracing::warn!("rejected dialogs edit: {x}");
                    }
                }
                Err(e) => tracing::warn!("dialogs reload failed: {e}"),
            }
            on_result(&r);
        }
    })
}

/// The reminder timers of a case a step of `flow` makes at `hub` (see
/// [`crate::store::CaseTimers`]): what scheduling the case after the
/// commit gave, from the case's id and creation time as stored.
fn case_timers_for(flow: &Arc<Flow>, hub: &str) -> crate::store::CaseTimers {
    let flow = flow.clone();
    let hub = hub.to_string();
    crate::store::CaseTimers(Arc::new(move |id, since| {
        crate::network::reminders::open_case_timers(id, &hub, since, &flow.routing.reminders)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Transport;

    fn owner(i: usize) -> UserKey {
        UserKey::new(Transport::Terminal, &format!("o{i}")).unwrap()
    }

    #[test]
    fn unused_owner_locks_are_pruned_and_held_ones_kept() {
        let mut locks = OwnerLocks::default();
        // One owner is being served the whole time.
        let busy = locks.get(&owner(0));
        for i in 1..10_000 {
            drop(locks.get(&owner(i)));
        }
        // Pruned whenever the map reached its limit: never more than twice
        // the minimum, and the lock in use survived every pruning.
        assert!(
            locks.map.len() <= 2 * OwnerLocks::MIN_PRUNE,
            "{}",
            locks.map.len()
        );
        assert!(Arc::ptr_eq(&busy, &locks.get(&owner(0))));
        assert_eq!(locks.in_use(), 1);
        drop(busy);
        assert_eq!(locks.in_use(), 0);
    }

    /// An owner whose consultation ended on this runner is not cached (only
    /// open sessions are), but their next message reads the store rather
    /// than being presumed new; an owner never seen is presumed new.
    #[tokio::test]
    async fn an_owner_whose_consultation_ended_is_read_not_presumed_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("k.db"))
            .await
            .unwrap();
        let bundle = crate::script::load_dir(std::path::Path::new("benches/dialogs")).unwrap();
        let config = RunnerConfig {
            script_id: "bench".into(),
            default_lang: Lang::Ja,
            transports: vec!["local".into()],
            mode: RenderMode::Plain,
        };
        let runner = Runner::new(Arc::new(store), Arc::new(SystemClock), bundle, config)
            .await
            .unwrap();
        let done = owner(1);
        runner
            .handle(&done, Input::Text("こんにちは".into()), None)
            .await
            .unwrap();
        for q in 1..=20 {
            let text = if q % 5 == 0 {
                format!("{q}")
            } else {
                format!("質問{q}への回答です")
            };
            runner.handle(&done, Input::Text(text), None).await.unwrap();
        }
        assert_eq!(runner.held().1, 0, "a closed session is not cached");
        let (.., new) = runner
            .load(&done, &Input::Text("ありがとう".into()), None, true)
            .await
            .unwrap();
        assert!(new.is_none(), "read: the ended consultation is found");
        let (.., new) = runner
            .load(&owner(2), &Input::Text("こんにちは".into()), None, true)
            .await
            .unwrap();
        assert_eq!(new.map(|n| n.presumed), Some(Presumption::NoSession));
    }
}
