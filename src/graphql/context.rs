//! What each request carries into the resolvers.
use std::sync::Mutex;

use async_graphql::{Context, ID};
use uuid::Uuid;

use crate::{
    app::AppState,
    entity::users,
    error::{AppError, AppResult},
    write::EventRef,
};

/// Who is calling, decided once per request from `Authorization: Bearer`.
#[derive(Clone, Debug)]
pub enum Viewer {
    Anonymous,
    User(Uuid),
    /// A token was sent but is malformed, forged or expired.
    InvalidToken,
    /// A valid token whose account no longer exists.
    AccountGone,
}

impl Viewer {
    pub fn from_bearer(state: &AppState, header: Option<&str>) -> Self {
        let Some(value) = header else {
            return Viewer::Anonymous;
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
        match token.map(|t| state.tokens().verify(t)) {
            Some(Ok(claims)) => Viewer::User(claims.sub),
            _ => Viewer::InvalidToken,
        }
    }

    /// Resolves the caller's row once for the whole request: a token whose
    /// account is gone becomes [`Viewer::AccountGone`], so every field and
    /// mutation (routed reads included) answers `UNAUTHENTICATED`. Returns
    /// the row, so the admin check need not read it again.
    #[tracing::instrument(skip_all)]
    pub async fn resolve(self, state: &AppState) -> AppResult<(Self, Option<users::Model>)> {
        let Viewer::User(id) = self else {
            return Ok((self, None));
        };
        match crate::read::sql::user(state.sql(), id).await? {
            Some(user) => Ok((Viewer::User(id), Some(user))),
            None => Ok((Viewer::AccountGone, None)),
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Viewer::User(id) => Some(*id),
            _ => None,
        }
    }
}

/// Aggregate versions written by this request's mutations; they become the
/// response's consistency token.
#[derive(Default)]
pub struct Written(Mutex<Vec<EventRef>>);

impl Written {
    pub fn take(&self) -> Vec<EventRef> {
        self.0
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

/// Shorthands every resolver uses.
pub trait ContextExt {
    fn state(&self) -> &AppState;
    fn viewer(&self) -> Viewer;
    /// The caller's id, or `UNAUTHENTICATED`.
    fn require_user(&self) -> AppResult<Uuid>;
    fn record_written(&self, events: &[EventRef]);
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }

    fn viewer(&self) -> Viewer {
        self.data_opt::<Viewer>()
            .cloned()
            .unwrap_or(Viewer::Anonymous)
    }

    fn require_user(&self) -> AppResult<Uuid> {
        match self.viewer() {
            Viewer::User(id) => Ok(id),
            Viewer::Anonymous => Err(AppError::Unauthenticated("authentication required")),
            Viewer::InvalidToken => Err(AppError::Unauthenticated("invalid or expired token")),
            Viewer::AccountGone => Err(AppError::Unauthenticated("account no longer exists")),
        }
    }

    fn record_written(&self, events: &[EventRef]) {
        if let Some(written) = self.data_opt::<std::sync::Arc<Written>>() {
            if let Ok(mut list) = written.0.lock() {
                list.extend_from_slice(events);
            }
        }
    }
}

/// Parses a GraphQL `ID` argument as a UUID.
pub fn parse_id(id: &ID, what: &str) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::bad_input(format!("{what} is not a valid id")))
}

/// The caller's account, re-read from the source of truth; a token for a
/// deleted account is `UNAUTHENTICATED`.
pub async fn current_user(ctx: &Context<'_>) -> AppResult<users::Model> {
    let id = ctx.require_user()?;
    crate::read::sql::user(ctx.state().sql(), id)
        .await?
        .ok_or(AppError::Unauthenticated("account no longer exists"))
}

/// The caller's account if it holds the admin role; `FORBIDDEN` otherwise.
/// Roles are read from the source of truth on every call, never from the token.
pub async fn require_admin(ctx: &Context<'_>) -> AppResult<users::Model> {
    let user = current_user(ctx).await?;
    if user.is_admin() {
        Ok(user)
    } else {
        Err(AppError::Forbidden(
            "this operation requires the admin role",
        ))
    }
}

/// Whether the caller holds the admin role, read from the source of truth at
/// most once per request (a page of users asks for every row).
#[derive(Default)]
pub struct AdminCheck(tokio::sync::OnceCell<bool>);

impl AdminCheck {
    /// Already known from the row the request resolved.
    pub fn known(user: Option<&users::Model>) -> Self {
        Self(tokio::sync::OnceCell::new_with(
            user.map(users::Model::is_admin),
        ))
    }
}

/// True when the caller is an admin; anonymous and invalid tokens are not.
#[tracing::instrument(skip_all)]
pub async fn viewer_is_admin(ctx: &Context<'_>) -> AppResult<bool> {
    let Some(id) = ctx.viewer().user_id() else {
        return Ok(false);
    };
    let lookup = || async {
        let user = crate::read::sql::user(ctx.state().sql(), id).await?;
        Ok::<_, AppError>(user.is_some_and(|u| u.is_admin()))
    };
    match ctx.data_opt::<std::sync::Arc<AdminCheck>>() {
        Some(cache) => cache.0.get_or_try_init(lookup).await.copied(),
        None => lookup().await,
    }
}
