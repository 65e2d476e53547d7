//! The plugin author's tools (issue 14): `natrium plugin check|run|bench` run as a user would,
//! against the built example plugins and test guests, and sha256 pinning of a binding at
//! start-up, under `-t` and on reload. The broker's load errors give the same advice as
//! `check` (one diagnosis serves both).
//!
//! Natrium-only: skipped when the server under test is nats-server.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use natrium_tests::{plugin_path, run_bin, TestServer};
use sha2::{Digest, Sha256};

use super::plugin_loading::alice_admitted;
use super::plugins::{cache_dir, run_conf, skip, token, wasm, JWT_SECRET};
use super::reload::{rewrite_and_hup, RELOAD_FAILED};

/// What one `natrium plugin …` run printed, and how it exited.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A command line's words, split at whitespace as a shell would, `'…'` kept together.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// Runs `natrium plugin LINE` in `dir` (LINE split as a shell would).
fn plugin(dir: &Path, line: impl AsRef<str>) -> Result<Ran> {
    let mut all = vec!["plugin".to_string()];
    all.extend(words(line.as_ref()));
    let args: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = run_bin(&args, dir, Duration::from_secs(120))?;
    Ok(Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A built component's path, as a command-line argument.
fn file(name: &str) -> Result<String> {
    Ok(plugin_path(name)?.display().to_string())
}

fn sha256_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The smallest core WebAssembly module: what a build for wasm32-wasip1 is, as far as the
/// header goes (magic, version 1, layer 0).
const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";

const CORE_MODULE_FIX: [&str; 3] = [
    "is a core WebAssembly module, not a component",
    "build it for wasm32-wasip2",
    "wasm-tools component new MODULE.wasm --adapt wasi_snapshot_preview1.reactor.wasm",
];

const HTTP_FIX: [&str; 3] = [
    "imports wasi:http/client@0.2.0, which natrium does not grant",
    "componentize-js: build with the http feature disabled (`jco componentize --disable http`",
    "componentize-py: do not import the http module",
];

// ---- check ----------------------------------------------------------------------------------

#[test]
fn check_says_what_a_file_is_which_worlds_and_its_hash() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let jwt = file("jwt-authorizer")?;
    let r = plugin(d.path(), format!("check {jwt}"))?;
    let sha = sha256_of(Path::new(&jwt))?;
    ensure!(r.code == Some(0), "a good authorizer is loadable:\n{r}");
    for line in [
        format!("  sha256: {sha}\n"),
        "  worlds: authorizer\n".to_string(),
        "(all granted)\n".to_string(),
        "  loadable: yes\n".to_string(),
        format!("  pin it in the binding: sha256: \"{sha}\"\n"),
    ] {
        ensure!(r.stdout.contains(&line), "missing {line:?}:\n{r}");
    }

    // The lifecycle export, and a batch-transformer.
    let r = plugin(d.path(), format!("check {}", file("json-validator")?))?;
    ensure!(
        r.code == Some(0)
            && r.stdout.contains(
                "  worlds: transformer (+ lifecycle: checks its configuration at load)\n"
            ),
        "{r}"
    );
    let gate = file("size-gate")?;
    let r = plugin(d.path(), format!("check {gate} --world batch-transformer"))?;
    ensure!(
        r.code == Some(0)
            && r.stdout.contains("  worlds: batch-transformer\n")
            && r.stdout
                .contains("  loadable: yes (as batch-transformer)\n"),
        "{r}"
    );

    // --world W: exit 0 only for W.
    let r = plugin(d.path(), format!("check {gate} --world mapper"))?;
    ensure!(r.code == Some(1), "size-gate is no mapper:\n{r}");
    ensure!(
        r.stdout
            .contains("  not a mapper: missing export natrium:plugin/mapping@0.1.0\n")
            && r.stdout.contains("  loadable: no\n"),
        "{r}"
    );

    // JSON for scripts.
    let r = plugin(d.path(), format!("check {jwt} --json"))?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).with_context(|| r.to_string())?;
    ensure!(v["sha256"] == sha.as_str(), "{v}");
    ensure!(v["loadable"] == true, "{v}");
    ensure!(v["worlds"] == serde_json::json!(["authorizer"]), "{v}");
    ensure!(
        v["imports"]
            .as_array()
            .is_some_and(|i| !i.is_empty() && i.iter().all(|i| i["granted"] == true)),
        "{v}"
    );
    Ok(())
}

