//! Schema migrations for the CockroachDB source of truth (PostgreSQL locally).
//!
//! Every statement is valid on CockroachDB: UUID keys from `gen_random_uuid()`,
//! no triggers, no sequences, no extensions, integer widths spelled out.
//! CockroachDB commits DDL statement by statement (`autocommit_before_ddl`
//! from v25.1, and only `CREATE TABLE`/`CREATE INDEX` are atomic in a
//! multi-statement transaction before that), so [`runner`] never wraps a
//! migration in a transaction: it sends each statement alone, and every
//! statement is idempotent (`IF NOT EXISTS` / `IF EXISTS`), so a run that
//! stopped midway is finished by running it again. New migrations make one
//! schema change each.
pub use sea_orm_migration::prelude::*;

pub mod dialect;
pub mod rules;
pub mod runner;

pub use dialect::Dialect;

mod m20261127_000001_create_users;
mod m20261127_000002_create_todos;
mod m20261127_000003_create_study_sessions;
mod m20261127_000004_create_rooms;
mod m20261127_000005_create_messages;
mod m20261127_000006_create_outbox;
mod m20261127_101500_index_outbox_pending;
mod m20261127_170000_drop_rare_outbox_indexes;
mod m20261201_000001_shard_outbox_due_index;
mod m20261201_000002_shard_outbox_pending_age_index;
mod m20261201_000003_shard_outbox_processed_index;
mod m20261201_000004_shard_study_sessions_started_index;
mod m20261201_000005_shorten_outbox_gc_ttl;
mod m20261201_000006_add_users_token_generation;
mod m20261201_000007_add_message_sequence;
mod m20261201_000008_create_rate_limits;
mod m20261201_000009_index_rate_limits_expiry;
mod m20261201_000010_add_message_changes;
mod m20261201_000011_create_message_deletions;
mod m20261201_000012_index_outbox_user_events;
mod m20261201_000013_create_sync_control;
mod m20261201_000014_create_read_model_drift;
mod m20261201_000015_create_persisted_documents;
mod m20261201_000016_add_outbox_trace_context;

/// The statements one migration sends, in order, for one dialect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steps {
    pub up: Vec<&'static str>,
    pub down: Vec<&'static str>,
}

/// A migration written as SQL statements. Each statement is sent on its own
/// and must be idempotent.
pub trait SqlMigration: MigrationTrait {
    fn steps(&self, dialect: Dialect) -> Steps;
}

/// A time-led index made hash-sharded on CockroachDB; PostgreSQL keeps its
/// plain B-tree (it has no ranges to split). Re-running after a stop
/// anywhere leaves the same index: `drop` removes whichever form exists and
/// `sharded` makes the sharded one.
pub fn hash_sharded_on_cockroach(
    dialect: Dialect,
    drop: &'static str,
    sharded: &'static str,
    plain: &'static str,
) -> Steps {
    match dialect {
        Dialect::Postgres => Steps::default(),
        Dialect::Cockroach => Steps {
            up: vec![drop, sharded],
            down: vec![drop, plain],
        },
    }
}

/// Declares a migration from plain SQL statements, so each file reads as the
/// DDL it runs. The migration's name is its module name
/// (`mYYYYMMDD_HHMMSS_verb_noun`).
///
/// `up: [..], down: [..]` is the same on both dialects; `|dialect| expr`
/// returns the [`Steps`] for each.
#[macro_export]
macro_rules! sql_migration {
    (up: [$($up:expr),* $(,)?], down: [$($down:expr),* $(,)?] $(,)?) => {
        $crate::sql_migration! {
            |_dialect| $crate::Steps { up: vec![$($up),*], down: vec![$($down),*] }
        }
    };
    (|$dialect:ident| $steps:expr) => {
        use sea_orm_migration::prelude::*;

        pub struct Migration;

        impl MigrationName for Migration {
            fn name(&self) -> &str {
                module_path!().rsplit("::").next().unwrap_or(module_path!())
            }
        }

        impl $crate::SqlMigration for Migration {
            #[allow(unused_variables)]
            fn steps(&self, $dialect: $crate::Dialect) -> $crate::Steps {
                $steps
            }
        }

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                let db = manager.get_connection();
                let dialect = $crate::Dialect::detect(db).await?;
                for sql in $crate::SqlMigration::steps(self, dialect).up {
                    db.execute_unprepared(sql).await?;
                }
                Ok(())
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                let db = manager.get_connection();
                let dialect = $crate::Dialect::detect(db).await?;
                for sql in $crate::SqlMigration::steps(self, dialect).down {
                    db.execute_unprepared(sql).await?;
                }
                Ok(())
            }
        }
    };
}

