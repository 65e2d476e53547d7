//! Every error text a client can see from the server, in one table.
//!
//! Each text was checked against nats-server v2.9.10 over TCP (see the
//! module docs of [`crate::proto`] for the transcript table). The texts are
//! case-sensitive on the wire and client libraries match on them, so they must
//! not be "tidied": note the lower-case `maximum control line exceeded`,
//! `maximum connections exceeded` and `maximum subscriptions exceeded`, which
//! are Go `error` values printed verbatim, next to the Title Case ones that
//! are literal strings in nats-server.
//!
//! Framing on the wire is `-ERR '<text>'\r\n` (see [`super::encode::write_err`]).

use bytes::BytesMut;

/// A client-visible server error, with its exact text and whether nats-server
/// closes the connection after sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerError {
    /// Any byte sequence the parser does not recognise, and a PUB/HPUB payload
    /// not followed by `\r\n`. Closes.
    UnknownProtocolOperation,
    /// A control-line argument longer than `max_control_line`. Closes.
    MaxControlLineExceeded,
    /// PUB/HPUB declaring more than `max_payload` bytes (checked on the
    /// control line, before the payload arrives). Closes.
    MaxPayloadViolation,
    /// Bad credentials in CONNECT, or any op other than CONNECT first while
    /// auth is required. Closes.
    AuthorizationViolation,
    /// No CONNECT within the authorization timeout. Closes.
    AuthenticationTimeout,
    /// `ping_max` PINGs outstanding when the ping timer fires again. Closes
    /// (the server sends this after its own last unanswered PING).
    StaleConnection,
    /// `max_connections` reached; sent right after INFO. Closes.
    MaxConnectionsExceeded,
    /// SUB with a subject that is not a valid subscription subject. Stays open.
    InvalidSubject,
    /// PUB to a subject with wildcards/empty tokens when `pedantic` is on
    /// (pedantic defaults to true). Stays open, and — verified — nats-server
    /// still delivers the message afterwards (`-ERR` then `MSG foo.* ...`).
    InvalidPublishSubject,
    /// SUB beyond `max_subscriptions`. Stays open; the SUB is dropped.
    MaxSubscriptionsExceeded,
    /// Plain-text client on a TLS-required listener. nats-server enqueues it
    /// but in practice closes without flushing (skipFlushOnClose), so clients
    /// usually see nothing. Closes.
    SecureConnectionTlsRequired,
    /// CONNECT with `protocol` other than 0 or 1. Closes.
    InvalidClientProtocol,
    /// CONNECT with `no_responders: true` but not `headers: true`. Closes.
    NoRespondersRequiresHeaders,
    /// Not sent to the client by nats-server: a slow consumer is just closed
    /// (the server logs "Slow Consumer Detected"). Kept for logs/monitoring.
    SlowConsumer,
    /// An account's `max_connections` reached (sent after CONNECT, verified against
    /// nats-server v2.9.10). Closes.
    MaxAccountConnectionsExceeded,
    /// The grant a client connected with ran out (nats-server's text for an expired user
    /// JWT; natrium also uses it for an authorizer plugin's expiry). Closes.
    AuthenticationExpired,
}

