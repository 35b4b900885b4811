//! Carrying the outbox into the MongoDB read model: the worker, applying
//! documents, health, verification against the source and full rebuilds.
pub mod apply;
pub mod boards;
mod context;
pub mod control;
pub mod health;
pub mod monitor;
pub mod outbox;
pub mod readmodel;
pub mod resync;
pub mod source;
pub mod verify;
pub mod worker;

pub use context::SyncContext;

/// The worker's settings, part of [`crate::config::Config`].
pub use crate::config::sync as settings;
/// How one event becomes one document: the protocol's, kept at its old path.
pub use crate::events::project;
