//! The sync worker carries every committed write into MongoDB, and its
//! health says how far behind it is.
use std::time::Duration;

use mongodb::bson::{doc, Document};
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::{
    helpers::{error_code, spawn_app, spawn_app_with, wait_until, TestApp},
    reads_support::create_todo,
    sync_support::{assert_in_sync, burst, unprocessed, wait_for_empty_outbox},
};

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app
        .http
        .get(app.url("/api/health/sync"))
        .send()
        .await
        .expect("health");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn after_a_burst_of_mixed_mutations_the_read_model_equals_the_source() {
    let app = spawn_app().await;
    burst(&app, "b", 3).await;
    let outcome = app.drain().await;
    assert!(outcome.applied > 0 && outcome.failed == 0, "{outcome:?}");
    assert_eq!(unprocessed(&app).await, 0);
    assert_in_sync(&app).await;

    let users = app.state.read_model().collection::<Document>("users");
    let user = users
        .find_one(doc! {})
        .await
        .expect("read")
        .expect("a user document");
    assert!(
        user.get("password_hash").is_none() && user.get("role").is_none(),
        "no secret reaches MongoDB: {user}"
    );
    let deleted = app
        .state
        .read_model()
        .collection::<Document>("todos")
        .count_documents(doc! {"deleted": true})
        .await
        .expect("count");
    assert_eq!(deleted, 3, "each deleted todo leaves a tombstone");
}

#[tokio::test]
async fn the_in_process_worker_applies_a_commit_without_being_asked() {
    let app = spawn_app_with(&["--sync-poll-interval-ms", "60000"]).await;
    let _worker = app.start_worker();
    let (token, _) = app.sign_up("w@example.org", "Wanda").await;
    let body = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"fresh\"}) { id } }",
            json!({}),
        )
        .await;
    let id = body["data"]["createTodo"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The poll is a minute away: only the commit's wake-up can bring it.
    let (app_ref, id_ref) = (&app, &id);
    wait_until(
        "the todo to reach the read model",
        Duration::from_secs(20),
        move || async move { app_ref.read_doc("todos", id_ref).await.is_some() },
    )
    .await;
    let doc = app
        .read_doc("todos", &id)
        .await
        .expect("the todo's document");
    assert_eq!(doc.get_str("title").expect("title"), "fresh");
    assert_eq!(doc.get_i64("version").expect("version"), 1);
}

/// A commit after a quiet spell is claimed at once; commits that follow
/// within the wake gap wait for it and go to MongoDB in one batch.
#[tokio::test]
async fn commits_within_the_wake_gap_are_carried_in_one_batch() {
    let app = spawn_app_with(&[
        "--sync-poll-interval-ms",
        "60000",
        "--sync-wake-gap-ms",
        "5000",
    ])
    .await;
    let _worker = app.start_worker();
    let (token, _) = app.sign_up("gap@example.org", "Gap").await;
    let app_ref = &app;
    let processed = |kind: &'static str| async move {
        app_ref
            .count(&format!(
                "SELECT count(*) FROM outbox WHERE aggregate_type = '{kind}' AND processed_at IS NOT NULL"
            ))
            .await
    };
    wait_until(
        "the account's event to be processed",
        Duration::from_secs(20),
        move || async move { processed("user").await > 0 },
    )
    .await;
    let first_lag_ms = app
        .count(
            "SELECT (EXTRACT(EPOCH FROM max(processed_at - created_at)) * 1000)::BIGINT \
             FROM outbox WHERE aggregate_type = 'user'",
        )
        .await;
    assert!(
        first_lag_ms < 2_500,
        "the first commit after a quiet spell waited {first_lag_ms} ms"
    );

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create_todo(&app, &token, &format!("gathered {i}"), false).await);
    }
    wait_until(
        "the todos' events to be processed",
        Duration::from_secs(30),
        move || async move { processed("todo").await == 5 },
    )
    .await;
    for id in &ids {
        assert!(
            app.read_doc("todos", id).await.is_some(),
            "todo {id} in MongoDB"
        );
    }
    let batches = app
        .count("SELECT count(DISTINCT processed_at) FROM outbox WHERE aggregate_type = 'todo'")
        .await;
    assert_eq!(batches, 1, "five commits within the gap, one batch");
    let waited_ms = app
        .count(
            "SELECT (EXTRACT(EPOCH FROM min(t.processed_at) - max(u.processed_at)) * 1000)::BIGINT \
             FROM outbox t, outbox u WHERE t.aggregate_type = 'todo' AND u.aggregate_type = 'user'",
        )
        .await;
    assert!(
        waited_ms >= 4_000,
        "the batch was claimed {waited_ms} ms after the previous one, within the gap"
    );
}

