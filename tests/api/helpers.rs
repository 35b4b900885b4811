//! Test harness: each test gets its own PostgreSQL database (created and
//! migrated with the real migrations), its own MongoDB database name, and a
//! server on a random port.
use std::{net::SocketAddr, sync::OnceLock};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{json, Value};
use studysync::{app::AppState, config::Config, startup::Application};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Base URL of the PostgreSQL server (the CockroachDB stand-in).
pub fn pg_base() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// URI of the MongoDB-wire server the test script started.
pub fn mongo_uri() -> String {
    if let Ok(uri) = std::env::var("MONGODB_URI") {
        return uri;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.local/mongo/uri");
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| panic!("no MONGODB_URI and no {path}: run scripts/test.sh"))
}

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var("TEST_LOG").is_ok() {
            studysync::telemetry::init_logging();
        }
    });
}

/// Creates an empty database running SERIALIZABLE by default (as
/// CockroachDB does) and returns its URL; nothing is migrated.
pub async fn empty_database() -> String {
    let name = format!("studysync_test_{}", Uuid::new_v4().simple());
    let admin = Database::connect(format!("{}/postgres", pg_base()))
        .await
        .expect("PostgreSQL is not reachable: run scripts/test.sh");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {name} SET default_transaction_isolation TO 'serializable'"
        ))
        .await
        .expect("set isolation");
    admin.close().await.ok();
    format!("{}/{name}", pg_base())
}

/// A connection to `url` whose statements the SQL audit sees.
pub async fn connect(url: &str) -> DatabaseConnection {
    let mut db = Database::connect(url).await.expect("connect test database");
    studysync::sql_audit::attach(&mut db);
    db
}

/// Creates an empty database and migrates it with the real migrations.
pub async fn fresh_database() -> String {
    let url = empty_database().await;
    let db = connect(&url).await;
    migration::runner::up(&db).await.expect("migrate");
    db.close().await.ok();
    url
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    pub database_url: String,
    pub mongo_db: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Extra settings for one test, as `--flag value` pairs.
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    spawn_app_with_mongo(&mongo_uri(), extra).await
}

/// Like [`spawn_app_with`], against the MongoDB server at `mongo_uri` (a
/// private one that a fault test may stop).
pub async fn spawn_app_with_mongo(mongo_uri: &str, extra: &[&str]) -> TestApp {
    init_logs();
    let database_url = fresh_database().await;
    let mongo_db = format!("t_{}", Uuid::new_v4().simple());
    let app = spawn_app_on(&database_url, mongo_uri, &mongo_db, extra).await;
    studysync::read::mongo::ensure_indexes(app.state.read_model())
        .await
        .expect("read model indexes");
    app
}

