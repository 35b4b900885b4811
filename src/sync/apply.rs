//! Writing projected documents into MongoDB: per collection, one unordered
//! `insert` command for first versions and one unordered `update` command of
//! version-guarded replacement upserts for the rest.
//!
//! The guard (`{_id, version: {$lt: v}}` with `upsert: true`) matches only an
//! older document; when the stored one is as new or newer, the upsert tries
//! to insert a second document with the same `_id` and MongoDB answers
//! duplicate key (E11000) on the `_id` index: that statement was stale and is
//! skipped. Tombstones are ordinary documents, so a deleted row stays deleted.
use std::collections::BTreeMap;

use futures::future::join_all;
use mongodb::bson::{doc, Bson, Document};

use super::project::Projected;

/// Which stored documents an upsert may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Only older ones (`$lt`): live events, where an equal version is a
    /// duplicate delivery.
    Newer,
    /// Older or equal ones (`$lte`): rebuilding from the source rows, which
    /// hold exactly the state their version names, so rewriting an equal
    /// version also repairs a document whose content was damaged.
    NotOlder,
}

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Applied,
    /// MongoDB already holds this version or a newer one.
    Stale,
    /// MongoDB refused this document (e.g. a unique index): retrying the
    /// same document will not help, so it counts towards parking.
    Rejected(String),
    /// The command did not complete (server down, timeout): retry later.
    Unavailable(String),
}

/// Applies `docs` (at most one per `(collection, _id)`) and returns one
/// verdict per document, in order. Collections are written concurrently with
/// the server's default write concern, then one durability barrier (see
/// [`barrier`]) makes them all journaled and majority-committed before any is
/// reported applied: one journal flush per batch instead of one per
/// collection.
#[tracing::instrument(skip_all, fields(docs = docs.len(), ?guard))]
pub async fn apply(db: &mongodb::Database, docs: &[Projected], guard: Guard) -> Vec<Verdict> {
    apply_after(db, &[], docs, guard).await.1
}

/// Like [`apply`], but writes `first` before `docs`, and `docs` only once
/// every document of `first` is in place (applied, or already newer): a
/// reader who sees any of `docs` also sees `first`. One barrier covers both.
#[tracing::instrument(skip_all, fields(first = first.len(), docs = docs.len(), ?guard))]
pub async fn apply_after(
    db: &mongodb::Database,
    first: &[Projected],
    docs: &[Projected],
    guard: Guard,
) -> (Vec<Verdict>, Vec<Verdict>) {
    let mut before = write(db, first, guard).await;
    let blocked = before.iter().find_map(|v| match v {
        Verdict::Rejected(e) | Verdict::Unavailable(e) => Some(e.clone()),
        Verdict::Applied | Verdict::Stale => None,
    });
    let mut after = match blocked {
        Some(error) => vec![Verdict::Unavailable(format!("waiting for {error}")); docs.len()],
        None => write(db, docs, guard).await,
    };
    let wrote = before
        .iter()
        .chain(&after)
        .any(|v| matches!(v, Verdict::Applied | Verdict::Stale));
    if wrote {
        if let Err(err) = barrier(db).await {
            // Not known to be durable: report them unavailable so they are
            // retried (re-applying is idempotent under the version guard).
            let text = format!("durability barrier: {err}");
            for verdict in before.iter_mut().chain(after.iter_mut()) {
                if matches!(verdict, Verdict::Applied | Verdict::Stale) {
                    *verdict = Verdict::Unavailable(text.clone());
                }
            }
        }
    }
    (before, after)
}

/// One unordered command per collection, all collections concurrently,
/// with the server's default write concern.
async fn write(db: &mongodb::Database, docs: &[Projected], guard: Guard) -> Vec<Verdict> {
    let mut groups: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (index, projected) in docs.iter().enumerate() {
        groups.entry(projected.collection).or_default().push(index);
    }
    let runs = groups.into_iter().map(|(collection, indices)| async move {
        let verdicts = apply_collection(db, collection, docs, &indices, guard).await;
        indices.into_iter().zip(verdicts).collect::<Vec<_>>()
    });
    let mut out = vec![Verdict::Unavailable("not attempted".to_owned()); docs.len()];
    for group in join_all(runs).await {
        for (index, verdict) in group {
            out[index] = verdict;
        }
    }
    out
}

/// Events are marked processed once `apply` returns, so what it wrote must
/// survive a crash of the server. A write acknowledged with `{w: "majority",
/// j: true}` is journaled and majority-committed together with every write
/// the same node acknowledged before it (the journal and the oplog are
/// sequential), so one such write after the batch's commands covers them
/// all. Each process touches its own barrier document, so concurrent workers
/// never contend on it.
async fn barrier(db: &mongodb::Database) -> Result<(), String> {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let id = ID.get_or_init(|| uuid::Uuid::new_v4().to_string());
    let command = doc! {
        "update": BARRIER_COLLECTION,
        "updates": [{
            "q": { "_id": id.as_str() },
            "u": { "$inc": { "n": 1_i64 } },
            "upsert": true,
        }],
        "writeConcern": { "w": "majority", "j": true },
    };
    let response = db.run_command(command).await.map_err(|e| e.to_string())?;
    if let Ok(concern) = response.get_document("writeConcernError") {
        return Err(format!("write concern error {concern}"));
    }
    if let Ok(errors) = response.get_array("writeErrors") {
        if !errors.is_empty() {
            return Err(format!("write errors {errors:?}"));
        }
    }
    Ok(())
}

