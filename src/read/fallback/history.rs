//! Chat history from the `messages` table.
use sea_orm::{
    sea_query::{Expr, IntoCondition},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{entity::messages, error::AppResult, read::model::TimePosition};

/// Rows strictly older than `position` in newest-first order.
pub(super) fn older_than(position: TimePosition) -> Condition {
    use messages::Column as C;
    let (at, id) = position;
    Condition::any().add(C::CreatedAt.lt(at)).add(
        Expr::col(C::CreatedAt)
            .eq(at)
            .and(Expr::col(C::Id).lt(id))
            .into_condition(),
    )
}

/// Same contract as `read::mongo::history::page`.
#[tracing::instrument(skip_all, fields(room_id = %room_id))]
pub async fn page(
    conn: &impl ConnectionTrait,
    room_id: Uuid,
    before: Option<TimePosition>,
    limit: u64,
) -> AppResult<Vec<messages::Model>> {
    use messages::Column as C;
    let mut query = messages::Entity::find().filter(C::RoomId.eq(room_id));
    if let Some(position) = before {
        query = query.filter(older_than(position));
    }
    Ok(query
        .order_by_desc(C::CreatedAt)
        .order_by_desc(C::Id)
        .limit(limit + 1)
        .all(conn)
        .await?)
}
