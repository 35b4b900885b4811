//! Configuration, read once from the environment (or flags) at start-up.
//!
//! Bad configuration stops the process before it serves anything. Secrets are
//! wrapped so that `Debug` never prints them.
pub mod documents;
pub mod query;
pub mod sync;
pub mod websocket;

pub use query::MAX_NESTING_LIMIT;

use std::{fmt, net::SocketAddr, time::Duration};

use anyhow::{bail, Context};

/// A value that must never appear in logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Minimum JWT secret length in bytes: HS256 keys shorter than the hash output
/// are brute-forceable.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Everything the server, the worker and the CLI need. Each field is also an
/// environment variable (see the README's configuration table).
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// PostgreSQL/CockroachDB connection string (source of truth).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,
    /// Maximum SQL connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    /// Minimum idle SQL connections kept open.
    #[arg(long, env = "DATABASE_MIN_CONNECTIONS", default_value_t = 1)]
    pub database_min_connections: u32,
    /// How long a session of ours may sit idle inside a transaction before
    /// the database ends it (milliseconds; 0 leaves the server's setting).
    /// Bounds the harm of any transaction a cancelled request left open.
    #[arg(
        long,
        env = "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub database_idle_in_transaction_timeout_ms: u64,
    /// A pooled connection idle at least this long is pinged before it is
    /// handed out, and replaced if the database no longer answers it
    /// (milliseconds; 0 pings every time). Every connection was checked
    /// when it came back to the pool; a busy pool hands it out again
    /// within milliseconds, so the ping would be one more round trip on
    /// every borrow for a check that was just made.
    #[arg(long, env = "DATABASE_PING_IDLE_MS", default_value_t = 1_000)]
    pub database_ping_idle_ms: u64,
    /// MongoDB connection string (read model).
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    pub mongodb_uri: Secret,
    /// MongoDB database holding the read model.
    #[arg(long, env = "MONGODB_DB", default_value = "studysync")]
    pub mongodb_db: String,
    /// Maximum MongoDB connections in the driver's pool.
    #[arg(long, env = "MONGODB_MAX_POOL_SIZE", default_value_t = 20)]
    pub mongodb_max_pool_size: u32,
    /// HMAC secret for signing tokens, at least 32 bytes.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Secret,
    /// Token lifetime in seconds.
    #[arg(long, env = "JWT_TTL_SECONDS", default_value_t = 86_400)]
    pub jwt_ttl_seconds: u64,
    /// Address the HTTP API listens on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,
    /// Emails of existing accounts that `serve` grants the admin role at
    /// start-up. Never applied at sign-up: signing up with an address proves
    /// nothing about owning it (`studysync user promote` is the other way).
    #[arg(long, env = "ADMIN_EMAILS", value_delimiter = ',', default_value = "")]
    pub admin_emails: Vec<String>,
    /// Serve schema introspection (GraphiQL needs it).
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// How long a client may take to send a request's headers, and how
    /// long a new connection may stay silent (milliseconds). Slow-header
    /// ("slowloris") connections are closed after it.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_read_timeout_ms: u64,
    /// How long a keep-alive connection may sit idle between requests before
    /// the server closes it (milliseconds).
    #[arg(long, env = "HTTP_KEEP_ALIVE_TIMEOUT_MS", default_value_t = 60_000)]
    pub http_keep_alive_timeout_ms: u64,
    /// Most HTTP connections open at once; more are closed on accept.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Most HTTP connections open at once from one client (TCP peer)
    /// address; more are closed on accept. Behind a proxy every client
    /// shares its address: raise this there.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub max_connections_per_address: usize,
    /// Per-request timeout in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Apply pending migrations at start instead of refusing to start on an
    /// old schema. For one instance or development; a deployment of several
    /// instances runs `studysync migrate up` before starting them.
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = false, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,
    /// Most attempts a write transaction makes when the database asks for a retry.
    #[arg(long, env = "TXN_MAX_ATTEMPTS", default_value_t = 8)]
    pub txn_max_attempts: u32,
    /// Sync worker and sync health settings (`SYNC_*`).
    #[command(flatten)]
    pub sync: sync::WorkerSettings,
    /// Websocket settings (`WS_*`).
    #[command(flatten)]
    pub websocket: websocket::WebSocketSettings,
    /// Document limits (`MAX_QUERY_*`, `MAX_RESPONSE_ERRORS`, batching).
    #[command(flatten)]
    pub query: query::QueryLimits,
    /// Browser origins allowed to call the API cross-origin (comma-separated,
    /// e.g. `https://app.example.org`). Empty: no cross-origin access.
    #[arg(
        long,
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_allowed_origins: Vec<String>,
    /// Take the client address from the last `X-Forwarded-For` entry (set this
    /// only behind a proxy that appends it); otherwise the TCP peer address.
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,
    /// Failed `logIn`s allowed per email within `LOGIN_WINDOW_SECONDS`.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_EMAIL", default_value_t = 5)]
    pub login_max_failures_per_email: u32,
    /// Failed `logIn`s allowed per client address within `LOGIN_WINDOW_SECONDS`.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 20)]
    pub login_max_failures_per_address: u32,
    /// Window of the `logIn` limits, in seconds.
    #[arg(long, env = "LOGIN_WINDOW_SECONDS", default_value_t = 900)]
    pub login_window_seconds: u64,
    /// Password hashes (argon2id, 19 MiB each) that may run at once; with
    /// the queue below this bounds the memory logins and sign-ups can use.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = 4)]
    pub password_hash_concurrency: usize,
    /// `logIn`/`signUp`s that may wait for a hashing slot; more are
    /// `RATE_LIMITED` at once.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 64)]
    pub password_hash_queue: usize,
    /// Longest wait for a hashing slot before `RATE_LIMITED` (milliseconds).
    #[arg(long, env = "PASSWORD_HASH_WAIT_MS", default_value_t = 2_000)]
    pub password_hash_wait_ms: u64,
    /// Mutations one account may run at once before the rate applies (every
    /// alias and batch entry counts).
    #[arg(long, env = "MUTATION_BURST", default_value_t = 60)]
    pub mutation_burst: u32,
    /// Mutations per second one account may sustain; beyond it `RATE_LIMITED`
    /// with `extensions.retryAfterSeconds`.
    #[arg(long, env = "MUTATION_RATE_PER_SECOND", default_value_t = 10.0)]
    pub mutation_rate_per_second: f64,
    /// `signUp` attempts allowed per client address within `SIGNUP_WINDOW_SECONDS`.
    #[arg(long, env = "SIGNUP_MAX_PER_ADDRESS", default_value_t = 10)]
    pub signup_max_per_address: u32,
    /// Window of the `signUp` limit, in seconds.
    #[arg(long, env = "SIGNUP_WINDOW_SECONDS", default_value_t = 3_600)]
    pub signup_window_seconds: u64,
    /// How long a MongoDB-routed field may take before it is answered from
    /// CockroachDB instead (milliseconds).
    #[arg(long, env = "READ_MODEL_TIMEOUT_MS", default_value_t = 300)]
    pub read_model_timeout_ms: u64,
    /// How long a request carrying `X-Consistency-Token` waits for MongoDB to
    /// apply the named writes before answering from CockroachDB (milliseconds).
    #[arg(long, env = "CONSISTENCY_WAIT_MS", default_value_t = 500)]
    pub consistency_wait_ms: u64,
    /// After MongoDB was unreachable, routed fields go straight to
    /// CockroachDB for this long before MongoDB is tried again
    /// (milliseconds; 0 tries MongoDB on every read).
    #[arg(long, env = "READ_MODEL_RETRY_AFTER_MS", default_value_t = 1_000)]
    pub read_model_retry_after_ms: u64,
    /// When a routed query times out, how long a `ping` may take for MongoDB
    /// to count as up (milliseconds): a server that answers it was only slow
    /// on that query, which falls back alone; one that does not is treated
    /// as unreachable by every reader for `READ_MODEL_RETRY_AFTER_MS`.
    #[arg(long, env = "READ_MODEL_PING_TIMEOUT_MS", default_value_t = 2_000)]
    pub read_model_ping_timeout_ms: u64,
}

