//! Step 5, following up after a match: driven by a fixed clock, across
//! restarts (the store and the runner opened anew between ticks), on each
//! backend. Each follow-up is offered exactly once and reminded at most
//! once; a declined or unanswered one is recorded; the step-5 hub receives
//! the answers only with the owner's consent, through the outbox, with a
//! consent record naming it.

use crate::on_both_backends;
use crate::support::db::{AnyStore, TestDb};
use crate::support::{dialogs_dir, t0};
use chrono::{DateTime, Duration, Utc};
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::engine::Input;
use madoguchi::followup::{self, Tick};
use madoguchi::runner::{Clock, FixedClock, Runner, RunnerConfig, Turn};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::{CaseChange, FollowUpStatus, Store};
use std::sync::Arc;

on_both_backends!(a_match_is_followed_up_once_per_interval_across_restarts);
on_both_backends!(declining_stops_the_later_follow_ups);
on_both_backends!(an_unanswered_follow_up_is_reminded_once_then_recorded);
on_both_backends!(without_consent_the_step5_hub_receives_nothing);
on_both_backends!(english_owner_gets_the_english_follow_up);

/// One process's view: a store opened anew and a runner on the shipped
/// dialogs, at the clock's time.
struct Bot {
    store: AnyStore,
    runner: Runner,
    clock: Arc<FixedClock>,
}

async fn open(db: &TestDb, at: DateTime<Utc>) -> Bot {
    let store = db.open().await;
    let clock = Arc::new(FixedClock::new(at));
    let runner = Runner::new(
        store.arc(),
        clock.clone(),
        load_dir(&dialogs_dir()).unwrap(),
        RunnerConfig::default(),
    )
    .await
    .unwrap();
    Bot {
        store,
        runner,
        clock,
    }
}

impl Bot {
    async fn say(&self, user: &UserKey, text: &str) -> Turn {
        self.clock.advance(Duration::seconds(20));
        self.runner
            .handle(user, Input::Text(text.into()), None)
            .await
            .unwrap()
    }

    async fn tick(&self) -> Tick {
        let policy = followup::policy(&self.runner.bundle()).expect("the dialogs offer follow-ups");
        followup::tick(self.store.arc().as_ref(), &policy, self.clock.now())
            .await
            .unwrap()
    }

    async fn close(self) {
        self.runner.store().close().await.unwrap();
        self.store.close().await;
    }
}

fn text(t: &Turn) -> String {
    madoguchi::chat::render_effects(&t.effects, t.flow.lang)
}

/// Runs the owner's inputs of a transcript in `dialogs/tests/` (a first
/// consultation) and returns the case it created.
async fn consult(bot: &Bot, user: &UserKey, transcript: &str) -> CaseId {
    let t = madoguchi::transcript::parse(
        &std::fs::read_to_string(dialogs_dir().join("tests").join(transcript)).unwrap(),
    )
    .unwrap();
    let lang = Lang::parse(&t.lang);
    let mut case = None;
    for s in &t.steps {
        let input = if s.value.start {
            Input::Start
        } else {
            Input::Text(s.value.owner.clone().expect("owner steps only"))
        };
        bot.clock.advance(Duration::seconds(20));
        let turn = bot.runner.handle(user, input, lang).await.unwrap();
        case = case.or(turn.case);
    }
    case.expect("the consultation created a case")
}

fn owner(n: &str) -> UserKey {
    UserKey::new(Transport::Terminal, n).unwrap()
}

async fn close_as(bot: &Bot, case: CaseId, outcome: &str) {
    bot.store
        .update_case(
            case,
            &CaseChange::Close {
                outcome: outcome.into(),
            },
            "discord:42",
            bot.clock.now(),
        )
        .await
        .unwrap();
}

async fn statuses(store: &dyn Store, case: CaseId) -> Vec<FollowUpStatus> {
    store
        .follow_ups_of_case(case)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.status)
        .collect()
}

/// The set-up most tests share: `user` consults by `transcript`, staff
/// close the case with `outcome` (a match), and a tick schedules its
/// follow-ups. The bot is closed afterwards (what follows is a restart);
/// returns the case and the first follow-up's due time.
async fn matched_case(
    db: &TestDb,
    user: &UserKey,
    transcript: &str,
    outcome: &str,
) -> (CaseId, DateTime<Utc>) {
    let bot = open(db, t0()).await;
    let case = consult(&bot, user, transcript).await;
    close_as(&bot, case, outcome).await;
    assert_eq!(bot.tick().await.scheduled, vec![case]);
    let due = bot.store.follow_ups_of_case(case).await.unwrap()[0].due_at;
    bot.close().await;
    (case, due)
}

