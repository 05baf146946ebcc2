//! Reading a choice or a multiple choice out of what an owner wrote.
//!
//! Owners rarely type an option exactly: they write 「陶器の製造業です」,
//! 「人材で解決したい」, 「３と４と６」 or 「プロボノ、副業、インターン」. This
//! module finds the options' labels and aliases inside the sentence, reads
//! lists of numbers, notices words that exclude an option (「採用ではなく」,
//! 「〜以外」, "not", "rather than") and keeps, separately, the listed words
//! that fit no option and the words that fit more than one. Deciding what to
//! do with that reading (accept, ask about the rest, ask again) is left to
//! the caller, because it depends on the question.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::text::fold_keep_spaces;
use crate::script::ChoiceOption;

/// What was found in one answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Reading {
    /// Options understood, by index, in the order found, without repeats.
    pub picks: Vec<usize>,
    /// Words that fit several options equally well, with those options.
    pub ambiguous: Vec<(String, Vec<usize>)>,
    /// Listed words that fit no option, as folded.
    pub unknown: Vec<String>,
    /// Option numbers that do not exist (「12」 among nine options).
    pub bad_numbers: Vec<String>,
    /// Options the owner excluded in so many words.
    pub negated: Vec<usize>,
    /// The answer was only numbers (「1、5」), not words.
    pub numeric: bool,
}

/// Words at the start of an answer that carry no choice.
const PREFIXES: &[&str] = &[
    "えーと",
    "えっと",
    "うーん",
    "そうですね",
    "まずは",
    "まず",
    "主に",
    "おもに",
    "一応",
    "たぶん",
    "多分",
    "おそらく",
    "うちは",
    "弊社は",
    "当社は",
    "私は",
    "業種は",
    "強いて言えば",
    "しいて言えば",
    "どちらかというと",
    "どちらかといえば",
    "基本的に",
    "mainly",
    "mostly",
    "probably",
    "maybe",
    "i think",
    "we are",
    "we're",
    "we'd like",
    "we would like",
    "i'd like",
    "i would like",
    "our company is",
    "it's",
    "it is",
    "well,",
    "well",
    "um",
    "uh",
];

/// Endings that carry no choice: politeness, particles, hedges, "I want to
/// solve it with …". Stripped repeatedly, longest first.
const SUFFIXES: &[&str] = &[
    "でお願いします",
    "をお願いします",
    "お願いします",
    "お願いしたいです",
    "お願いしたい",
    "で解決したいです",
    "で解決したい",
    "を検討しています",
    "を検討したいです",
    "を検討したい",
    "を検討中です",
    "を検討中",
    "を考えています",
    "を考えてます",
    "を考えている",
    "を希望します",
    "を希望",
    "希望です",
    "希望",
    "にしたいです",
    "にしたい",
    "がいいです",
    "がいい",
    "が良いです",
    "が良い",
    "になります",
    "をやっています",
    "をしています",
    "をしてます",
    "してます",
    "しています",
    "をやってます",
    "やってます",
    "を営んでいます",
    "を営む",
    "営んでいます",
    "を中心に",
    "中心",
    "メイン",
    "めいん",
    "だと思います",
    "と思います",
    "と思う",
    "だと思う",
    "かもしれません",
    "かもしれない",
    "かなと",
    "かな",
    "かも",
    "ですね",
    "ですか",
    "でした",
    "です",
    "でしょうか",
    "でしょう",
    "だね",
    "だよ",
    "だ",
    "ます",
    "など",
    "とか",
    "あたり",
    "関係",
    "関連",
    "方面",
    "分野",
    "系",
    "で",
    "が",
    "を",
    "に",
    "は",
    "も",
    "の",
    "ね",
    "よ",
    "な",
    "。",
    "、",
    ",",
    ".",
    "!",
    "！",
    "?",
    "？",
    "です。",
    "please",
    "mostly",
    "mainly",
    "i think",
    "maybe",
    "probably",
    "thanks",
    "thank you",
    "for now",
];

/// Words that join items of a list.
const CONNECTIVES: &[&str] = &[
    "、",
    ",",
    "，",
    "/",
    "／",
    ";",
    "；",
    "・",
    "&",
    "+",
    "＋",
    "と",
    "や",
    "および",
    "及び",
    "それから",
    "あと",
    "and",
    "or",
    "also",
    "plus",
    "as well as",
];

