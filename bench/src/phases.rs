//! The measurements. Each returns its figures or the reason it could not be
//! taken; none of them is ever estimated.
use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{bail, Context};
use bench::WriteMode;
use serde_json::json;

use crate::{
    client::Gql,
    cpu, db,
    load::{closed_loop, closed_loop_samples, open_loop, Samples},
    server::{Env, Process},
    stats::{summarize_ms, Summary},
    Fixture,
};

/// A mutation the write measurements send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    CreateTodo,
    LogStudySession,
    SendMessage,
}

impl Mutation {
    pub const ALL: [Mutation; 3] = [
        Mutation::CreateTodo,
        Mutation::LogStudySession,
        Mutation::SendMessage,
    ];

    /// Its GraphQL field name.
    pub fn name(self) -> &'static str {
        match self {
            Mutation::CreateTodo => "createTodo",
            Mutation::LogStudySession => "logStudySession",
            Mutation::SendMessage => "sendMessage",
        }
    }
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// The per-account mutation budget of the servers that measure writes and
/// lag: they send thousands of mutations a second from a few seeded
/// accounts, which the production default (`MUTATION_BURST` 60,
/// `MUTATION_RATE_PER_SECOND` 10) would mostly refuse. Each request still
/// pays the budget's statement, as in production.
pub fn load_vars() -> Vec<(&'static str, String)> {
    vec![
        ("MUTATION_BURST", "1000000".to_owned()),
        ("MUTATION_RATE_PER_SECOND", "1000000".to_owned()),
    ]
}

/// Where the lag measurement's sync worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Worker {
    /// Beside the API, in the `serve` process (woken by local commits).
    InProcess,
    /// A `worker` process of its own, which polls.
    Separate,
}

impl Worker {
    pub const ALL: [Worker; 2] = [Worker::InProcess, Worker::Separate];

    pub fn label(self) -> &'static str {
        match self {
            Worker::InProcess => "in-process",
            Worker::Separate => "separate",
        }
    }
}

impl std::fmt::Display for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.label())
    }
}

/// A write mode of the latency measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Production, with its in-process worker.
    Outbox,
    /// Production with `SYNC_WAKE_GAP_MS=0`: the worker claims on every
    /// commit's wake-up, as before the wake gap.
    OutboxEager,
    /// The production write path with no worker competing for this
    /// machine's two cores.
    OutboxPaused,
    /// The old design (`bench-server --write-mode dual-write`).
    DualWrite,
    /// No read model at all (`bench-server --write-mode floor`).
    Floor,
    /// No server at all: the SQL one createTodo commits, sent by the
    /// benchmark itself (`rawsql`). createTodo only.
    RawSql,
}

impl Mode {
    pub const ALL: [Mode; 5] = [
        Mode::Outbox,
        Mode::OutboxEager,
        Mode::OutboxPaused,
        Mode::DualWrite,
        Mode::Floor,
    ];

    /// How the report and the console name it.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Outbox => "outbox",
            Mode::OutboxEager => "outbox, no wake gap",
            Mode::OutboxPaused => "outbox, worker paused",
            Mode::DualWrite => "dual-write",
            Mode::Floor => "floor",
            Mode::RawSql => "raw SQL floor",
        }
    }

    /// Its name in log file names.
    fn slug(self) -> &'static str {
        match self {
            Mode::OutboxEager => "outboxnowakegap",
            Mode::OutboxPaused => "outboxworkerpaused",
            Mode::RawSql => "rawsql",
            other => other.label(),
        }
    }

    /// The comparison mode `bench-server` runs it with; `None`: the
    /// production binary runs it.
    fn comparison(self) -> Option<WriteMode> {
        match self {
            Mode::Outbox | Mode::OutboxEager | Mode::OutboxPaused | Mode::RawSql => None,
            Mode::DualWrite => Some(WriteMode::DualWrite),
            Mode::Floor => Some(WriteMode::Floor),
        }
    }

    /// Whether its transactions write outbox events.
    fn writes_outbox(self) -> bool {
        self.comparison().is_none()
    }

    /// Server settings. The two outbox servers with a worker poll only when
    /// told (local commits wake them): the `Outbox` one drains every mode's
    /// events between slices, and neither works during another mode's
    /// slice.
    fn vars(self) -> Vec<(&'static str, String)> {
        let mut vars = match self {
            Mode::Outbox => vec![("SYNC_POLL_INTERVAL_MS", "3600000".to_owned())],
            Mode::OutboxEager => vec![
                ("SYNC_POLL_INTERVAL_MS", "3600000".to_owned()),
                ("SYNC_WAKE_GAP_MS", "0".to_owned()),
            ],
            Mode::OutboxPaused => vec![("NO_WORKER", "true".to_owned())],
            // bench-server never runs a worker; the raw floor is no server.
            Mode::DualWrite | Mode::Floor | Mode::RawSql => Vec::new(),
        };
        vars.extend(load_vars());
        vars
    }

    /// Starts its server with `pool` SQL connections at most.
    async fn serve(self, env: &Env, pool: u32) -> anyhow::Result<Process> {
        let log = format!("writes-{}", self.slug());
        let mut vars = self.vars();
        vars.push(("DATABASE_MAX_CONNECTIONS", pool.to_string()));
        match self.comparison() {
            None => Process::serve(env, &vars, &log).await,
            Some(mode) => Process::serve_comparison(env, mode, &vars, &log).await,
        }
    }
}

