//! Small pure helpers shared by every layer: the wall clock in nanoseconds, random bytes, and
//! bounding text that came from outside (a plugin's reason) before it is logged or sent.

use std::time::SystemTime;

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

/// `text` cut to at most `max` bytes at a char boundary, with `…` when something was cut:
/// reasons written by a plugin (or anyone else outside the broker) go into `-ERR` lines and
/// log lines, and a multi-MiB reason must not make a multi-MiB line.
pub fn truncate_text(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_differ_and_have_the_asked_length() {
        let (a, b) = (random_base32(22, true), random_base32(22, true));
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)));
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        assert_eq!(truncate_text("short".into(), 10), "short");
        let cut = truncate_text("ééééé".into(), 6);
        assert_eq!(cut, "é…");
        assert!(cut.len() <= 6);
        assert!(truncate_text("x".repeat(4 << 20), 256).len() <= 256);
    }
}
