//! What each request carries into the resolvers.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

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
    /// A token checked against its account: the caller.
    User(Uuid),
    /// A well-signed, unexpired token not yet checked against its account
    /// ([`Viewer::resolve`] does); no field treats it as a caller.
    Claimed {
        user: Uuid,
        generation: i32,
    },
    /// A token was sent but is malformed, forged or expired.
    InvalidToken,
    /// A valid token whose account no longer exists.
    AccountGone,
    /// A valid token issued before its account's last `changePassword` or
    /// `logOutEverywhere`.
    Revoked,
}

/// The token of a long-lived connection (a websocket): when it expires, as
/// a Unix time in seconds (from then on its operations are refused as if the
/// token were invalid), and the account generation it was issued at.
#[derive(Clone, Copy, Debug)]
pub struct TokenExpiry {
    pub expires: i64,
    pub generation: i32,
}

impl Viewer {
    pub fn from_bearer(state: &AppState, header: Option<&str>) -> Self {
        Self::from_bearer_until(state, header).0
    }

    /// The caller, and when its token expires.
    pub fn from_bearer_until(
        state: &AppState,
        header: Option<&str>,
    ) -> (Self, Option<TokenExpiry>) {
        let Some(value) = header else {
            return (Viewer::Anonymous, None);
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
        match token.map(|t| state.tokens().verify(t)) {
            Some(Ok(claims)) => (
                Viewer::Claimed {
                    user: claims.sub,
                    generation: claims.generation,
                },
                Some(TokenExpiry {
                    expires: claims.exp,
                    generation: claims.generation,
                }),
            ),
            _ => (Viewer::InvalidToken, None),
        }
    }

    /// Resolves the caller's row once for the whole request: a token whose
    /// account is gone becomes [`Viewer::AccountGone`], one issued before the
    /// account revoked its tokens [`Viewer::Revoked`], so every field and
    /// mutation (routed reads included) answers `UNAUTHENTICATED`. Returns
    /// the row, so the admin check need not read it again.
    #[tracing::instrument(skip_all)]
    pub async fn resolve(self, state: &AppState) -> AppResult<(Self, Option<users::Model>)> {
        let Viewer::Claimed { user, generation } = self else {
            return Ok((self, None));
        };
        match crate::read::sql::user(state.sql(), user).await? {
            Some(row) if row.token_generation == generation => Ok((Viewer::User(user), Some(row))),
            Some(_) => Ok((Viewer::Revoked, None)),
            None => Ok((Viewer::AccountGone, None)),
        }
    }

    /// [`Self::resolve`] for a request whose operation runs `wanted`
    /// top-level mutation fields: the caller's row is read in the statement
    /// that takes those fields from the caller's mutation budget
    /// (`ratelimit::store::charge_caller`), one round trip instead of two.
    /// Nothing is charged for a token that resolves to no caller. The grant
    /// goes into the request as [`Precharged`], for the write limit to use
    /// instead of charging again.
    #[tracing::instrument(skip_all, fields(wanted))]
    pub async fn resolve_charging(
        self,
        state: &AppState,
        wanted: u32,
    ) -> AppResult<(Self, Option<users::Model>, Option<Precharged>)> {
        let Viewer::Claimed { user, generation } = self else {
            return Ok((self, None, None));
        };
        let charged = state
            .rate_limits()
            .charge_caller(user, generation, wanted)
            .await?;
        Ok(match charged {
            Some((row, Some(grant))) if row.token_generation == generation => (
                Viewer::User(user),
                Some(row),
                Some(Precharged { wanted, grant }),
            ),
            Some(_) => (Viewer::Revoked, None, None),
            None => (Viewer::AccountGone, None, None),
        })
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Viewer::User(id) => Some(*id),
            _ => None,
        }
    }
}

