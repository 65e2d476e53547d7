//! `pii-redactor`: a Natrium transformer that redacts e-mail addresses and payment card numbers.
//!
//! It scans each payload for
//! - e-mail addresses (`local@domain.tld`, the usual character sets, a dotted domain with an
//!   alphabetic top-level label), and
//! - card numbers: 13 to 19 digits, optionally grouped by single spaces or dashes, that pass the
//!   Luhn check and (unless `"card_networks": "any"`) start with a known network prefix (Visa,
//!   Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). The prefix check keeps epoch
//!   timestamps in milliseconds or nanoseconds, which often pass Luhn, from being redacted.
//!
//! and replaces each with a marker. When anything was redacted the message is replaced and
//! stamped with a header (`Natrium-Redacted: email=2,card=1`); otherwise the outcome is `pass`,
//! so the broker does not copy the message.
//!
//! Payloads are treated as JSON when their first non-blank byte is `{` or `[`: then only string
//! contents and bare integer numbers are touched, escapes are kept intact, and a card number
//! written as a JSON number becomes a JSON string, so valid JSON stays valid JSON (formatting
//! unchanged). Other payloads are treated as text. Payloads that are not UTF-8 pass unchanged
//! unless `"binary": "scan"`.
//!
//! ```text
//! in:  {"user":"ann@example.com","card":4111111111111111,"note":"call 555-0100"}
//! out: {"user":"[REDACTED:email]","card":"[REDACTED:card]","note":"call 555-0100"}
//!      + header  Natrium-Redacted: email=1,card=1
//! ```
//!
//! Configuration (all optional):
//!
//! ```json
//! {
//!   "emails": true,
//!   "cards": true,
//!   "card_networks": "known",
//!   "email_replacement": "[REDACTED:email]",
//!   "card_replacement": "[REDACTED:card]",
//!   "header": "Natrium-Redacted",
//!   "binary": "skip"
//! }
//! ```
//! `card_replacement` may contain `{last4}` (e.g. `"****{last4}"`). Replacements may not contain
//! `"`, `\` or control characters (they must stay valid inside a JSON string). A configuration
//! that does not parse makes the plugin drop every message with the reason (it fails closed: it
//! never lets PII through because it was misconfigured).

use natrium_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The plugin's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Redact e-mail addresses.
    pub emails: bool,
    /// Redact card numbers.
    pub cards: bool,
    /// `known` (Luhn + a known network prefix) or `any` (Luhn only).
    pub card_networks: CardNetworks,
    /// What an e-mail address becomes.
    pub email_replacement: String,
    /// What a card number becomes (`{last4}` is replaced by its last four digits).
    pub card_replacement: String,
    /// The header stamped on redacted messages (empty: none).
    pub header: String,
    /// What to do with payloads that are not UTF-8.
    pub binary: Binary,
}

/// Which card numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardNetworks {
    /// Luhn and a known network prefix.
    Known,
    /// Luhn only.
    Any,
}

/// Non-UTF-8 payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binary {
    /// Leave them alone.
    Skip,
    /// Scan them as bytes (ASCII patterns only).
    Scan,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            emails: true,
            cards: true,
            card_networks: CardNetworks::Known,
            email_replacement: "[REDACTED:email]".into(),
            card_replacement: "[REDACTED:card]".into(),
            header: "Natrium-Redacted".into(),
            binary: Binary::Skip,
        }
    }
}

impl Settings {
    /// Checks what serde cannot.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        for (name, value) in [
            ("email_replacement", &self.email_replacement),
            ("card_replacement", &self.card_replacement),
        ] {
            if value
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
            {
                return Err(ConfigError::new(format!(
                    "{name} may not contain '\"', '\\\\' or control characters"
                )));
            }
        }
        if self
            .header
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::new(format!(
                "header {:?} is not a valid header name",
                self.header
            )));
        }
        Ok(self)
    }
}

/// How many items were redacted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// E-mail addresses.
    pub emails: usize,
    /// Card numbers.
    pub cards: usize,
}

impl Counts {
    fn any(self) -> bool {
        self.emails + self.cards > 0
    }
}

/// Redacts `payload`; `None` when nothing was redacted (or the payload was skipped).
pub fn redact(payload: &[u8], s: &Settings) -> Option<(Vec<u8>, Counts)> {
    if s.binary == Binary::Skip && std::str::from_utf8(payload).is_err() {
        return None;
    }
    let mut out = Vec::new();
    let mut counts = Counts::default();
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        redact_json(payload, s, &mut out, &mut counts);
    } else {
        redact_text(payload, s, &mut out, &mut counts);
    }
    counts.any().then_some((out, counts))
}

