//! Subscriptions: live messages (`messageAdded(roomId, after:)`), a room's
//! changes (`roomEvents`) and live boards (`leaderboardChanged`).
//!
//! Every change to a room's messages (an addition, an edit, a deletion) has
//! a number in its room, taken in commit order (`rooms.last_seq`): when
//! number n is committed, so is every number below it. A subscription
//! therefore handles numbers one by one from where it starts — after
//! `after`'s change, or after the room's latest change when it opens — and
//! never needs a change twice or misses one:
//!
//! - it listens to the room's channel first, then reads where to start, so
//!   nothing committed in between escapes it;
//! - with `after`, it replays from CockroachDB what changed after the
//!   cursor, page by page, before going live: each message once, as it is
//!   now (see `read::sql::room_changes`);
//! - live, a number it has handled already is dropped (the same change may
//!   reach an instance twice: from its own commit and from the read model's
//!   change stream); a number past the next one means some were missed
//!   (committed through another instance and not yet carried, or dropped
//!   because the subscriber fell behind), and those are read from
//!   CockroachDB, in order, instead.
//!
//! `messageAdded` follows the additions only; `roomEvents` all three kinds.
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
use crate::{
    domain::Period,
    read::{
        self,
        model::{ChangeKind, ChangePosition, RoomChange},
        sql::Changes,
    },
};
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
        let live = Sequenced::open(ctx, &room_id, after.as_deref(), Changes::Added).await?;
        Ok(futures::stream::unfold(live, |mut live| async move {
            let item = live.next().await?;
            let message = item.map(|change| change.message.map(Message::from));
            Some((message.and_then(|m| m.ok_or_else(missing)), live))
        }))
    }

    /// A room's changes in commit order, each once: `ADDED` for a message
    /// posted, `EDITED` for a new body (`message.editedAt` says when),
    /// `DELETED` (with `message: null`) for one removed. `after` takes a
    /// `RoomEvent.cursor` or a `Message.cursor`; what changed after it is
    /// replayed first, each message once as it is now (one posted after the
    /// cursor and edited since comes as `ADDED` with its new body; one
    /// posted and deleted since does not come at all). A `DELETED` may name
    /// a message this subscription never delivered (posted and deleted while
    /// it was catching up). Rights are `messageAdded`'s.
    async fn room_events(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<RoomEvent>>> {
        let live = Sequenced::open(ctx, &room_id, after.as_deref(), Changes::All).await?;
        Ok(futures::stream::unfold(live, |mut live| async move {
            let item = live.next().await?;
            Some((item.map(RoomEvent::from), live))
        }))
    }
}

fn missing() -> async_graphql::Error {
    crate::error::AppError::Internal(anyhow::anyhow!("an added message without its row")).into()
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
    #[graphql(skip)]
    position: ChangePosition,
}

impl From<RoomChange> for RoomEvent {
    fn from(change: RoomChange) -> Self {
        Self {
            kind: match change.kind {
                ChangeKind::Added => RoomEventKind::Added,
                ChangeKind::Edited => RoomEventKind::Edited,
                ChangeKind::Deleted => RoomEventKind::Deleted,
            },
            message_id: ID(change.message_id.to_string()),
            message: change.message.map(Message::from),
            position: ChangePosition {
                room_id: change.room_id,
                number: change.number,
            },
        }
    }
}

#[async_graphql::ComplexObject]
impl RoomEvent {
    /// Where this change stands in the room: `roomEvents(roomId, after:)`
    /// resumes right after it.
    async fn cursor(&self, ctx: &Context<'_>) -> String {
        ctx.state().cursors().encode(&self.position)
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
