//! The I/O layer: listeners (`accept`), connection tasks (`conn`), lifecycle (start,
//! shutdown, lame duck, pid and ports files) and reload (`reload`).
//!
//! Ownership: each connection has a reader task and a writer task (see `conn`); the message
//! path's shared state (accounts, users, plugins, JetStream, live clients) is the [`Core`]. Locks (never held across `.await`, taken in this order when
//! nested): `Server::clients` → `Client::subs` → `Client::out`; `Account::links` (read, while
//! delivering across accounts) → `Client::out`; a sublist's lock and an account's response
//! routes are only ever taken alone. JetStream: `JsAccount::streams` → a stream's own lock
//! (creating, updating, backfilling); a stream's lock is a leaf (a publish holds only it while
//! storing; PubAcks are delivered after it is released).

mod accept;
mod conn;
mod info;
mod reload;

pub use crate::client::{Client, CloseReason, ConnMeta, Subscription};
pub use crate::path::{Core, Stats};

pub use reload::ReloadError;

use crate::account::{AccountMappingError, Accounts, UserConfigError, UserDirectory};
use crate::config::ConfigError;
use crate::options::{Options, RANDOM_PORT};
use crate::path::plugins::PluginSet;
use crate::plugin::PluginLoadError;
use crate::proto;
use crate::tls::{self, TlsError};
use parking_lot::{Mutex, RwLock};
use std::fmt;
use std::net::SocketAddr;
use std::num::TryFromIntError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The nats-server feature level natrium implements; clients switch features on by it.
pub const PROTOCOL_VERSION: &str = "2.10.0";
/// Natrium's own version, reported in /varz and `--version`.
pub const NATRIUM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the server could not start. The first five are the checks of the options, which a
/// reload makes again (see [`ReloadError::Invalid`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS configuration: {0}")]
    Tls(#[source] TlsError),
    #[error("authorization configuration: {0}")]
    Users(#[source] UserConfigError),
    /// A conflict between settings (imports that no export allows).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("mappings: {0}")]
    Mappings(#[source] AccountMappingError),
    #[error(transparent)]
    Plugins(#[from] PluginLoadError),
    #[error("starting JetStream: {0}")]
    JetStream(#[source] crate::jetstream::StartError),
    #[error("{listener}: invalid port {port}: {source}")]
    InvalidPort {
        listener: Listener,
        port: i32,
        #[source]
        source: TryFromIntError,
    },
    /// `host` is the configured host without IPv6 brackets; `port` 0 is a random port.
    #[error("{listener}: cannot listen on {host}:{port}: {source}")]
    Listen {
        listener: Listener,
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The bound address of a listener could not be read.
    #[error("{0}")]
    LocalAddr(#[source] std::io::Error),
    #[error("writing pid file {}: {source}", path.display())]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing ports file {}: {source}", path.display())]
    PortsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The server's listeners, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Client,
    Monitoring,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Listener::Client => "client listener",
            Listener::Monitoring => "monitoring listener",
        })
    }
}

/// A running broker: the message path's shared state ([`Core`], which a server derefs to)
/// plus what only the I/O layer has — listeners, TLS, shutdown, lame duck, pid/ports files.
pub struct Server {
    core: Arc<Core>,
    tls: RwLock<Option<tokio_rustls::TlsAcceptor>>,
    lame_duck: AtomicBool,
    /// Set when the listener must stop accepting (lame duck or shutdown).
    stop_accepting: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    client_addr: Mutex<Option<SocketAddr>>,
    http_addr: Mutex<Option<SocketAddr>>,
    /// Files written at start (pid, ports) and removed at shutdown.
    written_files: Mutex<Vec<PathBuf>>,
    /// Serializes reloads (SIGHUP and `$SYS.REQ.SERVER.<id>.RELOAD`).
    reloading: Mutex<()>,
}

impl std::ops::Deref for Server {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Server {
    /// Validates options (TLS files are loaded here) and builds a server that is not yet
    /// listening.
    pub fn new(opts: Options) -> Result<Arc<Server>, StartError> {
        let tls = match &opts.tls {
            Some(t) => Some(tls::acceptor(t).map_err(StartError::Tls)?),
            None => None,
        };
        let users = UserDirectory::from_options(&opts).map_err(StartError::Users)?;
        let accounts = Accounts::default();
        for name in &opts.accounts.names {
            accounts.get_or_create(name);
        }
        for (name, l) in &opts.accounts.limits {
            accounts.get_or_create(name).set_limits(l);
        }
        crate::account::links::check(&opts)?;
        accounts
            .apply_mappings(&opts.accounts.mappings)
            .map_err(StartError::Mappings)?;
        for w in crate::account::links::wire(&accounts, &opts) {
            tracing::warn!("{w}");
        }
        // JetStream first: bindings granted a `kv` bucket check it exists at load.
        let jetstream = if opts.jetstream.enabled {
            Some(start_jetstream(&opts)?)
        } else {
            None
        };
        let mut engine = None;
        let plugin_set = PluginSet::load(&opts, &mut engine, kv_source(jetstream.as_ref()))?;
        let core = Arc::new(Core::new(
            opts,
            crate::auth::callout::ServerKeys::generate(),
            accounts,
            users,
            plugin_set,
            engine,
            jetstream,
        ));
        core.set_events(Arc::new(crate::system::events::Advisories));
        let (shutdown, _) = watch::channel(false);
        let (stop_accepting, _) = watch::channel(false);
        let server = Arc::new(Server {
            core,
            tls: RwLock::new(tls),
            lame_duck: AtomicBool::new(false),
            stop_accepting,
            shutdown,
            client_addr: Mutex::new(None),
            http_addr: Mutex::new(None),
            written_files: Mutex::new(Vec::new()),
            reloading: Mutex::new(()),
        });
        server.attach_internal_clients();
        server.refresh_info();
        Ok(server)
    }

    /// Internal clients: JetStream and `$SYS.REQ.USER.INFO` in every account (also in those
    /// created later), and the system account's services.
    fn attach_internal_clients(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.accounts.set_on_create(Arc::new(move |account| {
            if let Some(server) = weak.upgrade() {
                crate::path::store::attach(&server.core, account);
                crate::system::requests::attach_account(&server, account);
            }
        }));
        crate::system::requests::attach_system(self);
    }

    /// Rebuilds the INFO fields every client gets (after listening, reload, lame duck).
    pub(crate) fn refresh_info(&self) {
        let opts = self.options();
        self.core.set_info_base(info::base(self, &opts));
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The bound client address, once listening.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        *self.client_addr.lock()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        *self.http_addr.lock()
    }

    pub fn is_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Relaxed)
    }

    /// Binds the listeners, logs the lines tools look for, and serves until shutdown.
    pub async fn run(self: Arc<Self>) -> Result<(), StartError> {
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
            // Recovered consumers were attached before the runtime ran: start their tasks.
            crate::path::consumers::sync_all(&self.core);
        }
        if opts.cluster.name.is_some()
            || opts.cluster.listen.is_some()
            || !opts.cluster.routes.is_empty()
        {
            tracing::warn!("Clustering is not available yet in natrium; cluster options ignored");
        }

        // As in nats-server: port 0 means no monitoring, and the host defaults to the client's.
        let http_host = if opts.listen.http_host.is_empty() {
            opts.listen.host.clone()
        } else {
            opts.listen.http_host.clone()
        };
        let http = match opts.listen.http_port.filter(|&p| p != 0) {
            Some(p) => {
                let l = bind(Listener::Monitoring, &http_host, p).await?;
                let addr = l.local_addr().map_err(StartError::LocalAddr)?;
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
        let listener = bind(Listener::Client, &opts.listen.host, opts.listen.port).await?;
        let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
        *self.client_addr.lock() = Some(addr);
        self.refresh_info();
        tracing::info!(
            "Listening for client connections on {}",
            display_addr(&opts.listen.host, addr)
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
        tokio::spawn(crate::system::events::statsz_loop(
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
        tokio::time::sleep(opts.limits.lame_duck_grace_period).await;
        let clients = self.clients();
        if !clients.is_empty() {
            let spread = opts
                .limits
                .lame_duck_duration
                .saturating_sub(opts.limits.lame_duck_grace_period);
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

    fn write_files(&self, opts: &Options) -> Result<(), StartError> {
        let pid = std::process::id();
        if let Some(p) = &opts.files.pid_file {
            std::fs::write(p, pid.to_string()).map_err(|source| StartError::PidFile {
                path: p.clone(),
                source,
            })?;
            self.written_files.lock().push(p.clone());
        }
        if let Some(dir) = &opts.files.ports_file_dir {
            // Named after the name the process was started as (argv[0]), as nats-server
            // does: a harness that starts a `nats-server` symlink waits for that name.
            let exe = std::env::args_os()
                .next()
                .and_then(|a| {
                    let name = std::path::Path::new(&a)
                        .file_name()?
                        .to_string_lossy()
                        .into_owned();
                    Some(name.trim_end_matches(".exe").to_string())
                })
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "natrium".to_string());
            let path = dir.join(format!("{exe}_{pid}.ports"));
            let ports = info::ports_json(self, opts);
            if let Err(source) = std::fs::write(&path, ports) {
                return Err(StartError::PortsFile { path, source });
            }
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

async fn bind(listener: Listener, host: &str, port: i32) -> Result<TcpListener, StartError> {
    let port = if port == RANDOM_PORT || port == 0 {
        0
    } else {
        u16::try_from(port).map_err(|source| StartError::InvalidPort {
            listener,
            port,
            source,
        })?
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    listen(host, port)
        .await
        .map_err(|source| StartError::Listen {
            listener,
            host: host.to_string(),
            port,
            source,
        })
}

/// How many finished TCP handshakes the kernel holds for us before accept. Rust's default
/// (128) overflows under a burst of a few hundred connects: the kernel then drops the
/// clients' ACKs and they wait seconds for retransmissions before they see INFO. Go (and so
/// nats-server) asks for the system maximum; so do we (Linux caps it at `somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the first address `host` resolves to that accepts the bind, with [`LISTEN_BACKLOG`].
async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            "the host resolves to no address",
        )
    }))
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
/// Where plugins granted `kv` read: this server's JetStream, if on.
pub(crate) fn kv_source(
    jetstream: Option<&Arc<crate::jetstream::JetStream>>,
) -> Option<Arc<dyn crate::plugin::KvSource>> {
    jetstream.map(|js| {
        Arc::new(crate::path::JetStreamKv(js.clone())) as Arc<dyn crate::plugin::KvSource>
    })
}

fn start_jetstream(opts: &Options) -> Result<Arc<crate::jetstream::JetStream>, StartError> {
    use crate::jetstream::{store::SyncPolicy, JetStream, JsConfig};
    let store_dir = crate::jetstream::kv::store_dir(opts.jetstream.store_dir.as_deref());
    let sync = match opts.jetstream.sync_interval {
        Some(d) if d.is_zero() => SyncPolicy::Always,
        Some(d) => SyncPolicy::Interval(d),
        None => SyncPolicy::Interval(Duration::from_secs(120)),
    };
    let config = JsConfig {
        store_dir,
        max_memory: opts.jetstream.max_memory.unwrap_or(-1),
        max_storage: opts.jetstream.max_storage.unwrap_or(-1),
        sync,
        domain: opts.jetstream.domain.clone(),
    };
    let limits = opts.jetstream.account_limits.iter().cloned().collect();
    // nats-server: without `accounts {}` the global account has JetStream; with them, only
    // the accounts that enable it. Operator mode: every account (JWT JetStream limits are not
    // interpreted yet).
    let all = opts.accounts.names.is_empty() || !opts.operator.jwts.is_empty();
    JetStream::start(config, limits, all).map_err(StartError::JetStream)
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
