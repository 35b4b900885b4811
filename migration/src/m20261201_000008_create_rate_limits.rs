// The rate limits every instance shares (src/ratelimit/): one row per limited
// key, reserved by one upsert per counted event. `key_hash` is a keyed hash
// (HMAC-SHA256) of the email, address or account, never the value itself.
// `used` counts a fixed window's events (saturating at `quota + 1` while
// refusing) or, for a token bucket, the tokens its latest charge granted.
crate::sql_migration! {
    up: [
        r#"
CREATE TABLE IF NOT EXISTS rate_limits (
    scope TEXT NOT NULL,
    key_hash BYTEA NOT NULL,
    used INT4 NOT NULL DEFAULT 0,
    quota INT4 NOT NULL DEFAULT 0,
    tokens FLOAT8 NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key_hash)
)"#,
    ],
    down: ["DROP TABLE IF EXISTS rate_limits"],
}
