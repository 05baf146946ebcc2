//! Turning what an owner typed or pressed into a typed answer.
//!
//! Parsing is forgiving (全角 digits, 「約30名」, a choice by number, label
//! or unique prefix) and every refusal comes back as a short sentence in the
//! script's language that says what to type instead.

use super::{choice, PromptKind, PromptOption};
use crate::answer::AnswerValue;
use crate::domain::contact::{Email, PhoneJp};
use crate::domain::date::{parse_when, DateError, When};
use crate::domain::industry::Jsic;
use crate::domain::municipality::{Place, PlaceError};
use crate::domain::number::{parse_quantity_in_phrase, NumberError};
use crate::domain::text::{clean_text, fold_for_match, normalize_input};
use crate::script::{AnswerType, ChoiceOption, Flow, Lang};
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
        AnswerType::Date { .. } => PromptKind::Date,
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
    if let Some(o) = options.iter().find(|o| o.folded.contains(&f)) {
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
fn industry_answer<'o>(options: &'o [ChoiceOption], raw: &str) -> Option<(&'o str, AnswerValue)> {
    // Classifying costs more than the rest of reading a choice; a question
    // without an industry option (most choice questions) cannot use it.
    if !options
        .iter()
        .any(|o| Jsic::SCRIPT_OPTIONS.contains(&o.id.as_str()))
    {
        return None;
    }
    let class = Jsic::classify(raw).ok()?;
    let option = options.iter().find(|o| o.id == class.script_option())?;
    if class.name() == option.label {
        // 「製造業」 is the option itself: 「製造業（製造業）」 would say nothing more.
        return Some((&option.id, AnswerValue::Choice(option.id.clone())));
    }
    Some((
        &option.id,
        AnswerValue::Industry {
            option: option.id.clone(),
            class: class.code().to_string(),
        },
    ))
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
    if !picked {
        match ty {
            AnswerType::Choice { options } => return understand_choice(flow.lang, options, raw),
            AnswerType::Multi { options, min, max } => {
                return understand_multi(flow.lang, options, *min, *max, raw)
            }
            _ => {}
        }
    }
    if let AnswerType::Prefecture = ty {
        // A part of a prefecture: the prefecture is kept (it is what is
        // recorded if the owner cannot say more), and the municipality is
        // asked for, since a hub's area may depend on it.
        if let Err(PlaceError::PartOf { prefecture, part }) = Place::parse(raw) {
            let pref = prefecture.name_ja();
            let ask = match flow.lang {
                Lang::Ja => format!("「{part}」ですね。市区町村名を教えてください（支援機関の担当地域が市区町村で決まることがあります）。市区町村を伝えない場合は「{pref}」とお送りください。"),
                Lang::En => format!("\"{part}\", thank you. Which city, town or village? Please type it in Japanese if you can (e.g. 綾部市), or the postal code (some hubs cover only part of a prefecture). To leave it at the prefecture, type \"{}\".", prefecture.name_en()),
            };
            return Understood::Partial {
                kept: AnswerValue::Prefecture(prefecture.into()),
                ask,
            };
        }
    }
    match parse_whole(flow, ty, raw, picked, today) {
        Ok(v) => Understood::Value(v),
        Err(s) => Understood::Reask(s),
    }
}

