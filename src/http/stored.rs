//! A cached response as bytes: a compact, versioned binary layout.
//!
//! ```text
//! "tcr" version(3)        4 bytes  magic and layout version
//! status                  u16      big-endian, as every integer below
//! flags                   u16      bit 0: an age base follows; bit 1: never served stale
//! stored_at               u64      Unix seconds when the entry was made
//! fresh_until             u64      Unix seconds when it stops being fresh
//! stale_while_revalidate  u32      seconds it may then be served while refreshed
//! stale_if_error          u32      seconds it may then be served when the origin fails
//! [age_base]              i64      when the entry's age was 0, in Unix seconds (Age = now - age_base)
//! header count            u16
//!   name length           u16      then the name (lowercase)
//!   value length          u32      then the value
//! extension length        u32      then that many bytes of records:
//!   kind                  u8       1: URL generation, 2: tag version, else skipped
//!   length                u32      then the record
//! body length             u64      then the body, which ends the entry
//! ```
//!
//! A URL generation record is a `u64`; a tag version record is the tag's
//! version key and the version, each as a `u16` length and bytes. Version 3
//! reads version 2 entries (the same layout, with no records).
//!
//! ```text
//! body length             u64      then the body, which ends the entry
//! ```
//!
//! An entry of another layout version is a [`DecodeError`] that says so
//! ([`DecodeError::is_other_version`]): during a rolling deploy, old and new
//! processes each miss the other's entries without deleting them. A body
//! shorter or longer than its recorded length is damage.
//!
//! There is no checksum. Measured on this project's machine (2026-12-01,
//! release build): crc32 costs 39 ns for a 688-byte page and 20 µs for
//! 1 MiB (xxh3: 35 ns and 48 µs), every hit, while a hit otherwise does not
//! touch the body at all. The damage a cache meets is a value cut short
//! (a size limit, a partial write), which the length catches; Redis,
//! memcached, the databases and TCP check their own bytes.
//!
//! Decoding never copies the body: it is the entry the backend returned,
//! advanced past the head ([`Buf::advance`]), so a hit
//! costs one reference count on the entry and no copy. The few small header
//! values are copied out instead of sliced: under concurrent hits on one
//! page, each slice would be one more atomic operation on the entry's shared
//! count, which costs more than copying a few dozen bytes. The extension block is
//! room for what later versions keep beside a response (tags, staleness) that
//! this version can skip. Anything that does not decode (another version,
//! truncated, foreign bytes) is a [`DecodeError`]: the caller treats it as a
//! miss.
//!
//! ```
//! use bytes::Bytes;
//! use http::{HeaderMap, HeaderValue, StatusCode, header};
//! use tower_cache::http::stored::{Freshness, StoredResponse};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
//! let times = Freshness::fresh_for(1_700_000_000, 300);
//! let entry = StoredResponse::encode(StatusCode::OK, &headers, b"<p>hi</p>", &times).unwrap();
//!
//! let decoded = StoredResponse::decode(entry.clone()).unwrap();
//! assert_eq!(decoded.status, StatusCode::OK);
//! assert_eq!(decoded.headers[header::CONTENT_TYPE], "text/html");
//! assert_eq!(decoded.body, "<p>hi</p>");
//! assert_eq!(decoded.times.fresh_until, 1_700_000_300);
//! // The body points into the entry: no copy.
//! assert_eq!(decoded.body.as_ptr(), entry[entry.len() - 9..].as_ptr());
//! ```

use std::fmt;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::tags::TagVersion;

const MAGIC: &[u8; 3] = b"tcr";
/// The layout version this crate writes (it reads this one and version 2).
pub const VERSION: u8 = 3;
/// The older layout this version still reads: the same, without records.
const PREVIOUS_VERSION: u8 = 2;
const RECORD_URL_GENERATION: u8 = 1;
const RECORD_TAG_VERSION: u8 = 2;
const FLAG_AGE_BASE: u16 = 1;
const FLAG_MUST_REVALIDATE: u16 = 2;

