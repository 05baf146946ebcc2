//! The Slack app end to end: the real app code (started exactly as
//! `madoguchi run` starts it, through `madoguchi::slack::start`, with the
//! outbox beside it as `run` builds it) and the real slack-morphism client
//! (Web API over hyper, Socket Mode over WebSocket), the real dialogs and a
//! temporary SQLite database, against the local Slack stand-in
//! (`crates/slack-standin`). Nothing calls the app's handlers directly:
//! every input is a user's action in the stand-in, every check is on what
//! the stand-in recorded. Every wait is on recorded calls or state, never
//! on time.

use crate::support::copy_dialogs;
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::outbox::{Outbox, OutboxConfig};
use madoguchi::runner::{Clock, Runner, SystemClock};
use madoguchi::slack::{self, Connection, RunningSlack, SlackConfig};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::{CaseStatus, DeliveryStatus, Store};
use serde_json::{json, Value};
use slack_standin::{element, SlackStandIn};
use std::sync::Arc;
use std::time::Duration;

mod follow_up;
mod takeover;
mod two_instances;

const OWNER: &str = "U0OWNER001";
const STAFF_PRO: &str = "U0STAFF001";
const OUTSIDER: &str = "U0OUTSID01";
const STAFF_CHAMBER: &str = "U0CHAMB001";
const PRO_CHANNEL: &str = "C0PRO00001";
const CHAMBER_CHANNEL: &str = "C0CHAMBER1";
const PRO_GROUP: &str = "S0PROSTAF1";
const LOBBY: &str = "C0LOBBY001";
/// The Yorozu hub's channel: a forward's target, routed by no consultation.
const YOROZU_CHANNEL: &str = "C0YOROZU01";
/// The administrators (`SLACK_ADMINS`): a user group with one member.
const ADMIN: &str = "U0ADMIN001";
const ADMIN_GROUP: &str = "S0ADMINS01";

/// The shipped routing with Slack targets for two Hyogo hubs: the
/// pro-talent hub's staff as a user group, the chamber's as a member list.
fn with_slack_targets(routing: &str) -> String {
    routing
        .replacen(
            r#"      discord: { channel: "100000000000000101", staff_role: "100000000000000201" }"#,
            &format!("      discord: {{ channel: \"100000000000000101\", staff_role: \"100000000000000201\" }}\n      slack: {{ channel: {PRO_CHANNEL}, staff: {PRO_GROUP} }}"),
            1,
        )
        .replacen(
            r#"      discord: { channel: "100000000000000103", staff_role: "100000000000000203" }"#,
            &format!("      discord: {{ channel: \"100000000000000103\", staff_role: \"100000000000000203\" }}\n      slack: {{ channel: {CHAMBER_CHANNEL}, staff: [{STAFF_CHAMBER}] }}"),
            1,
        )
        .replacen(
            r#"      discord: { channel: "100000000000000102", staff_role: "100000000000000202" }"#,
            &format!("      discord: {{ channel: \"100000000000000102\", staff_role: \"100000000000000202\" }}\n      slack: {{ channel: {YOROZU_CHANNEL}, staff: [{STAFF_CHAMBER}] }}"),
            1,
        )
}

struct Harness {
    slack: SlackStandIn,
    app: Option<RunningSlack>,
    outbox: Option<Arc<Outbox>>,
    outbox_task: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
    store: Arc<dyn Store>,
    dialogs: std::path::PathBuf,
    _dir: tempfile::TempDir,
    /// Index of the last DM post consumed by `next_*`.
    last: Option<usize>,
    /// The message carrying the current question.
    prompt: Value,
    /// Whether the outbox runs by itself (as in `run`) or only when the
    /// test drives it.
    auto_outbox: bool,
    /// The app's clock (a test may fix it and move it between restarts).
    clock: Arc<dyn Clock>,
    /// The answer `consult` writes in the form (the vision).
    vision: String,
    /// Discord beside Slack in the same process (a hub on Discord).
    cross: Option<Cross>,
}

/// The Discord side of a cross-platform test: the stand-in, the bot's
/// configuration and the running bot.
struct Cross {
    discord: crate::support::discord::DiscordStandIn,
    cfg: madoguchi::discord::Config,
    bot: Option<madoguchi::discord::RunningBot>,
}

const D_GUILD: u64 = 600_000_000_000_000_001;
const D_PRO_CHANNEL: u64 = 100_000_000_000_000_101;
const D_PRO_ROLE: u64 = 100_000_000_000_000_201;
const D_STAFF: u64 = 400_000_000_000_000_002;

/// Every text of a message: its notification text and its blocks' texts.
fn text_of(m: &Value) -> String {
    let mut s = m["text"].as_str().unwrap_or_default().to_string();
    for b in m["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = b["text"]["text"].as_str() {
            s.push('\n');
            s.push_str(t);
        }
        for e in b["elements"].as_array().into_iter().flatten() {
            if let Some(t) = e["text"].as_str() {
                s.push('\n');
                s.push_str(t);
            }
        }
    }
    s
}