/// What a write mode's load goes to: a server over HTTP, or the raw-SQL
/// floor over a connection pool.
enum Target {
    Server(Box<Process>, Gql),
    Raw(crate::rawsql::RawFloor),
}

impl Target {
    fn pid(&self) -> Option<u32> {
        match self {
            Target::Server(server, _) => server.pid(),
            Target::Raw(_) => None,
        }
    }

    fn serves(&self, mutation: Mutation) -> bool {
        matches!(self, Target::Server(..)) || mutation == Mutation::CreateTodo
    }

    /// Closed-loop samples of `mutation` with `c` clients for `duration`.
    async fn run(
        &self,
        fx: &Arc<Fixture>,
        mutation: Mutation,
        c: usize,
        duration: Duration,
        first: usize,
    ) -> Samples {
        match self {
            Target::Server(_, gql) => {
                let (gql, fx) = (gql.clone(), Arc::clone(fx));
                closed_loop_samples(c, duration, first, move |client, i| {
                    let (gql, fx) = (gql.clone(), Arc::clone(&fx));
                    async move { mutate(&gql, &fx, mutation, client, i).await }
                })
                .await
            }
            Target::Raw(raw) => {
                let raw = raw.clone();
                closed_loop_samples(c, duration, first, move |client, i| {
                    let raw = raw.clone();
                    async move { raw.create_todo(client, i).await }
                })
                .await
            }
        }
    }
}

/// Each cell's time is split into this many slices per mode, and the modes
/// take turns slice by slice (starting with a different mode each round), so
/// a slow moment of this shared machine falls on every mode alike.
pub const ROUNDS: usize = 4;

#[derive(Clone, Debug)]
pub struct WriteCell {
    pub mode: Mode,
    pub mutation: Mutation,
    pub concurrency: usize,
    pub summary: Summary,
    /// CPU seconds each part of the system spent during this cell's slices.
    pub cpu: std::collections::HashMap<cpu::Part, f64>,
}

impl WriteCell {
    /// CPU milliseconds `part` spent per request answered.
    pub fn cpu_ms(&self, part: cpu::Part) -> f64 {
        cpu::per_request_ms(&self.cpu, part, self.summary.n)
    }

    /// CPU milliseconds the whole machine spent per request answered.
    pub fn cpu_ms_total(&self) -> f64 {
        cpu::Part::ALL.iter().map(|&part| self.cpu_ms(part)).sum()
    }
}

/// One mutation, run by client `c` (its own user).
async fn mutate(
    gql: &Gql,
    fx: &Fixture,
    mutation: Mutation,
    c: usize,
    i: usize,
) -> anyhow::Result<()> {
    let token = &fx.tokens[c % fx.tokens.len()];
    match mutation {
        Mutation::CreateTodo => gql
            .run(token, "mutation($t: String!) { createTodo(input: {title: $t}) { id } }", json!({"t": format!("Bench todo {c}-{i}")}))
            .await
            .map(drop),
        Mutation::LogStudySession => gql
            .run(token, "mutation($m: Int!) { logStudySession(input: {subject: \"Benchmarking\", minutes: $m}) { id } }", json!({"m": 1 + (i % 90)}))
            .await
            .map(drop),
        Mutation::SendMessage => {
            let token = &fx.room_tokens[c % fx.room_tokens.len()];
            gql.run(token, "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id } }", json!({"r": fx.room_id, "b": format!("bench message {c} {i}")}))
                .await
                .map(drop)
        }
    }
}

/// SQL connections each write server may open: the production default (20)
/// unless the write servers together, the raw floor's `clients` and the
/// benchmark's own would pass PostgreSQL's `max_connections` (their pools
/// keep what they opened, so a server whose slice is over still holds its
/// connections).
async fn server_pool(sql: &studysync::pool::Db, clients: usize) -> u32 {
    use sea_orm::ConnectionTrait;
    const DEFAULT: u32 = 20;
    // Superuser slots, the benchmark's own pool, the drain, some slack.
    const KEPT: i64 = 16;
    let statement = sea_orm::Statement::from_string(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT current_setting('max_connections')::BIGINT",
    );
    let max = match sql.query_one(statement).await {
        Ok(Some(row)) => row.try_get_by_index::<i64>(0).unwrap_or(100),
        _ => 100,
    };
    let servers = Mode::ALL.len() as i64;
    let room = (max - KEPT - clients as i64) / servers;
    u32::try_from(room.clamp(2, i64::from(DEFAULT))).unwrap_or(DEFAULT)
}

