//! `natrium plugin sign FILE --seed SEEDFILE [--out SIG]`: writes the detached signature a
//! binding's `signed_by` checks (`plugin::signature`): the component's sha256 signed with an
//! account (`SA…`) or operator (`SO…`) seed, base64url, into `FILE.sig` unless `--out` says
//! otherwise. Prints the hash, the signer's public key and where the signature went.

use std::path::{Path, PathBuf};

use crate::plugin::signature;

use super::args::{self, valued};
use super::{Done, ToolError};

pub(super) const USAGE: &str = "\
Usage: natrium plugin sign FILE --seed SEEDFILE [--out SIG]

Signs the component FILE for bindings with signed_by: its sha256 (64 lower-case hex digits)
signed with the account (SA…) or operator (SO…) seed found in SEEDFILE (an nk seed file, or
any file holding one), base64url, written to FILE.sig (or SIG). The same signature as
`nk -sign <file holding the hex digest> -inkey SEEDFILE`.

Options:
    --seed SEEDFILE   The file with the seed (required; keep it private)
    --out SIG         Where to write the signature (default FILE.sig)
";

pub(super) fn sign(args: &[String]) -> Result<Done, ToolError> {
    let a = args::parse(args, &[valued("seed"), valued("out")])?;
    if a.has("help") {
        return Ok(Done::Help);
    }
    let file = super::file(&a)?;
    let seed_file = a
        .value("seed")
        .ok_or_else(|| ToolError::Usage("give --seed SEEDFILE".into()))?;
    let out = a
        .value("out")
        .map_or_else(|| signature::default_path(&file), PathBuf::from);
    let report = sign_file(&file, Path::new(seed_file), &out)?;
    print!("{report}");
    Ok(Done::Ok)
}

/// Signs `file` with the seed in `seed_file` into `out`; returns the report.
fn sign_file(file: &Path, seed_file: &Path, out: &Path) -> Result<String, ToolError> {
    let text = std::fs::read_to_string(seed_file)
        .map_err(|e| ToolError::Input(format!("{}: {e}", seed_file.display())))?;
    let seed = signature::find_seed(&text)
        .map_err(|e| ToolError::Input(format!("{}: {e}", seed_file.display())))?;
    let sha256 = crate::plugin::component_sha256(file)
        .map_err(|e| ToolError::Input(format!("{}: {e}", file.display())))?;
    let sig = signature::sign(&seed, &sha256)
        .map_err(|e| ToolError::Input(format!("{}: {e}", seed_file.display())))?;
    std::fs::write(out, sig)
        .map_err(|e| ToolError::Input(format!("writing {}: {e}", out.display())))?;
    Ok(format!(
        "{}\n  sha256: {sha256}\n  signed by: {}\n  signature: {}\n",
        file.display(),
        seed.public_key(),
        out.display()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_written_here_verifies_and_a_user_seed_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("p.wasm");
        std::fs::write(&file, b"\0asm\x0d\0\x01\0").unwrap();
        let account = nkeys::KeyPair::new_account();
        let seed = d.path().join("a.nk");
        std::fs::write(&seed, format!("{}\n", account.seed().unwrap())).unwrap();
        let out = signature::default_path(&file);
        let report = sign_file(&file, &seed, &out).unwrap();
        assert!(report.contains(&account.public_key()), "{report}");
        let verified = signature::check_file(&file, &out, &[account.public_key()]).unwrap();
        assert_eq!(verified.signer, account.public_key());
        assert!(report.contains(&verified.sha256), "{report}");

        std::fs::write(&seed, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
        let e = sign_file(&file, &seed, &out).unwrap_err().to_string();
        assert!(e.contains("no account (SA…) or operator (SO…) seed"), "{e}");
    }
}
