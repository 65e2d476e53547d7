//! `js-ordered`: an ordered consumer's throughput, made as nats.go and async-nats make one: an
//! ephemeral push consumer created with `$JS.API.CONSUMER.CREATE.<stream>` (the server names
//! it) and
//!
//! ```text
//! {"deliver_subject":<inbox>.push.deliver,"deliver_policy":"all","ack_policy":"none",
//!  "ack_wait":22h,"max_deliver":1,"flow_control":true,"idle_heartbeat":5s,
//!  "inactive_threshold":30s,"num_replicas":1,"mem_storage":true,"replay_policy":"instant"}
//! ```
//!
//! consumed by the loop of `js-push` ([`super::jspush`]): fill, subscribe first, answer flow
//! control, no acks. What an ordered consumer checks is checked: the consumer sequence in each
//! ack subject goes up by exactly one, and a heartbeat's `Nats-Last-Consumer` equals the last
//! one received. A client would recreate the consumer after a gap; here a gap fails the run.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::jspush::{measure, Spec};
use crate::cli::Args;
use crate::report::Report;

/// async-nats's ordered consumer settings.
const ACK_WAIT: Duration = Duration::from_secs(22 * 60 * 60);
const HEARTBEAT: Duration = Duration::from_secs(5);
const INACTIVE_THRESHOLD: Duration = Duration::from_secs(30);

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let ns = |d: Duration| d.as_nanos() as u64;
    let out = measure(a, addr, "bench-js-ordered", |deliver| Spec {
        create_subject: format!("$JS.API.CONSUMER.CREATE.{}", a.stream),
        body: json!({
            "stream_name": a.stream,
            "config": {
                "deliver_subject": deliver,
                "deliver_policy": "all",
                "ack_policy": "none",
                "ack_wait": ns(ACK_WAIT),
                "max_deliver": 1,
                "flow_control": true,
                "idle_heartbeat": ns(HEARTBEAT),
                "inactive_threshold": ns(INACTIVE_THRESHOLD),
                "num_replicas": 1,
                "mem_storage": true,
                "replay_policy": "instant",
            },
        }),
        explicit: false,
    })?;
    Ok(out.report(
        a,
        "js-ordered",
        format!("js-ordered {}x{}B", a.msgs, a.size),
    ))
}
