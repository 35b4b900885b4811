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

/// Tokens left in each account's mutation bucket, fewest first (the tests'
/// refill of 0.001 per second adds well under one in their time).
async fn buckets(app: &crate::helpers::TestApp) -> Vec<i64> {
    let mut left = Vec::new();
    for rank in 0..app
        .count("SELECT count(*) FROM rate_limits WHERE scope = 'mutation'")
        .await
    {
        left.push(
            app.count(&format!(
                "SELECT floor(tokens)::INT8 FROM rate_limits WHERE scope = 'mutation' \
                 ORDER BY tokens OFFSET {rank} LIMIT 1"
            ))
            .await,
        );
    }
    left
}

const CREATE: &str = "mutation { createTodo(input: {title: \"t\"}) { id } }";

#[tokio::test]
async fn a_mutation_charges_its_caller_only_when_the_token_still_names_one() {
    let app = spawn_app_with(&[
        "--mutation-burst",
        "4",
        "--mutation-rate-per-second",
        "0.001",
    ])
    .await;
    let (first, _) = app.sign_up("charged@example.org", "Charged").await;
    let created = app.gql(Some(&first), CREATE, json!({})).await;
    assert!(created["data"]["createTodo"]["id"].is_string(), "{created}");
    assert_eq!(buckets(&app).await, [3]);

    // A revoked token is no caller: refused, and nothing is taken.
    let out = app
        .gql(Some(&first), "mutation { logOutEverywhere }", json!({}))
        .await;
    assert_eq!(out["data"]["logOutEverywhere"], true, "{out}");
    assert_eq!(buckets(&app).await, [2]);
    let revoked = app.gql(Some(&first), CREATE, json!({})).await;
    assert_eq!(error_code(&revoked), "UNAUTHENTICATED", "{revoked}");
    assert_eq!(buckets(&app).await, [2]);

    // A fresh token. Choosing the query of a document that also holds a
    // mutation takes nothing.
    let login = app
        .gql(
            None,
            "mutation { logIn(email: \"charged@example.org\", password: \"password123\") { token } }",
            json!({}),
        )
        .await;
    let second = login["data"]["logIn"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"))
        .to_owned();
    let query = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&second)
        .json(&json!({
            "query": "query Q { me { id } } mutation M { createTodo(input: {title: \"q\"}) { id } }",
            "operationName": "Q",
        }))
        .send()
        .await
        .expect("post")
        .json::<Value>()
        .await
        .expect("json");
    assert!(query["data"]["me"]["id"].is_string(), "{query}");
    assert_eq!(buckets(&app).await, [2]);

    // Two aliased fields take the last two tokens; the next mutation is
    // refused.
    let two = app
        .gql(
            Some(&second),
            "mutation { a: createTodo(input: {title: \"a\"}) { id } b: createTodo(input: {title: \"b\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(two.get("errors").is_none(), "{two}");
    assert_eq!(buckets(&app).await, [0]);
    let refused = app.gql(Some(&second), CREATE, json!({})).await;
    assert_eq!(error_code(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 3);
    // An account that is gone is no caller either.
    let (gone, _) = app.sign_up("gone@example.org", "Gone").await;
    let deleted = app
        .gql(
            Some(&gone),
            "mutation($p: String!) { deleteAccount(password: $p) }",
            json!({"p": "password123"}),
        )
        .await;
    assert!(deleted.get("errors").is_none(), "{deleted}");
    assert_eq!(buckets(&app).await, [0, 3]);
    let after = app.gql(Some(&gone), CREATE, json!({})).await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED", "{after}");
    assert_eq!(buckets(&app).await, [0, 3]);
}

/// Websocket operations run on their own schema, behind the same front
/// door: a mutation sent over `/graphql/ws` spends the same budget field by
/// field, and a document priced over the budget is refused with the same
/// code as over HTTP.
#[tokio::test]
async fn websocket_mutations_spend_the_same_budget_behind_the_same_door() {
    use std::time::Duration;

    use crate::ws;

    let app = spawn_app_with(&[
        "--mutation-burst",
        "3",
        "--mutation-rate-per-second",
        "0.001",
    ])
    .await;
    let (token, _) = app.sign_up("socket-writer@example.org", "Socket").await;
    let mut socket = ws::connect(&app, Some(&token)).await;
    let five = "mutation { a: createTodo(input: {title: \"a\"}) { id } \
                b: createTodo(input: {title: \"b\"}) { id } \
                c: createTodo(input: {title: \"c\"}) { id } \
                d: createTodo(input: {title: \"d\"}) { id } \
                e: createTodo(input: {title: \"e\"}) { id } }";
    ws::subscribe(&mut socket, "m", five, json!({})).await;
    let reply = ws::next_json(&mut socket, Duration::from_secs(10))
        .await
        .expect("a reply to the mutation");
    assert_eq!(reply["type"], "next", "{reply}");
    let refused: Vec<&Value> = reply["payload"]["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .collect();
    assert_eq!(refused.len(), 2, "{reply}");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 3, "{reply}");
    // The bucket was charged once, for all five fields: nothing is left.
    assert_eq!(buckets(&app).await, vec![0]);

    let wide = "{ rooms { members { id name email createdAt } } }";
    ws::subscribe(&mut socket, "q", wide, json!({})).await;
    let mut code = None;
    while let Some(frame) = ws::next_json(&mut socket, Duration::from_secs(10)).await {
        if frame["id"] != "q" {
            continue;
        }
        let errors = match frame["type"].as_str() {
            Some("error") => frame["payload"].clone(),
            _ => frame["payload"]["errors"].clone(),
        };
        code = errors[0]["extensions"]["code"].as_str().map(str::to_owned);
        break;
    }
    assert_eq!(code.as_deref(), Some("QUERY_TOO_COMPLEX"));
}
