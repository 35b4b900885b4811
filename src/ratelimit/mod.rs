//! Rate limits shared by every instance: failed logins per email and per
//! client address, sign-ups per address, and a token bucket of mutations
//! per account. Each is decided on the source of truth (auth stays there) by
//! one statement per counted event (see [`store`]), so N instances behind a
//! load balancer give a client the budget one instance would.
mod keys;
pub mod store;

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use uuid::Uuid;

pub use keys::KeyHasher;
pub use store::{purge_expired, Grant};
use store::{Bucket, Counted, Window};

use crate::{config::Config, error::AppError, pool::Db};

/// The limits' time, as an offset to the database's clock that only tests
/// move (forward, instead of sleeping through a window on a loaded machine).
/// Each instance has its own; a test of several instances moves each.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    /// Moves this clock (and every limit reading it) forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(by, Ordering::Relaxed);
    }

    /// Milliseconds added to the database's `now()`; zero outside tests.
    fn offset_ms(&self) -> f64 {
        self.offset_ms.load(Ordering::Relaxed) as f64
    }
}

/// The client's network address as the HTTP layer determined it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    fn key(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// The limits of `logIn`, `signUp` and every authenticated mutation.
pub struct RateLimits {
    db: Db,
    keys: KeyHasher,
    clock: Clock,
    login_email: Window,
    login_addr: Window,
    signup_addr: Window,
    mutations: Bucket,
}

impl RateLimits {
    pub fn new(config: &Config, db: Db) -> Self {
        let login = Duration::from_secs(config.login_window_seconds);
        Self {
            db,
            keys: KeyHasher::new(config.jwt_secret.expose()),
            clock: Clock::default(),
            login_email: Window {
                scope: "login_email",
                quota: config.login_max_failures_per_email,
                length: login,
            },
            login_addr: Window {
                scope: "login_addr",
                quota: config.login_max_failures_per_address,
                length: login,
            },
            signup_addr: Window {
                scope: "signup_addr",
                quota: config.signup_max_per_address,
                length: Duration::from_secs(config.signup_window_seconds),
            },
            mutations: Bucket {
                scope: "mutation",
                burst: f64::from(config.mutation_burst),
                per_second: config.mutation_rate_per_second,
            },
        }
    }

    /// The time every limit of this instance reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn counted(&self, window: Window, value: &str) -> (Window, Vec<u8>) {
        (window, self.keys.key(window.scope, value.as_bytes()))
    }

    /// Reserves one `logIn` attempt for the address and the email, in one
    /// statement, before any password is checked: a burst counts every
    /// attempt, on whichever instance, so at most the limit are ever
    /// verified. A successful login gives its reservation back
    /// ([`LoginAttempt::give_back`]); any other end keeps it counted. If one
    /// of the two is refused, the other is given back at once.
    pub async fn reserve_login(
        &self,
        email: Option<&str>,
        client: ClientAddr,
    ) -> Result<LoginAttempt, AppError> {
        let mut keys = vec![self.counted(self.login_addr, &client.key())];
        if let Some(email) = email {
            keys.push(self.counted(self.login_email, email));
        }
        let counted = self.reserve(keys).await?;
        let (admitted, refused): (Vec<Counted>, Vec<Counted>) =
            counted.into_iter().partition(|c| c.admitted);
        if let Some(wait) = refused.iter().map(|c| c.wait).max() {
            LoginAttempt {
                db: self.db.clone(),
                reserved: admitted,
            }
            .give_back()
            .await;
            return Err(limited("logIn", wait));
        }
        Ok(LoginAttempt {
            db: self.db.clone(),
            reserved: admitted,
        })
    }

    /// Counts every `signUp` attempt from an address, successful or not
    /// (creating accounts in bulk is the abuse), and refuses past the limit.
    pub async fn reserve_signup(&self, client: ClientAddr) -> Result<(), AppError> {
        let keys = vec![self.counted(self.signup_addr, &client.key())];
        let counted = self.reserve(keys).await?;
        match counted.iter().find(|c| !c.admitted) {
            Some(refused) => Err(limited("signUp", refused.wait)),
            None => Ok(()),
        }
    }

    /// Takes up to `wanted` mutations from `user`'s bucket in one statement
    /// (every top-level field of a request at once).
    pub async fn charge_mutations(&self, user: Uuid, wanted: u32) -> Result<Grant, AppError> {
        let key = self.keys.key(self.mutations.scope, user.as_bytes());
        let (db, offset, bucket) = (self.db.clone(), self.clock.offset_ms(), self.mutations);
        detached(async move { store::charge(&db, offset, bucket, &key, wanted).await }).await
    }

    /// [`Self::charge_mutations`] together with reading the caller's
    /// account in the same statement ([`store::charge_caller`]): `None`
    /// when the account is gone, no grant when `generation` was revoked.
    pub async fn charge_caller(
        &self,
        user: Uuid,
        generation: i32,
        wanted: u32,
    ) -> Result<Option<(crate::entity::users::Model, Option<Grant>)>, AppError> {
        let key = self.keys.key(self.mutations.scope, user.as_bytes());
        let (db, offset, bucket) = (self.db.clone(), self.clock.offset_ms(), self.mutations);
        detached(async move {
            store::charge_caller(&db, offset, bucket, &key, wanted, (user, generation)).await
        })
        .await
    }

    async fn reserve(&self, keys: Vec<(Window, Vec<u8>)>) -> Result<Vec<Counted>, AppError> {
        let (db, offset) = (self.db.clone(), self.clock.offset_ms());
        detached(async move { store::reserve(&db, offset, &keys).await }).await
    }
}

/// Runs one limit statement as a task of its own that the caller awaits,
/// as `write::Writer::transact` runs transactions: a request dropped while
/// the statement is in flight (a client hanging up, the request timeout)
/// must not drop the pooled connection mid-statement, which can leave the
/// connection checked out for good. The statement runs to its end; the
/// caller may be gone by then.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::error::AppResult<T>> + Send + 'static,
) -> Result<T, AppError> {
    tokio::spawn(work)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rate limit task: {e}")))?
}

/// A reserved `logIn` attempt; it counts as a failure unless it succeeds.
#[must_use = "a reservation that is neither kept nor given back counts as a failure"]
pub struct LoginAttempt {
    db: Db,
    reserved: Vec<Counted>,
}

impl LoginAttempt {
    /// The attempt does not count: the password was right (successful logins
    /// do not count), or it was never checked. One statement; should it
    /// fail, the attempt stays counted, which errs on the safe side.
    pub async fn give_back(self) {
        let Self { db, reserved } = self;
        let given = detached(async move { store::give_back(&db, &reserved).await }).await;
        if let Err(err) = given {
            tracing::warn!(error = %err.chain(), "could not give back a login reservation");
        }
    }
}

/// `RATE_LIMITED` with the wait, in whole seconds rounded up.
pub fn limited(what: &'static str, wait: Duration) -> AppError {
    metrics::counter!("studysync_rate_limited_total", "operation" => what).increment(1);
    tracing::info!(operation = what, "rate limit reached");
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    AppError::RateLimited {
        message: format!("too many {what} attempts; try again in {seconds} s"),
        retry_after: seconds,
    }
}
