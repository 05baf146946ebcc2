//! Transcript tests: a conversation written down as a file, replayed
//! through the real runner and a throwaway SQLite database.
//!
//! A transcript lists what the owner types or presses and what the bot
//! must (or must not) say, the question it must be waiting on, the answers
//! it must have stored, and finally the case and where it was routed. The
//! same harness serves `madoguchi dialogs test` and the crate's test suite.

use crate::chat::render_effects;
use crate::domain::ids::{Transport, UserKey};
use crate::engine::{Effect, Input};
use crate::render::display_answer;
use crate::runner::{FixedClock, Runner, RunnerConfig};
use crate::script::{Bundle, Lang};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use chrono::{NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub name: String,
    #[serde(default = "default_script")]
    pub script: String,
    #[serde(default = "default_lang")]
    pub lang: String,
    /// The date in Japan during the conversation.
    pub today: Option<NaiveDate>,
    /// For a follow-up script: the matched case being followed up and its
    /// step-5 hub. `start: true` then starts the follow-up as the bot does
    /// when it is due (a follow-up row offered, the dialog linked to it).
    pub follow_up: Option<FollowUpGiven>,
    pub steps: Vec<Spanned<Step>>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUpGiven {
    /// The step-5 hub's id in routing.yaml.
    pub hub: String,
    #[serde(default = "one")]
    pub case: i64,
    #[serde(default = "one_u8")]
    pub seq: u8,
}

fn one() -> i64 {
    1
}
fn one_u8() -> u8 {
    1
}

fn default_script() -> String {
    "first_contact".into()
}
fn default_lang() -> String {
    "ja".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub start: bool,
    pub owner: Option<String>,
    pub owner_repeat: Option<Repeat>,
    pub press: Option<String>,
    #[serde(default)]
    pub crash: bool,
    #[serde(default)]
    pub bot: Vec<String>,
    #[serde(default)]
    pub bot_not: Vec<String>,
    pub node: Option<String>,
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    pub text: String,
    pub times: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<String>,
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    pub tags: Option<Vec<String>>,
    pub route: Option<ExpectRoute>,
    pub case: Option<bool>,
    #[serde(default)]
    pub summary: Vec<String>,
    /// Answers that must not be stored (given on a branch the owner left
    /// by going back, for example).
    #[serde(default)]
    pub unanswered: Vec<String>,
    /// Text the case summary must not contain.
    #[serde(default)]
    pub not_in_summary: Vec<String>,
    pub deliveries: Option<Vec<String>>,
    /// For a follow-up: its recorded status (`answered`, `declined`, …).
    pub follow_up: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRoute {
    pub rule: Option<String>,
    pub primary: Option<String>,
    pub copies: Option<Vec<String>>,
}

/// One failed expectation, with the place in the transcript file.
#[derive(Debug, Clone)]
pub struct Failure {
    pub line: u64,
    pub message: String,
}

#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub failures: Vec<Failure>,
    /// The whole conversation as the terminal would show it, for reports.
    pub log: String,
}

pub fn parse(text: &str) -> Result<Transcript, String> {
    serde_saphyr::from_str(text).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!("{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
        format!("{loc}: {}", e.render_with_options(opts))
    })
}

/// Replays a transcript against a bundle. Errors of the machinery itself
/// (database, unknown script) are failures too, so a broken transcript
/// never passes.
pub async fn run(t: &Transcript, bundle: Bundle) -> Outcome {
    run_on(t, bundle, &Backend::Sqlite).await
}

/// The store a transcript runs on: a throwaway SQLite file, or a fresh
/// schema on a PostgreSQL server (the transcripts run on both in CI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A server's URL; each transcript gets a schema of its own there.
    Postgres(String),
}

