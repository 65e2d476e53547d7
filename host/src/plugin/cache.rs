//! The on-disk cache of compiled components, and why a poisoned one is never loaded.
//!
//! A cached artifact is native code that `Component::deserialize` maps executable without
//! checking it, so the cache must only ever hand back what this cache wrote for exactly this
//! component. Two layers:
//!
//! 1. **The directory is private.** Before each use it must be a directory owned by the
//!    process's effective user and not writable by group or others (a fresh one is created
//!    0700). Anything else — pre-created by another user in a shared temp dir, a symlink to
//!    someone else's directory, `chmod 777` — refuses the cache with a warning, and plugins are
//!    compiled in memory (slower start, same behaviour). Artifact and key files are opened
//!    without following symlinks and must pass the same owner/mode check.
//! 2. **Every artifact is authenticated and bound to its component.** A file is
//!    `artifact ‖ HMAC-SHA256(key, format ‖ engine fingerprint ‖ sha256(component) ‖ artifact)`,
//!    written to a temp file and renamed into place. `key` is 32 random bytes in `cache.key`
//!    (0600, created once per cache directory). Before deserializing, the tag is recomputed
//!    over the component the configuration names *now* and compared in constant time; an
//!    artifact swapped in from another plugin, truncated, copied from another cache or machine,
//!    or forged without the key fails and is recompiled over.
//!
//! A plain sha256 of the artifact in a side file would catch accidents but not a forgery (its
//! writer can recompute the hash); the keyed tag means forging needs the key, which only the
//! directory's owner can read. Whoever *is* that user can already replace the plugin files
//! and the configuration, so that is the boundary.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cache's secret, one per directory.
const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;
/// Length of the HMAC-SHA256 tag appended to every artifact.
const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a cache directory (or a file in it) is not trusted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheRefused {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is owned by uid {owner}, not by this process's user (uid {me})", path.display())]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error("{} is writable by group or others (mode {mode:03o})", path.display())]
    Mode { path: PathBuf, mode: u32 },
    #[error("{} is not a {want}", path.display())]
    Kind { path: PathBuf, want: &'static str },
    #[error("{} has the wrong length for a cache key", path.display())]
    KeyLength { path: PathBuf },
    #[cfg(not(unix))]
    #[error("the owner and mode of {} cannot be checked on this platform", path.display())]
    Unsupported { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheRefused + '_ {
    move |source| CacheRefused::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An opened, checked cache directory and its key.
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ArtifactCache {
    /// Creates `dir` (0700) if needed, checks it, and reads (or creates) its key.
    pub fn open(dir: &Path) -> Result<ArtifactCache, CacheRefused> {
        create_private_dir(dir).map_err(io(dir))?;
        check_private(dir, Want::Dir, &std::fs::metadata(dir).map_err(io(dir))?)?;
        let key = read_or_create_key(dir)?;
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tag binding `artifact` to the component whose sha256 is `component` under the
    /// engine `fingerprint`.
    fn tag(&self, fingerprint: &[u8], component: &[u8], artifact: &[u8]) -> HmacSha256 {
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        for part in [fingerprint, component] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(artifact);
        mac
    }

    /// The verified artifact stored under `name`, or `None` when there is none. An error
    /// means a file is there and must not be used.
    pub fn load(
        &self,
        name: &str,
        fingerprint: &[u8],
        component: &[u8],
    ) -> Result<Option<Vec<u8>>, CacheRefused> {
        check_private(
            &self.dir,
            Want::Dir,
            &std::fs::metadata(&self.dir).map_err(io(&self.dir))?,
        )?;
        let path = self.dir.join(name);
        let mut file = match open_nofollow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        check_private(&path, Want::File, &file.metadata().map_err(io(&path))?)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let Some(split) = bytes.len().checked_sub(TAG_LEN) else {
            return Err(CacheRefused::Kind {
                path,
                want: "tagged artifact",
            });
        };
        let (artifact, tag) = bytes.split_at(split);
        if self
            .tag(fingerprint, component, artifact)
            .verify_slice(tag)
            .is_err()
        {
            return Err(CacheRefused::Kind {
                path,
                want: "artifact written by this cache for this component (tag mismatch)",
            });
        }
        bytes.truncate(split);
        Ok(Some(bytes))
    }

    /// Stores `artifact` under `name` with its tag (temp file + rename).
    pub fn store(
        &self,
        name: &str,
        fingerprint: &[u8],
        component: &[u8],
        artifact: &[u8],
    ) -> Result<(), CacheRefused> {
        let path = self.dir.join(name);
        let tag = self
            .tag(fingerprint, component, artifact)
            .finalize()
            .into_bytes();
        let tmp = self.dir.join(format!("{name}.tmp{}", std::process::id()));
        let written =
            write_new_private(&tmp, &[artifact, &tag]).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path)(e));
        }
        Ok(())
    }
}

/// Reads `dir/cache.key`, creating it (0600, atomically: a temp file hard-linked into place,
/// so concurrent starts agree on one key) when there is none.
fn read_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], CacheRefused> {
    let path = dir.join(KEY_FILE);
    for _ in 0..2 {
        match open_nofollow(&path) {
            Ok(mut f) => {
                check_private(&path, Want::File, &f.metadata().map_err(io(&path))?)?;
                let mut key = [0u8; KEY_LEN];
                let mut rest = Vec::new();
                f.read_exact(&mut key)
                    .map_err(|_| CacheRefused::KeyLength { path: path.clone() })?;
                f.read_to_end(&mut rest).map_err(io(&path))?;
                if !rest.is_empty() {
                    return Err(CacheRefused::KeyLength { path });
                }
                return Ok(key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                let tmp = dir.join(format!("{KEY_FILE}.tmp{}", std::process::id()));
                let made = write_new_private(&tmp, &[&key]).and_then(|()| {
                    match std::fs::hard_link(&tmp, &path) {
                        // Another process made one first: use theirs.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                        r => r,
                    }
                });
                let _ = std::fs::remove_file(&tmp);
                made.map_err(io(&path))?;
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Err(io(&path)(std::io::Error::other("the key disappeared")))
}

/// Creates `path` (which must not exist) readable and writable by its owner only.
fn write_new_private(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    for p in parts {
        f.write_all(p)?;
    }
    f.sync_all()
}

fn open_nofollow(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Dir,
    File,
}

/// The process's effective user id.
#[cfg(unix)]
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// Owned by this process's user, not writable by group or others, and of the right kind.
#[cfg(unix)]
fn check_private(path: &Path, want: Want, meta: &std::fs::Metadata) -> Result<(), CacheRefused> {
    use std::os::unix::fs::MetadataExt;
    let kind_ok = match want {
        Want::Dir => meta.is_dir(),
        Want::File => meta.is_file(),
    };
    if !kind_ok {
        return Err(CacheRefused::Kind {
            path: path.to_path_buf(),
            want: if want == Want::Dir {
                "directory"
            } else {
                "regular file"
            },
        });
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(CacheRefused::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CacheRefused::Mode {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Without Unix owners and modes the directory cannot be shown private: no cache.
#[cfg(not(unix))]
fn check_private(path: &Path, _: Want, _: &std::fs::Metadata) -> Result<(), CacheRefused> {
    Err(CacheRefused::Unsupported {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn artifacts_round_trip_only_for_their_component() {
        let d = ok(tempfile::tempdir());
        let cache = ok(ArtifactCache::open(&d.path().join("c")));
        ok(cache.store("x.cwasm", b"fp", b"component-x", b"native code x"));
        ok(cache.store("y.cwasm", b"fp", b"component-y", b"native code y"));
        assert_eq!(
            ok(cache.load("x.cwasm", b"fp", b"component-x")).as_deref(),
            Some(&b"native code x"[..])
        );
        assert!(ok(cache.load("z.cwasm", b"fp", b"component-z")).is_none());
        // Another engine configuration: refused.
        assert!(cache.load("x.cwasm", b"other", b"component-x").is_err());
        // Swapped: y's artifact under x's name is refused.
        ok(std::fs::copy(
            d.path().join("c/y.cwasm"),
            d.path().join("c/x.cwasm"),
        ));
        assert!(cache.load("x.cwasm", b"fp", b"component-x").is_err());
        // Forged without the key: refused.
        ok(std::fs::write(d.path().join("c/x.cwasm"), [0u8; 64]));
        assert!(cache.load("x.cwasm", b"fp", b"component-x").is_err());
        // The key persists: a second open verifies what the first wrote.
        let again = ok(ArtifactCache::open(&d.path().join("c")));
        assert!(ok(again.load("y.cwasm", b"fp", b"component-y")).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn shared_or_foreign_directories_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = ok(tempfile::tempdir());
        let dir = d.path().join("c");
        ok(std::fs::create_dir(&dir));
        ok(std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(0o777),
        ));
        let e = ArtifactCache::open(&dir).map(|_| ());
        assert!(matches!(e, Err(CacheRefused::Mode { .. })), "{e:?}");
        ok(std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(0o755),
        ));
        let cache = ok(ArtifactCache::open(&dir));
        // Widened after opening: refused at the next use.
        ok(std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(0o770),
        ));
        let e = cache.load("x.cwasm", b"fp", b"c").map(|_| ());
        assert!(matches!(e, Err(CacheRefused::Mode { .. })), "{e:?}");
        ok(std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(0o700),
        ));
        // A symlinked artifact is not followed.
        ok(std::os::unix::fs::symlink(
            "/etc/hostname",
            dir.join("l.cwasm"),
        ));
        assert!(cache.load("l.cwasm", b"fp", b"c").is_err());
        // A world-writable key is refused.
        ok(std::fs::set_permissions(
            dir.join(KEY_FILE),
            std::fs::Permissions::from_mode(0o666),
        ));
        let e = ArtifactCache::open(&dir).map(|_| ());
        assert!(matches!(e, Err(CacheRefused::Mode { .. })), "{e:?}");
        // Owned by another user (only root can arrange that here).
        if effective_uid() == 0 {
            let other = d.path().join("other");
            ok(std::fs::create_dir(&other));
            ok(std::os::unix::fs::chown(&other, Some(65534), Some(65534)));
            let e = ArtifactCache::open(&other).map(|_| ());
            assert!(matches!(e, Err(CacheRefused::Owner { .. })), "{e:?}");
        }
    }
}
