//! The shared wasmtime `Engine`, its epoch ticker, and loading (compile + on-disk cache +
//! world check + link).

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use super::bindings::BATCH_TRANSFORMATION_EXPORT;
use super::cache::{self, ArtifactCache};
use super::diagnose::{self, Form, Inspection};
use super::instance::{Authorizer, Mapper, Transformer};
use super::sandbox::{self, HostState};
use super::{PluginError, PluginSpec, Role};

/// How often the epoch advances: the granularity of call deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Identifies the artifact format of the cache (bump when the key scheme changes). Part of
/// the engine fingerprint, so it is in every artifact's name and tag.
const CACHE_FORMAT: &str = "natrium-plugin-cache-v2 wasmtime-48.0.8";

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl EngineConfig {
    /// Where compiled plugins are cached when `plugin_cache_dir` is not set: a directory
    /// only this user can write. `<store_dir>/natrium-plugin-cache` with JetStream, else
    /// `$XDG_CACHE_HOME/natrium/plugins`, else `$HOME/.cache/natrium/plugins`, else
    /// `<temp>/natrium-plugin-cache-<uid>`. Wherever it is, its owner and mode are checked
    /// before every use (see `cache`).
    pub fn default_cache_dir(store_dir: Option<&Path>) -> PathBuf {
        let env = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        default_cache_dir_from(
            store_dir,
            env("XDG_CACHE_HOME"),
            env("HOME"),
            &std::env::temp_dir(),
        )
    }
}

fn default_cache_dir_from(
    store_dir: Option<&Path>,
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
    temp: &Path,
) -> PathBuf {
    if let Some(store) = store_dir {
        return store.join("natrium-plugin-cache");
    }
    if let Some(xdg) = xdg_cache_home {
        return xdg.join("natrium").join("plugins");
    }
    if let Some(home) = home {
        return home.join(".cache").join("natrium").join("plugins");
    }
    #[cfg(unix)]
    let user = cache::effective_uid().to_string();
    #[cfg(not(unix))]
    let user = "user".to_string();
    temp.join(format!("natrium-plugin-cache-{user}"))
}

