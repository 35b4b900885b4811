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
