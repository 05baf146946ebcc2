//! The desk: case handling without I/O, the staff side's counterpart of
//! the [`crate::engine`].
//!
//! `decide(network, actor, case, action, now) -> Decision`: a staff member
//! (a platform-neutral identity `platform:user` and the roles or user
//! groups the adapter resolved) acts on a case (with its consent records
//! and posts), and the desk answers with a refusal (a text key) or the
//! effects as data: the store changes, the audit entries, the notes for
//! the case's discussion, the messages for the owner, whom to notify, and a
//! forward that must ask the owner first. Adapters (Discord, Slack, the
//! terminal) parse their input into an [`Action`], run the changes through
//! [`crate::casework`] against the store, and render the texts with
//! [`texts::DeskTexts`] for their medium.
//!
//! Who may act for which hub is decided here, from the hub's configured
//! staff ([`StaffSpec`]: a Discord role, a Slack user group, a list of
//! members) and the actor's identity. Nothing here imports tokio, sqlx,
//! serenity or a Slack type, and time arrives as an argument.

pub mod post;
pub mod texts;

use crate::engine::ConsentRecord;
use crate::routing::HubRef;
use crate::store::{
    CaseChange, CasePost, CaseRecord, CaseStatus, ConsentRow, ForwardRequest, ForwardStatus,
    NewDelivery, NewForwardRequest,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
pub use texts::{Arg, DeskTexts, Medium, Text};

/// The last step of the support process (STEP 1 … STEP 5).
pub const LAST_STEP: u8 = 5;

/// A platform-neutral identity, `platform:user` (`discord:1234`,
/// `slack:U0123`, `cli:tanaka`), parsed at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StaffId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffIdError {
    #[error("`{0}` is not a staff identity: write it as platform:user, e.g. cli:tanaka or discord:123456")]
    Invalid(String),
}

impl StaffId {
    /// `platform` is lowercase ASCII letters; `user` is non-empty without
    /// spaces or control characters.
    pub fn parse(s: &str) -> Result<StaffId, StaffIdError> {
        let bad = || StaffIdError::Invalid(s.to_string());
        let (p, u) = s.split_once(':').ok_or_else(bad)?;
        if p.is_empty()
            || !p.chars().all(|c| c.is_ascii_lowercase())
            || u.is_empty()
            || u.chars().any(|c| c.is_whitespace() || c.is_control())
            || u.chars().count() > 100
        {
            return Err(bad());
        }
        Ok(StaffId(s.to_string()))
    }
    /// For adapters that hold a platform's own id type.
    pub fn new(platform: &str, user: &str) -> Result<StaffId, StaffIdError> {
        StaffId::parse(&format!("{platform}:{user}"))
    }
    pub fn platform(&self) -> &str {
        self.0.split_once(':').map(|x| x.0).unwrap_or_default()
    }
    pub fn user(&self) -> &str {
        self.0.split_once(':').map(|x| x.1).unwrap_or_default()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StaffId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acts: the identity and the groups (Discord role ids, Slack user
/// group ids) the adapter resolved for them on their platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: StaffId,
    pub groups: Vec<String>,
}

/// Who counts as a hub's staff on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StaffSpec {
    /// Members of a group: a Discord role, a Slack user group.
    Group { platform: String, id: String },
    /// Named members (`user` parts of their identities).
    Members {
        platform: String,
        users: Vec<String>,
    },
}

impl StaffSpec {
    pub fn platform(&self) -> &str {
        match self {
            StaffSpec::Group { platform, .. } | StaffSpec::Members { platform, .. } => platform,
        }
    }
    /// Whether the actor is staff by this spec.
    pub fn admits(&self, a: &Actor) -> bool {
        if a.id.platform() != self.platform() {
            return false;
        }
        match self {
            StaffSpec::Group { id, .. } => a.groups.iter().any(|g| g == id),
            StaffSpec::Members { users, .. } => users.iter().any(|u| u == a.id.user()),
        }
    }
}

/// What the desk knows of a hub: its name, its staff, and where a case
/// forwarded to it can be delivered (one target per transport: `local`,
/// `discord`, …; none for a hub taken from the national directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubInfo {
    pub id: String,
    pub name: String,
    pub staff: Vec<StaffSpec>,
    pub targets: Vec<NewDelivery>,
    /// Named by the national directory only: no one in the network staffs
    /// it, so cases for it go through the network's fallback hub.
    pub from_directory: bool,
}

