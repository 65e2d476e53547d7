//! `natrium plugin bench FILE --world W [input] [--calls N] [--duration S]`: calls one input
//! again and again through the broker's pool (one thread, one instance) until N calls or S
//! have passed, whichever comes first, and reports calls/s and latency percentiles.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::run::{bytes_text, duration_text, Loaded, Prepared};
use super::ToolError;

/// Defaults and ceilings: a benchmark is bounded in count and time whatever is asked.
pub(crate) const DEFAULT_CALLS: u64 = 100_000;
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(5);
const MAX_CALLS: u64 = 10_000_000;
const MAX_DURATION: Duration = Duration::from_secs(600);

/// What a benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub calls: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Calls that failed (a benchmark of a failing plugin is reported, not hidden).
    pub failures: u64,
    /// The failures by kind (`timeout`, `trap`, …), in name order.
    pub failure_kinds: std::collections::BTreeMap<&'static str, u64>,
    pub memory_peak: u64,
}

impl Summary {
    pub fn calls_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.calls as f64 / secs
        } else {
            0.0
        }
    }
}

/// The `q`-quantile (0..=1) of sorted latencies, nearest rank; zero for none.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Calls `input` until `calls` or `duration` is reached (each capped).
pub(crate) fn bench(
    loaded: &Loaded,
    input: &Prepared,
    calls: u64,
    duration: Duration,
) -> Result<Summary, ToolError> {
    let calls = calls.clamp(1, MAX_CALLS);
    let duration = duration.min(MAX_DURATION);
    // One call before the clock starts: the first instance exists already (the load made
    // it), but its first call touches memory and code for the first time.
    let _ = loaded.call(input);
    let mut latencies = Vec::with_capacity(usize::try_from(calls.min(1 << 20)).unwrap_or(0));
    let mut failures = 0;
    let mut failure_kinds = std::collections::BTreeMap::new();
    let started = Instant::now();
    let until = started + duration;
    for _ in 0..calls {
        let t = Instant::now();
        let result = loaded.call(input);
        let now = Instant::now();
        latencies.push(now - t);
        if let Err(e) = result {
            failures += 1;
            *failure_kinds.entry(e.kind()).or_insert(0) += 1;
        }
        if now >= until {
            break;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Summary {
        calls: latencies.len() as u64,
        elapsed,
        p50: quantile(&latencies, 0.50),
        p90: quantile(&latencies, 0.90),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        failures,
        failure_kinds,
        memory_peak: loaded.memory_peak(),
    })
}

pub(crate) fn text(s: &Summary, cached: bool) -> String {
    let mut out = format!(
        "calls: {} in {} ({:.0} calls/s){}\n\
         latency: p50 {}  p90 {}  p99 {}  max {}\n\
         memory: {} (peak linear memory of the instance)\n",
        s.calls,
        duration_text(s.elapsed),
        s.calls_per_second(),
        if s.failures > 0 {
            let kinds: Vec<String> = s
                .failure_kinds
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            format!(", {} failed: {}", s.failures, kinds.join(", "))
        } else {
            String::new()
        },
        duration_text(s.p50),
        duration_text(s.p90),
        duration_text(s.p99),
        duration_text(s.max),
        bytes_text(s.memory_peak),
    );
    if cached {
        out.push_str(
            "note: the mapper says it is deterministic, so after the first call the answers come \
             from the mapper cache, as in the broker\n",
        );
    }
    out
}

pub(crate) fn json(s: &Summary, cached: bool) -> Value {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    json!({
        "calls": s.calls,
        "failures": s.failures,
        "failure_kinds": s.failure_kinds,
        "elapsed_s": s.elapsed.as_secs_f64(),
        "calls_per_s": s.calls_per_second(),
        "p50_us": us(s.p50),
        "p90_us": us(s.p90),
        "p99_us": us(s.p99),
        "max_us": us(s.max),
        "memory_peak_bytes": s.memory_peak,
        "cached": cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&sorted, 0.50), ms(50));
        assert_eq!(quantile(&sorted, 0.90), ms(90));
        assert_eq!(quantile(&sorted, 0.99), ms(99));
        assert_eq!(quantile(&sorted, 1.0), ms(100));
        assert_eq!(quantile(&[ms(7)], 0.99), ms(7));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn rate_is_calls_over_elapsed() {
        let s = Summary {
            calls: 500,
            elapsed: Duration::from_millis(250),
            p50: Duration::ZERO,
            p90: Duration::ZERO,
            p99: Duration::ZERO,
            max: Duration::ZERO,
            failures: 0,
            failure_kinds: Default::default(),
            memory_peak: 0,
        };
        assert!((s.calls_per_second() - 2000.0).abs() < 1e-9);
    }
}
