//! A graphql-transport-ws client for the live phase: it connects to
//! `/graphql/ws` with a token, subscribes to rooms' `messageAdded`, and
//! stamps every message it receives with the moment its frame was read.
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message},
};

pub const MESSAGE_ADDED: &str =
    "subscription($r: ID!) { messageAdded(roomId: $r) { body cursor } }";

/// What the server said in one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Ack,
    /// A result of operation `id`; `body` is the message's, if it has one.
    Next {
        id: String,
        body: Option<String>,
    },
    /// Operation `id` failed; the first error's code, or its message.
    Error {
        id: String,
        error: String,
    },
    Complete {
        id: String,
    },
    Ping,
    Pong,
    /// Anything else (kept for the error line).
    Other(String),
}

/// Reads one text frame of the server.
pub fn parse(text: &str) -> Frame {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Frame::Other(text.chars().take(200).collect());
    };
    let id = || value["id"].as_str().unwrap_or_default().to_owned();
    match value["type"].as_str() {
        Some("connection_ack") => Frame::Ack,
        // A result may carry errors instead of data (a subscription that
        // ends with FORBIDDEN, say).
        Some("next" | "data") => match value.pointer("/payload/errors/0") {
            Some(first) => Frame::Error {
                id: id(),
                error: first_error(first),
            },
            None => Frame::Next {
                id: id(),
                body: value
                    .pointer("/payload/data/messageAdded/body")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
        },
        // graphql-transport-ws sends a list of errors.
        Some("error") => Frame::Error {
            id: id(),
            error: first_error(value["payload"].get(0).unwrap_or(&value["payload"])),
        },
        Some("complete") => Frame::Complete { id: id() },
        Some("ping") => Frame::Ping,
        Some("pong") => Frame::Pong,
        _ => Frame::Other(text.chars().take(200).collect()),
    }
}

/// An error's code, or its message when it has none.
fn first_error(error: &Value) -> String {
    error
        .pointer("/extensions/code")
        .or_else(|| error.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned()
}

/// A message a subscription received, and when its frame was read.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The connection's number, as given to [`Socket::connect`].
    pub conn: usize,
    pub body: String,
    pub at: Instant,
}

/// What every connection of a measurement received, counted as it arrives.
#[derive(Default)]
pub struct Tally {
    pub next: AtomicUsize,
    pub errors: AtomicUsize,
    /// Connections that ended while the measurement still used them.
    pub closed: AtomicUsize,
    pub first_error: Mutex<Option<String>>,
}

impl Tally {
    pub fn received(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> usize {
        self.errors.load(Ordering::Relaxed)
    }

    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(what);
        }
    }

    /// The first error and how many there were, if any.
    pub fn problem(&self) -> Option<String> {
        let first = self.first_error.lock().ok()?.clone()?;
        Some(format!("{} errors, the first: {first}", self.errors()))
    }

    /// Waits until `n` messages have arrived in all; false after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.received() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// One identified connection; its frames are read by a task of its own.
pub struct Socket {
    out: mpsc::UnboundedSender<Message>,
    tasks: [JoinHandle<()>; 2],
}

