//! Turning what an owner typed or pressed into a typed answer.
//!
//! Parsing is forgiving (全角 digits, 「約30名」, a choice by number, label
//! or unique prefix) and every refusal comes back as a short sentence in the
//! script's language that says what to type instead.

use super::{PromptKind, PromptOption};
use crate::answer::AnswerValue;
use crate::domain::contact::{Email, PhoneJp};
use crate::domain::date::parse_date;
use crate::domain::industry::Jsic;
use crate::domain::municipality::{Place, PlaceError};
use crate::domain::number::{parse_quantity, NumberError};
use crate::domain::text::{clean_text, fold_for_match, normalize_input};
use crate::script::{no_words, yes_words, AnswerType, ChoiceOption, Flow, Lang};
use chrono::NaiveDate;

fn t(lang: Lang, ja: &str, en: &str) -> String {
    match lang {
        Lang::Ja => ja.to_string(),
        Lang::En => en.to_string(),
    }
}

pub fn prompt_kind(flow: &Flow, ty: &AnswerType) -> PromptKind {
    let opts = |o: &[ChoiceOption]| {
        o.iter()
            .map(|o| PromptOption {
                id: o.id.clone(),
                label: o.label.clone(),
            })
            .collect()
    };
    match ty {
        AnswerType::Choice { options } => PromptKind::Choice {
            options: opts(options),
        },
        AnswerType::Multi { options, min, max } => PromptKind::Multi {
            options: opts(options),
            min: *min,
            max: *max,
        },
        AnswerType::YesNo | AnswerType::Consent { .. } => {
            let (y, n) = match (flow.lang, ty) {
                (Lang::Ja, AnswerType::Consent { .. }) => ("同意する", "同意しない"),
                (Lang::En, AnswerType::Consent { .. }) => ("I agree", "I do not agree"),
                (Lang::Ja, _) => ("はい", "いいえ"),
                (Lang::En, _) => ("Yes", "No"),
            };
            PromptKind::YesNo {
                options: vec![
                    PromptOption {
                        id: "yes".into(),
                        label: y.into(),
                    },
                    PromptOption {
                        id: "no".into(),
                        label: n.into(),
                    },
                ],
            }
        }
        AnswerType::Text { max, .. } => PromptKind::Text { max: *max },
        AnswerType::Number { unit, .. } => PromptKind::Number { unit: unit.clone() },
        AnswerType::Prefecture => PromptKind::Prefecture,
        AnswerType::Email => PromptKind::Email,
        AnswerType::Phone => PromptKind::Phone,
        AnswerType::Date => PromptKind::Date,
    }
}

/// Finds the option an owner meant: its number, its label or id or an
/// alias, or a prefix of exactly one label.
fn match_option<'a>(options: &'a [ChoiceOption], raw: &str) -> Option<&'a ChoiceOption> {
    let f = fold_for_match(raw);
    if f.is_empty() {
        return None;
    }
    if let Ok(n) = f.trim_end_matches(['.', ')', '番']).parse::<usize>() {
        return n.checked_sub(1).and_then(|i| options.get(i));
    }
    if let Some(o) = options.iter().find(|o| o.folded.iter().any(|x| *x == f)) {
        return Some(o);
    }
    let mut prefixed = options
        .iter()
        .filter(|o| o.folded.iter().any(|x| x.starts_with(&f)));
    match (prefixed.next(), prefixed.next()) {
        (Some(o), None) => Some(o),
        _ => None,
    }
}

/// The industry answer for a choice whose option ids are the industry ids
/// of [`Jsic::script_option`] (manufacturing, services, …), if the words
/// name a JSIC class that maps to one of the options.
fn industry_answer(options: &[ChoiceOption], raw: &str) -> Option<AnswerValue> {
    let class = Jsic::classify(raw).ok()?;
    let option = options.iter().find(|o| o.id == class.script_option())?;
    Some(AnswerValue::Industry {
        option: option.id.clone(),
        class: class.code().to_string(),
    })
}

