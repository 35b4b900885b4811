//! Bearer tokens: only an unexpired HS256 token signed with our secret is
//! accepted; everything else is `UNAUTHENTICATED` and writes nothing.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use studysync::config::Config;

use super::rows_written;
use crate::helpers::{error_code, spawn_app, JWT_SECRET};

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn sign(header: &Header, claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("sign")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn forged_expired_and_wrong_algorithm_tokens_are_unauthenticated_and_write_nothing() {
    let app = spawn_app().await;
    let (token, id) = app.sign_up("victim@example.org", "Victim").await;
    let (_, other_id) = app.sign_up("other@example.org", "Other").await;
    let parts: Vec<&str> = token.split('.').collect();
    let claims = |sub: &str, exp: i64| json!({ "sub": sub, "iat": now(), "exp": exp });

    let tampered_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(&other_id, now() + 3600)),
        parts[2]
    );
    let stripped_signature = format!("{}.{}.", parts[0], parts[1]);
    let no_signature_part = format!("{}.{}", parts[0], parts[1]);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(&id, now() + 3600))
    );
    let alg_none_kept_signature = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    let expired = sign(
        &Header::new(Algorithm::HS256),
        &claims(&id, now() - 5),
        JWT_SECRET,
    );
    let wrong_algorithm = sign(
        &Header::new(Algorithm::HS512),
        &claims(&id, now() + 3600),
        JWT_SECRET,
    );
    let other_secret = sign(
        &Header::new(Algorithm::HS256),
        &claims(&id, now() + 3600),
        "another-secret-another-secret-another-secret",
    );
    let no_expiry = sign(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": id }),
        JWT_SECRET,
    );

    let before = rows_written(&app).await;
    for (case, bad) in [
        ("payload edited", tampered_payload),
        ("signature stripped", stripped_signature),
        ("signature part missing", no_signature_part),
        ("alg none", alg_none),
        ("alg none with the old signature", alg_none_kept_signature),
        ("expired", expired),
        ("HS512", wrong_algorithm),
        ("other secret", other_secret),
        ("no exp", no_expiry),
    ] {
        let me = app.gql(Some(&bad), "{ me { id email } }", json!({})).await;
        assert_eq!(error_code(&me), "UNAUTHENTICATED", "{case}: {me}");
        assert!(me["data"]["me"].is_null(), "{case}: {me}");
        let write = app
            .gql(
                Some(&bad),
                "mutation { createTodo(input: {title: \"x\"}) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&write), "UNAUTHENTICATED", "{case}: {write}");
    }
    assert_eq!(rows_written(&app).await, before);
    let genuine = app.gql(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(genuine["data"]["me"]["id"], json!(id));
}

fn config_args(secret: &str) -> Vec<String> {
    [
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/unused",
        "--mongodb-uri",
        "mongodb://127.0.0.1:1",
        "--jwt-secret",
        secret,
    ]
    .map(str::to_owned)
    .to_vec()
}

#[test]
fn a_short_jwt_secret_is_refused_at_start_up_without_printing_it() {
    let short = "0123456789abcdef0123456789abcde"; // 31 bytes
    let error = Config::from_args(config_args(short)).expect_err("short secret refused");
    let text = format!("{error:#}");
    assert!(text.contains("JWT_SECRET"), "{text}");
    assert!(!text.contains(short), "{text}");
    assert!(Config::from_args(config_args(&format!("{short}f"))).is_ok());
}

#[test]
fn the_server_binary_exits_on_a_short_jwt_secret() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_studysync"))
        .arg("serve")
        .args(config_args("too-short"))
        .env_remove("JWT_SECRET")
        .output()
        .expect("run binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(!stderr.contains("too-short"), "{stderr}");
}