/// A server on an existing database and MongoDB (e.g. a second instance, or
/// one whose MongoDB is unreachable).
pub async fn spawn_app_on(
    database_url: &str,
    mongo_uri: &str,
    mongo_db: &str,
    extra: &[&str],
) -> TestApp {
    init_logs();
    let (database_url, mongo_db) = (database_url.to_owned(), mongo_db.to_owned());
    let mut args: Vec<String> = vec![
        "--database-url".into(),
        database_url.clone(),
        "--mongodb-uri".into(),
        mongo_uri.to_owned(),
        "--mongodb-db".into(),
        mongo_db.clone(),
        "--jwt-secret".into(),
        JWT_SECRET.into(),
        "--database-max-connections".into(),
        "8".into(),
        "--bind-addr".into(),
        "127.0.0.1:0".into(),
        // Every test client is 127.0.0.1: per-address auth limits would trip
        // on tests that sign up many users. Tests of the limits set their own.
        "--signup-max-per-address".into(),
        "100000".into(),
        "--login-max-failures-per-address".into(),
        "100000".into(),
        "--max-connections-per-address".into(),
        "100000".into(),
        // Debug-build password hashing on a loaded machine is slow: tests
        // that sign many users up wait for the hasher rather than being
        // refused. The login burst tests set their own bounds.
        "--password-hash-wait-ms".into(),
        "120000".into(),
        "--password-hash-queue".into(),
        "100000".into(),
        // Tests write in bulk as one user; the write limit's test sets its own.
        "--mutation-burst".into(),
        "1000000".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = Config::from_args(args).expect("test config");
    // The same start-up as `serve`; tests drain the outbox step by step.
    let app = Application::build(config)
        .await
        .expect("start the app")
        .without_worker();
    let addr = app.addr().expect("addr");
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        state,
        http: reqwest::Client::new(),
        database_url,
        mongo_db,
        shutdown: Some(tx),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn sql(&self) -> &studysync::pool::Db {
        self.state.sql()
    }

    /// A second instance on this one's databases, as behind a load balancer.
    pub async fn beside(&self, extra: &[&str]) -> TestApp {
        spawn_app_on(&self.database_url, &mongo_uri(), &self.mongo_db, extra).await
    }

    /// POSTs a GraphQL request and returns the parsed JSON body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_full(token, query, variables).await.1
    }

    /// Like [`Self::gql`], with the HTTP status.
    pub async fn gql_full(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    /// Like [`Self::gql`], with extra request headers.
    pub async fn gql_headers(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> Value {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json body")
    }

    /// Signs up a user and returns (token, id).
    pub async fn sign_up(&self, email: &str, name: &str) -> (String, String) {
        let body = self
            .gql(
                None,
                "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } } }",
                json!({ "i": { "email": email, "name": name, "password": "password123" } }),
            )
            .await;
        let token = body["data"]["signUp"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("sign up failed: {body}"))
            .to_owned();
        let id = body["data"]["signUp"]["user"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        (token, id)
    }

    /// Grants the admin role as `studysync user promote` does.
    pub async fn promote(&self, email: &str) {
        let promote = studysync::cli::UserAction::Promote {
            email: email.to_owned(),
        };
        studysync::cli::user(&self.state, promote)
            .await
            .expect("promote");
    }

    /// One document of the read model by `_id`, as the worker left it.
    pub async fn read_doc(&self, collection: &str, id: &str) -> Option<mongodb::bson::Document> {
        self.state
            .read_model()
            .collection::<mongodb::bson::Document>(collection)
            .find_one(mongodb::bson::doc! {"_id": id})
            .await
            .expect("read model")
    }

    /// The Prometheus text `/metrics` serves.
    pub async fn metrics_text(&self) -> String {
        self.metrics_text_at(&self.url("")).await
    }

    /// The Prometheus text the server at `base` (`http://host:port`, e.g. a
    /// `serve` process of its own) serves on `/metrics`.
    pub async fn metrics_text_at(&self, base: &str) -> String {
        self.http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// The value of one sample in `/metrics` (e.g.
    /// `studysync_read_fallback_total{field="messages",reason="stale"}`), 0
    /// when absent. The recorder is shared by every test in this process, so
    /// compare values before and after, never absolute ones.
    pub async fn metric(&self, sample: &str) -> f64 {
        self.metric_at(&self.url(""), sample).await
    }

    /// As [`metric`](Self::metric), from the server at `base`.
    pub async fn metric_at(&self, base: &str, sample: &str) -> f64 {
        self.metrics_text_at(base)
            .await
            .lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// A single number from SQL, e.g. `SELECT count(*) FROM todos`; asked
    /// again when the database (SERIALIZABLE, with workers writing beside
    /// the test) wants a retry.
    pub async fn count(&self, sql: &str) -> i64 {
        for _ in 0..20 {
            let statement =
                sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Postgres, sql.to_owned());
            match self.sql().query_one(statement).await {
                Ok(Some(row)) => return row.try_get_by_index::<i64>(0).expect("an integer"),
                Ok(None) => panic!("no row from {sql}"),
                Err(err) if studysync::write::is_retryable(&err) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(err) => panic!("{sql}: {err}"),
            }
        }
        panic!("{sql} kept failing with serialization errors");
    }
}

/// Polls `condition` until it holds; fails the test, naming `what`, once
/// `timeout` has passed. The one way the tests wait for something that
/// happens in the background.
pub async fn wait_until<F, Fut>(what: &str, timeout: std::time::Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

impl TestApp {
    /// Runs the sync worker's single step until no event is due, so a test
    /// can read MongoDB right after its writes. Returns the summed outcome.
    pub async fn drain(&self) -> studysync::sync::worker::Outcome {
        let settings = &self.state.config().sync;
        let mut total = studysync::sync::worker::Outcome::default();
        for _ in 0..10_000 {
            let outcome = studysync::sync::worker::process_batch(self.state.sync(), settings)
                .await
                .expect("a sync batch");
            if outcome.claimed == 0 {
                return total;
            }
            total.claimed += outcome.claimed;
            total.applied += outcome.applied;
            total.stale += outcome.stale;
            total.failed += outcome.failed;
            total.parked += outcome.parked;
        }
        panic!("the outbox never ran dry: {total:?}");
    }

    /// Starts the real worker loop in this process (woken by this app's
    /// commits); it stops when the handle is dropped.
    pub fn start_worker(&self) -> WorkerHandle {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(studysync::sync::worker::run(
            self.state.sync().clone(),
            self.state.config().sync.clone(),
            stop.clone().cancelled_owned(),
        ));
        WorkerHandle { task, stop }
    }
}

/// A running in-process worker. Dropping it aborts the task (like a crash);
/// [`WorkerHandle::stop`] shuts it down gracefully.
pub struct WorkerHandle {
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    stop: tokio_util::sync::CancellationToken,
}

impl WorkerHandle {
    /// Asks the worker to stop (it releases its claims) and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        task.await
            .expect("worker task")
            .expect("worker stopped cleanly");
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
