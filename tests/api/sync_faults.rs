//! Real faults: the MongoDB server killed and restarted, the worker task
//! aborted mid-batch, worker processes killed with SIGKILL, several worker
//! processes on one outbox.
use std::time::Duration;

use serde_json::Value;

use crate::{
    helpers::{mongo_uri, spawn_app, spawn_app_with_mongo, wait_until, TestApp},
    sync_support::{
        assert_in_sync, burst, spawn_worker_process, terminate, unprocessed, wait_for_empty_outbox,
        MongoServer,
    },
};

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app
        .http
        .get(app.url("/api/health/sync"))
        .send()
        .await
        .expect("health");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

async fn claimed(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL AND processed_at IS NULL")
        .await
}

/// Waits (bounded) until some worker holds a claim.
async fn wait_for_a_claim(app: &TestApp) {
    wait_until(
        "a worker to claim an event",
        Duration::from_secs(10),
        || async { claimed(app).await > 0 },
    )
    .await;
}

#[tokio::test]
async fn with_mongodb_down_mutations_succeed_the_backlog_grows_health_degrades_and_it_drains_after_restart(
) {
    let mut mongo = MongoServer::start().await;
    let app = spawn_app_with_mongo(
        &mongo.uri(),
        &[
            "--sync-backoff-base-ms",
            "50",
            "--sync-backoff-max-ms",
            "400",
            "--sync-lag-degraded-secs",
            "0.5",
            "--sync-lag-unhealthy-secs",
            "1",
            // Any parkable failure would park at once: an outage must not.
            "--sync-park-after",
            "1",
        ],
    )
    .await;
    let _worker = app.start_worker();
    burst(&app, "up", 1).await;
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;

    mongo.stop().await;
    // Every mutation still succeeds (burst panics on any error).
    burst(&app, "down", 2).await;
    let backlog = unprocessed(&app).await;
    assert!(backlog > 0, "the events wait in the outbox");
    burst(&app, "down-more", 1).await;
    assert!(
        unprocessed(&app).await > backlog,
        "the backlog grows while MongoDB is down"
    );

    let mut last = (0, Value::Null);
    // Health turns unhealthy on lag first, and shows the failures once the
    // first attempts have timed out; failed events are retried.
    for _ in 0..300 {
        last = health(&app).await;
        let retried = app.count("SELECT max(attempts)::INT8 FROM outbox").await > 1;
        if last.0 == 503 && last.1["errorRate"].as_f64().unwrap_or(0.0) > 0.05 && retried {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = last;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unhealthy")),
        "{body}"
    );
    assert!(body["errorRate"].as_f64().unwrap_or(0.0) > 0.05, "{body}");
    assert!(body["queueSize"].as_i64().unwrap_or(0) >= backlog, "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL")
            .await,
        0,
        "an outage never parks events"
    );

    mongo.restart().await;
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    assert_in_sync(&app).await;
    let (_, body) = health(&app).await;
    assert_eq!(
        (body["queueSize"].as_i64(), body["syncLag"].as_f64()),
        (Some(0), Some(0.0)),
        "{body}"
    );
}

