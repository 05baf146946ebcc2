//! The outbox worker ([`madoguchi::outbox::Outbox`]) with a scripted
//! sender and a fixed clock: which delivery is due, backoff, rate-limit
//! scopes, looking for an earlier post, and two workers on one database
//! (leases), on both backends. Nothing here sleeps: time only moves when a
//! test moves the clock.

use crate::on_both_backends;
use crate::store_story::{case_with_deliveries, case_with_deliveries_to};
use crate::support::db::TestDb;
use crate::support::discord::DiscordStandIn;
use crate::support::{dialogs_dir, t0};
use async_trait::async_trait;
use chrono::Duration;
use madoguchi::discord;
use madoguchi::outbox::{Fail, Handling, Outbox, OutboxConfig, Sender, Sent};
use madoguchi::runner::{Clock, FixedClock, Runner};
use madoguchi::store::{AttemptOutcome, CaseRecord, DeliveryRecord, DeliveryStatus, Store};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// What the scripted sender saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Find {
        delivery: i64,
    },
    Send {
        delivery: i64,
        external_id: Option<String>,
    },
}

/// A sender that answers from a script (by default: delivered), records
/// its calls, and can be held inside `send` until a test lets it go.
struct Scripted {
    transport: &'static str,
    answers: Mutex<VecDeque<Result<Sent, Fail>>>,
    found: Mutex<Option<String>>,
    calls: Mutex<Vec<Call>>,
    gate: Option<Arc<Semaphore>>,
    entered: Arc<Semaphore>,
    /// Each send takes this long on this clock.
    slow: Option<(Arc<FixedClock>, Duration)>,
}

impl Scripted {
    fn new(transport: &'static str) -> Scripted {
        Scripted {
            transport,
            answers: Mutex::new(VecDeque::new()),
            found: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            gate: None,
            entered: Arc::new(Semaphore::new(0)),
            slow: None,
        }
    }
    fn answer(self, a: Result<Sent, Fail>) -> Scripted {
        self.answers.lock().unwrap().push_back(a);
        self
    }
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    fn sends(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Call::Send { .. }))
            .count()
    }
}

#[async_trait]
impl Sender for Scripted {
    fn transport(&self) -> &str {
        self.transport
    }
    fn scope(&self, _d: &DeliveryRecord) -> Option<String> {
        Some("chat.postMessage".into())
    }
    async fn find_existing(
        &self,
        d: &DeliveryRecord,
        _case: &CaseRecord,
    ) -> Result<Option<String>, Fail> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Find { delivery: d.id });
        Ok(self.found.lock().unwrap().clone())
    }
    async fn send(&self, d: &DeliveryRecord, _case: &CaseRecord) -> Result<Sent, Fail> {
        self.calls.lock().unwrap().push(Call::Send {
            delivery: d.id,
            external_id: d.external_id.clone(),
        });
        self.entered.add_permits(1);
        if let Some(g) = &self.gate {
            g.acquire().await.unwrap().forget();
        }
        if let Some((clock, took)) = &self.slow {
            clock.advance(*took);
        }
        let next = self.answers.lock().unwrap().pop_front();
        next.unwrap_or_else(|| {
            Ok(Sent {
                external_id: Some(format!("post-{}", d.id)),
            })
        })
    }
}

fn cfg() -> OutboxConfig {
    OutboxConfig {
        backoff_base_ms: 2000,
        backoff_max_secs: 900,
        max_attempts: 3,
        lease_secs: 300,
        ..OutboxConfig::default()
    }
}

fn outbox(store: Arc<dyn Store>, clock: Arc<FixedClock>, s: Arc<Scripted>, name: &str) -> Outbox {
    Outbox::new(store, clock, cfg()).named(name).with_sender(s)
}

