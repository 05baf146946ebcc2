//! The consultation engine: a pure state machine.
//!
//! `step(flow, state, input, ctx) -> effects` is the whole interface. It
//! reads no clock (time comes in `Ctx`), touches no file, socket or database,
//! and never blocks; adapters and the runner do all I/O around it. Every
//! accepted answer appears as an [`Effect::Record`] *before* the prompt that
//! follows it, and the runner commits a step's effects to the store before it
//! sends any reply, so an acknowledged answer is never lost.

mod answer;
mod choice;
pub mod tags;
mod words;

use crate::answer::AnswerValue;
use crate::domain::text::fold_for_match;
use crate::render::{self, ContextInput, RenderMode};
use crate::routing::{HubRef, RouteDecision};
use crate::script::cond::Facts;
use crate::script::{AnswerType, Command, EndStatus, Flow, GiveUp, Lang, Next, NodeIx, NodeKind};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub use answer::{parse_answer, understand, Understood};

/// The longest answer accepted from an owner, in characters. Discord's
/// modal text input allows 4,000; a longer message is refused with a clear
/// reply instead of being cut silently.
pub const MAX_ANSWER_CHARS: usize = 4000;

/// Per-step context supplied by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    pub now: DateTime<Utc>,
    /// How owner-facing text will be shown.
    pub mode: RenderMode,
}

impl Ctx {
    pub fn new(now: DateTime<Utc>, mode: RenderMode) -> Ctx {
        Ctx { now, mode }
    }
    /// Today's date in Japan, where the owners are (UTC+9, no DST).
    pub fn today(&self) -> NaiveDate {
        (self.now + chrono::Duration::hours(9)).date_naive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Begin a new consultation.
    Start,
    /// Re-send the current question after a restart of the bot or a return
    /// of the owner.
    Resume,
    /// Anything typed.
    Text(String),
    /// Text typed in a chat where the bot's messages and the owner's are
    /// in one order (Discord, Slack): `node` is the question of `session`
    /// the owner had been shown last when they typed it, read by the adapter
    /// from that order. Typed under another question than the current one
    /// (the owner answered what they saw: a message written before the next
    /// question reached them, or again after a reply that never came), it
    /// is not taken as the answer to the current question, which is asked
    /// again with a note; commands that do not depend on the question
    /// (help, answers, restart, cancel) still work. The runner clears `node`
    /// when `session` is not the session it steps, so only `node` is read
    /// here.
    TextUnder {
        text: String,
        session: i64,
        node: Option<String>,
    },
    /// A button or select: the node it belongs to and the option id(s),
    /// comma separated for a multi-select.
    Pick { node: String, value: String },
    /// A command button.
    Command(Command),
}

impl Input {
    /// The input as the engine reads it for session `session`: a question
    /// of another session (one that ended, or before a restart) is no
    /// question of this one.
    pub fn for_session(&self, session: i64) -> Input {
        match self {
            Input::TextUnder {
                text,
                session: s,
                node: Some(_),
            } if *s != session => Input::TextUnder {
                text: text.clone(),
                session: *s,
                node: None,
            },
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Active,
    Completed,
    Declined,
    Cancelled,
    HandedOff,
}

impl Status {
    pub fn is_open(self) -> bool {
        matches!(self, Status::New | Status::Active)
    }
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Active => "active",
            Status::Completed => "completed",
            Status::Declined => "declined",
            Status::Cancelled => "cancelled",
            Status::HandedOff => "handed_off",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::New,
            Status::Active,
            Status::Completed,
            Status::Declined,
            Status::Cancelled,
            Status::HandedOff,
        ]
        .into_iter()
        .find(|x| x.name() == s)
    }
}

impl From<EndStatus> for Status {
    fn from(e: EndStatus) -> Status {
        match e {
            EndStatus::Completed => Status::Completed,
            EndStatus::Declined => Status::Declined,
            EndStatus::Cancelled => Status::Cancelled,
            EndStatus::Handoff => Status::HandedOff,
        }
    }
}

/// Everything the engine remembers about one consultation. Small on
/// purpose (node indices, not names): thousands are held in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub status: Status,
    pub node: NodeIx,
    pub retries: u8,
    /// Questions asked, most recent last, for "back".
    pub history: Vec<NodeIx>,
    /// Current answers, in the order given. Not serialised: the store keeps
    /// the state as a small snapshot rewritten at every turn, and the
    /// answers, written once each to its answer log, are put back with
    /// [`SessionState::apply_answer_log`] when a session is read.
    #[serde(default, skip_serializing)]
    pub answers: Vec<(NodeIx, AnswerValue)>,
    pub tags: Vec<String>,
    /// Boxed: it is set only near the end of a consultation, and inline it
    /// would make every open conversation 168 bytes larger.
    pub route: Option<Box<RouteDecision>>,
    /// Hub ids the owner consented to, when consent was given.
    pub consented: Option<Vec<String>>,
    /// The understood part of a multiple choice while the bot asks about
    /// the rest (「プロボノ、副業、インターン」: the first two are kept here
    /// until the owner says what 「インターン」 was, or that that is all).
    /// Boxed and usually absent, to keep idle states small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<AnswerValue>>,
    /// For a follow-up dialog (step 5): the follow-up and the case it
    /// belongs to. Set when the dialog starts, with `route` already naming
    /// the step-5 hub; the engine keeps it and does not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<Box<FollowUpLink>>,
}

/// The link from a follow-up dialog to the case it follows up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpLink {
    /// The follow-up's id in the store.
    pub id: i64,
    /// The matched case.
    pub case: crate::domain::ids::CaseId,
    /// Which interval (1 for the first).
    pub seq: u8,
}

impl Default for SessionState {
    fn default() -> Self {
        SessionState {
            status: Status::New,
            node: 0,
            retries: 0,
            history: Vec::new(),
            answers: Vec::new(),
            tags: Vec::new(),
            route: None,
            consented: None,
            pending: None,
            follow_up: None,
        }
    }
}

impl SessionState {
    /// Replays an answer log (oldest first: `Some` for a recorded answer,
    /// `None` for a withdrawn one) onto the state's answers, exactly as the
    /// engine changed them when it emitted [`Effect::Record`] and
    /// [`Effect::Unset`]: a recorded answer replaces the question's earlier
    /// one and moves to the end.
    pub fn apply_answer_log(
        &mut self,
        log: impl IntoIterator<Item = (NodeIx, Option<AnswerValue>)>,
    ) {
        for (ix, value) in log {
            match value {
                Some(v) => self.set_answer(ix, v),
                None => self.answers.retain(|(i, _)| *i != ix),
            }
        }
    }

    pub fn answer(&self, ix: NodeIx) -> Option<&AnswerValue> {
        self.answers.iter().find(|(i, _)| *i == ix).map(|(_, v)| v)
    }
    fn set_answer(&mut self, ix: NodeIx, v: AnswerValue) {
        self.answers.retain(|(i, _)| *i != ix);
        self.push_answer(ix, v);
    }

    /// Appends an answer to a question that has none.
    fn push_answer(&mut self, ix: NodeIx, mut v: AnswerValue) {
        // Text built while normalising may have spare capacity; the answer
        // is kept for the whole conversation, so keep only what it needs.
        if let AnswerValue::Text(t) = &mut v {
            t.shrink_to_fit();
        }
        // Grow by a few entries rather than doubling: thousands of states
        // are held in memory, and doubling leaves up to half of each unused.
        if self.answers.len() == self.answers.capacity() {
            self.answers.reserve_exact(4);
        }
        self.answers.push((ix, v));
    }
}

struct View<'a>(&'a SessionState);

impl Facts for View<'_> {
    fn answer(&self, node: NodeIx) -> Option<&AnswerValue> {
        self.0.answer(node)
    }
    fn has_tag(&self, tag: &str) -> bool {
        self.0.tags.iter().any(|t| t == tag)
    }
}