/// After an option's words: that option is excluded (「採用ではなく」,
/// 「人材以外」, 「副業はしたくない」).
static NEG_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:型|人材|業)?\s*(?:では|じゃ|は|を|も|とか|って)?\s*(?:なく|なし|無し|ない|ありません|以外|不要|いらない|要らない|いりません|要りません|しない|しません|したくない|考えていない|考えてない|考えておらず|考えていません|望まない|望みません|除く|抜き|ぬき|無理|むり|結構|けっこう|対象外|nai)|^\s*(?:is|are)?\s*(?:not|isn't|aren't)\b",
    )
    .expect("valid regex")
});

/// After an option's words, a little further on: the owner rules it out
/// as hard or unwanted (「人を雇うのは難しい」, 「正社員は無理」).
///
/// The words in between stay within the clause (no 「、」 or 「。」):
/// 「人を雇いたいが、お金がない」 still wants to hire. Plans, intentions
/// and means denied (「人を増やす予定はない」「人を雇う余裕はない」
/// 「人を入れるつもりはない」) and enough people (「人材は足りてる」) rule
/// the option out too, and so does the verb itself in a negative form
/// (「人を雇わずに」「雇用せずに」「人を入れたくない」).
static HARD_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*[^、，,。．.!?\n]{0,10}?(?:(?:のは|ことは|は|が|も)\s*(?:難しい|むずかしい|無理|むり|できない|出来ない|厳しい|きびしい|考えていない|考えてない|したくない|避けたい|怖い|こわい|不安|予定はない|予定がない)|(?:予定|つもり|余裕|余力|お金|資金|必要|考え)\s*(?:は|が|も)?\s*(?:ない|無い|ありません|ございません|なく)|(?:は|が|も)\s*(?:足りて(?:いる|います|る)|十分|間に合って(?:いる|います|る)))|^[\p{Hiragana}]{0,3}?(?:ずに|ず、|ずで|ないで|たくない|なくても)",
    )
    .expect("valid regex")
});

/// Before an option's words: that option is excluded ("not hiring",
/// "rather than a side job", "without", "can't afford to hire", "no plans
/// to hire").
static NEG_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[\s,])(?:not|no|without|except|excluding|than|instead of|nor|never|don't want|do not want|don't need|do not need|no need for|can't afford to|cannot afford to|can not afford to|no plans? to|no intention to|not planning to|won't|will not)\s+(?:an?\s+|the\s+|any\s+)?(?:\S+\s+)?$|(?:非|不)$",
    )
    .expect("valid regex")
});

/// A list made only of option numbers: 「1、5」「３と４と６」「2番」「#3」.
static NUMBERS_ONLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:no\.?|#|option|number|番号)\s*)?\d{1,3}\s*番?(?:\s*(?:[、,，/／;；・&+＋]|と|や|and|or)?\s*(?:(?:no\.?|#|option|number)\s*)?\d{1,3}\s*番?)*$",
    )
    .expect("valid regex")
});

static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d{1,3}").expect("valid regex"));

/// Strips filler words at both ends, repeatedly.
pub(crate) fn strip_fillers(s: &str) -> String {
    let mut cur = s.trim().to_string();
    loop {
        let before = cur.clone();
        for p in PREFIXES {
            if let Some(rest) = cur.strip_prefix(p) {
                if p.is_ascii() && rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                    continue;
                }
                cur = rest.trim_start_matches([' ', ',', '、']).to_string();
            }
        }
        for suf in SUFFIXES {
            if let Some(rest) = cur.strip_suffix(suf) {
                if suf.is_ascii()
                    && suf.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && rest.ends_with(|c: char| c.is_ascii_alphanumeric())
                {
                    continue;
                }
                cur = rest.trim_end().to_string();
            }
        }
        cur = cur
            .trim_matches(|c: char| {
                c.is_whitespace() || "()（）「」『』\"'【】[]。.!！?？、,".contains(c)
            })
            .to_string();
        if cur == before {
            return cur;
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Every place a key occurs in `t`, respecting English word boundaries.
fn occurrences(t: &str, key: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    if key.is_empty() {
        return out;
    }
    let ascii_start = key.starts_with(is_word_char);
    let ascii_end = key.ends_with(is_word_char);
    for (s, _) in t.match_indices(key) {
        let e = s + key.len();
        if ascii_start && t[..s].ends_with(is_word_char) {
            continue;
        }
        if ascii_end && t[e..].starts_with(is_word_char) {
            continue;
        }
        out.push((s, e));
    }
    out
}

/// Strips connectives at the edges of a piece of text; says which edges
/// had one.
fn strip_connectives(s: &str) -> (String, bool, bool) {
    let mut cur = s.trim().to_string();
    let (mut left, mut right) = (false, false);
    loop {
        let before = cur.clone();
        for c in CONNECTIVES {
            if let Some(rest) = cur.strip_prefix(c) {
                if c.is_ascii() && rest.starts_with(is_word_char) {
                    continue;
                }
                cur = rest.trim_start().to_string();
                left = true;
            }
            if let Some(rest) = cur.strip_suffix(c) {
                if c.is_ascii() && rest.ends_with(is_word_char) {
                    continue;
                }
                cur = rest.trim_end().to_string();
                right = true;
            }
        }
        if cur == before {
            return (cur, left, right);
        }
    }
}

/// Splits on the separators that always divide list items.
fn split_strong(s: &str) -> Vec<&str> {
    s.split(|c: char| "、,，/／;；\n・&+＋".contains(c))
        .collect()
}

/// The options whose label (or a key) starts with or contains `word`.
fn options_containing(options: &[ChoiceOption], word: &str) -> Vec<usize> {
    if word.chars().count() < 2 {
        return Vec::new();
    }
    let mut hits: Vec<usize> = options
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.keys.iter().any(|k| {
                // An English word must be a whole word of the label.
                if word.is_ascii() {
                    k.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                        .any(|w| w == word || (word.len() >= 4 && w.starts_with(word)))
                } else {
                    k.contains(word)
                }
            })
        })
        .map(|(i, _)| i)
        .collect();
    hits.dedup();
    hits
}

