//! GraphQL over websocket (`graphql-transport-ws`, and the older
//! `graphql-ws`) at `/graphql/ws`. The bearer token travels in the
//! `connection_init` payload (`{"token": "..."}` or
//! `{"Authorization": "Bearer ..."}`), since browsers cannot set headers on
//! websocket requests.
//!
//! async-graphql runs the operations; this module is the connection's front
//! door around it, and every frame passes it first:
//!
//! - a message is bounded by `BODY_LIMIT_BYTES`, as a POST body is, and every
//!   operation then goes through the same document limits;
//! - `connection_init` must come within `WS_INIT_TIMEOUT_MS` (else 4408);
//!   an account holds at most `WS_MAX_CONNECTIONS_PER_USER` connections on
//!   this instance (else 4429);
//! - at most `WS_MAX_OPERATIONS_PER_CONNECTION` operations run on one
//!   connection and `WS_MAX_OPERATIONS_PER_USER` over the account's; a
//!   `subscribe` past either gets an error for its id (`RATE_LIMITED`);
//! - the connection closes (4403) when its token expires, and every operation
//!   already refuses it from that second on;
//! - while the server is busy with what came before, it reads no more
//!   frames, so a fast client is held back by TCP, not buffered.
mod caps;

use std::{collections::HashSet, pin::pin, sync::Arc, time::Duration};

use async_graphql::{
    http::{WebSocket as Operations, WsMessage, ALL_WEBSOCKET_PROTOCOLS},
    Data,
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket},
        State, WebSocketUpgrade,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use async_graphql::http::{ClientMessage, WebSocketProtocols as Protocols};
use caps::ConnectionSlot;
pub use caps::SocketCaps;

use super::{client::client_addr, Http};
use crate::{
    graphql::{context::Viewer, loaders::Loaders},
    ratelimit::ClientAddr,
    read::routing::ReadRequest,
};

/// Client messages handed to async-graphql but not yet taken by it; past
/// this the connection stops reading frames.
const INBOX: usize = 16;

pub async fn ws(State(http): State<Http>, parts: Parts, upgrade: WebSocketUpgrade) -> Response {
    let Some(protocol) = protocol(&parts) else {
        return (
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    let client = client_addr(&parts, http.app.config().trust_forwarded_for);
    // A message holds one document and its variables: the body limit bounds
    // it as it bounds a POST (the front door then bounds the document).
    let limit = http.app.config().body_limit_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(http, client, protocol, socket))
}

/// The first GraphQL protocol the client offers.
fn protocol(parts: &Parts) -> Option<Protocols> {
    parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|p| p.trim().parse().ok())
}

/// Who an identified connection belongs to, and until when.
struct Identified {
    data: Data,
    slot: Option<ConnectionSlot>,
    expires: Option<tokio::time::Instant>,
    /// The account and the token generation it was identified with.
    caller: Option<(Uuid, i32)>,
}

/// Why a connection ends, as the close frame says it.
struct Close(u16, String);