/// What the owner is being asked, for adapters to render (buttons, selects,
/// numbered lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub node: String,
    pub text: String,
    pub kind: PromptKind,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptOption {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PromptKind {
    Choice {
        options: Vec<PromptOption>,
    },
    Multi {
        options: Vec<PromptOption>,
        min: u32,
        max: u32,
    },
    YesNo {
        options: Vec<PromptOption>,
    },
    Text {
        max: usize,
    },
    Number {
        unit: Option<String>,
    },
    Prefecture,
    Email,
    Phone,
    Date,
    /// The final check: send, or pick an item to correct.
    Confirm {
        send: PromptOption,
        items: Vec<PromptOption>,
        /// Further buttons (when the confirmation is also the consent
        /// question: "do not agree" and "why these recipients").
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        more: Vec<PromptOption>,
        /// A short re-ask: the text is one line and the screen (the sheet,
        /// the list of items) is not shown again; adapters that show
        /// buttons still offer them.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        brief: bool,
    },
}

/// An accepted answer, as the store records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub node: String,
    /// The node's index in the session's pinned flow version. The store
    /// keeps it with the answer so that a session's current answers can be
    /// rebuilt from the answer log without the flow (see
    /// [`SessionState::apply_answer_log`]).
    pub ix: NodeIx,
    pub value: AnswerValue,
    /// What the owner typed or pressed, kept for the record.
    pub raw: String,
    /// True when it replaces an earlier answer to the same question.
    pub correction: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub granted: bool,
    pub hubs: Vec<HubRef>,
    /// What is shared, as the owner was told.
    pub items: Vec<String>,
    /// The wording the owner agreed to.
    pub wording: String,
}

/// A finished case, ready to be stored and delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDraft {
    pub headline: String,
    pub summary_plain: String,
    pub summary_markdown: String,
    pub route: RouteDecision,
    pub tags: Vec<String>,
    pub consent: ConsentRecord,
    /// The support step the case has reached (the bot covers 0 to the start
    /// of 3, so a case with a clear talent need starts at 3).
    pub step: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    Say(String),
    Ask(Prompt),
    Record(Recorded),
    /// An answer was withdrawn (a correction made it irrelevant).
    Unset {
        node: String,
        ix: NodeIx,
    },
    Tags(Vec<String>),
    Routed(RouteDecision),
    Consent(ConsentRecord),
    CaseReady(Box<CaseDraft>),
    Handoff,
    Finished(Status),
    Restarted,
    /// The input belonged to an earlier question and was ignored.
    Stale,
    /// The owner's input was not understood and the question was asked
    /// again. Stored (node only, never the input) so that the KPI report
    /// can show administrators which wording owners stumble on.
    Reask {
        node: String,
        ix: NodeIx,
    },
    /// A template of the script failed to render (or rendered to nothing
    /// where text is required), so the step was refused: the state is as
    /// it was before the input, and the owner was told that something is
    /// wrong on our side. Adapters tell administrators.
    Fault(TemplateFault),
}

/// Which template failed, for administrators (no owner data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateFault {
    /// The node being shown: the template's own node, or the current one
    /// for the summary and headline.
    pub node: String,
    /// `say`, `text`, `retry`, `summary` or `headline`.
    pub template: String,
    pub reason: String,
}

/// The tags whose patterns match the state's free-text answers.
pub fn tags_for(flow: &Flow, st: &SessionState) -> Vec<String> {
    // Every rule of a script usually reads the same few answers, and this
    // runs at each free-text answer: each answer is normalised once here
    // rather than once per rule.
    let mut normalized: Vec<(NodeIx, Option<String>)> = Vec::new();
    let mut matches = |rule: &crate::script::TagRule, ix: NodeIx| -> bool {
        let k = match normalized.iter().position(|(i, _)| *i == ix) {
            Some(k) => k,
            None => {
                let n = match st.answer(ix) {
                    Some(AnswerValue::Text(t)) => Some(crate::domain::text::normalize_input(t)),
                    _ => None,
                };
                normalized.push((ix, n));
                normalized.len() - 1
            }
        };
        normalized[k]
            .1
            .as_deref()
            .is_some_and(|n| tags::tag_matches_normalized(&rule.pattern, n))
    };
    flow.tags
        .iter()
        .filter(|rule| rule.from.iter().any(|ix| matches(rule, *ix)))
        .map(|rule| rule.name.clone())
        .collect()
}

/// A read-only view of a state for conditions and routing.
pub fn facts(st: &SessionState) -> impl Facts + '_ {
    View(st)
}

/// Builds now every table and pattern that the engine and the parsers
/// would otherwise build on the first turn that needs it (see
/// [`crate::domain::warm_up`]). Pure computation, no I/O: the runner calls
/// it once when it starts.
pub fn warm_up() {
    crate::domain::warm_up();
    choice::warm_up();
    tags::warm_up();
    words::warm_up();
}

/// A number typed at a narrowed choice (see `Stepper::narrowed_type`)
/// that is beyond the few options offered but is the number one of them
/// had in the full list, which the owner has just typed at the multiple
/// choice (「1、5」, then 「5」): that option, as its number among the few.
/// A number within the few is read as shown.
fn by_earlier_number(
    raw: &str,
    few: &[crate::script::ChoiceOption],
    all: &[crate::script::ChoiceOption],
) -> Option<String> {
    let n: usize = fold_for_match(raw)
        .trim_end_matches(['番', '.', ')'])
        .parse()
        .ok()?;
    if n <= few.len() {
        return None;
    }
    let id = &all.get(n.checked_sub(1)?)?.id;
    let at = few.iter().position(|o| &o.id == id)?;
    Some((at + 1).to_string())
}

