//! Numbers with units, as owners type them: "３０名", "1,000万円", "1億2000万",
//! "二千五百万円", "30人くらい".
//!
//! Units are canonicalised to the caller's expected unit. Kanji multipliers
//! (万/億/兆/千) are part of the number, so "1,000万円" is 10,000,000 with the
//! unit 円; callers never see 万円 as a unit.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::text::{excerpt, fold_for_match, normalize_input};

/// Values above this are rejected: no SME answer needs more, and staying well
/// inside f64's exact-integer range keeps conversions to u64 lossless.
const MAX_VALUE: f64 = 1e15;

/// A number with an optional unit and a flag for "about" answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub value: f64,
    /// Boxed rather than a `String`: answers are held in memory for every open
    /// conversation, and this keeps `AnswerValue` at 32 bytes instead of 40.
    pub unit: Option<Box<str>>,
    pub approx: bool,
    /// What the owner said around the number, kept as typed: 「ドライバー8名」
    /// in 「10名（ドライバー8名）」. Doubly boxed (a thin pointer): rare, and
    /// `AnswerValue` is held for every open conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Box<Box<str>>>,
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.approx {
            f.write_str("約")?;
        }
        f.write_str(&format_value(self.value))?;
        if let Some(unit) = &self.unit {
            f.write_str(unit)?;
        }
        if let Some(d) = &self.detail {
            write!(f, "（{d}）")?;
        }
        Ok(())
    }
}

impl Quantity {
    /// The quantity as an English reader expects it: "about 30 people",
    /// "10,000,000 yen". Units without an English word are kept as stored.
    pub fn display_en(&self) -> String {
        let v = format_value(self.value);
        let one = self.value == 1.0;
        let unit = match self.unit.as_deref() {
            None => String::new(),
            Some("名") => if one { " person" } else { " people" }.to_string(),
            Some("円") => " yen".to_string(),
            Some("年") => if one { " year" } else { " years" }.to_string(),
            Some("ヶ月") => if one { " month" } else { " months" }.to_string(),
            Some("日") => if one { " day" } else { " days" }.to_string(),
            Some("%") => "%".to_string(),
            Some(other) => format!(" {other}"),
        };
        let detail = self
            .detail
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        format!(
            "{}{v}{unit}{detail}",
            if self.approx { "about " } else { "" }
        )
    }
}

/// Formats a number with thousands separators and no trailing ".0".
pub(crate) fn format_value(v: f64) -> String {
    let text = if v.fract() == 0.0 && v.abs() < 1e18 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    };
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let mut out = String::from(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Errors from `parse_quantity` and the typed wrappers built on it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NumberError {
    #[error("no number given: type a number such as 30")]
    Empty,
    #[error("「{0}」 is not a number: type digits such as 30, 1.5 or 1,000万")]
    NotANumber(String),
    #[error("「{0}」 is negative: type 0 or a positive number")]
    Negative(String),
    #[error("「{0}」 is a range: give one number, e.g. 25")]
    Range(String),
    #[error("the unit 「{got}」 does not fit here: answer in {expected}, e.g. 30{expected}")]
    WrongUnit { expected: String, got: String },
    #[error("the number is too large: type a value below 1,000,000,000,000,000")]
    TooLarge,
    #[error("「{0}」 is not a whole number: type a whole number such as 25")]
    NotInteger(String),
    #[error("the number is larger than {}: check it and type it again", format_value(*.max as f64))]
    OutOfRange { max: u64 },
    #[error("「{0}」 holds more than one number: give the one asked for")]
    Several(String),
    /// An amount of money on a question about people (「資本金は300万」).
    #[error("「{0}」 looks like an amount of money: give the number of people")]
    Money(String),
    /// A word right after the number that may scale it (「10 lakh」,
    /// 「10 man yen」, 「10 Mrd」): refused rather than read as the bare number.
    #[error("「{0}」 after the number is not understood: type the number in digits, e.g. 10,000,000 or 1,000万")]
    UnknownWord(String),
    /// People named beside a count without their own (「社長とパート2名」),
    /// or a total the parts do not add up to (「社員10名、パート5名、計20名」):
    /// the total is not said, so it is asked for.
    #[error("「{0}」 does not say the total: give the number of everyone, the owner and part-timers included")]
    Total(String),
}

/// Words before a number that only repeat the question (「資本金1000万円」,
/// 「従業員は10名」): dropped rather than kept as a detail.
const QUESTION_WORDS: &[&str] = &[
    "資本金",
    "出資金",
    "出資総額",
    "資本",
    "従業員数",
    "従業員",
    "社員数",
    "社員",
    "人数",
    "スタッフ",
    "職員",
    "全部で",
    "合計で",
    "合計",
    "総勢",
    "全体で",
    "全員で",
    "全員",
    "うちは",
    "弊社は",
    "当社は",
    "うち",
    "弊社",
    "当社",
    "全部",
    "全体",
    "現在",
    "いまは",
    "今は",
    "いま",
    "今",
    "ざっと",
    "we have",
    "we are",
    "about",
    "capital",
    "employees",
    "staff",
    "total",
    "in total",
    "capital is",
];

/// Endings after a number that carry nothing (「20人でやっています」).
const TRAILING_NOISE: &[&str] = &[
    "でやっています",
    "でやってます",
    "でやっている",
    "でやってる",
    "でしています",
    "で運営しています",
    "です",
    "います",
    "いる",
    "おります",
    "ほどです",
    "くらいです",
    "になります",
    "ですね",
    "だ",
    "です。",
    "。",
    "ほど",
    "くらい",
    "ぐらい",
    "程度",
    "ちょっと",
    "in total",
    "total",
    "or so",
];

/// Reads a number inside a short phrase: 「資本金1000万円」, 「出資金3,825万円」,
/// 「10名（ドライバー8名）」 (10, with 「ドライバー8名」 kept as the detail),
/// 「社員は20人くらいです」. Two numbers with no telling which is meant
/// (「10名か20名」) are refused rather than guessed.
pub fn parse_quantity_in_phrase(
    s: &str,
    expected_unit: Option<&str>,
) -> Result<Quantity, NumberError> {
    let n = normalize_input(s);
    let shown = excerpt(&n);
    if expected_unit == Some("名") {
        if let Some(read) = headcount_words(&n, s) {
            return read;
        }
        if names_money(&n) {
            return Err(NumberError::Money(shown));
        }
        // 「2020年創業、30名」: a year is when, not how many; the rest is read.
        let without_year = RE_YEAR_OF_FOUNDING.replace_all(&n, "");
        if without_year != n && without_year.chars().any(|c| c.is_ascii_digit()) {
            return parse_quantity_in_phrase(&without_year, expected_unit);
        }
    }
    // 「十数名」「20数名」「数百万円」「数名」 name a span, not a number: ask
    // for one. A detail may hold one (「10名（うち数名はパート）」).
    if names_a_span(&split_detail(&n).0) {
        return Err(NumberError::Range(shown));
    }
    let first = parse_quantity(s, expected_unit);
    // A detail in brackets or after 「うち」 is kept, not parsed as the answer
    // (its 「ー」 or second number would otherwise read as a range).
    let (main, detail) = split_detail(&n);
    match &first {
        Err(NumberError::NotANumber(_)) | Err(NumberError::WrongUnit { .. }) => {}
        Err(NumberError::Range(_)) if detail.is_some() => {}
        _ => return first,
    }
    let main = main.trim();
    let Some(start) = main.find(|c: char| c.is_ascii_digit()) else {
        return first;
    };
    let (mut label, rest) = main.split_at(start);
    // A hedge just before the number belongs to it (「資本金約1000万円」).
    let mut number_from = rest.to_string();
    for p in APPROX_PREFIXES {
        if let Some(l) = label.strip_suffix(p) {
            number_from = format!("{p}{rest}");
            label = l;
            break;
        }
    }
    // The longest start of the rest that is a number with its unit.
    let cut: Vec<usize> = number_from
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain([number_from.len()])
        .collect();
    let mut found = None;
    for &k in cut.iter().rev() {
        if let Ok(q) = parse_quantity(&number_from[..k], expected_unit) {
            found = Some((q, &number_from[k..]));
            break;
        }
    }
    let Some((mut q, tail)) = found else {
        return first;
    };
    if let Some(word) = scale_like_word(&number_from[..number_from.len() - tail.len()], tail) {
        // 「20-something」「30-odd」 are spans like 「20数名」.
        if ["something", "odd"].contains(&word.to_ascii_lowercase().as_str()) {
            return Err(NumberError::Range(shown));
        }
        return Err(NumberError::UnknownWord(word));
    }
    // A cut that leaves a unit behind changed the unit (「30円」 for a
    // headcount): that is the owner's unit, not noise.
    let tail_key = fold_for_match(tail);
    if UNIT_GROUPS
        .iter()
        .flat_map(|g| g.iter())
        .any(|u| !u.is_empty() && tail_key.starts_with(&fold_for_match(u)))
    {
        return match first {
            Err(e @ NumberError::WrongUnit { .. }) => Err(e),
            _ => Err(NumberError::WrongUnit {
                expected: expected_unit.unwrap_or("").to_string(),
                got: tail.trim().to_string(),
            }),
        };
    }
    let mut tail = tail.trim().to_string();
    loop {
        let before = tail.len();
        for w in TRAILING_NOISE {
            if let Some(t) = tail.strip_prefix(w).or_else(|| tail.strip_suffix(w)) {
                tail = t.trim().to_string();
            }
        }
        if tail.len() == before {
            break;
        }
    }
    if tail.chars().any(|c| c.is_ascii_digit()) {
        return Err(NumberError::Several(shown));
    }
    let label = label
        .trim()
        .trim_end_matches(['は', 'が', ':', '：', 'で', 'も', '、', ',']);
    let label_is_question = label.is_empty()
        || QUESTION_WORDS.iter().any(|w| {
            label.eq_ignore_ascii_case(w)
                || label.to_lowercase().trim_end_matches(['、', ',', ' ']) == *w
        });
    let mut notes: Vec<String> = Vec::new();
    if !label_is_question {
        notes.push(label.to_string());
    }
    if let Some(d) = detail {
        notes.push(d);
    }
    if !notes.is_empty() {
        q.detail = Some(Box::new(notes.join("、").into_boxed_str()));
    }
    Ok(q)
}

/// A year with 年 and what happened in it (「2020年創業、」「創業1998年」),
/// on a question about people: it dates the company, it counts no one.
static RE_YEAR_OF_FOUNDING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:創業|設立|創立|開業)?(?:19|20)\d{2}年(?:に)?(?:創業|設立|創立|開業|から|より)?(?:して|で|の)?[、,。 ]*",
    )
    .expect("a valid constant pattern")
});

