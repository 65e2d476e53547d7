//! Typed server options: what the command line and the configuration file both produce.
//!
//! Defaults match nats-server's so that a configuration written for it means the same here.
//! [`Options`] is grouped into one section per concern (listeners, limits, authorization,
//! accounts, operator mode, logging, files, JetStream, cluster, plugins); each section's
//! `Default` holds nats-server's defaults for its fields.

use std::path::PathBuf;
use std::time::Duration;

use std::fmt;

/// `port: -1` / `-p -1`: let the OS pick a free port.
pub const RANDOM_PORT: i32 = -1;

/// Everything the server needs to start. Built by `cli` (flags) layered over `config` (file).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Path of the configuration file this was read from, if any (for reload and `-t`).
    pub config_file: Option<PathBuf>,
    /// The command line these options were built from (without argv\[0\]); a reload
    /// builds the new options from it again, so flags win over the file every time.
    pub command_line: Vec<String>,
    pub server_name: String,
    pub server_tags: Vec<String>,
    /// The client and monitoring listeners.
    pub listen: ListenOptions,
    /// Per-connection limits and timers, and lame-duck timing.
    pub limits: LimitOptions,
    /// Who may connect when accounts are configured in the file (not operator mode).
    pub auth: AuthOptions,
    /// Configured accounts and what links and maps subjects between and within them.
    pub accounts: AccountOptions,
    /// Operator (decentralized JWT) mode.
    pub operator: OperatorOptions,
    pub tls: Option<TlsOptions>,
    /// With TLS configured, clients may still connect without it (INFO says
    /// `tls_available` instead of `tls_required`).
    pub allow_non_tls: bool,
    pub logging: LoggingOptions,
    /// Files the server writes at start and removes at shutdown.
    pub files: FileOptions,
    pub jetstream: JetStreamOptions,
    /// Accepted and reported; clustering is a later issue.
    pub cluster: ClusterOptions,
    pub plugins: PluginOptions,

    /// Keys that were read but name features natrium does not have yet; logged as warnings.
    pub unsupported: Vec<String>,
    /// Accepted-but-discouraged settings (e.g. `ping_interval: 60` instead of "60s"); logged as
    /// warnings, like nats-server's configuration warnings.
    pub config_warnings: Vec<String>,
}

/// The client listener (`-a`/`-p`, `host`/`port`/`listen`) and the monitoring one (`-m`,
/// `http`/`http_port`).
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Client listener host (`-a`, `host`/`net`/`listen`).
    pub host: String,
    /// Client listener port; `RANDOM_PORT` (-1) picks one, 0 also picks one.
    pub port: i32,
    /// `--client_advertise`: the URL advertised to clients instead of host:port.
    pub client_advertise: Option<String>,
    /// Monitoring listener host; empty means the client listener's host.
    pub http_host: String,
    /// Monitoring port; `None` or `Some(0)` when monitoring is off, -1 for a random port.
    pub http_port: Option<i32>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            host: "0.0.0.0".to_string(),
            port: 4222,
            client_advertise: None,
            http_host: String::new(),
            http_port: None,
        }
    }
}

/// What one connection may do and how long it is given (`max_payload`, `ping_interval`,
/// `authorization { timeout }`, ...), and the lame-duck timing.
#[derive(Debug, Clone)]
pub struct LimitOptions {
    pub max_payload: u32,
    pub max_control_line: u32,
    pub max_connections: u32,
    /// Bytes a client may have queued for it before it is a slow consumer.
    pub max_pending: u64,
    pub max_pings_out: u32,
    pub ping_interval: Duration,
    pub write_deadline: Duration,
    /// Time a client has to send CONNECT (and authenticate) when auth is required.
    pub auth_timeout: Duration,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
}

impl Default for LimitOptions {
    fn default() -> Self {
        LimitOptions {
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_connections: 64 * 1024,
            max_pending: 64 * 1024 * 1024,
            max_pings_out: 2,
            ping_interval: Duration::from_secs(120),
            write_deadline: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(2),
            lame_duck_duration: Duration::from_secs(120),
            lame_duck_grace_period: Duration::from_secs(10),
        }
    }
}

/// Configured credentials: single-user auth (flags or `authorization {}`), a token, and the
/// users of `authorization { users }` and `accounts { X { users } }`.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    /// `--auth`, `authorization { token }`.
    pub token: Option<String>,
    /// Users from `authorization { users [...] }` (account `$G`) and `accounts { X { users } }`.
    pub users: Vec<UserSpec>,
    /// The user a client without credentials is treated as (`no_auth_user`).
    pub no_auth_user: Option<String>,
    /// `authorization { failure_backoff {} }`: slow down an address that keeps failing.
    pub failure_backoff: Option<FailureBackoff>,
    /// `authorization { auth_callout {} }`: an external service decides who connects.
    pub callout: Option<AuthCallout>,
}

