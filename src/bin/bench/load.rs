//! Load generators: closed loop (N clients back to back) and open loop (a
//! fixed arrival rate, whatever the latency).
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use crate::stats::{summarize, Summary};

/// `clients` tasks each call `op(client, i)` back to back for `duration`.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, op: F) -> Summary
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = Arc::clone(&op);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match op(client, i).await {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("  request failed: {e:#}");
                        }
                    }
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            all.extend(l);
            errors += e;
        }
    }
    summarize(&all, errors, started.elapsed())
}

/// Starts `op(i)` at `rate` per second for `duration`, never waiting for
/// earlier requests; returns the latency summary (rps = achieved rate).
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, op: F) -> Summary
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let results = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let started = Instant::now();
    let total = (rate * duration.as_secs_f64()) as usize;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let results = Arc::clone(&results);
        let fut = op(i);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let outcome = fut.await;
            let mut r = results.lock().await;
            match outcome {
                Ok(()) => r.0.push(t.elapsed()),
                Err(_) => r.1 += 1,
            }
        }));
    }
    let issued = started.elapsed();
    for task in tasks {
        let _ = task.await;
    }
    let r = results.lock().await;
    summarize(&r.0, r.1, issued)
}
