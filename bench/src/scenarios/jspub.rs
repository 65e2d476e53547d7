//! `js-pub`: JetStream publish throughput and latency against a file-backed
//! stream, on one connection, with raw protocol only.
//!
//! 1. `$JS.API.STREAM.DELETE.<stream>` (a missing stream is fine), then
//!    `$JS.API.STREAM.CREATE.<stream>` with `{"name","subjects":[--subject],
//!    "storage","retention":"limits","discard":"old","num_replicas":1}`; an
//!    `"error"` in either reply (other than "stream not found" for the delete)
//!    fails the run.
//! 2. One `SUB _INBOX.<nonce>.*`; message `i` (0-based, warm-up included) is
//!    published as `PUB <subject> _INBOX.<nonce>.<i> <size>` and its PubAck
//!    `{"stream":"<stream>","seq":N}` comes back on that reply subject.
//!    `--warmup` messages (default 100) go first, one in flight, unmeasured.
//! 3. `--mode sync`: one message in flight (publish, wait for its ack);
//!    reports msgs/s and the ack latency (PUB written -> PubAck parsed)
//!    p50/p90/p99/max. `--mode async`: up to `--inflight` (256) unacknowledged
//!    messages, written in ~64 KiB batches; reports msgs/s from the first
//!    measured PUB to the last ack.
//! 4. Verification: every message gets exactly one ack, on its own reply
//!    subject, naming the stream, without `"error"` or `"duplicate"`; the
//!    sequence numbers are exactly 1..=warmup+msgs, each once. Finally
//!    `$JS.API.STREAM.INFO.<stream>` must report `messages` == warmup+msgs and
//!    `bytes` > 0 (and `last_seq` == warmup+msgs, if present).
//!
//! The CONNECT sets `headers` and `no_responders`, so a request nobody answers
//! (no JetStream, no stream on the subject) fails at once on its `503` status.
//! No ack progress for [`STALL_LIMIT`](super::STALL_LIMIT), an API request
//! unanswered for [`API_TIMEOUT`], or the `--timeout` cap fails the run. The
//! stream is left in place (the next run deletes it).

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::Progress;
use crate::cli::{Args, JsMode};
use crate::conn::{parse_usize, Conn, Frame};
use crate::publisher::{payload_template, BATCH_BYTES};
use crate::report::{mb_per_sec, r1, thousands, Latencies, Report};

/// How long a `$JS.API` request may go unanswered.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// CONNECT members: accept headers and get a `503` status for requests without responders.
pub(super) const NO_RESPONDERS: &str = "\"headers\":true,\"no_responders\":true";

/// A `NATS/1.0 503` status header: nobody subscribed to the request subject.
pub(super) fn is_no_responders(headers: Option<&[u8]>) -> bool {
    headers.is_some_and(|h| h.starts_with(b"NATS/1.0 503"))
}

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let (mut conn, inbox) = js_connection(a, addr, "bench-js-pub", deadline)?;
    let mut api = Api::new(&inbox);
    fresh_stream(&mut api, &mut conn, a)?;
    let name = &a.stream;

    let total = a.warmup + a.msgs;
    let mut acks = Acks::new(&inbox, name, total);
    let mut p = Publisher::new(a, &inbox);

    // Warm-up: one in flight, not measured.
    for _ in 0..a.warmup {
        p.publish_one(&mut conn, &mut acks)?;
    }

    let mut lat = Latencies::default();
    let start = Instant::now();
    match a.mode {
        JsMode::Sync => {
            lat.0.reserve(a.msgs as usize);
            for _ in 0..a.msgs {
                let t0 = Instant::now();
                p.publish_one(&mut conn, &mut acks)?;
                lat.since(t0);
            }
        }
        JsMode::Async => p.publish_async(&mut conn, &mut acks, total, a.inflight)?,
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    acks.verify_complete()?;

    // A PING/PONG round trip: any late (duplicate) ack queued before it shows up here.
    conn.write(b"PING\r\n")?;
    loop {
        match conn.next_frame()? {
            Frame::Pong => break,
            frame @ Frame::Msg { .. } => acks.on_frame(frame)?,
        }
    }

    let state = stream_state(&mut api, &mut conn, name)?;
    let stored = state.get("messages").and_then(Value::as_u64);
    let bytes = state.get("bytes").and_then(Value::as_u64);
    if stored != Some(total) {
        bail!("stream info reports {stored:?} messages, expected {total}: {state}");
    }
    let bytes = bytes.unwrap_or(0);
    if bytes == 0 {
        bail!("stream info reports no stored bytes: {state}");
    }
    if let Some(last) = state.get("last_seq").and_then(Value::as_u64) {
        if last != total {
            bail!("stream info reports last_seq {last}, expected {total}: {state}");
        }
    }

    let rate = a.msgs as f64 / secs;
    let mbs = mb_per_sec(a.msgs, a.size, secs);
    let mode = a.mode.name();
    let label = match a.mode {
        JsMode::Sync => format!("js-pub sync {}x{}B", a.msgs, a.size),
        JsMode::Async => format!(
            "js-pub async {}x{}B inflight={}",
            a.msgs, a.size, a.inflight
        ),
    };
    let mut r = Report::new("js-pub", label);
    r.say(&format!(
        ": {} msgs/s, {mbs:.1} MB/s, {secs:.3} s",
        thousands(rate)
    ));
    r.field("mode", mode)
        .field("msgs", a.msgs)
        .field("size", a.size)
        .field("warmup", a.warmup)
        .field("storage", a.storage.as_str())
        .field("elapsed_s", secs)
        .field("msgs_per_sec", r1(rate))
        .field("mb_per_sec", r1(mbs))
        .field("stream_msgs", total)
        .field("stream_bytes", bytes);
    if a.mode == JsMode::Async {
        r.field("inflight", a.inflight);
    }
    lat.report(&mut r, "ack latency");
    r.say(&format!("; stream holds {total} msgs, {bytes} B"));
    Ok(r)
}

