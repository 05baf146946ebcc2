//! The Discord bot end to end: the real bot code (started exactly as
//! `madoguchi run` starts it, through `madoguchi::discord::start`) with the
//! real serenity client, the real dialogs and a temporary SQLite database,
//! against the local Discord stand-in (`support::discord`). Every wait is on
//! recorded REST calls or gateway state, never on time.

use crate::support::discord::{components, DiscordStandIn, RecordedCall, FLAG_EPHEMERAL};
use crate::support::{copy_dialogs, dialogs_dir};
use madoguchi::discord::{self, Config, RunningBot, Token};
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::engine::Input;
use madoguchi::runner::{Clock, Runner, SystemClock};
use madoguchi::store::sqlite::SqliteStore;
use madoguchi::store::{CaseStatus, DeliveryStatus, Store};
use serde_json::{json, Value};
use std::sync::Arc;

mod follow_up;
mod takeover;

const GUILD: u64 = 600_000_000_000_000_001;
const OWNER: u64 = 400_000_000_000_000_001;
const STAFF_PRO: u64 = 400_000_000_000_000_002;
const STAFF_YOROZU: u64 = 400_000_000_000_000_003;
const OUTSIDER: u64 = 400_000_000_000_000_004;
const STAFF_CHAMBER: u64 = 400_000_000_000_000_005;
const LOBBY: u64 = 600_000_000_000_000_002;

// From dialogs/routing.yaml (Hyogo).
const PRO_CHANNEL: u64 = 100_000_000_000_000_101;
const YOROZU_CHANNEL: u64 = 100_000_000_000_000_102;
const CHAMBER_CHANNEL: u64 = 100_000_000_000_000_103;
const PRO_ROLE: u64 = 100_000_000_000_000_201;
const YOROZU_ROLE: u64 = 100_000_000_000_000_202;
const CHAMBER_ROLE: u64 = 100_000_000_000_000_203;

struct Harness {
    discord: DiscordStandIn,
    bot: Option<RunningBot>,
    store: Arc<dyn Store>,
    cfg: Config,
    _dir: tempfile::TempDir,
    /// Index of the last DM call consumed by `next_*`.
    last: Option<usize>,
    /// The message carrying the current question.
    prompt: Value,
    locale: &'static str,
    /// The bot's clock (a test may fix it and move it between restarts).
    clock: Arc<dyn Clock>,
    /// Transports beyond Discord the runner delivers on (a test with a
    /// hub on Slack).
    extra_transports: Vec<String>,
}

/// The text of the bot's first response to interaction `iid`, which must
/// be ephemeral (seen only by the one who pressed or typed).
fn ephemeral_reply(h: &Harness, iid: u64) -> String {
    let r = &h.discord.interaction_responses(iid)[0];
    assert_eq!(r["data"]["flags"], FLAG_EPHEMERAL, "{r}");
    r["data"]["content"].as_str().unwrap().to_string()
}

fn is_post(c: &RecordedCall, channel: u64) -> bool {
    c.method == "POST" && c.path == format!("/channels/{channel}/messages") && c.ok()
}

/// The call's JSON body has a `content` that contains `text`.
fn content_has(c: &RecordedCall, text: &str) -> bool {
    c.json()["content"]
        .as_str()
        .is_some_and(|s| s.contains(text))
}

/// An edit of an interaction's original (deferred) answer.
fn is_original_edit(c: &RecordedCall) -> bool {
    c.method == "PATCH" && c.path.contains("@original")
}

/// A message to the owner's DM: a POST in it, or an interaction answered
/// with a message there (callback type 4, not ephemeral). Returns the
/// message body as sent.
fn dm_reply(c: &RecordedCall, dm: u64) -> Option<&Value> {
    if is_post(c, dm) {
        return c.response.as_ref();
    }
    let b = c.json();
    (c.method == "POST"
        && c.path.starts_with("/interactions/")
        && c.ok()
        && b["type"] == 4
        && b["data"]["flags"].as_u64().unwrap_or(0) & FLAG_EPHEMERAL == 0
        && b["data"]["content"].is_string())
    .then_some(&b["data"])
}

/// The interaction a callback call answers.
fn interaction_of(c: &RecordedCall) -> Option<u64> {
    c.path
        .strip_prefix("/interactions/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn has_components(v: &Value) -> bool {
    v["components"].as_array().is_some_and(|a| !a.is_empty())
}

/// The component of `message` with this label or custom id (or custom id
/// prefix).
fn component_of(message: &Value, label_or_id: &str) -> Value {
    components(message)
        .into_iter()
        .find(|c| {
            c["label"] == label_or_id
                || c["custom_id"] == label_or_id
                || c["custom_id"]
                    .as_str()
                    .is_some_and(|i| i.starts_with(label_or_id))
        })
        .unwrap_or_else(|| panic!("no component {label_or_id:?} on {message}"))
}

fn id_of(v: &Value) -> u64 {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {v}"))
}

impl Harness {
    async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    async fn with(adjust: impl FnOnce(&mut Config)) -> Harness {
        Harness::with_transports(adjust, vec![]).await
    }

    async fn with_transports(adjust: impl FnOnce(&mut Config), extra: Vec<String>) -> Harness {
        let discord = DiscordStandIn::start().await;
        discord.add_guild(GUILD, "Network");
        discord.add_text_channel(GUILD, LOBBY, "lobby");
        let bundle = madoguchi::script::load_dir(&dialogs_dir()).expect("the shipped dialogs load");
        for h in &bundle.flows[0].routing.hubs {
            if let Some(t) = &h.discord {
                discord.add_text_channel(GUILD, t.channel, h.id.as_str());
                if let Some(r) = t.staff_role {
                    discord.add_role(GUILD, r, &format!("{} staff", h.id));
                }
            }
        }
        discord.add_member(GUILD, OWNER, "owner", &[]);
        discord.add_member(GUILD, STAFF_PRO, "pro-staff", &[PRO_ROLE]);
        discord.add_member(GUILD, STAFF_YOROZU, "yorozu-staff", &[YOROZU_ROLE]);
        discord.add_member(GUILD, STAFF_CHAMBER, "chamber-staff", &[CHAMBER_ROLE]);
        discord.add_member(GUILD, OUTSIDER, "outsider", &[]);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            db: dir.path().join("bot.db"),
            dialogs: dialogs_dir(),
            ..Config::default()
        };
        cfg.discord.api_base = Some(discord.http_base());
        cfg.discord.relay_prefix = Some("!reply".into());
        cfg.outbox.poll_interval_ms = 50;
        cfg.outbox.backoff_base_ms = 50;
        adjust(&mut cfg);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&cfg.db).await.unwrap());
        let mut h = Harness {
            discord,
            bot: None,
            store,
            cfg,
            _dir: dir,
            last: None,
            prompt: Value::Null,
            locale: "ja",
            clock: Arc::new(SystemClock),
            extra_transports: extra,
        };
        h.start_bot().await;
        h
    }

    /// Starts the bot the way `madoguchi run` does.
    async fn start_bot(&mut self) {
        let bundle = madoguchi::script::load_dir(&self.cfg.dialogs).unwrap();
        let mut rc = discord::runner_config(&self.cfg);
        rc.transports.extend(self.extra_transports.iter().cloned());
        let runner = Runner::new(self.store.clone(), self.clock.clone(), bundle, rc)
            .await
            .unwrap();
        let token = Token::new(&self.discord.bot_token()).unwrap();
        let before = self.discord.identifies();
        let bot = discord::start(self.cfg.clone(), token, Arc::new(runner))
            .await
            .expect("the bot starts");
        self.bot = Some(bot);
        self.discord
            .wait_gateway(|g| g.identifies > before && g.connected)
            .await;
        let app = self.discord.application_id();
        let puts = self
            .discord
            .calls()
            .iter()
            .filter(|c| c.is("PUT", &format!("/applications/{app}/commands")) && c.ok())
            .count();
        self.discord
            .wait_for(|calls| {
                calls
                    .iter()
                    .filter(|c| c.is("PUT", &format!("/applications/{app}/commands")) && c.ok())
                    .count()
                    > puts
            })
            .await;
    }

    async fn stop_bot(&mut self) {
        if let Some(b) = self.bot.take() {
            b.shutdown().await.expect("clean shutdown");
        }
    }

    /// Shuts down and checks what every test must hold.
    async fn finish(mut self) {
        self.stop_bot().await;
        assert!(
            self.discord.stand_in_errors().is_empty(),
            "{:#?}",
            self.discord.stand_in_errors()
        );
        for c in self.discord.calls() {
            if c.path.starts_with("/interactions/") {
                assert!(
                    c.ok(),
                    "every interaction is acknowledged once: {} -> {} {:?}",
                    c.path,
                    c.status,
                    c.response
                );
            }
        }
        assert_allowed_mentions_everywhere(&self.discord.calls());
    }

    fn dm(&self) -> u64 {
        self.discord
            .dm_channel_of(OWNER)
            .expect("the owner has a DM channel")
    }

    fn owner(&self) -> UserKey {
        UserKey::new(Transport::Discord, &OWNER.to_string()).unwrap()
    }

    /// Waits for the bot's next DM message that carries a question.
    async fn next_prompt(&mut self) -> Value {
        self.next_dm(true).await
    }

    /// Waits for the bot's next DM message (with or without a question).
    async fn next_message(&mut self) -> Value {
        self.next_dm(false).await
    }

    /// The bot's next message in the DM (a post, or the reply to a press),
    /// as stored by Discord.
    async fn next_dm(&mut self, question: bool) -> Value {
        let dm = self.dm();
        let last = self.last;
        let wanted = |c: &RecordedCall| {
            Some(c.index) > last && dm_reply(c, dm).is_some_and(|m| !question || has_components(m))
        };
        let calls = self
            .discord
            .wait_for(|calls| calls.iter().any(wanted))
            .await;
        let c = calls.iter().find(|c| wanted(c)).unwrap();
        self.last = Some(c.index);
        let msg = if is_post(c, dm) {
            c.response.clone().unwrap()
        } else {
            let iid = interaction_of(c).unwrap();
            self.discord
                .original_response(iid)
                .expect("the reply message")
        };
        if question {
            self.prompt = msg.clone();
        }
        msg
    }

    /// The owner types in the DM; returns the next question.
    async fn say(&mut self, text: &str) -> Value {
        self.discord.user_sends_dm(OWNER, text).await;
        self.next_prompt().await
    }

    fn component(&self, label_or_id: &str) -> Value {
        component_of(&self.prompt, label_or_id)
    }

    /// Presses a button of the current question (by label); returns the
    /// interaction id without waiting.
    async fn press_only(&mut self, label: &str) -> u64 {
        let prompt = self.prompt.clone();
        self.press_on(&prompt, label).await
    }

    /// Presses the button labelled `label` on `message` (any of the DM's
    /// messages, an old question too); returns the interaction's id.
    async fn press_on(&mut self, message: &Value, label: &str) -> u64 {
        let b = component_of(message, label);
        let dm = self.dm();
        self.discord
            .user_presses_button(
                dm,
                id_of(message),
                OWNER,
                None,
                b["custom_id"].as_str().unwrap(),
                self.locale,
            )
            .await
    }

    /// [`Harness::press_on`], then waits until the bot has answered the
    /// interaction.
    async fn press_old(&mut self, message: &Value, label: &str) -> u64 {
        let iid = self.press_on(message, label).await;
        self.discord
            .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
            .await;
        iid
    }

    async fn press(&mut self, label: &str) -> Value {
        self.press_only(label).await;
        self.next_prompt().await
    }

    /// Picks values in a select of the current question (by custom_id prefix).
    async fn choose(&mut self, prefix: &str, values: &[&str]) -> Value {
        let s = self.component(prefix);
        let dm = self.dm();
        self.discord
            .user_selects(
                dm,
                id_of(&self.prompt),
                OWNER,
                None,
                s["custom_id"].as_str().unwrap(),
                values,
                self.locale,
            )
            .await;
        self.next_prompt().await
    }

    /// Region, then prefecture.
    async fn prefecture(&mut self, region: &str, pref: &str) -> Value {
        let s = self.component("p:");
        let region_id = s["custom_id"].as_str().unwrap().to_string();
        let dm = self.dm();
        let mid = id_of(&self.prompt);
        let iid = self
            .discord
            .user_selects(dm, mid, OWNER, None, &region_id, &[region], self.locale)
            .await;
        self.discord
            .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
            .await;
        assert_eq!(
            self.discord.interaction_responses(iid)[0]["type"],
            7,
            "the region shows its prefectures in place"
        );
        let pref_id = region_id.replacen("p:", "q:", 1);
        self.discord
            .user_selects(dm, mid, OWNER, None, &pref_id, &[pref], self.locale)
            .await;
        self.next_prompt().await
    }

    /// Answers a long text question in the form (modal).
    async fn in_form(&mut self, text: &str) -> Value {
        let iid = self.press_only("m:").await;
        self.discord
            .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
            .await;
        let modal = &self.discord.interaction_responses(iid)[0];
        assert_eq!(modal["type"], 9);
        let max = modal["data"]["components"][0]["components"][0]["max_length"]
            .as_u64()
            .unwrap();
        assert!(max <= 4000, "{modal}");
        let custom = modal["data"]["custom_id"].as_str().unwrap().to_string();
        let dm = self.dm();
        self.discord
            .user_submits_modal(dm, OWNER, None, &custom, &[("answer", text)], self.locale)
            .await;
        self.next_prompt().await
    }

    /// A whole Japanese consultation from Hyogo with a clear talent need,
    /// using buttons, selects (multi, region → prefecture), the form and
    /// typed answers. Returns the finished case.
    async fn consult(&mut self, company: &str) -> CaseId {
        self.consult_with(
            company,
            "地域でいちばん信頼される工場にしたい",
            "新規顧客の開拓とチームづくり",
            "法人営業の経験5年以上",
            |_| {},
        )
        .await
    }

    /// `consult` with the vision (given in the form), the talent's duties
    /// and required experience (typed) as given; `before_sending` runs just
    /// before the owner presses 同意して送信する, when the case is about to be made.
    async fn consult_with(
        &mut self,
        company: &str,
        vision: &str,
        talent_duties: &str,
        talent_must: &str,
        before_sending: impl FnOnce(&DiscordStandIn),
    ) -> CaseId {
        let p = self.say("こんにちは").await;
        assert!(
            p["content"]
                .as_str()
                .unwrap()
                .contains("進めてよろしいですか"),
            "{p}"
        );
        self.press("はい").await;
        self.say(company).await;
        self.press("製造業").await;
        self.prefecture("kinki", "兵庫県").await;
        self.say("30").await;
        self.press("スキップ").await; // capital (optional)
        self.in_form(vision).await;
        self.choose("q:", &["hiring", "sales"]).await; // issue_areas (multi)
        self.say("採用がうまくいかず、人手が足りない").await;
        self.press("人材確保・採用").await;
        self.press("スキップ").await; // tried (optional)
        self.press("人材の採用・活用で解決したい").await;
        self.press("おおよそ決まっている").await; // talent_clear
        self.say("営業部長").await;
        self.say(talent_duties).await;
        self.say(talent_must).await;
        self.press("スキップ").await; // talent_nice
        self.choose("q:", &["fulltime", "side_job"]).await; // talent_style
        self.say("2027年4月").await;
        self.say("山田太郎").await;
        let phone = self.say("yamada@example.jp").await;
        // The sheet, the recipients and the consent question come together.
        let confirm = self.press("スキップ").await; // phone
                                                    // A long summary takes more than one message before the question.
        let shown: String = self
            .discord
            .messages_in(self.dm())
            .iter()
            .filter(|m| id_of(m) > id_of(&phone))
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(shown.contains("企業情報シート"), "{confirm}");
        assert!(
            shown.contains("兵庫県プロフェッショナル人材戦略拠点"),
            "{confirm}"
        );
        before_sending(&self.discord);
        self.press_only("同意して送信する").await;
        let done = self.next_message().await;
        assert!(
            done["content"].as_str().unwrap().contains("お送りしました"),
            "{done}"
        );
        assert!(!has_components(&done), "the last message has no question");
        let cases = self.store.cases_of_user(&self.owner()).await.unwrap();
        cases.last().expect("a case").id
    }

    /// The actions in a case's audit log, in order.
    async fn audit_actions(&self, case: CaseId) -> Vec<String> {
        self.store
            .audit(Some(case))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect()
    }

    /// Waits until the case post in `channel` exists and the bot has
    /// stored it (so the owner's messages find it); returns the post as
    /// Discord holds it now. The thread is made later, when first used.
    async fn case_post(&self, channel: u64) -> Value {
        let call = self.discord.wait_for_call(|c| is_post(c, channel)).await;
        let mid = id_of(call.response.as_ref().unwrap());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self
            .store
            .find_case_post("discord", &mid.to_string())
            .await
            .unwrap()
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the post {mid} in {channel} was never stored"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.discord.message(mid).unwrap()
    }

    /// The statuses of the bot's attempts to start a thread on `message`.
    fn thread_starts(&self, channel: u64, message: u64) -> Vec<u16> {
        self.discord
            .calls()
            .iter()
            .filter(|c| {
                c.is(
                    "POST",
                    &format!("/channels/{channel}/messages/{message}/threads"),
                )
            })
            .map(|c| c.status)
            .collect()
    }

    /// Waits until the worker has recorded the delivery to `hub` as done.
    /// (The record is written after the last REST call of a delivery, so
    /// this polls the store, with the stand-in's 10 s deadline.)
    async fn delivered(&self, case: CaseId, hub: &str) -> madoguchi::store::DeliveryRecord {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
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
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn press_staff(&self, channel: u64, message: u64, user: u64, custom_id: &str) -> u64 {
        let iid = self
            .discord
            .user_presses_button(channel, message, user, Some(GUILD), custom_id, "ja")
            .await;
        self.discord
            .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
            .await;
        iid
    }

    /// Waits for a note in a thread containing `text`.
    async fn thread_note(&self, thread: u64, text: &str) -> Value {
        self.posted(thread, text).await.response.unwrap()
    }

    /// Waits for the bot to post a message containing `text` in `channel`
    /// (a channel or a thread); returns the call.
    async fn posted(&self, channel: u64, text: &str) -> RecordedCall {
        self.discord
            .wait_for_call(|c| is_post(c, channel) && content_has(c, text))
            .await
    }

    /// Waits for an interaction's deferred answer to be edited into one
    /// containing `text`; returns the call.
    async fn original_edited(&self, text: &str) -> RecordedCall {
        self.discord
            .wait_for_call(|c| is_original_edit(c) && content_has(c, text))
            .await
    }
}

