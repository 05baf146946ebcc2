//! How long a consultation takes, measured over the transcripts of whole
//! consultations, and a check that the opening promise (「N分ほど」) holds.
//!
//! Method (also in BENCHMARKS.md): every Japanese transcript that ends in
//! a sent case is replayed through the real runner. For each we count the
//! owner's turns (typed answers and button presses, commands included),
//! the characters the owner typed, and the characters the bot sent. The
//! estimated time is reading at 500 characters a minute, typing at 35
//! characters a minute (smartphone flick input with kana-kanji
//! conversion) and 5 seconds to decide each turn. The medians are printed
//! (`cargo test --test it consultation_length -- --nocapture`).

use crate::support::dialogs_dir;

/// Characters a minute an owner reads on a phone (Japanese).
const READ_PER_MIN: f64 = 500.0;
/// Characters a minute an owner types on a phone (flick input).
const TYPE_PER_MIN: f64 = 35.0;
/// Seconds to decide each answer.
const DECIDE_SECS: f64 = 5.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The minutes the Japanese welcome message promises.
fn promised_minutes() -> f64 {
    let script = std::fs::read_to_string(dialogs_dir().join("first_contact.ja.yaml")).unwrap();
    let re = regex::Regex::new(r"(\d+)分ほど").unwrap();
    let caps = re
        .captures(&script)
        .expect("the welcome message promises a duration (「N分ほど」)");
    caps[1].parse().unwrap()
}

#[tokio::test]
async fn consultation_length_keeps_the_opening_promise() {
    let dir = dialogs_dir();
    let outcomes = madoguchi::transcript::run_dir(&dir, &dir.join("tests"))
        .await
        .expect("transcripts load");
    let (mut turns, mut typed, mut read, mut minutes) = (vec![], vec![], vec![], vec![]);
    println!("transcript | turns | typed chars | bot chars | est. minutes");
    for (path, o) in &outcomes {
        let file = path.rsplit('/').next().unwrap();
        let text = std::fs::read_to_string(dir.join("tests").join(file)).unwrap();
        let t = madoguchi::transcript::parse(&text).unwrap();
        if t.lang != "ja" || t.expect.status.as_deref() != Some("completed") {
            continue;
        }
        assert!(
            o.failures.is_empty(),
            "{file} fails; see dialog_transcripts_pass"
        );
        let n = t
            .steps
            .iter()
            .filter(|s| s.value.owner.is_some() || s.value.press.is_some())
            .count() as f64;
        let chars = t
            .steps
            .iter()
            .filter_map(|s| s.value.owner.as_ref())
            .map(|o| o.chars().count())
            .sum::<usize>() as f64;
        let bot = o
            .log
            .lines()
            .filter(|l| !l.starts_with("> ") && !l.starts_with('['))
            .map(|l| l.trim().chars().count())
            .sum::<usize>() as f64;
        let m = bot / READ_PER_MIN + chars / TYPE_PER_MIN + n * DECIDE_SECS / 60.0;
        println!("{file} | {n} | {chars} | {bot} | {m:.1}");
        turns.push(n);
        typed.push(chars);
        read.push(bot);
        minutes.push(m);
    }
    assert!(
        minutes.len() >= 10,
        "too few whole consultations to measure"
    );
    let promise = promised_minutes();
    println!(
        "median over {} consultations: {} turns, {} typed chars, {} bot chars, {:.1} minutes (promise: {promise} minutes)",
        minutes.len(),
        median(turns),
        median(typed),
        median(read),
        median(minutes.clone())
    );
    let m = median(minutes);
    assert!(
        m <= promise,
        "the opening promises {promise} minutes but the median consultation takes {m:.1}"
    );
}
