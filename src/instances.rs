//! Running more than one instance on one PostgreSQL database: the leader
//! lock that lets exactly one of them hold the Discord gateway (Discord
//! sends every event to every connection of a shard, so two connected
//! instances would answer every owner twice), and the health endpoint a
//! process supervisor or load balancer asks.
//!
//! The leader is the instance that holds a session-level advisory lock on
//! a connection of its own. A kill -9 or a crash closes that connection
//! and the server releases the lock at once; a host that vanishes without
//! closing it is noticed by the server's TCP keepalives (set short on this
//! connection). A standby tries the lock every [`CHECK_EVERY`], so it takes
//! over within a few seconds of the server noticing. The leader checks its
//! connection as often, with a timeout, and the gateway is stopped the
//! moment a check fails: it stops before the server gives the lock away.
//! The delivery worker runs on every instance (`outbox::for_run`): its
//! deliveries are leased, so no case is posted by two instances.

use crate::store::Store;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a standby tries the lock and the leader checks it.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// How long the leader's check may take before the lock counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The advisory lock's key (two `int4`s: "mado", "gw"), apart from the
/// one-`bigint` keys the store locks owners with.
const LOCK_KEY: (i32, i32) = (0x6d61646f, 0x6777);

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("the leader lock's connection failed: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the leader lock's connection did not answer within {} s", CHECK_TIMEOUT.as_secs())]
    Timeout,
    #[error("the leader lock was lost (its connection ended or the server released it)")]
    Lost,
}

/// The leader lock, held while this value lives (dropping it closes the
/// connection, which releases the lock).
pub struct LeaderLock {
    conn: PgConnection,
}

impl LeaderLock {
    /// Tries once: the lock if no other instance holds it.
    pub async fn try_acquire(url: &str) -> Result<Option<LeaderLock>, LeaderError> {
        let opts = PgConnectOptions::from_str(url)?
            // The server notices a vanished host after about 5 + 2 × 3 s
            // instead of the system default of hours.
            .options([
                ("tcp_keepalives_idle", "5"),
                ("tcp_keepalives_interval", "2"),
                ("tcp_keepalives_count", "3"),
            ])
            .application_name("madoguchi leader lock")
            .log_statements(log::LevelFilter::Trace);
        let mut conn = opts.connect().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LOCK_KEY.0)
            .bind(LOCK_KEY.1)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(LeaderLock { conn }))
        } else {
            conn.close().await?;
            Ok(None)
        }
    }

    /// Waits until this instance holds the lock, trying every
    /// [`CHECK_EVERY`]. A failed try (the server restarting) is logged and
    /// tried again.
    pub async fn acquire(url: &str) -> LeaderLock {
        loop {
            match Self::try_acquire(url).await {
                Ok(Some(l)) => return l,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot try the leader lock; trying again")
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }

    /// Whether the lock is still held, asked on its own connection.
    pub async fn check(&mut self) -> Result<(), LeaderError> {
        let held = tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                 AND classid = $1::int4::oid AND objid = $2::int4::oid AND objsubid = 2 AND granted)",
            )
            .bind(LOCK_KEY.0)
            .bind(LOCK_KEY.1)
            .fetch_one(&mut self.conn),
        )
        .await
        .map_err(|_| LeaderError::Timeout)??;
        if held {
            Ok(())
        } else {
            Err(LeaderError::Lost)
        }
    }

    /// Resolves when the lock is lost, checking every [`CHECK_EVERY`].
    pub async fn lost(&mut self) -> LeaderError {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            if let Err(e) = self.check().await {
                return e;
            }
        }
    }
}

/// How often a follower reads the audit log even without a notification
/// (the backstop for notifications lost while its listener reconnected).
pub const POLL_EVERY: Duration = Duration::from_secs(10);

