//! `madoguchi cases claim|release|advance|forward|close|reply`: staff
//! actions from the terminal, through the desk, on a case a terminal
//! consultation routed.

use crate::support::dialogs_dir;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_madoguchi"))
}

fn consult(dir: &Path) {
    let mut child = bin()
        .arg("chat")
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
        .write_all(include_str!("chat_input.txt").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `madoguchi chat` for the owner of the consultation with `input`;
/// returns what it printed.
fn chat(dir: &Path, input: &str) -> String {
    let mut child = bin()
        .arg("chat")
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `madoguchi cases ARGS` on the database; (exit code, stdout, stderr).
fn cases(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("cases")
        .args(args)
        .arg("--db")
        .arg(dir.join("chat.db"))
        .arg("--dialogs")
        .arg(dialogs_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn staff_work_a_case_from_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    consult(dir.path());
    let d = dir.path();
    let as_tanaka = ["--as", "cli:tanaka", "--hub", "hyogo-pro"];
    let with = |cmd: &[&str], who: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(who.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        cases(d, &a)
    };

    // Not a terminal identity, not a hub, not the case's hub.
    let (code, _, err) = run(with(
        &["claim", "C-000001"],
        &["--as", "discord:1", "--hub", "hyogo-pro"],
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cli:NAME"), "{err}");
    let (code, _, err) = run(with(
        &["claim", "1"],
        &["--as", "cli:tanaka", "--hub", "nowhere"],
    ));
    assert_eq!(code, 1);
    assert!(
        err.contains("hyogo-pro") && !err.contains("directory-"),
        "the error lists the network's own hubs only: {err}"
    );
    let (code, _, err) = run(with(
        &["claim", "1"],
        &["--as", "cli:tanaka", "--hub", "hyogo-yorozu"],
    ));
    assert_eq!(code, 1);
    // What was wrong (the case is at hyogo-pro, not the hub given) and
    // the option to fix; no placeholder for a staff group.
    assert!(
        err.contains("兵庫県プロフェッショナル人材戦略拠点")
            && err.contains("hyogo-yorozu としては操作できません")
            && err.contains("you passed --hub hyogo-yorozu")
            && err.contains("again with --hub hyogo-pro")
            && !err.contains("—"),
        "{err}"
    );

    // Claim; a second member is refused, and may not release it.
    let (code, out, err) = run(with(&["claim", "C-000001"], &as_tanaka));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cli:tanaka が担当になりました"), "{out}");
    assert!(
        out.contains("status claimed") && out.contains("claimed by cli:tanaka"),
        "{out}"
    );
    let as_sato = ["--as", "cli:sato", "--hub", "hyogo-pro"];
    let (code, _, err) = run(with(&["claim", "1"], &as_sato));
    assert_eq!(code, 1);
    assert!(err.contains("cli:tanaka が担当しています"), "{err}");
    let (code, _, err) = run(with(&["release", "1"], &as_sato));
    assert_eq!(code, 1);
    assert!(err.contains("担当者本人だけ"), "{err}");

    // Advance, in English.
    let (code, out, _) = run(with(&["advance", "1", "--lang", "en"], &as_tanaka));
    assert_eq!(code, 0);
    assert!(out.contains("moved the case from STEP"), "{out}");

    // Messages to the owner need the owner's platform: nothing changes.
    let (code, _, err) = run(with(
        &["reply", "1", "--message", "お電話します"],
        &as_tanaka,
    ));
    assert_ne!(code, 0);
    assert!(err.contains("nothing was changed"), "{err}");

    // Outside the owner's consent (the consultation shared the case with
    // hyogo-pro and, as a copy, hyogo-chamber) the owner must be asked: a
    // terminal owner is asked when they next start `madoguchi chat`, and
    // nothing moves until they answer.
    let inbox = d.join("inbox");
    let inbox_arg = inbox.to_string_lossy().to_string();
    let (code, out, err) = run(with(
        &[
            "forward",
            "1",
            "--to",
            "hyogo-yorozu",
            "--reason",
            "販路開拓の相談",
            "--inbox",
            &inbox_arg,
        ],
        &as_tanaka,
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("相談者に確認しています"), "{out}");
    assert!(out.contains("hub hyogo-pro"), "not moved yet: {out}");
    // The owner starts the chat: the question comes first; they decline.
    let shown = chat(d, "2\n");
    assert!(
        shown.contains("引き継ぎたいとの申し出") && shown.contains("販路開拓の相談"),
        "{shown}"
    );
    assert!(shown.contains("には共有しません"), "{shown}");
    // Answered: not asked again.
    let shown = chat(d, "");
    assert!(!shown.contains("引き継ぎたいとの申し出"), "{shown}");
    assert_eq!(
        std::fs::read_dir(inbox.join("hyogo-yorozu"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "nothing reached the hub the owner refused"
    );
    // Within consent it moves.
    let files = |hub: &str| {
        std::fs::read_dir(inbox.join(hub))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = files("hyogo-chamber");
    let (code, out, err) = run(with(
        &[
            "forward",
            "1",
            "--to",
            "hyogo-chamber",
            "--reason",
            "販路開拓の相談",
            "--inbox",
            &inbox_arg,
        ],
        &as_tanaka,
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("hub hyogo-chamber") && out.contains("status open"),
        "{out}"
    );
    assert!(out.contains("販路開拓の相談"), "{out}");
    // hyogo-chamber had its copy from the consultation already: the
    // forward makes it responsible without writing the case twice.
    assert_eq!(before, 1, "the consultation's copy");
    assert_eq!(files("hyogo-chamber"), before, "no second copy");
    // The old hub's staff can no longer act on it; the new hub's can.
    let (code, _, err) = run(with(&["close", "1", "--outcome", "x"], &as_tanaka));
    assert_eq!(code, 1, "{err}");
    let as_chamber = ["--as", "cli:kato", "--hub", "hyogo-chamber"];
    let (code, out, err) = run(with(
        &["close", "1", "--outcome", "専門家派遣で解決"],
        &as_chamber,
    ));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("status closed"), "{out}");

    // Stale: the case is closed.
    let (code, _, err) = run(with(&["advance", "1"], &as_chamber));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("完了した案件"), "{err}");

    // Everything is in the case's history under the staff names.
    let (_, show, _) = run(vec!["show".into(), "1".into()]);
    assert!(show.contains("cli:tanaka claim"), "{show}");
    assert!(show.contains("advance"), "{show}");
    assert!(show.contains("close"), "{show}");
}

/// `dialogs check` checks the desk's texts: a template that uses an
/// argument the desk does not pass is an error naming the file and key.
#[test]
fn dialogs_check_reports_a_broken_desk_text() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_dialogs(dir.path());
    std::fs::create_dir(dir.path().join("desk")).unwrap();
    let shipped = dialogs_dir().join("desk");
    std::fs::copy(shipped.join("ja.yaml"), dir.path().join("desk/ja.yaml")).unwrap();
    let en = std::fs::read_to_string(shipped.join("en.yaml"))
        .unwrap()
        .replace("{{holder}} already holds", "{{owner_name}} already holds");
    std::fs::write(dir.path().join("desk/en.yaml"), en).unwrap();
    let out = bin()
        .args(["dialogs", "check", "--lang", "en"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("en.yaml") && text.contains("refused.claimed_by_other"),
        "{text}"
    );
    assert!(text.contains("1 error(s)"), "{text}");
}

/// `cases retry-delivery` makes a delivery that failed for good pending
/// again (audited), once; `cases show` lists the case's relay messages.
#[test]
fn a_failed_delivery_is_retried_from_the_terminal() {
    use madoguchi::store::{AttemptOutcome, NewRelay, RelayKind, Store};
    let dir = tempfile::tempdir().unwrap();
    consult(dir.path());
    let d = dir.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = madoguchi::store::sqlite::SqliteStore::open(&d.join("chat.db"))
            .await
            .unwrap();
        let case = madoguchi::domain::ids::CaseId(1);
        let del = store.deliveries(case).await.unwrap()[0].clone();
        let failed = AttemptOutcome::Failed {
            error: "the inbox folder is not writable".into(),
        };
        store
            .record_attempt(del.id, &failed, chrono::Utc::now())
            .await
            .unwrap();
        let user = store.case(case).await.unwrap().unwrap().user;
        let relay = NewRelay {
            case,
            user,
            kind: RelayKind::ToHub,
            transport: "slack".into(),
            target: del.hub_id.clone(),
            body: "{}".into(),
        };
        store
            .queue_relays(&[relay], chrono::Utc::now())
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    let (code, out, _) = cases(d, &["show", "C-000001"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("failed") && out.contains("relay messages:"),
        "{out}"
    );
    assert!(out.contains("to_hub via slack"), "{out}");

    let (code, out, err) = cases(d, &["retry-delivery", "C-000001"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pending again"), "{out}");
    let (_, out, _) = cases(d, &["show", "C-000001"]);
    assert!(out.contains("delivery_retried"), "{out}");
    let (code, _, err) = cases(d, &["retry-delivery", "C-000001"]);
    assert_eq!(code, 1);
    assert!(err.contains("no failed delivery"), "{err}");
}

/// A forward waiting for the owner is the only one for its case: a second
/// is refused, and a forward within consent moves the case and withdraws
/// the waiting one, so the owner's later chat neither asks it nor moves the
/// case back under another hub's name. A request left pending from before
/// that rule (made while the case was at another hub) is dropped when the
/// owner next chats, and they are told why.
#[test]
fn a_move_withdraws_the_forward_waiting_for_the_owner() {
    use madoguchi::store::{NewForwardRequest, Store};
    let dir = tempfile::tempdir().unwrap();
    consult(dir.path());
    let d = dir.path();
    let inbox = d.join("inbox");
    let inbox_arg = inbox.to_string_lossy().to_string();
    let forward = |to: &str, who: &str, hub: &str| {
        cases(
            d,
            &[
                "forward",
                "1",
                "--to",
                to,
                "--reason",
                "販路開拓の相談",
                "--inbox",
                &inbox_arg,
                "--as",
                who,
                "--hub",
                hub,
            ],
        )
    };
    let (code, out, err) = forward("hyogo-yorozu", "cli:tanaka", "hyogo-pro");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("相談者に確認しています"), "{out}");
    // A second question while the first waits: refused, naming the first.
    let (code, out, err) = forward("hyogo-yorozu", "cli:tanaka", "hyogo-pro");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("兵庫県よろず支援拠点 への引き継ぎについて、相談者の回答を待っています"),
        "{err}"
    );
    // Within consent: moved at once, and the waiting question withdrawn.
    let (code, out, err) = forward("hyogo-chamber", "cli:tanaka", "hyogo-pro");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("hub hyogo-chamber"), "{out}");
    assert!(out.contains("引き継ぎの確認を取り下げました"), "{out}");
    // The owner is not asked about it, and nothing moves.
    let shown = chat(d, "1\n");
    assert!(!shown.contains("引き継ぎたいとの申し出"), "{shown}");
    let (_, show, _) = cases(d, &["show", "1"]);
    assert!(show.contains("hub: hyogo-chamber"), "{show}");
    assert!(show.contains("forward_withdrawn"), "{show}");
    assert_eq!(
        std::fs::read_dir(inbox.join("hyogo-yorozu"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "nothing reached the hub the owner was never asked about"
    );

    // A request from before the rule: made by hyogo-pro, still pending,
    // though the case has since moved to hyogo-chamber.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = madoguchi::store::sqlite::SqliteStore::open(&d.join("chat.db"))
            .await
            .unwrap();
        let case = store
            .case(madoguchi::domain::ids::CaseId(1))
            .await
            .unwrap()
            .unwrap();
        let before = case.created_at;
        store
            .create_forward_request(
                &NewForwardRequest {
                    case: case.id,
                    user: case.user.clone(),
                    to_hub: "hyogo-yorozu".into(),
                    reason: "古い申し出".into(),
                    requested_by: "cli:tanaka".into(),
                },
                before,
            )
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    let shown = chat(d, "1\n");
    assert!(!shown.contains("引き継ぎたいとの申し出"), "{shown}");
    assert!(
        shown.contains("もう有効ではありません")
            && shown.contains("兵庫県商工会連合会 が担当しています"),
        "the owner is told the question was dropped and who holds the case: {shown}"
    );
    let (_, show, _) = cases(d, &["show", "1"]);
    assert!(show.contains("hub: hyogo-chamber"), "{show}");
    assert_eq!(show.matches("forward_withdrawn").count(), 2, "{show}");
    // Dropped for good: not mentioned again.
    let shown = chat(d, "");
    assert!(!shown.contains("もう有効ではありません"), "{shown}");
}

/// A hub named only by the national directory is staffed by no one in the
/// network: a forward there is refused, naming the network desk (the
/// fallback) to forward to instead, and nothing is written for it. An
/// unknown hub is refused with the hubs that can take the case.
#[test]
fn a_forward_to_a_directory_hub_or_an_unknown_hub_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    consult(dir.path());
    let d = dir.path();
    let inbox = d.join("inbox");
    let inbox_arg = inbox.to_string_lossy().to_string();
    let forward = |to: &str| {
        cases(
            d,
            &[
                "forward",
                "1",
                "--to",
                to,
                "--reason",
                "県外の拠点へ",
                "--inbox",
                &inbox_arg,
                "--as",
                "cli:tanaka",
                "--hub",
                "hyogo-pro",
            ],
        )
    };
    let (code, out, err) = forward("directory-yorozu-01");
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("全国名簿の拠点") && err.contains("network-desk"),
        "the refusal names the desk to forward to: {err}"
    );
    assert!(!inbox.join("directory-yorozu-01").exists());
    let (_, show, _) = cases(d, &["show", "1"]);
    assert!(show.contains("hub: hyogo-pro"), "{show}");

    let (code, _, err) = forward("nosuch");
    assert_eq!(code, 1);
    assert!(
        err.contains("nosuch という拠点は routing.yaml にありません")
            && err.contains("hyogo-yorozu")
            && !err.contains("directory-"),
        "the refusal lists the network's hubs only: {err}"
    );
    let (code, _, err) = forward("hyogo-pro");
    assert_eq!(code, 1);
    assert!(err.contains("すでに"), "{err}");
}

/// `cases list --hub` names a hub that is not the network's as `claim`
/// does, with the closest one, instead of showing "no cases"; and the
/// commands that work on stored data refuse a database file that does not
/// exist instead of creating an empty one.
#[test]
fn an_unknown_hub_or_a_missing_database_is_named_not_shown_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    consult(dir.path());
    let d = dir.path();

    let (code, out, _) = cases(d, &["list", "--hub", "hyogo-pro"]);
    assert_eq!(code, 0);
    assert!(out.contains("C-000001"), "{out}");
    let (code, out, err) = cases(d, &["list", "--hub", "bogus"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("there is no hub `bogus`")
            && err.contains("network-desk")
            && !err.contains("directory-")
            && !out.contains("案件はありません"),
        "{out}{err}"
    );
    let (code, _, err) = cases(d, &["list", "--hub", "HYOGO-PRO"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean `hyogo-pro`?"), "{err}");
    let (code, _, err) = cases(d, &["list", "--hub", "directory-yorozu-01"]);
    assert_eq!(code, 1);
    assert!(err.contains("national directory"), "{err}");

    let missing = d.join("typo.db");
    let m = missing.to_str().unwrap();
    let dialogs = dialogs_dir();
    let dialogs = dialogs.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["cases", "list"],
        vec!["cases", "show", "1"],
        vec!["cases", "due"],
        vec![
            "cases",
            "claim",
            "1",
            "--as",
            "cli:tanaka",
            "--hub",
            "hyogo-pro",
        ],
        vec!["my-data"],
        vec!["forget", "--user", "terminal:local", "--yes"],
        vec!["dialogs", "versions"],
        vec!["report", "--from", "2026-04-01", "--to", "2027-03-31"],
    ];
    for args in commands {
        let out = bin()
            .args(&args)
            .args(["--db", m, "--dialogs", dialogs])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("there is no database {m}")) && err.contains("madoguchi chat"),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created {m}");
    }
}
