//! Dates as owners answer "when?": absolute (2027年4月, R9.4.1, 2027-04-01,
//! April 2027, 15 April 2027), month-only (4月, April), and relative (来月,
//! 3ヶ月後, なるべく早く, next month).
//!
//! "Today" is always a parameter, never the wall clock, so parsing is
//! deterministic and the tests do not depend on when they run.

use std::sync::LazyLock;

use chrono::{Datelike, Days, Months, NaiveDate};
use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::number::parse_number;
use super::text::{excerpt, normalize_input};

/// How much of a `DateValue` the owner actually specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePrecision {
    Day,
    Month,
    Year,
}

/// A date with its precision. For Month precision the date is the first of
/// the month, for Year precision it is 1 January, so values sort sensibly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DateValue {
    pub date: NaiveDate,
    pub precision: DatePrecision,
}

impl std::fmt::Display for DateValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = (self.date.year(), self.date.month(), self.date.day());
        match self.precision {
            DatePrecision::Day => write!(f, "{y}年{m}月{d}日"),
            DatePrecision::Month => write!(f, "{y}年{m}月"),
            DatePrecision::Year => write!(f, "{y}年"),
        }
    }
}

impl DateValue {
    /// The date as an English reader writes it: 1 April 2027, April 2027,
    /// 2027.
    pub fn display_en(&self) -> String {
        match self.precision {
            DatePrecision::Day => self.date.format("%-d %B %Y").to_string(),
            DatePrecision::Month => self.date.format("%B %Y").to_string(),
            DatePrecision::Year => self.date.format("%Y").to_string(),
        }
    }
}

/// What an answer to "when?" names when it is not a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// 「なるべく早く」「急ぎ」「すぐ」, "asap": no date at all.
    Asap,
    /// A span of months: 「来年の春」「今年度中」「年明け」.
    Range,
    /// No time set: 「未定」「いい人がいれば」.
    Open,
}

/// A time as the owner said it: their words, kept as typed, and the
/// months they name (inclusive, each the first of its month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub words: String,
    pub kind: PeriodKind,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Period {
    /// The owner's words with what they were understood as; never a day
    /// the owner did not give.
    pub fn display(&self, ja: bool) -> String {
        let w = &self.words;
        // The gloss says what the words were read as; words that already
        // say it (「できるだけ早く」 typed as is) are not glossed twice.
        let glossed = |gloss: &str, open: &str, close: &str| {
            if super::text::fold_for_match(w) == super::text::fold_for_match(gloss) {
                w.clone()
            } else {
                format!("{w}{open}{gloss}{close}")
            }
        };
        match (self.kind, ja) {
            (PeriodKind::Asap, true) => glossed("できるだけ早く", "（", "）"),
            (PeriodKind::Asap, false) => glossed("as soon as possible", " (", ")"),
            (PeriodKind::Open, true) => glossed("時期の指定なし", "（", "）"),
            (PeriodKind::Open, false) => glossed("no set time", " (", ")"),
            (PeriodKind::Range, _) => {
                let (Some(a), Some(b)) = (self.from, self.to) else {
                    return w.clone();
                };
                let span = if ja {
                    match (a == b, a.year() == b.year()) {
                        (true, _) => format!("{}年{}月ごろ", a.year(), a.month()),
                        (false, true) => {
                            format!("{}年{}月〜{}月ごろ", a.year(), a.month(), b.month())
                        }
                        (false, false) => format!(
                            "{}年{}月〜{}年{}月ごろ",
                            a.year(),
                            a.month(),
                            b.year(),
                            b.month()
                        ),
                    }
                } else {
                    let m = |d: NaiveDate| d.format("%B").to_string();
                    match (a == b, a.year() == b.year()) {
                        (true, _) => format!("around {} {}", m(a), a.year()),
                        (false, true) => format!("around {}–{} {}", m(a), m(b), a.year()),
                        (false, false) => {
                            format!("around {} {}–{} {}", m(a), a.year(), m(b), b.year())
                        }
                    }
                };
                if ja {
                    format!("{w}（{span}）")
                } else {
                    format!("{w} ({span})")
                }
            }
        }
    }
}

/// An answer to "when?": a date, or a period in the owner's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    Date(DateValue),
    Period(Period),
}

impl When {
    /// The last day the time covers: the day itself, the last of its
    /// month or year, the end of a period; none for a period without an
    /// end (「なるべく早く」「未定」), which is never past.
    pub fn last_day(&self) -> Option<NaiveDate> {
        match self {
            When::Date(d) => Some(match d.precision {
                DatePrecision::Day => d.date,
                DatePrecision::Month => last_of_month(d.date),
                DatePrecision::Year => NaiveDate::from_ymd_opt(d.date.year(), 12, 31)?,
            }),
            // A range's `to` is the first of its last month.
            When::Period(p) => p.to.map(last_of_month),
        }
    }
}

fn last_of_month(first: NaiveDate) -> NaiveDate {
    let next = first
        .with_day(1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)));
    next.and_then(|d| d.pred_opt()).unwrap_or(first)
}

/// A numbered fiscal year: 「令和9年度」「R9年度」 (the era's year in group
/// 2), 「2027年度」 (3), 「FY2027」「fy 2027」 (4).
static RE_FISCAL_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:(令和|r)(\d{1,2})|(?:^|[^\d])(\d{4}))年度|fy\s?(\d{4})").expect("valid regex")
});

static RE_SEASON: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?:(今年|ことし|本年|来年|らいねん|再来年|this|next)(?:の| )?)?(春|夏|秋|冬|spring|summer|autumn|fall|winter)",
    )
});
static RE_MONTHS_WITHIN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(\d{1,2})(?:ヶ|か|カ|ケ|箇|ヵ)?月(?:間)?以内|within (\d{1,2}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve) months?",
    )
});
/// 「1年以内」「１年半以内」 (the years in group 1, a half in 2), "within a
/// year", "within 2 years" (3).
static RE_YEARS_WITHIN: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(\d{1,2})年(半)?(?:間)?以内|within (\d{1,2}|an?|one|two|three|four|five) years?")
});
/// Months from one to another: 「2027年4月〜6月」「4月から6月」「2027年11月〜
/// 2028年1月」 (years in groups 1 and 3, months in 2 and 4).
static RE_MONTH_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?:(\d{4})年)?(\d{1,2})月?(?:〜|~|-|－|ー|から)(?:(\d{4})年)?(\d{1,2})月")
});
/// A calendar quarter: "Q2 2027", "2027 Q2", "Q2" (quarter in group 1 or
/// 4, year in 2 or 3).
static RE_QUARTER: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\bq([1-4])\b(?:,? ?(\d{4}))?|(\d{4}) ?q([1-4])\b"));
static RE_MONTHS_SPAN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(\d{1,2})[〜~\-－ー](\d{1,2})(?:ヶ|か|カ|ケ|箇|ヵ)月(?:後|先)?|in (\d{1,2}) ?(?:-|to) ?(\d{1,2}) months",
    )
});

