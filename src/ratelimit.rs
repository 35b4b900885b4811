//! In-memory, per-instance rate limits against credential stuffing and mass
//! sign-up. Each key (an email or a client address) gets a fixed window that
//! starts at its first counted event; once the window has passed, the key
//! starts over. With N instances behind a load balancer an attacker gets N
//! times the budget, which still turns millions of guesses into hundreds.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
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

/// Counts events per key within a window.
pub struct Limiter {
    max: u32,
    window: Duration,
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
        Self {
            max,
            window,
            state: Mutex::new(State {
                entries: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }

    /// `Err(wait)` when `key` has used its budget; `wait` is how long until
    /// the window ends.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
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

    /// Counts one event for `key`.
    pub fn record(&self, key: &str) {
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !state.entries.contains_key(key) {
            if state.entries.len() >= state.sweep_at {
                let window = self.window;
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
        if now.duration_since(entry.started) >= self.window {
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
}

impl AuthLimits {
    pub fn new(config: &Config) -> Self {
        let login_window = Duration::from_secs(config.login_window_seconds);
        Self {
            login_email: Limiter::new(config.login_max_failures_per_email, login_window),
            login_addr: Limiter::new(config.login_max_failures_per_address, login_window),
            signup_addr: Limiter::new(
                config.signup_max_per_address,
                Duration::from_secs(config.signup_window_seconds),
            ),
        }
    }

    /// Refuses a `logIn` once the email or the address has failed too often,
    /// before any password is checked.
    pub fn check_login(&self, email: Option<&str>, client: ClientAddr) -> Result<(), AppError> {
        let by_addr = self.login_addr.check(&client.key());
        let by_email = email.map_or(Ok(()), |e| self.login_email.check(e));
        by_addr.and(by_email).map_err(|wait| limited("logIn", wait))
    }

    pub fn record_login_failure(&self, email: Option<&str>, client: ClientAddr) {
        self.login_addr.record(&client.key());
        if let Some(email) = email {
            self.login_email.record(email);
        }
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

fn limited(what: &'static str, wait: Duration) -> AppError {
    metrics::counter!("studysync_rate_limited_total", "operation" => what).increment(1);
    tracing::info!(operation = what, "rate limit reached");
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    AppError::RateLimited(format!(
        "too many {what} attempts; try again in {seconds} s"
    ))
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
    fn a_key_starts_over_once_its_window_has_passed() {
        let limiter = Limiter::new(1, Duration::ZERO);
        limiter.record("a");
        assert!(limiter.check("a").is_ok());
    }
}
