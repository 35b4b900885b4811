//! The websocket front door: a connection must identify itself in time, an
//! account holds a bounded number of connections and operations, a token's
//! expiry closes its connection, and a caller who loses access stops
//! receiving.
use std::time::Duration;

use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::{
    helpers::{spawn_app_with, wait_until, TestApp},
    reads_support::{create_room, join_room, send},
    ws::{self, Reply, Socket},
};

const SUBSCRIBE: &str = "subscription($r: ID!) { messageAdded(roomId: $r) { body } }";

/// The next frame within five seconds.
async fn next(socket: &mut Socket) -> Reply {
    ws::next_reply(socket, Duration::from_secs(5)).await
}

async fn still_answers(app: &TestApp) {
    let body = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

/// Posts to `room` until the subscription `id` on `socket` delivers: a
/// subscription starts asynchronously.
async fn delivered(app: &TestApp, token: &str, room: &str, socket: &mut Socket, id: &str) -> Value {
    for attempt in 0..20 {
        send(app, token, room, &format!("probe {attempt}")).await;
        if let Reply::Json(frame) = ws::next_reply(socket, Duration::from_millis(500)).await {
            assert_eq!(frame["id"], id, "{frame}");
            return frame;
        }
    }
    panic!("subscription {id} delivered nothing");
}

#[tokio::test]
async fn a_connection_that_never_identifies_itself_is_closed_with_4408() {
    let app = spawn_app_with(&["--ws-init-timeout-ms", "300"]).await;
    let mut silent = ws::open(&app).await;
    match next(&mut silent).await {
        Reply::Closed(code, reason) => {
            assert_eq!(code, 4408, "{reason}");
            assert!(reason.contains("initialisation timeout"), "{reason}");
        }
        other => panic!("expected a 4408 close, got {other:?}"),
    }
    // Operations before the handshake are refused, and the server serves on.
    let mut early = ws::open(&app).await;
    ws::subscribe(&mut early, "1", "{ __typename }", json!({})).await;
    assert!(matches!(next(&mut early).await, Reply::Closed(4401, _)));
    still_answers(&app).await;
}

#[tokio::test]
async fn an_account_holds_a_bounded_number_of_connections() {
    let app = spawn_app_with(&["--ws-max-connections-per-user", "2"]).await;
    let (token, _) = app.sign_up("c@example.org", "Cy").await;
    let (other, _) = app.sign_up("d@example.org", "Di").await;
    let first = ws::connect(&app, Some(&token)).await;
    let _second = ws::connect(&app, Some(&token)).await;
    let (_third, reply) = ws::init(&app, Some(&token)).await;
    match reply {
        Reply::Closed(code, reason) => assert_eq!(code, 4429, "{reason}"),
        other => panic!("expected a 4429 close, got {other:?}"),
    }
    // Another account and anonymous clients are not affected.
    let _theirs = ws::connect(&app, Some(&other)).await;
    let _anonymous = ws::connect(&app, None).await;
    // A closed connection gives its slot back.
    drop(first);
    wait_until("a slot is given back", Duration::from_secs(10), || async {
        let (_socket, reply) = ws::init(&app, Some(&token)).await;
        matches!(&reply, Reply::Json(ack) if ack["type"] == "connection_ack")
    })
    .await;
}

#[tokio::test]
async fn operations_past_the_caps_are_refused_and_the_connection_serves_on() {
    let app = spawn_app_with(&[
        "--ws-max-operations-per-connection",
        "2",
        "--ws-max-operations-per-user",
        "3",
    ])
    .await;
    let (token, _) = app.sign_up("o@example.org", "Oz").await;
    let room = create_room(&app, &token, "Capped").await;
    let vars = json!({"r": room});
    let mut a = ws::connect(&app, Some(&token)).await;
    let mut b = ws::connect(&app, Some(&token)).await;
    ws::subscribe(&mut a, "a1", SUBSCRIBE, vars.clone()).await;
    delivered(&app, &token, &room, &mut a, "a1").await;
    ws::subscribe(&mut a, "a2", SUBSCRIBE, vars.clone()).await;
    // the connection's cap
    ws::subscribe(&mut a, "a3", SUBSCRIBE, vars.clone()).await;
    let refused = loop {
        match next(&mut a).await {
            Reply::Json(frame) if frame["id"] == "a3" => break frame,
            Reply::Json(_) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // the account's cap, over its other connection
    ws::subscribe(&mut b, "b1", SUBSCRIBE, vars.clone()).await;
    ws::subscribe(&mut b, "b2", SUBSCRIBE, vars.clone()).await;
    let refused = loop {
        match next(&mut b).await {
            Reply::Json(frame) if frame["id"] == "b2" && frame["type"] == "error" => break frame,
            Reply::Json(frame) if frame["type"] == "next" => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Completing one gives its place back.
    let complete = json!({"id": "a1", "type": "complete"});
    a.send(Frame::text(complete.to_string()))
        .await
        .expect("complete");
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Reply::Json(_) = ws::next_reply(&mut b, Duration::from_millis(100)).await {}
    ws::subscribe(&mut b, "b3", SUBSCRIBE, vars.clone()).await;
    let mut seen = Vec::new();
    for attempt in 0..20 {
        send(&app, &token, &room, &format!("after {attempt}")).await;
        while let Reply::Json(frame) = ws::next_reply(&mut b, Duration::from_millis(300)).await {
            assert_ne!(frame["type"], "error", "{frame}");
            seen.push(frame["id"].as_str().unwrap_or_default().to_owned());
        }
        if seen.iter().any(|id| id == "b3") {
            break;
        }
    }
    assert!(
        seen.iter().any(|id| id == "b3"),
        "b3 never delivered: {seen:?}"
    );
    // A second subscribe under a running id ends the connection (4409).
    ws::subscribe(&mut b, "b1", SUBSCRIBE, vars).await;
    let closed = loop {
        match next(&mut b).await {
            Reply::Json(_) => {}
            other => break other,
        }
    };
    assert!(matches!(closed, Reply::Closed(4409, _)), "{closed:?}");
    still_answers(&app).await;
}

#[tokio::test]
async fn an_expired_token_closes_its_connection_and_ends_its_subscriptions() {
    let app = spawn_app_with(&["--jwt-ttl-seconds", "2"]).await;
    let (token, _) = app.sign_up("e@example.org", "Eve").await;
    let room = create_room(&app, &token, "Expiring").await;
    let mut socket = ws::connect(&app, Some(&token)).await;
    ws::subscribe(&mut socket, "1", SUBSCRIBE, json!({"r": room})).await;
    let closed = loop {
        match next(&mut socket).await {
            Reply::Json(frame) => assert_eq!(frame["type"], "next", "{frame}"),
            other => break other,
        }
    };
    match closed {
        Reply::Closed(code, reason) => {
            assert_eq!(code, 4403, "{reason}");
            assert!(reason.contains("expired"), "{reason}");
        }
        other => panic!("expected a 4403 close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_member_removed_from_a_room_stops_receiving_it() {
    let app = spawn_app_with(&["--ws-recheck-ms", "0"]).await;
    let (owner, _) = app.sign_up("r1@example.org", "Rae").await;
    let (member, member_id) = app.sign_up("r2@example.org", "Rex").await;
    let room = create_room(&app, &owner, "Revoked").await;
    join_room(&app, &member, &room).await;
    let mut socket = ws::connect(&app, Some(&member)).await;
    ws::subscribe(&mut socket, "1", SUBSCRIBE, json!({"r": room})).await;
    let live = delivered(&app, &owner, &room, &mut socket, "1").await;
    assert_eq!(live["type"], "next", "{live}");
    while let Reply::Json(_) = ws::next_reply(&mut socket, Duration::from_millis(300)).await {}

    // Removed at the source of truth, as an operator would.
    let removed = app
        .count(&format!(
            "WITH gone AS (DELETE FROM room_members WHERE room_id = '{room}' AND user_id = '{member_id}' RETURNING 1) SELECT count(*) FROM gone"
        ))
        .await;
    assert_eq!(removed, 1);
    send(&app, &owner, &room, "not for Rex").await;
    let refused = match next(&mut socket).await {
        Reply::Json(frame) => frame,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(refused["type"], "next", "{refused}");
    assert!(refused["payload"]["data"].is_null(), "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
    match next(&mut socket).await {
        Reply::Json(frame) => assert_eq!(frame["type"], "complete", "{frame}"),
        other => panic!("expected complete, got {other:?}"),
    }
    send(&app, &owner, &room, "still not for Rex").await;
    assert!(matches!(
        ws::next_reply(&mut socket, Duration::from_secs(1)).await,
        Reply::Silent
    ));
}

#[tokio::test]
async fn a_burst_of_subscribes_on_one_connection_is_served_by_a_small_pool() {
    // Each subscribe reads the source of truth; the connection must keep
    // driving the ones already running while it admits the next, or they
    // hold every pool connection and the admission waits for one forever.
    let app = spawn_app_with(&["--database-max-connections", "3"]).await;
    let (token, _) = app.sign_up("burst@example.org", "Bea").await;
    let room = create_room(&app, &token, "Burst").await;
    let mut socket = ws::connect(&app, Some(&token)).await;
    for i in 0..32 {
        ws::subscribe(&mut socket, &format!("s{i}"), SUBSCRIBE, json!({"r": room})).await;
    }
    let mut live = std::collections::HashSet::new();
    for attempt in 0..20 {
        send(&app, &token, &room, &format!("to all {attempt}")).await;
        loop {
            match ws::next_reply(&mut socket, Duration::from_millis(500)).await {
                Reply::Json(frame) => {
                    assert_eq!(frame["type"], "next", "{frame}");
                    live.insert(frame["id"].as_str().expect("id").to_owned());
                }
                Reply::Silent => break,
                other => panic!("the connection ended: {other:?}"),
            }
        }
        if live.len() == 32 {
            break;
        }
    }
    assert_eq!(live.len(), 32, "live: {live:?}");
    still_answers(&app).await;
}
