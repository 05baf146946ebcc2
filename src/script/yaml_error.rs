//! Turns the YAML reader's errors into diagnostics an administrator can
//! act on: the line that is really wrong, what is wrong in the checker's
//! language (the reader's own wording is English and appears only in the
//! English message), and a hint that fits the kind of mistake.

use super::diag::{Bi, Loc};
use crate::bi;

/// What kind of mistake a YAML reader error is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Tab,
    Quote,
    UnknownField {
        field: String,
        expected: Vec<String>,
    },
    MissingField(String),
    /// A value of the wrong type; the text says what the key takes.
    Type(Bi),
    Other,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let rest = &s[from..];
    Some(&rest[..rest.find(end)?])
}

fn classify(msg: &str) -> Kind {
    let m = msg.to_ascii_lowercase();
    let word = |w: &str| {
        m.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|x| x == w)
    };
    if let Some(field) = between(msg, "unknown field `", "`") {
        let expected = msg
            .split("expected one of ")
            .nth(1)
            .map(|l| l.split(", ").map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        Kind::UnknownField {
            field: field.to_string(),
            expected,
        }
    } else if let Some(field) = between(msg, "missing field `", "`") {
        Kind::MissingField(field.to_string())
    } else if word("tab") || word("tabs") {
        Kind::Tab
    } else if m.contains("quoted scalar") || word("quote") {
        Kind::Quote
    } else if m.contains("boolean") || m.contains("expected a bool") {
        Kind::Type(bi!("`true` or `false`", "`true` か `false`"))
    } else if m.contains("sequence") {
        Kind::Type(bi!(
            "a list: `[a, b]`, or one `- item` per line",
            "リスト（`[a, b]` か、1 行ずつ `- 項目`）"
        ))
    } else if m.contains("mapping") || m.contains("expected a map") || m.contains("struct") {
        Kind::Type(bi!(
            "keys with values (`key: value` on lines indented below it)",
            "キーと値（その下に字下げした `キー: 値` の行）"
        ))
    } else if m.contains("u8")
        || m.contains("u16")
        || m.contains("u32")
        || m.contains("u64")
        || m.contains("integer")
    {
        Kind::Type(bi!("a whole number such as 2", "2 のような整数"))
    } else if m.contains("floating point") || m.contains("f64") || m.contains("number") {
        Kind::Type(bi!("a number such as 20", "20 のような数値"))
    } else if m.contains("string") {
        Kind::Type(bi!(
            "text (put it in quotes if it starts with `[`, `{`, `*` or contains `: `)",
            "文字（`[`・`{`・`*` で始まる場合や `: ` を含む場合は引用符で囲む）"
        ))
    } else {
        Kind::Other
    }
}

/// The first tab at or after the reported place: the reader reports a tab
/// at the end of what it read before it, often the line above.
fn find_tab(src: &str, at: Loc) -> Option<Loc> {
    let first = (at.line as usize).saturating_sub(1);
    for (i, line) in src.lines().enumerate().skip(first).take(3) {
        if let Some(c) = line.chars().position(|c| c == '\t') {
            return Some(Loc::new(i as u64 + 1, c as u64 + 1));
        }
    }
    None
}

/// The opening quote of a quoted value that is not closed on its line, at
/// or before the reported place: the reader reports an unclosed quote
/// where it gave up, on a later line.
fn find_open_quote(src: &str, at: Loc) -> Option<Loc> {
    let lines: Vec<&str> = src.lines().collect();
    let last = (at.line as usize).min(lines.len());
    for i in (last.saturating_sub(40)..last).rev() {
        let line = lines[i];
        let chars: Vec<char> = line.chars().collect();
        // Where a value starts: after `key: ` or `- `.
        let starts: Vec<usize> = (0..chars.len())
            .filter(|&k| {
                (chars[k] == '"' || chars[k] == '\'')
                    && k >= 2
                    && chars[k - 1] == ' '
                    && (chars[k - 2] == ':' || chars[k - 2] == '-')
            })
            .collect();
        for k in starts {
            let q = chars[k];
            let rest = &chars[k + 1..];
            let closed = if q == '"' {
                let mut esc = false;
                rest.iter().any(|&c| {
                    let end = c == '"' && !esc;
                    esc = c == '\\' && !esc;
                    end
                })
            } else {
                // `''` is an escaped quote inside single quotes.
                let s: String = rest.iter().collect();
                s.replace("''", "").contains('\'')
            };
            if !closed {
                return Some(Loc::new(i as u64 + 1, k as u64 + 1));
            }
        }
    }
    None
}

