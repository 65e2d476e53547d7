//! Log lines in nats-server's shape, because tools that wrap nats-server find it by its log:
//! `[PID] 2006/01/02 15:04:05.000000 [INF] Listening for client connections on 0.0.0.0:4222`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct NatsFormat {
    pid: u32,
    logtime: bool,
}

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "[{}] ", self.pid)?;
        if self.logtime {
            write!(w, "{} ", timestamp())?;
        }
        let meta = event.metadata();
        let tag = if meta.target().ends_with("::fatal") {
            "FTL"
        } else {
            match *meta.level() {
                Level::ERROR => "ERR",
                Level::WARN => "WRN",
                Level::INFO => "INF",
                Level::DEBUG => "DBG",
                Level::TRACE => "TRC",
            }
        };
        write!(w, "[{tag}] ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot open log file {}: {source}", path.display())]
    OpenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A global subscriber was already installed.
    #[error("installing logger: {0}")]
    Install(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn timestamp() -> String {
    crate::timefmt::log_stamp(std::time::SystemTime::now())
}

/// Installs the global subscriber. `-D` enables debug, `-V` trace; `-l FILE` appends there.
pub fn init(
    debug: bool,
    trace: bool,
    logtime: bool,
    file: Option<&Path>,
) -> Result<(), LoggingError> {
    let level = if trace {
        Level::TRACE
    } else if debug {
        Level::DEBUG
    } else {
        Level::INFO
    };
    let format = NatsFormat {
        pid: std::process::id(),
        logtime,
    };
    // A log line that cannot be written (the reader of stderr went away) is dropped: the
    // default reports it with eprintln!, which panics on a closed pipe — inside a signal
    // handler that would leave SIGTERM ignored.
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .log_internal_errors(false)
        .event_format(format);
    let result = match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LoggingError::OpenFile {
                    path: path.to_path_buf(),
                    source,
                })?;
            builder
                .with_writer(std::sync::Mutex::new(LineWriter(f)))
                .try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(LoggingError::Install)
}

/// Flushes each line so a log file can be tailed by tools waiting for "Server is ready".
struct LineWriter(std::fs::File);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
