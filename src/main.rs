//! The `studysync` binary: wiring only; everything else is in the library.
use clap::{Parser, Subcommand};
use studysync::{app::AppState, cli, config::Config, startup::Application, telemetry};

#[derive(Parser)]
#[command(
    name = "studysync",
    version,
    about = "GraphQL study app server: CockroachDB truth, MongoDB read model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and, beside it, the sync worker.
    Serve {
        #[command(flatten)]
        config: Config,
        /// Do not run the sync worker in this process (run `worker` instead).
        #[arg(long, env = "NO_WORKER")]
        no_worker: bool,
    },
    /// Run the sync worker alone (any number may run at once).
    Worker {
        #[command(flatten)]
        config: Config,
        #[command(subcommand)]
        action: Option<cli::WorkerAction>,
    },
    /// Compare every source row with its read-model document.
    Verify {
        #[command(flatten)]
        config: Config,
        /// Enqueue events that make the worker fix each drifted document.
        #[arg(long)]
        repair: bool,
        /// Rows read (and documents fetched) per batch.
        #[arg(long, default_value_t = 500)]
        scan_batch_size: u64,
        /// Instead, confirm that this erased account left nothing behind in
        /// either store (see the README's "Erasure").
        #[arg(long, value_name = "ACCOUNT_ID")]
        erased: Option<uuid::Uuid>,
        /// With --erased: the account's name, to look for.
        #[arg(long, requires = "erased")]
        name: Option<String>,
        /// With --erased: the account's email, to look for.
        #[arg(long, requires = "erased")]
        email: Option<String>,
    },
    /// Rebuild the read model from the source of truth (safe while serving).
    Resync {
        #[command(flatten)]
        config: Config,
        /// Rows read (and documents fetched) per batch.
        #[arg(long, default_value_t = 500)]
        scan_batch_size: u64,
    },
    /// Apply or inspect schema migrations.
    Migrate {
        /// DATABASE_URL of the source of truth.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        #[command(subcommand)]
        action: Option<cli::MigrateAction>,
    },
    /// Print the GraphQL schema (SDL) to stdout.
    PrintSchema,
    /// Manage accounts.
    User {
        #[command(flatten)]
        config: Config,
        #[command(subcommand)]
        action: cli::UserAction,
    },
    /// Load demo data in bulk (rows and their outbox events); a running
    /// worker then brings MongoDB up to date.
    Seed {
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        sizes: studysync::seed::SeedArgs,
    },
}

impl Command {
    /// The configuration this command runs with, if it takes one.
    fn config(&self) -> Option<&Config> {
        match self {
            Command::Serve { config, .. }
            | Command::Worker { config, .. }
            | Command::Verify { config, .. }
            | Command::Resync { config, .. }
            | Command::User { config, .. }
            | Command::Seed { config, .. } => Some(config),
            Command::Migrate { .. } | Command::PrintSchema => None,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let result = run().await;
    telemetry::shutdown();
    result
}

async fn run() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // Checked once, as it is loaded: bad configuration stops the process
    // before it connects to anything.
    if let Some(config) = command.config() {
        config.validate()?;
    }
    match command {
        Command::PrintSchema => {
            print!("{}", studysync::graphql::sdl());
            Ok(())
        }
        Command::Migrate {
            database_url,
            action,
        } => cli::migrate(&database_url, action.unwrap_or_default()).await,
        Command::User { config, action } => {
            let app = AppState::connect(config).await?;
            cli::user(&app, action).await
        }
        Command::Seed { config, sizes } => {
            let app = AppState::connect(config).await?;
            cli::seed(&app, &sizes).await
        }
        Command::Worker { config, action } => {
            let app = AppState::connect(config).await?;
            studysync::app::check_schema(app.sql(), app.config().migrate_on_start).await?;
            cli::worker(app, action).await
        }
        Command::Verify {
            config,
            repair,
            scan_batch_size,
            erased,
            name,
            email,
        } => {
            let app = AppState::connect(config).await?;
            match erased {
                Some(user_id) => {
                    let erased = studysync::sync::verify::erasure::Erased {
                        user_id,
                        name,
                        email,
                    };
                    cli::verify_erasure(&app, &erased).await
                }
                None => cli::verify(&app, repair, scan_batch_size).await,
            }
        }
        Command::Resync {
            config,
            scan_batch_size,
        } => {
            let app = AppState::connect(config).await?;
            cli::resync(&app, scan_batch_size).await
        }
        Command::Serve { config, no_worker } => {
            let app = Application::build(config).await?;
            let app = if no_worker { app.without_worker() } else { app };
            app.run_until_stopped(cli::shutdown_signal()).await
        }
    }
}