/// [`run`] on the given backend.
pub async fn run_on(t: &Transcript, bundle: Bundle, backend: &Backend) -> Outcome {
    let mut failures = Vec::new();
    let mut log = String::new();
    let fail = |failures: &mut Vec<Failure>, line: u64, m: String| {
        failures.push(Failure { line, message: m })
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                name: t.name.clone(),
                failures: vec![Failure {
                    line: 0,
                    message: format!("cannot create a temporary directory: {e}"),
                }],
                log,
            }
        }
    };
    let db = dir.path().join("transcript.db");
    let schema = crate::store::postgres::unique_schema("transcript");
    let lang = Lang::parse(&t.lang).unwrap_or(Lang::Ja);
    let today = t
        .today
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(2026, 11, 21).expect("valid date"));
    // 10:00 in Japan.
    let start = Utc.from_utc_datetime(&today.and_hms_opt(1, 0, 0).expect("valid time"));
    let clock = Arc::new(FixedClock::new(start));
    let config = RunnerConfig {
        script_id: t.script.clone(),
        default_lang: lang,
        ..RunnerConfig::default()
    };
    let sources: Vec<_> = bundle.flows.iter().map(|f| f.sources.clone()).collect();
    let open = |bundle: Bundle| {
        let clock = clock.clone();
        let config = config.clone();
        let db = db.clone();
        let schema = schema.clone();
        async move {
            let store: Arc<dyn Store> = match backend {
                Backend::Sqlite => {
                    Arc::new(SqliteStore::open(&db).await.map_err(|e| e.to_string())?)
                }
                Backend::Postgres(url) => Arc::new(
                    crate::store::postgres::PostgresStore::open_in_schema(url, &schema)
                        .await
                        .map_err(|e| e.to_string())?,
                ),
            };
            Runner::new(store, clock, bundle, config)
                .await
                .map_err(|e| e.to_string())
        }
    };
    let mut runner = match open(bundle).await {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                name: t.name.clone(),
                failures: vec![Failure {
                    line: 0,
                    message: e,
                }],
                log,
            }
        }
    };
    let user = UserKey::new(Transport::Terminal, "transcript").expect("a constant, valid key");
    for step in &t.steps {
        let line = step.referenced.line();
        let s = &step.value;
        clock.advance(chrono::Duration::seconds(30));
        let input = if s.crash {
            // Drop everything in memory and come back from the database
            // alone, as after a crash.
            let fresh = Bundle {
                flows: rebuild(&sources),
                warnings: vec![],
            };
            runner = match open(fresh).await {
                // The old runner and its memory are dropped here.
                Ok(r) => r,
                Err(e) => {
                    fail(
                        &mut failures,
                        line,
                        format!("restart after crash failed: {e}"),
                    );
                    break;
                }
            };
            log.push_str("\n[crash: restarted from the database]\n");
            Input::Resume
        } else if s.start && t.follow_up.is_some() {
            match start_follow_up(t, &runner, &user, lang).await {
                Ok(turn) => {
                    let reply = render_effects(&turn.effects, turn.flow.lang);
                    log.push_str(&reply);
                    log.push('\n');
                    for frag in &s.bot {
                        if !reply.contains(frag.as_str()) {
                            fail(&mut failures, line, format!("the reply does not contain {frag:?}\n--- reply ---\n{reply}\n-------------"));
                        }
                    }
                }
                Err(e) => {
                    fail(
                        &mut failures,
                        line,
                        format!("the follow-up did not start: {e}"),
                    );
                    break;
                }
            }
            continue;
        } else if s.start {
            Input::Start
        } else if let Some(o) = &s.owner {
            log.push_str(&format!("\n> {o}\n"));
            Input::Text(o.clone())
        } else if let Some(r) = &s.owner_repeat {
            log.push_str(&format!("\n> ({} × {})\n", r.text, r.times));
            Input::Text(r.text.repeat(r.times))
        } else if let Some(p) = &s.press {
            log.push_str(&format!("\n[press {p}]\n"));
            let node = match runner.store().open_session(&user).await {
                Ok(Some(sess)) => sess.current_node,
                _ => String::new(),
            };
            Input::Pick {
                node,
                value: p.clone(),
            }
        } else {
            fail(
                &mut failures,
                line,
                "step has nothing to do: give start, owner, owner_repeat, press or crash".into(),
            );
            continue;
        };
        let turn = match runner.handle(&user, input, Some(lang)).await {
            Ok(t) => t,
            Err(e) => {
                fail(&mut failures, line, format!("the runner failed: {e}"));
                break;
            }
        };
        // What the bot says starts each line at the margin: indentation
        // left in a script's template (a block scalar's spaces after a
        // `{{/if}}`) shows on every screen and in the stored consent
        // wording. (An answer's own later lines are indented with an
        // ideographic space, which this leaves alone.)
        for e in &turn.effects {
            let (said, what) = match e {
                Effect::Say(t) => (t.as_str(), "a message"),
                Effect::Ask(p) => (p.text.as_str(), "a question"),
                Effect::Consent(c) => (c.wording.as_str(), "the consent wording"),
                _ => continue,
            };
            if let Some(l) = said.lines().find(|l| l.starts_with([' ', '\t'])) {
                fail(
                    &mut failures,
                    line,
                    format!("{what} has a line that starts with spaces: {l:?}"),
                );
            }
        }
        let reply = render_effects(&turn.effects, turn.flow.lang);
        log.push_str(&reply);
        log.push('\n');
        for frag in &s.bot {
            if !reply.contains(frag.as_str()) {
                fail(&mut failures, line, format!("the reply does not contain {frag:?}\n--- reply ---\n{reply}\n-------------"));
            }
        }
        for frag in &s.bot_not {
            if reply.contains(frag.as_str()) {
                fail(&mut failures, line, format!("the reply contains {frag:?}, which it must not\n--- reply ---\n{reply}\n-------------"));
            }
        }
        let session = match runner.store().latest_session(&user).await {
            Ok(Some(s)) => s,
            _ => {
                fail(&mut failures, line, "no session was stored".into());
                continue;
            }
        };
        // The state in memory and the one the store rebuilds (snapshot plus
        // answer log) must be the same at every turn, or a resumed
        // consultation would differ from the one the owner was having.
        if let Some(mem) = runner.cached_state(&user) {
            if mem != session.state {
                fail(
                    &mut failures,
                    line,
                    format!(
                        "the session read back from the store differs from the one in memory
--- memory ---
{mem:?}
--- store ---
{:?}",
                        session.state
                    ),
                );
            }
        }
        if let Some(n) = &s.node {
            if &session.current_node != n {
                fail(
                    &mut failures,
                    line,
                    format!(
                        "the bot waits on `{}`, expected `{n}`",
                        session.current_node
                    ),
                );
            }
        }
        let shown = shown_answers(&turn.flow, &session.state);
        for (k, v) in &s.answers {
            match shown.get(k) {
                Some(got) if got == v => {}
                Some(got) => fail(
                    &mut failures,
                    line,
                    format!("answer `{k}` is {got:?}, expected {v:?}"),
                ),
                None => fail(
                    &mut failures,
                    line,
                    format!("answer `{k}` is missing, expected {v:?}"),
                ),
            }
        }
    }
    check_expect(t, &runner, &user, &mut failures).await;
    Outcome {
        name: t.name.clone(),
        failures,
        log,
    }
}