/// Reads the options in an answer. `raw` is what the owner typed.
pub(crate) fn read(options: &[ChoiceOption], raw: &str) -> Reading {
    let mut r = Reading::default();
    let t = fold_keep_spaces(raw);
    // The same text before lowercasing, to tell 「IT」 from the word "it".
    let cased: String = crate::domain::text::normalize_input(raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let cased = (cased.len() == t.len()).then_some(cased);
    let core = strip_fillers(&t);

    // Numbers only: the options by their numbers.
    if NUMBERS_ONLY.is_match(&core) {
        r.numeric = true;
        for m in DIGITS.find_iter(&core) {
            let n: usize = m.as_str().parse().unwrap_or(0);
            match n.checked_sub(1).filter(|i| *i < options.len()) {
                Some(i) if !r.picks.contains(&i) => r.picks.push(i),
                Some(_) => {}
                None => r.bad_numbers.push(m.as_str().to_string()),
            }
        }
        return r;
    }

    // Every occurrence of every key, longest first; a shorter key inside a
    // longer one is part of it (「人材」 inside 「人材以外」).
    let mut cands: Vec<(usize, usize, usize)> = Vec::new();
    for (i, o) in options.iter().enumerate() {
        for k in &o.keys {
            // A short English key ("IT", "DX", "PR") must be written in
            // capitals, or "we need it" would pick IT.
            let acronym = k.len() <= 3 && k.chars().all(|c| c.is_ascii_alphabetic());
            for (s, e) in occurrences(&t, k) {
                if acronym
                    && cased
                        .as_ref()
                        .is_some_and(|c| c[s..e].chars().any(|c| c.is_ascii_lowercase()))
                {
                    continue;
                }
                cands.push((s, e, i));
            }
        }
    }
    cands.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)));
    let mut spans: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for (s, e, i) in cands {
        if let Some(sp) = spans.iter_mut().find(|sp| sp.0 == s && sp.1 == e) {
            if !sp.2.contains(&i) {
                sp.2.push(i);
            }
            continue;
        }
        if spans.iter().any(|sp| s < sp.1 && sp.0 < e) {
            continue;
        }
        spans.push((s, e, vec![i]));
    }
    spans.sort_by_key(|sp| sp.0);
    for (s, e, opts) in &spans {
        let negated = NEG_AFTER.is_match(&t[*e..])
            || HARD_AFTER.is_match(&t[*e..])
            || NEG_BEFORE.is_match(&t[..*s]);
        if negated {
            for i in opts {
                if !r.negated.contains(i) {
                    r.negated.push(*i);
                }
            }
        } else if opts.len() == 1 {
            if !r.picks.contains(&opts[0]) {
                r.picks.push(opts[0]);
            }
        } else {
            r.ambiguous.push((t[*s..*e].to_string(), opts.clone()));
        }
    }
    // An option both named and excluded (「採用ではなく…採用も」) is doubtful:
    // leave it out, so the owner is asked rather than misread.
    r.picks.retain(|i| !r.negated.contains(i));

    // The text between the options: listed words that fit no option, or
    // words that fit several; words attached to an option without a
    // connective (「陶器の」製造業, 製造業「（金属加工）」) are context.
    let mut bounds = vec![0usize];
    for (s, e, _) in &spans {
        bounds.push(*s);
        bounds.push(*e);
    }
    bounds.push(t.len());
    for (ci, w) in bounds.chunks(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let chunk = &t[a..b];
        let touches_left = ci > 0;
        let touches_right = b < t.len();
        let parts = split_strong(chunk);
        let last = parts.len() - 1;
        for (pi, part) in parts.iter().enumerate() {
            let (p, cl, cr) = strip_connectives(part);
            let left_open = pi > 0 || !touches_left || cl;
            let right_open = pi < last || !touches_right || cr;
            if !(left_open && right_open) {
                continue;
            }
            let word = strip_fillers(&p);
            if word.is_empty() || is_noise(&word) {
                continue;
            }
            let hits: Vec<usize> = options_containing(options, &word)
                .into_iter()
                .filter(|i| !r.negated.contains(i))
                .collect();
            match hits.len() {
                // Echoed as the owner wrote it, not folded.
                0 => r.unknown.push(
                    cased
                        .as_ref()
                        .and_then(|c| {
                            t[a..b]
                                .find(word.as_str())
                                .and_then(|i| c.get(a + i..a + i + word.len()))
                        })
                        .map(str::to_string)
                        .unwrap_or(word),
                ),
                1 => {
                    if !r.picks.contains(&hits[0]) {
                        r.picks.push(hits[0]);
                    }
                }
                _ => r.ambiguous.push((word, hits)),
            }
        }
    }
    r
}

