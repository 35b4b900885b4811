//! Projection: how one outbox event becomes one MongoDB document.
//!
//! A document is the row's public columns under their column names, with
//! `_id` = the row's UUID as a string, `version` = the row's version, times as
//! BSON dates and, for users and messages, folded search terms
//! (`search_words`, `search_prefixes`). A tombstone is `{_id, version,
//! deleted: true}`. The mapping is pure, so replaying events gives the same
//! documents.
use mongodb::bson::{self, Bson, Document};
use serde_json::Value;
use uuid::Uuid;

use crate::{domain::search, write::outbox::aggregate};

/// Why an event cannot be projected. Such an event will never succeed by
/// retrying, so the worker parks it.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),
    #[error("payload is not a JSON object")]
    NotAnObject,
    #[error("field {field:?}: {reason}")]
    BadField { field: String, reason: String },
}

/// One document to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub collection: &'static str,
    pub id: String,
    pub version: i64,
    pub doc: Document,
}

/// The collection an aggregate type is projected into.
pub fn collection_of(aggregate_type: &str) -> Result<&'static str, ProjectError> {
    Ok(match aggregate_type {
        aggregate::USER => "users",
        aggregate::TODO => "todos",
        aggregate::STUDY_SESSION => "study_sessions",
        aggregate::STUDY_TOTAL => "study_totals",
        aggregate::ROOM => "rooms",
        aggregate::MESSAGE => "messages",
        other => return Err(ProjectError::UnknownAggregate(other.to_owned())),
    })
}

/// Every read-model collection that mirrors a source table.
pub const COLLECTIONS: [&str; 6] = [
    "users",
    "todos",
    "study_sessions",
    "study_totals",
    "rooms",
    "messages",
];

pub fn project(
    aggregate_type: &str,
    aggregate_id: Uuid,
    version: i64,
    payload: &Value,
) -> Result<Projected, ProjectError> {
    let collection = collection_of(aggregate_type)?;
    let object = payload.as_object().ok_or(ProjectError::NotAnObject)?;
    let id = aggregate_id.to_string();
    let mut doc = Document::new();
    doc.insert("_id", id.clone());
    doc.insert("version", version);
    if object.get("deleted").and_then(Value::as_bool) == Some(true) {
        doc.insert("deleted", true);
        return Ok(Projected {
            collection,
            id,
            version,
            doc,
        });
    }
    for (key, value) in object {
        if matches!(key.as_str(), "id" | "version") {
            continue;
        }
        doc.insert(key.clone(), field(key, value)?);
    }
    let searchable = match aggregate_type {
        aggregate::USER => object.get("name"),
        aggregate::MESSAGE => object.get("body"),
        _ => None,
    };
    if let Some(text) = searchable.and_then(Value::as_str) {
        let words = search::words(text);
        doc.insert("search_prefixes", search::prefixes(&words));
        doc.insert("search_words", words);
    }
    Ok(Projected {
        collection,
        id,
        version,
        doc,
    })
}

/// Times (`*_at`) become BSON dates; everything else maps as JSON does.
fn field(key: &str, value: &Value) -> Result<Bson, ProjectError> {
    let bad = |reason: String| ProjectError::BadField {
        field: key.to_owned(),
        reason,
    };
    if key.ends_with("_at") {
        return match value {
            Value::Null => Ok(Bson::Null),
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis())))
                .map_err(|e| bad(format!("not an RFC 3339 time: {e}"))),
            other => Err(bad(format!("expected a time, got {other}"))),
        };
    }
    bson::to_bson(value).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_becomes_a_document_with_id_version_dates_and_terms() {
        let id = Uuid::new_v4();
        let p = project(
            "message",
            id,
            3,
            &json!({"id": id, "version": 3, "room_id": "r", "body": "Hello Wörld", "created_at": "2026-11-27T10:00:00.123Z"}),
        )
        .unwrap();
        assert_eq!(p.collection, "messages");
        assert_eq!(p.doc.get_str("_id").unwrap(), id.to_string());
        assert_eq!(p.doc.get_i64("version").unwrap(), 3);
        assert_eq!(
            p.doc.get_datetime("created_at").unwrap().timestamp_millis() % 1000,
            123
        );
        let words: Vec<&str> = p
            .doc
            .get_array("search_words")
            .unwrap()
            .iter()
            .filter_map(Bson::as_str)
            .collect();
        assert_eq!(words, ["hello", "world"]);
    }

    #[test]
    fn tombstones_and_bad_events_are_recognised() {
        let id = Uuid::new_v4();
        let t = project(
            "todo",
            id,
            5,
            &json!({"id": id, "version": 5, "deleted": true}),
        )
        .unwrap();
        assert_eq!(
            t.doc,
            bson::doc! {"_id": id.to_string(), "version": 5_i64, "deleted": true}
        );
        assert!(matches!(
            project("nope", id, 1, &json!({})),
            Err(ProjectError::UnknownAggregate(_))
        ));
        assert!(matches!(
            project("todo", id, 1, &json!([1])),
            Err(ProjectError::NotAnObject)
        ));
        assert!(project("todo", id, 1, &json!({"due_at": "yesterday"})).is_err());
    }
}
