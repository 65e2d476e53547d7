//! Accounts: the unit of isolation. Each account has its own subject space (its own sublist),
//! so a message published in one account is never delivered in another.
//!
//! Clients that authenticate without naming an account land in the global account `$G`;
//! `$SYS` is the system account.

pub mod links;
pub mod operator;
mod users;

pub use operator::{JwtIdentity, OperatorMode};
pub use users::{
    AuthError, AuthOutcome, ClientLimits, Credentials, UserConfigError, UserDirectory,
};

use crate::client::Subscription;
use crate::options::MappingSpec;
use crate::subject::mapping::{Mapping, MappingError};
use crate::subject::Sublist;
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

pub use crate::options::{GLOBAL_ACCOUNT, SYSTEM_ACCOUNT};

/// A configured mapping that does not compile, with the account it was written for.
#[derive(Debug, thiserror::Error)]
#[error("account {account}: {source}")]
pub struct AccountMappingError {
    pub account: String,
    #[source]
    pub source: MappingError,
}

/// Compiles one configured mapping.
pub fn compile_mapping(spec: &MappingSpec) -> Result<Mapping, AccountMappingError> {
    Mapping::new(&spec.source, &spec.destinations).map_err(|source| AccountMappingError {
        account: spec.account.clone(),
        source,
    })
}

pub struct Account {
    pub name: Arc<str>,
    pub sublist: Sublist<Subscription>,
    /// Exports/imports that start here (see `links`). Read on publish only when `linked`.
    pub links: RwLock<links::Links>,
    linked: AtomicBool,
    /// Routes back for responses to service requests this account received via imports.
    pub responses: links::Responses,
    /// Random token in this account's generated reply subjects.
    pub response_token: String,
    /// Native subject mappings, applied on publish when `mapped` is set.
    mappings: RwLock<Arc<Vec<Mapping>>>,
    mapped: AtomicBool,
    /// Limits (negative = none): from the configuration's `limits {}` or the account JWT.
    max_connections: AtomicI64,
    max_subscriptions: AtomicI64,
    max_payload: AtomicI64,
    /// Clients currently admitted into this account.
    connections: AtomicI64,
    /// Subscriptions of the server's own internal clients in this account.
    internal_subs: AtomicI64,
    /// Push consumers' deliver subjects and the signals of their tasks, woken when a
    /// subscription that matches one appears (nats-server's interest notifications);
    /// `watched` spares the lock on every SUB while there are none.
    interest_watch: RwLock<Vec<(String, Arc<tokio::sync::Notify>)>>,
    watched: AtomicBool,
}

impl Account {
    pub fn new(name: &str) -> Arc<Account> {
        Arc::new(Account {
            name: Arc::from(name),
            sublist: Sublist::new(),
            links: RwLock::new(links::Links::default()),
            linked: AtomicBool::new(false),
            responses: links::Responses::default(),
            response_token: crate::util::random_base32(8, false),
            mappings: RwLock::new(Arc::new(Vec::new())),
            mapped: AtomicBool::new(false),
            max_connections: AtomicI64::new(-1),
            max_subscriptions: AtomicI64::new(-1),
            max_payload: AtomicI64::new(-1),
            connections: AtomicI64::new(0),
            internal_subs: AtomicI64::new(0),
            interest_watch: RwLock::new(Vec::new()),
            watched: AtomicBool::new(false),
        })
    }

    /// Replaces the subjects whose new interest wakes a task (push consumers' deliver
    /// subjects with their tasks' signals).
    pub fn set_interest_watch(&self, watch: Vec<(String, Arc<tokio::sync::Notify>)>) {
        let mut w = self.interest_watch.write();
        self.watched.store(!watch.is_empty(), Ordering::Release);
        *w = watch;
    }

    /// A subscription on `subject` (may hold wildcards) was added: wakes the tasks watching
    /// a subject it matches.
    pub fn notify_interest(&self, subject: &[u8]) {
        if !self.watched.load(Ordering::Acquire) {
            return;
        }
        for (watched, signal) in self.interest_watch.read().iter() {
            if crate::subject::matches(subject, watched.as_bytes()) {
                signal.notify_one();
            }
        }
    }

    /// Sets this account's limits (`None` or negative: no limit).
    pub fn set_limits(&self, l: &crate::options::AccountLimits) {
        let v = |x: Option<i64>| x.filter(|&n| n >= 0).unwrap_or(-1);
        self.max_connections
            .store(v(l.max_connections), Ordering::Relaxed);
        self.max_subscriptions
            .store(v(l.max_subscriptions), Ordering::Relaxed);
        self.max_payload.store(v(l.max_payload), Ordering::Relaxed);
    }

    /// Maximum subscriptions per client in this account, if limited.
    pub fn max_subscriptions(&self) -> Option<usize> {
        usize::try_from(self.max_subscriptions.load(Ordering::Relaxed)).ok()
    }

    /// Maximum payload in this account, if limited.
    pub fn max_payload(&self) -> Option<usize> {
        usize::try_from(self.max_payload.load(Ordering::Relaxed)).ok()
    }

