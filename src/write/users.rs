//! Accounts: sign-up, profile changes, passwords and token revocation.
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use uuid::Uuid;

use super::{
    conflict_on_unique,
    outbox::{self, NewEvent},
    Committed, Writer,
};
use crate::{
    domain::{Email, UserName},
    entity::users,
    error::{AppError, AppResult},
    events::UserDoc,
};

fn event(user: &users::Model, event_type: &'static str) -> NewEvent {
    NewEvent::upsert(user.id, user.version, event_type, UserDoc::from(user))
}

/// Creates an account; a taken email (in any letter case) is a `CONFLICT`.
#[tracing::instrument(skip_all)]
pub async fn sign_up(
    writer: &Writer,
    email: Email,
    name: UserName,
    password_hash: String,
    admin: bool,
) -> AppResult<Committed<users::Model>> {
    writer
        .transact(move |tx| {
            let (email, name, hash) = (email.clone(), name.clone(), password_hash.clone());
            Box::pin(async move {
                let now = crate::domain::now();
                let user = users::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    email: Set(email.as_str().to_owned()),
                    name: Set(name.into_inner()),
                    password_hash: Set(hash),
                    role: Set(if admin { "admin" } else { "user" }.to_owned()),
                    token_generation: Set(0),
                    version: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(tx.conn())
                .await
                .map_err(|e| {
                    conflict_on_unique(e.into(), "an account with this email already exists")
                })?;
                outbox::enqueue(tx, event(&user, "user.created")).await?;
                Ok(user)
            })
        })
        .await
}

/// Changes the caller's own profile.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn update_profile(
    writer: &Writer,
    user_id: Uuid,
    name: Option<UserName>,
) -> AppResult<Committed<users::Model>> {
    writer
        .transact(move |tx| {
            let name = name.clone();
            Box::pin(async move {
                let current = users::Entity::find_by_id(user_id)
                    .one(tx.conn())
                    .await?
                    .ok_or(AppError::NotFound("user"))?;
                let version = current.version + 1;
                let mut row = current.into_active_model();
                if let Some(name) = name {
                    row.name = Set(name.into_inner());
                }
                row.version = Set(version);
                row.updated_at = Set(crate::domain::now());
                let user = row.update(tx.conn()).await?;
                outbox::enqueue(tx, event(&user, "user.updated")).await?;
                Ok(user)
            })
        })
        .await
}

/// Grants or removes the admin role (CLI only). Roles live only in the
/// source of truth; the read model never sees them, so no event is needed.
pub async fn set_role(writer: &Writer, email: &Email, admin: bool) -> AppResult<users::Model> {
    let email = email.clone();
    let done = writer
        .transact(move |tx| {
            let email = email.clone();
            Box::pin(async move {
                use sea_orm::{ColumnTrait, QueryFilter};
                let current = users::Entity::find()
                    .filter(users::Column::Email.eq(email.as_str()))
                    .one(tx.conn())
                    .await?
                    .ok_or(AppError::NotFound("user"))?;
                let mut row = current.into_active_model();
                row.role = Set(if admin { "admin" } else { "user" }.to_owned());
                Ok(row.update(tx.conn()).await?)
            })
        })
        .await?;
    Ok(done.value)
}

/// Sets a new password hash and revokes every token issued so far. Only the
/// source of truth holds credentials, so no event is written and the row's
/// version and `updated_at` (which the read model mirrors) stay as they are.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn change_password(
    writer: &Writer,
    user_id: Uuid,
    password_hash: String,
) -> AppResult<users::Model> {
    revoke(writer, user_id, Some(password_hash)).await
}

/// Revokes every token issued so far (`logOutEverywhere`).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn revoke_tokens(writer: &Writer, user_id: Uuid) -> AppResult<users::Model> {
    revoke(writer, user_id, None).await
}

/// Moves the account to its next token generation (with a new password
/// hash, if given): a token carries the generation it was issued at, and
/// one from an older generation is refused at its next request.
async fn revoke(
    writer: &Writer,
    user_id: Uuid,
    password_hash: Option<String>,
) -> AppResult<users::Model> {
    let done = writer
        .transact(move |tx| {
            let password_hash = password_hash.clone();
            Box::pin(async move {
                let current = users::Entity::find_by_id(user_id)
                    .one(tx.conn())
                    .await?
                    .ok_or(AppError::NotFound("user"))?;
                let generation = current.token_generation.wrapping_add(1);
                let mut row = current.into_active_model();
                row.token_generation = Set(generation);
                if let Some(hash) = password_hash {
                    row.password_hash = Set(hash);
                }
                Ok(row.update(tx.conn()).await?)
            })
        })
        .await?;
    Ok(done.value)
}
