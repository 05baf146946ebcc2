//! The local inbox's sender: each case a Markdown file in the hub's inbox
//! folder, written once and atomically (see [`crate::delivery`] for the
//! file's rules). Writing is idempotent by itself: a file already there
//! with this delivery's marker is taken as delivered, so the sender needs
//! no [`Sender::find_existing`].

use super::{Fail, Sender, Sent};
use crate::delivery::{
    file_name, marker, on_disk, render_file, target_dir, write_atomically, OnDisk, TRANSPORT,
};
use crate::store::{CaseRecord, DeliveryRecord};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct LocalSender {
    inbox: PathBuf,
}

impl LocalSender {
    pub fn new(inbox: &Path) -> LocalSender {
        LocalSender {
            inbox: inbox.to_path_buf(),
        }
    }
}

#[async_trait]
impl Sender for LocalSender {
    fn transport(&self) -> &str {
        TRANSPORT
    }

    /// No lease beyond the instant it is taken: a local write takes
    /// milliseconds, and a `chat` killed while writing must not keep its
    /// case from the next `chat` for minutes. Writing is idempotent by the
    /// file's marker, so a taken-over delivery whose file was written is
    /// simply marked delivered; the late result of the killed process, if
    /// any, is refused by the lease check.
    fn lease(&self) -> Option<Duration> {
        Some(Duration::ZERO)
    }

    async fn send(&self, d: &DeliveryRecord, case: &CaseRecord) -> Result<Sent, Fail> {
        let path = target_dir(&self.inbox, &d.target).join(file_name(d));
        let written = on_disk(&path, &marker(d, case)).and_then(|state| match state {
            OnDisk::Ours => Ok(()),
            OnDisk::Absent => write_atomically(&path, &render_file(d, case)),
            OnDisk::Foreign => Err(std::io::Error::other(format!(
                "{} exists and is not this delivery's file (left by another database?): move it away and the case is delivered at the next start",
                path.display()
            ))),
        });
        match written {
            // The path is stored absolute, so `forget` finds the file
            // whatever folder it is run from.
            Ok(()) => Ok(Sent {
                external_id: Some(
                    std::fs::canonicalize(&path)
                        .unwrap_or(path)
                        .display()
                        .to_string(),
                ),
            }),
            // A folder that cannot be written is for an administrator to
            // fix; the case waits for it however long that takes (a local
            // delivery never fails for good), retried 30 s later per
            // attempt, at most 10 minutes apart.
            Err(e) => Err(Fail::RetryAfter {
                wait: Duration::from_secs(30 * (d.attempts + 1).clamp(1, 20) as u64),
                scope: None,
                error: format!("cannot write {}: {e}", path.display()),
            }),
        }
    }
}
