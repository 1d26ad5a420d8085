//! Compression at rest for a shared backend: values of at least a threshold
//! are stored zstd-compressed when that makes them smaller, and read back
//! whole.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};

use super::compression::invalid;
use crate::backend::{CacheBackend, ClearScope, DynBackend, Expiry};
use crate::error::{CacheError, Result};

/// The envelope of a compressed value: this, the original length (u32, big
/// endian), then one zstd frame.
const COMPRESSED: &[u8; 5] = b"\0tcz\x01";

/// The envelope of a value stored as it is that would otherwise read as
/// one of these envelopes: this, then the value.
const ESCAPED: &[u8; 5] = b"\0tcr\x01";

/// The largest original length a compressed value may claim: a value that
/// claims more is damaged (or hostile), not an allocation to make.
const LARGEST_VALUE: usize = 1 << 30;

/// A shared backend whose values of at least `min_bytes` are stored
/// zstd-compressed, when that makes them smaller; smaller values, values
/// that do not shrink, and counters are stored as they are. Reads give back
/// the original bytes, whichever way they were stored, so turning
/// compression on (or off) over a cache that holds values is safe: a value
/// is read as it was written.
///
/// Made from a URL with `compress_min_bytes` (and `compress_level`, 1 to 22,
/// 3 by default) on any shared backend: `redis://host?compress_min_bytes=1KiB`.
/// With an L1 (`l1_max_bytes`), the L1 holds values uncompressed: only the
/// shared backend's copies are compressed.
///
/// **Costs.** A stored value above the threshold is compressed once per
/// write; every read of it is decompressed (a new buffer the size of the
/// value). What it saves is the shared backend's memory and the bytes on
/// the wire. The README's "Compression at rest" section has the figures for
/// the demo's page on Redis.
///
/// **Compatibility.** A compressed value starts with a 5-byte envelope that
/// other clients do not know: a Django app sharing the cache reads them as
/// garbage. Leave compression off for keys shared with another client. A
/// value stored by another client is read as it is (unless it starts with
/// one of the envelopes, `\0tcz\x01` or `\0tcr\x01`). A value that claims to
/// be compressed and does not decompress, to the length its frame declares
/// and with the content checksum the frame carries, is an error, never
/// bytes.
///
/// `delete_if_equal` compares the stored bytes with `expected` stored the
/// same way: compression is deterministic for a given zstd version and
/// level, so the comparison holds between instances of one build.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = tower_cache::Cache::from_url("redis://127.0.0.1:6379?compress_min_bytes=1KiB").await?;
/// cache.set("page", &"<html>...</html>".repeat(200), tower_cache::Timeout::Default).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CompressedBackend {
    inner: DynBackend,
    min_bytes: usize,
    level: i32,
}

/// Why a value that claims to be compressed could not be read.
#[derive(Debug, thiserror::Error)]
#[error("a compressed value could not be decompressed: {0}")]
struct Damaged(String);

impl CompressedBackend {
    /// zstd's level when none is given: its own default, fast to compress
    /// and several times faster to decompress than to compress.
    pub const DEFAULT_LEVEL: i32 = 3;

    /// The smallest threshold accepted: below it a frame's overhead eats
    /// the gain, and counters (decimal text, which `incr` updates on the
    /// server) must stay as they are.
    pub const SMALLEST_THRESHOLD: usize = 64;

