//! Limits applied around every request before GraphQL sees it: the
//! per-request timeout, the body size limit's reply, and CORS.
use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::Response,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::response;
use crate::config::Config;

/// What the guard needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub timeout: Duration,
    pub body_limit: usize,
}

/// Cancels a request (reading its body included) that runs longer than the
/// timeout, and turns the body limit's bare 413 into a GraphQL error. A
/// mutation cancelled before its commit writes nothing; one cancelled after
/// it stays committed, so clients should treat `TIMEOUT` as "unknown".
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let media = response::media_or_json(request.headers());
    match tokio::time::timeout(guard.timeout, next.run(request)).await {
        Err(_) => {
            tracing::warn!(
                timeout_ms = guard.timeout.as_millis() as u64,
                "request timed out"
            );
            response::error(
                StatusCode::GATEWAY_TIMEOUT,
                media,
                "TIMEOUT",
                &format!(
                    "the request took longer than {} ms and was cancelled",
                    guard.timeout.as_millis()
                ),
            )
        }
        Ok(reply) if reply.status() == StatusCode::PAYLOAD_TOO_LARGE => response::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            media,
            "PAYLOAD_TOO_LARGE",
            &format!("the request body is larger than {} bytes", guard.body_limit),
        ),
        Ok(reply) => reply,
    }
}

/// Cross-origin access for the configured origins only; `None` when no origin
/// is configured, so browsers keep the same-origin policy.
pub fn cors(config: &Config) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = config
        .cors_allowed_origins
        .iter()
        .filter(|origin| !origin.is_empty())
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::ACCEPT,
                header::HeaderName::from_static("x-consistency-token"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
