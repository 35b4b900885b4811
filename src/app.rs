//! Application state shared by the API, the worker and the CLI.
mod feed;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use migration::Dialect;
use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

pub use feed::{BoardFeeds, Followed, Listeners, RoomFeeds, RoomSignal};

use crate::{
    auth::{PasswordGate, Tokens},
    config::Config,
    entity::messages,
    pool::{Db, Pools},
    ratelimit::RateLimits,
    read::{cursor::Cursors, routing::ReadRouter},
    sync::SyncContext,
    write::{EventSink, Writer},
};

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// The stores, the writer and the worker's wake-up: held once, here, and
    /// shared with the sync side.
    sync: SyncContext,
    tokens: Tokens,
    rate_limits: Arc<RateLimits>,
    passwords: PasswordGate,
    cursors: Cursors,
    messages: RoomFeeds,
    boards: BoardFeeds,
    listeners: Listeners,
    reads: ReadRouter,
}

impl AppState {
    /// Connects to both stores. MongoDB is connected lazily by its driver, so
    /// the API starts (and writes) even while the read model is down.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Self::connect_sinking(config, None).await
    }

    /// As [`connect`](Self::connect), with a writer that hands every
    /// transaction's events to `sink` instead of the outbox (see
    /// [`crate::write::sink`]): the benchmark's comparison modes.
    pub async fn connect_with_sink(
        config: Config,
        sink: Arc<dyn EventSink>,
    ) -> anyhow::Result<Self> {
        Self::connect_sinking(config, Some(sink)).await
    }

    async fn connect_sinking(
        config: Config,
        sink: Option<Arc<dyn EventSink>>,
    ) -> anyhow::Result<Self> {
        let sql = connect_sql(&config).await?;
        let dialect = Dialect::detect(&sql)
            .await
            .context("reading the SQL server's version")?;
        tracing::info!(dialect = dialect.name(), "connected to the source of truth");
        let bookkeeping = connect_bookkeeping(&config)
            .await?
            .unwrap_or_else(|| sql.clone());
        let mongo = connect_mongo(&config).await?;
        Ok(Self::from_parts(
            config,
            Pools { sql, bookkeeping },
            dialect,
            mongo,
            sink,
        ))
    }

    /// `sink`: where the writer sends events instead of the outbox; `None`
    /// (the outbox) everywhere but in the benchmark.
    pub fn from_parts(
        config: Config,
        pools: Pools,
        dialect: Dialect,
        mongo: mongodb::Database,
        sink: Option<Arc<dyn EventSink>>,
    ) -> Self {
        let Pools { sql, bookkeeping } = pools;
        let outbox_wake = Arc::new(Notify::new());
        let writer = Writer::new(sql.clone(), config.txn_max_attempts, outbox_wake.clone());
        let writer = match sink {
            Some(sink) => writer.with_sink(sink),
            None => writer,
        };
        let tokens = Tokens::new(&config.jwt_secret, config.jwt_ttl_seconds);
        let cursors = Cursors::new(config.jwt_secret.expose());
        let passwords = PasswordGate::new(
            config.password_hash_concurrency,
            config.password_hash_queue,
            Duration::from_millis(config.password_hash_wait_ms),
        );
        let messages = RoomFeeds::default();
        let boards = BoardFeeds::default();
        let reads = ReadRouter::new(&config, sql.clone(), mongo.clone());
        let rate_limits = Arc::new(RateLimits::new(&config, bookkeeping.clone()));
        let sync = SyncContext::new(
            Pools { sql, bookkeeping },
            dialect,
            mongo,
            writer,
            config.sync.clone(),
            outbox_wake,
        );
        Self {
            inner: Arc::new(Inner {
                config,
                sync,
                tokens,
                rate_limits,
                passwords,
                cursors,
                messages,
                boards,
                listeners: Listeners::default(),
                reads,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The source of truth: auth, writes, read-your-writes and fallbacks.
    pub fn sql(&self) -> &Db {
        self.inner.sync.sql()
    }

    /// CockroachDB or its PostgreSQL stand-in; picks the few statements
    /// that differ (see `docs/cockroachdb.md`).
    pub fn dialect(&self) -> Dialect {
        self.inner.sync.dialect()
    }

    /// The MongoDB read model.
    pub fn read_model(&self) -> &mongodb::Database {
        self.inner.sync.read_model()
    }

    /// Runs write transactions (with retries) and wakes the worker on commit.
    pub fn writer(&self) -> &Writer {
        self.inner.sync.writer()
    }

    /// The limits of `logIn`, `signUp` and mutations, shared by every
    /// instance through the source of truth.
    pub fn rate_limits(&self) -> &Arc<RateLimits> {
        &self.inner.rate_limits
    }

    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// Hashes and verifies passwords under the memory bound.
    pub fn passwords(&self) -> &PasswordGate {
        &self.inner.passwords
    }

    /// Signs and checks pagination cursors and consistency tokens.
    pub fn cursors(&self) -> &Cursors {
        &self.inner.cursors
    }

    /// Announces a committed message to this instance's subscribers of its
    /// room.
    pub fn publish_message(&self, message: &messages::Model) {
        self.inner.messages.publish(message);
    }

    /// Announces a committed deletion to this instance's subscribers of its
    /// room.
    pub fn publish_deletion(&self, room_id: Uuid, message_id: Uuid, number: i64) {
        self.inner.messages.deleted(room_id, message_id, number);
    }

    /// After changes may have been missed (the change stream could not
    /// resume where it broke), tells each listened room's subscribers the
    /// number of its latest change: one behind it reads what it missed from
    /// the source of truth.
    pub async fn nudge_subscribers(&self) {
        for room_id in self.inner.messages.listened() {
            match crate::read::sql::last_seq(self.sql(), room_id).await {
                Ok(Some(number)) => self.inner.messages.reached(room_id, number),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error.chain(), %room_id, "reading a room's latest message failed");
                }
            }
        }
    }

    /// Tells this instance's subscribers of `room_id` that its members
    /// changed, so each re-reads its rights at once.
    pub fn members_changed(&self, room_id: Uuid) {
        self.inner.messages.members_changed(room_id);
    }

    /// Membership changes may have been missed: every listened room's
    /// subscribers re-read their rights.
    pub fn all_members_changed(&self) {
        for room_id in self.inner.messages.listened() {
            self.inner.messages.members_changed(room_id);
        }
    }

    /// Leaderboard tops as the worker writes them (`sync::boards::key`).
    pub fn boards(&self) -> &BoardFeeds {
        &self.inner.boards
    }

    /// Messages committed to `room_id` from now on, through any instance.
    pub fn room_feed(&self, room_id: Uuid) -> Followed<broadcast::Receiver<RoomSignal>> {
        Followed::new(
            &self.inner.listeners,
            self.inner.messages.subscribe(room_id),
        )
    }

    /// Changes of the leaderboard top `key` from now on, through any
    /// instance.
    pub fn board_feed(&self, key: &str) -> Followed<watch::Receiver<u64>> {
        Followed::new(&self.inner.listeners, self.inner.boards.subscribe(key))
    }

    /// How many of this instance's subscriptions follow other instances'
    /// changes (its change stream is open only while some do).
    pub fn listeners(&self) -> &Listeners {
        &self.inner.listeners
    }

    /// Decides which store answers each routed read (see `read::routing`).
    pub fn reads(&self) -> &ReadRouter {
        &self.inner.reads
    }

    /// Signalled after every commit that wrote outbox events.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.inner.sync.outbox_wake()
    }

    /// What the sync worker, `verify`, `resync` and the health check use.
    pub fn sync(&self) -> &SyncContext {
        &self.inner.sync
    }

    /// This process's view of the sync worker (last apply, error rate).
    pub fn sync_monitor(&self) -> &crate::sync::monitor::Monitor {
        self.inner.sync.sync_monitor()
    }
}

