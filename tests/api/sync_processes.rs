//! The real binary: `serve` with its worker, `serve --no-worker` beside a
//! `worker` process, and the commit-to-read-model lag of each.
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app, spawn_app_with, wait_until, TestApp},
    sync_support::{
        assert_in_sync, spawn_serve_process, spawn_worker_process, terminate, wait_for_empty_outbox,
    },
};

/// Every committed write reaches the read model, with the in-process worker
/// (woken by the commit, its poll interval a minute away) and with a
/// separate `worker` process (which polls). How fast is the benchmark's
/// business (`scripts/bench.sh`, the lag phase), not a test's.
#[tokio::test]
async fn every_write_reaches_the_read_model_through_the_woken_in_process_worker_and_a_worker_process(
) {
    const SAMPLES: usize = 5;
    let app = spawn_app_with(&["--sync-poll-interval-ms", "60000"]).await;
    let (token, _) = app.sign_up("lag@example.org", "Lou").await;
    app.drain().await;

    let worker = app.start_worker();
    reach_the_read_model(&app, &token, "in-process", SAMPLES).await;
    worker.stop().await;

    let mut process = spawn_worker_process(
        &app,
        &crate::helpers::mongo_uri(),
        &[("SYNC_POLL_INTERVAL_MS", "250")],
    );
    reach_the_read_model(&app, &token, "worker process", SAMPLES).await;
    terminate(&process);
    process.wait().await.ok();
}

