//! Moving up from SQLite: `madoguchi store copy` copies every row of an
//! SQLite database into an empty PostgreSQL one, and `madoguchi backup`
//! makes a consistent copy of a live SQLite database.
//!
//! The copy goes table by table at the level of rows, not through the
//! [`Store`](super::Store) trait, because the trait has no way to write a row as it was
//! (its id, its times, a tombstoned case, a delivery's attempts): what
//! arrives must be what was there. Ids are kept, so every reference
//! between rows (and `sessions.answers_from`) stays right, and each
//! identity sequence is moved past the largest id copied. Times arrive
//! to the microsecond, PostgreSQL's precision (SQLite's text kept the
//! system clock's nanoseconds).

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{Result, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Time,
    /// 0/1 in SQLite, boolean in PostgreSQL.
    Bool,
}

use Kind::*;

/// Every table of the schema with its columns, parents before children
/// (the foreign keys are checked as rows arrive). Kept in step with the
/// migrations: a test compares this list with both databases' columns.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "script_versions",
        &[
            ("version", Text),
            ("script_id", Text),
            ("lang", Text),
            ("script_name", Text),
            ("script_text", Text),
            ("routing_name", Text),
            ("routing_text", Text),
            ("created_at", Time),
        ],
    ),
    (
        "sessions",
        &[
            ("id", Int),
            ("user_key", Text),
            ("script_id", Text),
            ("lang", Text),
            ("version", Text),
            ("status", Text),
            ("current_node", Text),
            ("state", Text),
            ("created_at", Time),
            ("updated_at", Time),
            ("answers_from", Int),
            ("rev", Int),
        ],
    ),
    (
        "answers",
        &[
            ("id", Int),
            ("session_id", Int),
            ("node", Text),
            ("value", Text),
            ("raw", Text),
            ("correction", Bool),
            ("at", Time),
            ("ix", Int),
            ("carried", Bool),
        ],
    ),
    (
        "cases",
        &[
            ("id", Int),
            ("session_id", Int),
            ("user_key", Text),
            ("version", Text),
            ("headline", Text),
            ("summary_plain", Text),
            ("summary_markdown", Text),
            ("route", Text),
            ("hub_id", Text),
            ("tags", Text),
            ("step", Int),
            ("status", Text),
            ("claimed_by", Text),
            ("outcome", Text),
            ("forgotten", Bool),
            ("created_at", Time),
            ("updated_at", Time),
        ],
    ),
    (
        "deliveries",
        &[
            ("id", Int),
            ("case_id", Int),
            ("hub_id", Text),
            ("transport", Text),
            ("target", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Time),
            ("last_error", Text),
            ("external_id", Text),
            ("created_at", Time),
            ("delivered_at", Time),
            // A lease copied from a stopped bot's database runs out like
            // any other and is taken over.
            ("lease_owner", Text),
            ("lease_until", Time),
        ],
    ),
    (
        "delivery_attempts",
        &[
            ("id", Int),
            ("delivery_id", Int),
            ("outcome", Text),
            ("error", Text),
            ("at", Time),
        ],
    ),
    (
        "consents",
        &[
            ("id", Int),
            ("session_id", Int),
            ("case_id", Int),
            ("user_key", Text),
            ("granted", Bool),
            ("recipients", Text),
            ("items", Text),
            ("wording", Text),
            ("at", Time),
        ],
    ),
    (
        "audit_log",
        &[
            ("id", Int),
            ("case_id", Int),
            ("actor", Text),
            ("action", Text),
            ("detail", Text),
            ("at", Time),
        ],
    ),
    (
        "case_posts",
        &[
            ("case_id", Int),
            ("hub_id", Text),
            ("transport", Text),
            ("channel_id", Text),
            ("message_id", Text),
            ("thread_id", Text),
            ("created_at", Time),
        ],
    ),
    (
        "live_prompts",
        &[
            ("user_key", Text),
            ("session_id", Int),
            ("node", Text),
            ("channel_id", Text),
            ("message_id", Text),
            ("data", Text),
            ("updated_at", Time),
        ],
    ),
    (
        "forward_requests",
        &[
            ("id", Int),
            ("case_id", Int),
            ("user_key", Text),
            ("to_hub", Text),
            ("reason", Text),
            ("requested_by", Text),
            ("status", Text),
            ("created_at", Time),
            ("decided_at", Time),
        ],
    ),
    (
        "relay_messages",
        &[
            ("id", Int),
            ("case_id", Int),
            ("user_key", Text),
            ("direction", Text),
            ("channel_id", Text),
            ("message_id", Text),
            ("at", Time),
        ],
    ),
    (
        "timers",
        &[
            ("id", Int),
            ("kind", Text),
            ("subject", Text),
            ("case_id", Int),
            ("due_at", Time),
            ("payload", Text),
            ("status", Text),
            ("holder", Text),
            ("lease_until", Time),
            ("attempts", Int),
            ("note", Text),
            ("created_at", Time),
            ("done_at", Time),
        ],
    ),
    (
        "reasks",
        &[
            ("id", Int),
            ("session_id", Int),
            ("node", Text),
            ("ix", Int),
            ("at", Time),
        ],
    ),
    ("admin_posts", &[("key", Text), ("claimed_at", Time)]),
    (
        "relays",
        &[
            ("id", Int),
            ("case_id", Int),
            ("user_key", Text),
            ("kind", Text),
            ("transport", Text),
            ("target", Text),
            ("body", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Time),
            ("last_error", Text),
            ("message_ids", Text),
            ("lease_owner", Text),
            ("lease_until", Time),
            ("created_at", Time),
            ("delivered_at", Time),
        ],
    ),
    (
        "follow_ups",
        &[
            ("id", Int),
            ("case_id", Int),
            ("user_key", Text),
            ("seq", Int),
            ("due_at", Time),
            ("status", Text),
            ("session_id", Int),
            ("answer_case", Int),
            ("offered_at", Time),
            ("reminded_at", Time),
            ("decided_at", Time),
            ("updated_at", Time),
        ],
    ),
];

