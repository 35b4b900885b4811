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
    key: Vec<u8>,
}

impl Cursors {
    pub fn new(secret: &str) -> Self {
        use sha2::Digest;
        let key = Sha256::new()
            .chain_update(b"studysync cursor key\0")
            .chain_update(secret.as_bytes())
            .finalize()
            .to_vec();
        Self { key }
    }

    fn tag(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        mac.finalize().into_bytes()[..TAG_LEN].to_vec()
    }

    pub fn encode<T: Serialize>(&self, position: &T) -> String {
        let body = serde_json::to_vec(position).unwrap_or_default();
        let mut raw = body.clone();
        raw.extend_from_slice(&self.tag(&body));
        URL_SAFE_NO_PAD.encode(raw)
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
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).map_err(|_| invalid())?;
        mac.update(body);
        mac.verify_truncated_left(tag).map_err(|_| invalid())?;
        serde_json::from_slice(body).map_err(|_| invalid())
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
    }
}
