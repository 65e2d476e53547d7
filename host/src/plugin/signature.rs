//! Detached signatures of plugin components (`signed_by` of a binding).
//!
//! ```text
//!  component.wasm ──sha256──▶ "9f86d0…0f00a08" (64 lower-case hex digits, ASCII)
//!                                   │ Ed25519, with an account (SA…) or operator (SO…) seed
//!                                   ▼
//!  component.wasm.sig:  base64url(signature) ⏎       (what `nk -sign` prints, too)
//! ```
//!
//! What is signed is the component's SHA-256 as 64 lower-case hex digits, so the standard NATS
//! tool makes the same signature: `printf %s "$(sha256sum c.wasm | cut -c1-64)" > h;
//! nk -sign h -inkey account.nk > c.wasm.sig`. `natrium plugin sign` writes it directly. The
//! signature file holds the signature in base64 (URL-safe or standard, padded or not) and
//! may end in a newline.
//!
//! Verification accepts the signature if any of the trusted public keys made it; the broker
//! then pins the verified hash, so the bytes compiled are the bytes whose signature was
//! checked.

use std::path::{Path, PathBuf};

use data_encoding::{BASE64, BASE64URL, BASE64URL_NOPAD, BASE64_NOPAD};
use nkeys::KeyPair;

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature file is not base64 of a 64-byte Ed25519 signature")]
    Malformed,
    #[error("no trusted key to check against")]
    NoKeys,
    #[error("the signature does not verify with {}: signed by another key, or the component changed since it was signed", .0.join(", "))]
    Mismatch(Vec<String>),
}

/// Why a seed cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("no account (SA…) or operator (SO…) seed found")]
    NotFound,
    #[error("invalid seed: {0}")]
    Invalid(String),
}

/// The signature file of `component` when the binding names none: `<component>.sig`.
pub fn default_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Largest signature file read (a signature is 86 characters).
const MAX_SIGNATURE_FILE: u64 = 4096;

/// A component whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The SHA-256 of the bytes whose signature verified (lower-case hex): pin it.
    pub sha256: String,
    /// The public key that signed.
    pub signer: String,
}

/// Reads `component` and its detached `signature` file and checks the signature against
/// `trusted`. The error says which file and why.
pub fn check_file(
    component: &Path,
    signature: &Path,
    trusted: &[String],
) -> Result<Verified, String> {
    use std::io::Read;
    let sha256 = super::engine::component_sha256(component)?;
    let mut contents = Vec::new();
    std::fs::File::open(signature)
        .and_then(|f| f.take(MAX_SIGNATURE_FILE).read_to_end(&mut contents))
        .map_err(|e| {
            format!(
                "the binding requires a signature (signed_by) and {} cannot be read: {e} \
                 (make one with `natrium plugin sign {} --seed <seed file>`)",
                signature.display(),
                component.display()
            )
        })?;
    let signer = verify(&contents, &sha256, trusted)
        .map_err(|e| format!("signature {}: {e}", signature.display()))?;
    Ok(Verified { sha256, signer })
}

/// The bytes that are signed: the hex digest as ASCII.
fn message(sha256_hex: &str) -> Vec<u8> {
    sha256_hex.to_ascii_lowercase().into_bytes()
}

/// The first account or operator seed in `text` (an `nk` seed file, or a file with one among
/// other lines, like a `.creds` file's seed block).
pub fn find_seed(text: &str) -> Result<KeyPair, SeedError> {
    let word = text
        .split(|c: char| c.is_whitespace())
        .map(str::trim)
        .find(|w| w.len() > 2 && (w.starts_with("SA") || w.starts_with("SO")))
        .ok_or(SeedError::NotFound)?;
    KeyPair::from_seed(word).map_err(|e| SeedError::Invalid(e.to_string()))
}

/// The signature file's contents for a component whose SHA-256 is `sha256_hex`.
pub fn sign(seed: &KeyPair, sha256_hex: &str) -> Result<String, SeedError> {
    let sig = seed
        .sign(&message(sha256_hex))
        .map_err(|e| SeedError::Invalid(e.to_string()))?;
    Ok(format!("{}\n", BASE64URL_NOPAD.encode(&sig)))
}

