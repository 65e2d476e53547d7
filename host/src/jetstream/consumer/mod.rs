//! Consumers: a cursor over a stream with acknowledgements, redelivery, and delivery either
//! to waiting pull requests or to a push consumer's deliver subject — nats-server's
//! `consumer.go` for one server.
//!
//! This module is the delivery engine and nothing else: it never touches the network.
//! Every entry point takes the time (`now`, Unix nanoseconds) and returns the messages to
//! send as [`Delivery`] values; the message path (`path::consumers`) routes them like any
//! internal publish and drives the timers (one task per consumer).
//!
//! ```text
//!  pull request ─▶ pull()  ─┐                               ┌─▶ to the request's reply, or to
//!  ack (pull)   ─▶ ack()   ─┤                               │   deliver_subject (push), with
//!  new messages ─▶ poll()  ─┼─▶ step():                     ├─▶ reply = $JS.ACK.<s>.<c>.<dc>.
//!  timers       ─▶ poll()  ─┘   redeliveries first, then    │        <sseq>.<cseq>.<ts>.<pending>
//!                               the stream from `next`      └─▶ statuses (404/408/409/100)
//! ```
//!
//! A push consumer delivers only from its task (`poll`): an ack or a flow-control answer just
//! wakes the task. One publisher keeps its messages in order, and lets a step stop at
//! [`PUSH_STEP_BYTES`] and go on at once.
//!
//! Files: `pull.rs` (waiting requests), `push.rs` (interest, flow control, heartbeats, rate
//! limit), `ack.rs` (acknowledgements, ack floor), `state.rs` (on-disk state), `config.rs`
//! (validation), `registry.rs` (the account's consumers), `api.rs` (`$JS.API.CONSUMER.>`).
//!
//! Lock order: a consumer's `state` is taken before its stream's lock (the engine reads the
//! stream while holding its state); the stream never calls into a consumer while locked —
//! it only wakes the consumer's task after a write ([`Stream::watch`]).
//!
//! State on disk (file streams, durable consumers): `<stream>/obs/<name>/meta.json` (config
//! and creation time) and `state.json` (delivered, ack floor, pending, redelivery counts),
//! each replaced atomically (temp + fsync + rename), written at most every
//! [`STATE_FLUSH_NS`] and on shutdown, and before an ack with a reply is answered.

mod ack;
pub mod api;
pub mod config;
mod pull;
mod push;
pub mod registry;
mod state;

pub use state::StateError;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::errors::ApiError;
use super::store::StoredMsg;
use super::stream::Stream;
use crate::proto::headers::HeaderBlock;
use config::{AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy};
use pull::Waiting;
use push::Push;
use state::{json_bytes, read_json, replace_file, Meta, Saved};

/// Consumer state is written at most this often (nats-server flushes `o.dat` likewise).
pub const STATE_FLUSH_NS: i64 = 100_000_000;
/// Headers of the terminating pull statuses (ADR-37).
pub const PENDING_MSGS: &str = "Nats-Pending-Messages";
pub const PENDING_BYTES: &str = "Nats-Pending-Bytes";
/// The most new messages one step reads ahead (see [`Consumer::read_ahead`]).
const MAX_READ_AHEAD: usize = 256;
/// The most read-ahead messages kept from one step to the next (see `State::ahead`).
const KEEP_AHEAD: usize = 32;
/// The most a push consumer sends in one step; its task goes on with the rest at once. A
/// flow-control window's worth (up to 32 MiB) in one go made the subscriber's outbound buffer
/// grow (copied as it doubled, freed after each write) by megabytes.
const PUSH_STEP_BYTES: u64 = 256 * 1024;
const MAX_DELIVERIES_ADVISORY: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES";

