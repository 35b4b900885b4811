use serde_json::json;

use crate::helpers::{error_code, spawn_app};

const CREATE: &str = "mutation($i: CreateTodoInput!) { createTodo(input: $i) { id title completed version owner { name } } }";
const UPDATE: &str = "mutation($id: ID!, $i: UpdateTodoInput!) { updateTodo(id: $id, input: $i) { id title completed completedAt dueAt version } }";

#[tokio::test]
async fn todos_are_created_updated_and_deleted_with_versions() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("a@example.org", "Ann").await;
    let created = app
        .gql(
            Some(&token),
            CREATE,
            json!({"i": {"title": " Read ch. 3 ", "dueAt": "2030-01-01T00:00:00Z"}}),
        )
        .await;
    let todo = &created["data"]["createTodo"];
    assert_eq!(todo["title"], "Read ch. 3");
    assert_eq!(todo["version"], 1);
    assert_eq!(todo["owner"]["name"], "Ann");
    let id = todo["id"].as_str().expect("id");

    let updated = app
        .gql(
            Some(&token),
            UPDATE,
            json!({"id": id, "i": {"completed": true, "dueAt": null}}),
        )
        .await;
    let todo = &updated["data"]["updateTodo"];
    assert_eq!(todo["completed"], true, "{updated}");
    assert!(todo["completedAt"].is_string());
    assert_eq!(todo["dueAt"], serde_json::Value::Null);
    assert_eq!(todo["version"], 2);

    let deleted = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { deleteTodo(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["data"]["deleteTodo"], id);
    let gone = app
        .gql(
            Some(&token),
            "query($id: ID!) { todo(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(gone["data"]["todo"], serde_json::Value::Null);
    let versions = app
        .count(&format!("SELECT max(aggregate_version) FROM outbox WHERE aggregate_id = '{id}' AND event_type = 'todo.deleted'"))
        .await;
    assert_eq!(
        versions, 3,
        "the tombstone is one version above the last row"
    );
}

#[tokio::test]
async fn another_users_todo_cannot_be_read_changed_or_deleted() {
    let app = spawn_app().await;
    let (owner, _) = app.sign_up("o@example.org", "Owner").await;
    let (intruder, _) = app.sign_up("i@example.org", "Intruder").await;
    let created = app
        .gql(Some(&owner), CREATE, json!({"i": {"title": "mine"}}))
        .await;
    let id = created["data"]["createTodo"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let outbox = app.count("SELECT count(*) FROM outbox").await;

    let read = app
        .gql(
            Some(&intruder),
            "query($id: ID!) { todo(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&read), "FORBIDDEN");
    let change = app
        .gql(
            Some(&intruder),
            UPDATE,
            json!({"id": id, "i": {"title": "theirs"}}),
        )
        .await;
    assert_eq!(error_code(&change), "FORBIDDEN");
    let delete = app
        .gql(
            Some(&intruder),
            "mutation($id: ID!) { deleteTodo(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&delete), "FORBIDDEN");
    let missing = app
        .gql(
            Some(&owner),
            UPDATE,
            json!({"id": uuid::Uuid::new_v4(), "i": {"title": "x"}}),
        )
        .await;
    assert_eq!(error_code(&missing), "NOT_FOUND");
    let invalid = app
        .gql(
            Some(&owner),
            UPDATE,
            json!({"id": "not-a-uuid", "i": {"title": "x"}}),
        )
        .await;
    assert_eq!(error_code(&invalid), "BAD_USER_INPUT");

    assert_eq!(app.count("SELECT count(*) FROM outbox").await, outbox);
    assert_eq!(
        app.count("SELECT count(*) FROM todos WHERE title = 'mine' AND version = 1")
            .await,
        1
    );
}

#[tokio::test]
async fn invalid_todo_input_is_rejected_and_writes_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("v@example.org", "Val").await;
    for input in [
        json!({"title": ""}),
        json!({"title": "x".repeat(201)}),
        json!({"title": "ok", "dueAt": "1990-01-01T00:00:00Z"}),
        json!({"title": "ok", "dueAt": "not a date"}),
    ] {
        let body = app.gql(Some(&token), CREATE, json!({"i": input})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    assert_eq!(app.count("SELECT count(*) FROM todos").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE aggregate_type = 'todo'")
            .await,
        0
    );
}

#[tokio::test]
async fn todos_page_newest_first_with_opaque_cursors_and_a_completed_filter() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("p@example.org", "Pat").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = app
            .gql(
                Some(&token),
                CREATE,
                json!({"i": {"title": format!("t{i}")}}),
            )
            .await;
        ids.push(
            body["data"]["createTodo"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    app.gql(
        Some(&token),
        UPDATE,
        json!({"id": ids[1], "i": {"completed": true}}),
    )
    .await;
    let page = "query($after: String, $c: Boolean) { todos(first: 2, after: $after, completed: $c) { edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }";
    let mut titles = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let body = app.gql(Some(&token), page, json!({"after": after})).await;
        let conn = &body["data"]["todos"];
        for edge in conn["edges"].as_array().expect("edges") {
            titles.push(edge["node"]["title"].as_str().expect("title").to_owned());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(titles, ["t4", "t3", "t2", "t1", "t0"]);
    let done = app.gql(Some(&token), page, json!({"c": true})).await;
    assert_eq!(done["data"]["todos"]["edges"][0]["node"]["title"], "t1");
    assert_eq!(
        done["data"]["todos"]["edges"].as_array().map(Vec::len),
        Some(1)
    );

    let tampered = app
        .gql(
            Some(&token),
            page,
            json!({"after": "eyJmb28iOjF9AAAAAAAAAAAAAAAA"}),
        )
        .await;
    assert_eq!(error_code(&tampered), "BAD_USER_INPUT");
    let too_big = app
        .gql(
            Some(&token),
            "{ todos(first: 101) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&too_big), "BAD_USER_INPUT");
    let (other, _) = app.sign_up("q@example.org", "Quinn").await;
    let theirs = app
        .gql(Some(&other), "{ todos { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(theirs["data"]["todos"]["edges"], json!([]));
}