/// Transient failures back off exponentially from the clock's time and
/// fail for good after `max_attempts`; a refusal fails at once; neither is
/// tried before it is due.
async fn failures_are_classified_and_backed_off(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-backoff", "slack", 1).await;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let s = Arc::new(
        Scripted::new("slack")
            .answer(Err(Fail::Transient("500".into())))
            .answer(Err(Fail::Transient("502".into())))
            .answer(Err(Fail::Transient("503".into()))),
    );
    let o = outbox(store.arc(), clock.clone(), s.clone(), "w");
    let h = o.run_once().await.unwrap();
    assert_eq!(
        h[0].result,
        Handling::Recorded(AttemptOutcome::Retry {
            at: t0() + Duration::seconds(3),
            error: "500".into()
        })
    );
    // Not due a moment early.
    clock.set(t0() + Duration::milliseconds(2999));
    assert!(o.run_once().await.unwrap().is_empty());
    clock.set(t0() + Duration::seconds(3));
    let h = o.run_once().await.unwrap();
    assert_eq!(
        h[0].result,
        Handling::Recorded(AttemptOutcome::Retry {
            at: t0() + Duration::seconds(7),
            error: "502".into()
        }),
        "the second wait is twice the first"
    );
    clock.set(t0() + Duration::seconds(7));
    let h = o.run_once().await.unwrap();
    assert_eq!(
        h[0].result,
        Handling::Recorded(AttemptOutcome::Failed {
            error: "503".into()
        }),
        "max_attempts reached"
    );
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!((row.status, row.attempts), (DeliveryStatus::Failed, 3));

    // A refusal fails at once.
    let case = case_with_deliveries(&*store, "w-refused", "slack", 1).await;
    let s =
        Arc::new(Scripted::new("slack").answer(Err(Fail::Permanent("channel_not_found".into()))));
    let o = outbox(store.arc(), clock.clone(), s.clone(), "w");
    o.run_once().await.unwrap();
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(
        (row.status, row.last_error.as_deref()),
        (DeliveryStatus::Failed, Some("channel_not_found"))
    );
}
on_both_backends!(failures_are_classified_and_backed_off);

/// A 429 is waited out exactly, never counts towards `max_attempts`, and
/// holds back every other delivery in its scope (the API method) until it
/// has passed: those are given back untried, without an attempt.
async fn retry_after_holds_back_its_scope(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-429", "slack", 3).await;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let limited = || Fail::RetryAfter {
        wait: std::time::Duration::from_secs(30),
        scope: Some("chat.postMessage".into()),
        error: "429 ratelimited".into(),
    };
    let s = Arc::new(
        Scripted::new("slack")
            .answer(Err(limited()))
            .answer(Err(limited()))
            .answer(Err(limited()))
            .answer(Err(limited())),
    );
    let o = outbox(store.arc(), clock.clone(), s.clone(), "w");
    let h = o.run_once().await.unwrap();
    let open_at = t0() + Duration::seconds(31);
    assert_eq!(h.len(), 3);
    assert_eq!(
        h[0].result,
        Handling::Recorded(AttemptOutcome::Retry {
            at: open_at,
            error: "429 ratelimited".into()
        })
    );
    assert_eq!(h[1].result, Handling::Deferred(open_at));
    assert_eq!(h[2].result, Handling::Deferred(open_at));
    assert_eq!(s.sends(), 1, "one call, not three, met the rate limit");
    let rows = store.deliveries(case).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.attempts).collect::<Vec<_>>(),
        vec![1, 0, 0]
    );
    // Rate limits never fail a delivery, however many (max_attempts is 3).
    for _ in 0..3 {
        clock.set(clock.now() + Duration::seconds(30));
        o.run_once().await.unwrap();
    }
    clock.set(clock.now() + Duration::seconds(30));
    o.run_once().await.unwrap();
    let rows = store.deliveries(case).await.unwrap();
    assert!(
        rows.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{rows:?}"
    );
    assert_eq!(rows[0].attempts, 5);
}
on_both_backends!(retry_after_holds_back_its_scope);

