//! Cross-site request forgery: a page on another site can make a browser send
//! GETs and "simple" POSTs (form, multipart, text/plain) without asking the
//! server first. None of them may run a mutation.
use serde_json::json;

use super::{encode, get_raw, post_raw, rows_written};
use crate::helpers::spawn_app;

const SIGN_UP: &str = r#"mutation { signUp(input: {email: "csrf@example.org", name: "Mallory", password: "password123"}) { token } }"#;

#[tokio::test]
async fn a_mutation_sent_as_get_is_refused_with_405_and_writes_nothing() {
    let app = spawn_app().await;
    let query = format!("query={}", encode(SIGN_UP));
    for accept in [
        None,
        Some("application/json"),
        Some(super::GRAPHQL_RESPONSE),
    ] {
        let reply = get_raw(&app, &query, accept).await;
        reply.assert_error(405, "METHOD_NOT_ALLOWED");
        assert_eq!(reply.headers["allow"], "POST");
    }
    // Naming a query operation in a document that also holds a mutation
    // does not smuggle the mutation through.
    let mixed = format!(
        "query={}&operationName=M",
        encode(&format!(
            "query Q {{ __typename }} {}",
            SIGN_UP.replacen("mutation", "mutation M", 1)
        ))
    );
    get_raw(&app, &mixed, None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_mutation_posted_as_a_form_is_refused_with_415_and_writes_nothing() {
    let app = spawn_app().await;
    let form = format!("query={}", encode(SIGN_UP));
    let reply = post_raw(&app, Some("application/x-www-form-urlencoded"), None, form).await;
    reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(rows_written(&app).await, 0);
}

#[tokio::test]
async fn a_mutation_posted_as_text_plain_or_multipart_is_refused_with_415_and_writes_nothing() {
    let app = spawn_app().await;
    let json_body = json!({ "query": SIGN_UP }).to_string();
    let text = post_raw(&app, Some("text/plain"), None, json_body.clone()).await;
    text.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let text_utf8 = post_raw(
        &app,
        Some("text/plain;charset=UTF-8"),
        None,
        json_body.clone(),
    )
    .await;
    text_utf8.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let boundary = "----studysync-boundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{json_body}\r\n--{boundary}--\r\n"
    );
    let reply = post_raw(
        &app,
        Some(&format!("multipart/form-data; boundary={boundary}")),
        None,
        multipart,
    )
    .await;
    reply.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert_eq!(rows_written(&app).await, 0);
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight")
}

#[tokio::test]
async fn no_origin_may_call_cross_site_unless_configured() {
    let app = spawn_app().await;
    let reply = preflight(&app, "https://evil.example").await;
    assert!(reply.headers().get("access-control-allow-origin").is_none());
    let post = app
        .http
        .post(app.url("/graphql"))
        .header("origin", "https://evil.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .expect("post");
    assert!(post.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn configured_origins_pass_the_preflight_and_others_do_not() {
    let app =
        crate::helpers::spawn_app_with(&["--cors-allowed-origins", "https://app.example.org"])
            .await;
    let allowed = preflight(&app, "https://app.example.org").await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight(&app, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
