//! Hostile documents and login bursts against the release server: what
//! each of the worst documents within the body limit costs the server in
//! CPU and memory, and how far concurrent logIns grow its memory.
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{json, Value};

use crate::{
    corpus::{self, Hostile, Transport},
    cpu,
    server::{self, Env, Process},
    Fixture,
};

/// Server CPU one hostile request may cost, refused or answered (ms).
pub const CPU_TARGET_MS: f64 = 5.0;
/// How far concurrent logIns may grow the server's RSS over idle (MB).
pub const LOGIN_RSS_TARGET_MB: f64 = 150.0;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const LOG_IN: &str =
    "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";

/// One kind of hostile document, sent `requests` times.
pub struct KindResult {
    pub name: String,
    pub via: &'static str,
    pub bytes: usize,
    /// The first answer: status and the first error's code (or `data`).
    pub answer: String,
    /// Every answer was GraphQL-shaped JSON without a 5xx.
    pub answered: bool,
    pub response_bytes: usize,
    /// Server CPU (user + system) per request, ms.
    pub cpu_ms: f64,
    pub wall_ms: f64,
    pub rss_before: Option<f64>,
    /// Peak RSS while this kind ran (VmHWM reset before it), MiB.
    pub peak_rss: Option<f64>,
}

impl KindResult {
    pub fn met(&self) -> bool {
        self.answered && self.cpu_ms <= CPU_TARGET_MS
    }
}

/// `concurrent` logIns at once against a fresh server.
pub struct Burst {
    pub concurrent: usize,
    /// Answers by kind: `token`, an error code, or `no answer`.
    pub answers: BTreeMap<String, usize>,
    pub idle_mib: Option<f64>,
    pub peak_mib: Option<f64>,
    pub after_mib: Option<f64>,
    pub cpu_secs: f64,
    pub wall_secs: f64,
}

impl Burst {
    /// Peak minus idle, in MB (10^6 bytes), as the target is written.
    pub fn growth_mb(&self) -> Option<f64> {
        Some((self.peak_mib? - self.idle_mib?) * 1024.0 * 1024.0 / 1e6)
    }
}