/// After an attempt whose outcome is unknown the sender first looks for
/// its own earlier post; the post found is stored and given to `send`,
/// which finishes it instead of posting again. A first attempt does not
/// look.
async fn an_unknown_outcome_looks_for_the_earlier_post(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-find", "slack", 1).await;
    let id = store.deliveries(case).await.unwrap()[0].id;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let s = Arc::new(Scripted::new("slack").answer(Err(Fail::Transient("timeout".into()))));
    let o = outbox(store.arc(), clock.clone(), s.clone(), "w");
    o.run_once().await.unwrap();
    assert_eq!(
        s.calls(),
        vec![Call::Send {
            delivery: id,
            external_id: None
        }]
    );
    *s.found.lock().unwrap() = Some("1700000000.000100".into());
    clock.set(t0() + Duration::seconds(10));
    o.run_once().await.unwrap();
    assert_eq!(
        s.calls()[1..],
        [
            Call::Find { delivery: id },
            Call::Send {
                delivery: id,
                external_id: Some("1700000000.000100".into())
            }
        ]
    );
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(row.status, DeliveryStatus::Delivered);
}
on_both_backends!(an_unknown_outcome_looks_for_the_earlier_post);

/// Two workers on one database, each with its own connection pool: every
/// delivery is sent exactly once.
async fn two_workers_send_each_delivery_once(db: TestDb) {
    let store = db.open().await;
    let mut cases = Vec::new();
    for i in 0..6 {
        cases.push(case_with_deliveries(&*store, &format!("w-two-{i}"), "slack", 5).await);
    }
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let (sa, sb) = (
        Arc::new(Scripted::new("slack")),
        Arc::new(Scripted::new("slack")),
    );
    let a = Arc::new(outbox(store.arc(), clock.clone(), sa.clone(), "a"));
    let b = Arc::new(outbox(
        db.open().await.arc(),
        clock.clone(),
        sb.clone(),
        "b",
    ));
    let run = |o: Arc<Outbox>| async move {
        let mut n = 0;
        loop {
            let h = o.run_once().await.unwrap();
            if h.is_empty() {
                return n;
            }
            n += h.len();
        }
    };
    let (na, nb) = tokio::join!(tokio::spawn(run(a)), tokio::spawn(run(b)));
    let (na, nb) = (na.unwrap(), nb.unwrap());
    let mut sent: Vec<i64> = sa
        .calls()
        .into_iter()
        .chain(sb.calls())
        .filter_map(|c| match c {
            Call::Send { delivery, .. } => Some(delivery),
            _ => None,
        })
        .collect();
    sent.sort();
    let total = sent.len();
    sent.dedup();
    assert_eq!(
        (total, sent.len(), na + nb),
        (30, 30, 30),
        "a sent {na}, b sent {nb}"
    );
    for c in cases {
        for d in store.deliveries(c).await.unwrap() {
            assert_eq!(d.status, DeliveryStatus::Delivered);
            assert_eq!(d.attempts, 1);
        }
    }
}
on_both_backends!(
    two_workers_send_each_delivery_once,
    flavor = "multi_thread",
    worker_threads = 2
);

/// A worker that hangs in `send` past its lease: another worker takes the
/// delivery over, looks for the earlier post first, and delivers; the
/// hung worker's late result is dropped, not recorded.
async fn a_hung_worker_is_taken_over_and_its_late_result_dropped(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-hung", "slack", 1).await;
    let id = store.deliveries(case).await.unwrap()[0].id;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let gate = Arc::new(Semaphore::new(0));
    let hung = Arc::new(Scripted {
        gate: Some(gate.clone()),
        ..Scripted::new("slack")
    });
    let a = Arc::new(outbox(store.arc(), clock.clone(), hung.clone(), "hung"));
    let first = tokio::spawn({
        let a = a.clone();
        async move { a.run_once().await.unwrap() }
    });
    // Wait (without a timer) until the first worker is inside `send`.
    hung.entered.acquire().await.unwrap().forget();
    // Within the lease, a second worker finds nothing to do.
    let live = Arc::new(Scripted::new("slack"));
    let b = outbox(db.open().await.arc(), clock.clone(), live.clone(), "live");
    clock.set(t0() + Duration::seconds(300));
    assert!(b.run_once().await.unwrap().is_empty());
    // After it, the second worker takes it over and delivers.
    clock.set(t0() + Duration::seconds(302));
    let h = b.run_once().await.unwrap();
    assert!(h[0].delivered(), "{h:?}");
    assert_eq!(
        live.calls(),
        vec![
            Call::Find { delivery: id },
            Call::Send {
                delivery: id,
                external_id: None
            }
        ],
        "a taken-over delivery looks for the earlier post first"
    );
    // The first worker comes back: its result is dropped.
    gate.add_permits(1);
    let h = first.await.unwrap();
    assert!(matches!(h[0].result, Handling::LeaseLost(_)), "{h:?}");
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(
        (row.status, row.attempts, row.external_id.clone()),
        (DeliveryStatus::Delivered, 1, Some(format!("post-{id}")))
    );
}
on_both_backends!(
    a_hung_worker_is_taken_over_and_its_late_result_dropped,
    flavor = "multi_thread",
    worker_threads = 2
);

