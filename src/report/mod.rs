//! The network's KPI report (`madoguchi report`): the guide's KPI table per
//! hub and for the network, the consultation funnel with the drop-off and
//! re-asks per question, hand-offs between hubs, and step progress.
//!
//! [`compute`] is a pure function over the facts the store hands out
//! ([`crate::store::Store::report_facts`]) and the network as configured
//! (hubs from `routing.yaml`, questions from the script); [`render`] turns
//! the figures into Markdown, CSV or one self-contained HTML page. The
//! report holds aggregates only: no owner's answers, names or keys.
//!
//! # Definitions (also printed in the report's footnotes)
//!
//! - The period is `--from` to `--to` inclusive, in Japan time (JST).
//!   Sessions and cases count when they were created in the period; staff
//!   actions (claims, forwards, step changes) count when they happened
//!   before the period's end.
//! - A case belongs to the hub that held it at the end of the period (the
//!   routed hub, or the last hub it was forwarded to). With `--hub`, only
//!   cases that were at that hub at some time are read, and only that hub's
//!   row is shown; the funnel and the per-question figures, which concern
//!   owners before any hub is chosen, are left out.
//! - A case's step is the highest of the step it was handed over at and
//!   the steps staff moved it to.
//! - Companies are counted once per owner (distinct owner keys).

pub mod cli;
pub mod monthly;
pub mod render;

use crate::store::facts::{AuditFact, CaseFact, ReportFacts};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// When a case that became open at `hub` at `since` passes the hub's
/// claim limit: `reminders:` in `routing.yaml` (per hub, in business hours,
/// weekends and national holidays excluded), the moment its claim reminder
/// comes due ([`crate::network::reminders::case_timers`]). A case is
/// overdue from then on, and a claim before it is a "smooth" one.
pub fn claim_deadline(
    policy: &crate::routing::ReminderPolicy,
    hub: &str,
    since: DateTime<Utc>,
) -> DateTime<Utc> {
    policy
        .calendar()
        .add(since, policy.limits(hub).claim_within)
}

/// The consultation script the funnel follows.
pub const FUNNEL_SCRIPT: &str = "first_contact";

/// The funnel's stages after "started" that are read from answers: the
/// stage and the question whose answer shows the owner got through it.
/// The privacy question counts only when not answered "no".
pub const FUNNEL_NODES: [(Stage, &str); 4] = [
    (Stage::Privacy, "privacy_ok"),
    (Stage::Profile, "capital"),
    (Stage::Issues, "tried"),
    (Stage::Talent, "people_part"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Started,
    Privacy,
    Profile,
    Issues,
    Talent,
    Consent,
    Delivered,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Started,
        Stage::Privacy,
        Stage::Profile,
        Stage::Issues,
        Stage::Talent,
        Stage::Consent,
        Stage::Delivered,
    ];
    pub fn key(self) -> &'static str {
        match self {
            Stage::Started => "started",
            Stage::Privacy => "privacy_accepted",
            Stage::Profile => "profile",
            Stage::Issues => "issues",
            Stage::Talent => "talent_need",
            Stage::Consent => "consent",
            Stage::Delivered => "delivered",
        }
    }
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Stage::Started => ("相談開始", "started"),
            Stage::Privacy => ("取り扱いに同意", "privacy accepted"),
            Stage::Profile => ("会社概要", "profile"),
            Stage::Issues => ("経営課題", "issues"),
            Stage::Talent => ("人材ニーズ", "talent need"),
            Stage::Consent => ("共有に同意", "consent"),
            Stage::Delivered => ("支援機関に届いた", "delivered"),
        }
    }
}

/// The network as configured: hubs (id, name), the funnel script's
/// questions (id, label) in script order, and the claim limits.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub hubs: Vec<(String, String)>,
    /// English hub names, where `routing.yaml` gives one (`name_en`).
    pub names_en: BTreeMap<String, String>,
    pub questions: Vec<(String, String)>,
    /// `reminders:` of `routing.yaml`: the claim limits ([`claim_deadline`]).
    pub reminders: crate::routing::ReminderPolicy,
}

