//! `madoguchi dialogs`: check, test, draw, try and list dialog scripts.

use super::{load_checked, open_store, parse_lang, terminal_runner, Common};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use madoguchi::chat::{run_chat, ChatOptions};
use madoguchi::domain::ids::{Transport, UserKey};
use madoguchi::script::{load_dir, Lang, Severity};
use madoguchi::store::DbLocation;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum DialogsCmd {
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

pub async fn dialogs(cmd: DialogsCmd) -> Result<u8> {
    match cmd {
        DialogsCmd::Check { path, lang } => {
            let dir = path.unwrap_or_else(|| PathBuf::from("dialogs"));
            Ok(check(&dir, lang))
        }
        DialogsCmd::Test { path, verbose } => {
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
        DialogsCmd::Graph {
            path,
            script,
            lang,
            format,
            out,
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
        DialogsCmd::Try { path, script, lang } => {
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
                trial: true,
                follow_up: false,
            };
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            run_chat(&runner, &opts, stdin, &mut std::io::stdout()).await?;
            Ok(0)
        }
        DialogsCmd::Versions { common } => {
            let store = super::open_existing(&common.db).await?;
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
    }
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

/// Prints diagnostics; 0 = clean, 1 = errors, 2 = warnings only.
pub fn check(dir: &Path, lang: Lang) -> u8 {
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
    let mut errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    // The desk's staff texts (dialogs/desk/), checked like the scripts'.
    if let Err(e) = madoguchi::desk::DeskTexts::load(dir) {
        println!("error: {e}");
        errors += 1;
    }
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