/// Follows the reloads other instances on the same database make: woken by
/// `LISTEN/NOTIFY` ([`Store::signal`]), it reads the newest `reload` audit
/// entry and makes its versions current ([`crate::runner::Runner::adopt_reload`]).
/// Notifications are only a wake-up; the audit log is the truth, read
/// also every `poll_every` and whenever the listener's connection was lost
/// (it reconnects, but what was sent meanwhile is gone). `listener`: the
/// store's [`crate::store::postgres::PostgresStore::listener`], or `None`
/// to poll only. Runs until the task is aborted.
///
/// At start it also adopts the newest reload recorded before it started
/// ([`adopt_at_start`]), unless its own dialogs folder is newer than that.
pub async fn follow_signals(
    runner: Arc<crate::runner::Runner>,
    mut listener: Option<sqlx::postgres::PgListener>,
    poll_every: Duration,
) -> tokio::task::JoinHandle<()> {
    // Read before returning, so a reload recorded after this call is
    // followed. If the read fails, everything recorded so far counts as
    // seen once a read succeeds (the first poll).
    let store = runner.store().clone();
    let first = store.last_audit("reload").await;
    if let Ok(Some(e)) = &first {
        match adopt_at_start(&runner, e).await {
            Ok(true) => {
                tracing::info!(by = %e.actor, at = %e.at, "serving the versions of the newest reload on another instance, which supersede this instance's dialogs folder")
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "cannot adopt the newest reload of another instance; serving this instance's dialogs folder")
            }
        }
    }
    tokio::spawn(async move {
        let mut seen = match first {
            Ok(e) => e.map(|e| e.id).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit log to follow reloads; trying again");
                loop {
                    tokio::time::sleep(poll_every).await;
                    if let Ok(e) = store.last_audit("reload").await {
                        break e.map(|e| e.id).unwrap_or(0);
                    }
                }
            }
        };
        let mut tick = tokio::time::interval(poll_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let woken_by = tokio::select! {
                _ = tick.tick() => "poll",
                n = async {
                    match listener.as_mut() {
                        Some(l) => l.try_recv().await,
                        None => std::future::pending().await,
                    }
                } => match n {
                    Ok(Some(_)) => "notification",
                    // The connection was lost: the next try_recv
                    // reconnects, and anything sent meanwhile is lost, so
                    // read now.
                    Ok(None) => "listener reconnect",
                    Err(e) => {
                        tracing::warn!(error = %e, "the signal listener failed; polling until it reconnects");
                        tokio::time::sleep(CHECK_EVERY).await;
                        "listener error"
                    }
                },
            };
            let entry = match store.last_audit("reload").await {
                Ok(Some(e)) if e.id > seen => e,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the audit log to follow reloads");
                    continue;
                }
            };
            match runner.adopt_reload(&entry).await {
                Ok(changed) => {
                    seen = entry.id;
                    if changed {
                        tracing::info!(by = %entry.actor, woken_by, "dialogs reloaded on another instance: now serving its versions");
                    }
                }
                // Kept unseen, so the next wake-up tries again.
                Err(e) => tracing::warn!(error = %e, "cannot adopt another instance's reload"),
            }
        }
    })
}

/// At start: makes current the versions of `newest`, the newest `reload`
/// recorded in the database, when it supersedes this instance's dialogs
/// folder. It does when every version the folder compiles to was already
/// stored when the reload was recorded (the reload replaced them, or kept
/// them): an instance that starts after another one reloaded serves what
/// the other serves, not its own older files. A folder with a version first
/// stored after the reload (new files deployed, then a restart) is newer:
/// it is kept, as a single instance keeps its folder. Returns whether the
/// versions changed.
pub async fn adopt_at_start(
    runner: &crate::runner::Runner,
    newest: &crate::store::AuditEntry,
) -> Result<bool, crate::runner::RunError> {
    let bundle = runner.bundle();
    for f in &bundle.flows {
        match runner.store().load_version(&f.version).await? {
            Some(v) if v.created_at <= newest.at => {}
            _ => return Ok(false),
        }
    }
    runner.adopt_reload(newest).await
}

/// A connection listening on the store's signal channel.
async fn listen(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut l = sqlx::postgres::PgListener::connect(url).await?;
    l.listen(crate::store::postgres::SIGNAL_CHANNEL).await?;
    Ok(l)
}

/// What the health endpoint reports.
pub struct Health {
    store: Arc<dyn Store>,
    backend: &'static str,
    leader: AtomicBool,
}

impl Health {
    pub fn new(store: Arc<dyn Store>, backend: &'static str) -> Arc<Health> {
        Arc::new(Health {
            store,
            backend,
            leader: AtomicBool::new(false),
        })
    }

    pub fn set_leader(&self, leads: bool) {
        self.leader.store(leads, Ordering::SeqCst);
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }
}

