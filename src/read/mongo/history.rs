//! Chat history and message documents.
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use uuid::Uuid;

use super::{bson_time, int_field, str_field, time_field, uuid_field};
use crate::{entity::messages, error::AppResult, read::model::TimePosition};

const COLLECTION: &str = "messages";

/// A message document as the projection writes it.
pub(super) fn message(doc: &Document) -> AppResult<messages::Model> {
    Ok(messages::Model {
        id: uuid_field(doc, COLLECTION, "_id")?,
        room_id: uuid_field(doc, COLLECTION, "room_id")?,
        sender_id: uuid_field(doc, COLLECTION, "sender_id")?,
        body: str_field(doc, COLLECTION, "body")?,
        version: int_field(doc, COLLECTION, "version")?,
        // Documents projected before messages were numbered have none.
        seq: doc.get_i64("seq").ok(),
        event_seq: doc.get_i64("event_seq").ok(),
        edited_at: match doc.get("edited_at") {
            Some(Bson::DateTime(_)) => Some(time_field(doc, COLLECTION, "edited_at")?),
            _ => None,
        },
        created_at: time_field(doc, COLLECTION, "created_at")?,
        updated_at: time_field(doc, COLLECTION, "updated_at")?,
    })
}

/// Strictly after `position` in newest-first order.
pub(super) fn older_than(position: TimePosition) -> Document {
    let (at, id) = position;
    doc! {"$or": [
        {"created_at": {"$lt": bson_time(at)}},
        {"created_at": bson_time(at), "_id": {"$lt": id.to_string()}},
    ]}
}

/// One page of a room's messages, newest first, older than `before`;
/// `limit + 1` rows so the caller knows whether more exist.
#[tracing::instrument(skip_all, fields(room_id = %room_id))]
pub async fn page(
    db: &mongodb::Database,
    room_id: Uuid,
    before: Option<TimePosition>,
    limit: u64,
) -> AppResult<Vec<messages::Model>> {
    let mut filter = doc! {"room_id": room_id.to_string(), "deleted": {"$ne": true}};
    if let Some(position) = before {
        filter.insert("$and", vec![Bson::Document(older_than(position))]);
    }
    let docs: Vec<Document> = db
        .collection::<Document>(COLLECTION)
        .find(filter)
        .sort(doc! {"created_at": -1, "_id": -1})
        .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .await?
        .try_collect()
        .await?;
    docs.iter().map(message).collect()
}
