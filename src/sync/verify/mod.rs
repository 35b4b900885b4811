//! `verify`: compares every source row with its MongoDB document, and
//! `verify --repair`: enqueues events that make the worker fix the drift.
//!
//! Rows are read in id order, a batch at a time, and the documents of the
//! same `_id` range are read beside them (a merge join: one index range scan
//! per page finds each row's document and the documents between rows that
//! have none). Each row is projected exactly as the worker would project its
//! event, so "in sync" means "what the worker would have written". A drifted
//! document whose aggregate still has an event waiting counts as pending,
//! not drift.
pub mod erasure;
mod repair;
mod report;
pub mod sample;

use std::collections::{HashMap, HashSet};

use mongodb::bson::Document;

use uuid::Uuid;

use repair::{fix_id, repair, Fix};
pub use report::{CollectionReport, Report};

use super::{
    outbox as worker_outbox, readmodel,
    source::{self, Rows, SourceRow},
    SyncContext,
};
use crate::{error::AppResult, events::Aggregate};

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub repair: bool,
    /// Rows per SQL page and per `$in` lookup.
    pub batch_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            repair: false,
            batch_size: 500,
        }
    }
}

/// Compares every table with its collection (and repairs if asked).
#[tracing::instrument(skip_all, fields(repair = options.repair))]
pub async fn verify(state: &SyncContext, options: Options) -> AppResult<Report> {
    let mut report = Report::default();
    for table in Aggregate::ALL {
        report
            .collections
            .push(verify_table(state, table, options).await?);
    }
    Ok(report)
}

async fn verify_table(
    state: &SyncContext,
    table: Aggregate,
    options: Options,
) -> AppResult<CollectionReport> {
    let collection = table.collection();
    let mut report = CollectionReport {
        collection,
        ..Default::default()
    };
    let mut after: Option<Uuid> = None;
    loop {
        let rows = source::rows(table, state.sql(), Rows::After(after), options.batch_size).await?;
        let lower = after.map(|id| id.to_string());
        let Some(last) = rows.last() else {
            // Past the last row, every live document is extra.
            check_tail(state, table, &mut report, lower, options).await?;
            break;
        };
        let upto = last.id.to_string();
        after = Some(last.id);
        report.rows += rows.len() as u64;
        let docs = readmodel::range(
            state.read_model(),
            collection,
            lower.as_deref(),
            Some(&upto),
            0,
        )
        .await?;
        let mut stored: HashMap<String, Document> = docs
            .into_iter()
            .map(|doc| (readmodel::id_of(&doc), doc))
            .collect();
        let mut drifted: Vec<(&'static str, Fix)> = Vec::new();
        for row in &rows {
            let doc = stored.remove(&row.id.to_string());
            if let Some(drift) = compare(row, doc.as_ref(), &mut report) {
                drifted.push(drift);
            }
        }
        drifted.extend(extras(state, table, stored.into_values(), &mut report).await?);
        settle(state, table, &mut report, drifted, options).await?;
    }
    Ok(report)
}

/// How `doc` differs from what the worker would write for `row`, if it does.
fn compare(
    row: &SourceRow,
    doc: Option<&Document>,
    report: &mut CollectionReport,
) -> Option<(&'static str, Fix)> {
    let projected = row.project();
    let (kind, bump_above) = match doc {
        None => ("missing", None),
        Some(doc) => {
            let version = readmodel::version_of(doc);
            if readmodel::is_tombstone(doc) {
                ("missing", (version >= row.version).then_some(version))
            } else if version < row.version {
                ("stale", None)
            } else if version > row.version
                || readmodel::fingerprint(doc, &projected.doc)
                    != readmodel::fingerprint(&projected.doc, &projected.doc)
            {
                ("changed", Some(version))
            } else {
                report.in_sync += 1;
                return None;
            }
        }
    };
    Some((
        kind,
        Fix::Current {
            id: row.id,
            seen: row.version,
            bump_above,
        },
    ))
}

/// The live documents among `docs` that have no row, as fixes (and the
/// ids no row can ever have, counted as extra).
async fn extras(
    state: &SyncContext,
    table: Aggregate,
    docs: impl IntoIterator<Item = Document>,
    report: &mut CollectionReport,
) -> AppResult<Vec<(&'static str, Fix)>> {
    let (orphans, foreign) = orphans(state, table, docs).await?;
    for id in foreign {
        // Only a human can remove these.
        report.extra += 1;
        report.note("extra (not a row id)", &id);
    }
    Ok(orphans
        .into_iter()
        .map(|(id, version)| {
            let fix = Fix::Tombstone {
                id,
                version: version + 1,
            };
            ("extra", fix)
        })
        .collect())
}

/// Splits the live documents among `docs` that have no row into those with
/// a row id (`(id, version)`) and those whose `_id` no row can have. Rows
/// are looked up after the documents were read: a row committed after its
/// page was read (whose document the worker then wrote) is no orphan.
pub(crate) async fn orphans(
    state: &SyncContext,
    table: Aggregate,
    docs: impl IntoIterator<Item = Document>,
) -> AppResult<(Vec<(Uuid, i64)>, Vec<String>)> {
    let mut candidates = Vec::new();
    let mut foreign = Vec::new();
    for doc in docs {
        if readmodel::is_tombstone(&doc) {
            continue;
        }
        let id = readmodel::id_of(&doc);
        match Uuid::parse_str(&id) {
            Ok(uuid) if uuid.to_string() == id => {
                candidates.push((uuid, readmodel::version_of(&doc)));
            }
            _ => foreign.push(id),
        }
    }
    let ids: Vec<Uuid> = candidates.iter().map(|(id, _)| *id).collect();
    let existing: HashSet<Uuid> =
        source::rows(table, state.sql(), Rows::Ids(&ids), ids.len() as u64)
            .await?
            .into_iter()
            .map(|row| row.id)
            .collect();
    candidates.retain(|(id, _)| !existing.contains(id));
    Ok((candidates, foreign))
}

/// Documents after the last row, a page at a time.
async fn check_tail(
    state: &SyncContext,
    table: Aggregate,
    report: &mut CollectionReport,
    after: Option<String>,
    options: Options,
) -> AppResult<()> {
    let limit = i64::try_from(options.batch_size).unwrap_or(500);
    let mut pages = readmodel::Tail::new(state.read_model(), table.collection(), after, limit);
    while let Some(docs) = pages.next().await? {
        let drifted = extras(state, table, docs, report).await?;
        settle(state, table, report, drifted, options).await?;
    }
    Ok(())
}

/// Splits drift into pending and real, counts it, and repairs if asked.
async fn settle(
    state: &SyncContext,
    table: Aggregate,
    report: &mut CollectionReport,
    drifted: Vec<(&'static str, Fix)>,
    options: Options,
) -> AppResult<()> {
    if drifted.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = drifted.iter().map(|(_, fix)| fix_id(fix)).collect();
    let pending = worker_outbox::pending_aggregates(state.sql(), table.name(), &ids).await?;
    let mut fixes = Vec::new();
    for (kind, fix) in drifted {
        let id = fix_id(&fix);
        if pending.contains(&id) {
            report.pending += 1;
            continue;
        }
        match kind {
            "missing" => report.missing += 1,
            "stale" => report.stale += 1,
            "changed" => report.changed += 1,
            _ => report.extra += 1,
        }
        report.note(kind, &id.to_string());
        fixes.push(fix);
    }
    if options.repair && !fixes.is_empty() {
        report.repairs_enqueued += repair(state, table, fixes).await?;
    }
    Ok(())
}