impl HubInfo {
    /// From a routing hub: the Discord channel and staff role today; other
    /// platforms' targets add their spec and delivery here.
    pub fn from_routing(h: &crate::routing::Hub) -> HubInfo {
        let mut staff = Vec::new();
        let mut targets = Vec::new();
        // The local inbox folder, named as the runner names it.
        targets.push(NewDelivery {
            hub_id: h.id.as_str().to_string(),
            transport: crate::delivery::TRANSPORT.into(),
            target: h.terminal.clone().unwrap_or_else(|| h.id.to_string()),
        });
        if let Some(d) = &h.discord {
            if let Some(r) = d.staff_role {
                staff.push(StaffSpec::Group {
                    platform: "discord".into(),
                    id: r.to_string(),
                });
            }
            targets.push(NewDelivery {
                hub_id: h.id.as_str().to_string(),
                transport: "discord".into(),
                target: d.channel.to_string(),
            });
        }
        if let Some(sl) = &h.slack {
            staff.push(match &sl.staff {
                crate::routing::SlackStaff::Group(g) => StaffSpec::Group {
                    platform: "slack".into(),
                    id: g.to_string(),
                },
                crate::routing::SlackStaff::Members(ms) => StaffSpec::Members {
                    platform: "slack".into(),
                    users: ms.iter().map(|m| m.to_string()).collect(),
                },
            });
            targets.push(NewDelivery {
                hub_id: h.id.as_str().to_string(),
                transport: "slack".into(),
                target: sl.channel.to_string(),
            });
        }
        HubInfo {
            id: h.id.as_str().to_string(),
            name: h.name.clone(),
            staff,
            targets,
            from_directory: h.from_directory,
        }
    }
}

/// The hubs of the network, as the current routing names them, plus the
/// members named in the run's configuration (e.g. `cli` staff).
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub hubs: Vec<HubInfo>,
    /// The transports cases are delivered on, in order of preference
    /// (the platforms the bot runs, e.g. `["discord"]`): a forwarded case
    /// goes to the new hub's first target on one of them.
    pub transports: Vec<String>,
    /// The time limits of `reminders:` in `routing.yaml`: the adapter that
    /// applies a decision schedules the case's timers by them.
    pub reminders: crate::routing::ReminderPolicy,
    /// The hub of `fallback:` in `routing.yaml` (the network desk), which
    /// passes cases on to hubs the network does not staff.
    pub fallback: Option<String>,
}

impl Network {
    pub fn from_routing(r: &crate::routing::Routing) -> Network {
        Network {
            hubs: r.hubs.iter().map(HubInfo::from_routing).collect(),
            transports: Vec::new(),
            reminders: r.reminders.clone(),
            fallback: fallback_hub(r),
        }
    }
    /// Where a case forwarded to `hub` is delivered.
    pub fn delivery(&self, hub: &str) -> Option<NewDelivery> {
        let h = self.hub(hub)?;
        self.transports
            .iter()
            .find_map(|t| h.targets.iter().find(|d| d.transport == *t))
            .cloned()
    }
    /// The hubs of every flow of a bundle (they share routing.yaml; the
    /// first flow naming a hub wins).
    pub fn from_bundle(b: &crate::script::Bundle) -> Network {
        let mut n = Network::default();
        if let Some(f) = b.flows.first() {
            n.reminders = f.routing.reminders.clone();
            n.fallback = fallback_hub(&f.routing);
        }
        for f in &b.flows {
            for h in &f.routing.hubs {
                if n.hub(h.id.as_str()).is_none() {
                    n.hubs.push(HubInfo::from_routing(h));
                }
            }
        }
        n
    }
    pub fn hub(&self, id: &str) -> Option<&HubInfo> {
        self.hubs.iter().find(|h| h.id == id)
    }
    /// The hub's name, or its id when the routing no longer names it.
    pub fn hub_name(&self, id: &str) -> String {
        self.hub(id)
            .map(|h| h.name.clone())
            .unwrap_or_else(|| id.to_string())
    }
    /// Adds named members as staff of a hub (on any platform, e.g. the
    /// terminal's `cli` identities listed in the configuration).
    pub fn add_members(&mut self, hub: &str, platform: &str, users: Vec<String>) {
        if let Some(h) = self.hubs.iter_mut().find(|h| h.id == hub) {
            h.staff.push(StaffSpec::Members {
                platform: platform.into(),
                users,
            });
        }
    }
}