impl Socket {
    /// Connects to `base` (`http://host:port`), identifies with `token` and
    /// waits for the `connection_ack`. Every message then counts in `tally`,
    /// and goes to `receipts` when given.
    pub async fn connect(
        base: &str,
        token: &str,
        conn: usize,
        tally: Arc<Tally>,
        receipts: Option<mpsc::UnboundedSender<Receipt>>,
    ) -> anyhow::Result<Self> {
        let url = format!("{}/graphql/ws", base.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut socket, _) = connect_async(request).await.context("websocket connect")?;
        let init = json!({"type": "connection_init", "payload": {"token": token}});
        socket.send(Message::text(init.to_string())).await?;
        let ack = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("no connection_ack within 30 s")?;
        match ack {
            Some(Ok(Message::Text(text))) if parse(text.as_str()) == Frame::Ack => {}
            Some(Ok(Message::Close(frame))) => bail!("closed instead of acknowledged: {frame:?}"),
            other => bail!("expected connection_ack, got {other:?}"),
        }
        let (mut sink, mut frames) = socket.split();
        let (out, mut outbox) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(message) = outbox.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let pong = out.clone();
        let reader = tokio::spawn(async move {
            while let Some(frame) = frames.next().await {
                let at = Instant::now();
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(frame)) => {
                        tally.closed.fetch_add(1, Ordering::Relaxed);
                        tally.error(format!("connection closed: {frame:?}"));
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        tally.closed.fetch_add(1, Ordering::Relaxed);
                        tally.error(format!("connection failed: {e}"));
                        return;
                    }
                };
                match parse(text.as_str()) {
                    Frame::Next { body, .. } => {
                        tally.next.fetch_add(1, Ordering::Relaxed);
                        if let (Some(receipts), Some(body)) = (&receipts, body) {
                            let _ = receipts.send(Receipt { conn, body, at });
                        }
                    }
                    Frame::Error { id, error } => tally.error(format!("operation {id}: {error}")),
                    Frame::Ping => {
                        let _ = pong.send(Message::text(json!({"type": "pong"}).to_string()));
                    }
                    Frame::Other(text) => tally.error(format!("unexpected frame: {text}")),
                    Frame::Ack | Frame::Complete { .. } | Frame::Pong => {}
                }
            }
        });
        Ok(Self {
            out,
            tasks: [writer, reader],
        })
    }

    /// Starts `messageAdded(roomId: room)` as operation `id`.
    pub fn subscribe(&self, id: &str, room: &str) -> anyhow::Result<()> {
        let frame = json!({
            "id": id,
            "type": "subscribe",
            "payload": {"query": MESSAGE_ADDED, "variables": {"r": room}},
        });
        self.send(frame)
    }

    /// Ends operation `id`.
    pub fn complete(&self, id: &str) -> anyhow::Result<()> {
        self.send(json!({"id": id, "type": "complete"}))
    }

    fn send(&self, frame: Value) -> anyhow::Result<()> {
        self.out
            .send(Message::text(frame.to_string()))
            .map_err(|_| anyhow::anyhow!("the connection has ended"))
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_frames_are_told_apart() {
        assert_eq!(parse(r#"{"type":"connection_ack"}"#), Frame::Ack);
        assert_eq!(
            parse(
                r#"{"type":"next","id":"7","payload":{"data":{"messageAdded":{"body":"live 3","cursor":"c"}}}}"#
            ),
            Frame::Next {
                id: "7".into(),
                body: Some("live 3".into())
            }
        );
        assert_eq!(
            parse(
                r#"{"type":"error","id":"2","payload":[{"message":"too many","extensions":{"code":"RATE_LIMITED"}}]}"#
            ),
            Frame::Error {
                id: "2".into(),
                error: "RATE_LIMITED".into()
            }
        );
        assert_eq!(
            parse(r#"{"type":"complete","id":"2"}"#),
            Frame::Complete { id: "2".into() }
        );
        assert_eq!(parse(r#"{"type":"ping"}"#), Frame::Ping);
        assert!(matches!(parse("not json"), Frame::Other(_)));
    }

    #[test]
    fn a_result_with_errors_is_an_error() {
        assert_eq!(
            parse(
                r#"{"type":"next","id":"4","payload":{"data":null,"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}]}}"#
            ),
            Frame::Error {
                id: "4".into(),
                error: "FORBIDDEN".into()
            }
        );
    }

    #[test]
    fn an_error_without_a_code_keeps_its_message() {
        assert_eq!(
            parse(r#"{"type":"error","id":"1","payload":[{"message":"Forbidden"}]}"#),
            Frame::Error {
                id: "1".into(),
                error: "Forbidden".into()
            }
        );
    }
}