/// The caller's mutation budget, already taken for a request's top-level
/// mutation fields when its caller was resolved
/// ([`Viewer::resolve_charging`]).
#[derive(Clone, Copy, Debug)]
pub struct Precharged {
    pub wanted: u32,
    pub grant: crate::ratelimit::Grant,
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
        if let Some(token) = self.data_opt::<TokenExpiry>() {
            if chrono::Utc::now().timestamp() >= token.expires {
                return Viewer::InvalidToken;
            }
        }
        self.data_opt::<Viewer>()
            .cloned()
            .unwrap_or(Viewer::Anonymous)
    }

    fn require_user(&self) -> AppResult<Uuid> {
        match self.viewer() {
            Viewer::User(id) => Ok(id),
            Viewer::Anonymous => Err(AppError::Unauthenticated("authentication required")),
            Viewer::InvalidToken | Viewer::Claimed { .. } => {
                Err(AppError::Unauthenticated("invalid or expired token"))
            }
            Viewer::AccountGone => Err(AppError::Unauthenticated("account no longer exists")),
            Viewer::Revoked => Err(AppError::Unauthenticated(
                "this token was revoked; log in again",
            )),
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

/// What a request learns about its caller from the source of truth, each
/// fact read at most once per request: a document may ask for `me`, or for
/// the messages of one room, under many aliases, and each would otherwise
/// cost a round trip. Made per HTTP request (per entry of a batch), never
/// shared between requests; a websocket connection has none, so each of its
/// operations reads afresh.
#[derive(Default)]
pub struct CallerFacts {
    user: tokio::sync::OnceCell<Option<users::Model>>,
    rooms: tokio::sync::OnceCell<Arc<[Uuid]>>,
    membership: Mutex<HashMap<Uuid, Arc<tokio::sync::OnceCell<bool>>>>,
}

impl CallerFacts {
    /// Starts with the caller's row when the request already resolved it.
    pub fn known(user: Option<users::Model>) -> Self {
        Self {
            user: match user {
                Some(user) => tokio::sync::OnceCell::new_with(Some(Some(user))),
                None => tokio::sync::OnceCell::new(),
            },
            ..Self::default()
        }
    }

    fn membership(&self, room_id: Uuid) -> Arc<tokio::sync::OnceCell<bool>> {
        match self.membership.lock() {
            Ok(mut cells) => cells.entry(room_id).or_default().clone(),
            // A poisoned map only loses the memo: read afresh.
            Err(_) => Arc::default(),
        }
    }
}

fn facts<'a>(ctx: &'a Context<'_>) -> Option<&'a CallerFacts> {
    ctx.data_opt::<Arc<CallerFacts>>().map(Arc::as_ref)
}

/// The caller's account, read from the source of truth (once per request);
/// a token for a deleted account is `UNAUTHENTICATED`.
pub async fn current_user(ctx: &Context<'_>) -> AppResult<users::Model> {
    let id = ctx.require_user()?;
    let read = || {
        ctx.state().reads().count_loader_batch();
        crate::read::sql::user(ctx.state().sql(), id)
    };
    let user = match facts(ctx) {
        Some(facts) => facts.user.get_or_try_init(read).await?.clone(),
        None => read().await?,
    };
    user.ok_or(AppError::Unauthenticated("account no longer exists"))
}

/// The caller's account if it holds the admin role; `FORBIDDEN` otherwise.
/// Roles are read from the source of truth, never from the token.
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

/// True when the caller is an admin; anonymous and invalid tokens are not.
#[tracing::instrument(skip_all)]
pub async fn viewer_is_admin(ctx: &Context<'_>) -> AppResult<bool> {
    if ctx.viewer().user_id().is_none() {
        return Ok(false);
    }
    match current_user(ctx).await {
        Ok(user) => Ok(user.is_admin()),
        Err(AppError::Unauthenticated(_)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The rooms the caller belongs to, read once per request.
pub async fn caller_rooms(ctx: &Context<'_>, user_id: Uuid) -> AppResult<Arc<[Uuid]>> {
    let read = || async {
        ctx.state().reads().count_loader_batch();
        let rooms = crate::read::sql::room_ids_of(ctx.state().sql(), user_id).await?;
        Ok::<_, AppError>(Arc::from(rooms))
    };
    match facts(ctx) {
        Some(facts) => facts.rooms.get_or_try_init(read).await.cloned(),
        None => read().await,
    }
}

/// Whether the caller belongs to `room_id`, read once per room and request
/// (concurrent aliases wait for the first read instead of repeating it).
pub async fn caller_is_member(ctx: &Context<'_>, room_id: Uuid, user_id: Uuid) -> AppResult<bool> {
    let read = || {
        ctx.state().reads().count_loader_batch();
        crate::write::rooms::is_member(ctx.state().sql(), room_id, user_id)
    };
    match facts(ctx) {
        Some(facts) => {
            if let Some(rooms) = facts.rooms.get() {
                return Ok(rooms.contains(&room_id));
            }
            facts
                .membership(room_id)
                .get_or_try_init(read)
                .await
                .copied()
        }
        None => read().await,
    }
}