/// The plugin runtime: one per server. Cheap to clone. Loading is slow (compiling a large
/// component takes seconds the first time, milliseconds from the cache); calls are not.
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    /// The cache, when one was configured and its directory passed the checks.
    cache: Option<ArtifactCache>,
    /// `CACHE_FORMAT` and this engine's compatibility hash, hashed.
    fingerprint: [u8; 32],
    /// The memory all instances of this engine's plugins may reserve together.
    pub budget: Arc<super::budget::MemoryBudget>,
    /// Answers `kv` lookups (JetStream), when the broker has one.
    kv: parking_lot::RwLock<Option<Arc<dyn super::KvSource>>>,
    /// Dropping the sender stops the ticker; the handle is joined on drop.
    ticker: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.lock().take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// Creates the engine and starts its epoch ticker (a thread named `natrium-epoch`, which
    /// stops when the engine and every plugin loaded from it are dropped).
    pub fn new(config: EngineConfig) -> Result<Self, PluginError> {
        let mut c = wasmtime::Config::new();
        c.epoch_interruption(true);
        let engine = Engine::new(&c).map_err(|e| PluginError::Load(format!("wasm engine: {e}")))?;
        let linker = sandbox::linker(&engine)
            .map_err(|e| PluginError::Load(format!("wasm linker: {e:#}")))?;

        let (stop, ticks) = mpsc::channel::<()>();
        let ticking = engine.clone();
        let handle = std::thread::Builder::new()
            .name("natrium-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = ticks.recv_timeout(EPOCH_TICK) {
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Load(format!("starting the epoch thread: {e}")))?;

        let cache = config
            .cache_dir
            .and_then(|dir| match ArtifactCache::open(&dir) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(
                        target: "natrium::plugin",
                        "not using the plugin cache {}: {e}; plugins are compiled in memory at \
                         every start (give plugin_cache_dir a directory owned by this user and not \
                         writable by group or others)",
                        dir.display()
                    );
                    None
                }
            });
        let fingerprint = fingerprint(&engine);
        Ok(PluginEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                cache,
                fingerprint,
                budget: Arc::new(super::budget::MemoryBudget::new(
                    crate::options::DEFAULT_PLUGIN_MEMORY_BUDGET,
                )),
                kv: parking_lot::RwLock::new(None),
                ticker: Mutex::new(Some((stop, handle))),
            }),
        })
    }

    /// Sets the memory all plugin instances may reserve together (`plugin_memory_budget`).
    pub fn set_memory_budget(&self, bytes: usize) {
        self.inner.budget.set_total(bytes);
    }

    /// Where bindings granted `kv` read (set by the broker when JetStream is on; `None`: a
    /// binding with `kv` fails to load).
    pub fn set_kv_source(&self, source: Option<Arc<dyn super::KvSource>>) {
        *self.inner.kv.write() = source;
    }

    /// The `kv` grant of `spec`: every account it names must hold the bucket.
    pub(crate) fn kv_grant(&self, spec: &PluginSpec) -> Result<Option<super::kv::KvGrant>, String> {
        let Some(bucket) = &spec.kv_bucket else {
            return Ok(None);
        };
        let Some(source) = self.inner.kv.read().clone() else {
            return Err(format!(
                "kv bucket \"{bucket}\": key-value buckets need JetStream (enable jetstream)"
            ));
        };
        for account in &spec.accounts {
            source
                .check_bucket(account, bucket)
                .map_err(|e| format!("kv bucket \"{bucket}\": {e}"))?;
        }
        Ok(Some(super::kv::KvGrant {
            source,
            bucket: bucket.clone(),
            fixed_account: match spec.role {
                Role::Authorizer => spec.accounts.first().cloned(),
                _ => None,
            },
        }))
    }

    /// Loads an authorizer. `spec.role` is not consulted: the handle decides the world.
    pub fn load_authorizer(&self, spec: &PluginSpec) -> Result<Authorizer, PluginError> {
        let compiled = self.compile(spec, Role::Authorizer)?;
        Authorizer::new(self.clone(), spec, &compiled)
    }

    /// Loads a mapper (and asks it, once, whether it is deterministic).
    pub fn load_mapper(&self, spec: &PluginSpec) -> Result<Mapper, PluginError> {
        let compiled = self.compile(spec, Role::Mapper)?;
        Mapper::new(self.clone(), spec, &compiled)
    }

    /// Loads a transformer.
    pub fn load_transformer(&self, spec: &PluginSpec) -> Result<Transformer, PluginError> {
        let compiled = self.compile(spec, Role::Transformer)?;
        let batch = exports(
            &self.inner.engine,
            &compiled.component,
            BATCH_TRANSFORMATION_EXPORT,
        );
        Transformer::new(self.clone(), spec, &compiled, batch)
    }

    /// Reads `spec`'s component, checks its pinned hash, compiles it (or loads it from the
    /// cache) and checks that a binding of `role` can load it ([`diagnose`] says why not).
    fn compile(&self, spec: &PluginSpec, role: Role) -> Result<Compiled, PluginError> {
        let load_err = |msg: String| {
            PluginError::Load(format!(
                "plugin '{}' ({}): {msg}",
                spec.name,
                spec.path.display()
            ))
        };
        let bytes = read_component(&spec.path).map_err(load_err)?;
        // The hash of the bytes compiled below: the file is read once, so what was checked is
        // what runs.
        let sha256 = Sha256::digest(&bytes);
        let actual = hex(&sha256);
        if let Some(pinned) = &spec.sha256 {
            if !pinned.eq_ignore_ascii_case(&actual) {
                return Err(load_err(format!(
                    "sha256 mismatch: the binding pins {pinned}, the file is {actual} (if this \
                     build is the one to run, pin sha256: \"{actual}\"; `natrium plugin check` \
                     prints it)"
                )));
            }
        }
        if let Some(problem) = diagnose::form(&bytes).problem() {
            return Err(load_err(problem.to_string()));
        }
        let component = self
            .cached_compile(&bytes, &sha256)
            .map_err(|e| load_err(format!("not a valid component: {e:#}")))?;
        let inspection = diagnose::inspect(&self.inner.engine, &self.inner.linker, &component);
        if let Some(why) = inspection.refusal(role, spec.kv_bucket.is_some()) {
            return Err(load_err(why));
        }
        Ok(Compiled {
            component,
            sha256: actual,
        })
    }

    /// `natrium plugin check`: everything [`diagnose`] can say about the file at `path`.
    pub fn diagnose(&self, path: &Path) -> Result<Diagnosis, PluginError> {
        let bytes = read_component(path)
            .map_err(|e| PluginError::Load(format!("{}: {e}", path.display())))?;
        let sha256 = Sha256::digest(&bytes);
        let form = diagnose::form(&bytes);
        let mut d = Diagnosis {
            sha256: hex(&sha256),
            size: bytes.len(),
            form,
            compile_error: None,
            inspection: None,
        };
        if form == Form::Component {
            match self.cached_compile(&bytes, &sha256) {
                Ok(c) => {
                    d.inspection = Some(diagnose::inspect(
                        &self.inner.engine,
                        &self.inner.linker,
                        &c,
                    ))
                }
                Err(e) => d.compile_error = Some(format!("{e:#}")),
            }
        }
        Ok(d)
    }

    /// Compiles `bytes`, through the on-disk cache when there is one. A cache that cannot be
    /// read or written, or holds an artifact that fails verification, only costs time
    /// (logged); it never fails the load and an unverified artifact is never deserialized.
    fn cached_compile(&self, bytes: &[u8], source_hash: &[u8]) -> wasmtime::Result<Component> {
        let engine = &self.inner.engine;
        let Some(cache) = &self.inner.cache else {
            return Component::new(engine, bytes);
        };
        let fingerprint = &self.inner.fingerprint;
        let name = format!("{}-{}.cwasm", hex(source_hash), &hex(fingerprint)[..16]);
        match cache.load(&name, fingerprint, source_hash) {
            Ok(Some(artifact)) => match deserialize(engine, &artifact) {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(
                    target: "natrium::plugin",
                    "ignoring unusable cached component {name} in {}: {e:#}",
                    cache.dir().display()
                ),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(
                target: "natrium::plugin",
                "ignoring cached component: {e}; recompiling"
            ),
        }
        let component = Component::new(engine, bytes)?;
        let stored = component
            .serialize()
            .map_err(|e| format!("{e:#}"))
            .and_then(|artifact| {
                cache
                    .store(&name, fingerprint, source_hash, &artifact)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = stored {
            tracing::warn!(
                target: "natrium::plugin",
                "cannot cache compiled component in {}: {e}",
                cache.dir().display()
            );
        }
        Ok(component)
    }
}

/// A component read, checked and compiled for one binding.
pub(crate) struct Compiled {
    pub component: Component,
    /// Lower-case hex SHA-256 of the file's bytes (logged at every load; what `sha256` pins).
    pub sha256: String,
}

/// What `natrium plugin check` reports about a file.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// Lower-case hex SHA-256 of the file (what a binding's `sha256` pins).
    pub sha256: String,
    pub size: usize,
    pub form: Form,
    /// Why a file that looks like a component did not compile.
    pub compile_error: Option<String>,
    /// What the compiled component offers and needs.
    pub inspection: Option<Inspection>,
}

/// `CACHE_FORMAT` and the engine's compatibility hash, through SHA-256 (stable across runs,
/// unlike std's `DefaultHasher`).
fn fingerprint(engine: &Engine) -> [u8; 32] {
    let mut h = ShaHasher(Sha256::new());
    h.0.update(CACHE_FORMAT.as_bytes());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
    h.0.finalize().into()
}

/// Loads a compiled artifact that [`ArtifactCache::load`] verified.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes come from `Component::serialize` of a
    // compatible engine (it checks the header and the engine configuration itself).
    // `ArtifactCache::load` only returns bytes whose HMAC — keyed by the cache's secret, which
    // only the owner of the private cache directory can read — binds them to the sha256 of
    // the component being loaded and to this engine's fingerprint; this process wrote them
    // with `Component::serialize`.
    unsafe { Component::deserialize(engine, artifact) }
}

