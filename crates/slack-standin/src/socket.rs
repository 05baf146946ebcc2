//! Socket Mode: the WebSocket at the URL `apps.connections.open` hands out
//! (`ws://127.0.0.1:PORT/link/?ticket=…&app_id=…`). Each ticket opens one connection; the
//! connection gets `hello`, then envelopes, and reads the bot's acknowledgements.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;

use crate::state::{Conn, Out, Shared};

pub async fn ws_handler(
    AxState(shared): AxState<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    {
        let mut st = shared.lock();
        let ticket = q.get("ticket").cloned().unwrap_or_default();
        match st.tickets.get_mut(&ticket) {
            Some(used @ false) => *used = true,
            Some(true) => {
                st.errors
                    .push(format!("Socket Mode URL used twice (ticket {ticket})"));
                return (StatusCode::UNAUTHORIZED, "ticket already used").into_response();
            }
            None => {
                st.errors.push(format!(
                    "Socket Mode connection with an unknown ticket {ticket:?}"
                ));
                return (StatusCode::UNAUTHORIZED, "invalid ticket").into_response();
            }
        }
    }
    ws.on_upgrade(move |socket| connection(shared, socket))
}

async fn connection(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let conn_id = {
        let mut st = shared.lock();
        st.next_conn += 1;
        st.connections_total += 1;
        let id = st.next_conn;
        let num = st.conns.len() + 1;
        let hello = json!({
            "type": "hello",
            "num_connections": num,
            "debug_info": {
                "host": "applink-standin",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": { "app_id": st.app_id },
        });
        if st.check_models {
            let r = crate::model::check_frame(&hello);
            st.check(r);
        }
        let _ = tx.send(Out::Text(hello.to_string()));
        st.conns.insert(
            id,
            Conn {
                tx: tx.clone(),
                ready: true,
                draining: false,
            },
        );
        // Envelopes that waited for a connection go out right after `hello`.
        st.flush_pending();
        id
    };
    shared.notify();

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
                    shared.lock().on_client_frame(conn_id, text.as_str());
                    shared.notify();
                }
                Some(Ok(Message::Close(_))) => {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                        while let Some(Ok(_)) = socket.recv().await {}
                    })
                    .await;
                    break;
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
    drop(socket);
    shared.lock().conns.remove(&conn_id);
    shared.notify();
}
