//! Passwords (argon2id) and bearer tokens (HS256 JWT). Authentication always
//! reads the source of truth.
use argon2::{
    password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString},
    Algorithm as Argon2Algorithm, Argon2, Block, Params, Version,
};
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
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

/// argon2's working memory (`Params::block_count` blocks of 1 KiB), kept
/// for the next run instead of freed.
type Memory = Vec<Block>;

/// Bounds password hashing: at most `concurrency` argon2 runs at once, at
/// most `queue` more waiting, each for at most `wait`; anything beyond is
/// `RATE_LIMITED` at once. A run keeps its permit until the hash is done,
/// even if its request was dropped.
///
/// Each run works in one of at most `concurrency` buffers that the gate
/// keeps and hands out again, so hashing holds `concurrency` × 19 MiB at
/// most, whichever threads run it. Allocating 19 MiB per run instead lets the
/// C allocator keep a freed buffer in each thread's arena, and the blocking
/// pool's threads come and go: 100 concurrent logIns at 4 slots left the
/// process 700 MB larger, for good.
pub struct PasswordGate {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    wait: Duration,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    memory: Arc<Mutex<Vec<Memory>>>,
}

impl PasswordGate {
    pub fn new(concurrency: usize, queue: usize, wait: Duration) -> Self {
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(queue))),
            wait,
            in_flight: Arc::default(),
            peak: Arc::default(),
            memory: Arc::default(),
        }
    }

    /// Working-memory buffers the gate holds now (at most `concurrency`).
    pub fn buffers(&self) -> usize {
        self.memory.lock().map_or(0, |pool| pool.len())
    }

    /// Most hashes that ever ran at once in this process.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Hashes a new password (sign-up) under the bound.
    pub async fn hash(&self, password: Password) -> AppResult<String> {
        self.run(move |memory| hash_blocking(&password, memory))
            .await
    }

    /// Verifies a password (log-in) under the bound; see [`verify_password`].
    pub async fn verify(&self, password: Password, stored: Option<String>) -> AppResult<bool> {
        self.run(move |memory| verify_blocking(&password, stored, memory))
            .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> AppResult<T> + Send + 'static,
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
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            // A permit is held, so a buffer is free unless fewer than
            // `concurrency` were ever made.
            let mut memory = pool
                .lock()
                .ok()
                .and_then(|mut pool| pool.pop())
                .unwrap_or_default();
            let out = work(&mut memory);
            if let Ok(mut pool) = pool.lock() {
                pool.push(memory);
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
            drop((permit, admitted));
            out
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password task: {e}")))?
    }
}

/// argon2's output for `password` under `algorithm`, `version`, `params`
/// and `salt`, computed in `memory` (grown to the block count, never shrunk).
fn argon2_output(
    password: &[u8],
    (algorithm, version, params): (Argon2Algorithm, Version, Params),
    salt: Salt<'_>,
    memory: &mut Memory,
) -> Result<Output, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let argon2 = Argon2::new(algorithm, version, params);
    Output::init_with(length, |out| {
        argon2
            .hash_password_into_with_memory(password, salt, out, &mut memory[..])
            .map_err(Into::into)
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with the
/// crate's default parameters, as `Argon2::default().hash_password` makes.
fn hash_blocking(password: &Password, memory: &mut Memory) -> AppResult<String> {
    let failed = |e: argon2::password_hash::Error| {
        AppError::Internal(anyhow::anyhow!("hashing password: {e}"))
    };
    let salt = SaltString::generate(&mut OsRng);
    let (algorithm, version, params) = (
        Argon2Algorithm::default(),
        Version::default(),
        Params::default(),
    );
    let output = argon2_output(
        password.expose().as_bytes(),
        (algorithm, version, params.clone()),
        salt.as_salt(),
        memory,
    )
    .map_err(failed)?;
    let hash = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

fn verify_blocking(
    password: &Password,
    stored: Option<String>,
    memory: &mut Memory,
) -> AppResult<bool> {
    let unreadable = |e: argon2::password_hash::Error| {
        AppError::Internal(anyhow::anyhow!("stored hash unreadable: {e}"))
    };
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
    let parsed = PasswordHash::new(&hash).map_err(unreadable)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let algorithm = Argon2Algorithm::try_from(parsed.algorithm).map_err(unreadable)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| unreadable(e.into()))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(unreadable)?;
    let computed = argon2_output(
        password.expose().as_bytes(),
        (algorithm, version, params),
        salt,
        memory,
    )
    .map_err(unreadable)?;
    // `Output`'s comparison takes constant time.
    Ok(computed == expected && known)
}

/// Hashes on the blocking pool, unbounded: for the CLI (seeding); requests
/// go through [`PasswordGate`].
pub async fn hash_password(password: Password) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password, &mut Memory::new()))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing task: {e}")))?
}

/// Checks a password against a stored hash. With `None` (unknown email) it
/// verifies against a fixed dummy hash, so both cases take the same time.
pub async fn verify_password(password: Password, stored: Option<String>) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, stored, &mut Memory::new()))
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
        argon2::password_hash::PasswordHasher::hash_password(
            &Argon2::default(),
            secret.as_bytes(),
            &salt,
        )
        .map(|h| h.to_string())
        .unwrap_or_default()
    })
}

/// What a token says: who, until when, and which of the account's token
/// generations issued it (tokens from before this claim existed are
/// generation 0).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub generation: i32,
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

    /// A token for `user_id` at the account's current `generation`.
    pub fn issue(&self, user_id: Uuid, generation: i32) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            iat: now,
            exp: now.saturating_add(self.ttl_seconds),
            generation,
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
        let token = t.issue(id, 3).unwrap();
        let claims = t.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.generation), (id, 3));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[2] = "AAAA".into();
        assert!(t.verify(&parts.join(".")).is_err());
        let other = Tokens::new(&Secret::new("y".repeat(40)), 60);
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn hashes_are_the_crates_own_format_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let pw = Password::parse("correct horse").unwrap();
        let mut memory = Memory::new();
        let ours = hash_blocking(&pw, &mut memory).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        Argon2::default()
            .verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap())
            .unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        // The same buffer again: what an earlier run left in it is no input.
        assert!(verify_blocking(&pw, Some(theirs.clone()), &mut memory).unwrap());
        let wrong = Password::parse("wrong horse").unwrap();
        assert!(!verify_blocking(&wrong, Some(theirs), &mut memory).unwrap());
    }

    #[tokio::test]
    async fn the_gate_keeps_at_most_one_buffer_per_slot() {
        let gate = Arc::new(PasswordGate::new(2, 16, Duration::from_secs(30)));
        let hash = hash_password(Password::parse("correct horse").unwrap())
            .await
            .unwrap();
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (gate, hash) = (gate.clone(), hash.clone());
                tokio::spawn(async move {
                    let pw = Password::parse("correct horse").unwrap();
                    gate.verify(pw, Some(hash)).await.unwrap()
                })
            })
            .collect();
        for run in runs {
            assert!(run.await.unwrap());
        }
        assert!((1..=2).contains(&gate.buffers()), "{}", gate.buffers());
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
