//! What an owner sees on Discord: an engine turn as message content and
//! components, within Discord's limits, and the `custom_id` scheme that
//! ties a press back to its question.
//!
//! Pure functions over JSON (no I/O), so they are unit-tested here.
//!
//! # custom_id scheme (at most 100 characters)
//!
//! | id | component | input |
//! |---|---|---|
//! | `q:{session}:{node}:{option}` | answer button (choice, yes/no, confirm "send") | `Pick` |
//! | `q:{session}:{node}` / `q:{session}:{node}:~{k}` | string select (choice, multi, prefecture, confirm correction) | `Pick` with the values |
//! | `p:{session}:{node}` | region select of a prefecture question | shows the region's prefectures |
//! | `m:{session}:{node}` | "answer in a form" button of a text question | opens modal `t:{session}:{node}` |
//! | `c:{session}:{command}:{node}` | global command button under the question of `node` (the node only tells which question the message carried) | `Command` |
//!
//! `session` is the session id and `node` the node's index in the session's
//! pinned flow (both decimal), so ids stay short whatever the script calls
//! its nodes. An option id that would not fit is sent as `#{index}`.
//! Together with the stored id of the message that carries the current
//! question ([`crate::store::LivePrompt`]) this makes stale presses
//! detectable: a press on another message, for another session, or for a
//! question the engine has moved past is answered with a polite ephemeral
//! note.

use crate::domain::prefecture::Region;
use crate::engine::{Effect, Prompt, PromptKind, PromptOption};
use crate::script::{Command, Flow, Lang};
use serde_json::{json, Value};

/// Discord's limits used here.
pub const MAX_CONTENT: usize = 2000;
pub const MAX_CUSTOM_ID: usize = 100;
pub const MAX_BUTTON_LABEL: usize = 80;
pub const MAX_OPTION_LABEL: usize = 100;
pub const MAX_SELECT_OPTIONS: usize = 25;
pub const MAX_ROWS: usize = 5;
pub const MAX_MODAL_INPUT: usize = 4000;
pub const MAX_MODAL_LABEL: usize = 45;
/// Text questions allowing longer answers than this offer a form (modal).
pub const MODAL_ABOVE: usize = 100;

pub const STYLE_PRIMARY: u64 = 1;
pub const STYLE_SECONDARY: u64 = 2;
pub const STYLE_SUCCESS: u64 = 3;
pub const STYLE_DANGER: u64 = 4;

pub use crate::render::prompt::{
    command_id, command_label, modal_id, split_text, t, truncate, OwnerId,
};

/// The kinds of owner-side custom_id on Discord (see the table above).
const ID_KINDS: [char; 5] = ['q', 'p', 'm', 't', 'c'];

/// Reads an owner-side custom_id of Discord's scheme.
pub fn owner_id(s: &str) -> Option<OwnerId> {
    OwnerId::parse(s, &ID_KINDS)
}

/// The session and node index of the question a message (as Discord
/// returns it) carried, read from its command buttons.
pub fn question_of(message_components: &[Value]) -> Option<(i64, u16)> {
    let ids: Vec<&str> = message_components
        .iter()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .filter_map(|c| c["custom_id"].as_str())
        .collect();
    crate::render::prompt::question_of(ids, &ID_KINDS)
}

fn id(kind: char, session: i64, node: u16, arg: Option<&str>) -> String {
    crate::render::prompt::id(kind, session, node, arg)
}

fn answer_id(session: i64, node: u16, option_id: &str, index: usize) -> String {
    crate::render::prompt::answer_id(session, node, option_id, index, MAX_CUSTOM_ID)
}

/// `allowed_mentions` that lets nothing ping.
pub fn no_mentions() -> Value {
    json!({ "parse": [] })
}

pub fn button(custom_id: &str, label: &str, style: u64) -> Value {
    json!({ "type": 2, "custom_id": custom_id, "label": truncate(label, MAX_BUTTON_LABEL), "style": style })
}

pub fn select(
    custom_id: &str,
    placeholder: &str,
    options: Vec<Value>,
    min: usize,
    max: usize,
) -> Value {
    json!({
        "type": 3,
        "custom_id": custom_id,
        "placeholder": truncate(placeholder, 150),
        "options": options,
        "min_values": min,
        "max_values": max,
    })
}

pub fn option(label: &str, value: &str) -> Value {
    json!({ "label": truncate(label, MAX_OPTION_LABEL), "value": value })
}

