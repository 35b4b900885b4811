//! The worker's side of the outbox table: claiming (leases), completing,
//! failing with backoff, parking, releasing, replaying and retention.
//!
//! Every statement is a single statement valid on CockroachDB. Claims are
//! leases: `next_attempt_at` moves to the lease's end, so a crashed worker's
//! events become due again on their own. Backoff lives in the same column,
//! so the claim query (`next_attempt_at <= now()`) is the only scheduler.
use std::time::Duration;

use chrono::{DateTime, Utc};
use migration::Dialect;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, FromQueryResult, IsolationLevel, Statement, TransactionTrait,
    Value as SqlValue,
};
use uuid::Uuid;

use super::settings::WorkerSettings;
use crate::error::AppResult;
pub(crate) use crate::write::retrying;

/// Seconds since the oldest pending (unapplied, not parked) event was
/// written, by the database clock; NULL when none is pending. A macro so the
/// health query can embed it with `concat!`.
macro_rules! lag_seconds_sql {
    () => {
        "SELECT EXTRACT(EPOCH FROM now() - min(created_at))::FLOAT8 FROM outbox \
         WHERE processed_at IS NULL AND parked_at IS NULL"
    };
}
pub(crate) use lag_seconds_sql;

/// A claimed event, as the worker needs it.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: i64,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    /// The writing transaction's `traceparent`, when traces were on.
    pub trace_context: Option<String>,
}

