//! Schema migrations for the CockroachDB source of truth (PostgreSQL locally).
//!
//! Every statement is valid on CockroachDB: UUID keys from `gen_random_uuid()`,
//! no triggers, no sequences, no extensions.
pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_users;
mod m20261127_000002_create_todos;
mod m20261127_000003_create_study_sessions;
mod m20261127_000004_create_rooms;
mod m20261127_000005_create_messages;
mod m20261127_000006_create_outbox;
mod m20261127_101500_index_outbox_pending;
mod m20261127_170000_drop_rare_outbox_indexes;

/// Declares a migration from plain SQL, so each file reads as the DDL it runs.
/// The migration's name is its module name (`mYYYYMMDD_HHMMSS_verb_noun`).
#[macro_export]
macro_rules! sql_migration {
    (up: $up:expr, down: $down:expr $(,)?) => {
        use sea_orm_migration::prelude::*;

        pub struct Migration;

        impl MigrationName for Migration {
            fn name(&self) -> &str {
                module_path!().rsplit("::").next().unwrap_or(module_path!())
            }
        }

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager.get_connection().execute_unprepared($up).await?;
                Ok(())
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager.get_connection().execute_unprepared($down).await?;
                Ok(())
            }
        }
    };
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_users::Migration),
            Box::new(m20261127_000002_create_todos::Migration),
            Box::new(m20261127_000003_create_study_sessions::Migration),
            Box::new(m20261127_000004_create_rooms::Migration),
            Box::new(m20261127_000005_create_messages::Migration),
            Box::new(m20261127_000006_create_outbox::Migration),
            Box::new(m20261127_101500_index_outbox_pending::Migration),
            Box::new(m20261127_170000_drop_rare_outbox_indexes::Migration),
        ]
    }
}
