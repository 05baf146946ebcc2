//! Group commit: many owners' turns committed together are all durable,
//! each `Runner::handle` returns its own step's outcome, and one bad step in
//! a batch fails alone. No timing is asserted: only what is stored.

use crate::on_both_backends;
use crate::support::db::{AnyStore, TestDb};
use madoguchi::domain::ids::{SessionId, Transport, UserKey};
use madoguchi::engine::{Input, SessionState, Status};
use madoguchi::render::RenderMode;
use madoguchi::runner::{Runner, RunnerConfig, RunnerOptions, SystemClock};
use madoguchi::script::{load_dir, Lang};
use madoguchi::store::batch::{GroupCommitOptions, GroupCommitter, OwnedStep};
use madoguchi::store::{NewSession, Presumption, Store, StoreError};
use std::path::Path;
use std::sync::Arc;

// Each test body runs on SQLite and on PostgreSQL.
on_both_backends!(
    concurrent_turns_through_the_group_committer_are_all_durable,
    flavor = "multi_thread",
    worker_threads = 2
);
on_both_backends!(
    the_session_cache_stores_the_same,
    flavor = "multi_thread",
    worker_threads = 2
);
on_both_backends!(
    a_full_cache_makes_room_and_nothing_is_held_between_turns,
    flavor = "multi_thread",
    worker_threads = 2
);
on_both_backends!(
    without_group_commit_the_same_is_stored,
    flavor = "multi_thread",
    worker_threads = 2
);
on_both_backends!(one_bad_step_fails_alone);
on_both_backends!(a_batch_with_every_kind_of_effect_stores_what_single_steps_store);
on_both_backends!(
    a_stale_cached_session_is_read_again_not_written_over,
    flavor = "multi_thread",
    worker_threads = 2
);

const OWNERS: usize = 40;

fn answer(q: usize) -> String {
    if q % 5 == 0 {
        format!("{}", q * 1000 + 7)
    } else {
        format!("質問{q}への回答です")
    }
}

async fn runner(db: &TestDb, options: RunnerOptions) -> (Arc<Runner>, AnyStore) {
    let store = db.open().await;
    let bundle = load_dir(Path::new("benches/dialogs")).unwrap();
    let config = RunnerConfig {
        script_id: "bench".into(),
        default_lang: Lang::Ja,
        transports: vec!["local".into()],
        mode: RenderMode::Plain,
    };
    let r = Runner::with_options(store.arc(), Arc::new(SystemClock), bundle, config, options)
        .await
        .unwrap();
    (Arc::new(r), store)
}

