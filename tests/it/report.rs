//! `madoguchi report` on a seeded database whose figures are known.
//!
//! A few hundred consultations are generated deterministically (a fixed
//! seed) and written through the real store API: sessions, answers,
//! re-asks, consents and cases by `commit_step`, deliveries by
//! `record_attempt`, staff actions by `update_case`. The generator keeps
//! its own plan of what it wrote, and the expected figures are computed
//! from that plan here, independently of `madoguchi::report`; then every
//! figure is checked in the Markdown, the CSV and the HTML.
//!
//! The HTML is also opened in headless Chromium (`chromium_opens_the_report`)
//! when it is installed.

use crate::support::db::TestDb;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use madoguchi::answer::AnswerValue;
use madoguchi::domain::ids::{CaseId, SessionId, Transport, UserKey};
use madoguchi::engine::{CaseDraft, ConsentRecord, Effect, Recorded, SessionState, Status};
use madoguchi::report::render::{self, Lang};
use madoguchi::report::{Network, Params};
use madoguchi::routing::{HubRef, RouteDecision};
use madoguchi::script::Lang as ScriptLang;
use madoguchi::store::{
    AttemptOutcome, CaseChange, NewDelivery, NewSession, Presumption, StepCommit, Store,
    VersionRecord,
};
use std::collections::{BTreeMap, BTreeSet};

const N: usize = 320;
const HUBS: [(&str, &str); 4] = [
    ("kyoto-pro", "talent-need-clear"),
    ("kyoto-yorozu", "issues-without-people"),
    ("hyogo-pro", "talent-need-clear"),
    ("kumamoto-bank", "finance-to-bank"),
];
const DELAYS: [i64; 6] = [1, 3, 10, 23, 30, 48];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no crate needed for a test seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    Started,
    PrivacyNo,
    Privacy,
    Profile,
    Issues,
    Talent,
    ConsentNo,
    Case,
    Delivered,
}

/// What the generator wrote for one consultation.
#[derive(Debug, Clone)]
struct Plan {
    owner: String,
    funnel_script: bool,
    t0: DateTime<Utc>,
    reach: Reach,
    reasks: Vec<&'static str>,
    case: Option<CasePlan>,
}

#[derive(Debug, Clone)]
struct CasePlan {
    hub: usize,
    route_step: u8,
    created: DateTime<Utc>,
    /// `(actor, at)` of the claim at the routed hub.
    claim: Option<(String, DateTime<Utc>)>,
    /// Steps advanced to, by the claimer: `(step, at)`.
    advances: Vec<(u8, DateTime<Utc>)>,
    /// Forwarded by the claimer: `(to hub, at)`, and the claim there.
    forward: Option<(usize, DateTime<Utc>, Option<(String, DateTime<Utc>)>)>,
    followup: Option<DateTime<Utc>>,
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap()
}
fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 31, 15, 0, 0).unwrap()
}
fn now() -> DateTime<Utc> {
    end() + Duration::hours(20)
}

/// The nodes asked so far for a reach, in script order, and where the
/// session is now.
fn answered_nodes(r: Reach) -> Vec<&'static str> {
    let mut v = Vec::new();
    if r >= Reach::PrivacyNo {
        v.push("privacy_ok");
    }
    if r >= Reach::Profile {
        v.extend(["company_name", "capital"]);
    }
    if r >= Reach::Issues {
        v.extend(["issue_detail", "tried"]);
    }
    if r >= Reach::Talent {
        v.push("people_part");
    }
    if r >= Reach::ConsentNo {
        v.push("consent");
    }
    v
}

fn current_node(r: Reach) -> (&'static str, Status) {
    match r {
        Reach::Started => ("privacy_ok", Status::Active),
        Reach::PrivacyNo => ("privacy_declined", Status::Declined),
        Reach::Privacy => ("company_name", Status::Active),
        Reach::Profile => ("issue_detail", Status::Active),
        Reach::Issues => ("people_part", Status::Active),
        Reach::Talent => ("contact_name", Status::Active),
        Reach::ConsentNo => ("consent_declined", Status::Declined),
        Reach::Case | Reach::Delivered => ("done", Status::Completed),
    }
}

