//! The playground's script (`assets/graphiql/start.js`, as the server serves
//! it), run under Node against a real server: GraphiQL itself is replaced by
//! the fetcher `GraphiQL.createFetcher` makes (a POST of the operation with
//! the editor's headers), so what is tested is the script's own work: the
//! token a sign-up or log-in returns is sent with the next operations, the
//! Headers tab still wins, signing out stops it, and every example of the
//! default document runs.
use std::{process::Command, time::Duration};

use serde_json::{json, Value};

use crate::{
    helpers::spawn_app,
    ws::{self, Reply},
};

/// Stubs the browser and GraphiQL, runs the served script, then drives its
/// fetcher through a session and prints what happened as JSON.
const HARNESS: &str = r#"
const vm = require('vm');
const [script, origin] = [process.argv[2], process.argv[3]];
const storage = new Map();
const elements = {};
function element(id) {
  return elements[id] || (elements[id] = {
    id, children: [], textContent: '', hidden: false, listeners: {},
    appendChild(child) { this.children.push(child); },
    addEventListener(type, f) { this.listeners[type] = f; },
  });
}
let rendered = null;
const sent = [];
const context = {
  console,
  window: {
    location: { origin },
    localStorage: {
      getItem: k => (storage.has(k) ? storage.get(k) : null),
      setItem: (k, v) => storage.set(k, String(v)),
      removeItem: k => storage.delete(k),
    },
  },
  document: {
    getElementById: element,
    createElement: tag => ({ tag, textContent: '', hidden: false, listeners: {},
      addEventListener(type, f) { this.listeners[type] = f; } }),
  },
  React: { createElement: (type, props) => ({ type, props }) },
  ReactDOM: { createRoot: () => ({ render: tree => { rendered = tree; } }) },
  GraphiQL: {
    createFetcher: options => async (params, opts) => {
      sent.push({ operationName: params.operationName || null, headers: opts.headers });
      const response = await fetch(options.url, {
        method: 'POST',
        headers: Object.assign({ 'content-type': 'application/json' }, opts.headers),
        body: JSON.stringify(params),
      });
      return response.json();
    },
  },
};
context.window.document = context.document;
vm.createContext(context);
vm.runInContext(require('fs').readFileSync(script, 'utf8'), context);
const api = context.window.studysyncGraphiQL;
const fetcher = rendered.props.fetcher;
const document = rendered.props.defaultQuery;
const header = (headers, name) => {
  const found = Object.keys(headers).find(k => k.toLowerCase() === name);
  return found === undefined ? null : headers[found];
};
(async () => {
  const steps = [];
  const run = async (operationName, headers, query) => {
    const result = await fetcher({ query: query || document, operationName }, { headers: headers || {} });
    steps.push({ operationName, result, label: api.label.textContent, signOutHidden: api.signOut.hidden,
                 authorization: header(sent[sent.length - 1].headers, 'authorization') });
    return result;
  };
  await run('Stats');
  await run('SignUp');
  const room = (await run('Write')).data.createRoom.id;
  await run('History', {}, document.replace('00000000-0000-0000-0000-000000000000', room));
  await run('Search');
  await run('Boards');
  await run('Stats');
  await run('Me', { authorization: 'Bearer not-a-token' }, 'query Me { me { id } }');
  await run('Aliased', {}, 'mutation Aliased { again: logIn(email: "you@example.org", password: "a long password") { token user { name } } }');
  api.signOut.listeners.click();
  await run('Me', {}, 'query Me { me { name } }');
  console.log(JSON.stringify({ steps, document, stored: [...storage.keys()] }));
})().catch(e => { console.error(e); process.exit(1); });
"#;

fn node() -> &'static str {
    let found = Command::new("node").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "Node is needed to run the playground's script: scripts/test.sh installs it"
    );
    "node"
}

#[tokio::test]
async fn the_playground_signs_in_with_the_token_an_operation_returns_and_every_example_runs() {
    let app = spawn_app().await;
    let script = app
        .http
        .get(app.url("/graphiql/start.js"))
        .send()
        .await
        .expect("script")
        .text()
        .await
        .expect("text");
    let dir = std::env::temp_dir().join(format!("studysync-graphiql-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("start.js"), script).expect("write script");
    std::fs::write(dir.join("harness.js"), HARNESS).expect("write harness");
    let origin = app.url("").trim_end_matches('/').to_owned();
    let output = tokio::process::Command::new(node())
        .arg(dir.join("harness.js"))
        .arg(dir.join("start.js"))
        .arg(&origin)
        .output()
        .await
        .expect("run node");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let steps = report["steps"].as_array().expect("steps");
    let step = |i: usize| &steps[i];

    // Before signing in: no token is sent, and the bar says so.
    assert_eq!(step(0)["authorization"], Value::Null);
    assert_eq!(step(0)["signOutHidden"], true);
    assert!(step(0)["label"].as_str().unwrap().contains("Not signed in"));
    // SignUp's token is sent from the next operation on.
    let token = step(1)["result"]["data"]["signUp"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", step(1)))
        .to_owned();
    assert!(step(1)["label"]
        .as_str()
        .unwrap()
        .contains("Signed in as You"));
    assert_eq!(step(1)["signOutHidden"], false);
    // Every example of the default document runs, signed in.
    for i in 2..=6 {
        assert_eq!(
            step(i)["authorization"],
            json!(format!("Bearer {token}")),
            "{}",
            step(i)
        );
        assert!(
            step(i)["result"]["errors"].is_null(),
            "{}: {}",
            step(i)["operationName"],
            step(i)["result"]
        );
    }
    assert_eq!(step(3)["result"]["data"]["rooms"][0]["name"], "Study group");
    assert_eq!(step(2)["result"]["data"]["logStudySession"]["minutes"], 45);
    // An Authorization set in the Headers tab wins.
    assert_eq!(step(7)["authorization"], "Bearer not-a-token");
    assert_eq!(
        step(7)["result"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    // A log-in under an alias is recognised too.
    assert!(step(8)["result"]["data"]["again"]["token"].is_string());
    assert!(step(8)["label"]
        .as_str()
        .unwrap()
        .contains("Signed in as You"));
    // Signing out: nothing is sent, nothing is kept.
    assert_eq!(step(9)["authorization"], Value::Null);
    assert_eq!(step(9)["result"]["data"]["me"], Value::Null);
    assert_eq!(report["stored"], json!([]));

    // The default document has one example per area, subscription
    // included, and the subscription runs over the websocket endpoint.
    let document = report["document"].as_str().expect("document");
    for operation in [
        "mutation SignUp",
        "mutation LogIn",
        "mutation Write",
        "query History",
        "query Search",
        "query Boards",
        "query Stats",
        "subscription LiveBoard",
    ] {
        assert!(document.contains(operation), "no {operation} example");
    }
    app.drain().await;
    let mut socket = ws::connect(&app, Some(&token)).await;
    let start = json!({
        "id": "2",
        "type": "subscribe",
        "payload": {"query": document, "operationName": "LiveBoard"},
    });
    ws::send_json(&mut socket, &start).await;
    match ws::next_reply(&mut socket, Duration::from_secs(10)).await {
        Reply::Json(frame) => {
            assert_eq!(frame["type"], "next", "{frame}");
            assert_eq!(
                frame["payload"]["data"]["leaderboardChanged"][0]["user"]["name"], "You",
                "{frame}"
            );
        }
        other => panic!("expected the board, got {other:?}"),
    }
}
