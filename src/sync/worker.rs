//! The sync worker: claim due outbox events, project them, apply them to
//! MongoDB in one bulk write per collection, mark them processed.
//!
//! [`process_batch`] is one step and is public, so tests (and `drain`) run
//! the worker deterministically; [`run`] loops it, woken by local commits
//! and by a poll for other processes' commits.
use std::{collections::HashMap, future::Future, time::Instant};

use chrono::Utc;
use uuid::Uuid;

use super::SyncContext;
use super::{
    apply::{self, Guard, Verdict},
    boards,
    outbox::{self, Claimed},
    project::{self, Projected},
    settings::WorkerSettings,
};
use crate::error::AppResult;

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
    let events = outbox::claim(state.sql(), state.dialect(), settings, settings.batch_size).await?;
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
    outbox::complete(state.sql(), &done).await?;
    for (error, ids) in &unavailable {
        tracing::warn!(events = ids.len(), %error, "read model unavailable; will retry");
        outcome.failed += ids.len();
        outbox::fail(state.sql(), settings, ids, error, false).await?;
    }
    for (id, error) in &rejected {
        tracing::warn!(event_id = %id, %error, "event rejected; will retry, then park");
        outcome.failed += 1;
        let parked = outbox::fail(state.sql(), settings, &[*id], error, true).await?;
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

/// The pause before the next poll: the poll interval, or a quarter of it
/// (at least 50 ms) while polls keep finding a full batch waiting, so a
/// worker in another process keeps up with steady traffic instead of
/// letting each interval's events pile up.
fn poll_pause(poll: std::time::Duration, busy: bool) -> std::time::Duration {
    if busy {
        (poll / 4)
            .max(std::time::Duration::from_millis(50))
            .min(poll)
    } else {
        poll
    }
}

/// How often the queue gauges are refreshed. The health query reads the
/// whole outbox, so it runs on its own timer, never between a commit and
/// its claim.
const GAUGES_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs batches until `shutdown` resolves: straight on while batches come
/// back full, otherwise until a local commit wakes it or the poll interval
/// has passed since the last claim (so a poll comes every interval, however
/// long the batches took; a quarter of it while polls find a full batch
/// waiting, see [`poll_pause`]). While batches come back full, the next one is
/// claimed while the current one is carried, so the outbox and MongoDB work
/// side by side, and claims grow from `SYNC_BATCH_SIZE` towards
/// `SYNC_BATCH_MAX`. On shutdown the batches in hand are abandoned and their
/// claims released (they are safe to apply again), so no claim outlives the
/// worker.
pub async fn run(
    state: SyncContext,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tracing::info!(
        worker = %settings.worker_id,
        batch = settings.batch_size,
        batch_max = settings.batch_max,
        "sync worker started"
    );
    // Stops with the worker, even when the worker's task is aborted.
    let _gauges = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
        let state = state.clone();
        async move {
            let mut every = tokio::time::interval(GAUGES_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(err) = super::health::refresh_gauges(&state).await {
                    tracing::debug!(error = %err.chain(), "could not refresh sync gauges");
                }
            }
        }
    }));
    // Claims run as tasks of their own: a claim statement already sent
    // would otherwise commit after the release below and leave its events
    // claimed until the lease runs out.
    let claims = tokio_util::task::TaskTracker::new();
    let result = work(&state, &settings, &claims, shutdown).await;
    claims.close();
    claims.wait().await;
    let released = outbox::release(state.sql(), &settings.worker_id).await?;
    tracing::info!(released, "sync worker stopped");
    result
}

