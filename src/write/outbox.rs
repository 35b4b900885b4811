//! Enqueueing outbox events. The only way in is through a [`Tx`], so an event
//! is always written by the transaction that changed its aggregate.
use sea_orm::{
    sea_query::{Alias, CommonTableExpression, PostgresQueryBuilder, Query, WithClause},
    ActiveModelTrait,
    ActiveValue::Set,
    DatabaseBackend, EntityName, EntityTrait, FromQueryResult, IntoActiveModel, Iterable,
    QueryTrait, Statement, TryIntoModel,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Tx;
use crate::{
    entity::outbox,
    error::{AppError, AppResult},
};

/// Kinds of aggregate, each projected into its own MongoDB collection.
pub mod aggregate {
    pub const USER: &str = "user";
    pub const TODO: &str = "todo";
    pub const STUDY_SESSION: &str = "study_session";
    pub const STUDY_TOTAL: &str = "study_total";
    pub const ROOM: &str = "room";
    pub const MESSAGE: &str = "message";
}

/// An event to record: the full new state of the row (or a tombstone).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub aggregate_type: &'static str,
    pub aggregate_id: Uuid,
    pub version: i64,
    pub event_type: &'static str,
    pub payload: serde_json::Value,
}

/// Names one aggregate version a transaction wrote; the read side uses these
/// to wait for its own writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    #[serde(rename = "t")]
    pub aggregate_type: String,
    #[serde(rename = "i")]
    pub aggregate_id: Uuid,
    #[serde(rename = "v")]
    pub version: i64,
}

/// Records `event` in the caller's transaction.
pub async fn enqueue(tx: &Tx, event: NewEvent) -> AppResult<()> {
    enqueue_all(tx, vec![event]).await
}

// created_at and next_attempt_at come from the database clock, the one the
// worker's lag and backoff arithmetic uses.
fn row(event: NewEvent) -> outbox::ActiveModel {
    outbox::ActiveModel {
        id: Set(Uuid::new_v4()),
        aggregate_type: Set(event.aggregate_type.to_owned()),
        aggregate_id: Set(event.aggregate_id),
        aggregate_version: Set(event.version),
        event_type: Set(event.event_type.to_owned()),
        payload: Set(event.payload),
        ..Default::default()
    }
}

/// The outbox rows for `events`, each noted as written by `tx` (its
/// consistency token names them).
fn recorded_rows(tx: &Tx, events: Vec<NewEvent>) -> Vec<outbox::ActiveModel> {
    events
        .into_iter()
        .map(|event| {
            tx.record(EventRef {
                aggregate_type: event.aggregate_type.to_owned(),
                aggregate_id: event.aggregate_id,
                version: event.version,
            });
            row(event)
        })
        .collect()
}

/// Records several events in one statement.
pub async fn enqueue_all(tx: &Tx, events: Vec<NewEvent>) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "bench")]
    if tx.held.intercept(tx.mode, &events) {
        return Ok(());
    }
    outbox::Entity::insert_many(recorded_rows(tx, events))
        .exec_without_returning(tx.conn())
        .await?;
    Ok(())
}

/// Inserts `row` and records the events `describe` makes of it, in ONE
/// statement (`WITH recorded AS (INSERT INTO outbox ... RETURNING id)
/// INSERT INTO ... RETURNING ...`): the outbox costs no round trip of its
/// own. `row` must set every column, so the events describe it before it is
/// sent; the statement returns the stored row, and if the database stored
/// anything else the transaction fails rather than commit an event that
/// misdescribes its row.
pub async fn insert_with<A>(
    tx: &Tx,
    row: A,
    describe: impl FnOnce(&<A::Entity as EntityTrait>::Model) -> Vec<NewEvent>,
) -> AppResult<<A::Entity as EntityTrait>::Model>
where
    A: ActiveModelTrait + TryIntoModel<<A::Entity as EntityTrait>::Model> + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + PartialEq + Sync,
{
    let sent = row.clone().try_into_model()?;
    let events = describe(&sent);
    #[cfg(feature = "bench")]
    if tx.held.intercept(tx.mode, &events) {
        return Ok(<A::Entity as EntityTrait>::insert(row)
            .exec_with_returning(tx.conn())
            .await?);
    }
    // The CTE returns the outbox ids: CockroachDB rejects a data-modifying
    // WITH clause that returns no columns.
    let mut outbox_insert = outbox::Entity::insert_many(recorded_rows(tx, events)).into_query();
    outbox_insert.returning_col(outbox::Column::Id);
    let recorded = CommonTableExpression::new()
        .query(outbox_insert)
        .table_name(Alias::new("recorded"))
        .to_owned();
    let mut insert = <A::Entity as EntityTrait>::insert(row).into_query();
    insert.returning(Query::returning().columns(<A::Entity as EntityTrait>::Column::iter()));
    let (sql, values) = insert
        .with(WithClause::new().cte(recorded).to_owned())
        .build(PostgresQueryBuilder);
    let statement = Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values);
    let stored = <A::Entity as EntityTrait>::Model::find_by_statement(statement)
        .one(tx.conn())
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("an insert returned no row")))?;
    if stored != sent {
        return Err(AppError::Internal(anyhow::anyhow!(
            "PostgreSQL stored a {} row other than the one its event describes",
            <A::Entity as Default>::default().table_name()
        )));
    }
    Ok(stored)
}

/// A deletion marker: the version stops a late, older event from bringing the
/// document back.
pub fn tombstone(id: Uuid, version: i64) -> serde_json::Value {
    serde_json::json!({ "id": id, "version": version, "deleted": true })
}
