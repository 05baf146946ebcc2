//! What a Slack payload asks of the app, read from its JSON: the same
//! function serves Socket Mode (slack-morphism's typed payloads, turned
//! back into JSON) and the Events API over HTTP. Pure, unit-tested.

use serde_json::Value;

/// A press or a menu choice on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub user: String,
    pub channel: String,
    /// The `ts` of the message the element is on.
    pub message_ts: String,
    pub action_id: String,
    /// What the element gives: a button's value, a select's chosen value,
    /// the checked values of checkboxes.
    pub values: Vec<String>,
    /// The message's input state (`state.values`), for "done" buttons.
    pub state: Value,
    pub trigger_id: String,
    /// The text of the message pressed on (the wording an owner was shown
    /// with a consent request).
    pub message_text: String,
}

/// A submitted modal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSubmit {
    pub user: String,
    pub callback_id: String,
    pub metadata: String,
    pub answer: String,
    /// Every input of the form (`view.state.values`).
    pub values: Value,
}

/// A slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub command: String,
    pub user: String,
    pub channel: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message from a person in a DM with the app.
    Dm {
        user: String,
        channel: String,
        /// The message's ts: where it stands among the app's messages.
        ts: String,
        text: String,
    },
    Action(Action),
    ViewSubmit(ViewSubmit),
    Command(SlashCommand),
    /// A message shortcut run on a message (staff's "Reply to owner").
    MessageAction(MessageAction),
    Ignore,
}

/// A message shortcut run on a message in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAction {
    pub user: String,
    pub channel: String,
    pub callback_id: String,
    /// The message's own ts, and the ts of the thread it is in (its own
    /// for a thread's parent or a message outside threads).
    pub message_ts: String,
    pub thread_ts: String,
    pub trigger_id: String,
}

/// What staff ask with `/madoguchi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffCommand {
    /// `reply CASE message`: a message for the case's owner.
    Reply {
        case: crate::domain::ids::CaseId,
        text: String,
    },
    /// Anything else: the usage is shown.
    Usage,
}

