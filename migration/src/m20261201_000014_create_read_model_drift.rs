// Documents the background sampler (`sync::verify::sample`) found out of
// step with their rows, and not about to be fixed by a pending event. Health
// is degraded while any is listed; each is checked again by the next samples
// and removed once its document matches (after a repair, automatic or by
// `verify --repair`). Ids only.
crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS read_model_drift (
    aggregate_type TEXT NOT NULL,
    aggregate_id UUID NOT NULL,
    kind TEXT NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL,
    repair_enqueued_at TIMESTAMPTZ,
    PRIMARY KEY (aggregate_type, aggregate_id)
)"#,
    ],
    down: ["DROP TABLE IF EXISTS read_model_drift"],
}
