//! The login, sign-up and mutation limits are decided on the source of
//! truth: two instances on the same databases give a client the budget one
//! would, however the requests are spread and however many arrive at once.
use std::{net::IpAddr, time::Duration};

use serde_json::{json, Value};
use studysync::ratelimit::ClientAddr;
use uuid::Uuid;

use super::login_burst::{burst, codes};
use crate::helpers::{error_code, spawn_app_with, TestApp};

const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
const CREATE_TODO: &str = "mutation { createTodo(input: {title: \"t\"}) { id } }";

async fn log_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, LOG_IN, json!({ "e": email, "p": password }))
        .await
}

/// Two instances started with the same settings on one pair of databases.
async fn two_instances(extra: &[&str]) -> (TestApp, TestApp) {
    let a = spawn_app_with(extra).await;
    let b = a.beside(extra).await;
    (a, b)
}

/// Moves both instances' limits past `by`, as the wall clock would.
fn advance_both(a: &TestApp, b: &TestApp, by: Duration) {
    a.state.rate_limits().clock().advance(by);
    b.state.rate_limits().clock().advance(by);
}

#[tokio::test]
async fn failed_log_ins_alternated_between_two_instances_reach_the_per_email_limit() {
    let (a, b) = two_instances(&[
        "--login-max-failures-per-email",
        "5",
        "--login-window-seconds",
        "600",
    ])
    .await;
    a.sign_up("target@example.org", "Target").await;
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        let body = log_in(app, "target@example.org", "wrong-password").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {i}: {body}");
    }
    for app in [&b, &a] {
        let sixth = log_in(app, "target@example.org", "wrong-password").await;
        assert_eq!(error_code(&sixth), "RATE_LIMITED", "{sixth}");
        let right = log_in(app, "target@example.org", "password123").await;
        assert_eq!(error_code(&right), "RATE_LIMITED", "{right}");
    }
    // Rows hold a keyed hash, never the email.
    let clear = a
        .count(
            "SELECT count(*) FROM rate_limits \
             WHERE position(convert_to('target@example.org', 'UTF8') in key_hash) > 0",
        )
        .await;
    assert_eq!(clear, 0);

    advance_both(&a, &b, Duration::from_secs(601));
    let after = log_in(&b, "target@example.org", "password123").await;
    assert!(after["data"]["logIn"]["token"].is_string(), "{after}");
}

#[tokio::test]
async fn sign_ups_on_two_instances_share_the_per_address_budget() {
    let (a, b) = two_instances(&[
        "--signup-max-per-address",
        "3",
        "--signup-window-seconds",
        "600",
    ])
    .await;
    a.sign_up("one@example.org", "One").await;
    b.sign_up("two@example.org", "Two").await;
    a.sign_up("three@example.org", "Three").await;
    let fourth = b
        .gql(
            None,
            "mutation { signUp(input: {email: \"four@example.org\", name: \"Four\", password: \"password123\"}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&fourth), "RATE_LIMITED", "{fourth}");
    assert_eq!(a.count("SELECT count(*) FROM users").await, 3);

    advance_both(&a, &b, Duration::from_secs(601));
    b.sign_up("four@example.org", "Four").await;
}

#[tokio::test]
async fn mutations_on_two_instances_share_the_accounts_bucket() {
    let (a, b) = two_instances(&[
        "--mutation-burst",
        "4",
        "--mutation-rate-per-second",
        "0.001",
    ])
    .await;
    let (token, _) = a.sign_up("writer@example.org", "Writer").await;
    for app in [&a, &b, &a, &b] {
        let body = app.gql(Some(&token), CREATE_TODO, json!({})).await;
        assert!(body["data"]["createTodo"]["id"].is_string(), "{body}");
    }
    for app in [&a, &b] {
        let refused = app.gql(Some(&token), CREATE_TODO, json!({})).await;
        assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
        assert!(
            refused["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() > Some(0),
            "{refused}"
        );
    }
    assert_eq!(a.count("SELECT count(*) FROM todos").await, 4);

    // One token comes back every 1000 s, on either instance.
    advance_both(&a, &b, Duration::from_secs(1001));
    let refilled = b.gql(Some(&token), CREATE_TODO, json!({})).await;
    assert!(
        refilled["data"]["createTodo"]["id"].is_string(),
        "{refilled}"
    );
    let again = a.gql(Some(&token), CREATE_TODO, json!({})).await;
    assert_eq!(error_code(&again), "RATE_LIMITED", "{again}");
    assert_eq!(a.count("SELECT count(*) FROM todos").await, 5);
}

/// Three hundred logIn reservations for one address at once, across two
/// instances: each is admitted or refused, none fails however hard they
/// contend for the address's row, and each admitted one given back (again
/// all at once) frees its slot.
#[tokio::test]
async fn a_burst_on_one_key_is_counted_in_full_and_every_give_back_frees_its_slot() {
    let (a, b) = two_instances(&["--login-max-failures-per-address", "100"]).await;
    let client = ClientAddr(Some(IpAddr::from([203, 0, 113, 10])));
    let reserve_all = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let limits = if i % 2 == 0 { &a } else { &b }.state.rate_limits().clone();
                tokio::spawn(async move {
                    let email = format!("burst{i}@example.org");
                    limits.reserve_login(Some(&email), client).await
                })
            })
            .collect();
        async move {
            let (mut admitted, mut refused) = (Vec::new(), 0);
            for task in tasks {
                match task.await.expect("task") {
                    Ok(attempt) => admitted.push(attempt),
                    Err(studysync::error::AppError::RateLimited { .. }) => refused += 1,
                    Err(other) => panic!("a reservation failed instead of counting: {other}"),
                }
            }
            (admitted, refused)
        }
    };
    let (admitted, refused) = reserve_all(300).await;
    assert_eq!((admitted.len(), refused), (100, 200));

    let gives: Vec<_> = admitted
        .into_iter()
        .map(|attempt| tokio::spawn(attempt.give_back()))
        .collect();
    for give in gives {
        give.await.expect("give back");
    }
    let (again, refused) = reserve_all(150).await;
    assert_eq!(
        (again.len(), refused),
        (100, 50),
        "every given-back slot is free again"
    );
}