/// A message for the message path: published to `to`; `subject` is what the receiver sees
/// (the stored message's subject for deliveries, `to` itself for statuses and advisories).
/// `Bytes` throughout: a delivery is built once per message on the hot path, and its
/// parts are shared (the request's reply subject, the read buffer) rather than copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub to: Bytes,
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
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
        Delivery::headers_only(to, None, h.finish())
    }

    /// A message of headers only (a status) to `to`, under `to`.
    fn headers_only(to: &str, reply: Option<String>, headers: Vec<u8>) -> Delivery {
        let to = Bytes::copy_from_slice(to.as_bytes());
        Delivery {
            subject: to.clone(),
            to,
            reply: reply.map(Bytes::from),
            headers: Some(Bytes::from(headers)),
            payload: Bytes::new(),
        }
    }

    fn event(subject: String, body: Value) -> Delivery {
        Delivery::publish(subject, body.to_string().into_bytes())
    }

    /// A plain message (an advisory) published to `subject`.
    pub fn publish(subject: String, payload: Vec<u8>) -> Delivery {
        let to = Bytes::from(subject);
        Delivery {
            subject: to.clone(),
            to,
            reply: None,
            headers: None,
            payload: Bytes::from(payload),
        }
    }

    /// `100 Idle Heartbeat` with the last delivered sequences (and, stalled on flow control,
    /// the unanswered request's reply subject).
    fn heartbeat(to: &str, delivered: SeqPair, stalled: Option<&str>) -> Delivery {
        let mut h = HeaderBlock::new(Some("100 Idle Heartbeat"))
            .add("Nats-Last-Consumer", &delivered.consumer_seq.to_string())
            .add("Nats-Last-Stream", &delivered.stream_seq.to_string());
        if let Some(reply) = stalled {
            h = h.add(push::STALLED_HEADER, reply);
        }
        Delivery::headers_only(to, None, h.finish())
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

/// Sequence pair of ConsumerInfo's `delivered` and `ack_floor`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct SeqPair {
    pub consumer_seq: u64,
    pub stream_seq: u64,
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
    /// Push consumers: deliver subject, interest, flow control, heartbeats, rate limit.
    push: Option<Push>,
    /// Whether the stream drops messages its consumers are done with (interest or work
    /// queue retention), and the ones this consumer finished since [`Consumer::retire_done`].
    retains: bool,
    retired: Vec<u64>,
    /// Messages from `next` on, read together ([`Consumer::read_ahead`]). A few may be kept
    /// for the next step (`ahead_carried`; each is checked to still be in the stream before
    /// it goes out), so a consumer paced by its acks reads a run, not a message per ack.
    ahead: VecDeque<StoredMsg>,
    /// How many messages the read that filled `ahead` returned (they share its buffer).
    ahead_read: usize,
    ahead_carried: bool,
    /// `replay_policy: original`: the pacing of first deliveries.
    replay: Option<Replay>,
    /// Nothing is delivered before this time (Unix ns; `config.pause_until`, parsed).
    paused_until: i64,
    /// No pending message's redelivery is due before this (a lower bound, exact after each
    /// scan): `poll` walks `pending` only once it has passed, not on every wake-up.
    deadline_floor: i64,
}

/// `replay_policy: original` delivers the messages that were in the stream when the consumer
/// started as far apart as they were published; what arrives later goes out at once (as
/// nats-server, which stops replaying once caught up).
#[derive(Debug)]
struct Replay {
    /// The stream's last sequence when the consumer started: paced up to here.
    until: u64,
    /// The publish time of the last message delivered, and when it was delivered (Unix ns).
    last: Option<(i64, i64)>,
    /// When the message held back is due (Unix ns; 0: none held back).
    due: i64,
}

impl Replay {
    /// When `m` may go out, if that is later than `now`.
    fn hold(&mut self, m: &StoredMsg, now: i64) -> Option<i64> {
        let (ts, at) = self.last?;
        if m.seq > self.until {
            return None;
        }
        let due = at.saturating_add(m.timestamp_ns.saturating_sub(ts).max(0));
        (due > now).then(|| {
            self.due = due;
            due
        })
    }

    /// A message published at `ts` went out at `now`.
    fn delivered(&mut self, ts: i64, now: i64) {
        self.last = Some((ts, now));
        self.due = 0;
    }
}

impl State {
    /// Whether `max_ack_pending` unacknowledged messages hold delivery back.
    fn acks_hold_back(&self) -> bool {
        let max = self.config.max_ack_pending;
        self.config.ack_policy != AckPolicy::None && max > 0 && self.pending.len() as i64 >= max
    }