/// The source of truth's pool (see [`crate::pool`]).
pub async fn connect_sql(config: &Config) -> anyhow::Result<Db> {
    crate::pool::connect(config).await
}

/// The pool of the outbox's bookkeeping and the rate limits
/// ([`crate::pool::Role::Bookkeeping`]); `None` when
/// `DATABASE_MAX_CONNECTIONS` leaves it no share.
pub async fn connect_bookkeeping(config: &Config) -> anyhow::Result<Option<Db>> {
    let share = crate::pool::bookkeeping_share(config.database_max_connections);
    if share == 0 {
        return Ok(None);
    }
    let db = crate::pool::connect_as(config, crate::pool::Role::Bookkeeping, share).await?;
    Ok(Some(db))
}

/// Refuses to run on a schema older than this binary: migrations are a
/// deploy step (`studysync migrate up`) run before new instances start, so
/// instances never race to change the schema. With `migrate_on_start` (one
/// instance, or development) this process applies them itself; the
/// migration lease keeps concurrent runs apart.
pub async fn check_schema(sql: &Db, migrate_on_start: bool) -> anyhow::Result<()> {
    if migrate_on_start {
        let applied = migration::runner::up(sql)
            .await
            .context("applying migrations (MIGRATE_ON_START)")?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied at start");
        }
        return Ok(());
    }
    let status = migration::runner::status(sql)
        .await
        .context("reading the migration ledger")?;
    if !status.unknown.is_empty() {
        // A rolling deploy migrates first: older binaries keep serving on
        // the newer, backwards-compatible schema until they are replaced.
        tracing::warn!(newer = ?status.unknown, "the schema has migrations this binary does not know");
    }
    if !status.pending.is_empty() {
        anyhow::bail!(
            "the database schema is behind this binary: {} pending migration(s) ({}); \
             run `studysync migrate up` first (or set MIGRATE_ON_START=true on a single instance)",
            status.pending.len(),
            status.pending.join(", ")
        );
    }
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn connect_mongo(config: &Config) -> anyhow::Result<mongodb::Database> {
    let mut options = mongodb::options::ClientOptions::parse(config.mongodb_uri.expose())
        .await
        .context("parsing MONGODB_URI")?;
    options.app_name = Some("studysync".to_owned());
    options.max_pool_size = Some(config.mongodb_max_pool_size);
    options.server_selection_timeout = Some(Duration::from_secs(2));
    options.connect_timeout = Some(Duration::from_secs(2));
    let client = mongodb::Client::with_options(options).context("creating the MongoDB client")?;
    Ok(client.database(&config.mongodb_db))
}
