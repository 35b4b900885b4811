//! One subscriber's numbered stream of a room's changes (see the module
//! above for the rules).
use std::{collections::VecDeque, time::Instant};

use async_graphql::{Context, Result, ID};
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::{
    app::{AppState, Followed, RoomSignal},
    error::{AppError, AppResult},
    graphql::{
        context::{parse_id, ContextExt, TokenExpiry},
        routed::require_member,
    },
    read::{
        model::{ChangeKind, ChangePosition, MessagePosition, RoomChange},
        sql::{self, Changes},
    },
};

/// Changes read from CockroachDB per round trip while catching up.
const PAGE: u64 = 100;

/// The change number a cursor names: a `RoomEvent.cursor`'s own, or the
/// addition of a `Message.cursor`'s message; `BAD_USER_INPUT` for a cursor
/// of another room or of a message that is gone.
async fn start_after(state: &AppState, room_id: Uuid, cursor: &str) -> AppResult<i64> {
    let cursors = state.cursors();
    if let Ok(change) = cursors.decode::<ChangePosition>(cursor) {
        if change.room_id != room_id {
            return Err(AppError::bad_input("after is a cursor of another room"));
        }
        return Ok(change.number);
    }
    let (room, seq, _, id) = cursors.decode::<MessagePosition>(cursor)?;
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

/// A room's changes in number order, from a start number on.
pub(super) struct Sequenced {
    feed: Followed<broadcast::Receiver<RoomSignal>>,
    room_id: Uuid,
    which: Changes,
    /// Every change numbered up to here has been delivered, skipped (not
    /// followed, or superseded) or read into `ready`.
    delivered: i64,
    /// Reading from CockroachDB through this number before going on live.
    catch_up: Option<i64>,
    /// Read and in order, not yet delivered.
    ready: VecDeque<RoomChange>,
    watch: Watch,
    ended: bool,
}

impl Sequenced {
    /// A subscription to `room_id`'s changes (`which` of them) for the
    /// caller, from after `after` (a cursor) or from now.
    pub(super) async fn open(
        ctx: &Context<'_>,
        room_id: &ID,
        after: Option<&str>,
        which: Changes,
    ) -> Result<Self> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(room_id, "roomId")?;
        let state = ctx.state().clone();
        // Listen first: whatever commits from here on reaches the channel.
        let feed = state.room_feed(room_id);
        require_member(ctx, room_id, user_id).await?;
        let latest = sql::last_seq(state.sql(), room_id)
            .await?
            .ok_or(AppError::NotFound("room"))?;
        let (delivered, catch_up) = match after {
            Some(cursor) => (start_after(&state, room_id, cursor).await?, Some(latest)),
            None => (latest, None),
        };
        let generation = ctx.data_opt::<TokenExpiry>().map(|token| token.generation);
        Ok(Self {
            feed,
            room_id,
            which,
            delivered,
            catch_up,
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

    pub(super) async fn next(&mut self) -> Option<Result<RoomChange>> {
        if self.ended {
            return None;
        }
        match self.next_change().await {
            Ok(Some(change)) => {
                if let Err(refused) = self.watch.still_allowed().await {
                    self.ended = true;
                    return Some(Err(refused.into()));
                }
                Some(Ok(change))
            }
            Ok(None) => None,
            Err(error) => {
                self.ended = true;
                Some(Err(error.into()))
            }
        }
    }

    /// The next change after `delivered` that this subscription follows,
    /// once it is committed.
    async fn next_change(&mut self) -> AppResult<Option<RoomChange>> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Ok(Some(change));
            }
            if let Some(through) = self.catch_up {
                if self.delivered >= through {
                    self.catch_up = None;
                } else {
                    self.read_from_source(through).await?;
                }
                continue;
            }
            let change = match self.feed.recv().await {
                // Rights may have changed: read them now, not on the timer.
                Ok(RoomSignal::Members) => {
                    self.watch.read_rights().await?;
                    continue;
                }
                Ok(RoomSignal::Reached(number)) => {
                    self.behind(number);
                    continue;
                }
                Ok(RoomSignal::Message(message)) => match RoomChange::of_message(message) {
                    Some(change) => change,
                    // Written by a release that did not number messages.
                    None => continue,
                },
                Ok(RoomSignal::Deleted { message_id, number }) => RoomChange {
                    room_id: self.room_id,
                    number,
                    kind: ChangeKind::Deleted,
                    message_id,
                    message: None,
                },
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, room_id = %self.room_id, "subscriber fell behind; catching up from the source of truth");
                    let latest = sql::last_seq(self.watch.state.sql(), self.room_id).await?;
                    self.behind(latest.unwrap_or(self.delivered));
                    continue;
                }
                Err(RecvError::Closed) => return Ok(None),
            };
            if change.number <= self.delivered {
                // Heard twice (its own commit and the change stream), or
                // read already.
                continue;
            }
            if change.number > self.delivered + 1 {
                // Some were missed: read them, and this one, in order.
                self.behind(change.number);
                continue;
            }
            self.delivered = change.number;
            if self.follows(&change) {
                return Ok(Some(change));
            }
        }
    }

    /// Whether this subscription delivers `change`.
    fn follows(&self, change: &RoomChange) -> bool {
        self.which == Changes::All || change.kind == ChangeKind::Added
    }

    /// Changes through `number` are committed: read those after
    /// `delivered` from the source of truth.
    fn behind(&mut self, number: i64) {
        if number > self.delivered {
            self.catch_up = Some(self.catch_up.map_or(number, |n| n.max(number)));
        }
    }

    async fn read_from_source(&mut self, through: i64) -> AppResult<()> {
        let (page, reached) = sql::room_changes(
            self.watch.state.sql(),
            self.room_id,
            self.delivered,
            through,
            self.which,
            PAGE,
        )
        .await?;
        tracing::debug!(
            after = self.delivered,
            through,
            reached,
            read = page.len(),
            "room changes read from the source"
        );
        self.ready.extend(page);
        self.delivered = reached;
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
