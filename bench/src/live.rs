//! Live subscriptions: how long a message takes from its commit on one
//! instance to a subscriber on another (and on the same one), what a
//! `sendMessage` costs the server while thousands of subscriptions listen
//! to other rooms, and what an open subscription costs in memory.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use studysync::app::AppState;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{
    client::Gql,
    cpu, db,
    load::open_loop,
    server::{Env, Process},
    stats::{summarize, summarize_ms, Summary},
    ws::{Receipt, Socket, Tally},
    Fixture,
};

/// Commit (the mutation's answer) to receipt on another instance, p99 (ms).
pub const CROSS_P99_TARGET_MS: f64 = 50.0;
/// "Flat": CPU per send with the subscriptions to other rooms open, at most
/// this many times the CPU per send without them.
pub const FLAT_CPU_TARGET: f64 = 1.10;

const SEND: &str = "mutation($r: ID!, $b: String!) { sendMessage(roomId: $r, body: $b) { id } }";
const JOIN: &str = "mutation($r: ID!) { joinRoom(roomId: $r) { id } }";
/// Messages sent before a measurement, which every subscriber must receive.
pub const WARM_UP: usize = 5;
/// How long a membership re-read may be put off on the server of the CPU
/// and memory figures (`WS_RECHECK_MS`): the figures are of delivery, not
/// of the periodic re-read of each subscriber's rights, which a message
/// starts for every subscription whose interval has passed.
pub const FANOUT_RECHECK_MS: u64 = 3_600_000;
/// How long the server's idle CPU is read before each CPU measurement.
pub const IDLE: Duration = Duration::from_secs(3);

/// What the phase sends, and how much (`--live-*`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Messages per second through instance A in the delivery measurement.
    pub rate: f64,
    pub secs: f64,
    /// Subscribers on each instance.
    pub subscribers: usize,
    /// Messages sent per CPU measurement without same-room listeners.
    pub sends: usize,
    pub send_rate: f64,
    /// Subscriptions opened for the CPU and memory measurements.
    pub subscriptions: usize,
    /// Messages sent with every subscription in the sender's room (0 skips).
    pub same_room_sends: usize,
}

/// Where a subscriber listens, relative to the instance the sender posts
/// through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// On instance B: the message comes through A's worker, MongoDB and B's
    /// change stream on `messages`.
    CrossInstance,
    /// On instance A itself: handed over right after the commit.
    SameInstance,
}

impl Path {
    pub const ALL: [Path; 2] = [Path::CrossInstance, Path::SameInstance];

    pub fn label(self) -> &'static str {
        match self {
            Path::CrossInstance => "other instance (B)",
            Path::SameInstance => "same instance (A)",
        }
    }
}

/// The delivery figures of one path.
pub struct Delivery {
    pub path: Path,
    pub subscribers: usize,
    /// Messages answered × subscribers on this path.
    pub expected: usize,
    pub received: usize,
    /// From just before the mutation was sent to receipt.
    pub from_send: Summary,
    /// From the mutation's HTTP answer (the commit) to receipt; negative
    /// when the message arrived before the answer did.
    pub from_answer: Summary,
}

pub struct DeliveryRun {
    pub sent: usize,
    pub failed: usize,
    pub achieved_rate: f64,
    /// The sendMessage requests themselves.
    pub mutation: Summary,
    pub paths: Vec<Delivery>,
}

/// Which subscriptions are open while sendMessage's CPU is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listeners {
    None,
    /// None again, after the subscriptions to other rooms were completed;
    /// their connections stay open.
    Closed,
    /// Every subscription is to a room other than the sender's.
    OtherRooms,
    /// Every subscription is to the sender's room (a reference: each
    /// message is delivered to all of them).
    SameRoom,
}

impl Listeners {
    pub fn label(self) -> &'static str {
        match self {
            Listeners::None => "no subscriptions",
            Listeners::Closed => "none again, after completing them",
            Listeners::OtherRooms => "subscriptions to other rooms",
            Listeners::SameRoom => "subscriptions to the sender's room",
        }
    }
}

pub struct CpuCell {
    pub listeners: Listeners,
    pub subscriptions: usize,
    pub connections: usize,
    /// Distinct rooms the subscriptions listen to.
    pub rooms: usize,
    pub sends: Summary,
    /// Server CPU (user + system) from the first send until the worker had
    /// applied the last one (s).
    pub cpu_secs: f64,
    pub wall_secs: f64,
    /// The server's CPU while nothing was sent, just before (ms per s).
    pub idle_cpu_ms_per_sec: f64,
    /// Messages the subscribers received during the sends.
    pub deliveries: usize,
}

