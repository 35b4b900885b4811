//! Every MongoDB-routed query gives the same answer from the read model and
//! from the CockroachDB fallback, on the same data.
use serde_json::{json, Value};

use crate::{
    helpers::TestApp,
    reads_support::{
        create_room, create_todo, join_room, log_study, send, spawn_read_app, stores, without_mongo,
    },
};

const ALL_ROUTED: &str = r#"
query($room: ID!, $before: String) {
  messages(roomId: $room, first: 3, before: $before) {
    edges { cursor node { id body createdAt sender { name } room { name } } }
    pageInfo { hasNextPage hasPreviousPage }
  }
  searchUsers(query: "Ada LO") { edges { cursor node { id name email } } pageInfo { hasNextPage } }
  searchMessages(query: "alg") { edges { cursor node { id body } } }
  allTime: leaderboard(period: ALL_TIME) { edges { cursor node { rank minutes user { name } } } }
  week: leaderboard(period: WEEK, first: 2) { edges { node { rank minutes user { name } } } pageInfo { hasNextPage } }
  myRank(period: ALL_TIME) { rank minutes user { name } }
  boundary: studyStats(from: "2025-03-02T00:00:00Z", to: "2025-03-04T00:00:00Z") {
    totalMinutes sessions byDay { day minutes } bySubject { subject minutes }
    todosCreated todosCompleted completionRate
  }
  studyStats { totalMinutes sessions byDay { day minutes } todosCreated todosCompleted completionRate }
  dashboard(period: ALL_TIME) { activeUsers totalMinutes sessions completionRate topSubjects { subject minutes } }
  today: dashboard(period: DAY) { activeUsers totalMinutes sessions topSubjects { subject minutes } }
}"#;

/// Four users with a tie on the boards, study across a day and an ISO week
/// boundary (Sunday 2025-03-02 / Monday 2025-03-03), todos and a chat room.
async fn seed(app: &TestApp) -> (String, String) {
    let (ada, _) = app.sign_up("ada@example.org", "Ada Lovelace").await;
    let (adam, _) = app.sign_up("adam@example.org", "Adam Smith").await;
    let (lola, _) = app.sign_up("lola@example.org", "Lola Cruz").await;
    let (bob, _) = app.sign_up("bob@example.org", "Bob Stone").await;
    log_study(app, &ada, "Maths", 20, Some("2025-03-02T23:30:00Z")).await;
    log_study(app, &ada, "Physics", 25, Some("2025-03-03T00:10:00Z")).await;
    log_study(app, &ada, "Maths", 15, Some("2025-03-03T12:00:00Z")).await;
    log_study(app, &adam, "Chemistry", 30, None).await;
    log_study(app, &lola, "Maths", 10, None).await;
    log_study(app, &lola, "Art", 20, None).await;
    log_study(app, &bob, "Art", 10, None).await;
    create_todo(app, &ada, "read chapter 1", true).await;
    create_todo(app, &ada, "read chapter 2", false).await;
    create_todo(app, &ada, "read chapter 3", true).await;
    let room = create_room(app, &ada, "Study group").await;
    join_room(app, &adam, &room).await;
    for text in [
        "Algebra homework",
        "alg is short for algebra",
        "Linear alg",
        "biology at noon",
        "ALGEBRA again",
    ] {
        send(app, &adam, &room, text).await;
    }
    (ada, room)
}

