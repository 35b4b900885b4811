//! Chat rooms, membership and messages.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{
    outbox::{self, NewEvent},
    Committed, Tx, Writer,
};
use crate::{
    domain::{MessageBody, RoomName},
    entity::{messages, room_members, rooms},
    error::{AppError, AppResult},
    events::{Aggregate, MessageDoc, RoomDoc, Was},
};

/// Member ids of a room, in a stable order.
pub async fn member_ids(
    conn: &impl sea_orm::ConnectionTrait,
    room_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(room_members::Entity::find()
        .select_only()
        .column(room_members::Column::UserId)
        .filter(room_members::Column::RoomId.eq(room_id))
        .order_by_asc(room_members::Column::UserId)
        .into_tuple()
        .all(conn)
        .await?)
}

async fn room_event(tx: &Tx, room: &rooms::Model, event_type: &'static str) -> AppResult<()> {
    let members = member_ids(tx.conn(), room.id).await?;
    outbox::enqueue(
        tx,
        NewEvent::upsert(
            room.id,
            room.version,
            event_type,
            RoomDoc::new(room, &members),
        ),
    )
    .await
}

/// Adds a member unless the room or the user is at its limit (counted
/// inside the serializable transaction, so concurrent joins cannot pass it).
async fn add_member(tx: &Tx, room_id: Uuid, user_id: Uuid) -> AppResult<()> {
    use crate::domain::{MAX_ROOMS_PER_USER, MAX_ROOM_MEMBERS};
    let members = room_members::Entity::find()
        .filter(room_members::Column::RoomId.eq(room_id))
        .count(tx.conn())
        .await?;
    if members >= MAX_ROOM_MEMBERS {
        return Err(AppError::Conflict(format!(
            "the room is full: a room has at most {MAX_ROOM_MEMBERS} members"
        )));
    }
    let rooms = room_members::Entity::find()
        .filter(room_members::Column::UserId.eq(user_id))
        .count(tx.conn())
        .await?;
    if rooms >= MAX_ROOMS_PER_USER {
        return Err(AppError::Conflict(format!(
            "you are in {MAX_ROOMS_PER_USER} rooms, the most allowed: leave one first"
        )));
    }
    room_members::ActiveModel {
        room_id: Set(room_id),
        user_id: Set(user_id),
        joined_at: Set(crate::domain::now()),
    }
    .insert(tx.conn())
    .await?;
    Ok(())
}

/// Creates a room; its creator is its first member.
#[tracing::instrument(skip_all, fields(user_id = %creator))]
pub async fn create_room(
    writer: &Writer,
    creator: Uuid,
    name: RoomName,
) -> AppResult<Committed<rooms::Model>> {
    writer
        .transact(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                let now = crate::domain::now();
                let room = rooms::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    name: Set(name.into_inner()),
                    created_by: Set(creator),
                    version: Set(1),
                    last_seq: Set(0),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(tx.conn())
                .await?;
                add_member(tx, room.id, creator).await?;
                room_event(tx, &room, "room.created").await?;
                Ok(room)
            })
        })
        .await
}

/// Joins a room. Joining a room one is already in changes nothing.
#[tracing::instrument(skip_all, fields(user_id = %user_id, room_id = %room_id))]
pub async fn join_room(
    writer: &Writer,
    user_id: Uuid,
    room_id: Uuid,
) -> AppResult<Committed<rooms::Model>> {
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let room = rooms::Entity::find_by_id(room_id)
                    .one(tx.conn())
                    .await?
                    .ok_or(AppError::NotFound("room"))?;
                if is_member(tx.conn(), room_id, user_id).await? {
                    return Ok(room);
                }
                add_member(tx, room_id, user_id).await?;
                members_changed(tx, room, "room.member_joined").await
            })
        })
        .await
}

/// A new version of `room` whose members changed, with its event.
async fn members_changed(
    tx: &Tx,
    room: rooms::Model,
    event_type: &'static str,
) -> AppResult<rooms::Model> {
    members_changed_to(tx, room, None, event_type).await
}