/// The diagnostic for a YAML reader error `msg` reported at `at` in `src`:
/// where, the message and the hint, each in English and Japanese.
pub fn explain(msg: &str, at: Loc, src: &str) -> (Loc, Bi, Bi) {
    match classify(msg) {
        Kind::Tab => (
            find_tab(src, at).unwrap_or(at),
            bi!(
                "a tab is used for indentation",
                "インデントにタブが使われています"
            ),
            bi!(
                "indent with spaces only (YAML does not allow tabs)",
                "インデントは空白だけで付けてください（YAML ではタブは使えません）"
            ),
        ),
        Kind::Quote => (
            find_open_quote(src, at).unwrap_or(at),
            bi!(
                "this quote is never closed",
                "この引用符が閉じられていません"
            ),
            bi!(
                "end the text with the same quote it starts with, on the same line",
                "文字列は、始めと同じ引用符で同じ行のうちに閉じてください"
            ),
        ),
        Kind::UnknownField { field, expected } => {
            let dym = super::diag::closest(&field, expected.iter().map(String::as_str));
            (
                at,
                (
                    format!("`{field}` is not a key here"),
                    format!("`{field}` はここで使えるキーではありません"),
                ),
                (
                    format!(
                        "{}keys allowed here: {}",
                        dym.map(|c| format!("did you mean `{c}`? "))
                            .unwrap_or_default(),
                        expected.join(", ")
                    ),
                    format!(
                        "{}ここで使えるキー: {}",
                        dym.map(|c| format!("`{c}` のことですか？"))
                            .unwrap_or_default(),
                        expected.join(", ")
                    ),
                ),
            )
        }
        Kind::MissingField(field) => (
            at,
            (
                format!("the key `{field}` is missing"),
                format!("キー `{field}` がありません"),
            ),
            (
                format!("add `{field}:`; see dialogs/README.md for what it takes"),
                format!("`{field}:` を追加してください。書き方は dialogs/README.md にあります"),
            ),
        ),
        Kind::Type((en, ja)) => (
            at,
            (
                format!("this value has the wrong type ({msg})"),
                "この値の型が違います".to_string(),
            ),
            (
                format!("this key takes {en}"),
                format!("このキーに書けるのは {ja} です"),
            ),
        ),
        Kind::Other => (
            at,
            (
                format!("the file cannot be read: {msg}"),
                "ファイルを YAML として読み取れません".to_string(),
            ),
            bi!(
                "check the colon after each key, the indentation of this line and the one before it, and quotes around text with `: ` or ` #`",
                "この行と前の行のインデント、キーの後のコロン、「: 」や「 #」を含む文字の引用符を確認してください"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tab_is_found_on_its_own_line() {
        let src = "a: 1\nb:\n  - x\n\tc: 2\n";
        // A list of keys that contains "editable" is not about a tab.
        assert!(matches!(
            classify("unknown field `txt`, expected one of id, editable"),
            Kind::UnknownField { .. }
        ));
        let (loc, msg, _) = explain(
            "while scanning a plain scalar, found a tab",
            Loc::new(3, 5),
            src,
        );
        assert_eq!(loc, Loc::new(4, 1));
        assert!(msg.1.contains("タブ"));
    }

    #[test]
    fn an_unclosed_quote_is_found_where_it_opens() {
        let src = "script: x\ntitle: \"abc\nstart: a\n";
        let (loc, _, _) = explain(
            "invalid indentation in multiline quoted scalar",
            Loc::new(3, 1),
            src,
        );
        assert_eq!(loc, Loc::new(2, 8));
        let src = "a: 'it''s'\nb: - 'x\nc: 1\n";
        let (loc, _, _) = explain("quoted scalar", Loc::new(3, 1), src);
        assert_eq!(loc, Loc::new(2, 6));
    }

    #[test]
    fn a_wrong_type_gets_a_type_hint_and_japanese_has_no_english() {
        let (_, msg, hint) = explain("invalid boolean", Loc::new(1, 1), "");
        assert!(hint.0.contains("`true` or `false`"), "{hint:?}");
        assert!(!hint.0.contains("indent"));
        assert!(!msg.1.is_ascii() && !msg.1.contains("boolean"));
        let (_, _, hint) = explain("invalid u8", Loc::new(1, 1), "");
        assert!(hint.1.contains("整数"));
    }
}
