//! The dialog script file format as administrators write it (YAML).
//!
//! These types mirror the file one to one and keep the source location of
//! every value an administrator can get wrong (`Spanned`), so that the
//! compiler in `compile.rs` can point at `file:line:col`. Nothing here is
//! trusted: `compile` turns it into the typed [`crate::script::Flow`].

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScript {
    /// Identity shared by all language variants of one consultation.
    pub script: Spanned<String>,
    pub lang: Spanned<String>,
    pub title: String,
    pub start: Spanned<String>,
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Extra words for the global commands, on top of the built-in ones.
    #[serde(default)]
    pub commands: BTreeMap<String, Vec<String>>,
    /// Overrides of the built-in system messages (help, cancelled, …).
    #[serde(default)]
    pub messages: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    pub tags: Vec<RawTag>,
    pub nodes: Vec<RawNode>,
    pub summary: Spanned<String>,
    /// One line naming the case for staff lists (template), e.g. the
    /// company name.
    pub headline: Option<Spanned<String>>,
    /// A follow-up dialog (step 5): run for the owner of a closed case,
    /// whose recipient is the case's step-5 hub, chosen when the case was
    /// routed. Such a script has no `route: true` node and its consent
    /// question names that hub.
    #[serde(default)]
    pub follow_up: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub max_retries: Option<u8>,
    pub on_give_up: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTag {
    pub tag: Spanned<String>,
    pub label: Option<String>,
    /// Answer keys whose free text the pattern is applied to.
    pub from: Vec<Spanned<String>>,
    pub pattern: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub id: Spanned<String>,
    /// A message (template) sent when the node is entered; on a question it
    /// is sent just before the question.
    pub say: Option<Spanned<String>>,
    /// The answer type; its presence makes the node a question.
    pub ask: Option<Spanned<String>>,
    pub text: Option<Spanned<String>>,
    /// Short label used in summaries and in "my answers".
    pub label: Option<String>,
    pub options: Option<Vec<RawOption>>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    pub min_choices: Option<Spanned<u32>>,
    pub max_choices: Option<Spanned<u32>>,
    pub pattern: Option<Spanned<String>>,
    pub unit: Option<Spanned<String>>,
    /// For `ask: date`: the time asked for lies ahead (when a hire should
    /// start), so a time wholly in the past is asked again.
    #[serde(default)]
    pub future: bool,
    #[serde(default)]
    pub optional: bool,
    /// Whether the owner may change the answer from the confirmation
    /// (default true).
    pub editable: Option<bool>,
    pub retry: Option<Spanned<String>>,
    pub max_retries: Option<u8>,
    pub on_give_up: Option<Spanned<String>>,
    /// What the owner agrees to share, for `ask: consent` (labels).
    pub shares: Option<Vec<String>>,
    #[serde(default)]
    pub route: bool,
    #[serde(default)]
    pub confirm: bool,
    pub end: Option<Spanned<String>>,
    pub next: Option<Spanned<String>>,
    pub branch: Option<Vec<RawBranch>>,
    pub default: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOption {
    pub id: Spanned<String>,
    pub label: Spanned<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub when: RawCond,
    pub goto: Spanned<String>,
}

/// A scalar as written in a condition (`equals: yes`, `lt: 20`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl RawScalar {
    pub fn as_text(&self) -> String {
        match self {
            RawScalar::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            RawScalar::Int(i) => i.to_string(),
            RawScalar::Float(f) => f.to_string(),
            RawScalar::Str(s) => s.clone(),
        }
    }
    pub fn as_number(&self) -> Option<f64> {
        match self {
            RawScalar::Int(i) => Some(*i as f64),
            RawScalar::Float(f) => Some(*f),
            RawScalar::Str(s) => s.trim().parse().ok(),
            RawScalar::Bool(_) => None,
        }
    }
}

/// One condition. Exactly one subject (`answer`, `tag`, `all`, `any`, `not`)
/// is allowed; the compiler reports anything else with its location.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCond {
    pub answer: Option<Spanned<String>>,
    pub equals: Option<Spanned<RawScalar>>,
    #[serde(rename = "in")]
    pub in_: Option<Vec<Spanned<RawScalar>>>,
    pub includes: Option<Spanned<RawScalar>>,
    pub lt: Option<Spanned<f64>>,
    pub le: Option<Spanned<f64>>,
    pub gt: Option<Spanned<f64>>,
    pub ge: Option<Spanned<f64>>,
    pub answered: Option<bool>,
    pub region: Option<Spanned<String>>,
    /// An area of the routing file (`areas:`) or a municipality (七尾市).
    pub area: Option<Spanned<String>>,
    pub tag: Option<Spanned<String>>,
    /// 中小企業基本法's 小規模企業者, judged from the `industry`, `employees`
    /// and `capital` answers.
    pub small_business: Option<Spanned<bool>>,
    /// 中小企業基本法's 中小企業者, judged from the same answers.
    pub sme: Option<Spanned<bool>>,
    pub all: Option<Vec<RawCond>>,
    pub any: Option<Vec<RawCond>>,
    pub not: Option<Box<RawCond>>,
}

