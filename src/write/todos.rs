//! Todos: create, change, delete — only by their owner.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, ModelTrait};
use uuid::Uuid;

use super::{
    outbox::{self, NewEvent},
    Committed, Tx, Writer,
};
use crate::{
    domain::{DueAt, Title},
    entity::todos,
    error::{AppError, AppResult},
    events::{Aggregate, TodoDoc},
};

fn event(todo: &todos::Model, event_type: &'static str) -> NewEvent {
    NewEvent::upsert(todo.id, todo.version, event_type, TodoDoc::from(todo))
}

/// A partial change; `due_at: Some(None)` clears the due date.
#[derive(Clone, Debug, Default)]
pub struct TodoChange {
    pub title: Option<Title>,
    pub completed: Option<bool>,
    pub due_at: Option<Option<DueAt>>,
}

#[tracing::instrument(skip_all, fields(user_id = %owner))]
pub async fn create(
    writer: &Writer,
    owner: Uuid,
    title: Title,
    due_at: Option<DueAt>,
) -> AppResult<Committed<todos::Model>> {
    writer
        .transact(move |tx| {
            let title = title.clone();
            Box::pin(async move {
                let now = crate::domain::now();
                let todo = todos::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    user_id: Set(owner),
                    title: Set(title.into_inner()),
                    completed: Set(false),
                    completed_at: Set(None),
                    due_at: Set(due_at.map(DueAt::get)),
                    version: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                outbox::insert_with(tx, todo, |todo| vec![event(todo, "todo.created")]).await
            })
        })
        .await
}

/// Loads a todo for change, refusing anyone but its owner.
async fn owned(tx: &Tx, owner: Uuid, id: Uuid) -> AppResult<todos::Model> {
    let todo = todos::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or(AppError::NotFound("todo"))?;
    if todo.user_id != owner {
        return Err(AppError::Forbidden("this todo belongs to another user"));
    }
    Ok(todo)
}

#[tracing::instrument(skip_all, fields(user_id = %owner, todo_id = %id))]
pub async fn update(
    writer: &Writer,
    owner: Uuid,
    id: Uuid,
    change: TodoChange,
) -> AppResult<Committed<todos::Model>> {
    writer
        .transact(move |tx| {
            let change = change.clone();
            Box::pin(async move {
                let current = owned(tx, owner, id).await?;
                let now = crate::domain::now();
                let version = current.version + 1;
                let was_completed = current.completed;
                let mut row = current.into_active_model();
                if let Some(title) = change.title {
                    row.title = Set(title.into_inner());
                }
                if let Some(completed) = change.completed {
                    row.completed = Set(completed);
                    if completed && !was_completed {
                        row.completed_at = Set(Some(now));
                    } else if !completed {
                        row.completed_at = Set(None);
                    }
                }
                if let Some(due_at) = change.due_at {
                    row.due_at = Set(due_at.map(DueAt::get));
                }
                row.version = Set(version);
                row.updated_at = Set(now);
                let todo = row.update(tx.conn()).await?;
                outbox::enqueue(tx, event(&todo, "todo.updated")).await?;
                Ok(todo)
            })
        })
        .await
}

/// Deletes the row and leaves a tombstone event one version above it.
#[tracing::instrument(skip_all, fields(user_id = %owner, todo_id = %id))]
pub async fn delete(writer: &Writer, owner: Uuid, id: Uuid) -> AppResult<Committed<Uuid>> {
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let current = owned(tx, owner, id).await?;
                let version = current.version + 1;
                current.delete(tx.conn()).await?;
                outbox::enqueue(
                    tx,
                    NewEvent::deleted(Aggregate::Todo, id, version, "todo.deleted"),
                )
                .await?;
                Ok(id)
            })
        })
        .await
}
