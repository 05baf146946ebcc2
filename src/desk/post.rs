//! What a case post in a hub's channel says, platform-neutrally: its head
//! line, the intro (how to reply, where a forwarded case came from, why it
//! was routed here), the state, and which actions its buttons offer. Each
//! adapter lays these out its own way (a Discord embed and buttons, Slack
//! blocks) and renders the texts with [`super::DeskTexts`].

use super::texts::{Arg, Text};
use super::{Network, LAST_STEP};
use crate::store::{CaseRecord, CaseStatus};
use serde::Serialize;

/// The action a post's button stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    Claim,
    Release,
    Forward,
    Advance,
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    pub kind: ButtonKind,
    pub label: Text,
    pub enabled: bool,
}

/// Where a forwarded case came from, and why (from the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedFrom {
    pub hub: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostParts {
    /// Whether this is the responsible hub's post (with buttons) or a copy.
    pub primary: bool,
    pub head: Text,
    /// Lines under the head line.
    pub intro: Vec<Text>,
    /// The hub field: the responsible hub's name, marked on a copy.
    pub hub: Text,
    pub status: Text,
    /// The buttons of the responsible hub's post while the case is open.
    pub buttons: Vec<Button>,
}

/// The parts of the post of `case` in `hub_id`'s channel. `reply_hint` is
/// how staff reply on the adapter's platform (e.g. "`/reply`"), placed as
/// is.
pub fn post_parts(
    network: &Network,
    case: &CaseRecord,
    hub_id: &str,
    forwarded: Option<&ForwardedFrom>,
    reply_hint: &str,
) -> PostParts {
    let primary = hub_id == case.hub_id;
    let id = Arg::code(&case.id.to_string());
    let head = if !primary {
        Text::new("post.head_copy")
    } else if forwarded.is_some() {
        Text::new("post.head_forwarded")
    } else {
        Text::new("post.head_new")
    }
    .arg("case", id);
    let mut intro = Vec::new();
    if primary {
        intro.push(Text::new("post.reply_howto").arg("reply", Arg::code(reply_hint)));
    } else {
        intro
            .push(Text::new("post.copy_of").arg("hub", Arg::text(&network.hub_name(&case.hub_id))));
    }
    if let Some(f) = forwarded {
        intro.push(
            Text::new("post.forwarded_from")
                .arg("from", Arg::text(&network.hub_name(&f.hub)))
                .arg("reason", Arg::text(&f.reason)),
        );
    }
    // The rule and its reasons are written by the bot from routing.yaml,
    // as they were shown before the desk: placed as they are.
    intro.push(
        Text::new("post.why")
            .arg("rule", Arg::code(&case.route.rule))
            .arg("reason", Arg::code(&case.route.reason)),
    );
    for (rule, why) in &case.route.passed_over {
        intro.push(
            Text::new("post.passed_over")
                .arg("rule", Arg::code(rule))
                .arg("reason", Arg::code(why)),
        );
    }
    let hub_name = Arg::text(&network.hub_name(&case.hub_id));
    let hub = if primary {
        Text::new("post.hub").arg("hub", hub_name)
    } else {
        Text::new("post.hub_copy").arg("hub", hub_name)
    };
    let status = match case.status {
        CaseStatus::Open => Text::new("post.status_open"),
        CaseStatus::Claimed => Text::new("post.status_claimed").arg(
            "who",
            case.claimed_by
                .as_ref()
                .map(|c| Arg::Actor(c.clone()))
                .unwrap_or(Arg::code("")),
        ),
        CaseStatus::Closed => Text::new("post.status_closed")
            .arg("outcome", Arg::text(case.outcome.as_deref().unwrap_or(""))),
    };
    let mut buttons = Vec::new();
    if primary && case.status != CaseStatus::Closed {
        buttons.push(if case.status == CaseStatus::Claimed {
            Button {
                kind: ButtonKind::Release,
                label: Text::new("post.button_release"),
                enabled: true,
            }
        } else {
            Button {
                kind: ButtonKind::Claim,
                label: Text::new("post.button_claim"),
                enabled: true,
            }
        });
        buttons.push(Button {
            kind: ButtonKind::Forward,
            label: Text::new("post.button_forward"),
            enabled: true,
        });
        buttons.push(Button {
            kind: ButtonKind::Advance,
            label: Text::new("post.button_advance")
                .arg("to", Arg::code(&(case.step + 1).min(LAST_STEP).to_string())),
            enabled: case.step < LAST_STEP,
        });
        buttons.push(Button {
            kind: ButtonKind::Close,
            label: Text::new("post.button_close"),
            enabled: true,
        });
    }
    PostParts {
        primary,
        head,
        intro,
        hub,
        status,
        buttons,
    }
}
