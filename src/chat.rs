//! The terminal adapter: a consultation on standard input and output.
//!
//! It works the same with a person at a keyboard and with piped input, so
//! scripts and tests can drive it. The owner key is `terminal:<name>`, so
//! `--resume` finds the consultation left open by an earlier run.

use crate::delivery::deliver_local;
use crate::domain::ids::UserKey;
use crate::engine::{Effect, Input, Prompt, PromptKind};
use crate::runner::{RunError, Runner, Turn};
use crate::script::{Command, Lang};
use crate::store::Store;
use std::io::Write;
use std::path::PathBuf;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Renders a step's effects as the terminal shows them. Transcript tests
/// match against exactly this text.
pub fn render_effects(effects: &[Effect], lang: Lang) -> String {
    let mut out = Vec::new();
    for e in effects {
        match e {
            Effect::Say(s) => out.push(s.clone()),
            Effect::Ask(p) => out.push(render_prompt(p, lang)),
            _ => {}
        }
    }
    out.join("\n\n")
}

fn numbered(items: &[crate::engine::PromptOption]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, o)| format!("  {}) {}", i + 1, o.label))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render_prompt(p: &Prompt, lang: Lang) -> String {
    let ja = lang == Lang::Ja;
    let mut s = p.text.clone();
    let hint = match &p.kind {
        PromptKind::Choice { options } | PromptKind::YesNo { options } => Some(numbered(options)),
        PromptKind::Multi { options, .. } => Some(format!(
            "{}\n  {}",
            numbered(options),
            if ja {
                "（複数選べます。番号を「、」で区切って入力）"
            } else {
                "(choose several: numbers separated by commas)"
            }
        )),
        // A brief re-ask is one line; the list was shown just before.
        PromptKind::Confirm { brief: true, .. } => None,
        PromptKind::Confirm { send, items, .. } => Some(format!(
            "{}\n  {} → 「{}」",
            numbered(items),
            if ja { "送信する場合" } else { "To send" },
            if ja { "送信" } else { "send" }
        ))
        .filter(|_| !send.id.is_empty()),
        PromptKind::Number { unit: Some(u) } => Some(if ja {
            format!("  （単位: {u}）")
        } else {
            format!("  (unit: {u})")
        }),
        _ => None,
    };
    if let Some(h) = hint {
        s.push('\n');
        s.push_str(&h);
    }
    if p.optional {
        s.push_str(if ja {
            "\n  （任意。「スキップ」でとばせます）"
        } else {
            "\n  (optional: type \"skip\")"
        });
    }
    s
}

pub struct ChatOptions {
    pub user: UserKey,
    pub lang: Lang,
    pub resume: bool,
    pub inbox: PathBuf,
    /// Echo each input line (useful when input is piped).
    pub echo: bool,
}

/// Runs one consultation until it ends or input runs out.
pub async fn run_chat<R: AsyncBufRead + Unpin, W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    input: R,
    out: &mut W,
) -> anyhow::Result<()> {
    let store = runner.store().clone();
    let open = store.open_session(&opts.user).await?;
    let first = match (open, opts.resume) {
        (Some(_), true) => Input::Resume,
        (Some(_), false) => {
            // A fresh `chat` starts over; the unfinished consultation is
            // cancelled through the engine so its end is recorded.
            runner
                .handle(&opts.user, Input::Command(Command::Cancel), Some(opts.lang))
                .await?;
            Input::Start
        }
        (None, _) => Input::Start,
    };
    let turn = runner.handle(&opts.user, first, Some(opts.lang)).await?;
    if show(runner, opts, &turn, out).await? {
        return Ok(());
    }
    let mut lines = input.lines();
    loop {
        write!(out, "\n> ")?;
        out.flush()?;
        let Some(line) = lines.next_line().await? else {
            let msg = if opts.lang == Lang::Ja {
                "\n入力が終わったので中断します。回答は保存されています。`madoguchi chat --resume` で続きから再開できます。"
            } else {
                "\nInput ended; the consultation is paused and your answers are saved. Run `madoguchi chat --resume` to continue."
            };
            writeln!(out, "{msg}")?;
            return Ok(());
        };
        if opts.echo {
            writeln!(out, "{line}")?;
        }
        let turn = match runner
            .handle(&opts.user, Input::Text(line), Some(opts.lang))
            .await
        {
            Ok(t) => t,
            Err(e @ RunError::Store(_)) => {
                return Err(anyhow::Error::new(e)
                    .context("the answer could not be saved; nothing was lost before it"))
            }
            Err(e) => return Err(e.into()),
        };
        if show(runner, opts, &turn, out).await? {
            return Ok(());
        }
    }
}

/// Prints a turn; returns true when the consultation has ended.
async fn show<W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    turn: &Turn,
    out: &mut W,
) -> anyhow::Result<bool> {
    let lang = turn.flow.lang;
    let text = render_effects(&turn.effects, lang);
    if !text.is_empty() {
        writeln!(out, "\n{}", indent(&text))?;
    }
    let store: &dyn Store = runner.store().as_ref();
    if let Some(case_id) = turn.case {
        let delivered = deliver_local(store, &opts.inbox, runner.clock().now()).await?;
        if let Some(case) = store.case(case_id).await? {
            let (title, to, why) = if lang == Lang::Ja {
                ("案件", "送付先", "理由")
            } else {
                ("Case", "Sent to", "Why")
            };
            writeln!(
                out,
                "\n──────── {title} {} ────────\n{}",
                case.id, case.summary_plain
            )?;
            writeln!(out, "\n{to}:")?;
            for h in case.route.recipients() {
                let path = delivered
                    .iter()
                    .find(|d| d.hub_id == h.id)
                    .map(|d| format!(" → {}", d.path.display()))
                    .unwrap_or_default();
                writeln!(out, "  - {} ({}){path}", h.name, h.id)?;
            }
            writeln!(out, "{why}: {} [{}]", case.route.reason, case.route.rule)?;
        }
    }
    Ok(turn
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Finished(_))))
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
