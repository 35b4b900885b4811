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
/// collection. A batch that needs a single command (one collection, one
/// kind of statement: the common case under steady traffic) sends it with
/// that write concern itself and needs no barrier.
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
    let first_commands = commands(first, guard);
    let commands_after = commands(docs, guard);
    // Every document needs a command, so a single command means one of the
    // two lists is empty. It carries the barrier's write concern itself:
    // MongoDB waits for it after statements that failed too (a duplicate key
    // waits for the newest write the node knows of), so a stale verdict is
    // as durable as the barrier would make it.
    if first_commands.len() + commands_after.len() == 1 {
        let mut commands: Vec<Command> = first_commands.into_iter().chain(commands_after).collect();
        commands[0].body.insert("writeConcern", durable());
        let verdicts = send(db, first.len() + docs.len(), commands).await;
        return if first.is_empty() {
            (Vec::new(), verdicts)
        } else {
            (verdicts, Vec::new())
        };
    }
    let mut before = send(db, first.len(), first_commands).await;
    let blocked = before.iter().find_map(|v| match v {
        Verdict::Rejected(e) | Verdict::Unavailable(e) => Some(e.clone()),
        Verdict::Applied | Verdict::Stale => None,
    });
    let mut after = match blocked {
        Some(error) => vec![Verdict::Unavailable(format!("waiting for {error}")); docs.len()],
        None => send(db, docs.len(), commands_after).await,
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

/// One write command and the positions of the documents it carries.
struct Command {
    collection: &'static str,
    verb: &'static str,
    body: Document,
    indices: Vec<usize>,
}

/// Runs `commands` (carrying `n` documents between them) concurrently and
/// returns one verdict per document, in order.
async fn send(db: &mongodb::Database, n: usize, commands: Vec<Command>) -> Vec<Verdict> {
    let runs = commands.into_iter().map(|command| async move {
        let Command {
            collection,
            verb,
            body,
            indices,
        } = command;
        let verdicts = run(db, collection, verb, body, indices.len()).await;
        indices.into_iter().zip(verdicts).collect::<Vec<_>>()
    });
    let mut out = vec![Verdict::Unavailable("not attempted".to_owned()); n];
    for group in join_all(runs).await {
        for (index, verdict) in group {
            out[index] = verdict;
        }
    }
    out
}

/// Journaled and majority-committed.
fn durable() -> Document {
    doc! { "w": "majority", "j": true }
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
        "writeConcern": durable(),
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

/// The unordered commands that write `docs`, with the server's default
/// write concern: per collection, at most two. Under [`Guard::Newer`], first
/// versions are inserted: if any version of the document is stored it is at
/// least as new, and MongoDB answers duplicate key exactly as the guarded
/// upsert would, at a fraction of the cost (no query per statement).
/// Everything else is a guarded replacement upsert.
fn commands(docs: &[Projected], guard: Guard) -> Vec<Command> {
    let mut groups: BTreeMap<&'static str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (index, projected) in docs.iter().enumerate() {
        let (fresh, rest) = groups.entry(projected.collection).or_default();
        if guard == Guard::Newer && projected.version == 1 {
            fresh.push(index);
        } else {
            rest.push(index);
        }
    }
    let op = match guard {
        Guard::Newer => "$lt",
        Guard::NotOlder => "$lte",
    };
    let mut commands = Vec::new();
    for (collection, (fresh, rest)) in groups {
        if !fresh.is_empty() {
            let documents: Vec<Document> = fresh.iter().map(|&i| docs[i].doc.clone()).collect();
            commands.push(Command {
                collection,
                verb: "insert",
                body: doc! { "insert": collection, "documents": documents, "ordered": false },
                indices: fresh,
            });
        }
        if !rest.is_empty() {
            let updates: Vec<Document> = rest
                .iter()
                .map(|&i| {
                    let p = &docs[i];
                    doc! {
                        "q": { "_id": &p.id, "version": { op: p.version } },
                        "u": p.doc.clone(),
                        "upsert": true,
                    }
                })
                .collect();
            commands.push(Command {
                collection,
                verb: "update",
                body: doc! { "update": collection, "updates": updates, "ordered": false },
                indices: rest,
            });
        }
    }
    commands
}

/// Runs one write command of `n` statements; one verdict per statement.
async fn run(
    db: &mongodb::Database,
    collection: &str,
    verb: &str,
    command: Document,
    n: usize,
) -> Vec<Verdict> {
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
