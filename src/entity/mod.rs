//! SeaORM entities: the table layout of the source of truth. They are never
//! exposed through GraphQL directly; `graphql` maps them to public types.
pub mod messages;
pub mod outbox;
pub mod room_members;
pub mod rooms;
pub mod study_sessions;
pub mod study_totals;
pub mod todos;
pub mod users;
