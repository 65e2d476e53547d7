//! The small JSON files JetStream keeps beside its data — a stream's `meta.json`, a durable
//! consumer's `meta.json` and `state.json` — and the one way they are written: replaced
//! atomically, so a crash leaves the old file or the new one, never half of either.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::config::StreamConfig;

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes a stream's `meta.json` (config + creation time) atomically, then syncs `dir`.
pub fn write_meta(dir: &Path, config: &StreamConfig, created: SystemTime) -> std::io::Result<()> {
    let meta = json!({
        "config": config,
        "created": crate::timefmt::rfc3339(created),
        "created_ns": created.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
    });
    let body = serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?;
    replace_file(&dir.join("meta.json"), &body)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Why a stream's `meta.json` could not be read back; `path` is the file.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The file is JSON, but its `config` is not a stream configuration.
    #[error("stream config in {}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads `meta.json` back.
pub fn read_meta(dir: &Path) -> Result<(StreamConfig, SystemTime), MetaError> {
    let path = dir.join("meta.json");
    let body = match std::fs::read(&path) {
        Ok(body) => body,
        Err(source) => return Err(MetaError::Read { path, source }),
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(source) => return Err(MetaError::Parse { path, source }),
    };
    let config: StreamConfig = match serde_json::from_value(v["config"].clone()) {
        Ok(c) => c,
        Err(source) => return Err(MetaError::Config { path, source }),
    };
    let created = UNIX_EPOCH + Duration::from_nanos(v["created_ns"].as_u64().unwrap_or(0));
    Ok((config, created))
}
