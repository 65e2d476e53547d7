//! Password and token checks: plain text (constant-time comparison) or bcrypt
//! (`$2a$`, `$2b$`, `$2x$`, `$2y$` hashes, as nats-server's `isBcrypt`).

use subtle::ConstantTimeEq;

/// Errors from a configured password value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("malformed bcrypt hash")]
    MalformedHash,
}

/// A configured password or token.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Plain(String),
    Bcrypt(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Password::Plain(<redacted>)"),
            Self::Bcrypt(h) => write!(f, "Password::Bcrypt({h})"),
        }
    }
}

/// nats-server's `isBcrypt`: `$2` + optional a/b/x/y + `$` + 2 digits + `$`.
pub fn is_bcrypt(s: &str) -> bool {
    let b = s.as_bytes();
    if !s.starts_with("$2") {
        return false;
    }
    let rest = match b.get(2) {
        Some(b'a' | b'b' | b'x' | b'y') => &b[3..],
        _ => &b[2..],
    };
    rest.len() >= 4
        && rest[0] == b'$'
        && rest[1].is_ascii_digit()
        && rest[2].is_ascii_digit()
        && rest[3] == b'$'
}

impl Password {
    /// Classifies a configured value. A value that looks like bcrypt but does
    /// not parse is an error (it would otherwise never match).
    pub fn parse(configured: &str) -> Result<Self, PasswordError> {
        if is_bcrypt(configured) {
            bcrypt::HashParts::from_str_checked(configured)?;
            Ok(Self::Bcrypt(configured.to_string()))
        } else {
            Ok(Self::Plain(configured.to_string()))
        }
    }

    /// Checks what the client sent. Plain: constant-time over the bytes
    /// (lengths are not hidden, as in Go's `subtle.ConstantTimeCompare`).
    pub fn verify(&self, provided: &[u8]) -> bool {
        match self {
            Self::Plain(p) => p.as_bytes().ct_eq(provided).into(),
            Self::Bcrypt(h) => bcrypt::verify(provided, h).unwrap_or(false),
        }
    }
}

impl Password {
    /// The cost of a bcrypt hash (`None` for a plain value).
    pub fn bcrypt_cost(&self) -> Option<u32> {
        match self {
            Self::Plain(_) => None,
            Self::Bcrypt(h) => h.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost()),
        }
    }

    /// A well-formed bcrypt hash of `cost` with a random salt and digest, which no password
    /// is known to match: verifying against it costs what verifying a real hash of that cost
    /// does. Used for a user who does not exist, so that refusing them takes as long as
    /// refusing a wrong password (the time does not tell whether a user name exists).
    pub fn unmatchable_bcrypt(cost: u32) -> Self {
        // bcrypt's base64: 22 characters of salt (16 bytes) and 31 of digest (23 bytes);
        // the last character of each carries unused low bits, which must be zero ('.').
        const ALPHABET: &[u8; 64] =
            b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut chars: Vec<u8> = crate::util::random_bytes(53)
            .iter()
            .map(|b| ALPHABET[usize::from(b & 63)])
            .collect();
        chars[21] = b'.';
        chars[52] = b'.';
        let body = String::from_utf8_lossy(&chars);
        Self::Bcrypt(format!("$2b${:02}${body}", cost.clamp(4, 31)))
    }
}

/// Helper so `Password::parse` can use `?` on the bcrypt parse.
trait FromStrChecked: Sized {
    fn from_str_checked(s: &str) -> Result<Self, PasswordError>;
}

impl FromStrChecked for bcrypt::HashParts {
    fn from_str_checked(s: &str) -> Result<Self, PasswordError> {
        s.parse::<bcrypt::HashParts>()
            .map_err(|_| PasswordError::MalformedHash)
    }
}

/// One-shot check of a configured value against what the client sent.
pub fn verify_password(configured: &str, provided: &[u8]) -> bool {
    Password::parse(configured).is_ok_and(|p| p.verify(provided))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let p = Password::parse("s3cr3t").expect("plain");
        assert!(p.verify(b"s3cr3t"));
        assert!(!p.verify(b"s3cr3"));
        assert!(!p.verify(b"s3cr3t "));
        assert!(!p.verify(b""));
        assert!(!format!("{p:?}").contains("s3cr3t"));
        // Odd bytes.
        let odd = "p\u{0}w\u{1b}é'\"\\\r\n";
        assert!(verify_password(odd, odd.as_bytes()));
        assert!(!verify_password(odd, b"p"));
        assert!(!verify_password("\u{fffd}", &[0xff]));
        let empty = Password::parse("").expect("empty");
        assert!(empty.verify(b""));
        assert!(!empty.verify(b"x"));
    }

    #[test]
    fn bcrypt_hashes() {
        let h = bcrypt::hash("pa$$ word", 4).expect("hash");
        assert!(h.starts_with("$2b$04$"));
        assert!(is_bcrypt(&h));
        assert!(verify_password(&h, b"pa$$ word"));
        assert!(!verify_password(&h, b"pa$$word"));
        // $2a$ / $2y$ variants (as produced by other tools) verify too.
        for v in ["$2a$", "$2y$"] {
            let hv = format!("{v}{}", &h[4..]);
            assert!(is_bcrypt(&hv));
            assert!(verify_password(&hv, b"pa$$ word"), "{hv}");
        }
        // Odd bytes in the password.
        let odd = b"\x00\xff\r\n'\"";
        let ho = bcrypt::hash(odd, 4).expect("hash");
        assert!(verify_password(&ho, odd));
        assert!(!verify_password(&ho, b"\x00\xff\r\n'"));
        // Malformed bcrypt-looking values are errors, and never match.
        assert_eq!(
            Password::parse("$2a$10$short"),
            Err(PasswordError::MalformedHash)
        );
        assert!(!verify_password("$2a$10$short", b"$2a$10$short"));
        // Not bcrypt: plain comparisons.
        assert!(!is_bcrypt("$1$abc"));
        assert!(!is_bcrypt("$2a$1$x"));
        assert!(verify_password("$2abc", b"$2abc"));
    }

    #[test]
    fn unmatchable_bcrypt_costs_a_real_verification() {
        let real = Password::parse(&bcrypt::hash("pw", 6).expect("hash")).expect("bcrypt");
        assert_eq!(real.bcrypt_cost(), Some(6));
        assert_eq!(Password::Plain("x".into()).bcrypt_cost(), None);
        let dummy = Password::unmatchable_bcrypt(6);
        let Password::Bcrypt(h) = &dummy else {
            panic!("not bcrypt: {dummy:?}");
        };
        // It parses (so `verify` hashes instead of failing fast), has the asked cost, and
        // two are different.
        assert_eq!(Password::parse(h), Ok(dummy.clone()));
        assert_eq!(dummy.bcrypt_cost(), Some(6));
        assert_eq!(
            bcrypt::verify("pw", h).map_err(|e| e.to_string()),
            Ok(false)
        );
        assert_ne!(Password::unmatchable_bcrypt(6), dummy);
        // It takes as long as a real hash of that cost to refuse (cost 6: 64 rounds, well
        // above the microseconds a parse failure takes).
        let time = |p: &Password| {
            let start = std::time::Instant::now();
            for _ in 0..5 {
                assert!(!p.verify(b"wrong"));
            }
            start.elapsed()
        };
        let (real_t, dummy_t) = (time(&real), time(&dummy));
        assert!(
            dummy_t * 2 > real_t && real_t * 2 > dummy_t,
            "real {real_t:?}, dummy {dummy_t:?}"
        );
    }
}
