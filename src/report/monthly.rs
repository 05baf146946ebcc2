//! The monthly KPI summary for the administrators' channel: once per month
//! (Japan time), for the month before, decided with the injected clock and
//! remembered in the store, so a restart or a second instance does not post
//! it again.

use super::render::{self, Lang};
use super::{Network, Params};
use crate::store::Store;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

/// The last complete month before `now` (Japan time): its first and last
/// day.
pub fn previous_month(now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let today = (now + Duration::hours(9)).date_naive();
    let first_this = NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .expect("the first of a month exists");
    let last_prev = first_this - Duration::days(1);
    let first_prev = NaiveDate::from_ymd_opt(last_prev.year(), last_prev.month(), 1)
        .expect("the first of a month exists");
    (first_prev, last_prev)
}

/// The key under which a month's post is remembered.
pub fn key(month_first: NaiveDate) -> String {
    format!("kpi-summary:{}", month_first.format("%Y-%m"))
}

/// Posts last month's summary unless it was posted already. `post` sends
/// the text and says whether it arrived; when it did not, the claim is
/// given back so the next tick tries again. Returns the key posted.
pub async fn tick<F, Fut>(
    store: &dyn Store,
    net: &Network,
    now: DateTime<Utc>,
    lang: Lang,
    post: F,
) -> crate::store::Result<Option<String>>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (from, to) = previous_month(now);
    let k = key(from);
    if !store.claim_admin_post(&k, now).await? {
        return Ok(None);
    }
    let params = Params {
        from,
        to,
        hub: None,
        now,
    };
    let report = match super::build(store, &params, net).await {
        Ok(r) => r,
        Err(e) => {
            store.release_admin_post(&k).await?;
            return Err(e);
        }
    };
    if post(render::summary(&report, lang)).await {
        Ok(Some(k))
    } else {
        store.release_admin_post(&k).await?;
        Ok(None)
    }
}
