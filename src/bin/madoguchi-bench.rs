//! `madoguchi-bench`: the benchmark suite behind BENCHMARKS.md.
//!
//! ```text
//! cargo run --release --features bench-discord --bin madoguchi-bench -- all          # every workload
//! cargo run --release --features bench-discord --bin madoguchi-bench -- all --quick  # under a minute
//! cargo run --release --bin madoguchi-bench -- engine         # one workload
//! ```
//!
//! Without `--features bench-discord` (which links the local Discord
//! stand-in, `crates/discord-standin`) every workload but `discord` runs.
//!
//! Workloads (their shapes are fixed so figures stay comparable):
//!
//! 1. `engine`: the 20-question script in `benches/dialogs/` driven through
//!    `engine::step` alone, N conversations open at once (N = 2,000 and
//!    100,000): turns/s, peak RSS, memory per open conversation.
//! 2. `durable`: the same script through the real `Runner` and SQLite store
//!    (WAL, `synchronous = FULL`), 1,000 conversations in flight: turns/s and
//!    turn latency.
//! 3. `real`: the shipped Japanese first-contact dialog, replaying the
//!    Japanese transcripts in `dialogs/tests/`, engine-only and durable.
//! 4. `discord`: the bot (`madoguchi::discord::start`, real serenity
//!    client, SQLite) against the local Discord stand-in, many owners at once
//!    each going through the whole Japanese consultation by DM, buttons,
//!    selects and the form: consultations/s, owner turns/s, REST calls per
//!    turn, dispatch → answer latency (`src/bin/bench/discord.rs`).
//! 5. `startup`: process start to ready, and idle RSS.
//! 6. `slack` (feature `bench-slack`): the Slack app (`madoguchi::slack::
//!    start` over Socket Mode, real slack-morphism client, the outbox of
//!    `outbox::for_run`, SQLite) against the local Slack stand-in, many
//!    owners at once each going through the whole Japanese consultation in
//!    the DM: Web API calls per turn, action → answer latency
//!    (`src/bin/bench/slack.rs`). Not part of `all`.
//!
//! `all` runs each workload in a child process of its own, so peak-RSS
//! figures do not carry over from one workload to the next; it prints a
//! table and writes one JSON object per workload to `--json`.
//!
//! Every loop is bounded in count and time; the only sockets are the
//! Discord stand-in's and the bot's, on 127.0.0.1 (workload 4).

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clap::{Parser, Subcommand};
use madoguchi::domain::ids::{Transport, UserKey};
use madoguchi::engine::{self, Ctx, Effect, Input, SessionState, Status};
use madoguchi::render::RenderMode;
use madoguchi::runner::{FixedClock, Runner, RunnerConfig, RunnerOptions};
use madoguchi::script::{load_dir, Flow, Lang};
use madoguchi::store::postgres::PostgresStore;
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::Store;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "bench-discord")]
#[path = "bench/discord.rs"]
mod discord_e2e;

#[cfg(feature = "bench-slack")]
#[path = "bench/slack.rs"]
mod slack_e2e;

#[cfg(any(feature = "bench-discord", feature = "bench-slack"))]
#[path = "bench/settle.rs"]
mod settle;

// ───────────────────────── allocation counter ─────────────────────────

/// The bot's allocator (mimalloc, as in `src/main.rs`), counting the bytes
/// live on each thread. The
/// engine workload runs on one thread, so its counter is exact there; the
/// count is per thread, so it costs no atomic instruction.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

#[inline]
fn count(delta: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(p, l) };
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { mimalloc::MiMalloc.realloc(p, l, new) };
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.with(|c| c.get())
}

// ───────────────────────── /proc helpers (Linux) ─────────────────────────

fn status_kib(pid: Option<u32>, key: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let s = std::fs::read_to_string(path).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
/// CPU time this process has used (user + system, every thread), from
/// `/proc/self/stat` (clock ticks of 10 ms). On a shared machine the time
/// a turn takes depends on what the other processes leave, its CPU time
/// much less so.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}
fn rss_kib() -> u64 {
    status_kib(None, "VmRSS:").unwrap_or(0)
}
fn hwm_kib() -> u64 {
    status_kib(None, "VmHWM:").unwrap_or(0)
}
/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so a peak belongs to the
/// run that follows.
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
/// Gives freed heap back to the kernel, so an RSS baseline is not inflated
/// by an earlier run.
fn trim_heap() {
    // mimalloc (which also serves `malloc`, see Cargo.toml) returns the
    // memory it holds but no longer uses.
    extern "C" {
        fn mi_collect(force: bool);
    }
    unsafe {
        mi_collect(true);
    }
}

// ───────────────────────── command line ─────────────────────────

#[derive(Parser)]
#[command(
    name = "madoguchi-bench",
    about = "madoguchi's benchmark suite (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Smaller runs that finish in under a minute in all.
    #[arg(long, global = true)]
    quick: bool,
    /// Where `all` writes the JSON results (one object per workload).
    #[arg(long, global = true, default_value = "target/madoguchi-bench.json")]
    json: PathBuf,
    /// The benchmark script folder.
    #[arg(long, global = true, default_value = "benches/dialogs")]
    bench_dialogs: PathBuf,
    /// The shipped dialogs folder (workload 3 and start-up).
    #[arg(long, global = true, default_value = "dialogs")]
    dialogs: PathBuf,
    /// Where the durable workloads put their databases (a fresh temporary
    /// folder inside it; default: the system's temporary folder).
    #[arg(long, global = true)]
    db_dir: Option<PathBuf>,
    /// Run the durable workloads (2 and 3) on this PostgreSQL database
    /// (`postgres://…`) instead of SQLite, each run in a fresh schema.
    #[arg(long, global = true)]
    pg: Option<String>,
    /// With `--pg`: instances sharing the database, each a runner with its
    /// own connection pool, group committer and session cache (owners are
    /// split between them, as a load balancer would).
    #[arg(long, global = true, default_value_t = 1)]
    instances: usize,
    /// Print only the JSON object (used by `all` for its child processes).
    #[arg(long, global = true, hide = true)]
    child: bool,
}

