//! The GraphQL-over-HTTP specification, checked by the `graphql-http` audit
//! suite and by the cases the suite leaves open.
use std::{path::Path, process::Command};

use serde_json::json;

use super::{get_raw, post_json, post_raw, GRAPHQL_RESPONSE};
use crate::helpers::spawn_app;

/// Installs the audit's npm packages from the lock file when they are
/// missing, from npm's cache when it has them.
fn ensure_audit_installed(dir: &Path) {
    if dir.join("node_modules/graphql-http/package.json").exists() {
        return;
    }
    let prefix = dir.to_str().expect("utf-8 path");
    let status = Command::new("npm")
        .args([
            "ci",
            "--prefix",
            prefix,
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
        ])
        .status()
        .expect("npm is on PATH");
    assert!(status.success(), "npm ci --prefix scripts/audit failed");
}

#[tokio::test]
async fn the_server_passes_every_must_and_should_audit_of_graphql_http() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/audit");
    ensure_audit_installed(&dir);
    let app = spawn_app().await;
    let url = app.url("/graphql");
    let script = dir.join("audit.mjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&url)
        .output()
        .await
        .expect("node is on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("graphql-http audit:"))
        .expect("summary line");
    assert!(
        summary.ends_with("0 MUST and 0 SHOULD failures"),
        "{summary}"
    );
    assert!(output.status.success(), "{summary}");
}

#[tokio::test]
async fn the_response_media_type_follows_the_accept_header() {
    let app = spawn_app().await;
    let query = json!({"query": "{ __typename }"});
    let modern = post_json(&app, GRAPHQL_RESPONSE, &query).await;
    assert_eq!(modern.status, 200);
    assert!(modern.content_type.starts_with(GRAPHQL_RESPONSE));
    let legacy = post_json(&app, "application/json", &query).await;
    assert!(legacy.content_type.starts_with("application/json"));
    assert_eq!(legacy.json()["data"]["__typename"], "Query");
    let neither = post_json(&app, "text/html", &query).await;
    neither.assert_error(406, "NOT_ACCEPTABLE");
}

#[tokio::test]
async fn a_document_that_does_not_parse_is_400_for_graphql_response_json_and_200_for_json() {
    let app = spawn_app().await;
    let broken = json!({"query": "mutation { createTodo(input: {title: \"x\"}) { id "});
    let modern = post_json(&app, GRAPHQL_RESPONSE, &broken).await;
    let body = modern.assert_error(400, "BAD_USER_INPUT");
    assert!(
        body.get("data").is_none(),
        "no data entry before execution: {body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("syntax error: expected"), "{message}");
    assert!(body["errors"][0]["locations"].is_array(), "{body}");
    let legacy = post_json(&app, "application/json", &broken).await;
    let body = legacy.assert_error(200, "BAD_USER_INPUT");
    assert!(body.get("data").is_none(), "{body}");
}

#[tokio::test]
async fn queries_over_get_run_and_a_missing_query_is_a_400() {
    let app = spawn_app().await;
    let ok = get_raw(&app, "query=%7B__typename%7D", Some("application/json")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["data"]["__typename"], "Query");
    let missing = get_raw(&app, "qeury=%7B__typename%7D", Some("application/json")).await;
    missing.assert_error(400, "BAD_REQUEST");
    let browser = get_raw(&app, "", Some("text/html")).await;
    assert!(browser.content_type.starts_with("text/html"));
}

#[tokio::test]
async fn a_post_without_a_content_type_is_415() {
    let app = spawn_app().await;
    let reply = post_raw(&app, None, None, r#"{"query": "{ __typename }"}"#).await;
    reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
}
