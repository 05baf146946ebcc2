//! Reminders and escalation, decided without I/O: from a case (or a
//! forward waiting for the owner's consent), the network's routing and the
//! time limits of `reminders:` in `routing.yaml`, which timers the case
//! should have, and what a timer that comes due does.
//!
//! - An open case not claimed within its hub's `claim_within` is reminded
//!   in the hub's channel, mentioning the staff role.
//! - Still unclaimed after `escalate_after` (from its arrival), it is
//!   escalated to the network desk: with the sheet only when the owner's
//!   consent names the desk, otherwise only the fact, the case id and the
//!   hub.
//! - A forward waiting for the owner's consent is reminded to the owner
//!   once after `consent_reminder_after`, and lapses after
//!   `consent_lapse_after`, with the case's hub told.
//! - A claimed case whose step has not changed for `nudge_after` nudges
//!   its claimer.
//!
//! A timer is named by what it is about, including the moment the case
//! entered its present state (`since`): a case that is forwarded, released
//! or advanced gets new timers, and a timer whose subject is no longer the
//! case's present one is moot when it comes due (it is cancelled, never
//! sent). Every timer fires once (see [`crate::store::Store::claim_due_timers`]).
//!
//! The texts are data (`data/reminder_texts.yaml`), Japanese and English.

use crate::domain::calendar::{jst, BusinessSpan, Calendar};
use crate::domain::ids::{CaseId, UserKey};
use crate::routing::{ReminderPolicy, Routing};
use crate::script::Lang;
use crate::store::{
    CaseRecord, CaseStatus, ConsentRow, ForwardRequest, ForwardStatus, NewTimer, TimerRecord,
};
use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub const CLAIM_REMINDER: &str = "claim_reminder";
pub const ESCALATION: &str = "escalation";
pub const NUDGE: &str = "nudge";
pub const CONSENT_REMINDER: &str = "consent_reminder";
pub const CONSENT_LAPSE: &str = "consent_lapse";

/// The timer kinds of a case's own state (cancelled when the case moves on).
pub const CASE_KINDS: [&str; 3] = [CLAIM_REMINDER, ESCALATION, NUDGE];
/// Every kind this module handles.
pub const KINDS: [&str; 5] = [
    CLAIM_REMINDER,
    ESCALATION,
    NUDGE,
    CONSENT_REMINDER,
    CONSENT_LAPSE,
];

const TEXTS_YAML: &str = include_str!("../../data/reminder_texts.yaml");

type Texts = BTreeMap<String, BTreeMap<String, String>>;

fn texts() -> &'static Texts {
    static T: OnceLock<Texts> = OnceLock::new();
    T.get_or_init(|| {
        serde_saphyr::from_str(TEXTS_YAML).expect("data/reminder_texts.yaml is valid (tested)")
    })
}

/// The text `key` in `lang` with `{name}` replaced by its value.
pub fn text(key: &str, lang: Lang, vars: &[(&str, &str)]) -> String {
    let l = match lang {
        Lang::Ja => "ja",
        Lang::En => "en",
    };
    let mut s = texts()
        .get(key)
        .and_then(|t| t.get(l))
        .unwrap_or_else(|| panic!("data/reminder_texts.yaml has no {key}.{l} (tested)"))
        .clone();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// A time as staff and owners read it, in Japan time.
pub fn show_time(t: DateTime<Utc>, lang: Lang) -> String {
    let l = t.with_timezone(&jst());
    match lang {
        Lang::Ja => {
            const WD: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];
            format!(
                "{}月{}日({}) {}",
                l.month(),
                l.day(),
                WD[l.weekday().num_days_from_monday() as usize],
                l.format("%H:%M")
            )
        }
        Lang::En => l.format("%a %-d %b %H:%M JST").to_string(),
    }
}

fn show_span(s: BusinessSpan, lang: Lang) -> String {
    match (lang, s) {
        (Lang::Ja, BusinessSpan::Days(n)) => format!("{n}営業日"),
        (Lang::Ja, BusinessSpan::Hours(n)) => format!("{n}営業時間"),
        (Lang::En, s) => s.to_string(),
    }
}

fn open_case_subject(id: CaseId, hub_id: &str, since: DateTime<Utc>) -> String {
    // Microseconds, as in `case_subject`.
    format!(
        "case:{}/hub:{hub_id}/since:{}",
        id.0,
        since.timestamp_micros()
    )
}

