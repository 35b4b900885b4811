//! `studysync seed`: demo data that is consistent, complete and usable.
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::json;
use studysync::{
    domain::Period,
    seed::{seed, SeedArgs, DEMO_PASSWORD},
};

use crate::helpers::spawn_app;

fn small() -> SeedArgs {
    SeedArgs {
        users: 40,
        sessions: 600,
        todos: 120,
        rooms: 3,
        messages: 90,
        months: 3,
        batch: 15,
        rng_seed: 7,
    }
}

#[tokio::test]
async fn seeded_study_totals_equal_the_sessions_in_every_period_bucket() {
    let app = spawn_app().await;
    seed(app.state.writer(), &small(), |_| {}).await.unwrap();

    let sessions = app
        .sql()
        .query_all(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT user_id::text, minutes, started_at FROM study_sessions",
        ))
        .await
        .unwrap();
    let mut expected: HashMap<(String, &str, NaiveDate), (i64, i64)> = HashMap::new();
    for row in &sessions {
        let user: String = row.try_get_by_index(0).unwrap();
        let minutes: i32 = row.try_get_by_index(1).unwrap();
        let started: DateTime<Utc> = row.try_get_by_index(2).unwrap();
        for period in Period::ALL {
            let entry = expected
                .entry((user.clone(), period.key(), period.bucket_start(started)))
                .or_default();
            entry.0 += i64::from(minutes);
            entry.1 += 1;
        }
    }
    let totals = app
        .sql()
        .query_all(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT user_id::text, period, period_start, minutes, sessions, version FROM study_totals",
        ))
        .await
        .unwrap();
    let mut actual = HashMap::new();
    for row in &totals {
        let user: String = row.try_get_by_index(0).unwrap();
        let period: String = row.try_get_by_index(1).unwrap();
        let start: NaiveDate = row.try_get_by_index(2).unwrap();
        let minutes: i64 = row.try_get_by_index(3).unwrap();
        let count: i64 = row.try_get_by_index(4).unwrap();
        let version: i64 = row.try_get_by_index(5).unwrap();
        assert_eq!(version, count, "a bucket's version counts its sessions");
        let key = Period::ALL
            .into_iter()
            .map(Period::key)
            .find(|k| *k == period)
            .unwrap();
        actual.insert((user, key, start), (minutes, count));
    }
    assert_eq!(sessions.len(), 600);
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn every_seeded_row_has_its_outbox_event_waiting_for_the_worker() {
    let app = spawn_app().await;
    let report = seed(app.state.writer(), &small(), |_| {}).await.unwrap();

    for (aggregate, table) in [
        ("user", "users"),
        ("todo", "todos"),
        ("study_session", "study_sessions"),
        ("study_total", "study_totals"),
        ("room", "rooms"),
        ("message", "messages"),
    ] {
        let missing = app
            .count(&format!(
                "SELECT count(*) FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM outbox AS o \
                 WHERE o.aggregate_type = '{aggregate}' AND o.aggregate_id = t.id \
                 AND o.aggregate_version = t.version AND o.processed_at IS NULL)"
            ))
            .await;
        assert_eq!(missing, 0, "{table} rows without a pending event");
    }
    let events = app.count("SELECT count(*) FROM outbox").await;
    assert_eq!(events as usize, report.events);
    let leaked = app
        .count("SELECT count(*) FROM outbox WHERE payload ? 'password_hash' OR payload ? 'role'")
        .await;
    assert_eq!(leaked, 0, "no secret in an event payload");
}

#[tokio::test]
async fn a_seeded_account_logs_in_with_the_demo_password_and_sees_its_own_data() {
    let app = spawn_app().await;
    seed(app.state.writer(), &small(), |_| {}).await.unwrap();
    let owned = app
        .count("SELECT count(*) FROM todos t JOIN users u ON u.id = t.user_id WHERE u.email = 'user0@example.com'")
        .await;
    assert!(owned > 0, "the fixture gives user0 some todos");

    let login = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }",
            json!({ "e": "user0@example.com", "p": DEMO_PASSWORD }),
        )
        .await;
    let token = login["data"]["logIn"]["token"].as_str().unwrap();
    let page = app
        .gql(
            Some(token),
            "{ me { email } todos(first: 100) { edges { node { owner { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(page["data"]["me"]["email"], "user0@example.com");
    let edges = page["data"]["todos"]["edges"].as_array().unwrap();
    assert_eq!(edges.len() as i64, owned);
}
