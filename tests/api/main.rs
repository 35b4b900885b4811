//! Integration tests against real PostgreSQL and a real MongoDB-wire server.
mod auth;
mod helpers;
mod rooms;
mod schema;
mod study;
mod todos;
mod write_path;
mod sync_support;
mod sync_worker;
mod sync_faults;
mod sync_order;
mod sync_verify;
