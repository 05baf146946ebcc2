//! Business time in Japan: time limits such as "claim within one business
//! day" count only the hours a hub is open, on weekdays that are not
//! national holidays.
//!
//! The holidays are `data/holidays_jp.tsv`, derived from the holiday_jp
//! dataset (see `data/README.md`); nothing here is a hand-typed list. Japan
//! has kept one offset (UTC+9, no daylight saving) since 1951, so
//! Asia/Tokyo is a fixed offset and no time-zone database is needed.
//!
//! Pure: no clock, no I/O. Every function takes the instant it works from.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use std::collections::HashMap;
use std::sync::OnceLock;

const HOLIDAYS_TSV: &str = include_str!("../../data/holidays_jp.tsv");

/// Japan Standard Time.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

fn holidays() -> &'static HashMap<NaiveDate, &'static str> {
    static H: OnceLock<HashMap<NaiveDate, &'static str>> = OnceLock::new();
    H.get_or_init(|| {
        HOLIDAYS_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (d, name) = l
                    .split_once('\t')
                    .expect("data/holidays_jp.tsv: date<TAB>name");
                let d = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .expect("data/holidays_jp.tsv: dates are YYYY-MM-DD");
                (d, name)
            })
            .collect()
    })
}

/// The last year the holiday data covers. Later dates count weekends only
/// (regenerate `data/holidays_jp.tsv` before then).
pub fn holidays_known_until() -> i32 {
    holidays().keys().map(|d| d.year()).max().unwrap_or(0)
}

/// The national holiday on a date, by its name (元日, 振替休日 …).
pub fn holiday(date: NaiveDate) -> Option<&'static str> {
    holidays().get(&date).copied()
}

/// A length of business time, parsed from `routing.yaml`
/// (`1 business day`, `4 business hours`, `2営業日`, `3営業時間`).
/// A business day is one day's opening hours (8 hours at 9:00–17:00), so
/// a case that arrives on Friday at 16:00 is due one business day later on
/// Monday at 16:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BusinessSpan {
    Days(u32),
    Hours(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a business time: write e.g. `1 business day`, `4 business hours`, `2営業日` or `3営業時間` (a whole number above 0)")]
pub struct BusinessSpanError(pub String);

impl BusinessSpan {
    pub fn parse(s: &str) -> Result<BusinessSpan, BusinessSpanError> {
        let err = || BusinessSpanError(s.to_string());
        let t = s.trim();
        let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: u32 = digits.parse().map_err(|_| err())?;
        if n == 0 || n > 10_000 {
            return Err(err());
        }
        let unit = t[digits.len()..].trim();
        match unit {
            "business day" | "business days" | "営業日" => Ok(BusinessSpan::Days(n)),
            "business hour" | "business hours" | "営業時間" => Ok(BusinessSpan::Hours(n)),
            _ => Err(err()),
        }
    }
}

impl std::fmt::Display for BusinessSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BusinessSpan::Days(1) => write!(f, "1 business day"),
            BusinessSpan::Days(n) => write!(f, "{n} business days"),
            BusinessSpan::Hours(1) => write!(f, "1 business hour"),
            BusinessSpan::Hours(n) => write!(f, "{n} business hours"),
        }
    }
}

impl std::str::FromStr for BusinessSpan {
    type Err = BusinessSpanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BusinessSpan::parse(s)
    }
}

