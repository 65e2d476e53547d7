//! `idle`: open C fully-established connections (CONNECT + PING/PONG each)
//! and report the growth of the server's resident memory per connection,
//! read from /proc/<server-pid>/status (VmRSS).

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::cli::Args;
use crate::conn::open_idle;
use crate::report::{thousands, Report};
use crate::sys::{raise_nofile_limit, rss_kib};

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let Some(pid) = a.server_pid else {
        bail!("idle needs --server-pid PID (the server whose VmRSS is measured)");
    };
    let limit = raise_nofile_limit()?;
    if (a.conns as u64) + 64 > limit {
        bail!(
            "--conns {} needs more file descriptors than RLIMIT_NOFILE allows ({limit}); raise the hard limit",
            a.conns
        );
    }
    let before = rss_kib(pid).context("server RSS before")?;
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(a.conns);
    for i in 0..a.conns {
        let c = open_idle(addr, "bench-idle", deadline)
            .with_context(|| format!("opening idle connection {} of {}", i + 1, a.conns))?;
        conns.push(c);
    }
    let open_secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(a.settle);
    let after = rss_kib(pid).context("server RSS after")?;
    let per = (after as f64 - before as f64) / a.conns as f64;
    let mut r = Report::new("idle", format!("idle {} conns", a.conns));
    r.say(&format!(
        ": server RSS {} KiB -> {} KiB, {per:.2} KiB/conn (opened in {open_secs:.2} s, {} conns/s)",
        thousands(before as f64),
        thousands(after as f64),
        thousands(a.conns as f64 / open_secs.max(1e-9))
    ));
    r.field("conns", a.conns)
        .field("rss_before_kib", before)
        .field("rss_after_kib", after)
        .field("kib_per_conn", (per * 100.0).round() / 100.0)
        .field("open_secs", (open_secs * 100.0).round() / 100.0);
    drop(conns);
    Ok(r)
}
