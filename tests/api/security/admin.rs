//! The admin role: granted by `studysync user promote` (or `ADMIN_EMAILS`, at
//! start-up, to accounts that already exist), never at sign-up; read from the
//! source of truth on every request.
use serde_json::json;
use studysync::cli::{self, UserAction};

use crate::helpers::{error_code, spawn_app, spawn_app_on, spawn_app_with};

const BY_EMAIL: &str = "query($e: String!) { userByEmail(email: $e) { id email } }";

#[tokio::test]
async fn a_non_admin_asking_for_an_admin_only_field_is_forbidden() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("plain@example.org", "Plain").await;
    app.sign_up("someone@example.org", "Someone").await;
    let body = app
        .gql(Some(&token), BY_EMAIL, json!({"e": "someone@example.org"}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(body["data"]["userByEmail"].is_null());
    let anonymous = app
        .gql(None, BY_EMAIL, json!({"e": "someone@example.org"}))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
}

#[tokio::test]
async fn admins_see_other_users_private_fields_and_others_do_not() {
    let app = spawn_app().await;
    let (admin, _) = app.sign_up("root@example.org", "Root").await;
    app.promote("root@example.org").await;
    let (plain, _) = app.sign_up("plain@example.org", "Plain").await;
    let (_, id) = app.sign_up("private@example.org", "Private").await;
    let query = "query($id: ID!) { user(id: $id) { name email } }";
    let as_admin = app.gql(Some(&admin), query, json!({"id": id})).await;
    assert_eq!(
        as_admin["data"]["user"]["email"], "private@example.org",
        "{as_admin}"
    );
    let as_plain = app.gql(Some(&plain), query, json!({"id": id})).await;
    assert_eq!(
        as_plain["data"]["user"],
        json!({"name": "Private", "email": null})
    );
    let lookup = app
        .gql(Some(&admin), BY_EMAIL, json!({"e": "PRIVATE@example.org"}))
        .await;
    assert_eq!(
        lookup["data"]["userByEmail"],
        json!({"id": id, "email": "private@example.org"})
    );
}

#[tokio::test]
async fn promotion_and_demotion_take_effect_on_the_next_request() {
    let app = spawn_app().await;
    let (token, _) = app.sign_up("rising@example.org", "Rising").await;
    app.sign_up("someone@example.org", "Someone").await;
    let email = json!({"e": "someone@example.org"});
    assert_eq!(
        error_code(&app.gql(Some(&token), BY_EMAIL, email.clone()).await),
        "FORBIDDEN"
    );

    let promote = UserAction::Promote {
        email: "rising@example.org".into(),
    };
    cli::user(&app.state, promote).await.expect("promote");
    let body = app.gql(Some(&token), BY_EMAIL, email.clone()).await;
    assert_eq!(
        body["data"]["userByEmail"]["email"], "someone@example.org",
        "{body}"
    );

    let demote = UserAction::Demote {
        email: "rising@example.org".into(),
    };
    cli::user(&app.state, demote).await.expect("demote");
    assert_eq!(
        error_code(&app.gql(Some(&token), BY_EMAIL, email).await),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn signing_up_with_an_admin_emails_address_grants_no_admin_role() {
    let app = spawn_app_with(&["--admin-emails", "root@example.org"]).await;
    let (squatter, _) = app.sign_up("root@example.org", "Squatter").await;
    app.sign_up("someone@example.org", "Someone").await;
    let body = app
        .gql(
            Some(&squatter),
            BY_EMAIL,
            json!({"e": "someone@example.org"}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE role = 'admin'")
            .await,
        0
    );
}

#[tokio::test]
async fn admin_emails_grants_the_role_at_start_up_to_accounts_that_already_exist() {
    let first = spawn_app().await;
    let (token, _) = first.sign_up("ops@example.org", "Ops").await;
    first.sign_up("someone@example.org", "Someone").await;
    let email = json!({"e": "someone@example.org"});
    assert_eq!(
        error_code(&first.gql(Some(&token), BY_EMAIL, email.clone()).await),
        "FORBIDDEN"
    );
    // A restart with the address configured grants it.
    let restarted = spawn_app_on(
        &first.database_url,
        &crate::helpers::mongo_uri(),
        &first.mongo_db,
        &["--admin-emails", "ops@example.org,absent@example.org"],
    )
    .await;
    let body = restarted.gql(Some(&token), BY_EMAIL, email).await;
    assert_eq!(
        body["data"]["userByEmail"]["email"], "someone@example.org",
        "{body}"
    );
    assert_eq!(
        restarted
            .count("SELECT count(*) FROM users WHERE role = 'admin'")
            .await,
        1
    );
}