#[derive(Subcommand, Clone, PartialEq)]
enum Cmd {
    /// Every workload, each in a child process; a table and a JSON file.
    All,
    /// Workload 1: the engine alone, N = 2,000 and N = 100,000.
    Engine {
        /// Conversation counts (default 2000 and 100000).
        #[arg(long, value_delimiter = ',')]
        n: Vec<usize>,
    },
    /// Workload 2: runner + SQLite, 1,000 conversations in flight.
    Durable {
        /// Conversations in flight at once.
        #[arg(long, default_value_t = 1000)]
        in_flight: usize,
        /// Conversations each in-flight slot runs one after another
        /// (default 20, 1 with --quick).
        #[arg(long)]
        rounds: Option<usize>,
        /// Only these variants: direct, nocache, group (default: all).
        #[arg(long, value_delimiter = ',')]
        variant: Vec<String>,
    },
    /// Workload 3: the shipped Japanese dialog, engine and durable.
    Real {
        /// Only these durable variants: nocache, group (default: both).
        #[arg(long, value_delimiter = ',')]
        variant: Vec<String>,
        /// Conversations each in-flight slot runs one after another
        /// (default 10, 1 with --quick).
        #[arg(long)]
        rounds: Option<usize>,
        /// Skip the engine-only phase (to profile the durable run alone).
        #[arg(long)]
        no_engine: bool,
        /// Offer turns at this fixed rate (turns per second) instead of
        /// letting 1,000 owners answer as fast as they are answered:
        /// 2,000 owners in 5 rounds (the same 10,000 conversations), each
        /// turn due on a schedule and its latency counted from when it
        /// was due.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Workload 4: Discord end to end (needs `--features bench-discord`).
    Discord {
        /// Owners consulting at once (default 200; 50 with --quick).
        #[arg(long)]
        owners: Option<usize>,
        /// Consultations each owner slot runs one after another (default 5; 2 with --quick).
        #[arg(long)]
        rounds: Option<usize>,
        /// Let the stand-in decode every payload with serenity's models, as
        /// in the tests (costs stand-in CPU on the same 2 cores).
        #[arg(long)]
        check_models: bool,
    },
    /// Workload 5: start-up time and idle RSS.
    Startup,
    /// Workload 6: Slack end to end (needs `--features bench-slack`).
    Slack {
        /// Owners consulting at once (default 100; 20 with --quick).
        #[arg(long)]
        owners: Option<usize>,
        /// Consultations each owner slot runs one after another (default 3; 2 with --quick).
        #[arg(long)]
        rounds: Option<usize>,
    },
    /// (internal) What start-up measures: load, validate, migrate, ready.
    #[command(hide = true)]
    StartupProbe {
        #[arg(long)]
        db: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Cmd::All => return run_all(&cli),
        Cmd::Engine { n } => engine_workload(&cli, n)?,
        Cmd::Durable {
            in_flight,
            rounds,
            variant,
        } => durable_workload(&cli, *in_flight, *rounds, variant)?,
        Cmd::Real {
            variant,
            rounds,
            no_engine,
            rate,
        } => real_workload(&cli, variant, *rounds, *no_engine, *rate)?,
        Cmd::Discord {
            owners,
            rounds,
            check_models,
        } => discord_workload(&cli, *owners, *rounds, *check_models)?,
        Cmd::Startup => startup_workload(&cli)?,
        Cmd::Slack { owners, rounds } => slack_workload(&cli, *owners, *rounds)?,
        Cmd::StartupProbe { db } => return startup_probe(&cli, db),
    };
    if cli.child {
        println!("BENCH-JSON {}", serde_json::to_string(&result)?);
    } else {
        print_table(std::slice::from_ref(&result));
        println!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}

// ───────────────────────── all ─────────────────────────

fn run_all(cli: &Cli) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut results: Vec<Value> = Vec::new();
    let started = Instant::now();
    // The durable variants run in processes of their own: run one after
    // another in one process, the default's p99 was 19–24 ms right after
    // the slow variant against 17 ms on its own (1,000 conversations
    // starting at once met a process and disk still busy with the last
    // variant's leftovers). Their rows are merged into one object.
    let runs: [(&str, &[&str]); 7] = [
        ("engine", &[]),
        ("durable", &["--variant", "direct"]),
        ("durable", &["--variant", "nocache"]),
        ("durable", &["--variant", "group"]),
        ("real", &[]),
        ("discord", &[]),
        ("startup", &[]),
    ];
    for (w, args) in runs {
        eprintln!("── {w} {} …", args.join(" "));
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg(w).args(args).arg("--child");
        if cli.quick {
            cmd.arg("--quick");
        }
        cmd.arg("--bench-dialogs")
            .arg(&cli.bench_dialogs)
            .arg("--dialogs")
            .arg(&cli.dialogs);
        if let Some(d) = &cli.db_dir {
            cmd.arg("--db-dir").arg(d);
        }
        let out = cmd
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running the {w} workload"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find_map(|l| l.strip_prefix("BENCH-JSON "));
        let r = match (out.status.success(), line) {
            (true, Some(l)) => serde_json::from_str::<Value>(l)?,
            _ => {
                eprintln!("{text}");
                json!({ "workload": w, "error": format!("the workload failed ({} {})", out.status, args.join(" ")) })
            }
        };
        // The variants of one workload (run one process each) make one
        // object: their rows together, and their errors if any failed.
        match results.last_mut() {
            Some(prev) if prev["workload"] == r["workload"] => {
                let more = r["rows"].as_array().cloned().unwrap_or_default();
                match prev["rows"].as_array_mut() {
                    Some(rows) => rows.extend(more),
                    None => prev["rows"] = Value::Array(more),
                }
                // Settings are reported by the first variant that ran.
                if prev["settings"].is_null() {
                    prev["settings"] = r["settings"].clone();
                }
                if let Some(e) = r.get("error") {
                    match prev["errors"].as_array_mut() {
                        Some(errors) => errors.push(e.clone()),
                        None => prev["errors"] = json!([e]),
                    }
                }
            }
            _ => results.push(r),
        }
    }
    print_table(&results);
    let doc = json!({
        "machine": machine(),
        "quick": cli.quick,
        "seconds": started.elapsed().as_secs_f64(),
        "workloads": results,
    });
    if let Some(parent) = cli.json.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&cli.json, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("JSON written to {}", cli.json.display());
    Ok(())
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "mem_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
    })
}

/// The figures worth a glance, one row per measured line.
fn print_table(results: &[Value]) {
    println!();
    println!(
        "{:<44} {:>14} {:>12} {:>12} {:>12}",
        "workload", "turns/s", "p50 ms", "p99 ms", "other"
    );
    println!("{}", "─".repeat(98));
    for r in results {
        let w = r["workload"].as_str().unwrap_or("?");
        if let Some(e) = r.get("error").and_then(Value::as_str) {
            println!("{w:<44} {e}");
            continue;
        }
        if let Some(rows) = r.get("rows").and_then(Value::as_array) {
            for row in rows {
                let name = format!("{w}: {}", row["case"].as_str().unwrap_or(""));
                let f = |k: &str, d: usize| {
                    row.get(k)
                        .and_then(Value::as_f64)
                        .map(|v| format!("{v:.d$}"))
                        .unwrap_or_else(|| "–".into())
                };
                println!(
                    "{:<44} {:>14} {:>12} {:>12} {:>12}",
                    name,
                    f("turns_per_s", 0),
                    f("p50_ms", 2),
                    f("p99_ms", 2),
                    row.get("note").and_then(Value::as_str).unwrap_or("")
                );
            }
        } else if let Some(n) = r.get("note").and_then(Value::as_str) {
            println!("{w:<44} {n}");
        }
    }
    println!();
}

