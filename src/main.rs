//! The `madoguchi` command: terminal chat, dialog tools, case views.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use madoguchi::chat::{run_chat, ChatOptions};
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::escape;
use madoguchi::runner::{Runner, RunnerConfig, SystemClock};
use madoguchi::script::{load_dir, Lang, Severity};
use madoguchi::store::{CaseFilter, CaseStatus, DbLocation, Store};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// mimalloc serves Rust's allocations and, with its `override` feature,
/// SQLite's `malloc` too: fewer instructions per allocation than glibc's,
/// which a durable turn makes dozens of (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "madoguchi",
    version,
    about = "窓口 — first-contact consultations for SME owners, routed to regional support hubs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// The database: an SQLite file (created if missing; also `sqlite:FILE`)
    /// or a PostgreSQL URL (`postgres://USER@HOST/DB`).
    #[arg(
        long,
        env = "MADOGUCHI_DB",
        default_value = "madoguchi.db",
        global = true
    )]
    db: DbLocation,
    /// The folder with dialog scripts and routing.yaml.
    #[arg(
        long,
        env = "MADOGUCHI_DIALOGS",
        default_value = "dialogs",
        global = true
    )]
    dialogs: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Hold a consultation in the terminal (stdin/stdout; piping works).
    Chat {
        #[command(flatten)]
        common: Common,
        /// Language of the consultation.
        #[arg(long, default_value = "ja", value_parser = parse_lang)]
        lang: Lang,
        /// Continue the consultation left open by an earlier run.
        #[arg(long)]
        resume: bool,
        /// Where routed cases are delivered for hubs without a chat channel.
        #[arg(long, default_value = "inbox")]
        inbox: PathBuf,
        /// Who is chatting (the owner key becomes terminal:NAME).
        #[arg(long, default_value = "local")]
        user: String,
        /// The script to run (its `script:` id).
        #[arg(long, default_value = "first_contact")]
        script: String,
        /// Answer the follow-up after a match that is due (step 5); a due
        /// follow-up also comes first without this.
        #[arg(long)]
        follow_up: bool,
    },
    /// Check, test and inspect dialog scripts.
    Dialogs {
        #[command(subcommand)]
        cmd: DialogsCmd,
    },
    /// Explain routing decisions.
    Routing {
        #[command(subcommand)]
        cmd: RoutingCmd,
    },
    /// What staff see: routed cases.
    Cases {
        #[command(subcommand)]
        cmd: CasesCmd,
    },
    /// Show everything stored about an owner (their answers, cases, consents).
    MyData {
        #[command(flatten)]
        common: Common,
        /// The owner key, e.g. terminal:local or discord:123456.
        #[arg(long, default_value = "terminal:local")]
        user: String,
    },
    /// Delete an owner's data, keeping only the consent records the law requires.
    Forget {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value = "terminal:local")]
        user: String,
        /// Confirm the deletion (without it, nothing is deleted).
        #[arg(long)]
        yes: bool,
        /// The local inbox whose copies of the owner's cases become tombstones.
        #[arg(long, default_value = "inbox")]
        inbox: PathBuf,
    },
    /// Move the data to another database (e.g. from SQLite to PostgreSQL).
    Store {
        #[command(subcommand)]
        cmd: StoreCmd,
    },
    /// Write a consistent copy of the SQLite database while the bot runs.
    Backup {
        #[command(flatten)]
        common: Common,
        /// The new file to write (never written over).
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Run the bot on Discord (token from DISCORD_TOKEN; see madoguchi.example.toml).
    Run {
        /// The config file.
        #[arg(long, default_value = "madoguchi.toml")]
        config: PathBuf,
        /// The database, an SQLite file or a `postgres://` URL (overrides
        /// `db` in the config file).
        #[arg(long, env = "MADOGUCHI_DB")]
        db: Option<DbLocation>,
        /// The dialogs folder (overrides `dialogs` in the config file).
        #[arg(long, env = "MADOGUCHI_DIALOGS")]
        dialogs: Option<PathBuf>,
        /// The local inbox: cases left pending there by `chat` are delivered at start.
        #[arg(long, default_value = "inbox")]
        inbox: PathBuf,
        /// Serve /healthz, /readyz and /leader on 127.0.0.1:PORT.
        #[arg(long, env = "MADOGUCHI_HEALTH_PORT")]
        health_port: Option<u16>,
    },
}

