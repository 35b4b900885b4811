//! Shared by the sync and read tests: a private MongoDB server that a test may stop,
//! a burst of mixed mutations, worker processes, and reading the outcome.
use std::{path::PathBuf, process::Stdio, time::Duration};

use serde_json::json;
use studysync::sync::verify::{self, Report};
use tokio::process::{Child, Command};

use crate::helpers::{TestApp, JWT_SECRET};

/// A MongoDB-wire server owned by one test, on its own port and storage.
pub struct MongoServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn server_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("MONGOD_BIN") {
        return bin.into();
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("mongod");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.local/venv/bin/secantusd-py"
    ))
}

impl MongoServer {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("studysync-mongo-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("storage dir");
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.launch().await;
        server
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let bin = server_binary();
        let is_mongod = bin.file_name().is_some_and(|n| n == "mongod");
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().into_owned();
        let args: Vec<&str> = if is_mongod {
            vec!["--bind_ip", "127.0.0.1", "--port", &port, "--dbpath", &dir]
        } else {
            vec![
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--storage-path",
                &dir,
            ]
        };
        let child = Command::new(&bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        self.child = Some(child);
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the private MongoDB server did not start");
    }

    /// Kills the server (SIGKILL): every connection drops at once.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().ok();
            child.wait().await.ok();
        }
    }

    /// Starts it again on the same port and storage.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.start_kill().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Signs up `users` users, each creating, updating and deleting todos,
/// logging study sessions and chatting in a shared room: every aggregate
/// type, updates and deletes included. Returns the tokens.
pub async fn burst(app: &TestApp, tag: &str, users: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..users {
        let (token, _) = app
            .sign_up(&format!("{tag}{i}@example.org"), &format!("Zoë {tag} {i}"))
            .await;
        tokens.push(token);
    }
    let room = app
        .gql(
            Some(&tokens[0]),
            "mutation($n: String!) { createRoom(name: $n) { id } }",
            json!({"n": format!("room {tag}")}),
        )
        .await;
    let room_id = room["data"]["createRoom"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{room}"))
        .to_owned();
    for (i, token) in tokens.iter().enumerate() {
        let t = Some(token.as_str());
        if i > 0 {
            app.gql(
                t,
                "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
                json!({"r": room_id}),
            )
            .await;
        }
        let mut todo_ids = Vec::new();
        for n in 0..3 {
            let body = app
                .gql(
                    t,
                    "mutation($t: String!) { createTodo(input: {title: $t}) { id } }",
                    json!({"t": format!("todo {n}")}),
                )
                .await;
            todo_ids.push(
                body["data"]["createTodo"]["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{body}"))
                    .to_owned(),
            );
        }
        app.gql(t, "mutation($id: ID!) { updateTodo(id: $id, input: {completed: true, title: \"done\"}) { id } }", json!({"id": todo_ids[0]}))
            .await;
        app.gql(
            t,
            "mutation($id: ID!) { deleteTodo(id: $id) }",
            json!({"id": todo_ids[1]}),
        )
        .await;
        app.gql(
            t,
            "mutation { logStudySession(input: {subject: \"math\", minutes: 25}) { id } }",
            json!({}),
        )
        .await;
        app.gql(
            t,
            "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id } }",
            json!({"r": room_id, "b": format!("hello from {i}")}),
        )
        .await;
        app.gql(
            t,
            "mutation { updateProfile(input: {name: \"Renamed\"}) { id } }",
            json!({}),
        )
        .await;
    }
    tokens
}

/// The full comparison of CockroachDB with MongoDB.
pub async fn verify(app: &TestApp) -> Report {
    verify::verify(app.state.sync(), verify::Options::default())
        .await
        .expect("verify runs")
}

/// Asserts MongoDB equals CockroachDB: no drift and nothing pending.
pub async fn assert_in_sync(app: &TestApp) {
    let report = verify(app).await;
    assert_eq!(
        (report.drift(), report.pending()),
        (0, 0),
        "read model differs from the source:\n{report}"
    );
    assert!(
        report.collections.iter().map(|c| c.rows).sum::<u64>() > 0,
        "nothing was compared"
    );
}

/// Events not yet processed (pending, in backoff, claimed or parked).
pub async fn unprocessed(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
        .await
}

/// Waits (bounded) until every event is processed; panics with the
/// outbox's state otherwise.
pub async fn wait_for_empty_outbox(app: &TestApp, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while unprocessed(app).await > 0 {
        if tokio::time::Instant::now() > deadline {
            let claimed = app.count("SELECT count(*) FROM outbox WHERE processed_at IS NULL AND claimed_by IS NOT NULL",
            )
            .await;
            panic!(
                "{} events still unprocessed ({claimed} claimed)",
                unprocessed(app).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the real `studysync worker` binary against this app's databases.
pub fn spawn_worker_process(app: &TestApp, mongo_uri: &str, extra_env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_studysync"));
    command
        .arg("worker")
        .env("DATABASE_URL", &app.database_url)
        .env("MONGODB_URI", mongo_uri)
        .env("MONGODB_DB", &app.mongo_db)
        .env("JWT_SECRET", JWT_SECRET)
        .env("DATABASE_MAX_CONNECTIONS", "4")
        .env("SYNC_POLL_INTERVAL_MS", "100")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if std::env::var("TEST_LOG").is_err() {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    command.spawn().expect("spawn the worker binary")
}

/// Sends SIGTERM, as an orchestrator would.
pub fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .ok();
    }
}

/// Starts the real `studysync serve` binary against this app's databases;
/// returns it and its base URL once it answers `/healthz`.
pub async fn spawn_serve_process(app: &TestApp, args: &[&str]) -> (Child, String) {
    spawn_serve_process_with(app, args, &[]).await
}

/// Like [`spawn_serve_process`], with extra environment variables.
pub async fn spawn_serve_process_with(
    app: &TestApp,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_studysync"));
    command
        .arg("serve")
        .args(args)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &app.database_url)
        .env("MONGODB_URI", crate::helpers::mongo_uri())
        .env("MONGODB_DB", &app.mongo_db)
        .env("JWT_SECRET", JWT_SECRET)
        .env("DATABASE_MAX_CONNECTIONS", "4")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if std::env::var("TEST_LOG").is_err() {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let child = command.spawn().expect("spawn serve");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if let Ok(response) = app.http.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                return (child, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not start");
}
