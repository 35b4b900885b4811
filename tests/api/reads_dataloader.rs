//! Nested lookups are batched: a page costs the same number of SQL round
//! trips whatever its size.
use serde_json::json;

use crate::reads_support::{create_room, log_study, room_of, send, spawn_read_app};

#[tokio::test]
async fn a_page_of_5_or_of_50_items_costs_the_same_number_of_batched_sql_loads() {
    let app = spawn_read_app().await;
    let (tokens, room) = room_of(&app, "d", 5, "Loaded").await;
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
    // the caller's membership, then one batch each for rooms, members and
    // users (senders and members)
    assert_eq!(costs, [4, 4], "round trips must not grow with the page");

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

/// `n` aliases of `field`, as one selection.
fn aliased(n: usize, field: &str) -> String {
    (0..n).map(|i| format!("a{i}: {field} ")).collect()
}

#[tokio::test]
async fn an_alias_flood_reads_each_fact_about_the_caller_once() {
    let app = spawn_read_app().await;
    let (member, _) = app.sign_up("m@example.org", "Mia").await;
    let (outsider, _) = app.sign_up("o@example.org", "Otto").await;
    let room = create_room(&app, &member, "Aliased").await;
    send(&app, &member, &room, "hello aliases").await;
    app.drain().await;

    // (document, caller, expected reads, what each alias answers)
    let me = format!("{{ {} }}", aliased(16, "me { name }"));
    let history = format!(
        "query($r: ID!) {{ {} }}",
        aliased(
            16,
            "messages(roomId: $r, first: 1) { edges { node { body } } }"
        )
    );
    let search = format!(
        "{{ {} }}",
        aliased(
            16,
            "searchMessages(query: \"aliases\", first: 1) { edges { node { body } } }"
        )
    );
    let cases = [
        // the caller's row was resolved with the request
        (&me, &member, 0, json!({"name": "Mia"})),
        // one membership read (no nested field asks for more)
        (
            &history,
            &member,
            1,
            json!({"edges": [{"node": {"body": "hello aliases"}}]}),
        ),
        // one read of the caller's rooms
        (
            &search,
            &member,
            1,
            json!({"edges": [{"node": {"body": "hello aliases"}}]}),
        ),
    ];
    for (query, token, reads, answer) in cases {
        let before = app.state.reads().loader_batches();
        let body = app.gql(Some(token), query, json!({"r": room})).await;
        assert!(body.get("errors").is_none(), "{body}");
        for i in 0..16 {
            assert_eq!(body["data"][format!("a{i}")], answer, "{body}");
        }
        assert_eq!(
            app.state.reads().loader_batches() - before,
            reads,
            "{query}"
        );
    }

    // Refusals are memoised too, and every alias still gets its own.
    let before = app.state.reads().loader_batches();
    let body = app.gql(Some(&outsider), &history, json!({"r": room})).await;
    let errors = body["errors"].as_array().expect("refusals");
    assert_eq!(errors.len(), 16, "{body}");
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN"),
        "{body}"
    );
    // the membership, then the room (to tell FORBIDDEN from NOT_FOUND)
    assert_eq!(app.state.reads().loader_batches() - before, 2);
}

#[tokio::test]
async fn a_batch_reads_the_caller_again_after_the_mutations_before_it() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("b@example.org", "Before").await;
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!([
            {"query": "mutation { updateProfile(input: {name: \"After\"}) { name } }"},
            {"query": "{ me { name } }"},
        ]))
        .send()
        .await
        .expect("batch request");
    let body: serde_json::Value = response.json().await.expect("JSON batch response");
    assert_eq!(body[0]["data"]["updateProfile"]["name"], "After", "{body}");
    assert_eq!(body[1]["data"]["me"]["name"], "After", "{body}");
}
