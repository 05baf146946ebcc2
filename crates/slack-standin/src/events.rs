//! Payloads of what users do, as Slack delivers them over Socket Mode: `event_callback`s
//! (messages, App Home), interactions (`block_actions`, `view_submission`,
//! `message_action`, `shortcut`) and slash commands.

use serde_json::{json, Value};

use crate::model;
use crate::state::State;

/// The `event_callback` around an event (the `payload` of an `events_api` envelope).
pub fn event_callback(st: &mut State, event: Value) -> Value {
    let n = st.next();
    json!({
        "token": "standin-verification-token",
        "team_id": st.team_id,
        "context_team_id": st.team_id,
        "context_enterprise_id": null,
        "api_app_id": st.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": format!("Ev0{}", model::suffix(n, 9)),
        "event_time": st.clock.now_secs(),
        "authorizations": [{
            "enterprise_id": null,
            "team_id": st.team_id,
            "user_id": st.bot_user_id,
            "is_bot": true,
            "is_enterprise_install": false,
        }],
        "is_ext_shared_channel": false,
    })
}

/// A user's message: stored in the channel (or thread) and returned as the `message`
/// event Slack sends for it. Returns `(ts, event)`.
pub fn user_message(
    st: &mut State,
    channel: &str,
    user: &str,
    text: &str,
    thread_ts: Option<&str>,
) -> Result<(String, Value), String> {
    let kind = st
        .channels
        .get(channel)
        .map(|c| c.kind)
        .ok_or_else(|| format!("unknown channel {channel}; call add_channel"))?;
    if let Some(t) = thread_ts {
        match st.messages.get(t) {
            Some(m) if m.channel == channel && !m.deleted => {
                if m.thread_ts.as_deref().is_some_and(|root| root != t) {
                    return Err(format!("{t} is a reply, not a thread's parent"));
                }
            }
            _ => return Err(format!("no message {t} in {channel} to reply to")),
        }
    }
    let n = st.next();
    let json = json!({
        "type": "message",
        "user": user,
        "text": text,
        "team": st.team_id,
        "client_msg_id": model::uuid_like(n, 0xc11e),
        "blocks": model::rich_text_of(text),
        "channel": channel,
    });
    let ts = st.insert_message(channel, json, thread_ts, false);
    let mut ev = st.messages[&ts].json.clone();
    ev["event_ts"] = json!(ts);
    ev["channel_type"] = json!(kind);
    Ok((ts, ev))
}

/// A stored message as an interaction payload carries it.
fn message_for_payload(st: &State, ts: &str) -> Value {
    let mut m = st.public_message(ts, false).unwrap_or(Value::Null);
    crate::web::strip_standin(&mut m);
    if let Some(o) = m.as_object_mut() {
        o.remove("channel");
    }
    m
}

/// Where an interactive element sits: a channel message or an ephemeral one.
pub struct Target {
    pub channel: String,
    pub ts: String,
    pub blocks: Value,
    pub ephemeral: bool,
}

pub fn find_target(st: &State, channel: &str, ts: &str, user: &str) -> Result<Target, String> {
    if let Some(m) = st.messages.get(ts) {
        if m.channel != channel {
            return Err(format!("message {ts} is in {}, not {channel}", m.channel));
        }
        if m.deleted {
            return Err(format!("message {ts} was deleted"));
        }
        return Ok(Target {
            channel: channel.to_string(),
            ts: ts.to_string(),
            blocks: m.json["blocks"].clone(),
            ephemeral: false,
        });
    }
    if let Some(e) = st
        .ephemerals
        .iter()
        .find(|e| e.ts == ts && e.channel == channel)
    {
        if e.user != user {
            return Err(format!(
                "ephemeral message {ts} is shown to {}, not {user}",
                e.user
            ));
        }
        return Ok(Target {
            channel: channel.to_string(),
            ts: ts.to_string(),
            blocks: e.json["blocks"].clone(),
            ephemeral: true,
        });
    }
    Err(format!("no message {ts} in {channel}"))
}

