//! The consultation engine: a pure state machine.
//!
//! `step(flow, state, input, ctx) -> effects` is the whole interface. It
//! reads no clock (time comes in `Ctx`), touches no file, socket or database,
//! and never blocks; adapters and the runner do all I/O around it. Every
//! accepted answer appears as an [`Effect::Record`] *before* the prompt that
//! follows it, and the runner commits a step's effects to the store before it
//! sends any reply, so an acknowledged answer is never lost.

mod answer;

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
    /// A button or select: the node it belongs to and the option id(s),
    /// comma separated for a multi-select.
    Pick { node: String, value: String },
    /// A command button.
    Command(Command),
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
    fn set_answer(&mut self, ix: NodeIx, mut v: AnswerValue) {
        // Text built while normalising may have spare capacity; the answer
        // is kept for the whole conversation, so keep only what it needs.
        if let AnswerValue::Text(t) = &mut v {
            t.shrink_to_fit();
        }
        self.answers.retain(|(i, _)| *i != ix);
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
}

/// The tags whose patterns match the state's free-text answers.
pub fn tags_for(flow: &Flow, st: &SessionState) -> Vec<String> {
    flow.tags
        .iter()
        .filter(|rule| rule.from.iter().any(|ix| matches!(st.answer(*ix), Some(AnswerValue::Text(t)) if rule.pattern.is_match(t))))
        .map(|rule| rule.name.clone())
        .collect()
}

/// A read-only view of a state for conditions and routing.
pub fn facts(st: &SessionState) -> impl Facts + '_ {
    View(st)
}

/// Advances a consultation by one input.
pub fn step(flow: &Flow, st: &mut SessionState, input: Input, ctx: &Ctx) -> Vec<Effect> {
    let mut e = Stepper {
        flow,
        st,
        ctx,
        out: Vec::new(),
    };
    e.run(input);
    e.out
}

struct Stepper<'a> {
    flow: &'a Flow,
    st: &'a mut SessionState,
    ctx: &'a Ctx,
    out: Vec<Effect>,
}

