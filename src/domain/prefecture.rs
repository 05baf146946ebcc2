//! Prefectures (JIS X 0401) and the eight standard regions.
//!
//! Owners answer "where is your business?" in every script an IME offers, so
//! `Prefecture::parse` accepts kanji, kana and romaji in their common variants
//! and turns region names into a follow-up question instead of a dead end.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::text::{excerpt, fold_for_match};

/// One row per prefecture, indexed by JIS code − 1. The kana and romaji are
/// for the short form (without 都/道/府/県), which is what people say aloud.
struct PrefRow {
    name_ja: &'static str,
    short_ja: &'static str,
    kana: &'static str,
    name_en: &'static str,
}

const fn row(
    name_ja: &'static str,
    short_ja: &'static str,
    kana: &'static str,
    name_en: &'static str,
) -> PrefRow {
    PrefRow {
        name_ja,
        short_ja,
        kana,
        name_en,
    }
}

static TABLE: [PrefRow; 47] = [
    row("北海道", "北海道", "ほっかいどう", "Hokkaido"),
    row("青森県", "青森", "あおもり", "Aomori"),
    row("岩手県", "岩手", "いわて", "Iwate"),
    row("宮城県", "宮城", "みやぎ", "Miyagi"),
    row("秋田県", "秋田", "あきた", "Akita"),
    row("山形県", "山形", "やまがた", "Yamagata"),
    row("福島県", "福島", "ふくしま", "Fukushima"),
    row("茨城県", "茨城", "いばらき", "Ibaraki"),
    row("栃木県", "栃木", "とちぎ", "Tochigi"),
    row("群馬県", "群馬", "ぐんま", "Gunma"),
    row("埼玉県", "埼玉", "さいたま", "Saitama"),
    row("千葉県", "千葉", "ちば", "Chiba"),
    row("東京都", "東京", "とうきょう", "Tokyo"),
    row("神奈川県", "神奈川", "かながわ", "Kanagawa"),
    row("新潟県", "新潟", "にいがた", "Niigata"),
    row("富山県", "富山", "とやま", "Toyama"),
    row("石川県", "石川", "いしかわ", "Ishikawa"),
    row("福井県", "福井", "ふくい", "Fukui"),
    row("山梨県", "山梨", "やまなし", "Yamanashi"),
    row("長野県", "長野", "ながの", "Nagano"),
    row("岐阜県", "岐阜", "ぎふ", "Gifu"),
    row("静岡県", "静岡", "しずおか", "Shizuoka"),
    row("愛知県", "愛知", "あいち", "Aichi"),
    row("三重県", "三重", "みえ", "Mie"),
    row("滋賀県", "滋賀", "しが", "Shiga"),
    row("京都府", "京都", "きょうと", "Kyoto"),
    row("大阪府", "大阪", "おおさか", "Osaka"),
    row("兵庫県", "兵庫", "ひょうご", "Hyogo"),
    row("奈良県", "奈良", "なら", "Nara"),
    row("和歌山県", "和歌山", "わかやま", "Wakayama"),
    row("鳥取県", "鳥取", "とっとり", "Tottori"),
    row("島根県", "島根", "しまね", "Shimane"),
    row("岡山県", "岡山", "おかやま", "Okayama"),
    row("広島県", "広島", "ひろしま", "Hiroshima"),
    row("山口県", "山口", "やまぐち", "Yamaguchi"),
    row("徳島県", "徳島", "とくしま", "Tokushima"),
    row("香川県", "香川", "かがわ", "Kagawa"),
    row("愛媛県", "愛媛", "えひめ", "Ehime"),
    row("高知県", "高知", "こうち", "Kochi"),
    row("福岡県", "福岡", "ふくおか", "Fukuoka"),
    row("佐賀県", "佐賀", "さが", "Saga"),
    row("長崎県", "長崎", "ながさき", "Nagasaki"),
    row("熊本県", "熊本", "くまもと", "Kumamoto"),
    row("大分県", "大分", "おおいた", "Oita"),
    row("宮崎県", "宮崎", "みやざき", "Miyazaki"),
    row("鹿児島県", "鹿児島", "かごしま", "Kagoshima"),
    row("沖縄県", "沖縄", "おきなわ", "Okinawa"),
];

/// The eight standard regions (八地方区分).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    Hokkaido,
    Tohoku,
    Kanto,
    Chubu,
    Kinki,
    Chugoku,
    Shikoku,
    KyushuOkinawa,
}