/// Every migration, oldest first.
pub fn all() -> Vec<Box<dyn SqlMigration>> {
    vec![
        Box::new(m20261127_000001_create_users::Migration),
        Box::new(m20261127_000002_create_todos::Migration),
        Box::new(m20261127_000003_create_study_sessions::Migration),
        Box::new(m20261127_000004_create_rooms::Migration),
        Box::new(m20261127_000005_create_messages::Migration),
        Box::new(m20261127_000006_create_outbox::Migration),
        Box::new(m20261127_101500_index_outbox_pending::Migration),
        Box::new(m20261127_170000_drop_rare_outbox_indexes::Migration),
        Box::new(m20261201_000001_shard_outbox_due_index::Migration),
        Box::new(m20261201_000002_shard_outbox_pending_age_index::Migration),
        Box::new(m20261201_000003_shard_outbox_processed_index::Migration),
        Box::new(m20261201_000004_shard_study_sessions_started_index::Migration),
        Box::new(m20261201_000005_shorten_outbox_gc_ttl::Migration),
        Box::new(m20261201_000006_add_users_token_generation::Migration),
        Box::new(m20261201_000007_add_message_sequence::Migration),
        Box::new(m20261201_000008_create_rate_limits::Migration),
        Box::new(m20261201_000009_index_rate_limits_expiry::Migration),
        Box::new(m20261201_000010_add_message_changes::Migration),
        Box::new(m20261201_000011_create_message_deletions::Migration),
        Box::new(m20261201_000012_index_outbox_user_events::Migration),
        Box::new(m20261201_000013_create_sync_control::Migration),
        Box::new(m20261201_000014_create_read_model_drift::Migration),
        Box::new(m20261201_000015_create_persisted_documents::Migration),
        Box::new(m20261201_000016_add_outbox_trace_context::Migration),
    ]
}

/// The same migrations for sea-orm-migration's own tooling (`sea-orm-cli`),
/// which keeps the same ledger. `studysync migrate` uses [`runner`].
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        all()
            .into_iter()
            .map(|m| -> Box<dyn MigrationTrait> { Box::new(Upcast(m)) })
            .collect()
    }
}

struct Upcast(Box<dyn SqlMigration>);

impl MigrationName for Upcast {
    fn name(&self) -> &str {
        self.0.name()
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Upcast {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.up(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.down(manager).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARDED: [&str; 5] = [
        "outbox_due_idx",
        "outbox_pending_age_idx",
        "outbox_processed_idx",
        "study_sessions_started_idx",
        "rate_limits_expires_idx",
    ];

    fn statements(dialect: Dialect) -> Vec<&'static str> {
        all()
            .iter()
            .flat_map(|m| {
                let steps = m.steps(dialect);
                steps.up.into_iter().chain(steps.down)
            })
            .collect()
    }

    #[test]
    fn names_are_unique_and_in_time_order() {
        let names: Vec<String> = all().iter().map(|m| m.name().to_owned()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for name in &names {
            assert!(name.starts_with("m2026") && name.len() > 17, "{name}");
        }
    }

    #[test]
    fn every_migration_has_a_down() {
        for dialect in [Dialect::Postgres, Dialect::Cockroach] {
            for m in all() {
                let steps = m.steps(dialect);
                assert_eq!(
                    steps.up.is_empty(),
                    steps.down.is_empty(),
                    "{} on {dialect:?}",
                    m.name()
                );
            }
        }
    }

    #[test]
    fn every_ddl_statement_is_idempotent() {
        for dialect in [Dialect::Postgres, Dialect::Cockroach] {
            for sql in statements(dialect) {
                let upper = sql.to_uppercase();
                let body: String = upper
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n");
                let body = body.trim_start();
                let guarded = if body.starts_with("CREATE") {
                    body.contains("IF NOT EXISTS")
                } else if body.starts_with("DROP") {
                    body.contains("IF EXISTS")
                } else if body.starts_with("ALTER TABLE") {
                    // CONFIGURE ZONE sets a value: the same statement twice
                    // leaves the same state.
                    body.contains("CONFIGURE ZONE")
                        || body.contains("ADD COLUMN IF NOT EXISTS")
                        || body.contains("DROP COLUMN IF EXISTS")
                } else {
                    // A backfill touches only the rows it has not filled
                    // yet, so running it again changes nothing; its WHERE
                    // says which.
                    body.starts_with("UPDATE") && body.contains("WHERE")
                };
                assert!(guarded, "not idempotent on {dialect:?}: {sql}");
            }
        }
    }

    #[test]
    fn postgres_keeps_plain_indexes_and_cockroach_shards_the_time_led_ones() {
        let postgres = statements(Dialect::Postgres).join("\n");
        assert!(!postgres.contains("USING HASH"));
        assert!(!postgres.contains("CONFIGURE ZONE"));
        let cockroach = statements(Dialect::Cockroach);
        for index in SHARDED {
            let sharded = cockroach.iter().any(|sql| {
                sql.contains(&format!("CREATE INDEX IF NOT EXISTS {index} "))
                    && sql.contains("USING HASH")
            });
            assert!(sharded, "{index} is not hash-sharded on CockroachDB");
        }
        assert!(cockroach
            .iter()
            .any(|sql| sql.contains("outbox CONFIGURE ZONE USING gc.ttlseconds")));
    }

    #[test]
    fn every_statement_keeps_the_cockroachdb_rules() {
        for dialect in [Dialect::Postgres, Dialect::Cockroach] {
            for sql in statements(dialect) {
                let broken = rules::check(sql);
                assert!(broken.is_empty(), "{broken:?} on {dialect:?} in {sql}");
            }
        }
    }
}
