//! `natrium plugin new` as an author would use it: a project per language is created, built
//! with its own build script (Rust: `cargo build --target wasm32-wasip2` in the target
//! directory the example plugins use, so only the new crate compiles), checked with `natrium
//! plugin check`, and run with `natrium plugin run` on the samples it ships; the Python and
//! JavaScript projects' own tests (which run the same samples) pass too.
//!
//! Cost: every Rust world is built (seconds each). Python and JavaScript build one world
//! each — a componentize-py or componentize-js build plus the first compile of a 12–18 MB
//! component take tens of seconds — and reuse the installs `plugins/build.sh` made
//! (componentize-py from its venv; npm's cache for the pinned componentize-js).
//!
//! Natrium-only: skipped when the server under test is nats-server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use natrium_tests::{run_bin, server_bin, workspace_root};
use serde_json::Value;

use super::plugins::skip;

/// `natrium plugin ARGS` in `cwd`: exit code, stdout, stderr.
fn natrium(cwd: &Path, args: &[&str]) -> Result<(Option<i32>, String, String)> {
    let mut all = vec!["plugin"];
    all.extend_from_slice(args);
    let out = run_bin(&all, cwd, Duration::from_secs(300))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Runs `cmd` in `dir` to completion, failing with its output when it fails.
fn sh(dir: &Path, cmd: &mut Command, what: &str) -> Result<()> {
    let t0 = Instant::now();
    let out = cmd
        .current_dir(dir)
        .output()
        .with_context(|| format!("starting {what}"))?;
    println!("{what}: {:?}", t0.elapsed());
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `natrium plugin new NAME --lang LANG --world WORLD` under `parent` (plus `extra` flags).
fn new_project(
    parent: &Path,
    name: &str,
    lang: &str,
    world: &str,
    extra: &[&str],
) -> Result<PathBuf> {
    let dir = parent.join(name);
    let dir_arg = dir.display().to_string();
    let mut args = vec![
        "new", name, "--lang", lang, "--world", world, "--dir", &dir_arg,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = natrium(parent, &args)?;
    ensure!(code == Some(0), "plugin new failed ({code:?}):\n{out}{err}");
    ensure!(out.contains("./build.sh"), "no next steps:\n{out}");
    Ok(dir)
}

/// True when every member of `want` is in `got` (objects recursively; anything else equal).
fn contains(got: &Value, want: &Value) -> bool {
    match want {
        Value::Object(w) => w.iter().all(|(k, v)| contains(&got[k.as_str()], v)),
        w => got == w,
    }
}

/// `natrium plugin check` accepts `wasm` as the project's world, and `natrium plugin run`
/// gives each sample of its samples.json the decision written there (with a generous
/// deadline: a new Python instance starts its interpreter inside its first call).
fn check_and_run(project: &Path, wasm: &Path) -> Result<()> {
    let samples: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("samples.json"))?)?;
    let world = samples["world"].as_str().context("world")?;
    let file = wasm.display().to_string();
    let (code, out, err) = natrium(project, &["check", &file, "--world", world])?;
    ensure!(
        code == Some(0)
            && out.contains("(all granted)")
            && out.contains(&format!("worlds: {world}")),
        "check {file}:\n{out}{err}"
    );
    let config = samples["config"].to_string();
    for s in samples["samples"].as_array().context("samples")? {
        let args: Vec<&str> = s["args"]
            .as_array()
            .context("args")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut all = vec![
            "run",
            &file,
            "--world",
            world,
            "--config",
            &config,
            "--deadline",
            "1s",
            "--json",
        ];
        all.extend_from_slice(&args);
        let (code, out, err) = natrium(project, &all)?;
        ensure!(code == Some(0), "run {args:?}:\n{out}{err}");
        let got: Value = serde_json::from_str(&out).with_context(|| out.clone())?;
        ensure!(
            contains(&got, &s["expect"]),
            "run {args:?}: got {got}, want {}",
            s["expect"]
        );
    }
    Ok(())
}

/// Where the example plugins' Rust build lives (as in plugins/build.sh).
fn plugins_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("plugins").join("target"))
}