/// (a) + (f): every mutation at every concurrency, per write mode. One
/// server per mode, all running at once; within a cell the modes take turns
/// in [`ROUNDS`] slices and each mode's latencies are pooled. After a slice
/// that wrote outbox events, the "outbox" server's worker drains them before
/// the next slice starts. Peak RSS per server is read at the end.
pub async fn writes(
    env: &Env,
    fx: &Arc<Fixture>,
    concurrencies: &[usize],
    cell: Duration,
    sql: &studysync::pool::Db,
) -> (Vec<WriteCell>, Vec<(String, Option<f64>)>, Vec<String>) {
    let mut cells = Vec::new();
    let mut errors = Vec::new();
    let baseline = db::pending(sql).await.unwrap_or(0);
    let mut servers: Vec<(Mode, Target)> = Vec::new();
    let most_clients = concurrencies.iter().copied().max().unwrap_or(1);
    let pool = server_pool(sql, most_clients).await;
    println!("  each write server opens at most {pool} SQL connections");
    for mode in Mode::ALL {
        match mode.serve(env, pool).await {
            Ok(server) => {
                let gql = Gql::new(&server.url);
                servers.push((mode, Target::Server(Box::new(server), gql)));
            }
            Err(e) => errors.push(format!("write mode {}: {e:#}", mode.label())),
        }
    }
    match crate::rawsql::RawFloor::connect(&env.database_url, most_clients as u32).await {
        Ok(raw) => servers.push((Mode::RawSql, Target::Raw(raw))),
        Err(e) => errors.push(format!("write mode {}: {e:#}", Mode::RawSql.label())),
    }
    let drainer = servers.iter().find_map(|(mode, target)| match target {
        Target::Server(_, gql) if *mode == Mode::Outbox => Some(gql.clone()),
        _ => None,
    });
    // Brings the outbox back to `baseline` after a slice of `mode`.
    let settle = |mode: Mode| {
        let (drainer, fx) = (drainer.clone(), Arc::clone(fx));
        async move {
            if !mode.writes_outbox() {
                return Ok(HashMap::new());
            }
            let Some(drainer) = drainer else {
                bail!("no outbox server to drain the events of {}", mode.label());
            };
            if mode != Mode::Outbox {
                // One local commit wakes the worker, which then drains all.
                mutate(&drainer, &fx, Mutation::CreateTodo, 0, usize::MAX).await?;
            }
            if !db::wait_drained(sql, baseline, Duration::from_secs(120)).await? {
                bail!("the outbox did not drain after a slice of {}", mode.label());
            }
            // What autovacuum would do on a production server, and what it
            // costs PostgreSQL; the caller charges it to the worker's mode.
            let before = cpu::snapshot(None);
            db::vacuum_as_autovacuum_would(sql).await?;
            Ok(cpu::spent(&before, &cpu::snapshot(None)))
        }
    };
    let with_worker = servers.iter().position(|(mode, ..)| *mode == Mode::Outbox);
    let slice = cell / ROUNDS as u32;
    for mutation in Mutation::ALL {
        for &c in concurrencies {
            let mut pooled: Vec<Samples> = servers.iter().map(|_| Samples::default()).collect();
            let mut spent: Vec<HashMap<cpu::Part, f64>> =
                servers.iter().map(|_| HashMap::new()).collect();
            let mut failed = None;
            // Warm-up: connections, caches, prepared statements.
            for (mode, target) in servers.iter().filter(|(_, t)| t.serves(mutation)) {
                target
                    .run(fx, mutation, c, Duration::from_millis(300), 10_000_000)
                    .await;
                if let Err(e) = settle(*mode).await {
                    failed = Some(e);
                }
            }
            for round in 0..ROUNDS {
                for k in 0..servers.len() {
                    let at = (k + round) % servers.len();
                    let (mode, target) = &servers[at];
                    if !target.serves(mutation) {
                        continue;
                    }
                    let before = cpu::snapshot(target.pid());
                    pooled[at].extend(target.run(fx, mutation, c, slice, round * 1_000_000).await);
                    for (part, secs) in cpu::spent(&before, &cpu::snapshot(target.pid())) {
                        *spent[at].entry(part).or_insert(0.0) += secs;
                    }
                    match (settle(*mode).await, with_worker) {
                        (Ok(vacuum), Some(worker)) => {
                            if let Some(secs) = vacuum.get(&cpu::Part::Sql) {
                                *spent[worker].entry(cpu::Part::Sql).or_insert(0.0) += secs;
                            }
                        }
                        (Ok(_), None) => {}
                        (Err(e), _) => failed = Some(e),
                    }
                }
            }
            if let Some(e) = failed {
                errors.push(format!("{mutation} c={c}: {e:#}"));
            }
            for (((mode, target), samples), cpu) in servers.iter().zip(pooled).zip(spent) {
                if !target.serves(mutation) {
                    continue;
                }
                let summary = samples.summary();
                println!(
                    "  {:<22} {mutation:<16} c={c:<3} p50 {:>7.2} ms  p95 {:>7.2}  p99 {:>7.2}  {:>7.0} req/s  errors {}",
                    mode.label(),
                    summary.p50, summary.p95, summary.p99, summary.rps, summary.errors
                );
                let cell = WriteCell {
                    mode: *mode,
                    mutation,
                    concurrency: c,
                    summary,
                    cpu,
                };
                let per_request: Vec<String> = cpu::Part::ALL
                    .iter()
                    .map(|&part| format!("{} {:.3}", part.label(), cell.cpu_ms(part)))
                    .collect();
                println!(
                    "  {:<22} CPU ms per request: {}",
                    "",
                    per_request.join(", ")
                );
                cells.push(cell);
            }
        }
    }
    let mut rss = Vec::new();
    for (mode, target) in servers {
        match target {
            Target::Server(server, _) => {
                rss.push((
                    format!("serve, write mode {}", mode.label()),
                    server.peak_rss_mib(),
                ));
                server.stop().await;
            }
            Target::Raw(raw) => raw.close().await,
        }
    }
    (cells, rss, errors)
}