fn plan() -> Vec<Plan> {
    let mut rng = Rng(0x6d61_646f_6775_6368);
    let mut out = Vec::new();
    for i in 0..N {
        let minutes = rng.below(60) as i64;
        let t0 = if i < 4 {
            // Before the period: Japan time 31 March 20:00–23:00.
            start() - Duration::hours(4 - i as i64) + Duration::minutes(minutes)
        } else if i >= N - 4 {
            end() + Duration::hours(i as i64 - (N as i64 - 5)) + Duration::minutes(minutes)
        } else if i == N - 5 {
            end() - Duration::hours(3)
        } else {
            start() + Duration::hours(26 * (i as i64 - 4)) + Duration::minutes(minutes)
        };
        let funnel_script = i % 37 != 5;
        let p = rng.below(100);
        let reach = if !funnel_script {
            Reach::Privacy
        } else if i == N - 5 {
            Reach::Case
        } else {
            match p {
                0..=9 => Reach::Started,
                10..=14 => Reach::PrivacyNo,
                15..=24 => Reach::Privacy,
                25..=34 => Reach::Profile,
                35..=44 => Reach::Issues,
                45..=54 => Reach::Talent,
                55..=59 => Reach::ConsentNo,
                60..=69 => Reach::Case,
                _ => Reach::Delivered,
            }
        };
        let mut asked: Vec<&'static str> = answered_nodes(reach);
        if !matches!(reach, Reach::Case | Reach::Delivered) {
            asked.push(current_node(reach).0);
        }
        asked.retain(|n| !n.ends_with("_declined"));
        let reasks = (0..rng.below(4))
            .map(|_| asked[rng.below(asked.len() as u64) as usize])
            .collect();
        let created = t0 + Duration::minutes(2);
        let case = (reach >= Reach::Case).then(|| {
            let hub = rng.below(4) as usize;
            let route_step = if rng.below(2) == 0 { 3 } else { 2 };
            let mut c = CasePlan {
                hub,
                route_step,
                created,
                claim: None,
                advances: Vec::new(),
                forward: None,
                followup: None,
            };
            let claimed = rng.below(10) >= 2 || i == N - 5;
            if claimed {
                let delay = if i == N - 5 {
                    10
                } else {
                    DELAYS[rng.below(6) as usize]
                };
                let actor = format!("discord:9{}", rng.below(5));
                let at = created + Duration::hours(delay);
                c.claim = Some((actor.clone(), at));
                match rng.below(4) {
                    1 => c.advances.push((4, at + Duration::hours(2))),
                    2 => {
                        c.advances.push((4, at + Duration::hours(2)));
                        c.advances.push((5, at + Duration::hours(5)));
                        if rng.below(2) == 0 {
                            c.followup = Some(at + Duration::hours(6));
                        }
                    }
                    3 => {
                        let to = (hub + 1 + rng.below(3) as usize) % 4;
                        let fat = at + Duration::hours(4);
                        let second = (rng.below(2) == 0).then(|| {
                            let d2 = if rng.below(2) == 0 { 2 } else { 26 };
                            (
                                format!("discord:8{}", rng.below(3)),
                                fat + Duration::hours(d2),
                            )
                        });
                        c.forward = Some((to, fat, second));
                    }
                    _ => {}
                }
            }
            c
        });
        out.push(Plan {
            owner: format!("{}", 5000 + (i % 300)),
            funnel_script,
            t0,
            reach,
            reasks,
            case,
        });
    }
    out
}

fn hub_ref(i: usize) -> HubRef {
    HubRef {
        id: HUBS[i].0.into(),
        name: HUBS[i].0.into(),
    }
}

async fn seed(store: &dyn Store, plans: &[Plan]) {
    let version = "report-test-version".to_string();
    store
        .save_version(&VersionRecord {
            version: version.clone(),
            script_id: "first_contact".into(),
            lang: ScriptLang::Ja,
            script_name: "first_contact.ja.yaml".into(),
            script_text: "-".into(),
            routing_name: "routing.yaml".into(),
            routing_text: "-".into(),
            created_at: start() - Duration::days(30),
        })
        .await
        .unwrap();
    for p in plans {
        let user = UserKey::new(Transport::Discord, &p.owner).unwrap();
        let ns = NewSession {
            user: user.clone(),
            script_id: if p.funnel_script {
                "first_contact".into()
            } else {
                "follow_up".into()
            },
            lang: ScriptLang::Ja,
            version: version.clone(),
            now: p.t0,
            presumed: Presumption::Read,
        };
        let mut state = SessionState {
            status: Status::Active,
            ..SessionState::default()
        };
        let out = store
            .commit_step(&StepCommit {
                session: SessionId(0),
                rev: 0,
                now: p.t0,
                state: &state,
                current_node: "privacy_ok",
                effects: &[],
                deliveries: Vec::new(),
                new_session: Some(&ns),
                state_json: None,
                prev_status: None,
                case_timers: None,
            })
            .await
            .unwrap();
        let session = out.created.unwrap();
        let reasks: Vec<Effect> = p
            .reasks
            .iter()
            .map(|n| Effect::Reask {
                node: n.to_string(),
                ix: 0,
            })
            .collect();
        store
            .commit_step(&StepCommit {
                session,
                rev: 1,
                now: p.t0 + Duration::minutes(1),
                state: &state,
                current_node: "privacy_ok",
                effects: &reasks,
                deliveries: Vec::new(),
                new_session: None,
                state_json: None,
                prev_status: Some(Status::Active),
                case_timers: None,
            })
            .await
            .unwrap();
        let mut effects: Vec<Effect> = answered_nodes(p.reach)
            .into_iter()
            .map(|n| {
                let value = match n {
                    "privacy_ok" => AnswerValue::Bool(p.reach != Reach::PrivacyNo),
                    "consent" => AnswerValue::Bool(p.reach != Reach::ConsentNo),
                    "people_part" => AnswerValue::Choice("yes".into()),
                    "capital" | "tried" => AnswerValue::Skipped,
                    _ => AnswerValue::Text("（テスト）".into()),
                };
                Effect::Record(Recorded {
                    node: n.into(),
                    ix: 0,
                    value,
                    raw: String::new(),
                    correction: false,
                })
            })
            .collect();
        let mut deliveries = Vec::new();
        if p.reach == Reach::ConsentNo {
            effects.push(Effect::Consent(ConsentRecord {
                granted: false,
                hubs: vec![hub_ref(0)],
                items: vec!["会社概要".into()],
                wording: "共有しません".into(),
            }));
        }
        if let Some(c) = &p.case {
            let route = RouteDecision {
                rule: HUBS[c.hub].1.into(),
                reason: "test".into(),
                primary: hub_ref(c.hub),
                copies: Vec::new(),
                step: c.route_step,
                passed_over: Vec::new(),
                follow_up: None,
            };
            effects.push(Effect::CaseReady(Box::new(CaseDraft {
                headline: "テスト社".into(),
                summary_plain: "sheet".into(),
                summary_markdown: "sheet".into(),
                route: route.clone(),
                tags: Vec::new(),
                consent: ConsentRecord {
                    granted: true,
                    hubs: vec![hub_ref(c.hub)],
                    items: vec!["会社概要".into()],
                    wording: "共有に同意します".into(),
                },
                step: c.route_step,
            })));
            deliveries.push(NewDelivery {
                hub_id: HUBS[c.hub].0.into(),
                transport: "local".into(),
                target: "inbox".into(),
            });
        }
        let (node, status) = current_node(p.reach);
        state.status = status;
        let out = store
            .commit_step(&StepCommit {
                session,
                rev: 2,
                now: p.t0 + Duration::minutes(2),
                state: &state,
                current_node: node,
                effects: &effects,
                deliveries,
                new_session: None,
                state_json: None,
                prev_status: Some(Status::Active),
                case_timers: None,
            })
            .await
            .unwrap();
        let Some(c) = &p.case else { continue };
        let case = out.case.unwrap();
        if p.reach == Reach::Delivered {
            let d = store.deliveries(case).await.unwrap();
            store
                .record_attempt(
                    d[0].id,
                    &AttemptOutcome::Delivered { external_id: None },
                    c.created + Duration::minutes(1),
                )
                .await
                .unwrap();
        }
        staff(store, case, c).await;
    }
}

