//! Discord JSON shapes (API v10) as the real Discord sends them, plus small helpers:
//! snowflakes, the fake bot token, timestamps, and a check that serenity 0.12.5 can
//! deserialize every payload the stand-in produces (a payload serenity cannot read is
//! silently dropped by its shard runner, so we check before sending).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// Discord's epoch (2015-01-01T00:00:00Z) in milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

// Gateway intent bits the stand-in honours.
pub const INTENT_GUILDS: u64 = 1 << 0;
pub const INTENT_GUILD_MEMBERS: u64 = 1 << 1;
pub const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
pub const INTENT_DIRECT_MESSAGES: u64 = 1 << 12;
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

// Message flags.
pub const FLAG_HAS_THREAD: u64 = 1 << 5;
pub const FLAG_EPHEMERAL: u64 = 1 << 6;
pub const FLAG_LOADING: u64 = 1 << 7;

/// A generous default permission set (what a typical member/bot gets in a text channel).
pub const DEFAULT_PERMISSIONS: &str = "2248473465835073";

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// ISO-8601 timestamp in the form Discord uses (`2024-01-01T00:00:00.000000+00:00`).
pub fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// Monotonic snowflake generator: real Discord layout (ms since 2015 << 22), so
/// `id.created_at()` in serenity is "now".
#[derive(Debug, Default)]
pub struct Snowflakes {
    last: u64,
}

impl Snowflakes {
    pub fn new() -> Self {
        Self { last: 0 }
    }

    pub fn next(&mut self) -> u64 {
        let candidate = (now_ms().saturating_sub(DISCORD_EPOCH_MS)) << 22;
        self.last = candidate.max(self.last + 1);
        self.last
    }
}

/// Unpadded standard base64 (Discord tokens encode the bot's user id this way).
pub fn base64_nopad(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A syntactically valid bot token: `base64(user id).base64(time).hmac-like`, which passes
/// `serenity::utils::validate_token`.
pub fn fake_token(bot_user_id: u64) -> String {
    format!(
        "{}.{}.{}",
        base64_nopad(bot_user_id.to_string().as_bytes()),
        "GstNdN",
        "madoguchi-stand-in_fake-hmac-0123456789ab"
    )
}

pub fn id(v: u64) -> Value {
    Value::String(v.to_string())
}

/// Parse a snowflake that may be a JSON string or number.
pub fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

pub fn user_json(user_id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id(user_id),
        "username": name,
        "global_name": if bot { Value::Null } else { Value::String(name.to_string()) },
        "discriminator": if bot { "0001" } else { "0" },
        "avatar": null,
        "bot": bot,
        "system": false,
        "public_flags": 0,
        "flags": 0,
        "banner": null,
        "accent_color": null,
        "avatar_decoration_data": null,
    })
}

/// `CurrentUser` as returned by GET /users/@me and in READY.
pub fn current_user_json(user_id: u64, name: &str) -> Value {
    let mut u = user_json(user_id, name, true);
    let m = u.as_object_mut().unwrap();
    m.insert("verified".into(), json!(true));
    m.insert("mfa_enabled".into(), json!(false));
    m.insert("email".into(), Value::Null);
    m.insert("locale".into(), json!("en-US"));
    m.insert("premium_type".into(), json!(0));
    u
}

/// Full guild member (GET /guilds/{g}/members/{u}, interactions' `member`, GUILD_CREATE).
pub fn member_json(user: Value, roles: &[u64], joined_at: &str, nick: Option<&str>) -> Value {
    json!({
        "user": user,
        "nick": nick,
        "avatar": null,
        "banner": null,
        "roles": roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
        "joined_at": joined_at,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
    })
}

pub fn role_json(role_id: u64, name: &str, position: u64, permissions: &str) -> Value {
    json!({
        "id": id(role_id),
        "name": name,
        "color": 0,
        "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": permissions,
        "managed": false,
        "mentionable": false,
        "flags": 0,
    })
}

pub fn text_channel_json(channel_id: u64, guild_id: u64, name: &str, position: u64) -> Value {
    json!({
        "id": id(channel_id),
        "type": 0,
        "guild_id": id(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": false,
        "topic": null,
        "parent_id": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "flags": 0,
    })
}

pub fn dm_channel_json(channel_id: u64, recipient: Value) -> Value {
    json!({
        "id": id(channel_id),
        "type": 1,
        "last_message_id": null,
        "flags": 0,
        "recipients": [recipient],
    })
}

#[allow(clippy::too_many_arguments)]
pub fn thread_json(
    thread_id: u64,
    guild_id: u64,
    parent_id: u64,
    owner_id: u64,
    name: &str,
    kind: u64,
    auto_archive_duration: u64,
    rate_limit_per_user: u64,
) -> Value {
    let ts = timestamp();
    json!({
        "id": id(thread_id),
        "type": kind,
        "guild_id": id(guild_id),
        "parent_id": id(parent_id),
        "owner_id": id(owner_id),
        "name": name,
        "last_message_id": null,
        "rate_limit_per_user": rate_limit_per_user,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": false,
            "auto_archive_duration": auto_archive_duration,
            "archive_timestamp": ts,
            "locked": false,
            "create_timestamp": ts,
        },
        "member": {
            "id": id(thread_id),
            "user_id": id(owner_id),
            "join_timestamp": ts,
            "flags": 0,
        },
    })
}

