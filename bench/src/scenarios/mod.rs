//! The benchmark scenarios. Each `run` returns a `Report` or an error (which
//! makes the process exit non-zero), e.g. when any expected message is missing.

pub mod connect;
pub mod idle;
pub mod jsordered;
pub mod jspub;
pub mod jspull;
pub mod jspush;
mod jswire;
pub mod kv;
pub mod publish;
pub mod pubsub;
pub mod queue;
pub mod reqrep;
pub mod wait;

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::conn::{check_deadline, Aborted, Conn, Msg, ABORT};

/// Join a scoped worker, turning a panic into an error.
pub fn join<T>(h: ScopedJoinHandle<'_, Result<T>>, what: &str) -> Result<T> {
    h.join()
        .map_err(|_| anyhow!("{what} thread panicked"))?
        .map_err(|e| e.context(format!("{what} failed")))
}

/// Collapse worker outcomes: the first error that is a root cause (not a
/// mere "aborted because a sibling failed") wins.
pub fn first_error(errs: Vec<anyhow::Error>) -> Result<()> {
    let idx = errs
        .iter()
        .position(|e| !e.chain().any(|c| c.is::<Aborted>()))
        .unwrap_or(0);
    match errs.into_iter().nth(idx) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Run `f` and raise the global abort flag if it fails, so sibling workers
/// give up promptly.
pub fn abort_on_err<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let r = f();
    if r.is_err() {
        ABORT.store(true, Ordering::Relaxed);
    }
    r
}

/// How long delivery may stall after the publisher finished before we
/// declare messages missing (instead of waiting for the hard cap).
pub const STALL_LIMIT: Duration = Duration::from_secs(5);

/// The receiving side of a consuming loop: handles messages and queues what to send back.
pub trait Handler {
    fn handle(&mut self, msg: Msg<'_>) -> Result<()>;
    /// Bytes queued for the server (acks, answers); [`serve_buffered`] writes and clears them.
    fn queued(&mut self) -> &mut Vec<u8>;
}

/// Hands every frame already buffered to `h` (no blocking read), then writes what it queued.
pub fn serve_buffered(conn: &mut Conn, h: &mut impl Handler) -> Result<()> {
    while let Some(frame) = conn.try_frame()? {
        h.handle(frame.into_msg("consuming")?)?;
    }
    let out = h.queued();
    if !out.is_empty() {
        conn.write(out)?;
        out.clear();
    }
    Ok(())
}

/// Notices a count that stopped growing: [`Progress::check`] fails once it has not changed for
/// [`STALL_LIMIT`].
pub struct Progress {
    last: u64,
    since: Instant,
}

impl Progress {
    pub fn new(count: u64) -> Self {
        Progress {
            last: count,
            since: Instant::now(),
        }
    }

    /// `Ok` while `count` changed within [`STALL_LIMIT`]; else the error `what` describes
    /// (followed by ", none for <STALL_LIMIT>").
    pub fn check(&mut self, count: u64, what: impl FnOnce() -> String) -> Result<()> {
        if count != self.last {
            self.last = count;
            self.since = Instant::now();
        } else if self.since.elapsed() > STALL_LIMIT {
            bail!("{}, none for {STALL_LIMIT:?}", what());
        }
        Ok(())
    }
}

/// Watch subscriber progress until `target` is reached by `sum(counters)`.
/// Fails on overshoot (duplicates), on a stall after `pub_done` is set, or at
/// the deadline. Returns when the target was reached.
pub fn await_total(
    counters: &[AtomicU64],
    target: u64,
    pub_done: &std::sync::atomic::AtomicBool,
    deadline: Instant,
) -> Result<Instant> {
    let mut last = 0u64;
    let mut last_change = Instant::now();
    loop {
        let total: u64 = counters.iter().map(|c| c.load(Ordering::Acquire)).sum();
        if total == target {
            return Ok(Instant::now());
        }
        if total > target {
            bail!("received {total} messages in total, expected exactly {target} (duplicates)");
        }
        if total != last {
            last = total;
            last_change = Instant::now();
        } else if pub_done.load(Ordering::Acquire) && last_change.elapsed() > STALL_LIMIT {
            bail!(
                "messages missing: {total} of {target} delivered, none for {:?} after the publisher finished",
                STALL_LIMIT
            );
        }
        check_deadline(deadline, "waiting for deliveries")?;
        std::thread::sleep(Duration::from_micros(500));
    }
}
