//! Sync health over GraphQL, and the admin's levers on the worker.
use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{require_admin, ContextExt};
use crate::sync::{control, health, outbox, resync};

/// The same figures as `GET /api/health/sync`.
#[derive(SimpleObject)]
pub struct SyncStatus {
    /// `healthy`, `paused`, `degraded` or `unhealthy`.
    pub status: String,
    /// Age of the oldest event not yet in the read model (0 when none).
    pub sync_lag_seconds: f64,
    /// Events waiting to be applied.
    pub queue_size: i32,
    /// Failed share of recent attempts, 0..1.
    pub error_rate: f64,
    /// When an event was last applied.
    pub last_sync: Option<DateTime<Utc>>,
    /// Events set aside after repeated non-transient failures.
    pub parked: i32,
    /// Why the status is not healthy.
    pub reasons: Vec<String>,
    /// Set while an operator has paused the workers.
    pub paused: Option<SyncPause>,
    /// Queue and lag per aggregate kind (`todo`, `message`, ...).
    pub by_kind: Vec<SyncKindStatus>,
    /// Documents the background sampler found out of step with their rows.
    pub drifted: i32,
}

/// One aggregate kind's share of the queue.
#[derive(SimpleObject)]
pub struct SyncKindStatus {
    /// The aggregate kind (`user`, `todo`, `study_session`, `study_total`,
    /// `room`, `message`).
    pub kind: String,
    pub queue_size: i32,
    pub sync_lag_seconds: f64,
}

/// Who paused the sync workers, when and why.
#[derive(SimpleObject)]
pub struct SyncPause {
    pub since: DateTime<Utc>,
    pub by: String,
    pub reason: Option<String>,
}

impl From<health::SyncStatus> for SyncStatus {
    fn from(s: health::SyncStatus) -> Self {
        let clamp = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            status: s.status.as_str().to_owned(),
            sync_lag_seconds: s.sync_lag,
            queue_size: clamp(s.queue_size),
            error_rate: s.error_rate,
            last_sync: s.last_sync,
            parked: clamp(s.parked),
            reasons: s.reasons,
            paused: s.paused.map(|p| SyncPause {
                since: p.paused_at,
                by: p.paused_by,
                reason: p.reason,
            }),
            drifted: clamp(s.drifted),
            by_kind: s
                .by_kind
                .into_iter()
                .map(|k| SyncKindStatus {
                    kind: k.kind,
                    queue_size: clamp(k.queue_size),
                    sync_lag_seconds: k.sync_lag,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// How fresh the MongoDB read model is.
    async fn sync_status(&self, ctx: &Context<'_>) -> Result<SyncStatus> {
        Ok(health::status(ctx.state().sync()).await?.into())
    }
}

#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// Pauses every sync worker, in every process (admins only): nothing is
    /// claimed until `resumeSync`, commits keep adding events, and health
    /// says `paused` with the lag still measured. Returns the status.
    async fn pause_sync(&self, ctx: &Context<'_>, reason: Option<String>) -> Result<SyncStatus> {
        let admin = require_admin(ctx).await?;
        let state = ctx.state();
        control::pause(state.sql(), &admin.email, reason.as_deref()).await?;
        Ok(health::status(state.sync()).await?.into())
    }

    /// Resumes every sync worker (admins only); what waited is carried from
    /// the oldest on. Returns the status.
    async fn resume_sync(&self, ctx: &Context<'_>) -> Result<SyncStatus> {
        let admin = require_admin(ctx).await?;
        let state = ctx.state();
        control::resume(state.sql(), &admin.email).await?;
        state.outbox_wake().notify_one();
        Ok(health::status(state.sync()).await?.into())
    }

    /// Makes every parked event due again (after its cause has been fixed);
    /// returns how many. Admins only.
    async fn replay_parked_events(&self, ctx: &Context<'_>) -> Result<i32> {
        require_admin(ctx).await?;
        let state = ctx.state();
        let replayed = outbox::replay_parked(state.sql()).await?;
        state.outbox_wake().notify_one();
        tracing::info!(replayed, "parked events replayed");
        Ok(i32::try_from(replayed).unwrap_or(i32::MAX))
    }

    /// Starts rebuilding the read model from the source of truth in the
    /// background (see `resync`); false when one is already running here.
    /// Admins only.
    async fn start_resync(&self, ctx: &Context<'_>) -> Result<bool> {
        let admin = require_admin(ctx).await?;
        let state = ctx.state().clone();
        if !state.sync_monitor().try_start_resync() {
            return Ok(false);
        }
        tracing::info!(admin = %admin.id, "resync started");
        tokio::spawn(async move {
            let result = resync::resync(state.sync(), resync::Options::default(), |_| {}).await;
            state.sync_monitor().finish_resync();
            match result {
                Ok(done) => {
                    let rows: u64 = done.iter().map(|p| p.rows).sum();
                    tracing::info!(rows, "resync finished");
                }
                Err(err) => tracing::error!(error = %err.chain(), "resync failed"),
            }
        });
        Ok(true)
    }
}
