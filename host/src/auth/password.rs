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
}
