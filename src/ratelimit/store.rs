//! The statements behind the shared limits, on the `rate_limits` table.
//!
//! Each counted event is one autocommit statement that decides in the
//! database, under the row's lock, whether the window has restarted, whether
//! the limit is passed and how long is left: `INSERT … ON CONFLICT (scope,
//! key_hash) DO UPDATE … RETURNING`. Concurrent callers on any number of
//! instances queue on that row, so together they get the budget one instance
//! would. A refused event consumes nothing. Sessions default to SERIALIZABLE,
//! under which PostgreSQL aborts every statement that waited on a row another
//! one just changed; [`counting`] then runs it again under READ COMMITTED,
//! where it waits its turn on the row instead, so a burst on one key is
//! counted in full rather than failing.
//!
//! Time is the database's `now()` plus the instance's [`Clock`] offset, a
//! statement parameter that is zero outside tests: one clock for every
//! instance (no skew between servers can stretch a window), and tests move
//! time forward instead of sleeping through a window.
//!
//! [`Clock`]: super::Clock
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DbErr, FromQueryResult, IsolationLevel, QueryResult,
    Statement, TransactionTrait, Value as SqlValue,
};

use crate::{
    error::AppResult,
    pool::Db,
    write::{is_retryable, retrying},
};

/// A fixed window: at most `quota` events per `length`, counted from the
/// key's first event.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub scope: &'static str,
    pub quota: u32,
    pub length: Duration,
}

/// One key's answer to [`reserve`].
#[derive(Debug)]
pub struct Counted {
    pub scope: String,
    pub key: Vec<u8>,
    pub admitted: bool,
    /// Identifies the window the event was counted in (for giving it back).
    pub window_start: DateTime<Utc>,
    /// Until the window ends.
    pub wait: Duration,
}

#[derive(FromQueryResult)]
struct CountedRow {
    scope: String,
    key_hash: Vec<u8>,
    admitted: bool,
    window_start: DateTime<Utc>,
    wait_seconds: f64,
}

/// The instance's time in a statement: `now()` moved by `$1` milliseconds.
const AT: &str = "(now() + $1::FLOAT8 * INTERVAL '1 millisecond')";

/// Counts one event for each `(window, key)` in one statement, each within
/// its own quota. `used` saturates at `quota + 1`, which marks "refused, and
/// full": the events counted are `LEAST(used, quota)`, so a refusal adds
/// nothing and a give-back frees a slot even after refusals.
#[tracing::instrument(skip_all, fields(keys = keys.len()))]
pub async fn reserve(
    db: &Db,
    offset_ms: f64,
    keys: &[(Window, Vec<u8>)],
) -> AppResult<Vec<Counted>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<String> = (0..keys.len())
        .map(|i| {
            let p = 2 + 4 * i;
            format!(
                "(${}::TEXT, ${}::BYTEA, ${}::INT4, ${}::FLOAT8)",
                p,
                p + 1,
                p + 2,
                p + 3
            )
        })
        .collect();
    let sql = format!(
        r#"
INSERT INTO rate_limits AS r (scope, key_hash, used, quota, tokens, updated_at, expires_at)
SELECT v.scope, v.key_hash, 1, v.quota, 0, t.at, t.at + v.length_ms * INTERVAL '1 millisecond'
FROM (SELECT {AT} AS at) AS t,
     (VALUES {rows}) AS v (scope, key_hash, quota, length_ms)
ON CONFLICT (scope, key_hash) DO UPDATE SET
    used = CASE WHEN r.expires_at <= excluded.updated_at THEN 1
                ELSE LEAST(r.used, excluded.quota) + 1 END,
    quota = excluded.quota,
    updated_at = CASE WHEN r.expires_at <= excluded.updated_at THEN excluded.updated_at
                      ELSE r.updated_at END,
    expires_at = CASE WHEN r.expires_at <= excluded.updated_at THEN excluded.expires_at
                      ELSE r.expires_at END
RETURNING scope, key_hash, used <= quota AS admitted, updated_at AS window_start,
          EXTRACT(EPOCH FROM expires_at - {AT})::FLOAT8 AS wait_seconds"#,
        rows = rows.join(", ")
    );
    let values = || {
        let mut values: Vec<SqlValue> = vec![offset_ms.into()];
        for (window, key) in keys {
            values.push(window.scope.into());
            values.push(key.clone().into());
            // One below INT4's top, so `quota + 1` still fits.
            values.push(
                i32::try_from(window.quota)
                    .unwrap_or(i32::MAX - 1)
                    .min(i32::MAX - 1)
                    .into(),
            );
            values.push((window.length.as_secs_f64() * 1000.0).into());
        }
        values
    };
    let rows = counting(db, stmt(&sql, values())).await?;
    rows.iter()
        .map(|row| {
            let row = CountedRow::from_query_result(row, "")?;
            Ok(Counted {
                scope: row.scope,
                key: row.key_hash,
                admitted: row.admitted,
                window_start: row.window_start,
                wait: Duration::try_from_secs_f64(row.wait_seconds.max(0.0)).unwrap_or_default(),
            })
        })
        .collect()
}

