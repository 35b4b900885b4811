//! One subscriber's numbered stream of a room's messages (see the module
//! above for the rules).
use std::{collections::VecDeque, time::Instant};

use async_graphql::{Context, Result, ID};
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::{
    app::{AppState, RoomSignal},
    entity::messages,
    error::{AppError, AppResult},
    graphql::{
        context::{parse_id, ContextExt, TokenExpiry},
        routed::require_member,
        types::Message,
    },
    read::{model::MessagePosition, sql},
};

/// Messages read from CockroachDB per round trip while catching up.
const PAGE: u64 = 100;

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
pub(super) struct Sequenced {
    feed: broadcast::Receiver<RoomSignal>,
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
    pub(super) async fn open(ctx: &Context<'_>, room_id: &ID, after: Option<&str>) -> Result<Self> {
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

    pub(super) async fn next(&mut self) -> Option<Result<Message>> {
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
                // Rights may have changed: read them now, not on the timer.
                Ok(RoomSignal::Members) => self.watch.read_rights().await?,
                Ok(RoomSignal::Message(message)) => match message.seq {
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
        let recheck = self.state.config().websocket.recheck();
        // Up to half again, at random: the subscribers of one busy room
        // then re-read over a spread of messages, not all at the same one.
        let spread = recheck.mul_f64(rand::random::<f64>() / 2.0);
        if self.checked.elapsed() < recheck + spread {
            return Ok(());
        }
        self.read_rights().await
    }

    /// The caller's rights, read from CockroachDB now.
    pub(super) async fn read_rights(&mut self) -> AppResult<()> {
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
