//! Rendering of script templates: the context a template sees, and escaping
//! of owner-supplied values for the place the text is shown.
//!
//! Answers are stored exactly as typed. Escaping happens here, once, when a
//! value is placed into a template context, so an answer containing `{{`,
//! markdown or `@everyone` is shown as text and never interpreted: handlebars
//! does not re-evaluate values, and the markdown escaper neutralises
//! formatting and mentions for Discord.

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
    /// Discord / Slack markdown: formatting characters and mentions escaped.
    Markdown,
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

/// Escapes an owner-supplied value for the given mode.
pub fn escape(mode: RenderMode, s: &str) -> String {
    match mode {
        RenderMode::Plain => s.to_string(),
        RenderMode::Markdown => escape_markdown(s),
    }
}

/// Escapes Discord markdown and defuses mentions. `allowed_mentions` on
/// every message is the real guard against pings; this keeps the text
/// looking like what the owner typed.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut at_line_start = true;
    for c in s.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '-' | '+' if at_line_start => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                // A zero-width space after '@' stops @everyone / @here.
                out.push('@');
                out.push('\u{200B}');
            }
            _ => out.push(c),
        }
        at_line_start = c == '\n' || (at_line_start && c == ' ');
    }
    out
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
        AnswerValue::Prefecture(p) => match lang {
            Lang::Ja => p.name_ja().to_string(),
            Lang::En => p.name_en().to_string(),
        },
        AnswerValue::Email(e) => e.as_str().to_string(),
        AnswerValue::Phone(p) => p.display(),
        AnswerValue::Date(d) => d.to_string(),
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
    let mut list = Vec::new();
    for (ix, v) in input.answers {
        let node = flow.node(*ix);
        let shown = escape(mode, &display_answer(flow, *ix, v));
        if !v.is_skipped() {
            m.insert(node.id.clone(), Value::String(shown.clone()));
        }
        list.push(json!({ "id": node.id, "label": escape(mode, &node.label), "value": shown }));
    }
    // Order the list as the script orders its questions, whatever the
    // order of answering (corrections move answers to the end).
    list.sort_by_key(|v| {
        flow.index_of(v["id"].as_str().unwrap_or_default())
            .unwrap_or(u16::MAX)
    });
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

/// Renders one of the flow's templates. Rendering a compiled template with
/// string values cannot fail in practice; if it ever does, the owner gets
/// the template's raw text rather than nothing.
pub fn render(flow: &Flow, name: &str, ctx: &Value) -> String {
    match flow.templates.render(name, ctx) {
        Ok(s) => s.trim_end().to_string(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed to render");
            String::new()
        }
    }
}

/// True when the question's answers are free text that tag rules read.
pub fn is_text(flow: &Flow, ix: NodeIx) -> bool {
    matches!(&flow.node(ix).kind, crate::script::NodeKind::Ask(q) if matches!(q.ty, AnswerType::Text { .. }))
}
