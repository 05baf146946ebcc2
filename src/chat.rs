//! The terminal adapter: a consultation on standard input and output.
//!
//! It works the same with a person at a keyboard and with piped input, so
//! scripts and tests can drive it. The owner key is `terminal:<name>`, so
//! `--resume` finds the consultation left open by an earlier run.

use crate::delivery::deliver_local;
use crate::domain::ids::UserKey;
use crate::engine::{Effect, Input, Prompt, PromptKind};
use crate::escape;
use crate::runner::{RunError, Runner, Turn};
use crate::script::{Command, Lang};
use crate::store::Store;
use std::io::Write;
use std::path::PathBuf;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

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
            "{}\n  {}",
            numbered(items),
            if ja {
                "送信する場合 → 「送信」"
            } else {
                "To send → \"send\""
            }
        ))
        .filter(|_| !send.id.is_empty()),
        PromptKind::Number { unit: Some(u) } => Some(if ja {
            format!("  （単位: {u}）")
        } else {
            format!("  (unit: {})", crate::render::prompt::unit_for(Lang::En, u))
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
    /// Only a due follow-up after a match (step 5): fail when none is due.
    /// Without it a due follow-up still comes first.
    pub follow_up: bool,
    /// A trial (`dialogs try`) on a throwaway database: nothing is kept,
    /// so the owner is not told their answers are saved.
    pub trial: bool,
}

/// The longest input line read whole. Answers are limited far below this
/// (the engine refuses answers over its own limit with a reply); the bound
/// only keeps a runaway pipe without newlines from filling the memory.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// One line of input, as bytes until proven text.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text(String),
    /// Not UTF-8, but valid Shift_JIS: most likely a file saved by an old
    /// Windows editor. The decoded text is kept only for echoing.
    ShiftJis(String),
    /// Neither UTF-8 nor Shift_JIS.
    Invalid,
    /// Longer than [`MAX_LINE_BYTES`]; the rest of the line was skipped.
    TooLong,
}

/// Reads one line (without its line ending); `None` at the end of input.
async fn read_line<R: AsyncBufRead + Unpin>(input: &mut R) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let n = (&mut *input)
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES {
        // Skip to the end of this line so the next read starts on the next
        // one, without holding the rest in memory.
        loop {
            let chunk = input.fill_buf().await?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    input.consume(i + 1);
                    break;
                }
                None => {
                    let len = chunk.len();
                    input.consume(len);
                }
            }
        }
        return Ok(Some(Line::TooLong));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(Some(decode_line(buf)))
}

/// Decides what a line of bytes is: UTF-8 text, Shift_JIS text, or neither.
fn decode_line(buf: Vec<u8>) -> Line {
    match String::from_utf8(buf) {
        Ok(s) => Line::Text(s),
        Err(e) => {
            let bytes = e.into_bytes();
            match encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(&bytes)
            {
                Some(s) => Line::ShiftJis(s.into_owned()),
                None => Line::Invalid,
            }
        }
    }
}

/// The reply to a line that is not text. Nothing of it is recorded; the
/// question stays open. `again` is true when the same kind of line was
/// already explained in this run: a whole file in Shift_JIS would otherwise
/// repeat the conversion advice at every line.
fn unreadable_reply(line: &Line, lang: Lang, again: bool) -> &'static str {
    match (line, lang) {
        (Line::ShiftJis(_), Lang::Ja) if again => "この行も Shift_JIS のため読み取れませんでした（何も記録していません）。UTF-8 で入力してください。",
        (Line::ShiftJis(_), _) if again => "This line is in Shift_JIS too, so it could not be read (nothing was recorded). Please type in UTF-8.",
        (Line::ShiftJis(_), Lang::Ja) => "この行は Shift_JIS で書かれているため読み取れませんでした（何も記録していません）。UTF-8 で入力してください。ファイルから入力する場合は `iconv -f SHIFT_JIS -t UTF-8 回答.txt > 回答-utf8.txt` で UTF-8 に変換できます。",
        (Line::ShiftJis(_), _) => "This line is in Shift_JIS, so it could not be read (nothing was recorded). Please type in UTF-8; to convert a file of answers, run `iconv -f SHIFT_JIS -t UTF-8 answers.txt > answers-utf8.txt`.",
        (Line::TooLong, Lang::Ja) => "この行は長すぎるため読み取れませんでした（何も記録していません）。短くしてもう一度入力してください。",
        (Line::TooLong, _) => "This line is too long to read (nothing was recorded). Please shorten it and type it again.",
        (_, Lang::Ja) => "この行には文字として読めないデータが含まれているため読み取れませんでした（何も記録していません）。もう一度入力してください。ファイルから入力する場合は UTF-8 で保存してください。",
        (_, _) => "This line contains bytes that are not text, so it could not be read (nothing was recorded). Please type it again; a file of answers must be saved as UTF-8.",
    }
}

