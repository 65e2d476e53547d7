//! One client connection: the reader task (parse, then act) and the writer task.
//!
//! ```text
//!  socket ──read──▶ reader task ──parse──▶ ops ──route──▶ subscribers' Outbound (mutex)
//!                                                              │ notify once per batch
//!  socket ◀─write── writer task ◀──────── swap buffer ◀────────┘
//! ```

use super::client::{unix_nanos, Client, CloseReason, Queued, Subscription};
use super::plugins::{self, PluginSet, Verdict};
use super::Server;
use crate::account::links::RESPONSE_PREFIX;
use crate::account::{Account, AuthError, AuthOutcome, Credentials};
use crate::auth::permissions::{
    ConnPermissions, PermissionSpec, ResponsePermission, SubjectPermission,
};
use crate::jetstream::stream::{Origin, Stream};
use crate::jetstream::{api, JsAccount};
use crate::options::Options;
use crate::plugin::{ConnectRequest, Decision};
use crate::proto::{self, errors, ClientOp, Parsed};
use crate::subject::{self, SubResult};
use bytes::{Buf, Bytes, BytesMut};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MIN_READ: usize = 512;
const MAX_READ: usize = 64 * 1024;
/// Entries in the per-connection match cache before it is reset.
const CACHE_MAX: usize = 512;

/// Drives a connection whose transport is ready (plain, or TLS after its handshake).
pub(crate) async fn run<R, W>(
    server: Arc<Server>,
    client: Arc<Client>,
    opts: Arc<Options>,
    nonce: Option<String>,
    rd: R,
    wr: W,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer = tokio::spawn(write_loop(
        server.clone(),
        client.clone(),
        wr,
        opts.write_deadline,
    ));
    let mut conn = Conn::new(server.clone(), client.clone(), &opts, nonce);
    let reason = conn.read_loop(rd, &opts).await;
    conn.cleanup(reason);
    let _ = writer.await;
}

/// Takes whatever is queued and writes it, until the client is closed and drained.
async fn write_loop<W: AsyncWrite + Unpin>(
    server: Arc<Server>,
    client: Arc<Client>,
    mut wr: W,
    deadline: Duration,
) {
    let mut spare = BytesMut::new();
    loop {
        let (mut chunk, closed) = {
            let mut out = client.out.lock();
            out.flush_pending = false;
            (std::mem::replace(&mut out.buf, spare), out.closed)
        };
        if chunk.is_empty() {
            spare = chunk;
            if closed.is_some() {
                break;
            }
            client.wake_writer.notified().await;
            continue;
        }
        match tokio::time::timeout(deadline, wr.write_all(&chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!("{} - write error: {e}", client_label(&client));
                server.close_client(&client, CloseReason::WriteError);
                break;
            }
            Err(_) => {
                server.slow_consumer(&client, CloseReason::SlowConsumerWriteDeadline);
                break;
            }
        }
        chunk.clear();
        // Don't keep a burst's worth of memory around for an idle client.
        if chunk.capacity() > 4 * MAX_READ {
            chunk = BytesMut::new();
        }
        spare = chunk;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
}

pub(crate) fn client_label(c: &Client) -> String {
    format!("{} - cid:{}", c.addr, c.id)
}

/// The reader task's state: protocol flags from CONNECT and per-batch bookkeeping.
struct Conn {
    server: Arc<Server>,
    client: Arc<Client>,
    /// The subject space this client publishes and subscribes in (`$G` until CONNECT says
    /// otherwise).
    account: Arc<Account>,
    /// Publish/subscribe permissions of the authenticated user, if restricted.
    perms: Option<ConnPermissions>,
    /// The nonce sent in INFO, which an NKey user signs.
    nonce: Option<String>,
    /// The plugins this connection runs, and their generation.
    plugins: Arc<PluginSet>,
    plugin_gen: u64,
    /// When the current read batch started (for permission bookkeeping).
    batch_time: std::time::Instant,
    /// Per subject: does any plugin binding apply (reset with the plugins or the account).
    plugin_hits: FxHashMap<Box<[u8]>, bool>,
    /// When an authorizer's grant ends.
    expires: Option<tokio::time::Instant>,
    limits: proto::Limits,
    max_pending: usize,
    auth_required: bool,
    connected: bool,
    verbose: bool,
    pedantic: bool,
    echo: bool,
    no_responders: bool,
    pings_out: u32,
    /// Account limits (see `admit`): subscriptions per client, and whether this client
    /// counts against its account's connections.
    max_subs: Option<usize>,
    admitted: bool,
    /// Per-connection match cache (L1), valid while the sublist generation is unchanged.
    cache: FxHashMap<Box<[u8]>, Arc<SubResult<Subscription>>>,
    cache_gen: u64,
    /// This account's JetStream streams, when JetStream is on.
    js: Option<Arc<JsAccount>>,
    /// Per subject: the stream that stores it, valid while `js_gen` is the account's generation.
    js_hits: FxHashMap<Box<[u8]>, Option<Arc<Stream>>>,
    js_gen: u64,
    batch: Batch,
}

/// Publishes held for one plugin batch (see `Conn::defer_pub`).
const MAX_DEFERRED: usize = 256;

/// A publish waiting for its plugin batch; borrows the read buffer.
struct Deferred<'a> {
    subject: Cow<'a, [u8]>,
    reply: Option<&'a [u8]>,
    headers: Option<&'a [u8]>,
    payload: &'a [u8],
    /// Whether a plugin binding covers it (the rest only keep their place in line).
    plugged: bool,
}

