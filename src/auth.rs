//! Passwords (argon2id) and bearer tokens (HS256 JWT). Authentication always
//! reads the source of truth.
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    config::Secret,
    domain::Password,
    error::{AppError, AppResult},
};

/// Hashes on the blocking pool: argon2 is deliberately slow.
pub async fn hash_password(password: Password) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing password: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing task: {e}")))?
}

/// Checks a password against a stored hash. With `None` (unknown email) it
/// verifies against a fixed dummy hash, so both cases take the same time.
pub async fn verify_password(password: Password, stored: Option<String>) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    })
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