/// Words that are no item of a list: a lone particle or hedge left over.
fn is_noise(w: &str) -> bool {
    w.chars().count() < 2 && !w.chars().any(|c| c.is_alphanumeric() && !is_kana(c))
        || matches!(w, "など" | "etc" | "その他" | "ほか" | "色々" | "いろいろ")
}

fn is_kana(c: char) -> bool {
    ('\u{3040}'..='\u{30FF}').contains(&c)
}

/// Words that say "nothing more" after a partial answer was kept.
pub(crate) fn is_done_word(raw: &str) -> bool {
    let w = strip_fillers(&fold_keep_spaces(raw));
    matches!(
        w.as_str(),
        "以上"
            | "なし"
            | "無し"
            | "ない"
            | "ありません"
            | "ないです"
            | "それだけ"
            | "それで"
            | "それでいい"
            | "それでいいです"
            | "大丈夫"
            | "だいじょうぶ"
            | "結構"
            | "いらない"
            | "不要"
            | "いいえ"
            | "そのまま"
            | "それで大丈夫"
            | "おわり"
            | "終わり"
            | "none"
            | "no"
            | "nothing"
            | "nothing else"
            | "that's all"
            | "thats all"
            | "that's it"
            | "done"
            | "no more"
            | "keep it"
            | "fine"
    )
}

/// Words that say "I do not know": never kept as an "other" detail.
pub(crate) fn is_dont_know(raw: &str) -> bool {
    let w = strip_fillers(&fold_keep_spaces(raw));
    w.contains("わから")
        || w.contains("分から")
        || w.contains("わかりません")
        || w.contains("分かりません")
        || w.contains("意味がわか")
        || w.contains("わかん")
        || w.contains("不明")
        || w.contains("未定")
        || w.contains("知らない")
        || w.contains("don't know")
        || w.contains("dont know")
        || w.contains("not sure")
        || w.contains("no idea")
        || w.contains("unsure")
}

/// Whether the owner says they have none, or do not know (「なし」「特に
/// なし」「個人事業なのでなし」「わからない」「no」): for an optional
/// question, that is the skip its wording offers (「わからなければ「スキッ
/// プ」」), said in their own words. An answer with digits in it is never
/// taken for one, and neither is a long one.
pub(crate) fn says_none(raw: &str) -> bool {
    const NONE: &[&str] = &[
        "なし",
        "無し",
        "ない",
        "無い",
        "ありません",
        "ございません",
        "持っていません",
        "やっていません",
        "使っていない",
        "使っていません",
        "特になし",
        "とくになし",
        "特にない",
        "持っていない",
        "もっていない",
        "やっていない",
        "none",
        "no",
        "nothing",
        "n/a",
        "na",
        "nope",
        "not applicable",
        "don't have",
        "do not have",
    ];
    let w = strip_fillers(&fold_keep_spaces(raw));
    if w.is_empty() || w.chars().count() > 20 || w.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    is_dont_know(raw)
        || NONE.iter().any(|n| {
            w == *n
                || (!n.is_ascii() && w.ends_with(n))
                || (n.is_ascii() && w.strip_suffix(n).is_some_and(|head| head.ends_with(' ')))
        })
}

