//! `resync`: rebuilds every read-model collection from the source tables,
//! then the current leaderboard tops, while the API and the worker keep
//! running.
//!
//! Each row's projected document is upserted directly (not enqueued) with
//! the guard `version <= row version`: a row at version v holds exactly the
//! state an event for v carries, so the rebuild and live events commute —
//! whichever lands first, the newest version stays, and an equal version is
//! rewritten with identical content (which also repairs damaged documents).
//! Live documents without a row get a tombstone one version above them.
//! Nothing is dropped first, so readers never see an empty collection, and
//! an interrupted run is simply run again.
use std::{collections::HashSet, time::Duration};

use mongodb::bson::Document;

use serde::Serialize;
use uuid::Uuid;

use super::{
    apply::{self, Guard, Verdict},
    boards,
    project::{self, Projected},
    readmodel,
    source::{self, Rows},
    verify::orphans,
    SyncContext,
};
use crate::{
    error::{AppError, AppResult},
    events::Aggregate,
};

/// What a rebuild did to one collection.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CollectionProgress {
    pub collection: &'static str,
    pub rows: u64,
    /// Documents written (new or replaced).
    pub written: u64,
    /// Documents MongoDB already held at a newer version.
    pub newer_in_read_model: u64,
    /// Live documents without a row, now tombstoned.
    pub tombstoned: u64,
    /// Rows that could not be projected or were refused by MongoDB.
    pub failed: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub batch_size: u64,
    /// Attempts per batch while MongoDB is unavailable, before giving up.
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            batch_size: 500,
            attempts: 10,
        }
    }
}

/// Rebuilds every collection; `progress` hears about each batch.
#[tracing::instrument(skip_all)]
pub async fn resync(
    state: &SyncContext,
    options: Options,
    mut progress: impl FnMut(&CollectionProgress),
) -> AppResult<Vec<CollectionProgress>> {
    let mut done = Vec::new();
    for table in Aggregate::ALL {
        let mut p = CollectionProgress {
            collection: table.collection(),
            ..Default::default()
        };
        let mut after: Option<Uuid> = None;
        loop {
            let rows =
                source::rows(table, state.sql(), Rows::After(after), options.batch_size).await?;
            let lower = after.map(|id| id.to_string());
            let Some(last) = rows.last() else {
                tombstone_tail(state, table, lower, options, &mut p).await?;
                break;
            };
            let upto = last.id.to_string();
            after = Some(last.id);
            p.rows += rows.len() as u64;
            // The documents of this id range, read before writing: those
            // without a row are orphans.
            let in_range = readmodel::range(
                state.read_model(),
                table.collection(),
                lower.as_deref(),
                Some(&upto),
                0,
            )
            .await?;
            let docs: Vec<Projected> = rows.iter().map(|row| row.project()).collect();
            write(state, &docs, Guard::NotOlder, options, &mut p).await?;
            let with_row: HashSet<String> = rows.iter().map(|r| r.id.to_string()).collect();
            let orphans = in_range
                .into_iter()
                .filter(|doc| !with_row.contains(&readmodel::id_of(doc)));
            tombstone(state, table, orphans, options, &mut p).await?;
            progress(&p);
        }
        progress(&p);
        done.push(p);
    }
    // The leaderboard tops of the buckets readers ask for, computed afresh.
    let mut p = CollectionProgress {
        collection: boards::COLLECTION,
        ..Default::default()
    };
    let tops = boards::compute(state.sql(), &boards::current(chrono::Utc::now())).await?;
    p.rows = tops.len() as u64;
    write(state, &tops, Guard::Newer, options, &mut p).await?;
    progress(&p);
    done.push(p);
    Ok(done)
}

/// Tombstones the live documents after the last row, a page at a time.
async fn tombstone_tail(
    state: &SyncContext,
    table: Aggregate,
    after: Option<String>,
    options: Options,
    p: &mut CollectionProgress,
) -> AppResult<()> {
    let limit = i64::try_from(options.batch_size).unwrap_or(500);
    let mut pages = readmodel::Tail::new(state.read_model(), table.collection(), after, limit);
    while let Some(docs) = pages.next().await? {
        tombstone(state, table, docs, options, p).await?;
    }
    Ok(())
}

/// Writes a tombstone one version above each orphan among `docs`.
async fn tombstone(
    state: &SyncContext,
    table: Aggregate,
    docs: impl IntoIterator<Item = Document>,
    options: Options,
    p: &mut CollectionProgress,
) -> AppResult<()> {
    let (orphans, foreign) = orphans(state, table, docs).await?;
    for id in foreign {
        tracing::warn!(collection = table.collection(), %id, "document with a foreign _id left alone");
    }
    let mut docs = Vec::with_capacity(orphans.len());
    for (id, version) in orphans {
        docs.push(project::tombstone(table, id, version + 1));
    }
    let before = p.written;
    write(state, &docs, Guard::Newer, options, p).await?;
    p.tombstoned += p.written - before;
    p.written = before;
    Ok(())
}

/// Writes a batch, retrying it while MongoDB is unavailable.
async fn write(
    state: &SyncContext,
    docs: &[Projected],
    guard: Guard,
    options: Options,
    p: &mut CollectionProgress,
) -> AppResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let verdicts = apply::apply(state.read_model(), docs, guard).await;
        let unavailable = verdicts.iter().find_map(|v| match v {
            Verdict::Unavailable(e) => Some(e.clone()),
            _ => None,
        });
        match unavailable {
            Some(error) if attempt < options.attempts => {
                tracing::warn!(attempt, %error, "read model unavailable; retrying the batch");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))).await;
            }
            Some(error) => {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "read model unavailable: {error}"
                )));
            }
            None => {
                for verdict in verdicts {
                    match verdict {
                        Verdict::Applied => p.written += 1,
                        Verdict::Stale => p.newer_in_read_model += 1,
                        Verdict::Rejected(error) => {
                            p.failed += 1;
                            tracing::error!(%error, "document refused by the read model");
                        }
                        Verdict::Unavailable(_) => {}
                    }
                }
                return Ok(());
            }
        }
    }
}