/// Every owner runs a whole consultation at the same time as the others.
async fn run_owners(runner: Arc<Runner>) -> Vec<(UserKey, SessionId)> {
    let mut tasks = Vec::new();
    for i in 0..OWNERS {
        let runner = runner.clone();
        tasks.push(tokio::spawn(async move {
            let user = UserKey::new(Transport::Terminal, &format!("owner-{i}")).unwrap();
            let first = runner
                .handle(&user, Input::Text("こんにちは".into()), None)
                .await
                .unwrap();
            for q in 1..=20 {
                let turn = runner
                    .handle(&user, Input::Text(answer(q)), None)
                    .await
                    .unwrap();
                // Every turn is on the session the first one created.
                assert_eq!(turn.session, first.session);
            }
            (user, first.session)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn count(store: &AnyStore, sql: &str) -> i64 {
    store.count(sql).await
}

/// Every owner's consultation ended, with its 20 answers stored.
async fn assert_every_consultation_completed(store: &AnyStore) {
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM sessions WHERE status = 'completed'"
        )
        .await,
        OWNERS as i64
    );
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM answers").await,
        (OWNERS * 20) as i64
    );
}

async fn concurrent_turns_through_the_group_committer_are_all_durable(db: TestDb) {
    let (runner, store) = runner(&db, RunnerOptions::default()).await;
    let owners = run_owners(runner.clone()).await;
    drop(runner);
    store.close().await;

    // Read back with a fresh connection.
    let store = db.open().await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM sessions").await,
        OWNERS as i64
    );
    assert_every_consultation_completed(&store).await;
    for (user, session) in owners {
        let answers = store.answers(session).await.unwrap();
        assert_eq!(answers.len(), 20, "{user}");
        assert_eq!(answers[4].raw, answer(5));
        let s = store.latest_session(&user).await.unwrap().unwrap();
        assert_eq!(s.id, session);
        assert_eq!(s.status, Status::Completed);
        assert_eq!(s.state.answers.len(), 20);
    }
}

async fn the_session_cache_stores_the_same(db: TestDb) {
    let options = RunnerOptions {
        session_cache: true,
        ..RunnerOptions::default()
    };
    let (runner, store) = runner(&db, options).await;
    let owners = run_owners(runner.clone()).await;
    assert_every_consultation_completed(&store).await;
    // A finished consultation is not cached: the owner's next message is
    // answered from the store (the consultation has ended).
    let (user, session) = &owners[0];
    runner.forget_cached(user);
    let turn = runner
        .handle(user, Input::Text("もう一度".into()), None)
        .await
        .unwrap();
    assert_eq!(turn.session, *session);
    assert_eq!(
        store.latest_session(user).await.unwrap().unwrap().status,
        Status::Completed
    );
}

/// A cache smaller than the number of owners in flight drops entries to make
/// room; the owners whose sessions were dropped are read from the store, and
/// everything is stored as with a large cache. No per-owner lock is held
/// between turns.
async fn a_full_cache_makes_room_and_nothing_is_held_between_turns(db: TestDb) {
    let options = RunnerOptions {
        session_cache_max: 3,
        ..RunnerOptions::default()
    };
    let (runner, store) = runner(&db, options).await;
    let owners = run_owners(runner.clone()).await;
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM answers").await,
        (OWNERS * 20) as i64
    );
    for (user, session) in &owners {
        let s = store.latest_session(user).await.unwrap().unwrap();
        assert_eq!(s.id, *session);
        assert_eq!(s.status, Status::Completed);
        assert_eq!(s.state.answers.len(), 20, "{user}");
    }
    // Finished consultations are not cached, and no lock is in use.
    assert_eq!(runner.held(), (0, 0));
    // Open ones are, up to the limit.
    for i in 0..5 {
        let user = UserKey::new(Transport::Terminal, &format!("late-{i}")).unwrap();
        runner
            .handle(&user, Input::Text("こんにちは".into()), None)
            .await
            .unwrap();
    }
    assert_eq!(runner.held(), (0, 3));
}

async fn without_group_commit_the_same_is_stored(db: TestDb) {
    let options = RunnerOptions {
        group_commit: false,
        ..RunnerOptions::default()
    };
    let (runner, store) = runner(&db, options).await;
    run_owners(runner).await;
    assert_every_consultation_completed(&store).await;
}

fn step(session: SessionId, new: Option<NewSession>) -> OwnedStep {
    OwnedStep {
        session,
        rev: 0,
        now: chrono::Utc::now(),
        state: SessionState {
            status: Status::Active,
            ..SessionState::default()
        },
        current_node: "q01".into(),
        effects: vec![],
        deliveries: vec![],
        new_session: new,
        state_json: None,
        prev_status: None,
        case_timers: None,
        guard: None,
    }
}

