//! Read-your-writes across stores with `X-Consistency-Token`.
use serde_json::{json, Value};

use crate::{
    helpers::{error_code, spawn_app_with},
    reads_support::{create_room, send, spawn_read_app, stores},
};

const HISTORY: &str = "query($r: ID!) { messages(roomId: $r) { edges { node { body } } } }";

fn bodies(body: &Value) -> Vec<String> {
    body["data"]["messages"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {body}"))
        .iter()
        .map(|e| e["node"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn token_of(mutation: &Value) -> String {
    mutation["extensions"]["consistencyToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no consistency token in {mutation}"))
        .to_owned()
}

#[tokio::test]
async fn a_query_sent_with_the_mutations_token_sees_the_write_and_one_without_may_not() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("a@example.org", "Ann").await;
    let room = create_room(&app, &token, "Room").await;
    app.drain().await;
    let sent = send(&app, &token, &room, "hello there").await;
    let consistency = token_of(&sent);
    const STALE: &str = r#"studysync_read_fallback_total{field="messages",reason="stale"}"#;
    let stale_before = app.metric(STALE).await;

    // nothing has applied the outbox: MongoDB does not have the message yet
    let stale = app.gql(Some(&token), HISTORY, json!({"r": room})).await;
    assert!(bodies(&stale).is_empty(), "{stale}");
    assert_eq!(stores(&stale), ["mongodb"]);

    let fresh = app
        .gql_headers(
            Some(&token),
            HISTORY,
            json!({"r": room}),
            &[("X-Consistency-Token", &consistency)],
        )
        .await;
    assert_eq!(bodies(&fresh), ["hello there"], "{fresh}");
    assert_eq!(stores(&fresh), ["cockroachdb"]);
    assert_eq!(fresh["extensions"]["provenance"][0]["reason"], "stale");
    let lag = fresh["extensions"]["provenance"][0]["readModelLagSeconds"].as_f64();
    assert!(lag.is_some_and(|l| l >= 0.0), "{fresh}");
    assert!(app.metric(STALE).await >= stale_before + 1.0);
}

#[tokio::test]
async fn a_query_with_a_token_waits_for_the_read_model_and_then_answers_from_mongodb() {
    let app = spawn_app_with(&[
        "--consistency-wait-ms",
        "30000",
        "--read-model-timeout-ms",
        "10000",
    ])
    .await;
    let (token, _) = app.sign_up("b@example.org", "Ben").await;
    let room = create_room(&app, &token, "Room").await;
    let consistency = token_of(&send(&app, &token, &room, "first words").await);
    let query = {
        let (http, url, token, room) = (
            app.http.clone(),
            app.url("/graphql"),
            token.clone(),
            room.clone(),
        );
        tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("X-Consistency-Token", consistency)
                .json(&json!({"query": HISTORY, "variables": {"r": room}}))
                .send()
                .await
                .expect("send");
            response.json::<Value>().await.expect("json")
        })
    };
    app.drain().await;
    let body = query.await.expect("query task");
    assert_eq!(bodies(&body), ["first words"], "{body}");
    assert_eq!(stores(&body), ["mongodb"]);
}

#[tokio::test]
async fn a_token_for_other_aggregates_does_not_hold_back_unrelated_fields() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("c@example.org", "Cy").await;
    let room = create_room(&app, &token, "Room").await;
    app.drain().await;
    // a todo the read model has not seen: history does not depend on it
    let todo = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    let body = app
        .gql_headers(
            Some(&token),
            HISTORY,
            json!({"r": room}),
            &[("X-Consistency-Token", &token_of(&todo))],
        )
        .await;
    assert_eq!(stores(&body), ["mongodb"], "{body}");
}

#[tokio::test]
async fn a_tampered_consistency_token_is_bad_user_input() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("d@example.org", "Di").await;
    let room = create_room(&app, &token, "Room").await;
    let mut forged = token_of(&send(&app, &token, &room, "hi").await);
    forged.replace_range(2..3, if &forged[2..3] == "A" { "B" } else { "A" });
    for bad in [forged.as_str(), "not-a-token"] {
        let body = app
            .gql_headers(
                Some(&token),
                HISTORY,
                json!({"r": room}),
                &[("X-Consistency-Token", bad)],
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["data"].is_null());
    }
}

#[tokio::test]
async fn the_token_of_a_request_that_wrote_many_aggregates_is_accepted() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("m@example.org", "Mo").await;
    let sessions: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "s{i}: logStudySession(input: {{subject: \"Maths\", minutes: {}}}) {{ id }}",
                i + 1
            )
        })
        .collect();
    let mutation = format!("mutation {{ {} }}", sessions.join(" "));
    let written = app.gql(Some(&token), &mutation, json!({})).await;
    assert!(written["errors"].is_null(), "{written}");
    let consistency = token_of(&written);
    app.drain().await;
    let q = "{ studyStats { totalMinutes sessions } myRank(period: ALL_TIME) { minutes } }";
    let body = app
        .gql_headers(
            Some(&token),
            q,
            json!({}),
            &[("X-Consistency-Token", &consistency)],
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(
        body["data"]["studyStats"],
        json!({"totalMinutes": 78, "sessions": 12})
    );
    assert_eq!(body["data"]["myRank"]["minutes"], 78);
    assert_eq!(stores(&body), ["mongodb", "mongodb"]);
}
