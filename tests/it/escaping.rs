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

#[test]
fn chat_and_my_data_show_control_characters_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let hostile = "株式会社\u{1b}[2J\u{1b}]0;x\u{7}テスト\u{202E}gpj.exe\u{9b}31m";
    let input = include_str!("chat_input.txt").replacen("株式会社ひょうご精機", hostile, 1);
    let mut child = bin()
        .arg("chat")
        .arg("--db")
        .arg(&db)
        .arg("--dialogs")
        .arg(dialogs_dir())
        .arg("--inbox")
        .arg(dir.path().join("inbox"))
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