#[tokio::test]
async fn health_turns_unhealthy_while_events_wait_and_healthy_once_applied() {
    let app = spawn_app_with(&[
        "--sync-lag-degraded-secs",
        "0.1",
        "--sync-lag-unhealthy-secs",
        "0.3",
    ])
    .await;
    let (status, body) = health(&app).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("healthy")),
        "{body}"
    );

    // No worker runs: a stuck worker must not look healthy.
    burst(&app, "h", 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = health(&app).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unhealthy")),
        "{body}"
    );
    assert!(body["queueSize"].as_i64().unwrap_or(0) > 0, "{body}");
    assert!(body["syncLag"].as_f64().unwrap_or(0.0) >= 0.3, "{body}");
    assert!(body["lastSync"].is_null(), "{body}");

    app.drain().await;
    let (status, body) = health(&app).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("healthy")),
        "{body}"
    );
    assert_eq!(body["queueSize"], 0);
    assert_eq!(body["syncLag"], 0.0);
    assert_eq!(body["parked"], 0);
    assert_eq!(body["errorRate"], 0.0);
    assert!(body["lastSync"].is_string(), "{body}");
}

#[tokio::test]
async fn sync_status_over_graphql_reports_the_same_figures() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("s@example.org", "Sam").await;
    let query = "{ syncStatus { status syncLagSeconds queueSize errorRate lastSync parked } }";
    let before = app.gql(Some(&token), query, json!({})).await;
    assert_eq!(before["data"]["syncStatus"]["queueSize"], 1, "{before}");
    app.drain().await;
    let after = app.gql(None, query, json!({})).await;
    let status = &after["data"]["syncStatus"];
    assert_eq!(status["status"], "healthy", "{after}");
    assert_eq!(status["queueSize"], 0);
    assert_eq!(status["parked"], 0);
    assert_eq!(status["syncLagSeconds"], 0.0);
    assert!(status["lastSync"].is_string(), "{after}");
}

#[tokio::test]
async fn only_admins_may_replay_parked_events_or_start_a_resync() {
    let app = spawn_app().await;
    let (user, _) = app.sign_up("u@example.org", "Uma").await;
    let (admin, _) = app.sign_up("boss@example.org", "Boss").await;
    app.promote("boss@example.org").await;
    for mutation in [
        "mutation { replayParkedEvents }",
        "mutation { startResync }",
    ] {
        assert_eq!(
            error_code(&app.gql(Some(&user), mutation, json!({})).await),
            "FORBIDDEN"
        );
        assert_eq!(
            error_code(&app.gql(None, mutation, json!({})).await),
            "UNAUTHENTICATED"
        );
    }
    let replayed = app
        .gql(Some(&admin), "mutation { replayParkedEvents }", json!({}))
        .await;
    assert_eq!(replayed["data"]["replayParkedEvents"], 0, "{replayed}");

    // The admin's resync rebuilds the read model in the background.
    let started = app
        .gql(Some(&admin), "mutation { startResync }", json!({}))
        .await;
    assert_eq!(started["data"]["startResync"], true, "{started}");
    let users = &app.state.read_model().collection::<Document>("users");
    wait_until(
        "the resync to write the users",
        Duration::from_secs(30),
        move || async move { users.count_documents(doc! {}).await.expect("count") >= 2 },
    )
    .await;
}

