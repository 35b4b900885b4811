//! Every abuse limit answers with a GraphQL error and its own code, and a
//! refused request writes nothing.
use serde_json::{json, Value};

use super::{post_json, post_raw, rows_written, GRAPHQL_RESPONSE};
use crate::helpers::{error_code, spawn_app, spawn_app_with};

fn sign_up(email: &str) -> String {
    format!(
        r#"signUp(input: {{email: "{email}", name: "N", password: "password123"}}) {{ token }}"#
    )
}

#[tokio::test]
async fn a_body_over_the_limit_gets_a_graphql_413_and_writes_nothing() {
    let app = spawn_app_with(&["--body-limit-bytes", "2048"]).await;
    let name = "n".repeat(4096);
    let body = json!({
        "query": "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
        "variables": {"i": {"email": "big@example.org", "name": name, "password": "password123"}}
    });
    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let reply = post_json(&app, accept, &body).await;
        reply.assert_error(413, "PAYLOAD_TOO_LARGE");
        assert!(reply.content_type.starts_with(accept));
    }
    // Without Content-Length the limit applies while the body streams in.
    let (status, reply) = post_chunked(&app, &body.to_string()).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(
        reply["errors"][0]["extensions"]["code"],
        "PAYLOAD_TOO_LARGE"
    );
    assert_eq!(rows_written(&app).await, 0);
}

