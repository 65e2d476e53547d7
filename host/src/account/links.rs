//! Exports and imports: the only ways a message crosses from one account to another.
//!
//! - A *stream* import makes messages published in the exporter on the imported subjects also
//!   reach the importer's subscribers (under a prefix, or a literal `to` subject). The link is
//!   kept on the exporter, which is where the publish happens.
//! - A *service* import lets the importer's requests on the local subject reach the exporter's
//!   responders; the reply subject is replaced by a one-off `_R_.…` subject in the exporter,
//!   which routes the response(s) back to the requester's real reply subject and then expires.
//!   The link is kept on the importer.

use super::Account;
use crate::options::{LinkKind, Options, ResponseType};
use crate::subject;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a service response route stays open (nats-server's default response threshold).
const RESPONSE_TTL: Duration = Duration::from_secs(120);
/// Routes kept before expired ones are swept.
const RESPONSE_SWEEP_AT: usize = 8192;
/// The prefix of generated reply subjects.
pub const RESPONSE_PREFIX: &[u8] = b"_R_.";

/// An exporter's stream link to one importer.
pub struct StreamLink {
    pub filter: Box<[u8]>,
    pub into: Arc<Account>,
    pub prefix: Option<String>,
    pub to: Option<String>,
}

impl StreamLink {
    pub fn matches(&self, subject: &[u8]) -> bool {
        subject::matches(&self.filter, subject)
    }

    /// The subject the importer sees.
    pub fn local_subject(&self, subject: &[u8]) -> Vec<u8> {
        match (&self.to, &self.prefix) {
            (Some(to), _) => to.as_bytes().to_vec(),
            (None, Some(p)) => [p.as_bytes(), b".", subject].concat(),
            (None, None) => subject.to_vec(),
        }
    }
}

/// An importer's service link to one exporter.
pub struct ServiceLink {
    /// What the importer publishes to.
    pub local: Box<[u8]>,
    /// The exported subject.
    pub remote: Box<[u8]>,
    pub exporter: Arc<Account>,
    pub response_type: ResponseType,
}

impl ServiceLink {
    pub fn matches(&self, subject: &[u8]) -> bool {
        subject::matches(&self.local, subject)
    }

    /// The subject the exporter sees. An import renamed with `to` maps token by token: a
    /// literal export is the subject itself; a wildcard one (`$JS.API.>` imported as `IPA.>`)
    /// takes the tokens the local pattern's wildcards matched, in order.
    pub fn remote_subject<'a>(&'a self, subject: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        use std::borrow::Cow;
        if self.local == self.remote {
            return Cow::Borrowed(subject);
        }
        if subject::is_valid_literal_subject(&self.remote) {
            return Cow::Borrowed(&self.remote);
        }
        let mut matched: Vec<&[u8]> = Vec::new();
        let mut tokens = subject.split(|&b| b == b'.');
        for pattern in self.local.split(|&b| b == b'.') {
            match pattern {
                b"*" => matched.extend(tokens.next()),
                b">" => {
                    let rest: Vec<&[u8]> = tokens.by_ref().collect();
                    matched.push(subject_tail(subject, &rest));
                }
                _ => {
                    tokens.next();
                }
            }
        }
        let mut out = Vec::with_capacity(self.remote.len() + subject.len());
        let mut fill = matched.into_iter();
        for (i, pattern) in self.remote.split(|&b| b == b'.').enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            match pattern {
                b"*" | b">" => out.extend_from_slice(fill.next().unwrap_or(pattern)),
                literal => out.extend_from_slice(literal),
            }
        }
        Cow::Owned(out)
    }
}

/// The part of `subject` that `rest` (its last tokens) covers, dots included.
fn subject_tail<'a>(subject: &'a [u8], rest: &[&[u8]]) -> &'a [u8] {
    let len = rest.iter().map(|t| t.len()).sum::<usize>() + rest.len().saturating_sub(1);
    &subject[subject.len() - len.min(subject.len())..]
}

#[derive(Default)]
pub struct Links {
    pub streams_out: Vec<StreamLink>,
    pub services: Vec<ServiceLink>,
}

struct ResponseRoute {
    importer: Arc<Account>,
    reply: Box<[u8]>,
    singleton: bool,
    expires: Instant,
}

/// Pending service responses of one (exporting) account.
#[derive(Default)]
pub struct Responses {
    routes: Mutex<FxHashMap<Box<[u8]>, ResponseRoute>>,
}