async fn staff(store: &dyn Store, case: CaseId, c: &CasePlan) {
    let Some((actor, at)) = &c.claim else { return };
    store
        .update_case(case, &CaseChange::Claim { by: actor.clone() }, actor, *at)
        .await
        .unwrap();
    for (step, at) in &c.advances {
        store
            .update_case(case, &CaseChange::Advance { to_step: *step }, actor, *at)
            .await
            .unwrap();
    }
    if let Some(at) = c.followup {
        store
            .append_audit(
                Some(case),
                "bot",
                "follow_up_answered",
                &serde_json::json!({}),
                at,
            )
            .await
            .unwrap();
    }
    if let Some((to, fat, second)) = &c.forward {
        store
            .update_case(
                case,
                &CaseChange::Forward {
                    to_hub: HUBS[*to].0.into(),
                    reason: "test".into(),
                },
                actor,
                *fat,
            )
            .await
            .unwrap();
        if let Some((a2, at2)) = second {
            store
                .update_case(case, &CaseChange::Claim { by: a2.clone() }, a2, *at2)
                .await
                .unwrap();
        }
    }
}

/// The figures, computed from the plan (not from the store).
struct Expected {
    kpi: Vec<(String, [u64; 5])>,
    funnel: Vec<u64>,
    /// node → (answered, stopped, reasks)
    questions: BTreeMap<&'static str, (u64, u64, u64)>,
    routes: BTreeMap<(String, String), u64>,
    forwards: BTreeMap<(String, String), u64>,
    claim: (u64, String, String),
    forward: (u64, String, String),
    overdue: u64,
    steps: [u64; 3],
    followups: u64,
}

fn rank(mut v: Vec<f64>, p: f64) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let k = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    format!("{:.1}", v[k - 1])
}

