//! Step 5 of the guide (定着支援 / モニタリング): following up after a match.
//!
//! When staff close a case as matched or hired, its owner is offered a
//! short follow-up dialog (`dialogs/follow_up.*.yaml`) at the intervals of
//! the routing file's `follow_up:` section. The answers become a case of
//! their own for the step-5 hub (the chamber or bank the routing rules
//! chose when the case was first routed, named on the owner's consent
//! screen then), sent through the normal outbox only when the owner agrees
//! at the end of the dialog, with a consent record naming that hub.
//!
//! Every follow-up is a row in the store ([`crate::store::FollowUp`]) that
//! moves forward by compare-and-set: scheduled → offered (once, when due)
//! → reminded (at most once) → answered, declined or unanswered. Time is
//! the caller's `now`, so tests move a fixed clock instead of waiting, and
//! a restart (or a second instance) finds the rows where they were.

use crate::domain::ids::{CaseId, Transport, UserKey};
use crate::domain::text::fold_for_match;
use crate::engine::{FollowUpLink, Input, Status};
use crate::routing::{FollowUpPolicy, HubRef, RouteDecision, Routing, FOLLOW_UP_STEP};
use crate::runner::{RunError, Runner, Turn};
use crate::script::{Bundle, Lang};
use crate::store::{
    CaseFilter, CaseRecord, CaseStatus, FollowUp, FollowUpMove, FollowUpStatus, NewTimer, Store,
    StoreError, TimerOutcome,
};
use chrono::{DateTime, Duration, Months, Utc};
use std::sync::Arc;

/// The follow-up dialog's script id.
pub const SCRIPT: &str = "follow_up";

/// The rule name of a follow-up's route (and of the case carrying its
/// answers), so that such a case is never followed up itself.
pub const RULE: &str = "follow-up";

/// Whether staff closed a case as matched or hired, from the outcome they
/// wrote (「採用」「マッチング成立」「副業人材と契約」, "hired"). An outcome
/// that negates it (「不採用」「マッチング不成立」「採用見送り」, "not hired")
/// is not a match: no follow-up is offered for it.
pub fn is_match_outcome(outcome: &str) -> bool {
    let t = fold_for_match(outcome);
    const NOT_JA: &[&str] = &[
        "不採用",
        "不成立",
        "未成立",
        "見送",
        "辞退",
        "不調",
        "破談",
        "なし",
        "無し",
        "ならず",
        "至らず",
        "できず",
        "できなかった",
        "しなかった",
        "されなかった",
        "取り下げ",
        "取下げ",
        "キャンセル",
    ];
    const MATCH_JA: &[&str] = &[
        "採用",
        "成約",
        "マッチング",
        "成立",
        "内定",
        "入社",
        "就任",
        "着任",
        "契約",
        "受け入れ",
        "受入",
    ];
    const NOT_EN: &[&str] = &[
        "not",
        "no",
        "unmatched",
        "failed",
        "cancelled",
        "canceled",
        "withdrawn",
        "declined",
        "none",
    ];
    const MATCH_EN: &[&str] = &["matched", "match", "hired", "hire", "placed", "signed"];
    let lower = outcome.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let negated = NOT_JA.iter().any(|w| t.contains(w)) || words.iter().any(|w| NOT_EN.contains(w));
    let matched =
        MATCH_JA.iter().any(|w| t.contains(w)) || words.iter().any(|w| MATCH_EN.contains(w));
    matched && !negated
}

/// When a case closed at `closed_at` is followed up: the policy's months
/// later, each at the same time of day (the end of a shorter month when
/// the day does not exist there).
pub fn due_times(policy: &FollowUpPolicy, closed_at: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    policy
        .after_months
        .iter()
        .filter_map(|m| closed_at.checked_add_months(Months::new(*m)))
        .collect()
}

/// The route a follow-up's answers take: the step-5 hub named when the
/// case was routed (what the owner was told then), or the case's primary
/// hub for a case routed before the network offered follow-ups. The
/// reason names the case by number only, never by the owner's answers
/// (consent records keep what they show).
pub fn route_for(case: &CaseRecord, seq: u8, routing: &Routing, lang: Lang) -> RouteDecision {
    let hub = case
        .route
        .follow_up
        .clone()
        .unwrap_or_else(|| case.route.primary.clone());
    route_to(hub, case.id, seq, routing, lang)
}

