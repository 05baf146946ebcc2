//! The broken-script corpus: each folder under `tests/corpus/` holds the
//! files that differ from `tests/corpus/_base/` and the exact diagnostics
//! `dialogs check` must report (`expected.txt` in English, and
//! `expected.ja.txt` in Japanese where present).

use madoguchi::script::{load_dir, Lang};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn copy_yaml(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) == Some("yaml") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// The diagnostics for a corpus case, rendered with paths relative to the
/// dialogs folder.
pub fn diagnostics(case: &Path, lang: Lang) -> String {
    let dir = tempfile::tempdir().unwrap();
    copy_yaml(&corpus().join("_base"), dir.path());
    copy_yaml(case, dir.path());
    let diags = match load_dir(dir.path()) {
        Ok(b) => {
            let mut all = b.warnings.clone();
            all.extend(madoguchi::script::lint_bundle(&b));
            madoguchi::script::diag::normalize(all)
        }
        Err(madoguchi::script::compile::LoadError::Invalid(d)) => d,
        Err(e) => panic!("{e}"),
    };
    let prefix = format!("{}/", dir.path().display());
    diags
        .iter()
        .map(|d| d.render(lang).replace(&prefix, ""))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn every_broken_script_gets_its_exact_diagnostics() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the corpus has {} cases", cases.len());
    let mut failures = String::new();
    for case in &cases {
        for (file, lang) in [("expected.txt", Lang::En), ("expected.ja.txt", Lang::Ja)] {
            if std::env::var_os("MADOGUCHI_BLESS").is_some()
                && (lang == Lang::En || case.join(file).exists())
            {
                // Regenerates the expected files; review the diff before committing.
                std::fs::write(case.join(file), diagnostics(case, lang)).unwrap();
                continue;
            }
            let Ok(want) = std::fs::read_to_string(case.join(file)) else {
                assert!(lang == Lang::Ja, "{} has no {file}", case.display());
                continue;
            };
            let got = diagnostics(case, lang);
            if got != want {
                failures.push_str(&format!(
                    "=== {}/{file}\n--- expected\n{want}--- got\n{got}",
                    case.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// The base of the corpus itself is clean but for the coverage warning, so
/// each case's diagnostics come from its own change.
#[test]
fn the_corpus_base_has_no_errors() {
    let got = diagnostics(&corpus().join("_base"), Lang::En);
    assert!(!got.contains("error["), "{got}");
}

/// One language per message: what `dialogs check --lang ja` prints for
/// every case of the corpus has no English prose in it (names in
/// backticks, file paths and key names are not prose).
#[test]
fn japanese_diagnostics_have_no_english_fragments() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    // Lists of names ("choice, multi") are names, not prose.
    let english = regex::Regex::new(r"[A-Za-z]{2,}[.?!]? [A-Za-z]{2,}").unwrap();
    let mut found = String::new();
    for case in &cases {
        for line in diagnostics(case, Lang::Ja).lines() {
            // Drop the `file:line:col: ` prefix and everything in backticks.
            let text = line.split_once(": ").map(|x| x.1).unwrap_or(line);
            let mut prose = String::new();
            for (i, part) in text.split('`').enumerate() {
                if i % 2 == 0 {
                    prose.push_str(part);
                }
            }
            if let Some(m) = english.find(&prose) {
                found.push_str(&format!(
                    "{}: `{}` in: {line}\n",
                    case.display(),
                    m.as_str()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{found}");
}