#[derive(Clone, Debug)]
pub struct LagCell {
    pub worker: Worker,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub mutation: Summary,
    /// Commit → applied, from the outbox's own timestamps.
    pub lag: Summary,
    pub unapplied: i64,
}

/// (b): steady createTodo traffic at a fixed rate; lag = the worker's
/// `processed_at` minus the event's `created_at`, both from the database
/// clock.
pub async fn lag(
    env: &Env,
    fx: &Arc<Fixture>,
    sql: &studysync::pool::Db,
    rates: &[f64],
    duration: Duration,
    poll_ms: u64,
) -> (Vec<LagCell>, Vec<String>) {
    let mut cells = Vec::new();
    let mut errors = Vec::new();
    for worker in Worker::ALL {
        let vars = vec![("SYNC_POLL_INTERVAL_MS", poll_ms.to_string())];
        let mut serve_vars = vars.clone();
        serve_vars.extend(load_vars());
        if worker == Worker::Separate {
            serve_vars.push(("NO_WORKER", "true".to_owned()));
        }
        let server = match Process::serve(env, &serve_vars, &format!("lag-{worker}")).await {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("lag ({worker} worker): {e:#}"));
                continue;
            }
        };
        let separate = if worker == Worker::Separate {
            match Process::worker(env, &vars, "lag-worker").await {
                Ok(w) => Some(w),
                Err(e) => {
                    errors.push(format!("lag (separate worker): {e:#}"));
                    server.stop().await;
                    continue;
                }
            }
        } else {
            None
        };
        for &rate in rates {
            match lag_cell(worker, &server, fx, sql, rate, duration).await {
                Ok(cell) => {
                    println!(
                        "  {worker:<10} {rate:>5.0}/s (achieved {:>5.0}/s): lag p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  mutation p50 {:.1} ms",
                        cell.achieved_rate, cell.lag.p50, cell.lag.p99, cell.lag.max, cell.mutation.p50
                    );
                    cells.push(cell);
                }
                Err(e) => errors.push(format!("lag ({worker}, {rate}/s): {e:#}")),
            }
        }
        if let Some(w) = separate {
            w.stop().await;
        }
        server.stop().await;
    }
    (cells, errors)
}

