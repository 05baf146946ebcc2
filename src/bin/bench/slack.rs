//! Workload 6 of `madoguchi-bench`: the Slack app end to end (feature
//! `bench-slack`).
//!
//! The local Slack stand-in (`slack-standin`: the Web API and Socket Mode
//! on 127.0.0.1) runs in one tokio runtime (threads `driver`) together
//! with the simulated owners; the app runs in another (threads `bot`),
//! started as `madoguchi run` starts it with Slack alone
//! (`madoguchi::slack::start` over Socket Mode with the real slack-morphism
//! client, the outbox from `outbox::for_run` with the Slack sender, the
//! shipped dialogs with a Slack channel for every hub, a fresh SQLite
//! database). Each owner goes through the whole Japanese first-contact
//! consultation of `tests/it/slack_e2e.rs` (typed answers in the DM,
//! buttons, the prefecture menu, the form, checkboxes) and waits for the
//! app's answer to each action before the next one, like a person. Many
//! owners do so at once; a slot that finishes starts the next consultation
//! with a new owner.
//!
//! Figures: consultations/s, owner turns/s, Web API calls per turn (every
//! call the app makes after it connected, the cases' posts in the hubs'
//! channels included, over the owners' turns), and the turn latency: from
//! the owner's action entering the stand-in (it then goes to the app as a
//! Socket Mode envelope) to the stand-in receiving the call that carries
//! the answer (the next question's `chat.postMessage`, or `views.open` for
//! the form).

use anyhow::{anyhow, bail, Context, Result};
use madoguchi::runner::{Runner, SystemClock};
use madoguchi::slack::{self, SlackConfig};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::Store;
use serde_json::{json, Value};
use slack_standin::{element, elements, ApiCall, SlackStandIn};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How long one owner waits for the app's answer before the run fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Params {
    /// Owners consulting at the same time.
    pub owners: usize,
    /// Consultations each owner slot runs one after another.
    pub rounds: usize,
    /// No slot starts a new consultation after this.
    pub time_limit: Duration,
    pub dialogs: PathBuf,
    pub db_dir: PathBuf,
}

// ───────────────────────── routing calls to owners ─────────────────────────

/// Hands every recorded call to the owner whose DM it concerns: by the
/// `channel` of `chat.*` calls, or the DM named in a form's
/// `private_metadata` (`views.open`). Calls for a DM whose owner is not
/// registered yet wait in `pending`.
#[derive(Default)]
struct Router {
    routes: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    senders: HashMap<String, UnboundedSender<ApiCall>>,
    pending: HashMap<String, Vec<ApiCall>>,
}

impl Router {
    fn register(&self, dm: &str, tx: &UnboundedSender<ApiCall>) {
        let mut r = self.routes.lock().unwrap();
        r.senders.insert(dm.to_string(), tx.clone());
        if let Some(calls) = r.pending.remove(dm) {
            for c in calls {
                let _ = tx.send(c);
            }
        }
    }
    fn unregister(&self, dm: &str) {
        let mut r = self.routes.lock().unwrap();
        r.senders.remove(dm);
        r.pending.remove(dm);
    }
    fn route(&self, c: ApiCall) {
        let Some(key) = dm_of(&c) else { return };
        let mut r = self.routes.lock().unwrap();
        match r.senders.get(&key) {
            Some(tx) => {
                let _ = tx.send(c);
            }
            None => r.pending.entry(key).or_default().push(c),
        }
    }
}

/// The DM a call is about, if it is about one.
fn dm_of(c: &ApiCall) -> Option<String> {
    let ch = match c.method.as_str() {
        "views.open" => c.params["view"]["private_metadata"]
            .as_str()?
            .split('|')
            .next()?
            .to_string(),
        _ => c.params["channel"].as_str()?.to_string(),
    };
    ch.starts_with('D').then_some(ch)
}

// ───────────────────────── one owner ─────────────────────────

#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// A message in the DM with elements: the next question.
    Prompt,
    /// The form (`views.open`).
    Modal,
    /// The last message of the consultation (no question).
    Done,
}

struct Owner {
    s: Arc<SlackStandIn>,
    router: Arc<Router>,
    user: String,
    dm: Option<String>,
    tx: UnboundedSender<ApiCall>,
    rx: UnboundedReceiver<ApiCall>,
    /// The message carrying the current question: `{ts, blocks}`.
    prompt: Value,
    /// Action → answer, µs, one per turn.
    latencies_us: Vec<u32>,
}

fn text_of(params: &Value) -> String {
    let mut s = params["text"].as_str().unwrap_or_default().to_string();
    for b in params["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = b["text"]["text"].as_str() {
            s.push('\n');
            s.push_str(t);
        }
    }
    s
}