pub fn row(components: Vec<Value>) -> Value {
    json!({ "type": 1, "components": components })
}

/// The row of global commands under every question (their ids carry the
/// question's node, see [`crate::render::prompt::command_id_at`]).
pub fn command_row(session: i64, node: u16, lang: Lang) -> Value {
    let cs = [
        Command::Help,
        Command::Back,
        Command::Answers,
        Command::Restart,
        Command::Cancel,
    ];
    row(cs
        .iter()
        .map(|c| {
            button(
                &crate::render::prompt::command_id_at(session, node, *c),
                command_label(*c, lang),
                STYLE_SECONDARY,
            )
        })
        .collect())
}

/// One Discord message of a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct OutMessage {
    pub content: String,
    /// Action rows (empty: no components).
    pub components: Vec<Value>,
    /// The node whose question this message carries.
    pub question: Option<String>,
}

/// Renders a turn's effects as the messages to send: every `Say` and the
/// question together in one message (more only when the text exceeds
/// 2,000 characters; the question's components go on the last one).
pub fn turn_messages(effects: &[Effect], flow: &Flow, session: i64) -> Vec<OutMessage> {
    let lang = flow.lang;
    let mut texts: Vec<String> = Vec::new();
    let mut prompt: Option<&Prompt> = None;
    for e in effects {
        match e {
            Effect::Say(s) => texts.push(s.clone()),
            Effect::Ask(p) => prompt = Some(p),
            _ => {}
        }
    }
    let mut components = Vec::new();
    if let Some(p) = prompt {
        let node = flow.index_of(&p.node).unwrap_or(0);
        let (rows, hint) = prompt_components(p, lang, session, node);
        let mut text = p.text.clone();
        if let Some(h) = hint {
            text.push_str("\n-# ");
            text.push_str(&h);
        }
        texts.push(text);
        components = rows;
        components.push(command_row(session, node, lang));
    }
    let content = texts.join("\n\n");
    let mut pieces = split_text(&content, MAX_CONTENT);
    if pieces.is_empty() && !components.is_empty() {
        pieces.push("…".into());
    }
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, content)| {
            let last = i + 1 == n;
            OutMessage {
                content,
                components: if last { components.clone() } else { Vec::new() },
                question: if last {
                    prompt.map(|p| p.node.clone())
                } else {
                    None
                },
            }
        })
        .collect()
}

