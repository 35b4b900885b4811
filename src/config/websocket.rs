//! Settings of `/graphql/ws`: how long a connection may stay unidentified,
//! how many connections and operations one account and one connection may
//! hold, and how often a live subscription re-reads its caller's rights.
//!
//! They are part of [`crate::config::Config`] (flattened). The caps are per
//! instance: with N instances one account may hold N times as much.
use std::time::Duration;

use anyhow::bail;

#[derive(Clone, Debug, clap::Args)]
pub struct WebSocketSettings {
    /// Milliseconds a new connection has to send `connection_init`; past
    /// them the server closes it with 4408.
    #[arg(
        long = "ws-init-timeout-ms",
        env = "WS_INIT_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub init_timeout_ms: u64,
    /// Open connections one account may hold; the next `connection_init`
    /// is refused with 4429.
    #[arg(
        long = "ws-max-connections-per-user",
        env = "WS_MAX_CONNECTIONS_PER_USER",
        default_value_t = 8
    )]
    pub max_connections_per_user: usize,
    /// Operations running at once on one connection; the next `subscribe`
    /// gets an error (`RATE_LIMITED`) and the connection stays open.
    #[arg(
        long = "ws-max-operations-per-connection",
        env = "WS_MAX_OPERATIONS_PER_CONNECTION",
        default_value_t = 32
    )]
    pub max_operations_per_connection: usize,
    /// Operations running at once over all of one account's connections.
    #[arg(
        long = "ws-max-operations-per-user",
        env = "WS_MAX_OPERATIONS_PER_USER",
        default_value_t = 64
    )]
    pub max_operations_per_user: usize,
    /// A live subscription re-reads, before it delivers, whether its caller
    /// may still see it (the account exists, the token is not revoked, the
    /// membership holds) once this many milliseconds (plus up to half again,
    /// at random, so a busy room's subscribers do not all read at once) have
    /// passed since the last read; 0 re-reads before every delivery. Leaving
    /// a room does not wait for it: the change is pushed to every instance.
    #[arg(
        long = "ws-recheck-ms",
        env = "WS_RECHECK_MS",
        default_value_t = 30_000
    )]
    pub recheck_ms: u64,
    /// Milliseconds the instance's change stream (how other instances'
    /// changes reach its subscribers) stays open after its last
    /// subscription ends. It opens with the first one; in between, the
    /// read model evaluates no stream for this instance.
    #[arg(
        long = "ws-stream-idle-ms",
        env = "WS_STREAM_IDLE_MS",
        default_value_t = 30_000
    )]
    pub stream_idle_ms: u64,
}

impl WebSocketSettings {
    pub fn init_timeout(&self) -> Duration {
        Duration::from_millis(self.init_timeout_ms)
    }

    pub fn recheck(&self) -> Duration {
        Duration::from_millis(self.recheck_ms)
    }

    pub fn stream_idle(&self) -> Duration {
        Duration::from_millis(self.stream_idle_ms)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("WS_INIT_TIMEOUT_MS", self.init_timeout_ms as usize),
            ("WS_MAX_CONNECTIONS_PER_USER", self.max_connections_per_user),
            (
                "WS_MAX_OPERATIONS_PER_CONNECTION",
                self.max_operations_per_connection,
            ),
            ("WS_MAX_OPERATIONS_PER_USER", self.max_operations_per_user),
        ] {
            if value == 0 {
                bail!("{name} must be positive");
            }
        }
        Ok(())
    }
}
