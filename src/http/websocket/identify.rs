//! Identifying a connection: `connection_init` within the timeout, the
//! caller's account, its connection slot, its token's expiry; and, before
//! each operation, whether the account still accepts the token.
use std::{sync::Arc, time::Duration};

use async_graphql::{http::ClientMessage, Data};
use axum::extract::ws::Message;
use futures::SinkExt;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{caps::ConnectionSlot, next_message, Close, Frames, Protocols, Sink};
use crate::{
    graphql::{context::Viewer, loaders::Loaders},
    http::Http,
    ratelimit::ClientAddr,
    read::routing::ReadRequest,
};

/// Who an identified connection belongs to, and until when.
pub(super) struct Identified {
    pub(super) data: Data,
    pub(super) slot: Option<ConnectionSlot>,
    pub(super) expires: Option<tokio::time::Instant>,
    /// The account and the token generation it was identified with.
    pub(super) caller: Option<(Uuid, i32)>,
}

/// Waits for `connection_init` and identifies the caller.
pub(super) async fn identify(
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

/// Why the connection must close before it runs another operation: its
/// account is gone or has revoked the token since the connection started.
/// Read from CockroachDB once per operation, as an HTTP request reads it.
pub(super) async fn revoked(http: &Http, caller: Option<(Uuid, i32)>) -> Option<Close> {
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
