//! `studysync seed`: demo data of a chosen size, loaded in bulk.
//!
//! Rows are written with multi-row INSERTs, a batch of users (with their
//! todos and sessions) per transaction, through the same [`Writer`] and
//! [`outbox::enqueue_all`] the API uses: every row gets its outbox event in
//! the transaction that writes it, with the production payload. Nothing is
//! written to MongoDB here; the sync worker (in `serve` or `worker`) brings
//! the read model up to date from those events, exactly as for API writes.
//! `study_totals` is computed from the batch's sessions in SQL
//! (`INSERT ... SELECT ... GROUP BY`), so totals always equal the sessions.
mod gen;
mod words;

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement,
};
use uuid::Uuid;

use crate::{
    entity::{messages, room_members, rooms, study_sessions, study_totals, todos, users},
    error::AppResult,
    events::{MessageDoc, RoomDoc, StudySessionDoc, StudyTotalDoc, TodoDoc, UserDoc},
    write::{
        outbox::{self, NewEvent},
        Tx, Writer,
    },
};

/// The password every seeded account logs in with.
pub const DEMO_PASSWORD: &str = "studysync-demo";

/// Bind parameters per statement stay under PostgreSQL's 65,535.
const PARAMS_PER_STATEMENT: usize = 60_000;
/// Outbox rows per INSERT (six bound columns each).
const EVENTS_PER_STATEMENT: usize = PARAMS_PER_STATEMENT / 6;

/// How much data to create.
#[derive(Clone, Debug, clap::Args)]
pub struct SeedArgs {
    /// Accounts to create (emails user<N>@example.com).
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// Study sessions, spread over the users with a heavy tail.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Todos, spread evenly over the users.
    #[arg(long, default_value_t = 5_000)]
    pub todos: usize,
    /// Chat rooms, each with 3-40 members.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Chat messages, most of them in a few busy rooms.
    #[arg(long, default_value_t = 5_000)]
    pub messages: usize,
    /// Months of history the data spreads over, ending now.
    #[arg(long, default_value_t = 6)]
    pub months: u32,
    /// Users (with their todos and sessions) per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Random seed: the same flags give the same shape of data.
    #[arg(long, default_value_t = 42)]
    pub rng_seed: u64,
}

/// What was written.
#[derive(Debug, Default, Clone)]
pub struct SeedReport {
    pub users: usize,
    pub todos: usize,
    pub sessions: usize,
    pub totals: usize,
    pub rooms: usize,
    pub memberships: usize,
    pub messages: usize,
    pub events: usize,
    pub elapsed: std::time::Duration,
}

impl SeedReport {
    /// One progress line: what is written so far and how long it took.
    pub fn progress(&self) -> String {
        format!(
            "{} users, {} sessions, {} messages, {} events ({:.1} s)",
            self.users,
            self.sessions,
            self.messages,
            self.events,
            self.elapsed.as_secs_f64()
        )
    }
}

/// One transaction's worth of rows.
#[derive(Default)]
struct Batch {
    users: Vec<users::Model>,
    todos: Vec<todos::Model>,
    sessions: Vec<study_sessions::Model>,
}

/// Writes the demo data; `progress` is called after each transaction.
#[tracing::instrument(skip_all, fields(users = args.users, sessions = args.sessions))]
pub async fn seed(
    writer: &Writer,
    args: &SeedArgs,
    mut progress: impl FnMut(&SeedReport),
) -> AppResult<SeedReport> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.rng_seed);
    let now = crate::domain::now();
    let span = Duration::days(30 * i64::from(args.months.max(1)));
    let hash = crate::auth::hash_password(crate::domain::Password::parse(DEMO_PASSWORD)?).await?;
    let session_counts = gen::skewed_counts(&mut rng, args.users, args.sessions);
    let todo_counts = gen::even_counts(&mut rng, args.users, args.todos);
    let mut report = SeedReport::default();
    let mut user_ids = Vec::with_capacity(args.users);
    let batch_size = args.batch.max(1);
    for first in (0..args.users).step_by(batch_size) {
        let mut batch = Batch::default();
        for index in first..(first + batch_size).min(args.users) {
            let joined = gen::recent(&mut rng, now - span, Duration::days(60));
            let user = gen::user(&mut rng, index, joined, &hash);
            for _ in 0..session_counts[index] {
                batch
                    .sessions
                    .push(gen::session(&mut rng, user.id, now, span));
            }
            for _ in 0..todo_counts[index] {
                batch.todos.push(gen::todo(&mut rng, user.id, now, span));
            }
            user_ids.push(user.id);
            batch.users.push(user);
        }
        let written = write_batch(writer, Arc::new(batch)).await?;
        report.users += written.users;
        report.todos += written.todos;
        report.sessions += written.sessions;
        report.totals += written.totals;
        report.events += written.events;
        report.elapsed = started.elapsed();
        progress(&report);
    }
    seed_rooms(
        writer,
        &mut rng,
        args,
        &user_ids,
        now,
        span,
        &mut report,
        &mut progress,
    )
    .await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Rooms with their members, then messages in batches; a message belongs to
