//! Payloads as the outbox stores them, and the one place where payloads
//! written by an older release are brought to the current schema.
//!
//! Schema 2 (this release): `{"schema": 2, ...the document's fields}`, or
//! `{"schema": 2, "deleted": true}` for a tombstone (with `"was"`, where the
//! row was, for the kinds whose readers need it: see [`Was`]). The row's id
//! and version are the outbox row's own columns, so they are not repeated.
//!
//! Schema 1 (releases before schema numbers): no `schema` field, and the
//! row's `id` and `version` inside the payload as well.
use chrono::NaiveDate;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Aggregate, Doc};

/// The payload schema this release writes.
pub const SCHEMA: i64 = 2;

/// What an event says about its row.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The row's whole public state.
    Doc(Doc),
    /// The row is gone.
    Deleted(Was),
}

/// Where a deleted row was, for the readers that place a deletion: the
/// room and change number of a deleted message (subscribers on every
/// instance hear of it), the bucket of a study total that fell to nothing
/// (its boards are computed again). Ids, numbers and dates only: never
/// anything a person wrote or is called.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Was {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<NaiveDate>,
}

impl Was {
    pub fn is_empty(&self) -> bool {
        *self == Was::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not a JSON object")]
    NotAnObject,
    #[error(
        "payload schema {0} was written by a newer release: run that release's worker, \
         then `studysync worker replay-parked`"
    )]
    NewerSchema(i64),
    #[error("payload schema {0:?} is not a schema number")]
    BadSchema(Value),
    #[error("{0}")]
    Field(#[from] serde_json::Error),
}

/// The payload of an event carrying `doc`.
pub fn encode(doc: &Doc) -> Value {
    let value = match doc {
        Doc::User(d) => serde_json::to_value(d),
        Doc::Todo(d) => serde_json::to_value(d),
        Doc::StudySession(d) => serde_json::to_value(d),
        Doc::StudyTotal(d) => serde_json::to_value(d),
        Doc::Room(d) => serde_json::to_value(d),
        Doc::Message(d) => serde_json::to_value(d),
    };
    // Plain structs of strings, ids, times and numbers always serialise.
    let mut value = value.expect("a document serialises to JSON");
    if let Value::Object(fields) = &mut value {
        fields.insert("schema".to_owned(), SCHEMA.into());
    }
    value
}

/// The payload of a deletion.
pub fn tombstone(was: &Was) -> Value {
    let mut value = serde_json::json!({ "schema": SCHEMA, "deleted": true });
    if !was.is_empty() {
        // A struct of ids, numbers and dates always serialises.
        value["was"] = serde_json::to_value(was).expect("a tombstone serialises");
    }
    value
}

/// Reads a stored payload of any known schema.
pub fn decode(aggregate: Aggregate, payload: &Value) -> Result<Payload, DecodeError> {
    let mut fields = upgrade(payload)?;
    if fields.get("deleted").and_then(Value::as_bool) == Some(true) {
        let was = match fields.remove("was") {
            Some(was) => serde_json::from_value(was)?,
            None => Was::default(),
        };
        return Ok(Payload::Deleted(was));
    }
    let value = Value::Object(fields);
    fn typed<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
        Ok(serde_json::from_value(value)?)
    }
    let doc = match aggregate {
        Aggregate::User => Doc::User(typed(value)?),
        Aggregate::Todo => Doc::Todo(typed(value)?),
        Aggregate::StudySession => Doc::StudySession(typed(value)?),
        Aggregate::StudyTotal => Doc::StudyTotal(typed(value)?),
        Aggregate::Room => Doc::Room(typed(value)?),
        Aggregate::Message => Doc::Message(typed(value)?),
    };
    Ok(Payload::Doc(doc))
}