fn expected(plans: &[Plan], hub: Option<&str>, net: &Network) -> Expected {
    let in_period = |t: DateTime<Utc>| t >= start() && t < end();
    let before_end = |t: &DateTime<Utc>| *t < end();
    let cases: Vec<(&Plan, &CasePlan)> = plans
        .iter()
        .filter(|p| in_period(p.t0))
        .filter_map(|p| p.case.as_ref().map(|c| (p, c)))
        .filter(|(_, c)| {
            hub.is_none_or(|h| {
                HUBS[c.hub].0 == h
                    || c.forward
                        .as_ref()
                        .is_some_and(|(to, at, _)| before_end(at) && HUBS[*to].0 == h)
            })
        })
        .collect();
    let hub_at_end = |c: &CasePlan| match &c.forward {
        Some((to, at, _)) if before_end(at) => *to,
        _ => c.hub,
    };
    let reached = |c: &CasePlan| {
        c.advances
            .iter()
            .filter(|(_, at)| before_end(at))
            .map(|(s, _)| *s)
            .chain([c.route_step])
            .max()
            .unwrap()
    };
    fn claim_before_end(c: &CasePlan) -> Option<&(String, DateTime<Utc>)> {
        c.claim.as_ref().filter(|(_, at)| *at < end())
    }
    // The hub's claim limit from `since`: `reminders:` of the shipped
    // routing (per hub, in business hours without weekends and national
    // holidays), as the reminders count it. (Until the reminders and the
    // report shared one notion of overdue this was a flat 24 hours.)
    let deadline = |hub: usize, since: DateTime<Utc>| {
        net.reminders
            .calendar()
            .add(since, net.reminders.limits(HUBS[hub].0).claim_within)
    };
    // Smooth: claimed within the hub's claim limit, then the claimer
    // advanced or forwarded.
    let smooth = |c: &CasePlan| -> Option<(usize, String)> {
        let (actor, at) = claim_before_end(c)?;
        let moved = c.advances.iter().any(|(_, t)| before_end(t))
            || c.forward.as_ref().is_some_and(|(_, t, _)| before_end(t));
        (*at <= deadline(c.hub, c.created) && moved).then(|| (c.hub, actor.clone()))
    };
    let row = |h: Option<usize>| -> [u64; 5] {
        let mine: Vec<_> = cases
            .iter()
            .filter(|(_, c)| h.is_none_or(|h| hub_at_end(c) == h))
            .collect();
        let owners = |min: u8| {
            mine.iter()
                .filter(|(_, c)| reached(c) >= min)
                .map(|(p, _)| p.owner.clone())
                .collect::<BTreeSet<_>>()
                .len() as u64
        };
        let staff: BTreeSet<String> = cases
            .iter()
            .filter_map(|(_, c)| smooth(c))
            .filter(|(hh, _)| h.is_none_or(|h| *hh == h))
            .map(|(_, a)| a)
            .collect();
        [
            if h.is_some() {
                1
            } else {
                net.hubs.len() as u64
            },
            owners(0),
            owners(3),
            owners(4),
            staff.len() as u64,
        ]
    };
    let mut kpi = Vec::new();
    match hub {
        Some(h) => {
            let i = HUBS.iter().position(|x| x.0 == h).unwrap();
            kpi.push((h.to_string(), row(Some(i))));
        }
        None => {
            for (id, _) in &net.hubs {
                let r = match HUBS.iter().position(|x| x.0 == id) {
                    Some(i) => row(Some(i)),
                    None => [1, 0, 0, 0, 0],
                };
                kpi.push((id.clone(), r));
            }
            kpi.push(("network".into(), row(None)));
        }
    }
    // Funnel and questions (network only).
    let sessions: Vec<&Plan> = plans
        .iter()
        .filter(|p| in_period(p.t0) && p.funnel_script)
        .collect();
    let stage = |r: Reach| -> usize {
        match r {
            Reach::Started | Reach::PrivacyNo => 0,
            Reach::Privacy => 1,
            Reach::Profile => 2,
            Reach::Issues => 3,
            Reach::Talent | Reach::ConsentNo => 4,
            Reach::Case => 5,
            Reach::Delivered => 6,
        }
    };
    let funnel = (0..7)
        .map(|k| sessions.iter().filter(|p| stage(p.reach) >= k).count() as u64)
        .collect();
    let mut questions: BTreeMap<&'static str, (u64, u64, u64)> = BTreeMap::new();
    for p in &sessions {
        for n in answered_nodes(p.reach) {
            questions.entry(n).or_default().0 += 1;
        }
        let (node, status) = current_node(p.reach);
        if status != Status::Completed {
            questions.entry(node).or_default().1 += 1;
        }
    }
    // Re-asks count by time, whatever the script.
    for p in plans
        .iter()
        .filter(|p| in_period(p.t0 + Duration::minutes(1)))
    {
        for n in &p.reasks {
            questions.entry(n).or_default().2 += 1;
        }
    }
    let mut routes = BTreeMap::new();
    let mut forwards = BTreeMap::new();
    let mut claims = Vec::new();
    let mut fwd_times = Vec::new();
    let mut overdue = 0;
    let mut steps = [0u64; 3];
    let mut followups = 0;
    for (_, c) in &cases {
        *routes
            .entry((HUBS[c.hub].1.to_string(), HUBS[c.hub].0.to_string()))
            .or_insert(0u64) += 1;
        if let Some((_, at)) = claim_before_end(c) {
            if hub.is_none_or(|h| HUBS[c.hub].0 == h) {
                claims.push((*at - c.created).num_seconds() as f64 / 3600.0);
            }
        }
        if let Some((to, fat, second)) = &c.forward {
            if before_end(fat) {
                let (f, t) = (HUBS[c.hub].0, HUBS[*to].0);
                if hub.is_none_or(|h| h == f || h == t) {
                    *forwards
                        .entry((f.to_string(), t.to_string()))
                        .or_insert(0u64) += 1;
                }
                if hub.is_none_or(|h| h == f) {
                    fwd_times.push((*fat - c.created).num_seconds() as f64 / 3600.0);
                }
                if let Some((_, at2)) = second.as_ref().filter(|(_, t)| before_end(t)) {
                    if hub.is_none_or(|h| h == t) {
                        claims.push((*at2 - *fat).num_seconds() as f64 / 3600.0);
                    }
                }
            }
        }
        // Open now: never claimed, or forwarded and not claimed there.
        let (open, since, hub_now) = match (&c.claim, &c.forward) {
            (None, _) => (true, c.created, c.hub),
            (Some(_), Some((to, fat, None))) => (true, *fat, *to),
            _ => (false, c.created, c.hub),
        };
        if open && hub.is_none_or(|h| HUBS[hub_now].0 == h) && deadline(hub_now, since) <= now() {
            overdue += 1;
        }
        for (k, s) in [3u8, 4, 5].iter().enumerate() {
            if reached(c) >= *s {
                steps[k] += 1;
            }
        }
        if c.followup.is_some_and(|t| before_end(&t)) {
            followups += 1;
        }
    }
    Expected {
        kpi,
        funnel,
        questions,
        routes,
        forwards,
        claim: (
            claims.len() as u64,
            rank(claims.clone(), 0.5),
            rank(claims, 0.9),
        ),
        forward: (
            fwd_times.len() as u64,
            rank(fwd_times.clone(), 0.5),
            rank(fwd_times, 0.9),
        ),
        overdue,
        steps,
        followups,
    }
}

fn network() -> Network {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    madoguchi::report::cli::network(&dir).unwrap()
}

fn params(hub: Option<&str>) -> Params {
    Params {
        from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
        hub: hub.map(str::to_string),
        now: now(),
    }
}

fn csv_records(text: &str) -> BTreeMap<(String, String, String), String> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut out = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let key = (rec[0].to_string(), rec[1].to_string(), rec[3].to_string());
        assert!(
            out.insert(key.clone(), rec[4].to_string()).is_none(),
            "duplicate CSV figure {key:?}"
        );
    }
    out
}

fn md_line(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

fn html_row(cells: &[String]) -> String {
    let mut s = String::from("<tr>");
    for (i, c) in cells.iter().enumerate() {
        let numeric = i > 0
            && c.chars()
                .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '-');
        let class = if numeric { " class=\"n\"" } else { "" };
        s.push_str(&format!("<td{class}>{}</td>", render::html_escape(c)));
    }
    s.push_str("</tr>");
    s
}

/// Checks one table row in each format: `cells` as shown (first the
/// label), and the CSV figures `(section, key, column) = value`.
struct Check<'a> {
    md: &'a str,
    html: &'a str,
    csv: &'a BTreeMap<(String, String, String), String>,
}

impl Check<'_> {
    fn row(&self, cells: Vec<String>) {
        let line = md_line(&cells);
        assert!(
            self.md.lines().any(|l| l == line),
            "markdown lacks {line}\n{}",
            self.md
        );
        let row = html_row(&cells);
        assert!(self.html.contains(&row), "html lacks {row}");
    }
    fn csv(&self, section: &str, key: &str, column: &str, value: impl ToString) {
        let got = self
            .csv
            .get(&(section.into(), key.into(), column.into()))
            .unwrap_or_else(|| panic!("CSV lacks {section},{key},{column}"));
        assert_eq!(got, &value.to_string(), "CSV {section},{key},{column}");
    }
}

