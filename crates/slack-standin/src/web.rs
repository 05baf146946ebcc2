//! The Web API side: `POST|GET /api/<method>` with Slack's authentication, parameter
//! encodings (query, form, JSON), `{"ok":…}` answers, injected faults, and the methods the
//! bot uses; plus the `response_url`s handed out with interactions and slash commands.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::model::{self, str_param, truthy};
use crate::state::{ApiCall, Ephemeral, FaultKind, Shared, State};

/// Marker put on a response that must not be sent: the server loop closes the connection
/// instead (a response lost after Slack carried the call out).
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

type Answer = Result<Value, Value>;

fn err(code: &str) -> Value {
    json!({ "ok": false, "error": code })
}

fn ok(mut v: Value) -> Value {
    v["ok"] = json!(true);
    v
}

/// Parameters from the query string and the body, whichever encoding the caller chose.
fn parse_params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (Map<String, Value>, bool) {
    let mut m = Map::new();
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            m.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut is_json = false;
    if !body.is_empty() {
        if ct.starts_with("application/json") {
            is_json = true;
            if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
                m.extend(o);
            }
        } else {
            for (k, v) in url::form_urlencoded::parse(body) {
                m.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    (model::normalise_params(m), is_json)
}

pub async fn api_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path(method): Path<String>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = std::time::Instant::now();
    let (mut params, is_json) = parse_params(&uri, &headers, &body);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    // Slack reads a token from the body only in form posts and query strings.
    let body_token = params
        .remove("token")
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|_| !is_json);
    let token = bearer.or(body_token);

    let (status, response, retry_after, drop_conn) = {
        let mut st = shared.lock();
        let token_kind: &'static str = match token.as_deref() {
            None => "none",
            Some(t) if t == st.bot_token => "bot",
            Some(t) if t == st.app_token => "app",
            Some(_) => "invalid",
        };
        let params_v = Value::Object(params.clone());
        let fault = take_fault(&mut st, &method, &params_v);
        let mut injected = None;
        let mut retry_after = None;
        let mut drop_conn = false;
        let (status, response) = match fault {
            Some(FaultKind::RateLimited { retry_after_secs }) => {
                injected = Some("rate_limited");
                retry_after = Some(retry_after_secs);
                (429, err("ratelimited"))
            }
            Some(FaultKind::Status { status, body }) => {
                injected = Some("status");
                (status, body)
            }
            other => {
                let answer = route(&mut st, &method, token_kind, &params);
                let v = match answer {
                    Ok(v) => ok(v),
                    Err(e) => e,
                };
                if v["ok"] == true && st.check_models {
                    let r = model::check_response(&method, &v);
                    st.check(r);
                }
                if matches!(other, Some(FaultKind::DropAfterCommit)) {
                    injected = Some("dropped_after_commit");
                    drop_conn = true;
                }
                (200, v)
            }
        };
        let index = st.calls.len();
        let call = ApiCall {
            index,
            method: method.clone(),
            http_method: http_method.to_string(),
            params: params_v,
            token_kind,
            status,
            response: if drop_conn {
                Value::Null
            } else {
                response.clone()
            },
            injected,
            at,
        };
        st.call_subscribers
            .retain(|tx| tx.send(call.clone()).is_ok());
        st.calls.push(call);
        (status, response, retry_after, drop_conn)
    };
    shared.notify();
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json; charset=utf-8")],
        response.to_string(),
    )
        .into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&secs.to_string()).unwrap(),
        );
    }
    if drop_conn {
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

fn take_fault(st: &mut State, method: &str, params: &Value) -> Option<FaultKind> {
    let text = params.to_string();
    let pos = st.faults.iter().position(|f| {
        f.remaining > 0
            && (f.method == "*" || f.method == method)
            && f.params_contain
                .as_deref()
                .is_none_or(|needle| text.contains(needle))
    })?;
    let f = &mut st.faults[pos];
    f.remaining -= 1;
    let kind = f.kind.clone();
    if f.remaining == 0 {
        st.faults.remove(pos);
    }
    Some(kind)
}

fn route(st: &mut State, method: &str, token: &str, p: &Map<String, Value>) -> Answer {
    const KNOWN: &[&str] = &[
        "auth.test",
        "apps.connections.open",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.delete",
        "conversations.open",
        "conversations.history",
        "conversations.replies",
        "views.open",
        "views.update",
        "users.info",
        "usergroups.users.list",
    ];
    if !KNOWN.contains(&method) {
        return Err(json!({ "ok": false, "error": "unknown_method", "req_method": method }));
    }
    match token {
        "none" => return Err(err("not_authed")),
        "invalid" => return Err(err("invalid_auth")),
        // Socket Mode's URL needs the app-level token; everything else the bot token.
        "bot" if method == "apps.connections.open" => return Err(err("not_allowed_token_type")),
        "app" if method != "apps.connections.open" => return Err(err("not_allowed_token_type")),
        _ => {}
    }
    match method {
        "auth.test" => Ok(json!({
            "url": format!("https://{}.slack.com/", st.team_domain),
            "team": "Stand-in Workspace",
            "user": st.bot_name,
            "team_id": st.team_id,
            "user_id": st.bot_user_id,
            "bot_id": st.bot_id,
            "is_enterprise_install": false,
        })),
        "apps.connections.open" => {
            let n = st.next();
            let ticket = model::uuid_like(n, 0x71c4e7);
            st.tickets.insert(ticket.clone(), false);
            Ok(json!({
                "url": format!("{}/link/?ticket={ticket}&app_id={}", st.ws_base, st.app_id)
            }))
        }
        "chat.postMessage" => post_message(st, p),
        "chat.update" => update_message(st, p),
        "chat.postEphemeral" => post_ephemeral(st, p),
        "chat.delete" => delete_message(st, p),
        "conversations.open" => open_conversation(st, p),
        "conversations.history" => history(st, p),
        "conversations.replies" => replies(st, p),
        "views.open" => views_open(st, p),
        "views.update" => views_update(st, p),
        "users.info" => {
            let user = str_param(p, "user").ok_or_else(|| err("user_not_found"))?;
            let include_locale = truthy(p.get("include_locale")).unwrap_or(false);
            let u = st
                .user_json(user, include_locale)
                .ok_or_else(|| err("user_not_found"))?;
            Ok(json!({ "user": u }))
        }
        "usergroups.users.list" => {
            let g = str_param(p, "usergroup").ok_or_else(|| err("no_such_subteam"))?;
            let (_, members) = st.usergroups.get(g).ok_or_else(|| err("no_such_subteam"))?;
            Ok(json!({ "users": members }))
        }
        _ => Err(err("unknown_method")),
    }
}

/// The channel a message call names: a channel id, or a user id (Slack posts to the
/// app's DM with that user).
fn resolve_channel(st: &mut State, p: &Map<String, Value>) -> Result<String, Value> {
    let c = str_param(p, "channel").ok_or_else(|| err("channel_not_found"))?;
    if st.channels.contains_key(c) {
        return Ok(c.to_string());
    }
    if c.starts_with('U') || c.starts_with('W') {
        if st.users.contains_key(c) {
            return Ok(st.ensure_dm(c));
        }
        return Err(err("channel_not_found"));
    }
    Err(err("channel_not_found"))
}

/// `text`, `blocks`, `attachments` and `metadata` checked as Slack checks them.
fn check_content(p: &Map<String, Value>, need_content: bool) -> Result<(), Value> {
    let text = p.get("text").and_then(Value::as_str).unwrap_or("");
    let has_blocks = p
        .get("blocks")
        .is_some_and(|b| b.as_array().is_some_and(|a| !a.is_empty()));
    let has_att = p
        .get("attachments")
        .is_some_and(|b| b.as_array().is_some_and(|a| !a.is_empty()));
    if need_content && text.is_empty() && !has_blocks && !has_att {
        return Err(err("no_text"));
    }
    if text.chars().count() > 40_000 {
        return Err(err("msg_too_long"));
    }
    if let Some(b) = p.get("blocks").filter(|b| !b.is_null()) {
        if let Err(messages) = model::validate_blocks(b, "message") {
            return Err(json!({
                "ok": false,
                "error": "invalid_blocks",
                "errors": messages,
                "response_metadata": { "messages": messages },
            }));
        }
    }
    if let Some(m) = p.get("metadata").filter(|m| !m.is_null()) {
        let good = m["event_type"].as_str().is_some_and(|s| !s.is_empty())
            && (m["event_payload"].is_object() || m["event_payload"].is_null());
        if !good {
            return Err(err("invalid_metadata_format"));
        }
    }
    Ok(())
}

fn post_message(st: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = resolve_channel(st, p)?;
    check_content(p, true)?;
    let thread_ts = str_param(p, "thread_ts").map(str::to_string);
    if let Some(t) = &thread_ts {
        match st.messages.get(t) {
            Some(m) if m.channel == channel && !m.deleted => {}
            _ => {
                st.errors.push(format!(
                    "chat.postMessage with thread_ts {t} that is no message of {channel}"
                ));
                return Err(err("thread_not_found"));
            }
        }
    }
    let mut pv = Value::Object(p.clone());
    model::fill_ids(&mut pv["blocks"], &mut st.counter);
    let mut m = st.bot_message_json(&pv);
    m["channel"] = json!(channel);
    // What the bot asked for, kept so tests can check that owner text is not unfurled.
    for k in [
        "unfurl_links",
        "unfurl_media",
        "mrkdwn",
        "parse",
        "link_names",
    ] {
        if let Some(v) = p.get(k) {
            m[format!("standin_{k}")] = v.clone();
        }
    }
    let broadcast = truthy(p.get("reply_broadcast")).unwrap_or(false);
    let ts = st.insert_message(&channel, m, thread_ts.as_deref(), broadcast);
    let mut message = st.public_message(&ts, true).unwrap();
    strip_standin(&mut message);
    if let Some(o) = message.as_object_mut() {
        o.remove("channel");
    }
    echo_bot_message(st, &channel, &ts);
    Ok(json!({ "channel": channel, "ts": ts, "message": message }))
}

/// Fields the stand-in keeps for tests but Slack would not return.
pub fn strip_standin(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with("standin_"));
    }
}

