//! Leaderboards from the `study_totals` table (index `study_totals_board_idx`).
use chrono::NaiveDate;
use sea_orm::{
    sea_query::{Expr, IntoCondition},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};
use uuid::Uuid;

use crate::{
    domain::Period,
    entity::study_totals,
    error::AppResult,
    read::model::{BoardEntry, BoardPosition},
};

fn bucket(period: Period, start: NaiveDate) -> Select<study_totals::Entity> {
    use study_totals::Column as C;
    study_totals::Entity::find()
        .filter(C::Period.eq(period.key()))
        .filter(C::PeriodStart.eq(start))
}

/// The bucket, or only `among`'s totals in it (a room's board).
fn board(period: Period, start: NaiveDate, among: Option<&[Uuid]>) -> Select<study_totals::Entity> {
    let query = bucket(period, start);
    match among {
        Some(users) => query.filter(study_totals::Column::UserId.is_in(users.iter().copied())),
        None => query,
    }
}

/// Same contract as `read::mongo::leaderboard::page`.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn page(
    conn: &impl ConnectionTrait,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    after: Option<BoardPosition>,
    limit: u64,
) -> AppResult<Vec<(BoardPosition, BoardEntry)>> {
    use study_totals::Column as C;
    let mut query = board(period, start, among);
    if let Some(p) = after {
        query = query.filter(
            Condition::any().add(C::Minutes.lt(p.minutes)).add(
                Expr::col(C::Minutes)
                    .eq(p.minutes)
                    .and(Expr::col(C::UserId).gt(p.user_id))
                    .into_condition(),
            ),
        );
    }
    let rows: Vec<(Uuid, i64)> = query
        .select_only()
        .columns([C::UserId, C::Minutes])
        .order_by_desc(C::Minutes)
        .order_by_asc(C::UserId)
        .limit(limit + 1)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(BoardPosition::rank_rows(after, rows))
}

/// Same contract as `read::mongo::leaderboard::rank_of`.
#[tracing::instrument(skip_all, fields(period = period.key()))]
pub async fn rank_of(
    conn: &impl ConnectionTrait,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    user_id: Uuid,
) -> AppResult<Option<BoardEntry>> {
    use study_totals::Column as C;
    let Some(mine) = bucket(period, start)
        .filter(C::UserId.eq(user_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let ahead = board(period, start, among)
        .filter(C::Minutes.gt(mine.minutes))
        .count(conn)
        .await?;
    Ok(Some(BoardEntry {
        rank: i64::try_from(ahead).unwrap_or(i64::MAX).saturating_add(1),
        user_id,
        minutes: mine.minutes,
    }))
}

/// Rows ahead of `(minutes, user_id)` in board order.
fn ahead_of(minutes: i64, user_id: Uuid) -> Condition {
    use study_totals::Column as C;
    Condition::any().add(C::Minutes.gt(minutes)).add(
        Expr::col(C::Minutes)
            .eq(minutes)
            .and(Expr::col(C::UserId).lt(user_id))
            .into_condition(),
    )
}

/// Same contract as `read::mongo::leaderboard::count_ahead`.
pub async fn count_ahead(
    conn: &impl ConnectionTrait,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    minutes: i64,
    user_id: Uuid,
) -> AppResult<u64> {
    Ok(board(period, start, among)
        .filter(ahead_of(minutes, user_id))
        .count(conn)
        .await?)
}

/// Same contract as `read::mongo::leaderboard::just_ahead`.
pub async fn just_ahead(
    conn: &impl ConnectionTrait,
    period: Period,
    start: NaiveDate,
    among: Option<&[Uuid]>,
    minutes: i64,
    user_id: Uuid,
    n: u64,
) -> AppResult<Vec<(Uuid, i64)>> {
    use study_totals::Column as C;
    let mut rows: Vec<(Uuid, i64)> = board(period, start, among)
        .filter(ahead_of(minutes, user_id))
        .select_only()
        .columns([C::UserId, C::Minutes])
        .order_by_asc(C::Minutes)
        .order_by_desc(C::UserId)
        .limit(n)
        .into_tuple()
        .all(conn)
        .await?;
    rows.reverse();
    Ok(rows)
}
