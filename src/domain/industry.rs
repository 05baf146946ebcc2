//! Industries by the Japan Standard Industrial Classification (日本標準産業分類,
//! JSIC), and the SME thresholds of 中小企業基本法 that follow from a class.
//!
//! The classes are `data/jsic.tsv` (大・中・小・細分類, derived from the
//! official CSV, see `data/README.md`); everyday words that are not class
//! names (陶器, 地質調査, ホテル) are `data/industry_aliases.tsv`. Both are
//! compiled in, so classifying does no I/O.

use std::sync::LazyLock;

use thiserror::Error;

use super::text::{excerpt, fold_for_match, normalize_input};

const JSIC_TSV: &str = include_str!("../../data/jsic.tsv");
const ALIASES_TSV: &str = include_str!("../../data/industry_aliases.tsv");

/// The four levels of the classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// 大分類 (A–T)
    Major,
    /// 中分類 (01–99)
    Middle,
    /// 小分類 (3 digits)
    Minor,
    /// 細分類 (4 digits)
    Detail,
}

struct Row {
    code: &'static str,
    level: Level,
    name: &'static str,
    parent: Option<usize>,
    /// Folded names an owner may use for the class: the name, without its
    /// bracketed note, without a final 業.
    stems: Vec<String>,
    /// The name as [`fold_for_match`] folds it.
    folded_name: String,
}

static TABLE: LazyLock<Vec<Row>> = LazyLock::new(|| {
    let mut rows: Vec<Row> = Vec::new();
    for l in JSIC_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&'static str> = l.split('\t').collect();
        let level = match f[1] {
            "大" => Level::Major,
            "中" => Level::Middle,
            "小" => Level::Minor,
            _ => Level::Detail,
        };
        let parent = f
            .get(3)
            .filter(|p| !p.is_empty())
            .and_then(|p| rows.iter().rposition(|r| r.code == *p));
        rows.push(Row {
            code: f[0],
            level,
            name: f[2],
            parent,
            stems: stems(f[2]),
            folded_name: fold_for_match(f[2]),
        });
    }
    rows
});

/// A word that names a class: one of a class's stems, or an alias.
struct Word {
    word: String,
    /// `word.chars().count()`, which ranks words found in a sentence.
    chars: usize,
    level: Level,
    class: usize,
    /// The alias's index in [`ALIASES`]; `None` for a stem.
    alias: Option<usize>,
}

/// Every stem and alias, in the order [`Jsic::classify`] ranks them
/// (the table's rows and their stems, then the aliases), indexed two
/// ways: classifying scanned the ~5,000 words of the table for each
/// answer, which was a visible share of a turn at the industry question.
struct Words {
    all: Vec<Word>,
    /// Word → the words equal to it (a word can name several classes).
    exact: std::collections::HashMap<String, Vec<u32>>,
    /// First character → the words of at least two characters starting
    /// with it, the only ones a sentence search considers.
    by_first: std::collections::HashMap<char, Vec<u32>>,
}

static WORDS: LazyLock<Words> = LazyLock::new(|| {
    let mut all = Vec::new();
    for (i, r) in TABLE.iter().enumerate() {
        for st in &r.stems {
            all.push(Word {
                word: st.clone(),
                chars: st.chars().count(),
                level: r.level,
                class: i,
                alias: None,
            });
        }
    }
    for (a, (w, i)) in ALIASES.iter().enumerate() {
        all.push(Word {
            word: w.clone(),
            chars: w.chars().count(),
            level: Level::Detail,
            class: *i,
            alias: Some(a),
        });
    }
    let mut exact: std::collections::HashMap<String, Vec<u32>> = Default::default();
    let mut by_first: std::collections::HashMap<char, Vec<u32>> = Default::default();
    for (k, w) in all.iter().enumerate() {
        exact.entry(w.word.clone()).or_default().push(k as u32);
        if w.chars >= 2 {
            let first = w.word.chars().next().expect("two characters");
            by_first.entry(first).or_default().push(k as u32);
        }
    }
    Words {
        all,
        exact,
        by_first,
    }
});

