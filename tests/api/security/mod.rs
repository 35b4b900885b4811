//! Hardening: GraphQL-over-HTTP compliance, CSRF, limits, malformed input,
//! brute force, tokens, admin rights, secrets and the websocket front door.
mod admin;
mod brute_force;
mod connections;
mod csrf;
mod front_door;
mod fuzz;
mod hangups;
mod headers;
mod http_spec;
mod identity;
mod limits;
mod login_burst;
mod malformed;
mod prices;
mod search;
mod secrets;
mod shared_limits;
mod tokens;
mod websocket;
mod write_limit;

use serde_json::Value;

use crate::helpers::TestApp;

pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A reply as the client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = response.text().await.expect("body");
        Self {
            status,
            content_type,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    /// Asserts a GraphQL-shaped error: the status, a JSON media type, an
    /// `errors` list whose first entry has `code`, a readable message, and
    /// nothing that looks like Rust internals.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        assert!(
            self.content_type.starts_with("application/json")
                || self.content_type.starts_with(GRAPHQL_RESPONSE),
            "content type {:?}",
            self.content_type
        );
        let body = self.json();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], code,
            "code of {body}"
        );
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(!message.is_empty());
        for internal in [
            "panicked", "Error {", "Error(", "src/", ".rs:", "DbErr", "sqlx",
        ] {
            assert!(
                !self.text.contains(internal),
                "internal detail {internal:?} in {}",
                self.text
            );
        }
        body
    }
}

/// POSTs `body` as-is with the given content type and Accept.
pub async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = app.http.post(app.url("/graphql")).body(body);
    if let Some(content_type) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if let Some(accept) = accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    Reply::from(request.send().await.expect("request")).await
}

/// POSTs a JSON GraphQL request, asking for `accept`.
pub async fn post_json(app: &TestApp, accept: &str, body: &Value) -> Reply {
    post_raw(
        app,
        Some("application/json"),
        Some(accept),
        body.to_string(),
    )
    .await
}

/// GETs `/graphql` with the given (already encoded) query string.
pub async fn get_raw(app: &TestApp, query_string: &str, accept: Option<&str>) -> Reply {
    let mut request = app
        .http
        .get(format!("{}?{query_string}", app.url("/graphql")));
    if let Some(accept) = accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    Reply::from(request.send().await.expect("request")).await
}

/// Rows in every table a mutation can write, outbox included.
pub async fn rows_written(app: &TestApp) -> i64 {
    app.count(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM todos) \
         + (SELECT count(*) FROM study_sessions) + (SELECT count(*) FROM rooms) \
         + (SELECT count(*) FROM room_members) + (SELECT count(*) FROM messages) \
         + (SELECT count(*) FROM outbox)",
    )
    .await
}

/// Percent-encodes a query-string value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
