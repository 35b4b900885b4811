//! Applies migrations the way CockroachDB needs them applied.
//!
//! sea-orm-migration runs every pending migration in one transaction with its
//! ledger inserts. CockroachDB commits DDL statement by statement
//! (`autocommit_before_ddl`, the default from v25.1), so a failure midway
//! there leaves objects without ledger rows, and the next run stops at
//! "already exists". This runner sends each statement alone, outside any
//! transaction; statements are idempotent, so a run that stopped anywhere
//! is finished by running it again. The ledger is sea-orm-migration's own
//! (`seaql_migrations`), so databases it migrated carry on.
//!
//! One run at a time: a lease row (not an advisory lock, which CockroachDB
//! does not honour) makes a second `migrate up` wait, then find nothing to do.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm_migration::sea_orm::{ConnectionTrait, DbErr, RuntimeErr, Statement, Value};

use crate::{Dialect, SqlMigration};

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS seaql_migrations (\
                      version VARCHAR NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)";
const LEASE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migration_lease (\
                           name TEXT PRIMARY KEY, holder TEXT NOT NULL, \
                           expires_at TIMESTAMPTZ NOT NULL)";
/// How long a lease lasts without renewal; renewed before every statement,
/// so only a runner that died holds it this long.
const LEASE_SECONDS: f64 = 600.0;
/// How long a run waits for another one to finish.
const LEASE_WAIT: Duration = Duration::from_secs(900);

/// What the ledger says against the migrations this binary holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
    /// Applied by a newer binary: expected during a rolling deploy, when the
    /// schema moves first.
    pub unknown: Vec<String>,
}

fn stmt(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

fn sqlstate(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}

/// Sends one statement, again when the database asks for a retry (40001,
/// 40P01) or two creators raced on a catalogue entry: PostgreSQL's
/// `CREATE ... IF NOT EXISTS` checks before it inserts, so two at once can
/// fail with 23505, 42710 or 42P07; sent again, it finds the object and does
/// nothing.
async fn send(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match db.execute(stmt(db, sql, values.clone())).await {
            Ok(done) => return Ok(done.rows_affected()),
            Err(err)
                if attempt < 10
                    && matches!(
                        sqlstate(&err).as_deref(),
                        Some("40001" | "40P01" | "23505" | "42710" | "42P07")
                    ) =>
            {
                tokio::time::sleep(Duration::from_millis(10 << attempt.min(6))).await;
            }
            Err(err) => return Err(err),
        }
    }
}

