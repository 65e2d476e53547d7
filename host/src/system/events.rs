//! System events, published into the system account's subject space (so only system-account
//! users see them), with nats-server's JSON shapes:
//!
//! - `$SYS.ACCOUNT.<account>.CONNECT`: `io.nats.server.advisory.v1.client_connect`, when a
//!   client is admitted into an account;
//! - `$SYS.ACCOUNT.<account>.DISCONNECT`: `io.nats.server.advisory.v1.client_disconnect`, when
//!   an admitted client goes away (with its message counts and the close reason);
//! - `$SYS.SERVER.<id>.STATSZ`: the server's statistics, every [`STATSZ_INTERVAL`] and in
//!   reply to `$SYS.REQ.SERVER.PING` (see `requests`).
//!
//! `$SYS.REQ.USER.INFO` replies are built here too ([`user_info`]).

use crate::auth::permissions::{Permissions, SubjectPermission};
use crate::client::{Client, CloseReason};
use crate::path::Core;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Connect and disconnect advisories, as the message path reports them.
pub struct Advisories;

impl crate::path::Events for Advisories {
    fn connected(&self, core: &Core, client: &Client, account: &str) {
        client_connect(core, client, account);
    }
    fn disconnected(&self, core: &Core, client: &Client, account: &str, reason: CloseReason) {
        client_disconnect(core, client, account, reason);
    }
    fn plugin_decision(&self, core: &Core, audit: &crate::path::PluginAudit<'_>) {
        plugin_decision(core, audit);
    }
}

/// How often STATSZ is published.
pub const STATSZ_INTERVAL: Duration = Duration::from_secs(10);

const CONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_connect";
const DISCONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_disconnect";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The `server` object of every event and response; `seq` counts them.
pub fn server_info(server: &Core) -> Value {
    let opts = server.options();
    json!({
        "name": server.name,
        "host": opts.listen.host,
        "id": server.id,
        "ver": crate::server::PROTOCOL_VERSION,
        "seq": SEQ.fetch_add(1, Ordering::Relaxed) + 1,
        "jetstream": server.jetstream.is_some(),
        "time": crate::timefmt::rfc3339(SystemTime::now()),
    })
}

/// A unique event id (22 base62 characters, like nats-server's NUIDs).
fn now() -> String {
    crate::timefmt::rfc3339(SystemTime::now())
}

fn publish(server: &Core, subject: &str, body: &Value) {
    match serde_json::to_vec(body) {
        Ok(payload) => server.publish_system(subject, &payload),
        Err(e) => tracing::warn!("cannot encode system event {subject}: {e}"),
    }
}

/// `$SYS.ACCOUNT.<account>.CONNECT` for a client just admitted into `account`.
pub fn client_connect(server: &Core, client: &Client, account: &str) {
    if !server.system_has_subscribers() {
        return;
    }
    let body = json!({
        "type": CONNECT_TYPE,
        "id": crate::util::event_id(),
        "timestamp": now(),
        "server": server_info(server),
        "client": client.event_info(None),
    });
    publish(server, &format!("$SYS.ACCOUNT.{account}.CONNECT"), &body);
}

/// `$SYS.ACCOUNT.<account>.DISCONNECT` for an admitted client that went away. `sent` is what
/// the client published, `received` what was delivered to it (nats-server's view).
pub fn client_disconnect(server: &Core, client: &Client, account: &str, reason: CloseReason) {
    if !server.system_has_subscribers() {
        return;
    }
    let stop = SystemTime::now();
    let (in_msgs, in_bytes) = client.in_stats();
    let (out_msgs, out_bytes) = client.out_stats();
    let body = json!({
        "type": DISCONNECT_TYPE,
        "id": crate::util::event_id(),
        "timestamp": crate::timefmt::rfc3339(stop),
        "server": server_info(server),
        "client": client.event_info(Some(stop)),
        "sent": {"msgs": in_msgs, "bytes": in_bytes},
        "received": {"msgs": out_msgs, "bytes": out_bytes},
        "reason": reason.as_str(),
    });
    publish(server, &format!("$SYS.ACCOUNT.{account}.DISCONNECT"), &body);
}

