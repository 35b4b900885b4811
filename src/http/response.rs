//! GraphQL-over-HTTP responses: media type by `Accept`, status codes as the
//! specification asks, and error bodies shaped like GraphQL results even when
//! the request never reached GraphQL (bad JSON, too large, too slow).
use std::collections::BTreeMap;

use async_graphql::{BatchResponse, Response, ServerError, Value};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
pub const JSON: &str = "application/json";

/// The response media type the client accepts, `None` if it accepts neither.
/// Without `Accept`, `application/json` (what legacy clients expect).
pub fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
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

/// `negotiate`, falling back to JSON for error replies to clients that
/// accept neither type (they still get something readable).
pub fn media_or_json(headers: &HeaderMap) -> &'static str {
    negotiate(headers).unwrap_or(JSON)
}

/// A GraphQL-shaped error for requests that never reached execution: no
/// `data` entry, one error with a message and `extensions.code`.
pub fn error(
    status: StatusCode,
    media: &'static str,
    code: &str,
    message: &str,
) -> axum::response::Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    with_media(status, media, body.to_string())
}

fn with_media(status: StatusCode, media: &'static str, body: String) -> axum::response::Response {
    let mut response = axum::response::IntoResponse::into_response((status, body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

/// Parse and validation failures (limits included): no data and no error
/// from a resolver, so execution never started.
fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// One result as its body says it: a result that never executed has no
/// `data` entry, as the GraphQL specification requires. Serialized straight
/// to text, in the order async-graphql's `Response` gives (`data`,
/// `extensions`, `errors`), with no JSON tree built in between.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "no_extensions")]
    extensions: &'a BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "no_errors")]
    errors: &'a [ServerError],
}

fn no_extensions(extensions: &&BTreeMap<String, Value>) -> bool {
    extensions.is_empty()
}

fn no_errors(errors: &&[ServerError]) -> bool {
    errors.is_empty()
}

fn body(response: &Response) -> Body<'_> {
    Body {
        data: (!is_request_error(response)).then_some(&response.data),
        extensions: &response.extensions,
        errors: &response.errors,
    }
}

/// The HTTP reply for executed GraphQL. With `application/graphql-response+json`,
/// a single request that failed before execution is a 400; with
/// `application/json` it is a 200, as the specification asks for legacy
/// clients. Batches answer 200 with one result per operation.
pub fn execution(response: &BatchResponse, media: &'static str) -> axum::response::Response {
    let (status, body) = match response {
        BatchResponse::Single(single) => {
            let status = if media == GRAPHQL_RESPONSE && is_request_error(single) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (status, serde_json::to_string(&body(single)))
        }
        BatchResponse::Batch(all) => (
            StatusCode::OK,
            serde_json::to_string(&all.iter().map(body).collect::<Vec<_>>()),
        ),
    };
    let body = body.unwrap_or_else(|_| {
        r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#.to_owned()
    });
    let mut out = with_media(status, media, body);
    if let Some(value) = response
        .cache_control()
        .value()
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        out.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    out.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization, X-Consistency-Token"),
    );
    out
}

/// A reply to a request that carried credentials depends on who asked: no
/// cache (browser or shared) may keep it.
pub async fn no_store_when_authenticated(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let authenticated = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    if authenticated {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_chooses_the_media_type() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(JSON));
        assert_eq!(negotiate(&accept("application/json")), Some(JSON));
        assert_eq!(negotiate(&accept("*/*")), Some(JSON));
        assert_eq!(
            negotiate(&accept(
                "application/json, application/graphql-response+json;q=0.9"
            )),
            Some(GRAPHQL_RESPONSE)
        );
        assert_eq!(negotiate(&accept("text/html")), None);
    }
}
