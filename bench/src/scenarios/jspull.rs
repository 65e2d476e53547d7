//! `js-pull`: JetStream pull-consumer throughput, on one connection, raw protocol only.
//!
//! 1. A fresh stream (as `js-pub`) is filled with `--msgs` messages of `--size` bytes
//!    (256 in flight), each PubAck checked.
//! 2. A durable pull consumer `BENCH` is created with `$JS.API.CONSUMER.DURABLE.CREATE`
//!    (`deliver_policy: all`, `ack_policy` explicit or, with `--ack none`, none;
//!    `max_ack_pending` 10,000).
//! 3. Measured: pull requests `{"batch":--batch,"expires":5s}` on
//!    `$JS.API.CONSUMER.MSG.NEXT.<stream>.BENCH`, each with its own reply subject, two
//!    batches outstanding, until every
//!    message arrived; with explicit acks each message is acked (`PUB <ack subject> 0`), acks
//!    written in ~64 KiB batches. Reports messages consumed per second.
//! 4. Verification: every message arrives once, in stream order (its ack subject's stream
//!    sequence is 1, 2, 3, …), on the stream's subject, with the published payload; a 408/404
//!    status ends a request (its unfilled count is requested again), any other status fails
//!    the run. Finally `CONSUMER.INFO` must report nothing pending, the last delivery at the
//!    last sequence and, with explicit acks, the ack floor there too.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use super::jspub::{check_consumer_done, fill_stream, is_no_responders, js_connection, Api};
use super::jspush::payload_matches;
use super::jswire::AckMeta;
use super::{serve_buffered, Handler, Progress};
use crate::cli::Args;
use crate::conn::{Conn, Msg};
use crate::publisher::{payload_template, BATCH_BYTES};
use crate::report::{mb_per_sec, r1, thousands, Report};

const CONSUMER: &str = "BENCH";

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let (mut conn, inbox) = js_connection(a, addr, "bench-js-pull", deadline)?;
    let mut api = Api::new(&inbox);
    fill_stream(&mut api, &mut conn, a)?;
    let name = a.stream.as_str();

    let explicit = a.ack_explicit;
    let config = json!({
        "stream_name": name,
        "config": {
            "durable_name": CONSUMER,
            "deliver_policy": "all",
            "ack_policy": if explicit { "explicit" } else { "none" },
            "max_ack_pending": 10_000,
        },
    });
    let created = api.request(
        &mut conn,
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{name}.{CONSUMER}"),
        config.to_string().as_bytes(),
    )?;
    if let Some(err) = created.get("error") {
        bail!("creating consumer {CONSUMER} ({config}) failed: {err}");
    }

    let start = Instant::now();
    let mut pull = Pull::new(a, &inbox, explicit);
    pull.consume(&mut conn)?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);

    check_consumer_done(&mut api, &mut conn, name, CONSUMER, a.msgs, explicit)?;

    let rate = a.msgs as f64 / secs;
    let mbs = mb_per_sec(a.msgs, a.size, secs);
    let ack = if explicit { "explicit" } else { "none" };
    let mut r = Report::new(
        "js-pull",
        format!("js-pull {}x{}B batch={} ack={ack}", a.msgs, a.size, a.batch),
    );
    r.say(&format!(
        ": {} msgs/s, {mbs:.1} MB/s, {secs:.3} s",
        thousands(rate)
    ));
    r.field("msgs", a.msgs)
        .field("size", a.size)
        .field("batch", a.batch)
        .field("ack", ack)
        .field("elapsed_s", secs)
        .field("msgs_per_sec", r1(rate))
        .field("mb_per_sec", r1(mbs));
    Ok(r)
}

/// The consuming side: pull requests out, messages in (checked), acks out.
struct Pull {
    /// `PUB <next subject> <inbox>.pull`, completed per request with a counter (each request
    /// gets its own reply subject, as the clients' fetches do) and `body`.
    request_head: String,
    body: String,
    sent_requests: u64,
    out: Vec<u8>,
    batch: u64,
    total: u64,
    /// The published payload (bytes 8.. of every message; 0..8 carry its index).
    template: Vec<u8>,
    subject: String,
    explicit: bool,
    /// Messages asked for (by requests not yet ended) and received.
    requested: u64,
    received: u64,
    acks: Vec<u8>,
}