#[tokio::test]
async fn a_worker_task_aborted_mid_batch_is_made_good_by_the_next_worker() {
    let mut mongo = MongoServer::start().await;
    let app = spawn_app_with_mongo(&mongo.uri(), &["--sync-lease-ms", "1000"]).await;
    burst(&app, "abort", 2).await;
    // With MongoDB gone the batch hangs in the apply step, after its claim.
    mongo.stop().await;
    let worker = app.start_worker();
    wait_for_a_claim(&app).await;
    worker.task.abort();
    drop(worker);
    assert!(
        claimed(&app).await > 0,
        "the aborted batch still holds its claims"
    );

    mongo.restart().await;
    let _next = app.start_worker();
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    assert_eq!(claimed(&app).await, 0);
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn a_worker_process_killed_with_sigkill_is_made_good_by_another_process() {
    let mut mongo = MongoServer::start().await;
    let app = spawn_app_with_mongo(&mongo.uri(), &[]).await;
    burst(&app, "kill", 2).await;
    mongo.stop().await;
    let mut victim = spawn_worker_process(&app, &mongo.uri(), &[("SYNC_LEASE_MS", "1500")]);
    wait_for_a_claim(&app).await;
    victim.start_kill().expect("SIGKILL");
    victim.wait().await.expect("reaped");
    assert!(
        claimed(&app).await > 0,
        "a killed process cannot release its claims"
    );

    mongo.restart().await;
    let mut successor = spawn_worker_process(&app, &mongo.uri(), &[]);
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    terminate(&successor);
    successor.wait().await.ok();
    assert_eq!(claimed(&app).await, 0);
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn a_worker_process_stopped_with_sigterm_releases_its_claims() {
    let mut mongo = MongoServer::start().await;
    let app = spawn_app_with_mongo(&mongo.uri(), &[]).await;
    burst(&app, "term", 1).await;
    mongo.stop().await;
    let mut worker = spawn_worker_process(&app, &mongo.uri(), &[]);
    wait_for_a_claim(&app).await;
    terminate(&worker);
    let status = worker.wait().await.expect("exit status");
    assert!(
        status.success(),
        "the worker exits cleanly on SIGTERM: {status}"
    );
    assert_eq!(claimed(&app).await, 0, "no claim outlives the worker");
    let due = app
        .count(
            "SELECT count(*) FROM outbox WHERE processed_at IS NULL AND next_attempt_at <= now()",
        )
        .await;
    assert_eq!(
        due,
        unprocessed(&app).await,
        "released events are due at once"
    );
}

#[tokio::test]
async fn three_worker_processes_on_one_outbox_process_every_event_under_writes() {
    let app = spawn_app().await;
    let env = [("SYNC_BATCH_SIZE", "7")];
    let mut workers: Vec<_> = (0..3)
        .map(|_| spawn_worker_process(&app, &mongo_uri(), &env))
        .collect();
    for round in 0..3 {
        burst(&app, &format!("three{round}-"), 2).await;
    }
    wait_for_empty_outbox(&app, Duration::from_secs(90)).await;
    for worker in &workers {
        terminate(worker);
    }
    for worker in &mut workers {
        assert!(worker.wait().await.expect("exit").success());
    }
    assert_eq!(claimed(&app).await, 0);
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn an_outage_during_a_backlog_leaves_no_claim_ahead_behind_and_parks_nothing() {
    let mut mongo = MongoServer::start().await;
    let app = spawn_app_with_mongo(
        &mongo.uri(),
        &[
            "--sync-batch-size",
            "2",
            "--sync-batch-max",
            "8",
            "--sync-backoff-base-ms",
            "50",
            "--sync-backoff-max-ms",
            "200",
            "--sync-poll-interval-ms",
            "100",
        ],
    )
    .await;
    burst(&app, "ahead", 2).await;
    const RELEASED: &str = "studysync_sync_claims_released_total";
    let released_before = app.metric(RELEASED).await;
    // MongoDB goes down with a backlog waiting: the worker's first claim
    // comes back full, so it claims the next batch ahead while it carries
    // the first, which fails.
    mongo.stop().await;
    let worker = app.start_worker();
    // The failure is recorded on the first batch while the claim ahead may
    // still be on its way (slower on a loaded machine): wait for both, the
    // failure and the release that follows it, before stopping the worker.
    wait_until(
        "the failed carry and the release of the batch claimed ahead",
        Duration::from_secs(30),
        || async {
            app.count("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL")
                .await
                > 0
                && app.metric(RELEASED).await > released_before
        },
    )
    .await;
    worker.stop().await;
    assert_eq!(claimed(&app).await, 0, "nothing stays claimed");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL")
            .await,
        0
    );
    mongo.restart().await;
    let _worker = app.start_worker();
    wait_for_empty_outbox(&app, Duration::from_secs(60)).await;
    assert_in_sync(&app).await;
}
