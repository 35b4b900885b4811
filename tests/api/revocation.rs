//! `changePassword` and `logOutEverywhere`: every token issued before stops
//! working, on every instance and on open websockets.
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    helpers::{error_code, mongo_uri, spawn_app, spawn_app_on, spawn_app_with, TestApp},
    reads_support::{create_room, send},
    ws::{self, Reply},
};

const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(current: $c, new: $n) { token user { id email } } }";

async fn log_in(app: &TestApp, email: &str, password: &str) -> Value {
    app.gql(None, LOG_IN, json!({"e": email, "p": password}))
        .await
}

async fn token(app: &TestApp, email: &str, password: &str) -> String {
    let body = log_in(app, email, password).await;
    body["data"]["logIn"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("log in failed: {body}"))
        .to_owned()
}

/// `me`'s name with `token`, or the error code.
async fn me(app: &TestApp, token: &str) -> String {
    let body = app.gql(Some(token), "{ me { name } }", json!({})).await;
    match body["data"]["me"]["name"].as_str() {
        Some(name) => name.to_owned(),
        None => error_code(&body).to_owned(),
    }
}

async fn password_hash(app: &TestApp, email: &str) -> String {
    let statement = sea_orm::Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        format!("SELECT password_hash FROM users WHERE email = '{email}'"),
    );
    use sea_orm::ConnectionTrait;
    app.sql()
        .query_one(statement)
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<String>(0)
        .expect("hash")
}

#[tokio::test]
async fn changing_the_password_revokes_every_earlier_token_and_keeps_the_new_one() {
    let app = spawn_app().await;
    let (signed_up, _) = app.sign_up("p@example.org", "Pat").await;
    let other_device = token(&app, "p@example.org", "password123").await;
    let hash = password_hash(&app, "p@example.org").await;

    // Refusals write nothing and revoke nothing.
    for (current, new, code) in [
        ("wrong-password", "a-new-password", "BAD_USER_INPUT"),
        ("password123", "short", "BAD_USER_INPUT"),
    ] {
        let body = app
            .gql(Some(&signed_up), CHANGE, json!({"c": current, "n": new}))
            .await;
        assert_eq!(error_code(&body), code, "{body}");
    }
    let anonymous = app
        .gql(
            None,
            CHANGE,
            json!({"c": "password123", "n": "a-new-password"}),
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(password_hash(&app, "p@example.org").await, hash);
    assert_eq!(me(&app, &other_device).await, "Pat");

    let body = app
        .gql(
            Some(&signed_up),
            CHANGE,
            json!({"c": "password123", "n": "a-new-password"}),
        )
        .await;
    let fresh = body["data"]["changePassword"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("change failed: {body}"))
        .to_owned();
    assert_eq!(
        body["data"]["changePassword"]["user"]["email"],
        "p@example.org"
    );
    assert_eq!(me(&app, &fresh).await, "Pat");
    for old in [&signed_up, &other_device] {
        assert_eq!(me(&app, old).await, "UNAUTHENTICATED");
    }
    assert_eq!(
        error_code(&log_in(&app, "p@example.org", "password123").await),
        "UNAUTHENTICATED"
    );
    let again = token(&app, "p@example.org", "a-new-password").await;
    assert_eq!(me(&app, &again).await, "Pat");
    // The read model never sees credentials: nothing was enqueued for them.
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE event_type LIKE 'user.%'")
            .await,
        1,
        "only the sign-up's event"
    );
}

#[tokio::test]
async fn logging_out_everywhere_revokes_tokens_on_every_instance() {
    let a = spawn_app().await;
    let b = spawn_app_on(&a.database_url, &mongo_uri(), &a.mongo_db, &[]).await;
    let (first, _) = a.sign_up("l@example.org", "Lou").await;
    let second = token(&b, "l@example.org", "password123").await;
    assert_eq!(me(&b, &first).await, "Lou");

    let body = b
        .gql(Some(&second), "mutation { logOutEverywhere }", json!({}))
        .await;
    assert_eq!(body["data"]["logOutEverywhere"], true, "{body}");
    for app in [&a, &b] {
        for old in [&first, &second] {
            let refused = app.gql(Some(old), "{ me { name } }", json!({})).await;
            assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
            assert!(
                refused["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("revoked")),
                "{refused}"
            );
        }
    }
    let again = token(&a, "l@example.org", "password123").await;
    assert_eq!(me(&b, &again).await, "Lou");
}

#[tokio::test]
async fn a_revoked_token_closes_its_websocket_and_ends_its_subscriptions() {
    let app = spawn_app_with(&["--ws-recheck-ms", "0"]).await;
    let (owner, _) = app.sign_up("w1@example.org", "Wes").await;
    let (member, _) = app.sign_up("w2@example.org", "Wyn").await;
    let room = create_room(&app, &member, "Watched").await;
    let query = "subscription($r: ID!) { messageAdded(roomId: $r) { body } }";
    let mut watching = ws::connect(&app, Some(&member)).await;
    ws::subscribe(&mut watching, "1", query, json!({"r": room})).await;
    let mut idle = ws::connect(&app, Some(&member)).await;
    // live first
    let mut live = false;
    for attempt in 0..20 {
        send(&app, &member, &room, &format!("before {attempt}")).await;
        if let Reply::Json(frame) = ws::next_reply(&mut watching, Duration::from_millis(500)).await
        {
            assert_eq!(frame["type"], "next", "{frame}");
            live = true;
            break;
        }
    }
    assert!(live, "the subscription delivered nothing");
    while let Reply::Json(_) = ws::next_reply(&mut watching, Duration::from_millis(300)).await {}

    let body = app
        .gql(Some(&member), "mutation { logOutEverywhere }", json!({}))
        .await;
    assert_eq!(body["data"]["logOutEverywhere"], true, "{body}");
    let fresh = token(&app, "w2@example.org", "password123").await;
    send(&app, &fresh, &room, "after").await;
    // The running subscription ends before delivering anything more...
    match ws::next_reply(&mut watching, Duration::from_secs(5)).await {
        Reply::Json(frame) => {
            assert!(frame["payload"]["data"].is_null(), "{frame}");
            assert_eq!(
                frame["payload"]["errors"][0]["extensions"]["code"],
                "UNAUTHENTICATED"
            );
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    // ...and the next operation on an open connection closes it.
    ws::subscribe(&mut idle, "2", "{ __typename }", json!({})).await;
    match ws::next_reply(&mut idle, Duration::from_secs(5)).await {
        Reply::Closed(code, reason) => {
            assert_eq!(code, 4403, "{reason}");
            assert!(reason.contains("revoked"), "{reason}");
        }
        other => panic!("expected a 4403 close, got {other:?}"),
    }
    // Other accounts are untouched.
    assert_eq!(me(&app, &owner).await, "Wes");
}