/// The tables the copy knows and their columns, for the test that keeps
/// this list in step with the migrations.
pub fn copied_columns() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLES
        .iter()
        .map(|(t, cols)| (*t, cols.iter().map(|(c, _)| *c).collect()))
        .collect()
}

/// Rows copied per statement: one array per column, bound once.
const CHUNK: i64 = 2000;

/// How many rows of each table were copied (equal in both databases; the
/// copy checks that before it commits).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    pub tables: Vec<(String, i64)>,
}

/// One column's values of a chunk, as PostgreSQL arrays.
enum Column {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Bool(Vec<Option<bool>>),
}

/// Copies every row of `from` into `to`, whose tables must be empty, in
/// one PostgreSQL transaction: a failure leaves `to` as it was. `from` is
/// read in one read transaction, so a bot still writing to it meanwhile
/// does not make the copy inconsistent (what it writes after the copy
/// began is not copied). The row count of each table is compared in both
/// databases before the commit.
pub async fn sqlite_to_postgres(from: &SqliteStore, to: &PostgresStore) -> Result<CopyReport> {
    let mut src = from.pool().begin().await?;
    let mut dst = to.pool().begin().await?;
    for (table, _) in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *dst)
            .await?;
        if n > 0 {
            return Err(StoreError::Conflict(format!(
                "the target database already holds {n} rows in `{table}`; copy into an empty database (a new one, or drop its tables)"
            )));
        }
    }
    let mut report = CopyReport::default();
    for (table, cols) in TABLES {
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let select = format!(
            "SELECT rowid AS copy_rowid, {} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {CHUNK}",
            names.join(", ")
        );
        let casts: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, (_, k))| {
                let ty = match k {
                    Int => "int8",
                    Text => "text",
                    Time => "timestamptz",
                    Bool => "bool",
                };
                format!("${}::{ty}[]", i + 1)
            })
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({}) SELECT * FROM unnest({})",
            names.join(", "),
            casts.join(", ")
        );
        let mut last = 0i64;
        let mut copied = 0i64;
        loop {
            let rows = sqlx::query(&select).bind(last).fetch_all(&mut *src).await?;
            if rows.is_empty() {
                break;
            }
            let mut columns: Vec<Column> = cols
                .iter()
                .map(|(_, k)| match k {
                    Int => Column::Int(Vec::with_capacity(rows.len())),
                    Text => Column::Text(Vec::with_capacity(rows.len())),
                    Time => Column::Time(Vec::with_capacity(rows.len())),
                    Bool => Column::Bool(Vec::with_capacity(rows.len())),
                })
                .collect();
            for r in &rows {
                last = r.try_get("copy_rowid")?;
                for (col, (name, _)) in columns.iter_mut().zip(cols.iter()) {
                    match col {
                        Column::Int(v) => v.push(r.try_get(*name)?),
                        Column::Text(v) => v.push(r.try_get(*name)?),
                        Column::Time(v) => {
                            v.push(r.try_get(*name).map_err(|e| StoreError::Corrupt {
                                what: "a time in the SQLite database",
                                detail: format!("{table}.{name}: {e}"),
                            })?)
                        }
                        Column::Bool(v) => {
                            v.push(r.try_get::<Option<i64>, _>(*name)?.map(|b| b != 0))
                        }
                    }
                }
            }
            let mut q = sqlx::query(&insert);
            for col in &columns {
                q = match col {
                    Column::Int(v) => q.bind(v),
                    Column::Text(v) => q.bind(v),
                    Column::Time(v) => q.bind(v),
                    Column::Bool(v) => q.bind(v),
                };
            }
            q.execute(&mut *dst).await?;
            copied += rows.len() as i64;
        }
        // New rows on PostgreSQL take ids after the copied ones.
        if names.contains(&"id") {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(&mut *dst)
            .await?;
        }
        let in_src: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *src)
            .await?;
        let in_dst: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *dst)
            .await?;
        if in_src != copied || in_dst != copied {
            return Err(StoreError::Conflict(format!(
                "`{table}`: {in_src} rows in the source, {copied} copied, {in_dst} in the target; nothing was committed"
            )));
        }
        report.tables.push((table.to_string(), copied));
    }
    dst.commit().await?;
    src.rollback().await?;
    Ok(report)
}

/// Writes a consistent copy of the live SQLite database to `out` with
/// `VACUUM INTO`: one read transaction, so the copy is the database as of
/// one moment while the bot keeps writing, and compact. Refuses to write
/// over an existing file.
pub async fn backup_sqlite(from: &SqliteStore, out: &std::path::Path) -> Result<()> {
    if out.exists() {
        return Err(StoreError::Conflict(format!(
            "{} already exists; choose a new file name (a backup never writes over a file)",
            out.display()
        )));
    }
    let path = out.to_str().ok_or_else(|| {
        StoreError::Conflict(format!(
            "{} is not valid UTF-8; choose a plain file name",
            out.display()
        ))
    })?;
    sqlx::query("VACUUM INTO ?")
        .bind(path)
        .execute(from.pool())
        .await?;
    // SQLite writes the copy without syncing it; a backup that a power cut
    // can lose is no backup.
    let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
    sync(out)
        .and_then(
            |_| match out.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) => sync(dir),
                None => sync(std::path::Path::new(".")),
            },
        )
        .map_err(|e| {
            StoreError::Conflict(format!(
                "the backup {} was written but could not be flushed to disk: {e}",
                out.display()
            ))
        })?;
    Ok(())
}