fn say(cli: &Cli, s: impl AsRef<str>) {
    if cli.child {
        eprintln!("   {}", s.as_ref());
    } else {
        println!("{}", s.as_ref());
    }
}

// ───────────────────────── inputs ─────────────────────────

/// Free-text answers of the benchmark script: owners' sentences of
/// ordinary length (15–40 characters, 45–120 bytes of UTF-8).
const TEXTS: [&str; 8] = [
    "株式会社ベンチ精機です。金属加工をしています。",
    "県外の新しい取引先を増やしたいと考えています。",
    "営業の経験がある社員がいないことが一番の悩みです。",
    "自社製品を持ち、直接販売できる会社にしたい",
    "ハローワークで募集しましたが、応募がありませんでした。",
    "来年の春までに、新規開拓の責任者を迎えたい。",
    "ホームページからの問い合わせを増やしたいです。",
    "特になし",
];

/// The 21 inputs of benchmark conversation `i`: an opening message, then
/// 20 answers (numbers at q05, q10, q15, q20).
struct BenchInputs {
    opening: String,
    texts: Vec<String>,
    numbers: Vec<String>,
}

impl BenchInputs {
    fn new() -> BenchInputs {
        BenchInputs {
            opening: "こんにちは、相談したいです".to_string(),
            texts: TEXTS.iter().map(|s| s.to_string()).collect(),
            numbers: (0..997u64)
                .map(|k| ((k * 7919 + 13) % 1_000_000).to_string())
                .collect(),
        }
    }
    /// The input of turn `t` (0 = opening, 1..=20 = answer to question t).
    fn input(&self, i: usize, t: usize) -> Input {
        let s = if t == 0 {
            &self.opening
        } else if t % 5 == 0 {
            &self.numbers[(i * 31 + t) % self.numbers.len()]
        } else {
            &self.texts[(i + t) % self.texts.len()]
        };
        Input::Text(s.clone())
    }
}

const BENCH_TURNS: usize = 21;

fn bench_flow(cli: &Cli) -> Result<Arc<Flow>> {
    let bundle = load_dir(&cli.bench_dialogs).map_err(|e| anyhow!("{e}"))?;
    bundle
        .flow("bench", Lang::Ja)
        .ok_or_else(|| anyhow!("no `bench` script in {}", cli.bench_dialogs.display()))
}

fn bench_now() -> DateTime<Utc> {
    Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(2026, 11, 21)
            .unwrap()
            .and_hms_opt(1, 0, 0)
            .unwrap(),
    )
}

// ───────────────────────── workload 1: engine ─────────────────────────

struct EngineRound {
    secs: f64,
    /// Live heap bytes per conversation, with every conversation open
    /// after the opening and 10 answers, and after 19 answers.
    mid_bytes: f64,
    late_bytes: f64,
    mid_rss_bytes: f64,
    late_rss_bytes: f64,
    output_bytes: usize,
}