const ASAP_WORDS: &[&str] = &[
    "すぐ",
    // 「なるべく早く」 shortened, as owners write it in chat.
    "なるはや",
    // What is left of 「早ければ早いほど」 once 「早ければ」 ("at the
    // earliest") is taken away: the sooner the better.
    "早いほど",
    "直ぐ",
    "至急",
    "早急",
    "急ぎ",
    "急いで",
    "急募",
    "早く",
    "はやく",
    "早めに",
    "早期",
    "今すぐ",
    "asap",
    "a.s.a.p",
    "as soon as possible",
    "right away",
    "immediately",
    "urgent",
    "quickly",
    "right now",
    "soon",
];
const OPEN_WORDS: &[&str] = &[
    "未定",
    "決まっていない",
    "決まってない",
    "決めていない",
    "決めてない",
    "わからない",
    "分からない",
    "わかりません",
    "いい人がいれば",
    "良い人がいれば",
    "いい人が見つかれば",
    "良い人が見つかれば",
    "いつでも",
    "時期は問わない",
    "急がない",
    "急いでいない",
    "特になし",
    "undecided",
    "not decided",
    "not sure",
    "don't know",
    "no rush",
    "whenever",
    "anytime",
    "any time",
    "no fixed",
];

/// Reads an answer to "when?": a period or "as soon as possible" in the
/// owner's words, or else a date (`parse_date`).
pub fn parse_when(s: &str, today: NaiveDate) -> Result<When, DateError> {
    let words = super::text::clean_text(s);
    let n = normalize_input(s).to_lowercase();
    let spaced = n.split_whitespace().collect::<Vec<_>>().join(" ");
    let compact: String = n.chars().filter(|c| !c.is_whitespace()).collect();
    // 「早くても」「早ければ」 ("at the earliest") do not mean "soon".
    let compact = compact
        .replace("早くても", "")
        .replace("早ければ", "")
        .replace("遅くとも", "");
    let key = kanji_numerals_to_digits(&compact);
    let period = |kind, from: Option<NaiveDate>, to: Option<NaiveDate>| {
        Ok(When::Period(Period {
            words: words.clone(),
            kind,
            from,
            to,
        }))
    };
    let ym = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1);
    let this_month = ym(today.year(), today.month());
    let has = |list: &[&str]| list.iter().any(|w| key.contains(w) || spaced.contains(w));
    let y = today.year();
    // Japan's fiscal year runs April to March; FY y starts in April y.
    let fy = if today.month() >= 4 { y } else { y - 1 };
    let next_year = spaced.contains("next year") || key.contains("来年") && !key.contains("来年度");

    // A fiscal year named by its number (「令和9年度」「2027年度中」「FY2027」)
    // runs April to March; checked before the words below, which
    // 「2027年度中」 also contains.
    if let Some(c) = RE_FISCAL_YEAR.captures(&key) {
        let number = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i32>().ok());
        // 令和1年 is 2019.
        let year = number(2).map(|n| 2018 + n).or(number(3)).or(number(4));
        if let Some(year) = year.filter(|y| (MIN_YEAR..MAX_YEAR).contains(y)) {
            return period(PeriodKind::Range, ym(year, 4), ym(year + 1, 3));
        }
    }
    // Fiscal years first: 「来年度」 contains 「来年」.
    if has(&["来年度", "来期", "next fiscal year", "next financial year"]) {
        return period(PeriodKind::Range, ym(fy + 1, 4), ym(fy + 2, 3));
    }
    if has(&["新年度"]) {
        return period(PeriodKind::Range, ym(fy + 1, 4), ym(fy + 1, 4));
    }
    if has(&["年度末"]) {
        return period(PeriodKind::Range, ym(fy + 1, 3), ym(fy + 1, 3));
    }
    if has(&[
        "今年度",
        "本年度",
        "年度内",
        "年度中",
        "今期",
        "this fiscal year",
        "this financial year",
        "end of the fiscal year",
        "end of fy",
        "end of the fy",
        "end of this fiscal year",
        "fiscal year end",
        "fiscal year-end",
        "fy end",
        "fy-end",
    ]) {
        return period(PeriodKind::Range, this_month, ym(fy + 1, 3));
    }
    // Seasons, possibly two (「春から夏にかけて」).
    let seasons: Vec<(i32, u32, u32)> = RE_SEASON
        .captures_iter(&spaced)
        .map(|c| {
            let (start, len) = match &c[2] {
                "春" | "spring" => (3, 3),
                "夏" | "summer" => (6, 3),
                "秋" | "autumn" | "fall" => (9, 3),
                _ => (12, 3),
            };
            let end_month = (start + len - 2) % 12 + 1;
            let year = match c.get(1).map(|m| m.as_str()) {
                Some("来年" | "らいねん") => y + 1,
                Some("再来年") => y + 2,
                Some("今年" | "ことし" | "本年") => y,
                Some("next") if !next_year => y + 1,
                _ if next_year => y + 1,
                _ => {
                    // The season that has not ended yet.
                    let end = if start == 12 {
                        (y + 1, end_month)
                    } else {
                        (y, end_month)
                    };
                    let started_last_year = start == 12 && today.month() <= 2;
                    if started_last_year {
                        y - 1
                    } else if (y, today.month()) > end {
                        y + 1
                    } else {
                        y
                    }
                }
            };
            (year, start, end_month)
        })
        .collect();
    if let (Some(first), Some(last)) = (seasons.first(), seasons.last()) {
        let to_year = if last.1 == 12 { last.0 + 1 } else { last.0 };
        return period(PeriodKind::Range, ym(first.0, first.1), ym(to_year, last.2));
    }
    if has(&["年明け", "年始", "正月明け", "お正月", "新年"]) {
        let year = if today.month() == 1 { y } else { y + 1 };
        return period(PeriodKind::Range, ym(year, 1), ym(year, 1));
    }
    if has(&[
        "年内",
        "今年中",
        "今年のうち",
        "年末まで",
        "by the end of the year",
        "by the end of this year",
        "within this year",
        "later this year",
    ]) {
        return period(PeriodKind::Range, this_month, ym(y, 12));
    }
    if has(&["年末", "end of the year", "end of this year"]) {
        return period(PeriodKind::Range, ym(y, 12), ym(y, 12));
    }
    let early = has(&[
        "早々",
        "初め",
        "はじめ",
        "頭",
        "初頭",
        "前半",
        "上半期",
        "early",
        "beginning of",
        "first half",
    ]);
    let late = has(&[
        "後半",
        "下半期",
        "終わり",
        "late",
        "second half",
        "end of next year",
    ]);
    if next_year && early {
        let to = if has(&["前半", "上半期", "first half"]) {
            6
        } else if has(&["早々"]) {
            1
        } else {
            3
        };
        return period(PeriodKind::Range, ym(y + 1, 1), ym(y + 1, to));
    }
    if next_year && late {
        return period(PeriodKind::Range, ym(y + 1, 7), ym(y + 1, 12));
    }
    let add = |m: u32| this_month.and_then(|d| d.checked_add_months(Months::new(m)));
    // 「2027年4月〜6月」: a span the owner gave as such stays a span, in
    // their words, rather than being cut to its first month.
    if let Some(c) = RE_MONTH_RANGE.captures(&key) {
        let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        let (m1, m2) = (num(2).unwrap_or(0), num(4).unwrap_or(0));
        if (1..=12).contains(&m1) && (1..=12).contains(&m2) {
            // Without a year, the first month is the next one ahead, as a
            // month alone reads (「4月」 in November is next April).
            let y1 = num(1).map_or(if m1 >= today.month() { y } else { y + 1 }, |v| v as i32);
            let y2 = num(3).map_or(if m2 >= m1 { y1 } else { y1 + 1 }, |v| v as i32);
            if (y1, m1) < (y2, m2) && (MIN_YEAR..MAX_YEAR).contains(&y2) {
                return period(PeriodKind::Range, ym(y1, m1), ym(y2, m2));
            }
        }
    }
    // "Q2 2027": a calendar quarter (April to June for Q2).
    if let Some(c) = RE_QUARTER.captures(&spaced) {
        let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        if let Some(q) = num(1).or(num(4)) {
            let (start, end) = (q * 3 - 2, q * 3);
            // Without a year, the quarter that has not ended yet.
            let year = num(2)
                .or(num(3))
                .map_or(if today.month() <= end { y } else { y + 1 }, |v| v as i32);
            if (MIN_YEAR..MAX_YEAR).contains(&year) {
                return period(PeriodKind::Range, ym(year, start), ym(year, end));
            }
        }
    }
    if let Some(c) = RE_MONTHS_SPAN
        .captures(&key)
        .or_else(|| RE_MONTHS_SPAN.captures(&spaced))
    {
        let a: u32 = c
            .get(1)
            .or(c.get(3))
            .map_or(0, |m| m.as_str().parse().unwrap_or(0));
        let b: u32 = c
            .get(2)
            .or(c.get(4))
            .map_or(0, |m| m.as_str().parse().unwrap_or(0));
        if a < b && b <= 60 {
            return period(PeriodKind::Range, add(a), add(b));
        }
    }
    if let Some(c) = RE_MONTHS_WITHIN
        .captures(&key)
        .or_else(|| RE_MONTHS_WITHIN.captures(&spaced))
    {
        let m: u32 = c
            .get(1)
            .or(c.get(2))
            .and_then(|m| count_word(m.as_str()))
            .unwrap_or(0);
        if (1..=60).contains(&m) {
            return period(PeriodKind::Range, this_month, add(m));
        }
    }
    // 「1年以内」 is a span from now, like 「半年以内」: the owner named a
    // deadline, not a month, so their words are kept with the months.
    if let Some(c) = RE_YEARS_WITHIN
        .captures(&key)
        .or_else(|| RE_YEARS_WITHIN.captures(&spaced))
    {
        let years = c.get(1).or(c.get(3)).and_then(|m| count_word(m.as_str()));
        let half = if c.get(2).is_some() { 6 } else { 0 };
        if let Some(n) = years.filter(|n| (1..=5).contains(n)) {
            return period(PeriodKind::Range, this_month, add(n * 12 + half));
        }
    }
    if has(&["半年以内", "within half a year", "within six months"]) {
        return period(PeriodKind::Range, this_month, add(6));
    }
    // 「急いでいません」 contains 「急いで」 but says the opposite.
    if has(&[
        "急いでいない",
        "急いでいません",
        "急いでない",
        "急がない",
        "急ぎません",
        "急ぎではない",
        "急ぎではありません",
        "not urgent",
        "no hurry",
        "no rush",
        "not in a hurry",
    ]) {
        return period(PeriodKind::Open, None, None);
    }
    if has(ASAP_WORDS) {
        return period(PeriodKind::Asap, None, None);
    }
    if has(OPEN_WORDS) {
        return period(PeriodKind::Open, None, None);
    }
    match parse_date(s, today) {
        Ok(d) => Ok(When::Date(d)),
        // 「来年」 among words the date reader does not know (「できれば
        // 来年」): next year, as 「来年」 alone reads.
        // Anything with a number in it says more than that, and is
        // asked again rather than cut short (「早ければ来年4月」).
        Err(_) if next_year && !key.chars().any(|c| c.is_ascii_digit()) => {
            parse_date("来年", today).map(When::Date)
        }
        Err(e) => Err(e),
    }
}

