//! Which store answers each routed field, decided in one place.
//!
//! Analytics, search, chat history and leaderboards are read from MongoDB.
//! A routed read falls back to CockroachDB — computing the same answer from
//! the source tables — when MongoDB errors, is unreachable, is slower than
//! `READ_MODEL_TIMEOUT_MS`, or has not applied the writes named by the
//! client's consistency token within `CONSISTENCY_WAIT_MS`. Fallbacks are
//! logged, counted (`studysync_read_fallback_total{field,reason}`) and listed
//! in the response's `extensions.provenance`; they never fail the request.
//! Everything else (`me`, `user`, `todo(s)`, `rooms`, membership and every
//! authorization decision) reads CockroachDB directly through `read::sql`.
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use super::freshness::{caught_up, measure_lag};
pub use super::provenance::{FallbackReason, Provenance, ReadRequest, Store};
use crate::{config::Config, error::AppResult, events::Aggregate, pool::Db, write::EventRef};

/// The fields whose answer may come from either store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutedField {
    Messages,
    SearchUsers,
    SearchMessages,
    Leaderboard,
    MyRank,
    StudyStats,
    Dashboard,
}

impl RoutedField {
    pub fn name(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::SearchUsers => "searchUsers",
            Self::SearchMessages => "searchMessages",
            Self::Leaderboard => "leaderboard",
            Self::MyRank => "myRank",
            Self::StudyStats => "studyStats",
            Self::Dashboard => "dashboard",
        }
    }

    /// The store that answers the field when it is healthy and caught up.
    pub fn home(self) -> Store {
        match self {
            Self::Messages
            | Self::SearchUsers
            | Self::SearchMessages
            | Self::Leaderboard
            | Self::MyRank
            | Self::StudyStats
            | Self::Dashboard => Store::MongoDb,
        }
    }

    /// Aggregates whose documents the field reads: a consistency token's
    /// writes to other aggregates cannot change its answer, so it does not
    /// wait for them.
    fn reads(self) -> &'static [Aggregate] {
        match self {
            Self::Messages | Self::SearchMessages => &[Aggregate::Message],
            Self::SearchUsers => &[Aggregate::User],
            Self::Leaderboard | Self::MyRank => &[Aggregate::StudyTotal],
            Self::StudyStats => &[Aggregate::StudySession, Aggregate::Todo],
            Self::Dashboard => &[
                Aggregate::StudyTotal,
                Aggregate::StudySession,
                Aggregate::Todo,
            ],
        }
    }
}

/// How long a measured lag is reused: measuring costs a SQL round trip.
const LAG_TTL: Duration = Duration::from_secs(1);
/// Pause between checks of whether MongoDB has caught up with a token.
const CATCH_UP_POLL: Duration = Duration::from_millis(10);

/// Routes reads; one per application.
pub struct ReadRouter {
    sql: Db,
    mongo: mongodb::Database,
    timeout: Duration,
    consistency_wait: Duration,
    lag: Mutex<Option<(Instant, Option<f64>)>>,
    loader_batches: AtomicU64,
    /// While MongoDB is down, reads skip it until this instant instead of
    /// each paying the timeout.
    retry_after: Duration,
    ping_timeout: Duration,
    down_until: Mutex<Option<Instant>>,
}

impl ReadRouter {
    pub fn new(config: &Config, sql: Db, mongo: mongodb::Database) -> Self {
        // Install the metrics recorder now: fallbacks counted before the
        // first scrape would otherwise be lost.
        crate::telemetry::metrics();
        Self {
            sql,
            mongo,
            timeout: Duration::from_millis(config.read_model_timeout_ms),
            consistency_wait: Duration::from_millis(config.consistency_wait_ms),
            lag: Mutex::new(None),
            loader_batches: AtomicU64::new(0),
            retry_after: Duration::from_millis(config.read_model_retry_after_ms),
            ping_timeout: Duration::from_millis(config.read_model_ping_timeout_ms.max(1)),
            down_until: Mutex::new(None),
        }
    }

    /// Answers `field` with `mongo` when MongoDB is healthy, fast and caught
    /// up with the request's token, otherwise with `sql`. Only `sql`'s errors
    /// reach the caller.
    #[tracing::instrument(name = "routed_read", skip_all, fields(field = field.name(), store))]
    pub async fn read<T, M, MF, S, SF>(
        &self,
        request: &ReadRequest,
        path: String,
        field: RoutedField,
        mongo: M,
        sql: S,
    ) -> AppResult<T>
    where
        M: FnOnce() -> MF,
        MF: Future<Output = AppResult<T>>,
        S: FnOnce() -> SF,
        SF: Future<Output = AppResult<T>>,
    {
        let outcome = match field.home() {
            Store::CockroachDb => Err(None),
            Store::MongoDb if self.recently_down() => Err(Some(FallbackReason::RecentlyDown)),
            Store::MongoDb => {
                let outcome = self.try_mongo(request, field, mongo).await;
                match outcome {
                    Err(FallbackReason::Unreachable) => self.mark_down(),
                    // One slow query falls back alone; only a server that
                    // does not answer a ping either is an outage.
                    Err(FallbackReason::Timeout) if !self.answers_ping().await => self.mark_down(),
                    _ => {}
                }
                outcome.map_err(Some)
            }
        };
        let (result, store, reason) = match outcome {
            Ok(value) => (Ok(value), Store::MongoDb, None),
            Err(reason) => {
                if let Some(reason) = reason {
                    metrics::counter!(
                        "studysync_read_fallback_total",
                        "field" => field.name(),
                        "reason" => reason.as_str()
                    )
                    .increment(1);
                }
                (sql().await, Store::CockroachDb, reason)
            }
        };
        tracing::Span::current().record("store", format!("{store:?}"));
        request.record(Provenance {
            path,
            field: field.name(),
            store,
            reason,
            read_model_lag_seconds: self.lag().await,
        });
        result
    }

