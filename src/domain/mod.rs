//! Validated input types. Each is built once at the edge with `parse` and
//! trusted everywhere after; a value that fails to parse never reaches a
//! transaction, so rejected input writes nothing.
mod period;
mod text;
mod time;

pub use period::Period;
pub use text::{Email, MessageBody, Password, RoomName, Subject, Title, UserName};
pub use time::{DueAt, Minutes, StartedAt};
