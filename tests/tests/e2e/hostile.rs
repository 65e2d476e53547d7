//! Hostile and careless clients: what one client does may cost it its connection, never the
//! broker's memory or other clients' service. Checked against nats-server 2.9.10 as well.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

// ---- item 2: accepting and authenticating never wait behind message processing ------------

const TWO_ACCOUNTS: &str = "accounts { A: { users: [{user: a, password: a}] }\n B: { users: [{user: b, password: b}] } }\n";

/// Time from TCP connect to the PONG of `CONNECT`+`PING` as user `b`.
fn connect_latency(port: u16) -> Result<Duration> {
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = false;
    loop {
        let n = s.read(&mut buf)?;
        ensure!(
            n > 0,
            "closed during the handshake: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        if !sent && got.ends_with(b"\r\n") {
            s.write_all(b"CONNECT {\"verbose\":false,\"user\":\"b\",\"pass\":\"b\"}\r\nPING\r\n")?;
            sent = true;
        }
        if natrium_tests::find(&got, b"PONG\r\n").is_some() {
            return Ok(started.elapsed());
        }
    }
}

/// Median and maximum of `n` sequential connects of account B, measured from a thread that
/// takes priority over the load generators (nice -10 when allowed): the test's own threads
/// share the two cores with the broker, and it is the broker's delay that is measured.
async fn connect_latencies(port: u16, n: usize) -> Result<(Duration, Duration)> {
    tokio::task::spawn_blocking(move || {
        set_priority(-10);
        let mut t = Vec::with_capacity(n);
        for _ in 0..n {
            t.push(connect_latency(port)?);
        }
        t.sort();
        Ok((t[n / 2], t[n - 1]))
    })
    .await?
}

/// Sets this thread's nice value (ignored when not permitted).
#[allow(unsafe_code)]
fn set_priority(nice: i32) {
    // SAFETY: setpriority with who = 0 changes only the calling thread's scheduling priority.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, nice);
    }
}

/// A blocking client of account A that writes `burst` until `stop`, reading (and dropping)
/// whatever the server sends; returns how many bursts it wrote.
fn blast(port: u16, sub: Option<&str>, burst: Vec<u8>, stop: Arc<AtomicBool>) -> Result<u64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let mut reader = s.try_clone()?;
    let drain = std::thread::spawn(move || {
        let mut sink = vec![0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
    });
    s.write_all(b"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"a\"}\r\n")?;
    if let Some(sub) = sub {
        s.write_all(format!("SUB {sub} 1\r\n").as_bytes())?;
    }
    let mut bursts = 0;
    while !stop.load(Ordering::Relaxed) {
        s.write_all(&burst)?;
        bursts += 1;
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = drain.join();
    Ok(bursts)
}

/// B's connect latency idle and while `load` clients of account A saturate the broker.
async fn connect_latency_under(
    server: &TestServer,
    load: Vec<(Option<&'static str>, Vec<u8>)>,
) -> Result<((Duration, Duration), (Duration, Duration))> {
    let port = server.port();
    let idle = connect_latencies(port, 40).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let blasters: Vec<_> = load
        .into_iter()
        .map(|(sub, burst)| {
            let stop = stop.clone();
            std::thread::spawn(move || blast(port, sub, burst, stop))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = connect_latencies(port, 40).await;
    stop.store(true, Ordering::Relaxed);
    for b in blasters {
        let _ = b.join();
    }
    Ok((idle, busy?))
}

fn bursts(line: &str, n: usize) -> Vec<u8> {
    line.repeat(n).into_bytes()
}

/// Asserts that B's median connect latency under load stayed within 10x its idle median.
/// Measured alone (release build, 2 cores, three publishers and two fan-out subscribers):
/// 1.2-1.8 ms flooded vs 0.22 ms idle; nats-server 2.9.10 0.21 ms for both; natrium
/// before its readers took turns 62-150 ms (1.1 s in the debug build). Alongside the rest of
/// the suite, in the debug build, the scheduler adds milliseconds, so the bound is 10x idle
/// but at least 50 ms.
fn within_ten_times_idle(
    what: &str,
    idle: (Duration, Duration),
    busy: (Duration, Duration),
) -> Result<()> {
    println!("B connect latency (median, max): idle {idle:?}, while A {what} {busy:?}");
    let bound = (idle.0 * 10).max(Duration::from_millis(50));
    ensure!(
        busy.0 <= bound,
        "B's median connect took {:?} while A {what} (idle {:?})",
        busy.0,
        idle.0
    );
    Ok(())
}

#[tokio::test]
async fn connects_stay_fast_while_another_account_floods_publishes() -> Result<()> {
    let server = TestServer::with_config(TWO_ACCOUNTS)?;
    let pubs = || (None, bursts("PUB load.x 16\r\n0123456789abcdef\r\n", 4096));
    let fanout = || (Some("load.>"), Vec::new());
    let (idle, busy) =
        connect_latency_under(&server, vec![fanout(), fanout(), pubs(), pubs(), pubs()]).await?;
    within_ten_times_idle("floods publishes", idle, busy)
}

#[tokio::test]
async fn connects_stay_fast_while_another_account_floods_a_looping_plugin() -> Result<()> {
    if natrium_tests::is_nats_server() {
        return Ok(());
    }
    let conf = format!(
        "{TWO_ACCOUNTS}plugins {{ loop: {{ path: {:?}, role: transformer, deadline: \"20ms\", on_failure: drop, accounts: [A], subjects: [\"spin\"] }} }}\n",
        natrium_tests::plugin_path("looper")?.display().to_string()
    );
    let server = TestServer::with_config(&conf)?;
    let spin = || (None, bursts("PUB spin 1\r\nx\r\n", 256));
    let (idle, busy) = connect_latency_under(&server, vec![spin(), spin()]).await?;
    within_ten_times_idle("floods a looping plugin", idle, busy)
}

/// A burst of connects is a job for the kernel's accept queue as much as for the broker: with
/// a short queue (Rust's default listen backlog is 128) the kernel drops handshakes it cannot
/// queue and those clients see INFO only after seconds of TCP retransmissions.
#[tokio::test]
async fn a_burst_of_a_thousand_connects_all_get_info_promptly() -> Result<()> {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start(&[])?;
    let port = server.port();
    let started = Instant::now();
    let burst: Vec<_> = (0..1000)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                let mut first = Vec::new();
                let mut buf = [0u8; 4096];
                while !first.ends_with(b"\r\n") {
                    let n = s.read(&mut buf).await?;
                    ensure!(n > 0, "closed before INFO");
                    first.extend_from_slice(&buf[..n]);
                }
                ensure!(first.starts_with(b"INFO {"), "first line is INFO");
                Ok::<_, anyhow::Error>((Instant::now(), s))
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut open = Vec::new();
    for t in burst {
        let (at, s) = tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .context("a connect got no INFO within 20 s")???;
        slowest = slowest.max(at - started);
        open.push(s);
    }
    println!("1000 concurrent connects: the last INFO after {slowest:?}");
    ensure!(
        slowest < Duration::from_secs(3),
        "the last of 1000 concurrent connects saw INFO after {slowest:?}"
    );
    Ok(())
}
