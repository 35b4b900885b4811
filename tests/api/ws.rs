//! A graphql-transport-ws client for the tests: connect (with or without a
//! token) and read the next JSON frame.
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message as Frame},
    MaybeTlsStream, WebSocketStream,
};

use crate::helpers::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` (graphql-transport-ws) and sends nothing.
pub async fn open(app: &TestApp) -> Socket {
    open_at(&app.addr.to_string()).await
}

/// Like [`open`], on the server at `addr` (`host:port`).
pub async fn open_at(addr: &str) -> Socket {
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, _) = connect_async(request).await.expect("websocket connect");
    socket
}

/// Opens `/graphql/ws` and sends `connection_init` (with `token`, if any);
/// returns the socket and the server's first answer.
pub async fn init(app: &TestApp, token: Option<&str>) -> (Socket, Reply) {
    init_at(&app.addr.to_string(), token).await
}

/// Like [`init`], on the server at `addr` (`host:port`).
pub async fn init_at(addr: &str, token: Option<&str>) -> (Socket, Reply) {
    let mut socket = open_at(addr).await;
    let payload = token.map_or_else(|| json!({}), |token| json!({"token": token}));
    let init = json!({"type": "connection_init", "payload": payload});
    socket
        .send(Frame::text(init.to_string()))
        .await
        .expect("init");
    let reply = next_reply(&mut socket, Duration::from_secs(10)).await;
    (socket, reply)
}

/// Opens `/graphql/ws`, sends `connection_init` (with `token`, if any) and
/// waits for the `connection_ack`.
pub async fn connect(app: &TestApp, token: Option<&str>) -> Socket {
    connect_at(&app.addr.to_string(), token).await
}

/// Like [`connect`], on the server at `addr` (`host:port`).
pub async fn connect_at(addr: &str, token: Option<&str>) -> Socket {
    let (socket, reply) = init_at(addr, token).await;
    match reply {
        Reply::Json(ack) if ack["type"] == "connection_ack" => socket,
        other => panic!("expected connection_ack, got {other:?}"),
    }
}

/// What the server sent next.
#[derive(Debug)]
pub enum Reply {
    Json(Value),
    /// A close frame's code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame.
    Gone,
    /// Nothing within the wait.
    Silent,
}

/// The next JSON frame or close frame within `wait`.
pub async fn next_reply(socket: &mut Socket, wait: Duration) -> Reply {
    loop {
        let frame = match tokio::time::timeout(wait, socket.next()).await {
            Err(_) => return Reply::Silent,
            Ok(None | Some(Err(_))) => return Reply::Gone,
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Frame::Text(text) => {
                return Reply::Json(serde_json::from_str(text.as_str()).expect("JSON frame"))
            }
            Frame::Close(Some(close)) => {
                return Reply::Closed(close.code.into(), close.reason.to_string())
            }
            Frame::Close(None) => return Reply::Gone,
            _ => {}
        }
    }
}

/// Sends one JSON frame.
pub async fn send_json(socket: &mut Socket, frame: &Value) {
    socket
        .send(Frame::text(frame.to_string()))
        .await
        .expect("send a frame");
}

/// Sends a `subscribe` for `query` under `id`.
pub async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    let frame =
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}});
    socket
        .send(Frame::text(frame.to_string()))
        .await
        .expect("subscribe");
}

/// The next JSON frame, or `None` if none arrives within `wait` (or the
/// socket closes).
pub async fn next_json(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        if let Frame::Text(text) = frame {
            return serde_json::from_str(text.as_str()).ok();
        }
    }
}
