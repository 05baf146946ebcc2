//! A script as a flow chart: questions, branches, and the hubs a case can
//! end at, in Mermaid (renders on GitHub and in most wikis) and Graphviz DOT
//! (`dot -Tsvg` turns it into a picture).

use crate::routing::{Pick, Routing};
use crate::script::{AnswerType, EndStatus, Flow, Next, NodeKind};

/// One edge of the chart.
struct Edge {
    from: String,
    to: String,
    label: Option<String>,
}

enum Shape {
    Say,
    Ask,
    Route,
    Confirm,
    End,
    Hub,
}

struct Vertex {
    id: String,
    label: String,
    shape: Shape,
}

fn chart(flow: &Flow) -> (Vec<Vertex>, Vec<Edge>) {
    let mut vs = Vec::new();
    let mut es = Vec::new();
    for n in &flow.nodes {
        let (shape, label) = match &n.kind {
            NodeKind::Say => (Shape::Say, format!("{}\n(message)", n.id)),
            NodeKind::Ask(q) => {
                let extra = match &q.ty {
                    AnswerType::Choice { options } | AnswerType::Multi { options, .. } => {
                        format!(", {} options", options.len())
                    }
                    _ => String::new(),
                };
                let opt = if q.optional { ", optional" } else { "" };
                (
                    Shape::Ask,
                    format!("{}\n{} ({}{extra}{opt})", n.id, n.label, q.ty.name()),
                )
            }
            NodeKind::Route => (Shape::Route, format!("{}\nroute", n.id)),
            NodeKind::Confirm => (Shape::Confirm, format!("{}\nconfirm", n.id)),
            NodeKind::End(s) => (
                Shape::End,
                format!(
                    "{}\nend: {}",
                    n.id,
                    match s {
                        EndStatus::Completed => "completed",
                        EndStatus::Declined => "declined",
                        EndStatus::Cancelled => "cancelled",
                        EndStatus::Handoff => "handoff",
                    }
                ),
            ),
        };
        vs.push(Vertex {
            id: n.id.clone(),
            label,
            shape,
        });
        match &n.next {
            Next::Stop => {}
            Next::Goto(t) => es.push(Edge {
                from: n.id.clone(),
                to: flow.node(*t).id.clone(),
                label: None,
            }),
            Next::Branch { arms, default } => {
                for (c, t) in arms {
                    es.push(Edge {
                        from: n.id.clone(),
                        to: flow.node(*t).id.clone(),
                        label: Some(c.describe()),
                    });
                }
                es.push(Edge {
                    from: n.id.clone(),
                    to: flow.node(*default).id.clone(),
                    label: Some("otherwise".into()),
                });
            }
        }
        if let NodeKind::Route = n.kind {
            route_edges(&flow.routing, &n.id, &mut es);
        }
    }
    if flow.nodes.iter().any(|n| matches!(n.kind, NodeKind::Route)) {
        for h in &flow.routing.hubs {
            vs.push(Vertex {
                id: hub_vertex(h.id.as_str()),
                label: format!("{}\n{}", h.name, h.kind.name()),
                shape: Shape::Hub,
            });
        }
    }
    (vs, es)
}

fn hub_vertex(id: &str) -> String {
    format!("hub_{}", id.replace('-', "_"))
}

/// Which hubs each rule may send a case to (dashed edges in the chart).
fn route_edges(r: &Routing, from: &str, es: &mut Vec<Edge>) {
    for rule in r.rules.iter().chain(std::iter::once(&r.fallback)) {
        let hubs: Vec<&str> = match &rule.primary {
            Pick::Hub(i) => vec![r.hubs[*i].id.as_str()],
            Pick::Kind(k) => r
                .hubs
                .iter()
                .filter(|h| h.kind == *k)
                .map(|h| h.id.as_str())
                .collect(),
        };
        for h in hubs {
            es.push(Edge {
                from: from.to_string(),
                to: hub_vertex(h),
                label: Some(format!("rule {}", rule.id)),
            });
        }
    }
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', "<br/>")
}

pub fn mermaid(flow: &Flow) -> String {
    let (vs, es) = chart(flow);
    let mut out = format!(
        "%% {} ({}) version {}\nflowchart TD\n",
        flow.title,
        flow.lang,
        flow.short_version()
    );
    for v in &vs {
        let l = mermaid_text(&v.label);
        let shape = match v.shape {
            Shape::Say => format!("[\"{l}\"]"),
            Shape::Ask => format!("(\"{l}\")"),
            Shape::Route => format!("{{{{\"{l}\"}}}}"),
            Shape::Confirm => format!("[[\"{l}\"]]"),
            Shape::End => format!("([\"{l}\"])"),
            Shape::Hub => format!("[(\"{l}\")]"),
        };
        out.push_str(&format!("    {}{shape}\n", v.id));
    }
    for e in &es {
        let arrow = if e.to.starts_with("hub_") {
            "-.->"
        } else {
            "-->"
        };
        match &e.label {
            Some(l) => out.push_str(&format!(
                "    {} {arrow}|\"{}\"| {}\n",
                e.from,
                mermaid_text(l),
                e.to
            )),
            None => out.push_str(&format!("    {} {arrow} {}\n", e.from, e.to)),
        }
    }
    out
}

fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn dot(flow: &Flow) -> String {
    let (vs, es) = chart(flow);
    let mut out = format!(
        "// {} ({}) version {}\ndigraph \"{}\" {{\n    rankdir=TB;\n    node [fontname=\"Noto Sans CJK JP, sans-serif\", fontsize=11];\n    edge [fontname=\"Noto Sans CJK JP, sans-serif\", fontsize=9];\n",
        flow.title,
        flow.lang,
        flow.short_version(),
        dot_text(&flow.script_id)
    );
    for v in &vs {
        let shape = match v.shape {
            Shape::Say => "shape=note",
            Shape::Ask => "shape=box, style=rounded",
            Shape::Route => "shape=hexagon",
            Shape::Confirm => "shape=box, peripheries=2",
            Shape::End => "shape=ellipse, style=bold",
            Shape::Hub => "shape=cylinder",
        };
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\", {shape}];\n",
            dot_text(&v.id),
            dot_text(&v.label)
        ));
    }
    for e in &es {
        let style = if e.to.starts_with("hub_") {
            ", style=dashed"
        } else {
            ""
        };
        let label = e
            .label
            .as_ref()
            .map(|l| format!("label=\"{}\"", dot_text(l)))
            .unwrap_or_default();
        // `style` starts with ", "; without a label it must not.
        let style = if label.is_empty() {
            style.trim_start_matches(", ")
        } else {
            style
        };
        out.push_str(&format!(
            "    \"{}\" -> \"{}\" [{label}{style}];\n",
            dot_text(&e.from),
            dot_text(&e.to)
        ));
    }
    out.push_str("}\n");
    out
}
