//! Workload 4 of `madoguchi-bench`: the Discord bot end to end (feature
//! `bench-discord`).
//!
//! The local Discord stand-in (`discord-standin`: REST v10 + gateway on
//! 127.0.0.1) runs in one tokio runtime (threads `driver`) together with the
//! simulated owners; the bot runs in another (threads `bot`), started as
//! `madoguchi run` starts it (`madoguchi::discord::start` with the real
//! serenity client, the shipped dialogs and a fresh SQLite database). Each
//! owner goes through the whole Japanese first-contact consultation of
//! `tests/it/discord_e2e.rs` (typed answers in the DM, buttons, selects, the
//! region → prefecture select, the form) and waits for the bot's answer to
//! each action before the next one, like a person. Many owners do so at
//! once; a slot that finishes starts the next consultation with a new owner.
//!
//! Figures: consultations/s, owner actions (turns)/s, REST calls per turn
//! (every call the bot makes after start-up, case posts included, over the
//! owners' turns), and the time from the stand-in queueing an owner's
//! message or interaction on the gateway to the stand-in receiving the
//! bot's answer (the request that carries the next question).

use anyhow::{anyhow, bail, Context, Result};
use discord_standin::{components, DiscordStandIn, RecordedCall};
use madoguchi::discord::{self, Config, Token};
use madoguchi::runner::{Runner, SystemClock};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::Store;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

const GUILD: u64 = 600_000_000_000_000_001;
const FIRST_OWNER: u64 = 410_000_000_000_000_000;
/// How long one owner waits for the bot's answer before the run fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const LOCALE: &str = "ja";

pub struct Params {
    /// Owners consulting at the same time.
    pub owners: usize,
    /// Consultations each owner slot runs one after another.
    pub rounds: usize,
    /// No slot starts a new consultation after this.
    pub time_limit: Duration,
    pub dialogs: PathBuf,
    pub db_dir: PathBuf,
    /// The stand-in decodes every payload with serenity's models (its test
    /// mode); off by default here, the e2e tests check the same payloads.
    pub check_models: bool,
}

// ───────────────────────── routing calls to owners ─────────────────────────

/// Hands every recorded REST call to the owner it concerns: by DM channel
/// id (messages, edits) or interaction id (callbacks, followups, their
/// `@original`). Calls that arrive before the owner knows the key (the DM
/// channel is made by the first message) wait in `pending`.
#[derive(Default)]
struct Router {
    routes: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    senders: HashMap<u64, UnboundedSender<RecordedCall>>,
    pending: HashMap<u64, Vec<RecordedCall>>,
}

impl Router {
    fn register(&self, key: u64, tx: &UnboundedSender<RecordedCall>) {
        let mut r = self.routes.lock().unwrap();
        r.senders.insert(key, tx.clone());
        if let Some(calls) = r.pending.remove(&key) {
            for c in calls {
                let _ = tx.send(c);
            }
        }
    }
    fn unregister(&self, key: u64) {
        let mut r = self.routes.lock().unwrap();
        r.senders.remove(&key);
        r.pending.remove(&key);
    }
    fn route(&self, c: RecordedCall) {
        let Some(key) = key_of(&c) else { return };
        let mut r = self.routes.lock().unwrap();
        match r.senders.get(&key) {
            Some(tx) => {
                let _ = tx.send(c);
            }
            None => r.pending.entry(key).or_default().push(c),
        }
    }
    fn forget_pending(&self) {
        self.routes.lock().unwrap().pending.clear();
    }
}

/// The channel or interaction a call is about.
fn key_of(c: &RecordedCall) -> Option<u64> {
    let mut segs = c.path.trim_matches('/').split('/');
    match segs.next()? {
        "channels" | "interactions" => segs.next()?.parse().ok(),
        "webhooks" => {
            segs.next();
            // The stand-in's interaction tokens carry the interaction id.
            segs.next()?
                .strip_prefix("aW50ZXJhY3Rpb246")?
                .strip_suffix("OnN0YW5kLWlu")?
                .parse()
                .ok()
        }
        _ => None,
    }
}

// ───────────────────────── one owner ─────────────────────────

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// A message with pressable components: the next question.
    Prompt,
    /// A form (interaction callback type 9).
    Modal,
    /// The last message of the consultation (no question).
    Done,
}

