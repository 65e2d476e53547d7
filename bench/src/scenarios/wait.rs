//! `wait`: poll until a server completes the CONNECT/PING handshake (used by
//! compare.sh to know a freshly started server is ready).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::cli::Args;
use crate::conn::Conn;
use crate::report::Report;

pub fn run(a: &Args, addr: SocketAddr) -> Result<Report> {
    let deadline = Instant::now() + a.timeout;
    let start = Instant::now();
    loop {
        match Conn::connect(addr, "bench-wait", 4096, deadline) {
            Ok(_) => {
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                let mut r = Report::new("wait", format!("server at {addr} ready"));
                r.say(&format!(" after {ms:.0} ms"));
                r.field("ready_ms", ms.round());
                return Ok(r);
            }
            Err(e) => {
                if Instant::now() + Duration::from_millis(50) >= deadline {
                    return Err(anyhow!(
                        "server at {addr} not ready after {:?}: {e:#}",
                        a.timeout
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
