//! Reminders, escalation, lapse and nudges driven by a moved clock across
//! restarts (the store opened again, a new worker), each fired exactly
//! once, with a weekend and a national holiday (勤労感謝の日, Monday
//! 2026-11-23) in the window; on SQLite and, with `MADOGUCHI_TEST_PG`,
//! PostgreSQL.

use crate::store_story::seed_case;
use crate::support::db::TestDb;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use madoguchi::domain::calendar::{jst, BusinessSpan};
use madoguchi::domain::ids::UserKey;
use madoguchi::network::worker::{InboxSink, NoticeError, NoticeSink, StaffNotice, TimerWorker};
use madoguchi::routing::Routing;
use madoguchi::script::Lang;
use madoguchi::store::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn jp(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    jst()
        .with_ymd_and_hms(2026, m, d, h, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Records owner messages (staff notices go to the inbox before it).
#[derive(Default)]
struct Owners(Mutex<Vec<(String, String)>>);

#[async_trait]
impl NoticeSink for Owners {
    async fn staff(&self, _n: &StaffNotice<'_>) -> Result<bool, NoticeError> {
        Ok(false)
    }
    async fn owner(&self, user: &UserKey, text: &str, _key: &str) -> Result<bool, NoticeError> {
        self.0
            .lock()
            .unwrap()
            .push((user.to_string(), text.to_string()));
        Ok(true)
    }
}

fn routing() -> Routing {
    let b = madoguchi::script::compile::load_dir(&crate::support::dialogs_dir()).unwrap();
    let mut r = b.flows[0].routing.clone();
    // A shorter nudge than the shipped 10 business days, to see it here.
    r.reminders.limits.nudge_after = BusinessSpan::Days(3);
    r
}

/// The reminder files in a hub's inbox, by name.
fn files(inbox: &Path, hub: &str) -> Vec<String> {
    let dir = inbox.join(hub).join("reminders");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read(inbox: &Path, hub: &str, name: &str) -> String {
    std::fs::read_to_string(inbox.join(hub).join("reminders").join(name)).unwrap()
}

async fn reminders_escalation_lapse_and_nudge_fire_once_across_restarts(db: TestDb) {
    let inbox = tempfile::tempdir().unwrap();
    let owners = Arc::new(Owners::default());
    let r = routing();
    let worker = |store: Arc<dyn Store>| {
        TimerWorker::new(
            store,
            vec![
                Arc::new(InboxSink {
                    inbox: inbox.path().to_path_buf(),
                }),
                owners.clone(),
            ],
            Lang::Ja,
        )
    };
    // Friday 2026-11-20 16:00: four cases arrive at hyogo-pro.
    let t0 = jp(11, 20, 16);
    let store = db.open().await;
    let a = seed_case(&*store, "owner-a", "hyogo-pro", &["hyogo-pro"], t0).await;
    let b = seed_case(&*store, "owner-b", "hyogo-pro", &["hyogo-pro"], t0).await;
    let c = seed_case(&*store, "owner-c", "hyogo-pro", &["hyogo-pro"], t0).await;
    let d = seed_case(
        &*store,
        "owner-d",
        "hyogo-pro",
        &["hyogo-pro", "network-desk"],
        t0,
    )
    .await;
    let claim = CaseChange::Claim {
        by: "discord:42".into(),
    };
    store
        .update_case(b, &claim, "discord:42", t0)
        .await
        .unwrap();
    store
        .update_case(c, &claim, "discord:42", t0)
        .await
        .unwrap();
    let owner_c = UserKey::parse("terminal:owner-c").unwrap();
    let fwd = store
        .create_forward_request(
            &NewForwardRequest {
                case: c,
                user: owner_c.clone(),
                to_hub: "hyogo-yorozu".into(),
                reason: "経営課題の整理".into(),
                requested_by: "discord:42".into(),
            },
            t0,
        )
        .await
        .unwrap();

    let w = worker(store.arc());
    let rep = w.tick(&r, t0).await.unwrap();
    // a, d: reminder + escalation; b, c: nudge; c's forward: reminder + lapse.
    assert_eq!(rep.scheduled, 8, "{rep:?}");
    assert!(rep.fired.is_empty());
    // The weekend and the holiday pass: nothing is due yet.
    for t in [
        jp(11, 21, 12),
        jp(11, 22, 16),
        jp(11, 23, 16),
        jp(11, 24, 15),
    ] {
        let rep = w.tick(&r, t).await.unwrap();
        assert!(rep.fired.is_empty(), "{t}: {rep:?}");
    }
    // Case d is claimed on Tuesday morning: its reminders are dropped.
    store
        .update_case(d, &claim, "discord:7", jp(11, 24, 10))
        .await
        .unwrap();
    store.close().await;

    // Restart: the store opened again, a new worker (a new process).
    let store = db.open().await;
    let w = worker(store.arc());
    // Tuesday 16:00, one business day after Friday 16:00: a's reminder.
    let rep = w.tick(&r, jp(11, 24, 16)).await.unwrap();
    assert_eq!(
        rep.fired,
        vec![("claim_reminder".to_string(), a.0)],
        "{rep:?}"
    );
    assert!(rep.cancelled >= 2, "d's reminder and escalation: {rep:?}");
    let hub_files = files(inbox.path(), "hyogo-pro");
    assert_eq!(hub_files.len(), 1, "{hub_files:?}");
    let text = read(inbox.path(), "hyogo-pro", &hub_files[0]);
    assert!(
        text.contains(&a.to_string()) && text.contains("督促"),
        "{text}"
    );
    // A second instance at the same time fires nothing again.
    let other = worker(db.open().await.arc());
    assert!(other
        .tick(&r, jp(11, 24, 16))
        .await
        .unwrap()
        .fired
        .is_empty());

    // Wednesday 16:00: a is escalated (fact only: the consent names only
    // hyogo-pro) and c's owner is reminded of the forward.
    let rep = w.tick(&r, jp(11, 25, 16)).await.unwrap();
    let mut fired = rep.fired.clone();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            ("consent_reminder".to_string(), c.0),
            ("escalation".to_string(), a.0)
        ],
        "{rep:?}"
    );
    let desk = files(inbox.path(), "network-desk");
    assert_eq!(desk.len(), 1);
    let esc = read(inbox.path(), "network-desk", &desk[0]);
    assert!(esc.contains("共有しません"), "{esc}");
    assert!(
        !esc.contains("企業情報シート】"),
        "no sheet without consent: {esc}"
    );
    {
        let o = owners.0.lock().unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].0, owner_c.to_string());
        assert!(o[0].1.contains("11月30日(月) 16:00"), "{}", o[0].1);
    }

    // Thursday 16:00, three business days after the claims: b and c nudge
    // their claimer; d (claimed Tuesday) does not yet.
    let rep = w.tick(&r, jp(11, 26, 16)).await.unwrap();
    let mut fired = rep.fired.clone();
    fired.sort();
    assert_eq!(
        fired,
        vec![("nudge".to_string(), b.0), ("nudge".to_string(), c.0)],
        "{rep:?}"
    );
    store.close().await;

    // Restart again; Monday 30th 16:00, five business days after the
    // request: the forward lapses and the hub is told.
    let store = db.open().await;
    let w = worker(store.arc());
    // d's nudge (claimed Tuesday 10:00 + 3 business days = Friday 10:00)
    // fires in the same tick: it came due while no worker ran.
    let rep = w.tick(&r, jp(11, 30, 16)).await.unwrap();
    let mut fired = rep.fired.clone();
    fired.sort();
    assert_eq!(
        fired,
        vec![
            ("consent_lapse".to_string(), c.0),
            ("nudge".to_string(), d.0)
        ],
        "{rep:?}"
    );
    assert_eq!(
        store.forward_request(fwd).await.unwrap().unwrap().status,
        ForwardStatus::Lapsed
    );
    // Much later, nothing else fires: every timer fired once.
    let rep = w.tick(&r, jp(12, 20, 16)).await.unwrap();
    assert!(rep.fired.is_empty(), "{rep:?}");
    let all = store.timers(&TimerFilter::default()).await.unwrap();
    let fired: Vec<_> = all
        .iter()
        .filter(|t| t.status == TimerStatus::Fired)
        .map(|t| (t.kind.as_str(), t.case.unwrap().0))
        .collect();
    for (kind, case) in [
        ("claim_reminder", a.0),
        ("escalation", a.0),
        ("consent_reminder", c.0),
        ("consent_lapse", c.0),
        ("nudge", b.0),
        ("nudge", c.0),
        ("nudge", d.0),
    ] {
        assert_eq!(
            fired.iter().filter(|f| **f == (kind, case)).count(),
            1,
            "{kind} of case {case}: {fired:?}"
        );
    }
    assert_eq!(fired.len(), 7, "{fired:?}");
    assert_eq!(
        owners.0.lock().unwrap().len(),
        1,
        "the owner is reminded once"
    );
    // One file per staff notice: a's reminder, c's and b's nudges, d's
    // nudge and c's lapse at the hub; the escalation at the desk.
    assert_eq!(files(inbox.path(), "hyogo-pro").len(), 5);
    assert_eq!(files(inbox.path(), "network-desk").len(), 1);
    // The audit trail says what was sent, without personal data.
    let audit = store.audit(Some(a)).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"reminder_sent") && actions.contains(&"escalated"),
        "{actions:?}"
    );
    // Overdue now (all sent): a is still unclaimed, b, c and d still at
    // their step.
    let due = madoguchi::network::worker::due_now(&*store, &r, jp(12, 20, 16))
        .await
        .unwrap();
    assert_eq!(
        due.iter()
            .map(|o| (o.kind.as_str(), o.case.0, o.sent))
            .collect::<Vec<_>>(),
        [
            ("claim_reminder", a.0, true),
            ("escalation", a.0, true),
            ("nudge", b.0, true),
            ("nudge", c.0, true),
            ("nudge", d.0, true)
        ],
        "{due:?}"
    );
}
crate::on_both_backends!(reminders_escalation_lapse_and_nudge_fire_once_across_restarts);