impl Owner {
    fn new(s: Arc<SlackStandIn>, router: Arc<Router>, user: String) -> Owner {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Owner {
            s,
            router,
            user,
            dm: None,
            tx,
            rx,
            prompt: Value::Null,
            latencies_us: Vec::with_capacity(32),
        }
    }

    fn dm(&self) -> String {
        self.dm.clone().expect("the owner wrote first")
    }

    /// Waits for the app's answer to an action made at `since`, and
    /// records the latency.
    async fn answer(&mut self, since: Instant, expect: Expect) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let c = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(c)) => c,
                Ok(None) => bail!("the call router stopped"),
                Err(_) => bail!(
                    "owner {}: no {expect:?} answer within {REPLY_TIMEOUT:?}",
                    self.user
                ),
            };
            if !c.ok() {
                continue;
            }
            let found = match (expect, c.method.as_str()) {
                (Expect::Prompt, "chat.postMessage")
                    if !elements(&c.params["blocks"]).is_empty() =>
                {
                    Some(json!({ "ts": c.response["ts"], "blocks": c.params["blocks"] }))
                }
                (Expect::Modal, "views.open") => Some(c.response["view"].clone()),
                (Expect::Done, "chat.postMessage")
                    if elements(&c.params["blocks"]).is_empty()
                        && text_of(&c.params).contains("お送りしました") =>
                {
                    Some(c.params.clone())
                }
                _ => None,
            };
            if let Some(v) = found {
                let us = c.at.saturating_duration_since(since).as_micros();
                self.latencies_us.push(us.min(u32::MAX as u128) as u32);
                if expect == Expect::Prompt {
                    self.prompt = v.clone();
                }
                return Ok(v);
            }
        }
    }

    async fn say(&mut self, text: &str) -> Result<()> {
        let since = Instant::now();
        self.s.user_sends_dm(&self.user, text).await;
        if self.dm.is_none() {
            let dm = self
                .s
                .dm_channel_of(&self.user)
                .ok_or_else(|| anyhow!("no DM channel"))?;
            self.router.register(&dm, &self.tx);
            self.dm = Some(dm);
        }
        self.answer(since, Expect::Prompt).await.map(|_| ())
    }

    fn action_id(&self, key: &str) -> Result<String> {
        element(&self.prompt["blocks"], key)
            .and_then(|e| e["action_id"].as_str().map(str::to_string))
            .ok_or_else(|| anyhow!("no element {key:?} on {}", self.prompt))
    }

    fn ts(&self) -> String {
        self.prompt["ts"].as_str().unwrap_or_default().to_string()
    }

    async fn press_expecting(&mut self, label: &str, expect: Expect) -> Result<Value> {
        let aid = self.action_id(label)?;
        let (dm, ts) = (self.dm(), self.ts());
        let since = Instant::now();
        self.s.user_clicks_button(&self.user, &dm, &ts, &aid).await;
        self.answer(since, expect).await
    }

    async fn press(&mut self, label: &str) -> Result<()> {
        self.press_expecting(label, Expect::Prompt)
            .await
            .map(|_| ())
    }

    /// A static select that answers at once.
    async fn choose(&mut self, key: &str, values: &[&str]) -> Result<()> {
        let aid = self.action_id(key)?;
        let (dm, ts) = (self.dm(), self.ts());
        let since = Instant::now();
        self.s
            .user_selects(&self.user, &dm, &ts, &aid, values)
            .await;
        self.answer(since, Expect::Prompt).await.map(|_| ())
    }

    /// Ticks boxes, then presses "done": one turn (the ticks get no
    /// answer; the turn's latency is measured from the press).
    async fn tick(&mut self, values: &[&str]) -> Result<()> {
        let aid = self.action_id("x:")?;
        let (dm, ts) = (self.dm(), self.ts());
        let env = self
            .s
            .user_selects(&self.user, &dm, &ts, &aid, values)
            .await;
        self.s.wait_for_ack(&env).await;
        self.press("これで決定").await
    }

    /// The form for a long answer (two turns: open, submit).
    async fn in_form(&mut self, text: &str) -> Result<()> {
        let view = self
            .press_expecting("入力フォームで答える", Expect::Modal)
            .await?;
        let id = view["id"]
            .as_str()
            .ok_or_else(|| anyhow!("views.open answered no view id: {view}"))?
            .to_string();
        let since = Instant::now();
        self.s
            .user_submits_modal(&self.user, &id, json!({ "answer": text }))
            .await;
        self.answer(since, Expect::Prompt).await.map(|_| ())
    }

    /// The consultation of `slack_e2e.rs`'s `consult`: Hyogo, a clear
    /// talent need, buttons, the prefecture menu, the form, checkboxes and
    /// typed answers; 25 turns.
    async fn consult(&mut self, n: usize) -> Result<()> {
        self.say("こんにちは").await?;
        if !text_of(&self.prompt).contains("進めてよろしいですか") {
            bail!("unexpected first question: {}", self.prompt);
        }
        self.press("はい").await?;
        self.say(&format!("株式会社ベンチ{n}製作所")).await?;
        self.press("製造業").await?;
        self.choose("q:", &["兵庫県"]).await?;
        self.say("30").await?;
        self.press("スキップ").await?; // capital (optional)
        self.in_form("地域でいちばん信頼される工場にしたい").await?;
        self.tick(&["hiring", "sales"]).await?;
        self.say("採用がうまくいかず、人手が足りない").await?;
        self.press("人材確保・採用").await?;
        self.press("スキップ").await?; // tried
        self.press("人材の採用・活用で解決したい").await?;
        self.press("おおよそ決まっている").await?; // talent_clear
        self.say("営業部長").await?;
        self.say("新規顧客の開拓とチームづくり").await?;
        self.say("法人営業の経験5年以上").await?;
        self.press("スキップ").await?; // talent_nice
        self.tick(&["fulltime", "side_job"]).await?;
        self.say("2027年4月").await?;
        self.say("山田太郎").await?;
        self.say("yamada@example.jp").await?;
        self.press("スキップ").await?; // phone
        self.press_expecting("同意して送信する", Expect::Done)
            .await?;
        if let Some(dm) = self.dm.take() {
            self.router.unregister(&dm);
        }
        Ok(())
    }
}