/// Slack delivers an app's own messages back to it as `message` events (with `bot_id`);
/// a bot has to ignore them.
fn echo_bot_message(st: &mut State, channel: &str, ts: &str) {
    if !st.echo_bot_messages {
        return;
    }
    let Some(m) = st.messages.get(ts).cloned() else {
        return;
    };
    let kind = st.channels.get(channel).map_or("channel", |c| c.kind);
    let mut ev = m.json.clone();
    strip_standin(&mut ev);
    if let Some(o) = ev.as_object_mut() {
        o.remove("metadata");
        o.remove("reply_count");
        o.remove("reply_users");
        o.remove("reply_users_count");
        o.remove("latest_reply");
    }
    ev["channel"] = json!(channel);
    ev["event_ts"] = json!(ts);
    ev["channel_type"] = json!(kind);
    let payload = crate::events::event_callback(st, ev);
    if let Err(e) = st.enqueue("events_api", "message".into(), payload) {
        st.errors.push(e);
    }
}

fn find_own_message(st: &State, channel: &str, ts: Option<&str>) -> Result<String, Value> {
    let ts = ts.ok_or_else(|| err("message_not_found"))?;
    match st.messages.get(ts) {
        Some(m) if m.channel == channel && !m.deleted => Ok(ts.to_string()),
        _ => Err(err("message_not_found")),
    }
}

