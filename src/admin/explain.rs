//! `routing explain`: which rule routes a given set of answers, and why
//! each earlier rule did not.

use crate::engine::{facts, parse_answer, tags_for, SessionState};
use crate::routing::RouteDecision;
use crate::script::{Flow, NodeKind};
use chrono::NaiveDate;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Explanation {
    /// Answers as understood, or the reason one could not be read.
    pub answers: Vec<(String, Result<String, String>)>,
    pub tags: Vec<String>,
    /// Every rule in order: its id and `Ok(hubs)` or `Err(why not)`.
    pub rules: Vec<(String, Result<String, String>)>,
    pub decision: RouteDecision,
}

/// Reads answers typed as an owner would type them (`prefecture: ひょうご`,
/// `employees: 30名`, `people_part: yes`) and routes them.
pub fn explain(
    flow: &Flow,
    typed: &BTreeMap<String, String>,
    today: NaiveDate,
) -> Result<Explanation, String> {
    let mut st = SessionState::default();
    let mut answers = Vec::new();
    for (key, raw) in typed {
        let Some(ix) = flow.index_of(key) else {
            return Err(format!(
                "the script has no question `{key}`; use the ids from the script file"
            ));
        };
        let NodeKind::Ask(q) = &flow.node(ix).kind else {
            return Err(format!("`{key}` is not a question"));
        };
        // Option ids are accepted as well as what an owner would type.
        let parsed = parse_answer(flow, &q.ty, raw, true, today)
            .or_else(|_| parse_answer(flow, &q.ty, raw, false, today));
        match parsed {
            Ok(v) => {
                answers.push((key.clone(), Ok(crate::render::display_answer(flow, ix, &v))));
                st.answers.push((ix, v));
            }
            Err(e) => answers.push((key.clone(), Err(e))),
        }
    }
    st.tags = tags_for(flow, &st);
    let f = facts(&st);
    let r = &flow.routing;
    let rules = r
        .rules
        .iter()
        .map(|rule| {
            let res = r.try_rule(rule, &f, flow.lang).map(|d| {
                d.recipients()
                    .map(|h| h.id.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            (rule.id.clone(), res)
        })
        .collect();
    let decision = r.decide(&f, flow.lang);
    Ok(Explanation {
        answers,
        tags: st.tags.clone(),
        rules,
        decision,
    })
}

impl Explanation {
    pub fn render(&self) -> String {
        let mut s = String::from("answers:\n");
        for (k, v) in &self.answers {
            match v {
                Ok(shown) => s.push_str(&format!("  {k}: {shown}\n")),
                Err(e) => s.push_str(&format!("  {k}: not understood — {e}\n")),
            }
        }
        s.push_str(&format!(
            "tags: {}\n\nrules, in order:\n",
            if self.tags.is_empty() {
                "(none)".into()
            } else {
                self.tags.join(", ")
            }
        ));
        let mut decided = false;
        for (id, res) in &self.rules {
            match res {
                Ok(hubs) if !decided => {
                    decided = true;
                    s.push_str(&format!("  ✔ {id}: applies → {hubs}\n"));
                }
                Ok(hubs) => s.push_str(&format!(
                    "  · {id}: would apply ({hubs}), but an earlier rule won\n"
                )),
                Err(why) if !decided => s.push_str(&format!("  ✘ {id}: {why}\n")),
                Err(why) => s.push_str(&format!("  · {id}: {why}\n")),
            }
        }
        if !decided {
            s.push_str("  → no rule applies: fallback\n");
        }
        let d = &self.decision;
        let copies: Vec<&str> = d.copies.iter().map(|h| h.id.as_str()).collect();
        s.push_str(&format!(
            "\nrouted by `{}` to {} ({}){}\nstep: {}\nreason: {}\n",
            d.rule,
            d.primary.id,
            d.primary.name,
            if copies.is_empty() {
                String::new()
            } else {
                format!(", copies to {}", copies.join(", "))
            },
            d.step,
            d.reason
        ));
        s
    }
}
