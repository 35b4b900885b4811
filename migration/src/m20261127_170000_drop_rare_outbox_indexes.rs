crate::sql_migration! {
    // Every index on the outbox is written by every mutation or by every
    // claim. These two served only rare work: `verify`'s check for pending
    // events of drifted documents, and releasing a stopping worker's claims.
    // The pending-only indexes answer both, in time proportional to the
    // backlog.
    up: [
        "DROP INDEX IF EXISTS outbox_aggregate_idx",
        "DROP INDEX IF EXISTS outbox_claimed_by_idx",
    ],
    down: [
        "CREATE INDEX IF NOT EXISTS outbox_aggregate_idx ON outbox \
         (aggregate_type, aggregate_id, aggregate_version) WHERE processed_at IS NULL",
        "CREATE INDEX IF NOT EXISTS outbox_claimed_by_idx ON outbox (claimed_by) \
         WHERE claimed_by IS NOT NULL AND processed_at IS NULL",
    ],
}
