//! Helpers shared by the integration tests.

pub mod db;
pub mod discord;

use chrono::{DateTime, TimeZone, Utc};
use std::path::PathBuf;

/// The repository's `dialogs/` folder.
pub fn dialogs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialogs")
}

/// Runs the `madoguchi` binary to its end without blocking the test's
/// runtime. A test beside a running app must use this, not
/// `std::process::Command::output()`: `#[tokio::test]` runs every task on
/// the test's one thread, so a blocking wait freezes the app mid-way, and
/// an app task that had just begun a write transaction then holds SQLite's
/// write lock until the child gives up ("database is locked" after the
/// child's busy timeout).
pub async fn madoguchi_cli(
    args: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("cannot run the madoguchi binary"))
        .await
        .expect("the thread running the madoguchi binary panicked")
}

/// Runs `madoguchi cases ARGS` as staff `cli:tanaka` on the app's
/// database and dialogs, beside the running app; asserts it succeeded and
/// returns what it printed.
pub async fn cases_cli(db: &std::path::Path, dialogs: &std::path::Path, args: &[&str]) -> String {
    let mut all: Vec<std::ffi::OsString> = vec!["cases".into()];
    all.extend(args.iter().map(Into::into));
    all.extend(["--as".into(), "cli:tanaka".into(), "--db".into()]);
    all.push(db.into());
    all.push("--dialogs".into());
    all.push(dialogs.into());
    let out = madoguchi_cli(all).await;
    let so = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{so}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// A fixed instant for tests: 2026-11-21 10:00 in Japan.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap()
}

/// Copies the shipped dialogs into `to`, for tests that edit them.
pub fn copy_dialogs(to: &std::path::Path) {
    for e in std::fs::read_dir(dialogs_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// Replaces a file's contents the way careful editors save: a new file
/// renamed over the old one, so a watcher never reads half a file.
pub fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("yaml.saving");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A stand-in for the WAL's fsync ([`madoguchi::store::walsync::SyncFn`])
/// that succeeds until the returned switch is set, then fails with an
/// I/O error: a disk that stops confirming writes. It never syncs, so
/// only what the store does after a failure is tested, not durability.
pub fn failing_fsync() -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    madoguchi::store::walsync::SyncFn,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let fail = Arc::new(AtomicBool::new(false));
    let switch = fail.clone();
    let sync: madoguchi::store::walsync::SyncFn = Arc::new(move || {
        if fail.load(Ordering::SeqCst) {
            Err(std::io::Error::other("injected write error"))
        } else {
            Ok(())
        }
    });
    (switch, sync)
}
