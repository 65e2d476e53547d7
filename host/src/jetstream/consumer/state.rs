//! A durable consumer's state on disk: `meta.json` (config, creation time) and `state.json`
//! (delivered, ack floor, pending, redelivery counts), each replaced atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::ConsumerConfig;
use super::{Consumer, Pending, SeqPair, STATE_FLUSH_NS};

/// Why a consumer's state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// What `state.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Saved {
    pub(super) delivered: SeqPair,
    pub(super) ack_floor: SeqPair,
    /// The next stream sequence to look at.
    pub(super) next: u64,
    /// (stream seq, pending).
    pub(super) pending: Vec<(u64, Pending)>,
    /// (stream seq, deliveries) for messages delivered more than once.
    pub(super) redelivered: Vec<(u64, u64)>,
}

/// What `meta.json` holds.
#[derive(Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) config: ConsumerConfig,
    pub(super) created: String,
}

pub(super) fn json_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// [`crate::jetstream::meta::replace_file`], with the path in the error.
pub(super) fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    crate::jetstream::meta::replace_file(path, bytes).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Json {
        path: path.to_path_buf(),
        source,
    })
}

impl Consumer {
    /// Writes the state if it changed (at most every [`STATE_FLUSH_NS`] unless `force`).
    pub fn persist(&self, now: i64, force: bool) {
        let Some(dir) = &self.dir else { return };
        let bytes = {
            let mut s = self.state.lock();
            if self.is_closed() || !s.dirty || (!force && now - s.written_at < STATE_FLUSH_NS) {
                return;
            }
            s.dirty = false;
            s.written_at = now;
            let saved = Saved {
                delivered: s.delivered,
                ack_floor: s.ack_floor,
                next: s.next,
                pending: s.pending.iter().map(|(k, v)| (*k, *v)).collect(),
                redelivered: s.redelivered.iter().map(|(k, v)| (*k, *v)).collect(),
            };
            json_bytes(&saved)
        };
        if let Err(e) = replace_file(&dir.join("state.json"), &bytes) {
            tracing::error!("JetStream: writing consumer '{}' state: {e}", self.name);
            self.state.lock().dirty = true;
        }
    }
}