    /// Admits one more client unless the account's connection limit is reached.
    pub fn try_add_connection(&self) -> bool {
        let max = self.max_connections.load(Ordering::Relaxed);
        let n = self.connections.fetch_add(1, Ordering::AcqRel);
        if max >= 0 && n >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    pub fn remove_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Subscriptions of internal clients (JetStream, `$SYS` services) in this account.
    pub fn internal_subscriptions(&self) -> u64 {
        self.internal_subs.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn add_internal_subscription(&self, n: i64) {
        self.internal_subs.fetch_add(n, Ordering::Relaxed);
    }

    /// Clients currently in this account.
    pub fn num_connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Whether a publish here may have to cross into another account.
    #[inline]
    pub fn is_linked(&self) -> bool {
        self.linked.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn has_mappings(&self) -> bool {
        self.mapped.load(Ordering::Relaxed)
    }

    /// The subject a publish on `subject` is routed to, if a mapping covers it; `roll`
    /// (0..100) picks among weighted destinations.
    pub fn map_subject(&self, subject: &[u8], roll: u8) -> Option<Vec<u8>> {
        let mappings = self.mappings.read().clone();
        crate::subject::mapping::apply_all(&mappings, subject, roll)
    }

    /// Replaces this account's mappings (configuration load or reload).
    pub fn set_mappings(&self, list: Vec<Mapping>) {
        self.mapped.store(!list.is_empty(), Ordering::Relaxed);
        *self.mappings.write() = Arc::new(list);
    }

    fn mark_linked(&self) {
        self.linked.store(true, Ordering::Relaxed);
    }
}

/// All accounts of a server, by name. Accounts are created on demand (from the configuration,
/// or when an authorizer places a client in one) and live as long as the server.
pub struct Accounts {
    map: RwLock<FxHashMap<String, Arc<Account>>>,
    global: Arc<Account>,
    /// Run for every account created after it is set (the message path installs its
    /// internal subscriptions there: JetStream's API, `$SYS.REQ.USER.INFO`).
    on_create: RwLock<Option<NewAccountHook>>,
}

/// See `Accounts::on_create`.
pub type NewAccountHook = Arc<dyn Fn(&Arc<Account>) + Send + Sync>;

impl Default for Accounts {
    fn default() -> Self {
        let global = Account::new(GLOBAL_ACCOUNT);
        let mut map = FxHashMap::default();
        map.insert(GLOBAL_ACCOUNT.to_string(), global.clone());
        map.insert(SYSTEM_ACCOUNT.to_string(), Account::new(SYSTEM_ACCOUNT));
        Accounts {
            map: RwLock::new(map),
            global,
            on_create: RwLock::new(None),
        }
    }
}

impl Accounts {
    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.map.read().get(name).cloned()
    }

    /// The named account, created if it does not exist yet.
    pub fn get_or_create(&self, name: &str) -> Arc<Account> {
        if let Some(a) = self.get(name) {
            return a;
        }
        let (account, created) = {
            let mut map = self.map.write();
            match map.get(name) {
                Some(a) => (a.clone(), false),
                None => {
                    let a = Account::new(name);
                    map.insert(name.to_string(), a.clone());
                    (a, true)
                }
            }
        };
        if created {
            let hook = self.on_create.read().clone();
            if let Some(hook) = hook {
                hook(&account);
            }
        }
        account
    }

    /// Sets the hook run for each new account, and runs it for every existing one.
    pub fn set_on_create(&self, hook: NewAccountHook) {
        *self.on_create.write() = Some(hook.clone());
        for a in self.all() {
            hook(&a);
        }
    }

    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut v: Vec<_> = self.map.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Installs the configured mappings on their accounts (every account's list is replaced).
    pub fn apply_mappings(&self, specs: &[MappingSpec]) -> Result<(), AccountMappingError> {
        let mut by_account: FxHashMap<&str, Vec<Mapping>> = FxHashMap::default();
        for m in specs {
            let mapping = compile_mapping(m)?;
            by_account
                .entry(m.account.as_str())
                .or_default()
                .push(mapping);
        }
        for a in self.all() {
            let list = by_account.remove(&*a.name).unwrap_or_default();
            a.set_mappings(list);
        }
        for (name, list) in by_account {
            self.get_or_create(name).set_mappings(list);
        }
        Ok(())
    }

    pub fn num_subscriptions(&self) -> u64 {
        self.map.read().values().map(|a| a.sublist.count()).sum()
    }

    /// Removes `sub` from its account's sublist and from its client's table (unless the
    /// client has meanwhile replaced it under the same sid). The one way a subscription ends.
    pub fn remove_sub(&self, sub: &Arc<Subscription>) {
        {
            let mut subs = sub.client.subs.lock();
            if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
                subs.remove(&sub.sid);
            }
        }
        if let Some(account) = self.get(&sub.account) {
            account.sublist.remove(sub);
        }
    }
}
