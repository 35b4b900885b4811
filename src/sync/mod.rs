//! Carrying the outbox into the MongoDB read model.
pub mod project;
