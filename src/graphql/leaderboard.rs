//! Leaderboards of minutes studied in the current UTC day, ISO week, month or
//! all time; routed reads (MongoDB, CockroachDB as fallback).
use async_graphql::{
    connection::{Connection, EmptyFields},
    ComplexObject, Context, Enum, Object, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    context::{parse_id, ContextExt},
    prefetch,
    routed::{connection, require_member, routed, LeaderboardConnectionName, LeaderboardEdgeName},
    types::{load_user, User},
};
use crate::{
    domain::{self, Period},
    error::AppError,
    read::{
        self, fallback,
        model::{BoardEntry, BoardPosition},
        mongo,
        routing::RoutedField,
    },
};

/// A reporting period, in UTC: the current day, ISO week (from Monday),
/// calendar month, or all time.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Period")]
pub enum PeriodArg {
    Day,
    Week,
    Month,
    AllTime,
}

impl From<PeriodArg> for Period {
    fn from(p: PeriodArg) -> Self {
        match p {
            PeriodArg::Day => Period::Day,
            PeriodArg::Week => Period::Week,
            PeriodArg::Month => Period::Month,
            PeriodArg::AllTime => Period::AllTime,
        }
    }
}

/// One row of a leaderboard. Ties share a rank and the next rank skips
/// (standard competition ranking, "1224").
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct LeaderboardEntry {
    pub rank: i32,
    #[graphql(skip)]
    pub user_id: Uuid,
    pub minutes: i32,
}

impl From<BoardEntry> for LeaderboardEntry {
    fn from(e: BoardEntry) -> Self {
        Self {
            rank: i32::try_from(e.rank).unwrap_or(i32::MAX),
            user_id: e.user_id,
            minutes: i32::try_from(e.minutes).unwrap_or(i32::MAX),
        }
    }
}

#[ComplexObject]
impl LeaderboardEntry {
    async fn user(&self, ctx: &Context<'_>) -> Result<User> {
        load_user(ctx, self.user_id).await
    }
}

pub type LeaderboardConnection = Connection<
    crate::read::cursor::Lazy,
    LeaderboardEntry,
    EmptyFields,
    EmptyFields,
    LeaderboardConnectionName,
    LeaderboardEdgeName,
>;

#[derive(Default)]
pub struct LeaderboardQuery;

#[Object]
impl LeaderboardQuery {
    /// Most minutes first; equal minutes are ordered by user id, so pages are
    /// stable. With `roomId`, the board of that room's members (members
    /// only); with `at`, the board of the period that contains that past
    /// instant (last week, last month).
    #[graphql(complexity = "super::limits::list_cost(first, child_complexity)")]
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        period: PeriodArg,
        first: Option<i32>,
        after: Option<String>,
        room_id: Option<ID>,
        at: Option<DateTime<Utc>>,
    ) -> Result<LeaderboardConnection> {
        let user_id = ctx.require_user()?;
        let limit = read::page_size(first)?;
        let at = instant(at)?;
        let among = board_members(ctx, room_id.as_ref(), user_id).await?;
        let among = among.as_deref();
        let state = ctx.state();
        let after = after
            .as_deref()
            .map(|c| state.cursors().decode::<BoardPosition>(c))
            .transpose()?;
        let period = Period::from(period);
        let start = period.bucket_start(at);
        let rows = routed(
            ctx,
            RoutedField::Leaderboard,
            || mongo::leaderboard::page(state.read_model(), period, start, among, after, limit),
            || fallback::leaderboard::page(state.sql(), period, start, among, after, limit),
        )
        .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .map(|(position, entry)| (position, LeaderboardEntry::from(entry)))
            .collect();
        prefetch::users(ctx, "user", rows.iter().map(|(_, e)| e.user_id)).await?;
        Ok(connection(state.cursors(), rows, limit, after.is_some()))
    }

    /// The caller's entry with up to `radius` (default 2, at most 10)
    /// neighbours on each side, in board order (of `roomId`'s members, with
    /// `roomId`); empty before the caller studies in the period.
    #[graphql(
        complexity = "super::limits::capped_list_cost(2 * read::around::MAX_RADIUS + 1, child_complexity)"
    )]
    async fn leaderboard_around(
        &self,
        ctx: &Context<'_>,
        period: PeriodArg,
        radius: Option<i32>,
        room_id: Option<ID>,
    ) -> Result<Vec<LeaderboardEntry>> {
        let user_id = ctx.require_user()?;
        let radius = match radius {
            None => 2,
            Some(r) if (0..=read::around::MAX_RADIUS as i32).contains(&r) => r as u64,
            Some(_) => {
                return Err(AppError::bad_input(format!(
                    "radius must be between 0 and {}",
                    read::around::MAX_RADIUS
                ))
                .into())
            }
        };
        let among = board_members(ctx, room_id.as_ref(), user_id).await?;
        let among = among.as_deref();
        let state = ctx.state();
        let period = Period::from(period);
        let start = period.bucket_start(domain::now());
        let entries = routed(
            ctx,
            RoutedField::Leaderboard,
            || async {
                let board = read::around::Board {
                    store: state.read_model(),
                    period,
                    start,
                    among,
                };
                read::around::around(&board, user_id, radius).await
            },
            || async {
                let board = read::around::Board {
                    store: state.sql(),
                    period,
                    start,
                    among,
                };
                read::around::around(&board, user_id, radius).await
            },
        )
        .await?;
        prefetch::users(ctx, "user", entries.iter().map(|e| e.user_id)).await?;
        Ok(entries.into_iter().map(LeaderboardEntry::from).collect())
    }

    /// The caller's place on the board (of `roomId`'s members, with
    /// `roomId`; of the period containing `at`, with `at`); null before they
    /// study in the period.
    async fn my_rank(
        &self,
        ctx: &Context<'_>,
        period: PeriodArg,
        room_id: Option<ID>,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<LeaderboardEntry>> {
        let user_id = ctx.require_user()?;
        let at = instant(at)?;
        let among = board_members(ctx, room_id.as_ref(), user_id).await?;
        let among = among.as_deref();
        let state = ctx.state();
        let period = Period::from(period);
        let start = period.bucket_start(at);
        let entry = routed(
            ctx,
            RoutedField::MyRank,
            || mongo::leaderboard::rank_of(state.read_model(), period, start, among, user_id),
            || fallback::leaderboard::rank_of(state.sql(), period, start, among, user_id),
        )
        .await?;
        Ok(entry.map(LeaderboardEntry::from))
    }
}

/// The members of the room whose board is asked for (none: everyone's
/// board). Members only; decided on CockroachDB.
pub async fn board_members(
    ctx: &Context<'_>,
    room_id: Option<&ID>,
    user_id: Uuid,
) -> Result<Option<Vec<Uuid>>, AppError> {
    let Some(room_id) = room_id else {
        return Ok(None);
    };
    let room_id = parse_id(room_id, "roomId")?;
    require_member(ctx, room_id, user_id).await?;
    Ok(Some(
        crate::write::rooms::member_ids(ctx.state().sql(), room_id).await?,
    ))
}

/// The instant whose period is asked for: now, or a past `at` (one in the
/// future is `BAD_USER_INPUT`: its board cannot exist yet).
fn instant(at: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, AppError> {
    let now = domain::now();
    match at {
        Some(at) if at > now => Err(AppError::bad_input("at must not be in the future")),
        Some(at) => Ok(at),
        None => Ok(now),
    }
}
