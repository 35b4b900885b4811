//! The results of one run, the targets they are held to, and the Markdown
//! report.
use std::fmt::Write as _;

use mongodb::bson::doc;
use studysync::pool::Db;
use studysync::seed::SeedReport;

use crate::{
    cpu,
    phases::{LagCell, Mode, Mutation, OverheadCell, ReadCell, Throughput, Worker, WriteCell},
    stats::Summary,
    Args,
};

#[derive(Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub postgres: String,
    pub mongo: String,
    pub mongo_kind: String,
}

pub struct Results {
    pub date: String,
    pub args: String,
    pub machine: Machine,
    pub seed: Option<SeedReport>,
    /// The scratch database where the board's SQL is timed at scale.
    pub scale_seed: Option<SeedReport>,
    /// Whether PostgreSQL runs autovacuum (None: unknown).
    pub autovacuum: Option<bool>,
    pub drain: Result<Throughput, String>,
    /// With every command journaled (`w: majority, j: true`).
    pub ceiling: Result<Throughput, String>,
    /// With the server's default write concern.
    pub ceiling_default: Result<Throughput, String>,
    /// The worker's own statements (first versions inserted), default
    /// write concern.
    pub ceiling_same: Result<Throughput, String>,
    pub reads: Vec<ReadCell>,
    pub overhead: Result<Vec<OverheadCell>, String>,
    pub writes: Vec<WriteCell>,
    pub lag: Vec<LagCell>,
    pub rss: Vec<(String, Option<f64>)>,
    /// Hostile documents and login bursts (`--phases hostile`).
    pub hostile: Option<crate::hostile::HostileResults>,
    /// Live subscriptions across instances and at scale (`--phases live`).
    pub live: Option<crate::live::LiveResults>,
    pub notes: Vec<String>,
    pub poll_ms: u64,
    pub ceiling_batch: usize,
    pub started: std::time::Instant,
    pub total_secs: f64,
}

impl Results {
    pub fn new(args: &Args) -> Self {
        Self {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            args: {
                let given: Vec<String> = std::env::args().skip(1).collect();
                if given.is_empty() {
                    "` (default sizes)".to_owned()
                } else {
                    format!(" {}`", given.join(" "))
                }
            },
            machine: Machine::default(),
            seed: None,
            scale_seed: None,
            autovacuum: None,
            drain: Err("not run".into()),
            ceiling: Err("not run".into()),
            ceiling_default: Err("not run".into()),
            ceiling_same: Err("not run".into()),
            reads: Vec::new(),
            overhead: Err("not run".into()),
            writes: Vec::new(),
            lag: Vec::new(),
            rss: Vec::new(),
            hostile: None,
            live: None,
            notes: Vec::new(),
            poll_ms: args.poll_ms,
            ceiling_batch: args.ceiling_batch,
            started: std::time::Instant::now(),
            total_secs: 0.0,
        }
    }

    pub fn finish(&mut self) {
        self.total_secs = self.started.elapsed().as_secs_f64();
    }

    pub fn write(&self, mode: Mode, mutation: Mutation, c: usize) -> Option<&Summary> {
        self.writes
            .iter()
            .find(|w| w.mode == mode && w.mutation == mutation && w.concurrency == c)
            .map(|w| &w.summary)
    }

    fn read(&self, query: &str, store: &str, clients: usize) -> Option<&Summary> {
        self.reads
            .iter()
            .find(|r| r.query.contains(query) && r.store == store && r.clients == clients)
            .map(|r| &r.summary)
    }

    fn lag_at(&self, worker: Worker) -> Option<&LagCell> {
        self.lag
            .iter()
            .filter(|l| l.worker == worker)
            .max_by(|a, b| a.target_rate.total_cmp(&b.target_rate))
    }
}

