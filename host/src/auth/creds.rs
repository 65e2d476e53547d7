//! `.creds` files: a user JWT and its NKey seed in decorated blocks, as
//! written by `nsc` and read by clients' `user_credentials`:
//!
//! ```text
//! -----BEGIN NATS USER JWT-----
//! eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ...
//! ------END NATS USER JWT------
//!
//! ************************* IMPORTANT *************************
//! ...
//! -----BEGIN USER NKEY SEED-----
//! SUAM...
//! ------END USER NKEY SEED------
//! ```
//!
//! As nats-io/jwt's `ParseDecoratedJWT`/`ParseDecoratedNKey`: a block is a
//! line of 3+ dashes, one content line, and a closing dashed line; the first
//! block is the JWT, the seed is the block holding an `S`-prefixed key. A
//! file with no blocks is taken as a bare JWT (no seed).

use super::jwt::{self, JwtError, UserClaims};
use super::nkeys::{self as nk, KeyPair, NkeyError};

/// Errors reading a creds file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredsError {
    #[error("creds file is empty")]
    Empty,
    #[error("no JWT found in creds file")]
    NoJwt,
    #[error("no nkey seed found in creds file")]
    NoSeed,
    #[error("unterminated block in creds file")]
    Unterminated,
    #[error("invalid nkey seed in creds file")]
    InvalidSeed,
    #[error("seed is not a user seed")]
    NotUserSeed,
    #[error("invalid user JWT in creds file: {0}")]
    Jwt(#[from] JwtError),
    #[error("seed does not match the JWT subject")]
    KeyMismatch,
    #[error("signing: {0}")]
    Sign(#[from] NkeyError),
}

/// A parsed creds file.
#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    pub jwt: String,
    /// `None` for a bare JWT file.
    pub seed: Option<String>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        f.debug_struct("Creds")
            .field("jwt", &self.jwt)
            .field("seed", &self.seed.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn is_fence(line: &str) -> bool {
    let l = line.trim();
    l.len() >= 6 && l.starts_with("---") && l.ends_with("---")
}

/// Contents of the decorated blocks, in order.
fn blocks(text: &str) -> Result<Vec<String>, CredsError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if is_fence(lines[i]) {
            let mut content = String::new();
            let mut j = i + 1;
            loop {
                let Some(l) = lines.get(j) else {
                    return Err(CredsError::Unterminated);
                };
                if is_fence(l) {
                    break;
                }
                content.push_str(l.trim());
                j += 1;
            }
            out.push(content);
            i = j + 1;
        } else {
            i += 1;
        }
    }
    Ok(out)
}

fn is_seed(s: &str) -> bool {
    s.len() > 2 && s.starts_with('S') && matches!(s.as_bytes()[1], b'O' | b'A' | b'U' | b'N' | b'C')
}

impl Creds {
    /// Parses a creds file's text (structure only; see [`Self::validate`]).
    pub fn parse(text: &str) -> Result<Self, CredsError> {
        if text.trim().is_empty() {
            return Err(CredsError::Empty);
        }
        let b = blocks(text)?;
        if b.is_empty() {
            // A bare JWT.
            let t = text.trim();
            if t.split('.').count() != 3 || t.contains(char::is_whitespace) {
                return Err(CredsError::NoJwt);
            }
            return Ok(Self {
                jwt: t.to_string(),
                seed: None,
            });
        }
        let jwt = b
            .first()
            .filter(|j| j.split('.').count() == 3)
            .ok_or(CredsError::NoJwt)?;
        let seed = b.iter().skip(1).find(|s| is_seed(s)).cloned();
        if b.len() > 1 && seed.is_none() {
            return Err(CredsError::InvalidSeed);
        }
        Ok(Self {
            jwt: jwt.clone(),
            seed,
        })
    }

    /// Reads and parses a creds file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, CredsError> {
        let text = std::fs::read_to_string(path).map_err(|_| CredsError::Empty)?;
        Self::parse(&text)
    }

    /// The user key pair from the seed.
    pub fn key_pair(&self) -> Result<KeyPair, CredsError> {
        let seed = self.seed.as_deref().ok_or(CredsError::NoSeed)?;
        let kp = nk::key_pair_from_seed(seed).map_err(|_| CredsError::InvalidSeed)?;
        if !kp.public_key().starts_with('U') {
            return Err(CredsError::NotUserSeed);
        }
        Ok(kp)
    }

    /// Decodes the user JWT (signature checked) and checks that the seed
    /// belongs to its subject.
    pub fn validate(&self) -> Result<UserClaims, CredsError> {
        let uc = jwt::decode_user(&self.jwt)?;
        let kp = self.key_pair()?;
        if kp.public_key() != uc.claims.sub {
            return Err(CredsError::KeyMismatch);
        }
        Ok(uc)
    }

    /// Signs a server nonce as a client would (for CONNECT `sig`).
    pub fn sign_nonce(&self, nonce: &str) -> Result<String, CredsError> {
        Ok(nk::sign_nonce(&self.key_pair()?, nonce)?)
    }
}

