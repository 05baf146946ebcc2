//! One story of a consultation's life in storage, generic over [`Store`], so
//! every backend is held to the same behaviour.

use crate::on_both_backends;
use crate::support::db::{AnyStore, TestDb};
use crate::support::t0;
use chrono::Duration;
use madoguchi::answer::AnswerValue;
use madoguchi::domain::ids::{CaseId, SessionId, Transport, UserKey};
use madoguchi::engine::{CaseDraft, ConsentRecord, Effect, Recorded, SessionState, Status};
use madoguchi::routing::{HubRef, RouteDecision};
use madoguchi::script::Lang;
use madoguchi::store::*;

fn hub(id: &str) -> HubRef {
    HubRef {
        id: id.into(),
        name: format!("{id} name"),
    }
}

fn route() -> RouteDecision {
    RouteDecision {
        rule: "talent-need-clear".into(),
        reason: "人材ニーズが明確".into(),
        primary: hub("hyogo-pro"),
        copies: vec![hub("hyogo-chamber")],
        step: 3,
        passed_over: vec![],
        follow_up: None,
    }
}

fn record(node: &str, ix: u16, v: AnswerValue, correction: bool) -> Effect {
    Effect::Record(Recorded {
        node: node.into(),
        ix,
        value: v,
        raw: "raw".into(),
        correction,
    })
}

/// What a new message continues, asked for many owners at once, and steps
/// committed together.
/// A step of an existing session with the story's time; the question is
/// "q" while the session is open and "done" once it is closed.
fn step<'a>(
    session: SessionId,
    rev: i64,
    state: &'a SessionState,
    prev_status: Option<Status>,
    effects: &'a [Effect],
) -> StepCommit<'a> {
    StepCommit {
        session,
        rev,
        now: t0(),
        state,
        current_node: if state.status.is_open() { "q" } else { "done" },
        effects,
        deliveries: vec![],
        new_session: None,
        state_json: None,
        prev_status,
        case_timers: None,
    }
}

async fn resume_and_batches(store: &dyn Store, done_owner: &UserKey, open_owner: &UserKey) {
    let new = |name: &str| NewSession {
        user: UserKey::new(Transport::Terminal, name).unwrap(),
        script_id: "first_contact".into(),
        lang: Lang::Ja,
        version: "abc123".into(),
        now: t0(),
        presumed: Presumption::Read,
    };

    // The open session, else the latest, else nothing; in the order asked,
    // an owner asked for twice answered twice.
    let nobody = UserKey::new(Transport::Terminal, "nobody").unwrap();
    let r = store
        .sessions_to_resume(&[
            done_owner.clone(),
            nobody.clone(),
            open_owner.clone(),
            done_owner.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0], store.latest_session(done_owner).await.unwrap());
    assert_eq!(r[0].as_ref().unwrap().status, Status::Completed);
    assert_eq!(r[1], None);
    assert_eq!(r[2], store.open_session(open_owner).await.unwrap());
    assert!(r[2].is_some());
    assert_eq!(r[3], r[0]);
    assert!(store.sessions_to_resume(&[]).await.unwrap().is_empty());
    // Only an open session counts as one.
    assert!(store.has_open_session(open_owner).await.unwrap());
    assert!(!store.has_open_session(done_owner).await.unwrap());
    assert!(!store.has_open_session(&nobody).await.unwrap());

    // Two steps committed together. The first moves both sessions from
    // new to active (the status is written); the second leaves one active
    // (its status is left alone) and completes the other.
    let a = store.create_session(&new("batch-a")).await.unwrap();
    let b = store.create_session(&new("batch-b")).await.unwrap();
    let active = SessionState {
        status: Status::Active,
        ..SessionState::default()
    };
    let done = SessionState {
        status: Status::Completed,
        ..SessionState::default()
    };
    let none: Vec<Effect> = Vec::new();
    store
        .commit_steps(&[
            step(a.id, 0, &active, Some(Status::New), &none),
            step(b.id, 0, &active, Some(Status::New), &none),
        ])
        .await
        .unwrap();
    store
        .commit_steps(&[
            step(a.id, 1, &active, Some(Status::Active), &none),
            step(b.id, 1, &done, Some(Status::Active), &none),
        ])
        .await
        .unwrap();
    let a_now = store.session(a.id).await.unwrap().unwrap();
    let b_now = store.session(b.id).await.unwrap().unwrap();
    assert_eq!((a_now.status, a_now.rev), (Status::Active, 2));
    assert_eq!(
        (b_now.status, b_now.rev, b_now.current_node.as_str()),
        (Status::Completed, 2, "done")
    );
    assert_eq!(b_now.state.status, Status::Completed);

    // An open session is what a new message continues even when a newer
    // one is closed.
    let user_a = a_now.user.clone();
    let newer = store.create_session(&new("batch-a")).await.unwrap();
    store
        .commit_step(&step(newer.id, 0, &done, Some(Status::New), &none))
        .await
        .unwrap();
    let r = store
        .sessions_to_resume(std::slice::from_ref(&user_a))
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().map(|s| s.id), Some(a.id));
    assert_eq!(r[0], store.open_session(&user_a).await.unwrap());

    // A stale step in a batch: nothing of the batch is written. A session
    // moved on by two steps elsewhere is named; one moved on by exactly
    // one step may not be, but committed alone it always is.
    let c = store.create_session(&new("batch-c")).await.unwrap();
    let answer = vec![record("q", 1, AnswerValue::Text("x".into()), false)];
    let batch = |rev| {
        [
            step(a.id, rev, &active, Some(Status::Active), &answer),
            step(c.id, 0, &active, Some(Status::New), &answer),
        ]
    };
    // `a` is at revision 2: a step from revision 1 is one behind.
    match store.commit_steps(&batch(1)).await {
        Err(StoreError::Stale(ids)) => assert!(ids.is_empty() || ids == vec![a.id], "{ids:?}"),
        r => panic!("a stale step was committed: {r:?}"),
    }
    let r = store
        .commit_steps(&[step(a.id, 1, &active, Some(Status::Active), &answer)])
        .await;
    assert!(
        matches!(r, Err(StoreError::Stale(ref ids)) if ids == &vec![a.id]),
        "{r:?}"
    );
    store
        .commit_step(&step(a.id, 2, &active, None, &none))
        .await
        .unwrap();
    // Now two behind.
    let r = store.commit_steps(&batch(1)).await;
    assert!(
        matches!(r, Err(StoreError::Stale(ref ids)) if ids == &vec![a.id]),
        "{r:?}"
    );
    // Three steps in one batch (the SQLite store pads its statements with
    // rows that change nothing): each answer is stored once, for its own
    // session, and nothing else.
    let trio = [
        store.create_session(&new("batch-d")).await.unwrap(),
        store.create_session(&new("batch-e")).await.unwrap(),
        store.create_session(&new("batch-f")).await.unwrap(),
    ];
    let trio_steps: Vec<StepCommit<'_>> = trio
        .iter()
        .map(|s| step(s.id, 0, &active, Some(Status::New), &answer))
        .collect();
    store.commit_steps(&trio_steps).await.unwrap();
    for s in &trio {
        let answers = store.answers(s.id).await.unwrap();
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].session, s.id);
        assert_eq!(store.session(s.id).await.unwrap().unwrap().rev, 1);
    }

    // First steps that did not read the owner's sessions: each new session
    // is created only if what it presumed holds when the batch is written.
    // batch-b has only a completed session, batch-d an open one.
    let (done_owner, open_owner) = (&b_now.user, &trio[0].user);
    let presumed = |user: &UserKey, presumed| NewSession {
        user: user.clone(),
        presumed,
        ..new("unused")
    };
    let first_timer = UserKey::new(Transport::Terminal, "first-timer").unwrap();
    let another = UserKey::new(Transport::Terminal, "another-first-timer").unwrap();
    let news = [
        presumed(&first_timer, Presumption::NoSession),
        presumed(done_owner, Presumption::NoSession),
        presumed(open_owner, Presumption::NoOpenSession),
        presumed(&another, Presumption::NoOpenSession),
        presumed(done_owner, Presumption::NoOpenSession),
        presumed(open_owner, Presumption::NoSession),
    ];
    fn first_step<'a>(
        n: &'a NewSession,
        state: &'a SessionState,
        effects: &'a [Effect],
    ) -> StepCommit<'a> {
        StepCommit {
            new_session: Some(n),
            ..step(SessionId(0), 0, state, None, effects)
        }
    }
    let first = |n| first_step(n, &active, &answer);
    let sessions_before = store.sessions_of_user(done_owner).await.unwrap().len();
    let r = store
        .commit_steps(&[
            first(&news[0]),
            first(&news[1]),
            first(&news[2]),
            first(&news[3]),
        ])
        .await;
    match r {
        Err(StoreError::NotNew(owners)) => {
            assert_eq!(owners, vec![done_owner.clone(), open_owner.clone()])
        }
        r => panic!("a new session was created over a stored one: {r:?}"),
    }
    assert!(
        store
            .sessions_of_user(&first_timer)
            .await
            .unwrap()
            .is_empty(),
        "nothing of the refused batch is written"
    );
    // Alone: a closed session does not stop an explicit start, an open one
    // does, and any session stops a step that presumed none.
    let created = store.commit_step(&first(&news[4])).await.unwrap();
    assert!(created.created.is_some());
    assert_eq!(
        store.sessions_of_user(done_owner).await.unwrap().len(),
        sessions_before + 1
    );
    let r = store.commit_step(&first(&news[5])).await;
    assert!(
        matches!(r, Err(StoreError::NotNew(ref o)) if o == &vec![open_owner.clone()]),
        "{r:?}"
    );
    // Without the refused ones the batch goes through, answers and all.
    let done = store
        .commit_steps(&[first(&news[0]), first(&news[3])])
        .await
        .unwrap();
    for (owner, outcome) in [&first_timer, &another].into_iter().zip(&done) {
        let s = store.open_session(owner).await.unwrap().unwrap();
        assert_eq!((Some(s.id), s.rev), (outcome.created, 1));
        assert_eq!(store.answers(s.id).await.unwrap().len(), 1);
    }

    let c_now = store.session(c.id).await.unwrap().unwrap();
    assert_eq!(
        (c_now.status, c_now.rev),
        (Status::New, 0),
        "nothing of a stale batch is written"
    );
    assert!(store.answers(c.id).await.unwrap().is_empty());
    assert!(store.answers(a.id).await.unwrap().is_empty());
    assert_eq!(store.session(a.id).await.unwrap().unwrap().rev, 3);
}

