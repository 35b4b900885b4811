//! Study statistics and the dashboard, aggregated by MongoDB from
//! `study_sessions`, `study_totals` and `todos`.
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use uuid::Uuid;

use super::{bson_time, int_field, str_field};
use crate::{
    domain::Period,
    error::AppResult,
    read::model::{sort_by_minutes, DashboardRow, KeyMinutes, Range, Stats, TOP_SUBJECTS},
};

fn time_range(field: &str, range: Range) -> Document {
    let mut bounds = Document::new();
    if let Some(from) = range.from {
        bounds.insert("$gte", bson_time(from));
    }
    if let Some(to) = range.to {
        bounds.insert("$lt", bson_time(to));
    }
    if bounds.is_empty() {
        doc! {}
    } else {
        doc! {field: bounds}
    }
}

async fn aggregate(
    db: &mongodb::Database,
    collection: &str,
    pipeline: Vec<Document>,
) -> AppResult<Vec<Document>> {
    Ok(db
        .collection::<Document>(collection)
        .aggregate(pipeline)
        .await?
        .try_collect()
        .await?)
}

/// Minutes grouped by `key` (an expression) among sessions matching `filter`.
async fn minutes_by(
    db: &mongodb::Database,
    filter: Document,
    key: Bson,
) -> AppResult<Vec<(KeyMinutes, i64)>> {
    let rows = aggregate(
        db,
        "study_sessions",
        vec![
            doc! {"$match": filter},
            doc! {"$group": {"_id": key, "minutes": {"$sum": "$minutes"}, "sessions": {"$sum": 1}}},
        ],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                KeyMinutes {
                    key: str_field(r, "study_sessions", "_id")?,
                    minutes: int_field(r, "study_sessions", "minutes")?,
                },
                int_field(r, "study_sessions", "sessions")?,
            ))
        })
        .collect()
}

/// Todos created in the range among `filter`, and how many of them are done.
async fn todo_counts(db: &mongodb::Database, mut filter: Document) -> AppResult<(i64, i64)> {
    filter.insert("deleted", doc! {"$ne": true});
    let todos = db.collection::<Document>("todos");
    let created = todos.count_documents(filter.clone()).await?;
    filter.insert("completed", true);
    let completed = todos.count_documents(filter).await?;
    Ok((
        i64::try_from(created).unwrap_or(i64::MAX),
        i64::try_from(completed).unwrap_or(i64::MAX),
    ))
}

/// One user's study and todos in `[from, to)`.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn stats(db: &mongodb::Database, user_id: Uuid, range: Range) -> AppResult<Stats> {
    let mut sessions = time_range("started_at", range);
    sessions.insert("user_id", user_id.to_string());
    let day = Bson::Document(doc! {"$dateToString": {"format": "%Y-%m-%d", "date": "$started_at"}});
    let mut todos = time_range("created_at", range);
    todos.insert("user_id", user_id.to_string());
    let (mut by_day, by_subject, (todos_created, todos_completed)) = futures::try_join!(
        minutes_by(db, sessions.clone(), day),
        minutes_by(db, sessions, Bson::from("$subject")),
        todo_counts(db, todos),
    )?;
    by_day.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let total_minutes = by_day.iter().map(|(k, _)| k.minutes).sum();
    let session_count = by_day.iter().map(|(_, n)| n).sum();
    let mut subjects: Vec<KeyMinutes> = by_subject.into_iter().map(|(k, _)| k).collect();
    sort_by_minutes(&mut subjects);
    Ok(Stats {
        total_minutes,
        sessions: session_count,
        by_day: by_day.into_iter().map(|(k, _)| k).collect(),
        by_subject: subjects,
        todos_created,
        todos_completed,
    })
}

/// Everyone's study in the bucket of `period` that starts at `start`.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn dashboard(
    db: &mongodb::Database,
    period: Period,
    start: NaiveDate,
    bounds: (DateTime<Utc>, Option<DateTime<Utc>>),
) -> AppResult<DashboardRow> {
    let range = Range {
        from: Some(bounds.0),
        to: bounds.1,
    };
    let (totals, subjects, (todos_created, todos_completed)) = futures::try_join!(
        aggregate(
            db,
            "study_totals",
            vec![
                doc! {"$match": {"period": period.key(), "period_start": start.to_string(), "deleted": {"$ne": true}}},
                doc! {"$group": {"_id": null, "users": {"$sum": 1}, "minutes": {"$sum": "$minutes"}, "sessions": {"$sum": "$sessions"}}},
            ],
        ),
        minutes_by(db, time_range("started_at", range), Bson::from("$subject")),
        todo_counts(db, time_range("created_at", range)),
    )?;
    let mut subjects: Vec<KeyMinutes> = subjects.into_iter().map(|(k, _)| k).collect();
    sort_by_minutes(&mut subjects);
    subjects.truncate(TOP_SUBJECTS);
    let (active_users, total_minutes, sessions) = match totals.first() {
        Some(t) => (
            int_field(t, "study_totals", "users")?,
            int_field(t, "study_totals", "minutes")?,
            int_field(t, "study_totals", "sessions")?,
        ),
        None => (0, 0, 0),
    };
    Ok(DashboardRow {
        active_users,
        total_minutes,
        sessions,
        todos_created,
        todos_completed,
        top_subjects: subjects,
    })
}
