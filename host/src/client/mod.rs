//! Clients as the rest of the broker sees them: the part of a connection that other
//! connections touch (its outbound buffer and its subscriptions), without the socket.
//!
//! A publisher's task appends frames straight into a subscriber's `Outbound` under a short
//! mutex and, once per read batch, wakes the subscriber's writer task. Only the writer task
//! touches the socket's write half; only the reader task touches the read half.
//!
//! *Internal clients* (JetStream's API and stream capture, the `$SYS` services) are clients
//! too: they subscribe in account sublists like any connection, and a delivery to them calls
//! their [`Internal`] handler instead of queuing bytes (see `internal`).

mod internal;
mod subscription;

pub use internal::{Commit, Durable, Effects, Internal};
pub use subscription::Subscription;

use crate::proto::{self, MsgRef};
use crate::util::unix_nanos;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::Notify;

/// Why a connection ended, as nats-server names it in `/connz?state=closed` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    StaleConnection,
    ProtocolViolation,
    AuthenticationViolation,
    AuthenticationTimeout,
    AuthenticationExpired,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    MaxConnectionsExceeded,
    MaxAccountConnectionsExceeded,
    TlsHandshakeError,
    ServerShutdown,
    WriteError,
    ReadError,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
        }
    }
}

impl From<proto::ServerError> for CloseReason {
    /// Why a connection ends after a closing error of the table in `proto::errors`.
    fn from(e: proto::ServerError) -> Self {
        use proto::ServerError as E;
        match e {
            E::MaxControlLineExceeded => CloseReason::MaxControlLineExceeded,
            E::MaxPayloadViolation => CloseReason::MaxPayloadExceeded,
            E::AuthorizationViolation => CloseReason::AuthenticationViolation,
            E::AuthenticationTimeout => CloseReason::AuthenticationTimeout,
            E::AuthenticationExpired => CloseReason::AuthenticationExpired,
            E::StaleConnection => CloseReason::StaleConnection,
            E::MaxConnectionsExceeded => CloseReason::MaxConnectionsExceeded,
            E::MaxAccountConnectionsExceeded => CloseReason::MaxAccountConnectionsExceeded,
            E::SecureConnectionTlsRequired => CloseReason::TlsHandshakeError,
            E::SlowConsumer => CloseReason::SlowConsumerPendingBytes,
            E::UnknownProtocolOperation
            | E::InvalidClientProtocol
            | E::NoRespondersRequiresHeaders
            | E::InvalidSubject
            | E::InvalidPublishSubject
            | E::MaxSubscriptionsExceeded => CloseReason::ProtocolViolation,
        }
    }
}

/// Bytes waiting to be written to one client, and the counters that are cheapest to keep
/// under the lock a delivery already holds.
pub(crate) struct Outbound {
    pub buf: BytesMut,
    /// Set when the client is already in some publisher's flush list for this batch.
    pub flush_pending: bool,
    pub closed: Option<CloseReason>,
    pub out_msgs: u64,
    pub out_bytes: u64,
    /// Reply subjects of requests delivered to a client with `allow_responses`, waiting for
    /// its reader task to record them (see `Client::tracks_replies`).
    pub new_replies: Vec<Box<[u8]>>,
}

/// What the client declared in CONNECT, kept for monitoring.
#[derive(Debug, Clone, Default)]
pub struct ConnMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    pub user: Option<String>,
    pub account: String,
    pub tls_version: Option<String>,
    /// The verified client certificate's identity (mutual TLS).
    pub tls_identity: Option<Arc<crate::tls::CertIdentity>>,
    /// Operator mode: the user JWT's identity, re-checked when its account is updated.
    pub jwt_user: Option<crate::auth::identity::JwtIdentity>,
    /// The credentials presented in CONNECT (never shown in monitoring).
    pub(crate) creds: Option<Arc<ConnectCreds>>,
}

