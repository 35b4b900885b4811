// Where a room's deleted messages were: their change number (`event_seq`,
// from `rooms.last_seq`) and the number they were added at (`seq`), so a
// subscriber resuming after a cursor is told of a deletion it missed. Ids
// and numbers only: the message's body and sender are gone with its row.
crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS message_deletions (
    room_id UUID NOT NULL,
    event_seq INT8 NOT NULL,
    message_id UUID NOT NULL,
    seq INT8,
    deleted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (room_id, event_seq)
)"#,
    ],
    down: ["DROP TABLE IF EXISTS message_deletions"],
}
