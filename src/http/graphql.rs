//! GraphQL over HTTP: `POST /graphql` (queries and mutations) and
//! `GET /graphql` (GraphiQL for browsers, queries only for clients).
//!
//! CSRF: a browser can send a cross-site GET, or a POST with a form or
//! `text/plain` body, without asking the server first. None of those can run
//! a mutation here: GET refuses mutations (405) and POST accepts only
//! `application/json` (415 otherwise), which a cross-site page can only send
//! after a CORS preflight that `CORS_ALLOWED_ORIGINS` decides.
use std::sync::Arc;

use tracing::Instrument as _;

use async_graphql::{BatchRequest, BatchResponse, Request, Response, ServerError, Value};
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
};

use super::{
    client::client_addr,
    request::{self as params, BatchRules},
    response::{self, JSON},
    Http,
};
use crate::{
    graphql::{
        context::{CallerFacts, Viewer, Written},
        door::with_document,
        limits::admit,
        loaders::Loaders,
        writes::charged_fields,
    },
    ratelimit::ClientAddr,
    read::{cursor::Cursors, routing::ReadRequest},
    write::EventRef,
};

/// Header carrying a mutation's `extensions.consistencyToken` back, so that
/// MongoDB-routed fields reflect the writes it names.
const CONSISTENCY_TOKEN: &str = "x-consistency-token";
/// Longest accepted token; tokens name each aggregate once, so even large
/// mutation batches stay well below it.
const MAX_CONSISTENCY_TOKEN: usize = 8 * 1024;

fn not_acceptable() -> axum::response::Response {
    response::error(
        StatusCode::NOT_ACCEPTABLE,
        JSON,
        "NOT_ACCEPTABLE",
        "Accept must allow application/graphql-response+json or application/json",
    )
}

pub async fn post(State(http): State<Http>, parts: Parts, body: Bytes) -> axum::response::Response {
    let headers = &parts.headers;
    let Some(media) = response::negotiate(headers) else {
        return not_acceptable();
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
        return response::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        );
    }
    let config = http.app.config();
    let rules = BatchRules {
        enabled: config.query.batching,
        max_operations: config.query.batch_max_operations,
        max_variables: config.query.max_query_variables,
    };
    let batch = match params::from_body(&body, rules) {
        Ok(batch) => batch,
        // A query limit, answered as the front door answers it.
        Err(rejection) if rejection.code == params::QUERY_TOO_LARGE => {
            let error = crate::error::coded(rejection.code, rejection.message);
            let refused = Response::from_errors(vec![error]);
            return response::execution(&BatchResponse::Single(refused), media);
        }
        Err(rejection) => {
            return response::error(
                StatusCode::BAD_REQUEST,
                media,
                rejection.code,
                &rejection.message,
            )
        }
    };
    let client = client_addr(&parts, config.trust_forwarded_for);
    execute(&http, headers, client, batch, media).await
}

pub async fn get(
    State(http): State<Http>,
    parts: Parts,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    let headers = &parts.headers;
    let query = query.unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !query.contains("query=") {
        return super::graphiql::page();
    }
    let Some(media) = response::negotiate(headers) else {
        return not_acceptable();
    };
    let mut request = match params::from_query_string(&query) {
        Ok(request) => request,
        Err(rejection) => {
            return response::error(
                StatusCode::BAD_REQUEST,
                media,
                rejection.code,
                &rejection.message,
            )
        }
    };
    let resolved = match http.documents.resolve(&mut request).await {
        Ok(()) => admit(&mut request, http.door.limits()),
        Err(error) => Err(error),
    };
    if let Err(mut error) = resolved {
        crate::error::classify(&mut error);
        let refused = Response::from_errors(vec![error]);
        return response::execution(&BatchResponse::Single(refused), media);
    }
    let operation = request.operation_name.clone();
    let writes = request
        .parsed_query()
        .is_ok_and(|doc| params::is_write_operation(doc, operation.as_deref()));
    if writes {
        let mut reply = response::error(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "METHOD_NOT_ALLOWED",
            "mutations must be sent with POST",
        );
        reply
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return reply;
    }
    let client = client_addr(&parts, http.app.config().trust_forwarded_for);
    execute(&http, headers, client, BatchRequest::Single(request), media).await
}