/// Components for one question (without the command row) and a short hint
/// saying what else the owner may do.
pub fn prompt_components(
    p: &Prompt,
    lang: Lang,
    session: i64,
    node: u16,
) -> (Vec<Value>, Option<String>) {
    let skip = || {
        button(
            &command_id(session, Command::Skip),
            command_label(Command::Skip, lang),
            STYLE_SECONDARY,
        )
    };
    let mut rows: Vec<Value> = Vec::new();
    let mut hint = None;
    // Rows available to the question: five minus the command row, minus a
    // row for "skip" where it does not share a row.
    match &p.kind {
        PromptKind::Choice { options } => {
            let n = options.len() + usize::from(p.optional);
            if n <= 4 * 5 {
                let mut buttons: Vec<Value> = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        button(&answer_id(session, node, &o.id, i), &o.label, STYLE_PRIMARY)
                    })
                    .collect();
                if p.optional {
                    buttons.push(skip());
                }
                rows.extend(buttons.chunks(5).map(|c| row(c.to_vec())));
            } else {
                // Four rows are left beside the command row; "skip" takes one.
                let menus = if p.optional { 3 } else { 4 };
                rows.extend(choice_selects(options, lang, session, node, menus));
                if p.optional {
                    rows.push(row(vec![skip()]));
                }
                hint = Some(t(
                    lang,
                    "メニューから選ぶか、番号を入力してください。",
                    "Pick from the menu or type the number.",
                ));
                if options.len() > menus * MAX_SELECT_OPTIONS {
                    hint = Some(format!(
                        "{}\n{}",
                        hint.unwrap_or_default(),
                        numbered(options)
                    ));
                }
            }
        }
        PromptKind::YesNo { options } => {
            let mut b: Vec<Value> = options
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    button(
                        &answer_id(session, node, &o.id, i),
                        &o.label,
                        if o.id == "yes" {
                            STYLE_SUCCESS
                        } else {
                            STYLE_SECONDARY
                        },
                    )
                })
                .collect();
            if p.optional {
                b.push(skip());
            }
            rows.push(row(b));
        }
        PromptKind::Multi { options, min, max } => {
            if options.len() <= MAX_SELECT_OPTIONS {
                let opts = options.iter().map(|o| option(&o.label, &o.id)).collect();
                let max = (*max as usize).clamp(1, options.len().max(1));
                let min = (*min as usize).min(max);
                let ph = t(
                    lang,
                    "当てはまるものをすべて選んでください",
                    "Choose all that apply",
                );
                rows.push(row(vec![select(
                    &id('q', session, node, None),
                    &ph,
                    opts,
                    min,
                    max,
                )]));
                hint = Some(t(
                    lang,
                    "複数選べます。番号を「、」で区切って入力しても答えられます。",
                    "You can choose several, or type their numbers separated by commas.",
                ));
            } else {
                hint = Some(format!(
                    "{}\n{}",
                    t(
                        lang,
                        "番号を「、」で区切って入力してください。",
                        "Type the numbers separated by commas."
                    ),
                    numbered(options)
                ));
            }
            if p.optional {
                rows.push(row(vec![skip()]));
            }
        }
        PromptKind::Text { max } => {
            let mut b = Vec::new();
            if *max > MODAL_ABOVE {
                b.push(button(
                    &id('m', session, node, None),
                    &t(lang, "入力フォームで答える", "Answer in a form"),
                    STYLE_PRIMARY,
                ));
                hint = Some(t(
                    lang,
                    "このDMにそのまま書いて送るか、「入力フォームで答える」を押してください。",
                    "Type your answer here, or press \"Answer in a form\".",
                ));
            }
            if p.optional {
                b.push(skip());
            }
            if !b.is_empty() {
                rows.push(row(b));
            }
        }
        PromptKind::Prefecture => {
            let opts = Region::ALL
                .iter()
                .map(|r| option(&region_label(*r, lang), region_key(*r)))
                .collect();
            let ph = t(lang, "地方を選ぶ", "Choose a region");
            rows.push(row(vec![select(
                &id('p', session, node, None),
                &ph,
                opts,
                1,
                1,
            )]));
            if p.optional {
                rows.push(row(vec![skip()]));
            }
            hint = Some(t(
                lang,
                "地方を選んでから都道府県を選ぶか、都道府県名を入力してください。",
                "Choose the region, then the prefecture, or type the prefecture's name.",
            ));
        }
        PromptKind::Number { unit } => {
            if p.optional {
                rows.push(row(vec![skip()]));
            }
            hint = unit.as_ref().map(|u| {
                t(
                    lang,
                    &format!("数字で入力してください（単位: {u}）。"),
                    &format!(
                        "Type a number (unit: {}).",
                        crate::render::prompt::unit_for(Lang::En, u)
                    ),
                )
            });
        }
        PromptKind::Email | PromptKind::Phone | PromptKind::Date => {
            if p.optional {
                rows.push(row(vec![skip()]));
            }
        }
        PromptKind::Confirm {
            send, items, more, ..
        } => {
            let mut b = vec![button(
                &answer_id(session, node, &send.id, 0),
                &send.label,
                STYLE_SUCCESS,
            )];
            // "Do not agree" and "why these recipients" when the
            // confirmation is also the consent question.
            for (k, o) in more.iter().enumerate() {
                let style = if o.id == "decline" {
                    STYLE_DANGER
                } else {
                    STYLE_SECONDARY
                };
                b.push(button(
                    &answer_id(session, node, &o.id, k + 1),
                    &o.label,
                    style,
                ));
            }
            if p.optional {
                b.push(skip());
            }
            rows.push(row(b));
            if !items.is_empty() {
                let opts = items
                    .iter()
                    .take(MAX_SELECT_OPTIONS)
                    .enumerate()
                    .map(|(i, o)| option(&format!("{}. {}", i + 1, plain_label(&o.label)), &o.id))
                    .collect();
                let ph = t(lang, "直したい項目を選ぶ", "Choose an item to correct");
                rows.push(row(vec![select(
                    &id('q', session, node, None),
                    &ph,
                    opts,
                    1,
                    1,
                )]));
            }
        }
    }
    rows.truncate(MAX_ROWS - 1);
    (rows, hint)
}

/// Option labels arrive markdown-escaped (they may contain the owner's
/// answers); select labels show text as is, so the escapes are removed.
fn plain_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out.replace('\n', " ")
}

