//! `connect`: the cost of setting up a client connection, including
//! authentication. `--conns` strictly sequential connections (after `--warmup`
//! unmeasured ones), each: TCP connect → read `INFO` → send `CONNECT {...}` +
//! `PING` → read `PONG` → close. A `-ERR` (e.g. `Authorization Violation`) or
//! anything else than `PONG` fails the run.
//!
//! Two latencies are recorded per connection: `connect` (from the TCP
//! connect call to the PONG: what a client waits for) and `handshake` (from
//! sending CONNECT to the PONG: the server's authentication and setup, without
//! TCP setup and the INFO).
//!
//! Credentials: none, `--user`/`--pass`, `--token`, or `--jwt-secret`, which
//! mints a fresh HS256 JWT per connection (`sub` = `bench-<i>`, `tenant` =
//! `--jwt-tenant`, `exp` one hour ahead) before the clock starts, so a server
//! cannot answer from a cache keyed by the token.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use hmac::{Hmac, Mac};

use crate::cli::Args;
use crate::conn::{check_deadline, connect_line_with, write_all_deadline};
use crate::report::{r1, thousands, Report};

/// How long one socket read may block before the deadline is re-checked.
const IO_POLL: Duration = Duration::from_millis(100);

/// Which credentials the CONNECTs carry.
enum Auth<'a> {
    None,
    UserPass(&'a str, &'a str),
    Token(&'a str),
    Jwt { secret: &'a str, tenant: &'a str },
}

impl Auth<'_> {
    fn label(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::UserPass(..) => "user/password",
            Self::Token(_) => "token",
            Self::Jwt { .. } => "jwt (HS256)",
        }
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// An HS256 JWT with `claims`, signed with `secret`.
pub fn mint_hs256(secret: &[u8], claims: &serde_json::Value) -> Result<String> {
    let b64 = |b: &[u8]| data_encoding::BASE64URL_NOPAD.encode(b);
    let head = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(serde_json::to_string(claims)?.as_bytes());
    let signing_input = format!("{head}.{body}");
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|e| anyhow!("HMAC key: {e}"))?;
    mac.update(signing_input.as_bytes());
    let sig = mac.finalize().into_bytes();
    Ok(format!("{signing_input}.{}", b64(&sig)))
}

/// The extra CONNECT members for connection `i`.
fn credentials(auth: &Auth<'_>, i: u64, now: u64) -> Result<String> {
    Ok(match auth {
        Auth::None => String::new(),
        Auth::UserPass(u, p) => format!("\"user\":{},\"pass\":{}", js(u), js(p)),
        Auth::Token(t) => format!("\"auth_token\":{}", js(t)),
        Auth::Jwt { secret, tenant } => {
            let claims = serde_json::json!({
                "sub": format!("bench-{i}"),
                "tenant": tenant,
                "iat": now,
                "nbf": now.saturating_sub(5),
                "exp": now + 3600,
            });
            format!(
                "\"auth_token\":{}",
                js(&mint_hs256(secret.as_bytes(), &claims)?)
            )
        }
    })
}

