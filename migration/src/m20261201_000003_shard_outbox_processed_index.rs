// Every completion writes this index at now(): hash-sharded on CockroachDB so the
// writes spread over ranges.
crate::sql_migration! {
    |dialect| crate::hash_sharded_on_cockroach(
        dialect,
        "DROP INDEX IF EXISTS outbox@outbox_processed_idx",
        "CREATE INDEX IF NOT EXISTS outbox_processed_idx ON outbox (processed_at) USING HASH WHERE processed_at IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS outbox_processed_idx ON outbox (processed_at) WHERE processed_at IS NOT NULL",
    )
}
