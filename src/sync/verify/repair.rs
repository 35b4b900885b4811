//! `verify --repair`: the events that make the worker fix drifted documents.
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use uuid::Uuid;

use crate::{
    error::AppResult,
    events::Aggregate,
    sync::{
        source::{self, Rows},
        SyncContext,
    },
    write::outbox::{self, NewEvent},
};

/// How one drifted document gets fixed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fix {
    /// Enqueue the row's current state; first lift its version above
    /// `bump_above` when MongoDB already holds that version (the guard would
    /// otherwise skip the event).
    Current {
        id: Uuid,
        seen: i64,
        bump_above: Option<i64>,
    },
    /// Tombstone a document that has no row.
    Tombstone { id: Uuid, version: i64 },
}

pub(super) fn fix_id(fix: &Fix) -> Uuid {
    match fix {
        Fix::Current { id, .. } | Fix::Tombstone { id, .. } => *id,
    }
}

/// Enqueues, in one write transaction, an event per fix: the row's current
/// state (version lifted above MongoDB's where needed) or a tombstone.
#[tracing::instrument(skip_all, fields(table = table.collection(), fixes = fixes.len()))]
pub(super) async fn repair(
    state: &SyncContext,
    table: Aggregate,
    fixes: Vec<Fix>,
) -> AppResult<u64> {
    let done = state
        .writer()
        .transact(move |tx| {
            let fixes = fixes.clone();
            Box::pin(async move {
                let mut current = Vec::new();
                let mut events = Vec::new();
                for fix in &fixes {
                    match *fix {
                        Fix::Current {
                            id,
                            seen,
                            bump_above,
                        } => {
                            if let Some(above) = bump_above {
                                // Guarded by the version seen: a concurrent
                                // write has its own event and wins.
                                let sql = format!(
                                    "UPDATE {} SET version = $1 WHERE id = $2 AND version = $3",
                                    table.collection()
                                );
                                let version = above.max(seen) + 1;
                                tx.conn()
                                    .execute(Statement::from_sql_and_values(
                                        DatabaseBackend::Postgres,
                                        sql,
                                        vec![version.into(), id.into(), seen.into()],
                                    ))
                                    .await?;
                            }
                            current.push(id);
                        }
                        Fix::Tombstone { id, version } => {
                            events.push(NewEvent::deleted(table, id, version, "sync.repaired"))
                        }
                    }
                }
                let rows =
                    source::rows(table, tx.conn(), Rows::Ids(&current), current.len() as u64)
                        .await?;
                events
                    .extend(rows.into_iter().map(|row| {
                        NewEvent::upsert(row.id, row.version, "sync.repaired", row.doc)
                    }));
                let count = events.len() as u64;
                outbox::enqueue_all(tx, events).await?;
                Ok(count)
            })
        })
        .await?;
    Ok(done.value)
}
