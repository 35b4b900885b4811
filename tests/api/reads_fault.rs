//! MongoDB really stopped: routed queries still answer, from CockroachDB.
use serde_json::json;

use crate::{
    helpers::{fresh_database, spawn_app_on},
    reads_support::{create_room, log_study, send, stores},
    sync_support::MongoServer,
};

#[tokio::test]
async fn with_mongodb_stopped_every_routed_query_answers_from_cockroachdb_and_tokens_still_see_writes(
) {
    let mut mongo = MongoServer::start().await;
    let database_url = fresh_database().await;
    let app = spawn_app_on(
        &database_url,
        &mongo.uri(),
        "studysync_fault",
        &["--read-model-retry-after-ms", "600000"],
    )
    .await;
    studysync::read::mongo::ensure_indexes(app.state.read_model())
        .await
        .expect("indexes");
    let (token, id) = app.sign_up("f@example.org", "Fay Wray").await;
    let room = create_room(&app, &token, "Crash room").await;
    log_study(&app, &token, "Maths", 30, None).await;
    send(&app, &token, &room, "before the crash").await;
    app.drain().await;

    mongo.stop().await;

    let sent = send(&app, &token, &room, "after the crash").await;
    let consistency = sent["extensions"]["consistencyToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let q = r#"query($r: ID!, $u: ID) {
      messages(roomId: $r) { edges { node { body } } }
      searchUsers(query: "fay") { edges { node { name } } }
      searchMessages(query: "crash") { edges { node { body } } }
      leaderboard(period: WEEK) { edges { node { rank minutes } } }
      myRank(period: DAY) { rank }
      studyStats(userId: $u) { totalMinutes }
      dashboard(period: MONTH) { sessions }
    }"#;
    let body = app
        .gql_headers(
            Some(&token),
            q,
            json!({"r": room, "u": id}),
            &[("X-Consistency-Token", &consistency)],
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let s = stores(&body);
    assert_eq!(s.len(), 7);
    assert!(s.iter().all(|s| s == "cockroachdb"), "{body}");
    for p in body["extensions"]["provenance"]
        .as_array()
        .expect("well-formed response")
    {
        assert!(
            ["timeout", "unreachable", "error", "recently_down"]
                .contains(&p["reason"].as_str().expect("well-formed response")),
            "{p}"
        );
    }
    let d = &body["data"];
    assert_eq!(d["messages"]["edges"][0]["node"]["body"], "after the crash");
    assert_eq!(
        d["searchMessages"]["edges"]
            .as_array()
            .expect("well-formed response")
            .len(),
        2
    );
    assert_eq!(d["searchUsers"]["edges"][0]["node"]["name"], "Fay Wray");
    assert_eq!(d["leaderboard"]["edges"][0]["node"]["minutes"], 30);
    assert_eq!(d["myRank"]["rank"], 1);
    assert_eq!(d["studyStats"]["totalMinutes"], 30);
    assert_eq!(d["dashboard"]["sessions"], 1);

    // once MongoDB has failed, reads skip it instead of each waiting
    let again = app
        .gql_headers(
            Some(&token),
            q,
            json!({"r": room, "u": id}),
            &[("X-Consistency-Token", &consistency)],
        )
        .await;
    assert_eq!(again["data"], body["data"]);
    for p in again["extensions"]["provenance"]
        .as_array()
        .expect("provenance")
    {
        assert_eq!(p["reason"], "recently_down", "{p}");
    }
}

/// The provenance reasons of a response's routed fields.
fn reasons(body: &serde_json::Value) -> Vec<String> {
    body["extensions"]["provenance"]
        .as_array()
        .expect("provenance")
        .iter()
        .map(|p| p["reason"].as_str().unwrap_or("none").to_owned())
        .collect()
}

#[tokio::test]
async fn one_users_slow_history_falls_back_alone_and_mongodb_keeps_serving_everyone_else() {
    let app = crate::helpers::spawn_app_with(&[
        "--read-model-timeout-ms",
        "100",
        "--read-model-retry-after-ms",
        "600000",
    ])
    .await;
    let (flooder, flooder_id) = app.sign_up("flood@example.org", "Flo Oder").await;
    let (other, _) = app.sign_up("other@example.org", "Otto Other").await;
    let room = create_room(&app, &flooder, "Flooded").await;
    log_study(&app, &other, "Maths", 30, None).await;
    app.drain().await;
    // A room flooded with history: its page is a slow scan on this
    // MongoDB stand-in, far past the 100 ms read timeout.
    let messages = app
        .state
        .read_model()
        .collection::<mongodb::bson::Document>("messages");
    let now = mongodb::bson::DateTime::now();
    for chunk in 0..4 {
        let docs: Vec<mongodb::bson::Document> = (0..5_000)
            .map(|i| {
                mongodb::bson::doc! {
                    "_id": uuid::Uuid::new_v4().to_string(), "version": 1_i64,
                    "room_id": &room, "sender_id": flooder_id.to_string(),
                    "body": format!("flood {chunk} {i}"), "created_at": now, "updated_at": now,
                    "search_words": ["flood"], "search_prefixes": ["f", "fl", "flo"],
                }
            })
            .collect();
        messages.insert_many(docs).await.expect("flood the room");
    }
    let history = "query($r: ID!) { messages(roomId: $r, first: 10) { edges { node { body } } } }";

    let slow = app.gql(Some(&flooder), history, json!({"r": room})).await;
    assert!(slow["errors"].is_null(), "{slow}");
    assert_eq!(reasons(&slow), ["timeout"], "{slow}");
    assert_eq!(stores(&slow), ["cockroachdb"]);

    // Everyone else's reads still go to MongoDB: the server answered a
    // ping, so the slow query was not taken for an outage.
    let board = app
        .gql(
            Some(&other),
            "{ leaderboard(period: WEEK) { edges { node { minutes } } } searchUsers(query: \"otto\") { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert!(board["errors"].is_null(), "{board}");
    assert!(
        !reasons(&board).iter().any(|r| r == "recently_down"),
        "{board}"
    );
    assert_eq!(
        board["data"]["leaderboard"]["edges"][0]["node"]["minutes"],
        30
    );
    // And the flooder's own next page tries MongoDB again too.
    let again = app.gql(Some(&flooder), history, json!({"r": room})).await;
    assert_ne!(reasons(&again), ["recently_down"], "{again}");
}
