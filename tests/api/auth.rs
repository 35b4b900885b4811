use serde_json::json;

use crate::helpers::{error_code, spawn_app};

const SIGN_UP: &str =
    "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id name email } } }";
const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token user { id } } }";

#[tokio::test]
async fn a_user_signs_up_logs_in_and_sees_themselves() {
    let app = spawn_app().await;
    let body = app
        .gql(
            None,
            SIGN_UP,
            json!({"i": {"email": "Ada@Example.org", "name": "Ada", "password": "password123"}}),
        )
        .await;
    assert_eq!(
        body["data"]["signUp"]["user"]["email"], "ada@example.org",
        "{body}"
    );
    let login = app
        .gql(
            None,
            LOG_IN,
            json!({"e": "ADA@example.org", "p": "password123"}),
        )
        .await;
    let token = login["data"]["logIn"]["token"].as_str().expect("token");
    let me = app
        .gql(Some(token), "{ me { name email } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({"name": "Ada", "email": "ada@example.org"})
    );
    let anonymous = app.gql(None, "{ me { name } }", json!({})).await;
    assert_eq!(anonymous["data"]["me"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_taken_email_in_any_case_is_a_conflict_and_writes_nothing() {
    let app = spawn_app().await;
    app.sign_up("bo@example.org", "Bo").await;
    let outbox_before = app.count("SELECT count(*) FROM outbox").await;
    let body = app
        .gql(
            None,
            SIGN_UP,
            json!({"i": {"email": "BO@example.org", "name": "Other", "password": "password123"}}),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        outbox_before
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_error() {
    let app = spawn_app().await;
    app.sign_up("cy@example.org", "Cy").await;
    let wrong = app
        .gql(
            None,
            LOG_IN,
            json!({"e": "cy@example.org", "p": "not-the-password"}),
        )
        .await;
    let unknown = app
        .gql(
            None,
            LOG_IN,
            json!({"e": "nobody@example.org", "p": "password123"}),
        )
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(
        wrong["errors"][0]["extensions"],
        unknown["errors"][0]["extensions"]
    );
}

#[tokio::test]
async fn invalid_sign_up_input_is_rejected_and_writes_nothing() {
    let app = spawn_app().await;
    let cases = [
        json!({"email": "not-an-email", "name": "A", "password": "password123"}),
        json!({"email": "a@example.org", "name": "", "password": "password123"}),
        json!({"email": "a@example.org", "name": "x".repeat(81), "password": "password123"}),
        json!({"email": "a@example.org", "name": "A", "password": "short"}),
    ];
    for input in cases {
        let body = app.gql(None, SIGN_UP, json!({"i": input})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn passwords_are_hashed_with_argon2id_and_never_reach_the_outbox() {
    let app = spawn_app().await;
    app.sign_up("di@example.org", "Di").await;
    let hash_ok = app
        .count("SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$%' AND password_hash NOT LIKE '%password123%'")
        .await;
    assert_eq!(hash_ok, 1);
    let leaked = app
        .count("SELECT count(*) FROM outbox WHERE payload::text LIKE '%argon2%' OR payload::text LIKE '%password%'")
        .await;
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn a_forged_or_missing_token_is_unauthenticated() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("ed@example.org", "Ed").await;
    let query = "mutation { createTodo(input: {title: \"x\"}) { id } }";
    let none = app.gql(None, query, json!({})).await;
    assert_eq!(error_code(&none), "UNAUTHENTICATED");
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let bad = app.gql(Some(&forged), query, json!({})).await;
    assert_eq!(error_code(&bad), "UNAUTHENTICATED");
    let me = app.gql(Some("garbage"), "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 0);
}

#[tokio::test]
async fn users_change_only_their_own_profile_and_email_stays_private() {
    let app = spawn_app().await;
    let (token, id) = app.sign_up("fi@example.org", "Fi").await;
    let (other, _) = app.sign_up("gu@example.org", "Gu").await;
    let body = app
        .gql(
            Some(&token),
            "mutation { updateProfile(input: {name: \"Fiona\"}) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["updateProfile"]["name"], "Fiona");
    let seen = app
        .gql(
            Some(&other),
            "query($id: ID!) { user(id: $id) { name email } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        seen["data"]["user"],
        json!({"name": "Fiona", "email": null})
    );
    let version = app
        .count(&format!("SELECT version FROM users WHERE id = '{id}'"))
        .await;
    assert_eq!(version, 2);
}