/// A connection for JetStream requests (headers, `no_responders`, credentials), subscribed
/// to `<inbox>.*`; returns it and the inbox.
pub(super) fn js_connection(
    a: &Args,
    addr: SocketAddr,
    name: &str,
    deadline: Instant,
) -> Result<(Conn, String)> {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id());
    let inbox = format!("_INBOX.{nonce:x}");
    // `no_responders`: a request nobody answers (no JetStream, no stream on the subject) gets
    // an immediate `503` status message instead of silence.
    let extra = match a.user_pass_extra() {
        u if u.is_empty() => NO_RESPONDERS.to_owned(),
        u => format!("{NO_RESPONDERS},{u}"),
    };
    let mut conn = Conn::connect_with(addr, name, &extra, 64 * 1024, deadline)?;
    conn.write(format!("SUB {inbox}.* 1\r\n").as_bytes())?;
    conn.flush()?;
    Ok((conn, inbox))
}

/// Deletes `--stream` (a missing one is fine) and creates it again, bound to `--subject`.
pub(super) fn fresh_stream(api: &mut Api<'_>, conn: &mut Conn, a: &Args) -> Result<()> {
    let config = json!({
        "name": a.stream,
        "subjects": [a.subject],
        "storage": a.storage,
        "retention": "limits",
        "discard": "old",
        "num_replicas": 1,
    });
    recreate_stream(api, conn, &a.stream, &config)
}

/// [`fresh_stream`], filled with `--msgs` messages of `--size` bytes ([`FILL_INFLIGHT`] in
/// flight, every PubAck checked): message `i` has stream sequence `i + 1` and `i` big-endian in
/// its first 8 bytes.
pub(super) fn fill_stream(api: &mut Api<'_>, conn: &mut Conn, a: &Args) -> Result<()> {
    fresh_stream(api, conn, a)?;
    let mut acks = Acks::new(api.inbox, &a.stream, a.msgs);
    Publisher::new(a, api.inbox).publish_async(conn, &mut acks, a.msgs, FILL_INFLIGHT)?;
    acks.verify_complete()
}

/// Messages [`fill_stream`] may have unacknowledged.
const FILL_INFLIGHT: u64 = 256;

/// Deletes stream `name` (a missing one is fine) and creates it with `config`.
pub(super) fn recreate_stream(
    api: &mut Api<'_>,
    conn: &mut Conn,
    name: &str,
    config: &Value,
) -> Result<()> {
    let del = api.request(conn, &format!("$JS.API.STREAM.DELETE.{name}"), b"")?;
    if let Some(err) = del.get("error") {
        let not_found = err.get("code").and_then(Value::as_u64) == Some(404)
            || err.get("err_code").and_then(Value::as_u64) == Some(10059);
        if !not_found {
            bail!("deleting the old stream {name} failed: {err}");
        }
    }
    let created = api.request(
        conn,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        config.to_string().as_bytes(),
    )?;
    if let Some(err) = created.get("error") {
        bail!("creating stream {name} ({config}) failed: {err}");
    }
    Ok(())
}

