//! Text normalisation shared by every parser in the domain module.
//!
//! Owners type on phones with Japanese IMEs, so the same answer can arrive as
//! full-width digits, half-width katakana, or with invisible characters pasted
//! from other apps. We keep two views of a string: `normalize_input` (NFKC, for
//! matching and parsing) and `clean_text` (no NFKC, for free text we store).

use serde::{Deserialize, Serialize};
use thiserror::Error;
use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};
use unicode_properties::UnicodeEmoji;

/// Characters that render as nothing but break matching: zero-width
/// characters, bidi controls, fillers and the "tag" characters that can
/// carry text no one sees. The bidi overrides can also be used to make
/// stored text display misleadingly, so we never keep them. The zero-width
/// joiner and the tags are kept only inside an emoji sequence (see
/// [`strip_controls`]); variation selectors are never listed here, because
/// they choose an emoji's look and a kanji's form (異体字, e.g. 葛󠄀) in
/// names.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// True for characters that are pictures rather than letters: the ones an
/// emoji ZWJ sequence joins. ASCII digits, `#` and `*` have the Emoji
/// property too (for keycaps) but are never joined by a ZWJ.
fn is_pictograph(c: char) -> bool {
    !c.is_ascii() && c.is_emoji_char()
}

/// True when the zero-width joiner between `before` (the last character
/// kept) and `after` is part of an emoji ZWJ sequence such as 👨‍👩‍👧 or 🏳️‍🌈:
/// an emoji, possibly followed by a skin tone or a presentation selector,
/// joined to another emoji. Anywhere else a ZWJ only hides text (pass‍word)
/// and is dropped.
fn joins_emoji(before: Option<char>, after: Option<char>) -> bool {
    let before_ok = match before {
        Some(b) => is_pictograph(b) || b == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&b),
        None => false,
    };
    before_ok && after.is_some_and(is_pictograph)
}

/// True when tag character `c` continues an emoji tag sequence (the flags
/// of England, Scotland and Wales: 🏴, a subdivision code of up to six tag
/// letters or digits, and a cancel tag) after `kept`, the text kept so far.
/// Tags anywhere else, or more of them than a subdivision code has, are
/// invisible text and are dropped.
fn continues_emoji_tags(kept: &str, c: char) -> bool {
    let code_char = |t: char| matches!(t, '\u{E0030}'..='\u{E0039}' | '\u{E0061}'..='\u{E007A}');
    if !code_char(c) && c != '\u{E007F}' {
        return false;
    }
    let mut rev = kept.chars().rev();
    let code_len = rev.by_ref().take_while(|t| code_char(*t)).count();
    // The character before the code (consumed by take_while) must be 🏴.
    let flag_before = kept
        .chars()
        .rev()
        .nth(code_len)
        .is_some_and(|f| f == '\u{1F3F4}');
    flag_before
        && if c == '\u{E007F}' {
            code_len > 0
        } else {
            code_len < 6
        }
}

/// Removes invisible and control characters and unifies line endings.
/// Tabs become spaces because a tab inside an answer is almost always a paste
/// artefact, while newlines carry meaning in longer answers.
fn strip_controls(s: &str) -> String {
    // Most input has nothing to strip: copy it whole.
    if !s.chars().any(needs_stripping) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            '\t' => out.push(' '),
            '\u{200D}' if joins_emoji(out.chars().next_back(), chars.peek().copied()) => {
                out.push('\u{200D}')
            }
            '\u{E0020}'..='\u{E007F}' if continues_emoji_tags(&out, c) => out.push(c),
            c if c.is_control() || is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// True for the characters `strip_controls` changes or drops.
fn needs_stripping(c: char) -> bool {
    c != '\n'
        && (matches!(c, '\r' | '\u{2028}' | '\u{2029}' | '\t') || c.is_control() || is_invisible(c))
}

/// Characters that NFKC never changes, whatever surrounds them: ASCII, and
/// the kana, ideographs and punctuation Japanese owners type most. (Each is
/// checked against the Unicode tables by a test.)
fn surely_nfkc(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{7F}'
        | '\u{3001}'..='\u{3002}'
        | '\u{300C}'..='\u{300F}'
        | '\u{3041}'..='\u{3096}'
        | '\u{309D}'..='\u{309E}'
        | '\u{30A1}'..='\u{30FA}'
        | '\u{30FC}'..='\u{30FE}'
        | '\u{4E00}'..='\u{9FFF}')
}

/// True when `s` is surely in NFKC already: [`is_nfkc_quick`]'s "yes",
/// answered without its table look-ups for the common characters.
fn is_nfkc_fast(s: &str) -> bool {
    s.chars().all(surely_nfkc) || is_nfkc_quick(s.chars()) == IsNormalized::Yes
}

