// The operators' switch for every sync worker at once: one row (id 1), read
// by each claim in the claim's own statement, so a pause reaches every
// `worker` and `serve` process at its next claim with no round trip of its
// own. No row means running.
crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS sync_control (
    id INT4 PRIMARY KEY CHECK (id = 1),
    paused BOOLEAN NOT NULL DEFAULT false,
    paused_at TIMESTAMPTZ,
    paused_by TEXT,
    reason TEXT,
    updated_at TIMESTAMPTZ NOT NULL
)"#,
    ],
    down: ["DROP TABLE IF EXISTS sync_control"],
}