impl Network {
    /// The hubs of `routing.yaml` (not those only named from the national
    /// directory) and the questions of the funnel script.
    pub fn from_flow(flow: &crate::script::Flow) -> Network {
        Network {
            hubs: flow
                .routing
                .hubs
                .iter()
                .filter(|h| !h.from_directory)
                .map(|h| (h.id.to_string(), h.name.clone()))
                .collect(),
            names_en: flow
                .routing
                .hubs
                .iter()
                .filter_map(|h| Some((h.id.to_string(), h.name_en.clone()?)))
                .collect(),
            questions: flow
                .nodes
                .iter()
                .filter(|n| {
                    matches!(
                        n.kind,
                        crate::script::NodeKind::Ask(_)
                            | crate::script::NodeKind::Confirm
                            | crate::script::NodeKind::End(_)
                    )
                })
                .map(|n| {
                    let label = if n.label.is_empty() {
                        n.id.clone()
                    } else {
                        n.label.clone()
                    };
                    (n.id.clone(), label)
                })
                .collect(),
            reminders: flow.routing.reminders.clone(),
        }
    }
}

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub hub: Option<String>,
    /// When the report is made ("overdue now").
    pub now: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("--from {from} is after --to {to}: give the first day of the period, then the last")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("there is no hub `{hub}` in routing.yaml; {hint}")]
    UnknownHub { hub: String, hint: String },
}