fn has_actions(m: &Value) -> bool {
    !slack_standin::elements(&m["blocks"]).is_empty()
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(true).await
    }

    async fn with(auto_outbox: bool) -> Harness {
        Harness::build(auto_outbox, false).await
    }

    /// The pro-talent hub on Discord (only), the chamber on Slack (only):
    /// both platforms in one process, as `madoguchi run` starts them.
    async fn cross() -> Harness {
        Harness::build(true, true).await
    }

    async fn build(auto_outbox: bool, cross: bool) -> Harness {
        let slack = SlackStandIn::start().await;
        slack.add_user(OWNER, "owner");
        slack.add_user(STAFF_PRO, "pro-staff");
        slack.add_user(OUTSIDER, "outsider");
        slack.add_user(STAFF_CHAMBER, "chamber-staff");
        slack.add_channel(PRO_CHANNEL, "hyogo-pro", &[STAFF_PRO, OUTSIDER]);
        slack.add_channel(CHAMBER_CHANNEL, "hyogo-chamber", &[STAFF_CHAMBER]);
        slack.add_channel(YOROZU_CHANNEL, "hyogo-yorozu", &[STAFF_CHAMBER]);
        slack.add_usergroup(PRO_GROUP, "hyogo-pro-staff", &[STAFF_PRO]);
        slack.add_channel(LOBBY, "lobby", &[OWNER]);
        slack.add_user(ADMIN, "admin");
        slack.add_usergroup(ADMIN_GROUP, "madoguchi-admins", &[ADMIN]);
        let dir = tempfile::tempdir().unwrap();
        let dialogs = dir.path().join("dialogs");
        std::fs::create_dir_all(&dialogs).unwrap();
        copy_dialogs(&dialogs);
        let routing = std::fs::read_to_string(dialogs.join("routing.yaml")).unwrap();
        let edited = if cross {
            routing.replacen(
                r#"      discord: { channel: "100000000000000103", staff_role: "100000000000000203" }"#,
                &format!("      slack: {{ channel: {CHAMBER_CHANNEL}, staff: [{STAFF_CHAMBER}] }}"),
                1,
            )
        } else {
            with_slack_targets(&routing)
        };
        assert_ne!(edited, routing, "the test routing names Slack targets");
        let cross = if cross {
            let discord = crate::support::discord::DiscordStandIn::start().await;
            discord.add_guild(D_GUILD, "Network");
            discord.add_text_channel(D_GUILD, D_PRO_CHANNEL, "hyogo-pro");
            discord.add_role(D_GUILD, D_PRO_ROLE, "hyogo-pro staff");
            discord.add_member(D_GUILD, D_STAFF, "pro-staff", &[D_PRO_ROLE]);
            let mut cfg = madoguchi::discord::Config {
                dialogs: dialogs.clone(),
                ..Default::default()
            };
            cfg.discord.api_base = Some(discord.http_base());
            cfg.outbox.poll_interval_ms = 50;
            cfg.outbox.backoff_base_ms = 50;
            Some(Cross {
                discord,
                cfg,
                bot: None,
            })
        } else {
            None
        };
        std::fs::write(dialogs.join("routing.yaml"), edited).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("bot.db")).await.unwrap());
        let mut h = Harness {
            slack,
            app: None,
            outbox: None,
            outbox_task: None,
            store,
            dialogs,
            _dir: dir,
            last: None,
            prompt: Value::Null,
            auto_outbox,
            clock: Arc::new(SystemClock),
            vision: "地域でいちばん信頼される工場にしたい".into(),
            cross,
        };
        h.start_app().await;
        h
    }

    fn config(&self) -> SlackConfig {
        let mut c = SlackConfig::from_vars(|k| match k {
            "SLACK_BOT_TOKEN" => Some(self.slack.bot_token_value()),
            "SLACK_APP_TOKEN" => Some(self.slack.app_token_value()),
            "SLACK_API_BASE" => Some(self.slack.api_url()),
            "SLACK_ADMINS" => Some(ADMIN_GROUP.to_string()),
            _ => None,
        })
        .unwrap()
        .expect("slack is configured");
        c.reconnect_backoff_secs = 1;
        c.dialogs = self.dialogs.clone();
        assert_eq!(c.connection, Connection::SocketMode);
        c
    }

    /// Starts the app the way `madoguchi run` does: one runner, one outbox
    /// with the Slack sender, the app connected over Socket Mode.
    async fn start_app(&mut self) {
        let bundle = madoguchi::script::load_dir(&self.dialogs).unwrap();
        let mut rc = madoguchi::runner::RunnerConfig {
            transports: vec!["slack".into()],
            ..Default::default()
        };
        if self.cross.is_some() {
            rc.transports.push("discord".into());
        }
        let runner = Arc::new(
            Runner::new(self.store.clone(), self.clock.clone(), bundle, rc)
                .await
                .unwrap(),
        );
        let cfg = self.config();
        let ocfg = OutboxConfig {
            poll_interval_ms: 50,
            backoff_base_ms: 50,
            ..Default::default()
        };
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut outbox = Outbox::new(self.store.clone(), runner.clock().clone(), ocfg.clone())
            .with_wake(wake.clone())
            .with_sender(slack::sender(&cfg, runner.clone()).unwrap());
        if let Some(x) = &mut self.cross {
            let token = madoguchi::discord::Token::new(&x.discord.bot_token()).unwrap();
            outbox = outbox.with_sender(madoguchi::discord::sender(&x.cfg, &token, runner.clone()));
            let mut dcfg = x.cfg.clone();
            dcfg.deliveries = madoguchi::discord::Deliveries::Elsewhere(wake.clone());
            let before = x.discord.identifies();
            x.bot = Some(
                madoguchi::discord::start(dcfg, token, runner.clone())
                    .await
                    .expect("the Discord bot starts"),
            );
            x.discord
                .wait_gateway(|g| g.identifies > before && g.connected)
                .await;
        }
        let outbox = Arc::new(outbox);
        if self.auto_outbox {
            let (stop, rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(outbox.clone().run(rx));
            self.outbox_task = Some((stop, task));
        }
        self.outbox = Some(outbox);
        let before = self.slack.socket_stats().connections;
        let app = slack::start(cfg, runner, slack::Deliveries::Elsewhere(wake), ocfg)
            .await
            .expect("the app starts");
        self.app = Some(app);
        self.slack
            .wait_socket(|s| s.connections > before && s.live >= 1)
            .await;
    }

    async fn stop_app(&mut self) {
        if let Some(a) = self.app.take() {
            a.shutdown().await;
        }
        if let Some(b) = self.cross.as_mut().and_then(|x| x.bot.take()) {
            b.shutdown().await.expect("clean shutdown");
        }
        if let Some((stop, task)) = self.outbox_task.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }

    /// Shuts down and checks what every test must hold: no stand-in
    /// error, every envelope acknowledged within 3 seconds.
    async fn finish(mut self) {
        self.stop_app().await;
        assert!(
            self.slack.stand_in_errors().is_empty(),
            "{:#?}",
            self.slack.stand_in_errors()
        );
        let late: Vec<_> = self
            .slack
            .unacked_or_late()
            .into_iter()
            .filter(|e| e.ack.as_ref().is_some_and(|a| !a.lost))
            .collect();
        assert!(
            late.is_empty(),
            "every interaction is acknowledged at once: {late:#?}"
        );
        for c in self.slack.calls_to("chat.postMessage") {
            if c.ok() {
                assert_eq!(c.params["unfurl_links"], json!(false), "{:?}", c.params);
            }
        }
    }

    fn dm(&self) -> String {
        self.slack.dm_channel_of(OWNER).expect("the owner has a DM")
    }

    fn owner(&self) -> UserKey {
        UserKey::new(Transport::Slack, OWNER).unwrap()
    }

    /// The app's next message in the DM (with a question if `question`).
    async fn next_dm(&mut self, question: bool) -> Value {
        let last = self.last;
        let slack = &self.slack;
        // The DM may not exist yet (`/consult` in a channel opens it).
        let wanted = |c: &slack_standin::ApiCall| {
            Some(c.index) > last
                && c.method == "chat.postMessage"
                && c.ok()
                && slack.dm_channel_of(OWNER).as_deref() == Some(c.param("channel"))
                && (!question || !slack_standin::elements(&c.params["blocks"]).is_empty())
        };
        let calls = slack.wait_for(|calls| calls.iter().any(wanted)).await;
        let c = calls.iter().find(|c| wanted(c)).unwrap();
        self.last = Some(c.index);
        let ts = c.response["ts"].as_str().unwrap().to_string();
        let msg = slack.message(&ts).expect("the posted message");
        if question {
            self.prompt = msg.clone();
        }
        msg
    }

    async fn next_prompt(&mut self) -> Value {
        self.next_dm(true).await
    }

    async fn say(&mut self, text: &str) -> Value {
        self.slack.user_sends_dm(OWNER, text).await;
        self.next_prompt().await
    }

    fn ts(m: &Value) -> String {
        m["ts"].as_str().expect("a ts").to_string()
    }

    fn action_id(m: &Value, key: &str) -> String {
        element(&m["blocks"], key).unwrap_or_else(|| panic!("no element {key:?} on {m}"))
            ["action_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn press_only(&mut self, label: &str) -> String {
        let p = self.prompt.clone();
        self.press_on(&p, label).await
    }

    async fn press_on(&mut self, m: &Value, label: &str) -> String {
        let aid = Harness::action_id(m, label);
        let dm = self.dm();
        self.slack
            .user_clicks_button(OWNER, &dm, &Harness::ts(m), &aid)
            .await
    }

    async fn press(&mut self, label: &str) -> Value {
        self.press_only(label).await;
        self.next_prompt().await
    }

    async fn select(&mut self, key: &str, values: &[&str]) -> String {
        let aid = Harness::action_id(&self.prompt, key);
        let dm = self.dm();
        let ts = Harness::ts(&self.prompt);
        self.slack.user_selects(OWNER, &dm, &ts, &aid, values).await
    }

    /// A menu choice that answers at once (static select).
    async fn choose(&mut self, key: &str, values: &[&str]) -> Value {
        self.select(key, values).await;
        self.next_prompt().await
    }

    /// Ticks boxes (or a multi-select), then presses Done.
    async fn tick(&mut self, values: &[&str]) -> Value {
        let env = self.select("x:", values).await;
        self.slack.wait_for_ack(&env).await;
        self.press("これで決定").await
    }

    /// Answers a long text question in the form (modal).
    async fn in_form(&mut self, text: &str) -> Value {
        self.press_only("入力フォームで答える").await;
        let view = self.slack.wait_for_view(OWNER).await;
        self.slack
            .user_submits_modal(OWNER, &view.id, json!({ "answer": text }))
            .await;
        self.next_prompt().await
    }

    /// A whole Japanese consultation from Hyogo with a clear talent need,
    /// using buttons, the prefecture menu, the form, checkboxes and typed
    /// answers. `before_sending` runs just before 同意して送信する.
    async fn consult(
        &mut self,
        company: &str,
        before_sending: impl FnOnce(&SlackStandIn),
    ) -> CaseId {
        let p = self.say("こんにちは").await;
        assert!(text_of(&p).contains("進めてよろしいですか"), "{p}");
        self.press("はい").await;
        self.say(company).await;
        self.press("製造業").await;
        self.choose("q:", &["兵庫県"]).await;
        self.say("30").await;
        self.press("スキップ").await; // capital (optional)
        let vision = self.vision.clone();
        self.in_form(&vision).await;
        self.tick(&["hiring", "sales"]).await; // issue_areas (multi)
        self.say("採用がうまくいかず、人手が足りない").await;
        self.press("人材確保・採用").await;
        self.press("スキップ").await; // tried (optional)
        self.press("人材の採用・活用で解決したい").await;
        self.press("おおよそ決まっている").await; // talent_clear
        self.say("営業部長").await;
        self.say("新規顧客の開拓とチームづくり").await;
        self.say("法人営業の経験5年以上").await;
        self.press("スキップ").await; // talent_nice
        self.tick(&["fulltime", "side_job"]).await; // talent_style
        self.say("2027年4月").await;
        self.say("山田太郎").await;
        self.say("yamada@example.jp").await;
        let confirm = self.press("スキップ").await; // phone
        assert!(
            text_of(&confirm).contains("兵庫県プロフェッショナル人材戦略拠点"),
            "{confirm}"
        );
        before_sending(&self.slack);
        self.press_only("同意して送信する").await;
        let done = self.next_dm(false).await;
        assert!(text_of(&done).contains("お送りしました"), "{done}");
        assert!(!has_actions(&done), "the last message has no question");
        let cases = self.store.cases_of_user(&self.owner()).await.unwrap();
        cases.last().expect("a case").id
    }

    /// Waits until the delivery of `case` to `hub` is no longer pending.
    async fn delivered(&self, case: CaseId, hub: &str) -> madoguchi::store::DeliveryRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let d = self
                .store
                .deliveries(case)
                .await
                .unwrap()
                .into_iter()
                .find(|d| d.hub_id == hub);
            if let Some(d) = d.filter(|d| d.status != DeliveryStatus::Pending) {
                return d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivery of {case} to {hub} not finished: {:?}",
                self.store.deliveries(case).await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The app's case posts (top-level messages with its metadata) in a
    /// channel.
    fn case_posts(&self, channel: &str) -> Vec<Value> {
        self.slack
            .messages_in(channel)
            .into_iter()
            .filter(|m| m["metadata"]["event_type"] == "madoguchi_case")
            .collect()
    }
}

#[tokio::test]
async fn a_consultation_in_the_dm_posts_the_case_once_with_its_thread() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社テスト製作所", |_| {}).await;
    let d = h.delivered(case, "hyogo-pro").await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    h.delivered(case, "hyogo-chamber").await;
    let posts = h.case_posts(PRO_CHANNEL);
    assert_eq!(posts.len(), 1, "posted exactly once: {posts:#?}");
    let post = &posts[0];
    let text = text_of(post);
    assert!(
        text.contains(&case.to_string()) && text.contains("株式会社テスト製作所"),
        "{text}"
    );
    assert!(
        text.contains("振り分けの理由") && text.contains("talent-need-clear"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<!subteam^{PRO_GROUP}>")),
        "the staff group is mentioned: {text}"
    );
    let ids: Vec<String> = slack_standin::elements(&post["blocks"])
        .iter()
        .map(|e| e["action_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            format!("s:claim:{}", case.0),
            format!("s:fwd:{}", case.0),
            format!("s:adv:{}", case.0),
            format!("s:close:{}", case.0)
        ]
    );
    assert_eq!(d.external_id.as_deref(), post["ts"].as_str());
    // The copy for the chamber has no buttons and says it is a copy.
    let copy = h.case_posts(CHAMBER_CHANNEL);
    assert_eq!(copy.len(), 1);
    assert!(slack_standin::elements(&copy[0]["blocks"]).is_empty());
    assert!(text_of(&copy[0]).contains("写し"));
    // The sheet is long: it continues in the post's thread, in the app's
    // own messages carrying the delivery's metadata.
    let thread = h.slack.thread(PRO_CHANNEL, post["ts"].as_str().unwrap());
    let whole: String = std::iter::once(text.clone())
        .chain(thread.iter().skip(1).map(text_of))
        .collect();
    assert!(
        whole.contains("山田太郎") && whole.contains("営業部長"),
        "the whole sheet reaches the hub"
    );
    // One Web API call per owner turn, or close: the DM posts only.
    let dm = h.dm();
    let dm_posts = h
        .slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.param("channel") == dm)
        .count();
    let turns = 24;
    assert!(dm_posts <= turns + 1, "{dm_posts} posts for {turns} turns");
    h.finish().await;
}

#[tokio::test]
async fn staff_claim_and_an_outsider_is_refused_privately() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社クレーム", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let post = h.case_posts(PRO_CHANNEL).remove(0);
    let ts = post["ts"].as_str().unwrap().to_string();
    // Someone in the channel but not in the staff group.
    let env = h
        .slack
        .user_clicks_button(OUTSIDER, PRO_CHANNEL, &ts, &format!("s:claim:{}", case.0))
        .await;
    h.slack.wait_for_ack(&env).await;
    let refusals = h
        .slack
        .wait_for(|cs| {
            cs.iter()
                .any(|c| c.method == "chat.postEphemeral" && c.param("user") == OUTSIDER)
        })
        .await;
    assert!(refusals
        .iter()
        .any(|c| c.method == "chat.postEphemeral" && c.param("channel") == PRO_CHANNEL));
    assert_eq!(
        h.store.case(case).await.unwrap().unwrap().status,
        CaseStatus::Open,
        "nothing changed"
    );
    // Staff claim it: the case is theirs, the thread has a note, the post shows it.
    let env = h
        .slack
        .user_clicks_button(STAFF_PRO, PRO_CHANNEL, &ts, &format!("s:claim:{}", case.0))
        .await;
    h.slack.wait_for_ack(&env).await;
    h.slack
        .wait_for(|cs| cs.iter().any(|c| c.method == "chat.update" && c.ok()))
        .await;
    let c = h.store.case(case).await.unwrap().unwrap();
    assert_eq!(c.status, CaseStatus::Claimed);
    assert_eq!(
        c.claimed_by.as_deref(),
        Some(format!("slack:{STAFF_PRO}").as_str())
    );
    let updated = h.slack.message(&ts).unwrap();
    assert!(
        slack_standin::element(&updated["blocks"], &format!("s:release:{}", case.0)).is_some(),
        "{updated}"
    );
    let thread = h.slack.thread(PRO_CHANNEL, &ts);
    assert!(
        thread
            .iter()
            .skip(1)
            .any(|m| text_of(m).contains(STAFF_PRO)),
        "a note in the thread: {thread:#?}"
    );
    assert!(!h.slack.ephemerals(PRO_CHANNEL, OUTSIDER).is_empty());
    h.finish().await;
}