/// `$JS.API.STREAM.INFO.<name>`'s `state`, failing on an error reply.
pub(super) fn stream_state(api: &mut Api<'_>, conn: &mut Conn, name: &str) -> Result<Value> {
    let mut info = api.request(conn, &format!("$JS.API.STREAM.INFO.{name}"), b"")?;
    if let Some(err) = info.get("error") {
        bail!("stream info for {name} failed: {err}");
    }
    info.get_mut("state")
        .map(Value::take)
        .ok_or_else(|| anyhow!("stream info without \"state\": {info}"))
}

/// Checks `$JS.API.CONSUMER.INFO.<stream>.<consumer>` after all `total` messages were consumed
/// (and, with `acked`, acknowledged): nothing pending or awaiting an ack, the last delivery at
/// stream sequence `total` and, with `acked`, the ack floor there too. Servers apply acks
/// asynchronously (nats-server queues them to the consumer), so the info is asked again, every
/// [`INFO_POLL`], for up to [`API_TIMEOUT`] before the last one counts.
pub(super) fn check_consumer_done(
    api: &mut Api<'_>,
    conn: &mut Conn,
    stream: &str,
    consumer: &str,
    total: u64,
    acked: bool,
) -> Result<()> {
    let until = Instant::now() + API_TIMEOUT;
    loop {
        let info = api.request(
            conn,
            &format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
            b"",
        )?;
        if let Some(err) = info.get("error") {
            bail!("consumer info for {consumer} failed: {err}");
        }
        let num = |path: &[&str]| {
            path.iter()
                .try_fold(&info, |v, k| v.get(k))
                .and_then(Value::as_u64)
        };
        let delivered =
            num(&["num_pending"]) == Some(0) && num(&["delivered", "stream_seq"]) == Some(total);
        if !delivered {
            bail!("consumer info after consuming all {total} messages: {info}");
        }
        let settled = num(&["num_ack_pending"]).unwrap_or(0) == 0
            && (!acked || num(&["ack_floor", "stream_seq"]) == Some(total));
        if settled {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("acks not applied {API_TIMEOUT:?} after all {total} messages were acked: {info}");
        }
        std::thread::sleep(INFO_POLL);
    }
}

/// How often [`check_consumer_done`] asks again while acks are being applied.
const INFO_POLL: Duration = Duration::from_millis(20);

/// Reads until the reply on `reply` arrives (answering server PINGs) and hands its headers and
/// payload to `f`; fails on a PONG or a message on another subject, or when nothing came within
/// `limit`.
pub(super) fn next_reply_within<T>(
    conn: &mut Conn,
    reply: &str,
    limit: Duration,
    what: &str,
    f: impl FnOnce(Option<&[u8]>, &[u8]) -> Result<T>,
) -> Result<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(frame) = conn.try_frame()? {
            let m = frame.into_msg(&format!("waiting for the {what}"))?;
            if m.subject != reply.as_bytes() {
                bail!(
                    "unexpected message on {} while waiting for the {what}",
                    String::from_utf8_lossy(m.subject)
                );
            }
            return f(m.headers, m.payload);
        }
        if Instant::now() >= until {
            bail!("no {what} within {limit:?}");
        }
        conn.fill()?;
    }
}

/// `$JS.API` requests with replies on `<inbox>.api<k>`. Nothing else may be in
/// flight on the connection meanwhile: any other message is an error.
pub(super) struct Api<'a> {
    pub(super) inbox: &'a str,
    pub(super) next: u64,
}

impl<'a> Api<'a> {
    pub(super) fn new(inbox: &'a str) -> Self {
        Api { inbox, next: 0 }
    }

    /// Sends a request; returns its reply subject.
    pub(super) fn send(&mut self, conn: &mut Conn, subject: &str, body: &[u8]) -> Result<String> {
        self.next += 1;
        let reply = format!("{}.api{}", self.inbox, self.next);
        let mut out = format!("PUB {subject} {reply} {}\r\n", body.len()).into_bytes();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        conn.write(&out)?;
        Ok(reply)
    }

    pub(super) fn request(&mut self, conn: &mut Conn, subject: &str, body: &[u8]) -> Result<Value> {
        let reply = self.send(conn, subject, body)?;
        next_reply_within(
            conn,
            &reply,
            API_TIMEOUT,
            &format!("reply to {subject} (is JetStream enabled, -js?)"),
            |headers, payload| api_reply(subject, headers, payload),
        )
    }
}

