//! Migrations as a deploy step: idempotent, finished by a re-run after any
//! stop, one run at a time, and checked by `serve` and `worker` at start.
use std::{process::Stdio, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::process::Command;

use crate::helpers::{connect, empty_database, fresh_database, mongo_uri, JWT_SECRET};

/// Every column (with its type) and every index definition: what a migrated
/// schema is, for comparing two of them.
async fn schema_of(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS item \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name NOT IN ('seaql_migrations', 'schema_migration_lease') \
             UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename NOT IN ('seaql_migrations', 'schema_migration_lease') \
             ORDER BY 1",
        ))
        .await
        .expect("read the schema");
    rows.iter()
        .map(|row| row.try_get::<String>("", "item").expect("item"))
        .collect()
}

async fn ledger(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await
        .expect("read the ledger");
    rows.iter()
        .map(|row| row.try_get::<String>("", "version").expect("version"))
        .collect()
}

fn all_names() -> Vec<String> {
    migration::all()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

async fn reference_schema() -> Vec<String> {
    let db = connect(&fresh_database().await).await;
    schema_of(&db).await
}

fn studysync(database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_studysync"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("MONGODB_URI", mongo_uri())
        .env("MONGODB_DB", format!("t_{}", uuid::Uuid::new_v4().simple()))
        .env("JWT_SECRET", JWT_SECRET)
        .env("DATABASE_MAX_CONNECTIONS", "4")
        .env_remove("MIGRATE_ON_START")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn migrate_up_finishes_a_run_that_stopped_midway() {
    let reference = reference_schema().await;
    let url = fresh_database().await;
    let db = connect(&url).await;
    // What CockroachDB leaves when a run stops inside a migration: its first
    // statements committed (the outbox table exists), later ones did not
    // (an index is missing), and no ledger row for it or any after it.
    let all = all_names();
    let stopped_at = all
        .iter()
        .position(|n| n.ends_with("create_outbox"))
        .expect("the outbox migration");
    for name in &all[stopped_at..] {
        db.execute(Statement::from_sql_and_values(
            db.get_database_backend(),
            "DELETE FROM seaql_migrations WHERE version = $1",
            [name.clone().into()],
        ))
        .await
        .expect("forget a ledger row");
    }
    db.execute_unprepared("DROP INDEX outbox_pending_age_idx")
        .await
        .expect("drop an index");
    assert_ne!(schema_of(&db).await, reference);

    let applied = migration::runner::up(&db)
        .await
        .expect("the re-run succeeds");

    assert_eq!(applied, all[stopped_at..].to_vec());
    assert_eq!(ledger(&db).await, all);
    assert_eq!(schema_of(&db).await, reference);
    // And once complete, another run has nothing to do.
    assert!(migration::runner::up(&db).await.expect("no-op").is_empty());
}

#[tokio::test]
async fn concurrent_migrate_processes_apply_each_migration_exactly_once() {
    let reference = reference_schema().await;
    let url = empty_database().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            studysync(&url, &["migrate", "up"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn migrate up")
        })
        .collect();
    let mut applied_lines = Vec::new();
    for run in runs {
        let output = tokio::time::timeout(Duration::from_secs(120), run.wait_with_output())
            .await
            .expect("migrate up finishes")
            .expect("migrate up output");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        applied_lines.extend(
            stdout
                .lines()
                .filter_map(|l| l.strip_prefix("applied "))
                .map(str::to_owned),
        );
    }
    applied_lines.sort();
    assert_eq!(
        applied_lines,
        all_names(),
        "each migration applied by one run"
    );
    let db = connect(&url).await;
    assert_eq!(ledger(&db).await, all_names());
    assert_eq!(schema_of(&db).await, reference);
}

#[tokio::test]
async fn every_migration_rolls_back_and_applies_again() {
    let reference = reference_schema().await;
    let db = connect(&fresh_database().await).await;
    let all = all_names();
    let rolled = migration::runner::down(&db, all.len())
        .await
        .expect("roll everything back");
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(rolled, newest_first);
    assert!(schema_of(&db).await.is_empty(), "every table is gone");
    assert!(ledger(&db).await.is_empty());
    migration::runner::up(&db).await.expect("apply again");
    assert_eq!(schema_of(&db).await, reference);
}

#[tokio::test]
async fn serve_and_worker_refuse_an_old_schema_and_say_how_to_fix_it() {
    let url = empty_database().await;
    let db = connect(&url).await;
    let migrations = migration::all();
    migration::runner::up_with(&db, &migrations[..3])
        .await
        .expect("an old schema");
    for command in ["serve", "worker"] {
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            studysync(&url, &[command])
                .env("BIND_ADDR", "127.0.0.1:0")
                .output(),
        )
        .await
        .expect("the process exits by itself")
        .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{command} started on an old schema"
        );
        assert!(
            stderr.contains("studysync migrate up") && stderr.contains("pending migration"),
            "{command}: {stderr}"
        );
    }
    // Nothing was changed by the refusals.
    assert_eq!(ledger(&db).await.len(), 3);

    let status = studysync(&url, &["migrate", "status"])
        .output()
        .await
        .expect("migrate status");
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success());
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("applied")).count(),
        3
    );
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("pending")).count(),
        migrations.len() - 3,
        "{listed}"
    );

    // The documented opt-in migrates and serves.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut serve = studysync(&url, &["serve"])
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("MIGRATE_ON_START", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            up = response.status().is_success();
            if up {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    serve.kill().await.ok();
    assert!(up, "serve with MIGRATE_ON_START=true did not start");
    assert_eq!(ledger(&db).await, all_names());
}

#[tokio::test]
async fn the_test_database_is_recognised_as_postgresql() {
    let db = connect(&fresh_database().await).await;
    assert_eq!(
        migration::Dialect::detect(&db).await.expect("detect"),
        migration::Dialect::Postgres
    );
}

#[tokio::test]
async fn messages_written_before_numbering_are_numbered_in_time_order_per_room() {
    let url = empty_database().await;
    let db = connect(&url).await;
    let migrations = migration::all();
    let numbering = migrations
        .iter()
        .position(|m| m.name().ends_with("add_message_sequence"))
        .expect("the numbering migration");
    migration::runner::up_with(&db, &migrations[..numbering])
        .await
        .expect("the schema before numbering");
    let setup = [
        "INSERT INTO users (id, email, name, password_hash) VALUES \
         ('00000000-0000-0000-0000-000000000001', 'n@example.org', 'N', 'x')",
        "INSERT INTO rooms (id, name, created_by) VALUES \
         ('00000000-0000-0000-0000-0000000000a1', 'A', '00000000-0000-0000-0000-000000000001'), \
         ('00000000-0000-0000-0000-0000000000b1', 'B', '00000000-0000-0000-0000-000000000001')",
        // inserted out of time order, in two rooms
        "INSERT INTO messages (id, room_id, sender_id, body, created_at) VALUES \
         ('00000000-0000-0000-0000-000000000103', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 'a3', '2026-11-30 10:03:00+00'), \
         ('00000000-0000-0000-0000-000000000101', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 'a1', '2026-11-30 10:01:00+00'), \
         ('00000000-0000-0000-0000-000000000201', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000001', 'b1', '2026-11-30 10:00:00+00'), \
         ('00000000-0000-0000-0000-000000000102', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001', 'a2', '2026-11-30 10:02:00+00')",
    ];
    for sql in setup {
        db.execute(Statement::from_string(db.get_database_backend(), sql))
            .await
            .expect(sql);
    }
    // Twice: a re-run after a stop must not number anything again.
    for _ in 0..2 {
        migration::runner::up_with(&db, &migrations[..=numbering])
            .await
            .expect("numbering");
        db.execute(Statement::from_string(
            db.get_database_backend(),
            "DELETE FROM seaql_migrations WHERE version LIKE '%add_message_sequence'",
        ))
        .await
        .expect("forget it was applied");
    }
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT body || ':' || seq::TEXT FROM messages ORDER BY body",
        ))
        .await
        .expect("numbers");
    let numbered: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect();
    assert_eq!(numbered, ["a1:1", "a2:2", "a3:3", "b1:1"]);
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT name || ':' || last_seq::TEXT FROM rooms ORDER BY name",
        ))
        .await
        .expect("last numbers");
    let last: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("text"))
        .collect();
    assert_eq!(last, ["A:3", "B:1"]);
}
