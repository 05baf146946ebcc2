//! The local inbox as an outbox target: cases a crash left undelivered go
//! out when the store is opened again, each file is written once and
//! atomically, named by its delivery, and owner text in it is escaped.

use crate::support::{dialogs_dir, t0};
use madoguchi::chat::{run_chat, ChatOptions};
use madoguchi::delivery::{deliver_local, file_name, render_file};
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::engine::Input;
use madoguchi::runner::{FixedClock, Runner, RunnerConfig};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::{DeliveryStatus, ForwardCase, NewDelivery, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

async fn runner(db: &Path) -> Runner {
    runner_at(db, t0()).await
}

async fn runner_at(db: &Path, now: chrono::DateTime<chrono::Utc>) -> Runner {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).await.unwrap());
    Runner::new(
        store,
        Arc::new(FixedClock::new(now)),
        load_dir(&dialogs_dir()).unwrap(),
        RunnerConfig::default(),
    )
    .await
    .unwrap()
}

/// Runs a whole consultation through the runner alone, as the chat does up
/// to the moment it would deliver: the case and its deliveries are
/// committed, nothing is written to the inbox (the state a SIGKILL right
/// after the final 送信 leaves).
async fn consult_without_delivering(r: &Runner, who: &UserKey, answers: &str) -> CaseId {
    let mut case = None;
    let turn = r.handle(who, Input::Start, Some(Lang::Ja)).await.unwrap();
    case = case.or(turn.case);
    for line in answers.lines() {
        let turn = r
            .handle(who, Input::Text(line.into()), Some(Lang::Ja))
            .await
            .unwrap();
        case = case.or(turn.case);
    }
    case.expect("the consultation ends with a case")
}

fn opts(user: &UserKey, inbox: &Path, resume: bool) -> ChatOptions {
    ChatOptions {
        user: user.clone(),
        lang: Lang::Ja,
        resume,
        inbox: inbox.to_path_buf(),
        echo: true,
        follow_up: false,
        trial: false,
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The failure: the case committed, the process killed before the
/// inbox file was written; `chat --resume` (and a new `chat` by another
/// owner) delivers it at once instead of waiting for another consultation
/// to finish.
#[tokio::test]
async fn a_saved_but_undelivered_case_goes_out_when_chat_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let inbox = dir.path().join("inbox");
    let who = UserKey::new(Transport::Terminal, "local").unwrap();
    let r = runner(&db).await;
    let case = consult_without_delivering(&r, &who, include_str!("chat_input.txt")).await;
    let store = r.store().clone();
    let pending = store.deliveries(case).await.unwrap();
    assert!(
        pending.iter().all(|d| d.status == DeliveryStatus::Pending),
        "{pending:?}"
    );
    assert!(files_in(&inbox.join("hyogo-pro")).is_empty());

    // The owner runs `chat --resume`: their consultation is over, and the
    // chat starts by delivering what is pending.
    let mut out = Vec::new();
    run_chat(&r, &opts(&who, &inbox, true), &b""[..], &mut out)
        .await
        .unwrap();
    let after = store.deliveries(case).await.unwrap();
    assert!(
        after.iter().all(|d| d.status == DeliveryStatus::Delivered),
        "{after:?}"
    );
    let files = files_in(&inbox.join("hyogo-pro"));
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("ひょうご精機"), "{text}");
}