fn case_subject(case: &CaseRecord) -> String {
    // Microseconds: PostgreSQL keeps no finer time, so a case read back
    // from either store names the same subject.
    let since = case.updated_at.timestamp_micros();
    match case.status {
        CaseStatus::Open => open_case_subject(case.id, &case.hub_id, case.updated_at),
        CaseStatus::Claimed => format!(
            "case:{}/step:{}/by:{}/since:{since}",
            case.id.0,
            case.step,
            case.claimed_by.as_deref().unwrap_or("")
        ),
        CaseStatus::Closed => format!("case:{}/closed", case.id.0),
    }
}

/// The timers a case should have in its present state: an open case its
/// claim reminder and escalation (none to the desk when the case is at the
/// desk itself), a claimed case its nudge, a closed one none. Scheduling
/// them again is harmless ([`crate::store::Store::schedule_timer`]).
pub fn case_timers(case: &CaseRecord, policy: &ReminderPolicy) -> Vec<NewTimer> {
    match case.status {
        CaseStatus::Open => open_case_timers(case.id, &case.hub_id, case.updated_at, policy),
        CaseStatus::Claimed => {
            let limits = policy.limits(&case.hub_id);
            vec![timer_of(
                policy,
                case.id,
                &case.hub_id,
                case.updated_at,
                case_subject(case),
                NUDGE,
                limits.nudge_after,
            )]
        }
        CaseStatus::Closed => vec![],
    }
}

/// [`case_timers`] of an open case, from what it is made of: its id, its
/// hub and the time it became open at that hub (`updated_at` as the store
/// keeps it). A step that makes a case writes these in its own
/// transaction ([`crate::store::StepCommit::case_timers`]) without reading
/// the case back.
pub fn open_case_timers(
    id: CaseId,
    hub_id: &str,
    since: DateTime<Utc>,
    policy: &ReminderPolicy,
) -> Vec<NewTimer> {
    let limits = policy.limits(hub_id);
    let subject = open_case_subject(id, hub_id, since);
    let mut v = vec![timer_of(
        policy,
        id,
        hub_id,
        since,
        subject.clone(),
        CLAIM_REMINDER,
        limits.claim_within,
    )];
    if policy.network_desk.as_deref().is_some_and(|d| d != hub_id) {
        v.push(timer_of(
            policy,
            id,
            hub_id,
            since,
            subject,
            ESCALATION,
            limits.escalate_after,
        ));
    }
    v
}

fn timer_of(
    policy: &ReminderPolicy,
    id: CaseId,
    hub_id: &str,
    since: DateTime<Utc>,
    subject: String,
    kind: &str,
    span: BusinessSpan,
) -> NewTimer {
    NewTimer {
        kind: kind.into(),
        subject,
        case: Some(id),
        due_at: policy.calendar().add(since, span),
        payload: serde_json::json!({ "hub": hub_id, "since": since, "limit": span.to_string() }),
    }
}

/// The pending timers of a case's own kinds that its present state no
/// longer has (to cancel: the case was claimed, forwarded, advanced…).
pub fn stale_timers<'a>(planned: &[NewTimer], pending: &'a [TimerRecord]) -> Vec<&'a TimerRecord> {
    pending
        .iter()
        .filter(|t| CASE_KINDS.contains(&t.kind.as_str()))
        .filter(|t| {
            !planned
                .iter()
                .any(|p| p.kind == t.kind && p.subject == t.subject)
        })
        .collect()
}

/// The timers of a forward waiting for the owner's consent.
pub fn forward_timers(req: &ForwardRequest, policy: &ReminderPolicy) -> Vec<NewTimer> {
    if req.status != ForwardStatus::Pending {
        return vec![];
    }
    let cal = policy.calendar();
    let timer = |kind: &str, span: BusinessSpan| NewTimer {
        kind: kind.into(),
        subject: format!("forward:{}", req.id),
        case: Some(req.case),
        due_at: cal.add(req.created_at, span),
        payload: serde_json::json!({ "forward": req.id, "to_hub": req.to_hub }),
    };
    vec![
        timer(CONSENT_REMINDER, policy.consent_reminder_after),
        timer(CONSENT_LAPSE, policy.consent_lapse_after),
    ]
}

/// Whom a staff notice mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    /// The hub's staff role (or group).
    StaffRole,
    /// One staff member, as stored in `claimed_by` (`discord:42`).
    Member(String),
    Nobody,
}

