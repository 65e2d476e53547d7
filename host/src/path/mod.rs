//! The message path: what happens to every message, one stage per file, for every origin.
//!
//! ```text
//!  bytes ─▶ proto::parse ─▶ Session (session.rs)
//!             CONNECT ─▶ connect.rs   (auth: directory → operator JWT → authorizer plugins;
//!                        callout.rs   or the auth callout service)
//!             SUB/UNSUB ─▶ subscribe.rs (permit.rs: subscribe permissions)
//!             PUB/HPUB ─▶ publish.rs
//!                          ├▶ permit.rs   publish permissions (cached per subject)
//!                          ├▶ map.rs      the account's subject mappings
//!                          ├▶ plugins.rs  mapper and transformer plugins (batched per read)
//!                          └▶ route.rs    the account's sublist, exports/imports ─┐
//!                                                                                 ▼
//!   deliver.rs: a socket client's outbound buffer ◀── or ──▶ an internal client's handler:
//!               (woken once per read batch)                   store.rs  JetStream API + capture
//!                                                             system/   $SYS services
//! ```
//!
//! A connection task only moves bytes; its [`Session`] owns everything the protocol decided
//! (account, permissions, flags). Internal clients subscribe in the account sublists like any
//! connection, so a request that reaches an account any way at all — a local publish, a
//! service import, later a route — reaches JetStream and `$SYS` the same way.
//!
//! [`Core`] is the state the path shares: options, accounts, users, plugins, JetStream, the
//! live clients and the counters. The server (`server/`) owns a core plus the sockets.

mod callout;
mod connect;
pub mod consumers;
mod deliver;
mod map;
mod permit;
pub(crate) mod plugins;
mod publish;
pub mod route;
mod session;
pub mod store;
mod subscribe;

pub use permit::apply_permissions;
pub use plugins::check_configured as check_plugins;
pub(crate) use plugins::JetStreamKv;
pub use route::{Origin, Router};
pub use session::{Flow, Session};

use crate::account::{Account, Accounts, UserDirectory};
use crate::client::{Client, CloseReason, Subscription};
use crate::options::Options;
use crate::proto::MsgRef;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// Server-wide counters, updated once per read batch (never per delivery).
#[derive(Default)]
pub struct Stats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub total_connections: AtomicU64,
    /// CONNECTs refused for their credentials (or by an authorizer plugin).
    pub auth_failures: AtomicU64,
}

