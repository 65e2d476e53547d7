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
//! - `instance`: the pools and the three handles;
//! - `sandbox`: per-store state, the memory limiter, the `host` imports, WASI locked down;
//! - `bindings`: `bindgen!` output and conversions to `types`;
//! - `types`: natrium's own types for requests, decisions, messages and outcomes;
//! - `error`: [`PluginError`] and the counters behind [`PluginStats`].
//!
//! Locks: one `parking_lot::Mutex` per pool and one per mapper cache, each held only to push
//! or pop (never across a guest call); no lock is taken while another is held.

mod bindings;
mod engine;
mod error;
mod instance;
mod sandbox;
pub mod types;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use engine::{EngineConfig, PluginEngine};
pub use error::{ErrorCounts, PluginError, PluginStats};
pub use instance::{Authorizer, Mapper, Transformer};
pub use types::{
    Allowed, ConnectRequest, Decision, HeadersRef, Limits, Message, MessageRef, Outcome,
    Permission, ResponsePermission, TlsIdentity,
};

/// Which world a plugin implements, i.e. which hook it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Authorizer,
    Mapper,
    Transformer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Authorizer => "authorizer",
            Role::Mapper => "mapper",
            Role::Transformer => "transformer",
        }
    }

    /// The call deadline used when the configuration gives none.
    pub fn default_deadline(self) -> Duration {
        match self {
            // Once per CONNECT, run off the tokio workers.
            Role::Authorizer => Duration::from_millis(100),
            // Per message, on the connection's reader task.
            Role::Mapper | Role::Transformer => Duration::from_millis(5),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failed call means for the message (transformers, mappers). An authorizer always
/// fails closed: the client is denied whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Do not deliver, and send the publisher an error.
    #[default]
    Reject,
    /// Do not deliver, silently (logged and counted).
    Drop,
    /// Deliver the message as if the plugin were not there.
    Pass,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Reject => "reject",
            FailurePolicy::Drop => "drop",
            FailurePolicy::Pass => "pass",
        }
    }
}

/// Default memory cap of one plugin instance (all its linear memories together).
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

/// One plugin binding, as declared in the configuration's `plugins {}` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The key in `plugins {}`; used in logs and metrics.
    pub name: String,
    /// The component file (absolute, or relative to the working directory; the config
    /// loader resolves paths against the configuration file's directory).
    pub path: PathBuf,
    pub role: Role,
    /// The plugin's configuration as a JSON document (`"{}"` when none).
    pub config_json: String,
    /// Per-call deadline.
    pub deadline: Duration,
    /// Cap of an instance's linear memory, in bytes.
    pub memory_limit: usize,
    /// Accounts the binding applies to; empty = all.
    pub accounts: Vec<String>,
    /// Subject filters (wildcards allowed) the binding applies to; empty = all.
    pub subjects: Vec<String>,
    pub on_failure: FailurePolicy,
}

impl PluginSpec {
    /// A spec with the defaults for `role`: no config, every account and subject, reject on
    /// failure.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, role: Role) -> Self {
        PluginSpec {
            name: name.into(),
            path: path.into(),
            role,
            config_json: "{}".to_string(),
            deadline: role.default_deadline(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            accounts: Vec::new(),
            subjects: Vec::new(),
            on_failure: FailurePolicy::Reject,
        }
    }

    /// True when this binding applies to messages in `account` published to `subject`.
    pub fn applies_to(&self, account: &str, subject: &str) -> bool {
        (self.accounts.is_empty() || self.accounts.iter().any(|a| a == account))
            && (self.subjects.is_empty()
                || self
                    .subjects
                    .iter()
                    .any(|f| crate::subject::matches(f.as_bytes(), subject.as_bytes())))
    }

    /// True when this binding applies to `account` (any subject).
    pub fn applies_to_account(&self, account: &str) -> bool {
        self.accounts.is_empty() || self.accounts.iter().any(|a| a == account)
    }
}
