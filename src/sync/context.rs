//! What the sync side uses, and nothing more: the two stores, the writer
//! (for `verify --repair`), the worker's settings and this process's view of
//! the worker. The API's state hands one out (`AppState::sync`), so the
//! worker never sees tokens, cursors or the GraphQL layer.
use std::sync::Arc;

use migration::Dialect;
use tokio::sync::Notify;

use super::{monitor::Monitor, settings::WorkerSettings};
use crate::{pool::Db, write::Writer};

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct SyncContext {
    inner: Arc<Inner>,
}

struct Inner {
    sql: Db,
    bookkeeping: Db,
    dialect: Dialect,
    mongo: mongodb::Database,
    writer: Writer,
    settings: WorkerSettings,
    monitor: Monitor,
    wake: Arc<Notify>,
}

impl SyncContext {
    pub fn new(
        pools: crate::pool::Pools,
        dialect: Dialect,
        mongo: mongodb::Database,
        writer: Writer,
        settings: WorkerSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                sql: pools.sql,
                bookkeeping: pools.bookkeeping,
                dialect,
                mongo,
                writer,
                settings,
                monitor: Monitor::default(),
                wake,
            }),
        }
    }

    /// The source of truth, where the outbox lives.
    pub fn sql(&self) -> &Db {
        &self.inner.sql
    }

    /// The pool of the outbox's bookkeeping statements (claims,
    /// completions, retries, purges): see [`crate::pool::Role::Bookkeeping`].
    pub fn bookkeeping(&self) -> &Db {
        &self.inner.bookkeeping
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// The MongoDB read model the worker writes.
    pub fn read_model(&self) -> &mongodb::Database {
        &self.inner.mongo
    }

    /// Write transactions, for the repairs `verify` enqueues.
    pub fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    pub fn settings(&self) -> &WorkerSettings {
        &self.inner.settings
    }

    /// This process's view of the worker (last apply, error rate).
    pub fn sync_monitor(&self) -> &Monitor {
        &self.inner.monitor
    }

    /// Signalled after every commit that wrote outbox events.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }
}
