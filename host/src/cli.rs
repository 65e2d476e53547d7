//! nats-server-compatible command line.
//!
//! Flags follow Go's `flag` package, which nats-server uses: `-x` and `--x` are the same,
//! values go as `-p 4222` or `-p=4222`, boolean flags take no value or `-D=false`, parsing
//! stops at the first non-flag argument or `--`, and errors read as Go prints them.
//! As in nats-server the configuration file (`-c`) is loaded first and the flags given
//! explicitly are applied over it, in the order given.

use std::path::PathBuf;

use crate::config::{self, ConfigError};
use crate::options::{Options, TlsOptions};

/// What the process was asked to do.
#[derive(Debug, Clone)]
pub enum Command {
    Run(Options),
    /// `-t`: check the configuration file and exit.
    CheckConfig(Options),
    Version,
    Help,
    /// `natrium plugin …`: the plugin author's tools (the `tool` module), with the words after
    /// `plugin`.
    Plugin(Vec<String>),
    /// `--signal stop[=PID]`: signal a running server instead of starting one.
    Signal {
        signal: Signal,
        /// `None`: find the one running natrium process.
        pid: Option<SignalTarget>,
    },
}

/// Signals `--signal` can send, by their nats-server names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `ldm`: enter lame-duck mode.
    LameDuck,
    Stop,
    Quit,
    Term,
    /// `reopen`: reopen the log file.
    Reopen,
    Reload,
}

/// `--signal stop=TARGET`: a process id, or the path of a pid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalTarget {
    Pid(u32),
    PidFile(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("invalid value {value:?} for flag -{flag}: parse error")]
    InvalidValue { flag: String, value: String },
    #[error("invalid boolean value {value:?} for -{flag}: parse error")]
    InvalidBool { flag: String, value: String },
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    #[error("unrecognized command: {0:?}")]
    UnrecognizedCommand(String),
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    #[error("must specify [-c, --config] option to check configuration file syntax")]
    CheckWithoutConfig,
    #[error("TLS Server certificate must be present and valid")]
    TlsCertMissing,
    #[error("TLS Server private key must be present and valid")]
    TlsKeyMissing,
    #[error("solicited routes require cluster capabilities, e.g. --cluster")]
    RoutesWithoutCluster,
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl CliError {
    /// Go's flag package prints the usage after these; the caller may do the same.
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            CliError::UnknownFlag(_)
                | CliError::MissingValue(_)
                | CliError::InvalidValue { .. }
                | CliError::InvalidBool { .. }
                | CliError::BadSyntax(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Addr,
    Port,
    Name,
    Pid,
    HttpPort,
    HttpsPort,
    Config,
    CheckConfig,
    Signal,
    ClientAdvertise,
    PortsFileDir,
    Log,
    Logtime,
    Syslog,
    RemoteSyslog,
    Debug,
    Trace,
    TraceVerbose,
    DebugTrace,
    DebugTraceVerbose,
    LogSizeLimit,
    MaxTracedMsgLen,
    JetStream,
    StoreDir,
    User,
    Pass,
    Auth,
    Tls,
    TlsCert,
    TlsKey,
    TlsVerify,
    TlsCaCert,
    Routes,
    Cluster,
    ClusterName,
    NoAdvertise,
    ClusterAdvertise,
    ConnectRetries,
    ClusterListen,
    Profile,
    Help,
    HelpTls,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Bool,
    Str,
    Int,
}

/// Every flag nats-server 2.9 defines, by each of its names.
const FLAGS: &[(&[&str], Type, Flag)] = &[
    (&["a", "addr", "net"], Type::Str, Flag::Addr),
    (&["p", "port"], Type::Int, Flag::Port),
    (&["n", "name", "server_name"], Type::Str, Flag::Name),
    (&["P", "pid"], Type::Str, Flag::Pid),
    (&["m", "http_port"], Type::Int, Flag::HttpPort),
    (&["ms", "https_port"], Type::Int, Flag::HttpsPort),
    (&["c", "config"], Type::Str, Flag::Config),
    (&["t"], Type::Bool, Flag::CheckConfig),
    (&["sl", "signal"], Type::Str, Flag::Signal),
    (&["client_advertise"], Type::Str, Flag::ClientAdvertise),
    (&["ports_file_dir"], Type::Str, Flag::PortsFileDir),
    (&["l", "log"], Type::Str, Flag::Log),
    (&["T", "logtime"], Type::Bool, Flag::Logtime),
    (&["s", "syslog"], Type::Bool, Flag::Syslog),
    (&["r", "remote_syslog"], Type::Str, Flag::RemoteSyslog),
    (&["D", "debug"], Type::Bool, Flag::Debug),
    (&["V", "trace"], Type::Bool, Flag::Trace),
    (&["VV"], Type::Bool, Flag::TraceVerbose),
    (&["DV"], Type::Bool, Flag::DebugTrace),
    (&["DVV"], Type::Bool, Flag::DebugTraceVerbose),
    (&["log_size_limit"], Type::Int, Flag::LogSizeLimit),
    (&["max_traced_msg_len"], Type::Int, Flag::MaxTracedMsgLen),
    (&["js", "jetstream"], Type::Bool, Flag::JetStream),
    (&["sd", "store_dir"], Type::Str, Flag::StoreDir),
    (&["user"], Type::Str, Flag::User),
    (&["pass"], Type::Str, Flag::Pass),
    (&["auth"], Type::Str, Flag::Auth),
    (&["tls"], Type::Bool, Flag::Tls),
    (&["tlscert"], Type::Str, Flag::TlsCert),
    (&["tlskey"], Type::Str, Flag::TlsKey),
    (&["tlsverify"], Type::Bool, Flag::TlsVerify),
    (&["tlscacert"], Type::Str, Flag::TlsCaCert),
    (&["routes"], Type::Str, Flag::Routes),
    (&["cluster"], Type::Str, Flag::Cluster),
    (&["cluster_name"], Type::Str, Flag::ClusterName),
    (&["no_advertise"], Type::Bool, Flag::NoAdvertise),
    (&["cluster_advertise"], Type::Str, Flag::ClusterAdvertise),
    (&["connect_retries"], Type::Int, Flag::ConnectRetries),
    (&["cluster_listen"], Type::Str, Flag::ClusterListen),
    (&["profile"], Type::Int, Flag::Profile),
    (&["h", "help"], Type::Bool, Flag::Help),
    (&["help_tls"], Type::Bool, Flag::HelpTls),
    (&["v", "version"], Type::Bool, Flag::Version),
];

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Bool(bool),
    Str(String),
    Int(i64),
}

