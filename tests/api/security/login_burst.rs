//! Login bursts: every concurrent attempt is counted before its password is
//! checked, and password hashing runs under a fixed bound however many
//! arrive at once.
use serde_json::{json, Value};

use super::rows_written;
use crate::helpers::{error_code, spawn_app_with, TestApp};

const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";

/// Sends `n` logIns at once, spread in turn over `apps`; returns every reply.
pub(super) async fn burst(
    apps: &[&TestApp],
    n: usize,
    email: impl Fn(usize) -> String,
    password: &str,
) -> Vec<Value> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let app = apps[i % apps.len()];
            let (http, url) = (reqwest::Client::new(), app.url("/graphql"));
            let body = json!({ "query": LOG_IN, "variables": { "e": email(i), "p": password } });
            tokio::spawn(async move {
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .expect("post")
                    .json::<Value>()
                    .await
                    .expect("json")
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for task in tasks {
        replies.push(task.await.expect("client"));
    }
    replies
}

pub(super) fn codes(replies: &[Value], code: &str) -> usize {
    replies
        .iter()
        .filter(|r| r["errors"][0]["extensions"]["code"] == code)
        .count()
}

#[tokio::test]
async fn forty_concurrent_log_ins_for_one_email_check_at_most_the_limit_and_the_password_stays_locked(
) {
    let app = spawn_app_with(&[
        "--login-max-failures-per-email",
        "5",
        "--login-max-failures-per-address",
        "20",
    ])
    .await;
    app.sign_up("victim@example.org", "Victim").await;
    let before = rows_written(&app).await;

    let replies = burst(
        &[&app],
        40,
        |_| "victim@example.org".to_owned(),
        "guess-guess",
    )
    .await;

    let checked = codes(&replies, "UNAUTHENTICATED");
    let refused = codes(&replies, "RATE_LIMITED");
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {replies:?}"
    );
    assert_eq!(checked + refused, 40, "{replies:?}");
    for reply in replies
        .iter()
        .filter(|r| r["errors"][0]["extensions"]["code"] == "RATE_LIMITED")
    {
        assert!(
            reply["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() > Some(0),
            "{reply}"
        );
    }
    // The right password is refused too while the email is locked.
    let right = app
        .gql(
            None,
            LOG_IN,
            json!({ "e": "victim@example.org", "p": "password123" }),
        )
        .await;
    assert_eq!(error_code(&right), "RATE_LIMITED", "{right}");
    assert_eq!(rows_written(&app).await, before);
    let alive = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(alive.status(), 200);
}

#[tokio::test]
async fn three_hundred_concurrent_log_ins_hash_at_most_the_configured_number_at_once() {
    let app = spawn_app_with(&[
        "--password-hash-concurrency",
        "2",
        "--password-hash-queue",
        "8",
    ])
    .await;
    app.sign_up("someone@example.org", "Someone").await;
    let before = rows_written(&app).await;

    let replies = burst(
        &[&app],
        300,
        |i| format!("nobody{i}@example.org"),
        "guess-guess",
    )
    .await;

    let checked = codes(&replies, "UNAUTHENTICATED");
    let refused = codes(&replies, "RATE_LIMITED");
    let other: Vec<_> = replies
        .iter()
        .filter(|r| {
            !matches!(
                r["errors"][0]["extensions"]["code"].as_str(),
                Some("UNAUTHENTICATED" | "RATE_LIMITED")
            )
        })
        .collect();
    assert!(other.is_empty(), "every reply is a refusal: {other:?}");
    assert_eq!(checked + refused, 300);
    assert!(refused > 0, "a burst beyond slots and queue is turned away");
    assert!(checked > 0, "the admitted ones were checked");
    let peak = app.state.passwords().peak_concurrency();
    assert!((1..=2).contains(&peak), "{peak} hashes ran at once");
    assert_eq!(rows_written(&app).await, before);
    // The server still answers, and a real login still works.
    let ok = app
        .gql(
            None,
            LOG_IN,
            json!({ "e": "someone@example.org", "p": "password123" }),
        )
        .await;
    assert!(ok["data"]["logIn"]["token"].is_string(), "{ok}");
}
