//! Checks of script templates that go beyond "does it parse": the helpers a
//! template calls and with how many arguments, where a syntax error really
//! is (the opening tag of a block that is never closed, not the end of the
//! template), and a render of every template against a sample context.
//!
//! Handlebars itself accepts `{{upper company_name}}` or `{{default
//! capital}}` when a template is compiled and only fails when it is
//! rendered, which at run time meant an empty question, consent wording or
//! case sheet. Everything handlebars would refuse at render time is refused
//! here, when the administrator runs `dialogs check`.

use super::{Flow, GiveUp, Next, NodeKind};
use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use std::collections::HashSet;

/// Helpers a template may call, with the number of positional arguments
/// each takes (least, most), and whether it is used as a block
/// (`{{#if x}}…{{/if}}`) rather than inline.
pub const HELPERS: &[(&str, usize, usize, Usage)] = &[
    ("if", 1, 1, Usage::Block),
    ("unless", 1, 1, Usage::Block),
    ("each", 1, 1, Usage::Block),
    ("with", 1, 1, Usage::Block),
    ("lookup", 2, 2, Usage::Either),
    ("eq", 2, 2, Usage::Either),
    ("ne", 2, 2, Usage::Either),
    ("gt", 2, 2, Usage::Either),
    ("gte", 2, 2, Usage::Either),
    ("lt", 2, 2, Usage::Either),
    ("lte", 2, 2, Usage::Either),
    ("and", 2, 2, Usage::Either),
    ("or", 2, 2, Usage::Either),
    ("not", 1, 1, Usage::Either),
    ("len", 1, 1, Usage::Inline),
    ("default", 2, 2, Usage::Inline),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Block,
    Inline,
    Either,
}

/// The names of the helpers, for messages.
pub fn helper_names() -> String {
    HELPERS.iter().map(|h| h.0).collect::<Vec<_>>().join(", ")
}

/// A problem found in a compiled template, at a 1-based (line, column)
/// inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: (usize, usize),
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// A helper that does not exist (`{{upper x}}`, `{{bold route.primary}}`).
    UnknownHelper(String),
    /// A known helper with the wrong number of arguments.
    Arity {
        helper: &'static str,
        want: (usize, usize),
        got: usize,
    },
    /// A block helper used inline (`{{if x}}`) or an inline one as a block.
    Usage { helper: &'static str, block: bool },
    /// `{{default x y}}` whose fallback is not quoted text.
    DefaultFallback,
    /// Partials, decorators and `key=value` arguments, which scripts have
    /// no use for and which the bot does not provide.
    Unsupported(&'static str),
}

/// Every helper call in the template that would fail when rendered.
pub fn check(t: &Template) -> Vec<Problem> {
    let mut out = Vec::new();
    walk(t, &mut out);
    out
}

fn walk(t: &Template, out: &mut Vec<Problem>) {
    for (i, el) in t.elements.iter().enumerate() {
        let pos = t.mapping.get(i).map(|m| (m.0, m.1)).unwrap_or((1, 1));
        match el {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                helper(h, false, pos, out)
            }
            TemplateElement::HelperBlock(h) => {
                helper(h, true, pos, out);
                if let Some(t) = &h.template {
                    walk(t, out);
                }
                if let Some(t) = &h.inverse {
                    walk(t, out);
                }
            }
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                out.push(Problem {
                    pos,
                    kind: ProblemKind::Unsupported("partial"),
                })
            }
            TemplateElement::DecoratorExpression(_) | TemplateElement::DecoratorBlock(_) => out
                .push(Problem {
                    pos,
                    kind: ProblemKind::Unsupported("decorator"),
                }),
            _ => {}
        }
    }
}

fn helper(h: &HelperTemplate, block: bool, pos: (usize, usize), out: &mut Vec<Problem>) {
    // Arguments may themselves be helper calls: `{{#if (eq a b)}}`.
    for p in h.params.iter().chain(h.hash.values()) {
        if let Parameter::Subexpression(s) = p {
            if let TemplateElement::Expression(inner) = s.element.as_ref() {
                helper(inner, false, pos, out);
            }
        }
    }
    let name = match &h.name {
        Parameter::Name(n) => n.as_str(),
        Parameter::Path(p) => match p {
            handlebars::Path::Relative((_, raw)) => raw.as_str(),
            handlebars::Path::Local(_) => return,
        },
        _ => return,
    };
    let called = !h.params.is_empty() || !h.hash.is_empty() || block;
    if !called {
        // A plain variable; the variable checks look at it.
        return;
    }
    if !h.hash.is_empty() {
        out.push(Problem {
            pos,
            kind: ProblemKind::Unsupported("hash"),
        });
    }
    let Some(&(known, min, max, usage)) = HELPERS.iter().find(|x| x.0 == name) else {
        out.push(Problem {
            pos,
            kind: ProblemKind::UnknownHelper(name.to_string()),
        });
        return;
    };
    let got = h.params.len();
    if got < min || got > max {
        out.push(Problem {
            pos,
            kind: ProblemKind::Arity {
                helper: known,
                want: (min, max),
                got,
            },
        });
    }
    match (usage, block) {
        (Usage::Block, false) | (Usage::Inline, true) => out.push(Problem {
            pos,
            kind: ProblemKind::Usage {
                helper: known,
                block,
            },
        }),
        _ => {}
    }
    if known == "default"
        && got == 2
        && !matches!(&h.params[1], Parameter::Literal(v) if v.is_string())
    {
        out.push(Problem {
            pos,
            kind: ProblemKind::DefaultFallback,
        });
    }
}

