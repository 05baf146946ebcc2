//! The `madoguchi` command's groups, one module each; `main.rs` only parses
//! the command line and dispatches here.
//!
//! - [`chat`]: `chat`, the terminal consultation.
//! - [`dialogs`]: `dialogs check|test|graph|try|versions`.
//! - [`routing`]: `routing explain`.
//! - [`cases`]: `cases list|show` and the staff actions through the desk.
//! - [`mydata`]: `my-data` and `forget`.
//! - [`store`]: `store copy` and `backup`.
//! - [`run`]: `run`, the bot.

pub mod cases;
pub mod chat;
pub mod dialogs;
pub mod mydata;
pub mod routing;
pub mod run;
pub mod store;

use anyhow::{bail, Result};
use clap::Args;
use madoguchi::desk::{HubInfo, Network};
use madoguchi::runner::{Runner, RunnerConfig, SystemClock};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::{DbLocation, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Clone)]
pub struct Common {
    /// The database: an SQLite file (`chat` and `run` create it if missing;
    /// other commands refuse a missing file; also `sqlite:FILE`)
    /// or a PostgreSQL URL (`postgres://USER@HOST/DB`).
    #[arg(
        long,
        env = "MADOGUCHI_DB",
        default_value = "madoguchi.db",
        global = true
    )]
    pub db: DbLocation,
    /// The folder with dialog scripts and routing.yaml.
    #[arg(
        long,
        env = "MADOGUCHI_DIALOGS",
        default_value = "dialogs",
        global = true
    )]
    pub dialogs: PathBuf,
}

pub fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language `{s}`: use ja or en"))
}

pub async fn open_store(db: &DbLocation) -> Result<Arc<dyn Store>> {
    db.open().await.map_err(|e| open_error(db, e))
}

/// Opens the database for a command that only reads it or works on what
/// is already stored (cases, an owner's data, script versions): an SQLite
/// file that does not exist is refused rather than created, so that a
/// mistyped `--db` is named instead of showing an empty database. `chat`
/// and `run` create it with [`open_store`].
pub async fn open_existing(db: &DbLocation) -> Result<Arc<dyn Store>> {
    if let Some(why) = db.missing() {
        bail!(why);
    }
    open_store(db).await
}

/// The network's own hub `id` (one of routing.yaml's), for `--hub`; an id
/// named only by the national directory is refused as nobody in the
/// network acts for it, and an unknown one with the closest hub and the
/// network's hubs.
pub fn own_hub<'n>(network: &'n Network, id: &str) -> Result<&'n HubInfo> {
    let own = || {
        madoguchi::routing::unknown_hub_hint(
            id,
            network
                .hubs
                .iter()
                .filter(|h| !h.from_directory)
                .map(|h| h.id.as_str()),
        )
    };
    match network.hub(id) {
        Some(h) if !h.from_directory => Ok(h),
        Some(_) => bail!(
            "`{id}` is named only by the national directory, not a hub of this network: its cases are held by the network desk `{}`; {}",
            network.fallback.as_deref().unwrap_or_default(),
            own()
        ),
        None => bail!("there is no hub `{id}` in routing.yaml; {}", own()),
    }
}

/// Why a database could not be opened, and what to do about it.
pub fn open_error(db: &DbLocation, e: madoguchi::store::StoreError) -> anyhow::Error {
    // The location's Display leaves out a password.
    match db {
        DbLocation::Sqlite(_) => match sqlite_open_hint(&e) {
            Some((said, hint)) => anyhow::anyhow!("cannot open the database {db}: {said}; {hint}"),
            None => anyhow::Error::new(e).context(format!("cannot open the database {db}")),
        },
        DbLocation::Postgres(_) => anyhow::Error::new(e).context(format!(
            "cannot open the database {db}; check that the server runs, the URL's user, password and database are right, and the user may create tables"
        )),
    }
}

/// What to do when SQLite cannot open the file, for the two failures a
/// person meets: a path that cannot be created or written (SQLite's
/// `CANTOPEN`, 14) and a file that is not an SQLite database (`NOTADB`,
/// 26). SQLite's own words name neither the cause nor the remedy.
/// Returns what SQLite said and the hint.
fn sqlite_open_hint(e: &madoguchi::store::StoreError) -> Option<(String, &'static str)> {
    let madoguchi::store::StoreError::Db(sqlx::Error::Database(d)) = e else {
        return None;
    };
    let hint = match d.code().as_deref() {
        Some("14") => "check that the path names a file (not a folder) in a folder that exists and that madoguchi may write to (SQLite also writes `-wal` and `-shm` files beside it), or pass another path with --db",
        Some("26") => "pass another path with --db (a new file is created there), or restore the database from a backup (`madoguchi backup`)",
        _ => return None,
    };
    Some((d.message().to_string(), hint))
}

/// A runner for a terminal consultation (`chat` and `dialogs try`).
pub async fn terminal_runner(
    store: Arc<dyn Store>,
    bundle: madoguchi::script::Bundle,
    lang: Lang,
    script_id: String,
) -> Result<Runner> {
    let config = RunnerConfig {
        default_lang: lang,
        script_id,
        ..RunnerConfig::default()
    };
    Ok(Runner::new(store, Arc::new(SystemClock), bundle, config).await?)
}

/// Loads the dialogs or explains every problem.
pub fn load_checked(dir: &Path) -> Result<madoguchi::script::Bundle> {
    match load_dir(dir) {
        Ok(b) => Ok(b),
        Err(madoguchi::script::compile::LoadError::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{}", d.render(Lang::En));
            }
            bail!(
                "the dialog scripts in {} have errors (listed above)",
                dir.display()
            )
        }
        Err(e) => Err(e.into()),
    }
}