async fn lag_cell(
    worker: Worker,
    server: &Process,
    fx: &Arc<Fixture>,
    sql: &studysync::pool::Db,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<LagCell> {
    db::vacuum_as_autovacuum_would(sql).await?;
    let baseline = db::pending(sql).await?;
    let since = db::scalar_string(sql, "SELECT CAST(now() AS TEXT)").await?;
    let gql = Gql::new(&server.url);
    let mutation = open_loop(rate, duration, {
        let fx = Arc::clone(fx);
        move |i| {
            let (gql, fx) = (gql.clone(), Arc::clone(&fx));
            async move { mutate(&gql, &fx, Mutation::CreateTodo, i, i).await }
        }
    })
    .await;
    db::wait_drained(sql, baseline, Duration::from_secs(60)).await?;
    let filter =
        format!("aggregate_type = 'todo' AND created_at >= CAST('{since}' AS TIMESTAMPTZ)");
    let mut lag_ms = db::query_f64s(
        sql,
        &format!("SELECT CAST(EXTRACT(EPOCH FROM (processed_at - created_at)) * 1000 AS FLOAT8) FROM outbox WHERE {filter} AND processed_at IS NOT NULL"),
    )
    .await?;
    let unapplied = db::scalar_i64(
        sql,
        &format!("SELECT count(*) FROM outbox WHERE {filter} AND processed_at IS NULL"),
    )
    .await?;
    if lag_ms.is_empty() {
        bail!("no event was applied (is the worker running?)");
    }
    let lag = summarize_ms(&mut lag_ms, 0, duration);
    Ok(LagCell {
        worker,
        target_rate: rate,
        achieved_rate: mutation.rps,
        mutation,
        lag,
        unapplied,
    })
}

#[derive(Clone, Debug)]
pub struct Throughput {
    pub items: usize,
    pub secs: f64,
    pub per_sec: f64,
}

/// (c): the seeded backlog drained by a separate `worker` process.
pub async fn drain(
    env: &Env,
    sql: &studysync::pool::Db,
    timeout: Duration,
) -> anyhow::Result<(Throughput, Option<f64>)> {
    let backlog = db::pending(sql).await?;
    if backlog == 0 {
        bail!("no backlog to drain");
    }
    let started = std::time::Instant::now();
    let worker = Process::worker(env, &[], "drain-worker").await?;
    let mut last_report = std::time::Instant::now();
    loop {
        let left = db::pending(sql).await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > timeout {
            worker.stop().await;
            bail!(
                "{left} of {backlog} events still pending after {} s",
                timeout.as_secs()
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "  draining: {left} events left after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let rss = worker.peak_rss_mib();
    worker.stop().await;
    let items = usize::try_from(backlog).unwrap_or_default();
    Ok((
        Throughput {
            items,
            secs,
            per_sec: items as f64 / secs,
        },
        rss,
    ))
}

/// (c) ceiling: the same documents, projected beforehand, bulk-upserted
/// (version-guarded, unordered `update` commands of `batch` statements, one
/// collection at a time) straight into the same server, in a scratch
/// database that has the read model's indexes — once with every command
/// journaled (`w: majority, j: true`) and once with the server's default (the
/// worker writes with the default and then makes the whole batch durable with
/// one journaled barrier).
pub async fn ceiling(
    sql: &studysync::pool::Db,
    mongo: &mongodb::Client,
    scratch_db: &str,
    limit: usize,
    batch: usize,
) -> anyhow::Result<Ceilings> {
    use mongodb::bson::{doc, Document};
    use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
    use studysync::{entity::outbox, sync::project::project};
    // Event ids are random: ordered by id, the first `limit` events are a
    // uniform sample of the backlog, with the drain's mix of collections
    // (the seed writes messages last, and their search indexes cost most).
    let events = outbox::Entity::find()
        .order_by_asc(outbox::Column::Id)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        .all(sql)
        .await?;
    let mut by_collection: std::collections::BTreeMap<&str, Vec<Document>> = Default::default();
    // The worker's own statements: first versions inserted, the rest
    // version-guarded upserts.
    let mut inserts: std::collections::BTreeMap<&str, Vec<Document>> = Default::default();
    let mut upserts: std::collections::BTreeMap<&str, Vec<Document>> = Default::default();
    for e in &events {
        let p = project(
            &e.aggregate_type,
            e.aggregate_id,
            e.aggregate_version,
            &e.payload,
        )
        .with_context(|| format!("projecting {}", e.aggregate_type))?;
        let update = doc! {
            "q": {"_id": &p.id, "version": {"$lt": p.version}},
            "u": p.doc.clone(),
            "upsert": true,
        };
        by_collection
            .entry(p.collection)
            .or_default()
            .push(update.clone());
        if p.version == 1 {
            inserts.entry(p.collection).or_default().push(p.doc);
        } else {
            upserts.entry(p.collection).or_default().push(update);
        }
    }
    let db = mongo.database(scratch_db);
    let mut runs = Vec::new();
    for run in 0..3 {
        db.drop().await?;
        // The worker creates the read model's indexes as it starts, so it
        // maintains them through the drain: the ceilings pay the same.
        studysync::read::mongo::indexes::ensure_indexes(&db)
            .await
            .context("creating the read model's indexes in the scratch database")?;
        let started = std::time::Instant::now();
        let mut commands: Vec<Document> = Vec::new();
        let chunked = |verb: &str,
                       field: &str,
                       all: &std::collections::BTreeMap<&str, Vec<Document>>,
                       out: &mut Vec<Document>| {
            for (collection, statements) in all {
                for chunk in statements.chunks(batch.max(1)) {
                    out.push(doc! {verb: *collection, field: chunk.to_vec(), "ordered": false});
                }
            }
        };
        if run < 2 {
            chunked("update", "updates", &by_collection, &mut commands);
        } else {
            chunked("insert", "documents", &inserts, &mut commands);
            chunked("update", "updates", &upserts, &mut commands);
        }
        for mut command in commands {
            if run == 0 {
                command.insert("writeConcern", doc! {"w": "majority", "j": true});
            }
            db.run_command(command).await?;
        }
        let secs = started.elapsed().as_secs_f64();
        runs.push(Throughput {
            items: events.len(),
            secs,
            per_sec: events.len() as f64 / secs,
        });
    }
    db.drop().await?;
    let same_statements = runs.pop().context("no run")?;
    let default = runs.pop().context("no run")?;
    let journaled = runs.pop().context("no run")?;
    Ok(Ceilings {
        journaled,
        default,
        same_statements,
    })
}

/// The raw ceilings: the same documents written straight with the driver.
pub struct Ceilings {
    /// Guarded upserts, every command journaled (`w: majority, j: true`).
    pub journaled: Throughput,
    /// Guarded upserts, the server's default write concern.
    pub default: Throughput,
    /// The worker's own statements (first versions inserted, the rest
    /// guarded upserts), default write concern.
    pub same_statements: Throughput,
}

#[derive(Clone, Debug)]
pub struct ReadCell {
    pub query: &'static str,
    pub store: &'static str,
    pub clients: usize,
    pub summary: Summary,
}

pub const READS: [(&str, &str); 5] = [
    ("leaderboard(WEEK, first: 10)", "query { leaderboard(period: WEEK, first: 10) { edges { node { rank minutes user { name } } } } }"),
    ("myRank(WEEK)", "query { myRank(period: WEEK) { rank minutes } }"),
    ("studyStats", "query { studyStats { totalMinutes sessions bySubject { subject minutes } } }"),
    ("searchUsers", "query { searchUsers(query: \"ann\", first: 20) { edges { node { id name } } } }"),
    ("messages (page of 20)", "query($r: ID!) { messages(roomId: $r, first: 20) { edges { node { id body } } } }"),
];

/// A local port with nothing listening on it.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(9, |a| a.port())
}

/// Environment settings for a server process.
type Settings = Vec<(&'static str, String)>;

/// Chat history is read by a member of the busiest room; everything else
/// by the heaviest studier.
fn reader<'f>(fx: &'f Fixture, query: &str) -> &'f str {
    match fx.room_tokens.first() {
        Some(member) if query.starts_with("messages") => member,
        _ => &fx.reader_token,
    }
}

/// Whether every routed field of `body` was answered by `store`.
fn answered_by(body: &serde_json::Value, store: &str) -> anyhow::Result<()> {
    let entries = body
        .pointer("/extensions/provenance")
        .and_then(|p| p.as_array())
        .context("no extensions.provenance in the response")?;
    for entry in entries {
        let by = entry.get("store").and_then(|s| s.as_str()).unwrap_or("?");
        if by != store {
            bail!("answered by {by}, not {store}: {entry}");
        }
    }
    Ok(())
}

/// (d): the routed reads on a server whose MongoDB reads never time out
/// (so MongoDB answers however slow it is), then on one forced to the
/// CockroachDB fallback (MongoDB at a closed port: the first routed read
/// finds it unreachable and, with a day-long `READ_MODEL_RETRY_AFTER_MS`,
/// every later read goes straight to CockroachDB). Every measured response's
/// `extensions.provenance` is checked: one answered by the other store
/// counts as an error.
pub async fn reads(
    env: &Env,
    fx: &Arc<Fixture>,
    cell: Duration,
    clients: &[usize],
    read_model_ready: bool,
) -> (Vec<ReadCell>, Vec<String>) {
    let mut cells = Vec::new();
    let mut errors = Vec::new();
    let runs: [(&str, &str, Settings); 2] = [
        (
            "MongoDB",
            "mongodb",
            vec![
                ("READ_MODEL_TIMEOUT_MS", "60000".to_owned()),
                ("REQUEST_TIMEOUT_MS", "120000".to_owned()),
            ],
        ),
        (
            "CockroachDB",
            "cockroachdb",
            vec![
                // MongoDB at a port nobody listens on: the first routed read
                // finds it unreachable, and every later one skips it.
                (
                    "MONGODB_URI",
                    format!("mongodb://127.0.0.1:{}", closed_port()),
                ),
                ("READ_MODEL_TIMEOUT_MS", "1".to_owned()),
                ("READ_MODEL_RETRY_AFTER_MS", "86400000".to_owned()),
            ],
        ),
    ];
    for (store, key, vars) in runs {
        if store == "MongoDB" && !read_model_ready {
            errors.push("reads from MongoDB: not measured, the read model was not brought up to date (drain failed)".to_owned());
            continue;
        }
        let server = match Process::serve(env, &vars, &format!("reads-{store}")).await {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("reads ({store}): {e:#}"));
                continue;
            }
        };
        let gql = Gql::new(&server.url);
        for (name, query) in READS {
            let vars = json!({"r": fx.room_id});
            // Warm-up (and, on the fallback run, trips the breaker).
            let mut last = Err(anyhow::anyhow!("no request"));
            for _ in 0..2 {
                last = gql.full(reader(fx, name), query, vars.clone()).await;
            }
            if let Err(e) = last.and_then(|body| answered_by(&body, key)) {
                errors.push(format!("{name} ({store}): {e:#}"));
                continue;
            }
            for &clients in clients {
                let summary = closed_loop(clients, cell, {
                    let (gql, fx) = (gql.clone(), Arc::clone(fx));
                    let vars = vars.clone();
                    move |_, _| {
                        let token = reader(&fx, name).to_owned();
                        let (gql, vars) = (gql.clone(), vars.clone());
                        async move { answered_by(&gql.full(&token, query, vars).await?, key) }
                    }
                })
                .await;
                println!(
                    "  {store:<11} {name:<30} c={clients:<2} p50 {:>8.2} ms  p99 {:>8.2} ms  {:>6.0} req/s  errors {}",
                    summary.p50, summary.p99, summary.rps, summary.errors
                );
                cells.push(ReadCell {
                    query: name,
                    store,
                    clients,
                    summary,
                });
            }
        }
        server.stop().await;
    }
    (cells, errors)
}