/// Gives back one event counted by [`reserve`] for each of `counted`, in the
/// window it was counted in (a window that has restarted since is left
/// alone). One statement.
#[tracing::instrument(skip_all, fields(keys = counted.len()))]
pub async fn give_back(db: &Db, counted: &[Counted]) -> AppResult<()> {
    if counted.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..counted.len())
        .map(|i| {
            let p = 1 + 3 * i;
            format!("(${}::TEXT, ${}::BYTEA, ${}::TIMESTAMPTZ)", p, p + 1, p + 2)
        })
        .collect();
    let sql = format!(
        "UPDATE rate_limits SET used = GREATEST(LEAST(used, quota) - 1, 0) \
         WHERE (scope, key_hash, updated_at) IN ({})",
        rows.join(", ")
    );
    let values = || {
        counted
            .iter()
            .flat_map(|c| -> [SqlValue; 3] {
                [
                    c.scope.clone().into(),
                    c.key.clone().into(),
                    c.window_start.into(),
                ]
            })
            .collect::<Vec<_>>()
    };
    counting(db, stmt(&sql, values())).await?;
    Ok(())
}

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub scope: &'static str,
    pub burst: f64,
    pub per_second: f64,
}

impl Bucket {
    /// Tokens per second, never zero (the statement divides by it).
    fn rate(&self) -> f64 {
        self.per_second.max(f64::MIN_POSITIVE)
    }
}

/// What [`charge`] granted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    pub granted: u32,
    /// Until the next token, when fewer than asked were granted.
    pub wait: Duration,
}

#[derive(FromQueryResult)]
struct GrantRow {
    used: i32,
    tokens: f64,
}

/// Slack on a bucket's expiry, so that `expires_at` (and its index entry)
/// moves at most about once a minute per key however often it is charged.
const BUCKET_EXPIRY_STEP_MS: f64 = 60_000.0;

/// Takes up to `wanted` tokens from `key`'s bucket in one statement, as many
/// as are there (a bucket row that is absent is full). Tokens not granted
/// are not taken. The row expires once the bucket would be full again.
#[tracing::instrument(skip_all, fields(wanted))]
pub async fn charge(
    db: &Db,
    offset_ms: f64,
    bucket: Bucket,
    key: &[u8],
    wanted: u32,
) -> AppResult<Grant> {
    let rows = counting(
        db,
        stmt(
            &bucket_upsert(""),
            bucket_values(offset_ms, bucket, key, wanted),
        ),
    )
    .await?;
    let Some(row) = rows
        .first()
        .map(|row| GrantRow::from_query_result(row, ""))
        .transpose()?
    else {
        return Err(crate::error::AppError::Internal(anyhow::anyhow!(
            "the rate limit upsert returned no row"
        )));
    };
    Ok(row.grant(bucket, wanted))
}

/// The caller's account row and, when `generation` is still its token
/// generation, the charge of [`charge`], in one statement: a mutation
/// request learns who is calling and takes its budget in one round trip.
/// `None` when the account is gone; a grant of `None` when the token was
/// revoked (nothing is charged then).
#[tracing::instrument(skip_all, fields(wanted))]
pub async fn charge_caller(
    db: &Db,
    offset_ms: f64,
    bucket: Bucket,
    key: &[u8],
    wanted: u32,
    (user, generation): (uuid::Uuid, i32),
) -> AppResult<Option<(crate::entity::users::Model, Option<Grant>)>> {
    let sql = format!(
        "WITH caller AS (SELECT * FROM users WHERE id = $9),\n\
         charged AS ({})\n\
         SELECT caller.*, charged.used AS charged_used, charged.tokens AS charged_tokens \
         FROM caller LEFT JOIN charged ON true",
        bucket_upsert("WHERE EXISTS (SELECT 1 FROM caller WHERE token_generation = $10)")
    );
    let mut values = bucket_values(offset_ms, bucket, key, wanted);
    values.extend([user.into(), generation.into()]);
    let rows = counting(db, stmt(&sql, values)).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let caller = crate::entity::users::Model::from_query_result(row, "")?;
    let grant = match (
        row.try_get::<Option<i32>>("", "charged_used")?,
        row.try_get::<Option<f64>>("", "charged_tokens")?,
    ) {
        (Some(used), Some(tokens)) => Some(GrantRow { used, tokens }.grant(bucket, wanted)),
        _ => None,
    };
    Ok(Some((caller, grant)))
}