async fn one_bad_step_fails_alone(db: TestDb) {
    let (runner, store) = runner(&db, RunnerOptions::default()).await;
    let version = runner
        .bundle()
        .flow("bench", Lang::Ja)
        .unwrap()
        .version
        .clone();
    let store: Arc<dyn Store> = store.arc();
    let committer = GroupCommitter::spawn(store.clone(), GroupCommitOptions::default()).unwrap();
    let new = |i: usize| NewSession {
        user: UserKey::new(Transport::Terminal, &format!("batch-{i}")).unwrap(),
        script_id: "bench".into(),
        lang: Lang::Ja,
        version: version.clone(),
        now: chrono::Utc::now(),
        presumed: Presumption::Read,
    };
    // Submitted together (on this single-threaded runtime the committer
    // runs only once all are queued, so they are likely one batch); the
    // step for a session that does not exist must fail, the others not.
    // A step computed from an old revision of its session is refused the
    // same way, and so is a first step that presumed its owner had no
    // session when they have one; a first step that presumed rightly goes
    // through.
    let existing = store.create_session(&new(3)).await.unwrap();
    let presumed = |i: usize| NewSession {
        presumed: Presumption::NoSession,
        ..new(i)
    };
    let stale = OwnedStep {
        rev: 5,
        ..step(existing.id, None)
    };
    let results = futures::future::join_all(vec![
        committer.commit(step(SessionId(0), Some(new(1)))),
        committer.commit(step(SessionId(987_654), None)),
        committer.commit(step(SessionId(0), Some(new(2)))),
        committer.commit(stale),
        committer.commit(step(SessionId(0), Some(presumed(3)))),
        committer.commit(step(SessionId(0), Some(presumed(4)))),
    ])
    .await;
    let ok: Vec<bool> = results.iter().map(|(r, _)| r.is_ok()).collect();
    assert_eq!(ok, vec![true, false, true, false, false, true]);
    assert!(
        matches!(&results[4].0, Err(StoreError::NotNew(owners)) if owners == &vec![existing.user.clone()]),
        "{:?}",
        results[4].0
    );
    assert_eq!(
        store.sessions_of_user(&existing.user).await.unwrap().len(),
        1
    );
    assert!(matches!(results[1].0, Err(StoreError::NotFound(_))));
    assert!(
        matches!(&results[3].0, Err(StoreError::Stale(ids)) if ids == &vec![existing.id]),
        "{:?}",
        results[3].0
    );
    assert_eq!(store.session(existing.id).await.unwrap().unwrap().rev, 0);
    for i in [1, 2, 4] {
        let user = UserKey::new(Transport::Terminal, &format!("batch-{i}")).unwrap();
        let s = store
            .open_session(&user)
            .await
            .unwrap()
            .expect("created with its first step");
        assert_eq!(s.status, Status::Active);
        assert_eq!(s.current_node, "q01");
    }
}

/// Two bot instances on one database, each with its session cache: a turn
/// computed from a cached state that the other instance has moved on from
/// is refused by the store and run again on the stored state, so neither
/// instance writes over the other's answers.
async fn a_stale_cached_session_is_read_again_not_written_over(db: TestDb) {
    let (a, store) = runner(&db, RunnerOptions::default()).await;
    let (b, _) = runner(&db, RunnerOptions::default()).await;
    let user = UserKey::new(Transport::Terminal, "owner-two").unwrap();
    let first = a
        .handle(&user, Input::Text("こんにちは".into()), None)
        .await
        .unwrap();
    a.handle(&user, Input::Text(answer(1)), None).await.unwrap();
    // The owner's next message reaches the other instance.
    b.handle(&user, Input::Text(answer(2)), None).await.unwrap();
    // `a` still caches the state after answer 1.
    assert_eq!(a.cached_state(&user).unwrap().answers.len(), 1);
    let turn = a.handle(&user, Input::Text(answer(3)), None).await.unwrap();
    assert_eq!(turn.session, first.session);
    let s = store.open_session(&user).await.unwrap().unwrap();
    let texts: Vec<String> = s.state.answers.iter().map(|(_, v)| v.as_key()).collect();
    assert_eq!(texts, vec![answer(1), answer(2), answer(3)]);
    assert_eq!(s.rev, 4);
    assert_eq!(a.cached_state(&user).unwrap(), s.state);

    // The owner's data is deleted by another process (`madoguchi forget`):
    // the next message starts a new consultation instead of writing the
    // cached answers back.
    store.forget_user(&user, chrono::Utc::now()).await.unwrap();
    let turn = a
        .handle(&user, Input::Text("こんにちは".into()), None)
        .await
        .unwrap();
    assert_ne!(turn.session, first.session);
    let s = store.open_session(&user).await.unwrap().unwrap();
    assert!(s.state.answers.is_empty(), "{:?}", s.state.answers);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM answers").await,
        0,
        "nothing of the deleted consultation is written back"
    );
}

