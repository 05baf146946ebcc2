//! Rendering of script templates: the context a template sees, and escaping
//! of owner-supplied values for the place the text is shown.
//!
//! Answers are stored exactly as typed. Escaping happens here, once, when a
//! value is placed into a template context, so an answer containing `{{`,
//! markdown or `@everyone` is shown as text and never interpreted: handlebars
//! does not re-evaluate values, and the markdown escaper neutralises
//! formatting and mentions for Discord.

pub mod prompt;

use crate::answer::AnswerValue;
use crate::script::{AnswerType, Flow, Lang, NodeIx};
use handlebars::{handlebars_helper, Handlebars, JsonValue};
use serde_json::{json, Map, Value};

/// Where rendered text will be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderMode {
    /// Terminal and logs: text as is (control characters were removed at
    /// input).
    Plain,
    /// Discord markdown: formatting characters and mentions escaped.
    Markdown,
    /// Slack mrkdwn: `&`, `<`, `>` as entities, links and mentions broken
    /// ([`crate::escape::slack`]).
    Slack,
}

pub fn register_helpers(hb: &mut Handlebars<'static>) {
    // `{{default x "（未回答）"}}`: the value, or a fallback when empty.
    handlebars_helper!(default: |v: JsonValue, fallback: str| {
        match v {
            JsonValue::Null => fallback.to_string(),
            JsonValue::String(s) if s.is_empty() => fallback.to_string(),
            JsonValue::String(s) => s.clone(),
            JsonValue::Array(a) if a.is_empty() => fallback.to_string(),
            other => other.to_string(),
        }
    });
    hb.register_helper("default", Box::new(default));
}

/// Escapes an owner-supplied value for the given mode, and indents every
/// line of it after the first (see [`CONTINUATION`]).
pub fn escape(mode: RenderMode, s: &str) -> String {
    let escaped = match mode {
        RenderMode::Plain => s.to_string(),
        RenderMode::Markdown => escape_markdown(s),
        RenderMode::Slack => crate::escape::slack(s),
    };
    if escaped.contains('\n') {
        escaped.replace('\n', &format!("\n{CONTINUATION}"))
    } else {
        escaped
    }
}

/// What starts each line of an answer after its first, wherever the
/// answer is placed (the sheet, the headline, the answers shown back).
/// A template's own lines start at the margin (`■ 連絡先`, `メール：…`);
/// an answer's cannot, so an owner who types line breaks (a Discord or
/// Slack message, or U+2028 in a terminal, which the input edge reads as
/// one) can neither end their field nor write a line that passes for a
/// section or a field of the sheet. An ideographic space reads as an
/// indent in Japanese text and is kept by every medium's escaping.
pub const CONTINUATION: &str = "\u{3000}";

/// Escapes Discord markdown and defuses mentions; the function lives in
/// [`crate::escape::discord`] with the other media's.
pub fn escape_markdown(s: &str) -> String {
    crate::escape::discord(s)
}

