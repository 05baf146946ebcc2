//! Two instances on one PostgreSQL database: the leader lock passes to the
//! standby when the leader dies or loses its connection; and the health
//! endpoint answers as a supervisor expects.

use madoguchi::instances::{serve_health, Health, LeaderLock, CHECK_EVERY};
use madoguchi::store::postgres::{test_url, unique_schema};
use madoguchi::store::sqlite::SqliteStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A database of its own on the test server: advisory locks are per
/// database, and other tests must not see this one's.
pub(crate) async fn fresh_database(test: &str) -> Option<String> {
    let url = test_url(test)?;
    let name = unique_schema(test);
    let mut admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let _ = &mut admin;
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap();
    Some(format!("{base}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_the_lock_when_the_leader_dies_or_is_cut_off() {
    let Some(url) = fresh_database("leader_lock").await else {
        return;
    };
    let mut a = LeaderLock::try_acquire(&url)
        .await
        .unwrap()
        .expect("the first instance leads");
    a.check().await.unwrap();
    assert!(
        LeaderLock::try_acquire(&url).await.unwrap().is_none(),
        "a second instance is a standby while the first leads"
    );

    // The leader process dies: its connection closes. The standby, trying
    // every CHECK_EVERY, leads within two tries.
    let standby = tokio::spawn({
        let url = url.clone();
        async move { LeaderLock::acquire(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!standby.is_finished(), "no takeover while the leader lives");
    let died = Instant::now();
    drop(a);
    let mut b = tokio::time::timeout(Duration::from_secs(15), standby)
        .await
        .expect("the standby takes over within 15 s")
        .unwrap();
    let took = died.elapsed();
    assert!(took <= CHECK_EVERY * 2 + Duration::from_secs(1), "{took:?}");
    eprintln!("takeover after the leader's connection closed: {took:?}");
    b.check().await.unwrap();

    // The leader is cut off from the server (its backend ends): its next
    // check fails, which is when `madoguchi run` stops the gateway, and
    // the lock is free for a standby.
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'madoguchi leader lock' AND datname = current_database()",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(killed, 1);
    let lost = tokio::time::timeout(Duration::from_secs(10), b.lost())
        .await
        .expect("the loss is noticed within a check");
    eprintln!("leader noticed: {lost}");
    let c = LeaderLock::try_acquire(&url).await.unwrap();
    assert!(c.is_some(), "the lock is free again");
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_endpoint_says_alive_ready_and_who_leads() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("h.db")).await.unwrap();
    let health = Health::new(Arc::new(store.clone()), "sqlite");
    let (addr, task) = serve_health(health.clone(), 0).await.unwrap();
    assert!(addr.ip().is_loopback(), "{addr}");

    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".into()));
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"ready": true, "leader": false, "backend": "sqlite"})
    );
    assert_eq!(get(addr, "/leader").await.0, 503);
    health.set_leader(true);
    assert_eq!(get(addr, "/leader").await, (200, "leader\n".into()));

    // The database stops answering: not ready, though still alive.
    store.pool().close().await;
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(get(addr, "/healthz").await.0, 200);
    task.abort();
}

/// After a failed fsync the SQLite store writes nothing more until it is
/// opened again: `/readyz` says so (503, with what to do), and the
/// watcher `madoguchi run` stops on returns with the same error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stopped_writing_is_not_ready_and_says_why() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    // Made first, so that the store finds a file and syncs its WAL.
    drop(SqliteStore::open(&path).await.unwrap());
    let (fail, sync) = crate::support::failing_fsync();
    let store: Arc<dyn madoguchi::store::Store> =
        Arc::new(SqliteStore::open_with_wal_sync(&path, sync).await.unwrap());
    let health = Health::new(store.clone(), "sqlite");
    let (addr, task) = serve_health(health.clone(), 0).await.unwrap();
    let runner = Runner::new(
        store.clone(),
        Arc::new(FixedClock::new(crate::support::t0())),
        load_dir(&crate::support::dialogs_dir()).unwrap(),
        RunnerConfig::default(),
    )
    .await
    .unwrap();
    let owner = UserKey::new(Transport::Terminal, "disk-owner").unwrap();
    runner
        .handle(&owner, Input::Text("こんにちは".into()), Some(Lang::Ja))
        .await
        .expect("a step while the disk works");
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert!(store.write_failure().is_none());
    let note = serde_json::json!({"note": "before the failure"});
    store
        .append_audit(None, "staff:disk", "note", &note, crate::support::t0())
        .await
        .expect("a staff write while the disk works");

    fail.store(true, Ordering::SeqCst);
    let e = runner
        .handle(&owner, Input::Text("はい".into()), Some(Lang::Ja))
        .await
        .expect_err("the step's fsync failed");
    assert!(
        matches!(
            e,
            madoguchi::runner::RunError::Store(madoguchi::store::StoreError::WriteFailed(_))
        ),
        "{e}"
    );
    // The disk works again, but nothing proves the failed batch reached
    // it: the store still refuses until it is opened anew.
    fail.store(false, Ordering::SeqCst);
    let e = runner
        .handle(&owner, Input::Text("はい".into()), Some(Lang::Ja))
        .await
        .expect_err("refused after the failure");
    assert!(e.to_string().contains("restart"), "{e}");
    // Nor is anything else written, whoever asks: a staff member's action
    // or an owner's request to delete their data would be acknowledged
    // from a WAL that a restart may cut short before them.
    let refused = |r: Result<(), madoguchi::store::StoreError>, what: &str| match r {
        Err(madoguchi::store::StoreError::WriteFailed(m)) => {
            assert!(m.contains("injected write error"), "{what}: {m}")
        }
        other => panic!("{what} after a failed fsync: {other:?}"),
    };
    refused(
        store
            .append_audit(None, "staff:disk", "note", &note, crate::support::t0())
            .await,
        "a staff write",
    );
    refused(
        store
            .forget_user(&owner, crate::support::t0())
            .await
            .map(|_| ()),
        "deleting an owner's data",
    );
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], false);
    let why = v["error"].as_str().unwrap();
    assert!(
        why.contains("injected write error") && why.contains("restart madoguchi"),
        "{why}"
    );
    assert_eq!(get(addr, "/healthz").await.0, 200, "alive all the same");
    let stop = tokio::time::timeout(
        Duration::from_secs(10),
        madoguchi::store::until_write_failure(store.as_ref(), Duration::from_millis(10)),
    )
    .await
    .expect("the watcher sees the failure");
    assert!(stop.to_string().contains("injected write error"), "{stop}");
    task.abort();
}