/// What the owner chose when a consultation was already open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenChoice {
    Continue,
    StartOver,
}

/// Reads the owner's reply to "continue or start over?". An empty line or
/// the end of input means continue: the safe choice loses nothing.
fn parse_open_choice(line: &str) -> Option<OpenChoice> {
    let folded = crate::domain::text::fold_for_match(line);
    match folded.as_str() {
        "" | "1" | "1)" | "つづき" | "続き" | "続きから" | "再開" | "つづける" | "続ける"
        | "continue" | "c" | "resume" => Some(OpenChoice::Continue),
        "2" | "2)" | "最初から" | "さいしょから" | "やりなおす" | "やり直す" | "startover"
        | "start" | "restart" | "new" | "s" => Some(OpenChoice::StartOver),
        _ => None,
    }
}

fn open_choice_prompt(lang: Lang) -> &'static str {
    if lang == Lang::Ja {
        "前回の相談が途中のままです。どうしますか？\n  1) 続きから再開する（回答はそのまま）\n  2) 最初からやり直す（前回の相談は中止します）\n  （何も入力せずに Enter で 1）"
    } else {
        "Your previous consultation is still open. What would you like to do?\n  1) Continue where you left off (your answers are kept)\n  2) Start over (the previous consultation is cancelled)\n  (press Enter for 1)"
    }
}

/// Asks whether to continue the open consultation or start over, until the
/// owner answers; the end of input means continue.
async fn ask_open_choice<R: AsyncBufRead + Unpin, W: Write>(
    opts: &ChatOptions,
    input: &mut R,
    out: &mut W,
) -> anyhow::Result<OpenChoice> {
    writeln!(out, "\n{}", indent(open_choice_prompt(opts.lang)))?;
    loop {
        write!(out, "\n> ")?;
        out.flush()?;
        let Some(line) = read_line(input).await? else {
            writeln!(out)?;
            return Ok(OpenChoice::Continue);
        };
        if opts.echo {
            writeln!(out, "{}", echo_text(&line))?;
        }
        let choice = match &line {
            Line::Text(t) => parse_open_choice(t),
            _ => None,
        };
        match choice {
            Some(c) => return Ok(c),
            None => {
                let again = if opts.lang == Lang::Ja {
                    "「1」（続きから）か「2」（最初から）で答えてください。"
                } else {
                    "Please answer 1 (continue) or 2 (start over)."
                };
                writeln!(out, "\n  {again}")?;
            }
        }
    }
}

/// What an echoed line shows: the text, or the decodable part of it.
fn echo_text(line: &Line) -> String {
    match line {
        Line::Text(t) | Line::ShiftJis(t) => t.clone(),
        Line::Invalid => "(?)".to_string(),
        Line::TooLong => "(…)".to_string(),
    }
}