/// Every message-creating or -editing call carries `allowed_mentions`.
fn assert_allowed_mentions_everywhere(calls: &[RecordedCall]) {
    for c in calls {
        let body = c.json();
        let creates = (c.method == "POST"
            && c.path.starts_with("/channels/")
            && c.path.ends_with("/messages"))
            || (c.method == "POST" && c.path.starts_with("/webhooks/"))
            || (c.method == "PATCH" && (c.path.contains("/messages/")));
        if creates {
            assert!(
                body.get("allowed_mentions").is_some(),
                "{} {} has no allowed_mentions: {body}",
                c.method,
                c.path
            );
        }
        if c.method == "POST"
            && c.path.starts_with("/interactions/")
            && matches!(body["type"].as_u64(), Some(4) | Some(7))
        {
            assert!(
                body["data"].get("allowed_mentions").is_some(),
                "interaction reply without allowed_mentions: {body}"
            );
        }
    }
}

#[tokio::test]
async fn dm_consultation_posts_the_case_once_in_one_call_per_hub() {
    let mut h = Harness::new().await;
    let started = h.discord.calls().len();
    let case_id = h.consult("株式会社テスト製作所").await;

    // The case goes to the pro-talent hub, pinging only its staff role.
    let post = h.case_post(PRO_CHANNEL).await;
    assert!(post["content"]
        .as_str()
        .unwrap()
        .contains(&format!("<@&{PRO_ROLE}>")));
    assert_eq!(post["mention_roles"], json!([PRO_ROLE.to_string()]));
    assert_eq!(post["mention_everyone"], false);
    let embed = &post["embeds"][0];
    assert!(embed["title"]
        .as_str()
        .unwrap()
        .starts_with(&case_id.to_string()));
    assert!(embed["description"]
        .as_str()
        .unwrap()
        .contains("株式会社テスト製作所"));
    let rule = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().unwrap().contains("rule"))
        .unwrap();
    assert!(
        rule["value"]
            .as_str()
            .unwrap()
            .contains("talent-need-clear"),
        "the post names the rule: {rule}"
    );
    let ids: Vec<String> = components(&post)
        .iter()
        .map(|c| c["custom_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            format!("s:claim:{}", case_id.0),
            format!("s:fwd:{}", case_id.0),
            format!("s:adv:{}", case_id.0),
            format!("s:close:{}", case_id.0)
        ]
    );
    // The post itself says what the thread intro used to: how to reply,
    // where the owner's messages go, and why the case came to this hub.
    let content = post["content"].as_str().unwrap();
    for part in [
        "/reply",
        "!reply",
        "このメッセージのスレッド",
        "this message's thread",
        "振り分けの理由 (why this hub)",
        "`talent-need-clear`",
    ] {
        assert!(content.contains(part), "{part:?} missing from {content}");
    }
    assert!(content.chars().count() <= 2000);
    // No thread yet: it is made when something is first posted in it.
    assert!(h.discord.channel(id_of(&post)).is_none());
    // A copy to the chamber of commerce, without buttons; its content says
    // who handles the case.
    let copy = h.case_post(CHAMBER_CHANNEL).await;
    assert!(components(&copy).is_empty());
    assert_eq!(copy["mention_roles"], json!([CHAMBER_ROLE.to_string()]));
    let copy_content = copy["content"].as_str().unwrap();
    assert!(
        copy_content.contains("写し")
            && copy_content.contains("兵庫県プロフェッショナル人材戦略拠点")
            && copy_content.contains("振り分けの理由"),
        "{copy_content}"
    );

    // Exactly once per hub, delivered, every attempt recorded.
    let posts = |ch: u64| h.discord.calls().iter().filter(|c| is_post(c, ch)).count();
    assert_eq!(
        (
            posts(PRO_CHANNEL),
            posts(CHAMBER_CHANNEL),
            posts(YOROZU_CHANNEL)
        ),
        (1, 1, 0)
    );
    h.delivered(case_id, "hyogo-pro").await;
    h.delivered(case_id, "hyogo-chamber").await;
    let deliveries = h.store.deliveries(case_id).await.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries
        .iter()
        .all(|d| d.status == DeliveryStatus::Delivered
            && d.attempts == 1
            && d.external_id.is_some()));
    let case = h.store.case(case_id).await.unwrap().unwrap();
    assert_eq!((case.hub_id.as_str(), case.step), ("hyogo-pro", 3));

    // One message per turn, and one REST call for it: every owner action
    // (a DM, a press, a select, a form) is answered by exactly one call —
    // the next message, or the interaction's own reply carrying it.
    let dm = h.dm();
    let owner = OWNER.to_string();
    let actions = h
        .discord
        .dispatched_events()
        .iter()
        .filter(|(t, d)| {
            (t == "MESSAGE_CREATE" && d["author"]["id"] == owner.as_str())
                || (t == "INTERACTION_CREATE" && d["user"]["id"] == owner.as_str())
        })
        .count();
    let to_owner = h
        .discord
        .calls()
        .iter()
        .filter(|c| {
            c.path.starts_with(&format!("/channels/{dm}/"))
                || c.path.starts_with("/interactions/")
                || c.path.starts_with("/webhooks/")
        })
        .count();
    assert_eq!(actions, 26, "the consultation's owner actions");
    assert_eq!(to_owner, actions, "{:#?}", h.discord.calls());
    // The hand-over is one call per hub, the case post: the whole
    // consultation costs 28 calls for 26 turns (≤ 1.1 per turn).
    let calls = h.discord.calls();
    let mut hand_over: Vec<String> = calls[started..]
        .iter()
        .filter(|c| {
            !(c.path.starts_with(&format!("/channels/{dm}/"))
                || c.path.starts_with("/interactions/")
                || c.path.starts_with("/webhooks/"))
        })
        .map(|c| format!("{} {} {}", c.method, c.path, c.status))
        .collect();
    hand_over.sort();
    assert_eq!(
        hand_over,
        [
            format!("POST /channels/{PRO_CHANNEL}/messages 200"),
            format!("POST /channels/{CHAMBER_CHANNEL}/messages 200"),
        ]
    );
    let total = calls.len() - started;
    assert_eq!(total, 28, "{:#?}", &calls[started..]);
    assert!(total as f64 / actions as f64 <= 1.1);
    let bot = h.discord.bot_user_id().to_string();
    let bot_msgs = h
        .discord
        .messages_in(dm)
        .into_iter()
        .filter(|m| m["author"]["id"] == bot.as_str())
        .count();
    assert_eq!(
        bot_msgs, 24,
        "one message per step (not for the region list or the form)"
    );
    h.finish().await;
}

#[tokio::test]
async fn staff_claim_and_refusal_for_non_staff() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社クレーム").await;
    let post = h.case_post(PRO_CHANNEL).await;
    let mid = id_of(&post);
    let id = case_id.0;

    // Someone without the hub's staff role: refused, nothing changes.
    let iid = h
        .press_staff(PRO_CHANNEL, mid, OUTSIDER, &format!("s:claim:{id}"))
        .await;
    let r = &h.discord.interaction_responses(iid)[0];
    assert_eq!(r["type"], 4);
    assert_eq!(
        r["data"]["flags"].as_u64().unwrap() & FLAG_EPHEMERAL,
        FLAG_EPHEMERAL
    );
    assert!(r["data"]["content"].as_str().unwrap().contains("スタッフ"));
    // Staff of another hub are refused too.
    let iid = h
        .press_staff(PRO_CHANNEL, mid, STAFF_YOROZU, &format!("s:claim:{id}"))
        .await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 4);
    assert_eq!(
        h.store.case(case_id).await.unwrap().unwrap().status,
        CaseStatus::Open
    );
    assert!(
        h.discord.channel(mid).is_none(),
        "refusals post nothing, so there is no thread yet"
    );

    // The hub's staff claim it: the post shows it, the thread says so.
    let iid = h
        .press_staff(PRO_CHANNEL, mid, STAFF_PRO, &format!("s:claim:{id}"))
        .await;
    assert_eq!(
        h.discord.interaction_responses(iid)[0]["type"],
        7,
        "{}",
        h.discord.interaction_responses(iid)[0]
    );
    let case = h.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(
        (case.status, case.claimed_by.as_deref()),
        (
            CaseStatus::Claimed,
            Some(format!("discord:{STAFF_PRO}").as_str())
        )
    );
    let now = h.discord.message(mid).unwrap();
    assert!(now["embeds"][0]["fields"]
        .to_string()
        .contains(&format!("<@{STAFF_PRO}>")));
    assert!(components(&now)
        .iter()
        .any(|c| c["custom_id"] == format!("s:release:{id}")));
    h.thread_note(mid, "担当になりました").await;
    // That first note made the thread, named after the case, and stored it.
    let thread = h.discord.channel(mid).expect("the thread of the post");
    assert_eq!(thread["type"], 11);
    assert!(
        thread["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{case_id} 株式会社クレーム")),
        "{thread}"
    );
    let stored = h.store.case_posts(case_id).await.unwrap();
    let pro = stored.iter().find(|p| p.hub_id == "hyogo-pro").unwrap();
    assert_eq!(pro.thread_id, Some(mid.to_string()));

    // Advance step 3 → 4, then close with an outcome (a form).
    h.press_staff(PRO_CHANNEL, mid, STAFF_PRO, &format!("s:adv:{id}"))
        .await;
    assert_eq!(h.store.case(case_id).await.unwrap().unwrap().step, 4);
    h.thread_note(mid, "STEP 3 → STEP 4").await;
    let iid = h
        .press_staff(PRO_CHANNEL, mid, STAFF_PRO, &format!("s:close:{id}"))
        .await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 9);
    let submit = h
        .discord
        .user_submits_modal(
            PRO_CHANNEL,
            STAFF_PRO,
            Some(GUILD),
            &format!("s:co:{id}"),
            &[("outcome", "人材紹介会社を紹介")],
            "ja",
        )
        .await;
    h.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{submit}/")))
        .await;
    h.thread_note(mid, "完了しました").await;
    let case = h.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(
        (case.status, case.outcome.as_deref()),
        (CaseStatus::Closed, Some("人材紹介会社を紹介"))
    );
    assert!(
        components(&h.discord.message(mid).unwrap()).is_empty(),
        "a closed case has no buttons"
    );

    // The later notes went into the same thread: it was made once.
    assert_eq!(h.thread_starts(PRO_CHANNEL, mid), [201]);
    assert_eq!(
        h.discord
            .messages_in(mid)
            .iter()
            .map(|m| m["content"].as_str().unwrap().chars().next().unwrap())
            .collect::<String>(),
        "🙋⏩✅"
    );

    // Every action is in the audit log.
    let actions = h.audit_actions(case_id).await;
    assert_eq!(actions, ["routed", "claim", "advance", "close"]);
    h.finish().await;
}

