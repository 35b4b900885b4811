//! `verify` finds every kind of drift and `--repair` fixes it; `resync`
//! rebuilds the read model while writes continue.
use mongodb::bson::{doc, Document};
use serde_json::json;
use studysync::sync::{resync, verify as sync_verify};

use crate::{
    helpers::{mongo_uri, spawn_app, TestApp, JWT_SECRET},
    sync_support::{assert_in_sync, burst, verify, wait_for_empty_outbox},
};

/// Runs the real `studysync verify` binary; returns (success, stdout).
async fn verify_cli(app: &TestApp, extra: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_studysync"))
        .arg("verify")
        .args(extra)
        .env("DATABASE_URL", &app.database_url)
        .env("MONGODB_URI", mongo_uri())
        .env("MONGODB_DB", &app.mongo_db)
        .env("JWT_SECRET", JWT_SECRET)
        .output()
        .await
        .expect("run verify");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn collection<'a>(
    report: &'a sync_verify::Report,
    name: &str,
) -> &'a sync_verify::CollectionReport {
    report
        .collections
        .iter()
        .find(|c| c.collection == name)
        .expect("collection in report")
}

#[tokio::test]
async fn verify_detects_missing_stale_extra_and_changed_documents_and_repair_fixes_them() {
    let app = spawn_app().await;
    burst(&app, "v", 2).await;
    app.drain().await;
    assert_in_sync(&app).await;
    let (ok, out) = verify_cli(&app, &[]).await;
    assert!(ok, "no drift, exit 0:\n{out}");

    let db = app.state.read_model();
    let todos = db.collection::<Document>("todos");
    let users = db.collection::<Document>("users");
    let messages = db.collection::<Document>("messages");
    // Missing: a live todo's document vanished.
    let live = todos
        .find_one(doc! {"deleted": {"$ne": true}})
        .await
        .expect("read")
        .expect("a todo");
    todos
        .delete_one(doc! {"_id": live.get_str("_id").expect("id")})
        .await
        .expect("delete");
    // Stale: a user's document went back to its first version.
    let user = users
        .find_one(doc! {"version": 2_i64})
        .await
        .expect("read")
        .expect("a renamed user");
    users
        .update_one(
            doc! {"_id": user.get_str("_id").expect("id")},
            doc! {"$set": {"version": 1_i64, "name": "Old"}},
        )
        .await
        .expect("make stale");
    // Changed: same version, different body.
    messages
        .update_one(doc! {}, doc! {"$set": {"body": "tampered"}})
        .await
        .expect("tamper");
    // Extra: documents no row stands for, before the first row and after
    // the last one.
    let ghost = "ffffffff-ffff-4fff-bfff-ffffffffffff".to_owned();
    let first = "00000000-0000-4000-8000-000000000000";
    for (id, version) in [(ghost.as_str(), 4_i64), (first, 1_i64)] {
        todos
            .insert_one(doc! {"_id": id, "version": version, "title": "ghost"})
            .await
            .expect("insert");
    }

    let report = verify(&app).await;
    assert_eq!(collection(&report, "todos").missing, 1, "{report}");
    assert_eq!(collection(&report, "todos").extra, 2, "{report}");
    assert_eq!(collection(&report, "users").stale, 1, "{report}");
    assert_eq!(collection(&report, "messages").changed, 1, "{report}");
    assert_eq!(report.drift(), 5, "{report}");
    let (ok, out) = verify_cli(&app, &[]).await;
    assert!(
        !ok && out.contains("drift: 5"),
        "drift exits non-zero:\n{out}"
    );

    let (ok, out) = verify_cli(&app, &["--repair"]).await;
    assert!(ok, "every drift got a repair event:\n{out}");
    let outcome = app.drain().await;
    assert_eq!(outcome.applied, 5, "{outcome:?}");
    assert_in_sync(&app).await;
    let ghost_doc = todos
        .find_one(doc! {"_id": &ghost})
        .await
        .expect("read")
        .expect("tombstone");
    assert_eq!(
        ghost_doc,
        doc! {"_id": &ghost, "version": 5_i64, "deleted": true}
    );
    let (ok, out) = verify_cli(&app, &[]).await;
    assert!(ok, "{out}");
}

#[tokio::test]
async fn a_document_whose_event_is_still_pending_counts_as_pending_not_drift() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("p@example.org", "Pia").await;
    app.drain().await;
    app.gql(
        Some(&token),
        "mutation { createTodo(input: {title: \"soon\"}) { id } }",
        json!({}),
    )
    .await;
    app.gql(
        Some(&token),
        "mutation { updateProfile(input: {name: \"Pia 2\"}) { id } }",
        json!({}),
    )
    .await;
    let report = verify(&app).await;
    assert_eq!((report.drift(), report.pending()), (0, 2), "{report}");
}

#[tokio::test]
async fn resync_rebuilds_a_lost_read_model_while_writes_and_the_worker_continue() {
    let app = spawn_app().await;
    burst(&app, "before", 2).await;
    app.drain().await;
    // Lose the read model entirely, and damage what comes back.
    app.state.read_model().drop().await.expect("drop database");
    let _worker = app.start_worker();
    let writes = burst(&app, "during", 2);
    let rebuild = resync::resync(
        app.state.sync(),
        resync::Options {
            batch_size: 7,
            attempts: 10,
        },
        |_| {},
    );
    let (_, rebuilt) = tokio::join!(writes, rebuild);
    let rebuilt = rebuilt.expect("resync");
    assert!(rebuilt.iter().map(|p| p.written).sum::<u64>() > 0);
    assert_eq!(rebuilt.iter().map(|p| p.failed).sum::<u64>(), 0);
    wait_for_empty_outbox(&app, std::time::Duration::from_secs(60)).await;
    assert_in_sync(&app).await;
}

#[tokio::test]
async fn resync_restores_damaged_content_and_tombstones_orphans_and_can_run_again() {
    let app = spawn_app().await;
    burst(&app, "r", 1).await;
    app.drain().await;
    let db = app.state.read_model();
    db.collection::<Document>("rooms")
        .update_many(doc! {}, doc! {"$set": {"member_ids": []}})
        .await
        .expect("damage");
    let orphan = uuid::Uuid::new_v4().to_string();
    db.collection::<Document>("messages")
        .insert_one(doc! {"_id": &orphan, "version": 1_i64, "body": "orphan"})
        .await
        .expect("orphan");
    assert!(verify(&app).await.drift() >= 2);

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_studysync"))
        .arg("resync")
        .env("DATABASE_URL", &app.database_url)
        .env("MONGODB_URI", mongo_uri())
        .env("MONGODB_DB", &app.mongo_db)
        .env("JWT_SECRET", JWT_SECRET)
        .output()
        .await
        .expect("run resync");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("rooms"),
        "progress is shown"
    );
    assert_in_sync(&app).await;

    let again = resync::resync(app.state.sync(), resync::Options::default(), |_| {})
        .await
        .expect("rerun");
    assert_eq!(
        again.iter().map(|p| p.tombstoned).sum::<u64>(),
        0,
        "nothing left to remove"
    );
    assert_in_sync(&app).await;
}
