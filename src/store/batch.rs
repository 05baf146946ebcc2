//! Group commit: the steps of many conversations made durable together.
//!
//! With `synchronous = FULL` every SQLite commit waits for an fsync, so one
//! transaction per turn caps the bot at a few thousand turns per second
//! however many owners are typing. The [`GroupCommitter`] is one task fed by
//! a channel: it takes every step that is waiting (up to a cap), commits
//! them with one [`Store::commit_steps`] call (one transaction, one fsync)
//! and hands each caller its outcome. While it commits, the next batch
//! gathers, so the batch grows with the load and an idle bot commits each
//! step at once. On SQLite the fsync is taken out of the commit
//! ([`Store::deferred_flush`], [`super::walsync`]): one batch is written
//! while the one before waits for the disk, and each batch's owners are
//! answered when its fsync has finished.
//!
//! The guarantee of [`Store::commit_step`] is kept: a caller gets its
//! outcome only after the transaction holding its step has committed. If
//! some steps of a batch are stale (their session changed since it was
//! read), or first steps presumed wrongly that their owner had no session
//! (see [`super::Presumption`]), those fail alone and the rest is
//! committed again as a batch; if a batch fails otherwise, its steps are
//! retried one by one, so one bad step fails alone.

use super::{NewDelivery, NewSession, StepCommit, StepOutcome, Store, StoreError};
use crate::domain::ids::SessionId;
use crate::engine::{Effect, SessionState};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedMutexGuard};

/// A step handed over to the committer: a [`StepCommit`] that owns its
/// data, returned to the caller with the outcome.
#[derive(Debug)]
pub struct OwnedStep {
    pub session: SessionId,
    /// The revision the step was computed from ([`StepCommit::rev`]).
    pub rev: i64,
    pub now: DateTime<Utc>,
    pub state: SessionState,
    pub current_node: String,
    pub effects: Vec<Effect>,
    pub deliveries: Vec<NewDelivery>,
    pub new_session: Option<NewSession>,
    /// `state` as JSON, if the caller serialised it already.
    pub state_json: Option<String>,
    /// [`StepCommit::prev_status`].
    pub prev_status: Option<crate::engine::Status>,
    /// [`StepCommit::case_timers`].
    pub case_timers: Option<super::CaseTimers>,
    /// A lock (the owner's) held until the step is durable and its caller
    /// has the outcome, or has gone away: a caller that stops waiting does
    /// not let the owner's next message read the state before this step
    /// landed.
    pub guard: Option<OwnedMutexGuard<()>>,
}

impl OwnedStep {
    pub fn as_commit(&self) -> StepCommit<'_> {
        StepCommit {
            session: self.session,
            rev: self.rev,
            now: self.now,
            state: &self.state,
            current_node: &self.current_node,
            effects: &self.effects,
            deliveries: self.deliveries.clone(),
            new_session: self.new_session.as_ref(),
            state_json: self.state_json.as_deref(),
            prev_status: self.prev_status,
            case_timers: self.case_timers.as_ref(),
        }
    }
}

/// How the committer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// The most steps in one transaction.
    pub max_batch: usize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        GroupCommitOptions { max_batch: 1024 }
    }
}

type Reply = (Result<StepOutcome, StoreError>, OwnedStep);

struct Job {
    step: OwnedStep,
    reply: oneshot::Sender<Reply>,
}

/// The handle to a committer task. Dropping it ends the task once the
/// steps already queued are committed.
pub struct GroupCommitter {
    store: Arc<dyn Store>,
    tx: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for GroupCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommitter")
    }
}

impl GroupCommitter {
    /// Starts the committer on a thread of its own (see
    /// `spawn_dedicated`); `None` outside a tokio runtime (callers then
    /// commit directly).
    pub fn spawn(store: Arc<dyn Store>, options: GroupCommitOptions) -> Option<GroupCommitter> {
        tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::unbounded_channel();
        spawn_dedicated(
            "madoguchi-commit",
            run(store.clone(), rx, options.max_batch.max(1)),
        )?;
        Some(GroupCommitter { store, tx })
    }