/// A restart at `at`, when one follow-up is due: the tick offers it.
async fn open_offered(db: &TestDb, at: DateTime<Utc>) -> Bot {
    let bot = open(db, at).await;
    assert_eq!(bot.tick().await.offered.len(), 1);
    bot
}

/// Starts the owner's waiting follow-up as an adapter does when it is due.
async fn start_waiting(bot: &Bot, user: &UserKey) -> Turn {
    let f = followup::waiting_for(bot.store.arc().as_ref(), user)
        .await
        .unwrap()
        .expect("a follow-up waits for the owner");
    followup::start(&bot.runner, &f)
        .await
        .unwrap()
        .expect("the owner is free, so the follow-up starts")
}

async fn a_match_is_followed_up_once_per_interval_across_restarts(db: TestDb) {
    let user = owner("hyogo-seiki");
    let bot = open(&db, t0()).await;
    let case = consult(&bot, &user, "01_full_hyogo_talent.yaml").await;
    // The consent the owner gave names the step-5 hub, and the case keeps it.
    let consents = bot.store.consents(&user).await.unwrap();
    let given = consents.iter().find(|c| c.granted).unwrap();
    assert!(
        given
            .wording
            .contains("定着支援の担当として兵庫県商工会連合会にお送りします"),
        "{}",
        given.wording
    );
    let c = bot.store.case(case).await.unwrap().unwrap();
    assert_eq!(c.route.follow_up.as_ref().unwrap().id, "hyogo-chamber");
    // Not closed yet: nothing is scheduled.
    assert_eq!(bot.tick().await, Tick::default());
    bot.clock.advance(Duration::days(20));
    close_as(&bot, case, "採用決定（営業部長 1名）").await;
    let closed_at = bot.store.case(case).await.unwrap().unwrap().updated_at;
    let first = bot.tick().await;
    assert_eq!(first.scheduled, vec![case]);
    assert!(first.offered.is_empty());
    let fus = bot.store.follow_ups_of_case(case).await.unwrap();
    assert_eq!(
        fus.iter().map(|f| f.due_at).collect::<Vec<_>>(),
        followup::due_times(&followup::policy(&bot.runner.bundle()).unwrap(), closed_at)
    );
    assert_eq!(fus.len(), 2);
    // Scheduling again (a second tick, a second instance) adds nothing.
    assert_eq!(bot.tick().await, Tick::default());
    let due1 = fus[0].due_at;
    let due2 = fus[1].due_at;
    bot.close().await;

    // A day before it is due, after a restart: nothing happens.
    let bot = open(&db, due1 - Duration::days(1)).await;
    assert_eq!(bot.tick().await, Tick::default());
    bot.close().await;

    // Due, after another restart: offered once, however often the tick runs.
    let bot = open(&db, due1).await;
    let t = bot.tick().await;
    assert_eq!(t.offered.len(), 1);
    assert_eq!(t.offered[0].seq, 1);
    assert_eq!(bot.tick().await, Tick::default());
    bot.close().await;
    let bot = open(&db, due1 + Duration::hours(1)).await;
    assert_eq!(bot.tick().await, Tick::default());

    // The owner answers, and agrees to send.
    let turn = start_waiting(&bot, &user).await;
    assert_eq!(turn.flow.script_id, "follow_up");
    assert!(
        text(&turn).contains("おたずねしてもよろしいですか"),
        "{}",
        text(&turn)
    );
    bot.say(&user, "答える").await;
    bot.say(&user, "1").await;
    bot.say(&user, "営業の引き継ぎが進んでいる").await;
    bot.say(&user, "続ける").await;
    let confirm = bot.say(&user, "販路をもう一段広げたい").await;
    let shown = text(&confirm);
    assert!(shown.contains("兵庫県商工会連合会"), "{shown}");
    assert!(shown.contains("順調に活躍している"), "{shown}");
    let sent = bot.say(&user, "同意して送信").await;
    assert!(
        text(&sent).contains("兵庫県商工会連合会へフォローアップのご回答をお送りしました"),
        "{}",
        text(&sent)
    );
    let answer_case = sent
        .case
        .expect("the answers became a case for the step-5 hub");
    let ac = bot.store.case(answer_case).await.unwrap().unwrap();
    assert_eq!(ac.hub_id, "hyogo-chamber");
    assert_eq!(ac.step, 5);
    assert_eq!(ac.route.rule, followup::RULE);
    assert!(ac.summary_plain.contains("販路をもう一段広げたい"));
    assert!(ac
        .summary_plain
        .contains(&format!("案件 {case} の採用後フォローアップ（1回目）")));
    let to: Vec<_> = bot
        .store
        .deliveries(answer_case)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.hub_id)
        .collect();
    assert_eq!(to, ["hyogo-chamber"]);
    let consent = bot
        .store
        .consents(&user)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.case == Some(answer_case))
        .expect("a consent record for the follow-up's delivery");
    assert!(consent.granted);
    assert_eq!(
        consent
            .recipients
            .iter()
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>(),
        ["hyogo-chamber"]
    );
    let f1 = &bot.store.follow_ups_of_case(case).await.unwrap()[0];
    assert_eq!(f1.status, FollowUpStatus::Answered);
    assert_eq!(f1.answer_case, Some(answer_case));
    assert_eq!(f1.session, Some(turn.session));
    // The case of the answers is not followed up itself when it is closed.
    close_as(&bot, answer_case, "定着フォロー完了（採用した人材は順調）").await;
    bot.close().await;

    // Past the reminder time: an answered follow-up is never reminded.
    let bot = open(&db, due1 + Duration::days(30)).await;
    assert_eq!(bot.tick().await, Tick::default());
    bot.close().await;

    // The second interval, after a restart: offered once.
    let bot = open(&db, due2).await;
    let t = bot.tick().await;
    assert_eq!(t.offered.iter().map(|f| f.seq).collect::<Vec<_>>(), [2]);
    assert_eq!(bot.tick().await, Tick::default());
    assert_eq!(
        statuses(bot.store.arc().as_ref(), case).await,
        [FollowUpStatus::Answered, FollowUpStatus::Offered]
    );
    assert_eq!(
        bot.store
            .count(
                "SELECT COUNT(*) FROM timers WHERE kind LIKE 'follow_up%' AND status = 'cancelled'"
            )
            .await,
        2
    );
    // Nothing but the two follow-ups was ever scheduled, each offered by
    // one timer row that fired once.
    assert_eq!(bot.store.count("SELECT COUNT(*) FROM follow_ups").await, 2);
    assert_eq!(
        bot.store
            .count(
                "SELECT COUNT(*) FROM timers WHERE kind = 'follow_up_offer' AND status = 'fired'"
            )
            .await,
        2
    );
    assert_eq!(
        bot.store
            .count(
                "SELECT COUNT(*) FROM timers WHERE kind LIKE 'follow_up%' AND status = 'pending'"
            )
            .await,
        // The second offer's reminder and recording as unanswered; the
        // first's were cancelled when it was answered.
        2
    );
    let audit: Vec<String> = bot
        .store
        .audit(Some(case))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .filter(|a| a.starts_with("follow_up"))
        .collect();
    assert_eq!(
        audit,
        [
            "follow_up_scheduled",
            "follow_up_offered",
            "follow_up_started",
            "follow_up_answered",
            "follow_up_offered",
        ]
    );
    bot.close().await;
}