fn update_message(st: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = resolve_channel(st, p)?;
    let ts = find_own_message(st, &channel, str_param(p, "ts"))?;
    if st.messages[&ts].json["user"] != json!(st.bot_user_id) {
        return Err(err("cant_update_message"));
    }
    check_content(p, false)?;
    let text_given = p.contains_key("text");
    let bot_user = st.bot_user_id.clone();
    let edit_ts = st.clock.next_ts();
    let mut counter = st.counter;
    let m = st.messages.get_mut(&ts).unwrap();
    if text_given {
        m.json["text"] = p["text"].clone();
    }
    // Slack keeps blocks unless new ones are given; `[]` removes them.
    if let Some(b) = p.get("blocks") {
        if b.as_array().is_some_and(|a| a.is_empty()) {
            if let Some(o) = m.json.as_object_mut() {
                o.remove("blocks");
            }
        } else if b.is_array() {
            let mut b = b.clone();
            model::fill_ids(&mut b, &mut counter);
            m.json["blocks"] = b;
        }
    }
    if let Some(md) = p.get("metadata").filter(|v| v.is_object()) {
        m.json["metadata"] = md.clone();
    }
    m.json["edited"] = json!({ "user": bot_user, "ts": edit_ts });
    let m = m.clone();
    st.counter = counter;
    let mut message = m.json;
    let thread_ts = m.thread_ts;
    strip_standin(&mut message);
    for k in [
        "ts",
        "channel",
        "thread_ts",
        "reply_count",
        "reply_users",
        "reply_users_count",
        "latest_reply",
        "parent_user_id",
    ] {
        if let Some(o) = message.as_object_mut() {
            o.remove(k);
        }
    }
    let mut out = json!({
        "channel": channel,
        "ts": ts,
        "text": message["text"].clone(),
        "message": message,
    });
    if let Some(t) = thread_ts {
        out["thread_ts"] = json!(t);
    }
    Ok(out)
}

