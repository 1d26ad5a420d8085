//! The tags a response carries: in a response header ([`TagHeader`],
//! `Cache-Tag` by default) or a [`CacheTags`] response extension. A stored
//! page records its tags' versions, and
//! [`Cache::invalidate_tags`](crate::Cache::invalidate_tags) makes every
//! page that carried one a miss (see [`tags`](crate::tags)).

use http::{HeaderMap, HeaderName};

use crate::http::policy::Bypass;
use crate::tags::{MAX_TAG_LEN, MAX_TAGS};

/// Tags a handler puts in its response's extensions, to tag the page
/// without a header the client could see.
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use tower_cache::http::tags::CacheTags;
///
/// async fn product() -> (Extension<CacheTags>, &'static str) {
///     (Extension(CacheTags::new(["product:42", "catalog"])), "<h1>Product 42</h1>")
/// }
/// let app: Router = Router::new().route("/product/42", get(product));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheTags(Vec<String>);

impl CacheTags {
    /// These tags.
    pub fn new<I, S>(tags: I) -> CacheTags
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CacheTags(tags.into_iter().map(Into::into).collect())
    }

    /// The tags.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// The response header that carries a page's tags, how its tags are
/// separated, and whether it is removed before the response reaches the
/// client (by default it is: tags are the site's business).
///
/// ```
/// use tower_cache::http::tags::TagHeader;
///
/// let cloudflare = TagHeader::cache_tag(); // `Cache-Tag: a,b` (the default)
/// let fastly = TagHeader::surrogate_key(); // `Surrogate-Key: a b`
/// let shown = TagHeader::cache_tag().keep(); // left in responses
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHeader {
    name: HeaderName,
    separator: u8,
    strip: bool,
}

impl Default for TagHeader {
    fn default() -> TagHeader {
        TagHeader::cache_tag()
    }
}

impl TagHeader {
    /// `Cache-Tag`, comma-separated (Cloudflare's spelling; the default).
    pub fn cache_tag() -> TagHeader {
        TagHeader {
            name: HeaderName::from_static("cache-tag"),
            separator: b',',
            strip: true,
        }
    }

    /// `Surrogate-Key`, space-separated (Fastly's and Varnish xkey's).
    pub fn surrogate_key() -> TagHeader {
        TagHeader {
            name: HeaderName::from_static("surrogate-key"),
            separator: b' ',
            strip: true,
        }
    }

    /// Another header, with tags separated by `separator` (an ASCII
    /// character; white space around tags is trimmed).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidOption`](crate::ConfigError::InvalidOption) for
    /// a name that is not a header name or a separator that is not ASCII.
    pub fn new(name: &str, separator: char) -> crate::Result<TagHeader> {
        let invalid = |value: String, reason: &str| crate::ConfigError::InvalidOption {
            backend: "http",
            option: "tag_header".into(),
            value,
            reason: reason.into(),
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(name.to_owned(), "not a header name"))?;
        let separator = u8::try_from(separator)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| invalid(separator.to_string(), "the separator must be ASCII"))?;
        Ok(TagHeader {
            name,
            separator,
            strip: true,
        })
    }

    /// Leaves the header in responses (and in stored pages, so hits carry
    /// it too): for a CDN in front that purges by the same tags.
    pub fn keep(mut self) -> TagHeader {
        self.strip = false;
        self
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The tags of a response: from the header (removed from `headers`
    /// unless [kept](TagHeader::keep)) and from its [`CacheTags`] extension,
    /// without duplicates.
    ///
    /// # Errors
    ///
    /// [`Bypass::Tags`] when the header is not visible ASCII, or there are
    /// more than [`MAX_TAGS`] tags or one longer than [`MAX_TAG_LEN`]: a page
    /// whose tags cannot all be read could not be invalidated by them, so
    /// it is not stored.
    pub fn take(
        &self,
        headers: &mut HeaderMap,
        extension: Option<&CacheTags>,
    ) -> Result<Vec<String>, Bypass> {
        let mut tags: Vec<String> = Vec::new();
        let mut add = |tag: &str| {
            if tag.len() > MAX_TAG_LEN {
                return Err(Bypass::Tags);
            }
            if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                if tags.len() == MAX_TAGS {
                    return Err(Bypass::Tags);
                }
                tags.push(tag.to_owned());
            }
            Ok(())
        };
        let mut result = Ok(());
        for value in headers.get_all(&self.name) {
            // Tags are tokens: anything but visible ASCII and spaces is
            // refused rather than guessed at.
            let Ok(text) = value.to_str() else {
                result = Err(Bypass::Tags);
                break;
            };
            for tag in text.split(char::from(self.separator)) {
                result = result.and_then(|()| add(tag.trim()));
            }
        }
        if let Some(extension) = extension {
            for tag in extension.as_slice() {
                let trimmed = tag.trim();
                let bad = trimmed.bytes().any(|b| b.is_ascii_control());
                result = result.and_then(|()| if bad { Err(Bypass::Tags) } else { add(trimmed) });
            }
        }
        if self.strip {
            headers.remove(&self.name);
        }
        result.map(|()| tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &str, values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn tags_from_the_header_are_split_trimmed_deduplicated_and_removed() {
        let mut h = headers("cache-tag", &[b" a, b ,,a", b"c"]);
        let tags = TagHeader::cache_tag().take(&mut h, None).unwrap();
        assert_eq!(tags, ["a", "b", "c"]);
        assert!(h.is_empty());
        let mut h = headers("surrogate-key", &[b"a  b"]);
        let kept = TagHeader::surrogate_key().keep();
        assert_eq!(kept.take(&mut h, None).unwrap(), ["a", "b"]);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn tags_from_the_extension_join_the_header() {
        let mut h = headers("cache-tag", &[b"a"]);
        let extension = CacheTags::new(["b", "a"]);
        let tags = TagHeader::cache_tag()
            .take(&mut h, Some(&extension))
            .unwrap();
        assert_eq!(tags, ["a", "b"]);
    }

    #[test]
    fn unreadable_or_too_many_tags_are_not_stored_and_still_removed() {
        let none = None;
        let mut h = headers("cache-tag", &[b"a, caf\xe9"]);
        assert_eq!(TagHeader::cache_tag().take(&mut h, none), Err(Bypass::Tags));
        assert!(h.is_empty());
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        let mut h = headers("cache-tag", &[many.join(",").as_bytes()]);
        assert_eq!(TagHeader::cache_tag().take(&mut h, none), Err(Bypass::Tags));
        let long = "x".repeat(MAX_TAG_LEN + 1);
        let mut h = headers("cache-tag", &[long.as_bytes()]);
        assert_eq!(TagHeader::cache_tag().take(&mut h, none), Err(Bypass::Tags));
        let extension = CacheTags::new(["a\nb"]);
        let mut h = HeaderMap::new();
        assert_eq!(
            TagHeader::cache_tag().take(&mut h, Some(&extension)),
            Err(Bypass::Tags)
        );
    }

    #[test]
    fn custom_headers_are_checked() {
        assert!(TagHeader::new("x-tags", ';').is_ok());
        assert!(TagHeader::new("bad header", ',').is_err());
        assert!(TagHeader::new("x-tags", 'é').is_err());
    }
}
