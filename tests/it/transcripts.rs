//! Runs every transcript in `dialogs/tests/` through the real runner and a
//! throwaway SQLite database, and reports all failures at once.

use crate::support::dialogs_dir;

#[tokio::test]
async fn dialog_transcripts_pass() {
    transcripts_pass_on(madoguchi::transcript::Backend::Sqlite).await;
}

/// The same transcripts on PostgreSQL, each in a schema of its own.
#[tokio::test]
async fn dialog_transcripts_pass_on_postgres() {
    let Some(url) = madoguchi::store::postgres::test_url("dialog_transcripts_pass_on_postgres")
    else {
        return;
    };
    transcripts_pass_on(madoguchi::transcript::Backend::Postgres(url)).await;
}

async fn transcripts_pass_on(backend: madoguchi::transcript::Backend) {
    let dir = dialogs_dir();
    let outcomes = madoguchi::transcript::run_dir_on(&dir, &dir.join("tests"), &backend)
        .await
        .expect("transcripts load");
    assert!(
        outcomes.len() >= 10,
        "expected the shipped transcript suite, found {} files",
        outcomes.len()
    );
    let mut report = String::new();
    for (file, o) in &outcomes {
        for f in &o.failures {
            report.push_str(&format!("{file}:{}: {}\n", f.line, f.message));
        }
        if !o.failures.is_empty() {
            report.push_str(&format!("--- conversation of {file} ---\n{}\n", o.log));
        }
    }
    assert!(report.is_empty(), "transcript failures:\n{report}");
}

/// A transcript that expects something false must fail: the harness is not
/// allowed to pass everything.
#[tokio::test]
async fn a_wrong_transcript_fails() {
    let t = madoguchi::transcript::parse(
        r#"
name: wrong on purpose
steps:
  - start: true
    bot: [この文言はどこにもない]
expect:
  status: completed
  case: true
"#,
    )
    .unwrap();
    let bundle = madoguchi::script::load_dir(&dialogs_dir()).unwrap();
    let o = madoguchi::transcript::run(&t, bundle).await;
    let text: Vec<&str> = o.failures.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(o.failures.len(), 3, "{text:#?}");
    assert!(text[0].contains("does not contain"));
    assert!(text[1].contains("status is active"));
    assert!(text[2].contains("no case was created"));
}
