//! Search input is bounded before it is folded: a long query is refused in
//! time independent of its length, however many aliases repeat it.
use serde_json::json;

use super::{post_json, rows_written};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_megabyte_search_query_repeated_by_sixteen_aliases_is_bad_user_input_at_once() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("seeker@example.org", "Seeker").await;
    let before = rows_written(&app).await;
    let aliases: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "u{i}: searchUsers(query: $q) {{ edges {{ cursor }} }} m{i}: searchMessages(query: $q) {{ edges {{ cursor }} }}"
            )
        })
        .collect();
    let query = format!("query($q: String!) {{ {} }}", aliases.join(" "));
    let huge = "ab ".repeat(333_000);
    let reply = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": query, "variables": { "q": huge } }))
        .send()
        .await
        .expect("post");
    assert_eq!(reply.status(), 200);
    let body: serde_json::Value = reply.json().await.expect("json");
    let errors = body["errors"].as_array().expect("errors");
    // One refusal per alias, each before any folding.
    assert_eq!(errors.len(), 16, "{body}");
    assert!(errors
        .iter()
        .all(|e| e["extensions"]["code"] == "BAD_USER_INPUT"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("512 bytes"))));
    assert!(body["data"].is_null(), "{body}");
    // A query within the limit still searches, cut to sixteen words.
    let words: String = (0..40).map(|i| format!("w{i} ")).collect();
    let fine = app
        .gql(
            Some(&token),
            "query($q: String!) { searchUsers(query: $q) { edges { node { name } } } }",
            json!({ "q": format!("seeker {words}") }),
        )
        .await;
    assert!(fine["errors"].is_null(), "{fine}");
    assert_eq!(rows_written(&app).await, before);
    let still = post_json(
        &app,
        "application/json",
        &json!({"query": "{ __typename }"}),
    )
    .await;
    assert_eq!(still.json()["data"]["__typename"], "Query");
}
