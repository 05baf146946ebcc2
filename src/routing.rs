//! Routing: which support hub receives a case, and why.
//!
//! Hubs and rules come from `dialogs/routing.yaml`. Rules are tried in file
//! order; the first whose condition holds *and* whose hubs can be resolved
//! for the owner's prefecture wins, otherwise the explicit fallback applies.
//! The decision records the winning rule and why each earlier rule did not
//! apply, so staff can see why a case reached them.
//!
//! A hub covers whole prefectures, or named municipalities (`areas:` in the
//! routing file, e.g. 京都府北部5市2町); a hub for the owner's municipality
//! wins over one for the prefecture. Behind the network's own hubs stands
//! the national directory (`data/directory.tsv`): the よろず支援拠点 of every
//! prefecture and the プロフェッショナル人材戦略拠点 of all but Tokyo and
//! Okinawa, by name only. A case whose hub comes from the directory has no
//! chat target, so it reaches the fallback hub (the network desk), and the
//! decision's reason names the hub it belongs to.

pub mod areas;

use crate::answer::AnswerValue;
use crate::domain::calendar::{BusinessHours, BusinessSpan, Calendar};
use crate::domain::ids::HubId;
use crate::domain::municipality::Place;
use crate::domain::prefecture::Prefecture;
use crate::script::cond::{Cond, Facts};
use crate::script::{Lang, NodeIx};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubKind {
    /// プロフェッショナル人材戦略拠点
    ProTalent,
    /// よろず支援拠点
    Yorozu,
    /// 商工会・商工会議所
    Chamber,
    /// 地域金融機関
    Bank,
    /// 外郭団体 (public business-support agency)
    PublicAgency,
    /// 税理士・中小企業診断士
    Consultant,
    /// NPO・まちづくり会社
    Npo,
    /// 人材紹介会社
    Recruiter,
}

impl HubKind {
    pub const ALL: [HubKind; 8] = [
        HubKind::ProTalent,
        HubKind::Yorozu,
        HubKind::Chamber,
        HubKind::Bank,
        HubKind::PublicAgency,
        HubKind::Consultant,
        HubKind::Npo,
        HubKind::Recruiter,
    ];
    pub fn name(self) -> &'static str {
        match self {
            HubKind::ProTalent => "pro_talent",
            HubKind::Yorozu => "yorozu",
            HubKind::Chamber => "chamber",
            HubKind::Bank => "bank",
            HubKind::PublicAgency => "public_agency",
            HubKind::Consultant => "consultant",
            HubKind::Npo => "npo",
            HubKind::Recruiter => "recruiter",
        }
    }
    pub fn parse(s: &str) -> Option<HubKind> {
        HubKind::ALL.into_iter().find(|k| k.name() == s)
    }
    pub fn name_ja(self) -> &'static str {
        match self {
            HubKind::ProTalent => "プロフェッショナル人材戦略拠点",
            HubKind::Yorozu => "よろず支援拠点",
            HubKind::Chamber => "商工会・商工会議所",
            HubKind::Bank => "地域金融機関",
            HubKind::PublicAgency => "外郭団体",
            HubKind::Consultant => "税理士・中小企業診断士",
            HubKind::Npo => "NPO・まちづくり会社",
            HubKind::Recruiter => "人材紹介会社",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscordTarget {
    pub channel: u64,
    pub staff_role: Option<u64>,
}

/// A hub's Slack channel and who its staff are (`targets.slack`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackTarget {
    /// A channel id (`C…`, or `G…` for an old private channel).
    pub channel: SlackId,
    pub staff: SlackStaff,
}

/// Who may act on a Slack hub's cases: the members of a user group, or
/// the listed members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackStaff {
    /// A user group id (`S…`), resolved by the Slack adapter.
    Group(SlackId),
    /// Member ids (`U…` / `W…`).
    Members(Vec<SlackId>),
}

/// A Slack object id as Slack writes it: an uppercase letter then
/// uppercase letters and digits (`C0123ABCD`, `U012AB3CD`, `S0123ABCD`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlackId(String);