/// Serves the health endpoint on 127.0.0.1:`port` (0: any free port; the
/// bound address is returned) until the task is dropped:
/// - `GET /healthz`: 200 while the process runs;
/// - `GET /readyz`: 200 when the database answers and still writes, else
///   503; the body is JSON with `ready`, `leader` and `backend`, and
///   `error` when the store stopped writing after a failed write
///   ([`crate::store::StoreError::WriteFailed`]);
/// - `GET /leader`: 200 on the instance that holds the gateway, 503 on a
///   standby (for a load balancer or a supervisor's checks);
/// - `GET /metrics`: Prometheus text ([`crate::metrics`]).
pub async fn serve_health(
    health: Arc<Health>,
    port: u16,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Json;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(h): State<Arc<Health>>| async move {
                // Any indexed read proves the database answers; a store
                // that stopped writing answers reads but is not ready.
                let failure = h.store.write_failure();
                let ok = failure.is_none()
                    && tokio::time::timeout(
                        Duration::from_secs(2),
                        h.store.load_version("healthz"),
                    )
                    .await
                    .map(|r| r.is_ok())
                    .unwrap_or(false);
                let mut body = serde_json::json!({
                    "ready": ok,
                    "leader": h.is_leader(),
                    "backend": h.backend,
                });
                if let Some(e) = failure {
                    body["error"] = serde_json::Value::String(
                        crate::store::StoreError::WriteFailed(e).to_string(),
                    );
                }
                let code = if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, Json(body))
            }),
        )
        .route(
            "/leader",
            get(|State(h): State<Arc<Health>>| async move {
                if h.is_leader() {
                    (StatusCode::OK, "leader\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "standby\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(h): State<Arc<Health>>| async move {
                match crate::metrics::render(h.store.as_ref(), chrono::Utc::now()).await {
                    Ok(body) => (
                        StatusCode::OK,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            crate::metrics::CONTENT_TYPE,
                        )],
                        body,
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "/metrics: the database did not answer");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; charset=utf-8",
                            )],
                            "the database did not answer; see the bot's log\n".to_string(),
                        )
                    }
                }
            }),
        )
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the health endpoint stopped");
        }
    });
    Ok((addr, task))
}

/// `madoguchi run` on PostgreSQL: waits to be the leader, then runs the
/// bot (gateway and delivery worker) while the lock holds. When the lock
/// is lost the bot is stopped at once and this instance waits to lead
/// again; Ctrl-C or SIGTERM stops it (releasing the lock).
pub async fn run_with_leader_lock(
    cfg: crate::discord::Config,
    token: crate::discord::Token,
    runner: Arc<crate::runner::Runner>,
    url: &str,
    health: Arc<Health>,
) -> Result<(), crate::discord::DiscordError> {
    let stop = crate::discord::shutdown_signal();
    tokio::pin!(stop);
    // Leader or standby, this instance serves the versions the other one
    // reloaded (a standby must have them when it takes over).
    let listener = match listen(url).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for the other instances' signals; following them by polling every {} s", POLL_EVERY.as_secs());
            None
        }
    };
    let _follower = AbortOnDrop(follow_signals(runner.clone(), listener, POLL_EVERY).await);
    loop {
        tracing::info!("standby: waiting for the leader lock");
        let mut lock = tokio::select! {
            l = LeaderLock::acquire(url) => l,
            _ = &mut stop => return Ok(()),
        };
        tracing::info!("this instance leads: connecting to Discord");
        health.set_leader(true);
        let mut bot = match crate::discord::start(cfg.clone(), token.clone(), runner.clone()).await
        {
            Ok(b) => b,
            Err(e) => {
                health.set_leader(false);
                return Err(e);
            }
        };
        tokio::select! {
            r = bot.wait() => {
                health.set_leader(false);
                return r;
            }
            e = lock.lost() => {
                // Another instance may take the lock from now on: stop the
                // gateway before anything else.
                health.set_leader(false);
                tracing::error!(error = %e, "the leader lock was lost: disconnecting from Discord");
                if let Err(e) = bot.shutdown().await {
                    tracing::warn!(error = %e, "stopping the bot after losing the lock");
                }
                drop(lock);
            }
            _ = &mut stop => {
                tracing::info!("shutting down");
                let r = bot.shutdown().await;
                health.set_leader(false);
                drop(lock);
                return r;
            }
        }
    }
}

/// How long a stop may take once asked for (SIGTERM or Ctrl-C).
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Bounds a stop: once SIGTERM or SIGINT arrives, the orderly stop (the
/// gateway closed, the delivery worker's batch given back, the current
/// questions written, the leader lock released) has `grace` to finish;
/// after that, or at a second signal, the process exits at once (status 1).
/// An orderly stop waits for the database or Discord, and when one of them
/// is gone without a word (a vanished host: no reset, only timeouts) a
/// query or a pool's close can wait for minutes; a supervisor's stop must
/// not. Exiting closes the leader lock's connection, so the server frees
/// the lock as soon as it can hear it (at once when the database is there).
/// Call once, early, inside the runtime.
pub fn bound_the_stop(grace: Duration) {
    tokio::spawn(async move {
        crate::discord::shutdown_signal().await;
        tokio::select! {
            _ = tokio::time::sleep(grace) => {
                tracing::error!("the stop did not finish within {} s (the database or Discord does not answer); exiting now", grace.as_secs());
            }
            _ = crate::discord::shutdown_signal() => {
                tracing::warn!("a second stop signal: exiting now");
            }
        }
        std::process::exit(1);
    });
}

/// Aborts a task when dropped (a follower lives as long as `run`).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
