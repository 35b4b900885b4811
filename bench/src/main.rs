//! The benchmark: seeds fresh databases, starts the release servers as
//! child processes (the production `studysync`, and `bench-server` for the
//! comparison write modes), drives them over HTTP and writes
//! `docs/bench/REPORT.md` with SVG charts. Run it with `scripts/bench.sh`
//! (or `cargo build --release --workspace --bins` and
//! `target/release/bench --help`).
mod charts;
mod client;
mod corpus;
mod cpu;
mod db;
mod hostile;
mod hostile_report;
mod live;
mod live_report;
mod load;
mod phases;
mod rawsql;
mod report;
mod server;
mod stats;
mod ws;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use studysync::{app::AppState, config::Config, seed::SeedArgs};

/// Sizes and durations; the defaults finish in about six minutes on two cores.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "bench",
    about = "studysync benchmark: writes docs/bench/REPORT.md and charts"
)]
pub struct Args {
    /// PostgreSQL server (a database named --database is created on it).
    #[arg(
        long,
        env = "BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub postgres: String,
    /// MongoDB (or SecantusDB) URI; defaults to the one in .local/mongo/uri.
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,
    /// Name of the fresh PostgreSQL and MongoDB databases (dropped first).
    #[arg(long, default_value = "studysync_bench")]
    pub database: String,
    /// Seconds per latency cell (mutation × mode × concurrency, read query).
    #[arg(long, default_value_t = 2.0)]
    pub cell_secs: f64,
    /// Seconds of steady traffic per lag measurement.
    #[arg(long, default_value_t = 10.0)]
    pub lag_secs: f64,
    /// Rates (mutations/s) for the lag measurement.
    #[arg(long, value_delimiter = ',', default_value = "100,500")]
    pub lag_rates: Vec<f64>,
    /// Concurrency levels for the mutation latency.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub concurrency: Vec<usize>,
    /// The worker's poll interval (ms) in the lag runs.
    #[arg(long, default_value_t = 2_000)]
    pub poll_ms: u64,
    /// Longest wait for the drain, in seconds.
    #[arg(long, default_value_t = 600)]
    pub drain_timeout_secs: u64,
    /// Events whose documents are bulk-upserted for the raw ceiling: a
    /// uniform sample of the drained backlog.
    #[arg(long, default_value_t = 30_000)]
    pub ceiling_docs: usize,
    /// Statements per `update` command in the ceiling run (the worker's
    /// largest claim, `SYNC_BATCH_MAX`, by default).
    #[arg(long, default_value_t = 800)]
    pub ceiling_batch: usize,
    /// Study sessions in the scratch database where the board's SQL
    /// queries are also timed at scale (0 skips it; part of `reads`).
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_sessions: usize,
    /// Times each hostile document is sent (`hostile`); server CPU is
    /// read in ticks of 10 ms, so more requests resolve finer.
    #[arg(long, default_value_t = 50)]
    pub hostile_requests: usize,
    /// Sizes of the concurrent logIn bursts (`hostile`).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub login_bursts: Vec<usize>,
    /// Messages per second sent through instance A while subscribers on A
    /// and B receive them (`live`).
    #[arg(long, default_value_t = 20.0)]
    pub live_rate: f64,
    /// Seconds of that traffic (`live`).
    #[arg(long, default_value_t = 10.0)]
    pub live_secs: f64,
    /// Subscribers on each of the two instances (`live`).
    #[arg(long, default_value_t = 4)]
    pub live_subscribers: usize,
    /// Messages per CPU measurement without and with the subscriptions to
    /// other rooms (`live`); server CPU is read in ticks of 10 ms.
    #[arg(long, default_value_t = 600)]
    pub live_sends: usize,
    /// Their rate, messages per second (`live`).
    #[arg(long, default_value_t = 40.0)]
    pub live_send_rate: f64,
    /// Subscriptions opened on one server for the CPU and memory figures
    /// (`live`), within the server's default websocket caps.
    #[arg(long, default_value_t = 10_000)]
    pub live_subscriptions: usize,
    /// Messages sent with all those subscriptions in the sender's room, one
    /// at a time (`live`; 0 skips that reference).
    #[arg(long, default_value_t = 20)]
    pub live_same_room_sends: usize,
    /// Where the report and charts go.
    #[arg(long, default_value = "docs/bench")]
    pub out: PathBuf,
    /// Measurements to take (the seed and the drain always run: every other
    /// measurement needs an empty outbox). A partial run belongs in its own
    /// `--out` directory; `hostile` alone writes only `HOSTILE.md`, `live`
    /// alone only `LIVE.md` (and both only those two).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ceiling,reads,overhead,writes,lag,hostile"
    )]
    pub phases: Vec<Phase>,
    #[command(flatten)]
    pub seed: SeedArgs,
}