/// What one read batch accumulates and settles at its end.
#[derive(Default)]
struct Batch {
    /// Clients with newly queued bytes: their writers are woken once, after the batch.
    flush: Vec<Arc<Client>>,
    /// Subscriptions that reached their auto-unsubscribe maximum.
    expired: Vec<Arc<Subscription>>,
    slow: Vec<Arc<Client>>,
    /// Streams written in this batch: flushed (one write each) before its PubAcks go out.
    js_dirty: Vec<Arc<Stream>>,
    /// PubAcks held until that flush: (index in `js_dirty`, reply subject, ack).
    js_acks: Vec<(usize, Box<[u8]>, Vec<u8>)>,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    rng: u64,
}

impl Batch {
    fn next_rand(&mut self) -> u64 {
        // xorshift64: queue-member choice needs spread, not cryptographic quality.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn deliver(
        &mut self,
        sub: &Arc<Subscription>,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
        max_pending: usize,
    ) -> bool {
        if let Some(p) = &sub.deny_filter {
            if p.deny_delivery(subject) {
                return false;
            }
        }
        let mut expired = false;
        match sub.client.queue_msg(
            sub,
            subject,
            reply,
            headers,
            payload,
            max_pending,
            &mut expired,
        ) {
            Queued::Yes { first } => {
                if first {
                    self.flush.push(sub.client.clone());
                }
                if expired {
                    self.expired.push(sub.clone());
                }
                self.out_msgs += 1;
                self.out_bytes += (payload.len() + headers.map_or(0, <[u8]>::len)) as u64;
                true
            }
            Queued::Closed => false,
            Queued::SlowConsumer => {
                self.slow.push(sub.client.clone());
                false
            }
        }
    }
}

enum Flow {
    Continue,
    Close(CloseReason),
    /// CONNECT needs an authorizer plugin's decision before anything else is processed.
    Authorize(Box<(proto::ConnectOptions, ConnectRequest)>),
}

