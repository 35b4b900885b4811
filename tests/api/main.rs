//! Integration tests against real PostgreSQL and a real MongoDB-wire server.
mod auth;
mod helpers;
mod reads_analytics;
mod reads_consistency;
mod reads_dataloader;
mod reads_equivalence;
mod reads_fault;
mod reads_history;
mod reads_search;
mod reads_subscription;
mod reads_support;
mod rooms;
mod schema;
mod security;
mod study;
mod todos;
mod write_path;
