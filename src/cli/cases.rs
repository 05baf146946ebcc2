//! `madoguchi cases`: what staff see (routed cases) and, through the desk,
//! what staff do.

use super::{load_checked, open_existing, own_hub, parse_lang, Common};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use madoguchi::desk::texts::Plain;
use madoguchi::desk::{self, Action, Actor, Decision, DeskTexts, Network, StaffId};
use madoguchi::domain::ids::CaseId;
use madoguchi::escape;
use madoguchi::script::Lang;
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
    /// What is overdue now: cases past their claim limit, escalation or
    /// nudge, forwards waiting too long for the owner (limits in routing.yaml).
    Due {
        #[command(flatten)]
        common: Common,
    },
    /// Show one case: the company information sheet, routing, deliveries, history.
    Show {
        #[command(flatten)]
        common: Common,
        /// The case id, e.g. C-000001 or 1.
        id: String,
    },
    /// Post a case again to a hub whose delivery failed for good (after
    /// fixing the cause: the channel, the bot's permissions, a token);
    /// `madoguchi run` posts it, and the messages waiting for its thread
    /// follow.
    RetryDelivery {
        #[command(flatten)]
        common: Common,
        /// The case id, e.g. C-000001 or 1.
        id: String,
        /// Only the delivery to this hub (default: every failed one).
        #[arg(long)]
        hub: Option<String>,
    },
    /// Take a case on (you become the staff member handling it).
    Claim(ActArgs),
    /// Give a case you hold back to the hub.
    Release(ActArgs),
    /// Hand a case to another hub: at once within the owner's consent;
    /// for another hub the owner is asked first (on their chat platform,
    /// sent by `madoguchi run`).
    Forward {
        #[command(flatten)]
        act: ActArgs,
        /// The hub to hand the case to (its id in routing.yaml).
        #[arg(long)]
        to: String,
        /// Why (shown to both hubs).
        #[arg(long)]
        reason: String,
        /// The local inbox, where a case for a hub without a chat channel
        /// is written.
        #[arg(long, default_value = "inbox")]
        inbox: std::path::PathBuf,
    },
    /// Move a case to its next support step (STEP 1 to 5).
    Advance(ActArgs),
    /// Close a case with its outcome.
    Close {
        #[command(flatten)]
        act: ActArgs,
        /// What came of it, e.g. "人材紹介会社を紹介、採用決定".
        #[arg(long)]
        outcome: String,
    },
    /// Send a message to the case's owner (queued; `madoguchi run` sends it
    /// to the owner's chat platform).
    Reply {
        #[command(flatten)]
        act: ActArgs,
        /// The message.
        #[arg(long)]
        message: String,
    },
}

/// Who acts on which case, for which hub.
#[derive(Args)]
pub struct ActArgs {
    #[command(flatten)]
    pub common: Common,
    /// The case id, e.g. C-000001 or 1.
    pub id: String,
    /// Who you are, as `cli:NAME` (recorded in the case's history).
    #[arg(long = "as", env = "MADOGUCHI_STAFF")]
    pub actor: String,
    /// The hub you act for (its id in routing.yaml).
    #[arg(long)]
    pub hub: String,
    /// Language of the messages.
    #[arg(long, env = "MADOGUCHI_LANG", default_value = "ja", value_parser = parse_lang)]
    pub lang: Lang,
}