/// The route of follow-up `seq` of `case` to `hub` (see [`route_for`]).
pub fn route_to(
    hub: HubRef,
    case: CaseId,
    seq: u8,
    routing: &Routing,
    lang: Lang,
) -> RouteDecision {
    // The hub's name in the dialog's language, when the network still has it.
    let primary = match routing.hub(&hub.id) {
        Some(h) => HubRef {
            id: hub.id.clone(),
            name: h.display_name(lang).to_string(),
        },
        None => hub,
    };
    let reason = match lang {
        Lang::Ja => format!(
            "案件 {} の採用後フォローアップ（{}回目）。定着支援（STEP5）を担当する{}へ",
            case, seq, primary.name
        ),
        Lang::En => format!(
            "Follow-up {} after the match of case {}, for {}, which supports the settling-in (step 5)",
            seq, case, primary.name
        ),
    };
    RouteDecision {
        rule: RULE.into(),
        reason,
        primary,
        copies: vec![],
        step: FOLLOW_UP_STEP,
        passed_over: vec![],
        follow_up: None,
    }
}

/// What one [`tick`] did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tick {
    /// Matched cases whose follow-ups were scheduled now.
    pub scheduled: Vec<CaseId>,
    /// Follow-ups that became due and were offered now (each exactly once).
    pub offered: Vec<FollowUp>,
    /// Offered follow-ups reminded now (each at most once).
    pub reminded: Vec<FollowUp>,
    /// Follow-ups recorded as unanswered now.
    pub unanswered: Vec<FollowUp>,
}

/// The most timers one tick fires; the rest wait for the next.
const BATCH: i64 = 200;

/// Timer kinds (rows of the store's `timers` table) that move follow-ups.
pub const TIMER_OFFER: &str = "follow_up_offer";
/// The reminder of a Discord owner (the kind every reminder had before
/// Slack owners were followed up, so rows from then keep working).
pub const TIMER_REMIND: &str = "follow_up_remind";
/// The reminder of a Slack owner.
pub const TIMER_REMIND_SLACK: &str = "follow_up_remind_slack";
/// The reminder of a terminal owner: only recorded (there is nothing to
/// push a message to); `madoguchi chat` offers the follow-up when they
/// next start it.
pub const TIMER_REMIND_TERMINAL: &str = "follow_up_remind_terminal";
pub const TIMER_UNANSWERED: &str = "follow_up_unanswered";

/// The reminder timer kind of an owner on `transport`. Reminders have a
/// kind per platform because the process that claims a reminder's timer is
/// the one that must send it: a Discord loop that claimed a Slack owner's
/// reminder could not send it, and the reminder would be lost.
pub fn remind_kind(transport: Transport) -> &'static str {
    match transport {
        Transport::Discord => TIMER_REMIND,
        Transport::Slack => TIMER_REMIND_SLACK,
        Transport::Terminal => TIMER_REMIND_TERMINAL,
    }
}

fn is_remind_kind(kind: &str) -> bool {
    Transport::ALL.iter().any(|t| remind_kind(*t) == kind)
}