/// A message a timer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// To a hub's staff, in the case's thread where it has one, else the
    /// hub's channel (or its local inbox).
    Staff {
        hub: String,
        case: CaseId,
        mention: Mention,
        text: String,
        /// The case's sheet follows the text (only when the owner's
        /// consent names this hub).
        with_sheet: bool,
    },
    /// To the owner, where they consult.
    Owner { user: UserKey, text: String },
}

/// What a due timer does.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing any more (the case moved on, the owner answered): the timer
    /// is cancelled with this reason.
    Moot(String),
    Act {
        notices: Vec<Notice>,
        /// A forward request to mark lapsed.
        lapse_forward: Option<i64>,
        /// The audit entry (action, detail); no personal data.
        audit: (&'static str, serde_json::Value),
    },
}

/// What [`decide`] reads besides the timer.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub case: &'a CaseRecord,
    /// The forward request of a consent timer.
    pub forward: Option<&'a ForwardRequest>,
    /// The owner's consent records.
    pub consents: &'a [ConsentRow],
    pub routing: &'a Routing,
    /// The language of staff notices.
    pub staff_lang: Lang,
    /// The owner's language (their consultation's).
    pub owner_lang: Lang,
}

/// Whether the owner's consent for this case names `hub`.
pub fn consent_covers(case: &CaseRecord, consents: &[ConsentRow], hub: &str) -> bool {
    consents.iter().any(|c| {
        c.granted
            && (c.case == Some(case.id) || c.session == case.session)
            && c.recipients.iter().any(|r| r.id == hub)
    })
}

/// What a due timer does, given the case as it is now.
pub fn decide(timer: &TimerRecord, f: Facts<'_>) -> Decision {
    let policy = &f.routing.reminders;
    let case = f.case;
    let lang = f.staff_lang;
    let hub_name = |id: &str, lang: Lang| {
        f.routing
            .hub(id)
            .map(|h| h.display_name(lang).to_string())
            .unwrap_or_else(|| id.to_string())
    };
    let case_s = case.id.to_string();
    let limits = policy.limits(&case.hub_id);
    let since = show_time(case.updated_at, lang);
    match timer.kind.as_str() {
        CLAIM_REMINDER | ESCALATION | NUDGE => {
            let current = case_timers(case, policy);
            if !current
                .iter()
                .any(|t| t.kind == timer.kind && t.subject == timer.subject)
            {
                return Decision::Moot(format!(
                    "case {} is {} at {} now",
                    case.id,
                    case.status.name(),
                    case.hub_id
                ));
            }
            let hub = hub_name(&case.hub_id, lang);
            let detail = serde_json::json!({ "timer": timer.id, "hub": case.hub_id });
            match timer.kind.as_str() {
                CLAIM_REMINDER => Decision::Act {
                    notices: vec![Notice::Staff {
                        hub: case.hub_id.clone(),
                        case: case.id,
                        mention: Mention::StaffRole,
                        text: text(
                            "claim_reminder",
                            lang,
                            &[
                                ("case", &case_s),
                                ("hub", &hub),
                                ("since", &since),
                                ("limit", &show_span(limits.claim_within, lang)),
                            ],
                        ),
                        with_sheet: false,
                    }],
                    lapse_forward: None,
                    audit: ("reminder_sent", detail),
                },
                ESCALATION => {
                    let Some(desk) = policy.network_desk.clone() else {
                        return Decision::Moot("the network has no desk".into());
                    };
                    let sheet = consent_covers(case, f.consents, &desk);
                    let key = if sheet {
                        "escalation_with_sheet"
                    } else {
                        "escalation_fact_only"
                    };
                    Decision::Act {
                        notices: vec![Notice::Staff {
                            hub: desk.clone(),
                            case: case.id,
                            mention: Mention::StaffRole,
                            text: text(
                                key,
                                lang,
                                &[
                                    ("case", &case_s),
                                    ("hub", &hub),
                                    ("since", &since),
                                    ("limit", &show_span(limits.escalate_after, lang)),
                                ],
                            ),
                            with_sheet: sheet,
                        }],
                        lapse_forward: None,
                        audit: (
                            "escalated",
                            serde_json::json!({ "timer": timer.id, "hub": case.hub_id, "desk": desk, "sheet": sheet }),
                        ),
                    }
                }
                _ => Decision::Act {
                    notices: vec![Notice::Staff {
                        hub: case.hub_id.clone(),
                        case: case.id,
                        mention: case
                            .claimed_by
                            .clone()
                            .map(Mention::Member)
                            .unwrap_or(Mention::StaffRole),
                        text: text(
                            "nudge",
                            lang,
                            &[
                                ("case", &case_s),
                                ("step", &case.step.to_string()),
                                ("since", &since),
                                ("limit", &show_span(limits.nudge_after, lang)),
                            ],
                        ),
                        with_sheet: false,
                    }],
                    lapse_forward: None,
                    audit: ("nudge_sent", detail),
                },
            }
        }
        CONSENT_REMINDER | CONSENT_LAPSE => {
            let Some(req) = f.forward else {
                return Decision::Moot("the forward request is gone".into());
            };
            if req.status != ForwardStatus::Pending
                || timer.subject != format!("forward:{}", req.id)
            {
                return Decision::Moot(format!("the forward request is {}", req.status.name()));
            }
            if case.status == CaseStatus::Closed {
                return Decision::Moot("the case is closed".into());
            }
            let cal = Calendar::new(policy.hours);
            if timer.kind == CONSENT_REMINDER {
                let due = cal.add(req.created_at, policy.consent_lapse_after);
                Decision::Act {
                    notices: vec![Notice::Owner {
                        user: req.user.clone(),
                        text: text(
                            "consent_reminder",
                            f.owner_lang,
                            &[
                                ("to_hub", &hub_name(&req.to_hub, f.owner_lang)),
                                ("due", &show_time(due, f.owner_lang)),
                            ],
                        ),
                    }],
                    lapse_forward: None,
                    audit: (
                        "consent_reminder_sent",
                        serde_json::json!({ "timer": timer.id, "forward": req.id, "to_hub": req.to_hub }),
                    ),
                }
            } else {
                Decision::Act {
                    notices: vec![Notice::Staff {
                        hub: case.hub_id.clone(),
                        case: case.id,
                        mention: Mention::Nobody,
                        text: text(
                            "consent_lapsed",
                            lang,
                            &[
                                ("case", &case_s),
                                ("to_hub", &hub_name(&req.to_hub, lang)),
                                ("hub", &hub_name(&case.hub_id, lang)),
                                ("since", &show_time(req.created_at, lang)),
                                ("limit", &show_span(policy.consent_lapse_after, lang)),
                            ],
                        ),
                        with_sheet: false,
                    }],
                    lapse_forward: Some(req.id),
                    audit: (
                        "forward_lapsed",
                        serde_json::json!({ "timer": timer.id, "forward": req.id, "to_hub": req.to_hub }),
                    ),
                }
            }
        }
        other => Decision::Moot(format!("timer kind `{other}` is not a reminder")),
    }
}

