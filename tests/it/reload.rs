//! Editing scripts under a running bot: checked reloads, pinned versions.

use crate::support::{copy_dialogs, t0};
use madoguchi::chat::render_effects;
use madoguchi::domain::ids::{Transport, UserKey};
use madoguchi::engine::Input;
use madoguchi::runner::{watch_dialogs, FixedClock, ReloadError, Runner, RunnerConfig};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::Store;
use std::path::Path;
use std::sync::Arc;

const OLD_Q: &str = "会社名（屋号）を教えてください。";
const NEW_Q: &str = "貴社の正式な会社名を教えてください。";

fn edit(dir: &Path, from: &str, to: &str) {
    let f = dir.join("first_contact.ja.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.contains(from),
        "the script no longer contains {from:?}; update this test"
    );
    crate::support::write_atomically(&f, &text.replacen(from, to, 1));
}

async fn runner(dir: &Path, db: &Path) -> Runner {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).await.unwrap());
    Runner::new(
        store,
        Arc::new(FixedClock::new(t0())),
        load_dir(dir).unwrap(),
        RunnerConfig::default(),
    )
    .await
    .unwrap()
}

async fn say(r: &Runner, who: &UserKey, text: &str) -> String {
    let input = if text.is_empty() {
        Input::Start
    } else {
        Input::Text(text.into())
    };
    let turn = r.handle(who, input, Some(Lang::Ja)).await.unwrap();
    render_effects(&turn.effects, Lang::Ja)
}

#[tokio::test]
async fn a_valid_edit_serves_new_sessions_and_old_ones_keep_their_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dialogs");
    std::fs::create_dir(&dir).unwrap();
    copy_dialogs(&dir);
    let db = tmp.path().join("bot.db");
    let r = runner(&dir, &db).await;
    let early = UserKey::new(Transport::Terminal, "early").unwrap();
    let late = UserKey::new(Transport::Terminal, "late").unwrap();
    say(&r, &early, "").await;

    edit(&dir, OLD_Q, NEW_Q);
    let report = r.reload(&dir, "admin:test").await.unwrap();
    assert_eq!(
        report.changed.len(),
        1,
        "only the Japanese script changed: {:?}",
        report.changed
    );
    let (script, lang, from, to) = &report.changed[0];
    assert_eq!((script.as_str(), *lang), ("first_contact", Lang::Ja));
    assert_ne!(from, to);

    // The owner who started before the edit sees the old question...
    assert!(say(&r, &early, "はい").await.contains(OLD_Q));
    // ...and a new owner the new one.
    say(&r, &late, "").await;
    assert!(say(&r, &late, "はい").await.contains(NEW_Q));

    // Both versions are in use, one open session each.
    let uses = r.store().versions_in_use().await.unwrap();
    let open: Vec<i64> = uses
        .iter()
        .filter(|v| v.lang == Lang::Ja && v.script_id == "first_contact")
        .map(|v| v.open_sessions)
        .collect();
    assert_eq!(open, vec![1, 1], "{uses:?}");

    // The reload is in the audit log with who did it and the versions.
    let audit = r.store().audit(None).await.unwrap();
    let entry = audit
        .iter()
        .find(|a| a.action == "reload")
        .expect("reload audited");
    assert_eq!(entry.actor, "admin:test");
    assert_eq!(entry.detail["changed"][0]["from"], from.as_str());
    assert_eq!(entry.detail["changed"][0]["to"], to.as_str());
}

#[tokio::test]
async fn a_broken_edit_is_rejected_and_the_running_version_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dialogs");
    std::fs::create_dir(&dir).unwrap();
    copy_dialogs(&dir);
    let r = runner(&dir, &tmp.path().join("bot.db")).await;
    let before = r
        .bundle()
        .flow("first_contact", Lang::Ja)
        .unwrap()
        .version
        .clone();

    edit(&dir, "    next: industry", "    next: industri");
    let err = r.reload(&dir, "admin:test").await.unwrap_err();
    let ReloadError::Invalid(diags) = err else {
        panic!("expected diagnostics, got {err}")
    };
    let rendered: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(
        rendered.iter().any(|d| d.contains("first_contact.ja.yaml:")
            && d.contains("there is no node `industri`")
            && d.contains("did you mean `industry`?")),
        "{rendered:#?}"
    );

    assert_eq!(
        r.bundle().flow("first_contact", Lang::Ja).unwrap().version,
        before
    );
    let owner = UserKey::new(Transport::Terminal, "owner").unwrap();
    say(&r, &owner, "").await;
    assert!(say(&r, &owner, "はい").await.contains(OLD_Q));
    let audit = r.store().audit(None).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "reload_rejected"),
        "{audit:?}"
    );
}

