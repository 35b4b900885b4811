//! What this process's worker has seen recently: the last successful apply
//! and the failure rate over a sliding window. Health combines it with what
//! the outbox table shows about every worker, including other processes.
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

/// How far back the in-process error rate looks.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Monitor {
    state: Mutex<State>,
    resync_running: AtomicBool,
}

#[derive(Default)]
struct State {
    last_sync: Option<DateTime<Utc>>,
    /// (when, events attempted, events failed) per batch.
    batches: VecDeque<(Instant, u64, u64)>,
}

impl Monitor {
    /// Records one batch's attempts and failures; `applied_any` moves
    /// `last_sync` forward.
    pub fn record(&self, attempted: u64, failed: u64, applied_any: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        if applied_any {
            state.last_sync = Some(Utc::now());
        }
        state.batches.push_back((now, attempted, failed));
        while state
            .batches
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) > WINDOW)
        {
            state.batches.pop_front();
        }
    }

    /// Failed share of the events this process attempted within the window,
    /// `None` when it attempted none.
    pub fn error_rate(&self) -> Option<f64> {
        let state = self.state.lock().ok()?;
        let now = Instant::now();
        let (attempted, failed) = state
            .batches
            .iter()
            .filter(|(at, _, _)| now.duration_since(*at) <= WINDOW)
            .fold((0, 0), |(a, f), (_, da, df)| (a + da, f + df));
        (attempted > 0).then(|| failed as f64 / attempted as f64)
    }

    pub fn last_sync(&self) -> Option<DateTime<Utc>> {
        self.state.lock().ok()?.last_sync
    }

    /// Marks a resync as running; false when one already is (in this process).
    pub fn try_start_resync(&self) -> bool {
        self.resync_running
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    pub fn finish_resync(&self) {
        self.resync_running.store(false, Ordering::SeqCst);
    }
}
