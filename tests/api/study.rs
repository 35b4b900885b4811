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

const UPDATE: &str = "mutation($id: ID!, $i: UpdateStudySessionInput!) { updateStudySession(id: $id, input: $i) { id subject minutes startedAt } }";
const DELETE: &str = "mutation($id: ID!) { deleteStudySession(id: $id) }";
const BOARDS: &str = r#"query($past: DateTime!) {
  week: leaderboard(period: WEEK) { edges { node { rank minutes user { name } } } }
  pastWeek: leaderboard(period: WEEK, at: $past) { edges { node { rank minutes user { name } } } }
  allTime: leaderboard(period: ALL_TIME) { edges { node { rank minutes user { name } } } }
  myRank(period: WEEK) { rank minutes }
  studyStats { totalMinutes sessions bySubject { subject minutes } }
  dashboard(period: ALL_TIME) { activeUsers totalMinutes sessions }
}"#;

fn names(body: &serde_json::Value, board: &str) -> Vec<(String, i64)> {
    body["data"][board]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| {
            let node = &e["node"];
            let name = node["user"]["name"].as_str().unwrap_or_default().to_owned();
            (name, node["minutes"].as_i64().unwrap_or(-1))
        })
        .collect()
}

/// The same boards from MongoDB (after the worker ran) and from the
/// CockroachDB fallback.
async fn boards_from_both(
    app: &crate::helpers::TestApp,
    fallback: &crate::helpers::TestApp,
    token: &str,
    past: &str,
) -> serde_json::Value {
    app.drain().await;
    crate::reads_support::same_from_both(app, fallback, token, BOARDS, json!({"past": past})).await
}

