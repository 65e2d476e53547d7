//! `natrium plugin …`: the plugin author's tools, beside the server at the top of the crate.
//!
//! - `check`: what a file is and whether natrium can load it, with the fix for each problem
//!   (the words of `plugin::diagnose`, which the broker's load errors share);
//! - `run`: one or more inputs through the plugin, the decision, logs, time and memory;
//! - `bench`: calls/s and latency percentiles for one input;
//! - `new`: a plugin project (Rust, Python or JavaScript) from the templates in `templates/`.
//! - `sign`: the detached signature a binding's `signed_by` checks.
//!
//! `run` and `bench` load the component with the broker's engine (`PluginEngine`, the same
//! sandbox, deadline and memory cap) and call it through its pool, exactly as the broker
//! does: nothing here re-implements the host.
//!
//! Exit codes: 0 done (check: loadable); 1 not loadable, or a call failed; 2 a usage or
//! input mistake.

mod args;
mod bench;
mod capture;
mod check;
mod input;
mod new;
mod run;
mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use args::{switch, valued, Args, Flag};
use input::Input;

use crate::plugin::diagnose::World;
use crate::plugin::PluginError;

/// Why a tool could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A mistake on the command line (exit code 2, with the usage).
    #[error("{0}")]
    Usage(String),
    /// An input file or value that cannot be used (exit code 2).
    #[error("{0}")]
    Input(String),
    /// The plugin could not be loaded or the engine started (exit code 1).
    #[error("{0}")]
    Plugin(#[from] PluginError),
    /// A file or directory could not be written (exit code 1).
    #[error("{0}")]
    Write(String),
}

const USAGE: &str = "\
Usage: natrium plugin <command> FILE [options]

Commands:
    new NAME --lang L --world W [--dir D] A plugin project that builds, tests and loads:
                                         rust, python or javascript; the plugin, build.sh,
                                         a test and a README.
    check FILE [--world W] [--json]      Is FILE a component natrium can load? Which worlds
                                         does it satisfy, which imports does natrium not
                                         grant (with the fix)? Prints its sha256 to pin.
    run FILE --world W [input] [opts]    Calls the plugin with each input, in the broker's
                                         sandbox; prints the decision, logs, time and memory.
    bench FILE --world W [input] [opts]  Calls/s and latency p50/p90/p99/max for one input.
    sign FILE --seed SEEDFILE [--out S]  Signs FILE's sha256 with an account or operator seed
                                         into FILE.sig (for bindings with signed_by).

Worlds: authorizer, mapper, transformer, batch-transformer.
Exit status: 0 ok (check: loadable), 1 not loadable or a call failed, 2 usage or input error.
`natrium plugin <command> --help` shows each command's options.
";

const CHECK_USAGE: &str = "\
Usage: natrium plugin check FILE [--world W] [--json]

