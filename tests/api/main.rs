//! Integration tests against real PostgreSQL and a real MongoDB-wire server.
mod auth;
mod helpers;
mod rooms;
mod schema;
mod study;
mod sync_faults;
mod sync_order;
mod sync_processes;
mod sync_support;
mod sync_verify;
mod sync_worker;
mod todos;
mod write_path;