fn delete_message(st: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = resolve_channel(st, p)?;
    let ts = find_own_message(st, &channel, str_param(p, "ts"))?;
    if st.messages[&ts].json["user"] != json!(st.bot_user_id) {
        return Err(err("cant_delete_message"));
    }
    st.messages.get_mut(&ts).unwrap().deleted = true;
    if let Some(c) = st.channels.get_mut(&channel) {
        c.timeline.retain(|t| *t != ts);
    }
    Ok(json!({ "channel": channel, "ts": ts }))
}

fn post_ephemeral(st: &mut State, p: &Map<String, Value>) -> Answer {
    let channel = resolve_channel(st, p)?;
    let user = str_param(p, "user")
        .ok_or_else(|| err("user_not_found"))?
        .to_string();
    if !st.users.contains_key(&user) {
        return Err(err("user_not_found"));
    }
    let member = st
        .channels
        .get(&channel)
        .is_some_and(|c| c.members.contains(&user));
    if !member {
        return Err(err("user_not_in_channel"));
    }
    check_content(p, true)?;
    let ts = st.clock.next_ts();
    let mut pv = Value::Object(p.clone());
    model::fill_ids(&mut pv["blocks"], &mut st.counter);
    let mut m = st.bot_message_json(&pv);
    m["ts"] = json!(ts);
    st.ephemerals.push(Ephemeral {
        channel,
        user,
        ts: ts.clone(),
        thread_ts: str_param(p, "thread_ts").map(str::to_string),
        json: m,
        source: "chat.postEphemeral",
    });
    Ok(json!({ "message_ts": ts }))
}

