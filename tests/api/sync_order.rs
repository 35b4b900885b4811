//! Idempotent and order-proof: repeated, reordered and poisoned events.
use mongodb::bson::{doc, Document};
use rand::seq::SliceRandom;
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use serde_json::json;
use studysync::sync::{
    apply::{self, Guard, Verdict},
    project,
};

use crate::{
    helpers::{spawn_app, spawn_app_with, TestApp},
    sync_support::{assert_in_sync, burst, unprocessed},
};

#[derive(FromQueryResult)]
struct Event {
    aggregate_type: String,
    aggregate_id: uuid::Uuid,
    aggregate_version: i64,
    payload: serde_json::Value,
}

async fn all_events(app: &TestApp) -> Vec<Event> {
    let sql = "SELECT aggregate_type, aggregate_id, aggregate_version, payload FROM outbox";
    Event::find_by_statement(Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        sql,
    ))
    .all(app.sql())
    .await
    .expect("events")
}

/// Every document of every collection, sorted, for comparing two states.
async fn snapshot(app: &TestApp) -> Vec<Document> {
    let mut all = Vec::new();
    for collection in project::collections() {
        let mut cursor = app
            .state
            .read_model()
            .collection::<Document>(collection)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .expect("find");
        while cursor.advance().await.expect("cursor") {
            all.push(cursor.deserialize_current().expect("document"));
        }
    }
    all
}