/// One kind of worker with its headcount: 「社員10名」「パート：5人」
/// 「非常勤 7名」「アルバイトさん約3人」.
static RE_KIND_COUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(正社員|正規社員|正規|非正規|契約社員|派遣社員|嘱託社員|社員|従業員|職員|スタッフ|",
        r"パートさん|パート|アルバイト|バイト|非常勤|常勤|契約|派遣|嘱託|役員|社長|家族|",
        r"技能実習生|実習生|事務員?|職人|ドライバー|看護師|介護職員?|full[- ]?time|part[- ]?time)",
        r"(?:さん|の方)?(?:は|が|:|：|=)? ?(約|およそ)?(\d{1,6}) ?(?:名|人|[、,，/・+&。]|$)",
    ))
    .expect("a valid constant pattern")
});

/// A kind of worker after its count, in English: "10 staff", "5
/// part-timers", "10 full-time".
static RE_KIND_COUNT_EN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\b(about |around |approximately |~)?(\d{1,6}) ?",
        r"(?:full[- ]?timers?|part[- ]?timers?|full[- ]?time|part[- ]?time|staff|employees?|",
        r"workers?|drivers?|regulars?|temps?|contractors?|family members?)",
        r"(?: (?:staff|employees?|workers?))?\b",
    ))
    .expect("a valid constant pattern")
});

/// A total said as one (「計15名」「合計15名」「=15名」「パート5名を含めて
/// 15名」「社長と妻の2人」, "15 in total"). Group 1 is a marker the total's
/// words keep (「含めて」), group 2 one they drop (「計」), group 3 the hedge,
/// group 4 the number; group 5 marks "N in total".
static RE_TOTAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?:(含めて|含めると|含め|含んで|入れて|込みで|込み)|",
        r"(合計で?|総計で?|計|全部で|全体で|全員で|総勢|合わせて|あわせて|=|の|",
        r"\btotal(?: of)?|altogether|in all))",
        r" ?(?:は|で|:|：)? ?(約|およそ)?(\d{1,6}) ?(?:名|人|people|persons?)?",
        r"|(\d{1,6}) ?(?:people |persons? |staff |employees? )?(?:in total|in all|altogether|total)\b",
    ))
    .expect("a valid constant pattern")
});

/// Kinds of people an owner may name without a count of their own
/// (「社長とパート2名」「私と妻、パート3名」, "me and 2 part-timers"):
/// beside one count, the total is not said.
static RE_PEOPLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)社長|代表|専務|常務|役員|妻|夫|嫁|家内|主人|奥さん|息子|娘|父|母|両親|親|",
        r"兄|弟|姉|妹|家族|私|わたし|自分|僕|俺|パート|アルバイト|バイト|実習生|",
        r"\b(?:me|myself|my wife|my husband|wife|husband|owner|family|part[- ]?timers?)\b",
    ))
    .expect("a valid constant pattern")
});

/// Words that say a count includes others (「パート含む」「家族を入れて」,
/// "including part-timers"): the count is the total.
const INCLUSIVE_WORDS: &[&str] = &[
    "含む",
    "含め",
    "含ん",
    "入れて",
    "込み",
    "込",
    "合わせ",
    "あわせ",
    "合計",
    "計",
    "全部で",
    "全員",
    "総勢",
    "including",
    "incl",
    "total",
    "altogether",
    "in all",
];

/// Where a subset begins (「10名、うちパート5名」「10名(うちパート5名)」):
/// what follows is part of the number before it, not more people.
fn subset_start(n: &str) -> usize {
    for m in ["そのうち", "うち"] {
        let mut from = 0;
        while let Some(i) = n[from..].find(m).map(|i| i + from) {
            if n[..i].chars().any(|c| c.is_ascii_digit()) {
                return i;
            }
            from = i + m.len();
        }
    }
    n.len()
}

