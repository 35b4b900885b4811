//! Leaderboards: the first page and the ranks on it from the bucket's top
//! (`sync::boards`, one lookup by `_id`); anything past the top from
//! `study_totals`, one document per user per period bucket, read through the
//! `board` index (period, period_start, minutes desc, user_id).
use chrono::NaiveDate;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use uuid::Uuid;

use super::{int_field, uuid_field};
use crate::{
    domain::Period,
    error::AppResult,
    read::model::{BoardEntry, BoardPosition},
    sync::boards,
};

const COLLECTION: &str = "study_totals";

fn bucket(period: Period, start: NaiveDate) -> Document {
    doc! {"period": period.key(), "period_start": start.to_string(), "deleted": {"$ne": true}}
}

/// `(user_id, minutes)` of totals' documents, in their order.
fn entries(docs: &[Document]) -> AppResult<Vec<(Uuid, i64)>> {
    docs.iter()
        .map(|d| {
            Ok((
                uuid_field(d, COLLECTION, "user_id")?,
                int_field(d, COLLECTION, "minutes")?,
            ))
        })
        .collect()
}

/// Whether the workers keep the bucket's top current: only current buckets
/// have one (a past bucket's may predate late sessions logged into it).
fn has_top(period: Period, start: NaiveDate) -> bool {
    boards::is_current((period, start), crate::domain::now())
}

/// The bucket, or only `among`'s totals in it (a room's board: at most a
/// room's members, looked up through the `user_id` index).
fn board(period: Period, start: NaiveDate, among: Option<&[Uuid]>) -> Document {
    let mut filter = bucket(period, start);
    if let Some(users) = among {
        let ids: Vec<String> = users.iter().map(Uuid::to_string).collect();
        filter.insert("user_id", doc! {"$in": ids});
    }
    filter
}

/// One page of the board for the bucket starting `start` (of everyone, or
/// of `among` only), after `after`; `limit + 1` rows with their standard
/// competition rank.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn page(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    after: Option<BoardPosition>,
    limit: u64,
) -> AppResult<Vec<(BoardPosition, BoardEntry)>> {
    if among.is_none() && has_top(period, start) {
        if let Some(top) = top(db, period, start).await? {
            if let Some(rows) = top.page(after, limit) {
                return Ok(rows);
            }
        }
    }
    let mut filter = board(period, start, among);
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
    Ok(BoardPosition::rank_rows(after, entries(&docs)?))
}

/// The user's entry: rank = 1 + rows with more minutes (an index count, not a
/// scan of the board); `None` without study in the bucket.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn rank_of(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    user_id: Uuid,
) -> AppResult<Option<BoardEntry>> {
    if among.is_none() && has_top(period, start) {
        if let Some(top) = top(db, period, start).await? {
            if let Some(entry) = top.rank_of(user_id) {
                return Ok(Some(entry));
            }
        }
    }
    let collection = db.collection::<Document>(COLLECTION);
    let mut mine = bucket(period, start);
    mine.insert("user_id", user_id.to_string());
    let Some(d) = collection.find_one(mine).await? else {
        return Ok(None);
    };
    let minutes = int_field(&d, COLLECTION, "minutes")?;
    let mut better = board(period, start, among);
    better.insert("minutes", doc! {"$gt": minutes});
    let ahead = collection.count_documents(better).await?;
    Ok(Some(BoardEntry {
        rank: i64::try_from(ahead).unwrap_or(i64::MAX).saturating_add(1),
        user_id,
        minutes,
    }))
}

/// A bucket's stored top: the board's first entries, in board order.
#[derive(Debug, Clone, PartialEq)]
struct Top {
    entries: Vec<(Uuid, i64)>,
    /// The entries are the whole board.
    complete: bool,
}

/// The bucket's top, if the worker has written one.
async fn top(db: &mongodb::Database, period: Period, start: NaiveDate) -> AppResult<Option<Top>> {
    let Some(d) = db
        .collection::<Document>(boards::COLLECTION)
        // The whole document: a top has few other fields, and a projection
        // costs some servers more than it saves.
        .find_one(doc! {"_id": boards::key(period, start)})
        .await?
    else {
        return Ok(None);
    };
    let malformed = || super::malformed(boards::COLLECTION, "entries");
    let list = d.get_array("entries").map_err(|_| malformed())?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list {
        let item = item.as_document().ok_or_else(malformed)?;
        entries.push((
            uuid_field(item, boards::COLLECTION, "user_id")?,
            int_field(item, boards::COLLECTION, "minutes")?,
        ));
    }
    Ok(Some(Top {
        entries,
        complete: d.get_bool("complete").unwrap_or(false),
    }))
}