fn open_conversation(st: &mut State, p: &Map<String, Value>) -> Answer {
    if let Some(c) = str_param(p, "channel") {
        if st.channels.contains_key(c) {
            return Ok(json!({ "channel": { "id": c }, "no_op": true, "already_open": true }));
        }
        return Err(err("channel_not_found"));
    }
    let users: Vec<String> = match p.get("users") {
        Some(Value::String(s)) => s
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    match users.as_slice() {
        [] => Err(err("users_list_not_supplied")),
        [u] => {
            if !st.users.contains_key(u) {
                return Err(err("user_not_found"));
            }
            let existed = st.dms.contains_key(u);
            let d = st.ensure_dm(u);
            let mut out = json!({ "channel": { "id": d } });
            if existed {
                out["no_op"] = json!(true);
                out["already_open"] = json!(true);
            }
            Ok(out)
        }
        _ => Err(err("not_supported")),
    }
}

/// Messages newest first within `oldest`/`latest`, paged by `limit` and `cursor`.
fn page(
    st: &State,
    list: Vec<String>,
    p: &Map<String, Value>,
    with_metadata: bool,
    newest_first: bool,
) -> Answer {
    let inclusive = truthy(p.get("inclusive")).unwrap_or(false);
    let ts_num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    let latest = str_param(p, "latest").map(ts_num);
    let oldest = str_param(p, "oldest").map(ts_num);
    let mut selected: Vec<String> = list
        .into_iter()
        .filter(|t| {
            let x = ts_num(t);
            latest.is_none_or(|l| if inclusive { x <= l } else { x < l })
                && oldest.is_none_or(|o| if inclusive { x >= o } else { x > o })
        })
        .collect();
    if newest_first {
        selected.reverse();
    }
    let limit = p
        .get("limit")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(999) as usize;
    let start = match str_param(p, "cursor") {
        Some(c) => c
            .strip_prefix("standin:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| err("invalid_cursor"))?,
        None => 0,
    };
    let end = (start + limit).min(selected.len());
    let messages: Vec<Value> = selected[start.min(end)..end]
        .iter()
        .filter_map(|t| {
            let mut m = st.public_message(t, with_metadata)?;
            strip_standin(&mut m);
            if let Some(o) = m.as_object_mut() {
                o.remove("channel");
            }
            Some(m)
        })
        .collect();
    let has_more = end < selected.len();
    Ok(json!({
        "messages": messages,
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": { "next_cursor": if has_more { format!("standin:{end}") } else { String::new() } },
    }))
}

fn history(st: &mut State, p: &Map<String, Value>) -> Answer {
    let c = str_param(p, "channel").ok_or_else(|| err("channel_not_found"))?;
    let ch = st.channels.get(c).ok_or_else(|| err("channel_not_found"))?;
    if !ch.members.contains(&st.bot_user_id) {
        return Err(err("not_in_channel"));
    }
    let list: Vec<String> = ch
        .timeline
        .iter()
        .filter(|t| st.messages.get(*t).is_some_and(|m| !m.deleted))
        .cloned()
        .collect();
    let md = truthy(p.get("include_all_metadata")).unwrap_or(false);
    page(st, list, p, md, true)
}

fn replies(st: &mut State, p: &Map<String, Value>) -> Answer {
    let c = str_param(p, "channel").ok_or_else(|| err("channel_not_found"))?;
    if !st.channels.contains_key(c) {
        return Err(err("channel_not_found"));
    }
    let ts = str_param(p, "ts").ok_or_else(|| err("thread_not_found"))?;
    let parent = st
        .messages
        .get(ts)
        .filter(|m| m.channel == c && !m.deleted)
        .ok_or_else(|| err("thread_not_found"))?;
    // A reply's ts names its thread too.
    let root = parent.thread_ts.clone().unwrap_or_else(|| ts.to_string());
    let root_msg = st
        .messages
        .get(&root)
        .ok_or_else(|| err("thread_not_found"))?;
    let mut list = vec![root.clone()];
    list.extend(
        root_msg
            .replies
            .iter()
            .filter(|t| st.messages.get(*t).is_some_and(|m| !m.deleted))
            .cloned(),
    );
    let md = truthy(p.get("include_all_metadata")).unwrap_or(false);
    page(st, list, p, md, false)
}

fn check_view(view: Option<&Value>) -> Result<Value, Value> {
    let v = view.cloned().ok_or_else(|| err("invalid_arguments"))?;
    if v["type"] != "modal" {
        return Err(err("invalid_arguments"));
    }
    let title_len = v["title"]["text"].as_str().map_or(0, |s| s.chars().count());
    let mut errors = vec![];
    if title_len == 0 || title_len > 24 {
        errors.push(
            "[ERROR] must be between 1 and 24 characters [json-pointer:/view/title/text]"
                .to_string(),
        );
    }
    for k in ["submit", "close"] {
        if v[k]["text"]
            .as_str()
            .is_some_and(|s| s.chars().count() > 24)
        {
            errors.push(format!(
                "[ERROR] must be less than 25 characters [json-pointer:/view/{k}/text]"
            ));
        }
    }
    let has_input = v["blocks"]
        .as_array()
        .is_some_and(|a| a.iter().any(|b| b["type"] == "input"));
    if has_input && v["submit"].is_null() {
        errors.push(
            "[ERROR] submit is required when an input block is present [json-pointer:/view/submit]"
                .into(),
        );
    }
    if v["private_metadata"]
        .as_str()
        .is_some_and(|s| s.len() > 3000)
    {
        errors.push(
            "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]"
                .into(),
        );
    }
    if let Err(mut e) = model::validate_blocks(&v["blocks"], "modal") {
        errors.append(&mut e);
    }
    if let Err(e) = model::check::<slack_morphism::prelude::SlackView>("view", &v) {
        errors.push(format!("[ERROR] {e}"));
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(
            json!({ "ok": false, "error": "invalid_arguments", "response_metadata": { "messages": errors } }),
        )
    }
}

fn views_open(st: &mut State, p: &Map<String, Value>) -> Answer {
    let trigger_id = str_param(p, "trigger_id").ok_or_else(|| err("invalid_trigger_id"))?;
    let mut view = check_view(p.get("view"))?;
    model::fill_ids(&mut view["blocks"], &mut st.counter);
    let ttl = st.trigger_ttl;
    let t = st
        .triggers
        .get_mut(trigger_id)
        .ok_or_else(|| err("invalid_trigger_id"))?;
    if t.used {
        return Err(err("invalid_trigger_id"));
    }
    let age = t.issued_at.elapsed();
    if ttl.is_some_and(|ttl| age > ttl) {
        return Err(err("expired_trigger_id"));
    }
    t.used = true;
    let user = t.user.clone();
    let v = st.open_view(&user, view, None, Some(age));
    Ok(json!({ "view": v }))
}

fn views_update(st: &mut State, p: &Map<String, Value>) -> Answer {
    let mut view = check_view(p.get("view"))?;
    model::fill_ids(&mut view["blocks"], &mut st.counter);
    let id = match (str_param(p, "view_id"), str_param(p, "external_id")) {
        (Some(id), _) => id.to_string(),
        (None, Some(ext)) => st
            .views
            .values()
            .find(|v| v.json["external_id"] == ext)
            .map(|v| v.id.clone())
            .ok_or_else(|| err("not_found"))?,
        _ => return Err(err("invalid_arguments")),
    };
    let rec = st.views.get_mut(&id).ok_or_else(|| err("not_found"))?;
    if let Some(h) = str_param(p, "hash") {
        if rec.json["hash"] != h {
            return Err(err("hash_conflict"));
        }
    }
    let n = rec.json["hash"]
        .as_str()
        .and_then(|h| h.rsplit('.').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1);
    let mut nv = view;
    for k in [
        "id",
        "team_id",
        "app_id",
        "app_installed_team_id",
        "bot_id",
        "root_view_id",
        "previous_view_id",
        "state",
    ] {
        nv[k] = rec.json[k].clone();
    }
    for k in ["private_metadata", "callback_id", "external_id"] {
        if nv[k].is_null() {
            nv[k] = json!("");
        }
    }
    for k in ["clear_on_close", "notify_on_close"] {
        if nv[k].is_null() {
            nv[k] = json!(false);
        }
    }
    nv["hash"] = json!(format!("{id}.{}", n + 1));
    rec.json = nv.clone();
    Ok(json!({ "view": nv }))
}

/// `POST /actions/<team>/<n>/<secret>`: a response_url. JSON body with `text`/`blocks`,
/// `response_type` (`ephemeral` by default, or `in_channel`), `replace_original`,
/// `delete_original`.
pub async fn response_url_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = std::time::Instant::now();
    let uri: Uri = "/".parse().unwrap();
    let (params, _) = parse_params(&uri, &headers, &body);
    let (status, answer) = {
        let mut st = shared.lock();
        let answer = respond(&mut st, &rest, &params);
        let (status, v) = match answer {
            Ok(v) => (200, ok(v)),
            Err(e) => (404, e),
        };
        let index = st.calls.len();
        st.calls.push(ApiCall {
            index,
            method: "response_url".into(),
            http_method: "POST".into(),
            params: Value::Object(params),
            token_kind: "none",
            status,
            response: v.clone(),
            injected: None,
            at,
        });
        (status, v)
    };
    shared.notify();
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        answer.to_string(),
    )
        .into_response()
}