pub async fn machine(sql: &Db, mongo: &mongodb::Client) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let postgres = crate::db::scalar_string(sql, "SELECT version()")
        .await
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let mongo = match mongo
        .database("admin")
        .run_command(doc! {"buildInfo": 1})
        .await
    {
        Ok(info) => format!(
            "version {} ({})",
            info.get_str("version").unwrap_or("?"),
            info.iter()
                .filter(|(k, _)| !matches!(
                    k.as_str(),
                    "version"
                        | "ok"
                        | "versionArray"
                        | "openssl"
                        | "buildEnvironment"
                        | "storageEngines"
                        | "modules"
                ))
                .map(|(k, v)| format!("{k}: {v}"))
                .take(4)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("unknown ({e})"),
    };
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib,
        kernel,
        postgres,
        mongo,
        mongo_kind: std::env::var("BENCH_MONGO_KIND")
            .unwrap_or_else(|_| "given by MONGODB_URI".to_owned()),
    }
}

/// One target: the measured ratio and whether it is met, or why it could
/// not be computed.
pub struct Target {
    pub name: String,
    pub measured: Result<String, String>,
    pub met: Option<bool>,
}

fn ratio(
    name: &str,
    a: Option<f64>,
    b: Option<f64>,
    limit: f64,
    at_most: bool,
    what: &str,
) -> Target {
    let measured = match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Ok(a / b),
        _ => Err("not available".to_owned()),
    };
    Target {
        name: name.to_owned(),
        met: measured
            .as_ref()
            .ok()
            .map(|&x| if at_most { x <= limit } else { x >= limit }),
        measured: measured.map(|x| {
            if x < 0.01 {
                format!("{x:.4} × {what}")
            } else {
                format!("{x:.2} × {what}")
            }
        }),
    }
}

fn absolute(name: String, value: Option<(f64, String)>, limit: f64) -> Target {
    Target {
        name,
        met: value.as_ref().map(|(v, _)| *v <= limit),
        measured: value
            .map(|(_, text)| text)
            .ok_or_else(|| "not available".to_owned()),
    }
}

