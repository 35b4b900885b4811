//! Subscriptions: live messages (`messageAdded(roomId, after:)`) and live
//! boards (`leaderboardChanged`).
//!
//! Every message has a number in its room, taken in commit order
//! (`rooms.last_seq`): when number n is committed, so is every number below
//! it. A subscription therefore delivers numbers one by one from where it
//! starts — after `after`'s message, or after the room's last message when
//! it opens — and never needs a message twice or misses one:
//!
//! - it listens to the room's channel first, then reads where to start, so
//!   nothing committed in between escapes it;
//! - with `after`, it replays from CockroachDB what came after the cursor,
//!   page by page, before going live;
//! - live, a number it has delivered already is dropped (the same message
//!   may reach an instance twice: from its own commit and from the read
//!   model's change stream); a number past the next one means some were
//!   missed (committed through another instance and not yet carried, or
//!   dropped because the subscriber fell behind), and those are read from
//!   CockroachDB, in order, before it.
use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use async_graphql::{Context, Result, Subscription, ID};
use futures::Stream;
use tokio::sync::{
    broadcast::{self, error::RecvError},
    watch,
};
use uuid::Uuid;

use super::{
    context::{parse_id, ContextExt, TokenExpiry},
    leaderboard::{LeaderboardEntry, PeriodArg},
    routed::require_member,
    types::Message,
};
use crate::{
    app::AppState,
    domain::{self, Period},
    entity::messages,
    error::{AppError, AppResult},
    read::{
        self, fallback,
        model::{BoardEntry, MessagePosition},
        mongo,
        routing::{ReadRequest, RoutedField},
        sql,
    },
    sync::boards,
};

/// Messages read from CockroachDB per round trip while catching up.
const PAGE: u64 = 100;

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Messages posted to a room, in the order they were committed, each
    /// once; members only. With `after` (a `Message.cursor` of this room),
    /// first every message that came after it, then live, with no gap and no
    /// duplicate at the seam. Messages committed through any instance are
    /// delivered. Before it delivers, a subscription re-reads whether its
    /// caller is still a member once `WS_RECHECK_MS` have passed since the
    /// last read: a caller who left or was removed gets one `FORBIDDEN`
    /// error, one whose account is gone or whose token was revoked one
    /// `UNAUTHENTICATED`, and the subscription ends.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<Message>>> {
        let live = Sequenced::open(ctx, &room_id, after.as_deref()).await?;
        Ok(futures::stream::unfold(live, |mut live| async move {
            let item = live.next().await?;
            Some((item, live))
        }))
    }

    /// A room's changes in commit order, each once: `ADDED` for every
    /// message posted (edits and deletes do not exist yet, so it is the
    /// only kind sent). `after` takes a `RoomEvent.cursor` or a
    /// `Message.cursor`; replay, rights and delivery are `messageAdded`'s.
    async fn room_events(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<RoomEvent>>> {
        let live = Sequenced::open(ctx, &room_id, after.as_deref()).await?;
        Ok(futures::stream::unfold(live, |mut live| async move {
            let item = live.next().await?;
            Some((item.map(RoomEvent::added), live))
        }))
    }
}

/// What happened to a room's message.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum RoomEventKind {
    Added,
    Edited,
    Deleted,
}

/// One change to a room's messages.
#[derive(async_graphql::SimpleObject)]
#[graphql(complex)]
pub struct RoomEvent {
    pub kind: RoomEventKind,
    pub message_id: ID,
    /// The message as it is after the change (null once deleted).
    pub message: Option<Message>,
}

impl RoomEvent {
    fn added(message: Message) -> Self {
        Self {
            kind: RoomEventKind::Added,
            message_id: ID(message.uuid.to_string()),
            message: Some(message),
        }
    }
}

#[async_graphql::ComplexObject]
impl RoomEvent {
    /// Where this change stands in the room: `roomEvents(roomId, after:)`
    /// resumes right after it.
    async fn cursor(&self, ctx: &Context<'_>) -> Result<String> {
        let message = self.message.as_ref().ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("a room event without its message"))
        })?;
        Ok(message.position_cursor(ctx.state().cursors()))
    }
}