/// Selects a hub in the forward menu and submits the reason.
async fn forward(h: &Harness, post: u64, case: i64, staff: u64, hub: &str, reason: &str) -> u64 {
    let iid = h
        .press_staff(PRO_CHANNEL, post, staff, &format!("s:fwd:{case}"))
        .await;
    let menu = h
        .discord
        .original_response(iid)
        .expect("an ephemeral hub menu");
    assert_eq!(
        menu["flags"].as_u64().unwrap() & FLAG_EPHEMERAL,
        FLAG_EPHEMERAL
    );
    let sel = h
        .discord
        .user_selects(
            PRO_CHANNEL,
            id_of(&menu),
            staff,
            Some(GUILD),
            &format!("s:fh:{case}"),
            &[hub],
            "ja",
        )
        .await;
    h.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{sel}/")))
        .await;
    assert_eq!(h.discord.interaction_responses(sel)[0]["type"], 9);
    let submit = h
        .discord
        .user_submits_modal(
            PRO_CHANNEL,
            staff,
            Some(GUILD),
            &format!("s:fr:{case}:{hub}"),
            &[("reason", reason)],
            "ja",
        )
        .await;
    // The result replaces the menu (the token carries the interaction id).
    h.discord
        .wait_for_call(|c| {
            c.method == "PATCH"
                && c.path.contains(&submit.to_string())
                && c.path.ends_with("/messages/@original")
                && c.ok()
        })
        .await;
    id_of(&menu)
}

#[tokio::test]
async fn forward_within_consent_moves_the_case_at_once() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社フォワード").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let copy = id_of(&h.case_post(CHAMBER_CHANNEL).await);
    let menu = forward(
        &h,
        post,
        case_id.0,
        STAFF_PRO,
        "hyogo-chamber",
        "商工会の伴走が適切",
    )
    .await;
    assert!(h.discord.message(menu).unwrap()["content"]
        .as_str()
        .unwrap()
        .contains("引き継ぎました"));

    let case = h.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(case.hub_id, "hyogo-chamber");
    // The chamber already had a copy: no second case post, the copy
    // becomes the working post and the old one loses its buttons.
    assert_eq!(
        h.discord
            .calls()
            .iter()
            .filter(|c| is_post(c, CHAMBER_CHANNEL) && c.json().get("embeds").is_some())
            .count(),
        1
    );
    assert!(components(&h.discord.message(copy).unwrap())
        .iter()
        .any(|c| c["custom_id"] == format!("s:claim:{}", case_id.0)));
    assert!(components(&h.discord.message(post).unwrap()).is_empty());
    h.thread_note(post, "引き継ぎました").await;
    h.thread_note(copy, "引き継がれました").await;
    // The posts' text follows: the chamber's says it now holds the case
    // (and no longer that it is a copy), the old one that it is the copy.
    let text = |m: u64| {
        h.discord.message(m).unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        text(copy).contains("引き継がれた案件です"),
        "{}",
        text(copy)
    );
    assert!(!text(copy).contains("写し"), "{}", text(copy));
    assert!(text(post).contains("写し"), "{}", text(post));
    // The chamber's staff are pinged in their channel, in a reply to the
    // post they now hold (no new post pinged them); the edits ping nobody.
    let ping = h.posted(CHAMBER_CHANNEL, "引き継がれ").await;
    let body = ping.json();
    assert!(body["content"]
        .as_str()
        .unwrap()
        .starts_with(&format!("<@&{CHAMBER_ROLE}>")));
    assert_eq!(
        body["allowed_mentions"]["roles"],
        json!([CHAMBER_ROLE.to_string()])
    );
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(
        body["message_reference"]["message_id"],
        json!(copy.to_string())
    );
    for c in h.discord.calls() {
        if c.method == "PATCH"
            && (c.path.ends_with(&copy.to_string()) || c.path.ends_with(&post.to_string()))
        {
            assert_eq!(
                c.json()["allowed_mentions"],
                json!({ "parse": [] }),
                "{}",
                c.path
            );
        }
    }
    // No new consent was needed.
    assert_eq!(h.store.consents(&h.owner()).await.unwrap().len(), 2);
    assert!(!h
        .discord
        .calls()
        .iter()
        .any(|c| is_post(c, h.dm()) && c.json().to_string().contains("f:y:")));
    // Staff of the new hub can work it; the old hub's staff no longer can.
    let iid = h
        .press_staff(
            CHAMBER_CHANNEL,
            copy,
            STAFF_PRO,
            &format!("s:claim:{}", case_id.0),
        )
        .await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 4);
    let iid = h
        .press_staff(
            CHAMBER_CHANNEL,
            copy,
            STAFF_CHAMBER,
            &format!("s:claim:{}", case_id.0),
        )
        .await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 7);
    h.finish().await;
}

#[tokio::test]
async fn forward_outside_consent_asks_the_owner_first() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社アスク").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    h.case_post(CHAMBER_CHANNEL).await;

    // First request: the owner declines; nothing moves.
    forward(
        &h,
        post,
        case_id.0,
        STAFF_PRO,
        "hyogo-yorozu",
        "販路開拓の支援が中心のため",
    )
    .await;
    let ask = h.next_prompt().await;
    assert!(
        ask["content"]
            .as_str()
            .unwrap()
            .contains("兵庫県よろず支援拠点"),
        "{ask}"
    );
    h.thread_note(post, "同意を確認しています").await;
    assert_eq!(
        h.store.case(case_id).await.unwrap().unwrap().hub_id,
        "hyogo-pro"
    );
    let no = h.press_only("同意しない").await;
    h.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{no}/")))
        .await;
    h.next_message().await;
    h.thread_note(post, "同意しませんでした").await;
    assert_eq!(
        h.store.case(case_id).await.unwrap().unwrap().hub_id,
        "hyogo-pro"
    );
    assert_eq!(
        h.discord
            .calls()
            .iter()
            .filter(|c| is_post(c, YOROZU_CHANNEL))
            .count(),
        0,
        "nothing reached the hub"
    );

    // Second request: the owner agrees; the case moves and is posted there.
    forward(
        &h,
        post,
        case_id.0,
        STAFF_PRO,
        "hyogo-yorozu",
        "販路開拓の支援が中心のため",
    )
    .await;
    h.next_prompt().await;
    h.press_only("同意する").await;
    let thanks = h.next_message().await;
    assert!(thanks["content"]
        .as_str()
        .unwrap()
        .contains("引き継ぎました"));
    let new_post = h.case_post(YOROZU_CHANNEL).await;
    assert_eq!(new_post["mention_roles"], json!([YOROZU_ROLE.to_string()]));
    let case = h.store.case(case_id).await.unwrap().unwrap();
    assert_eq!(
        (case.hub_id.as_str(), case.status),
        ("hyogo-yorozu", CaseStatus::Open)
    );
    // The new hub's post says where the case came from and why, and it
    // is the one ping there (no extra reply pinging the role).
    let content = new_post["content"].as_str().unwrap();
    assert!(content.contains("引き継がれた案件です"), "{content}");
    // (Any ping would have been sent before the owner was thanked.)
    assert_eq!(
        h.discord
            .calls()
            .iter()
            .filter(|c| is_post(c, YOROZU_CHANNEL))
            .count(),
        1
    );
    assert!(
        content.contains("兵庫県プロフェッショナル人材戦略拠点")
            && content.contains("から引き継がれた案件")
            && content.contains("販路開拓"),
        "{content}"
    );
    // The owner's decisions are kept as consent records with the case.
    let consents = h.store.consents(&h.owner()).await.unwrap();
    let about_yorozu: Vec<bool> = consents
        .iter()
        .filter(|c| c.case == Some(case_id) && c.recipients.iter().any(|r| r.id == "hyogo-yorozu"))
        .map(|c| c.granted)
        .collect();
    assert_eq!(about_yorozu, [false, true]);
    let actions = h.audit_actions(case_id).await;
    assert_eq!(
        actions,
        [
            "routed",
            "forward_requested",
            "forward_declined",
            "forward_requested",
            "forward"
        ]
    );
    h.finish().await;
}

#[tokio::test]
async fn relay_between_staff_and_owner_both_ways() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社リレー").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let thread = post;
    assert!(
        h.discord.channel(thread).is_none(),
        "no thread until it is used"
    );

    // Owner → staff: a DM after the hand-over makes the post's thread and
    // lands in it.
    let owner_msg = h
        .discord
        .user_sends_dm(OWNER, "追加で、来週なら時間があります")
        .await;
    let relayed = h.thread_note(thread, "来週なら時間").await;
    assert!(relayed["content"].as_str().unwrap().contains("相談者より"));
    let dm = h.dm();
    h.discord
        .wait_for_call(|c| {
            c.is(
                "PUT",
                &format!("/channels/{dm}/messages/{owner_msg}/reactions/"),
            )
        })
        .await;
    assert_eq!(h.thread_starts(PRO_CHANNEL, post), [201]);
    assert!(h.discord.channel(thread).unwrap()["name"]
        .as_str()
        .unwrap()
        .contains("株式会社リレー"));
    assert_eq!(
        h.store.open_session(&h.owner()).await.unwrap(),
        None,
        "no new consultation was started"
    );

    // Staff → owner with /reply in the case thread.
    let iid = h
        .discord
        .user_runs_slash_command(
            Some(GUILD),
            thread,
            STAFF_PRO,
            "reply",
            json!({ "message": "来週お電話してもよろしいですか？" }),
            "ja",
        )
        .await;
    let dm_msg = h.next_message().await;
    assert!(dm_msg["content"]
        .as_str()
        .unwrap()
        .contains("来週お電話してもよろしいですか"));
    assert!(dm_msg["content"]
        .as_str()
        .unwrap()
        .contains("兵庫県プロフェッショナル人材戦略拠点"));
    h.original_edited("送りました").await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 5);

    // The owner answers: the same thread, no second one.
    let answer = h
        .discord
        .user_sends_dm(OWNER, "はい、火曜の午後なら大丈夫です")
        .await;
    h.thread_note(thread, "火曜の午後").await;
    h.discord
        .wait_for_call(|c| {
            c.is(
                "PUT",
                &format!("/channels/{dm}/messages/{answer}/reactions/"),
            )
        })
        .await;
    assert_eq!(h.thread_starts(PRO_CHANNEL, post), [201]);

    // Staff → owner with the typed prefix.
    let staff_msg = h
        .discord
        .user_sends_guild_message(GUILD, thread, STAFF_PRO, "!reply では火曜14時に伺います")
        .await;
    let dm_msg = h.next_message().await;
    assert!(dm_msg["content"].as_str().unwrap().contains("火曜14時"));
    h.discord
        .wait_for_call(|c| {
            c.is(
                "PUT",
                &format!("/channels/{thread}/messages/{staff_msg}/reactions/"),
            )
        })
        .await;

    // Not staff: refused, nothing sent.
    let iid = h
        .discord
        .user_runs_slash_command(
            Some(GUILD),
            thread,
            OUTSIDER,
            "reply",
            json!({ "message": "x" }),
            "ja",
        )
        .await;
    h.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
        .await;
    let r = &h.discord.interaction_responses(iid)[0];
    assert_eq!(
        (r["type"].as_u64(), r["data"]["flags"].as_u64()),
        (Some(4), Some(FLAG_EPHEMERAL))
    );
    // Outside a case thread: refused too.
    let iid = h
        .discord
        .user_runs_slash_command(
            Some(GUILD),
            LOBBY,
            STAFF_PRO,
            "reply",
            json!({ "message": "x" }),
            "ja",
        )
        .await;
    h.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
        .await;
    assert!(h.discord.interaction_responses(iid)[0]["data"]["content"]
        .as_str()
        .unwrap()
        .contains("スレッド"));

    let actions = h.audit_actions(case_id).await;
    assert_eq!(
        actions,
        [
            "routed",
            "relay_to_staff",
            "relay_to_owner",
            "relay_to_staff",
            "relay_to_owner"
        ]
    );
    h.finish().await;
}

