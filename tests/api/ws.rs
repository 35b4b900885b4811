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

/// Opens `/graphql/ws`, sends `connection_init` (with `token`, if any) and
/// waits for the `connection_ack`.
pub async fn connect(app: &TestApp, token: Option<&str>) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = connect_async(request).await.expect("websocket connect");
    let payload = token.map_or_else(|| json!({}), |token| json!({"token": token}));
    let init = json!({"type": "connection_init", "payload": payload});
    socket
        .send(Frame::text(init.to_string()))
        .await
        .expect("init");
    let ack = next_json(&mut socket, Duration::from_secs(10))
        .await
        .expect("ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
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
