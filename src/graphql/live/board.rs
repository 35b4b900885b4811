//! One subscriber's view of a live leaderboard.
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    app::{AppState, Followed},
    domain::{self, Period},
    error::{AppError, AppResult},
    graphql::leaderboard::LeaderboardEntry,
    read::{
        fallback,
        model::BoardEntry,
        mongo,
        routing::{ReadRequest, RoutedField},
    },
    sync::boards,
};

/// Shortest time between two pushes of one board to one subscriber.
const BOARD_INTERVAL: Duration = Duration::from_millis(250);
/// How often a board subscription looks again when nothing was heard, so
/// it follows its period into the next bucket.
const BOARD_IDLE: Duration = Duration::from_secs(60);

/// One subscriber's view of a board.
pub(super) struct Board {
    state: AppState,
    period: Period,
    limit: u64,
    /// A room's board: the room and the subscriber, who must stay a member.
    room: Option<(Uuid, Uuid)>,
    /// The bucket listened to, and its changes.
    feed: Option<(String, Followed<watch::Receiver<u64>>)>,
    /// What was pushed last.
    shown: Option<Vec<BoardEntry>>,
    pushed: Option<Instant>,
}

impl Board {
    pub(super) fn new(
        state: AppState,
        period: Period,
        limit: u64,
        room: Option<(Uuid, Uuid)>,
    ) -> Self {
        Self {
            state,
            period,
            limit,
            room,
            feed: None,
            shown: None,
            pushed: None,
        }
    }

    pub(super) async fn next(&mut self) -> async_graphql::Result<Vec<LeaderboardEntry>> {
        loop {
            let now = domain::now();
            let start = self.period.bucket_start(now);
            // Everyone's board changes with its top; a room's with any total
            // of the bucket (a member may be far from the top).
            let key = match self.room {
                None => boards::key(self.period, start),
                Some(_) => boards::totals_key(self.period, start),
            };
            let fresh = self.feed.as_ref().is_none_or(|(k, _)| *k != key);
            if fresh {
                self.feed = Some((key.clone(), self.state.board_feed(&key)));
            } else if let Some((_, feed)) = &mut self.feed {
                let rollover = self.period.range(now).1.map(|end| {
                    (end - now).to_std().unwrap_or_default() + Duration::from_millis(10)
                });
                let idle = rollover.map_or(BOARD_IDLE, |r| r.min(BOARD_IDLE));
                // A closed channel (an instance shutting down) ends nothing:
                // the board is then read on the idle timer.
                if let Ok(Err(_)) = tokio::time::timeout(idle, feed.changed()).await {
                    tokio::time::sleep(idle).await;
                }
            }
            if let Some(at) = self.pushed {
                tokio::time::sleep(BOARD_INTERVAL.saturating_sub(at.elapsed())).await;
            }
            let entries = self.read(start).await?;
            if self.shown.as_ref() != Some(&entries) {
                self.pushed = Some(Instant::now());
                self.shown = Some(entries.clone());
                return Ok(entries.into_iter().map(LeaderboardEntry::from).collect());
            }
        }
    }

    /// The board's first entries, as `leaderboard` answers them; a room's
    /// members are read again each time (`FORBIDDEN` once the subscriber is
    /// no longer one).
    async fn read(&self, start: chrono::NaiveDate) -> AppResult<Vec<BoardEntry>> {
        let (state, period, limit) = (&self.state, self.period, self.limit);
        let among = match self.room {
            None => None,
            Some((room_id, user_id)) => {
                let members = crate::write::rooms::member_ids(state.sql(), room_id).await?;
                if !members.contains(&user_id) {
                    return Err(AppError::Forbidden("no longer a member of this room"));
                }
                Some(members)
            }
        };
        let among = among.as_deref();
        let rows = state
            .reads()
            .read(
                &ReadRequest::default(),
                "leaderboardChanged".to_owned(),
                RoutedField::Leaderboard,
                || mongo::leaderboard::page(state.read_model(), period, start, among, None, limit),
                || fallback::leaderboard::page(state.sql(), period, start, among, None, limit),
            )
            .await?;
        Ok(rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, entry)| entry)
            .collect())
    }
}