    /// Commits one step together with whatever else is waiting. Returns
    /// only after the step is durable (or failed), with the step itself.
    pub async fn commit(&self, step: OwnedStep) -> Reply {
        let (reply, rx) = oneshot::channel();
        match self.tx.send(Job { step, reply }) {
            Ok(()) => {}
            // The committer is gone (its runtime shut down): commit here.
            Err(mpsc::error::SendError(job)) => {
                let r = self.store.commit_step(&job.step.as_commit()).await;
                return (r, job.step);
            }
        }
        match rx.await {
            Ok(r) => r,
            // The committer died holding the step; whether it landed is
            // unknown, so the caller must not reply as if it had.
            Err(_) => (
                Err(StoreError::Db(sqlx::Error::WorkerCrashed)),
                empty_step(),
            ),
        }
    }
}

/// Runs `task` on a thread of its own, with a single-threaded runtime.
///
/// The committer and the reader are on every owner's path: a batch makes
/// several round trips to sqlx's SQLite worker thread, and every owner of
/// the batch waits for all of them. On the application's runtime each
/// wake-up from that worker thread goes through tokio's shared queue and
/// waits behind the owners' tasks (hundreds of them at a time under load),
/// so a batch took about a millisecond longer per round trip. On a thread
/// of its own the task runs as soon as the OS wakes it. The thread ends
/// when the task does (its channel closed: every handle dropped).
fn spawn_dedicated<F>(name: &str, task: F) -> Option<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || rt.block_on(task))
        .ok()?;
    Some(())
}

fn empty_step() -> OwnedStep {
    OwnedStep {
        session: SessionId(0),
        rev: 0,
        now: DateTime::<Utc>::MIN_UTC,
        state: SessionState::default(),
        current_node: String::new(),
        effects: Vec::new(),
        deliveries: Vec::new(),
        new_session: None,
        state_json: None,
        prev_status: None,
        case_timers: None,
        guard: None,
    }
}

// Both commit without the store's flush (a no-op unless
// `Store::deferred_flush`): the lane flushes once for the whole batch.
async fn commit(store: &dyn Store, jobs: &[Job]) -> Result<Vec<StepOutcome>, StoreError> {
    let commits: Vec<StepCommit<'_>> = jobs.iter().map(|j| j.step.as_commit()).collect();
    store.commit_steps_unflushed(&commits).await
}

async fn commit_one(store: &dyn Store, job: &Job) -> Result<StepOutcome, StoreError> {
    let mut v = store
        .commit_steps_unflushed(std::slice::from_ref(&job.step.as_commit()))
        .await?;
    v.pop()
        .ok_or_else(|| StoreError::Conflict("the store returned no outcome".into()))
}

async fn run(store: Arc<dyn Store>, rx: mpsc::UnboundedReceiver<Job>, max: usize) {
    // A store whose `commit_steps` is not all-or-nothing gets one step at
    // a time: a failed batch is committed again, which would write its
    // first steps twice.
    let max = if store.atomic_batches() { max } else { 1 };
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    // Each lane gathers and commits batches; with more than one, the next
    // batch gathers and is written while the last one commits (see
    // `Store::batches_in_flight`).
    let lanes = store.batches_in_flight().max(1);
    let mut set = tokio::task::JoinSet::new();
    for _ in 1..lanes {
        set.spawn(lane(store.clone(), rx.clone(), max));
    }
    lane(store, rx, max).await;
    while set.join_next().await.is_some() {}
}

/// A step's outcome, sent once the step is durable.
type Answer = (
    oneshot::Sender<Reply>,
    Result<StepOutcome, StoreError>,
    OwnedStep,
);

