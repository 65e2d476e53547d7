//! Command-line parsing (hand-rolled: a handful of `--flag value` options).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::publisher::{PayloadKind, PII_MIN_SIZE};
use crate::subscriber::Expect;

pub const USAGE: &str = "\
natrium-bench: raw-protocol NATS load generator (loopback only)

USAGE: natrium-bench <SCENARIO> [OPTIONS]

SCENARIOS:
  pub      N publishers send --msgs messages in total (no subscribers)
  pubsub   1 publisher -> --subs subscribers; each must get every message
  queue    1 publisher -> a --subs member queue group (default 4 members)
  reqrep   1 requester <-> 1 responder, sequential round trips, latency
  idle     open --conns connections, report server RSS per connection
  connect  --conns sequential connections, each INFO -> CONNECT -> PING -> PONG,
           then closed; connects/s and per-connect latency (optionally with
           credentials: --user/--pass, --token, a minted HS256 --jwt-secret,
           an NKey --nkey-seed, or an operator-mode --creds / --user-jwt)
  gen-operator DIR
           write NKey/operator-mode keys, JWTs, .creds and server configs for
           bench/auth.sh into DIR (see src/genauth.rs)
  js-pub   JetStream publish to a fresh file-backed --stream bound to --subject:
           --msgs PubAcked messages of --size bytes, after --warmup ones;
           --mode sync (one in flight: msgs/s, ack latency) or async
           (--inflight in flight: msgs/s); every ack and the final stream
           info are verified
  js-pull  JetStream pull consumer: fill a fresh --stream with --msgs messages,
           then consume them all with a durable pull consumer, --batch per
           request, two requests outstanding, acking each (--ack explicit) or
           not (--ack none); msgs/s; order, count and final consumer info
           are verified
  js-push  JetStream push consumer: fill a fresh --stream with --msgs messages,
           then consume them with a durable push consumer (flow control,
           1 s idle heartbeats), acking each (--ack explicit) or not (--ack
           none); msgs/s; order, count and final consumer info are verified
  js-ordered
           the same with an ordered consumer as the clients make it (ephemeral,
           ack none, max_deliver 1, memory, flow control, 5 s heartbeats);
           consumer sequences must be gap-free
  kv       JetStream KV bucket --stream (stream KV_<bucket>, history 1):
           --mode put: --msgs sequential puts over --keys keys, PubAck checked;
           --mode get: --keys puts, then --msgs sequential direct gets of
           pseudo-random keys, each value checked; ops/s, latency p50/p90/p99
  wait     wait until a server answers CONNECT/PING (for scripts)

OPTIONS:
  --url HOST:PORT      server address, must be loopback [127.0.0.1:4222]
  --msgs N             messages (reqrep: measured requests)
                       [pub/pubsub/queue 1000000, reqrep 20000,
                       js-pub sync 5000, js-pub async 50000, js-pull,
                       js-push, js-ordered 100000, kv 5000]
  --size BYTES         payload size; >= 8 enables sequence checks [128]
  --payload KIND       binary: sequence in bytes 0..8, then a..z [binary]
                       pii: JSON with the sequence in a seq field; every odd
                       message carries an e-mail address and a card number
                       (pubsub/queue; needs --size >= 91)
  --expect-redacted Y  yes: with --payload pii, odd messages must arrive
                       redacted (Natrium-Redacted header, markers instead of
                       the PII) and even ones unchanged; no: every message
                       must arrive unchanged [no]
  --pubs N             publishers for `pub` (messages are split) [1]
  --subs N             subscribers (pubsub) / queue members (queue) [1 / 4]
  --subject S          subject [bench.<scenario>]
  --window BYTES       pacing window, 0 = unpaced (see publisher.rs) [8388608]
  --warmup N           reqrep: unmeasured warm-up round trips [1000];
                       js-pub: unmeasured messages first, one in flight [100];
                       kv: unmeasured operations first [100];
                       connect: unmeasured connections first [100]
  --conns N            idle: connections to open [10000]; connect: measured
                       connections [2000]
  --user U --pass P    connect: CONNECT with user and password
  --token T            connect: CONNECT with auth_token T
  --jwt-secret S       connect: CONNECT with auth_token = an HS256 JWT signed
                       with S, minted per connection (sub bench-<i>, exp +1h)
  --jwt-tenant T       connect: the JWT's tenant claim [bench]
  --nkey-seed SEED     connect: NKey user; CONNECT with nkey + sig (the INFO
                       nonce signed with SEED)
  --creds FILE         connect: operator-mode user from a .creds file; CONNECT
                       with jwt + sig
  --user-jwt JWT --user-seed SEED
                       connect: the same, without a file
  (pub, pubsub, queue, js-pub: --user/--pass are sent by every connection)
  --mode M             js-pub: sync or async [async]; kv: put or get [put]
  --inflight N         js-pub async: unacknowledged messages at most [256]
  --stream NAME        js-*: stream name (deleted and re-created); kv: bucket
                       name (stream KV_<NAME>) [BENCH]
  --storage S          js-*, kv: file or memory [file]
  --batch N            js-pull: messages per pull request [100]
  --ack A              js-pull, js-push: explicit or none [explicit]
  --keys N             kv: distinct keys [100]
  --server-pid PID     idle: server process whose VmRSS is measured
  --settle-ms MS       idle: pause before reading RSS [1000]
  --linger-ms MS       js-push, js-ordered: after the last message, keep reading
                       (unmeasured) for MS, checking heartbeats and answering
                       flow control; any message fails the run [0]
  --timeout SECS       hard wall-clock cap for the whole run [60]
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Pub,
    PubSub,
    Queue,
    ReqRep,
    Idle,
    Connect,
    Wait,
    JsPub,
    JsPull,
    JsPush,
    JsOrdered,
    Kv,
}

