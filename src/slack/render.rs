//! What an owner sees on Slack: an engine turn as one message of Block Kit
//! blocks, within Slack's limits, and the `action_id` scheme that ties a
//! press back to its question. The Slack counterpart of
//! [`crate::discord::render`]; pure functions over JSON, unit-tested here.
//!
//! # action_id scheme
//!
//! | id | element | input |
//! |---|---|---|
//! | `q:{session}:{node}:{option}` | answer button (choice, yes/no, confirm) | `Pick` |
//! | `q:{session}:{node}` / `q:{session}:{node}:~{k}` | static select (long choice list, prefecture, confirm correction) | `Pick` with the value |
//! | `x:{session}:{node}` | checkboxes / multi-select of a multiple choice | none (read on "done") |
//! | `d:{session}:{node}` | "done" button of a multiple choice | `Pick` with the checked values |
//! | `m:{session}:{node}` | "answer in a form" button | opens modal `t:{session}:{node}` |
//! | `c:{session}:{command}:{node}` | command button under the question of `node` (the node only tells which question the message carried) | `Command` |
//!
//! Owner text arrives escaped for mrkdwn ([`crate::escape::slack`]: the
//! runner renders Slack owners' turns in `RenderMode::Slack`); `plain_text`
//! places (labels, options) show text as is, so there the entities are
//! turned back ([`crate::escape::slack_plain`]).

use crate::domain::prefecture::Region;
use crate::engine::{Effect, Prompt, PromptKind, PromptOption};
use crate::escape::slack_plain;
pub use crate::render::prompt::{
    command_id, command_label, modal_id, split_text, t, truncate, OwnerId,
};
use crate::script::{Command, Flow, Lang};
use serde_json::{json, Value};

/// Slack's limits used here.
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_BLOCKS: usize = 50;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_OPTION_TEXT: usize = 75;
pub const MAX_OPTION_VALUE: usize = 150;
pub const MAX_SELECT_OPTIONS: usize = 100;
pub const MAX_CHECKBOXES: usize = 10;
pub const MAX_ACTION_ID: usize = 255;
pub const MAX_MODAL_TITLE: usize = 24;
pub const MAX_MODAL_INPUT: usize = 3000;
/// Choice questions with at most this many options show buttons.
pub const BUTTONS_UP_TO: usize = 20;
/// Text questions allowing longer answers than this offer a form (modal).
pub const MODAL_ABOVE: usize = 100;

pub fn plain(text: &str, max: usize) -> Value {
    json!({ "type": "plain_text", "text": truncate(&slack_plain(text), max), "emoji": true })
}

pub fn section(mrkdwn: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": mrkdwn } })
}

pub fn context(mrkdwn: &str) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": truncate(mrkdwn, MAX_SECTION_TEXT) }] })
}

/// A button; `style` is `primary`, `danger` or `None` (Slack's default).
pub fn button(action_id: &str, label: &str, style: Option<&str>) -> Value {
    let mut b = json!({
        "type": "button",
        "action_id": action_id,
        "text": plain(label, MAX_BUTTON_TEXT),
        "value": action_id,
    });
    if let Some(s) = style {
        b["style"] = json!(s);
    }
    b
}

pub fn option(label: &str, value: &str) -> Value {
    json!({ "text": plain(label, MAX_OPTION_TEXT), "value": truncate(value, MAX_OPTION_VALUE) })
}

pub fn actions(elements: Vec<Value>) -> Value {
    json!({ "type": "actions", "elements": elements })
}

fn static_select(action_id: &str, placeholder: &str, options: Vec<Value>) -> Value {
    json!({
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(placeholder, 150),
        "options": options,
    })
}

/// The kinds of owner-side action_id on Slack (see the table above).
const ID_KINDS: [char; 6] = ['q', 'x', 'd', 'm', 't', 'c'];

/// Reads an owner-side action_id (or modal callback_id) of Slack's scheme.
pub fn owner_id(s: &str) -> Option<OwnerId> {
    OwnerId::parse(s, &ID_KINDS)
}

/// The session and node index of the question a message (as
/// `conversations.history` returns it) carried, read from its command
/// buttons.
pub fn question_of(message: &Value) -> Option<(i64, u16)> {
    let ids: Vec<&str> = message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().into_iter().flatten())
        .filter_map(|e| e["action_id"].as_str())
        .collect();
    crate::render::prompt::question_of(ids, &ID_KINDS)
}