/// A response read back from the cache.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers, as stored (hop-by-hop headers and `Content-Length` are not).
    pub headers: HeaderMap,
    /// The body: the backend's bytes, not copied.
    pub body: Bytes,
    /// When it was stored and how long it may be served.
    pub times: Freshness,
    /// The versions of the page's tags when it was stored: a hit is a miss
    /// unless they are all still current ([`tags`](crate::tags)).
    pub tags: Arc<[TagVersion]>,
    /// The generation of the page's header list when it was stored: an entry
    /// found through a header list of another generation (the URL was
    /// purged since) is a miss.
    pub url_generation: Option<u64>,
}

/// When an entry was made and how long it may be served: fresh, then
/// stale (RFC 5861), all in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Freshness {
    /// When the entry was made.
    pub stored_at: u64,
    /// When it stops being fresh.
    pub fresh_until: u64,
    /// Seconds after `fresh_until` during which it may be served while a
    /// refresh runs (`stale-while-revalidate`).
    pub stale_while_revalidate: u32,
    /// Seconds after `fresh_until` during which it may be served when the
    /// origin fails (`stale-if-error`).
    pub stale_if_error: u32,
    /// `Expires` minus `max-age` of the stored response, when it had both:
    /// a hit's `Age` is `now - age_base` (at least 0), as Django computes it.
    /// Under the RFC 9111 policy, `stored_at` less the age the response
    /// arrived with.
    pub age_base: Option<i64>,
    /// Never served stale, not even within `max-stale` (RFC 9111:
    /// `must-revalidate`, `proxy-revalidate`, `s-maxage`, `no-cache`).
    pub must_revalidate: bool,
}

impl Freshness {
    /// Stored at `stored_at`, fresh for `seconds`, with no stale windows.
    pub fn fresh_for(stored_at: u64, seconds: u64) -> Freshness {
        Freshness {
            stored_at,
            fresh_until: stored_at.saturating_add(seconds),
            ..Freshness::default()
        }
    }

    /// Whether the entry is fresh at `now`.
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.fresh_until
    }

    /// Whether `now` is past freshness but within `window` seconds of it.
    pub fn within(&self, now: u64, window: u32) -> bool {
        !self.is_fresh(now) && now < self.fresh_until.saturating_add(u64::from(window))
    }

    /// The entry's age at `now`, in seconds: `now - age_base`, or the time
    /// since it was stored when it has no age base.
    pub fn age_at(&self, now: u64) -> u64 {
        let base = self
            .age_base
            .unwrap_or_else(|| i64::try_from(self.stored_at).unwrap_or(i64::MAX));
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        u64::try_from(now.saturating_sub(base)).unwrap_or(0)
    }

    /// How long past freshness the entry may still be of use (the longer
    /// stale window): the backend keeps it that much longer.
    pub fn stale_window(&self) -> u32 {
        self.stale_while_revalidate.max(self.stale_if_error)
    }
}

/// Why bytes are not a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(&'static str);

/// The reason of a [`DecodeError`] for an entry of another layout version.
const OTHER_VERSION: &str = "another layout version";

