// Sessions are logged as they end, so this index's writes cluster at now():
// hash-sharded on CockroachDB so the writes spread over ranges.
crate::sql_migration! {
    |dialect| crate::hash_sharded_on_cockroach(
        dialect,
        "DROP INDEX IF EXISTS study_sessions@study_sessions_started_idx",
        "CREATE INDEX IF NOT EXISTS study_sessions_started_idx ON study_sessions (started_at) USING HASH",
        "CREATE INDEX IF NOT EXISTS study_sessions_started_idx ON study_sessions (started_at)",
    )
}