/// One flag as given on the command line, with the name it was given by.
#[derive(Debug, Clone)]
struct Given {
    flag: Flag,
    name: String,
    val: Val,
}

/// Parses the arguments (without argv\[0\]) and, for `Run`/`CheckConfig`, loads the
/// configuration file and applies the flags over it.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let args: Vec<String> = args.into_iter().collect();
    if let Some(("plugin", tool_args)) = args.split_first().map(|(a, r)| (a.as_str(), r)) {
        return Ok(Command::Plugin(tool_args.to_vec()));
    }
    let (given, rest) = parse_flags(args.clone())?;

    // Positional words nats-server understands.
    let mut version = false;
    let mut help = false;
    for word in rest {
        match word.as_str() {
            "version" => version = true,
            "help" => help = true,
            _ => return Err(CliError::UnrecognizedCommand(word)),
        }
    }
    // Later occurrences of a flag win, as Go's flag package overwrites the variable.
    let last = |f: Flag| given.iter().rev().find(|g| g.flag == f).map(|g| &g.val);
    let is_true = |f: Flag| matches!(last(f), Some(Val::Bool(true)));
    let as_str = |f: Flag| match last(f) {
        Some(Val::Str(s)) => Some(s.clone()),
        _ => None,
    };

    if version || is_true(Flag::Version) {
        return Ok(Command::Version);
    }
    if help || is_true(Flag::Help) || is_true(Flag::HelpTls) {
        return Ok(Command::Help);
    }
    if let Some(sig) = as_str(Flag::Signal) {
        return parse_signal(&sig);
    }

    let check = is_true(Flag::CheckConfig);
    let mut opts = match as_str(Flag::Config) {
        Some(path) => config::load(&PathBuf::from(path))?,
        None if check => return Err(CliError::CheckWithoutConfig),
        None => Options::default(),
    };
    apply_flags(&given, &mut opts)?;
    config::validate(&opts)?;
    // The flags as given: a reload parses them again over the re-read file, so that what the
    // command line set always wins (as in nats-server).
    opts.command_line = args;
    Ok(if check {
        Command::CheckConfig(opts)
    } else {
        Command::Run(opts)
    })
}