/// `authorization { auth_callout { issuer, auth_users, account, xkey } }` (nats-server 2.10,
/// configuration mode). Every CONNECT except those of `auth_users` is sent as an
/// authorization request to `$SYS.REQ.USER.AUTH` in `account`; the service's signed answer
/// names the account and permissions the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCallout {
    /// Account public NKey (`A…`) that signs the responses and the user JWTs in them.
    pub issuer: String,
    /// Users (names or NKeys) that authenticate as configured and skip the callout: the
    /// callout service's own connections.
    pub auth_users: Vec<String>,
    /// The account the requests are sent in (where `auth_users` live); `$G` by default.
    pub account: String,
    /// The service's curve public key (`X…`): requests are encrypted to it when set.
    pub xkey: Option<String>,
}

/// `authorization { failure_backoff { max_failures, window, delay } }` (natrium's own; off
/// unless configured). An address with `max_failures` failed authentications within `window`
/// of its first has every CONNECT answered no sooner than `delay` after the previous answer
/// to that address, whatever the credentials; a success forgets its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBackoff {
    pub max_failures: u32,
    pub window: Duration,
    pub delay: Duration,
}

impl Default for FailureBackoff {
    fn default() -> Self {
        FailureBackoff {
            max_failures: 5,
            window: Duration::from_secs(10),
            delay: Duration::from_secs(1),
        }
    }
}

/// `accounts {}`, top-level `mappings` and `system_account`.
#[derive(Debug, Clone)]
pub struct AccountOptions {
    /// Accounts declared in `accounts {}` (their users are in `AuthOptions::users`).
    pub names: Vec<String>,
    /// `exports` of the configured accounts.
    pub exports: Vec<ExportSpec>,
    /// `imports` of the configured accounts.
    pub imports: Vec<ImportSpec>,
    /// Native subject mappings: (account, source, [(destination template, weight %)]);
    /// top-level `mappings` belong to `$G`.
    pub mappings: Vec<MappingSpec>,
    /// `accounts { X { limits { ... } } }`: account name → its limits.
    pub limits: Vec<(String, AccountLimits)>,
    /// `system_account` (default `$SYS`; in operator mode an account public key, or the
    /// operator JWT's `system_account` when left at the default).
    pub system_account: String,
}

impl Default for AccountOptions {
    fn default() -> Self {
        AccountOptions {
            names: Vec::new(),
            exports: Vec::new(),
            imports: Vec::new(),
            mappings: Vec::new(),
            limits: Vec::new(),
            system_account: SYSTEM_ACCOUNT.to_string(),
        }
    }
}

/// Operator (decentralized JWT) mode: `operator`, `resolver`, `resolver_preload`.
#[derive(Debug, Clone, Default)]
pub struct OperatorOptions {
    /// Trusted operator JWTs (`operator`/`operators`, read from files or given inline), as
    /// encoded tokens. Non-empty means operator mode.
    pub jwts: Vec<String>,
    /// `resolver`: where account JWTs come from in operator mode.
    pub resolver: Option<ResolverSpec>,
    /// `resolver_preload`: account public key → account JWT, in the order written.
    pub preload: Vec<(String, String)>,
}

/// `-l`/`logfile`, `-D`/`debug`, `-V`/`trace`, `-T`/`logtime`.
#[derive(Debug, Clone)]
pub struct LoggingOptions {
    /// Append log lines to this file instead of stderr.
    pub file: Option<PathBuf>,
    pub debug: bool,
    pub trace: bool,
    /// Prefix log lines with a time stamp (`-T`, `logtime`). On by default as in nats-server.
    pub logtime: bool,
}

impl Default for LoggingOptions {
    fn default() -> Self {
        LoggingOptions {
            file: None,
            debug: false,
            trace: false,
            logtime: true,
        }
    }
}

/// `-P`/`pid_file` and `--ports_file_dir`.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
}

/// `-js` / `-sd` / `jetstream {}` (server-wide), and the `jetstream {}` limits of accounts.
#[derive(Debug, Clone, Default)]
pub struct JetStreamOptions {
    /// Streams are served (and persisted under `store_dir`).
    pub enabled: bool,
    pub store_dir: Option<PathBuf>,
    /// `jetstream { max_mem_store }`, bytes; `None` = unlimited.
    pub max_memory: Option<i64>,
    /// `jetstream { max_file_store }`, bytes; `None` = unlimited.
    pub max_storage: Option<i64>,
    /// `jetstream { sync_interval }`: `None` = the default (2 minutes); `Some(ZERO)` = always.
    pub sync_interval: Option<Duration>,
    pub domain: Option<String>,
    /// Per-account `jetstream {}` limits from `accounts {}`.
    pub account_limits: Vec<(String, JetStreamLimits)>,
}

