//! Direct database access for the driver: fresh databases, outbox timings,
//! versions. The server under test never shares these connections.
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

pub async fn query_f64s(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<f64>> {
    let rows = db
        .query_all(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .with_context(|| format!("query {sql}"))?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<f64>(0).ok())
        .collect())
}

pub async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

pub async fn scalar_string(db: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<String>(0)?)
}

/// Events not yet applied (and not parked).
pub async fn pending(db: &DatabaseConnection) -> anyhow::Result<i64> {
    scalar_i64(
        db,
        "SELECT count(*) FROM outbox WHERE processed_at IS NULL AND parked_at IS NULL",
    )
    .await
}

/// Waits until at most `baseline` events are pending (what was pending
/// before the caller added its own); false on timeout, or as soon as five
/// seconds pass without progress (no worker is running).
pub async fn wait_drained(
    db: &DatabaseConnection,
    baseline: i64,
    timeout: Duration,
) -> anyhow::Result<bool> {
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
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    Ok(())
}

/// Drops a scratch PostgreSQL database.
pub async fn drop_postgres(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin.close().await?;
    Ok(())
}
