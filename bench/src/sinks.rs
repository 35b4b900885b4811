//! The comparison write modes, measured side by side with the production
//! outbox path (which needs no sink):
//!
//! - `dual-write`: the old design — commit the rows (no outbox), then write
//!   each document to MongoDB inside the request before answering;
//! - `floor`: the same transaction without the outbox insert, and nothing
//!   else: what a write costs with no read model at all.
use std::sync::Arc;

use mongodb::bson::doc;
use studysync::{
    error::{AppError, AppResult},
    events::project::project,
    write::{EventSink, NewEvent},
};

/// A comparison mode `bench-server` can run (`--write-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WriteMode {
    DualWrite,
    Floor,
}

impl WriteMode {
    /// The name `--write-mode` takes.
    pub fn name(self) -> &'static str {
        match self {
            WriteMode::DualWrite => "dual-write",
            WriteMode::Floor => "floor",
        }
    }

    /// The writer's sink for this mode; `mongo` is where the dual write
    /// writes.
    pub fn sink(self, mongo: mongodb::Database) -> Arc<dyn EventSink> {
        match self {
            WriteMode::DualWrite => Arc::new(DualWrite { mongo }),
            WriteMode::Floor => Arc::new(Floor),
        }
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
