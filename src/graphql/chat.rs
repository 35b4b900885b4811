//! Chat history and message search, routed reads (MongoDB, CockroachDB as
//! fallback); membership is always decided on CockroachDB. Live messages are
//! in `live`.
use async_graphql::{connection::Connection, Context, Object, Result, ID};
use uuid::Uuid;

use super::{
    context::{caller_rooms, parse_id, ContextExt},
    prefetch,
    routed::{connection, require_member, routed},
    types::Message,
};
use crate::{
    error::{AppError, AppResult},
    read::{
        self,
        cursor::Cursors,
        fallback,
        model::{query_words, MessagePosition, SearchPosition, TimePosition},
        mongo,
        routing::RoutedField,
    },
};

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// A room's messages, newest first; `after` continues with older ones
    /// (forward over the newest-first list, as Relay clients page). Members
    /// only. Pages stay stable while new messages arrive: a cursor is a
    /// position in time, so newer messages never shift older pages. `after`
    /// takes an edge's cursor or a `Message.cursor` of this room.
    #[graphql(complexity = "super::limits::list_cost(first, child_complexity)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(deprecation = "Use `after`: Relay clients read `before` as backward paging.")]
        before: Option<String>,
    ) -> Result<Connection<crate::read::cursor::Lazy, Message>> {
        let user_id = ctx.require_user()?;
        let room_id = parse_id(&room_id, "roomId")?;
        let limit = read::page_size(first)?;
        let state = ctx.state();
        let older_than = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input("give `after` or `before`, not both").into())
            }
            (Some(cursor), None) | (None, Some(cursor)) => {
                Some(history_position(state.cursors(), room_id, &cursor)?)
            }
            (None, None) => None,
        };
        require_member(ctx, room_id, user_id).await?;
        let rows = routed(
            ctx,
            RoutedField::Messages,
            || mongo::history::page(state.read_model(), room_id, older_than, limit),
            || fallback::history::page(state.sql(), room_id, older_than, limit),
        )
        .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .map(|m| ((m.created_at, m.id), Message::from(m)))
            .collect();
        prefetch::messages(ctx, rows.iter().map(|(_, m)| m)).await?;
        Ok(connection(
            state.cursors(),
            rows,
            limit,
            older_than.is_some(),
        ))
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
    ) -> Result<Connection<crate::read::cursor::Lazy, Message>> {
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

/// The position a history page continues from: an edge's cursor, or a
/// `Message.cursor` of the same room.
fn history_position(cursors: &Cursors, room_id: Uuid, cursor: &str) -> AppResult<TimePosition> {
    if let Ok(position) = cursors.decode::<TimePosition>(cursor) {
        return Ok(position);
    }
    let (room, _, at, id) = cursors.decode::<MessagePosition>(cursor)?;
    if room != room_id {
        return Err(AppError::bad_input("the cursor is of another room"));
    }
    Ok((at, id))
}