fn id(kind: char, session: i64, node: u16, arg: Option<&str>) -> String {
    crate::render::prompt::id(kind, session, node, arg)
}

fn answer_id(session: i64, node: u16, option_id: &str, index: usize) -> String {
    crate::render::prompt::answer_id(session, node, option_id, index, MAX_ACTION_ID)
}

/// The id of the checkboxes (or multi-select) of a multiple choice.
pub fn multi_id(session: i64, node: u16) -> String {
    id('x', session, node, None)
}

/// The commands under every question, as buttons (their ids carry the
/// question's node, see [`crate::render::prompt::command_id_at`]).
pub fn command_actions(session: i64, node: u16, lang: Lang) -> Value {
    let cs = [
        Command::Help,
        Command::Back,
        Command::Answers,
        Command::Restart,
        Command::Cancel,
    ];
    actions(
        cs.iter()
            .map(|c| {
                button(
                    &crate::render::prompt::command_id_at(session, node, *c),
                    command_label(*c, lang),
                    None,
                )
            })
            .collect(),
    )
}

/// One Slack message of a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct OutMessage {
    /// The notification text (and what a client without blocks shows).
    pub text: String,
    pub blocks: Vec<Value>,
    /// The node whose question this message carries.
    pub question: Option<String>,
}

impl OutMessage {
    /// The `chat.postMessage` body for `channel`: owner text never unfurls.
    pub fn body(&self, channel: &str) -> Value {
        json!({
            "channel": channel,
            "text": self.text,
            "blocks": self.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        })
    }
}

/// Renders a turn's effects as the messages to send: every `Say` and the
/// question together in ONE message of sections (each within 3,000
/// characters), the hint as a context block, then the question's elements
/// and the command buttons.
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
    let mut tail = Vec::new();
    if let Some(p) = prompt {
        let node = flow.index_of(&p.node).unwrap_or(0);
        texts.push(p.text.clone());
        let (blocks, hint) = prompt_blocks(p, lang, session, node);
        if let Some(h) = hint {
            tail.push(context(&h));
        }
        tail.extend(blocks);
        tail.push(command_actions(session, node, lang));
    }
    let content = texts.join("\n\n");
    let pieces = split_text(&content, MAX_SECTION_TEXT);
    if pieces.is_empty() && tail.is_empty() {
        return Vec::new();
    }
    // A turn is one message; only text beyond what 50 blocks hold (over
    // 100,000 characters, which no script writes) would need a second.
    let room = MAX_BLOCKS.saturating_sub(tail.len()).max(1);
    let mut out = Vec::new();
    let chunks: Vec<&[String]> = pieces.chunks(room).collect();
    let n = chunks.len().max(1);
    for k in 0..n {
        let mut blocks: Vec<Value> = chunks
            .get(k)
            .map(|c| c.iter().map(|t| section(t)).collect())
            .unwrap_or_default();
        let last = k + 1 == n;
        if last {
            blocks.extend(tail.iter().cloned());
        }
        let text = chunks
            .get(k)
            .and_then(|c| c.first())
            .map(|t| truncate(t, 300))
            .unwrap_or_else(|| "…".into());
        out.push(OutMessage {
            text,
            blocks,
            question: if last {
                prompt.map(|p| p.node.clone())
            } else {
                None
            },
        });
    }
    out
}