/// `has_open_session` answers from the cache for an owner mid-way, from
/// the store otherwise, and no for an owner whose consultation ended.
#[tokio::test]
async fn has_open_session_follows_the_consultation_with_and_without_the_cache() {
    for cache in [true, false] {
        let options = RunnerOptions {
            session_cache: cache,
            ..RunnerOptions::default()
        };
        let db = TestDb::sqlite("m");
        let (runner, store) = runner(&db, options).await;
        let user = UserKey::new(Transport::Terminal, "asker").unwrap();
        assert!(!runner.has_open_session(&user).await.unwrap());
        runner
            .handle(&user, Input::Text("こんにちは".into()), None)
            .await
            .unwrap();
        assert!(
            runner.has_open_session(&user).await.unwrap(),
            "cache {cache}"
        );
        assert_eq!(runner.cached_state(&user).is_some(), cache);
        for q in 1..=20 {
            runner
                .handle(&user, Input::Text(answer(q)), None)
                .await
                .unwrap();
        }
        assert!(store.open_session(&user).await.unwrap().is_none());
        assert!(
            !runner.has_open_session(&user).await.unwrap(),
            "cache {cache}"
        );
    }
}

on_both_backends!(
    two_instances_never_both_create_an_owners_session,
    flavor = "multi_thread",
    worker_threads = 2
);

/// Two instances (two stores, each with its own connections and group
/// committer) receive the first message of the same owners at the same
/// moment, and both start a session without reading (invariant 7's
/// presumption). For every owner exactly one session is created; the
/// other instance's step is refused, to be run again after a read.
async fn two_instances_never_both_create_an_owners_session(db: TestDb) {
    const N: usize = 200;
    let (runner_a, store_a) = runner(&db, RunnerOptions::default()).await;
    let store_b = db.open().await;
    let version = runner_a
        .bundle()
        .flow("bench", Lang::Ja)
        .unwrap()
        .version
        .clone();
    let a = GroupCommitter::spawn(store_a.arc(), GroupCommitOptions::default()).unwrap();
    let b = GroupCommitter::spawn(store_b.arc(), GroupCommitOptions::default()).unwrap();
    let new = |i: usize| NewSession {
        user: UserKey::new(Transport::Terminal, &format!("both-{i}")).unwrap(),
        script_id: "bench".into(),
        lang: Lang::Ja,
        version: version.clone(),
        now: chrono::Utc::now(),
        presumed: Presumption::NoSession,
    };
    let mut pending = Vec::new();
    for i in 0..N {
        pending.push(a.commit(step(SessionId(0), Some(new(i)))));
        pending.push(b.commit(step(SessionId(0), Some(new(i)))));
    }
    let results = futures::future::join_all(pending).await;
    for i in 0..N {
        let (ra, rb) = (&results[2 * i].0, &results[2 * i + 1].0);
        assert!(
            ra.is_ok() != rb.is_ok(),
            "owner {i}: exactly one instance creates the session: {ra:?} / {rb:?}"
        );
        let refused = if ra.is_ok() { rb } else { ra };
        assert!(
            matches!(refused, Err(StoreError::NotNew(_))),
            "owner {i}: {refused:?}"
        );
        assert_eq!(
            store_a.sessions_of_user(&new(i).user).await.unwrap().len(),
            1
        );
    }
    assert_eq!(
        count(&store_a, "SELECT COUNT(*) FROM sessions").await,
        N as i64
    );
}

