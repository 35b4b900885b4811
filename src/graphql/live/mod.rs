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
mod board;
mod sequence;

use async_graphql::{Context, Result, Subscription, ID};
use futures::Stream;

use super::{
    context::{parse_id, ContextExt},
    leaderboard::{LeaderboardEntry, PeriodArg},
    routed::require_member,
    types::Message,
};
use crate::{domain::Period, error::AppError, read};
use board::Board;
use sequence::Sequenced;

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

#[derive(Default)]
pub struct BoardSubscription;

#[Subscription]
impl BoardSubscription {
    /// The current `period` board's first `first` entries (default 20, at
    /// most 100; with `roomId`, the board of that room's members, members
    /// only): once at the start, then whenever they change, at most four
    /// times a second (changes in between are coalesced into the latest),
    /// following the period into its next bucket. Fed by what the workers
    /// write to MongoDB (the boards' tops, and for a room its members'
    /// totals), heard through its change streams on every instance; answered
    /// like `leaderboard` (CockroachDB when MongoDB cannot answer).
    async fn leaderboard_changed(
        &self,
        ctx: &Context<'_>,
        period: PeriodArg,
        first: Option<i32>,
        room_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<Vec<LeaderboardEntry>>>> {
        let user_id = ctx.require_user()?;
        let limit = read::page_size(first)?;
        let room = match &room_id {
            Some(id) => {
                let room_id = parse_id(id, "roomId")?;
                require_member(ctx, room_id, user_id).await?;
                Some((room_id, user_id))
            }
            None => None,
        };
        let board = Board::new(ctx.state().clone(), Period::from(period), limit, room);
        // An error (the subscriber left the room) is the last item.
        Ok(futures::stream::unfold(Some(board), |board| async move {
            let mut board = board?;
            let item = board.next().await;
            let board = item.is_ok().then_some(board);
            Some((item, board))
        }))
    }
}
