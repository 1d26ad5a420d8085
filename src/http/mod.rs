//! Pure HTTP caching helpers: Django's `django.utils.cache`, with no Tower
//! types and no I/O.
//!
//! * [`key`]: page keys and header-list keys in Django 6.1's layout and hashing;
//! * [`encoding`]: `Accept-Encoding` bucketed for page keys;
//! * [`policy`]: which requests are served and which responses stored,
//!   under Django's rules or RFC 9111's ([`rfc9111`], [`directives`]);
//! * [`headers`]: `Cache-Control`, `Vary`, `Expires` and `max-age` helpers;
//! * [`stored`]: the binary layout of a cached response;
//! * [`range`]: byte ranges served from stored responses (RFC 9111 policy);
//! * [`conditional`]: `If-None-Match` and `If-Modified-Since` against a
//!   stored response, and weak ETags.
//!
//! The layers in [`middleware`](crate::middleware) are thin plumbing over
//! these functions; use them directly to build other integrations.

pub mod conditional;
pub mod directives;
pub mod encoding;
pub mod headers;
pub mod key;
pub mod policy;
pub mod range;
pub(crate) mod request_fields;
pub mod rfc9111;
pub mod stored;
pub mod tags;
