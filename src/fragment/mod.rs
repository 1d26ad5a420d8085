//! Template fragment caching: Django's `{% cache %}` tag and
//! `make_template_fragment_key`, for any template engine.
//!
//! Cache the expensive part of a page, not the page: a fragment is rendered
//! once, stored under a key made from its name and the values it varies on,
//! and served from the cache until it expires or the application deletes it.
//! Each cached fragment costs one cache round trip per render.
//!
//! # With any template engine or hand-built HTML
//!
//! ```
//! use std::time::Duration;
//! use tower_cache::{Cache, fragment::make_template_fragment_key};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tower_cache::Result<()> {
//! let cache = Cache::from_url("memory://").await?;
//! let user_id = 42;
//!
//! let html = cache
//!     .fragment("object_list", [user_id])
//!     .timeout(Duration::from_secs(500))
//!     .get_or_render(|| async { "<ul><li>expensive</li></ul>".to_owned() })
//!     .await;
//! assert_eq!(html, "<ul><li>expensive</li></ul>");
//!
//! // When the objects change (Django's post_save / post_delete handlers):
//! cache.delete(&make_template_fragment_key("object_list", [user_id])).await?;
//! # Ok(()) }
//! ```
//!
//! # With minijinja (feature `minijinja`)
//!
//! The tutorial's template,
//!
//! ```text
//! {% load cache %}
//! {% cache 500 object_list %}
//!   <ul>{% for object in objects %}<li>{{ object.title }}</li>{% endfor %}</ul>
//! {% endcache %}
//! ```
//!
//! becomes, with [`CacheTag`] registered as the `cache` function,
//!
//! ```text
//! {% call cache(500, "object_list") %}
//!   <ul>{% for object in load_objects() %}<li>{{ object.title }}</li>{% endfor %}</ul>
//! {% endcall %}
//! ```
//!
//! See [`CacheTag`] for the arguments (`none` for forever, vary-on values,
//! `using="alias"`) and for rendering from async code without blocking the
//! runtime.
//!
//! # Keys
//!
//! Keys are Django 6.1's, byte for byte: `template.cache.<name>.<md5>`, where
//! the md5 is over each vary-on value's text as a netstring. A Django app and
//! a Rust service sharing one cache (and its key prefix and version) share
//! fragments. [`KeyFormat::Legacy`] gives the format of Django 3.1 to 6.0.

mod key;
#[cfg(feature = "minijinja")]
mod minijinja;
mod render;

pub use key::{KeyFormat, make_template_fragment_key, make_template_fragment_key_with};
#[cfg(feature = "minijinja")]
#[cfg_attr(docsrs, doc(cfg(feature = "minijinja")))]
pub use minijinja::{CacheTag, render_template};
pub use render::Fragment;
