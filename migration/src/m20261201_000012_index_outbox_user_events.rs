// `deleteAccount` scrubs the account's own events (the only ones that carry
// a name or an email) from the outbox in its transaction, processed or not.
// This index finds them; it holds account events only, so the mutations on
// every other aggregate (todos, sessions, messages) write nothing more.
crate::sql_migration! {
    up: [
        "CREATE INDEX IF NOT EXISTS outbox_user_events_idx ON outbox (aggregate_id) \
         WHERE aggregate_type = 'user'",
    ],
    down: ["DROP INDEX IF EXISTS outbox_user_events_idx"],
}
