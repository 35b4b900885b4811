//! `deleteAccount`: erasure from both stores, and the check that confirms it.
use std::time::Duration;

use mongodb::bson::doc;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use studysync::sync::verify::erasure::{self, Erased};

use crate::{
    helpers::{error_code, TestApp},
    reads_support::{
        create_room, create_todo, join_room, log_study, same_from_both, send, spawn_read_app,
        without_mongo,
    },
    sync_support::assert_in_sync,
    ws::{self, Reply},
};

const DELETE: &str = "mutation($p: String!) { deleteAccount(password: $p) }";
const READ: &str = r#"query($r: ID!, $past: DateTime!) {
  searchUsers(query: "ada") { edges { node { id } } }
  messages(roomId: $r) { edges { node { body sender { name } } } }
  searchMessages(query: "hello") { edges { node { body } } }
  allTime: leaderboard(period: ALL_TIME) { edges { node { minutes user { name } } } }
  past: leaderboard(period: WEEK, at: $past) { edges { node { minutes user { name } } } }
  dashboard(period: ALL_TIME) { activeUsers totalMinutes sessions }
}"#;

fn erased(id: &str) -> Erased {
    Erased {
        user_id: id.parse().expect("uuid"),
        name: Some("Ada Lovelace".into()),
        email: Some("ada@example.org".into()),
    }
}

async fn read_both(app: &TestApp, fallback: &TestApp, token: &str, room: &str) -> Value {
    let vars = json!({"r": room, "past": "2026-11-02T12:00:00Z"});
    same_from_both(app, fallback, token, READ, vars).await
}