/// What a client authenticated with, so that a reload can ask whether the new configuration
/// still accepts it (as nats-server re-checks its clients after a reload).
#[derive(Clone, Default)]
pub struct ConnectCreds {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    pub nkey: Option<String>,
    pub sig: Option<String>,
    pub jwt: Option<String>,
    /// The nonce the client signed.
    pub nonce: Option<String>,
    /// An authorizer plugin or the auth callout admitted it (a reload does not re-ask).
    pub by_plugin: bool,
}

impl std::fmt::Debug for ConnectCreds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectCreds")
            .field("user", &self.user)
            .field("by_plugin", &self.by_plugin)
            .finish_non_exhaustive()
    }
}

/// Per-client state shared between its own tasks, publishers and monitoring.
pub struct Client {
    pub id: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub(crate) out: Mutex<Outbound>,
    /// Wakes the writer task: new bytes or closing.
    pub(crate) wake_writer: Notify,
    /// Wakes the reader task when someone else closes this client.
    pub(crate) wake_reader: Notify,
    /// Whether the client understands HMSG (CONNECT `headers`).
    pub(crate) headers: AtomicBool,
    /// Whether the client's permissions have `allow_responses`: then the reply subjects of
    /// messages delivered to it are remembered so it may publish responses to them.
    pub(crate) tracks_replies: AtomicBool,
    pub(crate) subs: Mutex<FxHashMap<Bytes, Arc<Subscription>>>,
    pub(crate) meta: Mutex<ConnMeta>,
    pub(crate) in_msgs: AtomicU64,
    pub(crate) in_bytes: AtomicU64,
    /// Unix nanoseconds of the last inbound activity (monitoring only).
    pub(crate) last_activity: AtomicU64,
    pub(crate) rtt_nanos: AtomicU64,
    /// New permissions for the reader task to apply (an account JWT update): `Some(None)`
    /// lifts all restrictions. `perms_changed` says one is waiting, so that the reader task
    /// only pays an atomic load per read batch.
    pub(crate) pending_perms: Mutex<Option<Option<Arc<crate::auth::permissions::Permissions>>>>,
    pub(crate) perms_changed: AtomicBool,
    /// The permissions this client was granted (for `$SYS.REQ.USER.INFO` and monitoring; the
    /// reader task enforces its own copy).
    pub(crate) granted: Mutex<Option<Arc<crate::auth::permissions::Permissions>>>,
    /// Set for internal clients: deliveries call this handler instead of queuing bytes.
    pub(crate) internal: Option<Arc<dyn Internal>>,
}

/// Result of queuing a frame for a client.
pub(crate) enum Queued {
    /// Queued; `first` when the client was not yet in a flush list.
    Yes { first: bool },
    /// Nothing queued: the client is closed (or closing), or the subscription is spent.
    Closed,
    /// Queuing would exceed max_pending: the client must be closed as a slow consumer.
    SlowConsumer,
}

impl Client {
    pub(crate) fn new(id: u64, addr: SocketAddr) -> Self {
        Client {
            id,
            addr,
            start: SystemTime::now(),
            out: Mutex::new(Outbound {
                buf: BytesMut::new(),
                flush_pending: false,
                closed: None,
                out_msgs: 0,
                out_bytes: 0,
                new_replies: Vec::new(),
            }),
            wake_writer: Notify::new(),
            wake_reader: Notify::new(),
            headers: AtomicBool::new(false),
            tracks_replies: AtomicBool::new(false),
            subs: Mutex::new(FxHashMap::default()),
            meta: Mutex::new(ConnMeta::default()),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(unix_nanos()),
            rtt_nanos: AtomicU64::new(0),
            pending_perms: Mutex::new(None),
            perms_changed: AtomicBool::new(false),
            granted: Mutex::new(None),
            internal: None,
        }
    }