impl Region {
    pub const ALL: [Region; 8] = [
        Region::Hokkaido,
        Region::Tohoku,
        Region::Kanto,
        Region::Chubu,
        Region::Kinki,
        Region::Chugoku,
        Region::Shikoku,
        Region::KyushuOkinawa,
    ];

    pub fn name_ja(self) -> &'static str {
        match self {
            Region::Hokkaido => "北海道",
            Region::Tohoku => "東北",
            Region::Kanto => "関東",
            Region::Chubu => "中部",
            Region::Kinki => "近畿",
            Region::Chugoku => "中国",
            Region::Shikoku => "四国",
            Region::KyushuOkinawa => "九州・沖縄",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Region::Hokkaido => "Hokkaido",
            Region::Tohoku => "Tohoku",
            Region::Kanto => "Kanto",
            Region::Chubu => "Chubu",
            Region::Kinki => "Kinki",
            Region::Chugoku => "Chugoku",
            Region::Shikoku => "Shikoku",
            Region::KyushuOkinawa => "Kyushu-Okinawa",
        }
    }

    /// JIS codes of the region's first and last prefecture. The standard
    /// regions are contiguous in JIS order, so a range is all we need.
    fn code_range(self) -> (u8, u8) {
        match self {
            Region::Hokkaido => (1, 1),
            Region::Tohoku => (2, 7),
            Region::Kanto => (8, 14),
            Region::Chubu => (15, 23),
            Region::Kinki => (24, 30),
            Region::Chugoku => (31, 35),
            Region::Shikoku => (36, 39),
            Region::KyushuOkinawa => (40, 47),
        }
    }

    /// The region's prefectures in JIS order.
    pub fn prefectures(self) -> &'static [Prefecture] {
        let (first, last) = self.code_range();
        &ALL_PREFECTURES[usize::from(first - 1)..usize::from(last)]
    }

    /// Accepts Japanese and English names, kana, romaji with long vowels,
    /// an optional 地方/region suffix, and the aliases 関西/Kansai (近畿) and
    /// 九州/九州沖縄 (九州・沖縄). 沖縄 alone is a prefecture, not a region.
    pub fn parse(s: &str) -> Result<Region, RegionError> {
        let folded = fold_for_match(s);
        let key = folded
            .strip_suffix("地方")
            .or_else(|| folded.strip_suffix("region"))
            .unwrap_or(&folded)
            .replace(['・', '-', '_', '.', '、', ','], "");
        let kana = kana_long_vowel_key(&key);
        let romaji = romaji_key(&key);
        REGION_ALIASES
            .iter()
            .find(|(_, aliases)| {
                aliases.iter().any(|alias| {
                    if alias.is_ascii() {
                        romaji == romaji_key(alias)
                    } else {
                        key == *alias || kana == kana_long_vowel_key(alias)
                    }
                })
            })
            .map(|(region, _)| *region)
            .ok_or_else(|| RegionError::Unknown(excerpt(&super::text::normalize_input(s))))
    }
}

/// Names a region is known by, compared after folding (kana by
/// `kana_long_vowel_key`, romaji by `romaji_key`).
const REGION_ALIASES: [(Region, &[&str]); 8] = [
    (Region::Hokkaido, &["北海道", "ほっかいどう", "hokkaido"]),
    (Region::Tohoku, &["東北", "とうほく", "tohoku"]),
    (Region::Kanto, &["関東", "かんとう", "kanto"]),
    (Region::Chubu, &["中部", "ちゅうぶ", "chubu"]),
    (
        Region::Kinki,
        &["近畿", "きんき", "関西", "かんさい", "kinki", "kansai"],
    ),
    (Region::Chugoku, &["中国", "ちゅうごく", "chugoku"]),
    (Region::Shikoku, &["四国", "しこく", "shikoku"]),
    (
        Region::KyushuOkinawa,
        &[
            "九州沖縄",
            "九州",
            "きゅうしゅう",
            "きゅうしゅうおきなわ",
            "kyushu",
            "kyushuokinawa",
        ],
    ),
];

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name_ja())
    }
}

/// Errors from `Region::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegionError {
    #[error("unknown region 「{0}」: type a region name such as 近畿, 関東 or Kyushu")]
    Unknown(String),
}

