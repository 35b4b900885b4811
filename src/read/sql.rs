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
    read::model::{ChangeKind, RoomChange},
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

/// Which of a room's changes a reader follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// Additions only, in the order the messages were added.
    Added,
    /// Additions, edits and deletions, in change order.
    All,
}

/// A room's changes numbered `after + 1` to `through`, at most `limit`, and
/// the number through which they are complete (`through`, or less when the
/// limit cut them short). Each message appears once, as it is now: one added
/// in the range as `Added` (even if edited since), one added before it and
/// edited in it as `Edited`, one added before it and deleted in it as
/// `Deleted`; a message added and deleted within the range never existed
/// for this reader. With [`Changes::Added`], only the additions, in the
/// order they were made.
pub async fn room_changes(
    conn: &impl ConnectionTrait,
    room_id: Uuid,
    after: i64,
    through: i64,
    which: Changes,
    limit: u64,
) -> AppResult<(Vec<RoomChange>, i64)> {
    use sea_orm::{DatabaseBackend, FromQueryResult, Statement};
    let limit_value = i64::try_from(limit).unwrap_or(i64::MAX);
    let values = || -> Vec<sea_orm::Value> {
        vec![
            room_id.into(),
            after.into(),
            through.into(),
            limit_value.into(),
        ]
    };
    let sql = match which {
        Changes::Added => {
            "SELECT * FROM messages WHERE room_id = $1 AND seq > $2 AND seq <= $3 \
             ORDER BY seq LIMIT $4"
        }
        Changes::All => {
            "SELECT * FROM messages WHERE room_id = $1 \
             AND ((seq > $2 AND seq <= $3) OR (event_seq > $2 AND event_seq <= $3)) \
             ORDER BY CASE WHEN seq > $2 THEN seq ELSE event_seq END LIMIT $4"
        }
    };
    let rows = messages::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            values(),
        ))
        .all(conn)
        .await?;
    let full = rows.len() as u64 >= limit;
    let mut changes: Vec<RoomChange> = rows
        .into_iter()
        .filter_map(|m| {
            let seq = m.seq?;
            let (number, kind) = if seq > after {
                (seq, ChangeKind::Added)
            } else {
                (m.event_seq?, ChangeKind::Edited)
            };
            Some(RoomChange {
                room_id,
                number,
                kind,
                message_id: m.id,
                message: Some(m),
            })
        })
        .collect();
    let mut reached = match (full, changes.last()) {
        (true, Some(last)) => last.number,
        _ => through,
    };
    if which == Changes::All {
        #[derive(FromQueryResult)]
        struct Deletion {
            event_seq: i64,
            message_id: Uuid,
        }
        let deletions = Deletion::find_by_statement(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT event_seq, message_id FROM message_deletions \
             WHERE room_id = $1 AND event_seq > $2 AND event_seq <= $3 \
             AND (seq IS NULL OR seq <= $2) ORDER BY event_seq LIMIT $4",
            values(),
        ))
        .all(conn)
        .await?;
        if deletions.len() as u64 >= limit {
            if let Some(last) = deletions.last() {
                reached = reached.min(last.event_seq);
            }
        }
        changes.extend(deletions.into_iter().map(|d| RoomChange {
            room_id,
            number: d.event_seq,
            kind: ChangeKind::Deleted,
            message_id: d.message_id,
            message: None,
        }));
        changes.retain(|c| c.number <= reached);
        changes.sort_by_key(|c| c.number);
    }
    Ok((changes, reached))
}
