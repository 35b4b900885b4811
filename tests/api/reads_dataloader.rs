//! Nested lookups are batched: a page costs the same number of SQL round
//! trips whatever its size.
use serde_json::json;

use crate::reads_support::{create_room, join_room, log_study, send, spawn_read_app};

#[tokio::test]
async fn a_page_of_5_or_of_50_items_costs_the_same_number_of_batched_sql_loads() {
    let app = spawn_read_app().await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        let (token, _) = app
            .sign_up(&format!("d{i}@example.org"), &format!("Dee {i}"))
            .await;
        tokens.push(token);
    }
    let room = create_room(&app, &tokens[0], "Loaded").await;
    for token in &tokens[1..] {
        join_room(&app, token, &room).await;
    }
    for i in 0..50 {
        send(&app, &tokens[i % 5], &room, &format!("message {i}")).await;
    }
    for (i, token) in tokens.iter().enumerate() {
        log_study(&app, token, "Maths", 10 + i as i32, None).await;
    }
    app.drain().await;

    let history = "query($r: ID!, $n: Int) { messages(roomId: $r, first: $n) { edges { node { body sender { name } room { name members { name } } } } } }";
    let board = "query($n: Int) { leaderboard(period: DAY, first: $n) { edges { node { rank user { name } } } } }";
    let mut costs = Vec::new();
    for n in [5, 50] {
        let before = app.state.reads().loader_batches();
        let body = app
            .gql(Some(&tokens[0]), history, json!({"r": room, "n": n}))
            .await;
        assert_eq!(
            body["data"]["messages"]["edges"]
                .as_array()
                .expect("well-formed response")
                .len(),
            n,
            "{body}"
        );
        costs.push(app.state.reads().loader_batches() - before);
    }
    // one batch each for rooms, members and users (senders and members)
    assert_eq!(costs, [3, 3], "round trips must not grow with the page");

    let mut costs = Vec::new();
    for n in [2, 5] {
        let before = app.state.reads().loader_batches();
        let body = app.gql(Some(&tokens[0]), board, json!({"n": n})).await;
        assert_eq!(
            body["data"]["leaderboard"]["edges"]
                .as_array()
                .expect("well-formed response")
                .len(),
            n,
            "{body}"
        );
        costs.push(app.state.reads().loader_batches() - before);
    }
    assert_eq!(costs, [1, 1]);
}