impl Handler for Pull {
    fn handle(&mut self, msg: Msg<'_>) -> Result<()> {
        let (subject, reply, headers) = (msg.subject, msg.reply, msg.headers);
        if let Some(h) = headers.filter(|h| h.starts_with(b"NATS/1.0 ")) {
            return self.on_status(h);
        }
        let reply = reply.ok_or_else(|| anyhow!("a consumed message without an ack subject"))?;
        let seq = AckMeta::parse(reply)
            .ok_or_else(|| anyhow!("not an ack subject: {}", String::from_utf8_lossy(reply)))?
            .stream_seq;
        let want = self.received + 1;
        if seq != want {
            bail!("got stream sequence {seq}, expected {want} (lost, duplicated or reordered)");
        }
        if subject != self.subject.as_bytes()
            || !payload_matches(&self.template, msg.payload, seq - 1)
        {
            bail!(
                "message {seq} arrived on {} with a wrong payload ({} bytes)",
                String::from_utf8_lossy(subject),
                msg.payload.len()
            );
        }
        self.received += 1;
        if self.explicit {
            self.acks.extend_from_slice(b"PUB ");
            self.acks.extend_from_slice(reply);
            self.acks.extend_from_slice(b" 0\r\n\r\n");
        }
        Ok(())
    }

    fn queued(&mut self) -> &mut Vec<u8> {
        &mut self.acks
    }
}

impl Pull {
    fn new(a: &Args, inbox: &str, explicit: bool) -> Self {
        let body = json!({"batch": a.batch, "expires": 5_000_000_000u64}).to_string();
        Pull {
            request_head: format!(
                "PUB $JS.API.CONSUMER.MSG.NEXT.{}.{CONSUMER} {inbox}.pull",
                a.stream
            ),
            body,
            sent_requests: 0,
            out: Vec::new(),
            batch: a.batch,
            total: a.msgs,
            template: payload_template(a.size),
            subject: a.subject.clone(),
            explicit,
            requested: 0,
            received: 0,
            acks: Vec::with_capacity(BATCH_BYTES + 256),
        }
    }

    fn consume(&mut self, conn: &mut Conn) -> Result<()> {
        let mut progress = Progress::new(0);
        while self.received < self.total {
            // Two batches outstanding, never more than what is left.
            while self.requested < self.total.min(self.received + 2 * self.batch) {
                self.sent_requests += 1;
                self.out.clear();
                self.out.extend_from_slice(
                    format!(
                        "{}{} {}\r\n{}\r\n",
                        self.request_head,
                        self.sent_requests,
                        self.body.len(),
                        self.body
                    )
                    .as_bytes(),
                );
                conn.write(&self.out)?;
                self.requested += self.batch;
            }
            serve_buffered(conn, self)?;
            progress.check(self.received, || {
                format!("{} of {} messages consumed", self.received, self.total)
            })?;
            if self.received < self.total {
                conn.fill()?;
            }
        }
        conn.flush()
    }

    /// A status ends a request: 408 (expired) and 404 (nothing left) give back the unfilled
    /// part of it; anything else is a failure.
    fn on_status(&mut self, headers: &[u8]) -> Result<()> {
        if is_no_responders(Some(headers)) {
            bail!("no responders for the pull request (consumer gone?)");
        }
        let text = String::from_utf8_lossy(headers);
        if !(text.starts_with("NATS/1.0 408") || text.starts_with("NATS/1.0 404")) {
            bail!("pull request failed: {}", text.trim());
        }
        let unfilled = text
            .lines()
            .find_map(|l| l.strip_prefix("Nats-Pending-Messages:"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        self.requested = match unfilled {
            Some(n) => self.requested.saturating_sub(n),
            // Without the count, ask again for whatever is missing.
            None => self.received,
        };
        Ok(())
    }
}
