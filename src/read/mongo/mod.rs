//! Queries against the MongoDB read model. Each answers exactly what its
//! CockroachDB twin in `read::fallback` answers, from documents shaped by
//! `sync::project`.
pub mod analytics;
pub mod history;
pub mod indexes;
pub mod leaderboard;
pub mod live;
pub mod search;

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub use indexes::ensure_indexes;

/// A document that does not have the shape the projection writes.
fn malformed(collection: &str, field: &str) -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "read model document in {collection} has no valid {field:?}"
    ))
}

fn uuid_field(doc: &Document, collection: &str, field: &str) -> AppResult<Uuid> {
    doc.get_str(field)
        .ok()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| malformed(collection, field))
}

fn time_field(doc: &Document, collection: &str, field: &str) -> AppResult<DateTime<Utc>> {
    doc.get_datetime(field)
        .ok()
        .and_then(|d| DateTime::from_timestamp_millis(d.timestamp_millis()))
        .ok_or_else(|| malformed(collection, field))
}

fn str_field(doc: &Document, collection: &str, field: &str) -> AppResult<String> {
    doc.get_str(field)
        .map(str::to_owned)
        .map_err(|_| malformed(collection, field))
}

/// Any BSON number as `i64` (sums may come back as Int32, Int64 or Double).
fn int_field(doc: &Document, collection: &str, field: &str) -> AppResult<i64> {
    match doc.get(field) {
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Double(n)) => Ok(*n as i64),
        _ => Err(malformed(collection, field)),
    }
}

fn bson_time(at: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(at.timestamp_millis()))
}
