//! `js-push`: JetStream push-consumer throughput, on one connection, raw protocol only. The
//! consuming loop here also serves `js-ordered` ([`super::jsordered`]).
//!
//! 1. A fresh stream (as `js-pub`) is filled with `--msgs` messages of `--size` bytes (256 in
//!    flight, each PubAck checked).
//! 2. `SUB <inbox>.push.deliver 2` (flushed), then, measured from here, a durable push consumer
//!    `BENCH` is created with `$JS.API.CONSUMER.DURABLE.CREATE.<stream>.BENCH`:
//!    `{"durable_name":"BENCH","deliver_subject":<inbox>.push.deliver,"deliver_policy":"all",
//!    "ack_policy":"explicit"|"none","flow_control":true,"idle_heartbeat":1s}` (plus
//!    `"max_ack_pending":10000` with explicit acks). Its messages may arrive before the create reply (as with the
//!    clients, the subscription comes first).
//! 3. Every message on the deliver subject is handled:
//!
//!    ```text
//!    MSG <stream subject> 2 $JS.ACK.<stream>.<consumer>.1.<sseq>.<cseq>.<ts>.<pending> <size>
//!        -> checked; with --ack explicit: PUB <ack subject> 0 (acks batched, ~64 KiB)
//!    HMSG <deliver> 2 $JS.FC.<stream>.<consumer>.<token>  "NATS/1.0 100 FlowControl Request"
//!        -> PUB $JS.FC.… 0 (an empty answer)
//!    HMSG <deliver> 2  "NATS/1.0 100 Idle Heartbeat" Nats-Last-Consumer: N [Nats-Consumer-Stalled: R]
//!        -> N must be the consumer sequence of the last message received; R is answered
//!    ```
//!
//!    Any other status fails the run. The clock stops at the last message; `--linger-ms`
//!    keeps listening (unmeasured) for that long, so heartbeats can be seen and checked.
//! 4. Verification: every message arrives once and in order: its ack subject names the stream
//!    and the consumer, delivery count 1, stream sequence and consumer sequence both 1, 2, 3, …
//!    (no gap: what an ordered consumer checks); on the stream's subject, with the published
//!    payload (its index in the first 8 bytes, then the fixed pattern). Then `UNSUB 2` and a
//!    PING: a message after the last one fails the run. Finally `CONSUMER.INFO` must report
//!    nothing pending, the last delivery at the last sequence and, with explicit acks, the ack
//!    floor there too. Nothing for [`STALL_LIMIT`] or the `--timeout` cap fails the run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::jspub::{api_reply, check_consumer_done, fill_stream, js_connection, Api};
use super::jswire::{AckMeta, HeaderBlock};
use super::{serve_buffered, Handler, Progress};
use crate::cli::Args;
use crate::conn::{Conn, Frame, Msg};
use crate::publisher::{payload_template, BATCH_BYTES};
use crate::report::{mb_per_sec, r1, thousands, Report};

const CONSUMER: &str = "BENCH";
/// The deliver subject's subscription id (`1` is the connection's `<inbox>.*`).
const DELIVER_SID: u32 = 2;
/// `js-push`'s idle heartbeat: nats-server's flow control needs one.
const HEARTBEAT: Duration = Duration::from_secs(1);

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let explicit = a.ack_explicit;
    let out = measure(a, addr, "bench-js-push", |deliver| {
        let mut config = json!({
            "durable_name": CONSUMER,
            "deliver_subject": deliver,
            "deliver_policy": "all",
            "ack_policy": if explicit { "explicit" } else { "none" },
            "flow_control": true,
            "idle_heartbeat": HEARTBEAT.as_nanos() as u64,
        });
        if explicit {
            // nats-server refuses max_ack_pending without acks (10082).
            config["max_ack_pending"] = json!(10_000);
        }
        Spec {
            create_subject: format!("$JS.API.CONSUMER.DURABLE.CREATE.{}.{CONSUMER}", a.stream),
            body: json!({"stream_name": a.stream, "config": config}),
            explicit,
        }
    })?;
    let ack = if explicit { "explicit" } else { "none" };
    let mut r = out.report(
        a,
        "js-push",
        format!("js-push {}x{}B ack={ack}", a.msgs, a.size),
    );
    r.field("ack", ack);
    Ok(r)
}

/// The push consumer a run creates: where the create request goes and what it says.
pub(super) struct Spec {
    pub(super) create_subject: String,
    pub(super) body: Value,
    /// Whether every message is acked (ack policy explicit).
    pub(super) explicit: bool,
}

/// What a push run measured.
pub(super) struct Outcome {
    secs: f64,
    flow_control: u64,
    heartbeats: u64,
}