async fn lane(
    store: Arc<dyn Store>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    max: usize,
) {
    // With a deferred flush (SQLite, see `Store::deferred_flush`) the lane
    // keeps the receiver through its batch's writing and lets it go only
    // for the flush: the next lane then gathers everything that arrived
    // meanwhile, just as the writer is free for it, and writes it while
    // this batch waits for the disk. (Gathering earlier would only make
    // that batch wait for the writer with fewer steps, and leave those
    // arriving meanwhile for the batch after.) Otherwise the receiver is
    // let go as soon as the batch is gathered, so that a server's
    // batches are written at the same time.
    let deferred = store.deferred_flush();
    let mut jobs: Vec<Job> = Vec::with_capacity(max.min(4096));
    let mut answers: Vec<Answer> = Vec::with_capacity(max.min(4096));
    loop {
        // Waits for one step, then takes every other one already queued;
        // the other lanes wait for the receiver meanwhile.
        let mut receiver = rx.lock().await;
        if deferred {
            // The store's upkeep (SQLite: letting the WAL start over) needs
            // a moment when no batch is being written; with the receiver
            // held, none is until this lane writes.
            upkeep(&*store).await;
        }
        if receiver.recv_many(&mut jobs, max).await == 0 {
            return;
        }
        let receiver = if deferred {
            Some(receiver)
        } else {
            drop(receiver);
            None
        };
        write_batch(&*store, &mut jobs, &mut answers).await;
        drop(receiver);
        // What was committed becomes durable before anyone hears of it.
        if deferred && answers.iter().any(|(_, r, _)| r.is_ok()) {
            if let Err(e) = store.flush_steps().await {
                tracing::error!(error = %e, steps = answers.len(), "flushing a batch to disk failed; its owners are told to try again");
                for (_, r, _) in answers.iter_mut() {
                    if r.is_ok() {
                        *r = Err(match &e {
                            StoreError::WriteFailed(m) => StoreError::WriteFailed(m.clone()),
                            e => StoreError::Db(sqlx::Error::Io(std::io::Error::other(
                                e.to_string(),
                            ))),
                        });
                    }
                }
            }
        }
        for (reply, r, step) in answers.drain(..) {
            // A caller that stopped waiting drops its reply; the step is
            // durable all the same.
            let _ = reply.send((r, step));
        }
        if !deferred {
            upkeep(&*store).await;
        }
    }
}

async fn upkeep(store: &dyn Store) {
    if let Err(e) = store.between_batches().await {
        tracing::warn!(error = %e, "store upkeep between batches failed; it is tried again later");
    }
}

/// Writes a gathered batch and puts every step's outcome in `answers`
/// (durable once the store's flush returns; see [`Store::deferred_flush`]).
async fn write_batch(store: &dyn Store, jobs: &mut Vec<Job>, answers: &mut Vec<Answer>) {
    let mut result = commit(store, jobs).await;
    // Stale steps, and first steps that presumed wrongly that their
    // owner had no session, fail alone; the others are committed again
    // together (nothing of the failed attempt was written).
    while jobs.len() > 1 {
        match &result {
            Err(StoreError::Stale(stale)) if !stale.is_empty() => {
                let stale = stale.clone();
                let (bad, good): (Vec<Job>, Vec<Job>) = jobs
                    .drain(..)
                    .partition(|j| j.step.new_session.is_none() && stale.contains(&j.step.session));
                *jobs = good;
                if bad.is_empty() {
                    break;
                }
                // Each alone, which gives each its own answer (stale, or
                // its session is gone); rare, so one transaction each is
                // fine.
                for job in bad {
                    let r = commit_one(store, &job).await;
                    answers.push((job.reply, r, job.step));
                }
            }
            Err(StoreError::NotNew(owners)) if !owners.is_empty() => {
                let owners = owners.clone();
                let (bad, good): (Vec<Job>, Vec<Job>) = jobs.drain(..).partition(|j| {
                    j.step
                        .new_session
                        .as_ref()
                        .is_some_and(|n| owners.contains(&n.user))
                });
                *jobs = good;
                if bad.is_empty() {
                    break;
                }
                // The store names exactly the refused ones (a presumption
                // is checked row by row), so each is answered without a
                // transaction of its own.
                for job in bad {
                    let user = job.step.new_session.as_ref().map(|n| n.user.clone());
                    let e = StoreError::NotNew(user.into_iter().collect());
                    answers.push((job.reply, Err(e), job.step));
                }
            }
            _ => break,
        }
        if jobs.is_empty() {
            break;
        }
        result = commit(store, jobs).await;
    }
    // Every step may have been answered already (all of them refused).
    match result {
        _ if jobs.is_empty() => {}
        Ok(outcomes) if outcomes.len() == jobs.len() => {
            for (job, outcome) in jobs.drain(..).zip(outcomes) {
                answers.push((job.reply, Ok(outcome), job.step));
            }
        }
        Ok(outcomes) => {
            let e = StoreError::Conflict(format!(
                "the store returned {} outcomes for {} steps",
                outcomes.len(),
                jobs.len()
            ));
            tracing::error!("{e}");
            for job in jobs.drain(..) {
                answers.push((
                    job.reply,
                    Err(StoreError::Conflict(e.to_string())),
                    job.step,
                ));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let job = jobs.pop().expect("one job");
            answers.push((job.reply, Err(e), job.step));
        }
        Err(e) => {
            // Nothing of the batch was committed. One step may be at
            // fault: commit each alone so the others go through.
            tracing::warn!(steps = jobs.len(), error = %e, "group commit failed; committing its steps one by one");
            for job in jobs.drain(..) {
                let r = commit_one(store, &job).await;
                answers.push((job.reply, r, job.step));
            }
        }
    }
}

/// Group read: the sessions of many owners read with one query.
///
/// When many owners write at about the same moment and none of them is in
/// the runner's session cache (a restart, or the morning's first messages),
/// each would otherwise cost a query of its own, and those queries queue
/// for the few connections of the pool behind the commits. The reader is
/// one task fed by a channel, like the [`GroupCommitter`]: it takes every
/// request waiting (up to a cap) and answers them with one
/// [`Store::sessions_to_resume`] call. An idle bot reads each owner at once.
pub struct GroupReader {
    store: Arc<dyn Store>,
    tx: mpsc::UnboundedSender<ReadJob>,
}

type ReadReply = Result<Option<super::SessionRecord>, StoreError>;

struct ReadJob {
    user: crate::domain::ids::UserKey,
    reply: oneshot::Sender<ReadReply>,
}

impl std::fmt::Debug for GroupReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupReader")
    }
}

