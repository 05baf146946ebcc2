//! REST side of the stand-in: Discord API v10 under `/api/v10`, the shapes serenity 0.12.5
//! deserializes, Discord's status codes and error bodies, rate-limit headers, fault
//! injection, and a record of every call (unknown endpoints included).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use serenity::model::prelude as sm;

use super::model::*;
use super::state::{thread_options, InteractionRec, ModalRec, Reply, Shared, State};
use super::RecordedCall;

pub async fn rest_handler(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = std::time::Instant::now();
    let full_path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (json_body, files) = parse_body(&content_type, &body);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let audit_log_reason = headers
        .get("x-audit-log-reason")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let (reply, path, injected) = {
        let mut st = shared.lock();
        let (path, versioned) = match full_path.strip_prefix("/api/v10") {
            Some(p) => (p.to_string(), true),
            None => (full_path.clone(), false),
        };
        let fault = if versioned {
            take_fault(&mut st, method.as_str(), &path, json_body.as_ref())
        } else {
            None
        };
        let (reply, injected) = if !versioned {
            (Reply::not_found(), false)
        } else if let Some((r, false)) = fault {
            (r, true)
        } else {
            let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
            let needs_auth = !matches!(segs.first(), Some(&"interactions") | Some(&"webhooks"));
            let expected = format!("Bot {}", st.token);
            let done = if needs_auth && auth.as_deref() != Some(expected.as_str()) {
                Reply::error(401, 0, "401: Unauthorized")
            } else {
                let body = json_body.clone().unwrap_or(Value::Null);
                route(
                    &mut st,
                    method.as_str(),
                    &segs,
                    query.as_deref(),
                    &body,
                    &files,
                )
            };
            match fault {
                // Done, but the caller only learns of the fault.
                Some((r, true)) => (r, true),
                _ => (done, false),
            }
        };
        let index = st.calls.len();
        let call = RecordedCall {
            index,
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            body: json_body,
            files,
            status: reply.status,
            response: reply.body.clone(),
            injected,
            audit_log_reason,
            at,
        };
        st.call_subscribers
            .retain(|tx| tx.send(call.clone()).is_ok());
        st.calls.push(call);
        (reply, path, injected)
    };
    shared.notify();
    let _ = (path, injected);
    into_response(reply)
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match &reply.body {
        Some(b) => (
            status,
            [("content-type", "application/json")],
            b.to_string(),
        )
            .into_response(),
        None => status.into_response(),
    };
    let h = resp.headers_mut();
    let now = now_ms() as f64 / 1000.0;
    if reply.status != 429 {
        // Every Discord response carries bucket headers.
        h.insert("x-ratelimit-limit", HeaderValue::from_static("5"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("4"));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&format!("{:.3}", now + 1.0)).unwrap(),
        );
        h.insert("x-ratelimit-reset-after", HeaderValue::from_static("1.000"));
        h.insert(
            "x-ratelimit-bucket",
            HeaderValue::from_static("standinbucket0000000000000000000"),
        );
    }
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(&v)) {
            h.insert(k, v);
        }
    }
    resp
}

