//! `natrium plugin run FILE --world W [input]`: loads the component as the broker does (same
//! engine, sandbox, deadline and memory cap: `PluginEngine::load_*` and the pool's call) and
//! prints what it decided for each input, what it logged, how long the call took and the
//! instance's peak memory.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::args::Args;
use super::capture::{Captured, LogLine};
use super::input::Input;
use super::ToolError;
use crate::plugin::diagnose::World;
use crate::plugin::{
    Authorizer, Decision, EngineConfig, Mapper, Message, Outcome, Permission, PluginEngine,
    PluginError, PluginSpec, Transformer,
};

/// A plugin loaded for one world.
pub(crate) enum Loaded {
    Authorizer(Authorizer),
    Mapper(Mapper),
    Transformer(Transformer),
}

/// What the plugin answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Decision(Decision),
    /// A mapper's new subject, or `None` to keep it.
    Mapped(Option<String>),
    Outcome(Outcome),
}

/// One call, reported.
pub(crate) struct Report {
    pub answer: Result<Answer, PluginError>,
    pub logs: Vec<LogLine>,
    pub took: Duration,
    /// The most linear memory the plugin's instance has held so far, in bytes.
    pub memory_peak: u64,
}

/// The binding `run` and `bench` load: the broker's defaults for the world's role, with
/// `--config`, `--deadline` and `--memory` over them, and one instance (calls are sequential).
pub(crate) fn spec(file: &Path, world: World, a: &Args) -> Result<PluginSpec, ToolError> {
    let name = file
        .file_stem()
        .map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
    let mut spec = PluginSpec::new(name, file, world.role());
    if let Some(config) = a.value("config") {
        let json: Value = serde_json::from_str(config)
            .map_err(|e| ToolError::Usage(format!("--config is not JSON: {e}")))?;
        spec.config_json = json.to_string();
    }
    if let Some(d) = a.duration("deadline")? {
        if d.is_zero() {
            return Err(ToolError::Usage(
                "--deadline must be greater than zero".into(),
            ));
        }
        spec.deadline = d;
    }
    if let Some(m) = a.size("memory")? {
        spec.memory_limit = m;
    }
    spec.max_instances = 1;
    Ok(spec)
}

/// The engine the tools use: the broker's, with the user's plugin cache.
pub(crate) fn engine() -> Result<PluginEngine, ToolError> {
    PluginEngine::new(EngineConfig {
        cache_dir: Some(EngineConfig::default_cache_dir(None)),
    })
    .map_err(ToolError::Plugin)
}

impl Loaded {
    pub fn load(engine: &PluginEngine, spec: &PluginSpec, world: World) -> Result<Self, ToolError> {
        Ok(match world {
            World::Authorizer => Loaded::Authorizer(engine.load_authorizer(spec)?),
            World::Mapper => Loaded::Mapper(engine.load_mapper(spec)?),
            World::Transformer | World::BatchTransformer => {
                let t = engine.load_transformer(spec)?;
                if world == World::BatchTransformer && !t.is_batch() {
                    return Err(ToolError::Plugin(PluginError::Load(format!(
                        "{} is a transformer, not a batch-transformer (try --world transformer)",
                        spec.path.display()
                    ))));
                }
                Loaded::Transformer(t)
            }
        })
    }

    /// Checks that `input` has what this world needs (before any call is timed).
    pub fn prepare(&self, input: &Input) -> Result<Prepared, ToolError> {
        Ok(match self {
            Loaded::Authorizer(_) => Prepared::Connect(Box::new(input.connect())),
            Loaded::Mapper(_) | Loaded::Transformer(_) => {
                Prepared::Message(input.account().to_string(), input.message()?)
            }
        })
    }

    /// One call through the pool, exactly as the broker makes it.
    pub fn call(&self, p: &Prepared) -> Result<Answer, PluginError> {
        match (self, p) {
            (Loaded::Authorizer(a), Prepared::Connect(req)) => {
                a.authorize_blocking(req).map(Answer::Decision)
            }
            (Loaded::Mapper(m), Prepared::Message(account, msg)) => {
                m.map(account, &msg.subject).map(Answer::Mapped)
            }
            (Loaded::Transformer(t), Prepared::Message(account, msg)) => {
                t.transform(account, msg).map(Answer::Outcome)
            }
            _ => Err(PluginError::Malformed("input of the wrong kind".into())),
        }
    }

    pub fn memory_peak(&self) -> u64 {
        match self {
            Loaded::Authorizer(a) => a.stats().memory_peak,
            Loaded::Mapper(m) => m.stats().memory_peak,
            Loaded::Transformer(t) => t.stats().memory_peak,
        }
    }

