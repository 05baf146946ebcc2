//! Group fsync of SQLite's WAL, outside the write lock.
//!
//! With `synchronous = FULL`, SQLite fsyncs the WAL inside `COMMIT`, while
//! the transaction still holds the database's one write lock, so no batch
//! of owners' steps could be written while the batch before waited for
//! the disk: the fsync's wait (a quarter of the real consultation's time
//! per batch) was added to every batch. The connection that commits
//! owners' steps therefore runs with `synchronous = NORMAL`, where
//! `COMMIT` writes the WAL frames without an fsync, and the store calls
//! [`WalSync::after_commit`] once the commit has returned: it returns
//! when an fsync of the WAL file that *began after that commit* has
//! finished. The runner replies to an owner only after `commit_steps`
//! returns, so an acknowledged answer is on disk exactly as with `FULL`;
//! meanwhile the next batch is already being written (the group
//! committer keeps two batches in flight for SQLite, see
//! [`Store::batches_in_flight`](super::Store::batches_in_flight)).
//!
//! Why this is as safe as `FULL`:
//! - fsync works on the file, not on the descriptor: an fsync of the WAL
//!   through our own descriptor flushes the frames SQLite wrote through
//!   its own. The file is opened anew for each fsync, so a WAL that was
//!   removed and made again is never missed through a stale descriptor.
//! - SQLite in `NORMAL` mode still syncs the WAL header when the WAL
//!   starts over, and syncs the WAL before and the database after a
//!   checkpoint; what it leaves out is only the fsync at commit, which
//!   this module does.
//! - Another connection can read a batch between its commit and its
//!   fsync. Everything that acts on what it reads outside the database
//!   (a case posted to a hub, a relay, a timer) first leases it with a
//!   write transaction on the pool, whose connections keep `FULL`: that
//!   commit fsyncs the WAL, which holds the batch's frames before its own.
//! - Several commits that end while one fsync runs wait for the next
//!   fsync, which covers them all: one fsync per batch at most, fewer
//!   under load.
//!
//! A failed fsync fails every commit waiting for it and every later one,
//! without trying again: the store writes nothing more until madoguchi is
//! restarted (as PostgreSQL stops at a failed fsync). Trying again would
//! not be safe. Linux reports a failed writeback once per open file and
//! may drop the pages it could not write, so a second fsync can succeed
//! while frames of a committed batch never reached the disk, and the
//! process would go on answering from pages that a restart would not
//! find. After a restart SQLite recovers from what the WAL on disk holds,
//! and that is the truth the bot continues from. The owners of the failed
//! batch are told to try again; whichever way their step went, their next
//! message is read against the question they saw (`Input::TextUnder`), so
//! an answer resent after a step that did reach the disk is not taken for
//! the next question's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What flushes the WAL to disk: the real fsync, or a test's stand-in.
pub type SyncFn = Arc<dyn Fn() -> std::io::Result<()> + Send + Sync>;

/// Group fsync of the WAL (see the module's documentation).
pub struct WalSync {
    sync: SyncFn,
    state: Mutex<State>,
    done: Notify,
}

#[derive(Default)]
struct State {
    /// Commits counted so far, each numbered once it has returned.
    committed: u64,
    /// Every commit up to this number is on disk.
    synced: u64,
    /// An fsync is under way.
    running: bool,
    /// The first failed fsync: every commit since fails with it.
    failed: Option<(std::io::ErrorKind, String)>,
}

impl State {
    fn failure(&self) -> Option<std::io::Error> {
        self.failed
            .as_ref()
            .map(|(kind, text)| std::io::Error::new(*kind, text.clone()))
    }
}

impl std::fmt::Debug for WalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalSync")
    }
}

impl WalSync {
    /// Syncs the database file `db`'s WAL (`db` followed by `-wal`).
    pub fn for_database(db: PathBuf) -> WalSync {
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let file = Mutex::new(WalFile {
            wal: PathBuf::from(wal),
            db,
            open: None,
            dir_synced: false,
        });
        WalSync::with_sync(Arc::new(move || file.lock().expect("WAL file").sync()))
    }

    pub fn with_sync(sync: SyncFn) -> WalSync {
        WalSync {
            sync,
            state: Mutex::new(State::default()),
            done: Notify::new(),
        }
    }

    /// The failed fsync that stopped this WAL's writes, if one did.
    pub fn failure(&self) -> Option<String> {
        let s = self.state.lock().expect("WAL sync state");
        s.failed.as_ref().map(|(_, text)| text.clone())
    }