#[tokio::test]
async fn replaying_the_whole_outbox_changes_nothing_and_from_scratch_rebuilds_the_same_read_model()
{
    let app = spawn_app().await;
    burst(&app, "replay", 2).await;
    app.drain().await;
    let before = snapshot(&app).await;

    app.sql()
        .execute_unprepared("UPDATE outbox SET processed_at = NULL, next_attempt_at = now()")
        .await
        .expect("re-deliver everything");
    let outcome = app.drain().await;
    assert!(outcome.claimed > 0);
    assert_eq!(
        (outcome.applied, outcome.failed),
        (0, 0),
        "a repeated event writes nothing: {outcome:?}"
    );
    assert_eq!(outcome.stale, outcome.claimed);
    assert_eq!(snapshot(&app).await, before);

    // From nothing: the whole outbox replayed into an empty read model.
    app.state
        .read_model()
        .drop()
        .await
        .expect("drop the read model");
    app.sql()
        .execute_unprepared("UPDATE outbox SET processed_at = NULL, next_attempt_at = now()")
        .await
        .expect("re-deliver everything");
    app.drain().await;
    assert_eq!(
        snapshot(&app).await,
        before,
        "a full replay rebuilds the same documents"
    );
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn events_delivered_shuffled_and_twice_end_in_the_source_state_and_deletions_stick() {
    let app = spawn_app().await;
    let tokens = burst(&app, "shuffle", 2).await;
    // One more todo that is edited, then deleted: its oldest event comes last.
    let t = Some(tokens[0].as_str());
    let created = app
        .gql(
            t,
            "mutation { createTodo(input: {title: \"ghost\"}) { id } }",
            json!({}),
        )
        .await;
    let ghost = created["data"]["createTodo"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.gql(
        t,
        "mutation($id: ID!) { updateTodo(id: $id, input: {title: \"ghost 2\"}) { id } }",
        json!({"id": ghost}),
    )
    .await;
    app.gql(
        t,
        "mutation($id: ID!) { deleteTodo(id: $id) }",
        json!({"id": ghost}),
    )
    .await;

    // A session corrected, then deleted: its totals fall to nothing.
    let logged = app
        .gql(
            t,
            "mutation { logStudySession(input: {subject: \"ghost\", minutes: 30, startedAt: \"2026-01-05T10:00:00Z\"}) { id } }",
            json!({}),
        )
        .await;
    let session = logged["data"]["logStudySession"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{logged}"))
        .to_owned();
    let corrected = app
        .gql(
            t,
            "mutation($id: ID!) { updateStudySession(id: $id, input: {minutes: 20, startedAt: \"2026-02-05T10:00:00Z\"}) { id } }",
            json!({"id": session}),
        )
        .await;
    assert!(corrected["errors"].is_null(), "{corrected}");
    let deleted = app
        .gql(
            t,
            "mutation($id: ID!) { deleteStudySession(id: $id) }",
            json!({"id": session}),
        )
        .await;
    assert!(deleted["errors"].is_null(), "{deleted}");

    // A message edited, then deleted.
    let room = crate::reads_support::create_room(&app, &tokens[0], "ghosts").await;
    let sent = crate::reads_support::send(&app, &tokens[0], &room, "boo").await;
    let message = sent["data"]["sendMessage"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let edited = app
        .gql(
            t,
            "mutation($id: ID!) { editMessage(id: $id, body: \"boo!\") { id } }",
            json!({"id": message}),
        )
        .await;
    assert!(edited["errors"].is_null(), "{edited}");
    let deleted = app
        .gql(
            t,
            "mutation($id: ID!) { deleteMessage(id: $id) }",
            json!({"id": message}),
        )
        .await;
    assert!(deleted["errors"].is_null(), "{deleted}");

    // An account that writes, then is erased.
    let (doomed, doomed_id) = app.sign_up("doomed@example.org", "Doomed").await;
    crate::reads_support::join_room(&app, &doomed, &room).await;
    crate::reads_support::send(&app, &doomed, &room, "last words").await;
    crate::reads_support::log_study(&app, &doomed, "Maths", 15, None).await;
    let erased = app
        .gql(
            Some(&doomed),
            "mutation { deleteAccount(password: \"password123\") }",
            json!({}),
        )
        .await;
    assert!(erased["errors"].is_null(), "{erased}");

    let mut events = all_events(&app).await;
    let mut twice: Vec<&Event> = events.iter().chain(events.iter()).collect();
    twice.shuffle(&mut rand::thread_rng());
    // Delivered one event per command, in a random order, each twice.
    for event in twice {
        let p = project::project(
            &event.aggregate_type,
            event.aggregate_id,
            event.aggregate_version,
            &event.payload,
        )
        .expect("projects");
        let verdict = apply::apply(app.state.read_model(), &[p], Guard::Newer).await;
        assert!(
            matches!(verdict[0], Verdict::Applied | Verdict::Stale),
            "{verdict:?}"
        );
    }
    // Then the ghosts' first versions, very late, once more.
    events.retain(|e| {
        [&ghost, &session, &message].contains(&&e.aggregate_id.to_string())
            && e.aggregate_version == 1
    });
    assert_eq!(events.len(), 3);
    for first in &events {
        let late = project::project(&first.aggregate_type, first.aggregate_id, 1, &first.payload)
            .expect("projects");
        assert_eq!(
            apply::apply(app.state.read_model(), &[late], Guard::Newer).await,
            [Verdict::Stale]
        );
    }
    let session_doc = app.read_doc("study_sessions", &session).await;
    assert_eq!(
        session_doc,
        Some(doc! {"_id": &session, "version": 3_i64, "deleted": true})
    );
    let account = app.read_doc("users", &doomed_id).await.expect("tombstone");
    assert_eq!(account.get_bool("deleted"), Ok(true));
    assert!(account.get("name").is_none() && account.get("email").is_none());
    let message_doc = app.read_doc("messages", &message).await.expect("tombstone");
    assert_eq!(message_doc.get_i64("version"), Ok(3));
    assert_eq!(message_doc.get_bool("deleted"), Ok(true));
    assert!(message_doc.get("body").is_none());
    // Every total the session counted in ended deleted: no live document
    // for January or February 2026 is left.
    let live_totals = app
        .state
        .read_model()
        .collection::<Document>("study_totals")
        .count_documents(doc! {"period_start": {"$in": ["2026-01-05", "2026-01-01", "2026-02-05", "2026-02-02", "2026-02-01"]}})
        .await
        .expect("count");
    assert_eq!(live_totals, 0);

    let todo = app
        .state
        .read_model()
        .collection::<Document>("todos")
        .find_one(doc! {"_id": &ghost})
        .await
        .expect("read")
        .expect("tombstone");
    assert_eq!(
        todo,
        doc! {"_id": &ghost, "version": 3_i64, "deleted": true}
    );

    app.sql()
        .execute_unprepared("UPDATE outbox SET processed_at = now()")
        .await
        .expect("mark delivered");
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn a_poison_event_is_parked_without_blocking_others_and_replays_once_its_cause_is_fixed() {
    let app = spawn_app_with(&[
        "--sync-park-after",
        "3",
        "--sync-backoff-base-ms",
        "0",
        "--sync-backoff-max-ms",
        "0",
    ])
    .await;
    let todos = app.state.read_model().collection::<Document>("todos");
    // A real refusal from MongoDB: an operator's unique index on titles.
    todos
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"title": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(true)
                        .name("title_unique".to_owned())
                        .build(),
                )
                .build(),
        )
        .await
        .expect("index");
    let (admin, _) = app.sign_up("admin@example.org", "Ada").await;
    app.promote("admin@example.org").await;
    let (token, _) = app.sign_up("p@example.org", "Pat").await;
    for who in [&admin, &token] {
        app.gql(
            Some(who),
            "mutation { createTodo(input: {title: \"same\"}) { id } }",
            json!({}),
        )
        .await;
    }
    burst(&app, "others", 1).await;

    let outcome = app.drain().await;
    assert_eq!(outcome.parked, 1, "{outcome:?}");
    assert_eq!(unprocessed(&app).await, 1, "every other event went through");
    let error = app
        .sql()
        .query_one(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT last_error FROM outbox WHERE parked_at IS NOT NULL",
        ))
        .await
        .expect("query")
        .expect("a parked event")
        .try_get::<String>("", "last_error")
        .expect("its last error");
    assert!(
        error.contains("E11000") && error.contains("title"),
        "{error}"
    );
    let body = app
        .gql(None, "{ syncStatus { status parked reasons } }", json!({}))
        .await;
    let status = &body["data"]["syncStatus"];
    assert_eq!(status["parked"], 1, "{body}");
    assert_ne!(status["status"], "healthy", "{body}");
    assert!(status["reasons"].to_string().contains("parked"), "{body}");

    todos
        .drop_index("title_unique")
        .await
        .expect("fix the cause");
    let replayed = app
        .gql(Some(&admin), "mutation { replayParkedEvents }", json!({}))
        .await;
    assert_eq!(replayed["data"]["replayParkedEvents"], 1, "{replayed}");
    let outcome = app.drain().await;
    assert_eq!((outcome.applied, outcome.parked), (1, 0));
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
            .await,
        0
    );
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn an_event_that_cannot_be_projected_is_parked_and_replayed_by_the_cli_after_a_fix() {
    let app = spawn_app_with(&[
        "--sync-park-after",
        "2",
        "--sync-backoff-base-ms",
        "0",
        "--sync-backoff-max-ms",
        "0",
    ])
    .await;
    let (token, _) = app.sign_up("q@example.org", "Quinn").await;
    app.gql(
        Some(&token),
        "mutation { createTodo(input: {title: \"fine\"}) { id } }",
        json!({}),
    )
    .await;
    app.sql()
        .execute_unprepared(
            "UPDATE outbox SET payload = jsonb_set(payload, '{due_at}', '\"someday\"') WHERE aggregate_type = 'todo'",
        )
        .await
        .expect("corrupt one payload");
    let outcome = app.drain().await;
    assert_eq!(
        (outcome.parked, unprocessed(&app).await),
        (1, 1),
        "{outcome:?}"
    );

    app.sql()
        .execute_unprepared("UPDATE outbox SET payload = jsonb_set(payload, '{due_at}', 'null') WHERE aggregate_type = 'todo'")
        .await
        .expect("fix it");
    let replay = tokio::process::Command::new(env!("CARGO_BIN_EXE_studysync"))
        .args(["worker", "replay-parked"])
        .env("DATABASE_URL", &app.database_url)
        .env("MONGODB_URI", crate::helpers::mongo_uri())
        .env("MONGODB_DB", &app.mongo_db)
        .env("JWT_SECRET", crate::helpers::JWT_SECRET)
        .output()
        .await
        .expect("run replay-parked");
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(String::from_utf8_lossy(&replay.stdout).contains("1 parked event"));
    app.drain().await;
    assert_in_sync(&app).await;
}

/// The `n` of this test process's barrier document in `app`'s read model:
/// how many batches needed a barrier (0: the document was never written).
async fn barriers(app: &TestApp) -> i64 {
    let stored = app
        .state
        .read_model()
        .collection::<Document>(apply::BARRIER_COLLECTION)
        .find_one(doc! {})
        .await
        .expect("read barrier");
    stored.map_or(0, |d| d.get_i64("n").expect("barrier count"))
}

#[tokio::test]
async fn a_batch_of_one_command_is_made_durable_by_itself_and_a_wider_one_by_one_barrier() {
    let app = spawn_app().await;
    burst(&app, "barrier", 2).await;
    let projected: Vec<project::Projected> = all_events(&app)
        .await
        .iter()
        .map(|e| {
            project::project(
                &e.aggregate_type,
                e.aggregate_id,
                e.aggregate_version,
                &e.payload,
            )
            .expect("projects")
        })
        .collect();
    let first_todo = |p: &&project::Projected| p.collection == "todos" && p.version == 1;
    let todos: Vec<_> = projected.iter().filter(first_todo).cloned().collect();
    assert!(todos.len() >= 2, "{todos:?}");
    let db = app.state.read_model();

    // One collection, first versions only: a single insert.
    let verdicts = apply::apply(db, &todos, Guard::Newer).await;
    assert!(
        verdicts.iter().all(|v| *v == Verdict::Applied),
        "{verdicts:?}"
    );
    // Again: every statement stale, still a single command.
    let verdicts = apply::apply(db, &todos, Guard::Newer).await;
    assert!(
        verdicts.iter().all(|v| *v == Verdict::Stale),
        "{verdicts:?}"
    );
    assert_eq!(barriers(&app).await, 0, "no barrier for single commands");

    // Every collection at once: many commands, one barrier after them.
    let mut latest: std::collections::HashMap<(&str, String), project::Projected> =
        std::collections::HashMap::new();
    for p in projected {
        let key = (p.collection, p.id.clone());
        if latest.get(&key).is_none_or(|kept| kept.version < p.version) {
            latest.insert(key, p);
        }
    }
    let everything: Vec<_> = latest.into_values().collect();
    let collections: std::collections::HashSet<_> =
        everything.iter().map(|p| p.collection).collect();
    assert!(collections.len() >= 3, "{collections:?}");
    let verdicts = apply::apply(db, &everything, Guard::Newer).await;
    assert!(
        verdicts
            .iter()
            .all(|v| matches!(v, Verdict::Applied | Verdict::Stale)),
        "{verdicts:?}"
    );
    assert_eq!(barriers(&app).await, 1, "one barrier for the wide batch");
    for p in &everything {
        let stored = app.read_doc(p.collection, &p.id).await.expect("stored");
        assert_eq!(stored.get_i64("version"), Ok(p.version), "{}", p.collection);
    }
}