/// What is wrong with a template that does not parse, found by reading its
/// tags; positions are 1-based (line, column) inside the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxProblem {
    /// `{{` without a closing `}}`.
    UnclosedTag { at: (usize, usize) },
    /// `{{#name}}` never closed with `{{/name}}`; `at` is the opening tag.
    UnclosedBlock { name: String, at: (usize, usize) },
    /// `{{/name}}` with no block open.
    StrayClose { name: String, at: (usize, usize) },
    /// `{{/close}}` while `{{#open}}` (opened at `open_at`) is the block
    /// still open.
    Mismatch {
        open: String,
        open_at: (usize, usize),
        close: String,
        at: (usize, usize),
    },
}

/// Finds the tag a template's syntax error is about. Handlebars reports an
/// unclosed block at the end of the template, which is not where the
/// administrator has to look; this reads the tags in order and points at
/// the opening tag. Returns `None` when the tags balance (the error is
/// inside one tag, and handlebars' own position is right).
pub fn scan_blocks(s: &str) -> Option<SyntaxProblem> {
    let chars: Vec<char> = s.chars().collect();
    // (line, col) of every char index.
    let mut pos = Vec::with_capacity(chars.len() + 1);
    let (mut line, mut col) = (1usize, 1usize);
    for c in &chars {
        pos.push((line, col));
        if *c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    pos.push((line, col));
    let find = |from: usize, pat: &str| -> Option<usize> {
        let p: Vec<char> = pat.chars().collect();
        (from..chars.len()).find(|&i| chars[i..].starts_with(&p))
    };
    let mut stack: Vec<(String, (usize, usize))> = Vec::new();
    let mut i = 0;
    while let Some(start) = find(i, "{{") {
        // `\{{` is literal text in handlebars.
        if start > 0 && chars[start - 1] == '\\' {
            i = start + 2;
            continue;
        }
        let at = pos[start];
        let rest: String = chars[start + 2..].iter().take(3).collect();
        let (close_pat, inner_from) = if rest.starts_with("!--") {
            ("--}}", start + 5)
        } else if rest.starts_with('{') {
            ("}}}", start + 3)
        } else {
            ("}}", start + 2)
        };
        let Some(end) = find(inner_from, close_pat) else {
            return Some(SyntaxProblem::UnclosedTag { at });
        };
        i = end + close_pat.len();
        let inner: String = chars[inner_from..end].iter().collect();
        let inner = inner.trim_start_matches('~').trim_end_matches('~').trim();
        if inner.starts_with('!') {
            continue;
        }
        let word = |s: &str| -> String {
            s.trim_start_matches(['>', '*'])
                .trim()
                .split(|c: char| c.is_whitespace() || c == '}' || c == '(')
                .next()
                .unwrap_or("")
                .to_string()
        };
        if let Some(open) = inner.strip_prefix('#') {
            stack.push((word(open), at));
        } else if let Some(open) = inner.strip_prefix('^') {
            // `{{^}}` is `else`; `{{^name}}` opens an inverted block.
            let name = word(open);
            if !name.is_empty() {
                stack.push((name, at));
            }
        } else if let Some(close) = inner.strip_prefix('/') {
            let close = word(close);
            match stack.pop() {
                None => return Some(SyntaxProblem::StrayClose { name: close, at }),
                Some((open, open_at)) if open != close => {
                    return Some(SyntaxProblem::Mismatch {
                        open,
                        open_at,
                        close,
                        at,
                    })
                }
                Some(_) => {}
            }
        }
    }
    stack
        .pop()
        .map(|(name, at)| SyntaxProblem::UnclosedBlock { name, at })
}

/// A variable a template shows, where, and the variables whose
/// `{{#if}}` blocks it is inside.
pub type Shown = (String, (usize, usize), Vec<String>);

/// Variables a template shows as they are, with the `{{#if x}}` blocks
/// (or `else` of `{{#unless x}}`) around them. Not listed: a variable
/// inside its own `{{#if}}`, `{{default x …}}` and helpers' arguments (a
/// missing value there is simply false or the fallback). `#each` and
/// `#with` bodies read their item, not the context, and are left out.
pub fn unguarded_vars(
    els: &[TemplateElement],
    mapping: &[handlebars::template::TemplateMapping],
    guards: &mut Vec<String>,
    out: &mut Vec<Shown>,
) {
    for (i, el) in els.iter().enumerate() {
        let pos = mapping.get(i).map(|m| (m.0, m.1)).unwrap_or((1, 1));
        match el {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h)
                if h.params.is_empty() && h.hash.is_empty() =>
            {
                if let Some(v) = first_name(&h.name) {
                    if !guards.contains(&v) {
                        out.push((v, pos, guards.clone()));
                    }
                }
            }
            TemplateElement::HelperBlock(h) => {
                let helper = match &h.name {
                    Parameter::Name(n) => n.as_str(),
                    _ => "",
                };
                let subject = h.params.first().and_then(first_name);
                let body_guard = (helper == "if").then(|| subject.clone()).flatten();
                let else_guard = (helper == "unless").then(|| subject.clone()).flatten();
                let scoped = helper == "each" || helper == "with";
                if let (Some(t), false) = (&h.template, scoped) {
                    let n = guards.len();
                    guards.extend(body_guard);
                    unguarded_vars(&t.elements, &t.mapping, guards, out);
                    guards.truncate(n);
                }
                if let Some(t) = &h.inverse {
                    let n = guards.len();
                    guards.extend(else_guard);
                    unguarded_vars(&t.elements, &t.mapping, guards, out);
                    guards.truncate(n);
                }
            }
            _ => {}
        }
    }
}