const GUILD: u64 = 600_000_000_000_000_001;
const CHANNEL: u64 = 100_000_000_000_000_301;

/// Discord's sender as every instance runs it (`discord::sender`: the HTTP
/// API without the gateway), against the local stand-in.
async fn discord_outbox(
    store: Arc<dyn Store>,
    standin: &DiscordStandIn,
    clock: Arc<FixedClock>,
    name: &str,
) -> Outbox {
    let mut cfg = discord::Config::default();
    cfg.discord.api_base = Some(standin.http_base());
    let runner = Runner::new(
        store.clone(),
        clock.clone(),
        madoguchi::script::load_dir(&dialogs_dir()).unwrap(),
        discord::runner_config(&cfg),
    )
    .await
    .unwrap();
    let token = discord::Token::new(&standin.bot_token()).unwrap();
    Outbox::new(store, clock, cfg.outbox.clone())
        .named(name)
        .with_sender(discord::sender(&cfg, &token, Arc::new(runner)))
}

fn posts(standin: &DiscordStandIn) -> usize {
    standin
        .calls()
        .iter()
        .filter(|c| {
            c.method == "POST" && c.path == format!("/channels/{CHANNEL}/messages") && c.ok()
        })
        .count()
}

/// Two instances' outboxes (each its own pool and Discord client) deliver
/// one database's cases to Discord: each case is posted exactly once.
async fn two_instances_post_each_discord_case_once(db: TestDb) {
    let standin = DiscordStandIn::start().await;
    standin.add_guild(GUILD, "Network");
    standin.add_text_channel(GUILD, CHANNEL, "hub");
    let store = db.open().await;
    let n = 12;
    for i in 0..n {
        case_with_deliveries_to(
            &*store,
            &format!("d-two-{i}"),
            "discord",
            vec![CHANNEL.to_string()],
        )
        .await;
    }
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let a = Arc::new(discord_outbox(store.arc(), &standin, clock.clone(), "a").await);
    let b = Arc::new(discord_outbox(db.open().await.arc(), &standin, clock.clone(), "b").await);
    let run = |o: Arc<Outbox>| async move {
        let mut n = 0;
        loop {
            let h = o.run_once().await.unwrap();
            if h.is_empty() {
                return n;
            }
            assert!(h.iter().all(|h| h.delivered()), "{h:?}");
            n += h.len();
        }
    };
    let (na, nb) = tokio::join!(tokio::spawn(run(a)), tokio::spawn(run(b)));
    assert_eq!(na.unwrap() + nb.unwrap(), n);
    assert_eq!(posts(&standin), n, "each case posted once");
    assert_eq!(standin.messages_in(CHANNEL).len(), n);
}
on_both_backends!(
    two_instances_post_each_discord_case_once,
    flavor = "multi_thread",
    worker_threads = 2
);

