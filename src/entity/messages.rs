use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub room_id: Uuid,
    pub sender_id: Uuid,
    pub body: String,
    pub version: i64,
    /// The message's number in its room, in commit order (see
    /// `rooms.last_seq`); `None` only for a row a release before numbering
    /// wrote after the numbering migration ran.
    pub seq: Option<i64>,
    /// The number of the message's latest change (an edit), from the same
    /// counter; `None` for a row never edited, whose latest change is its
    /// addition (`seq`).
    pub event_seq: Option<i64>,
    /// When its body last changed, if it ever did.
    pub edited_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl Model {
    /// The number of the message's latest change.
    pub fn change_seq(&self) -> Option<i64> {
        self.event_seq.or(self.seq)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
