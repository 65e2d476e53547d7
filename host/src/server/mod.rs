//! The broker: listeners, the set of live clients, shutdown and lame-duck mode.
//!
//! Ownership: each connection has a reader task and a writer task (see `conn`). The server owns
//! the accounts (each with its own sublist), the user directory, and a map of live clients for
//! monitoring and shutdown. Locks (never held across `.await`, taken in this order when
//! nested): `Server::clients` → `Client::subs` → `Client::out`; `Account::links` (read, while
//! delivering across accounts) → `Client::out`; a sublist's lock and an account's response
//! routes are only ever taken alone. JetStream: `JsAccount::streams` → a stream's own lock
//! (creating, updating, backfilling); a stream's lock is a leaf (a publish holds only it while
//! storing; PubAcks are delivered after it is released).

mod client;
mod conn;
mod info;
mod plugins;

pub(crate) use client::Queued;
pub use client::{Client, CloseReason, ConnMeta, Subscription};
pub(crate) use info::random_bytes;

use crate::account::{Accounts, UserDirectory};
use crate::options::{Options, RANDOM_PORT};
use crate::proto::{self, errors};
use crate::tls;
use anyhow::Context;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The nats-server feature level natrium implements; clients switch features on by it.
pub const PROTOCOL_VERSION: &str = "2.10.0";
/// Natrium's own version, reported in /varz and `--version`.
pub const NATRIUM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Server-wide counters, updated once per read batch (never per delivery).
#[derive(Default)]
pub struct Stats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub total_connections: AtomicU64,
}