/// How an answer reads to a person.
pub fn display_answer(flow: &Flow, node: NodeIx, v: &AnswerValue) -> String {
    let lang = flow.lang;
    let sep = if lang == Lang::Ja { "、" } else { ", " };
    let label_of = |id: &str| -> String {
        match &flow.node(node).kind {
            crate::script::NodeKind::Ask(q) => {
                q.ty.options()
                    .iter()
                    .find(|o| o.id == id)
                    .map(|o| o.label.clone())
                    .unwrap_or_else(|| id.to_string())
            }
            _ => id.to_string(),
        }
    };
    match v {
        AnswerValue::Choice(id) => label_of(id),
        AnswerValue::Other(o) => match lang {
            Lang::Ja => format!("{}（{}）", label_of(&o.id), o.words),
            Lang::En => format!("{} ({})", label_of(&o.id), o.words),
        },
        // 「リネンサプライ業（サービス業）」: the class, then the option.
        AnswerValue::Industry { option, class } => {
            let name = crate::domain::industry::Jsic::by_code(class)
                .map(|c| c.name())
                .unwrap_or(class.as_str());
            match lang {
                Lang::Ja => format!("{name}（{}）", label_of(option)),
                Lang::En => format!("{name} ({})", label_of(option)),
            }
        }
        AnswerValue::Multi(ids) => ids
            .iter()
            .map(|i| label_of(i))
            .collect::<Vec<_>>()
            .join(sep),
        AnswerValue::Bool(b) => match (lang, b) {
            (Lang::Ja, true) => "はい".into(),
            (Lang::Ja, false) => "いいえ".into(),
            (Lang::En, true) => "Yes".into(),
            (Lang::En, false) => "No".into(),
        },
        AnswerValue::Text(t) => t.clone(),
        AnswerValue::Number(q) => match lang {
            Lang::Ja => q.to_string(),
            Lang::En => q.display_en(),
        },
        AnswerValue::Prefecture(p) => match (lang, p.municipality()) {
            (Lang::Ja, _) => p.name_ja(),
            (Lang::En, None) => p.prefecture().name_en().to_string(),
            (Lang::En, Some(m)) => format!("{} ({})", m.name(), p.prefecture().name_en()),
        },
        AnswerValue::Email(e) => e.as_str().to_string(),
        AnswerValue::Phone(p) => p.display(),
        AnswerValue::Date(d) => match lang {
            Lang::Ja => d.to_string(),
            Lang::En => d.display_en(),
        },
        AnswerValue::Period(p) => p.display(lang == Lang::Ja),
        AnswerValue::Skipped => flow.messages.get("skipped_value").to_string(),
    }
}

/// Everything a template can refer to.
pub struct ContextInput<'a> {
    pub answers: &'a [(NodeIx, AnswerValue)],
    pub tags: &'a [String],
    pub route: Option<&'a crate::routing::RouteDecision>,
    pub today: chrono::NaiveDate,
}

pub fn context(flow: &Flow, input: &ContextInput, mode: RenderMode) -> Value {
    let mut m = Map::new();
    let mut list = Vec::with_capacity(input.answers.len());
    for (ix, v) in input.answers {
        let node = flow.node(*ix);
        let shown = escape(mode, &display_answer(flow, *ix, v));
        if !v.is_skipped() {
            m.insert(node.id.clone(), Value::String(shown.clone()));
        }
        list.push((
            *ix,
            json!({ "id": node.id, "label": escape(mode, &node.label), "value": shown }),
        ));
    }
    // Order the list as the script orders its questions, whatever the
    // order of answering (corrections move answers to the end). A node's
    // index is its position in the script.
    list.sort_by_key(|(ix, _)| *ix);
    let list: Vec<Value> = list.into_iter().map(|(_, v)| v).collect();
    m.insert("answers".into(), Value::Array(list));
    let labels: Vec<String> = input
        .tags
        .iter()
        .map(|t| {
            flow.tags
                .iter()
                .find(|r| &r.name == t)
                .map(|r| r.label.clone())
                .unwrap_or_else(|| t.clone())
        })
        .collect();
    let sep = if flow.lang == Lang::Ja { "、" } else { ", " };
    m.insert("tags".into(), Value::String(labels.join(sep)));
    m.insert(
        "has_tag".into(),
        Value::Object(
            input
                .tags
                .iter()
                .map(|t| (t.clone(), Value::Bool(true)))
                .collect(),
        ),
    );
    if let Some(r) = input.route {
        let copies: Vec<String> = r.copies.iter().map(|h| h.name.clone()).collect();
        let all: Vec<String> = r.recipients().map(|h| h.name.clone()).collect();
        m.insert(
            "route".into(),
            json!({
                "primary": r.primary.name,
                "copies": copies.join(sep),
                "hubs": all.join(sep),
                "rule": r.rule,
                "reason": r.reason,
                "follow_up": r.follow_up.as_ref().map(|h| h.name.as_str()),
            }),
        );
    }
    m.insert("title".into(), Value::String(flow.title.clone()));
    m.insert(
        "today".into(),
        Value::String(match flow.lang {
            Lang::Ja => input.today.format("%Y年%-m月%-d日").to_string(),
            Lang::En => input.today.format("%Y-%m-%d").to_string(),
        }),
    );
    Value::Object(m)
}