impl Stats {
    pub fn add_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.in_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_out(&self, msgs: u64, bytes: u64) {
        self.out_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.out_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Connect and disconnect notifications (the `$SYS` advisories live above this layer).
pub trait Events: Send + Sync {
    fn connected(&self, core: &Core, client: &Client, account: &str);
    fn disconnected(&self, core: &Core, client: &Client, account: &str, reason: CloseReason);
    /// A plugin refused a message or a connection (deny, drop, reject).
    fn plugin_decision(&self, _core: &Core, _audit: &PluginAudit<'_>) {}
}

/// One refusal by a plugin, for audit: who, where and why — never the payload.
pub struct PluginAudit<'a> {
    pub plugin: &'a str,
    pub role: &'a str,
    /// `deny`, `drop` or `reject`.
    pub outcome: &'a str,
    pub account: &'a str,
    pub user: Option<&'a str>,
    pub client: &'a Client,
    /// The subject as published (empty for a connection).
    pub subject: &'a str,
    pub reason: &'a str,
}

/// What the message path shares across connections.
pub struct Core {
    opts: RwLock<Arc<Options>>,
    /// The server id: the public key of `keys`.
    pub id: String,
    /// The server's NKey and curve key (auth callout requests are signed and sealed with them).
    pub keys: crate::auth::callout::ServerKeys,
    pub name: String,
    pub start: SystemTime,
    pub accounts: Accounts,
    users: RwLock<Arc<UserDirectory>>,
    /// The loaded plugins; sessions pick up a new set when `plugin_gen` changes.
    plugins: RwLock<Arc<plugins::PluginSet>>,
    plugin_gen: AtomicU64,
    pub(crate) plugin_engine: Mutex<Option<crate::plugin::PluginEngine>>,
    clients: Mutex<FxHashMap<u64, Arc<Client>>>,
    next_cid: AtomicU64,
    pub stats: Stats,
    /// JetStream, when enabled (`-js`, `jetstream {}`).
    pub jetstream: Option<Arc<crate::jetstream::JetStream>>,
    /// JetStream's internal clients, per account (see `store`).
    pub(crate) js_attached: Mutex<FxHashMap<Arc<str>, Arc<store::Attached>>>,
    events: OnceLock<Arc<dyn Events>>,
    /// The INFO fields every client gets (identity, limits, features); see `set_info_base`.
    info: RwLock<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// Per-address authentication failures, for `failure_backoff` (empty when it is off).
    pub(crate) auth_backoff: crate::auth::backoff::Backoff,
    /// A few authentication failure lines per second; the rest are counted (`auth_failures`).
    pub(crate) auth_failure_log: crate::util::LogLimiter,
    /// Password verifications (bcrypt) running at once: one per core.
    pub(crate) slow_auth: Arc<tokio::sync::Semaphore>,
    /// Connections between their accept and a successful CONNECT (see [`Handshake`]): while
    /// there are any, busy readers take shorter turns (see `server::conn`).
    handshakes: Arc<AtomicUsize>,
}

/// Authentication failures logged per second before they are only counted.
const AUTH_FAILURE_LOG_LINES_PER_SECOND: u32 = 10;

impl Core {
    pub(crate) fn new(
        opts: Options,
        keys: crate::auth::callout::ServerKeys,
        accounts: Accounts,
        users: UserDirectory,
        plugins: plugins::PluginSet,
        engine: Option<crate::plugin::PluginEngine>,
        jetstream: Option<Arc<crate::jetstream::JetStream>>,
    ) -> Core {
        let id = keys.id();
        let name = if opts.server_name.is_empty() {
            id.clone()
        } else {
            opts.server_name.clone()
        };
        Core {
            opts: RwLock::new(Arc::new(opts)),
            id,
            keys,
            name,
            start: SystemTime::now(),
            accounts,
            users: RwLock::new(Arc::new(users)),
            plugins: RwLock::new(Arc::new(plugins)),
            plugin_gen: AtomicU64::new(0),
            plugin_engine: Mutex::new(engine),
            clients: Mutex::new(FxHashMap::default()),
            next_cid: AtomicU64::new(1),
            stats: Stats::default(),
            jetstream,
            js_attached: Mutex::new(FxHashMap::default()),
            events: OnceLock::new(),
            info: RwLock::new(Arc::new(serde_json::Map::new())),
            auth_backoff: crate::auth::backoff::Backoff::default(),
            auth_failure_log: crate::util::LogLimiter::new(AUTH_FAILURE_LOG_LINES_PER_SECOND),
            handshakes: Arc::new(AtomicUsize::new(0)),
            slow_auth: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        }
    }

    pub fn options(&self) -> Arc<Options> {
        self.opts.read().clone()
    }

    pub(crate) fn set_options(&self, opts: Arc<Options>) {
        *self.opts.write() = opts;
    }

    /// The INFO fields every client gets; the server sets them when it listens and on
    /// every change (reload, lame duck).
    pub fn info_base(&self) -> Arc<serde_json::Map<String, serde_json::Value>> {
        self.info.read().clone()
    }

    pub fn set_info_base(&self, info: serde_json::Map<String, serde_json::Value>) {
        *self.info.write() = Arc::new(info);
    }

    pub fn set_events(&self, events: Arc<dyn Events>) {
        let _ = self.events.set(events);
    }

    pub(crate) fn events(&self) -> Option<&Arc<dyn Events>> {
        self.events.get()
    }

    /// A fresh client id (connections and internal clients share the sequence).
    pub fn next_client_id(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register(&self, client: Arc<Client>) {
        self.clients.lock().insert(client.id, client);
    }

    pub fn unregister(&self, client: &Client) {
        self.clients.lock().remove(&client.id);
    }

    pub fn clients(&self) -> Vec<Arc<Client>> {
        self.clients.lock().values().cloned().collect()
    }

    /// Whether some connection is waiting for its handshake.
    pub fn handshakes_pending(&self) -> bool {
        self.handshakes.load(Ordering::Relaxed) > 0
    }

    pub fn num_clients(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn num_subscriptions(&self) -> u64 {
        self.accounts.num_subscriptions()
    }

    pub fn all_subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.accounts
            .all()
            .iter()
            .flat_map(|a| a.sublist.all())
            .collect()
    }

    pub(crate) fn user_directory(&self) -> Arc<UserDirectory> {
        self.users.read().clone()
    }

    pub(crate) fn set_user_directory(&self, users: UserDirectory) {
        *self.users.write() = Arc::new(users);
    }

    /// The current plugin set and its generation.
    pub(crate) fn plugin_set(&self) -> (u64, Arc<plugins::PluginSet>) {
        let set = self.plugins.read().clone();
        (self.plugin_gen.load(Ordering::Acquire), set)
    }

    pub(crate) fn plugin_generation(&self) -> u64 {
        self.plugin_gen.load(Ordering::Acquire)
    }

    pub(crate) fn set_plugins(&self, set: plugins::PluginSet) {
        *self.plugins.write() = Arc::new(set);
        self.plugin_gen.fetch_add(1, Ordering::Release);
    }

    /// Per-plugin call and failure counters, for /varz and /metrics.
    pub fn plugin_stats(&self) -> Vec<crate::plugin::PluginStats> {
        self.plugins.read().stats()
    }

    /// Clients must authenticate: configured users or tokens, or an authorizer plugin.
    pub fn auth_required(&self, opts: &Options) -> bool {
        opts.auth_required() || !self.plugins.read().authorizers.is_empty()
    }

    /// The name of the system account: the operator's system account in operator mode,
    /// else `system_account` (default `$SYS`).
    pub fn system_account_name(&self) -> String {
        let directory = self.user_directory();
        if let Some(name) = directory.operator().and_then(|op| op.system_account()) {
            return name.to_string();
        }
        self.options().accounts.system_account.clone()
    }

    /// Whether a client (not only the server's own services) subscribes in the system
    /// account: events are not even built if not.
    pub fn system_has_subscribers(&self) -> bool {
        self.accounts
            .get(&self.system_account_name())
            .is_some_and(|a| a.sublist.count() > a.internal_subscriptions())
    }

    /// Publishes a server-generated message in `account`, through the same routing as a
    /// client's publish (imports, queue groups, internal subscribers).
    pub fn publish(&self, account: &Arc<Account>, msg: &MsgRef<'_>) {
        let max_pending = usize::try_from(self.options().limits.max_pending).unwrap_or(usize::MAX);
        let mut router = Router::new(account.clone(), max_pending, crate::util::unix_nanos());
        router.route(self, account, msg, Origin::SERVER);
        router.settle(self);
    }

    /// Publishes in the system account: only system-account subscribers can receive it.
    pub fn publish_system(&self, subject: &str, payload: &[u8]) {
        if let Some(account) = self.accounts.get(&self.system_account_name()) {
            self.publish(&account, &MsgRef::new(subject.as_bytes(), payload));
        }
    }

    /// A client that cannot keep up is disconnected, never waited for.
    pub(crate) fn slow_consumer(&self, client: &Client, reason: CloseReason) {
        let pending = client.pending_bytes();
        if client.mark_closed(reason) {
            client.out.lock().buf.clear();
            self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            let opts = self.options();
            match reason {
                CloseReason::SlowConsumerWriteDeadline => tracing::info!(
                    "{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded with {pending} bytes pending",
                    client.label(),
                    opts.limits.write_deadline
                ),
                _ => tracing::info!(
                    "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                    client.label(),
                    opts.limits.max_pending
                ),
            }
        }
    }

    /// Subscribes an internal client in `account` (no permissions, no limits).
    pub fn subscribe_internal(
        &self,
        account: &Account,
        client: &Arc<Client>,
        subject: &str,
    ) -> Arc<Subscription> {
        let sid = bytes::Bytes::from(format!("{}", client.subs.lock().len() + 1));
        let sub = Arc::new(Subscription::new(
            client.clone(),
            account.name.clone(),
            bytes::Bytes::copy_from_slice(subject.as_bytes()),
            None,
            sid,
        ));
        client.subs.lock().insert(sub.sid.clone(), sub.clone());
        account.add_internal_subscription(1);
        account.sublist.insert(sub.clone());
        sub
    }

    /// Ends an internal subscription made by [`Core::subscribe_internal`].
    pub fn unsubscribe_internal(&self, account: &Account, sub: &Arc<Subscription>) {
        sub.client.subs.lock().remove(&sub.sid);
        if account.sublist.remove(sub) {
            account.add_internal_subscription(-1);
        }
    }
}

/// One connection between its accept and a successful CONNECT, counted in
/// [`Core::handshakes_pending`] for as long as this lives.
pub struct Handshake(Arc<AtomicUsize>);

impl Handshake {
    pub fn start(core: &Core) -> Self {
        core.handshakes.fetch_add(1, Ordering::Relaxed);
        Handshake(core.handshakes.clone())
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