impl Stats {
    fn add_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.in_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn add_out(&self, msgs: u64, bytes: u64) {
        self.out_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.out_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

pub struct Server {
    opts: RwLock<Arc<Options>>,
    pub id: String,
    pub name: String,
    pub start: SystemTime,
    pub accounts: Accounts,
    pub(crate) users: RwLock<Arc<UserDirectory>>,
    /// The loaded plugins; connections pick up a new set when `plugin_gen` changes.
    plugins: RwLock<Arc<plugins::PluginSet>>,
    plugin_gen: AtomicU64,
    plugin_engine: Mutex<Option<crate::plugin::PluginEngine>>,
    clients: Mutex<FxHashMap<u64, Arc<Client>>>,
    next_cid: AtomicU64,
    pub stats: Stats,
    tls: RwLock<Option<tokio_rustls::TlsAcceptor>>,
    lame_duck: AtomicBool,
    /// Set when the listener must stop accepting (lame duck or shutdown).
    stop_accepting: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    client_addr: Mutex<Option<SocketAddr>>,
    http_addr: Mutex<Option<SocketAddr>>,
    /// Files written at start (pid, ports) and removed at shutdown.
    written_files: Mutex<Vec<PathBuf>>,
    /// JetStream, when enabled (`-js`, `jetstream {}`).
    pub jetstream: Option<Arc<crate::jetstream::JetStream>>,
}

impl Server {
    /// Validates options (TLS files are loaded here) and builds a server that is not yet
    /// listening.
    pub fn new(opts: Options) -> anyhow::Result<Arc<Server>> {
        let tls = match &opts.tls {
            Some(t) => Some(tls::acceptor(t).context("TLS configuration")?),
            None => None,
        };
        let users = UserDirectory::from_options(&opts)
            .map_err(|e| anyhow::anyhow!("authorization configuration: {e}"))?;
        let accounts = Accounts::default();
        for name in &opts.accounts {
            accounts.get_or_create(name);
        }
        for (name, l) in &opts.account_limits {
            accounts.get_or_create(name).set_limits(l);
        }
        crate::account::links::check(&opts).map_err(|e| anyhow::anyhow!(e))?;
        accounts
            .apply_mappings(&opts.mappings)
            .map_err(|e| anyhow::anyhow!("mappings: {e}"))?;
        for w in crate::account::links::wire(&accounts, &opts) {
            tracing::warn!("{w}");
        }
        let mut engine = None;
        let plugin_set = plugins::PluginSet::load(&opts, &mut engine)?;
        let id = info::new_server_id();
        let name = if opts.server_name.is_empty() {
            id.clone()
        } else {
            opts.server_name.clone()
        };
        let jetstream = if opts.jetstream {
            Some(start_jetstream(&opts)?)
        } else {
            None
        };
        let (shutdown, _) = watch::channel(false);
        let (stop_accepting, _) = watch::channel(false);
        Ok(Arc::new(Server {
            jetstream,
            opts: RwLock::new(Arc::new(opts)),
            id,
            name,
            start: SystemTime::now(),
            accounts,
            users: RwLock::new(Arc::new(users)),
            plugins: RwLock::new(Arc::new(plugin_set)),
            plugin_gen: AtomicU64::new(0),
            plugin_engine: Mutex::new(engine),
            clients: Mutex::new(FxHashMap::default()),
            next_cid: AtomicU64::new(1),
            stats: Stats::default(),
            tls: RwLock::new(tls),
            lame_duck: AtomicBool::new(false),
            stop_accepting,
            shutdown,
            client_addr: Mutex::new(None),
            http_addr: Mutex::new(None),
            written_files: Mutex::new(Vec::new()),
        }))
    }

    pub fn options(&self) -> Arc<Options> {
        self.opts.read().clone()
    }

    /// The bound client address, once listening.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        *self.client_addr.lock()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        *self.http_addr.lock()
    }

    pub fn clients(&self) -> Vec<Arc<Client>> {
        self.clients.lock().values().cloned().collect()
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

    /// The name of the system account: the operator's system account in operator mode,
    /// else `system_account` (default `$SYS`).
    pub fn system_account_name(&self) -> String {
        let directory = self.user_directory();
        if let Some(name) = directory.operator().and_then(|op| op.system_account()) {
            return name.to_string();
        }
        self.options().system_account.clone()
    }

    /// Whether anyone subscribes in the system account (events are not even built if not).
    pub fn system_has_subscribers(&self) -> bool {
        self.accounts
            .get(&self.system_account_name())
            .is_some_and(|a| a.sublist.count() > 0)
    }

    /// Publishes a server-generated message into the system account's subject space: only
    /// system-account subscribers can receive it.
    pub fn publish_system(&self, subject: &str, payload: &[u8]) {
        let name = self.system_account_name();
        if let Some(account) = self.accounts.get(&name) {
            self.deliver_internal(&account, subject.as_bytes(), payload);
        }
    }

    /// Delivers a server-generated message on `subject` in `account` (plain subscribers and
    /// one member of each queue group), waking each receiver's writer.
    pub(crate) fn deliver_internal(
        &self,
        account: &crate::account::Account,
        subject: &[u8],
        payload: &[u8],
    ) {
        let max_pending = usize::try_from(self.options().max_pending).unwrap_or(usize::MAX);
        let result = account.sublist.matches(subject);
        let targets = result
            .psubs
            .iter()
            .chain(result.qsubs.iter().filter_map(|g| g.first()));
        let (mut msgs, mut bytes) = (0u64, 0u64);
        for sub in targets {
            if sub
                .deny_filter
                .as_ref()
                .is_some_and(|p| p.deny_delivery(subject))
            {
                continue;
            }
            let mut expired = false;
            match sub
                .client
                .queue_msg(sub, subject, None, None, payload, max_pending, &mut expired)
            {
                Queued::Yes { .. } => {
                    sub.client.wake_writer.notify_one();
                    msgs += 1;
                    bytes += payload.len() as u64;
                }
                Queued::Closed => {}
                Queued::SlowConsumer => {
                    self.slow_consumer(&sub.client, CloseReason::SlowConsumerPendingBytes);
                }
            }
            if expired {
                self.remove_sub(sub);
            }
        }
        if msgs != 0 {
            self.stats.add_out(msgs, bytes);
        }
    }

    pub(crate) fn user_directory(&self) -> Arc<UserDirectory> {
        self.users.read().clone()
    }

    /// The current plugin set and its generation.
    pub(crate) fn plugin_set(&self) -> (u64, Arc<plugins::PluginSet>) {
        let set = self.plugins.read().clone();
        (self.plugin_gen.load(Ordering::Acquire), set)
    }

    pub(crate) fn plugin_generation(&self) -> u64 {
        self.plugin_gen.load(Ordering::Acquire)
    }

    /// Per-plugin call and failure counters, for /varz and /metrics.
    pub fn plugin_stats(&self) -> Vec<crate::plugin::PluginStats> {
        self.plugins.read().stats()
    }

    /// Clients must authenticate: configured users or tokens, or an authorizer plugin.
    pub fn auth_required(&self, opts: &Options) -> bool {
        opts.auth_required() || !self.plugins.read().authorizers.is_empty()
    }

    pub fn is_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Relaxed)
    }