#[tokio::test]
async fn a_corrected_session_moves_between_buckets_and_a_deleted_one_leaves_every_board() {
    let app = crate::reads_support::spawn_read_app().await;
    let fallback = crate::reads_support::without_mongo(&app).await;
    let (sam, sam_id) = app.sign_up("sam@example.org", "Sam").await;
    let (ana, _) = app.sign_up("ana@example.org", "Ana").await;
    let logged = crate::reads_support::log_study(&app, &sam, "Maths", 600, None).await;
    let session = logged["data"]["logStudySession"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    crate::reads_support::log_study(&app, &ana, "Art", 60, None).await;
    let past = "2026-11-02T10:00:00Z";
    let before = boards_from_both(&app, &fallback, &sam, past).await;
    assert_eq!(
        names(&before, "week"),
        [("Sam".to_owned(), 600), ("Ana".to_owned(), 60)]
    );

    // 600 was a typo for 60, and it was studied four weeks ago.
    let body = app
        .gql(
            Some(&sam),
            UPDATE,
            json!({"id": session, "i": {"minutes": 60, "startedAt": past, "subject": "Algebra"}}),
        )
        .await;
    assert_eq!(
        body["data"]["updateStudySession"],
        json!({"id": session, "subject": "Algebra", "minutes": 60, "startedAt": "2026-11-02T10:00:00+00:00"}),
        "{body}"
    );
    // The current day, week and month lost the session; the old ones and
    // all time have it.
    let buckets = app
        .count(&format!(
            "SELECT count(*) FROM study_totals WHERE user_id = '{sam_id}'"
        ))
        .await;
    assert_eq!(buckets, 4, "one day, week, month and all time");
    let moved = boards_from_both(&app, &fallback, &sam, past).await;
    assert_eq!(names(&moved, "week"), [("Ana".to_owned(), 60)]);
    assert_eq!(names(&moved, "pastWeek"), [("Sam".to_owned(), 60)]);
    // A tie: equal minutes are ordered by user id.
    let mut all_time = names(&moved, "allTime");
    all_time.sort();
    assert_eq!(all_time, [("Ana".to_owned(), 60), ("Sam".to_owned(), 60)]);
    assert_eq!(moved["data"]["myRank"], serde_json::Value::Null);
    assert_eq!(
        moved["data"]["studyStats"],
        json!({"totalMinutes": 60, "sessions": 1, "bySubject": [{"subject": "Algebra", "minutes": 60}]})
    );

    let body = app.gql(Some(&sam), DELETE, json!({"id": session})).await;
    assert_eq!(body["data"]["deleteStudySession"], json!(session), "{body}");
    let buckets = app
        .count(&format!(
            "SELECT count(*) FROM study_totals WHERE user_id = '{sam_id}'"
        ))
        .await;
    assert_eq!(buckets, 0, "a total with no session left is deleted");
    let gone = boards_from_both(&app, &fallback, &sam, past).await;
    assert_eq!(names(&gone, "pastWeek"), Vec::<(String, i64)>::new());
    assert_eq!(names(&gone, "allTime"), [("Ana".to_owned(), 60)]);
    assert_eq!(
        gone["data"]["studyStats"],
        json!({"totalMinutes": 0, "sessions": 0, "bySubject": []})
    );
    assert_eq!(
        gone["data"]["dashboard"],
        json!({"activeUsers": 1, "totalMinutes": 60, "sessions": 1})
    );
    let doc = app
        .read_doc("study_sessions", &session)
        .await
        .expect("tombstone");
    assert_eq!(doc.get_bool("deleted"), Ok(true));
    crate::sync_support::assert_in_sync(&app).await;
}

#[tokio::test]
async fn only_the_owner_corrects_a_session_and_bad_corrections_write_nothing() {
    let app = spawn_app().await;
    let (sam, _) = app.sign_up("sam@example.org", "Sam").await;
    let (eve, _) = app.sign_up("eve@example.org", "Eve").await;
    let logged = app
        .gql(
            Some(&sam),
            LOG,
            json!({"i": {"subject": "Maths", "minutes": 45, "startedAt": "2026-11-23T10:00:00Z"}}),
        )
        .await;
    let session = logged["data"]["logStudySession"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let events = app.count("SELECT count(*) FROM outbox").await;
    let cases = [
        (
            Some(&eve),
            UPDATE,
            json!({"id": session, "i": {"minutes": 1}}),
            "FORBIDDEN",
        ),
        (Some(&eve), DELETE, json!({"id": session}), "FORBIDDEN"),
        (None, DELETE, json!({"id": session}), "UNAUTHENTICATED"),
        (
            Some(&sam),
            DELETE,
            json!({"id": uuid::Uuid::new_v4()}),
            "NOT_FOUND",
        ),
        (Some(&sam), DELETE, json!({"id": "nope"}), "BAD_USER_INPUT"),
        (
            Some(&sam),
            UPDATE,
            json!({"id": session, "i": {"minutes": 0}}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&sam),
            UPDATE,
            json!({"id": session, "i": {"subject": " "}}),
            "BAD_USER_INPUT",
        ),
        (
            Some(&sam),
            UPDATE,
            json!({"id": session, "i": {"startedAt": "2999-01-01T00:00:00Z"}}),
            "BAD_USER_INPUT",
        ),
    ];
    for (token, query, vars, code) in cases {
        let body = app
            .gql(token.map(String::as_str), query, vars.clone())
            .await;
        assert_eq!(error_code(&body), code, "{vars}: {body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, events);
    assert_eq!(
        app.count("SELECT sum(minutes)::INT8 FROM study_totals")
            .await,
        4 * 45
    );
    // An update that changes only the subject leaves the totals alone.
    let body = app
        .gql(
            Some(&sam),
            UPDATE,
            json!({"id": session, "i": {"subject": "Physics"}}),
        )
        .await;
    assert_eq!(body["data"]["updateStudySession"]["subject"], "Physics");
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, events + 1);
    assert_eq!(
        app.count("SELECT max(version) FROM study_totals").await,
        1,
        "no total was rewritten"
    );
}
