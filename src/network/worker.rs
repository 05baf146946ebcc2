//! The timer loop: keeps every case's reminder timers in the store
//! ([`reminders::case_timers`]), claims the due ones, and sends what
//! [`reminders::decide`] says through [`NoticeSink`]s (a hub's Discord
//! channel or thread, else its local inbox; an owner's DM).
//!
//! Time comes from the caller ([`TimerWorker::tick`] takes `now`), so the
//! tests move a clock instead of waiting. A case gets its timers when it
//! changes: the runner schedules a new case's, and every staff action
//! through [`crate::casework`] (any platform, the terminal) calls
//! [`schedule_case`]. The loop ([`TimerWorker::step`]) then only fires
//! what is due; it brings every case's timers in line with the cases as
//! they are ([`TimerWorker::sync`], which reads every open and claimed
//! case) at its start and every [`TimerWorker::sync_every`] after, as a
//! backstop for a change made some other way (an older version, a store
//! edited by hand, a scheduling that failed).
//!
//! A due timer is claimed by one process, which sends and then marks it
//! fired; a process that dies between the two leaves the claim to run out
//! and the notice to be sent again after the lease by another: a staff
//! notice may then appear twice, never not at all. The inbox sink writes
//! one file per timer, so there the retry finds its file and writes nothing.

use super::reminders::{self, Decision, Mention, Notice, Overdue};
use crate::domain::ids::UserKey;
use crate::routing::{Hub, Routing};
use crate::script::Lang;
use crate::store::{
    CaseFilter, CaseRecord, CaseStatus, ForwardStatus, Store, StoreError, TimerFilter,
    TimerOutcome, TimerStatus,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A staff notice as a sink sends it.
#[derive(Debug)]
pub struct StaffNotice<'a> {
    pub hub: &'a Hub,
    pub case: &'a CaseRecord,
    pub mention: &'a Mention,
    pub text: &'a str,
    /// The case's sheet, when the notice carries it.
    pub sheet: Option<&'a str>,
    /// Unique per timer, for sinks that make a send idempotent.
    pub key: &'a str,
}

/// Why a sink could not send a notice. The timer is tried again after
/// `retry_after` when the platform said how long to wait (a 429's
/// `Retry-After`), else after the worker's own wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NoticeError {
    pub message: String,
    pub retry_after: Option<std::time::Duration>,
}

impl From<&str> for NoticeError {
    fn from(message: &str) -> Self {
        NoticeError::from(message.to_string())
    }
}

impl From<String> for NoticeError {
    fn from(message: String) -> Self {
        NoticeError {
            message,
            retry_after: None,
        }
    }
}

/// Where notices go. A sink answers `Ok(false)` for a hub or owner it does
/// not reach (no Discord target, an owner on the terminal), so the next
/// sink can try.
#[async_trait]
pub trait NoticeSink: Send + Sync {
    async fn staff(&self, n: &StaffNotice<'_>) -> Result<bool, NoticeError>;
    async fn owner(&self, user: &UserKey, text: &str, key: &str) -> Result<bool, NoticeError>;
    /// The monthly KPI summary for the administrators' channel: `Ok(false)`
    /// when this sink has no such channel configured.
    async fn admin(&self, _post: &crate::report::monthly::AdminPost) -> Result<bool, NoticeError> {
        Ok(false)
    }
    /// A sink that takes the administrators' summary only when no chat
    /// platform took it (the local inbox).
    fn last_resort(&self) -> bool {
        false
    }
}

/// Staff notices for hubs with a local inbox, as Markdown files
/// `INBOX/<hub>/reminders/C-000012-t7.md` (one per timer, written once,
/// atomically).
pub struct InboxSink {
    pub inbox: PathBuf,
}

#[async_trait]
impl NoticeSink for InboxSink {
    async fn staff(&self, n: &StaffNotice<'_>) -> Result<bool, NoticeError> {
        let target = n
            .hub
            .terminal
            .clone()
            .unwrap_or_else(|| n.hub.id.to_string());
        let dir = crate::delivery::target_dir(&self.inbox, &target).join("reminders");
        let path = dir.join(format!("{}-t{}.md", n.case.id, n.key));
        let mut body = format!("# {}\n\n{}\n", n.case.id, n.text);
        if let Some(sheet) = n.sheet {
            body.push_str("\n---\n\n");
            body.push_str(&crate::escape::inbox_markdown(sheet));
            body.push('\n');
        }
        tokio::task::spawn_blocking(move || write_once(&dir, &path, &body))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot write the reminder file in the inbox: {e}"))?;
        Ok(true)
    }

