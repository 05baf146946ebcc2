//! The outbox: one worker that takes due deliveries from the store and
//! hands each to the [`Sender`] of its transport (`local` inbox files,
//! `discord`, and whatever platform comes next).
//!
//! - Deliveries are written in the same transaction as their case, so a
//!   restart simply finds them again.
//! - The worker **leases** what it takes ([`Store::lease_deliveries`]): its
//!   name and a lease time are written into the rows in one short
//!   transaction, the network call happens outside any transaction, and
//!   the result is recorded only while the lease is still the worker's
//!   ([`Store::record_leased_attempt`]). A lease whose worker died runs out
//!   and another worker (on this instance or another one) takes the
//!   delivery over. This is what lets every instance of `madoguchi run`
//!   on one database run the outbox.
//! - When the outcome of an earlier attempt is unknown (it was attempted
//!   before, or its lease was taken over from a worker that died), the
//!   worker first asks the sender to look for its own earlier post
//!   ([`Sender::find_existing`]) before letting it send: a platform without
//!   an idempotency key (Slack's `chat.postMessage`) must not post a case
//!   twice.
//! - Failures come back classified ([`Fail`]): a platform's "retry after"
//!   (HTTP 429) is honoured exactly and blocks the rate-limit scope it
//!   names (an API method or route) for every delivery of this worker until
//!   it has passed; server and network errors retry with exponential
//!   backoff up to `max_attempts`; refusals fail at once with the reason.
//!   Every attempt is recorded with its outcome.
//! - Time comes from a [`Clock`]: which delivery is due, the lease, and
//!   every backoff are decided from it, so the worker is tested with a
//!   fixed clock and without sleeping.
//!
//! # Adding a platform
//!
//! Implement [`Sender`] (its `transport()` is the name in delivery rows,
//! the name the runner's `transports` and routing targets use), and add it
//! in [`for_run`], the outbox `madoguchi run` starts on every instance.

pub mod local;

use crate::runner::Clock;
use crate::store::{
    AttemptOutcome, CaseRecord, DeliveryRecord, RelayKind, RelayMessage, RelayRecord, Store,
    StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What a successful send returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The platform's id of the post (a Discord message id, a Slack
    /// message `ts`, an inbox file's path), stored with the delivery.
    pub external_id: Option<String>,
}

/// Why a send did not succeed, classified so the worker knows when (and
/// whether) to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// The platform said when to try again (HTTP 429 with `Retry-After` or
    /// `retry_after`). The delivery is tried again after exactly `wait`,
    /// however often this happens (it does not count towards
    /// `max_attempts`), and when `scope` names a rate limit (an API method
    /// such as `chat.postMessage`, or a route such as `POST
    /// /channels/1/messages`) no other delivery in that scope is sent by
    /// this worker before the wait is over.
    RetryAfter {
        wait: Duration,
        scope: Option<String>,
        error: String,
    },
    /// A server error (5xx), a network error, a timeout: try again with
    /// backoff, up to `max_attempts`. The post may or may not have been
    /// made; the next attempt first calls [`Sender::find_existing`].
    Transient(String),
    /// The platform refused (missing permission, unknown channel, a case
    /// that no longer exists): retrying will not help. The delivery fails
    /// at once with this reason, which `madoguchi cases show` reports.
    Permanent(String),
}

impl Fail {
    pub fn error(&self) -> &str {
        match self {
            Fail::RetryAfter { error, .. } | Fail::Transient(error) | Fail::Permanent(error) => {
                error
            }
        }
    }
}

/// One platform's way of delivering a case to a hub.
#[async_trait]
pub trait Sender: Send + Sync {
    /// The transport name in delivery rows (`local`, `discord`, `slack`).
    fn transport(&self) -> &str;

    /// The rate-limit scope the delivery's first call falls in (e.g.
    /// `chat.postMessage`, or the channel's message route), when the
    /// platform limits per method or route. While a [`Fail::RetryAfter`]
    /// for that scope runs, the worker gives the delivery back untried.
    fn scope(&self, _d: &DeliveryRecord) -> Option<String> {
        None
    }

    /// How long the worker holds this sender's deliveries, when not the
    /// configured `lease_secs` (which suits a network call).
    fn lease(&self) -> Option<Duration> {
        None
    }

    /// Looks for this sender's own earlier post of `d`, for a platform
    /// whose post call has no idempotency key. Called before [`send`]
    /// when an earlier attempt's outcome is unknown (the delivery was
    /// attempted before, or taken over from a worker whose lease ran out)
    /// and no external id was stored. A post found is returned as its
    /// external id: the worker stores it in the delivery
    /// (`set_delivery_external_id`) and calls [`send`] with it in
    /// `d.external_id`, so `send` only finishes what the post lacks (its
    /// thread replies) instead of posting again. The default finds
    /// nothing, which is right for a sender whose posts are idempotent
    /// anyway.
    ///
    /// [`send`]: Sender::send
    async fn find_existing(
        &self,
        _d: &DeliveryRecord,
        _case: &CaseRecord,
    ) -> Result<Option<String>, Fail> {
        Ok(None)
    }

