//! Search on folded word and prefix arrays. Query words are matched by
//! equality (`$in`) on indexed arrays: input is never a regex or an operator.
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use uuid::Uuid;

use super::{history, str_field, time_field, uuid_field};
use crate::{
    entity::messages,
    error::AppResult,
    read::model::{SearchPosition, UserRow, EXACT, PREFIX},
};

/// Runs the exact-word phase, then the prefix-only phase, each newest first,
/// resuming at `after`; returns up to `limit + 1` documents with their rank.
async fn ranked(
    collection: &mongodb::Collection<Document>,
    base: Document,
    words: &[String],
    after: Option<SearchPosition>,
    limit: u64,
) -> AppResult<Vec<(u8, Document)>> {
    let want = limit + 1;
    let mut out: Vec<(u8, Document)> = Vec::new();
    for rank in [EXACT, PREFIX] {
        if after.is_some_and(|(r, _, _)| r > rank) {
            continue;
        }
        let remaining = want.saturating_sub(out.len() as u64);
        if remaining == 0 {
            break;
        }
        let mut filter = base.clone();
        if rank == EXACT {
            filter.insert("search_words", doc! {"$in": words});
        } else {
            filter.insert("search_prefixes", doc! {"$in": words});
            filter.insert("search_words", doc! {"$nin": words});
        }
        if let Some((r, at, id)) = after.filter(|(r, _, _)| *r == rank) {
            debug_assert_eq!(r, rank);
            filter.insert("$and", vec![Bson::Document(history::older_than((at, id)))]);
        }
        let docs: Vec<Document> = collection
            .find(filter)
            .sort(doc! {"created_at": -1, "_id": -1})
            .limit(i64::try_from(remaining).unwrap_or(i64::MAX))
            .await?
            .try_collect()
            .await?;
        out.extend(docs.into_iter().map(|d| (rank, d)));
    }
    Ok(out)
}

/// Users whose name matches, exact words first, newest first.
#[tracing::instrument(skip_all)]
pub async fn users(
    db: &mongodb::Database,
    words: &[String],
    after: Option<SearchPosition>,
    limit: u64,
) -> AppResult<Vec<(u8, UserRow)>> {
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let collection = db.collection::<Document>("users");
    let base = doc! {"deleted": {"$ne": true}};
    let docs = ranked(&collection, base, words, after, limit).await?;
    docs.iter()
        .map(|(rank, d)| {
            Ok((
                *rank,
                UserRow {
                    id: uuid_field(d, "users", "_id")?,
                    name: str_field(d, "users", "name")?,
                    email: str_field(d, "users", "email")?,
                    created_at: time_field(d, "users", "created_at")?,
                },
            ))
        })
        .collect()
}

/// Messages of the given rooms whose body matches.
#[tracing::instrument(skip_all, fields(rooms = rooms.len()))]
pub async fn messages(
    db: &mongodb::Database,
    rooms: &[Uuid],
    words: &[String],
    after: Option<SearchPosition>,
    limit: u64,
) -> AppResult<Vec<(u8, messages::Model)>> {
    if words.is_empty() || rooms.is_empty() {
        return Ok(Vec::new());
    }
    let collection = db.collection::<Document>("messages");
    let room_ids: Vec<String> = rooms.iter().map(Uuid::to_string).collect();
    let base = doc! {"room_id": {"$in": room_ids}, "deleted": {"$ne": true}};
    let docs = ranked(&collection, base, words, after, limit).await?;
    docs.iter()
        .map(|(rank, d)| Ok((*rank, history::message(d)?)))
        .collect()
}