/// What the store holds for one owner, without ids and with the case's id
/// replaced by whether it is the owner's case, so that two owners' records
/// compare.
#[derive(Debug, PartialEq)]
struct Held {
    state: serde_json::Value,
    /// The session's current answers, rebuilt from its answer log.
    current: Vec<(u16, String)>,
    answers: Vec<(String, Option<String>, String, bool)>,
    reasks: i64,
    cases: Vec<(String, String, String, u8, String)>,
    consents: Vec<(bool, bool, String)>,
    deliveries: Vec<(String, String, String)>,
    audit: Vec<(String, String)>,
    /// The cases' timers: kind, and the headline of the case.
    timers: Vec<(String, String)>,
}

async fn held(store: &AnyStore, user: &UserKey) -> Held {
    let s: Arc<dyn Store> = store.arc();
    let sessions = s.sessions_of_user(user).await.unwrap();
    assert_eq!(sessions.len(), 1, "{user}: one session");
    let session = &sessions[0];
    let answers = s
        .answers(session.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.node,
                a.value.map(|v| serde_json::to_string(&v).unwrap()),
                a.raw,
                a.correction,
            )
        })
        .collect();
    let cases = s.cases_of_user(user).await.unwrap();
    let case_ids: Vec<_> = cases.iter().map(|c| c.id).collect();
    let mut deliveries = Vec::new();
    let mut audit = Vec::new();
    let mut timers = Vec::new();
    for c in &cases {
        assert_eq!(c.session, session.id, "a case names its session");
        for kind in ["test_reminder", "test_follow_up"] {
            let n = store
                .count(&format!(
                    "SELECT COUNT(*) FROM timers WHERE case_id = {} AND kind = '{kind}' AND subject = 'case:{}/{kind}'",
                    c.id.0, c.id.0
                ))
                .await;
            for _ in 0..n {
                timers.push((kind.to_string(), format!("case {}", c.headline)));
            }
        }
        for d in s.deliveries(c.id).await.unwrap() {
            deliveries.push((d.hub_id, d.transport, d.target));
        }
        for a in s.audit(Some(c.id)).await.unwrap() {
            audit.push((a.actor, a.action));
        }
    }
    let consents = s
        .consents(user)
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            assert_eq!(c.session, session.id, "a consent names its session");
            if let Some(case) = c.case {
                assert!(case_ids.contains(&case), "a consent names the owner's case");
            }
            (c.granted, c.case.is_some(), c.wording)
        })
        .collect();
    Held {
        state: serde_json::to_value(&session.state).unwrap(),
        current: session
            .state
            .answers
            .iter()
            .map(|(ix, v)| (*ix, serde_json::to_string(v).unwrap()))
            .collect(),
        answers,
        reasks: store
            .count(&format!(
                "SELECT COUNT(*) FROM reasks WHERE session_id = {}",
                session.id.0
            ))
            .await,
        cases: cases
            .into_iter()
            .map(|c| (c.version, c.headline, c.hub_id, c.step, c.user.to_string()))
            .map(|(v, h, hub, step, u)| (v, h, hub, step, u.replace(&user.to_string(), "owner")))
            .collect(),
        consents,
        deliveries,
        audit,
        timers,
    }
}

