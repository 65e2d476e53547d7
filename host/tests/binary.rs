//! The `natrium` binary's own command-line contract. Being an integration test of the `natrium`
//! package, this also makes `cargo test --workspace` build the binary that the end-to-end tests
//! in `tests/` start, with the same feature set, so the test run compiles everything once.

use std::process::Command;

fn natrium() -> Command {
    Command::new(env!("CARGO_BIN_EXE_natrium"))
}

#[test]
fn version_prints_natrium_and_its_version() {
    let out = natrium()
        .arg("--version")
        .output()
        .expect("run natrium --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("natrium: v{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_mode_accepts_a_valid_file_and_rejects_an_invalid_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.conf");
    std::fs::write(&good, "port: 4222\nmax_payload: 1MB\n").expect("write good.conf");
    let out = natrium()
        .args(["-t", "-c"])
        .arg(&good)
        .output()
        .expect("run natrium -t");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "port: 4222\nno_such_key: 1\n").expect("write bad.conf");
    let out = natrium()
        .args(["-t", "-c"])
        .arg(&bad)
        .output()
        .expect("run natrium -t");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:2:1: unknown field \"no_such_key\""),
        "{err}"
    );
}
