crate::sql_migration! {
    up: [
        // INT4, not INT: INT is INT8 on CockroachDB, and the entity reads an i32.
        r#"
CREATE TABLE IF NOT EXISTS study_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    minutes INT4 NOT NULL CHECK (minutes BETWEEN 1 AND 1440),
    started_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"#,
        "CREATE INDEX IF NOT EXISTS study_sessions_user_started_idx ON study_sessions (user_id, started_at)",
        "CREATE INDEX IF NOT EXISTS study_sessions_started_idx ON study_sessions (started_at)",
        // Per-user totals per period bucket, maintained in the same
        // transaction as the session insert; the read model projects them as
        // version-guarded snapshots.
        r#"
CREATE TABLE IF NOT EXISTS study_totals (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month', 'all')),
    period_start DATE NOT NULL,
    minutes BIGINT NOT NULL DEFAULT 0,
    sessions BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"#,
        "CREATE UNIQUE INDEX IF NOT EXISTS study_totals_bucket_key ON study_totals (user_id, period, period_start)",
        "CREATE INDEX IF NOT EXISTS study_totals_board_idx ON study_totals (period, period_start, minutes DESC, user_id)",
    ],
    down: [
        "DROP TABLE IF EXISTS study_totals",
        "DROP TABLE IF EXISTS study_sessions",
    ],
}
