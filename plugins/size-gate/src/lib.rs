//! Size gate: refuses messages whose payload is larger than a limit, per subject prefix.
//!
//! Written as a `batch-transformer`: the broker hands over a read's worth of messages in one
//! call and the plugin asks only for each payload's length (and the subject when there are
//! per-prefix limits), so nothing is copied and a passing message costs almost nothing.
//!
//! Configuration (JSON from the binding):
//! ```json
//! { "max_bytes": 65536, "prefixes": { "telemetry.": 512 } }
//! ```
//! The first matching prefix wins, otherwise `max_bytes` applies (default 1 MiB). An oversized
//! message is dropped with a reason; with `on_failure: reject` the publisher gets it as an
//! `-ERR`.

use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Settings {
    #[serde(default = "default_max")]
    max_bytes: usize,
    #[serde(default)]
    prefixes: BTreeMap<String, usize>,
}

fn default_max() -> usize {
    1 << 20
}

static SETTINGS: Config<Settings> = Config::new();

/// The limit for `subject` (only asked for when there are prefixes).
fn limit(settings: &Settings, subject: impl FnOnce() -> String) -> usize {
    if settings.prefixes.is_empty() {
        return settings.max_bytes;
    }
    let subject = subject();
    settings
        .prefixes
        .iter()
        .find(|(p, _)| subject.starts_with(p.as_str()))
        .map_or(settings.max_bytes, |(_, max)| *max)
}

#[batch_transformer]
fn size_gate(_account: &str, batch: &Batch) -> Decisions {
    let mut d = Decisions::new();
    let settings = match SETTINGS.get() {
        Ok(s) => s,
        Err(e) => {
            // A broken configuration lets nothing through: fail closed, say why.
            for i in 0..batch.len() {
                d.drop(i, e.message());
            }
            return d;
        }
    };
    for i in 0..batch.len() {
        let len = batch.payload_len(i);
        let max = limit(settings, || batch.subject(i));
        if len > max {
            d.drop(
                i,
                format!("payload of {len} bytes is over the limit of {max}"),
            );
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use natrium_plugin_sdk::testing;

    #[test]
    fn prefixes_then_default() {
        let s = Settings {
            max_bytes: 10,
            prefixes: [("t.".to_string(), 2)].into_iter().collect(),
        };
        assert_eq!(limit(&s, || "t.x".into()), 2);
        assert_eq!(limit(&s, || "u.x".into()), 10);
    }

    #[test]
    fn drops_only_what_is_too_big() {
        testing::set_config(r#"{"max_bytes": 3}"#);
        let out = testing::run_batch(
            size_gate,
            "A",
            vec![
                Message::new("a", b"abc".to_vec()),
                Message::new("a", b"abcd".to_vec()),
            ],
        );
        assert_eq!(out[0], Outcome::Pass);
        assert_eq!(
            out[1],
            Outcome::Drop("payload of 4 bytes is over the limit of 3".into())
        );
    }
}
