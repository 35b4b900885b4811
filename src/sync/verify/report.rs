//! What `verify` reports: per collection, and in total.
use std::fmt;

use serde::Serialize;

/// What `verify` found in one collection.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CollectionReport {
    pub collection: &'static str,
    /// Source rows compared.
    pub rows: u64,
    pub in_sync: u64,
    /// Drifted, but an event that will fix it is waiting.
    pub pending: u64,
    /// No document, or a tombstone older than the row.
    pub missing: u64,
    /// A document with an older version.
    pub stale: u64,
    /// Same version, different content (or a version ahead of the source).
    pub changed: u64,
    /// A live document without a source row.
    pub extra: u64,
    /// Repair events enqueued (`--repair`).
    pub repairs_enqueued: u64,
    /// A few drifted ids, for the operator.
    pub examples: Vec<String>,
}

impl CollectionReport {
    pub fn drift(&self) -> u64 {
        self.missing + self.stale + self.changed + self.extra
    }

    pub(super) fn note(&mut self, kind: &str, id: &str) {
        if self.examples.len() < 5 {
            self.examples.push(format!("{kind} {id}"));
        }
    }
}

/// The whole comparison.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub collections: Vec<CollectionReport>,
}

impl Report {
    pub fn drift(&self) -> u64 {
        self.collections.iter().map(CollectionReport::drift).sum()
    }

    pub fn pending(&self) -> u64 {
        self.collections.iter().map(|c| c.pending).sum()
    }

    pub fn repairs_enqueued(&self) -> u64 {
        self.collections.iter().map(|c| c.repairs_enqueued).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "collection",
            "rows",
            "in_sync",
            "pending",
            "missing",
            "stale",
            "changed",
            "extra",
            "repairing"
        )?;
        for c in &self.collections {
            writeln!(
                f,
                "{:<16} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
                c.collection,
                c.rows,
                c.in_sync,
                c.pending,
                c.missing,
                c.stale,
                c.changed,
                c.extra,
                c.repairs_enqueued
            )?;
            for example in &c.examples {
                writeln!(f, "    {example}")?;
            }
        }
        write!(f, "drift: {}, pending: {}", self.drift(), self.pending())
    }
}