struct Owner {
    d: Arc<DiscordStandIn>,
    router: Arc<Router>,
    user: u64,
    dm: Option<u64>,
    tx: UnboundedSender<RecordedCall>,
    rx: UnboundedReceiver<RecordedCall>,
    /// The message carrying the current question.
    prompt: Value,
    /// Dispatch → answer, µs, one per turn.
    latencies_us: Vec<u32>,
}

fn has_enabled(v: &Value) -> bool {
    components(v).iter().any(|c| c["disabled"] != true)
}

fn id_of(v: &Value) -> Result<u64> {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no id in {v}"))
}

impl Owner {
    fn new(d: Arc<DiscordStandIn>, router: Arc<Router>, user: u64) -> Owner {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Owner {
            d,
            router,
            user,
            dm: None,
            tx,
            rx,
            prompt: Value::Null,
            latencies_us: Vec::with_capacity(32),
        }
    }

    fn dm(&self) -> u64 {
        self.dm.expect("the owner wrote first")
    }

    /// Waits for the bot's answer to `action` (a message or interaction id)
    /// and records the latency. `on_message`: the message a component
    /// interaction was on (an in-place update answers on it).
    async fn answer(
        &mut self,
        action: u64,
        expect: Expect,
        interaction: Option<u64>,
        on_message: Option<u64>,
    ) -> Result<Value> {
        let dm = self.dm();
        let dm_post = format!("/channels/{dm}/messages");
        let callback = interaction.map(|i| format!("/interactions/{i}/"));
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let c = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(c)) => c,
                Ok(None) => bail!("the call router stopped"),
                Err(_) => bail!(
                    "owner {}: no {expect:?} answer within {REPLY_TIMEOUT:?} to action {action}",
                    self.user
                ),
            };
            if !c.ok() || c.method != "POST" {
                continue;
            }
            let is_dm_post = c.path == dm_post;
            let is_callback = callback.as_ref().is_some_and(|p| c.path.starts_with(p));
            let body = c.json();
            let found: Option<Value> = match expect {
                Expect::Prompt if is_dm_post => c.response.clone().filter(has_enabled),
                Expect::Prompt if is_callback => match body["type"].as_u64() {
                    Some(4) if has_enabled(&body["data"]) => {
                        self.d.original_response(interaction.unwrap())
                    }
                    Some(7) if has_enabled(&body["data"]) => {
                        on_message.and_then(|m| self.d.message(m))
                    }
                    _ => None,
                },
                Expect::Modal if is_callback && body["type"] == 9 => Some(body.clone()),
                Expect::Done if is_dm_post => c.response.clone().filter(|m| {
                    m["content"]
                        .as_str()
                        .is_some_and(|s| s.contains("お送りしました"))
                }),
                Expect::Done if is_callback && body["type"] == 4 => {
                    if body["data"]["content"]
                        .as_str()
                        .is_some_and(|s| s.contains("お送りしました"))
                    {
                        Some(body["data"].clone())
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(v) = found {
                let sent = self
                    .d
                    .dispatched_at(action)
                    .ok_or_else(|| anyhow!("action {action} was not dispatched live"))?;
                let us = c.at.saturating_duration_since(sent).as_micros();
                self.latencies_us.push(us.min(u32::MAX as u128) as u32);
                if expect == Expect::Prompt {
                    self.prompt = v.clone();
                }
                return Ok(v);
            }
        }
    }

    async fn say(&mut self, text: &str) -> Result<()> {
        let mid = self.d.user_sends_dm(self.user, text).await;
        if self.dm.is_none() {
            let dm = self
                .d
                .dm_channel_of(self.user)
                .ok_or_else(|| anyhow!("no DM channel"))?;
            self.dm = Some(dm);
            self.router.register(dm, &self.tx);
        }
        self.answer(mid, Expect::Prompt, None, None).await?;
        Ok(())
    }

    fn component(&self, label_or_prefix: &str) -> Result<Value> {
        components(&self.prompt)
            .into_iter()
            .find(|c| {
                c["label"] == label_or_prefix
                    || c["custom_id"]
                        .as_str()
                        .is_some_and(|i| i.starts_with(label_or_prefix))
            })
            .ok_or_else(|| anyhow!("no component {label_or_prefix:?} on {}", self.prompt))
    }

    /// Runs one interaction and waits for its answer.
    async fn interact(&mut self, iid: u64, expect: Expect, message: u64) -> Result<Value> {
        self.router.register(iid, &self.tx);
        let r = self.answer(iid, expect, Some(iid), Some(message)).await;
        self.router.unregister(iid);
        r
    }

    async fn press_expecting(&mut self, label: &str, expect: Expect) -> Result<Value> {
        let b = self.component(label)?;
        let mid = id_of(&self.prompt)?;
        let custom = b["custom_id"].as_str().unwrap_or_default().to_string();
        let iid = self
            .d
            .user_presses_button(self.dm(), mid, self.user, None, &custom, LOCALE)
            .await;
        self.interact(iid, expect, mid).await
    }

    async fn press(&mut self, label: &str) -> Result<()> {
        self.press_expecting(label, Expect::Prompt)
            .await
            .map(|_| ())
    }

    async fn choose(&mut self, prefix: &str, values: &[&str]) -> Result<()> {
        let s = self.component(prefix)?;
        let mid = id_of(&self.prompt)?;
        let custom = s["custom_id"].as_str().unwrap_or_default().to_string();
        let iid = self
            .d
            .user_selects(self.dm(), mid, self.user, None, &custom, values, LOCALE)
            .await;
        self.interact(iid, Expect::Prompt, mid).await.map(|_| ())
    }

    /// Region, then prefecture (two turns).
    async fn prefecture(&mut self, region: &str, pref: &str) -> Result<()> {
        let region_id = self.component("p:")?["custom_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.choose(&region_id, &[region]).await?;
        self.choose(&region_id.replacen("p:", "q:", 1), &[pref])
            .await
    }

    /// The form for a long answer (two turns: open, submit).
    async fn in_form(&mut self, text: &str) -> Result<()> {
        let modal = self.press_expecting("m:", Expect::Modal).await?;
        let custom = modal["data"]["custom_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mid = id_of(&self.prompt)?;
        let iid = self
            .d
            .user_submits_modal(
                self.dm(),
                self.user,
                None,
                &custom,
                &[("answer", text)],
                LOCALE,
            )
            .await;
        self.interact(iid, Expect::Prompt, mid).await.map(|_| ())
    }

    /// The consultation of `discord_e2e.rs`'s `consult`: Hyogo, a clear
    /// talent need, buttons, selects, the form and typed answers; 26 turns.
    async fn consult(&mut self, n: usize) -> Result<()> {
        self.say("こんにちは").await?;
        if !self.prompt["content"]
            .as_str()
            .is_some_and(|s| s.contains("進めてよろしいですか"))
        {
            bail!("unexpected first question: {}", self.prompt);
        }
        self.press("はい").await?;
        self.say(&format!("株式会社ベンチ{n}製作所")).await?;
        self.press("製造業").await?;
        self.prefecture("kinki", "兵庫県").await?;
        self.say("30").await?;
        self.press("スキップ").await?; // capital (optional)
        self.in_form("地域でいちばん信頼される工場にしたい").await?;
        self.choose("q:", &["hiring", "sales"]).await?;
        self.say("採用がうまくいかず、人手が足りない").await?;
        self.press("人材確保・採用").await?;
        self.press("スキップ").await?; // tried
        self.press("人材の採用・活用で解決したい").await?;
        self.press("おおよそ決まっている").await?; // talent_clear
        self.say("営業部長").await?;
        self.say("新規顧客の開拓とチームづくり").await?;
        self.say("法人営業の経験5年以上").await?;
        self.press("スキップ").await?; // talent_nice
        self.choose("q:", &["fulltime", "side_job"]).await?;
        self.say("2027年4月").await?;
        self.say("山田太郎").await?;
        self.say("yamada@example.jp").await?;
        // The sheet, its recipients and the consent question come together.
        self.press("スキップ").await?; // phone
        self.press_expecting("同意して送信する", Expect::Done)
            .await?;
        if let Some(dm) = self.dm.take() {
            self.router.unregister(dm);
        }
        Ok(())
    }
}

/// Turns of one consultation (`Owner::consult`).
const TURNS_PER_CONSULTATION: usize = 26;

// ───────────────────────── CPU time by thread group ─────────────────────────

/// CPU seconds used so far by this process's threads, by thread name group
/// (`bot`, `driver`, `sqlx`, other), from /proc/self/task/*/stat.
fn cpu_by_group() -> BTreeMap<String, f64> {
    let tick = 100.0; // USER_HZ on Linux
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(p.join("stat")) else {
            continue;
        };
        // Fields after the ")" that ends the name: state is field 3; utime 14, stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(u), Some(s)) = (
            f.get(11).and_then(|v| v.parse::<f64>().ok()),
            f.get(12).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let comm = comm.trim();
        let group = if comm.starts_with("bot") {
            "bot runtime (serenity, bot, runner)"
        } else if comm.starts_with("driver") {
            "driver runtime (stand-in, owners)"
        } else if comm.starts_with("sqlx") {
            "sqlx SQLite worker"
        } else {
            "other"
        };
        *out.entry(group.to_string()).or_insert(0.0) += (u + s) / tick;
    }
    out
}

// ───────────────────────── the run ─────────────────────────

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// `METHOD /path` with ids replaced by what they are (DM, hub channel,
/// thread, …) and interaction callbacks by their type.
fn call_kind(c: &RecordedCall, channel_types: &HashMap<u64, u64>) -> String {
    let segs: Vec<&str> = c.path.trim_matches('/').split('/').collect();
    let named: Vec<String> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.parse::<u64>().is_ok() {
                if i == 1 && segs[0] == "channels" {
                    match s.parse::<u64>().ok().and_then(|id| channel_types.get(&id)) {
                        Some(1) => "{dm}".into(),
                        Some(11) | Some(12) => "{thread}".into(),
                        Some(_) => "{hub}".into(),
                        None => "{channel}".into(),
                    }
                } else {
                    "{id}".into()
                }
            } else if i == 2 && segs[0] == "interactions" || i == 2 && segs[0] == "webhooks" {
                "{token}".into()
            } else {
                s.to_string()
            }
        })
        .collect();
    let mut k = format!("{} /{}", c.method, named.join("/"));
    if segs.first() == Some(&"interactions") {
        k.push_str(&format!(" (type {})", c.json()["type"]));
    }
    k
}