Says whether FILE is a WebAssembly component (a core module built for wasm32-wasip1 gets the
fix), which natrium worlds it satisfies (authorizer, mapper, transformer, batch-transformer;
and the optional lifecycle init), which imports it needs that natrium does not grant (each
with a fix), and its sha256 (pin it in the binding: sha256: \"<hex>\").

Options:
    --world W    Exit 0 only if FILE is loadable as W (a `role: transformer` binding takes
                 a component of either transformer world)
    --json       One JSON object instead of text
";

const RUN_USAGE: &str = "\
Usage: natrium plugin run FILE --world W [input] [options]

Loads FILE as the broker does and calls it with each input; prints the decision (allow/deny
with account and permissions, mapped subject, pass/replace/drop), the plugin's log lines, the
call time and the instance's peak memory.

Options:
    --world W             authorizer, mapper, transformer or batch-transformer (required)
    --config JSON         The plugin's configuration (default {})
    --deadline D          Per-call deadline (default: the broker's for the role, e.g. 5ms, 1s)
    --memory SIZE         Memory cap of the instance (default 64MB)
    --json                One JSON object per input instead of text
    --input FILE          Inputs as a JSON object or NDJSON, one per line ('-': stdin),
                          keyed by the flag names below, '-' as '_' (client_ip,
                          nkey_verified: true, headers: {\"K\": \"V\"})

A message (mapper, transformer):
    --subject S  --reply R  --header K:V (repeatable)  --payload TEXT | --payload-file F
    --account A  (default $G)
A CONNECT request (authorizer):
    --user U  --pass P  --token T  --jwt J  --nkey N  --nkey-verified (the broker checked
    the nonce signature)  --name N  --lang L
    --client-version V  --client-ip IP  --client-port N
    --tls-subject DN  --tls-san SAN (repeatable)  --tls-fingerprint HEX
";

const BENCH_USAGE: &str = "\
Usage: natrium plugin bench FILE --world W [input] [options]

Calls FILE with one input (the first, with --input) on one thread through the broker's pool
until --calls calls or --duration have passed, then prints calls/s and latency
p50/p90/p99/max.

Options:
    --world W  --config JSON  --deadline D  --memory SIZE  --json   as for run
    --calls N             At most N calls (default 100000)
    --duration D          At most this long (default 5s)
    input flags           as for run (natrium plugin run --help)
";

/// `natrium plugin ARGS…`: runs the tool and says how it went.
pub fn plugin_command(args: Vec<String>) -> ExitCode {
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return ExitCode::from(2);
    };
    let (result, usage) = match command.as_str() {
        "check" => (check(rest), CHECK_USAGE),
        "run" => (run(rest, false), RUN_USAGE),
        "bench" => (run(rest, true), BENCH_USAGE),
        "new" => (new::new(rest), new::USAGE),
        "sign" => (sign::sign(rest), sign::USAGE),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => (
            Err(ToolError::Usage(format!("unknown command {other:?}"))),
            USAGE,
        ),
    };
    match result {
        Ok(Done::Help) => {
            println!("{usage}");
            ExitCode::SUCCESS
        }
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::Failed) => ExitCode::from(1),
        Err(e @ ToolError::Usage(_)) => {
            eprintln!("natrium plugin: {e}");
            eprintln!("{usage}");
            ExitCode::from(2)
        }
        Err(e @ ToolError::Input(_)) => {
            eprintln!("natrium plugin: {e}");
            ExitCode::from(2)
        }
        Err(e @ (ToolError::Plugin(_) | ToolError::Write(_))) => {
            eprintln!("natrium plugin: {e}");
            ExitCode::from(1)
        }
    }
}

enum Done {
    Help,
    Ok,
    /// Not loadable, or a call failed (reported already).
    Failed,
}

/// The one FILE argument.
fn file(a: &Args) -> Result<PathBuf, ToolError> {
    match a.positional.as_slice() {
        [f] => Ok(PathBuf::from(f)),
        [] => Err(ToolError::Usage("which component? give FILE".into())),
        more => Err(ToolError::Usage(format!(
            "one FILE, not {} arguments: {}",
            more.len(),
            more.join(" ")
        ))),
    }
}

fn world(a: &Args) -> Result<Option<World>, ToolError> {
    a.value("world")
        .map(|w| {
            World::parse(w).ok_or_else(|| {
                ToolError::Usage(format!(
                    "unknown world {w:?} (authorizer, mapper, transformer, batch-transformer)"
                ))
            })
        })
        .transpose()
}

fn check(args: &[String]) -> Result<Done, ToolError> {
    let a = args::parse(args, &[valued("world"), switch("json")])?;
    if a.has("help") {
        return Ok(Done::Help);
    }
    let path = file(&a)?;
    let world = world(&a)?;
    let d = run::engine()?.diagnose(&path)?;
    let name = path.display().to_string();
    if a.has("json") {
        println!("{}", check::json(&name, &d, world));
    } else {
        print!("{}", check::text(&name, &d, world));
    }
    Ok(if check::loadable(&d, world) {
        Done::Ok
    } else {
        Done::Failed
    })
}

/// The flags of `run` and `bench`.
fn run_flags(bench: bool) -> Vec<Flag> {
    let mut flags = vec![
        valued("world"),
        valued("config"),
        valued("deadline"),
        valued("memory"),
        valued("input"),
        switch("json"),
    ];
    if bench {
        flags.extend([valued("calls"), valued("duration")]);
    }
    flags.extend_from_slice(input::FLAGS);
    flags
}

fn run(args: &[String], bench: bool) -> Result<Done, ToolError> {
    let a = args::parse(args, &run_flags(bench))?;
    if a.has("help") {
        return Ok(Done::Help);
    }
    let path = file(&a)?;
    let world = world(&a)?.ok_or_else(|| ToolError::Usage("--world is required".into()))?;
    let inputs = match a.value("input") {
        Some(f) => {
            let names: Vec<&str> = input::FLAGS.iter().map(|f| f.name).collect();
            if a.any(&names) {
                return Err(ToolError::Usage(
                    "--input or input flags (--subject, --user, …), not both".into(),
                ));
            }
            let text = if f == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(f)
            }
            .map_err(|e| ToolError::Input(format!("--input {f}: {e}")))?;
            Input::parse_many(&text)?
        }
        None => vec![Input::from_flags(&a)?],
    };
    let spec = run::spec(&path, world, &a)?;
    // Guest log lines are collected for `run`'s reports; a benchmark has no subscriber, so
    // they cost nothing and do not pile up.
    let captured = (!bench).then(capture::Captured::install);
    let engine = run::engine()?;
    let loaded = run::Loaded::load(&engine, &spec, world)?;
    if let Some(captured) = captured {
        return Ok(if run::run(&loaded, &inputs, &captured, a.has("json"))? {
            Done::Ok
        } else {
            Done::Failed
        });
    }
    let first = inputs
        .first()
        .ok_or_else(|| ToolError::Input("no input".into()))?;
    let prepared = loaded.prepare(first)?;
    let calls = a.number("calls")?.unwrap_or(bench::DEFAULT_CALLS);
    let duration = a.duration("duration")?.unwrap_or(bench::DEFAULT_DURATION);
    let summary = bench::bench(&loaded, &prepared, calls, duration)?;
    if a.has("json") {
        println!("{}", bench::json(&summary, loaded.cached()));
    } else {
        print!("{}", bench::text(&summary, loaded.cached()));
    }
    Ok(if summary.failures == 0 {
        Done::Ok
    } else {
        Done::Failed
    })
}
