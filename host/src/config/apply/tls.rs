//! The client `tls {}` block.

use std::time::Duration;

use super::{boolean, invalid, map, path, seconds, unsupported};
use crate::config::value::{Entry, Value};
use crate::config::ConfigError;
use crate::options::{Options, TlsOptions};

/// nats-server's default TLS handshake timeout.
const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

const UNSUPPORTED_TLS: &[&str] = &[
    "verify_cert_and_check_known_urls",
    "cipher_suites",
    "curve_preferences",
    "insecure",
    "pinned_certs",
    "cert_store",
    "cert_match",
    "cert_match_by",
    "cert_match_skip_invalid",
    "ca_certs_match",
    "min_version",
    "ocsp_peer",
    "connection_rate_limit",
];

/// nats-server's fallback window for `handshake_first: auto`.
const AUTO_FALLBACK: Duration = Duration::from_millis(50);

/// `handshake_first`: a boolean, `auto`, or a duration (the fallback window), as in
/// nats-server 2.10.
fn handshake_first(key: &str, v: &Value) -> Result<(bool, Option<Duration>), ConfigError> {
    if let Some(b) = v.as_bool() {
        return Ok((b, None));
    }
    let Some(text) = v.as_str() else {
        return Err(invalid(
            key,
            v,
            "expected a boolean, \"auto\" or a duration",
        ));
    };
    match text.to_ascii_lowercase().as_str() {
        "true" | "on" => Ok((true, None)),
        "false" | "off" => Ok((false, None)),
        "auto" | "auto_fallback" => Ok((true, Some(AUTO_FALLBACK))),
        _ => match super::parse_duration(text) {
            Ok(window) => Ok((true, Some(window))),
            Err(_) => Err(invalid(
                key,
                v,
                format!("field \"{key}\"'s value \"{text}\" is invalid"),
            )),
        },
    }
}

pub(super) fn tls(e: &Entry, opts: &mut Options) -> Result<TlsOptions, ConfigError> {
    let map = map(&e.key, &e.value)?;
    let mut t = TlsOptions {
        timeout: DEFAULT_TLS_TIMEOUT,
        ..TlsOptions::default()
    };
    for sub in map {
        let key = sub.key.to_ascii_lowercase();
        let v = &sub.value;
        match key.as_str() {
            "cert_file" => t.cert_file = Some(path(&key, v)?),
            "key_file" => t.key_file = Some(path(&key, v)?),
            "ca_file" => t.ca_file = Some(path(&key, v)?),
            "verify" => t.verify = boolean(&key, v)?,
            // The certificate names the user; implies verification.
            "verify_and_map" => {
                t.verify_and_map = boolean(&key, v)?;
                if t.verify_and_map {
                    t.verify = true;
                }
            }
            "timeout" => t.timeout = seconds(&key, v)?,
            "handshake_first" | "first" | "immediate" => {
                (t.handshake_first, t.handshake_first_fallback) = handshake_first(&key, v)?
            }
            k if UNSUPPORTED_TLS.contains(&k) => {
                unsupported(opts, &format!("{}.{}", e.key, sub.key), &sub.key_pos)
            }
            _ => {
                return Err(ConfigError::Syntax {
                    pos: sub.key_pos.clone(),
                    msg: format!("error parsing tls config, unknown field [\"{}\"]", sub.key),
                })
            }
        }
    }
    if t.cert_file.is_none() {
        return Err(invalid(
            &e.key,
            &e.value,
            "missing 'cert_file' in TLS configuration",
        ));
    }
    if t.key_file.is_none() {
        return Err(invalid(
            &e.key,
            &e.value,
            "missing 'key_file' in TLS configuration",
        ));
    }
    Ok(t)
}