/// The headcount reading on a question that counts everyone (パートを含む):
///
/// - 「社員10名、パート5名」: every number is the headcount of a named kind
///   of worker, so the answer is their sum, with the owner's breakdown kept
///   as the detail (「15名（社員10名、パート5名）」);
/// - a total said as one (「社員10名、パート5名、計15名」「パート5名を含めて
///   15名」「社長と妻の2人」) is the answer when the parts fit in it, and
///   asked about when they do not (「…、計20名」);
/// - people named without a count beside one count (「社長とパート2名」
///   「社員5名+パート」) leave the total unsaid: it is asked for.
///
/// Anything else (a year, a word not known here) leaves the answer to the
/// usual reading (`None`).
fn headcount_words(n: &str, typed: &str) -> Option<Result<Quantity, NumberError>> {
    if let Some(q) = sole_headcount(n) {
        return Some(Ok(q));
    }
    if !n.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let subset = subset_start(n);
    // (start, end, value, approx) of each kind of worker with its count.
    let mut kinds: Vec<(usize, usize, f64, bool)> = Vec::new();
    for c in RE_KIND_COUNT.captures_iter(n) {
        let m = c.get(0)?;
        kinds.push((m.start(), m.end(), c[3].parse().ok()?, c.get(2).is_some()));
    }
    for c in RE_KIND_COUNT_EN.captures_iter(n) {
        let m = c.get(0)?;
        if kinds.iter().any(|k| m.start() < k.1 && k.0 < m.end()) {
            continue;
        }
        kinds.push((m.start(), m.end(), c[2].parse().ok()?, c.get(1).is_some()));
    }
    kinds.sort_by_key(|k| k.0);
    // People named outside any count and outside a subset.
    let mut outside = n[..subset].to_string();
    for k in kinds.iter().filter(|k| k.1 <= subset) {
        outside.replace_range(k.0..k.1, &" ".repeat(k.1 - k.0));
    }
    for w in [
        "私たち",
        "わたしたち",
        "私ども",
        "私共",
        "家族経営",
        "親会社",
        "母体",
        "大丈夫",
        "工夫",
    ] {
        outside = outside.replace(w, &" ".repeat(w.len()));
    }
    let uncounted = RE_PEOPLE.is_match(&outside);

    let total = RE_TOTAL
        .captures_iter(n)
        .find(|c| c.get(2).is_none_or(|m| m.as_str() != "の" || uncounted));
    if let Some(t) = total {
        let m = t.get(0)?;
        let (value, approx) = match (t.get(4), t.get(5)) {
            (Some(v), _) | (None, Some(v)) => (v.as_str().parse::<f64>().ok()?, t.get(3).is_some()),
            _ => return None,
        };
        let parts: Vec<_> = kinds
            .iter()
            .filter(|k| k.1 <= m.start() || k.0 >= m.end())
            .filter(|k| k.0 < subset)
            .collect();
        // Another number than the parts and the total: not read here.
        let mut rest = n.to_string();
        for (a, b) in parts
            .iter()
            .map(|k| (k.0, k.1))
            .chain([(m.start(), m.end())])
        {
            rest.replace_range(a..b, &" ".repeat(b - a));
        }
        if rest[..subset.min(rest.len())]
            .chars()
            .any(|c| c.is_ascii_digit())
        {
            return None;
        }
        if parts.is_empty() && !uncounted {
            return None;
        }
        let sum: f64 = parts.iter().map(|k| k.2).sum();
        let fits = if t.get(1).is_some() || uncounted {
            sum <= value
        } else {
            parts.is_empty() || sum == value
        };
        if !fits {
            return Some(Err(NumberError::Total(excerpt(n))));
        }
        // What follows the total may only hedge it or end the sentence.
        let mut after = n[m.end()..].trim().to_string();
        let mut hedged = false;
        loop {
            let before = after.len();
            for w in TRAILING_NOISE.iter().chain(APPROX_SUFFIXES) {
                if let Some(a) = after.strip_prefix(w) {
                    hedged |= APPROX_SUFFIXES.contains(w);
                    after = a.trim().to_string();
                }
            }
            after = after.trim_start_matches(['.', '!', ' ']).to_string();
            if after.len() == before {
                break;
            }
        }
        if !after.is_empty() && subset >= n.len() {
            return None;
        }
        let words_end = match t.get(1) {
            Some(_) => t.get(3).or(t.get(4)).map_or(m.start(), |x| x.start()),
            None => t.get(2).or(t.get(5)).map_or(m.start(), |x| x.start()),
        };
        let mut words = n[..words_end]
            .trim()
            .trim_end_matches([' ', '、', ',', '。', 'の', ':', '：']);
        for w in ["で", "は", "が"] {
            words = words.strip_suffix(w).unwrap_or(words);
        }
        let mut words = words.trim_end_matches([' ', '、', ',']).to_string();
        if subset < n.len() && !after.is_empty() {
            words = format!("{words}、{after}");
        }
        return Some(Ok(Quantity {
            value,
            unit: Some("名".into()),
            approx: approx || hedged,
            detail: (!words.is_empty()).then(|| Box::new(words.into_boxed_str())),
        }));
    }
    let lower = n.to_lowercase();
    if uncounted && !INCLUSIVE_WORDS.iter().any(|w| lower.contains(w)) {
        return Some(Err(NumberError::Total(excerpt(n))));
    }

    let mut total = 0.0;
    let mut approx = false;
    let mut rest = String::new();
    let mut last = 0;
    for k in &kinds {
        rest.push_str(&n[last..k.0]);
        last = k.1;
        total += k.2;
        approx |= k.3;
    }
    rest.push_str(&n[last..]);
    let mut between = rest.to_lowercase();
    for w in [
        "でいます",
        "います",
        "です",
        "および",
        "及び",
        "と",
        "and",
        "plus",
    ] {
        between = between.replace(w, "");
    }
    let between_is_noise = between
        .chars()
        .all(|c| c.is_whitespace() || "、,，/・+&。.".contains(c));
    if kinds.len() < 2 || !between_is_noise {
        return None;
    }
    let typed = super::text::clean_text(typed);
    let words = typed
        .trim_end_matches(['。', '.'])
        .trim_end_matches("です")
        .trim_end_matches(['、', ',', ' ']);
    Some(Ok(Quantity {
        value: total,
        unit: Some("名".into()),
        approx,
        detail: Some(Box::new(words.trim().into())),
    }))
}

/// An owner who works alone (「ひとり」「社長だけです」, "just me") or with one
/// other (「ふたり」「夫婦で」): the count their words name.
fn sole_headcount(n: &str) -> Option<Quantity> {
    let key = fold_for_match(n);
    let mut key = key.trim_end_matches(['。', '.', '!']);
    for ending in ["でやっています", "でやってます", "です", "で"] {
        key = key.strip_suffix(ending).unwrap_or(key);
    }
    let only = ["だけ", "のみ"].iter().find_map(|w| key.strip_suffix(w));
    let key = only.unwrap_or(key);
    // A count in words, said alone or with "only".
    const ONE: &[&str] = &[
        "ひとり",
        "一人",
        "わたしひとり",
        "わたし一人",
        "私ひとり",
        "私一人",
        "自分ひとり",
        "自分一人",
        "社長ひとり",
        "社長一人",
        "justme",
        "onlyme",
        "meonly",
        "justmyself",
        "onlymyself",
        "it'sjustme",
        "itsjustme",
    ];
    // Who, which counts one only with 「だけ」「のみ」: 「社長」 alone may
    // answer another question.
    const WHO: &[&str] = &["社長", "代表", "私", "わたし", "自分", "僕", "俺"];
    const TWO: &[&str] = &["ふたり", "二人", "夫婦", "夫婦ふたり", "夫婦二人"];
    let value = if ONE.contains(&key) || (only.is_some() && WHO.contains(&key)) {
        1.0
    } else if TWO.contains(&key) {
        2.0
    } else {
        return None;
    };
    Some(Quantity {
        value,
        unit: Some("名".into()),
        approx: false,
        detail: None,
    })
}

