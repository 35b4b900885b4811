//! Logging and metrics set-up.
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
/// `LOG_FORMAT=json` switches to JSON lines.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,mongodb=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    // A second initialisation (tests) keeps the first subscriber.
    drop(result);
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        const BUCKETS: [f64; 14] = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let builder = PrometheusBuilder::new();
        // Histograms (not summaries), so percentiles aggregate across instances.
        let builder = match builder.set_buckets(&BUCKETS) {
            Ok(with_buckets) => with_buckets,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; ours still renders.
        drop(metrics::set_global_recorder(recorder));
        register_counters();
        handle
    })
}

/// Counters without labels that may stay at zero for a long time (retries,
/// parked events, refused connections): registered at start, so `/metrics`
/// lists them at 0 and dashboards and alerts see a series, not "no data".
const COUNTERS: [&str; 8] = [
    "studysync_sync_events_applied_total",
    "studysync_sync_events_stale_total",
    "studysync_sync_events_failed_total",
    "studysync_sync_events_parked_total",
    "studysync_sync_claims_released_total",
    "studysync_txn_retries_total",
    "studysync_connections_refused_total",
    "studysync_sql_connections_discarded_total",
];

fn register_counters() {
    for name in COUNTERS {
        metrics::counter!(name).increment(0);
    }
}