impl SlackId {
    /// Parses an id whose first letter is one of `kinds` (Slack's prefix
    /// says what the id names).
    pub fn parse(s: &str, kinds: &[char]) -> Option<SlackId> {
        let s = s.trim();
        let mut cs = s.chars();
        let first = cs.next()?;
        (kinds.contains(&first)
            && (8..=20).contains(&s.len())
            && cs.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        .then(|| SlackId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SlackId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to say after "there is no hub `given`": the closest of the
/// network's own hubs (`own`, without the national directory's ids, which
/// nobody acts for and which would bury the answer under a hundred names)
/// and the list of them. Ids are compared ignoring case, so `HYOGO-PRO`
/// suggests `hyogo-pro`.
pub fn unknown_hub_hint<'a>(given: &str, own: impl IntoIterator<Item = &'a str>) -> String {
    let own: Vec<&str> = own.into_iter().collect();
    let dym = crate::script::diag::closest(&given.to_ascii_lowercase(), own.iter().copied())
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    format!("{dym}the network's hubs are: {}", own.join(", "))
}

#[derive(Debug, Clone)]
pub struct Hub {
    pub id: HubId,
    pub name: String,
    pub name_en: Option<String>,
    pub kind: HubKind,
    pub prefectures: Vec<Prefecture>,
    /// JIS X 0402 codes of the municipalities the hub covers beyond (or
    /// instead of) whole prefectures.
    pub municipalities: Vec<u32>,
    /// Taken from the national directory: a name without chat targets.
    pub from_directory: bool,
    pub terminal: Option<String>,
    pub discord: Option<DiscordTarget>,
    pub slack: Option<SlackTarget>,
}

impl Hub {
    pub fn display_name(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => self.name_en.as_deref().unwrap_or(&self.name),
            Lang::Ja => &self.name,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Pick {
    Hub(usize),
    Kind(HubKind),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    /// Where the rule is defined in the routing file.
    pub loc: crate::script::Loc,
    pub description: String,
    pub description_en: Option<String>,
    pub when: Option<Cond>,
    pub step: u8,
    pub primary: Pick,
    pub copies: Vec<Pick>,
}

#[derive(Debug, Clone)]
pub struct Routing {
    pub network: String,
    pub prefecture_node: Option<NodeIx>,
    pub hubs: Vec<Hub>,
    pub rules: Vec<Rule>,
    pub fallback: Rule,
    /// Step 5 (follow-up after a match), when the network offers it.
    pub follow_up: Option<FollowUpPolicy>,
    /// Time limits for reminders and escalation (`reminders:`).
    pub reminders: ReminderPolicy,
}

/// The time limits of one hub, in business time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// A case not claimed by then is reminded in the hub's channel.
    pub claim_within: BusinessSpan,
    /// A case still not claimed by then (from its arrival) is escalated
    /// to the network desk.
    pub escalate_after: BusinessSpan,
    /// A claimed case whose step has not changed for this long nudges its
    /// claimer.
    pub nudge_after: BusinessSpan,
}

/// `reminders:` of the routing file, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderPolicy {
    pub hours: BusinessHours,
    pub limits: HubLimits,
    pub per_hub: std::collections::BTreeMap<String, HubLimits>,
    /// A forward waiting for the owner's consent is reminded to the owner
    /// once after this…
    pub consent_reminder_after: BusinessSpan,
    /// …and lapses after this (from the request), with staff told.
    pub consent_lapse_after: BusinessSpan,
    /// The hub escalations go to (`None`: the network has no hub of its
    /// own to take them, and escalation is left out).
    pub network_desk: Option<String>,
}

impl Default for ReminderPolicy {
    fn default() -> Self {
        ReminderPolicy {
            hours: BusinessHours::default(),
            limits: HubLimits {
                claim_within: BusinessSpan::Days(1),
                escalate_after: BusinessSpan::Days(2),
                nudge_after: BusinessSpan::Days(10),
            },
            per_hub: Default::default(),
            consent_reminder_after: BusinessSpan::Days(2),
            consent_lapse_after: BusinessSpan::Days(5),
            network_desk: None,
        }
    }
}

impl ReminderPolicy {
    pub fn limits(&self, hub: &str) -> HubLimits {
        self.per_hub.get(hub).copied().unwrap_or(self.limits)
    }
    pub fn calendar(&self) -> Calendar {
        Calendar::new(self.hours)
    }
}

/// The network's follow-up after a match (the guide's step 5, 定着支援):
/// when the owner is asked, and which hub receives the answers.
#[derive(Debug, Clone)]
pub struct FollowUpPolicy {
    /// Months after the case was closed as matched, ascending.
    pub after_months: Vec<u32>,
    /// Days an offer may wait before its one reminder.
    pub remind_after_days: u32,
    /// Days after the offer when an unanswered follow-up is recorded as
    /// such and never offered again.
    pub unanswered_after_days: u32,
    /// Tried in order; the first that applies names the step-5 hub. When
    /// none does, the case's primary hub is the one (it knows the company).
    pub rules: Vec<Rule>,
}

/// The support step a follow-up belongs to.
pub const FOLLOW_UP_STEP: u8 = 5;

/// A hub named in a decision, as stored with the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubRef {
    pub id: String,
    pub name: String,
}

/// Why a case went where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub rule: String,
    pub reason: String,
    pub primary: HubRef,
    pub copies: Vec<HubRef>,
    /// The support step the case has reached when it is handed over.
    pub step: u8,
    /// For each earlier rule: its id and why it did not apply.
    pub passed_over: Vec<(String, String)>,
    /// The hub that receives the owner's follow-up answers after a match
    /// (step 5), when the network offers follow-ups. The consent screen
    /// names it, so the owner knows before agreeing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<HubRef>,
}

impl RouteDecision {
    /// Every hub that receives the case, primary first.
    pub fn recipients(&self) -> impl Iterator<Item = &HubRef> {
        std::iter::once(&self.primary).chain(self.copies.iter())
    }
    pub fn same_recipients(&self, other: &RouteDecision) -> bool {
        self.recipients()
            .map(|h| &h.id)
            .eq(other.recipients().map(|h| &h.id))
    }
}

impl Routing {
    pub fn hub(&self, id: &str) -> Option<&Hub> {
        self.hubs.iter().find(|h| h.id.as_str() == id)
    }

