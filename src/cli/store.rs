//! `madoguchi store copy` and `madoguchi backup`: moving and copying the
//! data.

use super::Common;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use madoguchi::store::DbLocation;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum StoreCmd {
    /// Copy everything (sessions, answers, cases, consents, audit,
    /// deliveries, script versions) from an SQLite database into an empty
    /// PostgreSQL one, and check the row counts of every table.
    Copy {
        /// The SQLite database (a file or sqlite:FILE).
        #[arg(long)]
        from: DbLocation,
        /// The PostgreSQL database (postgres://USER@HOST/DB); its tables are
        /// created and must be empty.
        #[arg(long)]
        to: DbLocation,
    },
}

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: Common,
    /// The new file to write (never written over).
    #[arg(long, short)]
    pub out: PathBuf,
}

pub async fn store(cmd: StoreCmd) -> Result<u8> {
    match cmd {
        StoreCmd::Copy { from, to } => {
            let DbLocation::Sqlite(path) = &from else {
                bail!("--from must be an SQLite database (a file or sqlite:FILE); to copy between PostgreSQL databases use pg_dump");
            };
            let DbLocation::Postgres(url) = &to else {
                bail!("--to must be a PostgreSQL database (postgres://USER@HOST/DB)");
            };
            if !path.exists() {
                bail!("there is no database {from}; check the --from path");
            }
            let source = madoguchi::store::sqlite::SqliteStore::open(path)
                .await
                .map_err(|e| super::open_error(&from, e))?;
            let target = madoguchi::store::postgres::PostgresStore::open(url)
                .await
                .map_err(|e| super::open_error(&to, e))?;
            let report = madoguchi::store::copy::sqlite_to_postgres(&source, &target)
                .await
                .with_context(|| {
                    format!("copying {from} to {to} failed; nothing was written to {to}")
                })?;
            for (table, rows) in &report.tables {
                println!("{table:<18} {rows:>9} rows");
            }
            println!("copied {from} to {to}; every table has the same number of rows in both");
            Ok(0)
        }
    }
}

pub async fn backup(args: BackupArgs) -> Result<u8> {
    let BackupArgs { common, out } = args;
    let DbLocation::Sqlite(path) = &common.db else {
        bail!("madoguchi backup copies an SQLite database; back PostgreSQL up with its own tools (pg_dump, or the base backups your IT department runs)");
    };
    if !path.exists() {
        bail!("there is no database {}; check --db", common.db);
    }
    let store = madoguchi::store::sqlite::SqliteStore::open(path)
        .await
        .map_err(|e| super::open_error(&common.db, e))?;
    madoguchi::store::copy::backup_sqlite(&store, &out)
        .await
        .with_context(|| format!("cannot back up {} to {}", common.db, out.display()))?;
    println!("backed up {} to {}", common.db, out.display());
    Ok(0)
}