pub async fn story(store: &dyn Store) {
    let owner = UserKey::new(Transport::Discord, "424242").unwrap();
    let other = UserKey::new(Transport::Terminal, "someone").unwrap();

    // Versions are stored once and read back exactly.
    let v = VersionRecord {
        version: "abc123".into(),
        script_id: "first_contact".into(),
        lang: Lang::Ja,
        script_name: "dialogs/first_contact.ja.yaml".into(),
        script_text: "script: first_contact\n".into(),
        routing_name: "dialogs/routing.yaml".into(),
        routing_text: "network: x\n".into(),
        created_at: t0(),
    };
    store.save_version(&v).await.unwrap();
    store.save_version(&v).await.unwrap();
    assert_eq!(store.load_version("abc123").await.unwrap(), Some(v.clone()));
    assert_eq!(store.load_version("nope").await.unwrap(), None);

    // A session opens, answers arrive, one is corrected.
    let s = store
        .create_session(&NewSession {
            user: owner.clone(),
            script_id: "first_contact".into(),
            lang: Lang::Ja,
            version: "abc123".into(),
            now: t0(),
            presumed: Presumption::Read,
        })
        .await
        .unwrap();
    assert_eq!(s.status, Status::New);
    let _noise = store
        .create_session(&NewSession {
            user: other.clone(),
            script_id: "first_contact".into(),
            lang: Lang::En,
            version: "abc123".into(),
            now: t0(),
            presumed: Presumption::Read,
        })
        .await
        .unwrap();
    let mut state = SessionState {
        status: Status::Active,
        ..SessionState::default()
    };
    state
        .answers
        .push((3, AnswerValue::Text("株式会社テスト".into())));
    let effects = vec![record(
        "company_name",
        3,
        AnswerValue::Text("株式会社テスト".into()),
        false,
    )];
    let out = store
        .commit_step(&StepCommit {
            session: s.id,
            rev: 0,
            now: t0(),
            state: &state,
            current_node: "industry",
            effects: &effects,
            deliveries: vec![],
            new_session: None,
            state_json: None,
            prev_status: None,
            case_timers: None,
        })
        .await
        .unwrap();
    assert_eq!(out.case, None);
    // A step computed from a revision that is no longer the stored one is
    // refused and writes nothing.
    let stale = store
        .commit_step(&StepCommit {
            session: s.id,
            rev: 0,
            now: t0() + Duration::seconds(1),
            state: &state,
            current_node: "somewhere",
            effects: &effects,
            deliveries: vec![],
            new_session: None,
            state_json: None,
            prev_status: None,
            case_timers: None,
        })
        .await;
    assert!(
        matches!(stale, Err(StoreError::Stale(ref ids)) if ids == &vec![s.id]),
        "{stale:?}"
    );
    assert_eq!(store.answers(s.id).await.unwrap().len(), 1);
    assert_eq!(store.open_session(&owner).await.unwrap().unwrap().rev, 1);

    state.answers.clear();
    state
        .answers
        .push((3, AnswerValue::Text("株式会社テスト2".into())));
    let effects = vec![
        record(
            "company_name",
            3,
            AnswerValue::Text("株式会社テスト2".into()),
            true,
        ),
        Effect::Unset {
            node: "talent_role".into(),
            ix: 7,
        },
    ];
    store
        .commit_step(&StepCommit {
            session: s.id,
            rev: 1,
            now: t0() + Duration::seconds(5),
            state: &state,
            current_node: "industry",
            effects: &effects,
            deliveries: vec![],
            new_session: None,
            state_json: None,
            prev_status: None,
            case_timers: None,
        })
        .await
        .unwrap();
    let answers = store.answers(s.id).await.unwrap();
    assert_eq!(answers.len(), 3, "corrections keep history");
    assert_eq!(
        answers[0].value,
        Some(AnswerValue::Text("株式会社テスト".into()))
    );
    assert!(answers[1].correction);
    assert_eq!(
        answers[2].value, None,
        "a withdrawn answer is recorded as such"
    );

    let open = store.open_session(&owner).await.unwrap().unwrap();
    assert_eq!(open.id, s.id);
    assert_eq!(open.current_node, "industry");
    assert_eq!(open.status, Status::Active);
    // The answers are rebuilt from the answer log: the correction replaced
    // the first answer, and the withdrawn one is not there.
    assert_eq!(open.state, state);
    assert_eq!(open.rev, 2);
    assert_eq!(store.versions_in_use().await.unwrap()[0].open_sessions, 2);

    // After a restart, what was said before stays as history but is no
    // longer part of the state.
    let noise = store.open_session(&other).await.unwrap().unwrap();
    let mut other_state = SessionState {
        status: Status::Active,
        ..SessionState::default()
    };
    other_state.answers.push((1, AnswerValue::Bool(true)));
    let effects = vec![record("privacy", 1, AnswerValue::Bool(true), false)];
    store
        .commit_step(&step(noise.id, 0, &other_state, None, &effects))
        .await
        .unwrap();
    other_state.answers = vec![(2, AnswerValue::Text("again".into()))];
    let effects = vec![
        Effect::Restarted,
        record("company_name", 2, AnswerValue::Text("again".into()), false),
    ];
    store
        .commit_step(&step(noise.id, 1, &other_state, None, &effects))
        .await
        .unwrap();
    let reread = store.open_session(&other).await.unwrap().unwrap();
    assert_eq!(reread.state, other_state);
    assert_eq!(reread.rev, 2);
    assert_eq!(store.answers(noise.id).await.unwrap().len(), 2);

    // Consent, then the case with its deliveries, in one step.
    let consent = ConsentRecord {
        granted: true,
        hubs: vec![hub("hyogo-pro"), hub("hyogo-chamber")],
        items: vec!["会社概要".into()],
        wording: "同意しますか".into(),
    };
    let draft = CaseDraft {
        headline: "株式会社テスト2".into(),
        summary_plain: "【企業情報シート】".into(),
        summary_markdown: "**企業情報シート**".into(),
        route: route(),
        tags: vec!["sales".into()],
        consent: consent.clone(),
        step: 3,
    };
    state.status = Status::Completed;
    // No consent with empty or unrendered wording and no empty sheet or
    // headline: a broken template must not become a consent record or a
    // delivery. Such a step is refused whole and writes nothing.
    let unfit_consent = |wording: &str| ConsentRecord {
        wording: wording.into(),
        ..consent.clone()
    };
    let unfit: Vec<(Vec<Effect>, Unfit)> = vec![
        (
            vec![Effect::Consent(unfit_consent(""))],
            Unfit::EmptyConsentWording,
        ),
        (
            vec![Effect::Consent(unfit_consent(" \n "))],
            Unfit::EmptyConsentWording,
        ),
        (
            vec![Effect::Consent(unfit_consent(
                "{{bold route.primary}} に共有してよいですか？",
            ))],
            Unfit::UnrenderedConsentWording,
        ),
        (
            vec![Effect::CaseReady(Box::new(CaseDraft {
                consent: unfit_consent(""),
                ..draft.clone()
            }))],
            Unfit::EmptyConsentWording,
        ),
        (
            vec![
                Effect::Consent(consent.clone()),
                Effect::CaseReady(Box::new(CaseDraft {
                    summary_plain: String::new(),
                    summary_markdown: String::new(),
                    ..draft.clone()
                })),
            ],
            Unfit::EmptySheet,
        ),
        (
            vec![
                Effect::Consent(consent.clone()),
                Effect::CaseReady(Box::new(CaseDraft {
                    summary_markdown: "\n".into(),
                    ..draft.clone()
                })),
            ],
            Unfit::EmptySheet,
        ),
        (
            vec![
                Effect::Consent(consent.clone()),
                Effect::CaseReady(Box::new(CaseDraft {
                    headline: " ".into(),
                    ..draft.clone()
                })),
            ],
            Unfit::EmptyHeadline,
        ),
    ];
    for (effects, why) in &unfit {
        let r = store
            .commit_step(&StepCommit {
                session: s.id,
                rev: 2,
                now: t0() + Duration::seconds(9),
                state: &state,
                current_node: "done",
                effects,
                deliveries: vec![NewDelivery {
                    hub_id: "hyogo-pro".into(),
                    transport: "discord".into(),
                    target: "111".into(),
                }],
                new_session: None,
                state_json: None,
                prev_status: None,
                case_timers: None,
            })
            .await;
        assert!(
            matches!(&r, Err(StoreError::Unfit(w)) if w == why),
            "{why:?}: {r:?}"
        );
        // Nothing of the step was written: the session is open at the
        // same revision and nothing is due for delivery.
        let open = store.open_session(&owner).await.unwrap().unwrap();
        assert_eq!(open.rev, 2);
        assert!(store
            .due_deliveries("discord", t0() + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty());
    }
    let effects = vec![
        Effect::Consent(consent.clone()),
        Effect::CaseReady(Box::new(draft)),
        Effect::Finished(Status::Completed),
    ];
    let deliveries = vec![
        NewDelivery {
            hub_id: "hyogo-pro".into(),
            transport: "discord".into(),
            target: "111".into(),
        },
        NewDelivery {
            hub_id: "hyogo-chamber".into(),
            transport: "discord".into(),
            target: "222".into(),
        },
    ];
    let out = store
        .commit_step(&StepCommit {
            session: s.id,
            rev: 2,
            now: t0() + Duration::seconds(10),
            state: &state,
            current_node: "done",
            effects: &effects,
            deliveries,
            new_session: None,
            state_json: None,
            prev_status: None,
            case_timers: None,
        })
        .await
        .unwrap();
    let case_id = out.case.expect("a case is created");
    assert!(store.open_session(&owner).await.unwrap().is_none());
    assert_eq!(
        store.latest_session(&owner).await.unwrap().unwrap().status,
        Status::Completed
    );
    resume_and_batches(store, &owner, &other).await;
    let case = store.case(case_id).await.unwrap().unwrap();
    assert_eq!(case.hub_id, "hyogo-pro");
    assert_eq!(case.step, 3);
    assert_eq!(case.status, CaseStatus::Open);
    assert_eq!(case.route, route());
    assert_eq!(
        store
            .cases(&CaseFilter {
                hub_id: Some("hyogo-pro".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .cases(&CaseFilter {
                hub_id: Some("osaka".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        0
    );
    let consents = store.consents(&owner).await.unwrap();
    assert_eq!(consents.len(), 2, "the decision and the forwarding record");
    assert_eq!(consents[1].case, Some(case_id));
    assert_eq!(consents[1].recipients, consent.hubs);

    // The outbox: due rows, a retry, an external id, a delivery.
    let due = store
        .due_deliveries("discord", t0() + Duration::seconds(10), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 2);
    assert!(store
        .due_deliveries("local", t0() + Duration::seconds(10), 10)
        .await
        .unwrap()
        .is_empty());
    let d = &due[0];
    store
        .record_attempt(
            d.id,
            &AttemptOutcome::Retry {
                at: t0() + Duration::seconds(70),
                error: "500".into(),
            },
            t0() + Duration::seconds(11),
        )
        .await
        .unwrap();
    let due = store
        .due_deliveries("discord", t0() + Duration::seconds(12), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "the retried row waits for its time");
    store
        .set_delivery_external_id(d.id, "nonce-1")
        .await
        .unwrap();
    store
        .record_attempt(
            d.id,
            &AttemptOutcome::Delivered {
                external_id: Some("msg-9".into()),
            },
            t0() + Duration::seconds(71),
        )
        .await
        .unwrap();
    let rows = store.deliveries(case_id).await.unwrap();
    assert_eq!(rows[0].status, DeliveryStatus::Delivered);
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[0].external_id.as_deref(), Some("msg-9"));

    // Staff actions with their audit trail.
    let c = store
        .update_case(
            case_id,
            &CaseChange::Claim {
                by: "staff-1".into(),
            },
            "staff-1",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.claimed_by.as_deref()),
        (CaseStatus::Claimed, Some("staff-1"))
    );
    assert!(matches!(
        store
            .update_case(
                case_id,
                &CaseChange::Claim {
                    by: "staff-2".into()
                },
                "staff-2",
                t0()
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .update_case(case_id, &CaseChange::Release, "staff-1", t0())
        .await
        .unwrap();
    let c = store
        .update_case(
            case_id,
            &CaseChange::Forward {
                to_hub: "hyogo-yorozu".into(),
                reason: "販路の課題".into(),
            },
            "staff-1",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(c.hub_id, "hyogo-yorozu");

    // A forward the owner's consent did not cover: a request, the owner's
    // yes, then the consent, the move and the delivery in one transaction.
    let req = store
        .create_forward_request(
            &NewForwardRequest {
                case: case_id,
                user: owner.clone(),
                to_hub: "hyogo-pro".into(),
                reason: "人材ニーズ".into(),
                requested_by: "discord:7".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    let pending = store.forward_request(req).await.unwrap().unwrap();
    assert_eq!(
        (pending.status, pending.to_hub.as_str(), &pending.user),
        (ForwardStatus::Pending, "hyogo-pro", &owner)
    );
    let yes = ConsentRecord {
        granted: true,
        hubs: vec![hub("hyogo-pro")],
        items: vec!["会社概要".into()],
        wording: "引き継いでよいですか".into(),
    };
    let forward = ForwardCase {
        case: case_id,
        to_hub: "hyogo-pro",
        reason: "人材ニーズ",
        actor: "discord:7",
        consent: Some(&yes),
        request: Some(req),
        delivery: Some(NewDelivery {
            hub_id: "hyogo-pro".into(),
            transport: "local".into(),
            target: "hyogo-pro".into(),
        }),
        now: t0(),
    };
    let c = store.forward_case(&forward).await.unwrap();
    assert_eq!(
        (c.hub_id.as_str(), c.status),
        ("hyogo-pro", CaseStatus::Open)
    );
    assert_eq!(
        store.forward_request(req).await.unwrap().unwrap().status,
        ForwardStatus::Accepted
    );
    assert!(
        matches!(
            store.forward_case(&forward).await,
            Err(StoreError::Conflict(_))
        ),
        "an answered request cannot move the case twice"
    );
    assert!(!store
        .decide_forward_request(req, ForwardStatus::Declined, t0())
        .await
        .unwrap());
    assert_eq!(
        store.consents(&owner).await.unwrap().len(),
        3,
        "the new consent is kept with the case"
    );
    assert!(store
        .deliveries(case_id)
        .await
        .unwrap()
        .iter()
        .any(|d| d.hub_id == "hyogo-pro" && d.transport == "local"));
    let declined = store
        .create_forward_request(
            &NewForwardRequest {
                case: case_id,
                user: owner.clone(),
                to_hub: "hyogo-chamber".into(),
                reason: "r".into(),
                requested_by: "discord:7".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    assert!(store
        .decide_forward_request(declined, ForwardStatus::Declined, t0())
        .await
        .unwrap());
    assert_eq!(
        store
            .forward_request(declined)
            .await
            .unwrap()
            .unwrap()
            .status,
        ForwardStatus::Declined
    );

    // Where the case was posted, found again by its message or its thread.
    let post = CasePost {
        case: case_id,
        hub_id: "hyogo-pro".into(),
        transport: "discord".into(),
        channel_id: "111".into(),
        message_id: "9001".into(),
        thread_id: None,
        created_at: t0(),
    };
    store.save_case_post(&post).await.unwrap();
    store
        .save_case_post(&CasePost {
            thread_id: Some("9001".into()),
            ..post.clone()
        })
        .await
        .unwrap();
    store.save_case_post(&post).await.unwrap();
    let posts = store.case_posts(case_id).await.unwrap();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].thread_id.as_deref(),
        Some("9001"),
        "saving again keeps the thread"
    );
    assert_eq!(
        store
            .find_case_post("discord", "9001")
            .await
            .unwrap()
            .unwrap()
            .case,
        case_id
    );
    assert!(store
        .find_case_post("discord", "42")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_case_post("slack", "9001")
        .await
        .unwrap()
        .is_none());
    // Posted anew (the message was deleted): the old message's thread is
    // not this message's.
    store
        .save_case_post(&CasePost {
            message_id: "9002".into(),
            ..post.clone()
        })
        .await
        .unwrap();
    let posts = store.case_posts(case_id).await.unwrap();
    assert_eq!(
        (posts[0].message_id.as_str(), posts[0].thread_id.as_deref()),
        ("9002", None),
        "a new message drops the old message's thread"
    );
    assert!(store
        .find_case_post("discord", "9001")
        .await
        .unwrap()
        .is_none());

    // The owner's current question on a chat transport.
    let live = LivePrompt {
        user: owner.clone(),
        session: s.id,
        node: "industry".into(),
        channel_id: "55".into(),
        message_id: "66".into(),
        data: serde_json::json!([{ "type": 1 }]),
        updated_at: t0(),
    };
    store.set_live_prompt(&live).await.unwrap();
    store
        .set_live_prompt(&LivePrompt {
            message_id: "67".into(),
            ..live.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.live_prompt(&owner).await.unwrap().unwrap().message_id,
        "67"
    );
    assert!(store.live_prompt(&other).await.unwrap().is_none());
    store.clear_live_prompt(&owner).await.unwrap();
    assert!(store.live_prompt(&owner).await.unwrap().is_none());
    store.set_live_prompt(&live).await.unwrap();

    // Relayed messages are remembered by id, for deletion on request.
    let relay = RelayMessage {
        case: case_id,
        user: owner.clone(),
        direction: "to_staff".into(),
        channel_id: "9001".into(),
        message_id: "9002".into(),
        at: t0(),
    };
    store.add_relay_message(&relay).await.unwrap();
    assert_eq!(
        store.relay_messages_of_user(&owner).await.unwrap(),
        vec![relay]
    );
    assert!(matches!(
        store
            .update_case(case_id, &CaseChange::Advance { to_step: 2 }, "s", t0())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .update_case(case_id, &CaseChange::Advance { to_step: 4 }, "s", t0())
            .await
            .unwrap()
            .step,
        4
    );
    let c = store
        .update_case(
            case_id,
            &CaseChange::Close {
                outcome: "採用決定".into(),
            },
            "s",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        (c.status, c.outcome.as_deref()),
        (CaseStatus::Closed, Some("採用決定"))
    );
    let audit = store.audit(Some(case_id)).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["routed", "claim", "release", "forward", "forward", "advance", "close"]
    );
    assert!(
        matches!(
            store
                .forward_case(&ForwardCase {
                    request: None,
                    consent: None,
                    delivery: None,
                    ..forward
                })
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a closed case stays closed"
    );

    // Forgetting removes the owner's data but keeps the consent records.
    let r = store
        .forget_user(&owner, t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        r,
        ForgetReport {
            sessions: 1,
            answers: 3,
            cases: 1,
            consent_records_kept: 3,
            relayed: r.relayed.clone(),
        }
    );
    assert!(store.latest_session(&owner).await.unwrap().is_none());
    assert!(store.answers(s.id).await.unwrap().is_empty());
    let tomb = store.case(case_id).await.unwrap().unwrap();
    assert!(tomb.summary_plain.is_empty());
    assert!(store.cases_of_user(&owner).await.unwrap().is_empty());
    assert_eq!(store.consents(&owner).await.unwrap().len(), 3);
    assert!(store.live_prompt(&owner).await.unwrap().is_none());
    assert!(store
        .relay_messages_of_user(&owner)
        .await
        .unwrap()
        .is_empty());
    assert!(store.forward_request(declined).await.unwrap().is_none());
    assert_eq!(
        store.case_posts(case_id).await.unwrap().len(),
        1,
        "post ids stay with the tombstone"
    );
    assert!(
        store
            .due_deliveries("discord", t0() + Duration::days(2), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is sent after forget"
    );
    // The other owner is untouched.
    assert!(store.open_session(&other).await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = madoguchi::store::sqlite::SqliteStore::open(&dir.path().join("story.db"))
        .await
        .unwrap();
    story(&store).await;
}

/// The same story on PostgreSQL, in a schema of its own (skipped, with the
/// reason printed, when no test server is configured).
#[tokio::test]
async fn postgres_story() {
    let Some(store) = madoguchi::store::postgres::PostgresStore::for_tests("story").await else {
        return;
    };
    story(&store).await;
}

/// A database written before answers moved out of the session snapshot
/// (migration 0003) keeps every open consultation: the snapshot's answers
/// become the start of the session's answer log, in the same order, and the
/// history shows no extra rows.
#[tokio::test]
async fn sqlite_sessions_from_before_the_answer_log_keep_their_answers() {
    use sqlx::sqlite::SqliteConnectOptions;
    use std::str::FromStr;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // The schema as the earlier migrations left it.
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for f in ["0001_init.sql", "0002_discord.sql"] {
        std::fs::copy(here.join(f), old.join(f)).unwrap();
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))
        .unwrap()
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let mut state = SessionState {
        status: Status::Active,
        node: 9,
        history: vec![1, 3, 5],
        ..SessionState::default()
    };
    // In the order the engine keeps them: a corrected answer moves last.
    state.answers = vec![
        (5, AnswerValue::Text("製造業".into())),
        (3, AnswerValue::Text("株式会社テスト2".into())),
    ];
    // The old format: the state with its answers.
    let mut old_state = serde_json::to_value(&state).unwrap();
    old_state["answers"] = serde_json::to_value(&state.answers).unwrap();
    let full_json = old_state.to_string();
    assert!(
        full_json.contains("answers"),
        "the old format carried the answers"
    );
    sqlx::query("INSERT INTO script_versions VALUES ('v1', 'first_contact', 'ja', 'a.yaml', '', 'r.yaml', '', ?)")
        .bind(t0())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO sessions (id, user_key, script_id, lang, version, status, current_node, state, created_at, updated_at) VALUES (7, 'discord:1', 'first_contact', 'ja', 'v1', 'active', 'q9', ?, ?, ?)")
        .bind(&full_json)
        .bind(t0())
        .bind(t0())
        .execute(&pool)
        .await
        .unwrap();
    for (node, value, correction) in [
        ("company_name", "株式会社テスト", 0),
        ("industry", "製造業", 0),
        ("company_name", "株式会社テスト2", 1),
    ] {
        sqlx::query("INSERT INTO answers (session_id, node, value, raw, correction, at) VALUES (7, ?, ?, ?, ?, ?)")
            .bind(node)
            .bind(serde_json::to_string(&AnswerValue::Text(value.into())).unwrap())
            .bind(value)
            .bind(correction)
            .bind(t0())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    let store = madoguchi::store::sqlite::SqliteStore::open(&db)
        .await
        .unwrap();
    let owner = UserKey::parse("discord:1").unwrap();
    let s = store.open_session(&owner).await.unwrap().unwrap();
    assert_eq!(s.state, state);
    assert_eq!(s.rev, 0);
    let history = store.answers(s.id).await.unwrap();
    assert_eq!(history.len(), 3, "{history:#?}");
    // The snapshot no longer carries answers.
    let snapshot: String = sqlx::query_scalar("SELECT state FROM sessions WHERE id = 7")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(!snapshot.contains("answers"), "{snapshot}");
    // And the consultation goes on from there.
    state.answers.push((9, AnswerValue::Text("営業".into())));
    let effects = vec![record(
        "talent_role",
        9,
        AnswerValue::Text("営業".into()),
        false,
    )];
    store
        .commit_step(&StepCommit {
            session: s.id,
            rev: 0,
            now: t0(),
            state: &state,
            current_node: "q10",
            effects: &effects,
            deliveries: vec![],
            new_session: None,
            state_json: None,
            prev_status: None,
            case_timers: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.open_session(&owner).await.unwrap().unwrap().state,
        state
    );
}

/// A completed consultation whose case has `n` pending deliveries on
/// `transport` (targets `t0`, `t1`, …, one per hub); returns the case.
pub(crate) async fn case_with_deliveries(
    store: &dyn Store,
    owner: &str,
    transport: &str,
    n: usize,
) -> CaseId {
    let targets = (0..n).map(|i| format!("t{i}")).collect();
    case_with_deliveries_to(store, owner, transport, targets).await
}

/// [`case_with_deliveries`] to these targets, one hub each.
pub(crate) async fn case_with_deliveries_to(
    store: &dyn Store,
    owner: &str,
    transport: &str,
    targets: Vec<String>,
) -> CaseId {
    // Saving a version twice is allowed: it is stored once.
    store
        .save_version(&VersionRecord {
            version: "abc123".into(),
            script_id: "first_contact".into(),
            lang: Lang::Ja,
            script_name: "dialogs/first_contact.ja.yaml".into(),
            script_text: "script: first_contact\n".into(),
            routing_name: "dialogs/routing.yaml".into(),
            routing_text: "network: x\n".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    let s = store
        .create_session(&NewSession {
            user: UserKey::new(Transport::Terminal, owner).unwrap(),
            script_id: "first_contact".into(),
            lang: Lang::Ja,
            version: "abc123".into(),
            now: t0(),
            presumed: Presumption::Read,
        })
        .await
        .unwrap();
    let consent = ConsentRecord {
        granted: true,
        hubs: vec![hub("hyogo-pro")],
        items: vec!["会社概要".into()],
        wording: "同意しますか".into(),
    };
    let state = SessionState {
        status: Status::Completed,
        ..SessionState::default()
    };
    let effects = vec![
        Effect::Consent(consent.clone()),
        Effect::CaseReady(Box::new(CaseDraft {
            headline: format!("{owner} 株式会社"),
            summary_plain: "【企業情報シート】".into(),
            summary_markdown: "**企業情報シート**".into(),
            route: route(),
            tags: vec![],
            consent,
            step: 3,
        })),
        Effect::Finished(Status::Completed),
    ];
    store
        .commit_step(&StepCommit {
            session: s.id,
            rev: 0,
            now: t0(),
            state: &state,
            current_node: "done",
            effects: &effects,
            deliveries: targets
                .into_iter()
                .enumerate()
                .map(|(i, target)| NewDelivery {
                    hub_id: format!("hub-{i}"),
                    transport: transport.into(),
                    target,
                })
                .collect(),
            new_session: None,
            state_json: None,
            prev_status: None,
            case_timers: None,
        })
        .await
        .unwrap()
        .case
        .unwrap()
}

/// Two workers leasing the same outbox at the same moment never get the
/// same delivery, and between them they get all that is due.
async fn concurrent_leases_never_overlap(db: TestDb) {
    let store = db.open().await;
    let n = 40;
    let case = case_with_deliveries(&*store, "lease-owner", "discord", n).await;
    let other = db.open().await;
    let now = t0() + Duration::seconds(1);
    let until = now + Duration::minutes(5);
    // Many small rounds so that the two workers' statements interleave.
    let worker = |s: AnyStore, name: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let batch = s
                .lease_deliveries("discord", name, now, until, 3)
                .await
                .unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|l| {
                assert_eq!(l.taken_over_from, None, "nobody held it before");
                l.delivery.id
            }));
            tokio::task::yield_now().await;
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(worker(store.clone(), "worker-a")),
        tokio::spawn(worker(other.clone(), "worker-b"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all: Vec<i64> = a.iter().chain(b.iter()).copied().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(
        before,
        all.len(),
        "a delivery was leased twice: a={a:?} b={b:?}"
    );
    assert_eq!(all.len(), n, "every due delivery was leased once");
    // While the leases run, nothing is due for a third worker.
    assert!(store
        .lease_deliveries(
            "discord",
            "worker-c",
            now + Duration::minutes(4),
            until,
            100
        )
        .await
        .unwrap()
        .is_empty());
    // Not on another transport either, and not a delivery that is not due.
    let d = store.deliveries(case).await.unwrap();
    assert!(d.iter().all(|d| d.status == DeliveryStatus::Pending));
}
on_both_backends!(
    concurrent_leases_never_overlap,
    flavor = "multi_thread",
    worker_threads = 2
);

/// A worker that dies holding a lease delays its delivery by the lease
/// time only: after expiry another worker takes the delivery over and is
/// told it was taken over (the dead worker's attempt may have reached the
/// platform). The dead worker's late result is then refused, and the new
/// holder's is recorded.
async fn dead_leases_are_taken_over(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "lease-dead", "slack", 1).await;
    let now = t0() + Duration::seconds(1);
    let until = now + Duration::seconds(300);
    let a = store
        .lease_deliveries("slack", "dead-worker", now, until, 10)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    let id = a[0].delivery.id;
    // Before the lease runs out the delivery is not due for anyone.
    assert!(store
        .lease_deliveries(
            "slack",
            "live-worker",
            until - Duration::seconds(1),
            until + Duration::seconds(300),
            10
        )
        .await
        .unwrap()
        .is_empty());
    // After it runs out, it is taken over.
    let later = until + Duration::seconds(1);
    let b = store
        .lease_deliveries(
            "slack",
            "live-worker",
            later,
            later + Duration::seconds(300),
            10,
        )
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].delivery.id, id);
    assert_eq!(b[0].taken_over_from.as_deref(), Some("dead-worker"));
    // The first worker's late result is refused and writes nothing.
    let late = AttemptOutcome::Delivered {
        external_id: Some("from-the-dead".into()),
    };
    assert!(!store
        .record_leased_attempt(id, "dead-worker", &late, later)
        .await
        .unwrap());
    assert!(!store.release_lease(id, "dead-worker", later).await.unwrap());
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(
        (row.status, row.attempts, row.external_id.as_deref()),
        (DeliveryStatus::Pending, 0, None)
    );
    // The new holder's is recorded, once; a second record is refused.
    let done = AttemptOutcome::Delivered {
        external_id: Some("msg-1".into()),
    };
    assert!(store
        .record_leased_attempt(id, "live-worker", &done, later)
        .await
        .unwrap());
    assert!(!store
        .record_leased_attempt(id, "live-worker", &done, later)
        .await
        .unwrap());
    let row = &store.deliveries(case).await.unwrap()[0];
    assert_eq!(
        (row.status, row.attempts, row.external_id.as_deref()),
        (DeliveryStatus::Delivered, 1, Some("msg-1"))
    );
    assert_eq!(
        store
            .count(&format!(
                "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id = {id}"
            ))
            .await,
        1,
        "the refused results left no attempt rows"
    );
}
on_both_backends!(dead_leases_are_taken_over);

/// A retry ends the lease: the delivery is due again at its retry time,
/// for any worker, and is not "taken over" (its outcome is known). A
/// lease given back untried keeps the attempt count.
async fn recorded_attempts_end_the_lease(db: TestDb) {
    let store = db.open().await;
    let case = case_with_deliveries(&*store, "lease-retry", "discord", 2).await;
    let now = t0() + Duration::seconds(1);
    let until = now + Duration::seconds(300);
    let got = store
        .lease_deliveries("discord", "w1", now, until, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let (d1, d2) = (got[0].delivery.id, got[1].delivery.id);
    assert!(store
        .record_leased_attempt(
            d1,
            "w1",
            &AttemptOutcome::Retry {
                at: now + Duration::seconds(10),
                error: "500".into()
            },
            now
        )
        .await
        .unwrap());
    assert!(store
        .release_lease(d2, "w1", now + Duration::seconds(20))
        .await
        .unwrap());
    let at = |s: i64| now + Duration::seconds(s);
    assert!(store
        .lease_deliveries("discord", "w2", at(9), at(300), 10)
        .await
        .unwrap()
        .is_empty());
    let got = store
        .lease_deliveries("discord", "w2", at(10), at(300), 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|l| (
                l.delivery.id,
                l.taken_over_from.clone(),
                l.delivery.attempts
            ))
            .collect::<Vec<_>>(),
        vec![(d1, None, 1)]
    );
    let got = store
        .lease_deliveries("discord", "w3", at(20), at(300), 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|l| (
                l.delivery.id,
                l.taken_over_from.clone(),
                l.delivery.attempts
            ))
            .collect::<Vec<_>>(),
        vec![(d2, None, 0)]
    );
    // An expired lease nobody took over is still its holder's.
    assert!(store
        .record_leased_attempt(
            d2,
            "w3",
            &AttemptOutcome::Failed {
                error: "403".into()
            },
            at(400)
        )
        .await
        .unwrap());
    let rows = store.deliveries(case).await.unwrap();
    assert_eq!(
        rows.iter().find(|r| r.id == d2).unwrap().status,
        DeliveryStatus::Failed
    );
}
on_both_backends!(recorded_attempts_end_the_lease);

/// A finished consultation's case for `owner`, routed to `primary`, with
/// the owner's consent naming `consented` (for the timer tests).
pub async fn seed_case(
    store: &dyn Store,
    owner: &str,
    primary: &str,
    consented: &[&str],
    at: chrono::DateTime<chrono::Utc>,
) -> madoguchi::domain::ids::CaseId {
    let user = UserKey::new(Transport::Terminal, owner).unwrap();
    store
        .save_version(&VersionRecord {
            version: "abc123".into(),
            script_id: "first_contact".into(),
            lang: Lang::Ja,
            script_name: "dialogs/first_contact.ja.yaml".into(),
            script_text: "script: first_contact\n".into(),
            routing_name: "dialogs/routing.yaml".into(),
            routing_text: "network: x\n".into(),
            created_at: at,
        })
        .await
        .unwrap();
    let s = store
        .create_session(&NewSession {
            user,
            script_id: "first_contact".into(),
            lang: Lang::Ja,
            version: "abc123".into(),
            now: at,
            presumed: Presumption::Read,
        })
        .await
        .unwrap();
    let consent = ConsentRecord {
        granted: true,
        hubs: consented.iter().map(|h| hub(h)).collect(),
        items: vec!["会社概要".into()],
        wording: "同意しますか".into(),
    };
    let draft = CaseDraft {
        headline: "株式会社テスト".into(),
        summary_plain: "【企業情報シート】".into(),
        summary_markdown: "**企業情報シート**".into(),
        route: RouteDecision {
            primary: hub(primary),
            copies: vec![],
            ..route()
        },
        tags: vec![],
        consent: consent.clone(),
        step: 3,
    };
    let state = SessionState {
        status: Status::Completed,
        ..SessionState::default()
    };
    let effects = vec![
        Effect::Consent(consent),
        Effect::CaseReady(Box::new(draft)),
        Effect::Finished(Status::Completed),
    ];
    store
        .commit_step(&StepCommit {
            now: at,
            current_node: "done",
            ..step(s.id, 0, &state, None, &effects)
        })
        .await
        .unwrap()
        .case
        .expect("a case")
}

/// Timers on every backend: scheduling is idempotent per (kind, subject),
/// a due timer is claimed by one claimer only, a claim whose lease ran out
/// is claimed again, only the holder finishes it, and cancelled or fired
/// timers never come back (also after the store is opened again).
async fn timers_story(db: crate::support::db::TestDb) {
    let store = db.open().await;
    let case = seed_case(&*store, "timer-owner", "hyogo-pro", &["hyogo-pro"], t0()).await;
    let at = |h: i64| t0() + Duration::hours(h);
    let timer = |kind: &str, subject: &str, due: i64| NewTimer {
        kind: kind.into(),
        subject: subject.into(),
        case: Some(case),
        due_at: at(due),
        payload: serde_json::json!({ "hub": "hyogo-pro" }),
    };
    let (first, created) = store
        .schedule_timer(&timer("claim_reminder", "case:1/a", 8), t0())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(first.status, TimerStatus::Pending);
    assert_eq!(first.payload["hub"], "hyogo-pro");
    // The same pair again, even with another time, keeps the first timer.
    let (again, created) = store
        .schedule_timer(&timer("claim_reminder", "case:1/a", 99), at(1))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, first);
    store
        .schedule_timer(&timer("escalation", "case:1/a", 16), t0())
        .await
        .unwrap();
    store
        .schedule_timer(&timer("claim_reminder", "case:1/b", 9), t0())
        .await
        .unwrap();
    store
        .schedule_timer(
            &NewTimer {
                case: None,
                ..timer("follow_up", "other", 1)
            },
            t0(),
        )
        .await
        .unwrap();
    let lease = Duration::minutes(5);

    // Nothing of these kinds is due before its time.
    let kinds = ["claim_reminder", "escalation"];
    assert!(store
        .claim_due_timers(&kinds, at(7), "a", lease, 10)
        .await
        .unwrap()
        .is_empty());
    // Due at its time, claimed once: a second claimer finds nothing.
    let got = store
        .claim_due_timers(&kinds, at(8), "a", lease, 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>(),
        ["case:1/a"]
    );
    assert_eq!(got[0].status, TimerStatus::Claimed);
    assert_eq!(got[0].holder.as_deref(), Some("a"));
    assert_eq!(got[0].attempts, 1);
    assert!(store
        .claim_due_timers(&kinds, at(8), "b", lease, 10)
        .await
        .unwrap()
        .is_empty());
    // Another kind is left to its own loop; no kinds means every kind.
    assert_eq!(
        store
            .timers(&TimerFilter {
                kinds: vec!["follow_up".into()],
                status: Some(TimerStatus::Pending),
                ..TimerFilter::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    // Only the holder finishes it.
    assert!(!store
        .finish_timer(got[0].id, "b", &TimerOutcome::Fired { note: None }, at(8))
        .await
        .unwrap());
    assert!(store
        .finish_timer(
            got[0].id,
            "a",
            &TimerOutcome::Fired {
                note: Some("posted".into())
            },
            at(8)
        )
        .await
        .unwrap());
    assert!(!store
        .finish_timer(got[0].id, "a", &TimerOutcome::Fired { note: None }, at(8))
        .await
        .unwrap());
    // A fired timer is not scheduled again.
    let (fired, created) = store
        .schedule_timer(&timer("claim_reminder", "case:1/a", 8), at(9))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(fired.status, TimerStatus::Fired);
    assert_eq!(fired.note.as_deref(), Some("posted"));
    assert_eq!(fired.done_at, Some(at(8)));

    // A holder that dies: its claim runs out and another takes the timer.
    let got = store
        .claim_due_timers(&kinds, at(9), "dies", lease, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(store
        .claim_due_timers(&kinds, at(9) + Duration::minutes(4), "c", lease, 10)
        .await
        .unwrap()
        .is_empty());
    let retaken = store
        .claim_due_timers(&kinds, at(9) + Duration::minutes(6), "c", lease, 10)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].id, got[0].id);
    assert_eq!(retaken[0].attempts, 2);
    // The dead holder coming back cannot finish it any more.
    assert!(!store
        .finish_timer(
            got[0].id,
            "dies",
            &TimerOutcome::Fired { note: None },
            at(10)
        )
        .await
        .unwrap());
    // A retry puts it back for later.
    assert!(store
        .finish_timer(
            got[0].id,
            "c",
            &TimerOutcome::Retry {
                at: at(11),
                error: "platform down".into()
            },
            at(10)
        )
        .await
        .unwrap());
    assert!(store
        .claim_due_timers(&kinds, at(10), "c", lease, 10)
        .await
        .unwrap()
        .is_empty());

    // What is pending and due by a time, for `cases due`.
    let due = store
        .timers(&TimerFilter {
            case: Some(case),
            status: Some(TimerStatus::Pending),
            due_by: Some(at(12)),
            ..TimerFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>(),
        ["case:1/b"]
    );
    assert_eq!(due[0].note.as_deref(), Some("platform down"));

    // Cancelling: one by name, then the rest of the case's kinds.
    assert!(store
        .cancel_timer("claim_reminder", "case:1/b", "claimed", at(10))
        .await
        .unwrap());
    assert!(!store
        .cancel_timer("claim_reminder", "case:1/b", "claimed", at(10))
        .await
        .unwrap());
    assert!(!store
        .cancel_timer("claim_reminder", "case:1/a", "fired already", at(10))
        .await
        .unwrap());
    assert_eq!(
        store
            .cancel_case_timers(case, &["escalation"], "claimed", at(10))
            .await
            .unwrap(),
        1
    );
    store.close().await;

    // Opened again: nothing left to fire, the history kept.
    let store = db.open().await;
    assert!(store
        .claim_due_timers(&[], at(100), "d", lease, 10)
        .await
        .unwrap()
        .iter()
        .all(|t| t.kind == "follow_up"));
    let all = store
        .timers(&TimerFilter {
            case: Some(case),
            ..TimerFilter::default()
        })
        .await
        .unwrap();
    let status = |s: &str| {
        all.iter()
            .find(|t| t.subject == s && t.kind == "claim_reminder")
            .unwrap()
            .status
    };
    assert_eq!(status("case:1/a"), TimerStatus::Fired);
    assert_eq!(status("case:1/b"), TimerStatus::Cancelled);
    assert_eq!(all.len(), 3);

    // Forgetting the owner cancels what is left of their case's timers.
    store
        .schedule_timer(&timer("nudge", "case:1/n", 200), at(100))
        .await
        .unwrap();
    let owner = UserKey::new(Transport::Terminal, "timer-owner").unwrap();
    store.forget_user(&owner, at(101)).await.unwrap();
    let left = store
        .timers(&TimerFilter {
            kinds: vec!["nudge".into()],
            ..TimerFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(left[0].status, TimerStatus::Cancelled);
    assert_eq!(left[0].note.as_deref(), Some("owner deleted their data"));
}
crate::on_both_backends!(timers_story);

/// Two claimers at once on one database (two pools, like two instances)
/// never take the same timer, and between them take every due timer.
async fn timers_claimed_once_by_concurrent_claimers(db: crate::support::db::TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    for i in 0..60 {
        a.schedule_timer(
            &NewTimer {
                kind: "claim_reminder".into(),
                subject: format!("s{i}"),
                case: None,
                due_at: t0(),
                payload: serde_json::json!({}),
            },
            t0(),
        )
        .await
        .unwrap();
    }
    let claim = |s: crate::support::db::AnyStore, who: &'static str| async move {
        let mut mine = vec![];
        loop {
            let got = s
                .claim_due_timers(&[], t0(), who, Duration::minutes(5), 4)
                .await
                .unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|t| t.id));
        }
    };
    let (ma, mb) = tokio::join!(
        tokio::spawn(claim(a.clone(), "a")),
        tokio::spawn(claim(b.clone(), "b"))
    );
    let mut all: Vec<i64> = ma.unwrap().into_iter().chain(mb.unwrap()).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a timer was claimed twice");
    assert_eq!(n, 60);
}
crate::on_both_backends!(
    timers_claimed_once_by_concurrent_claimers,
    flavor = "multi_thread",
    worker_threads = 2
);

/// The relay's outbox on every backend: queued messages are leased by one
/// worker, a lease that ran out is taken over (and says so), progress and
/// results are recorded only by the holder, a sent message keeps its ids
/// but not its text, and forgetting the owner fails what waits, erases
/// every text and hands back the relayed ids it removed.
async fn relay_outbox_story(db: TestDb) {
    let store = db.open().await;
    let case = seed_case(&*store, "relay-owner", "hyogo-pro", &["hyogo-pro"], t0()).await;
    let user = UserKey::new(Transport::Terminal, "relay-owner").unwrap();
    let row = |kind: RelayKind, transport: &str, body: &str| NewRelay {
        case,
        user: user.clone(),
        kind,
        transport: transport.into(),
        target: "hyogo-pro".into(),
        body: body.into(),
    };
    let ids = store
        .queue_relays(
            &[
                row(RelayKind::ToHub, "slack", "{\"texts\":[]}"),
                row(RelayKind::ToOwner, "slack", "{\"texts\":[]}"),
                row(RelayKind::ToHub, "discord", "{\"texts\":[]}"),
            ],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let now = t0() + Duration::seconds(1);
    let until = now + Duration::seconds(60);
    let got = store
        .lease_relays("slack", "w1", now, until, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "only slack's");
    assert!(got.iter().all(|l| l.taken_over_from.is_none()));
    assert!(store
        .lease_relays("slack", "w2", now, until, 10)
        .await
        .unwrap()
        .is_empty());
    // Progress and results belong to the holder only.
    let first = got[0].relay.id;
    assert!(!store
        .relay_progress(first, "w2", &["1.1".into()])
        .await
        .unwrap());
    assert!(store
        .relay_progress(first, "w1", &["1.1".into()])
        .await
        .unwrap());
    let ok = AttemptOutcome::Delivered { external_id: None };
    assert!(!store.record_relay(first, "w2", &ok, now).await.unwrap());
    assert!(store.record_relay(first, "w1", &ok, now).await.unwrap());
    // The second one's worker dies: after the lease another takes it over.
    let later = until + Duration::seconds(1);
    let again = store
        .lease_relays("slack", "w2", later, later + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].taken_over_from.as_deref(), Some("w1"));
    let retry = AttemptOutcome::Retry {
        at: later + Duration::seconds(5),
        error: "slack server error 500".into(),
    };
    assert!(store
        .record_relay(again[0].relay.id, "w2", &retry, later)
        .await
        .unwrap());
    let rs = store.relays_of_case(case).await.unwrap();
    let sent = rs.iter().find(|r| r.id == first).unwrap();
    assert_eq!(sent.status, DeliveryStatus::Delivered);
    assert_eq!(sent.body, None, "no text once sent");
    assert_eq!(sent.message_ids, ["1.1"]);
    let waiting = rs.iter().find(|r| r.id == again[0].relay.id).unwrap();
    assert_eq!(
        (waiting.status, waiting.attempts),
        (DeliveryStatus::Pending, 1)
    );
    assert!(waiting.body.is_some());
    // Forgetting: nothing waits any more, no text stays, the relayed ids
    // come back.
    store
        .add_relay_message(&RelayMessage {
            case,
            user: user.clone(),
            direction: "to_staff".into(),
            channel_id: "C1".into(),
            message_id: "1.1".into(),
            at: now,
        })
        .await
        .unwrap();
    let report = store.forget_user(&user, later).await.unwrap();
    assert_eq!(report.relayed.len(), 1);
    assert_eq!(report.relayed[0].message_id, "1.1");
    let rs = store.relays_of_case(case).await.unwrap();
    assert!(rs.iter().all(|r| r.body.is_none()), "{rs:?}");
    assert!(rs
        .iter()
        .filter(|r| r.id != first)
        .all(|r| r.status == DeliveryStatus::Failed));
    assert!(store
        .lease_relays(
            "discord",
            "w1",
            later + Duration::hours(1),
            later + Duration::hours(2),
            10
        )
        .await
        .unwrap()
        .is_empty());
    store.close().await;
}

on_both_backends!(relay_outbox_story);