    /// Whether answers may come from the mapper cache (the broker caches a deterministic
    /// mapper's results too).
    pub fn cached(&self) -> bool {
        matches!(self, Loaded::Mapper(m) if m.is_deterministic())
    }
}

/// An input in the form the world takes.
pub(crate) enum Prepared {
    Connect(Box<crate::plugin::ConnectRequest>),
    Message(String, Message),
}

/// Runs every input and prints a report for each; `Ok(false)` when a call failed.
pub(crate) fn run(
    loaded: &Loaded,
    inputs: &[Input],
    captured: &Captured,
    json_out: bool,
) -> Result<bool, ToolError> {
    let prepared = inputs
        .iter()
        .map(|i| loaded.prepare(i))
        .collect::<Result<Vec<_>, _>>()?;
    // The load's own log lines (a plugin that logs in `init`) are not any call's.
    let at_load = captured.take();
    if !at_load.is_empty() && !json_out {
        println!("logged at load:");
        print_logs(&at_load);
    }
    let mut all_ok = true;
    for (i, p) in prepared.iter().enumerate() {
        let started = Instant::now();
        let answer = loaded.call(p);
        let took = started.elapsed();
        let report = Report {
            answer,
            logs: captured.take(),
            took,
            memory_peak: loaded.memory_peak(),
        };
        all_ok &= report.answer.is_ok();
        if json_out {
            println!("{}", report_json(&report));
        } else {
            if prepared.len() > 1 {
                println!("{}input {}:", if i > 0 { "\n" } else { "" }, i + 1);
            }
            print!("{}", report_text(&report));
        }
    }
    Ok(all_ok)
}

fn list(p: &[String]) -> String {
    if p.is_empty() {
        "-".into()
    } else {
        p.join(" ")
    }
}

fn permission(p: &Permission) -> String {
    format!("allow {}; deny {}", list(&p.allow), list(&p.deny))
}

/// Payload bytes as text when they are UTF-8, else as an escaped byte string.
fn payload_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.escape_ascii().to_string(),
    }
}

fn message_text(m: &Message, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(out, "  subject: {}", m.subject);
    if let Some(r) = &m.reply {
        let _ = writeln!(out, "  reply: {r}");
    }
    for (k, v) in &m.headers {
        let _ = writeln!(out, "  header: {k}: {v}");
    }
    let _ = writeln!(out, "  payload: {}", payload_text(&m.payload));
}

/// The readable form of one call's report.
pub(crate) fn report_text(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match &r.answer {
        Ok(Answer::Decision(Decision::Allow(a))) => {
            let _ = writeln!(out, "decision: allow");
            let _ = writeln!(out, "  account: {}", a.account);
            let _ = writeln!(out, "  user: {}", a.user);
            let _ = writeln!(out, "  publish: {}", permission(&a.publish));
            let _ = writeln!(out, "  subscribe: {}", permission(&a.subscribe));
            if let Some(resp) = &a.allow_responses {
                let _ = writeln!(
                    out,
                    "  allow_responses: max {} within {} ms",
                    resp.max_msgs, resp.expires_ms
                );
            }
            if let Some(n) = a.limits.max_subscriptions {
                let _ = writeln!(out, "  max_subscriptions: {n}");
            }
            if let Some(n) = a.limits.max_payload {
                let _ = writeln!(out, "  max_payload: {n}");
            }
            if let Some(t) = a.expires_at {
                let _ = writeln!(out, "  expires_at: {t} (ns since the epoch)");
            }
        }
        Ok(Answer::Decision(Decision::Deny(reason))) => {
            let _ = writeln!(out, "decision: deny: {reason}");
        }
        Ok(Answer::Mapped(Some(s))) => {
            let _ = writeln!(out, "decision: map to {s}");
        }
        Ok(Answer::Mapped(None)) => {
            let _ = writeln!(out, "decision: keep the subject");
        }
        Ok(Answer::Outcome(Outcome::Pass)) => {
            let _ = writeln!(out, "decision: pass (deliver unchanged)");
        }
        Ok(Answer::Outcome(Outcome::Replace(m))) => {
            let _ = writeln!(out, "decision: replace with");
            message_text(m, &mut out);
        }
        Ok(Answer::Outcome(Outcome::Drop(reason))) => {
            let _ = writeln!(
                out,
                "decision: drop: {reason}\n  (with on_failure: reject, the default, the \
                 publisher is told; with drop, not)"
            );
        }
        Err(e) => {
            let _ = writeln!(out, "failed ({}): {e}", e.kind());
        }
    }
    if !r.logs.is_empty() {
        let _ = writeln!(out, "logs:");
        for l in &r.logs {
            let _ = writeln!(out, "  {}", log_text(l));
        }
    }
    let _ = writeln!(
        out,
        "time: {}  memory: {} (peak linear memory of the instance)",
        duration_text(r.took),
        bytes_text(r.memory_peak)
    );
    out
}