/// The number of the message a cursor names; `BAD_USER_INPUT` for a cursor
/// of another room or of a message that is gone.
async fn start_after(state: &AppState, room_id: Uuid, position: MessagePosition) -> AppResult<i64> {
    let (room, seq, _, id) = position;
    if room != room_id {
        return Err(AppError::bad_input("after is a cursor of another room"));
    }
    match seq {
        Some(seq) => Ok(seq),
        None => sql::seq_of(state.sql(), room_id, id)
            .await?
            .ok_or_else(|| AppError::bad_input("after names a message that no longer exists")),
    }
}

/// A room's messages in number order, from a start number on.
struct Sequenced {
    feed: broadcast::Receiver<messages::Model>,
    room_id: Uuid,
    /// The number of the last message delivered (or skipped as the start).
    delivered: i64,
    /// Reading from CockroachDB until it has nothing after `delivered`.
    replaying: bool,
    /// Read and in order, not yet delivered.
    ready: VecDeque<messages::Model>,
    watch: Watch,
    ended: bool,
}

impl Sequenced {
    /// A subscription to `room_id` for the caller, from after `after` (a
    /// cursor) or from now.
    async fn open(ctx: &Context<'_>, room_id: &ID, after: Option<&str>) -> Result<Self> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(room_id, "roomId")?;
        let state = ctx.state().clone();
        let after = after
            .map(|c| state.cursors().decode::<MessagePosition>(c))
            .transpose()?;
        // Listen first: whatever commits from here on reaches the channel.
        let feed = state.room_feed(room_id);
        require_member(ctx, room_id, user_id).await?;
        let (delivered, replaying) = match after {
            Some(position) => (start_after(&state, room_id, position).await?, true),
            None => (
                sql::last_seq(state.sql(), room_id)
                    .await?
                    .ok_or(AppError::NotFound("room"))?,
                false,
            ),
        };
        let generation = ctx.data_opt::<TokenExpiry>().map(|token| token.generation);
        Ok(Self {
            feed,
            room_id,
            delivered,
            replaying,
            ready: VecDeque::new(),
            watch: Watch {
                state,
                room_id,
                user_id,
                generation,
                checked: Instant::now(),
            },
            ended: false,
        })
    }

    async fn next(&mut self) -> Option<Result<Message>> {
        if self.ended {
            return None;
        }
        match self.next_message().await {
            Ok(Some(message)) => {
                if let Err(refused) = self.watch.still_allowed().await {
                    self.ended = true;
                    return Some(Err(refused.into()));
                }
                Some(Ok(Message::from(message)))
            }
            Ok(None) => None,
            Err(error) => {
                self.ended = true;
                Some(Err(error.into()))
            }
        }
    }

    /// The message numbered `delivered + 1`, once it is committed.
    async fn next_message(&mut self) -> AppResult<Option<messages::Model>> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                if let Some(seq) = message.seq {
                    self.delivered = seq;
                }
                return Ok(Some(message));
            }
            if self.replaying {
                self.read_from_source(None).await?;
                if self.ready.is_empty() {
                    self.replaying = false;
                }
                continue;
            }
            match self.feed.recv().await {
                Ok(message) => match message.seq {
                    Some(seq) if seq <= self.delivered => {}
                    Some(seq) if seq == self.delivered + 1 => {
                        self.delivered = seq;
                        return Ok(Some(message));
                    }
                    // Some were missed: read them (and this one) in order.
                    Some(seq) => {
                        self.read_from_source(Some(seq)).await?;
                        let read_through = self.ready.back().and_then(|m| m.seq);
                        if !self.replaying && read_through.is_none_or(|last| last < seq) {
                            self.ready.push_back(message);
                        }
                    }
                    // Written by a release that did not number messages.
                    None => return Ok(Some(message)),
                },
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, room_id = %self.room_id, "subscriber fell behind; catching up from the source of truth");
                    self.replaying = true;
                }
                Err(RecvError::Closed) => return Ok(None),
            }
        }
    }

    async fn read_from_source(&mut self, through: Option<i64>) -> AppResult<()> {
        let page = sql::messages_after(
            self.watch.state.sql(),
            self.room_id,
            self.delivered,
            through,
            PAGE,
        )
        .await?;
        if through.is_some() && page.len() as u64 == PAGE {
            // More than a page behind: finish the catch-up by replaying.
            self.replaying = true;
        }
        self.ready.extend(page);
        Ok(())
    }
}

