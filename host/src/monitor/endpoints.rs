//! The monitoring documents. Field names follow nats-server's JSON so existing tools read them.

use super::http::{Request, Response};
use super::ReqStats;
use crate::server::{Client, Server, NATRIUM_VERSION, PROTOCOL_VERSION};
use crate::timefmt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DEFAULT_LIMIT: usize = 1024;

pub fn route(server: &Server, stats: &ReqStats, req: &Request) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "Method Not Allowed\n");
    }
    let known = [
        "",
        "/varz",
        "/connz",
        "/subsz",
        "/subscriptionsz",
        "/healthz",
        "/metrics",
        "/jsz",
    ];
    if known.contains(&req.path.as_str()) {
        let key = if req.path.is_empty() {
            "/"
        } else {
            req.path.as_str()
        };
        *stats.lock().entry(key.to_string()).or_insert(0) += 1;
    }
    match req.path.as_str() {
        "" => Response::json(200, &index()),
        "/varz" => {
            let mut v = varz(server);
            v["http_req_stats"] = json!(*stats.lock());
            v["plugins"] = serde_json::to_value(server.plugin_stats()).unwrap_or_default();
            Response::json(200, &v)
        }
        "/connz" => Response::json(200, &connz(server, req)),
        "/subsz" | "/subscriptionsz" => Response::json(200, &subsz(server, req)),
        "/healthz" => Response::json(200, &json!({"status": "ok"})),
        "/jsz" => Response::json(200, &jsz(server, req)),
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: metrics(server).into_bytes(),
        },
        _ => Response::text(404, "404 page not found\n"),
    }
}

fn index() -> Value {
    json!({
        "varz": "/varz", "connz": "/connz", "subsz": "/subsz", "healthz": "/healthz",
        "metrics": "/metrics", "jsz": "/jsz"
    })
}

/// `/jsz`: JetStream configuration and usage; `?streams=true` (or `accounts=true`) adds
/// per-account stream details, `?consumers=true` their consumers too.
fn jsz(server: &Server, req: &Request) -> Value {
    let Some(js) = &server.jetstream else {
        return json!({
            "server_id": server.id,
            "now": timefmt::rfc3339(SystemTime::now()),
            "disabled": true,
        });
    };
    let on = |k: &str| req.query.get(k).is_some_and(|v| v == "true" || v == "1");
    js.jsz(&server.id, on("streams") || on("accounts"), on("consumers"))
}

/// Resident memory of this process in bytes, from /proc.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Average CPU use since start, in percent of one core (nats-server reports `ps` pcpu).
fn cpu_percent(start: SystemTime) -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some(utime + stime)
        });
    let elapsed = start.elapsed().unwrap_or_default().as_secs_f64();
    match ticks {
        Some(t) if elapsed > 0.0 => ((t / 100.0) / elapsed * 1000.0).round() / 10.0,
        _ => 0.0,
    }
}

fn varz(server: &Server) -> Value {
    let o = server.options();
    let now = SystemTime::now();
    let s = &server.stats;
    let port = server.client_addr().map_or(0, |a| a.port());
    let http_port = server.http_addr().map_or(0, |a| a.port());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({
        "server_id": server.id,
        "server_name": server.name,
        "version": PROTOCOL_VERSION,
        "natrium_version": NATRIUM_VERSION,
        "proto": 1,
        "go": "go1.21.0",
        "host": o.listen.host,
        "port": port,
        "auth_required": o.auth_required(),
        "tls_required": o.tls.is_some(),
        "tls_verify": o.tls.as_ref().is_some_and(|t| t.verify),
        "max_connections": o.limits.max_connections,
        "ping_interval": o.limits.ping_interval.as_nanos() as u64,
        "ping_max": o.limits.max_pings_out,
        "http_host": o.listen.http_host,
        "http_port": http_port,
        "http_base_path": "",
        "https_port": 0,
        "auth_timeout": o.limits.auth_timeout.as_secs_f64(),
        "max_control_line": o.limits.max_control_line,
        "max_payload": o.limits.max_payload,
        "max_pending": o.limits.max_pending,
        "cluster": {},
        "gateway": {},
        "leaf": {},
        "mqtt": {},
        "websocket": {},
        "jetstream": server.jetstream.as_ref().map_or(json!({}), |js| {
            let z = js.jsz(&server.id, false, false);
            json!({
                "config": z["config"],
                "stats": {
                    "memory": z["memory"],
                    "storage": z["storage"],
                    "accounts": z["accounts"],
                    "api": z["api"],
                },
            })
        }),
        "tls_timeout": o.tls.as_ref().map_or(0.0, |t| t.timeout.as_secs_f64()),
        "write_deadline": o.limits.write_deadline.as_nanos() as u64,
        "start": timefmt::rfc3339(server.start),
        "now": timefmt::rfc3339(now),
        "uptime": timefmt::uptime(now.duration_since(server.start).unwrap_or_default()),
        "mem": rss_bytes(),
        "cores": cores,
        "gomaxprocs": cores,
        "cpu": cpu_percent(server.start),
        "connections": server.num_clients(),
        "total_connections": s.total_connections.load(Ordering::Relaxed),
        "routes": 0,
        "remotes": 0,
        "leafnodes": 0,
        "in_msgs": s.in_msgs.load(Ordering::Relaxed),
        "out_msgs": s.out_msgs.load(Ordering::Relaxed),
        "in_bytes": s.in_bytes.load(Ordering::Relaxed),
        "out_bytes": s.out_bytes.load(Ordering::Relaxed),
        "slow_consumers": s.slow_consumers.load(Ordering::Relaxed),
        // natrium's own (nats-server 2.9/2.10 count none): CONNECTs refused for their
        // credentials.
        "auth_failures": s.auth_failures.load(Ordering::Relaxed),
        "subscriptions": server.num_subscriptions(),
        "http_req_stats": {},
        "config_load_time": timefmt::rfc3339(server.start),
        "server_tags": o.server_tags,
        "system_account": server.system_account_name(),
    })
}