impl Conn {
    fn new(
        server: Arc<Server>,
        client: Arc<Client>,
        opts: &Options,
        nonce: Option<String>,
    ) -> Self {
        let seed = unix_nanos() ^ client.id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (plugin_gen, plugins) = server.plugin_set();
        let auth_required = server.auth_required(opts);
        Conn {
            limits: proto::Limits {
                max_control_line: opts.max_control_line as usize,
                max_payload: opts.max_payload as usize,
            },
            max_pending: opts.max_pending.min(usize::MAX as u64) as usize,
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
            cache: FxHashMap::default(),
            cache_gen: u64::MAX,
            batch: Batch {
                rng: seed | 1,
                ..Batch::default()
            },
            js: server
                .jetstream
                .as_ref()
                .map(|j| j.account(&server.accounts.global().name)),
            js_hits: FxHashMap::default(),
            js_gen: u64::MAX,
            account: server.accounts.global().clone(),
            perms: None,
            nonce,
            plugins,
            plugin_gen,
            plugin_hits: FxHashMap::default(),
            batch_time: std::time::Instant::now(),
            expires: None,
            server,
            client,
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(&mut self, mut rd: R, opts: &Options) -> CloseReason {
        let mut buf = BytesMut::new();
        let mut read_size = MIN_READ;
        let mut short_reads = 0u32;
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + opts.ping_interval,
            opts.ping_interval,
        );
        let auth_deadline = tokio::time::sleep(opts.auth_timeout);
        tokio::pin!(auth_deadline);
        loop {
            if buf.capacity() - buf.len() < read_size {
                buf.reserve(read_size);
            }
            tokio::select! {
                biased;
                _ = self.client.wake_reader.notified() => {
                    return self.client.close_reason().unwrap_or(CloseReason::ServerShutdown);
                }
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return CloseReason::ClientClosed,
                    Ok(n) => {
                        if n >= read_size && read_size < MAX_READ {
                            read_size *= 2;
                            short_reads = 0;
                        } else if n < read_size / 2 {
                            short_reads += 1;
                            if short_reads > 2 && read_size > MIN_READ {
                                read_size /= 2;
                                short_reads = 0;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!("{} - read error: {e}", client_label(&self.client));
                        return CloseReason::ReadError;
                    }
                },
                _ = ping.tick() => {
                    if self.pings_out >= opts.max_pings_out {
                        tracing::debug!("{} - Stale Client Connection - Closing", client_label(&self.client));
                        self.send_err(errors::STALE_CONNECTION);
                        self.end_batch();
                        return CloseReason::StaleConnection;
                    }
                    self.pings_out += 1;
                    self.send(proto::PING);
                    self.end_batch();
                    continue;
                }
                _ = expiry(self.expires) => {
                    tracing::info!("{} - authorization expired", client_label(&self.client));
                    self.send_err(errors::AUTH_EXPIRED);
                    self.end_batch();
                    return CloseReason::AuthenticationExpired;
                }
                _ = &mut auth_deadline, if self.auth_required && !self.connected => {
                    tracing::error!("{} - authentication timeout", client_label(&self.client));
                    self.send_err(errors::AUTH_TIMEOUT);
                    self.end_batch();
                    return CloseReason::AuthenticationTimeout;
                }
            }
            self.client
                .last_activity
                .store(unix_nanos(), Ordering::Relaxed);
            if let Some(perms) = self.client.take_permissions() {
                // An account JWT update changed this user's permissions.
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
            if self.server.plugin_generation() != self.plugin_gen {
                (self.plugin_gen, self.plugins) = self.server.plugin_set();
                self.plugin_hits.clear();
            }
            loop {
                let (consumed, flow) = self.process(&buf);
                buf.advance(consumed);
                self.end_batch();
                match flow {
                    Flow::Continue => break,
                    Flow::Close(reason) => return reason,
                    Flow::Authorize(pending) => {
                        let (co, request) = *pending;
                        let flow = self.authorize(co, request).await;
                        self.end_batch();
                        if let Flow::Close(reason) = flow {
                            return reason;
                        }
                    }
                }
            }
            if buf.is_empty() && buf.capacity() > 4 * MAX_READ {
                buf = BytesMut::new();
            }
            // Parsing and routing never yield; give the runtime a chance to run writers.
            tokio::task::consume_budget().await;
        }
    }

    /// Parses and acts on every whole frame in `buf`; returns the bytes consumed.
    fn process(&mut self, buf: &[u8]) -> (usize, Flow) {
        let mut pos = 0;
        let batching = self.plugins.batches();
        let mut deferred: Vec<Deferred<'_>> = Vec::new();
        while pos < buf.len() {
            match proto::parse(&buf[pos..], &self.limits) {
                Ok(Parsed::Op { op, consumed }) => {
                    pos += consumed;
                    if batching && self.connected {
                        let headers_ok = self.client.headers.load(Ordering::Relaxed);
                        match op {
                            ClientOp::Pub {
                                subject,
                                reply,
                                payload,
                            } => {
                                self.defer_pub(&mut deferred, subject, reply, None, payload);
                                continue;
                            }
                            ClientOp::Hpub {
                                subject,
                                reply,
                                headers,
                                payload,
                            } if headers_ok => {
                                let h = Some(headers);
                                self.defer_pub(&mut deferred, subject, reply, h, payload);
                                continue;
                            }
                            _ => self.settle_deferred(&mut deferred),
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
                    tracing::error!("{} - protocol error: {e}", client_label(&self.client));
                    if let Some(text) = e.client_error() {
                        self.send_err(text);
                    }
                    return (pos, Flow::Close(close_reason_for(&e)));
                }
            }
        }
        self.settle_deferred(&mut deferred);
        (pos, Flow::Continue)
    }

    fn handle(&mut self, op: ClientOp<'_>) -> Flow {
        if self.auth_required && !self.connected && !matches!(op, ClientOp::Connect(_)) {
            self.send_err(errors::AUTH_VIOLATION);
            return Flow::Close(CloseReason::AuthenticationViolation);
        }
        match op {
            ClientOp::Connect(json) => return self.on_connect(json),
            // A client that did not negotiate headers may not send them.
            ClientOp::Hpub { .. } if !self.client.headers.load(Ordering::Relaxed) => {
                tracing::error!(
                    "{} - HPUB without headers support",
                    client_label(&self.client)
                );
                return Flow::Close(CloseReason::ProtocolViolation);
            }
            ClientOp::Pub {
                subject,
                reply,
                payload,
            } => self.on_pub(subject, reply, None, payload),
            ClientOp::Hpub {
                subject,
                reply,
                headers,
                payload,
            } => self.on_pub(subject, reply, Some(headers), payload),
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
                    client_label(&self.client),
                    String::from_utf8_lossy(text)
                );
                return Flow::Close(CloseReason::ClientClosed);
            }
        }
        Flow::Continue
    }

    fn on_connect(&mut self, json: &[u8]) -> Flow {
        let co = match proto::ConnectOptions::parse(json) {
            Ok(co) => co,
            Err(e) => {
                tracing::error!("{} - invalid CONNECT: {e}", client_label(&self.client));
                return Flow::Close(CloseReason::ProtocolViolation);
            }
        };
        if co.protocol > 1 {
            self.send_err(errors::INVALID_CLIENT_PROTOCOL);
            return Flow::Close(CloseReason::ProtocolViolation);
        }
        if co.no_responders && !co.headers {
            self.send_err(errors::NO_RESPONDERS_REQUIRES_HEADERS);
            return Flow::Close(CloseReason::ProtocolViolation);
        }
        let tls_identity = self.client.meta.lock().tls_identity.clone();
        let tls_map = tls_identity.as_deref().filter(|_| {
            self.server
                .options()
                .tls
                .as_ref()
                .is_some_and(|t| t.verify_and_map)
        });
        let creds = Credentials {
            tls_map,
            user: co.user.as_deref(),
            pass: co.pass.as_deref(),
            token: co.auth_token.as_deref(),
            nkey: co.nkey.as_deref(),
            sig: co.sig.as_deref(),
            nonce: self.nonce.as_deref(),
            jwt: co.jwt.as_deref(),
            ip: Some(self.client.addr.ip()),
        };
        let directory = self.server.user_directory();
        // With no users configured the directory admits everyone; an authorizer plugin must
        // still decide then, so it is not asked.
        let checked = if directory.auth_required() || self.plugins.authorizers.is_empty() {
            directory.authenticate(&creds)
        } else {
            Err(AuthError::NoMatch)
        };
        match checked {
            Ok(outcome) => self.finish_connect(co, outcome),
            // Configured users come first; anyone else is the authorizer plugin's to decide.
            Err(_) if !self.plugins.authorizers.is_empty() => {
                let nkey_verified = match (&co.nkey, &co.sig, &self.nonce) {
                    (Some(k), Some(sig), Some(n)) => crate::auth::nkeys::verify_nonce(
                        k,
                        crate::auth::nkeys::KeyKind::User,
                        n,
                        sig,
                    )
                    .is_ok(),
                    _ => false,
                };
                let request = ConnectRequest {
                    user: co.user.clone(),
                    pass: co.pass.clone(),
                    auth_token: co.auth_token.clone(),
                    jwt: co.jwt.clone(),
                    nkey: co.nkey.clone(),
                    nkey_verified,
                    name: co.name.clone(),
                    lang: co.lang.clone(),
                    version: co.version.clone(),
                    client_ip: self.client.addr.ip().to_string(),
                    client_port: self.client.addr.port(),
                    server_name: self.server.name.clone(),
                    server_id: self.server.id.clone(),
                    tls: tls_identity.as_ref().map(|t| t.to_plugin()),
                };
                Flow::Authorize(Box::new((co, request)))
            }
            Err(e) => self.refuse(&co, &e.to_string()),
        }
    }

    fn refuse(&mut self, co: &proto::ConnectOptions, why: &str) -> Flow {
        tracing::error!(
            "{} - \"{}:{}:{}\" - authentication error: {why}",
            client_label(&self.client),
            co.version.as_deref().unwrap_or(""),
            co.lang.as_deref().unwrap_or(""),
            co.name.as_deref().unwrap_or("")
        );
        self.send_err(errors::AUTH_VIOLATION);
        Flow::Close(CloseReason::AuthenticationViolation)
    }

    /// Asks the authorizer plugins in order; the first decision counts, any failure denies.
    async fn authorize(&mut self, co: proto::ConnectOptions, request: ConnectRequest) -> Flow {
        let Some(authorizer) = self.plugins.authorizers.first().cloned() else {
            return self.refuse(&co, "no authorizer");
        };
        match authorizer.authorize(request).await {
            Ok(Decision::Allow(allowed)) => {
                let spec = plugin_permissions(&allowed);
                let permissions = if spec.is_empty() {
                    None
                } else {
                    match crate::auth::permissions::Permissions::compile(&spec) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(e) => {
                            let why = format!(
                                "plugin '{}' returned bad permissions: {e}",
                                authorizer.name()
                            );
                            return self.refuse(&co, &why);
                        }
                    }
                };
                if let Some(at) = allowed.expires_at {
                    let left = Duration::from_nanos(at.saturating_sub(unix_nanos()));
                    if left.is_zero() {
                        return self.refuse(&co, "authorization already expired");
                    }
                    self.expires = Some(tokio::time::Instant::now() + left);
                }
                let outcome = AuthOutcome {
                    account: allowed.account.clone(),
                    user: Some(allowed.user.clone()),
                    permissions,
                    expires_at: None,
                    jwt_user: None,
                    account_limits: None,
                };
                self.finish_connect(co, outcome)
            }
            Ok(Decision::Deny(reason)) => {
                let why = format!("denied by plugin '{}': {reason}", authorizer.name());
                self.refuse(&co, &why)
            }
            Err(e) => {
                let why = format!("plugin '{}' failed ({}): {e}", authorizer.name(), e.kind());
                self.refuse(&co, &why)
            }
        }
    }

    fn finish_connect(&mut self, co: proto::ConnectOptions, outcome: AuthOutcome) -> Flow {
        if let Some(at) = outcome.expires_at {
            let left = Duration::from_nanos(at.saturating_sub(unix_nanos()));
            self.expires = Some(tokio::time::Instant::now() + left);
        }
        self.enter_account(&outcome.account);
        if let Some(l) = &outcome.account_limits {
            self.account.set_limits(l);
        }
        if let Err(flow) = self.admit(co.protocol) {
            return flow;
        }
        self.perms = outcome.permissions.map(ConnPermissions::new);
        let tracks = self
            .perms
            .as_ref()
            .is_some_and(|p| p.permissions().response().is_some());
        self.client.tracks_replies.store(tracks, Ordering::Relaxed);
        self.connected = true;
        self.verbose = co.verbose;
        self.pedantic = co.pedantic;
        self.echo = co.echo;
        self.no_responders = co.no_responders;
        self.client.headers.store(co.headers, Ordering::Relaxed);
        {
            let mut meta = self.client.meta.lock();
            meta.name = co.name.unwrap_or_default();
            meta.lang = co.lang.unwrap_or_default();
            meta.version = co.version.unwrap_or_default();
            meta.user = outcome.user;
            meta.account = self.account.name.clone();
            meta.jwt_user = outcome.jwt_user;
        }
        crate::account::events::client_connect(&self.server, &self.client, &self.account.name);
        self.ok();
        Flow::Continue
    }

    /// Everything a publish goes through before plugins and routing: counters,
    /// permissions, requests to the server and JetStream's API, pedantic checks, +OK and
    /// native mappings. Returns the subject to route on, or `None` when the message was
    /// consumed or refused here.
    fn admit_pub<'a>(
        &mut self,
        subject: &'a [u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Option<Cow<'a, [u8]>> {
        self.batch.in_msgs += 1;
        self.batch.in_bytes += (payload.len() + headers.map_or(0, <[u8]>::len)) as u64;
        if let Some(perms) = &mut self.perms {
            // The read batch's clock: allow_responses expiry needs no finer grain, and a
            // clock read per message would cost as much as the cached permission check.
            let now = self.batch_time;
            if perms.permissions().response().is_some() {
                let replies = std::mem::take(&mut self.client.out.lock().new_replies);
                for r in replies {
                    perms.track_reply(&r, now);
                }
            }
            let mut err = BytesMut::new();
            if !perms.check_publish(subject, now, &mut err) {
                tracing::debug!(
                    "{} - publish permission violation: {}",
                    client_label(&self.client),
                    String::from_utf8_lossy(subject)
                );
                self.send(&err);
                return None;
            }
        }
        let (server, account) = (&self.server, &self.account);
        let requester = crate::account::system::Requester {
            client: &self.client,
            permissions: self.perms.as_ref().map(ConnPermissions::permissions),
        };
        if crate::account::system::handle_request(
            server, account, requester, subject, reply, payload,
        ) {
            self.ok();
            return None;
        }
        if subject.starts_with(b"$JS.") && self.js_api(subject, reply, payload) {
            self.ok();
            return None;
        }
        // nats-server reports a wildcard publish in pedantic mode but still delivers it.
        if self.pedantic && !subject::is_valid_literal_subject(subject) {
            self.send_err(errors::INVALID_PUBLISH_SUBJECT);
        }
        self.ok();
        // Native subject mappings come before plugins (nats-server maps before routing).
        if self.account.has_mappings() {
            let roll = (self.batch.next_rand() % 100) as u8;
            if let Some(mapped) = self.account.map_subject(subject, roll) {
                return Some(Cow::Owned(mapped));
            }
        }
        Some(Cow::Borrowed(subject))
    }

    fn on_pub(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let Some(subject) = self.admit_pub(subject, reply, headers, payload) else {
            return;
        };
        let subject = &*subject;
        if !self.plugins.on_publish_path() || !self.plugins_apply(subject) {
            self.route(subject, reply, headers, payload);
            return;
        }
        let plugins = self.plugins.clone();
        let verdict = plugins::on_publish(
            &plugins,
            &self.account.name,
            subject,
            reply,
            headers,
            payload,
        );
        self.settle(verdict, subject, reply, headers, payload);
    }

    /// Routes a message as its plugins decided.
    fn settle(
        &mut self,
        verdict: Verdict,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        match verdict {
            Verdict::Unchanged => self.route(subject, reply, headers, payload),
            Verdict::Rewritten(m) => self.route(
                m.subject.as_bytes(),
                m.reply.as_deref().map(str::as_bytes),
                m.headers.as_deref(),
                &m.payload,
            ),
            Verdict::Drop => {}
            Verdict::Reject(reason) => {
                let clean: String = reason
                    .chars()
                    .map(|c| if c == '\'' || c.is_control() { ' ' } else { c })
                    .take(200)
                    .collect();
                self.send_err(&format!("{}{clean}", errors::MESSAGE_REJECTED_PREFIX));
            }
        }
    }

    /// With a `batch-transformer` loaded, a read's publishes are collected (from the first
    /// one a plugin covers on, so that this publisher's order is kept) and go through the
    /// plugins together; anything else the client sends settles the batch first.
    fn defer_pub<'a>(
        &mut self,
        deferred: &mut Vec<Deferred<'a>>,
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        headers: Option<&'a [u8]>,
        payload: &'a [u8],
    ) {
        let Some(subject) = self.admit_pub(subject, reply, headers, payload) else {
            return;
        };
        let plugged = self.plugins_apply(&subject);
        if !plugged && deferred.is_empty() {
            self.route(&subject, reply, headers, payload);
            return;
        }
        deferred.push(Deferred {
            subject,
            reply,
            headers,
            payload,
            plugged,
        });
        if deferred.len() >= MAX_DEFERRED {
            self.settle_deferred(deferred);
        }
    }

    fn settle_deferred(&mut self, deferred: &mut Vec<Deferred<'_>>) {
        if deferred.is_empty() {
            return;
        }
        let plugins = self.plugins.clone();
        let batch: Vec<plugins::Publish<'_>> = deferred
            .iter()
            .filter(|d| d.plugged)
            .map(|d| plugins::Publish {
                subject: &d.subject,
                reply: d.reply,
                headers: d.headers,
                payload: d.payload,
            })
            .collect();
        let mut verdicts =
            plugins::on_publish_batch(&plugins, &self.account.name, &batch).into_iter();
        drop(batch);
        for d in deferred.drain(..) {
            let verdict = if d.plugged {
                verdicts.next().unwrap_or(Verdict::Unchanged)
            } else {
                Verdict::Unchanged
            };
            self.settle(verdict, &d.subject, d.reply, d.headers, d.payload);
        }
    }

    /// Delivers a message to every matching subscription (one member per queue group) and
    /// to the stream that captures its subject; tells a requester when nobody got it.
    fn route(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let mut delivered = self.route_core(subject, reply, headers, payload);
        if self.js.as_ref().is_some_and(|j| j.has_streams())
            && self.js_store(subject, reply, headers, payload)
        {
            delivered += 1;
        }
        if delivered == 0 && self.no_responders {
            if let Some(reply) = reply {
                self.send_no_responders(reply);
            }
        }
    }

    /// Answers a `$JS.API` request; false when JetStream is off or the subject is not an API
    /// this server serves (the message then routes like any other).
    fn js_api(&mut self, subject: &[u8], reply: Option<&[u8]>, payload: &[u8]) -> bool {
        let (Some(js), Some(acc)) = (self.server.jetstream.clone(), self.js.clone()) else {
            return false;
        };
        let Ok(subject) = std::str::from_utf8(subject) else {
            return false;
        };
        // With a domain, `$JS.<domain>.API.>` reaches the same API.
        let local;
        let subject = match js.config.domain.as_deref().and_then(|d| {
            subject
                .strip_prefix("$JS.")
                .and_then(|r| r.strip_prefix(d))
                .and_then(|r| r.strip_prefix(".API."))
        }) {
            Some(rest) => {
                local = format!("{}{rest}", api::PREFIX);
                local.as_str()
            }
            None => subject,
        };
        let Some(r) = api::handle(&js, &acc, subject, payload) else {
            return false;
        };
        if let Some(reply) = reply {
            self.route_core(reply, None, r.headers.as_deref(), &r.payload);
        }
        true
    }

    /// Stores the message in the stream that captures `subject`, if any, and sends the
    /// PubAck (or the error) to `reply`. Returns whether a stream took the message.
    fn js_store(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> bool {
        let Some(acc) = self.js.clone() else {
            return false;
        };
        let gen = acc.generation();
        if gen != self.js_gen {
            self.js_hits.clear();
            self.js_gen = gen;
        }
        let stream = match self.js_hits.get(subject) {
            Some(s) => s.clone(),
            None => {
                if self.js_hits.len() >= CACHE_MAX {
                    self.js_hits.clear();
                }
                let s = acc.capture(subject);
                self.js_hits.insert(subject.into(), s.clone());
                s
            }
        };
        let Some(stream) = stream else {
            return false;
        };
        let Ok(subj) = std::str::from_utf8(subject) else {
            return false;
        };
        let result = acc.store(&stream, subj, headers, payload, Origin::Client);
        let domain = self
            .server
            .jetstream
            .as_ref()
            .and_then(|j| j.config.domain.as_deref());
        let (ack, republished) = match result {
            Ok((ack, republished)) => (api::pub_ack(&stream.name, domain, Ok(ack)), republished),
            Err(e) => {
                tracing::debug!(
                    "{} - JetStream publish to '{}' refused: {}",
                    client_label(&self.client),
                    stream.name,
                    e.description
                );
                (api::pub_ack(&stream.name, domain, Err(e)), None)
            }
        };
        if let Some(r) = republished {
            self.route_core(r.subject.as_bytes(), None, Some(&r.headers), &r.payload);
        }
        let dirty = &mut self.batch.js_dirty;
        let at = match dirty.iter().rposition(|s| Arc::ptr_eq(s, &stream)) {
            Some(i) => i,
            None => {
                dirty.push(stream.clone());
                dirty.len() - 1
            }
        };
        if let Some(reply) = reply.filter(|_| !stream.no_ack()) {
            self.batch.js_acks.push((at, reply.into(), ack));
        }
        true
    }

    /// Group commit: writes every stream this batch stored into, then sends the PubAcks
    /// (an error instead, for a stream whose write failed).
    fn settle_js(&mut self) {
        let dirty = std::mem::take(&mut self.batch.js_dirty);
        let failed: Vec<Option<Vec<u8>>> = dirty
            .iter()
            .map(|s| match s.flush() {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!("JetStream: writing stream '{}': {}", s.name, e.description);
                    Some(api::pub_ack(&s.name, None, Err(e)))
                }
            })
            .collect();
        for (at, reply, ack) in std::mem::take(&mut self.batch.js_acks) {
            match failed.get(at).and_then(Option::as_ref) {
                Some(err) => self.route_core(&reply, None, None, err),
                None => self.route_core(&reply, None, None, &ack),
            };
        }
    }

    /// Delivers to subscriptions only (also in linked accounts); returns how many got it.
    fn route_core(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> usize {
        let gen = self.account.sublist.genid();
        if gen != self.cache_gen {
            self.cache.clear();
            self.cache_gen = gen;
        }
        let result = match self.cache.get(subject) {
            Some(r) => r.clone(),
            None => {
                if self.cache.len() >= CACHE_MAX {
                    self.cache.clear();
                }
                let r = Arc::new(self.account.sublist.matches(subject));
                self.cache.insert(subject.into(), r.clone());
                r
            }
        };
        let mut delivered = self.deliver_all(&result, subject, reply, headers, payload);
        if self.account.is_linked() || subject.starts_with(RESPONSE_PREFIX) {
            delivered += self.route_across(subject, reply, headers, payload);
        }
        delivered
    }

    /// Delivers to every plain subscription and one member of each queue group of `result`.
    fn deliver_all(
        &mut self,
        result: &SubResult<Subscription>,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> usize {
        let me = self.client.id;
        let echo = self.echo;
        let max_pending = self.max_pending;
        let batch = &mut self.batch;
        let mut delivered = 0usize;
        for sub in &result.psubs {
            if !echo && sub.client.id == me {
                continue;
            }
            if batch.deliver(sub, subject, reply, headers, payload, max_pending) {
                delivered += 1;
            }
        }
        for group in &result.qsubs {
            let n = group.len();
            let start = (batch.next_rand() % n as u64) as usize;
            for i in 0..n {
                let sub = &group[(start + i) % n];
                if !echo && sub.client.id == me {
                    continue;
                }
                if batch.deliver(sub, subject, reply, headers, payload, max_pending) {
                    delivered += 1;
                    break;
                }
            }
        }
        delivered
    }

    /// Exports and imports: responses to routed service requests, stream exports to
    /// importers, and this account's service imports. Lock order: an account's `links` (read)
    /// is held while delivering, which only takes clients' `out` locks.
    fn route_across(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> usize {
        let mut delivered = 0;
        if subject.starts_with(RESPONSE_PREFIX) {
            if let Some((importer, to)) = self.account.responses.resolve(subject) {
                let r = importer.sublist.matches(&to);
                delivered += self.deliver_all(&r, &to, None, headers, payload);
            }
        }
        if !self.account.is_linked() {
            return delivered;
        }
        let account = self.account.clone();
        let links = account.links.read();
        for link in links.streams_out.iter().filter(|l| l.matches(subject)) {
            let local = link.local_subject(subject);
            let r = link.into.sublist.matches(&local);
            delivered += self.deliver_all(&r, &local, reply, headers, payload);
        }
        for link in links.services.iter().filter(|l| l.matches(subject)) {
            let remote = link.remote_subject(subject);
            let routed_reply = reply.map(|r| {
                link.exporter.responses.register(
                    &link.exporter.response_token,
                    account.clone(),
                    r,
                    link.response_type,
                )
            });
            let r = link.exporter.sublist.matches(remote);
            delivered += self.deliver_all(&r, remote, routed_reply.as_deref(), headers, payload);
        }
        delivered
    }

    /// Tells a requester at once that nobody is listening: `NATS/1.0 503` on its reply
    /// subscription, as nats-server does for clients that set `no_responders`.
    fn send_no_responders(&mut self, reply: &[u8]) {
        let sid = {
            let subs = self.client.subs.lock();
            subs.values()
                .find(|s| subject::matches(&s.subject, reply))
                .map(|s| s.sid.clone())
        };
        let Some(sid) = sid else { return };
        let mut frame = BytesMut::with_capacity(64 + reply.len());
        let hdr = b"NATS/1.0 503\r\n\r\n";
        proto::write_hmsg_header(&mut frame, reply, &sid, None, hdr.len(), hdr.len());
        frame.extend_from_slice(hdr);
        frame.extend_from_slice(b"\r\n");
        self.send(&frame);
    }

    fn on_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        if !subject::is_valid_subject(subject) || queue.is_some_and(|q| !subject::is_valid_queue(q))
        {
            self.send_err(errors::INVALID_SUBJECT);
            return;
        }
        let mut deny_filter = None;
        if let Some(perms) = &self.perms {
            let mut err = BytesMut::new();
            if !perms.check_subscribe(subject, queue, &mut err) {
                self.send(&err);
                return;
            }
            if perms.permissions().needs_delivery_filter(subject) {
                deny_filter = Some(perms.shared());
            }
        }
        let sub = {
            let mut subs = self.client.subs.lock();
            if subs.contains_key(sid) {
                None
            } else if self.max_subs.is_some_and(|max| subs.len() >= max) {
                drop(subs);
                tracing::debug!(
                    "{} - maximum subscriptions exceeded",
                    client_label(&self.client)
                );
                self.send_err(errors::MAX_SUBSCRIPTIONS);
                return;
            } else {
                let sub = Arc::new(Subscription {
                    client: self.client.clone(),
                    account: self.account.clone(),
                    deny_filter,
                    subject: Bytes::copy_from_slice(subject),
                    queue: queue.map(Bytes::copy_from_slice),
                    sid: Bytes::copy_from_slice(sid),
                    max: AtomicU64::new(0),
                    delivered: AtomicU64::new(0),
                });
                subs.insert(sub.sid.clone(), sub.clone());
                Some(sub)
            }
        };
        if let Some(sub) = sub {
            self.account.sublist.insert(sub);
        }
        self.ok();
    }

    fn on_unsub(&mut self, sid: &[u8], max: Option<u64>) {
        let sub = self.client.subs.lock().get(sid).cloned();
        if let Some(sub) = sub {
            let keep = {
                // Deliveries update `delivered` under the outbound lock; decide under it too.
                let _out = self.client.out.lock();
                match max {
                    Some(m) if m > 0 && sub.delivered() < m => {
                        sub.max.store(m, Ordering::Relaxed);
                        true
                    }
                    _ => false,
                }
            };
            if !keep {
                self.server.remove_sub(&sub);
            }
        }
        self.ok();
    }

    /// Whether any plugin binding covers `subject` here; cached per subject because most
    /// traffic is usually outside the bound subjects.
    fn plugins_apply(&mut self, subject: &[u8]) -> bool {
        if let Some(&hit) = self.plugin_hits.get(subject) {
            return hit;
        }
        if self.plugin_hits.len() >= CACHE_MAX {
            self.plugin_hits.clear();
        }
        let hit = self.plugins.any_applies(&self.account.name, subject);
        self.plugin_hits.insert(subject.into(), hit);
        hit
    }

    /// Moves the client into `name` (created on demand), forgetting cached matches.
    fn enter_account(&mut self, name: &str) {
        if self.account.name != name {
            self.account = self.server.accounts.get_or_create(name);
            self.cache.clear();
            self.plugin_hits.clear();
            self.cache_gen = u64::MAX;
            self.js = self.server.jetstream.as_ref().map(|j| j.account(name));
            self.js_hits.clear();
            self.js_gen = u64::MAX;
        }
    }

    fn ok(&mut self) {
        if self.verbose {
            self.send(proto::OK);
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if let Queued::Yes { first: true } = self.client.queue_raw(bytes) {
            self.batch.flush.push(self.client.clone());
        }
    }

    fn send_err(&mut self, text: &str) {
        let mut b = BytesMut::with_capacity(text.len() + 10);
        proto::write_err(&mut b, text);
        self.send(&b);
    }

    /// Settles a read batch: wake writers, expire subscriptions, publish counters.
    fn end_batch(&mut self) {
        if !self.batch.js_dirty.is_empty() {
            self.settle_js();
        }
        for c in self.batch.flush.drain(..) {
            c.wake_writer.notify_one();
        }
        for sub in std::mem::take(&mut self.batch.expired) {
            self.server.remove_sub(&sub);
        }
        for c in std::mem::take(&mut self.batch.slow) {
            self.server
                .slow_consumer(&c, CloseReason::SlowConsumerPendingBytes);
        }
        let b = &mut self.batch;
        if b.in_msgs != 0 {
            self.client.in_msgs.fetch_add(b.in_msgs, Ordering::Relaxed);
            self.client
                .in_bytes
                .fetch_add(b.in_bytes, Ordering::Relaxed);
            self.server.stats.add_in(b.in_msgs, b.in_bytes);
            b.in_msgs = 0;
            b.in_bytes = 0;
        }
        if b.out_msgs != 0 {
            self.server.stats.add_out(b.out_msgs, b.out_bytes);
            b.out_msgs = 0;
            b.out_bytes = 0;
        }
    }

    /// Runs on the reader task once the connection is over, whoever closed it.
    fn cleanup(&mut self, reason: CloseReason) {
        self.client.mark_closed(reason);
        let subs: Vec<_> = self.client.subs.lock().drain().map(|(_, s)| s).collect();
        for sub in &subs {
            sub.account.sublist.remove(sub);
        }
        self.server.unregister(&self.client);
        self.release(reason);
        tracing::debug!(
            "{} - Client connection closed: {}",
            client_label(&self.client),
            self.client.close_reason().unwrap_or(reason).as_str()
        );
    }
}

// ---- Account limits and system events (see `account::events`) ----
impl Conn {
    /// Admits the client into its account: enforces the account's connection limit and
    /// takes its subscription and payload limits (a lower max_payload makes the parser
    /// refuse bigger PUBs with 'Maximum Payload Violation', as nats-server does).
    fn admit(&mut self, protocol: i64) -> Result<(), Flow> {
        if !self.account.try_add_connection() {
            tracing::error!(
                "{} - Maximum account active connections exceeded for account {}",
                client_label(&self.client),
                self.account.name
            );
            self.send_err(errors::MAX_ACCOUNT_CONNECTIONS);
            return Err(Flow::Close(CloseReason::MaxAccountConnectionsExceeded));
        }
        self.admitted = true;
        self.max_subs = self.account.max_subscriptions();
        if let Some(max) = self.account.max_payload() {
            if max < self.limits.max_payload {
                self.limits.max_payload = max;
                // Like nats-server, tell clients that understand async INFO the new limit.
                if protocol >= 1 {
                    self.send_max_payload_info(max);
                }
            }
        }
        Ok(())
    }

    fn send_max_payload_info(&mut self, max: usize) {
        let opts = self.server.options();
        let info = super::info::client_info(&self.server, &opts, &self.client, None);
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&info) else {
            return;
        };
        v["max_payload"] = serde_json::json!(max);
        let Ok(info) = serde_json::to_vec(&v) else {
            return;
        };
        let mut b = BytesMut::new();
        proto::write_info(&mut b, &info);
        self.send(&b);
    }

    /// Undoes `admit` when the connection ends, and tells the system account.
    fn release(&mut self, reason: CloseReason) {
        if !std::mem::take(&mut self.admitted) {
            return;
        }
        self.account.remove_connection();
        let reason = self.client.close_reason().unwrap_or(reason);
        crate::account::events::client_disconnect(
            &self.server,
            &self.client,
            &self.account.name,
            reason,
        );
    }
}

/// Resolves at the authorization's expiry; never when there is none.
async fn expiry(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// An authorizer's permissions in the configuration's terms (empty allow = all not denied).
fn plugin_permissions(a: &crate::plugin::Allowed) -> PermissionSpec {
    let side = |p: &crate::plugin::Permission| {
        (!p.allow.is_empty() || !p.deny.is_empty()).then(|| SubjectPermission {
            allow: (!p.allow.is_empty()).then(|| p.allow.clone()),
            deny: (!p.deny.is_empty()).then(|| p.deny.clone()),
        })
    };
    PermissionSpec {
        publish: side(&a.publish),
        subscribe: side(&a.subscribe),
        response: a.allow_responses.as_ref().map(|r| ResponsePermission {
            max_msgs: i64::from(r.max_msgs),
            expires: Duration::from_millis(r.expires_ms),
        }),
    }
}

fn close_reason_for(e: &proto::ProtoError) -> CloseReason {
    match e.client_error() {
        Some(errors::MAX_PAYLOAD) => CloseReason::MaxPayloadExceeded,
        Some(errors::MAX_CONTROL_LINE) => CloseReason::MaxControlLineExceeded,
        _ => CloseReason::ProtocolViolation,
    }
}