/// The ledger's names, without creating anything (so a read-only check can
/// run against any schema).
async fn applied_names(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let exists = db
        .query_one(stmt(
            db,
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'seaql_migrations'",
            Vec::new(),
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    if exists == 0 {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all(stmt(
            db,
            "SELECT version FROM seaql_migrations ORDER BY version",
            Vec::new(),
        ))
        .await?;
    rows.iter().map(|row| row.try_get("", "version")).collect()
}

/// Compares the ledger with `migrations`. Reads only.
pub async fn status_of(
    db: &impl ConnectionTrait,
    migrations: &[Box<dyn SqlMigration>],
) -> Result<Status, DbErr> {
    let applied = applied_names(db).await?;
    let known: Vec<String> = migrations.iter().map(|m| m.name().to_owned()).collect();
    Ok(Status {
        pending: known
            .iter()
            .filter(|n| !applied.contains(n))
            .cloned()
            .collect(),
        unknown: applied
            .iter()
            .filter(|n| !known.contains(n))
            .cloned()
            .collect(),
        applied: known.into_iter().filter(|n| applied.contains(n)).collect(),
    })
}

/// [`status_of`] this binary's migrations.
pub async fn status(db: &impl ConnectionTrait) -> Result<Status, DbErr> {
    status_of(db, &crate::all()).await
}

struct Lease {
    holder: String,
}

impl Lease {
    async fn acquire(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        send(db, LEASE_TABLE, Vec::new()).await?;
        let holder = format!(
            "{}-{}-{:x}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            rand_word()
        );
        let started = std::time::Instant::now();
        loop {
            let taken = send(
                db,
                "INSERT INTO schema_migration_lease (name, holder, expires_at) \
                 VALUES ('migrations', $1, now() + $2::FLOAT8 * INTERVAL '1 second') \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE schema_migration_lease.expires_at < now()",
                vec![holder.clone().into(), LEASE_SECONDS.into()],
            )
            .await?;
            if taken == 1 {
                return Ok(Self { holder });
            }
            if started.elapsed() > LEASE_WAIT {
                return Err(DbErr::Custom(format!(
                    "another migration run has held the lease for over {} s; if it died, \
                     the lease expires {LEASE_SECONDS} s after its last statement",
                    LEASE_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Extends the lease; fails if another run took it over (ours expired).
    async fn renew(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let renewed = send(
            db,
            "UPDATE schema_migration_lease SET expires_at = now() + $2::FLOAT8 * INTERVAL '1 second' \
             WHERE name = 'migrations' AND holder = $1",
            vec![self.holder.clone().into(), LEASE_SECONDS.into()],
        )
        .await?;
        if renewed == 1 {
            Ok(())
        } else {
            Err(DbErr::Custom(
                "the migration lease was lost to another run; run `migrate up` again".to_owned(),
            ))
        }
    }

    async fn release(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        send(
            db,
            "DELETE FROM schema_migration_lease WHERE name = 'migrations' AND holder = $1",
            vec![self.holder.into()],
        )
        .await
        .map(drop)
    }
}

fn rand_word() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// Sends `statements` one by one, renewing the lease before each.
async fn run_steps(
    db: &impl ConnectionTrait,
    lease: &Lease,
    statements: Vec<&'static str>,
) -> Result<(), DbErr> {
    for sql in statements {
        lease.renew(db).await?;
        send(db, sql, Vec::new()).await?;
    }
    Ok(())
}

/// Runs `work` holding the lease, and releases it whatever the outcome.
async fn leased<C, T>(
    db: &C,
    work: impl AsyncFnOnce(&C, &Lease) -> Result<T, DbErr>,
) -> Result<T, DbErr>
where
    C: ConnectionTrait,
{
    let lease = Lease::acquire(db).await?;
    let result = work(db, &lease).await;
    let released = lease.release(db).await;
    let value = result?;
    released?;
    Ok(value)
}

/// Applies every pending migration of `migrations`, oldest first; returns
/// the names applied. Safe to run again after any failure, and from several
/// processes at once.
pub async fn up_with(
    db: &impl ConnectionTrait,
    migrations: &[Box<dyn SqlMigration>],
) -> Result<Vec<String>, DbErr> {
    let dialect = Dialect::detect(db).await?;
    send(db, LEDGER, Vec::new()).await?;
    leased(db, async |db, lease| {
        // Read under the lease: a run that held it before may have applied
        // everything already.
        let status = status_of(db, migrations).await?;
        let mut done = Vec::new();
        for migration in migrations {
            let name = migration.name();
            if !status.pending.iter().any(|p| p == name) {
                continue;
            }
            tracing::info!(migration = name, dialect = dialect.name(), "applying");
            run_steps(db, lease, migration.steps(dialect).up).await?;
            send(
                db,
                "INSERT INTO seaql_migrations (version, applied_at) VALUES ($1, $2) \
                 ON CONFLICT (version) DO NOTHING",
                vec![name.into(), unix_seconds().into()],
            )
            .await?;
            done.push(name.to_owned());
        }
        Ok(done)
    })
    .await
}

/// [`up_with`] this binary's migrations.
pub async fn up(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    up_with(db, &crate::all()).await
}

/// Rolls back the last `steps` applied migrations, newest first; returns
/// their names.
pub async fn down(db: &impl ConnectionTrait, steps: usize) -> Result<Vec<String>, DbErr> {
    let dialect = Dialect::detect(db).await?;
    let migrations = crate::all();
    send(db, LEDGER, Vec::new()).await?;
    leased(db, async |db, lease| {
        let status = status_of(db, &migrations).await?;
        if let Some(newer) = status.unknown.first() {
            return Err(DbErr::Custom(format!(
                "the database has migration {newer}, which this binary does not know; \
                 roll back with the binary that applied it"
            )));
        }
        let mut done = Vec::new();
        for migration in migrations.iter().rev() {
            if done.len() == steps {
                break;
            }
            let name = migration.name();
            if !status.applied.iter().any(|a| a == name) {
                continue;
            }
            tracing::info!(migration = name, dialect = dialect.name(), "rolling back");
            run_steps(db, lease, migration.steps(dialect).down).await?;
            send(
                db,
                "DELETE FROM seaql_migrations WHERE version = $1",
                vec![name.into()],
            )
            .await?;
            done.push(name.to_owned());
        }
        Ok(done)
    })
    .await
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
