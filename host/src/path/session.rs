//! One connection's protocol state, without the socket: the connection task feeds it the
//! bytes it read ([`Session::process`]) and writes what the session queued on the client.
//!
//! A read is processed as one batch: ops are parsed and acted on in order, deliveries are
//! appended to receivers' buffers, and the batch is settled once at its end (writers woken,
//! group commits flushed, counters published).

use super::plugins::{Deferred, PluginSet};
use super::route::Router;
use super::Core;
use crate::account::Account;
use crate::auth::permissions::ConnPermissions;
use crate::client::{Client, CloseReason, Queued};
use crate::options::Options;
use crate::plugin::ConnectRequest;
use crate::proto::{self, ClientOp, Parsed, ServerError};
use bytes::BytesMut;
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What the connection task does after a batch.
pub enum Flow {
    Continue,
    Close(CloseReason),
    /// CONNECT needs an authorizer plugin's decision before anything else is processed.
    Authorize(Box<(proto::ConnectOptions, ConnectRequest)>),
    /// CONNECT from an address in authentication back-off (`failure_backoff`): checked and
    /// answered at the given time, by [`Session::check_credentials`].
    Backoff(Box<(proto::ConnectOptions, tokio::time::Instant)>),
    /// CONNECT whose password check is slow (bcrypt): done off the worker threads by
    /// [`Session::check_credentials_off_worker`].
    Verify(Box<proto::ConnectOptions>),
    /// CONNECT for an auth callout service to decide: [`Session::callout`].
    Callout(Box<(proto::ConnectOptions, crate::auth::callout::Policy)>),
}

/// The protocol state of one client connection.
pub struct Session {
    /// Counts this connection as waiting for its handshake until CONNECT succeeds.
    pub(super) handshake: Option<super::Handshake>,
    pub(super) core: Arc<Core>,
    pub(super) client: Arc<Client>,
    /// The subject space this client publishes and subscribes in (`$G` until CONNECT says
    /// otherwise).
    pub(super) account: Arc<Account>,
    /// Publish/subscribe permissions of the authenticated user, if restricted.
    pub(super) perms: Option<ConnPermissions>,
    /// The nonce sent in INFO, which an NKey user signs.
    pub(super) nonce: Option<String>,
    /// The plugins this connection runs, and their generation.
    pub(super) plugins: Arc<PluginSet>,
    pub(super) plugin_gen: u64,
    /// Per subject: does any plugin binding apply (reset with the plugins or the account).
    pub(super) plugin_hits: FxHashMap<Box<[u8]>, bool>,
    /// When the current read batch started (for permission bookkeeping).
    pub(super) batch_time: std::time::Instant,
    /// When the grant this client connected with ends (authorizer or JWT expiry).
    pub expires: Option<tokio::time::Instant>,
    pub(super) limits: proto::Limits,
    pub auth_required: bool,
    pub connected: bool,
    pub(super) verbose: bool,
    pub(super) pedantic: bool,
    pub(super) echo: bool,
    pub(super) no_responders: bool,
    pub pings_out: u32,
    /// Account limits (see `connect::admit`): subscriptions per client, and whether this
    /// client counts against its account's connections.
    pub(super) max_subs: Option<usize>,
    pub(super) admitted: bool,
    pub(super) router: Router,
}

