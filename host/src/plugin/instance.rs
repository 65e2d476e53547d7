//! Instance pools and the three plugin handles.
//!
//! A pool holds idle instances, each in its own `Store` (its own memory, limiter and WASI
//! state). A call takes one (or instantiates one from the `InstancePre` when none is idle),
//! arms the epoch deadline, calls, and puts it back. After any failure the instance is
//! dropped: wasmtime refuses to re-enter an instance that trapped, and a guest that returned
//! garbage is not trusted with the next message either.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Store, Trap};

use super::bindings::{
    authorizer as wa, batch_transformer as wb, configured as wc, mapper as wm, transformer as wt,
    LIFECYCLE_EXPORT,
};
use super::budget::{Gate, Reservation};
use super::engine::{exports, Compiled, PluginEngine, EPOCH_TICK};
use super::error::{Counters, OutcomeKind, PluginError, PluginStats};
use super::sandbox::{HostState, PluginMeta};
use super::types::{ConnectRequest, Decision, Message, MessageRef, Outcome};
use super::{PluginSpec, Role};
use crate::subject::{is_valid_literal_subject, is_valid_subject};
use crate::util::{truncate_text, LogLimiter};

/// Idle instances kept per plugin; more concurrent callers get instances that are dropped
/// after their call.
const MAX_IDLE: usize = 64;
/// The longest `init` refusal kept (it ends up in a load error and a log line).
const MAX_INIT_REASON: usize = 1024;

/// Failure log lines per plugin per second before the rest are only counted: a plugin that
/// fails on every message must not flood the log (or the disk under it).
const FAILURE_LOG_LINES_PER_SECOND: u32 = 5;
/// Mapper results kept per deterministic mapper before the cache is cleared.
const MAX_CACHED_MAPPINGS: usize = 64 * 1024;

/// A generated world binding that a pool can load from an instance.
pub(crate) trait World: Sized + Send + 'static {
    type Indices: Send + Sync + 'static;
    fn indices(pre: &InstancePre<HostState>) -> wasmtime::Result<Self::Indices>;
    fn load(
        indices: &Self::Indices,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self>;
}

macro_rules! world {
    ($world:ty, $indices:ty) => {
        impl World for $world {
            type Indices = $indices;
            fn indices(pre: &InstancePre<HostState>) -> wasmtime::Result<Self::Indices> {
                <$indices>::new(pre)
            }
            fn load(
                indices: &Self::Indices,
                store: &mut Store<HostState>,
                instance: &Instance,
            ) -> wasmtime::Result<Self> {
                indices.load(store, instance)
            }
        }
    };
}

world!(wa::Authorizer, wa::AuthorizerIndices);
world!(wm::Mapper, wm::MapperIndices);
world!(wt::Transformer, wt::TransformerIndices);
world!(wb::BatchTransformer, wb::BatchTransformerIndices);

struct Slot<W> {
    store: Store<HostState>,
    world: W,
    /// This instance's place under the plugin's cap and the memory budget.
    _reservation: Reservation,
}

/// How a call went wrong before it is classified.
enum CallError {
    Wasm(wasmtime::Error),
    Malformed(String),
}

impl From<wasmtime::Error> for CallError {
    fn from(e: wasmtime::Error) -> Self {
        CallError::Wasm(e)
    }
}

struct Pool<W: World> {
    /// Keeps the engine (and its epoch ticker) alive as long as the plugin is.
    engine: PluginEngine,
    meta: Arc<PluginMeta>,
    role: Role,
    pre: InstancePre<HostState>,
    indices: W::Indices,
    /// Present when the component exports `lifecycle`: each new instance is initialised.
    init: Option<wc::ConfiguredIndices>,
    deadline_ticks: u64,
    memory_limit: usize,
    max_instances: usize,
    /// How long a call may wait for an instance (the plugin's deadline).
    wait_limit: std::time::Duration,
    idle: Mutex<Vec<Slot<W>>>,
    gate: Arc<Gate>,
    counters: Counters,
    log_limit: LogLimiter,
}