    /// Delivers the case to the hub named by `d` (`d.target` is the
    /// transport's address: a channel id, an inbox folder). With
    /// `d.external_id` set, the post exists (an earlier attempt made it, or
    /// [`find_existing`](Sender::find_existing) found it): check it and
    /// finish the rest rather than post again. A sender that makes more
    /// than one call (a post, then replies in its thread) stores the post's
    /// id as soon as it has it (`Store::set_delivery_external_id`), so that
    /// a failure in the later calls leads to finishing, not to a second
    /// post.
    async fn send(&self, d: &DeliveryRecord, case: &CaseRecord) -> Result<Sent, Fail>;

    /// Whether this sender posts relay messages ([`crate::relay`]): the
    /// owner's DM and the case's thread on its platform.
    fn relays(&self) -> bool {
        false
    }

    /// The rate-limit scope of a relay message's first call, as
    /// [`Sender::scope`].
    fn relay_scope(&self, _r: &RelayRecord) -> Option<String> {
        None
    }

    /// Posts a relay message: `body` rendered for the platform, in pieces
    /// if long. Pieces already posted by earlier attempts are counted in
    /// `progress` ([`RelayProgress::done`]) and are not posted again; each
    /// new piece is reported with [`RelayProgress::posted`] as soon as it
    /// is made. When [`RelayProgress::unknown`], an earlier attempt may
    /// have posted the next piece without knowing: a platform without an
    /// idempotency key looks for it first.
    async fn send_relay(
        &self,
        _r: &RelayRecord,
        _body: &crate::relay::Body,
        _case: &CaseRecord,
        _progress: &RelayProgress<'_>,
    ) -> Result<(), Fail> {
        Err(Fail::Permanent(format!(
            "{} cannot relay messages",
            self.transport()
        )))
    }

    /// Brings this platform's `posts` of `case` up to date (a refresh
    /// job, [`crate::relay::Refresh`]) with the rendering its adapter uses
    /// after a button press: the status line and the buttons, and with
    /// `text` the post's text too. Must be safe to repeat. A post the
    /// platform will not edit (deleted, no access) is skipped with a
    /// warning; a failure worth retrying is returned, and the whole job is
    /// run again.
    async fn refresh(
        &self,
        _case: &CaseRecord,
        _posts: &[crate::store::CasePost],
        _text: bool,
    ) -> Result<(), Fail> {
        Err(Fail::Permanent(format!(
            "{} cannot refresh posts",
            self.transport()
        )))
    }

    /// Carries out an erase job ([`crate::store::RelayKind::Erase`]) for
    /// a case of an owner who was forgotten on another platform: the
    /// posts in `job` become tombstones and its messages are deleted, with
    /// the platform's own forget code. Must be safe to repeat (a retry
    /// after a partial failure runs the whole job again).
    async fn erase(&self, _r: &RelayRecord, _job: &crate::relay::Erase) -> Result<(), Fail> {
        Err(Fail::Permanent(format!(
            "{} cannot erase posts",
            self.transport()
        )))
    }
}

/// How the outbox retries and leases, `[outbox]` in the bot's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// How often the worker looks for due deliveries (it is also woken at
    /// once when a case is created).
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// The first wait after a server or network error; doubled after every
    /// further failure.
    #[serde(default = "default_backoff")]
    pub backoff_base_ms: u64,
    /// The longest wait between two attempts.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_secs: u64,
    /// Attempts (rate limits excepted) before a delivery is marked failed
    /// and left for `madoguchi cases show` to report.
    #[serde(default = "default_attempts")]
    pub max_attempts: i64,
    /// How long a worker holds the deliveries it took. A worker that dies
    /// holding them delays them by at most this long; it must be longer
    /// than one delivery takes (a post and its thread, each call with a
    /// 30 s timeout).
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
}

fn default_poll() -> u64 {
    2000
}
fn default_backoff() -> u64 {
    2000
}
fn default_backoff_max() -> u64 {
    900
}
fn default_attempts() -> i64 {
    12
}
fn default_lease() -> u64 {
    300
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            poll_interval_ms: default_poll(),
            backoff_base_ms: default_backoff(),
            backoff_max_secs: default_backoff_max(),
            max_attempts: default_attempts(),
            lease_secs: default_lease(),
        }
    }
}

impl OutboxConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }
    /// The wait before attempt `attempts + 1` after a transient failure.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(0, 20) as u32;
        let ms = self.backoff_base_ms.saturating_mul(1u64 << exp);
        Duration::from_millis(ms).min(Duration::from_secs(self.backoff_max_secs.max(1)))
    }
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }
}

/// A relay message's progress while a sender posts it: the pieces posted
/// so far (by this attempt and earlier ones), recorded as they are made so
/// that a retry never posts one twice.
pub struct RelayProgress<'a> {
    store: &'a dyn Store,
    worker: &'a str,
    relay: &'a RelayRecord,
    ids: Mutex<Vec<String>>,
    unknown: bool,
    now: DateTime<Utc>,
}

