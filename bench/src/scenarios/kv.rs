//! `kv`: JetStream key-value put and get latency, one operation in flight, on one connection,
//! raw protocol only, shaped as the clients do it (ADR-8).
//!
//! 1. Bucket `B` = `--stream`: stream `KV_B` is deleted (if present) and created with
//!    `{"name":"KV_B","subjects":["$KV.B.>"],"max_msgs_per_subject":1,"discard":"new",
//!    "allow_rollup_hdrs":true,"deny_delete":true,"allow_direct":true,"duplicate_window":2m,
//!    "storage":--storage,"retention":"limits","num_replicas":1,…}` (history 1).
//! 2. A put of key `k<n>` is `PUB $KV.B.k<n> <inbox>.<i> <size>` (`i` = the put's index, also
//!    big-endian in the value's first 8 bytes); its PubAck `{"stream":"KV_B","seq":i+1}` is
//!    checked as in `js-pub`. Keys are used round robin.
//! 3. `--mode put`: `--warmup` unmeasured puts, then `--msgs` measured ones, over `--keys`
//!    keys. The stream must then hold `min(keys, puts)` messages, last sequence = puts.
//!    `--mode get`: one put per key, then `--warmup` unmeasured and `--msgs` measured direct
//!    gets of keys drawn by a fixed-seed generator:
//!
//!    ```text
//!    PUB $JS.API.DIRECT.GET.KV_B.$KV.B.k<n> <inbox>.g<j> 0      (empty body: last for subject)
//!    HMSG <inbox>.g<j> 1 <hdr> <total>
//!    NATS/1.0 / Nats-Stream: KV_B / Nats-Subject: $KV.B.k<n> / Nats-Sequence: <seq> / …
//!    <value>
//!    ```
//!
//!    Every reply must be the value last put for that key (sequence and bytes); a status
//!    (`404 Message Not Found`, `408 …`) fails the run.
//! 4. Reports ops/s (`msgs_per_sec`) and the latency (request written -> reply parsed)
//!    p50/p90/p99/max. No reply for [`STALL_LIMIT`] or the `--timeout` cap fails the run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::jspub::{
    js_connection, next_reply_within, push_indexed, recreate_stream, stream_state, Acks, Api,
};
use super::jspush::payload_matches;
use super::jswire::HeaderBlock;
use super::STALL_LIMIT;
use crate::cli::{Args, KvMode};
use crate::conn::Conn;
use crate::publisher::payload_template;
use crate::report::{r1, thousands, Latencies, Report};

