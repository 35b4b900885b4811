// Every enqueue, claim and failure writes this index at about now(): on CockroachDB
// a plain index sends all of them to one range that load-based splitting cannot
// split, so it is hash-sharded there.
crate::sql_migration! {
    |dialect| crate::hash_sharded_on_cockroach(
        dialect,
        "DROP INDEX IF EXISTS outbox@outbox_due_idx",
        "CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at, created_at) USING HASH WHERE processed_at IS NULL AND parked_at IS NULL",
        "CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at, created_at) WHERE processed_at IS NULL AND parked_at IS NULL",
    )
}