/// a room with a probability falling with the room's rank (a few busy rooms).
#[allow(clippy::too_many_arguments)]
async fn seed_rooms(
    writer: &Writer,
    rng: &mut StdRng,
    args: &SeedArgs,
    user_ids: &[Uuid],
    now: DateTime<Utc>,
    span: Duration,
    report: &mut SeedReport,
    progress: &mut impl FnMut(&SeedReport),
) -> AppResult<()> {
    if args.rooms == 0 || user_ids.is_empty() {
        return Ok(());
    }
    let rooms: Vec<(rooms::Model, Vec<Uuid>)> = (0..args.rooms)
        .map(|i| gen::room(rng, i, user_ids, now, span))
        .collect();
    let rooms = Arc::new(rooms);
    let written = Arc::clone(&rooms);
    writer
        .transact(move |tx| {
            let rooms = Arc::clone(&written);
            Box::pin(async move { insert_rooms(tx, &rooms).await })
        })
        .await?;
    report.rooms = rooms.len();
    report.memberships = rooms.iter().map(|(_, m)| m.len()).sum();
    report.events += rooms.len();
    let weights: Vec<f64> = (0..rooms.len()).map(|k| 1.0 / (k as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut left = args.messages;
    while left > 0 {
        let n = left.min(EVENTS_PER_STATEMENT);
        left -= n;
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let mut x = rng.gen_range(0.0..total);
            let mut k = 0;
            while k + 1 < weights.len() && x >= weights[k] {
                x -= weights[k];
                k += 1;
            }
            let (room, members) = &rooms[k];
            batch.push(gen::message(rng, room.id, members, now, span));
        }
        let batch = Arc::new(batch);
        writer
            .transact(move |tx| {
                let batch = Arc::clone(&batch);
                Box::pin(async move { insert_messages(tx, &batch).await })
            })
            .await?;
        report.messages += n;
        report.events += n;
        progress(report);
    }
    Ok(())
}

/// Counts written by one user batch.
struct Written {
    users: usize,
    todos: usize,
    sessions: usize,
    totals: usize,
    events: usize,
}

async fn write_batch(writer: &Writer, batch: Arc<Batch>) -> AppResult<Written> {
    let committed =
        writer
            .transact(move |tx| {
                let batch = Arc::clone(&batch);
                Box::pin(async move {
                    let conn = tx.conn();
                    for chunk in batch.users.chunks(PARAMS_PER_STATEMENT / 8) {
                        users::Entity::insert_many(chunk.iter().map(user_row))
                            .exec_without_returning(conn)
                            .await?;
                    }
                    for chunk in batch.todos.chunks(PARAMS_PER_STATEMENT / 9) {
                        todos::Entity::insert_many(chunk.iter().map(todo_row))
                            .exec_without_returning(conn)
                            .await?;
                    }
                    for chunk in batch.sessions.chunks(PARAMS_PER_STATEMENT / 8) {
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

async fn insert_rooms(tx: &Tx, rooms: &[(rooms::Model, Vec<Uuid>)]) -> AppResult<()> {
    let conn = tx.conn();
    rooms::Entity::insert_many(rooms.iter().map(|(r, _)| rooms::ActiveModel {
        id: Set(r.id),
        name: Set(r.name.clone()),
        created_by: Set(r.created_by),
        version: Set(r.version),
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

async fn insert_messages(tx: &Tx, batch: &[messages::Model]) -> AppResult<()> {
    for chunk in batch.chunks(PARAMS_PER_STATEMENT / 7) {
        messages::Entity::insert_many(chunk.iter().map(|m| messages::ActiveModel {
            id: Set(m.id),
            room_id: Set(m.room_id),
            sender_id: Set(m.sender_id),
            body: Set(m.body.clone()),
            version: Set(m.version),
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
