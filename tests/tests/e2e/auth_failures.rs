//! Authentication failures (issue 12 item 8): counted in `/varz` and `/metrics`, logged a
//! few lines a second, as slow to refuse for an unknown user as for a wrong password, and —
//! with `authorization { failure_backoff {} }` — answered with a delay once an address has
//! failed too often, without slowing anyone else down.
//!
//! nats-server 2.9.10 has none of this: against it these tests only check the refusals (and
//! print its timings).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use async_nats::ConnectOptions;
use natrium_tests::{
    connect_with, http_get, is_nats_server, metric_value, sync, RawConn, TestServer, IO_TIMEOUT,
};

const REFUSED: &str = "-ERR 'Authorization Violation'\r\n";

/// Sends CONNECT with `user`/`pass` and PING; returns what came back (up to the close, or
/// the PONG) and how long the answer took.
async fn attempt(port: u16, user: &str, pass: &str) -> Result<(String, Duration)> {
    let mut c = RawConn::connect(port).await?;
    let start = Instant::now();
    c.send(format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\nPING\r\n"
    ))
    .await?;
    let got = c.read_until(b"\r\n", IO_TIMEOUT).await?;
    Ok((String::from_utf8_lossy(&got).into_owned(), start.elapsed()))
}

async fn refused(port: u16, user: &str, pass: &str) -> Result<Duration> {
    let (got, took) = attempt(port, user, pass).await?;
    ensure!(
        got == REFUSED,
        "{user}/{pass}: expected a refusal, got {got:?}"
    );
    Ok(took)
}