/// The timer kinds a caller that sends reminders on `sends` claims: every
/// offer and every recording as unanswered (they only move the store's
/// rows; each adapter finds the offers of its owners in the store), the
/// reminders of those platforms, and the terminal's (recorded only).
pub fn claimed_kinds(sends: &[Transport]) -> Vec<&'static str> {
    let mut kinds = vec![TIMER_OFFER, TIMER_UNANSWERED, TIMER_REMIND_TERMINAL];
    for t in sends {
        let k = remind_kind(*t);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

/// How long a process may hold a claimed timer before another one may take
/// it over (a move is one small transaction).
const LEASE_MINUTES: i64 = 5;

fn timer(kind: &str, f_id: i64, case: CaseId, due_at: DateTime<Utc>) -> NewTimer {
    NewTimer {
        kind: kind.into(),
        subject: format!("follow_up:{f_id}"),
        case: Some(case),
        due_at,
        payload: serde_json::json!({ "follow_up": f_id }),
    }
}

/// Moves every follow-up whose time has come. Scheduling a matched case
/// keeps one follow-up row per interval and a timer row for its offer;
/// an offer keeps the timers of its one reminder and of its recording as
/// unanswered. Each due timer is claimed by one process only (the store's
/// timer claim), and the follow-up's move is a compare-and-set as well, so
/// running this twice, after a restart or on two instances, moves each
/// follow-up once; a timer whose follow-up moved on (answered, declined)
/// fires without effect.
pub async fn tick(
    store: &dyn Store,
    policy: &FollowUpPolicy,
    now: DateTime<Utc>,
) -> Result<Tick, StoreError> {
    tick_for(store, policy, now, &Transport::ALL).await
}

/// [`tick`] for a caller that sends the reminders of owners on `sends`
/// only (a platform's loop): the other platforms' reminders stay pending
/// for their own loops (see [`remind_kind`]).
pub async fn tick_for(
    store: &dyn Store,
    policy: &FollowUpPolicy,
    now: DateTime<Utc>,
    sends: &[Transport],
) -> Result<Tick, StoreError> {
    let mut out = Tick::default();
    let closed = store
        .cases(&CaseFilter {
            status: Some(CaseStatus::Closed),
            ..CaseFilter::default()
        })
        .await?;
    for c in closed {
        if c.route.rule == RULE || !c.outcome.as_deref().is_some_and(is_match_outcome) {
            continue;
        }
        let mut fus = store.follow_ups_of_case(c.id).await?;
        if fus.is_empty() {
            // A closed case is not changed again, so its last update is
            // the moment it was closed.
            let dues = due_times(policy, c.updated_at);
            if store.schedule_follow_ups(c.id, &c.user, &dues, now).await? {
                out.scheduled.push(c.id);
            }
            fus = store.follow_ups_of_case(c.id).await?;
        }
        // Also after a crash between the two writes: scheduling a timer
        // that exists keeps it.
        for f in fus.iter().filter(|f| f.status == FollowUpStatus::Scheduled) {
            store
                .schedule_timer(&timer(TIMER_OFFER, f.id, f.case, f.due_at), now)
                .await?;
        }
    }
    let holder = format!("follow-up/{}", std::process::id());
    let due = store
        .claim_due_timers(
            &claimed_kinds(sends),
            now,
            &holder,
            Duration::minutes(LEASE_MINUTES),
            BATCH,
        )
        .await?;
    for t in due {
        let id = t.payload.get("follow_up").and_then(|v| v.as_i64());
        let (from, to): (&[FollowUpStatus], _) = match t.kind.as_str() {
            TIMER_OFFER => (&[FollowUpStatus::Scheduled], FollowUpStatus::Offered),
            k if is_remind_kind(k) => (&[FollowUpStatus::Offered], FollowUpStatus::Reminded),
            _ => (
                &[FollowUpStatus::Offered, FollowUpStatus::Reminded],
                FollowUpStatus::Unanswered,
            ),
        };
        let moved = match id {
            Some(id) => {
                let r = store
                    .move_follow_up(&FollowUpMove {
                        id,
                        from,
                        to,
                        session: None,
                        answer_case: None,
                        now,
                    })
                    .await;
                match r {
                    Ok(m) => m,
                    // The row is gone (a hand-edited database): nothing to do.
                    Err(StoreError::NotFound(_)) => false,
                    Err(e) => return Err(e),
                }
            }
            None => false,
        };
        let note = (!moved).then(|| "the follow-up had moved on".to_string());
        store
            .finish_timer(t.id, &holder, &TimerOutcome::Fired { note }, now)
            .await?;
        if !moved {
            continue;
        }
        let Some(f) = store
            .follow_ups_of_case(t.case.unwrap_or(CaseId(0)))
            .await?
            .into_iter()
            .find(|f| Some(f.id) == id)
        else {
            continue;
        };
        match to {
            FollowUpStatus::Offered => {
                store
                    .schedule_timer(
                        &timer(
                            remind_kind(f.user.transport()),
                            f.id,
                            f.case,
                            now + Duration::days(policy.remind_after_days.into()),
                        ),
                        now,
                    )
                    .await?;
                store
                    .schedule_timer(
                        &timer(
                            TIMER_UNANSWERED,
                            f.id,
                            f.case,
                            now + Duration::days(policy.unanswered_after_days.into()),
                        ),
                        now,
                    )
                    .await?;
                out.offered.push(f);
            }
            FollowUpStatus::Reminded => out.reminded.push(f),
            _ => out.unanswered.push(f),
        }
    }
    Ok(out)
}

/// Records how a follow-up dialog ended: answered (with the case that
/// carries the answers when the owner agreed to send them), declined for
/// good (「今後は不要」: the case's later follow-ups are cancelled too), or
/// declined this time (the owner said not now, cancelled, or the dialog
/// gave up). A follow-up already recorded (e.g. as unanswered) keeps its
/// record unless the owner answered after all. Failures are logged: the
/// owner's answers are already stored.
pub async fn record_end(
    store: &dyn Store,
    link: &FollowUpLink,
    end: Status,
    answer_case: Option<CaseId>,
    now: DateTime<Utc>,
) {
    let waiting = [
        FollowUpStatus::Scheduled,
        FollowUpStatus::Offered,
        FollowUpStatus::Reminded,
    ];
    let (to, from): (_, &[FollowUpStatus]) = match end {
        Status::Completed => (
            FollowUpStatus::Answered,
            &[
                FollowUpStatus::Offered,
                FollowUpStatus::Reminded,
                FollowUpStatus::Unanswered,
            ],
        ),
        _ => (FollowUpStatus::Declined, &waiting[1..]),
    };
    let r = store
        .move_follow_up(&FollowUpMove {
            id: link.id,
            from,
            to,
            session: None,
            answer_case,
            now,
        })
        .await;
    if let Err(e) = r {
        tracing::error!(follow_up = link.id, case = %link.case, error = %e, "could not record the end of a follow-up");
        return;
    }
    // Its reminder and its recording as unanswered have nothing left to do.
    cancel_timers(
        store,
        link.id,
        &[
            TIMER_REMIND,
            TIMER_REMIND_SLACK,
            TIMER_REMIND_TERMINAL,
            TIMER_UNANSWERED,
        ],
        now,
    )
    .await;
    if end == Status::Declined {
        // 「今後のフォローアップは不要」: no later follow-up of this case.
        let later = match store.follow_ups_of_case(link.case).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(case = %link.case, error = %e, "could not read the follow-ups to cancel");
                return;
            }
        };
        for f in later.into_iter().filter(|f| f.seq > link.seq) {
            let r = store
                .move_follow_up(&FollowUpMove {
                    id: f.id,
                    from: &waiting,
                    to: FollowUpStatus::Cancelled,
                    session: None,
                    answer_case: None,
                    now,
                })
                .await;
            if let Err(e) = r {
                tracing::error!(follow_up = f.id, error = %e, "could not cancel a follow-up");
            }
            cancel_timers(store, f.id, &[TIMER_OFFER], now).await;
        }
    }
}