/// `js-pub`: one message in flight, or a window of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsMode {
    Sync,
    Async,
}

impl JsMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }
}

/// `kv`: what is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvMode {
    Put,
    Get,
}

impl KvMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
        }
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pub => "pub",
            Self::PubSub => "pubsub",
            Self::Queue => "queue",
            Self::ReqRep => "reqrep",
            Self::Idle => "idle",
            Self::Connect => "connect",
            Self::Wait => "wait",
            Self::JsPub => "js-pub",
            Self::JsPull => "js-pull",
            Self::JsPush => "js-push",
            Self::JsOrdered => "js-ordered",
            Self::Kv => "kv",
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
    /// js-push, js-ordered: how long to keep listening after the last message.
    pub linger: Duration,
    pub timeout: Duration,
    pub payload: PayloadKind,
    pub expect_redacted: bool,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    pub jwt_secret: Option<String>,
    pub jwt_tenant: String,
    pub nkey_seed: Option<String>,
    pub creds: Option<String>,
    pub user_jwt: Option<String>,
    pub user_seed: Option<String>,
    pub mode: JsMode,
    pub inflight: u64,
    pub stream: String,
    pub storage: String,
    pub batch: u64,
    /// js-pull, js-push: explicit acks (else ack policy none).
    pub ack_explicit: bool,
    pub kv_mode: KvMode,
    /// kv: distinct keys.
    pub keys: u64,
}

impl Args {
    /// How subscribers verify payloads.
    pub fn expect(&self) -> Expect {
        Expect {
            kind: self.payload,
            redacted: self.expect_redacted,
        }
    }

    /// Extra CONNECT members for subscriber connections: `Pii` subscribers accept
    /// headers, since a redactor stamps one; plus `--user`/`--pass` if given.
    pub fn sub_connect_extra(&self) -> String {
        let headers = match self.payload {
            PayloadKind::Binary => "",
            PayloadKind::Pii => "\"headers\":true",
        };
        match (headers, self.user_pass_extra()) {
            (h, u) if u.is_empty() => h.to_owned(),
            ("", u) => u,
            (h, u) => format!("{h},{u}"),
        }
    }