impl CpuCell {
    pub fn cpu_ms_per_send(&self) -> f64 {
        self.cpu_secs * 1e3 / self.sends.n.max(1) as f64
    }

    /// Less what the server would have spent idle over the same time.
    pub fn net_cpu_ms_per_send(&self) -> f64 {
        (self.cpu_secs * 1e3 - self.idle_cpu_ms_per_sec * self.wall_secs).max(0.0)
            / self.sends.n.max(1) as f64
    }
}

/// Server RSS (VmRSS, MiB) as the connections and subscriptions open.
#[derive(Default)]
pub struct Memory {
    pub idle_mib: Option<f64>,
    pub connections: usize,
    /// With the connections identified, before any subscription.
    pub connected_mib: Option<f64>,
    pub subscriptions: usize,
    pub subscribed_mib: Option<f64>,
    /// With `same_room_subscriptions`, all to the sender's room, on the
    /// connections of its members.
    pub same_room_mib: Option<f64>,
    pub same_room_subscriptions: usize,
}

fn kib_each(from: Option<f64>, to: Option<f64>, n: usize) -> Option<f64> {
    (n > 0).then_some((to? - from?) * 1024.0 / n as f64)
}

impl Memory {
    pub fn per_connection_kib(&self) -> Option<f64> {
        kib_each(self.idle_mib, self.connected_mib, self.connections)
    }

    /// The subscription alone, its connection's share left out.
    pub fn per_subscription_kib(&self) -> Option<f64> {
        kib_each(self.connected_mib, self.subscribed_mib, self.subscriptions)
    }

    /// The subscription with its share of the connections.
    pub fn per_subscription_all_in_kib(&self) -> Option<f64> {
        kib_each(self.idle_mib, self.subscribed_mib, self.subscriptions)
    }
}

/// The server's per-account websocket caps the subscriptions are planned
/// within (its defaults unless the environment sets them).
#[derive(Clone, Debug)]
pub struct Caps {
    pub per_connection: usize,
    pub per_user: usize,
    pub connections_per_user: usize,
    pub recheck_ms: u64,
}

pub struct LiveResults {
    pub settings: Settings,
    pub caps: Caps,
    /// The settings every server of this phase ran with beyond defaults.
    pub server_vars: Vec<(&'static str, String)>,
    pub delivery: Result<DeliveryRun, String>,
    pub cpu: Vec<CpuCell>,
    pub memory: Memory,
    /// Accounts that hold the subscriptions.
    pub accounts: usize,
}

/// One connection of the plan: its account and one room per subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub user: Uuid,
    pub rooms: Vec<Uuid>,
}

/// Spreads `subscriptions` over as few connections as the caps allow:
/// accounts with the most rooms first, each holding as many operations as
/// it may, on as many connections as that takes, each subscription to one
/// of its rooms in turn. `memberships` are (user, room) pairs of rooms it
/// may subscribe to. Fewer than asked when the accounts run out.
pub fn plan(memberships: &[(Uuid, Uuid)], subscriptions: usize, caps: &Caps) -> Vec<Planned> {
    let mut rooms: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for (user, room) in memberships {
        rooms.entry(*user).or_default().push(*room);
    }
    let mut users: Vec<(Uuid, Vec<Uuid>)> = rooms.into_iter().collect();
    users.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let per_connection = caps.per_connection.max(1);
    let per_user = caps
        .per_user
        .min(per_connection * caps.connections_per_user.max(1));
    let mut left = subscriptions;
    let mut out = Vec::new();
    for (user, rooms) in users {
        let mut budget = per_user;
        let mut next = 0;
        while left > 0 && budget > 0 {
            let n = per_connection.min(budget).min(left);
            let picked = (0..n).map(|i| rooms[(next + i) % rooms.len()]).collect();
            next += n;
            out.push(Planned {
                user,
                rooms: picked,
            });
            budget -= n;
            left -= n;
        }
        if left == 0 {
            break;
        }
    }
    out
}

/// One send of the delivery measurement.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub before: Instant,
    pub answered: Instant,
}

/// Milliseconds from `earlier` to `later`; negative when `later` is earlier.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(earlier - later).as_secs_f64() * 1e3,
    }
}

/// The body of measured message `i`, and back.
fn body(i: usize) -> String {
    format!("live {i}")
}

fn numbered(body: &str) -> Option<usize> {
    body.strip_prefix("live ")?.parse().ok()
}

