//! Delivery of routed cases to the local inbox (the terminal transport).
//!
//! Staff of a hub without a chat integration receive each case as a
//! Markdown file in `INBOX/<hub>/C-000042.md`. The outbox row is marked
//! delivered only after the file is written and synced, and the file name
//! is derived from the case id, so a retry after a crash rewrites the same
//! file instead of making a second one.

use crate::store::{AttemptOutcome, Store, StoreError};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One delivered case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDelivery {
    pub hub_id: String,
    pub path: PathBuf,
}

/// Delivers every due local delivery; returns what was delivered.
pub async fn deliver_local(
    store: &dyn Store,
    inbox: &Path,
    now: DateTime<Utc>,
) -> Result<Vec<LocalDelivery>, StoreError> {
    let mut done = Vec::new();
    for d in store.due_deliveries("local", now, 100).await? {
        let Some(case) = store.case(d.case).await? else {
            continue;
        };
        // Inbox names come from the routing file; keep them to one safe
        // path segment whatever an administrator wrote.
        let dir_name: String = d
            .target
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let dir = inbox.join(if dir_name.is_empty() {
            "inbox".to_string()
        } else {
            dir_name
        });
        let path = dir.join(format!("{}.md", case.id));
        let copy = if d.hub_id == case.route.primary.id {
            ""
        } else {
            "（写し / copy）"
        };
        let body = format!(
            "# {id} {headline}{copy}\n\n- 送付先 / to: {hub}\n- ルール / rule: {rule} — {reason}\n- 段階 / step: {step}\n- 受付 / received: {at}\n\n{summary}\n",
            id = case.id,
            headline = case.headline,
            hub = d.hub_id,
            rule = case.route.rule,
            reason = case.route.reason,
            step = case.step,
            at = case.created_at.to_rfc3339(),
            summary = case.summary_plain,
        );
        let written = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = path.with_extension("md.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(body.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        match written {
            Ok(()) => {
                store
                    .record_attempt(
                        d.id,
                        &AttemptOutcome::Delivered {
                            external_id: Some(path.display().to_string()),
                        },
                        now,
                    )
                    .await?;
                done.push(LocalDelivery {
                    hub_id: d.hub_id.clone(),
                    path,
                });
            }
            Err(e) => {
                let at = now + chrono::Duration::seconds(30 * (d.attempts + 1).min(20));
                store
                    .record_attempt(
                        d.id,
                        &AttemptOutcome::Retry {
                            at,
                            error: format!("cannot write {}: {e}", path.display()),
                        },
                        now,
                    )
                    .await?;
            }
        }
    }
    Ok(done)
}