/// Runs `n` benchmark conversations in lockstep, so all `n` are open at
/// once: every conversation takes turn 0, then every one takes turn 1, …
fn engine_round(flow: &Flow, n: usize, inputs: &BenchInputs) -> Result<EngineRound> {
    let ctx = Ctx::new(bench_now(), RenderMode::Markdown);
    trim_heap();
    let live0 = live_bytes();
    let rss0 = rss_kib();
    let mut mid = (0isize, 0u64);
    let mut late = (0isize, 0u64);
    let mut out_bytes = 0usize;
    let t0 = Instant::now();
    let mut states: Vec<SessionState> = (0..n).map(|_| SessionState::default()).collect();
    for t in 0..BENCH_TURNS {
        for (i, st) in states.iter_mut().enumerate() {
            let effects = engine::step(flow, st, inputs.input(i, t), &ctx);
            for e in &effects {
                match e {
                    Effect::Say(s) => out_bytes += s.len(),
                    Effect::Ask(p) => out_bytes += p.text.len(),
                    _ => {}
                }
            }
        }
        if t == 10 {
            mid = (live_bytes() - live0, rss_kib());
        }
        if t == 19 {
            late = (live_bytes() - live0, rss_kib());
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // Every conversation must have finished with all 20 answers.
    for (i, st) in states.iter().enumerate() {
        if st.status != Status::Completed || st.answers.len() != 20 {
            bail!("conversation {i} ended as {:?} with {} answers; the benchmark script or engine changed", st.status, st.answers.len());
        }
    }
    drop(states);
    let per = |b: isize| b as f64 / n as f64;
    let per_rss = |k: u64| (k.saturating_sub(rss0) * 1024) as f64 / n as f64;
    Ok(EngineRound {
        secs,
        mid_bytes: per(mid.0),
        late_bytes: per(late.0),
        mid_rss_bytes: per_rss(mid.1),
        late_rss_bytes: per_rss(late.1),
        output_bytes: out_bytes,
    })
}

fn engine_workload(cli: &Cli, ns: &[usize]) -> Result<Value> {
    let flow = bench_flow(cli)?;
    let inputs = BenchInputs::new();
    // The summary really is rendered at the end.
    {
        let mut st = SessionState::default();
        let ctx = Ctx::new(bench_now(), RenderMode::Markdown);
        let mut last = Vec::new();
        for t in 0..BENCH_TURNS {
            last = engine::step(&flow, &mut st, inputs.input(0, t), &ctx);
        }
        let said: String = last
            .iter()
            .filter_map(|e| {
                if let Effect::Say(s) = e {
                    Some(s.as_str())
                } else {
                    None
                }
            })
            .collect();
        if !said.contains("質問20") || !said.contains(&inputs.texts[1]) {
            bail!("the last turn did not render the summary:\n{said}");
        }
    }
    let ns: Vec<usize> = if ns.is_empty() {
        vec![2_000, 100_000]
    } else {
        ns.to_vec()
    };
    let min_secs = if cli.quick { 1.0 } else { 4.0 };
    let mut rows = Vec::new();
    for &n in &ns {
        trim_heap();
        reset_hwm();
        let first = engine_round(&flow, n, &inputs)?;
        let mut secs = first.secs;
        let mut rounds = 1usize;
        let mut out = first.output_bytes;
        while secs < min_secs && rounds < 1000 {
            let r = engine_round(&flow, n, &inputs)?;
            secs += r.secs;
            out += r.output_bytes;
            rounds += 1;
        }
        let turns = (n * BENCH_TURNS * rounds) as f64;
        let tps = turns / secs;
        let row = json!({
            "case": format!("N = {n}"),
            "conversations": n,
            "rounds": rounds,
            "turns": turns as u64,
            "seconds": secs,
            "turns_per_s": tps,
            "us_per_turn": 1e6 / tps,
            "peak_rss_mib": hwm_kib() as f64 / 1024.0,
            "bytes_per_open_conversation_mid": first.mid_bytes,
            "bytes_per_open_conversation_19_answers": first.late_bytes,
            "rss_bytes_per_open_conversation_mid": first.mid_rss_bytes,
            "rss_bytes_per_open_conversation_19_answers": first.late_rss_bytes,
            "reply_bytes_per_turn": out as f64 / turns,
            "note": format!("{:.0} B/conv", first.mid_bytes),
        });
        say(
            cli,
            format!(
                "engine N={n}: {tps:.0} turns/s ({:.2} µs/turn, {rounds} rounds), peak RSS {:.1} MiB, {:.0} B/conversation mid-way ({:.0} B RSS), {:.0} B after 19 answers",
                1e6 / tps,
                hwm_kib() as f64 / 1024.0,
                first.mid_bytes,
                first.mid_rss_bytes,
                first.late_bytes
            ),
        );
        rows.push(row);
    }
    Ok(json!({
        "workload": "engine",
        "script": "benches/dialogs/bench.ja.yaml (20 questions; q05/q10/q15/q20 ^[0-9]{1,6}$)",
        "turns_per_conversation": BENCH_TURNS,
        "render_mode": "markdown",
        "size_of_session_state": std::mem::size_of::<SessionState>(),
        "size_of_answer_entry": std::mem::size_of::<(madoguchi::script::NodeIx, madoguchi::answer::AnswerValue)>(),
        "rows": rows,
    }))
}

// ───────────────────────── durable runs (workloads 2 and 3) ─────────────────────────

/// One conversation: who, and what they send.
struct Conversation {
    user: UserKey,
    inputs: Vec<Input>,
}

struct DurableRun {
    secs: f64,
    /// CPU time of the bench process during the run (see `cpu_secs`).
    cpu_secs: f64,
    turns: usize,
    latencies_us: Vec<u32>,
    /// The first turn of each conversation, and the others, apart: a first
    /// turn also creates the session (and did read the store before).
    first_turns_us: Vec<u32>,
    later_turns_us: Vec<u32>,
    errors: usize,
    /// At a fixed rate (see [`drive`]): the turns due while every slot was
    /// on its schedule, and that window (seconds from the start).
    steady_us: Vec<u32>,
    steady_window: Option<(f64, f64)>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs each slot's conversations one after another, all slots at once,
/// every turn through `Runner::handle` (durable when it returns).
///
/// Without `rate`, a slot sends its next turn as soon as the last is
/// answered: a closed loop, whose load is whatever the store takes with
/// that many owners waiting, and whose latency is that queue's.
///
/// With `rate` (turns per second), the load offered is fixed: each slot's
/// turns are due `slots / rate` apart. A turn is sent when it is due or,
/// if the slot's last turn was answered late, right then, and its latency
/// counts from when it was due, so a slow answer is charged to the turns
/// it held up as an owner would feel it (the correction for "coordinated
/// omission" of wrk2 and HdrHistogram). The slots start one after
/// another over the length of one conversation, so that they are at all
/// points of the dialog at once (started together, every owner reached
/// the case-making turns in the same few milliseconds), and the turns due
/// while every slot is on its schedule, which offer exactly `rate`, are
/// also kept apart (`steady_us`). tokio's timer wakes a slot up to a
/// millisecond late, which also counts against the store.
async fn drive(
    runners: Vec<Arc<Runner>>,
    slots: Vec<Vec<Conversation>>,
    rate: Option<f64>,
) -> DurableRun {
    let n_slots = slots.len().max(1);
    let pace = rate.map(|r| Duration::from_secs_f64(n_slots as f64 / r));
    // The slots' start times spread over one conversation's length, and
    // the window in which all of them are on their schedules.
    let conversations: usize = slots.iter().map(|s| s.len()).sum();
    let turns: Vec<usize> = slots
        .iter()
        .map(|s| s.iter().map(|c| c.inputs.len()).sum())
        .collect();
    let ramp =
        pace.map(|p| p.mul_f64(turns.iter().sum::<usize>() as f64 / conversations.max(1) as f64));
    let start_of = |n: usize| ramp.map(|r| r.mul_f64(n as f64 / n_slots as f64));
    let window = pace.zip(ramp).map(|(p, r)| {
        let end = (0..n_slots)
            .map(|n| start_of(n).unwrap_or_default() + p * turns[n].saturating_sub(1) as u32)
            .min()
            .unwrap_or_default();
        (r, end.max(r))
    });
    let t0 = Instant::now();
    let cpu0 = cpu_secs();
    let mut tasks = Vec::new();
    for (n, convs) in slots.into_iter().enumerate() {
        // Each slot (its owners) stays with one instance.
        let runner = runners[n % runners.len()].clone();
        let mut due = start_of(n).map(|s| t0 + s);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(convs.iter().map(|c| c.inputs.len()).sum());
            let mut first = Vec::with_capacity(convs.len());
            let mut steady = Vec::new();
            let mut errors = 0usize;
            for c in convs {
                for (turn, input) in c.inputs.into_iter().enumerate() {
                    if let Some(d) = due {
                        tokio::time::sleep_until(d.into()).await;
                    }
                    let t = due.unwrap_or_else(Instant::now);
                    due = due.zip(pace).map(|(d, p)| d + p);
                    match runner.handle(&c.user, input, Some(Lang::Ja)).await {
                        Ok(_) => {}
                        Err(e) => {
                            if errors == 0 {
                                eprintln!("turn failed: {e}");
                            }
                            errors += 1;
                        }
                    }
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    if window.is_some_and(|(a, b)| (a..=b).contains(&(t - t0))) {
                        steady.push(us);
                    }
                    if turn == 0 {
                        first.push(us);
                    } else {
                        lat.push(us);
                    }
                }
            }
            (first, lat, steady, errors)
        }));
    }
    let (mut first, mut later, mut steady) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = 0;
    for t in tasks {
        let (f, lat, st, e) = t.await.expect("a benchmark task panicked");
        first.extend(f);
        later.extend(lat);
        steady.extend(st);
        errors += e;
    }
    steady.sort_unstable();
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = cpu_secs() - cpu0;
    let mut all: Vec<u32> = first.iter().chain(&later).copied().collect();
    all.sort_unstable();
    first.sort_unstable();
    later.sort_unstable();
    DurableRun {
        secs,
        cpu_secs,
        turns: all.len(),
        latencies_us: all,
        first_turns_us: first,
        later_turns_us: later,
        errors,
        steady_us: steady,
        steady_window: window.map(|(a, b)| (a.as_secs_f64(), b.as_secs_f64())),
    }
}

#[derive(Clone, Copy, Debug)]
struct Variant {
    key: &'static str,
    name: &'static str,
    group_commit: bool,
    session_cache: bool,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        key: "direct",
        name: "one commit per turn, no cache",
        group_commit: false,
        session_cache: false,
    },
    Variant {
        key: "nocache",
        name: "group commit, session read every turn",
        group_commit: true,
        session_cache: false,
    },
    Variant {
        key: "group",
        name: "group commit + session cache (default)",
        group_commit: true,
        session_cache: true,
    },
];