/// What a live subscription re-reads about its caller.
struct Watch {
    state: AppState,
    room_id: Uuid,
    user_id: Uuid,
    /// The token generation the subscription was opened with.
    generation: Option<i32>,
    checked: Instant,
}

impl Watch {
    /// `UNAUTHENTICATED` once the account is gone or has revoked the
    /// subscription's token, `FORBIDDEN` once the caller is no longer a
    /// member of the room; read from CockroachDB at most once per
    /// `WS_RECHECK_MS`.
    async fn still_allowed(&mut self) -> AppResult<()> {
        if self.checked.elapsed() < self.state.config().websocket.recheck() {
            return Ok(());
        }
        let sql = self.state.sql();
        let Some(user) = sql::user(sql, self.user_id).await? else {
            return Err(AppError::Unauthenticated("account no longer exists"));
        };
        if self.generation.is_some_and(|g| g != user.token_generation) {
            return Err(AppError::Unauthenticated(
                "this token was revoked; log in again",
            ));
        }
        if !crate::write::rooms::is_member(sql, self.room_id, self.user_id).await? {
            return Err(AppError::Forbidden("no longer a member of this room"));
        }
        self.checked = Instant::now();
        Ok(())
    }
}

/// Shortest time between two pushes of one board to one subscriber.
const BOARD_INTERVAL: Duration = Duration::from_millis(250);
/// How often a board subscription looks again when nothing was heard, so
/// it follows its period into the next bucket.
const BOARD_IDLE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct BoardSubscription;

#[Subscription]
impl BoardSubscription {
    /// The current `period` board's first `first` entries (default 20, at
    /// most 100): once at the start, then whenever they change, at most four
    /// times a second (changes in between are coalesced into the latest),
    /// following the period into its next bucket. Fed by the leaderboard
    /// tops the workers write to MongoDB, heard through its change stream on
    /// every instance; answered like `leaderboard` (CockroachDB when MongoDB
    /// cannot answer).
    async fn leaderboard_changed(
        &self,
        ctx: &Context<'_>,
        period: PeriodArg,
        first: Option<i32>,
    ) -> Result<impl Stream<Item = Result<Vec<LeaderboardEntry>>>> {
        ctx.require_user()?;
        let limit = read::page_size(first)?;
        let board = Board {
            state: ctx.state().clone(),
            period: Period::from(period),
            limit,
            feed: None,
            shown: None,
            pushed: None,
        };
        Ok(futures::stream::unfold(board, |mut board| async move {
            let item = board.next().await;
            Some((item, board))
        }))
    }
}

/// One subscriber's view of a board.
struct Board {
    state: AppState,
    period: Period,
    limit: u64,
    /// The bucket listened to, and its changes.
    feed: Option<(String, watch::Receiver<u64>)>,
    /// What was pushed last.
    shown: Option<Vec<BoardEntry>>,
    pushed: Option<Instant>,
}

impl Board {
    async fn next(&mut self) -> Result<Vec<LeaderboardEntry>> {
        loop {
            let now = domain::now();
            let start = self.period.bucket_start(now);
            let key = boards::key(self.period, start);
            let fresh = self.feed.as_ref().is_none_or(|(k, _)| *k != key);
            if fresh {
                self.feed = Some((key.clone(), self.state.boards().subscribe(&key)));
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

    /// The board's first entries, as `leaderboard` answers them.
    async fn read(&self, start: chrono::NaiveDate) -> AppResult<Vec<BoardEntry>> {
        let (state, period, limit) = (&self.state, self.period, self.limit);
        let rows = state
            .reads()
            .read(
                &ReadRequest::default(),
                "leaderboardChanged".to_owned(),
                RoutedField::Leaderboard,
                || mongo::leaderboard::page(state.read_model(), period, start, None, limit),
                || fallback::leaderboard::page(state.sql(), period, start, None, limit),
            )
            .await?;
        Ok(rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, entry)| entry)
            .collect())
    }
}