/// Runs one consultation until it ends or input runs out.
pub async fn run_chat<R: AsyncBufRead + Unpin, W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    mut input: R,
    out: &mut W,
) -> anyhow::Result<()> {
    let store = runner.store().clone();
    // Cases a crash left saved but undelivered go out before anything
    // else: the local inbox is an outbox like Discord's.
    deliver_local(store.as_ref(), &opts.inbox, runner.clock().now()).await?;
    // A forward staff asked for, waiting for this owner's consent, is
    // asked first: the terminal has no DM to carry it meanwhile.
    if answer_forwards(runner, opts, &mut input, out).await? {
        deliver_local(store.as_ref(), &opts.inbox, runner.clock().now()).await?;
    }
    let open = store.open_session(&opts.user).await?;
    // Step 5: a follow-up that is due is offered before anything else,
    // unless the owner is in the middle of a consultation.
    let follow_up = match &open {
        None => crate::followup::offer_due(runner, &opts.user).await?,
        Some(_) => None,
    };
    let in_follow_up = open.as_ref().is_some_and(|s| s.state.follow_up.is_some());
    if opts.follow_up && follow_up.is_none() && !in_follow_up {
        let msg = match (&open, opts.lang) {
            (Some(_), Lang::Ja) => "相談の途中です。`madoguchi chat --resume` で続けるか終えてから、もう一度お試しください",
            (Some(_), Lang::En) => "a consultation is still open: finish it with `madoguchi chat --resume`, then try again",
            (None, Lang::Ja) => "このユーザーに予定されたフォローアップはありません。フォローアップは案件が採用・マッチングで完了した後、routing.yaml の follow_up.after_months の時期に届きます",
            (None, Lang::En) => "no follow-up is due for this user: follow-ups come at routing.yaml's follow_up.after_months after a case is closed as matched or hired",
        };
        anyhow::bail!("{msg}");
    }
    if let Some(turn) = follow_up {
        return converse(runner, opts, input, out, turn).await;
    }
    let first = match (open, opts.resume) {
        (Some(_), true) => Input::Resume,
        // An open consultation is never cancelled without asking: an owner
        // who forgot `--resume` would otherwise lose it silently.
        (Some(_), false) => match ask_open_choice(opts, &mut input, out).await? {
            OpenChoice::Continue => Input::Resume,
            OpenChoice::StartOver => {
                // Cancelled through the engine so its end is recorded.
                runner
                    .handle(&opts.user, Input::Command(Command::Cancel), Some(opts.lang))
                    .await?;
                Input::Start
            }
        },
        (None, resume) => {
            if resume {
                // Said, so that an owner who expected their answers back
                // is not silently shown the first question.
                let msg = match opts.lang {
                    Lang::Ja => "再開できる相談はありません（前回の相談は終了しているか、まだ始まっていません）。新しい相談を始めます。",
                    Lang::En => "There is no open consultation to resume (the last one has ended, or none was started). Starting a new one.",
                };
                writeln!(out, "\n{}", indent(msg))?;
            }
            Input::Start
        }
    };
    let turn = runner.handle(&opts.user, first, Some(opts.lang)).await?;
    converse(runner, opts, input, out, turn).await
}

/// Asks the owner about each forward waiting for their consent (staff
/// want to hand their case on to a hub their consent does not name): the
/// question as the desk wrote it, answered 1 (agree) or 2 (do not agree),
/// decided and applied as a chat platform's buttons are
/// ([`crate::casework::owner_answer`], with the question as the consent's
/// wording). An unclear answer is asked again twice; then, or when input
/// runs out, the request keeps waiting. Returns whether a case moved.
async fn answer_forwards<R: AsyncBufRead + Unpin, W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    input: &mut R,
    out: &mut W,
) -> anyhow::Result<bool> {
    use crate::desk::{self, texts::Plain, DeskTexts, Network};
    let store = runner.store().clone();
    let waiting: Vec<_> = store
        .pending_forward_requests(200)
        .await?
        .into_iter()
        .filter(|r| r.user == opts.user)
        .collect();
    if waiting.is_empty() {
        return Ok(false);
    }
    let texts = DeskTexts::shipped();
    let mut moved = false;
    for req in waiting {
        let Some(view) = crate::casework::load(store.as_ref(), req.case).await? else {
            continue;
        };
        let lang = match store.session(view.case.session).await? {
            Some(s) => s.lang,
            None => opts.lang,
        };
        let mut network = Network::from_bundle(&runner.bundle());
        // The case reaches the new hub the way it first reached its hubs.
        for d in store.deliveries(req.case).await? {
            if !network.transports.contains(&d.transport) {
                network.transports.push(d.transport);
            }
        }
        let render = |t: &desk::Text| texts.render(lang, t, &Plain);
        // Asked by a hub that no longer holds the case, or about a closed
        // case: the owner is not asked, but told that the question was
        // dropped and why (the desk withdraws it whatever the answer).
        if desk::outgrown(&view, &req) {
            let outcome = crate::casework::owner_answer(
                store.as_ref(),
                &network,
                &req,
                false,
                "",
                runner.clock().now(),
            )
            .await?;
            let told = match outcome {
                crate::casework::Outcome::Refused(t) => Some(t),
                crate::casework::Outcome::Done { effects, .. } => effects.reply,
            };
            if let Some(t) = told {
                writeln!(out, "\n{}", render(&t)?)?;
            }
            continue;
        }
        let ask = render(&desk::forward_ask(&network, &view, &req))?;
        let agree = render(&desk::Text::new("owner.agree"))?;
        let disagree = render(&desk::Text::new("owner.disagree"))?;
        writeln!(out, "\n{ask}\n  1) {agree}\n  2) {disagree}")?;
        let mut answer = None;
        for _ in 0..3 {
            write!(out, "\n> ")?;
            out.flush()?;
            let Some(line) = read_line(input).await? else {
                break;
            };
            let said = echo_text(&line);
            if opts.echo {
                writeln!(out, "{said}")?;
            }
            let t = crate::domain::text::fold_for_match(said.trim());
            let is = |w: &str| t == crate::domain::text::fold_for_match(w);
            if is("1") || is(&agree) || ["はい", "同意", "yes", "agree"].iter().any(|w| is(w)) {
                answer = Some(true);
                break;
            }
            if is("2") || is(&disagree) || ["いいえ", "no", "disagree"].iter().any(|w| is(w)) {
                answer = Some(false);
                break;
            }
            let again = match lang {
                Lang::Ja => format!("「1」（{agree}）か「2」（{disagree}）で答えてください。"),
                Lang::En => format!("Please answer 1 ({agree}) or 2 ({disagree})."),
            };
            writeln!(out, "\n  {again}")?;
        }
        let Some(yes) = answer else {
            let later = match lang {
                Lang::Ja => {
                    "このおたずねは、次に `madoguchi chat` を始めたときにもう一度お聞きします。"
                }
                Lang::En => "We will ask this again the next time you start `madoguchi chat`.",
            };
            writeln!(out, "\n{later}")?;
            continue;
        };
        let outcome = crate::casework::owner_answer(
            store.as_ref(),
            &network,
            &req,
            yes,
            &ask,
            runner.clock().now(),
        )
        .await?;
        let reply = match outcome {
            crate::casework::Outcome::Refused(t) => render(&t)?,
            crate::casework::Outcome::Done { effects, .. } => {
                moved |= effects
                    .changes
                    .iter()
                    .any(|c| matches!(c, desk::Change::Forward { .. }));
                match &effects.reply {
                    Some(t) => render(t)?,
                    None => String::new(),
                }
            }
        };
        writeln!(out, "\n{reply}")?;
    }
    Ok(moved)
}

