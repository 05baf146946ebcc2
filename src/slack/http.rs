//! The Events API over HTTP, the option to Socket Mode for an app with a
//! public URL: Slack POSTs events (JSON), interactions and slash commands
//! (form-encoded) to `/slack/events`. Every request's signature is checked
//! before anything is read from it ([`super::signature`]); a retried event
//! (`X-Slack-Retry-Num`, same `event_id`) is acknowledged without being
//! handled again. Like Socket Mode, the answer goes out at once and the
//! work follows in a task.

use super::events::{self, Event};
use super::signature::{self, SeenEvents};
use super::{Bot, SlackSecret};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

struct Http {
    bot: Arc<Bot>,
    secret: SlackSecret,
    seen: Mutex<SeenEvents>,
}

pub(crate) async fn serve(
    bot: Arc<Bot>,
    addr: SocketAddr,
    secret: SlackSecret,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let state = Arc::new(Http {
        bot,
        secret,
        seen: Mutex::new(SeenEvents::new(4096)),
    });
    let app = axum::Router::new()
        .route("/slack/events", post(handle))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the Slack Events API server stopped");
        }
    });
    Ok((bound, task))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Decodes `application/x-www-form-urlencoded` (interactions put their
/// JSON in `payload`; slash commands are the fields themselves), with the
/// `form_urlencoded` crate: a request body is untrusted, and malformed
/// escapes or bytes that are not UTF-8 become replacement characters
/// instead of errors.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn handle(State(st): State<Arc<Http>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = signature::verify(
        st.secret.secret().as_bytes(),
        header(&headers, "x-slack-request-timestamp"),
        header(&headers, "x-slack-signature"),
        &body,
        now,
    ) {
        tracing::warn!(error = %e, "refused a Slack request");
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let is_form = header(&headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let fields = form(&body);
        if let Some((_, p)) = fields.iter().find(|(k, _)| k == "payload") {
            let v: Value = serde_json::from_str(p).unwrap_or(Value::Null);
            st.bot.dispatch(events::from_interaction(&v));
            return StatusCode::OK.into_response();
        }
        let v = Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        );
        let e = events::from_command(&v);
        let text = st.bot.command_ack(&e).await;
        st.bot.dispatch(e);
        return axum::Json(json!({ "response_type": "ephemeral", "text": text })).into_response();
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "the body is not JSON").into_response(),
    };
    if v["type"] == "url_verification" {
        return axum::Json(json!({ "challenge": v["challenge"] })).into_response();
    }
    // Slack retries an event it thinks we missed; handle each event once.
    let id = v["event_id"].as_str().unwrap_or_default();
    let first = id.is_empty() || st.seen.lock().unwrap_or_else(|e| e.into_inner()).first(id);
    if !first {
        tracing::debug!(
            event = id,
            retry = header(&headers, "x-slack-retry-num"),
            "a retried event, already handled"
        );
        return StatusCode::OK.into_response();
    }
    let e = events::from_push(&v);
    if !matches!(e, Event::Ignore) {
        st.bot.dispatch(e);
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::form;

    #[test]
    fn forms_decode() {
        let f = form(b"command=%2Fconsult&text=en+now&payload=%7B%22a%22%3A1%7D");
        assert_eq!(f[0], ("command".into(), "/consult".into()));
        assert_eq!(f[1], ("text".into(), "en now".into()));
        assert_eq!(f[2], ("payload".into(), "{\"a\":1}".into()));
    }

    /// A body is untrusted: a broken escape before a multi-byte character
    /// (which the hand-written decoder sliced inside the character, and
    /// panicked), a lone `%` and bytes that are not UTF-8 decode without a
    /// panic.
    #[test]
    fn malformed_forms_decode_without_a_panic() {
        let f = form("text=%aé&x=%&y=%zz&z=\u{3042}%E3%81%84".as_bytes());
        assert_eq!(f[0], ("text".into(), "%aé".into()));
        assert_eq!(f[1], ("x".into(), "%".into()));
        assert_eq!(f[2], ("y".into(), "%zz".into()));
        assert_eq!(f[3], ("z".into(), "あい".into()));
        let f = form(b"text=%FF\xfe");
        assert_eq!(f[0].1, "\u{FFFD}\u{FFFD}");
    }
}
