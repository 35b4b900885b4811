// Each room numbers its messages 1, 2, 3, ... in commit order: `sendMessage`
// takes the next number from `rooms.last_seq` in its own transaction, so the
// number of a committed message is never reused and every lower number is
// committed before it. Subscribers deliver in this order and fill any gap
// from the source of truth, on whichever instance they are connected to.
//
// Messages written before this migration are numbered in `(created_at, id)`
// order, after any a newer release numbered already (a rolling deploy).
crate::sql_migration! {
    up: [
        "ALTER TABLE rooms ADD COLUMN IF NOT EXISTS last_seq INT8 NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN IF NOT EXISTS seq INT8",
        r#"
UPDATE messages SET seq = numbered.base + numbered.n
FROM (
    SELECT m.id,
           row_number() OVER (PARTITION BY m.room_id ORDER BY m.created_at, m.id) AS n,
           (SELECT COALESCE(max(s.seq), 0) FROM messages AS s WHERE s.room_id = m.room_id) AS base
    FROM messages AS m
    WHERE m.seq IS NULL
) AS numbered
WHERE messages.id = numbered.id"#,
        r#"
UPDATE rooms SET last_seq = numbered.top
FROM (SELECT room_id, max(seq) AS top FROM messages GROUP BY room_id) AS numbered
WHERE rooms.id = numbered.room_id AND rooms.last_seq < numbered.top"#,
        "CREATE UNIQUE INDEX IF NOT EXISTS messages_room_seq_idx ON messages (room_id, seq)",
    ],
    down: [
        "DROP INDEX IF EXISTS messages_room_seq_idx",
        "ALTER TABLE messages DROP COLUMN IF EXISTS seq",
        "ALTER TABLE rooms DROP COLUMN IF EXISTS last_seq",
    ],
}
