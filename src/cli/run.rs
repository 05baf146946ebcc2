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
    let mut cfg = madoguchi::discord::Config::load(&config)?;
    let db = match db {
        Some(db) => db,
        None => DbLocation::parse(&cfg.db.to_string_lossy())
            .with_context(|| format!("`db` in {}", config.display()))?,
    };
    cfg.dialogs = dialogs.unwrap_or(cfg.dialogs);
    let token = std::env::var("DISCORD_TOKEN")
        .ok()
        .context("DISCORD_TOKEN is not set: put the bot token from the Discord developer portal (Bot → Reset Token) in it")?;
    let token = madoguchi::discord::Token::new(&token)?;
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
    let backend = match &db {
        DbLocation::Sqlite(_) => "sqlite",
        DbLocation::Postgres(_) => "postgres",
    };
    let health = madoguchi::instances::Health::new(store.clone(), backend);
    let runner = Runner::new(
        store.clone(),
        Arc::new(SystemClock),
        bundle,
        madoguchi::discord::runner_config(&cfg),
    )
    .await?;
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
    match &db {
        // One instance per SQLite file: it always leads.
        DbLocation::Sqlite(_) => {
            health.set_leader(true);
            madoguchi::discord::run(cfg, token, Arc::new(runner)).await?;
        }
        DbLocation::Postgres(url) => {
            madoguchi::instances::run_with_leader_lock(cfg, token, Arc::new(runner), url, health)
                .await?;
        }
    }
    // A clean stop leaves the WAL small for the next start.
    store
        .close()
        .await
        .context("cannot tidy the database after stopping")?;
    Ok(0)
}
