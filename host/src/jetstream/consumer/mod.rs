//! Consumers: a cursor over a stream with acknowledgements, redelivery and (for pull
//! consumers) a queue of waiting requests — nats-server's `consumer.go` for one server.
//!
//! This module is the delivery engine and nothing else: it never touches the network.
//! Every entry point takes the time (`now`, Unix nanoseconds) and returns the messages to
//! send as [`Delivery`] values; the message path (`path::consumers`) routes them like any
//! internal publish and drives the timers (one task per consumer). A delivery does not care
//! whether its target is a pull request's reply subject or (later) a push deliver subject.
//!
//! ```text
//!  pull request ─▶ pull() ─┐                               ┌─▶ message to the request's reply,
//!  ack          ─▶ ack()  ─┼─▶ step(): redeliveries first, ├─▶ reply = $JS.ACK.<s>.<c>.<dc>.
//!  new messages ─▶ poll() ─┤   then the stream from sseq   │        <sseq>.<cseq>.<ts>.<pending>
//!  timers       ─▶ poll() ─┘                               └─▶ statuses (404/408/409/100)
//! ```
//!
//! Lock order: a consumer's `state` is taken before its stream's lock (the engine reads the
//! stream while holding its state); the stream never calls into a consumer while locked —
//! it only wakes the consumer's task after a write ([`Stream::watch`]).
//!
//! State on disk (file streams, durable consumers): `<stream>/obs/<name>/meta.json` (config
//! and creation time) and `state.json` (delivered, ack floor, pending, redelivery counts),
//! each replaced atomically (temp + fsync + rename), written at most every
//! [`STATE_FLUSH_NS`] and on shutdown, and before an ack with a reply is answered.

pub mod api;
pub mod config;
pub mod registry;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::errors::ApiError;
use super::store::StoredMsg;
use super::stream::Stream;
use crate::proto::headers::HeaderBlock;
use config::{AckPolicy, ConsumerConfig, DeliverPolicy};

/// Consumer state is written at most this often (nats-server flushes `o.dat` likewise).
pub const STATE_FLUSH_NS: i64 = 100_000_000;
/// Headers of the terminating pull statuses (ADR-37).
pub const PENDING_MSGS: &str = "Nats-Pending-Messages";
pub const PENDING_BYTES: &str = "Nats-Pending-Bytes";
const MAX_DELIVERIES_ADVISORY: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";

/// Why a consumer's state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A message for the message path: published to `to`; `subject` is what the receiver sees
/// (the stored message's subject for deliveries, `to` itself for statuses and advisories).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub to: String,
    pub subject: String,
    pub reply: Option<String>,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Delivery {
    /// A header-only status (`NATS/1.0 <code> <text>`) to `to`.
    fn status(to: &str, status: &str, pending: Option<(u64, u64)>) -> Delivery {
        let mut h = HeaderBlock::new(Some(status));
        if let Some((msgs, bytes)) = pending {
            h = h
                .add(PENDING_MSGS, &msgs.to_string())
                .add(PENDING_BYTES, &bytes.to_string());
        }
        Delivery {
            to: to.to_owned(),
            subject: to.to_owned(),
            reply: None,
            headers: Some(h.finish()),
            payload: Vec::new(),
        }
    }

    fn event(subject: String, body: Value) -> Delivery {
        Delivery {
            to: subject.clone(),
            subject,
            reply: None,
            headers: None,
            payload: body.to_string().into_bytes(),
        }
    }

    /// Whether it is delivered under another subject than the one it is routed by.
    pub fn redirected(&self) -> bool {
        self.to != self.subject
    }
}

/// A message delivered and not acknowledged yet.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Pending {
    /// The consumer sequence of its latest delivery.
    cseq: u64,
    /// When it was last delivered (Unix ns).
    ts: i64,
    /// When it is redelivered unless acknowledged (Unix ns); `i64::MAX` once queued.
    #[serde(skip, default)]
    deadline: i64,
}

/// One waiting pull request.
struct Waiting {
    reply: String,
    /// Messages still wanted.
    batch: u64,
    /// Bytes still allowed (0: no limit).
    max_bytes: u64,
    /// Whether the request set `max_bytes`.
    bytes_limited: bool,
    delivered: u64,
    /// Unix ns; 0: none.
    expires: i64,
    no_wait: bool,
    heartbeat: i64,
    next_heartbeat: i64,
}

