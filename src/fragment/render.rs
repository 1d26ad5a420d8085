//! The Rust API for cached fragments: `cache.fragment(name, vary_on)`.

use std::fmt::Display;
use std::future::Future;

use bytes::Bytes;

use super::key::{KeyFormat, make_template_fragment_key_with};
use crate::Cache;
use crate::timeout::Timeout;

/// One cached fragment of a page: made by [`Cache::fragment`].
///
/// Rendering falls back to the renderer whenever the cache fails (a backend
/// outage, a corrupt entry): a fragment cache never fails a page. Failures are
/// logged with `tracing` at `warn`.
#[must_use]
#[derive(Debug, Clone)]
pub struct Fragment<'a> {
    cache: &'a Cache,
    name: String,
    vary_on: Vec<String>,
    timeout: Timeout,
    format: KeyFormat,
}

impl Cache {
    /// A template fragment of this cache, named `name` and varying on the
    /// text of each `vary_on` value (Django's `{% cache timeout name vary_on... %}`).
    ///
    /// See the [`fragment`](crate::fragment) module for an example.
    pub fn fragment<I>(&self, name: &str, vary_on: I) -> Fragment<'_>
    where
        I: IntoIterator,
        I::Item: Display,
    {
        Fragment {
            cache: self,
            name: name.to_owned(),
            vary_on: vary_on.into_iter().map(|v| v.to_string()).collect(),
            timeout: Timeout::Default,
            format: KeyFormat::default(),
        }
    }
}

impl Fragment<'_> {
    /// How long the rendered fragment is kept (default: the cache's default).
    pub fn timeout(mut self, timeout: impl Into<Timeout>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// The key layout (default Django 6.1's).
    pub fn key_format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self
    }

    /// The fragment's key before the cache's prefix and version are added:
    /// what [`make_template_fragment_key`](super::make_template_fragment_key) gives.
    pub fn key(&self) -> String {
        make_template_fragment_key_with(self.format, &self.name, &self.vary_on)
    }

    /// The cached text, or `render`'s, which is then stored.
    pub async fn get_or_render<F, Fut>(self, render: F) -> String
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = String>,
    {
        match self
            .try_get_or_render(|| async { Ok::<_, std::convert::Infallible>(render().await) })
            .await
        {
            Ok(html) => html,
            Err(never) => match never {},
        }
    }

    /// The cached text, or `render`'s. A render error is returned and nothing
    /// is stored.
    pub async fn try_get_or_render<F, Fut, E>(self, render: F) -> Result<String, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, E>>,
    {
        let key = self.key();
        if let Some(html) = lookup(self.cache, &key).await {
            return Ok(html);
        }
        let html = render().await?;
        store(self.cache, &key, &html, self.timeout).await;
        Ok(html)
    }
}

/// The cached text of a fragment; any failure is a miss.
pub(crate) async fn lookup(cache: &Cache, key: &str) -> Option<String> {
    match cache.get_bytes(key).await {
        Ok(Some(bytes)) => match String::from_utf8(bytes.to_vec()) {
            Ok(html) => Some(html),
            Err(_) => {
                tracing::warn!(key, "cached fragment is not UTF-8; rendering it again");
                None
            }
        },
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(key, %error, "fragment cache lookup failed; rendering");
            None
        }
    }
}

/// Stores a fragment's rendered text; a failure is logged, never returned.
pub(crate) async fn store(cache: &Cache, key: &str, html: &str, timeout: Timeout) {
    let bytes = Bytes::copy_from_slice(html.as_bytes());
    if let Err(error) = cache.set_bytes(key, bytes, timeout).await {
        tracing::warn!(key, %error, "storing a rendered fragment failed");
    }
}
