//! The write path: every change to the source of truth runs in one
//! serializable transaction that also records an outbox event per changed
//! aggregate. Nothing here touches MongoDB.
//!
//! Where the events go is the one thing a [`Writer`] can be told otherwise
//! ([`Writer::with_sink`], see [`sink`]); production never does.
pub mod erase;
pub mod outbox;
pub mod rooms;
pub mod sink;
pub mod study;
pub mod todos;
pub mod users;

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use sea_orm::{sqlx, DatabaseTransaction, DbErr, RuntimeErr, TransactionTrait};

use crate::{
    error::{AppError, AppResult},
    pool::Db,
};

pub use outbox::{EventRef, NewEvent};
pub use sink::EventSink;

/// A unit of work run by [`Writer::transact`]; it may run more than once.
pub type Work<'c, T> = Pin<Box<dyn Future<Output = AppResult<T>> + Send + 'c>>;

/// An open write transaction. Outbox events can only be enqueued through it,
/// so an event cannot exist without the transaction that made the change.
pub struct Tx {
    txn: DatabaseTransaction,
    written: Mutex<Vec<EventRef>>,
    /// With a sink, the events it gets after the commit instead of outbox
    /// rows.
    held: Option<sink::Held>,
}

impl Tx {
    /// The connection to run statements on.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    fn record(&self, event: EventRef) {
        if let Ok(mut written) = self.written.lock() {
            written.push(event);
        }
    }
}

/// What a committed transaction produced: its value and the events it wrote.
#[derive(Debug)]
pub struct Committed<T> {
    pub value: T,
    pub events: Vec<EventRef>,
}

/// Runs write transactions with the retry policy CockroachDB requires.
#[derive(Clone)]
pub struct Writer {
    db: Db,
    max_attempts: u32,
    on_commit: Arc<tokio::sync::Notify>,
    sink: Option<Arc<dyn EventSink>>,
    turns: Arc<Turns>,
}

/// Per-key turns for transactions that all update one row (a room's change
/// number). Under SERIALIZABLE, PostgreSQL aborts every transaction that
/// waited on a row another one changed, so eight concurrent senders to one
/// room mostly retry, backing off further each time. Taking turns in the
/// process first leaves the row contended only across instances. Keys are
/// spread over a fixed set of locks, so memory stays bounded; two keys on
/// one lock only take turns with each other.
struct Turns(Box<[tokio::sync::Mutex<()>]>);

impl Turns {
    const LOCKS: usize = 64;

    fn new() -> Self {
        Self(
            (0..Self::LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }

    async fn take(&self, key: uuid::Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        let index = (key.as_u128() % Self::LOCKS as u128) as usize;
        self.0[index].lock().await
    }
}

impl Writer {
    pub fn new(db: Db, max_attempts: u32, on_commit: Arc<tokio::sync::Notify>) -> Self {
        Self {
            db,
            max_attempts: max_attempts.max(1),
            on_commit,
            sink: None,
            turns: Arc::new(Turns::new()),
        }
    }

    /// Sends every transaction's events to `sink` after its commit instead
    /// of writing them to the outbox (see [`sink`]): the benchmark's
    /// comparison modes. Production never calls it.
    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Runs `work` in a SERIALIZABLE transaction and commits it. A
    /// serialization failure (SQLSTATE 40001, CockroachDB's "restart
    /// transaction") or deadlock rolls back and runs `work` again after a
    /// bounded, jittered exponential backoff. Once committed, the writer's
    /// sink (if it has one) gets the transaction's events, and the
    /// in-process sync worker is woken if the transaction wrote outbox
    /// events.
    ///
    /// The transaction runs as a task of its own that the caller awaits, so
    /// it always reaches its `COMMIT` or `ROLLBACK` even when the caller is
    /// dropped (a client hanging up, the request timeout): a future cancelled
    /// during `BEGIN`'s round trip would otherwise hand the pool a connection
    /// inside an open transaction. That is why `work` and `T` are owned.
    pub async fn transact<T, F>(&self, work: F) -> AppResult<Committed<T>>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c Tx) -> Work<'c, T> + Send + 'static,
    {
        self.spawn(None, work).await
    }

    /// [`Self::transact`], after the transactions of this process with the
    /// same `key` that came first (see [`Turns`]): for work that updates
    /// one row every such transaction updates. The turn lasts until the
    /// commit or the last rollback, even when the caller is dropped.
    pub async fn transact_in_turn<T, F>(&self, key: uuid::Uuid, work: F) -> AppResult<Committed<T>>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c Tx) -> Work<'c, T> + Send + 'static,
    {
        self.spawn(Some(key), work).await
    }

