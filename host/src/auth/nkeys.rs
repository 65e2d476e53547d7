//! NKeys: public-key checks, nonce generation and nonce-signature verification.
//!
//! An NKey is an ed25519 key encoded as base32 with a one-letter role prefix
//! (`U` user, `A` account, `O` operator, `N` server, `C` cluster) and a CRC16;
//! a seed starts with `S` followed by the role letter. Encoding and ed25519 are
//! done by the `nkeys` crate (ed25519-dalek based).
//!
//! Authentication: the server puts a random `nonce` in INFO, the client signs
//! the nonce's ASCII bytes with its seed and sends the signature in CONNECT
//! `sig`. nats.go sends it base64url without padding (`RawURLEncoding`);
//! nats-server falls back to standard base64, which nats-py sends. We accept
//! all four base64 flavours.

use data_encoding::{BASE64, BASE64URL, BASE64URL_NOPAD, BASE64_NOPAD};
use rand::RngCore;

pub use ::nkeys::KeyPair;

/// Number of random bytes in a nonce (nats-server's `nonceRawLen`).
pub const NONCE_RAW_LEN: usize = 11;
/// Length of the encoded nonce (nats-server's `nonceLen`).
pub const NONCE_LEN: usize = 15;

/// Errors from NKey parsing and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NkeyError {
    #[error("invalid nkey public key")]
    InvalidPublicKey,
    #[error("public key has the wrong role: expected {expected:?}")]
    WrongKeyKind { expected: KeyKind },
    #[error("invalid nkey seed")]
    InvalidSeed,
    #[error("signature is not valid base64")]
    SignatureEncoding,
    #[error("signature has the wrong length")]
    SignatureLength,
    #[error("signature verification failed")]
    BadSignature,
    #[error("signing failed")]
    SigningFailed,
}

/// The role of a public NKey, from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// `U...`
    User,
    /// `A...`
    Account,
    /// `O...`
    Operator,
    /// `N...`
    Server,
    /// `C...`
    Cluster,
}

impl KeyKind {
    /// The prefix character of a public key of this kind.
    pub const fn prefix(self) -> char {
        match self {
            Self::User => 'U',
            Self::Account => 'A',
            Self::Operator => 'O',
            Self::Server => 'N',
            Self::Cluster => 'C',
        }
    }

    fn from_prefix(c: u8) -> Option<Self> {
        Some(match c {
            b'U' => Self::User,
            b'A' => Self::Account,
            b'O' => Self::Operator,
            b'N' => Self::Server,
            b'C' => Self::Cluster,
            _ => return None,
        })
    }
}

/// Decodes a public key (base32, CRC checked) and returns its kind.
pub fn public_key_kind(key: &str) -> Result<KeyKind, NkeyError> {
    let first = *key.as_bytes().first().ok_or(NkeyError::InvalidPublicKey)?;
    let kind = KeyKind::from_prefix(first).ok_or(NkeyError::InvalidPublicKey)?;
    ::nkeys::KeyPair::from_public_key(key).map_err(|_| NkeyError::InvalidPublicKey)?;
    Ok(kind)
}

/// Checks that `key` is a well-formed public key of the given kind.
pub fn validate_public_key(key: &str, expected: KeyKind) -> Result<(), NkeyError> {
    let kind = public_key_kind(key)?;
    if kind == expected {
        Ok(())
    } else {
        Err(NkeyError::WrongKeyKind { expected })
    }
}

/// `true` when `key` is a valid public key of the given kind.
pub fn is_valid_public_key(key: &str, kind: KeyKind) -> bool {
    validate_public_key(key, kind).is_ok()
}

/// A fresh nonce as nats-server makes it: 11 random bytes, base64url without
/// padding (15 characters).
pub fn generate_nonce() -> String {
    let mut raw = [0u8; NONCE_RAW_LEN];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    BASE64URL_NOPAD.encode(&raw)
}

/// Decodes a CONNECT `sig`: base64url (raw or padded), or standard base64
/// (raw or padded), the fallback nats-server also allows.
pub fn decode_signature(sig: &str) -> Result<Vec<u8>, NkeyError> {
    let b = sig.trim().as_bytes();
    let decoded = BASE64URL_NOPAD
        .decode(b)
        .or_else(|_| BASE64URL.decode(b))
        .or_else(|_| BASE64.decode(b))
        .or_else(|_| BASE64_NOPAD.decode(b))
        .map_err(|_| NkeyError::SignatureEncoding)?;
    if decoded.len() != 64 {
        return Err(NkeyError::SignatureLength);
    }
    Ok(decoded)
}

/// Verifies a raw ed25519 signature of `data` by `public_key` (any kind).
pub fn verify_signature(public_key: &str, data: &[u8], sig: &[u8]) -> Result<(), NkeyError> {
    if sig.len() != 64 {
        return Err(NkeyError::SignatureLength);
    }
    let kp =
        ::nkeys::KeyPair::from_public_key(public_key).map_err(|_| NkeyError::InvalidPublicKey)?;
    kp.verify(data, sig).map_err(|_| NkeyError::BadSignature)
}

/// Verifies a client's CONNECT `sig` over the server nonce. `expected` is the
/// kind of key the client must present (`User` for nkey and JWT users).
pub fn verify_nonce(
    public_key: &str,
    expected: KeyKind,
    nonce: &str,
    sig_b64: &str,
) -> Result<(), NkeyError> {
    validate_public_key(public_key, expected)?;
    let sig = decode_signature(sig_b64)?;
    verify_signature(public_key, nonce.as_bytes(), &sig)
}

