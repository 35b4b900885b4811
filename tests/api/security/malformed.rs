//! Malformed requests get a GraphQL-shaped error with a 4xx status (or 200
//! for `application/json` where the specification asks for it), never Rust
//! internals and never a 500; and they write nothing.
use serde_json::json;

use super::{post_json, post_raw, rows_written, GRAPHQL_RESPONSE};
use crate::helpers::spawn_app;

const CREATE_TODO: &str = "mutation($i: CreateTodoInput!) { createTodo(input: $i) { id } }";

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_and_writes_nothing() {
    let app = spawn_app().await;
    for body in [
        "{\"query\": \"mutation { createTodo",
        "not json at all",
        "",
        "\u{0}\u{1}",
    ] {
        for accept in ["application/json", GRAPHQL_RESPONSE] {
            let reply = post_raw(&app, Some("application/json"), Some(accept), body).await;
            reply.assert_error(400, "BAD_REQUEST");
        }
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    post_raw(&app, Some("application/json"), None, deep)
        .await
        .assert_error(400, "BAD_REQUEST");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn variables_that_are_not_an_object_are_a_400() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("vars@example.org", "Vars").await;
    let before = rows_written(&app).await;
    for variables in [json!("{\"i\": {}}"), json!([1]), json!(42), json!(true)] {
        let body = json!({ "query": CREATE_TODO, "variables": variables });
        let reply = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("post");
        super::Reply::from(reply)
            .await
            .assert_error(400, "BAD_REQUEST");
    }
    assert_eq!(rows_written(&app).await, before);
}

#[tokio::test]
async fn variables_of_the_wrong_type_are_bad_user_input_and_write_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("types@example.org", "Types").await;
    let before = rows_written(&app).await;
    for input in [
        json!(5),
        json!({"title": 5}),
        json!({"title": "x", "dueAt": "tomorrow"}),
        json!({}),
    ] {
        let (status, body) = app
            .gql_full(Some(&token), CREATE_TODO, json!({ "i": input }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            crate::helpers::error_code(&body),
            "BAD_USER_INPUT",
            "{body}"
        );
        let modern = post_json(
            &app,
            GRAPHQL_RESPONSE,
            &json!({"query": CREATE_TODO, "variables": {"i": input}}),
        )
        .await;
        let body = modern.assert_error(400, "BAD_USER_INPUT");
        assert!(body.get("data").is_none(), "{body}");
    }
    let missing = post_json(
        &app,
        GRAPHQL_RESPONSE,
        &json!({"query": CREATE_TODO, "variables": {}}),
    )
    .await;
    missing.assert_error(400, "BAD_USER_INPUT");
    assert_eq!(rows_written(&app).await, before);
}

#[tokio::test]
async fn a_huge_string_is_bad_user_input_and_writes_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("huge@example.org", "Huge").await;
    let before = rows_written(&app).await;
    let title = "t".repeat(900_000);
    let (status, body) = app
        .gql_full(Some(&token), CREATE_TODO, json!({"i": {"title": title}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(crate::helpers::error_code(&body), "BAD_USER_INPUT");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.len() < 200,
        "the error does not echo the input: {message}"
    );
    assert_eq!(rows_written(&app).await, before);
}

#[tokio::test]
async fn an_invalid_uuid_is_bad_user_input_and_writes_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("uuid@example.org", "Uuid").await;
    let before = rows_written(&app).await;
    for id in [
        "not-a-uuid",
        "",
        "00000000-0000-0000-0000-00000000000Z",
        "'; DROP TABLE todos; --",
    ] {
        let body = app
            .gql(
                Some(&token),
                "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            crate::helpers::error_code(&body),
            "BAD_USER_INPUT",
            "{body}"
        );
        let body = app
            .gql(
                Some(&token),
                "query($id: ID!) { user(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            crate::helpers::error_code(&body),
            "BAD_USER_INPUT",
            "{body}"
        );
    }
    assert_eq!(rows_written(&app).await, before);
}

#[tokio::test]
async fn an_invalid_cursor_is_bad_user_input() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("cursor@example.org", "Cursor").await;
    for cursor in ["garbage", "", "eyJ0IjoxfQ", &"A".repeat(5000)] {
        let body = app
            .gql(
                Some(&token),
                "query($c: String) { todos(after: $c) { edges { cursor } } }",
                json!({ "c": cursor }),
            )
            .await;
        assert_eq!(
            crate::helpers::error_code(&body),
            "BAD_USER_INPUT",
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_enum_value_is_bad_user_input() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("enum@example.org", "Enum").await;
    let literal = post_json(
        &app,
        GRAPHQL_RESPONSE,
        &json!({ "query": "{ leaderboard(period: FORTNIGHT) { edges { cursor } } }" }),
    )
    .await;
    literal.assert_error(400, "BAD_USER_INPUT");
    let (status, body) = app
        .gql_full(
            Some(&token),
            "query($p: Period!) { leaderboard(period: $p) { edges { cursor } } }",
            json!({ "p": "FORTNIGHT" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        crate::helpers::error_code(&body),
        "BAD_USER_INPUT",
        "{body}"
    );
    assert!(body.get("data").is_none(), "{body}");
}
