//! Domain types: "parse, don't validate".
//!
//! Every value an owner types passes through one of these parsers exactly
//! once, at the edge. The rest of the crate then handles typed values
//! (`Prefecture`, `MoneyYen`, `DateValue`, …) that cannot be invalid, and the
//! parsers' errors are written to be shown to the owner as they are: what was
//! wrong, then what to type instead.

pub mod calendar;
pub mod contact;
pub mod date;
pub mod ids;
pub mod industry;
pub mod municipality;
pub mod number;
pub mod prefecture;
pub mod text;

pub use contact::{Email, EmailError, PhoneError, PhoneJp};
pub use date::{parse_date, DateError, DatePrecision, DateValue};
pub use ids::{
    CaseId, CaseIdError, HubId, HubIdError, SessionId, Transport, UserKey, UserKeyError,
};
pub use municipality::{Municipality, Place, PlaceError};
pub use number::{parse_quantity, EmployeeCount, MoneyYen, NumberError, Quantity};
pub use prefecture::{Prefecture, PrefectureError, Region, RegionError};
pub use text::{
    clean_text, fold_for_match, katakana_to_hiragana, normalize_input, FreeText, TextError,
};

/// Builds now the tables and patterns that the parsers otherwise build on
/// their first use. That first use took about 45 ms in all, paid by the
/// first owners after a start (and, as the tables are built under a lock,
/// by every owner whose turn needed one meanwhile). The runner calls this
/// (through [`crate::engine::warm_up`]) before it takes its first turn.
pub fn warm_up() {
    calendar::warm_up();
    contact::warm_up();
    date::warm_up();
    industry::warm_up();
    municipality::warm_up();
    prefecture::warm_up();
    crate::routing::areas::directory();
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// Inputs that have broken parsers elsewhere: empty and blank strings,
    /// very long strings, control and invisible characters, emoji (including
    /// ZWJ sequences), bidi overrides, lone combining marks, and strings made
    /// only of the separators our parsers look for.
    pub(crate) fn hostile_inputs() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            " ",
            "\u{3000}",
            "\n\r\t",
            "\0",
            "\u{0007}\u{001B}[31m\u{009B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            "\u{202E}54321\u{202C}",
            "\u{202E}兵庫県\u{202C}",
            "\u{2066}090-1234-5678\u{2069}",
            "👨‍👩‍👧‍👦",
            "🎌30名🎌",
            "\u{0301}\u{0301}",
            "ﷺ",
            "ﾞﾟ",
            "-",
            "~",
            "〜〜〜",
            ":",
            "@",
            "@@",
            "+81",
            "..",
            ",,,",
            "万",
            "億兆",
            "年月日",
            "R",
            "令和元年",
            "C-",
            "\u{FFFD}",
            "\u{10FFFF}",
            "𠮷野家",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("a".repeat(10_000));
        v.push("あ".repeat(10_000));
        v.push("9".repeat(10_000));
        v.push("九".repeat(10_000));
        v.push("1,".repeat(5_000));
        v.push("万".repeat(10_000));
        v.push("\u{200B}".repeat(10_000));
        v.push("😀".repeat(10_000));
        v.push(format!("{}@example.jp", "a".repeat(10_000)));
        v.push("〜".repeat(10_000));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reexports_are_usable_together() {
        let p = Prefecture::parse("ひょうご").unwrap();
        let q = parse_quantity("約三十名", Some("名")).unwrap();
        assert_eq!(format!("{p} {q}"), "兵庫県 約30名");
    }
}