/// The hub the routing's fallback names, if it names one.
fn fallback_hub(r: &crate::routing::Routing) -> Option<String> {
    match r.fallback.primary {
        crate::routing::Pick::Hub(i) => r.hubs.get(i).map(|h| h.id.as_str().to_string()),
        crate::routing::Pick::Kind(_) => None,
    }
}

/// A case as the desk sees it: the record, the owner's consent records
/// for it, where it is posted, and whether the owner deleted their data.
#[derive(Debug, Clone)]
pub struct CaseView {
    pub case: CaseRecord,
    pub consents: Vec<ConsentRow>,
    pub posts: Vec<CasePost>,
    pub forgotten: bool,
    /// Forwards of this case still waiting for the owner's answer.
    pub pending: Vec<ForwardRequest>,
    /// When the case arrived at the hub that holds it now (its creation,
    /// or its last forward). A request made before then was made by
    /// another hub, so the owner's answer to it no longer applies.
    pub hub_since: DateTime<Utc>,
}

impl CaseView {
    /// Hubs named in a granted consent for this case.
    pub fn consented_hubs(&self) -> Vec<String> {
        self.consents
            .iter()
            .filter(|c| c.case == Some(self.case.id) && c.granted)
            .flat_map(|c| c.recipients.iter().map(|h| h.id.clone()))
            .collect()
    }
    /// What the owner agreed to share, as they were told.
    pub fn shared_items(&self) -> Vec<String> {
        self.consents
            .iter()
            .find(|c| c.case == Some(self.case.id) && c.granted)
            .map(|c| c.items.clone())
            .unwrap_or_default()
    }
}

/// What staff do to a case. `from_hub` on the request says for which hub
/// they act (the hub of the post or thread they pressed in, or `--hub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    Claim,
    Release,
    Forward {
        to_hub: String,
        reason: String,
    },
    Advance,
    Close {
        outcome: String,
    },
    /// A message for the owner.
    Reply {
        text: String,
    },
    /// A note for the case's discussion (staff only).
    Note {
        text: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Claim => "claim",
            Action::Release => "release",
            Action::Forward { .. } => "forward",
            Action::Advance => "advance",
            Action::Close { .. } => "close",
            Action::Reply { .. } => "reply",
            Action::Note { .. } => "note",
        }
    }
}

/// A request to the desk.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub actor: &'a Actor,
    /// The hub the actor acts for; `None` means the case's current hub.
    pub from_hub: Option<&'a str>,
    pub action: Action,
    pub now: DateTime<Utc>,
}

/// One store change, as data ([`crate::casework::apply`] runs them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Change {
    /// `Store::update_case` (which writes its own audit entry).
    Update {
        #[serde(serialize_with = "ser_change")]
        change: CaseChange,
    },
    /// `Store::forward_case`: the move, the owner's new consent (when the
    /// move follows their yes), the answered request, the delivery.
    Forward {
        to_hub: String,
        reason: String,
        consent: Option<ConsentRecord>,
        request: Option<i64>,
        #[serde(serialize_with = "ser_delivery")]
        delivery: Option<NewDelivery>,
    },
    /// `Store::create_forward_request`.
    RequestForward {
        #[serde(serialize_with = "ser_request")]
        request: NewForwardRequest,
    },
    /// `Store::decide_forward_request` (only if still pending).
    DecideRequest {
        request: i64,
        #[serde(serialize_with = "ser_status")]
        status: ForwardStatus,
    },
    /// `Store::record_consent` for the case's session.
    RecordConsent { consent: ConsentRecord },
    /// `Store::decide_forward_request` with `Withdrawn`: a request the
    /// case has outgrown (it moved or closed). One the owner answered in
    /// the meantime is left as answered, not an error.
    Withdraw { request: i64 },
}

fn ser_change<S: serde::Serializer>(c: &CaseChange, s: S) -> Result<S::Ok, S::Error> {
    let v = match c {
        CaseChange::Claim { by } => serde_json::json!({ "claim": by }),
        CaseChange::Release => serde_json::json!("release"),
        CaseChange::Forward { to_hub, reason } => {
            serde_json::json!({ "forward": { "to_hub": to_hub, "reason": reason } })
        }
        CaseChange::Advance { to_step } => serde_json::json!({ "advance": to_step }),
        CaseChange::Close { outcome } => serde_json::json!({ "close": outcome }),
    };
    v.serialize(s)
}

fn ser_request<S: serde::Serializer>(r: &NewForwardRequest, s: S) -> Result<S::Ok, S::Error> {
    serde_json::json!({ "to_hub": r.to_hub, "reason": r.reason, "requested_by": r.requested_by })
        .serialize(s)
}

