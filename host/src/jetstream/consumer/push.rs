//! Push delivery: messages go to the consumer's `deliver_subject` (one member of its
//! `deliver_group`) while someone listens there, paced by three brakes, as nats-server's
//! `loopAndDeliverMsgs` does:
//!
//! ```text
//!  interest on deliver_subject? ──no──▶ wait (nothing is sent, no heartbeat either)
//!        │ yes
//!  flow control: bytes in flight > window? ──yes──▶ stalled until the FC reply comes back
//!        │ no
//!  rate_limit_bps: enough tokens for this message? ──no──▶ wait until there are
//!        │ yes
//!  deliver ──▶ in-flight bytes > window/2 and no request out? ──▶ `100 FlowControl Request`
//!              with reply `$JS.FC.<stream>.<consumer>.<token>`
//! ```
//!
//! The window starts at 1/16 of [`FC_MAX_PENDING`] and doubles with each answer (nats-server's
//! slow start). An idle consumer sends `100 Idle Heartbeat` every `idle_heartbeat` with
//! `Nats-Last-Consumer`/`Nats-Last-Stream`, plus `Nats-Consumer-Stalled: <FC reply>` while a
//! flow control request is unanswered (a client that lost the request answers that one).

use super::config::ConsumerConfig;
use super::{Delivery, SeqPair};
use crate::proto::headers::HeaderBlock;

/// nats-server's `JsFlowControlMaxPending`: the most bytes a flow-controlled consumer keeps in
/// flight once its window has grown.
pub const FC_MAX_PENDING: u64 = 32 * 1024 * 1024;
/// The rate limiter's burst when the stream sets no `max_msg_size` (the default max_payload).
const DEFAULT_BURST: u64 = 1024 * 1024;
/// Header naming the unanswered flow control request in a heartbeat.
pub const STALLED_HEADER: &str = "Nats-Consumer-Stalled";
const FC_STATUS: &str = "100 FlowControl Request";

/// What a push consumer adds to the consumer's state.
#[derive(Debug)]
pub(super) struct Push {
    pub(super) deliver: String,
    /// The same, to deliver to (shared by every message rather than copied).
    pub(super) deliver_to: bytes::Bytes,
    /// Whether someone listens on the deliver subject (nats-server's `active`, `push_bound`).
    pub(super) active: bool,
    /// `idle_heartbeat` (ns; 0: none) and when the next one is due.
    heartbeat: i64,
    next_heartbeat: i64,
    fc: Option<FlowControl>,
    rate: Option<RateLimit>,
}

/// Flow control accounting (nats-server's `pbytes`, `maxpb`, `fcid`, `fcsz`).
#[derive(Debug)]
struct FlowControl {
    /// Bytes delivered since the last answered request.
    in_flight: u64,
    /// The current window.
    window: u64,
    /// The outstanding request's reply subject and the bytes its answer releases.
    outstanding: Option<(String, u64)>,
}

/// A token bucket in bytes: `rate_limit_bps / 8` per second, at most `burst` saved up.
#[derive(Debug)]
struct RateLimit {
    bytes_per_sec: f64,
    burst: f64,
    tokens: f64,
    at: i64,
    /// When the message that did not fit may go (Unix ns; 0: nothing waits).
    due: i64,
}

impl Push {
    /// The push state of `cfg` (`None` for a pull consumer). `max_msg_size` is the stream's
    /// (the rate limiter's burst, as in nats-server).
    pub(super) fn new(cfg: &ConsumerConfig, max_msg_size: i64, now: i64) -> Option<Push> {
        if !cfg.is_push() {
            return None;
        }
        let fc = cfg.flow_control.then_some(FlowControl {
            in_flight: 0,
            window: FC_MAX_PENDING / 16,
            outstanding: None,
        });
        let rate = (cfg.rate_limit_bps > 0).then(|| {
            let burst = u64::try_from(max_msg_size)
                .ok()
                .filter(|b| *b > 0)
                .unwrap_or(DEFAULT_BURST) as f64;
            RateLimit {
                bytes_per_sec: cfg.rate_limit_bps as f64 / 8.0,
                burst,
                tokens: burst,
                at: now,
                due: 0,
            }
        });
        Some(Push {
            deliver: cfg.deliver_subject.clone(),
            deliver_to: bytes::Bytes::copy_from_slice(cfg.deliver_subject.as_bytes()),
            active: false,
            heartbeat: cfg.idle_heartbeat.max(0),
            next_heartbeat: now.saturating_add(cfg.idle_heartbeat.max(0)),
            fc,
            rate,
        })
    }

    /// Whether a message may be picked now: someone listens and flow control is not stalled.
    pub(super) fn open(&self) -> bool {
        self.active && self.fc.as_ref().is_none_or(|f| f.in_flight <= f.window)
    }

    /// Takes `size` bytes from the rate limiter; `false` (and a due time) when they are not
    /// there yet.
    pub(super) fn take(&mut self, size: u64, now: i64) -> bool {
        let Some(r) = self.rate.as_mut() else {
            return true;
        };
        let elapsed = now.saturating_sub(r.at).max(0) as f64 / 1e9;
        r.tokens = (r.tokens + elapsed * r.bytes_per_sec).min(r.burst);
        r.at = now;
        // A message larger than the burst waits for a full bucket.
        let need = (size as f64).min(r.burst);
        if r.tokens >= need {
            r.tokens -= need;
            r.due = 0;
            return true;
        }
        let wait = (need - r.tokens) / r.bytes_per_sec * 1e9;
        r.due = now.saturating_add(wait.ceil() as i64).max(now + 1);
        false
    }