    /// Binds the listeners, logs the lines tools look for, and serves until shutdown.
    pub async fn run(self: Arc<Self>) -> anyhow::Result<()> {
        let opts = self.options();
        tracing::info!("Starting natrium");
        tracing::info!(
            "  Version:  {NATRIUM_VERSION} (nats-server protocol level {PROTOCOL_VERSION})"
        );
        tracing::info!("  Name:     {}", self.name);
        tracing::info!("  ID:       {}", self.id);
        if let Some(f) = &opts.config_file {
            tracing::info!("Using configuration file: {}", f.display());
        }
        for w in &opts.config_warnings {
            tracing::warn!("{w}");
        }
        for key in &opts.unsupported {
            tracing::warn!("Configuration key not supported yet, ignored: {key}");
        }
        if let Some(js) = &self.jetstream {
            let limit = |n: i64| {
                if n < 0 {
                    "unlimited".to_string()
                } else {
                    format!("{n} B")
                }
            };
            tracing::info!("Starting JetStream");
            tracing::info!("---------------- JETSTREAM ----------------");
            tracing::info!("  Max Memory:      {}", limit(js.config.max_memory));
            tracing::info!("  Max Storage:     {}", limit(js.config.max_storage));
            tracing::info!("  Store Directory: \"{}\"", js.config.store_dir.display());
            if let Some(d) = &js.config.domain {
                tracing::info!("  Domain:          {d}");
            }
            tracing::info!("-------------------------------------------");
            tokio::spawn(jetstream_loop(js.clone(), self.shutdown.subscribe()));
        }
        if opts.cluster_name.is_some() || opts.cluster_listen.is_some() || !opts.routes.is_empty() {
            tracing::warn!("Clustering is not available yet in natrium; cluster options ignored");
        }

        // As in nats-server: port 0 means no monitoring, and the host defaults to the client's.
        let http_host = if opts.http_host.is_empty() {
            opts.host.clone()
        } else {
            opts.http_host.clone()
        };
        let http = match opts.http_port.filter(|&p| p != 0) {
            Some(p) => {
                let l = bind(&http_host, p).await.context("monitoring listener")?;
                let addr = l.local_addr()?;
                *self.http_addr.lock() = Some(addr);
                tracing::info!(
                    "Starting http monitor on {}",
                    display_addr(&http_host, addr)
                );
                tracing::info!(
                    "Listening for monitoring connections on http://{}",
                    display_addr(&http_host, addr)
                );
                Some(l)
            }
            None => None,
        };
        let listener = bind(&opts.host, opts.port)
            .await
            .context("client listener")?;
        let addr = listener.local_addr()?;
        *self.client_addr.lock() = Some(addr);
        tracing::info!(
            "Listening for client connections on {}",
            display_addr(&opts.host, addr)
        );
        if opts.tls.is_some() {
            tracing::info!("TLS required for client connections");
        }
        self.write_files(&opts)?;
        tracing::info!("Server is ready");

        if let Some(l) = http {
            tokio::spawn(crate::monitor::serve(
                self.clone(),
                l,
                self.shutdown.subscribe(),
            ));
        }
        tokio::spawn(crate::account::events::statsz_loop(
            self.clone(),
            self.shutdown.subscribe(),
        ));
        self.clone().accept_loop(listener).await;
        // In lame-duck mode clients are closed gradually first; wait for the end.
        let _ = self.shutdown.subscribe().wait_for(|s| *s).await;
        tracing::info!("Initiating Shutdown...");
        self.close_all(CloseReason::ServerShutdown);
        // Let writers flush what they can (bounded), then leave.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.num_clients() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(js) = &self.jetstream {
            js.shutdown();
        }
        self.remove_files();
        tracing::info!("Server Exiting..");
        Ok(())
    }

    /// Accepts until told to stop; the listener closes when this returns.
    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut stop = self.stop_accepting.subscribe();
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match accepted {
                Ok((sock, addr)) => {
                    let _ = sock.set_nodelay(true);
                    let cid = self.next_cid.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(self.clone().serve_conn(sock, addr, cid));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::error!("Error accepting client connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn serve_conn(self: Arc<Self>, mut sock: TcpStream, addr: SocketAddr, cid: u64) {
        let opts = self.options();
        let client = Arc::new(Client::new(cid, addr));
        tracing::debug!("{addr} - cid:{cid} - Client connection created");
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        let nonce = self
            .user_directory()
            .needs_nonce()
            .then(crate::auth::nkeys::generate_nonce);
        let info = info::client_info(&self, &opts, &client, nonce.as_deref());
        if self.num_clients() >= opts.max_connections as usize {
            let mut b = bytes::BytesMut::new();
            proto::write_info(&mut b, &info);
            proto::write_err(&mut b, errors::MAX_CONNECTIONS);
            let _ = tokio::time::timeout(Duration::from_secs(2), sock.write_all(&b)).await;
            tracing::warn!("{addr} - cid:{cid} - Maximum connections exceeded, connection closed");
            return;
        }
        self.clients.lock().insert(cid, client.clone());
        let acceptor = self.tls.read().clone();
        match acceptor {
            None => {
                let mut b = bytes::BytesMut::new();
                proto::write_info(&mut b, &info);
                client.queue_raw(&b);
                let (rd, wr) = sock.into_split();
                conn::run(self, client, opts, nonce, rd, wr).await;
            }
            Some(acceptor) => {
                let tls_opts = opts.tls.clone().unwrap_or_default();
                if !tls_opts.handshake_first {
                    let mut b = bytes::BytesMut::new();
                    proto::write_info(&mut b, &info);
                    if sock.write_all(&b).await.is_err() {
                        self.unregister(&client);
                        return;
                    }
                }
                let stream =
                    match tokio::time::timeout(tls_opts.timeout, acceptor.accept(sock)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::error!("{addr} - cid:{cid} - TLS handshake error: {e}");
                            self.unregister(&client);
                            return;
                        }
                        Err(_) => {
                            tracing::error!("{addr} - cid:{cid} - TLS handshake timeout");
                            self.unregister(&client);
                            return;
                        }
                    };
                {
                    let (_, session) = stream.get_ref();
                    let version = session.protocol_version().map(|v| format!("{v:?}"));
                    let identity = session
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| tls::CertIdentity::from_der(c))
                        .map(Arc::new);
                    let mut meta = client.meta.lock();
                    meta.tls_version = version;
                    meta.tls_identity = identity;
                }
                if tls_opts.handshake_first {
                    let mut b = bytes::BytesMut::new();
                    proto::write_info(&mut b, &info);
                    client.queue_raw(&b);
                }
                let (rd, wr) = tokio::io::split(stream);
                conn::run(self, client, opts, nonce, rd, wr).await;
            }
        }
    }

    fn unregister(&self, client: &Client) {
        self.clients.lock().remove(&client.id);
    }

    fn remove_sub(&self, sub: &Arc<Subscription>) {
        {
            let mut subs = sub.client.subs.lock();
            if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
                subs.remove(&sub.sid);
            }
        }
        sub.account.sublist.remove(sub);
    }

    pub(crate) fn close_client(&self, client: &Client, reason: CloseReason) {
        client.mark_closed(reason);
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
                    conn::client_label(client),
                    opts.write_deadline
                ),
                _ => tracing::info!(
                    "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
                    conn::client_label(client),
                    opts.max_pending
                ),
            }
        }
    }

    fn close_all(&self, reason: CloseReason) {
        for c in self.clients() {
            c.mark_closed(reason);
        }
    }

    /// Stops accepting and closes every connection (SIGINT/SIGTERM).
    pub fn shutdown(&self) {
        self.stop_accepting.send_replace(true);
        self.shutdown.send_replace(true);
    }

    /// Lame-duck mode: stop accepting, tell clients (INFO `ldm`), wait the grace period, then
    /// close clients spread over the lame-duck duration and shut down.
    pub async fn lame_duck(self: Arc<Self>) {
        if self.lame_duck.swap(true, Ordering::SeqCst) {
            return;
        }
        let opts = self.options();
        self.stop_accepting.send_replace(true);
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        let ldm_info = info::lame_duck_info(&self, &opts);
        let mut frame = bytes::BytesMut::new();
        proto::write_info(&mut frame, &ldm_info);
        for c in self.clients() {
            c.queue_raw(&frame);
            c.wake_writer.notify_one();
        }
        tokio::time::sleep(opts.lame_duck_grace_period).await;
        let clients = self.clients();
        if !clients.is_empty() {
            let spread = opts
                .lame_duck_duration
                .saturating_sub(opts.lame_duck_grace_period);
            let step = spread / clients.len() as u32;
            let step = step.min(Duration::from_secs(1));
            tracing::info!("Closing {} existing clients", clients.len());
            for c in clients {
                c.mark_closed(CloseReason::ServerShutdown);
                if !step.is_zero() {
                    tokio::time::sleep(step).await;
                }
            }
        }
        self.shutdown();
    }

    /// Applies a re-read configuration: what can change safely on a live server.
    pub fn reload(&self, new: Options) -> anyhow::Result<()> {
        let tls = match &new.tls {
            Some(t) => Some(tls::acceptor(t).context("TLS configuration")?),
            None => None,
        };
        let users = UserDirectory::from_options(&new)
            .map_err(|e| anyhow::anyhow!("authorization configuration: {e}"))?;
        let plugin_set = {
            let mut engine = self.plugin_engine.lock().take();
            let loaded = plugins::PluginSet::load(&new, &mut engine);
            *self.plugin_engine.lock() = engine;
            loaded?
        };
        for name in &new.accounts {
            self.accounts.get_or_create(name);
        }
        for name in &new.accounts {
            let l = new
                .account_limits
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| *l)
                .unwrap_or_default();
            self.accounts.get_or_create(name).set_limits(&l);
        }
        crate::account::links::check(&new).map_err(|e| anyhow::anyhow!(e))?;
        self.accounts
            .apply_mappings(&new.mappings)
            .map_err(|e| anyhow::anyhow!("mappings: {e}"))?;
        for w in crate::account::links::wire(&self.accounts, &new) {
            tracing::warn!("{w}");
        }
        let mut cur = self.opts.write();
        let mut next = (**cur).clone();
        // Listener addresses, names and store locations need a restart.
        next.max_payload = new.max_payload;
        next.max_control_line = new.max_control_line;
        next.max_connections = new.max_connections;
        next.max_pending = new.max_pending;
        next.max_pings_out = new.max_pings_out;
        next.ping_interval = new.ping_interval;
        next.write_deadline = new.write_deadline;
        next.auth_timeout = new.auth_timeout;
        next.username = new.username;
        next.password = new.password;
        next.auth_token = new.auth_token;
        next.users = new.users;
        next.accounts = new.accounts;
        next.exports = new.exports;
        next.imports = new.imports;
        next.mappings = new.mappings;
        next.account_limits = new.account_limits;
        next.no_auth_user = new.no_auth_user;
        next.plugins = new.plugins;
        next.debug = new.debug;
        next.trace = new.trace;
        next.lame_duck_duration = new.lame_duck_duration;
        next.lame_duck_grace_period = new.lame_duck_grace_period;
        next.tls = new.tls;
        *cur = Arc::new(next);
        *self.tls.write() = tls;
        *self.users.write() = Arc::new(users);
        *self.plugins.write() = Arc::new(plugin_set);
        self.plugin_gen.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn write_files(&self, opts: &Options) -> anyhow::Result<()> {
        let pid = std::process::id();
        if let Some(p) = &opts.pid_file {
            std::fs::write(p, pid.to_string())
                .with_context(|| format!("writing pid file {}", p.display()))?;
            self.written_files.lock().push(p.clone());
        }
        if let Some(dir) = &opts.ports_file_dir {
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "natrium".to_string());
            let path = dir.join(format!("{exe}_{pid}.ports"));
            let ports = info::ports_json(self, opts);
            std::fs::write(&path, ports)
                .with_context(|| format!("writing ports file {}", path.display()))?;
            self.written_files.lock().push(path);
        }
        Ok(())
    }

    fn remove_files(&self) {
        for f in self.written_files.lock().drain(..) {
            let _ = std::fs::remove_file(f);
        }
    }
}

