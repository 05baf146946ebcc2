//! Moving up from SQLite: `store copy` into PostgreSQL and `backup` keep
//! everything, checked by reading both databases through the `Store` trait
//! after the shared store story (and some live consultations) wrote them.

use crate::store_story::story;
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::engine::Input;
use madoguchi::render::RenderMode;
use madoguchi::runner::{Runner, RunnerConfig, RunnerOptions, SystemClock};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::copy::{backup_sqlite, copied_columns, sqlite_to_postgres};
use madoguchi::store::postgres::{test_url, unique_schema, PostgresStore};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::{Store, StoreError};
use std::path::Path;
use std::sync::Arc;

/// The story, then owners part-way through real consultations (open
/// sessions with answer logs, one restarted).
async fn fill(store: &SqliteStore) {
    story(store).await;
    let bundle = load_dir(Path::new("benches/dialogs")).unwrap();
    let config = RunnerConfig {
        script_id: "bench".into(),
        default_lang: Lang::Ja,
        transports: vec!["local".into()],
        mode: RenderMode::Plain,
    };
    let runner = Runner::with_options(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        bundle,
        config,
        RunnerOptions::default(),
    )
    .await
    .unwrap();
    for i in 0..5 {
        let user = UserKey::new(Transport::Terminal, &format!("mover-{i}")).unwrap();
        runner
            .handle(&user, Input::Text("こんにちは".into()), None)
            .await
            .unwrap();
        for q in 0..(3 + i * 4) {
            runner
                .handle(&user, Input::Text(answer(q + 1)), None)
                .await
                .unwrap();
        }
    }
}

/// A valid answer to question `q` of the bench script (as in group_commit).
fn answer(q: usize) -> String {
    if q % 5 == 0 {
        format!("{}", q * 1000 + 7)
    } else {
        format!("質問{q}への回答です")
    }
}

async fn strings(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
}

/// Everything the bot can read back, as text: every owner's sessions with
/// their answers, cases with deliveries, posts and history, consents,
/// relayed messages, live prompts, forward requests, versions, the audit
/// log and the outbox. The owners, cases and requests to ask about are
/// taken from the source database.
async fn reads(store: &dyn Store, source: &sqlx::SqlitePool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let users = strings(
        source,
        "SELECT user_key FROM sessions UNION SELECT user_key FROM cases UNION SELECT user_key FROM consents
         UNION SELECT user_key FROM live_prompts UNION SELECT user_key FROM relay_messages ORDER BY 1",
    )
    .await;
    assert!(users.len() >= 7, "the data to compare is there: {users:?}");
    for u in &users {
        let u = UserKey::parse(u).unwrap();
        for s in store.sessions_of_user(&u).await.unwrap() {
            writeln!(out, "{s:?}\n  {:?}", store.answers(s.id).await.unwrap()).unwrap();
        }
        writeln!(out, "{:?}", store.cases_of_user(&u).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.consents(&u).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.relay_messages_of_user(&u).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.live_prompt(&u).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.session_to_resume(&u).await.unwrap()).unwrap();
    }
    let cases: Vec<i64> = sqlx::query_scalar("SELECT id FROM cases ORDER BY id")
        .fetch_all(source)
        .await
        .unwrap();
    for c in cases {
        let c = CaseId(c);
        writeln!(out, "{:?}", store.case(c).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.deliveries(c).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.case_posts(c).await.unwrap()).unwrap();
        writeln!(out, "{:?}", store.audit(Some(c)).await.unwrap()).unwrap();
    }
    let requests: Vec<i64> = sqlx::query_scalar("SELECT id FROM forward_requests ORDER BY id")
        .fetch_all(source)
        .await
        .unwrap();
    for r in requests {
        writeln!(out, "{:?}", store.forward_request(r).await.unwrap()).unwrap();
    }
    for v in strings(source, "SELECT version FROM script_versions ORDER BY 1").await {
        writeln!(out, "{:?}", store.load_version(&v).await.unwrap()).unwrap();
    }
    writeln!(out, "{:?}", store.versions_in_use().await.unwrap()).unwrap();
    writeln!(out, "{:?}", store.open_sessions().await.unwrap()).unwrap();
    writeln!(out, "{:?}", store.audit(None).await.unwrap()).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(3650);
    for t in ["discord", "local"] {
        writeln!(
            out,
            "{:?}",
            store.due_deliveries(t, later, 1000).await.unwrap()
        )
        .unwrap();
    }
    writeln!(
        out,
        "{:?}",
        store
            .cases(&madoguchi::store::CaseFilter::default())
            .await
            .unwrap()
    )
    .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_copied_to_postgres_reads_the_same() {
    let Some(url) = test_url("sqlite_copied_to_postgres_reads_the_same") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("from.db"))
        .await
        .unwrap();
    fill(&sqlite).await;
    let schema = unique_schema("copy");
    let pg = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
    let report = sqlite_to_postgres(&sqlite, &pg).await.unwrap();
    // Every table is named, with the rows the source has.
    assert_eq!(report.tables.len(), copied_columns().len());
    for (table, n) in &report.tables {
        let want: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(sqlite.pool())
            .await
            .unwrap();
        assert_eq!(*n, want, "{table}");
    }
    let answers = report
        .tables
        .iter()
        .find(|(t, _)| t == "answers")
        .unwrap()
        .1;
    assert!(
        answers > 30,
        "the consultations' answers were copied: {answers}"
    );

    // PostgreSQL keeps times to the microsecond; SQLite's text keeps the
    // nanoseconds of the system clock. Both sides are written with exactly
    // six fractional digits (chrono's Debug drops trailing zeros, so a time
    // that falls on a whole millisecond prints `.706Z` from PostgreSQL and
    // `.706000123Z` from SQLite). The rest must be the same.
    let fraction = regex::Regex::new(r"(:\d{2})(?:\.(\d+))?Z").unwrap();
    let to_micros = |s: String| {
        fraction
            .replace_all(&s, |c: &regex::Captures| {
                let digits = c.get(2).map_or("", |m| m.as_str());
                let six: String = digits
                    .chars()
                    .chain(std::iter::repeat('0'))
                    .take(6)
                    .collect();
                format!("{}.{six}Z", &c[1])
            })
            .into_owned()
    };
    pretty_assertions::assert_eq!(
        to_micros(reads(&sqlite, sqlite.pool()).await),
        to_micros(reads(&pg, sqlite.pool()).await)
    );

    // The copy goes on where the source left off: new rows take ids after
    // the copied ones, and a consultation continues on PostgreSQL.
    let max_audit: i64 = sqlx::query_scalar("SELECT MAX(id) FROM audit_log")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    pg.append_audit(
        None,
        "test",
        "after-copy",
        &serde_json::json!({}),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let last = pg.audit(None).await.unwrap().pop().unwrap();
    assert_eq!(last.action, "after-copy");
    assert!(last.id > max_audit);

    // A second copy into a database that has data is refused, and writes
    // nothing.
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    let again = sqlite_to_postgres(&sqlite, &pg).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("empty database")),
        "{again:?}"
    );
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert_eq!(before, after);
}

