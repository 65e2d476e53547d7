//! Per-address back-off for repeated authentication failures (`authorization {
//! failure_backoff {} }`, natrium's own; nats-server answers a password guess as fast as the
//! check allows).
//!
//! An address that failed `max_failures` times within `window` of its first failure has
//! every CONNECT answered — refused or accepted — no sooner than `delay` after the previous
//! answer to that address. The answers queue: parallel connections from one address get one
//! answer per `delay`, so opening more connections does not buy more guesses. A CONNECT whose
//! turn would come more than `window` away is refused at once without its credentials being
//! checked. A successful authentication forgets the address's failures.
//!
//! The waiting is done by each connection's own task (`server/conn.rs`): this table only
//! says until when, under a lock held for a map lookup and never across an `.await`. It holds
//! at most [`MAX_SOURCES`] addresses; entries whose window has passed are purged when it is
//! full (at most once a second), and while it stays full of live entries a new address is
//! not tracked (logged once a second).

use crate::options::FailureBackoff;
use crate::util::LogLimiter;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses tracked at most (about 50 bytes each).
pub const MAX_SOURCES: usize = 10_000;

/// What to do with a CONNECT from an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check it now.
    Now,
    /// Check it, and answer, at this time.
    At(Instant),
    /// Refuse it now: its turn is too far away.
    Refuse,
}

/// One address's recent failures.
#[derive(Debug, Clone, Copy)]
struct Source {
    /// When its current window began (its first failure in it).
    first: Instant,
    failures: u32,
    /// When the last answer given a turn is due; the next turn is `delay` after it.
    last_turn: Instant,
}

impl Source {
    fn expired(&self, cfg: &FailureBackoff, now: Instant) -> bool {
        now.duration_since(self.first) >= cfg.window && self.last_turn <= now
    }
}

#[derive(Default)]
struct Table {
    sources: FxHashMap<IpAddr, Source>,
    last_purge: Option<Instant>,
}

/// The failure table of a server.
pub struct Backoff {
    table: Mutex<Table>,
    full_log: LogLimiter,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            table: Mutex::new(Table::default()),
            full_log: LogLimiter::new(1),
        }
    }
}

impl Backoff {
    /// When a CONNECT from `ip` may be checked and answered.
    pub fn admit(&self, ip: IpAddr, cfg: &FailureBackoff, now: Instant) -> Admission {
        let mut t = self.table.lock();
        let Some(s) = t.sources.get_mut(&ip) else {
            return Admission::Now;
        };
        if now.duration_since(s.first) >= cfg.window {
            s.failures = 0;
        }
        if s.failures < cfg.max_failures {
            return Admission::Now;
        }
        let turn = s.last_turn.max(now) + cfg.delay;
        if turn.duration_since(now) > cfg.window {
            return Admission::Refuse;
        }
        s.last_turn = turn;
        Admission::At(turn)
    }

    /// Counts a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, cfg: &FailureBackoff, now: Instant) {
        let mut t = self.table.lock();
        if t.sources.len() >= MAX_SOURCES && !t.sources.contains_key(&ip) {
            let due = t
                .last_purge
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
            if due {
                t.last_purge = Some(now);
                t.sources.retain(|_, s| !s.expired(cfg, now));
            }
            if t.sources.len() >= MAX_SOURCES {
                drop(t);
                if self.full_log.admit().0 {
                    tracing::warn!(
                        "authentication failure back-off: {MAX_SOURCES} addresses tracked, \
                         not tracking {ip}"
                    );
                }
                return;
            }
        }
        let s = t.sources.entry(ip).or_insert(Source {
            first: now,
            failures: 0,
            last_turn: now,
        });
        if s.failures == 0 || now.duration_since(s.first) >= cfg.window {
            s.first = now;
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
    }

    /// A successful authentication from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.table.lock().sources.remove(&ip);
    }

    /// Forgets every address (the settings changed on reload).
    pub fn clear(&self) {
        self.table.lock().sources.clear();
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.table.lock().sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: FailureBackoff = FailureBackoff {
        max_failures: 3,
        window: Duration::from_secs(10),
        delay: Duration::from_secs(1),
    };

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn answers_are_delayed_after_max_failures_and_queue_per_address() {
        let b = Backoff::default();
        let t0 = Instant::now();
        for _ in 0..CFG.max_failures {
            assert_eq!(b.admit(ip(1), &CFG, t0), Admission::Now);
            b.failed(ip(1), &CFG, t0);
        }
        // Another address is not affected.
        assert_eq!(b.admit(ip(2), &CFG, t0), Admission::Now);
        // Parallel attempts get one turn per delay, up to the window, then are refused.
        let s = Duration::from_secs;
        for k in 1..=10 {
            assert_eq!(b.admit(ip(1), &CFG, t0), Admission::At(t0 + s(k)));
        }
        assert_eq!(b.admit(ip(1), &CFG, t0), Admission::Refuse);
        // Later, the next turn is one delay after the last one given.
        assert_eq!(b.admit(ip(1), &CFG, t0 + s(9)), Admission::At(t0 + s(11)));
        // A window after the first failure the count starts again.
        let next_window = t0 + s(12);
        assert_eq!(b.admit(ip(1), &CFG, next_window), Admission::Now);
        b.failed(ip(1), &CFG, next_window);
        assert_eq!(b.admit(ip(1), &CFG, next_window), Admission::Now);
        // A success forgets the address.
        for _ in 0..CFG.max_failures {
            b.failed(ip(3), &CFG, t0);
        }
        assert!(matches!(b.admit(ip(3), &CFG, t0), Admission::At(_)));
        b.succeeded(ip(3));
        assert_eq!(b.admit(ip(3), &CFG, t0), Admission::Now);
    }

    #[test]
    fn the_table_is_bounded_and_purges_expired_addresses() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let n = u32::try_from(MAX_SOURCES).expect("fits");
        for i in 0..n {
            b.failed(ip(i), &CFG, t0);
        }
        assert_eq!(b.len(), MAX_SOURCES);
        // Full of live entries: a new address is not tracked.
        b.failed(ip(n), &CFG, t0 + Duration::from_secs(1));
        assert_eq!(b.len(), MAX_SOURCES);
        assert_eq!(b.admit(ip(n), &CFG, t0), Admission::Now);
        // Known addresses still count.
        b.failed(ip(0), &CFG, t0);
        // After the window the expired ones make room.
        let later = t0 + CFG.window + Duration::from_secs(1);
        b.failed(ip(n), &CFG, later);
        assert_eq!(b.len(), 1);
        b.clear();
        assert!(b.is_empty());
    }
}
