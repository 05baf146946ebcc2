//! `madoguchi run`: the bot.

use super::{load_checked, open_store};
use anyhow::{Context, Result};
use clap::Args;
use madoguchi::runner::{Runner, SystemClock};
use madoguchi::store::DbLocation;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, default_value = "madoguchi.toml")]
    pub config: PathBuf,
    /// The database, an SQLite file or a `postgres://` URL (overrides
    /// `db` in the config file).
    #[arg(long, env = "MADOGUCHI_DB")]
    pub db: Option<DbLocation>,
    /// The dialogs folder (overrides `dialogs` in the config file).
    #[arg(long, env = "MADOGUCHI_DIALOGS")]
    pub dialogs: Option<PathBuf>,
    /// The local inbox: cases left pending there by `chat` are delivered at start.
    #[arg(long, default_value = "inbox")]
    pub inbox: PathBuf,
    /// Serve /healthz, /readyz and /leader on 127.0.0.1:PORT.
    #[arg(long, env = "MADOGUCHI_HEALTH_PORT")]
    pub health_port: Option<u16>,
}

pub async fn run(args: RunArgs) -> Result<u8> {
    let RunArgs {
        config,
        db,
        dialogs,
        inbox,
        health_port,
    } = args;
    madoguchi::instances::bound_the_stop(madoguchi::instances::STOP_GRACE);
    let mut cfg = madoguchi::discord::Config::load(&config)?;
    let db = match db {
        Some(db) => db,
        None => DbLocation::parse(&cfg.db.to_string_lossy())
            .with_context(|| format!("`db` in {}", config.display()))?,
    };
    cfg.dialogs = dialogs.unwrap_or(cfg.dialogs);
    cfg.reminders.inbox = Some(inbox.clone());
    // The platforms that are configured: Discord by DISCORD_TOKEN, Slack by
    // SLACK_BOT_TOKEN (see madoguchi::slack::config); both run in one
    // process on one runner, store and outbox.
    let slack = madoguchi::slack::SlackConfig::from_env()?;
    let token = match std::env::var("DISCORD_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        Some(t) => Some(madoguchi::discord::Token::new(&t)?),
        None => None,
    };
    let bundle = load_checked(&cfg.dialogs)?;
    let store = open_store(&db).await?;
    let delivered =
        madoguchi::delivery::deliver_local(store.as_ref(), &inbox, chrono::Utc::now()).await?;
    if !delivered.is_empty() {
        tracing::info!(
            count = delivered.len(),
            "delivered cases left pending in the local inbox"
        );
    }
    // Deliveries and relay messages for a platform this process does not
    // run would wait silently: say so, and what to do.
    {
        let mut served = vec!["local"];
        if token.is_some() {
            served.push("discord");
        }
        if slack.is_some() {
            served.push("slack");
        }
        let ops = store.ops_counts(chrono::Utc::now()).await?;
        for line in madoguchi::outbox::unserved(&ops, &served) {
            tracing::warn!("{line}");
            eprintln!("warning: {line}");
        }
    }
    let backend = match &db {
        DbLocation::Sqlite(_) => "sqlite",
        DbLocation::Postgres(_) => "postgres",
    };
    let health = madoguchi::instances::Health::new(store.clone(), backend);
    let mut rc = madoguchi::discord::runner_config(&cfg);
    rc.transports.retain(|t| t != "discord" || token.is_some());
    if slack.is_some() {
        rc.transports.push("slack".into());
    }
    // No chat platform: cases go to the hubs' local inbox folders.
    if rc.transports.is_empty() {
        rc.transports.push("local".into());
    }
    let runner = Runner::new(store.clone(), Arc::new(SystemClock), bundle, rc).await?;
    let _health_server = match health_port {
        Some(port) => {
            let (addr, task) = madoguchi::instances::serve_health(health.clone(), port)
                .await
                .with_context(|| format!("cannot serve the health endpoint on 127.0.0.1:{port}; choose a free port with --health-port"))?;
            tracing::info!(%addr, "health endpoint: /healthz /readyz /leader");
            Some(task)
        }
        None => None,
    };
    let runner = Arc::new(runner);
    // Reminders and escalations: one timer loop for every configured
    // platform (and the inbox), on every instance (the store's claims fire
    // each timer once), so the bots run none of their own.
    let sinks = madoguchi::network::worker::sinks_for_run(
        token.as_ref().map(|t| (&cfg, t)),
        slack.as_ref(),
        &inbox,
        &runner,
    )?;
    cfg.reminders.elsewhere = true;
    let mut worker = madoguchi::network::worker::TimerWorker::new(
        store.clone(),
        sinks.clone(),
        cfg.discord.default_lang,
    );
    worker.sync_every = chrono::Duration::seconds(cfg.reminders.sync_secs.max(1) as i64);
    let timers = madoguchi::network::worker::RunningTimers::spawn(
        worker,
        runner.clone(),
        std::time::Duration::from_secs(cfg.reminders.tick_secs.max(1)),
    );
    // One outbox for the deliveries of every configured platform, on every
    // instance (leases keep two from sending one delivery), woken by the
    // platforms when they create a case.
    let slack_sender = match &slack {
        Some(s) => Some(madoguchi::slack::sender(s, runner.clone())?),
        None => None,
    };
    // What the outbox must tell the administrators (a case that cannot be
    // posted, a message that waits for it) goes where the monthly summary
    // goes: the platforms' admin channels, else the inbox's admin folder.
    let outbox =
        madoguchi::outbox::for_run(&cfg, token.as_ref(), slack_sender, &inbox, runner.clone())
            .with_admin_sinks(sinks)
            .spawn();
    cfg.deliveries = madoguchi::discord::Deliveries::Elsewhere(outbox.waker());
    let serve = async {
        match (&db, token, slack) {
            (db, Some(token), None) => match db {
                // One instance per SQLite file: it always leads.
                DbLocation::Sqlite(_) => {
                    health.set_leader(true);
                    madoguchi::discord::run(cfg, token, runner)
                        .await
                        .map_err(anyhow::Error::from)
                }
                DbLocation::Postgres(url) => {
                    madoguchi::instances::run_with_leader_lock(cfg, token, runner, url, health)
                        .await
                        .map_err(anyhow::Error::from)
                }
            },
            (db, token, Some(mut scfg)) => {
                scfg.dialogs = cfg.dialogs.clone();
                // Slack, alone or beside Discord. On PostgreSQL every instance
                // runs it and Discord keeps its leader lock.
                health.set_leader(true);
                let app = madoguchi::slack::start(
                    scfg,
                    runner.clone(),
                    madoguchi::slack::Deliveries::Elsewhere(outbox.waker()),
                    cfg.outbox.clone(),
                )
                .await;
                match app {
                    Err(e) => Err(anyhow::Error::from(e)),
                    Ok(app) => {
                        tracing::info!("connected to Slack");
                        let r = match (token, db) {
                            (Some(token), DbLocation::Sqlite(_)) => {
                                madoguchi::discord::run(cfg, token, runner)
                                    .await
                                    .map_err(anyhow::Error::from)
                            }
                            (Some(token), DbLocation::Postgres(url)) => {
                                madoguchi::instances::run_with_leader_lock(
                                    cfg, token, runner, url, health,
                                )
                                .await
                                .map_err(anyhow::Error::from)
                            }
                            (None, _) => {
                                madoguchi::discord::shutdown_signal().await;
                                Ok(())
                            }
                        };
                        tracing::info!("shutting down");
                        app.shutdown().await;
                        r
                    }
                }
            }
            // No chat platform: hubs read the local inbox and staff use
            // `madoguchi cases`; the outbox and the timer loop write there.
            (_, None, None) => {
                tracing::info!(inbox = %inbox.display(), "neither DISCORD_TOKEN nor SLACK_BOT_TOKEN is set: delivering cases and reminders to the local inbox only");
                health.set_leader(true);
                madoguchi::discord::shutdown_signal().await;
                tracing::info!("shutting down");
                Ok(())
            }
        }
    };
    // A store that stopped writing (a failed fsync) stops the process, as
    // PostgreSQL stops at one: what the disk holds is known again only
    // once the database is opened anew, so a supervisor's restart is the
    // way on. Until then every owner is told to try again later.
    let ran = tokio::select! {
        r = serve => r,
        e = madoguchi::store::until_write_failure(store.as_ref(), std::time::Duration::from_secs(1)) => {
            tracing::error!(error = %e, "stopping: the database stopped writing");
            Err(anyhow::Error::new(e))
        }
    };
    outbox.shutdown().await;
    timers.shutdown().await;
    ran?;
    // A clean stop leaves the WAL small for the next start.
    store
        .close()
        .await
        .context("cannot tidy the database after stopping")?;
    Ok(0)
}
