//! Typed answer values, as the engine keeps them and the store records them.

use crate::domain::contact::{Email, PhoneJp};
use crate::domain::date::{DateValue, Period};
use crate::domain::municipality::Place;
use crate::domain::number::Quantity;
use serde::{Deserialize, Serialize};

/// One accepted answer. Free text is kept exactly as typed (after removing
/// invisible control characters); escaping happens only when rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum AnswerValue {
    /// The id of the chosen option.
    Choice(String),
    /// The ids of the chosen options, in script order.
    Multi(Vec<String>),
    /// The option a question offers for anything else (id `other`), with
    /// the owner's own words, kept as typed, so what they said is not lost.
    /// Boxed to keep `AnswerValue` small (see `Quantity::unit`).
    Other(Box<OtherChoice>),
    Bool(bool),
    Text(String),
    Number(Quantity),
    /// The company's location: a prefecture, and the municipality when the
    /// owner named one. The variant keeps its name so stored answers read
    /// back unchanged.
    Prefecture(Place),
    Email(Email),
    Phone(PhoneJp),
    Date(DateValue),
    /// A time in the owner's words that is no date: 「なるべく早く」,
    /// 「来年の春」, 「今年度中」 (boxed: rare, and it holds the words).
    Period(Box<Period>),
    /// An industry choice reached through the owner's words: the script's
    /// option id and the JSIC class code (e.g. `services` and `7813`
    /// リネンサプライ業), so the sheet can show both.
    Industry {
        option: String,
        class: String,
    },
    /// The owner skipped an optional question, or the script skipped it
    /// after too many retries.
    Skipped,
}

/// An "other" option with the owner's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherChoice {
    pub id: String,
    pub words: String,
}

impl AnswerValue {
    /// The value as text for conditions (`equals:`) and for display of
    /// values that need no script lookup.
    pub fn as_key(&self) -> String {
        match self {
            AnswerValue::Choice(id) => id.clone(),
            AnswerValue::Other(o) => o.id.clone(),
            // Conditions see the option (`industry in [services]`).
            AnswerValue::Industry { option, .. } => option.clone(),
            AnswerValue::Multi(ids) => ids.join(","),
            AnswerValue::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            AnswerValue::Text(t) => t.clone(),
            AnswerValue::Number(q) => fmt_number(q.value),
            // Conditions compare the prefecture (`equals: 京都府`); the
            // municipality has conditions of its own (`area:`).
            AnswerValue::Prefecture(p) => p.prefecture().name_ja().to_string(),
            AnswerValue::Email(e) => e.as_str().to_string(),
            AnswerValue::Phone(p) => p.display(),
            AnswerValue::Date(d) => d.date.to_string(),
            AnswerValue::Period(p) => match p.from {
                Some(d) => d.to_string(),
                None => p.words.clone(),
            },
            AnswerValue::Skipped => String::new(),
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            AnswerValue::Number(q) => Some(q.value),
            _ => None,
        }
    }

    pub fn is_skipped(&self) -> bool {
        matches!(self, AnswerValue::Skipped)
    }
}

/// Formats a number without a trailing ".0" when it is whole.
pub fn fmt_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
