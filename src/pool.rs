//! The SQL connection pool, built so that no connection can carry an open
//! transaction from one borrower to the next.
//!
//! sqlx 0.8 has a known flaw: a future dropped while `BEGIN`'s round trip is
//! in flight returns its connection to the pool inside an open transaction
//! that the driver does not count (its rollback guard does nothing at depth
//! 0). Every later borrower would then run inside that old transaction (an
//! old snapshot, its locks, its predicate locks). Three lines keep it out:
//!
//! - the pools are handed out only as [`Db`], whose transactions begin in a
//!   task of their own: a borrower dropped during `BEGIN` leaves that task
//!   to finish the round trip, and the transaction it gets is then dropped
//!   and rolled back as any other (the write path also runs each whole
//!   transaction as a task, see [`crate::write::Writer::transact`]). So the
//!   driver's count of open transactions is the server's, and the compiler
//!   sees to it: no code of the server holds a pool it could `BEGIN` on
//!   otherwise;
//! - on release, a connection the driver counts inside a transaction (a
//!   borrower dropped during `COMMIT`, or while its rollback could not be
//!   queued) is closed instead of being pooled again, and so is one that
//!   does not answer a ping within 2 s (a statement whose caller went away
//!   is still running or waiting on a lock);
//! - every connection sets `idle_in_transaction_session_timeout`, so the
//!   database ends any transaction left idle (CockroachDB has the same
//!   session setting).
//!
//! That ping on release, and sqlx's ping after it, prove a pooled
//! connection answers; so sqlx's ping before every borrow is off, and only a
//! connection idle for `DATABASE_PING_IDLE_MS` is pinged before it is
//! handed out (one the database ended meanwhile is replaced). A connection
//! the database ends within that time after its last use fails the one
//! statement it is handed out for, as a statement in flight would.
use std::{
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context;
use migration::Dialect;
use sea_orm::{
    sqlx::{
        self,
        postgres::{PgConnectOptions, PgPoolOptions},
        ConnectOptions as _, Connection as _, Row as _,
    },
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, SqlxPostgresConnector, Statement, TransactionError,
    TransactionTrait,
};

use crate::config::Config;

/// Which server the pool talks to.
const UNKNOWN: u8 = 0;
const POSTGRES: u8 = 1;
const COCKROACH: u8 = 2;

/// What a pool is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Every statement whose commit must survive a crash of the database:
    /// the source of truth's own rows, the outbox as written, reads.
    Main,
    /// The outbox's bookkeeping (claims, completions, retries, purges) and
    /// the shared rate limits, each an autocommit statement whose loss in
    /// a crash of the database is harmless: a claim or completion lost
    /// means the event is carried again (applying is idempotent), a limit's
    /// count lost means a little more budget once. On PostgreSQL these
    /// sessions commit with `synchronous_commit = off`, so they wait for no
    /// WAL flush; the commit is visible to every session at once all the
    /// same, and WAL order keeps it behind any earlier durable commit.
    /// CockroachDB has no such setting and replicates every commit.
    Bookkeeping,
}

/// The source of truth's two pools (see [`Role`]); both may be the same
/// pool.
#[derive(Clone)]
pub struct Pools {
    pub sql: Db,
    pub bookkeeping: Db,
}

/// How `DATABASE_MAX_CONNECTIONS` is shared: a quarter (at least one) for
/// [`Role::Bookkeeping`] when there are four or more, else none (the main
/// pool then serves both).
pub fn bookkeeping_share(max: u32) -> u32 {
    if max >= 4 {
        max / 4
    } else {
        0
    }
}

/// Connects the pool the server, the worker and the CLI share.
pub async fn connect(config: &Config) -> anyhow::Result<Db> {
    let size = config.database_max_connections;
    connect_as(config, Role::Main, size - bookkeeping_share(size)).await
}