#[tokio::test]
async fn hostile_owner_text_pings_and_links_nothing() {
    let mut h = Harness::new().await;
    // Within the company name's 100 characters.
    let company = format!("<!channel><!here><@{STAFF_PRO}><!subteam^{PRO_GROUP}><https://evil.example/|銀行>http://evil.example ピン");
    assert!(company.chars().count() <= 100);
    let case = h.consult(&company, |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    let mut seen = 0;
    for ch in [h.dm(), PRO_CHANNEL.to_string(), CHAMBER_CHANNEL.to_string()] {
        for m in h.slack.all_messages_in(&ch) {
            if m["bot_id"].is_null() {
                continue;
            }
            seen += 1;
            let raw = m.to_string();
            for bad in [
                "<!channel>",
                "<!here>",
                &format!("<@{STAFF_PRO}>"),
                "<https://evil",
                "https://evil",
                "http://evil",
            ] {
                assert!(!raw.contains(bad), "{bad} live in {m}");
            }
            // The only live mention is the new case's staff group, once.
            let group = format!("<!subteam^{PRO_GROUP}>");
            let n = raw.matches(&group).count();
            assert!(n == 0 || (ch == PRO_CHANNEL && n <= 2), "{m}");
            assert_eq!(m["standin_unfurl_links"], json!(false), "{m}");
        }
    }
    assert!(seen > 20);
    let post = h.case_posts(PRO_CHANNEL).remove(0);
    assert!(text_of(&post).contains("ピン"));
    assert!(
        text_of(&post).contains("&lt;!channel&gt;"),
        "shown as text: {}",
        text_of(&post)
    );
    h.finish().await;
}

#[tokio::test]
async fn a_429_and_a_500_during_delivery_still_post_exactly_once() {
    let mut h = Harness::with(false).await;
    let case = h.consult("株式会社リトライ", |_| {}).await;
    // The owner is done; now Slack rate-limits, then fails, then loses the
    // answer to a post that was made: the case is still posted once.
    h.slack.rate_limit("chat.postMessage", 1, 1);
    h.slack.fail_with_status("chat.postMessage", 500, 1);
    h.slack
        .lose_response_after_commit("chat.postMessage", Some(PRO_CHANNEL), 1);
    let outbox = h.outbox.clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        outbox.run_once().await.unwrap();
        let ds = h.store.deliveries(case).await.unwrap();
        if ds.iter().all(|d| d.status != DeliveryStatus::Pending) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ds:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses: Vec<u16> = h
        .slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.param("channel") == PRO_CHANNEL || c.param("channel") == CHAMBER_CHANNEL)
        .map(|c| c.status)
        .collect();
    assert!(
        statuses.contains(&429) && statuses.contains(&500),
        "{statuses:?}"
    );
    assert_eq!(h.case_posts(PRO_CHANNEL).len(), 1, "exactly one post");
    assert_eq!(h.case_posts(CHAMBER_CHANNEL).len(), 1, "exactly one copy");
    let d = h.delivered(case, "hyogo-pro").await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert!(
        h.slack.call_count("conversations.history") >= 1,
        "the retry looked for its own post first"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_dropped_socket_mid_consultation_then_it_continues() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    let before = h.slack.socket_stats().connections;
    assert!(h.slack.drop_sockets() >= 1);
    // The owner answers while the app is away; the envelope waits for the
    // reconnection.
    h.slack.user_sends_dm(OWNER, "株式会社ソケット").await;
    let next = h.next_prompt().await;
    assert!(text_of(&next).contains("業種"), "{next}");
    assert!(h.slack.socket_stats().connections > before, "reconnected");
    let p = h.press("製造業").await;
    assert!(text_of(&p).contains("都道府県"), "{p}");
    h.finish().await;
}

#[tokio::test]
async fn restart_resumes_the_consultation_where_it_was() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    h.say("株式会社リスタート").await;
    // The question (業種) is showing; the app stops and starts again.
    let question = h.prompt.clone();
    h.stop_app().await;
    h.start_app().await;
    h.prompt = question;
    let p = h.press("製造業").await;
    assert!(
        text_of(&p).contains("都道府県"),
        "the old question still works after the restart: {p}"
    );
    h.choose("q:", &["兵庫県"]).await;
    let s = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    assert_eq!(s.lang, madoguchi::script::Lang::Ja);
    h.finish().await;
}

