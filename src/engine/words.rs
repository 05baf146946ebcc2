//! Constant word lists the engine compares owners' input with, folded
//! once with [`fold_for_match`]. Input is folded before it is compared, so
//! each list must be folded the same way; folding every list anew at each
//! yes/no answer and each reply at the confirmation was a visible share of
//! a turn's CPU, and the lists never change.

use std::sync::LazyLock;

use crate::domain::text::fold_for_match;

/// A word list as [`fold_for_match`] folds its words.
pub(crate) struct Folded(LazyLock<Vec<String>>);

impl Folded {
    /// Whether `folded` (input already folded with [`fold_for_match`]) is
    /// one of the words.
    pub(crate) fn contains(&self, folded: &str) -> bool {
        self.0.iter().any(|w| w == folded)
    }
}

/// Folds the word lists now (see [`super::warm_up`]).
pub(crate) fn warm_up() {
    for w in [&YES, &NO, &SEND, &AGREE_AND_SEND, &DECLINE] {
        LazyLock::force(&w.0);
    }
}

fn fold_all(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| fold_for_match(w)).collect()
}

pub(crate) static YES: Folded = Folded(LazyLock::new(|| fold_all(crate::script::yes_words())));
pub(crate) static NO: Folded = Folded(LazyLock::new(|| fold_all(crate::script::no_words())));
pub(crate) static SEND: Folded = Folded(LazyLock::new(|| fold_all(crate::script::send_words())));
pub(crate) static AGREE_AND_SEND: Folded = Folded(LazyLock::new(|| fold_all(AGREE_AND_SEND_WORDS)));
pub(crate) static DECLINE: Folded = Folded(LazyLock::new(|| fold_all(DECLINE_WORDS)));

/// Typed answers that agree and send at a confirmation that is also the
/// consent question (besides the yes and send words).
const AGREE_AND_SEND_WORDS: &[&str] = &[
    "同意して送信",
    "同意して送信する",
    "同意して送信します",
    "送信します",
    "お願いします",
    "送ってください",
    "送信お願いします",
    "送信をお願いします",
    "送信してください",
    "agree and send",
    "i agree, send",
];

/// Typed answers that refuse to share at that confirmation. A bare
/// 「いいえ」 is not among them: it may mean "something is wrong".
const DECLINE_WORDS: &[&str] = &[
    "同意しない",
    "同意しません",
    "同意しない（送らない）",
    "送らない",
    "送らないで",
    "送らないでください",
    "送信しない",
    "送信しません",
    "送信はしません",
    "送信しないでください",
    "同意できない",
    "同意できません",
    "やっぱり送らない",
    "やはり送らない",
    "やめる",
    "やめます",
    "disagree",
    "do not agree",
    "don't agree",
    "i do not agree",
    "i don't agree",
    "do not send",
    "don't send",
    "decline",
];
