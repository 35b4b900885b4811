//! Chat history: newest first, stable pages, members only, page sizes and
//! cursors.
use serde_json::{json, Value};

use crate::{
    helpers::error_code,
    reads_support::{create_room, send, spawn_read_app, without_mongo},
};

const PAGE: &str = "query($r: ID!, $n: Int, $b: String) { messages(roomId: $r, first: $n, before: $b) { edges { cursor node { id body } } pageInfo { hasNextPage hasPreviousPage } } }";

fn edges(body: &Value) -> Vec<Value> {
    body["data"]["messages"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .clone()
}

#[tokio::test]
async fn history_pages_have_no_duplicates_or_gaps_while_new_messages_arrive() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("h@example.org", "Hal").await;
    let fallback = without_mongo(&app).await;
    for reader in [&app, &fallback] {
        let room = create_room(&app, &token, "Busy").await;
        for i in 0..25 {
            send(&app, &token, &room, &format!("old {i}")).await;
            // Times are kept to the millisecond: two messages sent within
            // one would tie, and ties go by id, not by the order sent.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        app.drain().await;
        let mut seen: Vec<String> = Vec::new();
        let mut before: Option<String> = None;
        let mut round = 0;
        loop {
            let body = reader
                .gql(Some(&token), PAGE, json!({"r": room, "n": 10, "b": before}))
                .await;
            let page = edges(&body);
            seen.extend(page.iter().map(|e| {
                e["node"]["body"]
                    .as_str()
                    .expect("well-formed response")
                    .to_owned()
            }));
            // new messages arrive between page requests
            for j in 0..3 {
                send(&app, &token, &room, &format!("new {round}.{j}")).await;
            }
            app.drain().await;
            round += 1;
            if !body["data"]["messages"]["pageInfo"]["hasNextPage"]
                .as_bool()
                .expect("well-formed response")
            {
                break;
            }
            before = page.last().map(|e| {
                e["cursor"]
                    .as_str()
                    .expect("well-formed response")
                    .to_owned()
            });
        }
        // pages walk back in time from the first request: messages sent
        // later never shift them, so every old message appears exactly once
        let expected: Vec<String> = (0..25).rev().map(|i| format!("old {i}")).collect();
        assert_eq!(seen, expected, "no duplicates, no gaps, newest first");
    }
}

#[tokio::test]
async fn first_defaults_to_twenty_and_is_capped_at_one_hundred() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("p@example.org", "Pia").await;
    let room = create_room(&app, &token, "Many").await;
    for i in 0..25 {
        send(&app, &token, &room, &format!("m{i}")).await;
    }
    app.drain().await;
    let body = app.gql(Some(&token), PAGE, json!({"r": room})).await;
    assert_eq!(edges(&body).len(), 20);
    assert_eq!(body["data"]["messages"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        body["data"]["messages"]["pageInfo"]["hasPreviousPage"],
        false
    );
    let body = app
        .gql(Some(&token), PAGE, json!({"r": room, "n": 100}))
        .await;
    assert_eq!(edges(&body).len(), 25);
    assert_eq!(body["data"]["messages"]["pageInfo"]["hasNextPage"], false);
    for (query, field) in [
        (PAGE, "messages"),
        (
            "query($n: Int) { searchUsers(query: \"pia\", first: $n) { edges { cursor } } }",
            "searchUsers",
        ),
        (
            "query($n: Int) { leaderboard(period: DAY, first: $n) { edges { cursor } } }",
            "leaderboard",
        ),
    ] {
        let body = app
            .gql(Some(&token), query, json!({"r": room, "n": 101}))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
    }
}

#[tokio::test]
async fn a_tampered_cursor_is_bad_user_input() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("t@example.org", "Tom Tom").await;
    let room = create_room(&app, &token, "Room").await;
    for i in 0..3 {
        send(&app, &token, &room, &format!("tom {i}")).await;
    }
    app.drain().await;
    let body = app
        .gql(Some(&token), PAGE, json!({"r": room, "n": 1}))
        .await;
    let cursor = edges(&body)[0]["cursor"]
        .as_str()
        .expect("well-formed response")
        .to_owned();
    let mut tampered = cursor.clone();
    tampered.replace_range(1..2, if &cursor[1..2] == "A" { "B" } else { "A" });
    let queries = [
        PAGE,
        "query($b: String) { searchUsers(query: \"tom\", after: $b) { edges { cursor } } }",
        "query($b: String) { searchMessages(query: \"tom\", after: $b) { edges { cursor } } }",
        "query($b: String) { leaderboard(period: WEEK, after: $b) { edges { cursor } } }",
    ];
    for query in queries {
        for bad in [tampered.as_str(), "garbage", ""] {
            let body = app
                .gql(Some(&token), query, json!({"r": room, "b": bad}))
                .await;
            assert_eq!(
                error_code(&body),
                "BAD_USER_INPUT",
                "{query} with {bad:?}: {body}"
            );
        }
    }
    // a cursor of one list is not a position in another
    let body = app
        .gql(Some(&token), queries[3], json!({"b": cursor}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn a_non_member_cannot_read_or_search_a_rooms_messages() {
    let app = spawn_read_app().await;
    let (owner, _) = app.sign_up("o@example.org", "Owner").await;
    let (outsider, _) = app.sign_up("x@example.org", "Outsider").await;
    let room = create_room(&app, &owner, "Private").await;
    send(&app, &owner, &room, "secret plans").await;
    app.drain().await;
    let body = app.gql(Some(&outsider), PAGE, json!({"r": room})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let search = "query($r: ID) { searchMessages(query: \"secret\", roomId: $r) { edges { node { body } } } }";
    let body = app.gql(Some(&outsider), search, json!({"r": room})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app.gql(Some(&outsider), search, json!({})).await;
    assert_eq!(body["data"]["searchMessages"]["edges"], json!([]), "{body}");
    let body = app.gql(Some(&owner), search, json!({})).await;
    assert_eq!(
        body["data"]["searchMessages"]["edges"][0]["node"]["body"],
        "secret plans"
    );
    let body = app.gql(None, PAGE, json!({"r": room})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test]
async fn after_pages_forward_like_before_did_and_takes_a_message_cursor() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("f@example.org", "Fay").await;
    let room = create_room(&app, &token, "Forward").await;
    let other = create_room(&app, &token, "Other").await;
    for i in 0..7 {
        send(&app, &token, &room, &format!("m{i}")).await;
    }
    send(&app, &token, &other, "elsewhere").await;
    app.drain().await;
    let page = "query($r: ID!, $a: String, $b: String) { messages(roomId: $r, first: 3, after: $a, before: $b) { edges { cursor node { body cursor } } pageInfo { hasNextPage hasPreviousPage } } }";
    let bodies = |body: &Value| -> Vec<String> {
        body["data"]["messages"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("a page: {body}"))
            .iter()
            .map(|e| e["node"]["body"].as_str().expect("body").to_owned())
            .collect()
    };
    let first = app.gql(Some(&token), page, json!({"r": room})).await;
    assert_eq!(bodies(&first), ["m6", "m5", "m4"]);
    let edge_cursor = first["data"]["messages"]["edges"][2]["cursor"].clone();
    let node_cursor = first["data"]["messages"]["edges"][2]["node"]["cursor"].clone();
    // The edge's cursor by `after` or by the deprecated `before`, and the
    // message's own cursor: the same next page, older messages.
    for vars in [
        json!({"r": room, "a": edge_cursor}),
        json!({"r": room, "b": edge_cursor}),
        json!({"r": room, "a": node_cursor}),
    ] {
        let next = app.gql(Some(&token), page, vars.clone()).await;
        assert_eq!(bodies(&next), ["m3", "m2", "m1"], "{vars}");
        assert_eq!(
            next["data"]["messages"]["pageInfo"],
            json!({"hasNextPage": true, "hasPreviousPage": true})
        );
    }
    let both = app
        .gql(
            Some(&token),
            page,
            json!({"r": room, "a": edge_cursor, "b": edge_cursor}),
        )
        .await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT", "{both}");
    let elsewhere = app.gql(Some(&token), page, json!({"r": other})).await;
    let foreign = elsewhere["data"]["messages"]["edges"][0]["node"]["cursor"].clone();
    let refused = app
        .gql(Some(&token), page, json!({"r": room, "a": foreign}))
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
}
