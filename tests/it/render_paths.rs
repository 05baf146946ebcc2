//! The fast ways of rendering templates (plain text as it is; the scripts'
//! handlebars subset straight from the state) give exactly what handlebars
//! gives with the full JSON context, for every template of the shipped
//! dialogs, the benchmark script and the corpus base, at every step of every
//! transcript, in both render modes, with hostile answers too.

use chrono::NaiveDate;
use madoguchi::answer::AnswerValue;
use madoguchi::engine::{self, Ctx, Input, SessionState};
use madoguchi::render::{
    context, render_handlebars, render_input, render_path, ContextInput, RenderMode,
};
use madoguchi::script::{load_dir, Flow, Lang};
use std::path::Path;

fn template_names(flow: &Flow) -> Vec<String> {
    let mut names = vec!["summary".to_string(), "headline".to_string()];
    for ix in 0..flow.nodes.len() {
        for part in ["say", "text", "retry"] {
            names.push(format!("{ix}.{part}"));
        }
    }
    names
}

fn check(flow: &Flow, st: &SessionState, today: NaiveDate, what: &str) -> usize {
    let mut n = 0;
    for name in template_names(flow) {
        for mode in [RenderMode::Plain, RenderMode::Markdown] {
            let input = ContextInput {
                answers: &st.answers,
                tags: &st.tags,
                route: st.route.as_deref(),
                today,
            };
            // Both fail alike for a template the node does not have.
            let fast = render_input(flow, &name, &input, mode);
            let reference = render_handlebars(flow, &name, &context(flow, &input, mode));
            assert_eq!(
                fast, reference,
                "{what}: template {name} ({mode:?}) of {} {}",
                flow.script_id, flow.lang
            );
            n += 1;
        }
    }
    n
}

/// The state with every free-text answer made hostile.
fn hostile(st: &SessionState) -> SessionState {
    let mut s = st.clone();
    for (_, v) in &mut s.answers {
        if let AnswerValue::Text(t) = v {
            t.push_str(" **{{title}}** @everyone _x_ `y` [z](w) # <b>");
        }
    }
    s
}

fn replay(flow: &Flow, inputs: &[Input], today: NaiveDate, what: &str) -> usize {
    let ctx = Ctx::new(
        today.and_hms_opt(1, 0, 0).unwrap().and_utc(),
        RenderMode::Plain,
    );
    let mut st = SessionState::default();
    let mut n = check(flow, &st, today, what);
    for input in inputs {
        let input = match input {
            // A press belongs to the question being asked now.
            Input::Pick { value, .. } => Input::Pick {
                node: flow.node(st.node).id.clone(),
                value: value.clone(),
            },
            other => other.clone(),
        };
        engine::step(flow, &mut st, input, &ctx);
        n += check(flow, &st, today, what);
        n += check(flow, &hostile(&st), today, what);
    }
    n
}

#[test]
fn fast_template_paths_match_handlebars() {
    let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let mut checked = 0;

    // The shipped dialogs, through every transcript.
    let bundle = load_dir(Path::new("dialogs")).expect("the shipped dialogs load");
    let mut dir: Vec<_> = std::fs::read_dir("dialogs/tests")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dir.sort();
    for p in dir
        .iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
    {
        let t = madoguchi::transcript::parse(&std::fs::read_to_string(p).unwrap()).unwrap();
        let Some(flow) = bundle.flow(&t.script, Lang::parse(&t.lang).unwrap_or(Lang::Ja)) else {
            continue;
        };
        let inputs: Vec<Input> = t
            .steps
            .iter()
            .filter_map(|s| {
                let s = &s.value;
                if s.start || s.crash {
                    Some(if s.start { Input::Start } else { Input::Resume })
                } else if let Some(o) = &s.owner {
                    Some(Input::Text(o.clone()))
                } else if let Some(r) = &s.owner_repeat {
                    Some(Input::Text(r.text.repeat(r.times)))
                } else {
                    s.press.as_ref().map(|p| Input::Pick {
                        node: String::new(),
                        value: p.clone(),
                    })
                }
            })
            .collect();
        checked += replay(
            &flow,
            &inputs,
            t.today.unwrap_or(today),
            &p.display().to_string(),
        );
    }
    // Every template the shipped dialogs have takes a fast path.
    for flow in &bundle.flows {
        for name in template_names(flow) {
            let how = render_path(flow, &name);
            assert!(
                how != "handlebars",
                "{} {}: template {name} is rendered by handlebars",
                flow.script_id,
                flow.lang
            );
        }
    }

    // The benchmark script.
    let bench = load_dir(Path::new("benches/dialogs")).expect("the benchmark script loads");
    let flow = bench.flow("bench", Lang::Ja).unwrap();
    let mut inputs = vec![Input::Text("こんにちは".into())];
    for q in 1..=20 {
        inputs.push(Input::Text(if q % 5 == 0 {
            "１２３".into()
        } else {
            format!("回答{q} *強調* @here")
        }));
    }
    checked += replay(&flow, &inputs, today, "bench");
    assert_eq!(render_path(&flow, "summary"), "direct");

    // The corpus base, in both languages.
    let base = load_dir(Path::new("tests/corpus/_base")).expect("the corpus base loads");
    for flow in &base.flows {
        let inputs =
            ["兵庫", "売上を伸ばしたい {{x}}", "はい", "送信"].map(|s| Input::Text(s.into()));
        checked += replay(
            flow,
            &[&[Input::Start][..], &inputs[..]].concat(),
            today,
            "corpus base",
        );
    }
    assert!(checked > 1000, "only {checked} renders compared");
}
