//! Django's `FileBasedCache`: one file per key in a directory.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Deserialize;
use url::Url;

use crate::backend::{CacheBackend, ClearScope, Expiry, apply_incr};
use crate::backends::culling::{Culling, deadline};
use crate::clock;
use crate::error::{CacheError, ConfigError, Result};
use crate::hex::Hex;
use crate::options::BackendOptions;

const NAME: &str = "file";

/// The options of a `file://` URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOptions {
    /// [`FileBackendBuilder::max_entries`].
    #[serde(default)]
    max_entries: Option<u64>,
    /// [`FileBackendBuilder::cull_frequency`].
    #[serde(default)]
    cull_frequency: Option<u64>,
}

/// The suffix of cache files, as Django's.
const SUFFIX: &str = ".djcache";

/// The lock file that `add`, `incr`, `touch` and `delete_if_equal` hold
/// while they read and write (it is not a cache file, so `clear` and culling leave it alone).
const LOCK_FILE: &str = "tower-cache.lock";

/// A cache file starts with these bytes; the last is the layout's version.
const MAGIC: [u8; 8] = *b"tcache\x00\x01";

/// Magic, expiry (u64 LE, microseconds since 1970; `u64::MAX` never), key
/// length (u16 LE).
const HEADER: usize = 8 + 8 + 2;

/// The CRC-32 of everything before it, at the end of the file.
const TRAILER: usize = 4;

/// The expiry that never comes.
const NEVER: u64 = u64::MAX;

/// A directory of cache files (Django's `FileBasedCache`). URL:
/// `file:///absolute/dir?max_entries=1000`.
///
/// * One file per key, named as Django names it: the MD5 of the made key in
///   hex, plus `.djcache` (`:1:hello` is `95fb86ddcbbe84c9287b42f53f2181fb.djcache`),
///   directly in the directory. A file holds a versioned header (expiry,
///   key), the value and a CRC-32.
/// * Writes go to a temporary file in the same directory, renamed over the
///   entry: readers see the old file or the new one, never half of one, and
///   processes sharing the directory do not corrupt each other.
/// * An expired, truncated or corrupt file is a miss, and is removed.
/// * Culling as Django: before a write, when the directory holds
///   `max_entries` (default 300) cache files or more, a random
///   `1/cull_frequency` (default 3) of them are removed; `cull_frequency = 0`
///   removes them all.
/// * `clear` removes only cache files (with a key prefix: only the files of
///   keys under it); other files and the directory stay.
/// * The directory (and its missing parents) is created on the first write,
///   readable by its owner only (mode 0700), and again if it is deleted.
/// * Every file operation runs on tokio's blocking pool, never on the
///   runtime's threads.
///
/// ```
/// use std::sync::Arc;
/// use tower_cache::Cache;
/// use tower_cache::backends::FileBackend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let dir = dir.path().join("cache");
/// let backend = FileBackend::builder(&dir).max_entries(1000).build().await?;
/// let cache = Cache::new(Arc::new(backend));
/// cache.set("greeting", "hello", tower_cache::Timeout::Default).await?;
/// assert_eq!(cache.get::<String>("greeting").await?.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
///
/// # Guarantees
///
/// `add`, `incr`, `touch` and `delete_if_equal` hold an exclusive lock on
/// the directory's `tower-cache.lock` (`flock`) while they read and write,
/// so they are atomic among themselves, across processes too. A `set`
/// racing with them is not ordered: one of the two writes wins
/// (before removing, `delete_if_equal` checks, on Unix, that the file is
/// still the one whose value it compared, which narrows the window in which
/// it could remove a racing `set`'s file but does not close it).
///
/// # Two tiers
///
/// With `l1_max_bytes` or `l1_ttl` in the URL, the cache is a
/// [`TieredBackend`](crate::backends::TieredBackend): an in-process L1 in
/// front of the directory. Another process's write to the directory is
/// seen within `l1_ttl` (1 s by default): the staleness bound. L1 copies
/// take their lifetime from the file header.
///
/// # Differences from Django
///
/// * `add` and `incr` are atomic (Django's are a read and a write); `incr`
///   keeps the expiry (Django's resets it to the default).
/// * The file layout is this crate's (Django pickles), so the directory is
///   not shared with Django.
/// * `delete` of an expired file removes it and returns `false`.
#[derive(Clone)]
pub struct FileBackend {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    culling: Culling,
}

