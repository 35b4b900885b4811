//! `GET /api/health/sync`: the sync health as JSON; 503 only when unhealthy,
//! so load balancers and uptime checks can act on the status code alone.
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use super::Http;
use crate::sync::health::{self, Level};

pub async fn sync_health(State(http): State<Http>) -> Response {
    match health::status(http.app.sync()).await {
        Ok(status) => {
            let code = if status.status == Level::Unhealthy {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (code, [(header::CACHE_CONTROL, "no-store")], Json(status)).into_response()
        }
        Err(err) => {
            // Without the source of truth nothing can be judged.
            tracing::error!(error = %err.chain(), "sync health unavailable");
            let body = serde_json::json!({"status": "unhealthy", "reasons": ["the outbox cannot be read"]});
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, "no-store")],
                Json(body),
            )
                .into_response()
        }
    }
}