/// Writes `samples` todos one after another and waits for each to appear
/// in MongoDB; a write still missing after 30 s fails the test.
async fn reach_the_read_model(app: &TestApp, token: &str, worker: &str, samples: usize) {
    for i in 0..samples {
        let body = app
            .gql(
                Some(token),
                "mutation($t: String!) { createTodo(input: {title: $t}) { id } }",
                json!({"t": format!("{worker} {i}")}),
            )
            .await;
        let id = body["data"]["createTodo"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let id = &id;
        wait_until(
            &format!("todo {id} to reach the read model through the {worker}"),
            Duration::from_secs(30),
            move || async move { app.read_doc("todos", id).await.is_some() },
        )
        .await;
    }
}

async fn sign_up_at(app: &TestApp, base: &str, email: &str) {
    let body: Value = app
        .http
        .post(format!("{base}/graphql"))
        .json(&json!({
            "query": "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
            "variables": {"i": {"email": email, "name": "Served", "password": "password123"}}
        }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body["data"]["signUp"]["token"].is_string(), "{body}");
}

#[tokio::test]
async fn serve_runs_the_worker_beside_the_api_and_stops_both_on_sigterm() {
    let app = spawn_app().await;
    let (mut server, base) = spawn_serve_process(&app, &[]).await;
    sign_up_at(&app, &base, "served@example.org").await;
    let users = &app.state.read_model().collection::<Document>("users");
    wait_until(
        "serve's worker to apply the sign-up",
        Duration::from_secs(20),
        move || async move {
            users
                .find_one(doc! {"email": "served@example.org"})
                .await
                .expect("read")
                .is_some()
        },
    )
    .await;
    terminate(&server);
    let status = server.wait().await.expect("exit");
    assert!(status.success(), "{status}");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL AND processed_at IS NULL"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn serve_with_no_worker_leaves_events_for_a_worker_process() {
    let app = spawn_app().await;
    let (mut server, base) = spawn_serve_process(&app, &["--no-worker"]).await;
    sign_up_at(&app, &base, "alone@example.org").await;
    let health: Value = app
        .http
        .get(format!("{base}/api/health/sync"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["queueSize"], 1, "{health}");
    let mut worker = spawn_worker_process(&app, &crate::helpers::mongo_uri(), &[]);
    wait_for_empty_outbox(&app, Duration::from_secs(30)).await;
    for child in [&mut server, &mut worker] {
        terminate(child);
        assert!(child.wait().await.expect("exit").success());
    }
    assert_in_sync(&app).await;
}

/// A `worker` that starts before any server creates the read model's
/// indexes itself, so they grow with the collections it fills instead of
/// being built at once over every document later.
#[tokio::test]
async fn a_worker_process_creates_the_read_model_indexes_as_it_starts() {
    const INDEXES: [(&str, &str); 4] = [
        ("study_totals", "board"),
        ("messages", "room_history"),
        ("users", "search_prefixes"),
        ("todos", "user_created"),
    ];
    let app = spawn_app().await;
    let fresh = format!("t_{}", uuid::Uuid::new_v4().simple());
    let db = app.state.read_model().client().database(&fresh);
    let names = |collection: &'static str| {
        let db = db.clone();
        async move {
            db.collection::<Document>(collection)
                .list_index_names()
                .await
                .unwrap_or_default()
        }
    };
    for (collection, index) in INDEXES {
        let names = names(collection).await;
        assert!(
            !names.iter().any(|n| n == index),
            "{collection}: {names:?} before the worker"
        );
    }
    let mut process = spawn_worker_process(
        &app,
        &crate::helpers::mongo_uri(),
        &[("MONGODB_DB", fresh.as_str())],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for (collection, index) in INDEXES {
        loop {
            let names = names(collection).await;
            if names.iter().any(|n| n == index) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no {collection}.{index} after 30 s: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    terminate(&process);
    process.wait().await.ok();
    db.drop().await.ok();
}

/// A `worker` that starts on an empty read model with a backlog waiting
/// creates every index before it writes a document: no index is then built
/// over documents already stored, and no write of the first batches creates a
/// collection while `createIndexes` creates the same one. The read model's
/// change stream (with DDL events) gives the order in which the server did
/// both.
#[tokio::test]
async fn a_worker_process_creates_the_indexes_before_it_fills_an_empty_read_model() {
    use futures::StreamExt;
    let app = spawn_app().await;
    let args = studysync::seed::SeedArgs {
        users: 60,
        sessions: 300,
        todos: 120,
        rooms: 3,
        messages: 60,
        months: 2,
        batch: 500,
        rng_seed: 7,
    };
    let seeded = studysync::seed::seed(app.state.writer(), &args, |_| {})
        .await
        .expect("seed");
    assert!(seeded.events > 0, "{seeded:?}");
    let fresh = format!("t_{}", uuid::Uuid::new_v4().simple());
    let db = app.state.read_model().client().database(&fresh);
    let mut changes = db
        .watch()
        .show_expanded_events(true)
        .await
        .expect("change stream")
        .with_type::<Document>();
    let mut process = spawn_worker_process(
        &app,
        &crate::helpers::mongo_uri(),
        &[("MONGODB_DB", fresh.as_str())],
    );
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    terminate(&process);
    assert!(process.wait().await.expect("exit").success());

    // (operation, collection) in the server's order, up to the todos'
    // first document: the worker writes users, todos and sessions from its
    // first batch on.
    let mut order: Vec<(String, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !order.iter().any(|(op, c)| op == "insert" && c == "todos") {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, changes.next())
            .await
            .unwrap_or_else(|_| panic!("no insert into todos in the change stream: {order:?}"))
            .expect("stream ended")
            .expect("change event");
        let op = event
            .get_str("operationType")
            .unwrap_or_default()
            .to_owned();
        let collection = event
            .get_document("ns")
            .ok()
            .and_then(|ns| ns.get_str("coll").ok())
            .unwrap_or_default()
            .to_owned();
        order.push((op, collection));
    }
    let first_write = order
        .iter()
        .position(|(op, _)| matches!(op.as_str(), "insert" | "update" | "replace"))
        .expect("a write");
    for collection in [
        "messages",
        "users",
        "study_totals",
        "study_sessions",
        "todos",
    ] {
        assert!(
            order[..first_write]
                .iter()
                .any(|(op, c)| op == "createIndexes" && c == collection),
            "{collection} was not indexed before the worker's first write: {order:?}"
        );
    }
    for (collection, seeded) in [("users", 60), ("study_sessions", 300), ("todos", 120)] {
        let stored = db
            .collection::<Document>(collection)
            .count_documents(doc! {})
            .await
            .expect("count");
        assert_eq!(stored, seeded, "{collection}");
    }
    db.drop().await.ok();
}
