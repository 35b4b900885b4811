//! `messageAdded` across instances: every subscriber, on whichever instance,
//! receives every message of its room once and in commit order; a cursor
//! resumes with no gap and no duplicate; a MongoDB outage delays only what
//! other instances committed.
use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    helpers::{mongo_uri, spawn_app, spawn_app_on, spawn_app_with_mongo, TestApp},
    reads_support::{create_room, join_room, log_study, send},
    sync_support::{spawn_serve_process, spawn_worker_process, MongoServer},
    ws::{self, Reply, Socket},
};

const LIVE: &str =
    "subscription($r: ID!, $a: String) { messageAdded(roomId: $r, after: $a) { body cursor } }";

/// Sends a message through the server at `base` (`http://host:port`).
async fn send_via(app: &TestApp, base: &str, token: &str, room: &str, body: &str) {
    let reply: Value = app
        .http
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id } }",
            "variables": {"r": room, "b": body},
        }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON reply");
    assert!(reply["data"]["sendMessage"]["id"].is_string(), "{reply}");
}

/// Subscribes under id "1" and waits until the subscription delivers (it
/// starts asynchronously), posting probes through `app`; returns once every
/// probe has arrived.
async fn live(app: &TestApp, socket: &mut Socket, token: &str, room: &str) {
    ws::subscribe(socket, "1", LIVE, json!({"r": room})).await;
    for attempt in 0..40 {
        send(app, token, room, &format!("probe {attempt}")).await;
        if let Reply::Json(frame) = ws::next_reply(socket, Duration::from_millis(250)).await {
            assert_eq!(frame["type"], "next", "{frame}");
            while let Reply::Json(_) = ws::next_reply(socket, Duration::from_millis(300)).await {}
            return;
        }
    }
    panic!("the subscription never delivered");
}

/// The next `n` messages a subscription delivers, as (body, cursor), then
/// checks that nothing else arrives.
async fn receive(socket: &mut Socket, n: usize, wait: Duration) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        match ws::next_reply(socket, wait).await {
            Reply::Json(frame) => {
                assert_eq!(frame["type"], "next", "{frame}");
                let message = &frame["payload"]["data"]["messageAdded"];
                got.push((
                    message["body"].as_str().expect("body").to_owned(),
                    message["cursor"].as_str().expect("cursor").to_owned(),
                ));
            }
            other => panic!("after {got:?}: expected a message, got {other:?}"),
        }
    }
    assert!(
        matches!(
            ws::next_reply(socket, Duration::from_millis(700)).await,
            Reply::Silent
        ),
        "more than {n} messages after {got:?}"
    );
    got
}

/// Reads what is still on its way (the probes that made another socket
/// live) until the socket has been quiet for a second.
async fn settle(socket: &mut Socket) {
    while let Reply::Json(_) = ws::next_reply(socket, Duration::from_secs(1)).await {}
}

fn bodies(got: &[(String, String)]) -> Vec<&str> {
    got.iter().map(|(body, _)| body.as_str()).collect()
}

#[tokio::test]
async fn every_subscriber_on_every_instance_receives_every_message_once_and_in_order() {
    // Instance A (in process, no worker), instance B (a `serve --no-worker`
    // process) and a separate `worker` process, on the same databases.
    let a = spawn_app().await;
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker"]).await;
    let b_addr = b_url.trim_start_matches("http://").to_owned();
    let _worker = spawn_worker_process(&a, &mongo_uri(), &[]);
    let (owner, _) = a.sign_up("x1@example.org", "Xia").await;
    let (member, _) = a.sign_up("x2@example.org", "Xan").await;
    let room = create_room(&a, &owner, "Everywhere").await;
    join_room(&a, &member, &room).await;
    let mut on_a = ws::connect(&a, Some(&member)).await;
    let mut on_b = ws::connect_at(&b_addr, Some(&member)).await;
    live(&a, &mut on_a, &owner, &room).await;
    live(&a, &mut on_b, &owner, &room).await;
    settle(&mut on_a).await;
    settle(&mut on_b).await;

    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for (i, body) in expected.iter().enumerate() {
        if i % 2 == 0 {
            send(&a, &owner, &room, body).await;
        } else {
            send_via(&a, &b_url, &owner, &room, body).await;
        }
    }
    for socket in [&mut on_a, &mut on_b] {
        let got = receive(socket, 10, Duration::from_secs(20)).await;
        assert_eq!(bodies(&got), expected);
    }
}

