//! Owner text on the terminal: what the chat echoes and shows, and what
//! `my-data` prints, carries no control character, ESC or bidi override
//! raw, and `my-data` stays valid JSON with the stored values exact.

use crate::support::dialogs_dir;
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_madoguchi"))
}

/// Characters a terminal acts on or that reorder the text after them.
fn hazards(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
        })
        .collect()
}

/// Runs a whole consultation in `dir` (database `t.db`, inbox `inbox/`)
/// with piped answers; returns what the chat printed.
fn chat(dir: &std::path::Path, input: &str) -> String {
    let mut child = bin()
        .arg("chat")
        .arg("--db")
        .arg(dir.join("t.db"))
        .arg("--dialogs")
        .arg(dialogs_dir())
        .arg("--inbox")
        .arg(dir.join("inbox"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn chat_and_my_data_show_control_characters_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let hostile = "株式会社\u{1b}[2J\u{1b}]0;x\u{7}テスト\u{202E}gpj.exe\u{9b}31m";
    let input = include_str!("chat_input.txt").replacen("株式会社ひょうご精機", hostile, 1);
    let text = chat(dir.path(), &input);
    assert!(text.contains("テスト"), "{text}");
    assert_eq!(hazards(&text), Vec::<char>::new(), "{text}");

    let out = bin()
        .args(["my-data", "--user", "terminal:local", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let json = String::from_utf8(out.stdout).unwrap();
    assert_eq!(hazards(&json), Vec::<char>::new(), "{json}");
    // Still JSON, and what it says is what is stored.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["sessions"][0]["answers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["raw"].as_str().unwrap_or("").contains("テスト")));

    let list = bin()
        .args(["cases", "show", "C-000001", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(hazards(&list), Vec::<char>::new(), "{list}");
}

/// Owner text cannot pass for the sheet's own lines or ping anyone in the
/// inbox file staff receive: a company name holding line separators
/// (U+2028 reads as a line break at the input edge, as a Discord or Slack
/// message's newline does) stays inside its field, each of its later lines
/// indented, and `@everyone` after Japanese punctuation is defused like one
/// after a space.
#[test]
fn owner_line_breaks_and_mentions_cannot_forge_or_ping_on_the_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let forged = "偽装テスト\u{2028}■ 連絡先\u{2029}メール：evil@example.com";
    let input = include_str!("chat_input.txt")
        .replacen("株式会社ひょうご精機", forged, 1)
        .replacen("山本 健一", "「@everyone」山本", 1)
        .replacen(
            "ハローワークで営業職を募集したが、応募がなかった。",
            "募集した：@here",
            1,
        );
    let text = chat(dir.path(), &input);
    let files: Vec<_> = walk(&dir.path().join("inbox"));
    assert!(!files.is_empty(), "a case was delivered: {text}");
    for (path, sheet) in files
        .iter()
        .map(|p| (p, std::fs::read_to_string(p).unwrap()))
    {
        let at_margin = |l: &str| sheet.lines().filter(|x| x.starts_with(l)).count();
        // The sheet's one contact section, and the forged lines indented
        // under the company name.
        assert_eq!(at_margin("■ 連絡先"), 1, "{path:?}:\n{sheet}");
        assert_eq!(at_margin("メール：evil"), 0, "{path:?}:\n{sheet}");
        assert!(sheet.contains("会社名：偽装テスト"), "{sheet}");
        assert!(sheet.contains("\n\u{3000}■ 連絡先"), "{sheet}");
        assert!(
            sheet.contains("\u{3000}メール：evil@example.com"),
            "{sheet}"
        );
        // No mention survives, wherever it stands; the e-mail address keeps
        // its `@` so staff can copy it.
        for mention in ["@everyone", "@here"] {
            assert!(!sheet.contains(mention), "{mention} in {path:?}:\n{sheet}");
        }
        assert!(
            sheet.contains("&#64;everyone") && sheet.contains("&#64;here"),
            "{sheet}"
        );
    }
    // The terminal's own sheet shows the same structure.
    assert!(
        text.contains("会社名：偽装テスト\n\u{3000}■ 連絡先"),
        "{text}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
    out
}