impl<W: World> Pool<W> {
    /// Links `component` and creates the first instance (so that a component that cannot be
    /// instantiated at all is a load error, not a failure of the first call).
    fn new(
        engine: PluginEngine,
        spec: &PluginSpec,
        role: Role,
        compiled: &Compiled,
    ) -> Result<Self, PluginError> {
        let component = &compiled.component;
        let load_err = |msg: String| {
            PluginError::Load(format!(
                "plugin '{}' ({}): {msg}",
                spec.name,
                spec.path.display()
            ))
        };
        let pre = engine
            .inner
            .linker
            .instantiate_pre(component)
            .map_err(|e| load_err(format!("cannot link: {e:#}")))?;
        let indices = W::indices(&pre).map_err(|e| load_err(format!("cannot link: {e:#}")))?;
        let init = if exports(&engine.inner.engine, component, LIFECYCLE_EXPORT) {
            let indices = wc::ConfiguredIndices::new(&pre)
                .map_err(|e| load_err(format!("its {LIFECYCLE_EXPORT} export: {e:#}")))?;
            Some(indices)
        } else {
            None
        };
        let kv = engine.kv_grant(spec).map_err(load_err)?;
        // +1: the next tick may come at once, so n ticks guarantee at least n-1 periods.
        let ticks = spec.deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) + 1;
        let pool = Pool {
            engine,
            meta: Arc::new(PluginMeta {
                name: spec.name.as_str().into(),
                config_json: spec.config_json.clone(),
                sha256: compiled.sha256.clone(),
                kv,
            }),
            role,
            pre,
            indices,
            init,
            deadline_ticks: u64::try_from(ticks).unwrap_or(u64::MAX).max(2),
            memory_limit: spec.memory_limit,
            max_instances: spec.max_instances.max(1),
            wait_limit: spec.deadline,
            idle: Mutex::new(Vec::new()),
            gate: Arc::new(Gate::default()),
            counters: Counters::default(),
            log_limit: LogLimiter::new(FAILURE_LOG_LINES_PER_SECOND),
        };
        let first = pool
            .reserve()
            .ok_or_else(|| {
                load_err("no room for an instance within plugin_memory_budget".to_string())
            })
            .and_then(|r| {
                pool.instantiate(r).map_err(|e| match e {
                    PluginError::Init(_) => load_err(e.to_string()),
                    e => load_err(format!("cannot instantiate: {e}")),
                })
            })?;
        pool.idle.lock().push(first);
        Ok(pool)
    }

    fn name(&self) -> &str {
        &self.meta.name
    }

    fn sha256(&self) -> &str {
        &self.meta.sha256
    }

    fn reserve(&self) -> Option<Reservation> {
        self.gate.reserve(
            self.max_instances,
            &self.engine.inner.budget,
            self.memory_limit,
        )
    }

    /// An idle instance, or a new one if the cap and the budget allow; otherwise waits for
    /// one up to the plugin's deadline, then fails with [`PluginError::Busy`].
    fn acquire(&self) -> Result<Slot<W>, PluginError> {
        let until = std::time::Instant::now() + self.wait_limit;
        loop {
            if let Some(slot) = self.idle.lock().pop() {
                return Ok(slot);
            }
            if let Some(r) = self.reserve() {
                return self.instantiate(r);
            }
            if !self.gate.wait(until) {
                return Err(PluginError::Busy(self.max_instances));
            }
        }
    }

    fn instantiate(&self, reservation: Reservation) -> Result<Slot<W>, PluginError> {
        let state = HostState::new(self.meta.clone(), self.memory_limit);
        let mut store = Store::new(&self.engine.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Instantiation may run guest code (start functions, constructors): deadline it too.
        store.set_epoch_deadline(self.deadline_ticks);
        let world = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| {
                let world = W::load(&self.indices, &mut store, &instance)?;
                Ok((world, instance))
            })
            .map_err(|e| classify(e, &store))
            .and_then(|(world, instance)| {
                self.initialise(&mut store, &instance)?;
                Ok(world)
            })?;
        self.counters.instances_created.fetch_add(1, Relaxed);
        self.counters.note_memory(store.data().limiter.used());
        Ok(Slot {
            store,
            world,
            _reservation: reservation,
        })
    }

    /// Calls the component's `lifecycle.init` with its configuration, if it exports one.
    fn initialise(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> Result<(), PluginError> {
        let Some(init) = &self.init else {
            return Ok(());
        };
        let refused = init
            .load(&mut *store, instance)
            .and_then(|c| {
                c.natrium_plugin_lifecycle()
                    .call_init(&mut *store, &self.meta.config_json)
            })
            .map_err(|e| classify(e, store))?;
        refused.map_err(|reason| {
            PluginError::Init(truncate_text(&reason, MAX_INIT_REASON).into_owned())
        })
    }

    /// Runs `f` on a pooled instance under the deadline. Every failure is classified,
    /// counted, logged with the plugin's name, and costs the instance.
    /// `account` is the account the call is for (where a `kv` lookup reads).
    fn call<R>(
        &self,
        op: &'static str,
        account: Option<&str>,
        f: impl FnOnce(&W, &mut Store<HostState>) -> Result<R, CallError>,
    ) -> Result<R, PluginError> {
        self.counters.calls.fetch_add(1, Relaxed);
        let mut slot = match self.acquire() {
            Ok(slot) => slot,
            Err(e) => return Err(self.acquire_failed(op, e)),
        };
        slot.store.set_epoch_deadline(self.deadline_ticks);
        slot.store.data_mut().set_account(account);
        let started = std::time::Instant::now();
        let result = f(&slot.world, &mut slot.store);
        self.counters.latency.record(started.elapsed());
        self.counters.note_memory(slot.store.data().limiter.used());
        match result {
            Ok(r) => {
                let mut idle = self.idle.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(slot);
                    drop(idle);
                    self.gate.returned();
                }
                Ok(r)
            }
            Err(e) => {
                let err = match e {
                    CallError::Wasm(e) => {
                        tracing::debug!(target: "natrium::plugin", plugin = self.name(), op, "plugin call failed: {e:?}");
                        classify(e, &slot.store)
                    }
                    CallError::Malformed(m) => PluginError::Malformed(m),
                };
                drop(slot);
                self.counters.instances_recycled.fetch_add(1, Relaxed);
                self.counters.count_error(&err);
                self.log_failure(op, &err, "plugin call failed, instance recycled");
                Err(err)
            }
        }
    }

    /// Counts and logs a call that got no instance.
    fn acquire_failed(&self, op: &'static str, e: PluginError) -> PluginError {
        match &e {
            PluginError::Busy(_) => self.counters.count_error(&e),
            _ => {
                self.counters.instantiation_failures.fetch_add(1, Relaxed);
            }
        }
        self.log_failure(op, &e, "plugin call got no instance");
        e
    }

    /// Logs a failure, at most a few lines per second per plugin (all are counted).
    fn log_failure(&self, op: &'static str, err: &PluginError, what: &str) {
        let (log, suppressed) = self.log_limit.admit();
        if suppressed > 0 {
            tracing::warn!(
                target: "natrium::plugin",
                plugin = self.name(),
                "{suppressed} more plugin failure(s) in the last second not logged (see /metrics)"
            );
        }
        if log {
            tracing::warn!(
                target: "natrium::plugin",
                plugin = self.name(),
                role = self.role.as_str(),
                op,
                kind = err.kind(),
                "{what}: {err}"
            );
        }
    }

    fn stats(&self) -> PluginStats {
        let idle = self.idle.lock().len();
        self.counters
            .snapshot(self.name(), self.role.as_str(), idle)
    }
}

