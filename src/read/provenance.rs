//! What a response says about where its routed fields came from, and what a
//! request brings to routing (the writes it must see).
use std::sync::Mutex;

use serde::Serialize;

use crate::{error::AppError, write::EventRef};

/// A store that can answer a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    MongoDb,
    CockroachDb,
}

/// Why a MongoDB-routed field was answered by CockroachDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackReason {
    /// MongoDB answered nothing within `READ_MODEL_TIMEOUT_MS`.
    Timeout,
    /// No MongoDB server could be selected.
    Unreachable,
    /// MongoDB answered with an error (or a document of unexpected shape).
    Error,
    /// MongoDB had not applied the consistency token's writes in time.
    Stale,
    /// MongoDB was unreachable moments ago (no server could be selected, or
    /// a query timed out and a ping did not answer either); it is not tried
    /// again until `READ_MODEL_RETRY_AFTER_MS` has passed. A query that is
    /// slow on a server that answers falls back alone, as `Timeout`.
    RecentlyDown,
}

impl FallbackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Error => "error",
            Self::Stale => "stale",
            Self::RecentlyDown => "recently_down",
        }
    }

    pub(crate) fn of(err: &AppError) -> Self {
        match err {
            AppError::ReadModel(e)
                if matches!(*e.kind, mongodb::error::ErrorKind::ServerSelection { .. }) =>
            {
                Self::Unreachable
            }
            _ => Self::Error,
        }
    }
}

/// Which store answered one field of a response.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// Response path of the field (its alias when aliased).
    pub path: String,
    pub field: &'static str,
    pub store: Store,
    pub reason: Option<FallbackReason>,
    /// Age of the oldest write MongoDB has not applied yet, in seconds
    /// (0 when caught up); `null` when it could not be measured.
    pub read_model_lag_seconds: Option<f64>,
}

/// What one request brings to routing (the writes it must see) and takes
/// away (which store answered each field).
#[derive(Default)]
pub struct ReadRequest {
    token: Vec<EventRef>,
    provenance: Mutex<Vec<Provenance>>,
}

impl ReadRequest {
    /// `token`: the writes named by the request's `X-Consistency-Token`.
    pub fn new(token: Vec<EventRef>) -> Self {
        Self {
            token,
            provenance: Mutex::new(Vec::new()),
        }
    }

    /// The writes this request must see.
    pub fn token(&self) -> &[EventRef] {
        &self.token
    }

    /// Entries ordered by response path (fields resolve concurrently, so
    /// completion order would vary between identical requests).
    pub fn provenance(&self) -> Vec<Provenance> {
        let mut entries = self
            .provenance
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }

    pub(crate) fn record(&self, entry: Provenance) {
        if let Ok(mut list) = self.provenance.lock() {
            list.push(entry);
        }
    }
}