/// Go `flag.FlagSet.Parse`: returns the flags and the arguments after them.
fn parse_flags<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<(Vec<Given>, Vec<String>), CliError> {
    let mut args = args.into_iter();
    let mut given = Vec::new();
    let mut rest = Vec::new();
    while let Some(arg) = args.next() {
        if arg.len() < 2 || !arg.starts_with('-') {
            rest.push(arg);
            break;
        }
        let body = match arg.strip_prefix("--") {
            Some("") => break, // "--" ends the flags
            Some(b) => b,
            None => &arg[1..],
        };
        if body.starts_with('-') || body.starts_with('=') {
            return Err(CliError::BadSyntax(arg));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(_, ty, flag)) = FLAGS.iter().find(|(names, _, _)| names.contains(&name)) else {
            return Err(CliError::UnknownFlag(name.to_string()));
        };
        let val = match ty {
            Type::Bool => match inline {
                None => Val::Bool(true),
                Some(v) => Val::Bool(parse_go_bool(&v).ok_or_else(|| CliError::InvalidBool {
                    flag: name.to_string(),
                    value: v.clone(),
                })?),
            },
            Type::Str | Type::Int => {
                // Go takes the next argument as the value even if it starts with '-' (`-p -1`).
                let v = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or_else(|| CliError::MissingValue(name.to_string()))?,
                };
                if ty == Type::Int {
                    Val::Int(parse_go_int(&v).ok_or_else(|| CliError::InvalidValue {
                        flag: name.to_string(),
                        value: v.clone(),
                    })?)
                } else {
                    Val::Str(v)
                }
            }
        };
        given.push(Given {
            flag,
            name: name.to_string(),
            val,
        });
    }
    rest.extend(args);
    Ok((given, rest))
}

/// Go `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go `strconv.ParseInt(s, 0, 64)`: decimal, or 0x/0o/0b prefixed.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = digits.replace('_', "");
    let (radix, body) = match digits.get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ => (10, &digits[..]),
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let n = i64::from_str_radix(body, radix).ok()?;
    Some(if neg { -n } else { n })
}

fn parse_signal(s: &str) -> Result<Command, CliError> {
    let (name, target) = match s.split_once('=') {
        Some((n, t)) => (n, Some(t)),
        None => (s, None),
    };
    let signal = match name {
        "ldm" => Signal::LameDuck,
        "stop" => Signal::Stop,
        "quit" => Signal::Quit,
        "term" => Signal::Term,
        "reopen" => Signal::Reopen,
        "reload" => Signal::Reload,
        _ => return Err(CliError::UnknownSignal(name.to_string())),
    };
    let target = target
        .filter(|t| !t.is_empty())
        .map(|t| match t.parse::<u32>() {
            Ok(pid) => SignalTarget::Pid(pid),
            Err(_) => SignalTarget::PidFile(PathBuf::from(t)),
        });
    Ok(Command::Signal {
        signal,
        pid: target,
    })
}

fn port(g: &Given, n: i64) -> Result<i32, CliError> {
    i32::try_from(n)
        .ok()
        .filter(|p| (-1..=65535).contains(p))
        .ok_or_else(|| CliError::InvalidValue {
            flag: g.name.clone(),
            value: n.to_string(),
        })
}

