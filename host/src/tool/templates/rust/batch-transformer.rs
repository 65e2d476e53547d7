//! {{name}}: a natrium batch-transformer. Drops messages whose payload is bigger than
//! `max_bytes` (default 1024), reading only payload lengths: everything else passes without
//! ever being copied into the plugin.
//!
//! Configuration: `{"max_bytes": 1024}`.

use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Settings {
    #[serde(default = "default_max")]
    max_bytes: usize,
}

fn default_max() -> usize {
    1024
}

static SETTINGS: Config<Settings> = Config::new();

#[batch_transformer]
fn gate(_account: &str, batch: &Batch) -> Decisions {
    let mut d = Decisions::new();
    let max = match SETTINGS.get() {
        Ok(s) => s.max_bytes,
        Err(e) => {
            for i in 0..batch.len() {
                d.drop(i, format!("{{name}} misconfigured: {e}"));
            }
            return d;
        }
    };
    for i in 0..batch.len() {
        let len = batch.payload_len(i);
        if len > max {
            d.drop(i, format!("payload of {len} bytes is over the limit of {max}"));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use natrium_plugin_sdk::testing;

    #[test]
    fn drops_only_what_is_too_big() {
        testing::set_config(r#"{"max_bytes": 3}"#);
        let out = testing::run_batch(
            gate,
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