/// Shows the first turn, then answers line by line until the conversation
/// ends or input runs out.
async fn converse<R: AsyncBufRead + Unpin, W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    mut input: R,
    out: &mut W,
    turn: Turn,
) -> anyhow::Result<()> {
    let mut lang = turn.flow.lang;
    let mut told_shift_jis = false;
    if show(runner, opts, &turn, out).await? {
        return Ok(());
    }
    loop {
        write!(out, "\n> ")?;
        out.flush()?;
        let Some(line) = read_line(&mut input).await? else {
            let msg = match (lang, opts.trial) {
                (Lang::Ja, false) => "\n入力が終わったので中断します。回答は保存されています。`madoguchi chat --resume` で続きから再開できます。",
                (Lang::En, false) => "\nInput ended; the consultation is paused and your answers are saved. Run `madoguchi chat --resume` to continue.",
                (Lang::Ja, true) => "\n入力が終わったので試行を終わります。これは試行なので、回答は保存していません（何も残りません）。",
                (Lang::En, true) => "\nInput ended; the trial is over. It was a trial, so nothing was stored.",
            };
            writeln!(out, "{msg}")?;
            return Ok(());
        };
        if opts.echo {
            writeln!(out, "{}", crate::escape::terminal(&echo_text(&line)))?;
        }
        let Line::Text(line) = line else {
            // Bytes that are not text never reach the engine: nothing is
            // recorded, and the same question waits for the next line.
            let is_sjis = matches!(line, Line::ShiftJis(_));
            let reply = unreadable_reply(&line, lang, is_sjis && told_shift_jis);
            told_shift_jis |= is_sjis;
            writeln!(out, "\n{}", indent(reply))?;
            continue;
        };
        if crate::privacy::is_forget_request(&line) {
            if forget(runner, opts, &mut input, out, lang).await? {
                return Ok(());
            }
            // Kept: the question the owner was on is shown again.
            let turn = runner
                .handle(&opts.user, Input::Resume, Some(opts.lang))
                .await?;
            if show(runner, opts, &turn, out).await? {
                return Ok(());
            }
            continue;
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
        lang = turn.flow.lang;
        if show(runner, opts, &turn, out).await? {
            return Ok(());
        }
    }
}

/// 「データ削除」 typed in the chat: the owner's data is deleted as on
/// Discord and Slack, after the same question (the wording is
/// [`crate::privacy::forget_texts`]), and the inbox copies of their cases
/// become tombstones as `madoguchi forget` makes them. Returns true when
/// the data was deleted (the chat then ends: there is nothing left to
/// continue).
async fn forget<R: AsyncBufRead + Unpin, W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    input: &mut R,
    out: &mut W,
    lang: Lang,
) -> anyhow::Result<bool> {
    use crate::privacy::forget_texts;
    let yes = forget_texts::yes_label(lang);
    let no = forget_texts::no_label(lang);
    writeln!(
        out,
        "\n{}",
        indent(&format!(
            "{}\n  1) {yes}\n  2) {no}",
            forget_texts::confirm(lang)
        ))
    )?;
    write!(out, "\n> ")?;
    out.flush()?;
    let line = read_line(input).await?;
    if opts.echo {
        // Piped answers show in the log like every other answer.
        if let Some(l) = &line {
            writeln!(out, "{}", crate::escape::terminal(&echo_text(l)))?;
        }
    }
    let agreed = match line {
        Some(Line::Text(t)) => crate::privacy::confirms_forget(&t, &yes),
        _ => false,
    };
    if !agreed {
        writeln!(out, "\n{}", indent(&forget_texts::kept(lang)))?;
        return Ok(false);
    }
    let (r, files) = crate::delivery::forget_with_inbox(
        runner.store().as_ref(),
        &opts.user,
        &opts.inbox,
        runner.clock().now(),
    )
    .await
    .map_err(|e| match e {
        crate::delivery::ForgetError::Store(e) => anyhow::Error::new(e)
            .context("your data could not be deleted; nothing was changed, try again"),
        e @ crate::delivery::ForgetError::Inbox { .. } => anyhow::anyhow!(
            "{e}: fix the folder's permissions and run `madoguchi forget --user {} --yes`",
            opts.user
        ),
    })?;
    runner.forget_cached(&opts.user);
    let done = forget_texts::done_local(lang, &r, files);
    writeln!(out, "\n{}", indent(&done))?;
    Ok(true)
}

