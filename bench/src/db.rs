//! Direct database access for the driver: fresh databases, outbox timings,
//! versions. The server under test never shares these connections.
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use studysync::pool::Db;

pub async fn query_f64s(db: &Db, sql: &str) -> anyhow::Result<Vec<f64>> {
    let rows = db
        .query_all(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .with_context(|| format!("query {sql}"))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<f64>(0).ok())
        .collect())
}

/// The first column of every row `sql` returns.
pub async fn column<T: sea_orm::TryGetable>(db: &Db, sql: &str) -> anyhow::Result<Vec<T>> {
    let rows = db
        .query_all(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .with_context(|| format!("query {sql}"))?;
    rows.iter()
        .map(|r| r.try_get_by_index::<T>(0).map_err(anyhow::Error::from))
        .collect()
}

pub async fn scalar_i64(db: &Db, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

pub async fn scalar_string(db: &Db, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<String>(0)?)
}

/// Events not yet applied (and not parked).
pub async fn pending(db: &Db) -> anyhow::Result<i64> {
    scalar_i64(
        db,
        "SELECT count(*) FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL",
    )
    .await
}

/// Waits until at most `baseline` events are pending (what was pending
/// before the caller added its own); false on timeout, or as soon as five
/// seconds pass without progress (no worker is running).
pub async fn wait_drained(db: &Db, baseline: i64, timeout: Duration) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut best = i64::MAX;
    let mut progressed = Instant::now();
    while started.elapsed() < timeout && progressed.elapsed() < Duration::from_secs(5) {
        let left = pending(db).await?;
        if left <= baseline {
            return Ok(true);
        }
        if left < best {
            best = left;
            progressed = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

/// Drops and recreates the benchmark's PostgreSQL database.
pub async fn recreate_postgres(admin_url: &str, name: &str) -> anyhow::Result<()> {
    admin_statements(
        admin_url,
        &[
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ],
    )
    .await
}

/// Drops a scratch PostgreSQL database.
pub async fn drop_postgres(admin_url: &str, name: &str) -> anyhow::Result<()> {
    admin_statements(
        admin_url,
        &[format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
    )
    .await
}

/// Runs statements in order on a connection of their own to `admin_url`.
async fn admin_statements(admin_url: &str, statements: &[String]) -> anyhow::Result<()> {
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    for statement in statements {
        admin.execute_unprepared(statement).await?;
    }
    admin.close().await?;
    Ok(())
}

/// Tables vacuumed by [`vacuum_as_autovacuum_would`] in this run.
pub static VACUUMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether this PostgreSQL server runs autovacuum.
pub async fn autovacuum_on(db: &Db) -> anyhow::Result<bool> {
    Ok(scalar_string(db, "SELECT current_setting('autovacuum')").await? == "on")
}

/// Where the server runs without autovacuum (a production server never
/// does), vacuums every table autovacuum's default trigger would pick now:
/// more dead rows than 50 + 20 % of the live ones. The outbox, updated by
/// every claim and completion, is the table that needs it: without it each
/// claim reads past every dead index entry left since the last vacuum.
/// Returns the tables vacuumed.
pub async fn vacuum_as_autovacuum_would(db: &Db) -> anyhow::Result<Vec<String>> {
    if autovacuum_on(db).await? {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT relname::TEXT FROM pg_stat_user_tables \
             WHERE n_dead_tup > 50 + 0.2 * n_live_tup ORDER BY relname",
        ))
        .await?;
    let mut vacuumed = Vec::new();
    for row in rows {
        let table: String = row.try_get_by_index(0)?;
        db.execute_unprepared(&format!("VACUUM (ANALYZE) \"{table}\""))
            .await?;
        VACUUMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vacuumed.push(table);
    }
    Ok(vacuumed)
}

/// Waits until the MongoDB server answers a lookup of the week's stored top
/// within `fast` five times in a row, and returns how long that took. A
/// server that has just absorbed a large drain can stall every command for
/// seconds while it settles; reads measured then would time the settling,
/// not the read.
pub async fn wait_mongo_settled(
    mongo: &mongodb::Database,
    fast: Duration,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    use studysync::{domain::Period, sync::boards};
    let key = boards::key(
        Period::Week,
        Period::Week.bucket_start(studysync::domain::now()),
    );
    let tops = mongo.collection::<mongodb::bson::Document>(boards::COLLECTION);
    let started = Instant::now();
    let mut in_a_row = 0;
    while in_a_row < 5 {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "MongoDB still answers slowly after {timeout:?}"
        );
        let t = Instant::now();
        tops.find_one(mongodb::bson::doc! {"_id": &key}).await?;
        if t.elapsed() <= fast {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(started.elapsed())
}