/// Waits until every relay message of the case is sent or failed.
async fn relays_settled(h: &Harness, case: CaseId) -> Vec<madoguchi::store::RelayRecord> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let rs = h.store.relays_of_case(case).await.unwrap();
        if !rs.is_empty() && rs.iter().all(|r| r.status != DeliveryStatus::Pending) {
            return rs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The answer to a relayed piece is lost after Discord made the message
/// (a 504 at its edge), and the retry comes after Discord's nonce window,
/// so the nonce no longer returns the first message: the sender finds
/// the piece among the thread's recent messages and does not post it
/// again. The owner's later message with the same words is a message of
/// its own, and is posted.
#[tokio::test]
async fn a_relayed_piece_whose_answer_was_lost_past_the_nonce_window_is_posted_once() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社イチドキリ").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    h.discord.set_nonce_window(std::time::Duration::ZERO);
    let words = "一度だけ届くはずの追伸です";
    h.discord.fail_next_after_processing(
        "POST",
        &format!("/channels/{post}/messages"),
        Some(words),
        504,
        json!({ "message": "Gateway Timeout", "code": 0 }),
        1,
    );
    h.discord.user_sends_dm(OWNER, words).await;
    let rs = relays_settled(&h, case).await;
    assert_eq!(rs.len(), 1, "{rs:#?}");
    assert_eq!(
        (rs[0].status, rs[0].attempts),
        (DeliveryStatus::Delivered, 2),
        "the first attempt's outcome was unknown: {rs:#?}"
    );
    let copies = |h: &Harness| -> Vec<String> {
        h.discord
            .messages_in(post)
            .iter()
            .filter(|m| m["content"].as_str().unwrap_or("").contains(words))
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(copies(&h).len(), 1, "{:#?}", h.discord.messages_in(post));
    assert_eq!(
        rs[0].message_ids,
        copies(&h),
        "the message found is recorded (so forget deletes it)"
    );

    // The same words again: a new message, found nowhere, posted.
    h.discord.user_sends_dm(OWNER, words).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while h.store.relays_of_case(case).await.unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    relays_settled(&h, case).await;
    assert_eq!(copies(&h).len(), 2, "{:#?}", h.discord.messages_in(post));
    h.finish().await;
}

/// The case post to the hub fails for good (the bot may not post in the
/// channel). The owner's later message is not dropped: it is queued for
/// the case thread and waits, pending, saying why (what `madoguchi cases
/// show` prints). Once the delivery is made pending again (`madoguchi
/// cases retry-delivery`, after the permission was fixed) the case is
/// posted and the waiting message follows into its thread.
#[tokio::test]
async fn a_message_for_a_case_whose_post_failed_waits_and_follows_the_retried_post() {
    let mut h = Harness::new().await;
    let refusal = json!({ "message": "Missing Permissions", "code": 50013 });
    let case = h
        .consult_with(
            "株式会社マチボウケ",
            "地域でいちばん信頼される工場にしたい",
            "新規顧客の開拓とチームづくり",
            "法人営業の経験5年以上",
            |d| {
                d.fail_next(
                    "POST",
                    &format!("/channels/{PRO_CHANNEL}/messages"),
                    403,
                    refusal,
                    1,
                )
            },
        )
        .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let failed = loop {
        let ds = h.store.deliveries(case).await.unwrap();
        if let Some(d) = ds
            .iter()
            .find(|d| d.hub_id == "hyogo-pro" && d.status == DeliveryStatus::Failed)
        {
            break d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{ds:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };

    let words = "待っている間の追伸です";
    h.discord.user_sends_dm(OWNER, words).await;
    let waiting = loop {
        let rs = h.store.relays_of_case(case).await.unwrap();
        if let Some(r) = rs.iter().find(|r| {
            r.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("waiting for the case post"))
        }) {
            break r.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{rs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(waiting.status, DeliveryStatus::Pending, "{waiting:#?}");
    assert!(
        waiting.last_error.as_deref().unwrap().contains("403"),
        "the reason names the delivery's error: {waiting:#?}"
    );
    assert!(
        !h.discord
            .messages_in(PRO_CHANNEL)
            .iter()
            .any(|m| m.to_string().contains("マチボウケ")),
        "nothing was posted yet"
    );

    assert!(h
        .store
        .retry_delivery(failed.id, chrono::Utc::now())
        .await
        .unwrap());
    let rs = relays_settled(&h, case).await;
    let r = rs.iter().find(|r| r.id == waiting.id).unwrap();
    assert_eq!(r.status, DeliveryStatus::Delivered, "{rs:#?}");
    let post = h
        .store
        .case_posts(case)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.hub_id == "hyogo-pro")
        .expect("the case is posted after the retry");
    let thread: u64 = post.message_id.parse().unwrap();
    let copies = h
        .discord
        .messages_in(thread)
        .iter()
        .filter(|m| m["content"].as_str().unwrap_or("").contains(words))
        .count();
    assert_eq!(copies, 1, "{:#?}", h.discord.messages_in(thread));
    h.finish().await;
}

/// `/reply` in a case thread; waits for the confirmation edit.
async fn reply_in(h: &mut Harness, thread: u64, text: &str) -> Value {
    h.discord
        .user_runs_slash_command(
            Some(GUILD),
            thread,
            STAFF_PRO,
            "reply",
            json!({ "message": text }),
            "ja",
        )
        .await;
    let dm_msg = h.next_message().await;
    assert!(
        dm_msg["content"].as_str().unwrap().contains(text),
        "{dm_msg}"
    );
    h.discord
        .wait_for_call(|c| {
            is_original_edit(c) && content_has(c, "送りました") && content_has(c, text)
        })
        .await;
    dm_msg
}

/// Staff started the post's thread by hand before the bot needed it: the
/// owner's message goes there (the bot's own attempt gets 160004), and
/// `/reply` from it reaches the owner.
#[tokio::test]
async fn a_thread_staff_started_by_hand_gets_the_owners_messages() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社テヅクリ").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let thread = h
        .discord
        .user_starts_thread(GUILD, PRO_CHANNEL, post, STAFF_PRO, "テヅクリ 面談調整")
        .await;
    assert_eq!(thread, post);

    let first = h
        .discord
        .user_sends_dm(OWNER, "資料を送ってもよいですか")
        .await;
    let relayed = h.thread_note(thread, "資料を送って").await;
    assert!(relayed["content"].as_str().unwrap().contains("相談者より"));
    // The ✅ on the owner's message comes after the relay is recorded.
    let dm = h.dm();
    h.discord
        .wait_for_call(|c| {
            c.is(
                "PUT",
                &format!("/channels/{dm}/messages/{first}/reactions/"),
            )
        })
        .await;
    let starts: Vec<(u16, i64)> = h
        .discord
        .calls()
        .iter()
        .filter(|c| {
            c.is(
                "POST",
                &format!("/channels/{PRO_CHANNEL}/messages/{post}/threads"),
            )
        })
        .map(|c| {
            (
                c.status,
                c.response.as_ref().unwrap()["code"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(starts, [(400, 160004)], "the thread already existed");
    assert_eq!(
        h.discord.channel(thread).unwrap()["name"],
        "テヅクリ 面談調整",
        "staff's thread keeps its name"
    );
    let stored = h.store.case_posts(case_id).await.unwrap();
    let p = stored.iter().find(|p| p.hub_id == "hyogo-pro").unwrap();
    assert_eq!(p.thread_id, Some(thread.to_string()));

    reply_in(&mut h, thread, "はい、メールでお送りください").await;
    // A second owner message: straight into the known thread.
    let second = h
        .discord
        .user_sends_dm(OWNER, "メールで資料を送付しました")
        .await;
    h.thread_note(thread, "資料を送付しました").await;
    h.discord
        .wait_for_call(|c| {
            c.is(
                "PUT",
                &format!("/channels/{dm}/messages/{second}/reactions/"),
            )
        })
        .await;
    assert_eq!(h.thread_starts(PRO_CHANNEL, post), [400]);
    assert_eq!(
        h.audit_actions(case_id).await,
        [
            "routed",
            "relay_to_staff",
            "relay_to_owner",
            "relay_to_staff"
        ]
    );
    h.finish().await;
}

/// Staff started the thread by hand and `/reply` first: the case is found
/// by the thread's id (the post's id), the thread is remembered, and the
/// owner's answer goes there without asking Discord for a thread.
#[tokio::test]
async fn reply_from_a_thread_staff_started_by_hand_remembers_it() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社サキガケ").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let thread = h
        .discord
        .user_starts_thread(GUILD, PRO_CHANNEL, post, STAFF_PRO, "サキガケ")
        .await;
    let before = h.store.case_posts(case_id).await.unwrap();
    assert_eq!(
        before
            .iter()
            .find(|p| p.hub_id == "hyogo-pro")
            .unwrap()
            .thread_id,
        None
    );

    reply_in(
        &mut h,
        thread,
        "担当の田中です。面談の日程を相談させてください",
    )
    .await;
    let after = h.store.case_posts(case_id).await.unwrap();
    assert_eq!(
        after
            .iter()
            .find(|p| p.hub_id == "hyogo-pro")
            .unwrap()
            .thread_id,
        Some(thread.to_string())
    );

    h.discord
        .user_sends_dm(OWNER, "来週の水曜はいかがでしょう")
        .await;
    h.thread_note(thread, "来週の水曜").await;
    assert!(
        h.thread_starts(PRO_CHANNEL, post).is_empty(),
        "the remembered thread needs no call"
    );
    h.finish().await;
}

/// The owner runs `/forget` and confirms; returns once the bot says the
/// data is deleted (it has then cleaned up on Discord as well).
async fn forget_by_slash_command(h: &mut Harness) {
    let iid = h
        .discord
        .user_runs_slash_command(None, 0, OWNER, "forget", json!({}), "ja")
        .await;
    h.discord
        .wait_for_call(|c| c.is("POST", &format!("/interactions/{iid}/")))
        .await;
    let ask = h.discord.original_response(iid).unwrap();
    assert!(
        ask["content"].as_str().unwrap().contains("3年間保管"),
        "the reply says what the law makes us keep"
    );
    assert_eq!(
        ask["flags"].as_u64().unwrap() & FLAG_EPHEMERAL,
        FLAG_EPHEMERAL
    );
    let dm = h.dm();
    h.discord
        .user_presses_button(dm, id_of(&ask), OWNER, None, &format!("g:y:{OWNER}"), "ja")
        .await;
    let done = h.original_edited("削除しました").await;
    assert!(done.json()["content"]
        .as_str()
        .unwrap()
        .contains("3年間保管します"));
}

#[tokio::test]
async fn forget_deletes_the_rest_of_a_long_case_sheet_from_the_threads() {
    let mut h = Harness::new().await;
    let vision = "地域でいちばん信頼される工場にしたい。".repeat(100);
    let duties = "新規顧客の開拓とチームづくり。".repeat(100);
    let must = "法人営業の経験5年以上、チームを率いた経験。".repeat(80);
    let case_id = h
        .consult_with(
            "株式会社ロングフォーゲット",
            &vision,
            &duties,
            &must,
            |_| {},
        )
        .await;
    let mut threads = Vec::new();
    for hub in ["hyogo-pro", "hyogo-chamber"] {
        let d = h.delivered(case_id, hub).await;
        let mid: u64 = d.external_id.as_deref().unwrap().parse().unwrap();
        let pieces = h.discord.messages_in(mid);
        assert!(
            pieces.len() >= 2
                && pieces.iter().any(|m| m["content"]
                    .as_str()
                    .unwrap()
                    .contains("チームを率いた経験。")),
            "the sheet continues in the thread: {pieces:?}"
        );
        threads.push(mid);
    }

    forget_by_slash_command(&mut h).await;

    for t in threads {
        let left: Vec<String> = h
            .discord
            .messages_in(t)
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
            .collect();
        // Only the bot's note that the contents were deleted is left: the
        // pieces held the owner's answers and contact details.
        assert!(
            left.iter().all(|m| !m.contains("チームを率いた経験。")
                && !m.contains("yamada@")
                && !m.contains("山田太郎")),
            "the owner's answers are gone from the thread: {left:?}"
        );
        assert!(left.iter().any(|m| m.contains("🗑️")), "{left:?}");
    }
    h.finish().await;
}

/// The owner types 「データ削除」 in the DM instead of running `/forget`:
/// the same question comes, in the DM, and nothing is deleted until they
/// confirm; the words are not taken as an answer or relayed to staff.
#[tokio::test]
async fn forget_by_typed_words_asks_in_the_dm_then_deletes() {
    let mut h = Harness::new().await;
    h.consult("株式会社タイプドフォーゲット").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let dm = h.dm();
    h.discord.user_sends_dm(OWNER, "データ削除").await;
    let ask = h.posted(dm, "3年間保管").await.response.unwrap();
    assert!(
        component_of(&ask, &format!("g:y:{OWNER}"))["custom_id"].is_string(),
        "{ask}"
    );
    let owner = h.owner();
    assert_eq!(
        h.store.cases_of_user(&owner).await.unwrap().len(),
        1,
        "nothing deleted before the press"
    );
    assert!(
        !h.discord
            .calls()
            .iter()
            .any(|c| is_post(c, post) && content_has(c, "データ削除")),
        "the words are not relayed to the hub"
    );
    h.discord
        .user_presses_button(dm, id_of(&ask), OWNER, None, &format!("g:y:{OWNER}"), "ja")
        .await;
    h.original_edited("削除しました").await;
    assert!(h.store.sessions_of_user(&owner).await.unwrap().is_empty());
    assert!(h.store.cases_of_user(&owner).await.unwrap().is_empty());
    h.finish().await;
}

#[tokio::test]
async fn forget_deletes_the_owners_data_and_keeps_the_consent_record() {
    let mut h = Harness::new().await;
    let case_id = h.consult("株式会社フォーゲット").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let copy = id_of(&h.case_post(CHAMBER_CHANNEL).await);
    h.discord
        .user_sends_dm(OWNER, "追加で相談したいことがあります")
        .await;
    let relayed = id_of(&h.thread_note(post, "追加で相談").await);
    // The chamber's staff started a thread on their copy by hand; the bot
    // has not used it, so it does not know it yet.
    h.discord
        .user_starts_thread(
            GUILD,
            CHAMBER_CHANNEL,
            copy,
            STAFF_CHAMBER,
            "フォーゲットの件",
        )
        .await;

    forget_by_slash_command(&mut h).await;

    let owner = h.owner();
    assert!(h.store.sessions_of_user(&owner).await.unwrap().is_empty());
    assert!(h.store.cases_of_user(&owner).await.unwrap().is_empty());
    let tomb = h.store.case(case_id).await.unwrap().unwrap();
    assert!(tomb.summary_plain.is_empty() && tomb.summary_markdown.is_empty());
    assert_eq!(
        h.store.consents(&owner).await.unwrap().len(),
        2,
        "consent and forwarding records are kept"
    );
    // The posts keep only the case id; the owner's relayed words are gone.
    for m in [post, copy] {
        let msg = h.discord.message(m).unwrap();
        assert!(
            msg["embeds"][0]["title"]
                .as_str()
                .unwrap()
                .contains("削除済み"),
            "{msg}"
        );
        assert!(
            !msg["embeds"].to_string().contains("株式会社フォーゲット")
                && !msg["content"].to_string().contains("株式会社フォーゲット")
        );
        assert!(components(&msg).is_empty());
        assert_eq!(msg["content"], "", "the routing reason is gone too");
        // Both threads, the bot's and the one staff started by hand, are
        // renamed and say why.
        let thread = h.discord.channel(m).unwrap();
        assert!(
            thread["name"].as_str().unwrap().contains("削除済み"),
            "the thread no longer names the company: {thread}"
        );
        assert!(h
            .discord
            .messages_in(m)
            .iter()
            .any(|n| n["content"].as_str().unwrap().contains("🗑️")));
    }
    // The relayed message is deleted whichever comes first: the outbox
    // recording its id (then `forget` deletes it) or `forget` (then the
    // outbox, finding the relay erased when it records the id, deletes it).
    // In the second order the delete follows `forget`'s answer, so wait.
    let deleted = format!("/messages/{relayed}");
    h.discord
        .wait_for_call(|c| c.method == "DELETE" && c.path.ends_with(&deleted))
        .await;
    assert!(h.discord.message(relayed).is_none());
    h.finish().await;
}

/// The disk fails the fsync of an answer given by a button. The owner is
/// told privately to try again, and nothing more is written until the bot
/// is restarted, even once the disk works. After the restart the answer
/// turns out to be on disk (the stand-in fails only the report): pressing
/// the same button again is an old question's press, not a second answer
/// or the next question's, and the consultation goes on.
#[tokio::test]
async fn after_a_failed_fsync_a_button_pressed_again_after_restart_is_not_taken_twice() {
    use std::sync::atomic::Ordering;
    let mut h = Harness::new().await;
    // The same database, opened with an fsync the test can make fail.
    h.stop_bot().await;
    let path = h.cfg.db.clone();
    let (fail, sync) = crate::support::failing_fsync();
    h.store = Arc::new(SqliteStore::open_with_wal_sync(&path, sync).await.unwrap());
    h.start_bot().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    let industry_q = h.say("株式会社ディスク").await;
    assert!(industry_q["content"].as_str().unwrap().contains("業種"));

    fail.store(true, Ordering::SeqCst);
    let iid = h.press_old(&industry_q, "製造業").await;
    let r = ephemeral_reply(&h, iid);
    assert!(r.contains("もう一度お試しください"), "{r}");
    assert!(h.store.write_failure().is_some());
    fail.store(false, Ordering::SeqCst);
    h.discord.user_sends_dm(OWNER, "製造業").await;
    let sorry = h.next_message().await;
    assert!(
        sorry["content"]
            .as_str()
            .unwrap()
            .contains("もう一度お試しください"),
        "still refused: {sorry}"
    );

    // The restart opens the database from what is on disk.
    h.stop_bot().await;
    h.store = Arc::new(SqliteStore::open(&path).await.unwrap());
    h.start_bot().await;
    let iid = h.press_old(&industry_q, "製造業").await;
    let r = ephemeral_reply(&h, iid);
    assert!(r.contains("前の質問"), "an old question's press: {r}");
    let session = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    assert_eq!(session.current_node, "prefecture");
    let answers = h.store.answers(session.id).await.unwrap();
    assert_eq!(
        answers.iter().filter(|a| a.node == "industry").count(),
        1,
        "{answers:#?}"
    );
    assert!(
        !answers.iter().any(|a| a.node == "prefecture"),
        "{answers:#?}"
    );
    // The bot, starting, showed the question the owner had not seen yet.
    let pref_q = h.next_prompt().await;
    assert!(
        pref_q["content"].as_str().unwrap().contains("都道府県"),
        "{pref_q}"
    );
    h.prefecture("kinki", "兵庫県").await;
    h.finish().await;
}

#[tokio::test]
async fn stale_button_presses_get_a_polite_ephemeral_answer() {
    let mut h = Harness::new().await;
    let first = h.say("こんにちは").await;
    h.press("はい").await;
    let company_q = h.say("株式会社ステイル").await;
    assert!(company_q["content"].as_str().unwrap().contains("業種"));
    // The industry question is answered by typing; its buttons are not
    // edited at every turn (one call per turn), so they stay pressable.
    let pref_q = h.say("製造業").await;
    assert!(pref_q["content"].as_str().unwrap().contains("都道府県"));
    assert!(components(&h.discord.message(id_of(&company_q)).unwrap())
        .iter()
        .any(|c| c["disabled"] != true));

    // Pressing an old button: an ephemeral note, no answer recorded.
    let iid = h.press_old(&company_q, "建設業").await;
    let r = &h.discord.interaction_responses(iid)[0];
    assert_eq!(r["type"], 4);
    assert_eq!(r["data"]["flags"], FLAG_EPHEMERAL);
    assert!(r["data"]["content"].as_str().unwrap().contains("前の質問"));
    // … and the old message is disabled now.
    h.discord
        .wait_for_call(|c| {
            c.method == "PATCH"
                && c.path
                    .ends_with(&format!("/messages/{}", id_of(&company_q)))
                && c.ok()
        })
        .await;
    let session = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    assert_eq!(session.current_node, "prefecture");
    let answers = h.store.answers(session.id).await.unwrap();
    assert_eq!(answers.iter().filter(|a| a.node == "industry").count(), 1);
    // The same for the very first question, answered by a press.
    let iid = h.press_old(&first, "はい").await;
    assert_eq!(
        h.discord.interaction_responses(iid)[0]["data"]["flags"],
        FLAG_EPHEMERAL
    );
    h.discord
        .wait_for_call(|c| {
            c.method == "PATCH"
                && c.path.ends_with(&format!("/messages/{}", id_of(&first)))
                && c.ok()
        })
        .await;
    assert!(components(&h.discord.message(id_of(&first)).unwrap())
        .iter()
        .all(|c| c["disabled"] == true));
    let session = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    assert_eq!(session.current_node, "prefecture");

    // The consultation simply goes on.
    h.prefecture("kinki", "兵庫県").await;
    h.finish().await;
}

#[tokio::test]
async fn case_delivery_survives_a_429_and_a_500_and_posts_once() {
    let mut h = Harness::new().await;
    let path = format!("/channels/{PRO_CHANNEL}/messages");
    h.discord.fail_next(
        "POST",
        &path,
        429,
        DiscordStandIn::rate_limit_body(0.2, false),
        1,
    );
    h.discord.fail_next(
        "POST",
        &path,
        500,
        json!({ "message": "500: Internal Server Error", "code": 0 }),
        1,
    );
    let case_id = h.consult("株式会社リトライ").await;
    let post = h.case_post(PRO_CHANNEL).await;

    let attempts: Vec<RecordedCall> = h
        .discord
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == path)
        .collect();
    assert_eq!(
        attempts.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 500, 200]
    );
    let nonces: Vec<&Value> = attempts.iter().map(|c| &c.json()["nonce"]).collect();
    assert!(
        nonces.iter().all(|n| *n == nonces[0]) && nonces[0].as_str().is_some_and(|n| n.len() <= 25),
        "{nonces:?}"
    );
    assert!(attempts.iter().all(|c| c.json()["enforce_nonce"] == true));
    assert_eq!(
        h.discord.messages_in(PRO_CHANNEL).len(),
        1,
        "posted exactly once"
    );
    let d = h.delivered(case_id, "hyogo-pro").await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 3));
    assert_eq!(d.external_id, Some(id_of(&post).to_string()));
    h.finish().await;
}

/// A summary too long for the embed: the delivery makes the thread and
/// posts the rest there at once, and retries repeat nothing.
#[tokio::test]
async fn a_long_summary_gets_its_thread_at_delivery_and_a_retry_posts_nothing_twice() {
    let mut h = Harness::new().await;
    // Each answer within the dialog's 2,000 characters; together more than
    // the embed's 4,096.
    let vision = "地域でいちばん信頼される工場にしたい。".repeat(100);
    let duties = "新規顧客の開拓とチームづくり。".repeat(100);
    let must = "法人営業の経験5年以上、チームを率いた経験。".repeat(80);
    let lost = || json!({ "message": "502: Bad Gateway", "code": 0 });
    let case_id = h
        .consult_with("株式会社ロング", &vision, &duties, &must, |d| {
            // The responsible hub's thread is made, but the answer is lost:
            // the next attempt finds it through Discord's 160004.
            d.fail_next_after_processing(
                "POST",
                &format!("/channels/{PRO_CHANNEL}/messages/"),
                None,
                502,
                lost(),
                1,
            );
            // The summary's last piece (it ends with the routing rule) is
            // posted, but every answer is lost, the sender's own three
            // retries included: that delivery fails and is tried again.
            d.fail_next_after_processing("POST", "/channels/", Some("（ルール："), 502, lost(), 4);
        })
        .await;
    let pro = h.delivered(case_id, "hyogo-pro").await;
    let chamber = h.delivered(case_id, "hyogo-chamber").await;
    // The worker takes the deliveries in order: the responsible hub's fails
    // at its thread, then the copy's at its last piece; both finish on the
    // second attempt.
    assert_eq!((pro.status, pro.attempts), (DeliveryStatus::Delivered, 2));
    assert_eq!(
        (chamber.status, chamber.attempts),
        (DeliveryStatus::Delivered, 2)
    );
    let calls = h.discord.calls();
    let mut threads = Vec::new();
    for (channel, d) in [(PRO_CHANNEL, &pro), (CHAMBER_CHANNEL, &chamber)] {
        let mid: u64 = d.external_id.as_deref().unwrap().parse().unwrap();
        assert_eq!(
            calls.iter().filter(|c| is_post(c, channel)).count(),
            1,
            "one case post"
        );
        let post = h.discord.message(mid).unwrap();
        let description = post["embeds"][0]["description"].as_str().unwrap();
        assert!(description.contains("continued in the thread"));
        // The thread holds the rest of the summary, each piece once.
        let pieces: Vec<String> = h
            .discord
            .messages_in(mid)
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect();
        assert!(pieces.len() >= 2, "{pieces:?}");
        // The intro is in the post; the thread has only what did not fit.
        assert!(post["content"].as_str().unwrap().contains("振り分けの理由"));
        assert!(
            pieces.iter().all(|p| !p.contains("振り分けの理由")),
            "{pieces:?}"
        );
        let mut distinct = pieces.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), pieces.len(), "a piece was posted twice");
        let whole = format!("{description}\n{}", pieces.join("\n"));
        assert!(
            whole.contains("（ルール："),
            "the summary's last line: {whole}"
        );
        assert_eq!(
            (
                whole.matches("工場にしたい。").count(),
                whole.matches("チームづくり。").count(),
                whole.matches("チームを率いた経験。").count()
            ),
            (100, 100, 80),
            "the whole summary is shown, once"
        );
        let stored = h.store.case_posts(case_id).await.unwrap();
        let p = stored.iter().find(|p| p.hub_id == d.hub_id).unwrap();
        assert_eq!(p.thread_id, Some(mid.to_string()));
        threads.push(mid);
    }
    // The responsible hub's thread was made once (its answer lost), then
    // found; the copy's was made once and reused by the retry.
    assert_eq!(h.thread_starts(PRO_CHANNEL, threads[0]), [502, 400]);
    assert_eq!(h.thread_starts(CHAMBER_CHANNEL, threads[1]), [201]);
    // The retry sent the copy's pieces again with the same nonces and got
    // the first messages back: every nonce has one message.
    let mut by_nonce: std::collections::BTreeMap<String, Vec<Option<u64>>> = Default::default();
    for c in calls
        .iter()
        .filter(|c| c.is("POST", &format!("/channels/{}/messages", threads[1])))
    {
        assert_eq!(c.json()["enforce_nonce"], true);
        let nonce = c.json()["nonce"].as_str().unwrap().to_string();
        let id = c.ok().then(|| id_of(c.response.as_ref().unwrap()));
        by_nonce.entry(nonce).or_default().push(id);
    }
    assert_eq!(by_nonce.len(), h.discord.messages_in(threads[1]).len());
    for (nonce, ids) in &by_nonce {
        let ok: Vec<u64> = ids.iter().flatten().copied().collect();
        assert!(
            !ok.is_empty() && ok.iter().all(|i| *i == ok[0]),
            "{nonce}: {ids:?}"
        );
    }
    assert!(
        by_nonce
            .values()
            .any(|ids| ids.iter().flatten().count() == 2),
        "a piece posted before the failure was sent again and not repeated: {by_nonce:?}"
    );
    assert!(
        by_nonce
            .values()
            .any(|ids| ids.iter().filter(|i| i.is_none()).count() == 4),
        "the piece whose answers were lost: {by_nonce:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn gateway_disconnect_mid_consultation_then_it_continues() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    // The connection drops; the owner's answer is sent while the bot is away.
    h.discord.hold_resumes();
    h.discord.disconnect_gateway().await;
    h.discord.wait_gateway(|g| g.parked_resumes == 1).await;
    assert!(!h.discord.is_connected());
    h.discord.user_sends_dm(OWNER, "株式会社ゲートウェイ").await;
    h.discord.release_resumes();
    let next = h.next_prompt().await;
    assert!(next["content"].as_str().unwrap().contains("業種"), "{next}");
    assert!(h.discord.resumes() >= 1);
    assert_eq!(h.discord.identifies(), 1, "resumed, not re-identified");
    // And it keeps going after the reconnect.
    let p = h.press("製造業").await;
    assert!(p["content"].as_str().unwrap().contains("都道府県"));
    h.finish().await;
}

#[tokio::test]
async fn an_answer_with_everyone_pings_no_one() {
    let mut h = Harness::new().await;
    let company = format!("@everyone @here <@&{PRO_ROLE}> <@{STAFF_PRO}> 株式会社ピン");
    let case_id = h.consult(&company).await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    h.discord
        .user_sends_dm(OWNER, "@everyone 至急お願いします")
        .await;
    h.thread_note(post, "至急お願いします").await;
    let _ = case_id;

    let mut seen = 0;
    for ch in [h.dm(), PRO_CHANNEL, CHAMBER_CHANNEL, post] {
        for m in h.discord.messages_in(ch) {
            if m["author"]["id"].as_str() != Some(h.discord.bot_user_id().to_string().as_str()) {
                continue;
            }
            seen += 1;
            assert_eq!(m["mention_everyone"], false, "{m}");
            assert_eq!(m["mentions"], json!([]), "{m}");
            let roles = m["mention_roles"].as_array().unwrap();
            let is_new_case = m["content"].as_str().unwrap_or("").contains("案件");
            assert!(
                roles.is_empty() || (is_new_case && roles.len() == 1 && m["id"] != Value::Null),
                "{m}"
            );
            assert!(
                !m["content"].as_str().unwrap_or("").contains("@everyone"),
                "the owner's @everyone is shown defused: {m}"
            );
        }
    }
    assert!(seen > 20);
    let pro = h.discord.message(post).unwrap();
    assert_eq!(
        pro["mention_roles"],
        json!([PRO_ROLE.to_string()]),
        "only the hub's staff role, on the new case"
    );
    assert!(pro["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .contains("株式会社ピン"));
    h.finish().await;
}

#[tokio::test]
async fn restart_resumes_consultations_and_pending_deliveries() {
    let mut h = Harness::with(|c| c.outbox.backoff_base_ms = 1500).await;
    // A consultation in flight across a restart: its question still works.
    h.say("こんにちは").await;
    h.press("はい").await;
    h.stop_bot().await;
    h.start_bot().await;
    let p = h.say("株式会社リスタート").await;
    assert!(p["content"].as_str().unwrap().contains("業種"));
    let p = h.press("製造業").await;
    assert!(p["content"].as_str().unwrap().contains("都道府県"));

    // A question that was saved but never shown (the bot stopped between
    // the two) is shown again after the restart. Never shown: not recorded,
    // and not in the DM either (a question posted but not recorded is
    // found there and not asked twice, see `takeover.rs`).
    h.stop_bot().await;
    h.store.clear_live_prompt(&h.owner()).await.unwrap();
    h.discord
        .http()
        .delete_message(
            serenity::all::ChannelId::new(h.dm()),
            serenity::all::MessageId::new(id_of(&h.prompt)),
            None,
        )
        .await
        .unwrap();
    h.start_bot().await;
    let again = h.next_prompt().await;
    assert!(
        again["content"]
            .as_str()
            .unwrap()
            .contains("前回の続きから再開します"),
        "{again}"
    );
    assert!(again["content"].as_str().unwrap().contains("都道府県"));
    h.prefecture("kinki", "兵庫県").await;
    h.stop_bot().await;
    h.start_bot().await;

    // A delivery that failed once is pending at shutdown and posted once
    // after the restart.
    h.discord.fail_next(
        "POST",
        &format!("/channels/{PRO_CHANNEL}/messages"),
        500,
        json!({ "message": "oops", "code": 0 }),
        1,
    );
    h.say("30").await;
    h.press("スキップ").await;
    h.in_form("成長したい").await;
    h.choose("q:", &["hiring"]).await;
    // One area: the priority question is not asked.
    h.say("採用").await;
    h.press("スキップ").await;
    h.press("人材の採用・活用で解決したい").await;
    h.press("おおよそ決まっている").await;
    h.say("工場長").await;
    h.say("生産管理").await;
    h.say("製造業の経験").await;
    h.press("スキップ").await;
    h.choose("q:", &["fulltime"]).await;
    h.say("すぐ").await;
    h.say("佐藤花子").await;
    h.say("sato@example.jp").await;
    h.press("スキップ").await;
    h.press_only("同意して送信する").await;
    h.next_message().await;
    h.discord
        .wait_for_call(|c| {
            c.method == "POST"
                && c.path == format!("/channels/{PRO_CHANNEL}/messages")
                && c.status == 500
        })
        .await;
    let case_id = h.store.cases_of_user(&h.owner()).await.unwrap()[0].id;
    h.stop_bot().await;
    let pending = h
        .store
        .deliveries(case_id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.hub_id == "hyogo-pro")
        .unwrap();
    assert_eq!(
        (pending.status, pending.attempts),
        (DeliveryStatus::Pending, 1)
    );
    h.start_bot().await;
    h.case_post(PRO_CHANNEL).await;
    assert_eq!(h.discord.messages_in(PRO_CHANNEL).len(), 1);
    let d = h.delivered(case_id, "hyogo-pro").await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    h.finish().await;
}

/// The bot committed the owner's last answer (the case is made) and
/// stopped before sending the end: a leader killed between the two, whose
/// standby takes over. The next bot tells the owner the end, which
/// otherwise never comes (the owner's next message would go to the hub's
/// staff).
#[tokio::test]
async fn an_end_committed_but_never_sent_is_told_by_the_next_bot() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.press("はい").await;
    h.say("株式会社エンド").await;
    h.press("製造業").await;
    h.prefecture("kinki", "兵庫県").await;
    h.say("30").await;
    h.press("スキップ").await;
    h.in_form("成長したい").await;
    h.choose("q:", &["hiring"]).await;
    h.say("採用").await;
    h.press("スキップ").await;
    h.press("人材の採用・活用で解決したい").await;
    h.press("おおよそ決まっている").await;
    h.say("工場長").await;
    h.say("生産管理").await;
    h.say("製造業の経験").await;
    h.press("スキップ").await;
    h.choose("q:", &["fulltime"]).await;
    h.say("すぐ").await;
    h.say("佐藤花子").await;
    h.say("sato@example.jp").await;
    h.press("スキップ").await;
    h.stop_bot().await;
    // What the dying bot did: the owner's consent is committed (through a
    // runner on the same database), and nothing is sent.
    let runner = Runner::new(
        h.store.clone(),
        Arc::new(SystemClock),
        madoguchi::script::load_dir(&h.cfg.dialogs).unwrap(),
        discord::runner_config(&h.cfg),
    )
    .await
    .unwrap();
    let turn = runner
        .handle(&h.owner(), Input::Text("同意して送信する".into()), None)
        .await
        .unwrap();
    assert!(
        turn.effects
            .iter()
            .any(|e| matches!(e, madoguchi::engine::Effect::Finished(_))),
        "the consultation ended: {:?}",
        turn.effects
    );
    assert!(!h.store.has_open_session(&h.owner()).await.unwrap());
    drop(runner);
    h.start_bot().await;
    let told = h.next_message().await;
    assert!(
        told["content"]
            .as_str()
            .unwrap()
            .contains("ご相談いただき、ありがとうございました"),
        "{told}"
    );
    // Told once: the record says the end was shown, so the next start
    // has nothing to tell.
    h.stop_bot().await;
    assert!(h.store.live_prompt(&h.owner()).await.unwrap().is_none());
    h.finish().await;
}

#[tokio::test]
async fn consult_command_in_english_with_command_buttons_and_words() {
    let mut h = Harness::new().await;
    h.locale = "en-US";
    // /consult in a server channel: the consultation continues in DM.
    let iid = h
        .discord
        .user_runs_slash_command(Some(GUILD), LOBBY, OWNER, "consult", json!({}), "en-US")
        .await;
    h.discord
        .wait_for_call(|c| c.is("POST", "/users/@me/channels") && c.ok())
        .await;
    let first = h.next_prompt().await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 5);
    h.original_edited("direct messages").await;
    assert!(
        first["content"]
            .as_str()
            .unwrap()
            .contains("Shall we continue"),
        "{first}"
    );
    let labels: Vec<String> = components(&first)
        .iter()
        .map(|c| c["label"].as_str().unwrap_or("").to_string())
        .collect();
    for l in ["Help", "Back", "My answers", "Restart", "Cancel"] {
        assert!(labels.iter().any(|x| x == l), "{labels:?}");
    }
    let q = h.press("Yes").await;
    assert!(
        q["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("company"),
        "{q}"
    );
    // Typed command word, then the same command as a button.
    let help = h.say("help").await;
    assert!(
        help["content"].as_str().unwrap().contains("\"back\""),
        "{help}"
    );
    let back = h.press("Back").await;
    assert!(
        back["content"]
            .as_str()
            .unwrap()
            .contains("Shall we continue"),
        "{back}"
    );
    let answers = h.press("My answers").await;
    assert!(
        answers["content"]
            .as_str()
            .unwrap()
            .contains("Your answers so far"),
        "{answers}"
    );
    // Switching language with /consult lang:ja starts over in Japanese.
    h.discord
        .user_runs_slash_command(None, 0, OWNER, "consult", json!({ "lang": "ja" }), "en-US")
        .await;
    let ja = h.next_prompt().await;
    assert!(
        ja["content"].as_str().unwrap().contains("こんにちは"),
        "{ja}"
    );
    assert!(components(&ja).iter().any(|c| c["label"] == "ヘルプ"));
    h.finish().await;
}

/// `madoguchi run` itself: config file, token from the environment, a
/// consultation answered, a clean stop on SIGTERM, and no token in the log.
#[cfg(unix)]
#[tokio::test]
async fn madoguchi_run_starts_from_the_config_file_and_stops_on_sigterm() {
    let discord = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("madoguchi.toml");
    std::fs::write(
        &config,
        format!(
            "db = {:?}\ndialogs = {:?}\n[discord]\napi_base = {:?}\n[outbox]\npoll_interval_ms = 50\n",
            dir.path().join("run.db"),
            dialogs_dir(),
            discord.http_base()
        ),
    )
    .unwrap();
    let token = discord.bot_token();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["run", "--config"])
        .arg(&config)
        // The inbox (the monthly summary goes there with no admin channel)
        // in the test's folder, not the working directory.
        .arg("--inbox")
        .arg(dir.path().join("inbox"))
        .env("DISCORD_TOKEN", &token)
        .env("MADOGUCHI_LOG", "debug")
        .env_remove("MADOGUCHI_DB")
        .env_remove("MADOGUCHI_DIALOGS")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the log while the bot runs: a full pipe would stop it.
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut log).map(|_| log)
    });
    discord.wait_ready().await;
    discord.user_sends_dm(OWNER, "こんにちは").await;
    let dm = discord.dm_channel_of(OWNER).unwrap();
    let reply = discord.wait_for_call(|c| is_post(c, dm)).await;
    assert!(reply.json()["content"]
        .as_str()
        .unwrap()
        .contains("進めてよろしいですか"));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let log = log_reader.join().unwrap().unwrap();
    assert!(status.success(), "{log}");
    assert!(
        !log.contains(&token) && !log.contains(token.split('.').nth(1).unwrap()),
        "the token must never be logged"
    );
    assert!(!log.contains("こんにちは"), "owners' words are not logged");
    assert!(
        discord.stand_in_errors().is_empty(),
        "{:#?}",
        discord.stand_in_errors()
    );
}