/// Matches receipts to sends, per path: `paths[conn]` is where connection
/// `conn` listens; `sent[i]` is message `i` (None if its mutation failed).
pub fn deliveries(
    sent: &[Option<Sent>],
    receipts: &[Receipt],
    paths: &[Path],
    wall: Duration,
) -> Vec<Delivery> {
    let answered = sent.iter().flatten().count();
    Path::ALL
        .iter()
        .map(|&path| {
            let (mut from_send, mut from_answer) = (Vec::new(), Vec::new());
            for r in receipts {
                if paths.get(r.conn) != Some(&path) {
                    continue;
                }
                let Some(Some(s)) = numbered(&r.body).and_then(|i| sent.get(i)) else {
                    continue;
                };
                from_send.push(signed_ms(r.at, s.before));
                from_answer.push(signed_ms(r.at, s.answered));
            }
            let subscribers = paths.iter().filter(|p| **p == path).count();
            Delivery {
                path,
                subscribers,
                expected: answered * subscribers,
                received: from_send.len(),
                from_send: summarize_ms(&mut from_send, 0, wall),
                from_answer: summarize_ms(&mut from_answer, 0, wall),
            }
        })
        .collect()
}

/// Beyond the defaults, for every server of this phase: the bench is one
/// client address sending from few accounts, so the per-address connection
/// cap and the per-account mutation rate are raised past what it needs.
fn server_vars(connections: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "MAX_CONNECTIONS_PER_ADDRESS",
            (2 * connections + 256).to_string(),
        ),
        ("MUTATION_BURST", "100000".to_owned()),
        ("MUTATION_RATE_PER_SECOND", "100000".to_owned()),
    ]
}

/// Runs the three measurements; a failed one is an error line.
pub async fn live(
    env: &Env,
    fx: &Arc<Fixture>,
    app: &AppState,
    settings: &Settings,
) -> (LiveResults, Vec<String>) {
    let ws = &app.config().websocket;
    let caps = Caps {
        per_connection: ws.max_operations_per_connection,
        per_user: ws.max_operations_per_user,
        connections_per_user: ws.max_connections_per_user,
        recheck_ms: ws.recheck_ms,
    };
    let mut errors = Vec::new();
    let delivery = delivery(env, fx, settings)
        .await
        .map_err(|e| format!("{e:#}"));
    if let Err(e) = &delivery {
        errors.push(format!("live delivery: {e}"));
    }
    let mut results = LiveResults {
        settings: settings.clone(),
        server_vars: server_vars(settings.subscriptions.div_ceil(caps.per_connection.max(1))),
        caps,
        delivery,
        cpu: Vec::new(),
        memory: Memory::default(),
        accounts: 0,
    };
    if let Err(e) = fanout(env, fx, app, &mut results, &mut errors).await {
        errors.push(format!("live subscriptions at scale: {e:#}"));
    }
    (results, errors)
}

async fn send(gql: &Gql, token: &str, room: &str, body: &str) -> anyhow::Result<()> {
    gql.run(token, SEND, json!({"r": room, "b": body}))
        .await
        .map(drop)
}

/// Two instances on the same databases, each with its in-process worker;
/// subscribers on both, messages sent through A.
async fn delivery(env: &Env, fx: &Arc<Fixture>, s: &Settings) -> anyhow::Result<DeliveryRun> {
    let vars = server_vars(0);
    let a = Process::serve(env, &vars, "live-a").await?;
    let b = match Process::serve(env, &vars, "live-b").await {
        Ok(b) => b,
        Err(e) => {
            a.stop().await;
            return Err(e);
        }
    };
    let run = deliver(&a, &b, fx, s).await;
    a.stop().await;
    b.stop().await;
    run
}

