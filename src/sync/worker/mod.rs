//! The sync worker: claim due outbox events, project them, apply them to
//! MongoDB in one bulk write per collection, mark them processed.
//!
//! [`process_batch`] is one step and is public, so tests (and `drain`) run
//! the worker deterministically; [`run`] loops it, woken by local commits
//! and by a poll for other processes' commits.
mod batch;

use std::{future::Future, time::Instant};

pub use batch::{carry, process_batch, Outcome};

use super::{
    outbox::{self, Claimed},
    settings::WorkerSettings,
    SyncContext,
};
use crate::error::AppResult;

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
/// back full, otherwise until a local commit wakes it (no sooner than
/// `SYNC_WAKE_GAP_MS` after the last claim) or the poll interval has passed
/// since the last claim (so a poll comes every interval, however
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
    let _sampler = settings.sample_every().map(|every| {
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(super::verify::sample::run(
            state.clone(),
            every,
            settings.sample_rows,
            settings.auto_repair,
        )))
    });
    // Claims run as tasks of their own: a claim statement already sent
    // would otherwise commit after the release below and leave its events
    // claimed until the lease runs out.
    let claims = tokio_util::task::TaskTracker::new();
    let result = work(&state, &settings, &claims, shutdown).await;
    claims.close();
    claims.wait().await;
    let released = outbox::release(state.bookkeeping(), &settings.worker_id).await?;
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
    // When the last claim that found events was sent: the wake gap counts
    // from it.
    let mut last_found: Option<tokio::time::Instant> = None;
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
            if !events.is_empty() {
                last_found = Some(last_claim);
            }
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
        let woken = tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = wake.notified() => true,
            () = tokio::time::sleep_until(resume) => false,
        };
        // Commits coming faster than the wake gap wait for it and are
        // claimed together; the first after a quiet spell goes at once.
        let gathered = last_found.map(|at| at + settings.wake_gap());
        if let Some(gathered) = gathered.filter(|at| woken && *at > tokio::time::Instant::now()) {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep_until(gathered) => {}
            }
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
    let task = claims.spawn(async move {
        outbox::claim(state.bookkeeping(), state.dialect(), &settings, size).await
    });
    async move {
        task.await
            .map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!("claim task: {e}")))?
    }
}

/// Gives back this worker's claims, untried; if that fails, their leases
/// run out instead.
async fn release_ahead(state: &SyncContext, settings: &WorkerSettings) {
    match outbox::release(state.bookkeeping(), &settings.worker_id).await {
        Ok(released) => {
            metrics::counter!("studysync_sync_claims_released_total").increment(released);
        }
        Err(err) => {
            tracing::warn!(error = %err.chain(), "could not release claims; their leases will run out");
        }
    }
}

/// Deletes processed events past retention and expired rate limits, once
/// per `retention_every`.
async fn purge_if_due(
    state: &SyncContext,
    settings: &WorkerSettings,
    last_purge: &mut Option<Instant>,
) -> AppResult<()> {
    if last_purge.is_none_or(|at| at.elapsed() >= settings.retention_every()) {
        *last_purge = Some(Instant::now());
        let purged = outbox::purge_processed(state.bookkeeping(), settings).await?;
        if purged > 0 {
            tracing::info!(purged, "deleted processed outbox events past retention");
        }
        let expired =
            crate::ratelimit::purge_expired(state.bookkeeping(), settings.retention_batch).await?;
        if expired > 0 {
            tracing::debug!(expired, "deleted expired rate limits");
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