/// Re-asks, restarts (with and without answers after them), consent
/// decisions, cases with their forwarding consent, deliveries and audit
/// entries, for sessions that exist and one created by its step: written
/// by `commit_steps` as one batch, the store holds for each owner exactly
/// what it holds when the same steps are committed one at a time. The
/// batch is handed to the store directly, so it is one batch whatever the
/// timing.
async fn a_batch_with_every_kind_of_effect_stores_what_single_steps_store(db: TestDb) {
    use madoguchi::answer::AnswerValue;
    use madoguchi::engine::{CaseDraft, ConsentRecord, Effect, Recorded};
    use madoguchi::routing::{HubRef, RouteDecision};
    use madoguchi::store::{NewDelivery, StepCommit};
    // A runner records the script versions a session names.
    let (runner, store) = runner(&db, RunnerOptions::default()).await;
    let version = runner
        .bundle()
        .flow("bench", Lang::Ja)
        .unwrap()
        .version
        .clone();
    let s: Arc<dyn Store> = store.arc();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T01:00:00.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let record = |node: &str, ix: u16, text: &str| {
        Effect::Record(Recorded {
            node: node.into(),
            ix,
            value: AnswerValue::Text(text.into()),
            raw: text.into(),
            correction: false,
        })
    };
    let hub = |id: &str| HubRef {
        id: id.into(),
        name: format!("{id} hub"),
    };
    let consent = |granted: bool, wording: &str| ConsentRecord {
        granted,
        hubs: vec![hub("hyogo-pro")],
        items: vec!["会社名".into()],
        wording: wording.into(),
    };
    let draft = |headline: &str| CaseDraft {
        headline: headline.into(),
        summary_plain: "【企業情報シート】".into(),
        summary_markdown: "**企業情報シート**".into(),
        route: RouteDecision {
            rule: "r".into(),
            reason: "理由".into(),
            primary: hub("hyogo-pro"),
            copies: vec![hub("kobe-chamber")],
            step: 3,
            passed_over: vec![],
            follow_up: None,
        },
        tags: vec!["人材".into()],
        consent: consent(true, "共有してよいですか？"),
        step: 3,
    };
    let deliveries = vec![
        NewDelivery {
            hub_id: "hyogo-pro".into(),
            transport: "local".into(),
            target: "inbox".into(),
        },
        NewDelivery {
            hub_id: "kobe-chamber".into(),
            transport: "local".into(),
            target: "inbox".into(),
        },
    ];
    // Each owner's step: its effects, and whether its session is created
    // by the step.
    let once: Vec<(Vec<Effect>, bool)> = vec![
        // An answer, then a question asked again.
        (
            vec![
                record("q01", 1, "一つ目"),
                Effect::Reask {
                    node: "q02".into(),
                    ix: 2u16,
                },
            ],
            false,
        ),
        // Answers before and after a restart: only those after count (the
        // one before is to a question not answered again, so it would
        // show if it counted).
        (
            vec![
                record("q03", 3, "前"),
                Effect::Restarted,
                record("q01", 1, "後1"),
                record("q02", 2, "後2"),
            ],
            false,
        ),
        // A restart with nothing after it.
        (vec![record("q01", 1, "消える"), Effect::Restarted], false),
        // A declined consent, then a case with its own consent.
        (
            vec![
                Effect::Consent(consent(false, "いいえ")),
                Effect::CaseReady(Box::new(draft("株式会社A"))),
            ],
            false,
        ),
        // A case for a session created by the same step, with a re-ask.
        (
            vec![
                record("q01", 1, "新規"),
                Effect::Reask {
                    node: "q03".into(),
                    ix: 3u16,
                },
                Effect::CaseReady(Box::new(draft("株式会社B"))),
            ],
            true,
        ),
        // Only an answer.
        (vec![record("q01", 1, "ふつう")], false),
    ];
    // The steps many times over, so that the batch's rows of each kind
    // fill multi-row statements with padding rows, and its deliveries and
    // timers (two for each of 262 cases) more than one of the largest
    // statements (512 rows, see the SQLite store's `PADDED_EFFECTS`).
    const COPIES: usize = 131;
    let kinds: Vec<&(Vec<Effect>, bool)> = once.iter().cycle().take(COPIES * once.len()).collect();
    // Two reminder timers for each case, whose subjects name it.
    let timers = madoguchi::store::CaseTimers(Arc::new(|id, since| {
        ["test_reminder", "test_follow_up"]
            .into_iter()
            .map(|kind| madoguchi::store::NewTimer {
                kind: kind.into(),
                subject: format!("case:{}/{kind}", id.0),
                case: Some(id),
                due_at: since + chrono::Duration::days(3),
                payload: serde_json::json!({ "case": id.0 }),
            })
            .collect()
    }));
    let state = SessionState {
        status: Status::Active,
        ..SessionState::default()
    };
    let mut batch_users = Vec::new();
    let mut single_users = Vec::new();
    for (set, users) in [("batch", &mut batch_users), ("single", &mut single_users)] {
        let mut news = Vec::new();
        let mut sessions = Vec::new();
        for (i, (_, created)) in kinds.iter().enumerate() {
            let user = UserKey::new(Transport::Terminal, &format!("{set}-{i}")).unwrap();
            let new = NewSession {
                user: user.clone(),
                script_id: "bench".into(),
                lang: Lang::Ja,
                version: version.clone(),
                now,
                presumed: Presumption::NoSession,
            };
            let session = if *created {
                SessionId(0)
            } else {
                s.create_session(&new).await.unwrap().id
            };
            news.push(created.then_some(new));
            sessions.push(session);
            users.push(user);
        }
        let commits: Vec<StepCommit<'_>> = kinds
            .iter()
            .enumerate()
            .map(|(i, (effects, _))| StepCommit {
                session: sessions[i],
                rev: 0,
                now,
                state: &state,
                current_node: "q02",
                effects,
                deliveries: deliveries.clone(),
                new_session: news[i].as_ref(),
                state_json: None,
                // As stored by `create_session`.
                prev_status: Some(Status::New),
                case_timers: Some(&timers),
            })
            .collect();
        let outcomes = if set == "batch" {
            s.commit_steps(&commits).await.unwrap()
        } else {
            let mut v = Vec::new();
            for c in &commits {
                v.push(s.commit_step(c).await.unwrap());
            }
            v
        };
        let got: Vec<(bool, bool)> = outcomes
            .iter()
            .map(|o| (o.case.is_some(), o.created.is_some()))
            .collect();
        let expected = [
            (false, false),
            (false, false),
            (false, false),
            (true, false),
            (true, true),
            (false, false),
        ];
        assert_eq!(
            got,
            expected
                .iter()
                .copied()
                .cycle()
                .take(kinds.len())
                .collect::<Vec<_>>(),
            "{set}"
        );
        // Each step's case is the one stored for its owner.
        for (o, user) in outcomes.iter().zip(users.iter()) {
            if let Some(case) = o.case {
                let c = s.case(case).await.unwrap().expect("the case");
                assert_eq!(&c.user, user);
            }
        }
    }
    // Nothing but these rows, in both sets together: padding rows that
    // slipped through would have no owner to show up under.
    for (sql, per_copy) in [
        ("SELECT COUNT(*) FROM cases", 2),
        ("SELECT COUNT(*) FROM consents", 3),
        ("SELECT COUNT(*) FROM deliveries", 4),
        ("SELECT COUNT(*) FROM audit_log WHERE action = 'routed'", 2),
        ("SELECT COUNT(*) FROM timers", 4),
        ("SELECT COUNT(*) FROM reasks", 2),
    ] {
        assert_eq!(
            store.count(sql).await,
            2 * COPIES as i64 * per_copy,
            "{sql}"
        );
    }
    for (n, (b, o)) in batch_users.iter().zip(&single_users).enumerate() {
        let (hb, ho) = (held(&store, b).await, held(&store, o).await);
        assert_eq!(hb, ho, "owner {n}");
        // Not vacuous: what each kind of step should have left.
        let i = n % once.len();
        match i {
            0 => assert_eq!(hb.reasks, 1),
            1 => {
                let raws: Vec<&str> = hb.answers.iter().map(|a| a.2.as_str()).collect();
                assert_eq!(raws, vec!["前", "後1", "後2"]);
                let now: Vec<u16> = hb.current.iter().map(|a| a.0).collect();
                assert_eq!(now, vec![1, 2]);
            }
            2 => {
                assert_eq!(hb.answers.len(), 1);
                assert!(hb.current.is_empty());
            }
            3 | 4 => {
                assert_eq!(hb.cases.len(), 1);
                assert_eq!(hb.deliveries.len(), 2);
                assert_eq!(hb.audit, vec![("bot".to_string(), "routed".to_string())]);
                assert_eq!(hb.timers.len(), 2);
                let expect: Vec<(bool, bool)> = if i == 3 {
                    vec![(false, false), (true, true)]
                } else {
                    vec![(true, true)]
                };
                let got: Vec<(bool, bool)> = hb.consents.iter().map(|c| (c.0, c.1)).collect();
                assert_eq!(got, expect);
                assert_eq!(hb.reasks, if i == 4 { 1 } else { 0 });
            }
            _ => assert_eq!(hb.answers.len(), 1),
        }
    }
}

