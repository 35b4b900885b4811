//! The outbox's event protocol, typed: which aggregates exist, the document
//! each one's events carry, and the payload's schema version.
//!
//! The write path builds a [`Doc`] from the row it wrote (`From<&Model>`),
//! `seed`, `verify` and `resync` build the same ones from the rows they read,
//! and the worker decodes the payload back into the same type before it
//! projects it. A renamed column breaks the build, not the read model.
mod aggregate;
mod docs;
mod payload;
pub mod project;

pub use aggregate::Aggregate;
pub use docs::{Doc, MessageDoc, RoomDoc, StudySessionDoc, StudyTotalDoc, TodoDoc, UserDoc};
pub use payload::{decode, encode, tombstone, DecodeError, Payload, Was, SCHEMA};