async fn bind(host: &str, port: i32) -> anyhow::Result<TcpListener> {
    let port = if port == RANDOM_PORT || port == 0 {
        0
    } else {
        u16::try_from(port).with_context(|| format!("invalid port {port}"))?
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))
}

/// How nats-server prints a listen address: the configured host with the bound port.
fn display_addr(host: &str, addr: SocketAddr) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{}", addr.port())
    } else {
        format!("{host}:{}", addr.port())
    }
}

/// Opens the JetStream store from the options (`store_dir`, default `<tmp>/nats`).
fn start_jetstream(opts: &Options) -> anyhow::Result<Arc<crate::jetstream::JetStream>> {
    use crate::jetstream::{store::SyncPolicy, JetStream, JsConfig};
    let store_dir = opts
        .store_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("nats"));
    let sync = match opts.js_sync_interval {
        Some(d) if d.is_zero() => SyncPolicy::Always,
        Some(d) => SyncPolicy::Interval(d),
        None => SyncPolicy::Interval(Duration::from_secs(120)),
    };
    let config = JsConfig {
        store_dir,
        max_memory: opts.js_max_memory.unwrap_or(-1),
        max_storage: opts.js_max_storage.unwrap_or(-1),
        sync,
        domain: opts.js_domain.clone(),
    };
    let limits = opts.js_account_limits.iter().cloned().collect();
    // nats-server: without `accounts {}` the global account has JetStream; with them, only
    // the accounts that enable it. Operator mode: every account (JWT JetStream limits are not
    // interpreted yet).
    let all = opts.accounts.is_empty() || !opts.operator.is_empty();
    JetStream::start(config, limits, all).context("starting JetStream")
}

/// Once a second: max_age expiry and the duplicate window; fsync every `sync_interval`.
async fn jetstream_loop(js: Arc<crate::jetstream::JetStream>, mut shutdown: watch::Receiver<bool>) {
    let period = crate::jetstream::sync_period(js.config.sync);
    let mut last_sync = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let due = period.is_some_and(|p| last_sync.elapsed() >= p);
        if due {
            last_sync = tokio::time::Instant::now();
        }
        let js = js.clone();
        // Expiry and fsync do file I/O: keep them off the reactor threads.
        let _ = tokio::task::spawn_blocking(move || js.tick(due)).await;
    }
}