pub fn targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let p50 = |mode: Mode, m: Mutation| r.write(mode, m, 8).map(|s| s.p50);
    for m in Mutation::ALL {
        out.push(ratio(
            &format!("{m}: outbox p50 ≤ 1.25 × floor (c=8)"),
            p50(Mode::Outbox, m),
            p50(Mode::Floor, m),
            1.25,
            true,
            "floor",
        ));
        out.push(ratio(
            &format!("{m}: outbox p50 ≤ 0.5 × dual write (c=8)"),
            p50(Mode::Outbox, m),
            p50(Mode::DualWrite, m),
            0.5,
            true,
            "dual write",
        ));
        out.push(ratio(
            &format!("{m}: outbox p50 ≤ 1.25 × floor (c=8), worker paused (write path alone)"),
            p50(Mode::OutboxPaused, m),
            p50(Mode::Floor, m),
            1.25,
            true,
            "floor",
        ));
    }
    // The raw-SQL floor: what one createTodo commits, with no server.
    for c in [1, 8] {
        let cell = |mode: Mode| r.write(mode, Mutation::CreateTodo, c);
        out.push(ratio(
            &format!("createTodo: outbox p50 ≤ outbox without the wake gap (c={c})"),
            cell(Mode::Outbox).map(|s| s.p50),
            cell(Mode::OutboxEager).map(|s| s.p50),
            1.0,
            true,
            "no wake gap",
        ));
        out.push(ratio(
            &format!("createTodo: outbox p50 ≤ 1.6 × raw SQL floor (c={c})"),
            cell(Mode::Outbox).map(|s| s.p50),
            cell(Mode::RawSql).map(|s| s.p50),
            1.6,
            true,
            "raw SQL floor",
        ));
        out.push(ratio(
            &format!("createTodo: outbox throughput ≥ 0.6 × raw SQL floor (c={c})"),
            cell(Mode::Outbox).map(|s| s.rps),
            cell(Mode::RawSql).map(|s| s.rps),
            0.6,
            false,
            "raw SQL floor",
        ));
    }
    let lag = |l: &LagCell| {
        (
            l.lag.p99,
            format!("{:.1} ms (achieved {:.0}/s)", l.lag.p99, l.achieved_rate),
        )
    };
    let inproc = r.lag_at(Worker::InProcess);
    out.push(absolute(
        format!(
            "lag p99 ≤ 100 ms, in-process worker, {:.0} mutations/s",
            inproc.map_or(500.0, |l| l.target_rate)
        ),
        inproc.map(lag),
        100.0,
    ));
    let bound = r.poll_ms as f64 + 100.0;
    out.push(absolute(
        format!("lag p99 ≤ poll interval + 100 ms = {bound:.0} ms, separate worker"),
        r.lag_at(Worker::Separate).map(lag),
        bound,
    ));
    let drain = r.drain.as_ref().ok().map(|t| t.per_sec);
    let ceiling = r.ceiling.as_ref().ok().map(|t| t.per_sec);
    out.push(ratio(
        "drain ≥ 0.8 × raw bulk-upsert ceiling (every command journaled: w majority, j true)",
        drain,
        ceiling,
        0.8,
        false,
        "ceiling",
    ));
    out.push(ratio(
        "drain ≥ 0.8 × raw bulk-upsert ceiling (default write concern; the worker adds one journaled barrier per batch)",
        drain,
        r.ceiling_default.as_ref().ok().map(|t| t.per_sec),
        0.8,
        false,
        "ceiling",
    ));
    out.push(ratio(
        "drain ≥ 0.8 × raw ceiling written with the worker's own statements (first versions inserted, the rest guarded upserts; default write concern)",
        drain,
        r.ceiling_same.as_ref().ok().map(|t| t.per_sec),
        0.8,
        false,
        "ceiling",
    ));
    let lb = "leaderboard(WEEK, first: 10)";
    for clients in [1, 4] {
        let mongo_p50 = r.read(lb, "MongoDB", clients).map(|s| s.p50);
        let crdb_p50 = r.read(lb, "CockroachDB", clients).map(|s| s.p50);
        out.push(absolute(
            format!(
                "leaderboard(WEEK, first: 10) p50 ≤ 5 ms from MongoDB ({clients} client{})",
                plural(clients)
            ),
            mongo_p50.map(|p| (p, format!("{p:.2} ms"))),
            5.0,
        ));
        out.push(ratio(
            &format!("leaderboard: MongoDB ≥ 10 × faster than the CockroachDB path (CockroachDB p50 / MongoDB p50 ≥ 10; {clients} client{})", plural(clients)),
            crdb_p50,
            mongo_p50,
            10.0,
            false,
            "MongoDB",
        ));
    }
    if let Some(scale) = &r.scale_seed {
        out.push(ratio(
            &format!("leaderboard at {} sessions: MongoDB ≥ 10 × faster than the old design's CockroachDB path (its query alone / our whole MongoDB request, p50; 1 client)", thousands(scale.sessions)),
            r.read("old design", crate::phases::AT_SCALE, 1).map(|s| s.p50),
            r.read(lb, "MongoDB", 1).map(|s| s.p50),
            10.0,
            false,
            "MongoDB",
        ));
    }
    if let Some(h) = &r.hostile {
        out.extend(crate::hostile_report::targets(h));
    }
    if let Some(l) = &r.live {
        out.extend(crate::live_report::targets(l));
    }
    out
}

/// 1000000 → "1,000,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Where a leaderboard request's time goes, from this run's figures.
/// CPU per request of one write cell, in ms: the whole machine's and the
/// MongoDB server's.
fn cpu_per_request(r: &Results, mode: Mode, mutation: Mutation, c: usize) -> Option<(f64, f64)> {
    let w = r
        .writes
        .iter()
        .find(|w| w.mode == mode && w.mutation == mutation && w.concurrency == c)?;
    let total = w.cpu_ms_total();
    (total > 0.0).then_some((total, w.cpu_ms(cpu::Part::Mongo)))
}

