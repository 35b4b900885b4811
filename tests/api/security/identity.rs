//! Identity: a token is only as good as its account. Once the account is
//! gone, every field and mutation answers `UNAUTHENTICATED`.
use serde_json::json;

use super::rows_written;
use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_token_whose_account_is_gone_is_unauthenticated_for_reads_routed_reads_and_mutations() {
    let app = spawn_app().await;
    let (token, id) = app.sign_up("leaving@example.org", "Leaving").await;
    let (other, _) = app.sign_up("staying@example.org", "Staying").await;
    app.drain().await;
    app.count(&format!(
        "WITH gone AS (DELETE FROM users WHERE id = '{id}' RETURNING 1) SELECT count(*) FROM gone"
    ))
    .await;
    let before = rows_written(&app).await;

    for query in [
        "{ me { id } }",
        "{ todos { edges { node { id } } } }",
        "{ studyStats { totalMinutes } }",
        "{ searchMessages(query: \"hello\") { edges { node { id } } } }",
        "{ leaderboard(period: DAY) { edges { node { minutes } } } }",
        "mutation { createTodo(input: {title: \"orphan\"}) { id } }",
        "mutation { createRoom(name: \"orphans\") { id } }",
        "mutation { logStudySession(input: {subject: \"x\", minutes: 5}) { id } }",
    ] {
        let body = app.gql(Some(&token), query, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{query}: {body}");
    }
    assert_eq!(rows_written(&app).await, before, "nothing was written");
    // Everyone else is unaffected.
    let body = app.gql(Some(&other), "{ me { email } }", json!({})).await;
    assert_eq!(body["data"]["me"]["email"], "staying@example.org", "{body}");
}