/// Builds a [`FileBackend`]; see [`FileBackend::builder`].
#[must_use]
#[derive(Debug, Clone)]
pub struct FileBackendBuilder {
    dir: PathBuf,
    culling: Culling,
}

impl FileBackendBuilder {
    /// Django's `MAX_ENTRIES`: the number of cache files at which a write
    /// culls (default 300).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.culling.max_entries = max_entries;
        self
    }

    /// Django's `CULL_FREQUENCY`: a cull removes `1/cull_frequency` of the
    /// files, chosen at random; 0 removes them all (default 3).
    pub fn cull_frequency(mut self, cull_frequency: u64) -> Self {
        self.culling.cull_frequency = cull_frequency;
        self
    }

    /// The backend. Nothing is touched on disk until the first operation,
    /// so this never fails; it returns a `Result` (and is `async`) as every
    /// backend builder's `build()` does.
    pub async fn build(self) -> Result<FileBackend> {
        Ok(self.finish())
    }

    fn finish(self) -> FileBackend {
        FileBackend {
            inner: Arc::new(Inner {
                dir: self.dir,
                culling: self.culling,
            }),
        }
    }
}

impl FileBackend {
    /// A backend over `dir` with Django's defaults.
    pub fn new(dir: impl Into<PathBuf>) -> FileBackend {
        FileBackend::builder(dir).finish()
    }

    /// A builder for a backend over `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> FileBackendBuilder {
        FileBackendBuilder {
            dir: dir.into(),
            culling: Culling::default(),
        }
    }

    /// From `file:///absolute/dir` and its options.
    pub(crate) async fn from_url(url: &Url, options: BackendOptions) -> Result<FileBackend> {
        let options: FileOptions = options.parse(NAME)?;
        let bad = |reason: &str| ConfigError::InvalidOption {
            backend: NAME,
            option: "url".into(),
            value: url.as_str().into(),
            reason: reason.into(),
        };
        if url.host_str().is_some_and(|host| !host.is_empty()) {
            return Err(bad(
                "a file cache URL names an absolute directory: file:///absolute/dir (three slashes)",
            )
            .into());
        }
        let dir = url
            .to_file_path()
            .map_err(|()| bad("expected file:///absolute/dir"))?;
        let mut builder = FileBackend::builder(dir);
        builder
            .culling
            .override_with(options.max_entries, options.cull_frequency);
        builder.build().await
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file that holds `key` (a made key): Django's name for it.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.inner.path_of(key)
    }

    /// Reads every key in one trip to the blocking pool, each as `view`
    /// makes it.
    async fn read_many<T: Send + 'static>(
        &self,
        keys: &[&str],
        view: fn(Found) -> Option<T>,
    ) -> Result<Vec<Option<T>>> {
        let keys: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        self.blocking("get_many", move |inner| {
            keys.iter().map(|key| Ok(view(inner.read(key)?))).collect()
        })
        .await
    }

    /// Runs `work` on the blocking pool.
    async fn blocking<T, F>(&self, operation: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|join| CacheError::backend(NAME, operation, join))?
            .map_err(|io| CacheError::backend(NAME, operation, io))
    }
}

/// A cache file's content, checked.
struct Stored {
    expires: u64,
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
}

