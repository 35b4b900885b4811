//! The read side. `sql` answers from the source of truth (auth, own data,
//! read-your-writes); `mongo` answers analytics, search, chat history and
//! leaderboards from the read model, with `fallback` computing the same from
//! CockroachDB; `routing` decides which of the two answers each field.
pub mod around;
pub mod cursor;
pub mod fallback;
pub mod freshness;
pub mod model;
pub mod mongo;
pub mod provenance;
pub mod routing;
pub mod sql;

pub use crate::domain::{DEFAULT_PAGE, MAX_PAGE};

/// Validates a client's `first`.
pub fn page_size(first: Option<i32>) -> crate::error::AppResult<u64> {
    match first {
        None => Ok(DEFAULT_PAGE),
        Some(n) if n < 0 => Err(crate::error::AppError::bad_input(
            "first must not be negative",
        )),
        Some(n) if n as u64 > MAX_PAGE => Err(crate::error::AppError::bad_input(format!(
            "first must be at most {MAX_PAGE}"
        ))),
        Some(n) => Ok(n as u64),
    }
}
