//! One step of the worker: claim, project, apply in one bulk write per
//! collection, complete; and what it counts.
use std::{collections::HashMap, time::Instant};

use chrono::Utc;
use uuid::Uuid;

use crate::{
    error::AppResult,
    sync::{
        apply::{self, Guard, Verdict},
        boards,
        outbox::{self, Claimed},
        project::{self, Projected},
        settings::WorkerSettings,
        SyncContext,
    },
};

/// What one batch did, counted in events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub claimed: usize,
    /// Written to MongoDB.
    pub applied: usize,
    /// Already there, or superseded by a newer version (in MongoDB or in the
    /// same batch): processed without a write.
    pub stale: usize,
    /// Scheduled for a retry (this includes the parked ones).
    pub failed: usize,
    /// Failed for the last allowed time and set aside.
    pub parked: usize,
}

/// Claims one batch and carries it to MongoDB. Errors only when the source
/// of truth cannot be reached; MongoDB trouble becomes retries, never errors.
pub async fn process_batch(state: &SyncContext, settings: &WorkerSettings) -> AppResult<Outcome> {
    let events = outbox::claim(
        state.bookkeeping(),
        state.dialect(),
        settings,
        settings.batch_size,
    )
    .await?;
    carry(state, settings, events).await
}

/// Carries claimed events to MongoDB and settles them in the outbox:
/// processed, retried later, or parked.
#[tracing::instrument(skip_all, fields(claimed, applied, stale, failed, parked))]
pub async fn carry(
    state: &SyncContext,
    settings: &WorkerSettings,
    events: Vec<Claimed>,
) -> AppResult<Outcome> {
    let started = Instant::now();
    let mut outcome = Outcome {
        claimed: events.len(),
        ..Outcome::default()
    };
    if events.is_empty() {
        return Ok(outcome);
    }
    outbox::link_to_writers(&events);
    let plan = Plan::new(&events);
    // Leaderboard tops go first: whoever sees a new total sees its board.
    let tops = boards::compute(state.sql(), &boards::touched(&events, Utc::now())).await?;
    let verdicts = match tokio::time::timeout(
        settings.apply_timeout(),
        apply::apply_after(state.read_model(), &tops, &plan.docs, Guard::Newer),
    )
    .await
    {
        Ok((_, verdicts)) => verdicts,
        Err(_) => vec![Verdict::Unavailable("applying timed out".to_owned()); plan.docs.len()],
    };

    let mut done: Vec<Uuid> = plan.superseded.clone();
    outcome.stale = plan.superseded.len();
    let mut unavailable: HashMap<&str, Vec<Uuid>> = HashMap::new();
    let mut rejected: Vec<(Uuid, String)> = plan.unprojectable.clone();
    let now = Utc::now();
    for ((verdict, event_id), created_at) in
        verdicts.iter().zip(&plan.doc_events).zip(&plan.doc_created)
    {
        match verdict {
            Verdict::Applied => {
                outcome.applied += 1;
                done.push(*event_id);
                let lag = (now - *created_at).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::histogram!("studysync_sync_lag_seconds").record(lag);
            }
            Verdict::Stale => {
                outcome.stale += 1;
                done.push(*event_id);
            }
            Verdict::Rejected(error) => rejected.push((*event_id, error.clone())),
            Verdict::Unavailable(error) => unavailable
                .entry(error.as_str())
                .or_default()
                .push(*event_id),
        }
    }
    outbox::complete(state.bookkeeping(), &done).await?;
    for (error, ids) in &unavailable {
        tracing::warn!(events = ids.len(), %error, "read model unavailable; will retry");
        outcome.failed += ids.len();
        outbox::fail(state.bookkeeping(), settings, ids, error, false).await?;
    }
    for (id, error) in &rejected {
        tracing::warn!(event_id = %id, %error, "event rejected; will retry, then park");
        outcome.failed += 1;
        let parked = outbox::fail(state.bookkeeping(), settings, &[*id], error, true).await?;
        outcome.parked += parked as usize;
    }
    record(state, &outcome, started);
    Ok(outcome)
}

/// The batch after projection: one document per `(collection, _id)` (the
/// highest version), the events it stands for, and what was set aside.
struct Plan {
    docs: Vec<Projected>,
    doc_events: Vec<Uuid>,
    doc_created: Vec<chrono::DateTime<Utc>>,
    /// Older versions of a document that the same batch also carries.
    superseded: Vec<Uuid>,
    unprojectable: Vec<(Uuid, String)>,
}

impl Plan {
    fn new(events: &[Claimed]) -> Self {
        let mut best: HashMap<(&'static str, String), (Projected, &Claimed)> = HashMap::new();
        let mut superseded = Vec::new();
        let mut unprojectable = Vec::new();
        for event in events {
            let projected = match project::project(
                &event.aggregate_type,
                event.aggregate_id,
                event.aggregate_version,
                &event.payload,
            ) {
                Ok(projected) => projected,
                Err(err) => {
                    unprojectable.push((event.id, format!("cannot project: {err}")));
                    continue;
                }
            };
            let key = (projected.collection, projected.id.clone());
            match best.get(&key) {
                Some((kept, _)) if kept.version >= projected.version => superseded.push(event.id),
                Some((_, older)) => {
                    superseded.push(older.id);
                    best.insert(key, (projected, event));
                }
                None => {
                    best.insert(key, (projected, event));
                }
            }
        }
        let mut plan = Plan {
            docs: Vec::with_capacity(best.len()),
            doc_events: Vec::with_capacity(best.len()),
            doc_created: Vec::with_capacity(best.len()),
            superseded,
            unprojectable,
        };
        for (projected, event) in best.into_values() {
            plan.docs.push(projected);
            plan.doc_events.push(event.id);
            plan.doc_created.push(event.created_at);
        }
        plan
    }
}

fn record(state: &SyncContext, outcome: &Outcome, started: Instant) {
    // Install the recorder before the first sample, or early ones are lost.
    crate::telemetry::metrics();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::histogram!("studysync_sync_batch_duration_seconds").record(elapsed);
    metrics::histogram!("studysync_sync_batch_size").record(outcome.claimed as f64);
    metrics::counter!("studysync_sync_events_applied_total").increment(outcome.applied as u64);
    metrics::counter!("studysync_sync_events_stale_total").increment(outcome.stale as u64);
    metrics::counter!("studysync_sync_events_failed_total").increment(outcome.failed as u64);
    metrics::counter!("studysync_sync_events_parked_total").increment(outcome.parked as u64);
    state.sync_monitor().record(
        outcome.claimed as u64,
        outcome.failed as u64,
        outcome.applied + outcome.stale > 0,
    );
    let span = tracing::Span::current();
    span.record("claimed", outcome.claimed);
    span.record("applied", outcome.applied);
    span.record("stale", outcome.stale);
    span.record("failed", outcome.failed);
    span.record("parked", outcome.parked);
}
