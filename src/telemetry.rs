//! Logging, traces and metrics set-up.
//!
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, every `tracing` span is also
//! an OpenTelemetry span, exported over OTLP/HTTP (protobuf) in batches, as
//! `OTEL_SERVICE_NAME` (default `studysync`); the other standard `OTEL_*`
//! variables (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_TRACES_SAMPLER`, ...) apply.
//! W3C `traceparent` headers are honoured, and the outbox carries the
//! context of the transaction that wrote each event (see `write::outbox`).
//! Unset, no exporter or OpenTelemetry layer exists and tracing costs what
//! it did.
use std::sync::{
    atomic::{AtomicBool, Ordering},
    OnceLock,
};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

static TRACES: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (OpenTelemetry is on).
pub fn traces_on() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
/// `LOG_FORMAT=json` switches to JSON lines. Exports traces when the OTLP
/// endpoint is set (see the module docs); call inside the Tokio runtime.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,mongodb=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let otel = tracer().map(|tracer| tracing_opentelemetry::layer().with_tracer(tracer));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
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

/// The OTLP exporter's tracer, when an endpoint is configured.
fn tracer() -> Option<opentelemetry_sdk::trace::SdkTracer> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    if !configured || PROVIDER.get().is_some() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("studysync: OTLP exporter not started: {error}");
            return None;
        }
    };
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "studysync".to_owned());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let tracer = provider.tracer("studysync");
    let _ = PROVIDER.set(provider);
    TRACES.store(true, Ordering::Relaxed);
    Some(tracer)
}

/// Exports the spans still buffered; call before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(error) = provider.shutdown() {
            eprintln!("studysync: flushing traces failed: {error}");
        }
    }
}

/// The W3C `traceparent` of the current span, when traces are on.
pub fn current_traceparent() -> Option<String> {
    if !traces_on() {
        return None;
    }
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// The span context a `traceparent` names, if it is well formed.
pub fn remote_context(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    let span = context.span().span_context().clone();
    span.is_valid().then_some(span)
}

/// Makes `span` a child of the trace the `traceparent` header names (a
/// caller's trace), when traces are on and the header is well formed.
pub fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !traces_on() {
        return;
    }
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The trace id of `span`, when traces are on.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    if !traces_on() {
        return None;
    }
    let id = span.context().span().span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
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
