//! Leaderboard tops: for each current bucket (day, ISO week, month, all
//! time) one document holding the board's first [`TOP`] entries, so the first
//! page of `leaderboard`, and the rank of anyone on it, is one lookup by
//! `_id` instead of a sort over the whole bucket.
//!
//! A top is computed from CockroachDB, the source of truth, not merged from
//! events: a merge cannot tell who moves up when someone leaves the list.
//! The worker recomputes the tops of the current buckets its batch touches
//! and writes them before the batch's own documents, so a reader who sees a
//! study total also sees a top at least as new as that total.
//!
//! `version` is the computing statement's start time in microseconds. Every
//! commit's own event triggers a computation that starts after the commit,
//! and under the version guard the computation that started last wins; it
//! saw every commit before its start. So the stored top always ends up
//! reflecting every commit, whatever order concurrent workers finish in.
use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use mongodb::bson::{doc, Document};
use sea_orm::{ConnectionTrait, DatabaseBackend, FromQueryResult, Statement, Value as SqlValue};
use uuid::Uuid;

use super::{outbox::Claimed, project::Projected};
use crate::{
    domain::{Period, MAX_PAGE},
    error::AppResult,
    events::{self, Aggregate, Doc, Payload},
};

/// The read-model collection of tops; not a mirror of a table.
pub const COLLECTION: &str = "leaderboard_tops";

/// Entries kept per top: a first page of any allowed size, plus the row
/// that tells whether there is a next page.
pub const TOP: usize = MAX_PAGE as usize + 1;

/// The `_id` of a bucket's top.
pub fn key(period: Period, start: NaiveDate) -> String {
    format!("{}:{start}", period.key())
}

/// The key under which instances announce that some study total of a
/// bucket changed (a room's board may move with any of them); `period_key`
/// and `start` as the totals' documents spell them.
pub fn totals_key_of(period_key: &str, start: &str) -> String {
    format!("totals:{period_key}:{start}")
}

/// [`totals_key_of`] a bucket.
pub fn totals_key(period: Period, start: NaiveDate) -> String {
    totals_key_of(period.key(), &start.to_string())
}

/// A board bucket.
pub type Bucket = (Period, NaiveDate);

/// Whether readers may ask for `bucket` around `now`: the bucket `now` falls
/// in, or the one a day earlier (a reader whose clock is slightly behind,
/// around midnight). Older buckets are never read, so they get no top.
pub fn is_current(bucket: Bucket, now: DateTime<Utc>) -> bool {
    let (period, start) = bucket;
    let earlier = now.checked_sub_days(Days::new(1)).unwrap_or(now);
    start >= period.bucket_start(earlier)
}

/// The buckets whose tops `events` change, in a stable order: the current
/// buckets of totals written, and the bucket of every total deleted (a
/// correction or an erasure), past ones included, so no top keeps an entry
/// its total no longer has. At most one bucket per event.
pub fn touched(events: &[Claimed], now: DateTime<Utc>) -> Vec<Bucket> {
    let mut buckets = std::collections::BTreeSet::new();
    for event in events {
        if Aggregate::parse(&event.aggregate_type) != Some(Aggregate::StudyTotal) {
            continue;
        }
        let (period, start, deleted) = match events::decode(Aggregate::StudyTotal, &event.payload) {
            Ok(Payload::Doc(Doc::StudyTotal(total))) => (total.period, total.period_start, false),
            Ok(Payload::Deleted(events::Was {
                period: Some(period),
                period_start: Some(start),
                ..
            })) => (period, start, true),
            _ => continue,
        };
        let Some(period) = period_of(&period) else {
            continue;
        };
        if deleted || is_current((period, start), now) {
            buckets.insert((period, start));
        }
    }
    buckets.into_iter().collect()
}

/// Every bucket a reader may ask for at `now`.
pub fn current(now: DateTime<Utc>) -> Vec<Bucket> {
    let earlier = now.checked_sub_days(Days::new(1)).unwrap_or(now);
    let mut buckets = Vec::new();
    for period in Period::ALL {
        for at in [earlier, now] {
            let bucket = (period, period.bucket_start(at));
            if !buckets.contains(&bucket) {
                buckets.push(bucket);
            }
        }
    }
    buckets
}

fn period_of(key: &str) -> Option<Period> {
    Period::ALL.into_iter().find(|p| p.key() == key)
}

#[derive(Debug, FromQueryResult)]
struct Row {
    slot: i32,
    user_id: Option<Uuid>,
    minutes: Option<i64>,
    as_of: i64,
}

/// The tops of `buckets`, from CockroachDB, in one statement: each bucket's
/// first `TOP + 1` rows through the board index (`TOP` are kept; one more
/// tells whether the top is the whole board).
#[tracing::instrument(skip_all, fields(buckets = buckets.len()))]
pub async fn compute(db: &impl ConnectionTrait, buckets: &[Bucket]) -> AppResult<Vec<Projected>> {
    let mut tops = Vec::with_capacity(buckets.len());
    for chunk in buckets.chunks(BUCKETS_PER_STATEMENT) {
        tops.extend(compute_some(db, chunk).await?);
    }
    Ok(tops)
}

/// Buckets computed per statement: each returns up to `TOP + 1` rows.
const BUCKETS_PER_STATEMENT: usize = 32;

