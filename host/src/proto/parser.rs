//! The client-protocol parser: one frame per call, re-parsed from its start
//! when it was incomplete. See the module docs of [`crate::proto`] for the
//! exact nats-server behaviours mirrored here.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use memchr::memchr;

use super::errors::ServerError;

/// Limits enforced while parsing, before anything is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest control-line argument (the bytes after the op name and its
    /// separating blanks, without the line end), as nats-server measures it.
    pub max_control_line: usize,
    /// Largest PUB payload / HPUB total size.
    pub max_payload: usize,
}

impl Default for Limits {
    /// nats-server's defaults: 4096 and 1 MiB.
    fn default() -> Self {
        Self {
            max_control_line: 4096,
            max_payload: 1024 * 1024,
        }
    }
}

/// One operation sent by a client. All slices borrow the parse buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp<'a> {
    /// The raw argument after `CONNECT` (normally JSON; not validated here —
    /// see [`super::ConnectOptions::parse`]).
    Connect(&'a [u8]),
    Pub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        payload: &'a [u8],
    },
    Hpub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        /// The first `hdr_len` bytes (normally `NATS/1.0...\r\n\r\n`; the
        /// content is not validated, exactly like nats-server).
        headers: &'a [u8],
        /// The remaining `total_len - hdr_len` bytes.
        payload: &'a [u8],
    },
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    Unsub {
        sid: &'a [u8],
        /// `Some(n)` only for a valid positive count (1..=999_999_999, digits
        /// only, at most 9 of them — nats-server's `parseSize`). `None` means
        /// "remove now": that covers an absent count and also `0`, `-1`, `x`
        /// or a 10-digit number, all of which nats-server silently treats as
        /// an immediate unsubscribe (verified).
        max: Option<u64>,
    },
    Ping,
    Pong,
    /// The raw argument after `INFO`. nats-server ignores a client's INFO if
    /// it is valid JSON but closes the connection, sending nothing, if not.
    Info(&'a [u8]),
    /// `+OK` (anything after it up to the line end is ignored).
    Ok,
    /// The raw argument after `-ERR `. nats-server closes the connection on
    /// receiving it, sending nothing.
    Err(&'a [u8]),
}

/// The result of one successful [`parse`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole frame; `consumed` bytes of the buffer belong to it.
    Op { op: ClientOp<'a>, consumed: usize },
    /// Not a whole frame yet. `need` = total bytes the frame needs when known
    /// (control line parsed, payload length known), so the caller can
    /// reserve; `None` while the control line is incomplete.
    Incomplete { need: Option<usize> },
}

/// Why a buffer can never become a valid frame. Every variant is fatal: the
/// server closes the connection, after sending [`ProtoError::client_error`]
/// as `-ERR '...'` when that is `Some`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Unrecognised op name, missing blank after an op name that needs one,
    /// a line starting with whitespace, an empty line, `MSG`/`HMSG`/`RS+`...
    #[error("unknown protocol operation")]
    UnknownOp,
    /// The bytes after a PUB/HPUB payload are not `\r\n`.
    #[error("payload not followed by CRLF")]
    PayloadTerminator,
    /// A control-line argument longer than `max_control_line`, or no line end
    /// within that many bytes.
    #[error("maximum control line exceeded (max {max})")]
    MaxControlLine { max: usize },
    /// PUB/HPUB declaring a size above `max_payload`.
    #[error("maximum payload violation: {size} > {max}")]
    MaxPayload { size: usize, max: usize },
    /// PUB with other than 2 or 3 arguments, or a size that is not 1–9 digits.
    #[error("processPub Parse Error")]
    PubArgs,
    /// PUB whose size is not 1–9 digits.
    #[error("processPub Bad or Missing Size")]
    PubSize,
    /// HPUB with other than 3 or 4 arguments, or a size that is not 1–9 digits.
    #[error("processHeaderPub Parse Error")]
    HpubArgs,
    /// HPUB whose header or total size is not 1–9 digits.
    #[error("processHeaderPub Bad or Missing Size")]
    HpubSize,
    /// HPUB header size larger than its total size.
    #[error("HPUB header size larger than total size")]
    HpubHeaderTooLarge,
    /// SUB with other than 2 or 3 arguments.
    #[error("processSub Parse Error")]
    SubArgs,
    /// UNSUB with other than 1 or 2 arguments.
    #[error("processUnsub Parse Error")]
    UnsubArgs,
}

