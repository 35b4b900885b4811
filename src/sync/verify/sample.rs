//! Continuous verification: each worker compares a small random sample of
//! source rows with their documents every `SYNC_SAMPLE_EVERY_MS`, exactly as
//! `verify` does (a drifted document whose aggregate has an event waiting is
//! pending, not drift). Drift is counted in
//! `studysync_read_model_drift_total{collection}` (and every comparison in
//! `studysync_read_model_checked_total{collection}`), listed in
//! `read_model_drift` so health is degraded on every instance while it lasts,
//! and, with `SYNC_AUTO_REPAIR`, repaired as `verify --repair` would. Each
//! sample first checks the listed documents again and removes those that
//! match by now.
//!
//! Rows are sampled, so a document with no row (an extra) is left to
//! `verify`.
use std::collections::HashMap;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement};
use uuid::Uuid;

use super::{
    compare,
    repair::{fix_id, repair, Fix},
    CollectionReport,
};
use crate::{
    error::AppResult,
    events::Aggregate,
    sync::{
        outbox as worker_outbox, readmodel,
        source::{self, Rows, SourceRow},
        SyncContext,
    },
};

/// Listed drift checked again per sample.
const RECHECK: i64 = 100;

/// What one sample did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sampled {
    pub collection: &'static str,
    pub checked: u64,
    /// Drifted documents found (pending ones not counted).
    pub drifted: Vec<Uuid>,
    pub repairs_enqueued: u64,
    /// Listed drift found in step again and removed.
    pub cleared: u64,
}

/// One sample of `rows` rows of `table`, from a random place in id order
/// (wrapping around to the start), after checking listed drift again.
#[tracing::instrument(skip_all, fields(table = table.collection(), rows))]
pub async fn sample(
    state: &SyncContext,
    table: Aggregate,
    rows: u64,
    auto_repair: bool,
) -> AppResult<Sampled> {
    let mut sampled = Sampled {
        collection: table.collection(),
        cleared: recheck(state).await?,
        ..Sampled::default()
    };
    let start = Uuid::new_v4();
    let mut picked = source::rows(table, state.sql(), Rows::After(Some(start)), rows).await?;
    if (picked.len() as u64) < rows {
        let rest = rows - picked.len() as u64;
        let head = source::rows(table, state.sql(), Rows::After(None), rest).await?;
        picked.extend(head.into_iter().filter(|row| row.id <= start));
    }
    sampled.checked = picked.len() as u64;
    let fixes = drift_of(state, table, &picked).await?;
    metrics::counter!("studysync_read_model_checked_total", "collection" => table.collection())
        .increment(sampled.checked);
    if !fixes.is_empty() {
        metrics::counter!("studysync_read_model_drift_total", "collection" => table.collection())
            .increment(fixes.len() as u64);
        tracing::warn!(
            collection = table.collection(),
            drifted = fixes.len(),
            "the sampler found documents out of step with their rows"
        );
        list(state.sql(), table, &fixes).await?;
        sampled.drifted = fixes.iter().map(|(_, fix)| fix_id(fix)).collect();
        if auto_repair {
            let repairs: Vec<Fix> = fixes.iter().map(|(_, fix)| *fix).collect();
            sampled.repairs_enqueued = repair(state, table, repairs).await?;
            mark_repaired(state.sql(), table, &sampled.drifted).await?;
        }
    }
    Ok(sampled)
}

