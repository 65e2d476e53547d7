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
use crate::options::{ExportSpec, ImportSpec, LinkKind, Options, ResponseType};
use crate::subject;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

    /// The subject the exporter sees: the exported one when the import renamed a literal
    /// subject, else the same subject.
    pub fn remote_subject<'a>(&'a self, subject: &'a [u8]) -> &'a [u8] {
        if self.local != self.remote && subject::is_valid_literal_subject(&self.remote) {
            &self.remote
        } else {
            subject
        }
    }
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
    next: AtomicU64,
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
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let subject = format!("_R_.{token}.{n}").into_bytes();
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

/// The export that allows `imp`: same account and kind, a subject covering the import's, and
/// either public or naming the importer.
fn export_for<'a>(opts: &'a Options, imp: &ImportSpec) -> Option<&'a ExportSpec> {
    opts.exports.iter().find(|e| {
        e.account == imp.from
            && e.kind == imp.kind
            && crate::auth::permissions::is_subset_match(
                imp.subject.as_bytes(),
                e.subject.as_bytes(),
            )
            && (e.accounts.is_empty() || e.accounts.contains(&imp.account))
    })
}

/// Checks that every configured import is allowed by an export, as nats-server does at
/// start-up (an unauthorized import is a configuration error, with nats-server's text).
pub fn check(opts: &Options) -> Result<(), String> {
    for imp in &opts.imports {
        let kind = match imp.kind {
            LinkKind::Stream => "stream",
            LinkKind::Service => "service",
        };
        if !opts.accounts.contains(&imp.from) {
            return Err(format!(
                "Error adding {kind} import {:?}: account {:?} not found",
                imp.subject, imp.from
            ));
        }
        if export_for(opts, imp).is_none() {
            return Err(format!(
                "Error adding {kind} import {:?}: {kind} import not authorized",
                imp.subject
            ));
        }
    }
    Ok(())
}

/// Wires the configured imports to their exports (after `check`); returns warnings for what
/// could not be wired.
pub fn wire(accounts: &super::Accounts, opts: &Options) -> Vec<String> {
    let mut warnings = Vec::new();
    for a in accounts.all() {
        *a.links.write() = Links::default();
    }
    for imp in &opts.imports {
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
