// Expired limits are deleted in batches by this index. Its column is a time
// about `now()`, so on CockroachDB it is hash-sharded from the start (see
// `hash_sharded_on_cockroach` for the indexes that were made plain first).
crate::sql_migration! {
    |dialect| match dialect {
        crate::Dialect::Postgres => crate::Steps {
            up: vec!["CREATE INDEX IF NOT EXISTS rate_limits_expires_idx ON rate_limits (expires_at)"],
            down: vec!["DROP INDEX IF EXISTS rate_limits_expires_idx"],
        },
        crate::Dialect::Cockroach => crate::Steps {
            up: vec!["CREATE INDEX IF NOT EXISTS rate_limits_expires_idx ON rate_limits (expires_at) USING HASH"],
            down: vec!["DROP INDEX IF EXISTS rate_limits@rate_limits_expires_idx"],
        },
    }
}
