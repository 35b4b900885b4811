//! Benchmark-only write modes, compiled with the `bench` feature and never
//! in a production build. They exist so the benchmark can measure, side by
//! side with the outbox path, the design it replaces and the lower bound:
//!
//! - `outbox`: production — rows and outbox events in one transaction;
//! - `dual-write`: the old design — commit the rows (no outbox), then write
//!   each document to MongoDB inside the request before answering;
//! - `floor`: the same transaction without the outbox insert, and nothing
//!   else: what a write costs with no read model at all.
//!
//! Both comparison modes are writer sinks ([`super::sink`]).
use std::sync::Arc;

use mongodb::bson::doc;

use super::{outbox::NewEvent, sink::EventSink};
use crate::{
    error::{AppError, AppResult},
    events::project::project,
};

pub use crate::config::WriteMode;

/// The writer's sink for `mode`; `None` for the outbox.
pub fn sink(mode: WriteMode, mongo: mongodb::Database) -> Option<Arc<dyn EventSink>> {
    match mode {
        WriteMode::Outbox => None,
        WriteMode::DualWrite => Some(Arc::new(DualWrite { mongo })),
        WriteMode::Floor => Some(Arc::new(Floor)),
    }
}

/// The old design's second write: one version-guarded upsert per document,
/// in order, on the request's critical path.
pub struct DualWrite {
    mongo: mongodb::Database,
}

#[async_trait::async_trait]
impl EventSink for DualWrite {
    /// A duplicate-key error means a newer version is stored already.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn after_commit(&self, events: Vec<NewEvent>) -> AppResult<()> {
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
            let result = self
                .mongo
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
}

/// Drops the events: the rows alone.
pub struct Floor;

#[async_trait::async_trait]
impl EventSink for Floor {
    async fn after_commit(&self, _events: Vec<NewEvent>) -> AppResult<()> {
        Ok(())
    }
}

fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    matches!(
        err.kind.as_ref(),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) if e.code == 11000
    )
}