fn stmt(sql: &str, values: Vec<SqlValue>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// `$from, $from+1, ...` for an `IN (...)` list of `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The isolation the claim runs at, per dialect; `None`: alone, as an
/// implicit transaction at the database's default.
///
/// On PostgreSQL row locks are always durable, so the claim is one
/// statement. On CockroachDB, locks taken by `FOR UPDATE` under SERIALIZABLE
/// are best-effort (held in memory by the leaseholder, lost when the lease
/// moves, and then the claim fails with 40001); under READ COMMITTED they
/// are replicated, which is what its guidance for queues asks for.
pub fn claim_isolation(dialect: Dialect) -> Option<IsolationLevel> {
    match dialect {
        Dialect::Postgres => None,
        Dialect::Cockroach => Some(IsolationLevel::ReadCommitted),
    }
}

/// Claims up to `limit` due events for `settings.worker_id`, counting the
/// attempt; none while the workers are paused (`sync::control`). `SKIP
/// LOCKED` lets concurrent workers take disjoint batches.
#[tracing::instrument(skip_all, fields(worker = %settings.worker_id, limit))]
pub async fn claim<C>(
    db: &C,
    dialect: Dialect,
    settings: &WorkerSettings,
    limit: u32,
) -> AppResult<Vec<Claimed>>
where
    C: ConnectionTrait + TransactionTrait,
{
    const SQL: &str = r#"
UPDATE outbox
SET next_attempt_at = now() + ($1::FLOAT8 * INTERVAL '1 millisecond'),
    claimed_by = $2,
    attempts = attempts + 1
WHERE id IN (
    SELECT id FROM outbox
    WHERE processed_at IS NULL AND parked_at IS NULL AND next_attempt_at <= now()
      AND NOT EXISTS (SELECT 1 FROM sync_control WHERE id = 1 AND paused)
    ORDER BY next_attempt_at, created_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING id, aggregate_type, aggregate_id, aggregate_version, payload, created_at, attempts, trace_context"#;
    let values = || {
        vec![
            (settings.lease_ms as f64).into(),
            settings.worker_id.clone().into(),
            i64::from(limit).into(),
        ]
    };
    let rows = match claim_isolation(dialect) {
        None => retrying(|| Claimed::find_by_statement(stmt(SQL, values())).all(db)).await?,
        Some(isolation) => {
            retrying(|| async {
                let txn = db.begin_with_config(Some(isolation), None).await?;
                let rows = Claimed::find_by_statement(stmt(SQL, values()))
                    .all(&txn)
                    .await?;
                txn.commit().await?;
                Ok(rows)
            })
            .await?
        }
    };
    link_to_writers(&rows);
    Ok(rows)
}

/// Marks events applied (or superseded) in one statement.
///
/// It does not ask whose claim the event is under, and need not: it runs
/// only after the event's document (at that version or a newer one) is in
/// MongoDB, so "processed" is true whichever worker says it. A worker whose
/// lease ran out while it was still applying may complete an event another
/// worker has claimed since; that one then applies a stale version (a no-op)
/// or finds it processed. The reverse is what must not happen, and cannot:
/// [`fail`] and [`release`] touch only rows still claimed by their caller
/// and not processed.
#[tracing::instrument(skip_all, fields(events = ids.len()))]
pub async fn complete(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE outbox SET processed_at = now(), claimed_by = NULL, last_error = NULL WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let values = || ids.iter().map(|id| SqlValue::from(*id)).collect::<Vec<_>>();
    retrying(|| db.execute(stmt(&sql, values()))).await?;
    Ok(())
}

/// Schedules a retry with capped exponential backoff and per-row jitter
/// (`base * 2^(attempts-1)`, capped, times a random factor in [0.5, 1)).
/// With `parkable`, events that have used up their attempts are parked
/// instead. Only claims this worker still holds are touched. Returns how
/// many events were parked.
#[tracing::instrument(skip_all, fields(events = ids.len(), parkable))]
pub async fn fail(
    db: &impl ConnectionTrait,
    settings: &WorkerSettings,
    ids: &[Uuid],
    error: &str,
    parkable: bool,
) -> AppResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        r#"
UPDATE outbox
SET next_attempt_at = now() + (
        LEAST($1::FLOAT8, $2::FLOAT8 * power(2::FLOAT8, LEAST(attempts - 1, 30)::FLOAT8))
        * (0.5 + random() / 2) * INTERVAL '1 millisecond'),
    last_error = $3,
    claimed_by = NULL,
    parked_at = CASE WHEN $4 AND attempts >= $5 THEN now() ELSE NULL END
WHERE claimed_by = $6 AND processed_at IS NULL AND id IN ({})
RETURNING parked_at"#,
        placeholders(7, ids.len())
    );
    // Errors are kept for operators; a bounded length keeps rows small.
    let error: String = error.chars().take(2_000).collect();
    let values = || {
        let mut values: Vec<SqlValue> = vec![
            (settings.backoff_max_ms as f64).into(),
            (settings.backoff_base_ms as f64).into(),
            error.clone().into(),
            parkable.into(),
            settings.park_after.into(),
            settings.worker_id.clone().into(),
        ];
        values.extend(ids.iter().map(|id| SqlValue::from(*id)));
        values
    };
    let rows = retrying(|| db.query_all(stmt(&sql, values()))).await?;
    let mut parked = 0;
    for row in rows {
        if row
            .try_get::<Option<DateTime<Utc>>>("", "parked_at")?
            .is_some()
        {
            parked += 1;
        }
    }
    Ok(parked)
}

/// Gives back every claim this worker holds, due at once, so another
/// instance can take them without waiting for the lease to run out.
#[tracing::instrument(skip_all, fields(worker = %worker_id))]
pub async fn release(db: &impl ConnectionTrait, worker_id: &str) -> AppResult<u64> {
    // The claim counted an attempt that never ran; give it back so a
    // restart does not bring an event closer to parking.
    // A claimed event is never parked (parking clears the claim), so the
    // pending-only indexes find these rows.
    const SQL: &str = "UPDATE outbox SET next_attempt_at = now(), claimed_by = NULL, \
                       attempts = GREATEST(attempts - 1, 0) \
                       WHERE claimed_by = $1 AND processed_at IS NULL AND parked_at IS NULL";
    let done = retrying(|| db.execute(stmt(SQL, vec![worker_id.into()]))).await?;
    Ok(done.rows_affected())
}

