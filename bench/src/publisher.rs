//! The publishing side shared by `pub`, `pubsub` and `queue`, including the
//! pacing policy.
//!
//! # Pacing (why, and why it is fair)
//!
//! An unpaced publisher on loopback can outrun the subscribers by far more
//! than a server's per-client `max_pending` (64 MiB for nats-server), at which
//! point the server rightly disconnects the subscriber as a slow consumer and
//! the run measures nothing useful. `nats bench` does not pace; we do, with a
//! single knob, `--window BYTES` (default 8 MiB, 0 = unpaced):
//!
//! 1. Server window: after every `window/2` bytes of PUB frames the publisher
//!    appends a `PING` to the batch, and it never has more than one of those
//!    PINGs un-answered. So at most ~`window` bytes are ever in flight
//!    between the publisher and the server's parser.
//! 2. Consumer window (only when there are subscribers): before writing the
//!    next batch the publisher waits until the subscribers (the slowest one
//!    for fan-out, the group total for a queue group) are within
//!    `window / frame_len` messages of what has been published.
//!
//! Both rules depend only on what the *server* acknowledges or delivers, so
//! every server is held to exactly the same protocol-level pacing; a faster
//! server simply gets through its windows faster. With the default 8 MiB
//! window a subscriber can never have more than ~8 MiB pending in the server,
//! far below the 64 MiB slow-consumer limit.
//!
//! Writes are batched: ~64 KiB of PUB frames per write syscall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::conn::{check_deadline, Conn};

/// Target size of one write batch.
pub const BATCH_BYTES: usize = 64 * 1024;

/// How publisher progress is throttled against the subscribers.
pub enum ConsumerWindow<'a> {
    /// No subscribers: only the server (PING/PONG) window applies.
    None,
    /// Every counter must be within the window (fan-out: the slowest subscriber).
    Min(&'a [AtomicU64]),
    /// The sum of counters must be within the window (queue group).
    Sum(&'a [AtomicU64]),
}

impl ConsumerWindow<'_> {
    fn acked(&self) -> Option<u64> {
        match self {
            Self::None => None,
            Self::Min(c) => c.iter().map(|a| a.load(Ordering::Acquire)).min(),
            Self::Sum(c) => Some(c.iter().map(|a| a.load(Ordering::Acquire)).sum()),
        }
    }
}

/// Fill the payload template: bytes 0..8 carry the big-endian sequence
/// number (when the payload is large enough), the rest is a fixed pattern.
pub fn payload_template(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

pub struct PubResult {
    /// From the first write to the PONG answering the final PING.
    pub elapsed: Duration,
}

/// Publish messages with sequence numbers `first..first + count` on `subject`
/// and finish with a PING/PONG round trip so the server has provably
/// processed all of them.
pub fn publish(
    conn: &mut Conn,
    subject: &str,
    size: usize,
    first: u64,
    count: u64,
    window: usize,
    consumers: &ConsumerWindow<'_>,
) -> Result<PubResult> {
    let header = format!("PUB {subject} {size}\r\n");
    let frame_len = header.len() + size + 2;
    // Subscribers receive a slightly longer MSG line than our PUB line; use a
    // generous estimate so the consumer window stays within `window` bytes.
    let window_msgs = if window == 0 {
        u64::MAX
    } else {
        ((window / (frame_len + 16)) as u64).max(1)
    };
    let ping_every = if window == 0 {
        usize::MAX
    } else {
        (window / 2).max(1)
    };

    // Pre-build one full batch of identical frames; per batch only the 8-byte
    // sequence numbers are patched in place, so the generator spends almost
    // no CPU per message.
    let per_batch = BATCH_BYTES.div_ceil(frame_len).max(1);
    let mut frame = Vec::with_capacity(frame_len);
    frame.extend_from_slice(header.as_bytes());
    frame.extend_from_slice(&payload_template(size));
    frame.extend_from_slice(b"\r\n");
    let mut batch: Vec<u8> = frame.repeat(per_batch);
    let seq_off = header.len();

    let mut since_ping = 0usize;
    let mut outstanding_pings = 0u32;
    let end = first + count;
    let mut seq = first;
    let start = Instant::now();

    while seq < end {
        // Consumer window: don't get more than window_msgs ahead.
        if let Some(mut acked) = consumers.acked() {
            let sent = seq - first;
            let mut spins = 0u32;
            while sent.saturating_sub(acked) >= window_msgs {
                spins += 1;
                if spins < 64 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_micros(50));
                    check_deadline(conn.deadline, "waiting for subscribers to catch up")?;
                }
                acked = consumers.acked().unwrap_or(sent);
            }
        }

        let n = (end - seq).min(per_batch as u64) as usize;
        if size >= 8 {
            for k in 0..n {
                let off = k * frame_len + seq_off;
                batch[off..off + 8].copy_from_slice(&(seq + k as u64).to_be_bytes());
            }
        }
        seq += n as u64;
        conn.write(&batch[..n * frame_len])?;
        since_ping += n * frame_len;
        if since_ping >= ping_every {
            // Never more than one server-window PING outstanding.
            while outstanding_pings >= 1 {
                conn.wait_pong()?;
                outstanding_pings -= 1;
            }
            conn.write(b"PING\r\n")?;
            since_ping = 0;
            outstanding_pings += 1;
        }
    }
    conn.write(b"PING\r\n")?;
    outstanding_pings += 1;
    while outstanding_pings > 0 {
        conn.wait_pong()?;
        outstanding_pings -= 1;
    }
    let elapsed = start.elapsed();
    if seq != end {
        bail!("internal error: published {} of {count}", seq - first);
    }
    Ok(PubResult { elapsed })
}
