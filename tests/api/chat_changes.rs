//! Editing and deleting messages: sender only, and history, search and the
//! read model follow (the room's live changes are in `reads_live`).
use serde_json::{json, Value};

use crate::{
    helpers::{error_code, TestApp},
    reads_support::{create_room, join_room, same_from_both, send, spawn_read_app, without_mongo},
    sync_support::assert_in_sync,
};

const EDIT: &str =
    "mutation($id: ID!, $b: String!) { editMessage(id: $id, body: $b) { id body editedAt } }";
const DELETE: &str = "mutation($id: ID!) { deleteMessage(id: $id) }";
const READ: &str = r#"query($r: ID!) {
  messages(roomId: $r) { edges { node { id body editedAt sender { name } } } }
  old: searchMessages(query: "algebra") { edges { node { id body } } }
  new: searchMessages(query: "geometry") { edges { node { id body editedAt } } }
  gone: searchMessages(query: "snacks") { edges { node { id } } }
}"#;

fn id_of(body: &Value) -> String {
    body["data"]["sendMessage"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

/// The same reads from MongoDB (after the worker ran) and from the
/// CockroachDB fallback.
async fn read_both(app: &TestApp, fallback: &TestApp, token: &str, room: &str) -> Value {
    app.drain().await;
    same_from_both(app, fallback, token, READ, json!({"r": room})).await
}

#[tokio::test]
async fn only_senders_edit_and_delete_and_history_and_search_follow_in_both_stores() {
    let app = spawn_read_app().await;
    let fallback = without_mongo(&app).await;
    let (ada, _) = app.sign_up("ada@example.org", "Ada").await;
    let (bob, _) = app.sign_up("bob@example.org", "Bob").await;
    let (eve, _) = app.sign_up("eve@example.org", "Eve").await;
    let room = create_room(&app, &ada, "Maths").await;
    join_room(&app, &bob, &room).await;
    let a = id_of(&send(&app, &ada, &room, "algebra at noon").await);
    let b = id_of(&send(&app, &bob, &room, "bring snacks").await);
    let c = id_of(&send(&app, &bob, &room, "see you").await);

    let events = app.count("SELECT count(*) FROM outbox").await;
    let cases = [
        (
            Some(&bob),
            EDIT,
            json!({"id": a, "b": "mine now"}),
            "FORBIDDEN",
        ),
        (Some(&bob), DELETE, json!({"id": a}), "FORBIDDEN"),
        (Some(&eve), EDIT, json!({"id": a, "b": "hi"}), "FORBIDDEN"),
        (None, DELETE, json!({"id": a}), "UNAUTHENTICATED"),
        (
            Some(&ada),
            EDIT,
            json!({"id": a, "b": ""}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&ada),
            EDIT,
            json!({"id": a, "b": "x".repeat(5000)}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&ada),
            EDIT,
            json!({"id": "nope", "b": "hi"}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&ada),
            DELETE,
            json!({"id": uuid::Uuid::new_v4()}),
            "NOT_FOUND",
        ),
    ];
    for (token, query, vars, code) in cases {
        let body = app
            .gql(token.map(String::as_str), query, vars.clone())
            .await;
        assert_eq!(error_code(&body), code, "{vars}: {body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, events);

    let edited = app
        .gql(Some(&ada), EDIT, json!({"id": a, "b": "geometry at noon"}))
        .await;
    assert_eq!(
        edited["data"]["editMessage"]["body"], "geometry at noon",
        "{edited}"
    );
    let edited_at = edited["data"]["editMessage"]["editedAt"].clone();
    assert!(edited_at.is_string(), "{edited}");
    let deleted = app.gql(Some(&bob), DELETE, json!({"id": b})).await;
    assert_eq!(deleted["data"]["deleteMessage"], json!(b), "{deleted}");
    assert_eq!(
        error_code(&app.gql(Some(&bob), DELETE, json!({"id": b})).await),
        "NOT_FOUND",
        "a message is deleted once"
    );

    let read = read_both(&app, &fallback, &ada, &room).await;
    let history: Vec<(&str, &str)> = read["data"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["id"].as_str().unwrap(),
                e["node"]["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [(c.as_str(), "see you"), (a.as_str(), "geometry at noon")]
    );
    assert_eq!(
        read["data"]["messages"]["edges"][1]["node"]["editedAt"],
        edited_at
    );
    assert_eq!(
        read["data"]["messages"]["edges"][0]["node"]["editedAt"],
        Value::Null
    );
    assert_eq!(read["data"]["old"]["edges"], json!([]));
    assert_eq!(read["data"]["new"]["edges"][0]["node"]["id"], json!(a));
    assert_eq!(read["data"]["gone"]["edges"], json!([]));
    let tombstone = app.read_doc("messages", &b).await.expect("tombstone");
    assert_eq!(tombstone.get_bool("deleted"), Ok(true));
    assert!(tombstone.get("body").is_none() && tombstone.get("sender_id").is_none());

    // A sender who left may delete their messages, not edit them.
    let left = app
        .gql(
            Some(&bob),
            "mutation($r: ID!) { leaveRoom(roomId: $r) }",
            json!({"r": room}),
        )
        .await;
    assert!(left["errors"].is_null(), "{left}");
    let refused = app
        .gql(Some(&bob), EDIT, json!({"id": c, "b": "edited after"}))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let removed = app.gql(Some(&bob), DELETE, json!({"id": c})).await;
    assert_eq!(removed["data"]["deleteMessage"], json!(c), "{removed}");
    // Every change took the room's next number: three posts, an edit and
    // two deletions.
    assert_eq!(
        app.count(&format!("SELECT last_seq FROM rooms WHERE id = '{room}'"))
            .await,
        6
    );
    assert_eq!(app.count("SELECT count(*) FROM message_deletions").await, 2);
    app.drain().await;
    assert_in_sync(&app).await;
}
