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
//!
//! NKey (`--nkey-seed`) and operator-mode JWT (`--creds FILE`, or `--user-jwt`
//! with `--user-seed`) logins sign the `nonce` of each connection's INFO with
//! the user's ed25519 seed (base64url, no padding) and send `nkey` and `sig`, or
//! `jwt` and `sig`, as the official clients do. The signing happens inside the
//! measured time (a real client cannot do it earlier); the user JWT is the same
//! for every connection, as with a real `.creds` file, but the nonce is not.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use hmac::{Hmac, Mac};
use nkeys::KeyPair;

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
    Jwt {
        secret: &'a str,
        tenant: &'a str,
    },
    /// An NKey user: `nkey` (the public key) + `sig` over the nonce.
    NKey(KeyPair),
    /// Operator mode: `jwt` (the user JWT) + `sig` over the nonce.
    UserJwt {
        jwt: String,
        kp: KeyPair,
    },
}

impl Auth<'_> {
    fn label(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::UserPass(..) => "user/password",
            Self::Token(_) => "token",
            Self::Jwt { .. } => "jwt (HS256)",
            Self::NKey(_) => "nkey",
            Self::UserJwt { .. } => "user jwt (operator mode)",
        }
    }

    /// Whether the CONNECT must carry a signature of the INFO nonce.
    fn signs_nonce(&self) -> bool {
        matches!(self, Self::NKey(_) | Self::UserJwt { .. })
    }

    /// Extra CONNECT members that answer the server's `nonce`.
    fn nonce_members(&self, nonce: &str) -> Result<String> {
        let sign = |kp: &KeyPair| -> Result<String> {
            let sig = kp
                .sign(nonce.as_bytes())
                .map_err(|e| anyhow!("signing the nonce: {e}"))?;
            Ok(data_encoding::BASE64URL_NOPAD.encode(&sig))
        };
        match self {
            Self::NKey(kp) => Ok(format!(
                "\"nkey\":{},\"sig\":{}",
                js(&kp.public_key()),
                js(&sign(kp)?)
            )),
            Self::UserJwt { jwt, kp } => {
                Ok(format!("\"jwt\":{},\"sig\":{}", js(jwt), js(&sign(kp)?)))
            }
            _ => Ok(String::new()),
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
        Auth::None | Auth::NKey(_) | Auth::UserJwt { .. } => String::new(),
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

/// The `nonce` of an `INFO {...}` line.
fn info_nonce(info: &[u8]) -> Result<String> {
    let end = memchr::memmem::find(info, b"\r\n").unwrap_or(info.len());
    let json = info.get(5..end).ok_or_else(|| anyhow!("short INFO line"))?;
    let v: serde_json::Value = serde_json::from_slice(json).context("INFO is not JSON")?;
    v.get("nonce")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("INFO has no nonce (is the server configured for NKey/JWT users?)"))
}

/// Parse a `.creds` file: the user JWT and the user seed.
pub fn read_creds(path: &str) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let block = |begin: &str| -> Result<String> {
        let mut lines = text.lines().map(str::trim);
        lines
            .by_ref()
            .find(|l| l.contains(begin))
            .ok_or_else(|| anyhow!("{path}: no {begin} block"))?;
        lines
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{path}: empty {begin} block"))
    };
    Ok((
        block("BEGIN NATS USER JWT")?,
        block("BEGIN USER NKEY SEED")?,
    ))
}

/// One connection; returns (TCP connect → PONG, CONNECT sent → PONG). When
/// `auth` signs nonces, the CONNECT line (client `name`) is built after INFO
/// arrives, from its nonce (included in the first time only); otherwise the
/// prepared `connect_line` is sent.
fn one(
    addr: SocketAddr,
    connect_line: &str,
    auth: &Auth<'_>,
    name: &str,
    deadline: Instant,
) -> Result<(Duration, Duration)> {
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
    let signed;
    let connect_line = if auth.signs_nonce() {
        signed = connect_line_with(name, &auth.nonce_members(&info_nonce(&buf)?)?);
        signed.as_str()
    } else {
        connect_line
    };
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
    let seed_kp =
        |seed: &str| KeyPair::from_seed(seed.trim()).map_err(|e| anyhow!("invalid user seed: {e}"));
    let auth = match (&a.user, &a.pass, &a.token, &a.jwt_secret) {
        (None, None, None, None) if a.nkey_seed.is_some() => {
            Auth::NKey(seed_kp(a.nkey_seed.as_deref().unwrap_or_default())?)
        }
        (None, None, None, None) if a.creds.is_some() => {
            let (jwt, seed) = read_creds(a.creds.as_deref().unwrap_or_default())?;
            Auth::UserJwt {
                jwt,
                kp: seed_kp(&seed)?,
            }
        }
        (None, None, None, None) if a.user_jwt.is_some() || a.user_seed.is_some() => {
            match (&a.user_jwt, &a.user_seed) {
                (Some(jwt), Some(seed)) => Auth::UserJwt {
                    jwt: jwt.trim().to_owned(),
                    kp: seed_kp(seed)?,
                },
                _ => bail!("--user-jwt and --user-seed go together"),
            }
        }
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
        let name = format!("bench-connect-{i}");
        let line = if auth.signs_nonce() {
            String::new()
        } else {
            connect_line_with(&name, &credentials(&auth, i, now)?)
        };
        let (full, hs) = one(addr, &line, &auth, &name, deadline)
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

    #[test]
    fn nonce_signature_verifies() -> Result<()> {
        let kp = KeyPair::new_user();
        let nonce = info_nonce(b"INFO {\"server_id\":\"x\",\"nonce\":\"abc-123\"}\r\n")?;
        assert_eq!(nonce, "abc-123");
        let members = Auth::NKey(
            KeyPair::from_seed(&kp.seed().map_err(|e| anyhow!("{e}"))?)
                .map_err(|e| anyhow!("{e}"))?,
        )
        .nonce_members(&nonce)?;
        let v: serde_json::Value = serde_json::from_str(&format!("{{{members}}}"))?;
        assert_eq!(v["nkey"], serde_json::json!(kp.public_key()));
        let sig = data_encoding::BASE64URL_NOPAD.decode(
            v["sig"]
                .as_str()
                .ok_or_else(|| anyhow!("no sig"))?
                .as_bytes(),
        )?;
        kp.verify(nonce.as_bytes(), &sig)
            .map_err(|e| anyhow!("bad signature: {e}"))?;
        assert!(info_nonce(b"INFO {}\r\n").is_err());
        Ok(())
    }
}