fn ser_delivery<S: serde::Serializer>(d: &Option<NewDelivery>, s: S) -> Result<S::Ok, S::Error> {
    d.as_ref()
        .map(|d| serde_json::json!({ "hub": d.hub_id, "transport": d.transport, "target": d.target }))
        .serialize(s)
}

fn ser_status<S: serde::Serializer>(st: &ForwardStatus, s: S) -> Result<S::Ok, S::Error> {
    st.name().serialize(s)
}

/// An audit entry beyond the ones `update_case` and `forward_case` write.
/// The detail may name `"$request"`, replaced by the id of the request
/// the same decision created.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditNew {
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// A note for the case's discussion (thread) in one hub.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub hub: String,
    pub text: Text,
}

/// Whom to alert: a hub's staff (e.g. a role ping in its channel).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "notify")]
pub enum Notify {
    /// The hub now responsible for the case; `new_post` when it gets a new
    /// case post (which pings by itself), so only a hub that already had a
    /// copy needs a separate ping.
    HubStaff { hub: String, new_post: bool },
}

/// The owner must agree before the case goes to a hub their consent does
/// not name: the adapter shows them `ask` with yes/no, carrying the id of
/// the request the changes created.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentAsk {
    pub to_hub: String,
    pub ask: Text,
}

/// The effects of an accepted action, in the order an adapter applies
/// them: store changes (one transaction each), audit entries, then the
/// texts.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Effects {
    /// Who acted, as recorded in the audit log (`platform:user`).
    pub actor: String,
    pub changes: Vec<Change>,
    pub audit: Vec<AuditNew>,
    pub notes: Vec<Note>,
    /// Messages for the owner, rendered in the owner's language.
    pub owner: Vec<Text>,
    pub notify: Vec<Notify>,
    pub consent_ask: Option<ConsentAsk>,
    /// What the acting staff member is told.
    pub reply: Option<Text>,
    /// Whether the case's posts show something new (status, buttons).
    pub refresh_posts: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Refused(Text),
    Accepted(Effects),
}

impl Effects {
    /// The hubs whose staff must be called by a mention in the case's
    /// thread: the case is now theirs but their copy's post is only edited,
    /// which tells nobody (see [`Notify::HubStaff`]).
    pub fn staff_to_call(&self) -> Vec<&str> {
        self.notify
            .iter()
            .filter_map(|n| match n {
                Notify::HubStaff {
                    hub,
                    new_post: false,
                } => Some(hub.as_str()),
                Notify::HubStaff { .. } => None,
            })
            .collect()
    }
}

impl Decision {
    fn refuse(key: &'static str) -> Decision {
        Decision::Refused(Text::new(key))
    }
    pub fn is_accepted(&self) -> bool {
        matches!(self, Decision::Accepted(_))
    }
}

/// Whether the actor is staff of the hub. The refusal names the hub, and
/// the staff group on the actor's platform for a mention when there is
/// one; named members (the terminal's `cli` staff, a Slack member list)
/// and a hub without staff on the actor's platform have no group to
/// mention, so their refusal names the hub only.
pub fn permit(network: &Network, actor: &Actor, hub: &str) -> Result<(), Text> {
    let name = network.hub_name(hub);
    let Some(h) = network.hub(hub).filter(|h| !h.staff.is_empty()) else {
        return Err(Text::new("refused.no_staff_configured").arg("hub", Arg::text(&name)));
    };
    if h.staff.iter().any(|s| s.admits(actor)) {
        return Ok(());
    }
    let group = h.staff.iter().find_map(|s| match s {
        StaffSpec::Group { platform, id } if *platform == actor.id.platform() => Some(Arg::Group {
            platform: platform.clone(),
            id: id.clone(),
        }),
        _ => None,
    });
    Err(match group {
        Some(g) => Text::new("refused.not_staff")
            .arg("hub", Arg::text(&name))
            .arg("staff", g),
        None => Text::new("refused.not_staff_unnamed").arg("hub", Arg::text(&name)),
    })
}

