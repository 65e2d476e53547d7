//! Read-only key-value lookups, as a plugin's `kv` grant reads them.
//!
//! A JetStream KV bucket is the stream `KV_<bucket>` whose subjects are `$KV.<bucket>.>`; the
//! clients write a key as a message on `$KV.<bucket>.<key>`, and delete or purge it with an
//! empty message whose `KV-Operation` header says `DEL` or `PURGE`. The current value of a key
//! is the last message on its subject, unless that is such a marker:
//!
//! ```text
//!  $KV.schemas.orders   seq 4  {"type":"object"}          ← get("orders") = Some(..)
//!  $KV.schemas.users    seq 7  KV-Operation: DEL (empty)  ← get("users")  = None
//! ```
//!
//! A lookup is the store's per-subject index and one read: no request, no network, no
//! client. It never creates an account's JetStream registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::stream::Stream;
use super::JetStream;

/// Why a key could not be looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("no key-value bucket \"{bucket}\" in account \"{account}\" (create it first, e.g. `nats kv add {bucket}` as a user of that account)")]
    NoBucket { account: String, bucket: String },
    #[error("reading bucket \"{bucket}\": {reason}")]
    Read { bucket: String, reason: String },
}

/// The header that marks a delete or purge in a KV stream.
const OPERATION: &str = "KV-Operation";

/// Whether a stored KV message with this header block is a delete or purge marker.
pub fn is_marker(headers: &[u8]) -> bool {
    if headers.is_empty() {
        return false;
    }
    crate::proto::headers::fields(headers)
        .iter()
        .any(|(name, value)| {
            name.eq_ignore_ascii_case(OPERATION) && matches!(value.trim(), "DEL" | "PURGE")
        })
}

/// The store directory JetStream uses for `store_dir` (nats-server's default when unset).
pub fn store_dir(configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(|| std::env::temp_dir().join("nats"), Path::to_path_buf)
}

/// Whether `account`'s bucket has a file stream under `store_dir` (for `natrium -t`, which runs
/// no JetStream).
pub fn stored_bucket(store_dir: &Path, account: &str, bucket: &str) -> bool {
    store_dir
        .join("jetstream")
        .join(super::dir_name(account))
        .join("streams")
        .join(format!("KV_{bucket}"))
        .is_dir()
}

impl JetStream {
    /// The stream behind `account`'s bucket `bucket`, if it exists.
    pub fn kv_bucket(&self, account: &str, bucket: &str) -> Result<Arc<Stream>, KvError> {
        self.accounts
            .read()
            .get(account)
            .and_then(|a| a.stream(&format!("KV_{bucket}")))
            .ok_or_else(|| KvError::NoBucket {
                account: account.to_string(),
                bucket: bucket.to_string(),
            })
    }

    /// The current value of `key` in `account`'s bucket `bucket` (`None`: never written, or
    /// deleted or purged). `key` must be a valid KV key (no wildcards): the caller checks.
    pub fn kv_get(&self, account: &str, bucket: &str, key: &str) -> Result<Option<Bytes>, KvError> {
        let stream = self.kv_bucket(account, bucket)?;
        let last = stream
            .last_for_subject(&format!("$KV.{bucket}.{key}"))
            .map_err(|e| KvError::Read {
                bucket: bucket.to_string(),
                reason: e.description,
            })?;
        Ok(last.filter(|m| !is_marker(&m.headers)).map(|m| m.payload))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jetstream::config::StreamConfig;
    use crate::jetstream::stream::Origin;
    use crate::jetstream::{JsConfig, SyncPolicy};

    #[test]
    fn markers_are_del_and_purge_only() {
        assert!(!is_marker(b""));
        assert!(is_marker(b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"));
        assert!(is_marker(b"NATS/1.0\r\nkv-operation: PURGE\r\n\r\n"));
        assert!(is_marker(
            b"NATS/1.0\r\nNats-Rollup: sub\r\nKV-Operation: PURGE\r\n\r\n"
        ));
        assert!(!is_marker(b"NATS/1.0\r\nKV-Operation: PUT\r\n\r\n"));
        assert!(!is_marker(b"NATS/1.0\r\nX: DEL\r\n\r\n"));
    }

    fn jetstream(dir: &std::path::Path) -> Arc<JetStream> {
        let config = JsConfig {
            store_dir: dir.to_path_buf(),
            max_memory: -1,
            max_storage: -1,
            sync: SyncPolicy::Always,
            domain: None,
        };
        JetStream::start(config, Default::default(), true).unwrap()
    }

    fn bucket(js: &JetStream, account: &str, bucket: &str) -> Arc<Stream> {
        let config: StreamConfig = serde_json::from_value(serde_json::json!({
            "name": format!("KV_{bucket}"),
            "subjects": [format!("$KV.{bucket}.>")],
            "storage": "memory",
            "max_msgs_per_subject": 1,
            "allow_rollup_hdrs": true,
            "deny_delete": true,
        }))
        .unwrap();
        js.account(account)
            .create_stream(config.normalize().unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn the_last_write_of_a_key_in_the_right_account_wins() {
        let dir = tempfile::tempdir().unwrap();
        let js = jetstream(dir.path());
        assert_eq!(
            js.kv_get("A", "schemas", "k"),
            Err(KvError::NoBucket {
                account: "A".into(),
                bucket: "schemas".into()
            }),
            "no registry for A yet, and none is created"
        );
        assert!(js.accounts.read().get("A").is_none());

        let a = bucket(&js, "A", "schemas");
        let b = bucket(&js, "B", "schemas");
        let put = |s: &Stream, key: &str, headers: Option<&[u8]>, v: &[u8]| {
            js.account(if std::ptr::eq(s, &*a) { "A" } else { "B" })
                .store(s, &format!("$KV.schemas.{key}"), headers, v, Origin::Client)
                .unwrap();
        };
        assert_eq!(js.kv_get("A", "schemas", "k").unwrap(), None);
        put(&a, "k", None, b"one");
        put(&a, "k", None, b"two");
        put(&b, "k", None, b"B's");
        assert_eq!(
            js.kv_get("A", "schemas", "k").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(
            js.kv_get("B", "schemas", "k").unwrap().as_deref(),
            Some(&b"B's"[..])
        );
        put(&a, "k", Some(b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"), b"");
        assert_eq!(js.kv_get("A", "schemas", "k").unwrap(), None, "deleted");
        put(&a, "k", None, b"three");
        put(
            &a,
            "k",
            Some(b"NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n"),
            b"",
        );
        assert_eq!(js.kv_get("A", "schemas", "k").unwrap(), None, "purged");
        assert!(matches!(
            js.kv_get("A", "other", "k"),
            Err(KvError::NoBucket { .. })
        ));
    }
}