/// (folded word, index of its class), from the alias file.
static ALIASES: LazyLock<Vec<(String, usize)>> = LazyLock::new(|| {
    ALIASES_TSV
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (word, code) = l
                .split_once('\t')
                .expect("data/industry_aliases.tsv: word\\tcode");
            let i = TABLE
                .iter()
                .position(|r| r.code == code.trim())
                .unwrap_or_else(|| panic!("data/industry_aliases.tsv: unknown code {code}"));
            (fold_for_match(word), i)
        })
        .collect()
});

fn stems(name: &str) -> Vec<String> {
    let folded = fold_for_match(name);
    let mut out = vec![folded.clone()];
    // 「旅行業(旅行業者代理業を除く)」: the note is not part of the name.
    let bare: String = match folded.find('(') {
        Some(i) => folded[..i].to_string(),
        None => folded.clone(),
    };
    out.push(bare.clone());
    if let Some(s) = bare.strip_suffix('業') {
        out.push(s.to_string());
    }
    out.sort();
    out.dedup();
    out.retain(|s| s.chars().count() >= 2);
    out
}

/// One class of the JSIC.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Jsic(u16);

impl std::fmt::Debug for Jsic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jsic({} {})", self.code(), self.name())
    }
}

/// The sectors of 中小企業基本法 第2条, which set the SME thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmeSector {
    /// 製造業その他 (manufacturing, construction, transport, …)
    ManufacturingEtc,
    Wholesale,
    /// 小売業 (including restaurants, 飲食店)
    Retail,
    Services,
}

impl SmeSector {
    /// Up to this many regular employees a company is an SME (中小企業者).
    pub fn sme_max_employees(self) -> u32 {
        match self {
            SmeSector::ManufacturingEtc => 300,
            SmeSector::Wholesale | SmeSector::Services => 100,
            SmeSector::Retail => 50,
        }
    }

    /// Up to this capital (yen) a company is an SME, whatever its staff.
    pub fn sme_max_capital_yen(self) -> u64 {
        match self {
            SmeSector::ManufacturingEtc => 300_000_000,
            SmeSector::Wholesale => 100_000_000,
            SmeSector::Retail | SmeSector::Services => 50_000_000,
        }
    }

    pub fn name_ja(self) -> &'static str {
        match self {
            SmeSector::ManufacturingEtc => "製造業その他",
            SmeSector::Wholesale => "卸売業",
            SmeSector::Retail => "小売業",
            SmeSector::Services => "サービス業",
        }
    }
}

/// The limits of 中小企業基本法 第2条 that apply to one company: up to
/// `sme_max_employees` regular employees or up to `sme_max_capital_yen`
/// capital it is an SME (中小企業者); up to `small_max_employees` it is a
/// small business (小規模企業者).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    pub sme_max_employees: u32,
    pub sme_max_capital_yen: u64,
    pub small_max_employees: u32,
}

impl SizeLimits {
    /// The limits that hold for every one of `classes`: a company is
    /// certainly small (or an SME) under them whichever of the classes it
    /// is. This is how a broad answer (「飲食・宿泊業」) is judged, so that
    /// routing never calls a company small when the law might not.
    fn strictest(classes: impl Iterator<Item = Jsic>) -> Option<SizeLimits> {
        classes.map(Jsic::size_limits).reduce(|a, b| SizeLimits {
            sme_max_employees: a.sme_max_employees.min(b.sme_max_employees),
            sme_max_capital_yen: a.sme_max_capital_yen.min(b.sme_max_capital_yen),
            small_max_employees: a.small_max_employees.min(b.small_max_employees),
        })
    }

