//! Chat history, message search and live messages. History and search are
//! routed reads (MongoDB, CockroachDB as fallback); membership is always
//! decided on CockroachDB.
use async_graphql::{connection::Connection, Context, Object, Result, Subscription, ID};
use futures::Stream;
use std::time::Instant;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{
    context::{caller_rooms, parse_id, ContextExt, TokenExpiry},
    prefetch,
    routed::{connection, require_member, routed},
    types::Message,
};
use crate::{
    app::AppState,
    error::{AppError, AppResult},
    read::{
        self, fallback,
        model::{query_words, SearchPosition, TimePosition},
        mongo,
        routing::RoutedField,
        sql,
    },
};

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// A room's messages, newest first; `before` continues with older ones.
    /// Members only. Pages stay stable while new messages arrive: a cursor is
    /// a position in time, so newer messages never shift older pages.
    #[graphql(complexity = "super::limits::list_cost(first, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        first: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Message>> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(&room_id, "roomId")?;
        let limit = read::page_size(first)?;
        let state = ctx.state();
        let before = before
            .as_deref()
            .map(|c| state.cursors().decode::<TimePosition>(c))
            .transpose()?;
        require_member(ctx, room_id, user_id).await?;
        let rows = routed(
            ctx,
            RoutedField::Messages,
            || mongo::history::page(state.read_model(), room_id, before, limit),
            || fallback::history::page(state.sql(), room_id, before, limit),
        )
        .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .map(|m| ((m.created_at, m.id), Message::from(m)))
            .collect();
        prefetch::messages(ctx, rows.iter().map(|(_, m)| m)).await?;
        Ok(connection(state.cursors(), rows, limit, before.is_some()))
    }

    /// Messages whose words match the query, in rooms the caller belongs to
    /// (or in `roomId`, which the caller must belong to). Messages containing
    /// a query word come first, then those containing a word it begins;
    /// newest first within each.
    #[graphql(complexity = "super::limits::list_cost(first, child_complexity)")]
    async fn search_messages(
        &self,
        ctx: &Context<'_>,
        query: String,
        room_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Message>> {
        let user_id = ctx.require_user()?;
        let words = query_words(&query)?;
        let limit = read::page_size(first)?;
        let state = ctx.state();
        let after = after
            .as_deref()
            .map(|c| state.cursors().decode::<SearchPosition>(c))
            .transpose()?;
        let rooms = match room_id {
            Some(id) => {
                let room_id = parse_id(&id, "roomId")?;
                require_member(ctx, room_id, user_id).await?;
                vec![room_id]
            }
            None => caller_rooms(ctx, user_id).await?.to_vec(),
        };
        let rows = routed(
            ctx,
            RoutedField::SearchMessages,
            || mongo::search::messages(state.read_model(), &rooms, &words, after, limit),
            || fallback::search::messages(state.sql(), &rooms, &words, after, limit),
        )
        .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .map(|(rank, m)| ((rank, m.created_at, m.id), Message::from(m)))
            .collect();
        prefetch::messages(ctx, rows.iter().map(|(_, m)| m)).await?;
        Ok(connection(state.cursors(), rows, limit, after.is_some()))
    }
}

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Messages posted to a room from now on; members only. Delivered by the
    /// API instance that committed them (in-process, after commit). Before
    /// it delivers, a subscription re-reads whether its caller is still a
    /// member once `WS_RECHECK_MS` have passed since the last read: a caller
    /// who left or was removed gets one `FORBIDDEN` error, one whose account
    /// is gone or whose token was revoked one `UNAUTHENTICATED`, and the
    /// subscription ends.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> Result<impl Stream<Item = Result<Message>>> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(&room_id, "roomId")?;
        let state = ctx.state().clone();
        let feed = state.room_feed(room_id);
        require_member(ctx, room_id, user_id).await?;
        let generation = ctx.data_opt::<TokenExpiry>().map(|token| token.generation);
        let watch = Watch {
            state,
            room_id,
            user_id,
            generation,
            checked: Instant::now(),
            ended: false,
        };
        Ok(futures::stream::unfold(
            (feed, watch),
            move |(mut feed, mut watch)| async move {
                if watch.ended {
                    return None;
                }
                loop {
                    match feed.recv().await {
                        Ok(message) => {
                            let item = match watch.still_allowed().await {
                                Ok(()) => Ok(Message::from(message)),
                                Err(refused) => {
                                    watch.ended = true;
                                    Err(refused.into())
                                }
                            };
                            return Some((item, (feed, watch)));
                        }
                        Err(RecvError::Lagged(skipped)) => {
                            tracing::warn!(skipped, %room_id, "subscriber fell behind; messages skipped");
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        ))
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
    ended: bool,
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
