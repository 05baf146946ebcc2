//! Desk tests as data: each file in `tests/desk/` sets up a network of
//! hubs and one case, then plays staff actions (and owners' answers to
//! forward requests) through [`madoguchi::desk`], checking each decision
//! and the case after its changes. The changes are applied to the case in
//! memory the way the store applies them, so a sequence (claim, then
//! release by someone else, then forward …) sees the state it built.
//!
//! Every expectation of a step is optional; what is given must match
//! exactly (lists in order). Texts are checked by key, and rendered in
//! both languages with the shipped templates, so a decision whose texts do
//! not render fails here.

use madoguchi::desk::texts::Plain;
use madoguchi::desk::{
    self, Action, Actor, CaseView, Change, Decision, DeskTexts, HubInfo, Network, StaffId,
    StaffSpec, Text,
};
use madoguchi::domain::ids::{CaseId, SessionId, UserKey};
use madoguchi::routing::{HubRef, RouteDecision};
use madoguchi::script::Lang;
use madoguchi::store::{
    CaseChange, CasePost, CaseRecord, CaseStatus, ConsentRow, ForwardRequest, ForwardStatus,
    NewDelivery,
};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    hubs: Vec<HubSpec>,
    case: CaseSpec,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HubSpec {
    id: String,
    name: String,
    /// `discord:role:ID`, `slack:group:ID` or `PLATFORM:members:a,b`.
    #[serde(default)]
    staff: Vec<String>,
    /// `transport:target` for a forwarded case's post.
    #[serde(default)]
    delivery: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    hub: String,
    #[serde(default = "one")]
    step: u8,
    #[serde(default)]
    claimed_by: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// Hubs the owner's consent names.
    consent: Vec<String>,
    #[serde(default)]
    items: Vec<String>,
    /// Hubs the case is posted in.
    #[serde(default)]
    posts: Vec<String>,
    #[serde(default)]
    forgotten: bool,
}

fn one() -> u8 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    /// `platform:user`, optionally followed by ` groups=a,b`.
    #[serde(rename = "as", default)]
    actor: Option<String>,
    /// The hub the actor acts from.
    #[serde(default)]
    from: Option<String>,
    /// `claim`, `release`, `advance`, `close: outcome`, `forward: hub
    /// because reason`, `reply: text`, `note: text`, or `owner: yes|no`
    /// (the owner answers the last forward request).
    #[serde(rename = "do")]
    action: BTreeMap<String, String>,
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    refused: Option<String>,
    changes: Option<Vec<serde_json::Value>>,
    /// `hub: key` per note.
    notes: Option<Vec<String>>,
    owner: Option<Vec<String>>,
    audit: Option<Vec<String>>,
    notify: Option<Vec<serde_json::Value>>,
    consent_ask: Option<String>,
    reply: Option<String>,
    /// Substrings of the rendered texts (Japanese), e.g. a mention.
    #[serde(default)]
    rendered: Vec<String>,
    /// The case after the changes: status, hub, step, claimed_by.
    case: Option<BTreeMap<String, serde_json::Value>>,
    /// What the case's posts need ([`madoguchi::relay::Refresh::of`]):
    /// `none`, `status` (status line and buttons) or `text` (the posts'
    /// text too, after a forward).
    posts: Option<String>,
}