/// `cluster {}` / `--cluster*`, `--routes`: accepted and reported, not acted on yet.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub name: Option<String>,
    /// `host:port` of the route listener.
    pub listen: Option<String>,
    pub routes: Vec<String>,
}

/// `plugins {}`, `plugin_cache_dir` and `plugin_memory_budget`.
#[derive(Debug, Clone)]
pub struct PluginOptions {
    /// Wasm plugins declared in `plugins {}`, in the order written.
    pub specs: Vec<PluginSpec>,
    /// Where compiled plugins are cached (`plugin_cache_dir`); `None` means
    /// `plugin::EngineConfig::default_cache_dir`
    /// (a per-user location). Refused, with a warning, unless owned by this user and not
    /// writable by group or others.
    pub cache_dir: Option<PathBuf>,
    /// The linear memory all plugin instances together may reserve (`plugin_memory_budget`):
    /// an instance reserves its `memory_limit` while it lives.
    pub memory_budget: usize,
}

impl Default for PluginOptions {
    fn default() -> Self {
        PluginOptions {
            specs: Vec::new(),
            cache_dir: None,
            memory_budget: DEFAULT_PLUGIN_MEMORY_BUDGET,
        }
    }
}

/// Default `plugin_memory_budget`: 1 GiB.
pub const DEFAULT_PLUGIN_MEMORY_BUDGET: usize = 1 << 30;

/// Default `max_instances` of a plugin: two per core, at least two.
pub fn default_max_instances() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .max(2)
}

impl PluginOptions {
    /// `Err` with the names of the authorizers when more than one is configured: a server
    /// asks exactly one authorizer (chain identity providers inside it).
    pub fn one_authorizer(&self) -> Result<(), Vec<String>> {
        let names: Vec<String> = self
            .specs
            .iter()
            .filter(|s| s.role == Role::Authorizer)
            .map(|s| s.name.clone())
            .collect();
        if names.len() > 1 {
            Err(names)
        } else {
            Ok(())
        }
    }
}

/// The error for [`PluginOptions::one_authorizer`]: names every authorizer and says what to
/// do instead.
pub fn multiple_authorizers_message(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!(
        "plugins {} are all authorizers, but a server asks exactly one authorizer per \
         connection: configure one and chain identity providers inside it",
        quoted.join(" and ")
    )
}

/// Per-account limits (`limits { max_connections, max_subscriptions, max_payload }`, or an
/// account JWT's `conn`, `subs`, `payload`). `None` (or a negative value) means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_connections: Option<i64>,
    pub max_subscriptions: Option<i64>,
    pub max_payload: Option<i64>,
    /// Accepted for compatibility; not enforced (nats-server has no per-account data limit
    /// outside JetStream).
    pub max_data: Option<i64>,
}

/// One `mappings` entry: in `account`, `source` is rewritten to one of the weighted
/// destination templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSpec {
    pub account: String,
    pub source: String,
    pub destinations: Vec<(String, u8)>,
}

/// Whether an export/import is a stream (subscribe across accounts) or a service (request
/// across accounts, responses routed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Stream,
    Service,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Stream => "stream",
            LinkKind::Service => "service",
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many responses a service import lets through per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    #[default]
    Singleton,
    Stream,
    Chunked,
}

/// `exports: [ { stream: "a.>" , accounts: [B] } | { service: "svc", response_type } ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    pub account: String,
    pub kind: LinkKind,
    pub subject: String,
    /// Empty = public.
    pub accounts: Vec<String>,
    pub response_type: ResponseType,
}

/// `imports: [ { stream: {account: A, subject: "a.>"}, prefix: p } | { service: {…}, to: x } ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSpec {
    /// The importing account.
    pub account: String,
    pub kind: LinkKind,
    /// The exporting account.
    pub from: String,
    /// The subject as exported.
    pub subject: String,
    /// Stream imports: prefix for the local subject.
    pub prefix: Option<String>,
    /// The local subject (streams: literal subjects only; services: what importers publish to).
    pub to: Option<String>,
}