/// Decides a staff action on a case.
pub fn decide(network: &Network, view: &CaseView, req: &Request<'_>) -> Decision {
    let case = &view.case;
    if view.forgotten {
        return Decision::refuse("refused.forgotten");
    }
    if let Err(refusal) = permit(network, req.actor, &case.hub_id) {
        // Someone acting for another hub (its post, the terminal's
        // `--hub`) is told where the case is, which is what went wrong,
        // rather than only that they are not the holder's staff.
        if let Some(from) = req.from_hub.filter(|h| *h != case.hub_id) {
            return Decision::Refused(
                Text::new("refused.held_elsewhere")
                    .arg("hub", Arg::text(&network.hub_name(&case.hub_id)))
                    .arg("hub_id", Arg::code(&case.hub_id))
                    .arg("from", Arg::code(from)),
            );
        }
        return Decision::Refused(refusal);
    }
    // Acting from another hub's post (the case was forwarded away from
    // it, or it holds only a copy) is refused: that hub's staff may be the
    // same people, but the buttons and threads belong to the responsible
    // hub.
    if req.from_hub.is_some_and(|h| h != case.hub_id) {
        return Decision::Refused(
            Text::new("refused.other_hub").arg("hub", Arg::text(&network.hub_name(&case.hub_id))),
        );
    }
    let me = Arg::Actor(req.actor.id.to_string());
    let who = req.actor.id.to_string();
    let mut fx = Effects {
        actor: who.clone(),
        ..Effects::default()
    };
    let closed = case.status == CaseStatus::Closed;
    match &req.action {
        Action::Claim => {
            if closed {
                return Decision::refuse("refused.closed");
            }
            match &case.claimed_by {
                Some(h) if *h == who => {
                    return Decision::Refused(Text::new("refused.already_yours"));
                }
                Some(h) => {
                    return Decision::Refused(
                        Text::new("refused.claimed_by_other").arg("holder", Arg::Actor(h.clone())),
                    )
                }
                None => {}
            }
            fx.changes.push(Change::Update {
                change: CaseChange::Claim { by: who.clone() },
            });
            fx.notes
                .push(note(case, Text::new("note.claimed").arg("who", me)));
            fx.reply = Some(Text::new("done.claimed").arg("case", case_arg(case)));
        }
        Action::Release => {
            if closed {
                return Decision::refuse("refused.closed");
            }
            match &case.claimed_by {
                None => return Decision::refuse("refused.not_claimed"),
                Some(h) if *h != who => {
                    return Decision::Refused(
                        Text::new("refused.release_not_yours").arg("holder", Arg::Actor(h.clone())),
                    )
                }
                Some(_) => {}
            }
            fx.changes.push(Change::Update {
                change: CaseChange::Release,
            });
            fx.notes
                .push(note(case, Text::new("note.released").arg("who", me)));
            fx.reply = Some(Text::new("done.released").arg("case", case_arg(case)));
        }
        Action::Advance => {
            if closed {
                return Decision::refuse("refused.closed");
            }
            if case.step >= LAST_STEP {
                return Decision::refuse("refused.last_step");
            }
            let to = case.step + 1;
            fx.changes.push(Change::Update {
                change: CaseChange::Advance { to_step: to },
            });
            fx.notes.push(note(
                case,
                Text::new("note.advanced")
                    .arg("who", me)
                    .arg("from", Arg::code(&case.step.to_string()))
                    .arg("to", Arg::code(&to.to_string())),
            ));
            fx.reply = Some(
                Text::new("done.advanced")
                    .arg("case", case_arg(case))
                    .arg("to", Arg::code(&to.to_string())),
            );
        }
        Action::Close { outcome } => {
            if closed {
                return Decision::refuse("refused.closed");
            }
            let outcome = outcome.trim();
            if outcome.is_empty() {
                return Decision::refuse("refused.empty_outcome");
            }
            fx.changes.push(Change::Update {
                change: CaseChange::Close {
                    outcome: outcome.to_string(),
                },
            });
            fx.notes.push(note(
                case,
                Text::new("note.closed")
                    .arg("who", me)
                    .arg("outcome", Arg::text(outcome)),
            ));
            withdraw_pending(&mut fx, network, view, "closed");
            fx.reply = Some(Text::new("done.closed").arg("case", case_arg(case)));
        }
        Action::Forward { to_hub, reason } => {
            if closed {
                return Decision::refuse("refused.closed");
            }
            let reason = reason.trim();
            if reason.is_empty() {
                return Decision::refuse("refused.empty_reason");
            }
            let to = match forward_target(network, case, to_hub) {
                Ok(h) => h,
                Err(refusal) => return Decision::Refused(refusal),
            };
            let to_name = Arg::text(&to.name);
            let from_name = Arg::text(&network.hub_name(&case.hub_id));
            if view.consented_hubs().iter().any(|h| h == to_hub) {
                let new_post = !view.posts.iter().any(|p| p.hub_id == *to_hub);
                fx.changes.push(Change::Forward {
                    to_hub: to_hub.clone(),
                    reason: reason.to_string(),
                    consent: None,
                    request: None,
                    delivery: if new_post {
                        network.delivery(to_hub)
                    } else {
                        None
                    },
                });
                forwarded_notes(&mut fx, case, to_hub, reason, me, &from_name, &to_name);
                // The case leaves the hub that asked the owner about
                // another forward: that question no longer stands.
                withdraw_pending(&mut fx, network, view, "forwarded");
                fx.notify.push(Notify::HubStaff {
                    hub: to_hub.clone(),
                    new_post: new_post && network.delivery(to_hub).is_some(),
                });
                fx.reply = Some(
                    Text::new("done.forwarded")
                        .arg("case", case_arg(case))
                        .arg("to", to_name),
                );
            } else {
                // One question to the owner at a time: a second would
                // leave them two answers that each move the case, and the
                // later could undo the earlier. Staff wait for the answer
                // (or its lapse), or forward within consent or close the
                // case, which withdraws the question.
                if let Some(p) = view.pending.first() {
                    return Decision::Refused(
                        Text::new("refused.forward_pending")
                            .arg("to", Arg::text(&network.hub_name(&p.to_hub))),
                    );
                }
                // Not covered by the owner's consent: the owner decides.
                fx.changes.push(Change::RequestForward {
                    request: NewForwardRequest {
                        case: case.id,
                        user: case.user.clone(),
                        to_hub: to_hub.clone(),
                        reason: reason.to_string(),
                        requested_by: who.clone(),
                    },
                });
                fx.audit.push(AuditNew {
                    actor: who.clone(),
                    action: "forward_requested".into(),
                    detail: serde_json::json!({ "to": to_hub, "request": "$request", "reason": reason }),
                });
                let items = view.shared_items();
                fx.consent_ask = Some(ConsentAsk {
                    to_hub: to_hub.clone(),
                    ask: Text::new("owner.forward_ask")
                        .arg("case", case_arg(case))
                        .arg("from", from_name)
                        .arg("to", to_name.clone())
                        .arg("reason", Arg::text(reason))
                        .arg("items", Arg::List(items)),
                });
                fx.notes.push(note(
                    case,
                    Text::new("note.forward_asked")
                        .arg("who", me)
                        .arg("to", to_name.clone())
                        .arg("reason", Arg::text(reason)),
                ));
                fx.reply = Some(Text::new("done.forward_asked").arg("to", to_name));
                fx.refresh_posts = false;
                return Decision::Accepted(fx);
            }
        }
        Action::Reply { text } => {
            if closed {
                return Decision::refuse("refused.closed");
            }
            let text = text.trim();
            if text.is_empty() {
                return Decision::refuse("refused.empty_message");
            }
            fx.owner.push(
                Text::new("owner.from_staff")
                    .arg("hub", Arg::text(&network.hub_name(&case.hub_id)))
                    .arg("case", case_arg(case))
                    .arg("text", Arg::text(text)),
            );
            fx.audit.push(AuditNew {
                actor: who.clone(),
                action: "relay_to_owner".into(),
                detail: serde_json::json!({ "messages": "$messages" }),
            });
            fx.notes.push(note(
                case,
                Text::new("note.replied")
                    .arg("who", me)
                    .arg("text", Arg::text(text)),
            ));
            fx.reply = Some(Text::new("done.replied").arg("case", case_arg(case)));
            return Decision::Accepted(fx);
        }
        Action::Note { text } => {
            let text = text.trim();
            if text.is_empty() {
                return Decision::refuse("refused.empty_message");
            }
            fx.audit.push(AuditNew {
                actor: who.clone(),
                action: "note".into(),
                detail: serde_json::json!({ "text": text }),
            });
            fx.notes.push(note(
                case,
                Text::new("note.note")
                    .arg("who", me)
                    .arg("text", Arg::text(text)),
            ));
            fx.reply = Some(Text::new("done.noted").arg("case", case_arg(case)));
            return Decision::Accepted(fx);
        }
    }
    fx.refresh_posts = true;
    Decision::Accepted(fx)
}