/// A pull request body: an integer (the batch) or JSON.
#[derive(Deserialize, Default, Debug, PartialEq)]
struct PullRequest {
    #[serde(default)]
    batch: i64,
    #[serde(default)]
    expires: i64,
    #[serde(default)]
    max_bytes: i64,
    #[serde(default)]
    no_wait: bool,
    #[serde(default)]
    idle_heartbeat: i64,
}

/// Sequence pair of ConsumerInfo's `delivered` and `ack_floor`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct SeqPair {
    pub consumer_seq: u64,
    pub stream_seq: u64,
}

/// What `state.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    delivered: SeqPair,
    ack_floor: SeqPair,
    /// The next stream sequence to look at.
    next: u64,
    /// (stream seq, pending).
    pending: Vec<(u64, Pending)>,
    /// (stream seq, deliveries) for messages delivered more than once.
    redelivered: Vec<(u64, u64)>,
}

/// What `meta.json` holds.
#[derive(Serialize, Deserialize)]
struct Meta {
    config: ConsumerConfig,
    created: String,
}

struct State {
    config: ConsumerConfig,
    filters: Vec<String>,
    /// The next stream sequence to consider for a first delivery.
    next: u64,
    delivered: SeqPair,
    ack_floor: SeqPair,
    pending: BTreeMap<u64, Pending>,
    /// Deliveries so far of messages delivered more than once (nats-server's `rdc`).
    redelivered: HashMap<u64, u64>,
    /// Stream sequences due for redelivery, oldest first.
    redeliver: VecDeque<u64>,
    waiting: VecDeque<Waiting>,
    /// Last request or ack (Unix ns), for `inactive_threshold`.
    last_activity: i64,
    last_delivered: i64,
    last_ack: i64,
    /// Unwritten state changes, and when state was last written.
    dirty: bool,
    written_at: i64,
    /// Messages matching the filters from `next` on (nats-server's `npc`); `None`: unknown.
    num_pending: Option<u64>,
    /// `last_per_subject`: the sequences still to deliver first (the last message of each
    /// subject when the consumer was created), ascending; then delivery goes on from
    /// `lps_end`, the first sequence after them.
    lps: VecDeque<u64>,
    lps_end: u64,
}

pub struct Consumer {
    pub name: String,
    pub stream: Arc<Stream>,
    pub created: SystemTime,
    /// `obs/<name>` of a file stream, for durable consumers.
    dir: Option<PathBuf>,
    state: Mutex<State>,
    /// Wakes the consumer's task: new messages, a new request, a deletion.
    pub signal: Arc<Notify>,
    closed: AtomicBool,
}

fn json_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Writes `bytes` to `path` atomically: a temp file, fsync, rename.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    use std::io::Write;
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Json {
        path: path.to_path_buf(),
        source,
    })
}

impl Consumer {
    /// A new consumer positioned by its deliver policy. `dir` is where a durable consumer of
    /// a file stream keeps its state (created here).
    pub fn create(
        name: String,
        stream: Arc<Stream>,
        config: ConsumerConfig,
        dir: Option<PathBuf>,
        now: i64,
    ) -> Result<Arc<Consumer>, ApiError> {
        let created = SystemTime::now();
        if let Some(d) = &dir {
            let meta = Meta {
                config: config.clone(),
                created: crate::timefmt::rfc3339(created),
            };
            std::fs::create_dir_all(d)
                .map_err(ApiError::consumer_store_failed)
                .and_then(|()| {
                    replace_file(&d.join("meta.json"), &json_bytes(&meta))
                        .map_err(ApiError::consumer_store_failed)
                })?;
        }
        let next = start_seq(&stream, &config)?;
        let c = Consumer::with_state(
            name,
            stream,
            config,
            dir,
            created,
            now,
            Saved {
                next,
                delivered: SeqPair {
                    consumer_seq: 0,
                    stream_seq: next.saturating_sub(1),
                },
                ack_floor: SeqPair {
                    consumer_seq: 0,
                    stream_seq: next.saturating_sub(1),
                },
                ..Saved::default()
            },
        );
        {
            let mut s = c.state.lock();
            s.dirty = true;
            if s.config.deliver_policy == DeliverPolicy::LastPerSubject {
                let (lps, last) = c.stream.last_per_subject(&s.filters);
                s.lps = lps.into();
                s.lps_end = last + 1;
                s.num_pending = None;
            }
        }
        c.persist(now, true);
        Ok(c)
    }

