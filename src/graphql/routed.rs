//! Glue between resolvers and `read::routing`: every MongoDB-routed field
//! goes through [`routed`], and routed lists become Relay connections here.
use std::{future::Future, sync::Arc};

use async_graphql::{
    connection::{Connection, ConnectionNameType, CursorType, Edge, EdgeNameType, EmptyFields},
    Context, OutputType,
};
use serde::Serialize;
use uuid::Uuid;

use super::context::ContextExt;
use crate::{
    error::{AppError, AppResult},
    read::{
        cursor::{Cursors, Lazy},
        routing::{ReadRequest, RoutedField},
    },
};

/// Answers `field` from MongoDB (`mongo`) or CockroachDB (`sql`), as
/// `read::routing` decides, and records which one did.
pub async fn routed<T, M, MF, S, SF>(
    ctx: &Context<'_>,
    field: RoutedField,
    mongo: M,
    sql: S,
) -> AppResult<T>
where
    M: FnOnce() -> MF,
    MF: Future<Output = AppResult<T>>,
    S: FnOnce() -> SF,
    SF: Future<Output = AppResult<T>>,
{
    let fallback = ReadRequest::default();
    let request = ctx
        .data_opt::<Arc<ReadRequest>>()
        .map(Arc::as_ref)
        .unwrap_or(&fallback);
    let path = ctx
        .path_node
        .map(|p| p.to_string())
        .unwrap_or_else(|| field.name().to_owned());
    ctx.state()
        .reads()
        .read(request, path, field, mongo, sql)
        .await
}

/// Edges' cursors are signed when a client selects them. Cursors given as
/// arguments are read by each field itself (`Cursors::decode`), never
/// through this.
impl CursorType for Lazy {
    type Error = &'static str;

    fn decode_cursor(_: &str) -> Result<Self, Self::Error> {
        Err("cursors are read by the fields that take them")
    }

    fn encode_cursor(&self) -> String {
        self.signed()
    }
}

/// A page of `(position, node)` rows fetched with one extra row: the extra
/// row only says that another page exists. Each edge's cursor is its signed
/// position.
pub fn connection<P, N, Name, EdgeName>(
    cursors: &Cursors,
    mut rows: Vec<(P, N)>,
    limit: u64,
    resumed: bool,
) -> Connection<Lazy, N, EmptyFields, EmptyFields, Name, EdgeName>
where
    P: Serialize,
    N: OutputType,
    Name: ConnectionNameType,
    EdgeName: EdgeNameType,
{
    let has_next = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut page = Connection::new(resumed, has_next);
    page.edges.extend(
        rows.into_iter()
            .map(|(position, node)| Edge::new(cursors.lazy(&position), node)),
    );
    page
}

/// Names the leaderboard's connection `LeaderboardConnection` (the contract's
/// name) rather than the default `LeaderboardEntryConnection`.
pub struct LeaderboardConnectionName;

impl ConnectionNameType for LeaderboardConnectionName {
    fn type_name<T: OutputType>() -> String {
        "LeaderboardConnection".to_owned()
    }
}

/// Names the leaderboard's edges `LeaderboardEdge`.
pub struct LeaderboardEdgeName;

impl EdgeNameType for LeaderboardEdgeName {
    fn type_name<T: OutputType>() -> String {
        "LeaderboardEdge".to_owned()
    }
}

/// NOT_FOUND for a missing room, FORBIDDEN for a room the user is not in;
/// decided on CockroachDB, like every authorization.
pub async fn require_member(ctx: &Context<'_>, room_id: Uuid, user_id: Uuid) -> AppResult<()> {
    if super::context::caller_is_member(ctx, room_id, user_id).await? {
        return Ok(());
    }
    let room = ctx
        .data_unchecked::<super::loaders::Loaders>()
        .rooms
        .load_one(room_id)
        .await
        .map_err(super::loaders::load_error)?;
    Err(if room.is_none() {
        AppError::NotFound("room")
    } else {
        AppError::Forbidden("only members can read this room")
    })
}
