//! MongoDB really stopped: routed queries still answer, from CockroachDB.
use serde_json::json;

use crate::{
    helpers::{fresh_database, spawn_app_on},
    reads_support::{create_room, log_study, send, stores, PrivateMongo},
};

#[tokio::test]
async fn with_mongodb_stopped_every_routed_query_answers_from_cockroachdb_and_tokens_still_see_writes(
) {
    let mut mongo = PrivateMongo::start().await;
    let database_url = fresh_database().await;
    let app = spawn_app_on(
        &database_url,
        &mongo.uri,
        "studysync_fault",
        &["--read-model-retry-after-ms", "600000"],
    )
    .await;
    studysync::read::mongo::ensure_indexes(app.state.read_model())
        .await
        .expect("indexes");
    let (token, id) = app.sign_up("f@example.org", "Fay Wray").await;
    let room = create_room(&app, &token, "Crash room").await;
    log_study(&app, &token, "Maths", 30, None).await;
    send(&app, &token, &room, "before the crash").await;
    app.drain().await;

    mongo.stop();

    let sent = send(&app, &token, &room, "after the crash").await;
    let consistency = sent["extensions"]["consistencyToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let q = r#"query($r: ID!, $u: ID) {
      messages(roomId: $r) { edges { node { body } } }
      searchUsers(query: "fay") { edges { node { name } } }
      searchMessages(query: "crash") { edges { node { body } } }
      leaderboard(period: WEEK) { edges { node { rank minutes } } }
      myRank(period: DAY) { rank }
      studyStats(userId: $u) { totalMinutes }
      dashboard(period: MONTH) { sessions }
    }"#;
    let body = app
        .gql_headers(
            Some(&token),
            q,
            json!({"r": room, "u": id}),
            &[("X-Consistency-Token", &consistency)],
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let s = stores(&body);
    assert_eq!(s.len(), 7);
    assert!(s.iter().all(|s| s == "cockroachdb"), "{body}");
    for p in body["extensions"]["provenance"]
        .as_array()
        .expect("well-formed response")
    {
        assert!(
            ["timeout", "unreachable", "error", "recently_down"]
                .contains(&p["reason"].as_str().expect("well-formed response")),
            "{p}"
        );
    }
    let d = &body["data"];
    assert_eq!(d["messages"]["edges"][0]["node"]["body"], "after the crash");
    assert_eq!(
        d["searchMessages"]["edges"]
            .as_array()
            .expect("well-formed response")
            .len(),
        2
    );
    assert_eq!(d["searchUsers"]["edges"][0]["node"]["name"], "Fay Wray");
    assert_eq!(d["leaderboard"]["edges"][0]["node"]["minutes"], 30);
    assert_eq!(d["myRank"]["rank"], 1);
    assert_eq!(d["studyStats"]["totalMinutes"], 30);
    assert_eq!(d["dashboard"]["sessions"], 1);

    // once MongoDB has failed, reads skip it instead of each waiting
    let again = app
        .gql_headers(
            Some(&token),
            q,
            json!({"r": room, "u": id}),
            &[("X-Consistency-Token", &consistency)],
        )
        .await;
    assert_eq!(again["data"], body["data"]);
    for p in again["extensions"]["provenance"]
        .as_array()
        .expect("provenance")
    {
        assert_eq!(p["reason"], "recently_down", "{p}");
    }
}