async fn deliver(
    a: &Process,
    b: &Process,
    fx: &Arc<Fixture>,
    s: &Settings,
) -> anyhow::Result<DeliveryRun> {
    let sender = fx
        .room_tokens
        .first()
        .context("the busiest room has no members")?;
    // The other members listen (the sender too, when it is alone).
    let listeners: Vec<&String> = fx
        .room_tokens
        .iter()
        .skip(1)
        .chain(fx.room_tokens.first())
        .cycle()
        .take(s.subscribers.max(1))
        .collect();
    let tally = Arc::new(Tally::default());
    let (receipts_tx, mut receipts) = mpsc::unbounded_channel();
    let (mut sockets, mut paths) = (Vec::new(), Vec::new());
    for (path, server) in [(Path::CrossInstance, b), (Path::SameInstance, a)] {
        for token in &listeners {
            let conn = sockets.len();
            let socket = Socket::connect(
                &server.url,
                token,
                conn,
                Arc::clone(&tally),
                Some(receipts_tx.clone()),
            )
            .await
            .with_context(|| format!("subscriber {conn} on {}", path.label()))?;
            socket.subscribe("1", &fx.room_id)?;
            sockets.push(socket);
            paths.push(path);
        }
    }
    // Every subscriber must have had the warm-up messages: each subscription
    // is live on both instances before the measurement starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gql = Gql::new(&a.url);
    for i in 0..WARM_UP {
        send(&gql, sender, &fx.room_id, &format!("warm-up {i}")).await?;
    }
    let warm = WARM_UP * sockets.len();
    if !tally.wait_for(warm, Duration::from_secs(30)).await {
        bail!(
            "{} of {warm} warm-up messages reached the subscribers within 30 s{}",
            tally.received(),
            tally
                .problem()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        );
    }
    while receipts.try_recv().is_ok() {}

    let total = (s.rate * s.secs).round().max(1.0) as usize;
    let sent: Arc<Mutex<Vec<Option<Sent>>>> = Arc::new(Mutex::new(vec![None; total]));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until((started + Duration::from_secs_f64(i as f64 / s.rate)).into())
            .await;
        let (gql, sender, room, sent) = (
            gql.clone(),
            sender.clone(),
            fx.room_id.clone(),
            Arc::clone(&sent),
        );
        tasks.push(tokio::spawn(async move {
            let before = Instant::now();
            let ok = send(&gql, &sender, &room, &body(i)).await.is_ok();
            let answered = Instant::now();
            if ok {
                if let Ok(mut sent) = sent.lock() {
                    sent[i] = Some(Sent { before, answered });
                }
            }
        }));
    }
    let issued = started.elapsed();
    for task in tasks {
        let _ = task.await;
    }
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let answered = sent.iter().flatten().count();
    // Whatever has not arrived 10 s after the last answer counts as lost.
    tally
        .wait_for(warm + answered * sockets.len(), Duration::from_secs(10))
        .await;
    drop(sockets);
    let mut got = Vec::new();
    while let Ok(r) = receipts.try_recv() {
        got.push(r);
    }
    let latencies: Vec<Duration> = sent
        .iter()
        .flatten()
        .map(|s| s.answered - s.before)
        .collect();
    let run = DeliveryRun {
        sent: total,
        failed: total - answered,
        achieved_rate: total as f64 / issued.as_secs_f64().max(1e-9),
        mutation: summarize(&latencies, total - answered, issued),
        paths: deliveries(&sent, &got, &paths, issued),
    };
    for p in &run.paths {
        println!(
            "  {:<20} {} of {} received; from commit p50 {:.1} ms p99 {:.1} ms max {:.1} ms; from send p50 {:.1} ms p99 {:.1} ms",
            p.path.label(),
            p.received,
            p.expected,
            p.from_answer.p50,
            p.from_answer.p99,
            p.from_answer.max,
            p.from_send.p50,
            p.from_send.p99
        );
    }
    Ok(run)
}

/// Waits until the server spends under 5 % of a core for a second (its
/// subscriptions are set up); at most a minute.
async fn quiet(server: &Process) {
    settle(server, Duration::from_secs(1), Duration::from_secs(60)).await;
}

/// Waits until the server and PostgreSQL together spend under 5 % of a
/// core over `window`; at most `longest`.
async fn settle(server: &Process, window: Duration, longest: Duration) {
    let started = Instant::now();
    while started.elapsed() < longest {
        let before = cpu::snapshot(server.pid());
        tokio::time::sleep(window).await;
        let spent = cpu::spent(&before, &cpu::snapshot(server.pid()));
        let busy: f64 = [cpu::Part::Server, cpu::Part::Sql]
            .iter()
            .filter_map(|p| spent.get(p))
            .sum();
        if busy < 0.05 * window.as_secs_f64() {
            return;
        }
    }
}

fn server_cpu(before: &cpu::Snapshot, after: &cpu::Snapshot) -> f64 {
    cpu::spent(before, after)
        .get(&cpu::Part::Server)
        .copied()
        .unwrap_or(0.0)
}

/// What the subscriptions of a CPU cell are.
struct Open {
    listeners: Listeners,
    subscriptions: usize,
    connections: usize,
    rooms: usize,
}