/// Parses the text of `/madoguchi` (`reply C-000001 message…`). Slack does
/// not say which thread a command was typed in, so the case is named.
pub fn staff_command(text: &str) -> StaffCommand {
    let text = text.trim();
    let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    if !verb.eq_ignore_ascii_case("reply") {
        return StaffCommand::Usage;
    }
    let rest = rest.trim_start();
    let (id, message) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match crate::domain::ids::CaseId::parse(id) {
        Ok(case) if !message.trim().is_empty() => StaffCommand::Reply {
            case,
            text: message.trim().to_string(),
        },
        _ => StaffCommand::Usage,
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// An Events API callback (`{"type":"event_callback","event":{…}}`) or its
/// inner event.
pub fn from_push(v: &Value) -> Event {
    let e = if v.get("event").is_some() {
        &v["event"]
    } else {
        v
    };
    if e["type"] != "message" {
        return Event::Ignore;
    }
    // Messages of bots (ours included), edits, joins and other subtypes
    // are not an owner's answer.
    let is_dm =
        e["channel_type"] == "im" || e["channel"].as_str().is_some_and(|c| c.starts_with('D'));
    if !is_dm
        || e.get("bot_id").is_some_and(|b| !b.is_null())
        || e.get("subtype").is_some_and(|b| !b.is_null())
    {
        return Event::Ignore;
    }
    let (user, channel) = (s(&e["user"]), s(&e["channel"]));
    if user.is_empty() || channel.is_empty() {
        return Event::Ignore;
    }
    Event::Dm {
        user,
        channel,
        ts: s(&e["ts"]),
        text: s(&e["text"]),
    }
}

/// An interaction payload (`block_actions`, `view_submission`).
pub fn from_interaction(v: &Value) -> Event {
    match v["type"].as_str() {
        Some("block_actions") => {
            let a = &v["actions"][0];
            let mut values = Vec::new();
            if let Some(x) = a["selected_option"]["value"].as_str() {
                values.push(x.to_string());
            } else if let Some(opts) = a["selected_options"].as_array() {
                values.extend(
                    opts.iter()
                        .filter_map(|o| o["value"].as_str().map(str::to_string)),
                );
            } else if let Some(x) = a["value"].as_str() {
                values.push(x.to_string());
            }
            let channel = v["channel"]["id"]
                .as_str()
                .or(v["container"]["channel_id"].as_str())
                .unwrap_or_default();
            let ts = v["container"]["message_ts"]
                .as_str()
                .or(v["message"]["ts"].as_str())
                .unwrap_or_default();
            Event::Action(Action {
                user: s(&v["user"]["id"]),
                channel: channel.to_string(),
                message_ts: ts.to_string(),
                action_id: s(&a["action_id"]),
                values,
                state: v["state"]["values"].clone(),
                trigger_id: s(&v["trigger_id"]),
                message_text: s(&v["message"]["text"]),
            })
        }
        Some("view_submission") => Event::ViewSubmit(ViewSubmit {
            user: s(&v["user"]["id"]),
            callback_id: s(&v["view"]["callback_id"]),
            metadata: s(&v["view"]["private_metadata"]),
            answer: s(&v["view"]["state"]["values"]["answer"]["answer"]["value"]),
            values: v["view"]["state"]["values"].clone(),
        }),
        Some("message_action") => {
            let ts = s(&v["message_ts"]);
            let thread = v["message"]["thread_ts"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| ts.clone());
            Event::MessageAction(MessageAction {
                user: s(&v["user"]["id"]),
                channel: s(&v["channel"]["id"]),
                callback_id: s(&v["callback_id"]),
                message_ts: ts,
                thread_ts: thread,
                trigger_id: s(&v["trigger_id"]),
            })
        }
        _ => Event::Ignore,
    }
}

/// A slash command payload.
pub fn from_command(v: &Value) -> Event {
    Event::Command(SlashCommand {
        command: s(&v["command"]),
        user: s(&v["user_id"]),
        channel: s(&v["channel_id"]),
        text: s(&v["text"]).trim().to_string(),
    })
}

/// The values checked in a message's input state under `action_id`
/// (checkboxes or a multi-select), whatever block holds it.
pub fn checked(state: &Value, action_id: &str) -> Vec<String> {
    let Some(blocks) = state.as_object() else {
        return Vec::new();
    };
    for b in blocks.values() {
        if let Some(el) = b.get(action_id) {
            return el["selected_options"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|o| o["value"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn staff_commands_name_the_case() {
        use crate::domain::ids::CaseId;
        assert_eq!(
            staff_command("reply C-000003 火曜に伺います <!channel>"),
            StaffCommand::Reply {
                case: CaseId(3),
                text: "火曜に伺います <!channel>".into()
            }
        );
        assert_eq!(
            staff_command("  REPLY 12\n二行目も"),
            StaffCommand::Reply {
                case: CaseId(12),
                text: "二行目も".into()
            }
        );
        for bad in [
            "",
            "reply",
            "reply C-000003",
            "reply 今日 はい",
            "claim C-000003",
        ] {
            assert_eq!(staff_command(bad), StaffCommand::Usage, "{bad:?}");
        }
    }

    #[test]
    fn a_message_shortcut_names_its_thread() {
        let v = json!({"type":"message_action","user":{"id":"U1"},"channel":{"id":"C1"},"callback_id":"reply_to_owner","trigger_id":"t","message_ts":"5.6","message":{"ts":"5.6","thread_ts":"1.2"}});
        assert_eq!(
            from_interaction(&v),
            Event::MessageAction(MessageAction {
                user: "U1".into(),
                channel: "C1".into(),
                callback_id: "reply_to_owner".into(),
                message_ts: "5.6".into(),
                thread_ts: "1.2".into(),
                trigger_id: "t".into(),
            })
        );
        let parent = json!({"type":"message_action","user":{"id":"U1"},"channel":{"id":"C1"},"callback_id":"x","message_ts":"1.2","message":{"ts":"1.2"}});
        let Event::MessageAction(m) = from_interaction(&parent) else {
            panic!()
        };
        assert_eq!(m.thread_ts, "1.2");
    }

    #[test]
    fn dms_from_people_only() {
        let m = json!({"type":"event_callback","event":{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"こんにちは","ts":"1.2"}});
        assert_eq!(
            from_push(&m),
            Event::Dm {
                user: "U1".into(),
                channel: "D1".into(),
                ts: "1.2".into(),
                text: "こんにちは".into()
            }
        );
        let bot = json!({"event":{"type":"message","channel":"D1","channel_type":"im","user":"U1","bot_id":"B1","text":"x"}});
        assert_eq!(from_push(&bot), Event::Ignore);
        let edit = json!({"event":{"type":"message","channel":"D1","channel_type":"im","subtype":"message_changed"}});
        assert_eq!(from_push(&edit), Event::Ignore);
        let channel = json!({"event":{"type":"message","channel":"C1","channel_type":"channel","user":"U1","text":"x"}});
        assert_eq!(from_push(&channel), Event::Ignore);
    }

    #[test]
    fn presses_selects_checkboxes_and_modals() {
        let press = json!({"type":"block_actions","user":{"id":"U1"},"channel":{"id":"D1"},"container":{"message_ts":"9.1"},"trigger_id":"t","actions":[{"action_id":"q:1:2:yes","value":"q:1:2:yes","type":"button"}]});
        let Event::Action(a) = from_interaction(&press) else {
            panic!()
        };
        assert_eq!(
            (a.user.as_str(), a.channel.as_str(), a.message_ts.as_str()),
            ("U1", "D1", "9.1")
        );
        assert_eq!(a.values, ["q:1:2:yes"]);
        let sel = json!({"type":"block_actions","user":{"id":"U1"},"container":{"channel_id":"D1","message_ts":"9.1"},"actions":[{"action_id":"q:1:2","selected_option":{"value":"兵庫県"}}]});
        let Event::Action(a) = from_interaction(&sel) else {
            panic!()
        };
        assert_eq!(
            (a.channel.as_str(), a.values.clone()),
            ("D1", vec!["兵庫県".to_string()])
        );
        let state = json!({"b1":{"x:1:2":{"type":"checkboxes","selected_options":[{"value":"a"},{"value":"c"}]}}});
        assert_eq!(checked(&state, "x:1:2"), ["a", "c"]);
        assert!(checked(&state, "x:1:3").is_empty());
        let view = json!({"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"t:1:2","private_metadata":"D1|9.1","state":{"values":{"answer":{"answer":{"value":"長い回答"}}}}}});
        assert_eq!(
            from_interaction(&view),
            Event::ViewSubmit(ViewSubmit {
                user: "U1".into(),
                callback_id: "t:1:2".into(),
                metadata: "D1|9.1".into(),
                answer: "長い回答".into(),
                values: json!({"answer":{"answer":{"value":"長い回答"}}}),
            })
        );
        let cmd = json!({"command":"/consult","user_id":"U1","channel_id":"C1","text":" en "});
        assert_eq!(
            from_command(&cmd),
            Event::Command(SlashCommand {
                command: "/consult".into(),
                user: "U1".into(),
                channel: "C1".into(),
                text: "en".into()
            })
        );
    }
}
