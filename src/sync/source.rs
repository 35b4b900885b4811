//! Reading the source tables the way the outbox would describe them: each
//! row with its version and the document the write path would enqueue for
//! it (built by the same `From<&Model>` conversions), in keyset-paginated
//! batches.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::project::{self, Projected};
use crate::{
    entity::{messages, room_members, rooms, study_sessions, study_totals, todos, users},
    error::AppResult,
    events::{
        Aggregate, Doc, MessageDoc, RoomDoc, StudySessionDoc, StudyTotalDoc, TodoDoc, UserDoc,
    },
};

/// One row as an event would carry it.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub id: Uuid,
    pub version: i64,
    pub doc: Doc,
}

impl SourceRow {
    /// The document the worker would write for this row.
    pub fn project(&self) -> Projected {
        project::of_doc(&self.doc, self.id, self.version)
    }
}

/// Which rows to read.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// The next page in id order, after this id.
    After(Option<Uuid>),
    /// Exactly these rows (those that exist).
    Ids(&'a [Uuid]),
}

fn rows_of<M>(
    models: &[M],
    id: impl Fn(&M) -> (Uuid, i64),
    doc: impl Fn(&M) -> Doc,
) -> Vec<SourceRow> {
    models
        .iter()
        .map(|m| {
            let (id, version) = id(m);
            SourceRow {
                id,
                version,
                doc: doc(m),
            }
        })
        .collect()
}

/// Reads up to `limit` rows of `aggregate`'s table, in id order.
#[tracing::instrument(skip_all, fields(table = aggregate.collection()))]
pub async fn rows(
    aggregate: Aggregate,
    db: &impl ConnectionTrait,
    which: Rows<'_>,
    limit: u64,
) -> AppResult<Vec<SourceRow>> {
    Ok(match aggregate {
        Aggregate::User => rows_of(
            &select::<users::Entity>(db, users::Column::Id, which, limit).await?,
            |m| (m.id, m.version),
            |m| UserDoc::from(m).into(),
        ),
        Aggregate::Todo => rows_of(
            &select::<todos::Entity>(db, todos::Column::Id, which, limit).await?,
            |m| (m.id, m.version),
            |m| TodoDoc::from(m).into(),
        ),
        Aggregate::StudySession => rows_of(
            &select::<study_sessions::Entity>(db, study_sessions::Column::Id, which, limit).await?,
            |m| (m.id, m.version),
            |m| StudySessionDoc::from(m).into(),
        ),
        Aggregate::StudyTotal => rows_of(
            &select::<study_totals::Entity>(db, study_totals::Column::Id, which, limit).await?,
            |m| (m.id, m.version),
            |m| StudyTotalDoc::from(m).into(),
        ),
        Aggregate::Room => {
            let rooms = select::<rooms::Entity>(db, rooms::Column::Id, which, limit).await?;
            let ids: Vec<Uuid> = rooms.iter().map(|r| r.id).collect();
            let members = members_of(db, &ids).await?;
            rows_of(
                &rooms,
                |m| (m.id, m.version),
                |m| RoomDoc::new(m, members.get(&m.id).map(Vec::as_slice).unwrap_or(&[])).into(),
            )
        }
        Aggregate::Message => rows_of(
            &select::<messages::Entity>(db, messages::Column::Id, which, limit).await?,
            |m| (m.id, m.version),
            |m| MessageDoc::from(m).into(),
        ),
    })
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
/// builds room documents).
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