/// The JSON of a `$JS.API` reply to a request on `subject`.
pub(super) fn api_reply(subject: &str, headers: Option<&[u8]>, payload: &[u8]) -> Result<Value> {
    if is_no_responders(headers) {
        bail!("no responders for {subject} (is JetStream enabled, -js?)");
    }
    serde_json::from_slice(payload).with_context(|| {
        format!(
            "{subject} reply is not JSON: {:?}",
            String::from_utf8_lossy(payload)
        )
    })
}

/// Builds PUB frames (`PUB <subject> <inbox>.<i> <size>`, the message index
/// big-endian in the first 8 payload bytes) and drives the ack loop.
pub(super) struct Publisher {
    subject: String,
    inbox: String,
    payload: Vec<u8>,
    out: Vec<u8>,
    sent: u64,
}

impl Publisher {
    pub(super) fn new(a: &Args, inbox: &str) -> Self {
        Self {
            subject: a.subject.clone(),
            inbox: inbox.to_owned(),
            payload: payload_template(a.size),
            out: Vec::with_capacity(BATCH_BYTES + a.size + 256),
            sent: 0,
        }
    }

    /// Append the next message's frame to `out`.
    fn push_frame(&mut self) {
        push_indexed(
            &mut self.out,
            &self.subject,
            &self.inbox,
            self.sent,
            &mut self.payload,
        );
        self.sent += 1;
    }

    /// Publish one message and wait for its ack.
    fn publish_one(&mut self, conn: &mut Conn, acks: &mut Acks) -> Result<()> {
        self.out.clear();
        self.push_frame();
        conn.write(&self.out)?;
        acks.pump(conn, self.sent)
    }

    /// Publish until `total` messages are out, at most `inflight` unacknowledged,
    /// and wait for every ack.
    pub(super) fn publish_async(
        &mut self,
        conn: &mut Conn,
        acks: &mut Acks,
        total: u64,
        inflight: u64,
    ) -> Result<()> {
        while acks.acked < total {
            self.out.clear();
            while self.sent < total
                && self.sent - acks.acked < inflight
                && self.out.len() < BATCH_BYTES
            {
                self.push_frame();
            }
            if !self.out.is_empty() {
                conn.write(&self.out)?;
            }
            if self.sent == total || self.sent - acks.acked >= inflight {
                // Window full (or all sent): block for at least one more ack.
                acks.pump(conn, acks.acked + 1)?;
            } else {
                acks.drain(conn)?;
            }
        }
        Ok(())
    }
}

