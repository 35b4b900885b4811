//! `studysync seed`: demo data of a chosen size, loaded in bulk.
//!
//! Rows are written with multi-row INSERTs, a batch of users (with their
//! todos and sessions) per transaction, through the same [`Writer`] and
//! [`crate::write::outbox::enqueue_all`] the API uses: every row gets its outbox event in
//! the transaction that writes it, with the production payload. Nothing is
//! written to MongoDB here; the sync worker (in `serve` or `worker`) brings
//! the read model up to date from those events, exactly as for API writes.
//! `study_totals` is computed from the batch's sessions in SQL
//! (`INSERT ... SELECT ... GROUP BY`), so totals always equal the sessions.
mod gen;
mod insert;
mod words;

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use uuid::Uuid;

use insert::{insert_messages, insert_rooms, number_rooms, write_batch};

use crate::{
    entity::{rooms, study_sessions, todos, users},
    error::AppResult,
    write::Writer,
};

/// The password every seeded account logs in with.
pub const DEMO_PASSWORD: &str = "studysync-demo";

/// Bind parameters per statement stay under PostgreSQL's 65,535.
const PARAMS_PER_STATEMENT: usize = 60_000;
/// Outbox rows per INSERT (seven bound columns each: id, aggregate type,
/// id and version, event type, payload, trace context).
const EVENTS_PER_STATEMENT: usize = PARAMS_PER_STATEMENT / 7;

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
    // Each room numbers its messages in the order they are written.
    let mut numbered = vec![0_i64; rooms.len()];
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
            let mut message = gen::message(rng, room.id, members, now, span);
            numbered[k] += 1;
            message.seq = Some(numbered[k]);
            batch.push(message);
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
    let last: Vec<(Uuid, i64)> = rooms
        .iter()
        .zip(numbered)
        .filter(|(_, n)| *n > 0)
        .map(|((room, _), n)| (room.id, n))
        .collect();
    writer
        .transact(move |tx| {
            let last = last.clone();
            Box::pin(async move { number_rooms(tx, &last).await })
        })
        .await?;
    Ok(())
}
