//! Accounts: sign-up, log-in, profile, password change and revocation; `me`
//! and `user` read the source of truth.
use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, Result, ID};

use super::{
    context::{current_user, parse_id, require_admin, ContextExt, Viewer},
    types::{AuthPayload, User},
};
use crate::{
    domain::{Email, Password, UserName},
    error::AppError,
    ratelimit::{ClientAddr, RateLimits},
    read::sql,
    write,
};

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    pub name: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub name: Option<String>,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller, or null when not logged in.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match ctx.viewer() {
            Viewer::Anonymous => Ok(None),
            _ => Ok(Some(current_user(ctx).await?.into())),
        }
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = parse_id(&id, "id")?;
        Ok(sql::user(ctx.state().sql(), id).await?.map(User::from))
    }

    /// Admins only: finds an account by its email (support, operations).
    async fn user_by_email(&self, ctx: &Context<'_>, email: String) -> Result<Option<User>> {
        require_admin(ctx).await?;
        let Ok(email) = Email::parse(&email) else {
            return Ok(None);
        };
        Ok(sql::user_by_email(ctx.state().sql(), email.as_str())
            .await?
            .map(User::from))
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates an account and logs it in.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> Result<AuthPayload> {
        rate_limits(ctx)?.reserve_signup(client_addr(ctx)).await?;
        let email = Email::parse(&input.email)?;
        let name = UserName::parse(&input.name)?;
        let password = Password::parse(&input.password)?;
        let state = ctx.state();
        let hash = state.passwords().hash(password).await?;
        // Never admin at sign-up: an address is no proof of owning it.
        let done = write::users::sign_up(state.writer(), email, name, hash, false).await?;
        ctx.record_written(&done.events);
        let token = state
            .tokens()
            .issue(done.value.id, done.value.token_generation)?;
        Ok(AuthPayload {
            token,
            user: User::for_owner(done.value),
        })
    }

    /// Wrong password and unknown email give the same error, in the same time.
    async fn log_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        let rejected = || AppError::Unauthenticated("invalid email or password");
        let limits = rate_limits(ctx)?;
        let client = client_addr(ctx);
        let email = Email::parse(&email);
        let key = email.as_ref().ok().map(Email::as_str);
        // Counted before anything is checked; only a success gives it back.
        let attempt = limits.reserve_login(key, client).await?;
        let (Ok(email), Ok(password)) = (&email, Password::parse(&password)) else {
            return Err(rejected().into());
        };
        let state = ctx.state();
        let user = sql::user_by_email(state.sql(), email.as_str()).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = match state.passwords().verify(password, hash).await {
            Ok(ok) => ok,
            Err(busy @ AppError::RateLimited { .. }) => {
                // Not checked at all, so not a failure either.
                attempt.give_back().await;
                return Err(busy.into());
            }
            Err(other) => return Err(other.into()),
        };
        match user {
            Some(user) if ok => {
                attempt.give_back().await;
                let token = state.tokens().issue(user.id, user.token_generation)?;
                Ok(AuthPayload {
                    token,
                    user: User::for_owner(user),
                })
            }
            _ => Err(rejected().into()),
        }
    }

    /// Changes the caller's password; the current one is required (a wrong
    /// one counts as a failed logIn for the account). Every token issued
    /// before stops working, the one that made this request included, on
    /// every instance: use the token in the answer.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current: String,
        new: String,
    ) -> Result<AuthPayload> {
        let user = current_user(ctx).await?;
        let new = Password::parse(&new)?;
        confirm_password(ctx, &user, &current, "the current password is wrong").await?;
        let state = ctx.state();
        let hash = state.passwords().hash(new).await?;
        let user = write::users::change_password(state.writer(), user.id, hash).await?;
        let token = state.tokens().issue(user.id, user.token_generation)?;
        Ok(AuthPayload {
            token,
            user: User::for_owner(user),
        })
    }

    /// Revokes every token of the caller's account issued so far, this one
    /// included, on every instance; open websocket connections close at
    /// their next operation and subscriptions end before their next
    /// delivery (within `WS_RECHECK_MS`).
    async fn log_out_everywhere(&self, ctx: &Context<'_>) -> Result<bool> {
        let user_id = ctx.require_user()?;
        write::users::revoke_tokens(ctx.state().writer(), user_id).await?;
        Ok(true)
    }

    /// Erases the caller's account from both stores (the password is asked
    /// again): the account, its todos, study sessions and totals, its
    /// memberships and its messages, in one transaction, with a tombstone
    /// for every read-model document; its name and email are scrubbed from
    /// the outbox. It leaves search, boards, ranks, stats, history and the
    /// dashboard; rooms it created pass to their longest-standing member
    /// (a room left empty is deleted). Every token of the account stops
    /// working. Returns the account's id. See the README's "Erasure".
    async fn delete_account(&self, ctx: &Context<'_>, password: String) -> Result<ID> {
        let user = current_user(ctx).await?;
        confirm_password(ctx, &user, &password, "the password is wrong").await?;
        let state = ctx.state();
        let done = write::erase::delete_account(state.writer(), user.id).await?;
        ctx.record_written(&done.events);
        let erased = done.value;
        for gone in &erased.messages {
            state.publish_deletion(gone.room_id, gone.id, gone.number);
        }
        for room_id in &erased.rooms {
            state.members_changed(*room_id);
        }
        Ok(ID(erased.user_id.to_string()))
    }

    async fn update_profile(&self, ctx: &Context<'_>, input: UpdateProfileInput) -> Result<User> {
        let user_id = ctx.require_user()?;
        let name = input.name.as_deref().map(UserName::parse).transpose()?;
        let done = write::users::update_profile(ctx.state().writer(), user_id, name).await?;
        ctx.record_written(&done.events);
        Ok(done.value.into())
    }
}

/// Checks the caller's password again before a change that needs it; a
/// wrong one is `BAD_USER_INPUT` (`wrong`) and counts against the account's
/// and the address's log-in limits, as a failed `logIn` does.
async fn confirm_password(
    ctx: &Context<'_>,
    user: &crate::entity::users::Model,
    password: &str,
    wrong: &'static str,
) -> Result<(), AppError> {
    let attempt = rate_limits(ctx)?
        .reserve_login(Some(&user.email), client_addr(ctx))
        .await?;
    let Ok(password) = Password::parse(password) else {
        return Err(AppError::bad_input(wrong));
    };
    match ctx
        .state()
        .passwords()
        .verify(password, Some(user.password_hash.clone()))
        .await
    {
        Ok(true) => {
            attempt.give_back().await;
            Ok(())
        }
        Ok(false) => Err(AppError::bad_input(wrong)),
        Err(busy @ AppError::RateLimited { .. }) => {
            attempt.give_back().await;
            Err(busy)
        }
        Err(other) => Err(other),
    }
}

/// The shared rate limits; a schema built without application state
/// (printing the SDL) has none and serves no requests.
fn rate_limits<'a>(ctx: &Context<'a>) -> Result<&'a RateLimits, AppError> {
    ctx.data_opt::<Arc<RateLimits>>()
        .map(Arc::as_ref)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("rate limits are not configured")))
}

/// The caller's address, when the transport knows it.
fn client_addr(ctx: &Context<'_>) -> ClientAddr {
    ctx.data_opt::<ClientAddr>()
        .copied()
        .unwrap_or(ClientAddr(None))
}