fn classify(e: wasmtime::Error, store: &Store<HostState>) -> PluginError {
    if store.data().limiter.hit {
        return PluginError::OutOfMemory;
    }
    if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
        return PluginError::Timeout;
    }
    PluginError::Trap(e.root_cause().to_string())
}

fn malformed<T>(msg: impl Into<String>) -> Result<T, CallError> {
    Err(CallError::Malformed(msg.into()))
}

// ---- authorizer ------------------------------------------------------------------------

/// A loaded authorizer. Cheap to clone; calls may run concurrently (one instance each).
#[derive(Clone)]
pub struct Authorizer {
    pool: Arc<Pool<wa::Authorizer>>,
    spec: Arc<PluginSpec>,
}

impl Authorizer {
    pub(crate) fn new(
        engine: PluginEngine,
        spec: &PluginSpec,
        compiled: &Compiled,
    ) -> Result<Self, PluginError> {
        Ok(Authorizer {
            pool: Arc::new(Pool::new(engine, spec, Role::Authorizer, compiled)?),
            spec: Arc::new(spec.clone()),
        })
    }

    pub fn name(&self) -> &str {
        self.pool.name()
    }

    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// Lower-case hex SHA-256 of the loaded component.
    pub fn sha256(&self) -> &str {
        self.pool.sha256()
    }