/// Opening hours (in Japan time) on business days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessHours {
    pub open: NaiveTime,
    pub close: NaiveTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` are not business hours: write the opening and closing time like `9:00-17:00` (closing after opening)")]
pub struct BusinessHoursError(pub String);

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            open: NaiveTime::from_hms_opt(9, 0, 0).expect("9:00"),
            close: NaiveTime::from_hms_opt(17, 0, 0).expect("17:00"),
        }
    }
}

impl BusinessHours {
    /// `9:00-17:00` (also with `–`, `〜` or `~`).
    pub fn parse(s: &str) -> Result<BusinessHours, BusinessHoursError> {
        let err = || BusinessHoursError(s.to_string());
        let t = s.trim();
        let (a, b) = t.split_once(['-', '–', '〜', '~']).ok_or_else(err)?;
        let time = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| err());
        let h = BusinessHours {
            open: time(a)?,
            close: time(b)?,
        };
        if h.close <= h.open {
            return Err(err());
        }
        Ok(h)
    }

    fn day_length(&self) -> Duration {
        self.close - self.open
    }
}

/// Business time: weekdays that are not national holidays, within
/// [`BusinessHours`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Calendar {
    pub hours: BusinessHours,
}

impl Calendar {
    pub fn new(hours: BusinessHours) -> Calendar {
        Calendar { hours }
    }

    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && holiday(d).is_none()
    }

    fn next_business_day(&self, mut d: NaiveDate) -> NaiveDate {
        loop {
            d = d.succ_opt().expect("dates before the end of time");
            if self.is_business_day(d) {
                return d;
            }
        }
    }

    /// The instant itself when it is inside business hours, else the next
    /// opening (a Saturday evening becomes Monday 9:00, or Tuesday after a
    /// Monday holiday).
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = t.with_timezone(&jst()).naive_local();
        let (date, time) = (local.date(), local.time());
        let at = |d: NaiveDate, tm: NaiveTime| {
            jst()
                .from_local_datetime(&d.and_time(tm))
                .single()
                .expect("a fixed offset has one instant per local time")
                .with_timezone(&Utc)
        };
        if self.is_business_day(date) {
            if time < self.hours.open {
                return at(date, self.hours.open);
            }
            if time < self.hours.close {
                return t;
            }
        }
        at(self.next_business_day(date), self.hours.open)
    }

    /// `from` plus `span` of business time. Time outside business hours
    /// does not count, so a span that starts in the evening starts at the
    /// next opening. A span that ends exactly at closing time ends then
    /// (the end of that business day), not at the next opening.
    pub fn add(&self, from: DateTime<Utc>, span: BusinessSpan) -> DateTime<Utc> {
        let mut left = match span {
            BusinessSpan::Days(n) => self.hours.day_length() * n as i32,
            BusinessSpan::Hours(n) => Duration::hours(n as i64),
        };
        let mut t = self.next_open(from);
        loop {
            let local = t.with_timezone(&jst()).naive_local();
            let until_close = local.date().and_time(self.hours.close) - local;
            if left <= until_close {
                return t + left;
            }
            left -= until_close;
            t = self.next_open(t + until_close);
        }
    }

    /// How much business time lies between two instants (zero when `to` is
    /// not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut sum = Duration::zero();
        let mut t = self.next_open(from);
        while t < to {
            let local = t.with_timezone(&jst()).naive_local();
            let close = t + (local.date().and_time(self.hours.close) - local);
            let end = close.min(to);
            sum += end - t;
            t = self.next_open(close);
        }
        sum
    }
}

/// Builds the holiday table now (see [`crate::domain::warm_up`]).
pub(crate) fn warm_up() {
    holidays();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instant given in Japan time.
    fn jp(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        jst()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    const DAY: BusinessSpan = BusinessSpan::Days(1);

    #[test]
    fn the_data_knows_the_holidays_it_should() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(holiday(d(2027, 1, 1)), Some("元日"));
        // 2026: 憲法記念日 falls on a Sunday, so the 6th is a substitute.
        assert_eq!(holiday(d(2026, 5, 6)), Some("こどもの日 振替休日"));
        // A day between two holidays is a holiday (国民の休日).
        assert_eq!(holiday(d(2026, 9, 22)), Some("休日"));
        assert_eq!(holiday(d(2026, 11, 24)), None);
        assert!(holidays_known_until() >= 2030);
        assert!(holidays().len() > 1000);
    }

    #[test]
    fn a_weekday_adds_within_the_day_and_across_the_night() {
        let c = Calendar::default();
        // Tuesday 10:00 + 1 business day = Wednesday 10:00.
        assert_eq!(c.add(jp(2026, 11, 24, 10, 0), DAY), jp(2026, 11, 25, 10, 0));
        // 3 business hours from 15:00: 2 today, 1 tomorrow.
        assert_eq!(
            c.add(jp(2026, 11, 24, 15, 0), BusinessSpan::Hours(3)),
            jp(2026, 11, 25, 10, 0)
        );
        // Ending exactly at closing time ends then.
        assert_eq!(
            c.add(jp(2026, 11, 24, 15, 0), BusinessSpan::Hours(2)),
            jp(2026, 11, 24, 17, 0)
        );
        // Before opening counts from the opening.
        assert_eq!(
            c.add(jp(2026, 11, 24, 6, 30), BusinessSpan::Hours(1)),
            jp(2026, 11, 24, 10, 0)
        );
    }

    #[test]
    fn a_weekend_does_not_count() {
        let c = Calendar::default();
        // Friday 16:00 + 1 business day = Monday 16:00.
        assert_eq!(c.add(jp(2026, 11, 27, 16, 0), DAY), jp(2026, 11, 30, 16, 0));
        // Saturday: counted from Monday's opening.
        assert_eq!(c.add(jp(2026, 11, 28, 11, 0), DAY), jp(2026, 11, 30, 17, 0));
        assert_eq!(
            c.add(jp(2026, 11, 28, 11, 0), BusinessSpan::Days(2)),
            jp(2026, 12, 1, 17, 0)
        );
    }

    #[test]
    fn golden_week_with_its_substitute_holiday() {
        let c = Calendar::default();
        // 2026: 4/29 (Wed) 昭和の日, 5/3 (Sun) to 5/5, 5/6 (Wed) 振替休日.
        // Thursday 4/30 15:00 + 1 business day: 2 hours on 4/30, then
        // Friday 5/1 until 15:00.
        assert_eq!(c.add(jp(2026, 4, 30, 15, 0), DAY), jp(2026, 5, 1, 15, 0));
        // Friday 5/1 15:00 + 1 business day skips 5/2–5/6 to Thursday 5/7.
        assert_eq!(c.add(jp(2026, 5, 1, 15, 0), DAY), jp(2026, 5, 7, 15, 0));
        // Tuesday 4/28 12:00 + 2 business days: 4/29 is a holiday.
        assert_eq!(
            c.add(jp(2026, 4, 28, 12, 0), BusinessSpan::Days(2)),
            jp(2026, 5, 1, 12, 0)
        );
    }

    #[test]
    fn a_substitute_holiday_on_monday() {
        let c = Calendar::default();
        // 2027: 春分の日 3/21 is a Sunday, so Monday 3/22 is a holiday.
        assert!(!c.is_business_day(NaiveDate::from_ymd_opt(2027, 3, 22).unwrap()));
        assert_eq!(c.add(jp(2027, 3, 19, 10, 0), DAY), jp(2027, 3, 23, 10, 0));
    }

    #[test]
    fn new_year() {
        let c = Calendar::default();
        // Thursday 2026-12-31 16:00; 2027-01-01 (Fri) 元日, then a weekend.
        assert_eq!(c.add(jp(2026, 12, 31, 16, 0), DAY), jp(2027, 1, 4, 16, 0));
        assert_eq!(c.next_open(jp(2027, 1, 1, 10, 0)), jp(2027, 1, 4, 9, 0));
    }

    #[test]
    fn business_time_between_two_instants() {
        let c = Calendar::default();
        // Friday 16:00 to Monday 10:00: one hour each side of the weekend.
        assert_eq!(
            c.between(jp(2026, 11, 27, 16, 0), jp(2026, 11, 30, 10, 0)),
            Duration::hours(2)
        );
        assert_eq!(
            c.between(jp(2026, 11, 30, 10, 0), jp(2026, 11, 27, 16, 0)),
            Duration::zero()
        );
        // add and between agree.
        let from = jp(2026, 4, 30, 15, 0);
        for span in [DAY, BusinessSpan::Days(3), BusinessSpan::Hours(11)] {
            let to = c.add(from, span);
            let want = match span {
                BusinessSpan::Days(n) => Duration::hours(8 * n as i64),
                BusinessSpan::Hours(n) => Duration::hours(n as i64),
            };
            assert_eq!(c.between(from, to), want, "{span}");
        }
    }

    #[test]
    fn other_hours() {
        let c = Calendar::new(BusinessHours::parse("8:30-17:15").unwrap());
        assert_eq!(
            c.add(jp(2026, 11, 27, 17, 0), BusinessSpan::Hours(1)),
            jp(2026, 11, 30, 9, 15)
        );
        assert!(BusinessHours::parse("17:00-9:00").is_err());
        assert!(BusinessHours::parse("nine to five").is_err());
    }

    #[test]
    fn spans_parse_in_both_languages() {
        assert_eq!(
            BusinessSpan::parse("1 business day"),
            Ok(BusinessSpan::Days(1))
        );
        assert_eq!(
            BusinessSpan::parse("2 business days"),
            Ok(BusinessSpan::Days(2))
        );
        assert_eq!(
            BusinessSpan::parse("4 business hours"),
            Ok(BusinessSpan::Hours(4))
        );
        assert_eq!(BusinessSpan::parse("2営業日"), Ok(BusinessSpan::Days(2)));
        assert_eq!(
            BusinessSpan::parse(" 3 営業時間 "),
            Ok(BusinessSpan::Hours(3))
        );
        for bad in [
            "",
            "0 business days",
            "1 day",
            "-1 business day",
            "business day",
            "1.5 business days",
        ] {
            assert!(BusinessSpan::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(BusinessSpan::Days(2).to_string(), "2 business days");
    }
}
