//! In-memory, per-instance rate limits against credential stuffing and mass
//! sign-up. Each key (an email or a client address) gets a fixed window that
//! starts at its first counted event; once the window has passed, the key
//! starts over. With N instances behind a load balancer an attacker gets N
//! times the budget, which still turns millions of guesses into hundreds.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::{config::Config, error::AppError};

/// Size at which expired entries are first swept; after a sweep the next one
/// waits until the map has doubled, so sweeping stays amortised O(1).
const FIRST_SWEEP: usize = 10_000;
/// Hard cap on tracked keys. Past it (a spray of distinct emails from many
/// addresses) new keys go uncounted rather than growing memory without bound;
/// the per-address limits still apply.
const MAX_KEYS: usize = 200_000;

/// The limiters' time: the monotonic clock plus an offset, which only tests
/// move (forward, instead of sleeping through a window on a loaded machine).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every limiter reading it) forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(by, Ordering::Relaxed);
    }
}

/// Counts events per key within a window.
pub struct Limiter {
    max: u32,
    window: Duration,
    clock: Clock,
    state: Mutex<State>,
}

struct State {
    entries: HashMap<String, Window>,
    sweep_at: usize,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_clock(max, window, Clock::default())
    }

    pub fn with_clock(max: u32, window: Duration, clock: Clock) -> Self {
        Self {
            max,
            window,
            clock,
            state: Mutex::new(State {
                entries: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }

    /// `Err(wait)` when `key` has used its budget; `wait` is how long until
    /// the window ends.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let Ok(state) = self.state.lock() else {
            return Ok(());
        };
        match state.entries.get(key) {
            Some(w) if now.duration_since(w.started) < self.window && w.count >= self.max => {
                Err(self.window.saturating_sub(now.duration_since(w.started)))
            }
            _ => Ok(()),
        }
    }

    /// Counts one event for `key` if its budget allows it, in one step, so
    /// that concurrent callers cannot all pass the check before any counts.
    pub fn try_take(&self, key: &str) -> Result<(), Duration> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let now = self.clock.now();
        if let Some(w) = state.entries.get(key) {
            if now.duration_since(w.started) < self.window && w.count >= self.max {
                return Err(self.window.saturating_sub(now.duration_since(w.started)));
            }
        }
        Self::count(&mut state, key, now, self.window);
        Ok(())
    }

    /// Gives back one event taken with [`Self::try_take`] (it turned out
    /// not to count, e.g. a successful login).
    pub fn give_back(&self, key: &str) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(w) = state.entries.get_mut(key) {
                w.count = w.count.saturating_sub(1);
            }
        }
    }

    /// Counts one event for `key`.
    pub fn record(&self, key: &str) {
        let now = self.clock.now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        Self::count(&mut state, key, now, self.window);
    }

    fn count(state: &mut State, key: &str, now: Instant, window: Duration) {
        if !state.entries.contains_key(key) {
            if state.entries.len() >= state.sweep_at {
                state
                    .entries
                    .retain(|_, w| now.duration_since(w.started) < window);
                state.sweep_at = (state.entries.len() * 2).max(FIRST_SWEEP);
            }
            if state.entries.len() >= MAX_KEYS {
                tracing::warn!("rate limiter is tracking {MAX_KEYS} keys; new keys go uncounted");
                return;
            }
        }
        let entry = state.entries.entry(key.to_owned()).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= window {
            *entry = Window {
                started: now,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
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

/// The limits on the authentication mutations.
pub struct AuthLimits {
    login_email: Limiter,
    login_addr: Limiter,
    signup_addr: Limiter,
    clock: Clock,
}

impl AuthLimits {
    pub fn new(config: &Config) -> Self {
        let clock = Clock::default();
        let login_window = Duration::from_secs(config.login_window_seconds);
        let limiter = |max, window| Limiter::with_clock(max, window, clock.clone());
        Self {
            login_email: limiter(config.login_max_failures_per_email, login_window),
            login_addr: limiter(config.login_max_failures_per_address, login_window),
            signup_addr: limiter(
                config.signup_max_per_address,
                Duration::from_secs(config.signup_window_seconds),
            ),
            clock,
        }
    }

    /// The time the three limiters share.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reserves one `logIn` attempt for the address and the email before
    /// any password is checked: a burst counts every attempt, so at most the
    /// limit are ever verified. A successful login gives its reservation back
    /// ([`LoginAttempt::give_back`]); any other end keeps it counted.
    pub fn reserve_login<'a>(
        &'a self,
        email: Option<&'a str>,
        client: ClientAddr,
    ) -> Result<LoginAttempt<'a>, AppError> {
        let addr = client.key();
        self.login_addr
            .try_take(&addr)
            .map_err(|wait| limited("logIn", wait))?;
        if let Some(email) = email {
            if let Err(wait) = self.login_email.try_take(email) {
                self.login_addr.give_back(&addr);
                return Err(limited("logIn", wait));
            }
        }
        Ok(LoginAttempt {
            limits: self,
            email,
            addr,
        })
    }

    /// Counts every `signUp` attempt from an address, successful or not:
    /// creating accounts in bulk is the abuse.
    pub fn check_and_record_signup(&self, client: ClientAddr) -> Result<(), AppError> {
        let key = client.key();
        self.signup_addr
            .check(&key)
            .map_err(|wait| limited("signUp", wait))?;
        self.signup_addr.record(&key);
        Ok(())
    }
}

/// A reserved `logIn` attempt; it counts as a failure unless it succeeds.
pub struct LoginAttempt<'a> {
    limits: &'a AuthLimits,
    email: Option<&'a str>,
    addr: String,
}