/// Parses a seed (`S` + role letter ...).
pub fn key_pair_from_seed(seed: &str) -> Result<KeyPair, NkeyError> {
    ::nkeys::KeyPair::from_seed(seed.trim()).map_err(|_| NkeyError::InvalidSeed)
}

/// Signs a nonce the way a client does: base64url, no padding.
pub fn sign_nonce(kp: &KeyPair, nonce: &str) -> Result<String, NkeyError> {
    let sig = kp
        .sign(nonce.as_bytes())
        .map_err(|_| NkeyError::SigningFailed)?;
    Ok(BASE64URL_NOPAD.encode(&sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_shape() {
        let a = generate_nonce();
        let b = generate_nonce();
        assert_eq!(a.len(), NONCE_LEN);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn prefixes() {
        let u = KeyPair::new_user().public_key();
        let a = KeyPair::new_account().public_key();
        let o = KeyPair::new_operator().public_key();
        let n = KeyPair::new_server().public_key();
        assert_eq!(public_key_kind(&u), Ok(KeyKind::User));
        assert_eq!(public_key_kind(&a), Ok(KeyKind::Account));
        assert_eq!(public_key_kind(&o), Ok(KeyKind::Operator));
        assert_eq!(public_key_kind(&n), Ok(KeyKind::Server));
        assert!(validate_public_key(&u, KeyKind::User).is_ok());
        assert_eq!(
            validate_public_key(&a, KeyKind::User),
            Err(NkeyError::WrongKeyKind {
                expected: KeyKind::User
            })
        );
        // Corrupt one character: CRC must catch it.
        let mut bad = u.clone().into_bytes();
        bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap_or_default();
        assert_eq!(public_key_kind(&bad), Err(NkeyError::InvalidPublicKey));
        assert_eq!(public_key_kind(""), Err(NkeyError::InvalidPublicKey));
        assert_eq!(public_key_kind("U"), Err(NkeyError::InvalidPublicKey));
        assert_eq!(public_key_kind("Uéé"), Err(NkeyError::InvalidPublicKey));
        // A seed is not a public key.
        let seed = KeyPair::new_user().seed().unwrap_or_default();
        assert!(public_key_kind(&seed).is_err());
    }

    #[test]
    fn nonce_signature_roundtrip_all_encodings() {
        let kp = KeyPair::new_user();
        let pk = kp.public_key();
        let nonce = generate_nonce();
        let sig = sign_nonce(&kp, &nonce).expect("sign");
        assert!(verify_nonce(&pk, KeyKind::User, &nonce, &sig).is_ok());
        let raw = kp.sign(nonce.as_bytes()).expect("sign");
        for enc in [BASE64URL, BASE64, BASE64_NOPAD] {
            let s = enc.encode(&raw);
            assert!(verify_nonce(&pk, KeyKind::User, &nonce, &s).is_ok(), "{s}");
        }
    }

    #[test]
    fn nonce_signature_negative() {
        let kp = KeyPair::new_user();
        let other = KeyPair::new_user();
        let pk = kp.public_key();
        let nonce = generate_nonce();
        let sig = sign_nonce(&kp, &nonce).expect("sign");
        // Wrong nonce (e.g. a replayed signature for an old nonce).
        let other_nonce = generate_nonce();
        assert_eq!(
            verify_nonce(&pk, KeyKind::User, &other_nonce, &sig),
            Err(NkeyError::BadSignature)
        );
        // Signed by someone else.
        let sig2 = sign_nonce(&other, &nonce).expect("sign");
        assert_eq!(
            verify_nonce(&pk, KeyKind::User, &nonce, &sig2),
            Err(NkeyError::BadSignature)
        );
        // Garbage, truncated, wrong role.
        assert_eq!(
            verify_nonce(&pk, KeyKind::User, &nonce, "!!!"),
            Err(NkeyError::SignatureEncoding)
        );
        assert_eq!(
            verify_nonce(&pk, KeyKind::User, &nonce, &sig[..20]),
            Err(NkeyError::SignatureLength)
        );
        assert_eq!(
            verify_nonce(&pk, KeyKind::User, &nonce, ""),
            Err(NkeyError::SignatureLength)
        );
        assert!(verify_nonce(&pk, KeyKind::Account, &nonce, &sig).is_err());
        // Flip a bit of the signature.
        let mut raw = decode_signature(&sig).expect("decode");
        raw[5] ^= 1;
        assert_eq!(
            verify_signature(&pk, nonce.as_bytes(), &raw),
            Err(NkeyError::BadSignature)
        );
    }

    #[test]
    fn seeds() {
        let kp = KeyPair::new_account();
        let seed = kp.seed().expect("seed");
        assert!(seed.starts_with("SA"));
        let kp2 = key_pair_from_seed(&seed).expect("parse");
        assert_eq!(kp2.public_key(), kp.public_key());
        assert_eq!(
            key_pair_from_seed("SUnotaseed").err(),
            Some(NkeyError::InvalidSeed)
        );
        assert_eq!(
            key_pair_from_seed(&kp.public_key()).err(),
            Some(NkeyError::InvalidSeed)
        );
    }
}