fn check_all(report: &madoguchi::report::Report, exp: &Expected, net: &Network) {
    let md = render::markdown(report, Lang::Ja);
    let html = render::html(report, Lang::Ja);
    let csv_text = render::csv(report, Lang::Ja);
    let csv = csv_records(&csv_text);
    let c = Check {
        md: &md,
        html: &html,
        csv: &csv,
    };
    let names: BTreeMap<&str, &str> = net
        .hubs
        .iter()
        .map(|(i, n)| (i.as_str(), n.as_str()))
        .collect();
    let name = |id: &str| -> String {
        names
            .get(id)
            .map(|s| s.to_string())
            .unwrap_or_else(|| id.to_string())
    };
    assert_eq!(report.kpi.len(), exp.kpi.len(), "KPI rows");
    for (id, v) in &exp.kpi {
        let label = if id == "network" {
            "ネットワーク全体 / network".to_string()
        } else {
            name(id)
        };
        let mut cells = vec![label];
        cells.extend(v.iter().map(|n| n.to_string()));
        c.row(cells);
        for (col, n) in [
            "institutions",
            "companies",
            "job_opening",
            "matched",
            "smooth_staff",
        ]
        .iter()
        .zip(v)
        {
            c.csv("kpi", id, col, n);
        }
    }
    let stages = [
        ("started", "相談開始 / started"),
        ("privacy_accepted", "取り扱いに同意 / privacy accepted"),
        ("profile", "会社概要 / profile"),
        ("issues", "経営課題 / issues"),
        ("talent_need", "人材ニーズ / talent need"),
        ("consent", "共有に同意 / consent"),
        ("delivered", "支援機関に届いた / delivered"),
    ];
    if report.params.hub.is_none() {
        for (k, (key, label)) in stages.iter().enumerate() {
            let n = exp.funnel[k];
            let pct = format!("{:.1}", n as f64 * 100.0 / exp.funnel[0] as f64);
            c.row(vec![label.to_string(), n.to_string(), pct]);
            c.csv("funnel", key, "sessions", n);
            assert!(
                html.contains(&format!("data-value=\"{n}\"")),
                "funnel bar {key}"
            );
        }
        let labels: BTreeMap<&str, &str> = net
            .questions
            .iter()
            .map(|(i, l)| (i.as_str(), l.as_str()))
            .collect();
        let shown: Vec<&str> = report
            .questions
            .as_ref()
            .unwrap()
            .iter()
            .map(|q| q.node.as_str())
            .collect();
        assert_eq!(
            shown.iter().copied().collect::<BTreeSet<_>>(),
            exp.questions.keys().copied().collect::<BTreeSet<_>>(),
            "the questions shown"
        );
        for (node, (a, s, r)) in &exp.questions {
            c.row(vec![
                labels[node].to_string(),
                node.to_string(),
                a.to_string(),
                s.to_string(),
                r.to_string(),
            ]);
            c.csv("question", node, "answered", a);
            c.csv("question", node, "stopped", s);
            c.csv("question", node, "reasks", r);
        }
    } else {
        assert!(!csv.keys().any(|k| k.0 == "funnel" || k.0 == "question"));
        assert!(md.contains("相談の流れと質問ごとの離脱は含みません"));
    }
    assert_eq!(report.routes.len(), exp.routes.len(), "route rows");
    for ((rule, hub), n) in &exp.routes {
        c.row(vec![rule.clone(), name(hub), n.to_string()]);
        c.csv("route", &format!("{rule}>{hub}"), "cases", n);
    }
    assert_eq!(report.forwards.len(), exp.forwards.len(), "forward rows");
    for ((f, t), n) in &exp.forwards {
        c.row(vec![name(f), name(t), n.to_string()]);
        c.csv("forward", &format!("{f}>{t}"), "forwards", n);
    }
    for (key, label, (n, med, p90)) in [
        ("claim", "受付までの時間 / time to claim", &exp.claim),
        ("forward", "転送までの時間 / time to forward", &exp.forward),
    ] {
        c.row(vec![label.into(), n.to_string(), med.clone(), p90.clone()]);
        c.csv("time", key, "n", n);
        c.csv("time", key, "median_h", med);
        c.csv("time", key, "p90_h", p90);
    }
    for (k, s) in ["3", "4", "5"].iter().enumerate() {
        c.row(vec![
            format!("STEP{s} 到達 / reached step {s}"),
            exp.steps[k].to_string(),
        ]);
        c.csv("step", s, "cases", exp.steps[k]);
    }
    c.row(vec![
        "フォローアップ回答 / follow-ups answered".into(),
        exp.followups.to_string(),
    ]);
    c.csv("followup", "answered", "count", exp.followups);
    c.row(vec![
        "期限超過（現在） / overdue now".into(),
        exp.overdue.to_string(),
    ]);
    c.csv("overdue", "now", "cases", exp.overdue);
    // Aggregates only: no owner key in any format.
    for text in [&md, &html, &csv_text] {
        assert!(!text.contains("discord:"), "an owner or staff key leaked");
        assert!(!text.contains("（テスト）"), "an answer leaked");
    }
}