fn nanos_to_time(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

fn conn_json(c: &Client, now: SystemTime, subs: bool) -> Value {
    let meta = c.meta();
    let (in_msgs, in_bytes) = c.in_stats();
    let (out_msgs, out_bytes) = c.out_stats();
    let last = nanos_to_time(c.last_activity_nanos());
    let list = c.subscriptions();
    let mut v = json!({
        "cid": c.id,
        "kind": "Client",
        "type": "nats",
        "ip": c.addr.ip().to_string(),
        "port": c.addr.port(),
        "start": timefmt::rfc3339(c.start),
        "last_activity": timefmt::rfc3339(last),
        "rtt": timefmt::go_duration(c.rtt()),
        "uptime": timefmt::uptime(now.duration_since(c.start).unwrap_or_default()),
        "idle": timefmt::uptime(now.duration_since(last).unwrap_or_default()),
        "pending_bytes": c.pending_bytes(),
        "in_msgs": in_msgs,
        "out_msgs": out_msgs,
        "in_bytes": in_bytes,
        "out_bytes": out_bytes,
        "subscriptions": list.len(),
        "name": meta.name,
        "lang": meta.lang,
        "version": meta.version,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(tls) = meta.tls_version {
            obj.insert("tls_version".into(), json!(tls));
        }
        if let Some(user) = meta.user {
            obj.insert("authorized_user".into(), json!(user));
        }
        if !meta.account.is_empty() {
            obj.insert("account".into(), json!(meta.account));
        }
        if subs {
            let mut names: Vec<String> = list
                .iter()
                .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
                .collect();
            names.sort();
            obj.insert("subscriptions_list".into(), json!(names));
        }
    }
    v
}

fn connz(server: &Server, req: &Request) -> Value {
    let now = SystemTime::now();
    let mut clients: Vec<Arc<Client>> = server.clients();
    let sort = req.query.get("sort").map_or("cid", String::as_str);
    let key = |c: &Arc<Client>| -> i128 {
        match sort {
            "start" => c
                .start
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128),
            "subs" => -(c.subscriptions().len() as i128),
            "pending" => -(c.pending_bytes() as i128),
            "msgs_to" => -(c.out_stats().0 as i128),
            "msgs_from" => -(c.in_stats().0 as i128),
            "bytes_to" => -(c.out_stats().1 as i128),
            "bytes_from" => -(c.in_stats().1 as i128),
            "last" => -(c.last_activity_nanos() as i128),
            "idle" => c.last_activity_nanos() as i128,
            "uptime" => c
                .start
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128),
            _ => c.id as i128,
        }
    };
    clients.sort_by_key(|c| (key(c), c.id));
    let total = clients.len();
    let offset = req.number("offset").unwrap_or(0);
    let limit = req.number("limit").unwrap_or(DEFAULT_LIMIT);
    let subs = req.flag("subs");
    let page: Vec<Value> = clients
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| conn_json(c, now, subs))
        .collect();
    json!({
        "server_id": server.id,
        "now": timefmt::rfc3339(now),
        "num_connections": page.len(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": page,
    })
}

