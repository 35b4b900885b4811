//! The outbox promise: data and event commit together or not at all.
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_mutation_writes_one_outbox_event_per_changed_aggregate_with_its_version() {
    let app = spawn_app().await;
    let (token, user_id) = app.sign_up("e@example.org", "Eve").await;
    let created = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"a\"}) { id } }",
            json!({}),
        )
        .await;
    let todo_id = created["data"]["createTodo"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.gql(
        Some(&token),
        "mutation($id: ID!) { updateTodo(id: $id, input: {title: \"b\"}) { id } }",
        json!({"id": todo_id}),
    )
    .await;
    let events = app
        .count(&format!(
            "SELECT count(*) FROM outbox o JOIN todos t ON t.id = o.aggregate_id WHERE o.aggregate_id = '{todo_id}' AND o.payload->>'title' IN ('a', 'b') AND o.processed_at IS NULL"
        ))
        .await;
    assert_eq!(events, 2);
    let latest = app
        .count(&format!(
            "SELECT max(aggregate_version) FROM outbox WHERE aggregate_id = '{todo_id}'"
        ))
        .await;
    assert_eq!(
        latest,
        app.count(&format!("SELECT version FROM todos WHERE id = '{todo_id}'"))
            .await
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM outbox WHERE aggregate_id = '{user_id}'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn when_the_outbox_insert_fails_the_data_is_rolled_back_too() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("f@example.org", "Fay").await;
    // A real fault: the outbox now refuses every new row.
    app.sql()
        .execute_unprepared("ALTER TABLE outbox ADD CONSTRAINT refuse_all CHECK (aggregate_type = 'none') NOT VALID")
        .await
        .expect("add constraint");
    let body = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"lost?\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "INTERNAL");
    assert_eq!(
        body["errors"][0]["message"], "internal error",
        "no database detail leaks: {body}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM todos").await,
        0,
        "the todo must not commit without its event"
    );
}

#[tokio::test]
async fn a_row_stored_other_than_its_event_describes_fails_the_mutation_and_writes_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("g@example.org", "Gus").await;
    let before = app.count("SELECT count(*) FROM outbox").await;
    // A real fault: the database rewrites every new todo's title, so the
    // event (built from the row as sent) would misdescribe the stored row.
    app.sql()
        .execute_unprepared(
            "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN NEW.title := upper(NEW.title); RETURN NEW; END $$; \
             CREATE TRIGGER shout BEFORE INSERT ON todos FOR EACH ROW EXECUTE FUNCTION shout()",
        )
        .await
        .expect("create trigger");
    let body = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"quiet\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        before,
        "no event may commit for a row it misdescribes"
    );
    // Once the database stores what it is sent, the same mutation commits
    // its row and its event together.
    app.sql()
        .execute_unprepared("DROP TRIGGER shout ON todos")
        .await
        .expect("drop trigger");
    let body = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"quiet\"}) { id title } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["createTodo"]["title"], "quiet", "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM outbox o JOIN todos t ON t.id = o.aggregate_id WHERE o.payload->>'title' = 'quiet'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_mutation_response_carries_a_consistency_token() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("g@example.org", "Gil").await;
    let body = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"a\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(body["extensions"]["consistencyToken"].is_string(), "{body}");
    let query = app.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert!(query["extensions"]["consistencyToken"].is_null());
}

#[tokio::test]
async fn mutations_over_get_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { signUp(input: {email: \"x@example.org\", name: \"X\", password: \"password123\"}) { token } }")])
        .header("accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 405);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body["errors"][0]["message"].as_str().is_some());
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    let ok = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { id } }")])
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn graphiql_and_its_assets_are_served_locally_and_health_answers() {
    let app = spawn_app().await;
    let page = app
        .http
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    let html = page.text().await.expect("text");
    assert!(html.contains("/graphiql/graphiql.min.js"));
    assert!(!html.contains("https://"), "no CDN");
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        let res = app
            .http
            .get(app.url(&format!("/graphiql/{asset}")))
            .send()
            .await
            .expect("asset");
        assert_eq!(res.status().as_u16(), 200, "{asset}");
        assert!(res.bytes().await.expect("bytes").len() > 1000);
    }
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn write_transactions_run_serializable_with_one_begin_whatever_the_database_default() {
    use sea_orm::ConnectionTrait;
    let app = crate::helpers::spawn_app().await;
    // A database whose own default is weaker: the server's sessions still
    // run SERIALIZABLE, since its transactions no longer name the level.
    app.sql()
        .execute_unprepared(&format!(
            "ALTER DATABASE {} SET default_transaction_isolation TO 'read committed'",
            app.database_url
                .rsplit('/')
                .next()
                .expect("a database name")
        ))
        .await
        .expect("weaken the default");
    let fresh = app.beside(&[]).await;
    let done = fresh
        .state
        .writer()
        .transact(|tx| {
            Box::pin(async move {
                let row = tx
                    .conn()
                    .query_one(sea_orm::Statement::from_string(
                        sea_orm::DatabaseBackend::Postgres,
                        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')",
                    ))
                    .await?
                    .expect("a row");
                let isolation: String = row.try_get_by_index(0)?;
                let read_only: String = row.try_get_by_index(1)?;
                Ok((isolation, read_only))
            })
        })
        .await
        .expect("a transaction");
    assert_eq!(done.value, ("serializable".to_owned(), "off".to_owned()));
    // And a mutation still commits with its event.
    let (token, _) = fresh.sign_up("iso@example.org", "Iso").await;
    let body = fresh
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"isolated\"}) { id } }",
            serde_json::json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

/// `synchronous_commit` as a pool's sessions see it.
async fn synchronous_commit(db: &impl ConnectionTrait) -> String {
    let row = db
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SHOW synchronous_commit",
        ))
        .await
        .expect("SHOW")
        .expect("a row");
    row.try_get_by_index(0).expect("text")
}

