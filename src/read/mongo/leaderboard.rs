//! Leaderboards over `study_totals`: one document per user per period bucket,
//! read through the `board` index (period, period_start, minutes desc,
//! user_id).
use chrono::NaiveDate;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use uuid::Uuid;

use super::{int_field, uuid_field};
use crate::{
    domain::Period,
    error::AppResult,
    read::model::{BoardEntry, BoardPosition},
};

const COLLECTION: &str = "study_totals";

fn bucket(period: Period, start: NaiveDate) -> Document {
    doc! {"period": period.key(), "period_start": start.to_string(), "deleted": {"$ne": true}}
}

/// One page of the board for the bucket starting `start`, after `after`;
/// `limit + 1` rows with their standard competition rank.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn page(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    after: Option<BoardPosition>,
    limit: u64,
) -> AppResult<Vec<(BoardPosition, BoardEntry)>> {
    let mut filter = bucket(period, start);
    if let Some(p) = after {
        filter.insert(
            "$or",
            vec![
                doc! {"minutes": {"$lt": p.minutes}},
                doc! {"minutes": p.minutes, "user_id": {"$gt": p.user_id.to_string()}},
            ],
        );
    }
    let docs: Vec<Document> = db
        .collection::<Document>(COLLECTION)
        .find(filter)
        .projection(doc! {"user_id": 1, "minutes": 1})
        .sort(doc! {"minutes": -1, "user_id": 1})
        .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .await?
        .try_collect()
        .await?;
    let mut previous = after;
    let mut out = Vec::with_capacity(docs.len());
    for d in &docs {
        let user_id = uuid_field(d, COLLECTION, "user_id")?;
        let minutes = int_field(d, COLLECTION, "minutes")?;
        let position = BoardPosition::next(previous, minutes, user_id);
        previous = Some(position);
        out.push((
            position,
            BoardEntry {
                rank: position.rank,
                user_id,
                minutes,
            },
        ));
    }
    Ok(out)
}

/// The user's entry: rank = 1 + rows with more minutes (an index count, not a
/// scan of the board); `None` without study in the bucket.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn rank_of(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    user_id: Uuid,
) -> AppResult<Option<BoardEntry>> {
    let collection = db.collection::<Document>(COLLECTION);
    let mut mine = bucket(period, start);
    mine.insert("user_id", user_id.to_string());
    let Some(d) = collection.find_one(mine).await? else {
        return Ok(None);
    };
    let minutes = int_field(&d, COLLECTION, "minutes")?;
    let mut better = bucket(period, start);
    better.insert("minutes", doc! {"$gt": minutes});
    let ahead = collection.count_documents(better).await?;
    Ok(Some(BoardEntry {
        rank: i64::try_from(ahead).unwrap_or(i64::MAX).saturating_add(1),
        user_id,
        minutes,
    }))
}
