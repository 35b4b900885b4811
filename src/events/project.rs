//! Projection: how one outbox event becomes one MongoDB document.
//!
//! The payload is decoded into its typed document (`events::decode`, which
//! also upgrades payloads older releases wrote) and turned into BSON by
//! `Doc::to_document`: `_id` = the row's UUID as a string, `version` = the
//! row's version, the public columns under their column names, times as BSON
//! dates and, for users and messages, folded search terms. A tombstone is
//! `{_id, version, deleted: true}`. The mapping is pure, so replaying events
//! gives the same documents.
use mongodb::bson::{doc, Document};
use serde_json::Value;
use uuid::Uuid;

use crate::events::{self, Aggregate, DecodeError, Doc, Payload, Was};

/// Why an event cannot be projected. Such an event will not succeed by
/// retrying with this release, so the worker parks it.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),
    #[error(transparent)]
    Payload(#[from] DecodeError),
}

/// One document to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    pub collection: &'static str,
    pub id: String,
    pub version: i64,
    pub doc: Document,
}

/// Every read-model collection that mirrors a source table.
pub fn collections() -> impl Iterator<Item = &'static str> {
    Aggregate::ALL.into_iter().map(Aggregate::collection)
}

/// Projects a stored event (`outbox.aggregate_type` and `payload`).
pub fn project(
    aggregate_type: &str,
    aggregate_id: Uuid,
    version: i64,
    payload: &Value,
) -> Result<Projected, ProjectError> {
    let aggregate = Aggregate::parse(aggregate_type)
        .ok_or_else(|| ProjectError::UnknownAggregate(aggregate_type.to_owned()))?;
    Ok(match events::decode(aggregate, payload)? {
        Payload::Doc(doc) => of_doc(&doc, aggregate_id, version),
        Payload::Deleted(was) => tombstone_at(aggregate, aggregate_id, version, &was),
    })
}

/// The document for row `id` at `version` holding `doc`.
pub fn of_doc(doc: &Doc, id: Uuid, version: i64) -> Projected {
    Projected {
        collection: doc.aggregate().collection(),
        id: id.to_string(),
        version,
        doc: doc.to_document(id, version),
    }
}

/// The tombstone of row `id` at `version`.
pub fn tombstone(aggregate: Aggregate, id: Uuid, version: i64) -> Projected {
    tombstone_at(aggregate, id, version, &Was::default())
}

/// The tombstone of row `id` at `version`, saying where the row was under
/// `was` (fields no reader of live documents queries).
pub fn tombstone_at(aggregate: Aggregate, id: Uuid, version: i64, was: &Was) -> Projected {
    let mut doc = doc! {"_id": id.to_string(), "version": version, "deleted": true};
    if !was.is_empty() {
        let mut place = Document::new();
        if let Some(room_id) = was.room_id {
            place.insert("room_id", room_id.to_string());
        }
        if let Some(seq) = was.event_seq {
            place.insert("event_seq", seq);
        }
        if let Some(period) = &was.period {
            place.insert("period", period.as_str());
        }
        if let Some(start) = was.period_start {
            place.insert("period_start", start.to_string());
        }
        doc.insert("was", place);
    }
    Projected {
        collection: aggregate.collection(),
        id: id.to_string(),
        version,
        doc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{self, Bson};
    use serde_json::json;

    #[test]
    fn a_row_becomes_a_document_with_id_version_dates_and_terms() {
        let id = Uuid::new_v4();
        let p = project(
            "message",
            id,
            3,
            &json!({"id": id, "version": 3, "room_id": Uuid::new_v4(), "sender_id": Uuid::new_v4(), "body": "Hello Wörld", "created_at": "2026-11-27T10:00:00.123Z", "updated_at": "2026-11-27T10:00:00.123Z"}),
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
            Err(ProjectError::Payload(DecodeError::NotAnObject))
        ));
        assert!(project("todo", id, 1, &json!({"due_at": "yesterday"})).is_err());
    }

    #[test]
    fn a_payload_of_the_previous_release_projects_to_the_document_it_wrote() {
        // A schema 1 room event, and the document the previous release's
        // projection made of it: ids as strings, `*_at` as dates, numbers
        // as 64-bit integers.
        let id = Uuid::new_v4();
        let (creator, member) = (Uuid::new_v4(), Uuid::new_v4());
        let stored = json!({
            "id": id, "version": 2, "name": "Algebra", "created_by": creator,
            "member_ids": [creator, member],
            "created_at": "2026-11-27T10:00:00.5Z", "updated_at": "2026-11-28T10:00:00Z"
        });
        let date = |s: &str| {
            Bson::DateTime(bson::DateTime::from_millis(
                chrono::DateTime::parse_from_rfc3339(s)
                    .unwrap()
                    .timestamp_millis(),
            ))
        };
        let expected = bson::doc! {
            "_id": id.to_string(), "version": 2_i64, "name": "Algebra",
            "created_by": creator.to_string(),
            "member_ids": [creator.to_string(), member.to_string()],
            "created_at": date("2026-11-27T10:00:00.5Z"),
            "updated_at": date("2026-11-28T10:00:00Z"),
        };
        assert_eq!(project("room", id, 2, &stored).unwrap().doc, expected);

        let total = json!({
            "id": id, "version": 7, "user_id": creator, "period": "week",
            "period_start": "2026-11-23", "minutes": 90, "sessions": 2,
            "created_at": "2026-11-23T08:00:00Z", "updated_at": "2026-11-24T08:00:00Z"
        });
        let doc = project("study_total", id, 7, &total).unwrap().doc;
        assert_eq!(doc.get_str("period_start").unwrap(), "2026-11-23");
        assert_eq!(doc.get_i64("minutes").unwrap(), 90);
        assert_eq!(doc.get_i64("sessions").unwrap(), 2);
        assert_eq!(doc.get_str("user_id").unwrap(), creator.to_string());
        assert!(doc.get_datetime("updated_at").is_ok());
    }
}