/// The question an owner is asked about a forward waiting for their
/// consent (the same text the desk made when staff asked for it), for an
/// owner who is shown it later, e.g. when they next start `madoguchi chat`.
pub fn forward_ask(network: &Network, view: &CaseView, req: &ForwardRequest) -> Text {
    let case = &view.case;
    Text::new("owner.forward_ask")
        .arg("case", case_arg(case))
        .arg("from", Arg::text(&network.hub_name(&case.hub_id)))
        .arg("to", Arg::text(&network.hub_name(&req.to_hub)))
        .arg("reason", Arg::text(&req.reason))
        .arg("items", Arg::List(view.shared_items()))
}

/// The owner's answer to a forward request (`yes`), with the wording they
/// were shown. Refused when the request is no longer pending or the case
/// is closed.
pub fn decide_owner_answer(
    network: &Network,
    view: &CaseView,
    req: &ForwardRequest,
    yes: bool,
    wording: &str,
) -> Decision {
    let case = &view.case;
    match req.status {
        ForwardStatus::Pending if outgrown(view, req) => {
            // Asked by a hub that no longer holds the case, or about a
            // closed case: neither yes nor no applies any more. The
            // request is withdrawn and the owner told why.
            let mut fx = Effects {
                actor: req.user.to_string(),
                reply: Some(outgrown_text(network, view, req)),
                ..Effects::default()
            };
            fx.changes.push(Change::Withdraw { request: req.id });
            fx.audit.push(AuditNew {
                actor: req.user.to_string(),
                action: "forward_withdrawn".into(),
                detail: serde_json::json!({ "to": req.to_hub, "request": req.id, "why": "outgrown" }),
            });
            return Decision::Accepted(fx);
        }
        ForwardStatus::Pending => {}
        ForwardStatus::Withdrawn => return Decision::Refused(outgrown_text(network, view, req)),
        _ => return Decision::refuse("owner.already_answered"),
    }
    let to = HubRef {
        id: req.to_hub.clone(),
        name: network.hub_name(&req.to_hub),
    };
    let to_name = Arg::text(&to.name);
    let consent = ConsentRecord {
        granted: yes,
        hubs: vec![to.clone()],
        items: view.shared_items(),
        wording: wording.to_string(),
    };
    // A forward is recorded under the staff member who asked for it.
    let mut fx = Effects {
        actor: if yes {
            req.requested_by.clone()
        } else {
            req.user.to_string()
        },
        ..Effects::default()
    };
    if yes {
        if case.status == CaseStatus::Closed {
            return Decision::refuse("owner.forward_impossible");
        }
        let new_post = !view.posts.iter().any(|p| p.hub_id == req.to_hub);
        let delivery = network.delivery(&req.to_hub).filter(|_| new_post);
        fx.notify.push(Notify::HubStaff {
            hub: req.to_hub.clone(),
            new_post: delivery.is_some(),
        });
        fx.changes.push(Change::Forward {
            to_hub: req.to_hub.clone(),
            reason: req.reason.clone(),
            consent: Some(consent),
            request: Some(req.id),
            delivery,
        });
        fx.notes.push(note(
            case,
            Text::new("note.owner_agreed").arg("to", to_name.clone()),
        ));
        let from_name = Arg::text(&network.hub_name(&case.hub_id));
        forwarded_notes(
            &mut fx,
            case,
            &req.to_hub,
            &req.reason,
            Arg::Actor(req.requested_by.clone()),
            &from_name,
            &to_name,
        );
        fx.reply = Some(Text::new("owner.forward_agreed").arg("to", to_name));
        fx.refresh_posts = true;
    } else {
        fx.changes.push(Change::DecideRequest {
            request: req.id,
            status: ForwardStatus::Declined,
        });
        fx.changes.push(Change::RecordConsent { consent });
        fx.audit.push(AuditNew {
            actor: req.user.to_string(),
            action: "forward_declined".into(),
            detail: serde_json::json!({ "to": req.to_hub, "request": req.id }),
        });
        fx.notes.push(note(
            case,
            Text::new("note.owner_declined").arg("to", to_name.clone()),
        ));
        fx.reply = Some(Text::new("owner.forward_declined").arg("to", to_name));
    }
    Decision::Accepted(fx)
}