fn db_parent(cli: &Cli) -> Result<tempfile::TempDir> {
    // Each database starts on a settled disk: the variant before may have
    // left hundreds of MB dirty in the page cache (and its files just
    // deleted), and the kernel writing those back meanwhile slowed the
    // next variant's fsyncs (the default's p99 was 21 ms right after the
    // slow variant, 15–19 ms in runs of its own). Best effort: a `sync`
    // that fails only costs comparability.
    let _ = std::process::Command::new("sync").status();
    Ok(match &cli.db_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    })
}

/// The database a durable run writes to.
enum BenchStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl BenchStore {
    fn arc(&self) -> Arc<dyn Store> {
        match self {
            BenchStore::Sqlite(s) => Arc::new(s.clone()),
            BenchStore::Postgres(s) => Arc::new(s.clone()),
        }
    }
    async fn close(&self) {
        match self {
            BenchStore::Sqlite(s) => s.pool().close().await,
            BenchStore::Postgres(s) => s.pool().close().await,
        }
    }
}

/// Opens a fresh database (SQLite at `db`, or with `--pg` a fresh schema
/// named after it) and a runner per instance on `dialogs`' scripts.
async fn open_runner(
    cli: &Cli,
    db: &Path,
    dialogs: &Path,
    script: &str,
    v: Variant,
    now: Option<DateTime<Utc>>,
) -> Result<(Vec<Arc<Runner>>, BenchStore)> {
    let schema = format!(
        "bench_{}_{}",
        std::process::id(),
        db.parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
    );
    let mut stores = Vec::new();
    for _ in 0..cli.instances.max(1) {
        stores.push(match &cli.pg {
            None => BenchStore::Sqlite(SqliteStore::open(db).await?),
            Some(url) => BenchStore::Postgres(PostgresStore::open_in_schema(url, &schema).await?),
        });
        if cli.pg.is_none() {
            // One SQLite file has one writer process.
            break;
        }
    }
    let mut runners = Vec::new();
    for store in &stores {
        let bundle = load_dir(dialogs).map_err(|e| anyhow!("{e}"))?;
        let config = RunnerConfig {
            script_id: script.into(),
            default_lang: Lang::Ja,
            transports: vec!["local".into()],
            mode: RenderMode::Markdown,
        };
        let clock: Arc<dyn madoguchi::runner::Clock> = match now {
            Some(t) => Arc::new(FixedClock::new(t)),
            None => Arc::new(madoguchi::runner::SystemClock),
        };
        let options = RunnerOptions {
            group_commit: v.group_commit,
            session_cache: v.session_cache,
            ..RunnerOptions::default()
        };
        runners.push(Arc::new(
            Runner::with_options(store.arc(), clock, bundle, config, options).await?,
        ));
    }
    let store = stores.into_iter().next().expect("one store");
    Ok((runners, store))
}

async fn count_rows(store: &BenchStore, sql: &str) -> i64 {
    match store {
        BenchStore::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
        BenchStore::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await,
    }
    .unwrap_or(-1)
}

async fn pragma(store: &SqliteStore, name: &str) -> String {
    let v: Result<sqlx::sqlite::SqliteRow, _> = sqlx::query(&format!("PRAGMA {name}"))
        .fetch_one(store.pool())
        .await;
    match v {
        Ok(row) => {
            use sqlx::Row;
            row.try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                .unwrap_or_default()
        }
        Err(e) => e.to_string(),
    }
}