fn subsz(server: &Server, req: &Request) -> Value {
    let now = SystemTime::now();
    let mut v = json!({
        "server_id": server.id,
        "now": timefmt::rfc3339(now),
        "num_subscriptions": server.num_subscriptions(),
        "num_cache": 0,
        "num_inserts": 0,
        "num_removes": 0,
        "num_matches": 0,
        "cache_hit_rate": 0.0,
        "max_fanout": 0,
        "avg_fanout": 0.0,
    });
    if req.flag("subs") {
        let test = req.query.get("test").cloned();
        let mut subs: Vec<Value> = server
            .all_subscriptions()
            .iter()
            .filter(|s| {
                test.as_deref()
                    .is_none_or(|t| crate::subject::matches(&s.subject, t.as_bytes()))
            })
            .map(|s| {
                json!({
                    "account": &*s.account,
                    "subject": String::from_utf8_lossy(&s.subject),
                    "qgroup": s.queue.as_ref().map(|q| String::from_utf8_lossy(q).into_owned()),
                    "sid": String::from_utf8_lossy(&s.sid),
                    "msgs": s.delivered(),
                    "max": s.max(),
                    "cid": s.client.id,
                })
            })
            .collect();
        subs.sort_by(|a, b| a["cid"].as_u64().cmp(&b["cid"].as_u64()));
        let total = subs.len();
        let offset = req.number("offset").unwrap_or(0);
        let limit = req.number("limit").unwrap_or(DEFAULT_LIMIT);
        let page: Vec<Value> = subs.into_iter().skip(offset).take(limit).collect();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("total".into(), json!(total));
            obj.insert("offset".into(), json!(offset));
            obj.insert("limit".into(), json!(limit));
            obj.insert("subscriptions_list".into(), json!(page));
        }
    }
    v
}

/// Prometheus text exposition of the server counters and gauges.
fn metrics(server: &Server) -> String {
    use std::fmt::Write;
    let s = &server.stats;
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP natrium_{name} {help}");
        let _ = writeln!(out, "# TYPE natrium_{name} {kind}");
        let _ = writeln!(out, "natrium_{name}{{server_id=\"{}\"}} {value}", server.id);
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    put(
        "connections",
        "gauge",
        "Current client connections.",
        server.num_clients() as f64,
    );
    put(
        "total_connections",
        "counter",
        "Client connections accepted since start.",
        load(&s.total_connections),
    );
    put(
        "subscriptions",
        "gauge",
        "Current subscriptions.",
        server.num_subscriptions() as f64,
    );
    put(
        "in_msgs_total",
        "counter",
        "Messages received from clients.",
        load(&s.in_msgs),
    );
    put(
        "out_msgs_total",
        "counter",
        "Messages delivered to clients.",
        load(&s.out_msgs),
    );
    put(
        "in_bytes_total",
        "counter",
        "Payload bytes received from clients.",
        load(&s.in_bytes),
    );
    put(
        "out_bytes_total",
        "counter",
        "Payload bytes delivered to clients.",
        load(&s.out_bytes),
    );
    put(
        "slow_consumers_total",
        "counter",
        "Clients disconnected as slow consumers.",
        load(&s.slow_consumers),
    );
    put(
        "auth_failures_total",
        "counter",
        "CONNECTs refused for their credentials (or by an authorizer plugin).",
        load(&s.auth_failures),
    );
    put(
        "memory_bytes",
        "gauge",
        "Resident memory of the server process.",
        rss_bytes() as f64,
    );
    put(
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        server.start.elapsed().unwrap_or_default().as_secs_f64(),
    );
    for p in server.plugin_stats() {
        let e = &p.errors;
        let labels = format!(
            "server_id=\"{}\",plugin=\"{}\",role=\"{}\"",
            server.id, p.name, p.role
        );
        let _ = writeln!(out, "natrium_plugin_calls_total{{{labels}}} {}", p.calls);
        let h = &p.latency;
        let bounds = crate::plugin::LATENCY_BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(std::iter::once("+Inf".to_string()));
        for (le, n) in bounds.zip(&h.cumulative) {
            let _ = writeln!(
                out,
                "natrium_plugin_call_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "natrium_plugin_call_seconds_sum{{{labels}}} {}",
            h.sum_seconds
        );
        let _ = writeln!(
            out,
            "natrium_plugin_call_seconds_count{{{labels}}} {}",
            h.cumulative.last().copied().unwrap_or(0)
        );
        let o = &p.outcomes;
        for (outcome, n) in [
            ("pass", o.pass),
            ("replace", o.replace),
            ("drop", o.drop),
            ("reject", o.reject),
            ("allow", o.allow),
            ("deny", o.deny),
        ] {
            let _ = writeln!(
                out,
                "natrium_plugin_outcomes_total{{{labels},outcome=\"{outcome}\"}} {n}"
            );
        }
        for (kind, n) in [
            ("trap", e.trap),
            ("timeout", e.timeout),
            ("out_of_memory", e.out_of_memory),
            ("malformed", e.malformed),
            ("instantiation", e.instantiation),
            ("busy", e.busy),
        ] {
            let _ = writeln!(
                out,
                "natrium_plugin_errors_total{{{labels},kind=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "natrium_plugin_instances_recycled_total{{{labels}}} {}",
            p.instances_recycled
        );
    }
    out
}