/// Resident memory of this process in bytes (0 where unknown).
fn resident_memory() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The STATSZ message: `{"server":{..},"statsz":{..}}`.
pub fn statsz(server: &Core) -> Vec<u8> {
    let s = &server.stats;
    let active_accounts = server
        .accounts
        .all()
        .iter()
        .filter(|a| a.num_connections() > 0)
        .count();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let body = json!({
        "server": server_info(server),
        "statsz": {
            "start": crate::timefmt::rfc3339(server.start),
            "mem": resident_memory(),
            "cores": cores,
            "cpu": 0,
            "connections": server.num_clients(),
            "total_connections": s.total_connections.load(Ordering::Relaxed),
            "active_accounts": active_accounts,
            "subscriptions": server.num_subscriptions(),
            "sent": {
                "msgs": s.out_msgs.load(Ordering::Relaxed),
                "bytes": s.out_bytes.load(Ordering::Relaxed),
            },
            "received": {
                "msgs": s.in_msgs.load(Ordering::Relaxed),
                "bytes": s.in_bytes.load(Ordering::Relaxed),
            },
            "slow_consumers": s.slow_consumers.load(Ordering::Relaxed),
            "active_servers": 1,
        },
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Publishes STATSZ every [`STATSZ_INTERVAL`] until shutdown.
pub async fn statsz_loop(
    server: std::sync::Arc<crate::server::Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + STATSZ_INTERVAL,
        STATSZ_INTERVAL,
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !server.system_has_subscribers() {
                    continue;
                }
                let subject = format!("$SYS.SERVER.{}.STATSZ", server.id);
                let payload = statsz(&server);
                server.publish_system(&subject, &payload);
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

fn subject_permission(p: &Option<SubjectPermission>) -> Value {
    match p {
        None => Value::Null,
        Some(p) => {
            let mut m = Map::new();
            if let Some(a) = p.allow.as_ref().filter(|a| !a.is_empty()) {
                m.insert("allow".into(), json!(a));
            }
            if let Some(d) = p.deny.as_ref().filter(|d| !d.is_empty()) {
                m.insert("deny".into(), json!(d));
            }
            Value::Object(m)
        }
    }
}

/// The reply to `$SYS.REQ.USER.INFO`:
/// `{"server":{..},"data":{"user":..,"account":..,"permissions":{..}}}` (no `permissions`
/// for an unrestricted user), as nats-server 2.10 sends it.
pub fn user_info(server: &Core, client: &Client, perms: Option<&Permissions>) -> Vec<u8> {
    let meta = client.meta();
    let mut data = Map::new();
    data.insert("user".into(), json!(meta.user.unwrap_or_default()));
    data.insert("account".into(), json!(meta.account));
    if let Some(p) = perms {
        let spec = p.spec();
        let mut pm = Map::new();
        pm.insert("publish".into(), subject_permission(&spec.publish));
        pm.insert("subscribe".into(), subject_permission(&spec.subscribe));
        if let Some(r) = &spec.response {
            pm.insert(
                "responses".into(),
                json!({
                    "max": r.max_msgs,
                    "ttl": u64::try_from(r.expires.as_nanos()).unwrap_or(u64::MAX),
                }),
            );
        }
        data.insert("permissions".into(), Value::Object(pm));
    }
    let body = json!({"server": server_info(server), "data": Value::Object(data)});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Longest reason an audit event carries (plugins may return megabytes).
const MAX_AUDIT_REASON: usize = 1024;

/// `$SYS.PLUGIN.<plugin>.<OUTCOME>`: a plugin denied a connection, or dropped or rejected a
/// message (subject, account, user and reason; never the payload), for a compliance
/// consumer to watch or store in a stream.
pub fn plugin_decision(server: &Core, audit: &crate::path::PluginAudit<'_>) {
    if !server.system_has_subscribers() {
        return;
    }
    let token: String = audit
        .plugin
        .chars()
        .map(|c| {
            if matches!(c, '.' | '*' | '>') || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let subject = format!("$SYS.PLUGIN.{token}.{}", audit.outcome.to_ascii_uppercase());
    let reason: String = audit.reason.chars().take(MAX_AUDIT_REASON).collect();
    let mut body = json!({
        "type": "io.natrium.plugin.v1.decision",
        "id": crate::util::event_id(),
        "timestamp": now(),
        "server": server_info(server),
        "plugin": audit.plugin,
        "role": audit.role,
        "outcome": audit.outcome,
        "account": audit.account,
        "client": audit.client.event_info(None),
        "reason": reason,
    });
    if let Some(u) = audit.user {
        body["user"] = json!(u);
    }
    if !audit.subject.is_empty() {
        body["subject"] = json!(audit.subject);
    }
    publish(server, &subject, &body);
}