async fn execute(
    http: &Http,
    headers: &HeaderMap,
    client: ClientAddr,
    batch: BatchRequest,
    media: &'static str,
) -> axum::response::Response {
    let viewer = Viewer::from_bearer(
        &http.app,
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let token = match consistency_token(http, headers) {
        Ok(token) => token,
        Err(response) => return response::execution(&BatchResponse::Single(*response), media),
    };
    let single = matches!(batch, BatchRequest::Single(_));
    // Every entry through the front door first, each in its own span.
    let mut entries = Vec::new();
    let requests = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => requests,
    };
    for request in requests {
        let span = operation_span(&request);
        let admitted = http.door.enter(request).instrument(span.clone()).await;
        entries.push((span, admitted));
    }
    let charge = match entries.first_mut() {
        Some((_, Ok(request))) if single && matches!(viewer, Viewer::Claimed { .. }) => {
            fields_to_charge(request)
        }
        _ => None,
    };
    let resolved = match charge {
        Some(wanted) => viewer.resolve_charging(&http.app, wanted).await,
        None => viewer
            .resolve(&http.app)
            .await
            .map(|(viewer, user)| (viewer, user, None)),
    };
    let (viewer, user, mut precharged) = match resolved {
        Ok(resolved) => resolved,
        Err(error) => {
            tracing::error!(error = %error.chain(), "resolving the caller failed");
            return response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                media,
                "INTERNAL",
                "internal error",
            );
        }
    };
    // The first (or only) request starts with the caller's row; a later
    // entry of a batch reads it again, after the mutations before it.
    let mut resolved = Some(user);
    let mut run = |span: tracing::Span, admitted: Result<Request, ServerError>| {
        let facts = Arc::new(CallerFacts::known(resolved.take().flatten()));
        let written = Arc::new(Written::default());
        let reads = Arc::new(ReadRequest::new(token.clone()));
        let precharged = precharged.take();
        let viewer = viewer.clone();
        async move {
            let mut response = match admitted {
                Ok(request) => {
                    let request = request
                        .data(viewer)
                        .data(Loaders::new(&http.app))
                        .data(written.clone())
                        .data(reads.clone())
                        .data(client)
                        .data(facts);
                    let request = match precharged {
                        Some(taken) => request.data(taken),
                        None => request,
                    };
                    http.schema.execute(request).await
                }
                Err(refused) => Response::from_errors(vec![refused]),
            };
            http.door.finish(&mut response.errors);
            finish(&mut response, &written.take(), http.app.cursors());
            add_provenance(&mut response, &reads);
            response
        }
        .instrument(span)
    };
    let mut out = Vec::with_capacity(entries.len());
    for (span, admitted) in entries {
        out.push(run(span, admitted).await);
    }
    let response = match out.pop() {
        Some(only) if single => BatchResponse::Single(only),
        last => {
            out.extend(last);
            BatchResponse::Batch(out)
        }
    };
    response::execution(&response, media)
}

/// One span per operation; the front door records its type once the
/// document is parsed (`graphql::door`). Never the variables.
fn operation_span(request: &Request) -> tracing::Span {
    let span = tracing::info_span!(
        "graphql",
        graphql.operation.name = tracing::field::Empty,
        graphql.operation.type = tracing::field::Empty,
    );
    if let Some(name) = request.operation_name.as_deref() {
        span.record("graphql.operation.name", name);
    }
    span
}

/// The top-level mutation fields an admitted `request` runs, when it is a
/// mutation; its caller is then read in the statement that takes them from
/// the caller's budget ([`Viewer::resolve_charging`]).
fn fields_to_charge(request: &mut Request) -> Option<u32> {
    with_document(request, charged_fields).filter(|&fields| fields > 0)
}

/// The writes named by `X-Consistency-Token` (none without the header); a
/// token this server did not sign is `BAD_USER_INPUT`.
fn consistency_token(http: &Http, headers: &HeaderMap) -> Result<Vec<EventRef>, Box<Response>> {
    let Some(value) = headers.get(CONSISTENCY_TOKEN) else {
        return Ok(Vec::new());
    };
    let decoded = value
        .to_str()
        .map_err(|_| crate::error::AppError::bad_input("invalid consistency token"))
        .and_then(|v| {
            http.app
                .cursors()
                .decode_bounded::<Vec<EventRef>>(v.trim(), MAX_CONSISTENCY_TOKEN)
        });
    decoded.map_err(|_| {
        let error = crate::error::coded("BAD_USER_INPUT", "invalid consistency token");
        Box::new(Response::from_errors(vec![error]))
    })
}

/// Lists which store answered each routed field (`extensions.provenance`).
fn add_provenance(response: &mut Response, reads: &ReadRequest) {
    let provenance = reads.provenance();
    if provenance.is_empty() {
        return;
    }
    if let Ok(value) = Value::from_json(serde_json::to_value(provenance).unwrap_or_default()) {
        response.extensions.insert("provenance".to_owned(), value);
    }
}

/// Attaches the consistency token naming what the request wrote.
fn finish(response: &mut Response, written: &[EventRef], cursors: &Cursors) {
    if !written.is_empty() {
        response.extensions.insert(
            "consistencyToken".to_owned(),
            Value::String(cursors.encode(&latest_versions(written))),
        );
    }
}

/// One entry per aggregate, at the newest version written: waiting for it
/// implies every older one.
fn latest_versions(written: &[EventRef]) -> Vec<EventRef> {
    let mut latest: Vec<EventRef> = Vec::with_capacity(written.len());
    for event in written {
        match latest
            .iter_mut()
            .find(|e| e.aggregate == event.aggregate && e.aggregate_id == event.aggregate_id)
        {
            Some(seen) => seen.version = seen.version.max(event.version),
            None => latest.push(event.clone()),
        }
    }
    latest
}