fn option_list(lang: Lang, options: &[ChoiceOption]) -> String {
    let items: Vec<String> = options
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{} {}", i + 1, o.label))
        .collect();
    let sep = if lang == Lang::Ja { "、" } else { ", " };
    match lang {
        Lang::Ja => format!(
            "番号か選択肢の言葉でお答えください（{}）。",
            items.join(sep)
        ),
        Lang::En => format!("Answer with a number or an option ({}).", items.join(sep)),
    }
}

/// What the bot made of one reply to a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Understood {
    /// The whole answer.
    Value(AnswerValue),
    /// Part of a multiple choice was understood and is kept; `ask` asks only
    /// about the rest (the words that fitted no option, or that fitted more
    /// than one).
    Partial { kept: AnswerValue, ask: String },
    /// Nothing usable, or genuinely ambiguous: ask again with this text.
    Reask(String),
}

/// Interprets what the owner typed (or pressed, when `picked`) at a
/// question of type `ty`. A wrong interpretation is worse than asking
/// again, so anything doubtful comes back as [`Understood::Reask`] or
/// [`Understood::Partial`].
pub fn understand(
    flow: &Flow,
    ty: &AnswerType,
    raw: &str,
    picked: bool,
    today: NaiveDate,
) -> Understood {
    match parse_whole(flow, ty, raw, picked, today) {
        Ok(v) => Understood::Value(v),
        Err(s) => Understood::Reask(s),
    }
}

/// [`understand`] for callers that need the whole answer or a reason: a
/// partial answer counts as a refusal with its question.
pub fn parse_answer(
    flow: &Flow,
    ty: &AnswerType,
    raw: &str,
    picked: bool,
    today: NaiveDate,
) -> Result<AnswerValue, String> {
    match understand(flow, ty, raw, picked, today) {
        Understood::Value(v) => Ok(v),
        Understood::Partial { ask, .. } | Understood::Reask(ask) => Err(ask),
    }
}

