//! [`PageKeys`]: the URL hash and page key of the pages a layer found, by
//! the request line and `Host` they were asked with, so that the next hit
//! on a page neither validates its host, nor hashes its URL, nor makes its
//! key again.
//!
//! What a request's URL hash and plain page key are depends only on its
//! scheme (as the layer reads it), its `Host` header, its URI, the layer's
//! fixed configuration and the cache's key function, prefix and version:
//! a request that names the same, byte for byte, gets the same. Only
//! requests whose host the layer allows and whose page was found are
//! noted, so a flood of made-up URLs (misses) does not churn the table, and
//! its size is bounded in bytes: past the bound it starts again, empty.

use std::sync::{Arc, RwLock};

use hashbrown::HashTable;
use http::{HeaderMap, HeaderValue, Uri};

use crate::cache::Cache;
use crate::http::key::Md5Hex;
use crate::http::request_fields::RequestFields;
use crate::key::MadeKey;

/// The most bytes of request lines and keys kept per layer, about a
/// thousand pages with long URLs.
const MOST_BYTES: usize = 256 * 1024;

/// The longest request target noted: longer ones are rare on hot pages,
/// and each would take a large share of the bound.
const LONGEST_TARGET: usize = 512;

/// What identifies a request's page key: its scheme, its one `Host`
/// header, and its URI's authority and path and query, as sent.
pub(crate) struct Asked<'a> {
    scheme: &'a str,
    host: Option<&'a [u8]>,
    authority: Option<&'a str>,
    target: &'a str,
}

impl<'a> Asked<'a> {
    /// The request's, or `None` when it sends `Host` more than once (never
    /// cached) or its target is too long to note.
    pub(crate) fn of(scheme: &'a str, uri: &'a Uri, headers: &'a HeaderMap) -> Option<Asked<'a>> {
        let (fields, host) = RequestFields::scan(headers);
        Asked::scanned(scheme, uri, &fields, host)
    }

    /// [`of`](Asked::of), from the request's [`RequestFields::scan`].
    pub(crate) fn scanned(
        scheme: &'a str,
        uri: &'a Uri,
        fields: &RequestFields,
        host: Option<&'a HeaderValue>,
    ) -> Option<Asked<'a>> {
        if fields.several_hosts {
            return None;
        }
        let target = uri.path_and_query().map_or("", |target| target.as_str());
        (target.len() <= LONGEST_TARGET).then(|| Asked {
            scheme,
            host: host.map(HeaderValue::as_bytes),
            authority: uri.authority().map(http::uri::Authority::as_str),
            target,
        })
    }

    fn hash(&self, state: &foldhash::fast::FixedState) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut hasher = state.build_hasher();
        self.scheme.hash(&mut hasher);
        self.host.hash(&mut hasher);
        self.authority.hash(&mut hasher);
        self.target.hash(&mut hasher);
        hasher.finish()
    }

    fn len(&self) -> usize {
        self.scheme.len()
            + self.host.map_or(0, <[u8]>::len)
            + self.authority.map_or(0, str::len)
            + self.target.len()
    }
}

/// A noted page: what it was asked with, and its URL hash and plain key.
struct Known {
    hash: u64,
    scheme: Box<str>,
    host: Option<Box<[u8]>>,
    authority: Option<Box<str>>,
    target: Box<str>,
    /// The cache the key was made for ([`Cache::identity`]).
    cache: (usize, i64),
    /// What it counts for against [`MOST_BYTES`].
    bytes: usize,
    url: Md5Hex,
    key: Arc<MadeKey>,
}

impl Known {
    fn is(&self, asked: &Asked<'_>) -> bool {
        *self.target == *asked.target
            && self.host.as_deref() == asked.host
            && self.authority.as_deref() == asked.authority
            && *self.scheme == *asked.scheme
    }
}

#[derive(Default)]
struct Table {
    known: HashTable<Known>,
    bytes: usize,
}

/// The URL hashes and plain page keys of the pages a layer found.
pub(crate) struct PageKeys {
    table: RwLock<Table>,
    state: foldhash::fast::FixedState,
}

impl Default for PageKeys {
    fn default() -> PageKeys {
        PageKeys {
            table: RwLock::default(),
            // Seeded per layer: a client cannot aim requests at one bucket.
            state: foldhash::fast::FixedState::with_seed(fastrand::u64(..)),
        }
    }
}

impl Clone for PageKeys {
    /// An empty table: a layer configured anew makes its own keys.
    fn clone(&self) -> PageKeys {
        PageKeys::default()
    }
}

impl std::fmt::Debug for PageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageKeys")
            .field("pages", &self.read().known.len())
            .finish()
    }
}