impl ProtoError {
    /// The `-ERR` that nats-server sends before closing, or `None` when it
    /// closes without sending anything (all the argument errors).
    pub const fn client_error(&self) -> Option<&'static str> {
        match self.server_error() {
            Some(e) => Some(e.text()),
            None => None,
        }
    }

    /// The same as [`Self::client_error`], as a [`ServerError`].
    pub const fn server_error(&self) -> Option<ServerError> {
        match self {
            Self::UnknownOp | Self::PayloadTerminator => {
                Some(ServerError::UnknownProtocolOperation)
            }
            Self::MaxControlLine { .. } => Some(ServerError::MaxControlLineExceeded),
            Self::MaxPayload { .. } => Some(ServerError::MaxPayloadViolation),
            Self::PubArgs
            | Self::PubSize
            | Self::HpubSize
            | Self::HpubArgs
            | Self::HpubHeaderTooLarge
            | Self::SubArgs
            | Self::UnsubArgs => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kw {
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    PlusOk,
    MinusErr,
}

impl Kw {
    /// Lower-case spelling; matched case-insensitively byte by byte.
    const fn spelling(self) -> &'static [u8] {
        match self {
            Kw::Pub => b"pub",
            Kw::Hpub => b"hpub",
            Kw::Sub => b"sub",
            Kw::Unsub => b"unsub",
            Kw::Ping => b"ping",
            Kw::Pong => b"pong",
            Kw::Connect => b"connect",
            Kw::Info => b"info",
            Kw::PlusOk => b"+ok",
            Kw::MinusErr => b"-err",
        }
    }
}

const INCOMPLETE: Parsed<'static> = Parsed::Incomplete { need: None };

#[inline(always)]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline(always)]
fn is_sub_sep(b: u8) -> bool {
    // nats-server's splitArg (SUB/UNSUB) also splits on CR and LF.
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Identify the op from its name. `Ok(None)` = buffer ends inside the name.
#[inline]
fn keyword(buf: &[u8]) -> Result<Option<Kw>, ProtoError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    let kw = match b0.to_ascii_lowercase() {
        b'p' => match buf.get(1).map(u8::to_ascii_lowercase) {
            None => return Ok(None),
            Some(b'u') => Kw::Pub,
            Some(b'i') => Kw::Ping,
            Some(b'o') => Kw::Pong,
            Some(_) => return Err(ProtoError::UnknownOp),
        },
        b'h' => Kw::Hpub,
        b's' => Kw::Sub,
        b'u' => Kw::Unsub,
        b'c' => Kw::Connect,
        b'i' => Kw::Info,
        b'+' => Kw::PlusOk,
        b'-' => Kw::MinusErr,
        _ => return Err(ProtoError::UnknownOp),
    };
    for (i, &want) in kw.spelling().iter().enumerate() {
        match buf.get(i) {
            None => return Ok(None),
            Some(b) if b.to_ascii_lowercase() == want => {}
            Some(_) => return Err(ProtoError::UnknownOp),
        }
    }
    Ok(Some(kw))
}

/// Strip the line end from a control line (the bytes before `\n`).
///
/// Mirrors nats-server: a trailing `\r` is dropped; and if the line ends in a
/// bare `\n` but contains a `\r` elsewhere, nats-server drops the last byte
/// anyway (its `drop` flag is set by any `\r` in the argument), so we do too.
#[inline]
fn strip_line_end(line: &[u8]) -> &[u8] {
    match line.split_last() {
        Some((b'\r', rest)) => rest,
        Some((_, rest)) if memchr(b'\r', rest).is_some() => rest,
        _ => line,
    }
}

/// nats-server's `parseSize`: 1 to 9 ASCII digits, nothing else.
#[inline]
fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    let mut n: usize = 0;
    for &b in d {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        // At most 9 digits: cannot overflow even a 32-bit usize.
        n = n.wrapping_mul(10).wrapping_add(usize::from(digit));
    }
    Some(n)
}