#[tokio::test]
async fn writes_wait_for_the_wal_flush_and_bookkeeping_does_not() {
    let app = spawn_app().await;
    let sync = app.state.sync();
    // The test server's 8 connections: 6 for the data, 2 for bookkeeping.
    let sizes = (
        sync.sql().occupancy().max,
        sync.bookkeeping().occupancy().max,
    );
    assert_eq!(sizes, (6, 2));
    assert_eq!(synchronous_commit(sync.sql()).await, "on");
    assert_eq!(synchronous_commit(sync.bookkeeping()).await, "off");
    // A mutation's budget is counted through the bookkeeping pool, its rows
    // and event through the durable one; both are there at once.
    let (token, _) = app.sign_up("wal@example.org", "Wal").await;
    let created = app
        .gql(
            Some(&token),
            "mutation { createTodo(input: {title: \"flushed\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(created["data"]["createTodo"]["id"].is_string(), "{created}");
    assert_eq!(
        app.count("SELECT count(*) FROM rate_limits WHERE scope = 'mutation'")
            .await,
        1
    );
    // Too few connections to share: one pool serves both.
    let small = app.beside(&["--database-max-connections", "3"]).await;
    let sync = small.state.sync();
    assert_eq!(synchronous_commit(sync.bookkeeping()).await, "on");
}

/// Ends every session the server's pools hold, as a database restart or a
/// proxy's idle timeout would. Returns how many it ended.
async fn end_the_servers_sessions(app: &crate::helpers::TestApp) -> i64 {
    use sea_orm::sqlx::{Connection as _, Row as _};
    let mut observer = sea_orm::sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("observer");
    let row = sea_orm::sqlx::query(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend'",
    )
    .fetch_one(&mut observer)
    .await
    .expect("terminate");
    row.try_get(0).expect("count")
}

async fn me_and_a_todo(app: &crate::helpers::TestApp, token: &str) -> Vec<serde_json::Value> {
    let mut answers = Vec::new();
    for query in [
        "query { me { id } }",
        "mutation { createTodo(input: {title: \"after the restart\"}) { id } }",
    ] {
        answers.push(app.gql(Some(token), query, json!({})).await);
    }
    answers
}

#[tokio::test]
async fn connections_the_database_ended_while_pooled_are_replaced_once_idle() {
    let app = spawn_app_with(&["--database-ping-idle-ms", "200"]).await;
    let (token, _) = app.sign_up("ended@example.org", "Ended").await;
    for answer in me_and_a_todo(&app, &token).await {
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    assert!(end_the_servers_sessions(&app).await >= 1);
    // Idle past the threshold: each pooled connection is pinged before it
    // is handed out, and a dead one is replaced.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    for answer in me_and_a_todo(&app, &token).await {
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM todos WHERE title = 'after the restart'")
            .await,
        2
    );

    // Within the threshold a connection is handed out unpinged, so one the
    // database ended fails the statement it was taken for (and is closed).
    let unpinged = app.beside(&["--database-ping-idle-ms", "600000"]).await;
    let answer = unpinged
        .gql(Some(&token), "query { me { id } }", json!({}))
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert!(end_the_servers_sessions(&unpinged).await >= 1);
    let answer = unpinged
        .gql(Some(&token), "query { me { id } }", json!({}))
        .await;
    assert_eq!(error_code(&answer), "INTERNAL", "{answer}");
}
