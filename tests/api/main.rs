//! Integration tests against real PostgreSQL and a real MongoDB-wire server.
mod auth;
mod helpers;
mod rooms;
mod schema;
mod study;
mod todos;
mod write_path;
mod reads_equivalence;
mod reads_support;
mod reads_consistency;
mod reads_fault;
mod reads_history;
mod reads_dataloader;
mod reads_search;
mod reads_subscription;
mod reads_analytics;