#[test]
fn check_explains_a_core_module_and_an_import_natrium_does_not_grant() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let core = d.path().join("wasip1.wasm");
    std::fs::write(&core, CORE_MODULE)?;
    let r = plugin(d.path(), format!("check {}", core.display()))?;
    ensure!(r.code == Some(1), "a core module is not loadable:\n{r}");
    for fix in CORE_MODULE_FIX {
        ensure!(r.stdout.contains(fix), "missing {fix:?}:\n{r}");
    }

    let r = plugin(d.path(), format!("check {}", file("http-importer")?))?;
    ensure!(r.code == Some(1), "an import natrium does not grant:\n{r}");
    ensure!(
        r.stdout.contains("  worlds: authorizer\n")
            && r.stdout.contains("(1 not granted)\n")
            && r.stdout.contains("    not granted: wasi:http/client@0.2.0\n")
            && r.stdout.contains("      fix: natrium links no HTTP; componentize-js: build with the http feature disabled")
            && r.stdout.contains("  loadable: no\n"),
        "{r}"
    );
    let r = plugin(d.path(), format!("check {} --json", file("http-importer")?))?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).with_context(|| r.to_string())?;
    let refused: Vec<&serde_json::Value> = v["imports"]
        .as_array()
        .map(|i| i.iter().filter(|i| i["granted"] == false).collect())
        .unwrap_or_default();
    ensure!(
        refused.len() == 1 && refused[0]["name"] == "wasi:http/client@0.2.0",
        "{v}"
    );

    let r = plugin(d.path(), "check no-such.wasm")?;
    ensure!(
        r.code == Some(1) && r.stderr.contains("no-such.wasm: cannot read"),
        "{r}"
    );
    Ok(())
}