/// Makes every parked event due again with a fresh attempt count. Returns
/// how many were released.
#[tracing::instrument(skip_all)]
pub async fn replay_parked(db: &impl ConnectionTrait) -> AppResult<u64> {
    const SQL: &str = "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = now(), claimed_by = NULL \
                       WHERE parked_at IS NOT NULL AND processed_at IS NULL";
    let done = retrying(|| db.execute(stmt(SQL, Vec::new()))).await?;
    Ok(done.rows_affected())
}

/// Deletes processed events older than the retention, `batch` rows per
/// statement so no statement holds many locks. Returns rows deleted.
#[tracing::instrument(skip_all)]
pub async fn purge_processed(
    db: &impl ConnectionTrait,
    settings: &WorkerSettings,
) -> AppResult<u64> {
    const SQL: &str = r#"
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE processed_at IS NOT NULL AND processed_at < now() - ($1::FLOAT8 * INTERVAL '1 hour')
    LIMIT $2
)"#;
    let mut total = 0;
    loop {
        let values = || {
            vec![
                (settings.retention_hours as f64).into(),
                i64::from(settings.retention_batch).into(),
            ]
        };
        let deleted = retrying(|| db.execute(stmt(SQL, values())))
            .await?
            .rows_affected();
        total += deleted;
        if deleted < u64::from(settings.retention_batch) {
            return Ok(total);
        }
        // Let live traffic in between deletion batches.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The aggregates among `ids` that still have an event waiting (pending or
/// being retried; parked ones are not waiting, they are stuck).
#[tracing::instrument(skip_all, fields(aggregate_type, ids = ids.len()))]
pub async fn pending_aggregates(
    db: &impl ConnectionTrait,
    aggregate_type: &str,
    ids: &[Uuid],
) -> AppResult<std::collections::HashSet<Uuid>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT DISTINCT aggregate_id FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL \
         AND aggregate_type = $1 AND aggregate_id IN ({})",
        placeholders(2, ids.len())
    );
    let values = || {
        let mut values: Vec<SqlValue> = vec![aggregate_type.into()];
        values.extend(ids.iter().map(|id| SqlValue::from(*id)));
        values
    };
    let rows = retrying(|| db.query_all(stmt(&sql, values()))).await?;
    let mut pending = std::collections::HashSet::new();
    for row in rows {
        pending.insert(row.try_get::<Uuid>("", "aggregate_id")?);
    }
    Ok(pending)
}

/// Most links one batch's span carries (OpenTelemetry's default limit).
const MAX_LINKS: usize = 128;

/// Links the current span (the claim, and the batch that carries the
/// claimed events to MongoDB) to the trace of each transaction that wrote
/// one of `events`, with the time between the commit and now
/// (`studysync.lag_ms`): the trace of a mutation then leads to the claim
/// and the apply that carried it.
pub(crate) fn link_to_writers(events: &[Claimed]) {
    if !crate::telemetry::traces_on() {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let span = tracing::Span::current();
    let now = Utc::now();
    for event in events.iter().take(MAX_LINKS) {
        let Some(context) = event
            .trace_context
            .as_deref()
            .and_then(crate::telemetry::remote_context)
        else {
            continue;
        };
        let lag = (now - event.created_at).num_milliseconds().max(0);
        span.add_link_with_attributes(
            context,
            vec![
                opentelemetry::KeyValue::new("studysync.lag_ms", lag),
                opentelemetry::KeyValue::new("studysync.aggregate", event.aggregate_type.clone()),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_holds_durable_locks_on_each_dialect() {
        assert!(claim_isolation(Dialect::Postgres).is_none());
        assert!(matches!(
            claim_isolation(Dialect::Cockroach),
            Some(IsolationLevel::ReadCommitted)
        ));
    }
}
