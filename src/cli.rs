//! Command-line actions beside `serve`.
use anyhow::Context;
use migration::{Migrator, MigratorTrait};

use crate::{app::AppState, domain::Email};

#[derive(clap::Subcommand, Default, Clone, Copy)]
pub enum MigrateAction {
    /// Apply every pending migration (the default).
    #[default]
    Up,
    /// Roll back the last applied migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

#[derive(clap::Subcommand)]
pub enum UserAction {
    /// Grant the admin role.
    Promote { email: String },
    /// Remove the admin role.
    Demote { email: String },
}

pub async fn migrate(database_url: &str, action: MigrateAction) -> anyhow::Result<()> {
    let db = sea_orm::Database::connect(database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    match action {
        MigrateAction::Up => Migrator::up(&db, None).await?,
        MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
        MigrateAction::Status => Migrator::status(&db).await?,
    }
    Ok(())
}

pub async fn user(app: &AppState, action: UserAction) -> anyhow::Result<()> {
    let (email, admin) = match action {
        UserAction::Promote { email } => (email, true),
        UserAction::Demote { email } => (email, false),
    };
    let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = crate::write::users::set_role(app.writer(), &email, admin)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    println!("{} is now {}", user.email, user.role);
    Ok(())
}

/// Migrates, then loads demo data and prints what it wrote and how fast.
pub async fn seed(app: &AppState, sizes: &crate::seed::SeedArgs) -> anyhow::Result<()> {
    Migrator::up(app.sql(), None)
        .await
        .context("applying migrations")?;
    let report = crate::seed::seed(app.writer(), sizes, |r| {
        eprintln!(
            "seed: {} users, {} sessions, {} messages, {} events ({:.1} s)",
            r.users,
            r.sessions,
            r.messages,
            r.events,
            r.elapsed.as_secs_f64()
        );
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    let secs = report.elapsed.as_secs_f64();
    println!(
        "seeded {} users, {} todos, {} study sessions, {} study totals, {} rooms ({} memberships), \
         {} messages and {} outbox events in {secs:.1} s ({:.0} rows/s); \
         every account's password is {:?}",
        report.users,
        report.todos,
        report.sessions,
        report.totals,
        report.rooms,
        report.memberships,
        report.messages,
        report.events,
        (report.users + report.todos + report.sessions + report.totals + report.messages) as f64
            / secs.max(1e-9),
        crate::seed::DEMO_PASSWORD,
    );
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
