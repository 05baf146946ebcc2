//! Slack's JSON shapes as the stand-in sends them, and the checks that decode every one of
//! them with slack-morphism's own models first (a shape the client could not read would be
//! dropped or turned into an error far from its cause).

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use slack_morphism::prelude::*;

/// Decode `v` as `T`, or say what failed.
pub fn check<T: DeserializeOwned>(what: &str, v: &Value) -> Result<T, String> {
    serde_json::from_value::<T>(v.clone())
        .map_err(|e| format!("slack-morphism cannot read the stand-in's {what}: {e}\n{v}"))
}

/// slack-morphism's `SlackSocketModeEvent` (src/models/socket_mode/mod.rs), which the
/// crate does not export: the same tag, fields and payload models, so a frame that
/// decodes here decodes in its Socket Mode listener.
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
#[allow(dead_code, clippy::large_enum_variant)]
enum SocketModeFrame {
    #[serde(rename = "hello")]
    Hello {
        connection_info: ConnectionInfo,
        num_connections: u32,
        debug_info: DebugInfo,
    },
    #[serde(rename = "disconnect")]
    Disconnect {
        reason: String,
        debug_info: DebugInfo,
    },
    #[serde(rename = "interactive")]
    Interactive {
        envelope_id: String,
        accepts_response_payload: bool,
        payload: SlackInteractionEvent,
    },
    #[serde(rename = "events_api")]
    EventsApi {
        envelope_id: String,
        accepts_response_payload: bool,
        payload: SlackPushEventCallback,
    },
    #[serde(rename = "slash_commands")]
    SlashCommands {
        envelope_id: String,
        accepts_response_payload: bool,
        payload: SlackCommandEvent,
    },
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ConnectionInfo {
    app_id: SlackAppId,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct DebugInfo {
    host: String,
    started: Option<String>,
    build_number: Option<u64>,
    approximate_connection_time: Option<u64>,
}

/// Every Socket Mode frame the stand-in sends must decode as slack-morphism's
/// `SlackSocketModeEvent` would, and an `events_api` event of a modelled type must not
/// fall through to `SlackEventCallbackBody::Unknown` (which is how slack-morphism hides a
/// payload that does not match its model).
pub fn check_frame(frame: &Value) -> Result<(), String> {
    let ev: SocketModeFrame = check("Socket Mode frame", frame)?;
    if let SocketModeFrame::EventsApi { payload, .. } = &ev {
        if let SlackEventCallbackBody::Unknown(v) = &payload.event {
            let kind = v["type"].as_str().unwrap_or("");
            if matches!(kind, "message" | "app_home_opened" | "app_mention") {
                return Err(format!(
                    "slack-morphism read the stand-in's {kind} event as Unknown (shape mismatch): {v}"
                ));
            }
        }
    }
    Ok(())
}

/// Check a successful Web API answer against the response model slack-morphism decodes
/// it into for that method.
pub fn check_response(method: &str, v: &Value) -> Result<(), String> {
    let what = format!("{method} response");
    match method {
        "auth.test" => check::<SlackApiAuthTestResponse>(&what, v).map(drop),
        "apps.connections.open" => check::<SlackApiAppsConnectionOpenResponse>(&what, v).map(drop),
        "chat.postMessage" => check::<SlackApiChatPostMessageResponse>(&what, v).map(drop),
        "chat.update" => check::<SlackApiChatUpdateResponse>(&what, v).map(drop),
        "chat.postEphemeral" => check::<SlackApiChatPostEphemeralResponse>(&what, v).map(drop),
        "chat.delete" => check::<SlackApiChatDeleteResponse>(&what, v).map(drop),
        "conversations.open" => {
            check::<SlackApiConversationsOpenResponse<SlackBasicChannelInfo>>(&what, v).map(drop)
        }
        "conversations.history" => {
            check::<SlackApiConversationsHistoryResponse>(&what, v).map(drop)
        }
        "conversations.replies" => {
            check::<SlackApiConversationsRepliesResponse>(&what, v).map(drop)
        }
        "views.open" => check::<SlackApiViewsOpenResponse>(&what, v).map(drop),
        "views.update" => check::<SlackApiViewsUpdateResponse>(&what, v).map(drop),
        "users.info" => check::<SlackApiUsersInfoResponse>(&what, v).map(drop),
        "usergroups.users.list" => check::<SlackApiUserGroupsUsersListResponse>(&what, v).map(drop),
        _ => Ok(()),
    }
}

/// Slack's message timestamps: `"<unix seconds>.<6 digits>"`, unique per channel and
/// increasing. The stand-in makes them unique across the workspace, so a `ts` alone names
/// a message.
#[derive(Debug)]
pub struct TsClock {
    secs: u64,
    micros: u64,
}

impl Default for TsClock {
    fn default() -> Self {
        Self::new()
    }
}

impl TsClock {
    pub fn new() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1_763_900_000);
        Self { secs, micros: 0 }
    }
    pub fn next_ts(&mut self) -> String {
        self.micros += 100;
        if self.micros >= 1_000_000 {
            self.secs += 1;
            self.micros -= 1_000_000;
        }
        format!("{}.{:06}", self.secs, self.micros)
    }
    pub fn now_secs(&self) -> u64 {
        self.secs
    }
}