/// The disk fails the fsync of an owner's answer. The owner is told to
/// try again, and nothing more is written, even once the disk works, until
/// the app is restarted: only then is it known what reached the disk. Here
/// the answer did (the stand-in fails only the report), so the owner who
/// sends it again after the restart is shown the next question instead of
/// having it taken as that question's answer.
#[tokio::test]
async fn after_a_failed_fsync_nothing_is_written_until_restart_and_a_resent_answer_is_not_misread()
{
    use std::sync::atomic::Ordering;
    let mut h = Harness::new().await;
    // The same database, opened with an fsync the test can make fail.
    h.stop_app().await;
    let path = h._dir.path().join("bot.db");
    let (fail, sync) = crate::support::failing_fsync();
    h.store = Arc::new(SqliteStore::open_with_wal_sync(&path, sync).await.unwrap());
    h.start_app().await;
    h.say("こんにちは").await;
    let company_q = h.press("はい").await;
    assert!(text_of(&company_q).contains("会社名"), "{company_q}");

    fail.store(true, Ordering::SeqCst);
    h.slack.user_sends_dm(OWNER, "株式会社ディスク").await;
    let sorry = h.next_dm(false).await;
    assert!(
        text_of(&sorry).contains("もう一度お試しください"),
        "{sorry}"
    );
    assert!(!has_actions(&sorry));
    assert!(h.store.write_failure().is_some());
    fail.store(false, Ordering::SeqCst);
    h.slack.user_sends_dm(OWNER, "株式会社ディスク").await;
    let sorry = h.next_dm(false).await;
    assert!(
        text_of(&sorry).contains("もう一度お試しください"),
        "still refused: {sorry}"
    );

    // The restart opens the database from what is on disk.
    h.stop_app().await;
    h.store = Arc::new(SqliteStore::open(&path).await.unwrap());
    h.start_app().await;
    // The owner sends the answer again. The app, starting, may also show
    // the current question on its own (`前回の続きから再開します`); either
    // way the owner's message is read against the question they had seen,
    // and the reply says the earlier answer is kept and asks the next one.
    let dm = h.dm();
    h.slack.user_sends_dm(OWNER, "株式会社ディスク").await;
    let kept = "前の質問へのご回答は保存されています";
    let calls = h
        .slack
        .wait_for(|calls| {
            calls.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.ok()
                    && c.param("channel") == dm
                    && c.params.to_string().contains(kept)
            })
        })
        .await;
    let c = calls
        .iter()
        .rev()
        .find(|c| c.method == "chat.postMessage" && c.ok() && c.param("channel") == dm)
        .unwrap();
    let reply = h.slack.message(c.response["ts"].as_str().unwrap()).unwrap();
    assert!(
        text_of(&reply).contains(kept) && text_of(&reply).contains("業種"),
        "the next question, with a word on the resent answer: {reply}"
    );
    h.last = Some(c.index);
    h.prompt = reply;
    let session = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    let answers = h.store.answers(session.id).await.unwrap();
    let company: Vec<_> = answers
        .iter()
        .filter(|a| a.node == "company_name")
        .collect();
    assert_eq!(company.len(), 1, "{answers:#?}");
    assert!(
        !answers.iter().any(|a| a.node == "industry"),
        "the resent text is not the industry: {answers:#?}"
    );
    let p = h.press("製造業").await;
    assert!(text_of(&p).contains("都道府県"), "it goes on: {p}");
    h.finish().await;
}

#[tokio::test]
async fn consult_command_in_english_with_command_buttons_and_words() {
    let mut h = Harness::new().await;
    // /consult in a channel of the workspace: the consultation opens in the DM.
    h.slack
        .user_runs_slash_command(OWNER, LOBBY, "/consult", "en")
        .await;
    let p = h.next_prompt().await;
    assert!(
        element(&p["blocks"], "Help").is_some(),
        "command buttons in English: {p}"
    );
    let help = h.press("Help").await;
    assert!(!text_of(&help).is_empty());
    // The same command typed.
    let again = h.say("back").await;
    assert!(has_actions(&again));
    // The slash command's acknowledgement pointed to the DM.
    assert!(h
        .slack
        .all_ephemerals()
        .iter()
        .any(|e| e.source == "slash_command_ack"));
    h.finish().await;
}

