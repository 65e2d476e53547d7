//! The `natrium:plugin/kv` capability: read-only lookups in one JetStream key-value bucket,
//! granted per binding (`kv: { bucket: NAME }`).
//!
//! ```text
//!  guest ── kv.get(key) ──▶ HostState::kv (the binding's grant: bucket, source)
//!                              │ account = the call's (transform/map `account`), or the
//!                              │           authorizer binding's one account
//!                              ▼
//!                           KvSource::get(account, bucket, key)   (JetStream, read-only)
//! ```
//!
//! The plugin host knows nothing of JetStream: the broker hands the engine a [`KvSource`]
//! (`path::plugins` adapts JetStream to it). The account is never the guest's choice, so a
//! plugin reads the bucket of the account it is serving and no other.

use std::sync::Arc;

/// Where KV lookups are answered (JetStream, in the broker). Implementations must not block
/// on the network: a lookup runs inside the plugin's call, under its deadline.
pub trait KvSource: Send + Sync {
    /// `Ok` when `bucket` exists in `account`; otherwise why not (a load error names it).
    fn check_bucket(&self, account: &str, bucket: &str) -> Result<(), String>;

    /// The current value of `key` in `account`'s `bucket`: `None` when it was never written
    /// or its last write was a delete or purge marker.
    fn get(&self, account: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A binding's grant, shared by all its instances.
pub(crate) struct KvGrant {
    pub source: Arc<dyn KvSource>,
    pub bucket: String,
    /// An authorizer's binding reads in its one account (a CONNECT has none yet).
    pub fixed_account: Option<String>,
}

/// Whether `key` is a valid JetStream KV key: `[-/_=.a-zA-Z0-9]+`, not starting or ending with
/// `.` (so never a wildcard, and never an empty token).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=' | b'.'))
}

/// `kv.get` for one instance: `call_account` is the account of the call under way (empty
/// outside a call).
pub(crate) fn get(
    grant: Option<&KvGrant>,
    call_account: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, String> {
    let Some(g) = grant else {
        return Err("this binding grants no kv bucket".into());
    };
    let account = match &g.fixed_account {
        Some(a) => a.as_str(),
        None if call_account.is_empty() => {
            return Err("kv is read on behalf of an account: only during a call for one".into())
        }
        None => call_account,
    };
    if !valid_key(key) {
        return Err(format!(
            "invalid key {key:?} (letters, digits, '-', '_', '=', '/' and '.', not at either end)"
        ));
    }
    g.source.get(account, &g.bucket, key)
}

impl std::fmt::Debug for KvGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvGrant")
            .field("bucket", &self.bucket)
            .field("fixed_account", &self.fixed_account)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn keys_as_jetstream_kv_allows_them() {
        for ok in ["a", "orders.created", "a/b=c_d-e", "A1.b2"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "a.*", ">", "a b", "é", "a\r\n"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }

    /// Records which account each lookup was for.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl KvSource for Recorder {
        fn check_bucket(&self, _: &str, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn get(&self, account: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
            self.0.lock().push(format!("{account}/{bucket}/{key}"));
            Ok(Some(b"v".to_vec()))
        }
    }

    #[test]
    fn the_account_is_the_calls_or_the_bindings_never_the_guests() {
        let rec = Arc::new(Recorder::default());
        let grant = KvGrant {
            source: rec.clone(),
            bucket: "schemas".into(),
            fixed_account: None,
        };
        assert_eq!(get(Some(&grant), "A", "k"), Ok(Some(b"v".to_vec())));
        assert!(get(Some(&grant), "", "k").is_err(), "outside a call");
        assert!(get(Some(&grant), "A", "k.*").is_err(), "no wildcards");
        assert!(get(None, "A", "k").is_err(), "no grant");
        let fixed = KvGrant {
            fixed_account: Some("AUTH".into()),
            ..grant
        };
        assert!(get(Some(&fixed), "", "k").is_ok());
        assert_eq!(*rec.0.lock(), ["A/schemas/k", "AUTH/schemas/k"]);
    }
}
