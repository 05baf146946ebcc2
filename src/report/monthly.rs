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

/// The file the summary of the month starting `month_first` is written to
/// in the local inbox when no chat platform takes it:
/// `INBOX/admin/summary-YYYY-MM.md` (this is the part under `INBOX/admin`).
pub fn inbox_file_name(month_first: NaiveDate) -> String {
    format!("summary-{}.md", month_first.format("%Y-%m"))
}

/// One month's summary, decided for every platform alike: which month,
/// the key it is remembered under, and the text (network aggregates only,
/// no owner's personal data). Each platform only sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPost {
    /// The file it becomes in the local inbox's `admin/` folder when no
    /// chat platform's admin channel takes it.
    pub file: String,
    /// The key of [`crate::store::Store::claim_admin_post`].
    pub key: String,
    pub text: String,
}

/// The summary of the month before `now` from its report (pure).
pub fn admin_post(report: &super::Report, now: DateTime<Utc>, lang: Lang) -> AdminPost {
    let (month, _) = previous_month(now);
    AdminPost {
        file: inbox_file_name(month),
        key: key(month),
        text: render::summary(report, lang),
    }
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
    post_once(store, net, now, lang, |p| post(p.text)).await
}

/// [`tick`] with the whole [`AdminPost`] (month and key beside the text),
/// for senders that file it by month.
pub async fn post_once<F, Fut>(
    store: &dyn Store,
    net: &Network,
    now: DateTime<Utc>,
    lang: Lang,
    post: F,
) -> crate::store::Result<Option<String>>
where
    F: FnOnce(AdminPost) -> Fut,
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
    if post(admin_post(&report, now, lang)).await {
        Ok(Some(k))
    } else {
        store.release_admin_post(&k).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_month_before_in_japan_time_and_its_file() {
        // 1 June 00:30 in Japan is still 31 May in UTC: May is summarised.
        let now = Utc.with_ymd_and_hms(2026, 5, 31, 15, 30, 0).unwrap();
        let (from, to) = previous_month(now);
        assert_eq!(from, NaiveDate::from_ymd_opt(2026, 5, 1).unwrap());
        assert_eq!(to, NaiveDate::from_ymd_opt(2026, 5, 31).unwrap());
        assert_eq!(key(from), "kpi-summary:2026-05");
        assert_eq!(inbox_file_name(from), "summary-2026-05.md");
        // January looks back to December of the year before.
        let jan = Utc.with_ymd_and_hms(2027, 1, 10, 0, 0, 0).unwrap();
        assert_eq!(
            previous_month(jan).0,
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
    }
}