/// [`members_changed`], passing the room to `created_by` as well when given
/// (its creator's account is being erased).
pub(super) async fn members_changed_to(
    tx: &Tx,
    room: rooms::Model,
    created_by: Option<Uuid>,
    event_type: &'static str,
) -> AppResult<rooms::Model> {
    let version = room.version + 1;
    let mut row = room.into_active_model();
    if let Some(creator) = created_by {
        row.created_by = Set(creator);
    }
    row.version = Set(version);
    row.updated_at = Set(crate::domain::now());
    let room = row.update(tx.conn()).await?;
    room_event(tx, &room, event_type).await?;
    Ok(room)
}

/// Leaves a room; only members may. The room's document loses the member
/// in the same transaction (an event like a join's).
#[tracing::instrument(skip_all, fields(user_id = %user_id, room_id = %room_id))]
pub async fn leave_room(
    writer: &Writer,
    user_id: Uuid,
    room_id: Uuid,
) -> AppResult<Committed<rooms::Model>> {
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let room = rooms::Entity::find_by_id(room_id)
                    .one(tx.conn())
                    .await?
                    .ok_or(AppError::NotFound("room"))?;
                let left = room_members::Entity::delete_by_id((room_id, user_id))
                    .exec(tx.conn())
                    .await?;
                if left.rows_affected == 0 {
                    return Err(AppError::Forbidden("not a member of this room"));
                }
                members_changed(tx, room, "room.member_left").await
            })
        })
        .await
}

pub async fn is_member(
    conn: &impl sea_orm::ConnectionTrait,
    room_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    Ok(room_members::Entity::find_by_id((room_id, user_id))
        .one(conn)
        .await?
        .is_some())
}

/// Takes the room's next change number if `sender` is a member, in the
/// statement that checks the membership (no round trip of its own). The
/// room's row is then locked until commit, so numbers follow commit order
/// and a number is committed only after every lower one.
async fn next_seq(tx: &Tx, room_id: Uuid, sender: Uuid) -> AppResult<Option<i64>> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "UPDATE rooms SET last_seq = last_seq + 1 \
         WHERE id = $1 AND EXISTS \
         (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2) \
         RETURNING last_seq",
        [room_id.into(), sender.into()],
    );
    let row = tx.conn().query_one(statement).await?;
    Ok(row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?)
}

/// Takes the room's next change number, whoever asks (a sender deletes
/// their own message even after leaving the room).
async fn next_change(tx: &Tx, room_id: Uuid) -> AppResult<i64> {
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
        [room_id.into()],
    );
    let row = tx
        .conn()
        .query_one(statement)
        .await?
        .ok_or(AppError::NotFound("room"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// The caller's own message, read in the transaction.
async fn sent_by(tx: &Tx, sender: Uuid, id: Uuid) -> AppResult<messages::Model> {
    let message = messages::Entity::find_by_id(id)
        .one(tx.conn())
        .await?
        .ok_or(AppError::NotFound("message"))?;
    if message.sender_id != sender {
        return Err(AppError::Forbidden("only its sender can change a message"));
    }
    Ok(message)
}

/// Replaces the body of one of the sender's messages; the sender must still
/// be a member. The edit takes the room's next change number, so
/// `roomEvents` subscribers on every instance receive it in order.
#[tracing::instrument(skip_all, fields(user_id = %sender, message_id = %id))]
pub async fn edit_message(
    writer: &Writer,
    sender: Uuid,
    id: Uuid,
    body: MessageBody,
) -> AppResult<Committed<messages::Model>> {
    writer
        .transact(move |tx| {
            let body = body.clone();
            Box::pin(async move {
                let current = sent_by(tx, sender, id).await?;
                let Some(number) = next_seq(tx, current.room_id, sender).await? else {
                    return Err(AppError::Forbidden(
                        "only members can edit messages in this room",
                    ));
                };
                let now = crate::domain::now();
                let version = current.version + 1;
                let mut row = current.into_active_model();
                row.body = Set(body.into_inner());
                row.event_seq = Set(Some(number));
                row.edited_at = Set(Some(now));
                row.version = Set(version);
                row.updated_at = Set(now);
                let message = row.update(tx.conn()).await?;
                outbox::enqueue(
                    tx,
                    NewEvent::upsert(
                        message.id,
                        message.version,
                        "message.edited",
                        MessageDoc::from(&message),
                    ),
                )
                .await?;
                Ok(message)
            })
        })
        .await
}

/// A deleted message: its room and the number of its deletion.
#[derive(Debug, Clone, Copy)]
pub struct Deleted {
    pub id: Uuid,
    pub room_id: Uuid,
    pub number: i64,
}

/// Deletes one of the sender's messages. The deletion takes the room's next
/// change number and is recorded (ids and numbers only) for subscribers
/// that resume after missing it; the tombstone says where it was, one
/// version above the row, so no late event brings it back.
#[tracing::instrument(skip_all, fields(user_id = %sender, message_id = %id))]
pub async fn delete_message(
    writer: &Writer,
    sender: Uuid,
    id: Uuid,
) -> AppResult<Committed<Deleted>> {
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let current = sent_by(tx, sender, id).await?;
                let deleted = remove_message(tx, &current).await?;
                outbox::enqueue(tx, deleted.1).await?;
                Ok(deleted.0)
            })
        })
        .await
}

