//! `jetstream: enabled` or `jetstream { store_dir, max_memory_store, ... }`.

use std::time::Duration;

use super::{boolean, duration_str, int, invalid, path, string, unknown, unsupported};
use crate::config::value::{Entry, Kind, Value};
use crate::config::ConfigError;
use crate::options::Options;

const UNSUPPORTED_JETSTREAM: &[&str] = &[
    "key",
    "ek",
    "encryption_key",
    "prev_key",
    "prev_ek",
    "prev_encryption_key",
    "cipher",
    "extension_hint",
    "limits",
    "unique_tag",
    "max_outstanding_catchup",
    "max_buffered_msgs",
    "max_buffered_size",
    "request_queue_limit",
    "tpm",
    "compress_ok",
    "max_ack_pending",
    "max_ha_assets",
];

pub(super) fn jetstream(e: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let v = &e.value;
    match &v.kind {
        Kind::Bool(b) => opts.jetstream.enabled = *b,
        Kind::String(s) => {
            opts.jetstream.enabled = match s.to_ascii_lowercase().as_str() {
                "enable" | "enabled" | "true" => true,
                "disable" | "disabled" | "false" => false,
                _ => {
                    return Err(invalid(
                        &e.key,
                        v,
                        format!("expected 'enabled' or 'disabled', got \"{s}\""),
                    ))
                }
            }
        }
        Kind::Map(map) => {
            opts.jetstream.enabled = true;
            for sub in map {
                let key = sub.key.to_ascii_lowercase();
                match key.as_str() {
                    "store_dir" | "storedir" | "store" => {
                        opts.jetstream.store_dir = Some(path(&key, &sub.value)?)
                    }
                    "enabled" | "enable" => opts.jetstream.enabled = boolean(&key, &sub.value)?,
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        opts.jetstream.max_memory = Some(js_size(&key, &sub.value)?)
                    }
                    "max_file_store" | "max_file" => {
                        opts.jetstream.max_storage = Some(js_size(&key, &sub.value)?)
                    }
                    "domain" => opts.jetstream.domain = Some(string(&key, &sub.value)?),
                    // Single server: strict API checking is what natrium always does.
                    "strict" => {
                        boolean(&key, &sub.value)?;
                    }
                    "sync_interval" | "sync" => {
                        opts.jetstream.sync_interval = Some(match sub.value.as_str() {
                            Some(s) if s.eq_ignore_ascii_case("always") => Duration::ZERO,
                            _ => {
                                let d = duration_str(&key, &sub.value)?;
                                if d.is_zero() {
                                    return Err(invalid(&key, &sub.value, "must be positive"));
                                }
                                d
                            }
                        })
                    }
                    k if UNSUPPORTED_JETSTREAM.contains(&k) => {
                        unsupported(opts, &format!("{}.{}", e.key, sub.key), &sub.key_pos)
                    }
                    _ => return Err(unknown(sub)),
                }
            }
        }
        other => {
            return Err(invalid(
                &e.key,
                v,
                format!("expected a boolean or a map, got {}", other.type_name()),
            ))
        }
    }
    Ok(())
}

/// A JetStream storage size: a number of bytes (size suffixes allowed); negative = unlimited.
fn js_size(key: &str, v: &Value) -> Result<i64, ConfigError> {
    let n = int(key, v)?;
    Ok(if n < 0 { -1 } else { n })
}