async fn declining_stops_the_later_follow_ups(db: TestDb) {
    let user = owner("kumamoto");
    let (case, due) = matched_case(
        &db,
        &user,
        "08_kumamoto_subsidy_bank.yaml",
        "マッチング成立：副業人材と契約",
    )
    .await;
    let bot = open_offered(&db, due).await;
    start_waiting(&bot, &user).await;
    let end = bot.say(&user, "今後のフォローアップは不要").await;
    assert!(text(&end).contains("今後お送りしません"), "{}", text(&end));
    assert!(end.case.is_none());
    assert_eq!(
        statuses(bot.store.arc().as_ref(), case).await,
        [FollowUpStatus::Declined, FollowUpStatus::Cancelled]
    );
    bot.close().await;

    // Months later, after a restart: nothing is offered again.
    let bot = open(&db, due + Duration::days(400)).await;
    assert_eq!(bot.tick().await, Tick::default());
    assert!(followup::waiting_for(bot.store.arc().as_ref(), &user)
        .await
        .unwrap()
        .is_none());
    let actions: Vec<String> = bot
        .store
        .audit(Some(case))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(actions.contains(&"follow_up_declined".to_string()));
    assert!(actions.contains(&"follow_up_cancelled".to_string()));
    // A case closed without a match is never followed up.
    let other = owner("no-match");
    let c2 = consult(&bot, &other, "07_hyogo_no_people_yorozu.yaml").await;
    close_as(&bot, c2, "マッチング不成立（候補者辞退）").await;
    assert_eq!(bot.tick().await, Tick::default());
    assert!(bot.store.follow_ups_of_case(c2).await.unwrap().is_empty());
    bot.close().await;
}

