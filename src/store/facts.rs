//! The stored facts the KPI report is computed from ([`Store::report_facts`]).
//!
//! These rows carry no owner's answers in words: an answer is reduced to
//! its question and whether it was a "no", a case to its routing, hubs,
//! step and times. The owner key is kept only to count distinct companies;
//! the report never prints it.
//!
//! [`Store::report_facts`]: super::Store::report_facts

use crate::answer::AnswerValue;
use chrono::{DateTime, Utc};

/// Everything the report reads, for sessions and cases created in one
/// period (and the audit entries and deliveries of those cases, whenever
/// they happened).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportFacts {
    pub sessions: Vec<SessionFact>,
    pub answers: Vec<AnswerFact>,
    pub reasks: Vec<ReaskFact>,
    pub consents: Vec<ConsentFact>,
    pub cases: Vec<CaseFact>,
    pub audit: Vec<AuditFact>,
    pub deliveries: Vec<DeliveryFact>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionFact {
    pub id: i64,
    pub script_id: String,
    /// The owner's platform (`terminal`, `discord`, …).
    pub platform: String,
    /// The engine's status name (`active`, `completed`, …).
    pub status: String,
    pub current_node: String,
    pub created_at: DateTime<Utc>,
}

/// One accepted answer (corrections included; withdrawals and rows carried
/// over by migration 0003 left out).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerFact {
    pub session: i64,
    pub node: String,
    /// The answer was "no" (a yes/no question answered no, or the option
    /// `no`).
    pub negative: bool,
}

impl AnswerFact {
    /// Whether a stored answer value is a "no".
    pub fn is_negative(v: &AnswerValue) -> bool {
        match v {
            AnswerValue::Bool(b) => !b,
            AnswerValue::Choice(c) => c == "no",
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReaskFact {
    pub session: i64,
    pub node: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsentFact {
    pub session: i64,
    pub case: Option<i64>,
    pub granted: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseFact {
    pub id: i64,
    pub session: i64,
    /// The owner key, only to count distinct companies (never printed).
    pub owner: String,
    /// The routing rule that chose the hub.
    pub rule: String,
    /// The hub the case was routed to.
    pub routed_hub: String,
    /// The support step the case was handed over at.
    pub routed_step: u8,
    /// The hub responsible now (after forwards).
    pub hub: String,
    pub step: u8,
    /// `open`, `claimed` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditFact {
    pub case: Option<i64>,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFact {
    pub case: i64,
    pub hub: String,
    pub transport: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Counts for `/metrics` read from the store at scrape time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsCounts {
    /// `(transport, status, count)` of deliveries that are pending or failed.
    pub deliveries: Vec<(String, String, i64)>,
    /// `(transport, kind, status, count)` of relay messages that are
    /// pending or failed (`kind`: to_owner, to_hub, erase).
    pub relays: Vec<(String, String, String, i64)>,
    /// `(transport of the owner, count)` of routed cases.
    pub cases_routed: Vec<(String, i64)>,
    /// Open (unclaimed) cases past their hub's claim limit (business hours).
    pub reminders_due: i64,
    /// Audit entries of reminders and escalations sent.
    pub reminders_sent: i64,
}