/// Cancels a follow-up's pending timers of these kinds (best effort: a
/// timer left pending fires without effect, since the follow-up moved on).
async fn cancel_timers(store: &dyn Store, id: i64, kinds: &[&str], now: DateTime<Utc>) {
    for kind in kinds {
        let r = store
            .cancel_timer(kind, &format!("follow_up:{id}"), "the follow-up ended", now)
            .await;
        if let Err(e) = r {
            tracing::warn!(follow_up = id, error = %e, "could not cancel a follow-up timer");
        }
    }
}

/// The follow-up policy of the current dialogs, when they offer
/// follow-ups (a follow-up script and a `follow_up:` section).
pub fn policy(bundle: &Bundle) -> Option<FollowUpPolicy> {
    bundle
        .flows
        .iter()
        .find(|f| f.follow_up && f.script_id == SCRIPT)
        .and_then(|f| f.routing.follow_up.clone())
}

/// The owner's follow-up waiting to be started (offered or reminded, no
/// dialog yet, or one whose dialog is still open), oldest first.
pub async fn waiting_for(
    store: &dyn Store,
    user: &UserKey,
) -> Result<Option<FollowUp>, StoreError> {
    Ok(store
        .follow_ups_of_user(user)
        .await?
        .into_iter()
        .find(|f| f.status.is_waiting()))
}

