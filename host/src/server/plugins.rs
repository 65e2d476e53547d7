//! The server's loaded plugins and how a published message passes through them:
//! mappers first, then transformers, each filtered by its binding's accounts and subjects.

use crate::options::Options;
use crate::plugin::{
    Authorizer, EngineConfig, FailurePolicy, Mapper, Message, Outcome, PluginEngine, PluginError,
    PluginStats, Role, Transformer,
};
use anyhow::Context;
use bytes::{Bytes, BytesMut};

/// One generation of loaded plugins; swapped whole on reload.
#[derive(Default)]
pub(crate) struct PluginSet {
    pub authorizers: Vec<Authorizer>,
    pub mappers: Vec<Mapper>,
    pub transformers: Vec<Transformer>,
}

impl PluginSet {
    /// Compiles and links every configured plugin; any failure stops start-up (or a reload).
    pub fn load(opts: &Options, engine: &mut Option<PluginEngine>) -> anyhow::Result<PluginSet> {
        let mut set = PluginSet::default();
        if opts.plugins.is_empty() {
            return Ok(set);
        }
        if engine.is_none() {
            let cache_dir = opts
                .plugin_cache_dir
                .clone()
                .unwrap_or_else(|| EngineConfig::default_cache_dir(opts.store_dir.as_deref()));
            *engine = Some(
                PluginEngine::new(EngineConfig {
                    cache_dir: Some(cache_dir),
                })
                .context("starting the plugin engine")?,
            );
        }
        let Some(engine) = engine.as_ref() else {
            return Ok(set);
        };
        for spec in &opts.plugins {
            let what = || format!("loading plugin '{}' ({})", spec.name, spec.path.display());
            match spec.role {
                Role::Authorizer => set
                    .authorizers
                    .push(engine.load_authorizer(spec).with_context(what)?),
                Role::Mapper => set
                    .mappers
                    .push(engine.load_mapper(spec).with_context(what)?),
                Role::Transformer => set
                    .transformers
                    .push(engine.load_transformer(spec).with_context(what)?),
            }
            tracing::info!(
                "Loaded plugin '{}' ({}) from {}",
                spec.name,
                spec.role,
                spec.path.display()
            );
        }
        Ok(set)
    }

    pub fn on_publish_path(&self) -> bool {
        !self.mappers.is_empty() || !self.transformers.is_empty()
    }

    /// Whether any mapper or transformer binding covers a message published on `subject` in
    /// `account`. When none does, no mapper renames it, so no transformer can apply either.
    pub fn any_applies(&self, account: &str, subject: &[u8]) -> bool {
        let subject = String::from_utf8_lossy(subject);
        self.mappers
            .iter()
            .map(Mapper::spec)
            .chain(self.transformers.iter().map(Transformer::spec))
            .any(|spec| spec.applies_to(account, &subject))
    }

    pub fn stats(&self) -> Vec<PluginStats> {
        let mut v: Vec<PluginStats> = self.authorizers.iter().map(Authorizer::stats).collect();
        v.extend(self.mappers.iter().map(Mapper::stats));
        v.extend(self.transformers.iter().map(Transformer::stats));
        v
    }
}

/// What the plugins decided for one published message.
pub(crate) enum Verdict {
    /// Deliver the original bytes.
    Unchanged,
    /// Deliver this instead (new subject, reply, header block, payload).
    Rewritten(Rewritten),
    /// Do not deliver; nothing is said to the publisher.
    Drop,
    /// Do not deliver; the publisher is told why.
    Reject(String),
}

pub(crate) struct Rewritten {
    pub subject: String,
    pub reply: Option<String>,
    /// A whole `NATS/1.0` header block, or `None` for a message without headers.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// Header block → fields (the status line is not a field).
fn parse_headers(block: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(block);
    text.split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim_start().to_string()))
        })
        .collect()
}

