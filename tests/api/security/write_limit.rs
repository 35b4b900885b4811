//! The per-user mutation rate limit counts every alias and every batch entry.
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app_with};

#[tokio::test]
async fn aliases_and_batch_entries_each_spend_the_callers_mutation_budget() {
    let app = spawn_app_with(&[
        "--mutation-burst",
        "20",
        "--mutation-rate-per-second",
        "0.001",
    ])
    .await;
    let (token, _) = app.sign_up("writer@example.org", "Writer").await;
    let (other, _) = app.sign_up("other@example.org", "Other").await;
    // 10 operations of 3 aliased createTodos each: 30 mutations in one POST.
    let document = "mutation { a: createTodo(input: {title: \"a\"}) { id } \
                    b: createTodo(input: {title: \"b\"}) { id } \
                    c: createTodo(input: {title: \"c\"}) { id } }";
    let batch: Vec<Value> = (0..10).map(|_| json!({ "query": document })).collect();
    let replies: Vec<Value> = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&batch)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let refused: Vec<&Value> = replies
        .iter()
        .flat_map(|r| r["errors"].as_array().into_iter().flatten())
        .filter(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .collect();
    assert_eq!(refused.len(), 10, "{replies:?}");
    for error in &refused {
        assert!(
            error["extensions"]["retryAfterSeconds"].as_u64() > Some(0),
            "{error}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 20);
    let one_more = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"d\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&one_more), "RATE_LIMITED", "{one_more}");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 20);
    // Another account has its own budget.
    let theirs = app
        .gql(
            Some(&other),
            "mutation { createTodo(input: {title: \"e\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(theirs["data"]["createTodo"]["id"].is_string(), "{theirs}");
}