/// True when `normalize_input(s)` is just `s.trim()`: nothing to strip, and
/// every character one NFKC leaves alone.
fn already_normal(s: &str) -> bool {
    // Every ASCII character is surely NFKC, and no other surely-NFKC
    // character needs stripping (a test checks both), so each character
    // needs one of the two checks only. This runs over every input at
    // least twice, and owners paste long texts.
    s.chars().all(|c| {
        if c.is_ascii() {
            !needs_stripping(c)
        } else {
            surely_nfkc(c)
        }
    })
}

/// `normalize_input(s).is_empty()`, without building the string in the
/// common case.
pub fn is_blank_input(s: &str) -> bool {
    if already_normal(s) {
        return s.trim().is_empty();
    }
    normalize_input(s).is_empty()
}

/// Normalises user input for matching and parsing: NFKC (full-width ASCII to
/// ASCII, half-width katakana to full-width, U+3000 to a space), invisible and
/// control characters removed, line endings unified, surrounding whitespace
/// trimmed.
pub fn normalize_input(s: &str) -> String {
    if already_normal(s) {
        return s.trim().to_string();
    }
    let stripped = strip_controls(s);
    // Text already in NFKC (most Japanese text, once full-width ASCII is
    // absent) is left as it is: the quick check answers without composing.
    if is_nfkc_fast(&stripped) {
        return stripped.trim().to_string();
    }
    // NFKC can in principle expand characters into sequences we strip, so we
    // run the filter once more on its output; it is cheap and keeps the
    // guarantee unconditional.
    let nfkc: String = stripped.nfkc().collect();
    strip_controls(&nfkc).trim().to_string()
}

/// Like `normalize_input` but without NFKC, so free-text answers keep the
/// owner's characters (full-width digits, ①, ㈱) exactly as typed.
pub fn clean_text(s: &str) -> String {
    if !s.chars().any(needs_stripping) {
        return s.trim().to_string();
    }
    strip_controls(s).trim().to_string()
}

/// Converts katakana to hiragana; other characters pass through unchanged.
/// The long-vowel mark ー has no hiragana form and is kept.
pub fn katakana_to_hiragana(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{30A1}'..='\u{30F6}' | '\u{30FD}'..='\u{30FE}' => {
                char::from_u32(c as u32 - 0x60).unwrap_or(c)
            }
            c => c,
        })
        .collect()
}

/// Folds a string for comparing typed words with labels and commands:
/// normalised, lowercased, katakana as hiragana, whitespace removed.
pub fn fold_for_match(s: &str) -> String {
    let owned;
    let n: &str = if already_normal(s) {
        s.trim()
    } else {
        owned = normalize_input(s);
        &owned
    };
    if n.contains('Σ') {
        // `str::to_lowercase` knows the word-final sigma; keep its answer.
        return katakana_to_hiragana(&n.to_lowercase())
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
    }
    // The same in one pass: lowercase, katakana as hiragana, no whitespace.
    let mut out = String::with_capacity(n.len());
    for c in n.chars() {
        // ASCII, kana, ideographs and Japanese punctuation have no case:
        // no look-up in the case tables for them.
        if c.is_ascii() {
            if !c.is_ascii_whitespace() {
                out.push(c.to_ascii_lowercase());
            }
            continue;
        }
        if surely_nfkc(c) {
            let h = match c {
                '\u{30A1}'..='\u{30F6}' | '\u{30FD}'..='\u{30FE}' => {
                    char::from_u32(c as u32 - 0x60).unwrap_or(c)
                }
                c => c,
            };
            out.push(h);
            continue;
        }
        for l in c.to_lowercase() {
            let h = match l {
                '\u{30A1}'..='\u{30F6}' | '\u{30FD}'..='\u{30FE}' => {
                    char::from_u32(l as u32 - 0x60).unwrap_or(l)
                }
                l => l,
            };
            if !h.is_whitespace() {
                out.push(h);
            }
        }
    }
    out
}

/// Polite endings an owner adds to a command word (「中止します」
/// 「ヘルプお願いします」「スキップで」「データ削除してください」, "help
/// me"), as [`fold_for_match`] folds them, longest first so that
/// 「をお願いします」 goes before 「お願いします」.
static POLITE_ENDINGS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut v: Vec<String> = [
        "をお願いします",
        "をおねがいします",
        "お願いします",
        "おねがいします",
        "お願い",
        "おねがい",
        "をしてください",
        "してください",
        "して下さい",
        "ください",
        "下さい",
        "してほしいです",
        "してほしい",
        "したいです",
        "したい",
        "します",
        "して",
        "です",
        "で",
        "please",
        "me",
    ]
    .iter()
    .map(|w| fold_for_match(w))
    .collect();
    v.sort_by_key(|w| std::cmp::Reverse(w.len()));
    v
});

