//! Where a transaction's events go. Production has one answer: into the
//! outbox, in the transaction that makes the change (no sink; see
//! [`super::outbox`]). An [`EventSink`] given to [`super::Writer::with_sink`]
//! takes them instead: the rows are written as usual, no outbox row is, and
//! the sink receives the events once the transaction has committed.
//!
//! That is the seam the benchmark's comparison modes plug into (the old
//! dual write, and the floor that drops the events), from the `bench`
//! workspace crate: the production build carries no code of theirs. A sink
//! loses what the outbox promises (nothing retries a failed `after_commit`,
//! no consistency token names its events, the worker is never woken), so no
//! production path installs one.
use std::sync::Mutex;

use super::outbox::NewEvent;
use crate::error::AppResult;

/// Receives a committed transaction's events in place of the outbox.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync {
    /// Called once per committed transaction that produced events, with all
    /// of them in the order they were enqueued, before the writer returns.
    /// An error fails the request; the transaction stays committed.
    async fn after_commit(&self, events: Vec<NewEvent>) -> AppResult<()>;
}

/// The events a transaction holds for its writer's sink until it commits.
#[derive(Default)]
pub(super) struct Held(Mutex<Vec<NewEvent>>);

impl Held {
    pub(super) fn hold(&self, events: Vec<NewEvent>) {
        if let Ok(mut held) = self.0.lock() {
            held.extend(events);
        }
    }

    pub(super) fn take(self) -> Vec<NewEvent> {
        self.0.into_inner().unwrap_or_default()
    }
}
