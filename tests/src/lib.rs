//! Test harness for natrium's end-to-end tests.
//!
//! Every test is written and validated against the reference `nats-server`
//! (v2.9.10) first; the server binary under test is chosen by
//! [`server_bin`]: `$NATRIUM_BIN` if set, else the `natrium` binary that
//! cargo built next to the test executable.
//!
//! The pieces:
//! * [`TestServer`]: spawns the server on a random port (`-a 127.0.0.1 -p -1`),
//!   waits for the `Listening for client connections on 127.0.0.1:PORT` and
//!   `Server is ready` log lines, keeps draining its output into a buffer
//!   (assertable through [`TestServer::logs`]) and kills it on drop.
//! * [`RawConn`]: a plain TCP connection speaking the NATS text protocol by
//!   hand, for byte-exact assertions.
//! * [`http_get`]: a tiny HTTP/1.0 GET for the monitoring endpoints.
//! * [`within`]: every await in a test goes through a timeout.
//! * [`jwt`]: NATS JWTs signed and read with the `nkeys` crate, not natrium's code.
//! * [`callout`]: the protocol side of an auth callout service (read a request, answer it).

pub mod callout;
pub mod jwt;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a server gets to print `Server is ready`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout for a single protocol-level wait.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The log line (as nats-server prints it) announcing the client port.
pub const LISTENING_MARKER: &str = "Listening for client connections on ";
/// The log line (as nats-server prints it) announcing the server is up.
pub const READY_MARKER: &str = "Server is ready";
/// The log line nats-server 2.9 prints for the HTTP monitoring listener
/// (`Starting http monitor on 127.0.0.1:PORT`).
pub const MONITOR_MARKER: &str = "Starting http monitor on ";

/// Path of the reference server, used by the differential tests.
pub const REFERENCE_SERVER: &str = "/usr/sbin/nats-server";

/// Runs `fut` with a timeout, turning expiry into an error naming `what`.
pub async fn within<T, F>(timeout: Duration, what: &str, fut: F) -> Result<T>
where
    F: std::future::Future<Output = T>,
{
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow!("timed out after {timeout:?} waiting for {what}"))
}

