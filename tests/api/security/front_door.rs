//! One bounded front door for every document: whatever the transport (GET,
//! POST, websocket), a hostile document is measured by a linear scan of its
//! text before anything recursive touches it, parsed once, and costed in
//! time linear in its length.
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

use super::{encode, get_raw, post_json, rows_written, GRAPHQL_RESPONSE};
use crate::{
    helpers::{spawn_app, TestApp},
    ws::{self, Socket},
};

/// `{ a(x: [[[ ... ]]]) }`, list values nested `depth` levels deep.
fn nested_lists(depth: usize) -> String {
    format!("{{ a(x: {}1{}) }}", "[".repeat(depth), "]".repeat(depth))
}

/// The worst documents of each kind that fit the default body limit.
pub fn hostile_documents() -> Vec<String> {
    let n = 200_000;
    let mut chain = String::from("mutation { ...F0 }\n");
    for i in 0..2_000 {
        chain.push_str(&format!("fragment F{i} on Mutation {{ ...F{} }}\n", i + 1));
    }
    vec![
        nested_lists(n),
        format!("{{ a(x: {}1) }}", "[".repeat(2 * n)),
        format!("{{ a(x: {}) }}", "{b: ".repeat(n / 2)),
        "{a".repeat(n),
        "(".repeat(2 * n),
        format!("query($v: {}Int) {{ a }}", "[".repeat(2 * n)),
        format!("{{ a {} }}", "@x ".repeat(n)),
        format!("{{ {} }}", "a ".repeat(n)),
        chain,
    ]
}