/// With the owner's consent naming the network desk, the escalation
/// carries the sheet.
async fn escalation_carries_the_sheet_under_consent(db: TestDb) {
    let inbox = tempfile::tempdir().unwrap();
    let r = routing();
    let store = db.open().await;
    let t0 = jp(11, 20, 16);
    let a = seed_case(
        &*store,
        "owner-e",
        "hyogo-pro",
        &["hyogo-pro", "network-desk"],
        t0,
    )
    .await;
    let w = TimerWorker::new(
        store.arc(),
        vec![Arc::new(InboxSink {
            inbox: inbox.path().to_path_buf(),
        })],
        Lang::Ja,
    );
    w.tick(&r, t0).await.unwrap();
    let rep = w.tick(&r, jp(11, 25, 16)).await.unwrap();
    assert_eq!(rep.fired.len(), 2, "{rep:?}");
    let desk = files(inbox.path(), "network-desk");
    assert_eq!(desk.len(), 1);
    let esc = read(inbox.path(), "network-desk", &desk[0]);
    assert!(
        esc.contains(&a.to_string()) && esc.contains("シートを添えます"),
        "{esc}"
    );
    assert!(esc.contains("企業情報シート"), "the sheet follows: {esc}");
}
crate::on_both_backends!(escalation_carries_the_sheet_under_consent);

/// `madoguchi cases due` lists what is overdue now, from the cases as they
/// are, also where no bot has run: here a case that arrived in January and
/// was never claimed is past its claim limit and its escalation.
#[tokio::test]
async fn cases_due_lists_what_is_overdue() {
    let db = TestDb::sqlite("cases_due");
    let TestDb::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let store = db.open().await;
    let jan = jst()
        .with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let a = seed_case(&*store, "owner-due", "hyogo-pro", &["hyogo-pro"], jan).await;
    store.close().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["cases", "due", "--db"])
        .arg(path)
        .arg("--dialogs")
        .arg(crate::support::dialogs_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&a.to_string()) && lines[0].contains("受付の督促"),
        "{text}"
    );
    // 2026-01-05 10:00 + 1 business day, in Japan time.
    assert!(
        lines[0].contains("1月6日(火) 10:00") && lines[0].contains("未送信"),
        "{text}"
    );
    assert!(
        lines[1].contains("事務局へ / escalation") && lines[1].contains("hyogo-pro"),
        "{text}"
    );
}

/// A case closed before its limits is never reminded: its pending timers
/// are cancelled at the next tick.
async fn a_closed_case_is_never_reminded(db: TestDb) {
    let inbox = tempfile::tempdir().unwrap();
    let r = routing();
    let store = db.open().await;
    let t0 = jp(11, 20, 16);
    let a = seed_case(&*store, "owner-f", "hyogo-pro", &["hyogo-pro"], t0).await;
    let w = TimerWorker::new(
        store.arc(),
        vec![Arc::new(InboxSink {
            inbox: inbox.path().to_path_buf(),
        })],
        Lang::Ja,
    );
    assert_eq!(w.tick(&r, t0).await.unwrap().scheduled, 2);
    store
        .update_case(
            a,
            &CaseChange::Close {
                outcome: "自社で解決".into(),
            },
            "discord:42",
            jp(11, 24, 9),
        )
        .await
        .unwrap();
    let rep = w.tick(&r, jp(11, 24, 10)).await.unwrap();
    assert_eq!(rep.cancelled, 2, "{rep:?}");
    let rep = w.tick(&r, jp(12, 24, 10)).await.unwrap();
    assert!(rep.fired.is_empty() && rep.moot == 0, "{rep:?}");
    assert!(files(inbox.path(), "hyogo-pro").is_empty());
    let timers = store
        .timers(&TimerFilter {
            case: Some(a),
            ..TimerFilter::default()
        })
        .await
        .unwrap();
    assert!(
        timers.iter().all(|t| t.status == TimerStatus::Cancelled),
        "{timers:?}"
    );
}
crate::on_both_backends!(a_closed_case_is_never_reminded);

