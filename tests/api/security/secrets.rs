//! No password, password hash, token or server secret reaches the logs, the
//! outbox, the read model's documents or MongoDB. The server is the real
//! binary, logging at debug level, so everything it would log in production
//! with `RUST_LOG=debug` is scanned.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::TryStreamExt;
use mongodb::bson::Document;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};
use studysync::sync::project::project;

use crate::helpers::{mongo_uri, spawn_app};

const SECRET: &str = "leak-test-jwt-secret-0123456789-abcdefghijklmnop";
const PASSWORD: &str = "correct horse battery staple";
const WRONG_PASSWORD: &str = "incorrect pony battery staple";

/// The server process; killed when the test ends, whatever happens.
struct Server {
    child: Child,
    logs: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(database_url: &str, mongo_db: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_studysync"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("MONGODB_URI", mongo_uri())
            .env("MONGODB_DB", mongo_db)
            .env("JWT_SECRET", SECRET)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("DATABASE_MAX_CONNECTIONS", "4")
            .env("RUST_LOG", "debug")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut logs = sink.lock().expect("logs");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        Self {
            child,
            logs,
            reader: Some(reader),
        }
    }

    /// The address from the "serving" log line, once the server is up.
    async fn addr(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found = self.logs.lock().expect("logs").lines().find_map(|line| {
                let entry: Value = serde_json::from_str(line).ok()?;
                entry["fields"]["message"]
                    .as_str()?
                    .starts_with("serving GraphQL")
                    .then(|| entry["fields"]["addr"].as_str().map(str::to_owned))?
            });
            if let Some(addr) = found {
                return addr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "server exited with {status}: {}",
                    self.logs.lock().expect("logs")
                );
            }
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let logs = self.logs.lock().expect("logs").clone();
        logs
    }
}

async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

fn assert_clean(place: &str, text: &str, secrets: &[(&str, &str)]) {
    for (what, secret) in secrets {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "{what} found in {place}");
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_outbox_or_mongodb_after_sign_up_and_log_in() {
    // The harness provides the databases; the real binary serves them.
    let app = spawn_app().await;
    let (database_url, mongo_db) = (app.database_url.clone(), app.mongo_db.clone());
    let mut server = Server::start(&database_url, &mongo_db);
    let url = format!("http://{}/graphql", server.addr().await);
    let http = reqwest::Client::new();

    let signed_up = gql(
        &http,
        &url,
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { token user { id } } }",
        json!({"i": {"email": "leak@example.org", "name": "Leak", "password": PASSWORD}}),
    )
    .await;
    let first_token = signed_up["data"]["signUp"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let log_in = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
    let logged_in = gql(
        &http,
        &url,
        None,
        log_in,
        json!({"e": "leak@example.org", "p": PASSWORD}),
    )
    .await;
    let second_token = logged_in["data"]["logIn"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let refused = gql(
        &http,
        &url,
        None,
        log_in,
        json!({"e": "leak@example.org", "p": WRONG_PASSWORD}),
    )
    .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let me = gql(
        &http,
        &url,
        Some(&second_token),
        "{ me { email } }",
        json!({}),
    )
    .await;
    assert_eq!(me["data"]["me"]["email"], "leak@example.org");
    gql(
        &http,
        &url,
        Some(&second_token),
        "mutation { createTodo(input: {title: \"t\"}) { id } }",
        json!({}),
    )
    .await;

    let db = Database::connect(&database_url).await.expect("connect");
    let hash_row = db
        .query_one(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT password_hash FROM users",
        ))
        .await
        .expect("query")
        .expect("row");
    let hash: String = hash_row.try_get_by_index(0).expect("hash");
    let hash_digest = hash.rsplit('$').next().expect("digest").to_owned();
    let secrets = [
        ("the password", PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("the sign-up token", first_token.as_str()),
        ("the log-in token", second_token.as_str()),
        ("the password hash", hash.as_str()),
        ("the password hash's digest", hash_digest.as_str()),
        ("the JWT secret", SECRET),
    ];
    for body in [&signed_up, &logged_in, &refused, &me] {
        let text = body.to_string();
        assert_clean(
            "a response",
            &text.replace(&first_token, "").replace(&second_token, ""),
            &secrets,
        );
    }

    let logs = server.stop();
    assert!(logs.contains("serving GraphQL"), "the log capture works");
    assert!(logs.lines().count() > 5, "debug logging was on:\n{logs}");
    assert_clean("the logs", &logs, &secrets);

    let rows = db
        .query_all(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT aggregate_type, aggregate_id, aggregate_version, payload FROM outbox",
        ))
        .await
        .expect("outbox");
    assert!(rows.len() >= 2, "sign-up and todo events were written");
    for row in rows {
        let aggregate: String = row.try_get_by_index(0).expect("type");
        let id: uuid::Uuid = row.try_get_by_index(1).expect("id");
        let version: i64 = row.try_get_by_index(2).expect("version");
        let payload: Value = row.try_get_by_index(3).expect("payload");
        assert_clean("an outbox payload", &payload.to_string(), &secrets);
        assert!(!payload.to_string().contains("password"), "{payload}");
        let projected = project(&aggregate, id, version, &payload).expect("projects");
        let doc = format!("{:?}", projected.doc);
        assert_clean("a read-model document", &doc, &secrets);
        assert!(!doc.contains("password"), "{doc}");
    }

    let mongo = mongodb::Client::with_uri_str(mongo_uri())
        .await
        .expect("mongo");
    let database = mongo.database(&mongo_db);
    for name in database.list_collection_names().await.expect("collections") {
        let docs: Vec<Document> = database
            .collection::<Document>(&name)
            .find(Document::new())
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("docs");
        for doc in docs {
            let text = format!("{doc:?}");
            assert_clean("MongoDB", &text, &secrets);
            assert!(!text.contains("password"), "{name}: {text}");
        }
    }
    let _ = database.drop().await;
}
