//! Gateway (WebSocket) side of the stand-in: HELLO, IDENTIFY → READY (+ GUILD_CREATE),
//! heartbeats, RESUME with replay of missed dispatches, RECONNECT / INVALID_SESSION / close
//! injection. Frames are plain JSON text (serenity's `WsClient::recv_json` accepts text
//! frames and only inflates binary ones), so no zlib is needed.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State as AxState};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::model::*;
use super::state::{Conn, Out, Session, Shared, State};

pub async fn ws_handler(
    AxState(shared): AxState<Arc<Shared>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    {
        let mut st = shared.lock();
        let url = match &query {
            Some(q) => format!("{}?{q}", st.gateway_url),
            None => st.gateway_url.clone(),
        };
        st.gw.urls.push(url);
    }
    ws.max_message_size(16 << 20)
        .on_upgrade(move |socket| connection(shared, socket, query))
}

async fn connection(shared: Arc<Shared>, mut socket: WebSocket, query: Option<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let conn_id = {
        let mut st = shared.lock();
        st.gw.next_conn += 1;
        st.gw.connections_total += 1;
        let id = st.gw.next_conn;
        st.gw.conns.insert(
            id,
            Conn {
                tx: tx.clone(),
                session: None,
            },
        );
        // Discord sends HELLO as soon as the socket opens.
        let _ = tx.send(Out::Text(op_frame(
            10,
            json!({ "heartbeat_interval": st.gw.heartbeat_interval_ms }),
        )));
        // Only API v10 JSON is spoken here (what serenity 0.12 asks for: `?v=10`).
        let q = query.unwrap_or_default();
        let version_ok = q.split('&').any(|kv| kv == "v=10");
        let encoding_ok = !q
            .split('&')
            .any(|kv| kv.starts_with("encoding=") && kv != "encoding=json");
        if !version_ok {
            st.errors
                .push(format!("gateway connected without v=10 (query: {q:?})"));
            let _ = tx.send(Out::Close(4012, "Invalid API version.".into()));
        } else if !encoding_ok {
            let _ = tx.send(Out::Close(4002, "Error while decoding payload.".into()));
        }
        id
    };
    shared.notify();

    let mut client_close: Option<u16> = None;
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(frame)) => {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    // Drain until the peer answers the close (bounded).
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                        while let Some(Ok(m)) = socket.recv().await {
                            if matches!(m, Message::Close(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                    break;
                }
                Some(Out::Drop) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    handle_payload(&shared, conn_id, text.as_str());
                }
                Some(Ok(Message::Binary(_))) => {
                    let _ = tx.send(Out::Close(4002, "Error while decoding payload.".into()));
                }
                Some(Ok(Message::Close(frame))) => {
                    client_close = Some(frame.as_ref().map_or(1005, |f| f.code));
                    // Let tungstenite flush its automatic close reply, then stop.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                        while let Some(Ok(_)) = socket.recv().await {}
                    })
                    .await;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    drop(socket);

    {
        let mut st = shared.lock();
        if let Some(conn) = st.gw.conns.remove(&conn_id) {
            if let Some(sid) = conn.session {
                if let Some(s) = st.gw.sessions.get_mut(&sid) {
                    if s.conn == Some(conn_id) {
                        s.conn = None;
                    }
                    // Discord ends the session when the client closes with 1000/1001.
                    if matches!(client_close, Some(1000 | 1001)) {
                        s.resumable = false;
                    }
                }
            }
        }
    }
    shared.notify();
}

fn send(st: &State, conn_id: u64, out: Out) {
    if let Some(c) = st.gw.conns.get(&conn_id) {
        let _ = c.tx.send(out);
    }
}

fn handle_payload(shared: &Arc<Shared>, conn_id: u64, text: &str) {
    let mut st = shared.lock();
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        send(
            &st,
            conn_id,
            Out::Close(4002, "Error while decoding payload.".into()),
        );
        return;
    };
    let op = payload.get("op").and_then(Value::as_u64);
    let d = payload.get("d").cloned().unwrap_or(Value::Null);
    let identified = st
        .gw
        .conns
        .get(&conn_id)
        .is_some_and(|c| c.session.is_some());
    match op {
        // Heartbeat → ACK (allowed before identifying).
        Some(1) => {
            st.gw.heartbeats += 1;
            send(&st, conn_id, Out::Text(op_frame(11, Value::Null)));
        }
        Some(2) => {
            if identified {
                send(
                    &st,
                    conn_id,
                    Out::Close(4005, "Already authenticated.".into()),
                );
            } else {
                identify(&mut st, conn_id, &d);
            }
        }
        Some(6) => {
            if identified {
                send(
                    &st,
                    conn_id,
                    Out::Close(4005, "Already authenticated.".into()),
                );
            } else {
                resume(&mut st, conn_id, &d);
            }
        }
        // Presence update, voice state, request guild members, request soundboard sounds.
        Some(3 | 4 | 8 | 31) => {
            if !identified {
                send(&st, conn_id, Out::Close(4003, "Not authenticated.".into()));
            }
        }
        _ => send(&st, conn_id, Out::Close(4001, "Unknown opcode.".into())),
    }
    drop(st);
    shared.notify();
}

fn token_ok(st: &State, token: Option<&str>) -> bool {
    token.map(|t| t.trim_start_matches("Bot ")) == Some(st.token.as_str())
}

