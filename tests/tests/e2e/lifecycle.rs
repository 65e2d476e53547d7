//! Live reconfiguration (SIGHUP) and lame-duck mode (SIGUSR2), as nats-server does them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use async_nats::ConnectOptions;
use natrium_tests::{connect_with, find, sync, RawConn, TestServer, IO_TIMEOUT};

fn signal(server: &TestServer, sig: &str) -> Result<()> {
    let pid = server.pid().context("server is not running")?;
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -{sig} {pid} failed");
    Ok(())
}

async fn token_client(server: &TestServer, token: &str) -> Result<async_nats::Client> {
    connect_with(
        &server.url(),
        ConnectOptions::with_token(token.to_string()).max_reconnects(Some(1)),
    )
    .await
}

#[tokio::test]
async fn sighup_reloads_credentials() -> Result<()> {
    let server = TestServer::with_config("authorization { token: first }\n")?;
    let mut old = RawConn::connect(server.port()).await?;
    old.send("CONNECT {\"verbose\":false,\"auth_token\":\"first\"}\r\nPING\r\n")
        .await?;
    old.expect("PONG\r\n").await?;

    std::fs::write(
        server.dir().join("server.conf"),
        "authorization { token: second }\n",
    )?;
    signal(&server, "HUP")?;
    server
        .wait_for_log("Reloaded server configuration", IO_TIMEOUT)
        .await?;

    // New connections need the new token; the old one is refused.
    ensure!(
        token_client(&server, "first").await.is_err(),
        "the old token must be refused after reload"
    );
    let new = token_client(&server, "second").await?;
    sync(&new).await?;
    // The connection made with the old token is closed, as nats-server does (reload.rs has
    // the rest of what a reload does to open connections).
    let (bytes, closed) = old.read_to_close(IO_TIMEOUT).await?;
    ensure!(
        closed && find(&bytes, b"-ERR 'Authorization Violation'").is_some(),
        "the old-token connection must be closed: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    Ok(())
}

#[tokio::test]
async fn sighup_with_a_broken_file_keeps_the_running_configuration() -> Result<()> {
    let server = TestServer::with_config("authorization { token: keep }\n")?;
    std::fs::write(
        server.dir().join("server.conf"),
        "authorization { token: \n",
    )?;
    signal(&server, "HUP")?;
    server
        .wait_for_log("Failed to reload server configuration", IO_TIMEOUT)
        .await?;
    let c = token_client(&server, "keep").await?;
    sync(&c).await?;
    Ok(())
}

#[tokio::test]
async fn lame_duck_mode_stops_accepting_then_closes_clients_and_exits() -> Result<()> {
    let mut server =
        TestServer::with_config("lame_duck_grace_period: \"1s\"\nlame_duck_duration: \"30s\"\n")?;
    let client = connect_with(&server.url(), ConnectOptions::new().max_reconnects(Some(0))).await?;
    sync(&client).await?;

    let started = Instant::now();
    signal(&server, "USR2")?;
    server
        .wait_for_log(
            "Entering lame duck mode, stop accepting new clients",
            IO_TIMEOUT,
        )
        .await?;
    // Within the grace period the existing client still works, and nobody new gets in.
    sync(&client).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    ensure!(
        std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "a server in lame-duck mode must not accept new connections"
    );
    // The server closes it, then exits by itself.
    server
        .wait_for_log("Server Exiting..", Duration::from_secs(15))
        .await?;
    ensure!(
        started.elapsed() >= Duration::from_millis(900),
        "clients must get the grace period first"
    );
    let status = server.stop_with("TERM");
    ensure!(
        status.is_ok() || std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "server must have exited"
    );
    ensure!(
        std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "listener must be closed"
    );
    Ok(())
}

#[tokio::test]
async fn sigusr1_log_reopen_does_not_stop_the_server() -> Result<()> {
    let server = TestServer::start(&[])?;
    signal(&server, "USR1")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = connect_with(&server.url(), ConnectOptions::new()).await?;
    sync(&c).await?;
    Ok(())
}

#[test]
fn sigterm_stops_a_server_whose_output_pipes_were_closed() -> Result<()> {
    // A supervisor that started the server with pipes and went away: every later log line
    // meets a closed pipe, and SIGTERM must still stop the server.
    let dir = tempfile::tempdir()?;
    let bin = natrium_tests::server_bin()?;
    let mut child = Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", "-1", "-D", "--ports_file_dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning the server")?;
    let name = bin
        .file_name()
        .context("binary name")?
        .to_string_lossy()
        .into_owned();
    let ports_file = dir.path().join(format!("{name}_{}.ports", child.id()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let ports = loop {
        if let Ok(text) = std::fs::read_to_string(&ports_file) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                break v;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no ports file {}",
            ports_file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child.stdout.take());
    drop(child.stderr.take());

    // Make it log (debug logs every connection) into the closed pipes.
    let url = ports["nats"][0]
        .as_str()
        .context("nats URL in the ports file")?;
    let addr = url.trim_start_matches("nats://");
    for _ in 0..3 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::Write;
            let _ = s.write_all(b"CONNECT {}\r\nPING\r\n");
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("the server ignored SIGTERM after its output pipes closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