    /// Call after a commit has returned; returns once an fsync that began
    /// after it has finished. After a failed fsync it fails at once.
    pub async fn after_commit(&self) -> std::io::Result<()> {
        let mine = {
            let mut s = self.state.lock().expect("WAL sync state");
            if let Some(e) = s.failure() {
                return Err(e);
            }
            s.committed += 1;
            s.committed
        };
        loop {
            // Registered before the state is read, so a wake-up between the
            // read and the wait is not missed.
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let target = {
                let mut s = self.state.lock().expect("WAL sync state");
                if s.synced >= mine {
                    return Ok(());
                }
                if let Some(e) = s.failure() {
                    return Err(e);
                }
                if s.running {
                    None
                } else {
                    s.running = true;
                    // Every commit counted so far has returned, so this
                    // fsync covers them all.
                    Some(s.committed)
                }
            };
            let Some(target) = target else {
                notified.await;
                continue;
            };
            let sync = self.sync.clone();
            let r = match tokio::task::spawn_blocking(move || sync()).await {
                Ok(r) => r,
                Err(e) => Err(std::io::Error::other(format!("the fsync task failed: {e}"))),
            };
            {
                let mut s = self.state.lock().expect("WAL sync state");
                s.running = false;
                match &r {
                    Ok(()) => s.synced = s.synced.max(target),
                    Err(e) => {
                        s.failed.get_or_insert((e.kind(), e.to_string()));
                    }
                }
            }
            // Waiters whose commits this fsync covered return, and after a
            // failure all of them (with the error); the others start the
            // next one.
            self.done.notify_waiters();
            r?;
        }
    }
}

/// The WAL file as last opened for syncing.
struct WalFile {
    wal: PathBuf,
    db: PathBuf,
    /// The descriptor, with the device and inode it was opened on.
    open: Option<(std::fs::File, u64, u64)>,
    dir_synced: bool,
}