/// Offers a follow-up of the transcript's case and starts its dialog, as
/// the bot does when the follow-up is due.
async fn start_follow_up(
    t: &Transcript,
    runner: &Runner,
    user: &UserKey,
    lang: Lang,
) -> Result<crate::runner::Turn, String> {
    use crate::store::{FollowUpMove, FollowUpStatus};
    let given = t.follow_up.as_ref().ok_or("no follow_up given")?;
    let store = runner.store();
    let now = runner.clock().now();
    let case = crate::domain::ids::CaseId(given.case);
    let dues = vec![now; given.seq as usize];
    store
        .schedule_follow_ups(case, user, &dues, now)
        .await
        .map_err(|e| e.to_string())?;
    let f = store
        .follow_ups_of_case(case)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|f| f.seq == given.seq)
        .ok_or("the follow-up was not scheduled")?;
    store
        .move_follow_up(&FollowUpMove {
            id: f.id,
            from: &[FollowUpStatus::Scheduled],
            to: FollowUpStatus::Offered,
            session: None,
            answer_case: None,
            now,
        })
        .await
        .map_err(|e| e.to_string())?;
    let bundle = runner.bundle();
    let flow = bundle
        .flow(&t.script, lang)
        .ok_or_else(|| format!("no script `{}` in {lang}", t.script))?;
    let hub = flow
        .routing
        .hub(&given.hub)
        .ok_or_else(|| format!("no hub `{}` in routing.yaml", given.hub))?;
    let route = crate::followup::route_to(
        crate::routing::HubRef {
            id: given.hub.clone(),
            name: hub.name.clone(),
        },
        case,
        given.seq,
        &flow.routing,
        lang,
    );
    let link = crate::engine::FollowUpLink {
        id: f.id,
        case,
        seq: given.seq,
    };
    runner
        .start_follow_up(user, &t.script, lang, route, link)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the owner has an open session".to_string())
}