/// A measurement that `--phases` can select.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Ceiling,
    Reads,
    Overhead,
    Writes,
    Lag,
    /// Hostile documents within the body limit, and concurrent logIns.
    Hostile,
    /// Subscriptions: delivery across two instances, sendMessage CPU and
    /// memory with 10,000 subscriptions open. Not part of the default run.
    Live,
}

impl Phase {
    /// Whether the phase writes a report of its own (`HOSTILE.md`,
    /// `LIVE.md`); a run of only such phases leaves `REPORT.md` alone.
    fn standalone(self) -> bool {
        matches!(self, Phase::Hostile | Phase::Live)
    }
}

/// Who the clients act as.
pub struct Fixture {
    /// Tokens of distinct seeded users (one per concurrent client).
    pub tokens: Vec<String>,
    /// The busiest room, and tokens of its members.
    pub room_id: String,
    pub room_tokens: Vec<String>,
    /// The heaviest studier (leaderboard, stats, todos page).
    pub reader_token: String,
}

/// The benchmark's own seed sizes: a backlog of about 100,000 events, which
/// the drain measurement needs and the stand-in MongoDB can absorb in time.
fn parse_args() -> Args {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = Args::command();
    for (arg, value) in [
        ("users", "3000"),
        ("sessions", "30000"),
        ("todos", "9000"),
        ("rooms", "30"),
        ("messages", "8000"),
    ] {
        command = command.mut_arg(arg, |a| a.default_value(value));
    }
    let matches = command.get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let root = std::env::current_dir()?;
    let mongodb_uri = match &args.mongodb_uri {
        Some(uri) => uri.clone(),
        None => std::fs::read_to_string(root.join(".local/mongo/uri"))
            .context("no --mongodb-uri and no .local/mongo/uri (run scripts/mongo.sh)")?
            .trim()
            .to_owned(),
    };
    let dir = std::env::current_exe()?
        .parent()
        .context("bench binary has no directory")?
        .to_owned();
    let (bin, bench_server) = (dir.join("studysync"), dir.join("bench-server"));
    for bin in [&bin, &bench_server] {
        anyhow::ensure!(
            bin.exists(),
            "{} not found: build with `cargo build --release --workspace --bins`",
            bin.display()
        );
    }
    let jwt_secret = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let database_url = format!("{}/{}", args.postgres.trim_end_matches('/'), args.database);
    let env = server::Env {
        bin,
        bench_server,
        database_url: database_url.clone(),
        mongodb_uri: mongodb_uri.clone(),
        mongodb_db: args.database.clone(),
        jwt_secret: jwt_secret.clone(),
        log_dir: root.join("target/bench-logs"),
    };
    let mut results = report::Results::new(&args);

    println!(
        "== setup: fresh databases {0} (PostgreSQL) and {0} (MongoDB)",
        args.database
    );
    db::recreate_postgres(
        &format!("{}/postgres", args.postgres.trim_end_matches('/')),
        &args.database,
    )
    .await?;
    let mongo = mongodb::Client::with_uri_str(&mongodb_uri).await?;
    mongo.database(&args.database).drop().await?;
    let config = Config::from_args([
        "--database-url",
        &database_url,
        "--mongodb-uri",
        &mongodb_uri,
        "--mongodb-db",
        &args.database,
        "--jwt-secret",
        &jwt_secret,
    ])?;
    let app = AppState::connect(config).await?;
    migration::runner::up(app.sql())
        .await
        .context("migrating")?;
    results.machine = report::machine(app.sql(), &mongo).await;

    println!(
        "== [{:>4.0} s] seed: {:?}",
        results.started.elapsed().as_secs_f64(),
        args.seed
    );
    let seeded = studysync::seed::seed(app.writer(), &args.seed, |r| {
        println!("  {}", r.progress());
    })
    .await
    .map_err(|e| anyhow::anyhow!("seeding: {}", e.chain()))?;
    results.seed = Some(seeded);
    let sql = app.sql().clone();
    let fx = Arc::new(fixture(&app, args.concurrency.iter().copied().max().unwrap_or(32)).await?);

    println!(
        "== [{:>4.0} s] drain: the seeded backlog, by a separate `worker` process",
        results.started.elapsed().as_secs_f64()
    );
    match phases::drain(&env, &sql, Duration::from_secs(args.drain_timeout_secs)).await {
        Ok((t, rss)) => {
            println!(
                "  {} events in {:.1} s = {:.0} events/s",
                t.items, t.secs, t.per_sec
            );
            results.rss.push(("worker, drain".to_owned(), rss));
            results.drain = Ok(t);
        }
        Err(e) => {
            println!("  not available: {e:#}");
            results.drain = Err(format!("{e:#}"));
        }
    }
    match db::vacuum_as_autovacuum_would(&sql).await {
        Ok(tables) if !tables.is_empty() => println!("  vacuumed {}", tables.join(", ")),
        Ok(_) => {}
        Err(e) => results.notes.push(format!("vacuum after the drain: {e:#}")),
    }
    results.autovacuum = db::autovacuum_on(&sql).await.ok();
    if args.phases.contains(&Phase::Ceiling) {
        println!(
            "== [{:>4.0} s] raw ceiling: the same documents written with the driver",
            results.started.elapsed().as_secs_f64()
        );
        match phases::ceiling(
            &sql,
            &mongo,
            &format!("{}_ceiling", args.database),
            args.ceiling_docs,
            args.ceiling_batch,
        )
        .await
        {
            Ok(phases::Ceilings {
                journaled,
                default,
                same_statements,
            }) => {
                for (name, t) in [
                    ("guarded upserts, every command journaled", &journaled),
                    ("guarded upserts, default write concern", &default),
                    ("the worker's statements, default concern", &same_statements),
                ] {
                    println!(
                        "  {name:<42} {} documents in {:.1} s = {:.0} docs/s",
                        t.items, t.secs, t.per_sec
                    );
                }
                results.ceiling = Ok(journaled);
                results.ceiling_default = Ok(default);
                results.ceiling_same = Ok(same_statements);
            }
            Err(e) => {
                println!("  not available: {e:#}");
                results.ceiling = Err(format!("{e:#}"));
            }
        }
    }
    let cell = Duration::from_secs_f64(args.cell_secs);
    if args.phases.contains(&Phase::Reads) {
        match db::wait_mongo_settled(
            &mongo.database(&args.database),
            Duration::from_millis(20),
            Duration::from_secs(900),
        )
        .await
        {
            Ok(waited) if waited > Duration::from_secs(1) => results.notes.push(format!(
                "MongoDB answered lookups within 20 ms again {:.0} s after the drain; the reads were measured after that",
                waited.as_secs_f64()
            )),
            Ok(_) => {}
            Err(e) => results.notes.push(format!("waiting for MongoDB to settle: {e:#}")),
        }
        println!(
            "== [{:>4.0} s] reads at seeded scale",
            results.started.elapsed().as_secs_f64()
        );
        let (reads, errors) = phases::reads(&env, &fx, cell, &[1, 4], results.drain.is_ok()).await;
        results.reads = reads;
        results.notes.extend(errors);
        for clients in [1, 4] {
            let (floors, errors) =
                phases::board_floors(&mongo.database(&args.database), &sql, cell, clients).await;
            results.reads.extend(floors);
            results.notes.extend(errors);
        }
        if args.scale_sessions > 0 {
            println!(
                "== [{:>4.0} s] the board's SQL at scale: {} sessions in a scratch database",
                results.started.elapsed().as_secs_f64(),
                args.scale_sessions
            );
            match phases::board_at_scale(
                &args.postgres,
                &format!("{}_scale", args.database),
                &[
                    "--mongodb-uri",
                    &mongodb_uri,
                    "--mongodb-db",
                    &format!("{}_scale", args.database),
                    "--jwt-secret",
                    &jwt_secret,
                ],
                args.scale_sessions,
                cell,
            )
            .await
            {
                Ok((cells, seeded)) => {
                    results.reads.extend(cells);
                    results.scale_seed = Some(seeded);
                }
                Err(e) => results.notes.push(format!("board at scale: {e:#}")),
            }
        }
    }
    if args.phases.contains(&Phase::Overhead) {
        println!(
            "== [{:>4.0} s] GraphQL overhead",
            results.started.elapsed().as_secs_f64()
        );
        results.overhead = phases::overhead(&env, &fx, cell, &[1, 8])
            .await
            .map_err(|e| format!("{e:#}"));
    }
    if args.phases.contains(&Phase::Writes) {
        println!(
            "== [{:>4.0} s] mutation latency per write mode",
            results.started.elapsed().as_secs_f64()
        );
        let (writes, rss, errors) = phases::writes(&env, &fx, &args.concurrency, cell, &sql).await;
        results.writes = writes;
        results.rss.extend(rss);
        results.notes.extend(errors);
    }
    if args.phases.contains(&Phase::Lag) {
        println!(
            "== [{:>4.0} s] sync lag",
            results.started.elapsed().as_secs_f64()
        );
        let (lag, errors) = phases::lag(
            &env,
            &fx,
            &sql,
            &args.lag_rates,
            Duration::from_secs_f64(args.lag_secs),
            args.poll_ms,
        )
        .await;
        results.lag = lag;
        results.notes.extend(errors);
    }
    if args.phases.contains(&Phase::Hostile) {
        println!(
            "== [{:>4.0} s] hostile documents and login bursts",
            results.started.elapsed().as_secs_f64()
        );
        let (hostile, errors) =
            hostile::hostile(&env, &fx, &sql, args.hostile_requests, &args.login_bursts).await;
        results.hostile = Some(hostile);
        results.notes.extend(errors);
    }
    if args.phases.contains(&Phase::Live) {
        println!(
            "== [{:>4.0} s] live subscriptions: across two instances, and {} at once",
            results.started.elapsed().as_secs_f64(),
            args.live_subscriptions
        );
        let settings = live::Settings {
            rate: args.live_rate,
            secs: args.live_secs,
            subscribers: args.live_subscribers,
            sends: args.live_sends,
            send_rate: args.live_send_rate,
            subscriptions: args.live_subscriptions,
            same_room_sends: args.live_same_room_sends,
        };
        let (live, errors) = live::live(&env, &fx, &app, &settings).await;
        results.live = Some(live);
        results.notes.extend(errors);
    }
    results.finish();

    std::fs::create_dir_all(&args.out)?;
    if let Some(h) = &results.hostile {
        let path = args.out.join("HOSTILE.md");
        std::fs::write(&path, hostile_report::standalone(&results, h))?;
        println!("hostile documents: {}", path.display());
    }
    if let Some(l) = &results.live {
        let path = args.out.join("LIVE.md");
        std::fs::write(&path, live_report::standalone(&results, l))?;
        println!("live subscriptions: {}", path.display());
    }
    println!("\n{}", report::targets_text(&results));
    // Only phases with reports of their own: their figures are in those,
    // and the report's other figures are left as they are.
    if args.phases.iter().all(|p| p.standalone()) {
        return Ok(());
    }
    let charts = charts::draw(&results, &args.out);
    results
        .notes
        .extend(charts.err().map(|e| format!("charts: {e:#}")));
    let markdown = report::render(&results);
    std::fs::write(args.out.join("REPORT.md"), &markdown)?;
    println!("report: {}", args.out.join("REPORT.md").display());
    Ok(())
}

