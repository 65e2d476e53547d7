//! `PluginError` and the per-plugin counters behind `/varz` and `/metrics`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Why a plugin call (or load) failed. Every variant but `Load` means the instance that
/// failed was thrown away; the next call gets a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The guest trapped: a panic, `unreachable`, a bad memory access, a host function that
    /// refused (e.g. a guest trying to sleep).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline and was interrupted.
    #[error("plugin call exceeded its deadline")]
    Timeout,
    /// The guest tried to grow its memory beyond the configured cap.
    #[error("plugin exceeded its memory limit")]
    OutOfMemory,
    /// The guest returned something the contract forbids (e.g. a batch of the wrong length).
    #[error("plugin returned a malformed result: {0}")]
    Malformed(String),
    /// The component could not be read, compiled, linked or instantiated.
    #[error("{0}")]
    Load(String),
    /// All of the plugin's instances (`max_instances`, or what `plugin_memory_budget`
    /// allows) stayed busy until the call's deadline.
    #[error("plugin busy: all {0} instances in use until the deadline")]
    Busy(usize),
    /// The plugin's `lifecycle.init` refused its configuration (the plugin's own message).
    #[error("plugin rejected its configuration: {0}")]
    Init(String),
}

/// Why the configured plugins could not be loaded; start-up (or the reload) stops.
#[derive(Debug, thiserror::Error)]
pub enum PluginLoadError {
    #[error("starting the plugin engine: {0}")]
    Engine(#[source] PluginError),
    /// More than one plugin has `role: authorizer`.
    #[error("{}", crate::options::multiple_authorizers_message(names))]
    MultipleAuthorizers { names: Vec<String> },
    /// The plugin `name` (the key in `plugins {}`) at `path` could not be loaded.
    #[error("loading plugin '{name}' ({}): {source}", path.display())]
    Plugin {
        name: String,
        path: PathBuf,
        #[source]
        source: PluginError,
    },
}

impl PluginError {
    /// A short, stable label for metrics (`trap`, `timeout`, `oom`, `malformed`, `load`).
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Trap(_) => "trap",
            PluginError::Timeout => "timeout",
            PluginError::OutOfMemory => "oom",
            PluginError::Malformed(_) => "malformed",
            PluginError::Load(_) => "load",
            PluginError::Busy(_) => "busy",
            PluginError::Init(_) => "init",
        }
    }
}

/// Live counters of one plugin (all monotonic).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub calls: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub out_of_memory: AtomicU64,
    pub malformed: AtomicU64,
    pub instantiation_failures: AtomicU64,
    pub instances_created: AtomicU64,
    pub instances_recycled: AtomicU64,
    pub cache_hits: AtomicU64,
    pub busy: AtomicU64,
    /// The most linear memory one instance has held, in bytes.
    pub memory_peak: AtomicU64,
    /// Decisions, by outcome.
    pub outcomes: [AtomicU64; OutcomeKind::ALL.len()],
    /// How long calls into the guest took.
    pub latency: LatencyHistogram,
}

/// Upper bounds (seconds) of the call-latency buckets, Prometheus style (`+Inf` implied).
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0,
];

/// A fixed-bucket histogram of call durations (cumulative counts are built on export).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per bucket (the last one is `+Inf`): calls that took at most its bound and more than
    /// the previous one.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Cumulative counts per bound (`LATENCY_BUCKETS`, then `+Inf`), and the sum in seconds.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut cumulative = Vec::with_capacity(self.buckets.len());
        let mut total = 0;
        for b in &self.buckets {
            total += b.load(Relaxed);
            cumulative.push(total);
        }
        LatencySnapshot {
            cumulative,
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram read out for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySnapshot {
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
}

/// What a plugin decided about one message or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    Pass,
    Replace,
    Drop,
    Reject,
    Allow,
    Deny,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 6] = [
        OutcomeKind::Pass,
        OutcomeKind::Replace,
        OutcomeKind::Drop,
        OutcomeKind::Reject,
        OutcomeKind::Allow,
        OutcomeKind::Deny,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Pass => "pass",
            OutcomeKind::Replace => "replace",
            OutcomeKind::Drop => "drop",
            OutcomeKind::Reject => "reject",
            OutcomeKind::Allow => "allow",
            OutcomeKind::Deny => "deny",
        }
    }
}

