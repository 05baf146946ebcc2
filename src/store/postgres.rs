//! The store for deployments with several bot instances: PostgreSQL
//! through sqlx, with runtime queries only (no compile-time checked macros,
//! so building needs no live database).
//!
//! The tables and columns are those of the SQLite store (see
//! `migrations/postgres`). What differs is how concurrent writers are kept
//! apart: SQLite has one writer at a time, while here two instances write
//! at once under READ COMMITTED. So
//! - a step is written only over its revision with `UPDATE … WHERE rev =
//!   $rev`: a concurrent step on the same session waits for the row lock,
//!   then finds the new revision and is refused ([`StoreError::Stale`]);
//! - a new session whose step presumed something of its owner's sessions
//!   ([`Presumption`]) takes a transaction-scoped advisory lock on the
//!   owner first, in the order of the lock keys, so the check that follows
//!   (a new statement, hence a new snapshot) sees every session another
//!   transaction created for that owner, and two instances cannot both
//!   create one.

use super::*;
use crate::domain::ids::{CaseId, SessionId, UserKey};
use crate::engine::{ConsentRecord, Effect};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;

/// How long a pooled connection may have been idle and still be handed out
/// without a ping. sqlx pings every connection it hands out by default,
/// which is a round trip to the server before each transaction; a
/// connection used this recently is trusted, and if it broke meanwhile the
/// statement fails as a ping would have, only later.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

/// The environment variable naming the PostgreSQL server the tests use
/// (`.ci/run` starts one and sets it); without it they are skipped.
pub const TEST_URL_VAR: &str = "MADOGUCHI_TEST_PG";

impl PostgresStore {
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
        let mut tx = self.pool.begin().await?;
        let (name, error, q) = match outcome {
            AttemptOutcome::Delivered { external_id } => (
                "delivered",
                None,
                sqlx::query(
                    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL,
                     external_id = COALESCE($2, external_id), lease_owner = NULL, lease_until = NULL
                     WHERE id = $3 AND ($4::TEXT IS NULL OR lease_owner = $4)",
                )
                .bind(now)
                .bind(external_id.clone())
                .bind(id),
            ),
            AttemptOutcome::Retry { at, error } => (
                "retry",
                Some(error),
                sqlx::query(
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL
                     WHERE id = $3 AND ($4::TEXT IS NULL OR lease_owner = $4)",
                )
                .bind(*at)
                .bind(error.clone())
                .bind(id),
            ),
            AttemptOutcome::Failed { error } => (
                "failed",
                Some(error),
                sqlx::query(
                    "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, last_error = $1, lease_owner = NULL, lease_until = NULL
                     WHERE id = $2 AND ($3::TEXT IS NULL OR lease_owner = $3)",
                )
                .bind(error.clone())
                .bind(id),
            ),
        };
        let n = q.bind(owner).execute(&mut *tx).await?.rows_affected();
        if n != 1 {
            // Not ours (or no such delivery): the transaction is rolled
            // back when dropped.
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, outcome, error, at) VALUES ($1, $2, $3, $4)",
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
    /// Connects to the database at `url` (`postgres://…`) and applies
    /// migrations. Several instances may start at once: sqlx serialises
    /// migrations with an advisory lock.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        Self::with_options(PgConnectOptions::from_str(url)?).await
    }

    /// Like [`PostgresStore::open`], in a schema of its own (created if
    /// missing): every table, and sqlx's migration table, live there. The
    /// tests use it so that each gets an empty database while sharing one
    /// server.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<PostgresStore> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::Conflict(format!(
                "schema name `{schema}` must be lowercase letters, digits and _"
            )));
        }
        let opts = PgConnectOptions::from_str(url)?;
        {
            use sqlx::{ConnectOptions, Connection};
            let mut conn = opts.connect().await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Self::with_options(opts.options([("search_path", schema)])).await
    }

    pub async fn with_options(opts: PgConnectOptions) -> Result<PostgresStore> {
        // One connection first: the pool retries until its timeout and then
        // reports only that it timed out, while this says why (refused,
        // wrong password, no such database).
        {
            use sqlx::{ConnectOptions, Connection};
            opts.connect().await?.close().await?;
        }
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        use sqlx::Connection;
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// A store in a fresh schema of the test server named by
    /// [`TEST_URL_VAR`], or `None` (with the reason printed) when the
    /// variable is not set.
    pub async fn for_tests(name: &str) -> Option<PostgresStore> {
        let url = test_url(name)?;
        let schema = unique_schema(name);
        Some(
            PostgresStore::open_in_schema(&url, &schema)
                .await
                .unwrap_or_else(|e| panic!("cannot open the test schema {schema}: {e}")),
        )
    }

    /// Physical erasure after `forget`. PostgreSQL never overwrites a row
    /// in place: a DELETE or UPDATE leaves the old row version (with the
    /// owner's answers, sheet, reasons) in the table's pages as a dead
    /// tuple until VACUUM reclaims its space, and even then the bytes stay
    /// in the free space until a later row overwrites them. The committed
    /// transaction already makes them unreadable through SQL; this VACUUM
    /// of the touched tables marks their space free at once instead of at
    /// autovacuum's next pass, and (without FULL) takes no lock that stops
    /// the bot. VACUUM cannot run inside a transaction block, so it runs
    /// after the commit, each table on its own; if it fails, the deletion
    /// stands and the error says to run forget again.
    ///
    /// Beyond this, which a store cannot do cheaply: the old versions also
    /// sit in the WAL segments (until checkpoints recycle them), in WAL
    /// archives, base backups and replicas, and free space is only
    /// overwritten by later writes. An operator who needs the bytes gone
    /// runs `VACUUM FULL` (rewrites each table, with an exclusive lock) and
    /// handles archives and backups by their retention.
    async fn vacuum_after_forget(&self) -> Result<()> {
        // One statement for all of them (PostgreSQL 11 and later), sent
        // as a plain query string.
        const TABLES: &str =
            "answers, sessions, cases, audit_log, live_prompts, relay_messages, forward_requests";
        sqlx::Executor::execute(&self.pool, format!("VACUUM {TABLES}").as_str())
            .await
            .map_err(|e| {
                StoreError::Conflict(format!(
                    "the owner's data is deleted, but VACUUM failed ({e}), so old row versions may stay in the pages of {TABLES} until autovacuum runs; run forget again"
                ))
            })?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection listening on [`SIGNAL_CHANNEL`], opened with the
    /// store's connection settings (outside its pool: it stays open).
    pub async fn listener(&self) -> Result<sqlx::postgres::PgListener> {
        let mut l = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        l.listen(SIGNAL_CHANNEL).await?;
        Ok(l)
    }
}

/// The `LISTEN/NOTIFY` channel of [`Store::signal`]; the payload is the
/// audit action to read (`reload`). Channels are per database, so instances
/// in other schemas of the same database (the tests) wake each other now
/// and then: harmless, since a follower reads its own schema's audit log.
pub const SIGNAL_CHANNEL: &str = "madoguchi_signals";

/// The test server's URL, or `None` after printing why the test is skipped.
pub fn test_url(test: &str) -> Option<String> {
    match std::env::var(TEST_URL_VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!(
                "skipped {test}: {TEST_URL_VAR} is not set (.ci/run starts a PostgreSQL server and sets it)"
            );
            None
        }
    }
}

