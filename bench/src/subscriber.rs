//! The receiving side shared by `pubsub` and `queue`: count MSG frames with
//! the small memchr-based parser in `conn`, verify payloads cheaply, and
//! publish progress through an atomic counter (used by the publisher's
//! consumer window).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{bail, Result};

use crate::conn::{Conn, Frame};
use crate::publisher::{pii_seq, PayloadKind, PII_EMAIL};

/// How each subscriber checks the sequence numbers it sees.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Every message, in order: the n-th message must carry sequence n.
    Exact,
    /// A queue-group member sees a strictly increasing subset; also record
    /// which sequence numbers were seen so the union can be checked.
    Increasing,
}

/// How payloads are verified beyond the sequence number.
#[derive(Clone, Copy)]
pub struct Expect {
    pub kind: PayloadKind,
    /// `Pii` only: odd-numbered messages must arrive redacted (marker text instead of
    /// the e-mail address, a `Natrium-Redacted` header) and even ones untouched.
    /// Without it every message must arrive exactly as published.
    pub redacted: bool,
}

pub struct SubResult {
    pub received: u64,
    /// Messages that arrived redacted (`Pii` with `Expect::redacted`).
    pub redacted: u64,
    /// When the last expected message arrived (queue members: when the
    /// group total was reached).
    pub done_at: Instant,
    /// Bitmap of sequence numbers seen (only for `SeqCheck::Increasing`).
    pub seen: Vec<u64>,
}

/// Receive on an already-subscribed connection until `total_msgs` messages have
/// arrived (for `Exact`), until `stop` is raised (for queue members, whose
/// share is unknown in advance), or until the deadline.
pub fn receive(
    conn: &mut Conn,
    size: usize,
    expect: Expect,
    total_msgs: u64,
    check: SeqCheck,
    progress: &AtomicU64,
    stop: &AtomicBool,
) -> Result<SubResult> {
    let mut v = Verifier {
        size,
        expect,
        redacted: 0,
        total_msgs,
        check,
        received: 0,
        last_seq: None,
        seen: if check == SeqCheck::Increasing {
            vec![0u64; total_msgs.div_ceil(64) as usize]
        } else {
            Vec::new()
        },
    };
    let done_at;
    loop {
        while let Some(frame) = conn.try_frame()? {
            let Frame::Msg {
                headers, payload, ..
            } = frame
            else {
                bail!("unexpected PONG on subscriber connection");
            };
            v.on_msg(headers, payload)?;
        }
        progress.store(v.received, Ordering::Release);
        let finished = match check {
            SeqCheck::Exact => v.received >= total_msgs,
            // The coordinator saw the group total reach `total_msgs`.
            SeqCheck::Increasing => stop.load(Ordering::Acquire),
        };
        if finished {
            done_at = Instant::now();
            // A PING/PONG round trip drains anything the server queued to us
            // before that point, so a late duplicate is caught too.
            conn.write(b"PING\r\n")?;
            loop {
                match conn.next_frame()? {
                    Frame::Pong => break,
                    Frame::Msg {
                        headers, payload, ..
                    } => v.on_msg(headers, payload)?,
                }
            }
            progress.store(v.received, Ordering::Release);
            break;
        }
        conn.fill()?;
    }
    if check == SeqCheck::Exact && v.received != total_msgs {
        bail!(
            "received {} messages, expected exactly {total_msgs}",
            v.received
        );
    }
    Ok(SubResult {
        received: v.received,
        redacted: v.redacted,
        done_at,
        seen: v.seen,
    })
}

struct Verifier {
    size: usize,
    expect: Expect,
    redacted: u64,
    total_msgs: u64,
    check: SeqCheck,
    received: u64,
    last_seq: Option<u64>,
    seen: Vec<u64>,
}

impl Verifier {
    #[inline]
    fn on_msg(&mut self, headers: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        match self.expect.kind {
            PayloadKind::Binary => {
                if payload.len() != self.size {
                    bail!("payload size {} != expected {}", payload.len(), self.size);
                }
                if self.size >= 8 {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&payload[..8]);
                    self.check_seq(u64::from_be_bytes(b))?;
                }
            }
            PayloadKind::Pii => {
                let Some(seq) = pii_seq(payload) else {
                    bail!(
                        "payload without the sequence field: {:?}",
                        String::from_utf8_lossy(&payload[..payload.len().min(64)])
                    );
                };
                self.check_seq(seq)?;
                if self.expect.redacted && seq % 2 == 1 {
                    let find = |hay: &[u8], needle: &[u8]| memchr::memmem::find(hay, needle);
                    if find(payload, PII_EMAIL.as_bytes()).is_some()
                        || find(payload, b"[REDACTED:email]").is_none()
                        || find(payload, b"[REDACTED:card]").is_none()
                        || headers.is_none_or(|h| find(h, b"Natrium-Redacted:").is_none())
                    {
                        bail!(
                            "message {seq} was not redacted as expected: headers {:?}, payload {:?}",
                            headers.map(String::from_utf8_lossy),
                            String::from_utf8_lossy(payload)
                        );
                    }
                    self.redacted += 1;
                } else if payload.len() != self.size || headers.is_some() {
                    bail!(
                        "message {seq} was changed in transit: headers {:?}, payload {:?}",
                        headers.map(String::from_utf8_lossy),
                        String::from_utf8_lossy(payload)
                    );
                }
            }
        }
        self.received += 1;
        Ok(())
    }

    #[inline]
    fn check_seq(&mut self, seq: u64) -> Result<()> {
        match self.check {
            SeqCheck::Exact => {
                if seq != self.received {
                    bail!(
                        "out of order / corrupt payload: expected seq {}, got {seq}",
                        self.received
                    );
                }
            }
            SeqCheck::Increasing => {
                if self.last_seq.is_some_and(|l| seq <= l) || seq >= self.total_msgs {
                    bail!(
                        "queue member saw seq {seq} after {:?} (of {})",
                        self.last_seq,
                        self.total_msgs
                    );
                }
                self.seen[(seq / 64) as usize] |= 1 << (seq % 64);
            }
        }
        self.last_seq = Some(seq);
        Ok(())
    }
}