// ───────────── cross-instance signals and serial turns ─────────────

use crate::support::db::TestDb;
use madoguchi::domain::ids::{Transport, UserKey};
use madoguchi::engine::Input;
use madoguchi::instances::follow_signals;
use madoguchi::runner::{FixedClock, Runner, RunnerConfig};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::postgres::PostgresStore;

/// One instance: its own pool to the shared database and its own runner
/// (session cache and group commit on, as `madoguchi run` has them).
async fn instance(db: &TestDb, dialogs: &std::path::Path) -> (Arc<Runner>, PostgresStore) {
    let crate::support::db::AnyStore::Postgres(store) = db.open().await else {
        unreachable!("a PostgreSQL test database")
    };
    let runner = Runner::new(
        Arc::new(store.clone()),
        Arc::new(FixedClock::new(crate::support::t0())),
        load_dir(dialogs).unwrap(),
        RunnerConfig::default(),
    )
    .await
    .unwrap();
    (Arc::new(runner), store)
}

/// Two dialogs folders with the shipped dialogs (one per host).
fn two_hosts() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        crate::support::copy_dialogs(d);
    }
    (tmp, a, b)
}

const OLD_Q: &str = "会社名（屋号）を教えてください。";

/// An edit on host A's folder only: the first question's wording.
fn edit_on_a(a: &std::path::Path, from: &str, to: &str) {
    let f = a.join("first_contact.ja.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains(from), "update this test's edit");
    crate::support::write_atomically(&f, &text.replacen(from, to, 1));
}

fn current(r: &Runner) -> String {
    r.bundle()
        .flow("first_contact", Lang::Ja)
        .unwrap()
        .version
        .clone()
}

/// Waits (generously: the bound is not what is tested) until `b` serves
/// version `want`.
async fn reaches(b: &Runner, want: &str) -> Duration {
    let t = Instant::now();
    while current(b) != want {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the other instance still serves {} instead of {want}",
            current(b)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

/// After the follow-up, a new owner on B starts on A's new version, and
/// the new wording is what B asks.
async fn b_serves_the_edit(b: &Runner, want: &str) {
    // A new owner each time (several instances share the database).
    let who = UserKey::new(Transport::Terminal, &format!("new-{}", &want[..12])).unwrap();
    let turn = b.handle(&who, Input::Start, Some(Lang::Ja)).await.unwrap();
    assert_eq!(turn.flow.version, want);
    let s = b.store().open_session(&who).await.unwrap().unwrap();
    assert_eq!(s.version, want, "the session is pinned to A's new version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_one_instance_reaches_the_other_by_notify() {
    let Some(db) = TestDb::postgres("reload_notify") else {
        return;
    };
    let (_tmp, dir_a, dir_b) = two_hosts();
    let (a, _) = instance(&db, &dir_a).await;
    let (b, store_b) = instance(&db, &dir_b).await;
    let before = current(&b);
    assert_eq!(current(&a), before);
    // Polling is an hour away: only the notification can bring it.
    let follower = follow_signals(
        b.clone(),
        Some(store_b.listener().await.unwrap()),
        Duration::from_secs(3600),
    )
    .await;
    edit_on_a(&dir_a, OLD_Q, "貴社の正式な会社名を教えてください。");
    let rep = a.reload(&dir_a, "admin:test").await.unwrap();
    assert_eq!(rep.changed.len(), 1, "{:?}", rep.changed);
    let new = current(&a);
    assert_ne!(new, before);
    let took = reaches(&b, &new).await;
    eprintln!("reload reached the other instance by NOTIFY after {took:?}");
    b_serves_the_edit(&b, &new).await;
    // B's own folder was not touched: it serves A's version from the store.
    assert_eq!(
        load_dir(&dir_b)
            .unwrap()
            .flow("first_contact", Lang::Ja)
            .unwrap()
            .version,
        before
    );
    follower.abort();
}

/// An instance that starts after another one reloaded serves the reloaded
/// versions (read from the database), not its host's older files; an
/// instance whose host has files newer than the reload keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_after_a_reload_serves_the_reloaded_versions() {
    let Some(db) = TestDb::postgres("reload_at_start") else {
        return;
    };
    let (tmp, dir_a, dir_b) = two_hosts();
    let (a, _) = instance(&db, &dir_a).await;
    let before = current(&a);
    edit_on_a(&dir_a, OLD_Q, "貴社の正式な会社名を教えてください。");
    a.reload(&dir_a, "admin:test").await.unwrap();
    let new = current(&a);
    assert_ne!(new, before);
    // B starts only now, with the old files on its host and no
    // notification to wake it: what it serves comes from the database.
    let (b, _) = instance(&db, &dir_b).await;
    assert_eq!(current(&b), before, "a runner alone serves its folder");
    let follower = follow_signals(b.clone(), None, Duration::from_secs(3600)).await;
    assert_eq!(current(&b), new, "B serves A's reload from the start");
    b_serves_the_edit(&b, &new).await;
    follower.abort();

    // C's host got newer files after the reload (a deployment, then a
    // restart an hour later): they are newer than the reload and kept.
    let dir_c = tmp.path().join("c");
    std::fs::create_dir(&dir_c).unwrap();
    crate::support::copy_dialogs(&dir_c);
    edit_on_a(&dir_c, OLD_Q, "会社の名前をお聞かせください。");
    let crate::support::db::AnyStore::Postgres(store_c) = db.open().await else {
        unreachable!("a PostgreSQL test database")
    };
    let c = Arc::new(
        Runner::new(
            Arc::new(store_c),
            Arc::new(FixedClock::new(
                crate::support::t0() + chrono::Duration::hours(1),
            )),
            load_dir(&dir_c).unwrap(),
            RunnerConfig::default(),
        )
        .await
        .unwrap(),
    );
    let deployed = current(&c);
    assert!(deployed != new && deployed != before);
    let follower = follow_signals(c.clone(), None, Duration::from_secs(3600)).await;
    assert_eq!(current(&c), deployed, "C keeps its newer folder");
    follower.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_whose_notification_is_missed_arrives_by_polling() {
    let Some(db) = TestDb::postgres("reload_poll") else {
        return;
    };
    let (_tmp, dir_a, dir_b) = two_hosts();
    let (a, _) = instance(&db, &dir_a).await;
    let (b, store_b) = instance(&db, &dir_b).await;
    // B's listener is connected, but its connection is cut while A
    // reloads: the notification goes nowhere. B reads the audit log when
    // it notices the loss, and at its next poll.
    let follower = follow_signals(
        b.clone(),
        Some(store_b.listener().await.unwrap()),
        Duration::from_millis(500),
    )
    .await;
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(store_b.pool())
    .await
    .unwrap();
    assert!(cut >= 1, "B's listener connection was found and cut");
    edit_on_a(&dir_a, OLD_Q, "貴社の正式な会社名を教えてください。");
    a.reload(&dir_a, "admin:test").await.unwrap();
    let new = current(&a);
    let took = reaches(&b, &new).await;
    eprintln!("missed notification: the reload reached the other instance after {took:?}");
    b_serves_the_edit(&b, &new).await;
    follower.abort();

    // And with no listener at all (it could not connect), polling alone.
    let (c, _) = instance(&db, &dir_b).await;
    let follower = follow_signals(c.clone(), None, Duration::from_millis(300)).await;
    assert_eq!(
        current(&c),
        new,
        "C started after A's reload: it serves that reload, not its older folder"
    );
    // C follows reloads recorded after it started: A edits again.
    edit_on_a(&dir_a, "貴社の正式な会社名を", "御社の正式な会社名を");
    a.reload(&dir_a, "admin:test").await.unwrap();
    let third = current(&a);
    assert!(third != new && third != current(&c));
    reaches(&c, &third).await;
    b_serves_the_edit(&c, &third).await;
    follower.abort();
}

/// Two instances answer the same owners at the same moment (an owner's
/// messages reaching both, or a takeover mid-turn). Each runner holds the
/// owner's session in its cache; every write is checked against the
/// revision it was computed from, so the one computed on a state the other
/// instance has since changed is refused and run again on the stored
/// state. Nothing acknowledged is lost, nothing is recorded twice, and the
/// answers fill the questions one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_turns_stay_serial_across_two_runners() {
    let Some(db) = TestDb::postgres("serial_turns") else {
        return;
    };
    // The benchmark script: 20 questions that take any number.
    let dialogs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/dialogs");
    let open = |db: TestDb| {
        let dialogs = dialogs.clone();
        async move {
            let crate::support::db::AnyStore::Postgres(store) = db.open().await else {
                unreachable!()
            };
            Arc::new(
                Runner::new(
                    Arc::new(store),
                    Arc::new(FixedClock::new(crate::support::t0())),
                    load_dir(&dialogs).unwrap(),
                    RunnerConfig {
                        script_id: "bench".into(),
                        ..RunnerConfig::default()
                    },
                )
                .await
                .unwrap(),
            )
        }
    };
    let (a, b) = (open(db.clone()).await, open(db.clone()).await);
    const OWNERS: usize = 12;
    const EACH: usize = 10; // 2 × 10 answers: the script's 20 questions
    let owners: Vec<UserKey> = (0..OWNERS)
        .map(|i| UserKey::new(Transport::Terminal, &format!("both-{i}")).unwrap())
        .collect();
    for o in &owners {
        // Both runners' caches hold the session before the race.
        a.handle(o, Input::Start, Some(Lang::Ja)).await.unwrap();
        b.handle(o, Input::Resume, Some(Lang::Ja)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for (i, o) in owners.iter().enumerate() {
        for (side, r) in [(1usize, a.clone()), (2, b.clone())] {
            let o = o.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut refused = 0;
                for k in 0..EACH {
                    let v = format!("{side}{i:02}{k:02}");
                    match r.handle(&o, Input::Text(v.clone()), Some(Lang::Ja)).await {
                        Ok(_) => acked.push(v),
                        // Refused after its retries: not acknowledged, so
                        // the owner would send it again; it must not be
                        // stored.
                        Err(e) => {
                            eprintln!("refused: {e}");
                            refused += 1;
                        }
                    }
                }
                (i, acked, refused)
            }));
        }
    }
    let mut acked: Vec<Vec<String>> = vec![Vec::new(); OWNERS];
    let mut refused = 0;
    for t in tasks {
        let (i, v, r) = t.await.unwrap();
        acked[i].extend(v);
        refused += r;
    }
    let store = a.store();
    let mut interleaved = 0;
    for (i, o) in owners.iter().enumerate() {
        let sessions = store.sessions_of_user(o).await.unwrap();
        assert_eq!(sessions.len(), 1, "one consultation, not two");
        let log = store.answers(sessions[0].id).await.unwrap();
        let stored: Vec<&str> = log.iter().map(|r| r.raw.as_str()).collect();
        let mut got = stored.clone();
        got.sort_unstable();
        let mut want: Vec<&str> = acked[i].iter().map(|s| s.as_str()).collect();
        want.sort_unstable();
        assert_eq!(
            got, want,
            "owner {i}: exactly the acknowledged answers, each once"
        );
        let mut nodes: Vec<&str> = log.iter().map(|r| r.node.as_str()).collect();
        let n = nodes.len();
        nodes.sort_unstable();
        nodes.dedup();
        assert_eq!(
            nodes.len(),
            n,
            "owner {i}: no question answered twice: {stored:?}"
        );
        // Each side's answers are stored in the order it sent them.
        for side in ['1', '2'] {
            let mine: Vec<&&str> = stored.iter().filter(|v| v.starts_with(side)).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{stored:?}");
        }
        // A switch from one instance's answers to the other's means the
        // other's cached state had gone stale and its write was refused.
        interleaved += stored
            .windows(2)
            .filter(|w| w[0].as_bytes()[0] != w[1].as_bytes()[0])
            .count();
        if i == 0 {
            eprintln!("owner 0: {stored:?}");
        }
        // The answers filled the questions one after the other: q01 to
        // q{n}, and the stored session waits at the next one.
        let want_nodes: Vec<String> = (1..=n).map(|q| format!("q{q:02}")).collect();
        assert_eq!(nodes, want_nodes, "owner {i}: {stored:?}");
        let s = store.session(sessions[0].id).await.unwrap().unwrap();
        if n < 20 {
            assert_eq!(s.current_node, format!("q{:02}", n + 1), "owner {i}");
        }
    }
    eprintln!(
        "{OWNERS} owners × 2 runners × {EACH}: {} acknowledged, {refused} refused after retries, {interleaved} switches between runners",
        acked.iter().map(Vec::len).sum::<usize>()
    );
    assert!(
        interleaved >= OWNERS,
        "the two runners' turns interleaved (else nothing was tested)"
    );
}