/// Compiles the choice patterns now (see [`super::warm_up`]).
pub(crate) fn warm_up() {
    for re in [&NEG_AFTER, &HARD_AFTER, &NEG_BEFORE, &NUMBERS_ONLY, &DIGITS] {
        LazyLock::force(re);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[(&str, &str, &[&str])]) -> Vec<ChoiceOption> {
        list.iter()
            .map(|(id, label, aliases)| {
                let mut keys = vec![fold_keep_spaces(label)];
                keys.extend(aliases.iter().map(|a| fold_keep_spaces(a)));
                ChoiceOption {
                    id: id.to_string(),
                    label: label.to_string(),
                    folded: keys.clone(),
                    keys,
                }
            })
            .collect()
    }

    fn styles() -> Vec<ChoiceOption> {
        opts(&[
            ("fulltime", "転職（正社員）", &["正社員", "採用"]),
            ("side_job", "副業", &[]),
            ("pro_bono", "プロボノ", &[]),
            ("develop", "社内人材の育成", &["育成"]),
        ])
    }

    #[test]
    fn an_option_inside_a_sentence_is_found() {
        let r = read(&styles(), "できれば副業で週1日くらい");
        assert_eq!(r.picks, vec![1]);
        assert!(r.unknown.is_empty(), "{r:?}");
    }

    #[test]
    fn numbers_joined_by_to_are_a_list() {
        let r = read(&styles(), "１と３と４です");
        assert!(r.numeric);
        assert_eq!(r.picks, vec![0, 2, 3]);
        let r = read(&styles(), "2と9");
        assert_eq!(r.picks, vec![1]);
        assert_eq!(r.bad_numbers, vec!["9"]);
    }

    #[test]
    fn an_unknown_listed_word_is_kept_apart() {
        let r = read(&styles(), "プロボノ、副業、インターン");
        assert_eq!(r.picks, vec![2, 1]);
        assert_eq!(r.unknown, vec!["インターン"]);
        let r = read(&styles(), "副業とインターン");
        assert_eq!(r.unknown, vec!["インターン"]);
    }

    #[test]
    fn none_in_the_owners_words() {
        for none in [
            "なし",
            "特になし",
            "ないです",
            "個人事業なのでなし",
            "わからない",
            "不明です",
            "no",
            "None",
            "N/A",
            "I don't know",
        ] {
            assert!(says_none(none), "{none}");
        }
        for some in [
            "090-1234-5678",
            "1000万円",
            "なし 03-1234-5678",
            "nothing like 10 million yen and more than that",
            "ナシ農園",
            "Nora",
        ] {
            assert!(!says_none(some), "{some}");
        }
    }

    #[test]
    fn a_negated_option_is_not_picked() {
        let r = read(&styles(), "採用ではなく育成で");
        assert_eq!(r.picks, vec![3]);
        assert_eq!(r.negated, vec![0]);
        let r = read(&styles(), "副業以外");
        assert!(r.picks.is_empty());
        let r = read(&styles(), "正社員は難しいので副業で");
        assert_eq!(r.picks, vec![1]);
        let en = opts(&[("a", "Side job", &[]), ("b", "Pro bono", &[])]);
        let r = read(&en, "pro bono rather than a side job");
        assert_eq!(r.picks, vec![1]);
    }

    #[test]
    fn a_word_in_two_labels_is_ambiguous() {
        let o = opts(&[
            ("hiring", "人材確保・採用", &[]),
            ("development", "人材育成・組織", &[]),
            ("sales", "売上・販路拡大", &[]),
        ]);
        let r = read(&o, "人材");
        assert!(r.picks.is_empty());
        assert_eq!(r.ambiguous, vec![("人材".to_string(), vec![0, 1])]);
    }

    #[test]
    fn english_keys_match_whole_words_only() {
        let o = opts(&[("it", "IT", &[]), ("sales", "Sales", &[])]);
        let r = read(&o, "digital transformation is what we lack");
        assert!(!r.picks.contains(&0), "{r:?}");
    }
}