/// The change streams the `serve` process at `base` has open now.
async fn streams_open(app: &TestApp, base: &str) -> f64 {
    app.metric_at(base, "studysync_change_streams_open ").await
}

async fn wait_for_streams(app: &TestApp, base: &str, want: f64) {
    for _ in 0..100 {
        if streams_open(app, base).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} change streams open, expected {want}",
        streams_open(app, base).await
    );
}

#[tokio::test]
async fn an_instance_follows_other_instances_changes_only_while_it_has_subscribers() {
    let a = spawn_app().await;
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker", "--ws-stream-idle-ms", "300"]).await;
    let b_addr = b_url.trim_start_matches("http://").to_owned();
    let _worker = spawn_worker_process(&a, &mongo_uri(), &[]);
    let (owner, _) = a.sign_up("f1@example.org", "Fay").await;
    let room = create_room(&a, &owner, "Followed").await;
    // Messages that nobody on B listens to open nothing there.
    send(&a, &owner, &room, "unheard").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(streams_open(&a, &b_url).await, 0.0);

    let mut on_b = ws::connect_at(&b_addr, Some(&owner)).await;
    live(&a, &mut on_b, &owner, &room).await;
    settle(&mut on_b).await;
    assert_eq!(streams_open(&a, &b_url).await, 1.0);
    send(&a, &owner, &room, "heard").await;
    assert_eq!(
        bodies(&receive(&mut on_b, 1, Duration::from_secs(20)).await),
        ["heard"]
    );

    // The last subscriber gone, the stream closes within the idle time...
    drop(on_b);
    wait_for_streams(&a, &b_url, 0.0).await;
    send(&a, &owner, &room, "while closed").await;
    // ...and the next subscription opens it again, from its own start.
    let mut again = ws::connect_at(&b_addr, Some(&owner)).await;
    live(&a, &mut again, &owner, &room).await;
    settle(&mut again).await;
    assert_eq!(streams_open(&a, &b_url).await, 1.0);
    for i in 0..3 {
        send(&a, &owner, &room, &format!("after {i}")).await;
    }
    let got = receive(&mut again, 3, Duration::from_secs(20)).await;
    assert_eq!(bodies(&got), ["after 0", "after 1", "after 2"]);
}

