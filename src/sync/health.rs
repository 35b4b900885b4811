//! The sync health verdict: how far behind the read model is, how much is
//! waiting, how often applying fails, what is parked.
//!
//! Everything that any worker's progress changes is read from the outbox
//! table, so an API process shows the state of a separate `worker` process
//! too; the in-process monitor adds its own recent error rate and last apply.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement};
use serde::Serialize;

use super::SyncContext;
use crate::error::AppResult;

/// The verdict, worst first when compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Healthy,
    /// An operator paused the workers: lag and queue grow by design, so
    /// they are reported, not judged.
    Paused,
    Degraded,
    Unhealthy,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Paused => "paused",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

/// The health report (`GET /api/health/sync`, GraphQL `syncStatus`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub status: Level,
    /// Seconds since the oldest event not yet applied was committed (0 when
    /// nothing waits): how stale the read model may be.
    pub sync_lag: f64,
    /// Events waiting to be applied (due, in backoff or being applied).
    pub queue_size: i64,
    /// Failed share of recent attempts (last minute), 0..1.
    pub error_rate: f64,
    /// When a worker last applied an event.
    pub last_sync: Option<DateTime<Utc>>,
    /// Events set aside after repeated non-transient failures.
    pub parked: i64,
    /// Events claimed by a worker right now.
    pub in_flight: i64,
    /// Seconds the longest-due event has waited for a worker to claim it.
    pub oldest_due: f64,
    /// The pause in force (`sync::control`), if any.
    pub paused: Option<super::control::Pause>,
    /// Queue and lag per aggregate kind, every kind listed.
    pub by_kind: Vec<KindFigures>,
    /// Documents the background sampler found out of step with their rows
    /// and not yet found in step again (`sync::verify::sample`).
    pub drifted: i64,
    /// Why the status is not healthy.
    pub reasons: Vec<String>,
}

/// One aggregate kind's share of the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindFigures {
    /// The aggregate's stored name (`todo`, `message`, ...).
    pub kind: String,
    /// Its events not yet applied.
    pub queue_size: i64,
    /// Seconds since its oldest unapplied event was committed (0 when none).
    pub sync_lag: f64,
}

#[derive(Debug, FromQueryResult)]
struct KindRow {
    aggregate_type: String,
    queue: i64,
    lag: Option<f64>,
}

/// Pending events per kind: one pass over the pending rows.
const BY_KIND: &str = "SELECT aggregate_type, count(*) AS queue, \
     EXTRACT(EPOCH FROM now() - min(created_at))::FLOAT8 AS lag \
     FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL \
     GROUP BY aggregate_type";

#[derive(Debug, FromQueryResult)]
struct Figures {
    queue: i64,
    parked: i64,
    in_flight: i64,
    lag: Option<f64>,
    oldest_due: Option<f64>,
    last_sync: Option<DateTime<Utc>>,
    failing: i64,
    recent: i64,
    paused_at: Option<DateTime<Utc>>,
    paused_by: Option<String>,
    reason: Option<String>,
    drifted: i64,
    repairing: i64,
}