    async fn spawn<T, F>(&self, turn: Option<uuid::Uuid>, work: F) -> AppResult<Committed<T>>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c Tx) -> Work<'c, T> + Send + 'static,
    {
        use tracing::Instrument;
        let writer = self.clone();
        let span = tracing::info_span!("transact", attempts = tracing::field::Empty);
        tokio::spawn(
            async move {
                let _turn = match turn {
                    Some(key) => Some(writer.turns.take(key).await),
                    None => None,
                };
                writer.run(work).await
            }
            .instrument(span),
        )
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("write transaction task: {e}")))?
    }

    async fn run<T, F>(&self, mut work: F) -> AppResult<Committed<T>>
    where
        T: Send,
        F: for<'c> FnMut(&'c Tx) -> Work<'c, T>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracing::Span::current().record("attempts", attempt);
            match self.attempt(&mut work).await {
                Ok((done, held)) => {
                    // After the commit and outside the retry: a committed
                    // transaction never runs again.
                    if let Some(sink) = self.sink.as_ref().filter(|_| !held.is_empty()) {
                        sink.after_commit(held).await?;
                    }
                    if !done.events.is_empty() {
                        self.on_commit.notify_one();
                    }
                    return Ok(done);
                }
                Err(AppError::Db(err)) if is_retryable(&err) && attempt < self.max_attempts => {
                    metrics::counter!("studysync_txn_retries_total").increment(1);
                    let delay = backoff(attempt);
                    tracing::debug!(attempt, ?delay, error = %err, "transaction retry");
                    tokio::time::sleep(delay).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One try; also returns the events held for the sink, if there is one.
    ///
    /// One `BEGIN`: every pooled session defaults to SERIALIZABLE and READ
    /// WRITE (`pool::connect`), so naming them would cost two more round
    /// trips (`SET TRANSACTION ...`) per transaction.
    async fn attempt<T, F>(&self, work: &mut F) -> AppResult<(Committed<T>, Vec<NewEvent>)>
    where
        T: Send,
        F: for<'c> FnMut(&'c Tx) -> Work<'c, T>,
    {
        let txn = self.db.begin().await?;
        let tx = Tx {
            txn,
            written: Mutex::new(Vec::new()),
            held: self.sink.as_ref().map(|_| sink::Held::default()),
        };
        let value = match work(&tx).await {
            Ok(value) => value,
            Err(err) => {
                // Dropping the transaction rolls it back; doing it explicitly
                // returns the connection sooner.
                let _ = tx.txn.rollback().await;
                return Err(err);
            }
        };
        let events = tx.written.into_inner().unwrap_or_default();
        let held = tx.held.map(sink::Held::take).unwrap_or_default();
        tx.txn.commit().await?;
        Ok((Committed { value, events }, held))
    }
}

/// Exponential backoff from 5 ms, capped at 500 ms, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let cap = 5u64.saturating_mul(1 << attempt.min(7)).min(500);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap))
}

/// Most attempts [`retrying`] makes.
const STATEMENT_MAX_ATTEMPTS: u32 = 10;

/// Runs one statement again when the database asks for a retry (40001):
/// under SERIALIZABLE even single statements can be chosen as victims.
pub async fn retrying<T, F, Fut>(mut run: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match run().await {
            Err(err) if is_retryable(&err) && attempt < STATEMENT_MAX_ATTEMPTS => {
                let millis = 2u64.saturating_pow(attempt.min(8)) + rand::random::<u64>() % 10;
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            other => return other,
        }
    }
}

/// Whether the database asked us to run the transaction again.
pub fn is_retryable(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) | DbErr::Conn(e) => e,
        _ => return false,
    };
    match runtime {
        RuntimeErr::SqlxError(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        RuntimeErr::Internal(text) => {
            text.contains("40001") || text.contains("restart transaction")
        }
        _ => false,
    }
}

/// Turns a unique-constraint violation into a user-facing conflict.
pub fn conflict_on_unique(err: AppError, message: &str) -> AppError {
    match &err {
        AppError::Db(db)
            if matches!(
                db.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            AppError::Conflict(message.to_owned())
        }
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let delay = backoff(attempt);
            assert!(delay <= Duration::from_millis(500), "{delay:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(10));
    }
}
