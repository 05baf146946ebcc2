//! Delivery of routed cases to the local inbox (the terminal transport).
//!
//! Staff of a hub without a chat integration receive each case as a
//! Markdown file `INBOX/<hub>/C-000042-d7.md`. The inbox is an outbox
//! target like Discord (see `discord::outbox`):
//!
//! - The delivery rows are written in the same transaction as the case, so
//!   a crash after the case is saved leaves them pending; every program
//!   that opens the store for consultations (`chat`, `chat --resume`,
//!   `run`) calls [`deliver_local`] first, so nothing waits for another
//!   consultation to finish.
//! - The file name carries the delivery id, not only the case id: copies of
//!   one case to two hubs, and the delivery to a hub a case was forwarded
//!   to, never share a file even when their inbox folders are the same.
//! - Each file is written once, atomically: a temporary file in the same
//!   folder, written and fsync'd, renamed over the final name, then the
//!   folder fsync'd so the rename itself survives a power cut. A file is
//!   therefore either absent or complete.
//! - The row is marked delivered after the rename. A crash between the two
//!   leaves a complete file and a pending row; the next run finds the file
//!   with this delivery's marker (its id, case and the case's creation
//!   time) and marks the row delivered instead of writing it again. A file
//!   of that name without the marker (left by another database) is never
//!   overwritten: the delivery is retried later with an error saying so.
//! - Temporary files left by a crash (`*.tmp`) are removed at the start of
//!   every run.
//! - When an owner deletes their data ([`tombstone_local`]), each inbox
//!   copy of their cases is replaced, atomically again, by a tombstone
//!   that keeps only the case id, like the Discord posts.

use crate::domain::UserKey;
use crate::escape;
use crate::store::{AttemptOutcome, CaseRecord, DeliveryRecord, ForgetReport, Store, StoreError};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One delivered case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDelivery {
    pub hub_id: String,
    pub path: PathBuf,
}

/// The transport name of the local inbox in delivery rows.
pub const TRANSPORT: &str = "local";

/// The folder of an inbox target. Inbox names come from the routing file;
/// they are kept to one safe path segment whatever an administrator wrote.
pub fn target_dir(inbox: &Path, target: &str) -> PathBuf {
    let dir_name: String = target
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    inbox.join(if dir_name.is_empty() {
        "inbox".to_string()
    } else {
        dir_name
    })
}

/// The file of one delivery in its inbox folder.
pub fn file_name(d: &DeliveryRecord) -> String {
    format!("{}-d{}.md", d.case, d.id)
}

/// The line that identifies the delivery a file belongs to. The case's
/// creation time tells this database's delivery 1 from another's.
pub(crate) fn marker(d: &DeliveryRecord, case: &CaseRecord) -> String {
    format!(
        "<!-- madoguchi delivery {} case {} created {} -->",
        d.id,
        case.id,
        case.created_at.to_rfc3339()
    )
}

/// The file's text: headline, routing facts, the sheet, and the marker.
/// Owner text (the headline and the sheet) and the routing reason, which
/// quotes answers, are escaped for Markdown and HTML.
pub fn render_file(d: &DeliveryRecord, case: &CaseRecord) -> String {
    let copy = if d.hub_id == case.route.primary.id {
        ""
    } else {
        "（写し / copy）"
    };
    // A Markdown renderer joins consecutive lines; two spaces at the end of
    // a line are a hard line break, so the sheet keeps its lines.
    let summary = escape::inbox_markdown(&case.summary_plain)
        .split('\n')
        .collect::<Vec<_>>()
        .join("  \n");
    format!(
        "# {id} {headline}{copy}\n\n- 送付先 / to: {hub}\n- ルール / rule: {rule} — {reason}\n- 段階 / step: {step}\n- 受付 / received: {at}\n\n{summary}\n\n{marker}\n",
        id = case.id,
        headline = escape::inbox_line(&case.headline),
        hub = escape::inbox_line(&d.hub_id),
        rule = escape::inbox_line(&case.route.rule),
        reason = escape::inbox_line(&case.route.reason),
        step = case.step,
        // Japan time, as staff read every other time the bot shows.
        at = case
            .created_at
            .with_timezone(&crate::domain::calendar::jst())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        marker = marker(d, case),
    )
}

/// Writes `body` to `path` atomically: a temporary file in the same folder,
/// fsync'd, renamed over `path`, and the folder fsync'd.
pub(crate) fn write_atomically(path: &Path, body: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("an inbox file needs a folder"))?;
    std::fs::create_dir_all(dir)?;
    // The process id keeps two programs delivering from one database at
    // once from writing into the same temporary file; each renames a
    // complete file of its own.
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(body.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows has no directory handle to sync; NTFS journals renames.
        let _ = dir;
        Ok(())
    }
}

