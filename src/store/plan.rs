//! The rows a batch of steps writes besides its session rows and answers:
//! re-asks, restarts, cases, consents, deliveries and audit entries,
//! gathered per table so that each store writes each kind with one
//! statement for the whole batch.
//!
//! Before, a step with any of these effects was written on its own inside
//! the batch's transaction, a statement per row (and a read of its session
//! for the owner's key). On SQLite every statement is a round trip to
//! sqlx's worker thread, on PostgreSQL one to the server, and every owner
//! of the batch waits for all of them: in the shipped consultation a step
//! in five or so asks again or ends with a case, so those round trips,
//! not the writing, set the batch's length.

use super::NewDelivery;
use crate::engine::{CaseDraft, ConsentRecord, Effect};

/// The rows of one batch, each naming its step by its index in the batch.
#[derive(Debug, Default)]
pub(super) struct EffectRows<'a> {
    /// A question asked again: step, question id, question index.
    pub reasks: Vec<(usize, &'a str, i64)>,
    /// A restart: step, and how many answers the step recorded after it
    /// (those are the session's last answers in the batch, since a session
    /// has at most one step in a batch that commits).
    pub restarts: Vec<(usize, i64)>,
    /// A case: step and draft, in step order. Their ids come back in this
    /// order (both stores assign increasing ids in insertion order).
    pub cases: Vec<(usize, &'a CaseDraft)>,
    /// A consent: step, the index in `cases` of the case it is the
    /// forwarding record of (`None` for a consent decision of its own),
    /// and the record; in step and effect order.
    pub consents: Vec<(usize, Option<usize>, &'a ConsentRecord)>,
    /// A delivery of a case (index in `cases`).
    pub deliveries: Vec<(usize, &'a NewDelivery)>,
}

impl<'a> EffectRows<'a> {
    /// Gathers the rows of `steps` (their effects and deliveries), in step
    /// and effect order, as [`super::Store::commit_step`] would write them
    /// one step at a time.
    pub fn gather(steps: impl IntoIterator<Item = (&'a [Effect], &'a [NewDelivery])>) -> Self {
        let mut rows = EffectRows::default();
        for (i, (effects, deliveries)) in steps.into_iter().enumerate() {
            let mut restart: Option<i64> = None;
            for e in effects {
                match e {
                    Effect::Record(_) | Effect::Unset { .. } => {
                        if let Some(n) = restart.as_mut() {
                            *n += 1;
                        }
                    }
                    // A second restart in one step starts the count again:
                    // only what follows the last one counts.
                    Effect::Restarted => restart = Some(0),
                    Effect::Reask { node, ix } => rows.reasks.push((i, node.as_str(), *ix as i64)),
                    Effect::Consent(c) => rows.consents.push((i, None, c)),
                    Effect::CaseReady(d) => {
                        let case = rows.cases.len();
                        rows.cases.push((i, d));
                        rows.consents.push((i, Some(case), &d.consent));
                        rows.deliveries.extend(deliveries.iter().map(|d| (case, d)));
                    }
                    _ => {}
                }
            }
            if let Some(n) = restart {
                rows.restarts.push((i, n));
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Recorded;
    use crate::routing::{HubRef, RouteDecision};

    fn consent(granted: bool) -> ConsentRecord {
        ConsentRecord {
            granted,
            hubs: vec![],
            items: vec![],
            wording: "w".into(),
        }
    }

    fn record(node: &str) -> Effect {
        Effect::Record(Recorded {
            node: node.into(),
            ix: 0,
            value: crate::answer::AnswerValue::Text("x".into()),
            raw: "x".into(),
            correction: false,
        })
    }

    #[test]
    fn rows_follow_steps_and_effects_in_order() {
        let draft = CaseDraft {
            headline: "h".into(),
            summary_plain: "p".into(),
            summary_markdown: "m".into(),
            route: RouteDecision {
                rule: "r".into(),
                reason: "because".into(),
                primary: HubRef {
                    id: "a".into(),
                    name: "A".into(),
                },
                copies: vec![],
                step: 3,
                passed_over: vec![],
                follow_up: None,
            },
            tags: vec![],
            consent: consent(true),
            step: 3,
        };
        let d = vec![
            NewDelivery {
                hub_id: "a".into(),
                transport: "local".into(),
                target: "t".into(),
            },
            NewDelivery {
                hub_id: "b".into(),
                transport: "local".into(),
                target: "t".into(),
            },
        ];
        let s0 = vec![
            Effect::Reask {
                node: "q1".into(),
                ix: 4,
            },
            record("q1"),
        ];
        let s1 = vec![record("q0"), Effect::Restarted, record("a"), record("b")];
        let s2 = vec![
            Effect::Consent(consent(false)),
            Effect::CaseReady(Box::new(draft)),
        ];
        let none: Vec<NewDelivery> = vec![];
        let rows = EffectRows::gather([
            (s0.as_slice(), none.as_slice()),
            (s1.as_slice(), d.as_slice()),
            (s2.as_slice(), d.as_slice()),
        ]);
        assert_eq!(rows.reasks, vec![(0, "q1", 4)]);
        assert_eq!(rows.restarts, vec![(1, 2)]);
        assert_eq!(rows.cases.len(), 1);
        assert_eq!(rows.cases[0].0, 2);
        // The consent decision first, then the case's forwarding record.
        let consents: Vec<_> = rows
            .consents
            .iter()
            .map(|(s, c, r)| (*s, *c, r.granted))
            .collect();
        assert_eq!(consents, vec![(2, None, false), (2, Some(0), true)]);
        // Deliveries only for a step with a case (step 1 has none).
        let hubs: Vec<_> = rows
            .deliveries
            .iter()
            .map(|(c, d)| (*c, d.hub_id.as_str()))
            .collect();
        assert_eq!(hubs, vec![(0, "a"), (0, "b")]);
    }
}