/// Starts (or resumes) a waiting follow-up's dialog for its owner, in the
/// language of the case's consultation. `None` when the owner is in
/// another conversation (it waits) or the case is gone (the owner deleted
/// their data). The follow-up records its session when it starts.
pub async fn start(runner: &Runner, f: &FollowUp) -> Result<Option<Turn>, RunError> {
    let store: &Arc<dyn Store> = runner.store();
    let Some(case) = store.case(f.case).await? else {
        return Ok(None);
    };
    let lang = match store.session(case.session).await? {
        Some(s) => s.lang,
        None => runner.config().default_lang,
    };
    let bundle = runner.bundle();
    let Some(flow) = bundle
        .flow(SCRIPT, lang)
        .or_else(|| bundle.flow(SCRIPT, runner.config().default_lang))
    else {
        return Err(RunError::NoScript {
            script: SCRIPT.into(),
            lang,
        });
    };
    close_recorded_dialog(runner, f).await?;
    let route = route_for(&case, f.seq, &flow.routing, flow.lang);
    let link = FollowUpLink {
        id: f.id,
        case: f.case,
        seq: f.seq,
    };
    let turn = runner
        .start_follow_up(&f.user, SCRIPT, flow.lang, route, link)
        .await?;
    if let Some(t) = &turn {
        if f.session.is_none() {
            store
                .move_follow_up(&FollowUpMove {
                    id: f.id,
                    from: &[f.status],
                    to: f.status,
                    session: Some(t.session),
                    answer_case: None,
                    now: runner.clock().now(),
                })
                .await?;
        }
    }
    Ok(turn)
}

/// An earlier follow-up's dialog left open after that follow-up was
/// recorded (unanswered, or ended otherwise) is closed when a later
/// follow-up of the same owner starts, so it does not hold the owner for
/// ever: without this, the later follow-up would wait for a dialog nobody
/// will finish, and be recorded as unanswered without ever being shown.
/// The earlier follow-up keeps its record (closing a recorded follow-up's
/// dialog does not change it).
async fn close_recorded_dialog(runner: &Runner, f: &FollowUp) -> Result<(), RunError> {
    let store = runner.store();
    let Some(open) = store.open_session(&f.user).await? else {
        return Ok(());
    };
    let Some(link) = open.state.follow_up.as_deref() else {
        return Ok(());
    };
    if link.id == f.id {
        return Ok(());
    }
    let recorded = store
        .follow_ups_of_case(link.case)
        .await?
        .into_iter()
        .find(|o| o.id == link.id)
        .is_none_or(|o| !o.status.is_waiting() && o.status != FollowUpStatus::Scheduled);
    if recorded {
        runner
            .handle(
                &f.user,
                Input::Command(crate::script::Command::Cancel),
                None,
            )
            .await?;
    }
    Ok(())
}

/// What a terminal chat does first: moves the follow-ups whose time has
/// come (there is no bot running to do it) and starts the owner's waiting
/// follow-up, if any. `None` when nothing waits for this owner or they are
/// in another conversation.
pub async fn offer_due(runner: &Runner, user: &UserKey) -> Result<Option<Turn>, RunError> {
    let store = runner.store().clone();
    if let Some(policy) = policy(&runner.bundle()) {
        tick(store.as_ref(), &policy, runner.clock().now()).await?;
    }
    match waiting_for(store.as_ref(), user).await? {
        Some(f) => start(runner, &f).await,
        None => Ok(None),
    }
}