/// The item number an owner types at the confirmation: 「4」「4番」
/// 「No.4」「#4」.
fn confirm_item_number(folded: &str) -> Result<usize, std::num::ParseIntError> {
    let t = folded.trim_end_matches(['番', '.', ')']);
    let t = ["no.", "no", "#", "番号"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    t.parse::<usize>()
}

/// An item named with what the owner wants done with it (「従業員数を直し
/// たい」「所在地を変更」, "change location"): the item's words alone.
fn confirm_item_words(folded: &str) -> &str {
    const WISHES: &[&str] = &[
        "を直したいです",
        "を直したい",
        "を直して",
        "を直す",
        "を修正したいです",
        "を修正したい",
        "を修正して",
        "を修正",
        "を変更したいです",
        "を変更したい",
        "を変更して",
        "を変更",
        "を訂正したい",
        "を訂正",
        "を間違えました",
        "を間違えた",
        "が違います",
        "が違う",
        "を直します",
    ];
    let t = folded.trim_end_matches(['。', '.', '!', '?']);
    let t = ["change", "edit", "correct", "fix"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    WISHES
        .iter()
        .find_map(|w| t.strip_suffix(w))
        .filter(|w| !w.is_empty())
        .unwrap_or(t)
}

/// Advances a consultation by one input.
///
/// When a template fails, the step is refused: the state is put back as it
/// was, and the effects are only the owner's message and an
/// [`Effect::Fault`], so nothing is recorded with broken text.
pub fn step(flow: &Flow, st: &mut SessionState, input: Input, ctx: &Ctx) -> Vec<Effect> {
    // What a refused step puts back. The answers and the route are the
    // large parts of a state and a step rarely changes them, so they are
    // not copied: the step keeps what it changes of them in `undo`. The
    // rest is small and copied. (Copying the whole state at every step was
    // a visible share of a turn's CPU.) The literal names every field, so
    // a new field cannot be forgotten here.
    let before = SessionState {
        status: st.status,
        node: st.node,
        retries: st.retries,
        history: st.history.clone(),
        answers: Vec::new(),
        tags: st.tags.clone(),
        route: None,
        consented: st.consented.clone(),
        pending: st.pending.clone(),
        follow_up: st.follow_up.clone(),
    };
    let mut e = Stepper {
        flow,
        st,
        ctx,
        out: Vec::new(),
        fault: None,
        undo: Undo::default(),
    };
    e.run(input);
    match e.fault {
        None => e.out,
        Some(fault) => {
            let Undo {
                answers: changes,
                route: old_route,
            } = e.undo;
            let mut answers = std::mem::take(&mut st.answers);
            AnswerChange::rewind(changes, &mut answers);
            let route = match old_route {
                Some(old) => old,
                None => st.route.take(),
            };
            *st = SessionState {
                answers,
                route,
                ..before
            };
            vec![
                Effect::Say(flow.messages.get("template_failed").to_string()),
                Effect::Fault(fault),
            ]
        }
    }
}

/// What a finished consultation said at its end (the end node's message
/// and [`Effect::Finished`]), told again without changing the state: for an
/// owner whose last message from the bot may never have been sent (the bot
/// stopped between committing the last step and sending its reply, and
/// another instance or a restart took over). Empty while the consultation
/// is open. A template that fails now says nothing rather than something
/// broken.
pub fn ending(flow: &Flow, st: &SessionState, ctx: &Ctx) -> Vec<Effect> {
    if st.status.is_open() {
        return Vec::new();
    }
    let mut copy = st.clone();
    let mut e = Stepper {
        flow,
        st: &mut copy,
        ctx,
        out: Vec::new(),
        fault: None,
        undo: Undo::default(),
    };
    let ix = e.st.node;
    if matches!(flow.node(ix).kind, NodeKind::End(_)) {
        if flow.node(ix).has_say {
            let s = e.render(&format!("{ix}.say"));
            if e.fault.is_none() {
                e.say(s);
            }
        }
    } else if st.status == Status::Cancelled {
        // "中止" ends where the owner was, not at an end node.
        let s = e.msg("cancelled");
        e.say(s);
    } else {
        let s = e.msg("finished");
        e.say(s);
    }
    let mut out = e.out;
    out.push(Effect::Finished(st.status));
    out
}

struct Stepper<'a> {
    flow: &'a Flow,
    st: &'a mut SessionState,
    ctx: &'a Ctx,
    out: Vec<Effect>,
    /// The first template that failed in this step.
    fault: Option<TemplateFault>,
    /// How to put the answers and the route back if the step is refused.
    undo: Undo,
}

/// What a step changed of a state's answers and route, so that a refused
/// step can put them back without a copy of them made beforehand (see
/// [`step`]). Every change to `answers` or `route` inside a step goes
/// through the [`Stepper`] methods that record it here.
#[derive(Default)]
struct Undo {
    /// The changes to the answers, oldest first.
    answers: Vec<AnswerChange>,
    /// The route before the step's first change to it.
    route: Option<Option<Box<RouteDecision>>>,
}

enum AnswerChange {
    /// An answer was appended.
    Pushed,
    /// This answer was removed from this position.
    Removed(usize, (NodeIx, AnswerValue)),
    /// All answers were replaced by an empty list (a restart).
    Cleared(Vec<(NodeIx, AnswerValue)>),
}

impl AnswerChange {
    /// Undoes `changes` (oldest first), newest first.
    fn rewind(changes: Vec<AnswerChange>, answers: &mut Vec<(NodeIx, AnswerValue)>) {
        for change in changes.into_iter().rev() {
            match change {
                AnswerChange::Pushed => {
                    answers.pop();
                }
                AnswerChange::Removed(at, entry) => answers.insert(at, entry),
                AnswerChange::Cleared(old) => *answers = old,
            }
        }
    }
}

impl Stepper<'_> {
    /// Removes the answer to `ix`, if any, as `retain` would.
    fn unset_answer(&mut self, ix: NodeIx) {
        let mut at = 0;
        while at < self.st.answers.len() {
            if self.st.answers[at].0 == ix {
                let entry = self.st.answers.remove(at);
                self.undo.answers.push(AnswerChange::Removed(at, entry));
            } else {
                at += 1;
            }
        }
    }

    /// [`SessionState::set_answer`], recorded for a refused step.
    fn set_answer(&mut self, ix: NodeIx, v: AnswerValue) {
        self.unset_answer(ix);
        self.st.push_answer(ix, v);
        self.undo.answers.push(AnswerChange::Pushed);
    }

    /// Replaces the route, keeping the one before the step's first change.
    fn set_route(&mut self, route: Option<Box<RouteDecision>>) {
        let old = std::mem::replace(&mut self.st.route, route);
        if self.undo.route.is_none() {
            self.undo.route = Some(old);
        }
    }

    fn msg(&self, key: &str) -> String {
        self.flow.messages.get(key).to_string()
    }

    fn say(&mut self, text: String) {
        if !text.trim().is_empty() {
            self.out.push(Effect::Say(text));
        }
    }

    fn run(&mut self, input: Input) {
        match input {
            Input::Start => {
                if self.st.status == Status::New {
                    self.st.status = Status::Active;
                    self.enter(self.flow.start, true);
                } else {
                    self.resume();
                }
            }
            Input::Resume => self.resume(),
            Input::Command(c) => self.command(c),
            Input::Pick { node, value } => {
                if !self.st.status.is_open() {
                    return self.say(self.msg("finished"));
                }
                if self.st.status == Status::New || self.flow.node(self.st.node).id != node {
                    self.out.push(Effect::Stale);
                    return self.say(self.msg("stale"));
                }
                self.answer(&value, true);
            }
            Input::TextUnder { text, node, .. } => {
                let current = self.st.status.is_open()
                    && self.st.status != Status::New
                    && node.as_deref() != Some(self.flow.node(self.st.node).id.as_str());
                if !current {
                    return self.run(Input::Text(text));
                }
                // Typed under an earlier question (or none of this
                // session's): the commands that mean the same whatever the
                // question work; "back" and "skip" would act on a question
                // the owner did not mean, and an answer would land on it.
                match self.flow.commands.recognize(&fold_for_match(&text)) {
                    Some(
                        c @ (Command::Help | Command::Answers | Command::Restart | Command::Cancel),
                    ) => self.command(c),
                    _ => {
                        self.out.push(Effect::Stale);
                        self.say(self.msg("typed_earlier"));
                        self.prompt(self.st.node);
                    }
                }
            }
            Input::Text(raw) => {
                let folded = fold_for_match(&raw);
                if let Some(c) = self.flow.commands.recognize(&folded) {
                    return self.command(c);
                }
                if !self.st.status.is_open() {
                    return self.say(self.msg("finished"));
                }
                if self.st.status == Status::New {
                    // The first thing an owner types opens the consultation.
                    self.st.status = Status::Active;
                    return self.enter(self.flow.start, true);
                }
                self.answer(&raw, false);
            }
        }
    }

    fn resume(&mut self) {
        match self.st.status {
            Status::New => {
                self.st.status = Status::Active;
                self.enter(self.flow.start, true)
            }
            s if s.is_open() => {
                self.say(self.msg("resumed"));
                self.prompt(self.st.node);
            }
            _ => self.say(self.msg("finished")),
        }
    }

    fn command(&mut self, c: Command) {
        if c == Command::Restart {
            // A follow-up's recipient was set before it started and no
            // node of its script chooses it again, so it survives a restart.
            let (route, follow_up) = if self.flow.follow_up {
                (self.st.route.take(), self.st.follow_up.take())
            } else {
                self.set_route(None);
                (None, None)
            };
            let answers = std::mem::take(&mut self.st.answers);
            self.undo.answers.push(AnswerChange::Cleared(answers));
            *self.st = SessionState {
                status: Status::Active,
                route,
                follow_up,
                ..SessionState::default()
            };
            self.out.push(Effect::Restarted);
            self.say(self.msg("restarted"));
            return self.enter(self.flow.start, true);
        }
        if !self.st.status.is_open() {
            if c == Command::Help {
                return self.say(self.msg("help"));
            }
            return self.say(self.msg("finished"));
        }
        if self.st.status == Status::New {
            self.st.status = Status::Active;
            if c == Command::Help {
                self.say(self.msg("help"));
            }
            return self.enter(self.flow.start, true);
        }
        match c {
            Command::Help => {
                self.say(self.msg("help"));
                self.prompt(self.st.node);
            }
            Command::Answers => {
                let list = self.answer_list();
                self.say(list);
                self.prompt(self.st.node);
            }
            Command::Cancel => {
                self.st.status = Status::Cancelled;
                self.say(self.msg("cancelled"));
                self.out.push(Effect::Finished(Status::Cancelled));
            }
            Command::Back => {
                if self.st.history.last() == Some(&self.st.node) {
                    self.st.history.pop();
                }
                match self.st.history.pop() {
                    Some(prev) => {
                        self.st.retries = 0;
                        self.ask(prev);
                    }
                    None => {
                        self.say(self.msg("back_unavailable"));
                        self.prompt(self.st.node);
                    }
                }
            }
            Command::Skip => {
                let ix = self.st.node;
                match &self.flow.node(ix).kind {
                    NodeKind::Ask(q) if q.optional => {
                        self.say(self.msg("skipped"));
                        self.record(ix, AnswerValue::Skipped, "skip".into());
                        self.leave(ix);
                    }
                    _ => {
                        self.say(self.msg("skip_not_allowed"));
                        self.prompt(ix);
                    }
                }
            }
            Command::Restart => unreachable!("handled above"),
        }
    }

    fn answer_list(&self) -> String {
        let mut items: Vec<(NodeIx, String)> = self
            .st
            .answers
            .iter()
            .map(|(ix, v)| {
                let n = self.flow.node(*ix);
                (*ix, format!("・{}: {}", n.label, self.shown(*ix, v)))
            })
            .collect();
        if items.is_empty() {
            return self.msg("answers_empty");
        }
        items.sort_by_key(|(ix, _)| *ix);
        let lines: Vec<String> = items.into_iter().map(|(_, s)| s).collect();
        format!("{}\n{}", self.msg("answers_header"), lines.join("\n"))
    }

    fn shown(&self, ix: NodeIx, v: &AnswerValue) -> String {
        render::escape(self.ctx.mode, &render::display_answer(self.flow, ix, v))
    }

    fn render_in(&mut self, name: &str, mode: RenderMode) -> String {
        let input = ContextInput {
            answers: &self.st.answers,
            tags: &self.st.tags,
            route: self.st.route.as_deref(),
            today: self.ctx.today(),
        };
        match render::render_input(self.flow, name, &input, mode) {
            Ok(s) => s,
            Err(f) => {
                self.fail(name, f.reason);
                String::new()
            }
        }
    }

    fn render(&mut self, name: &str) -> String {
        self.render_in(name, self.ctx.mode)
    }

    /// Like [`Self::render_in`], for text that must not be empty (a
    /// question, consent wording, the sheet): empty text fails the step.
    fn required_in(&mut self, name: &str, mode: RenderMode) -> String {
        let s = self.render_in(name, mode);
        if s.trim().is_empty() {
            self.fail(name, "the template rendered to empty text".into());
        }
        s
    }

    fn required(&mut self, name: &str) -> String {
        self.required_in(name, self.ctx.mode)
    }

    fn fail(&mut self, name: &str, reason: String) {
        if self.fault.is_some() {
            return;
        }
        let (node, template) = match name.split_once('.') {
            Some((ix, field)) => (
                ix.parse::<NodeIx>()
                    .ok()
                    .filter(|&i| (i as usize) < self.flow.nodes.len())
                    .map(|i| self.flow.node(i).id.clone())
                    .unwrap_or_else(|| ix.to_string()),
                field.to_string(),
            ),
            None => (self.flow.node(self.st.node).id.clone(), name.to_string()),
        };
        self.fault = Some(TemplateFault {
            node,
            template,
            reason,
        });
    }

    /// Enters a node: says its message and runs on until a node that waits
    /// for the owner. The guard stops a script loop that asks nothing (the
    /// compiler rejects those; this protects hand-built flows).
    fn enter(&mut self, mut ix: NodeIx, with_say: bool) {
        let mut with_say = with_say;
        for _ in 0..(self.flow.nodes.len() * 2 + 2) {
            let node = self.flow.node(ix);
            if with_say && node.has_say {
                let s = self.render(&format!("{ix}.say"));
                self.say(s);
            }
            with_say = true;
            match &node.kind {
                NodeKind::Say => {}
                NodeKind::Route => {
                    self.withdraw_off_path(ix);
                    self.route()
                }
                NodeKind::Ask(_) => match self.implied_choice(ix) {
                    Some(pick) => self.record(ix, AnswerValue::Choice(pick), String::new()),
                    None => return self.ask(ix),
                },
                NodeKind::Confirm => {
                    self.withdraw_off_path(ix);
                    return self.ask(ix);
                }
                NodeKind::End(status) => {
                    self.st.node = ix;
                    self.st.status = (*status).into();
                    if *status == EndStatus::Handoff {
                        self.out.push(Effect::Handoff);
                    }
                    self.out.push(Effect::Finished(self.st.status));
                    return;
                }
            }
            match self.successor(ix) {
                Some(n) => ix = n,
                None => return,
            }
        }
        tracing::error!(script = %self.flow.script_id, "script loop without a question; stopping");
    }

    /// Withdraws the answers to questions that are not on the path from
    /// the start to `target` as the answers now lead. An owner who goes
    /// back (「戻る」) and answers differently takes another branch; the
    /// answers given on the branch left behind (a phone number asked only
    /// when there is no e-mail, the talent questions after 「人材で解決」)
    /// would otherwise reach routing and the sheet beside the new ones.
    /// Called where routing and the confirmation read the answers; the
    /// store keeps every step, so nothing the owner typed is lost.
    fn withdraw_off_path(&mut self, target: NodeIx) {
        let mut on_path = Vec::new();
        let mut ix = self.flow.start;
        let mut reached = false;
        for _ in 0..(self.flow.nodes.len() * 2 + 2) {
            if ix == target {
                reached = true;
                break;
            }
            if matches!(self.flow.node(ix).kind, NodeKind::Ask(_)) {
                if self.st.answer(ix).is_none() {
                    // The path is not complete (a question on it was never
                    // answered): nothing can be said to be off it.
                    return;
                }
                on_path.push(ix);
            }
            match self.successor(ix) {
                Some(n) => ix = n,
                None => return,
            }
        }
        if !reached {
            return;
        }
        if self.withdraw_all_but(&on_path) {
            self.retag();
        }
    }

    /// Withdraws every answer but those to `on_path`, each with an
    /// [`Effect::Unset`]; says whether any was withdrawn.
    fn withdraw_all_but(&mut self, on_path: &[NodeIx]) -> bool {
        let dropped: Vec<NodeIx> = self
            .st
            .answers
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| !on_path.contains(i))
            .collect();
        for &d in &dropped {
            self.unset_answer(d);
            self.out.push(Effect::Unset {
                node: self.flow.node(d).id.clone(),
                ix: d,
            });
        }
        !dropped.is_empty()
    }

    fn successor(&self, ix: NodeIx) -> Option<NodeIx> {
        match &self.flow.node(ix).next {
            Next::Stop => None,
            Next::Goto(n) => Some(*n),
            Next::Branch { arms, default } => {
                let view = View(self.st);
                Some(
                    arms.iter()
                        .find(|(c, _)| c.eval(&view))
                        .map(|(_, t)| *t)
                        .unwrap_or(*default),
                )
            }
        }
    }

    fn route(&mut self) {
        let d = self.flow.routing.decide(&View(self.st), self.flow.lang);
        if let Some(consented) = &self.st.consented {
            let now: Vec<&str> = d.recipients().map(|h| h.id.as_str()).collect();
            if now != consented.iter().map(String::as_str).collect::<Vec<_>>() {
                // The owner agreed to share with other hubs than these; the
                // consent no longer covers the case, so it is asked again.
                self.st.consented = None;
                if let Some(cix) = self.consent_node() {
                    self.unset_answer(cix);
                    self.out.push(Effect::Unset {
                        node: self.flow.node(cix).id.clone(),
                        ix: cix,
                    });
                }
                self.say(self.msg("consent_changed"));
            }
        } else if self
            .st
            .route
            .as_deref()
            .is_some_and(|old| !old.same_recipients(&d))
            && self.reached_confirm()
        {
            // Consent is asked on the confirmation itself; the owner is
            // told that the recipients shown there are new.
            self.say(self.msg("route_changed"));
        }
        if self.st.route.as_deref() != Some(&d) {
            self.out.push(Effect::Routed(d.clone()));
        }
        self.set_route(Some(Box::new(d)));
    }

    fn consent_node(&self) -> Option<NodeIx> {
        self.flow
            .questions()
            .find(|(_, _, q)| matches!(q.ty, AnswerType::Consent { .. }))
            .map(|(i, _, _)| i)
    }

    /// Makes `ix` the current question and sends it.
    fn ask(&mut self, ix: NodeIx) {
        self.st.node = ix;
        self.st.retries = 0;
        self.st.pending = None;
        if self.st.history.last() != Some(&ix) {
            // Grow by a few entries, as `set_answer` does.
            if self.st.history.len() == self.st.history.capacity() {
                self.st.history.reserve_exact(8);
            }
            self.st.history.push(ix);
        }
        self.prompt(ix);
    }

    fn prompt(&mut self, ix: NodeIx) {
        let node = self.flow.node(ix);
        if !matches!(node.kind, NodeKind::Ask(_) | NodeKind::Confirm) {
            return;
        }
        let kind = match &node.kind {
            NodeKind::Ask(q) => {
                let narrowed = self.narrowed_type(ix, &q.ty);
                answer::prompt_kind(self.flow, narrowed.as_ref().unwrap_or(&q.ty))
            }
            NodeKind::Confirm => {
                let p = self.confirm_prompt(ix, None);
                return self.out.push(Effect::Ask(p));
            }
            _ => return,
        };
        let text = self.required(&format!("{ix}.text"));
        let optional = matches!(&node.kind, NodeKind::Ask(q) if q.optional);
        self.out.push(Effect::Ask(Prompt {
            node: node.id.clone(),
            text,
            kind,
            optional,
        }));
    }

    fn answer(&mut self, raw: &str, picked: bool) {
        let ix = self.st.node;
        let node = self.flow.node(ix);
        if crate::domain::text::is_blank_input(raw) {
            self.say(self.msg("empty"));
            return self.prompt(ix);
        }
        if raw.chars().count() > MAX_ANSWER_CHARS {
            let n = raw.chars().count();
            let s = match self.flow.lang {
                Lang::Ja => format!("メッセージが長すぎます（{n}文字）。{MAX_ANSWER_CHARS}文字以内に縮めて、もう一度送ってください。"),
                Lang::En => format!("That message is too long ({n} characters). Please shorten it to {MAX_ANSWER_CHARS} characters and send it again."),
            };
            self.say(s);
            return self.prompt(ix);
        }
        match &node.kind {
            NodeKind::Confirm => self.confirm(raw, picked),
            NodeKind::Ask(q)
                if matches!(q.ty, AnswerType::Consent { .. })
                    && !picked
                    && asks_about_recipients(raw)
                    && !matches!(
                        understand(self.flow, &q.ty, raw, picked, self.ctx.today()),
                        Understood::Value(_)
                    ) =>
            {
                // A question about who receives the case is answered, not
                // met with the same prompt again.
                let why = self.route_explanation();
                self.say(why);
                self.prompt(ix);
            }
            NodeKind::Ask(q) => match self.understand_narrowed(ix, &q.ty, raw, picked) {
                Understood::Partial { kept, ask } => {
                    self.st.pending = Some(Box::new(kept));
                    self.say(ask);
                    self.prompt(ix);
                }
                Understood::Value(v) => {
                    if let AnswerType::Consent { shares } = &q.ty {
                        let granted = v == AnswerValue::Bool(true);
                        let hubs: Vec<HubRef> = self
                            .st
                            .route
                            .as_ref()
                            .map(|r| r.recipients().cloned().collect())
                            .unwrap_or_default();
                        self.st.consented =
                            granted.then(|| hubs.iter().map(|h| h.id.clone()).collect());
                        let wording = self.required(&format!("{ix}.text"));
                        self.out.push(Effect::Consent(ConsentRecord {
                            granted,
                            hubs,
                            items: shares.clone(),
                            wording,
                        }));
                    }
                    self.record(ix, v, raw.to_string());
                    self.leave(ix);
                }
                // An optional question that wants a value of a kind (a
                // number, an e-mail address, a phone number, a date) and
                // gets 「なし」 or 「わからない」 instead: the owner is
                // skipping it in their own words.
                Understood::Reask(_)
                    if q.optional
                        && matches!(
                            q.ty,
                            AnswerType::Number { .. }
                                | AnswerType::Email
                                | AnswerType::Phone
                                | AnswerType::Date { .. }
                        )
                        && choice::says_none(raw) =>
                {
                    self.say(self.msg("skipped"));
                    self.record(ix, AnswerValue::Skipped, raw.to_string());
                    self.leave(ix);
                }
                Understood::Reask(reason) => self.retry(ix, reason),
            },
            _ => {}
        }
    }

    /// [`Self::understand_at`] with the type the question is asked with
    /// (see [`Self::narrowed_type`]), a number from the full list read as
    /// [`by_earlier_number`] says.
    fn understand_narrowed(
        &mut self,
        ix: NodeIx,
        ty: &AnswerType,
        raw: &str,
        picked: bool,
    ) -> Understood {
        let narrowed = self.narrowed_type(ix, ty);
        // Only a narrowed choice can read a typed answer anew; every other
        // answer is read as typed, without a copy.
        let renumbered = match (&narrowed, ty) {
            (Some(AnswerType::Choice { options: few }), AnswerType::Choice { options: all })
                if !picked =>
            {
                by_earlier_number(raw, few, all)
            }
            _ => None,
        };
        let raw = renumbered.as_deref().unwrap_or(raw);
        self.understand_at(ix, narrowed.as_ref().unwrap_or(ty), raw, picked)
    }

    /// Understands an answer, adding it to what was already understood of
    /// the same multiple choice.
    fn understand_at(
        &mut self,
        ix: NodeIx,
        ty: &AnswerType,
        raw: &str,
        picked: bool,
    ) -> Understood {
        let u = understand(self.flow, ty, raw, picked, self.ctx.today());
        let Some(kept) = self.st.pending.take() else {
            return u;
        };
        if self.st.node != ix {
            return u;
        }
        match u {
            Understood::Value(v) => Understood::Value(answer::merge_multi(ty, &kept, &v)),
            Understood::Partial { kept: more, ask } => Understood::Partial {
                kept: answer::merge_multi(ty, &kept, &more),
                ask,
            },
            Understood::Reask(_) if answer::is_done_word(raw) => Understood::Value(*kept),
            Understood::Reask(reason) => {
                self.st.pending = Some(kept);
                Understood::Reask(reason)
            }
        }
    }

    fn retry(&mut self, ix: NodeIx, reason: String) {
        let NodeKind::Ask(q) = &self.flow.node(ix).kind else {
            return;
        };
        self.st.retries = self.st.retries.saturating_add(1);
        if self.st.retries > q.max_retries {
            self.st.retries = 0;
            // What was understood of a multiple choice is kept rather than
            // lost when the rest cannot be understood.
            if let Some(kept) = self.st.pending.take() {
                self.record(ix, *kept, String::new());
                return self.leave(ix);
            }
            // A question the owner came back to (「戻る」, a correction) has
            // their earlier answer: giving up on changing it keeps it,
            // rather than skipping it or ending the consultation.
            if self
                .st
                .answer(ix)
                .is_some_and(|v| !matches!(v, AnswerValue::Skipped))
            {
                self.say(self.msg("gave_up_kept"));
                return self.leave(ix);
            }
            return match q.on_give_up {
                GiveUp::Skip => {
                    self.say(self.msg("gave_up_skip"));
                    self.record(ix, AnswerValue::Skipped, String::new());
                    self.leave(ix);
                }
                GiveUp::Handoff => {
                    self.say(self.msg("gave_up_handoff"));
                    self.st.status = Status::HandedOff;
                    self.out.push(Effect::Handoff);
                    self.out.push(Effect::Finished(Status::HandedOff));
                }
                GiveUp::End => {
                    self.say(self.msg("gave_up_end"));
                    self.st.status = Status::Cancelled;
                    self.out.push(Effect::Finished(Status::Cancelled));
                }
            };
        }
        self.out.push(Effect::Reask {
            node: self.flow.node(ix).id.clone(),
            ix,
        });
        let head = if q.has_retry {
            self.render(&format!("{ix}.retry"))
        } else {
            self.msg("retry")
        };
        self.say(format!("{head}\n{reason}"));
        self.prompt(ix);
    }

    fn record(&mut self, ix: NodeIx, value: AnswerValue, raw: String) {
        self.st.pending = None;
        let correction = self.st.answer(ix).is_some();
        self.set_answer(ix, value.clone());
        self.out.push(Effect::Record(Recorded {
            node: self.flow.node(ix).id.clone(),
            ix,
            value,
            raw,
            correction,
        }));
        // Tags are read from the answers their rules name, so only an
        // answer to one of those can change them (most text answers, a
        // company's name or an e-mail address, cannot): the rules' patterns
        // are not run again for the others.
        if render::is_text(self.flow, ix) && self.flow.tags.iter().any(|r| r.from.contains(&ix)) {
            self.retag();
        }
    }

    fn retag(&mut self) {
        let tags = tags_for(self.flow, self.st);
        if tags != self.st.tags {
            self.st.tags = tags.clone();
            self.out.push(Effect::Tags(tags));
        }
    }

    /// Moves on after an answer. After the owner has seen the confirmation
    /// once, a changed answer replays the flow from the start: questions the
    /// change made necessary are asked, answers it made irrelevant are
    /// withdrawn, routing is recomputed, and the owner returns to the
    /// confirmation.
    fn leave(&mut self, ix: NodeIx) {
        if self.reached_confirm() {
            return self.replay();
        }
        if let Some(n) = self.successor(ix) {
            self.enter(n, true);
        }
    }

    fn reached_confirm(&self) -> bool {
        self.st
            .history
            .iter()
            .any(|i| matches!(self.flow.node(*i).kind, NodeKind::Confirm))
    }

    fn replay(&mut self) {
        let mut ix = self.flow.start;
        let mut on_path = Vec::new();
        for _ in 0..(self.flow.nodes.len() * 2 + 2) {
            match &self.flow.node(ix).kind {
                NodeKind::Ask(_) => {
                    on_path.push(ix);
                    // A narrowing choice follows its multiple choice: taken
                    // from it when one was picked, asked when several were.
                    if let Some(picks) = self.narrowed_by(ix) {
                        let current = match self.st.answer(ix) {
                            Some(AnswerValue::Choice(c)) => Some(c.clone()),
                            _ => None,
                        };
                        if let [only] = picks.as_slice() {
                            if current.as_ref() != Some(only) {
                                self.record(ix, AnswerValue::Choice(only.clone()), String::new());
                            }
                        } else if current.is_some_and(|c| !picks.contains(&c))
                            || !self.st.history.contains(&ix)
                        {
                            // Its answer is no longer among the picks, or
                            // was taken from a single pick and never
                            // chosen among several.
                            return self.ask(ix);
                        }
                    }
                    if self.st.answer(ix).is_none() {
                        return self.ask(ix);
                    }
                }
                NodeKind::Route => self.route(),
                NodeKind::Confirm => {
                    // Answers to questions no longer on the path would
                    // mislead staff; withdraw them (the store keeps history).
                    self.withdraw_all_but(&on_path);
                    self.retag();
                    return self.ask(ix);
                }
                NodeKind::End(_) | NodeKind::Say => {
                    if matches!(self.flow.node(ix).kind, NodeKind::End(_)) {
                        return self.enter(ix, true);
                    }
                }
            }
            match self.successor(ix) {
                Some(n) => ix = n,
                None => return,
            }
        }
    }

    /// The editable answered questions, in script order: the items the
    /// owner can pick at the confirmation to correct. A choice taken from
    /// a single pick of the multiple choice it narrows is not among them:
    /// the owner corrects that multiple choice instead.
    fn confirm_item_ixs(&self) -> Vec<NodeIx> {
        let mut a: Vec<NodeIx> = self
            .st
            .answers
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| matches!(&self.flow.node(*i).kind, NodeKind::Ask(q) if q.editable))
            .filter(|i| self.implied_choice(*i).is_none())
            .collect();
        a.sort();
        a
    }

    /// The consent question that directly follows a confirmation. When
    /// there is one, the confirmation is also the consent question: the
    /// owner sees the sheet and the named recipients together, and agreeing
    /// sends the case in the same step.
    fn consent_after(&self, confirm: NodeIx) -> Option<NodeIx> {
        match &self.flow.node(confirm).next {
            Next::Goto(n)
                if matches!(&self.flow.node(*n).kind,
                    NodeKind::Ask(q) if matches!(q.ty, AnswerType::Consent { .. })) =>
            {
                Some(*n)
            }
            _ => None,
        }
    }

    /// The confirmation's full text: its heading, the sheet, and, when it
    /// is also the consent question, the consent part.
    fn confirm_text(&mut self, ix: NodeIx) -> String {
        let head = self.required(&format!("{ix}.text"));
        let summary = self.required("summary");
        match self.consent_after(ix) {
            Some(c) => format!(
                "{head}\n\n{summary}\n\n{}\n\n{}",
                self.consent_part(c),
                self.msg("confirm_consent_hint")
            ),
            None => format!("{head}\n\n{summary}\n\n{}", self.msg("confirm_hint")),
        }
    }

    /// The consent part of that screen, exactly as shown: the named
    /// recipients with what each does, and the consent question's text
    /// (reason, what is shared, purpose). It is recorded as the consent
    /// wording. The sheet above it is not: it holds the owner's answers,
    /// which the case keeps and erasure deletes, while consent records
    /// are kept as proof.
    fn consent_part(&mut self, consent: NodeIx) -> String {
        let question = self.required(&format!("{consent}.text"));
        format!("{}\n{}", self.recipients_block(), question.trim_end())
    }

    /// The named recipients, each with one line on what it does, shown
    /// above the consent question.
    fn recipients_block(&self) -> String {
        let Some(r) = self.st.route.as_deref() else {
            return String::new();
        };
        let mut lines = vec![self.msg("recipients_header")];
        for (k, h) in r.recipients().enumerate() {
            let role = self
                .flow
                .routing
                .hub(&h.id)
                .map(|hub| self.msg(&format!("hub_role_{}", hub.kind.name())))
                .unwrap_or_default();
            let copy = if k > 0 {
                self.msg("route_why_copy")
            } else {
                String::new()
            };
            let sep = match self.flow.lang {
                Lang::Ja => "：",
                Lang::En => ": ",
            };
            lines.push(format!(
                "・{}{copy}{sep}{role}",
                render::escape(self.ctx.mode, &h.name)
            ));
        }
        lines.join("\n")
    }

    /// The confirmation prompt; `brief` replaces the screen by a one-line
    /// re-ask (the buttons stay).
    fn confirm_prompt(&mut self, ix: NodeIx, brief: Option<String>) -> Prompt {
        let mut items: Vec<PromptOption> = Vec::new();
        for i in self.confirm_item_ixs() {
            if let Some(v) = self.st.answer(i) {
                let n = self.flow.node(i);
                items.push(PromptOption {
                    id: n.id.clone(),
                    label: format!("{}: {}", n.label, self.shown(i, v)),
                });
            }
        }
        let consent = self.consent_after(ix).is_some();
        let send = if consent {
            self.msg("confirm_send_label")
        } else {
            match self.flow.lang {
                Lang::Ja => "送信する",
                Lang::En => "Send",
            }
            .to_string()
        };
        let more = if consent {
            vec![
                PromptOption {
                    id: "decline".into(),
                    label: self.msg("confirm_decline_label"),
                },
                PromptOption {
                    id: "why".into(),
                    label: self.msg("confirm_why_label"),
                },
            ]
        } else {
            Vec::new()
        };
        let text = match &brief {
            Some(b) => b.clone(),
            None => self.confirm_text(ix),
        };
        Prompt {
            node: self.flow.node(ix).id.clone(),
            text,
            kind: PromptKind::Confirm {
                send: PromptOption {
                    id: "send".into(),
                    label: send,
                },
                items,
                more,
                brief: brief.is_some(),
            },
            optional: false,
        }
    }

    /// A one-line re-ask at the confirmation: the message `key`, with the
    /// number of items filled in; the ~50-line screen is not sent again.
    fn brief_confirm(&mut self, ix: NodeIx, key: &str) {
        let n = self.confirm_item_ixs().len();
        let text = self.msg(key).replace("{n}", &n.to_string());
        let p = self.confirm_prompt(ix, Some(text));
        self.out.push(Effect::Ask(p));
    }

    /// Why the case goes where it goes, and what each recipient does, for
    /// an owner who asks before agreeing. The texts are the script's
    /// messages (`route_why`, `hub_about_<kind>`), so a network can
    /// rephrase them.
    fn route_explanation(&self) -> String {
        let Some(r) = self.st.route.as_deref() else {
            return String::new();
        };
        let esc = |s: &str| render::escape(self.ctx.mode, s);
        let sep = match self.flow.lang {
            Lang::Ja => "：",
            Lang::En => ": ",
        };
        let mut lines = vec![self.msg("route_why").replace("{reason}", &esc(&r.reason))];
        for (k, h) in r.recipients().enumerate() {
            let about = self
                .flow
                .routing
                .hub(&h.id)
                .map(|hub| self.msg(&format!("hub_about_{}", hub.kind.name())))
                .unwrap_or_default();
            let copy = if k > 0 {
                self.msg("route_why_copy")
            } else {
                String::new()
            };
            lines.push(format!("・{}{copy}{sep}{about}", esc(&h.name)));
        }
        lines.push(self.msg("route_why_tail"));
        lines.join("\n")
    }

    fn confirm(&mut self, raw: &str, picked: bool) {
        let ix = self.st.node;
        let folded = fold_for_match(raw);
        let items = self.confirm_item_ixs();
        let said = |list: &words::Folded| list.contains(&folded);
        let consent = self.consent_after(ix);
        if let Some(c) = consent {
            let agree = if picked {
                raw == "send"
            } else {
                said(&words::SEND) || said(&words::YES) || said(&words::AGREE_AND_SEND)
            };
            if agree {
                return self.consent_and_send(ix, c, raw, true);
            }
            let decline = if picked {
                raw == "decline"
            } else {
                said(&words::DECLINE)
            };
            if decline {
                return self.consent_and_send(ix, c, raw, false);
            }
            if (picked && raw == "why") || (!picked && asks_about_recipients(raw)) {
                let why = self.route_explanation();
                self.say(why);
                return self.brief_confirm(ix, "confirm_consent_reask");
            }
            if !picked && said(&words::NO) {
                // 「いいえ」 here may mean "do not send" or "this is not
                // right": ask which rather than guess.
                return self.brief_confirm(ix, "confirm_consent_no");
            }
        } else {
            let send = (picked && raw == "send") || said(&words::SEND);
            if send {
                let (shares, wording) = self.consent_shares_and_wording();
                self.finish_case(shares, wording);
                if let Some(n) = self.successor(ix) {
                    self.enter(n, true);
                }
                return;
            }
        }
        let target = if picked {
            self.flow.index_of(raw).filter(|i| items.contains(i))
        } else if let Ok(n) = confirm_item_number(&folded) {
            n.checked_sub(1).and_then(|k| items.get(k).copied())
        } else {
            // 「従業員数」, or said as a wish: 「従業員数を直したい」.
            let item = confirm_item_words(&folded);
            items
                .iter()
                .copied()
                .find(|i| fold_for_match(&self.flow.node(*i).label) == item)
        };
        match target {
            Some(t) => {
                self.st.retries = 0;
                self.ask(t);
            }
            None => {
                let no = said(&words::NO)
                    || ["修正", "修正する", "edit", "correct"].contains(&folded.as_str());
                let key = match (no, consent.is_some()) {
                    (true, _) => "confirm_which",
                    (false, true) => "confirm_consent_reask",
                    (false, false) => "confirm_hint",
                };
                self.out.push(Effect::Reask {
                    node: self.flow.node(ix).id.clone(),
                    ix,
                });
                self.brief_confirm(ix, key);
            }
        }
    }

    /// The owner's answer at a confirmation that is also the consent
    /// question: the consent (or refusal) is recorded with the exact text
    /// the owner saw, and on consent the case is created in the same step.
    fn consent_and_send(&mut self, ix: NodeIx, consent: NodeIx, raw: &str, granted: bool) {
        let hubs: Vec<HubRef> = self
            .st
            .route
            .as_ref()
            .map(|r| r.recipients().cloned().collect())
            .unwrap_or_default();
        if granted && hubs.is_empty() {
            // The compiler puts a route node before every consent question;
            // without recipients there is nothing an owner could agree to.
            tracing::error!(script = %self.flow.script_id, "consent without a route; nothing sent");
            return self.brief_confirm(ix, "confirm_consent_reask");
        }
        let wording = self.consent_part(consent);
        let shares = match &self.flow.node(consent).kind {
            NodeKind::Ask(q) => match &q.ty {
                AnswerType::Consent { shares } => shares.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        self.st.consented = granted.then(|| hubs.iter().map(|h| h.id.clone()).collect());
        self.out.push(Effect::Consent(ConsentRecord {
            granted,
            hubs,
            items: shares.clone(),
            wording: wording.clone(),
        }));
        self.record(consent, AnswerValue::Bool(granted), raw.to_string());
        if granted {
            self.finish_case(shares, wording);
        }
        if let Some(n) = self.successor(consent) {
            self.enter(n, true);
        }
    }

    /// What the consent question shares and says, for a confirmation that
    /// follows an earlier consent question.
    fn consent_shares_and_wording(&mut self) -> (Vec<String>, String) {
        let Some(c) = self.consent_node() else {
            return (vec![], String::new());
        };
        let shares = match &self.flow.node(c).kind {
            NodeKind::Ask(q) => match &q.ty {
                AnswerType::Consent { shares } => shares.clone(),
                _ => return (vec![], String::new()),
            },
            _ => return (vec![], String::new()),
        };
        (shares, self.required(&format!("{c}.text")))
    }

    /// The multiple choice a choice question narrows (the same options, in
    /// the same order, asked earlier), and its picks when it was answered.
    /// "Which of these comes first?" needs no asking when only one was
    /// picked.
    fn narrowed_by(&self, ix: NodeIx) -> Option<Vec<String>> {
        let NodeKind::Ask(q) = &self.flow.node(ix).kind else {
            return None;
        };
        let AnswerType::Choice { options } = &q.ty else {
            return None;
        };
        self.flow
            .questions()
            .filter(|(i, _, _)| *i < ix)
            .find_map(|(i, _, mq)| {
                let AnswerType::Multi { options: mo, .. } = &mq.ty else {
                    return None;
                };
                if !mo.iter().map(|o| &o.id).eq(options.iter().map(|o| &o.id)) {
                    return None;
                }
                match self.st.answer(i) {
                    Some(AnswerValue::Multi(p)) => Some(p.clone()),
                    _ => None,
                }
            })
    }

    /// The answer type a question is asked and read with: a choice that
    /// narrows a multiple choice in which several options were picked
    /// (「最優先の課題」 after 「経営課題の分野」) offers only those, numbered
    /// anew, so that an owner who picked 1 and 5 and then types 「2」 for
    /// "my second one" is not read as an area they never chose, and a
    /// priority outside the picks cannot reach routing. `None`: as the
    /// script has it.
    fn narrowed_type(&self, ix: NodeIx, ty: &AnswerType) -> Option<AnswerType> {
        let AnswerType::Choice { options } = ty else {
            return None;
        };
        let picks = self.narrowed_by(ix)?;
        (picks.len() >= 2 && picks.len() < options.len()).then(|| AnswerType::Choice {
            options: options
                .iter()
                .filter(|o| picks.contains(&o.id))
                .cloned()
                .collect(),
        })
    }

    fn implied_choice(&self, ix: NodeIx) -> Option<String> {
        match self.narrowed_by(ix)?.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        }
    }

    fn finish_case(&mut self, shares: Vec<String>, wording: String) {
        let (Some(route), Some(_)) = (
            self.st.route.as_deref().cloned(),
            self.st.consented.as_ref(),
        ) else {
            // No consent, no case: nothing leaves the bot.
            return;
        };
        let plain = self.required_in("summary", RenderMode::Plain);
        let markdown = self.required_in("summary", RenderMode::Markdown);
        let headline = self.required_in("headline", RenderMode::Plain);
        let draft = CaseDraft {
            headline,
            summary_plain: plain,
            summary_markdown: markdown,
            consent: ConsentRecord {
                granted: true,
                hubs: route.recipients().cloned().collect(),
                items: shares,
                wording,
            },
            step: route.step,
            route,
            tags: self.st.tags.clone(),
        };
        self.out.push(Effect::CaseReady(Box::new(draft)));
    }
}

