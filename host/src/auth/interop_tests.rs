//! Interoperability: a chain made by an independent implementation (the
//! PyPI `nkeys` package, and `nats-jwt` when installed) must decode and
//! validate here. Skipped, with a note, when python3 or the packages are
//! missing. Needs: `pip install nkeys` (and `pip install nats-jwt`).

use std::process::Command;

use super::creds::Creds;
use super::jwt::{self, ClientInfo};
use super::permissions::{ConnPermissions, Permissions};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/auth/interop.py");

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(mode: &str) -> Option<serde_json::Value> {
    let out = Command::new("python3").args([SCRIPT, mode]).output().ok()?;
    assert!(
        out.status.success(),
        "interop.py {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).ok()
}

fn check_chain(mode: &str, v: &serde_json::Value) {
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{mode}: missing {k}"))
            .to_string()
    };
    let now = jwt::now_unix();
    let op = jwt::decode_operator(&s("operator_jwt")).expect("operator decodes");
    jwt::validate_operator(&op, now).expect("operator valid");
    assert_eq!(op.claims.sub, s("operator"));
    let acc = jwt::decode_account(&s("account_jwt")).expect("account decodes");
    jwt::validate_account(std::slice::from_ref(&op), &acc, now).expect("account valid");
    assert!(
        acc.has_issuer(&s("account_sk")),
        "{mode}: signing key parsed"
    );

    let nonce = s("nonce");
    let sig = s("nonce_sig");
    let user = jwt::decode_user(&s("user_jwt")).expect("user decodes");
    let mut ci = ClientInfo::new(now);
    ci.nonce = Some(&nonce);
    ci.sig = Some(&sig);
    let au = jwt::validate_user(&acc, &user, &ci).expect("user valid");
    assert_eq!(au.user, s("user"));
    assert_eq!(au.account, s("account"));
    assert_eq!(au.signing_key, None);
    let perms = Permissions::compile(&au.permissions.expect("permissions")).expect("compile");
    let mut cp = ConnPermissions::new(std::sync::Arc::new(perms));
    let t = std::time::Instant::now();
    assert!(cp.can_publish(b"orders.new", t));
    assert!(!cp.can_publish(b"payments.new", t));
    assert!(cp.can_subscribe(b"anything", None));
    assert!(!cp.can_subscribe(b"secret.x", None));

    // User issued by the account signing key, with issuer_account.
    let sig2 = s("nonce_sig2");
    let user2 = jwt::decode_user(&s("user2_jwt")).expect("user2 decodes");
    ci.sig = Some(&sig2);
    let au2 = jwt::validate_user(&acc, &user2, &ci).expect("user2 valid");
    assert_eq!(au2.signing_key, Some(s("account_sk")));
    assert_eq!(au2.account, s("account"));
    // Someone else's signature is refused.
    ci.sig = Some(&sig);
    assert!(jwt::validate_user(&acc, &user2, &ci).is_err());

    // The creds file.
    let creds = Creds::parse(&s("creds")).expect("creds parse");
    let uc = creds.validate().expect("creds valid");
    assert_eq!(uc.claims.sub, s("user"));
    let my_sig = creds.sign_nonce(&nonce).expect("sign");
    ci.sig = Some(&my_sig);
    jwt::validate_user(&acc, &user, &ci).expect("our signature with their seed");
}

#[test]
fn python_nkeys_handmade_chain() {
    if !python_has("nkeys") {
        println!("SKIPPED: python3 with the `nkeys` package is not available (pip install nkeys)");
        return;
    }
    let v = run("handmade").expect("json");
    check_chain("handmade", &v);
}

#[test]
fn python_nats_jwt_chain() {
    if !python_has("nkeys") || !python_has("nats_jwt") {
        println!("SKIPPED: python3 with `nkeys` and `nats-jwt` is not available (pip install nkeys nats-jwt)");
        return;
    }
    let v = run("nats_jwt").expect("json");
    check_chain("nats_jwt", &v);
}