/// The first name of a plain path (`route` for `route.primary`).
fn first_name(p: &Parameter) -> Option<String> {
    let raw = match p {
        Parameter::Name(n) => n.as_str(),
        Parameter::Path(handlebars::Path::Relative((_, raw))) => raw.as_str(),
        _ => return None,
    };
    let first = raw
        .trim_start_matches("./")
        .split(['.', '/', '['])
        .next()
        .unwrap_or("");
    (!first.is_empty() && !first.starts_with('@') && first != "this").then(|| first.to_string())
}

/// A context shaped like [`crate::render::context`]'s, with sample text in
/// every place: every question answered, a route chosen and every tag set
/// when `full`, nothing answered otherwise. Every value a template can
/// read is text (answers are shown as the owner reads them), so one sample
/// string per answer exercises the same paths as real answers.
pub fn sample_context(flow: &Flow, full: bool) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let mut m = Map::new();
    let mut answers = Vec::new();
    if full {
        for (_, n, q) in flow.questions() {
            let v = format!("sample {} ({})", n.id, q.ty.name());
            m.insert(n.id.clone(), Value::String(v.clone()));
            answers.push(json!({ "id": n.id, "label": n.label, "value": v }));
        }
        m.insert(
            "route".into(),
            json!({ "primary": "hub", "copies": "hub2", "hubs": "hub、hub2", "rule": "rule", "reason": "reason", "follow_up": "hub3" }),
        );
    }
    m.insert("answers".into(), Value::Array(answers));
    m.insert(
        "tags".into(),
        Value::String(if full { "tag".into() } else { String::new() }),
    );
    m.insert(
        "has_tag".into(),
        Value::Object(if full {
            flow.tags
                .iter()
                .map(|t| (t.name.clone(), Value::Bool(true)))
                .collect()
        } else {
            Map::new()
        }),
    );
    m.insert("title".into(), Value::String(flow.title.clone()));
    m.insert("today".into(), Value::String("2027年4月1日".into()));
    Value::Object(m)
}

/// For every node, the question ids (and `route`) that hold a value on
/// every path from the start to that node; `None` for a node no path
/// reaches. A question gives a value when it is left, unless the owner
/// may skip it (`optional`, or `on_give_up: skip`).
pub fn answered_on_every_path(flow: &Flow) -> Vec<Option<HashSet<String>>> {
    answered_from(flow, flow.start as usize, HashSet::new())
}

