//! `reqrep`: one responder, one requester doing strictly sequential
//! request -> reply round trips through the server. The requester subscribes
//! once to a unique wildcard inbox (`_INBOX.<nonce>.*`) and uses
//! `_INBOX.<nonce>.<i>` as the reply subject of request i; each reply's
//! subject and echoed sequence number are checked.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};

use super::{abort_on_err, first_error, join};
use crate::cli::Args;
use crate::conn::{Conn, Frame};
use crate::publisher::payload_template;
use crate::report::{r1, thousands, Report};

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let total = a.warmup + a.msgs;

    let mut responder = Conn::connect(addr, "bench-responder", 64 * 1024, deadline)?;
    responder.write(format!("SUB {} 1\r\n", a.subject).as_bytes())?;
    responder.flush()?;

    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        ^ u128::from(std::process::id());
    let inbox = format!("_INBOX.{nonce:x}");
    let mut requester = Conn::connect(addr, "bench-requester", 64 * 1024, deadline)?;
    requester.write(format!("SUB {inbox}.* 1\r\n").as_bytes())?;
    requester.flush()?;

    let (mut lat_ns, elapsed) = std::thread::scope(|s| -> Result<(Vec<u64>, f64)> {
        let resp = s.spawn(|| abort_on_err(|| respond(&mut responder, total)));
        let req = abort_on_err(|| request(&mut requester, a, &inbox, total));
        let resp = join(resp, "responder");
        let mut errs = Vec::new();
        let req = req.map_err(|e| errs.push(e)).ok();
        if let Err(e) = resp {
            errs.push(e);
        }
        first_error(errs)?;
        req.ok_or_else(|| anyhow!("requester produced no result"))
    })?;

    lat_ns.sort_unstable();
    let n = lat_ns.len();
    let pct = |p: f64| -> f64 {
        let idx = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        lat_ns[idx] as f64 / 1000.0
    };
    let mean = lat_ns.iter().sum::<u64>() as f64 / n as f64 / 1000.0;
    let (p50, p90, p99, max) = (pct(0.50), pct(0.90), pct(0.99), pct(1.0));
    let rate = n as f64 / elapsed.max(1e-9);
    let mut r = Report::new("reqrep", format!("reqrep {}x{}B", a.msgs, a.size));
    r.say(&format!(
        ": p50 {p50:.1} us, p90 {p90:.1} us, p99 {p99:.1} us, max {max:.1} us, mean {mean:.1} us ({} round trips/s)",
        thousands(rate)
    ));
    r.field("msgs", a.msgs)
        .field("size", a.size)
        .field("warmup", a.warmup)
        .field("p50_us", r1(p50))
        .field("p90_us", r1(p90))
        .field("p99_us", r1(p99))
        .field("max_us", r1(max))
        .field("mean_us", r1(mean))
        .field("msgs_per_sec", r1(rate));
    Ok(r)
}

/// Echo every request's payload back to its reply subject.
fn respond(conn: &mut Conn, total: u64) -> Result<()> {
    let mut out = Vec::with_capacity(4096);
    for _ in 0..total {
        out.clear();
        match conn.next_frame()? {
            Frame::Msg {
                reply: Some(reply),
                payload,
                ..
            } => {
                out.extend_from_slice(b"PUB ");
                out.extend_from_slice(reply);
                out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Msg { reply: None, .. } => bail!("request without reply subject"),
            Frame::Pong => bail!("unexpected PONG on responder"),
        }
        conn.write(&out)?;
    }
    Ok(())
}

/// Returns per-request latencies (ns, warm-up excluded) and the measured wall time.
fn request(conn: &mut Conn, a: &Args, inbox: &str, total: u64) -> Result<(Vec<u64>, f64)> {
    let mut payload = payload_template(a.size);
    let mut lat = Vec::with_capacity(a.msgs as usize);
    let mut out = Vec::with_capacity(a.size + 128);
    let mut measured_start = Instant::now();
    for i in 0..total {
        if i == a.warmup {
            measured_start = Instant::now();
        }
        if a.size >= 8 {
            payload[..8].copy_from_slice(&i.to_be_bytes());
        }
        out.clear();
        out.extend_from_slice(format!("PUB {} {inbox}.{i} {}\r\n", a.subject, a.size).as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\r\n");
        let t0 = Instant::now();
        conn.write(&out)?;
        match conn.next_frame()? {
            Frame::Msg {
                subject,
                payload: p,
                ..
            } => {
                let dt = t0.elapsed();
                let want = format!("{inbox}.{i}");
                if subject != want.as_bytes() {
                    bail!(
                        "reply {i} arrived on {:?}, expected {want:?}",
                        String::from_utf8_lossy(subject)
                    );
                }
                if p.len() != a.size || (a.size >= 8 && p[..8] != i.to_be_bytes()) {
                    bail!("reply {i} payload corrupt");
                }
                if i >= a.warmup {
                    lat.push(u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX));
                }
            }
            Frame::Pong => bail!("unexpected PONG on requester"),
        }
    }
    Ok((lat, measured_start.elapsed().as_secs_f64()))
}
