//! GraphiQL, served entirely by this server (scripts and styles are embedded
//! in the binary), so the playground works without internet access.
use axum::{
    extract::Path,
    http::{header, StatusCode},
    response::IntoResponse,
};

const GRAPHIQL_JS: &[u8] = include_bytes!("../../assets/graphiql/graphiql.min.js");
const GRAPHIQL_CSS: &[u8] = include_bytes!("../../assets/graphiql/graphiql.min.css");
const REACT_JS: &[u8] = include_bytes!("../../assets/graphiql/react.production.min.js");
const REACT_DOM_JS: &[u8] = include_bytes!("../../assets/graphiql/react-dom.production.min.js");

/// The playground page. It sends the token saved by a `logIn` in the
/// "Headers" tab, like any other client would.
pub fn page() -> &'static str {
    r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>studysync GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: window.location.origin + '/graphql' });
    const root = ReactDOM.createRoot(document.getElementById('graphiql'));
    root.render(React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: [
        '# studysync GraphiQL. Sign up or log in, then copy the token into the',
        '# Headers tab below as {"Authorization": "Bearer <token>"}.',
        '',
        'mutation SignUp {',
        '  signUp(input: {email: "you@example.org", name: "You", password: "a long password"}) {',
        '    token',
        '    user { id name email }',
        '  }',
        '}',
        '',
        'query Me {',
        '  me { id name email }',
        '  todos(first: 5) { edges { node { title completed } } }',
        '}',
        '',
      ].join('\n'),
      shouldPersistHeaders: true,
    }));
  </script>
</body>
</html>"#
}

pub async fn asset(Path(file): Path<String>) -> impl IntoResponse {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (GRAPHIQL_JS, "text/javascript; charset=utf-8"),
        "graphiql.min.css" => (GRAPHIQL_CSS, "text/css; charset=utf-8"),
        "react.production.min.js" => (REACT_JS, "text/javascript; charset=utf-8"),
        "react-dom.production.min.js" => (REACT_DOM_JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
