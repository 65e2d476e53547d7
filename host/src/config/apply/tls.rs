//! The client `tls {}` block.

use std::time::Duration;

use super::{boolean, invalid, map, path, seconds, unsupported};
use crate::config::value::Entry;
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
            "handshake_first" | "first" | "immediate" => t.handshake_first = boolean(&key, v)?,
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