#[tokio::test]
async fn every_routed_query_answers_the_same_from_mongodb_and_from_the_cockroachdb_fallback() {
    let app = spawn_read_app().await;
    let (ada, room) = seed(&app).await;
    app.drain().await;
    let fallback = without_mongo(&app).await;

    let vars = json!({"room": room});
    let from_mongo = app.gql(Some(&ada), ALL_ROUTED, vars.clone()).await;
    let from_sql = fallback.gql(Some(&ada), ALL_ROUTED, vars).await;
    assert!(from_mongo["errors"].is_null(), "{from_mongo}");
    assert!(from_sql["errors"].is_null(), "{from_sql}");
    assert!(
        stores(&from_mongo).iter().all(|s| s == "mongodb"),
        "{from_mongo}"
    );
    assert!(
        stores(&from_sql).iter().all(|s| s == "cockroachdb"),
        "{from_sql}"
    );
    assert_eq!(stores(&from_mongo).len(), 10);
    assert_eq!(from_mongo["data"], from_sql["data"]);

    // the answers are the expected ones, not merely equal
    let d = &from_mongo["data"];
    let ranks: Vec<(i64, i64)> = d["allTime"]["edges"]
        .as_array()
        .expect("well-formed response")
        .iter()
        .map(|e| {
            (
                e["node"]["rank"].as_i64().expect("well-formed response"),
                e["node"]["minutes"].as_i64().expect("well-formed response"),
            )
        })
        .collect();
    assert_eq!(
        ranks,
        [(1, 60), (2, 30), (2, 30), (4, 10)],
        "standard competition ranking"
    );
    assert_eq!(
        d["myRank"],
        json!({"rank": 1, "minutes": 60, "user": {"name": "Ada Lovelace"}})
    );
    assert_eq!(
        d["boundary"],
        json!({
            "totalMinutes": 60, "sessions": 3,
            "byDay": [{"day": "2025-03-02", "minutes": 20}, {"day": "2025-03-03", "minutes": 40}],
            "bySubject": [{"subject": "Maths", "minutes": 35}, {"subject": "Physics", "minutes": 25}],
            "todosCreated": 0, "todosCompleted": 0, "completionRate": 0.0
        })
    );
    assert_eq!(d["studyStats"]["todosCreated"], 3);
    assert_eq!(d["studyStats"]["todosCompleted"], 2);
    assert_eq!(
        d["dashboard"],
        json!({
            "activeUsers": 4, "totalMinutes": 130, "sessions": 7, "completionRate": 2.0 / 3.0,
            "topSubjects": [
                {"subject": "Maths", "minutes": 45}, {"subject": "Art", "minutes": 30},
                {"subject": "Chemistry", "minutes": 30}, {"subject": "Physics", "minutes": 25}
            ]
        })
    );
    assert_eq!(d["today"]["activeUsers"], 3);
    let searched: Vec<&str> = d["searchMessages"]["edges"]
        .as_array()
        .expect("well-formed response")
        .iter()
        .map(|e| e["node"]["body"].as_str().expect("well-formed response"))
        .collect();
    assert_eq!(
        searched,
        [
            "Linear alg",
            "alg is short for algebra",
            "ALGEBRA again",
            "Algebra homework"
        ]
    );

    // the second history page, resumed with the first page's cursor on the
    // other store, is the same too
    let last = d["messages"]["edges"][2]["cursor"]
        .as_str()
        .expect("well-formed response");
    let vars = json!({"room": room, "before": last});
    let page2_mongo = app.gql(Some(&ada), ALL_ROUTED, vars.clone()).await;
    let page2_sql = fallback.gql(Some(&ada), ALL_ROUTED, vars).await;
    assert_eq!(
        page2_mongo["data"]["messages"],
        page2_sql["data"]["messages"]
    );
    let bodies: Vec<&str> = page2_sql["data"]["messages"]["edges"]
        .as_array()
        .expect("well-formed response")
        .iter()
        .map(|e| e["node"]["body"].as_str().expect("well-formed response"))
        .collect();
    assert_eq!(bodies, ["alg is short for algebra", "Algebra homework"]);
}

#[tokio::test]
async fn leaderboard_pages_continue_ranks_across_a_tie_in_both_stores() {
    let app = spawn_read_app().await;
    let mut tokens = Vec::new();
    for (i, minutes) in [50, 40, 40, 40, 20].iter().enumerate() {
        let (token, _) = app
            .sign_up(&format!("u{i}@example.org"), &format!("User {i}"))
            .await;
        log_study(&app, &token, "Maths", *minutes, None).await;
        tokens.push(token);
    }
    app.drain().await;
    let fallback = without_mongo(&app).await;
    let q = "query($a: String) { leaderboard(period: DAY, first: 2, after: $a) { edges { cursor node { rank minutes } } pageInfo { hasNextPage } } }";
    let mut pages: Vec<Vec<(i64, i64)>> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let vars = json!({"a": after});
        let m = app.gql(Some(&tokens[0]), q, vars.clone()).await;
        let s = fallback.gql(Some(&tokens[0]), q, vars).await;
        assert_eq!(m["data"], s["data"], "{m} vs {s}");
        let edges = m["data"]["leaderboard"]["edges"]
            .as_array()
            .expect("well-formed response")
            .clone();
        pages.push(
            edges
                .iter()
                .map(|e| {
                    (
                        e["node"]["rank"].as_i64().expect("well-formed response"),
                        e["node"]["minutes"].as_i64().expect("well-formed response"),
                    )
                })
                .collect(),
        );
        if !m["data"]["leaderboard"]["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("well-formed response")
        {
            break;
        }
        after = edges
            .last()
            .and_then(|e| e["cursor"].as_str())
            .map(str::to_owned);
    }
    assert_eq!(
        pages,
        vec![
            vec![(1, 50), (2, 40)],
            vec![(2, 40), (2, 40)],
            vec![(5, 20)]
        ]
    );
    let mine = "{ myRank(period: DAY) { rank minutes } }";
    let m = app.gql(Some(&tokens[3]), mine, json!({})).await;
    let s = fallback.gql(Some(&tokens[3]), mine, json!({})).await;
    assert_eq!(m["data"], json!({"myRank": {"rank": 2, "minutes": 40}}));
    assert_eq!(m["data"], s["data"]);
}

