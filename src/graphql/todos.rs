//! Todos: the caller's own, read from and written to the source of truth.
use async_graphql::{
    connection::{Connection, Edge},
    Context, InputObject, MaybeUndefined, Object, Result, ID,
};
use chrono::Utc;

use super::{
    context::{parse_id, ContextExt},
    types::Todo,
};
use crate::{
    domain::{DueAt, Title},
    error::AppError,
    read::{self, sql},
    write::{self, todos::TodoChange},
};

#[derive(InputObject)]
pub struct CreateTodoInput {
    pub title: String,
    pub due_at: Option<chrono::DateTime<Utc>>,
}

/// Omitted fields stay as they are; `dueAt: null` clears the due date.
#[derive(InputObject)]
pub struct UpdateTodoInput {
    pub title: Option<String>,
    pub completed: Option<bool>,
    pub due_at: MaybeUndefined<chrono::DateTime<Utc>>,
}

#[derive(Default)]
pub struct TodoQuery;

#[Object]
impl TodoQuery {
    /// One of the caller's todos.
    async fn todo(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Todo>> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        match sql::todo(ctx.state().sql(), id).await? {
            None => Ok(None),
            Some(t) if t.user_id == user_id => Ok(Some(t.into())),
            Some(_) => Err(AppError::Forbidden("this todo belongs to another user").into()),
        }
    }

    /// The caller's todos, newest first.
    #[graphql(complexity = "super::limits::list_cost(first, child_complexity)")]
    async fn todos(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        completed: Option<bool>,
    ) -> Result<Connection<crate::read::cursor::Lazy, Todo>> {
        let user_id = ctx.require_user()?;
        let limit = read::page_size(first)?;
        let cursors = ctx.state().cursors();
        let position = after
            .as_deref()
            .map(|c| cursors.decode::<sql::TodoPosition>(c))
            .transpose()?;
        let mut rows =
            sql::todos_page(ctx.state().sql(), user_id, completed, position, limit).await?;
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        super::prefetch::users(ctx, "owner", rows.iter().map(|t| t.user_id)).await?;
        let mut page = Connection::new(position.is_some(), has_next);
        page.edges.extend(rows.into_iter().map(|t| {
            let cursor = cursors.lazy(&(t.created_at, t.id));
            Edge::new(cursor, Todo::from(t))
        }));
        Ok(page)
    }
}

#[derive(Default)]
pub struct TodoMutation;

#[Object]
impl TodoMutation {
    async fn create_todo(&self, ctx: &Context<'_>, input: CreateTodoInput) -> Result<Todo> {
        let user_id = ctx.require_user()?;
        let title = Title::parse(&input.title)?;
        let due_at = input
            .due_at
            .map(|d| DueAt::parse(d, Utc::now()))
            .transpose()?;
        let done = write::todos::create(ctx.state().writer(), user_id, title, due_at).await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }

    async fn update_todo(&self, ctx: &Context<'_>, id: ID, input: UpdateTodoInput) -> Result<Todo> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        let now = Utc::now();
        let change = TodoChange {
            title: input.title.as_deref().map(Title::parse).transpose()?,
            completed: input.completed,
            due_at: match input.due_at {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(DueAt::parse(d, now)?)),
            },
        };
        let done = write::todos::update(ctx.state().writer(), user_id, id, change).await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }

    /// Returns the deleted todo's id.
    async fn delete_todo(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let user_id = ctx.require_user()?;
        let id = parse_id(&id, "id")?;
        let done = write::todos::delete(ctx.state().writer(), user_id, id).await?;
        ctx.record_written(&done.events);
        Ok(ID(done.value.to_string()))
    }
}