    /// `inner` with values of at least `min_bytes` compressed at zstd's
    /// default level.
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] when `min_bytes` is below
    /// [`SMALLEST_THRESHOLD`](CompressedBackend::SMALLEST_THRESHOLD).
    pub fn new(inner: DynBackend, min_bytes: usize) -> Result<CompressedBackend> {
        CompressedBackend::with_level(inner, min_bytes, CompressedBackend::DEFAULT_LEVEL)
    }

    /// The same at zstd `level` (1 to 22; higher is smaller and slower to
    /// write, and reads as fast).
    ///
    /// # Errors
    ///
    /// [`CacheError::Config`] when `min_bytes` is below
    /// [`SMALLEST_THRESHOLD`](CompressedBackend::SMALLEST_THRESHOLD) or `level` is out of range.
    pub fn with_level(
        inner: DynBackend,
        min_bytes: usize,
        level: i32,
    ) -> Result<CompressedBackend> {
        if min_bytes < CompressedBackend::SMALLEST_THRESHOLD {
            return Err(invalid(
                "compress_min_bytes",
                min_bytes.to_string(),
                format!("at least {} bytes", CompressedBackend::SMALLEST_THRESHOLD),
            ));
        }
        if !zstd::compression_level_range().contains(&level) || level < 1 {
            return Err(invalid(
                "compress_level",
                level.to_string(),
                "a zstd level from 1 to 22".into(),
            ));
        }
        Ok(CompressedBackend {
            inner,
            min_bytes,
            level,
        })
    }

    /// The backend the values are stored in.
    pub fn inner(&self) -> &DynBackend {
        &self.inner
    }

    /// How `value` is stored: compressed when it is large enough and
    /// shrinks, escaped when it would read as an envelope, else as it is.
    fn stored(&self, value: Bytes) -> Bytes {
        if value.len() >= self.min_bytes && value.len() <= LARGEST_VALUE {
            if let Ok(frame) = compress(&value, self.level) {
                if frame.len() + COMPRESSED.len() + 4 < value.len() {
                    let mut out = BytesMut::with_capacity(COMPRESSED.len() + 4 + frame.len());
                    out.put_slice(COMPRESSED);
                    // In range: at most LARGEST_VALUE.
                    out.put_u32(value.len() as u32);
                    out.put_slice(&frame);
                    return out.freeze();
                }
            }
        }
        if value.starts_with(COMPRESSED) || value.starts_with(ESCAPED) {
            let mut out = BytesMut::with_capacity(ESCAPED.len() + value.len());
            out.put_slice(ESCAPED);
            out.put_slice(&value);
            return out.freeze();
        }
        value
    }

    /// The original bytes of a stored value.
    fn original(&self, operation: &'static str, stored: Bytes) -> Result<Bytes> {
        if let Some(rest) = stored.strip_prefix(ESCAPED.as_slice()) {
            return Ok(stored.slice(stored.len() - rest.len()..));
        }
        let Some(rest) = stored.strip_prefix(COMPRESSED.as_slice()) else {
            return Ok(stored);
        };
        let damaged = |why: String| CacheError::backend(self.inner.name(), operation, Damaged(why));
        let (length, frame) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| damaged("no length".into()))?;
        let length = u32::from_be_bytes(*length) as usize;
        if length > LARGEST_VALUE {
            return Err(damaged(format!("it claims {length} bytes")));
        }
        // The frame must say the same before room is made for it (this
        // crate's frames carry their size).
        match zstd::zstd_safe::get_frame_content_size(frame) {
            Ok(Some(declared)) if declared == length as u64 => {}
            _ => return Err(damaged("its frame does not declare its length".into())),
        }
        let value = decompress(frame, length).map_err(|e| damaged(e.to_string()))?;
        if value.len() != length {
            return Err(damaged(format!(
                "{} bytes where {length} were stored",
                value.len()
            )));
        }
        Ok(Bytes::from(value))
    }

    fn original_with_ttl(
        &self,
        operation: &'static str,
        found: Option<(Bytes, Option<Duration>)>,
    ) -> Result<Option<(Bytes, Option<Duration>)>> {
        found
            .map(|(value, ttl)| Ok((self.original(operation, value)?, ttl)))
            .transpose()
    }
}

thread_local! {
    // zstd's contexts, one per thread and kept: making one per call costs
    // more than compressing a page (a measured 2.5x on 4 KiB hits).
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// One zstd frame of `value` at `level`, with this thread's context.
fn compress(value: &[u8], level: i32) -> io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(made_at, _)| *made_at != level) {
            let mut compressor = zstd::bulk::Compressor::new(level)?;
            // A checksum of the content in the frame (4 bytes): damage is
            // then an error on decompression, not other bytes. It costs a
            // fraction of the decompression itself.
            compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
            *slot = Some((level, compressor));
        }
        let (_, compressor) = slot.as_mut().expect("made above");
        compressor.compress(value)
    })
}

/// The content of one zstd frame, at most `capacity` bytes, with this
/// thread's context.
fn decompress(frame: &[u8], capacity: usize) -> io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut()
            .expect("made above")
            .decompress(frame, capacity)
    })
}

