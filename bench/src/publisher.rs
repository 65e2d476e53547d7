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

/// What the published payloads look like (`--payload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// [`payload_template`]: the sequence number big-endian in bytes 0..8, then a fixed
    /// `a..z` pattern. Not UTF-8 once the sequence has a byte >= 0x80, so it is binary data.
    Binary,
    /// A JSON object of exactly `size` bytes for a PII redactor to work on:
    /// `{"seq":"q<16 lower-case hex digits>","user":…,"card":…,"note":"<padding>"}`.
    /// Every odd sequence number carries an e-mail address and a Luhn-valid Visa number
    /// (`ann@example.com`, `4111 1111 1111 1111`); even ones contain nothing to redact.
    /// The sequence number sits at a fixed offset ([`PII_SEQ_OFF`]) that a redactor never
    /// touches: it is a string that starts with a letter, so no digit in it starts a card
    /// number (which needs a word boundary), and it contains no `@`.
    Pii,
}

/// `{"seq":"q` — where the 16 hex digits of the sequence number start in a `Pii` payload.
pub const PII_SEQ_OFF: usize = 9;
/// The e-mail address carried by odd-numbered `Pii` payloads.
pub const PII_EMAIL: &str = "ann@example.com";
const PII_PREFIX: &str = "{\"seq\":\"q0000000000000000\",";
const PII_DIRTY: &str = "\"user\":\"ann@example.com\",\"card\":\"4111 1111 1111 1111\",\"note\":\"";
const PII_CLEAN: &str = "\"user\":\"customer\",\"card\":\"none\",\"note\":\"";
/// The smallest `--size` a `Pii` payload fits in.
pub const PII_MIN_SIZE: usize = PII_PREFIX.len() + PII_DIRTY.len() + 2;

/// The payload for sequence number `seq` before the sequence is patched in (so only
/// the parity of `seq` matters).
pub fn payload_for(kind: PayloadKind, size: usize, seq: u64) -> Result<Vec<u8>> {
    match kind {
        PayloadKind::Binary => Ok(payload_template(size)),
        PayloadKind::Pii => {
            if size < PII_MIN_SIZE {
                bail!("--payload pii needs --size >= {PII_MIN_SIZE}");
            }
            let body = if seq % 2 == 1 { PII_DIRTY } else { PII_CLEAN };
            let mut p = Vec::with_capacity(size);
            p.extend_from_slice(PII_PREFIX.as_bytes());
            p.extend_from_slice(body.as_bytes());
            let pad = size - p.len() - 2;
            p.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
            p.extend_from_slice(b"\"}");
            debug_assert_eq!(p.len(), size);
            Ok(p)
        }
    }
}

/// Write sequence number `seq` into a payload built by [`payload_for`].
#[inline]
pub fn patch_seq(kind: PayloadKind, payload: &mut [u8], seq: u64) {
    match kind {
        PayloadKind::Binary => {
            if payload.len() >= 8 {
                payload[..8].copy_from_slice(&seq.to_be_bytes());
            }
        }
        PayloadKind::Pii => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, b) in payload[PII_SEQ_OFF..PII_SEQ_OFF + 16]
                .iter_mut()
                .enumerate()
            {
                *b = HEX[((seq >> (60 - 4 * i)) & 0xf) as usize];
            }
        }
    }
}

/// Read the sequence number back from a `Pii` payload (`None` if it is not there).
#[inline]
pub fn pii_seq(payload: &[u8]) -> Option<u64> {
    if payload.len() < PII_SEQ_OFF + 17
        || !payload.starts_with(&PII_PREFIX.as_bytes()[..PII_SEQ_OFF])
    {
        return None;
    }
    let mut v = 0u64;
    for &c in &payload[PII_SEQ_OFF..PII_SEQ_OFF + 16] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

pub struct PubResult {
    /// From the first write to the PONG answering the final PING.
    pub elapsed: Duration,
}

/// Publish messages with sequence numbers `first..first + count` on `subject`
/// and finish with a PING/PONG round trip so the server has provably
/// processed all of them.
#[allow(clippy::too_many_arguments)]
pub fn publish(
    conn: &mut Conn,
    subject: &str,
    size: usize,
    kind: PayloadKind,
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

    // Pre-build one full batch of frames; per batch only the sequence numbers
    // are patched in place, so the generator spends almost no CPU per message.
    // `Pii` payloads alternate between two templates (odd/even sequence
    // numbers): the batch holds an even number of frames and is rebuilt only if
    // a batch would start on the other parity (it never does when `first` is even).
    let mut per_batch = BATCH_BYTES.div_ceil(frame_len).max(1);
    if kind == PayloadKind::Pii {
        per_batch += per_batch % 2;
    }
    let mut frames: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (parity, f) in frames.iter_mut().enumerate() {
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(&payload_for(kind, size, parity as u64)?);
        f.extend_from_slice(b"\r\n");
    }
    let build = |start_parity: u64| -> Vec<u8> {
        (0..per_batch as u64)
            .flat_map(|k| frames[((start_parity + k) % 2) as usize].iter().copied())
            .collect()
    };
    let mut batch_parity = first % 2;
    let mut batch = build(batch_parity);
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
        if kind == PayloadKind::Pii && seq % 2 != batch_parity {
            batch_parity = seq % 2;
            batch = build(batch_parity);
        }
        for k in 0..n {
            let off = k * frame_len + seq_off;
            patch_seq(kind, &mut batch[off..off + size], seq + k as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_payloads_roundtrip_their_sequence() -> Result<()> {
        for seq in [0u64, 1, 2, 0x1000, 0xdead_beef, u64::MAX] {
            let mut p = payload_for(PayloadKind::Pii, 128, seq)?;
            assert_eq!(p.len(), 128);
            patch_seq(PayloadKind::Pii, &mut p, seq);
            assert_eq!(pii_seq(&p), Some(seq));
            let v: serde_json::Value = serde_json::from_slice(&p)?;
            let has_pii = memchr::memmem::find(&p, PII_EMAIL.as_bytes()).is_some();
            assert_eq!(has_pii, seq % 2 == 1, "{v}");
        }
        assert!(payload_for(PayloadKind::Pii, PII_MIN_SIZE - 1, 0).is_err());
        assert_eq!(
            payload_for(PayloadKind::Pii, PII_MIN_SIZE, 1)?.len(),
            PII_MIN_SIZE
        );
        Ok(())
    }
}