const FIGURES: &str = concat!(
    r#"
SELECT
  (SELECT count(*) FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL) AS queue,
  (SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL AND processed_at IS NULL) AS parked,
  (SELECT count(*) FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL
      AND claimed_by IS NOT NULL AND next_attempt_at > now()) AS in_flight,
  ("#,
    super::outbox::lag_seconds_sql!(),
    r#") AS lag,
  (SELECT EXTRACT(EPOCH FROM now() - min(next_attempt_at))::FLOAT8 FROM outbox
      WHERE processed_at IS NULL AND parked_at IS NULL AND next_attempt_at <= now()) AS oldest_due,
  (SELECT max(processed_at) FROM outbox WHERE processed_at IS NOT NULL) AS last_sync,
  (SELECT count(*) FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL
      AND last_error IS NOT NULL) AS failing,
  (SELECT count(*) FROM outbox WHERE processed_at IS NOT NULL
      AND processed_at > now() - INTERVAL '60 seconds') AS recent,
  (SELECT paused_at FROM sync_control WHERE id = 1 AND paused) AS paused_at,
  (SELECT paused_by FROM sync_control WHERE id = 1 AND paused) AS paused_by,
  (SELECT reason FROM sync_control WHERE id = 1 AND paused) AS reason,
  (SELECT count(*) FROM read_model_drift) AS drifted,
  (SELECT count(*) FROM read_model_drift WHERE repair_enqueued_at IS NOT NULL) AS repairing"#
);

/// Reads the outbox and judges it against the configured thresholds.
#[tracing::instrument(skip_all)]
pub async fn status(state: &SyncContext) -> AppResult<SyncStatus> {
    let figures = figures(state.sql()).await?;
    let by_kind = by_kind(state.sql()).await?;
    let monitor = state.sync_monitor();
    // Pending events whose last attempt failed, against recent successes:
    // what every worker is going through, seen from the table.
    let table_rate = if figures.failing == 0 {
        0.0
    } else {
        figures.failing as f64 / (figures.failing + figures.recent) as f64
    };
    let error_rate = monitor.error_rate().unwrap_or(0.0).max(table_rate);
    let last_sync = match (figures.last_sync, monitor.last_sync()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut status = SyncStatus {
        status: Level::Healthy,
        sync_lag: figures.lag.unwrap_or(0.0).max(0.0),
        queue_size: figures.queue,
        error_rate,
        last_sync,
        parked: figures.parked,
        in_flight: figures.in_flight,
        oldest_due: figures.oldest_due.unwrap_or(0.0).max(0.0),
        paused: figures.paused_at.map(|paused_at| super::control::Pause {
            paused_at,
            paused_by: figures.paused_by.unwrap_or_default(),
            reason: figures.reason,
        }),
        by_kind,
        drifted: figures.drifted,
        reasons: Vec::new(),
    };
    judge(&mut status, state.settings());
    if figures.repairing > 0 {
        status.reasons.push(format!(
            "repairs enqueued for {} drifted document(s)",
            figures.repairing
        ));
    }
    publish(&status);
    Ok(status)
}

async fn figures(db: &impl ConnectionTrait) -> AppResult<Figures> {
    let statement = || Statement::from_string(DatabaseBackend::Postgres, FIGURES);
    super::outbox::retrying(|| Figures::find_by_statement(statement()).one(db))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the health query returned no row").into())
}

/// Every aggregate kind's figures (zero for a kind with nothing waiting),
/// in the protocol's order, then any kind this release does not know.
async fn by_kind(db: &impl ConnectionTrait) -> AppResult<Vec<KindFigures>> {
    let statement = || Statement::from_string(DatabaseBackend::Postgres, BY_KIND);
    let mut rows =
        super::outbox::retrying(|| KindRow::find_by_statement(statement()).all(db)).await?;
    let mut kinds: Vec<KindFigures> = crate::events::Aggregate::ALL
        .into_iter()
        .map(|aggregate| {
            let found = rows
                .iter()
                .position(|r| r.aggregate_type == aggregate.name())
                .map(|i| rows.swap_remove(i));
            KindFigures {
                kind: aggregate.name().to_owned(),
                queue_size: found.as_ref().map_or(0, |r| r.queue),
                sync_lag: found.and_then(|r| r.lag).unwrap_or(0.0).max(0.0),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.aggregate_type.cmp(&b.aggregate_type));
    kinds.extend(rows.into_iter().map(|r| KindFigures {
        kind: r.aggregate_type,
        queue_size: r.queue,
        sync_lag: r.lag.unwrap_or(0.0).max(0.0),
    }));
    Ok(kinds)
}

/// Applies the thresholds; every exceeded one adds a reason. While paused
/// the status is `paused` whatever they say (the reasons still list them),
/// and no stall is reported: nothing is meant to be claimed.
pub fn judge(status: &mut SyncStatus, settings: &super::settings::WorkerSettings) {
    let mut level = Level::Healthy;
    let mut check = |value: f64, degraded: f64, unhealthy: f64, what: &str| {
        let verdict = if value >= unhealthy {
            Level::Unhealthy
        } else if value >= degraded {
            Level::Degraded
        } else {
            return;
        };
        status.reasons.push(format!(
            "{what} is {value:.3} (degraded at {degraded}, unhealthy at {unhealthy})"
        ));
        level = level.max(verdict);
    };
    check(
        status.sync_lag,
        settings.lag_degraded_secs,
        settings.lag_unhealthy_secs,
        "sync lag in seconds",
    );
    check(
        status.queue_size as f64,
        settings.queue_degraded as f64,
        settings.queue_unhealthy as f64,
        "queue size",
    );
    if status.error_rate > 0.0 {
        check(
            status.error_rate,
            settings.error_rate_degraded,
            settings.error_rate_unhealthy,
            "error rate",
        );
    }
    if status.oldest_due >= settings.stall_secs && status.paused.is_none() {
        status.reasons.push(format!(
            "events have been due for {:.1} s without a worker claiming them",
            status.oldest_due
        ));
        level = level.max(Level::Degraded);
    }
    if status.parked > 0 {
        status
            .reasons
            .push(format!("{} parked event(s) need attention", status.parked));
        level = level.max(Level::Degraded);
    }
    if status.drifted > 0 {
        status.reasons.push(format!(
            "{} read-model document(s) drifted from the source of truth (found by the sampler; \
             SYNC_AUTO_REPAIR or `verify --repair` fixes them)",
            status.drifted
        ));
        level = level.max(Level::Degraded);
    }
    status.status = level;
    if let Some(pause) = &status.paused {
        let why = pause
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        status.reasons.insert(
            0,
            format!(
                "sync workers paused by {} since {}{why}",
                pause.paused_by,
                pause.paused_at.to_rfc3339()
            ),
        );
        status.status = Level::Paused;
    }
}

fn publish(status: &SyncStatus) {
    metrics::gauge!("studysync_sync_queue_size").set(status.queue_size as f64);
    metrics::gauge!("studysync_sync_parked").set(status.parked as f64);
    metrics::gauge!("studysync_sync_lag_current_seconds").set(status.sync_lag);
    metrics::gauge!("studysync_sync_error_rate").set(status.error_rate);
    metrics::gauge!("studysync_sync_paused").set(if status.paused.is_some() { 1.0 } else { 0.0 });
    metrics::gauge!("studysync_read_model_drifted").set(status.drifted as f64);
    for kind in &status.by_kind {
        let labels = [("kind", kind.kind.clone())];
        metrics::gauge!("studysync_sync_kind_queue_size", &labels).set(kind.queue_size as f64);
        metrics::gauge!("studysync_sync_kind_lag_seconds", &labels).set(kind.sync_lag);
    }
}

/// Updates the queue, parked and lag gauges (the worker calls this between
/// batches so `/metrics` stays current without anyone asking for health).
pub async fn refresh_gauges(state: &SyncContext) -> AppResult<()> {
    status(state).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::settings::WorkerSettings;

    fn settings() -> WorkerSettings {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            sync: WorkerSettings,
        }
        Args::parse_from(["test"]).sync
    }

    fn judged(lag: f64, queue: i64, error_rate: f64, parked: i64, oldest_due: f64) -> Level {
        let mut status = SyncStatus {
            status: Level::Healthy,
            sync_lag: lag,
            queue_size: queue,
            error_rate,
            last_sync: None,
            parked,
            in_flight: 0,
            oldest_due,
            paused: None,
            by_kind: Vec::new(),
            drifted: 0,
            reasons: Vec::new(),
        };
        judge(&mut status, &settings());
        assert_eq!(status.reasons.is_empty(), status.status == Level::Healthy);
        status.status
    }

    #[test]
    fn a_pause_is_reported_as_paused_not_as_a_stall() {
        let mut status = SyncStatus {
            status: Level::Healthy,
            sync_lag: 120.0,
            queue_size: 50,
            error_rate: 0.0,
            last_sync: None,
            parked: 0,
            in_flight: 0,
            oldest_due: 120.0,
            paused: Some(crate::sync::control::Pause {
                paused_at: Utc::now(),
                paused_by: "ops@example.org".into(),
                reason: Some("MongoDB upgrade".into()),
            }),
            by_kind: Vec::new(),
            drifted: 0,
            reasons: Vec::new(),
        };
        judge(&mut status, &settings());
        assert_eq!(status.status, Level::Paused);
        assert!(status.reasons[0].contains("paused by ops@example.org"));
        assert!(status.reasons[0].ends_with(": MongoDB upgrade"));
        assert!(
            status.reasons.iter().any(|r| r.starts_with("sync lag")),
            "the lag is still measured: {:?}",
            status.reasons
        );
        assert!(!status
            .reasons
            .iter()
            .any(|r| r.contains("without a worker")));
    }

    #[test]
    fn each_threshold_moves_the_status_by_itself() {
        assert_eq!(judged(0.0, 0, 0.0, 0, 0.0), Level::Healthy);
        assert_eq!(judged(4.9, 999, 0.009, 0, 9.0), Level::Healthy);
        assert_eq!(judged(5.0, 0, 0.0, 0, 0.0), Level::Degraded);
        assert_eq!(judged(30.0, 0, 0.0, 0, 0.0), Level::Unhealthy);
        assert_eq!(judged(0.0, 1_000, 0.0, 0, 0.0), Level::Degraded);
        assert_eq!(judged(0.0, 10_000, 0.0, 0, 0.0), Level::Unhealthy);
        assert_eq!(judged(0.0, 0, 0.01, 0, 0.0), Level::Degraded);
        assert_eq!(judged(0.0, 0, 0.05, 0, 0.0), Level::Unhealthy);
        assert_eq!(judged(0.0, 0, 0.0, 1, 0.0), Level::Degraded);
        assert_eq!(
            judged(0.0, 0, 0.0, 0, 10.0),
            Level::Degraded,
            "a stalled worker"
        );
        assert_eq!(
            judged(31.0, 0, 0.0, 1, 0.0),
            Level::Unhealthy,
            "the worst check wins"
        );
    }
}