fn parse_whole(
    flow: &Flow,
    ty: &AnswerType,
    raw: &str,
    picked: bool,
    today: NaiveDate,
) -> Result<AnswerValue, String> {
    let lang = flow.lang;
    match ty {
        AnswerType::Choice { options } => {
            let found = if picked {
                options.iter().find(|o| o.id == raw)
            } else {
                match_option(options, raw)
            };
            if let Some(o) = found {
                return Ok(AnswerValue::Choice(o.id.clone()));
            }
            // A trade named in the owner's words (旅行業, リネンサプライ,
            // 陶器の製造業です) is classified by JSIC and lands on the
            // script's industry option, keeping the class for the sheet.
            if let Some(v) = (!picked).then(|| industry_answer(options, raw)).flatten() {
                return Ok(v);
            }
            Err(option_list(lang, options))
        }
        AnswerType::Multi { options, min, max } => {
            // Strong separators first; a piece that is not an option is
            // split again on 「・」 and spaces, so labels that contain 「・」
            // (売上・販路拡大) still match when typed in full.
            let mut parts: Vec<&str> = Vec::new();
            if picked {
                parts.extend(raw.split(','));
            } else {
                for piece in raw.split(|c: char| {
                    matches!(c, ',' | '、' | '，' | '､' | '/' | '／' | '\n' | ';' | '；')
                }) {
                    if piece.trim().is_empty() {
                        continue;
                    }
                    if match_option(options, piece).is_some() {
                        parts.push(piece);
                    } else {
                        parts.extend(
                            piece
                                .split(|c: char| matches!(c, '・' | ' ' | '\u{3000}'))
                                .filter(|s| !s.trim().is_empty()),
                        );
                    }
                }
            }
            let mut ids: Vec<&str> = Vec::new();
            for p in parts {
                let o = if picked {
                    options.iter().find(|o| o.id == p)
                } else {
                    match_option(options, p)
                };
                match o {
                    Some(o) if !ids.contains(&o.id.as_str()) => ids.push(&o.id),
                    Some(_) => {}
                    None => {
                        return Err(match lang {
                            Lang::Ja => format!(
                                "「{}」は選択肢にありません。{}",
                                p.trim(),
                                option_list(lang, options)
                            ),
                            Lang::En => format!(
                                "\"{}\" is not an option. {}",
                                p.trim(),
                                option_list(lang, options)
                            ),
                        })
                    }
                }
            }
            let n = ids.len() as u32;
            if n < *min || n > *max {
                return Err(match lang {
                    Lang::Ja => format!(
                        "{min}〜{max}個選んでください（区切りは「、」）。{}",
                        option_list(lang, options)
                    ),
                    Lang::En => format!(
                        "Choose {min} to {max} options, separated by commas. {}",
                        option_list(lang, options)
                    ),
                });
            }
            // Keep script order so summaries read the same way every time.
            let ordered = options
                .iter()
                .filter(|o| ids.contains(&o.id.as_str()))
                .map(|o| o.id.clone())
                .collect();
            Ok(AnswerValue::Multi(ordered))
        }
        AnswerType::YesNo | AnswerType::Consent { .. } => {
            let f = fold_for_match(raw);
            let consent = matches!(ty, AnswerType::Consent { .. });
            let is = |words: &[&str]| words.iter().any(|w| fold_for_match(w) == f);
            if f == "yes" || f == "1" || is(yes_words()) {
                Ok(AnswerValue::Bool(true))
            } else if f == "no" || f == "2" || is(no_words()) {
                Ok(AnswerValue::Bool(false))
            } else if consent {
                Err(t(
                    lang,
                    "「同意する」か「同意しない」でお答えください（1 または 2）。",
                    "Please answer \"I agree\" or \"I do not agree\" (1 or 2).",
                ))
            } else {
                Err(t(
                    lang,
                    "「はい」か「いいえ」でお答えください（1 または 2）。",
                    "Please answer yes or no (1 or 2).",
                ))
            }
        }
        AnswerType::Text { min, max, pattern } => {
            let text = clean_text(raw);
            let n = text.chars().count();
            if n < *min {
                return Err(match lang {
                    Lang::Ja => format!("{min}文字以上でお答えください。"),
                    Lang::En => format!("Please write at least {min} characters."),
                });
            }
            if n > *max {
                return Err(match lang {
                    Lang::Ja => format!("{max}文字以内でお答えください（いま{n}文字です）。"),
                    Lang::En => format!("Please keep it to {max} characters (this one has {n})."),
                });
            }
            if let Some(p) = pattern {
                // The pattern sees the normalised form, so 全角 digits match
                // `[0-9]`; the answer is stored as typed.
                if !p.is_match(&normalize_input(&text)) {
                    return Err(t(
                        lang,
                        "形式が違うようです。例にならってお答えください。",
                        "That does not look like the expected format.",
                    ));
                }
            }
            Ok(AnswerValue::Text(text))
        }
        AnswerType::Number { min, max, unit } => {
            let q = parse_quantity(raw, unit.as_deref())
                .map_err(|e| number_error(lang, &e, unit.as_deref()))?;
            let u = unit.clone().unwrap_or_default();
            if let Some(lo) = min {
                if q.value < *lo {
                    return Err(match lang {
                        Lang::Ja => format!(
                            "{}{u}以上の数でお答えください。",
                            crate::answer::fmt_number(*lo)
                        ),
                        Lang::En => format!(
                            "Please give a number of at least {}{u}.",
                            crate::answer::fmt_number(*lo)
                        ),
                    });
                }
            }
            if let Some(hi) = max {
                if q.value > *hi {
                    return Err(match lang {
                        Lang::Ja => format!(
                            "{}{u}以下の数でお答えください。",
                            crate::answer::fmt_number(*hi)
                        ),
                        Lang::En => format!(
                            "Please give a number of at most {}{u}.",
                            crate::answer::fmt_number(*hi)
                        ),
                    });
                }
            }
            Ok(AnswerValue::Number(q))
        }
        AnswerType::Prefecture => Place::parse(raw)
            .map(AnswerValue::Prefecture)
            .map_err(|e| place_error(lang, &e)),
        AnswerType::Email => Email::parse(raw).map(AnswerValue::Email).map_err(|_| {
            t(
                lang,
                "メールアドレスの形でお答えください（例: name@example.jp）。",
                "Please give an email address like name@example.jp.",
            )
        }),
        // The parser's reason (wrong length, not in the numbering plan, …)
        // is what the owner needs to correct the number.
        AnswerType::Phone => PhoneJp::parse(raw)
            .map(AnswerValue::Phone)
            .map_err(|e| match lang {
                Lang::Ja => e.message_ja(),
                Lang::En => {
                    let mut m = e.to_string();
                    if let Some(first) = m.get(..1) {
                        m = first.to_uppercase() + &m[1..];
                    }
                    m + "."
                }
            }),
        AnswerType::Date => parse_date(raw, today).map(AnswerValue::Date).map_err(|_| {
            t(
                lang,
                "時期を日付でお答えください（例: 2027年4月、来年4月、3ヶ月後）。",
                "Please give a date such as April 2027, next month or in 3 months.",
            )
        }),
    }
}

