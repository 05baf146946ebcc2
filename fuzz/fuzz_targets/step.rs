//! The engine's `step` against the shipped scripts (`dialogs/`), driven by
//! arbitrary inputs: lines of text, picks, commands, resumes, in any order.
//! The engine must never panic, and the state it leaves must be one the
//! store can hold: the answer log it emitted replays to the same answers
//! (invariant 6 of src/lib.rs).
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use madoguchi::engine::{step, Ctx, Effect, Input, SessionState};
use madoguchi::render::RenderMode;
use madoguchi::script::{compile_flow, Command, Flow, Sources};
use std::sync::OnceLock;

fn flows() -> &'static [Flow; 2] {
    static FLOWS: OnceLock<[Flow; 2]> = OnceLock::new();
    FLOWS.get_or_init(|| {
        let routing = include_str!("../../dialogs/routing.yaml");
        let one = |name: &str, text: &str| {
            let (flow, diags) = compile_flow(Sources {
                script_name: name.into(),
                script_text: text.into(),
                routing_name: "routing.yaml".into(),
                routing_text: routing.into(),
            });
            flow.unwrap_or_else(|| panic!("shipped script {name} does not compile: {diags:?}"))
        };
        [
            one(
                "first_contact.ja.yaml",
                include_str!("../../dialogs/first_contact.ja.yaml"),
            ),
            one(
                "first_contact.en.yaml",
                include_str!("../../dialogs/first_contact.en.yaml"),
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let flow = &flows()[(head & 1) as usize];
    let mode = if head & 2 == 0 {
        RenderMode::Plain
    } else {
        RenderMode::Markdown
    };
    let ctx = Ctx::new(Utc.with_ymd_and_hms(2026, 11, 23, 1, 2, 3).unwrap(), mode);
    let mut st = SessionState::default();
    let mut log = Vec::new();
    let mut inputs = vec![Input::Start];
    // One input per line; a line's first byte may turn it into another kind
    // of input, so the fuzzer reaches buttons and commands as well as text.
    for line in rest.split(|b| *b == b'\n').take(200) {
        let text = String::from_utf8_lossy(line.get(1..).unwrap_or_default()).into_owned();
        inputs.push(match line.first() {
            Some(0x01) => Input::Resume,
            Some(0x02) => Input::Command(Command::ALL[text.len() % Command::ALL.len()]),
            Some(0x03) => {
                let (node, value) = text.split_once(' ').unwrap_or((&text, ""));
                Input::Pick {
                    node: node.to_string(),
                    value: value.to_string(),
                }
            }
            Some(0x04) => {
                // A pick on the question being asked, so the value is what
                // gets fuzzed rather than the node name.
                let node = flow.node(st.node).id.clone();
                Input::Pick { node, value: text }
            }
            Some(0x05) => {
                // Text typed under a question that may not be the current
                // one (a node name, or none of this session's).
                let (node, typed) = text.split_once(' ').unwrap_or((&text, ""));
                Input::TextUnder {
                    text: typed.to_string(),
                    session: 1,
                    node: (!node.is_empty()).then(|| node.to_string()),
                }
            }
            _ => Input::Text(String::from_utf8_lossy(line).into_owned()),
        });
    }
    for input in inputs {
        let effects = step(flow, &mut st, input, &ctx);
        for e in effects {
            match e {
                Effect::Record(r) => log.push((r.ix, Some(r.value))),
                Effect::Unset { ix, .. } => log.push((ix, None)),
                Effect::Restarted => log.clear(),
                _ => {}
            }
        }
        let mut replayed = SessionState::default();
        replayed.apply_answer_log(log.iter().cloned());
        assert_eq!(replayed.answers, st.answers, "the answer log replays to the answers");
    }
});