#[tokio::test]
async fn a_subscriber_resumes_after_its_cursor_with_no_gap_and_no_duplicate() {
    let a = spawn_app().await;
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker"]).await;
    let (owner, _) = a.sign_up("y1@example.org", "Yen").await;
    let room = create_room(&a, &owner, "Resumed").await;
    let mut socket = ws::connect(&a, Some(&owner)).await;
    live(&a, &mut socket, &owner, &room).await;
    for i in 0..3 {
        send(&a, &owner, &room, &format!("before {i}")).await;
    }
    let seen = receive(&mut socket, 3, Duration::from_secs(10)).await;
    let cursor = seen[2].1.clone();
    drop(socket);

    // Posted while the client was away, through both instances.
    for i in 0..4 {
        let body = format!("away {i}");
        if i % 2 == 0 {
            send(&a, &owner, &room, &body).await;
        } else {
            send_via(&a, &b_url, &owner, &room, &body).await;
        }
    }
    let mut socket = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(&mut socket, "1", LIVE, json!({"r": room, "a": cursor})).await;
    let replayed = receive(&mut socket, 4, Duration::from_secs(10)).await;
    assert_eq!(bodies(&replayed), ["away 0", "away 1", "away 2", "away 3"]);
    // ...then live, from the seam on.
    send(&a, &owner, &room, "live 0").await;
    let live_now = receive(&mut socket, 1, Duration::from_secs(10)).await;
    assert_eq!(bodies(&live_now), ["live 0"]);
    // Resuming from the last one replays nothing.
    let mut again = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(
        &mut again,
        "1",
        LIVE,
        json!({"r": room, "a": live_now[0].1}),
    )
    .await;
    assert!(matches!(
        ws::next_reply(&mut again, Duration::from_secs(1)).await,
        Reply::Silent
    ));
    // A cursor of another room is refused.
    let other = create_room(&a, &owner, "Elsewhere").await;
    ws::subscribe(&mut again, "2", LIVE, json!({"r": other, "a": cursor})).await;
    match ws::next_reply(&mut again, Duration::from_secs(5)).await {
        Reply::Json(frame) => {
            assert_eq!(frame["id"], "2", "{frame}");
            assert_eq!(
                frame["payload"][0]["extensions"]["code"]
                    .as_str()
                    .or(frame["payload"]["errors"][0]["extensions"]["code"].as_str()),
                Some("BAD_USER_INPUT"),
                "{frame}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn with_mongodb_down_local_messages_are_delivered_and_the_rest_follow_when_it_returns() {
    let mut mongo = MongoServer::start().await;
    let a = spawn_app_with_mongo(&mongo.uri(), &[]).await;
    let b = spawn_app_on(&a.database_url, &mongo.uri(), &a.mongo_db, &[]).await;
    let worker = a.start_worker();
    let (owner, _) = a.sign_up("z1@example.org", "Zed").await;
    let room = create_room(&a, &owner, "Outage").await;
    let mut on_a = ws::connect(&a, Some(&owner)).await;
    let mut on_b = ws::connect(&b, Some(&owner)).await;
    live(&a, &mut on_a, &owner, &room).await;
    live(&a, &mut on_b, &owner, &room).await;
    settle(&mut on_a).await;
    settle(&mut on_b).await;

    mongo.stop().await;
    send(&a, &owner, &room, "through A").await;
    send(&b, &owner, &room, "through B").await;
    // A's own message reaches A's subscriber at once; B's subscriber gets
    // both, in order: B's own reveals the one before it.
    let got = receive(&mut on_a, 1, Duration::from_secs(5)).await;
    assert_eq!(bodies(&got), ["through A"]);
    let got = receive(&mut on_b, 2, Duration::from_secs(5)).await;
    assert_eq!(bodies(&got), ["through A", "through B"]);

    mongo.restart().await;
    let got = receive(&mut on_a, 1, Duration::from_secs(60)).await;
    assert_eq!(bodies(&got), ["through B"]);
    worker.stop().await;
}

const BOARD: &str =
    "subscription { leaderboardChanged(period: DAY, first: 2) { rank minutes user { name } } }";

/// The next board a `leaderboardChanged` subscription pushes, as
/// (rank, name, minutes).
async fn next_board(socket: &mut Socket) -> Vec<(i64, String, i64)> {
    match ws::next_reply(socket, Duration::from_secs(20)).await {
        Reply::Json(frame) => {
            assert_eq!(frame["type"], "next", "{frame}");
            frame["payload"]["data"]["leaderboardChanged"]
                .as_array()
                .unwrap_or_else(|| panic!("a board: {frame}"))
                .iter()
                .map(|e| {
                    (
                        e["rank"].as_i64().expect("rank"),
                        e["user"]["name"].as_str().expect("name").to_owned(),
                        e["minutes"].as_i64().expect("minutes"),
                    )
                })
                .collect()
        }
        other => panic!("expected a board, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dashboard_on_another_instance_sees_the_board_change_as_workers_write_it() {
    let a = spawn_app().await;
    let _worker = spawn_worker_process(&a, &mongo_uri(), &[]);
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker"]).await;
    let b_addr = b_url.trim_start_matches("http://").to_owned();
    let (ann, _) = a.sign_up("b1@example.org", "Ann").await;
    let (bob, _) = a.sign_up("b2@example.org", "Bob").await;
    let (cy, _) = a.sign_up("b3@example.org", "Cy").await;
    let mut dashboard = ws::connect_at(&b_addr, Some(&ann)).await;
    ws::subscribe(&mut dashboard, "1", BOARD, json!({})).await;
    // The board as it stands, at once.
    assert_eq!(next_board(&mut dashboard).await, []);

    log_study(&a, &ann, "Maths", 30, None).await;
    assert_eq!(
        next_board(&mut dashboard).await,
        [(1, "Ann".to_owned(), 30)]
    );
    log_study(&a, &bob, "Maths", 50, None).await;
    assert_eq!(
        next_board(&mut dashboard).await,
        [(1, "Bob".to_owned(), 50), (2, "Ann".to_owned(), 30)]
    );
    // A change below the first two moves nothing shown: no push. Then a
    // burst: pushes are coalesced, each one differs from the one before, and
    // the last is the board after the burst.
    log_study(&a, &cy, "Art", 10, None).await;
    for _ in 0..5 {
        log_study(&a, &cy, "Art", 10, None).await;
    }
    let want = vec![(1, "Cy".to_owned(), 60), (2, "Bob".to_owned(), 50)];
    let mut last = vec![(1, "Bob".to_owned(), 50), (2, "Ann".to_owned(), 30)];
    let mut pushes = 0;
    while last != want {
        let board = next_board(&mut dashboard).await;
        assert_ne!(board, last, "a push that changed nothing");
        last = board;
        pushes += 1;
        assert!(pushes <= 6, "more pushes than changes");
    }
    assert!(matches!(
        ws::next_reply(&mut dashboard, Duration::from_secs(1)).await,
        Reply::Silent
    ));
}

const EVENTS: &str = "subscription($r: ID!, $a: String) { roomEvents(roomId: $r, after: $a) { kind messageId message { id body editedAt cursor } cursor } }";

/// Posts, edits or deletes through the server at `base`; returns the data.
async fn mutate_via(
    app: &TestApp,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    let reply: Value = app
        .http
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON reply");
    assert!(reply["errors"].is_null(), "{reply}");
    reply["data"].clone()
}

/// The next `n` room events, as (kind, message id, body or "", event
/// cursor), then checks that nothing else arrives.
async fn events(socket: &mut Socket, n: usize) -> Vec<(String, String, String, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        match ws::next_reply(socket, Duration::from_secs(10)).await {
            Reply::Json(frame) => {
                assert_eq!(frame["type"], "next", "{frame}");
                let event = &frame["payload"]["data"]["roomEvents"];
                let kind = event["kind"].as_str().expect("kind").to_owned();
                let id = event["messageId"].as_str().expect("id").to_owned();
                match kind.as_str() {
                    "DELETED" => assert!(event["message"].is_null(), "{frame}"),
                    "EDITED" => assert!(event["message"]["editedAt"].is_string(), "{frame}"),
                    _ => assert_eq!(event["message"]["id"], json!(id), "{frame}"),
                }
                let body = event["message"]["body"].as_str().unwrap_or("").to_owned();
                let cursor = event["cursor"].as_str().expect("cursor").to_owned();
                got.push((kind, id, body, cursor));
            }
            other => panic!("after {got:?}: expected an event, got {other:?}"),
        }
    }
    assert!(
        matches!(
            ws::next_reply(socket, Duration::from_millis(700)).await,
            Reply::Silent
        ),
        "more than {n} events after {got:?}"
    );
    got
}

fn kinds(got: &[(String, String, String, String)]) -> Vec<(&str, &str)> {
    got.iter()
        .map(|(k, _, b, _)| (k.as_str(), b.as_str()))
        .collect()
}

#[tokio::test]
async fn room_events_carry_additions_edits_and_deletions_in_order_across_instances_and_resume() {
    let a = spawn_app().await;
    let _worker = spawn_worker_process(&a, &mongo_uri(), &[]);
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker"]).await;
    let a_url = a.url("");
    let a_url = a_url.trim_end_matches('/');
    let (owner, _) = a.sign_up("e1@example.org", "Eda").await;
    let (friend, _) = a.sign_up("e2@example.org", "Eli").await;
    let room = create_room(&a, &owner, "Events").await;
    join_room(&a, &friend, &room).await;
    let mut socket = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(&mut socket, "1", EVENTS, json!({"r": room})).await;
    let mut added = ws::connect(&a, Some(&friend)).await;
    live(&a, &mut added, &friend, &room).await;
    // The events subscription has started once it delivers a probe.
    let mut started = false;
    for attempt in 0..40 {
        if started {
            break;
        }
        send(&a, &owner, &room, &format!("ready {attempt}")).await;
        while let Reply::Json(_) = ws::next_reply(&mut socket, Duration::from_millis(300)).await {
            started = true;
        }
    }
    assert!(started, "the events subscription never delivered");
    while let Reply::Json(_) = ws::next_reply(&mut added, Duration::from_millis(300)).await {}

    let send = "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id cursor } }";
    let edit =
        "mutation($id: ID!, $b: String!) { editMessage(id: $id, body: $b) { id body editedAt } }";
    let delete = "mutation($id: ID!) { deleteMessage(id: $id) }";
    // Through both instances: the second message, the edit and the third
    // through the other one, which reach this one by the change streams.
    // Each is awaited before the next, so each comes live: a subscriber
    // that hears of a later change first reads the ones before it from the
    // source of truth as they are by then (see the resumes below).
    let mut got = Vec::new();
    let first = mutate_via(&a, a_url, &owner, send, json!({"r": room, "b": "first"})).await;
    let first_id = first["sendMessage"]["id"].as_str().expect("id").to_owned();
    let first_cursor = first["sendMessage"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    got.extend(events(&mut socket, 1).await);
    let second = mutate_via(&a, &b_url, &friend, send, json!({"r": room, "b": "second"})).await;
    let second_id = second["sendMessage"]["id"].as_str().expect("id").to_owned();
    got.extend(events(&mut socket, 1).await);
    let edited = mutate_via(
        &a,
        &b_url,
        &owner,
        edit,
        json!({"id": first_id, "b": "first, fixed"}),
    )
    .await;
    assert_eq!(edited["editMessage"]["body"], "first, fixed");
    assert!(edited["editMessage"]["editedAt"].is_string(), "{edited}");
    got.extend(events(&mut socket, 1).await);
    mutate_via(&a, a_url, &friend, delete, json!({"id": second_id})).await;
    got.extend(events(&mut socket, 1).await);
    mutate_via(&a, &b_url, &friend, send, json!({"r": room, "b": "third"})).await;
    got.extend(events(&mut socket, 1).await);
    assert_eq!(
        kinds(&got),
        [
            ("ADDED", "first"),
            ("ADDED", "second"),
            ("EDITED", "first, fixed"),
            ("DELETED", ""),
            ("ADDED", "third"),
        ]
    );
    assert_eq!(
        (got[0].1.as_str(), got[2].1.as_str()),
        (first_id.as_str(), first_id.as_str())
    );
    assert_eq!(got[3].1, second_id);
    // messageAdded has the additions only, the deleted one included (it
    // was live when it was posted).
    let bodies = receive(&mut added, 3, Duration::from_secs(10)).await;
    let bodies: Vec<&str> = bodies.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(bodies, ["first", "second", "third"]);

    // Resuming after the second addition: what changed since, in order.
    let mut again = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(&mut again, "1", EVENTS, json!({"r": room, "a": got[1].3})).await;
    assert_eq!(
        kinds(&events(&mut again, 3).await),
        [
            ("EDITED", "first, fixed"),
            ("DELETED", ""),
            ("ADDED", "third")
        ]
    );
    // After the first (a Message.cursor): the second was posted and deleted
    // since, so it never existed for this subscriber.
    let mut early = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(
        &mut early,
        "1",
        EVENTS,
        json!({"r": room, "a": first_cursor}),
    )
    .await;
    assert_eq!(
        kinds(&events(&mut early, 2).await),
        [("EDITED", "first, fixed"), ("ADDED", "third")]
    );
    let mut replay = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(
        &mut replay,
        "1",
        LIVE,
        json!({"r": room, "a": first_cursor}),
    )
    .await;
    let bodies = receive(&mut replay, 1, Duration::from_secs(10)).await;
    assert_eq!(bodies[0].0, "third");
    // From the last event's cursor: nothing until the next change, which
    // comes live.
    let mut last = ws::connect(&a, Some(&owner)).await;
    ws::subscribe(&mut last, "1", EVENTS, json!({"r": room, "a": got[4].3})).await;
    assert!(matches!(
        ws::next_reply(&mut last, Duration::from_secs(1)).await,
        Reply::Silent
    ));
    mutate_via(
        &a,
        &b_url,
        &owner,
        edit,
        json!({"id": first_id, "b": "first, again"}),
    )
    .await;
    assert_eq!(
        kinds(&events(&mut last, 1).await),
        [("EDITED", "first, again")]
    );
}

const LEAVE: &str = "mutation($r: ID!) { leaveRoom(roomId: $r) }";

#[tokio::test]
async fn leaving_a_room_closes_its_history_search_posting_and_subscriptions_on_every_instance() {
    let a = spawn_app().await;
    let _worker = spawn_worker_process(&a, &mongo_uri(), &[]);
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker"]).await;
    let b_addr = b_url.trim_start_matches("http://").to_owned();
    let (owner, _) = a.sign_up("l1@example.org", "Lia").await;
    let (member, member_id) = a.sign_up("l2@example.org", "Leo").await;
    let room = create_room(&a, &owner, "Leaving").await;
    join_room(&a, &member, &room).await;
    send(&a, &owner, &room, "searchable words").await;
    let mut on_a = ws::connect(&a, Some(&member)).await;
    let mut on_b = ws::connect_at(&b_addr, Some(&member)).await;
    live(&a, &mut on_a, &owner, &room).await;
    live(&a, &mut on_b, &owner, &room).await;
    settle(&mut on_a).await;
    settle(&mut on_b).await;

    let left = a.gql(Some(&member), LEAVE, json!({"r": room})).await;
    assert_eq!(left["data"]["leaveRoom"], room.as_str(), "{left}");
    // Both subscriptions end with FORBIDDEN without waiting for a message:
    // A's at once, B's when the room's document changes in the read model.
    for socket in [&mut on_a, &mut on_b] {
        match ws::next_reply(socket, Duration::from_secs(20)).await {
            Reply::Json(frame) => assert_eq!(
                frame["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{frame}"
            ),
            other => panic!("expected the refusal, got {other:?}"),
        }
    }
    let reads = [
        ("query($r: ID!) { messages(roomId: $r) { edges { cursor } } }", "FORBIDDEN"),
        ("query($r: ID!) { searchMessages(query: \"searchable\", roomId: $r) { edges { cursor } } }", "FORBIDDEN"),
        ("mutation($r: ID!) { sendMessage(roomId: $r, body: \"still here?\") { id } }", "FORBIDDEN"),
        (LEAVE, "FORBIDDEN"),
    ];
    for (query, code) in reads {
        let body = a.gql(Some(&member), query, json!({"r": room})).await;
        assert_eq!(crate::helpers::error_code(&body), code, "{query}: {body}");
    }
    let unknown = a
        .gql(
            Some(&member),
            LEAVE,
            json!({"r": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&unknown), "NOT_FOUND");
    // The room's document follows, and the owner stays.
    crate::helpers::wait_until(
        "the room document drops the member",
        Duration::from_secs(20),
        || async {
            a.read_doc("rooms", &room).await.is_some_and(|doc| {
                doc.get_array("member_ids").is_ok_and(|ids| {
                    ids.len() == 1 && !ids.iter().any(|id| id.as_str() == Some(&member_id))
                })
            })
        },
    )
    .await;
    let history = a
        .gql(
            Some(&owner),
            "query($r: ID!) { messages(roomId: $r) { edges { node { body } } } }",
            json!({"r": room}),
        )
        .await;
    assert!(history["errors"].is_null(), "{history}");
}

#[tokio::test]
async fn a_rooms_live_board_moves_with_its_members_only() {
    let a = spawn_app().await;
    let _worker = spawn_worker_process(&a, &mongo_uri(), &[]);
    let (_b, b_url) = spawn_serve_process(&a, &["--no-worker"]).await;
    let b_addr = b_url.trim_start_matches("http://").to_owned();
    let (ann, _) = a.sign_up("g1@example.org", "Ann").await;
    let (bob, _) = a.sign_up("g2@example.org", "Bob").await;
    let (out, _) = a.sign_up("g3@example.org", "Out").await;
    let room = create_room(&a, &ann, "Group").await;
    join_room(&a, &bob, &room).await;
    let query = "subscription($r: ID!) { leaderboardChanged(period: DAY, first: 5, roomId: $r) { rank minutes user { name } } }";
    let mut dashboard = ws::connect_at(&b_addr, Some(&ann)).await;
    ws::subscribe(&mut dashboard, "1", query, json!({"r": room})).await;
    assert_eq!(next_board(&mut dashboard).await, []);
    log_study(&a, &bob, "Maths", 20, None).await;
    assert_eq!(
        next_board(&mut dashboard).await,
        [(1, "Bob".to_owned(), 20)]
    );
    // Someone outside the room studies: the room's board does not move.
    log_study(&a, &out, "Maths", 90, None).await;
    assert!(matches!(
        ws::next_reply(&mut dashboard, Duration::from_secs(3)).await,
        Reply::Silent
    ));
    log_study(&a, &ann, "Maths", 30, None).await;
    assert_eq!(
        next_board(&mut dashboard).await,
        [(1, "Ann".to_owned(), 30), (2, "Bob".to_owned(), 20)]
    );
    // Outsiders cannot watch it.
    let mut theirs = ws::connect(&a, Some(&out)).await;
    ws::subscribe(&mut theirs, "1", query, json!({"r": room})).await;
    match ws::next_reply(&mut theirs, Duration::from_secs(10)).await {
        Reply::Json(frame) => assert_eq!(
            frame["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{frame}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