/// One read of the overhead phase at one concurrency, with what every part
/// of the system spent on it.
#[derive(Clone, Debug)]
pub struct OverheadCell {
    pub query: &'static str,
    pub clients: usize,
    pub summary: Summary,
    /// CPU seconds each part of the system spent during the cell.
    pub cpu: HashMap<cpu::Part, f64>,
}

impl OverheadCell {
    /// CPU microseconds `part` spent per request answered.
    pub fn cpu_us(&self, part: cpu::Part) -> f64 {
        cpu::per_request_ms(&self.cpu, part, self.summary.n) * 1e3
    }
}

/// The reads whose own cost the overhead phase measures, each sent with the
/// reader's token (so each reads the caller's account once).
pub const OVERHEAD: [(&str, &str); 4] = [
    (
        "__typename (the caller's row is read)",
        "query { __typename }",
    ),
    ("me", "query { me { id name } }"),
    (
        "todos(first: 20) { owner { name } }",
        "query { todos(first: 20) { edges { node { id title owner { name } } } } }",
    ),
    READS[0],
];

/// (e): what the server itself spends on a request: the cheapest query, the
/// cheapest authenticated one, a page with a nested loader and the
/// leaderboard, each at every concurrency in `clients`, with the CPU time
/// each process spent per request (read from /proc around the cell).
pub async fn overhead(
    env: &Env,
    fx: &Arc<Fixture>,
    cell: Duration,
    clients: &[usize],
) -> anyhow::Result<Vec<OverheadCell>> {
    let server = Process::serve(env, &[], "overhead").await?;
    let gql = Gql::new(&server.url);
    let mut out = Vec::new();
    // A full page: the reader gets twenty todos of their own.
    for i in 0..20 {
        gql.run(
            &fx.reader_token,
            "mutation($t: String!) { createTodo(input: {title: $t}) { id } }",
            json!({"t": format!("Page filler {i}")}),
        )
        .await?;
    }
    for (query, text) in OVERHEAD {
        for &c in clients {
            // Warm-up: connections, the admitted-document cache, loaders.
            for _ in 0..c.max(4) {
                gql.run(&fx.reader_token, text, json!({})).await?;
            }
            let before = cpu::snapshot(server.pid());
            let summary = closed_loop(c, cell, {
                let (gql, fx) = (gql.clone(), Arc::clone(fx));
                move |_, _| {
                    let (gql, token) = (gql.clone(), fx.reader_token.clone());
                    async move { gql.run(&token, text, json!({})).await.map(drop) }
                }
            })
            .await;
            let cell = OverheadCell {
                query,
                clients: c,
                summary,
                cpu: cpu::spent(&before, &cpu::snapshot(server.pid())),
            };
            let per_request: Vec<String> = cpu::Part::ALL
                .iter()
                .map(|&part| format!("{} {:.0}", part.label(), cell.cpu_us(part)))
                .collect();
            println!(
                "  {query:<40} c={c:<3} p50 {:>6.2} ms  {:>7.0} req/s  errors {}  CPU µs per request: {}",
                cell.summary.p50,
                cell.summary.rps,
                cell.summary.errors,
                per_request.join(", ")
            );
            out.push(cell);
        }
    }
    server.stop().await;
    Ok(out)
}

