//! The understanding corpus: natural owner phrasings for the questions of
//! the shipped scripts, each with the interpretation it must get. Every
//! `tests/understanding/*.yaml` file is read (format in
//! `tests/understanding/README.md`); the test reports, per file and overall,
//! how many were understood at the first try, re-asked or misread, and
//! fails on any misreading or when fewer than 95 % of the entries that
//! expect a value are understood at the first try.

use madoguchi::engine::{understand, Understood};
use madoguchi::render::display_answer;
use madoguchi::script::{load_dir, Bundle, Lang, NodeKind};
use serde::Deserialize;
use std::path::PathBuf;

/// "Today" for every entry unless its file names another: relative dates
/// ("来年の春", "3ヶ月後") are read against it, so results never depend on
/// when the test runs.
const DEFAULT_TODAY: &str = "2026-11-23";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusFile {
    lang: String,
    #[serde(default)]
    today: Option<String>,
    /// The node for entries that do not name one.
    #[serde(default)]
    node: Option<String>,
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Reask {
    Flag(bool),
    Containing(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    node: Option<String>,
    say: String,
    /// The answer as the sheet shows it (`render::display_answer`).
    #[serde(default)]
    want: Option<String>,
    /// The chosen option ids (choice: one; multi: in script order).
    #[serde(default)]
    ids: Option<Vec<String>>,
    /// The input is genuinely ambiguous: the bot must ask again (and the
    /// re-ask must contain the text, when one is given).
    #[serde(default)]
    reask: Option<Reask>,
    /// Part of a multiple choice is understood: these ids are kept and the
    /// bot asks about the rest (`ask` is text that question must contain).
    #[serde(default)]
    partial: Option<Vec<String>>,
    #[serde(default)]
    ask: Option<String>,
    /// Why the entry is there; not checked.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    pub entries: usize,
    /// Entries that expect a value (whole or partial).
    pub expect_value: usize,
    /// Of those, understood correctly at the first try.
    pub first_try: usize,
    /// Of those, asked again although a value was expected.
    pub reasked: usize,
    /// Entries that expect a re-ask, and got one.
    pub reask_ok: usize,
    /// Misread: a value that differs from the expected one, a value where
    /// a re-ask was expected, or a re-ask missing its expected text.
    pub wrong: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.entries += o.entries;
        self.expect_value += o.expect_value;
        self.first_try += o.first_try;
        self.reasked += o.reasked;
        self.reask_ok += o.reask_ok;
        self.wrong += o.wrong;
    }
    fn rate(&self) -> f64 {
        if self.expect_value == 0 {
            100.0
        } else {
            100.0 * self.first_try as f64 / self.expect_value as f64
        }
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} entries {:>4}  first-try {:>4}/{:<4} ({:5.1} %)  re-asked {:>3}  expected re-asks {:>3}  wrong {:>3}",
            self.entries,
            self.first_try,
            self.expect_value,
            self.rate(),
            self.reasked,
            self.reask_ok,
            self.wrong
        )
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/understanding")
}

fn what(flow: &madoguchi::script::Flow, ix: u16, u: &Understood) -> String {
    match u {
        Understood::Value(v) => format!(
            "value 「{}」 ({})",
            display_answer(flow, ix as _, v),
            v.as_key()
        ),
        Understood::Partial { kept, ask } => format!(
            "partial 「{}」 ({}), asking 「{ask}」",
            display_answer(flow, ix as _, kept),
            kept.as_key()
        ),
        Understood::Reask(s) => format!("re-ask 「{s}」"),
    }
}