mod slack {
    //! Reminders to a Slack hub and a Slack owner through the Slack
    //! stand-in (`crates/slack-standin`), with the real slack-morphism
    //! client: the sinks are the ones `madoguchi run` builds
    //! ([`madoguchi::network::worker::sinks_for_run`]).

    use super::*;
    use madoguchi::network::worker::sinks_for_run;
    use madoguchi::routing::{SlackId, SlackStaff, SlackTarget};
    use madoguchi::runner::{FixedClock, Runner, RunnerConfig};
    use madoguchi::slack::SlackConfig;
    use serde_json::Value;
    use slack_standin::SlackStandIn;

    const OWNER: &str = "U0OWNER001";
    const STAFF: &str = "U0STAFF001";
    const DESK_A: &str = "U0DESKA001";
    const DESK_B: &str = "U0DESKB001";
    const PRO_CHANNEL: &str = "C0PRO00001";
    const DESK_CHANNEL: &str = "C0DESK0001";
    const PRO_GROUP: &str = "S0PROSTAF1";

    fn id(s: &str) -> SlackId {
        SlackId::parse(s, &['C', 'S', 'U']).unwrap()
    }

    /// The shipped routing with hyogo-pro and the network desk on Slack
    /// only (a user group at the hub, two members at the desk).
    fn slack_routing() -> Routing {
        let mut r = routing();
        for h in &mut r.hubs {
            match h.id.as_str() {
                "hyogo-pro" => {
                    h.discord = None;
                    h.slack = Some(SlackTarget {
                        channel: id(PRO_CHANNEL),
                        staff: SlackStaff::Group(id(PRO_GROUP)),
                    });
                }
                "network-desk" => {
                    h.discord = None;
                    h.slack = Some(SlackTarget {
                        channel: id(DESK_CHANNEL),
                        staff: SlackStaff::Members(vec![id(DESK_A), id(DESK_B)]),
                    });
                }
                _ => {}
            }
        }
        r
    }

    fn config(s: &SlackStandIn) -> SlackConfig {
        SlackConfig::from_vars(|k| match k {
            "SLACK_BOT_TOKEN" => Some(s.bot_token_value()),
            "SLACK_APP_TOKEN" => Some(s.app_token_value()),
            "SLACK_API_BASE" => Some(s.api_url()),
            _ => None,
        })
        .unwrap()
        .expect("slack is configured")
    }

    fn text(m: &Value) -> String {
        m["text"].as_str().unwrap_or_default().to_string()
    }

    fn reminders_in(msgs: &[Value]) -> Vec<Value> {
        msgs.iter()
            .filter(|m| m["metadata"]["event_type"] == "madoguchi_reminder")
            .cloned()
            .collect()
    }

    async fn runner(store: Arc<dyn Store>, at: DateTime<Utc>) -> Arc<Runner> {
        let bundle = madoguchi::script::compile::load_dir(&crate::support::dialogs_dir()).unwrap();
        Arc::new(
            Runner::new(
                store,
                Arc::new(FixedClock::new(at)),
                bundle,
                RunnerConfig::default(),
            )
            .await
            .unwrap(),
        )
    }

    /// One pass of the timer loop `madoguchi run` starts, with the sinks it
    /// builds for the given platforms, at `at`.
    async fn loop_pass(
        store: Arc<dyn Store>,
        at: DateTime<Utc>,
        discord: Option<(&madoguchi::discord::Config, &madoguchi::discord::Token)>,
        slack: Option<&SlackConfig>,
        inbox: &Path,
    ) {
        use madoguchi::network::worker::RunningTimers;
        let run = runner(store.clone(), at).await;
        let sinks = sinks_for_run(discord, slack, inbox, &run).unwrap();
        RunningTimers::spawn(
            TimerWorker::new(store, sinks, Lang::Ja),
            run,
            std::time::Duration::from_secs(3600),
        )
        .shutdown()
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reminder_escalation_and_consent_reminder_reach_slack_once_across_a_restart() {
        let slack = SlackStandIn::start().await;
        for (u, n) in [
            (OWNER, "owner"),
            (STAFF, "staff"),
            (DESK_A, "desk-a"),
            (DESK_B, "desk-b"),
        ] {
            slack.add_user(u, n);
        }
        slack.add_channel(PRO_CHANNEL, "hyogo-pro", &[STAFF]);
        slack.add_channel(DESK_CHANNEL, "network-desk", &[DESK_A, DESK_B]);
        slack.add_usergroup(PRO_GROUP, "hyogo-pro-staff", &[STAFF]);
        let scfg = config(&slack);
        let inbox = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite("reminders-slack");
        let r = slack_routing();

        // Friday 2026-11-20 16:00: case a arrives at hyogo-pro and is
        // posted to its Slack channel (by the real outbox sender); case c
        // is claimed and a forward waits for its Slack owner's consent.
        let t0 = jp(11, 20, 16);
        let store = db.open().await.arc();
        let a = seed_case(&*store, "owner-a", "hyogo-pro", &["hyogo-pro"], t0).await;
        let c = seed_case(&*store, "owner-c", "hyogo-pro", &["hyogo-pro"], t0).await;
        store
            .update_case(
                c,
                &CaseChange::Claim {
                    by: format!("slack:{STAFF}"),
                },
                "x",
                t0,
            )
            .await
            .unwrap();
        let owner = UserKey::parse(&format!("slack:{OWNER}")).unwrap();
        store
            .create_forward_request(
                &NewForwardRequest {
                    case: c,
                    user: owner.clone(),
                    to_hub: "hyogo-yorozu".into(),
                    reason: "経営課題の整理".into(),
                    requested_by: format!("slack:{STAFF}"),
                },
                t0,
            )
            .await
            .unwrap();
        let run = runner(store.clone(), t0).await;
        store
            .add_delivery(
                a,
                &NewDelivery {
                    hub_id: "hyogo-pro".into(),
                    transport: "slack".into(),
                    target: PRO_CHANNEL.into(),
                },
                t0,
            )
            .await
            .unwrap();
        let outbox = madoguchi::outbox::Outbox::new(
            store.clone(),
            run.clock().clone(),
            madoguchi::outbox::OutboxConfig::default(),
        )
        .with_sender(madoguchi::slack::sender(&scfg, run.clone()).unwrap());
        outbox.drain().await.unwrap();
        let post = store
            .case_posts(a)
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.transport == "slack")
            .expect("case a is posted to the hub's channel");
        let thread_ts = post.thread_id.clone().unwrap();

        let worker = |store: Arc<dyn Store>, run: &Arc<Runner>| {
            TimerWorker::new(
                store,
                sinks_for_run(None, Some(&scfg), inbox.path(), run).unwrap(),
                Lang::Ja,
            )
        };
        let w = worker(store.clone(), &run);
        assert!(w.tick(&r, t0).await.unwrap().fired.is_empty());
        // The weekend and 勤労感謝の日 (Monday 23rd) pass: nothing is due.
        for t in [
            jp(11, 21, 12),
            jp(11, 22, 16),
            jp(11, 23, 16),
            jp(11, 24, 15),
        ] {
            let rep = w.tick(&r, t).await.unwrap();
            assert!(rep.fired.is_empty(), "{t}: {rep:?}");
        }
        store.close().await.unwrap();

        // Restart: the store opened again, a new runner and worker.
        let store = db.open().await.arc();
        let run = runner(store.clone(), jp(11, 24, 16)).await;
        let w = worker(store.clone(), &run);
        let rep = w.tick(&r, jp(11, 24, 16)).await.unwrap();
        assert_eq!(
            rep.fired,
            vec![("claim_reminder".to_string(), a.0)],
            "{rep:?}"
        );
        // In the case post's thread, mentioning the hub's user group.
        let thread = reminders_in(&slack.thread(PRO_CHANNEL, &thread_ts));
        assert_eq!(thread.len(), 1, "{thread:?}");
        let t = text(&thread[0]);
        assert!(t.starts_with(&format!("<!subteam^{PRO_GROUP}> ")), "{t}");
        assert!(t.contains(&a.to_string()) && t.contains("督促"), "{t}");
        // A second instance at the same moment sends nothing again.
        let other = worker(db.open().await.arc(), &run);
        assert!(other
            .tick(&r, jp(11, 24, 16))
            .await
            .unwrap()
            .fired
            .is_empty());

        // Wednesday 16:00: a is escalated to the desk's channel (fact
        // only: the owner's consent names only hyogo-pro), mentioning the
        // desk's members, and the Slack owner is reminded in their DM.
        let rep = w.tick(&r, jp(11, 25, 16)).await.unwrap();
        let mut fired = rep.fired.clone();
        fired.sort();
        assert_eq!(
            fired,
            vec![
                ("consent_reminder".to_string(), c.0),
                ("escalation".to_string(), a.0)
            ],
            "{rep:?}"
        );
        assert_eq!(rep.unreached, 0, "{rep:?}");
        let desk = reminders_in(&slack.all_messages_in(DESK_CHANNEL));
        assert_eq!(desk.len(), 1, "{desk:?}");
        let t = text(&desk[0]);
        assert!(
            t.starts_with(&format!("<@{DESK_A}> <@{DESK_B}> ")) && t.contains("共有しません"),
            "{t}"
        );
        assert!(
            !t.contains("企業情報シート】"),
            "no sheet without consent: {t}"
        );
        let dm = slack
            .dm_channel_of(OWNER)
            .expect("the owner's DM is opened");
        let dms = reminders_in(&slack.all_messages_in(&dm));
        assert_eq!(dms.len(), 1, "{dms:?}");
        assert!(
            text(&dms[0]).contains("11月30日(月) 16:00"),
            "{}",
            text(&dms[0])
        );
        // Nothing went to the inbox: Slack reached every recipient.
        assert!(files(inbox.path(), "hyogo-pro").is_empty());
        assert!(files(inbox.path(), "network-desk").is_empty());
        // Much later nothing fires again, and every message is there once.
        let rep = w.tick(&r, jp(12, 20, 16)).await.unwrap();
        // (only c's own later timers: its claimer's nudge, the lapse)
        let mut fired = rep.fired.clone();
        fired.sort();
        assert_eq!(
            fired,
            vec![
                ("consent_lapse".to_string(), c.0),
                ("nudge".to_string(), c.0)
            ],
            "{rep:?}"
        );
        assert_eq!(
            reminders_in(&slack.thread(PRO_CHANNEL, &thread_ts)).len(),
            1
        );
        assert_eq!(reminders_in(&slack.all_messages_in(&dm)).len(), 1);
        assert_eq!(reminders_in(&slack.all_messages_in(DESK_CHANNEL)).len(), 1);
    }