const ADMIN: u64 = 400_000_000_000_000_009;
const ADMIN_ROLE: u64 = 100_000_000_000_000_909;

fn edit_script(dir: &std::path::Path, from: &str, to: &str) {
    let f = dir.join("first_contact.ja.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.contains(from),
        "the script no longer contains {from:?}"
    );
    crate::support::write_atomically(&f, &text.replacen(from, to, 1));
}

/// `/admin reload` is for the admin role only; a broken edit is rejected
/// with its diagnostics and the running version keeps serving; a valid one
/// is used, and both are in the audit log.
#[tokio::test]
async fn admin_reload_is_gated_checked_and_audited() {
    let dialogs = tempfile::tempdir().unwrap();
    copy_dialogs(dialogs.path());
    let dir = dialogs.path().to_path_buf();
    let h = Harness::with(|cfg| {
        cfg.dialogs = dir.clone();
        cfg.discord.admin_role = Some(ADMIN_ROLE.to_string());
        cfg.discord.watch_dialogs = false;
    })
    .await;
    h.discord.add_role(GUILD, ADMIN_ROLE, "madoguchi admin");
    h.discord.add_member(GUILD, ADMIN, "admin", &[ADMIN_ROLE]);
    let reload = json!([{ "name": "reload", "type": 1, "options": [] }]);

    // Staff without the admin role are refused.
    let iid = h
        .discord
        .user_runs_slash_command(Some(GUILD), LOBBY, STAFF_PRO, "admin", reload.clone(), "ja")
        .await;
    h.discord
        .wait_for_call(|c| c.path.starts_with(&format!("/interactions/{iid}/")))
        .await;
    let r = ephemeral_reply(&h, iid);
    assert!(r.contains("管理者ロールの方だけ"), "{r}");

    // A broken edit: rejected, with file:line:col and a fix hint.
    edit_script(&dir, "    next: industry", "    next: industri");
    let edits = h
        .discord
        .calls()
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with("/messages/@original"))
        .count();
    let iid = h
        .discord
        .user_runs_slash_command(Some(GUILD), LOBBY, ADMIN, "admin", reload.clone(), "ja")
        .await;
    h.discord
        .wait_for(|calls| {
            calls
                .iter()
                .filter(|c| {
                    c.method == "PATCH" && c.path.ends_with("/messages/@original") && c.ok()
                })
                .count()
                > edits
        })
        .await;
    assert_eq!(
        h.discord.interaction_responses(iid)[0]["type"],
        5,
        "acknowledged at once"
    );
    let text = h.discord.original_response(iid).unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("読み込みませんでした")
            && text.contains("first_contact.ja.yaml:")
            && text.contains("`industry` のことですか"),
        "{text}"
    );

    // The running version still serves a new consultation.
    let owner = UserKey::new(Transport::Discord, &OWNER.to_string()).unwrap();
    assert!(h.store.latest_session(&owner).await.unwrap().is_none());

    // A valid edit is taken.
    edit_script(&dir, "    next: industri", "    next: industry");
    edit_script(
        &dir,
        "会社名（屋号）を教えてください。",
        "貴社の正式な会社名を教えてください。",
    );
    let edits = h
        .discord
        .calls()
        .iter()
        .filter(|c| c.method == "PATCH" && c.path.ends_with("/messages/@original"))
        .count();
    let iid = h
        .discord
        .user_runs_slash_command(Some(GUILD), LOBBY, ADMIN, "admin", reload, "en-US")
        .await;
    h.discord
        .wait_for(|calls| {
            calls
                .iter()
                .filter(|c| {
                    c.method == "PATCH" && c.path.ends_with("/messages/@original") && c.ok()
                })
                .count()
                > edits
        })
        .await;
    let text = h.discord.original_response(iid).unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("reloaded") && text.contains("first_contact (ja)"),
        "{text}"
    );

    let audit = h.store.audit(None).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.action.starts_with("reload"))
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    let who = format!("discord:{ADMIN}");
    assert_eq!(
        actions,
        vec![("reload_rejected", who.as_str()), ("reload", who.as_str())]
    );
    h.finish().await;
}

