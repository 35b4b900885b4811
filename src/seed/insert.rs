//! The seed's statements: rows in bulk, each batch with its outbox events,
//! in one transaction per batch.
use std::sync::Arc;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement,
};
use uuid::Uuid;

use super::{Batch, EVENTS_PER_STATEMENT, PARAMS_PER_STATEMENT};

/// Bound columns per row of each bulk insert (every column of the table;
/// checked against the entities by the test below).
const USER_COLUMNS: usize = 9;
const TODO_COLUMNS: usize = 9;
const SESSION_COLUMNS: usize = 8;
const MESSAGE_COLUMNS: usize = 10;
use crate::{
    entity::{messages, room_members, rooms, study_sessions, study_totals, todos, users},
    error::AppResult,
    events::{MessageDoc, RoomDoc, StudySessionDoc, StudyTotalDoc, TodoDoc, UserDoc},
    write::{
        outbox::{self, NewEvent},
        Tx, Writer,
    },
};

/// Counts written by one user batch.
pub(super) struct Written {
    pub users: usize,
    pub todos: usize,
    pub sessions: usize,
    pub totals: usize,
    pub events: usize,
}

pub(super) async fn write_batch(writer: &Writer, batch: Arc<Batch>) -> AppResult<Written> {
    let committed =
        writer
            .transact(move |tx| {
                let batch = Arc::clone(&batch);
                Box::pin(async move {
                    let conn = tx.conn();
                    for chunk in batch.users.chunks(PARAMS_PER_STATEMENT / USER_COLUMNS) {
                        users::Entity::insert_many(chunk.iter().map(user_row))
                            .exec_without_returning(conn)
                            .await?;
                    }
                    for chunk in batch.todos.chunks(PARAMS_PER_STATEMENT / TODO_COLUMNS) {
                        todos::Entity::insert_many(chunk.iter().map(todo_row))
                            .exec_without_returning(conn)
                            .await?;
                    }
                    for chunk in batch
                        .sessions
                        .chunks(PARAMS_PER_STATEMENT / SESSION_COLUMNS)
                    {
                        study_sessions::Entity::insert_many(chunk.iter().map(session_row))
                            .exec_without_returning(conn)
                            .await?;
                    }
                    let ids: Vec<Uuid> = batch.users.iter().map(|u| u.id).collect();
                    let totals = insert_totals(tx, &ids).await?;
                    let mut events: Vec<NewEvent> = Vec::with_capacity(
                        batch.users.len() + batch.todos.len() + batch.sessions.len() + totals.len(),
                    );
                    events.extend(batch.users.iter().map(|u| {
                        NewEvent::upsert(u.id, u.version, "user.created", UserDoc::from(u))
                    }));
                    events.extend(batch.todos.iter().map(|t| {
                        NewEvent::upsert(t.id, t.version, "todo.created", TodoDoc::from(t))
                    }));
                    events.extend(batch.sessions.iter().map(|s| {
                        NewEvent::upsert(
                            s.id,
                            s.version,
                            "study_session.logged",
                            StudySessionDoc::from(s),
                        )
                    }));
                    events.extend(totals.iter().map(|t| {
                        NewEvent::upsert(
                            t.id,
                            t.version,
                            "study_total.updated",
                            StudyTotalDoc::from(t),
                        )
                    }));
                    let count = events.len();
                    enqueue_chunked(tx, events).await?;
                    Ok(Written {
                        users: batch.users.len(),
                        todos: batch.todos.len(),
                        sessions: batch.sessions.len(),
                        totals: totals.len(),
                        events: count,
                    })
                })
            })
            .await?;
    Ok(committed.value)
}

/// Per-user, per-period sums of the batch's sessions, computed by the
/// database (valid on CockroachDB: no window functions or extensions).
async fn insert_totals(tx: &Tx, user_ids: &[Uuid]) -> AppResult<Vec<study_totals::Model>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=user_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO study_totals (user_id, period, period_start, minutes, sessions, version, created_at, updated_at) \
         SELECT s.user_id, p.period, \
                CASE p.period \
                  WHEN 'day' THEN CAST(s.started_at AT TIME ZONE 'UTC' AS DATE) \
                  WHEN 'week' THEN CAST(date_trunc('week', s.started_at AT TIME ZONE 'UTC') AS DATE) \
                  WHEN 'month' THEN CAST(date_trunc('month', s.started_at AT TIME ZONE 'UTC') AS DATE) \
                  ELSE DATE '1970-01-01' END AS bucket, \
                sum(s.minutes)::INT8, count(*), count(*), min(s.created_at), max(s.created_at) \
         FROM study_sessions AS s \
         CROSS JOIN (VALUES ('day'), ('week'), ('month'), ('all')) AS p (period) \
         WHERE s.user_id IN ({}) \
         GROUP BY s.user_id, p.period, bucket",
        placeholders.join(", ")
    );
    let values: Vec<sea_orm::Value> = user_ids.iter().map(|id| (*id).into()).collect();
    let conn = tx.conn();
    conn.execute(Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        values,
    ))
    .await?;
    Ok(study_totals::Entity::find()
        .filter(study_totals::Column::UserId.is_in(user_ids.iter().copied()))
        .all(conn)
        .await?)
}