/// JSON: strings (between escapes) are redacted as text; integer tokens may be card numbers.
fn redact_json(input: &[u8], s: &Settings, out: &mut Vec<u8>, counts: &mut Counts) {
    out.reserve(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'"' => {
                out.push(b'"');
                i += 1;
                // Runs of raw text between escapes are redacted; escapes are copied as they are.
                let mut run = i;
                while i < input.len() && input[i] != b'"' {
                    if input[i] == b'\\' {
                        redact_text(&input[run..i], s, out, counts);
                        let end = (i + 2).min(input.len());
                        out.extend_from_slice(&input[i..end]);
                        i = end;
                        run = i;
                    } else {
                        i += 1;
                    }
                }
                redact_text(&input[run..i], s, out, counts);
                if i < input.len() {
                    out.push(b'"');
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < input.len()
                    && matches!(input[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &input[start..i];
                if s.cards
                    && token.iter().all(u8::is_ascii_digit)
                    && is_card(token, s.card_networks)
                {
                    counts.cards += 1;
                    out.push(b'"');
                    out.extend_from_slice(card_marker(token, s).as_bytes());
                    out.push(b'"');
                } else {
                    out.extend_from_slice(token);
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// Plain text (or bytes): every match is replaced by its marker.
fn redact_text(input: &[u8], s: &Settings, out: &mut Vec<u8>, counts: &mut Counts) {
    let mut copied = 0;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if s.emails && b == b'@' {
            if let Some((start, end)) = email_at(input, i, copied) {
                out.extend_from_slice(&input[copied..start]);
                out.extend_from_slice(s.email_replacement.as_bytes());
                counts.emails += 1;
                copied = end;
                i = end;
                continue;
            }
        }
        if s.cards && b.is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_alphanumeric()) {
            let run = DigitRun::scan(input, i);
            match run.find_card(s.card_networks) {
                Some((start, end, digits)) => {
                    out.extend_from_slice(&input[copied..start]);
                    out.extend_from_slice(card_marker(digits, s).as_bytes());
                    counts.cards += 1;
                    copied = end;
                    // Groups after the card are scanned again as a new run.
                    i = end;
                }
                None => i = run.end,
            }
            continue;
        }
        i += 1;
    }
    out.extend_from_slice(&input[copied..]);
}

/// A run of digit groups separated by single spaces or dashes (`4111 1111-1111 1111`).
struct DigitRun {
    /// All the digits of the run.
    digits: Vec<u8>,
    /// Each group: (byte start, byte end, index of its first digit in `digits`).
    groups: Vec<(usize, usize, usize)>,
    /// Where the run ends.
    end: usize,
    /// Whether the run is followed by a word boundary (not a letter or digit).
    tail_ok: bool,
}

impl DigitRun {
    fn scan(input: &[u8], start: usize) -> DigitRun {
        let mut run = DigitRun {
            digits: Vec::new(),
            groups: Vec::new(),
            end: start,
            tail_ok: true,
        };
        let mut i = start;
        loop {
            let group_start = i;
            let first = run.digits.len();
            while i < input.len() && input[i].is_ascii_digit() {
                run.digits.push(input[i]);
                i += 1;
            }
            run.groups.push((group_start, i, first));
            let separated = matches!(input.get(i), Some(b' ') | Some(b'-'))
                && input.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !separated {
                break;
            }
            i += 1;
        }
        run.end = i;
        run.tail_ok = input.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
        run
    }

    /// The leftmost, then longest, sequence of whole groups that is a card number:
    /// (byte start, byte end, its digits).
    fn find_card(&self, networks: CardNetworks) -> Option<(usize, usize, &[u8])> {
        let n = self.groups.len();
        for a in 0..n {
            let from = self.groups[a].2;
            // Only spans of at most 19 digits can match: at most 19 groups from `a`.
            for b in (a..n.min(a + 19)).rev() {
                if b == n - 1 && !self.tail_ok {
                    continue;
                }
                let to = self.groups.get(b + 1).map_or(self.digits.len(), |g| g.2);
                let digits = &self.digits[from..to];
                if is_card(digits, networks) {
                    return Some((self.groups[a].0, self.groups[b].1, digits));
                }
            }
        }
        None
    }
}

fn card_marker(digits: &[u8], s: &Settings) -> String {
    let last4 = std::str::from_utf8(&digits[digits.len().saturating_sub(4)..]).unwrap_or("");
    s.card_replacement.replace("{last4}", last4)
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// The e-mail address around the `@` at `at`, not reaching before `floor`: (start, end).
fn email_at(input: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > floor && is_local_char(input[start - 1]) {
        start -= 1;
    }
    while start < at && input[start] == b'.' {
        start += 1;
    }
    if start == at || input[at - 1] == b'.' {
        return None;
    }
    let mut end = at + 1;
    while end < input.len() && is_domain_char(input[end]) {
        end += 1;
    }
    while end > at + 1 && matches!(input[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &input[at + 1..end];
    let labels: Vec<&[u8]> = domain.split(|&c| c == b'.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.len() > 63 || l[0] == b'-' || l[l.len() - 1] == b'-')
    {
        return None;
    }
    let tld = labels[labels.len() - 1];
    if tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    Some((start, end))
}

/// Luhn checksum over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// Whether `digits` (ASCII) is a plausible card number.
pub fn is_card(digits: &[u8], networks: CardNetworks) -> bool {
    (13..=19).contains(&digits.len())
        && luhn(digits)
        && (networks == CardNetworks::Any || known_network(digits))
}

/// Issuer identification number ranges of the major networks, with their lengths.
fn known_network(d: &[u8]) -> bool {
    let prefix = |n: usize| -> u32 {
        d.iter()
            .take(n)
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    let len = d.len();
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    match p1 {
        4 => matches!(len, 13 | 16 | 19), // Visa
        5 => (51..=55).contains(&p2) && len == 16 || (p2 == 50 || p2 >= 56) && len >= 12, // Mastercard, Maestro
        2 => (2221..=2720).contains(&p4) && len == 16, // Mastercard 2-series
        3 => {
            (p2 == 34 || p2 == 37) && len == 15                                      // Amex
                || (3528..=3589).contains(&p4) && (16..=19).contains(&len)          // JCB
                || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len)
            // Diners
        }
        6 => {
            p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)                      // Discover
                || (622_126..=622_925).contains(&p6) || p2 == 62                    // UnionPay
                || p2 == 67 || p2 == 63 // Maestro
        }
        _ => false,
    }
}

/// Redacts a message; `Pass` when nothing matched.
pub fn transform_message(mut msg: Message, s: &Settings) -> Outcome {
    match redact(&msg.payload, s) {
        None => Outcome::Pass,
        Some((payload, counts)) => {
            msg.payload = payload;
            if !s.header.is_empty() {
                msg.set_header(
                    s.header.clone(),
                    format!("email={},card={}", counts.emails, counts.cards),
                );
            }
            Outcome::Replace(msg)
        }
    }
}

static SETTINGS: Config<Settings> = Config::with_check(Settings::validate);

#[transformer]
fn redact_pii(_account: &str, msg: Message) -> Outcome {
    match SETTINGS.get() {
        Ok(s) => transform_message(msg, s),
        Err(e) => Outcome::Drop(format!("pii-redactor misconfigured: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> (String, Counts) {
        match redact(input.as_bytes(), &Settings::default()) {
            Some((out, c)) => (String::from_utf8_lossy(&out).into_owned(), c),
            None => (input.to_owned(), Counts::default()),
        }
    }

    #[test]
    fn luhn_vectors() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"79927398710"));
        assert!(luhn(b"378282246310005")); // Amex test number
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b""));
    }

    #[test]
    fn networks() {
        for n in [
            "4111111111111111", // Visa
            "5555555555554444", // Mastercard
            "2223003122003222", // Mastercard 2-series
            "378282246310005",  // Amex
            "6011111111111117", // Discover
            "3530111333300000", // JCB
            "30569309025904",   // Diners
            "6200000000000005", // UnionPay
        ] {
            assert!(is_card(n.as_bytes(), CardNetworks::Known), "{n}");
        }
        // A millisecond timestamp that passes Luhn is not a card.
        let ts = b"1700000000004";
        assert!(luhn(ts));
        assert!(!is_card(ts, CardNetworks::Known));
        assert!(is_card(ts, CardNetworks::Any));
    }

    #[test]
    fn text() {
        let (out, c) = run("mail ann.lee+x@mail.example.com or call, card 4111 1111 1111 1111.");
        assert_eq!(out, "mail [REDACTED:email] or call, card [REDACTED:card].");
        assert_eq!(
            c,
            Counts {
                emails: 1,
                cards: 1
            }
        );
        let (out, c) = run("card 5555-5555-5555-4444 and 4111111111111112 and a@b");
        assert_eq!(out, "card [REDACTED:card] and 4111111111111112 and a@b");
        assert_eq!(c.cards, 1);
        assert_eq!(c.emails, 0);
    }

    #[test]
    fn emails_edge_cases() {
        for (input, expect) in [
            ("x@example.com.", "[REDACTED:email]."),
            ("<bob@ex-ample.org>", "<[REDACTED:email]>"),
            ("@example.com", "@example.com"),
            ("bob@localhost", "bob@localhost"),
            ("bob@example.c0m", "bob@example.c0m"),
            ("bob@-x.com", "bob@-x.com"),
            ("a@b.co@c.org", "[REDACTED:email]@c.org"),
            // Non-ASCII local parts are out of scope (and never split a UTF-8 sequence).
            ("ünï@example.com", "ünï@example.com"),
        ] {
            let (out, _) = run(input);
            assert_eq!(out, expect, "{input}");
        }
    }

    #[test]
    fn digits_need_boundaries() {
        for input in [
            "id A4111111111111111",
            "41111111111111110000", // 20 digits
            "order 4111111111111111x",
        ] {
            assert_eq!(run(input).1, Counts::default(), "{input}");
        }
        // Neighbouring numbers do not hide a card.
        for (input, expect) in [
            ("4111111111111111 123 12/26", "[REDACTED:card] 123 12/26"),
            (
                "ref 42 4111 1111 1111 1111 cvv 123",
                "ref 42 [REDACTED:card] cvv 123",
            ),
            (
                "1 4111111111111111 5555555555554444",
                "1 [REDACTED:card] [REDACTED:card]",
            ),
            (
                "0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
                "0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
            ),
        ] {
            assert_eq!(run(input).0, expect, "{input}");
        }
    }

    #[test]
    fn json_stays_json() {
        let input = r#"{"user":"ann@example.com","card":4111111111111111,"ts":1700000000004,
            "nested":[{"note":"line\nbob@example.com \"q\" 378282246310005"}],"n":-5.5e3}"#;
        let (out, c) = run(input);
        assert_eq!(
            c,
            Counts {
                emails: 2,
                cards: 2
            }
        );
        let v: serde_json::Value = match serde_json::from_str(&out) {
            Ok(v) => v,
            Err(e) => panic!("{e}: {out}"),
        };
        assert_eq!(v["user"], "[REDACTED:email]");
        assert_eq!(v["card"], "[REDACTED:card]");
        assert_eq!(v["ts"], 1700000000004u64);
        assert_eq!(
            v["nested"][0]["note"],
            "line\n[REDACTED:email] \"q\" [REDACTED:card]"
        );
        assert_eq!(v["n"], -5500.0);
    }

    #[test]
    fn escapes_are_kept_whole() {
        // The `n` after the backslash belongs to the escape, not to the address.
        let (out, c) = run(r#"["x\nbob@example.com"]"#);
        assert_eq!(out, r#"["x\n[REDACTED:email]"]"#);
        assert_eq!(c.emails, 1);
        let (out, _) = run(r#"["\\"]"#);
        assert_eq!(out, r#"["\\"]"#);
    }

    #[test]
    fn pass_when_clean_and_binary_skipped() {
        let msg = Message::new("a", b"nothing here 12345".to_vec());
        assert_eq!(transform_message(msg, &Settings::default()), Outcome::Pass);
        let mut bin = vec![0xff, 0xfe];
        bin.extend_from_slice(b" ann@example.com");
        assert_eq!(redact(&bin, &Settings::default()), None);
        let scan = Settings {
            binary: Binary::Scan,
            ..Settings::default()
        };
        let (out, _) = redact(&bin, &scan).unwrap_or_default();
        assert_eq!(&out[2..], b" [REDACTED:email]");
    }

    #[test]
    fn header_and_last4() {
        let s = Settings {
            card_replacement: "****{last4}".into(),
            ..Settings::default()
        };
        let mut msg = Message::new("a", b"pay 4111 1111 1111 1111 ann@example.com".to_vec());
        msg.add_header("Natrium-Redacted", "stale");
        match transform_message(msg, &s) {
            Outcome::Replace(m) => {
                assert_eq!(m.payload_str(), Some("pay ****1111 [REDACTED:email]"));
                assert_eq!(m.header("Natrium-Redacted"), Some("email=1,card=1"));
                assert_eq!(m.headers.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_validation() {
        let bad: Result<Settings, _> = serde_json::from_str(r#"{"email_replacement":"\""}"#);
        assert!(bad.map(|s| s.validate().is_err()).unwrap_or(false));
        assert!(serde_json::from_str::<Settings>(r#"{"emailz":true}"#).is_err());
        natrium_plugin_sdk::testing::set_config(r#"{"card_networks":"any"}"#);
        let out = redact_pii("A", Message::new("s", b"1700000000004".to_vec()));
        assert!(matches!(out, Outcome::Replace(_)));
    }
}
