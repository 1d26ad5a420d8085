//! [`Invalidator`]: purging what a layer stored, by URL or by tag, from
//! code or through the [`PurgeService`](super::PurgeService).

use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use super::TARGET;
use super::lookup::empty_vary;
use super::settings::Settings;
use crate::cache::Cache;
use crate::error::{ConfigError, Result};
use crate::http::key::{Md5Hex, header_key, page_key, url_hash};
use crate::registry::Caches;

/// Purges pages that a layer stored: every page of a URL, or every page
/// that carried a tag. Get one from the layer's configuration
/// ([`CachePageLayer::invalidator`](super::CachePageLayer::invalidator),
/// [`SiteCache::invalidator`](super::SiteCache::invalidator)); it uses the
/// layer's cache and key prefix. A purge is seen by every app instance that
/// shares the cache.
///
/// ```
/// use std::time::Duration;
/// use tower_cache::middleware::cache_page;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let cache = tower_cache::Cache::from_url("memory://").await?;
/// let layer = cache_page(Duration::from_secs(600)).cache(cache);
/// let invalidator = layer.invalidator();
/// // ... the router uses `layer`; after an edit:
/// invalidator.invalidate_url("https://shop.example/products/42").await?;
/// invalidator.invalidate_tags(["product:42"]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Invalidator {
    settings: Arc<Settings>,
}

impl Invalidator {
    pub(crate) fn new(settings: Arc<Settings>) -> Invalidator {
        Invalidator { settings }
    }

    async fn cache(&self) -> Result<&Cache> {
        if let Some(cache) = self.settings.cache().await {
            return Ok(cache);
        }
        let reason = match Caches::global().await {
            Err(error) => error.to_string(),
            Ok(_) => "unknown".to_owned(),
        };
        Err(ConfigError::NoDefaultCache { reason }.into())
    }

    /// Makes every page stored with one of `tags` a miss: [`Cache::invalidate_tags`]
    /// on the layer's cache (one `set_many`).
    ///
    /// # Errors
    ///
    /// The backend's error, or the default cache's configuration error.
    pub async fn invalidate_tags<I, S>(&self, tags: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let tags: Vec<S> = tags.into_iter().collect();
        self.cache().await?.invalidate_tags(&tags).await?;
        self.settings.metrics.purged("tag", tags.len());
        Ok(())
    }

    /// Makes every entry of `url` a miss: both schemes (`http` and `https`),
    /// GET and HEAD, and every `Vary` variant (one `delete_many` of six
    /// keys: the header lists and the plain entries; the variants become
    /// unreachable because they were stored through a header list that is
    /// gone, see [`VaryHeaders::encode`](crate::http::key::VaryHeaders::encode)).
    ///
    /// `url` is absolute (`https://shop.example/products/42?page=2`); its
    /// host (with the port, if clients send one), path and query must be
    /// as clients send them: the query is part of the key, in its order.
    /// Pages keyed with a [`key_suffix`](super::CachePageLayer::key_suffix)
    /// (a language, a time zone) are purged for the empty suffix only:
    /// purge those by tag.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidOption`] when `url` is not an absolute `http` or
    /// `https` URL with a valid host; the backend's error.
    pub async fn invalidate_url(&self, url: &str) -> Result<()> {
        let invalid = |reason: &str| ConfigError::InvalidOption {
            backend: "http",
            option: "url".into(),
            value: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URI"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(invalid("not an absolute http or https URL").into());
        }
        self.purge(&uri, &HeaderMap::new())
            .await?
            .ok_or_else(|| invalid("no valid host").into())
    }

    /// Purges the page a request for `uri` with `headers` is keyed under
    /// (its `Host`, or the URI's authority), in both schemes; `None` when
    /// it has no valid host.
    pub(crate) async fn purge(&self, uri: &Uri, headers: &HeaderMap) -> Result<Option<()>> {
        let settings = &self.settings;
        let mut keys = Vec::with_capacity(6);
        for scheme in ["http", "https"] {
            let Some(url) = url_hash(scheme, uri, headers) else {
                return Ok(None);
            };
            keys.extend(url_keys(&settings.key_prefix, &url));
        }
        let cache = self.cache().await?;
        cache.delete_many(&keys).await?;
        self.settings.metrics.purged("url", 1);
        tracing::debug!(target: TARGET, uri = %uri, "purged a URL");
        Ok(Some(()))
    }
}

/// The keys a URL's entries are reached through: its header list (every
/// variant is found through it) and its plain GET and HEAD entries (the
/// GET one is read before the list).
fn url_keys(prefix: &str, url: &Md5Hex) -> [String; 3] {
    let plain = empty_vary();
    [
        header_key(prefix, url, ""),
        page_key(prefix, &Method::GET, url, &plain, ""),
        page_key(prefix, &Method::HEAD, url, &plain, ""),
    ]
}

/// A request with an unsafe method (not GET, HEAD, OPTIONS or TRACE) under
/// the RFC 9111 policy: once it has a non-error response, the URLs it may
/// have changed are purged (section 4.4): its own, and those of the
/// response's `Location` and `Content-Location` on the same host.
#[derive(Debug)]
pub(crate) struct UnsafeRequest {
    invalidator: Invalidator,
    uri: Uri,
    /// The request's `Host`, which keys its pages.
    host: HeaderMap,
}

impl UnsafeRequest {
    /// The purge to make after `request`, if it is unsafe and the layer
    /// follows RFC 9111.
    pub(crate) fn of<B>(settings: &Arc<Settings>, request: &http::Request<B>) -> Option<Self> {
        settings.policy.rfc9111_rules()?;
        if matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        ) {
            return None;
        }
        let mut host = HeaderMap::new();
        if let Some(value) = request.headers().get(http::header::HOST) {
            host.insert(http::header::HOST, value.clone());
        }
        Some(UnsafeRequest {
            invalidator: Invalidator::new(settings.clone()),
            uri: request.uri().clone(),
            host,
        })
    }

    /// The purge for `response`: `None` for an error (4xx, 5xx) or an
    /// interim status, which changed nothing.
    pub(crate) fn after<B>(
        self,
        response: &http::Response<B>,
    ) -> Option<super::future::BoxFuture<()>> {
        let status = response.status();
        if !(status.is_success() || status.is_redirection()) {
            return None;
        }
        let mut targets = vec![self.uri.clone()];
        for field in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
            if let Some(uri) = response
                .headers()
                .get(&field)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| self.same_origin(value))
            {
                targets.push(uri);
            }
        }
        Some(Box::pin(async move {
            for uri in targets {
                if let Err(error) = self.invalidator.purge(&uri, &self.host).await {
                    tracing::warn!(target: TARGET, uri = %uri, error = &error as &dyn std::error::Error,
                        "could not purge a URL after an unsafe request");
                }
            }
        }))
    }

    /// `reference` resolved against the request's URL, as a path and query
    /// to key with the request's host; `None` for another host.
    fn same_origin(&self, reference: &str) -> Option<Uri> {
        let host = self
            .host
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.uri.authority().map(|a| a.as_str()))?;
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let base = url::Url::parse(&format!("http://{host}{path}")).ok()?;
        let target = base.join(reference).ok()?;
        let same = target.host_str() == base.host_str() && target.port() == base.port();
        if !same || !matches!(target.scheme(), "http" | "https") {
            return None;
        }
        let mut path = target.path().to_owned();
        if let Some(query) = target.query() {
            path.push('?');
            path.push_str(query);
        }
        path.parse().ok()
    }
}
