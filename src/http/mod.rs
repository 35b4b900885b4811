//! The HTTP surface: GraphQL, GraphiQL, health and metrics.
pub mod client;
mod graphiql;
mod graphql;
pub mod limits;
pub mod request;
pub mod response;
mod serve;
mod sync_health;
mod websocket;

use std::{future::Future, time::Duration};

use axum::{
    extract::State,
    http::{header, StatusCode},
    middleware,
    response::IntoResponse,
    routing::get,
    Router,
};
use tower_http::{limit::RequestBodyLimitLayer, trace::TraceLayer};

use crate::{app::AppState, graphql::AppSchema};

/// State of the HTTP handlers.
#[derive(Clone)]
pub struct Http {
    pub app: AppState,
    /// The schema HTTP requests run on once they passed [`Http::door`].
    pub schema: AppSchema,
    /// The schema websocket operations run on (the door is its extension).
    pub ws_schema: AppSchema,
    /// The front door every GraphQL request passes.
    pub door: std::sync::Arc<crate::graphql::door::Door>,
    /// What each account holds over websocket on this instance.
    pub sockets: std::sync::Arc<websocket::SocketCaps>,
    /// Persisted and trusted documents (GET resolves them before refusing
    /// mutations; the front door does it for the rest).
    pub documents: std::sync::Arc<crate::graphql::documents::Documents>,
}

/// All routes, with body limit, timeout, CORS and per-request trace spans.
pub fn router(app: AppState) -> Router {
    let documents = std::sync::Arc::new(crate::graphql::documents::Documents::from_state(&app));
    let door = std::sync::Arc::new(crate::graphql::front_door(&app, documents.clone()));
    let schema = crate::graphql::build_schema(Some(app.clone()));
    let ws_schema = crate::graphql::build_websocket_schema(app.clone(), door.clone());
    let config = app.config();
    let body_limit = config.body_limit_bytes;
    let guard = limits::Guard {
        timeout: config.request_timeout(),
        body_limit,
    };
    let cors = limits::cors(config);
    let sockets = std::sync::Arc::new(websocket::SocketCaps::new(&config.websocket));
    let http = Http {
        app,
        schema,
        ws_schema,
        door,
        sockets,
        documents,
    };
    let router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(websocket::ws))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/health/sync", get(sync_health::sync_health))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(middleware::from_fn_with_state(guard, limits::guard))
        .layer(middleware::from_fn(response::no_store_when_authenticated));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let span = tracing::info_span!(
                        "http",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id,
                        trace_id = tracing::field::Empty,
                    );
                    // A caller's W3C trace continues here; log lines carry
                    // its id.
                    crate::telemetry::adopt_parent(&span, req.headers());
                    if let Some(id) = crate::telemetry::trace_id(&span) {
                        span.record("trace_id", id);
                    }
                    span
                })
                .on_response(
                    |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(
                            status = res.status().as_u16(),
                            latency_ms = latency.as_secs_f64() * 1000.0,
                            "request"
                        );
                    },
                ),
        )
        // Outermost: every request gets an id (the caller's, if it sent a
        // usable one) before its span is made, and the response says it.
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(
            request_id.clone(),
        ))
        .layer(tower_http::request_id::SetRequestIdLayer::new(
            request_id, RequestIds,
        ))
        .layer(middleware::from_fn(measure))
        .with_state(http)
}

/// The route a path is counted under: the server's own routes, anything
/// else as `other`, so a client cannot grow the label set.
fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        "/api/health/sync" => "/api/health/sync",
        p if p.starts_with("/graphiql/") => "/graphiql",
        _ => "other",
    }
}

/// Counts every request by route and status class
/// (`studysync_http_requests_total`) and times it
/// (`studysync_http_request_duration_seconds`, a histogram, so percentiles
/// aggregate across instances), refused ones included. A websocket's time
/// is its handshake.
async fn measure(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let route = route_label(request.uri().path());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        500.. => "5xx",
        400..=499 => "4xx",
        300..=399 => "3xx",
        _ => "2xx",
    };
    metrics::counter!("studysync_http_requests_total", "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("studysync_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Serves until `shutdown` resolves, then drains in-flight requests; every
/// connection is bounded (see [`serve`]).
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let rules = serve::ConnectionRules::from_config(app.config());
    serve::serve(router(app), rules, listener, shutdown).await
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], "ok")
}

async fn metrics(State(_http): State<Http>) -> impl IntoResponse {
    let body = crate::telemetry::metrics().render();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}

/// Request ids: a caller's `x-request-id` is kept when it is short and
/// printable, else replaced by a random UUID.
#[derive(Clone, Copy)]
struct RequestIds;

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        request: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let given = request.headers().get("x-request-id").filter(|v| {
            v.len() <= 64
                && v.to_str()
                    .is_ok_and(|s| s.bytes().all(|b| b.is_ascii_graphic()))
        });
        let id = match given {
            Some(value) => value.clone(),
            None => axum::http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok()?,
        };
        Some(tower_http::request_id::RequestId::new(id))
    }
}
