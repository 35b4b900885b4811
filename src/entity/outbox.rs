use sea_orm::entity::prelude::*;

/// One change to one aggregate, written in the transaction that made it and
/// kept until the worker has applied it to the read model.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: i64,
    pub event_type: String,
    pub payload: Json,
    pub created_at: DateTimeUtc,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTimeUtc,
    pub claimed_by: Option<String>,
    pub processed_at: Option<DateTimeUtc>,
    pub parked_at: Option<DateTimeUtc>,
    /// The `traceparent` of the transaction that wrote the event, when
    /// traces are exported.
    pub trace_context: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