impl DecodeError {
    /// Whether the bytes are an entry of another layout version (written by
    /// an older or newer release): not damage, and not to be deleted.
    pub fn is_other_version(&self) -> bool {
        self.0 == OTHER_VERSION
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a cached response: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Why a response cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(&'static str);

impl EncodeError {
    /// Why, in a few words.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response cannot be cached: {}", self.0)
    }
}

impl std::error::Error for EncodeError {}

/// Whether a response header is kept in the cache: not the hop-by-hop ones
/// (RFC 9110 section 7.6.1), nor `Content-Length`, which comes from the body.
pub fn is_stored_header(name: &HeaderName) -> bool {
    use http::header::{
        CONNECTION, CONTENT_LENGTH, PROXY_AUTHENTICATE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
    };
    !(name == CONTENT_LENGTH
        || name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == TE
        || name == TRAILER
        || name == UPGRADE
        || name == PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection")
}

impl StoredResponse {
    /// A response to store or serve: its status, headers, body and times.
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes, times: Freshness) -> Self {
        StoredResponse {
            status,
            headers,
            body,
            times,
            tags: Arc::default(),
            url_generation: None,
        }
    }

    /// The entry for this response, with its tag versions and URL
    /// generation ([`encode`](StoredResponse::encode) writes neither).
    ///
    /// # Errors
    ///
    /// As [`encode`](StoredResponse::encode), and when a tag key or version
    /// is over 64 KiB.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        self.encode_entry(&self.tags, self.url_generation)
    }

    /// The entry for this response, with these tag versions and URL
    /// generation instead of its own.
    pub(crate) fn encode_entry(
        &self,
        tags: &[TagVersion],
        url_generation: Option<u64>,
    ) -> Result<Bytes, EncodeError> {
        let mut records = BytesMut::new();
        if let Some(generation) = url_generation {
            records.put_u8(RECORD_URL_GENERATION);
            records.put_u32(8);
            records.put_u64(generation);
        }
        for tag in tags {
            let short = |len: usize| u16::try_from(len).map_err(|_| EncodeError("tag too long"));
            let (key_len, version_len) = (short(tag.key.len())?, short(tag.version.len())?);
            records.put_u8(RECORD_TAG_VERSION);
            records.put_u32(4 + u32::from(key_len) + u32::from(version_len));
            records.put_u16(key_len);
            records.put_slice(tag.key.as_bytes());
            records.put_u16(version_len);
            records.put_slice(&tag.version);
        }
        encode_with(
            self.status,
            &self.headers,
            &self.body,
            &self.times,
            &records,
        )
    }

    /// The entry for a response: status, the headers that
    /// [`is_stored_header`] keeps, and the body.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when there are more than 65,535 headers or a header
    /// value over 4 GiB.
    pub fn encode(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        times: &Freshness,
    ) -> Result<Bytes, EncodeError> {
        encode_with(status, headers, body, times, &[])
    }

    /// Reads an entry written by [`encode`](StoredResponse::encode), without
    /// copying the body.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for anything that is not an entry of this version.
    pub fn decode(mut entry: Bytes) -> Result<StoredResponse, DecodeError> {
        let mut r = Reader {
            entry: &entry,
            at: 0,
        };
        let Prelude {
            version,
            status,
            times,
            count,
        } = r.prelude()?;
        // Room for what a hit adds (`Age`, a HEAD's `Content-Length`).
        // The count is the entry's word, not a promise: a damaged one must
        // not make the map allocate (or panic) for tens of thousands.
        let mut headers = HeaderMap::with_capacity(count.min(64) + 2);
        for _ in 0..count {
            let len = usize::from(r.u16()?);
            let name =
                HeaderName::from_bytes(r.take(len)?).map_err(|_| DecodeError("bad header name"))?;
            let len = r.u32()? as usize;
            let start = r.at;
            r.take(len)?;
            // A slice of the entry, as the body is: a reference count, not
            // an allocation and a copy per header on every hit.
            let value = HeaderValue::from_maybe_shared(entry.slice(start..start + len))
                .map_err(|_| DecodeError("bad header value"))?;
            headers
                .try_append(name, value)
                .map_err(|_| DecodeError("too many headers"))?;
        }
        let extensions = r.u32()? as usize;
        let records_at = r.at;
        let mut records = Reader {
            entry: r.take(extensions)?,
            at: 0,
        };
        let mut tags = Vec::new();
        let mut url_generation = None;
        while version == VERSION && records.at < records.entry.len() {
            let kind = records.u8()?;
            let len = records.u32()? as usize;
            let record_at = records_at + records.at;
            let mut record = Reader {
                entry: records.take(len)?,
                at: 0,
            };
            match kind {
                RECORD_URL_GENERATION => url_generation = Some(record.u64()?),
                RECORD_TAG_VERSION => {
                    let len = usize::from(record.u16()?);
                    let key = std::str::from_utf8(record.take(len)?)
                        .map_err(|_| DecodeError("bad tag key"))?
                        .to_owned();
                    let len = usize::from(record.u16()?);
                    // A slice of the entry: a reference count, no copy.
                    let start = record_at + record.at;
                    record.take(len)?;
                    let version = entry.slice(start..start + len);
                    tags.push(TagVersion { key, version });
                }
                // A record of a later release that this one can do without.
                _ => {}
            }
        }
        let body_len = r.u64()?;
        // The body is the entry itself, advanced past the head.
        let body_start = r.at;
        if (entry.len() - body_start) as u64 != body_len {
            return Err(DecodeError("body length does not match"));
        }
        entry.advance(body_start);
        let body = entry;
        Ok(StoredResponse {
            status,
            headers,
            body,
            times,
            tags: tags.into(),
            url_generation,
        })
    }
}

/// The entry: the head, the extension `records`, and the body.
fn encode_with(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    times: &Freshness,
    records: &[u8],
) -> Result<Bytes, EncodeError> {
    let kept = || headers.iter().filter(|(name, _)| is_stored_header(name));
    let count =
        u16::try_from(kept().count()).map_err(|_| EncodeError("more than 65535 headers"))?;
    let header_bytes: usize = kept().map(|(n, v)| 6 + n.as_str().len() + v.len()).sum();
    let mut out = BytesMut::with_capacity(
        4 + 2 + 2 + 8 + 8 + 8 + 8 + 2 + header_bytes + 4 + records.len() + 8 + body.len(),
    );
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    out.put_u16(status.as_u16());
    let flag = |on: bool, flag: u16| if on { flag } else { 0 };
    out.put_u16(
        flag(times.age_base.is_some(), FLAG_AGE_BASE)
            | flag(times.must_revalidate, FLAG_MUST_REVALIDATE),
    );
    out.put_u64(times.stored_at);
    out.put_u64(times.fresh_until);
    out.put_u32(times.stale_while_revalidate);
    out.put_u32(times.stale_if_error);
    if let Some(base) = times.age_base {
        out.put_i64(base);
    }
    out.put_u16(count);
    for (name, value) in kept() {
        let name = name.as_str().as_bytes();
        // Header names are short: http caps them far below 64 KiB.
        out.put_u16(u16::try_from(name.len()).map_err(|_| EncodeError("header name too long"))?);
        out.put_slice(name);
        out.put_u32(u32::try_from(value.len()).map_err(|_| EncodeError("header value too long"))?);
        out.put_slice(value.as_bytes());
    }
    out.put_u32(u32::try_from(records.len()).map_err(|_| EncodeError("too many tags"))?);
    out.put_slice(records);
    out.put_u64(body.len() as u64);
    out.put_slice(body);
    Ok(out.freeze())
}

/// About the heap a decoded copy of `entry` holds beyond the entry's own
/// bytes (its header map and the response around it; header values and the
/// body are slices of the entry), for an in-process backend that keeps one
/// beside the entry ([`Memo`](crate::Memo)) to weigh it. 0 for bytes that
/// are not a stored response.
pub(crate) fn decoded_head_size(entry: &[u8]) -> usize {
    /// The response, the map's fixed part and its index.
    const BASE: usize = 256;
    /// A header's bucket in the map, the share of what a hit's stand-ins
    /// add (`Age`, `Content-Length`: the map is kept made ready to serve,
    /// as a clone without spare room), and the copy of a name that is not
    /// a standard one. Measured with `cargo bench --bench memory_bound`.
    const PER_HEADER: usize = 136;
    /// The fewest bytes a stored header takes: its two lengths and a name.
    const HEADER_AT_LEAST: usize = 2 + 4 + 1;
    let mut r = Reader { entry, at: 0 };
    let Ok(prelude) = r.prelude() else {
        return 0;
    };
    // A count the bytes after it cannot hold is damage, which never
    // decodes, so no head is kept: weighing it would make a damaged entry
    // of a few bytes weigh megabytes.
    if prelude.count > (entry.len() - r.at) / HEADER_AT_LEAST {
        return 0;
    }
    BASE + PER_HEADER * prelude.count
}

/// What an entry says before its headers.
struct Prelude {
    version: u8,
    status: StatusCode,
    times: Freshness,
    /// How many headers follow.
    count: usize,
}

struct Reader<'a> {
    entry: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The magic, the version (this one or the previous), the status, the
    /// times and the header count.
    fn prelude(&mut self) -> Result<Prelude, DecodeError> {
        if self.take(3)? != MAGIC {
            return Err(DecodeError("bad magic"));
        }
        let version = self.u8()?;
        if version != VERSION && version != PREVIOUS_VERSION {
            return Err(DecodeError(OTHER_VERSION));
        }
        let status = StatusCode::from_u16(self.u16()?).map_err(|_| DecodeError("bad status"))?;
        let flags = self.u16()?;
        let stored_at = self.u64()?;
        let fresh_until = self.u64()?;
        let stale_while_revalidate = self.u32()?;
        let stale_if_error = self.u32()?;
        let age_base = if flags & FLAG_AGE_BASE != 0 {
            Some(i64::from_be_bytes(self.array()?))
        } else {
            None
        };
        let count = usize::from(self.u16()?);
        Ok(Prelude {
            version,
            status,
            times: Freshness {
                stored_at,
                fresh_until,
                stale_while_revalidate,
                stale_if_error,
                age_base,
                must_revalidate: flags & FLAG_MUST_REVALIDATE != 0,
            },
            count,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.entry.len());
        let end = end.ok_or(DecodeError("truncated"))?;
        let slice = &self.entry[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    fn times() -> Freshness {
        Freshness {
            stored_at: 42,
            fresh_until: 342,
            stale_while_revalidate: 10,
            stale_if_error: 60,
            age_base: Some(-7),
            must_revalidate: true,
        }
    }

    fn sample() -> Bytes {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        headers.insert("x-opaque", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
        StoredResponse::encode(StatusCode::OK, &headers, b"hello", &times()).unwrap()
    }

    #[test]
    fn round_trip_keeps_everything_but_hop_by_hop_headers() {
        let stored = StoredResponse::decode(sample()).unwrap();
        assert_eq!(stored.status, StatusCode::OK);
        assert_eq!(stored.body, "hello");
        assert_eq!(stored.times, times());
        assert_eq!(stored.headers.get_all(header::SET_COOKIE).iter().count(), 2);
        assert_eq!(stored.headers["x-opaque"].as_bytes(), b"\xfe\xff");
        assert!(!stored.headers.contains_key(header::CONTENT_LENGTH));
        assert!(!stored.headers.contains_key(header::CONNECTION));
        assert_eq!(stored.headers.len(), 4);
    }

    #[test]
    fn every_truncation_and_foreign_bytes_are_errors_not_panics() {
        let entry = sample();
        for cut in 0..entry.len() {
            let error = StoredResponse::decode(entry.slice(..cut)).unwrap_err();
            assert!(!error.is_other_version(), "cut at {cut}");
        }
        let mut longer = entry.to_vec();
        longer.push(b'!');
        assert!(StoredResponse::decode(Bytes::from(longer)).is_err());
        assert!(StoredResponse::decode(Bytes::from_static(b"\x80\x05\x95pickled")).is_err());
        let mut bad_status = entry.to_vec();
        bad_status[4..6].copy_from_slice(&1u16.to_be_bytes());
        assert!(StoredResponse::decode(Bytes::from(bad_status)).is_err());
    }

    #[test]
    fn the_decoded_head_size_counts_the_stored_headers_and_ignores_other_bytes() {
        // Four headers are stored (hop-by-hop ones and Content-Length are not),
        // after an age base: the count's offset moves with the flag.
        let with_age_base = sample();
        assert_eq!(decoded_head_size(&with_age_base), 256 + 4 * 136);
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, HeaderValue::from_static("\"v\""));
        let plain = Freshness {
            age_base: None,
            ..times()
        };
        let without = StoredResponse::encode(StatusCode::OK, &headers, b"", &plain).unwrap();
        assert_eq!(decoded_head_size(&without), 256 + 136);
        for other in [
            &b""[..],
            b"tcr",
            b"tcr\x03",
            b"not a page at all",
            b"\x80\x05\x95pickled",
        ] {
            assert_eq!(decoded_head_size(other), 0);
        }
        for cut in 0..with_age_base.len().min(42) {
            assert_eq!(decoded_head_size(&with_age_base[..cut]), 0, "cut at {cut}");
        }
        // A count past what the bytes after it can hold weighs nothing.
        let mut counted = without.to_vec();
        counted[32..34].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(decoded_head_size(&counted), 0);
    }

    /// Found by the `stored_response` fuzz target: a huge header count in a
    /// damaged entry panicked in `HeaderMap::with_capacity`.
    #[test]
    fn a_huge_header_count_is_an_error_not_a_panic() {
        let mut entry = sample().to_vec();
        // magic+version 4, status 2, flags 2, stored_at 8, fresh_until 8,
        // windows 8, age_base 8: the count follows.
        entry[40..42].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(StoredResponse::decode(Bytes::from(entry)).is_err());
    }

    #[test]
    fn other_versions_are_told_apart_from_damage() {
        for version in [1, 4, 255] {
            let mut other = sample().to_vec();
            other[3] = version;
            let error = StoredResponse::decode(Bytes::from(other)).unwrap_err();
            assert!(error.is_other_version(), "version {version}");
        }
    }

    #[test]
    fn tags_and_url_generation_round_trip_and_version_2_still_reads() {
        let mut response = StoredResponse::decode(sample()).unwrap();
        response.url_generation = Some(0xfeed);
        response.tags = vec![
            TagVersion {
                key: "tower_cache.tag.a".into(),
                version: Bytes::from_static(b"0.00ff"),
            },
            TagVersion {
                key: "tower_cache.tag.b".into(),
                version: Bytes::from_static(b"17.1234"),
            },
        ]
        .into();
        let entry = response.to_bytes().unwrap();
        let back = StoredResponse::decode(entry).unwrap();
        assert_eq!(back.tags, response.tags);
        assert_eq!(back.url_generation, Some(0xfeed));
        assert_eq!(back.body, "hello");
        // A version 2 entry (the same layout, written before tags).
        let mut old = sample().to_vec();
        old[3] = 2;
        let old = StoredResponse::decode(Bytes::from(old)).unwrap();
        assert_eq!((old.tags.len(), old.url_generation), (0, None));
        // Every truncation of an entry with records is damage.
        let entry = response.to_bytes().unwrap();
        for cut in 0..entry.len() {
            assert!(
                StoredResponse::decode(entry.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn unknown_records_are_skipped() {
        let entry = StoredResponse::encode(
            StatusCode::OK,
            &HeaderMap::new(),
            b"body",
            &Freshness::fresh_for(1, 1),
        )
        .unwrap();
        // Before the body: the extension length (0) and the body length.
        let head = entry.len() - 4 - 8 - 4;
        let mut with_ext = entry[..head].to_vec();
        with_ext.extend_from_slice(&8u32.to_be_bytes());
        with_ext.push(9); // a kind of record this version does not know
        with_ext.extend_from_slice(&3u32.to_be_bytes());
        with_ext.extend_from_slice(b"xyz");
        with_ext.extend_from_slice(&4u64.to_be_bytes());
        with_ext.extend_from_slice(b"body");
        let stored = StoredResponse::decode(Bytes::from(with_ext)).unwrap();
        assert_eq!(stored.body, "body");
    }

    #[test]
    fn freshness_windows() {
        let t = times();
        assert!(t.is_fresh(341));
        assert!(!t.is_fresh(342));
        assert!(t.within(342, t.stale_while_revalidate));
        assert!(!t.within(352, t.stale_while_revalidate));
        assert!(t.within(352, t.stale_if_error));
        assert!(!t.within(341, t.stale_if_error), "fresh is not stale");
        assert_eq!(t.stale_window(), 60);
    }
}