/// Formats a creds file the way `nsc` / `jwt.FormatUserConfig` does.
pub fn format_creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make() -> (KeyPair, String, String) {
        let acc = KeyPair::new_account();
        let u = KeyPair::new_user();
        let mut uc = UserClaims::new(&u.public_key());
        let tok = jwt::encode(&mut uc, &acc).expect("encode");
        let seed = u.seed().expect("seed");
        (u, tok, seed)
    }

    #[test]
    fn roundtrip() {
        let (u, tok, seed) = make();
        let text = format_creds(&tok, &seed);
        let c = Creds::parse(&text).expect("parse");
        assert_eq!(c.jwt, tok);
        assert_eq!(c.seed.as_deref(), Some(seed.as_str()));
        assert_eq!(c.validate().expect("valid").claims.sub, u.public_key());
        let nonce = nk::generate_nonce();
        let sig = c.sign_nonce(&nonce).expect("sign");
        assert!(nk::verify_nonce(&u.public_key(), nk::KeyKind::User, &nonce, &sig).is_ok());
        // CRLF line endings and surrounding blank lines are fine.
        let c2 = Creds::parse(&format!("\r\n\n{}", text.replace('\n', "\r\n"))).expect("crlf");
        assert_eq!(c2, c);
        assert!(!format!("{c:?}").contains(&seed));
    }

    #[test]
    fn bare_jwt() {
        let (_, tok, _) = make();
        let c = Creds::parse(&format!("{tok}\n")).expect("bare");
        assert_eq!(c.jwt, tok);
        assert_eq!(c.key_pair().err(), Some(CredsError::NoSeed));
    }

    #[test]
    fn bad_files() {
        let (_, tok, seed) = make();
        assert_eq!(Creds::parse("").err(), Some(CredsError::Empty));
        assert_eq!(Creds::parse("  \n ").err(), Some(CredsError::Empty));
        assert_eq!(Creds::parse("hello world").err(), Some(CredsError::NoJwt));
        // Unterminated JWT block.
        let t = format!("-----BEGIN NATS USER JWT-----\n{tok}\n");
        assert_eq!(Creds::parse(&t).err(), Some(CredsError::Unterminated));
        // JWT block holding garbage.
        let t = format_creds("notajwt", &seed);
        assert_eq!(Creds::parse(&t).err(), Some(CredsError::NoJwt));
        // Seed block holding garbage.
        let t = format_creds(&tok, "XXXX");
        assert_eq!(Creds::parse(&t).err(), Some(CredsError::InvalidSeed));
        // Seed with a bad checksum.
        let mut bad = seed.clone().into_bytes();
        let k = bad.len() - 3;
        bad[k] = if bad[k] == b'A' { b'B' } else { b'A' };
        let t = format_creds(&tok, &String::from_utf8(bad).unwrap_or_default());
        assert_eq!(
            Creds::parse(&t).expect("structure ok").key_pair().err(),
            Some(CredsError::InvalidSeed)
        );
        // Seed of another user.
        let other = KeyPair::new_user().seed().expect("seed");
        let t = format_creds(&tok, &other);
        assert_eq!(
            Creds::parse(&t).expect("p").validate().err(),
            Some(CredsError::KeyMismatch)
        );
        // Account seed instead of a user seed.
        let acc_seed = KeyPair::new_account().seed().expect("seed");
        let t = format_creds(&tok, &acc_seed);
        assert_eq!(
            Creds::parse(&t).expect("p").key_pair().err(),
            Some(CredsError::NotUserSeed)
        );
        // Tampered JWT.
        let mut t2 = tok.clone();
        t2.insert(tok.find('.').map_or(0, |i| i + 5), 'x');
        let t = format_creds(&t2, &seed);
        assert!(matches!(
            Creds::parse(&t).expect("p").validate(),
            Err(CredsError::Jwt(_))
        ));
        // Missing file.
        assert!(Creds::from_file(std::path::Path::new("/nonexistent/x.creds")).is_err());
    }
}
