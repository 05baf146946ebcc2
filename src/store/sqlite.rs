//! The embedded default store: SQLite through sqlx, WAL mode, every commit
//! fsync'd before it is acknowledged (`synchronous = FULL`, or for owners'
//! steps an fsync right after the commit, see [`super::walsync`]) so an
//! acknowledged answer survives a power cut, not only a crash of the
//! process.

use super::*;
use crate::domain::ids::{CaseId, SessionId, UserKey};
use crate::engine::{ConsentRecord, Effect};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

// Every write transaction starts with BEGIN IMMEDIATE: most read a row
// before writing, and a deferred transaction that must upgrade its lock
// fails at once with SQLITE_BUSY when another writer (the delivery worker,
// a staff action) got there first, instead of waiting for busy_timeout.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection that commits owners' steps (see
    /// [`SqliteStore::with_options`]).
    steps: SqlitePool,
    /// Stops the background checkpointer when the last clone of the store
    /// is dropped.
    _checkpointer: Arc<tokio::sync::oneshot::Sender<()>>,
    /// Whether the WAL has grown long enough to be worth starting over
    /// (see [`Store::between_batches`]).
    wal: Arc<WalRestart>,
    /// Flushes the WAL after each commit of owners' steps, outside the
    /// write lock (see [`super::walsync`]); `None` for a database that is
    /// not a file, whose steps connection then keeps `FULL`.
    wal_sync: Option<Arc<super::walsync::WalSync>>,
}

/// The page cache of the connection that commits owners' steps, in KiB
/// (SQLite's `cache_size` takes a negative number as KiB): 64 MiB, about
/// 16,000 pages, against SQLite's default of 2 MiB.
const STEP_CACHE_KIB: &str = "-65536";

/// How often the background task checkpoints the WAL. Under full load
/// each pass copies what a quarter of the interval's commits changed and
/// fsyncs the database, beside the committer's own WAL fsyncs; shorter
/// passes disturbed those less (p99 of the real consultation 24–28 ms
/// against 28.6–29.8 ms every 100 ms, three runs each, BENCHMARKS.md),
/// and copied less when the committer pauses to let the WAL start over.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// The page size of a database made by this version (see
/// [`SqliteStore::open`]).
pub const NEW_DATABASE_PAGE_SIZE: u32 = 16384;

/// The WAL length (in frames of one page) from which the group committer
/// is asked to let the WAL start over: 8,192 frames are 128 MiB with 16 KiB
/// pages (32 MiB in a database made with 4 KiB pages); under full load the
/// real consultation's benchmark reached it every 0.3–0.5 s.
const WAL_RESTART_FRAMES: i64 = 8192;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// The forward requests of these ids, in that order (the ones since
    /// deleted left out): the pending lists read ids first.
    async fn forward_requests_by_id(&self, ids: Vec<i64>) -> Result<Vec<ForwardRequest>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.forward_request(id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Records an attempt and ends the delivery's lease; with `owner`, only
    /// while the delivery is leased by `owner` (otherwise nothing is
    /// written and the answer is false).
    async fn record(
        &self,
        id: i64,
        owner: Option<&str>,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let (name, error, q) = match outcome {
            AttemptOutcome::Delivered { external_id } => (
                "delivered",
                None,
                sqlx::query(
                    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = NULL,
                     external_id = COALESCE(?, external_id), lease_owner = NULL, lease_until = NULL
                     WHERE id = ? AND (? IS NULL OR lease_owner = ?)",
                )
                .bind(now)
                .bind(external_id.clone())
                .bind(id),
            ),
            AttemptOutcome::Retry { at, error } => (
                "retry",
                Some(error),
                sqlx::query(
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL
                     WHERE id = ? AND (? IS NULL OR lease_owner = ?)",
                )
                .bind(*at)
                .bind(error.clone())
                .bind(id),
            ),
            AttemptOutcome::Failed { error } => (
                "failed",
                Some(error),
                sqlx::query(
                    "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = ?, lease_owner = NULL, lease_until = NULL
                     WHERE id = ? AND (? IS NULL OR lease_owner = ?)",
                )
                .bind(error.clone())
                .bind(id),
            ),
        };
        let n = q
            .bind(owner)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            // Not ours (or no such delivery): the transaction is rolled
            // back when dropped.
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, outcome, error, at) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, None).await
    }

    /// [`SqliteStore::open`] with a stand-in for the WAL's fsync, which a
    /// test can hold back to see what waits for it.
    #[doc(hidden)]
    pub async fn open_with_wal_sync(
        path: &Path,
        sync: super::walsync::SyncFn,
    ) -> Result<SqliteStore> {
        Self::open_with(path, Some(sync)).await
    }

    async fn open_with(path: &Path, sync: Option<super::walsync::SyncFn>) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // The WAL is checkpointed by a task of its own (see
            // `checkpoint_loop`), not by the connection that happens to
            // commit when the WAL passes SQLite's 1,000 pages: that commit
            // would copy the WAL into the database and fsync it before
            // answering, and every owner in its batch would wait for it.
            // This limit is only a backstop, should that task be unable to
            // run. Durability is unchanged (the WAL is fsync'd at every
            // commit).
            .pragma("wal_autocheckpoint", "100000")
            // A group commit's multi-row `UPDATE … FROM (VALUES …)` and its
            // `RETURNING` go through temporary tables; in a file they cost a
            // create, writes and an unlink per batch.
            .pragma("temp_store", "memory")
            // A new database gets 16 KiB pages instead of SQLite's 4 KiB.
            // A batch of owners' steps changes rows scattered over the
            // sessions table and the answers' index, each page a WAL frame
            // of its own (two system calls each); with larger pages the
            // same rows take fewer, fuller frames. The real consultation
            // ran 10–20 % faster, with a lower p99 (BENCHMARKS.md). SQLite
            // applies this only to a database that has no tables yet; an
            // existing database keeps the page size it was made with.
            .page_size(NEW_DATABASE_PAGE_SIZE);
        Self::with_options_and_sync(opts, sync).await
    }

    pub async fn with_options(opts: SqliteConnectOptions) -> Result<SqliteStore> {
        Self::with_options_and_sync(opts, None).await
    }

    async fn with_options_and_sync(
        opts: SqliteConnectOptions,
        sync: Option<super::walsync::SyncFn>,
    ) -> Result<SqliteStore> {
        // Deleted rows are overwritten with zeros, not merely unlinked, so
        // what `forget` deletes cannot be read back from freed pages or
        // unused cell space in the file (or in the WAL frames that carry
        // those pages).
        let opts = opts.pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // Owners' steps are committed on a connection of their own, always
        // the same one. In WAL mode a connection drops its whole page cache
        // when it begins a transaction after another connection wrote, so
        // with the steps spread over the pool's connections (which it hands
        // out in turn) every batch began cold and read back, through a
        // system call each, the pages of the sessions and indexes that the
        // batch before had just written. With one connection its cache
        // stays valid from batch to batch; it is made large enough to hold
        // the pages that the owners in flight touch.
        //
        // That connection commits with `synchronous = NORMAL` (no fsync
        // inside `COMMIT`, which holds the write lock), and the store
        // fsyncs the WAL after each commit and before anyone is told of
        // it, while the next batch is written (see `walsync`). The pool's
        // connections, which write one thing at a time, keep `FULL`.
        let db = opts.get_filename().to_path_buf();
        let wal_sync = db.is_file().then(|| {
            Arc::new(match sync {
                Some(sync) => super::walsync::WalSync::with_sync(sync),
                None => super::walsync::WalSync::for_database(db),
            })
        });
        let step_opts = opts.clone().pragma("cache_size", STEP_CACHE_KIB);
        let step_opts = match wal_sync {
            Some(_) => step_opts.synchronous(SqliteSynchronous::Normal),
            None => step_opts,
        };
        let steps = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(step_opts)
            .await?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let wal = Arc::new(WalRestart::default());
        tokio::spawn(checkpoint_loop(opts, stopped, wal.clone()));
        Ok(SqliteStore {
            pool,
            steps,
            _checkpointer: Arc::new(stop),
            wal,
            wal_sync,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// After a failed fsync of the WAL nothing more is written: no owner's
    /// step, no lease of something to send (a case, a relay, a reminder),
    /// and through [`Self::writer`] no other write. Each would act on, or
    /// stand behind, pages that may not be on disk (see
    /// [`super::walsync`]).
    fn refuse_after_failure(&self) -> Result<()> {
        match self.write_failure() {
            Some(e) => Err(StoreError::WriteFailed(e)),
            None => Ok(()),
        }
    }

    /// The pool, for a write: refused after a failed fsync of the WAL like
    /// an owner's step. Staff actions, deliveries' outcomes, deletions and
    /// the other single writes are committed through the pool's own
    /// connections, whose fsync may succeed after the committer's failed:
    /// the kernel reports a failed writeback once per open file. A write
    /// acknowledged then could sit in the WAL behind frames that never
    /// reached the disk, and a restart would drop it with them.
    fn writer(&self) -> Result<&SqlitePool> {
        self.refuse_after_failure()?;
        Ok(&self.pool)
    }
}

/// Checkpoints the WAL in the background on a connection of its own, so
/// that no commit waits for a checkpoint. `PASSIVE` copies what it can
/// without blocking writers or readers, and new commits go on meanwhile.
///
/// Under a steady stream of commits that is not enough: SQLite starts the
/// WAL over from its beginning only when a write begins while every frame
/// is already copied, and with the group committer always writing, each
/// pass ends behind the commits made while it ran. The WAL then grew
/// without bound (412 MB over a 5-second benchmark), and every commit
/// appended to new parts of the file, which the kernel had to allocate
/// and zero: 15 % of the benchmark's CPU went to `pwrite`. So when a pass
/// finds the WAL long, it asks for a restart ([`WalRestart`]), and the
/// committer copies the little that is left between two batches
/// ([`Store::between_batches`]).
async fn checkpoint_loop(
    opts: SqliteConnectOptions,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    wal: Arc<WalRestart>,
) {
    use sqlx::ConnectOptions;
    // Ten statements a second would drown a debug log.
    let opts = opts.log_statements(log::LevelFilter::Trace);
    let mut conn = match opts.connect().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the WAL checkpoint connection; SQLite checkpoints on its own");
            return;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                // (busy, frames in the WAL, frames copied)
                let since = wal.pauses.load(Ordering::Acquire);
                let r = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut conn).await;
                match r {
                    Ok((_, frames, _)) => wal.after_pass(frames, since),
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; it is tried again"),
                }
            }
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}

/// The request that the group committer let the WAL start over, between
/// the background checkpointer, which asks, and [`Store::between_batches`],
/// which copies the rest of the WAL while no batch is written.
///
/// A pass of the checkpointer that overlapped the committer's copy, or ran
/// after it but before the next write (which is when SQLite starts the WAL
/// over), still counts the old WAL's frames. Asking again on that count
/// made the committer pause a second time for nothing (about 8 ms, with
/// every owner waiting, right after each restart in the benchmark), so
/// such counts are recognised and ignored.
#[derive(Debug, Default)]
struct WalRestart {
    /// A restart is asked for.
    long: AtomicBool,
    /// How many times the committer has copied the whole WAL.
    pauses: std::sync::atomic::AtomicU64,
    /// The WAL's length in frames when it was last copied whole.
    copied_at: std::sync::atomic::AtomicI64,
}

impl WalRestart {
    /// After a checkpointer pass that found `frames` in the WAL, and began
    /// when `pauses` was `since`: asks for a restart if the WAL is long
    /// and the count is not the old WAL's.
    fn after_pass(&self, frames: i64, since: u64) {
        let overlapped = self.pauses.load(Ordering::Acquire) != since;
        let not_restarted_yet = frames == self.copied_at.load(Ordering::Acquire);
        if frames >= WAL_RESTART_FRAMES && !overlapped && !not_restarted_yet {
            self.long.store(true, Ordering::Release);
        }
    }

    /// Takes the request, if there is one.
    fn take(&self) -> bool {
        self.long.swap(false, Ordering::AcqRel)
    }

