//! Leaderboard tops: the worker keeps each current bucket's first entries in
//! one document, the first page and the ranks on it are read from there, and
//! everything else still comes out exactly as CockroachDB computes it.
use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use studysync::{
    domain::{self, Period},
    sync::{
        apply::{self, Guard, Verdict},
        boards,
    },
};

use crate::{
    helpers::TestApp,
    reads_support::{log_study, spawn_read_app, stores, without_mongo},
};

fn week_key() -> String {
    boards::key(Period::Week, Period::Week.bucket_start(domain::now()))
}

/// The minutes of each entry of a stored top, in stored order.
fn top_entries(top: &Document) -> Vec<i64> {
    top.get_array("entries")
        .expect("entries")
        .iter()
        .map(|e| {
            e.as_document()
                .and_then(|e| e.get_i64("minutes").ok())
                .expect("minutes")
        })
        .collect()
}

async fn users_with_minutes(app: &TestApp, minutes: &[i32]) -> Vec<String> {
    let mut tokens = Vec::new();
    for (i, m) in minutes.iter().enumerate() {
        let (token, _) = app
            .sign_up(&format!("t{i}@example.org"), &format!("Top {i}"))
            .await;
        log_study(app, &token, "Maths", *m, None).await;
        tokens.push(token);
    }
    tokens
}

const BOARD: &str = "query($first: Int) { leaderboard(period: WEEK, first: $first) { edges { node { rank minutes user { name } } } pageInfo { hasNextPage } } myRank(period: WEEK) { rank minutes } }";

fn board(body: &Value) -> Vec<(i64, i64)> {
    body["data"]["leaderboard"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no board in {body}"))
        .iter()
        .map(|e| {
            (
                e["node"]["rank"].as_i64().expect("rank"),
                e["node"]["minutes"].as_i64().expect("minutes"),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_first_page_and_ranks_on_it_are_read_from_the_top_alone() {
    let app = spawn_read_app().await;
    let tokens = users_with_minutes(&app, &[30, 50, 40, 40]).await;
    app.drain().await;
    let top = app
        .read_doc(boards::COLLECTION, &week_key())
        .await
        .expect("the worker wrote the week's top");
    assert_eq!(top_entries(&top), [50, 40, 40, 30]);
    assert_eq!(top.get_bool("complete"), Ok(true));
    for period in [Period::Day, Period::Month, Period::AllTime] {
        let key = boards::key(period, period.bucket_start(domain::now()));
        assert!(
            app.read_doc(boards::COLLECTION, &key).await.is_some(),
            "{key}"
        );
    }

    // Without the per-user documents, only the top can answer.
    app.state
        .read_model()
        .collection::<Document>("study_totals")
        .drop()
        .await
        .expect("drop");
    let body = app.gql(Some(&tokens[2]), BOARD, json!({"first": 3})).await;
    assert_eq!(stores(&body), ["mongodb", "mongodb"], "{body}");
    assert_eq!(board(&body), [(1, 50), (2, 40), (2, 40)]);
    assert_eq!(body["data"]["leaderboard"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        body["data"]["myRank"],
        json!({"rank": 2, "minutes": 40}),
        "{body}"
    );
}

#[tokio::test]
async fn a_page_past_a_partial_top_is_read_from_the_totals_and_agrees_with_cockroachdb() {
    let app = spawn_read_app().await;
    let tokens = users_with_minutes(&app, &[10, 60, 20, 60, 50]).await;
    app.drain().await;
    // A top holding only the first two entries, not the whole board.
    let db = app.state.read_model();
    let top = app
        .read_doc(boards::COLLECTION, &week_key())
        .await
        .expect("top");
    let mut entries = top.get_array("entries").expect("entries").clone();
    entries.truncate(2);
    db.collection::<Document>(boards::COLLECTION)
        .update_one(
            doc! {"_id": week_key()},
            doc! {"$set": {"entries": entries, "complete": false}},
        )
        .await
        .expect("shorten");

    let fallback = without_mongo(&app).await;
    for first in [1, 2, 5] {
        let m = app
            .gql(Some(&tokens[0]), BOARD, json!({"first": first}))
            .await;
        let s = fallback
            .gql(Some(&tokens[0]), BOARD, json!({"first": first}))
            .await;
        assert_eq!(stores(&m), ["mongodb", "mongodb"], "{m}");
        assert_eq!(m["data"], s["data"], "first {first}");
    }
    let m = app.gql(Some(&tokens[0]), BOARD, json!({"first": 5})).await;
    assert_eq!(board(&m), [(1, 60), (1, 60), (3, 50), (4, 20), (5, 10)]);
    assert_eq!(m["data"]["myRank"], json!({"rank": 5, "minutes": 10}));
}

#[tokio::test]
async fn an_older_top_never_replaces_a_newer_one() {
    let app = spawn_read_app().await;
    let tokens = users_with_minutes(&app, &[25]).await;
    app.drain().await;
    let week = (Period::Week, Period::Week.bucket_start(domain::now()));
    let older = boards::compute(app.sql(), &[week]).await.expect("compute");
    log_study(&app, &tokens[0], "Maths", 5, None).await;
    app.drain().await;
    let (_, verdicts) = apply::apply_after(app.state.read_model(), &[], &older, Guard::Newer).await;
    assert_eq!(verdicts, [Verdict::Stale]);
    let top = app
        .read_doc(boards::COLLECTION, &week_key())
        .await
        .expect("top");
    assert_eq!(top_entries(&top), [30]);
}

#[tokio::test]
async fn resync_writes_the_current_tops_again() {
    let app = spawn_read_app().await;
    users_with_minutes(&app, &[15, 45]).await;
    app.drain().await;
    let db = app.state.read_model();
    db.collection::<Document>(boards::COLLECTION)
        .drop()
        .await
        .expect("lose the tops");
    let done = studysync::sync::resync::resync(
        app.state.sync(),
        studysync::sync::resync::Options::default(),
        |_| {},
    )
    .await
    .expect("resync");
    let tops = done
        .iter()
        .find(|p| p.collection == boards::COLLECTION)
        .expect("tops rebuilt");
    assert_eq!(tops.written, boards::current(domain::now()).len() as u64);
    let top = app
        .read_doc(boards::COLLECTION, &week_key())
        .await
        .expect("top");
    assert_eq!(top_entries(&top), [45, 15]);
}

#[tokio::test]
async fn documents_after_a_refused_top_are_not_written() {
    use mongodb::{options::IndexOptions, IndexModel};
    use studysync::sync::project::Projected;
    let app = spawn_read_app().await;
    let db = app.state.read_model();
    // A collection whose unique index refuses the second document.
    let refusing = db.collection::<Document>("refusing");
    refusing
        .create_index(
            IndexModel::builder()
                .keys(doc! {"k": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .expect("index");
    refusing
        .insert_one(doc! {"_id": "a", "version": 1_i64, "k": 1})
        .await
        .expect("insert");
    let first = [Projected {
        collection: "refusing",
        id: "b".into(),
        version: 2,
        doc: doc! {"_id": "b", "version": 2_i64, "k": 1},
    }];
    let docs = [Projected {
        collection: "todos",
        id: "later".into(),
        version: 1,
        doc: doc! {"_id": "later", "version": 1_i64},
    }];
    let (before, after) = apply::apply_after(db, &first, &docs, Guard::Newer).await;
    assert!(matches!(before[0], Verdict::Rejected(_)), "{before:?}");
    assert!(matches!(after[0], Verdict::Unavailable(_)), "{after:?}");
    assert!(app.read_doc("todos", "later").await.is_none());
}