    /// A notice sent again with the same timer key (a retry after an
    /// attempt whose outcome was unknown) finds its earlier message by its
    /// metadata and posts nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_notice_is_posted_once() {
        let slack = SlackStandIn::start().await;
        slack.add_user(OWNER, "owner");
        slack.add_user(STAFF, "staff");
        slack.add_channel(PRO_CHANNEL, "hyogo-pro", &[STAFF]);
        let scfg = config(&slack);
        let db = TestDb::sqlite("reminders-slack-retry");
        let store = db.open().await.arc();
        let t0 = jp(11, 20, 16);
        let a = seed_case(&*store, "owner-a", "hyogo-pro", &["hyogo-pro"], t0).await;
        let case = store.case(a).await.unwrap().unwrap();
        let run = runner(store.clone(), t0).await;
        let sink =
            madoguchi::slack::notices::notice_sink(&scfg, store.clone(), run.clock().clone())
                .unwrap();
        let r = slack_routing();
        let hub = r.hub("hyogo-pro").unwrap();
        let n = StaffNotice {
            hub,
            case: &case,
            mention: &madoguchi::network::reminders::Mention::StaffRole,
            text: "督促 <!channel> & <https://evil.example|x>",
            sheet: Some("【企業情報シート】"),
            key: "41",
        };
        assert!(sink.staff(&n).await.unwrap());
        assert!(sink.staff(&n).await.unwrap());
        let msgs = reminders_in(&slack.all_messages_in(PRO_CHANNEL));
        assert_eq!(msgs.len(), 2, "the notice and its sheet, once: {msgs:?}");
        let t = text(&msgs[0]);
        assert!(!t.contains("<!channel>") && !t.contains("<https:"), "{t}");
        assert_eq!(t.matches("<!subteam^").count(), 1, "{t}");
        // Another timer's notice is a message of its own.
        assert!(sink
            .staff(&StaffNotice {
                key: "42",
                sheet: None,
                ..n
            })
            .await
            .unwrap());
        assert_eq!(reminders_in(&slack.all_messages_in(PRO_CHANNEL)).len(), 3);
        // The owner's DM, once per key too; an owner elsewhere is not ours.
        let owner = UserKey::parse(&format!("slack:{OWNER}")).unwrap();
        assert!(sink.owner(&owner, "ご確認ください", "43").await.unwrap());
        assert!(sink.owner(&owner, "ご確認ください", "43").await.unwrap());
        let dm = slack.dm_channel_of(OWNER).unwrap();
        assert_eq!(reminders_in(&slack.all_messages_in(&dm)).len(), 1);
        let term = UserKey::parse("terminal:someone").unwrap();
        assert!(!sink.owner(&term, "x", "44").await.unwrap());
    }

    const ADMIN_CHANNEL: &str = "C0ADMINS01";

    /// The monthly KPI summary on a Slack-only deployment: the timer loop
    /// `madoguchi run` starts posts it once to `SLACK_ADMIN_CHANNEL` (an
    /// aggregate: no owner's id), also after a restart, and nothing goes to
    /// the inbox; the next month brings the next one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_monthly_summary_reaches_the_slack_admin_channel_once_across_a_restart() {
        let slack = SlackStandIn::start().await;
        slack.add_channel(ADMIN_CHANNEL, "madoguchi-admins", &[STAFF]);
        let scfg = SlackConfig::from_vars(|k| match k {
            "SLACK_BOT_TOKEN" => Some(slack.bot_token_value()),
            "SLACK_APP_TOKEN" => Some(slack.app_token_value()),
            "SLACK_API_BASE" => Some(slack.api_url()),
            "SLACK_ADMIN_CHANNEL" => Some(ADMIN_CHANNEL.into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite("summary-slack");
        let store = db.open().await.arc();
        // Two cases in November, whose owners must not appear.
        seed_case(
            &*store,
            "owner-nov-a",
            "hyogo-pro",
            &["hyogo-pro"],
            jp(11, 10, 10),
        )
        .await;
        seed_case(
            &*store,
            "owner-nov-b",
            "hyogo-pro",
            &["hyogo-pro"],
            jp(11, 12, 10),
        )
        .await;
        // One step of the loop `madoguchi run` starts, with its sinks.
        let step = |store: Arc<dyn Store>, at: DateTime<Utc>| {
            loop_pass(store, at, None, Some(&scfg), inbox.path())
        };
        step(store.clone(), jp(12, 1, 9)).await;
        step(store.clone(), jp(12, 1, 10)).await;
        store.close().await.unwrap();
        let store = db.open().await.arc();
        step(store.clone(), jp(12, 15, 9)).await;
        let msgs = slack.all_messages_in(ADMIN_CHANNEL);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        let t = text(&msgs[0]);
        assert!(
            t.contains("ネットワークのKPI報告") && t.contains("2026-11-01 – 2026-11-30"),
            "{t}"
        );
        assert!(!t.contains("owner-nov"), "{t}");
        assert!(!inbox.path().join("admin").exists());
        // 1 January in Japan: December's summary, once.
        let jan1 = jst()
            .with_ymd_and_hms(2027, 1, 1, 0, 30, 0)
            .unwrap()
            .with_timezone(&Utc);
        step(store.clone(), jan1).await;
        step(store.clone(), jan1 + chrono::Duration::hours(1)).await;
        let msgs = slack.all_messages_in(ADMIN_CHANNEL);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            text(&msgs[1]).contains("2026-12-01 – 2026-12-31"),
            "{msgs:?}"
        );
    }

    /// The monthly summary on a Discord-only deployment: posted once to the
    /// Discord admin channel (`admin_channel`), also when the loop runs
    /// again and after a restart, within Discord's message length, with no
    /// mention parsed and no owner's id; nothing goes to the inbox.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_monthly_summary_reaches_the_discord_admin_channel_once() {
        const GUILD: u64 = 100000000000000001;
        const D_ADMIN: u64 = 100000000000000109;
        let discord = crate::support::discord::DiscordStandIn::start().await;
        discord.add_guild(GUILD, "Network");
        discord.add_text_channel(GUILD, D_ADMIN, "madoguchi-admins");
        let mut dcfg = madoguchi::discord::Config::default();
        dcfg.discord.api_base = Some(discord.http_base());
        dcfg.discord.admin_channel = Some(D_ADMIN.to_string());
        let token = madoguchi::discord::Token::new(&discord.bot_token()).unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite("summary-discord");
        let store = db.open().await.arc();
        for (owner, day) in [("owner-nov-a", 10), ("owner-nov-b", 12)] {
            seed_case(&*store, owner, "hyogo-pro", &["hyogo-pro"], jp(11, day, 10)).await;
        }
        let step = |store: Arc<dyn Store>, at: DateTime<Utc>| {
            loop_pass(store, at, Some((&dcfg, &token)), None, inbox.path())
        };
        step(store.clone(), jp(12, 1, 9)).await;
        step(store.clone(), jp(12, 1, 10)).await;
        store.close().await.unwrap();
        let store = db.open().await.arc();
        step(store.clone(), jp(12, 15, 9)).await;
        let posted: Vec<_> = discord
            .calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path == format!("/channels/{D_ADMIN}/messages"))
            .collect();
        assert_eq!(posted.len(), 1, "{posted:#?}");
        assert!(posted[0].ok(), "{posted:#?}");
        let body = posted[0].body.clone().unwrap();
        let t = body["content"].as_str().unwrap();
        assert!(
            t.contains("ネットワークのKPI報告") && t.contains("2026-11-01 – 2026-11-30"),
            "{t}"
        );
        assert!(
            t.chars().count() <= 2000,
            "{} characters",
            t.chars().count()
        );
        assert!(!t.contains("owner-nov"), "{t}");
        assert_eq!(
            body["allowed_mentions"]["parse"],
            serde_json::json!([]),
            "{body}"
        );
        assert!(!inbox.path().join("admin").exists());
    }

    /// A hub with a Discord and a Slack target had its case posted on both,
    /// and its staff may watch either: a reminder reaches both platforms
    /// (and not the inbox). When Discord fails, the timer is tried again
    /// later and Slack, which already has the notice, gets no second one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hub_on_both_platforms_is_reminded_on_both_once() {
        const GUILD: u64 = 100000000000000001;
        const D_CHANNEL: u64 = 100000000000000101;
        const D_ROLE: u64 = 100000000000000201;
        let slack = SlackStandIn::start().await;
        slack.add_user(STAFF, "staff");
        slack.add_channel(PRO_CHANNEL, "hyogo-pro", &[STAFF]);
        slack.add_usergroup(PRO_GROUP, "hyogo-pro-staff", &[STAFF]);
        let scfg = config(&slack);
        let discord = crate::support::discord::DiscordStandIn::start().await;
        discord.add_guild(GUILD, "Network");
        discord.add_text_channel(GUILD, D_CHANNEL, "hyogo-pro");
        discord.add_role(GUILD, D_ROLE, "hyogo-pro staff");
        let mut dcfg = madoguchi::discord::Config::default();
        dcfg.discord.api_base = Some(discord.http_base());
        let token = madoguchi::discord::Token::new(&discord.bot_token()).unwrap();
        let mut r = slack_routing();
        for h in &mut r.hubs {
            if h.id.as_str() == "hyogo-pro" {
                h.discord = Some(madoguchi::routing::DiscordTarget {
                    channel: D_CHANNEL,
                    staff_role: Some(D_ROLE),
                });
            }
        }
        let inbox = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite("reminders-both");
        let t0 = jp(11, 20, 16);
        let store = db.open().await.arc();
        let a = seed_case(&*store, "owner-a", "hyogo-pro", &["hyogo-pro"], t0).await;
        let run = runner(store.clone(), t0).await;
        let w = TimerWorker::new(
            store.clone(),
            sinks_for_run(Some((&dcfg, &token)), Some(&scfg), inbox.path(), &run).unwrap(),
            Lang::Ja,
        );
        assert!(w.tick(&r, t0).await.unwrap().fired.is_empty());
        let in_discord = || {
            discord
                .messages_in(D_CHANNEL)
                .into_iter()
                .filter(|m| m["content"].as_str().is_some_and(|c| c.contains("督促")))
                .collect::<Vec<_>>()
        };
        let in_slack = || reminders_in(&slack.messages_in(PRO_CHANNEL));

        // Tuesday 16:00, one business day after the case came: Discord
        // answers 500 to every try of the bot's own retries.
        discord.fail_next(
            "POST",
            &format!("/channels/{D_CHANNEL}/messages"),
            500,
            serde_json::json!({"message": "Internal Server Error", "code": 0}),
            4,
        );
        let due = jp(11, 24, 16);
        let rep = w.tick(&r, due).await.unwrap();
        assert!(rep.fired.is_empty(), "{rep:?}");
        assert_eq!(rep.retried, 1, "{rep:?}");
        assert_eq!(
            in_slack().len(),
            1,
            "Slack got the notice before Discord failed"
        );
        assert!(in_discord().is_empty());

        // The retry, after the worker's wait: Discord takes it, Slack's
        // notice is found and not posted again, the inbox stays empty.
        let later = due + w.retry_after + chrono::Duration::seconds(1);
        let rep = w.tick(&r, later).await.unwrap();
        assert_eq!(
            rep.fired,
            vec![("claim_reminder".to_string(), a.0)],
            "{rep:?}"
        );
        let s = in_slack();
        assert_eq!(s.len(), 1, "{s:#?}");
        assert!(
            text(&s[0]).starts_with(&format!("<!subteam^{PRO_GROUP}> ")),
            "{s:?}"
        );
        let d = in_discord();
        assert_eq!(d.len(), 1, "{d:#?}");
        let c = d[0]["content"].as_str().unwrap();
        assert!(
            c.starts_with(&format!("<@&{D_ROLE}> ")) && c.contains(&a.to_string()),
            "{c}"
        );
        assert!(
            !inbox.path().join("hyogo-pro").exists(),
            "a hub reached on a platform gets nothing in the inbox"
        );
        // Nothing fires again.
        let rep = w
            .tick(&r, later + chrono::Duration::minutes(1))
            .await
            .unwrap();
        assert!(rep.fired.is_empty(), "{rep:?}");
        assert_eq!((in_slack().len(), in_discord().len()), (1, 1));
        store.close().await.unwrap();
    }

    /// A reminder that meets Slack's rate limit (429) is tried again when
    /// `Retry-After` says, not after the loop's own wait (5 minutes), and
    /// is posted once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_limited_reminder_is_tried_again_when_slack_says() {
        let slack = SlackStandIn::start().await;
        slack.add_user(STAFF, "staff");
        slack.add_channel(PRO_CHANNEL, "hyogo-pro", &[STAFF]);
        slack.add_usergroup(PRO_GROUP, "hyogo-pro-staff", &[STAFF]);
        let scfg = config(&slack);
        let inbox = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite("reminders-slack-429");
        let store = db.open().await.arc();
        let r = slack_routing();
        // Friday 16:00; the claim reminder is due on Tuesday 16:00 (the
        // weekend and 勤労感謝の日 do not count).
        let t0 = jp(11, 20, 16);
        let a = seed_case(&*store, "owner-a", "hyogo-pro", &["hyogo-pro"], t0).await;
        let run = runner(store.clone(), t0).await;
        let w = TimerWorker::new(
            store.clone(),
            sinks_for_run(None, Some(&scfg), inbox.path(), &run).unwrap(),
            Lang::Ja,
        );
        assert!(w.tick(&r, t0).await.unwrap().fired.is_empty());
        let due = jp(11, 24, 16);
        slack.rate_limit("chat.postMessage", 7, 1);
        let rep = w.tick(&r, due).await.unwrap();
        assert!(rep.fired.is_empty(), "{rep:?}");
        assert_eq!(rep.retried, 1, "{rep:?}");
        let timer = store
            .timers(&madoguchi::store::TimerFilter {
                kinds: vec!["claim_reminder".into()],
                case: Some(a),
                ..Default::default()
            })
            .await
            .unwrap()
            .pop()
            .expect("the claim reminder is stored");
        assert_eq!(timer.status, madoguchi::store::TimerStatus::Pending);
        assert_eq!(
            timer.due_at,
            due + chrono::Duration::seconds(7),
            "{timer:?}"
        );
        assert!(
            timer
                .note
                .as_deref()
                .is_some_and(|n| n.contains("rate limited")),
            "{timer:?}"
        );
        // Not before Slack's wait is over; right after it, once.
        let rep = w
            .tick(&r, due + chrono::Duration::seconds(6))
            .await
            .unwrap();
        assert!(rep.fired.is_empty(), "{rep:?}");
        let rep = w
            .tick(&r, due + chrono::Duration::seconds(8))
            .await
            .unwrap();
        assert_eq!(
            rep.fired,
            vec![("claim_reminder".to_string(), a.0)],
            "{rep:?}"
        );
        let posted = reminders_in(&slack.all_messages_in(PRO_CHANNEL));
        assert_eq!(posted.len(), 1, "{posted:?}");
        assert!(text(&posted[0]).contains("督促"), "{}", text(&posted[0]));
        assert!(files(inbox.path(), "hyogo-pro").is_empty());
        store.close().await.unwrap();
    }
}