#[test]
fn plugin_new_rust_every_world_builds_checks_and_decides() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let root = workspace_root().display().to_string();
    let target = plugins_target_dir();
    for world in ["authorizer", "mapper", "transformer", "batch-transformer"] {
        let name = format!("new-{world}");
        let project = new_project(d.path(), &name, "rust", world, &["--sdk", &root])?;
        let manifest = std::fs::read_to_string(project.join("Cargo.toml"))?;
        ensure!(
            manifest.contains(&format!("path = \"{root}/plugin-sdk\"")),
            "the SDK by path:\n{manifest}"
        );
        ensure!(
            project.join("Cargo.lock").is_file(),
            "the plugins' lockfile is copied"
        );
        sh(
            &project,
            Command::new("cargo")
                .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
                .env("CARGO_TARGET_DIR", &target),
            &format!("cargo build ({world})"),
        )?;
        let wasm = target
            .join("wasm32-wasip2")
            .join("release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        check_and_run(&project, &wasm)?;
    }
    Ok(())
}

/// A `lang` project of `world` named `name`: built by its build.sh (with `env`), checked and
/// run on its samples, then its own test (`test`, with $NATRIUM set) passes.
fn interpreted(
    lang: &str,
    world: &str,
    name: &str,
    env: &[(&str, PathBuf)],
    test: &[&str],
) -> Result<()> {
    let d = tempfile::tempdir()?;
    let project = new_project(d.path(), name, lang, world, &[])?;
    let mut build = Command::new("./build.sh");
    build.envs(env.iter().map(|(k, v)| (k, v)));
    sh(&project, &mut build, &format!("{lang} build.sh"))?;
    check_and_run(&project, &project.join(format!("{name}.wasm")))?;
    let (program, args) = test.split_first().context("a test command")?;
    sh(
        &project,
        Command::new(program)
            .args(args)
            .env("NATRIUM", server_bin()?),
        &test.join(" "),
    )
}

#[test]
fn plugin_new_python_authorizer_builds_and_passes_its_test() -> Result<()> {
    if skip() {
        return Ok(());
    }
    // The componentize-py plugins/build.sh installed, unless one is on PATH.
    let venv = workspace_root()
        .join("target")
        .join("componentize-py-venv")
        .join("bin")
        .join("componentize-py");
    let env: Vec<(&str, PathBuf)> = if venv.is_file() {
        vec![("COMPONENTIZE_PY", venv)]
    } else {
        Vec::new()
    };
    interpreted(
        "python",
        "authorizer",
        "py-authz",
        &env,
        &["python3", "-m", "unittest", "-v"],
    )
}

#[test]
fn plugin_new_javascript_batch_transformer_builds_and_passes_its_test() -> Result<()> {
    if skip() {
        return Ok(());
    }
    // `npm ci` is served from npm's cache, which plugins/build.sh filled with the same pins.
    interpreted(
        "javascript",
        "batch-transformer",
        "js-gate",
        &[],
        &["node", "--test"],
    )
}

#[test]
fn plugin_new_refuses_an_existing_directory_and_bad_arguments() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    std::fs::create_dir(d.path().join("taken"))?;
    let (code, _, err) = natrium(
        d.path(),
        &["new", "taken", "--lang", "rust", "--world", "mapper"],
    )?;
    ensure!(
        code == Some(2) && err.contains("exists: refusing to overwrite it"),
        "{code:?} {err}"
    );
    ensure!(
        std::fs::read_dir(d.path().join("taken"))?.next().is_none(),
        "nothing was written into it"
    );
    for (args, says) in [
        (
            &["new", "x", "--lang", "cobol", "--world", "mapper"][..],
            "unknown language",
        ),
        (
            &["new", "x", "--lang", "rust", "--world", "router"][..],
            "unknown world",
        ),
        (
            &["new", "Bad_Name", "--lang", "rust", "--world", "mapper"][..],
            "NAME",
        ),
        (&["new", "x", "--world", "mapper"][..], "--lang is required"),
    ] {
        let (code, _, err) = natrium(d.path(), args)?;
        if code != Some(2) || !err.contains(says) {
            bail!("{args:?}: exit {code:?}, stderr {err}");
        }
    }
    Ok(())
}
