//! Routing rules that can never route a case.
//!
//! Conditions range over a small world: choice and yes/no answers, numbers
//! compared with a few thresholds, 47 prefectures, a handful of tags. The
//! linter enumerates that world (or a fixed, seeded sample of it when it is
//! large), asks the real router which rule wins for each combination, and
//! reports rules that never win: either their condition never holds
//! together with a hub for the owner's prefecture ("never matches"), or an
//! earlier rule always takes the case first ("shadowed").

use crate::answer::AnswerValue;
use crate::domain::number::Quantity;
use crate::domain::prefecture::Prefecture;
use crate::routing::{Pick, Routing};
use crate::script::cond::{Cond, Facts, Test};
use crate::script::{AnswerType, Flow, NodeIx, NodeKind};
use std::collections::{BTreeMap, BTreeSet};

/// The most combinations tried; beyond it a seeded sample is used.
const MAX_WORLDS: usize = 30_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleProblem {
    /// The rule's condition never holds with a hub available.
    NeverMatches,
    /// The condition holds sometimes, but this earlier rule always wins.
    Shadowed { by: String },
}

struct World {
    answers: Vec<(NodeIx, AnswerValue)>,
    tags: BTreeSet<String>,
}

impl Facts for World {
    fn answer(&self, node: NodeIx) -> Option<&AnswerValue> {
        self.answers
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, v)| v)
    }
    fn has_tag(&self, tag: &str) -> bool {
        self.tags.contains(tag)
    }
}

fn collect(c: &Cond, nodes: &mut BTreeMap<NodeIx, Vec<f64>>, tags: &mut BTreeSet<String>) {
    match c {
        Cond::Tag(t) => {
            tags.insert(t.clone());
        }
        Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| collect(c, nodes, tags)),
        Cond::Not(c) => collect(c, nodes, tags),
        Cond::Size {
            industry,
            employees,
            capital,
            ..
        } => {
            // The law's limits are the thresholds that matter; every
            // industry option is tried anyway.
            nodes.entry(*industry).or_default();
            nodes
                .entry(*employees)
                .or_default()
                .extend([5.0, 20.0, 50.0, 100.0, 300.0]);
            nodes
                .entry(*capital)
                .or_default()
                .extend([50_000_000.0, 100_000_000.0, 300_000_000.0]);
        }
        Cond::Answer { node, test, .. } => {
            let th = nodes.entry(*node).or_default();
            match test {
                Test::Lt(n) | Test::Le(n) | Test::Gt(n) | Test::Ge(n) => th.push(*n),
                Test::Equals(s) => {
                    if let Ok(n) = s.parse::<f64>() {
                        th.push(n)
                    }
                }
                _ => {}
            }
        }
    }
}

fn candidates(flow: &Flow, node: NodeIx, thresholds: &[f64]) -> Vec<Option<AnswerValue>> {
    let mut out = vec![None];
    let NodeKind::Ask(q) = &flow.node(node).kind else {
        return out;
    };
    match &q.ty {
        AnswerType::Choice { options } => out.extend(
            options
                .iter()
                .map(|o| Some(AnswerValue::Choice(o.id.clone()))),
        ),
        AnswerType::Multi { options, .. } => {
            out.extend(
                options
                    .iter()
                    .map(|o| Some(AnswerValue::Multi(vec![o.id.clone()]))),
            );
            out.push(Some(AnswerValue::Multi(
                options.iter().map(|o| o.id.clone()).collect(),
            )));
        }
        AnswerType::YesNo | AnswerType::Consent { .. } => out.extend([
            Some(AnswerValue::Bool(true)),
            Some(AnswerValue::Bool(false)),
        ]),
        AnswerType::Number { unit, .. } => {
            let mut vals: Vec<f64> = vec![0.0];
            for t in thresholds {
                vals.extend([t - 1.0, *t, t + 1.0]);
            }
            vals.sort_by(|a, b| a.total_cmp(b));
            vals.dedup();
            out.extend(vals.into_iter().filter(|v| *v >= 0.0).map(|v| {
                Some(AnswerValue::Number(Quantity {
                    value: v,
                    unit: unit.as_deref().map(Box::from),
                    approx: false,
                    detail: None,
                }))
            }));
        }
        AnswerType::Prefecture => {
            out.extend(
                Prefecture::ALL
                    .iter()
                    .map(|p| Some(AnswerValue::Prefecture((*p).into()))),
            );
            // One value per municipality a hub covers by area, so rules on
            // areas are checked too.
            let mut codes: Vec<u32> = flow
                .routing
                .hubs
                .iter()
                .flat_map(|h| h.municipalities.iter().copied())
                .collect();
            codes.sort_unstable();
            codes.dedup();
            out.extend(
                codes
                    .into_iter()
                    .filter_map(crate::domain::municipality::Municipality::by_code)
                    .map(|m| Some(AnswerValue::Prefecture(m.into()))),
            );
        }
        _ => out.push(Some(AnswerValue::Text("x".into()))),
    }
    out
}