/// The most owners read in one query.
const MAX_READ_BATCH: usize = 256;

impl GroupReader {
    /// Starts the reader on a thread of its own (see `spawn_dedicated`);
    /// `None` outside a tokio runtime (callers then read directly).
    pub fn spawn(store: Arc<dyn Store>) -> Option<GroupReader> {
        tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::unbounded_channel();
        spawn_dedicated("madoguchi-read", read_loop(store.clone(), rx))?;
        Some(GroupReader { store, tx })
    }

    /// The session `user`'s next message continues, read together with
    /// whatever other owners are waiting (see [`Store::sessions_to_resume`]).
    pub async fn session_to_resume(&self, user: &crate::domain::ids::UserKey) -> ReadReply {
        let (reply, rx) = oneshot::channel();
        let job = ReadJob {
            user: user.clone(),
            reply,
        };
        if self.tx.send(job).is_err() {
            // The reader is gone (its runtime shut down): read here.
            return self.store.session_to_resume(user).await;
        }
        match rx.await {
            Ok(r) => r,
            // A read changes nothing, so it is safe to ask again.
            Err(_) => self.store.session_to_resume(user).await,
        }
    }
}

/// Group reads in flight at once. Reads do not wait for each other in
/// SQLite (WAL), so a slow one (its connection's thread waiting for a
/// core) should not hold up the owners who wrote after it.
const READS_IN_FLIGHT: usize = 3;

async fn read_loop(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<ReadJob>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(READS_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let mut jobs: Vec<ReadJob> = Vec::with_capacity(MAX_READ_BATCH);
        if rx.recv_many(&mut jobs, MAX_READ_BATCH).await == 0 {
            break;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        // Reaps the reads that are done, so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let store = store.clone();
        tasks.spawn(async move {
            read_batch(&*store, jobs).await;
            drop(slot);
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn read_batch(store: &dyn Store, mut jobs: Vec<ReadJob>) {
    let users: Vec<_> = jobs.iter().map(|j| j.user.clone()).collect();
    match store.sessions_to_resume(&users).await {
        Ok(found) if found.len() == jobs.len() => {
            for (job, s) in jobs.drain(..).zip(found) {
                let _ = job.reply.send(Ok(s));
            }
        }
        result => {
            // One failed query must not fail every owner in it (nor could
            // one error be handed to all): each is read alone.
            if let Err(e) = result {
                tracing::warn!(owners = jobs.len(), error = %e, "group read failed; reading the owners one by one");
            }
            for job in jobs.drain(..) {
                let r = store.session_to_resume(&job.user).await;
                let _ = job.reply.send(r);
            }
        }
    }
}
