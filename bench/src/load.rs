//! Load generators: closed loop (N clients back to back) and open loop (a
//! fixed arrival rate, whatever the latency).
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use crate::stats::{summarize, Summary};

/// Latencies and errors of one closed-loop run, and its wall time.
#[derive(Default)]
pub struct Samples {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub wall: Duration,
}

impl Samples {
    /// Adds another run of the same cell (its wall time adds up too).
    pub fn extend(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.wall += other.wall;
    }

    pub fn summary(&self) -> Summary {
        summarize(&self.latencies, self.errors, self.wall)
    }
}

/// `clients` tasks each call `op(client, i)` back to back for `duration`.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, op: F) -> Summary
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    closed_loop_samples(clients, duration, 0, op)
        .await
        .summary()
}

/// Like [`closed_loop`], returning the samples; request numbers start at
/// `first` so repeated runs never repeat a request.
pub async fn closed_loop_samples<F, Fut>(
    clients: usize,
    duration: Duration,
    first: usize,
    op: F,
) -> Samples
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
            let mut i = first;
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
    let mut samples = Samples::default();
    for task in tasks {
        if let Ok((l, e)) = task.await {
            samples.latencies.extend(l);
            samples.errors += e;
        }
    }
    samples.wall = started.elapsed();
    samples
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_samples_add_up_their_requests_errors_and_time() {
        let mut pooled = Samples::default();
        for k in 1..=4u64 {
            pooled.extend(Samples {
                latencies: vec![Duration::from_millis(k); 10],
                errors: 1,
                wall: Duration::from_millis(500),
            });
        }
        let summary = pooled.summary();
        assert_eq!(summary.n, 40);
        assert_eq!(summary.errors, 4);
        assert_eq!(pooled.wall, Duration::from_secs(2));
        assert!((summary.rps - 20.0).abs() < 1e-9, "{}", summary.rps);
        assert!((summary.p50 - 2.0).abs() < 1e-9, "{}", summary.p50);
        assert!((summary.max - 4.0).abs() < 1e-9, "{}", summary.max);
    }
}