/// A crash between the rename and marking the row: the complete file is
/// there and the row pending. The next run marks it delivered without
/// writing the file again (same inode, same bytes), and removes a
/// temporary file left by another crash.
#[tokio::test]
async fn a_file_already_written_is_not_written_again_and_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let inbox = dir.path().join("inbox");
    let who = UserKey::new(Transport::Terminal, "local").unwrap();
    let r = runner(&db).await;
    let case_id = consult_without_delivering(&r, &who, include_str!("chat_input.txt")).await;
    let store = r.store().clone();
    let all = store.deliveries(case_id).await.unwrap();
    let d = all[0].clone();
    let case = store.case(case_id).await.unwrap().unwrap();
    let folder = inbox.join(&d.target);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join(file_name(&d));
    std::fs::write(&path, render_file(&d, &case)).unwrap();
    let leftover = folder.join("C-000009-d9.md.tmp");
    std::fs::write(&leftover, "half a fi").unwrap();
    let before = std::fs::metadata(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let done = deliver_local(store.as_ref(), &inbox, t0()).await.unwrap();
    assert_eq!(done.len(), all.len());
    let after = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(before.ino(), after.ino(), "the file was replaced");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!leftover.exists(), "a crash's temporary file is left");
    let d = store.deliveries(case_id).await.unwrap().remove(0);
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(files_in(&folder), vec![path.clone()]);
    assert!(files_in(&inbox)
        .iter()
        .flat_map(|f| files_in(f))
        .all(|f| !f.to_string_lossy().ends_with(".tmp")));

    // A file of that name that is not this delivery's (another database
    // used the same inbox) is kept, and the delivery waits with a reason.
    let r2 = runner_at(
        &dir.path().join("other.db"),
        t0() + chrono::Duration::minutes(5),
    )
    .await;
    let c2 = consult_without_delivering(&r2, &who, include_str!("chat_input.txt")).await;
    let foreign =
        std::fs::read(folder.join(file_name(&r2.store().deliveries(c2).await.unwrap()[0])))
            .unwrap();
    assert_eq!(foreign, bytes, "the same name in the same folder");
    let done = deliver_local(
        r2.store().as_ref(),
        &inbox,
        t0() + chrono::Duration::minutes(5),
    )
    .await
    .unwrap();
    assert!(done.is_empty());
    let d2 = r2.store().deliveries(c2).await.unwrap().remove(0);
    assert_eq!(d2.status, DeliveryStatus::Pending);
    assert!(
        d2.last_error
            .as_deref()
            .unwrap_or("")
            .contains("not this delivery's file"),
        "{d2:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), foreign);
}

/// Files are keyed by delivery: a case forwarded to a hub whose inbox is
/// the same folder gets a second file, and the first is left as it was.
#[tokio::test]
async fn deliveries_of_one_case_to_one_folder_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let inbox = dir.path().join("inbox");
    let who = UserKey::new(Transport::Terminal, "local").unwrap();
    let r = runner(&db).await;
    let case = consult_without_delivering(&r, &who, include_str!("chat_input.txt")).await;
    let store = r.store().clone();
    deliver_local(store.as_ref(), &inbox, t0()).await.unwrap();
    let first = store.deliveries(case).await.unwrap().remove(0);
    let folder = inbox.join(&first.target);
    let first_file = files_in(&folder);
    assert_eq!(first_file.len(), 1);
    let first_bytes = std::fs::read(&first_file[0]).unwrap();

    store
        .forward_case(&ForwardCase {
            case,
            to_hub: "hyogo-yorozu",
            reason: "test",
            actor: "staff:test",
            consent: None,
            request: None,
            delivery: Some(NewDelivery {
                hub_id: "hyogo-yorozu".into(),
                transport: "local".into(),
                target: first.target.clone(),
            }),
            now: t0(),
        })
        .await
        .unwrap();
    let done = deliver_local(store.as_ref(), &inbox, t0()).await.unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    let files = files_in(&folder);
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(std::fs::read(&first_file[0]).unwrap(), first_bytes);
    let second = std::fs::read_to_string(&done[0].path).unwrap();
    assert!(second.contains("hyogo-yorozu"), "{second}");
}

/// Owner text in an inbox file is escaped for Markdown and HTML, in the
/// `#` title (the headline) as in the sheet.
#[tokio::test]
async fn owner_text_in_inbox_files_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    let inbox = dir.path().join("inbox");
    let who = UserKey::new(Transport::Terminal, "local").unwrap();
    let r = runner(&db).await;
    let answers = include_str!("chat_input.txt").replacen(
        "株式会社ひょうご精機",
        "<img src=x onerror=alert(1)>[click](https://evil.example/) @everyone",
        1,
    );
    consult_without_delivering(&r, &who, &answers).await;
    let done = deliver_local(r.store().as_ref(), &inbox, t0())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&done[0].path).unwrap();
    let title = text.lines().next().unwrap();
    for bad in ["<img", "](", "[click]", " @everyone"] {
        assert!(!text.contains(bad), "`{bad}` in\n{text}");
    }
    assert!(title.contains("&lt;img"), "{title}");
    assert!(title.contains("&#64;everyone"), "{title}");
}