/// Deletes `message` in the caller's transaction, records where it was and
/// returns its tombstone event (not enqueued yet).
pub(super) async fn remove_message(
    tx: &Tx,
    message: &messages::Model,
) -> AppResult<(Deleted, NewEvent)> {
    let number = next_change(tx, message.room_id).await?;
    messages::Entity::delete_by_id(message.id)
        .exec(tx.conn())
        .await?;
    tx.conn()
        .execute(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "INSERT INTO message_deletions (room_id, event_seq, message_id, seq, deleted_at) \
             VALUES ($1, $2, $3, $4, now())",
            [
                message.room_id.into(),
                number.into(),
                message.id.into(),
                message.seq.into(),
            ],
        ))
        .await?;
    let was = Was {
        room_id: Some(message.room_id),
        event_seq: Some(number),
        ..Was::default()
    };
    let event = NewEvent::deleted_at(
        Aggregate::Message,
        message.id,
        message.version + 1,
        "message.deleted",
        &was,
    );
    let deleted = Deleted {
        id: message.id,
        room_id: message.room_id,
        number,
    };
    Ok((deleted, event))
}

/// Posts a message; only members may.
#[tracing::instrument(skip_all, fields(user_id = %sender, room_id = %room_id))]
pub async fn send_message(
    writer: &Writer,
    sender: Uuid,
    room_id: Uuid,
    body: MessageBody,
) -> AppResult<Committed<messages::Model>> {
    // Every message of a room updates the room's row (its next number).
    writer
        .transact_in_turn(room_id, move |tx| {
            let body = body.clone();
            Box::pin(async move {
                let Some(seq) = next_seq(tx, room_id, sender).await? else {
                    let exists = rooms::Entity::find_by_id(room_id).one(tx.conn()).await?;
                    return Err(match exists {
                        None => AppError::NotFound("room"),
                        Some(_) => AppError::Forbidden("only members can post to this room"),
                    });
                };
                let now = crate::domain::now();
                let message = messages::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    room_id: Set(room_id),
                    sender_id: Set(sender),
                    body: Set(body.into_inner()),
                    version: Set(1),
                    seq: Set(Some(seq)),
                    event_seq: Set(None),
                    edited_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                outbox::insert_with(tx, message, |message| {
                    vec![NewEvent::upsert(
                        message.id,
                        message.version,
                        "message.sent",
                        MessageDoc::from(message),
                    )]
                })
                .await
            })
        })
        .await
}