/// Like [`answered_on_every_path`], for the paths that leave `from` with
/// `init` given (a node's own answer included): what a `{{#if x}}` block
/// can count on, starting from `x`.
pub fn answered_from(
    flow: &Flow,
    from: usize,
    init: HashSet<String>,
) -> Vec<Option<HashSet<String>>> {
    let n = flow.nodes.len();
    let succ = |ix: usize| -> Vec<usize> {
        match &flow.nodes[ix].next {
            Next::Stop => vec![],
            Next::Goto(t) => vec![*t as usize],
            Next::Branch { arms, default } => arms
                .iter()
                .map(|(_, t)| *t as usize)
                .chain([*default as usize])
                .collect(),
        }
    };
    let gives = |ix: usize| -> Option<String> {
        let node = &flow.nodes[ix];
        match &node.kind {
            NodeKind::Ask(q) if !q.optional && q.on_give_up != GiveUp::Skip => {
                Some(node.id.clone())
            }
            NodeKind::Route => Some("route".into()),
            _ => None,
        }
    };
    let mut given: Vec<Option<HashSet<String>>> = vec![None; n];
    if from >= n {
        return given;
    }
    given[from] = Some(init.clone());
    let mut work = vec![from];
    while let Some(i) = work.pop() {
        let mut out = given[i].clone().unwrap_or_default();
        out.extend(gives(i));
        if i == from {
            out.extend(init.iter().cloned());
        }
        for s in succ(i) {
            let next = match &given[s] {
                None => out.clone(),
                Some(have) => have.intersection(&out).cloned().collect(),
            };
            if given[s].as_ref() != Some(&next) {
                given[s] = Some(next);
                work.push(s);
            }
        }
    }
    // The start node may be re-entered ("最初から") with nothing answered,
    // which the empty set at the start already says.
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(s: &str) -> Vec<ProblemKind> {
        check(&Template::compile(s).unwrap())
            .into_iter()
            .map(|p| p.kind)
            .collect()
    }

    #[test]
    fn unknown_helpers_and_wrong_arity_are_found() {
        assert_eq!(
            problems("{{bold route.primary}} に共有"),
            vec![ProblemKind::UnknownHelper("bold".into())]
        );
        assert_eq!(
            problems("会社名: {{upper company_name}}"),
            vec![ProblemKind::UnknownHelper("upper".into())]
        );
        assert_eq!(
            problems("{{default capital}}"),
            vec![ProblemKind::Arity {
                helper: "default",
                want: (2, 2),
                got: 1
            }]
        );
        assert_eq!(
            problems("{{#if (shout a)}}x{{/if}}"),
            vec![ProblemKind::UnknownHelper("shout".into())]
        );
        assert_eq!(
            problems("{{default capital 5}}"),
            vec![ProblemKind::DefaultFallback]
        );
        assert_eq!(
            problems("{{if a}}"),
            vec![ProblemKind::Usage {
                helper: "if",
                block: false
            }]
        );
        assert!(problems(
            "{{company_name}} {{route.primary}} {{default capital \"（未回答）\"}} {{#if has_tag.sales}}a{{else}}b{{/if}} {{#each answers}}{{label}}{{/each}}"
        )
        .is_empty());
    }

    #[test]
    fn an_unclosed_block_is_found_at_its_opening_tag() {
        assert_eq!(
            scan_blocks("a\n  {{#if x}}\nb\n"),
            Some(SyntaxProblem::UnclosedBlock {
                name: "if".into(),
                at: (2, 3)
            })
        );
        assert_eq!(
            scan_blocks("{{#if a}}{{#each b}}{{/if}}"),
            Some(SyntaxProblem::Mismatch {
                open: "each".into(),
                open_at: (1, 10),
                close: "if".into(),
                at: (1, 21)
            })
        );
        assert_eq!(
            scan_blocks("x {{/if}}"),
            Some(SyntaxProblem::StrayClose {
                name: "if".into(),
                at: (1, 3)
            })
        );
        assert_eq!(
            scan_blocks("ab {{name"),
            Some(SyntaxProblem::UnclosedTag { at: (1, 4) })
        );
        assert_eq!(scan_blocks("\\{{#if}} {{!-- {{#if --}}"), None);
        assert_eq!(scan_blocks("{{#if a}}x{{^}}y{{/if}}"), None);
    }

    /// The checks never panic, whatever the template text: random texts
    /// made of the characters that matter to tags, run through the tag
    /// reader, and, when handlebars compiles them, through the helper and
    /// variable checks. (The "input" engineer fuzzes the whole compiler.)
    #[test]
    fn the_checks_do_not_panic_on_any_text() {
        let alphabet: Vec<char> = "{{}}#/^!-~\\\"' a.(\n\tい".chars().collect();
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let mut s = String::new();
            let mut x = seed;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            let _ = scan_blocks(&s);
            if let Ok(t) = Template::compile(&s) {
                let _ = check(&t);
                let mut out = Vec::new();
                unguarded_vars(&t.elements, &t.mapping, &mut Vec::new(), &mut out);
            }
        }
    }
}
