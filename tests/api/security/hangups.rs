//! Cancellation: clients that hang up mid-request and tasks aborted inside a
//! transaction leave no session of the server's database inside a
//! transaction, and every committed write keeps its outbox event.
use std::time::Duration;

use rand::Rng;
use sea_orm::{
    AccessMode, ConnectionTrait, Database, DatabaseConnection, IsolationLevel, Statement,
    TransactionTrait,
};
use serde_json::json;

use crate::{
    helpers::{spawn_app_with, TestApp},
    sync_support::assert_in_sync,
};

const CREATE_TODO: &str = "mutation($t: String!) { createTodo(input: {title: $t}) { id } }";

/// Waits until the server's pool has every connection back (no request or
/// transaction still running), bounded by a number of looks: a minute, since
/// on a loaded machine the connections of requests dropped mid-statement
/// come back only after their statements (and the release check) finish.
async fn wait_until_pool_is_idle(app: &TestApp) {
    for _ in 0..6_000 {
        let pool = app.sql().occupancy();
        if pool.idle == pool.open as usize {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let activity = app
        .sql()
        .query_all(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT coalesce(state, '') || ' | ' || coalesce(wait_event_type, '') || ':' || \
             coalesce(wait_event, '') || ' | ' || left(query, 120) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .await
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.try_get_by_index::<String>(0).ok())
                .collect::<Vec<_>>()
        });
    let pool = app.sql().occupancy();
    panic!(
        "the pool never became idle: {} of {} connections idle; sessions: {activity:#?}",
        pool.idle, pool.open
    );
}

/// Sessions of the app's database sitting inside a transaction, seen from a
/// connection of the test's own (excluded).
async fn sessions_in_transaction(observer: &DatabaseConnection) -> i64 {
    let row = observer
        .query_one(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'",
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("count")
}

/// [`sessions_in_transaction`] once it is 0 or has stayed above for 5 s: a
/// transaction whose borrower was dropped during `BEGIN` still ends (is
/// rolled back) a moment later, while one pooled inside it stays open.
async fn settled_sessions_in_transaction(observer: &DatabaseConnection) -> i64 {
    let mut open = 0;
    for _ in 0..500 {
        open = sessions_in_transaction(observer).await;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open
}

/// Statements run through the app's pool outside any transaction: each one
/// is the first statement of its own, so it starts when its transaction does.
async fn pooled_statements_run_outside_transactions(app: &TestApp, n: usize) -> usize {
    let mut outside = 0;
    for _ in 0..n {
        // A simple query: its start is its transaction's start unless a
        // block was already open, and then it fails.
        let probe = app
            .sql()
            .execute_unprepared(
                "DO $$ BEGIN IF transaction_timestamp() <> statement_timestamp() THEN \
                 RAISE EXCEPTION 'inside a transaction block'; END IF; END $$",
            )
            .await;
        if probe.is_ok() {
            outside += 1;
        }
    }
    outside
}

#[tokio::test]
async fn clients_hanging_up_mid_mutation_under_load_leave_no_session_in_a_transaction_and_no_drift()
{
    // The database's own idle limit is off here, so only the server's
    // defences can end a leaked transaction.
    let app = spawn_app_with(&["--database-idle-in-transaction-timeout-ms", "0"]).await;
    let (token, _) = app.sign_up("hangup@example.com", "Hang Up").await;
    let observer = Database::connect(&app.database_url)
        .await
        .expect("observer");
    let mut answered = Vec::new();
    let mut hung_up = 0;
    for burst in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..48 {
            let http = reqwest::Client::new();
            let url = app.url("/graphql");
            let token = token.clone();
            // Each client gives up at a random point: before sending, during
            // BEGIN, mid-transaction, or not at all.
            let patience = Duration::from_micros(rand::thread_rng().gen_range(0..40_000));
            tasks.push(tokio::spawn(async move {
                let send = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "query": CREATE_TODO, "variables": { "t": format!("b{burst}-{i}") } }))
                    .send();
                match tokio::time::timeout(patience, send).await {
                    Ok(Ok(response)) => response.json::<serde_json::Value>().await.ok(),
                    _ => None,
                }
            }));
        }
        for task in tasks {
            match task.await.expect("client task") {
                Some(body) => answered.push(body),
                None => hung_up += 1,
            }
        }
    }
    wait_until_pool_is_idle(&app).await;

    assert!(hung_up > 0, "some clients must have hung up");
    assert_eq!(sessions_in_transaction(&observer).await, 0);
    assert_eq!(
        pooled_statements_run_outside_transactions(&app, 20).await,
        20
    );
    // The server still answers, and what it answered was committed.
    let body = app
        .gql(Some(&token), CREATE_TODO, json!({ "t": "after" }))
        .await;
    assert!(body["data"]["createTodo"]["id"].is_string(), "{body}");
    for body in &answered {
        if let Some(id) = body["data"]["createTodo"]["id"].as_str() {
            let found = app
                .count(&format!("SELECT count(*) FROM todos WHERE id = '{id}'"))
                .await;
            assert_eq!(found, 1, "answered todo {id} was committed");
        }
    }
    // Every committed todo has its event, and the read model matches.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM todos t WHERE NOT EXISTS \
             (SELECT 1 FROM outbox o WHERE o.aggregate_id = t.id)"
        )
        .await,
        0
    );
    app.drain().await;
    assert_in_sync(&app).await;
}

