//! Accounts: the unit of isolation. Each account has its own subject space (its own sublist),
//! so a message published in one account is never delivered in another.
//!
//! Clients that authenticate without naming an account land in the global account `$G`;
//! `$SYS` is the system account.

pub mod operator;
pub mod system;
mod users;

pub use operator::{JwtIdentity, OperatorMode};
pub use users::{AuthError, AuthOutcome, Credentials, UserDirectory};

use crate::server::Subscription;
use crate::subject::Sublist;
use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The account of clients that are not placed in any other.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The default system account.
pub const SYSTEM_ACCOUNT: &str = "$SYS";

pub struct Account {
    pub name: String,
    pub sublist: Sublist<Subscription>,
}

impl Account {
    pub fn new(name: &str) -> Arc<Account> {
        Arc::new(Account {
            name: name.to_string(),
            sublist: Sublist::new(),
        })
    }
}

/// All accounts of a server, by name. Accounts are created on demand (from the configuration,
/// or when an authorizer places a client in one) and live as long as the server.
pub struct Accounts {
    map: RwLock<FxHashMap<String, Arc<Account>>>,
    global: Arc<Account>,
}

impl Default for Accounts {
    fn default() -> Self {
        let global = Account::new(GLOBAL_ACCOUNT);
        let mut map = FxHashMap::default();
        map.insert(GLOBAL_ACCOUNT.to_string(), global.clone());
        map.insert(SYSTEM_ACCOUNT.to_string(), Account::new(SYSTEM_ACCOUNT));
        Accounts {
            map: RwLock::new(map),
            global,
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
        self.map
            .write()
            .entry(name.to_string())
            .or_insert_with(|| Account::new(name))
            .clone()
    }

    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut v: Vec<_> = self.map.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn num_subscriptions(&self) -> u64 {
        self.map.read().values().map(|a| a.sublist.count()).sum()
    }
}
