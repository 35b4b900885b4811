//! Command-line actions beside `serve`.
use anyhow::Context;

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

/// `migrate up|down|status`: the deploy step that changes the schema (see
/// `migration::runner`); prints what it did.
pub async fn migrate(database_url: &str, action: MigrateAction) -> anyhow::Result<()> {
    let mut db = sea_orm::Database::connect(database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    crate::sql_audit::attach(&mut db);
    match action {
        MigrateAction::Up => {
            let applied = migration::runner::up(&db).await.context("migrate up")?;
            if applied.is_empty() {
                println!("the schema is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
        }
        MigrateAction::Down => {
            for name in migration::runner::down(&db, 1)
                .await
                .context("migrate down")?
            {
                println!("rolled back {name}");
            }
        }
        MigrateAction::Status => {
            let status = migration::runner::status(&db)
                .await
                .context("reading the migration ledger")?;
            for name in &status.applied {
                println!("applied  {name}");
            }
            for name in &status.pending {
                println!("pending  {name}");
            }
            for name in &status.unknown {
                println!("newer    {name} (applied by a newer binary)");
            }
        }
    }
    db.close().await.ok();
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
    migration::runner::up(app.sql())
        .await
        .context("applying migrations")?;
    let report = crate::seed::seed(app.writer(), sizes, |r| {
        eprintln!("seed: {}", r.progress());
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

#[derive(clap::Subcommand, Clone)]
pub enum WorkerAction {
    /// Make every parked event due again (after fixing its cause), then exit.
    ReplayParked,
    /// Pause every sync worker, in every process, until `worker resume`.
    Pause {
        /// Why, shown in health.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume every sync worker.
    Resume,
}

/// The standalone `worker` command.
pub async fn worker(app: AppState, action: Option<WorkerAction>) -> anyhow::Result<()> {
    match action {
        Some(WorkerAction::ReplayParked) => {
            let replayed = crate::sync::outbox::replay_parked(app.sql())
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!("{replayed} parked event(s) are due again");
            Ok(())
        }
        Some(WorkerAction::Pause { reason }) => {
            let by = format!("cli@{}", host_name());
            let pause = crate::sync::control::pause(app.sql(), &by, reason.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!(
                "sync workers paused since {} by {}",
                pause.paused_at.to_rfc3339(),
                pause.paused_by
            );
            Ok(())
        }
        Some(WorkerAction::Resume) => {
            let by = format!("cli@{}", host_name());
            let resumed = crate::sync::control::resume(app.sql(), &by)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!(
                "{}",
                if resumed {
                    "sync workers resumed"
                } else {
                    "sync workers were not paused"
                }
            );
            Ok(())
        }
        None => {
            // A worker may fill the read model before any server starts:
            // each index then grows with its collection instead of being
            // built at once over millions of documents later. The indexes
            // come first, so no write races `createIndexes` to create a
            // collection.
            crate::read::mongo::indexes::ensure_indexes_at_start(app.read_model()).await;
            let settings = app.config().sync.clone();
            crate::sync::worker::run(app.sync().clone(), settings, shutdown_signal()).await
        }
    }
}

/// `verify [--repair]`: prints the per-collection report. Fails (non-zero
/// exit) on drift, unless `--repair` enqueued a fix for every drifted
/// document.
pub async fn verify(app: &AppState, repair: bool, batch_size: u64) -> anyhow::Result<()> {
    let options = crate::sync::verify::Options { repair, batch_size };
    let report = crate::sync::verify::verify(app.sync(), options)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    println!("{report}");
    let drift = report.drift();
    if drift == 0 {
        return Ok(());
    }
    if repair && report.repairs_enqueued() >= drift {
        println!(
            "enqueued {} repair event(s); a running worker applies them",
            report.repairs_enqueued()
        );
        return Ok(());
    }
    anyhow::bail!("{drift} document(s) drifted from the source of truth")
}

/// `verify --erased <id>`: prints what an erased account left behind, if
/// anything; fails (non-zero exit) when it left anything.
pub async fn verify_erasure(
    app: &AppState,
    erased: &crate::sync::verify::erasure::Erased,
) -> anyhow::Result<()> {
    let report = crate::sync::verify::erasure::check(app.sync(), erased)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    println!("{report}");
    if report.findings.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "account {} is not fully erased: {} finding(s)",
        erased.user_id,
        report.findings.len()
    )
}

/// `resync`: rebuilds the read model from the source, printing progress.
pub async fn resync(app: &AppState, batch_size: u64) -> anyhow::Result<()> {
    let options = crate::sync::resync::Options {
        batch_size,
        ..Default::default()
    };
    let done = crate::sync::resync::resync(app.sync(), options, |p| {
        eprintln!(
            "{:<16} rows {:>9}  written {:>9}  newer {:>7}  tombstoned {:>6}  failed {:>4}",
            p.collection, p.rows, p.written, p.newer_in_read_model, p.tombstoned, p.failed
        );
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    let failed: u64 = done.iter().map(|p| p.failed).sum();
    let rows: u64 = done.iter().map(|p| p.rows).sum();
    println!("resync done: {rows} row(s), {failed} failure(s)");
    if failed > 0 {
        anyhow::bail!("{failed} row(s) could not be written; see the log, fix, and run again");
    }
    Ok(())
}

/// This machine's name, for saying who paused the workers.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
