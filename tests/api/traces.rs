//! OpenTelemetry across the outbox, end to end: a `serve` process exports
//! to a real OTLP/HTTP receiver started here (protobuf decoded with the
//! OpenTelemetry protocol's own types), and the trace of a mutation, sent
//! with the caller's `traceparent`, reaches the worker's batch that carried
//! its event into MongoDB.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, routing::post, Router};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value::Value as AnyValue,
    trace::v1::Span,
};
use prost::Message as _;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, wait_until},
    sync_support::spawn_serve_process_with,
};

type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver on a free port: `(its base URL, what it got)`.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP export");
                let mut spans = store.lock().expect("lock");
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                // An empty ExportTraceServiceResponse.
                Vec::<u8>::new()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(n) => Some(n.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test]
async fn a_mutation_s_trace_reaches_the_worker_batch_that_applied_it() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("trace@example.org", "Tra").await;
    let (endpoint, received) = receiver().await;
    let (_serve, base) = spawn_serve_process_with(
        &app,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "studysync-traces"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .http
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({
            "query": "mutation AddTodo { createTodo(input: {title: \"traced\"}) { id } }",
            "operationName": "AddTodo",
        }))
        .send()
        .await
        .expect("mutation");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("JSON");
    let id = body["data"]["createTodo"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();

    // The outbox row carries the transaction's context, in the caller's trace.
    let stored = app
        .count(&format!(
            "SELECT count(*) FROM outbox WHERE aggregate_id = '{id}' AND trace_context LIKE '00-{trace_id}-%'"
        ))
        .await;
    assert_eq!(stored, 1);

    let seen = |what: &'static str, test: Box<dyn Fn(&Span) -> bool + Send + Sync>| {
        let received = received.clone();
        async move {
            wait_until(what, Duration::from_secs(30), || {
                let found = received.lock().expect("lock").iter().any(&test);
                async move { found }
            })
            .await;
        }
    };
    let ours = move |span: &Span| hex(&span.trace_id) == trace_id;
    seen(
        "the request's GraphQL span, in the caller's trace",
        Box::new(move |s| {
            ours(s)
                && s.name == "graphql"
                && attribute(s, "graphql.operation.name").as_deref() == Some("AddTodo")
                && attribute(s, "graphql.operation.type").as_deref() == Some("mutation")
        }),
    )
    .await;
    seen(
        "the transaction's span, in the same trace",
        Box::new(move |s| ours(s) && s.name == "transact"),
    )
    .await;
    for (what, name) in [
        (
            "the worker's claim, linked to the mutation's trace with the lag",
            "claim",
        ),
        (
            "the worker's batch (the MongoDB apply under it), linked likewise",
            "carry",
        ),
    ] {
        seen(
            what,
            Box::new(move |s| {
                s.name == name
                    && s.links.iter().any(|l| {
                        hex(&l.trace_id) == trace_id
                            && l.attributes.iter().any(|a| a.key == "studysync.lag_ms")
                    })
            }),
        )
        .await;
    }
    // The MongoDB apply is a child of the linked batch.
    let spans = received.lock().expect("lock").clone();
    let batches: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "carry" && s.links.iter().any(|l| hex(&l.trace_id) == trace_id))
        .collect();
    assert!(
        spans
            .iter()
            .any(|s| s.name == "apply_after"
                && batches.iter().any(|b| b.span_id == s.parent_span_id)),
        "no apply span under the linked batch"
    );
    // Variables and bodies never become attributes.
    assert!(spans.iter().all(|s| s
        .attributes
        .iter()
        .all(|a| !format!("{:?}", a.value).contains("traced"))));
    assert!(app.read_doc("todos", &id).await.is_some());
}