/// The server's CPU while `drive` sends, until the worker has applied
/// every event; its idle CPU is read just before.
async fn cpu_cell<F, Fut>(
    server: &Process,
    sql: &studysync::pool::Db,
    tally: &Tally,
    open: Open,
    drive: F,
) -> anyhow::Result<CpuCell>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<Summary>>,
{
    db::vacuum_as_autovacuum_would(sql).await?;
    quiet(server).await;
    let idle = cpu::snapshot(server.pid());
    tokio::time::sleep(IDLE).await;
    let idle_cpu = server_cpu(&idle, &cpu::snapshot(server.pid()));
    let baseline = db::pending(sql).await?;
    let received = tally.received();
    let before = cpu::snapshot(server.pid());
    let started = Instant::now();
    let sends = drive().await?;
    if !db::wait_drained(sql, baseline, Duration::from_secs(60)).await? {
        bail!("the worker did not apply the messages within 60 s");
    }
    let cpu_secs = server_cpu(&before, &cpu::snapshot(server.pid()));
    let cell = CpuCell {
        listeners: open.listeners,
        subscriptions: open.subscriptions,
        connections: open.connections,
        rooms: open.rooms,
        cpu_secs,
        wall_secs: started.elapsed().as_secs_f64(),
        idle_cpu_ms_per_sec: idle_cpu * 1e3 / IDLE.as_secs_f64(),
        deliveries: tally.received() - received,
        sends,
    };
    println!(
        "  {:<36} {:>6} subscriptions on {:>4} connections: server CPU {:.3} ms/send ({:.3} net of idle {:.1} ms/s) over {} sends, {} deliveries",
        cell.listeners.label(),
        cell.subscriptions,
        cell.connections,
        cell.cpu_ms_per_send(),
        cell.net_cpu_ms_per_send(),
        cell.idle_cpu_ms_per_sec,
        cell.sends.n,
        cell.deliveries
    );
    Ok(cell)
}

/// Sends `n` messages to `room` at `rate` per second, open loop.
async fn steady(gql: &Gql, token: &str, room: &str, n: usize, rate: f64, tag: &str) -> Summary {
    let (gql, token, room, tag) = (
        gql.clone(),
        token.to_owned(),
        room.to_owned(),
        tag.to_owned(),
    );
    open_loop(rate, Duration::from_secs_f64(n as f64 / rate), move |i| {
        let (gql, token, room, body) = (
            gql.clone(),
            token.clone(),
            room.clone(),
            format!("{tag} {i}"),
        );
        async move { send(&gql, &token, &room, &body).await }
    })
    .await
}

/// Starts one subscription per planned room (to `room` instead, when
/// given), ids `<prefix><n>`: in rounds of one per connection, each round
/// once the server and PostgreSQL are done with the one before, so the
/// CPU and memory read afterwards belong to open subscriptions, not to
/// ones still starting.
async fn subscribe_all(
    server: &Process,
    connections: &[(&Socket, &Planned)],
    prefix: &str,
    room: Option<&str>,
) -> anyhow::Result<()> {
    let rounds = connections
        .iter()
        .map(|(_, p)| p.rooms.len())
        .max()
        .unwrap_or(0);
    for i in 0..rounds {
        for (socket, p) in connections {
            if let Some(r) = p.rooms.get(i) {
                let target = room.map_or_else(|| r.to_string(), str::to_owned);
                socket.subscribe(&format!("{prefix}{i}"), &target)?;
            }
        }
        settle(server, Duration::from_millis(200), Duration::from_secs(10)).await;
    }
    Ok(())
}

/// (user, room) pairs of every membership outside `room`.
async fn memberships_outside(
    sql: &studysync::pool::Db,
    room: Uuid,
) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let rows = sql
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT user_id, room_id FROM room_members WHERE room_id <> '{room}' ORDER BY user_id, room_id"),
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
        .collect()
}