/// Turns of one consultation (`Owner::consult`).
const TURNS_PER_CONSULTATION: usize = 25;

// ───────────────────────── the world ─────────────────────────

/// The shipped dialogs, with a Slack channel (and one staff member) for
/// every hub that has a Discord channel, in `to`. Returns the channels.
fn dialogs_with_slack_hubs(from: &Path, to: &Path) -> Result<Vec<(String, String)>> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let p = e?.path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap_or_default()))?;
        }
    }
    let path = to.join("routing.yaml");
    let text = std::fs::read_to_string(&path)?;
    let mut out = String::new();
    let mut hubs = Vec::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        let trimmed = line.trim_start();
        if trimmed.starts_with("discord: { channel:") {
            let indent = &line[..line.len() - trimmed.len()];
            let n = hubs.len() + 1;
            let (channel, staff) = (format!("C0HUB{n:05}"), format!("U0HUBST{n:04}"));
            out.push_str(&format!(
                "{indent}slack: {{ channel: {channel}, staff: [{staff}] }}\n"
            ));
            hubs.push((channel, staff));
        }
    }
    if hubs.is_empty() {
        bail!("{} names no hub channel to mirror on Slack", path.display());
    }
    std::fs::write(&path, out)?;
    Ok(hubs)
}

// ───────────────────────── the run ─────────────────────────

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// A call as `method (where)`: the DM, a hub channel, a thread in one.
fn call_kind(c: &ApiCall) -> String {
    let ch = c.params["channel"].as_str().unwrap_or_default();
    let place = if ch.starts_with('D') {
        " (DM)"
    } else if ch.starts_with('C') && !c.params["thread_ts"].is_null() {
        " (hub thread)"
    } else if ch.starts_with('C') {
        " (hub channel)"
    } else {
        ""
    };
    format!("{}{place}", c.method)
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
    // Payloads are not decoded with slack-morphism's models here (the
    // tests do that); it would cost stand-in CPU on the same cores.
    let s = Arc::new(
        SlackStandIn::start_with(slack_standin::Options {
            check_models: false,
            ..Default::default()
        })
        .await,
    );
    s.set_wait_timeout(REPLY_TIMEOUT);
    let dialogs = p.db_dir.join("slack-bench-dialogs");
    for (channel, staff) in dialogs_with_slack_hubs(&p.dialogs, &dialogs)? {
        s.add_user(&staff, &format!("staff {channel}"));
        s.add_channel(&channel, &channel.to_lowercase(), &[&staff]);
    }
    let cfg = SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some(s.bot_token_value()),
        "SLACK_APP_TOKEN" => Some(s.app_token_value()),
        "SLACK_API_BASE" => Some(s.api_url()),
        _ => None,
    })
    .map_err(|e| anyhow!("{e}"))?
    .ok_or_else(|| anyhow!("the Slack config is incomplete"))?;

    // The app, as `madoguchi run` starts it with Slack alone, in its own
    // runtime.
    let db = p.db_dir.join("slack-bench.db");
    // Hubs without a chat target would get their cases here (the shipped
    // routing sends every bench case to Slack).
    let inbox = p.db_dir.join("slack-bench-inbox");
    let (app, outbox, store) = bot_rt
        .spawn(async move {
            let mut cfg = cfg;
            cfg.dialogs = dialogs.clone();
            let store = SqliteStore::open(&db).await?;
            let bundle = madoguchi::script::load_dir(&dialogs).map_err(|e| anyhow!("{e}"))?;
            let dcfg = madoguchi::discord::Config {
                dialogs: dialogs.clone(),
                ..Default::default()
            };
            let mut rc = madoguchi::discord::runner_config(&dcfg);
            rc.transports = vec!["slack".into()];
            let runner = Arc::new(
                Runner::new(
                    Arc::new(store.clone()) as Arc<dyn Store>,
                    Arc::new(SystemClock),
                    bundle,
                    rc,
                )
                .await?,
            );
            let sender = slack::sender(&cfg, runner.clone())?;
            let outbox =
                madoguchi::outbox::for_run(&dcfg, None, Some(sender), &inbox, runner.clone())
                    .spawn();
            let app = slack::start(
                cfg,
                runner,
                slack::Deliveries::Elsewhere(outbox.waker()),
                dcfg.outbox.clone(),
            )
            .await?;
            Ok::<_, anyhow::Error>((app, outbox, store))
        })
        .await??;
    s.wait_socket(|st| st.live >= 1).await;
    // Every call from now on is the app's work for the owners.
    let start_index = s.total_calls();
    let router = Arc::new(Router::default());
    let mut sub = s.subscribe_calls();
    let r2 = router.clone();
    let routing = tokio::spawn(async move {
        while let Some(c) = sub.recv().await {
            r2.route(c);
        }
    });

    let t0 = Instant::now();
    let stop_at = t0 + p.time_limit;
    let mut slots = Vec::new();
    for slot in 0..p.owners {
        let s = s.clone();
        let router = router.clone();
        let (owners, rounds) = (p.owners, p.rounds);
        slots.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut done, mut turns, mut error) = (0usize, 0usize, None);
            for r in 0..rounds {
                if Instant::now() >= stop_at {
                    break;
                }
                let n = r * owners + slot;
                let mut o = Owner::new(s.clone(), router.clone(), format!("U0OWN{n:06}"));
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
    let (mut consultations, mut turns, mut errors) = (0usize, 0usize, Vec::new());
    for slot in slots {
        let (l, c, t, e) = slot.await.context("an owner task panicked")?;
        lat.extend(l);
        consultations += c;
        turns += t;
        errors.extend(e);
    }
    let secs = t0.elapsed().as_secs_f64();
    if let Some(e) = errors.first() {
        bail!("{} owner slot(s) failed; the first: {e}", errors.len());
    }
    if turns != consultations * TURNS_PER_CONSULTATION {
        bail!("{turns} turns for {consultations} consultations");
    }

    let delivered =
        crate::settle::settle_deliveries(&store, || s.total_calls(), consultations).await?;
    let calls = s.calls();
    let app_calls = &calls[start_index..];
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for c in app_calls {
        *kinds.entry(call_kind(c)).or_insert(0) += 1;
    }
    let failed = app_calls.iter().filter(|c| !c.ok()).count();
    let stand_in_errors = s.stand_in_errors();

    app.shutdown().await;
    outbox.shutdown().await;
    routing.abort();
    store.pool().close().await;

    lat.sort_unstable();
    let per_turn = app_calls.len() as f64 / turns as f64;
    let dialog_calls = app_calls
        .iter()
        .filter(|c| dm_of(c).is_some() || c.method == "conversations.open")
        .count();
    let per_consultation: BTreeMap<String, f64> = kinds
        .iter()
        .map(|(k, n)| (k.clone(), *n as f64 / consultations as f64))
        .collect();
    Ok(json!({
        "case": "end to end",
        "owners_at_once": p.owners,
        "consultations": consultations,
        "turns": turns,
        "turns_per_consultation": TURNS_PER_CONSULTATION,
        "seconds": secs,
        "consultations_per_s": consultations as f64 / secs,
        "turns_per_s": turns as f64 / secs,
        "web_api_calls": app_calls.len(),
        "web_api_calls_per_turn": per_turn,
        "web_api_calls_per_turn_dialog_only": dialog_calls as f64 / turns as f64,
        "web_api_calls_failed": failed,
        "web_api_calls_per_consultation_by_kind": per_consultation,
        "p50_ms": percentile(&lat, 0.50),
        "p90_ms": percentile(&lat, 0.90),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": percentile(&lat, 1.0),
        "cases": consultations,
        "deliveries_delivered": delivered,
        "stand_in_errors": stand_in_errors.len(),
        "note": format!("{per_turn:.3} Web API calls/turn, {:.1} consult/s", consultations as f64 / secs),
    }))
}
