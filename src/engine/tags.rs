//! Keyword tags on free-text answers. Each tag's lexicon is the `pattern`
//! of a `tags:` entry in the script (a curated list of the guide's words, so
//! it is versioned and pinned with the script a session started on). A
//! word the owner denies in the same breath (「採用は考えていない」,
//! 「資金には困っていない」, "not hiring") does not tag the case.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::text::normalize_input;

/// After a lexicon word: the owner says it is not their concern. Only
/// words of denial count, never a plain negative: 「定着しない」,
/// 「後継者がいない」 and "no successor" are the problem itself.
static DENIED_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:者|人|型|活動|面|関係|の方|のほう|の件|のこと|問題)?(?:(?:では|じゃ)なく|(?:は|に|には|で|が|も|について|については|とか)?(?:以外|不要|いらない|要らない|考えていない|考えてない|考えておらず|考えていません|困っていない|困ってない|困っていません|問題ない|問題ありません|問題なし|大丈夫|足りている|足りています|足りてる|十分|決まっている|決まっています|決まってる|順調|心配ない|心配していない))",
    )
    .expect("valid regex")
});

/// Before a lexicon word: an English denial ("no need for hiring").
static DENIED_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:\bno need for|\bdon't need|\bdo not need|\bno problem with|\bno issue with|\bnot interested in|\bnot looking for|\bnot planning|\bnot considering|\brather than)\s+(?:\S+\s+)?$")
        .expect("valid regex")
});

/// Whether `text` carries a word of the lexicon `pattern` that the owner
/// did not deny.
pub fn tag_matches(pattern: &Regex, text: &str) -> bool {
    // Full-width letters (ＤＸ, Ｍ＆Ａ) read like their ASCII forms.
    tag_matches_normalized(pattern, &normalize_input(text))
}

/// [`tag_matches`] on text already passed through [`normalize_input`]:
/// a script has several tag rules reading the same answers, and
/// normalising each answer once for all of them is most of the saving.
pub fn tag_matches_normalized(pattern: &Regex, n: &str) -> bool {
    pattern.find_iter(n).any(|m| {
        let after = n[m.end()..].trim_start();
        let before = &n[..m.start()];
        !DENIED_AFTER.is_match(after) && !DENIED_BEFORE.is_match(before)
    })
}

/// Compiles the tag patterns now (see [`super::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&DENIED_AFTER);
    LazyLock::force(&DENIED_BEFORE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_word_does_not_tag() {
        let hiring = Regex::new("採用|人手|(?i:hiring)").unwrap();
        assert!(tag_matches(&hiring, "採用がうまくいかない"));
        assert!(!tag_matches(&hiring, "採用は考えていない"));
        assert!(!tag_matches(&hiring, "人手は足りています"));
        assert!(tag_matches(&hiring, "人手は足りているが、採用が課題"));
        assert!(!tag_matches(&hiring, "no need for hiring"));
        // A plain negative is the problem itself, not a denial.
        let succession = Regex::new("後継|定着|(?i:successor)").unwrap();
        assert!(tag_matches(&succession, "後継者がいない"));
        assert!(tag_matches(&succession, "若手が定着しない"));
        assert!(tag_matches(&succession, "I have no successor"));
        assert!(!tag_matches(&succession, "後継者は決まっている"));
        assert!(tag_matches(&hiring, "Hiring is hard"));
    }

    #[test]
    fn full_width_letters_match() {
        let it = Regex::new("DX|M&A").unwrap();
        assert!(tag_matches(&it, "ＤＸを進めたい"));
        assert!(tag_matches(&it, "Ｍ＆Ａも検討"));
    }
}