    /// The limits for an answer of the script's industry question: the
    /// class's own when the owner's words were classified, the strictest
    /// of the option's classes for a plain option, and the strictest of
    /// all classes when the industry is unknown (`None`, or an option no
    /// class maps to).
    pub fn for_industry(option: Option<&str>, class: Option<Jsic>) -> SizeLimits {
        if let Some(c) = class {
            return c.size_limits();
        }
        // Routing and its linter ask this for every case they try, so the
        // strictest limits per option are worked out once from the table.
        static BY_OPTION: LazyLock<(Vec<(&'static str, SizeLimits)>, SizeLimits)> =
            LazyLock::new(|| {
                let all = || (0..TABLE.len()).map(|i| Jsic(i as u16));
                let mut options: Vec<&'static str> = all().map(Jsic::script_option).collect();
                options.sort_unstable();
                options.dedup();
                let per = options
                    .into_iter()
                    .filter_map(|o| {
                        SizeLimits::strictest(all().filter(|c| c.script_option() == o))
                            .map(|l| (o, l))
                    })
                    .collect();
                let any = SizeLimits::strictest(all()).expect("the JSIC table is not empty");
                (per, any)
            });
        let (per, any) = &*BY_OPTION;
        option
            .and_then(|o| per.iter().find(|(id, _)| *id == o).map(|(_, l)| *l))
            .unwrap_or(*any)
    }

    /// 小規模企業者: the law counts regular employees only.
    pub fn is_small(&self, employees: f64) -> bool {
        employees <= f64::from(self.small_max_employees)
    }

    /// 中小企業者: employees within the limit *or* capital within the limit;
    /// an unanswered figure decides nothing.
    pub fn is_sme(&self, employees: Option<f64>, capital_yen: Option<f64>) -> bool {
        employees.is_some_and(|e| e <= f64::from(self.sme_max_employees))
            || capital_yen.is_some_and(|c| c <= self.sme_max_capital_yen as f64)
    }
}

/// Errors from [`Jsic::classify`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IndustryError {
    #[error("no industry given: name the trade, e.g. 金属加工 or 旅行業")]
    Empty,
    #[error("「{0}」 is not an industry we can classify: name the trade, e.g. 金属加工, 旅行業 or リネンサプライ")]
    Unknown(String),
}

impl Jsic {
    fn row(self) -> &'static Row {
        &TABLE[usize::from(self.0)]
    }

