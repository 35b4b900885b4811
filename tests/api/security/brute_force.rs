//! Password guessing and mass sign-up are rate limited per email and per
//! client address, and the limits lift once their window has passed.
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app_with, TestApp};

const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";

async fn log_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, LOG_IN, json!({ "e": email, "p": password }))
        .await
}

async fn log_in_from(app: &TestApp, forwarded_for: &str, email: &str) -> Value {
    app.http
        .post(app.url("/graphql"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "query": LOG_IN, "variables": { "e": email, "p": "wrong-password" } }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn log_in_is_refused_after_the_configured_failures_per_email_and_recovers_after_the_window() {
    let app = spawn_app_with(&[
        "--login-max-failures-per-email",
        "3",
        "--login-window-seconds",
        "600",
    ])
    .await;
    app.sign_up("target@example.org", "Target").await;
    app.sign_up("bystander@example.org", "Bystander").await;
    for _ in 0..3 {
        let body = log_in(&app, "target@example.org", "wrong-password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    // Even the right password is refused while the email is locked out, so
    // the limit cannot be probed for the answer.
    let locked = log_in(&app, "TARGET@example.org", "password123").await;
    assert_eq!(error_code(&locked), "RATE_LIMITED", "{locked}");
    assert!(locked["data"].is_null());
    let other = log_in(&app, "bystander@example.org", "password123").await;
    assert!(other["data"]["logIn"]["token"].is_string(), "{other}");

    // The window passes on the limiters' clock, not the wall's: no test
    // waits out a window, and none races one on a loaded machine.
    app.state
        .rate_limits()
        .clock()
        .advance(Duration::from_secs(601));
    let after = log_in(&app, "target@example.org", "password123").await;
    assert!(after["data"]["logIn"]["token"].is_string(), "{after}");
}

#[tokio::test]
async fn log_in_is_refused_after_the_configured_failures_per_client_address() {
    let app = spawn_app_with(&[
        "--login-max-failures-per-address",
        "3",
        "--login-window-seconds",
        "600",
    ])
    .await;
    app.sign_up("real@example.org", "Real").await;
    for i in 0..3 {
        let body = log_in(&app, &format!("guess{i}@example.org"), "password123").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }
    let sprayed = log_in(&app, "real@example.org", "password123").await;
    assert_eq!(error_code(&sprayed), "RATE_LIMITED", "{sprayed}");
    // The window passes on the limiters' clock, not the wall's: no test
    // waits out a window, and none races one on a loaded machine.
    app.state
        .rate_limits()
        .clock()
        .advance(Duration::from_secs(601));
    let after = log_in(&app, "real@example.org", "password123").await;
    assert!(after["data"]["logIn"]["token"].is_string(), "{after}");
}

#[tokio::test]
async fn successful_log_ins_do_not_use_up_the_budget() {
    let app = spawn_app_with(&["--login-max-failures-per-email", "2"]).await;
    app.sign_up("often@example.org", "Often").await;
    for _ in 0..5 {
        let body = log_in(&app, "often@example.org", "password123").await;
        assert!(body["data"]["logIn"]["token"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn sign_up_is_limited_per_client_address_and_the_refused_ones_write_nothing() {
    let app = spawn_app_with(&[
        "--signup-max-per-address",
        "2",
        "--signup-window-seconds",
        "600",
    ])
    .await;
    app.sign_up("one@example.org", "One").await;
    app.sign_up("two@example.org", "Two").await;
    let outbox = app.count("SELECT count(*) FROM outbox").await;
    let third = app
        .gql(
            None,
            "mutation { signUp(input: {email: \"three@example.org\", name: \"Three\", password: \"password123\"}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&third), "RATE_LIMITED", "{third}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, outbox);
    // The window passes on the limiters' clock, not the wall's: no test
    // waits out a window, and none races one on a loaded machine.
    app.state
        .rate_limits()
        .clock()
        .advance(Duration::from_secs(601));
    app.sign_up("three@example.org", "Three").await;
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_trusted() {
    let limits = [
        "--login-max-failures-per-address",
        "2",
        "--login-max-failures-per-email",
        "100",
    ];
    let untrusted = spawn_app_with(&limits).await;
    log_in_from(&untrusted, "10.0.0.1", "a@example.org").await;
    log_in_from(&untrusted, "10.0.0.2", "b@example.org").await;
    let spoofed = log_in_from(&untrusted, "10.0.0.3", "c@example.org").await;
    assert_eq!(error_code(&spoofed), "RATE_LIMITED", "{spoofed}");

    let mut trusted_args = limits.to_vec();
    trusted_args.extend(["--trust-forwarded-for", "true"]);
    let trusted = spawn_app_with(&trusted_args).await;
    log_in_from(&trusted, "10.0.0.1", "a@example.org").await;
    log_in_from(&trusted, "10.0.0.1", "b@example.org").await;
    let same = log_in_from(&trusted, "198.51.100.7, 10.0.0.1", "c@example.org").await;
    assert_eq!(
        error_code(&same),
        "RATE_LIMITED",
        "the proxy's entry counts: {same}"
    );
    let other = log_in_from(&trusted, "10.0.0.2", "d@example.org").await;
    assert_eq!(error_code(&other), "UNAUTHENTICATED", "{other}");
}
