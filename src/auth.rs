//! Passwords (argon2id) and bearer tokens (HS256 JWT). Authentication always
//! reads the source of truth.
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    config::Secret,
    domain::Password,
    error::{AppError, AppResult},
};

/// Memory one argon2id hash or verification holds while it runs (the
/// crate's default parameters, m = 19 MiB).
pub const HASH_MEMORY_BYTES: usize = 19 * 1024 * 1024;

/// Bounds password hashing: at most `concurrency` argon2 runs at once (so at
/// most `concurrency` × 19 MiB), at most `queue` more waiting, each for at
/// most `wait`; anything beyond is `RATE_LIMITED` at once. A run keeps its
/// permit until the hash is done, even if its request was dropped.
pub struct PasswordGate {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    wait: Duration,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl PasswordGate {
    pub fn new(concurrency: usize, queue: usize, wait: Duration) -> Self {
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(queue))),
            wait,
            in_flight: Arc::default(),
            peak: Arc::default(),
        }
    }

    /// Most hashes that ever ran at once in this process.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Hashes a new password (sign-up) under the bound.
    pub async fn hash(&self, password: Password) -> AppResult<String> {
        self.run(move || hash_blocking(&password)).await
    }

    /// Verifies a password (log-in) under the bound; see [`verify_password`].
    pub async fn verify(&self, password: Password, stored: Option<String>) -> AppResult<bool> {
        self.run(move || verify_blocking(&password, stored)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> AppResult<T> + Send + 'static,
    ) -> AppResult<T> {
        let busy = || {
            metrics::counter!("studysync_rate_limited_total", "operation" => "password")
                .increment(1);
            AppError::RateLimited {
                message: "the server is busy checking passwords; try again in 1 s".to_owned(),
                retry_after: 1,
            }
        };
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let permit = tokio::time::timeout(self.wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let (in_flight, peak) = (self.in_flight.clone(), self.peak.clone());
        tokio::task::spawn_blocking(move || {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = work();
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop((permit, admitted));
            out
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password task: {e}")))?
    }
}

fn hash_blocking(password: &Password) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

fn verify_blocking(password: &Password, stored: Option<String>) -> AppResult<bool> {
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
    let parsed = PasswordHash::new(&hash)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
    let ok = Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok();
    Ok(ok && known)
}

/// Hashes on the blocking pool, unbounded: for the CLI (seeding); requests
/// go through [`PasswordGate`].
pub async fn hash_password(password: Password) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing task: {e}")))?
}

/// Checks a password against a stored hash. With `None` (unknown email) it
/// verifies against a fixed dummy hash, so both cases take the same time.
pub async fn verify_password(password: Password, stored: Option<String>) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, stored))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("verify task: {e}")))?
}

/// A real argon2id hash of a random value, made once; verifying against it
/// costs what verifying a real user's password costs. Call at start-up so
/// the first unknown-email login is not slower than the rest.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = Uuid::new_v4();
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// What a token says: who, and until when.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
}

/// Issues and checks tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: i64,
}

impl Tokens {
    pub fn new(secret: &Secret, ttl_seconds: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2),
        }
    }

    pub fn issue(&self, user_id: Uuid) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            iat: now,
            exp: now.saturating_add(self.ttl_seconds),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("signing token: {e}")))
    }

    /// Accepts only HS256 tokens with a valid signature that have not expired.
    pub fn verify(&self, token: &str) -> AppResult<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| AppError::Unauthenticated("invalid or expired token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ttl: u64) -> Tokens {
        Tokens::new(&Secret::new("x".repeat(40)), ttl)
    }

    #[test]
    fn a_token_round_trips_and_tampering_fails() {
        let t = tokens(60);
        let id = Uuid::new_v4();
        let token = t.issue(id).unwrap();
        assert_eq!(t.verify(&token).unwrap().sub, id);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[2] = "AAAA".into();
        assert!(t.verify(&parts.join(".")).is_err());
        let other = Tokens::new(&Secret::new("y".repeat(40)), 60);
        assert!(other.verify(&token).is_err());
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_hash() {
        let pw = Password::parse("correct horse").unwrap();
        let hash = hash_password(pw.clone()).await.unwrap();
        assert!(!hash.contains("correct"));
        assert!(verify_password(pw.clone(), Some(hash.clone()))
            .await
            .unwrap());
        let wrong = Password::parse("wrong horse").unwrap();
        assert!(!verify_password(wrong, Some(hash)).await.unwrap());
        assert!(!verify_password(pw, None).await.unwrap());
    }
}
