crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"#,
        // Emails are stored normalised to lower case, so this index is
        // case-insensitive.
        "CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email)",
        "CREATE INDEX IF NOT EXISTS users_created_at_idx ON users (created_at, id)",
    ],
    down: ["DROP TABLE IF EXISTS users"],
}
