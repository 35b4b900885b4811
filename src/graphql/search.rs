//! User search, a routed read (MongoDB, CockroachDB as fallback).
use async_graphql::{connection::Connection, Context, Object, Result};

use super::{
    context::ContextExt,
    routed::{connection, routed},
    types::User,
};
use crate::read::{
    self, fallback,
    model::{query_words, SearchPosition, UserRow},
    mongo,
    routing::RoutedField,
};

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            created_at: u.created_at,
            owner_view: false,
        }
    }
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Users whose name contains a query word (first) or a word beginning
    /// with one (then), newest accounts first within each. Case and accents
    /// are folded; the query is matched literally, never as a pattern.
    #[graphql(complexity = "super::limits::list_cost(first, child_complexity)")]
    async fn search_users(
        &self,
        ctx: &Context<'_>,
        query: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<crate::read::cursor::Lazy, User>> {
        ctx.require_user()?;
        let words = query_words(&query)?;
        let limit = read::page_size(first)?;
        let state = ctx.state();
        let after = after
            .as_deref()
            .map(|c| state.cursors().decode::<SearchPosition>(c))
            .transpose()?;
        let rows = routed(
            ctx,
            RoutedField::SearchUsers,
            || mongo::search::users(state.read_model(), &words, after, limit),
            || fallback::search::users(state.sql(), &words, after, limit),
        )
        .await?;
        let rows = rows
            .into_iter()
            .map(|(rank, u)| ((rank, u.created_at, u.id), User::from(u)))
            .collect();
        Ok(connection(state.cursors(), rows, limit, after.is_some()))
    }
}