/// Appends `PUB <subject> <inbox>.<i> <size>` with `payload`, after writing `i` big-endian into
/// its first 8 bytes (if it has them).
pub(super) fn push_indexed(
    out: &mut Vec<u8>,
    subject: &str,
    inbox: &str,
    i: u64,
    payload: &mut [u8],
) {
    let _ = write!(out, "PUB {subject} {inbox}.{i} {}\r\n", payload.len());
    if payload.len() >= 8 {
        payload[..8].copy_from_slice(&i.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Bookkeeping and verification of PubAcks.
pub(super) struct Acks {
    /// `<inbox>.`: every ack's subject is this plus the message index.
    prefix: Vec<u8>,
    stream: String,
    total: u64,
    acked: u64,
    /// Bitmaps over message indexes (0-based) and stream sequences (1-based).
    got_idx: Vec<u64>,
    got_seq: Vec<u64>,
}

impl Acks {
    pub(super) fn new(inbox: &str, stream: &str, total: u64) -> Self {
        let words = (total as usize + 1).div_ceil(64);
        Self {
            prefix: format!("{inbox}.").into_bytes(),
            stream: stream.to_owned(),
            total,
            acked: 0,
            got_idx: vec![0; words],
            got_seq: vec![0; words],
        }
    }

    /// Process the frames already buffered (no blocking read).
    fn drain(&mut self, conn: &mut Conn) -> Result<()> {
        while let Some(frame) = conn.try_frame()? {
            self.on_frame(frame)?;
        }
        Ok(())
    }

    /// Read until `target` acks have arrived; fails if none arrives for STALL_LIMIT.
    pub(super) fn pump(&mut self, conn: &mut Conn, target: u64) -> Result<()> {
        let mut progress = Progress::new(self.acked);
        loop {
            self.drain(conn)?;
            if self.acked >= target {
                return Ok(());
            }
            progress.check(self.acked, || {
                format!(
                    "acks missing (is the stream bound to the subject?): {} of {} acked",
                    self.acked, self.total
                )
            })?;
            conn.fill()?;
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) -> Result<()> {
        match frame {
            Frame::Msg {
                subject,
                headers,
                payload,
                ..
            } => {
                if is_no_responders(headers) {
                    bail!(
                        "no responders for a publish ({}): no stream bound to the subject?",
                        String::from_utf8_lossy(subject)
                    );
                }
                self.on_msg(subject, payload)
            }
            Frame::Pong => bail!("unexpected PONG while waiting for acks"),
        }
    }

    fn on_msg(&mut self, subject: &[u8], payload: &[u8]) -> Result<()> {
        let idx = subject
            .strip_prefix(self.prefix.as_slice())
            .and_then(parse_usize)
            .map(|i| i as u64)
            .filter(|&i| i < self.total)
            .ok_or_else(|| {
                anyhow!(
                    "unexpected message on {}: {:?}",
                    String::from_utf8_lossy(subject),
                    String::from_utf8_lossy(&payload[..payload.len().min(200)])
                )
            })?;
        let ack: Value = serde_json::from_slice(payload).with_context(|| {
            format!(
                "ack for message {idx} is not JSON: {:?}",
                String::from_utf8_lossy(payload)
            )
        })?;
        if let Some(err) = ack.get("error") {
            bail!("error ack for message {idx}: {err}");
        }
        if ack.get("duplicate").and_then(Value::as_bool) == Some(true) {
            bail!("message {idx} acked as a duplicate: {ack}");
        }
        if ack.get("stream").and_then(Value::as_str) != Some(self.stream.as_str()) {
            bail!("ack for message {idx} names another stream: {ack}");
        }
        let seq = ack
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|s| (1..=self.total).contains(s))
            .ok_or_else(|| {
                anyhow!(
                    "ack for message {idx} has no seq in 1..={}: {ack}",
                    self.total
                )
            })?;
        if !set_bit(&mut self.got_idx, idx) {
            bail!("message {idx} acked twice (second ack: {ack})");
        }
        if !set_bit(&mut self.got_seq, seq) {
            bail!("seq {seq} acked twice (second time for message {idx})");
        }
        self.acked += 1;
        Ok(())
    }

    /// All `total` acks arrived. Each index and each seq was seen at most once
    /// (checked per ack) and both lie in their ranges, so `total` acks mean
    /// every index got an ack and the seqs are exactly 1..=total.
    pub(super) fn verify_complete(&self) -> Result<()> {
        if self.acked != self.total {
            bail!("{} of {} messages acked", self.acked, self.total);
        }
        Ok(())
    }
}

/// Set bit `i`; false if it was already set.
fn set_bit(bits: &mut [u64], i: u64) -> bool {
    let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
    let fresh = bits[w] & b == 0;
    bits[w] |= b;
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks() -> Acks {
        Acks::new("_INBOX.n", "S", 3)
    }

    #[test]
    fn accepts_each_seq_once_in_any_order() -> Result<()> {
        let mut a = acks();
        a.on_msg(b"_INBOX.n.2", br#"{"stream":"S","seq":1}"#)?;
        a.on_msg(b"_INBOX.n.0", br#"{"stream":"S","seq":3,"domain":"x"}"#)?;
        assert!(a.verify_complete().is_err());
        a.on_msg(b"_INBOX.n.1", br#"{"stream":"S","seq":2}"#)?;
        a.verify_complete()
    }

    #[test]
    fn rejects_bad_acks() {
        let bad: [(&[u8], &[u8]); 8] = [
            (
                b"_INBOX.n.0",
                br#"{"error":{"code":503,"description":"x"}}"#,
            ),
            (b"_INBOX.n.0", br#"{"stream":"S","seq":1,"duplicate":true}"#),
            (b"_INBOX.n.0", br#"{"stream":"T","seq":1}"#),
            (b"_INBOX.n.0", br#"{"stream":"S","seq":0}"#),
            (b"_INBOX.n.0", br#"{"stream":"S","seq":4}"#),
            (b"_INBOX.n.3", br#"{"stream":"S","seq":1}"#),
            (b"_INBOX.m.0", br#"{"stream":"S","seq":1}"#),
            (b"_INBOX.n.0", b"+OK"),
        ];
        for (subject, payload) in bad {
            assert!(
                acks().on_msg(subject, payload).is_err(),
                "{:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn rejects_duplicates() -> Result<()> {
        let mut a = acks();
        a.on_msg(b"_INBOX.n.0", br#"{"stream":"S","seq":1}"#)?;
        assert!(a
            .on_msg(b"_INBOX.n.0", br#"{"stream":"S","seq":2}"#)
            .is_err());
        assert!(a
            .on_msg(b"_INBOX.n.1", br#"{"stream":"S","seq":1}"#)
            .is_err());
        Ok(())
    }
}
