//! Response headers: the playground cannot be framed, sniffed or made to
//! load foreign code; replies to authenticated requests are never cached;
//! with introspection off, errors do not suggest field names.
use serde_json::json;

use super::{get_raw, post_json, GRAPHQL_RESPONSE};
use crate::helpers::{spawn_app, spawn_app_with};

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_playground_forbids_framing_sniffing_and_scripts_from_anywhere_but_itself() {
    let app = spawn_app().await;
    let page = get_raw(&app, "", Some("text/html")).await;
    assert_eq!(page.status, 200);
    let csp = header(&page.headers, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap_or_default();
    assert!(!script_src.contains("unsafe-inline"), "{csp}");
    assert_eq!(header(&page.headers, "x-frame-options"), "DENY");
    assert_eq!(header(&page.headers, "x-content-type-options"), "nosniff");
    // No inline script (the policy would block it): every script has a src,
    // and everything the page loads comes from this server.
    let scripts = page.text.matches("<script").count();
    assert!(scripts >= 4, "{}", page.text);
    assert_eq!(
        page.text.matches("<script src=\"/graphiql/").count(),
        scripts
    );
    let assets: Vec<&str> = page
        .text
        .split(['"', '\''])
        .filter(|s| s.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), scripts + 1, "{assets:?}");
    for asset in assets {
        let reply = app.http.get(app.url(asset)).send().await.expect("asset");
        assert_eq!(reply.status(), 200, "{asset}");
        assert_eq!(header(reply.headers(), "x-content-type-options"), "nosniff");
    }
}

#[tokio::test]
async fn replies_to_authenticated_requests_are_never_cached_and_anonymous_ones_are_not_marked() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("cache@example.org", "Cache").await;
    let post = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({"query": "{ me { name } }"}))
        .send()
        .await
        .expect("post");
    assert_eq!(header(post.headers(), "cache-control"), "private, no-store");
    let body: serde_json::Value = post.json().await.expect("json");
    assert_eq!(body["data"]["me"]["name"], "Cache");
    let get = app
        .http
        .get(app.url("/graphql?query=%7Bme%7Bname%7D%7D"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(header(get.headers(), "cache-control"), "private, no-store");
    // A refusal depends on who asked too.
    let refused = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({"query": "{ nope }"}))
        .send()
        .await
        .expect("post");
    assert_eq!(
        header(refused.headers(), "cache-control"),
        "private, no-store"
    );
    let anonymous = post_json(&app, GRAPHQL_RESPONSE, &json!({"query": "{ __typename }"})).await;
    assert!(!header(&anonymous.headers, "cache-control").contains("private"));
}

#[tokio::test]
async fn with_introspection_off_errors_do_not_suggest_field_names() {
    let query = json!({"query": "{ todoos }"});
    let open = spawn_app().await;
    let reply = post_json(&open, GRAPHQL_RESPONSE, &query).await;
    let message = reply.assert_error(400, "BAD_USER_INPUT")["errors"][0]["message"].to_string();
    assert!(message.contains("Did you mean"), "{message}");
    let closed = spawn_app_with(&["--introspection", "false"]).await;
    let reply = post_json(&closed, GRAPHQL_RESPONSE, &query).await;
    let message = reply.assert_error(400, "BAD_USER_INPUT")["errors"][0]["message"].to_string();
    assert!(message.contains("todoos"), "{message}");
    assert!(!message.contains("Did you mean"), "{message}");
    assert!(!message.contains("\\\"todos\\\""), "{message}");
}
