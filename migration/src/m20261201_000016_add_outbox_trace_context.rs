// The W3C trace context (`traceparent`) of the transaction that wrote each
// event, when traces are exported: the worker's spans link to it, so one
// trace shows a mutation's commit, its claim and its MongoDB apply. NULL when
// traces are off.
crate::sql_migration! {
    up: ["ALTER TABLE outbox ADD COLUMN IF NOT EXISTS trace_context TEXT"],
    down: ["ALTER TABLE outbox DROP COLUMN IF EXISTS trace_context"],
}