#[test]
fn the_broker_gives_the_same_advice_at_check_and_startup() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let core = d.path().join("wasip1.wasm");
    std::fs::write(&core, CORE_MODULE)?;
    let conf = |name: &str, path: &str, role: &str| {
        format!(
            "plugin_cache_dir: {}\naccounts {{ A: {{}} }}\nplugins {{ {name}: {{ path: {path}, role: {role} }} }}\n",
            cache_dir()
        )
    };
    let core_conf = conf("old", &format!("{:?}", core.display()), "mapper");
    let http_conf = conf("js", &wasm("http-importer")?, "authorizer");
    for (what, conf, fixes) in [
        ("core module", &core_conf, CORE_MODULE_FIX),
        ("wasi:http", &http_conf, HTTP_FIX),
    ] {
        for args in [&["-t"][..], &["-a", "127.0.0.1", "-p", "-1"][..]] {
            let (ok, text) = run_conf(d.path(), conf, args)?;
            ensure!(!ok, "{what} {args:?} must fail:\n{text}");
            ensure!(!text.contains("Server is ready"), "{text}");
            for fix in fixes {
                ensure!(
                    text.contains(fix),
                    "{what} {args:?}: missing {fix:?}:\n{text}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn help_and_usage_mistakes() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let r = plugin(d.path(), "--help")?;
    ensure!(
        r.code == Some(0) && r.stdout.starts_with("Usage: natrium plugin <command>"),
        "{r}"
    );
    for cmd in ["check", "run", "bench"] {
        let r = plugin(d.path(), format!("{cmd} --help"))?;
        ensure!(
            r.code == Some(0)
                && r.stdout
                    .starts_with(&format!("Usage: natrium plugin {cmd} ")),
            "{r}"
        );
    }
    let jwt = file("jwt-authorizer")?;
    for (args, says) in [
        ("frobnicate".to_string(), "unknown command \"frobnicate\""),
        (format!("run {jwt}"), "--world is required"),
        (
            format!("run {jwt} --world judge"),
            "unknown world \"judge\"",
        ),
        (format!("check {jwt} --colour"), "unknown flag --colour"),
        (
            format!("run {jwt} --world authorizer --input x.json --user a"),
            "--input or input flags",
        ),
    ] {
        let r = plugin(d.path(), &args)?;
        ensure!(
            r.code == Some(2) && r.stderr.contains(says),
            "{args:?}:\n{r}"
        );
    }
    // The server's own usage points at the tools.
    let out = run_bin(&["--help"], d.path(), Duration::from_secs(30))?;
    ensure!(String::from_utf8_lossy(&out.stdout).contains("natrium plugin check|run|bench"));
    Ok(())
}

// ---- run ------------------------------------------------------------------------------------

#[test]
fn run_prints_an_authorizers_decision() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let authz = file("authz")?;
    let r = plugin(
        d.path(),
        format!(
            "run {} --world authorizer --user alice --pass secret",
            authz
        ),
    )?;
    ensure!(r.code == Some(0), "{r}");
    ensure!(
        r.stdout.starts_with(
            "decision: allow\n  account: A\n  user: alice\n  publish: allow orders.>; deny \
             orders.secret\n  subscribe: allow -; deny -\n  allow_responses: max 1 within 500 \
             ms\n  max_subscriptions: 10\ntime: "
        ) && r.stdout.contains("memory: "),
        "{r}"
    );
    let r = plugin(
        d.path(),
        format!(
            "run {} --world authorizer --user bob --client-ip 10.1.2.3",
            authz
        ),
    )?;
    ensure!(
        r.code == Some(0)
            && r.stdout
                .starts_with("decision: deny: unknown user from 10.1.2.3\n"),
        "{r}"
    );

    // The JWT authorizer with its configuration and a real token, as JSON.
    let config = serde_json::json!({
        "hs256_secret": JWT_SECRET,
        "tenant_claim": "tenant",
        "user_claim": "sub",
        "tenants": { "acme": {
            "account": "ACME",
            "publish": { "allow": ["acme.>"], "deny": ["acme.admin.>"] }
        } }
    })
    .to_string();
    let tok = token("acme", "alice", 3600)?;
    let jwt = file("jwt-authorizer")?;
    let r = plugin(
        d.path(),
        format!(
            "run {} --world authorizer --config {} --token {} --json",
            jwt, config, tok
        ),
    )?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).with_context(|| r.to_string())?;
    ensure!(
        v["decision"] == "allow"
            && v["account"] == "ACME"
            && v["user"] == "alice"
            && v["publish"] == serde_json::json!({"allow": ["acme.>"], "deny": ["acme.admin.>"]}),
        "{v}"
    );
    ensure!(
        v["time_us"].as_f64().is_some_and(|t| t > 0.0)
            && v["memory_peak_bytes"].as_u64().is_some_and(|m| m >= 65536),
        "{v}"
    );
    // An expired token: the plugin's own reason.
    let old = token("acme", "alice", -3600)?;
    let r = plugin(
        d.path(),
        format!(
            "run {} --world authorizer --config {} --token {}",
            jwt, config, old
        ),
    )?;
    ensure!(
        r.code == Some(0)
            && r.stdout.starts_with("decision: deny: ")
            && r.stdout.contains("expired"),
        "{r}"
    );
    Ok(())
}

#[test]
fn run_prints_mapped_subjects_and_transformed_messages() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let rules = r#"'{"rules":[{"subject":"orders.*.created","key_token":2,"partitions":4,
        "template":"orders.{partition}.{2}.created"}]}'"#;
    let mapper = file("partition-mapper")?;
    let r = plugin(
        d.path(),
        format!(
            "run {} --world mapper --config {} --subject orders.c42.created",
            mapper, rules
        ),
    )?;
    ensure!(
        r.code == Some(0)
            && r.stdout
                .starts_with("decision: map to orders.p2.c42.created\n"),
        "{r}"
    );
    let r = plugin(
        d.path(),
        format!(
            "run {} --world mapper --config {} --subject other",
            mapper, rules
        ),
    )?;
    ensure!(r.stdout.starts_with("decision: keep the subject\n"), "{r}");

    let redactor = file("pii-redactor")?;
    let r = plugin(
        d.path(),
        format!(
            "run {redactor} --world transformer --subject chat.1 --reply _INBOX.9 \
             --header 'X-Id: 7' --payload 'card 4111 1111 1111 1111 mail bob@example.com'"
        ),
    )?;
    ensure!(
        r.code == Some(0)
            && r.stdout.starts_with(
                "decision: replace with\n  subject: chat.1\n  reply: _INBOX.9\n  header: X-Id: \
                 7\n  header: Natrium-Redacted: email=1,card=1\n  payload: card \
                 [REDACTED:card] mail [REDACTED:email]\n"
            ),
        "{r}"
    );

    let payload = d.path().join("big.bin");
    std::fs::write(&payload, [0u8; 100])?;
    let (gate, payload) = (file("size-gate")?, payload.display());
    let r = plugin(
        d.path(),
        format!(
            "run {gate} --world batch-transformer --config '{{\"max_bytes\": 64}}' \
             --subject up --payload-file {payload} --json"
        ),
    )?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).with_context(|| r.to_string())?;
    ensure!(
        v["decision"] == "drop" && v["reason"] == "payload of 100 bytes is over the limit of 64",
        "{v}"
    );
    Ok(())
}

