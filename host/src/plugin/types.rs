//! Natrium's own types for what crosses the plugin boundary. The rest of the broker uses
//! these; the types `bindgen!` generates from `wit/` stay inside `plugin/` (see
//! `bindings.rs` for the conversions).

use bytes::Bytes;

/// A plugin's reason (a drop or a deny) is kept to this many bytes (cut with "…"): it goes
/// into log lines and `$SYS` audit events, and a guest may return megabytes.
pub const MAX_REASON_BYTES: usize = 4096;

/// A reason from a guest, cut to [`MAX_REASON_BYTES`].
pub(crate) fn reason(mut text: String) -> String {
    if text.len() > MAX_REASON_BYTES {
        text = crate::util::truncate_text(&text, MAX_REASON_BYTES).into_owned();
    }
    text
}

/// The client's TLS certificate identity, when mutual TLS is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The certificate's subject distinguished name (RFC 4514).
    pub subject: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// SHA-256 fingerprint of the DER certificate, lower-case hex.
    pub fingerprint: String,
}

/// Everything known about a connecting client at CONNECT time (input of an authorizer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub jwt: Option<String>,
    pub nkey: Option<String>,
    /// The broker verified the client's signature of the INFO nonce with `nkey`.
    pub nkey_verified: bool,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub client_ip: String,
    pub client_port: u16,
    pub server_name: String,
    pub server_id: String,
    pub tls: Option<TlsIdentity>,
}

/// Subjects allowed and denied (wildcards allowed; deny wins; empty allow = all not denied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// `allow_responses`: publishing to reply subjects of received requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Responses per request (0 = 1).
    pub max_msgs: u32,
    /// Milliseconds after the request (0 = no limit).
    pub expires_ms: u64,
}

/// Optional per-connection limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_subscriptions: Option<u32>,
    pub max_payload: Option<u32>,
}

/// A positive authorization decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    /// The account the client is placed in.
    pub account: String,
    /// The user name reported in monitoring and logs.
    pub user: String,
    pub publish: Permission,
    pub subscribe: Permission,
    pub allow_responses: Option<ResponsePermission>,
    pub limits: Limits,
    /// When the authorization ends, nanoseconds since the Unix epoch.
    pub expires_at: Option<u64>,
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Allowed),
    /// Refused, with the reason (logged).
    Deny(String),
}

/// A published message as a transformer sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub reply: Option<String>,
    /// Header fields without the `NATS/1.0` status line; names may repeat, order is kept.
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

/// A message lent to a batch transformer for one call: nothing is copied until the batch is
/// staged for the guest (see `sandbox::PendingBatch`).
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    /// The subject's bytes (a NATS subject; read lossily as UTF-8).
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub headers: HeadersRef<'a>,
    pub payload: &'a [u8],
}

/// A message's headers, in whichever form they are at hand.
#[derive(Debug, Clone, Copy)]
pub enum HeadersRef<'a> {
    None,
    /// A whole `NATS/1.0` header block, as published.
    Block(&'a [u8]),
    /// Parsed fields (a message a plugin already rewrote).
    Fields(&'a [(String, String)]),
}

impl MessageRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Message {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Message {
            subject: lossy(self.subject),
            reply: self.reply.map(lossy),
            headers: match self.headers {
                HeadersRef::None => Vec::new(),
                HeadersRef::Block(b) => crate::proto::headers::fields(b),
                HeadersRef::Fields(f) => f.to_vec(),
            },
            payload: Bytes::copy_from_slice(self.payload),
        }
    }
}

impl Message {
    /// Lends this message to a batch transformer.
    pub fn as_ref(&self) -> MessageRef<'_> {
        MessageRef {
            subject: self.subject.as_bytes(),
            reply: self.reply.as_deref().map(str::as_bytes),
            headers: HeadersRef::Fields(&self.headers),
            payload: &self.payload,
        }
    }
}

/// What a transformer decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Deliver the message unchanged.
    Pass,
    /// Deliver this message instead.
    Replace(Message),
    /// Do not deliver; the reason is logged (and sent to the publisher under `reject`).
    Drop(String),
}