/// The clients' default duplicate window for a bucket without `max_age`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The key generator's seed: every run gets the same keys.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let (mut conn, inbox) = js_connection(a, addr, "bench-kv", deadline)?;
    let mut api = Api::new(&inbox);
    let mut kv = Kv::new(a, &inbox);
    recreate_stream(&mut api, &mut conn, &kv.stream, &kv_config(a, &kv.stream))?;

    let puts = match a.kv_mode {
        KvMode::Put => a.warmup + a.msgs,
        KvMode::Get => a.keys,
    };
    let mut acks = Acks::new(&inbox, &kv.stream, puts);
    let mut lat = Latencies::default();
    lat.0.reserve(a.msgs as usize);
    let mut start = Instant::now();
    match a.kv_mode {
        KvMode::Put => {
            for i in 0..puts {
                if i == a.warmup {
                    start = Instant::now();
                }
                let t0 = Instant::now();
                kv.put(&mut conn, &mut acks, i % a.keys)?;
                if i >= a.warmup {
                    lat.since(t0);
                }
            }
        }
        KvMode::Get => {
            for key in 0..a.keys {
                kv.put(&mut conn, &mut acks, key)?;
            }
            let mut rng = SEED;
            for j in 0..a.warmup + a.msgs {
                if j == a.warmup {
                    start = Instant::now();
                }
                let key = next_key(&mut rng, a.keys);
                let t0 = Instant::now();
                kv.get(&mut conn, j, key)?;
                if j >= a.warmup {
                    lat.since(t0);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    acks.verify_complete()?;

    let state = stream_state(&mut api, &mut conn, &kv.stream)?;
    let stored = state.get("messages").and_then(Value::as_u64);
    let last = state.get("last_seq").and_then(Value::as_u64);
    if stored != Some(puts.min(a.keys)) || last != Some(puts) {
        bail!(
            "after {puts} puts over {} keys the stream holds {stored:?} messages, last seq {last:?}: {state}",
            a.keys
        );
    }

    let mode = a.kv_mode.name();
    let rate = a.msgs as f64 / secs;
    let mut r = Report::new(
        "kv",
        format!("kv {mode} {}x{}B keys={}", a.msgs, a.size, a.keys),
    );
    r.say(&format!(": {} ops/s, {secs:.3} s", thousands(rate)));
    r.field("mode", mode)
        .field("msgs", a.msgs)
        .field("size", a.size)
        .field("keys", a.keys)
        .field("warmup", a.warmup)
        .field("storage", a.storage.as_str())
        .field("elapsed_s", secs)
        .field("msgs_per_sec", r1(rate));
    lat.report(&mut r, &format!("{mode} latency"));
    Ok(r)
}

/// The bucket's stream configuration, as the clients create a bucket with history 1.
fn kv_config(a: &Args, stream: &str) -> Value {
    json!({
        "name": stream,
        "subjects": [format!("$KV.{}.>", a.stream)],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": 1,
        "max_msg_size": -1,
        "storage": a.storage,
        "discard": "new",
        "num_replicas": 1,
        "duplicate_window": DUPLICATE_WINDOW.as_nanos() as u64,
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "deny_purge": false,
        "allow_direct": true,
        "mirror_direct": false,
    })
}

/// Puts and gets with their checks.
struct Kv {
    bucket: String,
    stream: String,
    inbox: String,
    /// The value pattern; bytes 0..8 carry the put's index.
    template: Vec<u8>,
    payload: Vec<u8>,
    out: Vec<u8>,
    /// Puts so far.
    puts: u64,
    /// Per key, the index of its last put (its stream sequence is that + 1).
    last_put: Vec<Option<u64>>,
}

impl Kv {
    fn new(a: &Args, inbox: &str) -> Self {
        Kv {
            bucket: a.stream.clone(),
            stream: format!("KV_{}", a.stream),
            inbox: inbox.to_owned(),
            template: payload_template(a.size),
            payload: payload_template(a.size),
            out: Vec::with_capacity(a.size + 256),
            puts: 0,
            last_put: vec![None; a.keys as usize],
        }
    }

    /// Puts the next value for `key` and waits for its PubAck.
    fn put(&mut self, conn: &mut Conn, acks: &mut Acks, key: u64) -> Result<()> {
        let i = self.puts;
        self.out.clear();
        let subject = format!("$KV.{}.k{key}", self.bucket);
        push_indexed(&mut self.out, &subject, &self.inbox, i, &mut self.payload);
        conn.write(&self.out)?;
        self.puts += 1;
        acks.pump(conn, self.puts)?;
        self.last_put[key as usize] = Some(i);
        Ok(())
    }

    /// Direct get `j` of `key`'s last value; checks it is the last put.
    fn get(&mut self, conn: &mut Conn, j: u64, key: u64) -> Result<()> {
        let index = self.last_put[key as usize]
            .ok_or_else(|| anyhow!("get of key k{key}, which was never put"))?;
        let subject = format!("$KV.{}.k{key}", self.bucket);
        let reply = format!("{}.g{j}", self.inbox);
        conn.write(
            format!(
                "PUB $JS.API.DIRECT.GET.{}.{subject} {reply} 0\r\n\r\n",
                self.stream
            )
            .as_bytes(),
        )?;
        next_reply_within(
            conn,
            &reply,
            STALL_LIMIT,
            &format!("direct get reply for {subject}"),
            |headers, payload| {
                let expect = DirectGet {
                    stream: &self.stream,
                    subject: &subject,
                    seq: index + 1,
                };
                expect.check(headers)?;
                if !payload_matches(&self.template, payload, index) {
                    bail!(
                        "get of {subject} returned {} bytes that are not put {index}'s value",
                        payload.len()
                    );
                }
                Ok(())
            },
        )
    }
}

/// What a direct get's headers must say.
struct DirectGet<'a> {
    stream: &'a str,
    subject: &'a str,
    seq: u64,
}

impl DirectGet<'_> {
    fn check(&self, headers: Option<&[u8]>) -> Result<()> {
        let raw = || String::from_utf8_lossy(headers.unwrap_or_default()).into_owned();
        let block = headers
            .and_then(HeaderBlock::parse)
            .ok_or_else(|| anyhow!("direct get of {} without headers", self.subject))?;
        if let Some((code, text)) = block.status {
            bail!("direct get of {} answered {code} {text}", self.subject);
        }
        if block.get("Nats-Stream") != Some(self.stream)
            || block.get("Nats-Subject") != Some(self.subject)
            || block.get_u64("Nats-Sequence") != Some(self.seq)
        {
            bail!(
                "direct get of {} (expected sequence {}) answered headers {:?}",
                self.subject,
                self.seq,
                raw()
            );
        }
        Ok(())
    }
}

/// The next key in `0..keys` from a xorshift64* generator.
fn next_key(state: &mut u64, keys: u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D) % keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_cover_the_range() {
        let draw = || {
            let mut s = SEED;
            (0..1000).map(|_| next_key(&mut s, 10)).collect::<Vec<_>>()
        };
        let keys = draw();
        assert_eq!(keys, draw());
        assert!((0..10).all(|k| keys.contains(&k)));
        assert!(keys.iter().all(|&k| k < 10));
    }

    #[test]
    fn direct_get_headers_are_checked() {
        let want = DirectGet {
            stream: "KV_B",
            subject: "$KV.B.k1",
            seq: 2,
        };
        let good: &[u8] = b"NATS/1.0\r\nNats-Stream: KV_B\r\nNats-Subject: $KV.B.k1\r\nNats-Sequence: 2\r\nNats-Time-Stamp: 2024-01-01T00:00:00.000000001Z\r\n\r\n";
        assert!(want.check(Some(good)).is_ok());
        let bad: [&[u8]; 4] = [
            b"NATS/1.0 404 Message Not Found\r\n\r\n",
            b"NATS/1.0\r\nNats-Stream: KV_B\r\nNats-Subject: $KV.B.k1\r\nNats-Sequence: 3\r\n\r\n",
            b"NATS/1.0\r\nNats-Stream: KV_C\r\nNats-Subject: $KV.B.k1\r\nNats-Sequence: 2\r\n\r\n",
            b"NATS/1.0\r\nNats-Stream: KV_B\r\nNats-Subject: $KV.B.k2\r\nNats-Sequence: 2\r\n\r\n",
        ];
        for b in bad {
            assert!(
                want.check(Some(b)).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        assert!(want.check(None).is_err());
    }
}
