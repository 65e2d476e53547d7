//! A minimal, blocking, raw-protocol NATS client connection.
//!
//! Deliberately tiny and allocation-free on the hot path so the load
//! generator costs as little CPU as possible and the numbers reflect the
//! server. Every blocking call honours a hard wall-clock `deadline`: sockets
//! get a short read/write timeout and the loops re-check the deadline each
//! time a call times out.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long a single socket read/write may block before we re-check the deadline.
const IO_POLL: Duration = Duration::from_millis(100);

/// Resolve `url` (`host:port`, optionally prefixed with `nats://`) and insist
/// that it is a loopback address: this tool only ever benchmarks a local server.
pub fn resolve_loopback(url: &str) -> Result<SocketAddr> {
    let hostport = url.strip_prefix("nats://").unwrap_or(url);
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .ok_or_else(|| anyhow!("{hostport} resolved to no address"))?;
    if !addr.ip().is_loopback() {
        bail!("refusing to benchmark non-loopback address {addr}");
    }
    Ok(addr)
}

/// Raised when any worker thread fails, so the others stop promptly instead
/// of waiting for data that will never come.
pub static ABORT: AtomicBool = AtomicBool::new(false);

/// Error of a worker that stopped only because a sibling failed; when
/// reporting, the sibling's (root-cause) error is preferred.
#[derive(Debug)]
pub struct Aborted(pub String);

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "aborted while {} (another worker failed)", self.0)
    }
}

impl std::error::Error for Aborted {}

/// Fail with a clear message once the wall-clock cap has passed (or another
/// worker has failed). Called whenever a blocking operation times out.
pub fn check_deadline(deadline: Instant, what: &str) -> Result<()> {
    if ABORT.load(Ordering::Relaxed) {
        return Err(Aborted(what.to_string()).into());
    }
    if Instant::now() >= deadline {
        bail!("hard time limit reached while {what}");
    }
    Ok(())
}

/// The CONNECT line every bench connection sends.
pub fn connect_line(name: &str) -> String {
    connect_line_with(name, "")
}

/// The CONNECT line with `extra` JSON members appended (e.g. `"headers":true` or
/// `"auth_token":"..."`; empty for none), followed by PING.
pub fn connect_line_with(name: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\
         \"name\":\"{name}\",\"lang\":\"rust-raw\",\"version\":\"{}\",\"protocol\":1,\
         \"echo\":true{sep}{extra}}}\r\nPING\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Write all of `buf`, retrying on timeouts until `deadline`.
pub fn write_all_deadline(stream: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> Result<()> {
    while !buf.is_empty() {
        match stream.write(buf) {
            Ok(0) => bail!("connection closed by server while writing"),
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                check_deadline(deadline, "writing (server not reading?)")?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("socket write"),
        }
    }
    Ok(())
}

/// One protocol frame received from the server. `PING`, `+OK` and `INFO` are
/// handled inside the connection and never surface. `HMSG` surfaces as `Msg` with
/// `headers` set (the header block, `NATS/1.0` line included) and `payload` the part
/// after it.
#[derive(Debug)]
pub enum Frame<'a> {
    Msg {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        headers: Option<&'a [u8]>,
        payload: &'a [u8],
    },
    Pong,
}

/// The parts of a `Frame::Msg`, for code that expects nothing else.
pub struct Msg<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The message; a PONG is an error ("unexpected PONG while <what>").
    pub fn into_msg(self, what: &str) -> Result<Msg<'a>> {
        match self {
            Frame::Msg {
                subject,
                reply,
                headers,
                payload,
            } => Ok(Msg {
                subject,
                reply,
                headers,
                payload,
            }),
            Frame::Pong => bail!("unexpected PONG while {what}"),
        }
    }
}

/// Frame located inside the read buffer (index ranges, so the buffer borrow can
/// be released while bookkeeping is updated).
enum Parsed {
    Msg {
        subject: Range<usize>,
        reply: Option<Range<usize>>,
        headers: Option<Range<usize>>,
        payload: Range<usize>,
    },
    Pong,
}

pub struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    /// A server PING was seen; answer it on the next `fill`/`write`.
    pending_pong: bool,
    pub deadline: Instant,
}

impl Conn {
    /// Open a TCP connection, send CONNECT + PING and wait for the PONG, so
    /// the connection is fully established when this returns.
    pub fn connect(
        addr: SocketAddr,
        name: &str,
        read_buf: usize,
        deadline: Instant,
    ) -> Result<Self> {
        Self::connect_with(addr, name, "", read_buf, deadline)
    }