/// Upper-case base-36 suffix for generated ids (`D0000001A`-like).
pub fn suffix(n: u64, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::new();
    let mut n = n;
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// A uuid-shaped id (Slack's envelope ids and `client_msg_id`s look like this).
pub fn uuid_like(n: u64, salt: u64) -> String {
    let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    let b = salt.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ n;
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0xfff) as u16,
        (b >> 52) as u16 & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// The `rich_text` block Slack's clients attach to a typed message.
pub fn rich_text_of(text: &str) -> Value {
    json!([{
        "type": "rich_text",
        "block_id": "standin",
        "elements": [{
            "type": "rich_text_section",
            "elements": [{ "type": "text", "text": text }]
        }]
    }])
}

/// Parameters of a Web API call, whichever way they came (query, form or JSON body):
/// fields Slack takes as JSON inside a form (`blocks`, `metadata`, `view`, …) are parsed.
pub fn normalise_params(mut m: Map<String, Value>) -> Map<String, Value> {
    for key in ["blocks", "attachments", "metadata", "view", "users"] {
        if let Some(Value::String(s)) = m.get(key) {
            let t = s.trim_start();
            if t.starts_with('[') || t.starts_with('{') {
                if let Ok(v) = serde_json::from_str::<Value>(s) {
                    m.insert(key.to_string(), v);
                }
            }
        }
    }
    m
}

/// A boolean parameter as Slack reads it (`true`, `"true"`, `"1"`, `1`).
pub fn truthy(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(matches!(s.as_str(), "true" | "1" | "TRUE" | "True")),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        _ => None,
    }
}

pub fn str_param<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The interactive elements of a list of blocks (actions elements, section accessories,
/// input elements), with the id of the block they sit in.
pub fn elements(blocks: &Value) -> Vec<(String, Value)> {
    let mut out = vec![];
    for b in blocks.as_array().into_iter().flatten() {
        let block_id = b["block_id"].as_str().unwrap_or("").to_string();
        match b["type"].as_str() {
            Some("actions") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    out.push((block_id.clone(), e.clone()));
                }
            }
            Some("section") if b["accessory"].is_object() => {
                out.push((block_id.clone(), b["accessory"].clone()))
            }
            Some("input") if b["element"].is_object() => {
                out.push((block_id.clone(), b["element"].clone()))
            }
            _ => {}
        }
    }
    out
}

/// All options of a select / checkboxes / radio element (option groups flattened).
pub fn options_of(element: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = element["options"].as_array().cloned().unwrap_or_default();
    for g in element["option_groups"].as_array().into_iter().flatten() {
        out.extend(g["options"].as_array().cloned().unwrap_or_default());
    }
    out
}