    /// This consumer is done with `seq` (acknowledged, terminated, or delivered without acks).
    fn done(&mut self, seq: u64) {
        if self.retains {
            self.retired.push(seq);
        }
    }
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
    /// A push step stopped at [`PUSH_STEP_BYTES`] with more to send: its task goes on at once.
    more: AtomicBool,
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
        let deadline_floor = pending
            .values()
            .map(|p| p.deadline)
            .min()
            .unwrap_or(i64::MAX);
        let state = State {
            deadline_floor,
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
            push: Push::new(&config, stream.config().max_msg_size, now),
            retains: stream.config().retention != super::config::Retention::Limits,
            retired: Vec::new(),
            ahead: VecDeque::new(),
            ahead_read: 0,
            ahead_carried: false,
            paused_until: config.paused_until(),
            replay: (config.replay_policy == ReplayPolicy::Original).then(|| Replay {
                until: stream.state().last_seq,
                last: None,
                due: 0,
            }),
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
            more: AtomicBool::new(false),
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
        if s.config.deliver_subject != new.deliver_subject
            || s.config.rate_limit_bps != new.rate_limit_bps
        {
            s.push = Push::new(&new, self.stream.config().max_msg_size, super::now_ns());
        }
        s.paused_until = new.paused_until();
        s.ahead.clear();
        s.config = new;
        s.num_pending = None;
        drop(s);
        self.signal.notify_one();
        Ok(())
    }

    /// Pauses delivery until `until` (an RFC 3339 time; `None` or a past time resumes). The
    /// pause is part of the configuration, so it survives a restart. Returns the time
    /// delivery resumes (Unix ns; 0: not paused).
    pub fn pause(&self, until: Option<String>, now: i64) -> Result<i64, ApiError> {
        let mut cfg = self.state.lock().config.clone();
        cfg.pause_until = until;
        if cfg.paused_until() <= now {
            cfg.pause_until = None;
        }
        let until = cfg.paused_until();
        self.update(cfg)?;
        Ok(until)
    }

