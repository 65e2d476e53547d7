//! natrium-bench: a raw-protocol NATS load generator in the spirit of
//! `nats bench`, used by `bench/compare.sh` to compare natrium against
//! nats-server. It talks to 127.0.0.1 only, bounds every scenario in message
//! count and wall time (`--timeout`), verifies that every expected message
//! arrived, and prints a human line plus one JSON line.
//!
//! Exit status: 0 on success, 1 if the run failed (missing/duplicate/corrupt
//! messages, slow-consumer disconnect, timeout, connection error), 2 on
//! usage errors.

mod cli;
mod conn;
mod genauth;
mod publisher;
mod report;
mod scenarios;
mod subscriber;
mod sys;

use std::io::Write;
use std::process::ExitCode;

use cli::Scenario;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("gen-operator") {
        return match genauth::run(&argv[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("natrium-bench gen-operator: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let args = match cli::parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("natrium-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = conn::resolve_loopback(&args.url).and_then(|addr| match args.scenario {
        Scenario::Pub => scenarios::publish::run(&args, addr),
        Scenario::PubSub => scenarios::pubsub::run(&args, addr),
        Scenario::Queue => scenarios::queue::run(&args, addr),
        Scenario::ReqRep => scenarios::reqrep::run(&args, addr),
        Scenario::Idle => scenarios::idle::run(&args, addr),
        Scenario::Connect => scenarios::connect::run(&args, addr),
        Scenario::Wait => scenarios::wait::run(&args, addr),
        Scenario::JsPub => scenarios::jspub::run(&args, addr),
        Scenario::JsPull => scenarios::jspull::run(&args, addr),
        Scenario::JsPush => scenarios::jspush::run(&args, addr),
        Scenario::JsOrdered => scenarios::jsordered::run(&args, addr),
        Scenario::Kv => scenarios::kv::run(&args, addr),
    });
    match result {
        Ok(report) => {
            report.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("natrium-bench {}: FAILED: {e:#}", args.scenario.name());
            let mut r = report::Report::new(args.scenario.name(), String::new());
            r.field("error", format!("{e:#}"));
            // Only the JSON line: the human-readable error went to stderr.
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::Value::Object(r.json)
            );
            ExitCode::FAILURE
        }
    }
}