/// Slack's limits on Block Kit that the bot is most likely to meet; the error strings are
/// the ones Slack puts in `response_metadata.messages` of an `invalid_blocks` answer.
pub fn validate_blocks(blocks: &Value, surface: &str) -> Result<(), Vec<String>> {
    let Some(list) = blocks.as_array() else {
        return Err(vec![
            "[ERROR] must be an array [json-pointer:/blocks]".into()
        ]);
    };
    let mut errs = vec![];
    let max = if surface == "message" { 50 } else { 100 };
    if list.len() > max {
        errs.push(format!(
            "[ERROR] no more than {max} items allowed [json-pointer:/blocks]"
        ));
    }
    for (i, b) in list.iter().enumerate() {
        if let Err(e) = check::<SlackBlock>("block", b) {
            errs.push(format!(
                "[ERROR] invalid block [json-pointer:/blocks/{i}]: {e}"
            ));
            continue;
        }
        let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
        match b["type"].as_str() {
            Some("section") if len(&b["text"]["text"]) > 3000 => {
                errs.push(format!("[ERROR] must be less than 3001 characters [json-pointer:/blocks/{i}/text/text]"));
            }
            Some("header") if len(&b["text"]["text"]) > 150 => {
                errs.push(format!(
                    "[ERROR] must be less than 151 characters [json-pointer:/blocks/{i}/text/text]"
                ));
            }
            Some("actions") => {
                let n = b["elements"].as_array().map_or(0, Vec::len);
                if n > 25 {
                    errs.push(format!(
                        "[ERROR] no more than 25 items allowed [json-pointer:/blocks/{i}/elements]"
                    ));
                }
            }
            _ => {}
        }
    }
    let mut action_ids = std::collections::HashSet::new();
    let mut block_ids = std::collections::HashSet::new();
    for b in list {
        if let Some(id) = b["block_id"].as_str() {
            if !block_ids.insert(id.to_string()) {
                errs.push(format!(
                    "[ERROR] duplicate block_id {id:?} [json-pointer:/blocks]"
                ));
            }
        }
    }
    for (_, e) in elements(blocks) {
        if let Some(id) = e["action_id"].as_str() {
            if !action_ids.insert(id.to_string()) {
                errs.push(format!(
                    "[ERROR] duplicate action_id {id:?} [json-pointer:/blocks]"
                ));
            }
        }
        let label_len = e["text"]["text"].as_str().map_or(0, |s| s.chars().count());
        if e["type"] == "button" && label_len > 75 {
            errs.push("[ERROR] button text must be less than 76 characters".into());
        }
        if e["value"]
            .as_str()
            .is_some_and(|v| v.chars().count() > 2000)
        {
            errs.push("[ERROR] value must be less than 2001 characters".into());
        }
        if matches!(
            e["type"].as_str(),
            Some("static_select" | "multi_static_select" | "checkboxes" | "radio_buttons")
        ) {
            let n = options_of(&e).len();
            let max = if e["type"] == "checkboxes" || e["type"] == "radio_buttons" {
                10
            } else {
                100
            };
            if n > max {
                errs.push(format!(
                    "[ERROR] no more than {max} items allowed [options of {}]",
                    e["action_id"]
                ));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Slack gives every block a `block_id` and every interactive element an `action_id` when
/// the sender left them out (slack-morphism's builders leave both optional).
pub fn fill_ids(blocks: &mut Value, counter: &mut u64) {
    let mut next = |prefix: &str| {
        *counter += 1;
        format!("{prefix}{}", suffix(*counter * 7 + 3, 4))
    };
    let Some(list) = blocks.as_array_mut() else {
        return;
    };
    for b in list {
        if b.get("block_id").is_none_or(Value::is_null) {
            b["block_id"] = json!(next("b"));
        }
        let mut fix = |e: &mut Value| {
            if e.is_object()
                && e.get("action_id").is_none_or(Value::is_null)
                && e["type"] != "image"
            {
                e["action_id"] = json!(next("a"));
            }
        };
        match b["type"].as_str() {
            Some("actions") => {
                for e in b["elements"].as_array_mut().into_iter().flatten() {
                    fix(e);
                }
            }
            Some("section") if b["accessory"].is_object() => fix(&mut b["accessory"]),
            Some("input") if b["element"].is_object() => fix(&mut b["element"]),
            _ => {}
        }
    }
}