/// A worker that died after Discord posted the case but before the
/// message id was stored (and after the nonce's few minutes): the next
/// attempt finds the post among the channel's messages by its case footer
/// and does not post again.
async fn discord_finds_a_post_whose_id_was_lost(db: TestDb) {
    let standin = DiscordStandIn::start().await;
    standin.add_guild(GUILD, "Network");
    standin.add_text_channel(GUILD, CHANNEL, "hub");
    let store = db.open().await;
    let case =
        case_with_deliveries_to(&*store, "d-lost", "discord", vec![CHANNEL.to_string()]).await;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let o = discord_outbox(store.arc(), &standin, clock.clone(), "a").await;
    assert!(o.run_once().await.unwrap()[0].delivered());
    let posted = store.deliveries(case).await.unwrap()[0]
        .external_id
        .clone()
        .unwrap();
    assert_eq!(posts(&standin), 1);
    // What a crash between the post and storing its id leaves: the
    // delivery pending, attempted, with no id and no case post.
    store
        .exec("UPDATE deliveries SET status = 'pending', external_id = NULL, delivered_at = NULL")
        .await;
    store.exec("DELETE FROM case_posts").await;
    let h = o.run_once().await.unwrap();
    assert!(h[0].delivered(), "{h:?}");
    assert_eq!(posts(&standin), 1, "not posted again");
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(row.external_id.as_deref(), Some(posted.as_str()));
    assert_eq!(store.case_posts(case).await.unwrap()[0].message_id, posted);
}
on_both_backends!(discord_finds_a_post_whose_id_was_lost);

/// Sends that take long use up the batch's lease: a delivery whose turn
/// comes with less than half its lease left is given back untried (another
/// worker could take it over mid-send), and sent by the next pass.
async fn a_slow_batch_gives_back_what_its_lease_no_longer_covers(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-slow", "slack", 3).await;
    let start = t0() + Duration::seconds(1);
    let clock = Arc::new(FixedClock::new(start));
    let s = Arc::new(Scripted {
        slow: Some((clock.clone(), Duration::seconds(100))),
        ..Scripted::new("slack")
    });
    let o = outbox(store.arc(), clock.clone(), s.clone(), "w");
    // Lease 300 s: the first send starts with 300 s left, the second with
    // 200 s, the third would start with 100 s.
    let h = o.run_once().await.unwrap();
    assert!(h[0].delivered() && h[1].delivered(), "{h:?}");
    assert_eq!(h[2].result, Handling::Deferred(t0()), "{h:?}");
    assert_eq!(s.sends(), 2);
    let h = o.run_once().await.unwrap();
    assert!(h.len() == 1 && h[0].delivered(), "{h:?}");
    let rows = store.deliveries(case).await.unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status == DeliveryStatus::Delivered && r.attempts == 1),
        "{rows:?}"
    );
}
on_both_backends!(a_slow_batch_gives_back_what_its_lease_no_longer_covers);

/// A delivery that failed for good is made pending again by
/// `retry_delivery` (what `madoguchi cases retry-delivery` does), due at
/// the given time with a fresh count of attempts, and only once; a
/// pending delivery is left as it is. `ops_counts` counts relay messages
/// by transport, kind and status (for `/metrics` and `madoguchi run`'s
/// warning about platforms it does not run).
async fn a_failed_delivery_is_retried_and_relays_are_counted(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-retry", "slack", 1).await;
    let d = store.deliveries(case).await.unwrap()[0].clone();
    assert!(
        !store.retry_delivery(d.id, t0()).await.unwrap(),
        "a pending delivery is not retried"
    );
    let failed = AttemptOutcome::Failed {
        error: "channel_not_found".into(),
    };
    store.record_attempt(d.id, &failed, t0()).await.unwrap();
    let later = t0() + Duration::hours(1);
    assert!(store.retry_delivery(d.id, later).await.unwrap());
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(
        (
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.last_error.as_deref()
        ),
        (DeliveryStatus::Pending, 0, later, None)
    );
    assert!(!store.retry_delivery(d.id, later).await.unwrap(), "once");

    let user = store.case(case).await.unwrap().unwrap().user;
    let relay = madoguchi::store::NewRelay {
        case,
        user,
        kind: madoguchi::store::RelayKind::ToHub,
        transport: "slack".into(),
        target: "h0".into(),
        body: "{}".into(),
    };
    store.queue_relays(&[relay], t0()).await.unwrap();
    let ops = store.ops_counts(t0()).await.unwrap();
    assert_eq!(
        ops.relays,
        vec![(
            "slack".to_string(),
            "to_hub".to_string(),
            "pending".to_string(),
            1
        )]
    );
}
on_both_backends!(a_failed_delivery_is_retried_and_relays_are_counted);

