//! Settings of the sync worker and of its health verdict.
//!
//! They are part of [`crate::config::Config`] (flattened), so `serve`,
//! `worker`, `verify` and `resync` read the same environment variables.
use std::time::Duration;

/// The default `SYNC_WAKE_GAP_MS`; docs/operations.md says what it trades.
pub const DEFAULT_WAKE_GAP_MS: u64 = 10;

/// How the worker claims, applies, retries and forgets outbox events, and
/// when its health turns degraded or unhealthy.
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerSettings {
    /// Most outbox events one batch claims after an idle spell: the oldest
    /// events go out in a small, quick batch.
    #[arg(
        long = "sync-batch-size",
        env = "SYNC_BATCH_SIZE",
        default_value_t = 100
    )]
    pub batch_size: u32,
    /// Most outbox events one batch claims while a backlog lasts: each full
    /// batch doubles the next claim up to this, so fixed costs (claim,
    /// durability barrier, marking) are shared by more events.
    #[arg(long = "sync-batch-max", env = "SYNC_BATCH_MAX", default_value_t = 800)]
    pub batch_max: u32,
    /// Milliseconds between polls for events committed by other processes
    /// (local commits wake the in-process worker at once).
    #[arg(
        long = "sync-poll-interval-ms",
        env = "SYNC_POLL_INTERVAL_MS",
        default_value_t = 2_000
    )]
    pub poll_interval_ms: u64,
    /// Least milliseconds between two claims that local commits wake: a
    /// commit after a quiet spell is claimed at once, commits coming faster
    /// wait out the gap and go to MongoDB together, so a steady stream of
    /// writes costs the outbox and MongoDB one batch per gap instead of one
    /// per commit. 0 claims on every wake-up.
    #[arg(
        long = "sync-wake-gap-ms",
        env = "SYNC_WAKE_GAP_MS",
        default_value_t = DEFAULT_WAKE_GAP_MS
    )]
    pub wake_gap_ms: u64,
    /// How long a claim holds an event; a crashed worker's events come back
    /// after this. Applying a batch is cut off at half of it.
    #[arg(
        long = "sync-lease-ms",
        env = "SYNC_LEASE_MS",
        default_value_t = 30_000
    )]
    pub lease_ms: u64,
    /// First retry delay after a failure; doubles per attempt (with jitter).
    #[arg(
        long = "sync-backoff-base-ms",
        env = "SYNC_BACKOFF_BASE_MS",
        default_value_t = 500
    )]
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    #[arg(
        long = "sync-backoff-max-ms",
        env = "SYNC_BACKOFF_MAX_MS",
        default_value_t = 60_000
    )]
    pub backoff_max_ms: u64,
    /// Attempts after which an event that fails for a non-transient reason
    /// (it cannot be projected, or MongoDB rejects that document) is parked.
    /// Transient failures (MongoDB unreachable) are retried forever.
    #[arg(long = "sync-park-after", env = "SYNC_PARK_AFTER", default_value_t = 5)]
    pub park_after: i32,
    /// Processed events are deleted after this many hours.
    #[arg(
        long = "sync-retention-hours",
        env = "SYNC_RETENTION_HOURS",
        default_value_t = 168
    )]
    pub retention_hours: u64,
    /// Rows deleted per retention statement, so no statement holds long locks.
    #[arg(
        long = "sync-retention-batch",
        env = "SYNC_RETENTION_BATCH",
        default_value_t = 1_000
    )]
    pub retention_batch: u32,
    /// Lag (age of the oldest pending event) at which health is degraded.
    #[arg(
        long = "sync-lag-degraded-secs",
        env = "SYNC_LAG_DEGRADED_SECS",
        default_value_t = 5.0
    )]
    pub lag_degraded_secs: f64,
    /// Lag at which health is unhealthy (HTTP 503).
    #[arg(
        long = "sync-lag-unhealthy-secs",
        env = "SYNC_LAG_UNHEALTHY_SECS",
        default_value_t = 30.0
    )]
    pub lag_unhealthy_secs: f64,
    /// Pending events at which health is degraded.
    #[arg(
        long = "sync-queue-degraded",
        env = "SYNC_QUEUE_DEGRADED",
        default_value_t = 1_000
    )]
    pub queue_degraded: i64,
    /// Pending events at which health is unhealthy.
    #[arg(
        long = "sync-queue-unhealthy",
        env = "SYNC_QUEUE_UNHEALTHY",
        default_value_t = 10_000
    )]
    pub queue_unhealthy: i64,
    /// Failed share of recent attempts at which health is degraded.
    #[arg(
        long = "sync-error-rate-degraded",
        env = "SYNC_ERROR_RATE_DEGRADED",
        default_value_t = 0.01
    )]
    pub error_rate_degraded: f64,
    /// Failed share of recent attempts at which health is unhealthy.
    #[arg(
        long = "sync-error-rate-unhealthy",
        env = "SYNC_ERROR_RATE_UNHEALTHY",
        default_value_t = 0.05
    )]
    pub error_rate_unhealthy: f64,
    /// Seconds an event may stay due without any worker claiming it before
    /// health reports the worker as stalled (degraded).
    #[arg(
        long = "sync-stall-secs",
        env = "SYNC_STALL_SECS",
        default_value_t = 10.0
    )]
    pub stall_secs: f64,
    /// How often this worker compares a sample of source rows with their
    /// documents, as `verify` does (`sync::verify::sample`); 0 turns the
    /// sampler off.
    #[arg(
        long = "sync-sample-every-ms",
        env = "SYNC_SAMPLE_EVERY_MS",
        default_value_t = 5_000
    )]
    pub sample_every_ms: u64,
    /// Rows each sample compares (one table per sample, in turn).
    #[arg(
        long = "sync-sample-rows",
        env = "SYNC_SAMPLE_ROWS",
        default_value_t = 50
    )]
    pub sample_rows: u64,
    /// Enqueue a repair for each drifted document the sampler finds (as
    /// `verify --repair` does); off, drift is reported and left alone.
    #[arg(
        long = "sync-auto-repair",
        env = "SYNC_AUTO_REPAIR",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub auto_repair: bool,
    /// This instance's name in `outbox.claimed_by`.
    #[arg(skip = default_worker_id())]
    pub worker_id: String,
}