/// Blocks for one question (without the command buttons) and a short hint.
pub fn prompt_blocks(
    p: &Prompt,
    lang: Lang,
    session: i64,
    node: u16,
) -> (Vec<Value>, Option<String>) {
    // The skip button carries its question's node like the command
    // buttons (see `command_buttons`), so that an instance that did not ask
    // the question can tell which one it skips.
    let skip = || {
        button(
            &crate::render::prompt::command_id_at(session, node, Command::Skip),
            command_label(Command::Skip, lang),
            None,
        )
    };
    let mut blocks = Vec::new();
    let mut hint = None;
    match &p.kind {
        PromptKind::Choice { options } => {
            if options.len() <= BUTTONS_UP_TO {
                let mut b: Vec<Value> = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        button(
                            &answer_id(session, node, &o.id, i),
                            &o.label,
                            Some("primary"),
                        )
                    })
                    .collect();
                if p.optional {
                    b.push(skip());
                }
                blocks.extend(b.chunks(5).map(|c| actions(c.to_vec())));
            } else {
                let chunks: Vec<&[PromptOption]> = options.chunks(MAX_SELECT_OPTIONS).collect();
                let many = chunks.len() > 1;
                let mut elems = Vec::new();
                for (k, chunk) in chunks.iter().enumerate() {
                    let start = k * MAX_SELECT_OPTIONS;
                    let opts = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, o)| option(&format!("{}. {}", start + i + 1, o.label), &o.id))
                        .collect();
                    let aid = if many {
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
                    elems.push(static_select(&aid, &ph, opts));
                }
                if p.optional {
                    elems.push(skip());
                }
                blocks.push(actions(elems));
                hint = Some(t(
                    lang,
                    "メニューから選ぶか、番号を入力してください。",
                    "Pick from the menu or type the number.",
                ));
            }
        }
        PromptKind::YesNo { options } => {
            let mut b: Vec<Value> = options
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let style = (o.id == "yes").then_some("primary");
                    button(&answer_id(session, node, &o.id, i), &o.label, style)
                })
                .collect();
            if p.optional {
                b.push(skip());
            }
            blocks.push(actions(b));
        }
        PromptKind::Multi { options, .. } => {
            let opts: Vec<Value> = options
                .iter()
                .take(MAX_SELECT_OPTIONS)
                .map(|o| option(&o.label, &o.id))
                .collect();
            let element = if options.len() <= MAX_CHECKBOXES {
                json!({ "type": "checkboxes", "action_id": multi_id(session, node), "options": opts })
            } else {
                json!({
                    "type": "multi_static_select",
                    "action_id": multi_id(session, node),
                    "placeholder": plain(&t(lang, "当てはまるものをすべて選ぶ", "Choose all that apply"), 150),
                    "options": opts,
                })
            };
            let mut b = vec![element];
            b.push(button(
                &id('d', session, node, None),
                &t(lang, "これで決定", "Done"),
                Some("primary"),
            ));
            if p.optional {
                b.push(skip());
            }
            blocks.push(actions(b));
            hint = Some(t(
                lang,
                "当てはまるものをすべて選んで「これで決定」を押すか、番号を「、」で区切って入力してください。",
                "Tick all that apply and press \"Done\", or type their numbers separated by commas.",
            ));
        }
        PromptKind::Text { max } => {
            let mut b = Vec::new();
            if *max > MODAL_ABOVE {
                b.push(button(
                    &id('m', session, node, None),
                    &t(lang, "入力フォームで答える", "Answer in a form"),
                    Some("primary"),
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
                blocks.push(actions(b));
            }
        }
        PromptKind::Prefecture => {
            // All 47 fit in one select, grouped by region.
            let groups: Vec<Value> = Region::ALL
                .iter()
                .map(|r| {
                    let label = match lang {
                        Lang::Ja => r.name_ja(),
                        Lang::En => r.name_en(),
                    };
                    let opts: Vec<Value> = r
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
                    json!({ "label": plain(label, 75), "options": opts })
                })
                .collect();
            let mut sel = static_select(
                &id('q', session, node, None),
                &t(lang, "都道府県を選ぶ", "Choose the prefecture"),
                vec![],
            );
            sel.as_object_mut().map(|o| o.remove("options"));
            sel["option_groups"] = Value::Array(groups);
            let mut b = vec![sel];
            if p.optional {
                b.push(skip());
            }
            blocks.push(actions(b));
            hint = Some(t(
                lang,
                "メニューから選ぶか、都道府県名を入力してください。",
                "Pick from the menu or type the prefecture's name.",
            ));
        }
        PromptKind::Number { unit } => {
            if p.optional {
                blocks.push(actions(vec![skip()]));
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
                blocks.push(actions(vec![skip()]));
            }
        }
        PromptKind::Confirm {
            send, items, more, ..
        } => {
            let mut b = vec![button(
                &answer_id(session, node, &send.id, 0),
                &send.label,
                Some("primary"),
            )];
            for (k, o) in more.iter().enumerate() {
                let style = (o.id == "decline").then_some("danger");
                b.push(button(
                    &answer_id(session, node, &o.id, k + 1),
                    &o.label,
                    style,
                ));
            }
            if p.optional {
                b.push(skip());
            }
            if !items.is_empty() {
                let opts = items
                    .iter()
                    .take(MAX_SELECT_OPTIONS)
                    .enumerate()
                    .map(|(i, o)| {
                        option(&format!("{}. {}", i + 1, o.label.replace('\n', " ")), &o.id)
                    })
                    .collect();
                b.push(static_select(
                    &id('q', session, node, None),
                    &t(lang, "直したい項目を選ぶ", "Choose an item to correct"),
                    opts,
                ));
            }
            blocks.push(actions(b));
        }
    }
    (blocks, hint)
}

