//! Hostile and careless input to the `madoguchi` binary: bytes that are not
//! UTF-8, a Shift_JIS answers file, a second `chat` while a consultation is
//! open, a reader that closes the pipe early, and thousands of lines that
//! change nothing.

use crate::support::dialogs_dir;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_madoguchi"))
}

/// Runs `madoguchi chat` on `dir`'s database with `input` piped in (bytes,
/// not text); returns its exit status, standard output and standard error.
fn chat(dir: &Path, args: &[&str], input: &[u8]) -> (ExitStatus, String, String) {
    let mut child = bin()
        .arg("chat")
        .args(args)
        .arg("--db")
        .arg(dir.join("chat.db"))
        .arg("--dialogs")
        .arg(dialogs_dir())
        .arg("--inbox")
        .arg(dir.join("inbox"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread so a large input cannot dead-lock against the
    // output filling its pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The answers stored for `terminal:local`, as `(node, raw)` pairs of each
/// session, oldest session first, with each session's status.
fn stored(dir: &Path) -> Vec<(String, Vec<(String, String)>)> {
    let out = bin()
        .args(["my-data", "--user", "terminal:local", "--db"])
        .arg(dir.join("chat.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut sessions: Vec<_> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let id: i64 = s["id"].as_str().unwrap().parse().unwrap();
            let answers = s["answers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["node"].as_str().unwrap().to_string(),
                        a["raw"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (id, s["status"].as_str().unwrap().to_string(), answers)
        })
        .collect();
    sessions.sort_by_key(|s| s.0);
    sessions.into_iter().map(|(_, st, a)| (st, a)).collect()
}

/// `printf 'はい\n\xff\n…' | madoguchi chat`: the broken line gets a reply in
/// the script's language, nothing of it is recorded, and the next line
/// answers the same question.
#[test]
fn a_line_that_is_not_utf8_is_refused_and_the_consultation_goes_on() {
    for (lang, yes, reply, other_lang) in [
        ("ja", "はい", "読み取れませんでした", "could not be read"),
        ("en", "yes", "could not be read", "読み取れ"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut input = format!("{yes}\n").into_bytes();
        input.extend_from_slice(b"\xff\xfe broken \x80\n");
        input.extend_from_slice("株式会社テスト\n".as_bytes());
        let (status, out, err) = chat(dir.path(), &["--lang", lang], &input);
        assert!(status.success(), "{lang}: {err}\n{out}");
        assert!(!err.contains("error"), "{lang}: {err}");
        assert!(out.contains(reply), "{lang}: {out}");
        // One language per message.
        assert!(!out.contains(other_lang), "{lang}: {out}");
        let sessions = stored(dir.path());
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        let answers = &sessions[0].1;
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_eq!(answers[1], ("company_name".into(), "株式会社テスト".into()));
        assert!(
            answers
                .iter()
                .all(|(_, raw)| !raw.contains('\u{FFFD}') && !raw.contains("broken")),
            "{answers:?}"
        );
    }
}

/// A file of answers saved in Shift_JIS: each such line is named as
/// Shift_JIS with the command that converts the file, nothing of it is
/// recorded, and the UTF-8 lines still count.
#[test]
fn a_shift_jis_answers_file_is_named_with_how_to_convert_it() {
    let dir = tempfile::tempdir().unwrap();
    let sjis = |s: &str| encoding_rs::SHIFT_JIS.encode(s).0.into_owned();
    let mut input = sjis("はい\n");
    input.extend(sjis("株式会社ひょうご精機\n"));
    input.extend_from_slice("はい\n株式会社テスト\n".as_bytes());
    let (status, out, err) = chat(dir.path(), &[], &input);
    assert!(status.success(), "{err}\n{out}");
    assert!(out.contains("Shift_JIS"), "{out}");
    assert!(out.contains("iconv -f SHIFT_JIS -t UTF-8"), "{out}");
    let sessions = stored(dir.path());
    let answers = &sessions[0].1;
    assert_eq!(
        answers,
        &vec![
            ("privacy_ok".to_string(), "はい".to_string()),
            ("company_name".to_string(), "株式会社テスト".to_string())
        ]
    );
}

/// `chat` without `--resume` while a consultation is open asks whether to
/// continue or start over; an empty line or the end of input continues,
/// and only an explicit "2" cancels the open consultation.
#[test]
fn chat_asks_before_replacing_an_open_consultation() {
    for lang in ["ja", "en"] {
        let dir = tempfile::tempdir().unwrap();
        let yes = if lang == "ja" { "はい" } else { "yes" };
        let question = if lang == "ja" {
            "前回の相談が途中"
        } else {
            "previous consultation is still open"
        };
        let args = ["--lang", lang];
        let first = chat(
            dir.path(),
            &args,
            format!("{yes}\n株式会社テスト\n").as_bytes(),
        );
        assert!(first.0.success(), "{}", first.2);
        assert!(!first.1.contains(question), "{}", first.1);

        // The end of input right away: the consultation stays as it was.
        let (status, out, err) = chat(dir.path(), &args, b"");
        assert!(status.success(), "{err}");
        assert!(out.contains(question), "{out}");
        let s = stored(dir.path());
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].0, "active", "{s:?}");

        // An empty line continues, and the next line answers the question
        // that was open (the industry, after the company name).
        let (status, out, err) = chat(dir.path(), &args, b"\n1\n");
        assert!(status.success(), "{err}");
        assert!(out.contains(question), "{out}");
        let s = stored(dir.path());
        assert_eq!(s.len(), 1, "{s:?}");
        let nodes: Vec<_> = s[0].1.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(nodes, ["privacy_ok", "company_name", "industry"], "{s:?}");

        // Something else is asked again, and is not taken as an answer.
        let (status, out, _) = chat(dir.path(), &args, "株式会社ほか\n\n".as_bytes());
        assert!(status.success());
        assert_eq!(out.matches(question).count(), 1, "{out}");
        let s = stored(dir.path());
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].1.len(), 3, "{s:?}");

        // "2" starts over: the open consultation is cancelled (kept as
        // history) and a new one begins.
        let (status, out, err) = chat(dir.path(), &args, format!("2\n{yes}\n").as_bytes());
        assert!(status.success(), "{err}");
        let s = stored(dir.path());
        assert_eq!(s.len(), 2, "{s:?}\n{out}");
        assert_eq!(s[0].0, "cancelled", "{s:?}");
        assert_eq!(s[1].0, "active", "{s:?}");
        assert_eq!(s[1].1, vec![("privacy_ok".to_string(), yes.to_string())]);
    }
}

/// True when a process ended quietly after its reader went away: a normal
/// exit, or the conventional death by SIGPIPE, never a panic or an error.
fn quiet_on_broken_pipe(status: ExitStatus, err: &str) -> bool {
    use std::os::unix::process::ExitStatusExt;
    const SIGPIPE: i32 = 13;
    (status.success() || status.signal() == Some(SIGPIPE)) && err.trim().is_empty()
}

/// `madoguchi cases show … | head`: every command that prints ends quietly
/// when its reader closes the pipe before reading anything.
#[test]
fn printing_commands_end_quietly_when_the_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let (status, out, err) = chat(dir.path(), &[], include_str!("chat_input.txt").as_bytes());
    assert!(status.success(), "{err}\n{out}");
    let db = dir.path().join("chat.db");
    let db = db.to_str().unwrap();
    let dialogs = dialogs_dir();
    let dialogs = dialogs.to_str().unwrap();
    let answers = dir.path().join("answers.yaml");
    std::fs::write(&answers, "prefecture: ひょうご\nindustry: 製造業\n").unwrap();
    let answers = answers.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["cases", "show", "C-000001", "--db", db],
        vec!["cases", "list", "--db", db],
        vec!["my-data", "--db", db],
        vec!["dialogs", "check", dialogs],
        vec!["dialogs", "graph", dialogs],
        vec!["dialogs", "versions", "--db", db, "--dialogs", dialogs],
        vec![
            "routing",
            "explain",
            "--answers",
            answers,
            "--dialogs",
            dialogs,
        ],
        vec!["forget", "--user", "terminal:local", "--db", db],
        vec!["--help"],
    ];
    for args in commands {
        let mut child = bin()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader closes its end before the command writes a byte.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            quiet_on_broken_pipe(out.status, &err),
            "madoguchi {}: {:?}\n{err}",
            args.join(" "),
            out.status
        );
    }
    // `chat` too, with input still to read.
    let mut child = bin()
        .args(["chat", "--db", db, "--dialogs", dialogs, "--user", "pipe"])
        .arg("--inbox")
        .arg(dir.path().join("inbox"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let _ = child.stdin.take().unwrap().write_all("はい\n".as_bytes());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        quiet_on_broken_pipe(out.status, &err),
        "chat: {:?}\n{err}",
        out.status
    );
}

/// Thousands of lines that change nothing ("ヘルプ") leave no large WAL
/// behind once the session ends: the store is closed cleanly.
#[test]
fn idle_lines_leave_the_wal_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::from("はい\n");
    for _ in 0..2000 {
        input.push_str("ヘルプ\n");
    }
    let (status, out, err) = chat(dir.path(), &[], input.as_bytes());
    assert!(status.success(), "{err}");
    assert!(out.matches("ヘルプ").count() >= 2000, "{out}");
    let wal = dir.path().join("chat.db-wal");
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // Before, 2,000 lines left 10 MB (10,000 left 25 MB).
    assert!(len < 256 * 1024, "the WAL is {len} bytes");
    // Nothing was lost on the way: the answer before the help lines is
    // there.
    let s = stored(dir.path());
    assert_eq!(s[0].1, vec![("privacy_ok".to_string(), "はい".to_string())]);
}