fn numbered(options: &[PromptOption]) -> String {
    options
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{}. {}", i + 1, o.label))
        .collect::<Vec<_>>()
        .join("\n")
}

fn choice_selects(
    options: &[PromptOption],
    lang: Lang,
    session: i64,
    node: u16,
    max_rows: usize,
) -> Vec<Value> {
    let chunks: Vec<&[PromptOption]> = options.chunks(MAX_SELECT_OPTIONS).take(max_rows).collect();
    let many = chunks.len() > 1;
    chunks
        .iter()
        .enumerate()
        .map(|(k, chunk)| {
            let start = k * MAX_SELECT_OPTIONS;
            let opts = chunk
                .iter()
                .enumerate()
                .map(|(i, o)| option(&format!("{}. {}", start + i + 1, o.label), &o.id))
                .collect();
            let cid = if many {
                id('q', session, node, Some(&format!("~{k}")))
            } else {
                id('q', session, node, None)
            };
            let ph = if many {
                t(
                    lang,
                    &format!("選ぶ（{}〜{}）", start + 1, start + chunk.len()),
                    &format!("Choose ({}–{})", start + 1, start + chunk.len()),
                )
            } else {
                t(lang, "選ぶ", "Choose")
            };
            row(vec![select(&cid, &ph, opts, 1, 1)])
        })
        .collect()
}

pub fn region_key(r: Region) -> &'static str {
    match r {
        Region::Hokkaido => "hokkaido",
        Region::Tohoku => "tohoku",
        Region::Kanto => "kanto",
        Region::Chubu => "chubu",
        Region::Kinki => "kinki",
        Region::Chugoku => "chugoku",
        Region::Shikoku => "shikoku",
        Region::KyushuOkinawa => "kyushu_okinawa",
    }
}

pub fn region_from_key(k: &str) -> Option<Region> {
    Region::ALL.into_iter().find(|r| region_key(*r) == k)
}

fn region_label(r: Region, lang: Lang) -> String {
    match lang {
        Lang::Ja => r.name_ja().to_string(),
        Lang::En => r.name_en().to_string(),
    }
}

/// After a region is chosen: the same components with the region marked
/// and a select of that region's prefectures under it.
pub fn with_prefectures(
    rows: &Value,
    region: Region,
    session: i64,
    node: u16,
    lang: Lang,
) -> Value {
    let region_id = id('p', session, node, None);
    let pref_id = id('q', session, node, None);
    let mut out = Vec::new();
    for r in rows.as_array().cloned().unwrap_or_default() {
        let cs = r["components"].as_array().cloned().unwrap_or_default();
        if cs.iter().any(|c| c["custom_id"] == pref_id.as_str()) {
            continue;
        }
        if cs.iter().any(|c| c["custom_id"] == region_id.as_str()) {
            let mut r = r.clone();
            if let Some(opts) = r["components"][0]["options"].as_array_mut() {
                for o in opts {
                    let chosen = o["value"] == region_key(region);
                    o["default"] = json!(chosen);
                }
            }
            out.push(r);
            let opts = region
                .prefectures()
                .iter()
                .map(|p| {
                    option(
                        if lang == Lang::Ja {
                            p.name_ja()
                        } else {
                            p.name_en()
                        },
                        p.name_ja(),
                    )
                })
                .collect();
            let ph = t(lang, "都道府県を選ぶ", "Choose the prefecture");
            out.push(row(vec![select(&pref_id, &ph, opts, 1, 1)]));
            continue;
        }
        out.push(r);
    }
    Value::Array(out)
}

/// What the owner chose, to show on the disabled components.
#[derive(Debug, Clone, Default)]
pub struct Chosen {
    pub custom_id: String,
    pub values: Vec<String>,
}

