//! Generated hostile documents through the whole request pipeline (real
//! server, real HTTP and websocket): every one gets an answer, never a
//! panic, an abort or a 5xx, and none writes anything.
//!
//! The suite runs a fixed number of cases from a fixed seed
//! (`FUZZ_CASES`, default 32). `scripts/fuzz.sh SECONDS` sets
//! `FUZZ_SECONDS` to run fresh random cases for that long instead.
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner},
};
use serde_json::{json, Value};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{client::IntoClientRequest, http::HeaderValue, Message as Frame},
};

use super::{encode, rows_written, GRAPHQL_RESPONSE};
use crate::helpers::{spawn_app, TestApp};

/// What hostile documents are made of: nesting of every kind, spreads and
/// fragments, directives, variables, strings and comments cut short,
/// operations, and bytes that are not GraphQL at all.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "{ a ",
    "a: ",
    "x(y: ",
    "[[",
    "{b: ",
    "...F ",
    "... on Query { ",
    "fragment F on Query { ...F ...F } ",
    "fragment G on Query { ...F } ",
    "@skip(if: true) ",
    "@nope ",
    "@include(if: $v) ",
    "query($v: [[Int]]) ",
    "$v ",
    "query Q ",
    "mutation M ",
    "subscription S ",
    "__schema { types { fields { type { fields { name } } } } } ",
    "__typename ",
    "me { name } ",
    "todos(first: 100) { edges { node { id } } } ",
    "\"str\" ",
    "\"unterminated\n",
    "\"\"\"block ",
    "\"\"\" ",
    "# comment {[(\n",
    "\\",
    "-1.5e10 ",
    "0x1 ",
    "\u{feff}",
    "é",
    "\u{0}",
    ",",
    "!",
    "=",
    "|",
    "&",
    ":",
];

/// Longest document generated: under the default 1 MiB body limit.
const MAX_DOCUMENT: usize = 900_000;

#[derive(Clone)]
struct Hostile {
    document: String,
    /// How deep the variables' JSON nests (0: no variables).
    variables_depth: usize,
}

/// Failures name the document by its length and start, not in full.
impl std::fmt::Debug for Hostile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start: String = self.document.chars().take(120).collect();
        write!(
            f,
            "{} bytes starting {start:?}, variables nested {} deep",
            self.document.len(),
            self.variables_depth
        )
    }
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let count = prop_oneof![1usize..=10, 10usize..=2_000, 2_000usize..=200_000];
    (vec((0..PIECES.len(), count), 1..6), 0usize..=200).prop_map(|(parts, variables_depth)| {
        let mut document = String::new();
        for (piece, count) in parts {
            let piece = PIECES[piece];
            let room = MAX_DOCUMENT.saturating_sub(document.len()) / piece.len().max(1);
            document.push_str(&piece.repeat(count.min(room)));
        }
        // Within the body limit once escaped as JSON: bodies over it are
        // refused before they are read (tested elsewhere).
        while json_len(&document) > MAX_DOCUMENT {
            let mut cut = document.len() * 3 / 4;
            while !document.is_char_boundary(cut) {
                cut -= 1;
            }
            document.truncate(cut);
        }
        Hostile {
            document,
            variables_depth,
        }
    })
}

fn json_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(usize::MAX, |s| s.len())
}

fn runner(seconds: Option<u64>) -> TestRunner {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(32);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    match seconds {
        // A fresh seed per batch: the time is spent on new documents.
        Some(_) => TestRunner::new(config),
        None => TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha)),
    }
}