    /// A durable consumer restored from `dir` (its `meta.json` and `state.json`).
    pub fn recover(
        stream: Arc<Stream>,
        dir: PathBuf,
        now: i64,
    ) -> Result<(Arc<Consumer>, ConsumerConfig), StateError> {
        let meta: Meta = read_json(&dir.join("meta.json"))?;
        let state_file = dir.join("state.json");
        let saved: Saved = if state_file.exists() {
            read_json(&state_file)?
        } else {
            Saved::default()
        };
        let created = crate::timefmt::parse_rfc3339(&meta.created)
            .map(|ns| SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(ns.max(0) as u64))
            .unwrap_or_else(SystemTime::now);
        let name = if meta.config.durable_name.is_empty() {
            meta.config.name.clone()
        } else {
            meta.config.durable_name.clone()
        };
        let config = meta.config.clone();
        let c = Consumer::with_state(name, stream, meta.config, Some(dir), created, now, saved);
        Ok((c, config))
    }

    fn with_state(
        name: String,
        stream: Arc<Stream>,
        config: ConsumerConfig,
        dir: Option<PathBuf>,
        created: SystemTime,
        now: i64,
        saved: Saved,
    ) -> Arc<Consumer> {
        let pending: BTreeMap<u64, Pending> = saved
            .pending
            .into_iter()
            .map(|(seq, mut p)| {
                let dc = 1 + saved
                    .redelivered
                    .iter()
                    .find(|(s, _)| *s == seq)
                    .map_or(0, |(_, n)| n - 1);
                p.deadline = p.ts.saturating_add(config.ack_wait_for(dc)).max(now);
                (seq, p)
            })
            .collect();
        let filters = config.filters();
        let state = State {
            filters,
            next: saved.next.max(1),
            delivered: saved.delivered,
            ack_floor: saved.ack_floor,
            pending,
            redelivered: saved.redelivered.into_iter().collect(),
            redeliver: VecDeque::new(),
            waiting: VecDeque::new(),
            last_activity: now,
            last_delivered: 0,
            last_ack: 0,
            dirty: false,
            written_at: 0,
            num_pending: None,
            lps: VecDeque::new(),
            lps_end: 0,
            config,
        };
        let signal = Arc::new(Notify::new());
        stream.watch(&signal);
        Arc::new(Consumer {
            name,
            stream,
            created,
            dir,
            state: Mutex::new(state),
            signal,
            closed: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> ConsumerConfig {
        self.state.lock().config.clone()
    }

    /// Replaces the configuration with `new` (already checked by
    /// [`ConsumerConfig::check_update`]).
    pub fn update(&self, new: ConsumerConfig) -> Result<(), ApiError> {
        if let Some(d) = &self.dir {
            let meta = Meta {
                config: new.clone(),
                created: crate::timefmt::rfc3339(self.created),
            };
            replace_file(&d.join("meta.json"), &json_bytes(&meta))
                .map_err(ApiError::consumer_store_failed)?;
        }
        let mut s = self.state.lock();
        s.filters = new.filters();
        s.config = new;
        s.num_pending = None;
        drop(s);
        self.signal.notify_one();
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops the consumer (deleted, or its stream is): its task ends, nothing more is
    /// written. With `remove`, its directory goes too.
    pub fn close(&self, remove: bool) {
        let _s = self.state.lock();
        self.closed.store(true, Ordering::Release);
        self.stream.unwatch(&self.signal);
        self.signal.notify_one();
        if let (true, Some(d)) = (remove, &self.dir) {
            if let Err(e) = std::fs::remove_dir_all(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("JetStream: removing {}: {e}", d.display());
                }
            }
        }
    }

    /// The ConsumerInfo object (without `type`).
    pub fn info_json(&self, now: i64) -> Value {
        let mut s = self.state.lock();
        self.expire_waiting(&mut s, now, &|_: &str| true, &mut Vec::new());
        let num_pending = self.num_pending(&mut s);
        let with_active = |p: SeqPair, at: i64| {
            let mut v = json!(p);
            if at > 0 {
                v["last_active"] = json!(super::stream_time(at));
            }
            v
        };
        json!({
            "stream_name": self.stream.name,
            "name": self.name,
            "created": crate::timefmt::rfc3339(self.created),
            "config": serde_json::to_value(&s.config).unwrap_or(Value::Null),
            "delivered": with_active(s.delivered, s.last_delivered),
            "ack_floor": with_active(s.ack_floor, s.last_ack),
            "num_ack_pending": s.pending.len(),
            "num_redelivered": s.redelivered.len(),
            "num_waiting": s.waiting.len(),
            "num_pending": num_pending,
            "ts": crate::timefmt::rfc3339(SystemTime::now()),
        })
    }

    fn num_pending(&self, s: &mut State) -> u64 {
        if let Some(n) = s.num_pending {
            return n;
        }
        let n = if s.lps.is_empty() {
            self.stream.count_from(s.next, &s.filters)
        } else {
            s.lps.len() as u64 + self.stream.count_from(s.lps_end, &s.filters)
        };
        s.num_pending = Some(n);
        n
    }

    /// A pull request on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` answered on `reply`.
    /// `interest` tells whether someone still listens on a reply subject.
    pub fn pull(
        &self,
        reply: &str,
        body: &[u8],
        now: i64,
        interest: &dyn Fn(&str) -> bool,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut s = self.state.lock();
        if self.is_closed() {
            return out;
        }
        s.last_activity = now;
        let req = match parse_pull(body) {
            Ok(r) => r,
            Err(why) => {
                out.push(Delivery::status(
                    reply,
                    &format!("400 Bad Request - {why}"),
                    None,
                ));
                return out;
            }
        };
        let cfg = &s.config;
        let batch = req.batch.max(1);
        if cfg.max_batch > 0 && batch > cfg.max_batch {
            let text = format!("409 Exceeded MaxRequestBatch of {}", cfg.max_batch);
            out.push(Delivery::status(reply, &text, None));
            return out;
        }
        if req.expires > 0 && cfg.max_expires > 0 && req.expires > cfg.max_expires {
            let text = format!(
                "409 Exceeded MaxRequestExpires of {}",
                crate::timefmt::go_duration(std::time::Duration::from_nanos(
                    cfg.max_expires as u64
                ))
            );
            out.push(Delivery::status(reply, &text, None));
            return out;
        }
        if req.max_bytes > 0 && cfg.max_bytes > 0 && req.max_bytes > cfg.max_bytes {
            let text = format!("409 Exceeded MaxRequestMaxBytes of {}", cfg.max_bytes);
            out.push(Delivery::status(reply, &text, None));
            return out;
        }
        let max_waiting = cfg.max_waiting.max(1) as usize;
        if s.waiting.len() >= max_waiting {
            self.expire_waiting(&mut s, now, interest, &mut out);
        }
        if req.no_wait {
            let available = self.num_pending(&mut s) + s.redeliver.len() as u64;
            if available == 0 && req.expires <= 0 {
                out.push(Delivery::status(reply, "404 No Messages", None));
                return out;
            }
        }
        if s.waiting.len() >= max_waiting {
            out.push(Delivery::status(reply, "409 Exceeded MaxWaiting", None));
            return out;
        }
        let heartbeat = req.idle_heartbeat.max(0);
        s.waiting.push_back(Waiting {
            reply: reply.to_owned(),
            batch: batch as u64,
            max_bytes: req.max_bytes.max(0) as u64,
            bytes_limited: req.max_bytes > 0,
            delivered: 0,
            expires: if req.expires > 0 {
                now.saturating_add(req.expires)
            } else {
                0
            },
            no_wait: req.no_wait,
            heartbeat,
            next_heartbeat: if heartbeat > 0 { now + heartbeat } else { 0 },
        });
        self.step(&mut s, now, interest, &mut out);
        out
    }

    /// An acknowledgement published to `subject` (`$JS.ACK.…`), with its reply subject.
    pub fn ack(
        &self,
        subject: &str,
        reply: Option<&str>,
        body: &[u8],
        now: i64,
        interest: &dyn Fn(&str) -> bool,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        let Some(meta) = AckMeta::parse(subject) else {
            return out;
        };
        let mut s = self.state.lock();
        if self.is_closed() {
            return out;
        }
        s.last_activity = now;
        let body_str = std::str::from_utf8(body).unwrap_or("");
        let trimmed = body_str.trim_start();
        let (kind, rest) = match trimmed.find(|c: char| c.is_whitespace() || c == '{') {
            Some(i) => (&trimmed[..i], trimmed[i..].trim()),
            None => (trimmed, ""),
        };
        let mut synchronous = reply.is_some();
        match kind {
            "" | "+ACK" => self.acked(&mut s, meta, now),
            "+NXT" => {
                self.acked(&mut s, meta, now);
                synchronous = false;
                if let Some(r) = reply {
                    drop(s);
                    let mut more = self.pull(r, rest.as_bytes(), now, interest);
                    s = self.state.lock();
                    out.append(&mut more);
                }
            }
            "-NAK" => {
                let delay = serde_json::from_str::<Value>(rest)
                    .ok()
                    .and_then(|v| v.get("delay").and_then(Value::as_i64))
                    .unwrap_or(0);
                if let Some(p) = s.pending.get_mut(&meta.sseq) {
                    if delay > 0 {
                        p.deadline = now.saturating_add(delay);
                    } else {
                        p.deadline = i64::MAX;
                        s.redeliver.push_back(meta.sseq);
                    }
                }
            }
            "+WPI" => {
                let dc = s.redelivered.get(&meta.sseq).copied().unwrap_or(1);
                let wait = s.config.ack_wait_for(dc);
                if let Some(p) = s.pending.get_mut(&meta.sseq) {
                    if p.deadline != i64::MAX {
                        p.deadline = now.saturating_add(wait);
                    }
                }
                synchronous = false;
            }
            "+TERM" => {
                if s.pending.remove(&meta.sseq).is_some() {
                    s.redelivered.remove(&meta.sseq);
                    s.last_ack = now;
                    self.update_floor(&mut s);
                    s.dirty = true;
                }
            }
            _ => {
                tracing::debug!(
                    "JetStream: unknown ack '{kind}' for consumer '{}'",
                    self.name
                );
                synchronous = false;
            }
        }
        self.step(&mut s, now, interest, &mut out);
        drop(s);
        if synchronous {
            // A double ack: the state is on disk before the confirmation goes out.
            self.persist(now, true);
            if let Some(r) = reply {
                out.push(Delivery {
                    to: r.to_owned(),
                    subject: r.to_owned(),
                    reply: None,
                    headers: None,
                    payload: Vec::new(),
                });
            }
        }
        out
    }

    fn acked(&self, s: &mut State, meta: AckMeta, now: i64) {
        match s.config.ack_policy {
            AckPolicy::None => return,
            AckPolicy::Explicit => {
                if s.pending.remove(&meta.sseq).is_none() {
                    return;
                }
                s.redelivered.remove(&meta.sseq);
            }
            AckPolicy::All => {
                let keep = s.pending.split_off(&(meta.sseq + 1));
                let gone = std::mem::replace(&mut s.pending, keep);
                if gone.is_empty() {
                    return;
                }
                for seq in gone.keys() {
                    s.redelivered.remove(seq);
                }
            }
        }
        s.last_ack = now;
        s.dirty = true;
        self.update_floor(s);
    }

    fn update_floor(&self, s: &mut State) {
        s.ack_floor = match s.pending.first_key_value() {
            None => s.delivered,
            Some((seq, p)) => SeqPair {
                consumer_seq: p.cseq.saturating_sub(1).max(s.ack_floor.consumer_seq),
                stream_seq: (seq - 1).max(s.ack_floor.stream_seq),
            },
        };
        s.redeliver.retain(|seq| s.pending.contains_key(seq));
    }

    /// Timers and new messages: redeliveries due, request expiry and heartbeats, then
    /// whatever can be delivered. Returns the next time something is due (Unix ns).
    pub fn poll(&self, now: i64, interest: &dyn Fn(&str) -> bool) -> (Vec<Delivery>, i64) {
        let mut out = Vec::new();
        let mut s = self.state.lock();
        if self.is_closed() {
            return (out, i64::MAX);
        }
        s.num_pending = None;
        let mut due: Vec<u64> = Vec::new();
        for (seq, p) in s.pending.iter_mut() {
            if p.deadline <= now {
                p.deadline = i64::MAX;
                due.push(*seq);
            }
        }
        s.redeliver.extend(due);
        self.step(&mut s, now, interest, &mut out);
        let mut next = i64::MAX;
        for p in s.pending.values() {
            next = next.min(p.deadline);
        }
        for w in &s.waiting {
            if w.expires > 0 {
                next = next.min(w.expires);
            }
            if w.next_heartbeat > 0 {
                next = next.min(w.next_heartbeat);
            }
        }
        if s.config.inactive_threshold > 0 {
            next = next.min(s.last_activity.saturating_add(s.config.inactive_threshold));
        }
        if s.dirty && self.dir.is_some() {
            next = next.min(s.written_at.saturating_add(STATE_FLUSH_NS));
        }
        (out, next)
    }

    /// Whether the consumer has been idle past its `inactive_threshold` (no request
    /// waiting, no request or ack for that long).
    pub fn inactive(&self, now: i64) -> bool {
        let s = self.state.lock();
        s.config.inactive_threshold > 0
            && s.waiting.is_empty()
            && now.saturating_sub(s.last_activity) >= s.config.inactive_threshold
    }

    /// Writes the state if it changed (at most every [`STATE_FLUSH_NS`] unless `force`).
    pub fn persist(&self, now: i64, force: bool) {
        let Some(dir) = &self.dir else { return };
        let bytes = {
            let mut s = self.state.lock();
            if self.is_closed() || !s.dirty || (!force && now - s.written_at < STATE_FLUSH_NS) {
                return;
            }
            s.dirty = false;
            s.written_at = now;
            let saved = Saved {
                delivered: s.delivered,
                ack_floor: s.ack_floor,
                next: s.next,
                pending: s.pending.iter().map(|(k, v)| (*k, *v)).collect(),
                redelivered: s.redelivered.iter().map(|(k, v)| (*k, *v)).collect(),
            };
            json_bytes(&saved)
        };
        if let Err(e) = replace_file(&dir.join("state.json"), &bytes) {
            tracing::error!("JetStream: writing consumer '{}' state: {e}", self.name);
            self.state.lock().dirty = true;
        }
    }

    /// Drops requests that expired (408) or whose requester went away.
    fn expire_waiting(
        &self,
        s: &mut State,
        now: i64,
        interest: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        s.waiting.retain_mut(|w| {
            if w.expires > 0 && now >= w.expires {
                out.push(Delivery::status(
                    &w.reply,
                    "408 Request Timeout",
                    Some((w.batch, w.max_bytes)),
                ));
                return false;
            }
            if !interest(&w.reply) {
                return false;
            }
            if w.next_heartbeat > 0 && now >= w.next_heartbeat {
                out.push(self.heartbeat(&w.reply, s.delivered, s.config.ack_policy));
                w.next_heartbeat = now + w.heartbeat;
            }
            true
        });
    }

    fn heartbeat(&self, to: &str, delivered: SeqPair, _p: AckPolicy) -> Delivery {
        let headers = HeaderBlock::new(Some("100 Idle Heartbeat"))
            .add("Nats-Last-Consumer", &delivered.consumer_seq.to_string())
            .add("Nats-Last-Stream", &delivered.stream_seq.to_string())
            .finish();
        Delivery {
            to: to.to_owned(),
            subject: to.to_owned(),
            reply: None,
            headers: Some(headers),
            payload: Vec::new(),
        }
    }

    /// The next message to deliver: a redelivery, else the next new one, with its delivery
    /// count; `Err(true)` at the end of the stream, `Err(false)` when stalled on
    /// `max_ack_pending`.
    fn next_msg(&self, s: &mut State, out: &mut Vec<Delivery>) -> Result<(StoredMsg, u64), bool> {
        while let Some(seq) = s.redeliver.pop_front() {
            if !s.pending.contains_key(&seq) {
                continue;
            }
            let dc = s.redelivered.get(&seq).copied().unwrap_or(1) + 1;
            if s.config.max_deliver > 0 && dc > s.config.max_deliver as u64 {
                out.push(Delivery::event(
                    format!(
                        "{MAX_DELIVERIES_ADVISORY}.{}.{}",
                        self.stream.name, self.name
                    ),
                    json!({
                        "type": "io.nats.jetstream.advisory.v1.max_deliver",
                        "id": crate::util::event_id(),
                        "timestamp": crate::timefmt::rfc3339(SystemTime::now()),
                        "stream": self.stream.name,
                        "consumer": self.name,
                        "stream_seq": seq,
                        "deliveries": dc - 1,
                    }),
                ));
                // As nats-server: no longer pending, never delivered again (its redelivery
                // count stays).
                s.pending.remove(&seq);
                self.update_floor(s);
                s.dirty = true;
                continue;
            }
            match self.stream.get(seq) {
                Ok(Some(m)) => {
                    s.redelivered.insert(seq, dc);
                    return Ok((m, dc));
                }
                _ => {
                    // Gone from the stream: nothing left to acknowledge.
                    s.pending.remove(&seq);
                    s.redelivered.remove(&seq);
                    self.update_floor(s);
                }
            }
        }
        let max = s.config.max_ack_pending;
        if s.config.ack_policy != AckPolicy::None && max > 0 && s.pending.len() as i64 >= max {
            return Err(false);
        }
        while let Some(&seq) = s.lps.front() {
            match self.stream.get(seq) {
                Ok(Some(m)) => return Ok((m, 1)),
                _ => {
                    s.lps.pop_front();
                }
            }
        }
        if s.next < s.lps_end {
            s.next = s.lps_end;
            s.num_pending = None;
        }
        match self.stream.next_matching(s.next, &s.filters) {
            Some(m) => Ok((m, 1)),
            None => Err(true),
        }
    }

    /// Delivers to waiting requests while there are messages for them.
    fn step(
        &self,
        s: &mut State,
        now: i64,
        interest: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        self.expire_waiting(s, now, interest, out);
        let mut eof = false;
        while !s.waiting.is_empty() {
            let (m, dc) = match self.next_msg(s, out) {
                Ok(x) => x,
                Err(end) => {
                    eof = end;
                    break;
                }
            };
            if dc == 1 {
                s.next = m.seq + 1;
                if s.lps.front() == Some(&m.seq) {
                    s.lps.pop_front();
                }
                if let Some(n) = s.num_pending.as_mut() {
                    *n = n.saturating_sub(1);
                }
            }
            let pending = self.num_pending(s);
            let cseq = s.delivered.consumer_seq + 1;
            let ack = format!(
                "$JS.ACK.{}.{}.{dc}.{}.{cseq}.{}.{pending}",
                self.stream.name, self.name, m.seq, m.timestamp_ns
            );
            let (headers, payload) = if s.config.headers_only {
                let h = HeaderBlock::extend(&m.headers)
                    .add("Nats-Msg-Size", &m.payload.len().to_string())
                    .finish();
                (Some(h), Vec::new())
            } else {
                ((!m.headers.is_empty()).then_some(m.headers), m.payload)
            };
            let size = (m.subject.len()
                + ack.len()
                + headers.as_ref().map_or(0, Vec::len)
                + payload.len()) as u64;
            // The first request that can take it (a too-small max_bytes ends a request).
            let mut target = None;
            while let Some(w) = s.waiting.front() {
                if w.bytes_limited && size > w.max_bytes {
                    out.push(Delivery::status(
                        &w.reply,
                        "409 Message Size Exceeds MaxBytes",
                        Some((w.batch, w.max_bytes)),
                    ));
                    s.waiting.pop_front();
                    continue;
                }
                target = Some(w.reply.clone());
                break;
            }
            let Some(to) = target else {
                // Nobody can take it: deliver it later.
                if dc == 1 {
                    s.next = m.seq;
                    s.num_pending = None;
                } else {
                    s.redeliver.push_front(m.seq);
                }
                break;
            };
            if let Some(w) = s.waiting.front_mut() {
                w.batch -= 1;
                w.delivered += 1;
                if w.bytes_limited {
                    w.max_bytes -= size;
                }
                if w.heartbeat > 0 {
                    w.next_heartbeat = now + w.heartbeat;
                }
                if w.batch == 0 || (w.bytes_limited && w.max_bytes == 0) {
                    s.waiting.pop_front();
                }
            }
            s.delivered.consumer_seq = cseq;
            s.delivered.stream_seq = s.delivered.stream_seq.max(m.seq);
            s.last_delivered = now;
            match s.config.ack_policy {
                AckPolicy::None => s.ack_floor = s.delivered,
                _ => {
                    let deadline = now.saturating_add(s.config.ack_wait_for(dc));
                    s.pending.insert(
                        m.seq,
                        Pending {
                            cseq,
                            ts: now,
                            deadline,
                        },
                    );
                }
            }
            s.dirty = true;
            out.push(Delivery {
                to,
                subject: m.subject,
                reply: Some(ack),
                headers,
                payload,
            });
        }
        if eof {
            // One-shot requests end at the end of the stream.
            s.waiting.retain(|w| {
                if !w.no_wait {
                    return true;
                }
                if w.delivered > 0 {
                    out.push(Delivery::status(
                        &w.reply,
                        "408 Request Timeout",
                        Some((w.batch, w.max_bytes)),
                    ));
                    false
                } else if w.expires == 0 {
                    out.push(Delivery::status(&w.reply, "404 No Messages", None));
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Tells waiting requests the consumer is gone (`409 Consumer Deleted`).
    pub fn drain_deleted(&self) -> Vec<Delivery> {
        let mut s = self.state.lock();
        s.waiting
            .drain(..)
            .map(|w| Delivery::status(&w.reply, "409 Consumer Deleted", None))
            .collect()
    }
}

/// The stream sequence a new consumer starts at.
fn start_seq(stream: &Stream, cfg: &ConsumerConfig) -> Result<u64, ApiError> {
    let st = stream.state();
    let filters = cfg.filters();
    Ok(match cfg.deliver_policy {
        DeliverPolicy::All | DeliverPolicy::LastPerSubject => st.first_seq.max(1),
        DeliverPolicy::New => st.last_seq + 1,
        DeliverPolicy::Last => {
            if filters.is_empty() {
                st.last_seq.max(1)
            } else {
                filters
                    .iter()
                    .filter_map(|f| stream.last_for_subject(f).ok().flatten().map(|m| m.seq))
                    .max()
                    .unwrap_or(st.last_seq + 1)
            }
        }
        DeliverPolicy::ByStartSequence => cfg.opt_start_seq,
        DeliverPolicy::ByStartTime => {
            let since = cfg.start_time_ns();
            let mut seq = st.first_seq.max(1);
            loop {
                match stream.next_matching(seq, &[]) {
                    Some(m) if m.timestamp_ns < since => seq = m.seq + 1,
                    Some(m) => break m.seq,
                    None => break st.last_seq + 1,
                }
            }
        }
    })
}

/// The tokens of a v1 ack subject that the engine uses.
#[derive(Clone, Copy)]
struct AckMeta {
    sseq: u64,
}

impl AckMeta {
    /// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`.
    fn parse(subject: &str) -> Option<AckMeta> {
        let t: Vec<&str> = subject.split('.').collect();
        if t.len() != 9 || t[0] != "$JS" || t[1] != "ACK" {
            return None;
        }
        Some(AckMeta {
            sseq: t[5].parse().ok()?,
        })
    }
}

fn parse_pull(body: &[u8]) -> Result<PullRequest, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?.trim();
    if text.is_empty() {
        return Ok(PullRequest {
            batch: 1,
            ..PullRequest::default()
        });
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(PullRequest {
            batch: n,
            ..PullRequest::default()
        });
    }
    let r: PullRequest = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if r.idle_heartbeat > 0 && r.expires > 0 && r.idle_heartbeat * 2 > r.expires {
        return Err("heartbeat value too large".into());
    }
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
