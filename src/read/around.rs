//! `leaderboardAround`: the caller and their neighbours, composed from the
//! same reads in either store, so MongoDB and the CockroachDB fallback
//! answer alike.
use chrono::NaiveDate;
use uuid::Uuid;

use super::{
    fallback,
    model::{BoardEntry, BoardPosition},
    mongo,
};
use crate::{
    domain::Period,
    error::{AppError, AppResult},
    pool::Db,
};

/// Neighbours on each side at most.
pub const MAX_RADIUS: u64 = 10;

/// One bucket's board (of everyone, or of `among`) in one store.
pub struct Board<'a, S> {
    pub store: &'a S,
    pub period: Period,
    pub start: NaiveDate,
    pub among: Option<&'a [Uuid]>,
}

/// The reads `around` needs from a board.
pub(crate) trait Reads {
    async fn rank_of(&self, user_id: Uuid) -> AppResult<Option<BoardEntry>>;
    async fn count_ahead(&self, minutes: i64, user_id: Uuid) -> AppResult<u64>;
    async fn just_ahead(&self, minutes: i64, user_id: Uuid, n: u64) -> AppResult<Vec<(Uuid, i64)>>;
    async fn page_after(
        &self,
        after: BoardPosition,
        n: u64,
    ) -> AppResult<Vec<(BoardPosition, BoardEntry)>>;
}

impl Reads for Board<'_, mongodb::Database> {
    async fn rank_of(&self, user_id: Uuid) -> AppResult<Option<BoardEntry>> {
        mongo::leaderboard::rank_of(self.store, self.period, self.start, self.among, user_id).await
    }
    async fn count_ahead(&self, minutes: i64, user_id: Uuid) -> AppResult<u64> {
        let (db, period, start, among) = (self.store, self.period, self.start, self.among);
        mongo::leaderboard::count_ahead(db, period, start, among, minutes, user_id).await
    }
    async fn just_ahead(&self, minutes: i64, user_id: Uuid, n: u64) -> AppResult<Vec<(Uuid, i64)>> {
        let (db, period, start, among) = (self.store, self.period, self.start, self.among);
        mongo::leaderboard::just_ahead(db, period, start, among, minutes, user_id, n).await
    }
    async fn page_after(
        &self,
        after: BoardPosition,
        n: u64,
    ) -> AppResult<Vec<(BoardPosition, BoardEntry)>> {
        mongo::leaderboard::page(
            self.store,
            self.period,
            self.start,
            self.among,
            Some(after),
            n,
        )
        .await
    }
}

impl Reads for Board<'_, Db> {
    async fn rank_of(&self, user_id: Uuid) -> AppResult<Option<BoardEntry>> {
        fallback::leaderboard::rank_of(self.store, self.period, self.start, self.among, user_id)
            .await
    }
    async fn count_ahead(&self, minutes: i64, user_id: Uuid) -> AppResult<u64> {
        let (db, period, start, among) = (self.store, self.period, self.start, self.among);
        fallback::leaderboard::count_ahead(db, period, start, among, minutes, user_id).await
    }
    async fn just_ahead(&self, minutes: i64, user_id: Uuid, n: u64) -> AppResult<Vec<(Uuid, i64)>> {
        let (db, period, start, among) = (self.store, self.period, self.start, self.among);
        fallback::leaderboard::just_ahead(db, period, start, among, minutes, user_id, n).await
    }
    async fn page_after(
        &self,
        after: BoardPosition,
        n: u64,
    ) -> AppResult<Vec<(BoardPosition, BoardEntry)>> {
        fallback::leaderboard::page(
            self.store,
            self.period,
            self.start,
            self.among,
            Some(after),
            n,
        )
        .await
    }
}

/// `user_id`'s entry with up to `radius` entries on each side, in board
/// order; empty before the user studies in the bucket.
pub(crate) async fn around(
    board: &impl Reads,
    user_id: Uuid,
    radius: u64,
) -> AppResult<Vec<BoardEntry>> {
    let Some(mine) = board.rank_of(user_id).await? else {
        return Ok(Vec::new());
    };
    let index = board.count_ahead(mine.minutes, user_id).await?;
    let index = i64::try_from(index).unwrap_or(i64::MAX);
    let ahead = board.just_ahead(mine.minutes, user_id, radius).await?;
    let mut out = Vec::with_capacity(ahead.len() + 1 + radius as usize);
    if let Some(&(first_user, first_minutes)) = ahead.first() {
        // The first neighbour's rank starts the chain; the rest follow from
        // their minutes and positions, as a page ranks its rows.
        let rank = if first_minutes == mine.minutes {
            mine.rank
        } else {
            board
                .rank_of(first_user)
                .await?
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a neighbour has no rank")))?
                .rank
        };
        let first = BoardPosition {
            minutes: first_minutes,
            user_id: first_user,
            index: index - ahead.len() as i64,
            rank,
        };
        let rest = ahead[1..].iter().copied();
        let mut ranked = vec![(
            first,
            BoardEntry {
                rank,
                user_id: first_user,
                minutes: first_minutes,
            },
        )];
        ranked.extend(BoardPosition::rank_rows(Some(first), rest));
        out.extend(ranked.into_iter().map(|(_, entry)| entry));
    }
    let position = BoardPosition {
        minutes: mine.minutes,
        user_id,
        index,
        rank: mine.rank,
    };
    out.push(mine);
    let behind = board.page_after(position, radius).await?;
    out.extend(
        behind
            .into_iter()
            .take(usize::try_from(radius).unwrap_or(usize::MAX))
            .map(|(_, entry)| entry),
    );
    Ok(out)
}
