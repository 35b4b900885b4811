//! Opaque, signed pagination cursors. A cursor is the page position (e.g. the
//! last item's sort key) as JSON, base64url-encoded and tagged with an HMAC,
//! so clients cannot forge positions and an edited cursor is rejected as
//! `BAD_USER_INPUT` instead of silently paging somewhere else.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;

use crate::error::{AppError, AppResult};

const TAG_LEN: usize = 12;

/// Signs and checks cursors with a key derived from the server secret.
#[derive(Clone)]
pub struct Cursors {
    /// Keyed once: each tag starts from a copy, instead of hashing the
    /// padded key again (half of an HMAC's work on a cursor this short).
    keyed: Hmac<Sha256>,
}

impl Cursors {
    pub fn new(secret: &str) -> Self {
        use sha2::Digest;
        let key = Sha256::new()
            .chain_update(b"studysync cursor key\0")
            .chain_update(secret.as_bytes())
            .finalize();
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self { keyed }
    }

    fn tag(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.finalize().into_bytes()[..TAG_LEN].to_vec()
    }

    pub fn encode<T: Serialize>(&self, position: &T) -> String {
        self.sign(serde_json::to_vec(position).unwrap_or_default())
    }

    /// `position`, to be signed only if its cursor is asked for.
    pub fn lazy<T: Serialize>(&self, position: &T) -> Lazy {
        Lazy {
            cursors: self.clone(),
            body: serde_json::to_vec(position).unwrap_or_default(),
        }
    }

    fn sign(&self, mut body: Vec<u8>) -> String {
        let tag = self.tag(&body);
        body.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(body)
    }

    pub fn decode<T: DeserializeOwned>(&self, cursor: &str) -> AppResult<T> {
        self.decode_bounded(cursor, 1024)
    }

    /// Like [`Self::decode`] for longer values (consistency tokens name
    /// every aggregate a request wrote).
    pub fn decode_bounded<T: DeserializeOwned>(
        &self,
        cursor: &str,
        max_len: usize,
    ) -> AppResult<T> {
        let invalid = || AppError::bad_input("invalid cursor");
        if cursor.len() > max_len {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if raw.len() <= TAG_LEN {
            return Err(invalid());
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac.verify_truncated_left(tag).map_err(|_| invalid())?;
        serde_json::from_slice(body).map_err(|_| invalid())
    }
}

/// A page position whose cursor is signed only when asked for: an edge's
/// `cursor`, `pageInfo`'s start and end. A page whose cursors no client
/// selects spends no HMAC on them.
#[derive(Clone)]
pub struct Lazy {
    cursors: Cursors,
    body: Vec<u8>,
}

impl Lazy {
    /// The signed cursor, as [`Cursors::encode`] gives it.
    pub fn signed(&self) -> String {
        self.cursors.sign(self.body.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_edits() {
        let cursors = Cursors::new("secret");
        let c = cursors.encode(&("2026-01-01T00:00:00Z", 42));
        let back: (String, i32) = cursors.decode(&c).unwrap();
        assert_eq!(back.1, 42);
        let mut raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        raw[3] ^= 1;
        assert!(cursors
            .decode::<(String, i32)>(&URL_SAFE_NO_PAD.encode(raw))
            .is_err());
        assert!(cursors.decode::<(String, i32)>("not a cursor!").is_err());
        assert!(Cursors::new("other").decode::<(String, i32)>(&c).is_err());
        // Signed later, the same cursor.
        assert_eq!(cursors.lazy(&("2026-01-01T00:00:00Z", 42)).signed(), c);
    }
}