pub async fn cases(cmd: CasesCmd) -> Result<u8> {
    match cmd {
        CasesCmd::Due { common } => {
            let bundle = load_checked(&common.dialogs)?;
            let store = open_existing(&common.db).await?;
            let routing = &bundle
                .flows
                .first()
                .context("no script in the dialogs folder")?
                .routing;
            let due =
                madoguchi::network::worker::due_now(store.as_ref(), routing, chrono::Utc::now())
                    .await?;
            print!(
                "{}",
                madoguchi::network::reminders::due_table(&due, routing)
            );
            Ok(0)
        }
        CasesCmd::RetryDelivery { common, id, hub } => retry_delivery(common, &id, hub).await,
        CasesCmd::Claim(a) => act(a, Action::Claim).await,
        CasesCmd::Release(a) => act(a, Action::Release).await,
        CasesCmd::Advance(a) => act(a, Action::Advance).await,
        CasesCmd::Forward {
            act: a,
            to,
            reason,
            inbox,
        } => {
            let db = a.common.db.clone();
            let code = act(a, Action::Forward { to_hub: to, reason }).await?;
            if code == 0 {
                // The new hub's copy in the local inbox, as `chat` writes it.
                let store = open_existing(&db).await?;
                madoguchi::delivery::deliver_local(store.as_ref(), &inbox, chrono::Utc::now())
                    .await?;
            }
            Ok(code)
        }
        CasesCmd::Close { act: a, outcome } => act(a, Action::Close { outcome }).await,
        CasesCmd::Reply { act: a, message } => act(a, Action::Reply { text: message }).await,
        CasesCmd::List {
            common,
            hub,
            status,
        } => {
            // An unknown hub is a mistake to name, as `claim` names it,
            // not a hub without cases.
            if let Some(h) = &hub {
                own_hub(&Network::from_bundle(&load_checked(&common.dialogs)?), h)?;
            }
            let store = open_existing(&common.db).await?;
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
            let store = open_existing(&common.db).await?;
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
            let relays = store.relays_of_case(id).await?;
            if !relays.is_empty() {
                println!("\nrelay messages:");
            }
            for r in &relays {
                println!(
                    "  #{} {} via {} → {}: {} (attempts {}){}",
                    r.id,
                    r.kind.name(),
                    r.transport,
                    r.target,
                    r.status.name(),
                    r.attempts,
                    r.last_error
                        .as_deref()
                        .map(|e| format!(" last error: {}", escape::terminal_line(e)))
                        .unwrap_or_default()
                );
            }
            if relays.iter().any(|r| {
                r.status == madoguchi::store::DeliveryStatus::Pending
                    && r.last_error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("waiting for the case post"))
            }) {
                println!("  → fix the failed delivery's cause, then `madoguchi cases retry-delivery {id}`: the waiting messages follow the post");
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

/// A staff action from the terminal, decided by the desk and applied
/// through the store.
///
/// Who may act: the terminal has the database itself, so whoever runs
/// this is trusted as staff of the hub they name with `--hub` (as a `cli`
/// member of it); the desk still checks everything else (the case is that
/// hub's, its state allows the action, forwards stay within the owner's
/// consent). Identities of chat platforms cannot be used here, so nobody
/// acts in a Discord or Slack member's name.
async fn act(a: ActArgs, action: Action) -> Result<u8> {
    let actor_id = StaffId::parse(&a.actor)?;
    if actor_id.platform() != "cli" {
        bail!(
            "--as must be a terminal identity cli:NAME (not {}): chat platforms' members act from their platform",
            a.actor
        );
    }
    let id = CaseId::parse(&a.id)
        .with_context(|| format!("`{}` is not a case id: use the form C-000001 or 1", a.id))?;
    let bundle = load_checked(&a.common.dialogs)?;
    let texts = DeskTexts::load(&a.common.dialogs)?;
    let mut network = Network::from_bundle(&bundle);
    own_hub(&network, &a.hub)?;
    network.add_members(&a.hub, "cli", vec![actor_id.user().to_string()]);
    let actor = Actor {
        id: actor_id,
        groups: vec![],
    };
    let store = open_existing(&a.common.db).await?;
    let now = chrono::Utc::now();
    let render = |t: &desk::Text| texts.render(a.lang, t, &Plain);
    let Some(view) = madoguchi::casework::load(store.as_ref(), id).await? else {
        bail!("there is no case {id}; `madoguchi cases list` shows the cases");
    };
    // A forwarded case reaches the new hub the way the case first
    // reached its hubs (the local inbox, Discord, …).
    for d in store.deliveries(id).await? {
        if !network.transports.contains(&d.transport) {
            network.transports.push(d.transport);
        }
    }
    let req = desk::Request {
        actor: &actor,
        from_hub: Some(&a.hub),
        action,
        now,
    };
    let fx = match desk::decide(&network, &view, &req) {
        Decision::Refused(t) => {
            eprintln!("{}", render(&t)?);
            // On the terminal the hub acted for is the `--hub` given: name
            // the option, so the fix is plain.
            if t.key == "refused.held_elsewhere" {
                eprintln!(
                    "{id} is at {} and you passed --hub {}: if you are staff of {}, run the command again with --hub {}",
                    view.case.hub_id, a.hub, view.case.hub_id, view.case.hub_id
                );
            }
            return Ok(1);
        }
        Decision::Accepted(fx) => fx,
    };
    // Messages for the owner travel on the owner's chat platform: they are
    // queued in the relay's outbox, which `madoguchi run` sends. An owner
    // who consults on the terminal has no such platform: they are asked
    // about a forward when they next start `madoguchi chat` (so that
    // request is kept), and any other message to them changes nothing.
    let owner_platform = view.case.user.transport().as_str();
    let terminal_owner = view.case.user.transport() == madoguchi::domain::ids::Transport::Terminal;
    let reachable = madoguchi::relay::TRANSPORTS.contains(&owner_platform);
    if (!fx.owner.is_empty() && !reachable)
        || (fx.consent_ask.is_some() && !reachable && !terminal_owner)
    {
        bail!(
            "this needs a message to the owner, who consults on {owner_platform}, where the bot cannot reach them: contact them directly (their details are on the case sheet); nothing was changed"
        );
    }
    let applied = match madoguchi::casework::apply(store.as_ref(), &view, &fx, now).await {
        Ok(x) => x,
        Err(madoguchi::store::StoreError::Conflict(_)) => {
            eprintln!("{}", render(&desk::Text::new("refused.not_now"))?);
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    madoguchi::network::worker::after_change(
        store.as_ref(),
        &network.reminders,
        &applied.case,
        applied.request,
        now,
    )
    .await;
    // The terminal has no case thread at hand: the notes go to the hubs'
    // threads through the relay's outbox too. A terminal owner's consent
    // question waits for their next chat instead.
    let ask = match (&fx.consent_ask, applied.request) {
        (Some(a), Some(r)) if reachable => Some((r, a)),
        _ => None,
    };
    let what = madoguchi::relay::What {
        owner: reachable,
        notes: true,
    };
    let queued = madoguchi::relay::queue(store.as_ref(), &applied.case, &fx, ask, what, now)
        .await
        .context("the change is saved, but its messages could not be queued")?;
    if !queued.is_empty() {
        println!(
            "queued {} message(s) for the owner and the case's thread; `madoguchi run` sends them",
            queued.len()
        );
    }
    // Nor are the case's chat posts: their senders bring them up to date
    // (status line, buttons), as a button press would.
    if let Some(job) = madoguchi::relay::Refresh::of(&fx) {
        let refreshed =
            madoguchi::relay::queue_refresh(store.as_ref(), &applied.case, job, None, now)
                .await
                .context(
                    "the change is saved, but the refresh of its chat posts could not be queued",
                )?;
        if !refreshed.is_empty() {
            println!("queued the update of the case's chat posts; `madoguchi run` makes it");
        }
    }
    if let Some(r) = &fx.reply {
        println!("{}", render(r)?);
    }
    for n in &fx.notes {
        println!("[{}] {}", n.hub, render(&n.text)?);
    }
    let c = &applied.case;
    println!(
        "{}  status {}  step {}  hub {}{}",
        c.id,
        c.status.name(),
        c.step,
        c.hub_id,
        c.claimed_by
            .as_deref()
            .map(|b| format!("  claimed by {b}"))
            .unwrap_or_default()
    );
    store
        .close()
        .await
        .context("cannot tidy the database after the change")?;
    Ok(0)
}

/// `cases retry-delivery`: the case's failed deliveries (to `hub`, or
/// all) made pending again, with an audit entry each.
async fn retry_delivery(common: Common, id: &str, hub: Option<String>) -> Result<u8> {
    let id = CaseId::parse(id)
        .with_context(|| format!("`{id}` is not a case id: use the form C-000001 or 1"))?;
    let store = open_existing(&common.db).await?;
    if store.case(id).await?.is_none() {
        bail!("there is no case {id}; `madoguchi cases list` shows the cases");
    }
    let now = chrono::Utc::now();
    let mut n = 0;
    for d in store.deliveries(id).await? {
        if hub.as_deref().is_some_and(|h| h != d.hub_id)
            || d.status != madoguchi::store::DeliveryStatus::Failed
        {
            continue;
        }
        if store.retry_delivery(d.id, now).await? {
            let detail = serde_json::json!({ "hub": d.hub_id, "transport": d.transport, "previous_error": d.last_error });
            store
                .append_audit(Some(id), "cli", "delivery_retried", &detail, now)
                .await?;
            println!(
                "{id}: the delivery to {} via {} is pending again; `madoguchi run` with {} posts it, and messages waiting for its thread follow",
                d.hub_id, d.transport, d.transport
            );
            n += 1;
        }
    }
    store
        .close()
        .await
        .context("cannot tidy the database after the change")?;
    if n == 0 {
        eprintln!(
            "{id} has no failed delivery{}: `madoguchi cases show {id}` shows its deliveries",
            hub.map(|h| format!(" to {h}")).unwrap_or_default()
        );
        return Ok(1);
    }
    Ok(0)
}