/// A prefecture, identified by its JIS X 0401 code (1 = 北海道 … 47 = 沖縄県).
/// The code is private, so every value is one of the 47 real prefectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefecture {
    code: u8,
}

static ALL_PREFECTURES: [Prefecture; 47] = Prefecture::ALL;

impl Prefecture {
    /// All 47 prefectures in JIS order.
    pub const ALL: [Prefecture; 47] = {
        let mut all = [Prefecture { code: 1 }; 47];
        let mut i = 0;
        while i < 47 {
            all[i] = Prefecture { code: i as u8 + 1 };
            i += 1;
        }
        all
    };

    pub fn from_code(code: u8) -> Option<Prefecture> {
        (1..=47).contains(&code).then_some(Prefecture { code })
    }

    pub fn code(self) -> u8 {
        self.code
    }

    fn row(self) -> &'static PrefRow {
        &TABLE[usize::from(self.code - 1)]
    }

    /// Canonical name with suffix, e.g. 兵庫県, 東京都, 大阪府, 北海道.
    pub fn name_ja(self) -> &'static str {
        self.row().name_ja
    }

    /// Name without 都/府/県, e.g. 兵庫; 北海道 stays 北海道.
    pub fn short_ja(self) -> &'static str {
        self.row().short_ja
    }

    /// Romanised name without macrons, e.g. Hyogo.
    pub fn name_en(self) -> &'static str {
        self.row().name_en
    }

    pub fn region(self) -> Region {
        Region::ALL
            .into_iter()
            .find(|r| {
                let (first, last) = r.code_range();
                (first..=last).contains(&self.code)
            })
            .unwrap_or(Region::KyushuOkinawa)
    }

    /// The kana reading of the administrative suffix (県 → けん).
    fn suffix_kana(self) -> &'static str {
        match self.name_ja().chars().last() {
            Some('都') => "と",
            Some('府') => "ふ",
            Some('県') => "けん",
            // 北海道's kana already ends in どう, and nobody writes ほっかいどうどう.
            _ => "",
        }
    }

    /// Parses a prefecture as owners type it. See the module tests for the
    /// accepted forms. An address that starts with the full canonical name
    /// (兵庫県神戸市…) is accepted too, because owners often paste one.
    pub fn parse(s: &str) -> Result<Prefecture, PrefectureError> {
        // The canonical name (how answers are stored and read back at every
        // turn) needs no folding.
        if let Some(p) = Prefecture::ALL.into_iter().find(|p| p.name_ja() == s) {
            return Ok(p);
        }
        let folded = fold_for_match(s);
        let key = strip_chat_noise(&folded);
        if key.is_empty() {
            return Err(PrefectureError::Empty);
        }
        if let Some(p) = Self::match_key(key) {
            return Ok(p);
        }
        if let Ok(region) = Region::parse(key) {
            return Err(PrefectureError::IsRegion(region));
        }
        Err(PrefectureError::Unknown(excerpt(
            &super::text::normalize_input(s),
        )))
    }

    fn match_key(key: &str) -> Option<Prefecture> {
        // Exact kanji and kana forms first, so 京都 is 京都府 and 東京 is
        // 東京都 without any substring heuristics getting in the way.
        let kana_key = kana_long_vowel_key(key);
        let keys = &*KEYS;
        let exact = Prefecture::ALL.into_iter().zip(keys).find(|(p, k)| {
            let r = p.row();
            key == r.name_ja || key == r.short_ja || k.kana.contains(&kana_key)
        });
        let exact = exact.map(|(p, _)| p);
        if exact.is_some() {
            return exact;
        }
        // A full canonical name followed by the rest of an address.
        let by_address = Prefecture::ALL
            .into_iter()
            .find(|p| key.starts_with(p.name_ja()));
        if by_address.is_some() {
            return by_address;
        }
        Self::match_romaji(key)
    }

    /// Romaji: any case, macrons or doubled vowels, Hepburn or Kunrei, with or
    /// without a suffix such as -ken, -to, -fu or "prefecture".
    fn match_romaji(key: &str) -> Option<Prefecture> {
        let letters: String = strip_macrons(key)
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect();
        if letters.is_empty()
            || letters.len() != key.chars().filter(|c| !is_romaji_separator(*c)).count()
        {
            // Anything other than Latin letters and separators is not romaji.
            return None;
        }
        let keys = &*KEYS;
        let find = |k: &str| {
            let k = romaji_key(k);
            Prefecture::ALL
                .into_iter()
                .zip(keys)
                .find(|(_, keys)| keys.romaji == k)
                .map(|(p, _)| p)
        };
        if let Some(p) = find(&letters) {
            return Some(p);
        }
        ["prefecture", "pref", "ken", "to", "fu", "hu", "do"]
            .iter()
            .filter_map(|suffix| letters.strip_suffix(suffix))
            .filter(|rest| !rest.is_empty())
            .find_map(find)
    }
}