    fn owner_place(&self, f: &dyn Facts) -> Option<Place> {
        match self.prefecture_node.and_then(|n| f.answer(n)) {
            Some(AnswerValue::Prefecture(p)) => Some(*p),
            _ => None,
        }
    }

    fn resolve(&self, pick: &Pick, place: Option<Place>) -> Result<usize, String> {
        match pick {
            Pick::Hub(i) => Ok(*i),
            Pick::Kind(kind) => {
                let Some(place) = place else {
                    return Err(format!(
                        "no prefecture answered, so no {} hub can be chosen",
                        kind.name()
                    ));
                };
                let p = place.prefecture();
                // A hub for the owner's municipality first, then one for the
                // whole prefecture (the directory's hubs are among these).
                let by_area = place.municipality().and_then(|m| {
                    self.hubs
                        .iter()
                        .position(|h| h.kind == *kind && h.municipalities.contains(&m.code()))
                });
                by_area
                    .or_else(|| {
                        self.hubs
                            .iter()
                            .position(|h| h.kind == *kind && h.prefectures.contains(&p))
                    })
                    .ok_or_else(|| format!("no {} hub covers {}", kind.name(), place.name_ja()))
            }
        }
    }

    fn hub_ref(&self, i: usize, lang: Lang) -> HubRef {
        let h = &self.hubs[i];
        HubRef {
            id: h.id.to_string(),
            name: h.display_name(lang).to_string(),
        }
    }

