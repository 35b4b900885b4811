//! Persisted and trusted documents: Apollo's automatic persisted queries
//! (shared by every instance, over POST, GET and websocket) and the strict
//! mode that runs only a manifest's documents.
use std::time::Duration;

use serde_json::{json, Value};
use studysync::graphql::documents::sha256_hex;

use crate::{
    helpers::{error_code, spawn_app, spawn_app_with, TestApp},
    ws::{self, Reply},
};

const ME: &str = "query Me { me { name } }";
const BOARD: &str = "subscription Board { leaderboardChanged(period: WEEK, first: 3) { rank } }";

/// POSTs `body` as is (with the caller's token; `""` for none).
/// The next frame for operation `id`, skipping the `complete` that ends
/// another one.
async fn frame_for(socket: &mut ws::Socket, id: &str) -> Value {
    loop {
        match ws::next_reply(socket, Duration::from_secs(10)).await {
            Reply::Json(frame) if frame["id"] == id => return frame,
            Reply::Json(frame) if frame["type"] == "complete" => continue,
            other => panic!("expected a frame for {id}, got {other:?}"),
        }
    }
}

async fn post(app: &TestApp, token: &str, body: Value) -> Value {
    let mut request = app.http.post(app.url("/graphql")).json(&body);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("JSON")
}