/// Decisions by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub pass: u64,
    pub replace: u64,
    pub drop: u64,
    pub reject: u64,
    pub allow: u64,
    pub deny: u64,
}

impl Counters {
    pub fn count_outcome(&self, kind: OutcomeKind) {
        self.outcomes[kind as usize].fetch_add(1, Relaxed);
    }

    /// Notes that an instance holds `bytes` of linear memory.
    pub fn note_memory(&self, bytes: usize) {
        let bytes = bytes as u64;
        // Memory only grows now and then: one relaxed load is all most calls pay.
        if bytes > self.memory_peak.load(Relaxed) {
            self.memory_peak.fetch_max(bytes, Relaxed);
        }
    }

    pub fn count_error(&self, e: &PluginError) {
        let c = match e {
            PluginError::Trap(_) => &self.traps,
            PluginError::Timeout => &self.timeouts,
            PluginError::OutOfMemory => &self.out_of_memory,
            PluginError::Malformed(_) => &self.malformed,
            PluginError::Load(_) | PluginError::Init(_) => &self.instantiation_failures,
            PluginError::Busy(_) => &self.busy,
        };
        c.fetch_add(1, Relaxed);
    }
}

/// A snapshot of one plugin's counters, for `/varz` (JSON) and `/metrics` (Prometheus).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PluginStats {
    pub name: String,
    /// `authorizer`, `mapper` or `transformer`.
    pub role: &'static str,
    /// Calls into the guest (mapper cache hits are not calls).
    pub calls: u64,
    /// Failed calls, by kind.
    pub errors: ErrorCounts,
    /// Instances created from the pre-linked component (the first ones and replacements).
    pub instances_created: u64,
    /// Instances thrown away after a failure.
    pub instances_recycled: u64,
    /// Instances idle in the pool right now.
    pub instances_idle: u64,
    /// Mapper results served from the cache of a deterministic mapper.
    pub cache_hits: u64,
    /// The most linear memory one instance has held, in bytes.
    pub memory_peak: u64,
    /// What the plugin decided (transformers: pass/replace/drop/reject; authorizers:
    /// allow/deny; a failure handled by `on_failure` counts as what the policy did).
    pub outcomes: OutcomeCounts,
    /// Call latency, cumulative per `LATENCY_BUCKETS` bound (then `+Inf`).
    pub latency: LatencySnapshot,
}

/// Failed calls by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    pub trap: u64,
    pub timeout: u64,
    pub out_of_memory: u64,
    pub malformed: u64,
    /// A replacement instance could not be created.
    pub instantiation: u64,
    /// No instance became free before the deadline (`max_instances` / memory budget).
    pub busy: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.trap
            + self.timeout
            + self.out_of_memory
            + self.malformed
            + self.instantiation
            + self.busy
    }
}

impl Counters {
    pub fn snapshot(&self, name: &str, role: &'static str, idle: usize) -> PluginStats {
        PluginStats {
            name: name.to_string(),
            role,
            calls: self.calls.load(Relaxed),
            errors: ErrorCounts {
                trap: self.traps.load(Relaxed),
                timeout: self.timeouts.load(Relaxed),
                out_of_memory: self.out_of_memory.load(Relaxed),
                malformed: self.malformed.load(Relaxed),
                instantiation: self.instantiation_failures.load(Relaxed),
                busy: self.busy.load(Relaxed),
            },
            instances_created: self.instances_created.load(Relaxed),
            instances_recycled: self.instances_recycled.load(Relaxed),
            instances_idle: idle as u64,
            cache_hits: self.cache_hits.load(Relaxed),
            memory_peak: self.memory_peak.load(Relaxed),
            latency: self.latency.snapshot(),
            outcomes: {
                let n = |k: OutcomeKind| self.outcomes[k as usize].load(Relaxed);
                OutcomeCounts {
                    pass: n(OutcomeKind::Pass),
                    replace: n(OutcomeKind::Replace),
                    drop: n(OutcomeKind::Drop),
                    reject: n(OutcomeKind::Reject),
                    allow: n(OutcomeKind::Allow),
                    deny: n(OutcomeKind::Deny),
                }
            },
        }
    }
}