    /// `"user":..,"pass":..` CONNECT members when `--user`/`--pass` are given
    /// (pub/pubsub connections log in with them), else empty.
    pub fn user_pass_extra(&self) -> String {
        if self.user.is_none() && self.pass.is_none() {
            return String::new();
        }
        format!(
            "\"user\":{},\"pass\":{}",
            serde_json::Value::from(self.user.as_deref().unwrap_or_default()),
            serde_json::Value::from(self.pass.as_deref().unwrap_or_default())
        )
    }
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
        "connect" => Scenario::Connect,
        "wait" => Scenario::Wait,
        "js-pub" | "jspub" => Scenario::JsPub,
        "js-pull" | "jspull" => Scenario::JsPull,
        "js-push" | "jspush" => Scenario::JsPush,
        "js-ordered" | "jsordered" => Scenario::JsOrdered,
        "kv" => Scenario::Kv,
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
        warmup: if matches!(scenario, Scenario::Connect | Scenario::JsPub | Scenario::Kv) {
            100
        } else {
            1000
        },
        conns: if scenario == Scenario::Connect {
            2000
        } else {
            10_000
        },
        server_pid: None,
        settle: Duration::from_millis(1000),
        linger: Duration::ZERO,
        timeout: Duration::from_secs(60),
        payload: PayloadKind::Binary,
        expect_redacted: false,
        user: None,
        pass: None,
        token: None,
        jwt_secret: None,
        jwt_tenant: "bench".into(),
        nkey_seed: None,
        creds: None,
        user_jwt: None,
        user_seed: None,
        mode: JsMode::Async,
        inflight: 256,
        stream: "BENCH".into(),
        storage: "file".into(),
        batch: 100,
        ack_explicit: true,
        kv_mode: KvMode::Put,
        keys: 100,
    };
    let mut msgs_given = false;
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let v = it
            .next()
            .ok_or_else(|| anyhow!("flag {flag} needs a value"))?;
        match flag.as_str() {
            "--url" | "-s" => a.url = v.clone(),
            "--msgs" => {
                a.msgs = num(flag, v)?;
                msgs_given = true;
            }
            "--size" => a.size = num(flag, v)?,
            "--pubs" => a.pubs = num(flag, v)?,
            "--subs" => a.subs = num(flag, v)?,
            "--subject" => a.subject = v.clone(),
            "--window" => a.window = num(flag, v)?,
            "--warmup" => a.warmup = num(flag, v)?,
            "--conns" => a.conns = num(flag, v)?,
            "--server-pid" => a.server_pid = Some(num(flag, v)?),
            "--settle-ms" => a.settle = Duration::from_millis(num(flag, v)?),
            "--linger-ms" => a.linger = Duration::from_millis(num(flag, v)?),
            "--timeout" => a.timeout = Duration::from_secs_f64(num(flag, v)?),
            "--payload" => {
                a.payload = match v.as_str() {
                    "binary" => PayloadKind::Binary,
                    "pii" => PayloadKind::Pii,
                    other => bail!("--payload must be binary or pii, not {other:?}"),
                }
            }
            "--expect-redacted" => {
                a.expect_redacted = match v.as_str() {
                    "yes" | "true" | "1" => true,
                    "no" | "false" | "0" => false,
                    other => bail!("--expect-redacted must be yes or no, not {other:?}"),
                }
            }
            "--user" => a.user = Some(v.clone()),
            "--pass" => a.pass = Some(v.clone()),
            "--token" => a.token = Some(v.clone()),
            "--jwt-secret" => a.jwt_secret = Some(v.clone()),
            "--jwt-tenant" => a.jwt_tenant = v.clone(),
            "--nkey-seed" => a.nkey_seed = Some(v.clone()),
            "--creds" => a.creds = Some(v.clone()),
            "--user-jwt" => a.user_jwt = Some(v.clone()),
            "--user-seed" => a.user_seed = Some(v.clone()),
            "--mode" if scenario == Scenario::Kv => {
                a.kv_mode = match v.as_str() {
                    "put" => KvMode::Put,
                    "get" => KvMode::Get,
                    other => bail!("--mode must be put or get, not {other:?}"),
                }
            }
            "--mode" => {
                a.mode = match v.as_str() {
                    "sync" => JsMode::Sync,
                    "async" => JsMode::Async,
                    other => bail!("--mode must be sync or async, not {other:?}"),
                }
            }
            "--inflight" => a.inflight = num(flag, v)?,
            "--stream" => a.stream = v.clone(),
            "--storage" => {
                if v != "file" && v != "memory" {
                    bail!("--storage must be file or memory, not {v:?}");
                }
                a.storage = v.clone();
            }
            "--batch" => a.batch = num(flag, v)?,
            "--keys" => a.keys = num(flag, v)?,
            "--ack" => {
                a.ack_explicit = match v.as_str() {
                    "explicit" => true,
                    "none" => false,
                    other => bail!("--ack must be explicit or none, not {other:?}"),
                }
            }
            other => bail!("unknown flag {other:?}\n\n{USAGE}"),
        }
    }
    if !msgs_given {
        match scenario {
            Scenario::JsPull | Scenario::JsPush | Scenario::JsOrdered => a.msgs = 100_000,
            Scenario::Kv => a.msgs = 5_000,
            _ => {}
        }
    }
    if scenario == Scenario::JsPub && !msgs_given {
        a.msgs = match a.mode {
            JsMode::Sync => 5_000,
            JsMode::Async => 50_000,
        };
    }
    if a.msgs == 0 {
        bail!("--msgs must be > 0");
    }
    if a.batch == 0 {
        bail!("--batch must be > 0");
    }
    if a.keys == 0 {
        bail!("--keys must be > 0");
    }
    if a.inflight == 0 {
        bail!("--inflight must be > 0");
    }
    if a.stream.is_empty()
        || a.stream
            .contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>'))
    {
        bail!("--stream must be a non-empty name without '.', '*', '>' or whitespace");
    }
    if a.pubs == 0 || a.subs == 0 {
        bail!("--pubs and --subs must be > 0");
    }
    if a.subject.is_empty() || a.subject.contains(char::is_whitespace) {
        bail!("--subject must be a non-empty token without whitespace");
    }
    if a.payload == PayloadKind::Pii && a.size < PII_MIN_SIZE {
        bail!("--payload pii needs --size >= {PII_MIN_SIZE}");
    }
    if a.expect_redacted && a.payload != PayloadKind::Pii {
        bail!("--expect-redacted yes needs --payload pii");
    }
    let creds = usize::from(a.user.is_some() || a.pass.is_some())
        + usize::from(a.token.is_some())
        + usize::from(a.jwt_secret.is_some())
        + usize::from(a.nkey_seed.is_some())
        + usize::from(a.creds.is_some())
        + usize::from(a.user_jwt.is_some() || a.user_seed.is_some());
    if creds > 1 {
        bail!("give one of --user/--pass, --token, --jwt-secret, --nkey-seed, --creds, --user-jwt/--user-seed");
    }
    if a.conns == 0 {
        bail!("--conns must be > 0");
    }
    Ok(Some(a))
}