/// The element with this `action_id` in `blocks`, and its block's id.
pub fn find_element(blocks: &Value, action_id: &str) -> Result<(String, Value), String> {
    let all = model::elements(blocks);
    all.iter()
        .find(|(_, e)| e["action_id"] == action_id)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no element with action_id {action_id:?} (there are {:?})",
                all.iter()
                    .map(|(_, e)| e["action_id"].as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            )
        })
}

/// The options of `element` whose values are `values` (each must exist).
pub fn pick_options(element: &Value, values: &[&str]) -> Result<Vec<Value>, String> {
    let opts = model::options_of(element);
    values
        .iter()
        .map(|v| {
            opts.iter()
                .find(|o| o["value"] == *v)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "{} has no option {v:?} (values: {:?})",
                        element["action_id"],
                        opts.iter().map(|o| o["value"].clone()).collect::<Vec<_>>()
                    )
                })
        })
        .collect()
}

/// The action record and state value of using `element` with `values`.
pub fn action_and_state(
    st: &mut State,
    block_id: &str,
    element: &Value,
    values: &[&str],
) -> Result<(Value, Value), String> {
    let kind = element["type"].as_str().unwrap_or("").to_string();
    let action_ts = st.clock.next_ts();
    let mut action = json!({
        "type": kind,
        "action_id": element["action_id"],
        "block_id": block_id,
        "action_ts": action_ts,
    });
    let mut state = json!({ "type": kind });
    match kind.as_str() {
        "button" => {
            if !values.is_empty() {
                return Err("a button takes no values".into());
            }
            action["text"] = element["text"].clone();
            if !element["value"].is_null() {
                action["value"] = element["value"].clone();
            }
        }
        "static_select" | "radio_buttons" => {
            let [one] = values else {
                return Err(format!("{kind} takes exactly one value"));
            };
            let o = pick_options(element, &[one])?.remove(0);
            action["selected_option"] = o.clone();
            state["selected_option"] = o;
        }
        "multi_static_select" | "checkboxes" => {
            let opts = pick_options(element, values)?;
            if let Some(max) = element["max_selected_items"].as_u64() {
                if opts.len() as u64 > max {
                    return Err(format!("at most {max} items may be selected"));
                }
            }
            action["selected_options"] = json!(opts);
            state["selected_options"] = json!(opts);
        }
        "overflow" => {
            let [one] = values else {
                return Err("overflow takes exactly one value".into());
            };
            let o = pick_options(element, &[one])?.remove(0);
            action["selected_option"] = o;
        }
        other => return Err(format!("the stand-in does not drive {other} elements")),
    }
    if let Some(p) = element.get("placeholder").filter(|p| !p.is_null()) {
        action["placeholder"] = p.clone();
    }
    Ok((action, state))
}

/// A `block_actions` payload for using an element of a message.
pub fn block_actions(
    st: &mut State,
    user: &str,
    target: &Target,
    block_id: &str,
    element: &Value,
    values: &[&str],
) -> Result<Value, String> {
    let (action, state_value) = action_and_state(st, block_id, element, values)?;
    let trigger = st.issue_trigger(user);
    let response_url = st.issue_response_url(
        &target.channel,
        user,
        (!target.ephemeral).then_some(target.ts.as_str()),
    );
    let channel_name = st
        .channels
        .get(&target.channel)
        .map(|c| c.name.clone())
        .unwrap_or_default();
    // Slack's payload carries the state of every stateful element of the
    // message as this user left it, not only of the element used now.
    let key = (user.to_string(), target.ts.clone());
    let mut values = st
        .element_states
        .get(&key)
        .cloned()
        .unwrap_or_else(|| json!({}));
    if element["type"] != "button" {
        values[block_id][element["action_id"].as_str().unwrap_or("")] = state_value;
        st.element_states.insert(key, values.clone());
    }
    let state = json!({ "values": values });
    let mut p = json!({
        "type": "block_actions",
        "user": st.basic_user(user),
        "api_app_id": st.app_id,
        "token": "standin-verification-token",
        "container": {
            "type": "message",
            "message_ts": target.ts,
            "channel_id": target.channel,
            "is_ephemeral": target.ephemeral,
        },
        "trigger_id": trigger,
        "team": st.team_json(),
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": { "id": target.channel, "name": channel_name },
        "state": state,
        "response_url": response_url,
        "actions": [action],
    });
    if !target.ephemeral {
        p["message"] = message_for_payload(st, &target.ts);
    }
    Ok(p)
}