impl RelayProgress<'_> {
    /// How many pieces are posted.
    pub fn done(&self) -> usize {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// Whether an earlier attempt ended without a recorded outcome, so the
    /// next piece may exist already.
    pub fn unknown(&self) -> bool {
        self.unknown
    }
    /// The pieces' message ids so far.
    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Records a piece just posted (or found) in `channel`: its id in the
    /// relay row, and in `relay_messages`, from which forgetting the owner
    /// deletes it on the platform. `Ok(false)`: the owner was forgotten
    /// while the piece was being posted, so the sender deletes it again.
    pub async fn posted(&self, channel: &str, message: &str) -> Result<bool, Fail> {
        let ids = {
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            ids.push(message.to_string());
            ids.clone()
        };
        let store_err = |e: StoreError| Fail::Transient(format!("store: {e}"));
        let forgotten = || async {
            Ok::<bool, Fail>(
                self.store
                    .relays_of_case(self.relay.case)
                    .await
                    .map_err(store_err)?
                    .iter()
                    .any(|r| {
                        r.id == self.relay.id && r.status == crate::store::DeliveryStatus::Failed
                    }),
            )
        };
        if !self
            .store
            .relay_progress(self.relay.id, self.worker, &ids)
            .await
            .map_err(store_err)?
        {
            if forgotten().await? {
                return Ok(false);
            }
            return Err(Fail::Transient(
                "the relay message's lease ran out while it was being sent".into(),
            ));
        }
        self.store
            .add_relay_message(&RelayMessage {
                case: self.relay.case,
                user: self.relay.user.clone(),
                direction: match self.relay.kind {
                    RelayKind::ToOwner => "to_owner".into(),
                    RelayKind::ToHub | RelayKind::Erase | RelayKind::Refresh => "to_staff".into(),
                },
                channel_id: channel.to_string(),
                message_id: message.to_string(),
                at: self.now,
            })
            .await
            .map_err(store_err)?;
        // The owner may have been forgotten between the progress above and
        // this record: forgetting then read the relayed messages without
        // this one, so the sender must delete it itself.
        if forgotten().await? {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Deliveries leased at a time, per transport.
const BATCH: i64 = 20;

/// What waits in the store for a platform no sender of this process
/// serves (`served`: the transports of its senders), one line per
/// platform saying how much waits and what to do (pure; `madoguchi run`
/// says it at start). Nothing is said of a platform that is served.
pub fn unserved(ops: &crate::store::facts::OpsCounts, served: &[&str]) -> Vec<String> {
    let mut by: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for (t, s, n) in &ops.deliveries {
        if s == "pending" && !served.contains(&t.as_str()) {
            by.entry(t).or_default().0 += n;
        }
    }
    for (t, _, s, n) in &ops.relays {
        if s == "pending" && !served.contains(&t.as_str()) {
            by.entry(t).or_default().1 += n;
        }
    }
    by.into_iter()
        .map(|(t, (d, r))| {
            let how = match t {
                "discord" => "set DISCORD_TOKEN for `madoguchi run` (here or on another instance on this database)",
                "slack" => "set SLACK_BOT_TOKEN and SLACK_APP_TOKEN for `madoguchi run` (here or on another instance on this database)",
                "local" => "run `madoguchi run` or `madoguchi chat` with the inbox folder",
                _ => "run a version of madoguchi that has this platform",
            };
            format!(
                "{d} case delivery(ies) and {r} relay message(s) wait for {t}, which this process does not run: nothing is sent there until you {how}; `madoguchi cases show CASE` lists a case's waiting messages, and a hub can be moved to a configured platform in routing.yaml and the case forwarded"
            )
        })
        .collect()
}

/// How many poll intervals a message waiting for a case post that failed
/// for good waits before it looks again whether the case was posted since
/// (a minute with the default interval).
const POST_FAILED_RECHECK_POLLS: u32 = 30;

/// Why a message for a hub's case thread cannot be sent now, when the
/// case was never posted to that hub on the message's platform and every
/// delivery there failed for good (pure). Such a message is not dropped
/// and not failed: it waits, pending, with this reason as its last error
/// (shown by `madoguchi cases show` and counted in `/metrics`), and goes
/// out once the case is posted (a delivery made pending again). While the
/// delivery is merely pending, the sender's own wait applies.
pub fn waiting_for_post(
    r: &RelayRecord,
    posts: &[crate::store::CasePost],
    deliveries: &[DeliveryRecord],
) -> Option<String> {
    if r.kind != RelayKind::ToHub
        || posts
            .iter()
            .any(|p| p.hub_id == r.target && p.transport == r.transport)
    {
        return None;
    }
    let mine: Vec<&DeliveryRecord> = deliveries
        .iter()
        .filter(|d| d.hub_id == r.target && d.transport == r.transport)
        .collect();
    let last = mine.last()?;
    if mine
        .iter()
        .any(|d| d.status != crate::store::DeliveryStatus::Failed)
    {
        return None;
    }
    Some(format!(
        "waiting for the case post: the delivery of {} to {} on {} failed for good ({}); this message is sent once the case is posted there",
        r.case,
        r.target,
        r.transport,
        last.last_error.as_deref().unwrap_or("no reason recorded")
    ))
}

/// What happened to one leased delivery in a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    pub delivery: DeliveryRecord,
    pub result: Handling,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handling {
    /// Recorded with this outcome.
    Recorded(AttemptOutcome),
    /// Given back untried, due again then: its rate-limit scope is
    /// waiting, or too little of its lease was left when its turn came.
    Deferred(DateTime<Utc>),
    /// The lease ran out and another worker took the delivery over before
    /// this result could be recorded; the result was dropped.
    LeaseLost(AttemptOutcome),
}

impl Handled {
    pub fn delivered(&self) -> bool {
        matches!(
            self.result,
            Handling::Recorded(AttemptOutcome::Delivered { .. })
        )
    }
}

/// The delivery worker: senders by transport, one store, one clock.
pub struct Outbox {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cfg: OutboxConfig,
    senders: Vec<Arc<dyn Sender>>,
    /// This worker's name in leases; unique per process start, so a
    /// restarted instance does not mistake its predecessor's leases for
    /// its own.
    owner: String,
    /// Rate-limit scopes and when they open again.
    blocked: Mutex<HashMap<String, DateTime<Utc>>>,
    wake: Arc<Notify>,
    /// The local inbox whose `admin/` folder is told what fails for good
    /// ([`Outbox::with_admin_inbox`]).
    admin_inbox: Option<std::path::PathBuf>,
    /// The run's notice sinks ([`Outbox::with_admin_sinks`]): with them,
    /// what the administrators must know goes to the Discord or Slack admin
    /// channel, and to the inbox only when neither has one.
    admin_sinks: Vec<Arc<dyn crate::network::worker::NoticeSink>>,
}

/// A lease owner name: host, process and start time, so two instances on
/// one host, and a process restarted with the same pid, differ.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{host}/{}/{nanos:x}", std::process::id())
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cfg: OutboxConfig) -> Outbox {
        Outbox {
            store,
            clock,
            cfg,
            senders: Vec::new(),
            owner: worker_name(),
            blocked: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            admin_inbox: None,
            admin_sinks: Vec::new(),
        }
    }

    /// Tells the administrators, as files in `INBOX/admin/` (one per
    /// event, written once), when a case delivery fails for good (with how
    /// many messages wait for its thread), when a message starts waiting
    /// for such a post, and when a relay message fails for good. Ids and
    /// reasons only, never what the owner wrote.
    pub fn with_admin_inbox(mut self, inbox: &std::path::Path) -> Outbox {
        self.admin_inbox = Some(inbox.to_path_buf());
        self
    }

    /// Tells the administrators through the admin channels of the run's
    /// platforms (`admin_channel` on Discord, `SLACK_ADMIN_CHANNEL`), as
    /// the monthly summary; see [`Outbox::with_admin_sinks`].
    pub fn with_admin_sinks(
        mut self,
        sinks: Vec<Arc<dyn crate::network::worker::NoticeSink>>,
    ) -> Outbox {
        self.admin_sinks = sinks;
        self
    }

    /// Tells the administrators: in the admin channel of each platform that
    /// has one, else as `INBOX/admin/{name}.md`, written unless it exists
    /// (a temporary file renamed over it). Failures are logged, the outbox
    /// goes on. The texts hold ids, reasons and commands, never what an
    /// owner wrote.
    async fn tell_admin(&self, name: String, text: String) {
        if !self.admin_sinks.is_empty() {
            let post = crate::report::monthly::AdminPost {
                file: format!("{name}.md"),
                key: format!("outbox:{name}"),
                text,
            };
            if !crate::network::worker::post_admin(&self.admin_sinks, &post).await {
                tracing::error!(file = %name, "cannot tell the administrators in a channel or the inbox's admin folder");
            }
            return;
        }
        let Some(inbox) = &self.admin_inbox else {
            return;
        };
        let dir = crate::delivery::target_dir(inbox, "admin");
        let file = name.clone();
        let r = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let path = dir.join(format!("{name}.md"));
            if path.exists() {
                return Ok(());
            }
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{name}.md.tmp"));
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::error!(file = %file, "cannot tell the administrators through the inbox's admin folder");
        }
    }

    /// Shares the notification that wakes the worker (the bot notifies it
    /// when it creates a case).
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Outbox {
        self.wake = wake;
        self
    }

    /// The notification that wakes the worker.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Names the worker in leases (tests run two workers in one process).
    pub fn named(mut self, owner: impl Into<String>) -> Outbox {
        self.owner = owner.into();
        self
    }

    /// Adds the sender of one transport (a second sender for the same
    /// transport replaces the first).
    pub fn with_sender(mut self, sender: Arc<dyn Sender>) -> Outbox {
        self.senders.retain(|s| s.transport() != sender.transport());
        self.senders.push(sender);
        self
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn transports(&self) -> Vec<String> {
        self.senders
            .iter()
            .map(|s| s.transport().to_string())
            .collect()
    }

    /// Wakes the worker now (a case was created).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// One pass over every transport: leases what is due, sends it, and
    /// records the results. Returns what was handled, in order.
    pub async fn run_once(&self) -> Result<Vec<Handled>, StoreError> {
        let mut out = Vec::new();
        for s in &self.senders {
            self.pass(s.as_ref(), &mut out, None).await?;
        }
        Ok(out)
    }

    /// Passes until nothing due is left that can be sent now (a full batch
    /// means more may be due). Used where the outbox runs once, at start.
    pub async fn drain(&self) -> Result<Vec<Handled>, StoreError> {
        let mut all = Vec::new();
        loop {
            let mut progressed = false;
            let mut full = false;
            for s in &self.senders {
                let mut out = Vec::new();
                let n = self.pass(s.as_ref(), &mut out, None).await?;
                full |= n as i64 >= BATCH;
                progressed |= out.iter().any(|h| h.delivered());
                all.extend(out);
            }
            if !full || !progressed {
                return Ok(all);
            }
        }
    }

    /// Leases one batch of `sender`'s due deliveries and handles them;
    /// returns how many were leased.
    async fn pass(
        &self,
        sender: &dyn Sender,
        out: &mut Vec<Handled>,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease = sender.lease().unwrap_or_else(|| self.cfg.lease());
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let leased = self
            .store
            .lease_deliveries(sender.transport(), &self.owner, now, until, BATCH)
            .await?;
        let n = leased.len();
        for l in leased {
            if stop.is_some_and(|s| *s.borrow()) {
                // Given back at once rather than left to run out.
                self.store
                    .release_lease(l.delivery.id, &self.owner, l.delivery.next_attempt_at)
                    .await?;
                continue;
            }
            // A batch whose earlier deliveries were slow (timeouts, a
            // thread of many pieces) must not start one whose lease is
            // nearly over: another worker may take it over mid-send. Less
            // than half the lease left: give it back for whoever comes
            // next (this worker's next pass, or another instance).
            if !lease.is_zero() {
                let left = until - self.clock.now();
                if left < chrono::Duration::from_std(lease / 2).unwrap_or_default() {
                    let at = l.delivery.next_attempt_at;
                    self.store
                        .release_lease(l.delivery.id, &self.owner, at)
                        .await?;
                    out.push(Handled {
                        delivery: l.delivery,
                        result: Handling::Deferred(at),
                    });
                    continue;
                }
            }
            let unknown = l.taken_over_from.is_some() || l.delivery.attempts > 0;
            if let Some(prev) = &l.taken_over_from {
                tracing::warn!(delivery = l.delivery.id, case = %l.delivery.case, previous = %prev, "took over a delivery whose lease ran out");
            }
            out.push(self.handle(sender, l.delivery, unknown).await?);
        }
        let relayed = if sender.relays() {
            self.relay_pass(sender, stop).await?
        } else {
            0
        };
        Ok(n.max(relayed))
    }

    /// Leases one batch of `sender`'s due relay messages and sends them;
    /// returns how many were leased.
    async fn relay_pass(
        &self,
        sender: &dyn Sender,
        stop: Option<&watch::Receiver<bool>>,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let lease = sender.lease().unwrap_or_else(|| self.cfg.lease());
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let leased = self
            .store
            .lease_relays(sender.transport(), &self.owner, now, until, BATCH)
            .await?;
        let n = leased.len();
        for l in leased {
            if stop.is_some_and(|s| *s.borrow()) {
                self.store
                    .release_relay_lease(l.relay.id, &self.owner, l.relay.next_attempt_at)
                    .await?;
                continue;
            }
            self.handle_relay(sender, l).await?;
        }
        Ok(n)
    }

    /// Sends one leased relay message and records the result; once it is
    /// sent, the audit entries that name its messages are written.
    async fn handle_relay(
        &self,
        sender: &dyn Sender,
        l: crate::store::LeasedRelay,
    ) -> Result<(), StoreError> {
        let r = l.relay;
        let now = self.clock.now();
        if let Some(scope) = sender.relay_scope(&r) {
            if let Some(at) = self.blocked_until(&scope, now) {
                self.store
                    .release_relay_lease(r.id, &self.owner, at)
                    .await?;
                return Ok(());
            }
        }
        if r.kind == RelayKind::Erase {
            let result = match r.body.as_deref().map(crate::relay::Erase::parse) {
                None => Err(Fail::Permanent("the erase job was emptied".into())),
                Some(Err(e)) => Err(Fail::Permanent(format!("the erase job does not read: {e}"))),
                Some(Ok(job)) => sender.erase(&r, &job).await,
            };
            return self.record_relay_result(&r, result).await;
        }
        if r.kind == RelayKind::Refresh {
            let result = self.refresh(sender, &r).await;
            return self.record_relay_result(&r, result).await;
        }
        if r.kind == RelayKind::ToHub {
            let posts = self.store.case_posts(r.case).await?;
            let deliveries = self.store.deliveries(r.case).await?;
            if let Some(why) = waiting_for_post(&r, &posts, &deliveries) {
                // Said once, when the message starts waiting; the row's
                // last error says it from then on.
                if r.last_error.as_deref() != Some(why.as_str()) {
                    tracing::error!(relay = r.id, case = %r.case, hub = %r.target, transport = %r.transport, "a message for the case thread waits: the case post failed for good; `madoguchi cases show` says what to do");
                    self.tell_admin(
                        format!("relay-{}-waiting", r.id),
                        format!(
                            "# {case}: 案件スレッドへのメッセージが待機中 / a message for the case thread waits\n\n{why}\n\n原因を直してから `madoguchi cases retry-delivery {case} --hub {hub}` を実行してください。 / Fix the cause, then run `madoguchi cases retry-delivery {case} --hub {hub}`.\n",
                            case = r.case,
                            hub = r.target,
                        ),
                    )
                    .await;
                }
                let wait = Fail::RetryAfter {
                    wait: self.cfg.poll_interval() * POST_FAILED_RECHECK_POLLS,
                    scope: None,
                    error: why,
                };
                return self.record_relay_result(&r, Err(wait)).await;
            }
        }
        let body = r.body.as_deref().map(crate::relay::Body::parse);
        let progress = RelayProgress {
            store: self.store.as_ref(),
            worker: &self.owner,
            relay: &r,
            ids: Mutex::new(r.message_ids.clone()),
            unknown: l.taken_over_from.is_some() || r.attempts > 0,
            now,
        };
        let result = match (body, self.store.case(r.case).await?) {
            (None, _) => Err(Fail::Permanent("the message was erased".into())),
            (Some(Err(e)), _) => Err(Fail::Permanent(format!(
                "the queued message does not read: {e}"
            ))),
            (_, None) => Err(Fail::Permanent("the case no longer exists".into())),
            // Forgetting erases queued messages; one leased just before
            // must not go out afterwards.
            (_, Some(case)) if case.summary_plain.is_empty() => {
                Err(Fail::Permanent("the owner deleted their data".into()))
            }
            (Some(Ok(body)), Some(case)) => sender
                .send_relay(&r, &body, &case, &progress)
                .await
                .map(|()| body),
        };
        self.record_relay_result(&r, result.map(|_body| ())).await
    }

    /// Carries out a refresh job ([`crate::relay::Refresh`]). The posts
    /// it edits are recorded as its message ids before the case is read,
    /// so that a change made from then on queues a job of its own
    /// ([`crate::relay::plan_refresh`] counts only jobs not started).
    async fn refresh(&self, sender: &dyn Sender, r: &RelayRecord) -> Result<(), Fail> {
        let job = match r.body.as_deref().map(crate::relay::Refresh::parse) {
            Some(Ok(job)) => job,
            None => return Err(Fail::Permanent("the refresh job was emptied".into())),
            Some(Err(e)) => {
                return Err(Fail::Permanent(format!(
                    "the refresh job does not read: {e}"
                )))
            }
        };
        let store_err = |e: StoreError| Fail::Transient(format!("store: {e}"));
        let posts: Vec<_> = self
            .store
            .case_posts(r.case)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|p| p.transport == r.transport)
            .collect();
        if posts.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = posts.iter().map(|p| p.message_id.clone()).collect();
        if !self
            .store
            .relay_progress(r.id, &self.owner, &ids)
            .await
            .map_err(store_err)?
        {
            return Err(Fail::Transient(
                "the refresh job's lease ran out before it started".into(),
            ));
        }
        match self.store.case(r.case).await.map_err(store_err)? {
            None => Err(Fail::Permanent("the case no longer exists".into())),
            // A forgotten owner's posts are tombstones, which stay.
            Some(case) if case.summary_plain.is_empty() => Ok(()),
            Some(case) => sender.refresh(&case, &posts, job.text).await,
        }
    }

    /// Records the outcome of one attempt at a relay row.
    async fn record_relay_result(
        &self,
        r: &RelayRecord,
        result: Result<(), Fail>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let at = |wait: Duration| now + chrono::Duration::from_std(wait).unwrap_or_default();
        let outcome = match result {
            Ok(()) => {
                tracing::info!(relay = r.id, case = %r.case, kind = r.kind.name(), transport = %r.transport, "relay message sent");
                AttemptOutcome::Delivered { external_id: None }
            }
            Err(Fail::RetryAfter { wait, scope, error }) => {
                tracing::warn!(relay = r.id, case = %r.case, wait_ms = wait.as_millis() as u64, "relay message must wait");
                if let Some(scope) = scope {
                    self.block(scope, at(wait));
                }
                AttemptOutcome::Retry {
                    at: at(wait),
                    error,
                }
            }
            Err(Fail::Transient(error)) if r.attempts + 1 < self.cfg.max_attempts => {
                tracing::warn!(relay = r.id, case = %r.case, attempt = r.attempts + 1, error = %error, "relay message failed; will retry");
                AttemptOutcome::Retry {
                    at: at(self.cfg.backoff(r.attempts)),
                    error,
                }
            }
            Err(Fail::Transient(error)) | Err(Fail::Permanent(error)) => {
                tracing::error!(relay = r.id, case = %r.case, kind = r.kind.name(), error = %error, "relay message failed for good");
                AttemptOutcome::Failed { error }
            }
        };
        let ours = self
            .store
            .record_relay(r.id, &self.owner, &outcome, now)
            .await?;
        if !ours {
            tracing::warn!(relay = r.id, case = %r.case, "the relay message's lease ran out and another worker took it over; this attempt's result is dropped");
            return Ok(());
        }
        if let AttemptOutcome::Failed { error } = &outcome {
            self.tell_admin(
                format!("relay-{}-failed", r.id),
                format!(
                    "# {case}: メッセージを送れませんでした / a relay message failed for good\n\n- kind: {kind}\n- platform: {t}\n- to: {target}\n- reason: {error}\n\n`madoguchi cases show {case}` に記録があります。 / See `madoguchi cases show {case}`.\n",
                    case = r.case,
                    kind = r.kind.name(),
                    t = r.transport,
                    target = if r.kind == RelayKind::ToOwner { "the owner" } else { r.target.as_str() },
                ),
            )
            .await;
        }
        Ok(())
    }

    /// Sends one leased delivery and records the result.
    async fn handle(
        &self,
        sender: &dyn Sender,
        mut d: DeliveryRecord,
        unknown: bool,
    ) -> Result<Handled, StoreError> {
        let now = self.clock.now();
        if let Some(scope) = sender.scope(&d) {
            let open_at = self.blocked_until(&scope, now);
            if let Some(at) = open_at {
                self.store.release_lease(d.id, &self.owner, at).await?;
                return Ok(Handled {
                    delivery: d,
                    result: Handling::Deferred(at),
                });
            }
        }
        let result = match self.store.case(d.case).await? {
            None => Err(Fail::Permanent("the case no longer exists".into())),
            // `forget` blanks the sheet and fails pending deliveries in one
            // transaction; a delivery leased just before that must not send
            // the (blank) case out afterwards.
            Some(case) if case.summary_plain.is_empty() => {
                Err(Fail::Permanent("the owner deleted their data".into()))
            }
            Some(case) => self.attempt(sender, &mut d, &case, unknown).await,
        };
        let now = self.clock.now();
        let outcome = self.decide(&d, result, now);
        let ours = self
            .store
            .record_leased_attempt(d.id, &self.owner, &outcome, now)
            .await?;
        if let (true, AttemptOutcome::Failed { error }) = (ours, &outcome) {
            let waiting = self
                .store
                .relays_of_case(d.case)
                .await?
                .iter()
                .filter(|r| {
                    r.kind == RelayKind::ToHub
                        && r.status == crate::store::DeliveryStatus::Pending
                        && r.target == d.hub_id
                        && r.transport == d.transport
                })
                .count();
            self.tell_admin(
                format!("delivery-{}-failed", d.id),
                format!(
                    "# {case}: 案件の配信に失敗しました / a case delivery failed for good\n\n- hub: {hub}\n- platform: {t} ({target})\n- reason: {error}\n- 待機中のスレッド宛メッセージ / messages waiting for its thread: {waiting}\n\n原因を直してから `madoguchi cases retry-delivery {case} --hub {hub}` を実行すると、案件が投稿され、待機中のメッセージも続きます。 / Fix the cause, then `madoguchi cases retry-delivery {case} --hub {hub}`: the case is posted and the waiting messages follow.\n",
                    case = d.case,
                    hub = d.hub_id,
                    t = d.transport,
                    target = d.target,
                ),
            )
            .await;
        }
        let result = if ours {
            Handling::Recorded(outcome)
        } else {
            tracing::warn!(delivery = d.id, case = %d.case, "the delivery's lease ran out and another worker took it over; this attempt's result is dropped");
            Handling::LeaseLost(outcome)
        };
        Ok(Handled {
            delivery: d,
            result,
        })
    }

    /// `find_existing` when the earlier outcome is unknown, then `send`.
    async fn attempt(
        &self,
        sender: &dyn Sender,
        d: &mut DeliveryRecord,
        case: &CaseRecord,
        unknown: bool,
    ) -> Result<Sent, Fail> {
        if unknown && d.external_id.is_none() {
            if let Some(found) = sender.find_existing(d, case).await? {
                tracing::info!(delivery = d.id, case = %d.case, "found the post an earlier attempt made; finishing it instead of posting again");
                self.store
                    .set_delivery_external_id(d.id, &found)
                    .await
                    .map_err(|e| Fail::Transient(format!("store: {e}")))?;
                d.external_id = Some(found);
            }
        }
        sender.send(d, case).await
    }

    /// The outcome to record for a result, at `now`.
    fn decide(
        &self,
        d: &DeliveryRecord,
        result: Result<Sent, Fail>,
        now: DateTime<Utc>,
    ) -> AttemptOutcome {
        let at = |wait: Duration| now + chrono::Duration::from_std(wait).unwrap_or_default();
        match result {
            Ok(sent) => {
                tracing::info!(delivery = d.id, case = %d.case, hub = %d.hub_id, transport = %d.transport, "case delivered");
                AttemptOutcome::Delivered {
                    external_id: sent.external_id,
                }
            }
            Err(Fail::RetryAfter { wait, scope, error }) => {
                tracing::warn!(delivery = d.id, case = %d.case, wait_ms = wait.as_millis() as u64, scope = scope.as_deref().unwrap_or(""), "case delivery must wait");
                if let Some(scope) = scope {
                    self.block(scope, at(wait));
                }
                AttemptOutcome::Retry {
                    at: at(wait),
                    error,
                }
            }
            Err(Fail::Transient(error)) if d.attempts + 1 < self.cfg.max_attempts => {
                tracing::warn!(delivery = d.id, case = %d.case, attempt = d.attempts + 1, error = %error, "case delivery failed; will retry");
                AttemptOutcome::Retry {
                    at: at(self.cfg.backoff(d.attempts)),
                    error,
                }
            }
            Err(Fail::Transient(error)) | Err(Fail::Permanent(error)) => {
                tracing::error!(delivery = d.id, case = %d.case, hub = %d.hub_id, error = %error, "case delivery failed for good; see `madoguchi cases show`");
                AttemptOutcome::Failed { error }
            }
        }
    }

    fn block(&self, scope: String, until: DateTime<Utc>) {
        let mut b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let e = b.entry(scope).or_insert(until);
        *e = (*e).max(until);
    }

    /// When `scope` opens again, if it is still closed at `now`.
    fn blocked_until(&self, scope: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        b.retain(|_, until| *until > now);
        b.get(scope).copied()
    }

    /// Runs the worker on its own task until [`Running::shutdown`].
    pub fn spawn(self) -> Running {
        let wake = self.waker();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(Arc::new(self).run(stop_rx));
        Running { stop, task, wake }
    }

    /// Runs until `stop` turns true: delivers what is due, then sleeps until
    /// woken (a new case) or the poll interval passes. A full batch means
    /// more may be due, so the next is leased at once: many cases finishing
    /// together must not wait a poll interval per batch.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            let mut full = false;
            for s in &self.senders {
                let mut out = Vec::new();
                match self.pass(s.as_ref(), &mut out, Some(&stop)).await {
                    Ok(n) => full |= n as i64 >= BATCH,
                    Err(e) => {
                        tracing::error!(error = %e, transport = s.transport(), "the delivery worker cannot use the outbox; retrying")
                    }
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.poll_interval()) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// A worker started with [`Outbox::spawn`].
pub struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    wake: Arc<Notify>,
}

impl Running {
    /// The notification that wakes the worker (give it to the platforms,
    /// which notify it when they create a case).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops the worker: a delivery in progress is finished and recorded;
    /// the rest of its batch is given back at once for another instance.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// The outbox `madoguchi run` starts, on every instance (leader or
/// standby: leases keep two instances from sending one delivery), with one
/// sender per configured platform: Discord when its token is given, Slack
/// when its sender is (`slack::sender`, built from the Slack config by the
/// caller so that this module needs no Slack setup). Posting needs only
/// each platform's HTTP API, not the gateway or socket connection only the
/// leader holds. This is the only place the run's outbox is put together.
pub fn for_run(
    cfg: &crate::discord::Config,
    discord_token: Option<&crate::discord::Token>,
    slack: Option<Arc<dyn Sender>>,
    inbox: &std::path::Path,
    runner: Arc<crate::runner::Runner>,
) -> Outbox {
    // Hubs without a chat target (`terminal:` in routing) get their cases
    // as files in the inbox, from every kind of run.
    let mut outbox = Outbox::new(
        runner.store().clone(),
        runner.clock().clone(),
        cfg.outbox.clone(),
    )
    .with_sender(Arc::new(local::LocalSender::new(inbox)))
    .with_admin_inbox(inbox);
    if let Some(s) = slack {
        outbox = outbox.with_sender(s);
    }
    if let Some(t) = discord_token {
        outbox = outbox.with_sender(crate::discord::sender(cfg, t, runner));
    }
    outbox
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{CaseId, Transport, UserKey};
    use crate::store::{CasePost, DeliveryStatus};

    fn relay(kind: RelayKind) -> RelayRecord {
        let now = chrono::Utc::now();
        RelayRecord {
            id: 7,
            case: CaseId(3),
            user: UserKey::new(Transport::Discord, "42").unwrap(),
            kind,
            transport: "slack".into(),
            target: "a".into(),
            body: Some("{}".into()),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            message_ids: vec![],
            created_at: now,
            delivered_at: None,
        }
    }

    fn delivery(hub: &str, status: DeliveryStatus) -> DeliveryRecord {
        let now = chrono::Utc::now();
        DeliveryRecord {
            id: 1,
            case: CaseId(3),
            hub_id: hub.into(),
            transport: "slack".into(),
            target: "C1".into(),
            status,
            attempts: 12,
            next_attempt_at: now,
            last_error: Some("channel_not_found".into()),
            external_id: None,
            created_at: now,
            delivered_at: None,
        }
    }

    /// A message for a thread whose post failed for good waits with the
    /// reason; one whose post is only pending, or made, does not.
    #[test]
    fn a_thread_message_waits_with_its_reason_only_while_the_post_failed() {
        let r = relay(RelayKind::ToHub);
        let failed = [delivery("a", DeliveryStatus::Failed)];
        let why = waiting_for_post(&r, &[], &failed).expect("waits");
        assert!(
            why.contains("failed for good") && why.contains("channel_not_found"),
            "{why}"
        );
        assert_eq!(
            waiting_for_post(&r, &[], &[delivery("a", DeliveryStatus::Pending)]),
            None
        );
        assert_eq!(
            waiting_for_post(&r, &[], &[delivery("b", DeliveryStatus::Failed)]),
            None
        );
        let post = CasePost {
            case: CaseId(3),
            hub_id: "a".into(),
            transport: "slack".into(),
            channel_id: "C1".into(),
            message_id: "1.2".into(),
            thread_id: None,
            created_at: chrono::Utc::now(),
        };
        assert_eq!(waiting_for_post(&r, &[post], &failed), None);
        assert_eq!(
            waiting_for_post(&relay(RelayKind::ToOwner), &[], &failed),
            None
        );
    }

    /// What waits for a platform this process does not run is named with
    /// what to do; a served platform and failed rows are not mentioned.
    #[test]
    fn pending_work_for_a_platform_not_run_is_named() {
        let ops = crate::store::facts::OpsCounts {
            deliveries: vec![
                ("discord".into(), "pending".into(), 2),
                ("slack".into(), "pending".into(), 1),
                ("slack".into(), "failed".into(), 5),
            ],
            relays: vec![
                ("slack".into(), "to_hub".into(), "pending".into(), 3),
                ("slack".into(), "erase".into(), "pending".into(), 1),
            ],
            ..Default::default()
        };
        let lines = unserved(&ops, &["local", "discord"]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("1 case delivery(ies) and 4 relay message(s) wait for slack")
                && lines[0].contains("SLACK_BOT_TOKEN"),
            "{lines:?}"
        );
        assert!(unserved(&ops, &["local", "discord", "slack"]).is_empty());
    }
}
