//! The WebAssembly plugin host: loads components written against `wit/natrium-plugin.wit`
//! and runs them sandboxed.
//!
//! ```text
//!  PluginSpec ──PluginEngine::load_*──▶ Component (compiled once; on-disk cache)
//!                                          │ Linker: natrium:plugin/host + locked-down WASI
//!                                          ▼
//!                                      InstancePre (linked once)
//!                                          │ instantiate on demand (12–20 µs)
//!                                          ▼
//!  Authorizer / Mapper / Transformer ──▶ pool of idle instances (Mutex<Vec<_>>)
//!      take one → set epoch deadline → call → put it back
//!      on any failure: drop it (a trapped instance cannot be re-entered), count, log
//! ```
//!
//! - `engine`: the one wasmtime `Engine` (epoch interruption, ticked every millisecond by a
//!   background thread while any engine or plugin handle is alive) and the compiled-artifact
//!   cache (`sha256(component) + engine compatibility hash` → `*.cwasm`);
//! - `diagnose`: why a file is or is not a loadable plugin, with the fix (shared by the load
//!   errors and `natrium plugin check`);
//! - `cache`: that cache's directory checks (owner, mode) and the keyed tag that binds each
//!   artifact to its component before it is deserialized;
//! - `instance`: the pools and the three handles;
//! - `sandbox`: per-store state, the memory limiter, the `host` imports, WASI locked down;
//! - `signature`: detached NKey signatures over a component's sha256 (`signed_by`);
//! - `kv`: the `kv` import (read-only lookups in a bucket of the call's account, per grant);
//! - `bindings`: `bindgen!` output and conversions to `types`;
//! - `types`: natrium's own types for requests, decisions, messages and outcomes;
//! - `error`: [`PluginError`] and the counters behind [`PluginStats`].
//!
//! Locks: one `parking_lot::Mutex` per pool and one per mapper cache, each held only to push
//! or pop (never across a guest call); no lock is taken while another is held. A `kv` lookup
//! takes JetStream's locks (its account registry, the stream's store) inside a guest call,
//! while no plugin lock is held.

mod bindings;
mod budget;
mod cache;
pub mod diagnose;
mod engine;
mod error;
mod instance;
pub mod kv;
mod sandbox;
pub mod signature;
pub mod types;

#[cfg(test)]
mod tests;

/// The plugin bindings are part of the configuration model (`options`).
pub use crate::options::{FailurePolicy, PluginSpec, Role};
pub use engine::{component_sha256, Diagnosis, EngineConfig, PluginEngine};
pub use error::{
    ErrorCounts, LatencySnapshot, OutcomeCounts, OutcomeKind, PluginError, PluginLoadError,
    PluginStats, LATENCY_BUCKETS,
};
pub use instance::{Authorizer, Mapper, Transformer};
pub use kv::KvSource;
pub use types::{
    Allowed, ConnectRequest, Decision, HeadersRef, Limits, Message, MessageRef, Outcome,
    Permission, ResponsePermission, TlsIdentity,
};

pub use crate::options::DEFAULT_PLUGIN_MEMORY_LIMIT as DEFAULT_MEMORY_LIMIT;