async fn accepted(port: u16, user: &str, pass: &str) -> Result<Duration> {
    let (got, took) = attempt(port, user, pass).await?;
    ensure!(
        got == "PONG\r\n",
        "{user}/{pass}: expected PONG, got {got:?}"
    );
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn failures_are_counted_and_their_log_lines_limited() -> Result<()> {
    let server = TestServer::with_config_and_args(
        "authorization { user: app, password: right }\n",
        &["-m", "-1"],
    )?;
    let mport = server.monitor_port().context("no monitoring port logged")?;
    const BAD: u64 = 300;
    for i in 0..BAD {
        refused(server.port(), "app", &format!("guess{i}")).await?;
    }
    accepted(server.port(), "app", "right").await?;
    if is_nats_server() {
        return Ok(());
    }
    let varz = http_get(mport, "/varz").await?.json()?;
    assert_eq!(varz["auth_failures"], serde_json::json!(BAD), "{varz:#}");
    let metrics = http_get(mport, "/metrics").await?.body;
    assert_eq!(
        metric_value(&metrics, "natrium_auth_failures_total", &[]),
        Some(BAD),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE natrium_auth_failures_total counter"));

    // The next second's first failure says how many were not logged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mark = server.log_mark();
    refused(server.port(), "app", "one-more").await?;
    server
        .wait_for_log_after(mark, "more authentication failures not logged", IO_TIMEOUT)
        .await?;
    let logs = server.logs();
    let lines = logs.matches("authentication error").count();
    assert!(
        (1..BAD as usize / 3).contains(&lines),
        "{lines} failure lines logged for {BAD} failures"
    );
    let not_logged: u64 = logs
        .lines()
        .filter_map(|l| {
            let (head, _) = l.split_once(" more authentication failures not logged")?;
            head.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(
        not_logged + lines as u64,
        BAD + 1,
        "every failure is either logged or counted in a summary line:\n{logs}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_user_takes_as_long_to_refuse_as_a_wrong_password() -> Result<()> {
    let hash = bcrypt::hash("right", 10)?;
    let server = TestServer::with_config(&format!(
        "authorization {{ users: [ {{ user: app, password: \"{hash}\" }} ] }}\n"
    ))?;
    let port = server.port();
    accepted(port, "app", "right").await?;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..7 {
        known.push(refused(port, "app", &format!("wrong{i}")).await?);
        unknown.push(refused(port, &format!("nobody{i}"), "wrong").await?);
    }
    let (known, unknown) = (median(known), median(unknown));
    eprintln!("bcrypt cost 10, median time to refusal: wrong password {known:?}, unknown user {unknown:?}");
    if !is_nats_server() {
        assert!(
            unknown.as_secs_f64() >= 0.3 * known.as_secs_f64(),
            "an unknown user is refused in {unknown:?}, a wrong password in {known:?}: \
             the time tells which users exist"
        );
    }
    Ok(())
}

fn backoff_conf(backoff: bool) -> String {
    let b = if backoff {
        "failure_backoff: { max_failures: 3, window: \"10s\", delay: \"1s\" }"
    } else {
        ""
    };
    format!("authorization {{\n  users: [ {{ user: app, password: right }} ]\n  {b}\n}}\n")
}

#[tokio::test]
async fn failure_backoff_delays_an_address_that_keeps_failing_and_nobody_else() -> Result<()> {
    if is_nats_server() {
        return Ok(()); // natrium's own setting
    }
    let server = TestServer::with_config(&backoff_conf(true))?;
    let port = server.port();
    let delay = Duration::from_secs(1);
    // A connection that already exists.
    let client = connect_with(
        &server.url(),
        ConnectOptions::new().user_and_password("app".into(), "right".into()),
    )
    .await?;
    let mut sub = client.subscribe("still.working").await?;
    sync(&client).await?;

    for i in 0..3 {
        let took = refused(port, "app", &format!("guess{i}")).await?;
        ensure!(
            took < delay / 2,
            "attempt {i} before the back-off took {took:?}"
        );
    }
    // The fourth is answered only after the delay; meanwhile the existing connection works
    // without waiting.
    let slow = tokio::spawn(async move { refused(port, "app", "guess3").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    client.publish("still.working", "x".into()).await?;
    let m = tokio::time::timeout(IO_TIMEOUT, futures::StreamExt::next(&mut sub))
        .await?
        .context("subscription ended")?;
    assert_eq!(m.payload, "x");
    let roundtrip = start.elapsed();
    ensure!(
        roundtrip < delay / 2,
        "an existing connection waited {roundtrip:?}"
    );
    let took = slow.await??;
    ensure!(took >= delay, "the 4th failure was refused after {took:?}");

    // Right credentials from that address wait too; a success forgets the failures.
    let took = accepted(port, "app", "right").await?;
    ensure!(
        took >= delay,
        "the good attempt was answered after {took:?}"
    );
    let took = refused(port, "app", "again").await?;
    ensure!(took < delay / 2, "after a success a failure took {took:?}");

    // A reload that turns the back-off off takes effect at once.
    // ("again" and these two make the three failures that would delay the next attempt.)
    for i in 0..2 {
        refused(port, "app", &format!("more{i}")).await?;
    }
    super::reload::rewrite_and_hup(
        &server,
        &backoff_conf(false),
        "Reloaded server configuration",
    )
    .await?;
    let took = refused(port, "app", "after-reload").await?;
    ensure!(
        took < delay / 2,
        "with the back-off off a failure took {took:?}"
    );
    Ok(())
}

#[tokio::test]
async fn password_guessing_does_not_stall_other_clients() -> Result<()> {
    // bcrypt at cost 10 holds a thread for ~50 ms per guess; 2 x 16 guessers in flight would
    // keep both workers of a 2-core machine busy if the checks ran on them.
    let hash = bcrypt::hash("right", 10)?;
    let server = TestServer::with_config(&format!(
        "authorization {{ users: [ {{ user: app, password: \"{hash}\" }} ] }}\n"
    ))?;
    let port = server.port();
    let app = connect_with(
        &server.url(),
        ConnectOptions::with_user_and_password("app".into(), "right".into()),
    )
    .await?;
    sync(&app).await?;
    let until = Instant::now() + Duration::from_secs(3);
    let guessers: Vec<_> = (0..32)
        .map(|i| {
            tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < until {
                    refused(port, if i % 2 == 0 { "app" } else { "nobody" }, "guess").await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rtts = Vec::new();
    while Instant::now() + Duration::from_millis(200) < until {
        let start = Instant::now();
        sync(&app).await?;
        rtts.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut guesses = 0;
    for g in guessers {
        guesses += g.await??;
    }
    rtts.sort();
    let p90 = rtts[rtts.len() * 9 / 10];
    eprintln!(
        "{guesses} wrong guesses in 3 s; a connected client's round trip meanwhile: median {:?}, p90 {p90:?}",
        rtts[rtts.len() / 2]
    );
    if !is_nats_server() {
        ensure!(
            p90 < Duration::from_millis(40),
            "a connected client waited {p90:?} (p90) for a round trip while others guessed passwords"
        );
    }
    Ok(())
}
