//! The store's invariants held the same on every backend (SQLite and, with
//! `MADOGUCHI_TEST_PG`, PostgreSQL): after `forget_user` no value of the
//! owner is left in any text column of any table, and no path records a
//! consent with empty or unrendered wording. The session snapshot no
//! longer holds answers (they are in the answer log), so it is only searched.

use crate::on_both_backends;
use crate::support::db::{AnyStore, TestDb};
use crate::support::t0;
use chrono::Duration;
use madoguchi::answer::AnswerValue;
use madoguchi::domain::ids::{CaseId, Transport, UserKey};
use madoguchi::engine::{CaseDraft, ConsentRecord, Effect, Recorded, SessionState, Status};
use madoguchi::routing::{HubRef, RouteDecision};
use madoguchi::script::Lang;
use madoguchi::store::*;

/// The owner's values, each distinctive enough that finding it anywhere
/// after `forget` means it was not erased.
const COMPANY: &str = "株式会社消去並行工業";
const CONTACT: &str = "並行 確認花子";
const EMAIL: &str = "parity.check@kieru-pg.example";
const FREE_TEXT: &str = "並行確認用の将来像として海沿いで干物の新名物";
const NEEDLES: [&str; 4] = [COMPANY, CONTACT, EMAIL, FREE_TEXT];

fn hub(id: &str) -> HubRef {
    HubRef {
        id: id.into(),
        name: format!("{id} name"),
    }
}

fn consent(wording: &str) -> ConsentRecord {
    ConsentRecord {
        granted: true,
        hubs: vec![hub("hyogo-pro")],
        items: vec!["会社概要".into()],
        wording: wording.into(),
    }
}

/// A new session of `owner` (through the store, as the bot opens one).
async fn open(store: &AnyStore, owner: &UserKey) -> madoguchi::store::SessionRecord {
    // Sessions name a stored script version; saving it again is a no-op.
    store
        .save_version(&VersionRecord {
            version: "v1".into(),
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
    store
        .create_session(&NewSession {
            user: owner.clone(),
            script_id: "first_contact".into(),
            lang: Lang::Ja,
            version: "v1".into(),
            now: t0(),
            presumed: Presumption::Read,
        })
        .await
        .unwrap()
}

fn commit<'a>(
    s: &madoguchi::store::SessionRecord,
    rev: i64,
    state: &'a SessionState,
    effects: &'a [Effect],
) -> StepCommit<'a> {
    StepCommit {
        session: s.id,
        rev,
        now: t0() + Duration::seconds(rev + 1),
        state,
        current_node: "done",
        effects,
        deliveries: vec![],
        new_session: None,
        state_json: None,
        prev_status: None,
        case_timers: None,
    }
}

/// Every text value of every column of every table, with where it is.
async fn all_text(store: &AnyStore) -> Vec<(String, String)> {
    let (tables, columns_sql): (Vec<String>, &str) = match store {
        AnyStore::Sqlite(s) => (
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(s.pool())
            .await
            .unwrap(),
            "SELECT name FROM pragma_table_info(?)",
        ),
        AnyStore::Postgres(s) => (
            sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(s.pool())
            .await
            .unwrap(),
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        ),
    };
    assert!(tables.iter().any(|t| t == "answers"), "{tables:?}");
    let mut out = Vec::new();
    for t in &tables {
        let cols: Vec<String> = match store {
            AnyStore::Sqlite(s) => sqlx::query_scalar(columns_sql)
                .bind(t)
                .fetch_all(s.pool())
                .await
                .unwrap(),
            AnyStore::Postgres(s) => sqlx::query_scalar(columns_sql)
                .bind(t)
                .fetch_all(s.pool())
                .await
                .unwrap(),
        };
        assert!(!cols.is_empty(), "no columns found for {t}");
        for c in cols {
            // Every column as text, whatever its declared type; SQLite's
            // as bytes (a blob such as a migration checksum is not UTF-8),
            // read as text where it is.
            let vals: Vec<Option<String>> = match store {
                AnyStore::Sqlite(s) => {
                    let sql = format!("SELECT CAST(\"{c}\" AS BLOB) FROM \"{t}\"");
                    let raw: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&sql)
                        .fetch_all(s.pool())
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    raw.into_iter()
                        .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
                        .collect()
                }
                AnyStore::Postgres(s) => {
                    let sql = format!("SELECT CAST(\"{c}\" AS TEXT) FROM \"{t}\"");
                    sqlx::query_scalar(&sql)
                        .fetch_all(s.pool())
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"))
                }
            };
            out.extend(vals.into_iter().flatten().map(|v| (format!("{t}.{c}"), v)));
        }
    }
    out
}

