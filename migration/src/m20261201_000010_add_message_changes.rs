// A room numbers every change to its messages from one counter
// (`rooms.last_seq`): a message's addition (`messages.seq`), and each edit or
// deletion after it. `event_seq` is the number of a message's latest change
// (its `seq` until it is edited), so `roomEvents` can replay, in order, what
// changed after a cursor; `edited_at` is when its body last changed. Rows
// written before this migration were never edited: a NULL `event_seq` is
// their `seq`.
crate::sql_migration! {
    up: [
        "ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited_at TIMESTAMPTZ",
        "ALTER TABLE messages ADD COLUMN IF NOT EXISTS event_seq INT8",
        "CREATE INDEX IF NOT EXISTS messages_room_event_seq_idx ON messages (room_id, event_seq)",
    ],
    down: [
        "DROP INDEX IF EXISTS messages_room_event_seq_idx",
        "ALTER TABLE messages DROP COLUMN IF EXISTS event_seq",
        "ALTER TABLE messages DROP COLUMN IF EXISTS edited_at",
    ],
}