fn rebuild(sources: &[crate::script::Sources]) -> Vec<Arc<crate::script::Flow>> {
    sources
        .iter()
        .filter_map(|s| crate::script::compile_flow(s.clone()).0.map(Arc::new))
        .collect()
}

fn shown_answers(
    flow: &crate::script::Flow,
    st: &crate::engine::SessionState,
) -> BTreeMap<String, String> {
    st.answers
        .iter()
        .map(|(ix, v)| (flow.node(*ix).id.clone(), display_answer(flow, *ix, v)))
        .collect()
}

async fn check_expect(
    t: &Transcript,
    runner: &Runner,
    user: &UserKey,
    failures: &mut Vec<Failure>,
) {
    let e = &t.expect;
    let line = 0;
    let mut fail = |m: String| {
        failures.push(Failure {
            line,
            message: format!("expect: {m}"),
        })
    };
    let store = runner.store();
    let Ok(Some(session)) = store.latest_session(user).await else {
        return fail("no session was stored".into());
    };
    let flow = match runner.flow_for(&session.version).await {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(s) = &e.status {
        if session.status.name() != s {
            fail(format!("status is {}, expected {s}", session.status.name()));
        }
    }
    let shown = shown_answers(&flow, &session.state);
    for (k, v) in &e.answers {
        match shown.get(k) {
            Some(got) if got == v => {}
            Some(got) => fail(format!("answer `{k}` is {got:?}, expected {v:?}")),
            None => fail(format!("answer `{k}` is missing, expected {v:?}")),
        }
    }
    for k in &e.unanswered {
        if let Some(got) = shown.get(k) {
            fail(format!("answer `{k}` is {got:?}, expected none"));
        }
    }
    if let Some(tags) = &e.tags {
        let mut want = tags.clone();
        want.sort();
        let mut got = session.state.tags.clone();
        got.sort();
        if want != got {
            fail(format!("tags are {got:?}, expected {want:?}"));
        }
    }
    let cases = store.cases_of_user(user).await.unwrap_or_default();
    let case = cases.last();
    if let Some(want) = e.case {
        if want != case.is_some() {
            fail(if want {
                "no case was created".into()
            } else {
                format!(
                    "a case was created ({})",
                    case.map(|c| c.id.to_string()).unwrap_or_default()
                )
            });
        }
    }
    if let Some(r) = &e.route {
        let route = case
            .map(|c| c.route.clone())
            .or_else(|| session.state.route.as_deref().cloned());
        match route {
            None => fail("the case was never routed".into()),
            Some(route) => {
                if let Some(rule) = &r.rule {
                    if &route.rule != rule {
                        fail(format!(
                            "routed by rule `{}`, expected `{rule}` (passed over: {:?})",
                            route.rule, route.passed_over
                        ));
                    }
                }
                if let Some(p) = &r.primary {
                    if &route.primary.id != p {
                        fail(format!(
                            "primary hub is `{}`, expected `{p}`",
                            route.primary.id
                        ));
                    }
                }
                if let Some(c) = &r.copies {
                    let got: Vec<&str> = route.copies.iter().map(|h| h.id.as_str()).collect();
                    if got != c.iter().map(String::as_str).collect::<Vec<_>>() {
                        fail(format!("copies are {got:?}, expected {c:?}"));
                    }
                }
            }
        }
    }
    for frag in &e.summary {
        match case {
            Some(c) if c.summary_plain.contains(frag.as_str()) => {}
            Some(c) => fail(format!(
                "the case summary does not contain {frag:?}\n--- summary ---\n{}\n---------------",
                c.summary_plain
            )),
            None => fail(format!("no case, so no summary containing {frag:?}")),
        }
    }
    for frag in &e.not_in_summary {
        if let Some(c) = case.filter(|c| c.summary_plain.contains(frag.as_str())) {
            fail(format!(
                "the case summary contains {frag:?}\n--- summary ---\n{}\n---------------",
                c.summary_plain
            ));
        }
    }
    // Every case a transcript makes is checked for a faithful sheet: each
    // answer shown as given, no claim the owner did not make, the guide's
    // fields present.
    if let Some(c) = case {
        let today = t
            .today
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(2026, 11, 21).expect("valid date"));
        let input = crate::render::ContextInput {
            answers: &session.state.answers,
            tags: &session.state.tags,
            route: Some(&c.route),
            today,
        };
        for p in crate::sheet::check(&flow, &input, &c.summary_plain) {
            fail(format!(
                "sheet: {p}\n--- summary ---\n{}\n---------------",
                c.summary_plain
            ));
        }
    }
    if let (Some(want), Some(given)) = (&e.follow_up, &t.follow_up) {
        let got = store
            .follow_ups_of_case(crate::domain::ids::CaseId(given.case))
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|f| f.seq == given.seq)
            .map(|f| f.status.name());
        if got != Some(want.as_str()) {
            fail(format!("the follow-up is {got:?}, expected {want:?}"));
        }
    }
    if let Some(want) = &e.deliveries {
        let got: Vec<String> = match case {
            Some(c) => store
                .deliveries(c.id)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.hub_id)
                .collect(),
            None => vec![],
        };
        if &got != want {
            fail(format!("deliveries went to {got:?}, expected {want:?}"));
        }
    }
}

/// Runs every `*.yaml` transcript in `dir` against the bundle compiled from
/// `dialogs`. Returns the outcomes in file order.
pub async fn run_dir(dialogs: &Path, dir: &Path) -> anyhow::Result<Vec<(String, Outcome)>> {
    run_dir_on(dialogs, dir, &Backend::Sqlite).await
}

/// [`run_dir`] on the given backend.
pub async fn run_dir_on(
    dialogs: &Path,
    dir: &Path,
    backend: &Backend,
) -> anyhow::Result<Vec<(String, Outcome)>> {
    use anyhow::Context;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read transcript directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml") | Some("yml")
            )
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(&f).with_context(|| format!("cannot read {name}"))?;
        let outcome = match parse(&text) {
            Ok(t) => {
                let bundle =
                    crate::script::load_dir(dialogs).map_err(|e| anyhow::anyhow!("{e}"))?;
                run_on(&t, bundle, backend).await
            }
            Err(e) => Outcome {
                name: name.clone(),
                failures: vec![Failure {
                    line: 0,
                    message: format!("the transcript cannot be read: {e}"),
                }],
                log: String::new(),
            },
        };
        out.push((name, outcome));
    }
    Ok(out)
}
