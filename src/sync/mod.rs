//! Carrying the outbox into the MongoDB read model: the worker, applying
//! documents, health, verification against the source and full rebuilds.
pub mod apply;
pub mod boards;
pub mod health;
pub mod monitor;
pub mod outbox;
pub mod project;
pub mod readmodel;
pub mod resync;
pub mod settings;
pub mod source;
pub mod verify;
pub mod worker;