/// JSON body, or the `payload_json` part of a multipart body (plus its file names).
fn parse_body(content_type: &str, body: &[u8]) -> (Option<Value>, Vec<String>) {
    if body.is_empty() {
        return (None, vec![]);
    }
    if let Some(b) = content_type.split("boundary=").nth(1) {
        let boundary = format!("--{}", b.trim_matches('"'));
        let text = String::from_utf8_lossy(body);
        let mut payload = None;
        let mut files = vec![];
        for part in text.split(boundary.as_str()) {
            let Some((head, content)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            if head.contains("name=\"payload_json\"") {
                payload = serde_json::from_str(content).ok();
            } else if let Some(f) = head.split("filename=\"").nth(1) {
                files.push(f.split('"').next().unwrap_or("").to_string());
            }
        }
        return (payload, files);
    }
    match serde_json::from_slice(body) {
        Ok(v) => (Some(v), vec![]),
        Err(_) => (
            Some(Value::String(String::from_utf8_lossy(body).into_owned())),
            vec![],
        ),
    }
}

/// The first matching fault's reply, and whether the request is carried out before it.
fn take_fault(
    st: &mut State,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<(Reply, bool)> {
    let pos = st.faults.iter().position(|f| {
        f.remaining > 0
            && (f.method == "*" || f.method.eq_ignore_ascii_case(method))
            && path.starts_with(&f.path_prefix)
            && f.body_contains.as_deref().is_none_or(|text| {
                body.is_some_and(|b| match b {
                    Value::String(s) => s.contains(text),
                    other => other.to_string().contains(text),
                })
            })
    })?;
    let f = &mut st.faults[pos];
    f.remaining -= 1;
    let after = f.after;
    let mut reply = Reply::json(f.status, f.body.clone());
    if f.status == 429 {
        let retry_after = f
            .body
            .get("retry_after")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        let global = f
            .body
            .get("global")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let reset = now_ms() as f64 / 1000.0 + retry_after;
        reply.headers = vec![
            (
                "retry-after".into(),
                format!("{}", retry_after.ceil() as u64),
            ),
            ("x-ratelimit-limit".into(), "5".into()),
            ("x-ratelimit-remaining".into(), "0".into()),
            ("x-ratelimit-reset".into(), format!("{reset:.3}")),
            (
                "x-ratelimit-reset-after".into(),
                format!("{retry_after:.3}"),
            ),
            (
                "x-ratelimit-bucket".into(),
                "standinbucket0000000000000000000".into(),
            ),
            (
                "x-ratelimit-scope".into(),
                if global { "global" } else { "user" }.into(),
            ),
        ];
        if global {
            reply
                .headers
                .push(("x-ratelimit-global".into(), "true".into()));
        }
    }
    if f.remaining == 0 {
        st.faults.remove(pos);
    }
    Some((reply, after))
}

fn sid(s: &str) -> Option<u64> {
    s.parse().ok().filter(|v| *v > 0)
}

/// Validate a reply body against the serenity model the caller will decode it into.
fn checked<T: serde::de::DeserializeOwned>(
    st: &mut State,
    what: &str,
    status: u16,
    body: Value,
) -> Reply {
    if st.check_models {
        let r = check_model::<T>(what, &body);
        st.check(r);
    }
    Reply::json(status, body)
}

fn route(
    st: &mut State,
    method: &str,
    segs: &[&str],
    query: Option<&str>,
    body: &Value,
    files: &[String],
) -> Reply {
    match (method, segs) {
        // ------------------------------------------------------------ gateway, users, app
        ("GET", ["gateway"]) => {
            let b = json!({ "url": st.gateway_url });
            checked::<sm::Gateway>(st, "Gateway", 200, b)
        }
        ("GET", ["gateway", "bot"]) => {
            let b = json!({ "url": st.gateway_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 } });
            checked::<sm::BotGateway>(st, "BotGateway", 200, b)
        }
        ("GET", ["users", "@me"]) => {
            let b = current_user_json(st.bot_id, &st.bot_name);
            checked::<sm::CurrentUser>(st, "CurrentUser", 200, b)
        }
        ("GET", ["users", "@me", "guilds"]) => {
            let b: Vec<Value> = st
                .guilds
                .iter()
                .map(|(g, r)| {
                    json!({ "id": id(*g), "name": r.name, "icon": null, "owner": false,
                    "permissions": DEFAULT_PERMISSIONS, "features": [] })
                })
                .collect();
            Reply::ok(json!(b))
        }
        ("GET", ["users", uid]) => match sid(uid).filter(|u| st.users.contains_key(u)) {
            Some(u) => {
                let b = st.user_obj(u);
                checked::<sm::User>(st, "User", 200, b)
            }
            None => Reply::error(404, 10013, "Unknown User"),
        },
        ("POST", ["users", "@me", "channels"]) => {
            let Some(uid) = body.get("recipient_id").and_then(as_id) else {
                return Reply::invalid_form("recipient_id: This field is required");
            };
            let cid = st.ensure_dm(uid);
            let b = st.channels[&cid].clone();
            checked::<sm::PrivateChannel>(st, "PrivateChannel", 200, b)
        }
        ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]) => {
            let b = json!({
                "id": id(st.app_id), "name": st.bot_name, "icon": null, "description": "",
                "bot_public": false, "bot_require_code_grant": false, "verify_key": "0".repeat(64),
                "owner": st.user_obj(st.bot_id), "team": null, "flags": 0, "bot": current_user_json(st.bot_id, &st.bot_name),
                "summary": "", "hook": true, "integration_types_config": { "0": {} },
            });
            checked::<sm::CurrentApplicationInfo>(st, "CurrentApplicationInfo", 200, b)
        }

        // ------------------------------------------------------------ commands
        (_, ["applications", app, "commands", rest @ ..]) => {
            commands(st, method, app, None, rest, body)
        }
        (_, ["applications", app, "guilds", gid, "commands", rest @ ..]) => match sid(gid) {
            Some(g) if st.guilds.contains_key(&g) => commands(st, method, app, Some(g), rest, body),
            _ => Reply::error(403, 50001, "Missing Access"),
        },

        // ------------------------------------------------------------ channels
        ("GET", ["channels", cid]) => match sid(cid).and_then(|c| st.channels.get(&c).cloned()) {
            Some(ch) => checked::<sm::Channel>(st, "Channel", 200, ch),
            None => Reply::unknown_channel(),
        },
        ("PATCH", ["channels", cid]) => {
            let Some(c) = sid(cid).filter(|c| st.channels.contains_key(c)) else {
                return Reply::unknown_channel();
            };
            let ch = st.channels.get_mut(&c).unwrap();
            merge_fields(
                ch,
                body,
                &[
                    "name",
                    "topic",
                    "rate_limit_per_user",
                    "nsfw",
                    "position",
                    "parent_id",
                ],
            );
            if ch.get("thread_metadata").is_some() {
                for k in ["archived", "locked", "auto_archive_duration", "invitable"] {
                    if let Some(v) = body.get(k) {
                        ch["thread_metadata"][k] = v.clone();
                    }
                }
            }
            let ch = ch.clone();
            checked::<sm::Channel>(st, "Channel", 200, ch)
        }
        ("POST", ["channels", cid, "typing"]) => {
            match sid(cid).filter(|c| st.channels.contains_key(c)) {
                Some(_) => Reply::no_content(),
                None => Reply::unknown_channel(),
            }
        }
        ("GET", ["channels", cid, "messages"]) => {
            let Some(c) = sid(cid).filter(|c| st.channels.contains_key(c)) else {
                return Reply::unknown_channel();
            };
            let q = parse_query(query);
            let limit = q
                .iter()
                .find(|(k, _)| k == "limit")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(50usize);
            let before = q
                .iter()
                .find(|(k, _)| k == "before")
                .and_then(|(_, v)| v.parse::<u64>().ok());
            let after = q
                .iter()
                .find(|(k, _)| k == "after")
                .and_then(|(_, v)| v.parse::<u64>().ok());
            let mut list: Vec<Value> = st
                .messages_in(c)
                .into_iter()
                .filter(|m| {
                    let mid = as_id(&m["id"]).unwrap_or(0);
                    before.is_none_or(|b| mid < b) && after.is_none_or(|a| mid > a)
                })
                .collect();
            list.reverse(); // newest first, like Discord
            list.truncate(limit.min(100));
            Reply::ok(json!(list))
        }
        ("POST", ["channels", cid, "messages"]) => {
            let Some(c) = sid(cid) else {
                return Reply::unknown_channel();
            };
            let bot = st.bot_id;
            match st.create_message(c, bot, body, files, 0, json!({}), false) {
                Ok((msg, created)) => {
                    // The bot's own messages come back as MESSAGE_CREATE too (bots must ignore them).
                    if created {
                        let r = st.dispatch_message_create(&msg).map(|_| ());
                        if st.gw.current.is_some() {
                            st.check(r);
                        }
                    }
                    checked::<sm::Message>(st, "Message", 200, msg)
                }
                Err(r) => r,
            }
        }
        ("GET", ["channels", cid, "messages", mid]) => match message_in(st, cid, mid) {
            Some(m) => Reply::ok(st.messages[&m].clone()),
            None => Reply::unknown_message(),
        },
        ("PATCH", ["channels", cid, "messages", mid]) => {
            let Some(m) = message_in(st, cid, mid) else {
                return Reply::unknown_message();
            };
            if as_id(&st.messages[&m]["author"]["id"]) != Some(st.bot_id)
                && body.get("content").is_some()
            {
                return Reply::error(403, 50005, "Cannot edit a message authored by another user");
            }
            match st.edit_message(m, body, true) {
                Ok(msg) => checked::<sm::Message>(st, "Message", 200, msg),
                Err(r) => r,
            }
        }
        ("DELETE", ["channels", cid, "messages", mid]) => match message_in(st, cid, mid) {
            Some(m) => {
                st.delete_message(m);
                Reply::no_content()
            }
            None => Reply::unknown_message(),
        },
        ("PUT" | "DELETE", ["channels", cid, "messages", mid, "reactions", _emoji, _who]) => {
            match message_in(st, cid, mid) {
                Some(_) => Reply::no_content(),
                None => Reply::unknown_message(),
            }
        }
        ("POST", ["channels", cid, "messages", mid, "threads"]) => {
            let Some(m) = message_in(st, cid, mid) else {
                return Reply::unknown_message();
            };
            let bot = st.bot_id;
            match st.start_thread_from_message(sid(cid).unwrap(), m, bot, body) {
                Ok(th) => checked::<sm::GuildChannel>(st, "GuildChannel", 201, th),
                Err(r) => r,
            }
        }
        ("POST", ["channels", cid, "threads"]) => {
            let Some(parent) = sid(cid).filter(|c| st.channels.contains_key(c)) else {
                return Reply::unknown_channel();
            };
            let Some(gid) = st.guild_of_channel(parent) else {
                return Reply::error(400, 50024, "Cannot execute action on this channel type");
            };
            let (name, archive, slow) = match thread_options(body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let kind = body.get("type").and_then(Value::as_u64).unwrap_or(12);
            let tid = st.next_id();
            let th = thread_json(tid, gid, parent, st.bot_id, name, kind, archive, slow);
            st.channels.insert(tid, th.clone());
            let mut ev = th.clone();
            ev["newly_created"] = json!(true);
            st.dispatch_or_record("THREAD_CREATE", ev, Some(INTENT_GUILDS));
            checked::<sm::GuildChannel>(st, "GuildChannel", 201, th)
        }
        ("PUT" | "DELETE", ["channels", cid, "thread-members", _who]) => {
            match sid(cid).and_then(|c| st.channels.get(&c)) {
                Some(ch) if matches!(ch["type"].as_u64(), Some(10..=12)) => Reply::no_content(),
                Some(_) => Reply::error(400, 50024, "Cannot execute action on this channel type"),
                None => Reply::unknown_channel(),
            }
        }

        // ------------------------------------------------------------ guilds
        ("GET", ["guilds", gid]) => match sid(gid).filter(|g| st.guilds.contains_key(g)) {
            Some(g) => {
                let b = st.partial_guild_json(g);
                checked::<sm::PartialGuild>(st, "PartialGuild", 200, b)
            }
            None => Reply::error(404, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", gid, "channels"]) => {
            match sid(gid).filter(|g| st.guilds.contains_key(g)) {
                Some(g) => {
                    let list: Vec<Value> = st.guilds[&g]
                        .channels
                        .iter()
                        .filter_map(|c| st.channels.get(c).cloned())
                        .collect();
                    checked::<Vec<sm::GuildChannel>>(st, "Vec<GuildChannel>", 200, json!(list))
                }
                None => Reply::error(404, 10004, "Unknown Guild"),
            }
        }
        ("GET", ["guilds", gid, "roles"]) => match sid(gid).filter(|g| st.guilds.contains_key(g)) {
            Some(g) => {
                let b = json!(st.roles_json(g));
                checked::<Vec<sm::Role>>(st, "Vec<Role>", 200, b)
            }
            None => Reply::error(404, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", gid, "members"]) => match sid(gid).filter(|g| st.guilds.contains_key(g))
        {
            Some(g) => {
                let list: Vec<Value> = st.guilds[&g]
                    .members
                    .keys()
                    .filter_map(|u| st.member_obj(g, *u))
                    .collect();
                checked::<Vec<sm::Member>>(st, "Vec<Member>", 200, json!(list))
            }
            None => Reply::error(404, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", gid, "members", uid]) => {
            let Some(g) = sid(gid).filter(|g| st.guilds.contains_key(g)) else {
                return Reply::error(404, 10004, "Unknown Guild");
            };
            let u = if *uid == "@me" {
                Some(st.bot_id)
            } else {
                sid(uid)
            };
            match u.and_then(|u| st.member_obj(g, u)) {
                Some(m) => checked::<sm::Member>(st, "Member", 200, m),
                None => Reply::error(404, 10007, "Unknown Member"),
            }
        }

        // ------------------------------------------------------------ interactions
        ("POST", ["interactions", iid, token, "callback"]) => {
            let with_response = parse_query(query)
                .iter()
                .any(|(k, v)| k == "with_response" && v == "true");
            callback(st, iid, token, body, files, with_response)
        }
        (_, ["webhooks", app, token, rest @ ..]) => {
            webhook(st, method, app, token, rest, body, files)
        }

        _ => Reply::not_found(),
    }
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn message_in(st: &State, cid: &str, mid: &str) -> Option<u64> {
    let (c, m) = (sid(cid)?, sid(mid)?);
    let msg = st.messages.get(&m)?;
    (as_id(&msg["channel_id"]) == Some(c)).then_some(m)
}

// ---------------------------------------------------------------- application commands

fn commands(
    st: &mut State,
    method: &str,
    app: &str,
    guild: Option<u64>,
    rest: &[&str],
    body: &Value,
) -> Reply {
    if sid(app) != Some(st.app_id) {
        return Reply::error(403, 50001, "Missing Access");
    }
    let app_id = st.app_id;
    let mut list = match guild {
        Some(g) => st.guild_commands.get(&g).cloned().unwrap_or_default(),
        None => st.global_commands.clone(),
    };
    let normalise = |st: &mut State, c: &Value, existing: &[Value]| -> Value {
        let mut c = c.clone();
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = c.get("type").and_then(Value::as_u64).unwrap_or(1);
        let prior = existing
            .iter()
            .find(|e| e["name"] == json!(name) && e["type"].as_u64() == Some(kind));
        let cmd_id = prior
            .and_then(|p| as_id(&p["id"]))
            .unwrap_or_else(|| st.next_id());
        let version = st.next_id();
        let m = c.as_object_mut().unwrap();
        m.insert("id".into(), id(cmd_id));
        m.insert("application_id".into(), id(app_id));
        m.insert("version".into(), id(version));
        m.insert("type".into(), json!(kind));
        m.entry("description").or_insert(json!(""));
        m.entry("default_member_permissions").or_insert(Value::Null);
        m.entry("nsfw").or_insert(json!(false));
        if let Some(g) = guild {
            m.insert("guild_id".into(), id(g));
        } else {
            m.entry("integration_types").or_insert(json!([0]));
            m.entry("contexts").or_insert(Value::Null);
        }
        c
    };
    let reply = match (method, rest) {
        ("GET", []) => Reply::ok(json!(list)),
        ("PUT", []) => {
            let Some(items) = body.as_array() else {
                return Reply::invalid_form("body must be an array of commands");
            };
            let mut new = vec![];
            for c in items {
                if c.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Reply::invalid_form("name: This field is required");
                }
                new.push(normalise(st, c, &list));
            }
            list = new;
            Reply::ok(json!(list))
        }
        ("POST", []) => {
            if body
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Reply::invalid_form("name: This field is required");
            }
            let c = normalise(st, body, &list);
            let pos = list.iter().position(|e| e["id"] == c["id"]);
            match pos {
                Some(p) => {
                    list[p] = c.clone();
                    Reply::ok(c)
                }
                None => {
                    list.push(c.clone());
                    Reply::json(201, c)
                }
            }
        }
        ("GET", [cid]) => match list.iter().find(|c| c["id"] == json!(cid)) {
            Some(c) => Reply::ok(c.clone()),
            None => Reply::error(404, 10063, "Unknown application command"),
        },
        ("PATCH", [cid]) => match list.iter().position(|c| c["id"] == json!(cid)) {
            Some(p) => {
                let mut merged = list[p].clone();
                if let (Some(m), Some(b)) = (merged.as_object_mut(), body.as_object()) {
                    for (k, v) in b {
                        m.insert(k.clone(), v.clone());
                    }
                }
                let existing = list.clone();
                list[p] = normalise(st, &merged, &existing);
                Reply::ok(list[p].clone())
            }
            None => Reply::error(404, 10063, "Unknown application command"),
        },
        ("DELETE", [cid]) => match list.iter().position(|c| c["id"] == json!(cid)) {
            Some(p) => {
                list.remove(p);
                Reply::no_content()
            }
            None => Reply::error(404, 10063, "Unknown application command"),
        },
        _ => return Reply::not_found(),
    };
    match guild {
        Some(g) => {
            st.guild_commands.insert(g, list);
        }
        None => st.global_commands = list,
    }
    if let Some(b) = &reply.body {
        let r = if b.is_array() {
            check_model::<Vec<sm::Command>>("Vec<Command>", b)
        } else {
            check_model::<sm::Command>("Command", b)
        };
        st.check(r);
    }
    reply
}

// ---------------------------------------------------------------- interaction responses

fn find_interaction(st: &State, iid: &str, token: &str) -> Option<u64> {
    let i = sid(iid)?;
    let rec = st.interactions.get(&i)?;
    (rec.token == token).then_some(i)
}

fn interaction_by_token(st: &State, token: &str) -> Option<u64> {
    st.interactions
        .values()
        .find(|r| r.token == token)
        .map(|r| r.id)
}

fn response_extra(st: &State, rec: &InteractionRec) -> Value {
    let mut extra = json!({
        "webhook_id": id(st.app_id),
        "application_id": id(st.app_id),
        "interaction_metadata": rec.metadata,
    });
    if rec.kind == 2 {
        extra["interaction"] = json!({ "id": id(rec.id), "type": 2, "name": rec.name, "user": st.user_obj(rec.user_id) });
    }
    extra
}

/// `POST /interactions/{id}/{token}/callback`: 204, or with `?with_response=true` 200 and
/// Discord's InteractionCallbackResponse (`interaction`, and `resource.message` for
/// responses that create or update a message).
fn callback(
    st: &mut State,
    iid: &str,
    token: &str,
    body: &Value,
    files: &[String],
    with_response: bool,
) -> Reply {
    let Some(i) = find_interaction(st, iid, token) else {
        return Reply::error(404, 10062, "Unknown interaction");
    };
    st.interactions
        .get_mut(&i)
        .unwrap()
        .callbacks
        .push(body.clone());
    let rec = st.interactions[&i].clone();
    if rec.response_type.is_some() {
        return Reply::error(400, 40060, "Interaction has already been acknowledged.");
    }
    let Some(ty) = body.get("type").and_then(Value::as_u64) else {
        return Reply::invalid_form("type: This field is required");
    };
    let data = body.get("data").cloned().unwrap_or(json!({}));
    let has_message = rec.message_id.is_some();
    let mut original = None;
    match ty {
        1 => return Reply::invalid_form("type: PONG is only valid for PING interactions"),
        4 | 5 => {
            let flags = data.get("flags").and_then(Value::as_u64).unwrap_or(0);
            let kind = if rec.kind == 2 { 20 } else { 0 };
            let mut payload = data.clone();
            let (payload, allow_empty) = if ty == 5 {
                let p = json!({ "content": "", "flags": FLAG_LOADING | (flags & FLAG_EPHEMERAL) });
                (p, true)
            } else {
                payload["flags"] = json!(flags & (FLAG_EPHEMERAL | 4 | 4096));
                (payload, false)
            };
            let extra = response_extra(st, &rec);
            let msg = match st.create_message(
                rec.channel_id,
                st.bot_id,
                &payload,
                files,
                kind,
                extra,
                allow_empty,
            ) {
                Ok((m, _)) => m,
                Err(r) => return r,
            };
            if payload["flags"].as_u64().unwrap_or(0) & FLAG_EPHEMERAL == 0 {
                let r = st.dispatch_message_create(&msg).map(|_| ());
                st.check(r);
            }
            if st.check_models {
                let r = check_model::<sm::Message>("Message", &msg);
                st.check(r);
            }
            original = as_id(&msg["id"]);
        }
        6 | 7 => {
            if !has_message {
                return Reply::invalid_form("type: UPDATE_MESSAGE / DEFERRED_UPDATE_MESSAGE need a component-based interaction");
            }
            let mid = rec.message_id.unwrap();
            if ty == 7 {
                if let Err(r) = st.edit_message(mid, &data, true) {
                    return r;
                }
            }
            original = Some(mid);
        }
        8 => {}
        9 => {
            if rec.kind == 5 {
                return Reply::invalid_form("type: a modal cannot answer a modal submit");
            }
            let ok = data.get("custom_id").and_then(Value::as_str).is_some()
                && data.get("title").and_then(Value::as_str).is_some()
                && data
                    .get("components")
                    .and_then(Value::as_array)
                    .is_some_and(|c| !c.is_empty());
            if !ok {
                return Reply::invalid_form("data: a modal needs custom_id, title and components");
            }
            st.modals.push(ModalRec {
                interaction_id: i,
                user_id: rec.user_id,
                channel_id: rec.channel_id,
                custom_id: data["custom_id"].as_str().unwrap().to_string(),
                data: data.clone(),
                source_message: rec.message_id,
            });
        }
        10 | 12 => {}
        _ => return Reply::invalid_form("type: Value is not a valid interaction callback type"),
    }
    let r = st.interactions.get_mut(&i).unwrap();
    r.response_type = Some(ty);
    r.original = original;
    if !with_response {
        return Reply::no_content();
    }
    let message = original.and_then(|m| st.messages.get(&m).cloned());
    let ephemeral = message
        .as_ref()
        .is_some_and(|m| m["flags"].as_u64().unwrap_or(0) & FLAG_EPHEMERAL != 0);
    let mut out = json!({
        "interaction": {
            "id": id(i),
            "type": rec.kind,
            "activity_instance_id": null,
            "response_message_id": original.map(id),
            "response_message_loading": ty == 5,
            "response_message_ephemeral": ephemeral,
        },
    });
    if let Some(m) = message.filter(|_| matches!(ty, 4 | 5 | 7)) {
        out["resource"] = json!({ "type": ty, "message": m });
    } else if ty == 9 {
        out["resource"] = json!({ "type": ty });
    }
    Reply::json(200, out)
}

fn webhook(
    st: &mut State,
    method: &str,
    app: &str,
    token: &str,
    rest: &[&str],
    body: &Value,
    files: &[String],
) -> Reply {
    let Some(i) = interaction_by_token(st, token).filter(|_| sid(app) == Some(st.app_id)) else {
        return Reply::error(404, 10015, "Unknown Webhook");
    };
    let rec = st.interactions[&i].clone();
    match (method, rest) {
        ("POST", []) => {
            if rec.response_type.is_none() {
                return Reply::error(404, 10015, "Unknown Webhook");
            }
            // The first followup after a deferred (type 5) response replaces the "thinking" message.
            if let Some(orig) = rec.original.filter(|o| {
                st.messages
                    .get(o)
                    .is_some_and(|m| m["flags"].as_u64().unwrap_or(0) & FLAG_LOADING != 0)
            }) {
                return edit_original(st, orig, body);
            }
            let flags = body.get("flags").and_then(Value::as_u64).unwrap_or(0)
                & (FLAG_EPHEMERAL | 4 | 4096);
            let mut payload = body.clone();
            payload["flags"] = json!(flags);
            let extra = response_extra(st, &rec);
            match st.create_message(rec.channel_id, st.bot_id, &payload, files, 0, extra, false) {
                Ok((msg, _)) => {
                    let mid = as_id(&msg["id"]).unwrap();
                    st.interactions.get_mut(&i).unwrap().followups.push(mid);
                    if flags & FLAG_EPHEMERAL == 0 {
                        let r = st.dispatch_message_create(&msg).map(|_| ());
                        st.check(r);
                    }
                    checked::<sm::Message>(st, "Message", 200, msg)
                }
                Err(r) => r,
            }
        }
        (_, ["messages", which]) => {
            let target = if *which == "@original" {
                rec.original
            } else {
                sid(which).filter(|m| rec.followups.contains(m) || rec.original == Some(*m))
            };
            let Some(mid) = target.filter(|m| st.messages.contains_key(m)) else {
                return Reply::unknown_message();
            };
            match method {
                "GET" => Reply::ok(st.messages[&mid].clone()),
                "PATCH" => edit_original(st, mid, body),
                "DELETE" => {
                    st.delete_message(mid);
                    Reply::no_content()
                }
                _ => Reply::not_found(),
            }
        }
        _ => Reply::not_found(),
    }
}

fn edit_original(st: &mut State, mid: u64, body: &Value) -> Reply {
    let loading = st
        .messages
        .get(&mid)
        .is_some_and(|m| m["flags"].as_u64().unwrap_or(0) & FLAG_LOADING != 0);
    match st.edit_message(mid, body, !loading) {
        Ok(mut msg) => {
            if loading {
                let flags = msg["flags"].as_u64().unwrap_or(0) & !FLAG_LOADING;
                msg["flags"] = json!(flags);
                st.messages.insert(mid, msg.clone());
            }
            checked::<sm::Message>(st, "Message", 200, msg)
        }
        Err(r) => r,
    }
}