/// Splits `arg` on bytes for which `sep` holds, into `out`. Returns the
/// number of tokens, or `N + 1` if there were more than `N`.
#[inline]
fn split_args<'a, const N: usize>(
    arg: &'a [u8],
    sep: fn(u8) -> bool,
    out: &mut [&'a [u8]; N],
) -> usize {
    let mut n = 0usize;
    let mut rest = arg;
    loop {
        // Skip separators.
        let Some(start) = rest.iter().position(|&b| !sep(b)) else {
            return n;
        };
        let tail = rest.get(start..).unwrap_or_default();
        let len = tail.iter().position(|&b| sep(b)).unwrap_or(tail.len());
        let (tok, after) = tail.split_at(len);
        match out.get_mut(n) {
            Some(slot) => *slot = tok,
            None => return N.saturating_add(1),
        }
        n = n.saturating_add(1);
        rest = after;
    }
}

/// Finds the end of a control line whose argument starts at `start`.
/// Returns `Ok(Some(nl))` with the index of the `\n`, `Ok(None)` if more
/// bytes are needed, or the control-line error when no `\n` can fit.
#[inline]
fn find_line_end(buf: &[u8], start: usize, mcl: usize) -> Result<Option<usize>, ProtoError> {
    // The longest legal line is `mcl` argument bytes, `\r`, `\n`.
    let window_end = start.saturating_add(mcl).saturating_add(2);
    let window = buf
        .get(start..window_end.min(buf.len()))
        .unwrap_or_default();
    match memchr(b'\n', window) {
        Some(i) => Ok(Some(start.saturating_add(i))),
        None if buf.len() >= window_end => Err(ProtoError::MaxControlLine { max: mcl }),
        None => Ok(None),
    }
}