async fn still_answers(app: &TestApp) {
    let reply = post_json(app, GRAPHQL_RESPONSE, &json!({"query": "{ __typename }"})).await;
    assert_eq!(
        reply.json()["data"]["__typename"],
        "Query",
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn a_get_with_list_values_nested_thousands_deep_is_refused_and_the_server_lives() {
    let app = spawn_app().await;
    let query = format!("query={}", encode(&nested_lists(5_000)));
    let reply = get_raw(&app, &query, Some(GRAPHQL_RESPONSE)).await;
    reply.assert_error(400, "QUERY_TOO_DEEP");
    still_answers(&app).await;
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_get_whose_variables_nest_deeper_than_the_limit_is_refused() {
    let app = spawn_app().await;
    let variables = format!("{{\"v\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    let query = format!(
        "query={}&variables={}",
        encode("query($v: Int) { __typename }"),
        encode(&variables)
    );
    let reply = get_raw(&app, &query, Some(GRAPHQL_RESPONSE)).await;
    reply.assert_error(400, "QUERY_TOO_DEEP");
    still_answers(&app).await;
}

#[tokio::test]
async fn hostile_documents_by_post_are_refused_with_one_clear_error_each() {
    let app = spawn_app().await;
    for (i, document) in hostile_documents().into_iter().enumerate() {
        let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": document })).await;
        let body = reply.json();
        let code = body["errors"][0]["extensions"]["code"].as_str();
        assert!(
            matches!(code, Some("QUERY_TOO_DEEP" | "QUERY_TOO_LARGE")),
            "document {i}: {}",
            &reply.text[..reply.text.len().min(300)]
        );
        assert_eq!(
            body["errors"].as_array().map(Vec::len),
            Some(1),
            "document {i}"
        );
        assert_eq!(reply.status, 400, "document {i}");
    }
    still_answers(&app).await;
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn hostile_documents_run_through_the_whole_request_pipeline_on_a_small_stack() {
    let app = spawn_app().await;
    let router = studysync::http::router(app.state.clone());
    let documents = hostile_documents();
    // The handlers, the front door and async-graphql run on this thread's
    // 256 KiB stack: none of the documents may overflow it.
    let statuses = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(Box::pin(async move {
                use tower::ServiceExt;
                let mut statuses = Vec::new();
                for document in documents {
                    let get = axum::http::Request::get(format!(
                        "/graphql?query={}",
                        encode(&document[..document.len().min(20_000)])
                    ))
                    .header("accept", GRAPHQL_RESPONSE)
                    .body(axum::body::Body::empty())
                    .expect("request");
                    let post = axum::http::Request::post("/graphql")
                        .header("content-type", "application/json")
                        .header("accept", GRAPHQL_RESPONSE)
                        .body(axum::body::Body::from(
                            json!({ "query": document }).to_string(),
                        ))
                        .expect("request");
                    for request in [get, post] {
                        let response = router.clone().oneshot(request).await.expect("infallible");
                        statuses.push(response.status().as_u16());
                    }
                }
                statuses
            }))
        })
        .expect("thread")
        .join()
        .expect("no stack overflow and no panic");
    assert_eq!(statuses.len(), 2 * hostile_documents().len());
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    still_answers(&app).await;
    assert_eq!(rows_written(&app).await, 0);
}

async fn next_json(socket: &mut Socket) -> Option<Value> {
    ws::next_json(socket, Duration::from_secs(10)).await
}

#[tokio::test]
async fn hostile_documents_by_websocket_are_refused_and_the_socket_still_serves() {
    let app = spawn_app().await;
    let mut socket = ws::connect(&app, None).await;
    for (i, document) in hostile_documents().into_iter().enumerate() {
        let id = format!("h{i}");
        let frame = json!({"id": id, "type": "subscribe", "payload": {"query": document}});
        socket
            .send(Frame::text(frame.to_string()))
            .await
            .expect("send");
        let reply = next_json(&mut socket).await.expect("a reply");
        assert_eq!(reply["id"], id.as_str(), "{reply}");
        assert_eq!(reply["type"], "next", "{reply}");
        let code = reply["payload"]["errors"][0]["extensions"]["code"].as_str();
        assert!(
            matches!(code, Some("QUERY_TOO_DEEP" | "QUERY_TOO_LARGE")),
            "document {i}: {reply}"
        );
        assert!(reply["payload"]["data"].is_null(), "{reply}");
        let complete = next_json(&mut socket).await.expect("complete");
        assert_eq!(complete["type"], "complete", "{complete}");
    }
    let frame = json!({"id": "ok", "type": "subscribe", "payload": {"query": "{ __typename }"}});
    socket
        .send(Frame::text(frame.to_string()))
        .await
        .expect("send");
    let reply = next_json(&mut socket).await.expect("a reply");
    assert_eq!(reply["payload"]["data"]["__typename"], "Query", "{reply}");
    still_answers(&app).await;
}

/// `count` fragments, each spreading the next twice, the last a `signUp`.
fn doubling_chain(count: usize) -> String {
    let mut query = String::from("mutation { ...F0 }\n");
    for i in 0..count {
        query.push_str(&format!(
            "fragment F{i} on Mutation {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    query.push_str(&format!(
        "fragment F{count} on Mutation {{ signUp(input: {{email: \"chain@example.org\", name: \"C\", password: \"password123\"}}) {{ token }} }}"
    ));
    query
}

#[tokio::test]
async fn a_doubling_fragment_chain_is_refused_before_it_is_expanded_and_writes_nothing() {
    let app = spawn_app().await;
    // 2^27 and 2^30 selections once expanded: only a count that reuses each
    // fragment's total can answer at all.
    for count in [27, 30] {
        let reply = post_json(
            &app,
            GRAPHQL_RESPONSE,
            &json!({"query": doubling_chain(count)}),
        )
        .await;
        let body = reply.assert_error(400, "QUERY_TOO_LARGE");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    }
    still_answers(&app).await;
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_fragment_that_spreads_itself_is_refused() {
    let app = spawn_app().await;
    let query =
        "{ ...A } fragment A on Query { __typename ...B ...B } fragment B on Query { ...A ...A }";
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    let body = reply.assert_error(400, "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("spreads itself")));
    still_answers(&app).await;
}

#[tokio::test]
async fn a_megabyte_of_unknown_directives_gets_one_error() {
    let app = spawn_app().await;
    let query = format!("{{ __typename {} }}", "@nope ".repeat(170_000));
    assert!(query.len() > 1_000_000);
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    let body = reply.assert_error(400, "QUERY_TOO_LARGE");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1));
    assert!(reply.text.len() < 1_000, "{}", reply.text);
    still_answers(&app).await;
}

#[tokio::test]
async fn fifty_thousand_unused_variables_get_one_error() {
    let app = spawn_app().await;
    let definitions: Vec<String> = (0..50_000).map(|i| format!("$v{i}: Int")).collect();
    let query = format!("query({}) {{ __typename }}", definitions.join(", "));
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    let body = reply.assert_error(400, "QUERY_TOO_LARGE");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1));
    // Supplied rather than defined: the same.
    let supplied: serde_json::Map<String, Value> =
        (0..50_000).map(|i| (format!("v{i}"), json!(i))).collect();
    let reply = post_json(
        &app,
        GRAPHQL_RESPONSE,
        &json!({ "query": "{ __typename }", "variables": supplied }),
    )
    .await;
    let body = reply.assert_error(400, "QUERY_TOO_LARGE");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1));
    still_answers(&app).await;
}