/// Whether a message asks about the recipients ("why", "the shinkin
/// bank?") rather than answering: a question mark, a why-word, or the
/// name of a kind of institution.
fn asks_about_recipients(raw: &str) -> bool {
    const WORDS: &[&str] = &[
        "なぜ",
        "何故",
        "なんで",
        "どうして",
        "理由",
        "どんな機関",
        "どういう機関",
        "どこ",
        "信用金庫",
        "信金",
        "銀行",
        "金融機関",
        "融資",
        "商工会",
        "よろず",
        "拠点",
        "事務局",
        "why",
        "reason",
        "who is",
        "what is",
        "bank",
        "loan",
        "chamber",
        "yorozu",
    ];
    let folded = fold_for_match(raw);
    raw.contains(['?', '？']) || WORDS.iter().any(|w| folded.contains(&fold_for_match(w)))
}

#[cfg(test)]
mod tests {
    use super::asks_about_recipients;
    use super::{step, Ctx, Effect, Input, SessionState};
    use crate::render::RenderMode;
    use chrono::TimeZone;

    /// Text typed under an earlier question (or none of this session's)
    /// answers nothing: the current question is asked again with a note,
    /// and commands that do not depend on the question still work.
    #[test]
    fn text_typed_under_an_earlier_question_answers_nothing() {
        let b = crate::script::load_dir(std::path::Path::new("dialogs")).unwrap();
        let flow = &b.flows[0];
        let ctx = Ctx::new(
            chrono::Utc.with_ymd_and_hms(2026, 11, 21, 1, 0, 0).unwrap(),
            RenderMode::Plain,
        );
        let under = |node: Option<&str>, text: &str| Input::TextUnder {
            text: text.into(),
            session: 1,
            node: node.map(str::to_string),
        };
        let mut st = SessionState::default();
        // A new session opens on anything typed, whatever it was typed under.
        let out = step(flow, &mut st, under(None, "こんにちは"), &ctx);
        assert!(out.iter().any(|e| matches!(e, Effect::Ask(_))), "{out:?}");
        let first = flow.node(st.node).id.clone();
        step(flow, &mut st, under(Some(&first), "はい"), &ctx);
        let second = flow.node(st.node).id.clone();
        assert_ne!(first, second);
        let before = st.clone();
        for shown in [Some(first.as_str()), None] {
            let out = step(flow, &mut st, under(shown, "株式会社テスト"), &ctx);
            assert!(out.contains(&Effect::Stale), "{out:?}");
            assert!(
                !out.iter().any(|e| matches!(e, Effect::Record(_))),
                "{out:?}"
            );
            assert!(
                out.iter()
                    .any(|e| matches!(e, Effect::Ask(p) if p.node == second)),
                "the current question is asked again: {out:?}"
            );
            let note = flow.messages.get("typed_earlier");
            assert!(out.contains(&Effect::Say(note.to_string())), "{out:?}");
            assert_eq!(st.node, before.node);
            assert_eq!(st.answers, before.answers);
        }
        // "back" typed under the first question would act on the second.
        let out = step(flow, &mut st, under(Some(&first), "戻る"), &ctx);
        assert!(out.contains(&Effect::Stale), "{out:?}");
        assert_eq!(flow.node(st.node).id, second);
        // Help means the same under any question.
        let out = step(flow, &mut st, under(Some(&first), "ヘルプ"), &ctx);
        assert!(!out.contains(&Effect::Stale), "{out:?}");
        assert!(
            out.contains(&Effect::Say(flow.messages.get("help").to_string())),
            "{out:?}"
        );
        // Typed under the current question, it is its answer.
        let out = step(flow, &mut st, under(Some(&second), "株式会社テスト"), &ctx);
        assert!(
            out.iter().any(|e| matches!(e, Effect::Record(_))),
            "{out:?}"
        );
        assert_ne!(flow.node(st.node).id, second);
        // The runner clears the node of another session's question.
        let other = under(Some(&second), "x").for_session(2);
        assert!(matches!(other, Input::TextUnder { node: None, .. }));
        assert_eq!(
            under(Some(&second), "x").for_session(1),
            under(Some(&second), "x")
        );
    }

    #[test]
    fn questions_about_the_recipients_are_recognised() {
        for q in [
            "信用金庫に送るの？融資の話ではないんだけど",
            "なぜ",
            "理由は？",
            "なんでここ",
            "どうして商工会なんですか",
            "ここってどんな機関？",
            "よろずって何",
            "Why?",
            "why this bank",
            "what is the chamber",
        ] {
            assert!(asks_about_recipients(q), "{q}");
        }
    }

    #[test]
    fn answers_are_not_taken_for_questions() {
        for a in [
            "送信",
            "同意する",
            "同意しない",
            "はい",
            "いいえ",
            "3",
            "修正",
            "send",
            "do not agree",
            "うーん",
        ] {
            assert!(!asks_about_recipients(a), "{a}");
        }
    }
}
