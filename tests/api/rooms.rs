use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::json;

use crate::{
    helpers::{error_code, spawn_app, spawn_app_with},
    reads_support,
};

#[tokio::test]
async fn members_post_and_outsiders_are_refused_until_they_join() {
    let app = spawn_app().await;
    let (alice, _) = app.sign_up("alice@example.org", "Alice").await;
    let (bob, _) = app.sign_up("bob@example.org", "Bob").await;
    let room = app
        .gql(
            Some(&alice),
            "mutation { createRoom(name: \"Biology\") { id name members { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        room["data"]["createRoom"]["members"],
        json!([{"name": "Alice"}])
    );
    let room_id = room["data"]["createRoom"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let send = "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { body sender { name } room { name } } }";

    let refused = app
        .gql(Some(&bob), send, json!({"r": room_id, "b": "hi"}))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 0);

    let joined = app
        .gql(
            Some(&bob),
            "mutation($r: ID!) { joinRoom(roomId: $r) { members { name } } }",
            json!({"r": room_id}),
        )
        .await;
    assert_eq!(
        joined["data"]["joinRoom"]["members"],
        json!([{"name": "Alice"}, {"name": "Bob"}])
    );
    let again = app
        .gql(
            Some(&bob),
            "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
            json!({"r": room_id}),
        )
        .await;
    assert!(
        again["errors"].is_null(),
        "joining twice is harmless: {again}"
    );
    assert_eq!(
        app.count(&format!("SELECT version FROM rooms WHERE id = '{room_id}'"))
            .await,
        2
    );

    let sent = app
        .gql(Some(&bob), send, json!({"r": room_id, "b": "hello"}))
        .await;
    assert_eq!(
        sent["data"]["sendMessage"],
        json!({"body": "hello", "sender": {"name": "Bob"}, "room": {"name": "Biology"}})
    );
    let rooms = app.gql(Some(&bob), "{ rooms { name } }", json!({})).await;
    assert_eq!(rooms["data"]["rooms"], json!([{"name": "Biology"}]));

    let empty = app
        .gql(Some(&bob), send, json!({"r": room_id, "b": "   "}))
        .await;
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");
    let long = app
        .gql(
            Some(&bob),
            send,
            json!({"r": room_id, "b": "x".repeat(4001)}),
        )
        .await;
    assert_eq!(error_code(&long), "BAD_USER_INPUT");
    let nowhere = app
        .gql(
            Some(&bob),
            send,
            json!({"r": uuid::Uuid::new_v4(), "b": "x"}),
        )
        .await;
    assert_eq!(error_code(&nowhere), "NOT_FOUND");
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
}

#[tokio::test]
async fn concurrent_senders_to_one_room_take_turns_rather_than_fail() {
    // One attempt per transaction: a send that lost a serialization race
    // on the room's row would fail instead of being retried.
    let app = spawn_app_with(&["--txn-max-attempts", "1"]).await;
    let (tokens, room) = reads_support::room_of(&app, "busy", 4, "busy room").await;
    let sends = (0..32).map(|i| {
        let (app, token, room) = (&app, &tokens[i % tokens.len()], &room);
        async move {
            app.gql(
                Some(token),
                "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id } }",
                json!({"r": room, "b": format!("message {i}")}),
            )
            .await
        }
    });
    for reply in futures::future::join_all(sends).await {
        assert!(reply["errors"].is_null(), "{reply}");
    }
    let numbers: Vec<i64> = app
        .sql()
        .query_all(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT seq FROM messages WHERE room_id = $1 ORDER BY seq",
            [uuid::Uuid::parse_str(&room).expect("room id").into()],
        ))
        .await
        .expect("numbers")
        .iter()
        .map(|row| row.try_get_by_index(0).expect("seq"))
        .collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..first + 32).collect::<Vec<_>>());
}