async fn serve(http: Http, client: ClientAddr, protocol: Protocols, socket: WebSocket) {
    let (mut sink, mut frames) = socket.split();
    let ended = match identify(&http, client, protocol, &mut sink, &mut frames).await {
        Ok(identified) => run(&http, protocol, identified, &mut sink, &mut frames).await,
        Err(close) => close,
    };
    if let Some(Close(code, reason)) = ended {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;
type Frames = futures::stream::SplitStream<WebSocket>;

/// The next client message's bytes; `None` once the client has gone (or
/// broke the framing, e.g. with a message over the limit).
async fn next_message(frames: &mut Frames) -> Option<axum::body::Bytes> {
    loop {
        match frames.next().await? {
            Ok(Message::Text(text)) => return Some(text.into()),
            Ok(Message::Binary(bytes)) => return Some(bytes),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// Waits for `connection_init` and identifies the caller.
async fn identify(
    http: &Http,
    client: ClientAddr,
    protocol: Protocols,
    sink: &mut Sink,
    frames: &mut Frames,
) -> Result<Identified, Option<Close>> {
    let settings = &http.app.config().websocket;
    let deadline = tokio::time::Instant::now() + settings.init_timeout();
    let timed_out = || Some(Close(4408, "Connection initialisation timeout".into()));
    loop {
        let bytes = match tokio::time::timeout_at(deadline, next_message(frames)).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(None),
            Err(_) => return Err(timed_out()),
        };
        match ClientMessage::from_bytes(&bytes) {
            Ok(ClientMessage::ConnectionInit { payload }) => {
                let payload = payload.unwrap_or_default();
                return match tokio::time::timeout_at(
                    deadline,
                    connection_data(http, client, &payload),
                )
                .await
                {
                    Ok(identified) => identified,
                    Err(_) => Err(timed_out()),
                };
            }
            // Ping is allowed before the handshake (graphql-transport-ws).
            Ok(ClientMessage::Ping { .. }) if protocol == Protocols::GraphQLWS => {
                let pong = json!({"type": "pong"}).to_string();
                if sink.send(Message::Text(pong.into())).await.is_err() {
                    return Err(None);
                }
            }
            Ok(ClientMessage::Pong { .. }) => {}
            Ok(ClientMessage::ConnectionTerminate) => return Err(None),
            Ok(_) => return Err(Some(Close(4401, "Unauthorized".into()))),
            Err(e) => return Err(Some(Close(4400, format!("invalid message: {e}")))),
        }
    }
}

/// Per-connection data: who is connected and their own loaders.
async fn connection_data(
    http: &Http,
    client: ClientAddr,
    payload: &Value,
) -> Result<Identified, Option<Close>> {
    let app = &http.app;
    let bearer = bearer(payload);
    let (viewer, expires_at) = Viewer::from_bearer_until(app, bearer.as_deref());
    // The account is resolved when the connection starts: a token whose
    // account is gone is treated like a forged one.
    let (viewer, _) = viewer.resolve(app).await.map_err(|e| {
        tracing::error!(error = %e.chain(), "resolving a websocket caller failed");
        Some(Close(4500, "internal error".into()))
    })?;
    let slot =
        match viewer.user_id() {
            Some(user) => Some(http.sockets.open(user).ok_or_else(|| {
                Some(Close(4429, "Too many connections for this account".into()))
            })?),
            None => None,
        };
    let token = expires_at.filter(|_| viewer.user_id().is_some());
    let expires = token.map(|token| {
        let left = token.expires.saturating_sub(chrono::Utc::now().timestamp());
        tokio::time::Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0))
    });
    let caller = viewer
        .user_id()
        .zip(token)
        .map(|(user, token)| (user, token.generation));
    let mut data = Data::default();
    data.insert(viewer);
    if let Some(token) = token {
        data.insert(token);
    }
    data.insert(Loaders::uncached(app));
    data.insert(Arc::new(ReadRequest::default()));
    // The login limits key on the client address, over websocket too.
    data.insert(client);
    Ok(Identified {
        data,
        slot,
        expires,
        caller,
    })
}

fn bearer(payload: &Value) -> Option<String> {
    ["token", "authToken"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(|t| format!("Bearer {t}"))
        .or_else(|| {
            ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        })
}

/// The operations of one connection, counted against its caps.
struct Running {
    ids: HashSet<String>,
    max: usize,
    slot: Option<ConnectionSlot>,
}

impl Running {
    fn start(&mut self, id: &str) -> bool {
        if self.ids.len() >= self.max {
            return false;
        }
        if let Some(slot) = &mut self.slot {
            if !slot.start_operation() {
                return false;
            }
        }
        self.ids.insert(id.to_owned());
        true
    }

    fn end(&mut self, id: &str) {
        if self.ids.remove(id) {
            if let Some(slot) = &mut self.slot {
                slot.end_operation();
            }
        }
    }
}

/// Serves an identified connection until it ends.
async fn run(
    http: &Http,
    protocol: Protocols,
    identified: Identified,
    sink: &mut Sink,
    frames: &mut Frames,
) -> Option<Close> {
    let settings = &http.app.config().websocket;
    let (inbox, mut input) = mpsc::channel(INBOX);
    // async-graphql answers the handshake itself, with the data found here.
    inbox
        .try_send(Ok(ClientMessage::ConnectionInit { payload: None }))
        .ok()?;
    let mut operations = pin!(Operations::from_message_stream(
        http.schema.clone(),
        futures::stream::poll_fn(move |cx| input.poll_recv(cx)),
        protocol,
    )
    .connection_data(identified.data));
    let caller = identified.caller;
    let mut running = Running {
        ids: HashSet::new(),
        max: settings.max_operations_per_connection,
        slot: identified.slot,
    };
    let expiry = async {
        match identified.expires {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let mut expiry = pin!(expiry);
    loop {
        tokio::select! {
            bytes = next_message(frames), if inbox.capacity() > 0 => {
                let bytes = bytes?;
                let message = ClientMessage::from_bytes(&bytes);
                match &message {
                    Ok(ClientMessage::Start { id, .. }) => {
                        if let Some(close) = revoked(http, caller).await {
                            return Some(close);
                        }
                        if running.ids.contains(id) {
                            return Some(Close(4409, format!("Subscriber for {id} already exists")));
                        }
                        if !running.start(id) {
                            let refusal = refusal(protocol, id);
                            sink.send(Message::Text(refusal.into())).await.ok()?;
                            continue;
                        }
                    }
                    Ok(ClientMessage::Stop { id }) => running.end(id),
                    _ => {}
                }
                inbox.try_send(message).ok()?;
            }
            out = operations.next() => {
                let out = out?;
                let frame = match out {
                    WsMessage::Text(text) => {
                        if let Some(id) = finished(&text) {
                            running.end(&id);
                        }
                        Message::Text(text.into())
                    }
                    WsMessage::Close(code, reason) => return Some(Close(code, reason)),
                };
                sink.send(frame).await.ok()?;
            }
            () = &mut expiry => {
                return Some(Close(4403, "Forbidden: the token has expired".into()));
            }
        }
    }
}

/// Why the connection must close before it runs another operation: its
/// account is gone or has revoked the token since the connection started.
/// Read from CockroachDB once per operation, as an HTTP request reads it.
async fn revoked(http: &Http, caller: Option<(Uuid, i32)>) -> Option<Close> {
    let (user, generation) = caller?;
    match crate::read::sql::user(http.app.sql(), user).await {
        Ok(Some(row)) if row.token_generation == generation => None,
        Ok(Some(_)) => Some(Close(4403, "Forbidden: the token was revoked".into())),
        Ok(None) => Some(Close(
            4403,
            "Forbidden: the account no longer exists".into(),
        )),
        Err(e) => {
            tracing::error!(error = %e.chain(), "re-reading a websocket caller failed");
            Some(Close(4500, "internal error".into()))
        }
    }
}

/// The error a `subscribe` past the caps gets; the connection stays open.
fn refusal(protocol: Protocols, id: &str) -> String {
    let error = json!({
        "message": "too many operations running on this connection or account",
        "extensions": {"code": "RATE_LIMITED"},
    });
    let payload = match protocol {
        Protocols::GraphQLWS => json!([error]),
        Protocols::SubscriptionsTransportWS => error,
    };
    json!({"type": "error", "id": id, "payload": payload}).to_string()
}

/// The id of the operation a server message ends (`complete`, `error`).
/// async-graphql writes the `type` tag first, so other messages are told
/// apart without parsing them.
fn finished(text: &str) -> Option<String> {
    if !(text.starts_with(r#"{"type":"complete""#) || text.starts_with(r#"{"type":"error""#)) {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Ended {
        id: String,
    }
    serde_json::from_str::<Ended>(text).ok().map(|e| e.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ending_messages_give_back_an_operation() {
        assert_eq!(
            finished(r#"{"type":"complete","id":"7"}"#).as_deref(),
            Some("7")
        );
        assert_eq!(
            finished(r#"{"type":"error","id":"a b","payload":[{"message":"x"}]}"#).as_deref(),
            Some("a b")
        );
        assert_eq!(finished(r#"{"type":"next","id":"7","payload":{}}"#), None);
        assert_eq!(finished(r#"{"type":"connection_ack"}"#), None);
    }

    #[test]
    fn a_refusal_speaks_each_protocol() {
        let modern: Value =
            serde_json::from_str(&refusal(Protocols::GraphQLWS, "1")).expect("json");
        assert_eq!(modern["payload"][0]["extensions"]["code"], "RATE_LIMITED");
        let legacy: Value =
            serde_json::from_str(&refusal(Protocols::SubscriptionsTransportWS, "1")).expect("json");
        assert_eq!(legacy["payload"]["extensions"]["code"], "RATE_LIMITED");
        assert_eq!(legacy["id"], "1");
    }
}