/// A count as digits or as a small English number word ("a", "six").
fn count_word(w: &str) -> Option<u32> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    match w {
        "a" | "an" => Some(1),
        w => WORDS
            .iter()
            .position(|x| *x == w)
            .map(|i| i as u32 + 1)
            .or_else(|| w.parse().ok()),
    }
}

/// Errors from `parse_date`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateError {
    #[error("no date given: type a date such as 2027年4月, 2027-04-01, 来月 or 3ヶ月後")]
    Empty,
    #[error("could not read 「{0}」 as a date: type a date such as 2027年4月, 2027-04-01, 来月 or 3ヶ月後")]
    Unrecognized(String),
    #[error("「{0}」 is not a real calendar date: check the month and the day")]
    InvalidDate(String),
    #[error("「{0}」 is too far in the past or future: type a date between 1900 and 2100")]
    OutOfRange(String),
}

const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 2100;

/// Words around a date that do not change it: approximate endings, "by",
/// "from", and parts of a month (上旬, 末), which we keep at month precision.
const NOISE_SUFFIXES: &[&str] = &[
    "です",
    "。",
    ".",
    "!",
    "頃",
    "ごろ",
    "くらい",
    "ぐらい",
    "あたり",
    "辺り",
    "中",
    "中に",
    "以降",
    "から",
    "までに",
    "まで",
    "予定",
    "の予定",
    "を目処に",
    "目処",
    "めど",
    "目途",
    "上旬",
    "中旬",
    "下旬",
    "初め",
    "はじめ",
    "初旬",
    "頭",
    "末",
    "半ば",
    "には",
    "に",
    "で",
    // 「4月入社で」: the month the new person starts.
    "入社",
];
const NOISE_PREFIXES: &[&str] = &["約", "大体", "だいたい", "およそ"];

/// Era names with the Gregorian year before their first year (令和1 = 2019).
const ERAS: &[(&str, i32)] = &[
    ("令和", 2018),
    ("平成", 1988),
    ("昭和", 1925),
    ("r", 2018),
    ("h", 1988),
    ("s", 1925),
];