/// A template that could not be rendered. The reason names the template's
/// own helpers and paths, never an owner's values, so it may be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFailure {
    /// The template's name in the flow (`3.text`, `summary`).
    pub template: String,
    pub reason: String,
}

/// Renders one of the flow's templates for a consultation's state, the way
/// handlebars renders it with [`context`], taking the cheapest way that
/// gives the same text: plain text as it is; templates made only of the
/// constructs scripts use (`{{id}}`, `{{route.primary}}`, `{{#if}}`,
/// `{{default}}`, `{{#each answers}}`) straight from the state; anything
/// else through handlebars with the full JSON context.
///
/// A failure is returned, never replaced by empty text: the engine refuses
/// the step instead of showing a blank question or recording blank
/// consent wording (`dialogs check` renders every template beforehand, so
/// this guards versions stored before that check and hand-built flows).
pub fn render_input(
    flow: &Flow,
    name: &str,
    input: &ContextInput,
    mode: RenderMode,
) -> Result<String, TemplateFailure> {
    match flow.prepared.0.get(name) {
        Some(Ready::Plain(text)) => return Ok(text.clone()),
        Some(Ready::Direct(parts)) => {
            let mut out = String::new();
            lite::Scope { flow, input, mode }.render(parts, &mut out);
            return Ok(trimmed(out));
        }
        None => {}
    }
    render_handlebars(flow, name, &context(flow, input, mode))
}

/// A flow's templates as [`render_input`] renders them, worked out once
/// when the flow is compiled (a flow's templates never change after
/// that): the text of each template without expressions, and the direct
/// renderer's parts of each template it can render. Looking a template up
/// in handlebars, copying its text out and compiling it anew at every
/// prompt was a visible share of a turn's CPU.
#[derive(Default)]
pub(crate) struct Prepared(std::collections::HashMap<String, Ready>);

pub(crate) enum Ready {
    Plain(String),
    Direct(Vec<lite::Part>),
}

impl Prepared {
    /// Reads every template of `hb`; those neither plain nor direct are
    /// left out and rendered through handlebars.
    pub(crate) fn new(hb: &Handlebars<'static>) -> Prepared {
        Prepared(
            hb.get_templates()
                .iter()
                .filter_map(|(name, t)| {
                    let ready = match plain_text(t) {
                        Some(text) => Ready::Plain(text),
                        None => Ready::Direct(lite::compile(&t.elements)?),
                    };
                    Some((name.clone(), ready))
                })
                .collect(),
        )
    }
}

/// Which way [`render_input`] renders a template: `"plain"` (text without
/// expressions), `"direct"` (from the state), `"handlebars"`, or `"none"`
/// when the flow has no such template.
pub fn render_path(flow: &Flow, name: &str) -> &'static str {
    match flow.templates.get_template(name) {
        None => "none",
        Some(t) if plain_text(t).is_some() => "plain",
        Some(t) if lite::compile(&t.elements).is_some() => "direct",
        Some(_) => "handlebars",
    }
}

/// Renders through handlebars only (the reference the faster paths are
/// tested against).
pub fn render_handlebars(flow: &Flow, name: &str, ctx: &Value) -> Result<String, TemplateFailure> {
    flow.templates
        .render(name, ctx)
        .map(trimmed)
        .map_err(|e| TemplateFailure {
            template: name.to_string(),
            reason: e.reason().to_string(),
        })
}