/// A schema name no other test (of this or a parallel run) uses.
pub fn unique_schema(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t_{clean}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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

/// A session row with its answer log, as in the SQLite store: the answers
/// that count for the current state, oldest first, as a JSON array of
/// `[ix, value]`. `value::json` keeps the stored text as it is.
macro_rules! session_select {
    ($tail:literal) => {
        concat!(
            "SELECT s.*,
                (SELECT json_agg(json_build_array(a.ix, a.value::json) ORDER BY a.id)::text
                 FROM answers a
                 WHERE a.session_id = s.id AND a.id >= s.answers_from AND a.ix IS NOT NULL) AS answer_log
             FROM sessions s ",
            $tail
        )
    };
}

fn session_row(r: &PgRow) -> Result<SessionRecord> {
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

fn timer_row(r: &PgRow) -> Result<TimerRecord> {
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

fn follow_up_row(r: &PgRow) -> Result<FollowUp> {
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

fn case_row(r: &PgRow) -> Result<CaseRecord> {
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

fn delivery_row(r: &PgRow) -> Result<DeliveryRecord> {
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

fn consent_row(r: &PgRow) -> Result<ConsentRow> {
    let user: String = r.try_get("user_key")?;
    let recipients: String = r.try_get("recipients")?;
    let items: String = r.try_get("items")?;
    let case: Option<i64> = r.try_get("case_id")?;
    Ok(ConsentRow {
        id: r.try_get("id")?,
        session: SessionId(r.try_get("session_id")?),
        case: case.map(CaseId),
        user: UserKey::parse(&user).map_err(|e| corrupt("consent user", e))?,
        granted: r.try_get("granted")?,
        recipients: json("consent recipients", &recipients)?,
        items: json("consent items", &items)?,
        wording: r.try_get("wording")?,
        at: r.try_get("at")?,
    })
}

fn case_post_row(r: &PgRow) -> Result<CasePost> {
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

fn relay_row(r: &PgRow) -> Result<RelayRecord> {
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
    conn: &mut sqlx::PgConnection,
    session: SessionId,
    case: Option<CaseId>,
    user: &str,
    c: &ConsentRecord,
    now: DateTime<Utc>,
) -> Result<i64> {
    // The same invariant as the SQLite store, on every path that records a
    // consent (a step, a re-consent, a forward), before anything is written.
    super::check_consent(c)?;
    Ok(sqlx::query_scalar(
        "INSERT INTO consents (session_id, case_id, user_key, granted, recipients, items, wording, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(session.0)
    .bind(case.map(|c| c.0))
    .bind(user)
    .bind(c.granted)
    .bind(to_json(&c.hubs))
    .bind(to_json(&c.items))
    .bind(&c.wording)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

/// Changes a case and writes its audit entry inside a transaction. The
/// case row is read `FOR UPDATE`, so two staff actions on one case (from
/// two instances) apply one after the other.
async fn apply_change(
    conn: &mut sqlx::PgConnection,
    id: CaseId,
    change: &CaseChange,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<CaseRecord> {
    let row = sqlx::query(&format!(
        "SELECT {CASE_COLS} FROM cases WHERE id = $1 FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
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
    sqlx::query("UPDATE cases SET hub_id = $1, step = $2, status = $3, claimed_by = $4, outcome = $5, updated_at = $6 WHERE id = $7")
        .bind(&case.hub_id)
        .bind(case.step as i64)
        .bind(case.status.name())
        .bind(&case.claimed_by)
        .bind(&case.outcome)
        .bind(now)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.0)
    .bind(actor)
    .bind(change.action())
    .bind(detail.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(case)
}

/// The owner and script version of a session, read only when a step needs
/// them (consent and case rows).
enum SessionMeta {
    Unknown,
    Known(String, String),
}

impl SessionMeta {
    async fn get(
        &mut self,
        conn: &mut sqlx::PgConnection,
        session: SessionId,
    ) -> Result<(&str, &str)> {
        if let SessionMeta::Unknown = self {
            let row = sqlx::query("SELECT user_key, version FROM sessions WHERE id = $1")
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

fn state_json<'a>(c: &StepCommit<'a>) -> std::borrow::Cow<'a, str> {
    match c.state_json {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(to_json(c.state)),
    }
}

/// Takes the transaction-scoped advisory locks of these owners, in the
/// order of their keys so that two transactions never wait for each other
/// in a circle. The one-`bigint` form of the lock does not collide with
/// the two-`int4` form the leader lock uses.
async fn lock_owners(conn: &mut sqlx::PgConnection, users: &[String]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(u, 0) AS k FROM unnest($1::text[]) AS u ORDER BY k) AS l",
    )
    .bind(users)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates the sessions of first steps with one `INSERT … SELECT FROM
/// unnest(…) RETURNING`, and returns their ids in the steps' order. A
/// session whose step presumed something of its owner's sessions is
/// inserted only if that still holds: the owners' advisory locks are taken
/// first (see the module's comment), then the insert checks. If any was
/// refused, fails with [`StoreError::NotNew`] naming their owners; the
/// caller rolls back.
async fn create_sessions(
    conn: &mut sqlx::PgConnection,
    new: &[(&StepCommit<'_>, &NewSession)],
) -> Result<Vec<SessionId>> {
    if new.is_empty() {
        return Ok(vec![]);
    }
    let users: Vec<String> = new.iter().map(|(_, s)| s.user.to_string()).collect();
    lock_owners(conn, &users).await?;
    let mut script_ids = Vec::with_capacity(new.len());
    let mut langs = Vec::with_capacity(new.len());
    let mut versions = Vec::with_capacity(new.len());
    let mut statuses = Vec::with_capacity(new.len());
    let mut nodes = Vec::with_capacity(new.len());
    let mut states = Vec::with_capacity(new.len());
    let mut created = Vec::with_capacity(new.len());
    let mut updated = Vec::with_capacity(new.len());
    let mut presumed = Vec::with_capacity(new.len());
    for (c, s) in new {
        script_ids.push(s.script_id.as_str());
        langs.push(s.lang.code());
        versions.push(s.version.as_str());
        statuses.push(c.state.status.name());
        nodes.push(c.current_node);
        states.push(state_json(c).into_owned());
        created.push(s.now);
        updated.push(c.now);
        presumed.push(match s.presumed {
            Presumption::Read => 0i32,
            Presumption::NoSession => 1,
            Presumption::NoOpenSession => 2,
        });
    }
    let rows = sqlx::query(
        "INSERT INTO sessions (user_key, script_id, lang, version, status, current_node, state, rev, created_at, updated_at)
         SELECT v.u, v.sid, v.lang, v.ver, v.st, v.node, v.state, 1, v.ca, v.ua
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::int4[])
              AS v(u, sid, lang, ver, st, node, state, ca, ua, p)
         WHERE v.p = 0 OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_key = v.u AND (v.p = 1 OR s.status IN ('new', 'active')))
         RETURNING id, user_key",
    )
    .bind(&users)
    .bind(&script_ids)
    .bind(&langs)
    .bind(&versions)
    .bind(&statuses)
    .bind(&nodes)
    .bind(&states)
    .bind(&created)
    .bind(&updated)
    .bind(&presumed)
    .fetch_all(&mut *conn)
    .await?;
    let by_user: std::collections::HashMap<String, i64> = rows
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(1)?, r.try_get::<i64, _>(0)?)))
        .collect::<Result<_>>()?;
    let mut ids = Vec::with_capacity(new.len());
    let mut refused = Vec::new();
    for (_, s) in new {
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
    if !refused.is_empty() {
        return Err(StoreError::NotNew(refused));
    }
    Ok(ids)
}

/// Writes one step inside the caller's transaction: the session row first
/// (created for a first step, otherwise updated over its revision), then
/// the rows for its effects.
async fn write_step(conn: &mut sqlx::PgConnection, c: &StepCommit<'_>) -> Result<StepOutcome> {
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
                "UPDATE sessions SET status = $1, current_node = $2, state = $3, updated_at = $4, rev = rev + 1 WHERE id = $5 AND rev = $6",
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
                    sqlx::query_scalar("SELECT id FROM sessions WHERE id = $1")
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
                sqlx::query("INSERT INTO answers (session_id, node, ix, value, raw, correction, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(session.0)
                    .bind(&r.node)
                    .bind(r.ix as i64)
                    .bind(to_json(&r.value))
                    .bind(&r.raw)
                    .bind(r.correction)
                    .bind(c.now)
                    .execute(&mut *conn)
                    .await?;
            }
            Effect::Unset { node, ix } => {
                sqlx::query("INSERT INTO answers (session_id, node, ix, value, raw, correction, at) VALUES ($1, $2, $3, NULL, '', TRUE, $4)")
                    .bind(session.0)
                    .bind(node)
                    .bind(*ix as i64)
                    .bind(c.now)
                    .execute(&mut *conn)
                    .await?;
            }
            // Everything said before a restart stays as history but no
            // longer counts. Only this session's answers matter to its log,
            // and its row is locked by this transaction, so no answer of it
            // can be written meanwhile; later ones take larger ids from the
            // sequence.
            Effect::Restarted => {
                sqlx::query("UPDATE sessions SET answers_from = (SELECT COALESCE(MAX(id), 0) + 1 FROM answers WHERE session_id = $1) WHERE id = $1")
                    .bind(session.0)
                    .execute(&mut *conn)
                    .await?;
            }
            Effect::Reask { node, ix } => {
                sqlx::query(
                    "INSERT INTO reasks (session_id, node, ix, at) VALUES ($1, $2, $3, $4)",
                )
                .bind(session.0)
                .bind(node)
                .bind(*ix as i32)
                .bind(c.now)
                .execute(&mut *conn)
                .await?;
            }
            Effect::Consent(rec) => {
                let (user, _) = meta.get(conn, session).await?;
                let user = user.to_string();
                insert_consent(conn, session, None, &user, rec, c.now).await?;
            }
            Effect::CaseReady(draft) => {
                let (user, version) = meta.get(conn, session).await?;
                let (user, version) = (user.to_string(), version.to_string());
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO cases (session_id, user_key, version, headline, summary_plain, summary_markdown, route, hub_id, tags, step, status, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $11) RETURNING id",
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
                .fetch_one(&mut *conn)
                .await?;
                let case = CaseId(id);
                // The forwarding record: who receives what, on which
                // consent, written with the case itself.
                insert_consent(conn, session, Some(case), &user, &draft.consent, c.now).await?;
                for d in &c.deliveries {
                    sqlx::query(
                        "INSERT INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
                    )
                    .bind(id)
                    .bind(&d.hub_id)
                    .bind(&d.transport)
                    .bind(&d.target)
                    .bind(c.now)
                    .execute(&mut *conn)
                    .await?;
                }
                sqlx::query("INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES ($1, 'bot', 'routed', $2, $3)")
                    .bind(id)
                    .bind(to_json(&draft.route))
                    .bind(c.now)
                    .execute(&mut *conn)
                    .await?;
                write_case_timers(conn, &[(case, c)]).await?;
                outcome.case = Some(case);
            }
            _ => {}
        }
    }
    Ok(outcome)
}

/// Writes a batch's session rows and answers, and takes the ids of the
/// batch's `n_cases` new cases from their sequence, with one statement
/// (data-modifying CTEs) after the new sessions are created: the session
/// updates over their revisions, the answers, and the case ids in one
/// round trip to the server. Returns each step's session id and the case
/// ids, increasing. Fails with [`StoreError::Stale`] naming exactly the
/// steps whose session has moved on (the answers written with them are
/// rolled back with the transaction by the caller). A step whose session
/// is gone (forgotten) fails the statement on the answers' foreign key
/// instead, if it recorded an answer; the group committer then commits
/// the batch's steps one by one, and `write_step` names it.
///
/// The case ids are taken here, before the cases are written, because a
/// case's reminder timers (`StepCommit::case_timers`) are made from its id
/// by the runner's code; the next statement then writes the cases with
/// their timers. Ids of a batch that is rolled back are lost, as they are
/// from any sequence.
async fn write_sessions_answers_and_take_case_ids(
    conn: &mut sqlx::PgConnection,
    all: &[&StepCommit<'_>],
    n_cases: usize,
) -> Result<(Vec<SessionId>, Vec<i64>)> {
    let mut ids: Vec<SessionId> = all.iter().map(|c| c.session).collect();
    let created: Vec<(usize, (&StepCommit<'_>, &NewSession))> = all
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.new_session.map(|n| (i, (*c, n))))
        .collect();
    let new: Vec<(&StepCommit<'_>, &NewSession)> = created.iter().map(|(_, p)| *p).collect();
    for ((i, _), id) in created.iter().zip(create_sessions(conn, &new).await?) {
        ids[*i] = id;
    }
    let steps: Vec<&StepCommit<'_>> = all
        .iter()
        .copied()
        .filter(|c| c.new_session.is_none())
        .collect();
    let sids: Vec<i64> = steps.iter().map(|c| c.session.0).collect();
    let revs: Vec<i64> = steps.iter().map(|c| c.rev).collect();
    let statuses: Vec<&str> = steps.iter().map(|c| c.state.status.name()).collect();
    let nodes: Vec<&str> = steps.iter().map(|c| c.current_node).collect();
    let states: Vec<std::borrow::Cow<'_, str>> = steps.iter().map(|c| state_json(c)).collect();
    let states: Vec<&str> = states.iter().map(|s| s.as_ref()).collect();
    let times: Vec<DateTime<Utc>> = steps.iter().map(|c| c.now).collect();
    // The answers, in step and effect order (their ids keep that order).
    let mut a_sessions = Vec::new();
    let mut a_nodes = Vec::new();
    let mut a_ixs = Vec::new();
    let mut a_values: Vec<Option<String>> = Vec::new();
    let mut a_raws = Vec::new();
    let mut a_corrections = Vec::new();
    let mut a_times = Vec::new();
    for (i, c) in all.iter().enumerate() {
        for e in c.effects {
            match e {
                Effect::Record(r) => {
                    a_sessions.push(ids[i].0);
                    a_nodes.push(r.node.as_str());
                    a_ixs.push(r.ix as i64);
                    a_values.push(Some(to_json(&r.value)));
                    a_raws.push(r.raw.as_str());
                    a_corrections.push(r.correction);
                    a_times.push(c.now);
                }
                Effect::Unset { node, ix } => {
                    a_sessions.push(ids[i].0);
                    a_nodes.push(node.as_str());
                    a_ixs.push(*ix as i64);
                    a_values.push(None);
                    a_raws.push("");
                    a_corrections.push(true);
                    a_times.push(c.now);
                }
                _ => {}
            }
        }
    }
    // Setting the status to the value it has keeps the update HOT
    // (PostgreSQL compares the indexed values), so unlike the SQLite store
    // there is no need to leave it out for unchanged statuses. The
    // sub-statements run on one snapshot; none reads what another writes.
    let row = sqlx::query(
        "WITH u AS (
            UPDATE sessions SET status = v.st, current_node = v.node, state = v.state, updated_at = v.at, rev = sessions.rev + 1
            FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS v(id, rev, st, node, state, at)
            WHERE sessions.id = v.id AND sessions.rev = v.rev
            RETURNING sessions.id
         ), a AS (
            INSERT INTO answers (session_id, node, ix, value, raw, correction, at)
            SELECT * FROM unnest($7::int8[], $8::text[], $9::int8[], $10::text[], $11::text[], $12::bool[], $13::timestamptz[])
            RETURNING 1
         )
         SELECT ARRAY(SELECT id FROM u), (SELECT COUNT(*) FROM a),
                ARRAY(SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, $14) ORDER BY 1)",
    )
    .bind(&sids)
    .bind(&revs)
    .bind(&statuses)
    .bind(&nodes)
    .bind(&states)
    .bind(&times)
    .bind(&a_sessions)
    .bind(&a_nodes)
    .bind(&a_ixs)
    .bind(&a_values)
    .bind(&a_raws)
    .bind(&a_corrections)
    .bind(&a_times)
    .bind(n_cases as i32)
    .fetch_one(&mut *conn)
    .await?;
    let landed: Vec<i64> = row.try_get(0)?;
    let inserted: i64 = row.try_get(1)?;
    let case_ids: Vec<i64> = row.try_get(2)?;
    if landed.len() != steps.len() {
        let landed: std::collections::HashSet<i64> = landed.into_iter().collect();
        let stale = steps
            .iter()
            .filter(|c| !landed.contains(&c.session.0))
            .map(|c| c.session)
            .collect();
        return Err(StoreError::Stale(stale));
    }
    if inserted != a_sessions.len() as i64 {
        return Err(StoreError::Conflict(format!(
            "{inserted} answers stored of {}",
            a_sessions.len()
        )));
    }
    if case_ids.len() != n_cases {
        return Err(StoreError::Conflict(format!(
            "{} case ids taken of {n_cases}",
            case_ids.len()
        )));
    }
    Ok((ids, case_ids))
}

/// Writes the rows of a batch's effects other than answers (see
/// [`super::plan`]) after its session rows and answers, all in one
/// statement (data-modifying CTEs, one round trip to the server whatever
/// the steps did): restarts, re-asks, cases with the ids taken for them,
/// their audit entries, consents, deliveries and reminder timers. `ids`
/// are the steps' sessions, `case_ids` those of `rows.cases`, in order.
/// Returns each step's case.
///
/// The owner and script version of a case or consent are read from the
/// session row by the statement itself. The sub-statements run on one
/// snapshot, which is why none reads what another writes: a restart reads
/// the answers the previous statement wrote, and a case's audit entry
/// takes its route from the case insert's `RETURNING`. The foreign keys of
/// the deliveries and timers to their cases are checked at the end of the
/// statement, when the cases are there.
async fn write_effect_rows_at_once(
    conn: &mut sqlx::PgConnection,
    all: &[&StepCommit<'_>],
    ids: &[SessionId],
    rows: &super::plan::EffectRows<'_>,
    case_ids: &[i64],
) -> Result<Vec<Option<CaseId>>> {
    use chrono::SubsecRound;
    let mut cases = vec![None; all.len()];
    for ((i, _), id) in rows.cases.iter().zip(case_ids) {
        cases[*i] = Some(CaseId(*id));
    }
    // Restarts, after the answers: everything said before a restart stays
    // as history but no longer counts, so the session's answer log starts
    // at the first answer recorded after it (its `k`-th last one in the
    // batch, found backwards on `answers_by_session`), or past every
    // answer of the session when none was. The session's row is locked by
    // this transaction, so no other answer of it is written meanwhile.
    let r_sids: Vec<i64> = rows.restarts.iter().map(|(i, _)| ids[*i].0).collect();
    let r_ks: Vec<i64> = rows.restarts.iter().map(|(_, k)| *k).collect();
    let q_sids: Vec<i64> = rows.reasks.iter().map(|(i, _, _)| ids[*i].0).collect();
    let q_nodes: Vec<&str> = rows.reasks.iter().map(|(_, n, _)| *n).collect();
    let q_ixs: Vec<i32> = rows.reasks.iter().map(|(_, _, ix)| *ix as i32).collect();
    let q_times: Vec<DateTime<Utc>> = rows.reasks.iter().map(|(i, _, _)| all[*i].now).collect();
    let c = &rows.cases;
    let c_sids: Vec<i64> = c.iter().map(|(i, _)| ids[*i].0).collect();
    let c_heads: Vec<&str> = c.iter().map(|(_, d)| d.headline.as_str()).collect();
    let c_plains: Vec<&str> = c.iter().map(|(_, d)| d.summary_plain.as_str()).collect();
    let c_marks: Vec<&str> = c.iter().map(|(_, d)| d.summary_markdown.as_str()).collect();
    let c_routes: Vec<String> = c.iter().map(|(_, d)| to_json(&d.route)).collect();
    let c_hubs: Vec<&str> = c.iter().map(|(_, d)| d.route.primary.id.as_str()).collect();
    let c_tags: Vec<String> = c.iter().map(|(_, d)| to_json(&d.tags)).collect();
    let c_steps: Vec<i64> = c.iter().map(|(_, d)| d.step as i64).collect();
    let c_times: Vec<DateTime<Utc>> = c.iter().map(|(i, _)| all[*i].now).collect();
    let o = &rows.consents;
    let o_sids: Vec<i64> = o.iter().map(|(i, _, _)| ids[*i].0).collect();
    let o_cids: Vec<Option<i64>> = o.iter().map(|(_, k, _)| k.map(|k| case_ids[k])).collect();
    let o_granted: Vec<bool> = o.iter().map(|(_, _, r)| r.granted).collect();
    let o_hubs: Vec<String> = o.iter().map(|(_, _, r)| to_json(&r.hubs)).collect();
    let o_items: Vec<String> = o.iter().map(|(_, _, r)| to_json(&r.items)).collect();
    let o_words: Vec<&str> = o.iter().map(|(_, _, r)| r.wording.as_str()).collect();
    let o_times: Vec<DateTime<Utc>> = o.iter().map(|(i, _, _)| all[*i].now).collect();
    let d = &rows.deliveries;
    let d_cids: Vec<i64> = d.iter().map(|(k, _)| case_ids[*k]).collect();
    let d_hubs: Vec<&str> = d.iter().map(|(_, x)| x.hub_id.as_str()).collect();
    let d_transports: Vec<&str> = d.iter().map(|(_, x)| x.transport.as_str()).collect();
    let d_targets: Vec<&str> = d.iter().map(|(_, x)| x.target.as_str()).collect();
    let d_times: Vec<DateTime<Utc>> = d.iter().map(|(k, _)| all[c[*k].0].now).collect();
    // A new case's reminder timers, made from its id and the step's time
    // as PostgreSQL keeps it (microseconds, as sqlx sends it), which is
    // what a read of the case gives. A timer already stored under the
    // same kind and subject is kept, as `schedule_timer` keeps it.
    let timers: Vec<(NewTimer, DateTime<Utc>)> = c
        .iter()
        .zip(case_ids)
        .filter_map(|((i, _), id)| Some((CaseId(*id), all[*i].case_timers?, all[*i].now)))
        .flat_map(|(id, make, now)| {
            (make.0)(id, now.trunc_subsecs(6))
                .into_iter()
                .map(move |t| (t, now))
        })
        .collect();
    let t_kinds: Vec<&str> = timers.iter().map(|(t, _)| t.kind.as_str()).collect();
    let t_subjects: Vec<&str> = timers.iter().map(|(t, _)| t.subject.as_str()).collect();
    let t_cases: Vec<Option<i64>> = timers.iter().map(|(t, _)| t.case.map(|c| c.0)).collect();
    let t_due: Vec<DateTime<Utc>> = timers.iter().map(|(t, _)| t.due_at).collect();
    let t_payloads: Vec<String> = timers.iter().map(|(t, _)| t.payload.to_string()).collect();
    let t_times: Vec<DateTime<Utc>> = timers.iter().map(|(_, now)| *now).collect();
    let row = sqlx::query(
        "WITH rs AS (
            UPDATE sessions SET answers_from = CASE WHEN v.k > 0
                THEN (SELECT a.id FROM answers a WHERE a.session_id = sessions.id ORDER BY a.id DESC OFFSET v.k - 1 LIMIT 1)
                ELSE (SELECT COALESCE(MAX(id), 0) + 1 FROM answers WHERE session_id = sessions.id) END
            FROM unnest($1::int8[], $2::int8[]) AS v(id, k) WHERE sessions.id = v.id
            RETURNING 1
         ), rq AS (
            INSERT INTO reasks (session_id, node, ix, at)
            SELECT * FROM unnest($3::int8[], $4::text[], $5::int4[], $6::timestamptz[])
            RETURNING 1
         ), c AS (
            INSERT INTO cases (id, session_id, user_key, version, headline, summary_plain, summary_markdown, route, hub_id, tags, step, status, created_at, updated_at)
            SELECT v.id, v.sid, (SELECT user_key FROM sessions WHERE id = v.sid), (SELECT version FROM sessions WHERE id = v.sid),
                   v.h, v.sp, v.sm, v.route, v.hub, v.tags, v.step, 'open', v.at, v.at
            FROM unnest($7::int8[], $8::int8[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int8[], $16::timestamptz[])
                 AS v(id, sid, h, sp, sm, route, hub, tags, step, at)
            RETURNING id, route, created_at
         ), al AS (
            INSERT INTO audit_log (case_id, actor, action, detail, at)
            SELECT id, 'bot', 'routed', route, created_at FROM c ORDER BY id
            RETURNING 1
         ), co AS (
            INSERT INTO consents (session_id, case_id, user_key, granted, recipients, items, wording, at)
            SELECT v.sid, v.cid, (SELECT user_key FROM sessions WHERE id = v.sid), v.g, v.r, v.i, v.w, v.at
            FROM unnest($17::int8[], $18::int8[], $19::bool[], $20::text[], $21::text[], $22::text[], $23::timestamptz[]) AS v(sid, cid, g, r, i, w, at)
            RETURNING 1
         ), d AS (
            INSERT INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at)
            SELECT v.cid, v.hub, v.tr, v.tg, 'pending', v.at, v.at
            FROM unnest($24::int8[], $25::text[], $26::text[], $27::text[], $28::timestamptz[]) AS v(cid, hub, tr, tg, at)
            RETURNING 1
         ), t AS (
            INSERT INTO timers (kind, subject, case_id, due_at, payload, status, created_at)
            SELECT v.k, v.s, v.c, v.d, v.p, 'pending', v.at
            FROM unnest($29::text[], $30::text[], $31::int8[], $32::timestamptz[], $33::text[], $34::timestamptz[]) AS v(k, s, c, d, p, at)
            ON CONFLICT (kind, subject) DO NOTHING
         )
         SELECT (SELECT COUNT(*) FROM rs), (SELECT COUNT(*) FROM rq), (SELECT COUNT(*) FROM c),
                (SELECT COUNT(*) FROM al), (SELECT COUNT(*) FROM co), (SELECT COUNT(*) FROM d)",
    )
    .bind(&r_sids)
    .bind(&r_ks)
    .bind(&q_sids)
    .bind(&q_nodes)
    .bind(&q_ixs)
    .bind(&q_times)
    .bind(case_ids)
    .bind(&c_sids)
    .bind(&c_heads)
    .bind(&c_plains)
    .bind(&c_marks)
    .bind(&c_routes)
    .bind(&c_hubs)
    .bind(&c_tags)
    .bind(&c_steps)
    .bind(&c_times)
    .bind(&o_sids)
    .bind(&o_cids)
    .bind(&o_granted)
    .bind(&o_hubs)
    .bind(&o_items)
    .bind(&o_words)
    .bind(&o_times)
    .bind(&d_cids)
    .bind(&d_hubs)
    .bind(&d_transports)
    .bind(&d_targets)
    .bind(&d_times)
    .bind(&t_kinds)
    .bind(&t_subjects)
    .bind(&t_cases)
    .bind(&t_due)
    .bind(&t_payloads)
    .bind(&t_times)
    .fetch_one(&mut *conn)
    .await?;
    fn check(written: i64, n: usize, what: &str) -> Result<()> {
        if written != n as i64 {
            return Err(StoreError::Conflict(format!(
                "{written} {what} stored of {n}"
            )));
        }
        Ok(())
    }
    check(row.try_get(0)?, r_sids.len(), "restarts")?;
    check(row.try_get(1)?, q_sids.len(), "re-asks")?;
    check(row.try_get(2)?, c_sids.len(), "cases")?;
    check(row.try_get(3)?, c_sids.len(), "audit entries")?;
    check(row.try_get(4)?, o_sids.len(), "consents")?;
    check(row.try_get(5)?, d_cids.len(), "deliveries")?;
    Ok(cases)
}

/// The reminder timers of new cases, each with the step that made it
/// (see `StepCommit::case_timers`), in one statement. A timer already
/// stored under the same kind and subject is kept, as `schedule_timer`
/// keeps it. The case's time is the step's as PostgreSQL keeps it
/// (microseconds, as sqlx sends it), which is what a read of the case
/// gives.
async fn write_case_timers(
    conn: &mut sqlx::PgConnection,
    made: &[(CaseId, &StepCommit<'_>)],
) -> Result<()> {
    use chrono::SubsecRound;
    let timers: Vec<(NewTimer, DateTime<Utc>)> = made
        .iter()
        .filter_map(|(id, c)| Some((*id, c.case_timers?, c.now)))
        .flat_map(|(id, make, now)| {
            (make.0)(id, now.trunc_subsecs(6))
                .into_iter()
                .map(move |t| (t, now))
        })
        .collect();
    if timers.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = timers.iter().map(|(t, _)| t.kind.as_str()).collect();
    let subjects: Vec<&str> = timers.iter().map(|(t, _)| t.subject.as_str()).collect();
    let cases: Vec<Option<i64>> = timers.iter().map(|(t, _)| t.case.map(|c| c.0)).collect();
    let due: Vec<DateTime<Utc>> = timers.iter().map(|(t, _)| t.due_at).collect();
    let payloads: Vec<String> = timers.iter().map(|(t, _)| t.payload.to_string()).collect();
    let times: Vec<DateTime<Utc>> = timers.iter().map(|(_, now)| *now).collect();
    sqlx::query(
        "INSERT INTO timers (kind, subject, case_id, due_at, payload, status, created_at)
         SELECT v.k, v.s, v.c, v.d, v.p, 'pending', v.at
         FROM unnest($1::text[], $2::text[], $3::int8[], $4::timestamptz[], $5::text[], $6::timestamptz[]) AS v(k, s, c, d, p, at)
         ON CONFLICT (kind, subject) DO NOTHING",
    )
    .bind(&kinds)
    .bind(&subjects)
    .bind(&cases)
    .bind(&due)
    .bind(&payloads)
    .bind(&times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const UPSERT_DELIVERY: &str = "INSERT INTO deliveries (case_id, hub_id, transport, target, status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5)
     ON CONFLICT (case_id, hub_id, transport) DO UPDATE SET status = 'pending', next_attempt_at = excluded.next_attempt_at
     WHERE deliveries.status = 'failed'
     RETURNING id";

#[async_trait]
impl Store for PostgresStore {
    fn shared(&self) -> std::sync::Arc<dyn Store> {
        std::sync::Arc::new(self.clone())
    }

    async fn save_version(&self, v: &VersionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO script_versions (version, script_id, lang, script_name, script_text, routing_name, routing_text, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (version) DO NOTHING",
        )
        .bind(&v.version)
        .bind(&v.script_id)
        .bind(v.lang.code())
        .bind(&v.script_name)
        .bind(&v.script_text)
        .bind(&v.routing_name)
        .bind(&v.routing_text)
        .bind(v.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn load_version(&self, version: &str) -> Result<Option<VersionRecord>> {
        let row = sqlx::query("SELECT * FROM script_versions WHERE version = $1")
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
        let mut tx = self.pool.begin().await?;
        // The same lock as a first step's, so this session and one created
        // by another instance's first step are never created blind to each
        // other.
        lock_owners(&mut tx, &[s.user.to_string()]).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (user_key, script_id, lang, version, status, current_node, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'new', '', $5, $6, $6) RETURNING id",
        )
        .bind(s.user.to_string())
        .bind(&s.script_id)
        .bind(s.lang.code())
        .bind(&s.version)
        .bind(to_json(&state))
        .bind(s.now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let row = sqlx::query(session_select!("WHERE s.id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn open_session(&self, user: &UserKey) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(session_select!(
            "WHERE s.user_key = $1 AND s.status IN ('new', 'active') ORDER BY s.id DESC LIMIT 1"
        ))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn has_open_session(&self, user: &UserKey) -> Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_key = $1 AND status IN ('new', 'active'))",
        )
        .bind(user.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn latest_session(&self, user: &UserKey) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(session_select!(
            "WHERE s.user_key = $1 ORDER BY s.id DESC LIMIT 1"
        ))
        .bind(user.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn sessions_to_resume(&self, users: &[UserKey]) -> Result<Vec<Option<SessionRecord>>> {
        if users.is_empty() {
            return Ok(vec![]);
        }
        let keys: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        // Ranks each owner's sessions (open ones first, then newest) and
        // rebuilds the answers of the chosen session only.
        let rows = sqlx::query(session_select!(
            "WHERE s.id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY status IN ('new', 'active') DESC, id DESC) AS rank
                              FROM sessions WHERE user_key = ANY($1)) AS r WHERE rank = 1)"
        ))
        .bind(&keys)
        .fetch_all(&self.pool)
        .await?;
        let mut found = std::collections::HashMap::new();
        for r in rows {
            let s = session_row(&r)?;
            found.insert(s.user.clone(), s);
        }
        // The same owner may be asked for twice.
        Ok(users.iter().map(|u| found.get(u).cloned()).collect())
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
        let rows = sqlx::query(session_select!("WHERE s.user_key = $1 ORDER BY s.id"))
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_row).collect()
    }

    fn atomic_batches(&self) -> bool {
        // `commit_steps` is one transaction.
        true
    }

    /// Two: while one batch waits for its commit (the WAL flush) and its
    /// round trips, the next is written. Two batches of one instance touch
    /// different sessions, and the owners' advisory locks are taken in key
    /// order, so they never wait for each other in a circle.
    fn batches_in_flight(&self) -> usize {
        2
    }

    async fn commit_step(&self, c: &StepCommit<'_>) -> Result<StepOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = write_step(&mut tx, c).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Group commit: every step in one transaction, so one WAL flush makes
    /// the lot durable. Whatever their effects, the batch's steps are
    /// written with two array-bound statements for the whole batch (after
    /// the new sessions, if any): the session rows, answers and the new
    /// cases' ids by `write_sessions_answers_and_take_case_ids`; re-asks,
    /// restarts, cases, consents, deliveries, audit entries and timers by
    /// `write_effect_rows_at_once`. Each statement is a round trip to the
    /// server the whole batch waits for. A batch of one step is written by
    /// `write_step`, which tells a stale step from one whose session is
    /// gone.
    async fn commit_steps(&self, cs: &[StepCommit<'_>]) -> Result<Vec<StepOutcome>> {
        // Every step is checked before the transaction starts, so an unfit
        // step refuses the batch without a round trip (`write_step` checks
        // again for a batch of one).
        for c in cs {
            super::check_step(c.effects)?;
        }
        let mut tx = self.pool.begin().await?;
        if let [c] = cs {
            let outcome = write_step(&mut tx, c).await?;
            tx.commit().await?;
            return Ok(vec![outcome]);
        }
        let all: Vec<&StepCommit<'_>> = cs.iter().collect();
        let rows = super::plan::EffectRows::gather(
            all.iter().map(|c| (c.effects, c.deliveries.as_slice())),
        );
        let (ids, case_ids) =
            write_sessions_answers_and_take_case_ids(&mut tx, &all, rows.cases.len()).await?;
        let cases = write_effect_rows_at_once(&mut tx, &all, &ids, &rows, &case_ids).await?;
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
        let rows =
            sqlx::query("SELECT * FROM answers WHERE session_id = $1 AND NOT carried ORDER BY id")
                .bind(session.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let value: Option<String> = r.try_get("value")?;
                Ok(AnswerRecord {
                    session,
                    node: r.try_get("node")?,
                    value: value.map(|v| json("answer value", &v)).transpose()?,
                    raw: r.try_get("raw")?,
                    correction: r.try_get("correction")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }

    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>> {
        let row = sqlx::query(&format!("SELECT {CASE_COLS} FROM cases WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_row).transpose()
    }

    async fn cases(&self, f: &CaseFilter) -> Result<Vec<CaseRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLS} FROM cases WHERE ($1::text IS NULL OR hub_id = $1) AND ($2::text IS NULL OR status = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(&f.hub_id)
        .bind(f.status.map(|s| s.name()))
        .bind(f.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(case_row).collect()
    }

    async fn cases_of_user(&self, user: &UserKey) -> Result<Vec<CaseRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLS} FROM cases WHERE user_key = $1 AND NOT forgotten ORDER BY id"
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
        let mut tx = self.pool.begin().await?;
        let case = apply_change(&mut tx, id, change, actor, now).await?;
        tx.commit().await?;
        Ok(case)
    }

    async fn audit(&self, case: Option<CaseId>) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE ($1::int8 IS NULL OR case_id = $1) ORDER BY id",
        )
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
            "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(case.map(|c| c.0))
        .bind(actor)
        .bind(action)
        .bind(detail.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn last_audit(&self, action: &str) -> Result<Option<AuditEntry>> {
        // Through the (case_id, id) index: only the entries without a case,
        // newest first.
        let row = sqlx::query(
            "SELECT * FROM audit_log WHERE case_id IS NULL AND action = $1 ORDER BY id DESC LIMIT 1",
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

    async fn signal(&self, kind: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(SIGNAL_CHANNEL)
            .bind(kind)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_delivery(&self, case: CaseId, d: &NewDelivery, now: DateTime<Utc>) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar(UPSERT_DELIVERY)
            .bind(case.0)
            .bind(&d.hub_id)
            .bind(&d.transport)
            .bind(&d.target)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => Ok(id),
            // The delivery exists and is not failed: it is left alone, and
            // its id is the answer.
            None => Ok(sqlx::query_scalar(
                "SELECT id FROM deliveries WHERE case_id = $1 AND hub_id = $2 AND transport = $3",
            )
            .bind(case.0)
            .bind(&d.hub_id)
            .bind(&d.transport)
            .fetch_one(&self.pool)
            .await?),
        }
    }

    async fn due_deliveries(
        &self,
        transport: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE transport = $1 AND status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3"
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
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE case_id = $1 ORDER BY id"
        ))
        .bind(case.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    async fn set_delivery_external_id(&self, id: i64, external_id: &str) -> Result<()> {
        sqlx::query("UPDATE deliveries SET external_id = $1 WHERE id = $2")
            .bind(external_id)
            .bind(id)
            .execute(&self.pool)
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
        // One statement, so one short transaction: the CTE locks the due
        // rows nobody else has locked (SKIP LOCKED: a concurrent worker
        // takes others instead of waiting), and the UPDATE writes this
        // worker's lease into them. Under READ COMMITTED a row another
        // worker leased and committed meanwhile is re-checked against the
        // WHERE clause after locking, and left out since its lease is live.
        let cols = DELIVERY_COLS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "WITH due AS (
                SELECT id, lease_owner FROM deliveries
                WHERE transport = $1 AND status = 'pending' AND next_attempt_at <= $2
                  AND (lease_until IS NULL OR lease_until <= $2)
                ORDER BY next_attempt_at, id LIMIT $3
                FOR UPDATE SKIP LOCKED)
             UPDATE deliveries d SET lease_owner = $4, lease_until = $5
             FROM due WHERE d.id = due.id
             RETURNING {cols}, due.lease_owner AS previous_owner"
        ))
        .bind(transport)
        .bind(now)
        .bind(limit)
        .bind(owner)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(LeasedDelivery {
                    delivery: delivery_row(r)?,
                    taken_over_from: r.try_get("previous_owner")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING keeps no order.
        out.sort_by_key(|l| (l.delivery.next_attempt_at, l.delivery.id));
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
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1
             WHERE id = $2 AND lease_owner = $3",
        )
        .bind(at)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
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
        let rows = sqlx::query("SELECT * FROM consents WHERE user_key = $1 ORDER BY id")
            .bind(user.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(consent_row).collect()
    }

    async fn forget_user(&self, user: &UserKey, now: DateTime<Utc>) -> Result<ForgetReport> {
        let key = user.to_string();
        let mut tx = self.pool.begin().await?;
        // Held to the end of the transaction: no first step of this owner
        // creates a session meanwhile that the deletion would miss.
        lock_owners(&mut tx, std::slice::from_ref(&key)).await?;
        let answers = sqlx::query(
            "DELETE FROM answers WHERE session_id IN (SELECT id FROM sessions WHERE user_key = $1)",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let sessions = sqlx::query("DELETE FROM sessions WHERE user_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // No follow-up is offered to an owner who withdrew; the rows stay
        // (without answers) as the record of what was planned.
        sqlx::query(
            "UPDATE follow_ups SET status = 'cancelled', decided_at = $1, updated_at = $1
             WHERE user_key = $2 AND status IN ('scheduled', 'offered', 'reminded')",
        )
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        // Undelivered copies must not go out after the owner withdrew.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = 'owner deleted their data'
             WHERE status = 'pending' AND case_id IN (SELECT id FROM cases WHERE user_key = $1)",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        let cases = sqlx::query(
            "UPDATE cases SET headline = '（削除済み / deleted）', summary_plain = '', summary_markdown = '', tags = '[]',
                outcome = CASE WHEN outcome IS NULL THEN NULL ELSE '（削除済み / deleted）' END, forgotten = TRUE, updated_at = $1
             WHERE user_key = $2 AND NOT forgotten",
        )
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // As in the SQLite store (and with its scrubbing function): the
        // route and the audit trail of the owner's cases keep which rule
        // sent the case to which hubs (the consent records name the same
        // hubs), but not the reasons and outcomes, which quote or
        // paraphrase the answers. Rows that hold nothing to scrub are not
        // rewritten, so a second forget leaves no new dead row versions.
        let routes: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, route FROM cases WHERE user_key = $1")
                .bind(&key)
                .fetch_all(&mut *tx)
                .await?;
        for (id, route) in routes {
            let mut v: serde_json::Value = json("case route", &route)?;
            if super::sqlite::scrub_derived_text(&mut v) {
                sqlx::query("UPDATE cases SET route = $1 WHERE id = $2")
                    .bind(v.to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let entries: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, detail FROM audit_log WHERE case_id IN (SELECT id FROM cases WHERE user_key = $1)",
        )
        .bind(&key)
        .fetch_all(&mut *tx)
        .await?;
        for (id, detail) in entries {
            let mut v: serde_json::Value = json("audit detail", &detail)?;
            if super::sqlite::scrub_derived_text(&mut v) {
                sqlx::query("UPDATE audit_log SET detail = $1 WHERE id = $2")
                    .bind(v.to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let relayed: Vec<RelayMessage> = sqlx::query(
            "SELECT case_id, direction, channel_id, message_id, at FROM relay_messages WHERE user_key = $1 ORDER BY id",
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
            "DELETE FROM live_prompts WHERE user_key = $1",
            "DELETE FROM relay_messages WHERE user_key = $1",
            "DELETE FROM forward_requests WHERE user_key = $1",
            // Relay messages still waiting are not sent, and no text of
            // any is kept (sent ones hold none already). An erase job from
            // an earlier forget holds only ids and must still run.
            "UPDATE relays SET body = NULL, status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
                last_error = CASE WHEN status = 'pending' THEN 'owner deleted their data' ELSE last_error END
             WHERE user_key = $1 AND kind <> 'erase'",
        ] {
            sqlx::query(sql).bind(&key).execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE timers SET status = 'cancelled', done_at = $1, note = 'owner deleted their data'
             WHERE status IN ('pending', 'claimed') AND case_id IN (SELECT id FROM cases WHERE user_key = $2)",
        )
        .bind(now)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consents WHERE user_key = $1")
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES (NULL, $1, 'forget', $2, $3)")
            .bind(&key)
            .bind(serde_json::json!({ "sessions": sessions, "answers": answers, "cases": cases }).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.vacuum_after_forget().await?;
        Ok(ForgetReport {
            sessions,
            answers,
            cases,
            consent_records_kept: kept as u64,
            relayed,
        })
    }

    async fn forward_case(&self, f: &ForwardCase<'_>) -> Result<CaseRecord> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT status, forgotten, user_key, session_id FROM cases WHERE id = $1 FOR UPDATE",
        )
        .bind(f.case.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("case {}", f.case)))?;
        let status: String = row.try_get("status")?;
        let forgotten: bool = row.try_get("forgotten")?;
        if forgotten {
            return Err(StoreError::Conflict(format!(
                "the owner of case {} deleted their data",
                f.case
            )));
        }
        if status == CaseStatus::Closed.name() {
            return Err(StoreError::Conflict(format!("case {} is closed", f.case)));
        }
        if let Some(req) = f.request {
            let changed = sqlx::query("UPDATE forward_requests SET status = 'accepted', decided_at = $1 WHERE id = $2 AND status = 'pending'")
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
            sqlx::query(UPSERT_DELIVERY)
                .bind(f.case.0)
                .bind(&d.hub_id)
                .bind(&d.transport)
                .bind(&d.target)
                .bind(f.now)
                .fetch_optional(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(case)
    }

    async fn save_case_post(&self, p: &CasePost) -> Result<()> {
        sqlx::query(
            "INSERT INTO case_posts (case_id, hub_id, transport, channel_id, message_id, thread_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn case_posts(&self, case: CaseId) -> Result<Vec<CasePost>> {
        let rows =
            sqlx::query("SELECT * FROM case_posts WHERE case_id = $1 ORDER BY created_at, hub_id")
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
        let row = sqlx::query("SELECT * FROM case_posts WHERE transport = $1 AND (thread_id = $2 OR message_id = $2) LIMIT 1")
            .bind(transport)
            .bind(message_or_thread)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_post_row).transpose()
    }

    async fn set_live_prompt(&self, p: &LivePrompt) -> Result<()> {
        sqlx::query(
            "INSERT INTO live_prompts (user_key, session_id, node, channel_id, message_id, data, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn live_prompt(&self, user: &UserKey) -> Result<Option<LivePrompt>> {
        let row = sqlx::query("SELECT * FROM live_prompts WHERE user_key = $1")
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
        sqlx::query("DELETE FROM live_prompts WHERE user_key = $1")
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_forward_request(
        &self,
        r: &NewForwardRequest,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO forward_requests (case_id, user_key, to_hub, reason, requested_by, status, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
        )
        .bind(r.case.0)
        .bind(r.user.to_string())
        .bind(&r.to_hub)
        .bind(&r.reason)
        .bind(&r.requested_by)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn forward_request(&self, id: i64) -> Result<Option<ForwardRequest>> {
        let row = sqlx::query("SELECT * FROM forward_requests WHERE id = $1")
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
            "SELECT id FROM forward_requests WHERE status = 'pending' ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.forward_requests_by_id(ids).await
    }

    async fn pending_forward_requests_of_case(&self, case: CaseId) -> Result<Vec<ForwardRequest>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM forward_requests WHERE case_id = $1 AND status = 'pending' ORDER BY id",
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
        let n = sqlx::query("UPDATE forward_requests SET status = $1, decided_at = $2 WHERE id = $3 AND status = 'pending'")
            .bind(status.name())
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn add_relay_message(&self, m: &RelayMessage) -> Result<()> {
        sqlx::query("INSERT INTO relay_messages (case_id, user_key, direction, channel_id, message_id, at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(m.case.0)
            .bind(m.user.to_string())
            .bind(&m.direction)
            .bind(&m.channel_id)
            .bind(&m.message_id)
            .bind(m.at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn relay_messages_of_user(&self, user: &UserKey) -> Result<Vec<RelayMessage>> {
        let rows = sqlx::query("SELECT * FROM relay_messages WHERE user_key = $1 ORDER BY id")
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
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::with_capacity(rs.len());
        for r in rs {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO relays (case_id, user_key, kind, transport, target, body, status, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) RETURNING id",
            )
            .bind(r.case.0)
            .bind(r.user.to_string())
            .bind(r.kind.name())
            .bind(&r.transport)
            .bind(&r.target)
            .bind(&r.body)
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
        // As `lease_deliveries`: one statement, SKIP LOCKED.
        let cols = RELAY_COLS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "WITH due AS (
                SELECT id, lease_owner FROM relays
                WHERE transport = $1 AND status = 'pending' AND next_attempt_at <= $2
                  AND (lease_until IS NULL OR lease_until <= $2)
                ORDER BY next_attempt_at, id LIMIT $3
                FOR UPDATE SKIP LOCKED)
             UPDATE relays r SET lease_owner = $4, lease_until = $5
             FROM due WHERE r.id = due.id
             RETURNING {cols}, due.lease_owner AS previous_owner"
        ))
        .bind(transport)
        .bind(now)
        .bind(limit)
        .bind(owner)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(LeasedRelay {
                    relay: relay_row(r)?,
                    taken_over_from: r.try_get("previous_owner")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| {
            (a.relay.next_attempt_at, a.relay.id).cmp(&(b.relay.next_attempt_at, b.relay.id))
        });
        Ok(out)
    }

    async fn relay_progress(&self, id: i64, owner: &str, message_ids: &[String]) -> Result<bool> {
        let n =
            sqlx::query("UPDATE relays SET message_ids = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'pending'")
                .bind(serde_json::to_string(message_ids).unwrap_or_else(|_| "[]".into()))
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
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
                "UPDATE relays SET status = 'delivered', body = NULL, attempts = attempts + 1, delivered_at = $3,
                 last_error = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(now),
            AttemptOutcome::Retry { at, error } => sqlx::query(
                "UPDATE relays SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
                 lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(*at)
            .bind(error.clone()),
            AttemptOutcome::Failed { error } => sqlx::query(
                "UPDATE relays SET status = 'failed', body = NULL, attempts = attempts + 1, last_error = $3,
                 lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(error.clone()),
        };
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn release_relay_lease(&self, id: i64, owner: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE relays SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $1
             WHERE id = $2 AND lease_owner = $3",
        )
        .bind(at)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn relays_of_case(&self, case: CaseId) -> Result<Vec<RelayRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RELAY_COLS} FROM relays WHERE case_id = $1 ORDER BY id"
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
        // Under READ COMMITTED a concurrent insert of the same pair makes
        // this one wait and then do nothing; the select after it is a new
        // statement, so it sees the timer either way.
        let created = sqlx::query(
            "INSERT INTO timers (kind, subject, case_id, due_at, payload, status, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (kind, subject) DO NOTHING",
        )
        .bind(&t.kind)
        .bind(&t.subject)
        .bind(t.case.map(|c| c.0))
        .bind(t.due_at)
        .bind(t.payload.to_string())
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        let row = sqlx::query("SELECT * FROM timers WHERE kind = $1 AND subject = $2")
            .bind(&t.kind)
            .bind(&t.subject)
            .fetch_one(&self.pool)
            .await?;
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
        // The rows are locked as they are chosen and rows another claimer
        // holds are skipped, so two instances take different timers; a row
        // another claimer updated and committed meanwhile is checked again
        // against the condition, which it no longer meets.
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        let rows = sqlx::query(
            "UPDATE timers SET status = 'claimed', holder = $1, lease_until = $2, attempts = attempts + 1
             WHERE id IN (SELECT id FROM timers
                          WHERE (cardinality($3::text[]) = 0 OR kind = ANY($3))
                            AND ((status = 'pending' AND due_at <= $4) OR (status = 'claimed' AND lease_until < $4))
                          ORDER BY due_at, id LIMIT $5
                          FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind(holder)
        .bind(now + lease)
        .bind(&kinds)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
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
                "UPDATE timers SET status = 'fired', done_at = $1, note = $2, lease_until = NULL
                 WHERE id = $3 AND status = 'claimed' AND holder = $4",
            )
            .bind(now)
            .bind(note.clone()),
            TimerOutcome::Retry { at, error } => sqlx::query(
                "UPDATE timers SET status = 'pending', due_at = $1, note = $2, lease_until = NULL
                 WHERE id = $3 AND status = 'claimed' AND holder = $4",
            )
            .bind(*at)
            .bind(error.clone()),
            TimerOutcome::Cancelled { reason } => sqlx::query(
                "UPDATE timers SET status = 'cancelled', done_at = $1, note = $2, lease_until = NULL
                 WHERE id = $3 AND status = 'claimed' AND holder = $4",
            )
            .bind(now)
            .bind(reason.clone()),
        };
        let n = q
            .bind(id)
            .bind(holder)
            .execute(&self.pool)
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
            "UPDATE timers SET status = 'cancelled', done_at = $1, note = $2
             WHERE kind = $3 AND subject = $4 AND status = 'pending'",
        )
        .bind(now)
        .bind(reason)
        .bind(kind)
        .bind(subject)
        .execute(&self.pool)
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
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        Ok(sqlx::query(
            "UPDATE timers SET status = 'cancelled', done_at = $1, note = $2
             WHERE case_id = $3 AND status = 'pending'
               AND (cardinality($4::text[]) = 0 OR kind = ANY($4))",
        )
        .bind(now)
        .bind(reason)
        .bind(case.0)
        .bind(&kinds)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn timers(&self, f: &TimerFilter) -> Result<Vec<TimerRecord>> {
        // Only the conditions given are in the statement, as on SQLite: a
        // prepared statement that PostgreSQL runs with its generic plan
        // cannot use the case's index for `$2 IS NULL OR case_id = $2`.
        let mut sql = String::from("SELECT * FROM timers WHERE TRUE");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if !f.kinds.is_empty() {
            sql.push_str(&format!(" AND kind = ANY(${})", next()));
        }
        if f.case.is_some() {
            sql.push_str(&format!(" AND case_id = ${}", next()));
        }
        if f.status.is_some() {
            sql.push_str(&format!(" AND status = ${}", next()));
        }
        if f.due_by.is_some() {
            sql.push_str(&format!(" AND due_at <= ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY due_at, id LIMIT ${}", next()));
        let mut q = sqlx::query(&sql);
        if !f.kinds.is_empty() {
            q = q.bind(&f.kinds);
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
        let rows = q.bind(f.limit).fetch_all(&self.pool).await?;
        rows.iter().map(timer_row).collect()
    }

    async fn schedule_follow_ups(
        &self,
        case: CaseId,
        user: &UserKey,
        dues: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM follow_ups WHERE case_id = $1")
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
                "INSERT INTO follow_ups (case_id, user_key, seq, due_at, status, updated_at) VALUES ($1, $2, $3, $4, 'scheduled', $5) ON CONFLICT (case_id, seq) DO NOTHING",
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
            "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES ($1, 'bot', 'follow_up_scheduled', $2, $3)",
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
        let rows = sqlx::query("SELECT * FROM follow_ups WHERE case_id = $1 ORDER BY seq")
            .bind(case.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(follow_up_row).collect()
    }

    async fn follow_ups_of_user(&self, user: &UserKey) -> Result<Vec<FollowUp>> {
        let rows = sqlx::query("SELECT * FROM follow_ups WHERE user_key = $1 ORDER BY due_at, id")
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
            "SELECT * FROM follow_ups WHERE status = $1 AND {column} <= $2 ORDER BY {column}, id LIMIT $3"
        ))
        .bind(status.name())
        .bind(at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(follow_up_row).collect()
    }

    async fn move_follow_up(&self, m: &FollowUpMove<'_>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT * FROM follow_ups WHERE id = $1")
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
            "UPDATE follow_ups SET status = $1, session_id = COALESCE($2, session_id), answer_case = COALESCE($3, answer_case),
                offered_at = COALESCE($4, offered_at), reminded_at = COALESCE($5, reminded_at), decided_at = COALESCE($6, decided_at), updated_at = $7
             WHERE id = $8 AND status = $9",
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
            "INSERT INTO audit_log (case_id, actor, action, detail, at) VALUES ($1, 'bot', $2, $3, $4)",
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
             WHERE created_at >= $1 AND created_at < $2 ORDER BY id",
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
             WHERE s.created_at >= $1 AND s.created_at < $2 AND NOT a.carried AND a.value IS NOT NULL
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
            "SELECT session_id, node, at FROM reasks WHERE at >= $1 AND at < $2 ORDER BY id",
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
            "SELECT session_id, case_id, granted, at FROM consents WHERE at >= $1 AND at < $2 ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let granted: bool = r.try_get("granted")?;
            out.consents.push(ConsentFact {
                session: r.try_get("session_id")?,
                case: r.try_get("case_id")?,
                granted,
                at: r.try_get("at")?,
            });
        }
        let rows = sqlx::query(
            "SELECT id, session_id, user_key, route, hub_id, step, status, outcome, created_at FROM cases
             WHERE created_at >= $1 AND created_at < $2 ORDER BY id",
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
             (SELECT id FROM cases WHERE created_at >= $1 AND created_at < $2) ORDER BY id",
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
             (SELECT id FROM cases WHERE created_at >= $1 AND created_at < $2) ORDER BY id",
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
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL,
             lease_owner = NULL, lease_until = NULL WHERE id = $2 AND status = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
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
            "SELECT split_part(user_key, ':', 1) AS platform, COUNT(*) AS n FROM cases
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
             WHERE t.kind = 'claim_reminder' AND t.status <> 'cancelled' AND t.due_at <= $1
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
        let n = sqlx::query(
            "INSERT INTO admin_posts (key, claimed_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn release_admin_post(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM admin_posts WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
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
