//! The INFO a client receives, the ports file, and server identifiers.

use super::{Client, Server, PROTOCOL_VERSION};
use crate::options::Options;
use serde_json::{json, Map, Value};

/// The INFO fields every client gets (kept in the core, see `Core::info_base`).
pub(crate) fn base(server: &Server, opts: &Options) -> Map<String, Value> {
    let port = server.client_addr().map_or(0, |a| a.port());
    let mut m = Map::new();
    m.insert("server_id".into(), json!(server.id));
    m.insert("server_name".into(), json!(server.name));
    m.insert("version".into(), json!(PROTOCOL_VERSION));
    m.insert("proto".into(), json!(1));
    m.insert("go".into(), json!("go1.21.0"));
    m.insert("host".into(), json!(opts.listen.host));
    m.insert("port".into(), json!(port));
    m.insert("headers".into(), json!(true));
    if server.jetstream.is_some() {
        m.insert("jetstream".into(), json!(true));
    }
    if server.auth_required(opts) {
        m.insert("auth_required".into(), json!(true));
    }
    if let Some(tls) = &opts.tls {
        if opts.allow_non_tls {
            m.insert("tls_available".into(), json!(true));
        } else {
            m.insert("tls_required".into(), json!(true));
        }
        if tls.verify {
            m.insert("tls_verify".into(), json!(true));
        }
    }
    m.insert("max_payload".into(), json!(opts.limits.max_payload));
    if opts.auth.callout.as_ref().is_some_and(|c| c.xkey.is_some()) {
        // nats-server 2.10 announces the key its callout requests are sealed with.
        m.insert("xkey".into(), json!(server.keys.xkey()));
    }
    m
}

/// INFO for one client connection, as JSON bytes.
pub(crate) fn client_info(server: &Server, client: &Client, nonce: Option<&str>) -> Vec<u8> {
    let mut m = (*server.info_base()).clone();
    m.insert("client_id".into(), json!(client.id));
    m.insert("client_ip".into(), json!(client.addr.ip().to_string()));
    if let Some(n) = nonce {
        m.insert("nonce".into(), json!(n));
    }
    if server.is_lame_duck() {
        m.insert("ldm".into(), json!(true));
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// INFO announcing lame-duck mode to connected clients.
pub(crate) fn lame_duck_info(server: &Server, opts: &Options) -> Vec<u8> {
    let mut m = base(server, opts);
    m.insert("ldm".into(), json!(true));
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// The `--ports_file_dir` file: the URLs each listener can be reached on.
pub(crate) fn ports_json(server: &Server, opts: &Options) -> String {
    let url = |scheme: &str, host: &str, port: u16| {
        let host = if host == "0.0.0.0" || host.is_empty() {
            "127.0.0.1"
        } else {
            host
        };
        format!("{scheme}://{host}:{port}")
    };
    let scheme = if opts.tls.is_some() { "tls" } else { "nats" };
    let nats: Vec<String> = server
        .client_addr()
        .map(|a| url(scheme, &opts.listen.host, a.port()))
        .into_iter()
        .collect();
    let monitoring: Vec<String> = server
        .http_addr()
        .map(|a| {
            let host = if opts.listen.http_host.is_empty() {
                &opts.listen.host
            } else {
                &opts.listen.http_host
            };
            url("http", host, a.port())
        })
        .into_iter()
        .collect();
    let mut m = Map::new();
    m.insert("nats".into(), json!(nats));
    if !monitoring.is_empty() {
        m.insert("monitoring".into(), json!(monitoring));
    }
    serde_json::to_string(&Value::Object(m)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_id_is_a_server_nkey() {
        let id = crate::auth::callout::ServerKeys::generate().id();
        assert_eq!(id.len(), 56);
        assert!(crate::auth::nkeys::is_valid_public_key(
            &id,
            crate::auth::nkeys::KeyKind::Server
        ));
        assert_ne!(id, crate::auth::callout::ServerKeys::generate().id());
    }
}