/// Why the outbox costs what it costs at 8 clients, from the CPU figures.
fn writes_note(r: &Results) -> Option<String> {
    let mut lines = Vec::new();
    for m in Mutation::ALL {
        let p50 = |mode: Mode| r.write(mode, m, 8).map(|s| s.p50);
        let (Some((floor, _)), Some((alone, _)), Some((outbox, mongo))) = (
            cpu_per_request(r, Mode::Floor, m, 8),
            cpu_per_request(r, Mode::OutboxPaused, m, 8),
            cpu_per_request(r, Mode::Outbox, m, 8),
        ) else {
            continue;
        };
        let (Some(lat_floor), Some(lat_alone), Some(lat_outbox)) =
            (p50(Mode::Floor), p50(Mode::OutboxPaused), p50(Mode::Outbox))
        else {
            continue;
        };
        lines.push(format!(
            "- `{m}`: the floor spends {floor:.3} ms of CPU per request. The write path alone spends {alone:.3} ms ({:.2} × the floor's CPU; its p50 is {:.2} ×). With the worker running, {outbox:.3} ms ({:.2} ×; p50 {:.2} ×), of which {mongo:.3} ms is the MongoDB server applying the event; without that share, {:.2} ×. Were the worker free in PostgreSQL and in the server, the write path alone plus that share would still be {:.2} × the floor's CPU.",
            alone / floor,
            lat_alone / lat_floor,
            outbox / floor,
            lat_outbox / lat_floor,
            (outbox - mongo) / floor,
            (alone + mongo) / floor,
        ));
    }
    let mut gap = Vec::new();
    for c in [1, 8] {
        let m = Mutation::CreateTodo;
        if let (Some((with, _)), Some((without, _))) = (
            cpu_per_request(r, Mode::Outbox, m, c),
            cpu_per_request(r, Mode::OutboxEager, m, c),
        ) {
            gap.push(format!(
                "- `{m}` at {c} client(s): {with:.3} ms of CPU per request with the wake gap, {without:.3} ms without it ({:.2} ×).",
                with / without
            ));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let gap = if gap.is_empty() {
        String::new()
    } else {
        let ms = std::env::var("SYNC_WAKE_GAP_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(studysync::config::sync::DEFAULT_WAKE_GAP_MS);
        format!(
            "\n\n**The wake gap** (`SYNC_WAKE_GAP_MS`, every process's CPU counted): commits within {ms} ms of the last claim that found events share the next batch.\n\n{}",
            gap.join("\n")
        )
    };
    Some(format!(
        "**Writes at 8 clients.** Both cores are busy, so each mode's latency ratio follows its CPU ratio, whichever process spends the CPU:\n\n{}\n\nThe write path's own cost is its outbox rows (one per changed aggregate; `logStudySession` writes five), sent in the same statement as the new row: PostgreSQL's work on each (a JSONB payload and three index entries: the key and the two pending-only indexes) and the server's on building them. The worker's cost lands on the same two cores here, the stand-in MongoDB server's work on each event above all; in production the read model has a machine of its own.{gap}",
        lines.join("\n")
    ))
}

fn leaderboard_note(r: &Results) -> Option<String> {
    let lb = "leaderboard(WEEK, first: 10)";
    let part = |c: usize| -> Option<(f64, f64, f64, f64, f64)> {
        Some((
            r.read(lb, "MongoDB", c)?.p50,
            r.read(lb, "CockroachDB", c)?.p50,
            r.read("stored top", "MongoDB, driver", c)?.p50,
            r.read("fallback's query", "CockroachDB, driver", c)?.p50,
            r.read("old design", "CockroachDB, driver", c)?.p50,
        ))
    };
    let (mongo, crdb, lookup, board, old) = part(1)?;
    let (mongo4, _, lookup4, _, old4) = part(4)?;
    let scale = match (
        &r.scale_seed,
        r.read("fallback's query", crate::phases::AT_SCALE, 1),
        r.read("old design", crate::phases::AT_SCALE, 1),
    ) {
        (Some(seed), Some(board), Some(old)) => format!(
            " At {} sessions ({} users, a scratch database seeded the same way), the fallback's query still takes {:.2} ms, while the old design's sum takes {:.2} ms: {:.0} × our whole MongoDB request. The MongoDB side reads one stored document of {} entries whatever the number of sessions.",
            thousands(seed.sessions),
            thousands(seed.users),
            board.p50,
            old.p50,
            old.p50 / mongo,
            studysync::sync::boards::TOP,
        ),
        _ => String::new(),
    };
    Some(format!(
        "**Leaderboard.** From MongoDB, `leaderboard(WEEK, first: 10)` is one lookup of the week's stored top by `_id`, plus the users' names from CockroachDB. With one client it answers in {mongo:.2} ms at p50; the lookup alone costs {lookup:.2} ms on this MongoDB server, and the rest of the request (authentication, GraphQL, names) is what the CockroachDB request costs beyond its own query ({crdb:.2} − {board:.2} ms). With 4 clients the server answers lookups one at a time: {lookup4:.2} ms alone, {mongo4:.2} ms as a request. The CockroachDB fallback does not sum sessions either: it reads the first rows of the precomputed `study_totals` through an index, so the two paths differ by one indexed read on each server, and a 10 × ratio would need the MongoDB request to beat that query by more than the whole request costs. The old design's board, which sums the week's sessions per user, takes {old:.2} ms in CockroachDB alone (with 4 clients {old4:.2} ms): that query alone takes {:.1} × as long as our whole MongoDB request with one client, {:.1} × with 4.",
        old / mongo,
        old4 / mongo4,
    ) + &scale)
}

pub fn verdict(t: &Target) -> &'static str {
    match t.met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not available",
    }
}

pub fn targets_text(r: &Results) -> String {
    let mut s = String::from("Targets:\n");
    for t in targets(r) {
        let m = t.measured.clone().unwrap_or_else(|e| e);
        let _ = writeln!(s, "  [{:^13}] {} — {}", verdict(&t), t.name, m);
    }
    s
}

fn ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "–".into()
    }
}