#[tokio::test]
async fn deleting_an_account_erases_it_from_both_stores_and_the_check_confirms_it() {
    let app = spawn_read_app().await;
    let fallback = without_mongo(&app).await;
    let (ada, ada_id) = app.sign_up("ada@example.org", "Ada Lovelace").await;
    let (bob, bob_id) = app.sign_up("bob@example.org", "Bob Stone").await;
    // A name change: an older event with the other name, processed below.
    let renamed = app
        .gql(
            Some(&ada),
            "mutation { updateProfile(input: {name: \"Ada King\"}) { name } }",
            json!({}),
        )
        .await;
    assert!(renamed["errors"].is_null(), "{renamed}");
    app.drain().await;
    app.gql(
        Some(&ada),
        "mutation { updateProfile(input: {name: \"Ada Lovelace\"}) { name } }",
        json!({}),
    )
    .await;
    create_todo(&app, &ada, "secret plans", true).await;
    log_study(&app, &ada, "Maths", 90, None).await;
    log_study(&app, &ada, "Maths", 30, Some("2026-11-02T10:00:00Z")).await;
    log_study(&app, &bob, "Art", 20, None).await;
    log_study(&app, &bob, "Art", 10, Some("2026-11-02T11:00:00Z")).await;
    // Ada's room with Bob in it, Ada's room alone, and Bob's room Ada left.
    let shared = create_room(&app, &ada, "Shared").await;
    join_room(&app, &bob, &shared).await;
    let alone = create_room(&app, &ada, "Alone").await;
    let bobs = create_room(&app, &bob, "Bob's").await;
    join_room(&app, &ada, &bobs).await;
    send(&app, &ada, &shared, "hello from ada").await;
    send(&app, &bob, &shared, "hello from bob").await;
    send(&app, &ada, &alone, "a note to self").await;
    send(&app, &ada, &bobs, "hello, and bye").await;
    let left = app
        .gql(
            Some(&ada),
            "mutation($r: ID!) { leaveRoom(roomId: $r) }",
            json!({"r": bobs}),
        )
        .await;
    assert!(left["errors"].is_null(), "{left}");
    app.drain().await;

    // Bob watches the shared room.
    let mut socket = ws::connect(&app, Some(&bob)).await;
    ws::subscribe(
        &mut socket,
        "1",
        "subscription($r: ID!) { roomEvents(roomId: $r) { kind messageId } }",
        json!({"r": shared}),
    )
    .await;
    let mut started = false;
    for attempt in 0..40 {
        send(&app, &bob, &shared, &format!("probe {attempt}")).await;
        if let Reply::Json(_) = ws::next_reply(&mut socket, Duration::from_millis(250)).await {
            started = true;
            break;
        }
    }
    assert!(started, "the subscription never delivered");
    while let Reply::Json(_) = ws::next_reply(&mut socket, Duration::from_millis(300)).await {}

    let events = app.count("SELECT count(*) FROM outbox").await;
    let wrong = app
        .gql(Some(&ada), DELETE, json!({"p": "not my password"}))
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    let anonymous = app.gql(None, DELETE, json!({"p": "password123"})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, events);

    let done = app
        .gql(Some(&ada), DELETE, json!({"p": "password123"}))
        .await;
    assert_eq!(done["data"]["deleteAccount"], json!(ada_id), "{done}");
    let me = app.gql(Some(&ada), "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED", "{me}");
    // Bob's subscriber is told that Ada's message is gone.
    match ws::next_reply(&mut socket, Duration::from_secs(10)).await {
        Reply::Json(frame) => {
            assert_eq!(
                frame["payload"]["data"]["roomEvents"]["kind"], "DELETED",
                "{frame}"
            );
        }
        other => panic!("expected a deletion, got {other:?}"),
    }

    // Before the worker runs, the check finds what MongoDB still holds.
    let pending = erasure::check(app.state.sync(), &erased(&ada_id))
        .await
        .expect("check");
    assert!(
        pending
            .findings
            .iter()
            .any(|f| f.place == "mongodb:users" && f.key == ada_id),
        "{pending}"
    );
    assert!(
        pending
            .findings
            .iter()
            .all(|f| f.place.starts_with("mongodb:")),
        "CockroachDB holds nothing from the start: {pending}"
    );

    app.drain().await;
    let report = erasure::check(app.state.sync(), &erased(&ada_id))
        .await
        .expect("check");
    assert!(report.findings.is_empty(), "{report}");
    assert!(report.documents_read > 0);
    studysync::cli::verify_erasure(&app.state, &erased(&ada_id))
        .await
        .expect("`verify --erased` passes");
    let other_name = Erased {
        name: Some("Ada King".into()),
        ..erased(&ada_id)
    };
    let report = erasure::check(app.state.sync(), &other_name)
        .await
        .expect("check");
    assert!(
        report.findings.is_empty(),
        "the older name is gone too: {report}"
    );

    let read = read_both(&app, &fallback, &bob, &shared).await;
    assert_eq!(read["data"]["searchUsers"]["edges"], json!([]));
    let history = read["data"]["messages"]["edges"].as_array().expect("edges");
    assert!(history
        .iter()
        .all(|e| e["node"]["sender"]["name"] == "Bob Stone"));
    assert!(history
        .iter()
        .any(|e| e["node"]["body"] == "hello from bob"));
    assert_eq!(
        read["data"]["searchMessages"]["edges"],
        json!([{"node": {"body": "hello from bob"}}])
    );
    assert_eq!(
        read["data"]["allTime"]["edges"],
        json!([{"node": {"minutes": 30, "user": {"name": "Bob Stone"}}}])
    );
    assert_eq!(
        read["data"]["past"]["edges"],
        json!([{"node": {"minutes": 10, "user": {"name": "Bob Stone"}}}])
    );
    assert_eq!(
        read["data"]["dashboard"],
        json!({"activeUsers": 1, "totalMinutes": 30, "sessions": 2})
    );
    // The shared room is Bob's now; the room Ada was alone in is gone.
    let room = app.read_doc("rooms", &shared).await.expect("room");
    assert_eq!(room.get_str("created_by"), Ok(bob_id.as_str()));
    let alone_doc = app.read_doc("rooms", &alone).await.expect("tombstone");
    assert_eq!(alone_doc.get_bool("deleted"), Ok(true));
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM rooms WHERE id = '{alone}'"))
            .await,
        0
    );
    // Bob's own room and its history stay.
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM rooms WHERE id = '{bobs}'"))
            .await,
        1
    );
    assert_in_sync(&app).await;

    // The check is not blind: a document that names the account, and an
    // event that carries its email, are found.
    app.state
        .read_model()
        .collection::<mongodb::bson::Document>("todos")
        .insert_one(doc! {"_id": "planted", "version": 1_i64, "user_id": &ada_id})
        .await
        .expect("plant a document");
    app.sql()
        .execute_unprepared(
            "INSERT INTO outbox (aggregate_type, aggregate_id, aggregate_version, event_type, payload, processed_at) \
             VALUES ('user', gen_random_uuid(), 1, 'planted', '{\"email\": \"ADA@example.org\"}', now())",
        )
        .await
        .expect("plant an event");
    let report = erasure::check(app.state.sync(), &erased(&ada_id))
        .await
        .expect("check");
    let places: Vec<&str> = report.findings.iter().map(|f| f.place.as_str()).collect();
    assert_eq!(places, ["mongodb:todos", "cockroachdb:outbox"], "{report}");
    let failed = studysync::cli::verify_erasure(&app.state, &erased(&ada_id)).await;
    assert!(
        failed.is_err_and(|e| e.to_string().contains("not fully erased")),
        "`verify --erased` fails on findings"
    );
}