    pub fn stats(&self) -> PluginStats {
        self.pool.stats()
    }

    /// Counts one decision (allow or deny; a failure counts as deny: authorizers fail closed).
    pub fn count_outcome(&self, kind: OutcomeKind) {
        self.pool.counters.count_outcome(kind);
    }

    /// Runs the authorizer on a blocking-pool thread (it may take up to its deadline, which
    /// must not stall a tokio worker). Any error means: deny the client (fail closed).
    pub async fn authorize(&self, request: ConnectRequest) -> Result<Decision, PluginError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.authorize_blocking(&request))
            .await
            .unwrap_or_else(|e| Err(PluginError::Trap(format!("authorizer task failed: {e}"))))
    }

    /// The same, on the calling thread.
    pub fn authorize_blocking(&self, request: &ConnectRequest) -> Result<Decision, PluginError> {
        let req = request.into();
        self.pool.call("authorize", None, |w, store| {
            let d = w
                .natrium_plugin_authorization()
                .call_authorize(store, &req)?;
            let d = Decision::from(d);
            if let Decision::Allow(a) = &d {
                if a.account.is_empty() {
                    return malformed("allow with an empty account");
                }
                for s in a
                    .publish
                    .allow
                    .iter()
                    .chain(&a.publish.deny)
                    .chain(&a.subscribe.allow)
                    .chain(&a.subscribe.deny)
                {
                    if !is_valid_subject(s.as_bytes()) {
                        return malformed(format!("invalid subject in permissions: {s:?}"));
                    }
                }
            }
            Ok(d)
        })
    }
}

// ---- mapper ----------------------------------------------------------------------------

type MapCache = FxHashMap<String, FxHashMap<String, Option<String>>>;

/// A loaded mapper. Cheap to clone.
#[derive(Clone)]
pub struct Mapper {
    pool: Arc<Pool<wm::Mapper>>,
    spec: Arc<PluginSpec>,
    /// Results per (account, subject), when the guest said it is deterministic.
    cache: Option<Arc<Mutex<MapCache>>>,
    cached: Arc<AtomicUsize>,
}