/// Whether a case may be forwarded to `to_hub`; the refusal says what was
/// wrong and what to do. A hub named only by the national directory is
/// refused as routing never sends a case there either: no one in the
/// network staffs it, so its cases go through the fallback hub (the
/// network desk), which passes them on.
fn forward_target<'n>(
    network: &'n Network,
    case: &CaseRecord,
    to_hub: &str,
) -> Result<&'n HubInfo, Text> {
    let staffed = || {
        let ids: Vec<&str> = network
            .hubs
            .iter()
            .filter(|h| !h.from_directory && h.id != case.hub_id)
            .map(|h| h.id.as_str())
            .collect();
        Arg::text(&ids.join(", "))
    };
    match network.hub(to_hub) {
        None => Err(Text::new("refused.unknown_hub")
            .arg("to", Arg::code(to_hub))
            .arg("hubs", staffed())),
        Some(h) if h.id == case.hub_id => {
            Err(Text::new("refused.same_hub").arg("hub", Arg::text(&h.name)))
        }
        Some(h) if h.from_directory => {
            let desk = network.fallback.as_deref().unwrap_or_default();
            Err(Text::new("refused.directory_hub")
                .arg("to", Arg::text(&h.name))
                .arg("desk", Arg::text(&network.hub_name(desk)))
                .arg("desk_id", Arg::code(desk)))
        }
        Some(h) => Ok(h),
    }
}