async fn an_unanswered_follow_up_is_reminded_once_then_recorded(db: TestDb) {
    let user = owner("silent");
    let (case, due) = matched_case(&db, &user, "01_full_hyogo_talent.yaml", "hired").await;
    let bot = open_offered(&db, due).await;
    let policy = followup::policy(&bot.runner.bundle()).unwrap();
    // The owner opens the dialog and leaves it.
    start_waiting(&bot, &user).await;
    bot.close().await;

    let remind_at = due + Duration::days(policy.remind_after_days.into());
    let bot = open(&db, remind_at - Duration::minutes(1)).await;
    assert_eq!(bot.tick().await, Tick::default());
    bot.close().await;
    let bot = open(&db, remind_at).await;
    let t = bot.tick().await;
    assert_eq!(t.reminded.len(), 1);
    assert!(t.offered.is_empty() && t.unanswered.is_empty());
    assert_eq!(bot.tick().await, Tick::default());
    bot.close().await;

    let give_up = due + Duration::days(policy.unanswered_after_days.into());
    let bot = open(&db, give_up - Duration::minutes(1)).await;
    assert_eq!(bot.tick().await, Tick::default());
    bot.close().await;
    let bot = open(&db, give_up).await;
    let t = bot.tick().await;
    assert_eq!(t.unanswered.len(), 1);
    assert!(t.reminded.is_empty());
    assert_eq!(
        statuses(bot.store.arc().as_ref(), case).await,
        [FollowUpStatus::Unanswered, FollowUpStatus::Scheduled]
    );
    bot.close().await;
    // Never offered or reminded again.
    let bot = open(&db, give_up + Duration::days(60)).await;
    assert_eq!(bot.tick().await, Tick::default());
    let actions: Vec<String> = bot
        .store
        .audit(Some(case))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .filter(|a| a.starts_with("follow_up"))
        .collect();
    assert_eq!(
        actions,
        [
            "follow_up_scheduled",
            "follow_up_offered",
            "follow_up_started",
            "follow_up_reminded",
            "follow_up_unanswered",
        ]
    );
    bot.close().await;

    // The first dialog was left open; the second follow-up still starts
    // when due (the recorded one's dialog is closed for it, keeping its
    // record), instead of waiting for ever behind it.
    let due2 = due_times_of(&db, case).await[1];
    let bot = open_offered(&db, due2).await;
    let second = start_waiting(&bot, &user).await;
    assert!(
        text(&second).contains("おたずねしてもよろしいですか"),
        "{}",
        text(&second)
    );
    let fus = bot.store.follow_ups_of_case(case).await.unwrap();
    assert_eq!(
        fus.iter().map(|f| f.status).collect::<Vec<_>>(),
        [FollowUpStatus::Unanswered, FollowUpStatus::Offered]
    );
    assert_eq!(fus[1].session, Some(second.session));
    assert_ne!(fus[0].session, fus[1].session);
    bot.close().await;
}

/// The due times of a case's follow-ups (read by a short-lived process).
async fn due_times_of(db: &TestDb, case: CaseId) -> Vec<DateTime<Utc>> {
    let store = db.open().await;
    let due = store
        .follow_ups_of_case(case)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.due_at)
        .collect();
    store.close().await;
    due
}