impl Stored {
    fn encode(key: &str, expires: u64, value: &[u8]) -> io::Result<Vec<u8>> {
        let key_len = u16::try_from(key.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cache key too long"))?;
        let mut bytes = Vec::with_capacity(HEADER + key.len() + value.len() + TRAILER);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&expires.to_le_bytes());
        bytes.extend_from_slice(&key_len.to_le_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(value);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }

    /// The layout of `bytes`, or `None` when they are not a whole, intact
    /// cache file.
    fn decode(bytes: &[u8]) -> Option<Stored> {
        let (expires, key_len) = Stored::header(bytes)?;
        let body_end = bytes.len().checked_sub(TRAILER)?;
        let key_end = HEADER.checked_add(key_len)?;
        if key_end > body_end {
            return None;
        }
        let crc = u32::from_le_bytes(bytes[body_end..].try_into().ok()?);
        if crc32fast::hash(&bytes[..body_end]) != crc {
            return None;
        }
        Some(Stored {
            expires,
            key: HEADER..key_end,
            value: key_end..body_end,
        })
    }

    /// Expiry and key length from the header, if the magic is right.
    fn header(bytes: &[u8]) -> Option<(u64, usize)> {
        if bytes.get(..MAGIC.len())? != MAGIC {
            return None;
        }
        let expires = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        let key_len = u16::from_le_bytes(bytes.get(16..HEADER)?.try_into().ok()?);
        Some((expires, usize::from(key_len)))
    }
}

/// Microseconds since 1970, capped below [`NEVER`].
fn micros(since_epoch: std::time::Duration) -> u64 {
    u64::try_from(since_epoch.as_micros())
        .unwrap_or(NEVER - 1)
        .min(NEVER - 1)
}

fn expires_at(expiry: Expiry) -> u64 {
    deadline(expiry).map_or(NEVER, micros)
}

fn is_live(expires: u64) -> bool {
    expires > micros(clock::since_epoch())
}

/// How long an entry that expires at `expires` (microseconds since 1970)
/// has left; `None` when it never expires.
fn remaining(expires: u64) -> Option<Duration> {
    (expires != NEVER)
        .then(|| Duration::from_micros(expires.saturating_sub(micros(clock::since_epoch()))))
}

/// What a read of one key found.
enum Found {
    /// A live entry: its expiry and value.
    Live(u64, Bytes),
    /// Nothing (or a file of another key with the same hash).
    Missing,
}

impl Found {
    fn value(self) -> Option<Bytes> {
        match self {
            Found::Live(_, value) => Some(value),
            Found::Missing => None,
        }
    }

    fn with_ttl(self) -> Option<(Bytes, Option<Duration>)> {
        match self {
            Found::Live(expires, value) => Some((value, remaining(expires))),
            Found::Missing => None,
        }
    }
}

impl Inner {
    fn path_of(&self, key: &str) -> PathBuf {
        let digest = Md5::digest(key.as_bytes());
        self.dir.join(format!("{}{SUFFIX}", Hex(&digest)))
    }

    /// Reads `key`'s file; removes it when it is expired or corrupt.
    fn read(&self, key: &str) -> io::Result<Found> {
        Ok(self.read_seen(key)?.0)
    }

    /// [`read`](Self::read), with the metadata of the file read when it was
    /// live, to remove exactly that file later.
    fn read_seen(&self, key: &str) -> io::Result<(Found, Option<Metadata>)> {
        let missing = Ok((Found::Missing, None));
        let path = self.path_of(key);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return missing,
            Err(err) => return Err(err),
        };
        let seen = file.metadata()?;
        let mut bytes = Vec::with_capacity(usize::try_from(seen.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)?;
        drop(file);
        let Some(stored) = Stored::decode(&bytes) else {
            tracing::warn!(path = %path.display(), "removing a corrupt cache file");
            remove_if_unchanged(&path, &seen)?;
            return missing;
        };
        if !is_live(stored.expires) {
            remove_if_unchanged(&path, &seen)?;
            return missing;
        }
        if &bytes[stored.key.clone()] != key.as_bytes() {
            return missing;
        }
        let value = Bytes::from(bytes).slice(stored.value);
        Ok((Found::Live(stored.expires, value), Some(seen)))
    }

