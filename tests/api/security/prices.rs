//! List fields are priced by the most items they can return, so the
//! complexity budget bounds the size of the response.
use futures::future::join_all;
use serde_json::json;

use super::{post_json, GRAPHQL_RESPONSE};
use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_full_room_refuses_another_member_and_room_members_never_exceed_the_cap() {
    let app = spawn_app().await;
    let (owner, _) = app.sign_up("owner@example.org", "Owner").await;
    let room = app
        .gql(
            Some(&owner),
            "mutation { createRoom(name: \"Big\") { id } }",
            json!({}),
        )
        .await;
    let room = room["data"]["createRoom"]["id"]
        .as_str()
        .expect("room")
        .to_owned();
    let joiners = join_all((0..55).map(|i| {
        let app = &app;
        async move {
            app.sign_up(&format!("m{i}@example.org"), &format!("M{i}"))
                .await
        }
    }))
    .await;
    let join = "mutation($r: ID!) { joinRoom(roomId: $r) { id } }";
    for (token, _) in &joiners[..49] {
        let body = app.gql(Some(token), join, json!({"r": room})).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let count = format!("SELECT count(*) FROM room_members WHERE room_id = '{room}'");
    assert_eq!(app.count(&count).await, 50);
    let outbox = app.count("SELECT count(*) FROM outbox").await;
    let refused = app
        .gql(Some(&joiners[49].0), join, json!({"r": room}))
        .await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
    assert!(refused["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("50")));
    assert_eq!(app.count(&count).await, 50);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, outbox);
    // A room filled before the cap existed still answers with at most 50.
    for (_, id) in &joiners[50..] {
        app.count(&format!(
            "WITH added AS (INSERT INTO room_members (room_id, user_id, joined_at) \
             VALUES ('{room}', '{id}', now()) RETURNING 1) SELECT count(*) FROM added"
        ))
        .await;
    }
    assert_eq!(app.count(&count).await, 55);
    let body = app
        .gql(Some(&owner), "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { room { members { id } } } }", json!({"r": room, "b": "hello"}))
        .await;
    let members = body["data"]["sendMessage"]["room"]["members"]
        .as_array()
        .map(Vec::len);
    assert_eq!(members, Some(50), "{body}");
}

#[tokio::test]
async fn a_query_whose_lists_could_return_more_than_the_budget_is_refused() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("price@example.org", "Price").await;
    // 50 rooms of 50 members of 4 fields: over 5,000 (a fixed 20 per list
    // used to price this at about 1,600).
    let wide = "{ rooms { members { id name email createdAt } } }";
    let (status, body) = app.gql_full(Some(&token), wide, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    let narrow = "{ rooms { name members { name } } }";
    let body = app.gql(Some(&token), narrow, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    let still = post_json(&app, GRAPHQL_RESPONSE, &json!({"query": "{ __typename }"})).await;
    assert_eq!(still.json()["data"]["__typename"], "Query");
}

#[tokio::test]
async fn study_statistics_lists_are_priced_by_a_year_of_days_and_fifty_subjects() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("stats@example.org", "Stats").await;
    let one = "studyStats { byDay { day minutes } bySubject { subject minutes } }";
    let body = app
        .gql(Some(&token), &format!("{{ {one} }}"), json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["studyStats"]["byDay"], json!([]));
    // One costs 1 + (366 × 2 + 1) + (50 × 2 + 1) = 835; seven could list
    // 7 × 416 rows and cost 5,845, over the budget of 5,000.
    let seven: Vec<String> = (0..7).map(|i| format!("s{i}: {one}")).collect();
    let (status, body) = app
        .gql_full(
            Some(&token),
            &format!("{{ {} }}", seven.join(" ")),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
}