    /// Like [`Conn::connect`], with `extra` JSON members in the CONNECT (see
    /// [`connect_line_with`]).
    pub fn connect_with(
        addr: SocketAddr,
        name: &str,
        extra: &str,
        read_buf: usize,
        deadline: Instant,
    ) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        stream
            .set_read_timeout(Some(IO_POLL))
            .context("read timeout")?;
        stream
            .set_write_timeout(Some(IO_POLL))
            .context("write timeout")?;
        let mut conn = Self {
            stream,
            rbuf: vec![0; read_buf.max(4096)],
            start: 0,
            end: 0,
            pending_pong: false,
            deadline,
        };
        conn.write(connect_line_with(name, extra).as_bytes())?;
        conn.wait_pong().context("CONNECT handshake")?;
        Ok(conn)
    }

    /// Write raw protocol bytes (answering any pending server PING first).
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.flush_pong()?;
        write_all_deadline(&mut self.stream, buf, self.deadline)
    }

    fn flush_pong(&mut self) -> Result<()> {
        if self.pending_pong {
            self.pending_pong = false;
            write_all_deadline(&mut self.stream, b"PONG\r\n", self.deadline)?;
        }
        Ok(())
    }

    /// Send PING and block until the matching PONG: a round trip through the
    /// server, which proves it has processed everything we sent before it.
    pub fn flush(&mut self) -> Result<()> {
        self.write(b"PING\r\n")?;
        self.wait_pong()
    }

    /// Block until a PONG arrives. Any MSG received meanwhile is an error.
    pub fn wait_pong(&mut self) -> Result<()> {
        match self.next_frame()? {
            Frame::Pong => Ok(()),
            Frame::Msg { subject, .. } => bail!(
                "unexpected MSG on {} while waiting for PONG",
                String::from_utf8_lossy(subject)
            ),
        }
    }

    /// Block until the next frame.
    pub fn next_frame(&mut self) -> Result<Frame<'_>> {
        loop {
            if let Some(p) = self.parse_one()? {
                return Ok(self.materialize(p));
            }
            self.fill()?;
        }
    }

    /// Return the next complete frame already buffered, without reading.
    pub fn try_frame(&mut self) -> Result<Option<Frame<'_>>> {
        Ok(self.parse_one()?.map(|p| self.materialize(p)))
    }

    fn materialize(&self, p: Parsed) -> Frame<'_> {
        match p {
            Parsed::Pong => Frame::Pong,
            Parsed::Msg {
                subject,
                reply,
                headers,
                payload,
            } => Frame::Msg {
                subject: &self.rbuf[subject],
                reply: reply.map(|r| &self.rbuf[r]),
                headers: headers.map(|h| &self.rbuf[h]),
                payload: &self.rbuf[payload],
            },
        }
    }

    /// Read more bytes from the socket into the buffer (making room first).
    /// Returns after one successful read or one poll timeout (after checking
    /// the deadline), so callers get a chance to publish progress.
    pub fn fill(&mut self) -> Result<()> {
        self.flush_pong()?;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.rbuf.len() {
            if self.start > 0 {
                self.rbuf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // A single frame larger than the buffer: grow.
                let new_len = self.rbuf.len() * 2;
                self.rbuf.resize(new_len, 0);
            }
        }
        loop {
            match self.stream.read(&mut self.rbuf[self.end..]) {
                Ok(0) => bail!("connection closed by server"),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    check_deadline(self.deadline, "waiting for data from server")?;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("socket read"),
            }
        }
    }

    /// Parse one frame from the buffer; `None` if it is incomplete.
    fn parse_one(&mut self) -> Result<Option<Parsed>> {
        loop {
            let base = self.start;
            let buf = &self.rbuf[base..self.end];
            let Some(nl) = memchr::memchr(b'\n', buf) else {
                return Ok(None);
            };
            let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
            let line_len = nl + 1;

            let (is_hmsg, rest) = if let Some(a) = line.strip_prefix(b"MSG ") {
                (false, Some(a))
            } else if let Some(a) = line.strip_prefix(b"HMSG ") {
                (true, Some(a))
            } else {
                (false, None)
            };
            if let Some(args) = rest {
                // MSG <subject> <sid> [reply] <size>
                // HMSG <subject> <sid> [reply] <header size> <total size>
                let args_off = base + if is_hmsg { 5 } else { 4 };
                let mut toks: [Range<usize>; 5] = [0..0, 0..0, 0..0, 0..0, 0..0];
                let mut n = 0;
                let mut i = 0;
                while i < args.len() {
                    while i < args.len() && (args[i] == b' ' || args[i] == b'\t') {
                        i += 1;
                    }
                    let s = i;
                    while i < args.len() && args[i] != b' ' && args[i] != b'\t' {
                        i += 1;
                    }
                    if i > s {
                        if n == toks.len() {
                            bail!("malformed MSG line: {}", String::from_utf8_lossy(line));
                        }
                        toks[n] = args_off + s..args_off + i;
                        n += 1;
                    }
                }
                let fixed = if is_hmsg { 4 } else { 3 };
                if !(fixed..=fixed + 1).contains(&n) {
                    bail!("malformed MSG line: {}", String::from_utf8_lossy(line));
                }
                let size = parse_usize(&self.rbuf[toks[n - 1].clone()])
                    .ok_or_else(|| anyhow!("bad MSG size in: {}", String::from_utf8_lossy(line)))?;
                let hdr_len = if is_hmsg {
                    let h = parse_usize(&self.rbuf[toks[n - 2].clone()]).ok_or_else(|| {
                        anyhow!("bad HMSG header size in: {}", String::from_utf8_lossy(line))
                    })?;
                    if h > size {
                        bail!(
                            "HMSG header size > total size: {}",
                            String::from_utf8_lossy(line)
                        );
                    }
                    h
                } else {
                    0
                };
                let total = line_len + size + 2;
                if self.end - base < total {
                    return Ok(None);
                }
                let body = base + line_len..base + line_len + size;
                if &self.rbuf[body.end..body.end + 2] != b"\r\n" {
                    bail!("MSG payload not terminated by CRLF (size mismatch)");
                }
                self.start = base + total;
                let reply = (n == fixed + 1).then(|| toks[2].clone());
                let headers = is_hmsg.then(|| body.start..body.start + hdr_len);
                return Ok(Some(Parsed::Msg {
                    subject: toks[0].clone(),
                    reply,
                    headers,
                    payload: body.start + hdr_len..body.end,
                }));
            }

            self.start = base + line_len;
            if line == b"PONG" {
                return Ok(Some(Parsed::Pong));
            } else if line == b"PING" {
                self.pending_pong = true;
            } else if line == b"+OK" || line.starts_with(b"INFO") || line.is_empty() {
                // ignore
            } else if line.starts_with(b"-ERR") {
                bail!("server error: {}", String::from_utf8_lossy(line));
            } else {
                bail!(
                    "unexpected protocol line: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }
}

/// Parse a non-negative decimal integer.
pub fn parse_usize(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v: usize = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + usize::from(c - b'0');
    }
    Some(v)
}

/// Minimal handshake for the idle-connection scenario: returns just the socket
/// (no big read buffer), once CONNECT + PING has been answered with PONG.
pub fn open_idle(addr: SocketAddr, name: &str, deadline: Instant) -> Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(IO_POLL))
        .context("read timeout")?;
    stream
        .set_write_timeout(Some(IO_POLL))
        .context("write timeout")?;
    write_all_deadline(&mut stream, connect_line(name).as_bytes(), deadline)?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            // Keep only a tail large enough to still match "PONG\r\n".
            buf.copy_within(len - 8.., 0);
            len = 8;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => bail!("connection closed by server during handshake"),
            Ok(n) => {
                len += n;
                let seen = &buf[..len];
                if memchr::memmem::find(seen, b"-ERR").is_some() {
                    let s = String::from_utf8_lossy(seen).into_owned();
                    bail!("server error during handshake: {}", s.trim());
                }
                if memchr::memmem::find(seen, b"PONG\r\n").is_some() {
                    return Ok(stream);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                check_deadline(deadline, "waiting for handshake PONG")?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("socket read during handshake"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    type ServerHandle = std::thread::JoinHandle<Result<Vec<u8>>>;

    /// A scripted fake server: handshake, then the given chunks written with
    /// small pauses so frames straddle read boundaries. Returns what the
    /// client sent afterwards.
    fn fake_server(chunks: Vec<Vec<u8>>) -> Result<(SocketAddr, ServerHandle)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let h = std::thread::spawn(move || -> Result<Vec<u8>> {
            let (mut s, _) = listener.accept()?;
            s.write_all(b"INFO {\"server_id\":\"t\"}\r\n")?;
            let mut r = std::io::BufReader::new(s.try_clone()?);
            let mut line = String::new();
            r.read_line(&mut line)?; // CONNECT
            line.clear();
            r.read_line(&mut line)?; // PING
            s.write_all(b"PONG\r\n")?;
            for c in chunks {
                s.write_all(&c)?;
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut rest = vec![0u8; 64];
            s.set_read_timeout(Some(Duration::from_millis(500)))?;
            let n = r.read(&mut rest).unwrap_or(0);
            rest.truncate(n);
            Ok(rest)
        });
        Ok((addr, h))
    }

    #[test]
    fn parses_split_frames_and_answers_ping() -> Result<()> {
        let stream: &[u8] = b"MSG a.b 1 5\r\nhello\r\n+OK\r\nPING\r\nMSG x 2 _INBOX.1 3\r\nabc\r\nMSG big 3 10\r\n0123456789\r\nPONG\r\n";
        let chunks = vec![
            stream[..7].to_vec(),
            stream[7..20].to_vec(),
            stream[20..61].to_vec(),
            stream[61..].to_vec(),
        ];
        let (addr, h) = fake_server(chunks)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut c = Conn::connect(addr, "t", 4096, deadline)?;
        let mut got = Vec::new();
        while let Frame::Msg {
            subject,
            reply,
            payload,
            ..
        } = c.next_frame()?
        {
            got.push((
                subject.to_vec(),
                reply.map(<[u8]>::to_vec),
                payload.to_vec(),
            ));
        }
        c.write(b"")?; // sends the PONG owed for the server's PING
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (b"a.b".to_vec(), None, b"hello".to_vec()));
        assert_eq!(
            got[1],
            (b"x".to_vec(), Some(b"_INBOX.1".to_vec()), b"abc".to_vec())
        );
        assert_eq!(got[2].2, b"0123456789".to_vec());
        let answered = h.join().map_err(|_| anyhow!("server thread panicked"))??;
        assert_eq!(answered, b"PONG\r\n".to_vec());
        Ok(())
    }

    #[test]
    fn parses_hmsg() -> Result<()> {
        let hdr = b"NATS/1.0\r\nNatrium-Redacted: email=1,card=0\r\n\r\n";
        let mut frame = format!("HMSG a.b 7 {} {}\r\n", hdr.len(), hdr.len() + 3).into_bytes();
        frame.extend_from_slice(hdr);
        frame.extend_from_slice(b"xyz\r\nHMSG r 1 _INBOX.9 12 12\r\nNATS/1.0\r\n\r\n\r\n");
        let (addr, _h) = fake_server(vec![frame[..30].to_vec(), frame[30..].to_vec()])?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut c = Conn::connect_with(addr, "t", "\"headers\":true", 4096, deadline)?;
        match c.next_frame()? {
            Frame::Msg {
                subject,
                reply,
                headers,
                payload,
            } => {
                assert_eq!(subject, b"a.b");
                assert_eq!(reply, None);
                assert_eq!(headers, Some(&hdr[..]));
                assert_eq!(payload, b"xyz");
            }
            Frame::Pong => bail!("expected HMSG"),
        }
        match c.next_frame()? {
            Frame::Msg {
                reply,
                headers,
                payload,
                ..
            } => {
                assert_eq!(reply, Some(&b"_INBOX.9"[..]));
                assert_eq!(headers, Some(&b"NATS/1.0\r\n\r\n"[..]));
                assert!(payload.is_empty());
            }
            Frame::Pong => bail!("expected HMSG"),
        }
        Ok(())
    }

    #[test]
    fn grows_buffer_for_large_payload() -> Result<()> {
        let payload = vec![b'z'; 10_000];
        let mut frame = b"MSG s 1 10000\r\n".to_vec();
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(b"\r\n");
        let (addr, _h) = fake_server(vec![frame])?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut c = Conn::connect(addr, "t", 4096, deadline)?;
        match c.next_frame()? {
            Frame::Msg { payload: p, .. } => assert_eq!(p, &payload[..]),
            Frame::Pong => bail!("expected MSG"),
        }
        Ok(())
    }

    #[test]
    fn err_line_is_an_error() -> Result<()> {
        let (addr, _h) = fake_server(vec![b"-ERR 'Slow Consumer'\r\n".to_vec()])?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut c = Conn::connect(addr, "t", 4096, deadline)?;
        let e = c
            .next_frame()
            .err()
            .ok_or_else(|| anyhow!("expected an error"))?;
        assert!(format!("{e:#}").contains("Slow Consumer"));
        Ok(())
    }

    #[test]
    fn refuses_non_loopback() {
        assert!(resolve_loopback("10.1.2.3:4222").is_err());
        assert!(resolve_loopback("nats://127.0.0.1:4222").is_ok());
    }
}