impl Stepper<'_> {
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
            *self.st = SessionState {
                status: Status::Active,
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

    fn render_in(&self, name: &str, mode: RenderMode) -> String {
        let input = ContextInput {
            answers: &self.st.answers,
            tags: &self.st.tags,
            route: self.st.route.as_deref(),
            today: self.ctx.today(),
        };
        render::render_input(self.flow, name, &input, mode)
    }

    fn render(&self, name: &str) -> String {
        self.render_in(name, self.ctx.mode)
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
                NodeKind::Route => self.route(),
                NodeKind::Ask(_) | NodeKind::Confirm => return self.ask(ix),
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
                    self.st.answers.retain(|(i, _)| *i != cix);
                    self.out.push(Effect::Unset {
                        node: self.flow.node(cix).id.clone(),
                        ix: cix,
                    });
                }
                self.say(self.msg("consent_changed"));
            }
        }
        if self.st.route.as_deref() != Some(&d) {
            self.out.push(Effect::Routed(d.clone()));
        }
        self.st.route = Some(Box::new(d));
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
        let mut text = self.render(&format!("{ix}.text"));
        let kind = match &node.kind {
            NodeKind::Ask(q) => answer::prompt_kind(self.flow, &q.ty),
            NodeKind::Confirm => {
                let summary = self.render("summary");
                text = format!("{text}\n\n{summary}\n\n{}", self.msg("confirm_hint"));
                let mut items: Vec<PromptOption> = Vec::new();
                let mut answered: Vec<&(NodeIx, AnswerValue)> = self.st.answers.iter().collect();
                answered.sort_by_key(|(i, _)| *i);
                for (i, v) in answered {
                    let n = self.flow.node(*i);
                    if !matches!(&n.kind, NodeKind::Ask(q) if q.editable) {
                        continue;
                    }
                    items.push(PromptOption {
                        id: n.id.clone(),
                        label: format!("{}: {}", n.label, self.shown(*i, v)),
                    });
                }
                let send = match self.flow.lang {
                    Lang::Ja => "送信する",
                    Lang::En => "Send",
                };
                PromptKind::Confirm {
                    send: PromptOption {
                        id: "send".into(),
                        label: send.into(),
                    },
                    items,
                }
            }
            _ => return,
        };
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
            NodeKind::Ask(q) => match parse_answer(self.flow, &q.ty, raw, picked, self.ctx.today())
            {
                Ok(v) => {
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
                        let wording = self.render(&format!("{ix}.text"));
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
                Err(reason) => self.retry(ix, reason),
            },
            _ => {}
        }
    }

    fn retry(&mut self, ix: NodeIx, reason: String) {
        let NodeKind::Ask(q) = &self.flow.node(ix).kind else {
            return;
        };
        self.st.retries = self.st.retries.saturating_add(1);
        if self.st.retries > q.max_retries {
            self.st.retries = 0;
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
        let head = if q.has_retry {
            self.render(&format!("{ix}.retry"))
        } else {
            self.msg("retry")
        };
        self.say(format!("{head}\n{reason}"));
        self.prompt(ix);
    }

    fn record(&mut self, ix: NodeIx, value: AnswerValue, raw: String) {
        let correction = self.st.answer(ix).is_some();
        self.st.set_answer(ix, value.clone());
        self.out.push(Effect::Record(Recorded {
            node: self.flow.node(ix).id.clone(),
            ix,
            value,
            raw,
            correction,
        }));
        if render::is_text(self.flow, ix) {
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
                    if self.st.answer(ix).is_none() {
                        return self.ask(ix);
                    }
                }
                NodeKind::Route => self.route(),
                NodeKind::Confirm => {
                    // Answers to questions no longer on the path would
                    // mislead staff; withdraw them (the store keeps history).
                    let dropped: Vec<NodeIx> = self
                        .st
                        .answers
                        .iter()
                        .map(|(i, _)| *i)
                        .filter(|i| !on_path.contains(i))
                        .collect();
                    for d in dropped {
                        self.st.answers.retain(|(i, _)| *i != d);
                        self.out.push(Effect::Unset {
                            node: self.flow.node(d).id.clone(),
                            ix: d,
                        });
                    }
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

    fn confirm(&mut self, raw: &str, picked: bool) {
        let ix = self.st.node;
        let folded = fold_for_match(raw);
        let items: Vec<NodeIx> = {
            let mut a: Vec<NodeIx> = self
                .st
                .answers
                .iter()
                .map(|(i, _)| *i)
                .filter(|i| matches!(&self.flow.node(*i).kind, NodeKind::Ask(q) if q.editable))
                .collect();
            a.sort();
            a
        };
        let send = (picked && raw == "send")
            || crate::script::send_words()
                .iter()
                .any(|w| fold_for_match(w) == folded);
        if send {
            self.finish_case();
            return match self.successor(ix) {
                Some(n) => self.enter(n, true),
                None => {}
            };
        }
        let target = if picked {
            self.flow.index_of(raw).filter(|i| items.contains(i))
        } else if let Ok(n) = folded.parse::<usize>() {
            n.checked_sub(1).and_then(|k| items.get(k).copied())
        } else {
            items
                .iter()
                .copied()
                .find(|i| fold_for_match(&self.flow.node(*i).label) == folded)
        };
        match target {
            Some(t) => {
                self.st.retries = 0;
                self.ask(t);
            }
            None => {
                let no = crate::script::no_words()
                    .iter()
                    .any(|w| fold_for_match(w) == folded)
                    || ["修正", "修正する", "edit", "correct"].contains(&folded.as_str());
                self.say(self.msg(if no { "confirm_which" } else { "retry" }));
                self.prompt(ix);
            }
        }
    }

    fn finish_case(&mut self) {
        let (Some(route), Some(_)) = (
            self.st.route.as_deref().cloned(),
            self.st.consented.as_ref(),
        ) else {
            // No consent, no case: nothing leaves the bot.
            return;
        };
        let consent_ix = self.consent_node();
        let (shares, wording) = match consent_ix.map(|c| (c, &self.flow.node(c).kind)) {
            Some((c, NodeKind::Ask(q))) => match &q.ty {
                AnswerType::Consent { shares } => {
                    (shares.clone(), self.render(&format!("{c}.text")))
                }
                _ => (vec![], String::new()),
            },
            _ => (vec![], String::new()),
        };
        let plain = self.render_in("summary", RenderMode::Plain);
        let markdown = self.render_in("summary", RenderMode::Markdown);
        let headline = self.render_in("headline", RenderMode::Plain);
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