impl PageKeys {
    /// The URL hash and plain page key in `cache` of a page found before
    /// with a request that asked what `asked` asks.
    pub(crate) fn get(&self, asked: &Asked<'_>, cache: &Cache) -> Option<(Md5Hex, Arc<MadeKey>)> {
        let hash = asked.hash(&self.state);
        let table = self.read();
        let known = table.known.find(hash, |known| known.is(asked))?;
        (known.cache == cache.identity()).then(|| (known.url, known.key.clone()))
    }

    /// Notes the URL hash and plain key in `cache` of a page found with a
    /// request that asked `asked`.
    pub(crate) fn note(&self, asked: &Asked<'_>, cache: &Cache, url: Md5Hex, key: &MadeKey) {
        let hash = asked.hash(&self.state);
        let bytes = asked.len() + key.made().len() + std::mem::size_of::<Known>();
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Ok(entry) = table.known.find_entry(hash, |known| known.is(asked)) {
            // Made for another cache, or noted by a concurrent hit: replaced.
            let (old, _) = entry.remove();
            table.bytes -= old.bytes;
        }
        if table.bytes + bytes > MOST_BYTES {
            *table = Table::default();
        }
        let known = Known {
            hash,
            scheme: asked.scheme.into(),
            host: asked.host.map(Box::from),
            authority: asked.authority.map(Box::from),
            target: asked.target.into(),
            cache: cache.identity(),
            bytes,
            url,
            key: Arc::new(key.clone()),
        };
        table.known.insert_unique(hash, known, |known| known.hash);
        table.bytes += bytes;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::MemoryBackend;

    fn request(uri: &str, hosts: &[&str]) -> (Uri, HeaderMap) {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(http::header::HOST, host.parse().unwrap());
        }
        (uri.parse().unwrap(), headers)
    }

    fn key(text: &str) -> MadeKey {
        MadeKey::Prefixed {
            made: format!(":1:{text}"),
            at: 3,
        }
    }

    #[test]
    fn a_noted_page_is_known_to_the_same_request_only() {
        let (keys, cache) = (
            PageKeys::default(),
            Cache::new(Arc::new(MemoryBackend::new())),
        );
        let (uri, headers) = request("/a?x=1", &["example.com"]);
        let asked = Asked::of("http", &uri, &headers).unwrap();
        assert!(keys.get(&asked, &cache).is_none());
        let url = Md5Hex::digest(b"http://example.com/a?x=1");
        keys.note(&asked, &cache, url, &key("page"));
        let (known_url, known_key) = keys.get(&asked, &cache).unwrap();
        assert_eq!((known_url, known_key.made()), (url, ":1:page"));
        // Anything else that goes into the URL or the key: unknown.
        let others = [
            ("https", request("/a?x=1", &["example.com"])),
            ("http", request("/a?x=2", &["example.com"])),
            ("http", request("/a", &["example.com"])),
            ("http", request("/a?x=1", &["example.org"])),
            ("http", request("/a?x=1", &[])),
            (
                "http",
                request("http://example.com/a?x=1", &["example.com"]),
            ),
        ];
        for (scheme, (uri, headers)) in &others {
            let other = Asked::of(scheme, uri, headers).unwrap();
            assert!(
                keys.get(&other, &cache).is_none(),
                "{scheme} {uri} {headers:?}"
            );
        }
        // Another cache (other key settings or version): unknown.
        let other_cache = Cache::new(Arc::new(MemoryBackend::new()));
        assert!(keys.get(&asked, &other_cache).is_none());
        assert!(keys.get(&asked, &cache.with_version(2)).is_none());
        // Noted again for it: replaced, not added.
        keys.note(&asked, &other_cache, url, &key("other"));
        assert!(keys.get(&asked, &cache).is_none());
        assert_eq!(keys.get(&asked, &other_cache).unwrap().1.made(), ":1:other");
        assert_eq!(keys.read().known.len(), 1);
    }

    #[test]
    fn requests_that_are_never_cached_or_too_long_are_not_noted() {
        let (uri, headers) = request("/", &["a.example", "b.example"]);
        assert!(Asked::of("http", &uri, &headers).is_none());
        let long = format!("/{}", "x".repeat(LONGEST_TARGET));
        let (uri, headers) = request(&long, &["example.com"]);
        assert!(Asked::of("http", &uri, &headers).is_none());
    }

    #[test]
    fn past_its_bound_the_table_starts_again() {
        let (keys, cache) = (
            PageKeys::default(),
            Cache::new(Arc::new(MemoryBackend::new())),
        );
        let url = Md5Hex::digest(b"");
        let mut noted = 0;
        for i in 0.. {
            let (uri, headers) = request(&format!("/page/{i}"), &["example.com"]);
            let asked = Asked::of("http", &uri, &headers).unwrap();
            keys.note(&asked, &cache, url, &key(&i.to_string()));
            let table = keys.read();
            assert!(table.bytes <= MOST_BYTES);
            if table.known.len() < noted {
                assert_eq!(table.known.len(), 1);
                break;
            }
            noted = table.known.len();
        }
        assert!(noted > 1000, "{noted}");
    }
}