/// Dashboard and stats of users with nothing recorded are zeros, not errors.
#[tokio::test]
async fn empty_reports_are_zero_in_both_stores() {
    let app = spawn_read_app().await;
    let (token, _) = app.sign_up("z@example.org", "Zed").await;
    let fallback = without_mongo(&app).await;
    let q = "{ dashboard(period: WEEK) { activeUsers totalMinutes sessions completionRate topSubjects { subject } } studyStats { totalMinutes byDay { day } completionRate } myRank(period: WEEK) { rank } }";
    let m: Value = app.gql(Some(&token), q, json!({})).await;
    let s: Value = fallback.gql(Some(&token), q, json!({})).await;
    assert_eq!(m["data"], s["data"]);
    assert_eq!(m["data"]["dashboard"]["activeUsers"], 0);
    assert!(m["data"]["myRank"].is_null());
}

#[tokio::test]
async fn a_rooms_board_ranks_its_members_only_and_both_stores_agree() {
    let app = spawn_read_app().await;
    let mut tokens = Vec::new();
    for (i, minutes) in [70, 40, 60, 40, 10].iter().enumerate() {
        let (token, _) = app
            .sign_up(&format!("r{i}@example.org"), &format!("Ranked {i}"))
            .await;
        log_study(&app, &token, "Maths", *minutes, None).await;
        tokens.push(token);
    }
    // Members: 1 (40), 3 (40) and 4 (10); 0 and 2 study more but are not in it.
    let room = create_room(&app, &tokens[1], "Study group").await;
    join_room(&app, &tokens[3], &room).await;
    join_room(&app, &tokens[4], &room).await;
    app.drain().await;
    let fallback = without_mongo(&app).await;
    let board = "query($r: ID!, $a: String) { leaderboard(period: DAY, first: 2, roomId: $r, after: $a) { edges { cursor node { rank minutes user { name } } } pageInfo { hasNextPage } } myRank(period: DAY, roomId: $r) { rank minutes } }";
    let m = app.gql(Some(&tokens[4]), board, json!({"r": room})).await;
    let s = fallback
        .gql(Some(&tokens[4]), board, json!({"r": room}))
        .await;
    assert_eq!(m["data"], s["data"], "{m} vs {s}");
    assert_eq!(stores(&m), ["mongodb", "mongodb"], "{m}");
    let ranks: Vec<(i64, i64)> = m["data"]["leaderboard"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["node"]["rank"].as_i64().expect("rank"),
                e["node"]["minutes"].as_i64().expect("minutes"),
            )
        })
        .collect();
    assert_eq!(ranks, [(1, 40), (1, 40)]);
    assert_eq!(m["data"]["myRank"], json!({"rank": 3, "minutes": 10}));
    // The next page goes on with the members' ranks, in both stores.
    let after = m["data"]["leaderboard"]["edges"][1]["cursor"].clone();
    let m = app
        .gql(Some(&tokens[4]), board, json!({"r": room, "a": after}))
        .await;
    let s = fallback
        .gql(Some(&tokens[4]), board, json!({"r": room, "a": after}))
        .await;
    assert_eq!(m["data"], s["data"], "{m} vs {s}");
    assert_eq!(
        m["data"]["leaderboard"]["edges"][0]["node"]["rank"], 3,
        "{m}"
    );
    // Members only.
    let outsider = app.gql(Some(&tokens[0]), board, json!({"r": room})).await;
    assert_eq!(
        crate::helpers::error_code(&outsider),
        "FORBIDDEN",
        "{outsider}"
    );
}

