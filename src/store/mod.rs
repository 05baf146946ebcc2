//! Storage behind one trait, with SQLite as the embedded default and
//! PostgreSQL for deployments with several bot instances.
//!
//! All SQL lives in the implementations; the rest of the crate speaks in
//! the records below. A step of a consultation is committed in one
//! transaction ([`Store::commit_step`]) so that the new session state, the
//! answers, the consent record, the case and its deliveries are durable
//! together, before the bot replies.

pub mod batch;
pub mod copy;
pub mod facts;
mod plan;
pub mod postgres;
pub mod sqlite;
pub mod walsync;

use crate::answer::AnswerValue;
use crate::domain::ids::{CaseId, SessionId, UserKey};
use crate::engine::{ConsentRecord, Effect, SessionState, Status};
use crate::routing::{HubRef, RouteDecision};
use crate::script::Lang;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}; the database may belong to a newer madoguchi, use a matching version or a new --db file")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable ({what}): {detail}; the row may have been edited by hand")]
    Corrupt { what: &'static str, detail: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The step was computed from a session revision that is no longer the
    /// stored one (another process changed or deleted the session). Nothing
    /// of the step was written; the caller reloads the session and runs the
    /// input again.
    #[error("sessions {0:?} changed since they were read; reload them and try again")]
    Stale(Vec<SessionId>),
    /// New sessions were refused because their owners have sessions that
    /// the steps presumed absent ([`Presumption`]). Nothing of those steps
    /// was written; the caller reads the owners' sessions and runs the
    /// input again. The owners are named so that the rest of a batch can
    /// be committed without them (the message leaves them out: it may be
    /// logged).
    #[error("{} owners already have sessions the step presumed absent; read them and run the input again", .0.len())]
    NotNew(Vec<UserKey>),
    /// The step would record consent with wording the owner could not
    /// have read, or a case with nothing to deliver. Nothing of the step
    /// was written. It comes from a broken script template; the owner's
    /// answers so far are kept.
    #[error(
        "refused a step: {0}; nothing was written, check the script with `madoguchi dialogs check`"
    )]
    Unfit(Unfit),
    /// The disk did not confirm a write (a failed fsync). The store writes
    /// nothing more until the process is restarted and the database is
    /// opened again from what is on disk (see [`walsync`]).
    #[error("the disk did not confirm a write ({0}); nothing more is written until madoguchi is restarted: check the disk (its free space and the system log), then restart madoguchi")]
    WriteFailed(String),
}

/// What makes a step unfit to store (see [`check_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    #[error("the consent wording is empty")]
    EmptyConsentWording,
    #[error("the consent wording still holds template tags")]
    UnrenderedConsentWording,
    #[error("the case sheet is empty")]
    EmptySheet,
    #[error("the case headline is empty")]
    EmptyHeadline,
}

/// The consent half of [`check_step`], for every path that records a
/// consent (a step, a re-consent, a forward).
pub fn check_consent(c: &ConsentRecord) -> Result<()> {
    if c.wording.trim().is_empty() {
        return Err(StoreError::Unfit(Unfit::EmptyConsentWording));
    }
    if let Some(open) = c.wording.find("{{") {
        if c.wording[open..].contains("}}") {
            return Err(StoreError::Unfit(Unfit::UnrenderedConsentWording));
        }
    }
    Ok(())
}

/// Returns once `store` has stopped writing ([`Store::write_failure`]),
/// looking every `every`.
pub async fn until_write_failure(store: &dyn Store, every: std::time::Duration) -> StoreError {
    loop {
        if let Some(e) = store.write_failure() {
            return StoreError::WriteFailed(e);
        }
        tokio::time::sleep(every).await;
    }
}

