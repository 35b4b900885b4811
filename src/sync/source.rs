//! Reading the source tables the way the outbox would describe them: each
//! row with its version and the payload the write path would enqueue for it
//! (built by the same `payload()` functions), in keyset-paginated batches.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::project::{self, ProjectError, Projected};
use crate::{
    entity::{messages, room_members, rooms, study_sessions, study_totals, todos, users},
    error::AppResult,
    write::{self, outbox::aggregate},
};

/// A source table mirrored by one read-model collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Todos,
    StudySessions,
    StudyTotals,
    Rooms,
    Messages,
}

/// One row as an event would carry it.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub id: Uuid,
    pub version: i64,
    pub payload: serde_json::Value,
}

/// Which rows to read.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// The next page in id order, after this id.
    After(Option<Uuid>),
    /// Exactly these rows (those that exist).
    Ids(&'a [Uuid]),
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Users,
        Table::Todos,
        Table::StudySessions,
        Table::StudyTotals,
        Table::Rooms,
        Table::Messages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Todos => "todos",
            Table::StudySessions => "study_sessions",
            Table::StudyTotals => "study_totals",
            Table::Rooms => "rooms",
            Table::Messages => "messages",
        }
    }

    pub fn aggregate(self) -> &'static str {
        match self {
            Table::Users => aggregate::USER,
            Table::Todos => aggregate::TODO,
            Table::StudySessions => aggregate::STUDY_SESSION,
            Table::StudyTotals => aggregate::STUDY_TOTAL,
            Table::Rooms => aggregate::ROOM,
            Table::Messages => aggregate::MESSAGE,
        }
    }

    /// The collection its documents live in.
    pub fn collection(self) -> &'static str {
        project::collection_of(self.aggregate()).unwrap_or("unknown")
    }

    /// Reads up to `limit` rows, in id order.
    #[tracing::instrument(skip_all, fields(table = self.name()))]
    pub async fn rows(
        self,
        db: &impl ConnectionTrait,
        which: Rows<'_>,
        limit: u64,
    ) -> AppResult<Vec<SourceRow>> {
        let rows = match self {
            Table::Users => select::<users::Entity>(db, users::Column::Id, which, limit)
                .await?
                .iter()
                .map(|m| SourceRow {
                    id: m.id,
                    version: m.version,
                    payload: write::users::payload(m),
                })
                .collect(),
            Table::Todos => select::<todos::Entity>(db, todos::Column::Id, which, limit)
                .await?
                .iter()
                .map(|m| SourceRow {
                    id: m.id,
                    version: m.version,
                    payload: write::todos::payload(m),
                })
                .collect(),
            Table::StudySessions => {
                select::<study_sessions::Entity>(db, study_sessions::Column::Id, which, limit)
                    .await?
                    .iter()
                    .map(|m| SourceRow {
                        id: m.id,
                        version: m.version,
                        payload: write::study::payload(m),
                    })
                    .collect()
            }
            Table::StudyTotals => {
                select::<study_totals::Entity>(db, study_totals::Column::Id, which, limit)
                    .await?
                    .iter()
                    .map(|m| SourceRow {
                        id: m.id,
                        version: m.version,
                        payload: write::study::total_payload(m),
                    })
                    .collect()
            }
            Table::Rooms => {
                let rooms = select::<rooms::Entity>(db, rooms::Column::Id, which, limit).await?;
                let ids: Vec<Uuid> = rooms.iter().map(|r| r.id).collect();
                let mut members = members_of(db, &ids).await?;
                rooms
                    .iter()
                    .map(|m| SourceRow {
                        id: m.id,
                        version: m.version,
                        payload: write::rooms::room_payload(
                            m,
                            &members.remove(&m.id).unwrap_or_default(),
                        ),
                    })
                    .collect()
            }
            Table::Messages => select::<messages::Entity>(db, messages::Column::Id, which, limit)
                .await?
                .iter()
                .map(|m| SourceRow {
                    id: m.id,
                    version: m.version,
                    payload: write::rooms::message_payload(m),
                })
                .collect(),
        };
        Ok(rows)
    }

    /// The document the worker would write for `row`.
    pub fn project(self, row: &SourceRow) -> Result<Projected, ProjectError> {
        project::project(self.aggregate(), row.id, row.version, &row.payload)
    }
}

async fn select<E>(
    db: &impl ConnectionTrait,
    id: E::Column,
    which: Rows<'_>,
    limit: u64,
) -> AppResult<Vec<E::Model>>
where
    E: EntityTrait,
{
    if matches!(which, Rows::Ids(ids) if ids.is_empty()) {
        return Ok(Vec::new());
    }
    let query = || {
        let query = E::find().order_by_asc(id);
        let query = match which {
            Rows::After(Some(after)) => query.filter(id.gt(after)),
            Rows::After(None) => query,
            Rows::Ids(ids) => query.filter(id.is_in(ids.iter().copied())),
        };
        query.limit(limit)
    };
    // Long scans beside live writes may be asked to retry (40001).
    Ok(super::outbox::retrying(|| query().all(db)).await?)
}

/// Member ids per room, each list in user id order (as the write path
/// builds room payloads).
async fn members_of(
    db: &impl ConnectionTrait,
    rooms: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if rooms.is_empty() {
        return Ok(out);
    }
    let pairs: Vec<(Uuid, Uuid)> = room_members::Entity::find()
        .select_only()
        .column(room_members::Column::RoomId)
        .column(room_members::Column::UserId)
        .filter(room_members::Column::RoomId.is_in(rooms.iter().copied()))
        .order_by_asc(room_members::Column::RoomId)
        .order_by_asc(room_members::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    for (room, user) in pairs {
        out.entry(room).or_default().push(user);
    }
    Ok(out)
}
