//! Study statistics and the dashboard from the source tables.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    Select, Statement,
};
use uuid::Uuid;

use crate::{
    domain::Period,
    entity::{study_sessions, todos},
    error::AppResult,
    read::model::{sort_by_minutes, DashboardRow, KeyMinutes, Range, Stats, TOP_SUBJECTS},
};

fn todos_in(mut query: Select<todos::Entity>, range: Range) -> Select<todos::Entity> {
    if let Some(from) = range.from {
        query = query.filter(todos::Column::CreatedAt.gte(from));
    }
    if let Some(to) = range.to {
        query = query.filter(todos::Column::CreatedAt.lt(to));
    }
    query
}

async fn todo_counts(
    conn: &impl ConnectionTrait,
    query: Select<todos::Entity>,
) -> AppResult<(i64, i64)> {
    let created = query.clone().count(conn).await?;
    let completed = query
        .filter(todos::Column::Completed.eq(true))
        .count(conn)
        .await?;
    Ok((
        i64::try_from(created).unwrap_or(i64::MAX),
        i64::try_from(completed).unwrap_or(i64::MAX),
    ))
}

fn into_rows(map: BTreeMap<String, i64>) -> Vec<KeyMinutes> {
    map.into_iter()
        .map(|(key, minutes)| KeyMinutes { key, minutes })
        .collect()
}

/// Same contract as `read::mongo::analytics::stats`.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn stats(conn: &impl ConnectionTrait, user_id: Uuid, range: Range) -> AppResult<Stats> {
    use study_sessions::Column as C;
    let mut query = study_sessions::Entity::find().filter(C::UserId.eq(user_id));
    if let Some(from) = range.from {
        query = query.filter(C::StartedAt.gte(from));
    }
    if let Some(to) = range.to {
        query = query.filter(C::StartedAt.lt(to));
    }
    let rows: Vec<(String, i32, DateTime<Utc>)> = query
        .select_only()
        .columns([C::Subject, C::Minutes, C::StartedAt])
        .into_tuple()
        .all(conn)
        .await?;
    let mut by_day: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_subject: BTreeMap<String, i64> = BTreeMap::new();
    for (subject, minutes, started_at) in &rows {
        let day = started_at.date_naive().format("%Y-%m-%d").to_string();
        *by_day.entry(day).or_default() += i64::from(*minutes);
        *by_subject.entry(subject.clone()).or_default() += i64::from(*minutes);
    }
    let mut subjects = into_rows(by_subject);
    sort_by_minutes(&mut subjects);
    let (todos_created, todos_completed) = todo_counts(
        conn,
        todos_in(
            todos::Entity::find().filter(todos::Column::UserId.eq(user_id)),
            range,
        ),
    )
    .await?;
    Ok(Stats {
        total_minutes: rows.iter().map(|r| i64::from(r.1)).sum(),
        sessions: i64::try_from(rows.len()).unwrap_or(i64::MAX),
        by_day: into_rows(by_day),
        by_subject: subjects,
        todos_created,
        todos_completed,
    })
}

/// Same contract as `read::mongo::analytics::dashboard`.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn dashboard(
    conn: &impl ConnectionTrait,
    period: Period,
    start: NaiveDate,
    bounds: (DateTime<Utc>, Option<DateTime<Utc>>),
) -> AppResult<DashboardRow> {
    let totals = conn
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS users, COALESCE(sum(minutes), 0)::BIGINT AS minutes, \
             COALESCE(sum(sessions), 0)::BIGINT AS sessions \
             FROM study_totals WHERE period = $1 AND period_start = $2",
            [period.key().into(), start.into()],
        ))
        .await?;
    let (active_users, total_minutes, sessions) = match totals {
        Some(row) => (
            row.try_get::<i64>("", "users")?,
            row.try_get::<i64>("", "minutes")?,
            row.try_get::<i64>("", "sessions")?,
        ),
        None => (0, 0, 0),
    };
    let (from, to) = bounds;
    let subjects = conn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT subject, sum(minutes)::BIGINT AS minutes FROM study_sessions \
             WHERE started_at >= $1 AND ($2::TIMESTAMPTZ IS NULL OR started_at < $2::TIMESTAMPTZ) \
             GROUP BY subject",
            [from.into(), to.into()],
        ))
        .await?;
    let mut top_subjects = subjects
        .iter()
        .map(|row| {
            Ok(KeyMinutes {
                key: row.try_get("", "subject")?,
                minutes: row.try_get("", "minutes")?,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    sort_by_minutes(&mut top_subjects);
    top_subjects.truncate(TOP_SUBJECTS);
    let range = Range {
        from: Some(from),
        to,
    };
    let (todos_created, todos_completed) =
        todo_counts(conn, todos_in(todos::Entity::find(), range)).await?;
    Ok(DashboardRow {
        active_users,
        total_minutes,
        sessions,
        todos_created,
        todos_completed,
        top_subjects,
    })
}
