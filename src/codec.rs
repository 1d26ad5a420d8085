//! Typed values to bytes and back.
//!
//! Values are stored as JSON. That choice is deliberate: an integer is then
//! stored as its decimal text (`42` is the two bytes `b"42"`), which is what
//! Redis `INCRBY`, memcached `incr` and a database `UPDATE ... SET value = value + 1`
//! understand, so `incr` stays atomic on the server and interoperable with
//! other clients (Django's Redis backend makes the same choice). Everything
//! else is readable in `redis-cli` too. Raw bytes skip the codec entirely:
//! see [`Cache::get_bytes`](crate::Cache::get_bytes).

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CacheError, Result};

pub(crate) fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| CacheError::Codec {
            key: key.to_owned(),
            direction: "encoded",
            source,
        })
}

pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| CacheError::Codec {
        key: key.to_owned(),
        direction: "decoded",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_decimal_text() {
        assert_eq!(&encode("k", &42).unwrap()[..], b"42");
        assert_eq!(&encode("k", &-7i64).unwrap()[..], b"-7");
        assert_eq!(decode::<i64>("k", b"43").unwrap(), 43);
    }

    #[test]
    fn garbage_is_a_codec_error_naming_the_key() {
        let err = decode::<String>("the-key", b"\xff\x00").unwrap_err();
        assert!(matches!(err, CacheError::Codec { ref key, .. } if key == "the-key"));
    }
}