/// The machine the figures were taken on.
pub fn machine_table(m: &Machine) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Machine\n\n| | |\n|---|---|");
    let _ = writeln!(
        s,
        "| CPU | {} |\n| Cores | {} |\n| Memory | {:.1} GiB |\n| Kernel | {} |",
        m.cpu, m.cores, m.memory_gib, m.kernel
    );
    let _ = writeln!(
        s,
        "| SQL (CockroachDB stand-in) | {} |\n| MongoDB server | {} ({}) |\n",
        m.postgres, m.mongo, m.mongo_kind
    );
    let _ = writeln!(
        s,
        "Server, worker, both databases and the load generator share these cores.\n"
    );
    s
}

pub fn render(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# studysync benchmark report\n");
    let _ = writeln!(
        s,
        "Generated by `scripts/bench.sh{} on {}; the whole run took {:.0} s.\n",
        r.args, r.date, r.total_secs
    );
    s.push_str(&machine_table(&r.machine));
    if r.autovacuum == Some(false) {
        let _ = writeln!(
            s,
            "This PostgreSQL server runs with autovacuum off, which no production server does. Between measurements (after the drain, after every write slice, before every lag cell) the benchmark vacuums each table that autovacuum's default trigger would pick (more dead rows than 50 + 20 % of the live ones): {} times in this run. Without it every claim reads past all the dead index entries left since the start: 3.3 ms to find 100 due events instead of 0.13 ms, measured after a run like this one. The PostgreSQL CPU of the vacuums that follow write slices is charged to the `outbox` mode (the mode with the worker).\n",
            crate::db::VACUUMS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    s.push_str(&targets_table(&targets(r)));
    if let Some(seed) = &r.seed {
        let _ = writeln!(s, "\n## Data\n\n`studysync seed` (bulk, outbox events in the same transactions) wrote {} users, {} todos, {} study sessions, {} study totals, {} rooms ({} memberships) and {} messages — {} outbox events — in {:.1} s.\n",
            seed.users, seed.todos, seed.sessions, seed.totals, seed.rooms, seed.memberships, seed.messages, seed.events, seed.elapsed.as_secs_f64());
    }
    if let Some(seed) = &r.scale_seed {
        let _ = writeln!(s, "For the board's SQL at scale, the same seed wrote {} users, {} study sessions and {} study totals into a scratch database in {:.1} s, without outbox events; it is dropped after its queries are timed.\n",
            thousands(seed.users), thousands(seed.sessions), thousands(seed.totals), seed.elapsed.as_secs_f64());
    }
    let _ = writeln!(s, "## Mutation latency (ms) and throughput\n\nClosed loop: each client sends its next request when the previous one is answered. ![latency](latency.svg)\n");
    let _ = writeln!(s, "| Mutation | Clients | Mode | p50 | p95 | p99 | req/s | errors |\n|---|---|---|---|---|---|---|---|");
    for w in &r.writes {
        let x = &w.summary;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            w.mutation,
            w.concurrency,
            w.mode.label(),
            ms(x.p50),
            ms(x.p95),
            ms(x.p99),
            x.rps,
            x.errors
        );
    }
    let _ = writeln!(s, "\n### CPU per request\n\nWhat each part of the system spent on the CPU during a cell's slices (user + system time from /proc), divided by the requests answered, in ms. With both cores busy, latency follows the whole machine's CPU per request, whichever process spends it. The server row includes its in-process worker; the MongoDB server row is the stand-in's own work applying the events.\n");
    let _ = writeln!(s, "| Mutation | Clients | Mode | server | PostgreSQL | MongoDB server | load generator | total |\n|---|---|---|---|---|---|---|---|");
    for w in &r.writes {
        let per = |part: cpu::Part| w.cpu_ms(part);
        let total = w.cpu_ms_total();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            w.mutation,
            w.concurrency,
            w.mode.label(),
            per(cpu::Part::Server),
            per(cpu::Part::Sql),
            per(cpu::Part::Mongo),
            per(cpu::Part::Load),
            total
        );
    }
    if let Some(note) = writes_note(r) {
        let _ = writeln!(s, "\n{note}");
    }
    let _ = writeln!(s, "\n## Sync lag\n\nCommit → applied in MongoDB, from the worker's own timestamps (`outbox.processed_at − outbox.created_at`, one database clock; `created_at` is the writing transaction's start, so the figure includes the commit). Steady `createTodo` traffic, open loop. Worker poll interval {} ms (local commits wake the in-process worker at once). ![lag](lag.svg)\n", r.poll_ms);
    let _ = writeln!(s, "| Worker | Target rate | Achieved | events applied | lag p50 | p95 | p99 | max | not applied | mutation p50 |\n|---|---|---|---|---|---|---|---|---|---|");
    for l in &r.lag {
        let _ = writeln!(
            s,
            "| {} | {:.0}/s | {:.0}/s | {} | {} | {} | {} | {} | {} | {} |",
            l.worker,
            l.target_rate,
            l.achieved_rate,
            l.lag.n,
            ms(l.lag.p50),
            ms(l.lag.p95),
            ms(l.lag.p99),
            ms(l.lag.max),
            l.unapplied,
            ms(l.mutation.p50)
        );
    }
    let _ = writeln!(s, "\n## Drain\n\nThe seeded backlog (every seeded row's event, written while no worker ran) drained by one `worker` process with the default settings (claims of `SYNC_BATCH_SIZE` 100 events, doubling while they come back full up to `SYNC_BATCH_MAX` 800; the leaderboard tops of the current buckets recomputed for every batch that touches them), timed from its start until no event is pending. The worker creates the read model's indexes as it starts, so it maintains them through the drain. The worker inserts first versions (a duplicate key means a version at least as new is stored) and upserts the rest under the version guard. The ceilings write the documents of a uniform sample of the same events (the first by their random ids, so the mix of collections is the drain's; projected beforehand, so only the database work is timed) straight with the driver, {} statements per unordered command, one collection at a time, sequentially, into a scratch database on the same server that has the same indexes: as version-guarded upserts (the issue's definition), and with the worker's own statements.\n\n![drain](drain.svg)\n\n| | Items | Seconds | per second |\n|---|---|---|---|", r.ceiling_batch);
    for (name, t) in [
        (
            "worker drains the seeded backlog (separate process)",
            &r.drain,
        ),
        (
            "raw ceiling: driver bulk upserts, same server, every command journaled (w majority, j true)",
            &r.ceiling,
        ),
        (
            "raw ceiling: driver bulk upserts, same server, default write concern",
            &r.ceiling_default,
        ),
        (
            "raw ceiling: the worker's own statements (first versions inserted, the rest guarded upserts), same server, default write concern",
            &r.ceiling_same,
        ),
    ] {
        match t {
            Ok(t) => {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {:.1} | {:.0} |",
                    t.items, t.secs, t.per_sec
                );
            }
            Err(e) => {
                let _ = writeln!(s, "| {name} | not available: {e} | | |");
            }
        }
    }
    let _ = writeln!(s, "\n## Reads at seeded scale\n\n1 and 4 concurrent clients per query, as the reader with the most study minutes. MongoDB rows: a server with `READ_MODEL_TIMEOUT_MS=60000`, so MongoDB answers however long it takes. CockroachDB rows: a server whose `MONGODB_URI` names a port nobody listens on, with `READ_MODEL_RETRY_AFTER_MS=86400000` — the first routed read finds MongoDB unreachable and every later routed field goes straight to the CockroachDB fallback. Every measured response's `extensions.provenance` is checked; one answered by the other store counts as an error.\n");
    let _ = writeln!(
        s,
        "| Query | Store | Clients | p50 | p99 | req/s | errors |\n|---|---|---|---|---|---|---|"
    );
    for c in &r.reads {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.0} | {} |",
            c.query,
            c.store,
            c.clients,
            ms(c.summary.p50),
            ms(c.summary.p99),
            c.summary.rps,
            c.summary.errors
        );
    }
    let _ = writeln!(s, "\nThe `driver` rows run the store's part of a leaderboard alone, from the benchmark process, with the same clients: what a request cannot go below on that store.");
    if let Some(text) = leaderboard_note(r) {
        let _ = writeln!(s, "\n{text}");
    }
    let _ = writeln!(
        s,
        "\n## GraphQL overhead\n\nOne server, one client or eight, closed loop. CPU is what each process spent during the cell (from /proc, in ticks of 10 ms), divided by the requests answered; the server's figure includes its in-process worker, idle here.\n\n| Query | Clients | p50 (ms) | p99 (ms) | req/s | CPU µs per request: server | PostgreSQL | MongoDB server | load generator |\n|---|---|---|---|---|---|---|---|---|"
    );
    match &r.overhead {
        Ok(rows) => {
            for x in rows {
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    x.query,
                    x.clients,
                    ms(x.summary.p50),
                    ms(x.summary.p99),
                    x.summary.rps,
                    x.cpu_us(cpu::Part::Server),
                    x.cpu_us(cpu::Part::Sql),
                    x.cpu_us(cpu::Part::Mongo),
                    x.cpu_us(cpu::Part::Load),
                );
            }
        }
        Err(e) => {
            let _ = writeln!(s, "| not available: {e} | | | | | | | | |");
        }
    }
    let _ = writeln!(s, "\n## Memory\n\nPeak resident set size (VmHWM) of each process over its life.\n\n| Process | Peak RSS (MiB) |\n|---|---|");
    for (name, rss) in &r.rss {
        let _ = writeln!(
            s,
            "| {name} | {} |",
            rss.map_or("not available".into(), |m| format!("{m:.1}"))
        );
    }
    if let Some(h) = &r.hostile {
        let _ = writeln!(s);
        s.push_str(&crate::hostile_report::section(h));
    }
    if let Some(l) = &r.live {
        let _ = writeln!(s);
        s.push_str(&crate::live_report::section(l));
    }
    problems(&mut s, &r.notes);
    s
}