static RE_REL_MONTHS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(\d{1,4})(?:ヶ|か|カ|ケ|箇|ヵ)月(?:間)?(?:後|以内|先|たったら)?$"));
static RE_REL_YEARS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(\d{1,3})年(半)?(?:間)?(?:後|以内|先|たったら)$"));
static RE_REL_WEEKS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(\d{1,4})週(?:間)?(?:後|以内|先)$"));
static RE_REL_DAYS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(\d{1,5})日(?:間)?(?:後|以内|先)$"));
static RE_NAMED_YEAR_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^(今年|ことし|本年|来年|らいねん|再来年|さらいねん)の?(\d{1,2})月(?:(\d{1,2})日)?$")
});
static RE_NAMED_MONTH_DAY: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(今月|来月|再来月)(\d{1,2})日$"));
static RE_MONTH: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{1,2})月$"));
static RE_MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{1,2})(?:月|/)(\d{1,2})日?$"));
static RE_EN_RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?:in )?(\d{1,4}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve) (day|week|month|year)s?(?: later| from now| time)?$",
    )
});

/// A month by its English name: "april", "apr", "apr.", "sept" (matched
/// after lower-casing; the words around it are in [`RE_EN_MONTH`]).
static RE_EN_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^(?:(?:in|by|from|around|about|until|till|early|mid|late|end of|the end of|beginning of|the beginning of|start of|the start of|middle of|the middle of|next)[ -])*(?:(\d{1,2})(?:st|nd|rd|th)? (?:of )?)?([a-z]+)\.?(?: (\d{1,2})(?:st|nd|rd|th)?)?(?:,? (\d{4}))?$",
    )
});

/// 1–12 for an English month name or its usual abbreviation.
fn english_month(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    MONTHS
        .iter()
        .position(|m| {
            *m == word
                || (word.len() == 3 && m.starts_with(word))
                || (word == "sept" && *m == "september")
        })
        .map(|i| i as u32 + 1)
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("date patterns are valid constants")
}

/// Parses a date relative to `today`. Month-only answers ("4月") mean the
/// next such month on or after today's month; "M月D日" means the next such
/// day on or after today. Relative answers in months or years have Month
/// precision; "すぐ"/"asap" is today with Day precision.
pub fn parse_date(s: &str, today: NaiveDate) -> Result<DateValue, DateError> {
    let as_typed = normalize_input(s);
    let shown = excerpt(&as_typed);
    let normalized = as_typed.to_lowercase();
    let english = normalized.split_whitespace().collect::<Vec<_>>().join(" ");
    let compact: String = normalized.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(DateError::Empty);
    }
    let key = kanji_numerals_to_digits(strip_noise(&compact));
    let key = key.as_str();
    let unrecognized = || DateError::Unrecognized(shown.clone());
    let this_month = today.with_day(1).ok_or_else(unrecognized)?;
    let ctx = Ctx {
        today,
        this_month,
        shown: &shown,
    };

    if let Some(v) = parse_english(english.trim_end_matches(['.', '!']), &ctx)? {
        return Ok(v);
    }
    match key {
        // "As soon as possible" is no date: `parse_when` reads it as
        // such, and it must never become today's date on the sheet.
        "今日" | "本日" | "きょう" => return ctx.day(today),
        "明日" | "あした" | "あす" => return ctx.add_days(1),
        "今月" | "こんげつ" => return ctx.add_months(0),
        "来月" | "らいげつ" => return ctx.add_months(1),
        "再来月" | "さらいげつ" => return ctx.add_months(2),
        "半年" | "半年後" | "半年以内" | "半年先" => return ctx.add_months(6),
        "今年" | "ことし" | "本年" => return ctx.year(today.year()),
        "来年" | "らいねん" => return ctx.year(today.year() + 1),
        "再来年" | "さらいねん" => return ctx.year(today.year() + 2),
        _ => {}
    }
    if let Some(c) = RE_REL_MONTHS.captures(key) {
        return ctx.add_months(ctx.num(&c[1])?);
    }
    if let Some(c) = RE_REL_YEARS.captures(key) {
        let half = if c.get(2).is_some() { 6 } else { 0 };
        return ctx.add_months(ctx.num(&c[1])?.saturating_mul(12).saturating_add(half));
    }
    if let Some(c) = RE_REL_WEEKS.captures(key) {
        return ctx.add_days(ctx.num(&c[1])?.saturating_mul(7));
    }
    if let Some(c) = RE_REL_DAYS.captures(key) {
        return ctx.add_days(ctx.num(&c[1])?);
    }
    if let Some(c) = RE_NAMED_YEAR_MONTH.captures(key) {
        let offset = match &c[1] {
            "今年" | "ことし" | "本年" => 0,
            "来年" | "らいねん" => 1,
            _ => 2,
        };
        let day = c.get(3).map(|d| ctx.num(d.as_str())).transpose()?;
        return ctx.ymd(today.year() + offset, ctx.num(&c[2])?, day);
    }
    if let Some(c) = RE_NAMED_MONTH_DAY.captures(key) {
        let offset = match &c[1] {
            "今月" => 0,
            "来月" => 1,
            _ => 2,
        };
        let month = ctx.shift_months(this_month, offset)?;
        return ctx.ymd(month.year(), month.month(), Some(ctx.num(&c[2])?));
    }
    if let Some(c) = RE_MONTH.captures(key) {
        return ctx.next_month_day(ctx.num(&c[1])?, None);
    }
    if let Some(c) = RE_MONTH_DAY.captures(key) {
        return ctx.next_month_day(ctx.num(&c[1])?, Some(ctx.num(&c[2])?));
    }
    parse_absolute(key, &ctx)?.ok_or_else(unrecognized)
}

/// Shared state for the parsing helpers, so each pattern stays one line.
struct Ctx<'a> {
    today: NaiveDate,
    this_month: NaiveDate,
    shown: &'a str,
}

impl Ctx<'_> {
    fn num(&self, digits: &str) -> Result<u32, DateError> {
        digits
            .parse()
            .map_err(|_| DateError::Unrecognized(self.shown.to_string()))
    }

    fn out_of_range(&self) -> DateError {
        DateError::OutOfRange(self.shown.to_string())
    }

    fn check(&self, date: NaiveDate, precision: DatePrecision) -> Result<DateValue, DateError> {
        if (MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
            Ok(DateValue { date, precision })
        } else {
            Err(self.out_of_range())
        }
    }

    fn day(&self, date: NaiveDate) -> Result<DateValue, DateError> {
        self.check(date, DatePrecision::Day)
    }

    fn year(&self, year: i32) -> Result<DateValue, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(self.out_of_range());
        }
        let date = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| self.out_of_range())?;
        self.check(date, DatePrecision::Year)
    }

    fn shift_months(&self, from: NaiveDate, months: u32) -> Result<NaiveDate, DateError> {
        from.checked_add_months(Months::new(months))
            .ok_or_else(|| self.out_of_range())
    }

    fn add_months(&self, months: u32) -> Result<DateValue, DateError> {
        let date = self.shift_months(self.this_month, months)?;
        self.check(date, DatePrecision::Month)
    }

    fn add_days(&self, days: u32) -> Result<DateValue, DateError> {
        let date = self
            .today
            .checked_add_days(Days::new(u64::from(days)))
            .ok_or_else(|| self.out_of_range())?;
        self.day(date)
    }

    /// A calendar date from parts; a missing day gives Month precision.
    /// A month, or a day of a month, without a year: the next such month
    /// (or day) on or after today.
    fn next_month_day(&self, month: u32, day: Option<u32>) -> Result<DateValue, DateError> {
        let t = self.today;
        let year = if (month, day.unwrap_or(u32::MAX)) >= (t.month(), t.day()) {
            t.year()
        } else {
            t.year() + 1
        };
        self.ymd(year, month, day)
    }

    fn ymd(&self, year: i32, month: u32, day: Option<u32>) -> Result<DateValue, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(self.out_of_range());
        }
        let invalid = || DateError::InvalidDate(self.shown.to_string());
        match day {
            Some(d) => self.check(
                NaiveDate::from_ymd_opt(year, month, d).ok_or_else(invalid)?,
                DatePrecision::Day,
            ),
            None => self.check(
                NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(invalid)?,
                DatePrecision::Month,
            ),
        }
    }
}