/// Words that make a number an amount of money (「資本金は300万」「売上1億」),
/// which a question about people cannot take. A bare unit (「30円」) is left
/// to the unit check, which names the unit to use.
fn names_money(n: &str) -> bool {
    let lower = n.to_lowercase();
    [
        "資本金",
        "出資金",
        "売上",
        "年商",
        "capital",
        "revenue",
        "sales",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// Whether the text names a span rather than a number: 数 next to a numeral
/// (「十数名」「20数名」「30数人」「数十名」「100数十名」「数百万円」) or
/// before a counter (「数名」「数人」). 数 after a word and before digits is
/// part of the word (「従業員数30名」) and does not count.
fn names_a_span(n: &str) -> bool {
    let chars: Vec<char> = n.chars().collect();
    chars.iter().enumerate().any(|(i, &c)| {
        if c != '数' {
            return false;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        before.is_some_and(is_number_char)
            || after.is_some_and(|a| {
                small_multiplier(a).is_some()
                    || big_multiplier(a).is_some()
                    || matches!(a, '名' | '人')
            })
    })
}

/// Words that may follow a bare number without scaling it ("30 and
/// growing", "45 full-time employees").
const HARMLESS_WORDS: &[&str] = &[
    "and",
    "or",
    "at",
    "in",
    "of",
    "on",
    "as",
    "so",
    "for",
    "with",
    "including",
    "incl",
    "plus",
    "but",
    "if",
    "not",
    "now",
    "right",
    "currently",
    "today",
    "this",
    "these",
    "give",
    "more",
    "total",
    "altogether",
    "overall",
    "full",
    "fulltime",
    "part",
    "parttime",
    "regular",
    "permanent",
    "workers",
    "members",
    "staffs",
    "heads",
];

/// Kana readings of the kanji scales (「10まん円」): the owner meant a scale
/// the parser does not read.
const KANA_SCALES: &[&str] = &["まん", "せん", "おく", "ちょう", "ひゃく"];

/// After `parse_quantity_in_phrase` has read `prefix` as the number and left
/// `tail`: the word in the tail that may be a scale, if there is one. A
/// Latin word right after a bare number (「10 lakh」「10 man yen」「10
/// millon」), a kana scale (「10まん」) or a cut inside a word (「10 Mrd」
/// read as 「10 M」) could change the number by orders of magnitude, so it is
/// refused rather than dropped.
fn scale_like_word(prefix: &str, tail: &str) -> Option<String> {
    let tail_word = |t: &str| -> String {
        t.chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
    };
    // A cut inside a Latin word: fine only after a whole unit word
    // ("30 staffs" is read as 30 staff).
    let prefix_letters: String = {
        let mut v: Vec<char> = prefix
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        v.reverse();
        v.into_iter().collect()
    };
    if !prefix_letters.is_empty() && tail.starts_with(|c: char| c.is_ascii_alphabetic()) {
        let is_unit = UNIT_GROUPS
            .iter()
            .flat_map(|g| g.iter())
            .any(|u| fold_for_match(u) == fold_for_match(&prefix_letters));
        return (!is_unit).then(|| format!("{prefix_letters}{}", tail_word(tail)));
    }
    // Only a bare number is at risk: after a unit the rest is a remark.
    let bare = prefix.trim_end().chars().last().is_some_and(is_number_char);
    if !bare {
        return None;
    }
    let t = tail.trim_start().trim_start_matches(['-', '‐']);
    let word = tail_word(t);
    if !word.is_empty() {
        let lower = word.to_ascii_lowercase();
        return (!HARMLESS_WORDS.contains(&lower.as_str())).then_some(word);
    }
    let key = fold_for_match(t);
    KANA_SCALES
        .iter()
        .find(|k| key.starts_with(*k))
        .map(|_| t.chars().take_while(|c| !c.is_whitespace()).collect())
}

/// Splits 「10名（ドライバー8名）」 into 「10名」 and 「ドライバー8名」, and
/// 「10名、うちドライバー8名」 into 「10名」 and 「うちドライバー8名」.
fn split_detail(s: &str) -> (String, Option<String>) {
    if let Some(i) = s.find(['(', '（']) {
        let inner = s[i..]
            .trim_start_matches(['(', '（'])
            .trim_end_matches([')', '）', '。', ' '])
            .trim();
        // 「うち」 stays: 「10名(うちパート5名)」 counts the part-timers in
        // the ten, 「10名(パート5名)」 may be read as ten and five more.
        return (
            s[..i].to_string(),
            (!inner.is_empty()).then(|| inner.to_string()),
        );
    }
    for m in ["、そのうち", "、うち", ",うち", " うち", "そのうち", "うち"] {
        if let Some(i) = s.find(m) {
            // 「うちは10名」: 「うち」 meaning "we" comes before the number.
            if !s[..i].chars().any(|c| c.is_ascii_digit()) {
                continue;
            }
            // The detail keeps the owner's 「うち」 (「うちドライバー8名」).
            let from = i + m.len() - m.trim_start_matches(['、', ',', ' ']).len();
            let d = s[from..].trim().trim_end_matches(['。', ' ']);
            return (s[..i].to_string(), (!d.is_empty()).then(|| d.to_string()));
        }
    }
    (s.to_string(), None)
}

/// Words that mark an answer as approximate. Owners often hedge, and the
/// hedge should not make the answer unparseable. 以上/以下/強/弱 are bounds
/// rather than estimates, but for a first consultation "about" is close enough.
const APPROX_PREFIXES: &[&str] = &[
    "約",
    "およそ",
    "おおよそ",
    "大体",
    "だいたい",
    "ほぼ",
    "概ね",
    "おおむね",
    "approximately",
    "approx.",
    "approx",
    "about",
    "around",
    "roughly",
    "ca.",
    "~",
    "〜",
];
const APPROX_SUFFIXES: &[&str] = &[
    "くらい",
    "ぐらい",
    "位",
    "程度",
    "前後",
    "ほど",
    "程",
    "以上",
    "以下",
    "強",
    "弱",
    "ちょっと",
    "ちょい",
    "~",
    "〜",
    "ish",
];
/// Chat endings that carry no information.
const NOISE_SUFFIXES: &[&str] = &["です", "。", ".", "!", "、", "?"];
const RANGE_MARKERS: &[&str] = &["~", "〜", "-", "−", "–", "—", "ー", "から", "to"];

/// Known unit groups: canonical unit first, then synonyms. Synonyms are
/// compared after `fold_for_match`, so カ月 and か月 are the same entry.
const UNIT_GROUPS: &[&[&str]] = &[
    &["円", "yen", "jpy", "えん"],
    &[
        "名",
        "人",
        "people",
        "persons",
        "person",
        "employees",
        "employee",
        "staff",
        "にん",
        "めい",
    ],
    &["年", "年間", "years", "year", "yrs", "yr", "ねん"],
    &[
        "ヶ月",
        "か月",
        "ケ月",
        "箇月",
        "ヵ月",
        "ヶ月間",
        "か月間",
        "ケ月間",
        "箇月間",
        "ヵ月間",
        "months",
        "month",
        "かげつ",
    ],
    &["日", "日間", "days", "day", "にち"],
    &["%", "パーセント", "percent", "pct"],
];

/// Parses a number as owners type it. `expected_unit` is the unit the
/// question asks for; a typed synonym is converted to it, a missing unit
/// defaults to it, and an incompatible unit is an error. Without an expected
/// unit, a known synonym is canonicalised (人 → 名) and any other trailing
/// word is kept as typed.
pub fn parse_quantity(s: &str, expected_unit: Option<&str>) -> Result<Quantity, NumberError> {
    let normalized = normalize_input(s);
    let shown = excerpt(&normalized);
    let compact: String = normalized
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(NumberError::Empty);
    }
    // The same text with ASCII letters in their typed case, byte for byte
    // aligned with `compact`: "10M" is ten million, "10m" is not. Should
    // lowercasing ever change a length, no case is known and M/B are not
    // read as scales.
    let cased: String = {
        let mut out = String::with_capacity(compact.len());
        for c in normalized.chars().filter(|c| !c.is_whitespace()) {
            if c.is_ascii() {
                out.push(c);
            } else {
                out.extend(c.to_lowercase());
            }
        }
        if out.len() == compact.len() {
            out
        } else {
            compact.clone()
        }
    };

    let (mut body, mut approx) = strip_markers(&compact);
    if let Some(rest) = body.strip_prefix(['-', '−', '▲', '△']).or_else(|| {
        body.strip_prefix("マイナス")
            .or_else(|| body.strip_prefix("minus"))
    }) {
        if rest.starts_with(is_number_char) {
            return Err(NumberError::Negative(shown));
        }
    }
    // A leading yen sign is a unit written before the number.
    let mut typed_unit = String::new();
    if let Some(rest) = body.strip_prefix(['¥', '\\']) {
        typed_unit.push('円');
        body = rest;
    }
    // Hedges can sit between a prefixed yen sign and the number (¥約30万).
    let (inner, inner_approx) = strip_markers(body);
    body = inner;
    approx |= inner_approx;

    let split = body
        .char_indices()
        .find(|&(_, c)| !is_number_char(c))
        .map_or(body.len(), |(i, _)| i);
    let (digits, rest) = body.split_at(split);
    if digits.is_empty() {
        return Err(NumberError::NotANumber(shown));
    }
    if let Some(after) = RANGE_MARKERS
        .iter()
        .find_map(|m| rest.split_once(m).map(|(_, a)| a))
    {
        if after.chars().any(is_number_char) {
            return Err(NumberError::Range(shown));
        }
    }
    let mut value = parse_number(digits).ok_or_else(|| NumberError::NotANumber(shown.clone()))?;

    // English scales after Arabic digits: "10 million yen", "1.5bn", "300k".
    let mut rest = rest;
    let offset = rest.as_ptr() as usize - compact.as_ptr() as usize;
    let rest_cased = cased.get(offset..).unwrap_or(rest);
    if let Some((scale, len)) = english_scale(rest, rest_cased) {
        let after = &rest[len..];
        let unit_ahead = !typed_unit.is_empty();
        // A unit the question takes is read as a unit ("10km" for km), and
        // the scale only counts when nothing or a unit follows it ("10kg"
        // is not ten thousand g).
        if !unit_fits(rest, expected_unit, unit_ahead)
            && (after.is_empty() || unit_fits(after, expected_unit, unit_ahead))
        {
            // 「1万 million」 mixes two ways of scaling: not guessed.
            if !digits
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
            {
                return Err(NumberError::NotANumber(shown));
            }
            value *= scale;
            rest = after;
        }
    }

    // "1年半", "3ヶ月半": a trailing 半 adds one half of the unit.
    let mut unit_text = rest;
    if let Some(stripped) = rest.strip_suffix('半') {
        if !stripped.is_empty() {
            value += 0.5;
            unit_text = stripped;
        }
    }
    if !typed_unit.is_empty()
        && !unit_text.is_empty()
        && !unit_group("円").contains(&fold_for_match(unit_text).as_str())
    {
        return Err(NumberError::NotANumber(shown));
    }
    if typed_unit.is_empty() {
        typed_unit = unit_text.to_string();
    }
    // Digits after the unit mean two numbers ("30名40名"); we do not guess
    // which one was meant.
    if typed_unit.chars().any(|c| c.is_ascii_digit()) {
        return Err(NumberError::NotANumber(shown));
    }

    let unit = resolve_unit(&typed_unit, expected_unit)?;
    let value = snap(value);
    if !value.is_finite() || value > MAX_VALUE {
        return Err(NumberError::TooLarge);
    }
    Ok(Quantity {
        value,
        unit: unit.map(String::into_boxed_str),
        approx,
        detail: None,
    })
}

/// English scale words and abbreviations, longest first. The one-letter M
/// and B count only in capitals (a lowercase m is metres or minutes).
const ENGLISH_SCALES: &[(&str, f64)] = &[
    ("thousands", 1e3),
    ("thousand", 1e3),
    ("millions", 1e6),
    ("million", 1e6),
    ("billions", 1e9),
    ("billion", 1e9),
    ("mn", 1e6),
    ("bn", 1e9),
    ("k", 1e3),
    ("m", 1e6),
    ("b", 1e9),
];

/// The English scale `rest` starts with, and its length in bytes. `lower`
/// is lowercased; `cased` is the same text as typed.
fn english_scale(lower: &str, cased: &str) -> Option<(f64, usize)> {
    let &(word, scale) = ENGLISH_SCALES.iter().find(|(w, _)| lower.starts_with(w))?;
    if word.len() == 1 && word != "k" && !cased.starts_with(&word.to_ascii_uppercase()) {
        return None;
    }
    Some((scale, word.len()))
}

/// Whether `typed` reads as a unit here: one the question takes, or (with
/// no unit asked) a known one. After a leading ¥ only a yen word fits.
fn unit_fits(typed: &str, expected: Option<&str>, yen_sign: bool) -> bool {
    if typed.is_empty() {
        return false;
    }
    if yen_sign {
        return unit_group("円").contains(&fold_for_match(typed).as_str());
    }
    match expected {
        Some(_) => resolve_unit(typed, expected).is_ok(),
        None => {
            let key = fold_for_match(typed);
            UNIT_GROUPS
                .iter()
                .any(|g| g.iter().any(|u| fold_for_match(u) == key))
        }
    }
}

/// Removes hedges and chat noise from both ends, reporting whether a hedge
/// was found. Loops because owners stack them: "約30名くらいです".
fn strip_markers(s: &str) -> (&str, bool) {
    let mut s = s;
    let mut approx = false;
    loop {
        let before = s.len();
        for noise in NOISE_SUFFIXES {
            s = s.strip_suffix(noise).unwrap_or(s);
        }
        for marker in APPROX_SUFFIXES {
            if let Some(rest) = s.strip_suffix(marker) {
                s = rest;
                approx = true;
            }
        }
        for marker in APPROX_PREFIXES {
            if let Some(rest) = s.strip_prefix(marker) {
                s = rest;
                approx = true;
            }
        }
        if s.len() == before {
            return (s, approx);
        }
    }
}

fn unit_group(canonical: &str) -> &'static [&'static str] {
    UNIT_GROUPS
        .iter()
        .copied()
        .find(|g| {
            g.iter()
                .any(|u| fold_for_match(u) == fold_for_match(canonical))
        })
        .unwrap_or(&[])
}

fn resolve_unit(typed: &str, expected: Option<&str>) -> Result<Option<String>, NumberError> {
    let typed_key = fold_for_match(typed);
    let known_group = UNIT_GROUPS
        .iter()
        .find(|g| g.iter().any(|u| fold_for_match(u) == typed_key));
    match expected {
        None if typed.is_empty() => Ok(None),
        None => Ok(Some(known_group.map_or(typed, |g| g[0]).to_string())),
        Some(expected) => {
            let expected_key = fold_for_match(expected);
            let canonical = UNIT_GROUPS
                .iter()
                .find(|g| g.iter().any(|u| fold_for_match(u) == expected_key))
                .map_or(expected.trim(), |g| g[0]);
            let fits = typed.is_empty()
                || typed_key == expected_key
                || known_group.is_some_and(|g| g[0] == canonical);
            if fits {
                Ok(Some(canonical.to_string()))
            } else {
                Err(NumberError::WrongUnit {
                    expected: canonical.to_string(),
                    got: excerpt(typed),
                })
            }
        }
    }
}

fn is_number_char(c: char) -> bool {
    c.is_ascii_digit()
        || matches!(c, ',' | '.')
        || kanji_digit(c).is_some()
        || small_multiplier(c).is_some()
        || big_multiplier(c).is_some()
}

fn kanji_digit(c: char) -> Option<u32> {
    "〇一二三四五六七八九"
        .chars()
        .position(|k| k == c)
        .map(|p| p as u32)
        .or((c == '零').then_some(0))
}

fn small_multiplier(c: char) -> Option<f64> {
    match c {
        '十' => Some(10.0),
        '百' => Some(100.0),
        '千' => Some(1_000.0),
        _ => None,
    }
}

fn big_multiplier(c: char) -> Option<f64> {
    match c {
        '万' => Some(1e4),
        '億' => Some(1e8),
        '兆' => Some(1e12),
        _ => None,
    }
}

/// Parses digits with Japanese multipliers, mixing Arabic and kanji numerals
/// the way people write amounts: "1億2000万", "3千万", "二千五百", "1.5億".
/// Returns None for anything malformed rather than guessing.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let chars: Vec<char> = s.chars().collect();
    let mut total = 0.0;
    let mut section = 0.0; // the part below the current 万/億/兆
    let mut pending: Option<f64> = None; // a number not yet multiplied
    let mut last_big = f64::INFINITY;
    let mut last_small = f64::INFINITY;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' || c == ',' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == ',')
            {
                i += 1;
            }
            if pending.is_some() {
                return None;
            }
            let run: String = chars[start..i].iter().collect();
            pending = Some(parse_arabic(&run)?);
            continue;
        }
        if kanji_digit(c).is_some() {
            // Consecutive kanji digits are positional, as in 二〇二七.
            let mut n = 0.0;
            while let Some(d) = chars.get(i).and_then(|&c| kanji_digit(c)) {
                n = n * 10.0 + f64::from(d);
                i += 1;
            }
            if pending.is_some() {
                return None;
            }
            pending = Some(n);
            continue;
        }
        if let Some(m) = small_multiplier(c) {
            if m >= last_small {
                return None;
            }
            last_small = m;
            section += pending.take().unwrap_or(1.0) * m;
        } else if let Some(m) = big_multiplier(c) {
            if m >= last_big {
                return None;
            }
            last_big = m;
            last_small = f64::INFINITY;
            if pending.is_none() && section == 0.0 {
                // A bare 万 or 億 means one of it, but only at the start:
                // "1兆億" is a typo, not 1兆1億.
                if i > 0 {
                    return None;
                }
                total += m;
            } else {
                total += (section + pending.take().unwrap_or(0.0)) * m;
            }
            section = 0.0;
        } else {
            return None;
        }
        i += 1;
    }
    // Overflow to infinity is left for the caller to report as too large.
    Some(total + section + pending.unwrap_or(0.0))
}