    /// The class code: a letter for 大分類, 2, 3 or 4 digits below.
    pub fn code(self) -> &'static str {
        self.row().code
    }

    /// The official name, e.g. リネンサプライ業.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    pub fn level(self) -> Level {
        self.row().level
    }

    pub fn parent(self) -> Option<Jsic> {
        self.row().parent.map(|i| Jsic(i as u16))
    }

    /// The class at a level above (or this class if it is that level).
    pub fn at(self, level: Level) -> Option<Jsic> {
        let mut c = self;
        while c.level() > level {
            c = c.parent()?;
        }
        (c.level() == level).then_some(c)
    }

    pub fn major(self) -> Jsic {
        self.at(Level::Major).unwrap_or(self)
    }

    pub fn by_code(code: &str) -> Option<Jsic> {
        TABLE
            .iter()
            .position(|r| r.code == code)
            .map(|i| Jsic(i as u16))
    }

    /// The 中小企業基本法 sector of the class.
    pub fn sme_sector(self) -> SmeSector {
        let middle: u32 = self
            .at(Level::Middle)
            .and_then(|m| m.code().parse().ok())
            .unwrap_or(0);
        match self.major().code() {
            "I" if (50..=55).contains(&middle) => SmeSector::Wholesale,
            "I" => SmeSector::Retail,
            // 飲食店 and 持ち帰り・配達飲食サービス業 count as retail.
            "M" if middle == 76 || middle == 77 => SmeSector::Retail,
            // 通信業 (37) is 製造業その他; the rest of 情報通信業 is services.
            "G" if middle == 37 => SmeSector::ManufacturingEtc,
            "G" | "K" | "L" | "M" | "N" | "O" | "P" | "Q" | "R" => SmeSector::Services,
            _ => SmeSector::ManufacturingEtc,
        }
    }

    /// Up to this many employees a company of this class is a small
    /// business (小規模企業者): 20, or 5 in commerce and services, except
    /// 宿泊業 and 娯楽業, which keep 20.
    pub fn small_business_max_employees(self) -> u32 {
        let middle = self.at(Level::Middle).map(Jsic::code);
        if matches!(middle, Some("75" | "80")) {
            return 20;
        }
        match self.sme_sector() {
            SmeSector::ManufacturingEtc => 20,
            _ => 5,
        }
    }

    /// All 中小企業基本法 limits of the class, from its sector and the
    /// 宿泊業・娯楽業 exception.
    pub fn size_limits(self) -> SizeLimits {
        let sector = self.sme_sector();
        SizeLimits {
            sme_max_employees: sector.sme_max_employees(),
            sme_max_capital_yen: sector.sme_max_capital_yen(),
            small_max_employees: self.small_business_max_employees(),
        }
    }

    /// Every id [`Jsic::script_option`] returns. A choice question with
    /// none of them among its options cannot take an answer from the JSIC,
    /// so the engine does not classify answers to it.
    pub const SCRIPT_OPTIONS: &'static [&'static str] = &[
        "construction",
        "manufacturing",
        "information",
        "transport",
        "wholesale_retail",
        "food_lodging",
        "medical_welfare",
        "services",
        "other",
    ];

    /// The option id of the first-contact script's industry question that
    /// the class belongs to.
    pub fn script_option(self) -> &'static str {
        match self.major().code() {
            "D" => "construction",
            "E" => "manufacturing",
            "G" => "information",
            "H" => "transport",
            "I" => "wholesale_retail",
            "M" => "food_lodging",
            "P" => "medical_welfare",
            "K" | "L" | "N" | "O" | "R" => "services",
            _ => "other",
        }
    }

    /// Classifies an owner's words: an exact class name or alias (旅行業,
    /// リネンサプライ, 地質調査業), or the longest class name or alias inside
    /// a sentence (陶器の製造業です). The most specific class wins.
    pub fn classify(s: &str) -> Result<Jsic, IndustryError> {
        // Trades are named in a few words; a long text is cut so that
        // classifying stays cheap whatever an owner pastes.
        let short: String = s.chars().take(200).collect();
        let key = strip_noise(&fold_for_match(&short));
        if key.is_empty() {
            return Err(IndustryError::Empty);
        }
        let key_bare = key.strip_suffix('業').unwrap_or(&key);
        let words = &*WORDS;
        // Exact: a class whose full name is the key (旅行業 is 小分類 791,
        // not its 細分類 「旅行業(旅行業者代理業を除く)」), else the deepest
        // class whose name without note or 業, or an alias, is the key.
        let exact = [key.as_str(), key_bare]
            .into_iter()
            .filter_map(|k| words.exact.get(k))
            .flatten()
            .map(|&w| {
                let w = &words.all[w as usize];
                let full = w.alias.is_none() && TABLE[w.class].folded_name == key;
                (full, w.level, w.class)
            })
            .max_by_key(|(full, level, i)| (*full, *level, std::cmp::Reverse(*i)));
        if let Some((_, _, i)) = exact {
            return Ok(Jsic(i as u16));
        }
        // Inside a sentence: the deepest class named, then the longest
        // name, so 「陶器の製造業」 is 陶磁器 (小分類), not 製造業 (大分類).
        // Only the words that start with a character of the key can be in
        // it; of those named, the first in table order wins a tie.
        let mut firsts: Vec<char> = key.chars().collect();
        firsts.sort_unstable();
        firsts.dedup();
        let mut named: Vec<u32> = firsts
            .iter()
            .filter_map(|c| words.by_first.get(c))
            .flatten()
            .copied()
            .filter(|&w| key.contains(words.all[w as usize].word.as_str()))
            .collect();
        named.sort_unstable();
        let mut best: Option<&Word> = None;
        for w in named.iter().map(|&w| &words.all[w as usize]) {
            if best.is_none_or(|b| (w.level, w.chars) > (b.level, b.chars)) {
                best = Some(w);
            }
        }
        best.map(|w| Jsic(w.class as u16))
            .ok_or_else(|| IndustryError::Unknown(excerpt(&normalize_input(s))))
    }
}

/// Polite endings and framing around a trade (「陶器の製造業です」).
fn strip_noise(s: &str) -> String {
    let mut s = s.trim_end_matches(['。', '.', '!', '、']).to_string();
    for ending in [
        "でございます",
        "をしています",
        "をやっています",
        "をしております",
        "を営んでいます",
        "です",
        "の会社",
        "関係",
        "関連",
    ] {
        if let Some(rest) = s.strip_suffix(ending) {
            s = rest.to_string();
        }
    }
    s
}

