//! The SQL connection pool, built so that no connection can carry an open
//! transaction from one borrower to the next.
//!
//! sqlx 0.8 has a known flaw: a future dropped while `BEGIN`'s round trip is
//! in flight returns its connection to the pool inside an open transaction,
//! and the pool's own check on release does not look at the transaction
//! status. Every later borrower then runs inside that old transaction (an old
//! snapshot, its locks, its predicate locks). The write path avoids the
//! cancellation itself (see [`crate::write::Writer::transact`]); this module
//! is the second and third line:
//!
//! - every connection sets `idle_in_transaction_session_timeout`, so the
//!   database ends any transaction left idle (CockroachDB has the same
//!   session setting);
//! - on release, a connection whose session is inside a transaction block is
//!   closed instead of being pooled again, and so is one that does not
//!   answer the check within 2 s (a borrower dropped mid-write can leave half
//!   a message on the wire, which would hold the connection forever).
//!
//! That check on release, and sqlx's ping after it, prove a pooled
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
    DatabaseConnection, SqlxPostgresConnector,
};

use crate::config::Config;

/// Which server the pool talks to; they answer "am I in a transaction?"
/// differently.
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
    pub sql: DatabaseConnection,
    pub bookkeeping: DatabaseConnection,
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
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let size = config.database_max_connections;
    connect_as(config, Role::Main, size - bookkeeping_share(size)).await
}

/// Connects a pool of `size` connections for `role`.
#[tracing::instrument(skip_all, fields(?role, size))]
pub async fn connect_as(
    config: &Config,
    role: Role,
    size: u32,
) -> anyhow::Result<DatabaseConnection> {
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
    let server = Arc::new(AtomicU8::new(UNKNOWN));
    let seen = server.clone();
    let pool = PgPoolOptions::new()
        .max_connections(size.max(1))
        .min_connections(match role {
            Role::Main => config.database_min_connections.min(size),
            Role::Bookkeeping => 0,
        })
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every idle connection it hands out; the check on
        // release (below, and sqlx's own ping after it) already proved the
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
        .after_release(move |conn, _| {
            let server = server.load(Ordering::Relaxed);
            Box::pin(async move {
                let Ok(open) =
                    tokio::time::timeout(RELEASE_CHECK, in_transaction(conn, server)).await
                else {
                    // A borrower dropped mid-write can leave half a message on
                    // the wire: the server then waits for the rest, and the
                    // check never gets its answer. Such a connection is closed.
                    metrics::counter!("studysync_sql_connections_discarded_total").increment(1);
                    tracing::warn!("a connection came back unanswering; closing it");
                    return Ok(false);
                };
                let open = open?;
                if open {
                    metrics::counter!("studysync_sql_connections_discarded_total").increment(1);
                    tracing::warn!("a connection came back inside a transaction; closing it");
                }
                Ok(!open)
            })
        })
        .connect_with(options)
        .await
        .context("connecting to the SQL database (DATABASE_URL)")?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
}

/// Longest the release check may take; past it the connection is closed.
/// A statement whose caller went away may still be waiting on a lock: it is
/// cut short, which costs nothing its caller can see.
const RELEASE_CHECK: Duration = Duration::from_secs(2);

/// Whether the session is inside a transaction block, as the server sees it
/// (the driver's own count misses a `BEGIN` whose reply was never read).
///
/// PostgreSQL gives the first statement of a transaction (sent as a simple
/// query) the transaction's own start time, so a statement that starts later than its transaction
/// runs inside a block someone else opened. CockroachDB says so directly.
async fn in_transaction(conn: &mut sqlx::PgConnection, server: u8) -> Result<bool, sqlx::Error> {
    if conn.is_in_transaction() {
        return Ok(true);
    }
    if server == COCKROACH {
        let row = sqlx::query("SHOW TRANSACTION STATUS")
            .fetch_one(&mut *conn)
            .await?;
        return Ok(row.try_get::<String, _>(0)? != "NoTxn");
    }
    // The simple protocol: with the extended one a statement's timestamp is
    // taken per message, not per statement.
    let row = sqlx::Executor::fetch_one(
        &mut *conn,
        "SELECT pg_catalog.transaction_timestamp() <> pg_catalog.statement_timestamp()",
    )
    .await?;
    row.try_get::<bool, _>(0)
}