    /// Tries one rule: `Ok` with the decision if it applies, `Err` with the
    /// reason if not.
    pub fn try_rule(
        &self,
        rule: &Rule,
        f: &dyn Facts,
        lang: Lang,
    ) -> Result<RouteDecision, String> {
        if let Some(when) = &rule.when {
            if !when.eval(f) {
                return Err(format!("condition not met: {}", when.describe()));
            }
        }
        let pref = self.owner_place(f);
        let primary = self.resolve(&rule.primary, pref)?;
        let mut copies = Vec::new();
        for c in &rule.copies {
            // A copy that cannot be resolved (no such hub in this prefecture)
            // is dropped rather than failing the whole rule: the primary hub
            // is what matters for the hand-off.
            if let Ok(i) = self.resolve(c, pref) {
                if i != primary && !copies.contains(&i) {
                    copies.push(i);
                }
            }
        }
        let mut reason = match lang {
            Lang::En => rule
                .description_en
                .clone()
                .unwrap_or_else(|| rule.description.clone()),
            Lang::Ja => rule.description.clone(),
        };
        // Hubs of the national directory have no chat target: the case goes
        // to the fallback hub (the network desk), told which hub it belongs
        // to, and copies to such hubs are named for the desk to pass on.
        let mut primary = primary;
        if self.hubs[primary].from_directory {
            let desk = match &self.fallback.primary {
                Pick::Hub(i) => *i,
                Pick::Kind(_) => return Err("the fallback names no hub".into()),
            };
            let belongs = self.hubs[primary].display_name(lang).to_string();
            reason.push_str(&match lang {
                Lang::Ja => format!(
                    "。担当は「{belongs}」ですが、このネットワークに窓口がないため、{}が取り次ぎます",
                    self.hubs[desk].display_name(lang)
                ),
                Lang::En => format!(
                    ". The responsible hub is {belongs}; it has no desk in this network, so {} passes the case on",
                    self.hubs[desk].display_name(lang)
                ),
            });
            primary = desk;
        }
        let mut unreachable = Vec::new();
        copies.retain(|&i| {
            if self.hubs[i].from_directory {
                unreachable.push(self.hubs[i].display_name(lang).to_string());
                false
            } else {
                i != primary
            }
        });
        if !unreachable.is_empty() {
            reason.push_str(&match lang {
                Lang::Ja => format!("（写しの送付先：{}。窓口がないため事務局から連絡します）", unreachable.join("、")),
                Lang::En => format!(" (copy for {}, which has no desk in this network: the secretariat will contact it)", unreachable.join(", ")),
            });
        }
        Ok(RouteDecision {
            rule: rule.id.clone(),
            reason,
            primary: self.hub_ref(primary, lang),
            copies: copies.into_iter().map(|i| self.hub_ref(i, lang)).collect(),
            step: rule.step,
            passed_over: Vec::new(),
            follow_up: None,
        })
    }

    /// The step-5 hub for an owner: the first follow-up rule that applies,
    /// `None` when the network has no follow-ups or no rule applies (the
    /// case's primary hub then takes the answers).
    pub fn decide_follow_up(&self, f: &dyn Facts, lang: Lang) -> Option<RouteDecision> {
        let policy = self.follow_up.as_ref()?;
        let mut passed_over = Vec::new();
        for rule in &policy.rules {
            match self.try_rule(rule, f, lang) {
                Ok(mut d) => {
                    d.passed_over = passed_over;
                    return Some(d);
                }
                Err(why) => passed_over.push((rule.id.clone(), why)),
            }
        }
        None
    }

    /// Chooses the hubs for a case. Always returns a decision: the fallback
    /// rule names a fixed hub (the compiler insists on it).
    pub fn decide(&self, f: &dyn Facts, lang: Lang) -> RouteDecision {
        let mut passed_over = Vec::new();
        for rule in &self.rules {
            match self.try_rule(rule, f, lang) {
                Ok(mut d) => {
                    d.passed_over = passed_over;
                    return self.with_follow_up(d, f, lang);
                }
                Err(why) => passed_over.push((rule.id.clone(), why)),
            }
        }
        let mut d = self
            .try_rule(&self.fallback, f, lang)
            .unwrap_or_else(|why| {
                // The compiler guarantees the fallback's primary is a named hub,
                // so this only happens with a hand-built routing table.
                RouteDecision {
                    rule: "fallback".into(),
                    reason: why,
                    primary: self.hub_ref(0, lang),
                    copies: vec![],
                    step: 1,
                    passed_over: vec![],
                    follow_up: None,
                }
            });
        d.passed_over = passed_over;
        self.with_follow_up(d, f, lang)
    }

    /// Names the step-5 hub in a decision (see [`RouteDecision::follow_up`]).
    fn with_follow_up(&self, mut d: RouteDecision, f: &dyn Facts, lang: Lang) -> RouteDecision {
        if self.follow_up.is_some() {
            d.follow_up = Some(
                self.decide_follow_up(f, lang)
                    .map(|fd| fd.primary)
                    .unwrap_or_else(|| d.primary.clone()),
            );
        }
        d
    }
}

#[cfg(test)]
mod hint_tests {
    use super::unknown_hub_hint;

    #[test]
    fn an_unknown_hub_suggests_the_closest_own_hub_ignoring_case() {
        let own = ["hyogo-pro", "kyoto-pro", "network-desk"];
        assert_eq!(
            unknown_hub_hint("HYOGO-PRO", own),
            "did you mean `hyogo-pro`? the network's hubs are: hyogo-pro, kyoto-pro, network-desk"
        );
        assert_eq!(
            unknown_hub_hint("zzzzzzzzzzzz", own),
            "the network's hubs are: hyogo-pro, kyoto-pro, network-desk"
        );
    }
}