async fn compute_some(db: &impl ConnectionTrait, buckets: &[Bucket]) -> AppResult<Vec<Projected>> {
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let mut values: Vec<SqlValue> = Vec::with_capacity(buckets.len() * 3 + 1);
    let mut rows_sql = Vec::with_capacity(buckets.len());
    for (slot, (period, start)) in buckets.iter().enumerate() {
        let n = values.len();
        rows_sql.push(format!(
            "(${}::INT4, ${}::TEXT, ${}::DATE)",
            n + 1,
            n + 2,
            n + 3
        ));
        values.push((slot as i32).into());
        values.push(period.key().into());
        values.push((*start).into());
    }
    values.push(((TOP + 1) as i64).into());
    let sql = format!(
        r#"
SELECT b.slot, t.user_id, t.minutes,
       (extract(epoch FROM statement_timestamp()) * 1000000)::INT8 AS as_of
FROM (VALUES {}) AS b(slot, period, period_start)
LEFT JOIN LATERAL (
    SELECT s.user_id, s.minutes FROM study_totals s
    WHERE s.period = b.period AND s.period_start = b.period_start
    ORDER BY s.minutes DESC, s.user_id
    LIMIT ${}
) t ON true
ORDER BY b.slot, t.minutes DESC, t.user_id"#,
        rows_sql.join(", "),
        values.len()
    );
    let rows = super::outbox::retrying(|| {
        Row::find_by_statement(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql.as_str(),
            values.clone(),
        ))
        .all(db)
    })
    .await?;
    let mut as_of = 0;
    let mut entries: BTreeMap<usize, Vec<(Uuid, i64)>> = BTreeMap::new();
    for row in rows {
        as_of = row.as_of;
        let list = entries.entry(row.slot as usize).or_default();
        if let (Some(user_id), Some(minutes)) = (row.user_id, row.minutes) {
            list.push((user_id, minutes));
        }
    }
    Ok(buckets
        .iter()
        .enumerate()
        .map(|(slot, &bucket)| document(bucket, entries.remove(&slot).unwrap_or_default(), as_of))
        .collect())
}

/// The stored form of one top: `entries` most minutes first, equal minutes
/// by user id (the board's order), at most [`TOP`] of them; `complete` when
/// they are the whole board.
fn document(bucket: Bucket, mut entries: Vec<(Uuid, i64)>, as_of: i64) -> Projected {
    let (period, start) = bucket;
    let complete = entries.len() <= TOP;
    entries.truncate(TOP);
    let id = key(period, start);
    let list: Vec<Document> = entries
        .iter()
        .map(|(user_id, minutes)| doc! {"user_id": user_id.to_string(), "minutes": *minutes})
        .collect();
    Projected {
        collection: COLLECTION,
        id: id.clone(),
        version: as_of,
        doc: doc! {
            "_id": id,
            "version": as_of,
            "period": period.key(),
            "period_start": start.to_string(),
            "entries": list,
            "complete": complete,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn total(period: &str, start: &str) -> Claimed {
        Claimed {
            id: Uuid::new_v4(),
            aggregate_type: Aggregate::StudyTotal.name().to_owned(),
            aggregate_id: Uuid::new_v4(),
            aggregate_version: 1,
            payload: json!({"schema": events::SCHEMA, "user_id": Uuid::new_v4(), "period": period, "period_start": start, "minutes": 5, "sessions": 1, "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z"}),
            created_at: at("2026-11-27T10:00:00Z"),
            attempts: 1,
            trace_context: None,
        }
    }

    fn gone(period: &str, start: &str) -> Claimed {
        let was = events::Was {
            period: Some(period.to_owned()),
            period_start: Some(start.parse().unwrap()),
            ..events::Was::default()
        };
        Claimed {
            payload: events::tombstone(&was),
            ..total(period, start)
        }
    }

    #[test]
    fn current_buckets_of_totals_written_and_every_bucket_of_totals_deleted_are_touched() {
        let now = at("2026-11-30T00:30:00Z"); // a Monday, just after midnight
        let mut todo = total("week", "2026-11-30");
        todo.aggregate_type = Aggregate::Todo.name().to_owned();
        let events = [
            total("week", "2026-11-30"),
            total("week", "2026-11-30"),
            total("week", "2026-11-23"), // a day ago it was current
            total("week", "2026-11-16"),
            total("day", "2026-11-29"),
            total("day", "2026-11-28"),
            total("all", "1970-01-01"),
            total("month", "2026-10-01"),
            total("fortnight", "2026-11-30"),
            todo,
            gone("month", "2026-11-01"),
            gone("month", "2026-09-01"),
        ];
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            touched(&events, now),
            vec![
                (Period::Day, day("2026-11-29")),
                (Period::Week, day("2026-11-23")),
                (Period::Week, day("2026-11-30")),
                (Period::Month, day("2026-09-01")),
                (Period::Month, day("2026-11-01")),
                (Period::AllTime, day("1970-01-01")),
            ]
        );
        let all = current(now);
        // Two days and two weeks; one month and all time.
        assert_eq!(all.len(), 6, "{all:?}");
        assert!(all.iter().all(|&b| is_current(b, now)));
    }

    #[test]
    fn a_top_keeps_the_first_entries_and_says_whether_it_is_the_whole_board() {
        let bucket = (Period::Week, "2026-11-23".parse().unwrap());
        let users: Vec<(Uuid, i64)> = (0..=TOP as i64)
            .map(|m| (Uuid::new_v4(), 500 - m))
            .collect();
        let full = document(bucket, users.clone(), 7);
        assert_eq!(full.id, "week:2026-11-23");
        assert_eq!(full.version, 7);
        assert_eq!(full.doc.get_array("entries").unwrap().len(), TOP);
        assert!(!full.doc.get_bool("complete").unwrap());
        let small = document(bucket, users[..3].to_vec(), 8);
        assert_eq!(small.doc.get_array("entries").unwrap().len(), 3);
        assert!(small.doc.get_bool("complete").unwrap());
    }
}