/// SQLite fsyncs a batch's WAL frames after its commit, outside the write
/// lock: the next batch is written while one waits for the disk, and no
/// owner hears of a step before the fsync that covers it has finished.
/// The fsync is a stand-in here, held back until the test lets it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_a_batch_only_after_its_fsync_and_writes_the_next_meanwhile() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.db");
    // Created first, so that the store finds a file and syncs its WAL.
    drop(
        madoguchi::store::sqlite::SqliteStore::open(&path)
            .await
            .unwrap(),
    );
    let began = Arc::new(AtomicUsize::new(0));
    let (go, held) = mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let sync: madoguchi::store::walsync::SyncFn = {
        let began = began.clone();
        Arc::new(move || {
            began.fetch_add(1, Ordering::SeqCst);
            held.lock().unwrap().recv().map_err(std::io::Error::other)
        })
    };
    let sqlite = madoguchi::store::sqlite::SqliteStore::open_with_wal_sync(&path, sync)
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    assert!(store.deferred_flush());
    store
        .save_version(&madoguchi::store::VersionRecord {
            version: "v1".into(),
            script_id: "bench".into(),
            lang: Lang::Ja,
            script_name: "bench.ja.yaml".into(),
            script_text: String::new(),
            routing_name: "routing.yaml".into(),
            routing_text: String::new(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let committer =
        Arc::new(GroupCommitter::spawn(store.clone(), GroupCommitOptions::default()).unwrap());
    let new = |i: usize| NewSession {
        user: UserKey::new(Transport::Terminal, &format!("held-{i}")).unwrap(),
        script_id: "bench".into(),
        lang: Lang::Ja,
        version: "v1".into(),
        now: chrono::Utc::now(),
        presumed: Presumption::Read,
    };
    let sessions = |store: Arc<dyn Store>| async move {
        let mut n = 0;
        for i in 0..2 {
            n += store.open_session(&new(i).user).await.unwrap().is_some() as usize;
        }
        n
    };
    let wait_until = |what: &'static str, f: Box<dyn Fn() -> bool + Send>| async move {
        for _ in 0..3000 {
            if f() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("waited 30 s for {what}");
    };
    // The first step is committed, and its fsync is held.
    let first = tokio::spawn({
        let c = committer.clone();
        async move { c.commit(step(SessionId(0), Some(new(0)))).await }
    });
    let b = began.clone();
    wait_until(
        "the first fsync",
        Box::new(move || b.load(Ordering::SeqCst) == 1),
    )
    .await;
    assert_eq!(
        sessions(store.clone()).await,
        1,
        "committed before its fsync"
    );
    // A second owner's step is written while the first waits for the disk.
    let second = tokio::spawn({
        let c = committer.clone();
        async move { c.commit(step(SessionId(0), Some(new(1)))).await }
    });
    for _ in 0..3000 {
        if sessions(store.clone()).await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        sessions(store.clone()).await,
        2,
        "the second batch was not written during the first fsync"
    );
    assert!(
        !first.is_finished(),
        "the first owner was answered before the fsync finished"
    );
    assert!(
        !second.is_finished(),
        "the second owner was answered before any fsync covered it"
    );
    // The first fsync began before the second commit, so it cannot cover
    // it: the second owner waits for an fsync of its own.
    go.send(()).unwrap();
    let (r, _) = first.await.unwrap();
    r.unwrap();
    let b = began.clone();
    wait_until(
        "the second fsync",
        Box::new(move || b.load(Ordering::SeqCst) == 2),
    )
    .await;
    assert!(
        !second.is_finished(),
        "answered by an fsync that began before its commit"
    );
    go.send(()).unwrap();
    let (r, _) = second.await.unwrap();
    r.unwrap();
    drop(committer);
}