/// Used only to parse a [`Config`] from an argument list (tests, tools). A
/// repeated flag overrides the earlier one, so callers can layer settings.
#[derive(clap::Parser)]
#[command(args_override_self = true)]
struct Standalone {
    #[command(flatten)]
    config: Config,
}

impl Config {
    /// Parses flags/environment as the binary does, e.g. for tests:
    /// `Config::from_args(["--database-url", url, ...])`.
    pub fn from_args<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("studysync"))
            .chain(args.into_iter().map(Into::into));
        let parsed = Standalone::try_parse_from(argv).context("invalid configuration")?;
        parsed.config.validate()?;
        Ok(parsed.config)
    }

    /// Checks what clap cannot: relations and minimums.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.jwt_secret.expose().len() < MIN_JWT_SECRET_LEN {
            bail!("JWT_SECRET must be at least {MIN_JWT_SECRET_LEN} bytes long");
        }
        if !(self.database_url.expose().starts_with("postgres://")
            || self.database_url.expose().starts_with("postgresql://"))
        {
            bail!("DATABASE_URL must be a postgres:// or postgresql:// URL");
        }
        if !(self.mongodb_uri.expose().starts_with("mongodb://")
            || self.mongodb_uri.expose().starts_with("mongodb+srv://"))
        {
            bail!("MONGODB_URI must be a mongodb:// or mongodb+srv:// URI");
        }
        if self.database_min_connections > self.database_max_connections {
            bail!("DATABASE_MIN_CONNECTIONS must not exceed DATABASE_MAX_CONNECTIONS");
        }
        if self.database_max_connections == 0 || self.mongodb_max_pool_size == 0 {
            bail!("pool sizes must be at least 1");
        }
        if self.jwt_ttl_seconds == 0 || self.request_timeout_ms == 0 || self.txn_max_attempts == 0 {
            bail!("JWT_TTL_SECONDS, REQUEST_TIMEOUT_MS and TXN_MAX_ATTEMPTS must be positive");
        }
        self.sync.validate()?;
        self.websocket.validate()?;
        self.query.validate()?;
        self.validate_limits()?;
        if !(self.mutation_rate_per_second > 0.0 && self.mutation_rate_per_second.is_finite()) {
            bail!("MUTATION_RATE_PER_SECOND must be a positive number");
        }
        if self.read_model_timeout_ms == 0 {
            bail!("READ_MODEL_TIMEOUT_MS must be positive");
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Every abuse limit must allow at least one request.
    fn validate_limits(&self) -> anyhow::Result<()> {
        let limits = [
            ("BODY_LIMIT_BYTES", self.body_limit_bytes as u64),
            (
                "HTTP_HEADER_READ_TIMEOUT_MS",
                self.http_header_read_timeout_ms,
            ),
            (
                "HTTP_KEEP_ALIVE_TIMEOUT_MS",
                self.http_keep_alive_timeout_ms,
            ),
            ("MAX_CONNECTIONS", self.max_connections as u64),
            (
                "MAX_CONNECTIONS_PER_ADDRESS",
                self.max_connections_per_address as u64,
            ),
            (
                "LOGIN_MAX_FAILURES_PER_EMAIL",
                u64::from(self.login_max_failures_per_email),
            ),
            (
                "LOGIN_MAX_FAILURES_PER_ADDRESS",
                u64::from(self.login_max_failures_per_address),
            ),
            ("LOGIN_WINDOW_SECONDS", self.login_window_seconds),
            (
                "SIGNUP_MAX_PER_ADDRESS",
                u64::from(self.signup_max_per_address),
            ),
            ("SIGNUP_WINDOW_SECONDS", self.signup_window_seconds),
            (
                "PASSWORD_HASH_CONCURRENCY",
                self.password_hash_concurrency as u64,
            ),
            ("PASSWORD_HASH_WAIT_MS", self.password_hash_wait_ms),
            ("MUTATION_BURST", u64::from(self.mutation_burst)),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, value)| *value == 0) {
            bail!("{name} must be positive");
        }
        for origin in self.cors_allowed_origins.iter().filter(|o| !o.is_empty()) {
            let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
            if !scheme_ok || axum::http::HeaderValue::from_str(origin).is_err() {
                bail!("CORS_ALLOWED_ORIGINS must list origins such as https://app.example.org, not {origin:?}");
            }
        }
        Ok(())
    }
}
