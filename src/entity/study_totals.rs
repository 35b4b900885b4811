use sea_orm::entity::prelude::*;

/// Minutes and sessions per user per period bucket (`day`, `week`, `month`,
/// `all`), kept in the same transaction as each study session so the read
/// model can project exact snapshots instead of replaying increments.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "study_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub period: String,
    pub period_start: Date,
    pub minutes: i64,
    pub sessions: i64,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
