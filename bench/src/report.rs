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