/// What a template without expressions renders to (as [`render`] returns
/// it), or `None` when it has any expression, helper or partial.
fn plain_text(t: &handlebars::template::Template) -> Option<String> {
    use handlebars::template::TemplateElement;
    let mut out = String::new();
    for e in &t.elements {
        match e {
            TemplateElement::RawString(s) => out.push_str(s),
            TemplateElement::Comment(_) => {}
            _ => return None,
        }
    }
    Some(trimmed(out))
}

fn trimmed(mut s: String) -> String {
    let keep = s.trim_end().len();
    s.truncate(keep);
    s
}

/// True when the question's answers are free text that tag rules read.
pub fn is_text(flow: &Flow, ix: NodeIx) -> bool {
    matches!(&flow.node(ix).kind, crate::script::NodeKind::Ask(q) if matches!(q.ty, AnswerType::Text { .. }))
}

/// A direct renderer for the handlebars subset that scripts use, reading the
/// consultation state instead of a JSON context. `compile` accepts a
/// template only when every element is one it renders exactly as handlebars
/// would with [`context`]; anything else (other helpers, `this`, `../`,
/// `@index`, partials, hash arguments, whole objects) returns `None` and
/// goes through handlebars. A test renders every shipped template both ways.
pub(crate) mod lite {
    use super::{display_answer, escape, ContextInput, RenderMode};
    use crate::script::{Flow, Lang};
    use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
    use handlebars::{Path, PathSeg};
    use serde_json::Value;

    /// Names handlebars resolves as helpers (registered by default or by us).
    const HELPERS: &[&str] = &[
        "if", "unless", "each", "with", "lookup", "eq", "ne", "gt", "gte", "lt", "lte", "and",
        "or", "not", "len", "default", "log", "raw",
    ];

    #[derive(Debug)]
    pub enum Key {
        Answer(String),
        Title,
        Today,
        Tags,
        Route(&'static str),
    }

    #[derive(Debug)]
    pub enum ItemKey {
        Id,
        Label,
        Value,
    }

    /// Owned, so that a flow keeps its templates' parts beside the
    /// templates themselves ([`super::Prepared`]).
    #[derive(Debug)]
    pub enum Part {
        Raw(String),
        Var(Key),
        Default(Key, String),
        If {
            key: Key,
            negate: bool,
            then: Vec<Part>,
            otherwise: Vec<Part>,
        },
        EachAnswer {
            body: Vec<ItemPart>,
            otherwise: Vec<Part>,
        },
    }

    #[derive(Debug)]
    pub enum ItemPart {
        Raw(String),
        Var(ItemKey),
    }