/// The drifted documents of `rows`, as verify sees them, without the
/// pending ones.
async fn drift_of(
    state: &SyncContext,
    table: Aggregate,
    rows: &[SourceRow],
) -> AppResult<Vec<(&'static str, Fix)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
    let docs: Vec<Document> = state
        .read_model()
        .collection::<Document>(table.collection())
        .find(doc! {"_id": {"$in": &ids}})
        .await?
        .try_collect()
        .await?;
    let stored: HashMap<String, Document> = docs
        .into_iter()
        .map(|doc| (readmodel::id_of(&doc), doc))
        .collect();
    let mut report = CollectionReport::default();
    let drifted: Vec<(&'static str, Fix)> = rows
        .iter()
        .filter_map(|row| compare(row, stored.get(&row.id.to_string()), &mut report))
        .collect();
    if drifted.is_empty() {
        return Ok(drifted);
    }
    let ids: Vec<Uuid> = drifted.iter().map(|(_, fix)| fix_id(fix)).collect();
    let pending = worker_outbox::pending_aggregates(state.sql(), table.name(), &ids).await?;
    Ok(drifted
        .into_iter()
        .filter(|(_, fix)| !pending.contains(&fix_id(fix)))
        .collect())
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

async fn list(
    db: &impl ConnectionTrait,
    table: Aggregate,
    fixes: &[(&'static str, Fix)],
) -> AppResult<()> {
    for (kind, fix) in fixes {
        let sql = "INSERT INTO read_model_drift (aggregate_type, aggregate_id, kind, detected_at) \
                   VALUES ($1, $2, $3, now()) \
                   ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET kind = $3";
        let values = vec![table.name().into(), fix_id(fix).into(), (*kind).into()];
        worker_outbox::retrying(|| db.execute(stmt(sql, values.clone()))).await?;
    }
    Ok(())
}

async fn mark_repaired(db: &impl ConnectionTrait, table: Aggregate, ids: &[Uuid]) -> AppResult<()> {
    for id in ids {
        let sql = "UPDATE read_model_drift SET repair_enqueued_at = now() \
                   WHERE aggregate_type = $1 AND aggregate_id = $2";
        let values = vec![table.name().into(), (*id).into()];
        worker_outbox::retrying(|| db.execute(stmt(sql, values.clone()))).await?;
    }
    Ok(())
}

/// Checks the listed drift again; removes what matches now (or is about
/// to: a repair or a write is pending) and returns how many.
async fn recheck(state: &SyncContext) -> AppResult<u64> {
    #[derive(FromQueryResult)]
    struct Listed {
        aggregate_type: String,
        aggregate_id: Uuid,
    }
    let listed = worker_outbox::retrying(|| {
        Listed::find_by_statement(stmt(
            "SELECT aggregate_type, aggregate_id FROM read_model_drift \
             ORDER BY detected_at LIMIT $1",
            vec![RECHECK.into()],
        ))
        .all(state.sql())
    })
    .await?;
    let mut cleared = 0;
    for table in Aggregate::ALL {
        let ids: Vec<Uuid> = listed
            .iter()
            .filter(|l| l.aggregate_type == table.name())
            .map(|l| l.aggregate_id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let rows = source::rows(table, state.sql(), Rows::Ids(&ids), ids.len() as u64).await?;
        let still: Vec<Uuid> = drift_of(state, table, &rows)
            .await?
            .iter()
            .map(|(_, fix)| fix_id(fix))
            .collect();
        // A row that is gone is for `verify` to judge (its document may be
        // an extra now): it is no longer this sampler's finding.
        for id in ids.iter().filter(|id| !still.contains(id)) {
            let values = vec![table.name().into(), (*id).into()];
            worker_outbox::retrying(|| {
                state.sql().execute(stmt(
                    "DELETE FROM read_model_drift WHERE aggregate_type = $1 AND aggregate_id = $2",
                    values.clone(),
                ))
            })
            .await?;
            cleared += 1;
        }
    }
    Ok(cleared)
}

/// Samples one table after another, every `every`, for as long as it is
/// polled; a failed sample is logged and the next one tried.
pub async fn run(state: SyncContext, every: std::time::Duration, rows: u64, auto_repair: bool) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for table in Aggregate::ALL.into_iter().cycle() {
        tick.tick().await;
        if let Err(err) = sample(&state, table, rows, auto_repair).await {
            tracing::debug!(error = %err.chain(), table = table.collection(), "a verification sample failed");
        }
    }
}