/// The routing file (`dialogs/routing.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub network: String,
    /// Which answer holds the owner's prefecture (default `prefecture`).
    pub prefecture_answer: Option<Spanned<String>>,
    /// Named groups of municipalities (京都府北部: 福知山市, 舞鶴市, …).
    #[serde(default)]
    pub areas: Vec<RawArea>,
    pub hubs: Vec<RawHub>,
    pub rules: Vec<RawRule>,
    pub fallback: RawFallback,
    /// Step 5: when a matched case's owner is asked how things are going,
    /// and which hub receives the answers.
    pub follow_up: Option<RawFollowUp>,
    /// Time limits for reminders and escalation (all optional).
    #[serde(default)]
    pub reminders: RawReminders,
}

/// The `follow_up:` section of the routing file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFollowUp {
    /// Months after a case is closed as matched or hired at which the
    /// owner is offered a follow-up (e.g. `[1, 6]`).
    pub after_months: Spanned<Vec<u32>>,
    /// Days after an offer without an answer before the one reminder.
    pub remind_after_days: Option<Spanned<u32>>,
    /// Days after an offer without an answer when it is recorded as
    /// unanswered (never offered again).
    pub unanswered_after_days: Option<Spanned<u32>>,
    /// Rules choosing the step-5 hub (tried in order, like `rules:`); when
    /// none applies, the case's primary hub receives the answers.
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// `reminders:` in the routing file: time limits in business time
/// (`1 business day`, `4 business hours`, `2営業日`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReminders {
    /// Opening hours in Japan time, `9:00-17:00` by default.
    pub business_hours: Option<Spanned<String>>,
    /// The hub that receives escalations (default: the fallback's hub).
    pub network_desk: Option<Spanned<String>>,
    pub claim_within: Option<Spanned<String>>,
    pub escalate_after: Option<Spanned<String>>,
    pub nudge_after: Option<Spanned<String>>,
    pub consent_reminder_after: Option<Spanned<String>>,
    pub consent_lapse_after: Option<Spanned<String>>,
    /// Limits of single hubs, over the ones above.
    #[serde(default)]
    pub hubs: Vec<RawHubReminders>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHubReminders {
    pub hub: Spanned<String>,
    pub claim_within: Option<Spanned<String>>,
    pub escalate_after: Option<Spanned<String>>,
    pub nudge_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    pub id: Spanned<String>,
    pub name: String,
    pub name_en: Option<String>,
    pub kind: Spanned<String>,
    #[serde(default)]
    pub prefectures: Vec<Spanned<String>>,
    /// Areas (by name) or municipalities the hub covers.
    #[serde(default)]
    pub areas: Vec<Spanned<String>>,
    #[serde(default)]
    pub targets: RawTargets,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArea {
    pub name: Spanned<String>,
    pub municipalities: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargets {
    /// Name of the local inbox the terminal transport delivers to.
    pub terminal: Option<String>,
    pub discord: Option<RawDiscordTarget>,
    pub slack: Option<RawSlackTarget>,
}

/// `slack: { channel: C…, staff: S… }` or `staff: [U…, U…]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlackTarget {
    pub channel: Spanned<String>,
    pub staff: RawSlackStaff,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSlackStaff {
    Group(Spanned<String>),
    Members(Vec<Spanned<String>>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscordTarget {
    pub channel: Spanned<String>,
    pub staff_role: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub description: String,
    pub description_en: Option<String>,
    pub when: RawCond,
    /// The support step (0-5) a case routed by this rule has reached;
    /// read as any integer so that one out of range is reported at its
    /// place with the range, not as a type error.
    pub step: Option<Spanned<i64>>,
    pub primary: RawHubPick,
    #[serde(default)]
    pub copies: Vec<RawHubPick>,
}

/// Either a named hub or "the hub of this kind that covers the owner's
/// prefecture".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHubPick {
    pub hub: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub description: String,
    pub description_en: Option<String>,
    pub step: Option<Spanned<i64>>,
    pub primary: RawHubPick,
    #[serde(default)]
    pub copies: Vec<RawHubPick>,
}