/// The store's invariant on what a step records: no consent whose wording
/// is empty or still holds a template tag (`{{…}}`), and no case whose
/// sheet or headline is empty, since that case would be delivered as is.
/// Every backend calls this in its commit path, before writing anything,
/// so a broken template can never become a consent record or a delivery.
///
/// A tag is text from `{{` to a later `}}`: rendered wording never holds
/// one unless an answer shown in it does, and consent wording shows the
/// route, not answers.
pub fn check_step(effects: &[Effect]) -> Result<()> {
    for e in effects {
        match e {
            Effect::Consent(c) => check_consent(c)?,
            Effect::CaseReady(d) => {
                check_consent(&d.consent)?;
                if d.summary_plain.trim().is_empty() || d.summary_markdown.trim().is_empty() {
                    return Err(StoreError::Unfit(Unfit::EmptySheet));
                }
                if d.headline.trim().is_empty() {
                    return Err(StoreError::Unfit(Unfit::EmptyHeadline));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The exact sources of one flow version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: String,
    pub script_id: String,
    pub lang: Lang,
    pub script_name: String,
    pub script_text: String,
    pub routing_name: String,
    pub routing_text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionUse {
    pub version: String,
    pub script_id: String,
    pub lang: Lang,
    pub created_at: DateTime<Utc>,
    pub open_sessions: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub user: UserKey,
    pub script_id: String,
    pub lang: Lang,
    pub version: String,
    pub now: DateTime<Utc>,
    /// What the step that creates the session took for granted about the
    /// owner's stored sessions.
    pub presumed: Presumption,
}

/// What a first step knew of its owner's stored sessions when it chose to
/// start a new one.
///
/// An owner the runner does not hold in its cache is nearly always a new
/// one, and reading their sessions first cost a first turn a round trip
/// to the store before its commit (the slowest turns of a busy bot). So
/// the runner may start the new session without reading, and the store
/// creates it only if the presumption holds when the transaction writes
/// it; otherwise nothing of the step is written and the commit fails with
/// [`StoreError::NotNew`]. The check runs inside the writing transaction,
/// so it holds with other processes writing the same store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Presumption {
    /// The sessions were read: the new session is created whatever is
    /// stored by now.
    #[default]
    Read,
    /// Not read; created only if the owner has no session at all.
    NoSession,
    /// Not read; created only if none of the owner's sessions is open (an
    /// explicit start ignores consultations that ended).
    NoOpenSession,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user: UserKey,
    pub script_id: String,
    pub lang: Lang,
    pub version: String,
    pub status: Status,
    pub current_node: String,
    pub state: SessionState,
    /// How many steps have been committed; a step is written only over the
    /// revision it was computed from ([`StepCommit::rev`]).
    pub rev: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One delivery to create when a case is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub hub_id: String,
    /// `local` (the terminal inbox) or `discord`.
    pub transport: String,
    pub target: String,
}

/// Everything one engine step changed, committed atomically.
#[derive(Debug)]
pub struct StepCommit<'a> {
    pub session: SessionId,
    /// The session revision the step was computed from
    /// ([`SessionRecord::rev`]; ignored for a new session). If the stored
    /// revision differs, the commit fails with [`StoreError::Stale`] and
    /// writes nothing. A committed step makes it `rev + 1`.
    pub rev: i64,
    pub now: DateTime<Utc>,
    pub state: &'a SessionState,
    pub current_node: &'a str,
    pub effects: &'a [Effect],
    /// Deliveries for a `CaseReady` effect in this step (ignored otherwise).
    pub deliveries: Vec<NewDelivery>,
    /// The first step of a new session: the session is created in the same
    /// transaction as its first step (and `session` is ignored), so a
    /// session never exists without its first step. Its id is in
    /// [`StepOutcome::created`].
    pub new_session: Option<&'a NewSession>,
    /// `state` already serialised (without its answers) as JSON, when the caller did
    /// it (the runner does, so that a group commit does not serialise every
    /// state of the batch one after another); `None` to let the store do it.
    pub state_json: Option<&'a str>,
    /// The session's status at revision `rev`, when the caller knows it.
    /// A store may then leave an unchanged status alone: rewriting it would
    /// also rewrite its index entry, which for most steps (an answer in
    /// the middle of a consultation) changes nothing. Because the step is
    /// written only over revision `rev`, this is the stored status
    /// whenever the step lands. `None`: the status is always written.
    pub prev_status: Option<Status>,
    /// The reminder timers of the case this step's `CaseReady` makes,
    /// written in the step's transaction (ignored without a case). `None`:
    /// no timers are written with the case.
    pub case_timers: Option<&'a CaseTimers>,
}

/// Makes the timers of a new case from its id and its creation time as
/// the store keeps it (PostgreSQL keeps microseconds): the timers the case
/// would get if it were read back and scheduled after the commit. The
/// runner gives them with a step, so a case and its timers land in one
/// transaction; before, they were scheduled after the step, each timer a
/// write transaction of its own that waited for the group commit's and
/// held up the next one.
#[derive(Clone)]
pub struct CaseTimers(
    pub std::sync::Arc<dyn Fn(CaseId, DateTime<Utc>) -> Vec<NewTimer> + Send + Sync>,
);

impl std::fmt::Debug for CaseTimers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaseTimers")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutcome {
    pub case: Option<CaseId>,
    /// The id of the session created by a step with `new_session`.
    pub created: Option<SessionId>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerRecord {
    pub session: SessionId,
    pub node: String,
    /// `None` when the answer was withdrawn.
    pub value: Option<AnswerValue>,
    pub raw: String,
    pub correction: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Waiting for a staff member.
    Open,
    Claimed,
    Closed,
}

impl CaseStatus {
    pub fn name(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Claimed => "claimed",
            CaseStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<CaseStatus> {
        [CaseStatus::Open, CaseStatus::Claimed, CaseStatus::Closed]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRecord {
    pub id: CaseId,
    pub session: SessionId,
    pub user: UserKey,
    pub version: String,
    pub headline: String,
    pub summary_plain: String,
    pub summary_markdown: String,
    pub route: RouteDecision,
    /// The hub currently responsible (the routed primary until forwarded).
    pub hub_id: String,
    pub tags: Vec<String>,
    pub step: u8,
    pub status: CaseStatus,
    pub claimed_by: Option<String>,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub hub_id: Option<String>,
    pub status: Option<CaseStatus>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn name(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub case: CaseId,
    pub hub_id: String,
    pub transport: String,
    pub target: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// What the transport returned (e.g. the Discord message id), so a
    /// retry after an unknown outcome can check before posting again.
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered {
        external_id: Option<String>,
    },
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Failed {
        error: String,
    },
}

/// A delivery taken by one worker until its lease runs out (see
/// [`Store::lease_deliveries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedDelivery {
    pub delivery: DeliveryRecord,
    /// The worker that held the delivery before and whose lease ran out
    /// without a recorded result (it died or hung): its attempt may or may
    /// not have reached the platform, so the sender looks for its own
    /// earlier post before sending.
    pub taken_over_from: Option<String>,
}

/// The record of one decision to share (or not) an owner's data with named
/// recipients. Kept after the owner's other data is deleted: Japan's
/// personal-information law (APPI art. 29) asks a provider to keep a record
/// of third-party provision for three years.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentRow {
    pub id: i64,
    pub session: SessionId,
    pub case: Option<CaseId>,
    pub user: UserKey,
    pub granted: bool,
    pub recipients: Vec<HubRef>,
    pub items: Vec<String>,
    pub wording: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub case: Option<CaseId>,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// What `forget` removed and what it had to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    pub sessions: u64,
    pub answers: u64,
    pub cases: u64,
    /// Consent / forwarding records kept as the law requires.
    pub consent_records_kept: u64,
    /// The relayed messages whose ids were removed (read in the same
    /// transaction, so a relay message recorded while the owner was being
    /// forgotten is among them), for the platforms to delete.
    #[serde(skip)]
    pub relayed: Vec<RelayMessage>,
}

/// Where a case was posted for one hub on a chat transport, with the
/// thread staff discuss it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CasePost {
    pub case: CaseId,
    pub hub_id: String,
    /// `discord`.
    pub transport: String,
    pub channel_id: String,
    pub message_id: String,
    pub thread_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The message that carries an owner's current question on a chat
/// transport. A press on any other message is stale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LivePrompt {
    pub user: UserKey,
    pub session: SessionId,
    pub node: String,
    pub channel_id: String,
    pub message_id: String,
    /// What the adapter needs to disable the question's controls later.
    pub data: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardStatus {
    /// Waiting for the owner's answer.
    Pending,
    Accepted,
    Declined,
    /// Superseded (the case moved or closed) or the owner deleted their data.
    Withdrawn,
    /// The owner did not answer within the network's limit.
    Lapsed,
}

impl ForwardStatus {
    pub fn name(self) -> &'static str {
        match self {
            ForwardStatus::Pending => "pending",
            ForwardStatus::Accepted => "accepted",
            ForwardStatus::Declined => "declined",
            ForwardStatus::Withdrawn => "withdrawn",
            ForwardStatus::Lapsed => "lapsed",
        }
    }
    pub fn parse(s: &str) -> Option<ForwardStatus> {
        [
            ForwardStatus::Pending,
            ForwardStatus::Accepted,
            ForwardStatus::Declined,
            ForwardStatus::Withdrawn,
            ForwardStatus::Lapsed,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// Staff want to forward a case to a hub the owner's consent does not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewForwardRequest {
    pub case: CaseId,
    pub user: UserKey,
    pub to_hub: String,
    pub reason: String,
    pub requested_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardRequest {
    pub id: i64,
    pub case: CaseId,
    pub user: UserKey,
    pub to_hub: String,
    pub reason: String,
    pub requested_by: String,
    pub status: ForwardStatus,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// A forward of a case to another hub, committed in one transaction: the
/// case change and its audit entry, the owner's new consent (when the
/// earlier one did not cover the hub), the answered request, and the
/// delivery to the new hub.
#[derive(Debug, Clone)]
pub struct ForwardCase<'a> {
    pub case: CaseId,
    pub to_hub: &'a str,
    pub reason: &'a str,
    pub actor: &'a str,
    pub consent: Option<&'a crate::engine::ConsentRecord>,
    pub request: Option<i64>,
    pub delivery: Option<NewDelivery>,
    pub now: DateTime<Utc>,
}

/// A message relayed between an owner and staff (ids only, never the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayMessage {
    pub case: CaseId,
    pub user: UserKey,
    /// `to_staff` or `to_owner`; `case_sheet` for a piece of a long case
    /// sheet the bot posted in the case's thread (it holds the owner's
    /// answers, so `/forget` deletes it like a relayed message).
    pub direction: String,
    pub channel_id: String,
    pub message_id: String,
    pub at: DateTime<Utc>,
}

/// Which way a relayed message goes (see `migrations/sqlite/0008_relay_outbox.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RelayKind {
    /// To the owner's DM on their platform; the target is the owner's id
    /// there.
    ToOwner,
    /// Into the thread of the case's post for a hub; the target is the
    /// hub's id.
    ToHub,
    /// After the owner was forgotten on another platform: turn this
    /// platform's posts of their cases into tombstones and delete the
    /// relayed messages and sheet pieces (the body lists their ids, never
    /// any text: [`crate::relay::Erase`]). The target is unused.
    Erase,
    /// Bring this platform's posts of the case up to date (status line
    /// and buttons, as after a button press), from the case as it is when
    /// the row is sent: queued after an action taken where those posts
    /// are not at hand (the terminal, another platform). The body is a
    /// [`crate::relay::Refresh`]; the target is unused.
    Refresh,
}

impl RelayKind {
    pub fn name(self) -> &'static str {
        match self {
            RelayKind::ToOwner => "to_owner",
            RelayKind::ToHub => "to_hub",
            RelayKind::Erase => "erase",
            RelayKind::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<RelayKind> {
        match s {
            "to_owner" => Some(RelayKind::ToOwner),
            "to_hub" => Some(RelayKind::ToHub),
            "erase" => Some(RelayKind::Erase),
            "refresh" => Some(RelayKind::Refresh),
            _ => None,
        }
    }
}

/// A message to queue in the relay's outbox. `body` is what the sender
/// renders (JSON, see [`crate::relay::Body`]); it is erased once sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelay {
    pub case: CaseId,
    /// The case's owner (whose data the message may carry).
    pub user: UserKey,
    pub kind: RelayKind,
    pub transport: String,
    pub target: String,
    pub body: String,
}

/// A queued relay message.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayRecord {
    pub id: i64,
    pub case: CaseId,
    pub user: UserKey,
    pub kind: RelayKind,
    pub transport: String,
    pub target: String,
    /// `None` once sent, failed for good, or the owner forgotten.
    pub body: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The platform's ids of the messages posted so far (pieces of a long
    /// message are posted one by one and recorded as they go).
    pub message_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A relay message taken by one worker until its lease runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedRelay {
    pub relay: RelayRecord,
    /// The worker whose lease ran out before it recorded a result.
    pub taken_over_from: Option<String>,
}

/// A timer to keep (see `migrations/sqlite/0005_timers.sql`): something that
/// must happen at `due_at`, named by `(kind, subject)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTimer {
    /// What the timer is for, which also says which loop handles it
    /// (e.g. `claim_reminder`, `follow_up`).
    pub kind: String,
    /// What makes this occurrence distinct among timers of its kind (e.g.
    /// `case:12/hub:kyoto-bank/open:2026-11-21T01:00:00Z`). Scheduling the
    /// same `(kind, subject)` again keeps the stored timer.
    pub subject: String,
    pub case: Option<CaseId>,
    pub due_at: DateTime<Utc>,
    /// What the handler needs; never an owner's personal data (it is not
    /// erased by `forget`, only cancelled).
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerStatus {
    /// Waiting for its time.
    Pending,
    /// Taken by one process, which is doing what the timer is for.
    Claimed,
    /// Done; never fires again.
    Fired,
    /// Withdrawn before it fired (the case moved on, the owner deleted
    /// their data); never fires.
    Cancelled,
}

impl TimerStatus {
    pub fn name(self) -> &'static str {
        match self {
            TimerStatus::Pending => "pending",
            TimerStatus::Claimed => "claimed",
            TimerStatus::Fired => "fired",
            TimerStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<TimerStatus> {
        [
            TimerStatus::Pending,
            TimerStatus::Claimed,
            TimerStatus::Fired,
            TimerStatus::Cancelled,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerRecord {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub case: Option<CaseId>,
    pub due_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub status: TimerStatus,
    /// The process that claimed it last.
    pub holder: Option<String>,
    /// Until when the claim holds; after it, another process may claim it.
    pub lease_until: Option<DateTime<Utc>>,
    /// How many times it was claimed.
    pub attempts: i64,
    /// What happened (the last error of a retry, why it was cancelled).
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When it fired or was cancelled.
    pub done_at: Option<DateTime<Utc>>,
}

/// How the holder of a claimed timer finished with it
/// ([`Store::finish_timer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOutcome {
    /// Done: it never fires again.
    Fired { note: Option<String> },
    /// Not done (e.g. the chat platform was down): pending again, due at
    /// `at`.
    Retry { at: DateTime<Utc>, error: String },
    /// Nothing to do any more (the case moved on): it never fires.
    Cancelled { reason: String },
}

/// Which timers [`Store::timers`] lists; every field narrows the list.
#[derive(Debug, Clone, Default)]
pub struct TimerFilter {
    /// Only these kinds (all kinds when empty).
    pub kinds: Vec<String>,
    pub case: Option<CaseId>,
    pub status: Option<TimerStatus>,
    /// Only timers due at or before this instant.
    pub due_by: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a flow version's sources; storing the same version twice is
    /// a no-op.
    async fn save_version(&self, v: &VersionRecord) -> Result<()>;
    async fn load_version(&self, version: &str) -> Result<Option<VersionRecord>>;
    /// Versions with at least one open session, plus the given current ones.
    async fn versions_in_use(&self) -> Result<Vec<VersionUse>>;

    async fn create_session(&self, s: &NewSession) -> Result<SessionRecord>;
    async fn session(&self, id: SessionId) -> Result<Option<SessionRecord>>;
    /// The user's most recent session that is still open.
    async fn open_session(&self, user: &UserKey) -> Result<Option<SessionRecord>>;
    /// Whether the user has an open session: [`Store::open_session`]
    /// without reading the session and its answers, which backends answer
    /// from an index.
    async fn has_open_session(&self, user: &UserKey) -> Result<bool> {
        Ok(self.open_session(user).await?.is_some())
    }
    /// The user's most recent session, open or not.
    async fn latest_session(&self, user: &UserKey) -> Result<Option<SessionRecord>>;
    /// For each owner, the session their next message continues: the most
    /// recent open session, else the most recent one (`None` for an owner
    /// never seen). One entry per owner, in order. A backend answers many
    /// owners in one round trip where it can, which is what lets the
    /// runner read the sessions of many owners who start at once without a
    /// query each (see [`batch::GroupReader`]).
    async fn sessions_to_resume(&self, users: &[UserKey]) -> Result<Vec<Option<SessionRecord>>> {
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(match self.open_session(u).await? {
                Some(s) => Some(s),
                None => self.latest_session(u).await?,
            });
        }
        Ok(out)
    }
    /// [`Store::sessions_to_resume`] for one owner.
    async fn session_to_resume(&self, user: &UserKey) -> Result<Option<SessionRecord>> {
        Ok(self
            .sessions_to_resume(std::slice::from_ref(user))
            .await?
            .pop()
            .flatten())
    }
    async fn open_sessions(&self) -> Result<Vec<SessionRecord>>;
    /// Every session of one owner, oldest first.
    async fn sessions_of_user(&self, user: &UserKey) -> Result<Vec<SessionRecord>>;
    /// Upkeep for the group committer to run between two batches, after it
    /// has answered the first batch's owners: the committer itself writes
    /// nothing meanwhile (other writers, such as the delivery worker, staff
    /// actions or another process, may), and the steps queued meanwhile
    /// wait for it. The default does nothing.
    async fn between_batches(&self) -> Result<()> {
        Ok(())
    }
    /// Called once when a process is done with the store (the end of a
    /// `chat`, a clean stop of the bot): leaves what a store keeps beside
    /// its data small for the next one. Nothing is written; calling the
    /// store again afterwards still works. The default does nothing.
    /// A shared handle to this store (both backends are handles to one
    /// connection pool, so this is cheap), for code given `&dyn Store` that
    /// starts a worker needing its own.
    fn shared(&self) -> std::sync::Arc<dyn Store>;

    async fn close(&self) -> Result<()> {
        Ok(())
    }
    /// Whether [`Store::commit_steps`] writes all of its steps or none.
    /// The group committer batches only for a store that does: after a
    /// failed batch it commits the steps again, which must not write a
    /// step twice.
    fn atomic_batches(&self) -> bool {
        false
    }
    /// How many batches the group committer may have in flight at once.
    /// A store with one writer at a time says 1 (a second batch would only
    /// wait for the first's lock), unless its flush is deferred
    /// ([`Store::deferred_flush`]): SQLite says 2, one batch written while
    /// the one before waits for its fsync. A server that writes many
    /// transactions at once can take the next batch while the last one
    /// waits for its commit's flush and its round trips. Batches in flight
    /// together never hold two steps of one owner (a runner submits an
    /// owner's next step only once the last is durable), and each still
    /// answers its owners only after its own commit.
    fn batches_in_flight(&self) -> usize {
        1
    }
    /// Whether [`Store::commit_steps_unflushed`] leaves the steps to be
    /// made durable by a later [`Store::flush_steps`], outside the store's
    /// write lock (SQLite: the WAL's fsync, see [`walsync`]). The group
    /// committer then writes the next batch while the last one waits for
    /// its flush, and answers a batch's owners only after it.
    fn deferred_flush(&self) -> bool {
        false
    }
    /// [`Store::commit_steps`] without the flush: the steps are committed
    /// (others see them) but, with [`Store::deferred_flush`], durable only
    /// once a [`Store::flush_steps`] called after this returns. Nobody may
    /// be told of them before that.
    async fn commit_steps_unflushed(&self, cs: &[StepCommit<'_>]) -> Result<Vec<StepOutcome>> {
        self.commit_steps(cs).await
    }
    /// Makes durable every step that [`Store::commit_steps_unflushed`]
    /// committed before this call.
    async fn flush_steps(&self) -> Result<()> {
        Ok(())
    }
    /// Why this store stopped writing ([`StoreError::WriteFailed`]), if it
    /// did: the process must be restarted. `madoguchi run` stops on it and
    /// `/readyz` reports it.
    fn write_failure(&self) -> Option<String> {
        None
    }
    /// Commits one step; fails with [`StoreError::Stale`] or
    /// [`StoreError::NotNew`] (see [`Store::commit_steps`]) without writing.
    async fn commit_step(&self, c: &StepCommit<'_>) -> Result<StepOutcome>;
    /// Commits several steps (of different sessions) together: all of them
    /// or none, with one durable write for the lot where the backend can
    /// (group commit, see [`batch`]). The outcomes are in the steps' order.
    /// If some steps are stale, nothing is written and the error is
    /// [`StoreError::Stale`] naming the stale sessions of the batch, so
    /// that the others can be committed again without them. A backend may
    /// miss some it cannot tell apart cheaply (the SQLite one misses a
    /// session moved on by exactly one step elsewhere), even all of them:
    /// the caller then commits the steps one by one, where a stale step is
    /// always named ([`batch::GroupCommitter`] does). Likewise, if first
    /// steps presumed wrongly that their owners had no (open) session
    /// ([`Presumption`]), nothing is written and the error is
    /// [`StoreError::NotNew`] naming such owners (the SQLite store names
    /// every one among the batch's answer-only steps, and stops at the
    /// first among steps written one by one). The default commits them one
    /// by one, which is durable but neither atomic nor faster: a failure
    /// can leave the steps before it written, so it says so through
    /// [`Store::atomic_batches`], and backends override both.
    async fn commit_steps(&self, cs: &[StepCommit<'_>]) -> Result<Vec<StepOutcome>> {
        let mut out = Vec::with_capacity(cs.len());
        for c in cs {
            out.push(self.commit_step(c).await?);
        }
        Ok(out)
    }
    /// Every answer of a session in the order given, corrections included.
    async fn answers(&self, session: SessionId) -> Result<Vec<AnswerRecord>>;

    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>>;
    async fn cases(&self, f: &CaseFilter) -> Result<Vec<CaseRecord>>;
    async fn cases_of_user(&self, user: &UserKey) -> Result<Vec<CaseRecord>>;
    /// Changes a case and writes the audit entry in one transaction.
    async fn update_case(
        &self,
        id: CaseId,
        change: &CaseChange,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CaseRecord>;
    async fn audit(&self, case: Option<CaseId>) -> Result<Vec<AuditEntry>>;
    async fn append_audit(
        &self,
        case: Option<CaseId>,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The newest audit entry of an action that names no case (`reload`):
    /// what another instance on the same database reads to follow this
    /// one's changes (see [`crate::instances::follow_signals`]).
    async fn last_audit(&self, action: &str) -> Result<Option<AuditEntry>>;
    /// Wakes the other instances on the same database to read what changed
    /// (`kind`: the audit action, e.g. `reload`). A no-op where one instance
    /// owns the database; on PostgreSQL a `NOTIFY`. Best effort: a
    /// notification is lost while a listener reconnects, so followers also
    /// poll [`Store::last_audit`].
    async fn signal(&self, _kind: &str) -> Result<()> {
        Ok(())
    }

    async fn add_delivery(&self, case: CaseId, d: &NewDelivery, now: DateTime<Utc>) -> Result<i64>;
    /// Pending deliveries of a transport that are due, oldest first.
    async fn due_deliveries(
        &self,
        transport: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>>;
    async fn deliveries(&self, case: CaseId) -> Result<Vec<DeliveryRecord>>;
    /// Records an attempt's external id before the outcome is known.
    async fn set_delivery_external_id(&self, id: i64, external_id: &str) -> Result<()>;
    /// Records an attempt whoever holds the delivery (and ends any lease
    /// on it). Workers use [`Store::record_leased_attempt`].
    async fn record_attempt(
        &self,
        id: i64,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Leases up to `limit` pending deliveries of a transport that are due
    /// at `now` and not leased by anyone (or whose lease ran out by
    /// `now`) to `owner` until `until`, oldest first. Two workers leasing
    /// at once never get the same delivery: PostgreSQL takes the rows
    /// with `FOR UPDATE SKIP LOCKED` in one short statement, SQLite in
    /// one write transaction. The network call then happens outside any
    /// transaction.
    async fn lease_deliveries(
        &self,
        transport: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LeasedDelivery>>;
    /// Records an attempt made under `owner`'s lease and ends the lease;
    /// returns false and records nothing when the delivery is no longer
    /// leased by `owner` (the lease ran out and another worker took the
    /// delivery over, or it was recorded already). A lease that ran out
    /// and that nobody took over is still the owner's.
    async fn record_leased_attempt(
        &self,
        id: i64,
        owner: &str,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives a leased delivery back without an attempt (the worker chose
    /// not to try it yet, e.g. its rate limit is still running), to be due
    /// again at `at`. Returns false when the lease was no longer `owner`'s.
    async fn release_lease(&self, id: i64, owner: &str, at: DateTime<Utc>) -> Result<bool>;

    async fn record_consent(
        &self,
        session: SessionId,
        case: Option<CaseId>,
        user: &UserKey,
        c: &crate::engine::ConsentRecord,
        now: DateTime<Utc>,
    ) -> Result<i64>;
    async fn consents(&self, user: &UserKey) -> Result<Vec<ConsentRow>>;

    /// Deletes the user's sessions, answers and case contents, keeping the
    /// consent records and a tombstone of each case for the audit trail.
    async fn forget_user(&self, user: &UserKey, now: DateTime<Utc>) -> Result<ForgetReport>;

    /// Forwards a case to another hub (see [`ForwardCase`]); fails with
    /// `Conflict` when the case is closed or the request was already answered.
    async fn forward_case(&self, f: &ForwardCase<'_>) -> Result<CaseRecord>;

    /// Records (or updates the thread of) a case's post for one hub. Saving
    /// without a thread keeps the stored one while the message is the same;
    /// a new message (the old one was deleted and the case posted anew)
    /// drops it, since a thread belongs to the message it was started from.
    async fn save_case_post(&self, p: &CasePost) -> Result<()>;
    async fn case_posts(&self, case: CaseId) -> Result<Vec<CasePost>>;
    /// The post whose message or thread has this id.
    async fn find_case_post(
        &self,
        transport: &str,
        message_or_thread: &str,
    ) -> Result<Option<CasePost>>;

    async fn set_live_prompt(&self, p: &LivePrompt) -> Result<()>;
    async fn live_prompt(&self, user: &UserKey) -> Result<Option<LivePrompt>>;
    async fn clear_live_prompt(&self, user: &UserKey) -> Result<()>;
    /// The owners whose recorded current question belongs to a session
    /// that has ended, with that session: the end was committed, but that
    /// it was shown never recorded (the bot stopped in between). Oldest
    /// session first.
    async fn live_prompts_of_ended_sessions(&self) -> Result<Vec<(UserKey, SessionId)>>;

    async fn create_forward_request(
        &self,
        r: &NewForwardRequest,
        now: DateTime<Utc>,
    ) -> Result<i64>;
    async fn forward_request(&self, id: i64) -> Result<Option<ForwardRequest>>;
    /// Requests still waiting for the owner's answer, oldest first.
    async fn pending_forward_requests(&self, limit: i64) -> Result<Vec<ForwardRequest>>;
    /// The requests about one case still waiting for the owner's answer,
    /// oldest first (the desk allows one at a time, but a database written
    /// before that rule may hold more).
    async fn pending_forward_requests_of_case(&self, case: CaseId) -> Result<Vec<ForwardRequest>>;
    /// Answers a pending request; returns false when it was not pending.
    async fn decide_forward_request(
        &self,
        id: i64,
        status: ForwardStatus,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn add_relay_message(&self, m: &RelayMessage) -> Result<()>;
    async fn relay_messages_of_user(&self, user: &UserKey) -> Result<Vec<RelayMessage>>;

    /// Queues relay messages (one transaction).
    async fn queue_relays(&self, rs: &[NewRelay], now: DateTime<Utc>) -> Result<Vec<i64>>;
    /// Leases the due relay messages of one transport, like
    /// [`Store::lease_deliveries`].
    async fn lease_relays(
        &self,
        transport: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LeasedRelay>>;
    /// Records the ids posted so far for a leased relay message (false when
    /// the lease is no longer `owner`'s).
    async fn relay_progress(&self, id: i64, owner: &str, message_ids: &[String]) -> Result<bool>;
    /// Records an attempt's outcome while the lease is `owner`'s. A
    /// delivered or failed message's body is erased in the same statement.
    async fn record_relay(
        &self,
        id: i64,
        owner: &str,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives a leased relay message back untried, due at `at`.
    async fn release_relay_lease(&self, id: i64, owner: &str, at: DateTime<Utc>) -> Result<bool>;
    /// The relay messages of a case, oldest first.
    async fn relays_of_case(&self, case: CaseId) -> Result<Vec<RelayRecord>>;

    /// Schedules a matched case's follow-ups, one per due time (in order,
    /// `seq` 1, 2, …), with an audit entry. Does nothing and returns false
    /// when the case has follow-ups already, so scheduling twice (two
    /// instances, a restart) schedules once.
    async fn schedule_follow_ups(
        &self,
        case: CaseId,
        user: &UserKey,
        dues: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Result<bool>;
    async fn follow_ups_of_case(&self, case: CaseId) -> Result<Vec<FollowUp>>;
    /// The owner's follow-ups, oldest due first.
    async fn follow_ups_of_user(&self, user: &UserKey) -> Result<Vec<FollowUp>>;
    /// Follow-ups in `status` whose time for it (due for `scheduled`,
    /// offered for `offered`, reminded for `reminded`) is at or before
    /// `at`, oldest first.
    async fn follow_ups_waiting(
        &self,
        status: FollowUpStatus,
        at: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FollowUp>>;
    /// Moves a follow-up if its stored status is one of `m.from`, with an
    /// audit entry on its case (`follow_up_<status>`) in the same
    /// transaction; returns false (writing nothing) otherwise. This
    /// compare-and-set is what makes an offer or a reminder happen exactly
    /// once across restarts and instances.
    async fn move_follow_up(&self, m: &FollowUpMove<'_>) -> Result<bool>;
    /// Keeps a timer unless one with the same `(kind, subject)` exists
    /// (whatever its status: a timer that fired or was cancelled is not
    /// scheduled again). Returns the stored timer and whether this call
    /// created it.
    async fn schedule_timer(&self, t: &NewTimer, now: DateTime<Utc>)
        -> Result<(TimerRecord, bool)>;
    /// Claims up to `limit` timers of the given kinds (all kinds when
    /// empty) that are due at `now`, oldest due first: pending ones, and
    /// claimed ones whose lease ran out before `now` (their holder died).
    /// Each is claimed by one caller only, also with several processes on
    /// one database: the claim is one conditional update (on PostgreSQL
    /// over rows locked `FOR UPDATE SKIP LOCKED`, so concurrent claimers
    /// take different timers instead of waiting for each other). The
    /// holder then does what the timer is for and calls
    /// [`Store::finish_timer`] within `lease`.
    async fn claim_due_timers(
        &self,
        kinds: &[&str],
        now: DateTime<Utc>,
        holder: &str,
        lease: chrono::Duration,
        limit: i64,
    ) -> Result<Vec<TimerRecord>>;
    /// Finishes a claimed timer; only its holder can, and only while it is
    /// claimed (false otherwise: the lease ran out and another process took
    /// it, or it was finished already).
    async fn finish_timer(
        &self,
        id: i64,
        holder: &str,
        outcome: &TimerOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Cancels a pending timer; false when there is none pending with that
    /// `(kind, subject)` (a claimed one is being fired and is left alone).
    async fn cancel_timer(
        &self,
        kind: &str,
        subject: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Cancels a case's pending timers of the given kinds (all kinds when
    /// empty); returns how many.
    async fn cancel_case_timers(
        &self,
        case: CaseId,
        kinds: &[&str],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Timers by [`TimerFilter`], earliest due first.
    async fn timers(&self, f: &TimerFilter) -> Result<Vec<TimerRecord>>;

    /// What the KPI report is computed from: the sessions and cases created
    /// in `[from, to)`, their answers (reduced to question and "no"), the
    /// consents and re-asks of the period, and every audit entry and
    /// delivery of those cases. Read only; nothing in it is an owner's words.
    async fn report_facts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<facts::ReportFacts>;
    /// Counts for `/metrics`: deliveries pending and failed, routed cases
    /// per platform, open cases past their hub's claim limit at `now` (the
    /// claim reminder timer of their present state is due: the same
    /// business-hour limits as the reminders and the report) and reminders
    /// sent (audit entries).
    async fn ops_counts(&self, now: DateTime<Utc>) -> Result<facts::OpsCounts>;
    /// Makes a delivery that failed for good pending again, due at `now`,
    /// with a fresh count of attempts (an administrator fixed the cause);
    /// false when it had not failed.
    async fn retry_delivery(&self, id: i64, now: DateTime<Utc>) -> Result<bool>;
    /// Claims a post made once per key (the monthly KPI summary): true when
    /// this call claimed it, false when it was claimed before (by this or
    /// another instance, before a restart too).
    async fn claim_admin_post(&self, key: &str, now: DateTime<Utc>) -> Result<bool>;
    /// Gives a claim back after the post failed, so it is tried again.
    async fn release_admin_post(&self, key: &str) -> Result<()>;
}

/// Where a follow-up after a match stands (see [`FollowUp`]). A status
/// only moves forward; the last four are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    /// Waiting for its due time.
    Scheduled,
    /// Due and offered to the owner (a follow-up dialog started).
    Offered,
    /// Offered, not answered, and reminded once.
    Reminded,
    /// The owner answered (and said whether the hub may have the answers).
    Answered,
    /// The owner wants no more follow-ups for this case.
    Declined,
    /// Not answered after the reminder: recorded, never offered again.
    Unanswered,
    /// Not offered: the owner declined an earlier one or deleted their data.
    Cancelled,
}

impl FollowUpStatus {
    pub const ALL: [FollowUpStatus; 7] = [
        FollowUpStatus::Scheduled,
        FollowUpStatus::Offered,
        FollowUpStatus::Reminded,
        FollowUpStatus::Answered,
        FollowUpStatus::Declined,
        FollowUpStatus::Unanswered,
        FollowUpStatus::Cancelled,
    ];
    pub fn name(self) -> &'static str {
        match self {
            FollowUpStatus::Scheduled => "scheduled",
            FollowUpStatus::Offered => "offered",
            FollowUpStatus::Reminded => "reminded",
            FollowUpStatus::Answered => "answered",
            FollowUpStatus::Declined => "declined",
            FollowUpStatus::Unanswered => "unanswered",
            FollowUpStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<FollowUpStatus> {
        FollowUpStatus::ALL.into_iter().find(|c| c.name() == s)
    }
    /// Offered and waiting for the owner.
    pub fn is_waiting(self) -> bool {
        matches!(self, FollowUpStatus::Offered | FollowUpStatus::Reminded)
    }
}

/// One follow-up of a matched case (the guide's step 5): offered to the
/// owner once when due, reminded at most once, then recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    pub id: i64,
    pub case: CaseId,
    pub user: UserKey,
    /// 1 for the first interval.
    pub seq: u8,
    pub due_at: DateTime<Utc>,
    pub status: FollowUpStatus,
    pub session: Option<SessionId>,
    /// The case carrying the answers to the step-5 hub.
    pub answer_case: Option<CaseId>,
    pub offered_at: Option<DateTime<Utc>>,
    pub reminded_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A move of a follow-up from one status to another
/// ([`Store::move_follow_up`]).
#[derive(Debug, Clone)]
pub struct FollowUpMove<'a> {
    pub id: i64,
    /// The statuses it may move from; any other stored status refuses the
    /// move (it already happened).
    pub from: &'a [FollowUpStatus],
    pub to: FollowUpStatus,
    /// Set with the move when given (the dialog started, the answers' case).
    pub session: Option<SessionId>,
    pub answer_case: Option<CaseId>,
    pub now: DateTime<Utc>,
}

/// A staff action on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseChange {
    Claim { by: String },
    Release,
    Forward { to_hub: String, reason: String },
    Advance { to_step: u8 },
    Close { outcome: String },
}

impl CaseChange {
    pub fn action(&self) -> &'static str {
        match self {
            CaseChange::Claim { .. } => "claim",
            CaseChange::Release => "release",
            CaseChange::Forward { .. } => "forward",
            CaseChange::Advance { .. } => "advance",
            CaseChange::Close { .. } => "close",
        }
    }
}

/// Where the database is, parsed from `--db` / `MADOGUCHI_DB`: a
/// `postgres://` (or `postgresql://`) URL means PostgreSQL; a `sqlite:`
/// URL or a plain path means an SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(std::path::PathBuf),
    /// The URL as given (it may hold a password: see the `Display`).
    Postgres(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DbLocationError {
    #[error(
        "the database location is empty: give a file path, sqlite:FILE or postgres://USER@HOST/DB"
    )]
    Empty,
    #[error("`{0}:` is not a database this bot can use: give a file path, sqlite:FILE or postgres://USER@HOST/DB")]
    UnknownScheme(String),
}

impl DbLocation {
    pub fn parse(s: &str) -> Result<DbLocation, DbLocationError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DbLocationError::Empty);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DbLocation::Postgres(s.to_string()));
        }
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(DbLocationError::Empty);
            }
            return Ok(DbLocation::Sqlite(path.into()));
        }
        // A scheme other than ours (`mysql://…`) is a mistake, not a file
        // name; a Windows drive (`C:\…`) has no `//` after its colon.
        if let Some((scheme, _)) = s.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(DbLocationError::UnknownScheme(scheme.to_string()));
            }
        }
        Ok(DbLocation::Sqlite(s.into()))
    }

    /// Why a command that only reads cannot use this location: an SQLite
    /// file that does not exist. Opening would create an empty database
    /// there, and a mistyped `--db` would then show "no cases" instead of
    /// the mistake. `None` for an existing file and for PostgreSQL (the
    /// server says itself when a database is missing).
    pub fn missing(&self) -> Option<String> {
        match self {
            DbLocation::Sqlite(p) if !p.exists() => Some(format!(
                "there is no database {}: check --db (or MADOGUCHI_DB), or run `madoguchi chat` first to create it",
                p.display()
            )),
            _ => None,
        }
    }

    /// Opens the store, applying migrations.
    pub async fn open(&self) -> Result<std::sync::Arc<dyn Store>> {
        Ok(match self {
            DbLocation::Sqlite(p) => std::sync::Arc::new(sqlite::SqliteStore::open(p).await?),
            DbLocation::Postgres(url) => {
                std::sync::Arc::new(postgres::PostgresStore::open(url).await?)
            }
        })
    }
}

impl std::str::FromStr for DbLocation {
    type Err = DbLocationError;
    fn from_str(s: &str) -> Result<DbLocation, DbLocationError> {
        DbLocation::parse(s)
    }
}

/// Shows where the database is without its password, so that the location
/// can go into messages and logs.
impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(url) => f.write_str(&masked_url(url)),
        }
    }
}

/// A PostgreSQL URL with every password hidden, for messages and logs:
/// the password of the user info (`user:***@host`, up to the last `@`
/// before the query, since a password typed unencoded may hold `@`), and
/// the value of every query parameter that can carry a secret
/// (`password`, `passfile`, `sslpassword`, `sslkey`, anything naming a
/// pass, secret, token or key).
fn masked_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = (&before_query[..at], &before_query[at + 1..]);
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***@{host}")),
                None => out.push_str(before_query),
            }
        }
        None => out.push_str(before_query),
    }
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if secret_param(k) => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// Whether a connection parameter's value may be a secret.
fn secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|w| k.contains(w))
}

impl std::fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbLocation({self})")
    }
}

#[cfg(test)]
mod location_tests {
    use super::{DbLocation, DbLocationError};

    #[test]
    fn urls_and_paths_choose_the_backend() {
        assert_eq!(
            DbLocation::parse("postgres://bot@db.example/madoguchi").unwrap(),
            DbLocation::Postgres("postgres://bot@db.example/madoguchi".into())
        );
        assert!(matches!(
            DbLocation::parse("postgresql://bot@db/m").unwrap(),
            DbLocation::Postgres(_)
        ));
        assert_eq!(
            DbLocation::parse("sqlite:data/m.db").unwrap(),
            DbLocation::Sqlite("data/m.db".into())
        );
        assert_eq!(
            DbLocation::parse("sqlite:///var/lib/m.db").unwrap(),
            DbLocation::Sqlite("/var/lib/m.db".into())
        );
        assert_eq!(
            DbLocation::parse("madoguchi.db").unwrap(),
            DbLocation::Sqlite("madoguchi.db".into())
        );
        assert_eq!(
            DbLocation::parse("mysql://x@y/z"),
            Err(DbLocationError::UnknownScheme("mysql".into()))
        );
        assert_eq!(DbLocation::parse("  "), Err(DbLocationError::Empty));
        assert_eq!(DbLocation::parse("sqlite:"), Err(DbLocationError::Empty));
    }

    #[test]
    fn a_password_never_shows() {
        let l = DbLocation::parse("postgres://bot:s3cret@db:5432/m?sslmode=require").unwrap();
        let shown = format!("{l} {l:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://bot:***@db:5432/m"), "{shown}");
    }

    #[test]
    fn a_password_with_an_at_sign_never_shows_in_part() {
        let l = DbLocation::parse("postgres://u:Top@Secret3@host/x").unwrap();
        let shown = format!("{l} {l:?}");
        assert!(
            !shown.contains("Top") && !shown.contains("Secret3"),
            "{shown}"
        );
        assert_eq!(l.to_string(), "postgres://u:***@host/x");
    }

    #[test]
    fn a_password_in_the_query_never_shows() {
        let l = DbLocation::parse(
            "postgres://u@127.0.0.1/x?sslmode=require&password=TopSecret1&PassFile=/home/u/.pgpass&sslpassword=k3y&sslkey=/k",
        )
        .unwrap();
        let shown = format!("{l} {l:?}");
        for secret in ["TopSecret1", ".pgpass", "k3y", "/k"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(
            l.to_string(),
            "postgres://u@127.0.0.1/x?sslmode=require&password=***&PassFile=***&sslpassword=***&sslkey=***"
        );
        // Both forms at once.
        let l = DbLocation::parse("postgresql://u:a@b@h:5432/x?password=c").unwrap();
        assert_eq!(l.to_string(), "postgresql://u:***@h:5432/x?password=***");
        // Nothing to hide: shown as given.
        let plain = "postgres://bot@db.example/madoguchi?sslmode=require";
        assert_eq!(DbLocation::parse(plain).unwrap().to_string(), plain);
    }
}