impl Outcome {
    /// The report shared by `js-push` and `js-ordered`.
    pub(super) fn report(&self, a: &Args, scenario: &str, label: String) -> Report {
        let rate = a.msgs as f64 / self.secs;
        let mbs = mb_per_sec(a.msgs, a.size, self.secs);
        let mut r = Report::new(scenario, label);
        r.say(&format!(
            ": {} msgs/s, {mbs:.1} MB/s, {:.3} s; {} flow control requests, {} heartbeats",
            thousands(rate),
            self.secs,
            self.flow_control,
            self.heartbeats
        ));
        r.field("msgs", a.msgs)
            .field("size", a.size)
            .field("elapsed_s", self.secs)
            .field("msgs_per_sec", r1(rate))
            .field("mb_per_sec", r1(mbs))
            .field("flow_control_requests", self.flow_control)
            .field("heartbeats", self.heartbeats);
        r
    }
}

/// Fills the stream, subscribes a deliver subject, creates the consumer `spec(deliver)`
/// describes and consumes every message (see the module docs).
pub(super) fn measure(
    a: &Args,
    addr: SocketAddr,
    conn_name: &str,
    spec: impl FnOnce(&str) -> Spec,
) -> Result<Outcome> {
    let deadline = Instant::now() + a.timeout;
    let (mut conn, inbox) = js_connection(a, addr, conn_name, deadline)?;
    let mut api = Api::new(&inbox);
    fill_stream(&mut api, &mut conn, a)?;

    // Two tokens after the inbox: not matched by the API replies' `<inbox>.*`.
    let deliver = format!("{inbox}.push.deliver");
    conn.write(format!("SUB {deliver} {DELIVER_SID}\r\n").as_bytes())?;
    conn.flush()?;
    let spec = spec(&deliver);

    let start = Instant::now();
    let reply = api.send(
        &mut conn,
        &spec.create_subject,
        spec.body.to_string().as_bytes(),
    )?;
    let mut push = Push::new(a, &deliver, reply, spec.explicit);
    push.consume(&mut conn)?;
    let secs = push.last_at.duration_since(start).as_secs_f64().max(1e-9);
    push.linger(&mut conn, a.linger)?;
    push.stop(&mut conn)?;

    let consumer = push
        .consumer
        .ok_or_else(|| anyhow!("the consumer's name is unknown"))?;
    check_consumer_done(
        &mut api,
        &mut conn,
        &a.stream,
        &consumer,
        a.msgs,
        spec.explicit,
    )?;
    Ok(Outcome {
        secs,
        flow_control: push.flow_control,
        heartbeats: push.heartbeats,
    })
}

/// The consuming side: the create reply, messages and statuses in (checked); acks and flow
/// control answers out.
struct Push {
    deliver: String,
    /// The create request's reply subject, until the reply came.
    create_reply: Option<String>,
    /// The consumer's name, from the create reply or the first ack subject.
    consumer: Option<String>,
    stream: String,
    subject: String,
    /// The published payload's pattern (bytes 8.. of every message).
    template: Vec<u8>,
    total: u64,
    received: u64,
    explicit: bool,
    /// Acks and flow control answers to write.
    out: Vec<u8>,
    flow_control: u64,
    heartbeats: u64,
    last_at: Instant,
}

impl Handler for Push {
    fn handle(&mut self, msg: Msg<'_>) -> Result<()> {
        let (subject, reply, headers) = (msg.subject, msg.reply, msg.headers);
        if subject == self.deliver.as_bytes() {
            return self.on_status(reply, headers);
        }
        if subject == self.subject.as_bytes() {
            return self.on_msg(reply, msg.payload);
        }
        if self.create_reply.as_deref().map(str::as_bytes) == Some(subject) {
            self.create_reply = None;
            let info = api_reply("the consumer create request", headers, msg.payload)?;
            if let Some(err) = info.get("error") {
                bail!("creating the push consumer failed: {err}");
            }
            let name = info
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("consumer create reply without a name: {info}"))?;
            return self.learn_consumer(name.as_bytes());
        }
        bail!(
            "unexpected message on {} while consuming",
            String::from_utf8_lossy(subject)
        )
    }

    fn queued(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }
}

impl Push {
    fn new(a: &Args, deliver: &str, create_reply: String, explicit: bool) -> Self {
        Push {
            deliver: deliver.to_owned(),
            create_reply: Some(create_reply),
            consumer: None,
            stream: a.stream.clone(),
            subject: a.subject.clone(),
            template: payload_template(a.size),
            total: a.msgs,
            received: 0,
            explicit,
            out: Vec::with_capacity(BATCH_BYTES + 256),
            flow_control: 0,
            heartbeats: 0,
            last_at: Instant::now(),
        }
    }

    /// Until every message and the create reply arrived.
    fn consume(&mut self, conn: &mut Conn) -> Result<()> {
        let mut progress = Progress::new(0);
        while self.received < self.total || self.create_reply.is_some() {
            serve_buffered(conn, self)?;
            progress.check(self.received, || {
                let create = match self.create_reply {
                    Some(_) => " (and no reply to the consumer create request)",
                    None => "",
                };
                format!(
                    "{} of {} messages consumed{create}",
                    self.received, self.total
                )
            })?;
            if self.received < self.total || self.create_reply.is_some() {
                conn.fill()?;
            }
        }
        Ok(())
    }