/// Whether `component` exports the interface named `want`.
pub(crate) fn exports(engine: &Engine, component: &Component, want: &str) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, item)| name == want && matches!(item.ty, ComponentItem::ComponentInstance(_)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Feeds `Hash` impls into SHA-256, so the engine's compatibility hash is stable across runs
/// (std's `DefaultHasher` is not guaranteed to be).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Lower-case hex SHA-256 of the component file at `path` (read as a load reads it).
pub fn component_sha256(path: &Path) -> Result<String, String> {
    read_component(path).map(|bytes| hex(&Sha256::digest(&bytes)))
}

/// Largest component file a plugin may be (the biggest example plugin is a few MiB).
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Reads a component file: only a regular file, and at most [`MAX_COMPONENT_BYTES`] — a FIFO
/// would hang start-up and `/dev/zero` would be read without end.
fn read_component(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    if meta.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{} bytes is larger than the {MAX_COMPONENT_BYTES}-byte limit for a component",
            meta.len()
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    // The file may have grown since: never read more than the limit.
    file.take(MAX_COMPONENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err("component file grew past the size limit while being read".to_string());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::default_cache_dir_from;
    use std::path::{Path, PathBuf};

    #[test]
    fn the_default_cache_is_private_to_the_user() {
        let tmp = Path::new("/tmp");
        let home = Some(PathBuf::from("/home/u"));
        let xdg = Some(PathBuf::from("/home/u/.xdg"));
        assert_eq!(
            default_cache_dir_from(Some(Path::new("/js")), xdg.clone(), home.clone(), tmp),
            Path::new("/js/natrium-plugin-cache")
        );
        assert_eq!(
            default_cache_dir_from(None, xdg, home.clone(), tmp),
            Path::new("/home/u/.xdg/natrium/plugins")
        );
        assert_eq!(
            default_cache_dir_from(None, None, home, tmp),
            Path::new("/home/u/.cache/natrium/plugins")
        );
        let last = default_cache_dir_from(None, None, None, tmp);
        assert!(last.starts_with(tmp), "{}", last.display());
        assert_ne!(last, tmp.join("natrium-plugin-cache"), "per user");
    }
}
