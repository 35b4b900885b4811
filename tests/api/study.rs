use serde_json::json;

use crate::helpers::{error_code, spawn_app};

const LOG: &str = "mutation($i: LogStudySessionInput!) { logStudySession(input: $i) { id subject minutes startedAt user { name } } }";

#[tokio::test]
async fn a_study_session_updates_every_period_total_in_the_same_transaction() {
    let app = spawn_app().await;
    let (token, id) = app.sign_up("s@example.org", "Sam").await;
    let body = app
        .gql(
            Some(&token),
            LOG,
            json!({"i": {"subject": "Maths", "minutes": 45, "startedAt": "2026-11-23T10:00:00Z"}}),
        )
        .await;
    assert_eq!(
        body["data"]["logStudySession"]["user"]["name"], "Sam",
        "{body}"
    );
    app.gql(
        Some(&token),
        LOG,
        json!({"i": {"subject": "Maths", "minutes": 15, "startedAt": "2026-11-24T10:00:00Z"}}),
    )
    .await;
    let week = app
        .count(&format!("SELECT minutes FROM study_totals WHERE user_id = '{id}' AND period = 'week' AND period_start = '2026-11-23'"))
        .await;
    assert_eq!(week, 60);
    let days = app
        .count(&format!(
            "SELECT count(*) FROM study_totals WHERE user_id = '{id}' AND period = 'day'"
        ))
        .await;
    assert_eq!(days, 2);
    let all_version = app
        .count(&format!(
            "SELECT version FROM study_totals WHERE user_id = '{id}' AND period = 'all'"
        ))
        .await;
    assert_eq!(all_version, 2);
    // one event for each session, and one per touched total
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE aggregate_type = 'study_session'")
            .await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE aggregate_type = 'study_total'")
            .await,
        8
    );
}

#[tokio::test]
async fn invalid_study_sessions_are_rejected_and_write_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("t@example.org", "Tess").await;
    for input in [
        json!({"subject": "Maths", "minutes": 0}),
        json!({"subject": "Maths", "minutes": 1441}),
        json!({"subject": "", "minutes": 10}),
        json!({"subject": "Maths", "minutes": 10, "startedAt": "2999-01-01T00:00:00Z"}),
    ] {
        let body = app.gql(Some(&token), LOG, json!({"i": input})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM study_sessions").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM study_totals").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE aggregate_type LIKE 'study%'")
            .await,
        0
    );
}

#[tokio::test]
async fn concurrent_sessions_of_one_user_are_all_counted_through_serialization_retries() {
    let app = spawn_app().await;
    let (token, id) = app.sign_up("c@example.org", "Cat").await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (http, url, token) = (app.http.clone(), app.url("/graphql"), token.clone());
        tasks.push(tokio::spawn(async move {
            let body: serde_json::Value = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"query": LOG, "variables": {"i": {"subject": "Physics", "minutes": i + 1}}}))
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            body
        }));
    }
    for task in tasks {
        let body = task.await.expect("task");
        assert!(
            body["errors"].is_null(),
            "a concurrent write failed: {body}"
        );
    }
    let total = app
        .count(&format!(
            "SELECT minutes FROM study_totals WHERE user_id = '{id}' AND period = 'all'"
        ))
        .await;
    assert_eq!(total, (1..=12).sum::<i64>());
    let version = app
        .count(&format!(
            "SELECT version FROM study_totals WHERE user_id = '{id}' AND period = 'all'"
        ))
        .await;
    assert_eq!(version, 12);
    let distinct_versions = app
        .count("SELECT count(DISTINCT aggregate_version) FROM outbox o JOIN study_totals t ON t.id = o.aggregate_id WHERE t.period = 'all'")
        .await;
    assert_eq!(
        distinct_versions, 12,
        "each committed total has its own version"
    );
}