fn network(hubs: &[HubSpec]) -> Network {
    Network {
        hubs: hubs
            .iter()
            .map(|h| HubInfo {
                id: h.id.clone(),
                name: h.name.clone(),
                staff: h
                    .staff
                    .iter()
                    .map(|s| {
                        let mut p = s.splitn(3, ':');
                        let (platform, kind, rest) =
                            (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
                        match kind {
                            "members" => StaffSpec::Members {
                                platform: platform.into(),
                                users: rest.split(',').map(str::to_string).collect(),
                            },
                            _ => StaffSpec::Group {
                                platform: platform.into(),
                                id: rest.into(),
                            },
                        }
                    })
                    .collect(),
                targets: h
                    .delivery
                    .iter()
                    .map(|d| {
                        let (t, target) = d.split_once(':').unwrap();
                        NewDelivery {
                            hub_id: h.id.clone(),
                            transport: t.into(),
                            target: target.into(),
                        }
                    })
                    .collect(),
                from_directory: false,
            })
            .collect(),
        transports: vec!["discord".into(), "slack".into()],
        ..Network::default()
    }
}

fn view(c: &CaseSpec, net: &Network) -> CaseView {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let hub = |id: &str| HubRef {
        id: id.into(),
        name: net.hub_name(id),
    };
    let user = UserKey::parse("discord:900").unwrap();
    let id = CaseId(1);
    let status = match c.status.as_deref() {
        Some(s) => CaseStatus::parse(s).unwrap(),
        None if c.claimed_by.is_some() => CaseStatus::Claimed,
        None => CaseStatus::Open,
    };
    CaseView {
        case: CaseRecord {
            id,
            session: SessionId(1),
            user: user.clone(),
            version: "v".into(),
            headline: "株式会社テスト".into(),
            summary_plain: "sheet".into(),
            summary_markdown: "sheet".into(),
            route: RouteDecision {
                rule: "r".into(),
                reason: "why".into(),
                primary: hub(&c.hub),
                copies: vec![],
                step: c.step,
                passed_over: vec![],
                follow_up: None,
            },
            hub_id: c.hub.clone(),
            tags: vec![],
            step: c.step,
            status,
            claimed_by: c.claimed_by.clone(),
            outcome: None,
            created_at: now,
            updated_at: now,
        },
        consents: vec![ConsentRow {
            id: 1,
            session: SessionId(1),
            case: Some(id),
            user,
            granted: true,
            recipients: c.consent.iter().map(|h| hub(h)).collect(),
            items: c.items.clone(),
            wording: "同意します".into(),
            at: now,
        }],
        posts: c
            .posts
            .iter()
            .map(|h| CasePost {
                case: id,
                hub_id: h.clone(),
                transport: "discord".into(),
                channel_id: "1".into(),
                message_id: "2".into(),
                thread_id: None,
                created_at: now,
            })
            .collect(),
        forgotten: c.forgotten,
        pending: vec![],
        hub_since: now,
    }
}

fn actor(s: &str) -> Actor {
    let (id, groups) = match s.split_once(" groups=") {
        Some((id, g)) => (id, g.split(',').map(str::to_string).collect()),
        None => (s, vec![]),
    };
    Actor {
        id: StaffId::parse(id).unwrap(),
        groups,
    }
}

fn action(m: &BTreeMap<String, String>) -> Action {
    let (k, v) = m.iter().next().expect("one action per step");
    match k.as_str() {
        "claim" => Action::Claim,
        "release" => Action::Release,
        "advance" => Action::Advance,
        "close" => Action::Close { outcome: v.clone() },
        "reply" => Action::Reply { text: v.clone() },
        "note" => Action::Note { text: v.clone() },
        "forward" => {
            let (to, reason) = v.split_once(" because ").unwrap_or((v, ""));
            Action::Forward {
                to_hub: to.trim().into(),
                reason: reason.into(),
            }
        }
        other => panic!("unknown action `{other}`"),
    }
}

/// Applies changes to the case the way the store does.
fn apply(v: &mut CaseView, fx: &desk::Effects, requests: &mut Vec<ForwardRequest>, net: &Network) {
    for c in &fx.changes {
        match c {
            Change::Update { change } => match change {
                CaseChange::Claim { by } => {
                    v.case.status = CaseStatus::Claimed;
                    v.case.claimed_by = Some(by.clone());
                }
                CaseChange::Release => {
                    v.case.status = CaseStatus::Open;
                    v.case.claimed_by = None;
                }
                CaseChange::Advance { to_step } => v.case.step = *to_step,
                CaseChange::Close { outcome } => {
                    v.case.status = CaseStatus::Closed;
                    v.case.outcome = Some(outcome.clone());
                }
                CaseChange::Forward { .. } => {
                    unreachable!("the desk forwards with Change::Forward")
                }
            },
            Change::Forward {
                to_hub,
                consent,
                request,
                delivery,
                ..
            } => {
                v.case.hub_id = to_hub.clone();
                // A later arrival, so that requests made before it are
                // outgrown, as the store's audit times make them.
                v.hub_since += chrono::Duration::seconds(1);
                v.case.status = CaseStatus::Open;
                v.case.claimed_by = None;
                if let Some(c) = consent {
                    v.consents.push(ConsentRow {
                        id: v.consents.len() as i64 + 1,
                        session: v.case.session,
                        case: Some(v.case.id),
                        user: v.case.user.clone(),
                        granted: c.granted,
                        recipients: c.hubs.clone(),
                        items: c.items.clone(),
                        wording: c.wording.clone(),
                        at: v.case.created_at,
                    });
                }
                if let Some(r) = request {
                    requests[*r as usize - 1].status = ForwardStatus::Accepted;
                }
                if delivery.is_some() {
                    let mut p = v.posts.first().cloned().unwrap();
                    p.hub_id = to_hub.clone();
                    v.posts.push(p);
                }
            }
            Change::RequestForward { request } => requests.push(ForwardRequest {
                id: requests.len() as i64 + 1,
                case: request.case,
                user: request.user.clone(),
                to_hub: request.to_hub.clone(),
                reason: request.reason.clone(),
                requested_by: request.requested_by.clone(),
                status: ForwardStatus::Pending,
                created_at: v.hub_since,
                decided_at: None,
            }),
            Change::DecideRequest { request, status } => {
                requests[*request as usize - 1].status = *status;
            }
            Change::Withdraw { request } => {
                let r = &mut requests[*request as usize - 1];
                if r.status == ForwardStatus::Pending {
                    r.status = ForwardStatus::Withdrawn;
                }
            }
            Change::RecordConsent { consent } => v.consents.push(ConsentRow {
                id: v.consents.len() as i64 + 1,
                session: v.case.session,
                case: Some(v.case.id),
                user: v.case.user.clone(),
                granted: consent.granted,
                recipients: consent.hubs.clone(),
                items: consent.items.clone(),
                wording: consent.wording.clone(),
                at: v.case.created_at,
            }),
        }
    }
    let _ = net;
    v.pending = requests
        .iter()
        .filter(|r| r.status == ForwardStatus::Pending)
        .cloned()
        .collect();
}

fn check_file(path: &std::path::Path, texts: &DeskTexts) -> Vec<String> {
    let src = std::fs::read_to_string(path).unwrap();
    let f: File =
        serde_saphyr::from_str(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let net = network(&f.hubs);
    let mut v = view(&f.case, &net);
    let mut requests: Vec<ForwardRequest> = Vec::new();
    let mut fails = Vec::new();
    let now = v.case.created_at;
    for (i, s) in f.steps.iter().enumerate() {
        let at = format!("{} ({}) step {}", path.display(), f.name, i + 1);
        let decision = match s.action.get("owner") {
            Some(yn) => {
                let req = requests
                    .last()
                    .expect("a forward request to answer")
                    .clone();
                desk::decide_owner_answer(&net, &v, &req, yn == "yes", "wording")
            }
            None => {
                let a = actor(s.actor.as_deref().expect("`as:` names the staff member"));
                desk::decide(
                    &net,
                    &v,
                    &desk::Request {
                        actor: &a,
                        from_hub: s.from.as_deref(),
                        action: action(&s.action),
                        now,
                    },
                )
            }
        };
        let e = &s.expect;
        // Every text of the decision renders in both languages.
        let mut all_texts: Vec<&Text> = Vec::new();
        match &decision {
            Decision::Refused(t) => all_texts.push(t),
            Decision::Accepted(fx) => {
                all_texts.extend(fx.notes.iter().map(|n| &n.text));
                all_texts.extend(fx.owner.iter());
                all_texts.extend(fx.reply.iter());
                all_texts.extend(fx.consent_ask.iter().map(|c| &c.ask));
            }
        }
        let mut rendered = String::new();
        for t in &all_texts {
            for lang in [Lang::Ja, Lang::En] {
                match texts.render(lang, t, &Plain) {
                    Ok(s) => {
                        if lang == Lang::Ja {
                            rendered.push_str(&s);
                            rendered.push('\n');
                        }
                    }
                    Err(err) => fails.push(format!("{at}: {err}")),
                }
            }
        }
        for want in &e.rendered {
            if !rendered.contains(want.as_str()) {
                fails.push(format!(
                    "{at}: the texts do not contain {want:?}:\n{rendered}"
                ));
            }
        }
        match (&decision, &e.refused) {
            (Decision::Refused(t), Some(k)) => {
                if t.key != *k {
                    fails.push(format!("{at}: refused with {} instead of {k}", t.key));
                }
            }
            (Decision::Refused(t), None) => fails.push(format!(
                "{at}: refused with {} but expected acceptance",
                t.key
            )),
            (Decision::Accepted(fx), Some(k)) => fails.push(format!(
                "{at}: accepted ({}) but expected refusal {k}",
                serde_json::to_string(&fx.changes).unwrap()
            )),
            (Decision::Accepted(fx), None) => {
                let cmp = |what: &str,
                           got: serde_json::Value,
                           want: &Option<Vec<serde_json::Value>>,
                           fails: &mut Vec<String>| {
                    if let Some(w) = want {
                        if got != serde_json::Value::Array(w.clone()) {
                            fails.push(format!(
                                "{at}: {what}: got {got}, want {}",
                                serde_json::Value::Array(w.clone())
                            ));
                        }
                    }
                };
                cmp(
                    "changes",
                    serde_json::to_value(&fx.changes).unwrap(),
                    &e.changes,
                    &mut fails,
                );
                cmp(
                    "notify",
                    serde_json::to_value(&fx.notify).unwrap(),
                    &e.notify,
                    &mut fails,
                );
                let strs = |what: &str,
                            got: Vec<String>,
                            want: &Option<Vec<String>>,
                            fails: &mut Vec<String>| {
                    if let Some(w) = want {
                        if got != *w {
                            fails.push(format!("{at}: {what}: got {got:?}, want {w:?}"));
                        }
                    }
                };
                strs(
                    "notes",
                    fx.notes
                        .iter()
                        .map(|n| format!("{}: {}", n.hub, n.text.key))
                        .collect(),
                    &e.notes,
                    &mut fails,
                );
                strs(
                    "owner",
                    fx.owner.iter().map(|t| t.key.clone()).collect(),
                    &e.owner,
                    &mut fails,
                );
                strs(
                    "audit",
                    fx.audit.iter().map(|a| a.action.clone()).collect(),
                    &e.audit,
                    &mut fails,
                );
                let ask = fx.consent_ask.as_ref().map(|c| c.to_hub.clone());
                if (e.consent_ask.is_some() || ask.is_some()) && ask != e.consent_ask {
                    fails.push(format!(
                        "{at}: consent_ask: got {ask:?}, want {:?}",
                        e.consent_ask
                    ));
                }
                if let Some(want) = &e.posts {
                    let got = match madoguchi::relay::Refresh::of(fx) {
                        None => "none",
                        Some(r) if r.text => "text",
                        Some(_) => "status",
                    };
                    if got != want {
                        fails.push(format!("{at}: posts: got {got}, want {want}"));
                    }
                }
                if let Some(r) = &e.reply {
                    let got = fx.reply.as_ref().map(|t| t.key.as_str());
                    if got != Some(r.as_str()) {
                        fails.push(format!("{at}: reply: got {got:?}, want {r}"));
                    }
                }
                apply(&mut v, fx, &mut requests, &net);
            }
        }
        if let Some(want) = &e.case {
            let got = serde_json::json!({
                "status": v.case.status.name(),
                "hub": v.case.hub_id,
                "step": v.case.step,
                "claimed_by": v.case.claimed_by,
                "outcome": v.case.outcome,
            });
            for (k, w) in want {
                if got.get(k) != Some(w) {
                    fails.push(format!("{at}: case.{k}: got {}, want {w}", got[k]));
                }
            }
        }
    }
    fails
}

#[test]
fn desk_cases_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/desk");
    let texts = DeskTexts::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs"))
        .expect("the shipped desk texts load");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the desk suite is in {}", dir.display());
    let mut fails = Vec::new();
    for f in &files {
        fails.extend(check_file(f, &texts));
    }
    assert!(fails.is_empty(), "desk failures:\n{}", fails.join("\n"));
}