impl Params {
    /// The period as UTC instants: from the first day's midnight to the
    /// midnight after the last day, in Japan time.
    pub fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            jst_midnight(self.from),
            jst_midnight(self.to + Duration::days(1)),
        )
    }

    pub fn check(&self, net: &Network) -> Result<(), ParamsError> {
        if self.from > self.to {
            return Err(ParamsError::Reversed {
                from: self.from,
                to: self.to,
            });
        }
        if let Some(h) = &self.hub {
            if !net.hubs.iter().any(|(id, _)| id == h) {
                return Err(ParamsError::UnknownHub {
                    hub: h.clone(),
                    hint: crate::routing::unknown_hub_hint(
                        h,
                        net.hubs.iter().map(|(id, _)| id.as_str()),
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Midnight of a day in Japan time (UTC+9, no summer time).
pub fn jst_midnight(d: NaiveDate) -> DateTime<Utc> {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset");
    jst.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("a fixed offset has one midnight")
        .with_timezone(&Utc)
}

/// The guide's KPI figures for one hub (`hub: None` for the network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiRow {
    pub hub: Option<String>,
    pub name: String,
    /// Institutions: 1 for a hub, the hubs of `routing.yaml` for the network.
    pub institutions: u64,
    pub companies: u64,
    pub job_opening: u64,
    pub matched: u64,
    pub smooth_staff: u64,
}

/// One question's drop-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRow {
    pub node: String,
    pub label: String,
    /// Sessions that answered it (at least once).
    pub answered: u64,
    /// Sessions that stopped there (not completed, this is where they are).
    pub stopped: u64,
    /// Times it was asked again in the period.
    pub reasks: u64,
}

/// Durations in hours: how many, the median and the 90th percentile
/// (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub n: u64,
    pub median_h: Option<f64>,
    pub p90_h: Option<f64>,
}

impl Spread {
    pub fn of(mut hours: Vec<f64>) -> Spread {
        hours.sort_by(|a, b| a.total_cmp(b));
        Spread {
            n: hours.len() as u64,
            median_h: nearest_rank(&hours, 0.5),
            p90_h: nearest_rank(&hours, 0.9),
        }
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with
/// at least `p` of the values at or below it.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub params: Params,
    pub kpi: Vec<KpiRow>,
    /// Sessions that reached each stage (`None` with `--hub`).
    pub funnel: Option<Vec<(Stage, u64)>>,
    /// Per question, in script order (`None` with `--hub`).
    pub questions: Option<Vec<QuestionRow>>,
    /// `(rule, routed hub, cases)`.
    pub routes: Vec<(String, String, u64)>,
    /// `(from hub, to hub, forwards)`.
    pub forwards: Vec<(String, String, u64)>,
    pub time_to_claim: Spread,
    pub time_to_forward: Spread,
    pub overdue_now: u64,
    /// Cases that reached step 3, 4 and 5.
    pub steps: [u64; 3],
    pub followups_answered: u64,
    /// Whether any follow-up was recorded at all (else the figure is a 0
    /// for want of data, and the report says so).
    pub followups_recorded: bool,
    pub hub_names: BTreeMap<String, String>,
    pub hub_names_en: BTreeMap<String, String>,
}

/// One case's history as the report needs it.
struct CaseView<'a> {
    case: &'a CaseFact,
    /// `(since, hub)`, oldest first, from the audit before the period's end.
    arrivals: Vec<(DateTime<Utc>, String)>,
    /// The hub holding the case now and since when (from the whole audit).
    now_at: (String, DateTime<Utc>),
    /// When the case last became open (its arrival at the hub holding it,
    /// or a release there after it): where its claim limit runs from.
    open_since: DateTime<Utc>,
    /// Audit entries before the period's end, in order.
    audit: Vec<&'a AuditFact>,
    reached: u8,
}

impl CaseView<'_> {
    fn hub_at(&self, t: DateTime<Utc>) -> (&str, DateTime<Utc>) {
        let mut cur = (self.arrivals[0].1.as_str(), self.arrivals[0].0);
        for (since, hub) in &self.arrivals {
            if *since <= t {
                cur = (hub.as_str(), *since);
            }
        }
        cur
    }
    fn hub_now(&self) -> (&str, DateTime<Utc>) {
        (self.now_at.0.as_str(), self.now_at.1)
    }
    fn visited(&self, hub: &str) -> bool {
        self.arrivals.iter().any(|(_, h)| h == hub)
    }
}

fn is_staff_action(a: &AuditFact) -> bool {
    matches!(a.action.as_str(), "forward" | "advance")
}

fn hours(d: Duration) -> f64 {
    d.num_seconds() as f64 / 3600.0
}

/// Computes the report. Pure: everything comes in as arguments.
pub fn compute(facts: &ReportFacts, params: &Params, net: &Network) -> Report {
    let (_, end) = params.bounds();
    let hub_filter = params.hub.as_deref();
    let mut audit_by_case: HashMap<i64, Vec<&AuditFact>> = HashMap::new();
    for a in &facts.audit {
        if let Some(c) = a.case {
            audit_by_case.entry(c).or_default().push(a);
        }
    }
    for v in audit_by_case.values_mut() {
        v.sort_by_key(|a| a.at);
    }
    let empty = Vec::new();
    let views: Vec<CaseView<'_>> = facts
        .cases
        .iter()
        .map(|c| {
            let all = audit_by_case.get(&c.id).unwrap_or(&empty);
            let now_at = all
                .iter()
                .rev()
                .filter(|a| a.action == "forward")
                .find_map(|a| Some((a.detail.get("to")?.as_str()?.to_string(), a.at)))
                .unwrap_or((c.routed_hub.clone(), c.created_at));
            let open_since = all
                .iter()
                .filter(|a| a.action == "release" && a.at >= now_at.1)
                .map(|a| a.at)
                .max()
                .unwrap_or(now_at.1);
            let audit: Vec<&AuditFact> = all.iter().copied().filter(|a| a.at < end).collect();
            let mut arrivals = vec![(c.created_at, c.routed_hub.clone())];
            let mut reached = c.routed_step;
            for a in &audit {
                match a.action.as_str() {
                    "forward" => {
                        if let Some(to) = a.detail.get("to").and_then(|v| v.as_str()) {
                            arrivals.push((a.at, to.to_string()));
                        }
                    }
                    "advance" => {
                        if let Some(to) = a.detail.get("to").and_then(|v| v.as_u64()) {
                            reached = reached.max(to.min(5) as u8);
                        }
                    }
                    _ => {}
                }
            }
            CaseView {
                case: c,
                arrivals,
                now_at,
                open_since,
                audit,
                reached,
            }
        })
        .filter(|v| hub_filter.is_none_or(|h| v.visited(h)))
        .collect();

    // KPI per hub: a case counts for the hub that held it at the end.
    let hub_names: BTreeMap<String, String> = net.hubs.iter().cloned().collect();
    let mut hub_ids: Vec<String> = net.hubs.iter().map(|(id, _)| id.clone()).collect();
    for v in &views {
        let h = v.hub_at(end).0.to_string();
        if !hub_ids.contains(&h) {
            hub_ids.push(h);
        }
    }
    let smooth = smooth_staff(&views, &net.reminders);
    let kpi_for = |hub: Option<&str>| -> KpiRow {
        let mine: Vec<&CaseView<'_>> = views
            .iter()
            .filter(|v| hub.is_none_or(|h| v.hub_at(end).0 == h))
            .collect();
        let owners = |min_step: u8| -> u64 {
            mine.iter()
                .filter(|v| v.reached >= min_step)
                .map(|v| v.case.owner.as_str())
                .collect::<BTreeSet<_>>()
                .len() as u64
        };
        let staff: BTreeSet<&str> = smooth
            .iter()
            .filter(|(h, _)| hub.is_none_or(|x| x == h.as_str()))
            .map(|(_, s)| s.as_str())
            .collect();
        KpiRow {
            hub: hub.map(str::to_string),
            name: match hub {
                Some(h) => hub_names.get(h).cloned().unwrap_or_else(|| h.to_string()),
                None => "ネットワーク全体 / network".to_string(),
            },
            institutions: match hub {
                Some(_) => 1,
                None => net.hubs.len() as u64,
            },
            companies: owners(0),
            job_opening: owners(3),
            matched: owners(4),
            smooth_staff: staff.len() as u64,
        }
    };
    let kpi = match hub_filter {
        Some(h) => vec![kpi_for(Some(h))],
        None => hub_ids
            .iter()
            .map(|h| kpi_for(Some(h)))
            .chain(std::iter::once(kpi_for(None)))
            .collect(),
    };

    let (funnel, questions) = match hub_filter {
        Some(_) => (None, None),
        None => {
            let (f, q) = funnel(facts, net, params);
            (Some(f), Some(q))
        }
    };

    // Hand-offs.
    let mut routes: BTreeMap<(String, String), u64> = BTreeMap::new();
    for v in &views {
        *routes
            .entry((v.case.rule.clone(), v.case.routed_hub.clone()))
            .or_default() += 1;
    }
    let mut forwards: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut to_forward = Vec::new();
    let mut to_claim = Vec::new();
    let (start, _) = params.bounds();
    for v in &views {
        let mut claimed_at_hub: BTreeSet<String> = BTreeSet::new();
        for a in &v.audit {
            let (hub, since) = v.hub_at(a.at);
            match a.action.as_str() {
                "forward" => {
                    let from = a.detail.get("from").and_then(|x| x.as_str()).unwrap_or("");
                    let to = a.detail.get("to").and_then(|x| x.as_str()).unwrap_or("");
                    if a.at < start {
                        continue;
                    }
                    if hub_filter.is_none_or(|h| h == from || h == to) {
                        *forwards
                            .entry((from.to_string(), to.to_string()))
                            .or_default() += 1;
                    }
                    if hub_filter.is_none_or(|h| h == from) {
                        // From the case's arrival at the hub it leaves.
                        let arrived = v
                            .arrivals
                            .iter()
                            .rev()
                            .find(|(t, h)| *t < a.at && h == from)
                            .map(|(t, _)| *t)
                            .unwrap_or(v.case.created_at);
                        to_forward.push(hours(a.at - arrived));
                    }
                }
                "claim" => {
                    // The first claim at each hub the case reached.
                    if claimed_at_hub.insert(hub.to_string()) && hub_filter.is_none_or(|h| h == hub)
                    {
                        to_claim.push(hours(a.at - since));
                    }
                }
                _ => {}
            }
        }
    }
    let overdue_now = views
        .iter()
        .filter(|v| v.case.status == "open")
        .filter(|v| {
            let (hub, _) = v.hub_now();
            hub_filter.is_none_or(|h| h == hub)
                && claim_deadline(&net.reminders, hub, v.open_since) <= params.now
        })
        .count() as u64;
    let steps = [3u8, 4, 5].map(|s| views.iter().filter(|v| v.reached >= s).count() as u64);
    let is_followup = |a: &AuditFact| a.action.contains("follow");
    let followups_recorded = views.iter().any(|v| v.audit.iter().any(|a| is_followup(a)));
    let followups_answered = views
        .iter()
        .flat_map(|v| v.audit.iter())
        .filter(|a| is_followup(a) && (a.action.contains("answer") || a.action.contains("reply")))
        .count() as u64;
    Report {
        params: params.clone(),
        kpi,
        funnel,
        questions,
        routes: routes.into_iter().map(|((r, h), n)| (r, h, n)).collect(),
        forwards: forwards.into_iter().map(|((f, t), n)| (f, t, n)).collect(),
        time_to_claim: Spread::of(to_claim),
        time_to_forward: Spread::of(to_forward),
        overdue_now,
        steps,
        followups_answered,
        followups_recorded,
        hub_names,
        hub_names_en: net.names_en.clone(),
    }
}

/// Staff who handed a case on smoothly, with the hub they did it at: they
/// claimed the case within their hub's claim limit ([`claim_deadline`]) of its arrival at their
/// hub, and afterwards they themselves forwarded it or moved it to a later
/// step.
fn smooth_staff(
    views: &[CaseView<'_>],
    policy: &crate::routing::ReminderPolicy,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for v in views {
        for (i, a) in v.audit.iter().enumerate() {
            if a.action != "claim" {
                continue;
            }
            let (hub, since) = v.hub_at(a.at);
            if a.at > claim_deadline(policy, hub, since) {
                continue;
            }
            let moved_on = v.audit[i + 1..]
                .iter()
                .any(|b| b.actor == a.actor && is_staff_action(b));
            if moved_on {
                out.insert((hub.to_string(), a.actor.clone()));
            }
        }
    }
    out
}

fn funnel(
    facts: &ReportFacts,
    net: &Network,
    params: &Params,
) -> (Vec<(Stage, u64)>, Vec<QuestionRow>) {
    let (start, end) = params.bounds();
    let sessions: Vec<_> = facts
        .sessions
        .iter()
        .filter(|s| s.script_id == FUNNEL_SCRIPT && s.created_at >= start && s.created_at < end)
        .collect();
    let ids: BTreeSet<i64> = sessions.iter().map(|s| s.id).collect();
    let mut reached: HashMap<i64, Stage> =
        sessions.iter().map(|s| (s.id, Stage::Started)).collect();
    let mut bump = |id: i64, st: Stage| {
        if let Some(r) = reached.get_mut(&id) {
            *r = (*r).max(st);
        }
    };
    let mut answered: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    for a in &facts.answers {
        if !ids.contains(&a.session) {
            continue;
        }
        answered
            .entry(a.node.as_str())
            .or_default()
            .insert(a.session);
        for (stage, node) in FUNNEL_NODES {
            if a.node == node && !(stage == Stage::Privacy && a.negative) {
                bump(a.session, stage);
            }
        }
    }
    for c in &facts.consents {
        if c.granted {
            bump(c.session, Stage::Consent);
        }
    }
    let delivered_cases: BTreeSet<i64> = facts
        .deliveries
        .iter()
        .filter(|d| d.status == "delivered")
        .map(|d| d.case)
        .collect();
    for c in &facts.cases {
        if delivered_cases.contains(&c.id) {
            bump(c.session, Stage::Delivered);
        }
    }
    let funnel = Stage::ALL
        .iter()
        .map(|st| (*st, reached.values().filter(|r| **r >= *st).count() as u64))
        .collect();
    let mut stopped: HashMap<&str, u64> = HashMap::new();
    for s in &sessions {
        if s.status != "completed" {
            *stopped.entry(s.current_node.as_str()).or_default() += 1;
        }
    }
    let mut reasks: HashMap<&str, u64> = HashMap::new();
    for r in &facts.reasks {
        if r.at >= start && r.at < end {
            *reasks.entry(r.node.as_str()).or_default() += 1;
        }
    }
    let questions = net
        .questions
        .iter()
        .map(|(node, label)| QuestionRow {
            node: node.clone(),
            label: label.clone(),
            answered: answered.get(node.as_str()).map_or(0, |s| s.len() as u64),
            stopped: stopped.get(node.as_str()).copied().unwrap_or(0),
            reasks: reasks.get(node.as_str()).copied().unwrap_or(0),
        })
        .filter(|q| q.answered + q.stopped + q.reasks > 0)
        .collect();
    (funnel, questions)
}

/// Reads the facts of the period from the store and computes the report.
pub async fn build(
    store: &dyn crate::store::Store,
    params: &Params,
    net: &Network,
) -> crate::store::Result<Report> {
    let (from, to) = params.bounds();
    let facts = store.report_facts(from, to).await?;
    Ok(compute(&facts, params, net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.5), Some(5.0));
        assert_eq!(nearest_rank(&v, 0.9), Some(9.0));
        assert_eq!(nearest_rank(&[7.0], 0.9), Some(7.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.5), Some(6.0));
        assert_eq!(nearest_rank(&v, 0.9), Some(10.0));
    }

    /// The report's claim limit is the reminders' own: the moment an
    /// open case's claim reminder comes due, per hub, in business hours.
    #[test]
    fn the_claim_deadline_is_when_the_claim_reminder_comes_due() {
        use crate::domain::calendar::jst;
        use crate::domain::ids::{CaseId, SessionId, Transport, UserKey};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        let b = crate::script::compile::load_dir(&dir).expect("the shipped dialogs load");
        let policy = &b.flows[0].routing.reminders;
        let jp = |d: u32, h: u32| {
            jst()
                .with_ymd_and_hms(2026, 11, d, h, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        // Friday 16:00; Saturday, Sunday and Monday 23rd (勤労感謝の日)
        // are not business days.
        assert_eq!(claim_deadline(policy, "hyogo-pro", jp(20, 16)), jp(24, 16));
        // kyoto-bank has a limit of its own (two business days).
        assert_eq!(claim_deadline(policy, "kyoto-bank", jp(20, 16)), jp(25, 16));
        let mut case = crate::store::CaseRecord {
            id: CaseId(1),
            session: SessionId(1),
            user: UserKey::new(Transport::Terminal, "o").unwrap(),
            version: "v".into(),
            headline: "h".into(),
            summary_plain: "s".into(),
            summary_markdown: "s".into(),
            route: crate::routing::RouteDecision {
                rule: "r".into(),
                reason: "r".into(),
                primary: crate::routing::HubRef {
                    id: "hyogo-pro".into(),
                    name: "n".into(),
                },
                copies: vec![],
                step: 3,
                passed_over: vec![],
                follow_up: None,
            },
            hub_id: "hyogo-pro".into(),
            tags: vec![],
            step: 3,
            status: crate::store::CaseStatus::Open,
            claimed_by: None,
            outcome: None,
            created_at: jp(20, 16),
            updated_at: jp(20, 16),
        };
        for hub in ["hyogo-pro", "kyoto-bank", "kumamoto-bank"] {
            case.hub_id = hub.into();
            let t = crate::network::reminders::case_timers(&case, policy);
            assert_eq!(t[0].kind, crate::network::reminders::CLAIM_REMINDER);
            assert_eq!(
                t[0].due_at,
                claim_deadline(policy, hub, jp(20, 16)),
                "{hub}"
            );
        }
    }

    #[test]
    fn the_period_is_in_japan_time() {
        let p = Params {
            from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
            hub: None,
            now: Utc::now(),
        };
        let (a, b) = p.bounds();
        assert_eq!(a.to_rfc3339(), "2026-03-31T15:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2027-03-31T15:00:00+00:00");
    }
}