    /// Whether the last step stopped with more to push (see [`PUSH_STEP_BYTES`]).
    pub fn has_more(&self) -> bool {
        self.more.load(Ordering::Acquire)
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
        let push_bound = s.push.as_ref().is_some_and(|p| p.active);
        let mut info = json!({
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
        });
        if push_bound {
            info["push_bound"] = json!(true);
        }
        if s.paused_until > now {
            info["paused"] = json!(true);
            info["pause_remaining"] = json!(s.paused_until - now);
        }
        info
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

    /// Timers and new messages: redeliveries due, request expiry and heartbeats, then
    /// whatever can be delivered. Returns the next time something is due (Unix ns).
    pub fn poll(&self, now: i64, interest: &dyn Fn(&str) -> bool) -> (Vec<Delivery>, i64) {
        let mut out = Vec::new();
        let mut s = self.state.lock();
        if self.is_closed() {
            return (out, i64::MAX);
        }
        s.num_pending = None;
        self.more.store(false, Ordering::Release);
        if now >= s.deadline_floor {
            let mut due: Vec<u64> = Vec::new();
            let mut floor = i64::MAX;
            for (seq, p) in s.pending.iter_mut() {
                if p.deadline <= now {
                    p.deadline = i64::MAX;
                    due.push(*seq);
                }
                floor = floor.min(p.deadline);
            }
            s.deadline_floor = floor;
            s.redeliver.extend(due);
        }
        self.step(&mut s, now, interest, &mut out);
        let delivered = s.delivered;
        let mut next = i64::MAX;
        if let Some(p) = s.push.as_mut() {
            out.extend(p.heartbeat_due(now, delivered));
            // Without interest it waits for the account's notification of a new
            // subscription on the deliver subject (`Account::notify_interest`).
            next = next.min(p.next_due());
        }
        next = next.min(s.deadline_floor);
        for w in &s.waiting {
            if w.expires > 0 {
                next = next.min(w.expires);
            }
            if w.next_heartbeat > 0 {
                next = next.min(w.next_heartbeat);
            }
        }
        if let Some(r) = s.replay.as_ref().filter(|r| r.due > 0) {
            next = next.min(r.due);
        }
        if s.paused_until > now {
            next = next.min(s.paused_until);
        }
        if s.config.inactive_threshold > 0 {
            next = next.min(s.last_activity.saturating_add(s.config.inactive_threshold));
        }
        if s.dirty && self.dir.is_some() {
            next = next.min(s.written_at.saturating_add(STATE_FLUSH_NS));
        }
        (out, next)
    }

    /// An answer to a flow control request (published to `$JS.FC.<stream>.<consumer>.<token>`):
    /// delivery resumes if it was stalled on it.
    pub fn flow_control_answer(&self, subject: &str) {
        let mut s = self.state.lock();
        if self.is_closed() || !s.push.as_mut().is_some_and(|p| p.answered(subject)) {
            return;
        }
        // Delivery resumes on the consumer's task (the only place a push consumer delivers
        // from, so that its messages keep their order).
        drop(s);
        self.signal.notify_one();
    }

    /// Hands the messages this consumer finished to its stream, which drops them under
    /// interest or work-queue retention. Call after every entry point, with no lock held.
    pub fn retire_done(&self) {
        let done = std::mem::take(&mut self.state.lock().retired);
        if !done.is_empty() {
            self.stream.retire(&done);
        }
    }

    /// Whether the consumer has been idle past its `inactive_threshold` (no request
    /// waiting, no request or ack for that long).
    pub fn inactive(&self, now: i64) -> bool {
        let s = self.state.lock();
        s.config.inactive_threshold > 0
            && s.waiting.is_empty()
            && now.saturating_sub(s.last_activity) >= s.config.inactive_threshold
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
                s.done(seq);
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
        if s.acks_hold_back() {
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
        while let Some(m) = s.ahead.pop_front() {
            // Sequences are never reused: one still in the stream is the message read.
            if m.seq >= s.next && (!s.ahead_carried || self.stream.contains(m.seq)) {
                return Ok((m, 1));
            }
        }
        let want = self.read_ahead(s);
        s.ahead = self.stream.read_from(s.next, &s.filters, want).into();
        s.ahead_read = s.ahead.len();
        s.ahead_carried = false;
        s.ahead.pop_front().map(|m| (m, 1)).ok_or(true)
    }

    /// After a step: keeps a few unsent messages read ahead for the next one (copied out of
    /// a large read's buffer, so they do not hold it), drops more than that.
    fn carry_ahead(s: &mut State) {
        if s.ahead.is_empty() || s.ahead.len() > KEEP_AHEAD {
            s.ahead.clear();
            return;
        }
        if s.ahead_read > KEEP_AHEAD {
            for m in s.ahead.iter_mut() {
                m.headers = Bytes::copy_from_slice(&m.headers);
                m.payload = Bytes::copy_from_slice(&m.payload);
            }
            s.ahead_read = s.ahead.len();
        }
        s.ahead_carried = true;
    }

    /// How many new messages to read: what the waiting pull requests still want (a push
    /// consumer: a fixed run), at most [`MAX_READ_AHEAD`]; where `max_ack_pending` leaves
    /// less room, [`KEEP_AHEAD`] (acks make room one at a time, and what is kept serves them).
    fn read_ahead(&self, s: &State) -> usize {
        let wanted = match s.push {
            Some(_) => MAX_READ_AHEAD as u64,
            None => s.waiting.iter().map(|w| w.batch).sum(),
        };
        let max = s.config.max_ack_pending;
        let room = if s.config.ack_policy != AckPolicy::None && max > 0 {
            (max as u64).saturating_sub(s.pending.len() as u64)
        } else {
            u64::MAX
        };
        wanted
            .min(room.max(KEEP_AHEAD as u64))
            .clamp(1, MAX_READ_AHEAD as u64) as usize
    }

    /// Delivers while someone can take a message: waiting pull requests, or a push
    /// consumer's deliver subject while it has interest and is not held back.
    fn step(
        &self,
        s: &mut State,
        now: i64,
        interest: &dyn Fn(&str) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        self.expire_waiting(s, now, interest, out);
        if let Some(p) = s.push.as_mut() {
            p.active = interest(&p.deliver);
            if p.active {
                s.last_activity = now;
            }
        }
        if s.paused_until > now {
            // Requests wait (and expire) as usual; the task wakes when the pause ends.
            return;
        }
        let mut eof = false;
        let mut pushed = 0u64;
        loop {
            if s.push.is_some() && pushed >= PUSH_STEP_BYTES {
                self.more.store(true, Ordering::Release);
                break;
            }
            let open = match &s.push {
                Some(p) => p.open(),
                None => !s.waiting.is_empty(),
            };
            if !open {
                break;
            }
            let (m, dc) = match self.next_msg(s, out) {
                Ok(x) => x,
                Err(end) => {
                    eof = end;
                    break;
                }
            };
            if dc == 1 && s.replay.as_mut().and_then(|r| r.hold(&m, now)).is_some() {
                // Not yet: the consumer's task wakes at `due` (`s.next` has not moved).
                s.ahead.push_front(m);
                break;
            }
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
            let ack = ack_reply(
                &self.stream.name,
                &self.name,
                [dc, m.seq, cseq],
                m.timestamp_ns,
                pending,
            );
            let (headers, payload) = if s.config.headers_only {
                let h = HeaderBlock::extend(&m.headers)
                    .add("Nats-Msg-Size", &m.payload.len().to_string())
                    .finish();
                (Some(Bytes::from(h)), Bytes::new())
            } else {
                ((!m.headers.is_empty()).then_some(m.headers), m.payload)
            };
            let size = (m.subject.len()
                + ack.len()
                + headers.as_ref().map_or(0, Bytes::len)
                + payload.len()) as u64;
            let target = match s.push.as_mut() {
                Some(p) => p.take(size, now).then(|| p.deliver_to.clone()),
                None => pull::target(s, size, out),
            };
            let Some(to) = target else {
                // Nobody can take it now: deliver it later.
                if dc == 1 {
                    s.next = m.seq;
                    s.num_pending = None;
                    // `m` is not in `ahead` any more: read again from it next time.
                    s.ahead.clear();
                } else {
                    s.redeliver.push_front(m.seq);
                }
                break;
            };
            if s.push.is_none() {
                pull::taken(s, size, now);
            }
            if let (1, Some(r)) = (dc, s.replay.as_mut()) {
                r.delivered(m.timestamp_ns, now);
            }
            s.delivered.consumer_seq = cseq;
            s.delivered.stream_seq = s.delivered.stream_seq.max(m.seq);
            s.last_delivered = now;
            match s.config.ack_policy {
                AckPolicy::None => {
                    s.ack_floor = s.delivered;
                    s.done(m.seq);
                }
                _ => {
                    let deadline = now.saturating_add(s.config.ack_wait_for(dc));
                    s.deadline_floor = s.deadline_floor.min(deadline);
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
                subject: Bytes::from(m.subject),
                reply: Some(ack),
                headers,
                payload,
            });
            if let Some(p) = s.push.as_mut() {
                out.extend(p.sent(size, now, &self.stream.name, &self.name));
                pushed += size;
            }
        }
        Self::carry_ahead(s);
        if eof {
            pull::end_of_stream(s, out);
        }
    }
}

impl super::stream::Interest for Consumer {
    fn wants(&self, seq: u64, subject: &str) -> bool {
        let s = self.state.lock();
        !self.is_closed()
            && super::stream::takes(&s.filters, subject)
            && (seq >= s.next || s.pending.contains_key(&seq) || s.lps.contains(&seq))
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

/// `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>`,
/// the reply subject of a delivered message (ADR-15's v1 form), in a buffer of exactly its
/// size: it is made for every message delivered.
fn ack_reply(stream: &str, consumer: &str, seqs: [u64; 3], ts: i64, pending: u64) -> Bytes {
    const PREFIX: &[u8] = b"$JS.ACK.";
    let mut ts_buf = itoa::Buffer::new();
    let ts = ts_buf.format(ts).as_bytes();
    let mut bufs = [
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
    ];
    let [a, b, c, d] = &mut bufs;
    let numbers = [
        a.format(seqs[0]).as_bytes(),
        b.format(seqs[1]).as_bytes(),
        c.format(seqs[2]).as_bytes(),
        ts,
        d.format(pending).as_bytes(),
    ];
    let len = PREFIX.len()
        + stream.len()
        + 1
        + consumer.len()
        + numbers.iter().map(|n| n.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(stream.as_bytes());
    out.push(b'.');
    out.extend_from_slice(consumer.as_bytes());
    for n in numbers {
        out.push(b'.');
        out.extend_from_slice(n);
    }
    Bytes::from(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