/// Applies explicitly given flags over `opts` (already holding the configuration file).
fn apply_flags(given: &[Given], opts: &mut Options) -> Result<(), CliError> {
    // TLS from flags replaces the file's TLS block as a whole, as in nats-server.
    let mut tls_flags = TlsOptions::default();
    let mut tls_override = false;
    let mut tls_disabled = false;
    let mut routes_given = false;

    for g in given {
        let note = |opts: &mut Options| {
            opts.unsupported
                .push(format!("--{} (command line)", g.name))
        };
        match (g.flag, &g.val) {
            (Flag::Addr, Val::Str(s)) => opts.listen.host = s.clone(),
            (Flag::Port, Val::Int(n)) => opts.listen.port = port(g, *n)?,
            (Flag::Name, Val::Str(s)) => opts.server_name = s.clone(),
            (Flag::Pid, Val::Str(s)) => opts.files.pid_file = Some(s.into()),
            (Flag::HttpPort, Val::Int(n)) => opts.listen.http_port = Some(port(g, *n)?),
            (Flag::ClientAdvertise, Val::Str(s)) => opts.listen.client_advertise = Some(s.clone()),
            (Flag::PortsFileDir, Val::Str(s)) => opts.files.ports_file_dir = Some(s.into()),
            (Flag::Log, Val::Str(s)) => opts.logging.file = Some(s.into()),
            (Flag::Logtime, Val::Bool(b)) => opts.logging.logtime = *b,
            (Flag::Debug, Val::Bool(b)) => opts.logging.debug = *b,
            (Flag::Trace, Val::Bool(b)) => opts.logging.trace = *b,
            (Flag::TraceVerbose, Val::Bool(b)) => {
                opts.logging.trace = *b;
                if *b {
                    note(opts);
                }
            }
            (Flag::DebugTrace, Val::Bool(b)) => {
                opts.logging.debug = *b;
                opts.logging.trace = *b;
            }
            (Flag::DebugTraceVerbose, Val::Bool(b)) => {
                opts.logging.debug = *b;
                opts.logging.trace = *b;
                if *b {
                    note(opts);
                }
            }
            (Flag::JetStream, Val::Bool(b)) => opts.jetstream.enabled = *b,
            (Flag::StoreDir, Val::Str(s)) => opts.jetstream.store_dir = Some(s.into()),
            (Flag::User, Val::Str(s)) => opts.auth.username = Some(s.clone()),
            (Flag::Pass, Val::Str(s)) => opts.auth.password = Some(s.clone()),
            (Flag::Auth, Val::Str(s)) => opts.auth.token = Some(s.clone()),
            (Flag::Tls, Val::Bool(b)) => {
                if *b {
                    tls_override = !tls_disabled;
                } else {
                    // `-tls=false` turns TLS off, whatever else says otherwise.
                    tls_disabled = true;
                    tls_override = false;
                }
            }
            (Flag::TlsCert, Val::Str(s)) => {
                tls_flags.cert_file = Some(s.into());
                tls_override = !tls_disabled;
            }
            (Flag::TlsKey, Val::Str(s)) => {
                tls_flags.key_file = Some(s.into());
                tls_override = !tls_disabled;
            }
            (Flag::TlsCaCert, Val::Str(s)) => {
                tls_flags.ca_file = Some(s.into());
                tls_override = !tls_disabled;
            }
            (Flag::TlsVerify, Val::Bool(b)) => {
                tls_flags.verify = *b;
                tls_override = !tls_disabled;
            }
            (Flag::Routes, Val::Str(s)) => {
                opts.cluster.routes = s
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect();
                routes_given = !opts.cluster.routes.is_empty();
            }
            (Flag::Cluster | Flag::ClusterListen, Val::Str(s)) => {
                opts.cluster.listen = cluster_listen(s, opts, &g.name);
            }
            (Flag::ClusterName, Val::Str(s)) => opts.cluster.name = Some(s.clone()),
            // `--syslog=false` and the like ask for nothing natrium lacks.
            (Flag::Syslog | Flag::NoAdvertise, Val::Bool(true)) => note(opts),
            (
                Flag::HttpsPort
                | Flag::RemoteSyslog
                | Flag::LogSizeLimit
                | Flag::MaxTracedMsgLen
                | Flag::ClusterAdvertise
                | Flag::ConnectRetries
                | Flag::Profile,
                _,
            ) => note(opts),
            // Handled before options are built.
            (
                Flag::Config
                | Flag::CheckConfig
                | Flag::Signal
                | Flag::Help
                | Flag::HelpTls
                | Flag::Version,
                _,
            ) => {}
            // The table gives each flag one type, so nothing else can occur.
            _ => {}
        }
    }

    if tls_disabled {
        opts.tls = None;
    } else if tls_override {
        if tls_flags.cert_file.is_none() {
            return Err(CliError::TlsCertMissing);
        }
        if tls_flags.key_file.is_none() {
            return Err(CliError::TlsKeyMissing);
        }
        // Keep a timeout set in the file; otherwise nats-server's default.
        tls_flags.timeout = opts
            .tls
            .as_ref()
            .map(|t| t.timeout)
            .filter(|t| !t.is_zero())
            .unwrap_or(std::time::Duration::from_secs(2));
        opts.tls = Some(tls_flags);
    }
    if routes_given && opts.cluster.listen.is_none() {
        return Err(CliError::RoutesWithoutCluster);
    }
    Ok(())
}

