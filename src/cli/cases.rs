//! `madoguchi cases`: what staff see (routed cases) and, through the desk,
//! what staff do.

use super::{open_store, Common};
use anyhow::{Context, Result};
use clap::Subcommand;
use madoguchi::domain::ids::CaseId;
use madoguchi::escape;
use madoguchi::store::{CaseFilter, CaseStatus};

#[derive(Subcommand)]
pub enum CasesCmd {
    /// List cases, newest first.
    List {
        #[command(flatten)]
        common: Common,
        /// Only cases held by this hub.
        #[arg(long)]
        hub: Option<String>,
        /// open, claimed or closed.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one case: the company information sheet, routing, deliveries, history.
    Show {
        #[command(flatten)]
        common: Common,
        /// The case id, e.g. C-000001 or 1.
        id: String,
    },
}

pub async fn cases(cmd: CasesCmd) -> Result<u8> {
    match cmd {
        CasesCmd::List {
            common,
            hub,
            status,
        } => {
            let store = open_store(&common.db).await?;
            let status = match status {
                Some(s) => Some(CaseStatus::parse(&s).with_context(|| {
                    format!("unknown status `{s}`: use open, claimed or closed")
                })?),
                None => None,
            };
            let cases = store
                .cases(&CaseFilter {
                    hub_id: hub,
                    status,
                    limit: Some(200),
                })
                .await?;
            if cases.is_empty() {
                println!("no cases / 案件はありません");
            }
            for c in cases {
                println!(
                    "{}  {}  step {}  {:<8} {:<14} {}",
                    c.id,
                    c.created_at.format("%Y-%m-%d %H:%M"),
                    c.step,
                    c.status.name(),
                    c.hub_id,
                    escape::terminal_line(&c.headline)
                );
            }
            Ok(0)
        }
        CasesCmd::Show { common, id } => {
            let store = open_store(&common.db).await?;
            let id = CaseId::parse(&id)
                .with_context(|| format!("`{id}` is not a case id: use the form C-000001 or 1"))?;
            let c = store.case(id).await?.with_context(|| {
                format!("there is no case {id}; `madoguchi cases list` shows the cases")
            })?;
            println!(
                "{} {}\nstatus: {}  step: {}  hub: {}",
                c.id,
                escape::terminal_line(&c.headline),
                c.status.name(),
                c.step,
                c.hub_id
            );
            if let Some(by) = &c.claimed_by {
                println!("claimed by: {by}");
            }
            println!("\n{}\n", escape::terminal(&c.summary_plain));
            println!(
                "routing: rule `{}` — {}",
                c.route.rule,
                escape::terminal_line(&c.route.reason)
            );
            for (rule, why) in &c.route.passed_over {
                println!("  passed over `{rule}`: {}", escape::terminal_line(why));
            }
            println!("\ndeliveries:");
            for d in store.deliveries(id).await? {
                println!(
                    "  {} via {} → {}: {} (attempts {}){}",
                    d.hub_id,
                    d.transport,
                    d.target,
                    d.status.name(),
                    d.attempts,
                    d.last_error
                        .map(|e| format!(" last error: {e}"))
                        .unwrap_or_default()
                );
            }
            println!("\nhistory:");
            for a in store.audit(Some(id)).await? {
                println!(
                    "  {} {} {} {}",
                    a.at.format("%Y-%m-%d %H:%M"),
                    a.actor,
                    a.action,
                    escape::terminal_line(&a.detail.to_string())
                );
            }
            Ok(0)
        }
    }
}
