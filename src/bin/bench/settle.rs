//! What the chat-platform benchmarks (Discord, Slack) both do after the
//! owners' last turns: cases are posted by the outbox after the turn that
//! made them, so the figures wait (bounded) until every delivery is done
//! and the stand-in's calls settle, then check that each consultation made
//! one case.

use anyhow::{bail, Result};
use madoguchi::store::sqlite::SqliteStore;
use std::time::{Duration, Instant};

/// Waits for the deliveries and the calls (`calls` counts the stand-in's
/// calls so far) to settle, checks one case per consultation, and returns
/// the number of deliveries made.
pub async fn settle_deliveries(
    store: &SqliteStore,
    calls: impl Fn() -> usize,
    consultations: usize,
) -> Result<i64> {
    let settle_deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (usize::MAX, Instant::now());
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status != 'delivered'")
                .fetch_one(store.pool())
                .await
                .unwrap_or(-1);
        let n = calls();
        if n != last.0 {
            last = (n, Instant::now());
        }
        if pending == 0 && last.1.elapsed() > Duration::from_millis(300) {
            break;
        }
        if Instant::now() > settle_deadline {
            bail!("deliveries still pending after 60 s ({pending})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
        .fetch_one(store.pool())
        .await?;
    let delivered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
            .fetch_one(store.pool())
            .await?;
    if cases != consultations as i64 {
        bail!("{cases} cases for {consultations} consultations");
    }
    Ok(delivered)
}