#[tokio::test]
async fn concurrent_reservations_on_two_instances_never_admit_more_than_the_limit() {
    let (a, b) = two_instances(&[
        "--signup-max-per-address",
        "7",
        "--mutation-burst",
        "10",
        "--mutation-rate-per-second",
        "0.001",
        "--login-max-failures-per-email",
        "5",
    ])
    .await;
    let client = ClientAddr(Some(IpAddr::from([203, 0, 113, 9])));
    let user = Uuid::new_v4();
    let mut signups = Vec::new();
    let mut charges = Vec::new();
    for i in 0..60 {
        let limits = if i % 2 == 0 { &a } else { &b }.state.rate_limits().clone();
        let limits_too = limits.clone();
        signups.push(tokio::spawn(
            async move { limits.reserve_signup(client).await },
        ));
        // Requests of one to three fields each, charged at once.
        charges.push(tokio::spawn(async move {
            limits_too.charge_mutations(user, 1 + i % 3).await
        }));
    }
    let mut admitted = 0;
    for task in signups {
        match task.await.expect("task") {
            Ok(()) => admitted += 1,
            Err(err) => assert!(err.to_string().contains("too many"), "{err}"),
        }
    }
    assert_eq!(admitted, 7, "sign-ups admitted across both instances");
    let mut granted = 0;
    for task in charges {
        granted += task.await.expect("task").expect("charged").granted;
    }
    assert_eq!(granted, 10, "mutations granted across both instances");

    // 40 logIns for one email at once, half on each instance.
    a.sign_up("victim@example.org", "Victim").await;
    let replies = burst(
        &[&a, &b],
        40,
        |_| "victim@example.org".to_owned(),
        "guess-guess",
    )
    .await;
    let checked = codes(&replies, "UNAUTHENTICATED");
    let refused = codes(&replies, "RATE_LIMITED");
    assert!(checked <= 5, "{checked} passwords checked: {replies:?}");
    assert_eq!(checked + refused, 40, "{replies:?}");
}

#[tokio::test]
async fn expired_limits_are_deleted_in_bounded_batches() {
    let app = spawn_app_with(&["--login-max-failures-per-email", "100"]).await;
    for i in 0..5 {
        log_in(&app, &format!("nobody{i}@example.org"), "wrong-password").await;
    }
    // Five emails and the one address.
    assert_eq!(app.count("SELECT count(*) FROM rate_limits").await, 6);
    let none = studysync::ratelimit::purge_expired(app.sql(), 2)
        .await
        .expect("purge");
    assert_eq!(none, 0, "nothing has expired yet");
    app.count(
        "WITH e AS (UPDATE rate_limits SET expires_at = now() - INTERVAL '1 second' \
         WHERE scope = 'login_email' RETURNING 1) SELECT count(*) FROM e",
    )
    .await;
    let purged = studysync::ratelimit::purge_expired(app.sql(), 2)
        .await
        .expect("purge");
    assert_eq!(purged, 5);
    assert_eq!(app.count("SELECT count(*) FROM rate_limits").await, 1);
}
