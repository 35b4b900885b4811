//! `studysync serve --no-worker` with a comparison write mode (see
//! `bench::sinks`): the same start-up path and server, with a writer that
//! hands the events to the mode's sink instead of the outbox. The driver
//! starts it only for those modes; the outbox modes run the production
//! `studysync` binary.
use clap::Parser;
use studysync::{cli, config::Config, startup::Application, telemetry};

#[derive(Parser)]
#[command(
    name = "bench-server",
    about = "studysync's API with a benchmark comparison write mode (no sync worker)"
)]
struct Args {
    #[command(flatten)]
    config: Config,
    /// How writes reach MongoDB instead of through the outbox.
    #[arg(long, env = "BENCH_WRITE_MODE", value_enum)]
    write_mode: bench::WriteMode,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let Args { config, write_mode } = Args::parse();
    config.validate()?;
    let mongo = studysync::app::connect_mongo(&config).await?;
    let app = Application::build_with_sink(config, write_mode.sink(mongo)).await?;
    app.without_worker()
        .run_until_stopped(cli::shutdown_signal())
        .await
}