/// Drops `inner` once it has waited `waits` times: a cancellation at an
/// exact await point.
struct DropAfter<F> {
    inner: std::pin::Pin<Box<F>>,
    waits: usize,
}

impl<F: std::future::Future> std::future::Future for DropAfter<F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.inner.as_mut().poll(cx) {
            std::task::Poll::Ready(value) => std::task::Poll::Ready(Some(value)),
            std::task::Poll::Pending if self.waits == 0 => std::task::Poll::Ready(None),
            std::task::Poll::Pending => {
                self.waits -= 1;
                std::task::Poll::Pending
            }
        }
    }
}

/// One transaction through the app's pool, as the write path runs it.
async fn one_transaction(sql: studysync::pool::Db) {
    let txn = sql
        .begin_with_config(
            Some(IsolationLevel::Serializable),
            Some(AccessMode::ReadWrite),
        )
        .await
        .expect("begin");
    txn.execute_unprepared("SELECT count(*) FROM todos")
        .await
        .expect("select");
    txn.commit().await.expect("commit");
}

#[tokio::test]
async fn tasks_aborted_inside_begin_return_no_connection_inside_a_transaction() {
    let app = spawn_app_with(&["--database-idle-in-transaction-timeout-ms", "0"]).await;
    let observer = Database::connect(&app.database_url)
        .await
        .expect("observer");
    let mut cancelled = 0;
    for _ in 0..5 {
        // Dropped after its n-th wait (acquiring, pinging, BEGIN's round
        // trip, ...), for every n up to a whole transaction.
        for waits in 0..12 {
            let run = DropAfter {
                inner: Box::pin(one_transaction(app.sql().clone())),
                waits,
            };
            if run.await.is_none() {
                cancelled += 1;
                // A connection pooled inside a transaction would sit there
                // until the next borrower's `BEGIN` (a warning) and
                // `COMMIT` took it out again: look before any other does.
                wait_until_pool_is_idle(&app).await;
                assert_eq!(
                    settled_sessions_in_transaction(&observer).await,
                    0,
                    "dropped after {waits} waits"
                );
            }
        }
        wait_until_pool_is_idle(&app).await;
        // Aborted after a random number of scheduler turns.
        let tasks: Vec<_> = (0..32)
            .map(|_| tokio::spawn(one_transaction(app.sql().clone())))
            .collect();
        for task in tasks {
            for _ in 0..rand::thread_rng().gen_range(0..6) {
                tokio::task::yield_now().await;
            }
            task.abort();
            if matches!(task.await, Err(e) if e.is_cancelled()) {
                cancelled += 1;
            }
        }
        wait_until_pool_is_idle(&app).await;
    }

    assert!(cancelled > 0, "some transactions must have been cancelled");
    assert_eq!(sessions_in_transaction(&observer).await, 0);
    assert_eq!(
        pooled_statements_run_outside_transactions(&app, 20).await,
        20
    );
}
