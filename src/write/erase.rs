//! `deleteAccount`: erasure from both stores, in one transaction.
//!
//! The account and everything it owns go: its todos, study sessions and
//! totals, memberships and messages, each with a tombstone for its read-model
//! document (a deleted message also takes its room's next change number, so
//! subscribers are told). Rooms it created pass to their longest-standing
//! member, and a room left with no member goes, with its messages. The
//! account's own outbox events, the only ones that carry its name or email,
//! are scrubbed to tombstones whether or not they were processed.
use std::collections::BTreeSet;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult, ModelTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{
    outbox::{self, NewEvent},
    rooms::{members_changed_to, Deleted},
    Committed, Tx, Writer,
};
use crate::{
    entity::{messages, room_members, rooms, users},
    error::{AppError, AppResult},
    events::{self, Aggregate, Was},
};

/// Events per outbox statement (six values each, well under the protocol's
/// 65,535 parameters).
const EVENTS_PER_STATEMENT: usize = 1_000;

/// What an erasure changed that this instance's subscribers hear of at once
/// (other instances hear of it through the read model's change streams).
#[derive(Debug, Clone, Default)]
pub struct Erased {
    pub user_id: Uuid,
    /// The messages deleted from rooms that remain.
    pub messages: Vec<Deleted>,
    /// Rooms whose members changed, or that are gone.
    pub rooms: Vec<Uuid>,
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

#[derive(Debug, FromQueryResult)]
struct Gone {
    id: Uuid,
    version: i64,
}

/// Deletes the rows `sql` (a `DELETE ... RETURNING id, version`) removes
/// and adds their tombstones to `events`.
async fn delete_all(
    tx: &Tx,
    sql: &str,
    values: Vec<sea_orm::Value>,
    aggregate: Aggregate,
    event_type: &'static str,
    events: &mut Vec<NewEvent>,
) -> AppResult<()> {
    let gone = Gone::find_by_statement(stmt(sql, values))
        .all(tx.conn())
        .await?;
    events.extend(
        gone.into_iter()
            .map(|g| NewEvent::deleted(aggregate, g.id, g.version + 1, event_type)),
    );
    Ok(())
}

/// Erases account `user_id` (its password was checked by the caller).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn delete_account(writer: &Writer, user_id: Uuid) -> AppResult<Committed<Erased>> {
    writer
        .transact(move |tx| {
            Box::pin(async move {
                let user = users::Entity::find_by_id(user_id)
                    .one(tx.conn())
                    .await?
                    .ok_or(AppError::Unauthenticated("account no longer exists"))?;
                let mut events = Vec::new();
                let mut erased = Erased {
                    user_id,
                    ..Erased::default()
                };
                scrub_account_events(tx, user_id).await?;
                let id = vec![user_id.into()];
                delete_all(
                    tx,
                    "DELETE FROM todos WHERE user_id = $1 RETURNING id, version",
                    id.clone(),
                    Aggregate::Todo,
                    "todo.erased",
                    &mut events,
                )
                .await?;
                delete_all(
                    tx,
                    "DELETE FROM study_sessions WHERE user_id = $1 RETURNING id, version",
                    id.clone(),
                    Aggregate::StudySession,
                    "study_session.erased",
                    &mut events,
                )
                .await?;
                erase_totals(tx, user_id, &mut events).await?;
                for room_id in rooms_touched(tx, user_id).await? {
                    erase_from_room(tx, user_id, room_id, &mut events, &mut erased).await?;
                }
                let version = user.version + 1;
                user.delete(tx.conn()).await?;
                events.push(NewEvent::deleted(
                    Aggregate::User,
                    user_id,
                    version,
                    "user.erased",
                ));
                for chunk in events.chunks(EVENTS_PER_STATEMENT) {
                    outbox::enqueue_all(tx, chunk.to_vec()).await?;
                }
                Ok(erased)
            })
        })
        .await
}

/// Replaces the payload of every event about the account (its name and
/// email) with a tombstone's.
async fn scrub_account_events(tx: &Tx, user_id: Uuid) -> AppResult<()> {
    let tombstone = events::tombstone(&Was::default());
    tx.conn()
        .execute(stmt(
            "UPDATE outbox SET payload = $2 \
             WHERE aggregate_type = 'user' AND aggregate_id = $1",
            vec![user_id.into(), tombstone.into()],
        ))
        .await?;
    Ok(())
}

/// Deletes the account's totals; each tombstone names its bucket, so the
/// worker computes that board's top again (past buckets included).
async fn erase_totals(tx: &Tx, user_id: Uuid, events: &mut Vec<NewEvent>) -> AppResult<()> {
    #[derive(FromQueryResult)]
    struct Total {
        id: Uuid,
        version: i64,
        period: String,
        period_start: chrono::NaiveDate,
    }
    let totals = Total::find_by_statement(stmt(
        "DELETE FROM study_totals WHERE user_id = $1 \
         RETURNING id, version, period, period_start",
        vec![user_id.into()],
    ))
    .all(tx.conn())
    .await?;
    events.extend(totals.into_iter().map(|t| {
        let was = Was {
            period: Some(t.period),
            period_start: Some(t.period_start),
            ..Was::default()
        };
        NewEvent::deleted_at(
            Aggregate::StudyTotal,
            t.id,
            t.version + 1,
            "study_total.erased",
            &was,
        )
    }));
    Ok(())
}