/// Parses "1,000", "1.5" or "30". Commas must group thousands, so a typo such
/// as "1,00" is reported instead of silently becoming 100.
fn parse_arabic(run: &str) -> Option<f64> {
    let (int, frac) = match run.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (run, None),
    };
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let mut groups = int.split(',');
    let first = groups.next()?;
    if first.is_empty() || (int.contains(',') && first.len() > 3) {
        return None;
    }
    let mut digits = first.to_string();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        digits.push_str(group);
    }
    if let Some(frac) = frac {
        digits.push('.');
        digits.push_str(frac);
    }
    digits.parse().ok()
}

/// Removes floating-point dust from decimal multiplications (1.1万 is
/// 11000.000000000002 in f64), so stored values look like what was typed.
fn snap(v: f64) -> f64 {
    let r = v.round();
    if (v - r).abs() < 1e-9 * v.abs().max(1.0) {
        r
    } else {
        v
    }
}

/// A head count, such as the number of employees. Hedges ("約30名") are
/// accepted and dropped: the count is what routing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmployeeCount(u32);

impl EmployeeCount {
    pub const MAX: u32 = 1_000_000;

    pub fn parse(s: &str) -> Result<EmployeeCount, NumberError> {
        let q = parse_quantity(s, Some("名"))?;
        let n = whole(&q, s)?;
        if n > u64::from(Self::MAX) {
            return Err(NumberError::OutOfRange {
                max: u64::from(Self::MAX),
            });
        }
        Ok(EmployeeCount(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for EmployeeCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}名", format_value(f64::from(self.0)))
    }
}

/// An amount of money in yen. "1,000万円", "1.5億" and "¥300,000" all work;
/// hedges are accepted and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MoneyYen(u64);

impl MoneyYen {
    pub fn parse(s: &str) -> Result<MoneyYen, NumberError> {
        let q = parse_quantity(s, Some("円"))?;
        Ok(MoneyYen(whole(&q, s)?))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for MoneyYen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}円", format_value(self.0 as f64))
    }
}

