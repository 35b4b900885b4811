//! Enqueueing outbox events. The only way in is through a [`Tx`], so an event
//! is always written by the transaction that changed its aggregate. A `Tx`
//! whose writer has a sink ([`super::sink`]) holds the events for it instead
//! and writes only the rows.
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
    events::{self, Aggregate, Doc},
};

/// An event to record: the full new state of the row, or its deletion.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub aggregate: Aggregate,
    pub aggregate_id: Uuid,
    pub version: i64,
    pub event_type: &'static str,
    pub payload: serde_json::Value,
}

impl NewEvent {
    /// Row `id` at `version` now holds `doc`.
    pub fn upsert(id: Uuid, version: i64, event_type: &'static str, doc: impl Into<Doc>) -> Self {
        let doc = doc.into();
        Self {
            aggregate: doc.aggregate(),
            aggregate_id: id,
            version,
            event_type,
            payload: events::encode(&doc),
        }
    }

    /// Row `id` is gone as of `version`: the version stops a late, older
    /// event from bringing the document back.
    pub fn deleted(aggregate: Aggregate, id: Uuid, version: i64, event_type: &'static str) -> Self {
        Self::deleted_at(aggregate, id, version, event_type, &events::Was::default())
    }

    /// Like [`NewEvent::deleted`], saying where the row was (see
    /// [`events::Was`]).
    pub fn deleted_at(
        aggregate: Aggregate,
        id: Uuid,
        version: i64,
        event_type: &'static str,
        was: &events::Was,
    ) -> Self {
        Self {
            aggregate,
            aggregate_id: id,
            version,
            event_type,
            payload: events::tombstone(was),
        }
    }
}

/// Names one aggregate version a transaction wrote; the read side uses these
/// to wait for its own writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    #[serde(rename = "t")]
    pub aggregate: Aggregate,
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
        aggregate_type: Set(event.aggregate.name().to_owned()),
        aggregate_id: Set(event.aggregate_id),
        aggregate_version: Set(event.version),
        event_type: Set(event.event_type.to_owned()),
        payload: Set(event.payload),
        trace_context: Set(crate::telemetry::current_traceparent()),
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
                aggregate: event.aggregate,
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
    if let Some(held) = &tx.held {
        held.hold(events);
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
    if let Some(held) = &tx.held {
        held.hold(events);
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
