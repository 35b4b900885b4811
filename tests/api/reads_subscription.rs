//! `messageAdded` over a real websocket (graphql-transport-ws).
use std::time::Duration;

use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::{
    helpers::spawn_app,
    reads_support::{create_room, join_room, send},
    ws::{self, Socket},
};

const SUBSCRIBE: &str =
    "subscription($r: ID!) { messageAdded(roomId: $r) { body sender { name } room { name } } }";

async fn subscribe(socket: &mut Socket, room: &str) {
    let frame = json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"r": room}}});
    socket
        .send(Frame::text(frame.to_string()))
        .await
        .expect("subscribe");
}

/// The next JSON frame, or `None` if none arrives within a second.
async fn next_json(socket: &mut Socket) -> Option<Value> {
    ws::next_json(socket, Duration::from_secs(1)).await
}

#[tokio::test]
async fn members_receive_messages_posted_to_their_room_as_they_are_committed() {
    let app = spawn_app().await;
    let (owner, _) = app.sign_up("s1@example.org", "Sue").await;
    let (member, _) = app.sign_up("s2@example.org", "Max").await;
    let room = create_room(&app, &owner, "Live").await;
    let other_room = create_room(&app, &owner, "Elsewhere").await;
    join_room(&app, &member, &room).await;
    let mut socket = ws::connect(&app, Some(&member)).await;
    subscribe(&mut socket, &room).await;
    // the subscription starts asynchronously: post until one arrives
    let mut received = None;
    for attempt in 0..20 {
        send(&app, &owner, &other_room, &format!("elsewhere {attempt}")).await;
        send(&app, &owner, &room, &format!("live {attempt}")).await;
        if let Some(frame) = next_json(&mut socket).await {
            received = Some(frame);
            break;
        }
    }
    let frame = received.expect("a message was delivered");
    assert_eq!(frame["type"], "next", "{frame}");
    let message = &frame["payload"]["data"]["messageAdded"];
    assert!(
        message["body"]
            .as_str()
            .expect("well-formed response")
            .starts_with("live "),
        "{frame}"
    );
    assert_eq!(message["sender"]["name"], "Sue");
    assert_eq!(message["room"]["name"], "Live");
}

#[tokio::test]
async fn non_members_and_anonymous_clients_cannot_subscribe_to_a_room() {
    let app = spawn_app().await;
    let (owner, _) = app.sign_up("n1@example.org", "Nia").await;
    let (outsider, _) = app.sign_up("n2@example.org", "Ned").await;
    let room = create_room(&app, &owner, "Closed").await;
    for (token, code) in [
        (outsider.as_str(), "FORBIDDEN"),
        ("not-a-token", "UNAUTHENTICATED"),
    ] {
        let mut socket = ws::connect(&app, Some(token)).await;
        subscribe(&mut socket, &room).await;
        send(&app, &owner, &room, "members only").await;
        let frame = next_json(&mut socket).await.expect("a refusal");
        let text = frame.to_string();
        assert!(text.contains(code), "{text}");
        assert!(!text.contains("members only"), "{text}");
    }
}
