//! Runs the desk's decisions against the store: loads what the desk needs
//! to see of a case, asks [`crate::desk::decide`], and applies the
//! accepted changes and audit entries. Shared by every adapter (Discord,
//! Slack, the terminal's `madoguchi cases`), which then render and post
//! the decision's texts.

use crate::desk::{self, Action, Actor, CaseView, Change, Decision, Effects, Network, Text};
use crate::domain::ids::CaseId;
use crate::store::{CaseRecord, ForwardCase, ForwardRequest, Store, StoreError};
use chrono::{DateTime, Utc};

/// What the desk sees of a case, or `None` when there is no such case.
pub async fn load(store: &dyn Store, id: CaseId) -> Result<Option<CaseView>, StoreError> {
    let Some(case) = store.case(id).await? else {
        return Ok(None);
    };
    let consents = store.consents(&case.user).await?;
    let posts = store.case_posts(id).await?;
    // A forgotten owner's case is kept as a tombstone for the audit
    // trail, but is no longer among the owner's cases.
    let forgotten = !store
        .cases_of_user(&case.user)
        .await?
        .iter()
        .any(|c| c.id == id);
    let pending = store.pending_forward_requests_of_case(id).await?;
    // The case arrived at its present hub with its last forward (each
    // forward writes one audit entry named by `CaseChange::action`).
    let hub_since = store
        .audit(Some(id))
        .await?
        .iter()
        .filter(|a| a.action == "forward")
        .map(|a| a.at)
        .max()
        .unwrap_or(case.created_at);
    Ok(Some(CaseView {
        case,
        consents,
        posts,
        forgotten,
        pending,
        hub_since,
    }))
}

/// The result of an action that went through the desk.
#[derive(Debug)]
pub enum Outcome {
    Refused(Text),
    Done {
        /// The case as it was when the action was decided.
        before: Box<CaseView>,
        effects: Effects,
        applied: Applied,
    },
}

/// What applying the changes gave back.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The case after the changes.
    pub case: CaseRecord,
    /// The forward request the changes created, if any.
    pub request: Option<i64>,
}

/// Decides a staff action on a case and applies it. A change the store
/// refuses because the case changed in between (`Conflict`) is decided
/// again once on the fresh state, so the refusal says what happened (e.g.
/// who claimed it first).
pub async fn act(
    store: &dyn Store,
    network: &Network,
    actor: &Actor,
    id: CaseId,
    from_hub: Option<&str>,
    action: Action,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    for attempt in 0..2 {
        let Some(view) = load(store, id).await? else {
            return Ok(Outcome::Refused(Text::new("refused.unknown_case")));
        };
        let req = desk::Request {
            actor,
            from_hub,
            action: action.clone(),
            now,
        };
        let effects = match desk::decide(network, &view, &req) {
            Decision::Refused(t) => return Ok(Outcome::Refused(t)),
            Decision::Accepted(fx) => fx,
        };
        match apply(store, &view, &effects, now).await {
            Ok(applied) => {
                crate::network::worker::after_change(
                    store,
                    &network.reminders,
                    &applied.case,
                    applied.request,
                    now,
                )
                .await;
                return Ok(Outcome::Done {
                    before: Box::new(view),
                    effects,
                    applied,
                });
            }
            Err(StoreError::Conflict(_)) if attempt == 0 => continue,
            Err(StoreError::Conflict(_)) => {
                return Ok(Outcome::Refused(Text::new("refused.not_now")))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Outcome::Refused(Text::new("refused.not_now")))
}

/// The owner's answer to a forward request, decided and applied.
pub async fn owner_answer(
    store: &dyn Store,
    network: &Network,
    req: &ForwardRequest,
    yes: bool,
    wording: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let Some(view) = load(store, req.case).await? else {
        return Ok(Outcome::Refused(Text::new("owner.forward_impossible")));
    };
    let effects = match desk::decide_owner_answer(network, &view, req, yes, wording) {
        Decision::Refused(t) => return Ok(Outcome::Refused(t)),
        Decision::Accepted(fx) => fx,
    };
    match apply(store, &view, &effects, now).await {
        Ok(applied) => {
            crate::network::worker::after_change(
                store,
                &network.reminders,
                &applied.case,
                applied.request,
                now,
            )
            .await;
            Ok(Outcome::Done {
                before: Box::new(view),
                effects,
                applied,
            })
        }
        // A yes meets a closed case or an answered request; a no can only
        // meet an answered request.
        Err(StoreError::Conflict(_)) => Ok(Outcome::Refused(Text::new(if yes {
            "owner.forward_impossible"
        } else {
            "owner.already_answered"
        }))),
        Err(e) => Err(e),
    }
}

/// Applies the changes in order (each is one store transaction), then the
/// audit entries that do not wait for relayed messages (`"$messages"`,
/// written by [`audit_relay`] once they are sent). A declined request that
/// was no longer pending stops with `Conflict` before anything is written.
pub async fn apply(
    store: &dyn Store,
    view: &CaseView,
    fx: &Effects,
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let mut case = view.case.clone();
    let mut request = None;
    for c in &fx.changes {
        match c {
            Change::Update { change } => {
                case = store.update_case(case.id, change, &fx.actor, now).await?;
            }
            Change::Forward {
                to_hub,
                reason,
                consent,
                request: req,
                delivery,
            } => {
                case = store
                    .forward_case(&ForwardCase {
                        case: case.id,
                        to_hub,
                        reason,
                        actor: &fx.actor,
                        consent: consent.as_ref(),
                        request: *req,
                        delivery: delivery.clone(),
                        now,
                    })
                    .await?;
            }
            Change::RequestForward { request: r } => {
                request = Some(store.create_forward_request(r, now).await?);
            }
            Change::DecideRequest { request: r, status } => {
                if !store.decide_forward_request(*r, *status, now).await? {
                    return Err(StoreError::Conflict(format!(
                        "forward request {r} was already answered"
                    )));
                }
            }
            Change::Withdraw { request: r } => {
                // False when the owner answered in the meantime: the
                // answer stands, and there is nothing left to withdraw.
                store
                    .decide_forward_request(*r, crate::store::ForwardStatus::Withdrawn, now)
                    .await?;
            }
            Change::RecordConsent { consent } => {
                store
                    .record_consent(case.session, Some(case.id), &case.user, consent, now)
                    .await?;
            }
        }
    }
    for a in &fx.audit {
        if a.detail.to_string().contains("\"$messages\"") {
            continue;
        }
        let mut detail = a.detail.clone();
        if let (Some(r), Some(obj)) = (request, detail.as_object_mut()) {
            for v in obj.values_mut() {
                if v == "$request" {
                    *v = serde_json::json!(r);
                }
            }
        }
        store
            .append_audit(Some(case.id), &a.actor, &a.action, &detail, now)
            .await?;
    }
    Ok(Applied { case, request })
}

/// Writes the audit entries that name the relayed messages, once sent.
pub async fn audit_relay(
    store: &dyn Store,
    case: CaseId,
    fx: &Effects,
    messages: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for a in &fx.audit {
        if !a.detail.to_string().contains("\"$messages\"") {
            continue;
        }
        let mut detail = a.detail.clone();
        if let Some(obj) = detail.as_object_mut() {
            for v in obj.values_mut() {
                if v == "$messages" {
                    *v = serde_json::json!(messages);
                }
            }
        }
        store
            .append_audit(Some(case), &a.actor, &a.action, &detail, now)
            .await?;
    }
    Ok(())
}