/// An edit of the files is picked up by the running bot and reported in
/// the admin channel; a broken one is reported and not used.
#[tokio::test]
async fn the_running_bot_reloads_edited_files_and_reports_to_admins() {
    let dialogs = tempfile::tempdir().unwrap();
    copy_dialogs(dialogs.path());
    let dir = dialogs.path().to_path_buf();
    let h = Harness::with(|cfg| {
        cfg.dialogs = dir.clone();
        cfg.discord.admin_channel = Some(LOBBY.to_string());
        cfg.discord.watch_interval_ms = 100;
    })
    .await;
    edit_script(&dir, "    next: industry", "    next: industri");
    let call = h.posted(LOBBY, "dialogs/").await;
    let text = call.json()["content"].as_str().unwrap().to_string();
    assert!(
        text.contains("読み込みませんでした") && text.contains("industri"),
        "{text}"
    );
    assert_eq!(
        call.json()["allowed_mentions"]["parse"],
        json!([]),
        "a report pings no one"
    );

    // Mend the edit and change a question in one write, so the watcher sees
    // one new version.
    let f = dir.join("first_contact.ja.yaml");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replacen("    next: industri", "    next: industry", 1)
        .replacen(
            "会社名（屋号）を教えてください。",
            "貴社の正式な会社名を教えてください。",
            1,
        );
    crate::support::write_atomically(&f, &text);
    let call = h.posted(LOBBY, "再読み込みしました").await;
    assert!(call.json()["content"]
        .as_str()
        .unwrap()
        .contains("first_contact (ja)"));
    h.finish().await;
}