/// Whether a forward request no longer fits its case: the case is closed,
/// or it moved to another hub after the request was made (so the hub that
/// asked no longer holds it). The owner's answer to such a request must
/// not move the case.
pub fn outgrown(view: &CaseView, req: &ForwardRequest) -> bool {
    view.case.status == CaseStatus::Closed || req.created_at < view.hub_since
}

/// What the owner is told about a request that was withdrawn or has
/// outgrown its case: why, and that nothing changed.
fn outgrown_text(network: &Network, view: &CaseView, req: &ForwardRequest) -> Text {
    let case = &view.case;
    let to = Arg::text(&network.hub_name(&req.to_hub));
    let key = if case.status == CaseStatus::Closed {
        "owner.forward_outgrown_closed"
    } else if req.created_at < view.hub_since {
        return Text::new("owner.forward_outgrown_moved")
            .arg("case", case_arg(case))
            .arg("to", to)
            .arg("now", Arg::text(&network.hub_name(&case.hub_id)));
    } else {
        "owner.forward_withdrawn"
    };
    Text::new(key).arg("case", case_arg(case)).arg("to", to)
}

/// Withdraws the case's forward requests still waiting for the owner
/// (the case moved or closed, so they were asked by a hub that no longer
/// decides), each with an audit entry and a note for the hub that asked.
fn withdraw_pending(fx: &mut Effects, network: &Network, view: &CaseView, why: &str) {
    for r in &view.pending {
        fx.changes.push(Change::Withdraw { request: r.id });
        fx.audit.push(AuditNew {
            actor: fx.actor.clone(),
            action: "forward_withdrawn".into(),
            detail: serde_json::json!({ "to": r.to_hub, "request": r.id, "why": why }),
        });
        fx.notes.push(note(
            &view.case,
            Text::new("note.forward_withdrawn").arg("to", Arg::text(&network.hub_name(&r.to_hub))),
        ));
    }
}

/// An owner's message about their routed case, for the case's discussion.
pub fn owner_message(case: &CaseRecord, text: &str, attachments: bool) -> Effects {
    let key = if attachments {
        "note.from_owner_with_attachments"
    } else {
        "note.from_owner"
    };
    Effects {
        actor: case.user.to_string(),
        notes: vec![note(
            case,
            Text::new(key)
                .arg("case", case_arg(case))
                .arg("text", Arg::text(text)),
        )],
        audit: vec![AuditNew {
            actor: case.user.to_string(),
            action: "relay_to_staff".into(),
            detail: serde_json::json!({ "messages": "$messages" }),
        }],
        ..Effects::default()
    }
}

fn forwarded_notes(
    fx: &mut Effects,
    case: &CaseRecord,
    to_hub: &str,
    reason: &str,
    by: Arg,
    from_name: &Arg,
    to_name: &Arg,
) {
    fx.notes.push(Note {
        hub: case.hub_id.clone(),
        text: Text::new("note.forwarded_away")
            .arg("who", by)
            .arg("to", to_name.clone())
            .arg("reason", Arg::text(reason)),
    });
    fx.notes.push(Note {
        hub: to_hub.to_string(),
        text: Text::new("note.forwarded_here")
            .arg("from", from_name.clone())
            .arg("reason", Arg::text(reason)),
    });
}

fn note(case: &CaseRecord, text: Text) -> Note {
    Note {
        hub: case.hub_id.clone(),
        text,
    }
}

fn case_arg(case: &CaseRecord) -> Arg {
    Arg::code(&case.id.to_string())
}