fn respond(st: &mut State, token: &str, p: &Map<String, Value>) -> Answer {
    let r = st
        .response_urls
        .get_mut(token)
        .ok_or_else(|| err("expired_url"))?;
    // Slack allows five responses within 30 minutes.
    if r.uses >= 5 {
        return Err(err("used_url"));
    }
    r.uses += 1;
    let r = r.clone();
    let pv = Value::Object(p.clone());
    if truthy(p.get("delete_original")).unwrap_or(false) {
        if let Some(ts) = &r.message_ts {
            if let Some(m) = st.messages.get_mut(ts) {
                m.deleted = true;
            }
            if let Some(c) = st.channels.get_mut(&r.channel) {
                c.timeline.retain(|t| t != ts);
            }
        }
        return Ok(json!({}));
    }
    check_content(p, true)?;
    if truthy(p.get("replace_original")).unwrap_or(false) {
        if let Some(ts) = &r.message_ts {
            if let Some(m) = st.messages.get_mut(ts) {
                m.json["text"] = pv["text"].clone();
                if pv["blocks"].is_array() {
                    m.json["blocks"] = pv["blocks"].clone();
                } else if let Some(o) = m.json.as_object_mut() {
                    o.remove("blocks");
                }
                return Ok(json!({}));
            }
        }
    }
    let mut m = st.bot_message_json(&pv);
    if pv["response_type"] == "in_channel" {
        m["channel"] = json!(r.channel);
        let thread = str_param(p, "thread_ts").map(str::to_string);
        st.insert_message(&r.channel, m, thread.as_deref(), false);
    } else {
        let ts = st.clock.next_ts();
        m["ts"] = json!(ts);
        st.ephemerals.push(Ephemeral {
            channel: r.channel.clone(),
            user: r.user.clone(),
            ts,
            thread_ts: str_param(p, "thread_ts").map(str::to_string),
            json: m,
            source: "response_url",
        });
    }
    Ok(json!({}))
}