/// Checks the signature file's `contents` for the component `sha256_hex` against `trusted`
/// public keys; returns the key that signed.
pub fn verify(
    contents: &[u8],
    sha256_hex: &str,
    trusted: &[String],
) -> Result<String, SignatureError> {
    if trusted.is_empty() {
        return Err(SignatureError::NoKeys);
    }
    let text = std::str::from_utf8(contents).map_err(|_| SignatureError::Malformed)?;
    let text = text.trim().as_bytes();
    let sig = [BASE64URL_NOPAD, BASE64URL, BASE64_NOPAD, BASE64]
        .iter()
        .find_map(|enc| enc.decode(text).ok())
        .filter(|s| s.len() == 64)
        .ok_or(SignatureError::Malformed)?;
    let msg = message(sha256_hex);
    trusted
        .iter()
        .find(|key| {
            KeyPair::from_public_key(key)
                .and_then(|k| k.verify(&msg, &sig))
                .is_ok()
        })
        .cloned()
        .ok_or_else(|| SignatureError::Mismatch(trusted.to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let account = KeyPair::new_account();
        let other = KeyPair::new_account();
        let file = sign(&account, HASH).unwrap();
        assert!(file.ends_with('\n'));
        let ours = account.public_key();
        assert_eq!(
            verify(file.as_bytes(), HASH, std::slice::from_ref(&ours)),
            Ok(ours.clone())
        );
        assert_eq!(
            verify(
                file.as_bytes(),
                &HASH.to_ascii_uppercase(),
                std::slice::from_ref(&ours)
            ),
            Ok(ours.clone()),
            "the hex digest is compared in lower case"
        );
        assert_eq!(
            verify(file.as_bytes(), HASH, &[other.public_key(), ours.clone()]),
            Ok(ours.clone()),
            "any trusted key"
        );
        assert!(matches!(
            verify(file.as_bytes(), HASH, &[other.public_key()]),
            Err(SignatureError::Mismatch(_))
        ));
        let tampered = HASH.replace('9', "8");
        assert!(matches!(
            verify(file.as_bytes(), &tampered, std::slice::from_ref(&ours)),
            Err(SignatureError::Mismatch(_))
        ));
        assert_eq!(
            verify(file.as_bytes(), HASH, &[]),
            Err(SignatureError::NoKeys)
        );
        assert_eq!(
            verify(b"not base64!", HASH, std::slice::from_ref(&ours)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"AAAA", HASH, &[ours]),
            Err(SignatureError::Malformed),
            "too short"
        );
    }

    #[test]
    fn every_base64_flavour_of_the_raw_signature_is_read() {
        let op = KeyPair::new_operator();
        let raw = op.sign(HASH.as_bytes()).unwrap();
        for enc in [BASE64URL_NOPAD, BASE64URL, BASE64_NOPAD, BASE64] {
            let text = format!("  {}\r\n", enc.encode(&raw));
            assert_eq!(
                verify(text.as_bytes(), HASH, &[op.public_key()]),
                Ok(op.public_key())
            );
        }
    }

    #[test]
    fn seeds_are_found_in_seed_and_creds_files() {
        let account = KeyPair::new_account();
        let seed = account.seed().unwrap();
        let creds = format!(
            "-----BEGIN NATS USER JWT-----\neyJ0eXAi\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        assert_eq!(
            find_seed(&creds).unwrap().public_key(),
            account.public_key()
        );
        assert_eq!(
            find_seed(&format!("{seed}\n")).unwrap().public_key(),
            account.public_key()
        );
        let user = KeyPair::new_user().seed().unwrap();
        assert_eq!(
            find_seed(&user).err(),
            Some(SeedError::NotFound),
            "a user seed cannot sign"
        );
        assert!(matches!(find_seed("SAXXXX"), Err(SeedError::Invalid(_))));
    }
}
