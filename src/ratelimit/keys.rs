//! The keys of `rate_limits` rows: a keyed hash of what is limited, so the
//! table never holds an email or an address (account erasure needs no row
//! of it to be found by email), and nobody who reads the table without the
//! server's secret can test a guess against it.
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 under a key derived from `JWT_SECRET`. Rotating the secret
/// starts every limit over (the old rows expire unread).
#[derive(Clone)]
pub struct KeyHasher {
    key: [u8; 32],
}

impl KeyHasher {
    pub fn new(secret: &str) -> Self {
        // A key of its own: a rate-limit key never equals a token signature
        // or a cursor's MAC computed from the same secret.
        Self {
            key: mac(secret.as_bytes(), &[b"studysync rate-limit keys v1"]),
        }
    }

    /// The row key of `value` within `scope`.
    pub fn key(&self, scope: &str, value: &[u8]) -> Vec<u8> {
        mac(&self.key, &[scope.as_bytes(), &[0], value]).to_vec()
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_secret_and_the_scope_and_hide_the_value() {
        let a = KeyHasher::new("secret-a");
        let b = KeyHasher::new("secret-b");
        let email = b"someone@example.org";
        assert_eq!(a.key("login_email", email), a.key("login_email", email));
        assert_ne!(a.key("login_email", email), b.key("login_email", email));
        assert_ne!(a.key("login_email", email), a.key("signup_addr", email));
        let key = a.key("login_email", email);
        assert_eq!(key.len(), 32);
        assert!(!key.windows(email.len()).any(|w| w == email));
    }
}
