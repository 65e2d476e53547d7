//! Command-line parsing (hand-rolled: a handful of `--flag value` options).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

pub const USAGE: &str = "\
natrium-bench: raw-protocol NATS load generator (loopback only)

USAGE: natrium-bench <SCENARIO> [OPTIONS]

SCENARIOS:
  pub      N publishers send --msgs messages in total (no subscribers)
  pubsub   1 publisher -> --subs subscribers; each must get every message
  queue    1 publisher -> a --subs member queue group (default 4 members)
  reqrep   1 requester <-> 1 responder, sequential round trips, latency
  idle     open --conns connections, report server RSS per connection
  wait     wait until a server answers CONNECT/PING (for scripts)

OPTIONS:
  --url HOST:PORT      server address, must be loopback [127.0.0.1:4222]
  --msgs N             messages (reqrep: measured requests)
                       [pub/pubsub/queue 1000000, reqrep 20000]
  --size BYTES         payload size; >= 8 enables sequence checks [128]
  --pubs N             publishers for `pub` (messages are split) [1]
  --subs N             subscribers (pubsub) / queue members (queue) [1 / 4]
  --subject S          subject [bench.<scenario>]
  --window BYTES       pacing window, 0 = unpaced (see publisher.rs) [8388608]
  --warmup N           reqrep: unmeasured warm-up round trips [1000]
  --conns N            idle: connections to open [10000]
  --server-pid PID     idle: server process whose VmRSS is measured
  --settle-ms MS       idle: pause before reading RSS [1000]
  --timeout SECS       hard wall-clock cap for the whole run [60]
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Pub,
    PubSub,
    Queue,
    ReqRep,
    Idle,
    Wait,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pub => "pub",
            Self::PubSub => "pubsub",
            Self::Queue => "queue",
            Self::ReqRep => "reqrep",
            Self::Idle => "idle",
            Self::Wait => "wait",
        }
    }
}

#[derive(Debug)]
pub struct Args {
    pub scenario: Scenario,
    pub url: String,
    pub msgs: u64,
    pub size: usize,
    pub pubs: usize,
    pub subs: usize,
    pub subject: String,
    pub window: usize,
    pub warmup: u64,
    pub conns: usize,
    pub server_pid: Option<u32>,
    pub settle: Duration,
    pub timeout: Duration,
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.replace('_', "")
        .parse::<T>()
        .with_context(|| format!("invalid value {v:?} for {flag}"))
}

/// Parse `argv[1..]`. Returns `Ok(None)` when help was requested.
pub fn parse(argv: &[String]) -> Result<Option<Args>> {
    let mut it = argv.iter();
    let Some(first) = it.next() else {
        bail!("missing scenario\n\n{USAGE}");
    };
    let scenario = match first.as_str() {
        "-h" | "--help" | "help" => return Ok(None),
        "pub" => Scenario::Pub,
        "pubsub" | "sub" => Scenario::PubSub,
        "queue" => Scenario::Queue,
        "reqrep" | "req" => Scenario::ReqRep,
        "idle" => Scenario::Idle,
        "wait" => Scenario::Wait,
        other => bail!("unknown scenario {other:?}\n\n{USAGE}"),
    };
    let mut a = Args {
        scenario,
        url: "127.0.0.1:4222".into(),
        msgs: if scenario == Scenario::ReqRep {
            20_000
        } else {
            1_000_000
        },
        size: 128,
        pubs: 1,
        subs: if scenario == Scenario::Queue { 4 } else { 1 },
        subject: format!("bench.{}", scenario.name()),
        window: 8 << 20,
        warmup: 1000,
        conns: 10_000,
        server_pid: None,
        settle: Duration::from_millis(1000),
        timeout: Duration::from_secs(60),
    };
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let v = it
            .next()
            .ok_or_else(|| anyhow!("flag {flag} needs a value"))?;
        match flag.as_str() {
            "--url" | "-s" => a.url = v.clone(),
            "--msgs" => a.msgs = num(flag, v)?,
            "--size" => a.size = num(flag, v)?,
            "--pubs" => a.pubs = num(flag, v)?,
            "--subs" => a.subs = num(flag, v)?,
            "--subject" => a.subject = v.clone(),
            "--window" => a.window = num(flag, v)?,
            "--warmup" => a.warmup = num(flag, v)?,
            "--conns" => a.conns = num(flag, v)?,
            "--server-pid" => a.server_pid = Some(num(flag, v)?),
            "--settle-ms" => a.settle = Duration::from_millis(num(flag, v)?),
            "--timeout" => a.timeout = Duration::from_secs_f64(num(flag, v)?),
            other => bail!("unknown flag {other:?}\n\n{USAGE}"),
        }
    }
    if a.msgs == 0 {
        bail!("--msgs must be > 0");
    }
    if a.pubs == 0 || a.subs == 0 {
        bail!("--pubs and --subs must be > 0");
    }
    if a.subject.is_empty() || a.subject.contains(char::is_whitespace) {
        bail!("--subject must be a non-empty token without whitespace");
    }
    Ok(Some(a))
}