/// What is left of a folded message (see [`fold_for_match`]) without the
/// punctuation at its end and one polite ending, if either was there: the
/// command word an owner meant by 「ヘルプ。」「中止します」「スキップで
/// お願いします」 (up to three endings). `None` when there was nothing to take away, so callers
/// compare the exact words first and this only as a second try.
pub fn without_polite_ending(folded: &str) -> Option<&str> {
    // Folding has made 「！？．～」 ASCII already.
    const END: &[char] = &['。', '.', '!', '?', '、', ',', '~', '〜', 'ー', '…', '・'];
    let bare = folded.trim_end_matches(END);
    let bare = ["please", "pls"]
        .iter()
        .find_map(|p| bare.strip_prefix(p))
        .unwrap_or(bare);
    // Endings pile up (「スキップで」+「お願いします」): take up to three.
    let mut shorter = bare;
    for _ in 0..3 {
        match POLITE_ENDINGS
            .iter()
            .find_map(|e| shorter.strip_suffix(e.as_str()).filter(|w| !w.is_empty()))
        {
            Some(w) => shorter = w,
            None => break,
        }
    }
    (shorter.len() < folded.len() && !shorter.is_empty()).then_some(shorter)
}

/// Like [`fold_for_match`] but keeps word boundaries: runs of whitespace
/// become one space. Used to find an option's words inside a sentence,
/// where an English word must not match inside another ("art" in "start").
pub fn fold_keep_spaces(s: &str) -> String {
    let n = normalize_input(s).to_lowercase();
    let h = katakana_to_hiragana(&n);
    h.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Shortens user input before it is echoed back inside an error message, so
/// a pasted essay does not turn into an essay-length error.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 30;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// Errors from `FreeText::parse`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("the answer is empty: please type a few words")]
    Empty,
    #[error("the answer is too short ({got} characters): please write at least {min} characters")]
    TooShort { min: usize, got: usize },
    #[error(
        "the answer is too long ({got} characters): please shorten it to {max} characters or fewer"
    )]
    TooLong { max: usize, got: usize },
}

/// A free-text answer, cleaned of invisible characters but otherwise kept as
/// the owner typed it. Length limits are counted in characters, because a
/// byte count would punish Japanese text three times over.
///
/// Deserialisation does not re-check the limits (they belong to the question,
/// not the value), so only store values that came through `parse`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FreeText(String);

impl FreeText {
    pub fn parse(s: &str, min_chars: usize, max_chars: usize) -> Result<FreeText, TextError> {
        let cleaned = clean_text(s);
        let got = cleaned.chars().count();
        if got == 0 {
            return Err(TextError::Empty);
        }
        if got < min_chars {
            return Err(TextError::TooShort {
                min: min_chars,
                got,
            });
        }
        if got > max_chars {
            return Err(TextError::TooLong {
                max: max_chars,
                got,
            });
        }
        Ok(FreeText(cleaned))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for FreeText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FreeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_word_is_found_under_punctuation_and_polite_endings() {
        let w = |s: &str| without_polite_ending(&fold_for_match(s)).map(str::to_string);
        assert_eq!(w("ヘルプ。").as_deref(), Some("へるぷ"));
        assert_eq!(w("中止します").as_deref(), Some("中止"));
        assert_eq!(w("スキップでお願いします").as_deref(), Some("すきっぷ"));
        assert_eq!(w("ヘルプお願いします").as_deref(), Some("へるぷ"));
        assert_eq!(w("データ削除してください！").as_deref(), Some("でーた削除"));
        assert_eq!(w("Help me").as_deref(), Some("help"));
        assert_eq!(w("please help").as_deref(), Some("help"));
        // Nothing to take away, or nothing left: the caller's exact match
        // decides alone.
        assert_eq!(w("ヘルプ"), None);
        assert_eq!(w("です"), None);
    }

    /// What `already_normal` relies on to check each character once.
    #[test]
    fn surely_nfkc_characters_need_no_stripping_and_ascii_is_surely_nfkc() {
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            if c.is_ascii() {
                assert!(surely_nfkc(c), "{c:?}");
            } else if surely_nfkc(c) {
                assert!(!needs_stripping(c), "{c:?}");
            }
        }
    }

