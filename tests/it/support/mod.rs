//! Helpers shared by the integration tests.

pub mod discord;

use chrono::{DateTime, TimeZone, Utc};
use std::path::PathBuf;

/// The repository's `dialogs/` folder.
pub fn dialogs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialogs")
}

/// A fixed instant for tests: 2026-11-21 10:00 in Japan.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap()
}