/// Read from `stream` into `buf` until `done(buf)` says so; a `-ERR` line or a
/// close fails with what the server sent.
fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    what: &str,
    deadline: Instant,
    done: impl Fn(&[u8]) -> bool,
) -> Result<()> {
    let mut chunk = [0u8; 4096];
    loop {
        if memchr::memmem::find(buf, b"-ERR").is_some() {
            bail!(
                "server error while {what}: {}",
                String::from_utf8_lossy(buf).trim()
            );
        }
        if done(buf) {
            return Ok(());
        }
        if buf.len() > 64 * 1024 {
            bail!("no answer while {what} after 64 KiB of data");
        }
        match stream.read(&mut chunk) {
            Ok(0) => bail!(
                "connection closed by server while {what} (got {:?})",
                String::from_utf8_lossy(buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                check_deadline(deadline, what)?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("socket read while {what}")),
        }
    }
}

/// One connection; returns (TCP connect → PONG, CONNECT sent → PONG).
fn one(addr: SocketAddr, connect_line: &str, deadline: Instant) -> Result<(Duration, Duration)> {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    stream
        .set_read_timeout(Some(IO_POLL))
        .context("read timeout")?;
    stream
        .set_write_timeout(Some(IO_POLL))
        .context("write timeout")?;
    let mut buf = Vec::with_capacity(1024);
    read_until(&mut stream, &mut buf, "waiting for INFO", deadline, |b| {
        memchr::memmem::find(b, b"\r\n").is_some()
    })?;
    if !buf.starts_with(b"INFO ") {
        bail!(
            "expected INFO first, got {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    let t1 = Instant::now();
    buf.clear();
    write_all_deadline(&mut stream, connect_line.as_bytes(), deadline)?;
    read_until(
        &mut stream,
        &mut buf,
        "waiting for the PONG after CONNECT",
        deadline,
        |b| b.ends_with(b"PONG\r\n"),
    )?;
    let t2 = Instant::now();
    Ok((t2 - t0, t2 - t1))
}

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let auth = match (&a.user, &a.pass, &a.token, &a.jwt_secret) {
        (None, None, None, None) => Auth::None,
        (u, p, None, None) => Auth::UserPass(
            u.as_deref().unwrap_or_default(),
            p.as_deref().unwrap_or_default(),
        ),
        (None, None, Some(t), None) => Auth::Token(t),
        (None, None, None, Some(s)) => Auth::Jwt {
            secret: s,
            tenant: &a.jwt_tenant,
        },
        _ => bail!("give one of --user/--pass, --token, --jwt-secret"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs();
    let total = a.warmup + a.conns as u64;
    let mut full_ns = Vec::with_capacity(a.conns);
    let mut hs_ns = Vec::with_capacity(a.conns);
    let mut measured_start = Instant::now();
    for i in 0..total {
        if i == a.warmup {
            measured_start = Instant::now();
        }
        let line = connect_line_with(&format!("bench-connect-{i}"), &credentials(&auth, i, now)?);
        let (full, hs) = one(addr, &line, deadline)
            .with_context(|| format!("connection {} of {total} (auth: {})", i + 1, auth.label()))?;
        if i >= a.warmup {
            full_ns.push(u64::try_from(full.as_nanos()).unwrap_or(u64::MAX));
            hs_ns.push(u64::try_from(hs.as_nanos()).unwrap_or(u64::MAX));
        }
        check_deadline(deadline, "opening connections")?;
    }
    // connects/s counts wall time: minting, connecting and closing included.
    let measured = measured_start.elapsed();
    full_ns.sort_unstable();
    hs_ns.sort_unstable();
    let pct = |v: &[u64], p: f64| -> f64 {
        let n = v.len();
        let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        v[idx] as f64 / 1000.0
    };
    let n = full_ns.len();
    let rate = n as f64 / measured.as_secs_f64().max(1e-9);
    let mut r = Report::new(
        "connect",
        format!("connect {} conns, auth {}", a.conns, auth.label()),
    );
    r.say(&format!(
        ": {} connects/s; connect p50 {:.1} us, p99 {:.1} us, max {:.1} us; CONNECT->PONG p50 {:.1} us, p99 {:.1} us",
        thousands(rate),
        pct(&full_ns, 0.5),
        pct(&full_ns, 0.99),
        pct(&full_ns, 1.0),
        pct(&hs_ns, 0.5),
        pct(&hs_ns, 0.99),
    ));
    r.field("conns", a.conns)
        .field("warmup", a.warmup)
        .field("auth", auth.label())
        .field("connects_per_sec", r1(rate))
        .field("p50_us", r1(pct(&full_ns, 0.5)))
        .field("p90_us", r1(pct(&full_ns, 0.9)))
        .field("p99_us", r1(pct(&full_ns, 0.99)))
        .field("max_us", r1(pct(&full_ns, 1.0)))
        .field("handshake_p50_us", r1(pct(&hs_ns, 0.5)))
        .field("handshake_p99_us", r1(pct(&hs_ns, 0.99)));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three base64url parts: the fixed header, the claims, and an HMAC-SHA256
    /// over `header.claims` that verifies with the secret.
    #[test]
    fn hs256_token_shape_and_signature() -> Result<()> {
        let secret = b"natrium-bench-secret-0123456789";
        let tok = mint_hs256(secret, &serde_json::json!({"sub": "x", "exp": 1}))?;
        let parts: Vec<&str> = tok.split('.').collect();
        assert_eq!(parts.len(), 3);
        let head = data_encoding::BASE64URL_NOPAD.decode(parts[0].as_bytes())?;
        assert_eq!(head, br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = data_encoding::BASE64URL_NOPAD.decode(parts[1].as_bytes())?;
        assert_eq!(body, br#"{"exp":1,"sub":"x"}"#);
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|e| anyhow!("HMAC key: {e}"))?;
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        let sig = data_encoding::BASE64URL_NOPAD.decode(parts[2].as_bytes())?;
        mac.verify_slice(&sig)
            .map_err(|e| anyhow!("signature mismatch: {e}"))?;
        Ok(())
    }
}
