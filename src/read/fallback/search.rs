//! Search without the read model: candidate rows are folded in Rust with the
//! functions the projection uses, so matching and ranking are identical.
//! This scans the candidates (all users, or the caller's rooms' messages):
//! slower than MongoDB's indexed arrays, acceptable while MongoDB is away.
use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::{
    entity::{messages, users},
    error::AppResult,
    read::model::{match_rank, SearchPosition, UserRow},
};

type SortKey = (u8, Reverse<DateTime<Utc>>, Reverse<Uuid>);

fn key((rank, at, id): SearchPosition) -> SortKey {
    (rank, Reverse(at), Reverse(id))
}

/// Keeps matches after `after`, in rank order, at most `limit + 1`.
fn page<T>(
    mut hits: Vec<(SearchPosition, T)>,
    after: Option<SearchPosition>,
    limit: u64,
) -> Vec<(u8, T)> {
    if let Some(after) = after {
        hits.retain(|(p, _)| key(*p) > key(after));
    }
    hits.sort_by_key(|(p, _)| key(*p));
    hits.truncate(usize::try_from(limit + 1).unwrap_or(usize::MAX));
    hits.into_iter()
        .map(|((rank, _, _), t)| (rank, t))
        .collect()
}

/// Same contract as `read::mongo::search::users`.
#[tracing::instrument(skip_all)]
pub async fn users(
    conn: &impl ConnectionTrait,
    words: &[String],
    after: Option<SearchPosition>,
    limit: u64,
) -> AppResult<Vec<(u8, UserRow)>> {
    if words.is_empty() {
        return Ok(Vec::new());
    }
    use users::Column as C;
    let rows: Vec<(Uuid, String, String, DateTime<Utc>)> = users::Entity::find()
        .select_only()
        .columns([C::Id, C::Name, C::Email, C::CreatedAt])
        .into_tuple()
        .all(conn)
        .await?;
    let hits = rows
        .into_iter()
        .filter_map(|(id, name, email, created_at)| {
            let rank = match_rank(&name, words)?;
            Some((
                (rank, created_at, id),
                UserRow {
                    id,
                    name,
                    email,
                    created_at,
                },
            ))
        })
        .collect();
    Ok(page(hits, after, limit))
}

/// Same contract as `read::mongo::search::messages`.
#[tracing::instrument(skip_all, fields(rooms = rooms.len()))]
pub async fn messages(
    conn: &impl ConnectionTrait,
    rooms: &[Uuid],
    words: &[String],
    after: Option<SearchPosition>,
    limit: u64,
) -> AppResult<Vec<(u8, messages::Model)>> {
    if words.is_empty() || rooms.is_empty() {
        return Ok(Vec::new());
    }
    let rows = messages::Entity::find()
        .filter(messages::Column::RoomId.is_in(rooms.iter().copied()))
        .all(conn)
        .await?;
    let hits = rows
        .into_iter()
        .filter_map(|m| Some(((match_rank(&m.body, words)?, m.created_at, m.id), m)))
        .collect();
    Ok(page(hits, after, limit))
}