/// Finds rules of the flow's routing that can never route a case.
pub fn lint_routing(flow: &Flow) -> Vec<(usize, RuleProblem)> {
    let routing: &Routing = &flow.routing;
    let mut nodes: BTreeMap<NodeIx, Vec<f64>> = BTreeMap::new();
    let mut tags = BTreeSet::new();
    for r in &routing.rules {
        if let Some(c) = &r.when {
            collect(c, &mut nodes, &mut tags);
        }
    }
    let needs_prefecture = routing.rules.iter().any(|r| {
        matches!(r.primary, Pick::Kind(_)) || r.copies.iter().any(|c| matches!(c, Pick::Kind(_)))
    });
    if let (true, Some(p)) = (needs_prefecture, routing.prefecture_node) {
        nodes.entry(p).or_default();
    }
    let dims: Vec<(NodeIx, Vec<Option<AnswerValue>>)> = nodes
        .iter()
        .map(|(n, th)| (*n, candidates(flow, *n, th)))
        .collect();
    let tags: Vec<String> = tags.into_iter().collect();
    let mut sizes: Vec<usize> = dims.iter().map(|(_, c)| c.len()).collect();
    sizes.extend(std::iter::repeat_n(2, tags.len()));
    let total = sizes
        .iter()
        .try_fold(1usize, |acc, s| acc.checked_mul(*s))
        .unwrap_or(usize::MAX);
    let n_rules = routing.rules.len();
    let mut wins = vec![0usize; n_rules];
    let mut holds = vec![0usize; n_rules];
    let mut taken_by: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); n_rules];
    let index_of = |id: &str| routing.rules.iter().position(|r| r.id == id);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let count = total.min(MAX_WORLDS);
    for k in 0..count {
        // Mixed-radix digits of k, or of a pseudo-random number when sampling.
        let mut x = if total <= MAX_WORLDS {
            k
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % total as u64) as usize
        };
        let mut digit = |size: usize| {
            let d = x % size;
            x /= size;
            d
        };
        let mut world = World {
            answers: Vec::new(),
            tags: BTreeSet::new(),
        };
        for (n, cands) in &dims {
            if let Some(v) = &cands[digit(cands.len())] {
                world.answers.push((*n, v.clone()));
            }
        }
        for t in &tags {
            if digit(2) == 1 {
                world.tags.insert(t.clone());
            }
        }
        let decision = routing.decide(&world, flow.lang);
        let winner = index_of(&decision.rule);
        if let Some(w) = winner {
            wins[w] += 1;
        }
        for (i, r) in routing.rules.iter().enumerate() {
            if Some(i) != winner && routing.try_rule(r, &world, flow.lang).is_ok() {
                holds[i] += 1;
                if let Some(w) = winner {
                    *taken_by[i].entry(w).or_default() += 1;
                }
            }
        }
    }
    (0..n_rules)
        .filter(|i| wins[*i] == 0)
        .map(|i| {
            if holds[i] == 0 {
                (i, RuleProblem::NeverMatches)
            } else {
                let by = taken_by[i]
                    .iter()
                    .max_by_key(|(_, c)| **c)
                    .map(|(w, _)| routing.rules[*w].id.clone())
                    .unwrap_or_default();
                (i, RuleProblem::Shadowed { by })
            }
        })
        .collect()
}