#[async_trait]
impl CacheBackend for CompressedBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn reads_are_round_trips(&self) -> bool {
        self.inner.reads_are_round_trips()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner
            .get(key)
            .await?
            .map(|value| self.original("get", value))
            .transpose()
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.inner.set(key, self.stored(value), expiry).await
    }

    async fn add(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.inner.add(key, self.stored(value), expiry).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        self.inner.touch(key, expiry).await
    }

    async fn has_key(&self, key: &str) -> Result<bool> {
        self.inner.has_key(key).await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        // Counters are never compressed (they are below the threshold).
        self.inner.incr(key, delta).await
    }

    async fn delete_if_equal(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let stored = self.stored(Bytes::copy_from_slice(expected));
        self.inner.delete_if_equal(key, &stored).await
    }

    async fn clear(&self, scope: ClearScope<'_>) -> Result<()> {
        self.inner.clear(scope).await
    }

    async fn get_with_ttl(&self, key: &str) -> Result<Option<(Bytes, Option<Duration>)>> {
        let found = self.inner.get_with_ttl(key).await?;
        self.original_with_ttl("get", found)
    }

    async fn get_many_with_ttl(
        &self,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        self.inner
            .get_many_with_ttl(keys)
            .await?
            .into_iter()
            .map(|found| self.original_with_ttl("get_many", found))
            .collect()
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.inner
            .get_many(keys)
            .await?
            .into_iter()
            .map(|found| found.map(|v| self.original("get_many", v)).transpose())
            .collect()
    }

    async fn set_many(&self, entries: Vec<(String, Bytes)>, expiry: Expiry) -> Result<Vec<String>> {
        let entries = entries
            .into_iter()
            .map(|(key, value)| (key, self.stored(value)))
            .collect();
        self.inner.set_many(entries, expiry).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<()> {
        self.inner.delete_many(keys).await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::MemoryBackend;
    use std::sync::Arc;

    fn compressed(min_bytes: usize) -> (CompressedBackend, MemoryBackend) {
        let memory = MemoryBackend::new();
        let backend = CompressedBackend::new(Arc::new(memory.clone()), min_bytes).unwrap();
        (backend, memory)
    }

    const PAGE: &[u8] = b"<html><body><p>the same words, again and again</p></body></html>";

    #[tokio::test]
    async fn large_values_are_stored_compressed_and_read_back_whole() {
        let (backend, memory) = compressed(64);
        let page = Bytes::from(PAGE.repeat(20));
        backend.set("k", page.clone(), None).await.unwrap();
        let stored = memory.get("k").await.unwrap().unwrap();
        assert!(stored.starts_with(COMPRESSED));
        assert!(stored.len() < page.len() / 5, "{} bytes", stored.len());
        assert_eq!(backend.get("k").await.unwrap().unwrap(), page);
        let (value, _) = backend.get_with_ttl("k").await.unwrap().unwrap();
        assert_eq!(value, page);
        let many = backend.get_many(&["k", "none"]).await.unwrap();
        assert_eq!(many, vec![Some(page.clone()), None]);
        assert_eq!(
            backend.get_many_with_ttl(&["k"]).await.unwrap()[0]
                .as_ref()
                .unwrap()
                .0,
            page
        );
        assert!(backend.delete_if_equal("k", &page).await.unwrap());
        assert!(!backend.has_key("k").await.unwrap());
    }

    #[tokio::test]
    async fn small_values_counters_and_incompressible_values_stay_as_they_are() {
        let (backend, memory) = compressed(64);
        backend
            .set("small", Bytes::from_static(b"tiny"), None)
            .await
            .unwrap();
        assert_eq!(memory.get("small").await.unwrap().unwrap(), "tiny");
        backend
            .set("n", Bytes::from_static(b"41"), None)
            .await
            .unwrap();
        assert_eq!(backend.incr("n", 1).await.unwrap(), 42);
        // Random bytes (xorshift) do not shrink.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let noise = Bytes::from(noise);
        backend.set("noise", noise.clone(), None).await.unwrap();
        assert_eq!(memory.get("noise").await.unwrap().unwrap(), noise);
        assert_eq!(backend.get("noise").await.unwrap().unwrap(), noise);
    }

    #[tokio::test]
    async fn values_that_look_like_envelopes_are_escaped() {
        let (backend, memory) = compressed(64);
        for raw in [
            &b"\0tcz\x01"[..],
            b"\0tcr\x01 and more",
            b"\0tcz\x01\0\0\0\x09zz",
        ] {
            let value = Bytes::copy_from_slice(raw);
            backend.set("k", value.clone(), None).await.unwrap();
            assert!(memory.get("k").await.unwrap().unwrap().starts_with(ESCAPED));
            assert_eq!(backend.get("k").await.unwrap().unwrap(), value);
        }
        // Written by a client that does not compress: read as it is.
        memory
            .set("plain", Bytes::from(PAGE.repeat(3)), None)
            .await
            .unwrap();
        assert_eq!(backend.get("plain").await.unwrap().unwrap(), PAGE.repeat(3));
    }

    #[tokio::test]
    async fn a_damaged_compressed_value_is_an_error() {
        let (backend, memory) = compressed(64);
        let mut huge = COMPRESSED.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let mut short = COMPRESSED.to_vec();
        short.extend_from_slice(&[0, 0, 0, 100]);
        short.extend_from_slice(&compress(b"only ten b", 3).unwrap());
        // The right length and a frame that says so, whose content is junk
        // (its checksum tells).
        let mut corrupt = COMPRESSED.to_vec();
        corrupt.extend_from_slice(&[0, 0, 0, 10]);
        let mut frame = compress(b"only ten b", 3).unwrap();
        let last = frame.len() - 1;
        frame[last - 3..=last].copy_from_slice(b"junk");
        corrupt.extend_from_slice(&frame);
        for damaged in [
            COMPRESSED.to_vec(),
            huge,
            short,
            corrupt,
            [&COMPRESSED[..], b"\0\0\0\x05junk"].concat(),
        ] {
            memory
                .set("k", Bytes::from(damaged.clone()), None)
                .await
                .unwrap();
            let err = backend.get("k").await.unwrap_err();
            assert!(err.to_string().contains("get"), "{err}");
        }
    }

    #[test]
    fn thresholds_and_levels_are_checked() {
        let memory: DynBackend = Arc::new(MemoryBackend::new());
        assert!(CompressedBackend::new(memory.clone(), 63).is_err());
        assert!(CompressedBackend::with_level(memory.clone(), 64, 0).is_err());
        assert!(CompressedBackend::with_level(memory.clone(), 64, 23).is_err());
        assert!(CompressedBackend::with_level(memory, 64, 19).is_ok());
    }
}
