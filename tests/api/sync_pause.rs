//! Pausing and resuming the sync workers: every process stops claiming,
//! health says `paused` with the lag still measured, and resuming carries
//! everything that waited.
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    helpers::{error_code, mongo_uri, spawn_app, wait_until, TestApp},
    reads_support::create_todo,
    sync_support::{assert_in_sync, spawn_worker_process},
};

const PAUSE: &str =
    "mutation($r: String) { pauseSync(reason: $r) { status paused { by reason since } reasons } }";
const RESUME: &str = "mutation { resumeSync { status paused { by } } }";

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app
        .http
        .get(app.url("/api/health/sync"))
        .send()
        .await
        .expect("health");
    let code = response.status().as_u16();
    (code, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_pause_stops_every_worker_and_a_resume_carries_what_waited() {
    let app = spawn_app().await;
    let (admin, _) = app.sign_up("ops@example.org", "Ops").await;
    app.promote("ops@example.org").await;
    let (user, _) = app.sign_up("u@example.org", "Una").await;
    let _worker = spawn_worker_process(&app, &mongo_uri(), &[]);
    app.drain().await;

    let refused = app.gql(Some(&user), PAUSE, json!({})).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let paused = app
        .gql(Some(&admin), PAUSE, json!({"r": "MongoDB upgrade"}))
        .await;
    let status = &paused["data"]["pauseSync"];
    assert_eq!(status["status"], "paused", "{paused}");
    assert_eq!(status["paused"]["by"], "ops@example.org");
    assert_eq!(status["paused"]["reason"], "MongoDB upgrade");

    // Writes go on; nothing is carried, by this process or the other one.
    let ids = [
        create_todo(&app, &user, "one", false).await,
        create_todo(&app, &user, "two", false).await,
    ];
    assert_eq!(
        app.drain().await.claimed,
        0,
        "a paused worker claims nothing"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for id in &ids {
        assert!(
            app.read_doc("todos", id).await.is_none(),
            "{id} was carried"
        );
    }
    let (code, body) = health(&app).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "paused", "{body}");
    assert_eq!(body["queueSize"], 2, "{body}");
    assert!(
        body["syncLag"].as_f64().unwrap() >= 1.0,
        "lag is measured: {body}"
    );
    assert_eq!(body["paused"]["reason"], "MongoDB upgrade");
    assert!(app.metric("studysync_sync_paused").await >= 1.0);
    // Per kind: the todos wait, nothing else does.
    let kinds = body["byKind"].as_array().expect("byKind");
    let kind = |name: &str| kinds.iter().find(|k| k["kind"] == name).cloned();
    let todos = kind("todo").expect("todo figures");
    assert_eq!(todos["queueSize"], 2, "{body}");
    assert!(todos["syncLag"].as_f64().unwrap() >= 1.0, "{body}");
    assert_eq!(kind("message").expect("message figures")["queueSize"], 0);
    assert_eq!(kinds.len(), 6, "every kind is listed: {body}");
    let graphql = app
        .gql(
            Some(&user),
            "{ syncStatus { status byKind { kind queueSize syncLagSeconds } } }",
            json!({}),
        )
        .await;
    let listed = &graphql["data"]["syncStatus"]["byKind"];
    assert_eq!(listed[1]["kind"], "todo", "{graphql}");
    assert_eq!(listed[1]["queueSize"], 2, "{graphql}");
    let metrics = app.metrics_text().await;
    for name in [
        "studysync_sync_kind_queue_size{kind=\"todo\"}",
        "studysync_sync_kind_lag_seconds{kind=\"message\"}",
    ] {
        assert!(metrics.contains(name), "{name} is exported");
    }

    // The CLI resumes; the other process carries what waited.
    let resume = studysync::cli::WorkerAction::Resume;
    studysync::cli::worker(app.state.clone(), Some(resume))
        .await
        .expect("worker resume");
    wait_until(
        "the worker process carries the backlog",
        Duration::from_secs(20),
        || async {
            let mut all = true;
            for id in &ids {
                all &= app.read_doc("todos", id).await.is_some();
            }
            all
        },
    )
    .await;
    let (_, body) = health(&app).await;
    assert_eq!(body["status"], "healthy", "{body}");
    assert_eq!(body["paused"], Value::Null);

    // The CLI pauses too; the mutation resumes.
    let pause = studysync::cli::WorkerAction::Pause {
        reason: Some("again".into()),
    };
    studysync::cli::worker(app.state.clone(), Some(pause))
        .await
        .expect("worker pause");
    let third = create_todo(&app, &user, "three", false).await;
    assert_eq!(app.drain().await.claimed, 0);
    let (_, body) = health(&app).await;
    assert!(
        body["paused"]["by"].as_str().unwrap().starts_with("cli@"),
        "{body}"
    );
    let resumed = app.gql(Some(&admin), RESUME, json!({})).await;
    assert_eq!(
        resumed["data"]["resumeSync"]["paused"],
        Value::Null,
        "{resumed}"
    );
    wait_until(
        "the third todo is carried",
        Duration::from_secs(20),
        || async { app.read_doc("todos", &third).await.is_some() },
    )
    .await;
    assert_in_sync(&app).await;
}