/// The same components, all disabled, with the pressed button (or the
/// chosen select values) marked, so the message keeps showing what was
/// answered and old buttons cannot be pressed again.
pub fn disabled(rows: &Value, chosen: Option<&Chosen>) -> Value {
    let mut rows = rows.clone();
    if let Some(list) = rows.as_array_mut() {
        for r in list {
            let Some(cs) = r["components"].as_array_mut() else {
                continue;
            };
            for c in cs {
                c["disabled"] = json!(true);
                let is_chosen = chosen.is_some_and(|ch| c["custom_id"] == ch.custom_id.as_str());
                match c["type"].as_u64() {
                    Some(2) if c["style"].as_u64() != Some(5) => {
                        if is_chosen {
                            c["style"] = json!(STYLE_SUCCESS);
                        } else if chosen.is_some() {
                            c["style"] = json!(STYLE_SECONDARY);
                        }
                    }
                    Some(3) if is_chosen => {
                        let values = &chosen.map(|c| c.values.clone()).unwrap_or_default();
                        if let Some(opts) = c["options"].as_array_mut() {
                            for o in opts {
                                let v = o["value"].as_str().unwrap_or_default().to_string();
                                o["default"] = json!(values.contains(&v));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(id: &str, label: &str) -> PromptOption {
        PromptOption {
            id: id.into(),
            label: label.into(),
        }
    }

    fn all_ids(rows: &[Value]) -> Vec<String> {
        rows.iter()
            .flat_map(|r| r["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["custom_id"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn ids_round_trip_and_stay_short() {
        let i = owner_id("q:12:7:manufacturing").unwrap();
        assert_eq!(
            (i.kind, i.session, i.node, i.option()),
            ('q', 12, 7, Some("manufacturing"))
        );
        assert_eq!(owner_id("q:12:7:~1").unwrap().option(), None);
        assert_eq!(owner_id("c:3:help").unwrap().arg.as_deref(), Some("help"));
        assert!(owner_id("s:claim:1").is_none());
        assert!(owner_id("q:x:1").is_none());
        let long = "x".repeat(120);
        let b = answer_id(99999999, 65535, &long, 4);
        assert_eq!(b, "q:99999999:65535:#4");
        assert!(b.len() <= MAX_CUSTOM_ID);
    }

    #[test]
    fn choices_become_buttons_or_selects_within_limits() {
        let p = Prompt {
            node: "industry".into(),
            text: "業種は？".into(),
            kind: PromptKind::Choice {
                options: (0..9)
                    .map(|i| opt(&format!("o{i}"), &format!("選択肢{i}")))
                    .collect(),
            },
            optional: false,
        };
        let (rows, _) = prompt_components(&p, Lang::Ja, 5, 3);
        assert_eq!(rows.len(), 2);
        assert!(rows
            .iter()
            .all(|r| r["components"].as_array().unwrap().len() <= 5));
        assert_eq!(all_ids(&rows)[0], "q:5:3:o0");

        let many = Prompt {
            kind: PromptKind::Choice {
                options: (0..60).map(|i| opt(&format!("o{i}"), "x")).collect(),
            },
            optional: true,
            ..p.clone()
        };
        let (rows, hint) = prompt_components(&many, Lang::En, 5, 3);
        assert!(rows.len() < MAX_ROWS);
        let selects: Vec<&Value> = rows
            .iter()
            .map(|r| &r["components"][0])
            .filter(|c| c["type"] == 3)
            .collect();
        assert_eq!(selects.len(), 3);
        assert!(selects
            .iter()
            .all(|s| s["options"].as_array().unwrap().len() <= MAX_SELECT_OPTIONS));
        assert_eq!(
            all_ids(&rows),
            ["q:5:3:~0", "q:5:3:~1", "q:5:3:~2", "c:5:skip"]
        );
        assert!(!hint.unwrap().contains("60. x"), "all 60 fit in the menus");
        let huge = Prompt {
            kind: PromptKind::Choice {
                options: (0..120).map(|i| opt(&format!("o{i}"), "x")).collect(),
            },
            optional: false,
            ..p.clone()
        };
        let (rows, hint) = prompt_components(&huge, Lang::En, 5, 3);
        assert_eq!(rows.len(), 4);
        assert!(
            hint.unwrap().contains("120. x"),
            "options beyond the menus can be typed"
        );
    }

    #[test]
    fn multi_prefecture_text_and_confirm() {
        let multi = Prompt {
            node: "n".into(),
            text: "t".into(),
            kind: PromptKind::Multi {
                options: vec![opt("a", "A"), opt("b", "B"), opt("c", "C")],
                min: 1,
                max: 9,
            },
            optional: false,
        };
        let (rows, _) = prompt_components(&multi, Lang::Ja, 1, 2);
        let s = &rows[0]["components"][0];
        assert_eq!(
            (s["min_values"].as_u64(), s["max_values"].as_u64()),
            (Some(1), Some(3))
        );

        let pref = Prompt {
            kind: PromptKind::Prefecture,
            ..multi.clone()
        };
        let (rows, _) = prompt_components(&pref, Lang::Ja, 1, 2);
        assert_eq!(
            rows[0]["components"][0]["options"]
                .as_array()
                .unwrap()
                .len(),
            8
        );
        let with = with_prefectures(&Value::Array(rows), Region::Kinki, 1, 2, Lang::Ja);
        let pref_select = &with[1]["components"][0];
        assert_eq!(pref_select["custom_id"], "q:1:2");
        assert!(pref_select["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["value"] == "兵庫県"));
        let again = with_prefectures(&with, Region::Kanto, 1, 2, Lang::Ja);
        assert_eq!(
            again.as_array().unwrap().len(),
            2,
            "choosing another region replaces the list"
        );

        let text = Prompt {
            kind: PromptKind::Text { max: 2000 },
            optional: true,
            ..multi.clone()
        };
        let (rows, _) = prompt_components(&text, Lang::En, 1, 2);
        assert_eq!(all_ids(&rows), ["m:1:2", "c:1:skip"]);
        let short = Prompt {
            kind: PromptKind::Text { max: 100 },
            optional: false,
            ..multi.clone()
        };
        assert!(prompt_components(&short, Lang::En, 1, 2).0.is_empty());

        let confirm = Prompt {
            kind: PromptKind::Confirm {
                send: opt("send", "送信する"),
                items: vec![opt("company_name", "会社名: \\*株式会社\\*")],
                more: vec![],
                brief: false,
            },
            ..multi
        };
        let (rows, _) = prompt_components(&confirm, Lang::Ja, 1, 2);
        assert_eq!(all_ids(&rows), ["q:1:2:send", "q:1:2"]);
        assert_eq!(
            rows[1]["components"][0]["options"][0]["label"],
            "1. 会社名: *株式会社*"
        );

        // The confirmation that is also the consent question: "do not
        // agree" and "why" buttons beside "agree and send", the correction
        // select below; a brief re-ask keeps them all.
        let consent = Prompt {
            kind: PromptKind::Confirm {
                send: opt("send", "同意して送信する"),
                items: vec![opt("company_name", "会社名: 株式会社")],
                more: vec![
                    opt("decline", "同意しない（送らない）"),
                    opt("why", "送付先の理由を見る"),
                ],
                brief: true,
            },
            ..confirm
        };
        let (rows, _) = prompt_components(&consent, Lang::Ja, 1, 2);
        assert_eq!(
            all_ids(&rows),
            ["q:1:2:send", "q:1:2:decline", "q:1:2:why", "q:1:2"]
        );
        assert_eq!(rows[0]["components"][1]["style"], STYLE_DANGER);
        assert_eq!(rows[0]["components"][2]["label"], "送付先の理由を見る");
    }

    #[test]
    fn disabling_marks_the_choice() {
        let rows = json!([
            row(vec![
                button("q:1:2:a", "A", STYLE_PRIMARY),
                button("q:1:2:b", "B", STYLE_PRIMARY)
            ]),
            row(vec![select(
                "q:1:3",
                "p",
                vec![option("X", "x"), option("Y", "y")],
                1,
                2
            )])
        ]);
        let d = disabled(
            &rows,
            Some(&Chosen {
                custom_id: "q:1:2:b".into(),
                values: vec![],
            }),
        );
        assert_eq!(d[0]["components"][1]["style"], STYLE_SUCCESS);
        assert_eq!(d[0]["components"][0]["style"], STYLE_SECONDARY);
        assert!(d[0]["components"]
            .as_array()
            .unwrap()
            .iter()
            .chain(d[1]["components"].as_array().unwrap())
            .all(|c| c["disabled"] == true));
        let d = disabled(
            &rows,
            Some(&Chosen {
                custom_id: "q:1:3".into(),
                values: vec!["y".into()],
            }),
        );
        assert_eq!(d[1]["components"][0]["options"][1]["default"], true);
        assert_eq!(d[1]["components"][0]["options"][0]["default"], false);
    }

    #[test]
    fn long_text_is_split_at_lines() {
        let line = "あ".repeat(900);
        let text = format!("{line}\n{line}\n{line}");
        let parts = split_text(&text, MAX_CONTENT);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CONTENT));
        let one = "い".repeat(4500);
        let parts = split_text(&one, MAX_CONTENT);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [2000, 2000, 500]
        );
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
