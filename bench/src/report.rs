//! Result reporting: one human-readable line plus one JSON line.

use std::io::Write;

use serde_json::{Map, Value};

pub struct Report {
    pub human: String,
    pub json: Map<String, Value>,
}

impl Report {
    pub fn new(scenario: &str, label: String) -> Self {
        let mut json = Map::new();
        json.insert("scenario".into(), scenario.into());
        json.insert("label".into(), label.clone().into());
        Self { human: label, json }
    }

    /// Add a machine-readable field.
    pub fn field(&mut self, key: &str, v: impl Into<Value>) -> &mut Self {
        self.json.insert(key.into(), v.into());
        self
    }

    /// Append text to the human line.
    pub fn say(&mut self, s: &str) -> &mut Self {
        self.human.push_str(s);
        self
    }

    /// Print both lines. A closed stdout (e.g. piped into `head`) is not an
    /// error worth failing a finished benchmark for, so write errors are ignored.
    pub fn print(&self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", self.human);
        let _ = writeln!(out, "{}", Value::Object(self.json.clone()));
        let _ = out.flush();
    }
}

/// Round to 1 decimal for JSON readability.
pub fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `1234567.8` -> `"1,234,568"`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Payload megabytes (10^6 bytes) per second.
pub fn mb_per_sec(msgs: u64, size: usize, secs: f64) -> f64 {
    msgs as f64 * size as f64 / 1e6 / secs
}

/// Per-operation latencies (ns), reported as p50/p90/p99/max/mean in µs.
#[derive(Default)]
pub struct Latencies(pub Vec<u64>);

impl Latencies {
    /// Record the time since `t0`.
    pub fn since(&mut self, t0: std::time::Instant) {
        self.0
            .push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    /// The `q` quantile (0 < q <= 1, nearest rank) in µs; the values must be sorted.
    fn quantile_us(sorted: &[u64], q: f64) -> f64 {
        let n = sorted.len();
        let idx = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        sorted[idx] as f64 / 1000.0
    }

    /// Append "; <what> p50 … us" to the human line and the `p50_us`, `p90_us`, `p99_us`,
    /// `max_us` and `mean_us` fields (nothing when empty).
    pub fn report(mut self, r: &mut Report, what: &str) {
        if self.0.is_empty() {
            return;
        }
        self.0.sort_unstable();
        let v = &self.0;
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0;
        let [p50, p90, p99, max] = [0.5, 0.9, 0.99, 1.0].map(|q| Self::quantile_us(v, q));
        r.say(&format!(
            "; {what} p50 {p50:.1} us, p90 {p90:.1} us, p99 {p99:.1} us, max {max:.1} us"
        ));
        r.field("p50_us", r1(p50))
            .field("p90_us", r1(p90))
            .field("p99_us", r1(p99))
            .field("max_us", r1(max))
            .field("mean_us", r1(mean));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(Latencies::quantile_us(&v, 0.5), 50.0);
        assert_eq!(Latencies::quantile_us(&v, 0.99), 99.0);
        assert_eq!(Latencies::quantile_us(&v, 1.0), 100.0);
        assert_eq!(Latencies::quantile_us(&[7000], 0.5), 7.0);
        let mut r = Report::new("t", String::new());
        Latencies(vec![3000, 1000, 2000]).report(&mut r, "x");
        assert_eq!(r.json.get("p50_us"), Some(&Value::from(2.0)));
        assert_eq!(r.json.get("max_us"), Some(&Value::from(3.0)));
    }
}