/// Removes temporary files a crash left in the inbox's folders. A
/// temporary file is never the only copy of anything: its delivery is
/// still pending and is written again.
pub fn clean_leftovers(inbox: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let Ok(hubs) = std::fs::read_dir(inbox) else {
        return Ok(0);
    };
    for hub in hubs.flatten() {
        if !hub.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        for f in std::fs::read_dir(hub.path())?.flatten() {
            let name = f.file_name();
            if is_temporary(&name.to_string_lossy()) {
                std::fs::remove_file(f.path())?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// A temporary inbox file: `C-000001-d1.md.<pid>.tmp` (or, from earlier
/// versions, `C-000001.md.tmp`).
fn is_temporary(name: &str) -> bool {
    name.ends_with(".tmp") && name.contains(".md.")
}

/// What to do about one due delivery, given what is on disk.
pub(crate) enum OnDisk {
    /// No file yet: write it.
    Absent,
    /// This delivery's complete file is there (a crash came before the row
    /// was marked): mark it delivered.
    Ours,
    /// A file of that name that is not this delivery's.
    Foreign,
}

pub(crate) fn on_disk(path: &Path, marker: &str) -> std::io::Result<OnDisk> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.contains(marker) => Ok(OnDisk::Ours),
        Ok(_) => Ok(OnDisk::Foreign),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OnDisk::Absent),
        // Not UTF-8: certainly not ours.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(OnDisk::Foreign),
        Err(e) => Err(e),
    }
}

/// Delivers every due local delivery through the outbox (with the
/// [`LocalSender`](crate::outbox::local::LocalSender) alone, at `now`);
/// returns what was delivered (also those found already written).
pub async fn deliver_local(
    store: &dyn Store,
    inbox: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<LocalDelivery>, StoreError> {
    deliver_local_shared(store.shared(), inbox, now).await
}

/// [`deliver_local`] for a store already shared.
pub async fn deliver_local_shared(
    store: std::sync::Arc<dyn Store>,
    inbox: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<LocalDelivery>, StoreError> {
    if let Err(e) = clean_leftovers(inbox) {
        tracing::warn!(error = %e, inbox = %inbox.display(), "cannot remove temporary files left in the inbox");
    }
    let outbox = crate::outbox::Outbox::new(
        store,
        std::sync::Arc::new(crate::runner::FixedClock::new(now)),
        crate::outbox::OutboxConfig::default(),
    )
    .with_sender(std::sync::Arc::new(crate::outbox::local::LocalSender::new(
        inbox,
    )));
    Ok(outbox
        .drain()
        .await?
        .into_iter()
        .filter(|h| h.delivered())
        .filter_map(|h| match h.result {
            crate::outbox::Handling::Recorded(AttemptOutcome::Delivered { external_id }) => {
                Some(LocalDelivery {
                    hub_id: h.delivery.hub_id,
                    path: PathBuf::from(external_id.unwrap_or_default()),
                })
            }
            _ => None,
        })
        .collect())
}

/// The tombstone an inbox copy becomes when its owner deletes their data.
fn tombstone(case: &str) -> String {
    format!(
        "# {case}（削除済み / deleted）\n\n相談者の依頼により、この案件の内容を削除しました。同意と第三者提供の記録だけを法律に基づき保管しています。  \nThe owner asked for their data to be deleted; only the consent and hand-over record is kept, as the law requires.\n"
    )
}

/// Why [`forget_with_inbox`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// The store refused: nothing was deleted.
    #[error("the data could not be deleted, and nothing was changed: {0}")]
    Store(#[from] StoreError),
    /// The store deleted the data, but an inbox copy is still there.
    #[error("the data was deleted from the database, but a copy in the inbox {} could not be replaced: {source}", inbox.display())]
    Inbox {
        inbox: PathBuf,
        source: std::io::Error,
    },
}

/// Deletes an owner's data ([`Store::forget_user`]) and replaces the inbox
/// copies of their cases with tombstones ([`tombstone_local`]): what
/// `madoguchi forget` and the terminal chat's 「データ削除」 both do.
/// Returns the store's report and how many inbox files were replaced.
///
/// The deliveries are read before the deletion, which may remove what
/// names them, and the files are replaced after it, so that no delivery can
/// write a copy again afterwards.
pub async fn forget_with_inbox(
    store: &dyn Store,
    user: &UserKey,
    inbox: &Path,
    now: DateTime<Utc>,
) -> Result<(ForgetReport, usize), ForgetError> {
    let mut deliveries = Vec::new();
    for c in store.cases_of_user(user).await? {
        deliveries.extend(store.deliveries(c.id).await?);
    }
    let report = store.forget_user(user, now).await?;
    let files = tombstone_local(inbox, &deliveries).map_err(|source| ForgetError::Inbox {
        inbox: inbox.to_path_buf(),
        source,
    })?;
    Ok((report, files))
}

/// Replaces every inbox copy of `deliveries` (the local deliveries of a
/// forgotten owner's cases, read before or after the deletion) with a
/// tombstone: the file the row names, and the file the row would have been
/// written to (a crash may have come between writing and marking it).
/// Returns how many files were replaced.
pub fn tombstone_local(inbox: &Path, deliveries: &[DeliveryRecord]) -> std::io::Result<usize> {
    let mut n = 0;
    for d in deliveries.iter().filter(|d| d.transport == TRANSPORT) {
        let dir = target_dir(inbox, &d.target);
        let mut paths = vec![dir.join(file_name(d))];
        if let Some(p) = d.external_id.as_deref() {
            paths.push(PathBuf::from(p));
        }
        let prefix = format!("{}.", file_name(d));
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && is_temporary(&name) {
                let _ = std::fs::remove_file(f.path());
            }
        }
        let mut seen = Vec::new();
        for p in paths {
            let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if seen.contains(&key) || !p.exists() {
                continue;
            }
            write_atomically(&p, &tombstone(&d.case.to_string()))?;
            seen.push(key);
            n += 1;
        }
    }
    Ok(n)
}