/// Every text of every message a channel holds (thread replies included).
fn channel_text(h: &Harness, channel: &str) -> String {
    h.slack
        .all_messages_in(channel)
        .iter()
        .map(text_of)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn forget_asks_first_then_deletes_the_data_and_the_apps_copies_in_the_hubs() {
    let mut h = Harness::new().await;
    // A long answer, so that the case sheet continues in the post's thread.
    h.vision = "地域でいちばん信頼される工場にしたい。".repeat(105);
    let company = "株式会社ワスレテ製作所";
    let case = h.consult(company, |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    for ch in [PRO_CHANNEL, CHAMBER_CHANNEL] {
        let all = channel_text(&h, ch);
        assert!(
            all.contains(company) && all.contains("山田太郎"),
            "{ch}: {all}"
        );
    }
    let posts = h.case_posts(PRO_CHANNEL);
    let post_ts = Harness::ts(&posts[0]);
    assert!(
        h.slack.thread(PRO_CHANNEL, &post_ts).len() > 1,
        "the long sheet continues in the thread"
    );

    // Typed words ask first, in Japanese; "やめる" keeps everything.
    let ask = h.say("データ削除").await;
    assert!(text_of(&ask).contains("削除しますか"), "{ask}");
    assert!(text_of(&ask).contains("3年間保管"), "{ask}");
    let ask_ts = Harness::ts(&ask);
    h.press_only("やめる").await;
    h.slack
        .wait_for_call(|c| {
            c.method == "chat.update"
                && c.ok()
                && c.param("ts") == ask_ts
                && c.param("text").contains("取りやめ")
        })
        .await;
    assert!(channel_text(&h, PRO_CHANNEL).contains(company));
    assert!(!h
        .store
        .sessions_of_user(&h.owner())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.slack.call_count("chat.delete"), 0);

    // `/forget` in a channel: the acknowledgement (only the owner sees it)
    // points to the DM, where the confirmation is.
    let env = h
        .slack
        .user_runs_slash_command(OWNER, LOBBY, "/forget", "")
        .await;
    let ack = h.slack.wait_for_ack(&env).await;
    let ack_text = ack
        .payload
        .map(|p| p["text"].to_string())
        .unwrap_or_default();
    assert!(ack_text.contains("DM"), "{ack_text}");
    let ask = h.next_prompt().await;
    assert!(text_of(&ask).contains("削除しますか"), "{ask}");
    let ask_ts = Harness::ts(&ask);
    h.press_only("削除する").await;
    let done = h
        .slack
        .wait_for_call(|c| {
            c.method == "chat.update"
                && c.ok()
                && c.param("ts") == ask_ts
                && c.param("text").contains("削除しました")
        })
        .await;
    assert!(
        done.param("text").contains("3年間保管"),
        "{:?}",
        done.params
    );

    // The store holds nothing of the owner's answers.
    let export = madoguchi::privacy::export(h.store.as_ref(), &h.owner())
        .await
        .unwrap();
    let json = serde_json::to_string(&export).unwrap();
    for needle in [company, "山田太郎", "yamada@example.jp", "営業部長"] {
        assert!(!json.contains(needle), "{needle} left in the store: {json}");
    }
    assert!(export.sessions.is_empty());
    // The hubs' channels: the case posts are tombstones, the sheet's
    // continuation in the threads is deleted.
    for ch in [PRO_CHANNEL, CHAMBER_CHANNEL] {
        let all = channel_text(&h, ch);
        for needle in [company, "山田太郎", "yamada@example.jp", "営業部長"] {
            assert!(!all.contains(needle), "{needle} left in {ch}: {all}");
        }
        let posts = h.case_posts(ch);
        assert_eq!(posts.len(), 1);
        assert!(text_of(&posts[0]).contains("削除済み"), "{}", posts[0]);
        assert!(
            slack_standin::elements(&posts[0]["blocks"]).is_empty(),
            "no staff buttons on a tombstone"
        );
    }
    assert!(h.slack.thread(PRO_CHANNEL, &post_ts).len() == 1);
    let deletes = h.slack.calls_to("chat.delete");
    assert!(
        !deletes.is_empty() && deletes.iter().all(|c| c.ok()),
        "{deletes:#?}"
    );
    // The DM confirmation lost its buttons.
    let msg = h.slack.message(&ask_ts).unwrap();
    assert!(!has_actions(&msg), "{msg}");
    h.finish().await;
}

#[tokio::test]
async fn forget_typed_in_english_ends_the_consultation_in_progress() {
    let mut h = Harness::new().await;
    h.slack
        .user_runs_slash_command(OWNER, "", "/consult", "en")
        .await;
    h.next_prompt().await;
    h.press("Yes").await;
    h.say("Forget Me Not Ltd.").await;
    // "My answers", pressed and typed, shows what the owner gave so far.
    let mine = h.press("My answers").await;
    assert!(text_of(&mine).contains("Forget Me Not Ltd."), "{mine}");
    let mine = h.say("answers").await;
    assert!(text_of(&mine).contains("Forget Me Not Ltd."), "{mine}");
    let question_ts = Harness::ts(&mine);
    let ask = h.say("delete my data").await;
    assert!(text_of(&ask).contains("Delete?"), "{ask}");
    // The button names its owner, so a press by anyone else is refused.
    assert_eq!(Harness::action_id(&ask, "Delete"), format!("g:y:{OWNER}"));
    h.press_only("Delete").await;
    let ask_ts = Harness::ts(&ask);
    h.slack
        .wait_for_call(|c| {
            c.method == "chat.update"
                && c.ok()
                && c.param("ts") == ask_ts
                && c.param("text").contains("Deleted:")
        })
        .await;
    assert!(h
        .store
        .sessions_of_user(&h.owner())
        .await
        .unwrap()
        .is_empty());
    // The question the owner was on is gone with its buttons.
    let gone = h.slack.message(&question_ts).unwrap();
    assert_eq!(gone["standin_deleted"], true, "{gone}");
    // Writing again starts a new consultation.
    let p = h.say("hello").await;
    assert!(has_actions(&p));
    h.finish().await;
}

#[tokio::test]
async fn reload_is_for_administrators_only() {
    let mut h = Harness::new().await;
    // A valid edit waiting to be loaded.
    let script = h.dialogs.join("first_contact.ja.yaml");
    let text = std::fs::read_to_string(&script).unwrap();
    std::fs::write(&script, format!("{text}\n# edited by the administrator\n")).unwrap();
    // Someone else: refused, privately, and nothing reloads.
    let env = h
        .slack
        .user_runs_slash_command(OUTSIDER, "", "/madoguchi-admin", "reload")
        .await;
    let ack = h.slack.wait_for_ack(&env).await;
    let refusal = ack.payload.expect("an answer")["text"].to_string();
    assert!(refusal.contains("管理者だけ"), "{refusal}");
    assert_eq!(
        h.slack
            .ephemerals(&h.slack.dm_channel_of(OUTSIDER).unwrap(), OUTSIDER)
            .iter()
            .filter(|e| e.source == "slash_command_ack")
            .count(),
        1,
        "the refusal is ephemeral"
    );
    // An administrator (a member of the admin user group): reloaded, the
    // report only to them.
    let env = h
        .slack
        .user_runs_slash_command(ADMIN, "", "/madoguchi-admin", "reload")
        .await;
    let ack = h.slack.wait_for_ack(&env).await;
    assert!(ack.payload.unwrap()["text"]
        .to_string()
        .contains("再読み込み"));
    let report = h
        .slack
        .wait_for_call(|c| c.method == "chat.postEphemeral" && c.param("user") == ADMIN)
        .await;
    assert!(
        report.param("text").contains("再読み込みしました"),
        "{:?}",
        report.params
    );
    let reloads: Vec<_> = h
        .store
        .audit(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "reload")
        .collect();
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert_eq!(reloads[0].actor, format!("slack:{ADMIN}"));
    // A broken edit: refused with its errors; the running version stays.
    std::fs::write(&script, "script: [broken\n").unwrap();
    h.slack
        .user_runs_slash_command(ADMIN, "", "/madoguchi-admin", "reload")
        .await;
    let report = h
        .slack
        .wait_for_call(|c| {
            c.method == "chat.postEphemeral"
                && c.param("user") == ADMIN
                && c.param("text").contains("読み込みませんでした")
        })
        .await;
    assert!(report.param("text").contains("いまの版で動き続けています"));
    // The running version still serves a new consultation.
    let p = h.say("こんにちは").await;
    assert!(text_of(&p).contains("進めてよろしいですか"), "{p}");
    h.finish().await;
}

/// Sends a request to the app's Events API endpoint, signed with `secret`
/// as Slack signs (or not at all).
async fn post_event(
    addr: std::net::SocketAddr,
    secret: Option<&str>,
    body: &str,
    retry: Option<u32>,
) -> u16 {
    let ts = chrono::Utc::now().timestamp().to_string();
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://{addr}/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .body(body.to_string());
    if let Some(s) = secret {
        req = req.header(
            "x-slack-signature",
            madoguchi::slack::signature::sign(s.as_bytes(), &ts, body.as_bytes()),
        );
    }
    if let Some(n) = retry {
        req = req
            .header("x-slack-retry-num", n.to_string())
            .header("x-slack-retry-reason", "http_timeout");
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn events_over_http_are_verified_and_a_retry_is_handled_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("madoguchi=debug")
        .with_test_writer()
        .try_init();
    let slack = SlackStandIn::start().await;
    slack.add_user(OWNER, "owner");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("bot.db")).await.unwrap());
    let bundle = madoguchi::script::load_dir(&crate::support::dialogs_dir()).unwrap();
    let rc = madoguchi::runner::RunnerConfig {
        transports: vec!["slack".into()],
        ..Default::default()
    };
    let runner = Arc::new(
        Runner::new(store.clone(), Arc::new(SystemClock), bundle, rc)
            .await
            .unwrap(),
    );
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let mut cfg = SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some(slack.bot_token_value()),
        "SLACK_API_BASE" => Some(slack.api_url()),
        "SLACK_EVENTS_ADDR" => Some("127.0.0.1:0".into()),
        "SLACK_SIGNING_SECRET" => Some(secret.into()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    cfg.dialogs = crate::support::dialogs_dir();
    assert!(matches!(cfg.connection, Connection::Http { .. }));
    let app = slack::start(
        cfg,
        runner,
        slack::Deliveries::WithTheApp,
        OutboxConfig::default(),
    )
    .await
    .unwrap();
    let addr = app.http_addr.expect("the events endpoint");
    // The app's DM with the owner, as Slack would have it.
    let opened: Value = slack
        .client()
        .open_session(&slack.bot_token())
        .http_session_api
        .http_post("conversations.open", &json!({ "users": OWNER }), None)
        .await
        .unwrap();
    let dm = opened["channel"]["id"].as_str().unwrap().to_string();
    let event = json!({
        "type": "event_callback", "event_id": "Ev0001", "team_id": slack.team_id(),
        "event": { "type": "message", "channel": dm, "channel_type": "im", "user": OWNER, "text": "こんにちは", "ts": "1700000000.000100" }
    })
    .to_string();
    // Unsigned, or signed with another secret: refused, nothing happens.
    assert_eq!(post_event(addr, None, &event, None).await, 401);
    assert_eq!(
        post_event(addr, Some("another secret"), &event, None).await,
        401
    );
    // Signed: accepted at once; then Slack's retry of the same event.
    assert_eq!(post_event(addr, Some(secret), &event, None).await, 200);
    assert_eq!(post_event(addr, Some(secret), &event, Some(1)).await, 200);
    slack
        .wait_for_call(|c| c.method == "chat.postMessage" && c.param("channel") == dm)
        .await;
    // The URL check Slack makes when the request URL is set.
    let challenge = json!({ "type": "url_verification", "challenge": "abc" }).to_string();
    assert_eq!(post_event(addr, Some(secret), &challenge, None).await, 200);
    app.shutdown().await;
    let posts = slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.param("channel") == dm)
        .count();
    assert_eq!(posts, 1, "the retried event was handled once");
    assert!(
        slack.stand_in_errors().is_empty(),
        "{:#?}",
        slack.stand_in_errors()
    );
}

// ---------------------------------------------------------------- the relay

/// The app's messages in the thread of the case post `ts` (after the post).
fn thread_texts(h: &Harness, ts: &str) -> Vec<String> {
    h.slack
        .thread(PRO_CHANNEL, ts)
        .iter()
        .skip(1)
        .map(text_of)
        .collect()
}

/// Waits until a message containing `text` is in the thread of `ts`.
async fn in_thread(h: &Harness, ts: &str, text: &str) -> Value {
    let ts = ts.to_string();
    let text = text.to_string();
    h.slack
        .wait_for(|_| {
            h.slack
                .thread(PRO_CHANNEL, &ts)
                .iter()
                .skip(1)
                .any(|m| text_of(m).contains(&text))
        })
        .await;
    h.slack
        .thread(PRO_CHANNEL, &ts)
        .into_iter()
        .skip(1)
        .find(|m| text_of(m).contains(&text))
        .unwrap()
}

/// The app's messages in the owner's DM containing `text`.
fn dm_with(h: &Harness, text: &str) -> Vec<Value> {
    h.slack
        .bot_messages_in(&h.dm())
        .into_iter()
        .filter(|m| text_of(m).contains(text))
        .collect()
}

async fn dm_arrives(h: &Harness, text: &str) -> Value {
    h.slack.wait_for(|_| !dm_with(h, text).is_empty()).await;
    dm_with(h, text).remove(0)
}

async fn relayed(h: &Harness, case: CaseId) -> Vec<madoguchi::store::RelayRecord> {
    h.store.relays_of_case(case).await.unwrap()
}

/// Waits until every relay message of the case is sent (or failed).
async fn relays_settled(h: &Harness, case: CaseId) -> Vec<madoguchi::store::RelayRecord> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rs = relayed(h, case).await;
        if rs.iter().all(|r| r.status != DeliveryStatus::Pending) {
            return rs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rs:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn relay_both_ways_within_slack() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社リレー", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let post = h.case_posts(PRO_CHANNEL).remove(0);
    let ts = Harness::ts(&post);

    // Owner → staff: a DM after routing goes into the case thread, with
    // nothing that pings or links.
    h.slack
        .user_sends_dm(
            OWNER,
            "来週なら時間があります <!channel> <@U0STAFF001> <https://evil.example|銀行> https://evil.example",
        )
        .await;
    let note = in_thread(&h, &ts, "来週なら時間があります").await;
    let t = text_of(&note);
    assert!(
        !t.contains("<!channel>") && !t.contains("<@U0STAFF001>") && !t.contains("<https:"),
        "{t}"
    );
    assert_eq!(note["metadata"]["event_type"], "madoguchi_relay", "{note}");
    dm_arrives(&h, "お伝えしました").await;

    // Staff → owner with /madoguchi reply in the hub's channel.
    let id = case.to_string();
    let env = h
        .slack
        .user_runs_slash_command(
            STAFF_PRO,
            PRO_CHANNEL,
            "/madoguchi",
            &format!("reply {id} 火曜14時に伺います <!here>"),
        )
        .await;
    h.slack.wait_for_ack(&env).await;
    let m = dm_arrives(&h, "火曜14時に伺います").await;
    assert!(!text_of(&m).contains("<!here>"), "{m}");
    in_thread(&h, &ts, "火曜14時に伺います").await;

    // Someone in the channel but not staff: refused privately, nothing sent.
    let env = h
        .slack
        .user_runs_slash_command(
            OUTSIDER,
            PRO_CHANNEL,
            "/madoguchi",
            &format!("reply {id} なりすまし"),
        )
        .await;
    h.slack.wait_for_ack(&env).await;
    h.slack
        .wait_for(|cs| {
            cs.iter()
                .any(|c| c.method == "chat.postEphemeral" && c.param("user") == OUTSIDER)
        })
        .await;

    // Staff → owner with the message shortcut on a message in the thread.
    let env = h
        .slack
        .user_runs_message_action(
            STAFF_PRO,
            PRO_CHANNEL,
            &Harness::ts(&note),
            "reply_to_owner",
        )
        .await;
    h.slack.wait_for_ack(&env).await;
    let view = h.slack.wait_for_view(STAFF_PRO).await;
    h.slack
        .user_submits_modal(
            STAFF_PRO,
            &view.id,
            json!({ "text": "資料をお送りください" }),
        )
        .await;
    dm_arrives(&h, "資料をお送りください").await;
    in_thread(&h, &ts, "資料をお送りください").await;

    // The outsider's message never reached the owner; each message was
    // sent once, and what stays is ids, never text.
    assert!(dm_with(&h, "なりすまし").is_empty());
    assert_eq!(dm_with(&h, "火曜14時に伺います").len(), 1);
    let rs = relays_settled(&h, case).await;
    assert_eq!(rs.len(), 3, "{rs:#?}");
    for r in &rs {
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
        assert!(r.body.is_none(), "the text is erased once sent: {r:?}");
        assert!(!r.message_ids.is_empty());
    }
    let actions: Vec<String> = h
        .store
        .audit(Some(case))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .filter(|a| a.starts_with("relay"))
        .collect();
    assert_eq!(
        actions,
        ["relay_to_staff", "relay_to_owner", "relay_to_owner"]
    );
    assert!(!thread_texts(&h, &ts)
        .iter()
        .any(|t| t.contains("なりすまし")));
    h.finish().await;
}

#[tokio::test]
async fn a_500_and_a_429_while_relaying_deliver_each_message_exactly_once() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社リトライ", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let ts = Harness::ts(&h.case_posts(PRO_CHANNEL).remove(0));

    // The reply is posted, but the answer is lost (a 500 after the
    // commit): the retry finds it by its metadata instead of posting again.
    h.slack
        .lose_response_after_commit("chat.postMessage", Some("一度だけ届く返信"), 1);
    let env = h
        .slack
        .user_runs_slash_command(
            STAFF_PRO,
            PRO_CHANNEL,
            "/madoguchi",
            &format!("reply {case} 一度だけ届く返信"),
        )
        .await;
    h.slack.wait_for_ack(&env).await;
    dm_arrives(&h, "一度だけ届く返信").await;
    relays_settled(&h, case).await;
    assert_eq!(dm_with(&h, "一度だけ届く返信").len(), 1);

    // The owner's answer meets a 500 and then a 429: one note in the thread.
    h.slack.fail_with_status("chat.postMessage", 500, 1);
    h.slack.rate_limit("chat.postMessage", 1, 1);
    h.slack
        .user_sends_dm(OWNER, "承知しました、お待ちしています")
        .await;
    in_thread(&h, &ts, "承知しました、お待ちしています").await;
    let rs = relays_settled(&h, case).await;
    assert!(
        rs.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{rs:#?}"
    );
    assert!(
        rs.iter().any(|r| r.attempts >= 2),
        "a retry happened: {rs:#?}"
    );
    assert_eq!(
        thread_texts(&h, &ts)
            .iter()
            .filter(|t| t.contains("承知しました、お待ちしています"))
            .count(),
        1
    );
    assert_eq!(h.slack.pending_faults(), 0);
    h.finish().await;
}

#[tokio::test]
async fn cases_reply_from_the_terminal_reaches_a_slack_owner() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社ターミナル", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let ts = Harness::ts(&h.case_posts(PRO_CHANNEL).remove(0));
    let so = cases_cli(
        &h,
        &[
            "reply",
            &case.to_string(),
            "--hub",
            "hyogo-pro",
            "--message",
            "お電話で詳しく伺います",
        ],
    )
    .await;
    assert!(so.contains("queued"), "{so}");
    // The running app's outbox sends it (woken by its poll).
    dm_arrives(&h, "お電話で詳しく伺います").await;
    in_thread(&h, &ts, "お電話で詳しく伺います").await;
    let rs = relays_settled(&h, case).await;
    assert!(
        rs.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{rs:#?}"
    );
    h.finish().await;
}

/// An owner on Slack whose case goes to a hub on Discord: the owner's
/// later DM reaches the Discord case thread, and `/reply` there reaches
/// the owner's Slack DM, through the one outbox.
#[tokio::test]
async fn a_slack_owner_and_a_discord_hub_relay_both_ways() {
    let mut h = Harness::cross().await;
    let case = h.consult("株式会社ぎゃくほうこう", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let post: u64 = h
        .store
        .case_posts(case)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.hub_id == "hyogo-pro")
        .map(|p| {
            assert_eq!(p.transport, "discord");
            p.message_id.parse().unwrap()
        })
        .unwrap();
    let x = h.cross.as_ref().unwrap();
    let posted_in = |channel: u64, text: &'static str| {
        move |c: &crate::support::discord::RecordedCall| {
            c.method == "POST"
                && c.path == format!("/channels/{channel}/messages")
                && c.ok()
                && c.body
                    .as_ref()
                    .is_some_and(|b| b["content"].as_str().unwrap_or("").contains(text))
        }
    };
    // Owner (Slack) → staff (the Discord thread made on first use).
    h.slack
        .user_sends_dm(
            OWNER,
            "来週なら時間があります @everyone <@400000000000000002>",
        )
        .await;
    let c = x
        .discord
        .wait_for_call(posted_in(post, "来週なら時間があります"))
        .await;
    let body = c.body.unwrap();
    assert_eq!(body["allowed_mentions"]["parse"], json!([]), "{body}");
    dm_arrives(&h, "お伝えしました").await;

    // Staff (Discord, /reply in the thread) → owner (Slack DM), escaped.
    x.discord
        .user_runs_slash_command(
            Some(D_GUILD),
            post,
            D_STAFF,
            "reply",
            json!({ "message": "火曜14時に伺います <!channel>" }),
            "ja",
        )
        .await;
    let m = dm_arrives(&h, "火曜14時に伺います").await;
    assert!(!text_of(&m).contains("<!channel>"), "{m}");
    let rs = relays_settled(&h, case).await;
    assert_eq!(rs.len(), 2, "{rs:#?}");
    assert!(rs
        .iter()
        .all(|r| r.status == DeliveryStatus::Delivered && r.body.is_none()));
    h.finish().await;
}