/// What [`Prefecture::match_key`] compares an answer's keys with, for each
/// prefecture in the order of [`Prefecture::ALL`], worked out once: making
/// them anew (with two `format!`s per prefecture) at every answer to the
/// location question was most of the cost of parsing it.
struct Keys {
    /// `kana_long_vowel_key` of the reading, the reading with the
    /// suffix's reading, and the reading with the kanji suffix.
    kana: [String; 3],
    /// `romaji_key` of the English name.
    romaji: String,
}

static KEYS: std::sync::LazyLock<Vec<Keys>> = std::sync::LazyLock::new(|| {
    Prefecture::ALL
        .into_iter()
        .map(|p| {
            let r = p.row();
            Keys {
                kana: [
                    kana_long_vowel_key(r.kana),
                    kana_long_vowel_key(&format!("{}{}", r.kana, p.suffix_kana())),
                    kana_long_vowel_key(&format!("{}{}", r.kana, &r.name_ja[r.short_ja.len()..])),
                ],
                romaji: romaji_key(p.name_en()),
            }
        })
        .collect()
});

fn is_romaji_separator(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | ',' | '\'' | 'ー')
}

/// Drops polite endings and punctuation that owners add in chat (兵庫です。).
fn strip_chat_noise(s: &str) -> &str {
    let mut s = s.trim_end_matches(['。', '.', '!', '?', '、', ',']);
    for ending in ["にあります", "になります", "です", "だよ"] {
        if let Some(rest) = s.strip_suffix(ending) {
            s = rest.trim_end_matches(['。', '.', '、', ',']);
        }
    }
    s
}

/// Replaces vowels with macrons or circumflexes by the plain vowel.
fn strip_macrons(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ā' | 'â' => 'a',
            'ī' | 'î' => 'i',
            'ū' | 'û' => 'u',
            'ē' | 'ê' => 'e',
            'ō' | 'ô' => 'o',
            c => c,
        })
        .collect()
}

/// A spelling-insensitive key for lowercase romaji: long vowels collapsed
/// (ou/oo → o, oh before a consonant → o, uu → u) and Hepburn mapped to Kunrei (shi → si, chi → ti,
/// tsu → tu, fu → hu, ji → zi, sh → sy, ch → ty, m before b/m/p → n), so
/// Hyōgo, hyougo, Tookyoo, Kouchi, Gumma and Tiba all find their prefecture.
/// The tests check that the 47 keys stay distinct.
fn romaji_key(s: &str) -> String {
    let mut k = strip_macrons(&s.to_ascii_lowercase());
    for (from, to) in [
        ("ou", "o"),
        ("oo", "o"),
        ("uu", "u"),
        ("shi", "si"),
        ("chi", "ti"),
        ("tsu", "tu"),
        ("fu", "hu"),
        ("ji", "zi"),
        ("sh", "sy"),
        ("ch", "ty"),
        ("mb", "nb"),
        ("mm", "nm"),
        ("mp", "np"),
    ] {
        k = k.replace(from, to);
    }
    // "oh" is a long o only before a consonant (Ohsaka, Kohchi); in Tohoku
    // the h starts the next syllable and must stay.
    let chars: Vec<char> = k.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            let long_o = c == 'h'
                && i > 0
                && chars[i - 1] == 'o'
                && chars.get(i + 1).is_some_and(|n| !"aiueoy".contains(*n));
            !long_o
        })
        .map(|(_, &c)| c)
        .collect()
}

/// A key for kana that ignores long-vowel spelling: ー is dropped, and う or
/// お after an o-row kana is dropped (ひょうご, ひょーご and ひょおご agree).
fn kana_long_vowel_key(s: &str) -> String {
    const O_ROW: &str = "おこそとのほもよろをごぞどぼぽょ";
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let skip =
            c == 'ー' || (matches!(c, 'う' | 'お') && prev.is_some_and(|p| O_ROW.contains(p)));
        if !skip {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

impl std::fmt::Display for Prefecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name_ja())
    }
}