async fn without_consent_the_step5_hub_receives_nothing(db: TestDb) {
    let user = owner("careful");
    let (case, due) = matched_case(&db, &user, "01_full_hyogo_talent.yaml", "採用").await;
    let bot = open_offered(&db, due).await;
    let cases_before = bot.store.cases_of_user(&user).await.unwrap().len();
    let deliveries_before = bot.store.count("SELECT COUNT(*) FROM deliveries").await;
    start_waiting(&bot, &user).await;
    bot.say(&user, "はい").await;
    bot.say(&user, "気になることがある").await;
    bot.say(&user, "スキップ").await;
    bot.say(&user, "未定").await;
    bot.say(&user, "スキップ").await;
    let end = bot.say(&user, "同意しない").await;
    assert!(
        text(&end).contains("どの支援機関にも送っていません"),
        "{}",
        text(&end)
    );
    assert!(end.case.is_none());
    assert_eq!(
        bot.store.cases_of_user(&user).await.unwrap().len(),
        cases_before
    );
    assert_eq!(
        bot.store.count("SELECT COUNT(*) FROM deliveries").await,
        deliveries_before
    );
    // The refusal is recorded (naming the hub it refused), and the
    // follow-up counts as answered: the owner did answer.
    let refused = bot
        .store
        .consents(&user)
        .await
        .unwrap()
        .into_iter()
        .rfind(|c| !c.granted)
        .unwrap();
    assert_eq!(refused.recipients[0].id, "hyogo-chamber");
    let f = &bot.store.follow_ups_of_case(case).await.unwrap()[0];
    assert_eq!(f.status, FollowUpStatus::Answered);
    assert_eq!(f.answer_case, None);
    bot.close().await;
}

async fn english_owner_gets_the_english_follow_up(db: TestDb) {
    let user = owner("english");
    let (case, due) = matched_case(
        &db,
        &user,
        "27_english_full_hyogo.yaml",
        "Hired a sales manager",
    )
    .await;
    let bot = open_offered(&db, due).await;
    let consent = bot.store.consents(&user).await.unwrap();
    assert!(
        consent[0]
            .wording
            .contains("go to Federation of Societies of Commerce and Industry, Hyogo, which supports the settling-in"),
        "{}",
        consent[0].wording
    );
    let first = start_waiting(&bot, &user).await;
    assert_eq!(first.flow.lang, Lang::En);
    assert!(
        text(&first).contains("May we ask you now?"),
        "{}",
        text(&first)
    );
    bot.say(&user, "Yes, ask me").await;
    bot.say(&user, "doing well").await;
    bot.say(&user, "skip").await;
    bot.say(&user, "yes").await;
    let confirm = bot.say(&user, "We need one more engineer").await;
    assert!(text(&confirm).contains("Federation of Societies of Commerce and Industry, Hyogo"));
    let sent = bot.say(&user, "agree and send").await;
    assert!(
        text(&sent).contains("Your follow-up answers were sent to Federation of Societies of Commerce and Industry, Hyogo"),
        "{}",
        text(&sent)
    );
    let ac = bot.store.case(sent.case.unwrap()).await.unwrap().unwrap();
    assert!(
        ac.summary_plain.contains("Doing well"),
        "{}",
        ac.summary_plain
    );
    assert!(ac.summary_plain.contains("We need one more engineer"));
    assert_eq!(
        statuses(bot.store.arc().as_ref(), case).await,
        [FollowUpStatus::Answered, FollowUpStatus::Scheduled]
    );
    bot.close().await;
}

on_both_backends!(the_terminal_chat_starts_a_due_follow_up_first);