    async fn try_mongo<T, M, MF>(
        &self,
        request: &ReadRequest,
        field: RoutedField,
        mongo: M,
    ) -> Result<T, FallbackReason>
    where
        M: FnOnce() -> MF,
        MF: Future<Output = AppResult<T>>,
    {
        let needed: Vec<&EventRef> = request
            .token()
            .iter()
            .filter(|e| field.reads().contains(&e.aggregate))
            .collect();
        if !needed.is_empty() {
            match self.wait_for(&needed).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        field = field.name(),
                        "read model behind the consistency token; answering from CockroachDB"
                    );
                    return Err(FallbackReason::Stale);
                }
                Err(reason) => {
                    tracing::warn!(
                        field = field.name(),
                        reason = reason.as_str(),
                        "read model unavailable; answering from CockroachDB"
                    );
                    return Err(reason);
                }
            }
        }
        match tokio::time::timeout(self.timeout, mongo()).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                let reason = FallbackReason::of(&err);
                tracing::warn!(field = field.name(), reason = reason.as_str(), error = %err.chain(), "read model query failed; answering from CockroachDB");
                Err(reason)
            }
            Err(_) => {
                tracing::warn!(
                    field = field.name(),
                    timeout_ms = self.timeout.as_millis() as u64,
                    "read model too slow; answering from CockroachDB"
                );
                Err(FallbackReason::Timeout)
            }
        }
    }

    fn recently_down(&self) -> bool {
        self.down_until
            .lock()
            .map(|until| until.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }

    /// Whether MongoDB answers a `ping` within `READ_MODEL_PING_TIMEOUT_MS`:
    /// a query that timed out on a server that still answers was slow on its
    /// own (one user's flooded room), not a sign the server is gone.
    async fn answers_ping(&self) -> bool {
        let ping = self.mongo.run_command(mongodb::bson::doc! {"ping": 1});
        matches!(
            tokio::time::timeout(self.ping_timeout, ping).await,
            Ok(Ok(_))
        )
    }

    fn mark_down(&self) {
        tracing::warn!(
            retry_after_ms = self.retry_after.as_millis() as u64,
            "read model unreachable; routed reads use CockroachDB until it is tried again"
        );
        if self.retry_after.is_zero() {
            return;
        }
        if let Ok(mut until) = self.down_until.lock() {
            *until = Some(Instant::now() + self.retry_after);
        }
    }

    /// Polls until every named document has at least the named version, for
    /// at most `CONSISTENCY_WAIT_MS`.
    async fn wait_for(&self, refs: &[&EventRef]) -> Result<bool, FallbackReason> {
        let deadline = Instant::now() + self.consistency_wait;
        loop {
            match tokio::time::timeout(self.timeout, caught_up(&self.mongo, refs)).await {
                Ok(Ok(true)) => return Ok(true),
                Ok(Ok(false)) => {}
                Ok(Err(err)) => return Err(FallbackReason::of(&err)),
                Err(_) => return Err(FallbackReason::Timeout),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(CATCH_UP_POLL.min(deadline - now)).await;
        }
    }

    /// Age of the oldest pending outbox event, measured at most once a second.
    pub async fn lag(&self) -> Option<f64> {
        if let Ok(cached) = self.lag.lock() {
            if let Some((at, lag)) = *cached {
                if at.elapsed() < LAG_TTL {
                    return lag;
                }
            }
        }
        let measured = match tokio::time::timeout(self.timeout, measure_lag(&self.sql)).await {
            Ok(Ok(lag)) => Some(lag),
            Ok(Err(err)) => {
                tracing::warn!(error = %err.chain(), "measuring read model lag failed");
                None
            }
            Err(_) => None,
        };
        if let Ok(mut cached) = self.lag.lock() {
            *cached = Some((Instant::now(), measured));
        }
        measured
    }

    /// Counts one batched SQL load of a DataLoader (`Todo.owner`,
    /// `Message.sender`, ...) or one read of a fact about the caller (its
    /// row, its rooms, its membership of a room), so round trips per page
    /// and per request can be observed.
    pub fn count_loader_batch(&self) {
        self.loader_batches.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("studysync_loader_batches_total").increment(1);
    }

    /// Batched SQL loads made by this application's DataLoaders so far.
    pub fn loader_batches(&self) -> u64 {
        self.loader_batches.load(Ordering::Relaxed)
    }
}
