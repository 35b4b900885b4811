// Every token carries the generation its account had when it was issued;
// `changePassword` and `logOutEverywhere` increment it, so each token
// issued before stops working at its next request. A column with a
// constant default is added without rewriting the table, on PostgreSQL
// (11+) and CockroachDB alike.
crate::sql_migration! {
    up: ["ALTER TABLE users ADD COLUMN IF NOT EXISTS token_generation INT4 NOT NULL DEFAULT 0"],
    down: ["ALTER TABLE users DROP COLUMN IF EXISTS token_generation"],
}
