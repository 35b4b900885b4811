//! GraphQL over HTTP: `POST /graphql` (queries and mutations) and
//! `GET /graphql` (GraphiQL for browsers, queries only for clients).
use std::sync::Arc;

use async_graphql::{
    parser::{parse_query, types::OperationType},
    BatchRequest, BatchResponse, Request, Response, Value,
};
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse},
};

use super::Http;
use crate::{
    graphql::{
        context::{Viewer, Written},
        loaders::Loaders,
    },
    read::cursor::Cursors,
    write::EventRef,
};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The response media type the client accepts, `None` if it accepts neither.
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(JSON);
    };
    let mut json = false;
    let mut any = false;
    for part in accept.split(',') {
        let media = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            GRAPHQL_RESPONSE => return Some(GRAPHQL_RESPONSE),
            JSON => json = true,
            "*/*" | "application/*" => any = true,
            _ => {}
        }
    }
    (json || any).then_some(JSON)
}

/// A GraphQL-shaped error response for requests that never reached execution.
fn request_error(
    status: StatusCode,
    media: &'static str,
    message: &str,
) -> axum::response::Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }]
    });
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(media))],
        body.to_string(),
    )
        .into_response()
}

/// True when the operation `request` would run is a mutation (or a
/// subscription, which plain HTTP cannot serve).
fn is_write_operation(request: &Request) -> bool {
    let Ok(doc) = parse_query(&request.query) else {
        return false;
    };
    let wanted = request.operation_name.as_deref();
    doc.operations.iter().any(|(name, op)| {
        let selected = match wanted {
            Some(w) => name.map(|n| n.as_str()) == Some(w),
            None => true,
        };
        selected && op.node.ty != OperationType::Query
    })
}

pub async fn post(
    State(http): State<Http>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            JSON,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != JSON {
        return request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "Content-Type must be application/json",
        );
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(_) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                media,
                "request body is not a valid GraphQL request",
            )
        }
    };
    execute(&http, &headers, batch, media).await
}

pub async fn get(
    State(http): State<Http>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    let query = query.unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !query.contains("query=") {
        return Html(super::graphiql::page()).into_response();
    }
    let Some(media) = negotiate(&headers) else {
        return request_error(
            StatusCode::NOT_ACCEPTABLE,
            JSON,
            "Accept must allow application/graphql-response+json or application/json",
        );
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(_) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                media,
                "query string is not a valid GraphQL request",
            )
        }
    };
    if is_write_operation(&request) {
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&http, &headers, BatchRequest::Single(request), media).await
}

async fn execute(
    http: &Http,
    headers: &HeaderMap,
    batch: BatchRequest,
    media: &'static str,
) -> axum::response::Response {
    let viewer = Viewer::from_bearer(
        &http.app,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let run = |request: Request| {
        let written = Arc::new(Written::default());
        let request = request
            .data(viewer.clone())
            .data(Loaders::new(http.app.sql()))
            .data(written.clone());
        let schema = http.schema.clone();
        let cursors = http.app.cursors().clone();
        async move {
            let mut response = schema.execute(request).await;
            finish(&mut response, &written.take(), &cursors);
            response
        }
    };
    let response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(run(request).await),
        BatchRequest::Batch(requests) => {
            let mut out = Vec::with_capacity(requests.len());
            for request in requests {
                out.push(run(request).await);
            }
            BatchResponse::Batch(out)
        }
    };
    let status = match (&response, media) {
        (BatchResponse::Single(r), GRAPHQL_RESPONSE) if is_request_error(r) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let body = serde_json::to_string(&response).unwrap_or_else(|_| {
        r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#.to_owned()
    });
    let mut out = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(media))],
        body,
    )
        .into_response();
    if let Some(value) = response
        .cache_control()
        .value()
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        out.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    out.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
    out
}

/// Parse and validation failures: no data and no error from a resolver.
fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Codes every error and attaches the consistency token naming what the
/// request wrote.
fn finish(response: &mut Response, written: &[EventRef], cursors: &Cursors) {
    for error in &mut response.errors {
        crate::error::classify(error);
    }
    if !written.is_empty() {
        response.extensions.insert(
            "consistencyToken".to_owned(),
            Value::String(cursors.encode(&written)),
        );
    }
}
