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
    pub schema: AppSchema,
    /// What each account holds over websocket on this instance.
    pub sockets: std::sync::Arc<websocket::SocketCaps>,
}

/// All routes, with body limit, timeout, CORS and per-request trace spans.
pub fn router(app: AppState) -> Router {
    let schema = crate::graphql::build_schema(Some(app.clone()));
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
        sockets,
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
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(
                    |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_secs_f64() * 1000.0, "request");
                    },
                ),
        )
        .with_state(http)
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
