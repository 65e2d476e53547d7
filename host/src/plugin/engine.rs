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

use super::bindings::{
    AUTHORIZATION_EXPORT, BATCH_TRANSFORMATION_EXPORT, MAPPING_EXPORT, TRANSFORMATION_EXPORT,
};
use super::instance::{Authorizer, Mapper, Transformer};
use super::sandbox::{self, HostState};
use super::{PluginError, PluginSpec, Role};

/// How often the epoch advances: the granularity of call deadlines.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Identifies the artifact format of the cache (bump when the key scheme changes).
const CACHE_FORMAT: &str = "natrium-plugin-cache-v1 wasmtime-48.0.8";

/// Engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl EngineConfig {
    /// `<store_dir or the system temp dir>/natrium-plugin-cache`.
    pub fn default_cache_dir(store_dir: Option<&Path>) -> PathBuf {
        store_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir)
            .join("natrium-plugin-cache")
    }
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
    cache_dir: Option<PathBuf>,
    /// The memory all instances of this engine's plugins may reserve together.
    pub budget: Arc<super::budget::MemoryBudget>,
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
            .field("cache_dir", &self.inner.cache_dir)
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

        Ok(PluginEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                cache_dir: config.cache_dir,
                budget: Arc::new(super::budget::MemoryBudget::new(
                    crate::options::DEFAULT_PLUGIN_MEMORY_BUDGET,
                )),
                ticker: Mutex::new(Some((stop, handle))),
            }),
        })
    }

    /// Sets the memory all plugin instances may reserve together (`plugin_memory_budget`).
    pub fn set_memory_budget(&self, bytes: usize) {
        self.inner.budget.set_total(bytes);
    }

    /// Loads an authorizer. `spec.role` is not consulted: the handle decides the world.
    pub fn load_authorizer(&self, spec: &PluginSpec) -> Result<Authorizer, PluginError> {
        let component = self.compile(spec, Role::Authorizer)?;
        Authorizer::new(self.clone(), spec, &component)
    }

    /// Loads a mapper (and asks it, once, whether it is deterministic).
    pub fn load_mapper(&self, spec: &PluginSpec) -> Result<Mapper, PluginError> {
        let component = self.compile(spec, Role::Mapper)?;
        Mapper::new(self.clone(), spec, &component)
    }

    /// Loads a transformer.
    pub fn load_transformer(&self, spec: &PluginSpec) -> Result<Transformer, PluginError> {
        let component = self.compile(spec, Role::Transformer)?;
        let batch = exports(&self.inner.engine, &component, BATCH_TRANSFORMATION_EXPORT);
        Transformer::new(self.clone(), spec, &component, batch)
    }

    /// Reads, compiles (or loads from the cache) and checks the world of `spec`'s component.
    fn compile(&self, spec: &PluginSpec, role: Role) -> Result<Component, PluginError> {
        let load_err = |msg: String| {
            PluginError::Load(format!(
                "plugin '{}' ({}): {msg}",
                spec.name,
                spec.path.display()
            ))
        };
        let bytes = std::fs::read(&spec.path).map_err(|e| load_err(format!("cannot read: {e}")))?;
        if Engine::detect_precompiled(&bytes).is_some() {
            return Err(load_err(
                "is a precompiled artifact; give the component (.wasm) itself".into(),
            ));
        }
        let component = self
            .cached_compile(&bytes)
            .map_err(|e| load_err(format!("not a valid component: {e:#}")))?;
        check_world(&self.inner.engine, &component, role).map_err(|missing| {
            PluginError::Load(format!(
                "plugin '{}' ({}) is not {} {role}: missing export {missing}",
                spec.name,
                spec.path.display(),
                if role == Role::Authorizer { "an" } else { "a" },
            ))
        })?;
        Ok(component)
    }

    fn cache_key(&self, bytes: &[u8]) -> String {
        let mut h = ShaHasher(Sha256::new());
        h.0.update(CACHE_FORMAT.as_bytes());
        std::hash::Hash::hash(&self.inner.engine.precompile_compatibility_hash(), &mut h);
        let engine_hash = h.0.finalize();
        let source_hash = Sha256::digest(bytes);
        format!("{}-{}", hex(&source_hash), &hex(&engine_hash)[..16])
    }

    /// Compiles `bytes`, through the on-disk cache when there is one. A cache that cannot be
    /// read or written only costs time (logged); it never fails the load.
    fn cached_compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        let engine = &self.inner.engine;
        let Some(dir) = &self.inner.cache_dir else {
            return Component::new(engine, bytes);
        };
        let file = dir.join(format!("{}.cwasm", self.cache_key(bytes)));
        if let Ok(artifact) = std::fs::read(&file) {
            match deserialize(engine, &artifact) {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(
                    target: "natrium::plugin",
                    "ignoring unusable cached component {}: {e:#}",
                    file.display()
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store_artifact(dir, &file, &component) {
            tracing::warn!(
                target: "natrium::plugin",
                "cannot cache compiled component in {}: {e}",
                dir.display()
            );
        }
        Ok(component)
    }
}

/// Loads a compiled artifact written by [`store_artifact`].
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes come from `Component::serialize` of a
    // compatible engine (it checks the header and the engine configuration itself). The file
    // name is the hash of the source component and of this engine's configuration, and only
    // this process writes the cache directory, created 0700. Whoever can write that directory
    // can already replace the plugin files the configuration names.
    unsafe { Component::deserialize(engine, artifact) }
}

fn store_artifact(dir: &Path, file: &Path, component: &Component) -> std::io::Result<()> {
    let artifact = component
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    create_private_dir(dir)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, artifact)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// `Ok` when `component` exports the interface of `role`'s world; otherwise the missing name.
fn check_world(engine: &Engine, component: &Component, role: Role) -> Result<(), &'static str> {
    let want = match role {
        Role::Authorizer => AUTHORIZATION_EXPORT,
        Role::Mapper => MAPPING_EXPORT,
        // Either transformer world will do.
        Role::Transformer if exports(engine, component, BATCH_TRANSFORMATION_EXPORT) => {
            return Ok(())
        }
        Role::Transformer => TRANSFORMATION_EXPORT,
    };
    if exports(engine, component, want) {
        Ok(())
    } else {
        Err(want)
    }
}

/// Whether `component` exports the interface named `want`.
fn exports(engine: &Engine, component: &Component, want: &str) -> bool {
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
