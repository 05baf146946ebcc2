//! The company information sheet is faithful: `madoguchi::sheet::check`
//! passes a sheet the shipped script renders, and catches each kind of
//! unfaithful sheet (a claim the owner did not make, a "not answered" next
//! to an answer, a changed or missing answer, a missing guide field). The
//! transcript harness runs the same check on every case it creates.

use crate::support::{dialogs_dir, t0};
use madoguchi::engine::{step, CaseDraft, Ctx, Effect, Input, SessionState};
use madoguchi::render::{ContextInput, RenderMode};
use madoguchi::script::{Flow, Lang};
use std::sync::Arc;

fn flow(lang: Lang) -> Arc<Flow> {
    let bundle = madoguchi::script::load_dir(&dialogs_dir()).expect("the shipped scripts load");
    bundle
        .flows
        .into_iter()
        .find(|f| f.lang == lang)
        .expect("a script in that language")
}

/// Runs a consultation to its sent case.
fn consult(flow: &Flow, answers: &[&str]) -> (SessionState, CaseDraft) {
    let ctx = Ctx::new(t0(), RenderMode::Plain);
    let mut st = SessionState::default();
    step(flow, &mut st, Input::Start, &ctx);
    let mut case = None;
    for a in answers {
        for e in step(flow, &mut st, Input::Text(a.to_string()), &ctx) {
            if let Effect::CaseReady(d) = e {
                case = Some(*d);
            }
        }
    }
    (st, case.expect("the consultation ends in a case"))
}

fn problems(flow: &Flow, st: &SessionState, case: &CaseDraft, sheet: &str) -> Vec<String> {
    let input = ContextInput {
        answers: &st.answers,
        tags: &st.tags,
        route: Some(&case.route),
        today: Ctx::new(t0(), RenderMode::Plain).today(),
    };
    madoguchi::sheet::check(flow, &input, sheet)
}

/// A not-sure owner who described a hiring problem: the path on which the
/// sheet used to say 「現時点で具体的な人材ニーズはありません」.
const UNSURE: &[&str] = &[
    "はい",
    "株式会社テスト旅館",
    "飲食・宿泊業",
    "京都府",
    "35",
    "スキップ",
    "海外のお客様にも選ばれる宿にしたい",
    "5、6",
    "繁忙期の人手が足りない。採用しても1年以内に辞めてしまう。",
    "1", // the first of the two areas picked: 人材確保・採用
    "スキップ",
    "3",
    "宮津 由美",
    "yumi@example.jp",
    "075-123-4567",
    "送信",
];

#[test]
fn the_shipped_sheet_is_faithful_and_each_kind_of_unfaithful_sheet_is_caught() {
    let f = flow(Lang::Ja);
    let (st, case) = consult(&f, UNSURE);
    let sheet = &case.summary_plain;
    assert_eq!(
        problems(&f, &st, &case, sheet),
        Vec::<String>::new(),
        "{sheet}"
    );

    // The old not-sure wording: a claim the owner never made.
    let old = sheet.replace(
        "人材要件（役割・業務・働き方の条件）・希望する活用方法・希望時期は、この相談ではお聞きしていません。",
        "現時点で具体的な人材ニーズはありません（人材以外の解決を希望、または未定：わからない・相談して決めたい）。",
    );
    assert_ne!(&old, sheet, "the sheet has the not-asked line");
    let p = problems(&f, &st, &case, &old);
    assert!(p.iter().any(|m| m.contains("ありません")), "{p:#?}");

    // "Not answered" next to an answer the owner gave.
    let unanswered = sheet.replace("電話：075-123-4567", "電話：（未回答）");
    assert_ne!(&unanswered, sheet);
    let p = problems(&f, &st, &case, &unanswered);
    assert!(p.iter().any(|m| m.contains("contact_phone")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("not answered")), "{p:#?}");

    // A phone number changed on the way to the sheet.
    let changed = sheet.replace("075-123-4567", "077-222-1234");
    let p = problems(&f, &st, &case, &changed);
    assert!(p.iter().any(|m| m.contains("contact_phone")), "{p:#?}");

    // A guide field missing.
    let no_capital = sheet
        .lines()
        .filter(|l| !l.starts_with("資本金"))
        .collect::<Vec<_>>()
        .join("\n");
    let p = problems(&f, &st, &case, &no_capital);
    assert!(p.iter().any(|m| m.contains("capital")), "{p:#?}");
}

#[test]
fn a_talent_sheet_carries_every_field_the_guide_lists_for_steps_1_to_3() {
    let f = flow(Lang::Ja);
    let (st, case) = consult(
        &f,
        &[
            "はい",
            "株式会社テスト精機",
            "製造業",
            "兵庫県",
            "25",
            "1200万円",
            "自社製品で県外にも売れる会社にしたい",
            "1、5",
            "営業ができる人がいない",
            "1",
            "ハローワークに出したが応募ゼロ",
            "1",
            "1",
            "営業部長",
            "新規開拓と仕組みづくり。3年で売上2割増",
            "法人営業の経験",
            "週3日から、リモート可",
            "1、4",
            "来年4月",
            "山本 健一",
            "yamamoto@example.jp",
            "078-123-4567",
            "送信",
        ],
    );
    let sheet = &case.summary_plain;
    assert_eq!(
        problems(&f, &st, &case, sheet),
        Vec::<String>::new(),
        "{sheet}"
    );
    for (field, titles) in madoguchi::sheet::GUIDE_FIELDS
        .iter()
        .chain(madoguchi::sheet::TALENT_FIELDS)
    {
        assert!(titles.iter().any(|t| sheet.contains(t)), "{field}: {sheet}");
    }
    for said in [
        "営業部長",
        "週3日から、リモート可",
        "転職（正社員）、副業",
        "2027年4月",
        "最優先：売上・販路拡大",
    ] {
        assert!(sheet.contains(said), "{said}: {sheet}");
    }
    // The consent recorded is what the owner saw: the recipients and why.
    assert!(case
        .consent
        .wording
        .contains("兵庫県プロフェッショナル人材戦略拠点"));
    assert!(case.consent.wording.contains("人材ニーズが明確"));
    assert!(
        !case.consent.wording.contains("山本"),
        "no answers in the kept record"
    );
}