#[tokio::test]
async fn metrics_count_applied_events_and_expose_the_queue() {
    let app = spawn_app().await;
    const APPLIED: &str = "studysync_sync_events_applied_total";
    let applied_before = app.metric(APPLIED).await;
    app.sign_up("m@example.org", "Mia").await;
    let applied = app.drain().await.applied;
    assert!(applied >= 1, "the sign-up's event was applied");
    // Other tests share the recorder: the counter grew by at least ours.
    assert!(app.metric(APPLIED).await >= applied_before + applied as f64);
    app.http
        .get(app.url("/api/health/sync"))
        .send()
        .await
        .expect("health");
    let text = app.metrics_text().await;
    for name in [
        "studysync_sync_events_applied_total",
        "studysync_sync_lag_seconds_bucket",
        "studysync_sync_batch_size",
        "studysync_sync_batch_duration_seconds",
        "studysync_sync_queue_size",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn a_gracefully_stopped_worker_leaves_no_claim_behind() {
    let app = spawn_app().await;
    let worker = app.start_worker();
    burst(&app, "g", 2).await;
    worker.stop().await;
    let claimed = app
        .count("SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL AND processed_at IS NULL")
        .await;
    assert_eq!(claimed, 0);
}

#[tokio::test]
async fn retention_deletes_old_processed_events_in_small_batches_and_keeps_pending_ones() {
    let app = spawn_app().await;
    burst(&app, "ret", 1).await;
    app.drain().await;
    let processed = app.count("SELECT count(*) FROM outbox").await;
    app.sign_up("late@example.org", "Late").await;
    app.sql()
        .execute_unprepared("UPDATE outbox SET processed_at = processed_at - INTERVAL '8 days' WHERE processed_at IS NOT NULL")
        .await
        .expect("age the processed events");
    let settings = studysync::sync::settings::WorkerSettings {
        retention_batch: 4,
        ..app.state.config().sync.clone()
    };
    let deleted = studysync::sync::outbox::purge_processed(app.sql(), &settings)
        .await
        .expect("purge");
    assert_eq!(deleted as i64, processed);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        1,
        "the pending event stays"
    );
}

#[tokio::test]
async fn a_backlog_goes_out_in_growing_batches_each_event_claimed_once() {
    let app = spawn_app_with(&["--sync-batch-size", "2", "--sync-batch-max", "8"]).await;
    burst(&app, "grow", 3).await;
    let backlog = unprocessed(&app).await;
    assert!(backlog > 30, "a backlog of {backlog}");
    let worker = app.start_worker();
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    worker.stop().await;
    assert_in_sync(&app).await;
    // One batch is marked processed by one statement: one `processed_at`.
    let largest = app
        .count("SELECT max(n) FROM (SELECT count(*) AS n FROM outbox GROUP BY processed_at) b")
        .await;
    assert_eq!(
        largest, 8,
        "claims grow from 2 up to the maximum, no further"
    );
    let again = app
        .count("SELECT count(*) FROM outbox WHERE attempts <> 1")
        .await;
    assert_eq!(again, 0, "claiming ahead never claims an event twice");
}

#[tokio::test]
async fn a_worker_whose_lease_ran_out_cannot_undo_or_repeat_the_work_of_the_worker_that_took_over()
{
    let app = spawn_app().await;
    burst(&app, "lease", 3).await;
    let pending = unprocessed(&app).await;
    assert!(pending > 0);
    // Worker A claims everything with a lease that runs out at once, and
    // stalls (it is still alive, holding its batch).
    let mut slow = app.state.config().sync.clone();
    slow.worker_id = "slow-worker".into();
    slow.lease_ms = 1;
    let taken = studysync::sync::outbox::claim(app.sql(), app.state.dialect(), &slow, 1_000)
        .await
        .expect("A claims");
    assert_eq!(taken.len() as i64, pending);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Worker B finds the expired leases due, applies and completes them.
    let done = app.drain().await;
    assert_eq!(
        done.claimed as i64, pending,
        "B took over every expired claim"
    );
    assert_eq!(unprocessed(&app).await, 0);

    // A wakes up. Its failure report changes nothing: the rows are B's work,
    // processed, and neither retried nor parked.
    let ids: Vec<uuid::Uuid> = taken.iter().map(|e| e.id).collect();
    let parked = studysync::sync::outbox::fail(app.sql(), &slow, &ids, "late failure", true)
        .await
        .expect("A's late failure");
    assert_eq!(parked, 0);
    assert_eq!(unprocessed(&app).await, 0);
    // Its late completion is true (B applied them) and changes nothing either.
    studysync::sync::outbox::complete(app.sql(), &ids)
        .await
        .expect("A's late completion");
    assert_eq!(unprocessed(&app).await, 0);
    assert_eq!(app.drain().await.claimed, 0, "nothing is claimed twice");
    assert_in_sync(&app).await;
}