/// A month's name with "next year" or "this year" around it ("April next
/// year", "April of next year", "next year April", "next year in June"):
/// the year it names, and the rest for [`RE_EN_MONTH`].
fn en_named_year(s: &str, this_year: i32) -> Option<(i32, &str)> {
    for (words, offset) in [("next year", 1), ("this year", 0)] {
        let rest = if let Some(r) = s.strip_suffix(words) {
            let r = r.trim_end().trim_end_matches(',');
            r.strip_suffix(" of").unwrap_or(r).trim_end()
        } else if let Some(r) = s.strip_prefix(words) {
            let r = r.trim_start().trim_start_matches(',').trim_start();
            r.strip_prefix("in ").unwrap_or(r)
        } else {
            continue;
        };
        if !rest.is_empty() {
            return Some((this_year + offset, rest));
        }
    }
    None
}

fn parse_english(s: &str, ctx: &Ctx) -> Result<Option<DateValue>, DateError> {
    // "April next year" names a month: reading only "next year" in it
    // would lose the month the owner gave.
    if let Some((year, rest)) = en_named_year(s, ctx.today.year()) {
        if let Some(c) = RE_EN_MONTH.captures(rest) {
            if let (Some(month), None) = (english_month(&c[2]), c.get(4)) {
                let day = match (c.get(1), c.get(3)) {
                    (Some(_), Some(_)) => return Ok(None),
                    (Some(d), None) | (None, Some(d)) => Some(ctx.num(d.as_str())?),
                    (None, None) => None,
                };
                return ctx.ymd(year, month, day).map(Some);
            }
        }
    }
    let v = match s {
        "today" => ctx.day(ctx.today)?,
        "tomorrow" => ctx.add_days(1)?,
        "this month" => ctx.add_months(0)?,
        "next month" => ctx.add_months(1)?,
        "in half a year" | "in six months" => ctx.add_months(6)?,
        "this year" => ctx.year(ctx.today.year())?,
        "next year" => ctx.year(ctx.today.year() + 1)?,
        _ => {
            // "in 3 months" has the shape too; only a month's name counts.
            let named = RE_EN_MONTH
                .captures(s)
                .and_then(|c| english_month(&c[2]).map(|m| (c, m)));
            if let Some((c, month)) = named {
                let day = match (c.get(1), c.get(3)) {
                    (Some(_), Some(_)) => return Ok(None),
                    (Some(d), None) | (None, Some(d)) => Some(ctx.num(d.as_str())?),
                    (None, None) => None,
                };
                return match c.get(4) {
                    Some(y) => ctx.ymd(ctx.num(y.as_str())? as i32, month, day).map(Some),
                    None => ctx.next_month_day(month, day).map(Some),
                };
            }
            let Some(c) = RE_EN_RELATIVE.captures(s) else {
                return Ok(None);
            };
            const WORDS: [&str; 12] = [
                "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve",
            ];
            let n = match &c[1] {
                "a" | "an" => 1,
                w => match WORDS.iter().position(|x| *x == w) {
                    Some(i) => i as u32 + 1,
                    None => ctx.num(w)?,
                },
            };
            match &c[2] {
                "day" => ctx.add_days(n)?,
                "week" => ctx.add_days(n.saturating_mul(7))?,
                "month" => ctx.add_months(n)?,
                _ => ctx.add_months(n.saturating_mul(12))?,
            }
        }
    };
    Ok(Some(v))
}

/// Absolute dates: 2027-04-01, 2027/4/1, 2027.4.1, 2027年4月1日, 2027年4月,
/// 2027年, 20270401, and era forms such as 令和9年4月 or R9.4.1.
fn parse_absolute(key: &str, ctx: &Ctx) -> Result<Option<DateValue>, DateError> {
    let (era_offset, rest) = ERAS
        .iter()
        .find_map(|(name, offset)| key.strip_prefix(name).map(|rest| (Some(*offset), rest)))
        .unwrap_or((None, key));
    let unified: String = rest
        .trim_end_matches('日')
        .chars()
        .map(|c| {
            if matches!(c, '年' | '月' | '.' | '-') {
                '/'
            } else {
                c
            }
        })
        .collect();
    let unified = unified.trim_end_matches('/');
    let mut parts: Vec<&str> = unified.split('/').collect();
    // Only eight ASCII digits (20270401) are split by position: slicing
    // other text at byte 4 could fall inside a character (found by
    // fuzzing: 「\u{FFFD}\u{FFFD}aa」 panicked).
    if era_offset.is_none()
        && parts.len() == 1
        && parts[0].len() == 8
        && parts[0].bytes().all(|b| b.is_ascii_digit())
    {
        let p = parts[0];
        parts = vec![&p[..4], &p[4..6], &p[6..]];
    }
    let numeric = |p: &&str| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit());
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(numeric) {
        return Ok(None);
    }
    let first = ctx.num(parts[0])?;
    let year = match era_offset {
        Some(offset) if (1..=99).contains(&first) && parts[0].len() <= 2 => offset + first as i32,
        Some(_) => return Ok(None),
        None if parts[0].len() == 4 => first as i32,
        // 「27年4月」: a two-digit year with 年 and a month is this century's,
        // as owners write it; 「27/4/1」 stays unread (day-month-year or
        // year-month-day cannot be told apart).
        None if parts[0].len() == 2
            && parts.len() >= 2
            && rest.starts_with(&format!("{first:02}年")) =>
        {
            2000 + first as i32
        }
        None => return Ok(None),
    };
    let month = parts.get(1).map(|p| ctx.num(p)).transpose()?;
    let day = parts.get(2).map(|p| ctx.num(p)).transpose()?;
    match month {
        None => ctx.year(year).map(Some),
        Some(m) => ctx.ymd(year, m, day).map(Some),
    }
}

fn strip_noise(s: &str) -> &str {
    let mut s = s;
    loop {
        let before = s.len();
        for noise in NOISE_SUFFIXES {
            if let Some(rest) = s.strip_suffix(noise) {
                if !rest.is_empty() {
                    s = rest;
                }
            }
        }
        for noise in NOISE_PREFIXES {
            s = s.strip_prefix(noise).unwrap_or(s);
        }
        if s.len() == before {
            return s;
        }
    }
}