/// What to ask when a location is not understood: the prefectures of a
/// region, the candidates of a name several municipalities share, or an
/// example of each accepted form.
fn place_error(lang: Lang, e: &PlaceError) -> String {
    match (lang, e) {
        (Lang::Ja, PlaceError::IsRegion(r)) => {
            let names: Vec<&str> = r.prefectures().iter().map(|p| p.name_ja()).collect();
            format!("{}地方のどの都道府県ですか？（{}）", r.name_ja(), names.join("、"))
        }
        (Lang::En, PlaceError::IsRegion(r)) => {
            let names: Vec<&str> = r.prefectures().iter().map(|p| p.name_en()).collect();
            format!("Which prefecture in {}? ({})", r.name_en(), names.join(", "))
        }
        (Lang::Ja, PlaceError::Ambiguous { name, candidates }) => {
            let names: Vec<String> = candidates.iter().map(|m| m.qualified_name()).collect();
            format!(
                "「{name}」は複数あります。都道府県名を付けてお答えください（{}）。",
                names.join("、")
            )
        }
        (Lang::En, PlaceError::Ambiguous { name, candidates }) => {
            let names: Vec<String> = candidates
                .iter()
                .map(|m| format!("{} {}", m.prefecture().name_en(), m.name()))
                .collect();
            format!(
                "There is more than one \"{name}\". Please add the prefecture ({}).",
                names.join(", ")
            )
        }
        (Lang::Ja, PlaceError::UnknownPostalCode(code)) => format!(
            "〒{code} は日本郵便の郵便番号一覧にありません。番号をご確認いただくか、市区町村名でお答えください（例: 綾部市）。"
        ),
        (Lang::En, PlaceError::UnknownPostalCode(code)) => format!(
            "〒{code} is not in Japan Post's list of postal codes. Please check it, or give the prefecture (e.g. Hyogo)."
        ),
        (Lang::Ja, _) => {
            "都道府県名か市区町村名でお答えください（例: 兵庫県、ひょうご、綾部市、京都府与謝野町、〒623-0011）。"
                .into()
        }
        (Lang::En, _) => {
            "Please give a prefecture (e.g. Hyogo, 兵庫県), a city (e.g. 綾部市) or a postal code (e.g. 623-0011)."
                .into()
        }
    }
}

fn number_error(lang: Lang, e: &NumberError, unit: Option<&str>) -> String {
    let u = unit.unwrap_or("");
    match (lang, e) {
        (Lang::Ja, NumberError::Range { .. }) => {
            "幅ではなくひとつの数でお答えください（例: 25）。".into()
        }
        (Lang::En, NumberError::Range { .. }) => {
            "Please give one number, not a range (e.g. 25).".into()
        }
        (Lang::Ja, NumberError::WrongUnit { .. }) => format!("単位は「{u}」でお答えください。"),
        (Lang::En, NumberError::WrongUnit { .. }) => format!("Please answer in {u}."),
        (Lang::Ja, _) => format!("数字でお答えください（例: 30{u}、約30{u}、３０）。"),
        (Lang::En, _) => format!("Please answer with a number (e.g. 30{u})."),
    }
}