    /// Writes `key`'s file through a temporary file and a rename.
    fn write(&self, key: &str, value: &[u8], expires: u64) -> io::Result<()> {
        let bytes = Stored::encode(key, expires, value)?;
        let mut temp = match self.temp_file() {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.create_dir()?;
                self.temp_file()?
            }
            other => other?,
        };
        temp.write_all(&bytes)?;
        temp.persist(self.path_of(key)).map_err(|err| err.error)?;
        Ok(())
    }

    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
    }

    /// Creates the directory and its missing parents, owner-only.
    fn create_dir(&self) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir)
    }

    /// Holds the directory's lock until the file is dropped.
    fn lock(&self) -> io::Result<File> {
        let path = self.dir.join(LOCK_FILE);
        let open = || {
            let mut options = fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&path)
        };
        let file = match open() {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.create_dir()?;
                open()?
            }
            other => other?,
        };
        fs4::fs_std::FileExt::lock_exclusive(&file)?;
        Ok(file)
    }

    /// The cache files in the directory (none when it does not exist).
    fn cache_files(&self) -> io::Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().ends_with(SUFFIX) {
                files.push(entry.path());
            }
        }
        Ok(files)
    }

    /// Django's `_cull`, run before each write.
    fn cull(&self) -> io::Result<()> {
        let files = self.cache_files()?;
        let count = files.len() as u64;
        if count < self.culling.max_entries {
            return Ok(());
        }
        let doomed = usize::try_from(self.culling.cull_count(count)).unwrap_or(usize::MAX);
        for path in fastrand::choose_multiple(files, doomed) {
            remove_quietly(&path)?;
        }
        Ok(())
    }

    fn clear(&self, prefix: Option<&str>) -> io::Result<()> {
        for path in self.cache_files()? {
            let belongs = match prefix {
                None => true,
                Some(prefix) => match read_header(&path) {
                    Ok(Some((_, key))) => key.starts_with(prefix.as_bytes()),
                    // A cache file that is not one: garbage, cleared too.
                    Ok(None) => true,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => false,
                    Err(err) => return Err(err),
                },
            };
            if belongs {
                remove_quietly(&path)?;
            }
        }
        Ok(())
    }
}

/// The expiry and key in a cache file's header, or `None` when the file is
/// not a cache file.
fn read_header(path: &Path) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut file = File::open(path)?;
    let mut header = [0; HEADER];
    let mut read = || -> io::Result<Option<(u64, Vec<u8>)>> {
        file.read_exact(&mut header)?;
        let Some((expires, key_len)) = Stored::header(&header) else {
            return Ok(None);
        };
        let mut key = vec![0; key_len];
        file.read_exact(&mut key)?;
        Ok(Some((expires, key)))
    };
    match read() {
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        other => other,
    }
}

