//! studysync: a GraphQL server whose writes go to CockroachDB together with a
//! transactional outbox, and whose read model lives in MongoDB.
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod entity;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod pool;
pub mod ratelimit;
pub mod read;
pub mod seed;
pub mod sql_audit;
pub mod startup;
pub mod sync;
pub mod telemetry;
pub mod write;
