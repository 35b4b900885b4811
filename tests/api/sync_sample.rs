//! Continuous verification: the sampler finds a tampered document (and not
//! one whose fix is pending), counts it, degrades health with a reason,
//! repairs it when asked, and clears once the document matches again.
use std::time::Duration;

use mongodb::bson::{doc, Document};
use serde_json::json;
use studysync::{events::Aggregate, sync::verify::sample};

use crate::{
    helpers::{mongo_uri, spawn_app, wait_until, TestApp},
    reads_support::create_todo,
    sync_support::{assert_in_sync, spawn_worker_process},
};

async fn tamper(app: &TestApp, id: &str) {
    app.state
        .read_model()
        .collection::<Document>("todos")
        .update_one(doc! {"_id": id}, doc! {"$set": {"title": "tampered"}})
        .await
        .expect("tamper");
}

async fn title(app: &TestApp, id: &str) -> String {
    let doc = app.read_doc("todos", id).await.expect("document");
    doc.get_str("title").expect("title").to_owned()
}

async fn health(app: &TestApp) -> serde_json::Value {
    app.http
        .get(app.url("/api/health/sync"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn the_sampler_finds_drift_degrades_health_repairs_it_and_clears() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("s@example.org", "Sam").await;
    let tampered = create_todo(&app, &token, "one", false).await;
    let pending = create_todo(&app, &token, "two", false).await;
    create_todo(&app, &token, "three", false).await;
    app.drain().await;
    tamper(&app, &tampered).await;
    // This one's fix is already waiting in the outbox: not drift.
    app.gql(
        Some(&token),
        "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true}) { id } }",
        json!({"id": pending}),
    )
    .await;
    tamper(&app, &pending).await;

    let sample_name = "studysync_read_model_drift_total{collection=\"todos\"}";
    let checked_name = "studysync_read_model_checked_total{collection=\"todos\"}";
    let (drift_before, checked_before) = (
        app.metric(sample_name).await,
        app.metric(checked_name).await,
    );
    let found = sample::sample(app.state.sync(), Aggregate::Todo, 50, false)
        .await
        .expect("sample");
    assert_eq!(found.checked, 3, "{found:?}");
    assert_eq!(
        found.drifted,
        [tampered.parse::<uuid::Uuid>().unwrap()],
        "{found:?}"
    );
    assert_eq!(found.repairs_enqueued, 0);
    assert!(app.metric(sample_name).await >= drift_before + 1.0);
    assert!(app.metric(checked_name).await >= checked_before + 3.0);
    let body = health(&app).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["drifted"], 1, "{body}");
    assert!(
        body["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .contains("drifted from the source of truth")),
        "{body}"
    );
    // Found again, still not repaired without auto-repair.
    sample::sample(app.state.sync(), Aggregate::Todo, 50, false)
        .await
        .expect("sample");
    app.drain().await;
    assert_eq!(title(&app, &tampered).await, "tampered");

    // With auto-repair the next sample enqueues the fix; the worker applies
    // it, and the sample after that clears the finding.
    let repaired = sample::sample(app.state.sync(), Aggregate::Todo, 50, true)
        .await
        .expect("sample");
    assert_eq!(repaired.repairs_enqueued, 1, "{repaired:?}");
    app.drain().await;
    assert_eq!(title(&app, &tampered).await, "one");
    let cleared = sample::sample(app.state.sync(), Aggregate::Todo, 50, false)
        .await
        .expect("sample");
    assert_eq!(cleared.cleared, 1, "{cleared:?}");
    assert!(cleared.drifted.is_empty(), "{cleared:?}");
    let body = health(&app).await;
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["drifted"], 0);
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn a_worker_process_with_auto_repair_fixes_a_tampered_document_on_its_own() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("w@example.org", "Wes").await;
    let id = create_todo(&app, &token, "original", false).await;
    app.drain().await;
    tamper(&app, &id).await;
    let _worker = spawn_worker_process(
        &app,
        &mongo_uri(),
        &[
            ("SYNC_SAMPLE_EVERY_MS", "100"),
            ("SYNC_AUTO_REPAIR", "true"),
        ],
    );
    wait_until(
        "the sampler repairs the document",
        Duration::from_secs(30),
        || async { title(&app, &id).await == "original" },
    )
    .await;
    wait_until("the finding clears", Duration::from_secs(30), || async {
        app.count("SELECT count(*) FROM read_model_drift").await == 0
    })
    .await;
    assert_in_sync(&app).await;
}