/// One configured user: a name with an optional password (plain or bcrypt), or an NKey.
#[derive(Debug, Clone, Default)]
pub struct UserSpec {
    pub user: Option<String>,
    pub password: Option<String>,
    pub nkey: Option<String>,
    /// The account the user belongs to; empty means `$G`.
    pub account: String,
    pub permissions: Option<crate::auth::permissions::PermissionSpec>,
}

/// The account resolver of operator mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverSpec {
    /// `resolver: MEMORY`: account JWTs from `resolver_preload` (and live updates), kept in
    /// memory.
    Memory,
    /// `resolver { type: full|cache, dir: ... }`: account JWTs stored as `<dir>/<KEY>.jwt`.
    Dir {
        dir: PathBuf,
        /// `type: cache` (natrium treats it like `full`, without eviction).
        cache: bool,
        allow_delete: bool,
        /// `limit`: maximum number of stored JWTs (0 = nats-server's default).
        limit: i64,
    },
}

/// `tls {}` block / `--tls*` flags.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates (mTLS).
    pub verify: bool,
    /// `verify_and_map`: the client certificate names the user (implies `verify`).
    pub verify_and_map: bool,
    pub timeout: Duration,
    /// TLS before INFO (`handshake_first`).
    pub handshake_first: bool,
    /// With `handshake_first: auto` or a duration: how long to wait for the client to start
    /// TLS before falling back to INFO first (nats-server 2.10).
    pub handshake_first_fallback: Option<Duration>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            // nats-server's TLS_TIMEOUT.
            timeout: Duration::from_secs(2),
            handshake_first: false,
            handshake_first_fallback: None,
        }
    }
}

impl Options {
    /// True when a client must authenticate before anything else.
    pub fn auth_required(&self) -> bool {
        self.auth.username.is_some()
            || self.auth.token.is_some()
            || !self.auth.users.is_empty()
            || !self.operator.jwts.is_empty()
    }
}

// ---- plugins {} ------------------------------------------------------------------------

/// Default memory cap of one plugin instance (all its linear memories together).
pub const DEFAULT_PLUGIN_MEMORY_LIMIT: usize = 64 * 1024 * 1024;

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
    /// Most instances alive at once (calls beyond wait for one, up to the deadline).
    pub max_instances: usize,
    /// Accounts the binding applies to; empty = all.
    pub accounts: Vec<String>,
    /// Subject filters (wildcards allowed) the binding applies to; empty = all.
    pub subjects: Vec<String>,
    pub on_failure: FailurePolicy,
    /// The component's SHA-256 (lower-case hex), when the binding pins it: a file with
    /// another hash is refused at load.
    pub sha256: Option<String>,
    /// The JetStream key-value bucket the component may read (`kv: { bucket }`), in the
    /// account of each call; `None` grants no `natrium:plugin/kv` import.
    pub kv_bucket: Option<String>,
    /// Whose NKey must have signed the component (`signed_by`), when the binding requires a
    /// signature; the signature file is `signature`, or `<path>.sig`.
    pub signed_by: Option<Signer>,
    /// The detached signature file (`signature`); `None` = `<path>.sig`.
    pub signature: Option<PathBuf>,
}

/// Who must have signed a plugin component (`signed_by` of a binding; operator mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// The NKey of the binding's account (the one account its `accounts` names).
    Account,
    /// The operator's NKey (or one of its signing keys).
    Operator,
    /// This public NKey (an account `A…` or operator `O…` key).
    Key(String),
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
            memory_limit: DEFAULT_PLUGIN_MEMORY_LIMIT,
            max_instances: default_max_instances(),
            accounts: Vec::new(),
            subjects: Vec::new(),
            on_failure: FailurePolicy::Reject,
            sha256: None,
            kv_bucket: None,
            signed_by: None,
            signature: None,
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

// ---- jetstream {} of an account -------------------------------------------------------

/// Per-account JetStream limits (`jetstream { max_mem, max_file, max_streams, ... }` of an
/// account); -1 = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JetStreamLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    /// `max_ack_pending`; reported in account info (natrium has no consumers to apply it to).
    pub max_ack_pending: i64,
    /// Largest `max_bytes` a memory stream may have (`mem_max_stream_bytes`); <= 0 = none.
    pub memory_max_stream_bytes: i64,
    /// Largest `max_bytes` a file stream may have (`disk_max_stream_bytes`); <= 0 = none.
    pub storage_max_stream_bytes: i64,
    /// `max_bytes_required` (`max_stream_bytes: true`): every stream must set `max_bytes`.
    pub max_bytes_required: bool,
}

impl Default for JetStreamLimits {
    fn default() -> Self {
        JetStreamLimits {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

/// The account of clients that are not placed in any other.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The default system account.
pub const SYSTEM_ACCOUNT: &str = "$SYS";
