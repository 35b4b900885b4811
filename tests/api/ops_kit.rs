//! The operations kit (`docs/ops/`): every metric the Grafana dashboard and
//! the alerting rules query is one the server really exports. (The rules'
//! syntax and behaviour are checked by `promtool`, in `scripts/ops-check.sh`.)
use std::collections::BTreeSet;

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use studysync::{events::Aggregate, sync::verify::sample};

use crate::{
    helpers::{spawn_app_with, TestApp},
    reads_support::without_mongo,
};

/// `studysync_*` names in `text`, histogram series folded to their family.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("studysync_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
        i = end;
    }
    names
}

/// Every `expr` of the dashboard's panels.
fn expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => expressions(field, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| expressions(item, out)),
        _ => {}
    }
}

/// Makes the server record every labelled family at least once: requests,
/// sync batches, a fallback, a drift found by the sampler, a refusal.
async fn exercise(app: &TestApp) {
    let (token, _) = app.sign_up("ops@example.org", "Ops").await;
    let created = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"watch me\"}) { id } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createTodo"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.drain().await;
    app.state
        .read_model()
        .collection::<Document>("todos")
        .update_one(doc! {"_id": &id}, doc! {"$set": {"title": "tampered"}})
        .await
        .expect("tamper");
    sample::sample(app.state.sync(), Aggregate::Todo, 10, false)
        .await
        .expect("sample");
    let fallback = without_mongo(app).await;
    fallback
        .gql(
            Some(&token),
            "{ searchUsers(query: \"ops\") { edges { node { id } } } }",
            json!({}),
        )
        .await;
    // Two sign-ups from one address with a limit of one: a refusal.
    for n in 0..2 {
        app.gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
            json!({"i": {"email": format!("x{n}@example.org"), "name": "X", "password": "password123"}}),
        )
        .await;
    }
    let health = app
        .http
        .get(app.url("/api/health/sync"))
        .send()
        .await
        .expect("health");
    assert!(health.status().is_success() || health.status().as_u16() == 503);
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_query_only_metrics_the_server_exports() {
    let app = spawn_app_with(&["--signup-max-per-address", "2"]).await;
    exercise(&app).await;
    let exported = metric_names(
        &app.metrics_text()
            .await
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    );

    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/docs/ops/grafana-dashboard.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let dashboard_names = metric_names(&exprs.join("\n"));
    let alerts = std::fs::read_to_string(format!("{root}/docs/ops/alerts.yml")).expect("alerts");
    let alert_names = metric_names(&alerts);

    for (what, names) in [("dashboard", &dashboard_names), ("alerts", &alert_names)] {
        let missing: Vec<&String> = names.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "the {what} query metrics the server does not export: {missing:?}\nexported: {exported:?}"
        );
    }
    // What the issue asks the kit to show and alert on.
    for needed in [
        "studysync_sync_lag_current_seconds",
        "studysync_sync_queue_size",
        "studysync_sync_error_rate",
        "studysync_sync_events_applied_total",
        "studysync_read_fallback_total",
        "studysync_http_request_duration_seconds",
        "studysync_read_model_drifted",
    ] {
        assert!(
            dashboard_names.contains(needed),
            "the dashboard lacks {needed}"
        );
    }
    for needed in [
        "studysync_sync_lag_current_seconds",
        "studysync_sync_queue_size",
        "studysync_sync_error_rate",
        "studysync_http_request_duration_seconds",
        "studysync_sync_parked",
        "studysync_read_model_drifted",
    ] {
        assert!(alert_names.contains(needed), "no alert on {needed}");
    }
}

#[test]
fn names_are_read_from_expressions_with_histogram_suffixes_folded() {
    let names = metric_names(
        "histogram_quantile(0.95, sum by (le) (rate(studysync_http_request_duration_seconds_bucket[5m]))) \
         / max(studysync_sync_queue_size{kind=\"todo\"})",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "studysync_http_request_duration_seconds",
            "studysync_sync_queue_size"
        ]
    );
}