impl std::fmt::Display for Jsic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds the classification's tables now (see [`crate::domain::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&TABLE);
    LazyLock::force(&WORDS);
    LazyLock::force(&ALIASES);
    // The strictest size limits per script option, built on first use.
    SizeLimits::for_industry(None, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Jsic {
        Jsic::classify(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn script_options_lists_every_option_a_class_maps_to() {
        let mut reached: Vec<&str> = (0..TABLE.len())
            .map(|i| Jsic(i as u16).script_option())
            .collect();
        reached.sort_unstable();
        reached.dedup();
        let mut listed = Jsic::SCRIPT_OPTIONS.to_vec();
        listed.sort_unstable();
        assert_eq!(reached, listed);
    }

    /// The indexed search gives what a scan of every stem and alias gives,
    /// for class names, aliases, sentences and words that name nothing.
    #[test]
    fn the_index_agrees_with_a_scan() {
        fn scan(s: &str) -> Option<usize> {
            let short: String = s.chars().take(200).collect();
            let key = strip_noise(&fold_for_match(&short));
            if key.is_empty() {
                return None;
            }
            let key_bare = key.strip_suffix('業').unwrap_or(&key);
            let exact = TABLE
                .iter()
                .enumerate()
                .filter(|(_, r)| r.stems.iter().any(|x| *x == key || x == key_bare))
                .map(|(i, r)| (fold_for_match(r.name) == key, r.level, i))
                .chain(
                    ALIASES
                        .iter()
                        .filter(|(w, _)| *w == key || w == key_bare)
                        .map(|(_, i)| (false, Level::Detail, *i)),
                )
                .max_by_key(|(full, level, i)| (*full, *level, std::cmp::Reverse(*i)));
            if let Some((_, _, i)) = exact {
                return Some(i);
            }
            let mut best: Option<(Level, usize, usize)> = None;
            let mut consider = |i: usize, stem: &str, level: Level| {
                if stem.chars().count() >= 2 && key.contains(stem) {
                    let cand = (level, stem.chars().count(), i);
                    if best.is_none_or(|b| (cand.0, cand.1) > (b.0, b.1)) {
                        best = Some(cand);
                    }
                }
            };
            for (i, r) in TABLE.iter().enumerate() {
                for st in &r.stems {
                    consider(i, st, r.level);
                }
            }
            for (w, i) in ALIASES.iter() {
                consider(*i, w, Level::Detail);
            }
            best.map(|(_, _, i)| i)
        }
        let mut inputs: Vec<String> = Vec::new();
        for (k, r) in TABLE.iter().enumerate().step_by(3) {
            inputs.push(r.name.to_string());
            inputs.push(format!("うちは{}をやっています", r.name));
            let next = TABLE[(k * 7 + 11) % TABLE.len()].name;
            inputs.push(format!("{}と{}の会社", r.name, next));
        }
        for (w, _) in ALIASES.iter() {
            inputs.push(w.clone());
            inputs.push(format!("{w}関係です"));
        }
        for s in [
            "",
            "です",
            "業",
            "はい",
            "ＩＴ",
            "陶器の製造業です",
            "製造業（陶器）",
            "hello",
        ] {
            inputs.push(s.to_string());
        }
        for s in &inputs {
            assert_eq!(
                Jsic::classify(s).ok().map(|c| usize::from(c.0)),
                scan(s),
                "{s}"
            );
        }
    }

    #[test]
    fn the_table_has_every_level() {
        let count = |l: Level| TABLE.iter().filter(|r| r.level == l).count();
        assert_eq!(count(Level::Major), 20);
        assert_eq!(count(Level::Middle), 99);
        assert!(count(Level::Minor) > 400);
        assert!(count(Level::Detail) > 1_000);
        // Every class below 大分類 has its parent.
        assert!(TABLE
            .iter()
            .all(|r| r.level == Level::Major || r.parent.is_some()));
    }

    #[test]
    fn owners_words_map_to_classes_and_options() {
        let cases = [
            ("旅行業", "791", "services"),
            ("地質調査業", "742", "services"),
            ("リネンサプライ", "7813", "services"),
            ("建物サービス", "922", "services"),
            ("情報処理サービス業", "3921", "information"),
            ("陶器の製造業です", "214", "manufacturing"),
            ("ソフトウェア業", "391", "information"),
            ("一般貨物自動車運送業", "441", "transport"),
            ("清酒製造業", "1023", "manufacturing"),
            ("旅館", "751", "food_lodging"),
            ("製造業（陶器）", "214", "manufacturing"),
            (
                "うちは清酒の蔵元で、酒造をしています",
                "1023",
                "manufacturing",
            ),
            ("介護", "85", "medical_welfare"),
        ];
        for (input, code, option) in cases {
            let c = class(input);
            assert_eq!(c.code(), code, "{input}: {c:?}");
            assert_eq!(c.script_option(), option, "{input}");
        }
        assert!(matches!(
            Jsic::classify("ほげほげ"),
            Err(IndustryError::Unknown(_))
        ));
        assert_eq!(Jsic::classify(" "), Err(IndustryError::Empty));
    }

    #[test]
    fn sme_thresholds_follow_from_the_class() {
        let cases = [
            (
                "清酒製造業",
                SmeSector::ManufacturingEtc,
                300,
                300_000_000,
                20,
            ),
            ("各種商品卸売業", SmeSector::Wholesale, 100, 100_000_000, 5),
            ("各種商品小売業", SmeSector::Retail, 50, 50_000_000, 5),
            ("飲食店", SmeSector::Retail, 50, 50_000_000, 5),
            ("リネンサプライ", SmeSector::Services, 100, 50_000_000, 5),
            ("旅館", SmeSector::Services, 100, 50_000_000, 20),
            ("建設業", SmeSector::ManufacturingEtc, 300, 300_000_000, 20),
        ];
        for (input, sector, people, capital, small) in cases {
            let c = class(input);
            assert_eq!(c.sme_sector(), sector, "{input}");
            assert_eq!(sector.sme_max_employees(), people, "{input}");
            assert_eq!(sector.sme_max_capital_yen(), capital, "{input}");
            assert_eq!(c.small_business_max_employees(), small, "{input}");
        }
    }

    #[test]
    fn small_business_and_sme_follow_from_the_class() {
        let limits = |s: &str| class(s).size_limits();
        // 宿泊業 keeps the manufacturing limit of 20 for 小規模企業者.
        assert!(limits("旅館").is_small(15.0));
        assert!(limits("ホテル").is_small(20.0));
        assert!(!limits("ホテル").is_small(21.0));
        // A wholesaler: 15 people is not small (5), but is an SME by staff
        // (100) and, with 1億円, by capital too.
        let w = limits("各種商品卸売業");
        assert!(!w.is_small(15.0));
        assert!(w.is_sme(Some(15.0), Some(100_000_000.0)));
        // 150 people is over the staff limit, but 1億円 capital is within it.
        assert!(w.is_sme(Some(150.0), Some(100_000_000.0)));
        assert!(!w.is_sme(Some(150.0), Some(100_000_001.0)));
        assert!(!w.is_sme(Some(150.0), None));
        // Services: 8 people is not small; a retailer of 60 people with
        // 1億円 is no SME at all.
        assert!(!limits("リネンサプライ").is_small(8.0));
        assert!(limits("リネンサプライ").is_small(5.0));
        assert!(!limits("各種商品小売業").is_sme(Some(60.0), Some(100_000_000.0)));
        assert!(limits("清酒製造業").is_small(20.0));
        assert!(limits("清酒製造業").is_sme(Some(300.0), None));
    }

    #[test]
    fn a_broad_option_is_judged_by_the_strictest_of_its_classes() {
        let opt = |o: &str| SizeLimits::for_industry(Some(o), None);
        // 飲食・宿泊業: 飲食店 are small up to 5, 旅館 up to 20; an owner who
        // only picked the option is certainly small only up to 5.
        assert_eq!(opt("food_lodging").small_max_employees, 5);
        assert_eq!(opt("food_lodging").sme_max_employees, 50);
        assert_eq!(opt("manufacturing").small_max_employees, 20);
        assert_eq!(opt("manufacturing").sme_max_capital_yen, 300_000_000);
        assert_eq!(opt("construction").small_max_employees, 20);
        assert_eq!(opt("wholesale_retail").sme_max_employees, 50);
        // 医療・福祉 is services under the law.
        assert_eq!(opt("medical_welfare").small_max_employees, 5);
        // A class decides over its option.
        let hotel = class("旅館");
        assert_eq!(
            SizeLimits::for_industry(Some("food_lodging"), Some(hotel)).small_max_employees,
            20
        );
        // Unknown: certain only within every class's limit.
        assert_eq!(SizeLimits::for_industry(None, None).small_max_employees, 5);
        assert_eq!(
            SizeLimits::for_industry(Some("no_such_option"), None).sme_max_employees,
            50
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = Jsic::classify(&s);
        }
    }
}
