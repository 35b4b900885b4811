//! Shared set-up for the read-side tests: seeding through the API and a
//! second instance whose MongoDB is unreachable.
use serde_json::{json, Value};

use crate::helpers::{spawn_app_on, spawn_app_with, TestApp};

pub async fn log_study(
    app: &TestApp,
    token: &str,
    subject: &str,
    minutes: i32,
    started_at: Option<&str>,
) -> Value {
    // Without a start, the server takes `now - minutes`, which falls in
    // yesterday's DAY bucket shortly after midnight UTC: the tests' sessions
    // start now, so they always count for today.
    let now = studysync::domain::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let at = started_at.unwrap_or(&now);
    let input = json!({"subject": subject, "minutes": minutes, "startedAt": at});
    let body = app
        .gql(
            Some(token),
            "mutation($i: LogStudySessionInput!) { logStudySession(input: $i) { id } }",
            json!({"i": input}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body
}

pub async fn create_room(app: &TestApp, token: &str, name: &str) -> String {
    let body = app
        .gql(
            Some(token),
            "mutation($n: String!) { createRoom(name: $n) { id } }",
            json!({"n": name}),
        )
        .await;
    body["data"]["createRoom"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

pub async fn join_room(app: &TestApp, token: &str, room: &str) {
    let body = app
        .gql(
            Some(token),
            "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
            json!({"r": room}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// Signs up `n` users (`{tag}{i}@example.org`, named `{tag} {i}`), the
/// first creating a room named `room_name` that the others join; returns
/// their tokens, in order, and the room's id.
pub async fn room_of(app: &TestApp, tag: &str, n: usize, room_name: &str) -> (Vec<String>, String) {
    let mut tokens = Vec::new();
    for i in 0..n {
        let (token, _) = app
            .sign_up(&format!("{tag}{i}@example.org"), &format!("{tag} {i}"))
            .await;
        tokens.push(token);
    }
    let room = create_room(app, &tokens[0], room_name).await;
    for token in &tokens[1..] {
        join_room(app, token, &room).await;
    }
    (tokens, room)
}

/// Sends a message and returns the full response (with its consistency token).
pub async fn send(app: &TestApp, token: &str, room: &str, text: &str) -> Value {
    let body = app
        .gql(
            Some(token),
            "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id body } }",
            json!({"r": room, "b": text}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body
}

/// Creates a todo (completed, if asked) and returns its id.
pub async fn create_todo(app: &TestApp, token: &str, title: &str, completed: bool) -> String {
    let body = app
        .gql(
            Some(token),
            "mutation($t: String!) { createTodo(input: {title: $t}) { id } }",
            json!({"t": title}),
        )
        .await;
    let id = body["data"]["createTodo"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    if completed {
        let body = app
            .gql(
                Some(token),
                "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }",
                json!({"id": id}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    id
}

/// An app whose MongoDB reads may take up to 10 s: tests that expect
/// MongoDB to answer must not fall back just because the shared test server
/// is slow under a parallel test run.
pub async fn spawn_read_app() -> TestApp {
    spawn_app_with(&["--read-model-timeout-ms", "10000"]).await
}

/// A second instance on the same CockroachDB whose MongoDB URI points at a
/// port nobody listens on: every routed field must fall back.
pub async fn without_mongo(app: &TestApp) -> TestApp {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    spawn_app_on(
        &app.database_url,
        &format!("mongodb://127.0.0.1:{closed}"),
        &app.mongo_db,
        &[],
    )
    .await
}

/// Runs `query` as `token` on `app` (served from MongoDB, every routed
/// field) and on `fallback` (CockroachDB) and checks that both give the same
/// data; returns MongoDB's answer.
pub async fn same_from_both(
    app: &TestApp,
    fallback: &TestApp,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let from_mongo = app.gql(Some(token), query, variables.clone()).await;
    let from_sql = fallback.gql(Some(token), query, variables).await;
    assert!(from_mongo["errors"].is_null(), "{from_mongo}");
    assert!(
        stores(&from_mongo).iter().all(|s| s == "mongodb"),
        "{from_mongo}"
    );
    assert_eq!(from_mongo["data"], from_sql["data"]);
    from_mongo
}

/// The stores named in `extensions.provenance`, in field order.
pub fn stores(body: &Value) -> Vec<String> {
    body["extensions"]["provenance"]
        .as_array()
        .unwrap_or_else(|| panic!("no provenance in {body}"))
        .iter()
        .map(|p| p["store"].as_str().unwrap_or_default().to_owned())
        .collect()
}