#[test]
fn run_takes_ndjson_and_shows_the_plugins_logs() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let inputs = d.path().join("in.ndjson");
    std::fs::write(
        &inputs,
        "{\"subject\":\"log\"}\n{\"subject\":\"print\"}\n\
         {\"subject\":\"rewrite\",\"reply\":\"r.1\",\"payload\":\"abc\"}\n{\"subject\":\"drop\"}\n",
    )?;
    let passthrough = file("passthrough")?;
    let input = inputs.display().to_string();
    let r = plugin(
        d.path(),
        format!("run {passthrough} --world transformer --input {input}"),
    )?;
    ensure!(r.code == Some(0), "{r}");
    for part in [
        "input 1:\ndecision: pass (deliver unchanged)\nlogs:\n  info  hello from the guest k=v\ntime: ",
        "input 2:\ndecision: pass (deliver unchanged)\nlogs:\n  info  to stdout stream=stdout\n  \
         warn  to stderr stream=stderr\ntime: ",
        "input 3:\ndecision: replace with\n  subject: rewritten\n  reply: r.1\n  header: \
         X-Rewritten: yes\n  payload: ABC\ntime: ",
        "input 4:\ndecision: drop: dropped by request\n",
    ] {
        ensure!(r.stdout.contains(part), "missing {part:?}:\n{r}");
    }

    // --json: one object per input, in order.
    let r = plugin(
        d.path(),
        format!(
            "run {} --world transformer --input {} --json",
            passthrough, input
        ),
    )?;
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| r.to_string())?;
    ensure!(lines.len() == 4, "{r}");
    ensure!(
        lines[0]["logs"]
            == serde_json::json!([{"level": "info", "message": "hello from the guest", "fields": "k=v"}]),
        "{}",
        lines[0]
    );
    ensure!(
        lines[2]["message"]
            == serde_json::json!({"subject": "rewritten", "reply": "r.1",
                                  "headers": [["X-Rewritten", "yes"]], "payload": "ABC"}),
        "{}",
        lines[2]
    );
    ensure!(lines[3]["decision"] == "drop", "{}", lines[3]);

    // A mistake in the file says which input.
    std::fs::write(&inputs, "{\"subject\":\"a\"}\n{\"subjet\":\"b\"}\n")?;
    let r = plugin(
        d.path(),
        format!("run {passthrough} --world transformer --input {input}"),
    )?;
    ensure!(
        r.code == Some(2) && r.stderr.contains("input 2: unknown field `subjet`"),
        "{r}"
    );
    Ok(())
}

#[test]
fn run_uses_the_brokers_sandbox_deadline_memory_and_init() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let r = plugin(
        d.path(),
        format!(
            "run {} --world authorizer --user loop --deadline 20ms",
            file("authz")?
        ),
    )?;
    ensure!(
        r.code == Some(1)
            && r.stdout
                .starts_with("failed (timeout): plugin call exceeded its deadline\n"),
        "{r}"
    );
    // Time enough to reach the cap on a busy machine (the default deadline is 5 ms).
    let r = plugin(
        d.path(),
        format!(
            "run {} --world transformer --subject boom --memory 8MB --deadline 5s",
            file("membomb")?
        ),
    )?;
    ensure!(
        r.code == Some(1)
            && r.stdout
                .starts_with("failed (oom): plugin exceeded its memory limit\n"),
        "{r}"
    );
    // The world must match, and lifecycle.init sees --config.
    let r = plugin(
        d.path(),
        format!("run {} --world mapper --subject x", file("authz")?),
    )?;
    ensure!(
        r.code == Some(1)
            && r.stderr
                .contains("is not a mapper: missing export natrium:plugin/mapping@0.1.0"),
        "{r}"
    );
    let validator = file("json-validator")?;
    let r = plugin(
        d.path(),
        format!(
            "run {validator} --world transformer --subject x \
             --config '{{\"schema\": {{\"type\": \"nope\"}}}}'"
        ),
    )?;
    ensure!(
        r.code == Some(1)
            && r.stderr.contains("rejected its configuration")
            && r.stderr.contains("unknown type \"nope\""),
        "{r}"
    );
    Ok(())
}

// ---- bench ----------------------------------------------------------------------------------