async fn seeded_report_on(db: TestDb) {
    let store = db.open().await.arc();
    let plans = plan();
    seed(store.as_ref(), &plans).await;
    let net = network();
    // The seed exercises what the report distinguishes.
    let e = expected(&plans, None, &net);
    assert!(e.funnel[0] > 250 && e.funnel[6] > 20, "{:?}", e.funnel);
    assert!(e.forwards.values().sum::<u64>() > 5 && e.overdue > 5 && e.followups > 0);
    assert!(e.kpi.last().unwrap().1[4] > 0, "some staff were smooth");
    assert!(e.questions.values().map(|q| q.2).sum::<u64>() > 100);
    let report = madoguchi::report::build(store.as_ref(), &params(None), &net)
        .await
        .unwrap();
    check_all(&report, &e, &net);
    // English only with `--lang en`, the same figures.
    let en = render::markdown(&report, Lang::En);
    let mut cells = vec!["network".to_string()];
    cells.extend(e.kpi.last().unwrap().1.iter().map(|n| n.to_string()));
    assert!(en.lines().any(|l| l == md_line(&cells)), "{en}");
    assert!(en.contains("| Kyoto ") && !en.contains("相談開始"), "{en}");
    for h in ["kyoto-pro", "kumamoto-bank"] {
        let report = madoguchi::report::build(store.as_ref(), &params(Some(h)), &net)
            .await
            .unwrap();
        check_all(&report, &expected(&plans, Some(h), &net), &net);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_the_seeded_figures_on_sqlite() {
    seeded_report_on(TestDb::sqlite("report")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_the_seeded_figures_on_postgres() {
    let Some(db) = TestDb::postgres("report") else {
        eprintln!(
            "skipped: set MADOGUCHI_TEST_PG to a PostgreSQL URL to run the report on PostgreSQL"
        );
        return;
    };
    seeded_report_on(db).await;
}

/// The Chromium DevTools protocol over `--remote-debugging-pipe`: commands
/// are JSON written to the browser's fd 3, replies and events come back on
/// its fd 4, each message ended by a NUL byte. No WebSocket, no port.
mod cdp {
    use serde_json::{json, Value};
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc::{channel, Receiver};
    use std::time::Duration;

    pub struct Browser {
        child: Child,
        to: std::fs::File,
        from: Receiver<Value>,
        next_id: u64,
        /// Every event received so far.
        pub events: Vec<Value>,
        _profile: tempfile::TempDir,
    }

    /// A pipe as two files (`std::io::pipe` needs a newer Rust than the
    /// crate promises). Both ends are close-on-exec; the child gets its
    /// copies by `dup2`, which clears the flag on the copy.
    fn pipe() -> (std::fs::File, std::fs::File) {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors are new and owned by nothing else.
        unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        }
    }

    /// Waiting longer than this for the browser is a failure, not a hang.
    const LIMIT: Duration = Duration::from_secs(60);

    impl Browser {
        pub fn launch(program: &str) -> Browser {
            let profile = tempfile::tempdir().unwrap();
            let (cmd_r, cmd_w) = pipe();
            let (resp_r, resp_w) = pipe();
            let (in_fd, out_fd) = (cmd_r.as_raw_fd(), resp_w.as_raw_fd());
            let mut c = Command::new(program);
            c.args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            // SAFETY: only async-signal-safe calls (dup2) between fork and
            // exec; they put the pipe ends where Chromium expects them.
            unsafe {
                c.pre_exec(move || {
                    // Copies above 4 first, so that placing one end on 3
                    // cannot close the other if it happened to be 3 or 4.
                    let a = libc::fcntl(in_fd, libc::F_DUPFD, 10);
                    let b = libc::fcntl(out_fd, libc::F_DUPFD, 10);
                    if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = c.spawn().expect("chromium starts");
            drop(cmd_r);
            drop(resp_w);
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let mut r = BufReader::new(resp_r);
                let mut buf = Vec::new();
                while let Ok(n) = r.read_until(0, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    if buf.last() == Some(&0) {
                        buf.pop();
                    }
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    buf.clear();
                }
            });
            Browser {
                child,
                to: cmd_w,
                from: rx,
                next_id: 0,
                events: Vec::new(),
                _profile: profile,
            }
        }

        /// Sends a command (to a page's session, if given) and returns its
        /// result, keeping the events that arrive meanwhile.
        pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
            self.next_id += 1;
            let id = self.next_id;
            let mut msg = json!({ "id": id, "method": method, "params": params });
            if let Some(s) = session {
                msg["sessionId"] = json!(s);
            }
            let mut bytes = serde_json::to_vec(&msg).unwrap();
            bytes.push(0);
            self.to.write_all(&bytes).unwrap();
            loop {
                let v = self
                    .from
                    .recv_timeout(LIMIT)
                    .unwrap_or_else(|_| panic!("no reply to {method}"));
                if v.get("id").and_then(Value::as_u64) == Some(id) {
                    if let Some(e) = v.get("error") {
                        panic!("{method} failed: {e}");
                    }
                    return v["result"].clone();
                }
                self.events.push(v);
            }
        }

        /// Waits for an event by name.
        pub fn wait_for(&mut self, method: &str) {
            if self.events.iter().any(|e| e["method"] == method) {
                return;
            }
            loop {
                let v = self
                    .from
                    .recv_timeout(LIMIT)
                    .unwrap_or_else(|_| panic!("no {method} event"));
                let done = v["method"] == method;
                self.events.push(v);
                if done {
                    return;
                }
            }
        }

        /// Takes the events that are already queued.
        pub fn drain(&mut self) {
            while let Ok(v) = self.from.try_recv() {
                self.events.push(v);
            }
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The Chromium to test with: `MADOGUCHI_TEST_CHROMIUM` (CI sets it, so
/// the test always runs there), else `chromium` on the PATH, else none.
fn chromium() -> Option<String> {
    if let Ok(p) = std::env::var("MADOGUCHI_TEST_CHROMIUM") {
        if !p.is_empty() {
            return Some(if p == "1" { "chromium".into() } else { p });
        }
    }
    let found = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .any(|d| std::path::Path::new(d).join("chromium").is_file());
    found.then(|| "chromium".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_the_report() {
    let Some(program) = chromium() else {
        eprintln!("skipped: Chromium is not installed (apt-get install chromium, or set MADOGUCHI_TEST_CHROMIUM to its path)");
        return;
    };
    let db = TestDb::sqlite("report-html");
    let store = db.open().await.arc();
    seed(store.as_ref(), &plan()).await;
    let net = network();
    let report = madoguchi::report::build(store.as_ref(), &params(None), &net)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, render::html(&report, Lang::Ja)).unwrap();
    let url = format!("file://{}", page.display());

    let mut b = cdp::Browser::launch(&program);
    let target = b.call(
        None,
        "Target.createTarget",
        serde_json::json!({ "url": "about:blank" }),
    );
    let attached = b.call(
        None,
        "Target.attachToTarget",
        serde_json::json!({ "targetId": target["targetId"], "flatten": true }),
    );
    let s = attached["sessionId"].as_str().unwrap().to_string();
    let s = Some(s.as_str());
    for domain in ["Network", "Runtime", "Log", "Page"] {
        b.call(s, &format!("{domain}.enable"), serde_json::json!({}));
    }
    // A phone's screen.
    b.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
    );
    b.call(s, "Page.navigate", serde_json::json!({ "url": url }));
    b.wait_for("Page.loadEventFired");
    let probe = b.call(
        s,
        "Runtime.evaluate",
        serde_json::json!({
            "expression": "JSON.stringify({charts: document.querySelectorAll('svg.chart').length, bars: document.querySelectorAll('svg.chart rect.bar').length, wide: document.querySelectorAll('svg.chart rect.bar[width]:not([width=\"0\"])').length, scroll: document.documentElement.scrollWidth, view: window.innerWidth, scripts: document.scripts.length, h1: document.querySelector('h1').textContent})",
            "returnByValue": true,
        }),
    );
    let probe: serde_json::Value =
        serde_json::from_str(probe["result"]["value"].as_str().unwrap()).unwrap();
    let shot = b.call(
        s,
        "Page.captureScreenshot",
        serde_json::json!({ "format": "png" }),
    );
    b.drain();

    // The four charts are there, with bars.
    assert_eq!(probe["charts"], 4, "{probe}");
    assert!(probe["wide"].as_u64().unwrap() >= 10, "{probe}");
    assert_eq!(probe["scripts"], 0, "{probe}");
    assert!(probe["h1"]
        .as_str()
        .unwrap()
        .starts_with("ネットワークのKPI報告"));
    // Readable on a phone: nothing wider than the screen (wide tables
    // scroll inside their own box).
    assert!(
        probe["scroll"].as_u64().unwrap() <= probe["view"].as_u64().unwrap(),
        "the page is wider than a phone: {probe}"
    );
    // No request but the page itself.
    let requests: Vec<&str> = b
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .collect();
    assert!(
        requests.iter().all(|u| *u == url),
        "requests other than the page: {requests:?}"
    );
    assert!(requests.contains(&url.as_str()), "the page load was seen");
    // No console errors, exceptions or log errors.
    let errors: Vec<&serde_json::Value> = b
        .events
        .iter()
        .filter(|e| {
            (e["method"] == "Runtime.consoleAPICalled"
                && matches!(
                    e["params"]["type"].as_str(),
                    Some("error" | "warning" | "assert")
                ))
                || e["method"] == "Runtime.exceptionThrown"
                || (e["method"] == "Log.entryAdded"
                    && matches!(
                        e["params"]["entry"]["level"].as_str(),
                        Some("error" | "warning")
                    ))
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // The screenshot is not blank: many colours, and ink on the page.
    use base64::Engine;
    let png_bytes = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let colours: BTreeSet<&[u8]> = pixels.iter().copied().collect();
    let ink = pixels
        .iter()
        .filter(|p| p[..3].iter().any(|c| *c < 200))
        .count();
    assert!(
        info.width >= 300,
        "screenshot {}x{}",
        info.width,
        info.height
    );
    assert!(
        colours.len() >= 16,
        "only {} colours: blank?",
        colours.len()
    );
    assert!(
        ink * 50 > pixels.len(),
        "only {ink} of {} pixels are not near white",
        pixels.len()
    );
}

async fn scrape(addr: std::net::SocketAddr) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (code, ct, r.text().await.unwrap())
}

fn metric(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// `/metrics` on the health port: turns and re-asks counted by the runner
/// per platform, cases, deliveries and reminders read from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_from_the_health_port() {
    use madoguchi::engine::Input;
    use madoguchi::runner::{Runner, RunnerConfig, SystemClock};
    use std::sync::Arc;
    let db = TestDb::sqlite("metrics");
    let store = db.open().await.arc();
    // One routed case two weeks old (past any hub's claim limit in business
    // hours, whatever today is), its delivery pending: a reminder is due.
    let mut plans = plan();
    let mut p = plans
        .drain(..)
        .find(|p| p.reach == Reach::Case && p.case.as_ref().is_some_and(|c| c.claim.is_none()))
        .expect("the seed has an unclaimed case");
    p.t0 = Utc::now() - Duration::days(14);
    let created = p.t0 + Duration::minutes(2);
    p.case.as_mut().unwrap().created = created;
    seed(store.as_ref(), &[p]).await;

    let bundle = madoguchi::script::load_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs"),
    )
    .unwrap();
    // Its timers, as the runner schedules them when it hands a case over:
    // `reminders_due` reads the claim reminder's due time (the hub's limit
    // in business hours) from them.
    let cases = store
        .cases(&madoguchi::store::CaseFilter::default())
        .await
        .unwrap();
    assert_eq!(cases.len(), 1);
    madoguchi::network::worker::schedule_case(
        store.as_ref(),
        &bundle.flows[0].routing.reminders,
        &cases[0],
        created,
    )
    .await
    .unwrap();
    let runner = Runner::new(
        store.clone(),
        Arc::new(SystemClock),
        bundle,
        RunnerConfig::default(),
    )
    .await
    .unwrap();
    // Slack owners: no other test of this binary uses the platform, so the
    // process-wide counters are this test's alone.
    let owner = UserKey::new(Transport::Slack, "U0METRICS77").unwrap();
    runner.handle(&owner, Input::Start, None).await.unwrap();
    let t = runner
        .handle(&owner, Input::Text("ぽよぽよ".into()), None)
        .await
        .unwrap();
    assert!(
        t.effects
            .iter()
            .any(|e| matches!(e, Effect::Reask { node, .. } if node == "privacy_ok")),
        "{:?}",
        t.effects
    );
    runner
        .handle(&owner, Input::Text("はい".into()), None)
        .await
        .unwrap();
    // The re-ask is stored (question only), where the report reads it.
    let facts = store
        .report_facts(
            Utc::now() - Duration::hours(1),
            Utc::now() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(
        facts
            .reasks
            .iter()
            .map(|r| r.node.as_str())
            .collect::<Vec<_>>(),
        ["privacy_ok"]
    );

    let health = madoguchi::instances::Health::new(store.clone(), "sqlite");
    let (addr, task) = madoguchi::instances::serve_health(health, 0).await.unwrap();
    let (code, ct, body) = scrape(addr).await;
    task.abort();
    assert_eq!(code, 200, "{body}");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert_eq!(
        metric(&body, "madoguchi_turns_total{platform=\"slack\"}"),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "madoguchi_reasks_total{platform=\"slack\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "madoguchi_cases_routed{platform=\"discord\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            "madoguchi_deliveries{transport=\"local\",status=\"pending\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            "madoguchi_deliveries{transport=\"discord\",status=\"failed\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "madoguchi_reminders_due"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "madoguchi_reminders_sent"),
        Some(0.0),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    // No owner in any label.
    assert!(
        !body.contains("U0METRICS77") && !body.contains("5000"),
        "{body}"
    );
}

/// The monthly summary is posted once per month, across a restart; a post
/// that failed is tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_summary_is_posted_once() {
    use madoguchi::report::monthly::tick;
    let db = TestDb::sqlite("monthly");
    let store = db.open().await.arc();
    let plans = plan();
    seed(store.as_ref(), &plans[..40]).await;
    let net = network();
    let may3 = Utc.with_ymd_and_hms(2026, 5, 3, 0, 0, 0).unwrap();
    let posted = std::sync::Mutex::new(Vec::<String>::new());
    let ok = |text: String| {
        posted.lock().unwrap().push(text);
        async { true }
    };
    let failing = |_: String| async { false };
    // The post fails: nothing is remembered.
    assert_eq!(
        tick(store.as_ref(), &net, may3, Lang::Ja, failing)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        tick(store.as_ref(), &net, may3, Lang::Ja, ok)
            .await
            .unwrap()
            .as_deref(),
        Some("kpi-summary:2026-04")
    );
    assert_eq!(
        tick(
            store.as_ref(),
            &net,
            may3 + Duration::hours(5),
            Lang::Ja,
            ok
        )
        .await
        .unwrap(),
        None
    );
    // After a restart (a new pool on the same file), still once.
    let store = db.open().await.arc();
    assert_eq!(
        tick(
            store.as_ref(),
            &net,
            may3 + Duration::days(20),
            Lang::Ja,
            ok
        )
        .await
        .unwrap(),
        None
    );
    // 1 June, Japan time (31 May 15:00 UTC): May's summary.
    let june1 = Utc.with_ymd_and_hms(2026, 5, 31, 15, 0, 0).unwrap();
    assert_eq!(
        tick(
            store.as_ref(),
            &net,
            june1 - Duration::seconds(1),
            Lang::Ja,
            ok
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        tick(store.as_ref(), &net, june1, Lang::Ja, ok)
            .await
            .unwrap()
            .as_deref(),
        Some("kpi-summary:2026-05")
    );
    let posted = posted.into_inner().unwrap();
    assert_eq!(posted.len(), 2);
    // April's figures: the seeded sessions started in April (Japan time).
    let april = plans[..40]
        .iter()
        .filter(|p| {
            p.funnel_script
                && p.t0 >= start()
                && p.t0 < Utc.with_ymd_and_hms(2026, 4, 30, 15, 0, 0).unwrap()
        })
        .count();
    assert!(april > 10);
    assert!(
        posted[0].contains("(2026-04-01 – 2026-04-30)")
            && posted[0].contains(&format!("相談開始 / started {april} →")),
        "{}",
        posted[0]
    );
    assert!(!posted[0].contains("discord:"), "{}", posted[0]);
}

/// The command as an administrator runs it: the CSV file it writes holds
/// the library's figures; an unknown hub and a reversed period are refused
/// with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_command_writes_the_figures_and_refuses_bad_input() {
    let db = TestDb::sqlite("report-cli");
    let TestDb::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let store = db.open().await.arc();
    let plans = plan();
    seed(store.as_ref(), &plans[..60]).await;
    let net = network();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kpi.csv");
    let dialogs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("report")
            .args(["--db", path.to_str().unwrap()])
            .args(["--dialogs", dialogs.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "--from",
        "2026-04-01",
        "--to",
        "2027-03-31",
        "--format",
        "csv",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = csv_records(&std::fs::read_to_string(&out).unwrap());
    let e = expected(&plans[..60], None, &net);
    let network_row = &e.kpi.last().unwrap().1;
    assert_eq!(
        got[&("kpi".into(), "network".into(), "companies".into())],
        network_row[1].to_string()
    );
    assert_eq!(
        got[&("funnel".into(), "started".into(), "sessions".into())],
        e.funnel[0].to_string()
    );
    let o = run(&[
        "--from",
        "2026-04-01",
        "--to",
        "2027-03-31",
        "--hub",
        "atlantis",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no hub `atlantis`") && err.contains("kyoto-pro"),
        "{err}"
    );
    let o = run(&["--from", "2027-04-01", "--to", "2026-04-01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is after --to"));
}
