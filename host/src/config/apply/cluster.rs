//! `cluster { name, listen, host, port, routes }`.

use super::{host_port, map, string, strings, unknown, unsupported};
use crate::config::value::Entry;
use crate::config::ConfigError;
use crate::options::Options;

const UNSUPPORTED_CLUSTER: &[&str] = &[
    "authorization",
    "advertise",
    "cluster_advertise",
    "no_advertise",
    "connect_retries",
    "connect_backoff",
    "permissions",
    "tls",
    "pool_size",
    "compression",
    "accounts",
    "pinned_accounts",
    "ping_interval",
    "ping_max",
    "write_deadline",
];

pub(super) fn cluster(e: &Entry, opts: &mut Options) -> Result<(), ConfigError> {
    let map = map(&e.key, &e.value)?;
    let (mut host, mut port) = (None, None);
    for sub in map {
        let key = sub.key.to_ascii_lowercase();
        let v = &sub.value;
        match key.as_str() {
            "name" => opts.cluster.name = Some(string(&key, v)?),
            "listen" => {
                let (h, p) = host_port(&key, v)?;
                host = h.or(host);
                port = Some(p);
            }
            "host" | "net" => host = Some(string(&key, v)?),
            "port" => port = Some(super::port(&key, v)?),
            "routes" => opts.cluster.routes = strings(&key, v)?,
            k if UNSUPPORTED_CLUSTER.contains(&k) => {
                unsupported(opts, &format!("{}.{}", e.key, sub.key), &sub.key_pos)
            }
            _ => return Err(unknown(sub)),
        }
    }
    if host.is_some() || port.is_some() {
        let host = host.unwrap_or_else(|| "0.0.0.0".to_string());
        let port = port.unwrap_or(6222);
        opts.cluster.listen = Some(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        });
    }
    Ok(())
}
