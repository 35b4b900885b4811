// Every enqueue writes this index at now(): hash-sharded on CockroachDB so the
// writes spread over ranges.
crate::sql_migration! {
    |dialect| crate::hash_sharded_on_cockroach(
        dialect,
        "DROP INDEX IF EXISTS outbox@outbox_pending_age_idx",
        "CREATE INDEX IF NOT EXISTS outbox_pending_age_idx ON outbox (created_at) USING HASH WHERE processed_at IS NULL AND parked_at IS NULL",
        "CREATE INDEX IF NOT EXISTS outbox_pending_age_idx ON outbox (created_at) WHERE processed_at IS NULL AND parked_at IS NULL",
    )
}