fn leaks(text: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (at, v) in text {
        for n in NEEDLES {
            if v.contains(n) {
                out.push(format!("{n:?} in {at}"));
            }
        }
    }
    out
}

on_both_backends!(forget_leaves_no_owner_value_in_any_text_column);

/// The owner's values go everywhere a consultation and the staff's work
/// put them: answers, the session snapshot, the case's headline, sheet and
/// route reasons, a forward's reason, a close's outcome, an audit note.
/// After `forget_user` none is found in any text column of any table,
/// while another owner's case, written the same way, keeps its values.
async fn forget_leaves_no_owner_value_in_any_text_column(db: TestDb) {
    let store = db.open().await;
    let owner = UserKey::new(Transport::Discord, "777001").unwrap();
    let other = UserKey::new(Transport::Terminal, "other-owner").unwrap();
    let others = [
        "有限会社残存商店",
        "残存 次郎",
        "stays@zanzon.example",
        "残る将来像",
    ];
    let mut case = None;
    for (who, vals) in [(&owner, NEEDLES), (&other, others)] {
        let [company, contact, email, free] = vals;
        let s = open(&store, who).await;
        let mut state = SessionState {
            status: Status::Active,
            ..SessionState::default()
        };
        for (ix, v) in vals.iter().enumerate() {
            state
                .answers
                .push((ix as u16, AnswerValue::Text((*v).into())));
        }
        let effects: Vec<Effect> = state
            .answers
            .iter()
            .map(|(ix, v)| {
                Effect::Record(Recorded {
                    node: format!("q{ix}"),
                    ix: *ix,
                    value: v.clone(),
                    raw: format!("はい、{}", vals[*ix as usize]),
                    correction: false,
                })
            })
            .collect();
        store
            .commit_step(&commit(&s, 0, &state, &effects))
            .await
            .unwrap();
        state.status = Status::Completed;
        let draft = CaseDraft {
            headline: company.into(),
            summary_plain: format!("【企業情報シート】{company} {contact} {email} {free}"),
            summary_markdown: format!("**{company}** {contact} {email} {free}"),
            route: RouteDecision {
                rule: "talent-need-clear".into(),
                reason: format!("「{free}」とのこと"),
                primary: hub("hyogo-pro"),
                copies: vec![],
                step: 3,
                passed_over: vec![("kyoto".into(), format!("{company}は京都府ではない"))],
                follow_up: None,
            },
            tags: vec!["sales".into()],
            consent: consent("兵庫県プロ人材戦略拠点に共有してよいですか？"),
            step: 3,
        };
        let effects = vec![
            Effect::Consent(draft.consent.clone()),
            Effect::CaseReady(Box::new(draft)),
            Effect::Finished(Status::Completed),
        ];
        let id = store
            .commit_step(&commit(&s, 1, &state, &effects))
            .await
            .unwrap()
            .case
            .expect("a case");
        let now = t0() + Duration::minutes(5);
        store
            .update_case(
                id,
                &CaseChange::Forward {
                    to_hub: "hyogo-chamber".into(),
                    reason: format!("{contact}さんの希望"),
                },
                "staff",
                now,
            )
            .await
            .unwrap();
        store
            .append_audit(
                Some(id),
                "staff",
                "note",
                &serde_json::json!({ "note": format!("{email} に電話済み") }),
                now,
            )
            .await
            .unwrap();
        store
            .update_case(
                id,
                &CaseChange::Close {
                    outcome: format!("{contact}さんを紹介済み"),
                },
                "staff",
                now,
            )
            .await
            .unwrap();
        if who == &owner {
            case = Some(id);
        }
    }
    let case: CaseId = case.unwrap();

    // Before: each value is where this test puts it (so the scan can fail).
    let before = leaks(&all_text(&store).await);
    for (n, places) in [
        (COMPANY, &["answers.", "cases.headline", "cases.route"][..]),
        (
            CONTACT,
            &["answers.", "cases.outcome", "audit_log.detail"][..],
        ),
        (
            EMAIL,
            &["answers.", "cases.summary_plain", "audit_log.detail"][..],
        ),
        (
            FREE_TEXT,
            &["answers.", "cases.summary_markdown", "cases.route"][..],
        ),
    ] {
        for at in places {
            assert!(
                before
                    .iter()
                    .any(|l| l.starts_with(&format!("{n:?} in {at}"))),
                "{n} is not in {at}: {before:?}"
            );
        }
    }

    store
        .forget_user(&owner, t0() + Duration::hours(1))
        .await
        .unwrap();

    let text = all_text(&store).await;
    let after = leaks(&text);
    assert!(
        after.is_empty(),
        "readable after forget:\n{}",
        after.join("\n")
    );
    // The other owner's values are all still found by the same scan.
    for v in others {
        assert!(
            text.iter()
                .any(|(at, t)| at.starts_with("cases.") && t.contains(v)),
            "{v} of the other owner is gone"
        );
    }
    // The case row stays for the hubs' records, with hubs and rule kept.
    let c = store.case(case).await.unwrap().expect("the case row stays");
    assert_eq!(c.route.primary.id, "hyogo-pro");
    assert_eq!(c.route.rule, "talent-need-clear");
    // The consent records stay (what the law needs).
    assert!(!store.consents(&owner).await.unwrap().is_empty());
}

