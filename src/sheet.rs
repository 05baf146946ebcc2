//! Fidelity of the company information sheet (企業情報シート): what staff
//! receive must be what the owner said, no more and no less.
//!
//! [`check`] compares a rendered sheet with the answers it was rendered
//! from. It is pure (no I/O, no clock) and runs on every case a transcript
//! creates, so every transcript, shipped or added later, checks the sheet.

use crate::answer::AnswerValue;
use crate::render::{self, ContextInput, RenderMode};
use crate::script::{Flow, Lang, NodeIx, NodeKind};

/// Phrases by which a sheet asserts that something does not exist. The bot
/// may only write such a claim when the owner said it, so each occurrence
/// must come from one of the owner's answers.
const ABSENCE_CLAIMS: &[&str] = &[
    "ありません",
    "ニーズはない",
    "必要ない",
    "No concrete",
    "no talent need",
    "does not need",
];

/// What the sheet's fields are, by the guide's list of what a routed case
/// carries at the end of steps 1–3 (domain.md, "The company information
/// sheet"): a field and the words that may title it on a Japanese or an
/// English sheet.
pub const GUIDE_FIELDS: &[(&str, &[&str])] = &[
    ("industry", &["業種", "Industry"]),
    ("employees", &["従業員", "Employees"]),
    ("capital", &["資本金", "Capital"]),
    ("location", &["所在地", "Location", "Prefecture"]),
    ("vision", &["ビジョン", "vision", "Vision"]),
    ("issues", &["経営課題", "issues", "Issues"]),
    ("priority", &["最優先", "priority"]),
    ("tried", &["これまでの取組", "tried"]),
    ("talent need", &["人材ニーズ", "Talent need"]),
    (
        "way of using talent",
        &["活用方法", "Preferred ways", "preferred ways"],
    ),
    (
        "working conditions",
        &["働き方の条件", "working conditions"],
    ),
    ("timing", &["希望時期", "Needed by", "timing"]),
    ("contact", &["連絡先", "Contact"]),
    ("consent", &["同意", "Consent"]),
];

/// The fields of the talent need (role, duties and expected contribution,
/// must/nice conditions) that a sheet carries when the owner described
/// them.
pub const TALENT_FIELDS: &[(&str, &[&str])] = &[
    ("role", &["役割", "Role"]),
    (
        "duties and expected contribution",
        &["任せたい業務・期待する成果", "Duties and expected results"],
    ),
    ("must-have conditions", &["必須条件", "Must-have"]),
    ("nice-to-have conditions", &["歓迎条件", "Nice-to-have"]),
];

/// Everything wrong with `sheet` (plain text) as a record of `answers`;
/// empty when it is faithful:
///
/// - every answer the owner can correct (the content questions) appears on
///   the sheet as the owner reads it;
/// - a "not answered" placeholder stands only where a question was indeed
///   not answered: giving that question an answer removes the line;
/// - no claim that something does not exist, unless the owner said so;
/// - the fields the guide lists for steps 1–3 are titled on the sheet
///   (the talent fields when the owner described the talent).
pub fn check(flow: &Flow, input: &ContextInput, sheet: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut has_talent_detail = false;
    for (ix, v) in input.answers {
        let node = flow.node(*ix);
        let NodeKind::Ask(q) = &node.kind else {
            continue;
        };
        if !q.editable || matches!(v, AnswerValue::Skipped) {
            continue;
        }
        if node.id == "talent_role" {
            has_talent_detail = true;
        }
        let shown = render::display_answer(flow, *ix, v);
        for part in shown.lines().filter(|l| !l.trim().is_empty()) {
            if !sheet.contains(part.trim()) {
                problems.push(format!(
                    "the answer to `{}` ({}) is not on the sheet as given: {part:?}",
                    node.id, node.label
                ));
            }
        }
    }
    let said: Vec<String> = input
        .answers
        .iter()
        .map(|(ix, v)| render::display_answer(flow, *ix, v))
        .collect();
    for claim in ABSENCE_CLAIMS {
        for line in sheet.lines().filter(|l| l.contains(claim)) {
            if !said.iter().any(|s| s.contains(claim)) {
                problems.push(format!(
                    "the sheet claims {claim:?} though the owner did not say it: {line:?}"
                ));
            }
        }
    }
    let placeholders = [
        flow.messages.get("not_answered").to_string(),
        flow.messages.get("skipped_value").to_string(),
        match flow.lang {
            Lang::Ja => "（未回答）".to_string(),
            Lang::En => "(not answered)".to_string(),
        },
    ];
    for line in sheet.lines() {
        if !placeholders.iter().any(|p| line.contains(p.as_str())) {
            continue;
        }
        if !placeholder_is_justified(flow, input, line) {
            problems.push(format!(
                "the sheet says a question was not answered where none was left unanswered: {line:?}"
            ));
        }
    }
    // A follow-up's answers (step 5) are not a company information sheet:
    // the guide's fields are on the case they follow up.
    let fields = GUIDE_FIELDS
        .iter()
        .filter(|_| !flow.follow_up)
        .chain(TALENT_FIELDS.iter().filter(|_| has_talent_detail));
    for (field, titles) in fields {
        if !titles.iter().any(|t| sheet.contains(t)) {
            problems.push(format!(
                "the sheet has no {field} field (the guide lists it)"
            ));
        }
    }
    problems
}

/// Whether some question on the sheet that was not answered (or was
/// skipped) explains a "not answered" line: answering it makes the line go.
fn placeholder_is_justified(flow: &Flow, input: &ContextInput, line: &str) -> bool {
    // The line must be what these answers render to in the first place.
    // A template that fails to render explains nothing.
    let Ok(baseline) = render::render_input(flow, "summary", input, RenderMode::Plain) else {
        return false;
    };
    if !baseline.lines().any(|l| l == line) {
        return false;
    }
    let probe = AnswerValue::Text("\u{2063}probe".into());
    flow.questions().any(|(ix, _, q)| {
        if !q.editable {
            return false;
        }
        let missing = match input.answers.iter().find(|(i, _)| *i == ix) {
            None => true,
            Some((_, v)) => matches!(v, AnswerValue::Skipped),
        };
        if !missing {
            return false;
        }
        let mut answers: Vec<(NodeIx, AnswerValue)> = input
            .answers
            .iter()
            .filter(|(i, _)| *i != ix)
            .cloned()
            .collect();
        answers.push((ix, probe.clone()));
        let with = ContextInput {
            answers: &answers,
            tags: input.tags,
            route: input.route,
            today: input.today,
        };
        match render::render_input(flow, "summary", &with, RenderMode::Plain) {
            Ok(again) => !again.lines().any(|l| l == line),
            Err(_) => false,
        }
    })
}