impl WalFile {
    fn sync(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let named = |path: &std::path::Path, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("cannot fsync {}: {e}", path.display()))
        };
        // The first fsync also makes the files' directory entries durable
        // (SQLite does the same the first time it syncs a new file).
        if !self.dir_synced {
            let dir = match self.db.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| named(&dir, e))?;
            self.dir_synced = true;
        }
        // The descriptor is kept from one fsync to the next (opening and
        // closing the file each time cost more than the fsync's own CPU),
        // but only while the path still names the file it was opened on:
        // were the WAL removed and made again, an fsync through the old
        // descriptor would flush nothing of the new one.
        match std::fs::metadata(&self.wal) {
            Ok(m) => {
                let current =
                    matches!(&self.open, Some((_, dev, ino)) if *dev == m.dev() && *ino == m.ino());
                if !current {
                    let f = std::fs::File::open(&self.wal).map_err(|e| named(&self.wal, e))?;
                    let m = f.metadata().map_err(|e| named(&self.wal, e))?;
                    self.open = Some((f, m.dev(), m.ino()));
                }
                let (f, _, _) = self.open.as_ref().expect("opened above");
                f.sync_data().map_err(|e| named(&self.wal, e))
            }
            // No WAL: the last connection closed and checkpointed it into
            // the database file, which it synced; syncing the database
            // again costs little and needs no such argument.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.open = None;
                std::fs::File::open(&self.db)
                    .and_then(|f| f.sync_data())
                    .map_err(|e| named(&self.db, e))
            }
            Err(e) => Err(named(&self.wal, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in fsync that blocks until the test lets it finish, and
    /// counts how often it began.
    struct Gate {
        began: AtomicUsize,
        go: std::sync::Mutex<std::sync::mpsc::Receiver<std::io::Result<()>>>,
    }

    fn gated() -> (
        Arc<Gate>,
        std::sync::mpsc::Sender<std::io::Result<()>>,
        WalSync,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let gate = Arc::new(Gate {
            began: AtomicUsize::new(0),
            go: std::sync::Mutex::new(rx),
        });
        let g = gate.clone();
        let sync = WalSync::with_sync(Arc::new(move || {
            g.began.fetch_add(1, Ordering::SeqCst);
            g.go.lock().unwrap().recv().unwrap()
        }));
        (gate, tx, sync)
    }

    async fn until(f: impl Fn() -> bool) {
        while !f() {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// A commit that has returned, waiting for its fsync in a task.
    fn committed(sync: &Arc<WalSync>) -> tokio::task::JoinHandle<std::io::Result<()>> {
        let s = sync.clone();
        tokio::spawn(async move { s.after_commit().await })
    }

    /// How many commits have been counted (each is counted before it
    /// waits), so a test knows one is waiting without timing it.
    fn counted(sync: &WalSync) -> u64 {
        sync.state.lock().unwrap().committed
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_during_an_fsync_waits_for_the_next_one() {
        let (gate, go, sync) = gated();
        let sync = Arc::new(sync);
        let first = committed(&sync);
        until(|| gate.began.load(Ordering::SeqCst) == 1).await;
        // A commit that returns while the first fsync runs.
        let second = committed(&sync);
        until(|| counted(&sync) == 2).await;
        go.send(Ok(())).unwrap();
        first.await.unwrap().unwrap();
        // The first fsync began before the second commit: the second must
        // wait for an fsync of its own.
        until(|| gate.began.load(Ordering::SeqCst) == 2).await;
        assert!(
            !second.is_finished(),
            "released by an fsync that began before its commit"
        );
        go.send(Ok(())).unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(gate.began.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_waiting_together_share_one_fsync() {
        let (gate, go, sync) = gated();
        let sync = Arc::new(sync);
        let first = committed(&sync);
        until(|| gate.began.load(Ordering::SeqCst) == 1).await;
        let waiting: Vec<_> = (0..5).map(|_| committed(&sync)).collect();
        // All five have returned from their commits before the first fsync
        // ends.
        until(|| counted(&sync) == 6).await;
        go.send(Ok(())).unwrap();
        first.await.unwrap().unwrap();
        until(|| gate.began.load(Ordering::SeqCst) == 2).await;
        go.send(Ok(())).unwrap();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        assert_eq!(
            gate.began.load(Ordering::SeqCst),
            2,
            "the five waited for one fsync"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_fails_its_commits_and_every_later_one_without_trying_again() {
        let (gate, go, sync) = gated();
        let sync = Arc::new(sync);
        assert_eq!(sync.failure(), None);
        let first = committed(&sync);
        until(|| gate.began.load(Ordering::SeqCst) == 1).await;
        // A commit that waits for the next fsync when the first fails.
        let waiting = committed(&sync);
        until(|| counted(&sync) == 2).await;
        go.send(Err(std::io::Error::other("disk gone"))).unwrap();
        let e = first.await.unwrap().unwrap_err();
        assert!(e.to_string().contains("disk gone"), "{e}");
        // (Bounded here and below: an fsync started now would be held by
        // the gate.)
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("a waiting commit fails with the fsync it waited for")
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("disk gone"), "{e}");
        // A later commit fails too: an fsync that succeeded now would not
        // prove that the first batch's frames reached the disk.
        let later = tokio::time::timeout(std::time::Duration::from_secs(10), committed(&sync))
            .await
            .expect("a later commit fails at once, without an fsync")
            .unwrap()
            .unwrap_err();
        assert!(later.to_string().contains("disk gone"), "{later}");
        assert_eq!(sync.failure().as_deref(), Some("disk gone"));
        assert_eq!(
            gate.began.load(Ordering::SeqCst),
            1,
            "no fsync was tried after the failed one"
        );
    }

    #[test]
    fn a_wal_made_again_is_opened_again() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let wal = dir.path().join("x.db-wal");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(&wal, b"frames").unwrap();
        let mut f = WalFile {
            wal: wal.clone(),
            db,
            open: None,
            dir_synced: false,
        };
        let inode = |f: &WalFile| f.open.as_ref().map(|(_, _, ino)| *ino);
        f.sync().unwrap();
        let first = std::fs::metadata(&wal).unwrap().ino();
        assert_eq!(inode(&f), Some(first));
        f.sync().unwrap();
        assert_eq!(
            inode(&f),
            Some(first),
            "kept while the path names the same file"
        );
        // Kept alive so that the new file cannot reuse the inode number.
        let _old = std::fs::File::open(&wal).unwrap();
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"new frames").unwrap();
        let second = std::fs::metadata(&wal).unwrap().ino();
        assert_ne!(first, second);
        f.sync().unwrap();
        assert_eq!(
            inode(&f),
            Some(second),
            "the descriptor of the removed WAL was dropped"
        );
        std::fs::remove_file(&wal).unwrap();
        f.sync().unwrap();
        assert_eq!(inode(&f), None, "no WAL: the database file was synced");
    }

    #[tokio::test]
    async fn the_real_fsync_syncs_the_wal_or_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"").unwrap();
        // No WAL yet: the database file is synced instead.
        WalSync::for_database(db.clone())
            .after_commit()
            .await
            .unwrap();
        std::fs::write(dir.path().join("x.db-wal"), b"frames").unwrap();
        WalSync::for_database(db.clone())
            .after_commit()
            .await
            .unwrap();
        // Neither file: an error that names what is missing.
        let gone = WalSync::for_database(dir.path().join("missing.db"));
        let e = gone.after_commit().await.unwrap_err();
        assert!(e.to_string().contains("missing.db"), "{e}");
    }
}