/// What the leaderboard costs each store below the server: the stored top
/// fetched with the driver (one lookup by `_id`), the fallback's board query
/// on `study_totals`, and the old design's board (the week's sessions
/// summed per user), each from this process with `clients` concurrent
/// clients. They show where the time of a `leaderboard` request goes.
pub async fn board_floors(
    mongo: &mongodb::Database,
    sql: &studysync::pool::Db,
    cell: Duration,
    clients: usize,
) -> (Vec<ReadCell>, Vec<String>) {
    use studysync::{domain::Period, sync::boards};

    let now = studysync::domain::now();
    let top = boards::key(Period::Week, Period::Week.bucket_start(now));
    let mut cells = Vec::new();
    let mut errors = Vec::new();
    let tops = mongo.collection::<mongodb::bson::Document>(boards::COLLECTION);
    let lookup = closed_loop(clients, cell, {
        let (tops, top) = (tops.clone(), top.clone());
        move |_, _| {
            let (tops, top) = (tops.clone(), top.clone());
            async move {
                tops.find_one(mongodb::bson::doc! {"_id": &top})
                    .await?
                    .context("no stored top for the week")
                    .map(drop)
            }
        }
    })
    .await;
    let queries = board_queries(now);
    let mut runs = vec![(
        "board: the week's stored top, one lookup by _id",
        "MongoDB, driver",
        lookup,
    )];
    for (name, text) in queries {
        runs.push((
            name,
            "CockroachDB, driver",
            sql_loop(sql, text, clients, cell).await,
        ));
    }
    for (query, store, summary) in runs {
        println!(
            "  {store:<20} {query:<70} p50 {:>8.2} ms  p99 {:>8.2} ms  {:>6.0} req/s  errors {}",
            summary.p50, summary.p99, summary.rps, summary.errors
        );
        if summary.errors > 0 {
            errors.push(format!("{query} ({store}): {} errors", summary.errors));
        }
        cells.push(ReadCell {
            query,
            store,
            clients,
            summary,
        });
    }
    (cells, errors)
}