/// Staff of the pro-talent hub press Forward on the case post, pick `hub`
/// in the form and give a reason.
async fn forward_from_pro(h: &Harness, case: CaseId, ts: &str, hub: &str, reason: &str) {
    let env = h
        .slack
        .user_clicks_button(STAFF_PRO, PRO_CHANNEL, ts, &format!("s:fwd:{}", case.0))
        .await;
    h.slack.wait_for_ack(&env).await;
    let view = h.slack.wait_for_view(STAFF_PRO).await;
    let env = h
        .slack
        .user_submits_modal(STAFF_PRO, &view.id, json!({ "hub": hub, "text": reason }))
        .await;
    h.slack.wait_for_ack(&env).await;
}

/// A forward to a hub the owner already agreed to moves the case at once:
/// no question to the owner, no new consent record, a note in the thread.
#[tokio::test]
async fn forward_within_consent_moves_the_case_at_once() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社スラックフォワード", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    let ts = Harness::ts(&h.case_posts(PRO_CHANNEL).remove(0));
    let consents_before = h.store.consents(&h.owner()).await.unwrap().len();
    forward_from_pro(&h, case, &ts, "hyogo-chamber", "商工会の伴走が適切").await;
    in_thread(&h, &ts, "引き継ぎました").await;
    let c = h.store.case(case).await.unwrap().unwrap();
    assert_eq!(c.hub_id, "hyogo-chamber");
    // The old hub's post no longer offers the case's actions; the chamber's
    // copy does.
    // (The posts are refreshed after the notes are posted.)
    let key = format!("s:claim:{}", case.0);
    h.slack
        .wait_for(|_| {
            h.slack
                .message(&ts)
                .is_some_and(|m| slack_standin::element(&m["blocks"], &key).is_none())
        })
        .await;
    let old = h.slack.message(&ts).unwrap();
    assert!(text_of(&old).contains("写し"), "{old}");
    let copy_ts = Harness::ts(&h.case_posts(CHAMBER_CHANNEL).remove(0));
    h.slack
        .wait_for(|_| {
            h.slack
                .message(&copy_ts)
                .is_some_and(|m| slack_standin::element(&m["blocks"], &key).is_some())
        })
        .await;
    let copy = h.slack.message(&copy_ts).unwrap();
    assert!(!text_of(&copy).contains("写し"), "{copy}");
    // The chamber's staff are told in their copy's thread, by a mention:
    // their post was only edited, which notifies nobody.
    h.slack
        .wait_for(|_| {
            h.slack
                .thread(CHAMBER_CHANNEL, &copy_ts)
                .iter()
                .skip(1)
                .any(|m| text_of(m).contains("引き継がれました"))
        })
        .await;
    let notes: Vec<Value> = h
        .slack
        .thread(CHAMBER_CHANNEL, &copy_ts)
        .into_iter()
        .skip(1)
        .filter(|m| text_of(m).contains("引き継がれました"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        text_of(&notes[0]).starts_with(&format!("<@{STAFF_CHAMBER}> ⬅️")),
        "{}",
        text_of(&notes[0])
    );
    // The hub that forwarded it is not called in its own thread (its note
    // names who forwarded, nothing before that).
    let here = in_thread(&h, &ts, "引き継ぎました").await;
    assert!(text_of(&here).starts_with("➡️"), "{here}");
    assert!(
        slack_standin::element(&copy["blocks"], &key).is_some(),
        "{copy}"
    );
    assert_eq!(
        h.store.consents(&h.owner()).await.unwrap().len(),
        consents_before,
        "no new consent was needed"
    );
    assert!(
        h.slack
            .bot_messages_in(&h.dm())
            .iter()
            .all(|m| !m.to_string().contains("f:y:")),
        "the owner was not asked"
    );
    assert!(
        h.slack.messages_in(YOROZU_CHANNEL).is_empty(),
        "nothing reached a hub outside the forward"
    );
    h.finish().await;
}