/// Edits that break a template without breaking its syntax (helpers
/// handlebars only refuses when rendering) are rejected like any other
/// broken edit, at the tag, and the running version keeps serving.
#[tokio::test]
async fn a_template_that_would_fail_when_shown_is_rejected_on_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dialogs");
    std::fs::create_dir(&dir).unwrap();
    copy_dialogs(&dir);
    let r = runner(&dir, &tmp.path().join("bot.db")).await;
    let before = r
        .bundle()
        .flow("first_contact", Lang::Ja)
        .unwrap()
        .version
        .clone();
    let pristine = std::fs::read_to_string(dir.join("first_contact.ja.yaml")).unwrap();
    for (from, to, code) in [
        (
            "理由：{{route.reason}}",
            "理由：{{bold route.reason}}",
            "unknown-helper",
        ),
        (
            "会社名：{{company_name}}",
            "会社名：{{upper company_name}}",
            "unknown-helper",
        ),
        (
            "{{default capital \"（未回答）\"}}",
            "{{default capital}}",
            "helper-arity",
        ),
        (OLD_Q, "\"{{shout company_name}}\"", "unknown-helper"),
    ] {
        crate::support::write_atomically(&dir.join("first_contact.ja.yaml"), &pristine);
        edit(&dir, from, to);
        let err = r.reload(&dir, "admin:test").await.unwrap_err();
        let ReloadError::Invalid(diags) = err else {
            panic!("expected diagnostics, got {err}")
        };
        assert!(
            diags.iter().any(|d| d.code == code
                && d.file.ends_with("first_contact.ja.yaml")
                && d.loc.line > 1),
            "{to}: {diags:#?}"
        );
        assert_eq!(
            r.bundle().flow("first_contact", Lang::Ja).unwrap().version,
            before
        );
    }
    let owner = UserKey::new(Transport::Terminal, "owner").unwrap();
    say(&r, &owner, "").await;
    assert!(say(&r, &owner, "はい").await.contains(OLD_Q));
}

#[tokio::test]
async fn a_session_finishes_on_its_version_after_a_restart_with_edited_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dialogs");
    std::fs::create_dir(&dir).unwrap();
    copy_dialogs(&dir);
    let db = tmp.path().join("bot.db");
    let owner = UserKey::new(Transport::Terminal, "owner").unwrap();
    {
        let r = runner(&dir, &db).await;
        say(&r, &owner, "").await;
    }
    // The bot stops, an administrator edits the files, the bot starts again.
    edit(&dir, OLD_Q, NEW_Q);
    let r = runner(&dir, &db).await;
    assert!(
        say(&r, &owner, "はい").await.contains(OLD_Q),
        "the pinned version is reloaded from the database"
    );
    let newcomer = UserKey::new(Transport::Terminal, "newcomer").unwrap();
    say(&r, &newcomer, "").await;
    assert!(say(&r, &newcomer, "はい").await.contains(NEW_Q));
}

#[tokio::test]
async fn the_file_watcher_reloads_an_edit_and_reports_a_broken_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dialogs");
    std::fs::create_dir(&dir).unwrap();
    copy_dialogs(&dir);
    let r = Arc::new(runner(&dir, &tmp.path().join("bot.db")).await);
    let before = r
        .bundle()
        .flow("first_contact", Lang::Ja)
        .unwrap()
        .version
        .clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = watch_dialogs(
        r.clone(),
        dir.clone(),
        std::time::Duration::from_millis(50),
        move |res| {
            let _ = tx.send(
                res.as_ref()
                    .map(|rep| rep.changed.len())
                    .map_err(|e| e.to_string()),
            );
        },
    );
    edit(&dir, OLD_Q, NEW_Q);
    let got = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("the watcher noticed the edit")
        .unwrap();
    assert_eq!(got, Ok(1));
    assert_ne!(
        r.bundle().flow("first_contact", Lang::Ja).unwrap().version,
        before
    );
    edit(&dir, "    next: industry", "    next: industri");
    let got = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("the watcher noticed the edit")
        .unwrap();
    assert!(
        got.unwrap_err().contains("error"),
        "a broken edit is reported"
    );
    handle.abort();
}
