//! GraphQL subscriptions over websocket (`graphql-transport-ws`, and the
//! older `graphql-ws`) at `/graphql/ws`. The bearer token travels in the
//! `connection_init` payload (`{"token": "..."}` or
//! `{"Authorization": "Bearer ..."}`), since browsers cannot set headers on
//! websocket requests.
use std::sync::Arc;

use async_graphql::{http::ALL_WEBSOCKET_PROTOCOLS, Data};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{State, WebSocketUpgrade},
    http::request::Parts,
    response::Response,
};
use serde_json::Value;

use super::{client::client_addr, Http};
use crate::{
    app::AppState,
    graphql::{context::Viewer, loaders::Loaders},
    ratelimit::ClientAddr,
    read::routing::ReadRequest,
};

pub async fn ws(
    State(http): State<Http>,
    parts: Parts,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = http.schema.clone();
    let app = http.app.clone();
    let client = client_addr(&parts, app.config().trust_forwarded_for);
    // A message holds one document and its variables: the body limit bounds
    // it as it bounds a POST (the front door then bounds the document).
    let limit = app.config().body_limit_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    connection_data(&app, client, &payload).await
                })
                .serve()
        })
}

/// Per-connection data: who is connected and their own loaders.
async fn connection_data(
    app: &AppState,
    client: ClientAddr,
    payload: &Value,
) -> async_graphql::Result<Data> {
    let bearer = ["token", "authToken"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(|t| format!("Bearer {t}"))
        .or_else(|| {
            ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        });
    let mut data = Data::default();
    // The account is resolved when the connection starts: a token whose
    // account is gone is refused like a forged one.
    let (viewer, _) = Viewer::from_bearer(app, bearer.as_deref())
        .resolve(app)
        .await?;
    data.insert(viewer);
    data.insert(Loaders::uncached(app));
    data.insert(Arc::new(ReadRequest::default()));
    // The login limits key on the client address, over websocket too.
    data.insert(client);
    Ok(data)
}
