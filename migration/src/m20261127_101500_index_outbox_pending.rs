crate::sql_migration! {
    up: [
        // The sync health's lag is the age of the oldest pending event; this
        // keeps that a single index lookup however long the backlog grows.
        "CREATE INDEX IF NOT EXISTS outbox_pending_age_idx ON outbox (created_at) \
         WHERE processed_at IS NULL AND parked_at IS NULL",
        // Releasing a worker's claims on shutdown finds them by owner.
        "CREATE INDEX IF NOT EXISTS outbox_claimed_by_idx ON outbox (claimed_by) \
         WHERE claimed_by IS NOT NULL AND processed_at IS NULL",
    ],
    down: [
        "DROP INDEX IF EXISTS outbox_claimed_by_idx",
        "DROP INDEX IF EXISTS outbox_pending_age_idx",
    ],
}
