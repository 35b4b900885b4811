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
mod identify;

use std::{collections::HashSet, pin::pin};

use async_graphql::http::{
    ClientMessage, WebSocket as Operations, WebSocketProtocols as Protocols, WsMessage,
    ALL_WEBSOCKET_PROTOCOLS,
};
use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket},
        State, WebSocketUpgrade,
    },
    http::{header, request::Parts, StatusCode},
    response::{IntoResponse, Response},
};
use futures::{stream::FuturesOrdered, SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;

use caps::ConnectionSlot;
pub use caps::SocketCaps;
use identify::{identify, revoked, Identified};

use super::{client::client_addr, Http};
use crate::ratelimit::ClientAddr;

/// Client messages handed to async-graphql (or waiting to be) but not yet
/// taken by it; past this the connection stops reading frames.
const INBOX: usize = 16;
/// Frames written to a client that does not read them; past this the
/// connection is closed (1008).
const OUTBOX: usize = 256;

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

/// Why a connection ends, as the close frame says it.
pub(super) struct Close(pub(super) u16, pub(super) String);

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

pub(super) type Sink = futures::stream::SplitSink<WebSocket, Message>;
pub(super) type Frames = futures::stream::SplitStream<WebSocket>;

/// The next client message's bytes; `None` once the client has gone (or
/// broke the framing, e.g. with a message over the limit).
pub(super) async fn next_message(frames: &mut Frames) -> Option<axum::body::Bytes> {
    loop {
        match frames.next().await? {
            Ok(Message::Text(text)) => return Some(text.into()),
            Ok(Message::Binary(bytes)) => return Some(bytes),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
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
        http.ws_schema.clone(),
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
    // Client messages in arrival order, each once it may be handed on (a
    // subscribe first re-reads the caller). Nothing here awaits I/O inline:
    // the operations keep being driven meanwhile, so those already running
    // finish their queries and give their pool connections back.
    let mut admitting: FuturesOrdered<Admission<'_>> = FuturesOrdered::new();
    // Frames for the client, written by a task of their own; a client that
    // does not read them is closed rather than buffered without bound.
    let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX);
    let writer = async {
        while let Some(frame) = outgoing.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
    };
    let mut writer = pin!(writer);
    let send = |frame: Message| match outbox.try_send(frame) {
        Ok(()) => Ok(()),
        Err(_) => Err(Close(1008, "Not reading its messages".into())),
    };
    let ended = loop {
        tokio::select! {
            bytes = next_message(frames), if inbox.capacity() > admitting.len() => {
                let Some(bytes) = bytes else { break None };
                let message = ClientMessage::from_bytes(&bytes);
                match &message {
                    Ok(ClientMessage::Start { id, .. }) => {
                        if running.ids.contains(id) {
                            break Some(Close(4409, format!("Subscriber for {id} already exists")));
                        }
                        if !running.start(id) {
                            if let Err(close) = send(Message::Text(refusal(protocol, id).into())) {
                                break Some(close);
                            }
                            continue;
                        }
                        admitting.push_back(Box::pin(async move { (revoked(http, caller).await, message) }));
                    }
                    Ok(ClientMessage::Stop { id }) => {
                        running.end(id);
                        admitting.push_back(Box::pin(std::future::ready((None, message))));
                    }
                    _ => admitting.push_back(Box::pin(std::future::ready((None, message)))),
                }
            }
            Some((close, message)) = admitting.next(), if !admitting.is_empty() => {
                if let Some(close) = close {
                    break Some(close);
                }
                if inbox.try_send(message).is_err() {
                    break None;
                }
            }
            out = operations.next() => {
                let Some(out) = out else { break None };
                let frame = match out {
                    WsMessage::Text(text) => {
                        if let Some(id) = finished(&text) {
                            running.end(&id);
                        }
                        Message::Text(text.into())
                    }
                    WsMessage::Close(code, reason) => break Some(Close(code, reason)),
                };
                if let Err(close) = send(frame) {
                    break Some(close);
                }
            }
            () = &mut writer => break None,
            () = &mut expiry => {
                break Some(Close(4403, "Forbidden: the token has expired".into()));
            }
        }
    };
    // What was queued goes out before the close frame.
    drop(outbox);
    writer.await;
    ended
}

/// A client message once it may be handed to async-graphql, or why the
/// connection must close instead.
type Admission<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (Option<Close>, serde_json::Result<ClientMessage>)>
            + Send
            + 'a,
    >,
>;

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
    use serde_json::Value;

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
