//! The `compress_*` options of a shared backend's URL: compression at rest
//! ([`CompressedBackend`](crate::backends::CompressedBackend), with the
//! `zstd` feature).

use serde::Deserialize;

use crate::backend::DynBackend;
use crate::error::{CacheError, ConfigError, Result};
use crate::options::{self, BackendOptions};

/// The `compress_*` options of a shared backend's URL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompressionOptions {
    #[serde(default, deserialize_with = "options::size")]
    compress_min_bytes: Option<u64>,
    #[serde(default)]
    compress_level: Option<i32>,
}

impl CompressionOptions {
    /// The `compress_*` options among a URL's: `None` when there are none,
    /// and compression stays off.
    pub(crate) fn take(options: &mut BackendOptions) -> Result<Option<CompressionOptions>> {
        let ours = options.split_fields::<CompressionOptions>();
        if ours.is_empty() {
            return Ok(None);
        }
        ours.parse("cache").map(Some)
    }

    /// `inner`, compressed as these options ask.
    pub(crate) fn wrap(self, inner: DynBackend) -> Result<DynBackend> {
        let Some(min_bytes) = self.compress_min_bytes else {
            return Err(invalid(
                "compress_level",
                self.compress_level.unwrap_or_default().to_string(),
                "compress_level needs compress_min_bytes, the size from which values are compressed"
                    .into(),
            ));
        };
        #[cfg(feature = "zstd")]
        {
            use crate::backends::CompressedBackend;
            let min_bytes = usize::try_from(min_bytes).unwrap_or(usize::MAX);
            let level = self
                .compress_level
                .unwrap_or(CompressedBackend::DEFAULT_LEVEL);
            Ok(std::sync::Arc::new(CompressedBackend::with_level(
                inner, min_bytes, level,
            )?))
        }
        #[cfg(not(feature = "zstd"))]
        {
            let _ = inner;
            Err(invalid(
                "compress_min_bytes",
                min_bytes.to_string(),
                "compression at rest needs tower-cache's `zstd` feature".into(),
            ))
        }
    }

    /// The error for compression asked of an in-process backend.
    pub(crate) fn refuse(scheme: &str) -> CacheError {
        invalid(
            "compress_min_bytes",
            format!("({scheme}://)"),
            format!(
                "compression at rest is for shared backends (redis, memcached, a database, \
                 a directory); a {scheme}:// cache keeps values in process"
            ),
        )
    }
}

/// A `compress_*` option's error.
pub(super) fn invalid(option: &str, value: String, reason: String) -> CacheError {
    ConfigError::InvalidOption {
        backend: "cache",
        option: option.into(),
        value,
        reason,
    }
    .into()
}