fn encode_headers(fields: &[(String, String)]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + fields.len() * 32);
    b.extend_from_slice(b"NATS/1.0\r\n");
    for (k, v) in fields {
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(b": ");
        b.extend_from_slice(v.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"\r\n");
    b.freeze()
}

fn failure(policy: FailurePolicy, name: &str, e: &PluginError) -> Option<Verdict> {
    tracing::warn!(target: "natrium::plugin", "plugin '{name}' failed ({}): {e}", e.kind());
    match policy {
        FailurePolicy::Pass => None,
        FailurePolicy::Drop => Some(Verdict::Drop),
        FailurePolicy::Reject => Some(Verdict::Reject(format!("plugin {name} failed"))),
    }
}

/// Runs the mappers and transformers that apply to (account, subject).
pub(crate) fn on_publish(
    set: &PluginSet,
    account: &str,
    subject: &[u8],
    reply: Option<&[u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) -> Verdict {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut msg: Option<Message> = None;
    let mut changed = false;
    let mut had_headers = headers.is_some();
    let materialize = |m: &mut Option<Message>| -> Message {
        m.take().unwrap_or_else(|| Message {
            subject: lossy(subject),
            reply: reply.map(lossy),
            headers: headers.map(parse_headers).unwrap_or_default(),
            payload: Bytes::copy_from_slice(payload),
        })
    };
    for m in &set.mappers {
        let current = msg
            .as_ref()
            .map_or_else(|| lossy(subject), |x| x.subject.clone());
        if !m.spec().applies_to(account, &current) {
            continue;
        }
        match m.map(account, &current) {
            Ok(Some(new)) if new != current => {
                let mut x = materialize(&mut msg);
                x.subject = new;
                msg = Some(x);
                changed = true;
            }
            Ok(_) => {}
            Err(e) => {
                if let Some(v) = failure(m.spec().on_failure, m.name(), &e) {
                    return v;
                }
            }
        }
    }
    for t in &set.transformers {
        let applies = match &msg {
            Some(x) => t.spec().applies_to(account, &x.subject),
            None => t
                .spec()
                .applies_to(account, &String::from_utf8_lossy(subject)),
        };
        if !applies {
            continue;
        }
        let x = materialize(&mut msg);
        match t.transform(account, &x) {
            Ok(Outcome::Pass) => msg = Some(x),
            Ok(Outcome::Replace(new)) => {
                had_headers |= !new.headers.is_empty();
                msg = Some(new);
                changed = true;
            }
            Ok(Outcome::Drop(reason)) => {
                tracing::debug!(target: "natrium::plugin", "plugin '{}' dropped a message: {reason}", t.name());
                return match t.spec().on_failure {
                    FailurePolicy::Reject => Verdict::Reject(reason),
                    _ => Verdict::Drop,
                };
            }
            Err(e) => {
                msg = Some(x);
                if let Some(v) = failure(t.spec().on_failure, t.name(), &e) {
                    return v;
                }
            }
        }
    }
    match msg {
        Some(m) if changed => Verdict::Rewritten(Rewritten {
            headers: (had_headers || !m.headers.is_empty()).then(|| encode_headers(&m.headers)),
            subject: m.subject,
            reply: m.reply,
            payload: m.payload,
        }),
        _ => Verdict::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_blocks_round_trip() {
        let block = b"NATS/1.0\r\nA: 1\r\nB: two words\r\nA: 3\r\n\r\n";
        let fields = parse_headers(block);
        assert_eq!(
            fields,
            [
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "two words".to_string()),
                ("A".to_string(), "3".to_string())
            ]
        );
        assert_eq!(&encode_headers(&fields)[..], &block[..]);
    }

    #[test]
    fn no_plugins_means_unchanged() {
        let set = PluginSet::default();
        assert!(!set.on_publish_path());
        assert!(matches!(
            on_publish(&set, "$G", b"a", None, None, b"x"),
            Verdict::Unchanged
        ));
    }
}