async fn work(
    state: &SyncContext,
    settings: &WorkerSettings,
    claims: &tokio_util::task::TaskTracker,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let claim = |size: u32| claim_to_the_end(claims, state, settings, size);
    let wake = state.outbox_wake();
    let mut last_purge: Option<Instant> = None;
    let mut idle_errors = 0u32;
    let mut ahead: Option<Vec<Claimed>> = None;
    // The size of the next claim: the base size after an idle spell,
    // doubling (up to the maximum) while claims come back full.
    let mut size = settings.batch_size;
    let mut full = false;
    let mut last_claim = tokio::time::Instant::now();
    // Whether the first claim after the last pause came back full: events
    // are arriving faster than one batch per poll.
    let mut resumed = true;
    let mut busy = false;
    tokio::pin!(shutdown);
    loop {
        let step = async {
            let events = match ahead.take() {
                Some(events) => events,
                None => {
                    last_claim = tokio::time::Instant::now();
                    claim(size).await?
                }
            };
            full = events.len() == size as usize;
            if resumed {
                busy = full;
                resumed = false;
            }
            let outcome = if full {
                size = size.saturating_mul(2).min(settings.batch_max);
                last_claim = tokio::time::Instant::now();
                let (outcome, next) = tokio::join!(carry(state, settings, events), claim(size));
                // Claimed before a failure is noticed: `release` on the way
                // out, or the lease, makes them due again.
                ahead = Some(next?);
                outcome?
            } else {
                size = settings.batch_size;
                carry(state, settings, events).await?
            };
            purge_if_due(state, settings, &mut last_purge).await?;
            AppResult::Ok(outcome)
        };
        let result = tokio::select! {
            () = &mut shutdown => return Ok(()),
            result = step => result,
        };
        let more_waiting = full || ahead.as_ref().is_some_and(|next| !next.is_empty());
        let Some(resume) = resume_at(
            &result,
            more_waiting,
            settings,
            last_claim,
            busy,
            &mut idle_errors,
        ) else {
            continue;
        };
        size = settings.batch_size;
        resumed = true;
        // Pausing after trouble: give back what was claimed ahead, untried.
        if ahead.take().is_some_and(|next| !next.is_empty()) {
            release_ahead(state, settings).await;
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = wake.notified() => {}
            () = tokio::time::sleep_until(resume) => {}
        }
    }
}

/// A claim that runs to its end even when the worker stops meanwhile: a
/// claim already sent commits, and `release` on the way out gives it back.
fn claim_to_the_end(
    claims: &tokio_util::task::TaskTracker,
    state: &SyncContext,
    settings: &WorkerSettings,
    size: u32,
) -> impl Future<Output = AppResult<Vec<Claimed>>> {
    let (state, settings) = (state.clone(), settings.clone());
    let task = claims
        .spawn(async move { outbox::claim(state.sql(), state.dialect(), &settings, size).await });
    async move {
        task.await
            .map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!("claim task: {e}")))?
    }
}

/// Gives back this worker's claims, untried; if that fails, their leases
/// run out instead.
async fn release_ahead(state: &SyncContext, settings: &WorkerSettings) {
    match outbox::release(state.sql(), &settings.worker_id).await {
        Ok(released) => {
            metrics::counter!("studysync_sync_claims_released_total").increment(released);
        }
        Err(err) => {
            tracing::warn!(error = %err.chain(), "could not release claims; their leases will run out");
        }
    }
}

/// Deletes processed events past retention, once per `retention_every`.
async fn purge_if_due(
    state: &SyncContext,
    settings: &WorkerSettings,
    last_purge: &mut Option<Instant>,
) -> AppResult<()> {
    if last_purge.is_none_or(|at| at.elapsed() >= settings.retention_every()) {
        *last_purge = Some(Instant::now());
        let purged = outbox::purge_processed(state.sql(), settings).await?;
        if purged > 0 {
            tracing::info!(purged, "deleted processed outbox events past retention");
        }
    }
    Ok(())
}

/// When the loop goes on after a step: `None` at once (the step went well
/// and more is waiting), else after the poll pause or, after an error, a
/// backoff that grows with consecutive errors.
fn resume_at(
    result: &AppResult<Outcome>,
    more_waiting: bool,
    settings: &WorkerSettings,
    last_claim: tokio::time::Instant,
    busy: bool,
    idle_errors: &mut u32,
) -> Option<tokio::time::Instant> {
    match result {
        Ok(outcome) if outcome.failed == 0 && more_waiting => {
            *idle_errors = 0;
            None
        }
        Ok(_) => {
            *idle_errors = 0;
            Some(last_claim + poll_pause(settings.poll_interval(), busy))
        }
        Err(err) => {
            *idle_errors = idle_errors.saturating_add(1);
            tracing::error!(error = %err.chain(), "sync batch failed; retrying");
            Some(
                tokio::time::Instant::now()
                    + settings
                        .poll_interval()
                        .min(std::time::Duration::from_millis(
                            100 << (*idle_errors).min(5),
                        )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn polls_come_four_times_as_often_while_they_find_a_backlog() {
        let poll = Duration::from_millis(2_000);
        assert_eq!(poll_pause(poll, false), poll);
        assert_eq!(poll_pause(poll, true), Duration::from_millis(500));
        assert_eq!(
            poll_pause(Duration::from_millis(100), true),
            Duration::from_millis(50)
        );
        assert_eq!(
            poll_pause(Duration::from_millis(20), true),
            Duration::from_millis(20)
        );
    }
}