/// The week's board as SQL: the fallback's read of the precomputed totals,
/// and the old design's sum over the week's sessions.
fn board_queries(now: chrono::DateTime<chrono::Utc>) -> [(&'static str, String); 2] {
    use studysync::domain::Period;
    let week = Period::Week.bucket_start(now);
    let (from, to) = Period::Week.range(now);
    [
        (
            "board: first 11 rows of the week's totals (the fallback's query)",
            format!(
                "SELECT user_id, minutes FROM study_totals WHERE period = 'week' AND period_start = '{week}' \
                 ORDER BY minutes DESC, user_id LIMIT 11"
            ),
        ),
        (
            "board: the week's sessions summed per user (the old design's query)",
            format!(
                "SELECT user_id, sum(minutes) AS minutes FROM study_sessions \
                 WHERE started_at >= '{}' AND started_at < '{}' \
                 GROUP BY user_id ORDER BY minutes DESC, user_id LIMIT 11",
                from.to_rfc3339(),
                to.map_or_else(|| "infinity".to_owned(), |t| t.to_rfc3339())
            ),
        ),
    ]
}

/// One SQL query, `clients` at a time, back to back.
async fn sql_loop(
    sql: &studysync::pool::Db,
    text: String,
    clients: usize,
    cell: Duration,
) -> Summary {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    closed_loop(clients, cell, {
        let sql = sql.clone();
        move |_, _| {
            let (sql, text) = (sql.clone(), text.clone());
            async move {
                sql.query_all(Statement::from_string(DbBackend::Postgres, text))
                    .await
                    .map(drop)
                    .map_err(Into::into)
            }
        }
    })
    .await
}

/// The store label of the board queries run at scale.
pub const AT_SCALE: &str = "CockroachDB, driver, at scale";

/// The board's two SQL queries on a scratch database seeded with
/// `sessions` study sessions (and a tenth as many users), through the same
/// seed as the main run, without outbox events (the `floor` write mode's
/// sink drops them: only the rows are needed). MongoDB serves the first page
/// from one stored top whatever the scale, so only the CockroachDB side
/// needs the large data.
/// The scratch database is dropped afterwards.
pub async fn board_at_scale(
    postgres: &str,
    database: &str,
    config: &[&str],
    sessions: usize,
    cell: Duration,
) -> anyhow::Result<(Vec<ReadCell>, studysync::seed::SeedReport)> {
    let admin = format!("{}/postgres", postgres.trim_end_matches('/'));
    db::recreate_postgres(&admin, database).await?;
    let url = format!("{}/{database}", postgres.trim_end_matches('/'));
    let mut args = vec!["--database-url", &url];
    args.extend_from_slice(config);
    let app = studysync::app::AppState::connect_with_sink(
        studysync::config::Config::from_args(args)?,
        std::sync::Arc::new(bench::sinks::Floor),
    )
    .await?;
    migration::runner::up(app.sql())
        .await
        .context("migrating the scale database")?;
    let seed_args = studysync::seed::SeedArgs {
        users: (sessions / 10).max(1),
        sessions,
        todos: 0,
        rooms: 0,
        messages: 0,
        months: 6,
        batch: 500,
        rng_seed: 42,
    };
    let mut shown = 0;
    let seeded = studysync::seed::seed(app.writer(), &seed_args, |r| {
        // One line per 20 s is enough at this size.
        let now = r.elapsed.as_secs() / 20;
        if now > shown {
            shown = now;
            println!("  {}", r.progress());
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("seeding at scale: {}", e.chain()))?;
    // Fresh statistics, as a long-running database would have.
    sea_orm::ConnectionTrait::execute_unprepared(app.sql(), "ANALYZE").await?;
    let mut cells = Vec::new();
    for (query, text) in board_queries(studysync::domain::now()) {
        let summary = sql_loop(app.sql(), text, 1, cell).await;
        println!(
            "  {AT_SCALE:<30} {query:<70} p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}",
            summary.p50, summary.p99, summary.errors
        );
        if summary.errors > 0 {
            bail!("{query} at scale: {} errors", summary.errors);
        }
        cells.push(ReadCell {
            query,
            store: AT_SCALE,
            clients: 1,
            summary,
        });
    }
    app.sql().clone().close().await.ok();
    db::drop_postgres(&admin, database).await?;
    Ok((cells, seeded))
}