impl ServerError {
    /// The exact text between the quotes of `-ERR '...'`.
    pub const fn text(self) -> &'static str {
        match self {
            Self::UnknownProtocolOperation => "Unknown Protocol Operation",
            Self::MaxControlLineExceeded => "maximum control line exceeded",
            Self::MaxPayloadViolation => "Maximum Payload Violation",
            Self::AuthorizationViolation => "Authorization Violation",
            Self::AuthenticationTimeout => "Authentication Timeout",
            Self::StaleConnection => "Stale Connection",
            Self::MaxConnectionsExceeded => "maximum connections exceeded",
            Self::InvalidSubject => "Invalid Subject",
            Self::InvalidPublishSubject => "Invalid Publish Subject",
            Self::MaxSubscriptionsExceeded => "maximum subscriptions exceeded",
            Self::SecureConnectionTlsRequired => "Secure Connection - TLS Required",
            Self::InvalidClientProtocol => "invalid client protocol",
            Self::NoRespondersRequiresHeaders => "no responders requires headers support",
            Self::SlowConsumer => "Slow Consumer",
            Self::MaxAccountConnectionsExceeded => "maximum account active connections exceeded",
            Self::AuthenticationExpired => "User Authentication Expired",
        }
    }

    /// Whether nats-server closes the connection after sending this error.
    pub const fn closes_connection(self) -> bool {
        !matches!(
            self,
            Self::InvalidSubject | Self::InvalidPublishSubject | Self::MaxSubscriptionsExceeded
        )
    }

    /// Whether nats-server actually puts this error on the wire.
    pub const fn sent_to_client(self) -> bool {
        !matches!(self, Self::SlowConsumer)
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// Text constants, for callers that prefer plain strings.
pub const UNKNOWN_PROTOCOL_OPERATION: &str = ServerError::UnknownProtocolOperation.text();
pub const MAX_CONTROL_LINE_EXCEEDED: &str = ServerError::MaxControlLineExceeded.text();
pub const MAX_PAYLOAD_VIOLATION: &str = ServerError::MaxPayloadViolation.text();
pub const AUTHORIZATION_VIOLATION: &str = ServerError::AuthorizationViolation.text();
pub const AUTHENTICATION_TIMEOUT: &str = ServerError::AuthenticationTimeout.text();
pub const STALE_CONNECTION: &str = ServerError::StaleConnection.text();
pub const MAX_CONNECTIONS_EXCEEDED: &str = ServerError::MaxConnectionsExceeded.text();
pub const INVALID_SUBJECT: &str = ServerError::InvalidSubject.text();
pub const INVALID_PUBLISH_SUBJECT: &str = ServerError::InvalidPublishSubject.text();
pub const MAX_SUBSCRIPTIONS_EXCEEDED: &str = ServerError::MaxSubscriptionsExceeded.text();
pub const SECURE_CONNECTION_TLS_REQUIRED: &str = ServerError::SecureConnectionTlsRequired.text();
pub const INVALID_CLIENT_PROTOCOL: &str = ServerError::InvalidClientProtocol.text();
pub const NO_RESPONDERS_REQUIRES_HEADERS: &str = ServerError::NoRespondersRequiresHeaders.text();
pub const SLOW_CONSUMER: &str = ServerError::SlowConsumer.text();

pub const MAX_ACCOUNT_CONNECTIONS: &str = ServerError::MaxAccountConnectionsExceeded.text();

/// Short aliases (used by the server layer).
pub const AUTH_VIOLATION: &str = AUTHORIZATION_VIOLATION;
pub const AUTH_TIMEOUT: &str = AUTHENTICATION_TIMEOUT;
pub const MAX_CONNECTIONS: &str = MAX_CONNECTIONS_EXCEEDED;
pub const MAX_CONTROL_LINE: &str = MAX_CONTROL_LINE_EXCEEDED;
pub const MAX_PAYLOAD: &str = MAX_PAYLOAD_VIOLATION;
pub const MAX_SUBSCRIPTIONS: &str = MAX_SUBSCRIPTIONS_EXCEEDED;

/// Prefix of the publish permission error; the subject follows, Go-`%q`-quoted.
pub const PERMISSIONS_VIOLATION_PUBLISH_PREFIX: &str = "Permissions Violation for Publish to ";
/// Prefix of the subscribe permission error; the subject follows, Go-`%q`-quoted.
pub const PERMISSIONS_VIOLATION_SUBSCRIPTION_PREFIX: &str =
    "Permissions Violation for Subscription to ";
/// Infix before the queue name of a denied queue subscription.
pub const PERMISSIONS_VIOLATION_QUEUE_INFIX: &str = " using queue ";

/// Writes `-ERR 'Permissions Violation for Publish to "<subject>"'\r\n`.
/// Connection stays open (verified).
pub fn write_publish_violation(out: &mut BytesMut, subject: &[u8]) {
    out.reserve(PERMISSIONS_VIOLATION_PUBLISH_PREFIX.len() + subject.len() + 12);
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(PERMISSIONS_VIOLATION_PUBLISH_PREFIX.as_bytes());
    write_go_quoted(out, subject);
    out.extend_from_slice(b"'\r\n");
}

/// Writes `-ERR 'Permissions Violation for Subscription to "<subject>"'\r\n`,
/// or with ` using queue "<queue>"` appended for a queue subscription.
/// Connection stays open (verified).
pub fn write_subscription_violation(out: &mut BytesMut, subject: &[u8], queue: Option<&[u8]>) {
    out.reserve(
        PERMISSIONS_VIOLATION_SUBSCRIPTION_PREFIX.len()
            + subject.len()
            + queue.map_or(0, |q| q.len() + PERMISSIONS_VIOLATION_QUEUE_INFIX.len() + 2)
            + 12,
    );
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(PERMISSIONS_VIOLATION_SUBSCRIPTION_PREFIX.as_bytes());
    write_go_quoted(out, subject);
    if let Some(q) = queue {
        out.extend_from_slice(PERMISSIONS_VIOLATION_QUEUE_INFIX.as_bytes());
        write_go_quoted(out, q);
    }
    out.extend_from_slice(b"'\r\n");
}

/// Appends `s` quoted the way Go's `%q` (strconv.Quote) does: surrounding
/// double quotes; `"` and `\` backslash-escaped; `\a \b \f \n \r \t \v`;
/// other ASCII control bytes and invalid UTF-8 as `\xNN`; non-ASCII control
/// or whitespace characters as `\uNNNN` (an approximation of Go's IsPrint);
/// everything else verbatim.
pub fn write_go_quoted(out: &mut BytesMut, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    fn hex_byte(out: &mut BytesMut, b: u8) {
        out.extend_from_slice(&[
            b'\\',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    }
    out.extend_from_slice(b"\"");
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\u{7}' => out.extend_from_slice(b"\\a"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{b}' => out.extend_from_slice(b"\\v"),
                c if c.is_ascii() => {
                    if c.is_ascii_control() {
                        hex_byte(out, c as u8);
                    } else {
                        out.extend_from_slice(&[c as u8]);
                    }
                }
                c if c.is_control() || c.is_whitespace() => {
                    let cp = u32::from(c);
                    if cp > 0xffff {
                        out.extend_from_slice(format!("\\U{cp:08x}").as_bytes());
                    } else {
                        out.extend_from_slice(format!("\\u{cp:04x}").as_bytes());
                    }
                }
                c => {
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        for &b in chunk.invalid() {
            hex_byte(out, b);
        }
    }
    out.extend_from_slice(b"\"");
}

/// What follows the Go-quoted subject in the `-ERR` a publisher gets when a mapper or
/// transformer plugin bound with `on_failure: reject` refuses its message (natrium only;
/// nats-server has no plugins); the plugin's reason comes after it.
pub const MESSAGE_REJECTED_INFIX: &str = ": Message Rejected: ";

/// Writes `-ERR 'Permissions Violation for Publish to "<subject>": Message Rejected:
/// <reason>'\r\n`. The official clients (nats.go, nats-py, nats.js) treat an `-ERR` that
/// contains "permissions violation" as non-fatal — they report it to the error callback and
/// stay connected (nats.js also fails a pending request to that subject at once) — where any
/// other unknown `-ERR` closes the connection. `reason` must already be free of `'` and
/// control characters. Connection stays open.
pub fn write_publish_rejected(out: &mut BytesMut, subject: &[u8], reason: &str) {
    out.reserve(
        PERMISSIONS_VIOLATION_PUBLISH_PREFIX.len()
            + MESSAGE_REJECTED_INFIX.len()
            + subject.len()
            + reason.len()
            + 12,
    );
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(PERMISSIONS_VIOLATION_PUBLISH_PREFIX.as_bytes());
    write_go_quoted(out, subject);
    out.extend_from_slice(MESSAGE_REJECTED_INFIX.as_bytes());
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

pub const AUTH_EXPIRED: &str = ServerError::AuthenticationExpired.text();