#[test]
fn generated_hostile_documents_all_get_an_answer_by_post_get_and_websocket() {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut app = runtime.block_on(spawn_app());
    // A fresh connection per request: a refusal may close the connection it
    // came on (a 413 before the body is read), which must not fail the next.
    app.http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let cases = std::sync::atomic::AtomicU64::new(0);
    loop {
        let result = runner(seconds).run(&hostile(), |case| {
            cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            runtime.block_on(answered(&app, &case))
        });
        if let Err(failure) = result {
            panic!("a hostile document was not answered: {failure}");
        }
        match deadline {
            Some(deadline) if Instant::now() < deadline => continue,
            _ => break,
        }
    }
    let cases = cases.into_inner();
    println!("fuzz: {cases} generated documents answered by POST, GET and websocket");
    assert!(cases >= u64::from(runner(seconds).config().cases));
    runtime.block_on(async {
        let reply = app
            .http
            .post(app.url("/graphql"))
            .json(&json!({"query": "{ __typename }"}))
            .send()
            .await
            .expect("the server still answers");
        let body: Value = reply.json().await.expect("json");
        assert_eq!(body["data"]["__typename"], "Query");
        assert_eq!(rows_written(&app).await, 0);
    });
}

/// Sends `case` by POST, GET and websocket; fails unless each gets an answer.
async fn answered(app: &TestApp, case: &Hostile) -> Result<(), TestCaseError> {
    let document = serde_json::to_string(&case.document).map_err(fail)?;
    let d = case.variables_depth;
    let body = if d == 0 {
        format!("{{\"query\": {document}}}")
    } else {
        format!(
            "{{\"query\": {document}, \"variables\": {{\"v\": {}1{}}}}}",
            "[".repeat(d),
            "]".repeat(d)
        )
    };
    let post = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", GRAPHQL_RESPONSE)
        .body(body.clone())
        .send()
        .await
        .map_err(|e| fail(format!("POST: {e:#}")))?;
    graphql_reply(post).await?;

    let mut cut = case.document.len().min(8_000);
    while !case.document.is_char_boundary(cut) {
        cut -= 1;
    }
    let get = app
        .http
        .get(format!(
            "{}?query={}",
            app.url("/graphql"),
            encode(&case.document[..cut])
        ))
        .header("accept", GRAPHQL_RESPONSE)
        .send()
        .await
        .map_err(|e| fail(format!("GET: {}", e.without_url())))?;
    graphql_reply(get).await?;

    if body.len() < 1_000_000 {
        websocket_reply(app, &body).await?;
    }
    Ok(())
}

fn fail(error: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

/// A GraphQL-shaped answer: not a server error, with `data` or `errors`.
async fn graphql_reply(reply: reqwest::Response) -> Result<(), TestCaseError> {
    let status = reply.status();
    let text = reply.text().await.map_err(fail)?;
    prop_assert!(!status.is_server_error(), "{status}: {text:.300}");
    let body: Value = serde_json::from_str(&text).map_err(fail)?;
    prop_assert!(
        body.get("errors").is_some() || body.get("data").is_some(),
        "{text:.300}"
    );
    Ok(())
}

async fn websocket_reply(app: &TestApp, payload: &str) -> Result<(), TestCaseError> {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .map_err(fail)?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = connect_async(request).await.map_err(fail)?;
    let init = json!({"type": "connection_init", "payload": {}}).to_string();
    socket.send(Frame::text(init)).await.map_err(fail)?;
    let frame = format!("{{\"id\": \"f\", \"type\": \"subscribe\", \"payload\": {payload}}}");
    socket.send(Frame::text(frame)).await.map_err(fail)?;
    let deadline = Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout(deadline, socket.next())
            .await
            .map_err(|_| fail("no websocket answer"))?;
        let Some(next) = next else {
            return Err(fail("the websocket closed without an answer"));
        };
        let text = match next.map_err(fail)? {
            Frame::Text(text) => text,
            // A message the protocol cannot read (say, variables nested past
            // serde_json's limit) is answered by closing with the reason.
            Frame::Close(Some(close)) => {
                prop_assert!(!close.reason.is_empty(), "{close:?}");
                return Ok(());
            }
            _ => continue,
        };
        let message: Value = serde_json::from_str(text.as_str()).map_err(fail)?;
        match message["type"].as_str() {
            Some("connection_ack" | "ping" | "pong" | "ka") => continue,
            Some("next" | "error" | "complete") if message["id"] == "f" => return Ok(()),
            _ => return Err(fail(format!("unexpected {text:.300}"))),
        }
    }
}