async fn the_terminal_chat_starts_a_due_follow_up_first(db: TestDb) {
    use madoguchi::chat::{run_chat, ChatOptions};
    let user = owner("terminal-owner");
    let inbox = tempfile::tempdir().unwrap();
    let opts = |follow_up: bool| ChatOptions {
        user: user.clone(),
        lang: Lang::Ja,
        resume: false,
        inbox: inbox.path().to_path_buf(),
        echo: true,
        follow_up,
        trial: false,
    };
    let bot = open(&db, t0()).await;
    let case = consult(&bot, &user, "01_full_hyogo_talent.yaml").await;
    // `--follow-up` with nothing due says so and starts nothing.
    let mut out = Vec::new();
    let err = run_chat(&bot.runner, &opts(true), &b""[..], &mut out)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("予定されたフォローアップはありません"),
        "{err}"
    );
    close_as(&bot, case, "採用").await;
    bot.close().await;

    // A month later the plain `chat` (no flag) starts the follow-up first,
    // and the owner answers it to the end; the answers reach the inbox of
    // the step-5 hub.
    let due = {
        let bot = open(&db, t0() + Duration::days(1)).await;
        bot.tick().await;
        let d = bot.store.follow_ups_of_case(case).await.unwrap()[0].due_at;
        bot.close().await;
        d
    };
    let bot = open(&db, due + Duration::hours(2)).await;
    let input = "答える\n1\nスキップ\n続ける\nスキップ\n同意して送信\n";
    let mut out = Vec::new();
    run_chat(&bot.runner, &opts(false), input.as_bytes(), &mut out)
        .await
        .unwrap();
    let shown = String::from_utf8(out).unwrap();
    assert!(shown.contains("おたずねしてもよろしいですか"), "{shown}");
    assert!(
        shown.contains("兵庫県商工会連合会へフォローアップのご回答をお送りしました"),
        "{shown}"
    );
    let inbox_files: Vec<_> = walk(inbox.path());
    // The first case's copy is there too (hyogo-chamber had a copy of it):
    // the follow-up's answers are the file holding them.
    let follow_up_files: Vec<_> = inbox_files
        .iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains("【採用後フォローアップ（STEP5 定着支援）】")
        })
        .collect();
    assert_eq!(follow_up_files.len(), 1, "{inbox_files:?}");
    assert!(
        follow_up_files[0]
            .to_string_lossy()
            .contains("hyogo-chamber"),
        "{follow_up_files:?}"
    );
    assert_eq!(
        statuses(bot.store.arc().as_ref(), case).await,
        [FollowUpStatus::Answered, FollowUpStatus::Scheduled]
    );
    // Answered: `chat --follow-up` has nothing more to offer.
    let mut out = Vec::new();
    assert!(run_chat(&bot.runner, &opts(true), &b""[..], &mut out)
        .await
        .is_err());
    bot.close().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

on_both_backends!(each_platform_sends_its_own_owners_reminders);

/// Discord's and Slack's loops run side by side (one process, or two
/// instances): the one that claims a reminder is the one that can send
/// it, so Slack's pass never takes a Discord owner's reminder, and the
/// offer is for the owner's platform only. (The owner is on Discord: the
/// metrics test counts this binary's Slack turns as its own.)
async fn each_platform_sends_its_own_owners_reminders(db: TestDb) {
    use madoguchi::domain::ids::Transport::{Discord, Slack};
    let user = UserKey::new(Transport::Discord, "400000000000000777").unwrap();
    let (case, due) = matched_case(&db, &user, "01_full_hyogo_talent.yaml", "採用").await;
    let bot = open(&db, due).await;
    let policy = followup::policy(&bot.runner.bundle()).unwrap();
    let store = bot.store.arc();
    let d = followup::pass(store.as_ref(), &policy, bot.clock.now(), Slack)
        .await
        .unwrap();
    assert_eq!(d, followup::Sends::default());
    let s = followup::pass(store.as_ref(), &policy, bot.clock.now(), Discord)
        .await
        .unwrap();
    assert_eq!(s.offers.len(), 1);
    assert_eq!(s.offers[0].case, case);
    followup::start(&bot.runner, &s.offers[0])
        .await
        .unwrap()
        .expect("the follow-up starts");
    // Started: not offered again.
    let again = followup::pass(store.as_ref(), &policy, bot.clock.now(), Discord)
        .await
        .unwrap();
    assert_eq!(again, followup::Sends::default());
    bot.close().await;

    let bot = open(&db, due + Duration::days(policy.remind_after_days.into())).await;
    let store = bot.store.arc();
    let d = followup::pass(store.as_ref(), &policy, bot.clock.now(), Slack)
        .await
        .unwrap();
    assert_eq!(d, followup::Sends::default(), "Slack leaves it to Discord");
    let s = followup::pass(store.as_ref(), &policy, bot.clock.now(), Discord)
        .await
        .unwrap();
    assert_eq!(s.reminders.len(), 1);
    let (lang, turn) = followup::reminder_turn(&bot.runner, &s.reminders[0])
        .await
        .unwrap()
        .expect("the dialog is open");
    assert_eq!(lang, Lang::Ja);
    assert!(
        text(&turn).contains("おたずねしてもよろしいですか"),
        "{}",
        text(&turn)
    );
    // Once only.
    let s = followup::pass(store.as_ref(), &policy, bot.clock.now(), Discord)
        .await
        .unwrap();
    assert_eq!(s, followup::Sends::default());
    assert_eq!(
        statuses(store.as_ref(), case).await,
        [FollowUpStatus::Reminded, FollowUpStatus::Scheduled]
    );
    bot.close().await;
}