impl std::str::FromStr for Prefecture {
    type Err = PrefectureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Prefecture::parse(s)
    }
}

impl TryFrom<String> for Prefecture {
    type Error = PrefectureError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Prefecture::parse(&s)
    }
}

impl From<Prefecture> for String {
    fn from(p: Prefecture) -> String {
        p.name_ja().to_string()
    }
}

/// Errors from `Prefecture::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefectureError {
    #[error("no prefecture given: type a prefecture name such as 兵庫県 or Hyogo")]
    Empty,
    #[error("unknown prefecture 「{0}」: type a prefecture name such as 兵庫県 or Hyogo")]
    Unknown(String),
    #[error("{} is a region, not a prefecture: which prefecture in {} is it ({})?", .0.name_ja(), .0.name_ja(), region_choices(.0))]
    IsRegion(Region),
}

fn region_choices(region: &Region) -> String {
    region
        .prefectures()
        .iter()
        .map(|p| p.name_ja())
        .collect::<Vec<_>>()
        .join("、")
}

/// Builds the prefecture look-up keys now (see [`crate::domain::warm_up`]).
pub(crate) fn warm_up() {
    std::sync::LazyLock::force(&KEYS);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(code: u8) -> Prefecture {
        Prefecture::from_code(code).unwrap()
    }

    /// Every spelling we promise to accept, generated from the table.
    fn accepted_forms(pref: Prefecture) -> Vec<String> {
        let r = pref.row();
        let kata: String = r
            .kana
            .chars()
            .map(|c| char::from_u32(c as u32 + 0x60).unwrap())
            .collect();
        let en = r.name_en;
        let suffix_en = match pref.name_ja().chars().last() {
            Some('都') => "to",
            Some('府') => "fu",
            Some('県') => "ken",
            _ => "",
        };
        let full_width: String = en
            .chars()
            .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
            .collect();
        let mut forms = vec![
            r.name_ja.to_string(),
            r.short_ja.to_string(),
            r.kana.to_string(),
            format!("{}{}", r.kana, pref.suffix_kana()),
            kata.clone(),
            format!("{kata}{}", katakana_suffix(pref.suffix_kana())),
            en.to_string(),
            en.to_lowercase(),
            en.to_uppercase(),
            format!("{en} prefecture"),
            format!("{en} Pref."),
            full_width,
            format!("\u{3000} {} \u{3000}", r.name_ja),
            format!("{}です。", r.short_ja),
        ];
        if !suffix_en.is_empty() {
            forms.push(format!("{en}-{suffix_en}"));
            forms.push(format!("{en} {suffix_en}"));
            forms.push(format!("{}{suffix_en}", en.to_lowercase()));
        }
        forms
    }

    fn katakana_suffix(s: &str) -> String {
        s.chars()
            .map(|c| char::from_u32(c as u32 + 0x60).unwrap())
            .collect()
    }

    #[test]
    fn every_prefecture_round_trips_through_every_form() {
        for pref in Prefecture::ALL {
            for form in accepted_forms(pref) {
                assert_eq!(Prefecture::parse(&form), Ok(pref), "form {form:?}");
            }
            assert_eq!(Prefecture::from_code(pref.code()), Some(pref));
            assert_eq!(Prefecture::parse(&pref.to_string()), Ok(pref));
        }
    }

    #[test]
    fn table_is_consistent() {
        assert_eq!(Prefecture::ALL.len(), 47);
        for (i, pref) in Prefecture::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(pref.code()), i + 1);
            assert!(pref.name_ja().starts_with(pref.short_ja()));
        }
        assert_eq!(Prefecture::from_code(0), None);
        assert_eq!(Prefecture::from_code(48), None);
    }

    #[test]
    fn matching_keys_are_unambiguous() {
        let mut romaji: Vec<String> = Prefecture::ALL
            .iter()
            .map(|p| romaji_key(p.name_en()))
            .collect();
        let mut kana: Vec<String> = Prefecture::ALL
            .iter()
            .map(|p| kana_long_vowel_key(p.row().kana))
            .collect();
        romaji.sort();
        romaji.dedup();
        kana.sort();
        kana.dedup();
        assert_eq!(romaji.len(), 47);
        assert_eq!(kana.len(), 47);
    }

    #[test]
    fn kyoto_and_tokyo_do_not_collide() {
        assert_eq!(Prefecture::parse("京都"), Ok(p(26)));
        assert_eq!(Prefecture::parse("京都府"), Ok(p(26)));
        assert_eq!(Prefecture::parse("東京"), Ok(p(13)));
        assert_eq!(Prefecture::parse("東京都"), Ok(p(13)));
        assert_eq!(Prefecture::parse("Kyoto fu"), Ok(p(26)));
        assert_eq!(Prefecture::parse("Kyoto"), Ok(p(26)));
        assert_eq!(Prefecture::parse("Tokyo-to"), Ok(p(13)));
        assert_eq!(Prefecture::parse("toukyou"), Ok(p(13)));
        assert_eq!(Prefecture::parse("Tōkyō"), Ok(p(13)));
        assert_eq!(Prefecture::parse("きょうと"), Ok(p(26)));
        assert_eq!(Prefecture::parse("とうきょう"), Ok(p(13)));
        assert_eq!(Prefecture::parse("とうきょうと"), Ok(p(13)));
    }

    #[test]
    fn hokkaido_has_no_suffix() {
        for s in [
            "北海道",
            "hokkaido",
            "Hokkaidō",
            "hokkaidou",
            "ホッカイドウ",
            "ほっかいどー",
        ] {
            assert_eq!(Prefecture::parse(s), Ok(p(1)), "{s}");
        }
        assert_eq!(p(1).short_ja(), "北海道");
        assert_eq!(p(1).region(), Region::Hokkaido);
    }

    #[test]
    fn osaka_spellings() {
        for s in [
            "大阪",
            "大阪府",
            "Ōsaka",
            "oosaka",
            "OSAKA",
            "Osaka-fu",
            "おおさか",
            "おおさかふ",
            "オーサカ",
        ] {
            assert_eq!(Prefecture::parse(s), Ok(p(27)), "{s}");
        }
    }

    #[test]
    fn kochi_and_hyogo_spellings() {
        assert_eq!(Prefecture::parse("ひょうご県"), Ok(p(28)));
        assert_eq!(Prefecture::parse("とうきょう都"), Ok(p(13)));
        for s in [
            "高知",
            "こうち",
            "Kōchi",
            "kouchi",
            "kochi-ken",
            "コウチケン",
        ] {
            assert_eq!(Prefecture::parse(s), Ok(p(39)), "{s}");
        }
        for s in [
            "兵庫",
            "兵庫県",
            "ひょうご",
            "ひょうごけん",
            "ヒョウゴ",
            "Hyogo",
            "Hyōgo",
            "hyougo",
            "HYOGO",
            "Hyogo-ken",
            "hyogo prefecture",
            "Ｈｙｏｇｏ",
            "  兵庫  ",
            "兵庫県です",
        ] {
            assert_eq!(Prefecture::parse(s), Ok(p(28)), "{s}");
        }
    }

    #[test]
    fn other_romanisations() {
        assert_eq!(Prefecture::parse("Gumma"), Ok(p(10)));
        assert_eq!(Prefecture::parse("tiba"), Ok(p(12)));
        assert_eq!(Prefecture::parse("Hukuoka"), Ok(p(40)));
        assert_eq!(Prefecture::parse("Ooita"), Ok(p(44)));
        assert_eq!(Prefecture::parse("sizuoka-ken"), Ok(p(22)));
    }

    #[test]
    fn addresses_starting_with_a_full_name_are_accepted() {
        assert_eq!(Prefecture::parse("兵庫県神戸市中央区"), Ok(p(28)));
        assert_eq!(Prefecture::parse("北海道札幌市"), Ok(p(1)));
        // Without the suffix we cannot tell a prefecture from a city name.
        assert!(Prefecture::parse("京都市").is_err());
    }

    #[test]
    fn unknown_input_explains_what_to_type() {
        let err = Prefecture::parse("東亰").unwrap_err();
        assert_eq!(err, PrefectureError::Unknown("東亰".into()));
        assert_eq!(
            err.to_string(),
            "unknown prefecture 「東亰」: type a prefecture name such as 兵庫県 or Hyogo"
        );
        assert_eq!(Prefecture::parse("  "), Err(PrefectureError::Empty));
        assert!(Prefecture::parse("kyo").is_err());
        assert!(Prefecture::parse("to").is_err());
        assert!(Prefecture::parse("ken").is_err());
        assert!(Prefecture::parse("Tokyo123").is_err());
    }

    #[test]
    fn region_names_ask_for_a_prefecture() {
        let err = Prefecture::parse("近畿").unwrap_err();
        assert_eq!(err, PrefectureError::IsRegion(Region::Kinki));
        assert_eq!(
            err.to_string(),
            "近畿 is a region, not a prefecture: which prefecture in 近畿 is it (三重県、滋賀県、京都府、大阪府、兵庫県、奈良県、和歌山県)?"
        );
        assert_eq!(
            Prefecture::parse("関西"),
            Err(PrefectureError::IsRegion(Region::Kinki))
        );
        assert_eq!(
            Prefecture::parse("Kyushu"),
            Err(PrefectureError::IsRegion(Region::KyushuOkinawa))
        );
        // 沖縄 is a prefecture in its own right.
        assert_eq!(Prefecture::parse("沖縄"), Ok(p(47)));
    }

    #[test]
    fn regions_parse_and_list_prefectures() {
        let cases = [
            ("北海道", Region::Hokkaido),
            ("東北地方", Region::Tohoku),
            ("kanto", Region::Kanto),
            ("Kantou", Region::Kanto),
            ("ちゅうぶ", Region::Chubu),
            ("Chūbu", Region::Chubu),
            ("近畿", Region::Kinki),
            ("関西", Region::Kinki),
            ("Kansai", Region::Kinki),
            ("カンサイ", Region::Kinki),
            ("中国地方", Region::Chugoku),
            ("chugoku region", Region::Chugoku),
            ("四国", Region::Shikoku),
            ("九州", Region::KyushuOkinawa),
            ("九州沖縄", Region::KyushuOkinawa),
            ("九州・沖縄", Region::KyushuOkinawa),
            ("Kyushu-Okinawa", Region::KyushuOkinawa),
            ("kyuushuu", Region::KyushuOkinawa),
        ];
        for (s, want) in cases {
            assert_eq!(Region::parse(s), Ok(want), "{s}");
        }
        assert!(Region::parse("沖縄").is_err());
        assert_eq!(
            Region::parse("関東地区").unwrap_err().to_string(),
            "unknown region 「関東地区」: type a region name such as 近畿, 関東 or Kyushu"
        );
        for region in Region::ALL {
            assert_eq!(Region::parse(region.name_ja()), Ok(region));
            assert_eq!(Region::parse(region.name_en()), Ok(region));
            for pref in region.prefectures() {
                assert_eq!(pref.region(), region);
            }
        }
        let total: usize = Region::ALL.iter().map(|r| r.prefectures().len()).sum();
        assert_eq!(total, 47);
        assert_eq!(
            Region::Shikoku
                .prefectures()
                .iter()
                .map(|p| p.short_ja())
                .collect::<Vec<_>>(),
            ["徳島", "香川", "愛媛", "高知"]
        );
    }

    #[test]
    fn names() {
        assert_eq!(p(28).name_ja(), "兵庫県");
        assert_eq!(p(28).short_ja(), "兵庫");
        assert_eq!(p(28).name_en(), "Hyogo");
        assert_eq!(p(28).region(), Region::Kinki);
        assert_eq!(p(13).name_ja(), "東京都");
        assert_eq!(p(27).name_ja(), "大阪府");
        assert_eq!(p(28).to_string(), "兵庫県");
        assert_eq!(Region::KyushuOkinawa.to_string(), "九州・沖縄");
    }

    #[test]
    fn serde_uses_the_canonical_japanese_name() {
        let json = serde_json::to_string(&p(28)).unwrap();
        assert_eq!(json, "\"兵庫県\"");
        assert_eq!(serde_json::from_str::<Prefecture>(&json).unwrap(), p(28));
        assert_eq!(
            serde_json::from_str::<Prefecture>("\"Hyogo\"").unwrap(),
            p(28)
        );
        assert!(serde_json::from_str::<Prefecture>("\"Atlantis\"").is_err());
        assert_eq!(
            serde_json::to_string(&Region::KyushuOkinawa).unwrap(),
            "\"kyushu_okinawa\""
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = Prefecture::parse(&s);
            let _ = Region::parse(&s);
        }
    }
}
