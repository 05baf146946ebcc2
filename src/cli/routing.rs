//! `madoguchi routing`: explain routing decisions.

use super::{load_checked, parse_lang};
use anyhow::{Context, Result};
use clap::Subcommand;
use madoguchi::script::Lang;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum RoutingCmd {
    /// Show which rule routes a set of answers, and why earlier rules did not.
    Explain {
        /// A YAML file of answers as an owner would type them, e.g. `prefecture: ひょうご`.
        #[arg(long)]
        answers: PathBuf,
        /// The dialogs folder.
        #[arg(long, default_value = "dialogs")]
        dialogs: PathBuf,
        #[arg(long, default_value = "first_contact")]
        script: String,
        #[arg(long, default_value = "ja", value_parser = parse_lang)]
        lang: Lang,
    },
}

pub async fn routing(cmd: RoutingCmd) -> Result<u8> {
    match cmd {
        RoutingCmd::Explain {
            answers,
            dialogs,
            script,
            lang,
        } => {
            let bundle = load_checked(&dialogs)?;
            let flow = bundle.flow(&script, lang).with_context(|| {
                format!("no script `{script}` in {lang} under {}", dialogs.display())
            })?;
            let text = std::fs::read_to_string(&answers)
                .with_context(|| format!("cannot read {}", answers.display()))?;
            let typed: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", answers.display()))
            .context("the answers file must be a YAML mapping of question id to answer, e.g. `prefecture: 兵庫県`")?;
            let today = (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive();
            let ex = madoguchi::admin::explain::explain(&flow, &typed, today)
                .map_err(anyhow::Error::msg)?;
            print!("{}", ex.render());
            Ok(0)
        }
    }
}
