//! Latency summaries.
use std::time::Duration;

/// Percentiles of one measured cell, in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub n: usize,
    pub errors: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Completed requests per second over the cell's wall time.
    pub rps: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(latencies: &[Duration], errors: usize, wall: Duration) -> Summary {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    summarize_ms(&mut ms, errors, wall)
}

pub fn summarize_ms(ms: &mut [f64], errors: usize, wall: Duration) -> Summary {
    ms.sort_by(f64::total_cmp);
    Summary {
        n: ms.len(),
        errors,
        p50: percentile(ms, 50.0),
        p95: percentile(ms, 95.0),
        p99: percentile(ms, 99.0),
        max: ms.last().copied().unwrap_or(f64::NAN),
        rps: ms.len() as f64 / wall.as_secs_f64().max(1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
    }
}