/// The bucket's upsert (parameters `$1`..`$8`, see [`bucket_values`]),
/// inserting only where `only_if` (a `WHERE` clause, or nothing) holds.
fn bucket_upsert(only_if: &str) -> String {
    // Refilled tokens, capped at the burst ($4), $5 per second since the
    // last charge (never negative, even if instances' clocks disagree).
    const AVAILABLE: &str = "LEAST($4::FLOAT8, r.tokens + GREATEST(EXTRACT(EPOCH FROM \
                             excluded.updated_at - r.updated_at)::FLOAT8, 0) * $5::FLOAT8)";
    format!(
        r#"
INSERT INTO rate_limits AS r (scope, key_hash, used, quota, tokens, updated_at, expires_at)
SELECT $2::TEXT, $3::BYTEA, LEAST($6::FLOAT8, FLOOR($4::FLOAT8))::INT4, 0,
       $4::FLOAT8 - LEAST($6::FLOAT8, FLOOR($4::FLOAT8)), t.at,
       t.at + $7::FLOAT8 * INTERVAL '1 millisecond'
FROM (SELECT {AT} AS at) AS t
{only_if}
ON CONFLICT (scope, key_hash) DO UPDATE SET
    used = LEAST($6::FLOAT8, FLOOR({AVAILABLE}))::INT4,
    tokens = {AVAILABLE} - LEAST($6::FLOAT8, FLOOR({AVAILABLE})),
    updated_at = GREATEST(r.updated_at, excluded.updated_at),
    expires_at = CASE WHEN r.expires_at >= excluded.expires_at - $8::FLOAT8 * INTERVAL '1 millisecond'
                      THEN r.expires_at ELSE excluded.expires_at END
RETURNING used, tokens"#
    )
}

fn bucket_values(offset_ms: f64, bucket: Bucket, key: &[u8], wanted: u32) -> Vec<SqlValue> {
    let fill_ms = (bucket.burst / bucket.rate() * 1000.0).min(f64::from(u32::MAX));
    vec![
        offset_ms.into(),
        bucket.scope.into(),
        key.to_vec().into(),
        bucket.burst.into(),
        bucket.rate().into(),
        f64::from(wanted).into(),
        (fill_ms + BUCKET_EXPIRY_STEP_MS).into(),
        BUCKET_EXPIRY_STEP_MS.into(),
    ]
}

impl GrantRow {
    fn grant(&self, bucket: Bucket, wanted: u32) -> Grant {
        let granted = u32::try_from(self.used.max(0)).unwrap_or(0);
        let wait = if granted < wanted {
            Duration::try_from_secs_f64(((1.0 - self.tokens).max(0.0)) / bucket.rate())
                .unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        };
        Grant { granted, wait }
    }
}

/// Deletes rows whose window ended or whose bucket is full again, `batch`
/// per statement by `rate_limits_expires_idx`, until none is left. Returns
/// rows deleted. Uses the database's clock alone: a test's clock offset only
/// keeps rows a little longer.
#[tracing::instrument(skip_all)]
pub async fn purge_expired(db: &impl ConnectionTrait, batch: u32) -> AppResult<u64> {
    const SQL: &str = r#"
DELETE FROM rate_limits WHERE expires_at < now() AND (scope, key_hash) IN (
    SELECT scope, key_hash FROM rate_limits WHERE expires_at < now() LIMIT $1
)"#;
    let mut total = 0;
    loop {
        let deleted = retrying(|| db.execute(stmt(SQL, vec![i64::from(batch).into()])))
            .await?
            .rows_affected();
        total += deleted;
        if deleted < u64::from(batch) {
            return Ok(total);
        }
        // Let live traffic in between deletion batches.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a counting statement: one autocommit round trip, or, when the
/// database refused it for contention (see the module's notes), again in
/// READ COMMITTED transactions until it is through. A CockroachDB without
/// READ COMMITTED runs those SERIALIZABLE, and [`retrying`] covers them.
async fn counting(db: &Db, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
    match db.query_all(statement.clone()).await {
        Err(err) if is_retryable(&err) => {}
        done => return done,
    }
    retrying(|| {
        let statement = statement.clone();
        async move {
            let txn = db
                .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
                .await?;
            let rows = txn.query_all(statement).await?;
            txn.commit().await?;
            Ok(rows)
        }
    })
    .await
}

fn stmt(sql: &str, values: Vec<SqlValue>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}
