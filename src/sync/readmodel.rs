//! Reading documents back from MongoDB, for verify and resync.
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use sha2::{Digest, Sha256};

use crate::error::AppResult;

/// Documents with `after < _id <= upto` (an absent bound is open), in `_id`
/// order, at most `limit` (0: no limit).
///
/// Row ids are UUIDs and documents store them as lowercase hyphenated
/// strings, whose byte order is the UUID order of the SQL keyset pages: one
/// range per page pairs every row with its document and reveals the
/// documents in between that have no row, in one index range scan.
#[tracing::instrument(skip_all, fields(collection))]
pub async fn range(
    db: &mongodb::Database,
    collection: &str,
    after: Option<&str>,
    upto: Option<&str>,
    limit: i64,
) -> AppResult<Vec<Document>> {
    let mut bounds = Document::new();
    if let Some(after) = after {
        bounds.insert("$gt", after);
    }
    if let Some(upto) = upto {
        bounds.insert("$lte", upto);
    }
    let filter = if bounds.is_empty() {
        doc! {}
    } else {
        doc! { "_id": bounds }
    };
    let docs = db
        .collection::<Document>(collection)
        .find(filter)
        .sort(doc! { "_id": 1 })
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    Ok(docs)
}

/// The documents after a given `_id` to the end of a collection, a page of
/// at most `limit` at a time, in `_id` order.
pub struct Tail<'a> {
    db: &'a mongodb::Database,
    collection: &'a str,
    after: Option<String>,
    limit: i64,
    done: bool,
}

impl<'a> Tail<'a> {
    pub fn new(
        db: &'a mongodb::Database,
        collection: &'a str,
        after: Option<String>,
        limit: i64,
    ) -> Self {
        Self {
            db,
            collection,
            after,
            limit,
            done: false,
        }
    }

    /// The next page; `None` once the collection is exhausted.
    pub async fn next(&mut self) -> AppResult<Option<Vec<Document>>> {
        if self.done {
            return Ok(None);
        }
        let docs = range(
            self.db,
            self.collection,
            self.after.as_deref(),
            None,
            self.limit,
        )
        .await?;
        match docs.last() {
            Some(last) => {
                self.after = Some(id_of(last));
                Ok(Some(docs))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

/// A document's `_id` as text.
pub fn id_of(doc: &Document) -> String {
    match doc.get("_id") {
        Some(Bson::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A document's `version` (0 when it has none).
pub fn version_of(doc: &Document) -> i64 {
    match doc.get("version") {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Double(v)) => *v as i64,
        _ => 0,
    }
}

pub fn is_tombstone(doc: &Document) -> bool {
    doc.get_bool("deleted").unwrap_or(false)
}

/// A checksum over the fields of `shape` (the projected document), read
/// from `doc`: equal for two documents that agree on every projected field,
/// whatever their key order or integer width.
pub fn fingerprint(doc: &Document, shape: &Document) -> [u8; 32] {
    let mut keys: Vec<&String> = shape.keys().collect();
    keys.sort();
    let mut hasher = Sha256::new();
    for key in keys {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        let value = doc.get(key).map(normalize).unwrap_or(Bson::Null);
        hasher.update(value.into_relaxed_extjson().to_string().as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

fn normalize(value: &Bson) -> Bson {
    match value {
        Bson::Int32(n) => Bson::Int64(i64::from(*n)),
        Bson::Array(items) => Bson::Array(items.iter().map(normalize).collect()),
        Bson::Document(d) => {
            let mut keys: Vec<&String> = d.keys().collect();
            keys.sort();
            let mut sorted = Document::new();
            for key in keys {
                if let Some(v) = d.get(key) {
                    sorted.insert(key.clone(), normalize(v));
                }
            }
            Bson::Document(sorted)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_and_integer_width_but_not_values() {
        let shape = doc! {"_id": "a", "version": 2_i64, "n": 1_i64};
        let same = doc! {"n": 1_i32, "version": 2_i32, "_id": "a", "extra": true};
        let other = doc! {"_id": "a", "version": 2_i64, "n": 2_i64};
        assert_eq!(fingerprint(&shape, &shape), fingerprint(&same, &shape));
        assert_ne!(fingerprint(&shape, &shape), fingerprint(&other, &shape));
    }
}