impl Session {
    pub fn new(
        core: Arc<Core>,
        client: Arc<Client>,
        opts: &Options,
        nonce: Option<String>,
        handshake: super::Handshake,
    ) -> Self {
        let seed = crate::util::unix_nanos() ^ client.id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (plugin_gen, plugins) = core.plugin_set();
        let auth_required = core.auth_required(opts);
        let account = core.accounts.global().clone();
        let max_pending = usize::try_from(opts.limits.max_pending).unwrap_or(usize::MAX);
        Session {
            handshake: Some(handshake),
            limits: proto::Limits {
                max_control_line: opts.limits.max_control_line as usize,
                max_payload: opts.limits.max_payload as usize,
            },
            auth_required,
            connected: false,
            // nats-server's defaults for a client that has not sent CONNECT yet.
            verbose: true,
            pedantic: true,
            echo: true,
            no_responders: false,
            pings_out: 0,
            max_subs: None,
            admitted: false,
            router: Router::new(account.clone(), max_pending, seed),
            account,
            perms: None,
            nonce,
            plugins,
            plugin_gen,
            plugin_hits: FxHashMap::default(),
            batch_time: std::time::Instant::now(),
            expires: None,
            core,
            client,
        }
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Called before each read batch: picks up what others changed for this client
    /// (permissions from an account update or a reload, a new plugin generation).
    pub fn begin_batch(&mut self) {
        if let Some(perms) = self.client.take_permissions() {
            self.perms = match (self.perms.take(), perms) {
                (Some(mut current), Some(p)) => {
                    current.replace(p);
                    Some(current)
                }
                (_, p) => p.map(ConnPermissions::new),
            };
        }
        if self.perms.is_some() {
            self.batch_time = std::time::Instant::now();
        }
        if self.core.plugin_generation() != self.plugin_gen {
            (self.plugin_gen, self.plugins) = self.core.plugin_set();
            self.plugin_hits.clear();
        }
    }

    /// Parses and acts on every whole frame in `buf`; returns the bytes consumed.
    pub fn process(&mut self, buf: &[u8]) -> (usize, Flow) {
        let mut pos = 0;
        let batching = self.plugins.batches();
        let mut deferred: Vec<Deferred<'_>> = Vec::new();
        while pos < buf.len() {
            match proto::parse(&buf[pos..], &self.limits) {
                Ok(Parsed::Op { op, consumed }) => {
                    pos += consumed;
                    if batching && self.connected {
                        match self.defer(&mut deferred, op) {
                            Ok(()) => continue,
                            Err(op) => {
                                self.settle_deferred(&mut deferred);
                                match self.handle(op) {
                                    Flow::Continue => continue,
                                    stop => return (pos, stop),
                                }
                            }
                        }
                    }
                    match self.handle(op) {
                        Flow::Continue => {}
                        stop => return (pos, stop),
                    }
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => {
                    self.settle_deferred(&mut deferred);
                    tracing::error!("{} - protocol error: {e}", self.client.label());
                    // Where nats-server closes without a word, so do we.
                    let flow = match e.server_error() {
                        Some(error) => self.fail(error),
                        None => Flow::Close(CloseReason::ProtocolViolation),
                    };
                    return (pos, flow);
                }
            }
        }
        self.settle_deferred(&mut deferred);
        (pos, Flow::Continue)
    }

    fn handle(&mut self, op: ClientOp<'_>) -> Flow {
        if self.auth_required && !self.connected && !matches!(op, ClientOp::Connect(_)) {
            return self.fail(ServerError::AuthorizationViolation);
        }
        match op {
            ClientOp::Connect(json) => return self.on_connect(json),
            // A client that did not negotiate headers may not send them.
            ClientOp::Hpub { .. } if !self.client.headers.load(Ordering::Relaxed) => {
                tracing::error!("{} - HPUB without headers support", self.client.label());
                return Flow::Close(CloseReason::ProtocolViolation);
            }
            op @ (ClientOp::Pub { .. } | ClientOp::Hpub { .. }) => {
                if let Ok(msg) = op.into_msg() {
                    self.on_pub(msg);
                }
            }
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => self.on_sub(subject, queue, sid),
            ClientOp::Unsub { sid, max } => self.on_unsub(sid, max),
            ClientOp::Ping => self.send(proto::PONG),
            ClientOp::Pong => {
                self.pings_out = 0;
            }
            ClientOp::Info(json) => {
                if serde_json::from_slice::<serde_json::Value>(json).is_err() {
                    return Flow::Close(CloseReason::ProtocolViolation);
                }
            }
            ClientOp::Ok => {}
            ClientOp::Err(text) => {
                tracing::debug!(
                    "{} - client sent -ERR {}",
                    self.client.label(),
                    String::from_utf8_lossy(text)
                );
                return Flow::Close(CloseReason::ClientClosed);
            }
        }
        Flow::Continue
    }

    /// Sends a client-visible error from the one table (`proto::errors`): the table says
    /// whether the connection closes after it.
    pub fn fail(&mut self, error: ServerError) -> Flow {
        if error.sent_to_client() {
            self.send_err(error.text());
        }
        if error.closes_connection() {
            Flow::Close(error.into())
        } else {
            Flow::Continue
        }
    }

    pub(super) fn ok(&mut self) {
        if self.verbose {
            self.send(proto::OK);
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        match self.client.queue_reply(bytes, self.router.max_pending) {
            Queued::Yes { first: true } => self.router.batch.flush.push(self.client.clone()),
            // Closed as a slow consumer when the batch settles (once).
            Queued::SlowConsumer
                if !self
                    .router
                    .batch
                    .slow
                    .iter()
                    .any(|c| Arc::ptr_eq(c, &self.client)) =>
            {
                self.router.batch.slow.push(self.client.clone());
            }
            _ => {}
        }
    }

    pub(super) fn send_err(&mut self, text: &str) {
        let mut b = BytesMut::with_capacity(text.len() + 10);
        proto::write_err(&mut b, text);
        self.send(&b);
    }

    /// Settles a read batch: commits, writers, spent subscriptions, counters.
    pub fn end_batch(&mut self) {
        self.router.settle(&self.core);
        let b = &mut self.router.batch;
        if b.in_msgs != 0 {
            self.client.in_msgs.fetch_add(b.in_msgs, Ordering::Relaxed);
            self.client
                .in_bytes
                .fetch_add(b.in_bytes, Ordering::Relaxed);
            self.core.stats.add_in(b.in_msgs, b.in_bytes);
            b.in_msgs = 0;
            b.in_bytes = 0;
        }
    }

    /// The ping timer fired: a PING, or 'Stale Connection' after `max_pings_out` unanswered.
    pub fn on_ping_timer(&mut self, max_pings_out: u32) -> Flow {
        if self.pings_out >= max_pings_out {
            tracing::debug!(
                "{} - Stale Client Connection - Closing",
                self.client.label()
            );
            let flow = self.fail(ServerError::StaleConnection);
            self.end_batch();
            return flow;
        }
        self.pings_out += 1;
        self.send(proto::PING);
        self.end_batch();
        Flow::Continue
    }

    /// The grant this client connected with has run out.
    pub fn on_expired(&mut self) -> Flow {
        tracing::info!("{} - authorization expired", self.client.label());
        let flow = self.fail(ServerError::AuthenticationExpired);
        self.end_batch();
        flow
    }

    /// No CONNECT within the authentication timeout.
    pub fn on_auth_timeout(&mut self) -> Flow {
        tracing::error!("{} - authentication timeout", self.client.label());
        let flow = self.fail(ServerError::AuthenticationTimeout);
        self.end_batch();
        flow
    }

    /// Moves the client into `name` (created on demand), forgetting cached matches.
    pub(super) fn enter_account(&mut self, name: &str) {
        if &*self.account.name != name {
            self.account = self.core.accounts.get_or_create(name);
            self.plugin_hits.clear();
            self.router.set_home(self.account.clone());
        }
    }

    /// Runs once the connection is over, whoever closed it.
    pub fn cleanup(&mut self, reason: CloseReason) {
        self.client.mark_closed(reason);
        self.handshake = None;
        let subs: Vec<_> = self.client.subs.lock().drain().map(|(_, s)| s).collect();
        for sub in &subs {
            if let Some(a) = self.core.accounts.get(&sub.account) {
                a.sublist.remove(sub);
            }
        }
        self.core.unregister(&self.client);
        self.release(reason);
        tracing::debug!(
            "{} - Client connection closed: {}",
            self.client.label(),
            self.client.close_reason().unwrap_or(reason).as_str()
        );
    }
}