/// Staff actions through the desk (`casework::act`, as every platform and
/// `madoguchi cases` call it) bring a case's timers in line at once: the
/// loop fires them without its full sync (set here to run only at start).
async fn staff_actions_schedule_timers_without_the_sync(db: TestDb) {
    use madoguchi::desk::{Action, Actor, Network, StaffId};
    let inbox = tempfile::tempdir().unwrap();
    let r = routing();
    let mut net = Network::from_routing(&r);
    net.add_members("hyogo-pro", "cli", vec!["staff1".into()]);
    let actor = Actor {
        id: StaffId::parse("cli:staff1").unwrap(),
        groups: vec![],
    };
    let store = db.open().await;
    let t0 = jp(11, 20, 16);
    let a = seed_case(&*store, "owner-a", "hyogo-pro", &["hyogo-pro"], t0).await;
    let mut w = TimerWorker::new(
        store.arc(),
        vec![Arc::new(InboxSink {
            inbox: inbox.path().to_path_buf(),
        })],
        Lang::Ja,
    );
    w.sync_every = chrono::Duration::days(60);
    assert_eq!(
        w.step(&r, t0).await.unwrap().scheduled,
        2,
        "the start's sync"
    );
    let pending = |store: Arc<dyn Store>| async move {
        let mut v: Vec<String> = store
            .timers(&TimerFilter {
                case: Some(a),
                status: Some(TimerStatus::Pending),
                ..TimerFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect();
        v.sort();
        v
    };
    let act = |action: Action, at: DateTime<Utc>| {
        let (store, net, actor) = (store.arc(), net.clone(), actor.clone());
        async move {
            let o =
                madoguchi::casework::act(&*store, &net, &actor, a, Some("hyogo-pro"), action, at)
                    .await
                    .unwrap();
            assert!(
                matches!(o, madoguchi::casework::Outcome::Done { .. }),
                "{o:?}"
            );
        }
    };
    // Claimed on the holiday: the reminder and escalation go, a nudge comes.
    act(Action::Claim, jp(11, 23, 10)).await;
    assert_eq!(pending(store.arc()).await, ["nudge"]);
    let rep = w.step(&r, jp(11, 24, 16)).await.unwrap();
    assert!(rep.fired.is_empty() && rep.scheduled == 0, "{rep:?}");
    // Released on Wednesday 10:00: open again, reminded one business day
    // later (Thursday 10:00), by the loop alone.
    act(Action::Release, jp(11, 25, 10)).await;
    assert_eq!(pending(store.arc()).await, ["claim_reminder", "escalation"]);
    let due = |at: DateTime<Utc>| {
        let store = store.arc();
        async move { store.ops_counts(at).await.unwrap().reminders_due }
    };
    // `/metrics` counts it overdue from the same moment: not while it was
    // claimed (its first reminder, for the state before the claim, came
    // due on Tuesday 16:00 but was cancelled), not before Thursday 10:00.
    assert_eq!(due(jp(11, 25, 9)).await, 0);
    assert_eq!(due(jp(11, 26, 9)).await, 0);
    assert_eq!(due(jp(11, 26, 10)).await, 1);
    let rep = w.step(&r, jp(11, 26, 9)).await.unwrap();
    assert!(rep.fired.is_empty(), "{rep:?}");
    let rep = w.step(&r, jp(11, 26, 10)).await.unwrap();
    assert_eq!(
        rep.fired,
        vec![("claim_reminder".to_string(), a.0)],
        "{rep:?}"
    );
    assert_eq!(rep.scheduled, 0, "no sync ran: {rep:?}");
    assert_eq!(files(inbox.path(), "hyogo-pro").len(), 1);
    // Sent, and still overdue until it is claimed.
    assert_eq!(due(jp(11, 26, 10)).await, 1);
    // Closed: nothing is left pending.
    act(
        Action::Close {
            outcome: "matched".into(),
        },
        jp(11, 26, 11),
    )
    .await;
    assert!(pending(store.arc()).await.is_empty());
    assert_eq!(due(jp(12, 20, 10)).await, 0);
}
crate::on_both_backends!(staff_actions_schedule_timers_without_the_sync);

/// `madoguchi run` with no chat platform configured still runs the timer
/// loop: reminders and escalations are written to the local inbox, each
/// once across a restart. (The binary reads the wall clock, so the cases
/// are weeks old: whatever today is, their limits have passed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_a_chat_platform_writes_reminders_to_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let inbox = dir.path().join("inbox");
    let weeks_ago = Utc::now() - chrono::Duration::days(30);
    let store = madoguchi::store::sqlite::SqliteStore::open(&db)
        .await
        .unwrap();
    let a = seed_case(&store, "owner-a", "hyogo-pro", &["hyogo-pro"], weeks_ago).await;
    store.close().await.unwrap();
    let config = dir.path().join("madoguchi.toml");
    std::fs::write(
        &config,
        format!(
            "db = {:?}\ndialogs = {:?}\n[reminders]\ntick_secs = 1\n[outbox]\npoll_interval_ms = 50\n",
            db,
            crate::support::dialogs_dir()
        ),
    )
    .unwrap();
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .args(["run", "--config"])
            .arg(&config)
            .arg("--inbox")
            .arg(&inbox)
            .env_remove("DISCORD_TOKEN")
            .env_remove("SLACK_BOT_TOKEN")
            .env_remove("SLACK_APP_TOKEN")
            .env_remove("MADOGUCHI_DB")
            .env_remove("MADOGUCHI_DIALOGS")
            .env_remove("MADOGUCHI_HEALTH_PORT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Waits (bounded) until both hubs' inboxes hold `n` reminder files.
    let wait_files = |hub: usize, desk: usize| {
        let inbox = inbox.clone();
        async move {
            for _ in 0..600 {
                if files(&inbox, "hyogo-pro").len() >= hub
                    && files(&inbox, "network-desk").len() >= desk
                {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!(
                "no reminders in the inbox: {:?} {:?}",
                files(&inbox, "hyogo-pro"),
                files(&inbox, "network-desk")
            );
        }
    };
    let stop = |mut child: std::process::Child| {
        // SAFETY: signals our own child by its id.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    };
    let child = start();
    wait_files(1, 1).await;
    stop(child);
    let reminder = read(&inbox, "hyogo-pro", &files(&inbox, "hyogo-pro")[0]);
    assert!(
        reminder.contains(&a.to_string()) && reminder.contains("督促"),
        "{reminder}"
    );
    let desk = read(&inbox, "network-desk", &files(&inbox, "network-desk")[0]);
    assert!(desk.contains("共有しません"), "{desk}");

    // A second case arrives while nothing runs; after the restart only
    // its notices are written.
    let store = madoguchi::store::sqlite::SqliteStore::open(&db)
        .await
        .unwrap();
    let b = seed_case(&store, "owner-b", "hyogo-pro", &["hyogo-pro"], weeks_ago).await;
    store.close().await.unwrap();
    let child = start();
    wait_files(2, 2).await;
    stop(child);
    assert_eq!(files(&inbox, "hyogo-pro").len(), 2);
    assert_eq!(files(&inbox, "network-desk").len(), 2);
    let store = madoguchi::store::sqlite::SqliteStore::open(&db)
        .await
        .unwrap();
    let fired: Vec<(String, i64)> = store
        .timers(&TimerFilter {
            status: Some(TimerStatus::Fired),
            ..TimerFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.kind, t.case.unwrap().0))
        .collect();
    let mut fired = fired;
    fired.sort();
    assert_eq!(
        fired,
        [
            ("claim_reminder".to_string(), a.0),
            ("claim_reminder".to_string(), b.0),
            ("escalation".to_string(), a.0),
            ("escalation".to_string(), b.0),
        ]
    );
}

/// The report's "overdue now" is the reminders' notion: a case that came
/// on Friday 16:00 is not overdue over the weekend and the holiday
/// (Monday 23rd), though more than 24 hours passed, and is from Tuesday
/// 16:00, when its reminder comes due (checked against `due_now` too).
async fn the_report_counts_overdue_by_business_hours(db: TestDb) {
    use madoguchi::report::{build, Params};
    let store = db.open().await;
    let r = routing();
    let a = seed_case(
        &*store,
        "owner-a",
        "hyogo-pro",
        &["hyogo-pro"],
        jp(11, 20, 16),
    )
    .await;
    let net = madoguchi::report::cli::network(&crate::support::dialogs_dir()).unwrap();
    let overdue = |now: DateTime<Utc>| {
        let (store, net) = (store.arc(), net.clone());
        async move {
            let p = Params {
                from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                to: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                hub: None,
                now,
            };
            build(&*store, &p, &net).await.unwrap().overdue_now
        }
    };
    for now in [jp(11, 21, 17), jp(11, 23, 17), jp(11, 24, 15)] {
        assert_eq!(overdue(now).await, 0, "{now}");
        let due = madoguchi::network::worker::due_now(&*store, &r, now)
            .await
            .unwrap();
        assert!(due.is_empty(), "{now}: {due:?}");
    }
    assert_eq!(overdue(jp(11, 24, 16)).await, 1);
    let due = madoguchi::network::worker::due_now(&*store, &r, jp(11, 24, 16))
        .await
        .unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.kind.as_str(), d.case.0))
            .collect::<Vec<_>>(),
        [("claim_reminder", a.0)]
    );
}
crate::on_both_backends!(the_report_counts_overdue_by_business_hours);

/// The monthly KPI summary with no chat platform configured (`madoguchi
/// run` with the inbox only): the timer loop writes it once to
/// `INBOX/admin/summary-YYYY-MM.md`, across a restart, by the injected
/// clock.
mod monthly_summary_inbox {
    use super::*;
    use madoguchi::network::worker::{sinks_for_run, RunningTimers};
    use madoguchi::runner::{FixedClock, Runner, RunnerConfig};

    async fn runner(store: Arc<dyn Store>, at: DateTime<Utc>) -> Arc<Runner> {
        let bundle = madoguchi::script::compile::load_dir(&crate::support::dialogs_dir()).unwrap();
        Arc::new(
            Runner::new(
                store,
                Arc::new(FixedClock::new(at)),
                bundle,
                RunnerConfig::default(),
            )
            .await
            .unwrap(),
        )
    }

    /// One step of the loop `madoguchi run` starts (a stop sent at once
    /// still lets the first step finish).
    async fn one_step(store: Arc<dyn Store>, inbox: &Path, at: DateTime<Utc>) {
        let run = runner(store.clone(), at).await;
        let sinks = sinks_for_run(None, None, inbox, &run).unwrap();
        let w = TimerWorker::new(store, sinks, Lang::Ja);
        RunningTimers::spawn(w, run, std::time::Duration::from_secs(3600))
            .shutdown()
            .await;
    }

    fn summaries(inbox: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(inbox.join("admin"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_summary_is_written_to_the_inbox_once_a_month() {
        let inbox = tempfile::tempdir().unwrap();
        let db = TestDb::sqlite("summary-inbox");
        let store = db.open().await.arc();
        one_step(store.clone(), inbox.path(), jp(12, 1, 9)).await;
        assert_eq!(summaries(inbox.path()), vec!["summary-2026-11.md"]);
        let path = inbox.path().join("admin/summary-2026-11.md");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ネットワークのKPI報告") && text.contains("2026-11-01 – 2026-11-30"),
            "{text}"
        );
        // Removed by an administrator who read it: the claim in the store,
        // not the file, keeps it from being written again.
        std::fs::remove_file(&path).unwrap();
        one_step(store.clone(), inbox.path(), jp(12, 1, 10)).await;
        store.close().await.unwrap();
        let store = db.open().await.arc();
        one_step(store.clone(), inbox.path(), jp(12, 20, 9)).await;
        assert!(summaries(inbox.path()).is_empty());
        // The next month (1 January in Japan): December's summary.
        let jan1 = jst()
            .with_ymd_and_hms(2027, 1, 1, 0, 30, 0)
            .unwrap()
            .with_timezone(&Utc);
        one_step(store.clone(), inbox.path(), jan1).await;
        assert_eq!(summaries(inbox.path()), vec!["summary-2026-12.md"]);
    }
}

/// A case made by an owner's step gets its reminder timers in the step's
/// transaction, and they are exactly the timers that scheduling the case
/// as read back from the store gives (`case_timers`), on both backends:
/// the same kinds, subjects, due times and payloads. Many owners at once,
/// so that group commits carry several cases in one batch; the clock has
/// nanoseconds, which PostgreSQL does not keep.
async fn a_new_case_has_its_timers_from_its_own_step(db: TestDb) {
    use madoguchi::engine::Input;
    use madoguchi::runner::{FixedClock, Runner, RunnerConfig, RunnerOptions};
    let dialogs = crate::support::dialogs_dir();
    let mut owners: Vec<Vec<Input>> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dialogs.join("tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    for p in names {
        let t = madoguchi::transcript::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
        if t.lang != "ja" || t.script != "first_contact" {
            continue;
        }
        let steps: Option<Vec<Input>> = t
            .steps
            .iter()
            .map(|s| &s.value)
            .filter(|s| {
                s.start
                    || s.owner.is_some()
                    || s.owner_repeat.is_some()
                    || s.crash
                    || s.press.is_some()
            })
            .map(|s| match (&s.owner, &s.owner_repeat) {
                _ if s.crash || s.press.is_some() => None,
                _ if s.start => Some(Input::Start),
                (Some(o), _) => Some(Input::Text(o.clone())),
                (_, Some(r)) => Some(Input::Text(r.text.repeat(r.times))),
                _ => None,
            })
            .collect();
        if let Some(steps) = steps {
            owners.push(steps);
        }
    }
    assert!(
        owners.len() >= 5,
        "typed Japanese transcripts: {}",
        owners.len()
    );
    let store = db.open().await;
    let at = Utc.timestamp_opt(1_795_000_000, 123_456_789).unwrap();
    let bundle = madoguchi::script::compile::load_dir(&dialogs).unwrap();
    // Every shipped flow has the network's one routing.
    let policy = bundle.flows[0].routing.reminders.clone();
    let run = Arc::new(
        Runner::with_options(
            store.arc(),
            Arc::new(FixedClock::new(at)),
            bundle,
            RunnerConfig::default(),
            RunnerOptions::default(),
        )
        .await
        .unwrap(),
    );
    let tasks: Vec<_> = owners
        .into_iter()
        .enumerate()
        .map(|(i, inputs)| {
            let run = run.clone();
            tokio::spawn(async move {
                let user = UserKey::new(
                    madoguchi::domain::ids::Transport::Terminal,
                    &format!("t-{i}"),
                )
                .unwrap();
                for input in inputs {
                    run.handle(&user, input, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let cases = store.cases(&CaseFilter::default()).await.unwrap();
    assert!(cases.len() >= 3, "cases made: {}", cases.len());
    let mut timers = 0;
    for case in &cases {
        let want: Vec<_> = madoguchi::network::reminders::case_timers(case, &policy)
            .into_iter()
            .map(|t| (t.kind, t.subject, t.case, t.due_at, t.payload))
            .collect();
        let mut have: Vec<_> = store
            .timers(&TimerFilter {
                case: Some(case.id),
                ..TimerFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|t| {
                assert_eq!(t.status, TimerStatus::Pending);
                (t.kind, t.subject, t.case, t.due_at, t.payload)
            })
            .collect();
        have.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want = want;
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!want.is_empty());
        assert_eq!(have, want, "case {}", case.id);
        timers += have.len();
    }
    assert!(timers >= cases.len());
}
crate::on_both_backends!(
    a_new_case_has_its_timers_from_its_own_step,
    flavor = "multi_thread",
    worker_threads = 2
);