/// A forward to a hub outside the owner's consent asks the owner in their
/// DM first: a "no" keeps the case where it is and tells staff; a "yes"
/// moves it, posts it in the new hub's channel once, and both decisions
/// are kept as consent records.
#[tokio::test]
async fn forward_outside_consent_asks_the_owner_first() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社スラックアスク", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let ts = Harness::ts(&h.case_posts(PRO_CHANNEL).remove(0));

    // First request: the owner declines; nothing moves.
    forward_from_pro(&h, case, &ts, "hyogo-yorozu", "販路開拓の支援が中心のため").await;
    let ask = dm_arrives(&h, "兵庫県よろず支援拠点").await;
    assert!(
        slack_standin::elements(&ask["blocks"])
            .iter()
            .any(|e| e["action_id"]
                .as_str()
                .is_some_and(|a| a.starts_with("f:y:"))),
        "the question has the owner's buttons: {ask}"
    );
    in_thread(&h, &ts, "同意を確認しています").await;
    assert_eq!(
        h.store.case(case).await.unwrap().unwrap().hub_id,
        "hyogo-pro"
    );
    h.press_on(&ask, "同意しない").await;
    in_thread(&h, &ts, "同意しませんでした").await;
    assert_eq!(
        h.store.case(case).await.unwrap().unwrap().hub_id,
        "hyogo-pro"
    );
    assert!(
        h.slack.messages_in(YOROZU_CHANNEL).is_empty(),
        "nothing reached the hub"
    );

    // Second request: the owner agrees; the case moves and is posted there once.
    forward_from_pro(&h, case, &ts, "hyogo-yorozu", "販路開拓の支援が中心のため").await;
    let questions = |h: &Harness| -> Vec<Value> {
        h.slack
            .bot_messages_in(&h.dm())
            .into_iter()
            .filter(|m| m.to_string().contains("f:y:"))
            .collect()
    };
    // The first question lost its buttons once answered, so the one with
    // buttons is the new one.
    h.slack.wait_for(|_| !questions(&h).is_empty()).await;
    let asks = questions(&h);
    assert_eq!(asks.len(), 1, "{asks:#?}");
    assert_ne!(Harness::ts(&asks[0]), Harness::ts(&ask));
    let ask = asks[0].clone();
    h.press_on(&ask, "同意する").await;
    h.slack
        .wait_for(|_| !h.slack.bot_messages_in(YOROZU_CHANNEL).is_empty())
        .await;
    let c = h.store.case(case).await.unwrap().unwrap();
    assert_eq!(
        (c.hub_id.as_str(), c.status),
        ("hyogo-yorozu", CaseStatus::Open)
    );
    h.delivered(case, "hyogo-yorozu").await;
    let posts = h.case_posts(YOROZU_CHANNEL);
    assert_eq!(posts.len(), 1, "the case is posted once: {posts:#?}");
    let text = text_of(&posts[0]);
    assert!(
        text.contains("株式会社スラックアスク"),
        "the sheet reached the new hub: {text}"
    );
    let consents = h.store.consents(&h.owner()).await.unwrap();
    let about_yorozu: Vec<bool> = consents
        .iter()
        .filter(|c| c.case == Some(case) && c.recipients.iter().any(|r| r.id == "hyogo-yorozu"))
        .map(|c| c.granted)
        .collect();
    assert_eq!(about_yorozu, [false, true]);
    h.finish().await;
}
/// An owner on Slack whose case went to a hub on Discord, with one
/// message relayed into the Discord thread, forgets on Slack after
/// `faults` were set on the Discord stand-in (given the post's and the
/// relayed message's ids). Returns the case's relay rows once settled,
/// the post's id and the relayed message's id.
async fn slack_owner_forgets_with_a_discord_hub(
    h: &mut Harness,
    company: &str,
    faults: impl FnOnce(&crate::support::discord::DiscordStandIn, u64, u64),
) -> (Vec<madoguchi::store::RelayRecord>, u64, u64) {
    let case = h.consult(company, |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    let post: u64 = h
        .store
        .case_posts(case)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.hub_id == "hyogo-pro")
        .map(|p| p.message_id.parse().unwrap())
        .unwrap();
    let words = "来週なら時間があります、山田の携帯は090-0000-0000";
    h.slack.user_sends_dm(OWNER, words).await;
    let x = h.cross.as_ref().unwrap();
    let relayed = x
        .discord
        .wait_for_call(|c| {
            c.method == "POST"
                && c.path == format!("/channels/{post}/messages")
                && c.ok()
                && c.body.as_ref().is_some_and(|b| {
                    b["content"]
                        .as_str()
                        .unwrap_or("")
                        .contains("090-0000-0000")
                })
        })
        .await;
    let relayed_id: u64 = relayed.response.as_ref().unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    dm_arrives(h, "お伝えしました").await;
    let before = x.discord.message(post).unwrap();
    assert!(before.to_string().contains(company), "{before}");
    faults(&x.discord, post, relayed_id);

    let ask = h.say("データ削除").await;
    let ask_ts = Harness::ts(&ask);
    h.press_only("削除する").await;
    h.slack
        .wait_for_call(|c| {
            c.method == "chat.update"
                && c.ok()
                && c.param("ts") == ask_ts
                && c.param("text").contains("削除しました")
        })
        .await;
    (relays_settled(h, case).await, post, relayed_id)
}

/// The erase job of [`slack_owner_forgets_with_a_discord_hub`]'s relays.
fn erase_job(rs: &[madoguchi::store::RelayRecord]) -> &madoguchi::store::RelayRecord {
    let erase: Vec<_> = rs.iter().filter(|r| r.kind.name() == "erase").collect();
    assert_eq!(erase.len(), 1, "{rs:#?}");
    assert_eq!(erase[0].transport, "discord", "{rs:#?}");
    assert!(erase[0].body.is_none(), "{rs:#?}");
    erase[0]
}

/// An owner on Slack whose case went to a hub on Discord forgets on
/// Slack: the Discord case post becomes a tombstone and the owner's
/// message relayed into its thread is deleted, by the Discord sender
/// through the outbox (an erase job).
#[tokio::test]
async fn a_slack_owner_who_forgets_is_erased_from_a_discord_hub_too() {
    let mut h = Harness::cross().await;
    let company = "株式会社ワスレルギャク";
    let (rs, post, relayed_id) =
        slack_owner_forgets_with_a_discord_hub(&mut h, company, |_, _, _| {}).await;
    assert_eq!(erase_job(&rs).status, DeliveryStatus::Delivered, "{rs:#?}");
    let x = h.cross.as_ref().unwrap();
    let after = x.discord.message(post).unwrap();
    let shown = format!("{}{}", after["content"], after["embeds"]);
    assert!(
        !shown.contains(company) && shown.contains("削除済み"),
        "{after}"
    );
    // The thread was named after the company; it is renamed.
    let thread = x.discord.channel(post).unwrap();
    assert!(!thread["name"].to_string().contains(company), "{thread}");
    assert!(
        after["components"].as_array().is_none_or(|c| c.is_empty()),
        "no staff buttons on the tombstone: {after}"
    );
    let left = x.discord.messages_in(post);
    assert!(
        !left.iter().any(|m| m.to_string().contains("090-0000-0000")
            || m["id"].as_str() == Some(relayed_id.to_string().as_str())),
        "{left:#?}"
    );
    h.finish().await;
}

/// A Discord call of an erase job that fails with a server error makes
/// the outbox try the job again (with its backoff) instead of marking it
/// done: the relayed message is deleted on the second attempt, and the
/// post's deletion note is not posted twice.
#[tokio::test]
async fn a_failed_discord_erase_call_is_retried_until_done() {
    let mut h = Harness::cross().await;
    let (rs, post, relayed_id) = slack_owner_forgets_with_a_discord_hub(
        &mut h,
        "株式会社ケシナオシ",
        |d, post, relayed| {
            d.fail_next(
                "DELETE",
                &format!("/channels/{post}/messages/{relayed}"),
                500,
                json!({ "message": "Internal Server Error", "code": 0 }),
                1,
            )
        },
    )
    .await;
    let job = erase_job(&rs);
    assert_eq!(
        (job.status, job.attempts),
        (DeliveryStatus::Delivered, 2),
        "{rs:#?}"
    );
    let x = h.cross.as_ref().unwrap();
    assert!(
        x.discord.message(relayed_id).is_none(),
        "the relayed message is deleted after the retry"
    );
    let notes = x
        .discord
        .messages_in(post)
        .iter()
        .filter(|m| m["content"].as_str().unwrap_or("").contains("削除"))
        .count();
    assert_eq!(notes, 1, "{:#?}", x.discord.messages_in(post));
    h.finish().await;
}

/// A message staff deleted already (404) counts as erased; a refusal
/// (403, the bot lost Manage Messages) ends the job failed with the
/// reason at once, for `madoguchi cases show` and the logs.
#[tokio::test]
async fn a_discord_erase_counts_a_gone_message_as_done_and_fails_a_refusal_with_its_reason() {
    let mut h = Harness::cross().await;
    let (rs, _, _) = slack_owner_forgets_with_a_discord_hub(
        &mut h,
        "株式会社キエタ",
        |d, post, relayed| {
            d.fail_next(
                "DELETE",
                &format!("/channels/{post}/messages/{relayed}"),
                404,
                json!({ "message": "Unknown Message", "code": 10008 }),
                1,
            )
        },
    )
    .await;
    let job = erase_job(&rs);
    assert_eq!(
        (job.status, job.attempts),
        (DeliveryStatus::Delivered, 1),
        "{rs:#?}"
    );
    h.finish().await;

    let mut h = Harness::cross().await;
    let (rs, _, _) = slack_owner_forgets_with_a_discord_hub(
        &mut h,
        "株式会社コバム",
        |d, post, relayed| {
            d.fail_next(
                "DELETE",
                &format!("/channels/{post}/messages/{relayed}"),
                403,
                json!({ "message": "Missing Permissions", "code": 50013 }),
                1,
            )
        },
    )
    .await;
    let job = erase_job(&rs);
    assert_eq!(
        (job.status, job.attempts),
        (DeliveryStatus::Failed, 1),
        "{rs:#?}"
    );
    let why = job.last_error.as_deref().unwrap_or_default();
    assert!(why.contains("403"), "{rs:#?}");
    h.finish().await;
}

