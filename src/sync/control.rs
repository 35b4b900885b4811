//! Pausing and resuming every sync worker at once, through the database:
//! the `sync_control` row is read by each claim in the claim's own
//! statement (`outbox::claim`), so a pause reaches every process at its next
//! claim, and a resume at its next poll (at once in the process that
//! resumes). Paused, nothing is claimed and nothing is lost: commits keep
//! adding events, lag and queue keep being measured, and health says
//! `paused` instead of judging a stall.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement};
use serde::Serialize;

use crate::error::AppResult;

/// Who paused the workers, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, FromQueryResult)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    #[serde(rename = "since")]
    pub paused_at: DateTime<Utc>,
    #[serde(rename = "by")]
    pub paused_by: String,
    pub reason: Option<String>,
}

/// Longest pause reason kept.
pub const MAX_REASON: usize = 500;

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// Pauses every worker; pausing while paused keeps the first pause's time
/// and takes the new author and reason.
pub async fn pause(db: &impl ConnectionTrait, by: &str, reason: Option<&str>) -> AppResult<Pause> {
    let reason = reason.map(|r| r.chars().take(MAX_REASON).collect::<String>());
    let sql = "INSERT INTO sync_control (id, paused, paused_at, paused_by, reason, updated_at) \
               VALUES (1, true, now(), $1, $2, now()) \
               ON CONFLICT (id) DO UPDATE SET paused = true, \
               paused_at = CASE WHEN sync_control.paused THEN sync_control.paused_at ELSE now() END, \
               paused_by = $1, reason = $2, updated_at = now() \
               RETURNING paused_at, paused_by, reason";
    let pause = super::outbox::retrying(|| {
        Pause::find_by_statement(stmt(sql, vec![by.into(), reason.clone().into()])).one(db)
    })
    .await?
    .ok_or_else(|| anyhow::anyhow!("pausing returned no row"))?;
    tracing::warn!(by, reason = pause.reason.as_deref(), "sync workers paused");
    Ok(pause)
}

/// Resumes every worker; false when they were not paused.
pub async fn resume(db: &impl ConnectionTrait, by: &str) -> AppResult<bool> {
    let sql = "UPDATE sync_control SET paused = false, updated_at = now() \
               WHERE id = 1 AND paused RETURNING id";
    let rows = super::outbox::retrying(|| db.query_all(stmt(sql, Vec::new()))).await?;
    let resumed = !rows.is_empty();
    if resumed {
        tracing::warn!(by, "sync workers resumed");
    }
    Ok(resumed)
}

/// The pause in force, if any.
pub async fn paused(db: &impl ConnectionTrait) -> AppResult<Option<Pause>> {
    let sql = "SELECT paused_at, paused_by, reason FROM sync_control WHERE id = 1 AND paused";
    Ok(super::outbox::retrying(|| Pause::find_by_statement(stmt(sql, Vec::new())).one(db)).await?)
}