    /// After the committer's checkpoint, which copied `copied` of the
    /// WAL's `frames` (`busy` if it met another checkpoint): done if it
    /// copied everything, else the request stays for the next pause.
    fn after_copy(&self, busy: bool, frames: i64, copied: i64) {
        if busy || copied < frames {
            self.long.store(true, Ordering::Release);
        } else {
            self.copied_at.store(frames, Ordering::Release);
            self.pauses.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// What replaces text derived from a forgotten owner's answers.
pub(super) const DELETED: &str = "（削除済み / deleted）";

/// Removes, in a route or an audit entry, the values that hold text derived
/// from an owner's answers or written about them: `reason`, `outcome` and
/// `note` strings become [`DELETED`], `passed_over` (each earlier rule's
/// reason) becomes empty. Hub ids, rule ids, steps and times stay. Returns
/// whether anything changed.
pub(super) fn scrub_derived_text(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    let mut changed = false;
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                match (k.as_str(), &*val) {
                    ("reason" | "outcome" | "note", Value::String(s)) if s != DELETED => {
                        *val = Value::String(DELETED.into());
                        changed = true;
                    }
                    ("passed_over", Value::Array(a)) if !a.is_empty() => {
                        *val = Value::Array(Vec::new());
                        changed = true;
                    }
                    _ => changed |= scrub_derived_text(val),
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                changed |= scrub_derived_text(x);
            }
        }
        _ => {}
    }
    changed
}

impl SqliteStore {
    /// Copies the WAL into the database and truncates it to nothing, so
    /// that the frames holding what `forget` just deleted are gone from the
    /// disk and not only superseded.
    ///
    /// Another connection (this process's checkpointer, `madoguchi run`,
    /// a `sqlite3` shell) being open does not stop this; one in the middle
    /// of a read that started before the deletion does, because it may
    /// still read those frames. SQLite then waits for it (the busy
    /// timeout, 10 s), and this tries a few times more. If the WAL still
    /// cannot be truncated, the error says so: the deletion itself is
    /// committed, and running `forget` again once that reader is done
    /// finishes the job.
    async fn truncate_wal(&self) -> Result<()> {
        let mut busy = 0;
        for attempt in 0..3u64 {
            // (busy, frames in the WAL, frames copied); with TRUNCATE a
            // success leaves the WAL empty.
            let (b, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await?;
            busy = b;
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
        }
        Err(StoreError::Conflict(format!(
            "the owner's data is deleted, but another program is still reading the database, so the write-ahead log that holds old copies could not be cleared (checkpoint busy {busy}); stop long-running readers and run forget again"
        )))
    }
}

fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

fn json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialising plain data cannot fail")
}

/// A session row with its answer log: the answers that count for the current
/// state (from `answers_from` on, with a question index), oldest first, as a
/// JSON array of `[ix, value]` (`value` null for a withdrawn answer). One
/// query, so loading a session is one round trip to SQLite's worker.
macro_rules! session_select {
    ($tail:literal) => {
        concat!(
            "SELECT s.*,
                (SELECT json_group_array(json_array(a.ix, json(a.value)) ORDER BY a.id)
                 FROM answers a
                 WHERE a.session_id = s.id AND a.id >= s.answers_from AND a.ix IS NOT NULL) AS answer_log
             FROM sessions s ",
            $tail
        )
    };
}

fn session_row(r: &SqliteRow) -> Result<SessionRecord> {
    let user: String = r.try_get("user_key")?;
    let lang: String = r.try_get("lang")?;
    let status: String = r.try_get("status")?;
    let state: String = r.try_get("state")?;
    let mut state: SessionState = json("session state", &state)?;
    let log: Option<String> = r.try_get("answer_log")?;
    if let Some(log) = log {
        let log: Vec<(crate::script::NodeIx, Option<AnswerValue>)> =
            json("session answer log", &log)?;
        state.apply_answer_log(log);
    }
    Ok(SessionRecord {
        id: SessionId(r.try_get("id")?),
        user: UserKey::parse(&user).map_err(|e| corrupt("session user", e))?,
        script_id: r.try_get("script_id")?,
        lang: Lang::parse(&lang).ok_or_else(|| corrupt("session lang", &lang))?,
        version: r.try_get("version")?,
        status: Status::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        current_node: r.try_get("current_node")?,
        state,
        rev: r.try_get("rev")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn case_row(r: &SqliteRow) -> Result<CaseRecord> {
    let user: String = r.try_get("user_key")?;
    let route: String = r.try_get("route")?;
    let tags: String = r.try_get("tags")?;
    let status: String = r.try_get("status")?;
    let step: i64 = r.try_get("step")?;
    Ok(CaseRecord {
        id: CaseId(r.try_get("id")?),
        session: SessionId(r.try_get("session_id")?),
        user: UserKey::parse(&user).map_err(|e| corrupt("case user", e))?,
        version: r.try_get("version")?,
        headline: r.try_get("headline")?,
        summary_plain: r.try_get("summary_plain")?,
        summary_markdown: r.try_get("summary_markdown")?,
        route: json("case route", &route)?,
        hub_id: r.try_get("hub_id")?,
        tags: json("case tags", &tags)?,
        step: step.clamp(0, 5) as u8,
        status: CaseStatus::parse(&status).ok_or_else(|| corrupt("case status", &status))?,
        claimed_by: r.try_get("claimed_by")?,
        outcome: r.try_get("outcome")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn follow_up_row(r: &SqliteRow) -> Result<FollowUp> {
    let user: String = r.try_get("user_key")?;
    let status: String = r.try_get("status")?;
    let seq: i64 = r.try_get("seq")?;
    let session: Option<i64> = r.try_get("session_id")?;
    let answer_case: Option<i64> = r.try_get("answer_case")?;
    Ok(FollowUp {
        id: r.try_get("id")?,
        case: CaseId(r.try_get("case_id")?),
        user: UserKey::parse(&user).map_err(|e| corrupt("follow-up user", e))?,
        seq: seq.clamp(0, 255) as u8,
        due_at: r.try_get("due_at")?,
        status: FollowUpStatus::parse(&status)
            .ok_or_else(|| corrupt("follow-up status", &status))?,
        session: session.map(SessionId),
        answer_case: answer_case.map(CaseId),
        offered_at: r.try_get("offered_at")?,
        reminded_at: r.try_get("reminded_at")?,
        decided_at: r.try_get("decided_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn delivery_row(r: &SqliteRow) -> Result<DeliveryRecord> {
    let status: String = r.try_get("status")?;
    Ok(DeliveryRecord {
        id: r.try_get("id")?,
        case: CaseId(r.try_get("case_id")?),
        hub_id: r.try_get("hub_id")?,
        transport: r.try_get("transport")?,
        target: r.try_get("target")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt("delivery status", &status))?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        external_id: r.try_get("external_id")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

fn consent_row(r: &SqliteRow) -> Result<ConsentRow> {
    let user: String = r.try_get("user_key")?;
    let recipients: String = r.try_get("recipients")?;
    let items: String = r.try_get("items")?;
    let granted: i64 = r.try_get("granted")?;
    let case: Option<i64> = r.try_get("case_id")?;
    Ok(ConsentRow {
        id: r.try_get("id")?,
        session: SessionId(r.try_get("session_id")?),
        case: case.map(CaseId),
        user: UserKey::parse(&user).map_err(|e| corrupt("consent user", e))?,
        granted: granted != 0,
        recipients: json("consent recipients", &recipients)?,
        items: json("consent items", &items)?,
        wording: r.try_get("wording")?,
        at: r.try_get("at")?,
    })
}

fn timer_row(r: &SqliteRow) -> Result<TimerRecord> {
    let status: String = r.try_get("status")?;
    let payload: String = r.try_get("payload")?;
    let case: Option<i64> = r.try_get("case_id")?;
    Ok(TimerRecord {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        case: case.map(CaseId),
        due_at: r.try_get("due_at")?,
        payload: json("timer payload", &payload)?,
        status: TimerStatus::parse(&status).ok_or_else(|| corrupt("timer status", &status))?,
        holder: r.try_get("holder")?,
        lease_until: r.try_get("lease_until")?,
        attempts: r.try_get("attempts")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
        done_at: r.try_get("done_at")?,
    })
}

/// `kind IN (?, …)` for a list of kinds, or a condition that always holds
/// for an empty one.
fn kinds_sql(kinds: usize) -> String {
    if kinds == 0 {
        "1 = 1".into()
    } else {
        format!("kind IN ({})", vec!["?"; kinds].join(", "))
    }
}

fn case_post_row(r: &SqliteRow) -> Result<CasePost> {
    Ok(CasePost {
        case: CaseId(r.try_get("case_id")?),
        hub_id: r.try_get("hub_id")?,
        transport: r.try_get("transport")?,
        channel_id: r.try_get("channel_id")?,
        message_id: r.try_get("message_id")?,
        thread_id: r.try_get("thread_id")?,
        created_at: r.try_get("created_at")?,
    })
}

const CASE_COLS: &str = "id, session_id, user_key, version, headline, summary_plain, summary_markdown, route, hub_id, tags, step, status, claimed_by, outcome, created_at, updated_at";
const RELAY_COLS: &str = "id, case_id, user_key, kind, transport, target, body, status, attempts, next_attempt_at, last_error, message_ids, created_at, delivered_at";

fn relay_row(r: &SqliteRow) -> Result<RelayRecord> {
    let user: String = r.try_get("user_key")?;
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let ids: String = r.try_get("message_ids")?;
    Ok(RelayRecord {
        id: r.try_get("id")?,
        case: CaseId(r.try_get("case_id")?),
        user: UserKey::parse(&user).map_err(|e| corrupt("relay user", e))?,
        kind: RelayKind::parse(&kind).ok_or_else(|| corrupt("relay kind", &kind))?,
        transport: r.try_get("transport")?,
        target: r.try_get("target")?,
        body: r.try_get("body")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("relay status", &status))?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        message_ids: json("relay message ids", &ids)?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

const DELIVERY_COLS: &str = "id, case_id, hub_id, transport, target, status, attempts, next_attempt_at, last_error, external_id, created_at, delivered_at";

async fn insert_consent(
    tx: &mut sqlx::SqliteConnection,
    session: SessionId,
    case: Option<CaseId>,
    user: &str,
    c: &ConsentRecord,
    now: DateTime<Utc>,
) -> Result<i64> {
    super::check_consent(c)?;
    let id = sqlx::query(
        "INSERT INTO consents (session_id, case_id, user_key, granted, recipients, items, wording, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(session.0)
    .bind(case.map(|c| c.0))
    .bind(user)
    .bind(c.granted as i64)
    .bind(to_json(&c.hubs))
    .bind(to_json(&c.items))
    .bind(&c.wording)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .last_insert_rowid();
    Ok(id)
}

/// Changes a case and writes its audit entry inside a transaction.
async fn apply_change(
    tx: &mut sqlx::SqliteConnection,
    id: CaseId,
    change: &CaseChange,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<CaseRecord> {
    let row = sqlx::query(&format!("SELECT {CASE_COLS} FROM cases WHERE id = ?"))
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("case {id}")))?;
    let mut case = case_row(&row)?;
    let detail;
    match change {
        CaseChange::Claim { by } => {
            if case.status == CaseStatus::Closed {
                return Err(StoreError::Conflict(format!("case {id} is closed")));
            }
            if let Some(holder) = case.claimed_by.as_ref().filter(|h| *h != by) {
                return Err(StoreError::Conflict(format!(
                    "case {id} is already claimed by {holder}"
                )));
            }
            case.status = CaseStatus::Claimed;
            case.claimed_by = Some(by.clone());
            detail = serde_json::json!({ "by": by });
        }
        CaseChange::Release => {
            case.status = CaseStatus::Open;
            case.claimed_by = None;
            detail = serde_json::json!({});
        }
        CaseChange::Forward { to_hub, reason } => {
            detail = serde_json::json!({ "from": case.hub_id, "to": to_hub, "reason": reason });
            case.hub_id = to_hub.clone();
            case.status = CaseStatus::Open;
            case.claimed_by = None;
        }
        CaseChange::Advance { to_step } => {
            if *to_step <= case.step || *to_step > 5 {
                return Err(StoreError::Conflict(format!(
                    "case {id} is at step {}; it can only advance to a later step up to 5",
                    case.step
                )));
            }
            detail = serde_json::json!({ "from": case.step, "to": to_step });
            case.step = *to_step;
        }
        CaseChange::Close { outcome } => {
            case.status = CaseStatus::Closed;
            case.outcome = Some(outcome.clone());
            detail = serde_json::json!({ "outcome": outcome });
        }
    }
    case.updated_at = now;
    sqlx::query("UPDATE cases SET hub_id = ?, step = ?, status = ?, claimed_by = ?, outcome = ?, updated_at = ? WHERE id = ?")
        .bind(&case.hub_id)
        .bind(case.step as i64)
        .bind(case.status.name())
        .bind(&case.claimed_by)
        .bind(&case.outcome)
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(id.0)
    .bind(actor)
    .bind(change.action())
    .bind(detail.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(case)
}

/// The owner and script version of a session, read only when a step needs
/// them (consent and case rows), since most steps record an answer only.
enum SessionMeta {
    Unknown,
    Known(String, String),
}

impl SessionMeta {
    async fn get(
        &mut self,
        conn: &mut sqlx::SqliteConnection,
        session: SessionId,
    ) -> Result<(&str, &str)> {
        if let SessionMeta::Unknown = self {
            let row = sqlx::query("SELECT user_key, version FROM sessions WHERE id = ?")
                .bind(session.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("session {session}")))?;
            *self = SessionMeta::Known(row.try_get("user_key")?, row.try_get("version")?);
        }
        match self {
            SessionMeta::Known(u, v) => Ok((u.as_str(), v.as_str())),
            SessionMeta::Unknown => unreachable!("filled above"),
        }
    }
}

/// Writes one step inside the caller's transaction: the session row first
/// (created for a first step, otherwise updated, which also proves that the
/// session exists), then the rows for its effects.
async fn write_step(conn: &mut sqlx::SqliteConnection, c: &StepCommit<'_>) -> Result<StepOutcome> {
    super::check_step(c.effects)?;
    let mut outcome = StepOutcome::default();
    let mut meta = SessionMeta::Unknown;
    let session = match c.new_session {
        Some(s) => {
            let id = create_sessions(conn, &[(c, s)]).await?[0];
            meta = SessionMeta::Known(s.user.to_string(), s.version.clone());
            outcome.created = Some(id);
            id
        }
        None => {
            let updated = sqlx::query(
                "UPDATE sessions SET status = ?, current_node = ?, state = ?, updated_at = ?, rev = rev + 1 WHERE id = ? AND rev = ?",
            )
            .bind(c.state.status.name())
            .bind(c.current_node)
            .bind(state_json(c))
            .bind(c.now)
            .bind(c.session.0)
            .bind(c.rev)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if updated == 0 {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM sessions WHERE id = ?")
                        .bind(c.session.0)
                        .fetch_optional(&mut *conn)
                        .await?;
                return Err(match exists {
                    Some(_) => StoreError::Stale(vec![c.session]),
                    None => StoreError::NotFound(format!("session {}", c.session)),
                });
            }
            c.session
        }
    };
    for e in c.effects {
        match e {
            Effect::Record(r) => {
                sqlx::query("INSERT INTO answers (session_id, node, ix, value, raw, correction, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                        .bind(session.0)
                        .bind(&r.node)
                        .bind(r.ix as i64)
                        .bind(to_json(&r.value))
                        .bind(&r.raw)
                        .bind(r.correction as i64)
                        .bind(c.now)
                        .execute(&mut *conn)
                        .await?;
            }
            Effect::Unset { node, ix } => {
                sqlx::query("INSERT INTO answers (session_id, node, ix, value, raw, correction, at) VALUES (?, ?, ?, NULL, '', 1, ?)")
                        .bind(session.0)
                        .bind(node)
                        .bind(*ix as i64)
                        .bind(c.now)
                        .execute(&mut *conn)
                        .await?;
            }
            // Everything said before a restart stays as history but no
            // longer counts: the answer log of the state starts after it.
            Effect::Restarted => {
                sqlx::query("UPDATE sessions SET answers_from = (SELECT COALESCE(MAX(id), 0) + 1 FROM answers) WHERE id = ?")
                    .bind(session.0)
                    .execute(&mut *conn)
                    .await?;
            }
            Effect::Reask { node, ix } => {
                sqlx::query("INSERT INTO reasks (session_id, node, ix, at) VALUES (?, ?, ?, ?)")
                    .bind(session.0)
                    .bind(node)
                    .bind(*ix as i32)
                    .bind(c.now)
                    .execute(&mut *conn)
                    .await?;
            }
            Effect::Consent(rec) => {
                let (user, _) = meta.get(conn, session).await?;
                insert_consent(conn, session, None, user, rec, c.now).await?;
            }
            Effect::CaseReady(draft) => {
                let (user, version) = meta.get(conn, session).await?;
                let (user, version) = (user.to_string(), version.to_string());
                let id = sqlx::query(
                        "INSERT INTO cases (session_id, user_key, version, headline, summary_plain, summary_markdown, route, hub_id, tags, step, status, created_at, updated_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                    )
                    .bind(session.0)
                    .bind(&user)
                    .bind(&version)
                    .bind(&draft.headline)
                    .bind(&draft.summary_plain)
                    .bind(&draft.summary_markdown)
                    .bind(to_json(&draft.route))
                    .bind(&draft.route.primary.id)
                    .bind(to_json(&draft.tags))
                    .bind(draft.step as i64)
                    .bind(c.now)
                    .bind(c.now)
                    .execute(&mut *conn)
                    .await?
                    .last_insert_rowid();
                let case = CaseId(id);
                // The forwarding record: who receives what, on which
                // consent, written with the case itself.
                insert_consent(conn, session, Some(case), &user, &draft.consent, c.now).await?;
                for d in &c.deliveries {
                    sqlx::query(
                            "INSERT INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                        )
                        .bind(id)
                        .bind(&d.hub_id)
                        .bind(&d.transport)
                        .bind(&d.target)
                        .bind(c.now)
                        .bind(c.now)
                        .execute(&mut *conn)
                        .await?;
                }
                sqlx::query("INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (?, 'bot', 'routed', ?, ?)")
                        .bind(id)
                        .bind(to_json(&draft.route))
                        .bind(c.now)
                        .execute(&mut *conn)
                        .await?;
                if let Some(make) = c.case_timers {
                    for t in (make.0)(case, c.now) {
                        sqlx::query(INSERT_TIMER)
                            .bind(&t.kind)
                            .bind(&t.subject)
                            .bind(t.case.map(|c| c.0))
                            .bind(t.due_at)
                            .bind(t.payload.to_string())
                            .bind(c.now)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                outcome.case = Some(case);
            }
            _ => {}
        }
    }
    Ok(outcome)
}

/// The step's state snapshot (the state without its answers, which are in
/// the answer log) as JSON: as the caller serialised it, or now.
fn state_json<'a>(c: &StepCommit<'a>) -> std::borrow::Cow<'a, str> {
    match c.state_json {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(to_json(c.state)),
    }
}

/// Statement sizes for multi-row statements: a batch's rows
/// go in as few statements as possible, each padded up to the next size
/// with rows that change nothing. Every statement is a round trip to
/// sqlx's worker thread, and with both cores busy each round trip waits
/// for a core (up to a scheduler tick) while the whole batch waits on it:
/// fewer statements made a batch faster than the padding costs. The
/// sizes grow by half steps so that padding stays under a third.
const PADDED: [usize; 16] = [
    1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
];

/// The statement sizes of a batch's effect rows ([`write_effect_rows`]).
/// Its statements, one or more for each kind of row, go in one query, and
/// sqlx prepares (and caches) each different query text once: with the
/// sizes of [`PADDED`], the real consultation's benchmark made 246
/// different queries in 521 batches with cases, more than the connection's
/// statement cache holds; with these, 50.
const PADDED_EFFECTS: [usize; 3] = [8, 64, 512];

/// Splits `n` rows into statements: `(rows, padded size)`.
fn padded(n: usize) -> Vec<(usize, usize)> {
    padded_to(n, &PADDED)
}

/// Splits `n` rows into statements of the given sizes (ascending):
/// `(rows, padded size)`.
fn padded_to(mut n: usize, sizes: &[usize]) -> Vec<(usize, usize)> {
    let max = sizes[sizes.len() - 1];
    let mut out = Vec::new();
    while n > 0 {
        let rows = n.min(max);
        let size = sizes.iter().copied().find(|s| *s >= rows).unwrap_or(max);
        out.push((rows, size));
        n -= rows;
    }
    out
}

fn values_sql(head: &str, row: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (row.len() + 2));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// Creates the sessions of first steps, with one multi-row `INSERT …
/// RETURNING` per statement of [`padded`], and returns their ids in the
/// steps' order. Several new sessions in one batch are always of different
/// owners (a runner handles one input per owner at a time), so the owner
/// key tells which returned id is whose; RETURNING's order is unspecified.
///
/// A session whose step presumed something of the owner's stored sessions
/// ([`Presumption`]) is inserted only if that still holds, checked in the
/// same statement (this transaction holds the write lock, so nothing can
/// change in between). If any was refused, fails with
/// [`StoreError::NotNew`] naming their owners; the caller rolls back.
async fn create_sessions(
    conn: &mut sqlx::SqliteConnection,
    new: &[(&StepCommit<'_>, &NewSession)],
) -> Result<Vec<SessionId>> {
    let mut ids = Vec::with_capacity(new.len());
    let mut refused = Vec::new();
    let mut at = 0;
    for (n, size) in padded(new.len()) {
        // Padded like the batch's other statements; the padding rows (all
        // NULL) are filtered out before the insert. `column10` is the
        // presumption: 0 none, 1 no session at all, 2 no open session.
        let sql = values_sql(
            "INSERT OR FAIL INTO sessions (user_key, script_id, lang, version, status, current_node, state, rev, created_at, updated_at) SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, 1, v.column8, v.column9 FROM (VALUES ",
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            size,
            ") AS v WHERE v.column1 IS NOT NULL AND (v.column10 = 0 OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_key = v.column1 AND (v.column10 = 1 OR s.status IN ('new', 'active')))) RETURNING id, user_key",
        );
        let mut q = sqlx::query(&sql);
        let part = &new[at..at + n];
        for (c, s) in part {
            q = q
                .bind(s.user.to_string())
                .bind(&s.script_id)
                .bind(s.lang.code())
                .bind(&s.version)
                .bind(c.state.status.name())
                .bind(c.current_node)
                .bind(state_json(c))
                .bind(s.now)
                .bind(c.now)
                .bind(match s.presumed {
                    Presumption::Read => 0i64,
                    Presumption::NoSession => 1,
                    Presumption::NoOpenSession => 2,
                });
        }
        for _ in n..size {
            for _ in 0..9 {
                q = q.bind(None::<&str>);
            }
            q = q.bind(0i64);
        }
        let rows = q.fetch_all(&mut *conn).await?;
        let by_user: std::collections::HashMap<String, i64> = rows
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(1)?, r.try_get::<i64, _>(0)?)))
            .collect::<Result<_>>()?;
        for (_, s) in part {
            match by_user.get(&s.user.to_string()) {
                Some(id) => ids.push(SessionId(*id)),
                None if s.presumed != Presumption::Read => refused.push(s.user.clone()),
                None => {
                    return Err(StoreError::Conflict(format!(
                        "two new sessions for {} in one batch",
                        s.user
                    )))
                }
            }
        }
        at += n;
    }
    if !refused.is_empty() {
        return Err(StoreError::NotNew(refused));
    }
    Ok(ids)
}

/// An answer row as bound: session, question id, question index, value
/// (JSON; `None` when withdrawn), raw text, correction, time.
type AnswerRow<'a> = (
    SessionId,
    &'a str,
    i64,
    Option<String>,
    &'a str,
    bool,
    &'a str,
);

/// A time as the text sqlx's own encoding of `DateTime<Utc>` writes, so
/// that a time bound as text is stored exactly as one bound as a time.
fn sql_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// Writes the session rows and answers of many steps, each
/// kind of row with as few statements as [`padded`] allows: a multi-row
/// `INSERT … RETURNING` for the sessions they create, an `UPDATE … FROM
/// (VALUES …)` for the others (one for steps that keep their status, one
/// for those that change it), and a multi-row `INSERT` for the answers.
/// Returns each step's session id (the new one for a step that created its
/// session). Fails with [`StoreError::Stale`] naming the steps whose
/// session is missing or has moved on (see [`Store::commit_steps`]).
///
/// These statements, and those of [`write_effect_rows`], say `OR FAIL`.
/// With SQLite's default (`ABORT`), a statement that writes many rows
/// inside a transaction keeps a copy of every page it changes (a
/// "statement journal"), so that a failing row can undo the statement
/// alone. With 16 KiB pages that copying was 2.8 % of the real
/// consultation's CPU in the benchmark, nearly all of it on the single
/// thread that writes; with `OR FAIL` it was 0.9 % (what is left comes from
/// foreign keys, which SQLite checks the same way). Nothing is lost by it:
/// these statements run only inside a batch's transaction, and any error
/// rolls the whole transaction back.
async fn write_sessions_and_answers(
    conn: &mut sqlx::SqliteConnection,
    all: &[&StepCommit<'_>],
    times: &[String],
) -> Result<Vec<SessionId>> {
    let mut ids: Vec<SessionId> = all.iter().map(|c| c.session).collect();
    if all.is_empty() {
        return Ok(ids);
    }
    let created: Vec<(usize, (&StepCommit<'_>, &NewSession))> = all
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.new_session.map(|n| (i, (*c, n))))
        .collect();
    let new: Vec<(&StepCommit<'_>, &NewSession)> = created.iter().map(|(_, p)| *p).collect();
    for ((i, _), id) in created.iter().zip(create_sessions(conn, &new).await?) {
        ids[*i] = id;
    }
    let steps: Vec<(&StepCommit<'_>, &str)> = all
        .iter()
        .zip(times)
        .filter(|(c, _)| c.new_session.is_none())
        .map(|(c, t)| (*c, t.as_str()))
        .collect();
    // A status named in SET rewrites its index entry even when the value
    // is the same, which cost about a fifth of the statement's work; so the
    // steps whose status is unchanged (nearly all) leave it out.
    let (same, changed): (Vec<_>, Vec<_>) = steps
        .iter()
        .partition(|(c, _)| c.prev_status == Some(c.state.status));
    let mut missed = false;
    for (group, set_status) in [(&same, false), (&changed, true)] {
        let mut at = 0;
        for (n, size) in padded(group.len()) {
            // No RETURNING: SQLite would gather the returned ids in a
            // temporary table, a tenth of the batch's work. The count of
            // changed rows is enough to know that every step landed.
            let sql = values_sql(
                if set_status {
                    "UPDATE OR FAIL sessions SET status = v.column3, current_node = v.column4, state = v.column5, updated_at = v.column6, rev = sessions.rev + 1 FROM (VALUES "
                } else {
                    "UPDATE OR FAIL sessions SET current_node = v.column4, state = v.column5, updated_at = v.column6, rev = sessions.rev + 1 FROM (VALUES "
                },
                "(?, ?, ?, ?, ?, ?)",
                size,
                ") AS v WHERE sessions.id = v.column1 AND sessions.rev = v.column2",
            );
            let mut q = sqlx::query(&sql);
            for (c, time) in &group[at..at + n] {
                q = q
                    .bind(c.session.0)
                    .bind(c.rev)
                    .bind(c.state.status.name())
                    .bind(c.current_node)
                    .bind(state_json(c))
                    .bind(*time);
            }
            // Padding: session 0 does not exist (ids start at 1).
            for _ in n..size {
                q = q.bind(0i64).bind(0i64).bind("").bind("").bind("").bind("");
            }
            missed |= q.execute(&mut *conn).await?.rows_affected() != n as u64;
            at += n;
        }
    }
    if missed {
        // Some steps were computed from a revision that is no longer the
        // stored one, or their session is gone. Name them (the caller rolls
        // the transaction back), so the batch can be committed again
        // without them. This transaction holds the write lock, so what is
        // stored now is this batch's updates over what it found: a step
        // landed iff its session is now at `rev + 1`. A session that
        // another writer moved on by exactly one step also reads `rev + 1`
        // and is not named; the batch then fails again and the committer
        // commits its steps one by one, where each gets an exact answer.
        let stored: std::collections::HashMap<i64, i64> = {
            let sql = values_sql(
                "SELECT id, rev FROM sessions WHERE id IN (",
                "?",
                steps.len(),
                ")",
            );
            let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
            for (c, _) in &steps {
                q = q.bind(c.session.0);
            }
            q.fetch_all(&mut *conn).await?.into_iter().collect()
        };
        let stale = steps
            .iter()
            .filter(|(c, _)| stored.get(&c.session.0) != Some(&(c.rev + 1)))
            .map(|(c, _)| c.session)
            .collect();
        return Err(StoreError::Stale(stale));
    }
    let ids_ref = &ids;
    // The answers, in step and effect order (their ids keep that order).
    let rows: Vec<AnswerRow<'_>> = all
        .iter()
        .zip(times)
        .enumerate()
        .flat_map(|(i, (c, time))| {
            let session = ids_ref[i];
            let time = time.as_str();
            c.effects.iter().filter_map(move |e| match e {
                Effect::Record(r) => Some((
                    session,
                    r.node.as_str(),
                    r.ix as i64,
                    Some(to_json(&r.value)),
                    r.raw.as_str(),
                    r.correction,
                    time,
                )),
                Effect::Unset { node, ix } => {
                    Some((session, node.as_str(), *ix as i64, None, "", true, time))
                }
                _ => None,
            })
        })
        .collect();
    let mut at = 0;
    for (n, size) in padded(rows.len()) {
        // Padding rows (session 0) are filtered out before the insert.
        let sql = values_sql(
            "INSERT OR FAIL INTO answers (session_id, node, ix, value, raw, correction, at) SELECT * FROM (VALUES ",
            "(?, ?, ?, ?, ?, ?, ?)",
            size,
            ") WHERE column1 > 0",
        );
        let mut q = sqlx::query(&sql);
        for (session, node, ix, value, raw, correction, now) in &rows[at..at + n] {
            q = q
                .bind(session.0)
                .bind(*node)
                .bind(*ix)
                .bind(value.as_deref())
                .bind(*raw)
                .bind(*correction as i64)
                .bind(*now);
        }
        for _ in n..size {
            q = q
                .bind(0i64)
                .bind("")
                .bind(0i64)
                .bind(None::<&str>)
                .bind("")
                .bind(0i64)
                .bind("");
        }
        let inserted = q.execute(&mut *conn).await?.rows_affected();
        if inserted != n as u64 {
            return Err(StoreError::Conflict(format!(
                "{inserted} answers stored of {n}"
            )));
        }
        at += n;
    }
    Ok(ids)
}

/// The statements of [`write_effect_rows`], one per kind of row: the
/// head, one row of `VALUES` and the tail of each, in the order they run:
/// restarts, re-asks, cases, consents, deliveries, audit entries, reminder
/// timers. Padding rows (see [`PADDED_EFFECTS`]) name session or case 0,
/// which does not exist (ids start at 1), or a timer of no kind, and are
/// left out by each statement's `WHERE`. A case's id is given (see
/// [`write_effect_rows`]); the owner and script version of a case or
/// consent are read from the session row by the statement itself.
///
/// Restarts: everything said before a restart stays as history but no
/// longer counts, so the session's answer log starts at the first answer
/// recorded after it (its `k`-th last one in the batch), or past every
/// answer when none was. (A LIMIT may not name the outer row, hence the
/// count; restarts are rare and a session has a few dozen answers.)
///
/// A timer already stored under the same kind and subject is kept, as
/// `schedule_timer` keeps it, so the timers' count is not checked.
///
/// Why each says `OR FAIL`: see [`write_sessions_and_answers`].
const RESTARTS_SQL: (&str, &str, &str) = (
    "UPDATE OR FAIL sessions SET answers_from = CASE WHEN v.column2 > 0 \
       THEN (SELECT a.id FROM answers a WHERE a.session_id = sessions.id \
             AND (SELECT COUNT(*) FROM answers b WHERE b.session_id = sessions.id AND b.id >= a.id) = v.column2) \
       ELSE (SELECT COALESCE(MAX(id), 0) + 1 FROM answers) END \
     FROM (VALUES ",
    "(?, ?)",
    ") AS v WHERE sessions.id = v.column1",
);
const REASKS_SQL: (&str, &str, &str) = (
    "INSERT OR FAIL INTO reasks (session_id, node, ix, at) SELECT * FROM (VALUES ",
    "(?, ?, ?, ?)",
    ") WHERE column1 > 0",
);
const CASES_SQL: (&str, &str, &str) = (
    "INSERT OR FAIL INTO cases (id, session_id, user_key, version, headline, summary_plain, summary_markdown, route, hub_id, tags, step, status, created_at, updated_at) \
     SELECT v.column1, v.column2, (SELECT user_key FROM sessions WHERE id = v.column2), (SELECT version FROM sessions WHERE id = v.column2), \
            v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, 'open', v.column10, v.column10 \
     FROM (VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ") AS v WHERE v.column1 > 0",
);
const CONSENTS_SQL: (&str, &str, &str) = (
    "INSERT OR FAIL INTO consents (session_id, case_id, user_key, granted, recipients, items, wording, at) \
     SELECT v.column1, v.column2, (SELECT user_key FROM sessions WHERE id = v.column1), v.column3, v.column4, v.column5, v.column6, v.column7 \
     FROM (VALUES ",
    "(?, ?, ?, ?, ?, ?, ?)",
    ") AS v WHERE v.column1 > 0",
);
const DELIVERIES_SQL: (&str, &str, &str) = (
    "INSERT OR FAIL INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at) \
     SELECT v.column1, v.column2, v.column3, v.column4, 'pending', v.column5, v.column5 FROM (VALUES ",
    "(?, ?, ?, ?, ?)",
    ") AS v WHERE v.column1 > 0",
);
const AUDITS_SQL: (&str, &str, &str) = (
    "INSERT OR FAIL INTO audit_log (case_id, actor, action, detail, at) \
     SELECT v.column1, 'bot', 'routed', v.column2, v.column3 FROM (VALUES ",
    "(?, ?, ?)",
    ") AS v WHERE v.column1 > 0",
);
const TIMERS_SQL: (&str, &str, &str) = (
    "INSERT OR FAIL INTO timers (kind, subject, case_id, due_at, payload, status, created_at) \
     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, 'pending', v.column6 FROM (VALUES ",
    "(?, ?, ?, ?, ?, ?)",
    ") AS v WHERE v.column1 <> '' ON CONFLICT (kind, subject) DO NOTHING",
);

/// Writes the rows of a batch's effects other than answers (see
/// [`super::plan`]) after its session rows and answers, in one query of
/// several statements: multi-row statements (see [`PADDED_EFFECTS`]) for
/// each kind of row the batch has, from [`RESTARTS_SQL`] to [`TIMERS_SQL`].
/// `ids` are the steps' sessions. Returns each step's case.
///
/// Every statement was a round trip of its own before, and in the real
/// consultation (a case every thirty turns or so, each with its consent,
/// deliveries, audit entry and reminder timers) those round trips took
/// a fifth of a batch's time while every owner of the batch waited.
///
/// The rows are bound as parameters of `VALUES` lists. They went in as
/// one JSON array per kind before, but SQLite parses a row's JSON again
/// for every column taken from it, and a case's row holds its two
/// summaries and its route (about 4 KB). In the real consultation's
/// benchmark this query took 64 µs of the writer's time per case that
/// way and 36 µs as parameters, and cases come in bursts (up to a hundred
/// in one batch).
///
/// The cases' ids are chosen here, not by SQLite: the next ids after the
/// table's `AUTOINCREMENT` counter, read in this transaction, which holds
/// the write lock, so nothing else can take them meanwhile. The consents,
/// deliveries, audit entries and timers (whose subjects name the case) can
/// then be written in the same query as the cases. Should an id be taken
/// after all, the insert fails, nothing of the batch is committed, and the
/// committer commits its steps one by one.
async fn write_effect_rows(
    conn: &mut sqlx::SqliteConnection,
    all: &[&StepCommit<'_>],
    ids: &[SessionId],
    times: &[String],
) -> Result<Vec<Option<CaseId>>> {
    let rows =
        super::plan::EffectRows::gather(all.iter().map(|c| (c.effects, c.deliveries.as_slice())));
    let mut cases = vec![None; all.len()];
    if rows.restarts.is_empty()
        && rows.reasks.is_empty()
        && rows.cases.is_empty()
        && rows.consents.is_empty()
    {
        return Ok(cases);
    }
    let case_ids: Vec<i64> = if rows.cases.is_empty() {
        Vec::new()
    } else {
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'cases'), 0)",
        )
        .fetch_one(&mut *conn)
        .await?;
        (1..=rows.cases.len() as i64).map(|k| last + k).collect()
    };
    for ((i, _), id) in rows.cases.iter().zip(&case_ids) {
        cases[*i] = Some(CaseId(*id));
    }
    let restarts: Vec<(i64, i64)> = rows.restarts.iter().map(|(i, k)| (ids[*i].0, *k)).collect();
    let reasks: Vec<(i64, &str, i64, &str)> = rows
        .reasks
        .iter()
        .map(|(i, node, ix)| (ids[*i].0, *node, *ix, times[*i].as_str()))
        .collect();
    // (id, session, headline, plain, markdown, route, hub, tags, step, time)
    type CaseRow<'r> = (
        i64,
        i64,
        &'r str,
        &'r str,
        &'r str,
        String,
        &'r str,
        String,
        i64,
        &'r str,
    );
    let case_rows: Vec<CaseRow<'_>> = rows
        .cases
        .iter()
        .zip(&case_ids)
        .map(|((i, d), id)| {
            (
                *id,
                ids[*i].0,
                d.headline.as_str(),
                d.summary_plain.as_str(),
                d.summary_markdown.as_str(),
                to_json(&d.route),
                d.route.primary.id.as_str(),
                to_json(&d.tags),
                d.step as i64,
                times[*i].as_str(),
            )
        })
        .collect();
    let consents: Vec<(i64, Option<i64>, i64, String, String, &str, &str)> = rows
        .consents
        .iter()
        .map(|(i, case, c)| {
            (
                ids[*i].0,
                case.map(|k| case_ids[k]),
                c.granted as i64,
                to_json(&c.hubs),
                to_json(&c.items),
                c.wording.as_str(),
                times[*i].as_str(),
            )
        })
        .collect();
    let deliveries: Vec<(i64, &str, &str, &str, &str)> = rows
        .deliveries
        .iter()
        .map(|(k, d)| {
            (
                case_ids[*k],
                d.hub_id.as_str(),
                d.transport.as_str(),
                d.target.as_str(),
                times[rows.cases[*k].0].as_str(),
            )
        })
        .collect();
    // The new cases' reminder timers (see `StepCommit::case_timers`).
    let timers: Vec<(String, String, Option<i64>, String, String, &str)> = rows
        .cases
        .iter()
        .zip(&case_ids)
        .filter_map(|((i, _), id)| Some((*i, all[*i].case_timers?, *id)))
        .flat_map(|(i, make, id)| {
            (make.0)(CaseId(id), all[i].now).into_iter().map(move |t| {
                (
                    t.kind,
                    t.subject,
                    t.case.map(|c| c.0),
                    sql_time(t.due_at),
                    t.payload.to_string(),
                    times[i].as_str(),
                )
            })
        })
        .collect();

    // The statements, in the order their parameters are bound below: for
    // each kind with rows, its statements of `PADDED_EFFECTS` sizes. Each is
    // checked against the rows it was given, except the timers', which
    // keep a timer already stored (as `Store::schedule_timer` does).
    let kinds: [(&str, (&str, &str, &str), usize, bool); 7] = [
        ("restarts", RESTARTS_SQL, restarts.len(), true),
        ("re-asks", REASKS_SQL, reasks.len(), true),
        ("cases", CASES_SQL, case_rows.len(), true),
        ("consents", CONSENTS_SQL, consents.len(), true),
        ("deliveries", DELIVERIES_SQL, deliveries.len(), true),
        // The audit entry of each case, with the route as its detail.
        ("audit entries", AUDITS_SQL, case_rows.len(), true),
        ("timers", TIMERS_SQL, timers.len(), false),
    ];
    let mut sql = String::new();
    let mut expected: Vec<(&str, usize, bool)> = Vec::new();
    for (what, (head, row, tail), n, checked) in kinds {
        for (rows, size) in padded_to(n, &PADDED_EFFECTS) {
            sql.push_str(&values_sql(head, row, size, tail));
            sql.push_str(";\n");
            expected.push((what, rows, checked));
        }
    }
    let mut q = sqlx::query(&sql);
    q = bind_padded(q, &restarts, |q, r| match r {
        Some((s, k)) => q.bind(*s).bind(*k),
        None => q.bind(0i64).bind(0i64),
    });
    q = bind_padded(q, &reasks, |q, r| match r {
        Some((s, node, ix, at)) => q.bind(*s).bind(*node).bind(*ix).bind(*at),
        None => q.bind(0i64).bind("").bind(0i64).bind(""),
    });
    q = bind_padded(q, &case_rows, |q, r| match r {
        Some((id, s, headline, plain, markdown, route, hub, tags, step, at)) => q
            .bind(*id)
            .bind(*s)
            .bind(*headline)
            .bind(*plain)
            .bind(*markdown)
            .bind(route.as_str())
            .bind(*hub)
            .bind(tags.as_str())
            .bind(*step)
            .bind(*at),
        None => q
            .bind(0i64)
            .bind(0i64)
            .bind("")
            .bind("")
            .bind("")
            .bind("")
            .bind("")
            .bind("")
            .bind(0i64)
            .bind(""),
    });
    q = bind_padded(q, &consents, |q, r| match r {
        Some((s, case, granted, hubs, items, wording, at)) => q
            .bind(*s)
            .bind(*case)
            .bind(*granted)
            .bind(hubs.as_str())
            .bind(items.as_str())
            .bind(*wording)
            .bind(*at),
        None => q
            .bind(0i64)
            .bind(None::<i64>)
            .bind(0i64)
            .bind("")
            .bind("")
            .bind("")
            .bind(""),
    });
    q = bind_padded(q, &deliveries, |q, r| match r {
        Some((case, hub, transport, target, at)) => q
            .bind(*case)
            .bind(*hub)
            .bind(*transport)
            .bind(*target)
            .bind(*at),
        None => q.bind(0i64).bind("").bind("").bind("").bind(""),
    });
    q = bind_padded(q, &case_rows, |q, r| match r {
        Some((id, _, _, _, _, route, _, _, _, at)) => q.bind(*id).bind(route.as_str()).bind(*at),
        None => q.bind(0i64).bind("").bind(""),
    });
    q = bind_padded(q, &timers, |q, r| match r {
        Some((kind, subject, case, due, payload, at)) => q
            .bind(kind.as_str())
            .bind(subject.as_str())
            .bind(*case)
            .bind(due.as_str())
            .bind(payload.as_str())
            .bind(*at),
        None => q
            .bind("")
            .bind("")
            .bind(None::<i64>)
            .bind("")
            .bind("")
            .bind(""),
    });
    // Several statements in one query is what sqlx's SQLite driver does
    // (its arguments are bound statement by statement, in order), but sqlx
    // deprecates it because its other drivers cannot. sqlx is pinned at 0.8
    // (see the README); were it dropped, this would become one query per
    // statement again, as before.
    #[allow(deprecated)]
    let results: Vec<u64> = {
        use futures::TryStreamExt;
        q.fetch_many(&mut *conn)
            .try_filter_map(|r| async move { Ok(r.left().map(|done| done.rows_affected())) })
            .try_collect()
            .await?
    };
    if results.len() != expected.len() {
        return Err(StoreError::Conflict(format!(
            "{} of {} statements for a batch's effect rows ran",
            results.len(),
            expected.len()
        )));
    }
    for ((what, n, checked), written) in expected.iter().zip(&results) {
        if *checked && *written != *n as u64 {
            return Err(StoreError::Conflict(format!(
                "{written} {what} stored of {n}"
            )));
        }
    }
    Ok(cases)
}

/// Binds `rows` to the statements that [`PADDED_EFFECTS`] makes of them,
/// in order: each statement's rows, then its padding rows (`bind` given
/// `None`). The statements' text is made from the same sizes in
/// [`write_effect_rows`].
fn bind_padded<'q, T>(
    mut q: SqliteQuery<'q>,
    rows: &'q [T],
    bind: impl Fn(SqliteQuery<'q>, Option<&'q T>) -> SqliteQuery<'q>,
) -> SqliteQuery<'q> {
    let mut at = 0;
    for (n, size) in padded_to(rows.len(), &PADDED_EFFECTS) {
        for r in &rows[at..at + n] {
            q = bind(q, Some(r));
        }
        for _ in n..size {
            q = bind(q, None);
        }
        at += n;
    }
    q
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// One timer, kept as it is when one of its kind and subject is stored
/// (as [`Store::schedule_timer`] does).
const INSERT_TIMER: &str =
    "INSERT INTO timers (kind, subject, case_id, due_at, payload, status, created_at)
     VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (kind, subject) DO NOTHING";

#[async_trait]
impl Store for SqliteStore {
    fn shared(&self) -> Arc<dyn Store> {
        Arc::new(self.clone())
    }

    async fn save_version(&self, v: &VersionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO script_versions (version, script_id, lang, script_name, script_text, routing_name, routing_text, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO NOTHING",
        )
        .bind(&v.version)
        .bind(&v.script_id)
        .bind(v.lang.code())
        .bind(&v.script_name)
        .bind(&v.script_text)
        .bind(&v.routing_name)
        .bind(&v.routing_text)
        .bind(v.created_at)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    async fn load_version(&self, version: &str) -> Result<Option<VersionRecord>> {
        let row = sqlx::query("SELECT * FROM script_versions WHERE version = ?")
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let lang: String = r.try_get("lang")?;
            Ok(VersionRecord {
                version: r.try_get("version")?,
                script_id: r.try_get("script_id")?,
                lang: Lang::parse(&lang).ok_or_else(|| corrupt("version lang", &lang))?,
                script_name: r.try_get("script_name")?,
                script_text: r.try_get("script_text")?,
                routing_name: r.try_get("routing_name")?,
                routing_text: r.try_get("routing_text")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn versions_in_use(&self) -> Result<Vec<VersionUse>> {
        let rows = sqlx::query(
            "SELECT v.version, v.script_id, v.lang, v.created_at,
                    (SELECT COUNT(*) FROM sessions s WHERE s.version = v.version AND s.status IN ('new', 'active')) AS open
             FROM script_versions v ORDER BY v.created_at DESC, v.version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let lang: String = r.try_get("lang")?;
                Ok(VersionUse {
                    version: r.try_get("version")?,
                    script_id: r.try_get("script_id")?,
                    lang: Lang::parse(&lang).ok_or_else(|| corrupt("version lang", &lang))?,
                    created_at: r.try_get("created_at")?,
                    open_sessions: r.try_get("open")?,
                })
            })
            .collect()
    }

    async fn create_session(&self, s: &NewSession) -> Result<SessionRecord> {
        let state = crate::engine::SessionState::default();
        let id = sqlx::query(
            "INSERT INTO sessions (user_key, script_id, lang, version, status, current_node, state, created_at, updated_at)
             VALUES (?, ?, ?, ?, 'new', '', ?, ?, ?)",
        )
        .bind(s.user.to_string())
        .bind(&s.script_id)
        .bind(s.lang.code())
        .bind(&s.version)
        .bind(to_json(&state))
        .bind(s.now)
        .bind(s.now)
        .execute(self.writer()?)
        .await?
        .last_insert_rowid();
        Ok(SessionRecord {
            id: SessionId(id),
            user: s.user.clone(),
            script_id: s.script_id.clone(),
            lang: s.lang,
            version: s.version.clone(),
            status: Status::New,
            current_node: String::new(),
            state,
            rev: 0,
            created_at: s.now,
            updated_at: s.now,
        })
    }

    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(session_select!("WHERE s.id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn open_session(&self, user: &UserKey) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(session_select!(
            "WHERE s.user_key = ? AND s.status IN ('new', 'active') ORDER BY s.id DESC LIMIT 1"
        ))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn has_open_session(&self, user: &UserKey) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_key = ? AND status IN ('new', 'active'))",
        )
        .bind(user.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn latest_session(&self, user: &UserKey) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(session_select!(
            "WHERE s.user_key = ? ORDER BY s.id DESC LIMIT 1"
        ))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn sessions_to_resume(&self, users: &[UserKey]) -> Result<Vec<Option<SessionRecord>>> {
        let mut out: Vec<Option<SessionRecord>> = vec![None; users.len()];
        let mut at = 0;
        for (n, size) in padded(users.len()) {
            // Ranks each owner's sessions (open ones first, then newest) on
            // the index alone, and rebuilds the answers of the chosen
            // session only.
            let sql = values_sql(
                concat!(
                    session_select!(""),
                    "WHERE s.id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY status IN ('new', 'active') DESC, id DESC) AS rank FROM sessions WHERE user_key IN ("
                ),
                "?",
                size,
                ")) WHERE rank = 1)",
            );
            let mut q = sqlx::query(&sql);
            let keys: Vec<String> = users[at..at + n].iter().map(|u| u.to_string()).collect();
            for k in &keys {
                q = q.bind(k);
            }
            // Padding: NULL matches no owner.
            for _ in n..size {
                q = q.bind(None::<&str>);
            }
            let mut found = std::collections::HashMap::new();
            for r in q.fetch_all(&self.pool).await? {
                let s = session_row(&r)?;
                found.insert(s.user.clone(), s);
            }
            // The same owner may be asked for twice in one batch.
            for (slot, u) in out[at..at + n].iter_mut().zip(&users[at..at + n]) {
                *slot = found.get(u).cloned();
            }
            at += n;
        }
        Ok(out)
    }

    async fn open_sessions(&self) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(session_select!(
            "WHERE s.status IN ('new', 'active') ORDER BY s.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_row).collect()
    }

    async fn sessions_of_user(&self, user: &UserKey) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(session_select!("WHERE s.user_key = ? ORDER BY s.id"))
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_row).collect()
    }

    /// Finishes the background checkpoint when the WAL has grown long (see
    /// `checkpoint_loop`): the committer calls this between batches, when
    /// it writes nothing itself, so the copy reaches the WAL's end and its
    /// next batch writes the WAL from its beginning again (unless another
    /// writer, such as the delivery worker, got in between; the restart
    /// then waits for the next time). The
    /// background pass has copied most of it already; what is left is the
    /// batches committed since, and one fsync of the database file.
    async fn between_batches(&self) -> Result<()> {
        if self.wal.take() {
            let (busy, log, copied) =
                sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_one(&self.pool)
                    .await?;
            // Only one checkpoint runs at a time: one that met the
            // background checkpointer's pass, or a reader's snapshot, copied
            // less than the whole WAL, so the next writer cannot start it
            // over. The request then stays for the next pause between
            // batches.
            self.wal.after_copy(busy != 0, log, copied);
        }
        Ok(())
    }

    /// Copies the whole WAL into the database and truncates it to nothing,
    /// so a session that ends leaves no large WAL behind (10,000 idle
    /// "ヘルプ" lines left 25 MB: the background checkpointer copies the WAL
    /// but, with commits arriving all the time, the WAL never restarts from
    /// its beginning, and a process that exits does not close its
    /// connections, which is when SQLite would otherwise clean up). If
    /// another connection still reads an old snapshot, the checkpoint
    /// copies what it can and the WAL stays; that is not an error. Only one
    /// checkpoint runs at a time, so one that meets the background
    /// checkpointer's pass is tried again a little later (at most about two
    /// seconds in all).
    async fn close(&self) -> Result<()> {
        const TRIES: u32 = 100;
        for attempt in 1..=TRIES {
            let r = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await;
            match r {
                Ok((0, _, _)) => return Ok(()),
                Ok(_) | Err(_) if attempt < TRIES => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Ok(_) => {
                    tracing::debug!(
                        "the WAL is still in use by another connection; it was not truncated"
                    );
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn atomic_batches(&self) -> bool {
        // `commit_steps` is one transaction.
        true
    }

    fn batches_in_flight(&self) -> usize {
        // One batch is written while the one before waits for its fsync,
        // which is outside the write lock (see `walsync`). Without that
        // fsync there is nothing to overlap: a second batch would only
        // wait for the first's lock.
        if self.wal_sync.is_some() {
            2
        } else {
            1
        }
    }

    fn deferred_flush(&self) -> bool {
        self.wal_sync.is_some()
    }

    async fn flush_steps(&self) -> Result<()> {
        match &self.wal_sync {
            Some(s) => s
                .after_commit()
                .await
                .map_err(|e| StoreError::WriteFailed(e.to_string())),
            None => Ok(()),
        }
    }

    fn write_failure(&self) -> Option<String> {
        self.wal_sync.as_ref().and_then(|s| s.failure())
    }

    async fn commit_step(&self, c: &StepCommit<'_>) -> Result<StepOutcome> {
        self.refuse_after_failure()?;
        let mut tx = self.steps.begin_with("BEGIN IMMEDIATE").await?;
        let outcome = write_step(&mut tx, c).await?;
        tx.commit().await?;
        self.flush_steps().await?;
        Ok(outcome)
    }

    async fn commit_steps(&self, cs: &[StepCommit<'_>]) -> Result<Vec<StepOutcome>> {
        let out = self.commit_steps_unflushed(cs).await?;
        self.flush_steps().await?;
        Ok(out)
    }

    /// Group commit: every step in one transaction, so one WAL fsync makes
    /// the lot durable. Whatever their effects, the batch's steps are
    /// written together, each kind of row with one or a few statements for
    /// the whole batch: the session rows and answers by
    /// `write_sessions_and_answers`, re-asks, restarts, cases, consents, deliveries
    /// and audit entries by `write_effect_rows`. A batch of one step is
    /// written by `write_step`, which tells a stale step from one whose
    /// session is gone.
    async fn commit_steps_unflushed(&self, cs: &[StepCommit<'_>]) -> Result<Vec<StepOutcome>> {
        // Every step is checked before anything is written, so an unfit
        // step refuses the batch (the committer then commits the others).
        for c in cs {
            super::check_step(c.effects)?;
        }
        self.refuse_after_failure()?;
        let mut tx = self.steps.begin_with("BEGIN IMMEDIATE").await?;
        if let [c] = cs {
            let outcome = write_step(&mut tx, c).await?;
            tx.commit().await?;
            return Ok(vec![outcome]);
        }
        let all: Vec<&StepCommit<'_>> = cs.iter().collect();
        // Each step's time as text once, for its session row, its answers
        // and its other rows (sqlx would format it again for every value
        // bound).
        let times: Vec<String> = all.iter().map(|c| sql_time(c.now)).collect();
        let ids = write_sessions_and_answers(&mut tx, &all, &times).await?;
        let cases = write_effect_rows(&mut tx, &all, &ids, &times).await?;
        let out = all
            .iter()
            .zip(ids)
            .zip(cases)
            .map(|((c, id), case)| StepOutcome {
                case,
                created: c.new_session.is_some().then_some(id),
            })
            .collect();
        tx.commit().await?;
        Ok(out)
    }

    async fn answers(&self, session: SessionId) -> Result<Vec<AnswerRecord>> {
        // Carried rows repeat answers already in the history (see
        // migration 0003) and are not shown again.
        let rows =
            sqlx::query("SELECT * FROM answers WHERE session_id = ? AND carried = 0 ORDER BY id")
                .bind(session.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let value: Option<String> = r.try_get("value")?;
                let correction: i64 = r.try_get("correction")?;
                Ok(AnswerRecord {
                    session,
                    node: r.try_get("node")?,
                    value: value.map(|v| json("answer value", &v)).transpose()?,
                    raw: r.try_get("raw")?,
                    correction: correction != 0,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>> {
        let row = sqlx::query(&format!("SELECT {CASE_COLS} FROM cases WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_row).transpose()
    }

    async fn cases(&self, f: &CaseFilter) -> Result<Vec<CaseRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLS} FROM cases WHERE (? IS NULL OR hub_id = ?) AND (? IS NULL OR status = ?) ORDER BY id DESC LIMIT ?"
        ))
        .bind(&f.hub_id)
        .bind(&f.hub_id)
        .bind(f.status.map(|s| s.name()))
        .bind(f.status.map(|s| s.name()))
        .bind(f.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(case_row).collect()
    }

    async fn cases_of_user(&self, user: &UserKey) -> Result<Vec<CaseRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLS} FROM cases WHERE user_key = ? AND forgotten = 0 ORDER BY id"
        ))
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(case_row).collect()
    }

    async fn update_case(
        &self,
        id: CaseId,
        change: &CaseChange,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord> {
        // Reads, then writes: take the write lock first, or a concurrent
        // writer makes SQLite fail the upgrade (SQLITE_BUSY_SNAPSHOT)
        // instead of waiting.
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let case = apply_change(&mut tx, id, change, actor, now).await?;
        tx.commit().await?;
        Ok(case)
    }

    async fn audit(&self, case: Option<CaseId>) -> Result<Vec<AuditEntry>> {
        let rows =
            sqlx::query("SELECT * FROM audit_log WHERE (? IS NULL OR case_id = ?) ORDER BY id")
                .bind(case.map(|c| c.0))
                .bind(case.map(|c| c.0))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                let case: Option<i64> = r.try_get("case_id")?;
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    case: case.map(CaseId),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    detail: json("audit detail", &detail)?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    async fn append_audit(
        &self,
        case: Option<CaseId>,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(case.map(|c| c.0))
        .bind(actor)
        .bind(action)
        .bind(detail.to_string())
        .bind(now)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    async fn last_audit(&self, action: &str) -> Result<Option<AuditEntry>> {
        // Through the (case_id, id) index: only the entries without a case,
        // newest first.
        let row = sqlx::query(
            "SELECT * FROM audit_log WHERE case_id IS NULL AND action = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(action)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(AuditEntry {
                id: r.try_get("id")?,
                case: None,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                detail: json("audit detail", &detail)?,
                at: r.try_get("at")?,
            })
        })
        .transpose()
    }

    async fn add_delivery(&self, case: CaseId, d: &NewDelivery, now: DateTime<Utc>) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)
             ON CONFLICT (case_id, hub_id, transport) DO UPDATE SET status = 'pending', next_attempt_at = excluded.next_attempt_at
             WHERE deliveries.status = 'failed'",
        )
        .bind(case.0)
        .bind(&d.hub_id)
        .bind(&d.transport)
        .bind(&d.target)
        .bind(now)
        .bind(now)
        .execute(self.writer()?)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    async fn due_deliveries(
        &self,
        transport: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE transport = ? AND status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
        ))
        .bind(transport)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    async fn deliveries(&self, case: CaseId) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE case_id = ? ORDER BY id"
        ))
        .bind(case.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    async fn set_delivery_external_id(&self, id: i64, external_id: &str) -> Result<()> {
        sqlx::query("UPDATE deliveries SET external_id = ? WHERE id = ?")
            .bind(external_id)
            .bind(id)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn record_attempt(
        &self,
        id: i64,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.record(id, None, outcome, now).await.map(|_| ())
    }

    async fn lease_deliveries(
        &self,
        transport: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LeasedDelivery>> {
        // Nothing is sent from pages that may not be on disk.
        self.refuse_after_failure()?;
        // SQLite has one writer at a time: reading the due rows and writing
        // the lease in one IMMEDIATE transaction is what SKIP LOCKED gives
        // on PostgreSQL (another worker's transaction waits and then finds
        // these rows leased).
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS}, lease_owner FROM deliveries
             WHERE transport = ? AND status = 'pending' AND next_attempt_at <= ?
               AND (lease_until IS NULL OR lease_until <= ?)
             ORDER BY next_attempt_at, id LIMIT ?"
        ))
        .bind(transport)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let l = LeasedDelivery {
                delivery: delivery_row(r)?,
                taken_over_from: r.try_get("lease_owner")?,
            };
            sqlx::query("UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE id = ?")
                .bind(owner)
                .bind(until)
                .bind(l.delivery.id)
                .execute(&mut *tx)
                .await?;
            out.push(l);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn record_leased_attempt(
        &self,
        id: i64,
        owner: &str,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.record(id, Some(owner), outcome, now).await
    }

    async fn release_lease(&self, id: i64, owner: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?
             WHERE id = ? AND lease_owner = ?",
        )
        .bind(at)
        .bind(id)
        .bind(owner)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn record_consent(
        &self,
        session: SessionId,
        case: Option<CaseId>,
        user: &UserKey,
        c: &ConsentRecord,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        insert_consent(&mut conn, session, case, &user.to_string(), c, now).await
    }

    async fn consents(&self, user: &UserKey) -> Result<Vec<ConsentRow>> {
        let rows = sqlx::query("SELECT * FROM consents WHERE user_key = ? ORDER BY id")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(consent_row).collect()
    }

    async fn forget_user(&self, user: &UserKey, now: DateTime<Utc>) -> Result<ForgetReport> {
        let key = user.to_string();
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let answers = sqlx::query(
            "DELETE FROM answers WHERE session_id IN (SELECT id FROM sessions WHERE user_key = ?)",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let sessions = sqlx::query("DELETE FROM sessions WHERE user_key = ?")
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // No follow-up is offered to an owner who withdrew; the rows stay
        // (without answers) as the record of what was planned.
        sqlx::query(
            "UPDATE follow_ups SET status = 'cancelled', decided_at = ?, updated_at = ?
             WHERE user_key = ? AND status IN ('scheduled', 'offered', 'reminded')",
        )
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        // Undelivered copies must not go out after the owner withdrew.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = 'owner deleted their data'
             WHERE status = 'pending' AND case_id IN (SELECT id FROM cases WHERE user_key = ?)",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        let cases = sqlx::query(
            "UPDATE cases SET headline = '（削除済み / deleted）', summary_plain = '', summary_markdown = '', tags = '[]',
                outcome = CASE WHEN outcome IS NULL THEN NULL ELSE '（削除済み / deleted）' END, forgotten = 1, updated_at = ?
             WHERE user_key = ? AND forgotten = 0",
        )
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // The route and the audit trail of the owner's cases keep which
        // rule sent the case to which hubs (the consent records name the
        // same hubs), but not the reasons and outcomes, which quote or
        // paraphrase the answers.
        let routes: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, route FROM cases WHERE user_key = ?")
                .bind(&key)
                .fetch_all(&mut *tx)
                .await?;
        for (id, route) in routes {
            let mut v: serde_json::Value = json("case route", &route)?;
            scrub_derived_text(&mut v);
            sqlx::query("UPDATE cases SET route = ? WHERE id = ?")
                .bind(v.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let entries: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, detail FROM audit_log WHERE case_id IN (SELECT id FROM cases WHERE user_key = ?)",
        )
        .bind(&key)
        .fetch_all(&mut *tx)
        .await?;
        for (id, detail) in entries {
            let mut v: serde_json::Value = json("audit detail", &detail)?;
            if scrub_derived_text(&mut v) {
                sqlx::query("UPDATE audit_log SET detail = ? WHERE id = ?")
                    .bind(v.to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Chat-transport state about the owner: their current question, the
        // ids of relayed messages, and forwards waiting for their answer.
        let relayed: Vec<RelayMessage> = sqlx::query(
            "SELECT case_id, direction, channel_id, message_id, at FROM relay_messages WHERE user_key = ? ORDER BY id",
        )
        .bind(&key)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(RelayMessage {
                case: CaseId(r.try_get("case_id")?),
                user: user.clone(),
                direction: r.try_get("direction")?,
                channel_id: r.try_get("channel_id")?,
                message_id: r.try_get("message_id")?,
                at: r.try_get("at")?,
            })
        })
        .collect::<Result<_>>()?;
        for sql in [
            "DELETE FROM live_prompts WHERE user_key = ?",
            "DELETE FROM relay_messages WHERE user_key = ?",
            "DELETE FROM forward_requests WHERE user_key = ?",
            // Relay messages still waiting are not sent, and no text of
            // any is kept (sent ones hold none already). An erase job from
            // an earlier forget holds only ids and must still run.
            "UPDATE relays SET body = NULL, status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
                last_error = CASE WHEN status = 'pending' THEN 'owner deleted their data' ELSE last_error END
             WHERE user_key = ? AND kind <> 'erase'",
        ] {
            sqlx::query(sql).bind(&key).execute(&mut *tx).await?;
        }
        // Reminders about the owner's cases must not go out either.
        sqlx::query(
            "UPDATE timers SET status = 'cancelled', done_at = ?, note = 'owner deleted their data'
             WHERE status IN ('pending', 'claimed') AND case_id IN (SELECT id FROM cases WHERE user_key = ?)",
        )
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consents WHERE user_key = ?")
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (NULL, ?, 'forget', ?, ?)")
            .bind(&key)
            .bind(serde_json::json!({ "sessions": sessions, "answers": answers, "cases": cases }).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.truncate_wal().await?;
        Ok(ForgetReport {
            sessions,
            answers,
            cases,
            consent_records_kept: kept as u64,
            relayed,
        })
    }

    async fn forward_case(&self, f: &ForwardCase<'_>) -> Result<CaseRecord> {
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let row =
            sqlx::query("SELECT status, forgotten, user_key, session_id FROM cases WHERE id = ?")
                .bind(f.case.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("case {}", f.case)))?;
        let status: String = row.try_get("status")?;
        let forgotten: i64 = row.try_get("forgotten")?;
        if forgotten != 0 {
            return Err(StoreError::Conflict(format!(
                "the owner of case {} deleted their data",
                f.case
            )));
        }
        if status == CaseStatus::Closed.name() {
            return Err(StoreError::Conflict(format!("case {} is closed", f.case)));
        }
        if let Some(req) = f.request {
            let changed = sqlx::query("UPDATE forward_requests SET status = 'accepted', decided_at = ? WHERE id = ? AND status = 'pending'")
                .bind(f.now)
                .bind(req)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "forward request {req} was already answered"
                )));
            }
        }
        if let Some(c) = f.consent {
            let user: String = row.try_get("user_key")?;
            let session: i64 = row.try_get("session_id")?;
            insert_consent(&mut tx, SessionId(session), Some(f.case), &user, c, f.now).await?;
        }
        let change = CaseChange::Forward {
            to_hub: f.to_hub.to_string(),
            reason: f.reason.to_string(),
        };
        let case = apply_change(&mut tx, f.case, &change, f.actor, f.now).await?;
        if let Some(d) = &f.delivery {
            sqlx::query(
                "INSERT INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)
                 ON CONFLICT (case_id, hub_id, transport) DO UPDATE SET status = 'pending', next_attempt_at = excluded.next_attempt_at
                 WHERE deliveries.status = 'failed'",
            )
            .bind(f.case.0)
            .bind(&d.hub_id)
            .bind(&d.transport)
            .bind(&d.target)
            .bind(f.now)
            .bind(f.now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(case)
    }

    async fn save_case_post(&self, p: &CasePost) -> Result<()> {
        sqlx::query(
            "INSERT INTO case_posts (case_id, hub_id, transport, channel_id, message_id, thread_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (case_id, hub_id, transport) DO UPDATE SET channel_id = excluded.channel_id, message_id = excluded.message_id,
             thread_id = CASE WHEN excluded.message_id = case_posts.message_id
                              THEN COALESCE(excluded.thread_id, case_posts.thread_id)
                              ELSE excluded.thread_id END",
        )
        .bind(p.case.0)
        .bind(&p.hub_id)
        .bind(&p.transport)
        .bind(&p.channel_id)
        .bind(&p.message_id)
        .bind(&p.thread_id)
        .bind(p.created_at)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    async fn case_posts(&self, case: CaseId) -> Result<Vec<CasePost>> {
        let rows =
            sqlx::query("SELECT * FROM case_posts WHERE case_id = ? ORDER BY created_at, hub_id")
                .bind(case.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(case_post_row).collect()
    }

    async fn find_case_post(
        &self,
        transport: &str,
        message_or_thread: &str,
    ) -> Result<Option<CasePost>> {
        let row = sqlx::query("SELECT * FROM case_posts WHERE transport = ? AND (thread_id = ? OR message_id = ?) LIMIT 1")
            .bind(transport)
            .bind(message_or_thread)
            .bind(message_or_thread)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_post_row).transpose()
    }

    async fn set_live_prompt(&self, p: &LivePrompt) -> Result<()> {
        sqlx::query(
            "INSERT INTO live_prompts (user_key, session_id, node, channel_id, message_id, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (user_key) DO UPDATE SET session_id = excluded.session_id, node = excluded.node, channel_id = excluded.channel_id,
             message_id = excluded.message_id, data = excluded.data, updated_at = excluded.updated_at",
        )
        .bind(p.user.to_string())
        .bind(p.session.0)
        .bind(&p.node)
        .bind(&p.channel_id)
        .bind(&p.message_id)
        .bind(p.data.to_string())
        .bind(p.updated_at)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    async fn live_prompt(&self, user: &UserKey) -> Result<Option<LivePrompt>> {
        let row = sqlx::query("SELECT * FROM live_prompts WHERE user_key = ?")
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let data: String = r.try_get("data")?;
            Ok(LivePrompt {
                user: user.clone(),
                session: SessionId(r.try_get("session_id")?),
                node: r.try_get("node")?,
                channel_id: r.try_get("channel_id")?,
                message_id: r.try_get("message_id")?,
                data: json("live prompt data", &data)?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    async fn live_prompts_of_ended_sessions(&self) -> Result<Vec<(UserKey, SessionId)>> {
        let rows = sqlx::query(
            "SELECT p.user_key, p.session_id FROM live_prompts p JOIN sessions s ON s.id = p.session_id
             WHERE s.status NOT IN ('new', 'active') ORDER BY p.session_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let user: String = r.try_get("user_key")?;
                Ok((
                    UserKey::parse(&user).map_err(|e| corrupt("live prompt user", e))?,
                    SessionId(r.try_get("session_id")?),
                ))
            })
            .collect()
    }

    async fn clear_live_prompt(&self, user: &UserKey) -> Result<()> {
        sqlx::query("DELETE FROM live_prompts WHERE user_key = ?")
            .bind(user.to_string())
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn create_forward_request(
        &self,
        r: &NewForwardRequest,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO forward_requests (case_id, user_key, to_hub, reason, requested_by, status, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
        )
        .bind(r.case.0)
        .bind(r.user.to_string())
        .bind(&r.to_hub)
        .bind(&r.reason)
        .bind(&r.requested_by)
        .bind(now)
        .execute(self.writer()?)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    async fn forward_request(&self, id: i64) -> Result<Option<ForwardRequest>> {
        let row = sqlx::query("SELECT * FROM forward_requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let user: String = r.try_get("user_key")?;
            let status: String = r.try_get("status")?;
            Ok(ForwardRequest {
                id: r.try_get("id")?,
                case: CaseId(r.try_get("case_id")?),
                user: UserKey::parse(&user).map_err(|e| corrupt("forward request user", e))?,
                to_hub: r.try_get("to_hub")?,
                reason: r.try_get("reason")?,
                requested_by: r.try_get("requested_by")?,
                status: ForwardStatus::parse(&status)
                    .ok_or_else(|| corrupt("forward request status", &status))?,
                created_at: r.try_get("created_at")?,
                decided_at: r.try_get("decided_at")?,
            })
        })
        .transpose()
    }

    async fn pending_forward_requests(&self, limit: i64) -> Result<Vec<ForwardRequest>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM forward_requests WHERE status = 'pending' ORDER BY id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.forward_requests_by_id(ids).await
    }

    async fn pending_forward_requests_of_case(&self, case: CaseId) -> Result<Vec<ForwardRequest>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM forward_requests WHERE case_id = ? AND status = 'pending' ORDER BY id",
        )
        .bind(case.0)
        .fetch_all(&self.pool)
        .await?;
        self.forward_requests_by_id(ids).await
    }

    async fn decide_forward_request(
        &self,
        id: i64,
        status: ForwardStatus,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query("UPDATE forward_requests SET status = ?, decided_at = ? WHERE id = ? AND status = 'pending'")
            .bind(status.name())
            .bind(now)
            .bind(id)
            .execute(self.writer()?)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn add_relay_message(&self, m: &RelayMessage) -> Result<()> {
        sqlx::query("INSERT INTO relay_messages (case_id, user_key, direction, channel_id, message_id, at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(m.case.0)
            .bind(m.user.to_string())
            .bind(&m.direction)
            .bind(&m.channel_id)
            .bind(&m.message_id)
            .bind(m.at)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }

    async fn relay_messages_of_user(&self, user: &UserKey) -> Result<Vec<RelayMessage>> {
        let rows = sqlx::query("SELECT * FROM relay_messages WHERE user_key = ? ORDER BY id")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RelayMessage {
                    case: CaseId(r.try_get("case_id")?),
                    user: user.clone(),
                    direction: r.try_get("direction")?,
                    channel_id: r.try_get("channel_id")?,
                    message_id: r.try_get("message_id")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
    async fn queue_relays(&self, rs: &[NewRelay], now: DateTime<Utc>) -> Result<Vec<i64>> {
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let mut ids = Vec::with_capacity(rs.len());
        for r in rs {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO relays (case_id, user_key, kind, transport, target, body, status, next_attempt_at, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING id",
            )
            .bind(r.case.0)
            .bind(r.user.to_string())
            .bind(r.kind.name())
            .bind(&r.transport)
            .bind(&r.target)
            .bind(&r.body)
            .bind(now)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn lease_relays(
        &self,
        transport: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LeasedRelay>> {
        self.refuse_after_failure()?;
        // As `lease_deliveries`: one IMMEDIATE transaction reads and leases.
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(&format!(
            "SELECT {RELAY_COLS}, lease_owner FROM relays
             WHERE transport = ? AND status = 'pending' AND next_attempt_at <= ?
               AND (lease_until IS NULL OR lease_until <= ?)
             ORDER BY next_attempt_at, id LIMIT ?"
        ))
        .bind(transport)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let l = LeasedRelay {
                relay: relay_row(r)?,
                taken_over_from: r.try_get("lease_owner")?,
            };
            sqlx::query("UPDATE relays SET lease_owner = ?, lease_until = ? WHERE id = ?")
                .bind(owner)
                .bind(until)
                .bind(l.relay.id)
                .execute(&mut *tx)
                .await?;
            out.push(l);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn relay_progress(&self, id: i64, owner: &str, message_ids: &[String]) -> Result<bool> {
        let n = sqlx::query("UPDATE relays SET message_ids = ? WHERE id = ? AND lease_owner = ? AND status = 'pending'")
            .bind(serde_json::to_string(message_ids).unwrap_or_else(|_| "[]".into()))
            .bind(id)
            .bind(owner)
            .execute(self.writer()?)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn record_relay(
        &self,
        id: i64,
        owner: &str,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let q = match outcome {
            AttemptOutcome::Delivered { .. } => sqlx::query(
                "UPDATE relays SET status = 'delivered', body = NULL, attempts = attempts + 1, delivered_at = ?,
                 last_error = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = ? AND lease_owner = ?",
            )
            .bind(now),
            AttemptOutcome::Retry { at, error } => sqlx::query(
                "UPDATE relays SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
                 lease_owner = NULL, lease_until = NULL
                 WHERE id = ? AND lease_owner = ?",
            )
            .bind(*at)
            .bind(error.clone()),
            AttemptOutcome::Failed { error } => sqlx::query(
                "UPDATE relays SET status = 'failed', body = NULL, attempts = attempts + 1, last_error = ?,
                 lease_owner = NULL, lease_until = NULL
                 WHERE id = ? AND lease_owner = ?",
            )
            .bind(error.clone()),
        };
        let n = q
            .bind(id)
            .bind(owner)
            .execute(self.writer()?)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn release_relay_lease(&self, id: i64, owner: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE relays SET lease_owner = NULL, lease_until = NULL, next_attempt_at = ?
             WHERE id = ? AND lease_owner = ?",
        )
        .bind(at)
        .bind(id)
        .bind(owner)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn relays_of_case(&self, case: CaseId) -> Result<Vec<RelayRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RELAY_COLS} FROM relays WHERE case_id = ? ORDER BY id"
        ))
        .bind(case.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(relay_row).collect()
    }
    async fn schedule_timer(
        &self,
        t: &NewTimer,
        now: DateTime<Utc>,
    ) -> Result<(TimerRecord, bool)> {
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let created = sqlx::query(INSERT_TIMER)
            .bind(&t.kind)
            .bind(&t.subject)
            .bind(t.case.map(|c| c.0))
            .bind(t.due_at)
            .bind(t.payload.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        let row = sqlx::query("SELECT * FROM timers WHERE kind = ? AND subject = ?")
            .bind(&t.kind)
            .bind(&t.subject)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((timer_row(&row)?, created))
    }

    async fn claim_due_timers(
        &self,
        kinds: &[&str],
        now: DateTime<Utc>,
        holder: &str,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<TimerRecord>> {
        self.refuse_after_failure()?;
        // SQLite has one writer at a time: the update below runs alone, so
        // no two claimers can take the same row.
        let sql = format!(
            "UPDATE timers SET status = 'claimed', holder = ?, lease_until = ?, attempts = attempts + 1
             WHERE id IN (SELECT id FROM timers
                          WHERE {} AND ((status = 'pending' AND due_at <= ?) OR (status = 'claimed' AND lease_until < ?))
                          ORDER BY due_at, id LIMIT ?)
             RETURNING *",
            kinds_sql(kinds.len())
        );
        let mut q = sqlx::query(&sql).bind(holder).bind(now + lease);
        for k in kinds {
            q = q.bind(*k);
        }
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let rows = q
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = rows.iter().map(timer_row).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|t| (t.due_at, t.id));
        Ok(out)
    }

    async fn finish_timer(
        &self,
        id: i64,
        holder: &str,
        outcome: &TimerOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let q = match outcome {
            TimerOutcome::Fired { note } => sqlx::query(
                "UPDATE timers SET status = 'fired', done_at = ?, note = ?, lease_until = NULL
                 WHERE id = ? AND status = 'claimed' AND holder = ?",
            )
            .bind(now)
            .bind(note.clone()),
            TimerOutcome::Retry { at, error } => sqlx::query(
                "UPDATE timers SET status = 'pending', due_at = ?, note = ?, lease_until = NULL
                 WHERE id = ? AND status = 'claimed' AND holder = ?",
            )
            .bind(*at)
            .bind(error.clone()),
            TimerOutcome::Cancelled { reason } => sqlx::query(
                "UPDATE timers SET status = 'cancelled', done_at = ?, note = ?, lease_until = NULL
                 WHERE id = ? AND status = 'claimed' AND holder = ?",
            )
            .bind(now)
            .bind(reason.clone()),
        };
        let n = q
            .bind(id)
            .bind(holder)
            .execute(self.writer()?)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn cancel_timer(
        &self,
        kind: &str,
        subject: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE timers SET status = 'cancelled', done_at = ?, note = ?
             WHERE kind = ? AND subject = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(reason)
        .bind(kind)
        .bind(subject)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn cancel_case_timers(
        &self,
        case: CaseId,
        kinds: &[&str],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let sql = format!(
            "UPDATE timers SET status = 'cancelled', done_at = ?, note = ?
             WHERE case_id = ? AND status = 'pending' AND {}",
            kinds_sql(kinds.len())
        );
        let mut q = sqlx::query(&sql).bind(now).bind(reason).bind(case.0);
        for k in kinds {
            q = q.bind(*k);
        }
        Ok(q.execute(self.writer()?).await?.rows_affected())
    }

    async fn timers(&self, f: &TimerFilter) -> Result<Vec<TimerRecord>> {
        // Only the conditions given are in the statement: SQLite plans a
        // statement once, and with `? IS NULL OR case_id = ?` it cannot use
        // the case's index, so every look-up of one case's timers read the
        // whole table.
        let mut sql = format!("SELECT * FROM timers WHERE {}", kinds_sql(f.kinds.len()));
        for (given, cond) in [
            (f.case.is_some(), " AND case_id = ?"),
            (f.status.is_some(), " AND status = ?"),
            (f.due_by.is_some(), " AND due_at <= ?"),
        ] {
            if given {
                sql.push_str(cond);
            }
        }
        sql.push_str(" ORDER BY due_at, id LIMIT ?");
        let mut q = sqlx::query(&sql);
        for k in &f.kinds {
            q = q.bind(k);
        }
        if let Some(c) = f.case {
            q = q.bind(c.0);
        }
        if let Some(st) = f.status {
            q = q.bind(st.name());
        }
        if let Some(d) = f.due_by {
            q = q.bind(d);
        }
        let rows = q.bind(f.limit.unwrap_or(-1)).fetch_all(&self.pool).await?;
        rows.iter().map(timer_row).collect()
    }

    async fn schedule_follow_ups(
        &self,
        case: CaseId,
        user: &UserKey,
        dues: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM follow_ups WHERE case_id = ?")
            .bind(case.0)
            .fetch_one(&mut *tx)
            .await?;
        if n > 0 || dues.is_empty() {
            return Ok(false);
        }
        for (i, due) in dues.iter().enumerate() {
            // ON CONFLICT: another instance scheduled the case meanwhile
            // (possible under PostgreSQL's read committed); its rows stand.
            sqlx::query(
                "INSERT INTO follow_ups (case_id, user_key, seq, due_at, status, updated_at) VALUES (?, ?, ?, ?, 'scheduled', ?) ON CONFLICT (case_id, seq) DO NOTHING",
            )
            .bind(case.0)
            .bind(user.to_string())
            .bind(i as i64 + 1)
            .bind(*due)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let detail = serde_json::json!({ "due": dues });
        sqlx::query(
            "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (?, 'bot', 'follow_up_scheduled', ?, ?)",
        )
        .bind(case.0)
        .bind(detail.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn follow_ups_of_case(&self, case: CaseId) -> Result<Vec<FollowUp>> {
        let rows = sqlx::query("SELECT * FROM follow_ups WHERE case_id = ? ORDER BY seq")
            .bind(case.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(follow_up_row).collect()
    }

    async fn follow_ups_of_user(&self, user: &UserKey) -> Result<Vec<FollowUp>> {
        let rows = sqlx::query("SELECT * FROM follow_ups WHERE user_key = ? ORDER BY due_at, id")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(follow_up_row).collect()
    }

    async fn follow_ups_waiting(
        &self,
        status: FollowUpStatus,
        at: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FollowUp>> {
        let column = match status {
            FollowUpStatus::Offered => "offered_at",
            FollowUpStatus::Reminded => "reminded_at",
            FollowUpStatus::Scheduled => "due_at",
            _ => "decided_at",
        };
        let rows = sqlx::query(&format!(
            "SELECT * FROM follow_ups WHERE status = ? AND {column} <= ? ORDER BY {column}, id LIMIT ?"
        ))
        .bind(status.name())
        .bind(at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(follow_up_row).collect()
    }

    async fn move_follow_up(&self, m: &FollowUpMove<'_>) -> Result<bool> {
        let mut tx = self.writer()?.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("SELECT * FROM follow_ups WHERE id = ?")
            .bind(m.id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("follow-up {}", m.id)));
        };
        let f = follow_up_row(&row)?;
        if !m.from.contains(&f.status) {
            return Ok(false);
        }
        let (offered, reminded, decided) = match m.to {
            FollowUpStatus::Scheduled => (None, None, None),
            FollowUpStatus::Offered => (Some(m.now), None, None),
            FollowUpStatus::Reminded => (None, Some(m.now), None),
            _ => (None, None, Some(m.now)),
        };
        // The status in the WHERE clause makes the move a compare-and-set
        // also where the read above did not lock the row.
        let done = sqlx::query(
            "UPDATE follow_ups SET status = ?, session_id = COALESCE(?, session_id), answer_case = COALESCE(?, answer_case),
                offered_at = COALESCE(?, offered_at), reminded_at = COALESCE(?, reminded_at), decided_at = COALESCE(?, decided_at), updated_at = ?
             WHERE id = ? AND status = ?",
        )
        .bind(m.to.name())
        .bind(m.session.map(|s| s.0))
        .bind(m.answer_case.map(|c| c.0))
        .bind(offered)
        .bind(reminded)
        .bind(decided)
        .bind(m.now)
        .bind(m.id)
        .bind(f.status.name())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        let detail = serde_json::json!({
            "follow_up": m.id,
            "seq": f.seq,
            "from": f.status.name(),
            "answer_case": m.answer_case.map(|c| c.0),
        });
        sqlx::query(
            "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (?, 'bot', ?, ?, ?)",
        )
        .bind(f.case.0)
        .bind(if f.status == m.to {
            // Only the session was set: the dialog started.
            "follow_up_started".to_string()
        } else {
            format!("follow_up_{}", m.to.name())
        })
        .bind(detail.to_string())
        .bind(m.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
    async fn report_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<facts::ReportFacts> {
        use facts::*;
        let mut out = ReportFacts::default();
        let rows = sqlx::query(
            "SELECT id, user_key, script_id, status, current_node, created_at FROM sessions
             WHERE created_at >= ? AND created_at < ? ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let user: String = r.try_get("user_key")?;
            out.sessions.push(SessionFact {
                id: r.try_get("id")?,
                script_id: r.try_get("script_id")?,
                platform: platform_of(&user),
                status: r.try_get("status")?,
                current_node: r.try_get("current_node")?,
                created_at: r.try_get("created_at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT a.session_id, a.node, a.value FROM answers a JOIN sessions s ON s.id = a.session_id
             WHERE s.created_at >= ? AND s.created_at < ? AND a.carried = 0 AND a.value IS NOT NULL
             ORDER BY a.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let value: String = r.try_get("value")?;
            let v: crate::answer::AnswerValue = json("answer value", &value)?;
            out.answers.push(AnswerFact {
                session: r.try_get("session_id")?,
                node: r.try_get("node")?,
                negative: AnswerFact::is_negative(&v),
            });
        }
        let rows = sqlx::query(
            "SELECT session_id, node, at FROM reasks WHERE at >= ? AND at < ? ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.reasks.push(ReaskFact {
                session: r.try_get("session_id")?,
                node: r.try_get("node")?,
                at: r.try_get("at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT session_id, case_id, granted, at FROM consents WHERE at >= ? AND at < ? ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let granted: i64 = r.try_get("granted")?;
            out.consents.push(ConsentFact {
                session: r.try_get("session_id")?,
                case: r.try_get("case_id")?,
                granted: granted != 0,
                at: r.try_get("at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT id, session_id, user_key, route, hub_id, step, status, outcome, created_at FROM cases
             WHERE created_at >= ? AND created_at < ? ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let route: String = r.try_get("route")?;
            let route: crate::routing::RouteDecision = json("case route", &route)?;
            let step: i64 = r.try_get("step")?;
            out.cases.push(CaseFact {
                id: r.try_get("id")?,
                session: r.try_get("session_id")?,
                owner: r.try_get("user_key")?,
                rule: route.rule,
                routed_hub: route.primary.id.to_string(),
                routed_step: route.step,
                hub: r.try_get("hub_id")?,
                step: step.clamp(0, 5) as u8,
                status: r.try_get("status")?,
                outcome: r.try_get("outcome")?,
                created_at: r.try_get("created_at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT case_id, actor, action, detail, at FROM audit_log WHERE case_id IN
             (SELECT id FROM cases WHERE created_at >= ? AND created_at < ?) ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let detail: String = r.try_get("detail")?;
            out.audit.push(AuditFact {
                case: r.try_get("case_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                detail: json("audit detail", &detail)?,
                at: r.try_get("at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT case_id, hub_id, transport, status, created_at, delivered_at FROM deliveries WHERE case_id IN
             (SELECT id FROM cases WHERE created_at >= ? AND created_at < ?) ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.deliveries.push(DeliveryFact {
                case: r.try_get("case_id")?,
                hub: r.try_get("hub_id")?,
                transport: r.try_get("transport")?,
                status: r.try_get("status")?,
                created_at: r.try_get("created_at")?,
                delivered_at: r.try_get("delivered_at")?,
            });
        }
        Ok(out)
    }

    async fn retry_delivery(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL,
             lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn ops_counts(&self, now: DateTime<Utc>) -> Result<facts::OpsCounts> {
        let mut out = facts::OpsCounts::default();
        let rows = sqlx::query(
            "SELECT transport, status, COUNT(*) AS n FROM deliveries WHERE status IN ('pending', 'failed')
             GROUP BY transport, status ORDER BY transport, status",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.deliveries.push((
                r.try_get("transport")?,
                r.try_get("status")?,
                r.try_get("n")?,
            ));
        }
        let rows = sqlx::query(
            "SELECT transport, kind, status, COUNT(*) AS n FROM relays WHERE status IN ('pending', 'failed')
             GROUP BY transport, kind, status ORDER BY transport, kind, status",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.relays.push((
                r.try_get("transport")?,
                r.try_get("kind")?,
                r.try_get("status")?,
                r.try_get("n")?,
            ));
        }
        let rows = sqlx::query(
            "SELECT substr(user_key, 1, instr(user_key, ':') - 1) AS platform, COUNT(*) AS n FROM cases
             GROUP BY platform ORDER BY platform",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.cases_routed
                .push((r.try_get("platform")?, r.try_get("n")?));
        }
        // Open cases whose claim reminder for their present state (a timer
        // scheduled since the case last changed) is due: the limits are
        // the hub's, in business hours, as the timer loop keeps them.
        out.reminders_due = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT t.case_id) FROM timers t JOIN cases c ON c.id = t.case_id
             WHERE t.kind = 'claim_reminder' AND t.status <> 'cancelled' AND t.due_at <= ?
               AND c.status = 'open' AND t.created_at >= c.updated_at",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        out.reminders_sent = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'remind%' OR action LIKE 'escalat%'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(out)
    }

    async fn claim_admin_post(&self, key: &str, now: DateTime<Utc>) -> Result<bool> {
        self.refuse_after_failure()?;
        let n = sqlx::query(
            "INSERT INTO admin_posts (key, claimed_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn release_admin_post(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM admin_posts WHERE key = ?")
            .bind(key)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }
}

/// The platform part of an owner key (`discord:123` → `discord`).
fn platform_of(user: &str) -> String {
    user.split_once(':')
        .map(|(p, _)| p)
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::sql_time;
    use chrono::{DateTime, TimeZone, Utc};

    /// What `forget` leaves of a route and of audit entries: hubs, rules
    /// and steps, no reasons or outcomes, however deep they sit.
    #[test]
    fn scrubbing_keeps_hubs_and_rules_and_drops_reasons() {
        let mut route = serde_json::json!({
            "rule": "hyogo-hiring", "reason": "兵庫県の製造業で採用を検討中のため",
            "primary": { "id": "hyogo-pro", "name": "兵庫県プロ人材戦略拠点" },
            "copies": [], "step": 2,
            "passed_over": [["kyoto", "所在地が京都府ではない"]]
        });
        assert!(super::scrub_derived_text(&mut route));
        assert_eq!(route["reason"], super::DELETED);
        assert_eq!(route["passed_over"], serde_json::json!([]));
        assert_eq!(route["primary"]["id"], "hyogo-pro");
        assert_eq!(route["rule"], "hyogo-hiring");
        let mut close = serde_json::json!({ "x": [{ "outcome": "山田さんに紹介済み" }] });
        assert!(super::scrub_derived_text(&mut close));
        assert_eq!(close["x"][0]["outcome"], super::DELETED);
        // Scrubbed once, nothing left to change.
        assert!(!super::scrub_derived_text(&mut close));
        let mut claim = serde_json::json!({ "from": 1, "to": 2 });
        assert!(!super::scrub_derived_text(&mut claim));
    }

    /// Times bound as text by the group commit must be stored exactly as
    /// sqlx stores a bound `DateTime<Utc>`, or one column would hold two
    /// formats (and sort wrongly).
    #[tokio::test]
    async fn a_time_as_text_is_stored_as_sqlx_stores_a_time() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let base = Utc.with_ymd_and_hms(2026, 11, 21, 9, 5, 7).unwrap();
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 5] {
            let t: DateTime<Utc> = base + chrono::Duration::nanoseconds(nanos);
            let (by_sqlx, by_us): (String, String) = sqlx::query_as("SELECT ?, ?")
                .bind(t)
                .bind(sql_time(t))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(by_sqlx, by_us, "{t:?}");
        }
    }

    /// A new database is made with 16 KiB pages; one made with SQLite's
    /// 4 KiB pages (by an earlier version) keeps them and is used as it is.
    #[tokio::test]
    async fn new_databases_get_large_pages_and_old_ones_keep_theirs() {
        use super::{SqliteStore, Store, NEW_DATABASE_PAGE_SIZE};
        use sqlx::ConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let page_size = |store: SqliteStore| async move {
            sqlx::query_scalar::<_, i64>("PRAGMA page_size")
                .fetch_one(store.pool())
                .await
                .unwrap()
        };
        let new = dir.path().join("new.db");
        let store = SqliteStore::open(&new).await.unwrap();
        assert_eq!(page_size(store).await, NEW_DATABASE_PAGE_SIZE as i64);

        let old = dir.path().join("old.db");
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&old)
            .create_if_missing(true)
            .page_size(4096)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE made_before (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::Connection::close(conn).await.unwrap();
        let store = SqliteStore::open(&old).await.unwrap();
        let user = crate::domain::ids::UserKey::parse("terminal:old-page-size").unwrap();
        assert!(store.open_session(&user).await.unwrap().is_none());
        assert_eq!(page_size(store).await, 4096);
    }

    /// The checkpoint sequence number in a WAL file's header, which SQLite
    /// bumps each time the WAL starts over from its beginning.
    fn wal_restarts(db: &std::path::Path) -> u32 {
        let wal = std::fs::read(db.with_extension("db-wal")).unwrap();
        u32::from_be_bytes(wal[12..16].try_into().unwrap())
    }

    /// The background checkpointer asks for a restart only on a count of
    /// the WAL as it is now: not on one from a pass that overlapped the
    /// committer's copy, nor on the copied WAL's own count before the next
    /// write starts it over.
    #[test]
    fn a_restart_is_asked_for_only_on_a_current_count_of_a_long_wal() {
        use super::{WalRestart, WAL_RESTART_FRAMES};
        use std::sync::atomic::Ordering;
        let long = WAL_RESTART_FRAMES + 300;
        let w = WalRestart::default();
        // A short WAL: nothing asked.
        w.after_pass(WAL_RESTART_FRAMES - 1, 0);
        assert!(!w.take());
        // A long one: asked once.
        w.after_pass(long, 0);
        assert!(w.take());
        assert!(!w.take(), "taking the request clears it");
        // The committer's copy met another checkpoint, or a reader kept
        // part of the WAL: the request stays.
        w.after_copy(true, long, long);
        assert!(w.take());
        w.after_copy(false, long, long - 5);
        assert!(w.take());
        assert_eq!(w.pauses.load(Ordering::Relaxed), 0);
        // A pass that began before the copy finished counts the old WAL.
        let since = w.pauses.load(Ordering::Relaxed);
        w.after_copy(false, long, long);
        w.after_pass(long, since);
        assert!(!w.take(), "a pass that overlapped the copy");
        // A pass after the copy, before any write: the same count.
        w.after_pass(long, w.pauses.load(Ordering::Relaxed));
        assert!(!w.take(), "the copied WAL, not yet started over");
        // Writes went on without a restart (a reader held an old
        // snapshot): the WAL is longer than when copied, so ask again.
        w.after_pass(long + 40, w.pauses.load(Ordering::Relaxed));
        assert!(w.take());
        // The WAL started over and grew long again.
        w.after_pass(WAL_RESTART_FRAMES + 10, w.pauses.load(Ordering::Relaxed));
        assert!(w.take());
    }

    /// When the background checkpointer has found the WAL long, the
    /// committer's upkeep between batches copies it to its end, so the next
    /// write starts the WAL over instead of growing it.
    #[tokio::test]
    async fn between_batches_lets_a_long_wal_start_over() {
        use super::{SqliteStore, Store};
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wal.db");
        let store = SqliteStore::open(&db).await.unwrap();
        let write = |i: i64| {
            sqlx::query("INSERT INTO audit_log (actor, action, detail, at) VALUES ('test', 'wal', ?, '2026-11-21')")
                .bind(i)
                .execute(store.pool())
        };
        for i in 0..20 {
            write(i).await.unwrap();
        }
        let before = wal_restarts(&db);
        store.wal.long.store(true, Ordering::Relaxed);
        // A pass that meets the background checkpointer keeps the request
        // for the next pause; a few pauses always get the whole WAL copied.
        // On a loaded machine the checkpointer's thread can be descheduled
        // while it holds the checkpoint lock, so the pauses are spread out
        // (a short sleep each, bounded in count) instead of all landing in
        // the same instant: the bound only limits a hang, the assertion
        // below does not depend on how long anything took.
        let mut pauses = 0;
        while store.wal.long.load(Ordering::Relaxed) && pauses < 500 {
            store.between_batches().await.unwrap();
            pauses += 1;
            if store.wal.long.load(Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        assert!(
            !store.wal.long.load(Ordering::Relaxed),
            "the request is taken"
        );
        // The next writer starts the WAL over, unless a reader of the
        // pool (or the background checkpointer) still has a snapshot open
        // at that instant: then a following write does. Writes are
        // repeated (spread out, bounded in count) until one starts it over.
        let mut writes = 0;
        while wal_restarts(&db) == before && writes < 200 {
            write(20 + writes).await.unwrap();
            writes += 1;
            if wal_restarts(&db) == before {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        assert_ne!(wal_restarts(&db), before, "the WAL started over");
        // Nothing asked: nothing done, and nothing lost.
        store.between_batches().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'wal'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 20 + writes);
    }
}