impl Mapper {
    pub(crate) fn new(
        engine: PluginEngine,
        spec: &PluginSpec,
        compiled: &Compiled,
    ) -> Result<Self, PluginError> {
        let pool: Pool<wm::Mapper> = Pool::new(engine, spec, Role::Mapper, compiled)?;
        let deterministic = pool
            .call("deterministic", None, |w, store| {
                Ok(w.natrium_plugin_mapping().call_deterministic(store)?)
            })
            .map_err(|e| {
                PluginError::Load(format!(
                    "plugin '{}' ({}): deterministic() failed: {e}",
                    spec.name,
                    spec.path.display()
                ))
            })?;
        Ok(Mapper {
            pool: Arc::new(pool),
            spec: Arc::new(spec.clone()),
            cache: deterministic.then(|| Arc::new(Mutex::new(MapCache::default()))),
            cached: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn name(&self) -> &str {
        self.pool.name()
    }

    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// Lower-case hex SHA-256 of the loaded component.
    pub fn sha256(&self) -> &str {
        self.pool.sha256()
    }

    pub fn stats(&self) -> PluginStats {
        self.pool.stats()
    }

    /// Whether results are cached (the guest's `deterministic()` said so at load).
    pub fn is_deterministic(&self) -> bool {
        self.cache.is_some()
    }

    /// The new subject for `subject` published in `account`, or `None` to keep it.
    pub fn map(&self, account: &str, subject: &str) -> Result<Option<String>, PluginError> {
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.lock().get(account).and_then(|m| m.get(subject)) {
                self.pool.counters.cache_hits.fetch_add(1, Relaxed);
                return Ok(hit.clone());
            }
        }
        let mapped = self.pool.call("map", Some(account), |w, store| {
            let m = w
                .natrium_plugin_mapping()
                .call_map(store, account, subject)?;
            if let Some(s) = &m {
                if !is_valid_literal_subject(s.as_bytes()) {
                    return malformed(format!("map returned an invalid subject: {s:?}"));
                }
            }
            Ok(m)
        })?;
        if let Some(cache) = &self.cache {
            let mut cache = cache.lock();
            if self.cached.load(Relaxed) >= MAX_CACHED_MAPPINGS {
                cache.clear();
                self.cached.store(0, Relaxed);
            }
            let prev = cache
                .entry(account.to_string())
                .or_default()
                .insert(subject.to_string(), mapped.clone());
            if prev.is_none() {
                self.cached.fetch_add(1, Relaxed);
            }
        }
        Ok(mapped)
    }
}

// ---- transformer -----------------------------------------------------------------------

/// A loaded transformer, of either world: `transformer` (one call per message) or
/// `batch-transformer` (one call per batch, messages read on demand). Cheap to clone. Calls
/// are synchronous and meant for the connection's reader task: keep the deadline short
/// (default 5 ms).
#[derive(Clone)]
pub struct Transformer {
    kind: Kind,
    spec: Arc<PluginSpec>,
}

#[derive(Clone)]
enum Kind {
    PerMessage(Arc<Pool<wt::Transformer>>),
    Batch(Arc<Pool<wb::BatchTransformer>>),
}

use super::bindings::transformer::natrium::plugin::types as wty;
use wb::exports::natrium::plugin::batch_transformation as wbt;

impl Transformer {
    pub(crate) fn new(
        engine: PluginEngine,
        spec: &PluginSpec,
        compiled: &Compiled,
        batch: bool,
    ) -> Result<Self, PluginError> {
        let kind = if batch {
            Kind::Batch(Arc::new(Pool::new(
                engine,
                spec,
                Role::Transformer,
                compiled,
            )?))
        } else {
            Kind::PerMessage(Arc::new(Pool::new(
                engine,
                spec,
                Role::Transformer,
                compiled,
            )?))
        };
        Ok(Transformer {
            kind,
            spec: Arc::new(spec.clone()),
        })
    }

    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::PerMessage(p) => p.name(),
            Kind::Batch(p) => p.name(),
        }
    }

    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// Lower-case hex SHA-256 of the loaded component.
    pub fn sha256(&self) -> &str {
        match &self.kind {
            Kind::PerMessage(p) => p.sha256(),
            Kind::Batch(p) => p.sha256(),
        }
    }

    pub fn stats(&self) -> PluginStats {
        match &self.kind {
            Kind::PerMessage(p) => p.stats(),
            Kind::Batch(p) => p.stats(),
        }
    }

    /// Counts what the binding did with one message.
    pub fn count_outcome(&self, kind: OutcomeKind) {
        match &self.kind {
            Kind::PerMessage(p) => p.counters.count_outcome(kind),
            Kind::Batch(p) => p.counters.count_outcome(kind),
        }
    }

    /// An answer the message path refused after the call (a replacement bigger than the
    /// publisher's max_payload): counted and logged (rate-limited) as a malformed result.
    pub fn refuse_output(&self, what: &str) {
        let e = PluginError::Malformed(what.to_string());
        let op = "transform";
        match &self.kind {
            Kind::PerMessage(p) => {
                p.counters.count_error(&e);
                p.log_failure(op, &e, "output refused");
            }
            Kind::Batch(p) => {
                p.counters.count_error(&e);
                p.log_failure(op, &e, "output refused");
            }
        }
    }

    /// Whether the component implements `batch-transformer`.
    pub fn is_batch(&self) -> bool {
        matches!(self.kind, Kind::Batch(_))
    }

