//! One stream: its configuration, its store, and the rules applied when a message is stored
//! (duplicate window, expected-* headers, rollups, limits and discard policy). What its
//! consumers read and retain is in `consumers.rs`.
//!
//! A stream serializes everything behind one mutex: publishers from many connections append
//! in turn, and API requests see a consistent store.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::config::{Discard, Retention, Storage, StreamConfig};
use super::errors::ApiError;
use super::store::{StoredMsg, StreamStore};
use crate::proto::headers::header_value;
use crate::subject::mapping::Mapping;

mod consumers;
pub use consumers::{takes, Interest, InterestHolder, READ_AHEAD_BYTES};

pub const MSG_ID: &str = "Nats-Msg-Id";
pub const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
pub const EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
pub const EXPECTED_LAST_SUBJ_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
pub const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
pub const ROLLUP: &str = "Nats-Rollup";

/// How far back the duplicate window is rebuilt after a restart, at most.
const DEDUPE_REBUILD_MAX: u64 = 100_000;
/// nats-server's limit on a stored message's header block.
const MAX_HEADER: usize = 64 * 1024;

/// Bytes stored, shared by a stream with its account and the server for limit checks.
#[derive(Debug, Default)]
pub struct Usage {
    pub memory: AtomicI64,
    pub storage: AtomicI64,
}

impl Usage {
    fn of(&self, storage: Storage) -> &AtomicI64 {
        match storage {
            Storage::Memory => &self.memory,
            Storage::File => &self.storage,
        }
    }
}

/// Where a message being stored comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Published by a client: every header rule applies.
    Client,
    /// Copied from a stream this one mirrors or sources.
    Source,
}

/// What a stored (or deduplicated) publish is acknowledged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubAck {
    pub seq: u64,
    pub duplicate: bool,
    /// The store's write mark for this publish: once the stream is flushed,
    /// [`Stream::is_durable`] says whether it was stored or undone by a failed write.
    pub mark: u64,
}