/// A case whose delivery was pending when the app stopped is posted once
/// after the restart, and the owner's consultation state is kept.
#[tokio::test]
async fn restart_posts_pending_deliveries_once() {
    let mut h = Harness::with(false).await;
    let case = h.consult("株式会社ペンディング", |_| {}).await;
    // The app stops with both deliveries pending (its outbox never ran).
    let pending = h.store.deliveries(case).await.unwrap();
    assert!(
        !pending.is_empty() && pending.iter().all(|d| d.status == DeliveryStatus::Pending),
        "{pending:?}"
    );
    assert!(h.case_posts(PRO_CHANNEL).is_empty());
    h.stop_app().await;
    // Started again the way `madoguchi run` starts it: its outbox runs.
    h.auto_outbox = true;
    h.start_app().await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    assert_eq!(h.case_posts(PRO_CHANNEL).len(), 1, "posted once");
    assert_eq!(h.case_posts(CHAMBER_CHANNEL).len(), 1, "copied once");
    // A second restart posts nothing more.
    h.stop_app().await;
    h.start_app().await;
    let ds = h.store.deliveries(case).await.unwrap();
    assert!(
        ds.iter().all(|d| d.status == DeliveryStatus::Delivered),
        "{ds:?}"
    );
    assert_eq!(h.case_posts(PRO_CHANNEL).len(), 1);
    assert_eq!(h.case_posts(CHAMBER_CHANNEL).len(), 1);
    h.finish().await;
}

/// A button on a question already answered gets a private note (in the
/// owner's language) and changes nothing; the latest question still works.
#[tokio::test]
async fn a_stale_button_gets_a_private_note_and_changes_nothing() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    h.say("株式会社ステイル").await;
    let industry = h.prompt.clone();
    let next = h.press("製造業").await;
    assert!(text_of(&next).contains("都道府県"), "{next}");
    let before = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    // The owner presses another answer on the old question.
    let env = h.press_on(&industry, "建設業").await;
    h.slack.wait_for_ack(&env).await;
    let dm = h.dm();
    h.slack
        .wait_for(|_| !h.slack.ephemerals(&dm, OWNER).is_empty())
        .await;
    let note = h.slack.ephemerals(&dm, OWNER).remove(0);
    assert!(
        note.json.to_string().contains("前の質問"),
        "the note says the button is old: {:?}",
        note.json
    );
    let after = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    assert_eq!(
        (after.rev, &after.current_node, &after.state.answers),
        (before.rev, &before.current_node, &before.state.answers),
        "nothing changed"
    );
    // The latest question still works.
    let p = h.choose("q:", &["兵庫県"]).await;
    assert!(!text_of(&p).contains("都道府県を"), "{p}");
    h.finish().await;
}

/// A successful `chat.update` of the message `ts` whose parameters
/// satisfy `f`.
fn update_of(c: &slack_standin::ApiCall, ts: &str, f: impl Fn(&Value) -> bool) -> bool {
    c.method == "chat.update" && c.params["ts"] == ts && c.response["ok"] == true && f(&c.params)
}

/// Runs `madoguchi cases ARGS` as `cli:tanaka` beside the running app.
async fn cases_cli(h: &Harness, args: &[&str]) -> String {
    crate::support::cases_cli(&h._dir.path().join("bot.db"), &h.dialogs, args).await
}

/// A claim and forwards made with `madoguchi cases` beside the running
/// app show on the case's Slack posts as after the buttons: the claimed
/// status and Release on the working post and the status on the
/// chamber's copy; after a forward within consent the chamber's copy is
/// the working post and the old one a copy without actions; after a
/// forward the owner agrees to in their DM, the new hub has its post and
/// the chamber's post is a copy again.
#[tokio::test]
async fn cases_claim_and_forward_from_the_terminal_update_the_slack_posts() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社ターミナル更新", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    let ts = Harness::ts(&h.case_posts(PRO_CHANNEL).remove(0));
    let copy_ts = Harness::ts(&h.case_posts(CHAMBER_CHANNEL).remove(0));
    let cid = case.to_string();
    let key = |k: &str| format!("s:{k}:{}", case.0);

    let as_copy =
        |p: &Value| slack_standin::elements(&p["blocks"]).is_empty() && text_of(p).contains("写し");
    let out = cases_cli(&h, &["claim", &cid, "--hub", "hyogo-pro"]).await;
    assert!(out.contains("claimed by cli:tanaka"), "{out}");
    let claimed = |p: &Value| text_of(p).contains("cli:tanaka");
    h.slack.wait_for_call(|c| update_of(c, &ts, claimed)).await;
    h.slack
        .wait_for_call(|c| update_of(c, &copy_ts, claimed))
        .await;
    let post = h.slack.message(&ts).unwrap();
    assert!(
        slack_standin::element(&post["blocks"], &key("release")).is_some()
            && slack_standin::element(&post["blocks"], &key("claim")).is_none(),
        "{post}"
    );
    let copy = h.slack.message(&copy_ts).unwrap();
    assert!(
        slack_standin::elements(&copy["blocks"]).is_empty(),
        "{copy}"
    );
    in_thread(&h, &ts, "cli:tanaka").await;

    // Within the owner's consent: the chamber's copy becomes the post.
    let fwd = |from: &str, to: &str| {
        [
            "forward",
            cid.as_str(),
            "--hub",
            from,
            "--to",
            to,
            "--reason",
            "販路開拓の支援が中心のため",
        ]
        .map(str::to_string)
    };
    let args = fwd("hyogo-pro", "hyogo-chamber");
    cases_cli(&h, &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let claimable = |p: &Value| p.to_string().contains(&key("claim"));
    h.slack
        .wait_for_call(|c| update_of(c, &copy_ts, claimable))
        .await;
    h.slack.wait_for_call(|c| update_of(c, &ts, as_copy)).await;
    assert!(!text_of(&h.slack.message(&copy_ts).unwrap()).contains("写し"));
    let refresh = |rs: &[madoguchi::store::RelayRecord]| {
        rs.iter().filter(|r| r.kind.name() == "refresh").count()
    };
    let rs = relays_settled(&h, case).await;
    assert_eq!(refresh(&rs), 2, "one per action: {rs:#?}");
    assert!(
        rs.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{rs:#?}"
    );
    // An edited post notifies nobody, so the note in the chamber's thread
    // mentions its staff, once.
    let notes: Vec<String> = h
        .slack
        .thread(CHAMBER_CHANNEL, &copy_ts)
        .iter()
        .map(text_of)
        .filter(|t| t.contains("forwarded to this hub"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0].starts_with(&format!("<@{STAFF_CHAMBER}> ")),
        "{notes:#?}"
    );

    // Outside it: the owner is asked in their DM and agrees; the new hub
    // gets its post, the chamber's post becomes a copy.
    let args = fwd("hyogo-chamber", "hyogo-yorozu");
    cases_cli(&h, &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let ask = dm_arrives(&h, "兵庫県よろず支援拠点").await;
    h.press_on(&ask, "同意する").await;
    h.delivered(case, "hyogo-yorozu").await;
    assert_eq!(h.case_posts(YOROZU_CHANNEL).len(), 1);
    h.slack
        .wait_for_call(|c| update_of(c, &copy_ts, as_copy))
        .await;
    let rs = relays_settled(&h, case).await;
    assert!(
        rs.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{rs:#?}"
    );
    assert_eq!(refresh(&rs), 3, "{rs:#?}");
    h.finish().await;
}

/// A case of a Slack owner whose pro-talent hub is on Discord and whose
/// chamber copy is on Slack: a claim with the Discord button shows on the
/// Slack copy, through a refresh job for Slack.
#[tokio::test]
async fn a_claim_on_discord_shows_on_the_slack_copy() {
    let mut h = Harness::cross().await;
    let case = h.consult("株式会社ハンタイホウコウ", |_| {}).await;
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    let post: u64 = h
        .store
        .case_posts(case)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.hub_id == "hyogo-pro" && p.transport == "discord")
        .map(|p| p.message_id.parse().unwrap())
        .unwrap();
    let copy_ts = Harness::ts(&h.case_posts(CHAMBER_CHANNEL).remove(0));
    let x = h.cross.as_ref().unwrap();
    let iid = x
        .discord
        .user_presses_button(
            D_PRO_CHANNEL,
            post,
            D_STAFF,
            Some(D_GUILD),
            &format!("s:claim:{}", case.0),
            "ja",
        )
        .await;
    x.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
        .await;
    let staff = D_STAFF.to_string();
    h.slack
        .wait_for_call(|c| update_of(c, &copy_ts, |p| text_of(p).contains(&staff)))
        .await;
    assert!(slack_standin::elements(&h.slack.message(&copy_ts).unwrap()["blocks"]).is_empty());
    let rs = relays_settled(&h, case).await;
    let refresh: Vec<_> = rs.iter().filter(|r| r.kind.name() == "refresh").collect();
    assert!(
        refresh.len() == 1
            && refresh[0].transport == "slack"
            && refresh[0].status == DeliveryStatus::Delivered,
        "{rs:#?}"
    );
    h.finish().await;
}
