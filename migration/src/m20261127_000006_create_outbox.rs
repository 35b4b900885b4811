crate::sql_migration! {
    up: [
        // INT4, not INT: INT is INT8 on CockroachDB, and the entity reads an i32.
        r#"
CREATE TABLE IF NOT EXISTS outbox (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    aggregate_type TEXT NOT NULL,
    aggregate_id UUID NOT NULL,
    aggregate_version BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INT4 NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_by TEXT,
    processed_at TIMESTAMPTZ,
    parked_at TIMESTAMPTZ
)"#,
        // Only pending rows are in this index, so claiming stays a short scan
        // however many processed rows wait for retention.
        "CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_attempt_at, created_at) \
         WHERE processed_at IS NULL AND parked_at IS NULL",
        "CREATE INDEX IF NOT EXISTS outbox_parked_idx ON outbox (parked_at) WHERE parked_at IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS outbox_processed_idx ON outbox (processed_at) \
         WHERE processed_at IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS outbox_aggregate_idx ON outbox \
         (aggregate_type, aggregate_id, aggregate_version) WHERE processed_at IS NULL",
    ],
    down: ["DROP TABLE IF EXISTS outbox"],
}
