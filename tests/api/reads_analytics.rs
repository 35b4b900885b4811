//! Who may read which report, and the read model's indexes.
use serde_json::json;

use crate::{
    helpers::{error_code, spawn_app_with},
    reads_support::{log_study, spawn_read_app},
};

const STATS: &str = "query($u: ID, $f: DateTime, $t: DateTime) { studyStats(userId: $u, from: $f, to: $t) { totalMinutes } }";

#[tokio::test]
async fn only_admins_may_read_another_users_study_stats() {
    let app = spawn_app_with(&["--read-model-timeout-ms", "10000"]).await;
    let (student, student_id) = app.sign_up("student@example.org", "Stu").await;
    let (peer, _) = app.sign_up("peer@example.org", "Pat").await;
    let (boss, _) = app.sign_up("boss@example.org", "Bo").await;
    app.promote("boss@example.org").await;
    log_study(&app, &student, "Maths", 42, None).await;
    app.drain().await;
    let own = app
        .gql(Some(&student), STATS, json!({"u": student_id}))
        .await;
    assert_eq!(own["data"]["studyStats"]["totalMinutes"], 42, "{own}");
    let peek = app.gql(Some(&peer), STATS, json!({"u": student_id})).await;
    assert_eq!(error_code(&peek), "FORBIDDEN", "{peek}");
    let admin = app.gql(Some(&boss), STATS, json!({"u": student_id})).await;
    assert_eq!(admin["data"]["studyStats"]["totalMinutes"], 42, "{admin}");
    let anonymous = app.gql(None, STATS, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
}

#[tokio::test]
async fn a_range_that_ends_before_it_starts_is_bad_user_input() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("r@example.org", "Ray").await;
    let body = app
        .gql(
            Some(&token),
            STATS,
            json!({"f": "2026-02-01T00:00:00Z", "t": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn read_model_indexes_are_created_once_and_creating_them_again_changes_nothing() {
    let app = spawn_read_app().await;
    let db = app.state.read_model();
    studysync::read::mongo::ensure_indexes(db)
        .await
        .expect("second run");
    for (collection, index) in [
        ("messages", "room_history"),
        ("messages", "search_words"),
        ("users", "search_prefixes"),
        ("study_totals", "board"),
        ("study_sessions", "user_started"),
        ("todos", "user_created"),
    ] {
        let names = db
            .collection::<mongodb::bson::Document>(collection)
            .list_index_names()
            .await
            .expect("list indexes");
        assert!(names.iter().any(|n| n == index), "{collection}: {names:?}");
    }
}