/// The modal for a long answer: `callback_id` ties it to the question,
/// `private_metadata` carries the question message (`channel|ts`), so the
/// submission is judged against the current question like a press.
pub fn answer_modal(
    session: i64,
    node: u16,
    label: &str,
    max: usize,
    lang: Lang,
    metadata: &str,
) -> Value {
    json!({
        "type": "modal",
        "callback_id": modal_id(session, node),
        "private_metadata": metadata,
        "title": plain(&t(lang, "回答の入力", "Your answer"), MAX_MODAL_TITLE),
        "submit": plain(&t(lang, "送信", "Send"), MAX_MODAL_TITLE),
        "close": plain(&t(lang, "やめる", "Cancel"), MAX_MODAL_TITLE),
        "blocks": [{
            "type": "input",
            "block_id": "answer",
            "label": plain(label, 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": "answer",
                "multiline": true,
                "min_length": 1,
                "max_length": max.clamp(1, MAX_MODAL_INPUT),
            },
        }],
    })
}

/// Every `action_id` in a list of blocks (for tests and stale checks).
pub fn action_ids(blocks: &[Value]) -> Vec<String> {
    blocks
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["action_id"].as_str().map(str::to_string))
        .collect()
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

    fn prompt(kind: PromptKind, optional: bool) -> Prompt {
        Prompt {
            node: "n".into(),
            text: "質問".into(),
            kind,
            optional,
        }
    }

    #[test]
    fn ids_round_trip() {
        let i = owner_id("q:12:7:manufacturing").unwrap();
        assert_eq!(
            (i.kind, i.session, i.node, i.option()),
            ('q', 12, 7, Some("manufacturing"))
        );
        assert_eq!(owner_id("d:3:4").unwrap().kind, 'd');
        assert_eq!(owner_id("c:3:help").unwrap().arg.as_deref(), Some("help"));
        assert!(owner_id("s:claim:1").is_none());
        assert!(owner_id("q:x:1").is_none());
        let long = "x".repeat(300);
        assert_eq!(answer_id(9, 65535, &long, 4), "q:9:65535:#4");
    }

    #[test]
    fn few_choices_are_buttons_many_are_static_selects() {
        let few = prompt(
            PromptKind::Choice {
                options: (0..7).map(|i| opt(&format!("o{i}"), "選択肢")).collect(),
            },
            false,
        );
        let (b, hint) = prompt_blocks(&few, Lang::Ja, 5, 3);
        assert_eq!(b.len(), 2, "five buttons a row");
        assert!(b.iter().all(|x| x["type"] == "actions"));
        assert_eq!(action_ids(&b)[0], "q:5:3:o0");
        assert!(hint.is_none());

        let many = prompt(
            PromptKind::Choice {
                options: (0..130).map(|i| opt(&format!("o{i}"), "x")).collect(),
            },
            true,
        );
        let (b, hint) = prompt_blocks(&many, Lang::En, 5, 3);
        let els = b[0]["elements"].as_array().unwrap();
        assert_eq!(els[0]["type"], "static_select");
        assert_eq!(
            els[0]["options"].as_array().unwrap().len(),
            MAX_SELECT_OPTIONS
        );
        assert_eq!(els[1]["options"].as_array().unwrap().len(), 30);
        assert_eq!(action_ids(&b), ["q:5:3:~0", "q:5:3:~1", "c:5:skip:3"]);
        assert!(hint.is_some());
    }

    #[test]
    fn multiple_choice_is_checkboxes_or_a_multi_select_with_done() {
        let small = prompt(
            PromptKind::Multi {
                options: vec![opt("a", "A"), opt("b", "B")],
                min: 1,
                max: 2,
            },
            false,
        );
        let (b, _) = prompt_blocks(&small, Lang::Ja, 1, 2);
        assert_eq!(b[0]["elements"][0]["type"], "checkboxes");
        assert_eq!(action_ids(&b), ["x:1:2", "d:1:2"]);
        let big = prompt(
            PromptKind::Multi {
                options: (0..12).map(|i| opt(&format!("o{i}"), "x")).collect(),
                min: 1,
                max: 12,
            },
            false,
        );
        let (b, _) = prompt_blocks(&big, Lang::Ja, 1, 2);
        assert_eq!(b[0]["elements"][0]["type"], "multi_static_select");
    }

    #[test]
    fn prefectures_text_and_confirm() {
        let (b, _) = prompt_blocks(&prompt(PromptKind::Prefecture, false), Lang::Ja, 1, 2);
        let groups = b[0]["elements"][0]["option_groups"].as_array().unwrap();
        assert_eq!(groups.len(), 8);
        let n: usize = groups
            .iter()
            .map(|g| g["options"].as_array().unwrap().len())
            .sum();
        assert_eq!(n, 47);

        let (b, _) = prompt_blocks(
            &prompt(PromptKind::Text { max: 2000 }, true),
            Lang::En,
            1,
            2,
        );
        assert_eq!(action_ids(&b), ["m:1:2", "c:1:skip:2"]);
        assert!(prompt_blocks(
            &prompt(PromptKind::Text { max: 100 }, false),
            Lang::En,
            1,
            2
        )
        .0
        .is_empty());

        let consent = prompt(
            PromptKind::Confirm {
                send: opt("send", "同意して送信する"),
                items: vec![opt("company_name", "会社名: &lt;!channel&gt; 株式会社")],
                more: vec![opt("decline", "同意しない"), opt("why", "理由")],
                brief: false,
            },
            false,
        );
        let (b, _) = prompt_blocks(&consent, Lang::Ja, 1, 2);
        assert_eq!(
            action_ids(&b),
            ["q:1:2:send", "q:1:2:decline", "q:1:2:why", "q:1:2"]
        );
        assert_eq!(b[0]["elements"][1]["style"], "danger");
        // plain_text shows the text as typed (Slack does not read entities
        // there), with an invisible word joiner that keeps `<!channel>` from
        // standing in the payload as typed.
        assert_eq!(
            b[0]["elements"][3]["options"][0]["text"]["text"],
            "1. 会社名: <\u{2060}!channel> 株式会社"
        );
    }

    #[test]
    fn a_turn_is_one_message_with_sections_hint_question_and_commands() {
        let flow = crate::script::load_dir(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/dialogs"
        )))
        .unwrap()
        .flows
        .remove(0);
        let long = "あ".repeat(7000);
        let p = Prompt {
            node: flow.nodes[0].id.clone(),
            ..prompt(
                PromptKind::YesNo {
                    options: vec![opt("yes", "はい"), opt("no", "いいえ")],
                },
                false,
            )
        };
        let effects = vec![Effect::Say(long), Effect::Ask(p)];
        let msgs = turn_messages(&effects, &flow, 7);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        let sections: Vec<&Value> = m.blocks.iter().filter(|b| b["type"] == "section").collect();
        assert_eq!(
            sections.len(),
            3,
            "7,000 characters and the question, in pieces of at most 3,000"
        );
        assert!(sections
            .iter()
            .all(|s| s["text"]["text"].as_str().unwrap().chars().count() <= MAX_SECTION_TEXT));
        // The command buttons name the question's node (index 0 here), so
        // the message says which question it carried when read back.
        assert_eq!(
            m.blocks.last().unwrap()["elements"][0]["action_id"],
            "c:7:help:0"
        );
        assert_eq!(question_of(&json!({ "blocks": m.blocks })), Some((7, 0)));
        assert!(m.question.is_some());
        let body = m.body("D1");
        assert_eq!(body["unfurl_links"], false);
        assert_eq!(body["unfurl_media"], false);
        assert!(turn_messages(&[], &flow, 7).is_empty());
    }
}
