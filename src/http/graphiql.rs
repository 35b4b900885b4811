//! GraphiQL, served entirely by this server (scripts and styles are embedded
//! in the binary), so the playground works without internet access.
use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::{Html, IntoResponse},
};

const GRAPHIQL_JS: &[u8] = include_bytes!("../../assets/graphiql/graphiql.min.js");
const GRAPHIQL_CSS: &[u8] = include_bytes!("../../assets/graphiql/graphiql.min.css");
const REACT_JS: &[u8] = include_bytes!("../../assets/graphiql/react.production.min.js");
const REACT_DOM_JS: &[u8] = include_bytes!("../../assets/graphiql/react-dom.production.min.js");
const START_JS: &[u8] = include_bytes!("../../assets/graphiql/start.js");

/// What the playground may load: only this server's own scripts, styles,
/// fonts and API. GraphiQL's styling library adds `<style>` elements at run
/// time, hence `'unsafe-inline'` for styles only (styles cannot run code);
/// its fonts are `data:` URLs in its stylesheet. No framing, by anyone.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Headers of the page and its assets: the policy above, no framing for
/// browsers that predate `frame-ancestors`, and no content sniffing.
pub fn security_headers() -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
}

/// The playground page. The token of a `signUp` or `logIn` run in it is
/// sent with every later operation (see `assets/graphiql/start.js`); the
/// bar above the editor says who is signed in and signs out.
pub fn page() -> axum::response::Response {
    (security_headers(), Html(PAGE)).into_response()
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>studysync GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  <style>
    body { margin: 0; height: 100vh; display: flex; flex-direction: column; }
    #session { font: 13px system-ui, sans-serif; padding: 6px 12px; background: #f3f4f6; border-bottom: 1px solid #d1d5db; }
    #session button { margin-left: 8px; }
    #graphiql { flex: 1; min-height: 0; }
  </style>
</head>
<body>
  <div id="session"></div>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script src="/graphiql/start.js"></script>
</body>
</html>"#;

pub async fn asset(Path(file): Path<String>) -> impl IntoResponse {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (GRAPHIQL_JS, "text/javascript; charset=utf-8"),
        "graphiql.min.css" => (GRAPHIQL_CSS, "text/css; charset=utf-8"),
        "react.production.min.js" => (REACT_JS, "text/javascript; charset=utf-8"),
        "react-dom.production.min.js" => (REACT_DOM_JS, "text/javascript; charset=utf-8"),
        "start.js" => (START_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        StatusCode::OK,
        security_headers(),
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