/// `--cluster nats://[user:pass@]host:port` → "host:port"; empty turns clustering off.
fn cluster_listen(s: &str, opts: &mut Options, flag: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let without_scheme = s.split_once("://").map_or(s, |(_, rest)| rest);
    let host_port = match without_scheme.rsplit_once('@') {
        Some((_, hp)) => {
            opts.unsupported
                .push(format!("--{flag} credentials (command line)"));
            hp
        }
        None => without_scheme,
    };
    Some(host_port.trim_end_matches('/').to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("invalid pid: {0}")]
    InvalidPid(String),
    #[error("no natrium processes running")]
    NoProcess,
    #[error("multiple natrium processes running:\n{0}")]
    Ambiguous(String),
    #[error("failed to send signal: {0}")]
    Failed(String),
}

/// `--signal`: delivers `signal` to a running server the way nats-server does (stop =
/// SIGKILL, quit = SIGINT, term = SIGTERM, reopen = SIGUSR1, reload = SIGHUP, ldm = SIGUSR2).
/// The workspace forbids `unsafe`, so this goes through `kill(1)`/`pgrep(1)` rather than
/// libc. This is the only part of the module that touches the system.
pub fn send_signal(signal: Signal, pid: Option<SignalTarget>) -> Result<(), SignalError> {
    let pid = match pid {
        Some(SignalTarget::Pid(p)) => p,
        Some(SignalTarget::PidFile(path)) => std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
            .ok_or_else(|| SignalError::InvalidPid(path.display().to_string()))?,
        None => find_natrium_pid()?,
    };
    let name = match signal {
        Signal::Stop => "KILL",
        Signal::Quit => "INT",
        Signal::Term => "TERM",
        Signal::Reopen => "USR1",
        Signal::Reload => "HUP",
        Signal::LameDuck => "USR2",
    };
    let out = std::process::Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .output()
        .map_err(|e| SignalError::Failed(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SignalError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

fn find_natrium_pid() -> Result<u32, SignalError> {
    let out = std::process::Command::new("pgrep")
        .args(["-x", "natrium"])
        .output()
        .map_err(|e| SignalError::Failed(format!("unable to run pgrep: {e}")))?;
    let me = std::process::id();
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| *p != me)
        .collect();
    match pids.as_slice() {
        [] => Err(SignalError::NoProcess),
        [one] => Ok(*one),
        many => Err(SignalError::Ambiguous(
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

/// The `-h` text, in nats-server's layout.
pub fn usage() -> &'static str {
    USAGE
}

const USAGE: &str = "
Usage: natrium [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to natrium process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file (e.g. /var/run/natrium.pid)
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -DV                              Debug and trace

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version

Plugin tools:
    natrium plugin check|run|bench   Check, run or benchmark a Wasm plugin (natrium plugin --help)

Also accepted for compatibility with nats-server, but not implemented yet (a warning is
logged): -ms/--https_port, -s/--syslog, -r/--remote_syslog, -VV, -DVV, --log_size_limit,
--max_traced_msg_len, --no_advertise, --cluster_advertise, --connect_retries, --profile.
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn run(line: &str) -> Options {
        match parse(args(line)) {
            Ok(Command::Run(o)) => o,
            other => panic!("{line}: expected Run, got {other:?}"),
        }
    }

    fn fail(line: &str) -> String {
        match parse(args(line)) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{line}: expected an error, got {c:?}"),
        }
    }

    #[test]
    fn no_args_is_defaults() {
        let o = run("");
        assert_eq!(o.listen.port, 4222);
        assert!(o.config_file.is_none());
    }

    #[test]
    fn value_forms() {
        for line in ["-p 4333", "--port 4333", "-p=4333", "--port=4333"] {
            assert_eq!(run(line).listen.port, 4333, "{line}");
        }
        assert_eq!(run("-p -1").listen.port, -1);
        assert_eq!(run("-p=-1").listen.port, -1);
        assert_eq!(run("-p 0x10").listen.port, 16);
        assert_eq!(
            run("-sd=/tmp/js").jetstream.store_dir.as_deref(),
            Some(Path::new("/tmp/js"))
        );
        assert_eq!(
            run("--store_dir /tmp/js2").jetstream.store_dir.as_deref(),
            Some(Path::new("/tmp/js2"))
        );
        // The last occurrence wins.
        assert_eq!(run("-p 1 -p 2").listen.port, 2);
    }

    #[test]
    fn server_flags() {
        let o = run(
            "-a 127.0.0.1 -n srv -m 8222 -P /tmp/p.pid -l /tmp/l.log --ports_file_dir /tmp \
                     --client_advertise adv:4222",
        );
        assert_eq!(o.listen.host, "127.0.0.1");
        assert_eq!(o.server_name, "srv");
        assert_eq!(o.listen.http_port, Some(8222));
        assert_eq!(o.files.pid_file.as_deref(), Some(Path::new("/tmp/p.pid")));
        assert_eq!(o.logging.file.as_deref(), Some(Path::new("/tmp/l.log")));
        assert_eq!(o.files.ports_file_dir.as_deref(), Some(Path::new("/tmp")));
        assert_eq!(o.listen.client_advertise.as_deref(), Some("adv:4222"));
        assert_eq!(run("--addr 1.2.3.4").listen.host, "1.2.3.4");
        assert_eq!(run("--net 1.2.3.5").listen.host, "1.2.3.5");
        assert_eq!(run("--name a").server_name, "a");
        assert_eq!(run("--server_name b").server_name, "b");
        assert_eq!(run("--http_port 9").listen.http_port, Some(9));
    }

    #[test]
    fn boolean_flags() {
        let o = run("-D -V");
        assert!(o.logging.debug && o.logging.trace);
        let o = run("-DV");
        assert!(o.logging.debug && o.logging.trace);
        let o = run("-DV -D=false");
        assert!(!o.logging.debug && o.logging.trace);
        assert!(!run("-T=false").logging.logtime);
        assert!(!run("--logtime=0").logging.logtime);
        assert!(run("-T").logging.logtime);
        assert!(run("-js").jetstream.enabled);
        assert!(run("--jetstream=true").jetstream.enabled);
        assert!(run("--debug=T").logging.debug);
        assert!(run("-VV").logging.trace);
        // A boolean flag does not consume the next argument.
        assert_eq!(fail("-D false"), "unrecognized command: \"false\"");
        assert_eq!(
            fail("-D=maybe"),
            "invalid boolean value \"maybe\" for -D: parse error"
        );
    }

    #[test]
    fn auth_flags() {
        let o = run("--user u --pass p");
        assert_eq!(
            (o.auth.username.as_deref(), o.auth.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(run("--auth tok").auth.token.as_deref(), Some("tok"));
        assert!(fail("--user u --auth t").contains("Cannot have a user/pass and token"));
    }

    #[test]
    fn tls_flags() {
        let t = run("--tls --tlscert c.pem --tlskey k.pem")
            .tls
            .expect("tls");
        assert_eq!(t.cert_file.as_deref(), Some(Path::new("c.pem")));
        assert_eq!(t.key_file.as_deref(), Some(Path::new("k.pem")));
        assert!(!t.verify);
        assert_eq!(t.timeout, Duration::from_secs(2));
        // --tlsverify implies TLS; cert and key alone enable it too.
        let t = run("--tlsverify --tlscert c --tlskey k --tlscacert ca")
            .tls
            .expect("tls");
        assert!(t.verify);
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("ca")));
        assert!(run("--tlscert c --tlskey k").tls.is_some());
        assert_eq!(
            fail("--tls"),
            "TLS Server certificate must be present and valid"
        );
        assert_eq!(
            fail("--tlscert x"),
            "TLS Server private key must be present and valid"
        );
        assert!(run("--tls=false --tlscert c").tls.is_none());
    }

    #[test]
    fn cluster_flags() {
        let o = run(
            "--cluster nats://0.0.0.0:6222 --routes nats://a:6222,nats://b:6222 --cluster_name c",
        );
        assert_eq!(o.cluster.listen.as_deref(), Some("0.0.0.0:6222"));
        assert_eq!(
            o.cluster.routes,
            vec!["nats://a:6222".to_string(), "nats://b:6222".to_string()]
        );
        assert_eq!(o.cluster.name.as_deref(), Some("c"));
        assert_eq!(
            run("--cluster_listen 127.0.0.1:7000")
                .cluster
                .listen
                .as_deref(),
            Some("127.0.0.1:7000")
        );
        assert_eq!(
            fail("--routes nats://a:1"),
            "solicited routes require cluster capabilities, e.g. --cluster"
        );
        let o = run("--no_advertise --connect_retries 3 -ms 8443");
        assert_eq!(o.unsupported.len(), 3);
    }

    #[test]
    fn go_flag_errors() {
        assert_eq!(fail("-x"), "flag provided but not defined: -x");
        assert_eq!(fail("--bogus=1"), "flag provided but not defined: -bogus");
        assert_eq!(fail("-p"), "flag needs an argument: -p");
        assert_eq!(
            fail("-p abc"),
            "invalid value \"abc\" for flag -p: parse error"
        );
        assert_eq!(
            fail("-p 99999"),
            "invalid value \"99999\" for flag -p: parse error"
        );
        assert_eq!(fail("---p 1"), "bad flag syntax: ---p");
        assert_eq!(fail("-=1"), "bad flag syntax: -=1");
        assert_eq!(fail("-p 1 extra"), "unrecognized command: \"extra\"");
        assert_eq!(
            fail("-t"),
            "must specify [-c, --config] option to check configuration file syntax"
        );
        assert!(parse(args("-x")).err().is_some_and(|e| e.is_usage_error()));
        // Flags are case sensitive, as in Go.
        assert_eq!(fail("-d"), "flag provided but not defined: -d");
    }

    #[test]
    fn end_of_flags() {
        // After "--" or the first non-flag, nothing is a flag.
        assert_eq!(fail("-- -p"), "unrecognized command: \"-p\"");
        assert_eq!(fail("-D - -p 1"), "unrecognized command: \"-\"");
    }

    #[test]
    fn version_help_signal() {
        for line in ["-v", "--version", "version", "-p 1 version"] {
            assert!(matches!(parse(args(line)), Ok(Command::Version)), "{line}");
        }
        for line in ["-h", "--help", "help", "--help_tls"] {
            assert!(matches!(parse(args(line)), Ok(Command::Help)), "{line}");
        }
        assert!(matches!(parse(args("-h=false")), Ok(Command::Run(_))));
        let sig = |line: &str| match parse(args(line)) {
            Ok(Command::Signal {
                signal,
                pid: target,
            }) => (signal, target),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(sig("--signal stop"), (Signal::Stop, None));
        assert_eq!(
            sig("-sl ldm=123"),
            (Signal::LameDuck, Some(SignalTarget::Pid(123)))
        );
        assert_eq!(
            sig("--signal=reload=42"),
            (Signal::Reload, Some(SignalTarget::Pid(42)))
        );
        assert_eq!(
            sig("--signal quit=/var/run/n.pid"),
            (
                Signal::Quit,
                Some(SignalTarget::PidFile("/var/run/n.pid".into()))
            )
        );
        assert_eq!(sig("--signal term").0, Signal::Term);
        assert_eq!(sig("--signal reopen").0, Signal::Reopen);
        assert_eq!(fail("--signal foo"), "unknown signal \"foo\"");
        assert_eq!(fail("-sl"), "flag needs an argument: -sl");
    }

    #[test]
    fn flags_override_config() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let conf = dir.path().join("n.conf");
        std::fs::write(
            &conf,
            "port: 5000\nserver_name: fromfile\ndebug: true\nmax_payload: 2MB\n\
             tls { cert_file: fc, key_file: fk, timeout: 5 }\n",
        )?;
        let c = conf.display();
        let o = run(&format!("-c {c} -p 6000 -D=false"));
        assert_eq!(o.listen.port, 6000);
        assert!(!o.logging.debug);
        assert_eq!(o.server_name, "fromfile");
        assert_eq!(o.limits.max_payload, 2 << 20);
        assert_eq!(o.config_file.as_deref(), Some(conf.as_path()));
        // Flag order does not matter: the file is always loaded first.
        assert_eq!(run(&format!("-p 6001 --config={c}")).listen.port, 6001);
        // TLS flags replace the file's TLS block but keep its timeout.
        let t = run(&format!("-c {c} --tlscert c2 --tlskey k2"))
            .tls
            .expect("tls");
        assert_eq!(t.cert_file.as_deref(), Some(Path::new("c2")));
        assert_eq!(t.timeout, Duration::from_secs(5));
        assert!(run(&format!("-c {c} --tls=false")).tls.is_none());
        // Routes need cluster capabilities, which the file may provide.
        std::fs::write(&conf, "cluster { listen: 0.0.0.0:6222 }\n")?;
        assert_eq!(
            run(&format!("-c {c} --routes nats://x:1"))
                .cluster
                .routes
                .len(),
            1
        );
        // -t returns the options instead of running.
        assert!(matches!(
            parse(args(&format!("-t -c {c}"))),
            Ok(Command::CheckConfig(_))
        ));
        // Config errors come through with their position.
        std::fs::write(&conf, "port: 1\nbogus: 2\n")?;
        assert!(fail(&format!("-c {c}")).ends_with("n.conf:2:1: unknown field \"bogus\""));
        assert!(fail(&format!("-t -c {c}")).contains("unknown field"));
        assert!(fail("-c /nonexistent/x.conf").contains("error opening config file"));
        // Cross-checks apply after flags are merged.
        std::fs::write(&conf, "max_payload: 60MB\n")?;
        assert!(run(&format!("-c {c}")).limits.max_payload == 60 << 20);
        Ok(())
    }

    #[test]
    fn usage_lists_flags() {
        let u = usage();
        for flag in [
            "--addr",
            "--port",
            "--config",
            "--signal",
            "--tlsverify",
            "--routes",
            "--jetstream",
            "-DV",
        ] {
            assert!(u.contains(flag), "{flag}");
        }
        assert!(u.contains("Usage: natrium"));
    }

    #[test]
    fn signal_to_bad_pid_file() {
        let r = send_signal(
            Signal::Reload,
            Some(SignalTarget::PidFile("/nonexistent/n.pid".into())),
        );
        assert_eq!(
            r.err().map(|e| e.to_string()).as_deref(),
            Some("invalid pid: /nonexistent/n.pid")
        );
    }

    #[test]
    fn never_panics_on_odd_args() {
        for line in [
            "-", "--", "-=", "--=", "-é", "--é=ü", "-p=", "-p= ", "-sl=", "-sl =",
        ] {
            let _ = parse(args(line));
        }
        let _ = parse(vec![String::new(), "-p".into(), String::new()]);
    }
}