/// One thing overdue now (see [`crate::network::worker::due_now`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Overdue {
    pub kind: String,
    pub case: CaseId,
    pub hub: String,
    pub due_at: DateTime<Utc>,
    /// Whether a running bot has sent it already.
    pub sent: bool,
}

/// `madoguchi cases due`: one line per overdue item, Japanese then
/// English labels (the terminal is read by administrators of either).
pub fn due_table(due: &[Overdue], routing: &Routing) -> String {
    if due.is_empty() {
        return format!(
            "{} / {}\n",
            text("due_none", Lang::Ja, &[]),
            text("due_none", Lang::En, &[])
        );
    }
    let mut out = String::new();
    for d in due {
        let kind = format!("kind_{}", d.kind);
        let sent = if d.sent { "due_sent" } else { "due_waiting" };
        let hub = routing
            .hub(&d.hub)
            .map(|h| h.display_name(Lang::Ja).to_string())
            .unwrap_or_else(|| d.hub.clone());
        out.push_str(&format!(
            "{}  {}  {} / {}  {} ({})  {} / {}\n",
            d.case,
            show_time(d.due_at, Lang::Ja),
            text(&kind, Lang::Ja, &[]),
            text(&kind, Lang::En, &[]),
            crate::escape::terminal_line(&hub),
            d.hub,
            text(sent, Lang::Ja, &[]),
            text(sent, Lang::En, &[]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{SessionId, Transport};
    use crate::routing::{HubRef, RouteDecision};
    use chrono::TimeZone;

    fn jp(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        jst()
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn routing() -> Routing {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        let b = crate::script::compile::load_dir(&dir).expect("the shipped dialogs load");
        b.flows[0].routing.clone()
    }

    fn case(status: CaseStatus, hub: &str, at: DateTime<Utc>) -> CaseRecord {
        let hubref = |id: &str| HubRef {
            id: id.into(),
            name: id.into(),
        };
        CaseRecord {
            id: CaseId(12),
            session: SessionId(3),
            user: UserKey::new(Transport::Discord, "77").unwrap(),
            version: "v".into(),
            headline: "h".into(),
            summary_plain: "s".into(),
            summary_markdown: "s".into(),
            route: RouteDecision {
                rule: "r".into(),
                reason: "why".into(),
                primary: hubref(hub),
                copies: vec![],
                step: 3,
                passed_over: vec![],
                follow_up: None,
            },
            hub_id: hub.into(),
            tags: vec![],
            step: 3,
            status,
            claimed_by: (status == CaseStatus::Claimed).then(|| "discord:42".into()),
            outcome: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn record(t: &NewTimer) -> TimerRecord {
        TimerRecord {
            id: 1,
            kind: t.kind.clone(),
            subject: t.subject.clone(),
            case: t.case,
            due_at: t.due_at,
            payload: t.payload.clone(),
            status: crate::store::TimerStatus::Claimed,
            holder: None,
            lease_until: None,
            attempts: 1,
            note: None,
            created_at: t.due_at,
            done_at: None,
        }
    }

    fn facts<'a>(r: &'a Routing, c: &'a CaseRecord, consents: &'a [ConsentRow]) -> Facts<'a> {
        Facts {
            case: c,
            forward: None,
            consents,
            routing: r,
            staff_lang: Lang::Ja,
            owner_lang: Lang::Ja,
        }
    }

    #[test]
    fn every_text_is_in_both_languages_and_fills_its_names() {
        for (key, langs) in texts() {
            for l in ["ja", "en"] {
                let t = langs.get(l).unwrap_or_else(|| panic!("{key}.{l}"));
                assert!(!t.trim().is_empty(), "{key}.{l}");
            }
        }
        let names = ["case", "hub", "since", "due", "limit", "step", "to_hub"];
        for key in texts().keys() {
            for lang in [Lang::Ja, Lang::En] {
                let vars: Vec<(&str, &str)> = names.iter().map(|n| (*n, "X")).collect();
                let t = text(key, lang, &vars);
                assert!(!t.contains('{') && !t.contains('}'), "{key}: {t}");
            }
        }
    }

    #[test]
    fn an_open_case_gets_a_reminder_and_an_escalation_in_business_time() {
        let r = routing();
        // Friday 2026-11-20 16:00; Monday 23rd is 勤労感謝の日.
        let c = case(CaseStatus::Open, "hyogo-pro", jp(2026, 11, 20, 16));
        let t = case_timers(&c, &r.reminders);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].kind, CLAIM_REMINDER);
        // 1 business day: 1 hour on Friday, 7 on Tuesday the 24th.
        assert_eq!(t[0].due_at, jp(2026, 11, 24, 16));
        assert_eq!(t[1].kind, ESCALATION);
        assert_eq!(t[1].due_at, jp(2026, 11, 25, 16));
        // A hub with its own limits (kyoto-bank: 2 and 3 business days).
        let k = case(CaseStatus::Open, "kyoto-bank", jp(2026, 11, 20, 16));
        let t = case_timers(&k, &r.reminders);
        assert_eq!(t[0].due_at, jp(2026, 11, 25, 16));
        assert_eq!(t[1].due_at, jp(2026, 11, 26, 16));
        // At the desk itself, nothing to escalate to.
        let d = case(CaseStatus::Open, "network-desk", jp(2026, 11, 20, 16));
        assert_eq!(case_timers(&d, &r.reminders).len(), 1);
    }

    #[test]
    fn a_claimed_case_drops_its_reminders_and_gets_a_nudge() {
        let r = routing();
        let open = case(CaseStatus::Open, "hyogo-pro", jp(2026, 11, 20, 16));
        let planned_open = case_timers(&open, &r.reminders);
        let pending: Vec<TimerRecord> = planned_open.iter().map(record).collect();
        let claimed = CaseRecord {
            status: CaseStatus::Claimed,
            claimed_by: Some("discord:42".into()),
            updated_at: jp(2026, 11, 24, 10),
            ..open.clone()
        };
        let planned = case_timers(&claimed, &r.reminders);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].kind, NUDGE);
        assert_eq!(stale_timers(&planned, &pending).len(), 2);
        // A reminder that comes due after the claim is moot.
        let d = decide(&pending[0], facts(&r, &claimed, &[]));
        assert!(matches!(d, Decision::Moot(_)), "{d:?}");
        // The nudge mentions the claimer.
        let d = decide(&record(&planned[0]), facts(&r, &claimed, &[]));
        let Decision::Act { notices, .. } = d else {
            panic!("{d:?}")
        };
        assert!(
            matches!(&notices[0], Notice::Staff { mention: Mention::Member(m), .. } if m == "discord:42")
        );
    }

    #[test]
    fn escalation_carries_the_sheet_only_with_consent_for_the_desk() {
        let r = routing();
        let c = case(CaseStatus::Open, "hyogo-pro", jp(2026, 11, 20, 16));
        let esc = record(&case_timers(&c, &r.reminders)[1]);
        let consent = |hubs: &[&str]| ConsentRow {
            id: 1,
            session: c.session,
            case: Some(c.id),
            user: c.user.clone(),
            granted: true,
            recipients: hubs
                .iter()
                .map(|h| HubRef {
                    id: h.to_string(),
                    name: h.to_string(),
                })
                .collect(),
            items: vec![],
            wording: "w".into(),
            at: c.created_at,
        };
        let only_hub = [consent(&["hyogo-pro"])];
        let Decision::Act { notices, .. } = decide(&esc, facts(&r, &c, &only_hub)) else {
            panic!()
        };
        let Notice::Staff {
            hub,
            with_sheet,
            text,
            ..
        } = &notices[0]
        else {
            panic!()
        };
        assert_eq!(hub, "network-desk");
        assert!(!with_sheet);
        assert!(
            text.contains("共有しません") && text.contains("C-000012"),
            "{text}"
        );
        let with_desk = [consent(&["hyogo-pro", "network-desk"])];
        let Decision::Act { notices, audit, .. } = decide(&esc, facts(&r, &c, &with_desk)) else {
            panic!()
        };
        assert!(matches!(
            &notices[0],
            Notice::Staff {
                with_sheet: true,
                ..
            }
        ));
        assert_eq!(audit.1["sheet"], true);
        // A refused consent does not count.
        let refused = [ConsentRow {
            granted: false,
            ..consent(&["network-desk"])
        }];
        assert!(!consent_covers(&c, &refused, "network-desk"));
    }

    #[test]
    fn a_forward_is_reminded_to_the_owner_then_lapses() {
        let r = routing();
        let c = case(CaseStatus::Claimed, "hyogo-pro", jp(2026, 11, 20, 16));
        let req = ForwardRequest {
            id: 5,
            case: c.id,
            user: c.user.clone(),
            to_hub: "hyogo-yorozu".into(),
            reason: "r".into(),
            requested_by: "discord:42".into(),
            status: ForwardStatus::Pending,
            created_at: jp(2026, 11, 20, 16),
            decided_at: None,
        };
        let t = forward_timers(&req, &r.reminders);
        assert_eq!(t[0].due_at, jp(2026, 11, 25, 16));
        // 5 business days: Monday the 23rd is 勤労感謝の日.
        assert_eq!(t[1].due_at, jp(2026, 11, 30, 16));
        let f = Facts {
            forward: Some(&req),
            ..facts(&r, &c, &[])
        };
        let Decision::Act {
            notices,
            lapse_forward,
            ..
        } = decide(&record(&t[0]), f)
        else {
            panic!()
        };
        assert!(
            matches!(&notices[0], Notice::Owner { text, .. } if text.contains("11月30日(月) 16:00"))
        );
        assert_eq!(lapse_forward, None);
        let Decision::Act {
            notices,
            lapse_forward,
            ..
        } = decide(&record(&t[1]), f)
        else {
            panic!()
        };
        assert_eq!(lapse_forward, Some(5));
        assert!(matches!(&notices[0], Notice::Staff { hub, .. } if hub == "hyogo-pro"));
        // Once the owner answered, both are moot.
        let answered = ForwardRequest {
            status: ForwardStatus::Accepted,
            ..req.clone()
        };
        let f = Facts {
            forward: Some(&answered),
            ..f
        };
        assert!(matches!(decide(&record(&t[1]), f), Decision::Moot(_)));
        assert!(forward_timers(&answered, &r.reminders).is_empty());
    }
}
