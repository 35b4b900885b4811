//! Which SQL database the source of truth is: CockroachDB in production,
//! PostgreSQL as its local stand-in. Both speak the PostgreSQL wire protocol
//! and nearly every statement is the same; the few that differ (hash-sharded
//! indexes, zone configuration, how the outbox claim holds its locks) are
//! chosen from this, once, at start-up.
use sea_orm_migration::sea_orm::{ConnectionTrait, DbErr, Statement};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Cockroach,
}

impl Dialect {
    /// Reads the server's `SELECT version()`.
    pub async fn detect(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                "SELECT version() AS version",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("SELECT version() returned no row".to_owned()))?;
        let version: String = row.try_get("", "version")?;
        Ok(Self::from_version(&version))
    }

    /// CockroachDB answers `CockroachDB CCL v24.3.1 (x86_64-pc-linux-gnu, ...)`;
    /// PostgreSQL answers `PostgreSQL 15.19 (Debian ...) on x86_64-...`.
    pub fn from_version(version: &str) -> Self {
        if version.trim_start().starts_with("CockroachDB") {
            Self::Cockroach
        } else {
            Self::Postgres
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Cockroach => "CockroachDB",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings_name_their_dialect() {
        assert_eq!(
            Dialect::from_version(
                "CockroachDB CCL v24.3.1 (x86_64-pc-linux-gnu, built 2024/12/11 00:00:00, go1.22.8 X:nocoverageredesign)"
            ),
            Dialect::Cockroach
        );
        assert_eq!(
            Dialect::from_version(
                "PostgreSQL 15.19 (Debian 15.19-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc"
            ),
            Dialect::Postgres
        );
    }
}