/// The code of a websocket operation's first error, in either of the
/// shapes the protocols use (an `error` frame, or `next` with `errors`).
fn ws_code(frame: &Value) -> Value {
    let errors = if frame["type"] == "error" {
        &frame["payload"]
    } else {
        &frame["payload"]["errors"]
    };
    errors[0]["extensions"]["code"].clone()
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn get(app: &TestApp, token: &str, params: &[(&str, String)]) -> (u16, Value) {
    let response = app
        .http
        .get(app.url("/graphql"))
        .bearer_auth(token)
        .header("accept", "application/json")
        .query(params)
        .send()
        .await
        .expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn automatic_persisted_queries_register_once_and_run_by_hash_on_every_instance() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("apq@example.org", "Ada").await;
    let hash = sha256_hex(ME);

    // The dance: unknown hash, then hash with text, then hash alone.
    let unknown = post(&app, &token, json!({"extensions": persisted(&hash)})).await;
    assert_eq!(
        unknown["errors"][0]["message"], "PersistedQueryNotFound",
        "{unknown}"
    );
    assert_eq!(error_code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    let registered = post(
        &app,
        &token,
        json!({"query": ME, "extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(registered["data"]["me"]["name"], "Ada", "{registered}");
    let by_hash = post(&app, &token, json!({"extensions": persisted(&hash)})).await;
    assert_eq!(by_hash["data"]["me"]["name"], "Ada", "{by_hash}");

    // Another instance knows it at once (the table is shared).
    let other = app.beside(&[]).await;
    let there = post(&other, &token, json!({"extensions": persisted(&hash)})).await;
    assert_eq!(there["data"]["me"]["name"], "Ada", "{there}");
    // GET with the hash only: short, cacheable URLs.
    let (status, got) = get(
        &other,
        &token,
        &[("extensions", persisted(&hash).to_string())],
    )
    .await;
    assert_eq!(
        (status, &got["data"]["me"]["name"]),
        (200, &json!("Ada")),
        "{got}"
    );

    // A hash that is not the text's, a mutation by hash over GET, a text
    // the front door refuses: nothing runs and nothing is registered.
    let wrong = post(
        &app,
        &token,
        json!({"query": "{ me { id } }", "extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    let mutation = "mutation { logOutEverywhere }";
    let mutation_hash = sha256_hex(mutation);
    post(
        &app,
        &token,
        json!({"query": "{ __typename }", "extensions": persisted(&sha256_hex("{ __typename }"))}),
    )
    .await;
    let (status, _) = get(
        &app,
        &token,
        &[
            ("query", mutation.to_owned()),
            ("extensions", persisted(&mutation_hash).to_string()),
        ],
    )
    .await;
    assert_eq!(status, 405, "a mutation never runs over GET");
    let (status, _) = get(
        &app,
        &token,
        &[("extensions", persisted(&mutation_hash).to_string())],
    )
    .await;
    assert_eq!(status, 405, "not by its hash either");
    let stored = app.count("SELECT count(*) FROM persisted_documents").await;
    let deep = format!("{{ me {} }}", "{ name ".repeat(40) + &"}".repeat(40));
    let refused = post(
        &app,
        &token,
        json!({"query": deep, "extensions": persisted(&sha256_hex(&deep))}),
    )
    .await;
    assert!(refused["errors"].is_array(), "{refused}");
    assert_eq!(
        app.count("SELECT count(*) FROM persisted_documents").await,
        stored
    );
    let (status, bad) = get(
        &app,
        &token,
        &[(
            "extensions",
            json!({"persistedQuery": {"version": 2, "sha256Hash": hash}}).to_string(),
        )],
    )
    .await;
    assert!(status == 200 || status == 400, "{bad}");
    assert_eq!(error_code(&bad), "BAD_REQUEST", "{bad}");

    // Websocket operations resolve the same way.
    let board_hash = sha256_hex(BOARD);
    let mut socket = ws::connect(&other, Some(&token)).await;
    ws::send_json(
        &mut socket,
        &json!({"id": "1", "type": "subscribe", "payload": {"query": "", "extensions": persisted(&board_hash)}}),
    )
    .await;
    match ws::next_reply(&mut socket, Duration::from_secs(10)).await {
        Reply::Json(frame) => assert_eq!(ws_code(&frame), "PERSISTED_QUERY_NOT_FOUND", "{frame}"),
        other => panic!("expected an error, got {other:?}"),
    }
    ws::send_json(
        &mut socket,
        &json!({"id": "2", "type": "subscribe", "payload": {"query": BOARD, "extensions": persisted(&board_hash)}}),
    )
    .await;
    let frame = frame_for(&mut socket, "2").await;
    assert_eq!(frame["type"], "next", "{frame}");
}

#[tokio::test]
async fn with_a_manifest_only_trusted_documents_run_by_id_or_exact_text() {
    let dir = std::env::temp_dir().join(format!("studysync-docs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let apollo = dir.join("apollo.json");
    std::fs::write(
        &apollo,
        json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                {"id": sha256_hex(ME), "name": "Me", "type": "query", "body": ME},
                {"id": "board-1", "name": "Board", "type": "subscription", "body": BOARD},
                {"id": "signup-1", "name": "SignUp", "type": "mutation",
                 "body": "mutation SignUp($i: SignUpInput!) { signUp(input: $i) { token } }"},
            ],
        })
        .to_string(),
    )
    .expect("write manifest");
    let app = spawn_app_with(&["--trusted-documents", apollo.to_str().unwrap()]).await;
    let signed = post(
        &app,
        "",
        json!({"documentId": "signup-1", "variables": {"i": {"email": "t@example.org", "name": "Tia", "password": "password123"}}}),
    )
    .await;
    let token = signed["data"]["signUp"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{signed}"))
        .to_owned();

    let by_hash = post(
        &app,
        &token,
        json!({"extensions": persisted(&sha256_hex(ME))}),
    )
    .await;
    assert_eq!(by_hash["data"]["me"]["name"], "Tia", "{by_hash}");
    let by_text = post(&app, &token, json!({"query": ME})).await;
    assert_eq!(by_text["data"]["me"]["name"], "Tia", "{by_text}");
    let (status, by_get) = get(&app, &token, &[("doc_id", sha256_hex(ME))]).await;
    assert_eq!(
        (status, &by_get["data"]["me"]["name"]),
        (200, &json!("Tia")),
        "{by_get}"
    );

    let other_text = post(&app, &token, json!({"query": "{ me { name } }"})).await;
    assert_eq!(
        error_code(&other_text),
        "QUERY_NOT_IN_PERSISTED_QUERY_LIST",
        "{other_text}"
    );
    let unknown = post(&app, &token, json!({"documentId": "nope"})).await;
    assert_eq!(
        error_code(&unknown),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "{unknown}"
    );
    // APQ registration cannot add to the list.
    let text = "{ rooms { id } }";
    let register = post(
        &app,
        &token,
        json!({"query": text, "extensions": persisted(&sha256_hex(text))}),
    )
    .await;
    assert_eq!(
        error_code(&register),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "{register}"
    );
    let again = post(
        &app,
        &token,
        json!({"extensions": persisted(&sha256_hex(text))}),
    )
    .await;
    assert_eq!(error_code(&again), "PERSISTED_QUERY_NOT_IN_LIST", "{again}");
    assert_eq!(
        app.count("SELECT count(*) FROM persisted_documents").await,
        0
    );
    // A listed id with a different text is refused, not run.
    let swapped = post(&app, &token, json!({"documentId": "board-1", "query": ME})).await;
    assert_eq!(
        error_code(&swapped),
        "QUERY_NOT_IN_PERSISTED_QUERY_LIST",
        "{swapped}"
    );

    // Websocket: the listed subscription runs, anything else is refused.
    let mut socket = ws::connect(&app, Some(&token)).await;
    ws::subscribe(
        &mut socket,
        "1",
        "subscription { leaderboardChanged(period: DAY) { rank } }",
        json!({}),
    )
    .await;
    match ws::next_reply(&mut socket, Duration::from_secs(10)).await {
        Reply::Json(frame) => assert_eq!(
            ws_code(&frame),
            "QUERY_NOT_IN_PERSISTED_QUERY_LIST",
            "{frame}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    ws::subscribe(&mut socket, "2", BOARD, json!({})).await;
    let frame = frame_for(&mut socket, "2").await;
    assert_eq!(frame["type"], "next", "{frame}");

    // A manifest that does not read stops the server at start-up.
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"format\": \"apollo-persisted-query-manifest\"}").expect("write");
    let mut config = app.state.config().clone();
    config.query.trusted_documents = Some(broken);
    let error = config.validate().expect_err("a broken manifest is refused");
    assert!(format!("{error:#}").contains("operations"), "{error:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
