//! Small helpers shared by every layer: the wall clock in nanoseconds, random bytes, and a
//! budget of log lines per second.

use std::time::{Duration, Instant, SystemTime};

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `n` bytes from the operating system's CSPRNG (server ids, reply tokens, nonces): values
/// that other users must not be able to predict.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// `n` random characters from a base32 alphabet (upper or lower case).
pub fn random_base32(n: usize, upper: bool) -> String {
    const UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let alphabet = if upper { UPPER } else { LOWER };
    random_bytes(n)
        .iter()
        .map(|b| alphabet[(b & 31) as usize] as char)
        .collect()
}

/// A 22-character identifier for an event or advisory (`id` in nats-server's JSON events).
pub fn event_id() -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    random_bytes(22)
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 62] as char)
        .collect()
}

/// `text` cut to at most `max_bytes` bytes at a character boundary, ending in "…" when cut
/// (for texts a plugin or a client chose: a reason of megabytes must not become one log line
/// or one `-ERR` of megabytes).
pub fn truncate_text(text: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max_bytes {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max_bytes.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &text[..end]))
}

/// A budget of log lines per second for something that can fail at a client's or a
/// plugin's pace (a plugin failing on every message, a client guessing passwords): the first
/// few lines of each second are logged, the rest only counted, and their number is said once
/// when the next second's first line comes.
#[derive(Debug)]
pub struct LogLimiter {
    per_second: u32,
    /// Start of the current one-second window, lines logged in it, lines suppressed.
    window: parking_lot::Mutex<(Instant, u32, u64)>,
}

impl LogLimiter {
    pub fn new(per_second: u32) -> Self {
        LogLimiter {
            per_second,
            window: parking_lot::Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Whether to log this line; when a new window opens after suppressed lines, their
    /// number is returned so the caller can say so once.
    pub fn admit(&self) -> (bool, u64) {
        let mut w = self.window.lock();
        let now = Instant::now();
        let mut suppressed = 0;
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            suppressed = std::mem::take(&mut w.2);
            *w = (now, 0, 0);
        }
        if w.1 < self.per_second {
            w.1 += 1;
            (true, suppressed)
        } else {
            w.2 += 1;
            (false, suppressed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_truncated_at_a_character_boundary() {
        assert_eq!(truncate_text("short", 10), "short");
        assert_eq!(truncate_text("exactly10!", 10), "exactly10!");
        assert_eq!(truncate_text("0123456789ab", 10), "0123456…");
        // "é" is two bytes: never cut in half.
        let t = truncate_text("ééééé", 8);
        assert_eq!(t, "éé…");
        assert!(t.len() <= 8);
        let long = "x".repeat(4 << 20);
        assert_eq!(truncate_text(&long, 256).len(), 256);
        assert_eq!(truncate_text("abc", 0), "…");
    }

    #[test]
    fn log_lines_are_limited_per_second() {
        let l = LogLimiter::new(5);
        let admitted = (0..100).filter(|_| l.admit().0).count();
        assert_eq!(admitted, 5);
        // The next window reports the 95 suppressed lines once.
        {
            let mut w = l.window.lock();
            w.0 =
                w.0.checked_sub(Duration::from_secs(1))
                    .expect("uptime over 1 s");
        }
        assert_eq!(l.admit(), (true, 95));
        assert_eq!(l.admit(), (true, 0));
    }

    #[test]
    fn random_values_differ_and_have_the_asked_length() {
        let (a, b) = (random_base32(22, true), random_base32(22, true));
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)));
    }
}