impl Responses {
    /// A fresh reply subject in the exporter that leads back to `reply` in `importer`.
    pub fn register(
        &self,
        token: &str,
        importer: Arc<Account>,
        reply: &[u8],
        kind: ResponseType,
    ) -> Vec<u8> {
        // Random, not a counter: a user of the exporting account must not be able to predict
        // (and answer in place of the service) a route that leads into another account.
        let subject = format!("_R_.{token}.{}", crate::util::random_base32(12, false)).into_bytes();
        let now = Instant::now();
        let mut routes = self.routes.lock();
        if routes.len() >= RESPONSE_SWEEP_AT {
            routes.retain(|_, r| r.expires > now);
        }
        routes.insert(
            subject.clone().into_boxed_slice(),
            ResponseRoute {
                importer,
                reply: reply.into(),
                singleton: kind == ResponseType::Singleton,
                expires: now + RESPONSE_TTL,
            },
        );
        subject
    }

    /// Where a response published on `subject` goes, if it answers a routed request.
    pub fn resolve(&self, subject: &[u8]) -> Option<(Arc<Account>, Box<[u8]>)> {
        let mut routes = self.routes.lock();
        let route = routes.get(subject)?;
        if route.expires <= Instant::now() {
            routes.remove(subject);
            return None;
        }
        let found = (route.importer.clone(), route.reply.clone());
        if route.singleton {
            routes.remove(subject);
        }
        Some(found)
    }
}

pub use crate::config::links::{check, export_for};

/// Wires the configured imports to their exports (after `check`); returns warnings for what
/// could not be wired.
pub fn wire(accounts: &super::Accounts, opts: &Options) -> Vec<String> {
    let mut warnings = Vec::new();
    for a in accounts.all() {
        *a.links.write() = Links::default();
    }
    for imp in &opts.accounts.imports {
        let Some(exporter) = accounts.get(&imp.from) else {
            warnings.push(format!(
                "account {} imports from unknown account {}",
                imp.account, imp.from
            ));
            continue;
        };
        let importer = accounts.get_or_create(&imp.account);
        let export = export_for(opts, imp);
        let Some(export) = export else {
            warnings.push(format!(
                "account {} may not import {:?} from {}: no matching export for it",
                imp.account, imp.subject, imp.from
            ));
            continue;
        };
        match imp.kind {
            LinkKind::Stream => {
                if imp.to.is_some() && !subject::is_valid_literal_subject(imp.subject.as_bytes()) {
                    warnings.push(format!(
                        "stream import of {:?} into {}: `to` needs a literal subject; ignored",
                        imp.subject, imp.account
                    ));
                    continue;
                }
                exporter.links.write().streams_out.push(StreamLink {
                    filter: imp.subject.as_bytes().into(),
                    into: importer.clone(),
                    prefix: imp.prefix.clone(),
                    to: imp.to.clone(),
                });
                exporter.mark_linked();
            }
            LinkKind::Service => {
                let local = imp.to.clone().unwrap_or_else(|| imp.subject.clone());
                importer.links.write().services.push(ServiceLink {
                    local: local.as_bytes().into(),
                    remote: imp.subject.as_bytes().into(),
                    exporter: exporter.clone(),
                    response_type: export.response_type,
                });
                importer.mark_linked();
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_wildcard_imports_map_token_by_token() {
        let link = |local: &str, remote: &str| ServiceLink {
            local: local.as_bytes().into(),
            remote: remote.as_bytes().into(),
            exporter: Account::new("JS"),
            response_type: ResponseType::Singleton,
        };
        let js = link("IPA.>", "$JS.API.>");
        assert_eq!(
            &*js.remote_subject(b"IPA.STREAM.INFO.X"),
            b"$JS.API.STREAM.INFO.X"
        );
        let star = link("svc.*.in", "api.*.call");
        assert_eq!(&*star.remote_subject(b"svc.a.in"), b"api.a.call");
        let literal = link("time", "svc.time");
        assert_eq!(&*literal.remote_subject(b"time"), b"svc.time");
        let same = link("a.>", "a.>");
        assert_eq!(&*same.remote_subject(b"a.b.c"), b"a.b.c");
    }

    #[test]
    fn stream_links_map_subjects() {
        let into = Account::new("B");
        let l = StreamLink {
            filter: (*b"a.>").into(),
            into: into.clone(),
            prefix: Some("from_a".into()),
            to: None,
        };
        assert!(l.matches(b"a.x"));
        assert!(!l.matches(b"b.x"));
        assert_eq!(l.local_subject(b"a.x"), b"from_a.a.x");
    }

    #[test]
    fn singleton_responses_route_once_and_streams_until_expiry() {
        let r = Responses::default();
        let b = Account::new("B");
        let s = r.register("t", b.clone(), b"_INBOX.1", ResponseType::Singleton);
        assert!(s.starts_with(RESPONSE_PREFIX));
        assert_eq!(
            r.resolve(&s).map(|(_, rep)| rep),
            Some((*b"_INBOX.1").into())
        );
        assert!(r.resolve(&s).is_none());
        let s = r.register("t", b, b"_INBOX.2", ResponseType::Stream);
        assert!(r.resolve(&s).is_some());
        assert!(r.resolve(&s).is_some());
    }
}
