//! Who is on the other end of the connection, for per-address rate limits.
use std::net::{IpAddr, SocketAddr};

use axum::{extract::ConnectInfo, http::request::Parts};

use crate::ratelimit::ClientAddr;

/// The TCP peer, or with `trust_forwarded_for` the last `X-Forwarded-For`
/// entry: the one our own proxy appended, which a client cannot forge (the
/// entries before it can be).
pub fn client_addr(parts: &Parts, trust_forwarded_for: bool) -> ClientAddr {
    if trust_forwarded_for {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return ClientAddr(forwarded);
        }
    }
    ClientAddr(
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
    )
}