pub struct HostileResults {
    pub body_limit: usize,
    pub requests: usize,
    pub kinds: Vec<KindResult>,
    pub bursts: Vec<Burst>,
    /// How VmHWM was read: reset per measurement, or only the lifetime peak.
    pub peak_reset: bool,
    pub login_settings: Vec<(&'static str, String)>,
}

/// Runs the corpus, then one login burst per entry of `bursts`.
pub async fn hostile(
    env: &Env,
    fx: &Arc<Fixture>,
    sql: &studysync::pool::Db,
    requests: usize,
    bursts: &[usize],
) -> (HostileResults, Vec<String>) {
    let mut errors = Vec::new();
    let body_limit = std::env::var("BODY_LIMIT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024 * 1024);
    let mut results = HostileResults {
        body_limit,
        requests,
        kinds: Vec::new(),
        bursts: Vec::new(),
        peak_reset: true,
        login_settings: login_settings(bursts),
    };
    if let Err(e) = documents(env, fx, body_limit, requests, &mut results).await {
        errors.push(format!("hostile documents: {e:#}"));
    }
    let emails = match emails(sql, bursts.iter().copied().max().unwrap_or(0)).await {
        Ok(emails) => emails,
        Err(e) => {
            errors.push(format!("login bursts: {e:#}"));
            Vec::new()
        }
    };
    if !emails.is_empty() {
        for &n in bursts {
            match burst(env, &results.login_settings, &emails, n).await {
                Ok((b, reset)) => {
                    results.peak_reset &= reset;
                    println!(
                        "  {n:>5} concurrent logIns: RSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MB), after {:.1} MiB; {:?}; {:.1} s",
                        b.idle_mib.unwrap_or(f64::NAN),
                        b.peak_mib.unwrap_or(f64::NAN),
                        b.growth_mb().unwrap_or(f64::NAN),
                        b.after_mib.unwrap_or(f64::NAN),
                        b.answers,
                        b.wall_secs
                    );
                    results.bursts.push(b);
                }
                Err(e) => errors.push(format!("{n} concurrent logIns: {e:#}")),
            }
        }
    }
    (results, errors)
}

/// The login servers' limits: the bench is one client address, so the
/// per-address limits are raised past the burst; hashing stays at its
/// defaults (that bound is what is measured).
fn login_settings(bursts: &[usize]) -> Vec<(&'static str, String)> {
    let most = bursts.iter().copied().max().unwrap_or(0);
    vec![
        ("NO_WORKER", "true".to_owned()),
        (
            "LOGIN_MAX_FAILURES_PER_ADDRESS",
            (10 * most).max(1).to_string(),
        ),
        (
            "MAX_CONNECTIONS_PER_ADDRESS",
            (2 * most).max(256).to_string(),
        ),
    ]
}

async fn documents(
    env: &Env,
    fx: &Arc<Fixture>,
    body_limit: usize,
    requests: usize,
    results: &mut HostileResults,
) -> anyhow::Result<()> {
    // Default settings; no worker, so its polling is not charged to requests.
    let server = Process::serve(env, &[("NO_WORKER", "true".to_owned())], "hostile").await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("HTTP client")?;
    let token = fx.reader_token.clone();
    let warm_up = Hostile {
        name: String::new(),
        transport: Transport::Post {
            body: json!({"query": "{ me { id } }"}).to_string(),
            token: true,
        },
    };
    for _ in 0..5 {
        send(&http, &server.url, &token, &warm_up).await;
    }
    for kind in corpus::corpus(body_limit) {
        let reset = server.reset_peak_rss();
        results.peak_reset &= reset;
        let rss_before = server.rss_mib();
        let before = cpu::snapshot(server.pid());
        let started = Instant::now();
        let mut first = None;
        let mut answered = true;
        for _ in 0..requests {
            let reply = send(&http, &server.url, &token, &kind).await;
            answered &= reply.graphql;
            first.get_or_insert(reply);
        }
        let wall = started.elapsed();
        let spent = cpu::spent(&before, &cpu::snapshot(server.pid()));
        let first = first.context("no request sent")?;
        let result = KindResult {
            via: kind.via(),
            bytes: kind.size(),
            answer: first.answer,
            answered,
            response_bytes: first.bytes,
            cpu_ms: spent.get(&cpu::Part::Server).copied().unwrap_or(0.0) * 1e3
                / requests.max(1) as f64,
            wall_ms: wall.as_secs_f64() * 1e3 / requests.max(1) as f64,
            rss_before,
            peak_rss: server.peak_rss_mib(),
            name: kind.name,
        };
        println!(
            "  {:<4} {:>8} B  {:<32} CPU {:>7.3} ms/request  wall {:>7.2} ms  peak RSS {:>6.1} MiB  {}",
            result.via,
            result.bytes,
            result.answer,
            result.cpu_ms,
            result.wall_ms,
            result.peak_rss.unwrap_or(f64::NAN),
            result.name
        );
        results.kinds.push(result);
    }
    server.stop().await;
    Ok(())
}

struct Reply {
    answer: String,
    /// GraphQL-shaped JSON (`data` or `errors`) and not a 5xx.
    graphql: bool,
    bytes: usize,
}

async fn send(http: &reqwest::Client, base: &str, token: &str, kind: &Hostile) -> Reply {
    let url = format!("{base}/graphql");
    let request = match &kind.transport {
        Transport::Post { body, token: auth } => {
            let r = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            if *auth {
                r.bearer_auth(token)
            } else {
                r
            }
        }
        Transport::Get { query } => http.get(&url).query(&[("query", query)]),
    };
    let response = match request.header("accept", GRAPHQL_RESPONSE).send().await {
        Ok(r) => r,
        Err(e) => return no_answer(e),
    };
    let status = response.status();
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return no_answer(e),
    };
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    // A batch answers an array: its first entry speaks for it.
    let first = body.get(0).unwrap_or(&body);
    let errors = first.get("errors").and_then(Value::as_array);
    let answer = match errors.and_then(|e| e.first()) {
        Some(error) => format!(
            "{} {}{}",
            status.as_u16(),
            error
                .pointer("/extensions/code")
                .and_then(Value::as_str)
                .unwrap_or("no code"),
            match errors.map_or(0, Vec::len) {
                1 => String::new(),
                n => format!(" ({n} errors)"),
            }
        ),
        None if first.get("data").is_some() => format!("{} data", status.as_u16()),
        None => format!("{} not GraphQL", status.as_u16()),
    };
    Reply {
        graphql: !status.is_server_error()
            && (first.get("data").is_some() || first.get("errors").is_some()),
        answer,
        bytes: text.len(),
    }
}

fn no_answer(e: reqwest::Error) -> Reply {
    Reply {
        answer: format!("no answer ({})", e.without_url()),
        graphql: false,
        bytes: 0,
    }
}

/// The first `n` seeded accounts' emails (all share the seed's password).
async fn emails(sql: &studysync::pool::Db, n: usize) -> anyhow::Result<Vec<String>> {
    let emails: Vec<String> = crate::db::column(
        sql,
        &format!("SELECT email FROM users ORDER BY email LIMIT {n}"),
    )
    .await?;
    anyhow::ensure!(!emails.is_empty(), "no seeded accounts");
    Ok(emails)
}

/// `n` logIns at once on a fresh server, as `n` distinct accounts (cycling
/// when there are fewer), half with the right password and half with a
/// wrong one. Returns the burst and whether VmHWM could be reset.
async fn burst(
    env: &Env,
    settings: &[(&'static str, String)],
    emails: &[String],
    n: usize,
) -> anyhow::Result<(Burst, bool)> {
    let server = Process::serve(env, settings, &format!("hostile-logins-{n}")).await?;
    let pid = server.pid().context("server has no pid")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
        .timeout(Duration::from_secs(120))
        .build()
        .context("HTTP client")?;
    let url = format!("{}/graphql", server.url);
    // Idle: started, connected to both databases, a few requests answered,
    // no password checked yet.
    for _ in 0..5 {
        let _ = http
            .post(&url)
            .json(&json!({"query": "{ __typename }"}))
            .send()
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reset = server.reset_peak_rss();
    let idle = server.rss_mib();
    // A sampled peak as well, in case the kernel cannot reset VmHWM.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut peak: Option<f64> = None;
            while !stop.load(Ordering::Relaxed) {
                if let Some(rss) = server::status_mib(pid, "VmRSS:") {
                    peak = Some(peak.map_or(rss, |p| p.max(rss)));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            peak
        }
    });
    let before = cpu::snapshot(Some(pid));
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let password = if i % 2 == 0 {
                studysync::seed::DEMO_PASSWORD.to_owned()
            } else {
                format!("wrong-password-{i}")
            };
            let body = json!({
                "query": LOG_IN,
                "variables": { "e": emails[i % emails.len()], "p": password },
            });
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let reply = match http.post(&url).json(&body).send().await {
                    Ok(r) => r.json::<Value>().await.ok(),
                    Err(_) => None,
                };
                match reply {
                    None => "no answer".to_owned(),
                    Some(v) if v.pointer("/data/logIn/token").is_some() => "token".to_owned(),
                    Some(v) => v
                        .pointer("/errors/0/extensions/code")
                        .and_then(Value::as_str)
                        .unwrap_or("no code")
                        .to_owned(),
                }
            })
        })
        .collect();
    let mut answers = BTreeMap::new();
    for task in tasks {
        let answer = task
            .await
            .unwrap_or_else(|_| "client task failed".to_owned());
        *answers.entry(answer).or_insert(0) += 1;
    }
    let wall_secs = started.elapsed().as_secs_f64();
    let cpu_secs = cpu::spent(&before, &cpu::snapshot(Some(pid)))
        .get(&cpu::Part::Server)
        .copied()
        .unwrap_or(0.0);
    stop.store(true, Ordering::Relaxed);
    let sampled = sampler.await.ok().flatten();
    let peak = if reset {
        server.peak_rss_mib()
    } else {
        sampled
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_mib();
    server.stop().await;
    Ok((
        Burst {
            concurrent: n,
            answers,
            idle_mib: idle,
            peak_mib: peak,
            after_mib: after,
            cpu_secs,
            wall_secs,
        },
        reset,
    ))
}
