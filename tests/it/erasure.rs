//! Erasure that holds: after `madoguchi forget`, none of the owner's values
//! can be read back from the database file, its WAL or the local inbox,
//! even while another connection has the database open, and the case's
//! route and audit trail keep no text derived from the answers.

use crate::support::dialogs_dir;
use madoguchi::domain::ids::{CaseId, UserKey};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::Store;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_madoguchi"))
}

/// The owner's values, each distinctive enough that finding its bytes
/// anywhere means it was not erased.
const COMPANY: &str = "株式会社消去確認工業";
const CONTACT: &str = "消去 確認太郎";
const EMAIL: &str = "erase.check@kieru-test.example";
const PHONE: &str = "078-555-0199";
const FREE_TEXT: &str = "消去確認用の将来像。地元の素材で新しい名物を作りたい";

fn answers() -> String {
    let base = include_str!("chat_input.txt");
    let mut lines: Vec<String> = base.lines().map(String::from).collect();
    let swap = |lines: &mut Vec<String>, from: &str, to: &str| {
        let i = lines
            .iter()
            .position(|l| l.contains(from))
            .unwrap_or_else(|| panic!("chat_input.txt no longer has {from:?}; update this test"));
        lines[i] = to.to_string();
    };
    swap(&mut lines, "ひょうご精機", COMPANY);
    swap(&mut lines, "山本", CONTACT);
    swap(&mut lines, "ｙａｍａｍｏｔｏ", EMAIL);
    swap(&mut lines, "０７８", PHONE);
    swap(&mut lines, "自社製品を持ち", FREE_TEXT);
    lines.join("\n") + "\n"
}

fn chat(db: &Path, inbox: &Path, input: &str) -> String {
    let mut child = bin()
        .arg("chat")
        .arg("--db")
        .arg(db)
        .arg("--dialogs")
        .arg(dialogs_dir())
        .arg("--inbox")
        .arg(inbox)
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
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The forms a value may be stored in: as typed, and as the normalisers
/// keep it (a phone number's digits).
fn needles() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("company name", COMPANY.as_bytes().to_vec()),
        // The company name without its legal form, as a headline may show it.
        ("company name", "消去確認工業".as_bytes().to_vec()),
        ("contact name", CONTACT.as_bytes().to_vec()),
        ("contact name", "確認太郎".as_bytes().to_vec()),
        ("e-mail", EMAIL.as_bytes().to_vec()),
        ("e-mail", b"kieru-test".to_vec()),
        ("phone", PHONE.as_bytes().to_vec()),
        ("phone", b"0785550199".to_vec()),
        ("free text", "地元の素材で新しい名物".as_bytes().to_vec()),
    ]
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Which needles are in which files.
fn leaks(paths: &[std::path::PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        for (what, n) in needles() {
            if find(&bytes, &n) {
                out.push(format!(
                    "{what} {:?} in {}",
                    String::from_utf8_lossy(&n),
                    p.display()
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_no_value_in_the_database_the_wal_or_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let inbox = dir.path().join("inbox");
    let text = chat(&db, &inbox, &answers());
    assert!(
        text.contains(COMPANY),
        "the consultation did not run:\n{text}"
    );

    // Another connection holds the database open (a second store: its pool
    // and its background checkpointer) and has read from it.
    let other = SqliteStore::open(&db).await.unwrap();
    let user = UserKey::parse("terminal:local").unwrap();
    let case = CaseId::parse("C-000001").unwrap();
    assert!(other.case(case).await.unwrap().is_some());

    // Before: the values are there (so the search below can find them).
    let wal = dir.path().join("e.db-wal");
    let mut all = vec![db.clone(), wal.clone()];
    all.extend(files(&inbox));
    let before = leaks(&all);
    for what in [
        "company name",
        "contact name",
        "e-mail",
        "phone",
        "free text",
    ] {
        assert!(
            before.iter().any(|l| l.starts_with(what)),
            "the {what} was never stored where this test looks: {before:?}"
        );
    }

    // A reader in the middle of a read that began before the deletion: the
    // WAL cannot be cleared until it ends, so `forget` waits for it. It
    // ends a moment after `forget` starts; where exactly does not matter.
    let mut reader = other.pool().begin().await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM answers")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    let forget = bin()
        .args(["forget", "--yes", "--user", "terminal:local", "--db"])
        .arg(&db)
        .arg("--inbox")
        .arg(&inbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    reader.commit().await.unwrap();
    let out = tokio::task::spawn_blocking(move || forget.wait_with_output().unwrap())
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("tombstone"), "{said}");

    // The other connection is still open while the files are searched.
    let mut all = vec![db.clone(), wal.clone()];
    let inbox_files = files(&inbox);
    assert!(!inbox_files.is_empty());
    all.extend(inbox_files.iter().cloned());
    let after = leaks(&all);
    assert!(
        after.is_empty(),
        "readable after forget:\n{}",
        after.join("\n")
    );
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL keeps {wal_len} bytes");
    for f in &inbox_files {
        let t = std::fs::read_to_string(f).unwrap();
        assert!(t.contains("削除済み / deleted"), "{}: {t}", f.display());
    }

    // The route and the audit trail keep hubs and rules, not reasons.
    let c = other.case(case).await.unwrap().unwrap();
    let kept_reason = &c.route.reason;
    assert!(
        kept_reason.contains("削除済み") && c.route.passed_over.is_empty(),
        "{:?}",
        c.route
    );
    assert!(!c.route.primary.id.is_empty(), "the hub is kept");
    for a in other.audit(Some(case)).await.unwrap() {
        let d = a.detail.to_string();
        assert!(
            !d.contains("passed_over\":[[")
                && a.detail
                    .get("reason")
                    .is_none_or(|r| r == "（削除済み / deleted）"),
            "audit {} keeps {d}",
            a.action
        );
    }
    // What the law needs stays: the consent records.
    assert!(!other.consents(&user).await.unwrap().is_empty());
}

/// 「データ削除」 typed in the terminal chat deletes as `madoguchi forget`
/// does, after the same question: first kept on 「やめる」 (the question
/// the owner was on comes back), then deleted on 「削除する」, with the
/// inbox copies replaced and no value left in the inbox.
#[test]
fn typed_in_the_chat_forget_asks_then_deletes_and_tombstones_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let inbox = dir.path().join("inbox");
    let text = chat(&db, &inbox, &answers());
    assert!(
        text.contains(COMPANY),
        "the consultation did not run:\n{text}"
    );
    assert!(
        !leaks(&files(&inbox)).is_empty(),
        "the inbox holds the case"
    );

    // Started again: the words are not an answer to the first question.
    let kept = chat(&db, &inbox, "データ削除\nやめる\n");
    assert!(kept.contains("3年間保管"), "{kept}");
    assert!(kept.contains("削除は取りやめました"), "{kept}");
    assert!(
        kept.contains("この内容で進めてよろしいですか"),
        "the question comes back:\n{kept}"
    );
    assert!(
        !leaks(&files(&inbox)).is_empty(),
        "nothing deleted on やめる"
    );

    // The consultation left open by the run before is continued first.
    let gone = chat(&db, &inbox, "1\nデータ削除\n削除する\n");
    assert!(gone.contains("削除しました"), "{gone}");
    assert_eq!(leaks(&files(&inbox)), Vec::<String>::new());
    let out = bin()
        .args(["my-data", "--user", "terminal:local", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let export: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(export["sessions"], serde_json::json!([]), "{export}");
}