fn log_text(l: &LogLine) -> String {
    if l.fields.is_empty() {
        format!("{:<5} {}", l.level, l.message)
    } else {
        format!("{:<5} {} {}", l.level, l.message, l.fields)
    }
}

fn print_logs(logs: &[LogLine]) {
    for l in logs {
        println!("  {}", log_text(l));
    }
}

/// `153µs`, `2.41ms`, `1.200s`.
pub(crate) fn duration_text(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.3}s", us / 1e6)
    }
}

/// `1.06 MiB`, `640 KiB`.
pub(crate) fn bytes_text(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", b.div_ceil(1024))
    }
}

fn permission_json(p: &Permission) -> Value {
    json!({ "allow": p.allow, "deny": p.deny })
}

fn message_json(m: &Message) -> Value {
    let payload = match std::str::from_utf8(&m.payload) {
        Ok(s) => json!(s),
        Err(_) => json!(m.payload.to_vec()),
    };
    json!({
        "subject": m.subject,
        "reply": m.reply,
        "headers": m.headers,
        "payload": payload,
    })
}

/// The JSON form of one call's report (one line of `--json` output).
pub(crate) fn report_json(r: &Report) -> Value {
    let mut v = match &r.answer {
        Ok(Answer::Decision(Decision::Allow(a))) => json!({
            "decision": "allow",
            "account": a.account,
            "user": a.user,
            "publish": permission_json(&a.publish),
            "subscribe": permission_json(&a.subscribe),
            "allow_responses": a.allow_responses.map(|r| json!({
                "max_msgs": r.max_msgs, "expires_ms": r.expires_ms
            })),
            "max_subscriptions": a.limits.max_subscriptions,
            "max_payload": a.limits.max_payload,
            "expires_at": a.expires_at,
        }),
        Ok(Answer::Decision(Decision::Deny(reason))) => {
            json!({ "decision": "deny", "reason": reason })
        }
        Ok(Answer::Mapped(subject)) => json!({ "decision": "map", "subject": subject }),
        Ok(Answer::Outcome(Outcome::Pass)) => json!({ "decision": "pass" }),
        Ok(Answer::Outcome(Outcome::Replace(m))) => {
            json!({ "decision": "replace", "message": message_json(m) })
        }
        Ok(Answer::Outcome(Outcome::Drop(reason))) => {
            json!({ "decision": "drop", "reason": reason })
        }
        Err(e) => json!({ "decision": "error", "error": e.kind(), "reason": e.to_string() }),
    };
    v["logs"] = json!(r.logs);
    v["time_us"] = json!(r.took.as_secs_f64() * 1e6);
    v["memory_peak_bytes"] = json!(r.memory_peak);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Allowed;

    fn report(answer: Result<Answer, PluginError>) -> Report {
        Report {
            answer,
            logs: vec![LogLine {
                level: "info".into(),
                message: "checked".into(),
                fields: "user=alice".into(),
            }],
            took: Duration::from_micros(153),
            memory_peak: 1 << 20,
        }
    }

    #[test]
    fn an_allow_reads_as_its_terms() {
        let allow = Decision::Allow(Allowed {
            account: "A".into(),
            user: "alice".into(),
            publish: Permission {
                allow: vec!["orders.>".into()],
                deny: vec![],
            },
            ..Allowed::default()
        });
        assert_eq!(
            report_text(&report(Ok(Answer::Decision(allow)))),
            "decision: allow\n  account: A\n  user: alice\n  publish: allow orders.>; deny -\n  \
             subscribe: allow -; deny -\nlogs:\n  info  checked user=alice\n\
             time: 153.0µs  memory: 1.00 MiB (peak linear memory of the instance)\n"
        );
    }

    #[test]
    fn failures_and_drops_say_why() {
        let t = report_text(&report(Err(PluginError::Timeout)));
        assert!(
            t.starts_with("failed (timeout): plugin call exceeded its deadline\n"),
            "{t}"
        );
        let j = report_json(&report(Ok(Answer::Outcome(Outcome::Drop(
            "too big".into(),
        )))));
        assert_eq!(j["decision"], "drop");
        assert_eq!(j["reason"], "too big");
        assert_eq!(j["logs"][0]["fields"], "user=alice");
        assert_eq!(j["memory_peak_bytes"], 1 << 20);
    }

    #[test]
    fn sizes_and_times_are_short() {
        assert_eq!(duration_text(Duration::from_nanos(12_345)), "12.3µs");
        assert_eq!(duration_text(Duration::from_micros(2_410)), "2.41ms");
        assert_eq!(bytes_text(640 * 1024), "640 KiB");
        assert_eq!(bytes_text(3 << 20), "3.00 MiB");
    }
}