// From dialogs/routing.yaml (northern Kyoto, the guide's case 4).
const KYOTO_BANK_CHANNEL: u64 = 100_000_000_000_000_123;

/// The text of every DM message the bot sent after `after` (by id).
fn dm_text_after(h: &Harness, after: &Value) -> String {
    h.discord
        .messages_in(h.dm())
        .iter()
        .filter(|m| id_of(m) > id_of(after))
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An owner in Ayabe consults by typing natural answers: an industry
/// sentence, a municipality, partial multiple choices finished by a press
/// and by 「以上」, a period; at the confirmation (which is the consent
/// screen) they ask why these recipients by button, get the reason in a
/// short message with the buttons still there, and agree.
#[tokio::test]
async fn typed_natural_answers_reach_the_sheet_and_buttons_stay() {
    let mut h = Harness::new().await;
    h.say("こんにちは").await;
    h.say("はい").await;
    let industry_q = h.say("株式会社あやべ陶房").await;
    assert!(
        components(&industry_q)
            .iter()
            .any(|c| c["label"] == "製造業"),
        "the industry question keeps its buttons: {industry_q}"
    );
    let pref_q = h.say("陶器の製造業です").await;
    component_of(&pref_q, "p:"); // the region menu stays for the next question
    let employees_q = h.say("綾部市").await;
    assert!(
        !employees_q["content"]
            .as_str()
            .unwrap()
            .contains("都道府県"),
        "the municipality was understood: {employees_q}"
    );
    h.say("12名").await;
    h.press("スキップ").await; // capital (optional)
    let areas_q = h.say("地域の土で、長く使われる器をつくり続けたい").await;
    component_of(&areas_q, "q:");

    // A multiple choice with one word that fits no option: what was
    // understood is kept, the rest asked about, and the menu stays.
    let partial = h.say("販路拡大、人手不足、インターン").await;
    let text = partial["content"].as_str().unwrap();
    assert!(text.contains("承りました"), "{partial}");
    assert!(text.contains("インターン"), "{partial}");
    let menu = component_of(&partial, "q:");
    assert!(
        menu["options"].as_array().unwrap().len() >= 9,
        "the whole menu is offered: {menu}"
    );
    // The owner then picks the rest in the menu: the typed picks are kept.
    h.choose("q:", &["it"]).await; // → issue_detail
    let session = h.store.open_session(&h.owner()).await.unwrap().unwrap();
    let answers = h.store.answers(session.id).await.unwrap();
    let areas = answers
        .iter()
        .rev()
        .find(|a| a.node == "issue_areas")
        .expect("issue_areas recorded");
    assert_eq!(
        areas.value,
        Some(madoguchi::answer::AnswerValue::Multi(vec![
            "sales".into(),
            "it".into(),
            "hiring".into()
        ])),
        "typed picks and the pressed one together"
    );

    h.say("若い職人が集まらず、ネット販売の担い手もいない")
        .await;
    h.say("採用です").await; // issue_priority
    h.press("スキップ").await; // tried
    h.say("人材で解決したい").await; // people_part
    h.say("だいたい決まってる").await; // talent_clear
    h.say("EC担当").await;
    h.say("オンラインショップの立ち上げと運営").await;
    h.say("EC運営の経験").await;
    let style_q = h.press("スキップ").await; // talent_nice
    component_of(&style_q, "q:");
    let partial = h.say("副業と、インターン").await;
    assert!(
        partial["content"].as_str().unwrap().contains("以上"),
        "{partial}"
    );
    component_of(&partial, "q:");
    h.say("以上").await; // → talent_timing
    h.say("なるべく早く").await;
    h.say("綾部 花子").await;
    let phone_q = h.say("hanako@ayabe-toubou.example.jp").await;
    let confirm = h.press("スキップ").await;
    let screen = dm_text_after(&h, &phone_q);
    assert!(screen.contains("企業情報シート"), "{screen}");
    assert!(screen.contains("綾部市"), "{screen}");
    assert!(screen.contains("京都北都信用金庫"), "{screen}");
    for label in [
        "同意して送信する",
        "同意しない（送らない）",
        "送付先の理由を見る",
    ] {
        component_of(&confirm, label);
    }

    // "Why": the reason, one line to ask again, the same buttons; the
    // screen is not sent again.
    let why = h.press("送付先の理由を見る").await;
    let text = dm_text_after(&h, &confirm);
    assert!(text.contains("京都北都信用金庫"), "{text}");
    assert!(
        !text.contains("企業情報シート"),
        "the screen was resent: {text}"
    );
    assert!(
        text.chars().count() < 1500,
        "a short answer, not the screen: {text}"
    );
    for label in [
        "同意して送信する",
        "同意しない（送らない）",
        "送付先の理由を見る",
    ] {
        component_of(&why, label);
    }
    h.press_only("同意して送信する").await;
    let done = h.next_message().await;
    assert!(
        done["content"].as_str().unwrap().contains("お送りしました"),
        "{done}"
    );

    // What was recorded.
    let cases = h.store.cases_of_user(&h.owner()).await.unwrap();
    let case = cases.last().expect("a case");
    assert_eq!(case.hub_id, "kyoto-bank");
    let answers = h.store.answers(case.session).await.unwrap();
    let last = |node: &str| {
        answers
            .iter()
            .rev()
            .find(|a| a.node == node)
            .and_then(|a| a.value.clone())
            .unwrap_or_else(|| panic!("no answer to {node}"))
    };
    use madoguchi::answer::AnswerValue;
    match last("industry") {
        AnswerValue::Industry { option, class } => {
            assert_eq!(option, "manufacturing");
            assert!(!class.is_empty());
        }
        v => panic!("industry: {v:?}"),
    }
    assert!(
        format!("{:?}", last("prefecture")).contains("綾部市"),
        "{:?}",
        last("prefecture")
    );
    assert_eq!(
        last("talent_style"),
        AnswerValue::Multi(vec!["side_job".into()])
    );
    match last("talent_timing") {
        AnswerValue::Period(p) => assert_eq!(p.words, "なるべく早く"),
        v => panic!("talent_timing: {v:?}"),
    }
    assert_eq!(last("consent"), AnswerValue::Bool(true));

    // The case post in the hub's channel.
    let post = h.case_post(KYOTO_BANK_CHANNEL).await;
    let mut sheet = post["content"].as_str().unwrap().to_string();
    for e in post["embeds"].as_array().into_iter().flatten() {
        sheet.push_str(&e.to_string());
    }
    assert!(sheet.contains("（製造業）"), "{post}");
    assert!(sheet.contains("陶"), "{post}");
    assert!(sheet.contains("綾部市"), "{post}");
    assert!(sheet.contains("なるべく早く"), "{post}");
    h.finish().await;
}

/// A case left unclaimed past its limits (it arrived in January, so the
/// limits have passed whatever the date is) is reminded in the hub's
/// channel pinging the staff role only, and escalated to the network
/// desk's channel without the sheet (the consent names only the hub); a
/// restart does not post either again.
#[tokio::test]
async fn an_unclaimed_case_is_reminded_and_escalated_once() {
    const DESK_CHANNEL: u64 = 100_000_000_000_000_199;
    const DESK_ROLE: u64 = 100_000_000_000_000_299;
    // The cases are written straight into the store (not handed over by
    // the runner, which schedules their timers): the loop's backstop sync,
    // every second here, finds them.
    let mut h = Harness::with(|cfg| {
        cfg.reminders.tick_secs = 1;
        cfg.reminders.sync_secs = 1;
    })
    .await;
    let jan =
        |d: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 1, d, 1, 0, 0).unwrap();
    let a = crate::store_story::seed_case(&*h.store, "rem-a", "hyogo-pro", &["hyogo-pro"], jan(5))
        .await;
    let reminder = h.posted(PRO_CHANNEL, "督促").await;
    let body = reminder.json();
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<@&{PRO_ROLE}> ")),
        "{body}"
    );
    assert!(
        body["content"].as_str().unwrap().contains(&a.to_string()),
        "{body}"
    );
    assert_eq!(
        body["allowed_mentions"]["roles"],
        json!([PRO_ROLE.to_string()])
    );
    let esc = h.posted(DESK_CHANNEL, "エスカレーション").await;
    let body = esc.json();
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<@&{DESK_ROLE}> ")),
        "{body}"
    );
    assert!(
        body["content"].as_str().unwrap().contains("共有しません"),
        "{body}"
    );
    h.stop_bot().await;
    h.start_bot().await;
    // A second case after the restart: its reminder comes from a tick that
    // would also have posted the first case's again.
    let b = crate::store_story::seed_case(&*h.store, "rem-b", "hyogo-pro", &["hyogo-pro"], jan(6))
        .await;
    h.posted(PRO_CHANNEL, &b.to_string()).await;
    h.posted(DESK_CHANNEL, &b.to_string()).await;
    let count = |channel: u64, text: &str| {
        h.discord
            .calls()
            .iter()
            .filter(|c| is_post(c, channel) && content_has(c, text))
            .count()
    };
    assert_eq!(count(PRO_CHANNEL, &a.to_string()), 1);
    assert_eq!(count(DESK_CHANNEL, &a.to_string()), 1);
    // Nothing of the sheet went to the desk.
    assert_eq!(count(DESK_CHANNEL, "企業情報シート】"), 0);
    h.finish().await;
}

// ------------------------------------------------- across platforms

/// An owner on Discord whose case goes to a hub on Slack, in one process
/// with both platforms and one outbox (as `madoguchi run` starts them):
/// the owner's later DM reaches the Slack thread, and the Slack staff's
/// reply reaches the owner's Discord DM, through the relay's outbox.
const S_STAFF: &str = "U0STAFF001";
const S_PRO: &str = "C0PRO00001";
const S_GROUP: &str = "S0PROSTAF1";