fn identify(st: &mut State, conn_id: u64, d: &Value) {
    st.gw.identify_payloads.push(d.clone());
    if !token_ok(st, d.get("token").and_then(Value::as_str)) {
        send(
            st,
            conn_id,
            Out::Close(4004, "Authentication failed.".into()),
        );
        return;
    }
    let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
        send(st, conn_id, Out::Close(4013, "Invalid intent(s).".into()));
        return;
    };
    st.gw.identifies += 1;
    st.gw.session_counter += 1;
    let sid = format!(
        "standin-session-{:04}-{}",
        st.gw.session_counter,
        st.bot_id % 100_000
    );
    let shard = d.get("shard").cloned().unwrap_or(json!([0, 1]));
    let guild_ids: Vec<u64> = st.guilds.keys().copied().collect();
    let ready = json!({
        "v": 10,
        "user": current_user_json(st.bot_id, &st.bot_name),
        "guilds": guild_ids.iter().map(|g| json!({ "id": id(*g), "unavailable": true })).collect::<Vec<_>>(),
        "session_id": sid,
        "session_type": "normal",
        "resume_gateway_url": st.gateway_url,
        "shard": shard,
        "application": { "id": id(st.app_id), "flags": 0 },
        "private_channels": [],
        "presences": [],
        "relationships": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["japan"],
        "user_settings": {},
        "_trace": ["[\"madoguchi-discord-stand-in\"]"],
    });
    // The previous session (if any) is superseded: Discord would not deliver to it again.
    st.gw.sessions.insert(
        sid.clone(),
        Session {
            id: sid.clone(),
            seq: 0,
            buffer: vec![],
            intents,
            conn: Some(conn_id),
            resumable: true,
        },
    );
    st.gw.current = Some(sid.clone());
    if let Some(c) = st.gw.conns.get_mut(&conn_id) {
        c.session = Some(sid);
    }
    if let Err(e) = st.dispatch("READY", ready, None) {
        st.errors.push(e);
    }
    // Lazy-loaded guilds follow READY (GUILDS intent).
    for g in guild_ids {
        let d = st.guild_create_json(g);
        st.dispatch_or_record("GUILD_CREATE", d, Some(INTENT_GUILDS));
    }
}

pub(super) fn resume(st: &mut State, conn_id: u64, d: &Value) {
    if st.gw.hold_resumes {
        st.gw.parked_resumes.push((conn_id, d.clone()));
        return;
    }
    if !st.gw.conns.contains_key(&conn_id) {
        return;
    }
    if !token_ok(st, d.get("token").and_then(Value::as_str)) {
        send(
            st,
            conn_id,
            Out::Close(4004, "Authentication failed.".into()),
        );
        return;
    }
    let sid = d
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let Some(session) = st.gw.sessions.get(&sid) else {
        send(st, conn_id, Out::Text(op_frame(9, json!(false))));
        return;
    };
    if !session.resumable {
        send(st, conn_id, Out::Text(op_frame(9, json!(false))));
        return;
    }
    if seq > session.seq {
        send(st, conn_id, Out::Close(4007, "Invalid seq.".into()));
        return;
    }
    // Detach any connection still holding the session (e.g. after op 7).
    if let Some(old) = session.conn {
        if old != conn_id {
            send(st, old, Out::Drop);
            if let Some(c) = st.gw.conns.get_mut(&old) {
                c.session = None;
            }
        }
    }
    let replay: Vec<String> = session
        .buffer
        .iter()
        .filter(|(s, _)| *s > seq)
        .map(|(_, f)| f.clone())
        .collect();
    st.gw.replayed += replay.len();
    for frame in replay {
        send(st, conn_id, Out::Text(frame));
    }
    if let Some(s) = st.gw.sessions.get_mut(&sid) {
        s.conn = Some(conn_id);
    }
    if let Some(c) = st.gw.conns.get_mut(&conn_id) {
        c.session = Some(sid.clone());
    }
    let prev_current = st.gw.current.clone();
    st.gw.current = Some(sid.clone());
    st.gw.resumes += 1;
    // RESUMED closes the replay (it is itself a dispatch with the next seq).
    if let Err(e) = st.dispatch(
        "RESUMED",
        json!({ "_trace": ["[\"madoguchi-discord-stand-in\"]"] }),
        None,
    ) {
        st.errors.push(e);
    }
    if prev_current.as_deref() != Some(sid.as_str()) {
        st.errors.push(format!(
            "bot resumed session {sid}, which was not the latest one"
        ));
    }
}

impl State {
    /// The live connection of the current session, detached from it (so later dispatches
    /// are buffered for RESUME). Returns its id.
    pub fn detach_current(&mut self) -> Option<u64> {
        let sid = self.gw.current.clone()?;
        let s = self.gw.sessions.get_mut(&sid)?;
        let conn = s.conn.take()?;
        if let Some(c) = self.gw.conns.get_mut(&conn) {
            c.session = None;
        }
        Some(conn)
    }

    pub fn send_to_conn(&self, conn_id: u64, out: Out) {
        send(self, conn_id, out);
    }

    pub fn current_conn(&self) -> Option<u64> {
        let sid = self.gw.current.as_ref()?;
        self.gw.sessions.get(sid)?.conn
    }

    pub fn invalidate_current(&mut self) {
        if let Some(sid) = self.gw.current.clone() {
            if let Some(s) = self.gw.sessions.get_mut(&sid) {
                s.resumable = false;
            }
        }
    }
}