#[tokio::test]
async fn every_count_cap_answers_query_too_large_and_says_what_it_counted() {
    let app = spawn_app().await;
    let operations: Vec<String> = (0..11)
        .map(|i| format!("query Q{i} {{ __typename }}"))
        .collect();
    let fragments: Vec<String> = (0..100)
        .map(|i| format!("fragment F{i} on Query {{ __typename }}"))
        .collect();
    let arguments: Vec<String> = (0..201).map(|i| format!("a{i}: {i}")).collect();
    let arguments = format!("{{ __typename({}) }}", arguments.join(", "));
    let directives = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(51));
    for (document, what) in [
        (operations.join("\n"), "operations"),
        (
            format!("{{ __typename }}\n{}", fragments.join("\n")),
            "definitions",
        ),
        (arguments, "arguments"),
        (directives, "directives"),
    ] {
        let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": document })).await;
        let body = reply.assert_error(400, "QUERY_TOO_LARGE");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(what), "{what}: {message}");
    }
    still_answers(&app).await;
}

#[tokio::test]
async fn a_response_reports_at_most_twenty_errors_and_says_how_many_were_dropped() {
    let app = spawn_app().await;
    let unknown: Vec<String> = (0..100).map(|i| format!("nope{i}")).collect();
    let query = format!("{{ {} }}", unknown.join(" "));
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    let body = reply.assert_error(400, "BAD_USER_INPUT");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 21, "{body}");
    assert_eq!(errors[20]["extensions"]["code"], "TOO_MANY_ERRORS");
    assert!(errors[20]["message"]
        .as_str()
        .is_some_and(|m| m.contains("80 more")));
    still_answers(&app).await;
}

#[tokio::test]
async fn an_unused_doubling_fragment_chain_is_refused_without_being_expanded() {
    let app = spawn_app().await;
    // Not reachable from the operation, so not in its cost: validation must
    // still walk each fragment once, not 2^60 times.
    let mut query = String::from("{ __typename }\nfragment F60 on Query { __typename }\n");
    for i in 0..60 {
        query.push_str(&format!(
            "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    let reply = post_json(&app, GRAPHQL_RESPONSE, &json!({ "query": query })).await;
    let body = reply.assert_error(400, "BAD_USER_INPUT");
    assert!(
        body["errors"].as_array().is_some_and(|e| e.len() <= 21),
        "{body}"
    );
    still_answers(&app).await;
}

#[tokio::test]
async fn a_websocket_message_over_the_body_limit_closes_that_socket_only() {
    let app = spawn_app().await;
    let mut socket = ws::connect(&app, None).await;
    let query = format!("{{ __typename }} # {}", "x".repeat(1_100_000));
    let frame = json!({"id": "big", "type": "subscribe", "payload": {"query": query}});
    // The server may close before it has read the whole frame.
    let _ = socket.send(Frame::text(frame.to_string())).await;
    let mut answered = false;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        match frame {
            Ok(Frame::Text(text)) => answered |= text.as_str().contains("\"big\""),
            Ok(Frame::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(!answered, "an over-long message was executed");
    let mut other = ws::connect(&app, None).await;
    let ok = json!({"id": "ok", "type": "subscribe", "payload": {"query": "{ __typename }"}});
    other.send(Frame::text(ok.to_string())).await.expect("send");
    let reply = next_json(&mut other).await.expect("a reply");
    assert_eq!(reply["payload"]["data"]["__typename"], "Query", "{reply}");
}