#[test]
fn bench_reports_rate_and_latency_percentiles_within_its_bounds() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let redactor = file("pii-redactor")?;
    let r = plugin(
        d.path(),
        format!(
            "bench {redactor} --world transformer --subject chat --payload 'mail bob@example.com' \
             --deadline 1s --calls 2000 --duration 60s --json"
        ),
    )?;
    ensure!(r.code == Some(0), "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).with_context(|| r.to_string())?;
    let us = |k: &str| v[k].as_f64().unwrap_or(-1.0);
    ensure!(v["calls"] == 2000 && v["failures"] == 0, "{v}");
    ensure!(us("calls_per_s") > 0.0, "{v}");
    ensure!(
        0.0 < us("p50_us")
            && us("p50_us") <= us("p90_us")
            && us("p90_us") <= us("p99_us")
            && us("p99_us") <= us("max_us"),
        "{v}"
    );

    // Bounded by time: a huge count stops at --duration.
    let authz = file("authz")?;
    let r = plugin(
        d.path(),
        format!(
            "bench {authz} --world authorizer --user bob --calls 100000000 --duration 300ms --json"
        ),
    )?;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).with_context(|| r.to_string())?;
    let elapsed = v["elapsed_s"].as_f64().unwrap_or(-1.0);
    ensure!(
        (0.3..5.0).contains(&elapsed) && v["calls"].as_u64().is_some_and(|c| c < 100_000_000),
        "--duration 300ms must bound the run:\n{v}"
    );

    // The readable form.
    let r = plugin(
        d.path(),
        format!("bench {authz} --world authorizer --user bob --calls 200"),
    )?;
    let lines: Vec<&str> = r.stdout.lines().collect();
    ensure!(r.code == Some(0) && lines.len() == 3, "{r}");
    ensure!(
        lines[0].starts_with("calls: 200 in ") && lines[0].ends_with(" calls/s)"),
        "{r}"
    );
    ensure!(
        lines[1].starts_with("latency: p50 ") && lines[1].contains("  p99 "),
        "{r}"
    );
    ensure!(lines[2].starts_with("memory: "), "{r}");
    Ok(())
}

// ---- pinning --------------------------------------------------------------------------------

/// `authz` (alice/secret into account A) bound with `sha256: pin`, from a copy in `dir`.
fn pinned_conf(component: &Path, pin: &str) -> String {
    format!(
        "plugin_cache_dir: {}\naccounts {{ A: {{}} }}\nplugins {{ authz: {{ path: {:?}, role: \
         authorizer, deadline: \"2s\", sha256: \"{pin}\" }} }}\n",
        cache_dir(),
        component.display().to_string()
    )
}

#[tokio::test]
async fn a_pinned_hash_is_checked_at_check_startup_and_reload() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let d = tempfile::tempdir()?;
    let component = d.path().join("authz.wasm");
    std::fs::copy(plugin_path("authz")?, &component)?;
    let right = sha256_of(&component)?;
    let wrong = sha256_of(&plugin_path("jwt-authorizer")?)?;

    let (ok, text) = run_conf(d.path(), &pinned_conf(&component, &right), &["-t"])?;
    ensure!(ok, "the right hash passes -t:\n{text}");
    let refusal = format!("sha256 mismatch: the binding pins {wrong}, the file is {right}");
    let (ok, text) = run_conf(d.path(), &pinned_conf(&component, &wrong), &["-t"])?;
    ensure!(!ok && text.contains(&refusal), "-t must refuse:\n{text}");
    let (ok, text) = run_conf(
        d.path(),
        &pinned_conf(&component, &wrong),
        &["-a", "127.0.0.1", "-p", "-1"],
    )?;
    ensure!(
        !ok && text.contains(&refusal),
        "start-up must refuse:\n{text}"
    );
    ensure!(!text.contains("Server is ready"), "{text}");

    // A running server with the right pin; then the file is replaced under it (another
    // build): the reload is refused and the loaded authz keeps deciding.
    let conf = pinned_conf(&component, &right);
    let server = TestServer::with_config(&conf)?;
    ensure!(
        server.logs().contains(&format!("sha256 {right} (pinned)")),
        "the load log names the pinned hash:\n{}",
        server.logs()
    );
    alice_admitted(&server, "before the reload").await?;
    std::fs::copy(plugin_path("jwt-authorizer")?, &component)?;
    rewrite_and_hup(&server, &conf, RELOAD_FAILED).await?;
    let swapped = format!("sha256 mismatch: the binding pins {right}, the file is {wrong}");
    ensure!(
        server.logs().contains(&swapped),
        "the reload error names both hashes:\n{}",
        server.logs()
    );
    alice_admitted(&server, "after the refused reload").await?;
    Ok(())
}