    /// Keeps handling what arrives for `how_long` (heartbeats are checked, flow control is
    /// answered, a message fails).
    fn linger(&mut self, conn: &mut Conn, how_long: Duration) -> Result<()> {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            serve_buffered(conn, self)?;
            conn.fill()?;
        }
        serve_buffered(conn, self)
    }

    /// Unsubscribes the deliver subject and reads up to the PONG of a PING sent after it:
    /// statuses are still fine, another message is not.
    fn stop(&mut self, conn: &mut Conn) -> Result<()> {
        conn.write(format!("UNSUB {DELIVER_SID}\r\nPING\r\n").as_bytes())?;
        loop {
            match conn.next_frame()? {
                Frame::Pong => break,
                frame => self.handle(frame.into_msg("stopping")?)?,
            }
        }
        self.out.clear();
        Ok(())
    }

    /// A status on the deliver subject: flow control requests are answered, heartbeats
    /// checked; anything else fails.
    fn on_status(&mut self, reply: Option<&[u8]>, headers: Option<&[u8]>) -> Result<()> {
        let block = headers
            .and_then(HeaderBlock::parse)
            .ok_or_else(|| anyhow!("a message on the deliver subject that is not a status"))?;
        match (block.status, reply) {
            (Some((100, _)), Some(fc)) => {
                self.flow_control += 1;
                answer(&mut self.out, fc);
            }
            (Some((100, text)), None) if text.starts_with("Idle Heartbeat") => {
                self.heartbeats += 1;
                if let Some(fc) = block.get("Nats-Consumer-Stalled") {
                    answer(&mut self.out, fc.as_bytes());
                }
                // The server sends the heartbeat after the messages before it: it has
                // delivered exactly what we received.
                if let Some(last) = block.get_u64("Nats-Last-Consumer") {
                    if last != self.received {
                        bail!(
                            "heartbeat says the last consumer sequence is {last}, but {} messages arrived (gap)",
                            self.received
                        );
                    }
                }
            }
            _ => bail!(
                "unexpected status on the deliver subject: {:?}",
                String::from_utf8_lossy(headers.unwrap_or_default()).trim()
            ),
        }
        Ok(())
    }

    fn on_msg(&mut self, reply: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        let reply = reply.ok_or_else(|| anyhow!("a pushed message without an ack subject"))?;
        let meta = AckMeta::parse(reply)
            .ok_or_else(|| anyhow!("not an ack subject: {}", String::from_utf8_lossy(reply)))?;
        let want = self.received + 1;
        if want > self.total {
            bail!(
                "message beyond the {} stored: {}",
                self.total,
                String::from_utf8_lossy(reply)
            );
        }
        if meta.stream != self.stream.as_bytes() || meta.delivered != 1 {
            bail!(
                "ack subject {} names another stream or is a redelivery",
                String::from_utf8_lossy(reply)
            );
        }
        self.learn_consumer(meta.consumer)?;
        if meta.stream_seq != want || meta.consumer_seq != want {
            bail!(
                "got stream sequence {} / consumer sequence {}, expected {want} for both (lost, duplicated or reordered)",
                meta.stream_seq,
                meta.consumer_seq
            );
        }
        if !payload_matches(&self.template, payload, want - 1) {
            bail!(
                "message {want} arrived with a wrong payload ({} bytes, expected {})",
                payload.len(),
                self.template.len()
            );
        }
        self.received = want;
        self.last_at = Instant::now();
        if self.explicit {
            answer(&mut self.out, reply);
        }
        Ok(())
    }

    /// The consumer named by the create reply and by every ack subject must be the same.
    fn learn_consumer(&mut self, name: &[u8]) -> Result<()> {
        match &self.consumer {
            Some(known) if known.as_bytes() == name => Ok(()),
            Some(known) => bail!(
                "consumer {} in an ack subject or create reply, expected {known}",
                String::from_utf8_lossy(name)
            ),
            None => {
                self.consumer = Some(String::from_utf8_lossy(name).into_owned());
                Ok(())
            }
        }
    }
}

/// `PUB <subject> 0` with an empty body: an ack, or a flow control answer.
fn answer(out: &mut Vec<u8>, subject: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.extend_from_slice(b" 0\r\n\r\n");
}

/// Whether `payload` is what the publisher sent as message `index`: the template with the
/// index big-endian in its first 8 bytes (payloads under 8 bytes are the bare template).
pub(super) fn payload_matches(template: &[u8], payload: &[u8], index: u64) -> bool {
    if payload.len() != template.len() {
        return false;
    }
    if payload.len() < 8 {
        return payload == template;
    }
    payload[..8] == index.to_be_bytes() && payload[8..] == template[8..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_index() {
        let t = payload_template(16);
        let mut p = t.clone();
        p[..8].copy_from_slice(&5u64.to_be_bytes());
        assert!(payload_matches(&t, &p, 5));
        assert!(!payload_matches(&t, &p, 4));
        assert!(!payload_matches(&t, &p[..15], 5));
        p[12] ^= 1;
        assert!(!payload_matches(&t, &p, 5));
        assert!(payload_matches(b"abc", b"abc", 9));
    }
}
