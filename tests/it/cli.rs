//! The `madoguchi` binary, run as a newcomer would run it.

use crate::support::dialogs_dir;
use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_madoguchi"))
}

/// Runs `madoguchi chat` on `dir`'s database and inbox with piped input;
/// returns its exit status, standard output and standard error.
fn chat(
    dir: &std::path::Path,
    args: &[&str],
    input: &str,
) -> (std::process::ExitStatus, String, String) {
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dialogs_check_accepts_the_shipped_scripts() {
    let out = bin()
        .args(["dialogs", "check", "--lang", "en"])
        .arg(dialogs_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 error(s)"), "{text}");
    assert_ne!(out.status.code(), Some(1), "{text}");
}

/// A whole consultation through piped stdin, ending with the routed case
/// and its file in the local inbox.
#[test]
fn chat_runs_a_consultation_from_piped_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let inbox = dir.path().join("inbox");
    let (status, text, err) = chat(dir.path(), &[], include_str!("chat_input.txt"));
    assert!(status.success(), "stdout:\n{text}\nstderr:\n{err}");
    assert!(text.contains("企業情報シート"), "{text}");
    assert!(text.contains("hyogo-pro"), "{text}");
    let file = inbox.join("hyogo-pro").join("C-000001-d1.md");
    let sheet = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}\n{text}", file.display()));
    assert!(sheet.contains("株式会社ひょうご精機"), "{sheet}");

    // The case is visible to staff.
    let list = bin()
        .args(["cases", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("C-000001") && list.contains("hyogo-pro"),
        "{list}"
    );
    let show = bin()
        .args(["cases", "show", "C-000001", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("routing: rule"), "{show}");
}

/// Input that stops half-way leaves the answers saved; `--resume` continues.
#[test]
fn chat_resumes_after_input_ends() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], input: &str| {
        let (status, text, err) = chat(dir.path(), args, input);
        assert!(status.success(), "{err}");
        text
    };
    let first = run(&[], "はい\n株式会社ひょうご精機\n");
    assert!(first.contains("--resume"), "{first}");
    let second = run(&["--resume"], "回答確認\n");
    assert!(second.contains("株式会社ひょうご精機"), "{second}");
}

/// An owner can see everything stored about them and have it deleted; the
/// consent records stay, and the reply says so.
#[test]
fn my_data_and_forget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    assert!(chat(dir.path(), &[], include_str!("chat_input.txt"))
        .0
        .success());

    let data = |db: &std::path::Path| {
        let out = bin()
            .args(["my-data", "--user", "terminal:local", "--db"])
            .arg(db)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = data(&db);
    let answers = before["sessions"][0]["answers"].as_array().unwrap();
    assert!(
        answers.iter().any(|a| a["raw"] == "株式会社ひょうご精機"),
        "{before:#}"
    );
    assert_eq!(before["cases"].as_array().unwrap().len(), 1);
    assert_eq!(
        before["consents"].as_array().unwrap().len(),
        2,
        "the decision and the forwarding record"
    );

    // Without --yes nothing is deleted.
    let out = bin()
        .args(["forget", "--user", "terminal:local", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(data(&db)["cases"].as_array().unwrap().len(), 1);

    let out = bin()
        .args(["forget", "--user", "terminal:local", "--yes", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("kept 2 consent record(s)"),
        "{text}"
    );
    let after = data(&db);
    assert!(
        after["sessions"].as_array().unwrap().is_empty(),
        "{after:#}"
    );
    assert!(after["cases"].as_array().unwrap().is_empty());
    assert_eq!(after["consents"].as_array().unwrap().len(), 2);
    assert!(
        !after.to_string().contains("ひょうご精機"),
        "no answer survives: {after:#}"
    );
}

/// A database that cannot be opened is named with what SQLite said, once,
/// and what to do: a folder where the file should be, a file that is not
/// a database (for `chat` and for `backup` alike).
#[test]
fn a_database_that_cannot_be_opened_says_why_once_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5au8; 8192]).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = bin()
            .args(args)
            .arg("--dialogs")
            .arg(dialogs_dir())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let copy = dir.path().join("copy.db");
    let err = run(&["chat".as_ref(), "--db".as_ref(), folder.as_os_str()]);
    assert!(err.contains("unable to open database file"), "{err}");
    assert!(
        err.contains("not a folder") && err.contains("--db"),
        "{err}"
    );
    assert_eq!(
        err.matches("unable to open database file").count(),
        1,
        "{err}"
    );
    for cmd in [
        vec!["chat".as_ref(), "--db".as_ref(), garbage.as_os_str()],
        vec![
            "backup".as_ref(),
            "--db".as_ref(),
            garbage.as_os_str(),
            "-o".as_ref(),
            copy.as_os_str(),
        ],
    ] {
        let err = run(&cmd);
        assert_eq!(err.matches("file is not a database").count(), 1, "{err}");
        assert!(err.contains("restore the database from a backup"), "{err}");
    }
    // Nothing was written over the file that is not a database.
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5au8; 8192]);
}

/// `dialogs try` keeps nothing, so when its input ends it says so instead
/// of `chat`'s "your answers are saved; continue with --resume".
#[test]
fn dialogs_try_says_nothing_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["dialogs", "try"])
        .arg(dialogs_dir())
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("回答は保存していません"), "{text}");
    assert!(!text.contains("回答は保存されています"), "{text}");
    assert!(!text.contains("--resume"), "{text}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// `forget` deletes nobody by default: `--user` is required. An id with
/// nothing stored is said to be so, with how owner ids look, and exits 3
/// (not success); a Discord id that is not a number is refused by the id
/// parser. The stored owner's data stays in every case.
#[test]
fn forget_needs_the_owner_and_says_when_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    assert!(chat(dir.path(), &[], include_str!("chat_input.txt"))
        .0
        .success());
    let forget = |args: &[&str]| {
        let out = bin()
            .arg("forget")
            .args(args)
            .args(["--yes", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cases_of_local = || {
        let out = bin()
            .args(["my-data", "--user", "terminal:local", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["cases"].as_array().unwrap().len()
    };

    // A usage error exits 64, never 2 ("not confirmed").
    let (code, err) = forget(&[]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--user"), "{err}");
    assert_eq!(cases_of_local(), 1, "nothing was deleted");

    let (code, err) = forget(&["--user", "terminal:nobody"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("nothing is stored for terminal:nobody")
            && err.contains("terminal:local")
            && err.contains("discord:")
            && err.contains("slack:"),
        "{err}"
    );

    let (code, err) = forget(&["--user", "discord:abc"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a Discord user id"), "{err}");
    assert_eq!(cases_of_local(), 1, "nothing was deleted");
}
