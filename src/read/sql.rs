//! Reads from the source of truth.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, IntoCondition},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    entity::{messages, room_members, rooms, todos, users},
    error::AppResult,
};

pub async fn user(conn: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(conn).await?)
}

pub async fn user_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> AppResult<Option<users::Model>> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(conn)
        .await?)
}

pub async fn users_by_ids(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, users::Model>> {
    let rows = users::Entity::find()
        .filter(users::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|u| (u.id, u)).collect())
}

pub async fn todo(conn: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<todos::Model>> {
    Ok(todos::Entity::find_by_id(id).one(conn).await?)
}

/// Position of a todo in its owner's newest-first list.
pub type TodoPosition = (DateTime<Utc>, Uuid);

/// One page of a user's todos, newest first, after `after`; fetches
/// `limit + 1` rows so the caller knows whether another page exists.
pub async fn todos_page(
    conn: &impl ConnectionTrait,
    owner: Uuid,
    completed: Option<bool>,
    after: Option<TodoPosition>,
    limit: u64,
) -> AppResult<Vec<todos::Model>> {
    use todos::Column as C;
    let mut query = todos::Entity::find().filter(C::UserId.eq(owner));
    if let Some(completed) = completed {
        query = query.filter(C::Completed.eq(completed));
    }
    if let Some((created_at, id)) = after {
        query = query.filter(
            Condition::any().add(C::CreatedAt.lt(created_at)).add(
                Expr::col(C::CreatedAt)
                    .eq(created_at)
                    .and(Expr::col(C::Id).lt(id))
                    .into_condition(),
            ),
        );
    }
    Ok(query
        .order_by_desc(C::CreatedAt)
        .order_by_desc(C::Id)
        .limit(limit + 1)
        .all(conn)
        .await?)
}

/// Rooms the user belongs to, oldest first.
pub async fn rooms_of(conn: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Vec<rooms::Model>> {
    let ids: Vec<Uuid> = room_members::Entity::find()
        .select_only()
        .column(room_members::Column::RoomId)
        .filter(room_members::Column::UserId.eq(user_id))
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(rooms::Entity::find()
        .filter(rooms::Column::Id.is_in(ids))
        .order_by_asc(rooms::Column::CreatedAt)
        .order_by_asc(rooms::Column::Id)
        .all(conn)
        .await?)
}

pub async fn rooms_by_ids(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, rooms::Model>> {
    let rows = rooms::Entity::find()
        .filter(rooms::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Member ids for each of the given rooms, in join order.
pub async fn members_of_rooms(
    conn: &impl ConnectionTrait,
    room_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    let rows = room_members::Entity::find()
        .filter(room_members::Column::RoomId.is_in(room_ids.iter().copied()))
        .order_by_asc(room_members::Column::JoinedAt)
        .order_by_asc(room_members::Column::UserId)
        .all(conn)
        .await?;
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for row in rows {
        out.entry(row.room_id).or_default().push(row.user_id);
    }
    Ok(out)
}

/// Ids of the rooms a user belongs to (authorization decisions).
pub async fn room_ids_of(conn: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(room_members::Entity::find()
        .select_only()
        .column(room_members::Column::RoomId)
        .filter(room_members::Column::UserId.eq(user_id))
        .into_tuple()
        .all(conn)
        .await?)
}

/// The number of the last message committed to a room (0: none; `None`: no
/// such room).
pub async fn last_seq(conn: &impl ConnectionTrait, room_id: Uuid) -> AppResult<Option<i64>> {
    Ok(rooms::Entity::find_by_id(room_id)
        .select_only()
        .column(rooms::Column::LastSeq)
        .into_tuple()
        .one(conn)
        .await?)
}

/// The number of one message of a room.
pub async fn seq_of(
    conn: &impl ConnectionTrait,
    room_id: Uuid,
    message_id: Uuid,
) -> AppResult<Option<i64>> {
    let seq: Option<Option<i64>> = messages::Entity::find_by_id(message_id)
        .filter(messages::Column::RoomId.eq(room_id))
        .select_only()
        .column(messages::Column::Seq)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(seq.flatten())
}

/// A room's messages numbered `after + 1` to `through` (at most `limit`),
/// in number order.
pub async fn messages_after(
    conn: &impl ConnectionTrait,
    room_id: Uuid,
    after: i64,
    through: Option<i64>,
    limit: u64,
) -> AppResult<Vec<messages::Model>> {
    let mut query = messages::Entity::find()
        .filter(messages::Column::RoomId.eq(room_id))
        .filter(messages::Column::Seq.gt(after));
    if let Some(through) = through {
        query = query.filter(messages::Column::Seq.lte(through));
    }
    Ok(query
        .order_by_asc(messages::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}

/// A room's message with the highest number.
pub async fn latest_message(
    conn: &impl ConnectionTrait,
    room_id: Uuid,
) -> AppResult<Option<messages::Model>> {
    Ok(messages::Entity::find()
        .filter(messages::Column::RoomId.eq(room_id))
        .filter(messages::Column::Seq.is_not_null())
        .order_by_desc(messages::Column::Seq)
        .one(conn)
        .await?)
}
