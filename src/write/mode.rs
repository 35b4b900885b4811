//! Benchmark-only write modes, compiled with the `bench` feature and never
//! in a production build. They exist so the benchmark can measure, side by
//! side with the outbox path, the design it replaces and the lower bound:
//!
//! - `outbox`: production — rows and outbox events in one transaction;
//! - `dual-write`: the old design — commit the rows (no outbox), then write
//!   each document to MongoDB inside the request before answering;
//! - `floor`: the same transaction without the outbox insert, and nothing
//!   else: what a write costs with no read model at all.
use std::sync::Mutex;

use mongodb::bson::doc;

use super::outbox::NewEvent;
use crate::{
    error::{AppError, AppResult},
    events::project::project,
};

pub use crate::config::WriteMode;

/// What a transaction does with its events under a comparison mode.
#[derive(Default)]
pub(super) struct Held {
    events: Mutex<Vec<NewEvent>>,
}

impl Held {
    /// Whether `enqueue_all` should write outbox rows; otherwise the events
    /// are held (dual write) or dropped (floor).
    pub(super) fn intercept(&self, mode: WriteMode, events: &[NewEvent]) -> bool {
        match mode {
            WriteMode::Outbox => false,
            WriteMode::Floor => true,
            WriteMode::DualWrite => {
                if let Ok(mut held) = self.events.lock() {
                    held.extend_from_slice(events);
                }
                true
            }
        }
    }

    pub(super) fn take(self) -> Vec<NewEvent> {
        self.events.into_inner().unwrap_or_default()
    }
}

/// The old design's second write: one version-guarded upsert per document,
/// in order, on the request's critical path. A duplicate-key error means a
/// newer version is stored already.
#[tracing::instrument(skip_all, fields(events = events.len()))]
pub(super) async fn write_through(
    mongo: &mongodb::Database,
    events: Vec<NewEvent>,
) -> AppResult<()> {
    for event in events {
        let projected = project(
            event.aggregate.name(),
            event.aggregate_id,
            event.version,
            &event.payload,
        )
        .map_err(|e| {
            AppError::Internal(anyhow::anyhow!(
                "projecting {}: {e}",
                event.aggregate.name()
            ))
        })?;
        let result = mongo
            .collection::<mongodb::bson::Document>(projected.collection)
            .replace_one(
                doc! {"_id": &projected.id, "version": {"$lt": projected.version}},
                projected.doc,
            )
            .upsert(true)
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    matches!(
        err.kind.as_ref(),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) if e.code == 11000
    )
}
