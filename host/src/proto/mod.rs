//! The NATS client protocol: a pure parser (bytes in → [`ClientOp`] out) and
//! the server-side encoders. No I/O, no async, no allocation per message.
//!
//! # Using the parser
//!
//! Keep the unconsumed bytes of the connection in a buffer and call [`parse`]
//! on it: `Parsed::Op { op, consumed }` → act on `op`, drop `consumed` bytes,
//! call again; `Parsed::Incomplete { need }` → read more (and, when `need` is
//! `Some(n)`, the frame is `n` bytes long in total: reserve that); `Err(e)` →
//! send `-ERR '{e.client_error()}'` if that is `Some`, then close. A frame
//! split across reads is simply parsed again from its start; payloads are
//! never scanned, only length-checked, so re-parsing costs one control line.
//!
//! # What is mirrored from nats-server v2.9.10 (all verified over TCP)
//!
//! * Op names are case-insensitive byte by byte (`pub`, `PuB`).
//! * Arguments are separated by runs of spaces/tabs. SUB and UNSUB also split
//!   on `\r` (nats-server's `splitArg`), PUB and HPUB do not.
//! * Control lines end in `\r\n` or a bare `\n` (`ping\n` → PONG). If a line
//!   ends in a bare `\n` but has a `\r` elsewhere, the last byte is dropped,
//!   as nats-server's `drop` flag does.
//! * A payload must be followed by exactly `\r\n` (`PUB foo 5\nhello\n` is
//!   rejected with `Unknown Protocol Operation`); checked as soon as those
//!   bytes arrive.
//! * `PING`, `PONG` and `+OK` ignore anything up to the line end (`PINGX`,
//!   `PING foo`, `+OKAY` are accepted). `PIN\r\n`, `+O\r\n` are errors.
//! * `CONNECT` and `INFO` need no blank before their argument (`CONNECT{}`);
//!   PUB/HPUB/SUB/UNSUB/-ERR do (`PUB\r\n` → Unknown Protocol Operation).
//! * An empty line, leading whitespace, `MSG`, `HMSG`, `RS+`, `LS+`, `A+` from a
//!   client → `Unknown Protocol Operation`.
//! * Sizes (PUB size, HPUB sizes, UNSUB max) follow `parseSize`: 1–9 ASCII
//!   digits, leading zeros allowed (`000000005` ok, `0000000005` rejected).
//! * HPUB header bytes are **not** validated (nats-server delivers
//!   `XXXX/1.0\r\n\r\n` headers as they are); only `hdr_len <= total_len`.
//!   nats-server delivers an HPUB with `hdr_len` 0 as a plain `MSG`.
//! * `max_control_line` applies to the argument (after the op name and its
//!   blanks, without the line end): 64 bytes pass and 65 fail with
//!   `max_control_line: 64`.
//! * `max_payload` is checked on the control line, before the payload.
//!
//! ## Deliberate differences
//!
//! * The control-line limit is applied to every op with an argument, on
//!   complete lines too, as current nats-server does. v2.9.10 only checks
//!   SUB/UNSUB/INFO/-ERR lines that arrive whole, and PUB/HPUB/CONNECT only
//!   when a read splits the line (so it is read-size dependent there).
//! * Junk after `PING`/`PONG`/`+OK` and runs of blanks after an op name are
//!   bounded by `max_control_line` too (nats-server streams them unbounded;
//!   we have to buffer them).
//! * `CONNECT\n` / `INFO\n` (no argument, bare LF) yield an empty argument;
//!   nats-server would start the argument at that `\n` and wait for another.
//! * A client `HMSG ... 0 0\r\n\r\n` is silently swallowed by nats-server
//!   (a parser quirk); we reject every `HMSG` as Unknown Protocol Operation.
//!
//! # Verified nats-server reactions (input → sent → connection)
//!
//! | input | nats-server sends | closed |
//! |---|---|---|
//! | `FOO\r\n`, `\r\n`, ` PING\r\n`, `PI NG\r\n`, `PUBX foo 2\r\n` | `-ERR 'Unknown Protocol Operation'` | yes |
//! | `PUB\r\n`, `SUB\r\n`, `UNSUB\r\n`, `-ERR\r\n`, `+O\r\n` | `-ERR 'Unknown Protocol Operation'` | yes |
//! | `MSG foo 1 2\r\n..`, `HMSG ..`, `RS+ ..`, `LS+ ..`, `A+ ..` | `-ERR 'Unknown Protocol Operation'` | yes |
//! | `PUB foo 5\r\nhelloX\r\n`, `PUB foo 5\nhello\n`, `PUB foo 2\r\nhi\n\r` | `-ERR 'Unknown Protocol Operation'` | yes |
//! | `PUB foo 1048577\r\n` (default max_payload), `HPUB foo 1 1048577\r\n` | `-ERR 'Maximum Payload Violation'` (before payload) | yes |
//! | `SUB <5000 bytes>` (no line end yet, or whole) | `-ERR 'maximum control line exceeded'` | yes |
//! | `PUB foo\r\n`, `PUB \r\n`, `PUB foo bar baz 5\r\n`, `PUB foo -1\r\n`, `PUB foo x\r\n`, `PUB foo 5x\r\n`, `PUB foo +5\r\n`, `PUB foo 0000000005\r\n`, `PUB foo 99999999999999999999\r\n` | nothing | yes |
//! | `HPUB foo 3 2\r\n`, `HPUB foo 2\r\n`, `HPUB foo x 2\r\n`, `HPUB foo a b 12 14\r\n` | nothing | yes |
//! | `SUB foo\r\n`, `SUB \r\n`, `SUB foo q 1 x\r\n`, `UNSUB \r\n`, `UNSUB 1 2 3\r\n` | nothing | yes |
//! | `UNSUB 1 x`, `UNSUB 1 -1`, `UNSUB 1 0`, `UNSUB 1 9999999999` | (`+OK` if verbose) — immediate unsubscribe | no |
//! | `CONNECT\r\n`, `CONNECT {\r\n`, `CONNECT x\r\n`, `CONNECT {"verbose":"x"}\r\n` | nothing | yes |
//! | `INFO\r\n`, `INFO x\r\n`, `INFOx\r\n` | nothing | yes |
//! | `INFO {"a":1}\r\n`, `+OK\r\n`, `PONG\r\n` | nothing (ignored) | no |
//! | `-ERR foo\r\n`, `-ERR \r\n` | nothing | yes |
//! | `HPUB ..` without `"headers":true` in CONNECT | nothing | yes |
//! | `PING<10000 bytes, no LF>` | nothing | no (we: max control line) |
//!
//! The server-level errors (auth, permissions, limits) are in [`errors`].

mod connect;
pub mod encode;
pub mod errors;
pub mod headers;
mod msg;
mod parser;

pub use connect::{ConnectError, ConnectOptions};
pub use encode::{
    write_err, write_hmsg, write_hmsg_header, write_info, write_msg, write_msg_header, OK, PING,
    PONG,
};
pub use errors::ServerError;
pub use msg::{Msg, MsgRef};
pub use parser::{parse, ClientOp, Limits, Parsed, ProtoError};

#[cfg(test)]
mod tests;
