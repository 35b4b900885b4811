// Automatic persisted queries (`graphql::documents`): a document registered
// through one instance runs by its hash on every instance. At most
// `PERSISTED_QUERIES_MAX` rows are kept; with `TRUSTED_DOCUMENTS` the table
// is not used.
crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS persisted_documents (
    sha256 TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
)"#,
    ],
    down: ["DROP TABLE IF EXISTS persisted_documents"],
}