/// One server; CPU per send with no subscriptions, then with the planned
/// subscriptions to other rooms, then (optionally) as many to the sender's
/// room; RSS as the connections and subscriptions open.
async fn fanout(
    env: &Env,
    fx: &Arc<Fixture>,
    app: &AppState,
    results: &mut LiveResults,
    errors: &mut Vec<String>,
) -> anyhow::Result<()> {
    let s = results.settings.clone();
    let sql = app.sql();
    let x: Uuid = fx.room_id.parse().context("room id")?;
    let planned = plan(
        &memberships_outside(sql, x).await?,
        s.subscriptions,
        &results.caps,
    );
    let subscriptions: usize = planned.iter().map(|p| p.rooms.len()).sum();
    if subscriptions < s.subscriptions {
        errors.push(format!(
            "live: the seeded accounts' rooms and the websocket caps allow {subscriptions} of the {} subscriptions asked for; measured with {subscriptions}",
            s.subscriptions
        ));
    }
    let mut tokens = HashMap::new();
    for p in &planned {
        if let std::collections::hash_map::Entry::Vacant(slot) = tokens.entry(p.user) {
            // Seeded accounts are at their first token generation.
            let token = app
                .tokens()
                .issue(p.user, 0)
                .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            slot.insert(token);
        }
    }
    results.accounts = tokens.len();
    let rooms: BTreeSet<Uuid> = planned
        .iter()
        .flat_map(|p| p.rooms.iter().copied())
        .collect();
    let mut vars = results.server_vars.clone();
    vars.push(("WS_RECHECK_MS", FANOUT_RECHECK_MS.to_string()));
    let server = Process::serve(env, &vars, "live-fanout").await?;
    let outcome = fanout_on(
        &server,
        fx,
        sql,
        &s,
        &planned,
        &tokens,
        &rooms,
        subscriptions,
        results,
        errors,
    )
    .await;
    server.stop().await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn fanout_on(
    server: &Process,
    fx: &Arc<Fixture>,
    sql: &studysync::pool::Db,
    s: &Settings,
    planned: &[Planned],
    tokens: &HashMap<Uuid, String>,
    rooms: &BTreeSet<Uuid>,
    subscriptions: usize,
    results: &mut LiveResults,
    errors: &mut Vec<String>,
) -> anyhow::Result<()> {
    let gql = Gql::new(&server.url);
    let sender = fx
        .room_tokens
        .first()
        .context("the busiest room has no members")?;
    let room = fx.room_id.as_str();
    let tally = Arc::new(Tally::default());
    for i in 0..20 {
        send(&gql, sender, room, &format!("warm-up {i}")).await?;
    }
    let none = Open {
        listeners: Listeners::None,
        subscriptions: 0,
        connections: 0,
        rooms: 0,
    };
    match cpu_cell(server, sql, &tally, none, || async {
        Ok(steady(&gql, sender, room, s.sends, s.send_rate, "none").await)
    })
    .await
    {
        Ok(cell) => results.cpu.push(cell),
        Err(e) => errors.push(format!("live CPU without subscriptions: {e:#}")),
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory = &mut results.memory;
    memory.idle_mib = server.rss_mib();
    let mut sockets = Vec::with_capacity(planned.len());
    for (conn, p) in planned.iter().enumerate() {
        let socket = Socket::connect(
            &server.url,
            &tokens[&p.user],
            conn,
            Arc::clone(&tally),
            None,
        )
        .await
        .with_context(|| format!("websocket connection {} of {}", conn + 1, planned.len()))?;
        sockets.push(socket);
    }
    quiet(server).await;
    memory.connections = sockets.len();
    memory.connected_mib = server.rss_mib();
    let all: Vec<(&Socket, &Planned)> = sockets.iter().zip(planned).collect();
    subscribe_all(server, &all, "o", None).await?;
    quiet(server).await;
    // One message to each room: every subscription must receive exactly
    // one, which shows they are all live.
    for r in rooms {
        let member = planned
            .iter()
            .find(|p| p.rooms.contains(r))
            .map(|p| &tokens[&p.user])
            .context("a planned room without a member")?;
        if let Err(e) = send(&gql, member, &r.to_string(), "probe").await {
            errors.push(format!("live: a probe message to a room: {e:#}"));
        }
    }
    if !tally.wait_for(subscriptions, Duration::from_secs(60)).await {
        errors.push(format!(
            "live: {} of {subscriptions} subscriptions to other rooms received the probe message within 60 s",
            tally.received()
        ));
    }
    if let Some(problem) = tally.problem() {
        errors.push(format!("live subscriptions to other rooms: {problem}"));
    }
    memory.subscriptions = subscriptions;
    memory.subscribed_mib = server.rss_mib();
    println!(
        "  RSS idle {:.1} MiB, with {} connections {:.1} MiB, with {subscriptions} subscriptions {:.1} MiB",
        memory.idle_mib.unwrap_or(f64::NAN),
        memory.connections,
        memory.connected_mib.unwrap_or(f64::NAN),
        memory.subscribed_mib.unwrap_or(f64::NAN)
    );
    let other = Open {
        listeners: Listeners::OtherRooms,
        subscriptions,
        connections: sockets.len(),
        rooms: rooms.len(),
    };
    match cpu_cell(server, sql, &tally, other, || async {
        Ok(steady(&gql, sender, room, s.sends, s.send_rate, "other").await)
    })
    .await
    {
        Ok(cell) => results.cpu.push(cell),
        Err(e) => errors.push(format!("live CPU with subscriptions to other rooms: {e:#}")),
    }
    // Without them again, the connections still open: how far the machine
    // drifted between the two cells.
    for (socket, p) in sockets.iter().zip(planned) {
        for i in 0..p.rooms.len() {
            socket.complete(&format!("o{i}"))?;
        }
    }
    let closed = Open {
        listeners: Listeners::Closed,
        subscriptions: 0,
        connections: sockets.len(),
        rooms: 0,
    };
    match cpu_cell(server, sql, &tally, closed, || async {
        Ok(steady(&gql, sender, room, s.sends, s.send_rate, "closed").await)
    })
    .await
    {
        Ok(cell) => results.cpu.push(cell),
        Err(e) => errors.push(format!(
            "live CPU after completing the subscriptions: {e:#}"
        )),
    }
    if s.same_room_sends == 0 {
        return Ok(());
    }

    // The connections of the accounts that are (or could join as) members
    // of the sender's room, every subscription in that room.
    let members = join(&gql, sql, tokens, room).await?;
    let same: Vec<(&Socket, &Planned)> = all
        .iter()
        .copied()
        .filter(|(_, p)| members.contains(&p.user))
        .collect();
    let subscriptions: usize = same.iter().map(|(_, p)| p.rooms.len()).sum();
    println!(
        "  {} of the accounts are members of the sender's room: {subscriptions} subscriptions on {} connections",
        members.len(),
        same.len()
    );
    results.memory.same_room_subscriptions = subscriptions;
    subscribe_all(server, &same, "x", Some(room)).await?;
    quiet(server).await;
    let base = tally.received();
    if let Err(e) = send(&gql, sender, room, "probe").await {
        errors.push(format!(
            "live: the probe message to the sender's room: {e:#}"
        ));
    }
    if !tally
        .wait_for(base + subscriptions, Duration::from_secs(60))
        .await
    {
        errors.push(format!(
            "live: {} of {subscriptions} subscriptions to the sender's room received the probe message within 60 s",
            tally.received() - base
        ));
    }
    results.memory.same_room_mib = server.rss_mib();
    let same = Open {
        listeners: Listeners::SameRoom,
        subscriptions,
        connections: same.len(),
        rooms: 1,
    };
    let n = s.same_room_sends;
    let each = subscriptions;
    let outcome = cpu_cell(server, sql, &tally, same, || async {
        // One at a time: each message reaches every subscriber first.
        let (mut latencies, mut failed) = (Vec::new(), 0);
        let started = Instant::now();
        for i in 0..n {
            let base = tally.received();
            let t = Instant::now();
            match send(&gql, sender, room, &format!("same {i}")).await {
                Ok(()) => latencies.push(t.elapsed()),
                Err(_) => {
                    failed += 1;
                    continue;
                }
            }
            if !tally.wait_for(base + each, Duration::from_secs(60)).await {
                bail!(
                    "message {i} reached {} of {each} subscribers within 60 s",
                    tally.received() - base
                );
            }
        }
        Ok(summarize(&latencies, failed, started.elapsed()))
    })
    .await;
    match outcome {
        Ok(cell) => results.cpu.push(cell),
        Err(e) => errors.push(format!(
            "live CPU with subscriptions to the sender's room: {e:#}"
        )),
    }
    drop(sockets);
    Ok(())
}

/// Accounts of `tokens` that are not yet members join `room` (through the
/// API) while it has room for them (`MAX_ROOM_MEMBERS`); returns the
/// accounts of `tokens` that are members then.
async fn join(
    gql: &Gql,
    sql: &studysync::pool::Db,
    tokens: &HashMap<Uuid, String>,
    room: &str,
) -> anyhow::Result<BTreeSet<Uuid>> {
    let mut members: BTreeSet<Uuid> = db::column(
        sql,
        &format!("SELECT user_id FROM room_members WHERE room_id = '{room}'"),
    )
    .await?
    .into_iter()
    .collect();
    let most = usize::try_from(studysync::domain::MAX_ROOM_MEMBERS).unwrap_or(usize::MAX);
    for (user, token) in tokens {
        if members.len() >= most {
            break;
        }
        if !members.contains(user) {
            gql.run(token, JOIN, json!({"r": room}))
                .await
                .context("joinRoom")?;
            members.insert(*user);
        }
    }
    Ok(members
        .into_iter()
        .filter(|m| tokens.contains_key(m))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(per_connection: usize, per_user: usize, connections_per_user: usize) -> Caps {
        Caps {
            per_connection,
            per_user,
            connections_per_user,
            recheck_ms: 5_000,
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn subscriptions_fill_the_accounts_with_most_rooms_first() {
        // User 2 has three rooms, user 1 one; 32 per connection, 64 per user.
        let memberships = [
            (id(1), id(10)),
            (id(2), id(10)),
            (id(2), id(11)),
            (id(2), id(12)),
        ];
        let planned = plan(&memberships, 100, &caps(32, 64, 8));
        let sizes: Vec<(Uuid, usize)> = planned.iter().map(|p| (p.user, p.rooms.len())).collect();
        assert_eq!(sizes, [(id(2), 32), (id(2), 32), (id(1), 32), (id(1), 4)]);
        // Each account's rooms in turn, continuing across its connections.
        assert_eq!(&planned[0].rooms[..4], &[id(10), id(11), id(12), id(10)]);
        assert_eq!(planned[1].rooms[0], id(12));
        assert!(planned[2].rooms.iter().all(|r| *r == id(10)));
    }

    #[test]
    fn the_plan_stops_where_the_accounts_run_out() {
        let memberships = [(id(1), id(10))];
        // 8 per connection, but only 2 connections and 12 operations per user.
        let planned = plan(&memberships, 100, &caps(8, 12, 2));
        let sizes: Vec<usize> = planned.iter().map(|p| p.rooms.len()).collect();
        assert_eq!(sizes, [8, 4]);
        let fewer = plan(&memberships, 10, &caps(8, 64, 8));
        assert_eq!(fewer.iter().map(|p| p.rooms.len()).sum::<usize>(), 10);
    }

    #[test]
    fn receipts_are_matched_to_their_sends_per_path() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let sent = [
            Some(Sent {
                before: at(0),
                answered: at(10),
            }),
            None,
            Some(Sent {
                before: at(100),
                answered: at(104),
            }),
        ];
        let paths = [Path::CrossInstance, Path::SameInstance];
        let receipt = |conn: usize, body: &str, ms: u64| Receipt {
            conn,
            body: body.to_owned(),
            at: at(ms),
        };
        let receipts = [
            receipt(0, "live 0", 30),
            receipt(1, "live 0", 8),
            receipt(0, "live 2", 150),
            receipt(1, "live 2", 105),
            // Not measured: a warm-up, a failed send, an unknown number.
            receipt(0, "warm-up 1", 1),
            receipt(0, "live 1", 50),
            receipt(1, "live 9", 50),
        ];
        let out = deliveries(&sent, &receipts, &paths, Duration::from_secs(1));
        let cross = &out[0];
        assert_eq!(cross.path, Path::CrossInstance);
        assert_eq!(
            (cross.expected, cross.received, cross.subscribers),
            (2, 2, 1)
        );
        assert!((cross.from_send.max - 50.0).abs() < 1e-6);
        assert!((cross.from_answer.p50 - 20.0).abs() < 1e-6);
        let same = &out[1];
        // Arrived 2 ms before the answer reached the sender.
        assert!(
            (same.from_answer.p50 + 2.0).abs() < 1e-6,
            "{}",
            same.from_answer.p50
        );
        assert!((same.from_send.max - 8.0).abs() < 1e-6);
    }

    #[test]
    fn memory_is_split_between_connections_and_subscriptions() {
        let m = Memory {
            idle_mib: Some(40.0),
            connections: 256,
            connected_mib: Some(42.0),
            subscriptions: 8_192,
            subscribed_mib: Some(58.0),
            same_room_mib: None,
            same_room_subscriptions: 0,
        };
        assert_eq!(m.per_connection_kib(), Some(8.0));
        assert_eq!(m.per_subscription_kib(), Some(2.0));
        assert_eq!(m.per_subscription_all_in_kib(), Some(2.25));
        assert_eq!(Memory::default().per_subscription_kib(), None);
    }

    #[test]
    fn cpu_net_of_idle_subtracts_the_idle_rate_over_the_wall_time() {
        let cell = CpuCell {
            listeners: Listeners::None,
            subscriptions: 0,
            connections: 0,
            rooms: 0,
            sends: Summary {
                n: 100,
                ..Summary::default()
            },
            cpu_secs: 0.2,
            wall_secs: 10.0,
            idle_cpu_ms_per_sec: 5.0,
            deliveries: 0,
        };
        assert!((cell.cpu_ms_per_send() - 2.0).abs() < 1e-9);
        assert!((cell.net_cpu_ms_per_send() - 1.5).abs() < 1e-9);
    }
}
