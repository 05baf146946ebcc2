//! `madoguchi report`: reads the store, computes the report, writes it.

use super::render::{self, Lang};
use super::{Network, Params};
use crate::store::DbLocation;
use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The first day of the period (YYYY-MM-DD, Japan time), e.g. 2026-04-01.
    #[arg(long, value_parser = parse_date)]
    pub from: NaiveDate,
    /// The last day of the period, included (YYYY-MM-DD), e.g. 2027-03-31.
    #[arg(long, value_parser = parse_date)]
    pub to: NaiveDate,
    /// Only this hub's rows (a hub id from routing.yaml).
    #[arg(long)]
    pub hub: Option<String>,
    /// md, csv or html (one self-contained page).
    #[arg(long, default_value = "md", value_parser = ["md", "csv", "html"])]
    pub format: String,
    /// Labels: ja (Japanese, English after a slash) or en.
    #[arg(long, default_value = "ja", value_parser = ["ja", "en"])]
    pub lang: String,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The database: an SQLite file or a postgres:// URL.
    #[arg(long, env = "MADOGUCHI_DB", default_value = "madoguchi.db")]
    pub db: DbLocation,
    /// The folder with dialog scripts and routing.yaml (hubs, questions).
    #[arg(long, env = "MADOGUCHI_DIALOGS", default_value = "dialogs")]
    pub dialogs: PathBuf,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date: write it as YYYY-MM-DD, e.g. 2026-04-01"))
}

/// The network as the dialogs folder describes it.
pub fn network(dialogs: &std::path::Path) -> Result<Network> {
    let bundle = crate::script::load_dir(dialogs)
        .with_context(|| format!("cannot read the network from {}", dialogs.display()))?;
    let flow = bundle
        .flow(super::FUNNEL_SCRIPT, crate::script::Lang::Ja)
        .or_else(|| bundle.flows.first().cloned())
        .with_context(|| format!("there is no dialog script in {}", dialogs.display()))?;
    Ok(Network::from_flow(&flow))
}

pub async fn run(a: ReportArgs) -> Result<u8> {
    let net = network(&a.dialogs)?;
    let params = Params {
        from: a.from,
        to: a.to,
        hub: a.hub.clone(),
        now: chrono::Utc::now(),
    };
    params.check(&net)?;
    if let Some(why) = a.db.missing() {
        bail!(why);
    }
    let store =
        a.db.open()
            .await
            .with_context(|| format!("cannot open the database {}", a.db))?;
    let report = super::build(store.as_ref(), &params, &net)
        .await
        .context("cannot read the report's figures from the database")?;
    let lang = if a.lang == "en" { Lang::En } else { Lang::Ja };
    let text = match a.format.as_str() {
        "csv" => render::csv(&report, lang),
        "html" => render::html(&report, lang),
        _ => render::markdown(&report, lang),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("cannot write the report to {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}