/// The copy's list of tables and columns is the schema of both backends,
/// so a migration that adds a column cannot be forgotten by `store copy`.
#[tokio::test]
async fn the_copy_knows_every_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("cols.db"))
        .await
        .unwrap();
    let mut want: Vec<(String, Vec<String>)> = copied_columns()
        .into_iter()
        .map(|(t, c)| {
            let mut c: Vec<String> = c.into_iter().map(String::from).collect();
            c.sort();
            (t.to_string(), c)
        })
        .collect();
    want.sort();
    let tables: Vec<String> = strings(
        sqlite.pool(),
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .await;
    let mut got = Vec::new();
    for t in tables {
        let mut cols = strings(
            sqlite.pool(),
            &format!("SELECT name FROM pragma_table_info('{t}')"),
        )
        .await;
        cols.sort();
        got.push((t, cols));
    }
    assert_eq!(got, want, "SQLite");
    let Some(url) = test_url("the_copy_knows_every_table_and_column (PostgreSQL half)") else {
        return;
    };
    let schema = unique_schema("cols");
    let pg = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = $1 AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1, 2",
    )
    .bind(&schema)
    .fetch_all(pg.pool())
    .await
    .unwrap();
    let mut got: Vec<(String, Vec<String>)> = Vec::new();
    for (t, c) in rows {
        match got.last_mut() {
            Some((last, cols)) if *last == t => cols.push(c),
            _ => got.push((t, vec![c])),
        }
    }
    assert_eq!(got, want, "PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_reads_the_same_and_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("live.db"))
        .await
        .unwrap();
    fill(&sqlite).await;
    let out = dir.path().join("backup.db");
    backup_sqlite(&sqlite, &out).await.unwrap();
    let copy = SqliteStore::open(&out).await.unwrap();
    pretty_assertions::assert_eq!(
        reads(&sqlite, sqlite.pool()).await,
        reads(&copy, sqlite.pool()).await
    );
    let again = backup_sqlite(&sqlite, &out).await;
    assert!(
        matches!(&again, Err(StoreError::Conflict(m)) if m.contains("already exists")),
        "{again:?}"
    );
}
