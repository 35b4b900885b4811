crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS messages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    room_id UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    sender_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"#,
        "CREATE INDEX IF NOT EXISTS messages_room_history_idx ON messages (room_id, created_at DESC, id DESC)",
    ],
    down: ["DROP TABLE IF EXISTS messages"],
}