/// The Slack side of a cross-platform test: the stand-in, the app and the
/// one outbox (with both senders) running beside the Discord bot.
struct SlackSide {
    slack: slack_standin::SlackStandIn,
    app: madoguchi::slack::RunningSlack,
    stop: tokio::sync::watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl SlackSide {
    async fn finish(self) {
        self.app.shutdown().await;
        let _ = self.stop.send(true);
        let _ = self.worker.await;
        assert!(
            self.slack.stand_in_errors().is_empty(),
            "{:?}",
            self.slack.stand_in_errors()
        );
    }
}

/// A Discord bot whose pro-talent hub works on Slack only (the chamber
/// stays on Discord), in one process with the Slack app and one outbox
/// with both senders, as `madoguchi run` starts them.
async fn discord_owner_slack_hub() -> (Harness, SlackSide) {
    let slack = slack_standin::SlackStandIn::start().await;
    slack.add_user(S_STAFF, "pro-staff");
    slack.add_channel(S_PRO, "hyogo-pro", &[S_STAFF]);
    slack.add_usergroup(S_GROUP, "hyogo-pro-staff", &[S_STAFF]);
    // The pro-talent hub works on Slack only; the chamber (a copy) stays
    // on Discord.
    let dir = tempfile::tempdir().unwrap();
    let dialogs = dir.path().join("dialogs");
    std::fs::create_dir_all(&dialogs).unwrap();
    copy_dialogs(&dialogs);
    let routing = std::fs::read_to_string(dialogs.join("routing.yaml")).unwrap();
    let edited = routing.replacen(
        r#"      discord: { channel: "100000000000000101", staff_role: "100000000000000201" }"#,
        &format!("      slack: {{ channel: {S_PRO}, staff: {S_GROUP} }}"),
        1,
    );
    assert_ne!(edited, routing);
    std::fs::write(dialogs.join("routing.yaml"), edited).unwrap();
    let wake = Arc::new(tokio::sync::Notify::new());
    let (d, w) = (dialogs.clone(), wake.clone());
    let h = Harness::with_transports(
        move |cfg| {
            cfg.dialogs = d;
            cfg.deliveries = discord::Deliveries::Elsewhere(w);
        },
        vec!["slack".into()],
    )
    .await;
    // The Slack app and the one outbox with both senders.
    let mut scfg = madoguchi::slack::SlackConfig::from_vars(|k| match k {
        "SLACK_BOT_TOKEN" => Some(slack.bot_token_value()),
        "SLACK_APP_TOKEN" => Some(slack.app_token_value()),
        "SLACK_API_BASE" => Some(slack.api_url()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    scfg.dialogs = dialogs.clone();
    let mut rc = discord::runner_config(&h.cfg);
    rc.transports.push("slack".into());
    let runner = Arc::new(
        Runner::new(
            h.store.clone(),
            Arc::new(SystemClock),
            madoguchi::script::load_dir(&dialogs).unwrap(),
            rc,
        )
        .await
        .unwrap(),
    );
    let token = Token::new(&h.discord.bot_token()).unwrap();
    let outbox = Arc::new(
        madoguchi::outbox::Outbox::new(
            h.store.clone(),
            runner.clock().clone(),
            h.cfg.outbox.clone(),
        )
        .with_wake(wake.clone())
        .with_sender(madoguchi::slack::sender(&scfg, runner.clone()).unwrap())
        .with_sender(discord::sender(&h.cfg, &token, runner.clone())),
    );
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(outbox.run(rx));
    let app = madoguchi::slack::start(
        scfg,
        runner,
        madoguchi::slack::Deliveries::Elsewhere(wake),
        h.cfg.outbox.clone(),
    )
    .await
    .unwrap();
    slack.wait_connected().await;
    (
        h,
        SlackSide {
            slack,
            app,
            stop,
            worker,
            _dir: dir,
        },
    )
}

#[tokio::test]
async fn a_discord_owner_and_a_slack_hub_relay_both_ways() {
    let (mut h, side) = discord_owner_slack_hub().await;
    let slack = &side.slack;

    let case = h.consult("株式会社クロスプラットフォーム").await;
    let posts = slack
        .wait_for(|_| {
            slack
                .messages_in(S_PRO)
                .iter()
                .any(|m| m["metadata"]["event_type"] == "madoguchi_case")
        })
        .await;
    drop(posts);
    let post = slack
        .messages_in(S_PRO)
        .into_iter()
        .find(|m| m["metadata"]["event_type"] == "madoguchi_case")
        .unwrap();
    let ts = post["ts"].as_str().unwrap().to_string();
    h.case_post(CHAMBER_CHANNEL).await;

    // Owner (Discord) → staff (Slack thread), inert there.
    h.discord
        .user_sends_dm(OWNER, "来週なら時間があります <!channel> @everyone")
        .await;
    let in_thread = |text: &str| {
        slack
            .thread(S_PRO, &ts)
            .into_iter()
            .skip(1)
            .find(|m| m["text"].as_str().unwrap_or("").contains(text))
    };
    slack
        .wait_for(|_| in_thread("来週なら時間があります").is_some())
        .await;
    let note = in_thread("来週なら時間があります").unwrap();
    assert!(
        !note["text"].as_str().unwrap().contains("<!channel>"),
        "{note}"
    );

    // Staff (Slack) → owner (Discord DM).
    let env = slack
        .user_runs_slash_command(
            S_STAFF,
            S_PRO,
            "/madoguchi",
            &format!("reply {case} 火曜14時に伺います @everyone"),
        )
        .await;
    slack.wait_for_ack(&env).await;
    let dm = h.dm();
    let sent = h.posted(dm, "火曜14時に伺います").await;
    let body = sent.body.clone().unwrap();
    assert_eq!(body["allowed_mentions"]["parse"], json!([]), "{body}");
    slack
        .wait_for(|_| in_thread("火曜14時に伺います").is_some())
        .await;

    let actions = h.audit_actions(case).await;
    assert!(
        actions.contains(&"relay_to_staff".to_string())
            && actions.contains(&"relay_to_owner".to_string()),
        "{actions:?}"
    );
    side.finish().await;
    h.finish().await;
}

/// An owner on Discord whose case went to a hub on Slack forgets on
/// Discord: the Slack case post becomes a tombstone (no sheet, no company
/// name, no buttons), and the rest of the long sheet and the owner's
/// relayed message are deleted from its thread, by the Slack sender
/// through the outbox (an erase job).
#[tokio::test]
async fn a_discord_owner_who_forgets_is_erased_from_a_slack_hub_too() {
    let (mut h, side) = discord_owner_slack_hub().await;
    let slack = &side.slack;
    let company = "株式会社ワスレルクロス";
    let must = "法人営業の経験5年以上、チームを率いた経験。".repeat(80);
    let case = h
        .consult_with(
            company,
            &"地域でいちばん信頼される工場にしたい。".repeat(100),
            &"新規顧客の開拓とチームづくり。".repeat(100),
            &must,
            |_| {},
        )
        .await;
    slack
        .wait_for(|_| {
            slack
                .messages_in(S_PRO)
                .iter()
                .any(|m| m["metadata"]["event_type"] == "madoguchi_case")
        })
        .await;
    let post = slack
        .messages_in(S_PRO)
        .into_iter()
        .find(|m| m["metadata"]["event_type"] == "madoguchi_case")
        .unwrap();
    let ts = post["ts"].as_str().unwrap().to_string();
    assert!(slack_text(&post).contains(company), "{post}");
    // The long sheet continues in the thread.
    slack
        .wait_for(|_| {
            slack.thread(S_PRO, &ts).iter().skip(1).any(|m| {
                m["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("チームを率いた経験。")
            })
        })
        .await;
    h.case_post(CHAMBER_CHANNEL).await;
    // The owner's later message goes into the Slack thread.
    h.discord
        .user_sends_dm(OWNER, "来週なら時間があります、山田の携帯は090-0000-0000")
        .await;
    slack
        .wait_for(|_| {
            slack
                .thread(S_PRO, &ts)
                .iter()
                .skip(1)
                .any(|m| m["text"].as_str().unwrap_or("").contains("090-0000-0000"))
        })
        .await;

    forget_by_slash_command(&mut h).await;

    let owners_words = |m: &Value| {
        let t = slack_text(m);
        t.contains(company) || t.contains("チームを率いた経験。") || t.contains("090-0000-0000")
    };
    slack
        .wait_for(|_| {
            let th = slack.thread(S_PRO, &ts);
            !th.is_empty() && !th.iter().any(&owners_words)
        })
        .await;
    let post = slack.message(&ts).unwrap();
    assert!(
        post.get("standin_deleted").is_none(),
        "the post stays, as a tombstone: {post}"
    );
    let text = slack_text(&post);
    assert!(
        text.contains(&case.to_string()) && !text.contains(company),
        "{post}"
    );
    assert!(
        slack_standin::elements(&post["blocks"]).is_empty(),
        "no buttons are left on the tombstone: {post}"
    );
    // Every message of the channel, thread replies included: nothing of
    // the owner's words is left.
    let left: Vec<Value> = slack.all_messages_in(S_PRO);
    assert!(!left.iter().any(owners_words), "{left:#?}");
    // The erase job ran once and holds no ids any more (its outcome is
    // recorded just after its last call).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let rs = loop {
        let rs = h.store.relays_of_case(case).await.unwrap();
        if rs.iter().all(|r| r.status != DeliveryStatus::Pending) {
            break rs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let erase: Vec<_> = rs.iter().filter(|r| r.kind.name() == "erase").collect();
    assert_eq!(erase.len(), 1, "{rs:#?}");
    assert_eq!(erase[0].transport, "slack");
    assert!(
        erase[0].status == DeliveryStatus::Delivered && erase[0].body.is_none(),
        "{rs:#?}"
    );
    side.finish().await;
    h.finish().await;
}

/// Every text of a Slack message: its notification text and its blocks'.
fn slack_text(m: &Value) -> String {
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

// ------------------------------------------- case posts kept up to date

/// An edit of Discord message `message` whose body satisfies `f`.
fn edit_of(c: &RecordedCall, message: u64, f: impl Fn(&Value) -> bool) -> bool {
    c.method == "PATCH"
        && c.path.ends_with(&format!("/messages/{message}"))
        && c.ok()
        && f(c.json())
}

/// The custom ids of a message's buttons.
fn button_ids(m: &Value) -> Vec<String> {
    components(m)
        .iter()
        .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
        .collect()
}

/// Waits until every relay row of the case is sent or failed.
async fn relays_done(h: &Harness, case: CaseId) -> Vec<madoguchi::store::RelayRecord> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let rs = h.store.relays_of_case(case).await.unwrap();
        if rs.iter().all(|r| r.status != DeliveryStatus::Pending) {
            return rs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A claim and a forward made with `madoguchi cases` beside the running
/// bot show on the case's Discord posts as they would after the buttons:
/// the claimed status and the Release button on the working post (and
/// the status on the chamber's copy), then after the forward the old
/// post as a copy without buttons and the chamber's copy as the working
/// post with Claim. The edits are refresh jobs in the relay's outbox,
/// one per action and platform.
#[tokio::test]
async fn cases_claim_and_forward_from_the_terminal_update_the_discord_posts() {
    let mut h = Harness::new().await;
    let case = h.consult("株式会社ターミナル更新").await;
    let post = id_of(&h.case_post(PRO_CHANNEL).await);
    let copy = id_of(&h.case_post(CHAMBER_CHANNEL).await);
    h.delivered(case, "hyogo-pro").await;
    h.delivered(case, "hyogo-chamber").await;
    let id = case.0;
    let (db, dialogs) = (h.cfg.db.clone(), h.cfg.dialogs.clone());
    let cid = case.to_string();

    let out =
        crate::support::cases_cli(&db, &dialogs, &["claim", &cid, "--hub", "hyogo-pro"]).await;
    assert!(out.contains("claimed by cli:tanaka"), "{out}");
    let claimed = |b: &Value| b["embeds"][0]["fields"].to_string().contains("cli:tanaka");
    h.discord
        .wait_for_call(|c| edit_of(c, post, |b| claimed(b)))
        .await;
    h.discord
        .wait_for_call(|c| edit_of(c, copy, |b| claimed(b)))
        .await;
    let now = h.discord.message(post).unwrap();
    let ids = button_ids(&now);
    assert!(ids.contains(&format!("s:release:{id}")), "{now}");
    assert!(!ids.contains(&format!("s:claim:{id}")), "{now}");
    assert!(button_ids(&h.discord.message(copy).unwrap()).is_empty());
    // The note reaches the thread too.
    h.thread_note(post, "cli:tanaka").await;

    let out = crate::support::cases_cli(
        &db,
        &dialogs,
        &[
            "forward",
            &cid,
            "--hub",
            "hyogo-pro",
            "--to",
            "hyogo-chamber",
            "--reason",
            "商工会の伴走が適切",
        ],
    )
    .await;
    assert!(out.contains("hub hyogo-chamber"), "{out}");
    h.discord
        .wait_for_call(|c| {
            edit_of(c, copy, |b| {
                b.to_string().contains(&format!("s:claim:{id}"))
            })
        })
        .await;
    h.discord
        .wait_for_call(|c| {
            edit_of(c, post, |b| {
                b["components"] == json!([])
                    && b["content"].as_str().is_some_and(|t| t.contains("写し"))
            })
        })
        .await;
    let text = |m: u64| h.discord.message(m).unwrap()["content"].to_string();
    assert!(
        text(copy).contains("引き継がれた案件です"),
        "{}",
        text(copy)
    );
    assert!(!text(copy).contains("写し"), "{}", text(copy));
    // The chamber already had its copy: no second case post there.
    assert_eq!(
        h.discord
            .calls()
            .iter()
            .filter(|c| is_post(c, CHAMBER_CHANNEL) && c.json().get("embeds").is_some())
            .count(),
        1
    );
    let rs = relays_done(&h, case).await;
    let refresh: Vec<_> = rs.iter().filter(|r| r.kind.name() == "refresh").collect();
    assert_eq!(refresh.len(), 2, "one per action: {rs:#?}");
    // Its post is only edited, so the chamber's staff role is pinged once
    // more, by the relayed note in the case's thread (as the Discord
    // button's forward pings it), and no other role is.
    let pings: Vec<_> = h
        .discord
        .calls()
        .into_iter()
        .filter(|c| {
            c.method == "POST"
                && c.ok()
                && !is_post(c, PRO_CHANNEL)
                && !is_post(c, CHAMBER_CHANNEL)
                && c.json()["content"]
                    .as_str()
                    .is_some_and(|t| t.contains("<@&"))
        })
        .collect();
    assert_eq!(pings.len(), 1, "{pings:#?}");
    let ping = pings[0].json();
    assert!(
        ping["content"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<@&{CHAMBER_ROLE}> ")),
        "{ping}"
    );
    assert_eq!(
        ping["allowed_mentions"],
        json!({ "parse": [], "roles": [CHAMBER_ROLE.to_string()] }),
        "{ping}"
    );
    assert!(
        refresh
            .iter()
            .all(|r| r.transport == "discord" && r.status == DeliveryStatus::Delivered),
        "{rs:#?}"
    );
    // Staff of the chamber can work the case from its post.
    let iid = h
        .press_staff(
            CHAMBER_CHANNEL,
            copy,
            STAFF_CHAMBER,
            &format!("s:claim:{id}"),
        )
        .await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 7);
    h.finish().await;
}

/// A case whose pro-talent hub is on Slack and whose chamber copy is on
/// Discord: a claim with the Slack button shows on the Discord copy, and
/// a forward on Slack to the chamber makes the Discord copy the working
/// post (with Claim), through refresh jobs for Discord.
#[tokio::test]
async fn a_claim_and_a_forward_on_slack_show_on_the_discord_copy() {
    let (mut h, side) = discord_owner_slack_hub().await;
    let slack = &side.slack;
    let case = h.consult("株式会社リョウホウ").await;
    let id = case.0;
    slack
        .wait_for(|_| {
            slack
                .messages_in(S_PRO)
                .iter()
                .any(|m| m["metadata"]["event_type"] == "madoguchi_case")
        })
        .await;
    let ts = slack
        .messages_in(S_PRO)
        .into_iter()
        .find(|m| m["metadata"]["event_type"] == "madoguchi_case")
        .unwrap()["ts"]
        .as_str()
        .unwrap()
        .to_string();
    let copy = id_of(&h.case_post(CHAMBER_CHANNEL).await);
    h.delivered(case, "hyogo-pro").await;

    let env = slack
        .user_clicks_button(S_STAFF, S_PRO, &ts, &format!("s:claim:{id}"))
        .await;
    slack.wait_for_ack(&env).await;
    h.discord
        .wait_for_call(|c| {
            edit_of(c, copy, |b| {
                b["embeds"][0]["fields"].to_string().contains(S_STAFF)
            })
        })
        .await;
    assert!(button_ids(&h.discord.message(copy).unwrap()).is_empty());

    // Forward on Slack to the chamber (within the owner's consent).
    let env = slack
        .user_clicks_button(S_STAFF, S_PRO, &ts, &format!("s:fwd:{id}"))
        .await;
    slack.wait_for_ack(&env).await;
    let view = slack.wait_for_view(S_STAFF).await;
    let env = slack
        .user_submits_modal(
            S_STAFF,
            &view.id,
            json!({ "hub": "hyogo-chamber", "text": "商工会の伴走が適切" }),
        )
        .await;
    slack.wait_for_ack(&env).await;
    h.discord
        .wait_for_call(|c| {
            edit_of(c, copy, |b| {
                b.to_string().contains(&format!("s:claim:{id}"))
                    && b["content"]
                        .as_str()
                        .is_some_and(|t| t.contains("引き継がれた案件です"))
            })
        })
        .await;
    assert_eq!(
        h.store.case(case).await.unwrap().unwrap().hub_id,
        "hyogo-chamber"
    );
    let rs = relays_done(&h, case).await;
    let refresh: Vec<_> = rs.iter().filter(|r| r.kind.name() == "refresh").collect();
    assert!(
        !refresh.is_empty()
            && refresh
                .iter()
                .all(|r| r.transport == "discord" && r.status == DeliveryStatus::Delivered),
        "{rs:#?}"
    );
    // The chamber's staff work it from the Discord post.
    let iid = h
        .press_staff(
            CHAMBER_CHANNEL,
            copy,
            STAFF_CHAMBER,
            &format!("s:claim:{id}"),
        )
        .await;
    assert_eq!(h.discord.interaction_responses(iid)[0]["type"], 7);
    side.finish().await;
    h.finish().await;
}