/// Connects a pool of `size` connections for `role`, its statements
/// audited (see [`crate::sql_audit`]).
#[tracing::instrument(skip_all, fields(?role, size))]
pub async fn connect_as(config: &Config, role: Role, size: u32) -> anyhow::Result<Db> {
    let mut options: PgConnectOptions = config
        .database_url
        .expose()
        .parse()
        .context("parsing DATABASE_URL")?;
    options = options.disable_statement_logging();
    // Every session defaults to SERIALIZABLE (CockroachDB's only default;
    // on PostgreSQL whatever the server or database says): a write
    // transaction then starts with one `BEGIN`, not `BEGIN` plus two `SET
    // TRANSACTION` round trips (see `write::Writer`).
    options = options.options([("default_transaction_isolation", "serializable")]);
    if config.database_idle_in_transaction_timeout_ms > 0 {
        options = options.options([(
            "idle_in_transaction_session_timeout",
            config.database_idle_in_transaction_timeout_ms.to_string(),
        )]);
    }
    let ping_idle = Duration::from_millis(config.database_ping_idle_ms);
    let seen = Arc::new(AtomicU8::new(UNKNOWN));
    let pool = PgPoolOptions::new()
        .max_connections(size.max(1))
        .min_connections(match role {
            Role::Main => config.database_min_connections.min(size),
            Role::Bookkeeping => 0,
        })
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every idle connection it hands out; the ping on
        // release (below, and sqlx's own after it) already proved the
        // connection answers, so only one idle for a while is pinged again.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for < ping_idle {
                    return Ok(true);
                }
                // An error (the database ended the session, the network
                // dropped it) or no answer: the connection is closed and
                // another one taken or opened in its place.
                match tokio::time::timeout(RELEASE_CHECK, conn.ping()).await {
                    Ok(answered) => answered.map(|()| true),
                    Err(_) => Ok(false),
                }
            })
        })
        .after_connect(move |conn, _| {
            let seen = seen.clone();
            Box::pin(async move {
                if seen.load(Ordering::Relaxed) == UNKNOWN {
                    let row = sqlx::query("SELECT version()")
                        .fetch_one(&mut *conn)
                        .await?;
                    let version: String = row.try_get(0)?;
                    let kind = match Dialect::from_version(&version) {
                        Dialect::Cockroach => COCKROACH,
                        Dialect::Postgres => POSTGRES,
                    };
                    seen.store(kind, Ordering::Relaxed);
                }
                if role == Role::Bookkeeping && seen.load(Ordering::Relaxed) == POSTGRES {
                    sqlx::Executor::execute(&mut *conn, "SET synchronous_commit = off").await?;
                }
                Ok(())
            })
        })
        .after_release(|conn, _| {
            Box::pin(async move {
                // Every `BEGIN` ran to its end (see `Db`), so the driver's
                // count is the server's.
                if conn.is_in_transaction() {
                    return Ok(discard(
                        "a connection came back inside a transaction; closing it",
                    ));
                }
                // The ping waits for whatever a borrower dropped mid-statement
                // left running; a statement still running after 2 s (or
                // waiting on a lock) is cut short and its connection closed.
                match tokio::time::timeout(RELEASE_CHECK, conn.ping()).await {
                    Ok(answered) => answered.map(|()| true),
                    Err(_) => Ok(discard("a connection came back unanswering; closing it")),
                }
            })
        })
        .connect_with(options)
        .await
        .context("connecting to the SQL database (DATABASE_URL)")?;
    let mut db = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
    crate::sql_audit::attach(&mut db);
    Ok(Db(db))
}

/// Counts and logs a connection the release check closes; `false`, the
/// check's answer for it.
fn discard(message: &'static str) -> bool {
    metrics::counter!("studysync_sql_connections_discarded_total").increment(1);
    tracing::warn!("{message}");
    false
}

/// Longest the release check may take; past it the connection is closed.
/// A statement whose caller went away may still be waiting on a lock: it is
/// cut short, which costs nothing its caller can see.
const RELEASE_CHECK: Duration = Duration::from_secs(2);

/// A pool of the source of truth (see the module's doc): statements as on
/// any sea-orm connection, and transactions that begin in a task of their
/// own, so that no borrower can be dropped in the middle of a `BEGIN`.
#[derive(Clone, Debug)]
pub struct Db(DatabaseConnection);

/// What a pool holds at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occupancy {
    /// The most connections it may open.
    pub max: u32,
    /// The connections it has open, lent or idle.
    pub open: u32,
    /// The open connections no borrower holds.
    pub idle: usize,
}

impl Db {
    pub fn occupancy(&self) -> Occupancy {
        let pool = self.0.get_postgres_connection_pool();
        Occupancy {
            max: pool.options().get_max_connections(),
            open: pool.size(),
            idle: pool.num_idle(),
        }
    }

    /// Closes every connection of the pool.
    pub async fn close(self) -> Result<(), DbErr> {
        self.0.close().await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.0.execute(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.0.execute_unprepared(sql).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.0.query_one(stmt).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.0.query_all(stmt).await
    }
}

#[async_trait::async_trait]
impl TransactionTrait for Db {
    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.begin_with_config(None, None).await
    }

    /// Runs the borrow and the `BEGIN` (and sea-orm's `SET TRANSACTION`,
    /// if asked) in a task the caller cannot cancel: a caller dropped
    /// meanwhile drops the transaction it would have got, which then rolls
    /// back as any dropped transaction does.
    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        let db = self.0.clone();
        tokio::spawn(async move { db.begin_with_config(isolation_level, access_mode).await })
            .await
            .map_err(|e| DbErr::Custom(format!("beginning a transaction: {e}")))?
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>,
            > + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction_with_config(callback, None, None).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T, E>> + Send + 'c>,
            > + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self
            .begin_with_config(isolation_level, access_mode)
            .await
            .map_err(TransactionError::Connection)?;
        let done = callback(&txn).await.map_err(TransactionError::Transaction);
        if done.is_ok() {
            txn.commit().await.map_err(TransactionError::Connection)?;
        } else {
            txn.rollback().await.map_err(TransactionError::Connection)?;
        }
        done
    }
}