/// A copy to publish after storing (`republish`).
pub struct Republished {
    pub subject: String,
    pub headers: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Messages published with `Nats-Msg-Id` inside the duplicate window.
#[derive(Default)]
struct Dedupe {
    ids: HashMap<String, u64>,
    order: VecDeque<(i64, String)>,
}

impl Dedupe {
    fn expire(&mut self, cutoff_ns: i64) {
        while let Some((ts, _)) = self.order.front() {
            if *ts >= cutoff_ns {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }

    fn record(&mut self, id: &str, seq: u64, ts: i64) {
        self.ids.insert(id.to_owned(), seq);
        self.order.push_back((ts, id.to_owned()));
    }

    /// Forgets the IDs of messages above `last` (a failed write undid them).
    fn forget_above(&mut self, last: u64) {
        while let Some((_, id)) = self.order.back() {
            if self.ids.get(id).is_some_and(|&seq| seq <= last) {
                break;
            }
            if let Some((_, id)) = self.order.pop_back() {
                self.ids.remove(&id);
            }
        }
    }

    /// The newest ID in the window and its sequence.
    fn newest(&self) -> Option<(String, u64)> {
        let (_, id) = self.order.back()?;
        Some((id.clone(), self.ids.get(id).copied().unwrap_or(0)))
    }
}

struct Inner {
    config: StreamConfig,
    store: Box<dyn StreamStore + Send>,
    dedupe: Dedupe,
    last_msg_id: String,
    /// The sequence of the message that carried `last_msg_id`.
    last_msg_seq: u64,
    last_ts: i64,
    /// The highest sequence this stream's appends were given since it was opened: a store
    /// whose last sequence is below it undid some of them.
    assigned: u64,
    transform: Option<Mapping>,
    republish: Option<Mapping>,
}

pub struct Stream {
    pub name: String,
    pub created: SystemTime,
    /// `None` for memory streams.
    pub dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    usage: [Arc<Usage>; 2],
    /// `no_ack`, readable without the lock on every publish.
    no_ack: AtomicBool,
    /// The tasks of this stream's consumers, woken after each write; `watched` spares the
    /// lock on every flush of a stream without consumers.
    watchers: parking_lot::RwLock<Vec<Arc<tokio::sync::Notify>>>,
    watched: AtomicBool,
    /// Consumers (for StreamInfo's `consumer_count`), kept by the account.
    pub consumer_count: std::sync::atomic::AtomicUsize,
    /// The consumers, for interest retention (a leaf lock: taken under `inner`, never the
    /// other way round).
    interest: parking_lot::RwLock<Vec<InterestHolder>>,
}

fn mapping(src: &str, dest: &str) -> Result<Mapping, ApiError> {
    let src = if src.is_empty() { ">" } else { src };
    let wild: Vec<&str> = src.split('.').filter(|t| *t == "*" || *t == ">").collect();
    let mut stars = wild
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == "*")
        .map(|(i, _)| i + 1);
    let gt = wild.iter().position(|t| *t == ">").map(|i| i + 1);
    let mut tokens = Vec::new();
    for t in dest.split('.') {
        let n = match t {
            "*" => stars.next(),
            ">" => gt,
            _ => None,
        };
        match n {
            Some(n) => tokens.push(format!("{{{{wildcard({n})}}}}")),
            None => tokens.push(t.to_owned()),
        }
    }
    Mapping::new(src, &[(tokens.join("."), 100)])
        .map_err(|e| ApiError::invalid_config(format!("invalid subject transform: {e}")))
}

fn mappings(cfg: &StreamConfig) -> Result<(Option<Mapping>, Option<Mapping>), ApiError> {
    let t = match &cfg.subject_transform {
        Some(t) => Some(mapping(&t.src, &t.dest)?),
        None => None,
    };
    let r = match &cfg.republish {
        Some(r) => Some(mapping(&r.src, &r.dest)?),
        None => None,
    };
    Ok((t, r))
}

impl Stream {
    /// Wraps an opened store; rebuilds the duplicate window from the newest messages.
    pub fn new(
        config: StreamConfig,
        store: Box<dyn StreamStore + Send>,
        created: SystemTime,
        dir: Option<PathBuf>,
        usage: [Arc<Usage>; 2],
    ) -> Result<Arc<Stream>, ApiError> {
        let (transform, republish) = mappings(&config)?;
        let mut inner = Inner {
            config,
            store,
            dedupe: Dedupe::default(),
            last_msg_id: String::new(),
            last_msg_seq: 0,
            last_ts: 0,
            assigned: 0,
            transform,
            republish,
        };
        inner.recover_dedupe();
        let (storage, bytes) = (inner.config.storage, inner.store.state().bytes as i64);
        let stream = Arc::new(Stream {
            name: inner.config.name.clone(),
            created,
            dir,
            usage,
            no_ack: AtomicBool::new(inner.config.no_ack),
            inner: Mutex::new(inner),
            watchers: parking_lot::RwLock::new(Vec::new()),
            watched: AtomicBool::new(false),
            consumer_count: std::sync::atomic::AtomicUsize::new(0),
            interest: parking_lot::RwLock::new(Vec::new()),
        });
        stream.account_bytes_for(storage, bytes);
        Ok(stream)
    }