    /// Emoji written with zero-width joiners, skin tones, presentation
    /// selectors and tag sequences survive both views of a string.
    #[test]
    fn keeps_emoji_sequences_whole() {
        for e in [
            "👨\u{200D}👩\u{200D}👧",
            "🏳\u{FE0F}\u{200D}🌈",
            "👩🏽\u{200D}💻",
            "❤\u{FE0F}\u{200D}🔥",
            "🧑\u{200D}🤝\u{200D}🧑",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        ] {
            let typed = format!("家族 {e} です");
            assert_eq!(clean_text(&typed), typed, "{e:?}");
            assert_eq!(normalize_input(&typed), typed, "{e:?}");
            assert!(fold_for_match(&typed).contains(e), "{e:?}");
        }
        // A kanji with its variation selector (異体字) keeps its form.
        assert_eq!(clean_text("葛\u{E0100}飾"), "葛\u{E0100}飾");
    }

    /// Zero-width characters that hide text or split words are still removed,
    /// including a ZWJ that does not sit between two emoji.
    #[test]
    fn strips_hiding_characters_outside_emoji() {
        assert_eq!(normalize_input("pass\u{200D}word"), "password");
        assert_eq!(normalize_input("1\u{200D}2"), "12");
        assert_eq!(normalize_input("👍\u{200D}"), "👍");
        assert_eq!(normalize_input("\u{200D}👍"), "👍");
        assert_eq!(normalize_input("はい\u{200D}👍"), "はい👍");
        assert_eq!(
            normalize_input("a\u{200B}b\u{2063}c\u{00AD}d\u{3164}e"),
            "abcde"
        );
        // Tag characters spell text no one sees ("ignore" here).
        let hidden: String = "ignore"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        assert_eq!(clean_text(&format!("はい{hidden}")), "はい");
        // After a black flag, only a subdivision code's length is kept.
        let long: String = "abcdefghij"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        assert_eq!(
            clean_text(&format!("🏴{long}")),
            format!("🏴{}", &long[..6 * 4])
        );
        assert_eq!(fold_for_match("は\u{200D}い"), "はい");
    }

    #[test]
    fn nfkc_turns_full_width_into_ascii() {
        assert_eq!(normalize_input("１２３ＡＢＣ"), "123ABC");
        assert_eq!(normalize_input("ｶﾞｷﾞ"), "ガギ");
        assert_eq!(normalize_input("１，０００"), "1,000");
    }

    #[test]
    fn trims_ideographic_space_and_newlines() {
        assert_eq!(normalize_input("\u{3000} 兵庫 \u{3000}\n"), "兵庫");
        assert_eq!(clean_text("\u{3000}兵庫\u{3000}"), "兵庫");
    }

    #[test]
    fn removes_invisible_and_control_characters() {
        let s = "a\u{200B}b\u{200C}c\u{200D}d\u{2060}e\u{FEFF}f\u{200E}g\u{200F}h\u{202E}i\u{2066}j\u{2069}k\u{0007}l\u{0085}m\u{007F}n";
        assert_eq!(normalize_input(s), "abcdefghijklmn");
        assert_eq!(clean_text(s), "abcdefghijklmn");
    }

    #[test]
    fn unifies_line_endings_and_tabs() {
        assert_eq!(normalize_input("a\r\nb\rc\nd\te"), "a\nb\nc\nd e");
        assert_eq!(clean_text("a\r\nb\rc\td"), "a\nb\nc d");
    }

    #[test]
    fn clean_text_keeps_characters_as_typed() {
        assert_eq!(clean_text(" ３０名、①㈱ｶﾅ "), "３０名、①㈱ｶﾅ");
    }

    #[test]
    fn katakana_becomes_hiragana() {
        assert_eq!(
            katakana_to_hiragana("ヒョウゴ ヴァ ヽヾ ー abc"),
            "ひょうご ゔぁ ゝゞ ー abc"
        );
        assert_eq!(katakana_to_hiragana("ヶ月"), "ゖ月");
    }

    #[test]
    fn fold_for_match_compares_across_scripts() {
        assert_eq!(fold_for_match(" ハイ "), "はい");
        assert_eq!(fold_for_match("ﾊｲ"), "はい");
        assert_eq!(fold_for_match("Ｙｅｓ  Please"), "yesplease");
        assert_eq!(fold_for_match("\u{200B}はい\u{3000}"), "はい");
    }

    #[test]
    fn free_text_counts_characters_not_bytes() {
        let t = FreeText::parse(" 売上が伸びない ", 3, 7).unwrap();
        assert_eq!(t.as_str(), "売上が伸びない");
        assert_eq!(t.clone().into_inner(), "売上が伸びない");
        assert_eq!(
            FreeText::parse("あ", 2, 10),
            Err(TextError::TooShort { min: 2, got: 1 })
        );
        assert_eq!(
            FreeText::parse("あいうえお", 1, 4),
            Err(TextError::TooLong { max: 4, got: 5 })
        );
        assert_eq!(
            FreeText::parse(" \u{200B}\u{3000}", 0, 4),
            Err(TextError::Empty)
        );
    }