#[tokio::test]
async fn a_past_periods_board_is_read_from_its_own_bucket_in_both_stores() {
    let app = spawn_read_app().await;
    let now = studysync::domain::now();
    let last_week = now - chrono::Duration::days(7);
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut tokens = Vec::new();
    for (i, (then, today)) in [(30, 5), (50, 0), (0, 90)].iter().enumerate() {
        let (token, _) = app
            .sign_up(&format!("p{i}@example.org"), &format!("Past {i}"))
            .await;
        if *then > 0 {
            log_study(&app, &token, "Maths", *then, Some(&fmt(last_week))).await;
        }
        if *today > 0 {
            log_study(&app, &token, "Maths", *today, None).await;
        }
        tokens.push(token);
    }
    app.drain().await;
    let fallback = without_mongo(&app).await;
    let q = "query($at: DateTime) { leaderboard(period: WEEK, at: $at) { edges { node { rank minutes user { name } } } } myRank(period: WEEK, at: $at) { rank minutes } }";
    let names = |body: &Value| -> Vec<(i64, String)> {
        body["data"]["leaderboard"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| {
                (
                    e["node"]["minutes"].as_i64().expect("minutes"),
                    e["node"]["user"]["name"].as_str().expect("name").to_owned(),
                )
            })
            .collect()
    };
    let past = json!({"at": fmt(last_week)});
    let m = app.gql(Some(&tokens[0]), q, past.clone()).await;
    let s = fallback.gql(Some(&tokens[0]), q, past).await;
    assert_eq!(m["data"], s["data"], "{m} vs {s}");
    assert_eq!(
        names(&m),
        [(50, "Past 1".to_owned()), (30, "Past 0".to_owned())]
    );
    assert_eq!(m["data"]["myRank"], json!({"rank": 2, "minutes": 30}));
    let current = app.gql(Some(&tokens[0]), q, json!({})).await;
    assert_eq!(
        names(&current),
        [(90, "Past 2".to_owned()), (5, "Past 0".to_owned())]
    );
    let future = json!({"at": fmt(now + chrono::Duration::days(30))});
    let refused = app.gql(Some(&tokens[0]), q, future).await;
    assert_eq!(
        crate::helpers::error_code(&refused),
        "BAD_USER_INPUT",
        "{refused}"
    );
}

#[tokio::test]
async fn around_the_caller_ranks_neighbours_like_the_board_in_both_stores() {
    let app = spawn_read_app().await;
    let mut tokens = Vec::new();
    // Board: 90, 70, 50, 50, 50, 30, 10 (ties in the middle).
    for (i, minutes) in [90, 70, 50, 50, 50, 30, 10].iter().enumerate() {
        let (token, _) = app
            .sign_up(&format!("n{i}@example.org"), &format!("Near {i}"))
            .await;
        log_study(&app, &token, "Maths", *minutes, None).await;
        tokens.push(token);
    }
    let (idle, _) = app.sign_up("idle@example.org", "Idle").await;
    app.drain().await;
    let fallback = without_mongo(&app).await;
    let q = "query($n: Int) { leaderboardAround(period: DAY, radius: $n) { rank minutes } }";
    let board = |body: &Value| -> Vec<(i64, i64)> {
        body["data"]["leaderboardAround"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| {
                (
                    e["rank"].as_i64().expect("rank"),
                    e["minutes"].as_i64().expect("minutes"),
                )
            })
            .collect()
    };
    let full = [
        (1, 90),
        (2, 70),
        (3, 50),
        (3, 50),
        (3, 50),
        (6, 30),
        (7, 10),
    ];
    for (token, radius) in tokens
        .iter()
        .zip([1, 2, 2, 1, 3, 2, 2])
        .chain([(&tokens[0], 0)])
    {
        let m = app.gql(Some(token), q, json!({"n": radius})).await;
        let s = fallback.gql(Some(token), q, json!({"n": radius})).await;
        assert_eq!(m["data"], s["data"], "{m} vs {s}");
        assert_eq!(stores(&m), ["mongodb"], "{m}");
        // The caller's own entry sits in the middle of a slice of the board.
        let got = board(&m);
        let windows: Vec<_> = full.windows(got.len()).collect();
        assert!(windows.contains(&got.as_slice()), "{got:?}");
    }
    // Inside a tie (which of the three 50s the caller is depends on ids):
    // two ahead, the caller, two behind, ranked as on the board.
    for token in &tokens[2..5] {
        let got = board(&app.gql(Some(token), q, json!({"n": 2})).await);
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[2], (3, 50), "{got:?}");
        assert!(full.windows(5).any(|w| w == got.as_slice()), "{got:?}");
    }
    // Before studying: nothing; a radius past the cap is refused.
    let m = app.gql(Some(&idle), q, json!({"n": 2})).await;
    assert_eq!(board(&m), Vec::<(i64, i64)>::new());
    let refused = app.gql(Some(&idle), q, json!({"n": 11})).await;
    assert_eq!(
        crate::helpers::error_code(&refused),
        "BAD_USER_INPUT",
        "{refused}"
    );
}
