// Each outbox row is rewritten by its claim and its completion, then deleted
// by retention: on CockroachDB every one of those leaves an MVCC version that
// claims scan past until garbage collection removes it (4 hours by default).
// Ten minutes keeps the churned head of the due index short. It is longer
// than any claim, and backups and changefeeds protect what they still need
// with protected timestamps.
crate::sql_migration! {
    |dialect| match dialect {
        // PostgreSQL's autovacuum does this job; it has no zone configs.
        crate::Dialect::Postgres => crate::Steps::default(),
        crate::Dialect::Cockroach => crate::Steps {
            up: vec!["ALTER TABLE outbox CONFIGURE ZONE USING gc.ttlseconds = 600"],
            down: vec!["ALTER TABLE outbox CONFIGURE ZONE DISCARD"],
        },
    }
}