    #[test]
    fn free_text_serialises_as_plain_string() {
        let t = FreeText::parse("資金繰り", 1, 100).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"資金繰り\"");
        assert_eq!(serde_json::from_str::<FreeText>(&json).unwrap(), t);
    }

    #[test]
    fn error_messages_say_what_to_do() {
        assert_eq!(
            TextError::TooShort { min: 5, got: 2 }.to_string(),
            "the answer is too short (2 characters): please write at least 5 characters"
        );
    }

    #[test]
    fn excerpt_shortens_long_input() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "あ".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 31);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for s in crate::domain::tests_support::hostile_inputs() {
            let _ = normalize_input(&s);
            let _ = clean_text(&s);
            let _ = fold_for_match(&s);
            let _ = katakana_to_hiragana(&s);
            let _ = FreeText::parse(&s, 0, 20_000);
            let _ = excerpt(&s);
        }
    }

    /// The fast paths (nothing to strip, already NFKC, one-pass folding)
    /// give exactly what the plain definitions give.
    #[test]
    fn fast_paths_match_the_definitions() {
        fn normalize_ref(s: &str) -> String {
            let nfkc: String = strip_controls(s).nfkc().collect();
            strip_controls(&nfkc).trim().to_string()
        }
        fn fold_ref(s: &str) -> String {
            katakana_to_hiragana(&normalize_ref(s).to_lowercase())
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect()
        }
        let samples = [
            "",
            " ",
            "はい",
            "ハイ",
            "ﾊｲ",
            "１２３ＡＢＣ",
            "ＯＫ",
            "Ok Google",
            "戻る\u{200B}",
            "a\r\nb\tc",
            "ΣΑΣ ΟΔΟΣ",
            "Straße",
            "İstanbul",
            "㍿ ㌔",
            "①②",
            "　全角　スペース　",
            "ガ",
            "か\u{3099}",
            "株式会社ひょうご精機",
            "ｙａｍａｍｏｔｏ＠Ｈｙｏｇｏ－Ｓｅｉｋｉ．ｃｏ．ｊｐ",
            "\u{202E}abc",
            "x\u{2028}y",
            "ヴァ ヵヶ ヽヾ ー",
            "ＤＸ推進",
            "e\u{301}",
            "\u{0}\u{1F}",
            "MY ANSWERS",
            "ＳＫＩＰ",
        ];
        for s in samples {
            assert_eq!(
                normalize_input(s),
                normalize_ref(s),
                "normalize_input({s:?})"
            );
            assert_eq!(fold_for_match(s), fold_ref(s), "fold_for_match({s:?})");
            assert_eq!(
                is_blank_input(s),
                normalize_ref(s).is_empty(),
                "is_blank_input({s:?})"
            );
            assert_eq!(clean_text(s), strip_controls(s).trim(), "clean_text({s:?})");
        }
        // The characters taken as NFKC without a look-up are.
        for cp in 0u32..0x11_0000 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if surely_nfkc(c) {
                assert_eq!(
                    is_nfkc_quick(std::iter::once(c)),
                    IsNormalized::Yes,
                    "U+{cp:04X}"
                );
                assert_eq!(
                    unicode_normalization::char::canonical_combining_class(c),
                    0,
                    "U+{cp:04X}"
                );
                if !c.is_ascii() {
                    assert!(
                        c.to_lowercase().eq(std::iter::once(c)) && !c.is_whitespace(),
                        "U+{cp:04X}"
                    );
                }
            }
        }
        // Every BMP character once, alone and between letters.
        for cp in 0u32..0x1_0000 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let alone = c.to_string();
            let framed = format!("aＢ{c}カ Σ");
            for s in [alone.as_str(), framed.as_str()] {
                assert_eq!(
                    normalize_input(s),
                    normalize_ref(s),
                    "normalize_input(U+{cp:04X})"
                );
                assert_eq!(fold_for_match(s), fold_ref(s), "fold_for_match(U+{cp:04X})");
                assert_eq!(
                    is_blank_input(s),
                    normalize_ref(s).is_empty(),
                    "is_blank_input(U+{cp:04X})"
                );
                assert_eq!(
                    clean_text(s),
                    strip_controls(s).trim(),
                    "clean_text(U+{cp:04X})"
                );
            }
        }
    }
}