/// What a platform's follow-up loop sends on one pass.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sends {
    /// Offered follow-ups whose dialog has not started yet: the adapter
    /// starts it in the owner's DM ([`start`]). One that waits for its
    /// owner to finish another conversation stays here until they do.
    pub offers: Vec<FollowUp>,
    /// Follow-ups reminded now whose dialog is open: the adapter sends
    /// [`reminder_text`] and the open question again ([`reminder_turn`]).
    pub reminders: Vec<FollowUp>,
}

/// The decision of one pass, from what [`tick_for`] moved (`reminded`)
/// and the follow-ups waiting for their owners (`waiting`): only this
/// platform's owners; a reminder only for a dialog that started (one that
/// never started is offered instead, when its owner is free); each
/// follow-up once.
pub fn sends_for(transport: Transport, reminded: &[FollowUp], waiting: &[FollowUp]) -> Sends {
    let mine = |f: &&FollowUp| f.user.transport() == transport;
    let reminders: Vec<FollowUp> = reminded
        .iter()
        .filter(mine)
        .filter(|f| f.session.is_some())
        .cloned()
        .collect();
    let mut offers: Vec<FollowUp> = Vec::new();
    for f in waiting
        .iter()
        .filter(mine)
        .filter(|f| f.status.is_waiting() && f.session.is_none())
    {
        if !offers.iter().any(|o| o.id == f.id) {
            offers.push(f.clone());
        }
    }
    Sends { offers, reminders }
}

/// The most waiting follow-ups one pass looks at; the rest wait for the
/// next pass.
const WAITING_BATCH: i64 = 200;

/// One pass of a platform's follow-up loop (Discord's, Slack's): moves
/// what is due ([`tick_for`], claiming only this platform's reminders) and
/// says what to send to this platform's owners. The rows decide, so a
/// restart or a second instance neither repeats nor loses an offer or a
/// reminder.
pub async fn pass(
    store: &dyn Store,
    policy: &FollowUpPolicy,
    now: DateTime<Utc>,
    transport: Transport,
) -> Result<Sends, StoreError> {
    let tick = tick_for(store, policy, now, &[transport]).await?;
    let mut waiting = store
        .follow_ups_waiting(FollowUpStatus::Offered, now, WAITING_BATCH)
        .await?;
    waiting.extend(
        store
            .follow_ups_waiting(FollowUpStatus::Reminded, now, WAITING_BATCH)
            .await?,
    );
    Ok(sends_for(transport, &tick.reminded, &waiting))
}

/// The reminder of a follow-up whose dialog is open: its language and the
/// turn that shows the open question again. `None` when the dialog ended
/// meanwhile, or its owner is in another conversation now.
pub async fn reminder_turn(
    runner: &Runner,
    f: &FollowUp,
) -> Result<Option<(Lang, Turn)>, RunError> {
    let Some(sid) = f.session else {
        return Ok(None);
    };
    let store = runner.store();
    let Some(s) = store.session(sid).await? else {
        return Ok(None);
    };
    if !s.status.is_open() {
        return Ok(None);
    }
    match store.open_session(&f.user).await? {
        Some(open) if open.id == sid => {}
        _ => return Ok(None),
    }
    let turn = runner.handle(&f.user, Input::Resume, None).await?;
    Ok(Some((s.lang, turn)))
}