/// Host, process and a random suffix: unique per running worker, readable
/// in the outbox when investigating.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{suffix}", std::process::id())
}

impl WorkerSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn wake_gap(&self) -> Duration {
        Duration::from_millis(self.wake_gap_ms)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// Applying must end well before the lease does, or another worker may
    /// claim the same events meanwhile (harmless, but wasted).
    pub fn apply_timeout(&self) -> Duration {
        Duration::from_millis((self.lease_ms / 2).max(1))
    }

    /// How often the sampler runs; `None` when it is off.
    pub fn sample_every(&self) -> Option<Duration> {
        (self.sample_every_ms > 0 && self.sample_rows > 0)
            .then(|| Duration::from_millis(self.sample_every_ms))
    }

    /// How often the worker deletes old processed events.
    pub fn retention_every(&self) -> Duration {
        Duration::from_secs(60)
    }

    /// The same settings under another worker name (tests, several workers
    /// in one process).
    pub fn with_worker_id(&self, id: impl Into<String>) -> Self {
        Self {
            worker_id: id.into(),
            ..self.clone()
        }
    }

    /// Checks relations clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.batch_size == 0 || self.poll_interval_ms == 0 || self.lease_ms < 100 {
            anyhow::bail!("SYNC_BATCH_SIZE and SYNC_POLL_INTERVAL_MS must be positive and SYNC_LEASE_MS at least 100");
        }
        if self.batch_max < self.batch_size {
            anyhow::bail!("SYNC_BATCH_MAX must be at least SYNC_BATCH_SIZE");
        }
        if self.park_after < 1 || self.retention_batch == 0 {
            anyhow::bail!("SYNC_PARK_AFTER and SYNC_RETENTION_BATCH must be at least 1");
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            anyhow::bail!("SYNC_BACKOFF_BASE_MS must not exceed SYNC_BACKOFF_MAX_MS");
        }
        if self.lag_degraded_secs > self.lag_unhealthy_secs
            || self.queue_degraded > self.queue_unhealthy
            || self.error_rate_degraded > self.error_rate_unhealthy
        {
            anyhow::bail!(
                "each SYNC_*_DEGRADED threshold must not exceed its SYNC_*_UNHEALTHY one"
            );
        }
        Ok(())
    }
}
