//! The relay between an owner and the staff of the hub handling their
//! case, on any platform: a staff reply (from a Discord or Slack thread,
//! or `madoguchi cases reply`) to the owner's DM on the owner's platform,
//! an owner's later message into the case's thread on the hub's platform,
//! a consent request for a forward, and notes of actions taken where the
//! thread is not at hand (the terminal).
//!
//! Every such message is a row of the relay's outbox (`relays`, see
//! `migrations/sqlite/0008_relay_outbox.sql`), queued here and sent by the
//! [`crate::outbox`] worker through the [`crate::outbox::Sender`] of the
//! target platform, leased and retried like case deliveries. A row holds
//! the message as desk texts ([`Body`]), rendered by the sender for its
//! medium (so owner text is escaped the way that platform needs) and in
//! the reader's language. The body is erased once the message is sent (or
//! fails for good, or the owner is forgotten); what stays is the ids of
//! the posted messages, never their text.
//!
//! [`plan`] is pure (unit tests below); [`queue`] writes its rows.

use crate::desk::{AuditNew, ConsentAsk, Effects, Text};
use crate::store::{
    CasePost, CaseRecord, DeliveryRecord, NewRelay, RelayKind, RelayRecord, Store, StoreError,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The platforms whose senders post relay messages (DMs and case
/// threads). The local inbox has neither.
pub const TRANSPORTS: &[&str] = &["discord", "slack"];

/// What a relay message says, kept only until it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// Desk texts, rendered one after the other (one line break apart).
    pub texts: Vec<Text>,
    /// A forward request the owner answers with yes / no buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<i64>,
    /// Audit entries naming `"$messages"` (which [`queue`] writes at once,
    /// naming the relay row instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditNew>,
    /// Mention the hub's staff (role, user group or members): the case was
    /// forwarded to a hub that already had a copy, whose post is only
    /// edited, so without it nobody there would be told. A hub without a
    /// post gets a new one, which mentions them itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ping: bool,
}

impl Body {
    pub fn parse(s: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the owner consults on {0}, where the bot cannot send them messages: reach them another way (their contact details are on the case sheet)")]
    OwnerUnreachable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to relay of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct What {
    /// The decision's messages for the owner (`Effects::owner`).
    pub owner: bool,
    /// The decision's notes, into each hub's case thread. Adapters that
    /// post notes themselves (a Discord or Slack thread at hand) leave this
    /// off; the terminal and an owner's message turn it on.
    pub notes: bool,
}

/// Where the case's thread for `hub` is: the platform of its post, or of
/// its delivery while the post is not made yet. A delivery that failed
/// for good counts too: a message for its thread is queued and waits
/// there, visibly, until the case is posted (see
/// [`crate::outbox::waiting_for_post`]), instead of being dropped.
pub fn hub_transport(
    hub: &str,
    posts: &[CasePost],
    deliveries: &[DeliveryRecord],
) -> Option<String> {
    posts
        .iter()
        .filter(|p| p.hub_id == hub)
        .map(|p| p.transport.as_str())
        .chain(
            deliveries
                .iter()
                .filter(|d| d.hub_id == hub)
                .map(|d| d.transport.as_str()),
        )
        .find(|t| TRANSPORTS.contains(t))
        .map(str::to_string)
}

/// The relay rows for a decision on `case` (pure). `ask` is the consent
/// request the decision created, with its id. Audit entries that name
/// `"$messages"` travel with the message they describe: the owner's when
/// there is one, else the first note's. A note for a hub without a chat
/// thread (a local inbox only) is not relayed; a message for an owner on
/// a platform without a relay is refused, and nothing is queued then.
pub fn plan(
    case: &CaseRecord,
    posts: &[CasePost],
    deliveries: &[DeliveryRecord],
    fx: &Effects,
    ask: Option<(i64, &ConsentAsk)>,
    what: What,
) -> Result<Vec<NewRelay>, RelayError> {
    let mut out = Vec::new();
    let mut audit: Vec<AuditNew> = fx
        .audit
        .iter()
        .filter(|a| a.detail.to_string().contains("\"$messages\""))
        .cloned()
        .collect();
    let owner_texts = if what.owner { fx.owner.clone() } else { vec![] };
    if !owner_texts.is_empty() || ask.is_some() {
        let transport = case.user.transport().as_str();
        if !TRANSPORTS.contains(&transport) {
            return Err(RelayError::OwnerUnreachable(transport.to_string()));
        }
        let row = |body: Body| NewRelay {
            case: case.id,
            user: case.user.clone(),
            kind: RelayKind::ToOwner,
            transport: transport.to_string(),
            target: case.user.id().to_string(),
            body: serde_json::to_string(&body).unwrap_or_default(),
        };
        if !owner_texts.is_empty() {
            out.push(row(Body {
                texts: owner_texts,
                ask: None,
                audit: std::mem::take(&mut audit),
                ping: false,
            }));
        }
        if let Some((request, a)) = ask {
            out.push(row(Body {
                texts: vec![a.ask.clone()],
                ask: Some(request),
                audit: vec![],
                ping: false,
            }));
        }
    }
    if what.notes {
        let mut hubs: Vec<&str> = Vec::new();
        for n in &fx.notes {
            if !hubs.contains(&n.hub.as_str()) {
                hubs.push(&n.hub);
            }
        }
        for hub in hubs {
            let Some(transport) = hub_transport(hub, posts, deliveries) else {
                continue;
            };
            let texts: Vec<Text> = fx
                .notes
                .iter()
                .filter(|n| n.hub == hub)
                .map(|n| n.text.clone())
                .collect();
            // The hub the case was handed to, whose copy's post is only
            // edited, is called by a mention, in its thread: the decision
            // says which hubs (`staff_to_call`), and the post must exist
            // for the thread to be there.
            let ping = fx.staff_to_call().contains(&hub) && posts.iter().any(|p| p.hub_id == hub);
            out.push(NewRelay {
                case: case.id,
                user: case.user.clone(),
                kind: RelayKind::ToHub,
                transport,
                target: hub.to_string(),
                body: serde_json::to_string(&Body {
                    texts,
                    ask: None,
                    audit: std::mem::take(&mut audit),
                    ping,
                })
                .unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Queues the relay rows for a decision (one transaction) and returns
/// their ids; the caller wakes the outbox if one runs in its process.
pub async fn queue(
    store: &dyn Store,
    case: &CaseRecord,
    fx: &Effects,
    ask: Option<(i64, &ConsentAsk)>,
    what: What,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, RelayError> {
    let posts = store.case_posts(case.id).await?;
    let deliveries = store.deliveries(case.id).await?;
    let mut rows = plan(case, &posts, &deliveries, fx, ask, what)?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    // The audit entries are written now, naming the queued message (its
    // row keeps the ids of what is posted), so the case's history is in
    // the order things were asked for, whenever they are sent.
    let mut audit = Vec::new();
    for (i, r) in rows.iter_mut().enumerate() {
        if let Ok(mut b) = Body::parse(&r.body) {
            if !b.audit.is_empty() {
                audit.extend(b.audit.drain(..).map(|a| (i, a)));
                r.body = serde_json::to_string(&b).unwrap_or_default();
            }
        }
    }
    let ids = store.queue_relays(&rows, now).await?;
    for (i, a) in audit {
        let mut detail = a.detail.clone();
        if let Some(obj) = detail.as_object_mut() {
            obj.retain(|_, v| v != "$messages");
            obj.insert("relay".into(), serde_json::json!(ids[i]));
        }
        store
            .append_audit(Some(case.id), &a.actor, &a.action, &detail, now)
            .await?;
    }
    Ok(ids)
}

/// Queues the decision's notes for the hubs whose case thread is not on
/// `platform` (an adapter posts the notes for its own platform's threads
/// itself; a case forwarded from a Slack hub to a Discord hub has its
/// note there too).
pub async fn queue_notes_elsewhere(
    store: &dyn Store,
    case: &CaseRecord,
    fx: &Effects,
    platform: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, RelayError> {
    let posts = store.case_posts(case.id).await?;
    let deliveries = store.deliveries(case.id).await?;
    let notes: Vec<_> = fx
        .notes
        .iter()
        .filter(|n| hub_transport(&n.hub, &posts, &deliveries).is_some_and(|t| t != platform))
        .cloned()
        .collect();
    if notes.is_empty() {
        return Ok(vec![]);
    }
    let only_notes = Effects {
        actor: fx.actor.clone(),
        notes,
        ..Effects::default()
    };
    let what = What {
        owner: false,
        notes: true,
    };
    queue(store, case, &only_notes, None, what, now).await
}

/// The language a relay message is read in: the owner's (of their last
/// consultation) for a message to them, Japanese for staff (as every
/// staff text on the hubs' platforms).
pub async fn reader_lang(
    store: &dyn Store,
    r: &crate::store::RelayRecord,
    default: crate::script::Lang,
) -> crate::script::Lang {
    match r.kind {
        RelayKind::ToHub | RelayKind::Erase | RelayKind::Refresh => crate::script::Lang::Ja,
        RelayKind::ToOwner => match store.latest_session(&r.user).await {
            Ok(Some(s)) => s.lang,
            _ => default,
        },
    }
}

/// An erase job ([`RelayKind::Erase`]): what one platform holds of a
/// forgotten owner's case, by id only, for that platform's sender to
/// tombstone (the case posts) and delete (relayed messages and the rest
/// of long case sheets). Queued by the platform where the owner forgot,
/// so a hub on another platform (served by this process or by another
/// instance later) is cleaned too, with the outbox's retries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Erase {
    pub posts: Vec<ErasePost>,
    pub messages: Vec<EraseMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasePost {
    pub hub_id: String,
    pub channel_id: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EraseMessage {
    pub channel_id: String,
    pub message_id: String,
}

impl Erase {
    pub fn parse(s: &str) -> Result<Erase, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// The posts as the store's records, for the platform's tombstone code.
    pub fn case_posts(
        &self,
        case: crate::domain::CaseId,
        transport: &str,
        at: DateTime<Utc>,
    ) -> Vec<CasePost> {
        self.posts
            .iter()
            .map(|p| CasePost {
                case,
                hub_id: p.hub_id.clone(),
                transport: transport.to_string(),
                channel_id: p.channel_id.clone(),
                message_id: p.message_id.clone(),
                thread_id: p.thread_id.clone(),
                created_at: at,
            })
            .collect()
    }
}

/// The platform of a relayed message's channel: relay_messages keep no
/// transport, but Discord's ids are numbers and Slack's start with a
/// capital letter (`C…`, `D…`, `G…`).
pub fn message_transport(channel_id: &str) -> Option<&'static str> {
    if !channel_id.is_empty() && channel_id.bytes().all(|b| b.is_ascii_digit()) {
        Some("discord")
    } else if channel_id.starts_with(|c: char| c.is_ascii_uppercase()) {
        Some("slack")
    } else {
        None
    }
}

/// The erase jobs for what platforms other than `here` hold of a
/// forgotten owner (pure): one per case and platform, from the case posts
/// and relayed messages read before the store forgot them. Only the
/// owner's own words are deleted (`to_staff` and sheet pieces), as each
/// platform's own forget does.
pub fn plan_erase(
    user: &crate::domain::UserKey,
    here: &str,
    posts: &[CasePost],
    messages: &[crate::store::RelayMessage],
) -> Vec<NewRelay> {
    let mut jobs: std::collections::BTreeMap<(i64, &str), Erase> = Default::default();
    for p in posts
        .iter()
        .filter(|p| p.transport != here && TRANSPORTS.contains(&p.transport.as_str()))
    {
        let t = TRANSPORTS
            .iter()
            .find(|t| **t == p.transport)
            .copied()
            .unwrap_or_default();
        let e = jobs.entry((p.case.0, t)).or_default();
        if !e
            .posts
            .iter()
            .any(|q| q.channel_id == p.channel_id && q.message_id == p.message_id)
        {
            e.posts.push(ErasePost {
                hub_id: p.hub_id.clone(),
                channel_id: p.channel_id.clone(),
                message_id: p.message_id.clone(),
                thread_id: p.thread_id.clone(),
            });
        }
    }
    for m in messages
        .iter()
        .filter(|m| m.direction == "to_staff" || m.direction == SHEET_PIECE)
    {
        let Some(t) = message_transport(&m.channel_id).filter(|t| *t != here) else {
            continue;
        };
        let e = jobs.entry((m.case.0, t)).or_default();
        if !e
            .messages
            .iter()
            .any(|q| q.channel_id == m.channel_id && q.message_id == m.message_id)
        {
            e.messages.push(EraseMessage {
                channel_id: m.channel_id.clone(),
                message_id: m.message_id.clone(),
            });
        }
    }
    jobs.into_iter()
        .map(|((case, t), e)| NewRelay {
            case: crate::domain::CaseId(case),
            user: user.clone(),
            kind: RelayKind::Erase,
            transport: t.to_string(),
            target: String::new(),
            body: serde_json::to_string(&e).unwrap_or_default(),
        })
        .collect()
}

/// How senders record a piece of a long case sheet posted in the case's
/// thread (`discord::outbox`, `slack::hub`).
pub const SHEET_PIECE: &str = "case_sheet";

/// Queues [`plan_erase`]'s jobs.
pub async fn queue_erase(
    store: &dyn Store,
    user: &crate::domain::UserKey,
    here: &str,
    posts: &[CasePost],
    messages: &[crate::store::RelayMessage],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let jobs = plan_erase(user, here, posts, messages);
    if !jobs.is_empty() {
        store.queue_relays(&jobs, now).await?;
    }
    Ok(jobs.len())
}

/// [`queue_erase`] for a platform's `/forget`: wakes that platform's
/// outbox (`wake`) when jobs were queued, and logs a failure, which does
/// not undo what was deleted here (the owner is told what was deleted;
/// an administrator can run `forget` again).
pub async fn queue_erase_and_wake(
    store: &dyn Store,
    user: &crate::domain::UserKey,
    here: &str,
    posts: &[CasePost],
    messages: &[crate::store::RelayMessage],
    now: DateTime<Utc>,
    wake: impl FnOnce(),
) {
    match queue_erase(store, user, here, posts, messages, now).await {
        Ok(0) => {}
        Ok(_) => wake(),
        Err(e) => {
            tracing::error!(user = %user, error = %e, "could not queue the erasure of the owner's posts on other platforms")
        }
    }
}

/// A refresh job ([`RelayKind::Refresh`]): the platform's sender brings
/// its posts of the case up to date with the rendering its adapter uses
/// after a button press, from the case as it is when the job runs. So a
/// change made where the posts are not at hand (the terminal, a button on
/// another platform, an owner's answer in a DM) shows on every post, even
/// when `madoguchi run` starts only later, with the outbox's retries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// The posts' text is rewritten too, not only the status and the
    /// buttons: after a forward the hub that had a copy holds the working
    /// post and the old hub's post becomes a copy.
    #[serde(default)]
    pub text: bool,
}

impl Refresh {
    pub fn parse(s: &str) -> Result<Refresh, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// What a decision asks of the case's posts: nothing when it shows
    /// nothing new on them (a note, a forward waiting for the owner).
    pub fn of(fx: &Effects) -> Option<Refresh> {
        fx.refresh_posts.then(|| Refresh {
            text: fx
                .changes
                .iter()
                .any(|c| matches!(c, crate::desk::Change::Forward { .. })),
        })
    }
}

/// The refresh jobs after a change of `case` (pure): one for each chat
/// platform other than `here` (whose adapter edited its own posts
/// already; `None` from the terminal) that holds a post of the case.
/// None is queued for a platform that has a job waiting that was not
/// started yet (its message ids are still empty: the outbox records the
/// posts it edits before it reads the case) and rewrites at least as
/// much: that job will read the case after this change. A post not made
/// yet needs nothing: its delivery renders the case when it is sent.
pub fn plan_refresh(
    case: &CaseRecord,
    posts: &[CasePost],
    queued: &[RelayRecord],
    here: Option<&str>,
    job: Refresh,
) -> Vec<NewRelay> {
    let waiting = |t: &str| {
        queued.iter().any(|r| {
            r.kind == RelayKind::Refresh
                && r.case == case.id
                && r.transport == t
                && r.status == crate::store::DeliveryStatus::Pending
                && r.message_ids.is_empty()
                && r.body
                    .as_deref()
                    .and_then(|b| Refresh::parse(b).ok())
                    .is_some_and(|q| q.text || !job.text)
        })
    };
    TRANSPORTS
        .iter()
        .filter(|t| Some(**t) != here)
        .filter(|t| posts.iter().any(|p| p.transport == **t))
        .filter(|t| !waiting(t))
        .map(|t| NewRelay {
            case: case.id,
            user: case.user.clone(),
            kind: RelayKind::Refresh,
            transport: t.to_string(),
            target: String::new(),
            body: serde_json::to_string(&job).unwrap_or_default(),
        })
        .collect()
}

/// Queues [`plan_refresh`]'s jobs after a change of `case` (the case as
/// changed; `job` from [`Refresh::of`] the decision); returns their ids
/// (the caller wakes the outbox if one runs in its process).
pub async fn queue_refresh(
    store: &dyn Store,
    case: &CaseRecord,
    job: Refresh,
    here: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let posts = store.case_posts(case.id).await?;
    let queued = store.relays_of_case(case.id).await?;
    let rows = plan_refresh(case, &posts, &queued, here, job);
    if rows.is_empty() {
        return Ok(vec![]);
    }
    store.queue_relays(&rows, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::{Arg, Note};
    use crate::domain::ids::{CaseId, SessionId, Transport, UserKey};
    use crate::store::{CaseStatus, DeliveryStatus};

    fn case(owner: Transport) -> CaseRecord {
        let now = chrono::Utc::now();
        CaseRecord {
            id: CaseId(3),
            session: SessionId(1),
            // Digits, as a Discord user id must be; Slack takes them too.
            user: UserKey::new(owner, "42").unwrap(),
            version: "v".into(),
            headline: "h".into(),
            summary_plain: "s".into(),
            summary_markdown: "s".into(),
            route: crate::routing::RouteDecision {
                rule: "r".into(),
                reason: "why".into(),
                primary: crate::routing::HubRef {
                    id: "a".into(),
                    name: "A".into(),
                },
                copies: vec![],
                step: 1,
                passed_over: vec![],
                follow_up: None,
            },
            hub_id: "a".into(),
            tags: vec![],
            step: 1,
            status: CaseStatus::Open,
            claimed_by: None,
            outcome: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn post(hub: &str, transport: &str) -> CasePost {
        CasePost {
            case: CaseId(3),
            hub_id: hub.into(),
            transport: transport.into(),
            channel_id: "C1".into(),
            message_id: "1.2".into(),
            thread_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    fn delivery(hub: &str, transport: &str, status: DeliveryStatus) -> DeliveryRecord {
        DeliveryRecord {
            id: 1,
            case: CaseId(3),
            hub_id: hub.into(),
            transport: transport.into(),
            target: "C1".into(),
            status,
            attempts: 0,
            next_attempt_at: chrono::Utc::now(),
            last_error: None,
            external_id: None,
            created_at: chrono::Utc::now(),
            delivered_at: None,
        }
    }

    fn reply_fx() -> Effects {
        Effects {
            actor: "slack:U9".into(),
            owner: vec![Text::new("owner.from_staff").arg("text", Arg::text("<!channel> hi"))],
            notes: vec![Note {
                hub: "a".into(),
                text: Text::new("note.replied").arg("text", Arg::text("hi")),
            }],
            audit: vec![AuditNew {
                actor: "slack:U9".into(),
                action: "relay_to_owner".into(),
                detail: serde_json::json!({ "messages": "$messages" }),
            }],
            ..Effects::default()
        }
    }

    /// An owner's message for a hub whose case post failed for good is
    /// queued for that hub's platform (where it waits for the post to be
    /// made again), not dropped.
    #[test]
    fn a_note_for_a_hub_whose_post_failed_is_queued_not_dropped() {
        let c = case(Transport::Discord);
        let rows = plan(
            &c,
            &[],
            &[delivery("a", "slack", DeliveryStatus::Failed)],
            &reply_fx(),
            None,
            What {
                owner: false,
                notes: true,
            },
        )
        .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                rows[0].kind,
                rows[0].transport.as_str(),
                rows[0].target.as_str()
            ),
            (RelayKind::ToHub, "slack", "a")
        );
    }

    #[test]
    fn a_reply_goes_to_the_owner_on_their_platform_with_its_audit_entry() {
        let c = case(Transport::Discord);
        let rows = plan(
            &c,
            &[post("a", "slack")],
            &[],
            &reply_fx(),
            None,
            What {
                owner: true,
                notes: false,
            },
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, RelayKind::ToOwner);
        assert_eq!(rows[0].transport, "discord");
        assert_eq!(rows[0].target, "42");
        let b = Body::parse(&rows[0].body).unwrap();
        assert_eq!(b.texts[0].key, "owner.from_staff");
        assert_eq!(b.audit.len(), 1);
    }

    #[test]
    fn notes_go_to_the_platform_of_the_hubs_post_or_pending_delivery() {
        let c = case(Transport::Slack);
        let what = What {
            owner: true,
            notes: true,
        };
        let rows = plan(&c, &[post("a", "discord")], &[], &reply_fx(), None, what).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[1].kind,
                rows[1].transport.as_str(),
                rows[1].target.as_str()
            ),
            (RelayKind::ToHub, "discord", "a")
        );
        // The audit entry travels once, with the owner's message.
        assert!(Body::parse(&rows[1].body).unwrap().audit.is_empty());
        // Not posted yet: the delivery's platform; the sender waits for the post.
        let rows = plan(
            &c,
            &[],
            &[
                delivery("a", "local", DeliveryStatus::Delivered),
                delivery("a", "slack", DeliveryStatus::Pending),
            ],
            &reply_fx(),
            None,
            what,
        )
        .unwrap();
        assert_eq!(rows[1].transport, "slack");
        // A hub with only a local inbox has no thread: no note is queued.
        let rows = plan(
            &c,
            &[],
            &[delivery("a", "local", DeliveryStatus::Delivered)],
            &reply_fx(),
            None,
            what,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn an_owners_message_carries_its_audit_entry_into_the_thread() {
        let c = case(Transport::Slack);
        let fx = crate::desk::owner_message(&c, "<@U1> help", false);
        let rows = plan(
            &c,
            &[post("a", "discord")],
            &[],
            &fx,
            None,
            What {
                owner: false,
                notes: true,
            },
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        let b = Body::parse(&rows[0].body).unwrap();
        assert_eq!(b.audit[0].action, "relay_to_staff");
        assert_eq!(b.texts[0].get("text"), Some(&Arg::text("<@U1> help")));
    }

    #[test]
    fn a_consent_request_is_queued_for_the_owner_and_a_terminal_owner_is_refused() {
        let ask = ConsentAsk {
            to_hub: "b".into(),
            ask: Text::new("owner.forward_ask"),
        };
        let c = case(Transport::Slack);
        let none = What {
            owner: false,
            notes: false,
        };
        let rows = plan(&c, &[], &[], &Effects::default(), Some((9, &ask)), none).unwrap();
        assert_eq!(Body::parse(&rows[0].body).unwrap().ask, Some(9));
        let t = case(Transport::Terminal);
        assert!(matches!(
            plan(&t, &[], &[], &reply_fx(), None, What { owner: true, notes: true }),
            Err(RelayError::OwnerUnreachable(p)) if p == "terminal"
        ));
    }

    #[test]
    fn erase_jobs_cover_other_platforms_only_and_the_owners_words_only() {
        let user = UserKey::new(Transport::Discord, "400000000000000001").unwrap();
        let at = DateTime::<Utc>::default();
        let post = |case: i64, transport: &str, channel: &str, msg: &str| CasePost {
            case: CaseId(case),
            hub_id: "hub".into(),
            transport: transport.into(),
            channel_id: channel.into(),
            message_id: msg.into(),
            thread_id: Some(msg.into()),
            created_at: at,
        };
        let msg =
            |case: i64, direction: &str, channel: &str, id: &str| crate::store::RelayMessage {
                case: CaseId(case),
                user: user.clone(),
                direction: direction.into(),
                channel_id: channel.into(),
                message_id: id.into(),
                at,
            };
        let posts = [
            post(1, "discord", "101", "9001"),
            post(1, "slack", "C0PRO", "1.1"),
            post(1, "slack", "C0PRO", "1.1"),
            post(2, "slack", "C0CH", "2.1"),
            post(2, "local", "inbox", "x"),
        ];
        let messages = [
            msg(1, "to_staff", "C0PRO", "1.2"),
            msg(1, "case_sheet", "C0PRO", "1.3"),
            msg(1, "to_owner", "D0DM", "1.4"),
            msg(1, "to_staff", "9001", "9002"),
        ];
        let jobs = plan_erase(&user, "discord", &posts, &messages);
        assert_eq!(jobs.len(), 2, "{jobs:#?}");
        assert!(jobs
            .iter()
            .all(|j| j.kind == RelayKind::Erase && j.transport == "slack"));
        let one = Erase::parse(&jobs[0].body).unwrap();
        assert_eq!(jobs[0].case, CaseId(1));
        assert_eq!(one.posts.len(), 1, "a post recorded twice is erased once");
        let ids: Vec<&str> = one.messages.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["1.2", "1.3"], "only the owner's words, only Slack's");
        assert_eq!(
            Erase::parse(&jobs[1].body).unwrap().posts[0].channel_id,
            "C0CH"
        );
        // Forgetting on Slack: only the Discord post and message.
        let jobs = plan_erase(&user, "slack", &posts, &messages);
        assert_eq!(jobs.len(), 1);
        let e = Erase::parse(&jobs[0].body).unwrap();
        assert_eq!((e.posts.len(), e.messages.len()), (1, 1));
        assert!(plan_erase(&user, "discord", &posts[..1], &messages[3..]).is_empty());
    }

    fn refresh_row(
        transport: &str,
        text: bool,
        started: bool,
        status: DeliveryStatus,
    ) -> RelayRecord {
        RelayRecord {
            id: 7,
            case: CaseId(3),
            user: UserKey::new(Transport::Slack, "U42").unwrap(),
            kind: RelayKind::Refresh,
            transport: transport.into(),
            target: String::new(),
            body: Some(serde_json::to_string(&Refresh { text }).unwrap()),
            status,
            attempts: 0,
            next_attempt_at: chrono::Utc::now(),
            last_error: None,
            message_ids: if started { vec!["1.2".into()] } else { vec![] },
            created_at: chrono::Utc::now(),
            delivered_at: None,
        }
    }

    #[test]
    fn a_refresh_is_planned_per_platform_with_posts_except_the_one_that_refreshed_itself() {
        let c = case(Transport::Slack);
        let posts = [
            post("a", "slack"),
            post("b", "slack"),
            post("c", "discord"),
            post("d", "local"),
        ];
        let job = Refresh { text: false };
        let rows = plan_refresh(&c, &posts, &[], None, job);
        let ts: Vec<&str> = rows.iter().map(|r| r.transport.as_str()).collect();
        assert_eq!(
            ts,
            ["discord", "slack"],
            "one row per chat platform, none for the inbox"
        );
        assert!(rows
            .iter()
            .all(|r| r.kind == RelayKind::Refresh && r.case == c.id));
        assert_eq!(Refresh::parse(&rows[0].body).unwrap(), job);
        let rows = plan_refresh(&c, &posts, &[], Some("slack"), job);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].transport, "discord");
        // A post not made yet needs none: its delivery renders the case.
        assert!(plan_refresh(&c, &[], &[], None, job).is_empty());
    }

    #[test]
    fn a_refresh_waiting_unstarted_makes_another_redundant_but_a_started_one_does_not() {
        let c = case(Transport::Slack);
        let posts = [post("a", "slack")];
        let plain = Refresh { text: false };
        let text = Refresh { text: true };
        let waiting = [refresh_row("slack", false, false, DeliveryStatus::Pending)];
        assert!(plan_refresh(&c, &posts, &waiting, None, plain).is_empty());
        // It would not rewrite the text a forward needs.
        assert_eq!(plan_refresh(&c, &posts, &waiting, None, text).len(), 1);
        let waiting_text = [refresh_row("slack", true, false, DeliveryStatus::Pending)];
        assert!(plan_refresh(&c, &posts, &waiting_text, None, plain).is_empty());
        // Started (it may have read the case before this change), sent,
        // failed, or for another platform: a new one is queued.
        for other in [
            refresh_row("slack", true, true, DeliveryStatus::Pending),
            refresh_row("slack", true, false, DeliveryStatus::Delivered),
            refresh_row("slack", true, false, DeliveryStatus::Failed),
            refresh_row("discord", true, false, DeliveryStatus::Pending),
        ] {
            assert_eq!(
                plan_refresh(&c, &posts, std::slice::from_ref(&other), None, plain).len(),
                1,
                "{other:?}"
            );
        }
    }

    #[test]
    fn only_decisions_that_change_the_posts_refresh_them_and_a_forward_rewrites_the_text() {
        assert_eq!(Refresh::of(&reply_fx()), None);
        let fx = Effects {
            refresh_posts: true,
            ..Effects::default()
        };
        assert_eq!(Refresh::of(&fx), Some(Refresh { text: false }));
    }
}