/// POSTs `body` with `Transfer-Encoding: chunked` (no Content-Length) over a
/// bare connection and returns the status and the JSON body.
async fn post_chunked(app: &crate::helpers::TestApp, body: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let mut request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr
    );
    for chunk in body.as_bytes().chunks(1000) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            String::from_utf8_lossy(chunk)
        ));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text}"));
    let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // A chunked reply carries chunk sizes around the JSON.
    let start = json.find('{').unwrap_or(0);
    let end = json.rfind('}').map_or(json.len(), |i| i + 1);
    (
        status,
        serde_json::from_str(&json[start..end]).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_query_deeper_than_the_limit_is_refused_and_writes_nothing() {
    let app = spawn_app_with(&["--max-query-depth", "2"]).await;
    let signed_up = app
        .gql(
            None,
            &format!("mutation {{ {} }}", sign_up("deep@example.org")),
            json!({}),
        )
        .await;
    let token = signed_up["data"]["signUp"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let before = rows_written(&app).await;
    let query = r#"mutation { createTodo(input: {title: "x"}) { owner { name } } }"#;
    let reply = post_raw(
        &app,
        Some("application/json"),
        Some(GRAPHQL_RESPONSE),
        json!({ "query": query }).to_string(),
    )
    .await;
    // Depth is checked before the token is even looked at.
    reply.assert_error(400, "QUERY_TOO_DEEP");
    let authed = app.gql_full(Some(&token), query, json!({})).await;
    assert_eq!(authed.0, 200);
    assert_eq!(error_code(&authed.1), "QUERY_TOO_DEEP");
    assert_eq!(rows_written(&app).await, before);
    let shallow = app.gql(Some(&token), "{ me { name } }", json!({})).await;
    assert_eq!(shallow["data"]["me"]["name"], "N");
}

#[tokio::test]
async fn text_nested_beyond_the_limit_is_refused_before_parsing() {
    let app = spawn_app().await;
    let query = format!(
        "mutation {{ createTodo(input: {}) {{ id }} }}",
        "{a: ".repeat(100_000)
    );
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    reply.assert_error(400, "QUERY_TOO_DEEP");
    let still_up = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(still_up["data"]["__typename"], "Query");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn selections_nested_through_fragments_beyond_the_limit_are_refused() {
    let app = spawn_app().await;
    let mut query = String::from("mutation { ...F0 }\n");
    for i in 0..40 {
        query.push_str(&format!("fragment F{i} on Mutation {{ ...F{} }}\n", i + 1));
    }
    query.push_str(&format!(
        "fragment F40 on Mutation {{ {} }}",
        sign_up("frag@example.org")
    ));
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    reply.assert_error(400, "QUERY_TOO_DEEP");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_query_over_the_complexity_budget_is_refused_and_first_sets_the_cost() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("cost@example.org", "Cost").await;
    let page = |alias: &str, first: u32| {
        format!(
            "{alias}: todos(first: {first}) {{ edges {{ node {{ id title completed completedAt dueAt version createdAt updatedAt owner {{ id name email createdAt }} }} }} }}"
        )
    };
    let costly: Vec<String> = (0..4).map(|i| page(&format!("p{i}"), 100)).collect();
    let costly = format!("{{ {} }}", costly.join(" "));
    let (status, body) = app.gql_full(Some(&token), &costly, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(body.get("data").is_none(), "{body}");
    let cheap: Vec<String> = (0..4).map(|i| page(&format!("p{i}"), 10)).collect();
    let cheap = format!("{{ {} }}", cheap.join(" "));
    let body = app.gql(Some(&token), &cheap, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["p0"]["edges"], json!([]));
}

#[tokio::test]
async fn an_exponential_fragment_expansion_is_refused_by_the_field_limit() {
    let app = spawn_app().await;
    let mut query = format!(
        "mutation {{ ...F20 }}\nfragment F0 on Mutation {{ {} }}\n",
        sign_up("bomb@example.org")
    );
    for i in 1..=20 {
        query.push_str(&format!(
            "fragment F{i} on Mutation {{ ...F{} ...F{} }}\n",
            i - 1,
            i - 1
        ));
    }
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    reply.assert_error(400, "QUERY_TOO_LARGE");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn more_fields_than_the_limit_are_refused_and_write_nothing() {
    let app = spawn_app_with(&["--max-query-fields", "5"]).await;
    let query = r#"mutation { signUp(input: {email: "f@example.org", name: "F", password: "password123"}) { token user { id name email createdAt } } }"#;
    let reply = post_json(&app, "application/json", &json!({ "query": query })).await;
    reply.assert_error(200, "QUERY_TOO_LARGE");
    assert_eq!(rows_written(&app).await, 0);
    let fine = post_json(
        &app,
        "application/json",
        &json!({ "query": "{ __typename }" }),
    )
    .await;
    assert_eq!(fine.json()["data"]["__typename"], "Query");
}

#[tokio::test]
async fn more_aliases_than_the_limit_are_refused_and_no_account_is_created() {
    let app = spawn_app().await;
    let many: Vec<String> = (0..31)
        .map(|i| format!("a{i}: {}", sign_up(&format!("alias{i}@example.org"))))
        .collect();
    let query = format!("mutation {{ {} }}", many.join(" "));
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    reply.assert_error(400, "TOO_MANY_ALIASES");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole_and_writes_nothing() {
    let app = spawn_app().await;
    let op = |i: usize| json!({ "query": format!("mutation {{ {} }}", sign_up(&format!("b{i}@example.org"))) });
    let eleven: Vec<Value> = (0..11).map(op).collect();
    let reply = post_json(&app, "application/json", &Value::Array(eleven)).await;
    reply.assert_error(400, "BATCH_TOO_LARGE");
    assert_eq!(rows_written(&app).await, 0);
    let two: Vec<Value> = (0..2).map(op).collect();
    let reply = post_json(&app, "application/json", &Value::Array(two)).await;
    assert_eq!(reply.status, 200);
    let results = reply.json();
    assert_eq!(results.as_array().map(Vec::len), Some(2), "{results}");
    assert!(
        results[1]["data"]["signUp"]["token"].is_string(),
        "{results}"
    );
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2);
}

#[tokio::test]
async fn batching_can_be_turned_off() {
    let app = spawn_app_with(&["--batching", "false"]).await;
    let batch = json!([{ "query": format!("mutation {{ {} }}", sign_up("nob@example.org")) }]);
    let reply = post_json(&app, "application/json", &batch).await;
    reply.assert_error(400, "BATCHING_DISABLED");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_a_graphql_timeout_and_writes_nothing() {
    // Hashing a password alone takes longer than a millisecond.
    let app = spawn_app_with(&["--request-timeout-ms", "1"]).await;
    let query = format!("mutation {{ {} }}", sign_up("slow@example.org"));
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    reply.assert_error(504, "TIMEOUT");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_page_larger_than_100_is_refused() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("page@example.org", "Page").await;
    let body = app
        .gql(
            Some(&token),
            "{ todos(first: 101) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("100")));
}

#[tokio::test]
async fn graphiql_introspection_fits_the_default_limits_and_can_be_turned_off() {
    let introspection = include_str!("introspection.graphql");
    let app = spawn_app().await;
    let body = app.gql(None, introspection, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let closed = spawn_app_with(&["--introspection", "false"]).await;
    let reply = post_json(
        &closed,
        GRAPHQL_RESPONSE,
        &json!({ "query": introspection }),
    )
    .await;
    reply.assert_error(400, "INTROSPECTION_DISABLED");
    let by_name = closed
        .gql(None, "{ __type(name: \"User\") { name } }", json!({}))
        .await;
    assert_eq!(error_code(&by_name), "INTROSPECTION_DISABLED", "{by_name}");
    let still = closed.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(still["data"]["__typename"], "Query");
}

#[tokio::test]
async fn deeply_recursive_introspection_is_refused() {
    let app = spawn_app().await;
    let query = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    reply.assert_error(400, "QUERY_TOO_DEEP");
}

#[test]
fn a_limit_of_zero_or_a_wildcard_origin_is_refused_at_start_up() {
    let base = [
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/unused",
        "--mongodb-uri",
        "mongodb://127.0.0.1:1",
        "--jwt-secret",
        crate::helpers::JWT_SECRET,
    ];
    let with =
        |extra: &[&str]| studysync::config::Config::from_args(base.iter().chain(extra).copied());
    assert!(with(&[]).is_ok());
    for flag in [
        "--max-query-depth",
        "--batch-max-operations",
        "--login-window-seconds",
    ] {
        let error = with(&[flag, "0"]).expect_err("zero refused");
        assert!(
            format!("{error:#}").contains("must be positive"),
            "{error:#}"
        );
    }
    assert!(with(&["--cors-allowed-origins", "*"]).is_err());
    // Deeper nesting would let documents risk the stack again.
    assert!(with(&["--max-query-nesting", "128"]).is_ok());
    let error = with(&["--max-query-nesting", "129"]).expect_err("too deep refused");
    assert!(format!("{error:#}").contains("at most 128"), "{error:#}");
    assert!(with(&[
        "--cors-allowed-origins",
        "https://app.example.org,https://admin.example.org"
    ])
    .is_ok());
}