#[derive(Subcommand)]
enum DialogsCmd {
    /// Load and validate every script and the routing file.
    Check {
        /// The dialogs folder.
        path: Option<PathBuf>,
        /// Language of the messages (ja or en).
        #[arg(long, env = "MADOGUCHI_LANG", default_value = "ja", value_parser = parse_lang)]
        lang: Lang,
    },
    /// Run the transcript tests in DIALOGS/tests.
    Test {
        path: Option<PathBuf>,
        /// Print each conversation, not only failures.
        #[arg(long)]
        verbose: bool,
    },
    /// Draw a script as a flow chart (Mermaid, DOT, or SVG when Graphviz is installed).
    Graph {
        /// The dialogs folder.
        path: Option<PathBuf>,
        #[arg(long, default_value = "first_contact")]
        script: String,
        #[arg(long, default_value = "ja", value_parser = parse_lang)]
        lang: Lang,
        /// mermaid, dot or svg.
        #[arg(long, default_value = "mermaid")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Try a script interactively in the terminal; nothing is stored.
    Try {
        /// The dialogs folder.
        path: Option<PathBuf>,
        #[arg(long, default_value = "first_contact")]
        script: String,
        #[arg(long, default_value = "ja", value_parser = parse_lang)]
        lang: Lang,
    },
    /// The script versions in the database and how many open sessions each holds.
    Versions {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum StoreCmd {
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

#[derive(Subcommand)]
enum RoutingCmd {
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

#[derive(Subcommand)]
enum CasesCmd {
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
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("unknown language `{s}`: use ja or en"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sigpipe(true);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MADOGUCHI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main().await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn open_store(db: &DbLocation) -> Result<Arc<dyn Store>> {
    // The location's Display leaves out a password.
    db.open()
        .await
        .with_context(|| match db {
            DbLocation::Sqlite(_) => format!("cannot open the database {db}"),
            DbLocation::Postgres(_) => format!(
                "cannot open the database {db}; check that the server runs, the URL's user, password and database are right, and the user may create tables"
            ),
        })
}

/// Commands that print end as Unix tools do when their reader goes away
/// (`madoguchi cases show … | head`): quietly, by SIGPIPE. Rust ignores the
/// signal by default, and `println!` then panics on the failed write. The
/// bot (`run`) keeps ignoring it: for a server a closed connection is an
/// error to handle, not a reason to stop.
fn sigpipe(default: bool) {
    let action = if default {
        libc::SIG_DFL
    } else {
        libc::SIG_IGN
    };
    // SAFETY: SIG_DFL and SIG_IGN install no handler code; changing the
    // disposition is safe at any time, from any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, action);
    }
}

async fn real_main() -> Result<u8> {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Run { .. }) {
        sigpipe(false);
    }
    match cli.cmd {
        Cmd::Chat {
            common,
            lang,
            resume,
            inbox,
            user,
            script,
            follow_up,
        } => {
            let bundle = load_checked(&common.dialogs)?;
            let store = open_store(&common.db).await?;
            let runner = terminal_runner(store, bundle, lang, script).await?;
            let user = UserKey::new(Transport::Terminal, &user).context("invalid --user")?;
            let echo = !std::io::stdin().is_terminal();
            let opts = ChatOptions {
                user,
                lang,
                resume,
                inbox,
                echo,
                follow_up,
            };
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            run_chat(&runner, &opts, stdin, &mut std::io::stdout()).await?;
            // The consultation is saved turn by turn; this only leaves the
            // WAL small for the next run.
            runner
                .store()
                .close()
                .await
                .context("cannot tidy the database after the consultation")?;
            Ok(0)
        }
        Cmd::Dialogs {
            cmd: DialogsCmd::Check { path, lang },
        } => {
            let dir = path.unwrap_or_else(|| PathBuf::from("dialogs"));
            Ok(check(&dir, lang))
        }
        Cmd::Dialogs {
            cmd: DialogsCmd::Test { path, verbose },
        } => {
            let dir = path.unwrap_or_else(|| PathBuf::from("dialogs"));
            if check(&dir, Lang::En) == 1 {
                bail!("the scripts have errors; fix them before running transcripts");
            }
            let outcomes = madoguchi::transcript::run_dir(&dir, &dir.join("tests")).await?;
            let (mut passed, mut failed) = (0, 0);
            for (file, o) in &outcomes {
                if o.failures.is_empty() {
                    passed += 1;
                    println!("ok   {file} — {}", o.name);
                    if verbose {
                        println!("{}", o.log);
                    }
                } else {
                    failed += 1;
                    println!("FAIL {file} — {}", o.name);
                    for f in &o.failures {
                        println!("  {file}:{}: {}", f.line, f.message.replace('\n', "\n    "));
                    }
                    println!(
                        "  --- conversation ---\n{}",
                        o.log
                            .lines()
                            .map(|l| format!("    {l}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
            }
            println!("{passed} passed, {failed} failed");
            Ok(if failed > 0 { 1 } else { 0 })
        }
        Cmd::Dialogs {
            cmd:
                DialogsCmd::Graph {
                    path,
                    script,
                    lang,
                    format,
                    out,
                },
        } => {
            let dir = path.unwrap_or_else(|| PathBuf::from("dialogs"));
            let bundle = load_checked(&dir)?;
            let flow = bundle.flow(&script, lang).with_context(|| {
                format!("no script `{script}` in {lang} under {}", dir.display())
            })?;
            let text = match format.as_str() {
                "mermaid" => madoguchi::admin::graph::mermaid(&flow),
                "dot" => madoguchi::admin::graph::dot(&flow),
                "svg" => svg(&madoguchi::admin::graph::dot(&flow))?,
                other => bail!("unknown format `{other}`: use mermaid, dot or svg"),
            };
            match out {
                Some(p) => std::fs::write(&p, text)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{text}"),
            }
            Ok(0)
        }
        Cmd::Dialogs {
            cmd: DialogsCmd::Try { path, script, lang },
        } => {
            let dir = path.unwrap_or_else(|| PathBuf::from("dialogs"));
            let bundle = load_checked(&dir)?;
            // A throwaway database in a temporary folder, removed on exit:
            // trying a script stores nothing.
            let tmp = tempfile::tempdir().context("cannot create a temporary folder")?;
            let store = open_store(&DbLocation::Sqlite(tmp.path().join("try.db"))).await?;
            let runner = terminal_runner(store, bundle, lang, script).await?;
            let user = UserKey::new(Transport::Terminal, "try").context("internal user key")?;
            let opts = ChatOptions {
                user,
                lang,
                resume: false,
                inbox: tmp.path().join("inbox"),
                echo: !std::io::stdin().is_terminal(),
                follow_up: false,
            };
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            run_chat(&runner, &opts, stdin, &mut std::io::stdout()).await?;
            Ok(0)
        }
        Cmd::Dialogs {
            cmd: DialogsCmd::Versions { common },
        } => {
            let store = open_store(&common.db).await?;
            let current = load_dir(&common.dialogs).ok();
            println!(
                "{:<14} {:<16} {:<4} {:>13}  {:<20} current",
                "version", "script", "lang", "open sessions", "first seen"
            );
            for v in store.versions_in_use().await? {
                let is_current = current
                    .as_ref()
                    .and_then(|b| b.by_version(&v.version))
                    .is_some();
                println!(
                    "{:<14} {:<16} {:<4} {:>13}  {:<20} {}",
                    &v.version[..12.min(v.version.len())],
                    v.script_id,
                    v.lang,
                    v.open_sessions,
                    v.created_at.format("%Y-%m-%d %H:%M"),
                    if is_current { "yes" } else { "" }
                );
            }
            Ok(0)
        }
        Cmd::Routing {
            cmd:
                RoutingCmd::Explain {
                    answers,
                    dialogs,
                    script,
                    lang,
                },
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
        Cmd::Cases {
            cmd: CasesCmd::Due { common },
        } => {
            let bundle = load_checked(&common.dialogs)?;
            let store = open_store(&common.db).await?;
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
        Cmd::Cases {
            cmd:
                CasesCmd::List {
                    common,
                    hub,
                    status,
                },
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
        Cmd::Cases {
            cmd: CasesCmd::Show { common, id },
        } => {
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
        Cmd::MyData { common, user } => {
            let store = open_store(&common.db).await?;
            let user = UserKey::parse(&user).context("invalid --user")?;
            let export = madoguchi::privacy::export(store.as_ref(), &user).await?;
            // serde_json writes C0 controls as escapes but not C1 controls
            // or bidi overrides; those are escaped too, so the JSON stays
            // valid and exact and the terminal shows it as it is.
            println!(
                "{}",
                escape::json_for_terminal(&serde_json::to_string_pretty(&export)?)
            );
            Ok(0)
        }
        Cmd::Forget {
            common,
            user,
            yes,
            inbox,
        } => {
            let store = open_store(&common.db).await?;
            let user = UserKey::parse(&user).context("invalid --user")?;
            if !yes {
                println!("this deletes every answer, session and case content of {user}; consent records are kept for 3 years as the law requires.\nrun again with --yes to delete.");
                return Ok(2);
            }
            let mut deliveries = Vec::new();
            for c in store.cases_of_user(&user).await? {
                deliveries.extend(store.deliveries(c.id).await?);
            }
            let r = store.forget_user(&user, chrono::Utc::now()).await?;
            // The inbox copies become tombstones after the store forgot, so
            // that no delivery can write a copy again afterwards.
            let files = madoguchi::delivery::tombstone_local(&inbox, &deliveries)
                .with_context(|| format!("the data was deleted from the database, but a copy in the inbox {} could not be replaced: fix the folder's permissions and run `madoguchi forget --yes` again", inbox.display()))?;
            println!(
                "deleted {} session(s), {} answer(s), the contents of {} case(s); replaced {} inbox file(s) with tombstones; kept {} consent record(s) as the law requires",
                r.sessions, r.answers, r.cases, files, r.consent_records_kept
            );
            Ok(0)
        }
        Cmd::Store {
            cmd: StoreCmd::Copy { from, to },
        } => {
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
                .with_context(|| format!("cannot open the database {from}"))?;
            let target = madoguchi::store::postgres::PostgresStore::open(url)
                .await
                .with_context(|| format!("cannot open the database {to}"))?;
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
        Cmd::Backup { common, out } => {
            let DbLocation::Sqlite(path) = &common.db else {
                bail!("madoguchi backup copies an SQLite database; back PostgreSQL up with its own tools (pg_dump, or the base backups your IT department runs)");
            };
            if !path.exists() {
                bail!("there is no database {}; check --db", common.db);
            }
            let store = madoguchi::store::sqlite::SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the database {}", common.db))?;
            madoguchi::store::copy::backup_sqlite(&store, &out)
                .await
                .with_context(|| format!("cannot back up {} to {}", common.db, out.display()))?;
            println!("backed up {} to {}", common.db, out.display());
            Ok(0)
        }
        Cmd::Run {
            config,
            db,
            dialogs,
            inbox,
            health_port,
        } => {
            let mut cfg = madoguchi::discord::Config::load(&config)?;
            let db = match db {
                Some(db) => db,
                None => DbLocation::parse(&cfg.db.to_string_lossy())
                    .with_context(|| format!("`db` in {}", config.display()))?,
            };
            cfg.dialogs = dialogs.unwrap_or(cfg.dialogs);
            cfg.reminders.inbox = Some(inbox.clone());
            let token = std::env::var("DISCORD_TOKEN")
                .ok()
                .context("DISCORD_TOKEN is not set: put the bot token from the Discord developer portal (Bot → Reset Token) in it")?;
            let token = madoguchi::discord::Token::new(&token)?;
            let bundle = load_checked(&cfg.dialogs)?;
            let store = open_store(&db).await?;
            let delivered =
                madoguchi::delivery::deliver_local(store.as_ref(), &inbox, chrono::Utc::now())
                    .await?;
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
                    madoguchi::instances::run_with_leader_lock(
                        cfg,
                        token,
                        Arc::new(runner),
                        url,
                        health,
                    )
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
    }
}

/// A runner for a terminal consultation (`chat` and `dialogs try`).
async fn terminal_runner(
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

/// Renders DOT to SVG with Graphviz's `dot`, if installed.
fn svg(dot: &str) -> Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("Graphviz is not installed (no `dot` command): install it (e.g. `apt-get install graphviz`) or use --format dot / mermaid")?;
    child
        .stdin
        .take()
        .context("dot stdin")?
        .write_all(dot.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("dot failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads the dialogs or explains every problem.
fn load_checked(dir: &Path) -> Result<madoguchi::script::Bundle> {
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

/// Prints diagnostics; 0 = clean, 1 = errors, 2 = warnings only.
fn check(dir: &Path, lang: Lang) -> u8 {
    let diags = match load_dir(dir) {
        Ok(b) => {
            let mut all = b.warnings.clone();
            all.extend(madoguchi::script::lint_bundle(&b));
            madoguchi::script::diag::normalize(all)
        }
        Err(madoguchi::script::compile::LoadError::Invalid(d)) => d,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    for d in &diags {
        println!("{}", d.render(lang));
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    match lang {
        Lang::Ja => println!("エラー {errors} 件、警告 {warnings} 件"),
        Lang::En => println!("{errors} error(s), {warnings} warning(s)"),
    }
    if errors > 0 {
        1
    } else if warnings > 0 {
        2
    } else {
        0
    }
}
