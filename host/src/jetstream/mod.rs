//! JetStream: persistent streams on top of core NATS.
//!
//! - [`store`]: the storage layer (memory and file stores behind one trait).
//! - [`config`]: the stream configuration as clients send it, defaults and validation.
//! - [`stream`]: one stream — the rules applied when a message is stored.
//! - [`api`]: the `$JS.API.>` request handlers, answering in nats-server's JSON shapes.
//! - [`errors`]: nats-server's JetStream error codes, in one table.
//!
//! This module owns the per-account stream registries ([`JsAccount`]) and the on-disk layout
//! `<store_dir>/jetstream/<account>/streams/<stream>/{meta.json, msgs/}`. Messages reach a
//! stream through the message path (`path::store`), which subscribes to every filter of
//! [`JsAccount::capture_filters`] in the account's sublist as an internal client.

pub mod advisory;
pub mod api;
pub mod config;
pub mod consumer;
pub mod errors;
pub mod kv;
pub mod meta;
pub mod store;
pub mod stream;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use serde_json::{json, Value};

use config::{Storage, StreamConfig};
use errors::ApiError;
use meta::MetaError;
use store::{FileStore, FileStoreConfig, MemoryStore, StoreError, StreamStore, SyncPolicy};
use stream::{Origin, PubAck, Republished, Stream, Usage};

/// File streams buffer a read batch's records and write them with one write(2) before the
/// batch's PubAcks go out (`Stream::flush`); past this many bytes they are written at once.
const WRITE_BUFFER: usize = 1 << 20;

/// How many mirror/source hops a message is copied along, at most.
const MAX_SOURCE_DEPTH: u32 = 8;

/// Server-wide JetStream settings (`-js`, `-sd`, `jetstream {}`).
#[derive(Debug, Clone)]
pub struct JsConfig {
    /// The directory given by `store_dir` (streams live under `<store_dir>/jetstream`).
    pub store_dir: PathBuf,
    /// `max_mem_store`; -1 = unlimited.
    pub max_memory: i64,
    /// `max_file_store`; -1 = unlimited.
    pub max_storage: i64,
    pub sync: SyncPolicy,
    pub domain: Option<String>,
}

pub use crate::options::JetStreamLimits as AccountLimits;