/// Every room the account is in, created, or wrote in, in id order (the
/// order rows are locked in).
async fn rooms_touched(tx: &Tx, user_id: Uuid) -> AppResult<BTreeSet<Uuid>> {
    let mut rooms: BTreeSet<Uuid> = BTreeSet::new();
    let member: Vec<Uuid> = room_members::Entity::find()
        .select_only()
        .column(room_members::Column::RoomId)
        .filter(room_members::Column::UserId.eq(user_id))
        .into_tuple()
        .all(tx.conn())
        .await?;
    let created: Vec<Uuid> = rooms::Entity::find()
        .select_only()
        .column(rooms::Column::Id)
        .filter(rooms::Column::CreatedBy.eq(user_id))
        .into_tuple()
        .all(tx.conn())
        .await?;
    let wrote: Vec<Uuid> = messages::Entity::find()
        .select_only()
        .column(messages::Column::RoomId)
        .distinct()
        .filter(messages::Column::SenderId.eq(user_id))
        .into_tuple()
        .all(tx.conn())
        .await?;
    rooms.extend(member);
    rooms.extend(created);
    rooms.extend(wrote);
    Ok(rooms)
}

/// Takes the account out of one room: its messages, its membership and its
/// creatorship; the whole room when nobody else is in it.
async fn erase_from_room(
    tx: &Tx,
    user_id: Uuid,
    room_id: Uuid,
    events: &mut Vec<NewEvent>,
    erased: &mut Erased,
) -> AppResult<()> {
    let Some(room) = rooms::Entity::find_by_id(room_id).one(tx.conn()).await? else {
        return Ok(());
    };
    erased.rooms.push(room_id);
    let others: Vec<Uuid> = room_members::Entity::find()
        .select_only()
        .column(room_members::Column::UserId)
        .filter(room_members::Column::RoomId.eq(room_id))
        .filter(room_members::Column::UserId.ne(user_id))
        .order_by_asc(room_members::Column::JoinedAt)
        .order_by_asc(room_members::Column::UserId)
        .into_tuple()
        .all(tx.conn())
        .await?;
    let Some(&successor) = others.first() else {
        // Nobody is left to read it: the room and every message in it go.
        delete_all(
            tx,
            "DELETE FROM messages WHERE room_id = $1 RETURNING id, version",
            vec![room_id.into()],
            Aggregate::Message,
            "message.erased",
            events,
        )
        .await?;
        tx.conn()
            .execute(stmt(
                "DELETE FROM message_deletions WHERE room_id = $1",
                vec![room_id.into()],
            ))
            .await?;
        let version = room.version + 1;
        room.delete(tx.conn()).await?;
        events.push(NewEvent::deleted(
            Aggregate::Room,
            room_id,
            version,
            "room.erased",
        ));
        return Ok(());
    };
    erase_messages(tx, user_id, room_id, events, erased).await?;
    let left = room_members::Entity::delete_by_id((room_id, user_id))
        .exec(tx.conn())
        .await?
        .rows_affected
        > 0;
    let handed_over = room.created_by == user_id;
    if !left && !handed_over {
        return Ok(());
    }
    let successor = handed_over.then_some(successor);
    members_changed_to(tx, room, successor, "room.member_erased").await?;
    Ok(())
}

/// Deletes the account's messages in a room that remains: they take the
/// room's next change numbers in one statement, and each deletion is
/// recorded and tombstoned as `deleteMessage` does.
async fn erase_messages(
    tx: &Tx,
    user_id: Uuid,
    room_id: Uuid,
    events: &mut Vec<NewEvent>,
    erased: &mut Erased,
) -> AppResult<()> {
    #[derive(FromQueryResult)]
    struct Sent {
        id: Uuid,
        version: i64,
        seq: Option<i64>,
    }
    let sent = Sent::find_by_statement(stmt(
        "DELETE FROM messages WHERE room_id = $1 AND sender_id = $2 \
         RETURNING id, version, seq",
        vec![room_id.into(), user_id.into()],
    ))
    .all(tx.conn())
    .await?;
    if sent.is_empty() {
        return Ok(());
    }
    let mut sent = sent;
    sent.sort_by_key(|m| m.seq);
    let count = i64::try_from(sent.len()).unwrap_or(i64::MAX);
    let last = tx
        .conn()
        .query_one(stmt(
            "UPDATE rooms SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq",
            vec![room_id.into(), count.into()],
        ))
        .await?
        .ok_or(AppError::NotFound("room"))?
        .try_get_by_index::<i64>(0)?;
    let first = last - count + 1;
    for (chunk_index, chunk) in sent.chunks(EVENTS_PER_STATEMENT).enumerate() {
        let offset = (chunk_index * EVENTS_PER_STATEMENT) as i64;
        let mut rows = Vec::with_capacity(chunk.len());
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 4);
        for (i, message) in chunk.iter().enumerate() {
            let number = first + offset + i as i64;
            let n = values.len();
            rows.push(format!(
                "(${}, ${}, ${}, ${}, now())",
                n + 1,
                n + 2,
                n + 3,
                n + 4
            ));
            values.extend([
                room_id.into(),
                number.into(),
                message.id.into(),
                message.seq.into(),
            ]);
            let was = Was {
                room_id: Some(room_id),
                event_seq: Some(number),
                ..Was::default()
            };
            events.push(NewEvent::deleted_at(
                Aggregate::Message,
                message.id,
                message.version + 1,
                "message.erased",
                &was,
            ));
            erased.messages.push(Deleted {
                id: message.id,
                room_id,
                number,
            });
        }
        let sql = format!(
            "INSERT INTO message_deletions (room_id, event_seq, message_id, seq, deleted_at) \
             VALUES {}",
            rows.join(", ")
        );
        tx.conn().execute(stmt(&sql, values)).await?;
    }
    Ok(())
}