async fn pg_setting(store: &PostgresStore, name: &str) -> String {
    sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn durable_row(case: &str, r: &DurableRun, extra: Value) -> Value {
    let tps = r.turns as f64 / r.secs;
    let mut row = json!({
        "case": case,
        "turns": r.turns,
        "seconds": r.secs,
        "turns_per_s": tps,
        "cpu_us_per_turn": r.cpu_secs * 1e6 / r.turns.max(1) as f64,
        "p50_ms": percentile(&r.latencies_us, 0.50),
        "p90_ms": percentile(&r.latencies_us, 0.90),
        "p99_ms": percentile(&r.latencies_us, 0.99),
        "max_ms": percentile(&r.latencies_us, 1.0),
        "first_turn_p50_ms": percentile(&r.first_turns_us, 0.50),
        "first_turn_p99_ms": percentile(&r.first_turns_us, 0.99),
        "later_turns_p50_ms": percentile(&r.later_turns_us, 0.50),
        "later_turns_p99_ms": percentile(&r.later_turns_us, 0.99),
        "errors": r.errors,
    });
    if let (Some((from, to)), Some(o)) = (r.steady_window, row.as_object_mut()) {
        o.extend([
            ("steady_from_s".to_string(), json!(from)),
            ("steady_to_s".to_string(), json!(to)),
            ("steady_turns".to_string(), json!(r.steady_us.len())),
            (
                "offered_turns_per_s_steady".to_string(),
                json!(r.steady_us.len() as f64 / (to - from).max(1e-9)),
            ),
            (
                "steady_p50_ms".to_string(),
                json!(percentile(&r.steady_us, 0.50)),
            ),
            (
                "steady_p90_ms".to_string(),
                json!(percentile(&r.steady_us, 0.90)),
            ),
            (
                "steady_p99_ms".to_string(),
                json!(percentile(&r.steady_us, 0.99)),
            ),
            (
                "steady_max_ms".to_string(),
                json!(percentile(&r.steady_us, 1.0)),
            ),
        ]);
    }
    if let (Some(o), Some(e)) = (row.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    row
}

fn durable_workload(
    cli: &Cli,
    in_flight: usize,
    rounds: Option<usize>,
    only: &[String],
) -> Result<Value> {
    // 20 rounds (420,000 turns, about 4 s at the default's speed): shorter
    // runs were dominated by the start, when all 1,000 owners begin at
    // once, and ended before the WAL reached the length where it starts
    // over, so their p99 swung by a third from run to run.
    let rounds = rounds.unwrap_or(if cli.quick { 1 } else { 20 });
    let inputs = BenchInputs::new();
    let rt = runtime()?;
    let mut rows = Vec::new();
    let mut settings = Value::Null;
    for v in VARIANTS
        .into_iter()
        .filter(|v| only.is_empty() || only.iter().any(|o| o == v.key))
    {
        // The baseline commits once per turn: one fsync each. Keep it short.
        let rounds = if v.group_commit { rounds } else { 1 };
        let dir = db_parent(cli)?;
        let db = dir.path().join("bench.db");
        let row = rt.block_on(async {
            let (runner, store) = open_runner(cli, &db, &cli.bench_dialogs, "bench", v, None).await?;
            if settings.is_null() {
                settings = match &store {
                    BenchStore::Sqlite(store) => json!({
                        "journal_mode": pragma(store, "journal_mode").await,
                        "synchronous": pragma(store, "synchronous").await,
                        "wal_autocheckpoint": pragma(store, "wal_autocheckpoint").await,
                        "synchronous_meaning": "2 = FULL: the WAL is fsync'd at every commit",
                        "db_dir": dir.path().display().to_string(),
                    }),
                    BenchStore::Postgres(store) => json!({
                        "backend": "postgres",
                        "instances": cli.instances,
                        "fsync": pg_setting(store, "fsync").await,
                        "synchronous_commit": pg_setting(store, "synchronous_commit").await,
                        "server_version": pg_setting(store, "server_version").await,
                    }),
                };
            }
            let mut slots = Vec::new();
            for s in 0..in_flight {
                let mut convs = Vec::new();
                for r in 0..rounds {
                    let i = r * in_flight + s;
                    convs.push(Conversation {
                        user: UserKey::new(Transport::Terminal, &format!("bench-{i}")).expect("valid key"),
                        inputs: (0..BENCH_TURNS).map(|t| inputs.input(i, t)).collect(),
                    });
                }
                slots.push(convs);
            }
            let run = drive(runner.clone(), slots, None).await;
            let completed = count_rows(&store, "SELECT COUNT(*) FROM sessions WHERE status = 'completed'").await;
            let answers = count_rows(&store, "SELECT COUNT(*) FROM answers").await;
            let expected = (in_flight * rounds) as i64;
            if completed != expected || answers != expected * 20 {
                bail!("{}: {completed} of {expected} conversations completed with {answers} answers stored", v.name);
            }
            drop(runner);
            store.close().await;
            Ok::<_, anyhow::Error>(durable_row(
                v.name,
                &run,
                json!({ "in_flight": in_flight, "conversations": expected, "group_commit": v.group_commit, "session_cache": v.session_cache, "answers_stored": answers }),
            ))
        })?;
        say(
            cli,
            format!(
                "durable [{}]: {:.0} turns/s, p50 {:.2} ms, p99 {:.2} ms ({} turns; first turns p50 {:.2} / p99 {:.2} ms, later turns p50 {:.2} / p99 {:.2} ms; {:.1} µs CPU per turn in the bench process)",
                v.name,
                row["turns_per_s"].as_f64().unwrap_or(0.0),
                row["p50_ms"].as_f64().unwrap_or(0.0),
                row["p99_ms"].as_f64().unwrap_or(0.0),
                row["turns"],
                row["first_turn_p50_ms"].as_f64().unwrap_or(0.0),
                row["first_turn_p99_ms"].as_f64().unwrap_or(0.0),
                row["later_turns_p50_ms"].as_f64().unwrap_or(0.0),
                row["later_turns_p99_ms"].as_f64().unwrap_or(0.0),
                row["cpu_us_per_turn"].as_f64().unwrap_or(0.0),
            ),
        );
        rows.push(row);
    }
    Ok(json!({
        "workload": "durable",
        "script": "benches/dialogs/bench.ja.yaml",
        "store": match &cli.pg {
            None => "SQLite (sqlx), WAL, synchronous = FULL; every turn durable before Runner::handle returns".to_string(),
            Some(_) => format!("PostgreSQL (sqlx), {} instance(s); every turn durable before Runner::handle returns", cli.instances),
        },
        "settings": settings,
        "rows": rows,
    }))
}

// ───────────────────────── workload 3: the real dialog ─────────────────────────

/// Conversations from the Japanese transcripts of the shipped dialog that
/// an owner types through (no button presses, no simulated crash).
fn real_conversations(cli: &Cli) -> Result<Vec<(String, Vec<Input>)>> {
    let dir = cli.dialogs.join("tests");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let t = madoguchi::transcript::parse(&std::fs::read_to_string(&p)?)
            .map_err(|e| anyhow!("{}: {e}", p.display()))?;
        if t.lang != "ja" || t.script != "first_contact" {
            continue;
        }
        let mut inputs = Vec::new();
        let mut usable = true;
        for s in &t.steps {
            let s = &s.value;
            if s.crash || s.press.is_some() {
                usable = false;
                break;
            }
            if s.start {
                inputs.push(Input::Start);
            } else if let Some(o) = &s.owner {
                inputs.push(Input::Text(o.clone()));
            } else if let Some(r) = &s.owner_repeat {
                inputs.push(Input::Text(r.text.repeat(r.times)));
            }
        }
        if usable && !inputs.is_empty() {
            out.push((
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
                inputs,
            ));
        }
    }
    if out.is_empty() {
        bail!("no usable Japanese transcripts in {}", dir.display());
    }
    Ok(out)
}

fn real_workload(
    cli: &Cli,
    only: &[String],
    rounds: Option<usize>,
    no_engine: bool,
    rate: Option<f64>,
) -> Result<Value> {
    if let Some(r) = rate {
        if !(r.is_finite() && r >= 1.0) {
            bail!("--rate is turns per second, at least 1, not {r}");
        }
    }
    let convs = real_conversations(cli)?;
    let bundle = load_dir(&cli.dialogs).map_err(|e| anyhow!("{e}"))?;
    let flow = bundle
        .flow("first_contact", Lang::Ja)
        .ok_or_else(|| anyhow!("no first_contact.ja"))?;
    let ctx = Ctx::new(bench_now(), RenderMode::Markdown);
    let turns_per_set: usize = convs.iter().map(|(_, i)| i.len()).sum();
    let mut rows = Vec::new();

    // Engine only: the set of conversations over and over, one at a time.
    let min_secs = match (no_engine, cli.quick) {
        (true, _) => 0.0,
        (false, true) => 1.0,
        (false, false) => 4.0,
    };
    let t0 = Instant::now();
    let mut sets = 0usize;
    let mut cases = 0usize;
    while t0.elapsed().as_secs_f64() < min_secs && sets < 100_000 {
        for (_, inputs) in &convs {
            let mut st = SessionState::default();
            for input in inputs {
                let effects = engine::step(&flow, &mut st, input.clone(), &ctx);
                cases += effects
                    .iter()
                    .filter(|e| matches!(e, Effect::CaseReady(_)))
                    .count();
            }
        }
        sets += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    let turns = sets * turns_per_set;
    if sets > 0 {
        say(
            cli,
            format!(
                "real engine: {:.0} turns/s ({} conversations, {} cases)",
                turns as f64 / secs,
                sets * convs.len(),
                cases
            ),
        );
        rows.push(json!({
            "case": "engine only",
            "turns": turns,
            "seconds": secs,
            "turns_per_s": turns as f64 / secs,
            "us_per_turn": secs * 1e6 / turns as f64,
            "conversations": sets * convs.len(),
            "cases_ready": cases,
        }));
    }

    // Durable: 1,000 conversations in flight, cycling through the set. At
    // a fixed rate, twice as many owners in half as many rounds (the same
    // conversations), each waiting for its next turn to be due most of
    // the time (40 ms apart at 50,000 turns/s).
    let in_flight = if rate.is_some() { 2000usize } else { 1000 };
    // 10 rounds (about 200,000 turns, 5 s): with 3, a run lasted 1.5 s and
    // its p99 was the start's, when all 1,000 owners begin at once (67 ms
    // where 10 rounds of the same build gave 42–49 ms); the synthetic
    // workload runs 20 rounds for the same reason.
    let rounds = rounds.unwrap_or(match (cli.quick, rate.is_some()) {
        (true, _) => 1,
        (false, false) => 10,
        (false, true) => 5,
    });
    let rt = runtime()?;
    for v in VARIANTS
        .into_iter()
        .filter(|v| v.group_commit && (only.is_empty() || only.iter().any(|o| o == v.key)))
    {
        let dir = db_parent(cli)?;
        let db = dir.path().join("real.db");
        let row = rt.block_on(async {
            // The transcripts' answers ("来年4月") are relative to their day.
            let (runner, store) = open_runner(cli, &db, &cli.dialogs, "first_contact", v, Some(bench_now())).await?;
            let mut slots = Vec::new();
            for s in 0..in_flight {
                let mut cs = Vec::new();
                for r in 0..rounds {
                    // Owner `i` is unique; the conversation each slot plays
                    // next is the next in the set, so every slot mixes short
                    // and long ones. (Taking conversation `i` modulo the
                    // set made a slot replay one conversation in every
                    // round whenever the set's size divides the slots:
                    // with 40 transcripts and 2,000 slots, the slots given
                    // the two-turn one finished at once, and a fixed-rate
                    // run had no time when every owner was on schedule.)
                    let i = r * in_flight + s;
                    cs.push(Conversation {
                        user: UserKey::new(Transport::Terminal, &format!("real-{i}")).expect("valid key"),
                        inputs: convs[(s * rounds + r) % convs.len()].1.clone(),
                    });
                }
                slots.push(cs);
            }
            let run = drive(runner.clone(), slots, rate).await;
            let cases = count_rows(&store, "SELECT COUNT(*) FROM cases").await;
            let deliveries = count_rows(&store, "SELECT COUNT(*) FROM deliveries").await;
            drop(runner);
            store.close().await;
            Ok::<_, anyhow::Error>(durable_row(
                &format!("durable, {}", v.name),
                &run,
                json!({ "in_flight": in_flight, "conversations": in_flight * rounds, "cases": cases, "deliveries": deliveries }),
            ))
        })?;
        if let Some(r) = rate.filter(|_| row["steady_turns"].as_u64() == Some(0)) {
            say(
                cli,
                format!(
                    "real durable [{}] at {r:.0} turns/s offered: too few rounds for a time when every owner is on schedule (give --rounds 3 or more)",
                    v.name
                ),
            );
        } else if let Some(r) = rate {
            say(
                cli,
                format!(
                    "real durable [{}] at {r:.0} turns/s offered: while every owner was on schedule ({:.2}–{:.2} s, {} turns) p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; all turns p99 {:.2} ms",
                    v.name,
                    row["steady_from_s"].as_f64().unwrap_or(0.0),
                    row["steady_to_s"].as_f64().unwrap_or(0.0),
                    row["steady_turns"],
                    row["steady_p50_ms"].as_f64().unwrap_or(0.0),
                    row["steady_p90_ms"].as_f64().unwrap_or(0.0),
                    row["steady_p99_ms"].as_f64().unwrap_or(0.0),
                    row["steady_max_ms"].as_f64().unwrap_or(0.0),
                    row["p99_ms"].as_f64().unwrap_or(0.0),
                ),
            );
        }
        say(
            cli,
            format!(
                "real durable [{}]: {:.0} turns/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} turns; first turns p50 {:.2} / p99 {:.2} ms, later turns p50 {:.2} / p99 {:.2} ms), {} cases, {:.1} µs CPU per turn (bench process)",
                v.name,
                row["turns_per_s"].as_f64().unwrap_or(0.0),
                row["p50_ms"].as_f64().unwrap_or(0.0),
                row["p90_ms"].as_f64().unwrap_or(0.0),
                row["p99_ms"].as_f64().unwrap_or(0.0),
                row["max_ms"].as_f64().unwrap_or(0.0),
                row["turns"],
                row["first_turn_p50_ms"].as_f64().unwrap_or(0.0),
                row["first_turn_p99_ms"].as_f64().unwrap_or(0.0),
                row["later_turns_p50_ms"].as_f64().unwrap_or(0.0),
                row["later_turns_p99_ms"].as_f64().unwrap_or(0.0),
                row["cases"],
                row["cpu_us_per_turn"].as_f64().unwrap_or(0.0)
            ),
        );
        rows.push(row);
    }
    Ok(json!({
        "workload": "real",
        "store": if cli.pg.is_some() { format!("PostgreSQL, {} instance(s)", cli.instances) } else { "SQLite".to_string() },
        "script": "dialogs/first_contact.ja.yaml",
        "conversations_from": convs.iter().map(|(n, i)| json!({ "transcript": n, "turns": i.len() })).collect::<Vec<_>>(),
        "rows": rows,
    }))
}

// ───────────────────────── workload 4: Discord ─────────────────────────

#[cfg(feature = "bench-discord")]
fn discord_workload(
    cli: &Cli,
    owners: Option<usize>,
    rounds: Option<usize>,
    check_models: bool,
) -> Result<Value> {
    let owners = owners.unwrap_or(if cli.quick { 50 } else { 200 });
    let rounds = rounds.unwrap_or(if cli.quick { 2 } else { 5 });
    let dir = db_parent(cli)?;
    let row = discord_e2e::run(discord_e2e::Params {
        owners,
        rounds,
        time_limit: Duration::from_secs(if cli.quick { 20 } else { 120 }),
        dialogs: cli.dialogs.clone(),
        db_dir: dir.path().to_path_buf(),
        check_models,
    })?;
    say(
        cli,
        format!(
            "discord: {:.1} consultations/s, {:.0} owner turns/s, {:.3} REST calls/turn, p50 {:.2} ms, p99 {:.2} ms ({} owners at once, {} consultations)",
            row["consultations_per_s"].as_f64().unwrap_or(0.0),
            row["turns_per_s"].as_f64().unwrap_or(0.0),
            row["rest_calls_per_turn"].as_f64().unwrap_or(0.0),
            row["p50_ms"].as_f64().unwrap_or(0.0),
            row["p99_ms"].as_f64().unwrap_or(0.0),
            owners,
            row["consultations"],
        ),
    );
    Ok(json!({
        "workload": "discord",
        "what": "the bot (madoguchi::discord::start, real serenity 0.12 client, shipped dialogs, SQLite) against the local Discord stand-in on 127.0.0.1; each owner goes through the whole Japanese consultation (26 turns: DMs, buttons, selects, the form) waiting for each answer; latency = stand-in queues the owner's event on the gateway → stand-in receives the bot's answer",
        "rows": [row],
    }))
}

#[cfg(not(feature = "bench-discord"))]
fn discord_workload(
    _cli: &Cli,
    _owners: Option<usize>,
    _rounds: Option<usize>,
    _check_models: bool,
) -> Result<Value> {
    Ok(json!({
        "workload": "discord",
        "measured": false,
        "note": "not built in: run with `cargo run --release --features bench-discord --bin madoguchi-bench -- discord`",
    }))
}

// ───────────────────────── workload 6: Slack ─────────────────────────

#[cfg(feature = "bench-slack")]
fn slack_workload(cli: &Cli, owners: Option<usize>, rounds: Option<usize>) -> Result<Value> {
    let owners = owners.unwrap_or(if cli.quick { 20 } else { 100 });
    let rounds = rounds.unwrap_or(if cli.quick { 2 } else { 3 });
    let dir = db_parent(cli)?;
    let row = slack_e2e::run(slack_e2e::Params {
        owners,
        rounds,
        time_limit: Duration::from_secs(if cli.quick { 20 } else { 120 }),
        dialogs: cli.dialogs.clone(),
        db_dir: dir.path().to_path_buf(),
    })?;
    say(
        cli,
        format!(
            "slack: {:.1} consultations/s, {:.0} owner turns/s, {:.3} Web API calls/turn, p50 {:.2} ms, p99 {:.2} ms ({} owners at once, {} consultations)",
            row["consultations_per_s"].as_f64().unwrap_or(0.0),
            row["turns_per_s"].as_f64().unwrap_or(0.0),
            row["web_api_calls_per_turn"].as_f64().unwrap_or(0.0),
            row["p50_ms"].as_f64().unwrap_or(0.0),
            row["p99_ms"].as_f64().unwrap_or(0.0),
            owners,
            row["consultations"],
        ),
    );
    Ok(json!({
        "workload": "slack",
        "what": "the Slack app (madoguchi::slack::start over Socket Mode, real slack-morphism client, outbox::for_run with the Slack sender, shipped dialogs with a Slack channel per hub, SQLite) against the local Slack stand-in on 127.0.0.1; each owner goes through the whole Japanese consultation in the DM (25 turns: typed answers, buttons, the prefecture menu, the form, checkboxes) waiting for each answer; latency = the owner's action enters the stand-in → the stand-in receives the call carrying the answer",
        "rows": [row],
    }))
}

#[cfg(not(feature = "bench-slack"))]
fn slack_workload(_cli: &Cli, _owners: Option<usize>, _rounds: Option<usize>) -> Result<Value> {
    Ok(json!({
        "workload": "slack",
        "measured": false,
        "note": "not built in: run with `cargo run --release --features bench-slack --bin madoguchi-bench -- slack`",
    }))
}

// ───────────────────────── workload 5: start-up ─────────────────────────

fn median_of(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What the bot does before it can serve: load and validate the dialogs,
/// open the database (applying migrations), record the script versions.
/// Prints READY, then idles until killed (at most 60 s).
fn startup_probe(cli: &Cli, db: &Path) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let t = Instant::now();
        let bundle = load_dir(&cli.dialogs).map_err(|e| anyhow!("{e}"))?;
        let load = t.elapsed();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(db).await?);
        let open = t.elapsed() - load;
        let runner = Runner::new(
            store,
            Arc::new(madoguchi::runner::SystemClock),
            bundle,
            RunnerConfig::default(),
        )
        .await?;
        let install = t.elapsed() - load - open;
        println!(
            "READY {} {} {}",
            load.as_micros(),
            open.as_micros(),
            install.as_micros()
        );
        std::io::stdout().flush()?;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(runner);
        Ok(())
    })
}