/// Parses one frame from the start of `buf`. See the module docs.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ProtoError> {
    let Some(kw) = keyword(buf)? else {
        return Ok(INCOMPLETE);
    };
    let mcl = limits.max_control_line;
    let k = kw.spelling().len();

    // Ops without arguments: anything up to the line end is ignored, exactly
    // like nats-server (`PINGX\r\n` is a PING). nats-server puts no limit on
    // that junk; we bound it by max_control_line to bound buffering.
    if matches!(kw, Kw::Ping | Kw::Pong | Kw::PlusOk) {
        return Ok(match find_line_end(buf, k, mcl)? {
            None => INCOMPLETE,
            Some(nl) => Parsed::Op {
                op: match kw {
                    Kw::Ping => ClientOp::Ping,
                    Kw::Pong => ClientOp::Pong,
                    _ => ClientOp::Ok,
                },
                consumed: nl.saturating_add(1),
            },
        });
    }

    // PUB/HPUB/SUB/UNSUB/-ERR need a blank right after the name; CONNECT and
    // INFO take their argument from the first non-blank byte (`CONNECT{}`).
    let mut blanks_from = k;
    if !matches!(kw, Kw::Connect | Kw::Info) {
        match buf.get(k) {
            None => return Ok(INCOMPLETE),
            Some(&b) if is_blank(b) => blanks_from = k.saturating_add(1),
            Some(_) => return Err(ProtoError::UnknownOp),
        }
    }
    let tail = buf.get(blanks_from..).unwrap_or_default();
    let start = match tail.iter().position(|&b| !is_blank(b)) {
        Some(i) => blanks_from.saturating_add(i),
        None if buf.len().saturating_sub(k) > mcl => {
            return Err(ProtoError::MaxControlLine { max: mcl })
        }
        None => return Ok(INCOMPLETE),
    };
    if start.saturating_sub(k) > mcl {
        return Err(ProtoError::MaxControlLine { max: mcl });
    }
    let Some(nl) = find_line_end(buf, start, mcl)? else {
        return Ok(INCOMPLETE);
    };
    let arg = strip_line_end(buf.get(start..nl).unwrap_or_default());
    if arg.len() > mcl {
        return Err(ProtoError::MaxControlLine { max: mcl });
    }
    let line_len = nl.saturating_add(1);

    match kw {
        Kw::Pub => {
            let mut t: [&[u8]; 3] = [&[]; 3];
            let (subject, reply, size) = match split_args(arg, is_blank, &mut t) {
                2 => (t[0], None, t[1]),
                3 => (t[0], Some(t[1]), t[2]),
                _ => return Err(ProtoError::PubArgs),
            };
            let size = parse_size(size).ok_or(ProtoError::PubSize)?;
            match payload(buf, line_len, size, limits)? {
                Payload::Incomplete(need) => Ok(Parsed::Incomplete { need: Some(need) }),
                Payload::Done { body, consumed } => Ok(Parsed::Op {
                    op: ClientOp::Pub {
                        subject,
                        reply,
                        payload: body,
                    },
                    consumed,
                }),
            }
        }
        Kw::Hpub => {
            let mut t: [&[u8]; 4] = [&[]; 4];
            let (subject, reply, hdr, total) = match split_args(arg, is_blank, &mut t) {
                3 => (t[0], None, t[1], t[2]),
                4 => (t[0], Some(t[1]), t[2], t[3]),
                _ => return Err(ProtoError::HpubArgs),
            };
            let hdr = parse_size(hdr).ok_or(ProtoError::HpubSize)?;
            let total = parse_size(total).ok_or(ProtoError::HpubSize)?;
            if hdr > total {
                return Err(ProtoError::HpubHeaderTooLarge);
            }
            match payload(buf, line_len, total, limits)? {
                Payload::Incomplete(need) => Ok(Parsed::Incomplete { need: Some(need) }),
                Payload::Done { body, consumed } => {
                    // hdr <= total == body.len(), so this cannot fail.
                    let (headers, payload) = body.split_at(hdr.min(body.len()));
                    Ok(Parsed::Op {
                        op: ClientOp::Hpub {
                            subject,
                            reply,
                            headers,
                            payload,
                        },
                        consumed,
                    })
                }
            }
        }
        Kw::Sub => {
            let mut t: [&[u8]; 3] = [&[]; 3];
            let op = match split_args(arg, is_sub_sep, &mut t) {
                2 => ClientOp::Sub {
                    subject: t[0],
                    queue: None,
                    sid: t[1],
                },
                3 => ClientOp::Sub {
                    subject: t[0],
                    queue: Some(t[1]),
                    sid: t[2],
                },
                _ => return Err(ProtoError::SubArgs),
            };
            Ok(Parsed::Op {
                op,
                consumed: line_len,
            })
        }
        Kw::Unsub => {
            let mut t: [&[u8]; 2] = [&[]; 2];
            let op = match split_args(arg, is_sub_sep, &mut t) {
                1 => ClientOp::Unsub {
                    sid: t[0],
                    max: None,
                },
                2 => ClientOp::Unsub {
                    sid: t[0],
                    max: parse_size(t[1]).filter(|&n| n > 0).map(|n| n as u64),
                },
                _ => return Err(ProtoError::UnsubArgs),
            };
            Ok(Parsed::Op {
                op,
                consumed: line_len,
            })
        }
        Kw::Connect => Ok(Parsed::Op {
            op: ClientOp::Connect(arg),
            consumed: line_len,
        }),
        Kw::Info => Ok(Parsed::Op {
            op: ClientOp::Info(arg),
            consumed: line_len,
        }),
        Kw::MinusErr => Ok(Parsed::Op {
            op: ClientOp::Err(arg),
            consumed: line_len,
        }),
        // Handled above.
        Kw::Ping | Kw::Pong | Kw::PlusOk => Err(ProtoError::UnknownOp),
    }
}

enum Payload<'a> {
    Incomplete(usize),
    Done { body: &'a [u8], consumed: usize },
}

/// Checks the declared size, then takes `size` bytes after the control line
/// (which ends at `line_len`) followed by `\r\n`. The payload is never
/// scanned; only the two terminator bytes are looked at, as soon as they are
/// in the buffer.
#[inline]
fn payload<'a>(
    buf: &'a [u8],
    line_len: usize,
    size: usize,
    limits: &Limits,
) -> Result<Payload<'a>, ProtoError> {
    if size > limits.max_payload {
        return Err(ProtoError::MaxPayload {
            size,
            max: limits.max_payload,
        });
    }
    let end = line_len.saturating_add(size);
    let need = end.saturating_add(2);
    if buf.get(end).is_some_and(|&b| b != b'\r')
        || buf.get(end.saturating_add(1)).is_some_and(|&b| b != b'\n')
    {
        return Err(ProtoError::PayloadTerminator);
    }
    match buf.get(line_len..end) {
        Some(body) if buf.len() >= need => Ok(Payload::Done {
            body,
            consumed: need,
        }),
        _ => Ok(Payload::Incomplete(need)),
    }
}
