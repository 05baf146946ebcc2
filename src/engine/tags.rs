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
        r"^(?:者|人|型|活動|面|関係|の方|のほう|の件|のこと|問題|繰り|不足)?(?:(?:では|じゃ)(?:なく|ない|ありません)|を(?:必要としていない|したくない|しない予定|するつもりはない|するつもりはありません|使わず|使わない|考えていない|考えてない|考えておらず|考えていません)|の?(?:予定|つもり|必要)(?:は|が|も)?(?:ない|無い|ありません|なし)|(?:者|人|手)?(?:は|が|も)(?:いる|います|おります)(?:ので|から|し|。|、|$)|(?:は|に|には|で|が|も|について|については|とか)?(?:予定していない|予定してない|予定していません|しない方針|しない予定|感じていない|感じてない|感じていません|以外|不要|いらない|要らない|必要ない|必要ありません|必要なし|必要としていない|したくない|しません|しない予定|するつもりはない|するつもりはありません|頼らず|頼らない|頼りたくない|使わず|使わない|考えていない|考えてない|考えておらず|考えていません|困っていない|困ってない|困っていません|問題ない|問題ありません|問題なし|大丈夫|足りている|足りています|足りてる|十分|決まっている|決まっています|決まってる|順調|心配ない|心配していない))",
    )
    .expect("valid regex")
});

/// Before a lexicon word: an English denial ("no need for hiring").
static DENIED_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:(?:\bno need for|\bdon't need|\bdo not need|\bno problem with|\bno issue with|\bnot interested in|\bnot looking for|\bnot planning|\bnot considering|\brather than)\s+(?:\S+\s+)?|(?:\bare|\bam|\bis|'re|'m)\s+not\s+(?:currently\s+)?|\b(?:aren't|isn't)\s+(?:currently\s+)?)$")
        .expect("valid regex")
});

/// After a word ending in the stem of 辞める ("quit") or naming people who
/// left: nobody quits (「人は辞めない会社です」「スタッフは辞めないが」
/// 「退職者はいない」), the opposite of a retention problem. A plain negative after any other word is the problem
/// itself (「定着しない」), so this is asked only after that stem.
static DO_NOT_QUIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:ない|ません|ず(?:に|、|$))|^(?:者|する人|した人)?(?:は|が|も)?(?:いない|いません|出ていない|出てない|ほとんどない|ほぼない)")
        .expect("valid regex")
});

/// Words of people leaving: 「辞め」 and 「やめ」 (the stem), 「退職」 and
/// 「離職」 (a noun: 「退職者はいない」 says no one has left).
fn ends_in_quitting(word: &str) -> bool {
    ["辞め", "やめ", "退職", "離職"]
        .iter()
        .any(|w| word.ends_with(w))
}

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
        let nobody_quits = ends_in_quitting(m.as_str()) && DO_NOT_QUIT.is_match(after);
        !(DENIED_AFTER.is_match(after) || DENIED_BEFORE.is_match(before) || nobody_quits)
    })
}

/// Compiles the tag patterns now (see [`super::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&DENIED_AFTER);
    LazyLock::force(&DENIED_BEFORE);
    LazyLock::force(&DO_NOT_QUIT);
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

    /// Denials as owners word them (found by playing owners through the
    /// consultation): each of these sent a case to the bank for a funding
    /// issue the owner had just ruled out.
    #[test]
    fn denials_in_owners_words_do_not_tag() {
        let funding = Regex::new("補助金|融資|資金|借入").unwrap();
        for denied in [
            "融資は必要ない。ネットで売りたい",
            "借入はしたくない。販路がほしい",
            "資金繰りは問題ない。販路がほしい",
            "補助金には頼らず販路を広げたい",
            "融資は必要ありません",
            "補助金は使わない方針",
        ] {
            assert!(!tag_matches(&funding, denied), "{denied}");
        }
        for meant in [
            "資金繰りが苦しい",
            "融資が必要",
            "補助金を使いたい",
            "借入の返済が重い",
        ] {
            assert!(tag_matches(&funding, meant), "{meant}");
        }
        let hiring = Regex::new("採用|人手|(?i:hiring)").unwrap();
        assert!(!tag_matches(&hiring, "人手不足ではないが、売上が伸びない"));
        assert!(tag_matches(&hiring, "人手不足で困っている"));
        assert!(!tag_matches(
            &hiring,
            "We are not hiring; we want a website"
        ));
        assert!(tag_matches(&hiring, "We are hiring but nobody applies"));
        assert!(!tag_matches(&hiring, "We're not hiring this year"));
        // Not being able to is the problem itself.
        let hire = Regex::new("(?i:hire|hiring)").unwrap();
        assert!(tag_matches(&hire, "we could not hire anyone"));
        assert!(!tag_matches(&hiring, "採用を考えていない"));
        assert!(tag_matches(&hiring, "採用を十分にできていない"));
    }

    #[test]
    fn full_width_letters_match() {
        let it = Regex::new("DX|M&A").unwrap();
        assert!(tag_matches(&it, "ＤＸを進めたい"));
        assert!(tag_matches(&it, "Ｍ＆Ａも検討"));
    }
}