    /// Transforms one message published in `account`.
    pub fn transform(&self, account: &str, msg: &Message) -> Result<Outcome, PluginError> {
        match &self.kind {
            Kind::PerMessage(pool) => {
                let m = wty::Message::from(msg);
                pool.call("transform", Some(account), |w, store| {
                    let o = w
                        .natrium_plugin_transformation()
                        .call_transform(store, account, &m)?;
                    check_outcome(o.into())
                })
            }
            Kind::Batch(_) => {
                let mut out = self.transform_pending(account, &[msg.as_ref()])?;
                Ok(out.pop().unwrap_or(Outcome::Pass))
            }
        }
    }

    /// Transforms several messages of `account` in one call: one outcome per message, in
    /// order (a guest that answers with another count is `Malformed`).
    pub fn transform_batch(
        &self,
        account: &str,
        msgs: &[Message],
    ) -> Result<Vec<Outcome>, PluginError> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let pool = match &self.kind {
            Kind::PerMessage(pool) => pool,
            Kind::Batch(_) => {
                let refs: Vec<MessageRef<'_>> = msgs.iter().map(Message::as_ref).collect();
                return self.transform_pending(account, &refs);
            }
        };
        let ms: Vec<wty::Message> = msgs.iter().map(Into::into).collect();
        pool.call("transform-batch", Some(account), |w, store| {
            let out = w
                .natrium_plugin_transformation()
                .call_transform_batch(store, account, &ms)?;
            if out.len() != ms.len() {
                return malformed(format!(
                    "transform-batch returned {} outcomes for {} messages",
                    out.len(),
                    ms.len()
                ));
            }
            out.into_iter().map(|o| check_outcome(o.into())).collect()
        })
    }

    /// The batch world's call: the messages are staged in the store for the guest to read,
    /// and only the guest's decisions come back. For a per-message transformer, one call each.
    pub fn transform_pending(
        &self,
        account: &str,
        msgs: &[MessageRef<'_>],
    ) -> Result<Vec<Outcome>, PluginError> {
        let pool = match &self.kind {
            Kind::Batch(pool) => pool,
            Kind::PerMessage(_) => {
                return msgs
                    .iter()
                    .map(|m| self.transform(account, &m.to_owned()))
                    .collect();
            }
        };
        let count = msgs.len();
        let Ok(count32) = u32::try_from(count) else {
            return Err(PluginError::Malformed("batch too large".into()));
        };
        pool.call("transform-pending", Some(account), move |w, store| {
            store.data_mut().pending.stage(msgs);
            let result = w
                .natrium_plugin_batch_transformation()
                .call_transform_pending(&mut *store, account, count32);
            store.data_mut().pending.clear();
            let mut out = vec![Outcome::Pass; count];
            let mut seen = vec![false; count];
            for d in result? {
                let i = d.index as usize;
                if i >= count || std::mem::replace(&mut seen[i], true) {
                    return malformed(format!(
                        "transform-pending decided twice or out of range (index {})",
                        d.index
                    ));
                }
                out[i] = check_outcome(match d.action {
                    wbt::Action::Replace(m) => Outcome::Replace(m.into()),
                    wbt::Action::Drop(reason) => Outcome::Drop(super::types::reason(reason)),
                })?;
            }
            Ok(out)
        })
    }
}

/// A replacement must be deliverable: a literal subject and reply, and headers that cannot
/// break the `HMSG` framing.
fn check_outcome(o: Outcome) -> Result<Outcome, CallError> {
    if let Outcome::Replace(m) = &o {
        if !is_valid_literal_subject(m.subject.as_bytes()) {
            return malformed(format!(
                "replacement has an invalid subject: {:?}",
                m.subject
            ));
        }
        if let Some(r) = &m.reply {
            if !is_valid_literal_subject(r.as_bytes()) {
                return malformed(format!("replacement has an invalid reply subject: {r:?}"));
            }
        }
        for (name, value) in &m.headers {
            let bad_name = name.is_empty()
                || name
                    .bytes()
                    .any(|b| b == b':' || b.is_ascii_whitespace() || b.is_ascii_control());
            if bad_name || value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return malformed(format!("replacement has an invalid header: {name:?}"));
            }
        }
    }
    Ok(o)
}