    /// An internal client (no socket): `handler` takes every message its subscriptions get.
    /// It never appears in `/connz`; `kind` names it in logs.
    pub fn new_internal(id: u64, kind: &str, handler: Arc<dyn Internal>) -> Self {
        let mut c = Client::new(id, SocketAddr::from(([0, 0, 0, 0], 0)));
        c.internal = Some(handler);
        c.headers.store(true, Ordering::Relaxed);
        c.meta.get_mut().name = kind.to_string();
        c
    }

    /// How logs name this client: `addr - cid:N`, as nats-server does.
    pub fn label(&self) -> String {
        format!("{} - cid:{}", self.addr, self.id)
    }

    /// The handler of an internal client.
    #[inline]
    pub fn internal(&self) -> Option<&Arc<dyn Internal>> {
        self.internal.as_ref()
    }

    /// The permissions granted at CONNECT (or by the last update), if restricted.
    pub fn granted_permissions(&self) -> Option<Arc<crate::auth::permissions::Permissions>> {
        self.granted.lock().clone()
    }

    /// Appends raw protocol bytes (INFO, -ERR) the server sends on its own initiative.
    pub(crate) fn queue_raw(&self, bytes: &[u8]) -> Queued {
        self.queue_reply(bytes, usize::MAX)
    }

    /// Appends protocol bytes the client asked for (PONG, +OK, -ERR): they count against
    /// `max_pending` like messages do, so a client that sends PINGs and never reads is a slow
    /// consumer, not a memory leak.
    pub(crate) fn queue_reply(&self, bytes: &[u8], max_pending: usize) -> Queued {
        let mut out = self.out.lock();
        if out.closed.is_some() {
            return Queued::Closed;
        }
        if out.buf.len() + bytes.len() > max_pending {
            return Queued::SlowConsumer;
        }
        out.buf.extend_from_slice(bytes);
        let first = !out.flush_pending;
        out.flush_pending = true;
        Queued::Yes { first }
    }

    /// Queues one message for subscription `sub` of this client. Headers are dropped (MSG
    /// instead of HMSG) for a client that did not ask for them, as nats-server does.
    pub(crate) fn queue_msg(
        &self,
        sub: &Subscription,
        msg: &MsgRef<'_>,
        max_pending: usize,
        auto_unsub: &mut bool,
    ) -> Queued {
        let MsgRef {
            subject,
            reply,
            headers,
            payload,
        } = *msg;
        let with_headers = headers.filter(|_| self.headers.load(Ordering::Relaxed));
        let hdr_len = with_headers.map_or(0, <[u8]>::len);
        let mut out = self.out.lock();
        if out.closed.is_some() {
            return Queued::Closed;
        }
        // Auto-unsubscribe bookkeeping happens under this lock, which serializes deliveries
        // to this client, so plain loads and stores suffice.
        let max = sub.max.load(Ordering::Relaxed);
        let delivered = sub.delivered.load(Ordering::Relaxed) + 1;
        if max != 0 && delivered > max {
            // Already at its auto-unsubscribe limit (removal is pending): not delivered, so a
            // queue group picks another member.
            return Queued::Closed;
        }
        let frame = subject.len() + sub.sid.len() + hdr_len + payload.len() + 64;
        if out.buf.len() + frame > max_pending {
            return Queued::SlowConsumer;
        }
        sub.delivered.store(delivered, Ordering::Relaxed);
        if max != 0 && delivered == max {
            *auto_unsub = true;
        }
        let buf = &mut out.buf;
        match with_headers {
            Some(h) => {
                proto::write_hmsg_header(
                    buf,
                    subject,
                    &sub.sid,
                    reply,
                    h.len(),
                    h.len() + payload.len(),
                );
                buf.extend_from_slice(h);
            }
            None => proto::write_msg_header(buf, subject, &sub.sid, reply, payload.len()),
        }
        buf.extend_from_slice(payload);
        buf.extend_from_slice(b"\r\n");
        out.out_msgs += 1;
        out.out_bytes += (hdr_len + payload.len()) as u64;
        if let Some(r) = reply {
            if self.tracks_replies.load(Ordering::Relaxed) && out.new_replies.len() < 4096 {
                out.new_replies.push(r.into());
            }
        }
        let first = !out.flush_pending;
        out.flush_pending = true;
        Queued::Yes { first }
    }