/// A delivery that fails for good is told to the administrators in the
/// inbox's `admin/` folder, once, with the reason and what to run; the
/// file names the case, never what the owner wrote.
async fn a_delivery_failed_for_good_is_told_to_the_admin_inbox(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "w-admin", "slack", 1).await;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let s =
        Arc::new(Scripted::new("slack").answer(Err(Fail::Permanent("channel_not_found".into()))));
    let inbox = tempfile::tempdir().unwrap();
    let o = Outbox::new(store.arc(), clock.clone(), cfg())
        .named("w")
        .with_sender(s)
        .with_admin_inbox(inbox.path());
    o.run_once().await.unwrap();
    let d = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Failed);
    let file = inbox
        .path()
        .join("admin")
        .join(format!("delivery-{}-failed.md", d.id));
    let text = std::fs::read_to_string(&file).expect("the admin is told");
    assert!(
        text.contains(&case.to_string())
            && text.contains("channel_not_found")
            && text.contains("retry-delivery"),
        "{text}"
    );
}
on_both_backends!(a_delivery_failed_for_good_is_told_to_the_admin_inbox);

/// With the run's notice sinks (as `madoguchi run` gives them), the same
/// notice goes to the Discord admin channel (`admin_channel`) through the
/// Discord stand-in, with no mention parsed, and the inbox gets no file.
#[tokio::test]
async fn a_delivery_failed_for_good_is_told_in_the_discord_admin_channel() {
    const GUILD: u64 = 100000000000000001;
    const ADMIN: u64 = 100000000000000109;
    let db = TestDb::sqlite("outbox-admin-discord");
    let store = db.open().await.arc();
    let case = case_with_deliveries(&*store, "w-admin-d", "slack", 1).await;
    let clock = Arc::new(FixedClock::new(t0() + Duration::seconds(1)));
    let standin = DiscordStandIn::start().await;
    standin.add_guild(GUILD, "Network");
    standin.add_text_channel(GUILD, ADMIN, "madoguchi-admins");
    let mut cfg_d = discord::Config::default();
    cfg_d.discord.api_base = Some(standin.http_base());
    cfg_d.discord.admin_channel = Some(ADMIN.to_string());
    let token = discord::Token::new(&standin.bot_token()).unwrap();
    let runner = Arc::new(
        Runner::new(
            store.clone(),
            clock.clone(),
            madoguchi::script::load_dir(&dialogs_dir()).unwrap(),
            discord::runner_config(&cfg_d),
        )
        .await
        .unwrap(),
    );
    let inbox = tempfile::tempdir().unwrap();
    let sinks = madoguchi::network::worker::sinks_for_run(
        Some((&cfg_d, &token)),
        None,
        inbox.path(),
        &runner,
    )
    .unwrap();
    let s =
        Arc::new(Scripted::new("slack").answer(Err(Fail::Permanent("channel_not_found".into()))));
    let o = Outbox::new(store.clone(), clock.clone(), cfg())
        .named("w")
        .with_sender(s)
        .with_admin_inbox(inbox.path())
        .with_admin_sinks(sinks);
    o.run_once().await.unwrap();
    let d = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(d.status, DeliveryStatus::Failed);
    let posted: Vec<_> = standin
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == format!("/channels/{ADMIN}/messages"))
        .collect();
    assert_eq!(posted.len(), 1, "{posted:#?}");
    let body = posted[0].body.clone().unwrap();
    let text = body["content"].as_str().unwrap();
    assert!(
        text.contains(&case.to_string())
            && text.contains("channel_not_found")
            && text.contains("retry-delivery"),
        "{text}"
    );
    assert_eq!(
        body["allowed_mentions"]["parse"],
        serde_json::json!([]),
        "{body}"
    );
    assert!(!inbox.path().join("admin").exists());
}