/// Normalise a bot-supplied embed the way Discord echoes it back (adds `type: rich`).
pub fn normalise_embed(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(m) = e.as_object_mut() {
        m.entry("type").or_insert(json!("rich"));
        m.retain(|_, v| !v.is_null());
    }
    e
}

/// Normalise components the way Discord echoes them back: buttons/selects get their
/// defaults so serenity's `ActionRow` model reads them.
pub fn normalise_components(c: &Value) -> Value {
    let mut c = c.clone();
    if let Some(rows) = c.as_array_mut() {
        for row in rows {
            if let Some(items) = row.get_mut("components").and_then(Value::as_array_mut) {
                for item in items {
                    if let Some(m) = item.as_object_mut() {
                        m.retain(|_, v| !v.is_null());
                        if m.get("type").and_then(Value::as_u64) == Some(2) {
                            m.entry("disabled").or_insert(json!(false));
                        }
                    }
                }
            }
        }
    }
    c
}

/// Extract `<@id>` / `<@!id>` user mentions and `<@&id>` role mentions from content.
pub fn parse_mentions(content: &str) -> (Vec<u64>, Vec<u64>, bool) {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    let mut rest = content;
    while let Some(pos) = rest.find("<@") {
        rest = &rest[pos + 2..];
        let (is_role, body) = if let Some(b) = rest.strip_prefix('&') {
            (true, b)
        } else if let Some(b) = rest.strip_prefix('!') {
            (false, b)
        } else {
            (false, rest)
        };
        if let Some(end) = body.find('>') {
            if let Ok(v) = body[..end].parse::<u64>() {
                let list = if is_role { &mut roles } else { &mut users };
                if !list.contains(&v) {
                    list.push(v);
                }
            }
        }
    }
    let everyone = content.contains("@everyone") || content.contains("@here");
    (users, roles, everyone)
}

/// Apply Discord's `allowed_mentions` rules to the parsed mentions.
pub fn apply_allowed_mentions(
    allowed: Option<&Value>,
    users: Vec<u64>,
    roles: Vec<u64>,
    everyone: bool,
) -> (Vec<u64>, Vec<u64>, bool) {
    let Some(a) = allowed.filter(|a| a.is_object()) else {
        return (users, roles, everyone);
    };
    let parse: Vec<&str> = a
        .get("parse")
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let listed = |key: &str| -> Vec<u64> {
        a.get(key)
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(as_id).collect())
            .unwrap_or_default()
    };
    let allowed_users = listed("users");
    let allowed_roles = listed("roles");
    let users = users
        .into_iter()
        .filter(|u| parse.contains(&"users") || allowed_users.contains(u))
        .collect();
    let roles = roles
        .into_iter()
        .filter(|r| parse.contains(&"roles") || allowed_roles.contains(r))
        .collect();
    (users, roles, everyone && parse.contains(&"everyone"))
}

/// Gateway frame for a dispatch.
pub fn dispatch_frame(seq: u64, t: &str, d: &Value) -> String {
    json!({ "op": 0, "s": seq, "t": t, "d": d }).to_string()
}

pub fn op_frame(op: u8, d: Value) -> String {
    json!({ "op": op, "s": null, "t": null, "d": d }).to_string()
}

/// Check that serenity can deserialize a gateway dispatch (as `serenity::model::event::Event`).
pub fn check_event(t: &str, d: &Value) -> Result<(), String> {
    let v = json!({ "t": t, "d": d });
    match serde_json::from_value::<serenity::model::event::Event>(v) {
        // A known event whose payload does not fit may fall through to `Unknown`: every event
        // the stand-in sends is a known one, so `Unknown` is a failure too.
        Ok(serenity::model::event::Event::Unknown(_)) => Err(format!(
            "serenity reads the {t} dispatch as Event::Unknown; payload: {d}"
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "serenity cannot deserialize {t} dispatch: {e}; payload: {d}"
        )),
    }
}

/// Check that serenity can deserialize a REST response body as `T`.
pub fn check_model<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(v.clone())
        .map(|_| ())
        .map_err(|e| format!("serenity cannot deserialize {what}: {e}; payload: {v}"))
}

/// Keep only the listed keys of a JSON object (used to merge PATCH bodies).
pub fn merge_fields(target: &mut Value, patch: &Value, keys: &[&str]) {
    let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) else {
        return;
    };
    for k in keys {
        if let Some(v) = p.get(*k) {
            t.insert((*k).to_string(), v.clone());
        }
    }
}

pub fn obj() -> Map<String, Value> {
    Map::new()
}