pub(super) async fn insert_rooms(tx: &Tx, rooms: &[(rooms::Model, Vec<Uuid>)]) -> AppResult<()> {
    let conn = tx.conn();
    rooms::Entity::insert_many(rooms.iter().map(|(r, _)| rooms::ActiveModel {
        id: Set(r.id),
        name: Set(r.name.clone()),
        created_by: Set(r.created_by),
        version: Set(r.version),
        last_seq: Set(r.last_seq),
        created_at: Set(r.created_at),
        updated_at: Set(r.updated_at),
    }))
    .exec_without_returning(conn)
    .await?;
    let members: Vec<room_members::ActiveModel> = rooms
        .iter()
        .flat_map(|(r, m)| {
            m.iter().map(|user_id| room_members::ActiveModel {
                room_id: Set(r.id),
                user_id: Set(*user_id),
                joined_at: Set(r.created_at),
            })
        })
        .collect();
    for chunk in members.chunks(PARAMS_PER_STATEMENT / 3) {
        room_members::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    let events = rooms
        .iter()
        .map(|(r, m)| {
            let mut sorted = m.clone();
            sorted.sort_unstable();
            NewEvent::upsert(r.id, r.version, "room.created", RoomDoc::new(r, &sorted))
        })
        .collect();
    enqueue_chunked(tx, events).await
}

/// Records each room's last message number (no event: the read model does
/// not hold it).
pub(super) async fn number_rooms(tx: &Tx, last: &[(Uuid, i64)]) -> AppResult<()> {
    for (room, seq) in last {
        rooms::Entity::update_many()
            .col_expr(rooms::Column::LastSeq, (*seq).into())
            .filter(rooms::Column::Id.eq(*room))
            .exec(tx.conn())
            .await?;
    }
    Ok(())
}

pub(super) async fn insert_messages(tx: &Tx, batch: &[messages::Model]) -> AppResult<()> {
    for chunk in batch.chunks(PARAMS_PER_STATEMENT / MESSAGE_COLUMNS) {
        messages::Entity::insert_many(chunk.iter().map(|m| messages::ActiveModel {
            id: Set(m.id),
            room_id: Set(m.room_id),
            sender_id: Set(m.sender_id),
            body: Set(m.body.clone()),
            version: Set(m.version),
            seq: Set(m.seq),
            event_seq: Set(m.event_seq),
            edited_at: Set(m.edited_at),
            created_at: Set(m.created_at),
            updated_at: Set(m.updated_at),
        }))
        .exec_without_returning(tx.conn())
        .await?;
    }
    let events = batch
        .iter()
        .map(|m| NewEvent::upsert(m.id, m.version, "message.sent", MessageDoc::from(m)))
        .collect();
    enqueue_chunked(tx, events).await
}

async fn enqueue_chunked(tx: &Tx, mut events: Vec<NewEvent>) -> AppResult<()> {
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(EVENTS_PER_STATEMENT));
        outbox::enqueue_all(tx, events).await?;
        events = rest;
    }
    Ok(())
}

fn user_row(u: &users::Model) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(u.id),
        email: Set(u.email.clone()),
        name: Set(u.name.clone()),
        password_hash: Set(u.password_hash.clone()),
        role: Set(u.role.clone()),
        token_generation: Set(u.token_generation),
        version: Set(u.version),
        created_at: Set(u.created_at),
        updated_at: Set(u.updated_at),
    }
}

fn todo_row(t: &todos::Model) -> todos::ActiveModel {
    todos::ActiveModel {
        id: Set(t.id),
        user_id: Set(t.user_id),
        title: Set(t.title.clone()),
        completed: Set(t.completed),
        completed_at: Set(t.completed_at),
        due_at: Set(t.due_at),
        version: Set(t.version),
        created_at: Set(t.created_at),
        updated_at: Set(t.updated_at),
    }
}

fn session_row(s: &study_sessions::Model) -> study_sessions::ActiveModel {
    study_sessions::ActiveModel {
        id: Set(s.id),
        user_id: Set(s.user_id),
        subject: Set(s.subject.clone()),
        minutes: Set(s.minutes),
        started_at: Set(s.started_at),
        version: Set(s.version),
        created_at: Set(s.created_at),
        updated_at: Set(s.updated_at),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable;

    use super::*;
    use crate::entity::{messages, study_sessions, todos, users};

    /// PostgreSQL's limit on bind parameters per statement.
    const LIMIT: usize = 65_535;
    // Checked when the crate compiles: each bulk insert's rows times its
    // columns. The outbox rows `write::outbox` binds seven columns: id,
    // aggregate type, id and version, event type, payload, trace context.
    const _: () = {
        assert!(PARAMS_PER_STATEMENT / USER_COLUMNS * USER_COLUMNS <= LIMIT);
        assert!(PARAMS_PER_STATEMENT / TODO_COLUMNS * TODO_COLUMNS <= LIMIT);
        assert!(PARAMS_PER_STATEMENT / SESSION_COLUMNS * SESSION_COLUMNS <= LIMIT);
        assert!(PARAMS_PER_STATEMENT / MESSAGE_COLUMNS * MESSAGE_COLUMNS <= LIMIT);
        assert!(EVENTS_PER_STATEMENT * 7 <= LIMIT);
    };

    #[test]
    fn the_column_counts_are_the_tables() {
        assert_eq!(users::Column::iter().count(), USER_COLUMNS);
        assert_eq!(todos::Column::iter().count(), TODO_COLUMNS);
        assert_eq!(study_sessions::Column::iter().count(), SESSION_COLUMNS);
        assert_eq!(messages::Column::iter().count(), MESSAGE_COLUMNS);
    }
}