/// Environment settings as the reports list them: `` `K=V` ``, comma-separated.
pub fn env_list(vars: &[(&'static str, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `## Targets` table.
fn targets_table(targets: &[Target]) -> String {
    let mut s = String::from("## Targets\n\n| Target | Measured | Verdict |\n|---|---|---|\n");
    for t in targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            t.name,
            t.measured.as_ref().unwrap_or_else(|e| e),
            verdict(t)
        );
    }
    s
}

fn problems(s: &mut String, notes: &[String]) {
    if !notes.is_empty() {
        let _ = writeln!(s, "\n## Problems during the run\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
}

/// A phase's own report (`HOSTILE.md`, `LIVE.md`): its targets and section,
/// with the run's machine and problems, so a run of that phase alone need
/// not rewrite `REPORT.md`.
pub fn standalone(r: &Results, title: &str, targets: &[Target], section: &str) -> String {
    let mut s = format!("# studysync benchmark: {title}\n\n");
    let _ = writeln!(
        s,
        "Generated by `scripts/bench.sh{} on {}. The rest of the benchmark is in [REPORT.md](REPORT.md).\n",
        r.args, r.date
    );
    s.push_str(&machine_table(&r.machine));
    s.push_str(&targets_table(targets));
    s.push('\n');
    s.push_str(section);
    problems(&mut s, &r.notes);
    s
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(106_004), "106,004");
    }
}
