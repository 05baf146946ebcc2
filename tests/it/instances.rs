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
async fn fresh_database(test: &str) -> Option<String> {
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