/// Runs one corpus file; returns its counts and a line per failure.
pub fn run_file(bundle: &Bundle, name: &str, text: &str) -> (Counts, Vec<String>) {
    let file: CorpusFile =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{name}: cannot read: {e}"));
    let lang = Lang::parse(&file.lang).unwrap_or_else(|| panic!("{name}: unknown lang"));
    let flow = bundle
        .flow("first_contact", lang)
        .unwrap_or_else(|| panic!("{name}: no first_contact script in {}", file.lang));
    let today = chrono::NaiveDate::parse_from_str(
        file.today.as_deref().unwrap_or(DEFAULT_TODAY),
        "%Y-%m-%d",
    )
    .unwrap_or_else(|e| panic!("{name}: today: {e}"));
    let mut c = Counts::default();
    let mut failures = Vec::new();
    for (i, e) in file.entries.iter().enumerate() {
        let node_id = e
            .node
            .as_deref()
            .or(file.node.as_deref())
            .unwrap_or_else(|| panic!("{name} entry {}: no node", i + 1));
        let ix = flow
            .index_of(node_id)
            .unwrap_or_else(|| panic!("{name} entry {}: no node {node_id}", i + 1));
        let NodeKind::Ask(q) = &flow.node(ix).kind else {
            panic!("{name} entry {}: {node_id} is not a question", i + 1)
        };
        c.entries += 1;
        let got = understand(&flow, &q.ty, &e.say, false, today);
        let ids_of = |v: &madoguchi::answer::AnswerValue| -> Vec<String> {
            match v {
                madoguchi::answer::AnswerValue::Multi(ids) => ids.clone(),
                v => vec![v.as_key()],
            }
        };
        let value_ok = |v: &madoguchi::answer::AnswerValue| -> bool {
            e.want
                .as_ref()
                .is_none_or(|w| display_answer(&flow, ix, v) == *w)
                && e.ids.as_ref().is_none_or(|ids| ids_of(v) == *ids)
        };
        let ask_ok = |s: &str| e.ask.as_ref().is_none_or(|a| s.contains(a.as_str()));
        let mut fail = |why: String| {
            failures.push(format!(
                "{name} entry {} [{node_id}] 「{}」: {why}; got {}",
                i + 1,
                e.say,
                what(&flow, ix as u16, &got)
            ))
        };
        if let Some(r) = &e.reask {
            let want_text = match r {
                Reask::Flag(true) => None,
                Reask::Flag(false) => panic!("{name} entry {}: reask: false means nothing", i + 1),
                Reask::Containing(s) => Some(s.as_str()),
            };
            match &got {
                Understood::Reask(s) if want_text.is_none_or(|w| s.contains(w)) && ask_ok(s) => {
                    c.reask_ok += 1
                }
                _ => {
                    c.wrong += 1;
                    fail(format!(
                        "expected a re-ask{}",
                        want_text
                            .map(|w| format!(" containing 「{w}」"))
                            .unwrap_or_default()
                    ));
                }
            }
            continue;
        }
        c.expect_value += 1;
        if let Some(kept) = &e.partial {
            match &got {
                Understood::Partial { kept: k, ask } if ids_of(k) == *kept && ask_ok(ask) => {
                    c.first_try += 1
                }
                Understood::Reask(_) => {
                    c.reasked += 1;
                    fail(format!("expected partial {kept:?}"));
                }
                _ => {
                    c.wrong += 1;
                    fail(format!("expected partial {kept:?}"));
                }
            }
            continue;
        }
        assert!(
            e.want.is_some() || e.ids.is_some(),
            "{name} entry {}: give want, ids, partial or reask",
            i + 1
        );
        match &got {
            Understood::Value(v) if value_ok(v) => c.first_try += 1,
            Understood::Value(_) | Understood::Partial { .. } => {
                c.wrong += 1;
                fail(format!(
                    "expected {}",
                    e.want.clone().unwrap_or_else(|| format!("{:?}", e.ids))
                ));
            }
            Understood::Reask(_) => {
                c.reasked += 1;
                fail(format!(
                    "expected {}",
                    e.want.clone().unwrap_or_else(|| format!("{:?}", e.ids))
                ));
            }
        }
    }
    (c, failures)
}

#[test]
fn owners_are_understood_at_the_first_try() {
    let bundle = load_dir(&crate::support::dialogs_dir()).expect("the shipped scripts load");
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/understanding exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in tests/understanding");
    let mut total = Counts::default();
    let mut report = String::new();
    let mut failures = Vec::new();
    for p in &files {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(p).unwrap();
        let (c, f) = run_file(&bundle, &name, &text);
        report.push_str(&c.line(&name));
        report.push('\n');
        total.add(c);
        failures.extend(f);
    }
    report.push_str(&total.line("TOTAL"));
    report.push('\n');
    // Shown with `cargo test --test it understanding -- --nocapture`; the
    // figures go to BENCHMARKS.md.
    println!("{report}");
    let misread: Vec<&String> = failures
        .iter()
        .filter(|f| !f.contains("got re-ask"))
        .collect();
    for f in &failures {
        println!("  {f}");
    }
    assert_eq!(
        total.wrong,
        0,
        "{} misread entries (a re-ask is better than a wrong answer):\n{}\n{report}",
        total.wrong,
        misread
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        total.rate() >= 95.0,
        "first-try rate {:.1} % is below 95 %:\n{}\n{report}",
        total.rate(),
        failures.join("\n")
    );
}

/// The harness must be able to fail: a wrong expectation is counted as
/// wrong, an unexpected re-ask as re-asked, never as understood.
#[test]
fn a_wrong_expectation_is_counted_wrong() {
    let bundle = load_dir(&crate::support::dialogs_dir()).unwrap();
    let (c, f) = run_file(
        &bundle,
        "inline",
        r#"
lang: ja
node: industry
entries:
  - { say: "1", ids: [construction] }
  - { say: "1", reask: true }
  - { say: "まったく関係のない言葉", want: 製造業 }
  - { say: "2", want: 建設業 }
"#,
    );
    assert_eq!(c.wrong, 2, "{f:#?}");
    assert_eq!(c.reasked, 1, "{f:#?}");
    assert_eq!(c.first_try, 1, "{f:#?}");
    assert_eq!(f.len(), 3);
}
