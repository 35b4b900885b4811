//! CockroachDB twins of the MongoDB queries in `read::mongo`: the same
//! answers computed from the source tables. They serve when MongoDB is down,
//! slow or behind a client's consistency token.
pub mod analytics;
pub mod history;
pub mod leaderboard;
pub mod search;