fn startup_workload(cli: &Cli) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let runs = if cli.quick { 5 } else { 20 };
    let dir = db_parent(cli)?;
    let mut rows = Vec::new();
    for (case, fresh) in [
        ("new database (migrations applied)", true),
        ("existing database", false),
    ] {
        let mut ready_ms = Vec::new();
        let mut idle_rss = Vec::new();
        let mut phases: Vec<Vec<f64>> = Vec::new();
        for k in 0..runs {
            let db = if fresh {
                dir.path().join(format!("fresh-{k}.db"))
            } else {
                dir.path().join("existing.db")
            };
            let t0 = Instant::now();
            let mut child = std::process::Command::new(&exe)
                .arg("startup-probe")
                .arg("--db")
                .arg(&db)
                .arg("--dialogs")
                .arg(&cli.dialogs)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()?;
            let mut line = String::new();
            let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
            std::io::BufReader::new(stdout).read_line(&mut line)?;
            let ready = t0.elapsed();
            let phase: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<f64>().ok())
                .map(|us| us / 1000.0)
                .collect();
            let mut parts = line.split_whitespace();
            if parts.next() != Some("READY") {
                let _ = child.kill();
                bail!("start-up probe failed: {line:?}");
            }
            // Idle: the runtime settled, nothing to do.
            std::thread::sleep(Duration::from_millis(300));
            let rss = status_kib(Some(child.id()), "VmRSS:").unwrap_or(0);
            let _ = child.kill();
            let _ = child.wait();
            if !fresh && k == 0 {
                continue; // the first run created the database
            }
            ready_ms.push(ready.as_secs_f64() * 1000.0);
            if phase.len() == 3 {
                phases.push(phase);
            }
            idle_rss.push(rss as f64 / 1024.0);
        }
        ready_ms.sort_by(f64::total_cmp);
        idle_rss.sort_by(f64::total_cmp);
        let med = |v: &[f64]| v[v.len() / 2];
        say(
            cli,
            format!(
                "startup [{case}]: ready in {:.1} ms median ({:.1} max), idle RSS {:.1} MiB",
                med(&ready_ms),
                ready_ms[ready_ms.len() - 1],
                med(&idle_rss)
            ),
        );
        rows.push(json!({
            "case": case,
            "runs": ready_ms.len(),
            "ready_ms_median": med(&ready_ms),
            "ready_ms_max": ready_ms[ready_ms.len() - 1],
            "idle_rss_mib_median": med(&idle_rss),
            "idle_rss_mib_max": idle_rss[idle_rss.len() - 1],
            "phase_ms_median": {
                "load_and_validate_dialogs": median_of(phases.iter().map(|p| p[0]).collect()),
                "open_sqlite_and_migrate": median_of(phases.iter().map(|p| p[1]).collect()),
                "record_script_versions": median_of(phases.iter().map(|p| p[2]).collect()),
            },
            "note": format!("{:.1} ms, {:.1} MiB", med(&ready_ms), med(&idle_rss)),
        }));
    }
    Ok(json!({
        "workload": "startup",
        "what": "process start → dialogs/ loaded and validated, SQLite opened with migrations applied, script versions recorded (no Discord connection)",
        "rows": rows,
    }))
}