/// The server binary under test: `$NATRIUM_BIN`, else `natrium` next to the
/// test executable (test executables live in `target/<profile>/deps/`, the
/// binary in `target/<profile>/`).
pub fn server_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("NATRIUM_BIN").filter(|b| !b.is_empty()) {
        let path = PathBuf::from(bin);
        if !path.is_file() {
            bail!(
                "NATRIUM_BIN={} does not exist or is not a file",
                path.display()
            );
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot locate the test executable")?;
    let mut candidates = Vec::new();
    let mut dir = exe.parent();
    // deps/ -> <profile>/ ; also look one more level up just in case.
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let d = if d.file_name().is_some_and(|n| n == "deps") {
            match d.parent() {
                Some(p) => p,
                None => d,
            }
        } else {
            d
        };
        let cand = d.join(format!("natrium{}", std::env::consts::EXE_SUFFIX));
        if cand.is_file() {
            return Ok(cand);
        }
        candidates.push(cand);
        dir = d.parent();
    }
    bail!(
        "the natrium server binary was not found (looked at: {}).\n\
         Build it first with `cargo build -p natrium` (same profile and target dir as the tests; \
         a plain `cargo test` at the workspace root builds it), or point NATRIUM_BIN at a server \
         binary, e.g. NATRIUM_BIN=/usr/sbin/nats-server",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Output of `<server> -v`, cached.
pub fn version_output() -> Result<String> {
    static CACHE: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let bin = server_bin().map_err(|e| format!("{e:#}"))?;
            let out = Command::new(&bin)
                .arg("-v")
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running {} -v: {e}", bin.display()))?;
            Ok(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// True when the binary under test is the reference nats-server (its `-v`
/// output starts with `nats-server: v`), used to skip natrium-only features.
pub fn is_nats_server() -> bool {
    version_output().is_ok_and(|v| v.trim_start().starts_with("nats-server: v"))
}

/// True when the reference server is installed.
pub fn reference_server_available() -> bool {
    Path::new(REFERENCE_SERVER).is_file()
}

/// The directory with the committed test PKI.
pub fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("certs")
}

/// A file in the committed test PKI, as a string for command-line use.
pub fn cert(name: &str) -> String {
    certs_dir().join(name).display().to_string()
}

/// The workspace root (the directory above this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// A built Wasm plugin component: `target/plugins/<name>.wasm` (the example plugins, built by
/// `plugins/build.sh`; `$NATRIUM_PLUGIN_OUT` if that is set) or
/// `target/test-guests/<name>.wasm` (the hostile and well-behaved test guests, built by
/// `tests/guests/build.sh`), both at the workspace root. Fails, saying how to build them,
/// when the component is missing: a plugin test must never pass without its plugin.
pub fn plugin_path(name: &str) -> Result<PathBuf> {
    let root = workspace_root();
    let mut dirs = Vec::new();
    if let Some(out) = std::env::var_os("NATRIUM_PLUGIN_OUT").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(out));
    }
    dirs.push(root.join("target").join("plugins"));
    dirs.push(root.join("target").join("test-guests"));
    let file = format!("{name}.wasm");
    for d in &dirs {
        let cand = d.join(&file);
        if cand.is_file() {
            return Ok(cand);
        }
    }
    bail!(
        "the Wasm component {file} was not found (looked in {}): run plugins/build.sh and \
         tests/guests/build.sh (or ./scripts/test, which runs both)",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Accumulates a child's output and wakes waiters on each new line.
#[derive(Default)]
struct LogBuf {
    text: Mutex<String>,
    cv: Condvar,
}

impl LogBuf {
    fn push_line(&self, line: &str) {
        let mut t = self.text.lock().unwrap_or_else(|p| p.into_inner());
        t.push_str(line);
        if !line.ends_with('\n') {
            t.push('\n');
        }
        self.cv.notify_all();
    }

    fn snapshot(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn len(&self) -> usize {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Waits until `pred(text[from..])` holds or `timeout` passes.
    fn wait_for(&self, from: usize, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut t = self.text.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if pred(t.get(from..).unwrap_or("")) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Wake up periodically so callers can also notice process exit.
            let wait = (deadline - now).min(Duration::from_millis(50));
            t = self
                .cv
                .wait_timeout(t, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn drain_into<R: Read + Send + 'static>(reader: R, logs: Arc<LogBuf>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => logs.push_line(&String::from_utf8_lossy(&buf)),
            }
        }
    });
}

/// Extracts `PORT` from a `<marker>HOST:PORT` log line.
fn port_after(logs: &str, marker: &str) -> Option<u16> {
    let line = logs.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(marker)? + marker.len()..];
    let addr = rest.split_whitespace().next()?;
    addr.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// A running server process under test.
pub struct TestServer {
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    logs: Arc<LogBuf>,
    port: u16,
    monitor_port: Option<u16>,
    dir: tempfile::TempDir,
    startup_timeout: Duration,
    /// `RLIMIT_FSIZE` for the process, in bytes (see [`set_file_size_limit`](Self::set_file_size_limit)).
    file_size_limit: Option<u64>,
}

impl TestServer {
    /// Like [`start`](Self::start), with no file the server writes allowed to grow past
    /// `bytes` (see [`set_file_size_limit`](Self::set_file_size_limit)).
    pub fn start_with_file_size_limit(args: &[&str], bytes: u64) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temp dir for the server")?;
        let args = args.iter().map(|s| s.to_string()).collect();
        Self::launch(server_bin()?, dir, args, STARTUP_TIMEOUT, Some(bytes))
    }

    /// Sets (or lifts) the file size limit for the next [`restart`](Self::restart): the
    /// process runs under `RLIMIT_FSIZE` with `SIGXFSZ` ignored, so a write past the limit
    /// fails with `EFBIG` — a full disk, deterministically and without privileges. Rounded
    /// down to 512-byte blocks (`ulimit -f` of `/bin/sh`).
    pub fn set_file_size_limit(&mut self, bytes: Option<u64>) {
        self.file_size_limit = bytes;
    }

    /// Starts the server with `-a 127.0.0.1 -p -1` plus `args`.
    pub fn start(args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temp dir for the server")?;
        Self::start_in(
            server_bin()?,
            dir,
            args.iter().map(|s| s.to_string()).collect(),
        )
    }

    /// Writes `conf` to a temp file and starts the server with `-c <file>`.
    pub fn with_config(conf: &str) -> Result<Self> {
        Self::with_config_and_args(conf, &[])
    }

    /// Like [`with_config`](Self::with_config) with extra command-line args.
    pub fn with_config_and_args(conf: &str, args: &[&str]) -> Result<Self> {
        Self::with_config_args_and_timeout(conf, args, STARTUP_TIMEOUT)
    }

    /// Like [`with_config_and_args`](Self::with_config_and_args), waiting up to
    /// `startup_timeout` (instead of [`STARTUP_TIMEOUT`]) for the server to become ready, on
    /// this start and on every [`restart`](Self::restart): for servers that do slow work
    /// before listening, such as compiling a large Wasm plugin.
    pub fn with_config_args_and_timeout(
        conf: &str,
        args: &[&str],
        startup_timeout: Duration,
    ) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temp dir for the server")?;
        let path = dir.path().join("server.conf");
        std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
        let mut all = vec!["-c".to_string(), path.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        Self::start_in_with_timeout(server_bin()?, dir, all, startup_timeout)
    }

    /// Starts a specific server binary (e.g. the reference nats-server for
    /// differential tests) with `-a 127.0.0.1 -p -1` plus `args`.
    pub fn start_bin(bin: &Path, args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temp dir for the server")?;
        Self::start_in(
            bin.to_path_buf(),
            dir,
            args.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn start_in(bin: PathBuf, dir: tempfile::TempDir, args: Vec<String>) -> Result<Self> {
        Self::start_in_with_timeout(bin, dir, args, STARTUP_TIMEOUT)
    }

    fn start_in_with_timeout(
        bin: PathBuf,
        dir: tempfile::TempDir,
        args: Vec<String>,
        startup_timeout: Duration,
    ) -> Result<Self> {
        Self::launch(bin, dir, args, startup_timeout, None)
    }

    fn launch(
        bin: PathBuf,
        dir: tempfile::TempDir,
        args: Vec<String>,
        startup_timeout: Duration,
        file_size_limit: Option<u64>,
    ) -> Result<Self> {
        let mut s = TestServer {
            bin,
            args,
            child: None,
            logs: Arc::new(LogBuf::default()),
            port: 0,
            monitor_port: None,
            dir,
            startup_timeout,
            file_size_limit,
        };
        s.spawn(None)?;
        Ok(s)
    }

    fn spawn(&mut self, port: Option<u16>) -> Result<()> {
        let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
        let mut cmd = match self.file_size_limit {
            None => Command::new(&self.bin),
            Some(bytes) => {
                // An ignored signal stays ignored across exec; `$0` is the block count.
                let mut sh = Command::new("/bin/sh");
                sh.args(["-c", "trap '' XFSZ; ulimit -f \"$0\" && exec \"$@\""])
                    .arg((bytes / 512).to_string())
                    .arg(&self.bin);
                sh
            }
        };
        cmd.args(["-a", "127.0.0.1", "-p", &port_arg])
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let from = self.logs.len();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        if let Some(out) = child.stdout.take() {
            drain_into(out, self.logs.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain_into(err, self.logs.clone());
        }
        self.child = Some(child);

        let startup_timeout = self.startup_timeout;
        let deadline = Instant::now() + startup_timeout;
        loop {
            let ready = self.logs.wait_for(from, Duration::from_millis(100), |t| {
                t.contains(READY_MARKER) && t.contains(LISTENING_MARKER)
            });
            if ready {
                break;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    // Give the drain threads a moment to collect the last words.
                    std::thread::sleep(Duration::from_millis(100));
                    bail!(
                        "server {} {:?} exited with {status} before becoming ready; output:\n{}",
                        self.bin.display(),
                        self.args,
                        self.logs.snapshot()
                    );
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "server {} {:?} did not log `{READY_MARKER}` and `{LISTENING_MARKER}...` \
                     within {startup_timeout:?}; output so far:\n{}",
                    self.bin.display(),
                    self.args,
                    self.logs.snapshot()
                );
            }
        }
        let text = self.logs.snapshot();
        let fresh = text.get(from..).unwrap_or("");
        self.port = port_after(fresh, LISTENING_MARKER).with_context(|| {
            format!("could not parse the client port from the server log:\n{fresh}")
        })?;
        self.monitor_port = port_after(fresh, MONITOR_MARKER);
        Ok(())
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port the server is listening on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTP monitoring port, if the server logged one.
    pub fn monitor_port(&self) -> Option<u16> {
        self.monitor_port
    }

    /// Everything the server wrote to stdout/stderr so far (all runs).
    pub fn logs(&self) -> String {
        self.logs.snapshot()
    }

    /// Waits until the logs contain `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_for_log_after(0, needle, timeout).await
    }

    /// How much the server has logged so far: a mark for [`wait_for_log_after`](Self::wait_for_log_after).
    pub fn log_mark(&self) -> usize {
        self.logs.len()
    }

    /// Waits until the server logs a line containing `needle` after `mark`.
    pub async fn wait_for_log_after(
        &self,
        mark: usize,
        needle: &str,
        timeout: Duration,
    ) -> Result<()> {
        let logs = self.logs.clone();
        let n = needle.to_string();
        let found =
            tokio::task::spawn_blocking(move || logs.wait_for(mark, timeout, |t| t.contains(&n)))
                .await
                .context("log waiter panicked")?;
        if !found {
            bail!(
                "server log did not contain {needle:?} within {timeout:?}; log:\n{}",
                self.logs()
            );
        }
        Ok(())
    }

    /// PID of the running server process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The binary this server runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The server's temp dir (config file, pid files, ...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends SIGTERM and waits for the process to exit (SIGKILL after 10 s).
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_with("TERM")
    }

    /// Sends the named signal (`TERM`, `INT`, ...) and waits for the process
    /// to exit (SIGKILL after 10 s).
    pub fn stop_with(&mut self, signal: &str) -> Result<ExitStatus> {
        let mut child = self.child.take().context("server is not running")?;
        let pid = child.id().to_string();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().context("waiting for the server")? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait().context("waiting for the killed server")?;
                bail!("server did not exit within 10s of SIGTERM (killed: {status})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server and starts it again with the same args on the same
    /// port (retrying briefly while the port is still being released).
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        let port = self.port;
        let mut last = None;
        for _ in 0..20 {
            match self.spawn(Some(port)) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(mut c) = self.child.take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("restart failed")))
            .with_context(|| format!("restarting the server on port {port}"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Connects an async-nats client to `url` with a bounded connect time.
pub async fn connect(url: &str) -> Result<async_nats::Client> {
    connect_with(url, async_nats::ConnectOptions::new()).await
}

/// Connects with the given options, bounded by a timeout.
pub async fn connect_with(
    url: &str,
    opts: async_nats::ConnectOptions,
) -> Result<async_nats::Client> {
    let opts = opts.connection_timeout(Duration::from_secs(5));
    within(Duration::from_secs(10), "client connect", opts.connect(url))
        .await?
        .with_context(|| format!("connecting to {url}"))
}

/// A hand-driven NATS protocol connection over plain TCP.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
    /// The INFO line the server sent on connect (including `\r\n`).
    pub info_line: String,
}

impl RawConn {
    /// Connects and reads the initial `INFO` line.
    pub async fn connect(port: u16) -> Result<Self> {
        let stream = within(
            IO_TIMEOUT,
            "raw TCP connect",
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await?
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        let _ = stream.set_nodelay(true);
        let mut c = RawConn {
            stream,
            buf: Vec::new(),
            closed: false,
            info_line: String::new(),
        };
        let info = c
            .read_until(b"\r\n", IO_TIMEOUT)
            .await
            .context("reading INFO")?;
        c.info_line = String::from_utf8(info).context("INFO is not UTF-8")?;
        if !c.info_line.starts_with("INFO {") {
            bail!("expected INFO first, got {:?}", c.info_line);
        }
        Ok(c)
    }

    /// The JSON object of the INFO line.
    pub fn info(&self) -> Result<serde_json::Value> {
        let json = self
            .info_line
            .trim_end()
            .strip_prefix("INFO ")
            .context("INFO line without `INFO ` prefix")?;
        serde_json::from_str(json).with_context(|| format!("INFO JSON does not parse: {json}"))
    }

    /// Writes all of `data`.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> Result<()> {
        within(
            IO_TIMEOUT,
            "raw write",
            self.stream.write_all(data.as_ref()),
        )
        .await?
        .context("writing to the server")
    }

    async fn fill(&mut self) -> Result<usize> {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk).await {
            Ok(0) => {
                self.closed = true;
                Ok(0)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                self.closed = true;
                Ok(0)
            }
            Err(e) => Err(e).context("reading from the server"),
        }
    }

    /// Reads until `pattern` appears; returns (and consumes) everything up to
    /// and including it.
    pub async fn read_until(&mut self, pattern: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = find(&self.buf, pattern) {
                let end = pos + pattern.len();
                return Ok(self.buf.drain(..end).collect());
            }
            if self.closed {
                bail!(
                    "connection closed before {:?} arrived; got {:?}",
                    String::from_utf8_lossy(pattern),
                    String::from_utf8_lossy(&self.buf)
                );
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(r) => {
                    r?;
                }
                Err(_) => bail!(
                    "timed out after {timeout:?} waiting for {:?}; got {:?}",
                    String::from_utf8_lossy(pattern),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads exactly `expected.len()` bytes and checks they equal `expected`.
    pub async fn expect(&mut self, expected: impl AsRef<[u8]>) -> Result<()> {
        let expected = expected.as_ref();
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        while self.buf.len() < expected.len() && !self.closed {
            if tokio::time::timeout_at(deadline, self.fill())
                .await
                .is_err()
            {
                break;
            }
        }
        let n = expected.len().min(self.buf.len());
        let got: Vec<u8> = self.buf.drain(..n).collect();
        if got != expected {
            bail!(
                "expected {:?}\n     got {:?}{}",
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(&got),
                if self.closed {
                    " (connection closed)"
                } else {
                    ""
                }
            );
        }
        Ok(())
    }

    /// Reads until the server closes the connection (or `timeout` passes);
    /// returns everything read and whether the connection was closed.
    pub async fn read_to_close(&mut self, timeout: Duration) -> Result<(Vec<u8>, bool)> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.closed {
            if tokio::time::timeout_at(deadline, self.fill())
                .await
                .is_err()
            {
                break;
            }
        }
        Ok((std::mem::take(&mut self.buf), self.closed))
    }

    /// Reads whatever arrives within `quiet` (used to assert "nothing more").
    pub async fn read_for(&mut self, quiet: Duration) -> Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + quiet;
        while !self.closed {
            if tokio::time::timeout_at(deadline, self.fill())
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Whether the server has closed the connection (as observed so far).
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// Case-insensitive header lookup.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses the body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("body is not JSON ({}):\n{}", self.status_line, self.body))
    }
}

/// `GET path HTTP/1.0` to 127.0.0.1:port; reads to EOF.
pub async fn http_get(port: u16, path: &str) -> Result<HttpResponse> {
    let fut = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to monitoring port {port}"))?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = within(IO_TIMEOUT, &format!("HTTP GET {path}"), fut).await??;
    let text = String::from_utf8(raw).context("HTTP response is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("malformed HTTP response: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad HTTP status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status_line,
        status,
        headers,
        body: body.to_string(),
    })
}

/// Runs the server binary with `args` (not as a long-running server) and
/// captures its output, killing it if it runs longer than `timeout`.
pub fn run_bin(args: &[&str], cwd: &Path, timeout: Duration) -> Result<std::process::Output> {
    let bin = server_bin()?;
    let mut child = Command::new(&bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let out_pipe = child.stdout.take();
    let err_pipe = child.stderr.take();
    let read_all = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = read_all(out_pipe.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err_t = read_all(err_pipe.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{} {}` did not exit within {timeout:?}",
                bin.display(),
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// Makes sure the server has processed everything `client` sent so far
/// (e.g. its SUBs) by a round trip through the server on the same
/// connection. async-nats 0.51's `flush()` only flushes the socket: it does
/// not wait for the server, so `subscribe` + `flush` races with a publisher
/// on another connection.
pub async fn sync(client: &async_nats::Client) -> Result<()> {
    let inbox = client.new_inbox();
    let mut s = client
        .subscribe(inbox.clone())
        .await
        .context("sync: subscribe")?;
    client
        .publish(inbox, Bytes::from_static(b"sync"))
        .await
        .context("sync: publish")?;
    next_msg(&mut s, "sync round trip through the server").await?;
    Ok(())
}

/// Next message on `sub`, failing on timeout or end of stream.
pub async fn next_msg(sub: &mut async_nats::Subscriber, what: &str) -> Result<async_nats::Message> {
    use futures::StreamExt;
    within(IO_TIMEOUT, what, sub.next())
        .await?
        .with_context(|| format!("subscription ended while waiting for {what}"))
}

/// Asserts that nothing arrives on `sub` for `quiet`.
pub async fn assert_no_msg(
    sub: &mut async_nats::Subscriber,
    quiet: Duration,
    what: &str,
) -> Result<()> {
    use futures::StreamExt;
    match tokio::time::timeout(quiet, sub.next()).await {
        Err(_) => Ok(()),
        Ok(Some(m)) => bail!(
            "{what}: unexpected message on {} with payload {:?}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        ),
        Ok(None) => bail!("{what}: subscription ended unexpectedly"),
    }
}

/// Splits server output into protocol frames: each control line (with its
/// `\r\n`), and for `MSG`/`HMSG` the control line plus payload and trailing
/// `\r\n`. Incomplete trailing data becomes a final frame as-is.
pub fn parse_frames(data: &[u8]) -> Vec<String> {
    let mut frames = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(eol) = find(rest, b"\r\n") else {
            frames.push(String::from_utf8_lossy(rest).into_owned());
            break;
        };
        let line = &rest[..eol];
        let mut end = eol + 2;
        let text = String::from_utf8_lossy(line);
        let mut parts = text.split_whitespace();
        let op = parts.next().unwrap_or_default();
        if op == "MSG" || op == "HMSG" {
            let size = text
                .split_whitespace()
                .last()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
            end = (eol + 2 + size + 2).min(rest.len());
        }
        frames.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        rest = &rest[end..];
    }
    frames
}

/// [`parse_frames`], with each run of consecutive `MSG`/`HMSG` frames sorted:
/// the order in which one connection's several matching subscriptions get a
/// message is unspecified (nats-server varies it between runs).
pub fn normalized_frames(data: &[u8]) -> Vec<String> {
    let frames = parse_frames(data);
    let mut out = Vec::with_capacity(frames.len());
    let mut run: Vec<String> = Vec::new();
    for f in frames {
        if f.starts_with("MSG ") || f.starts_with("HMSG ") {
            run.push(f);
        } else {
            run.sort();
            out.append(&mut run);
            out.push(f);
        }
    }
    run.sort();
    out.append(&mut run);
    out
}

/// Resident memory of process `pid`, in KiB (Linux `/proc`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// The value of the first Prometheus sample in `text` named `metric` whose labels contain
/// every one of `labels` (each written `key="value"`).
pub fn metric_value(text: &str, metric: &str, labels: &[&str]) -> Option<u64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{'))
                && labels.iter().all(|want| l.contains(want))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