impl LoginAttempt<'_> {
    /// The attempt does not count: the password was right (successful logins
    /// do not count), or it was never checked.
    pub fn give_back(self) {
        self.limits.login_addr.give_back(&self.addr);
        if let Some(email) = self.email {
            self.limits.login_email.give_back(email);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_after_its_budget_and_others_are_not() {
        let limiter = Limiter::new(2, Duration::from_secs(60));
        limiter.record("a");
        assert!(limiter.check("a").is_ok());
        limiter.record("a");
        assert!(limiter.check("a").is_err());
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn expired_keys_are_swept_so_memory_stays_bounded() {
        let limiter = Limiter::new(1, Duration::ZERO);
        for i in 0..5 * FIRST_SWEEP {
            limiter.record(&i.to_string());
        }
        let tracked = limiter.state.lock().map(|s| s.entries.len()).unwrap_or(0);
        assert!(tracked <= FIRST_SWEEP, "{tracked}");
    }

    #[test]
    fn taking_is_refused_at_the_budget_and_giving_back_frees_one() {
        let limiter = Limiter::new(2, Duration::from_secs(60));
        assert!(limiter.try_take("a").is_ok());
        assert!(limiter.try_take("a").is_ok());
        assert!(limiter.try_take("a").is_err());
        limiter.give_back("a");
        assert!(limiter.try_take("a").is_ok());
        assert!(limiter.try_take("b").is_ok());
    }

    #[test]
    fn a_key_starts_over_once_its_window_has_passed() {
        let limiter = Limiter::new(1, Duration::ZERO);
        limiter.record("a");
        assert!(limiter.check("a").is_ok());
    }

    #[test]
    fn a_window_ends_when_the_limiters_clock_passes_it() {
        let clock = Clock::default();
        let limiter = Limiter::with_clock(1, Duration::from_secs(60), clock.clone());
        limiter.record("k");
        let wait = limiter.check("k").expect_err("over the limit");
        assert!(wait <= Duration::from_secs(60));
        clock.advance(Duration::from_secs(59));
        assert!(limiter.check("k").is_err(), "the window is not over yet");
        clock.advance(Duration::from_secs(2));
        assert!(limiter.check("k").is_ok(), "the window has passed");
    }
}