/// Brings a payload to schema [`SCHEMA`]; returns its fields without the
/// schema number.
fn upgrade(payload: &Value) -> Result<Map<String, Value>, DecodeError> {
    let mut fields = payload.as_object().ok_or(DecodeError::NotAnObject)?.clone();
    let schema = match fields.remove("schema") {
        None => 1,
        Some(value) => value.as_i64().ok_or(DecodeError::BadSchema(value))?,
    };
    match schema {
        1 => {
            // The outbox row's columns say which row and version; the
            // copies schema 1 kept in the payload are dropped.
            fields.remove("id");
            fields.remove("version");
        }
        SCHEMA => {}
        newer if newer > SCHEMA => return Err(DecodeError::NewerSchema(newer)),
        other => return Err(DecodeError::BadSchema(other.into())),
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{MessageDoc, TodoDoc};
    use serde_json::json;

    #[test]
    fn a_schema_1_event_from_the_previous_release_still_decodes() {
        // Exactly what the release before schema numbers stored.
        let stored = json!({
            "id": "7d0c39c9-4a8f-4b5e-9f51-2f4c1d4b8a10",
            "user_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "title": "Read chapter 3",
            "completed": true,
            "completed_at": "2026-11-27T10:00:00.123456Z",
            "due_at": null,
            "version": 3,
            "created_at": "2026-11-26T09:00:00Z",
            "updated_at": "2026-11-27T10:00:00.123456Z"
        });
        let Payload::Doc(Doc::Todo(todo)) = decode(Aggregate::Todo, &stored).unwrap() else {
            panic!("not a todo");
        };
        assert_eq!(todo.title, "Read chapter 3");
        assert!(todo.completed);
        assert_eq!(
            todo.completed_at.unwrap().to_rfc3339(),
            "2026-11-27T10:00:00.123456+00:00"
        );
        assert_eq!(todo.due_at, None);
        let old_tombstone =
            json!({"id": "7d0c39c9-4a8f-4b5e-9f51-2f4c1d4b8a10", "version": 4, "deleted": true});
        assert_eq!(
            decode(Aggregate::Todo, &old_tombstone).unwrap(),
            Payload::Deleted(Was::default())
        );
    }

    #[test]
    fn what_this_release_writes_reads_back_the_same() {
        let message = Doc::Message(MessageDoc {
            room_id: uuid::Uuid::new_v4(),
            sender_id: uuid::Uuid::new_v4(),
            body: "hello".into(),
            seq: Some(7),
            event_seq: Some(9),
            edited_at: Some(chrono::Utc::now()),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        });
        let payload = encode(&message);
        assert_eq!(payload["schema"], json!(SCHEMA));
        assert!(payload.get("id").is_none() && payload.get("version").is_none());
        assert_eq!(
            decode(Aggregate::Message, &payload).unwrap(),
            Payload::Doc(message)
        );
        assert_eq!(
            decode(Aggregate::Room, &tombstone(&Was::default())).unwrap(),
            Payload::Deleted(Was::default())
        );
        let was = Was {
            room_id: Some(uuid::Uuid::new_v4()),
            event_seq: Some(9),
            ..Was::default()
        };
        let gone = tombstone(&was);
        assert_eq!(gone["was"]["event_seq"], json!(9));
        assert_eq!(
            decode(Aggregate::Message, &gone).unwrap(),
            Payload::Deleted(was)
        );
    }

    #[test]
    fn a_message_event_from_before_numbering_decodes_without_a_number() {
        let stored = json!({
            "schema": 2,
            "room_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "sender_id": "7d0c39c9-4a8f-4b5e-9f51-2f4c1d4b8a10",
            "body": "hi",
            "created_at": "2026-11-30T10:00:00Z",
            "updated_at": "2026-11-30T10:00:00Z",
        });
        match decode(Aggregate::Message, &stored).unwrap() {
            Payload::Doc(Doc::Message(m)) => assert_eq!((m.body.as_str(), m.seq), ("hi", None)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn payloads_that_cannot_be_read_say_why() {
        assert!(matches!(
            decode(Aggregate::Todo, &json!([1])),
            Err(DecodeError::NotAnObject)
        ));
        assert!(matches!(
            decode(Aggregate::Todo, &json!({"schema": 3, "deleted": true})),
            Err(DecodeError::NewerSchema(3))
        ));
        assert!(matches!(
            decode(Aggregate::Todo, &json!({"schema": "two"})),
            Err(DecodeError::BadSchema(_))
        ));
        // A todo payload is not a message.
        let todo = encode(&Doc::Todo(TodoDoc {
            user_id: uuid::Uuid::new_v4(),
            title: "t".into(),
            completed: false,
            completed_at: None,
            due_at: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }));
        assert!(matches!(
            decode(Aggregate::Message, &todo),
            Err(DecodeError::Field(_))
        ));
        let mut bad_time = todo.clone();
        bad_time["due_at"] = json!("someday");
        assert!(matches!(
            decode(Aggregate::Todo, &bad_time),
            Err(DecodeError::Field(_))
        ));
    }
}
