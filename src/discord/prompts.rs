//! The owners' current-question messages ([`LivePrompt`]), kept in memory
//! and written to the store behind the turn.
//!
//! Each turn records which message carries the new question. Written in
//! the turn, that was one SQLite transaction (and fsync) per turn outside
//! the runner's group commit, and the single writer made it the bound of
//! the whole bot (`madoguchi-bench discord`: 1,083 turns/s on disk, 1,759
//! with the database on tmpfs). Here the latest prompt of each owner is
//! what this process believes at once, and a writer task saves the latest
//! one per owner (a newer one replaces one not yet written).
//!
//! If the bot dies before a prompt is written, the store still has the
//! previous one: after the restart (or the takeover) `resume_consultations`
//! finds that the current question was not recorded as shown, looks for it
//! in the owner's DM (question messages name their node in their command
//! buttons' ids) and records the message it finds, or sends the question
//! again when it was never posted. An owner's typed message is paired with
//! the newest question message before it in the same way, so it never
//! answers a question the owner had not seen. `flush` runs at shutdown. Like the
//! runner's session cache, this assumes the running bot is the only
//! process answering owners from its database.

use crate::domain::ids::UserKey;
use crate::script::Flow;
use crate::store::{LivePrompt, Result as StoreResult, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, Notify};

#[derive(Default)]
pub(crate) struct Prompts {
    /// What this process knows: `None` = no live prompt.
    known: Mutex<HashMap<UserKey, Option<LivePrompt>>>,
    /// Changes not yet written.
    dirty: Mutex<HashMap<UserKey, Option<LivePrompt>>>,
    wake: Notify,
    /// Held while writing, so `forget` can wait for a write in progress.
    writing: tokio::sync::Mutex<()>,
    /// The script version each owner's current session runs, as the last
    /// turn had it: a press on the current question then needs no read of
    /// the session from the store (the runner reads it again anyway).
    flows: Mutex<HashMap<UserKey, (i64, Arc<Flow>)>>,
}

impl Prompts {
    pub(crate) async fn get(
        &self,
        store: &Arc<dyn Store>,
        user: &UserKey,
    ) -> StoreResult<Option<LivePrompt>> {
        if let Some(p) = lock(&self.known).get(user) {
            return Ok(p.clone());
        }
        store.live_prompt(user).await
    }

    /// Forgets what this process believes about the owner's live prompt
    /// (a change not yet written is still written): after a send that
    /// failed, the question may or may not have reached the owner, so the
    /// next message is judged from the store and the chat's history.
    pub(crate) fn doubt(&self, user: &UserKey) {
        lock(&self.known).remove(user);
    }

    pub(crate) fn set(&self, p: LivePrompt) {
        lock(&self.known).insert(p.user.clone(), Some(p.clone()));
        lock(&self.dirty).insert(p.user.clone(), Some(p));
        self.wake.notify_one();
    }

    pub(crate) fn set_flow(&self, user: &UserKey, session: i64, flow: Arc<Flow>) {
        lock(&self.flows).insert(user.clone(), (session, flow));
    }

    /// The flow of `session` if it is the owner's session of the last turn.
    pub(crate) fn flow_of(&self, user: &UserKey, session: i64) -> Option<Arc<Flow>> {
        lock(&self.flows)
            .get(user)
            .filter(|(s, _)| *s == session)
            .map(|(_, f)| f.clone())
    }

    pub(crate) fn clear(&self, user: &UserKey) {
        lock(&self.flows).remove(user);
        lock(&self.known).insert(user.clone(), None);
        lock(&self.dirty).insert(user.clone(), None);
        self.wake.notify_one();
    }

    /// Drops what is known and not yet written about an owner whose data is
    /// being deleted; returns once no write for them is in progress.
    pub(crate) async fn forget(&self, user: &UserKey) {
        let _w = self.writing.lock().await;
        lock(&self.known).remove(user);
        lock(&self.dirty).remove(user);
        lock(&self.flows).remove(user);
    }

    /// Writes every pending change (at most the latest per owner).
    pub(crate) async fn flush(&self, store: &Arc<dyn Store>) {
        let _w = self.writing.lock().await;
        let batch: Vec<(UserKey, Option<LivePrompt>)> = lock(&self.dirty).drain().collect();
        for (user, p) in batch {
            let r = match &p {
                Some(p) => store.set_live_prompt(p).await,
                None => store.clear_live_prompt(&user).await,
            };
            match r {
                Ok(()) => {
                    // A cleared prompt need not stay in memory: the store
                    // says the same now.
                    if p.is_none() {
                        let mut known = lock(&self.known);
                        if matches!(known.get(&user), Some(None)) {
                            known.remove(&user);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(user = %user, error = %e, "could not save the current question; will retry");
                    lock(&self.dirty).entry(user).or_insert(p);
                }
            }
        }
    }

    /// The writer: saves changes as they come, until `stop`, then flushes.
    pub(crate) async fn run_writer(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            self.flush(&store).await;
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = stop.changed() => {}
                // A failed write is retried.
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
        self.flush(&store).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