pub fn run(p: Params) -> Result<Value> {
    let driver = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("driver")
        .enable_all()
        .build()?;
    let bot_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bot")
        .enable_all()
        .build()?;
    let bot_handle = bot_rt.handle().clone();
    driver.block_on(async move { run_inner(p, bot_handle).await })
}

async fn run_inner(p: Params, bot_rt: tokio::runtime::Handle) -> Result<Value> {
    let d = Arc::new(
        DiscordStandIn::start_with(discord_standin::Options {
            check_models: p.check_models,
            ..Default::default()
        })
        .await,
    );
    d.set_wait_timeout(REPLY_TIMEOUT);
    // The world of tests/it/discord_e2e.rs: a guild with the hubs' channels
    // and staff roles of the shipped routing.
    d.add_guild(GUILD, "Network");
    let bundle = madoguchi::script::load_dir(&p.dialogs).map_err(|e| anyhow!("{e}"))?;
    let mut hub_channels = Vec::new();
    for h in &bundle.flows[0].routing.hubs {
        if let Some(t) = &h.discord {
            d.add_text_channel(GUILD, t.channel, h.id.as_str());
            hub_channels.push(t.channel);
            if let Some(r) = t.staff_role {
                d.add_role(GUILD, r, &format!("{} staff", h.id));
            }
        }
    }
    drop(bundle);

    // The bot, as `madoguchi run` starts it, in its own runtime.
    let mut cfg = Config {
        db: p.db_dir.join("discord-bench.db"),
        dialogs: p.dialogs.clone(),
        ..Config::default()
    };
    cfg.discord.api_base = Some(d.http_base());
    let token = Token::new(&d.bot_token()).map_err(|e| anyhow!("{e}"))?;
    let (bot, store) = bot_rt
        .spawn(async move {
            let store = SqliteStore::open(&cfg.db).await?;
            let bundle = madoguchi::script::load_dir(&cfg.dialogs).map_err(|e| anyhow!("{e}"))?;
            let runner = Runner::new(
                Arc::new(store.clone()) as Arc<dyn Store>,
                Arc::new(SystemClock),
                bundle,
                discord::runner_config(&cfg),
            )
            .await?;
            let bot = discord::start(cfg, token, Arc::new(runner)).await?;
            Ok::<_, anyhow::Error>((bot, store))
        })
        .await??;
    d.wait_gateway(|g| g.identifies == 1 && g.connected).await;
    let app = d.application_id();
    d.wait_for_call(|c| c.is("PUT", &format!("/applications/{app}/commands")) && c.ok())
        .await;
    let start_index = d.call_count();

    // Every call from now on goes to its owner.
    let router = Arc::new(Router::default());
    let mut sub = d.subscribe_calls();
    let r2 = router.clone();
    let routing = tokio::spawn(async move {
        while let Some(c) = sub.recv().await {
            r2.route(c);
        }
    });

    let cpu0 = cpu_by_group();
    let t0 = Instant::now();
    let stop_at = t0 + p.time_limit;
    let mut slots = Vec::new();
    for s in 0..p.owners {
        let d = d.clone();
        let router = router.clone();
        let (owners, rounds) = (p.owners, p.rounds);
        slots.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut done = 0usize;
            let mut turns = 0usize;
            let mut error = None;
            for r in 0..rounds {
                if Instant::now() >= stop_at {
                    break;
                }
                let n = r * owners + s;
                let mut o = Owner::new(d.clone(), router.clone(), FIRST_OWNER + n as u64);
                let res = o.consult(n).await;
                turns += o.latencies_us.len();
                lat.extend(o.latencies_us);
                match res {
                    Ok(()) => done += 1,
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            (lat, done, turns, error)
        }));
    }
    let mut lat = Vec::new();
    let mut consultations = 0usize;
    let mut turns = 0usize;
    let mut errors = Vec::new();
    for s in slots {
        let (l, c, t, e) = s.await.context("an owner task panicked")?;
        lat.extend(l);
        consultations += c;
        turns += t;
        errors.extend(e);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_by_group();
    if let Some(e) = errors.first() {
        bail!("{} owner slot(s) failed; the first: {e}", errors.len());
    }
    if turns != consultations * TURNS_PER_CONSULTATION {
        bail!("{turns} turns for {consultations} consultations");
    }

    let delivered =
        crate::settle::settle_deliveries(&store, || d.call_count(), consultations).await?;
    let calls = d.calls();
    let bot_calls = &calls[start_index..];
    if let Some(path) = std::env::var_os("MADOGUCHI_BENCH_DUMP_CALLS") {
        // For looking into a run: every call after start-up, one a line.
        let text: String = bot_calls
            .iter()
            .map(|c| {
                format!(
                    "{:.3} {} {} {}\n",
                    c.at.saturating_duration_since(t0).as_secs_f64() * 1000.0,
                    c.method,
                    c.path,
                    c.status
                )
            })
            .collect();
        std::fs::write(path, text)?;
    }
    let mut channel_types = HashMap::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in bot_calls {
        if c.path.starts_with("/channels/") {
            if let Some(id) = c.path.split('/').nth(2).and_then(|s| s.parse::<u64>().ok()) {
                channel_types.entry(id).or_insert_with(|| {
                    d.channel(id)
                        .and_then(|ch| ch["type"].as_u64())
                        .unwrap_or(99)
                });
            }
        }
        *kinds.entry(call_kind(c, &channel_types)).or_insert(0) += 1;
    }
    let failed = bot_calls.iter().filter(|c| !c.ok()).count();
    let errors = d.stand_in_errors();

    bot.shutdown().await.map_err(|e| anyhow!("{e}"))?;
    routing.abort();
    router.forget_pending();
    store.pool().close().await;

    lat.sort_unstable();
    let rest_per_turn = bot_calls.len() as f64 / turns as f64;
    let cpu: BTreeMap<String, f64> = cpu1
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu0.get(k).copied().unwrap_or(0.0)))
        .collect();
    let cpu_total: f64 = cpu.values().sum();
    let per_consultation: BTreeMap<String, f64> = kinds
        .iter()
        .map(|(k, n)| (k.clone(), *n as f64 / consultations as f64))
        .collect();
    Ok(json!({
        "case": "end to end",
        "owners_at_once": p.owners,
        "stand_in_checks_models": p.check_models,
        "consultations": consultations,
        "turns": turns,
        "turns_per_consultation": TURNS_PER_CONSULTATION,
        "seconds": secs,
        "consultations_per_s": consultations as f64 / secs,
        "turns_per_s": turns as f64 / secs,
        "rest_calls": bot_calls.len(),
        "rest_calls_per_turn": rest_per_turn,
        "rest_calls_failed": failed,
        "rest_calls_per_consultation_by_kind": per_consultation,
        "p50_ms": percentile(&lat, 0.50),
        "p90_ms": percentile(&lat, 0.90),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": percentile(&lat, 1.0),
        "cases": consultations,
        "deliveries_delivered": delivered,
        "stand_in_errors": errors.len(),
        "cpu_seconds_by_thread_group": cpu,
        "cpu_ms_per_turn": cpu_total * 1000.0 / turns as f64,
        "note": format!("{rest_per_turn:.2} REST/turn, {:.1} consult/s", consultations as f64 / secs),
    }))
}
