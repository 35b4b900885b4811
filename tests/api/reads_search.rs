//! Search: literal matching of folded words, ranking, paging, privacy.
use serde_json::{json, Value};

use crate::reads_support::{create_room, send, spawn_read_app, without_mongo};

const USERS: &str = "query($q: String!, $n: Int, $a: String) { searchUsers(query: $q, first: $n, after: $a) { edges { cursor node { name email } } pageInfo { hasNextPage } } }";
const MESSAGES: &str =
    "query($q: String!) { searchMessages(query: $q) { edges { node { body } } } }";

fn names(body: &Value, field: &str, key: &str) -> Vec<String> {
    body["data"][field]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| e["node"][key].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn search_input_is_matched_literally_never_as_a_pattern_or_an_operator() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("w@example.org", "Where Wolf").await;
    app.sign_up("e@example.org", "Élodie Dupont").await;
    app.sign_up("g@example.org", "Gertrude").await;
    let room = create_room(&app, &token, "Room").await;
    send(&app, &token, &room, "price > 10 $gt everything").await;
    send(&app, &token, &room, "Ünïcödé wörks").await;
    app.drain().await;
    let fallback = without_mongo(&app).await;
    // As long as a query may be: one long word and more words than are kept.
    let long = "x".repeat(400) + &" ab".repeat(37);
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (".*", vec![], vec![]),
        ("^", vec![], vec![]),
        ("^G", vec![], vec![]),
        ("$where", vec!["Where Wolf"], vec![]),
        (r#"{"$gt": ""}"#, vec![], vec!["price > 10 $gt everything"]),
        ("ÉLODIE", vec!["Élodie Dupont"], vec![]),
        ("elodie", vec!["Élodie Dupont"], vec![]),
        ("unicode", vec![], vec!["Ünïcödé wörks"]),
        (&long, vec![], vec![]),
    ];
    for (query, users, messages) in cases {
        for reader in [&app, &fallback] {
            let body = reader.gql(Some(&token), USERS, json!({"q": query})).await;
            assert!(body["errors"].is_null(), "{query:.40}: {body}");
            assert_eq!(names(&body, "searchUsers", "name"), users, "{query:.40}");
            let body = reader
                .gql(Some(&token), MESSAGES, json!({"q": query}))
                .await;
            assert!(body["errors"].is_null(), "{query:.40}: {body}");
            assert_eq!(
                names(&body, "searchMessages", "body"),
                messages,
                "{query:.40}"
            );
        }
    }
}

#[tokio::test]
async fn exact_word_matches_rank_before_prefix_matches_and_newest_first_within_each() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("a1@example.org", "Al Green").await;
    app.sign_up("a2@example.org", "Alice Jones").await;
    app.sign_up("a3@example.org", "Alan Turing").await;
    app.sign_up("a4@example.org", "Sam Al").await;
    app.sign_up("a5@example.org", "Bert").await;
    app.drain().await;
    let fallback = without_mongo(&app).await;
    let expected = ["Sam Al", "Al Green", "Alan Turing", "Alice Jones"];
    for reader in [&app, &fallback] {
        let body = reader.gql(Some(&token), USERS, json!({"q": "al"})).await;
        assert_eq!(names(&body, "searchUsers", "name"), expected);
        // one at a time, across the rank boundary, gives the same order
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let body = reader
                .gql(Some(&token), USERS, json!({"q": "al", "n": 1, "a": after}))
                .await;
            paged.extend(names(&body, "searchUsers", "name"));
            if !body["data"]["searchUsers"]["pageInfo"]["hasNextPage"]
                .as_bool()
                .expect("well-formed response")
            {
                break;
            }
            after = body["data"]["searchUsers"]["edges"][0]["cursor"]
                .as_str()
                .map(str::to_owned);
        }
        assert_eq!(paged, expected);
    }
}

#[tokio::test]
async fn search_shows_an_email_only_on_the_callers_own_account() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("me@example.org", "Kim Self").await;
    app.sign_up("other@example.org", "Kim Other").await;
    app.drain().await;
    let body = app.gql(Some(&token), USERS, json!({"q": "kim"})).await;
    let edges = body["data"]["searchUsers"]["edges"]
        .as_array()
        .expect("well-formed response");
    assert_eq!(edges.len(), 2);
    for e in edges {
        match e["node"]["name"].as_str().expect("well-formed response") {
            "Kim Self" => assert_eq!(e["node"]["email"], "me@example.org"),
            _ => assert!(e["node"]["email"].is_null(), "{e}"),
        }
    }
}