    /// Hands new permissions to the reader task, which applies them before it processes its
    /// next read batch (subscriptions are adjusted by the caller, see
    /// `system::requests::apply_to_connections` and `path::apply_permissions`).
    pub(crate) fn set_permissions(
        &self,
        perms: Option<Arc<crate::auth::permissions::Permissions>>,
    ) {
        *self.granted.lock() = perms.clone();
        *self.pending_perms.lock() = Some(perms);
        self.perms_changed.store(true, Ordering::Release);
    }

    /// The permissions handed over by `set_permissions`, if any are waiting. One relaxed
    /// atomic load when there are none.
    #[inline]
    pub(crate) fn take_permissions(
        &self,
    ) -> Option<Option<Arc<crate::auth::permissions::Permissions>>> {
        if !self.perms_changed.load(Ordering::Relaxed)
            || !self.perms_changed.swap(false, Ordering::Acquire)
        {
            return None;
        }
        self.pending_perms.lock().take()
    }

    /// nats-server's `ClientInfo` object, as events and advisories carry it (empty strings
    /// left out, as Go's `omitempty` does).
    pub fn event_info(&self, stop: Option<SystemTime>) -> serde_json::Value {
        use serde_json::json;
        let meta = self.meta();
        let mut m = serde_json::Map::new();
        m.insert("start".into(), json!(crate::timefmt::rfc3339(self.start)));
        m.insert("host".into(), json!(self.addr.ip().to_string()));
        m.insert("id".into(), json!(self.id));
        m.insert("acc".into(), json!(meta.account));
        let mut opt = |k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        };
        opt("user", meta.user.as_deref().unwrap_or(""));
        opt("name", &meta.name);
        opt("lang", &meta.lang);
        opt("ver", &meta.version);
        let rtt = self.rtt().as_nanos();
        if rtt != 0 {
            m.insert("rtt".into(), json!(u64::try_from(rtt).unwrap_or(u64::MAX)));
        }
        if let Some(stop) = stop {
            m.insert("stop".into(), json!(crate::timefmt::rfc3339(stop)));
        }
        m.insert("kind".into(), json!("Client"));
        m.insert("client_type".into(), json!("nats"));
        serde_json::Value::Object(m)
    }

    /// Marks the client closed and wakes both of its tasks; the reader task cleans up.
    /// Returns false when it was already closed.
    pub(crate) fn mark_closed(&self, reason: CloseReason) -> bool {
        {
            let mut out = self.out.lock();
            if out.closed.is_some() {
                return false;
            }
            out.closed = Some(reason);
        }
        self.wake_writer.notify_one();
        self.wake_reader.notify_one();
        true
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.out.lock().closed
    }

    pub fn pending_bytes(&self) -> usize {
        self.out.lock().buf.len()
    }

    pub fn out_stats(&self) -> (u64, u64) {
        let o = self.out.lock();
        (o.out_msgs, o.out_bytes)
    }

    pub fn in_stats(&self) -> (u64, u64) {
        (
            self.in_msgs.load(Ordering::Relaxed),
            self.in_bytes.load(Ordering::Relaxed),
        )
    }

    pub fn meta(&self) -> ConnMeta {
        self.meta.lock().clone()
    }

    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.subs.lock().values().cloned().collect()
    }

    pub fn last_activity_nanos(&self) -> u64 {
        self.last_activity.load(Ordering::Relaxed)
    }

    pub fn rtt(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.rtt_nanos.load(Ordering::Relaxed))
    }
}