/// Holds one small document per worker process; not part of the read model.
pub const BARRIER_COLLECTION: &str = "_sync_barrier";

/// A collection's documents in at most two unordered commands. Under
/// [`Guard::Newer`], first versions are inserted: if any version of the
/// document is stored it is at least as new, and MongoDB answers duplicate
/// key exactly as the guarded upsert would, at a fraction of the cost (no
/// query per statement). Everything else is a guarded replacement upsert.
async fn apply_collection(
    db: &mongodb::Database,
    collection: &str,
    docs: &[Projected],
    indices: &[usize],
    guard: Guard,
) -> Vec<Verdict> {
    let (fresh, rest): (Vec<usize>, Vec<usize>) =
        (0..indices.len()).partition(|&k| guard == Guard::Newer && docs[indices[k]].version == 1);
    let op = match guard {
        Guard::Newer => "$lt",
        Guard::NotOlder => "$lte",
    };
    // Durability comes from the barrier that follows every batch.
    let insert = (!fresh.is_empty()).then(|| {
        let documents: Vec<Document> = fresh
            .iter()
            .map(|&k| docs[indices[k]].doc.clone())
            .collect();
        doc! { "insert": collection, "documents": documents, "ordered": false }
    });
    let update = (!rest.is_empty()).then(|| {
        let updates: Vec<Document> = rest
            .iter()
            .map(|&k| {
                let p = &docs[indices[k]];
                doc! {
                    "q": { "_id": &p.id, "version": { op: p.version } },
                    "u": p.doc.clone(),
                    "upsert": true,
                }
            })
            .collect();
        doc! { "update": collection, "updates": updates, "ordered": false }
    });
    let (inserted, updated) = futures::join!(
        run(db, collection, "insert", insert, fresh.len()),
        run(db, collection, "update", update, rest.len())
    );
    let mut verdicts = vec![Verdict::Applied; indices.len()];
    for (k, verdict) in fresh
        .into_iter()
        .zip(inserted)
        .chain(rest.into_iter().zip(updated))
    {
        verdicts[k] = verdict;
    }
    verdicts
}

/// Runs one write command of `n` statements; one verdict per statement.
async fn run(
    db: &mongodb::Database,
    collection: &str,
    verb: &str,
    command: Option<Document>,
    n: usize,
) -> Vec<Verdict> {
    let Some(command) = command else {
        return Vec::new();
    };
    let response = match db.run_command(command).await {
        Ok(response) => response,
        Err(err) => {
            let text = format!("{verb} {collection}: {err}");
            return vec![Verdict::Unavailable(text); n];
        }
    };
    if let Ok(concern) = response.get_document("writeConcernError") {
        let text = format!("{verb} {collection}: write concern error {concern}");
        return vec![Verdict::Unavailable(text); n];
    }
    let mut verdicts = vec![Verdict::Applied; n];
    if let Ok(errors) = response.get_array("writeErrors") {
        for error in errors.iter().filter_map(Bson::as_document) {
            let Some(index) = number(error.get("index")).and_then(|i| usize::try_from(i).ok())
            else {
                continue;
            };
            let Some(slot) = verdicts.get_mut(index) else {
                continue;
            };
            *slot = if is_stale(error) {
                Verdict::Stale
            } else {
                let message = error.get_str("errmsg").unwrap_or("write error");
                Verdict::Rejected(format!("{verb} {collection}: {message}"))
            };
        }
    }
    verdicts
}

/// Duplicate key on `_id` only: a unique index on another field is a real
/// rejection, not a newer stored version.
fn is_stale(error: &Document) -> bool {
    if number(error.get("code")) != Some(11000) {
        return false;
    }
    match error.get_document("keyPattern") {
        Ok(pattern) => pattern.keys().eq(["_id"]),
        Err(_) => error
            .get_str("errmsg")
            .is_ok_and(|m| m.contains("index: _id_ ")),
    }
}

fn number(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_duplicate_id_means_stale() {
        assert!(is_stale(
            &doc! {"index": 0, "code": 11000, "keyPattern": {"_id": 1}}
        ));
        assert!(!is_stale(
            &doc! {"index": 0, "code": 11000, "keyPattern": {"title": 1}}
        ));
        assert!(is_stale(
            &doc! {"code": 11000, "errmsg": "E11000 duplicate key error collection: d.t index: _id_ dup key"}
        ));
        assert!(!is_stale(
            &doc! {"code": 121, "errmsg": "Document failed validation"}
        ));
    }
}