/// Why JetStream could not start: the store directory (`path`) is not usable.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the JetStream store {}: {source}", path.display())]
    CreateStore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    ReadStore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a stream found in the store could not be restored (it is left where it is).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The stored configuration is refused, as a create request with it would be.
    #[error("{}", .0.description)]
    Refused(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// JetStream for the whole server.
pub struct JetStream {
    pub config: JsConfig,
    root: PathBuf,
    accounts: RwLock<HashMap<String, Arc<JsAccount>>>,
    account_limits: HashMap<String, AccountLimits>,
    /// JetStream for every account (no `accounts {}` configured, or operator mode), or only
    /// for those in `account_limits`.
    all_accounts: bool,
    usage: Arc<Usage>,
}

/// A stream that mirrors or sources another, with the filter of what it takes.
type Copy = (Arc<Stream>, String);

/// One account's streams.
pub struct JsAccount {
    pub name: String,
    /// Whether this account may use JetStream (see [`JetStream::start`]; in operator mode,
    /// whether its JWT grants JetStream).
    enabled: std::sync::atomic::AtomicBool,
    dir: PathBuf,
    limits: parking_lot::RwLock<AccountLimits>,
    /// The limits came from the JWT's `tiered_limits` (reported under `tiers.R1`).
    tiered: std::sync::atomic::AtomicBool,
    server_limits: (i64, i64),
    sync: SyncPolicy,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// (stream, consumer name) → consumer; see `consumer::registry`.
    consumers: RwLock<BTreeMap<(String, String), Arc<consumer::Consumer>>>,
    consumers_gen: AtomicU64,
    /// Stream subject filters, for [`capture`](Self::capture); rebuilt on every change.
    filters: RwLock<Vec<(String, Arc<Stream>)>>,
    /// Per stream name: the streams that mirror or source it, with their filter.
    copies: RwLock<HashMap<String, Vec<Copy>>>,
    count: AtomicUsize,
    /// Bumped whenever the set of streams or their subjects change (connections cache captures).
    generation: AtomicU64,
    usage: Arc<Usage>,
    server_usage: Arc<Usage>,
    pub api_total: AtomicU64,
    pub api_errors: AtomicU64,
}

/// Account directory names: the account name with path separators neutralized.
fn dir_name(name: &str) -> String {
    name.replace(['/', '\\'], "_")
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl JetStream {
    /// Opens the store directory and recovers every file stream in it.
    pub fn start(
        config: JsConfig,
        account_limits: HashMap<String, AccountLimits>,
        all_accounts: bool,
    ) -> Result<Arc<JetStream>, StartError> {
        let root = config.store_dir.join("jetstream");
        if let Err(source) = std::fs::create_dir_all(&root) {
            return Err(StartError::CreateStore { path: root, source });
        }
        let js = Arc::new(JetStream {
            config,
            root,
            accounts: RwLock::new(HashMap::new()),
            account_limits,
            all_accounts,
            usage: Arc::new(Usage::default()),
        });
        js.recover()?;
        Ok(js)
    }

    fn recover(&self) -> Result<(), StartError> {
        let entries = std::fs::read_dir(&self.root).map_err(|source| StartError::ReadStore {
            path: self.root.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let account = self.account(&name);
            let streams_dir = entry.path().join("streams");
            let Ok(streams) = std::fs::read_dir(&streams_dir) else {
                continue;
            };
            for s in streams.flatten() {
                let dir = s.path();
                if !dir.is_dir() {
                    continue;
                }
                match account.recover_stream(&dir) {
                    Ok(stream) => {
                        let st = stream.state();
                        tracing::info!(
                            "  Restored {} messages for stream '{} > {}'",
                            st.msgs,
                            name,
                            stream.name
                        );
                    }
                    Err(e) => tracing::error!(
                        "JetStream: could not restore the stream in {}: {e}",
                        dir.display()
                    ),
                }
            }
        }
        Ok(())
    }

    /// The account's registry, created on first use.
    pub fn account(&self, name: &str) -> Arc<JsAccount> {
        if let Some(a) = self.accounts.read().get(name) {
            return a.clone();
        }
        let mut accounts = self.accounts.write();
        accounts
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(JsAccount {
                    name: name.to_owned(),
                    enabled: std::sync::atomic::AtomicBool::new(
                        self.all_accounts || self.account_limits.contains_key(name),
                    ),
                    tiered: std::sync::atomic::AtomicBool::new(false),
                    dir: self.root.join(dir_name(name)).join("streams"),
                    limits: parking_lot::RwLock::new(
                        self.account_limits.get(name).copied().unwrap_or_default(),
                    ),
                    server_limits: (self.config.max_memory, self.config.max_storage),
                    sync: self.config.sync,
                    streams: RwLock::new(BTreeMap::new()),
                    consumers: RwLock::new(BTreeMap::new()),
                    consumers_gen: AtomicU64::new(0),
                    filters: RwLock::new(Vec::new()),
                    copies: RwLock::new(HashMap::new()),
                    count: AtomicUsize::new(0),
                    generation: AtomicU64::new(0),
                    usage: Arc::new(Usage::default()),
                    server_usage: self.usage.clone(),
                    api_total: AtomicU64::new(0),
                    api_errors: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Whether a stream of `account` stores messages published on `subject` (without
    /// creating the account's registry).
    pub fn captures(&self, account: &str, subject: &[u8]) -> bool {
        self.accounts
            .read()
            .get(account)
            .is_some_and(|a| a.capture(subject).is_some())
    }

    pub fn accounts(&self) -> Vec<Arc<JsAccount>> {
        self.accounts.read().values().cloned().collect()
    }

    /// Periodic work: max_age expiry, the duplicate window, and fsync every `sync_interval`.
    pub fn tick(&self, sync_due: bool) {
        let now = now_ns();
        for a in self.accounts() {
            for s in a.streams() {
                if let Err(e) = s.expire(now) {
                    tracing::warn!(
                        "JetStream: expiring stream '{} > {}': {}",
                        a.name,
                        s.name,
                        e.description
                    );
                }
                if sync_due {
                    if let Err(e) = s.sync() {
                        tracing::warn!(
                            "JetStream: syncing stream '{} > {}': {}",
                            a.name,
                            s.name,
                            e.description
                        );
                    }
                }
            }
        }
    }

    /// fsyncs every stream and writes every consumer's state (shutdown).
    pub fn shutdown(&self) {
        self.tick(true);
        let now = now_ns();
        for a in self.accounts() {
            for c in a.all_consumers() {
                c.persist(now, true);
            }
        }
    }

    pub fn memory_used(&self) -> i64 {
        self.usage.memory.load(Ordering::Relaxed)
    }

    pub fn storage_used(&self) -> i64 {
        self.usage.storage.load(Ordering::Relaxed)
    }

    /// `/jsz`: with `with_streams`, per-account stream details; with `with_consumers` also
    /// each stream's consumers (`consumer_detail`, their ConsumerInfo), as nats-server.
    pub fn jsz(&self, server_id: &str, with_streams: bool, with_consumers: bool) -> Value {
        let with_streams = with_streams || with_consumers;
        let now = now_ns();
        let accounts = self.accounts();
        let mut streams = 0;
        let (mut messages, mut bytes) = (0u64, 0u64);
        let (mut total, mut errors) = (0u64, 0u64);
        let mut details = Vec::new();
        for a in &accounts {
            total += a.api_total.load(Ordering::Relaxed);
            errors += a.api_errors.load(Ordering::Relaxed);
            let list = a.streams();
            streams += list.len();
            let mut infos = Vec::new();
            for s in &list {
                let st = s.state();
                messages += st.msgs;
                bytes += st.bytes;
                if with_streams {
                    let mut info = s.info_json(false);
                    info["name"] = json!(s.name);
                    if with_consumers {
                        let consumers: Vec<Value> = a
                            .consumers_of(&s.name)
                            .iter()
                            .map(|c| c.info_json(now))
                            .collect();
                        info["consumer_detail"] = json!(consumers);
                    }
                    infos.push(info);
                }
            }
            if with_streams && !list.is_empty() {
                details.push(json!({
                    "name": a.name,
                    "id": a.name,
                    "memory": a.usage.memory.load(Ordering::Relaxed),
                    "storage": a.usage.storage.load(Ordering::Relaxed),
                    "stream_detail": infos,
                }));
            }
        }
        let mut v = json!({
            "server_id": server_id,
            "now": crate::timefmt::rfc3339(SystemTime::now()),
            "config": {
                "max_memory": self.config.max_memory,
                "max_storage": self.config.max_storage,
                "store_dir": self.root.display().to_string(),
                "sync_interval": match self.config.sync {
                    SyncPolicy::Always => 0,
                    SyncPolicy::Interval(d) => d.as_nanos() as u64,
                },
                "sync_always": self.config.sync == SyncPolicy::Always,
            },
            "memory": self.memory_used(),
            "storage": self.storage_used(),
            "reserved_memory": 0,
            "reserved_storage": 0,
            "accounts": accounts.len(),
            "ha_assets": 0,
            "api": {"total": total, "errors": errors},
            "streams": streams,
            "consumers": accounts.iter().map(|a| a.num_consumers()).sum::<usize>(),
            "messages": messages,
            "bytes": bytes,
        });
        if let Some(d) = &self.config.domain {
            v["config"]["domain"] = json!(d);
        }
        if with_streams {
            v["account_details"] = json!(details);
        }
        v
    }
}

impl JsAccount {
    pub fn has_streams(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a message in `stream` and copies it to the streams that mirror or source it.
    pub fn store(
        &self,
        stream: &Stream,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        origin: Origin,
    ) -> Result<(PubAck, Option<Republished>), ApiError> {
        self.store_at(stream, subject, headers, payload, origin, 0)
    }

    /// `depth` bounds chains of sources (and breaks cycles made by updates).
    fn store_at(
        &self,
        stream: &Stream,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        origin: Origin,
        depth: u32,
    ) -> Result<(PubAck, Option<Republished>), ApiError> {
        let room = |storage, size| self.room(storage, size);
        let stored = stream.ingest(subject, headers, payload, origin, &room)?;
        if stored.0.duplicate || depth >= MAX_SOURCE_DEPTH {
            return Ok(stored);
        }
        let targets = {
            let copies = self.copies.read();
            if copies.is_empty() {
                return Ok(stored);
            }
            copies.get(&stream.name).cloned()
        };
        for (target, filter) in targets.unwrap_or_default() {
            if crate::subject::matches(filter.as_bytes(), subject.as_bytes()) {
                // Copies follow the limits of their own stream; a refusal there is logged, the
                // origin's PubAck stands.
                let copied = self
                    .store_at(
                        &target,
                        subject,
                        headers,
                        payload,
                        Origin::Source,
                        depth + 1,
                    )
                    .and_then(|r| target.flush().map(|()| r));
                if let Err(e) = copied {
                    tracing::warn!(
                        "JetStream: copying '{} > {}' seq {} to '{}': {}",
                        self.name,
                        stream.name,
                        stored.0.seq,
                        target.name,
                        e.description
                    );
                }
            }
        }
        Ok(stored)
    }

    /// Copies what a new mirror or source stream should start with from its origins.
    fn backfill(&self, streams: &BTreeMap<String, Arc<Stream>>, target: &Stream) {
        let cfg = target.config();
        for src in cfg.mirror.iter().chain(cfg.sources.iter()) {
            let Some(origin) = streams.get(&src.name) else {
                continue;
            };
            let filter = if src.filter_subject.is_empty() {
                ">"
            } else {
                src.filter_subject.as_str()
            };
            let mut seq = src.opt_start_seq.max(1);
            let since = src.start_time_ns();
            while let Ok(Some(m)) = origin.next_for_subject(seq, filter) {
                if m.timestamp_ns < since {
                    seq = m.seq + 1;
                    continue;
                }
                let hdrs = (!m.headers.is_empty()).then_some(&m.headers[..]);
                let room = |storage, size| self.room(storage, size);
                if let Err(e) = target.ingest(&m.subject, hdrs, &m.payload, Origin::Source, &room) {
                    tracing::warn!(
                        "JetStream: backfilling '{}' from '{}' at seq {}: {}",
                        target.name,
                        origin.name,
                        m.seq,
                        e.description
                    );
                    break;
                }
                seq = m.seq + 1;
            }
        }
        if let Err(e) = target.flush() {
            tracing::error!(
                "JetStream: writing stream '{}': {}",
                target.name,
                e.description
            );
        }
    }

    /// The stream that stores messages published on `subject`, if any.
    pub fn capture(&self, subject: &[u8]) -> Option<Arc<Stream>> {
        self.filters
            .read()
            .iter()
            .find(|(f, _)| crate::subject::matches(f.as_bytes(), subject))
            .map(|(_, s)| s.clone())
    }

    /// Every subject filter that captures client publishes, with its stream (what the
    /// message path subscribes to on the account's behalf).
    pub fn capture_filters(&self) -> Vec<(String, Arc<Stream>)> {
        self.filters.read().clone()
    }

    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    pub fn stream(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().get(name).cloned()
    }

    pub fn limits(&self) -> AccountLimits {
        *self.limits.read()
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Whether the limits are a JWT tier's (`tiered_limits.R1`).
    pub fn tiered(&self) -> bool {
        self.tiered.load(Ordering::Relaxed)
    }

    /// Operator mode: what the account's JWT grants — JetStream with these limits, or none.
    pub fn configure(&self, granted: Option<(AccountLimits, bool)>) {
        match granted {
            Some((limits, tiered)) => {
                *self.limits.write() = limits;
                self.tiered.store(tiered, Ordering::Relaxed);
                self.enabled.store(true, Ordering::Relaxed);
            }
            None => self.enabled.store(false, Ordering::Relaxed),
        }
    }

    pub fn memory_used(&self) -> i64 {
        self.usage.memory.load(Ordering::Relaxed)
    }

    pub fn storage_used(&self) -> i64 {
        self.usage.storage.load(Ordering::Relaxed)
    }

    /// Whether `size` more bytes fit the account's and the server's limits.
    pub fn room(&self, storage: Storage, size: u64) -> Result<(), ApiError> {
        let size = size as i64;
        let (account_max, server_max, used, server_used) = match storage {
            Storage::Memory => (
                self.limits().max_memory,
                self.server_limits.0,
                self.memory_used(),
                self.server_usage.memory.load(Ordering::Relaxed),
            ),
            Storage::File => (
                self.limits().max_storage,
                self.server_limits.1,
                self.storage_used(),
                self.server_usage.storage.load(Ordering::Relaxed),
            ),
        };
        // nats-server's answers to a publish past each limit.
        if account_max >= 0 && used + size > account_max {
            return Err(ApiError::account_resources_exceeded());
        }
        if server_max >= 0 && server_used + size > server_max {
            return Err(ApiError::insufficient_resources());
        }
        Ok(())
    }

    fn rebuild_filters(&self, streams: &BTreeMap<String, Arc<Stream>>) {
        let mut filters = Vec::new();
        let mut copies: HashMap<String, Vec<Copy>> = HashMap::new();
        for s in streams.values() {
            let cfg = s.config();
            for f in cfg.subjects {
                filters.push((f, s.clone()));
            }
            for src in cfg.mirror.iter().chain(cfg.sources.iter()) {
                let filter = if src.filter_subject.is_empty() {
                    ">".to_string()
                } else {
                    src.filter_subject.clone()
                };
                copies
                    .entry(src.name.clone())
                    .or_default()
                    .push((s.clone(), filter));
            }
        }
        *self.filters.write() = filters;
        *self.copies.write() = copies;
        self.count.store(streams.len(), Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn open_store(
        &self,
        config: &StreamConfig,
        dir: &Path,
    ) -> Result<Box<dyn StreamStore + Send>, StoreError> {
        Ok(match config.storage {
            Storage::Memory => Box::new(MemoryStore::new()),
            Storage::File => {
                let cfg = FileStoreConfig {
                    sync: self.sync,
                    write_buffer: WRITE_BUFFER,
                    ..FileStoreConfig::default()
                };
                Box::new(FileStore::open(dir.join("msgs"), cfg)?)
            }
        })
    }

    fn recover_stream(&self, dir: &Path) -> Result<Arc<Stream>, RecoverError> {
        let (config, created) = meta::read_meta(dir)?;
        let config = config.normalize().map_err(RecoverError::Refused)?;
        let store = self.open_store(&config, dir)?;
        let name = config.name.clone();
        let s = Stream::new(
            config,
            store,
            created,
            Some(dir.to_path_buf()),
            [self.usage.clone(), self.server_usage.clone()],
        )
        .map_err(RecoverError::Refused)?;
        let mut streams = self.streams.write();
        streams.insert(name, s.clone());
        self.rebuild_filters(&streams);
        drop(streams);
        self.recover_consumers(&s, now_ns());
        Ok(s)
    }

    fn check_overlap(
        streams: &BTreeMap<String, Arc<Stream>>,
        config: &StreamConfig,
    ) -> Result<(), ApiError> {
        for other in streams.values().filter(|s| s.name != config.name) {
            let theirs = other.config().subjects;
            for a in &config.subjects {
                if theirs.iter().any(|b| config::subjects_overlap(a, b)) {
                    return Err(ApiError::subjects_overlap());
                }
            }
        }
        Ok(())
    }

    /// The account's `max_bytes_required` and per-stream size limits, checked (as in
    /// nats-server) before anything else about a stream being created or updated.
    fn check_max_bytes(&self, config: &StreamConfig) -> Result<(), ApiError> {
        let limit = match config.storage {
            Storage::Memory => self.limits().memory_max_stream_bytes,
            Storage::File => self.limits().storage_max_stream_bytes,
        };
        if self.limits().max_bytes_required && config.max_bytes <= 0 {
            return Err(ApiError::max_bytes_required());
        }
        if limit > 0 && config.max_bytes > limit {
            return Err(ApiError::max_stream_bytes_exceeded());
        }
        Ok(())
    }

    /// `STREAM.CREATE`: a new stream, or the existing one when the config is identical.
    pub fn create_stream(&self, config: StreamConfig) -> Result<(Arc<Stream>, bool), ApiError> {
        self.check_max_bytes(&config)?;
        let mut streams = self.streams.write();
        if let Some(existing) = streams.get(&config.name) {
            if existing.config() == config {
                return Ok((existing.clone(), false));
            }
            return Err(ApiError::stream_name_exists());
        }
        Self::check_overlap(&streams, &config)?;
        let max_streams = self.limits().max_streams;
        if max_streams >= 0 && streams.len() as i64 >= max_streams {
            return Err(ApiError::max_streams());
        }
        if config.max_bytes > 0 && self.room(config.storage, config.max_bytes as u64).is_err() {
            // A stream whose max_bytes cannot fit is refused at creation (nats-server reserves it).
            return Err(match config.storage {
                Storage::Memory => ApiError::memory_exceeded(),
                Storage::File => ApiError::storage_exceeded(),
            });
        }
        // An origin that does not exist yet is not an error (as in nats-server): its messages
        // are copied once it exists and stores them.
        let created = SystemTime::now();
        let (store, dir) = match config.storage {
            Storage::Memory => (self.open_store(&config, Path::new("")), None),
            Storage::File => {
                let dir = self.dir.join(&config.name);
                let made = std::fs::create_dir_all(&dir)
                    .and_then(|()| meta::write_meta(&dir, &config, created));
                if let Err(e) = made {
                    tracing::error!(
                        "JetStream: creating the stream directory {}: {e}",
                        dir.display()
                    );
                    return Err(ApiError::create_failed(
                        "could not create the stream directory",
                    ));
                }
                (self.open_store(&config, &dir), Some(dir))
            }
        };
        let store = store.map_err(|e| {
            tracing::error!(
                "JetStream: opening the store of stream '{}': {e}",
                config.name
            );
            ApiError::create_failed("could not open the stream store")
        })?;
        let s = Stream::new(
            config,
            store,
            created,
            dir,
            [self.usage.clone(), self.server_usage.clone()],
        )?;
        s.start_at(s.config().first_seq)?;
        self.backfill(&streams, &s);
        streams.insert(s.name.clone(), s.clone());
        self.rebuild_filters(&streams);
        tracing::debug!("JetStream: created stream '{} > {}'", self.name, s.name);
        Ok((s, true))
    }

    /// `STREAM.UPDATE`.
    pub fn update_stream(&self, config: StreamConfig) -> Result<Arc<Stream>, ApiError> {
        self.check_max_bytes(&config)?;
        let streams = self.streams.write();
        let Some(s) = streams.get(&config.name).cloned() else {
            return Err(ApiError::stream_not_found());
        };
        let old = s.config();
        let refuse = |why: &str| Err(ApiError::update_failed(why));
        if old.storage != config.storage {
            return refuse("stream configuration update can not change storage type");
        }
        if old.retention != config.retention {
            return refuse("stream configuration update can not change retention policy");
        }
        if old.mirror != config.mirror {
            return Err(ApiError::mirror_not_updatable());
        }
        if old.sealed && !config.sealed {
            return refuse("stream configuration update can not unseal a sealed stream");
        }
        if old.deny_delete && !config.deny_delete {
            return refuse("stream configuration update can not cancel deny message deletes");
        }
        if old.deny_purge && !config.deny_purge {
            return refuse("stream configuration update can not cancel deny purge");
        }
        Self::check_overlap(&streams, &config)?;
        if let Some(dir) = &s.dir {
            meta::write_meta(dir, &config, s.created).map_err(|e| {
                tracing::error!("JetStream: writing {}/meta.json: {e}", dir.display());
                ApiError::update_failed("could not write the stream metadata")
            })?;
        }
        s.update(config)?;
        self.rebuild_filters(&streams);
        Ok(s)
    }

    /// `STREAM.DELETE`: forgets the stream and removes its directory.
    pub fn delete_stream(&self, name: &str) -> Result<(), ApiError> {
        let mut streams = self.streams.write();
        let Some(s) = streams.remove(name) else {
            return Err(ApiError::stream_not_found());
        };
        self.rebuild_filters(&streams);
        drop(streams);
        self.drop_consumers_of(name);
        s.release();
        if let Some(dir) = &s.dir {
            std::fs::remove_dir_all(dir).map_err(|e| {
                tracing::error!("JetStream: removing {}: {e}", dir.display());
                ApiError::delete_failed("could not remove the stream directory")
            })?;
        }
        tracing::debug!("JetStream: deleted stream '{} > {}'", self.name, name);
        Ok(())
    }
}

/// A `sync_interval` value: how often the ticker fsyncs.
pub fn sync_period(policy: SyncPolicy) -> Option<Duration> {
    match policy {
        SyncPolicy::Always => None,
        SyncPolicy::Interval(d) => Some(d),
    }
}

/// A time stamp as nats-server renders it (RFC 3339, nanoseconds, UTC); 0 (none) is Go's zero
/// time, `0001-01-01T00:00:00Z`.
pub fn stream_time(ns: i64) -> String {
    if ns <= 0 {
        return "0001-01-01T00:00:00Z".to_string();
    }
    crate::timefmt::rfc3339(UNIX_EPOCH + Duration::from_nanos(ns as u64))
}
