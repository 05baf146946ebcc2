//! The `madoguchi` command: terminal chat, dialog tools, case views.
//!
//! This file only parses the command line and dispatches; each command
//! group lives in a module of [`cli`].

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};

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

#[derive(Subcommand)]
enum Cmd {
    /// Hold a consultation in the terminal (stdin/stdout; piping works).
    Chat(cli::chat::ChatArgs),
    /// Check, test and inspect dialog scripts.
    Dialogs {
        #[command(subcommand)]
        cmd: cli::dialogs::DialogsCmd,
    },
    /// Explain routing decisions.
    Routing {
        #[command(subcommand)]
        cmd: cli::routing::RoutingCmd,
    },
    /// What staff see and do: routed cases.
    Cases {
        #[command(subcommand)]
        cmd: cli::cases::CasesCmd,
    },
    /// Show everything stored about an owner (their answers, cases, consents).
    MyData(cli::mydata::MyDataArgs),
    /// Delete an owner's data, keeping only the consent records the law requires.
    Forget(cli::mydata::ForgetArgs),
    /// Move the data to another database (e.g. from SQLite to PostgreSQL).
    Store {
        #[command(subcommand)]
        cmd: cli::store::StoreCmd,
    },
    /// Write a consistent copy of the SQLite database while the bot runs.
    Backup(cli::store::BackupArgs),
    /// The network's KPI report for a period (aggregates only): md, csv or html.
    Report(madoguchi::report::cli::ReportArgs),
    /// Run the bot: Discord (DISCORD_TOKEN), Slack (SLACK_BOT_TOKEN), both, or neither (cases and reminders go to the local inbox); see madoguchi.example.toml and the README.
    Run(cli::run::RunArgs),
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
            eprintln!("error: {}", error_text(&e));
            std::process::ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each cause said once. `{:#}`
/// joins every cause's message, but a message often already holds its
/// cause's (sqlx's "error returned from database: (code: 14) unable to
/// open database file" holds SQLite's own), and the same words then came
/// three times over.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
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
    // A command line clap cannot parse exits 64 (EX_USAGE), not clap's 2:
    // `dialogs check` exits 2 for "warnings only", and `forget` for "not
    // confirmed", so a script that accepts 2 must never pass a broken
    // command line. Help and the version print as usual and exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            // A closed stderr leaves nothing to tell; the exit code still says it.
            let _ = e.print();
            return Ok(if usage { 64 } else { 0 });
        }
    };
    if matches!(cli.cmd, Cmd::Run(_)) {
        sigpipe(false);
    }
    match cli.cmd {
        Cmd::Chat(args) => cli::chat::chat(args).await,
        Cmd::Dialogs { cmd } => cli::dialogs::dialogs(cmd).await,
        Cmd::Routing { cmd } => cli::routing::routing(cmd).await,
        Cmd::Cases { cmd } => cli::cases::cases(cmd).await,
        Cmd::MyData(args) => cli::mydata::my_data(args).await,
        Cmd::Forget(args) => cli::mydata::forget(args).await,
        Cmd::Store { cmd } => cli::store::store(cmd).await,
        Cmd::Backup(args) => cli::store::backup(args).await,
        Cmd::Report(args) => madoguchi::report::cli::run(args).await,
        Cmd::Run(args) => cli::run::run(args).await,
    }
}