    /// Accounts for a delivery of `size` bytes; returns the flow control request to send
    /// after it, if one is due.
    pub(super) fn sent(
        &mut self,
        size: u64,
        now: i64,
        stream: &str,
        consumer: &str,
    ) -> Option<Delivery> {
        self.next_heartbeat = now.saturating_add(self.heartbeat);
        let fc = self.fc.as_mut()?;
        fc.in_flight += size;
        match &mut fc.outstanding {
            None if fc.in_flight > fc.window / 2 => {
                let reply = format!(
                    "$JS.FC.{stream}.{consumer}.{}",
                    crate::util::random_base32(4, false)
                );
                fc.outstanding = Some((reply.clone(), fc.in_flight));
                Some(Delivery::headers_only(
                    &self.deliver,
                    Some(reply),
                    HeaderBlock::new(Some(FC_STATUS)).finish(),
                ))
            }
            // Far past the window with a request out: its answer releases these too.
            Some((_, covered)) if fc.in_flight - *covered >= fc.window => {
                *covered += size;
                None
            }
            _ => None,
        }
    }

    /// An answer on `$JS.FC.…`: releases the bytes its request covered and grows the window.
    /// `false` when it is not the outstanding request's (a late duplicate).
    pub(super) fn answered(&mut self, subject: &str) -> bool {
        let Some(fc) = self.fc.as_mut() else {
            return false;
        };
        match fc.outstanding.take() {
            Some((reply, covered)) if reply == subject => {
                fc.window = (fc.window * 2).min(FC_MAX_PENDING);
                fc.in_flight = fc.in_flight.saturating_sub(covered);
                true
            }
            other => {
                fc.outstanding = other;
                false
            }
        }
    }

    /// The idle heartbeat, if one is due now (only while someone listens).
    pub(super) fn heartbeat_due(&mut self, now: i64, delivered: SeqPair) -> Option<Delivery> {
        if self.heartbeat == 0 || now < self.next_heartbeat {
            return None;
        }
        self.next_heartbeat = now.saturating_add(self.heartbeat);
        if !self.active {
            return None;
        }
        let stalled = self
            .fc
            .as_ref()
            .and_then(|f| f.outstanding.as_ref())
            .map(|(reply, _)| reply.as_str());
        Some(Delivery::heartbeat(&self.deliver, delivered, stalled))
    }

    /// The next time this push state needs the consumer's task (Unix ns; `i64::MAX`: none).
    pub(super) fn next_due(&self) -> i64 {
        let mut next = i64::MAX;
        if self.heartbeat > 0 {
            next = next.min(self.next_heartbeat);
        }
        if let Some(r) = &self.rate {
            if r.due > 0 {
                next = next.min(r.due);
            }
        }
        next
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn push(json: &str) -> Push {
        let cfg: ConsumerConfig = serde_json::from_str(json).unwrap();
        let mut p = Push::new(&cfg, 1100, 0).unwrap();
        p.active = true;
        p
    }

    #[test]
    fn flow_control_requests_past_half_the_window_and_stalls_past_it() {
        let mut p = push(r#"{"deliver_subject":"d","flow_control":true}"#);
        let window = FC_MAX_PENDING / 16;
        assert!(p.sent(window / 2, 1, "S", "C").is_none());
        let fc = p.sent(1, 2, "S", "C").unwrap();
        let reply = String::from_utf8(fc.reply.clone().unwrap().to_vec()).unwrap();
        assert!(reply.starts_with("$JS.FC.S.C."), "{reply}");
        assert!(String::from_utf8(fc.headers.unwrap().to_vec())
            .unwrap()
            .starts_with("NATS/1.0 100 FlowControl Request\r\n"));
        assert!(p.open());
        assert!(p.sent(window, 3, "S", "C").is_none());
        assert!(!p.open(), "stalled past the window");
        let hb = push(r#"{"deliver_subject":"d","flow_control":true,"idle_heartbeat":5}"#)
            .heartbeat_due(10, SeqPair::default());
        assert!(hb.is_some());
        assert!(!p.answered("$JS.FC.S.C.other"));
        assert!(p.answered(&reply));
        assert!(p.open(), "the answer releases what it covered");
    }

    #[test]
    fn stalled_heartbeats_name_the_request() {
        let mut p = push(r#"{"deliver_subject":"d","flow_control":true,"idle_heartbeat":10}"#);
        let reply = p.sent(FC_MAX_PENDING, 0, "S", "C").unwrap().reply.unwrap();
        let reply = String::from_utf8(reply.to_vec()).unwrap();
        let hb = p.heartbeat_due(10, SeqPair::default()).unwrap();
        let h = String::from_utf8(hb.headers.unwrap().to_vec()).unwrap();
        assert!(h.contains(&format!("{STALLED_HEADER}: {reply}\r\n")), "{h}");
        assert!(hb.reply.is_none());
    }

    #[test]
    fn rate_limit_spends_a_burst_then_paces() {
        // 8000 bit/s = 1000 B/s, burst 1100 B.
        let mut p = push(r#"{"deliver_subject":"d","rate_limit_bps":8000}"#);
        assert!(p.take(1000, 0));
        assert!(!p.take(1000, 0));
        assert_eq!(p.next_due(), 900_000_000);
        assert!(p.take(1000, 900_000_000));
        assert_eq!(p.next_due(), i64::MAX);
    }
}