/// Tokens for the clients: the first users, the busiest room's members and
/// the heaviest studier.
async fn fixture(app: &AppState, clients: usize) -> anyhow::Result<Fixture> {
    let sql = app.sql();
    // Seeded accounts are at their first token generation.
    let issue = |id: &uuid::Uuid| {
        app.tokens()
            .issue(*id, 0)
            .map_err(|e| anyhow::anyhow!("{}", e.chain()))
    };
    let users = db::column::<uuid::Uuid>(
        sql,
        &format!("SELECT id FROM users ORDER BY email LIMIT {clients}"),
    )
    .await?;
    let room = db::column::<uuid::Uuid>(
        sql,
        "SELECT room_id FROM messages GROUP BY room_id ORDER BY count(*) DESC LIMIT 1",
    )
    .await?;
    let room_id = *room.first().context("no messages seeded")?;
    let members = db::column::<uuid::Uuid>(
        sql,
        &format!("SELECT user_id FROM room_members WHERE room_id = '{room_id}' ORDER BY user_id"),
    )
    .await?;
    let reader = db::column::<uuid::Uuid>(
        sql,
        "SELECT user_id FROM study_totals WHERE period = 'all' ORDER BY minutes DESC LIMIT 1",
    )
    .await?;
    Ok(Fixture {
        tokens: users.iter().map(issue).collect::<anyhow::Result<_>>()?,
        room_id: room_id.to_string(),
        room_tokens: members.iter().map(issue).collect::<anyhow::Result<_>>()?,
        reader_token: issue(reader.first().context("no sessions seeded")?)?,
    })
}