fn whole(q: &Quantity, input: &str) -> Result<u64, NumberError> {
    if q.value.fract() != 0.0 {
        return Err(NumberError::NotInteger(excerpt(&normalize_input(input))));
    }
    // parse_quantity caps values at 1e15, so the cast is exact.
    Ok(q.value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(s: &str) -> Result<Quantity, NumberError> {
        parse_quantity_in_phrase(s, Some("名"))
    }

    /// On a question that counts everyone, headcounts of named kinds of
    /// workers add up; the owner's breakdown stays visible.
    #[test]
    fn headcounts_of_kinds_of_workers_are_summed() {
        for (s, total) in [
            ("社員10名、パート5名", 15.0),
            ("常勤１８名、非常勤７名", 25.0),
            ("正社員８人 パート１２人", 20.0),
            ("正社員3名と契約社員2名とアルバイト4名です", 9.0),
            ("役員2名、社員は5名", 7.0),
            ("正社員10名とパート5名", 15.0),
        ] {
            let q = people(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(q.value, total, "{s}");
            assert_eq!(q.unit.as_deref(), Some("名"));
        }
        assert_eq!(
            people("常勤１８名、非常勤７名").unwrap().to_string(),
            "25名（常勤１８名、非常勤７名）"
        );
        // A number of no named kind is not added.
        assert!(people("10名とパート5名").is_err());
        // Counts without 名 are counts too (「社員10、パート5」).
        assert_eq!(
            people("社員10、パート5").unwrap().to_string(),
            "15名（社員10、パート5）"
        );
        assert_eq!(
            people("10 staff and 5 part-timers").unwrap().display_en(),
            "15 people (10 staff and 5 part-timers)"
        );
        assert_eq!(people("10 full-time, 5 part-time").unwrap().value, 15.0);
        // Another question's unit never sums.
        assert!(parse_quantity_in_phrase("社員10名、パート5名", Some("円")).is_err());
    }

    /// A total said as one is the answer when the parts fit in it; one that
    /// contradicts them is asked about, never picked.
    #[test]
    fn a_stated_total_is_the_answer_when_the_parts_fit() {
        for (s, shown) in [
            ("社員10名、パート5名、計15名", "15名（社員10名、パート5名）"),
            (
                "社員10名、パート5名、合計15名です",
                "15名（社員10名、パート5名）",
            ),
            ("パート5名を含めて15名", "15名（パート5名を含めて）"),
            (
                "正社員10名＋パート5名＝15名",
                "15名（正社員10名+パート5名）",
            ),
            ("社長と妻の2人", "2名（社長と妻）"),
            ("社長と妻、合わせて2名", "2名（社長と妻）"),
            ("社長含め5名", "5名（社長含め）"),
        ] {
            let q = people(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(q.to_string(), shown, "{s}");
        }
        for s in [
            "社員10名、パート5名、計20名",
            "パート5名を含めて3名",
            "10 staff, 5 part-timers, 20 in total",
        ] {
            assert!(
                matches!(people(s), Err(NumberError::Total(_))),
                "{s}: {:?}",
                people(s)
            );
        }
    }

    /// People named without a count beside one count: the total is not
    /// said (「社長とパート2名」 may be three people), so it is asked for.
    #[test]
    fn people_named_without_a_count_leave_the_total_unsaid() {
        for s in [
            "社長とパート2名",
            "社長＋パート2名",
            "私と妻、パート3名",
            "社長と妻で2人",
            "社員5名、他にパート",
            "社員5名＋パート",
            "me and 2 part-timers",
        ] {
            assert!(
                matches!(people(s), Err(NumberError::Total(_))),
                "{s}: {:?}",
                people(s)
            );
        }
        // A subset is no one more (「うち」), and 「含む」 says the total.
        assert_eq!(
            people("社員10名（うちパート5名）").unwrap().to_string(),
            "10名（うちパート5名）"
        );
        assert_eq!(people("80名（パート含む）").unwrap().value, 80.0);
        assert_eq!(people("私たちは12名です").unwrap().value, 12.0);
    }

    #[test]
    fn an_owner_alone_or_with_one_other() {
        for s in [
            "ひとり",
            "一人",
            "私一人",
            "私一人です",
            "社長だけです",
            "自分だけ",
            "just me",
            "Just me.",
        ] {
            assert_eq!(people(s).map(|q| q.value), Ok(1.0), "{s}");
        }
        for s in ["ふたり", "夫婦だけです"] {
            assert_eq!(people(s).map(|q| q.value), Ok(2.0), "{s}");
        }
        // Who alone, without 「だけ」, may answer something else.
        assert!(people("社長").is_err());
    }

    #[test]
    fn a_year_or_an_amount_is_not_a_headcount() {
        assert_eq!(people("2020年創業、30名").map(|q| q.value), Ok(30.0));
        assert_eq!(people("創業1998年、社員12人").map(|q| q.value), Ok(12.0));
        assert!(matches!(
            people("資本金は300万"),
            Err(NumberError::Money(_))
        ));
        assert!(matches!(people("売上1億円"), Err(NumberError::Money(_))));
        for s in ["10〜15名", "10-15人"] {
            assert!(matches!(people(s), Err(NumberError::Range(_))), "{s}");
        }
    }

    fn q(s: &str, unit: Option<&str>) -> Quantity {
        parse_quantity(s, unit).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn value(s: &str, unit: &str) -> f64 {
        q(s, Some(unit)).value
    }

    #[test]
    fn english_display_uses_english_units() {
        let q = parse_quantity("約30名", Some("名")).unwrap();
        assert_eq!(q.display_en(), "about 30 people");
        let q = parse_quantity("1,000万円", Some("円")).unwrap();
        assert_eq!(q.display_en(), "10,000,000 yen");
        let q = parse_quantity("1", Some("名")).unwrap();
        assert_eq!(q.display_en(), "1 person");
    }

    #[test]
    fn numbers_inside_short_phrases() {
        let p = |s: &str, u: &str| parse_quantity_in_phrase(s, Some(u)).unwrap();
        assert_eq!(p("資本金1000万円", "円").value, 10_000_000.0);
        assert_eq!(p("出資金3,825万円", "円").value, 38_250_000.0);
        assert_eq!(p("資本金は約1億円です", "円").value, 100_000_000.0);
        assert!(p("資本金は約1億円です", "円").approx);
        let q = p("10名（ドライバー8名）", "名");
        assert_eq!(q.value, 10.0);
        assert_eq!(q.to_string(), "10名（ドライバー8名）");
        assert_eq!(
            p("10名、うちドライバー8名", "名").to_string(),
            "10名（うちドライバー8名）"
        );
        assert_eq!(p("社員は20人くらいです", "名").to_string(), "約20名");
        assert_eq!(
            p("パート含めて15人", "名").to_string(),
            "15名（パート含めて）"
        );
        assert_eq!(p("うちは12名でやっています", "名").to_string(), "12名");
        assert!(p("資本金1000万円", "円").detail.is_none());
    }

    #[test]
    fn two_numbers_in_a_phrase_are_not_guessed() {
        // 「正社員10名とパート5名」 used to be here: on a question that counts
        // everyone it is now their sum (see
        // `headcounts_of_kinds_of_workers_are_summed`).
        for s in ["10名か20名", "10名か20名です"] {
            assert!(
                matches!(
                    parse_quantity_in_phrase(s, Some("名")),
                    Err(NumberError::Several(_))
                ),
                "{s:?}"
            );
        }
        // The plain errors still come through unchanged.
        assert!(matches!(
            parse_quantity_in_phrase("-5", Some("名")),
            Err(NumberError::Negative(_))
        ));
        assert!(matches!(
            parse_quantity_in_phrase("20〜25名", Some("名")),
            Err(NumberError::Range(_))
        ));
    }

    #[test]
    fn plain_and_full_width_numbers() {
        assert_eq!(
            q("30", None),
            Quantity {
                value: 30.0,
                unit: None,
                approx: false,
                detail: None
            }
        );
        assert_eq!(value("３０", "名"), 30.0);
        assert_eq!(value("1.5", "年"), 1.5);
        assert_eq!(value("1,000", "円"), 1000.0);
        assert_eq!(value("１，０００", "円"), 1000.0);
        assert_eq!(value("1,234,567円", "円"), 1_234_567.0);
        assert_eq!(value("0", "名"), 0.0);
    }

    #[test]
    fn kanji_multipliers() {
        assert_eq!(value("1,000万円", "円"), 10_000_000.0);
        assert_eq!(value("1億円", "円"), 100_000_000.0);
        assert_eq!(value("1億2000万円", "円"), 120_000_000.0);
        assert_eq!(value("1.5億円", "円"), 150_000_000.0);
        assert_eq!(value("3千万円", "円"), 30_000_000.0);
        assert_eq!(value("5千円", "円"), 5_000.0);
        assert_eq!(value("300万", "円"), 3_000_000.0);
        assert_eq!(value("1.1万", "円"), 11_000.0);
        assert_eq!(value("2兆", "円"), 2e12);
        assert_eq!(value("万", "円"), 10_000.0);
    }

    #[test]
    fn kanji_numerals() {
        assert_eq!(value("三十名", "名"), 30.0);
        assert_eq!(value("百二十", "名"), 120.0);
        assert_eq!(value("二千五百万円", "円"), 25_000_000.0);
        assert_eq!(value("十五人", "名"), 15.0);
        assert_eq!(
            value("一億二千三百四十五万六千七百八十九", "円"),
            123_456_789.0
        );
        assert_eq!(value("二〇二七", "年"), 2027.0);
        assert_eq!(value("一人", "名"), 1.0);
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        for s in [
            "1,00",
            "1.2.3",
            "万億",
            "1万2億",
            "百千",
            "3五",
            "12,34",
            "1,0000",
            ".",
            ",",
            "数十名",
            "たくさん",
            "abc",
        ] {
            assert!(
                matches!(parse_quantity(s, None), Err(NumberError::NotANumber(_))),
                "{s:?} gave {:?}",
                parse_quantity(s, None)
            );
        }
    }

    #[test]
    fn approximate_markers() {
        for s in [
            "約30名",
            "およそ30名",
            "大体30人",
            "だいたい30",
            "ほぼ30名",
            "30名くらい",
            "30人ぐらい",
            "30名程度",
            "30名前後",
            "30位",
            "30~",
            "30〜",
            "30名〜",
            "約30名くらいです。",
            "about 30 people",
            "~30",
            "30名以上",
        ] {
            let got = q(s, Some("名"));
            assert_eq!(
                got,
                Quantity {
                    value: 30.0,
                    unit: Some("名".into()),
                    approx: true,
                    detail: None
                },
                "{s:?}"
            );
        }
        assert!(!q("30名", Some("名")).approx);
    }

    #[test]
    fn ranges_are_rejected_with_advice() {
        for s in [
            "20〜30名",
            "20~30",
            "20-30人",
            "20名〜30名",
            "20から30",
            "20 to 30",
            "1〜2億",
            "20ー30",
        ] {
            assert!(
                matches!(parse_quantity(s, Some("名")), Err(NumberError::Range(_))),
                "{s:?}"
            );
        }
        assert_eq!(
            parse_quantity("20〜30名", Some("名"))
                .unwrap_err()
                .to_string(),
            "「20〜30名」 is a range: give one number, e.g. 25"
        );
    }

    #[test]
    fn negatives_and_empty() {
        for s in ["-5", "−5名", "▲100万円", "マイナス3", "minus 3"] {
            assert!(
                matches!(parse_quantity(s, None), Err(NumberError::Negative(_))),
                "{s:?}"
            );
        }
        assert_eq!(parse_quantity("  ", None), Err(NumberError::Empty));
        assert_eq!(
            parse_quantity("約", None),
            Err(NumberError::NotANumber("約".into()))
        );
    }

    #[test]
    fn too_large_never_overflows() {
        assert_eq!(
            parse_quantity("1兆億", None),
            Err(NumberError::NotANumber("1兆億".into()))
        );
        assert_eq!(parse_quantity("2000兆", None), Err(NumberError::TooLarge));
        assert_eq!(
            parse_quantity(&"9".repeat(400), None),
            Err(NumberError::TooLarge)
        );
        assert_eq!(
            parse_quantity(&"九".repeat(400), None),
            Err(NumberError::TooLarge)
        );
        assert!(parse_quantity("1000兆", None).is_ok());
    }

    #[test]
    fn units_are_canonicalised() {
        let cases = [
            ("5000yen", "円", "円"),
            ("5000 JPY", "円", "円"),
            ("¥5,000", "円", "円"),
            ("￥5,000", "円", "円"),
            ("30人", "名", "名"),
            ("30 employees", "名", "名"),
            ("3 years", "年", "年"),
            ("3年間", "年", "年"),
            ("3ヶ月", "ヶ月", "ヶ月"),
            ("3か月", "ヶ月", "ヶ月"),
            ("3カ月", "ヶ月", "ヶ月"),
            ("3ｹ月", "ヶ月", "ヶ月"),
            ("3ケ月", "ヶ月", "ヶ月"),
            ("3箇月", "ヶ月", "ヶ月"),
            ("3 months", "ヶ月", "ヶ月"),
            ("3か月", "か月", "ヶ月"),
            ("10 days", "日", "日"),
            ("15％", "%", "%"),
            ("15パーセント", "%", "%"),
            ("12台", "台", "台"),
            ("12", "台", "台"),
        ];
        for (s, expected, canonical) in cases {
            assert_eq!(
                q(s, Some(expected)).unit.as_deref(),
                Some(canonical),
                "{s:?}"
            );
        }
        assert_eq!(q("30人", None).unit.as_deref(), Some("名"));
        assert_eq!(q("12台", None).unit.as_deref(), Some("台"));
        assert_eq!(q("12", None).unit, None);
    }

    #[test]
    fn half_adds_one_half() {
        assert_eq!(value("1年半", "年"), 1.5);
        assert_eq!(value("3ヶ月半", "ヶ月"), 3.5);
    }

    #[test]
    fn wrong_unit_is_reported() {
        let err = parse_quantity("30円", Some("名")).unwrap_err();
        assert_eq!(
            err,
            NumberError::WrongUnit {
                expected: "名".into(),
                got: "円".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "the unit 「円」 does not fit here: answer in 名, e.g. 30名"
        );
        assert!(matches!(
            parse_quantity("3年", Some("ヶ月")),
            Err(NumberError::WrongUnit { .. })
        ));
        assert!(matches!(
            parse_quantity("¥30名", Some("名")),
            Err(NumberError::NotANumber(_))
        ));
    }

    #[test]
    fn display() {
        assert_eq!(q("30", Some("名")).to_string(), "30名");
        assert_eq!(q("1,000万円", Some("円")).to_string(), "10,000,000円");
        assert_eq!(q("約30人", Some("名")).to_string(), "約30名");
        assert_eq!(q("1.5", Some("年")).to_string(), "1.5年");
        assert_eq!(q("1234.5", None).to_string(), "1,234.5");
        assert_eq!(q("100", None).to_string(), "100");
        assert_eq!(format_value(-1234.0), "-1,234");
        assert_eq!(format_value(999.0), "999");
    }

    #[test]
    fn quantity_serialises() {
        let v = q("約30人", Some("名"));
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"value":30.0,"unit":"名","approx":true}"#);
        assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), v);
    }

    #[test]
    fn employee_count() {
        assert_eq!(EmployeeCount::parse("３０名").unwrap().get(), 30);
        assert_eq!(EmployeeCount::parse("約50人くらい").unwrap().get(), 50);
        assert_eq!(EmployeeCount::parse("0").unwrap().get(), 0);
        assert_eq!(
            EmployeeCount::parse("1万人").unwrap().to_string(),
            "10,000名"
        );
        assert_eq!(
            EmployeeCount::parse("100万1人"),
            Err(NumberError::OutOfRange { max: 1_000_000 })
        );
        assert_eq!(
            EmployeeCount::parse("200万人").unwrap_err().to_string(),
            "the number is larger than 1,000,000: check it and type it again"
        );
        assert_eq!(
            EmployeeCount::parse("1.5人"),
            Err(NumberError::NotInteger("1.5人".into()))
        );
        assert!(matches!(
            EmployeeCount::parse("30円"),
            Err(NumberError::WrongUnit { .. })
        ));
        assert_eq!(serde_json::to_string(&EmployeeCount(30)).unwrap(), "30");
    }

    #[test]
    fn money_yen() {
        assert_eq!(MoneyYen::parse("1,000万円").unwrap().get(), 10_000_000);
        assert_eq!(MoneyYen::parse("1.5億").unwrap().get(), 150_000_000);
        assert_eq!(MoneyYen::parse("¥300,000").unwrap().get(), 300_000);
        assert_eq!(
            MoneyYen::parse("約二千五百万円").unwrap().to_string(),
            "25,000,000円"
        );
        assert_eq!(
            MoneyYen::parse("1000兆").unwrap().get(),
            1_000_000_000_000_000
        );
        assert_eq!(
            MoneyYen::parse("0.5円"),
            Err(NumberError::NotInteger("0.5円".into()))
        );
        assert!(matches!(
            MoneyYen::parse("30名"),
            Err(NumberError::WrongUnit { .. })
        ));
        assert_eq!(serde_json::to_string(&MoneyYen(5)).unwrap(), "5");
    }

    #[test]
    fn english_scales_multiply() {
        // (typed, expected unit, value)
        let cases: &[(&str, &str, f64)] = &[
            ("10 million yen", "円", 10_000_000.0),
            ("10 million", "円", 10_000_000.0),
            ("10M yen", "円", 10_000_000.0),
            ("10M", "円", 10_000_000.0),
            ("10Myen", "円", 10_000_000.0),
            ("1.5 million yen", "円", 1_500_000.0),
            ("300 thousand yen", "円", 300_000.0),
            ("1 billion yen", "円", 1_000_000_000.0),
            ("10,000 thousand yen", "円", 10_000_000.0),
            ("30,000千円", "円", 30_000_000.0),
            ("10 Million Yen", "円", 10_000_000.0),
            ("10 MILLION", "円", 10_000_000.0),
            ("2 millions yen", "円", 2_000_000.0),
            ("5 thousands", "円", 5_000.0),
            ("3 billions", "円", 3_000_000_000.0),
            ("1.5bn", "円", 1_500_000_000.0),
            ("1.5BN yen", "円", 1_500_000_000.0),
            ("2B", "円", 2_000_000_000.0),
            ("20mn", "円", 20_000_000.0),
            ("20 Mn JPY", "円", 20_000_000.0),
            ("300k", "円", 300_000.0),
            ("300K yen", "円", 300_000.0),
            ("300k円", "円", 300_000.0),
            ("¥10M", "円", 10_000_000.0),
            ("¥300k", "円", 300_000.0),
            ("about 10 million yen", "円", 10_000_000.0),
            ("１０ million", "円", 10_000_000.0),
            ("1.2k", "名", 1_200.0),
            ("1.2k people", "名", 1_200.0),
            ("2k employees", "名", 2_000.0),
        ];
        for &(s, unit, want) in cases {
            assert_eq!(value(s, unit), want, "{s:?}");
            let p =
                parse_quantity_in_phrase(s, Some(unit)).unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert_eq!(p.value, want, "{s:?} in a phrase");
            assert_eq!(p.unit.as_deref(), Some(unit), "{s:?}");
        }
        assert!(q("about 10 million yen", Some("円")).approx);
        assert_eq!(
            q("10 million yen", Some("円")).display_en(),
            "10,000,000 yen"
        );
        // In a phrase, with the question's words around it.
        let p = |s: &str, u: &str| parse_quantity_in_phrase(s, Some(u)).unwrap().value;
        assert_eq!(p("capital is 10 million yen", "円"), 10_000_000.0);
        assert_eq!(p("we have 1.2k staff", "名"), 1_200.0);
        assert_eq!(p("10 million yen in total", "円"), 10_000_000.0);
        // Without an expected unit the scale is read and no unit is made up.
        assert_eq!(q("10 million", None).value, 10_000_000.0);
        assert_eq!(q("10 million", None).unit, None);
        assert_eq!(q("300k yen", None).unit.as_deref(), Some("円"));
        // Whole-number types.
        assert_eq!(MoneyYen::parse("10 million yen").unwrap().get(), 10_000_000);
        assert_eq!(MoneyYen::parse("1.5M").unwrap().get(), 1_500_000);
        assert_eq!(EmployeeCount::parse("1.2k").unwrap().get(), 1_200);
        assert_eq!(
            EmployeeCount::parse("1.2345k"),
            Err(NumberError::NotInteger("1.2345k".into()))
        );
    }

    #[test]
    fn english_scales_stay_out_of_units_and_words() {
        // A lowercase m is not a million, and a unit the question takes
        // is read as a unit.
        assert_eq!(q("10m", None).unit.as_deref(), Some("m"));
        assert_eq!(q("10m", None).value, 10.0);
        assert_eq!(q("10m", Some("m")).value, 10.0);
        assert_eq!(q("10km", Some("km")).value, 10.0);
        assert_eq!(q("10kg", None).unit.as_deref(), Some("kg"));
        assert_eq!(q("10kg", None).value, 10.0);
        assert_eq!(q("10 MB", None).unit.as_deref(), Some("mb"));
        assert_eq!(q("10 MB", None).value, 10.0);
        assert_eq!(q("10 Mm", None).value, 10.0);
        assert_eq!(q("5b", None).unit.as_deref(), Some("b"));
        assert!(matches!(
            parse_quantity("10kg", Some("円")),
            Err(NumberError::WrongUnit { .. })
        ));
        // Two ways of scaling in one number are not guessed.
        for s in ["1万 million", "3千k"] {
            assert!(parse_quantity(s, Some("円")).is_err(), "{s:?}");
        }
        // Ranges with scales stay ranges.
        for s in ["10-20 million", "1 to 2 million yen", "1M〜2M"] {
            assert!(
                matches!(parse_quantity(s, Some("円")), Err(NumberError::Range(_))),
                "{s:?}"
            );
        }
    }

    #[test]
    fn unknown_scale_words_are_refused_not_dropped() {
        // (typed, expected unit): none of these may become the bare number.
        let cases: &[(&str, &str)] = &[
            ("10 lakh", "円"),
            ("10 lakh yen", "円"),
            ("10 man yen", "円"),
            ("10 man", "円"),
            ("10 millon yen", "円"),
            ("10 mil", "円"),
            ("10 m yen", "円"),
            ("10m yen", "円"),
            ("5 crore", "円"),
            ("2 grand", "円"),
            ("10 Mrd", "円"),
            ("10 Mio yen", "円"),
            ("10 Mill", "円"),
            ("10kg", "円"),
            ("10まん円", "円"),
            ("10マン円", "円"),
            ("3おく円", "円"),
            ("5せんえん", "円"),
            ("capital is 10 lakh", "円"),
            ("1.2 dozen", "名"),
        ];
        for &(s, unit) in cases {
            let got = parse_quantity_in_phrase(s, Some(unit));
            assert!(
                matches!(
                    got,
                    Err(NumberError::UnknownWord(_)) | Err(NumberError::WrongUnit { .. })
                ),
                "{s:?} gave {got:?}"
            );
        }
        assert_eq!(
            parse_quantity_in_phrase("10 lakh yen", Some("円")),
            Err(NumberError::UnknownWord("lakh".into()))
        );
        assert_eq!(
            parse_quantity_in_phrase("10 Mrd", Some("円")),
            Err(NumberError::UnknownWord("Mrd".into()))
        );
        assert_eq!(
            NumberError::UnknownWord("lakh".into()).to_string(),
            "「lakh」 after the number is not understood: type the number in digits, e.g. 10,000,000 or 1,000万"
        );
        // Remarks after a number, or after its unit, are still fine.
        let p = |s: &str, u: &str| parse_quantity_in_phrase(s, Some(u)).unwrap().value;
        assert_eq!(p("30 and growing", "名"), 30.0);
        assert_eq!(p("45 full-time employees", "名"), 45.0);
        assert_eq!(p("30 people, mostly part-time", "名"), 30.0);
        assert_eq!(p("30 staffs", "名"), 30.0);
        assert_eq!(p("30 or so", "名"), 30.0);
        assert_eq!(p("20人でやっています", "名"), 20.0);
    }

    #[test]
    fn spans_with_su_are_not_one_number() {
        for (s, unit) in [
            ("20数名", "名"),
            ("30数人", "名"),
            ("20数人くらい", "名"),
            ("十数名", "名"),
            ("数十名", "名"),
            ("100数十名", "名"),
            ("百数十人", "名"),
            ("数名", "名"),
            ("数人", "名"),
            ("社員は20数名です", "名"),
            ("従業員数十名", "名"),
            ("20-something", "名"),
            ("30-odd people", "名"),
            ("数百万円", "円"),
            ("数千万円", "円"),
            ("1千数百万円", "円"),
            ("資本金は数億円", "円"),
            ("300数十万円", "円"),
        ] {
            let got = parse_quantity_in_phrase(s, Some(unit));
            assert!(
                matches!(got, Err(NumberError::Range(_))),
                "{s:?} gave {got:?}"
            );
        }
        // 数 as part of a word before the number is not a span.
        let p = |s: &str| parse_quantity_in_phrase(s, Some("名")).unwrap().value;
        assert_eq!(p("従業員数30名"), 30.0);
        assert_eq!(p("人数は25名"), 25.0);
        // A span in the detail leaves the answer alone.
        let q = parse_quantity_in_phrase("10名（うち数名はパート）", Some("名")).unwrap();
        assert_eq!(q.to_string(), "10名（うち数名はパート）");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = parse_quantity(&s, None);
            let _ = parse_quantity(&s, Some("名"));
            let _ = EmployeeCount::parse(&s);
            let _ = MoneyYen::parse(&s);
            let _ = parse_quantity_in_phrase(&s, Some("円"));
            let _ = parse_quantity_in_phrase(&s, None);
        }
    }
}
