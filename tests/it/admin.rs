//! Administrators' tools: the flow chart and routing explanations.

use crate::support::dialogs_dir;
use madoguchi::admin::{explain, graph};
use madoguchi::script::{load_dir, Lang};
use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn the_flow_chart_shows_questions_branches_and_hubs() {
    let bundle = load_dir(&dialogs_dir()).unwrap();
    let flow = bundle.flow("first_contact", Lang::Ja).unwrap();
    let m = graph::mermaid(&flow);
    assert!(m.starts_with("%% "), "{m}");
    assert!(m.contains("flowchart TD"));
    // Every node is drawn.
    for n in &flow.nodes {
        assert!(
            m.contains(&format!("    {}", n.id)),
            "node {} missing",
            n.id
        );
    }
    // A branch edge carries its condition, and the route node reaches hubs.
    assert!(m.contains("people_part = yes"), "{m}");
    assert!(m.contains("hub_hyogo_pro"), "{m}");
    assert!(
        m.contains("-.->|\"rule talent-need-clear\"| hub_hyogo_pro"),
        "{m}"
    );
    let d = graph::dot(&flow);
    assert!(
        d.contains("digraph")
            && d.contains(
                "\"routing\" -> \"hub_network_desk\" [label=\"rule fallback\", style=dashed]"
            ),
        "{d}"
    );
}

/// With Graphviz installed (CI installs it), `--format svg` draws a picture.
#[test]
fn the_cli_draws_svg_with_graphviz() {
    let has_dot = Command::new("dot").arg("-V").output().is_ok();
    if !has_dot {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install graphviz (see .ci/run)"
        );
        eprintln!("graphviz not installed here; skipping the SVG rendering");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["dialogs", "graph", "--format", "svg"])
        .arg(dialogs_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(
        svg.contains("<svg") && svg.contains("company_name"),
        "{svg}"
    );
}

#[test]
fn routing_explain_names_the_rule_and_why_earlier_ones_did_not_apply() {
    let bundle = load_dir(&dialogs_dir()).unwrap();
    let flow = bundle.flow("first_contact", Lang::Ja).unwrap();
    let answers: BTreeMap<String, String> = [
        ("prefecture", "ひょうご"),
        ("people_part", "yes"),
        ("employees", "約30名"),
        ("issue_detail", "新しい販路を開拓したい"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    let ex = explain::explain(&flow, &answers, today).unwrap();
    assert_eq!(ex.decision.rule, "talent-need-clear");
    assert_eq!(ex.decision.primary.id, "hyogo-pro");
    assert_eq!(ex.tags, vec!["sales".to_string()]);
    let text = ex.render();
    assert!(
        text.contains("✘ kyoto-side-job-network: condition not met"),
        "{text}"
    );
    assert!(
        text.contains("✔ talent-need-clear: applies → hyogo-pro"),
        "{text}"
    );
    assert!(text.contains("prefecture: 兵庫県"), "{text}");

    // An unknown question is an error that says what to do.
    let bad: BTreeMap<String, String> = [("prefectur".to_string(), "兵庫".to_string())]
        .into_iter()
        .collect();
    let err = explain::explain(&flow, &bad, today).unwrap_err();
    assert!(err.contains("no question `prefectur`"), "{err}");
}

#[test]
fn dialogs_check_speaks_the_administrators_language() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_dialogs(dir.path());
    let f = dir.path().join("routing.yaml");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replacen("kind: yorozu", "kind: yorozuya", 1);
    std::fs::write(&f, text).unwrap();
    let run = |lang: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .args(["dialogs", "check", "--lang", lang])
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, ja) = run("ja");
    assert_eq!(code, Some(1), "{ja}");
    assert!(
        ja.contains("routing.yaml:")
            && ja.contains("エラー[bad-hub-kind]: 不明な機関種別 `yorozuya` です"),
        "{ja}"
    );
    let (_, en) = run("en");
    assert!(
        en.contains("error[bad-hub-kind]: unknown hub kind `yorozuya`"),
        "{en}"
    );
}