/// Removes `path`; a file already gone is fine.
fn remove_quietly(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Removes `path` unless another writer has renamed a new file over it since
/// `seen` was read; returns whether it removed it.
fn remove_if_unchanged(path: &Path, seen: &Metadata) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(path) {
            Ok(now) if now.ino() != seen.ino() || now.dev() != seen.dev() => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = seen;
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

#[async_trait]
impl CacheBackend for FileBackend {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let key = key.to_owned();
        self.blocking("get", move |inner| Ok(inner.read(&key)?.value()))
            .await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        let key = key.to_owned();
        self.blocking("get", move |inner| Ok(inner.read(&key)?.with_ttl()))
            .await
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        self.read_many(keys, Found::with_ttl).await
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let key = key.to_owned();
        self.blocking("set", move |inner| {
            inner.cull()?;
            inner.write(&key, &value, expires_at(expiry))
        })
        .await
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let key = key.to_owned();
        self.blocking("add", move |inner| {
            let _lock = inner.lock()?;
            if let Found::Live(..) = inner.read(&key)? {
                return Ok(false);
            }
            inner.cull()?;
            inner.write(&key, &value, expires_at(expiry))?;
            Ok(true)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.blocking("delete", move |inner| {
            let path = inner.path_of(&key);
            let live = match read_header(&path) {
                Ok(Some((_, stored_key))) if stored_key != key.as_bytes() => return Ok(false),
                Ok(Some((expires, _))) => is_live(expires),
                Ok(None) => false,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(err) => return Err(err),
            };
            match fs::remove_file(&path) {
                Ok(()) => Ok(live),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err),
            }
        })
        .await
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let (key, expected) = (key.to_owned(), expected.to_vec());
        self.blocking("delete_if_equal", move |inner| {
            let _lock = inner.lock()?;
            match inner.read_seen(&key)? {
                (Found::Live(_, value), Some(seen)) if value == expected => {
                    remove_if_unchanged(&inner.path_of(&key), &seen)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let key = key.to_owned();
        self.blocking("touch", move |inner| {
            let _lock = inner.lock()?;
            match inner.read(&key)? {
                Found::Live(_, value) => {
                    inner.write(&key, &value, expires_at(expiry))?;
                    Ok(true)
                }
                Found::Missing => Ok(false),
            }
        })
        .await
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.blocking("has_key", move |inner| {
            Ok(matches!(inner.read(&key)?, Found::Live(..)))
        })
        .await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let key = key.to_owned();
        self.blocking("incr", move |inner| {
            let _lock = inner.lock()?;
            let Found::Live(expires, value) = inner.read(&key)? else {
                return Ok(Err(CacheError::MissingKey { key }));
            };
            let new = match apply_incr(&key, &value, delta) {
                Ok(new) => new,
                Err(err) => return Ok(Err(err)),
            };
            inner.write(&key, new.to_string().as_bytes(), expires)?;
            Ok(Ok(new))
        })
        .await?
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        let prefix = match scope {
            ClearScope::Prefix(prefix) => Some(prefix.to_owned()),
            _ => None,
        };
        self.blocking("clear", move |inner| inner.clear(prefix.as_deref()))
            .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.read_many(keys, Found::value).await
    }

    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        self.blocking("set_many", move |inner| {
            let expires = expires_at(expiry);
            for (key, value) in &entries {
                inner.cull()?;
                inner.write(key, value, expires)?;
            }
            Ok(Vec::new())
        })
        .await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        let paths: Vec<PathBuf> = keys.iter().map(|key| self.path_of(key)).collect();
        self.blocking("delete_many", move |_| {
            for path in &paths {
                remove_quietly(path)?;
            }
            Ok(())
        })
        .await
    }
}

impl fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBackend")
            .field("dir", &self.inner.dir)
            .field("max_entries", &self.inner.culling.max_entries)
            .field("cull_frequency", &self.inner.culling.cull_frequency)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_djangos() {
        let backend = FileBackend::new("/tmp/cache");
        assert_eq!(
            backend.path_of(":1:hello"),
            Path::new("/tmp/cache/95fb86ddcbbe84c9287b42f53f2181fb.djcache")
        );
    }

    #[test]
    fn layout_round_trips_and_rejects_damage() {
        let bytes = Stored::encode(":1:k", 42, b"value").unwrap();
        let stored = Stored::decode(&bytes).unwrap();
        assert_eq!(stored.expires, 42);
        assert_eq!(&bytes[stored.key], b":1:k");
        assert_eq!(&bytes[stored.value], b"value");
        for cut in 0..bytes.len() {
            assert!(
                Stored::decode(&bytes[..cut]).is_none(),
                "truncated at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[HEADER + 5] ^= 1;
        assert!(Stored::decode(&flipped).is_none());
        assert!(Stored::decode(b"garbage bytes that are no cache file").is_none());
    }
}
