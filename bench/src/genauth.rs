//! `gen-operator DIR`: everything `bench/auth.sh` needs for the authentication and
//! permission benchmarks, made fresh on every call (new keys each time):
//!
//! - `op.jwt`: an operator JWT (with a system account `SYS`); `jwt-user.creds` (also
//!   `jwt-user.jwt` + `jwt-user.seed`): a user of account `BENCH`, signed by that account,
//!   whose JWT is signed by the operator. JWTs are made here from scratch (base64url JSON +
//!   ed25519 via the `nkeys` crate, header `{"typ":"JWT","alg":"ed25519-nkey"}`), the same way
//!   as tests/tests/e2e/operator.rs, independently of natrium's JWT code.
//! - `nkey-user.seed` (+ `.pub`): an NKey user.
//! - Server configs (nats-server syntax, accepted by natrium and nats-server alike):
//!   `none.conf` (no auth), `password.conf` (user `bench` / `bench-password`), `nkey.conf`
//!   (the NKey user), `jwt.conf` (operator mode, `resolver: MEMORY` with `resolver_preload`),
//!   `perms.conf` (account `BENCH` with user `open`/`open-pass` without permissions and user
//!   `limited`/`limited-pass` with 100 publish allow rules — 99 that never match
//!   `bench.pubsub`, then `bench.pubsub` — and 4 deny rules that do not match it either).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use data_encoding::BASE64URL_NOPAD;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// Signs `claims` as `issuer`: sets `iss`, `iat` and a `jti`.
fn sign(issuer: &KeyPair, mut claims: Value) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs();
    claims["iss"] = json!(issuer.public_key());
    claims["iat"] = json!(now);
    // A fresh key's public part is random enough for a jti.
    claims["jti"] = json!(BASE64URL_NOPAD.encode(KeyPair::new_user().public_key().as_bytes()));
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims)?);
    let signed = format!("{header}.{body}");
    let sig = issuer
        .sign(signed.as_bytes())
        .map_err(|e| anyhow!("signing: {e}"))?;
    Ok(format!("{signed}.{}", BASE64URL_NOPAD.encode(&sig)))
}

fn account_jwt(op: &KeyPair, acc: &KeyPair, name: &str) -> Result<String> {
    sign(
        op,
        json!({
            "sub": acc.public_key(),
            "name": name,
            "nats": {
                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1},
                "default_permissions": {"pub": {}, "sub": {}},
                "type": "account",
                "version": 2
            }
        }),
    )
}

fn seed(kp: &KeyPair) -> Result<String> {
    kp.seed().map_err(|e| anyhow!("seed: {e}"))
}

/// The 100 publish allow rules of user `limited`: 99 that never match `bench.pubsub`
/// (literal, `*` and `>` forms), then `bench.pubsub` itself, last.
pub fn limited_allow() -> Vec<String> {
    let mut v = Vec::with_capacity(100);
    for i in 0..33 {
        v.push(format!("svc.{i}.requests"));
        v.push(format!("app.{i}.*.events"));
        v.push(format!("tenant{i}.>"));
    }
    v.push("bench.pubsub".into());
    v
}

/// Deny rules of user `limited` (none matches `bench.pubsub`).
pub const LIMITED_DENY: [&str; 4] = [
    "bench.pubsub.secret",
    "bench.*.admin",
    "bench.private.>",
    "$SYS.>",
];

fn quoted_list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items
        .into_iter()
        .map(|s| serde_json::Value::from(s.as_ref()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
}

pub fn run(argv: &[String]) -> Result<()> {
    let [dir] = argv else {
        bail!("usage: natrium-bench gen-operator DIR");
    };
    let dir = Path::new(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;

    // Operator mode.
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let acc = KeyPair::new_account();
    let user = KeyPair::new_user();
    let op_jwt = sign(
        &op,
        json!({"sub": op.public_key(), "name": "BENCH-OP",
               "nats": {"type": "operator", "version": 2, "system_account": sys.public_key()}}),
    )?;
    let user_jwt = sign(
        &acc,
        json!({
            "sub": user.public_key(),
            "name": "bench-jwt-user",
            "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                     "type": "user", "version": 2}
        }),
    )?;
    let user_seed = seed(&user)?;
    write(&dir, "op.jwt", &op_jwt)?;
    write(&dir, "jwt-user.jwt", &user_jwt)?;
    write(&dir, "jwt-user.seed", &user_seed)?;
    write(
        &dir,
        "jwt-user.creds",
        &format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        ),
    )?;
    write(
        &dir,
        "jwt.conf",
        &format!(
            "# operator mode (natrium-bench gen-operator)\noperator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{}\"\n  {}: \"{}\"\n}}\n",
            dir.join("op.jwt").display(),
            sys.public_key(),
            sys.public_key(),
            account_jwt(&op, &sys, "SYS")?,
            acc.public_key(),
            account_jwt(&op, &acc, "BENCH")?,
        ),
    )?;

    // NKey user.
    let nk = KeyPair::new_user();
    write(&dir, "nkey-user.seed", &seed(&nk)?)?;
    write(&dir, "nkey-user.pub", &nk.public_key())?;
    write(
        &dir,
        "nkey.conf",
        &format!(
            "# an NKey user (natrium-bench gen-operator)\naccounts {{\n  BENCH: {{ users: [ {{ nkey: {} }} ] }}\n}}\n",
            nk.public_key()
        ),
    )?;

    write(
        &dir,
        "none.conf",
        "# no authentication (natrium-bench gen-operator)\n",
    )?;
    write(
        &dir,
        "password.conf",
        "# a plain-text password user (natrium-bench gen-operator)\naccounts {\n  BENCH: { users: [ { user: bench, password: \"bench-password\" } ] }\n}\n",
    )?;

    let mut perms = String::from(
        "# permissions benchmark (natrium-bench gen-operator): `open` has no permissions,\n\
         # `limited` 100 publish allow rules (bench.pubsub is the last) and 4 deny rules.\n\
         accounts {\n  BENCH: {\n    users: [\n      { user: open, password: \"open-pass\" }\n",
    );
    writeln!(
        perms,
        "      {{ user: limited, password: \"limited-pass\", permissions: {{\n          publish: {{\n            allow: [{}]\n            deny: [{}]\n          }}\n      }} }}\n    ]\n  }}\n}}",
        quoted_list(limited_allow()),
        quoted_list(LIMITED_DENY)
    )?;
    write(&dir, "perms.conf", &perms)?;
    println!("wrote keys, JWTs and configs to {}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hundred_rules_one_match() {
        let v = limited_allow();
        assert_eq!(v.len(), 100);
        assert_eq!(v.iter().filter(|s| s.starts_with("bench.")).count(), 1);
    }
}