    /// The path's names when it is a plain `a` or `a.b` path.
    fn names(p: &Parameter) -> Option<Vec<&str>> {
        match p {
            Parameter::Name(n) => Some(vec![n.as_str()]),
            Parameter::Path(Path::Relative((segs, _))) => segs
                .iter()
                .map(|s| match s {
                    PathSeg::Named(n) => Some(n.as_str()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    fn key(p: &Parameter) -> Option<Key> {
        let n = names(p)?;
        match n.as_slice() {
            [one] if HELPERS.contains(one) => None,
            ["title"] => Some(Key::Title),
            ["today"] => Some(Key::Today),
            ["tags"] => Some(Key::Tags),
            // Objects, arrays and names the context does not hold as text.
            ["route"] | ["answers"] | ["has_tag"] | ["case_id"] => None,
            [one] if !one.is_empty() && !one.starts_with('@') => Some(Key::Answer(one.to_string())),
            ["route", f] => match *f {
                "primary" => Some(Key::Route("primary")),
                "copies" => Some(Key::Route("copies")),
                "hubs" => Some(Key::Route("hubs")),
                "rule" => Some(Key::Route("rule")),
                "reason" => Some(Key::Route("reason")),
                "follow_up" => Some(Key::Route("follow_up")),
                _ => None,
            },
            _ => None,
        }
    }

    fn plain(h: &HelperTemplate) -> bool {
        h.hash.is_empty() && h.block_param.is_none() && !h.chain
    }

    pub fn compile(els: &[TemplateElement]) -> Option<Vec<Part>> {
        let mut out = Vec::with_capacity(els.len());
        for e in els {
            out.push(match e {
                TemplateElement::RawString(s) => Part::Raw(s.clone()),
                TemplateElement::Comment(_) => continue,
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    if !plain(h) || h.template.is_some() || h.inverse.is_some() {
                        return None;
                    }
                    match (names(&h.name)?.as_slice(), h.params.as_slice()) {
                        (_, []) => Part::Var(key(&h.name)?),
                        (["default"], [v, Parameter::Literal(Value::String(f))]) => {
                            Part::Default(key(v)?, f.clone())
                        }
                        _ => return None,
                    }
                }
                TemplateElement::HelperBlock(h) => {
                    if !plain(h) {
                        return None;
                    }
                    let otherwise = match &h.inverse {
                        Some(t) => compile(&t.elements)?,
                        None => Vec::new(),
                    };
                    let body = h.template.as_ref()?;
                    match (names(&h.name)?.as_slice(), h.params.as_slice()) {
                        ([helper @ ("if" | "unless")], [p]) => Part::If {
                            key: key(p)?,
                            negate: *helper == "unless",
                            then: compile(&body.elements)?,
                            otherwise,
                        },
                        (["each"], [p]) if names(p)?.as_slice() == ["answers"] => {
                            let mut items = Vec::new();
                            for e in &body.elements {
                                items.push(match e {
                                    TemplateElement::RawString(s) => ItemPart::Raw(s.clone()),
                                    TemplateElement::Comment(_) => continue,
                                    TemplateElement::Expression(h)
                                    | TemplateElement::HtmlExpression(h)
                                        if plain(h)
                                            && h.params.is_empty()
                                            && h.template.is_none()
                                            && h.inverse.is_none() =>
                                    {
                                        match names(&h.name)?.as_slice() {
                                            ["id"] => ItemPart::Var(ItemKey::Id),
                                            ["label"] => ItemPart::Var(ItemKey::Label),
                                            ["value"] => ItemPart::Var(ItemKey::Value),
                                            _ => return None,
                                        }
                                    }
                                    _ => return None,
                                });
                            }
                            Part::EachAnswer {
                                body: items,
                                otherwise,
                            }
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            });
        }
        Some(out)
    }

    pub struct Scope<'a> {
        pub flow: &'a Flow,
        pub input: &'a ContextInput<'a>,
        pub mode: RenderMode,
    }

    impl Scope<'_> {
        fn sep(&self) -> &'static str {
            if self.flow.lang == Lang::Ja {
                "、"
            } else {
                ", "
            }
        }

        /// The key's text as [`super::context`] holds it; `None` where the
        /// context has no such key.
        fn value(&self, k: &Key) -> Option<String> {
            let flow = self.flow;
            match k {
                Key::Answer(id) => {
                    let (ix, v) = self
                        .input
                        .answers
                        .iter()
                        .find(|(ix, _)| flow.node(*ix).id == *id)?;
                    (!v.is_skipped()).then(|| escape(self.mode, &display_answer(flow, *ix, v)))
                }
                Key::Title => Some(flow.title.clone()),
                Key::Today => Some(match flow.lang {
                    Lang::Ja => self.input.today.format("%Y年%-m月%-d日").to_string(),
                    Lang::En => self.input.today.format("%Y-%m-%d").to_string(),
                }),
                Key::Tags => {
                    let labels: Vec<&str> = self
                        .input
                        .tags
                        .iter()
                        .map(|t| {
                            flow.tags
                                .iter()
                                .find(|r| &r.name == t)
                                .map(|r| r.label.as_str())
                                .unwrap_or(t.as_str())
                        })
                        .collect();
                    Some(labels.join(self.sep()))
                }
                Key::Route(f) => {
                    let r = self.input.route?;
                    Some(match *f {
                        "primary" => r.primary.name.clone(),
                        "copies" => r
                            .copies
                            .iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(self.sep()),
                        "hubs" => r
                            .recipients()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(self.sep()),
                        "rule" => r.rule.clone(),
                        // Absent without a follow-up policy: the template
                        // shows nothing there, as handlebars does for null.
                        "follow_up" => r.follow_up.as_ref()?.name.clone(),
                        _ => r.reason.clone(),
                    })
                }
            }
        }

        pub fn render(&self, parts: &[Part], out: &mut String) {
            for p in parts {
                match p {
                    Part::Raw(s) => out.push_str(s),
                    Part::Var(k) => {
                        if let Some(v) = self.value(k) {
                            out.push_str(&v);
                        }
                    }
                    // `{{default x "…"}}`: the fallback when x is missing or empty.
                    Part::Default(k, fallback) => match self.value(k) {
                        Some(v) if !v.is_empty() => out.push_str(&v),
                        _ => out.push_str(fallback),
                    },
                    // Handlebars' truth for text: present and not empty.
                    Part::If {
                        key,
                        negate,
                        then,
                        otherwise,
                    } => {
                        let truthy = self.value(key).is_some_and(|v| !v.is_empty());
                        self.render(if truthy != *negate { then } else { otherwise }, out);
                    }
                    Part::EachAnswer { body, otherwise } => {
                        if self.input.answers.is_empty() {
                            self.render(otherwise, out);
                            continue;
                        }
                        let mut items: Vec<_> = self.input.answers.iter().collect();
                        items.sort_by_key(|(ix, _)| *ix);
                        for (ix, v) in items {
                            let node = self.flow.node(*ix);
                            for b in body {
                                match b {
                                    ItemPart::Raw(s) => out.push_str(s),
                                    ItemPart::Var(ItemKey::Id) => out.push_str(&node.id),
                                    ItemPart::Var(ItemKey::Label) => {
                                        out.push_str(&escape(self.mode, &node.label))
                                    }
                                    ItemPart::Var(ItemKey::Value) => out.push_str(&escape(
                                        self.mode,
                                        &display_answer(self.flow, *ix, v),
                                    )),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A template that fails at run time never becomes empty text: the step
/// is refused with the state unchanged. `dialogs check` refuses such
/// templates, so these tests break a compiled flow by hand, as a stored
/// version from before the check could be.
#[cfg(test)]
mod failure_tests {
    use crate::engine::{step, Ctx, Effect, Input, SessionState};
    use crate::render::RenderMode;
    use crate::script::{compile_flow, Flow, Sources};

    fn mini() -> Flow {
        let (flow, diags) = compile_flow(Sources {
            script_name: "mini.ja.yaml".into(),
            script_text: include_str!("../tests/corpus/_base/mini.ja.yaml").into(),
            routing_name: "routing.yaml".into(),
            routing_text: include_str!("../tests/corpus/_base/routing.yaml").into(),
        });
        flow.unwrap_or_else(|| panic!("{diags:?}"))
    }

    fn flow_with(name_of: impl Fn(&Flow) -> String, broken: &str) -> Flow {
        let mut flow = mini();
        let name = name_of(&flow);
        flow.templates
            .register_template_string(&name, broken)
            .unwrap();
        flow.prepared = crate::render::Prepared::new(&flow.templates);
        flow
    }

    fn node(flow: &Flow, id: &str, field: &str) -> String {
        format!("{}.{field}", flow.index_of(id).unwrap())
    }

    fn ctx() -> Ctx {
        Ctx::new(
            chrono::DateTime::parse_from_rfc3339("2027-04-01T00:00:00Z")
                .unwrap()
                .into(),
            RenderMode::Plain,
        )
    }

    /// Runs inputs and returns the effects of the last one, with the state
    /// before and after it.
    fn run(flow: &Flow, inputs: &[&str]) -> (SessionState, SessionState, Vec<Effect>) {
        let mut st = SessionState::default();
        step(flow, &mut st, Input::Start, &ctx());
        let (last, rest) = inputs.split_last().unwrap();
        for i in rest {
            step(flow, &mut st, Input::Text(i.to_string()), &ctx());
        }
        let before = st.clone();
        let effects = step(flow, &mut st, Input::Text(last.to_string()), &ctx());
        (before, st, effects)
    }

    fn assert_refused(
        before: &SessionState,
        after: &SessionState,
        effects: &[Effect],
        node: &str,
        template: &str,
    ) {
        assert_eq!(before, after, "the state must not advance");
        assert_eq!(effects.len(), 2, "{effects:?}");
        match &effects[0] {
            Effect::Say(s) => assert!(s.contains("不具合") && s.contains("保存"), "{s}"),
            e => panic!("{e:?}"),
        }
        match &effects[1] {
            Effect::Fault(f) => {
                assert_eq!((f.node.as_str(), f.template.as_str()), (node, template));
                assert!(!f.reason.is_empty());
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_failing_consent_text_refuses_the_step_that_would_show_it() {
        let flow = flow_with(
            |f| node(f, "consent", "text"),
            "{{bold route.primary}} に共有してよいですか？",
        );
        let (before, after, effects) = run(&flow, &["兵庫県", "販路を広げたい"]);
        assert_refused(&before, &after, &effects, "consent", "text");
    }

    #[test]
    fn a_failing_summary_refuses_the_consent_step_and_records_nothing() {
        let flow = flow_with(|_| "summary".into(), "会社: {{upper issue}}");
        let (before, after, effects) = run(&flow, &["兵庫県", "販路を広げたい", "はい"]);
        // The consent answer leads to the confirmation, which shows the
        // summary: neither the answer nor the consent is recorded.
        assert_refused(&before, &after, &effects, "confirm", "summary");
    }

    #[test]
    fn a_question_that_renders_empty_is_refused() {
        let flow = flow_with(|f| node(f, "issue", "text"), "{{default}}");
        let (before, after, effects) = run(&flow, &["兵庫県"]);
        assert_refused(&before, &after, &effects, "issue", "text");
        let flow = flow_with(
            |f| node(f, "issue", "text"),
            "{{#if issue}}お困りごとは？{{/if}}",
        );
        let (before, after, effects) = run(&flow, &["兵庫県"]);
        assert_refused(&before, &after, &effects, "issue", "text");
    }

    /// A restart empties the answers and the route before it fails at the
    /// first question: both come back as they were.
    #[test]
    fn a_restart_that_fails_puts_the_answers_and_route_back() {
        let good = mini();
        let broken = flow_with(|f| node(f, "prefecture", "text"), "{{default}}");
        let mut st = SessionState::default();
        step(&good, &mut st, Input::Start, &ctx());
        for i in ["兵庫県", "販路を広げたい"] {
            step(&good, &mut st, Input::Text(i.to_string()), &ctx());
        }
        assert_eq!(st.answers.len(), 2);
        assert!(st.route.is_some());
        let before = st.clone();
        let effects = step(&broken, &mut st, Input::Text("最初から".into()), &ctx());
        assert_refused(&before, &st, &effects, "prefecture", "text");
    }

    #[test]
    fn a_failing_headline_refuses_sending_the_case() {
        let flow = flow_with(|_| "headline".into(), "{{shout issue}}");
        let (before, after, effects) = run(&flow, &["兵庫県", "販路を広げたい", "はい", "送信"]);
        assert_refused(&before, &after, &effects, "confirm", "headline");
    }
}