/// Prints a turn; returns true when the consultation has ended.
async fn show<W: Write>(
    runner: &Runner,
    opts: &ChatOptions,
    turn: &Turn,
    out: &mut W,
) -> anyhow::Result<bool> {
    let lang = turn.flow.lang;
    // What the terminal shows is escaped for it: prompts quote answers.
    let text = escape::terminal(&render_effects(&turn.effects, lang));
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
                case.id,
                escape::terminal(&case.summary_plain)
            )?;
            writeln!(out, "\n{to}:")?;
            for h in case.route.recipients() {
                let path = delivered
                    .iter()
                    .find(|d| d.hub_id == h.id)
                    .map(|d| format!(" → {}", d.path.display()))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  - {} ({}){path}",
                    escape::terminal_line(&h.name),
                    h.id
                )?;
            }
            writeln!(
                out,
                "{why}: {} [{}]",
                escape::terminal_line(&case.route.reason),
                case.route.rule
            )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_text_only_when_they_decode() {
        assert_eq!(
            decode_line("はい".as_bytes().to_vec()),
            Line::Text("はい".into())
        );
        assert_eq!(decode_line(vec![0xff]), Line::Invalid);
        // 「はい」 in Shift_JIS.
        assert_eq!(
            decode_line(vec![0x82, 0xcd, 0x82, 0xa2]),
            Line::ShiftJis("はい".into())
        );
        // Cut in the middle of a character: neither encoding.
        assert_eq!(decode_line(vec![0x82]), Line::Invalid);
    }

    #[tokio::test]
    async fn reads_lines_as_bytes_and_bounds_them() {
        let mut long = vec![b'a'; MAX_LINE_BYTES + 10];
        long.extend_from_slice(b"\nnext\r\n\xff\nlast");
        let mut input = tokio::io::BufReader::with_capacity(1024, &long[..]);
        assert_eq!(read_line(&mut input).await.unwrap(), Some(Line::TooLong));
        assert_eq!(
            read_line(&mut input).await.unwrap(),
            Some(Line::Text("next".into()))
        );
        assert_eq!(read_line(&mut input).await.unwrap(), Some(Line::Invalid));
        assert_eq!(
            read_line(&mut input).await.unwrap(),
            Some(Line::Text("last".into()))
        );
        assert_eq!(read_line(&mut input).await.unwrap(), None);
    }

    #[test]
    fn continue_is_the_default_and_start_over_is_explicit() {
        for s in ["", " ", "1", "１", "続き", "continue"] {
            assert_eq!(parse_open_choice(s), Some(OpenChoice::Continue), "{s:?}");
        }
        for s in ["2", "２", "最初から", "やり直す", "start over", "Restart"] {
            assert_eq!(parse_open_choice(s), Some(OpenChoice::StartOver), "{s:?}");
        }
        for s in ["はい", "3", "株式会社テスト"] {
            assert_eq!(parse_open_choice(s), None, "{s:?}");
        }
    }
}
