//! Hostile and careless clients: what one client does may cost it its connection, never the
//! broker's memory or other clients' service. Checked against nats-server 2.9.10 as well.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use natrium_tests::{http_get, rss_kib, TestServer};

/// Sends `chunk` (many control lines that each earn a reply) as fast as the socket takes it,
/// never reading, until the server hangs up or `limit` bytes went out. Returns the bytes sent.
fn flood_without_reading(port: u16, preamble: &str, chunk: &[u8], limit: usize) -> Result<usize> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(preamble.as_bytes())?;
    let mut sent = 0;
    while sent < limit {
        match s.write(chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // reset by the server, or blocked: it stopped reading us
        }
    }
    // Whatever was queued for us, then the close.
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut sink = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => return Ok(sent),
            Ok(_) => {}
        }
    }
    anyhow::bail!("the server kept the flooding connection open")
}

async fn control_flood_is_cut_off(preamble: &str, line: &[u8]) -> Result<()> {
    let server =
        TestServer::with_config_and_args("max_pending: 256KB\nmax_payload: 64KB\n", &["-m", "-1"])?;
    let pid = server.pid().context("pid")?;
    let mport = server.monitor_port().context("monitor port")?;
    let before = rss_kib(pid)?;
    let chunk: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 10_000)
        .collect();
    let (port, pre) = (server.port(), preamble.to_string());
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        for _ in 0..2000 {
            peak = peak.max(rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peak
    });
    let sent =
        tokio::task::spawn_blocking(move || flood_without_reading(port, &pre, &chunk, 256 << 20))
            .await??;
    sampler.abort();
    let after = rss_kib(pid)?;
    let varz = http_get(mport, "/varz").await?.json()?;
    ensure!(
        varz["slow_consumers"].as_u64() >= Some(1),
        "the flooding client is counted as a slow consumer: {varz}"
    );
    let grown = after.saturating_sub(before);
    ensure!(
        grown < 64 * 1024,
        "the broker grew by {grown} KiB while a client sent {sent} bytes of control lines and never read"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_that_pings_and_never_reads_is_a_slow_consumer() -> Result<()> {
    control_flood_is_cut_off("CONNECT {\"verbose\":false}\r\n", b"PING\r\n").await
}

#[tokio::test]
async fn a_verbose_client_that_never_reads_its_oks_is_a_slow_consumer() -> Result<()> {
    control_flood_is_cut_off("CONNECT {\"verbose\":true}\r\n", b"PUB x 0\r\n\r\n").await
}

#[tokio::test]
async fn subjects_hundreds_of_thousands_of_tokens_deep_do_not_crash_the_broker() -> Result<()> {
    let server =
        TestServer::with_config("max_control_line: 4MB\nmax_payload: 4MB\nmax_pending: 64MB\n")?;
    let deep = vec!["a"; 500_000].join(".");
    let wild = format!("{}.>", vec!["*"; 499_999].join("."));
    let mut c = natrium_tests::RawConn::connect(server.port()).await?;
    c.send(format!(
        "CONNECT {{\"verbose\":false}}\r\nSUB {deep} 1\r\nSUB {wild} 2\r\nPUB {deep} 2\r\nhi\r\nUNSUB 1\r\nPING\r\n"
    ))
    .await?;
    let got = c.read_until(b"PONG\r\n", Duration::from_secs(30)).await?;
    let msgs = got.windows(4).filter(|w| w == b"MSG ").count();
    ensure!(
        msgs == 2,
        "both deep subscriptions get the message ({msgs} MSGs)"
    );
    drop(c); // the disconnect removes the wildcard subscription too

    // The broker is still there for everyone.
    let mut other = natrium_tests::RawConn::connect(server.port()).await?;
    other
        .send("CONNECT {\"verbose\":false}\r\nPING\r\n")
        .await?;
    other.expect("PONG\r\n").await?;
    Ok(())
}