impl Top {
    /// The page `page` would answer, when the top holds all of it (every
    /// row asked for, plus the one after, or the end of the board).
    fn page(
        &self,
        after: Option<BoardPosition>,
        limit: u64,
    ) -> Option<Vec<(BoardPosition, BoardEntry)>> {
        let from = match after {
            None => 0,
            Some(p) => self.entries.partition_point(|&(user_id, minutes)| {
                minutes > p.minutes || (minutes == p.minutes && user_id <= p.user_id)
            }),
        };
        let wanted = usize::try_from(limit).ok()?.checked_add(1)?;
        let upto = from.saturating_add(wanted);
        if upto > self.entries.len() && !self.complete {
            return None;
        }
        let rows = &self.entries[from..upto.min(self.entries.len())];
        Some(BoardPosition::rank_rows(after, rows.iter().copied()))
    }

    /// The user's entry when they are on the top: everyone with more
    /// minutes is on it too, so the rank is exact.
    fn rank_of(&self, user_id: Uuid) -> Option<BoardEntry> {
        let &(_, minutes) = self.entries.iter().find(|(u, _)| *u == user_id)?;
        let ahead = self.entries.iter().filter(|(_, m)| *m > minutes).count();
        Some(BoardEntry {
            rank: i64::try_from(ahead).unwrap_or(i64::MAX).saturating_add(1),
            user_id,
            minutes,
        })
    }
}

/// Rows ahead of `(minutes, user_id)` in board order: more minutes, or as
/// many and a smaller id.
fn ahead_of(minutes: i64, user_id: Uuid) -> Document {
    doc! {"$or": [
        {"minutes": {"$gt": minutes}},
        {"minutes": minutes, "user_id": {"$lt": user_id.to_string()}},
    ]}
}

/// How many rows are ahead of `(minutes, user_id)` (its 0-based index).
pub async fn count_ahead(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    minutes: i64,
    user_id: Uuid,
) -> AppResult<u64> {
    let mut filter = board(period, start, among);
    filter.insert(
        "$and",
        vec![mongodb::bson::Bson::Document(ahead_of(minutes, user_id))],
    );
    Ok(db
        .collection::<Document>(COLLECTION)
        .count_documents(filter)
        .await?)
}

/// The `n` rows just ahead of `(minutes, user_id)`, in board order.
pub async fn just_ahead(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    minutes: i64,
    user_id: Uuid,
    n: u64,
) -> AppResult<Vec<(Uuid, i64)>> {
    let mut filter = board(period, start, among);
    filter.insert(
        "$and",
        vec![mongodb::bson::Bson::Document(ahead_of(minutes, user_id))],
    );
    let docs: Vec<Document> = db
        .collection::<Document>(COLLECTION)
        .find(filter)
        .projection(doc! {"user_id": 1, "minutes": 1})
        .sort(doc! {"minutes": 1, "user_id": -1})
        .limit(i64::try_from(n).unwrap_or(i64::MAX))
        .await?
        .try_collect()
        .await?;
    let mut rows = entries(&docs)?;
    rows.reverse();
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minutes 100, 90, 90, 90, 80, ... with users in id order inside a tie.
    fn top(n: usize, complete: bool) -> Top {
        let mut entries: Vec<(Uuid, i64)> = (0..n)
            .map(|i| {
                let minutes = match i {
                    0 => 100,
                    1..=3 => 90,
                    _ => 90 - 10 * (i as i64 - 3),
                };
                (Uuid::new_v4(), minutes)
            })
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Top { entries, complete }
    }

    fn ranks(rows: &[(BoardPosition, BoardEntry)]) -> Vec<(i64, i64)> {
        rows.iter().map(|(_, e)| (e.rank, e.minutes)).collect()
    }

    #[test]
    fn pages_continue_ranks_across_a_tie_and_stop_where_the_top_ends() {
        let t = top(8, false);
        let first = t.page(None, 2).unwrap();
        assert_eq!(ranks(&first), [(1, 100), (2, 90), (2, 90)]);
        let second = t.page(Some(first[1].0), 2).unwrap();
        assert_eq!(ranks(&second), [(2, 90), (2, 90), (5, 80)]);
        // Rows 6..=8 plus the one after: not all on a partial top.
        assert!(t.page(Some(second[2].0), 3).is_none());
        // The whole board is on a complete top: the last page is short.
        let whole = top(8, true);
        let last = whole
            .page(Some(whole.page(None, 4).unwrap()[4].0), 10)
            .unwrap();
        assert_eq!(ranks(&last), [(6, 70), (7, 60), (8, 50)]);
    }

    #[test]
    fn ranks_come_from_the_top_only_for_users_on_it() {
        let t = top(5, false);
        let (third, _) = t.entries[2];
        let entry = t.rank_of(third).unwrap();
        assert_eq!((entry.rank, entry.minutes), (2, 90));
        assert!(t.rank_of(Uuid::new_v4()).is_none());
    }
}
