//! Chat history and message search, routed reads (MongoDB, CockroachDB as
//! fallback); membership is always decided on CockroachDB. Live messages are
//! in `live`.
use async_graphql::{connection::Connection, Context, Object, Result, ID};

use super::{
    context::{caller_rooms, parse_id, ContextExt},
    prefetch,
    routed::{connection, require_member, routed},
    types::Message,
};
use crate::read::{
    self, fallback,
    model::{query_words, SearchPosition, TimePosition},
    mongo,
    routing::RoutedField,
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
