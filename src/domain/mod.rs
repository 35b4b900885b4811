//! Validated input types. Each is built once at the edge with `parse` and
//! trusted everywhere after; a value that fails to parse never reaches a
//! transaction, so rejected input writes nothing.
mod period;
pub mod search;
mod text;
mod time;

pub use period::Period;
pub use text::{Email, MessageBody, Password, RoomName, Subject, Title, UserName};
pub use time::{DueAt, Minutes, StartedAt};

/// Page size rules shared by every connection: 20 by default, at most 100
/// (the stored leaderboard tops hold one full page).
pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

/// Most members a room may have: `Room.members` returns at most this many,
/// so the complexity budget can price it by its real maximum.
pub const MAX_ROOM_MEMBERS: u64 = 50;
/// Most rooms one user may belong to, for the same reason (`Query.rooms`).
pub const MAX_ROOMS_PER_USER: u64 = 50;

/// The current time at millisecond precision: the finest both stores keep
/// (BSON dates are milliseconds), so a row and its document hold the same
/// instant and sort the same way.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    to_millis(chrono::Utc::now())
}

/// Drops sub-millisecond precision.
pub fn to_millis(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}