/// Rewrites kanji numerals as digits (十二月 → 12月, 令和元年 → 令和1年), so the
/// patterns only need to know Arabic digits.
fn kanji_numerals_to_digits(s: &str) -> String {
    const NUMERALS: &str = "〇零一二三四五六七八九十百千";
    let s = s.replace("元年", "1年");
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if !run.is_empty() {
            match parse_number(run) {
                Some(n) if n.is_finite() && n < 1e9 => out.push_str(&format!("{}", n as u64)),
                _ => out.push_str(run),
            }
            run.clear();
        }
    };
    for c in s.chars() {
        if NUMERALS.contains(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Compiles the date patterns now (see [`crate::domain::warm_up`]).
pub(crate) fn warm_up() {
    for re in [
        &RE_SEASON,
        &RE_MONTHS_WITHIN,
        &RE_MONTHS_SPAN,
        &RE_REL_MONTHS,
        &RE_REL_YEARS,
        &RE_REL_WEEKS,
        &RE_REL_DAYS,
        &RE_NAMED_YEAR_MONTH,
        &RE_NAMED_MONTH_DAY,
        &RE_MONTH,
        &RE_MONTH_DAY,
        &RE_EN_RELATIVE,
        &RE_EN_MONTH,
    ] {
        LazyLock::force(re);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/run.sh` (target `domain`): eight bytes of text that
    /// are not eight ASCII digits were sliced at byte 4, inside a character.
    #[test]
    fn eight_bytes_of_non_digits_do_not_panic() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        for s in ["\u{FFFD}\u{FFFD}aa", "日本aa", "éééé", "a\u{FFFD}\u{FFFD}a"] {
            assert!(parse_date(s, today).is_err(), "{s}");
        }
        assert!(parse_date("20270401", today).is_ok());
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// A fixed "today" so the tests are deterministic: 2026-11-21.
    fn today() -> NaiveDate {
        d(2026, 11, 21)
    }

    fn parse(s: &str) -> DateValue {
        parse_date(s, today()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn day(y: i32, m: u32, dd: u32) -> DateValue {
        DateValue {
            date: d(y, m, dd),
            precision: DatePrecision::Day,
        }
    }

    fn month(y: i32, m: u32) -> DateValue {
        DateValue {
            date: d(y, m, 1),
            precision: DatePrecision::Month,
        }
    }

    fn year(y: i32) -> DateValue {
        DateValue {
            date: d(y, 1, 1),
            precision: DatePrecision::Year,
        }
    }

    #[test]
    fn absolute_dates() {
        for s in [
            "2027-04-01",
            "2027/4/1",
            "2027.4.1",
            "2027年4月1日",
            "２０２７年４月１日",
            "2027 年 4 月 1 日",
            "20270401",
            "令和9年4月1日",
            "R9.4.1",
            "r9/4/1",
            "令和九年四月一日",
            "Ｒ９．４．１",
        ] {
            assert_eq!(parse(s), day(2027, 4, 1), "{s:?}");
        }
        for s in [
            "2027年4月",
            "2027/4",
            "2027-04",
            "令和9年4月",
            "R9.4",
            "2027年4月頃",
            "2027年4月上旬",
        ] {
            assert_eq!(parse(s), month(2027, 4), "{s:?}");
        }
        for s in ["2027年", "2027", "令和9年", "R9", "二〇二七年"] {
            assert_eq!(parse(s), year(2027), "{s:?}");
        }
        assert_eq!(parse("令和元年5月1日"), day(2019, 5, 1));
        assert_eq!(parse("平成30年"), year(2018));
        assert_eq!(parse("H30.1.1"), day(2018, 1, 1));
        assert_eq!(parse("昭和64年1月7日"), day(1989, 1, 7));
    }

    #[test]
    fn month_only_means_next_occurrence() {
        // Today is 2026-11-21: November is still this year, April is next year.
        assert_eq!(parse("11月"), month(2026, 11));
        assert_eq!(parse("12月"), month(2026, 12));
        assert_eq!(parse("十二月"), month(2026, 12));
        assert_eq!(parse("4月"), month(2027, 4));
        assert_eq!(parse("４月"), month(2027, 4));
        assert_eq!(parse("4月頃"), month(2027, 4));
        assert_eq!(parse("11月25日"), day(2026, 11, 25));
        assert_eq!(parse("11月20日"), day(2027, 11, 20));
        assert_eq!(parse("11/21"), day(2026, 11, 21));
        assert_eq!(parse("1/5"), day(2027, 1, 5));
    }

    #[test]
    fn relative_japanese() {
        assert_eq!(parse("今月"), month(2026, 11));
        assert_eq!(parse("今月中"), month(2026, 11));
        assert_eq!(parse("来月"), month(2026, 12));
        assert_eq!(parse("再来月"), month(2027, 1));
        assert_eq!(parse("今年"), year(2026));
        assert_eq!(parse("来年"), year(2027));
        assert_eq!(parse("再来年"), year(2028));
        assert_eq!(parse("来年4月"), month(2027, 4));
        assert_eq!(parse("来年の4月"), month(2027, 4));
        assert_eq!(parse("来年4月1日"), day(2027, 4, 1));
        assert_eq!(parse("来月10日"), day(2026, 12, 10));
        for s in [
            "3ヶ月後",
            "3か月後",
            "3カ月後",
            "3ケ月後",
            "3箇月後",
            "三ヶ月後",
            "3ヶ月以内",
            "3ヶ月",
        ] {
            assert_eq!(parse(s), month(2027, 2), "{s:?}");
        }
        assert_eq!(parse("半年後"), month(2027, 5));
        assert_eq!(parse("1年後"), month(2027, 11));
        assert_eq!(parse("1年半後"), month(2028, 5));
        assert_eq!(parse("2週間後"), day(2026, 12, 5));
        assert_eq!(parse("10日後"), day(2026, 12, 1));
        assert_eq!(parse("明日"), day(2026, 11, 22));
    }

    #[test]
    fn as_soon_as_possible_is_no_date() {
        for s in [
            "すぐ",
            "今すぐ",
            "なるべく早く",
            "できるだけ早く",
            "至急",
            "急ぎです",
            "すぐにでも",
            "asap",
            "ASAP",
            "as soon as possible",
            "right away",
        ] {
            assert!(parse_date(s, today()).is_err(), "{s:?} became a date");
            let When::Period(p) = parse_when(s, today()).unwrap() else {
                panic!("{s:?} is not a period")
            };
            assert_eq!(p.kind, PeriodKind::Asap, "{s:?}");
            assert_eq!((p.from, p.to), (None, None), "{s:?}");
            assert_eq!(p.words, s);
        }
        assert_eq!(parse("今日"), day(2026, 11, 21));
    }

    fn period(s: &str) -> (PeriodKind, Option<NaiveDate>, Option<NaiveDate>) {
        match parse_when(s, today()).unwrap() {
            When::Period(p) => (p.kind, p.from, p.to),
            When::Date(d) => panic!("{s:?} read as the date {d}"),
        }
    }

    #[test]
    fn seasons_are_periods() {
        let r = |a, b| (PeriodKind::Range, Some(a), Some(b));
        // Today is 2026-11-21: spring is the next one, autumn the current.
        assert_eq!(period("来年の春"), r(d(2027, 3, 1), d(2027, 5, 1)));
        assert_eq!(period("春ごろ"), r(d(2027, 3, 1), d(2027, 5, 1)));
        assert_eq!(period("夏ごろ"), r(d(2027, 6, 1), d(2027, 8, 1)));
        assert_eq!(period("冬"), r(d(2026, 12, 1), d(2027, 2, 1)));
        assert_eq!(period("来年の夏までに"), r(d(2027, 6, 1), d(2027, 8, 1)));
        assert_eq!(period("next spring"), r(d(2027, 3, 1), d(2027, 5, 1)));
        assert_eq!(period("this summer"), r(d(2027, 6, 1), d(2027, 8, 1)));
        assert_eq!(period("春から夏にかけて"), r(d(2027, 3, 1), d(2027, 8, 1)));
    }

    #[test]
    fn fiscal_years_run_april_to_march() {
        let r = |a, b| (PeriodKind::Range, Some(a), Some(b));
        assert_eq!(period("今年度中"), r(d(2026, 11, 1), d(2027, 3, 1)));
        assert_eq!(period("年度内に"), r(d(2026, 11, 1), d(2027, 3, 1)));
        assert_eq!(period("来年度"), r(d(2027, 4, 1), d(2028, 3, 1)));
        assert_eq!(
            parse_when("できれば来年", today()).unwrap(),
            parse_when("来年", today()).unwrap()
        );
        for fy2027 in [
            "令和9年度",
            "令和９年度中",
            "R9年度",
            "2027年度",
            "２０２７年度中に",
            "FY2027",
            "令和九年度",
        ] {
            assert_eq!(period(fy2027), r(d(2027, 4, 1), d(2028, 3, 1)), "{fy2027}");
        }
        assert_eq!(period("来年度から"), r(d(2027, 4, 1), d(2028, 3, 1)));
        assert_eq!(period("this fiscal year"), r(d(2026, 11, 1), d(2027, 3, 1)));
        assert_eq!(period("next fiscal year"), r(d(2027, 4, 1), d(2028, 3, 1)));
        // In February the fiscal year still ends in the coming March.
        let feb = d(2027, 2, 10);
        let When::Period(p) = parse_when("今年度中", feb).unwrap() else {
            panic!()
        };
        assert_eq!((p.from, p.to), (Some(d(2027, 2, 1)), Some(d(2027, 3, 1))));
    }

    #[test]
    fn new_year_and_year_end() {
        let r = |a, b| (PeriodKind::Range, Some(a), Some(b));
        assert_eq!(period("年明け"), r(d(2027, 1, 1), d(2027, 1, 1)));
        assert_eq!(period("年明けすぐ"), r(d(2027, 1, 1), d(2027, 1, 1)));
        assert_eq!(period("年内"), r(d(2026, 11, 1), d(2026, 12, 1)));
        assert_eq!(period("3ヶ月以内"), r(d(2026, 11, 1), d(2027, 2, 1)));
        assert_eq!(period("2〜3ヶ月後"), r(d(2027, 1, 1), d(2027, 2, 1)));
        assert_eq!(period("early next year"), r(d(2027, 1, 1), d(2027, 3, 1)));
    }

    /// "April next year" names the month, not only the year (found by an
    /// outside probe: the month was lost).
    #[test]
    fn english_month_with_next_year() {
        for s in [
            "April next year",
            "april of next year",
            "next year April",
            "next year, in April",
            "in April next year",
        ] {
            assert_eq!(parse(s), month(2027, 4), "{s:?}");
        }
        assert_eq!(parse("June next year"), month(2027, 6));
        assert_eq!(parse("15 June next year"), day(2027, 6, 15));
        assert_eq!(parse("December this year"), month(2026, 12));
        assert_eq!(
            parse_when("April next year", today()).unwrap(),
            When::Date(month(2027, 4))
        );
        // "next year" alone is still the year.
        assert_eq!(parse("next year"), year(2027));
    }

    /// 「1年以内」 is a deadline from now, kept in the owner's words like
    /// 「半年以内」, never cut to one month a year ahead.
    #[test]
    fn within_years_is_a_period_in_the_owners_words() {
        let r = |a, b| (PeriodKind::Range, Some(a), Some(b));
        for s in [
            "1年以内",
            "１年以内",
            "一年以内",
            "1年間以内",
            "within a year",
            "within 1 year",
        ] {
            assert_eq!(period(s), r(d(2026, 11, 1), d(2027, 11, 1)), "{s:?}");
        }
        assert_eq!(period("1年半以内"), r(d(2026, 11, 1), d(2028, 5, 1)));
        assert_eq!(period("2年以内"), r(d(2026, 11, 1), d(2028, 11, 1)));
        for s in ["within 6 months", "within six months", "6か月以内"] {
            assert_eq!(period(s), r(d(2026, 11, 1), d(2027, 5, 1)), "{s:?}");
        }
        let When::Period(p) = parse_when("１年以内", today()).unwrap() else {
            panic!()
        };
        assert_eq!(p.display(true), "１年以内（2026年11月〜2027年11月ごろ）");
        // 「1年後」 names a point in time: the month a year ahead.
        assert_eq!(
            parse_when("1年後", today()).unwrap(),
            When::Date(month(2027, 11))
        );
    }

    #[test]
    fn hiring_time_words_an_owner_uses() {
        let r = |a, b| (PeriodKind::Range, Some(a), Some(b));
        assert_eq!(parse("27年4月"), month(2027, 4));
        assert_eq!(parse("２７年４月１日"), day(2027, 4, 1));
        for s in ["4月入社で", "4月入社", "4月で"] {
            assert_eq!(parse(s), month(2027, 4), "{s:?}");
        }
        for s in ["なるはや", "なるはやで", "早ければ早いほど"] {
            assert_eq!(period(s), (PeriodKind::Asap, None, None), "{s:?}");
        }
        assert_eq!(period("2027年4月〜6月"), r(d(2027, 4, 1), d(2027, 6, 1)));
        assert_eq!(period("2027年4月から6月"), r(d(2027, 4, 1), d(2027, 6, 1)));
        assert_eq!(period("4月〜6月ごろ"), r(d(2027, 4, 1), d(2027, 6, 1)));
        assert_eq!(
            period("2026年12月〜2027年2月"),
            r(d(2026, 12, 1), d(2027, 2, 1))
        );
        assert_eq!(period("11月〜1月"), r(d(2026, 11, 1), d(2027, 1, 1)));
        for s in ["Q2 2027", "q2 2027", "2027 Q2", "2027Q2", "in Q2 2027"] {
            assert_eq!(period(s), r(d(2027, 4, 1), d(2027, 6, 1)), "{s:?}");
        }
        // Q4 of this year has not ended in November; Q1 is next year's.
        assert_eq!(period("Q4"), r(d(2026, 10, 1), d(2026, 12, 1)));
        assert_eq!(period("Q1"), r(d(2027, 1, 1), d(2027, 3, 1)));
        for s in [
            "end of FY",
            "by the end of the fiscal year",
            "by fiscal year end",
        ] {
            assert_eq!(period(s), r(d(2026, 11, 1), d(2027, 3, 1)), "{s:?}");
        }
    }

    #[test]
    fn undecided_is_kept_as_words() {
        for s in [
            "未定",
            "いい人がいれば",
            "時期は決まっていない",
            "undecided",
            "not decided yet",
        ] {
            assert_eq!(period(s), (PeriodKind::Open, None, None), "{s:?}");
        }
    }

    #[test]
    fn a_period_shows_the_words_and_never_an_invented_day() {
        let When::Period(p) = parse_when("来年の春", today()).unwrap() else {
            panic!()
        };
        assert_eq!(p.display(true), "来年の春（2027年3月〜5月ごろ）");
        assert_eq!(p.display(false), "来年の春 (around March–May 2027)");
        let When::Period(p) = parse_when("なるべく早く", today()).unwrap() else {
            panic!()
        };
        assert_eq!(p.display(true), "なるべく早く（できるだけ早く）");
        assert!(!p.display(true).contains("2026"));
    }

    #[test]
    fn relative_english() {
        assert_eq!(parse("next month"), month(2026, 12));
        assert_eq!(parse("Next  Month"), month(2026, 12));
        assert_eq!(parse("this month"), month(2026, 11));
        assert_eq!(parse("in 3 months"), month(2027, 2));
        assert_eq!(parse("in three months"), month(2027, 2));
        assert_eq!(parse("in a month"), month(2026, 12));
        assert_eq!(parse("in 1 year"), month(2027, 11));
        assert_eq!(parse("in 2 weeks"), day(2026, 12, 5));
        assert_eq!(parse("next year"), year(2027));
        assert_eq!(parse("tomorrow"), day(2026, 11, 22));
    }

    #[test]
    fn invalid_calendar_dates() {
        for s in [
            "2027-02-30",
            "2027年2月30日",
            "2027-13-01",
            "2027/0/1",
            "13月",
            "2月30日",
            "令和9年2月29日",
        ] {
            assert!(
                matches!(parse_date(s, today()), Err(DateError::InvalidDate(_))),
                "{s:?}: {:?}",
                parse_date(s, today())
            );
        }
        assert_eq!(
            parse_date("2027-02-30", today()).unwrap_err().to_string(),
            "「2027-02-30」 is not a real calendar date: check the month and the day"
        );
        assert_eq!(parse("2028-02-29"), day(2028, 2, 29));
    }

    #[test]
    fn out_of_range_and_unrecognised() {
        assert!(matches!(
            parse_date("3000年", today()),
            Err(DateError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_date("1800-01-01", today()),
            Err(DateError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_date("9999ヶ月後", today()),
            Err(DateError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_date("99999日後", today()),
            Err(DateError::OutOfRange(_))
        ));
        assert_eq!(parse_date(" ", today()), Err(DateError::Empty));
        for s in [
            "未定",
            "わからない",
            "27/4/1",
            "4",
            "3年",
            "2027/4/1/2",
            "R100",
            "someday",
            "令和",
        ] {
            assert!(
                matches!(parse_date(s, today()), Err(DateError::Unrecognized(_))),
                "{s:?}: {:?}",
                parse_date(s, today())
            );
        }
        assert_eq!(
            parse_date("Someday", today()),
            Err(DateError::Unrecognized("Someday".into()))
        );
        assert_eq!(
            parse_date("未定", today()).unwrap_err().to_string(),
            "could not read 「未定」 as a date: type a date such as 2027年4月, 2027-04-01, 来月 or 3ヶ月後"
        );
    }

    #[test]
    fn display_in_japanese() {
        assert_eq!(day(2027, 4, 1).to_string(), "2027年4月1日");
        assert_eq!(month(2027, 4).to_string(), "2027年4月");
        assert_eq!(year(2027).to_string(), "2027年");
    }

    #[test]
    fn serde_round_trip() {
        let v = month(2027, 4);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"date":"2027-04-01","precision":"month"}"#);
        assert_eq!(serde_json::from_str::<DateValue>(&json).unwrap(), v);
    }

    #[test]
    fn month_end_today_does_not_overflow() {
        let t = d(2027, 1, 31);
        assert_eq!(parse_date("来月", t), Ok(month(2027, 2)));
        assert_eq!(parse_date("1ヶ月後", t), Ok(month(2027, 2)));
        assert!(matches!(
            parse_date("明日", d(2100, 12, 31)),
            Err(DateError::OutOfRange(_))
        ));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = parse_date(&s, today());
            let _ = parse_date(&s, NaiveDate::MAX);
            let _ = parse_date(&s, NaiveDate::MIN);
        }
    }

    /// English month names, as an owner using the English script types
    /// them; today is 2026-11-21.
    #[test]
    fn english_month_names() {
        for s in [
            "April 2027",
            "april, 2027",
            "Apr 2027",
            "in April 2027",
            "early April 2027",
        ] {
            assert_eq!(parse(s), month(2027, 4), "{s:?}");
        }
        // Without a year: the next such month or day.
        for s in [
            "April",
            "apr.",
            "in April",
            "by April",
            "end of April",
            "next April",
        ] {
            assert_eq!(parse(s), month(2027, 4), "{s:?}");
        }
        assert_eq!(parse("November"), month(2026, 11));
        assert_eq!(parse("December"), month(2026, 12));
        assert_eq!(parse("Sept"), month(2027, 9));
        for s in ["April 15", "15 April", "15th of April", "April 15th"] {
            assert_eq!(parse(s), day(2027, 4, 15), "{s:?}");
        }
        assert_eq!(parse("November 30"), day(2026, 11, 30));
        assert_eq!(parse("November 20"), day(2027, 11, 20));
        for s in ["April 15, 2027", "15 April 2027", "Apr 15 2027"] {
            assert_eq!(parse(s), day(2027, 4, 15), "{s:?}");
        }
        // The relative forms are still read as before.
        assert_eq!(parse("in 3 months"), parse("3ヶ月後"));
        assert_eq!(parse("two weeks"), parse("2週間後"));
        // Not a month, or not a real date.
        assert!(matches!(
            parse_date("Aprilish", today()),
            Err(DateError::Unrecognized(_))
        ));
        assert!(matches!(
            parse_date("15 April 16", today()),
            Err(DateError::Unrecognized(_))
        ));
        assert!(parse_date("February 30, 2027", today()).is_err());
    }
}