    pub fn no_ack(&self) -> bool {
        self.no_ack.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> StreamConfig {
        self.inner.lock().config.clone()
    }

    pub fn state(&self) -> super::store::StreamState {
        self.inner.lock().store.state()
    }

    fn account_bytes_for(&self, storage: Storage, delta: i64) {
        for u in &self.usage {
            u.of(storage).fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Runs `f` on the locked stream, writes what it changed, and charges the change in
    /// stored bytes to the account.
    fn mutate<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T, ApiError>) -> Result<T, ApiError> {
        self.mutate_buffered(|inner| {
            let out = f(inner);
            let flushed = inner.store.flush();
            if out.is_err() || flushed.is_err() {
                inner.forget_undone();
            }
            flushed?;
            out
        })
    }

    /// [`mutate`](Self::mutate) that may leave records buffered until [`flush`](Self::flush).
    fn mutate_buffered<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock();
        let before = inner.store.state().bytes as i64;
        let out = f(&mut inner);
        let delta = inner.store.state().bytes as i64 - before;
        let storage = inner.config.storage;
        drop(inner);
        if delta != 0 {
            self.account_bytes_for(storage, delta);
        }
        out
    }

    /// Stores a published message, or explains why not.
    pub fn ingest(
        &self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        origin: Origin,
        room: &dyn Fn(Storage, u64) -> Result<(), ApiError>,
    ) -> Result<(PubAck, Option<Republished>), ApiError> {
        self.mutate_buffered(|inner| {
            let out = inner.ingest(subject, headers, payload, origin, room);
            match out {
                Ok((mut ack, republished)) => {
                    // An interest stream keeps only what some consumer will deliver.
                    if inner.config.retention == Retention::Interest
                        && !ack.duplicate
                        && !self.interested(subject)
                    {
                        if let Err(e) = inner.store.delete(ack.seq) {
                            tracing::warn!("JetStream: stream '{}': {e}", self.name);
                        }
                    }
                    ack.mark = inner.store.write_mark();
                    Ok((ack, republished))
                }
                Err(e) => {
                    inner.forget_undone();
                    Err(e)
                }
            }
        })
    }

    /// Commits buffered records: call before acknowledging what [`ingest`](Self::ingest)
    /// stored, then ask [`is_durable`](Self::is_durable) about each publish.
    pub fn flush(&self) -> Result<(), ApiError> {
        self.mutate_buffered(|inner| {
            let flushed = inner.store.flush();
            if flushed.is_err() {
                inner.forget_undone();
            }
            Ok::<(), ApiError>(flushed?)
        })?;
        if self.watched.load(Ordering::Acquire) {
            for w in self.watchers.read().iter() {
                w.notify_one();
            }
        }
        Ok(())
    }

    /// Wakes `signal` after every write (a consumer's task).
    pub fn watch(&self, signal: &Arc<tokio::sync::Notify>) {
        let mut w = self.watchers.write();
        w.push(signal.clone());
        self.watched.store(true, Ordering::Release);
    }

    pub fn unwatch(&self, signal: &Arc<tokio::sync::Notify>) {
        let mut w = self.watchers.write();
        w.retain(|x| !Arc::ptr_eq(x, signal));
        self.watched.store(!w.is_empty(), Ordering::Release);
    }

    /// Whether the publish acknowledged with `mark` ([`PubAck::mark`]) is stored: `false` if a
    /// failed write undid it (whoever's flush that was), or if it is not flushed yet.
    pub fn is_durable(&self, mark: u64) -> bool {
        self.inner.lock().store.is_durable(mark)
    }

    /// Applies max_age and expires the duplicate window; called periodically.
    pub fn expire(&self, now: i64) -> Result<(), ApiError> {
        self.mutate(|inner| {
            inner.dedupe.expire(now - inner.config.duplicate_window);
            if inner.config.max_age > 0 {
                inner.store.remove_older_than(now - inner.config.max_age)?;
            }
            inner.store.maintain()?;
            Ok(())
        })
    }

    pub fn sync(&self) -> Result<(), ApiError> {
        Ok(self.inner.lock().store.sync()?)
    }

    /// Replaces the configuration (already validated against the current one).
    pub fn update(&self, config: StreamConfig) -> Result<(), ApiError> {
        let (transform, republish) = mappings(&config)?;
        self.no_ack.store(config.no_ack, Ordering::Relaxed);
        self.mutate(|inner| {
            inner.config = config;
            inner.transform = transform;
            inner.republish = republish;
            inner.enforce_limits(None)
        })
    }

    pub fn get(&self, seq: u64) -> Result<Option<StoredMsg>, ApiError> {
        Ok(self.inner.lock().store.get(seq)?)
    }

    pub fn last_for_subject(&self, subject: &str) -> Result<Option<StoredMsg>, ApiError> {
        let inner = self.inner.lock();
        if subject.contains(['*', '>']) {
            let Some(seq) = inner.store.matching(subject).last().copied() else {
                return Ok(None);
            };
            return Ok(inner.store.get(seq)?);
        }
        Ok(inner.store.last_for_subject(subject)?)
    }

    pub fn next_for_subject(&self, from: u64, filter: &str) -> Result<Option<StoredMsg>, ApiError> {
        let inner = self.inner.lock();
        let filter = if filter.is_empty() { ">" } else { filter };
        match inner.store.next_matching(from.max(1), filter) {
            Some(seq) => Ok(inner.store.get(seq)?),
            None => Ok(None),
        }
    }

    /// A user delete (`STREAM.MSG.DELETE`).
    pub fn delete_msg(&self, seq: u64) -> Result<bool, ApiError> {
        self.mutate(|inner| {
            if inner.config.sealed {
                return Err(ApiError::sealed());
            }
            if inner.config.deny_delete {
                return Err(ApiError::msg_delete_failed("message delete not permitted"));
            }
            Ok(inner.store.delete(seq)?)
        })
    }

    /// `STREAM.PURGE`: everything, or what matches `filter`, below `seq`, or all but the newest `keep`.
    pub fn purge(&self, filter: Option<&str>, seq: u64, keep: u64) -> Result<u64, ApiError> {
        self.mutate(|inner| {
            if inner.config.sealed {
                return Err(ApiError::sealed());
            }
            if inner.config.deny_purge {
                return Err(ApiError::purge_failed("stream purge not permitted"));
            }
            if seq > 0 && keep > 0 {
                return Err(ApiError::bad_request());
            }
            let store = &mut inner.store;
            let whole = filter.is_none_or(|f| f == ">" || f.is_empty());
            if whole && seq == 0 && keep == 0 {
                return Ok(store.purge()?);
            }
            if whole && seq > 0 {
                return Ok(store.compact(seq)?);
            }
            let filter = filter.filter(|f| !f.is_empty()).unwrap_or(">");
            if seq == 0 && keep == 0 {
                return Ok(store.purge_subject(filter)?);
            }
            let seqs = store.matching(filter);
            let doomed: &[u64] = if seq > 0 {
                let end = seqs.partition_point(|&s| s < seq);
                &seqs[..end]
            } else {
                &seqs[..seqs.len().saturating_sub(keep as usize)]
            };
            let mut n = 0;
            for &s in doomed {
                if store.delete(s)? {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    /// The `state` object of StreamInfo.
    pub fn state_json(&self, deleted_details: bool) -> Value {
        let inner = self.inner.lock();
        let st = inner.store.state();
        let first_ts = if st.msgs > 0 {
            inner
                .store
                .get(st.first_seq)
                .ok()
                .flatten()
                .map_or(0, |m| m.timestamp_ns)
        } else {
            0
        };
        let last_ts = if st.last_seq > 0 { inner.last_ts } else { 0 };
        let counts = inner.store.subject_counts(">");
        let mut state = json!({
            "messages": st.msgs,
            "bytes": st.bytes,
            // nats-server: 0 until the stream's first message, then last + 1 when empty.
            "first_seq": if st.last_seq == 0 { 0 } else { st.first_seq },
            "first_ts": super::stream_time(first_ts),
            "last_seq": st.last_seq,
            "last_ts": super::stream_time(last_ts),
            "num_subjects": counts.len(),
            "consumer_count": self.consumer_count.load(Ordering::Relaxed),
        });
        if st.num_deleted > 0 {
            state["num_deleted"] = json!(st.num_deleted);
            if deleted_details {
                state["deleted"] = json!(inner.store.deleted());
            }
        }
        if let Some(lost) = inner.store.lost() {
            state["lost"] = json!({"msgs": lost.msgs, "bytes": lost.bytes});
        }
        state
    }

    /// The StreamInfo object (without `type`).
    pub fn info_json(&self, deleted_details: bool) -> Value {
        let cfg = self.config();
        let config = serde_json::to_value(&cfg).unwrap_or(Value::Null);
        let mut v = json!({
            "config": config,
            "created": crate::timefmt::rfc3339(self.created),
            "state": self.state_json(deleted_details),
            "ts": crate::timefmt::rfc3339(SystemTime::now()),
        });
        // Local copies are made synchronously with the origin's writes: never behind.
        let source_info = |s: &super::config::StreamSource| {
            let mut i = json!({"name": s.name, "lag": 0, "active": 0});
            if !s.filter_subject.is_empty() {
                i["filter_subject"] = json!(s.filter_subject);
            }
            i
        };
        if let Some(m) = &cfg.mirror {
            v["mirror"] = source_info(m);
        }
        if !cfg.sources.is_empty() {
            v["sources"] = cfg.sources.iter().map(source_info).collect();
        }
        v
    }

    /// Makes `first` the sequence of the next message of a new stream (`first_seq`).
    pub fn start_at(&self, first: u64) -> Result<(), ApiError> {
        if first > 1 {
            self.mutate(|inner| Ok(inner.store.compact(first)?))?;
        }
        Ok(())
    }

    /// Live messages per subject matching `filter`, sorted by subject.
    pub fn subject_counts(&self, filter: &str) -> Vec<(String, u64)> {
        let mut counts = self.inner.lock().store.subject_counts(filter);
        counts.sort_unstable();
        counts
    }

    /// Forgets this stream's bytes in the account's usage (it is being deleted).
    pub fn release(&self) {
        let (storage, bytes) = {
            let i = self.inner.lock();
            (i.config.storage, i.store.state().bytes as i64)
        };
        self.account_bytes_for(storage, -bytes);
    }
}

impl Inner {
    /// After a failed write the store is back at its last commit: forget what this stream
    /// remembered of the appends it undid (duplicate IDs, the last ID, the last time stamp).
    fn forget_undone(&mut self) {
        let last = self.store.state().last_seq;
        if last >= self.assigned {
            return;
        }
        self.assigned = last;
        self.dedupe.forget_above(last);
        if self.last_msg_seq > last {
            (self.last_msg_id, self.last_msg_seq) = self.dedupe.newest().unwrap_or_default();
        }
        self.last_ts = match self.store.get(last) {
            Ok(Some(m)) => m.timestamp_ns,
            _ => 0,
        };
    }

    fn recover_dedupe(&mut self) {
        let st = self.store.state();
        if st.last_seq == 0 {
            return;
        }
        if let Ok(Some(m)) = self.store.get(st.last_seq) {
            self.last_ts = m.timestamp_ns;
        }
        let cutoff = super::now_ns() - self.config.duplicate_window;
        let mut found = Vec::new();
        let low = st
            .first_seq
            .max(st.last_seq.saturating_sub(DEDUPE_REBUILD_MAX));
        let mut seq = st.last_seq;
        while seq >= low && seq > 0 {
            if let Ok(Some(m)) = self.store.get(seq) {
                if m.timestamp_ns < cutoff {
                    break;
                }
                if let Some(id) = header_value(&m.headers, MSG_ID) {
                    let id = String::from_utf8_lossy(id).into_owned();
                    if self.last_msg_id.is_empty() {
                        self.last_msg_id = id.clone();
                        self.last_msg_seq = m.seq;
                    }
                    found.push((id, m.seq, m.timestamp_ns));
                }
            }
            seq -= 1;
        }
        for (id, seq, ts) in found.into_iter().rev() {
            self.dedupe.record(&id, seq, ts);
        }
    }

    fn ingest(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        origin: Origin,
        room: &dyn Fn(Storage, u64) -> Result<(), ApiError>,
    ) -> Result<(PubAck, Option<Republished>), ApiError> {
        let cfg = &self.config;
        if cfg.sealed {
            return Err(ApiError::sealed());
        }
        let hdrs = headers.unwrap_or_default();
        let now = super::now_ns();
        let mut msg_id = None;
        let mut rollup = None;
        if !hdrs.is_empty() {
            if let Some(id) = header_value(hdrs, MSG_ID).filter(|v| !v.is_empty()) {
                let id = String::from_utf8_lossy(id).into_owned();
                self.dedupe.expire(now - cfg.duplicate_window);
                if let Some(&seq) = self.dedupe.ids.get(&id) {
                    return Ok((
                        PubAck {
                            seq,
                            duplicate: true,
                            mark: 0,
                        },
                        None,
                    ));
                }
                msg_id = Some(id);
            }
        }
        // A message copied from a source stream was checked against its expectations there.
        if !hdrs.is_empty() && origin == Origin::Client {
            if let Some(s) = header_value(hdrs, EXPECTED_STREAM) {
                if s != cfg.name.as_bytes() {
                    return Err(ApiError::expected_stream());
                }
            }
            if let Some(v) = header_value(hdrs, EXPECTED_LAST_SEQ) {
                let last = self.store.state().last_seq;
                if parse_u64(v) != Some(last) {
                    return Err(ApiError::wrong_last_seq(last));
                }
            }
            if let Some(v) = header_value(hdrs, EXPECTED_LAST_SUBJ_SEQ) {
                let last = self.store.subject_state(subject).last_seq;
                if parse_u64(v) != Some(last) {
                    return Err(ApiError::wrong_last_seq(last));
                }
            }
            if let Some(v) = header_value(hdrs, EXPECTED_LAST_MSG_ID) {
                if v != self.last_msg_id.as_bytes() {
                    return Err(ApiError::wrong_last_msg_id(&self.last_msg_id));
                }
            }
            if let Some(v) = header_value(hdrs, ROLLUP) {
                if !cfg.allow_rollup_hdrs || cfg.deny_purge {
                    return Err(ApiError::rollup_failed("rollup not permitted"));
                }
                rollup = match v {
                    b"sub" => Some(false),
                    b"all" => Some(true),
                    other => {
                        return Err(ApiError::rollup_failed(format!(
                            "rollup value invalid: {}",
                            String::from_utf8_lossy(other)
                        )))
                    }
                }
            }
        }
        if hdrs.len() > MAX_HEADER {
            return Err(ApiError::header_too_big());
        }
        if cfg.max_msg_size >= 0 && (hdrs.len() + payload.len()) as i64 > cfg.max_msg_size {
            return Err(ApiError::message_too_big());
        }
        let transformed = self.transform.as_ref().and_then(|t| {
            t.apply(subject.as_bytes(), 0)
                .and_then(|s| String::from_utf8(s).ok())
        });
        let subject = transformed.as_deref().unwrap_or(subject);
        let size = self.store.msg_size(subject, hdrs, payload);
        // Only republished copies carry it; not worth a lookup per message otherwise.
        let prev_on_subject = self
            .republish
            .is_some()
            .then(|| self.store.subject_state(subject).last_seq);
        if cfg.discard == Discard::New && rollup.is_none() {
            let st = self.store.state();
            if cfg.max_msgs > 0 && st.msgs >= cfg.max_msgs as u64 {
                return Err(ApiError::store_failed("maximum messages exceeded"));
            }
            if cfg.max_bytes > 0 && st.bytes + size > cfg.max_bytes as u64 {
                return Err(ApiError::store_failed("maximum bytes exceeded"));
            }
            if cfg.discard_new_per_subject
                && cfg.max_msgs_per_subject > 0
                && self.store.subject_state(subject).msgs >= cfg.max_msgs_per_subject as u64
            {
                return Err(ApiError::store_failed(
                    "maximum messages per subject exceeded",
                ));
            }
        }
        room(cfg.storage, size)?;
        match rollup {
            Some(true) => {
                self.store.purge()?;
            }
            Some(false) => {
                self.store.purge_subject(subject)?;
            }
            None => {}
        }
        let seq = self.store.append(subject, hdrs, payload, now)?;
        self.assigned = seq;
        self.last_ts = now;
        if let Some(id) = msg_id {
            self.dedupe.record(&id, seq, now);
            self.last_msg_id = id;
            self.last_msg_seq = seq;
        }
        self.enforce_limits(Some(subject))?;
        let republished = self.republish.as_ref().and_then(|m| {
            let dest = m.apply(subject.as_bytes(), 0)?;
            let dest = String::from_utf8(dest).ok()?;
            let headers_only = self
                .config
                .republish
                .as_ref()
                .is_some_and(|r| r.headers_only);
            let mut block = crate::proto::headers::HeaderBlock::extend(hdrs)
                .add("Nats-Stream", &self.config.name)
                .add("Nats-Subject", subject)
                .add("Nats-Sequence", &seq.to_string())
                .add(
                    "Nats-Last-Sequence",
                    &prev_on_subject.unwrap_or_default().to_string(),
                );
            if headers_only {
                block = block.add("Nats-Msg-Size", &payload.len().to_string());
            }
            Some(Republished {
                subject: dest,
                headers: block.finish(),
                payload: if headers_only {
                    Vec::new()
                } else {
                    payload.to_vec()
                },
            })
        });
        Ok((
            PubAck {
                seq,
                duplicate: false,
                mark: 0,
            },
            republished,
        ))
    }

    /// Discard-old limits after an append (`subject` = the new message's) or an update.
    fn enforce_limits(&mut self, subject: Option<&str>) -> Result<(), ApiError> {
        let (per_subject, max_msgs, max_bytes) = (
            self.config.max_msgs_per_subject,
            self.config.max_msgs,
            self.config.max_bytes,
        );
        if per_subject > 0 {
            let max = per_subject as u64;
            let subjects: Vec<String> = match subject {
                Some(s) => vec![s.to_owned()],
                None => self
                    .store
                    .subject_counts(">")
                    .into_iter()
                    .filter(|(_, n)| *n > max)
                    .map(|(s, _)| s)
                    .collect(),
            };
            for s in subjects {
                while self.store.subject_state(&s).msgs > max {
                    let Some(first) = self.store.first_for_subject(&s) else {
                        break;
                    };
                    self.remove(first)?;
                }
            }
        }
        if max_msgs > 0 {
            self.store.truncate_to_max_msgs(max_msgs as u64)?;
        }
        if max_bytes > 0 {
            while self.store.state().bytes > max_bytes as u64 {
                if self.store.remove_first()?.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// A limit removal: the oldest message goes as a purge; an interior one as a delete.
    fn remove(&mut self, seq: u64) -> Result<(), ApiError> {
        if self.store.state().first_seq == seq {
            self.store.remove_first()?;
        } else {
            self.store.delete(seq)?;
        }
        Ok(())
    }
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}