/// The state of a modal's inputs from `{action_id: value}`: a string for text inputs, a
/// string or `[..]` of option values for selects, checkboxes and radio buttons. Required
/// inputs must be given, as Slack's client enforces.
pub fn view_state(view: &Value, fields: &Value) -> Result<Value, String> {
    let given = fields
        .as_object()
        .ok_or("modal fields must be a JSON object {action_id: value}")?;
    let mut values = json!({});
    let mut used = std::collections::HashSet::new();
    for b in view["blocks"].as_array().into_iter().flatten() {
        if b["type"] != "input" {
            continue;
        }
        let block_id = b["block_id"].as_str().unwrap_or("").to_string();
        let e = &b["element"];
        let action_id = e["action_id"].as_str().unwrap_or("").to_string();
        let kind = e["type"].as_str().unwrap_or("").to_string();
        let optional = b["optional"] == true;
        let value = given.get(&action_id).or_else(|| given.get(&block_id));
        if value.is_some() {
            used.insert(action_id.clone());
            used.insert(block_id.clone());
        }
        let mut s = json!({ "type": kind });
        match (kind.as_str(), value) {
            ("plain_text_input" | "number_input" | "url_text_input" | "email_text_input", v) => {
                let text = v.and_then(Value::as_str).unwrap_or("");
                if text.is_empty() && !optional {
                    return Err(format!("input {action_id:?} is required"));
                }
                let n = text.chars().count() as u64;
                if let Some(max) = e["max_length"].as_u64() {
                    if n > max {
                        return Err(format!(
                            "input {action_id:?} allows {max} characters, got {n}"
                        ));
                    }
                }
                if let Some(min) = e["min_length"].as_u64() {
                    if n > 0 && n < min {
                        return Err(format!(
                            "input {action_id:?} needs {min} characters, got {n}"
                        ));
                    }
                }
                s["value"] = if text.is_empty() {
                    Value::Null
                } else {
                    json!(text)
                };
            }
            ("static_select" | "radio_buttons", v) => match v.and_then(Value::as_str) {
                Some(val) => {
                    s["selected_option"] = pick_options(e, &[val])?.remove(0);
                }
                None if optional => s["selected_option"] = Value::Null,
                None => return Err(format!("input {action_id:?} is required")),
            },
            ("multi_static_select" | "checkboxes", v) => {
                let vals: Vec<&str> = match v {
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    Some(Value::String(x)) => vec![x.as_str()],
                    _ => vec![],
                };
                if vals.is_empty() && !optional {
                    return Err(format!("input {action_id:?} is required"));
                }
                s["selected_options"] = json!(pick_options(e, &vals)?);
            }
            (other, _) => return Err(format!("the stand-in does not fill {other} inputs")),
        }
        values[&block_id][&action_id] = s;
    }
    for k in given.keys() {
        if !used.contains(k) {
            return Err(format!("the modal has no input {k:?}"));
        }
    }
    Ok(json!({ "values": values }))
}

/// A slash command as Slack sends it over Socket Mode.
pub fn slash_command(
    st: &mut State,
    user: &str,
    channel: &str,
    command: &str,
    text: &str,
) -> Value {
    let trigger = st.issue_trigger(user);
    let response_url = st.issue_response_url(channel, user, None);
    let channel_name = st
        .channels
        .get(channel)
        .map(|c| {
            if c.kind == "im" {
                "directmessage".to_string()
            } else {
                c.name.clone()
            }
        })
        .unwrap_or_default();
    json!({
        "token": "standin-verification-token",
        "team_id": st.team_id,
        "team_domain": st.team_domain,
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": st.user_name(user),
        "command": command,
        "text": text,
        "api_app_id": st.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger,
    })
}