/// The reminder an owner reads for a follow-up offered earlier.
pub fn reminder_text(lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => "先日お送りした、採用後のフォローアップのおたずねがまだ途中です。3分ほどで終わりますので、よろしければお答えください。不要でしたら「今後のフォローアップは不要」とお送りください。",
        Lang::En => "The follow-up questions we sent after your match are still open. They take about three minutes; if you would rather not receive follow-ups, send \"no more follow-ups\".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn match_outcomes_in_staff_words() {
        for yes in [
            "採用",
            "採用決定（正社員1名）",
            "マッチング成立",
            "副業人材2名と契約",
            "内定・入社",
            "Hired a sales lead",
            "matched with a side-job engineer",
        ] {
            assert!(is_match_outcome(yes), "{yes}");
        }
        for no in [
            "不採用",
            "マッチング不成立",
            "採用見送り",
            "候補者辞退",
            "よろず支援拠点で販路相談を継続",
            "not hired",
            "no match found",
            "",
        ] {
            assert!(!is_match_outcome(no), "{no}");
        }
    }

    fn fu(id: i64, user: &str, status: FollowUpStatus, session: Option<i64>) -> FollowUp {
        let (t, u) = user.split_once(':').unwrap();
        let transport = Transport::ALL
            .into_iter()
            .find(|x| x.as_str() == t)
            .unwrap();
        let at = Utc.with_ymd_and_hms(2027, 2, 1, 3, 0, 0).unwrap();
        FollowUp {
            id,
            case: CaseId(id * 10),
            user: UserKey::new(transport, u).unwrap(),
            seq: 1,
            due_at: at,
            status,
            session: session.map(crate::domain::ids::SessionId),
            answer_case: None,
            offered_at: Some(at),
            reminded_at: None,
            decided_at: None,
            updated_at: at,
        }
    }

    #[test]
    fn each_platform_sends_to_its_own_owners_once() {
        use FollowUpStatus::*;
        let waiting = vec![
            fu(1, "slack:U1", Offered, None),
            fu(2, "discord:42", Offered, None),
            fu(3, "slack:U3", Offered, Some(7)),
            fu(4, "slack:U4", Reminded, None),
            fu(1, "slack:U1", Offered, None),
            fu(5, "terminal:t", Offered, None),
        ];
        let reminded = vec![
            fu(3, "slack:U3", Reminded, Some(7)),
            fu(4, "slack:U4", Reminded, None),
            fu(6, "discord:43", Reminded, Some(8)),
        ];
        let s = sends_for(Transport::Slack, &reminded, &waiting);
        // Started dialogs are not offered again; a listed row is sent once.
        assert_eq!(s.offers.iter().map(|f| f.id).collect::<Vec<_>>(), [1, 4]);
        // A reminder only for an open dialog; one never started is offered.
        assert_eq!(s.reminders.iter().map(|f| f.id).collect::<Vec<_>>(), [3]);
        let d = sends_for(Transport::Discord, &reminded, &waiting);
        assert_eq!(d.offers.iter().map(|f| f.id).collect::<Vec<_>>(), [2]);
        assert_eq!(d.reminders.iter().map(|f| f.id).collect::<Vec<_>>(), [6]);
        // Answered, declined or unanswered rows are never sent.
        let done = vec![
            fu(9, "slack:U9", Answered, None),
            fu(10, "slack:U9", Declined, None),
            fu(11, "slack:U9", Unanswered, None),
        ];
        assert_eq!(sends_for(Transport::Slack, &[], &done), Sends::default());
    }

    #[test]
    fn a_platform_claims_only_its_own_reminders() {
        let slack = claimed_kinds(&[Transport::Slack]);
        assert!(slack.contains(&TIMER_REMIND_SLACK));
        assert!(!slack.contains(&TIMER_REMIND));
        assert!(slack.contains(&TIMER_OFFER) && slack.contains(&TIMER_UNANSWERED));
        let discord = claimed_kinds(&[Transport::Discord]);
        assert!(discord.contains(&TIMER_REMIND) && !discord.contains(&TIMER_REMIND_SLACK));
        // Every reminder kind is a reminder, and all are claimed by `tick`.
        let all = claimed_kinds(&Transport::ALL);
        for t in Transport::ALL {
            assert!(is_remind_kind(remind_kind(t)));
            assert!(all.contains(&remind_kind(t)));
        }
        assert!(!is_remind_kind(TIMER_OFFER) && !is_remind_kind(TIMER_UNANSWERED));
    }

    #[test]
    fn due_times_keep_the_time_of_day_and_clamp_short_months() {
        let policy = FollowUpPolicy {
            after_months: vec![1, 6],
            remind_after_days: 7,
            unanswered_after_days: 14,
            rules: vec![],
        };
        let closed = Utc.with_ymd_and_hms(2027, 1, 31, 3, 0, 0).unwrap();
        assert_eq!(
            due_times(&policy, closed),
            vec![
                Utc.with_ymd_and_hms(2027, 2, 28, 3, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2027, 7, 31, 3, 0, 0).unwrap(),
            ]
        );
    }
}