on_both_backends!(no_path_records_an_unfit_consent);

/// Besides a single step (the store story), an unfit consent is refused in
/// a group commit (with the fit steps of the batch not written either), a
/// re-consent and a forward's consent; each writes nothing.
async fn no_path_records_an_unfit_consent(db: TestDb) {
    let store = db.open().await;
    let a = UserKey::new(Transport::Discord, "888001").unwrap();
    let b = UserKey::new(Transport::Discord, "888002").unwrap();
    let sa = open(&store, &a).await;
    let sb = open(&store, &b).await;
    let state = SessionState {
        status: Status::Active,
        ..SessionState::default()
    };
    let answer = vec![Effect::Record(Recorded {
        node: "q0".into(),
        ix: 0,
        value: AnswerValue::Text("x".into()),
        raw: "x".into(),
        correction: false,
    })];
    for bad in ["", "  ", "{{route.primary}} に共有してよいですか？"] {
        let unfit = vec![Effect::Consent(consent(bad))];
        let r = store
            .commit_steps(&[
                commit(&sa, 0, &state, &answer),
                commit(&sb, 0, &state, &unfit),
            ])
            .await;
        assert!(matches!(r, Err(StoreError::Unfit(_))), "{bad:?}: {r:?}");
        let r = store
            .record_consent(sa.id, None, &a, &consent(bad), t0())
            .await;
        assert!(matches!(r, Err(StoreError::Unfit(_))), "{bad:?}: {r:?}");
    }
    // Nothing of the batches: both sessions at their first revision.
    for s in [&sa, &sb] {
        assert_eq!(store.session(s.id).await.unwrap().unwrap().rev, 0);
    }
    assert_eq!(store.count("SELECT COUNT(*) FROM consents").await, 0);
    assert_eq!(store.count("SELECT COUNT(*) FROM answers").await, 0);

    // A case, then a forward that asks again with a broken consent.
    let draft = CaseDraft {
        headline: "株式会社テスト".into(),
        summary_plain: "【企業情報シート】".into(),
        summary_markdown: "**企業情報シート**".into(),
        route: RouteDecision {
            rule: "r".into(),
            reason: "理由".into(),
            primary: hub("hyogo-pro"),
            copies: vec![],
            step: 3,
            passed_over: vec![],
            follow_up: None,
        },
        tags: vec![],
        consent: consent("共有してよいですか？"),
        step: 3,
    };
    let effects = vec![
        Effect::Consent(draft.consent.clone()),
        Effect::CaseReady(Box::new(draft)),
    ];
    let case = store
        .commit_steps(&[commit(&sa, 0, &state, &effects)])
        .await
        .unwrap()[0]
        .case
        .expect("a case");
    let consents = store.count("SELECT COUNT(*) FROM consents").await;
    let bad = consent("{{bold route.primary}} に");
    let r = store
        .forward_case(&ForwardCase {
            case,
            to_hub: "hyogo-chamber",
            reason: "r",
            actor: "staff",
            consent: Some(&bad),
            request: None,
            delivery: None,
            now: t0() + Duration::minutes(1),
        })
        .await;
    assert!(
        matches!(r, Err(StoreError::Unfit(Unfit::UnrenderedConsentWording))),
        "{r:?}"
    );
    let c = store.case(case).await.unwrap().unwrap();
    assert_eq!(c.hub_id, "hyogo-pro", "the forward was not applied");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM consents").await,
        consents,
        "no consent of the refused forward"
    );
}