    async fn owner(&self, _user: &UserKey, _text: &str, _key: &str) -> Result<bool, NoticeError> {
        Ok(false)
    }

    /// `INBOX/admin/summary-YYYY-MM.md`, written once.
    async fn admin(&self, post: &crate::report::monthly::AdminPost) -> Result<bool, NoticeError> {
        let dir = crate::delivery::target_dir(&self.inbox, "admin");
        let path = dir.join(&post.file);
        let body = format!("{}\n", post.text.trim_end());
        tokio::task::spawn_blocking(move || write_once(&dir, &path, &body))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot write the monthly summary in the inbox: {e}"))?;
        Ok(true)
    }

    fn last_resort(&self) -> bool {
        true
    }
}

/// Writes `path` unless it exists: a temporary file renamed over it, so
/// the file is either absent or complete.
fn write_once(dir: &std::path::Path, path: &std::path::Path, body: &str) -> std::io::Result<()> {
    use std::io::Write;
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("md.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What one tick did (for logs and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Timers newly scheduled.
    pub scheduled: usize,
    /// Timers cancelled because their case moved on.
    pub cancelled: usize,
    /// (kind, case) of the timers that fired and sent their notices.
    pub fired: Vec<(String, i64)>,
    /// Timers that came due but were moot.
    pub moot: usize,
    /// Notices no sink could reach (e.g. an owner on the terminal).
    pub unreached: usize,
    /// Timers put back for a retry after a send failed.
    pub retried: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The timer loop's state: who it is (its holder name), where notices go,
/// and the timers it already scheduled (so a tick asks the store only
/// about new ones).
pub struct TimerWorker {
    pub store: Arc<dyn Store>,
    pub sinks: Vec<Arc<dyn NoticeSink>>,
    pub holder: String,
    pub staff_lang: Lang,
    /// How long a claim holds before another process may take the timer.
    pub lease: Duration,
    /// How long to wait before a failed send is tried again, when the
    /// platform did not say ([`NoticeError::retry_after`]).
    pub retry_after: Duration,
    /// How often [`TimerWorker::step`] runs the backstop sync.
    pub sync_every: Duration,
    scheduled: Mutex<HashSet<(String, String)>>,
    last_sync: Mutex<Option<DateTime<Utc>>>,
    /// The monthly summary this worker saw posted (by itself or another
    /// instance), so that the store is not asked again every step.
    summary_done: Mutex<Option<String>>,
    /// After a summary no platform took: not before this time again (the
    /// report is not rebuilt at every step while a channel is down).
    summary_retry_at: Mutex<Option<DateTime<Utc>>>,
}

/// A name for this worker among every process on the database: the
/// process id, its start time and a counter (two workers in one process
/// are two holders).
fn holder_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{t:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Forward requests and due timers handled per query.
const BATCH: i64 = 500;
/// Cases of each status read per tick.
const CASES_PER_TICK: i64 = 10_000;

impl TimerWorker {
    pub fn new(store: Arc<dyn Store>, sinks: Vec<Arc<dyn NoticeSink>>, staff_lang: Lang) -> Self {
        TimerWorker {
            store,
            sinks,
            holder: holder_name(),
            staff_lang,
            lease: Duration::minutes(5),
            retry_after: Duration::minutes(5),
            sync_every: Duration::minutes(15),
            scheduled: Mutex::new(HashSet::new()),
            last_sync: Mutex::new(None),
            summary_done: Mutex::new(None),
            summary_retry_at: Mutex::new(None),
        }
    }

    /// Posts last month's KPI summary once ([`crate::report::monthly`]:
    /// claimed in the store, so once across restarts and instances) to
    /// every sink with an administrators' channel (Discord, Slack); when
    /// none has one, to the last-resort sinks (the local inbox). When
    /// every sink that tried failed, the claim is given back and a step an
    /// hour later (by the injected clock) tries again. Returns the key
    /// posted.
    pub async fn monthly_summary(
        &self,
        net: &crate::report::Network,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let (month, _) = crate::report::monthly::previous_month(now);
        let key = crate::report::monthly::key(month);
        if self
            .summary_done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            == Some(&key)
        {
            return Ok(None);
        }
        if self
            .summary_retry_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| now < at)
        {
            return Ok(None);
        }
        let lang = match self.staff_lang {
            Lang::En => crate::report::render::Lang::En,
            _ => crate::report::render::Lang::Ja,
        };
        let sinks = &self.sinks;
        let tried = std::sync::atomic::AtomicBool::new(false);
        let tried_ref = &tried;
        let r = crate::report::monthly::post_once(
            self.store.as_ref(),
            net,
            now,
            lang,
            |post| async move {
                tried_ref.store(true, std::sync::atomic::Ordering::SeqCst);
                post_admin(sinks, &post).await
            },
        )
        .await?;
        // Posted now, or claimed before (tried is false): either way done.
        if r.is_some() || !tried.load(std::sync::atomic::Ordering::SeqCst) {
            *self.summary_done.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
        } else {
            *self
                .summary_retry_at
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(now + Duration::hours(1));
        }
        Ok(r)
    }

    async fn schedule(
        &self,
        t: &crate::store::NewTimer,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let key = (t.kind.clone(), t.subject.clone());
        if self
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(());
        }
        let (_, created) = self.store.schedule_timer(t, now).await?;
        if created {
            report.scheduled += 1;
        }
        self.scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        Ok(())
    }

    /// Brings the timers in line with the cases and forward requests as
    /// they are now.
    pub async fn sync(
        &self,
        routing: &Routing,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let policy = &routing.reminders;
        let pending = self
            .store
            .timers(&TimerFilter {
                kinds: reminders::CASE_KINDS
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
                status: Some(TimerStatus::Pending),
                ..TimerFilter::default()
            })
            .await?;
        // Every case that is not closed, so that a pending timer whose case
        // is not among them belongs to a case that closed (or is gone).
        let mut live = HashSet::new();
        let mut complete = true;
        for status in [CaseStatus::Open, CaseStatus::Claimed] {
            let cases = self
                .store
                .cases(&CaseFilter {
                    status: Some(status),
                    limit: Some(CASES_PER_TICK),
                    ..CaseFilter::default()
                })
                .await?;
            complete &= (cases.len() as i64) < CASES_PER_TICK;
            for case in &cases {
                live.insert(case.id.0);
                let planned = reminders::case_timers(case, policy);
                for t in &planned {
                    self.schedule(t, now, report).await?;
                }
                let mine: Vec<_> = pending
                    .iter()
                    .filter(|t| t.case == Some(case.id))
                    .cloned()
                    .collect();
                for t in reminders::stale_timers(&planned, &mine) {
                    if self
                        .store
                        .cancel_timer(&t.kind, &t.subject, "the case moved on", now)
                        .await?
                    {
                        report.cancelled += 1;
                    }
                }
            }
        }
        // Timers of cases that closed meanwhile (only when every live case
        // was read; otherwise they are found moot when they come due).
        if complete {
            for t in &pending {
                if t.case.is_some_and(|c| !live.contains(&c.0))
                    && self
                        .store
                        .cancel_timer(&t.kind, &t.subject, "the case is closed", now)
                        .await?
                {
                    report.cancelled += 1;
                }
            }
        }
        for req in self.store.pending_forward_requests(BATCH).await? {
            for t in reminders::forward_timers(&req, policy) {
                self.schedule(&t, now, report).await?;
            }
        }
        Ok(())
    }

    /// One pass: sync, then fire every due timer of this module's kinds.
    pub async fn tick(
        &self,
        routing: &Routing,
        now: DateTime<Utc>,
    ) -> Result<TickReport, TimerError> {
        let mut report = TickReport::default();
        self.sync(routing, now, &mut report).await?;
        *self.last_sync.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        self.fire_due(routing, now, &mut report).await?;
        Ok(report)
    }

    /// What the loop runs each time: fires every due timer, after the
    /// backstop sync when none ran yet or the last one is
    /// [`TimerWorker::sync_every`] old (or the clock went back).
    pub async fn step(
        &self,
        routing: &Routing,
        now: DateTime<Utc>,
    ) -> Result<TickReport, TimerError> {
        let last = *self.last_sync.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|l| now < l || now - l >= self.sync_every) {
            return self.tick(routing, now).await;
        }
        let mut report = TickReport::default();
        self.fire_due(routing, now, &mut report).await?;
        Ok(report)
    }

    /// Fires every due timer of this module's kinds.
    pub async fn fire_due(
        &self,
        routing: &Routing,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), TimerError> {
        loop {
            let due = self
                .store
                .claim_due_timers(&reminders::KINDS, now, &self.holder, self.lease, 50)
                .await?;
            if due.is_empty() {
                break;
            }
            for t in due {
                self.fire(routing, &t, now, report).await?;
            }
        }
        Ok(())
    }

    async fn fire(
        &self,
        routing: &Routing,
        t: &crate::store::TimerRecord,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let finish = |o: TimerOutcome| async move {
            self.store.finish_timer(t.id, &self.holder, &o, now).await
        };
        let Some(case) = (match t.case {
            Some(c) => self.store.case(c).await?,
            None => None,
        }) else {
            report.moot += 1;
            finish(TimerOutcome::Cancelled {
                reason: "the case is gone".into(),
            })
            .await?;
            return Ok(());
        };
        let forward = match t.payload.get("forward").and_then(|v| v.as_i64()) {
            Some(id) => self.store.forward_request(id).await?,
            None => None,
        };
        let consents = self.store.consents(&case.user).await?;
        let owner_lang = match self.store.session(case.session).await? {
            Some(s) => s.lang,
            None => Lang::Ja,
        };
        let decision = reminders::decide(
            t,
            reminders::Facts {
                case: &case,
                forward: forward.as_ref(),
                consents: &consents,
                routing,
                staff_lang: self.staff_lang,
                owner_lang,
            },
        );
        let (notices, lapse_forward, audit) = match decision {
            Decision::Moot(reason) => {
                report.moot += 1;
                finish(TimerOutcome::Cancelled { reason }).await?;
                return Ok(());
            }
            Decision::Act {
                notices,
                lapse_forward,
                audit,
            } => (notices, lapse_forward, audit),
        };
        let key = t.id.to_string();
        let mut notes = Vec::new();
        for n in &notices {
            let sent = match n {
                Notice::Staff {
                    hub,
                    mention,
                    text,
                    with_sheet,
                    ..
                } => match routing.hub(hub) {
                    None => Ok(false),
                    Some(h) => {
                        let sheet = with_sheet.then_some(case.summary_markdown.as_str());
                        let sn = StaffNotice {
                            hub: h,
                            case: &case,
                            mention,
                            text,
                            sheet,
                            key: &key,
                        };
                        self.every_sink(|s| {
                            let sn = &sn;
                            Box::pin(async move { s.staff(sn).await })
                        })
                        .await
                    }
                },
                Notice::Owner { user, text } => {
                    self.first_sink(|s| {
                        let (user, text, key) = (user, text, &key);
                        Box::pin(async move { s.owner(user, text, key).await })
                    })
                    .await
                }
            };
            match sent {
                Ok(true) => notes.push("sent"),
                Ok(false) => {
                    report.unreached += 1;
                    notes.push("no way to reach the recipient");
                }
                Err(e) => {
                    // A platform that said how long to wait (Slack's 429)
                    // is tried again then, not after the worker's own wait.
                    let wait = e
                        .retry_after
                        .and_then(|w| Duration::from_std(w).ok())
                        .map_or(self.retry_after, |w| w.max(Duration::seconds(1)));
                    tracing::warn!(timer = t.id, kind = %t.kind, error = %e, retry_in_s = wait.num_seconds(), "a reminder could not be sent; trying again later");
                    report.retried += 1;
                    finish(TimerOutcome::Retry {
                        at: now + wait,
                        error: e.message,
                    })
                    .await?;
                    return Ok(());
                }
            }
        }
        if let Some(id) = lapse_forward {
            self.store
                .decide_forward_request(id, ForwardStatus::Lapsed, now)
                .await?;
        }
        self.store
            .append_audit(Some(case.id), "madoguchi", audit.0, &audit.1, now)
            .await?;
        finish(TimerOutcome::Fired {
            note: Some(notes.join("; ")),
        })
        .await?;
        report.fired.push((t.kind.clone(), case.id.0));
        Ok(())
    }

    /// A staff notice goes to the hub on every platform it has a target on
    /// (a hub with both Discord and Slack got the case posted on both, and
    /// its staff may watch either), and to the local inbox only when no
    /// platform reached it. A failure stops the loop and the timer is tried
    /// again: the sinks that can find their own earlier post (Slack's
    /// metadata) come first in [`sinks_for_run`], so a retry does not post
    /// twice where a notice already arrived.
    async fn every_sink<'s, F>(&'s self, mut f: F) -> Result<bool, NoticeError>
    where
        F: FnMut(
            &'s Arc<dyn NoticeSink>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<bool, NoticeError>> + Send + 's>,
        >,
    {
        let mut reached = false;
        for s in self.sinks.iter().filter(|s| !s.last_resort()) {
            reached |= f(s).await?;
        }
        if reached {
            return Ok(true);
        }
        for s in self.sinks.iter().filter(|s| s.last_resort()) {
            if f(s).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The first sink that reaches the recipient (`Ok(false)` if none does).
    async fn first_sink<'s, F>(&'s self, mut f: F) -> Result<bool, NoticeError>
    where
        F: FnMut(
            &'s Arc<dyn NoticeSink>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<bool, NoticeError>> + Send + 's>,
        >,
    {
        for s in &self.sinks {
            if f(s).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Brings one case's timers in line with its present state: schedules
/// what [`reminders::case_timers`] plans for it and cancels its pending
/// timers of the case's own kinds that this state no longer has (it was
/// claimed, forwarded, advanced, closed). Returns (scheduled, cancelled).
pub async fn schedule_case(
    store: &dyn Store,
    policy: &crate::routing::ReminderPolicy,
    case: &CaseRecord,
    now: DateTime<Utc>,
) -> Result<(usize, usize), StoreError> {
    let planned = reminders::case_timers(case, policy);
    let mut scheduled = 0;
    for t in &planned {
        if store.schedule_timer(t, now).await?.1 {
            scheduled += 1;
        }
    }
    let pending = store
        .timers(&TimerFilter {
            kinds: reminders::CASE_KINDS
                .iter()
                .map(|k| k.to_string())
                .collect(),
            case: Some(case.id),
            status: Some(TimerStatus::Pending),
            ..TimerFilter::default()
        })
        .await?;
    let mut cancelled = 0;
    for t in reminders::stale_timers(&planned, &pending) {
        if store
            .cancel_timer(&t.kind, &t.subject, "the case moved on", now)
            .await?
        {
            cancelled += 1;
        }
    }
    Ok((scheduled, cancelled))
}

/// Schedules the timers of a forward request waiting for the owner's
/// consent (the owner's reminder and the lapse).
pub async fn schedule_forward(
    store: &dyn Store,
    policy: &crate::routing::ReminderPolicy,
    request: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let Some(req) = store.forward_request(request).await? else {
        return Ok(0);
    };
    let mut n = 0;
    for t in reminders::forward_timers(&req, policy) {
        if store.schedule_timer(&t, now).await?.1 {
            n += 1;
        }
    }
    Ok(n)
}

/// [`schedule_case`] (and [`schedule_forward`] for a new request) after a
/// change that is already committed: a failure is logged, not returned,
/// since the change stands and the loop's backstop sync schedules the
/// timers later.
pub async fn after_change(
    store: &dyn Store,
    policy: &crate::routing::ReminderPolicy,
    case: &CaseRecord,
    request: Option<i64>,
    now: DateTime<Utc>,
) {
    if let Err(e) = schedule_case(store, policy, case, now).await {
        tracing::warn!(case = %case.id, error = %e, "the case's reminder timers could not be scheduled; the timer loop will");
    }
    if let Some(r) = request {
        if let Err(e) = schedule_forward(store, policy, r, now).await {
            tracing::warn!(case = %case.id, error = %e, "the forward request's timers could not be scheduled; the timer loop will");
        }
    }
}

/// What is overdue at `now`, worked out from the cases and forward
/// requests as they are (so it holds also where no bot runs): open cases
/// past their claim limit or escalation, claimed cases past their nudge,
/// forwards past the consent reminder or lapse. Earliest first.
pub async fn due_now(
    store: &dyn Store,
    routing: &Routing,
    now: DateTime<Utc>,
) -> Result<Vec<Overdue>, StoreError> {
    let policy = &routing.reminders;
    let mut planned = Vec::new();
    for status in [CaseStatus::Open, CaseStatus::Claimed] {
        for case in store
            .cases(&CaseFilter {
                status: Some(status),
                limit: Some(CASES_PER_TICK),
                ..CaseFilter::default()
            })
            .await?
        {
            planned.extend(
                reminders::case_timers(&case, policy)
                    .into_iter()
                    .map(|t| (t, case.hub_id.clone())),
            );
        }
    }
    for req in store.pending_forward_requests(CASES_PER_TICK).await? {
        let hub = match store.case(req.case).await? {
            Some(c) => c.hub_id,
            None => continue,
        };
        planned.extend(
            reminders::forward_timers(&req, policy)
                .into_iter()
                .map(|t| (t, hub.clone())),
        );
    }
    let mut out = Vec::new();
    for (t, hub) in planned {
        if t.due_at > now {
            continue;
        }
        let sent = store
            .timers(&TimerFilter {
                kinds: vec![t.kind.clone()],
                case: t.case,
                status: Some(TimerStatus::Fired),
                ..TimerFilter::default()
            })
            .await?
            .iter()
            .any(|r| r.subject == t.subject);
        out.push(Overdue {
            kind: t.kind,
            case: t.case.expect("reminder timers name their case"),
            hub,
            due_at: t.due_at,
            sent,
        });
    }
    out.sort_by_key(|o| (o.due_at, o.case.0));
    Ok(out)
}

/// Runs [`TimerWorker::tick`] every `every` until `stop` turns true, with
/// the routing of the runner's current dialogs and its clock.
pub async fn run_loop(
    worker: Arc<TimerWorker>,
    runner: Arc<crate::runner::Runner>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let bundle = runner.bundle();
        if let Some(flow) = bundle.flows.first() {
            match worker.step(&flow.routing, runner.clock().now()).await {
                Ok(r) if !r.fired.is_empty() || r.retried > 0 => {
                    tracing::info!(
                        fired = r.fired.len(),
                        retried = r.retried,
                        moot = r.moot,
                        "reminder timers"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the reminder timers could not be handled; trying again")
                }
            }
        }
        // The monthly KPI summary rides on the same loop, so it is posted
        // whatever platforms are configured (the inbox when none).
        let flow = bundle
            .flow(crate::report::FUNNEL_SCRIPT, Lang::Ja)
            .or_else(|| bundle.flows.first().cloned());
        if let Some(flow) = flow {
            let net = crate::report::Network::from_flow(&flow);
            match worker.monthly_summary(&net, runner.clock().now()).await {
                Ok(Some(key)) => tracing::info!(%key, "posted the monthly KPI summary"),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "monthly summary: the database did not answer")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// The sinks of the timer loop `madoguchi run` starts: one per configured
/// platform (Discord, Slack, both or none), then the local inbox, which
/// takes every staff notice no platform reaches (a hub with neither
/// target, or a deployment with no chat platform). Owners on the terminal
/// have no sink: their notices are counted as unreached.
pub fn sinks_for_run(
    discord: Option<(&crate::discord::Config, &crate::discord::Token)>,
    slack: Option<&crate::slack::SlackConfig>,
    inbox: &std::path::Path,
    runner: &Arc<crate::runner::Runner>,
) -> Result<Vec<Arc<dyn NoticeSink>>, crate::slack::SlackError> {
    // Slack before Discord: a staff notice goes to both for a hub with
    // both targets, and only Slack's sink finds its own earlier post when
    // a failure on the other makes the timer loop try the notice again.
    let mut sinks: Vec<Arc<dyn NoticeSink>> = Vec::new();
    if let Some(s) = slack {
        sinks.push(crate::slack::notices::notice_sink(
            s,
            runner.store().clone(),
            runner.clock().clone(),
        )?);
    }
    if let Some((cfg, token)) = discord {
        sinks.push(crate::discord::notice_sink(cfg, token, runner.clone()));
    }
    sinks.push(Arc::new(InboxSink {
        inbox: inbox.to_path_buf(),
    }));
    Ok(sinks)
}

/// Sends an administrators' post (the monthly summary, a message the
/// outbox cannot deliver) to every sink with an admin channel; to the
/// last-resort sinks (the inbox's `admin/` folder) when none has one. True
/// when it arrived somewhere (a platform that failed beside one that took
/// it is logged, not retried: the others would get it twice).
pub async fn post_admin(
    sinks: &[Arc<dyn NoticeSink>],
    post: &crate::report::monthly::AdminPost,
) -> bool {
    let mut reached = false;
    let mut failed = false;
    for s in sinks.iter().filter(|s| !s.last_resort()) {
        match s.admin(post).await {
            Ok(r) => reached |= r,
            Err(e) => {
                failed = true;
                tracing::warn!(error = %e, key = %post.key, "could not post to the administrators' channel")
            }
        }
    }
    if reached || failed {
        return reached;
    }
    for s in sinks.iter().filter(|s| s.last_resort()) {
        match s.admin(post).await {
            Ok(r) => reached |= r,
            Err(e) => {
                tracing::warn!(error = %e, key = %post.key, "could not write the administrators' post in the inbox")
            }
        }
    }
    reached
}

/// A timer loop running in its own task.
pub struct RunningTimers {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningTimers {
    /// Starts [`run_loop`] with `worker`, stepping every `every`.
    pub fn spawn(
        worker: TimerWorker,
        runner: Arc<crate::runner::Runner>,
        every: std::time::Duration,
    ) -> RunningTimers {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run_loop(Arc::new(worker), runner, every, rx));
        RunningTimers { stop, task }
    }

    /// Stops the loop after the step in progress (a notice being sent is
    /// finished, or its claim runs out and it is sent after the restart).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
    }
}