fn quoted(lang: Lang, words: &[String]) -> String {
    match lang {
        Lang::Ja => words
            .iter()
            .map(|w| format!("「{w}」"))
            .collect::<Vec<_>>()
            .join(""),
        Lang::En => words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// "Which of these two?" with only the options one word fitted.
fn which_of(lang: Lang, options: &[ChoiceOption], word: Option<&str>, ixs: &[usize]) -> String {
    let items: Vec<String> = ixs
        .iter()
        .map(|i| format!("{} {}", i + 1, options[*i].label))
        .collect();
    match (lang, word) {
        (Lang::Ja, Some(w)) => format!(
            "「{w}」は次のどれに近いですか？番号でお答えください（{}）。",
            items.join("、")
        ),
        (Lang::Ja, None) => format!(
            "ひとつ選んでください。どれに近いですか？（{}）",
            items.join("、")
        ),
        (Lang::En, Some(w)) => format!(
            "Which of these is closest to \"{w}\"? Answer with its number ({}).",
            items.join(", ")
        ),
        (Lang::En, None) => format!(
            "Please choose one: which is closest? ({})",
            items.join(", ")
        ),
    }
}

fn understand_choice(lang: Lang, options: &[ChoiceOption], raw: &str) -> Understood {
    // The exact forms first: a number, a label, an alias, a unique prefix.
    if let Some(o) = match_option(options, raw) {
        // An industry option's alias that names a trade (「旅館」「ホテル」
        // for 飲食・宿泊業) keeps its JSIC class, as 「旅館です」 does: the
        // small-business threshold differs between 飲食 and 宿泊, and the
        // sheet says which. Only a 小分類 or 細分類 (a code of three or four
        // digits) is that specific; a broad alias (「運送業」「介護」
        // 「サービス」) names no more than the option, and neither does a
        // number.
        if !raw
            .trim()
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace())
        {
            if let Some((option, v)) = industry_answer(options, raw) {
                if option == o.id
                    && matches!(&v, AnswerValue::Industry { class, .. } if class.len() >= 3)
                {
                    return Understood::Value(v);
                }
            }
        }
        return Understood::Value(AnswerValue::Choice(o.id.clone()));
    }
    let r = choice::read(options, raw);
    if !r.bad_numbers.is_empty() && r.picks.is_empty() {
        return Understood::Reask(bad_number(lang, options, &r.bad_numbers));
    }
    // A trade named in the owner's words (旅行業, リネンサプライ, 陶器の
    // 製造業です) is classified by JSIC and lands on the script's industry
    // option, keeping the class for the sheet. Only when the reading of the
    // sentence has no doubt of its own: an excluded option (「製造業ではなく」),
    // two options named (「製造業と小売業」) or an ambiguous word are asked
    // back below, and a class must agree with an option the words named.
    // Words of one trade name can touch two options (「情報処理サービス
    // 業」 names 情報 and サービス); without a list separator the class of
    // the whole name decides, as long as it is one of the options named.
    let listed = raw.contains(['と', 'や', '、', ',', '，', '・', '/', '／']) || {
        let lower = raw.to_lowercase();
        lower.contains(" and ") || lower.contains(" or ")
    };
    if r.negated.is_empty() && (r.picks.len() <= 1 || !listed) {
        if let Some((option, v)) = industry_answer(options, raw) {
            let named: Vec<&str> = r
                .picks
                .iter()
                .map(|&i| options[i].id.as_str())
                .chain(
                    r.ambiguous
                        .iter()
                        .flat_map(|(_, g)| g.iter().map(|&i| options[i].id.as_str())),
                )
                .collect();
            if named.is_empty() || named.contains(&option) {
                return Understood::Value(v);
            }
        }
    }
    match r.picks.as_slice() {
        [one] if r.ambiguous.is_empty() => {
            return Understood::Value(AnswerValue::Choice(options[*one].id.clone()))
        }
        [] => {}
        many => {
            // Two options named for one answer: ask which, with only those.
            let mut ixs: Vec<usize> = many.to_vec();
            for (_, g) in &r.ambiguous {
                ixs.extend(g.iter().filter(|i| !ixs.contains(i)).collect::<Vec<_>>());
            }
            ixs.sort();
            return Understood::Reask(which_of(lang, options, None, &ixs));
        }
    }
    if let Some((word, group)) = r.ambiguous.first() {
        return Understood::Reask(which_of(lang, options, Some(word), group));
    }
    // Nothing fitted. Where the question has an option for anything else,
    // the owner's words are kept with it instead of being refused; but
    // never a "don't know", a number or an excluded option.
    if let Some(other) = options.iter().find(|o| o.id == "other") {
        // A question back (「どういう意味？」) is not a trade either.
        let asks = raw.trim_end().ends_with(['?', '？']);
        if !r.unknown.is_empty()
            && r.negated.is_empty()
            && !r.numeric
            && !choice::is_dont_know(raw)
            && !asks
        {
            return Understood::Value(AnswerValue::Other(Box::new(crate::answer::OtherChoice {
                id: other.id.clone(),
                words: clean_text(raw),
            })));
        }
    }
    Understood::Reask(option_list(lang, options))
}

fn bad_number(lang: Lang, options: &[ChoiceOption], bad: &[String]) -> String {
    match lang {
        Lang::Ja => format!(
            "{}番の選択肢はありません（1〜{}番です）。{}",
            bad.join("、"),
            options.len(),
            option_list(lang, options)
        ),
        Lang::En => format!(
            "There is no option {} (the options are 1 to {}). {}",
            bad.join(", "),
            options.len(),
            option_list(lang, options)
        ),
    }
}

fn understand_multi(
    lang: Lang,
    options: &[ChoiceOption],
    min: u32,
    max: u32,
    raw: &str,
) -> Understood {
    // The old reading first: exact options separated by 、 , ・ or spaces.
    if let Ok(v) = parse_multi_exact(lang, options, min, max, raw) {
        return Understood::Value(v);
    }
    let r = choice::read(options, raw);
    let ordered: Vec<String> = options
        .iter()
        .enumerate()
        .filter(|(i, _)| r.picks.contains(i))
        .map(|(_, o)| o.id.clone())
        .collect();
    let n = ordered.len() as u32;
    if n > max {
        return Understood::Reask(count_error(lang, options, min, max));
    }
    let mut doubts: Vec<String> = Vec::new();
    if !r.unknown.is_empty() {
        doubts.push(match lang {
            Lang::Ja => format!("{}は選択肢にありません。", quoted(lang, &r.unknown)),
            Lang::En => format!("{} is not an option.", quoted(lang, &r.unknown)),
        });
    }
    if !r.bad_numbers.is_empty() {
        doubts.push(match lang {
            Lang::Ja => format!(
                "{}番の選択肢はありません（1〜{}番です）。",
                r.bad_numbers.join("、"),
                options.len()
            ),
            Lang::En => format!(
                "There is no option {} (1 to {}).",
                r.bad_numbers.join(", "),
                options.len()
            ),
        });
    }
    for (word, group) in &r.ambiguous {
        doubts.push(which_of(lang, options, Some(word), group));
    }
    if doubts.is_empty() && n >= min && n > 0 {
        return Understood::Value(AnswerValue::Multi(ordered));
    }
    if n == 0 {
        let mut s = doubts.join("");
        if r.ambiguous.is_empty() {
            s.push_str(&option_list(lang, options));
        }
        return Understood::Reask(s);
    }
    // Keep what was understood; ask only about the rest.
    let kept: Vec<String> = options
        .iter()
        .enumerate()
        .filter(|(i, _)| r.picks.contains(i))
        .map(|(_, o)| o.label.clone())
        .collect();
    let mut ask = match lang {
        Lang::Ja => format!("{}は承りました。", quoted(lang, &kept)),
        Lang::En => format!("Noted: {}.", quoted(lang, &kept)),
    };
    ask.push_str(&doubts.join(""));
    if r.ambiguous.is_empty() {
        ask.push_str(match lang {
            Lang::Ja => {
                "ほかに選ぶものがあれば番号か選択肢の言葉で、なければ「以上」とお送りください。"
            }
            Lang::En => "Send any other option by its number or words, or \"that's all\".",
        });
    }
    Understood::Partial {
        kept: AnswerValue::Multi(
            options
                .iter()
                .filter(|o| ordered.contains(&o.id))
                .map(|o| o.id.clone())
                .collect(),
        ),
        ask,
    }
}

fn count_error(lang: Lang, options: &[ChoiceOption], min: u32, max: u32) -> String {
    match lang {
        Lang::Ja => format!(
            "{min}〜{max}個選んでください（区切りは「、」）。{}",
            option_list(lang, options)
        ),
        Lang::En => format!(
            "Choose {min} to {max} options, separated by commas. {}",
            option_list(lang, options)
        ),
    }
}

/// Adds a follow-up to a partly understood multiple choice: the ids of
/// both, in script order.
pub(crate) fn merge_multi(ty: &AnswerType, kept: &AnswerValue, more: &AnswerValue) -> AnswerValue {
    let (AnswerValue::Multi(a), AnswerValue::Multi(b)) = (kept, more) else {
        return more.clone();
    };
    AnswerValue::Multi(
        ty.options()
            .iter()
            .filter(|o| a.contains(&o.id) || b.contains(&o.id))
            .map(|o| o.id.clone())
            .collect(),
    )
}

/// Whether a reply after a partly understood answer means "nothing more".
pub(crate) fn is_done_word(raw: &str) -> bool {
    choice::is_done_word(raw)
}

/// A yes or a no inside a short sentence (「はい、お願いします」, 「大丈夫です、
/// 進めてください」, 「いいえ、やめておきます」, "sure, go ahead"). Both
/// or neither (「いいえ、大丈夫です」) is no answer: the owner is asked again.
fn yes_no_in_sentence(raw: &str) -> Option<bool> {
    const YES: &[&str] = &[
        "はい",
        "うん",
        "ええ",
        "ok",
        "おk",
        "オーケー",
        "大丈夫",
        "だいじょうぶ",
        "お願いします",
        "おねがいします",
        "進めて",
        "すすめて",
        "進めます",
        "進みます",
        "いいです",
        "いいですよ",
        "いいよ",
        "了解",
        "承知",
        "わかりました",
        "分かりました",
        "問題ありません",
        "問題ない",
        "yes",
        "yeah",
        "yep",
        "sure",
        "go ahead",
        "okay",
        "fine",
        "please do",
        "of course",
        "no problem",
        "that's fine",
    ];
    const NO: &[&str] = &[
        "いいえ",
        "いや",
        "やめ",
        "進めない",
        "進めません",
        "進みません",
        "遠慮",
        "しません",
        "同意しない",
        "同意できない",
        "no",
        "nope",
        "stop",
        "not now",
        "rather not",
        "don't want",
        "do not want",
    ];
    let t = crate::domain::text::fold_keep_spaces(raw);
    if t.chars().count() > 40 || choice::is_dont_know(raw) {
        return None;
    }
    let has = |list: &[&str]| {
        list.iter().any(|w| {
            t.match_indices(w).any(|(i, _)| {
                // English words only as whole words ("no" in "know" is not a no).
                !w.is_ascii()
                    || (!t[..i].ends_with(|c: char| c.is_ascii_alphanumeric())
                        && !t[i + w.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
            })
        })
    };
    // 「問題ない」 and "no problem" are yeses that contain a no.
    let yes = has(YES);
    let yes_with_a_no = has(&["問題ない", "no problem", "問題ありません"]);
    let no = has(NO) && (!yes_with_a_no || has(&["いいえ", "いや", "やめ"]));
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
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
            found
                .map(|o| AnswerValue::Choice(o.id.clone()))
                .ok_or_else(|| option_list(lang, options))
        }
        AnswerType::Multi { options, min, max } => {
            if picked {
                let mut ids: Vec<&str> = Vec::new();
                for p in raw.split(',') {
                    match options.iter().find(|o| o.id == p) {
                        Some(o) if !ids.contains(&o.id.as_str()) => ids.push(&o.id),
                        Some(_) => {}
                        None => return Err(option_list(lang, options)),
                    }
                }
                let n = ids.len() as u32;
                if n < *min || n > *max {
                    return Err(count_error(lang, options, *min, *max));
                }
                return Ok(AnswerValue::Multi(
                    options
                        .iter()
                        .filter(|o| ids.contains(&o.id.as_str()))
                        .map(|o| o.id.clone())
                        .collect(),
                ));
            }
            parse_multi_exact(lang, options, *min, *max, raw)
        }
        AnswerType::YesNo | AnswerType::Consent { .. } => {
            let f = fold_for_match(raw);
            let consent = matches!(ty, AnswerType::Consent { .. });
            if f == "yes" || f == "1" || super::words::YES.contains(&f) {
                Ok(AnswerValue::Bool(true))
            } else if f == "no" || f == "2" || super::words::NO.contains(&f) {
                Ok(AnswerValue::Bool(false))
            } else if let (false, Some(b)) = (consent, yes_no_in_sentence(raw)) {
                // Only at a plain yes/no question: consent stays exact, since
                // a misread "yes" there would share the owner's data.
                Ok(AnswerValue::Bool(b))
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
            let u = unit.as_deref();
            let q = parse_quantity_in_phrase(raw, u).map_err(|e| number_error(lang, &e, u, *min, *max))?;
            let out_of_range = min.is_some_and(|lo| q.value < lo) || max.is_some_and(|hi| q.value > hi);
            if out_of_range {
                return Err(range_message(lang, u, *min, *max));
            }
            Ok(AnswerValue::Number(q))
        }
        AnswerType::Prefecture => Place::parse(raw)
            .map(AnswerValue::Prefecture)
            .map_err(|e| place_error(lang, &e)),
        AnswerType::Email => Email::parse(raw)
            .or_else(|e| without_labels(raw, EMAIL_LABELS).map_or(Err(e), |v| Email::parse(&v)))
            .map(AnswerValue::Email)
            .map_err(|_| {
            t(
                lang,
                "メールアドレスの形でお答えください（例: name@example.jp）。",
                "Please give an email address like name@example.jp.",
            )
        }),
        // The parser's reason (wrong length, not in the numbering plan, …)
        // is what the owner needs to correct the number.
        AnswerType::Phone => PhoneJp::parse(raw)
            .or_else(|e| without_labels(raw, PHONE_LABELS).map_or(Err(e), |v| PhoneJp::parse(&v)))
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
        AnswerType::Date { future } => match parse_when(raw, today) {
            Ok(w) if *future && w.last_day().is_some_and(|d| d < today) => Err(past_message(lang, &w)),
            Ok(When::Date(d)) => Ok(AnswerValue::Date(d)),
            Ok(When::Period(p)) => Ok(AnswerValue::Period(Box::new(p))),
            Err(DateError::InvalidDate(_)) => Err(t(
                lang,
                "その日付は暦にありません。月と日をご確認ください（例: 2027年4月1日）。",
                "That date does not exist. Please check the month and day (e.g. 1 April 2027).",
            )),
            Err(DateError::OutOfRange(_)) => Err(t(
                lang,
                "1900年から2100年までの時期でお答えください。",
                "Please give a time between 1900 and 2100.",
            )),
            Err(_) => Err(t(
                lang,
                "時期を教えてください（例: 2027年4月、来年の春、今年度中、なるべく早く）。",
                "Please say when, e.g. April 2027, next spring, this fiscal year or as soon as possible.",
            )),
        },
    }
}

/// Why a time wholly in the past is asked again, on a question about a
/// time ahead (`future: true`): most often the year is a slip (2026年4月
/// written in November 2026 for next April).
fn past_message(lang: Lang, w: &When) -> String {
    let (ja, en) = match w {
        When::Date(d) => (d.to_string(), d.display_en()),
        When::Period(p) => (p.display(true), p.display(false)),
    };
    t(
        lang,
        &format!("{ja}はもう過ぎています。これからの時期でお答えください（例: 来年4月、半年後、なるべく早く）。"),
        &format!("{en} has already passed. Please give a time ahead (e.g. next April, in six months, as soon as possible)."),
    )
}

/// Examples in the question's unit, so a headcount is never shown 「30円」.
fn examples(lang: Lang, unit: Option<&str>) -> &'static str {
    match (lang, unit) {
        (Lang::Ja, Some("名")) => "例: 30名、約30名、３０",
        (Lang::Ja, Some("円")) => "例: 1,000万円、1億円、3,825万円",
        (Lang::Ja, Some("年")) => "例: 5年、約10年",
        (Lang::Ja, Some("ヶ月")) => "例: 6ヶ月、1年半",
        (Lang::Ja, Some("日")) => "例: 10日",
        (Lang::Ja, Some("%")) => "例: 20%",
        (Lang::Ja, _) => "例: 30",
        (Lang::En, Some("名")) => "e.g. 30 or about 30",
        (Lang::En, Some("円")) => "e.g. 10 million yen or 10,000,000",
        (Lang::En, Some("年")) => "e.g. 5 years",
        (Lang::En, Some("ヶ月")) => "e.g. 6 months",
        (Lang::En, Some("日")) => "e.g. 10 days",
        (Lang::En, Some("%")) => "e.g. 20%",
        (Lang::En, _) => "e.g. 30",
    }
}

fn amount(lang: Lang, v: f64, unit: Option<&str>) -> String {
    let q = crate::domain::number::Quantity {
        value: v,
        unit: unit.map(Box::from),
        approx: false,
        detail: None,
    };
    match lang {
        Lang::Ja => q.to_string(),
        Lang::En => q.display_en(),
    }
}

/// Says which values the question takes: the range, or the one bound.
fn range_message(lang: Lang, unit: Option<&str>, min: Option<f64>, max: Option<f64>) -> String {
    let ex = examples(lang, unit);
    match (lang, min, max) {
        (Lang::Ja, Some(lo), Some(hi)) => format!(
            "{}から{}までの数でお答えください（{ex}）。",
            amount(lang, lo, unit),
            amount(lang, hi, unit)
        ),
        (Lang::Ja, Some(lo), None) => {
            format!("{}以上でお答えください（{ex}）。", amount(lang, lo, unit))
        }
        (Lang::Ja, None, Some(hi)) => {
            format!("{}以下でお答えください（{ex}）。", amount(lang, hi, unit))
        }
        (Lang::Ja, None, None) => format!("数でお答えください（{ex}）。"),
        (Lang::En, Some(lo), Some(hi)) => format!(
            "Please give a number from {} to {} ({ex}).",
            amount(lang, lo, unit),
            amount(lang, hi, unit)
        ),
        (Lang::En, Some(lo), None) => {
            format!("Please give at least {} ({ex}).", amount(lang, lo, unit))
        }
        (Lang::En, None, Some(hi)) => {
            format!("Please give at most {} ({ex}).", amount(lang, hi, unit))
        }
        (Lang::En, None, None) => format!("Please answer with a number ({ex})."),
    }
}

/// What to ask when a location is not understood: the prefectures of a
/// region, the candidates of a name several municipalities share, or an
/// example of each accepted form.
/// Words owners put before an e-mail address (「メールは」「アドレス：」).
/// Longer labels come first: the first label the answer starts with is
/// the one taken away.
const EMAIL_LABELS: &[&str] = &[
    "携帯のメールアドレス",
    "携帯メールアドレス",
    "携帯のメール",
    "携帯メール",
    "会社のメールアドレス",
    "会社のメール",
    "pcのメールアドレス",
    "pcのメール",
    "pcメール",
    "メールアドレス",
    "アドレス",
    "メール",
    "e-mail",
    "email",
    "mail",
];

/// Words owners put before a phone number (「携帯 090-…」「会社の電話は」).
const PHONE_LABELS: &[&str] = &[
    "携帯電話",
    "携帯",
    "電話番号",
    "固定電話",
    "電話",
    "会社の電話",
    "会社",
    "自宅",
    "代表",
    "直通",
    "tel",
    "mobile",
    "phone",
];

/// The answer without a label before or after it and a polite ending
/// after it (「携帯 090-1234-5678」, 「090-1234-5678 携帯」, 「yamada@example.jp
/// です」), when there was one to take away; anything else in it (「内線12」)
/// stays, and the answer is asked again as before. Only words that say
/// nothing the value does not are removed (a phone note in brackets is the
/// phone parser's to drop).
fn without_labels(raw: &str, labels: &[&str]) -> Option<String> {
    let n = normalize_input(raw);
    let mut t = n.trim();
    let lower = t.to_lowercase();
    if let Some(l) = labels.iter().find(|l| lower.starts_with(&l.to_lowercase())) {
        t = t[l.len()..].trim_start();
        t = t
            .strip_prefix("の番号")
            .or_else(|| t.strip_prefix("番号"))
            .unwrap_or(t)
            .trim_start();
        t = t
            .trim_start_matches([':', '：', 'は', '、', ',', ' ', '='])
            .trim_start();
    }
    for ending in ["でお願いします", "になります", "です", "。", "."] {
        if let Some(rest) = t.strip_suffix(ending) {
            t = rest.trim_end();
        }
    }
    // A label after the value names it as one before does (「090-1234-5678
    // 携帯」). An English label must stand apart, so that the end of an
    // address (taro@hotmail) is never taken for one.
    let lower = t.to_lowercase();
    if let Some(l) = labels.iter().find(|l| {
        let l = l.to_lowercase();
        lower.strip_suffix(&l).is_some_and(|rest| {
            !rest.trim().is_empty() && (!l.is_ascii() || rest.ends_with(char::is_whitespace))
        })
    }) {
        t = t[..t.len() - l.len()]
            .trim_end()
            .trim_end_matches(['、', ',', '/'])
            .trim_end();
    }
    (t != n.trim() && !t.is_empty()).then(|| t.to_string())
}

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
        (Lang::Ja, PlaceError::WardOfSeveralCities { ward, cities }) => format!(
            "「{ward}」は{cities}にあります。市の名前からお答えください（例: 神戸市{ward}、東京都{ward}）。"
        ),
        (Lang::En, PlaceError::WardOfSeveralCities { ward, cities }) => format!(
            "There is a {ward} in several cities ({cities}). Please give the city too (e.g. 神戸市{ward} or 東京都{ward})."
        ),
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

fn number_error(
    lang: Lang,
    e: &NumberError,
    unit: Option<&str>,
    min: Option<f64>,
    max: Option<f64>,
) -> String {
    let u = unit.unwrap_or("");
    let ex = examples(lang, unit);
    match (lang, e) {
        (Lang::Ja, NumberError::Range(_)) => {
            format!("幅ではなくひとつの数でお答えください。おおよそで大丈夫です（{ex}）。")
        }
        (Lang::En, NumberError::Range(_)) => {
            format!("Please give one number, not a range; an estimate is fine ({ex}).")
        }
        (Lang::Ja, NumberError::Negative(_)) => format!(
            "マイナスの数はお答えにできません。{}",
            range_message(lang, unit, min.or(Some(0.0)), max)
        ),
        (Lang::En, NumberError::Negative(_)) => format!(
            "A negative number cannot be the answer here. {}",
            range_message(lang, unit, min.or(Some(0.0)), max)
        ),
        (_, NumberError::TooLarge) | (_, NumberError::OutOfRange { .. }) => {
            let limit = max.unwrap_or(1e15 - 1.0);
            match lang {
                Lang::Ja => format!(
                    "数が大きすぎます。{}以下でお答えください（{ex}）。",
                    amount(lang, limit, unit)
                ),
                Lang::En => format!(
                    "That number is too large: the limit is {} ({ex}).",
                    amount(lang, limit, unit)
                ),
            }
        }
        (Lang::Ja, NumberError::Money(_)) => {
            format!("金額のようです。人数を数でお答えください（{ex}）。")
        }
        (Lang::En, NumberError::Money(_)) => {
            format!("That looks like an amount of money: please give the number of people ({ex}).")
        }
        (Lang::Ja, NumberError::Several(_)) => {
            format!(
                "数がいくつか書かれています。お答えにする数をひとつだけ送ってください（{ex}）。"
            )
        }
        (Lang::En, NumberError::Several(_)) => {
            format!("There is more than one number: please send just the one asked for ({ex}).")
        }
        (Lang::Ja, NumberError::WrongUnit { .. }) => {
            format!("単位は「{u}」でお答えください（{ex}）。")
        }
        (Lang::En, NumberError::WrongUnit { .. }) => format!("Please answer in {u} ({ex})."),
        (Lang::Ja, NumberError::UnknownWord(w)) => {
            format!("「{w}」を数として読み取れませんでした。数字でお答えください（{ex}）。")
        }
        (Lang::En, NumberError::UnknownWord(w)) => format!(
            "\"{w}\" after the number could not be read: please write the number in digits ({ex})."
        ),
        (Lang::Ja, NumberError::Total(_)) => {
            format!("合計で何名ですか？社長やパートの方も含めた人数を数字でお答えください（{ex}）。")
        }
        (Lang::En, NumberError::Total(_)) => format!(
            "How many people in total? Please give the number of everyone, the owner and part-timers included ({ex})."
        ),
        (Lang::Ja, NumberError::NotInteger(_)) => format!("整数でお答えください（{ex}）。"),
        (Lang::En, NumberError::NotInteger(_)) => format!("Please give a whole number ({ex})."),
        (Lang::Ja, _) => format!("数が読み取れませんでした。数字でお答えください（{ex}）。"),
        (Lang::En, _) => format!("No number could be read: please answer with a number ({ex})."),
    }
}

/// The strict reading of a multiple choice: options (numbers, labels,
/// aliases, unique prefixes) separated by 「、」, commas, 「・」 or spaces.
fn parse_multi_exact(
    lang: Lang,
    options: &[ChoiceOption],
    min: u32,
    max: u32,
    raw: &str,
) -> Result<AnswerValue, String> {
    // Strong separators first; a piece that is not an option is split again
    // on 「・」 and spaces, so labels that contain 「・」 (売上・販路拡大) still
    // match when typed in full.
    let mut parts: Vec<&str> = Vec::new();
    for piece in raw.split([',', '、', '，', '､', '/', '／', '\n', ';', '；']) {
        if piece.trim().is_empty() {
            continue;
        }
        if match_option(options, piece).is_some() {
            parts.push(piece);
        } else {
            parts.extend(
                piece
                    .split(['・', ' ', '\u{3000}'])
                    .filter(|s| !s.trim().is_empty()),
            );
        }
    }
    let mut ids: Vec<&str> = Vec::new();
    for p in parts {
        match match_option(options, p) {
            Some(o) if !ids.contains(&o.id.as_str()) => ids.push(&o.id),
            Some(_) => {}
            None => return Err(option_list(lang, options)),
        }
    }
    let n = ids.len() as u32;
    if n < min || n > max {
        return Err(count_error(lang, options, min, max));
    }
    // Keep script order so summaries read the same way every time.
    Ok(AnswerValue::Multi(
        options
            .iter()
            .filter(|o| ids.contains(&o.id.as_str()))
            .map(|o| o.id.clone())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label is taken away before or after the value; nothing else is.
    #[test]
    fn labels_before_and_after_the_value_are_taken_away() {
        let email = |s| without_labels(s, EMAIL_LABELS);
        let phone = |s| without_labels(s, PHONE_LABELS);
        assert_eq!(
            email("携帯のメール: taro.y@docomo.ne.jp").as_deref(),
            Some("taro.y@docomo.ne.jp")
        );
        assert_eq!(
            email("会社のメールアドレスはyamada@example.jp です").as_deref(),
            Some("yamada@example.jp")
        );
        assert_eq!(
            phone("090-1234-5678 携帯").as_deref(),
            Some("090-1234-5678")
        );
        assert_eq!(
            phone("090-1234-5678、携帯です").as_deref(),
            Some("090-1234-5678")
        );
        assert_eq!(phone("078-123-4567 TEL").as_deref(), Some("078-123-4567"));
        // The end of an address is not an English label, and an extension
        // stays for the owner to be asked again.
        assert_eq!(email("taro@hotmail"), None);
        assert_eq!(phone("0773-42-1234 内線12"), None);
    }
}
