//! memcached's meta protocol, as the read lanes speak it: `mg <key> v [t]`
//! and its answers.
//!
//! Keys are written as `memcache::exp` writes them (raw when every byte is
//! above space and not DEL, else base64 with the `b` flag), so a key written
//! through its pool is the key read here.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use crate::backends::lanes::{Parsed, Protocol, Refused, line_end, take_value};

/// memcached's longest key on the wire.
const MAX_KEY_LENGTH: usize = 250;

/// The longest value accepted from a server (memcached's `-I` allows at most
/// 1 GiB): a longer length is a broken answer, not a value to allocate for.
const MAX_VALUE_LENGTH: usize = 1 << 30;

/// The meta protocol's reads.
pub(super) struct MetaProtocol;

/// What a read found.
#[derive(Debug, PartialEq)]
pub(super) enum Found {
    /// The value, with its remaining lifetime in seconds when it was asked
    /// (`-1`: it never expires).
    Hit {
        value: Bytes,
        ttl: Option<i64>,
    },
    Miss,
}

/// A key longer than memcached allows, on the wire.
#[derive(Debug, thiserror::Error)]
#[error("the key is {0} bytes on the wire; memcached allows 250")]
pub(super) struct KeyTooLong(usize);

impl Protocol for MetaProtocol {
    type Answer = Found;

    fn parse(buffer: &mut BytesMut) -> Parsed<Found> {
        parse(buffer)
    }
}

/// `mg <key> [b] v [t]\r\n`, the key as `memcache::exp` writes it.
pub(super) fn get_line(key: &[u8], ttl: bool) -> Result<Vec<u8>, KeyTooLong> {
    // Every byte looked at, without an early exit, so that the check is
    // vectorised: a page key is about 140 bytes, and byte by byte the
    // check cost 600 instructions a read.
    let raw = key
        .iter()
        .fold(true, |raw, &byte| raw & (byte > 0x20) & (byte != 0x7f));
    let encoded;
    let wire: &[u8] = if raw {
        key
    } else {
        encoded = base64_key(key);
        &encoded
    };
    if wire.len() > MAX_KEY_LENGTH {
        return Err(KeyTooLong(wire.len()));
    }
    let mut line = Vec::with_capacity(wire.len() + 12);
    line.extend_from_slice(b"mg ");
    line.extend_from_slice(wire);
    if !raw {
        line.extend_from_slice(b" b");
    }
    line.extend_from_slice(if ttl { b" v t\r\n" } else { b" v\r\n" });
    Ok(line)
}

/// Standard base64 with padding, as memcached decodes a `b` key.
fn base64_key(key: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(key)
        .into_bytes()
}

/// One answer to `mg <key> v [t]` from the front of `buffer`, consumed;
/// `None` when it is not all there yet (room is reserved for the rest).
fn parse(buffer: &mut BytesMut) -> Parsed<Found> {
    let Some(end) = line_end(buffer, 0) else {
        if buffer.len() > 8 * 1024 {
            return Err(invalid("an answer line over 8 KiB"));
        }
        return Ok(None);
    };
    let line = &buffer[..end];
    if line == b"EN" {
        buffer.advance(end + 2);
        return Ok(Some(Ok(Found::Miss)));
    }
    if let Some(rest) = line.strip_prefix(b"VA ") {
        let mut words = rest.split(|&b| b == b' ');
        let length = words
            .next()
            .and_then(|w| std::str::from_utf8(w).ok()?.parse::<usize>().ok())
            .filter(|&length| length <= MAX_VALUE_LENGTH)
            .ok_or_else(|| invalid("a value length that does not parse"))?;
        let mut ttl = None;
        for word in words {
            if let Some(seconds) = word.strip_prefix(b"t") {
                ttl = std::str::from_utf8(seconds)
                    .ok()
                    .and_then(|s| s.parse().ok());
            }
        }
        let total = end + 2 + length + 2;
        if buffer.len() < total {
            buffer.reserve(total - buffer.len());
            return Ok(None);
        }
        if &buffer[total - 2..total] != b"\r\n" {
            return Err(invalid("a value not followed by CRLF"));
        }
        buffer.advance(end + 2);
        let value = take_value(buffer, length);
        buffer.advance(2);
        return Ok(Some(Ok(Found::Hit { value, ttl })));
    }
    let message = String::from_utf8_lossy(line).into_owned();
    // SERVER_ERROR is about this command; anything else (CLIENT_ERROR,
    // ERROR, an answer to another command) may leave the stream out of step.
    let fatal = !line.starts_with(b"SERVER_ERROR");
    buffer.advance(end + 2);
    Ok(Some(Err(Refused { message, fatal })))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("memcached sent {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::lanes::{assert_partial, parse_once};

    #[test]
    fn keys_are_written_as_memcache_exp_writes_them() {
        assert_eq!(get_line(b"a:1:k", false).unwrap(), b"mg a:1:k v\r\n");
        assert_eq!(get_line(b"k", true).unwrap(), b"mg k v t\r\n");
        // A space, a control byte or DEL: base64 with the b flag.
        assert_eq!(get_line(b"a b", false).unwrap(), b"mg YSBi b v\r\n");
        assert_eq!(get_line(b"\x7f", true).unwrap(), b"mg fw== b v t\r\n");
        assert!(matches!(
            get_line(&[b'k'; 251], false),
            Err(KeyTooLong(251))
        ));
        // Base64 makes a key longer: the limit is on the wire.
        assert!(matches!(
            get_line(&[b' '; 190], false),
            Err(KeyTooLong(256))
        ));
    }

    fn parsed(input: &[u8]) -> (Parsed<Found>, usize) {
        parse_once::<MetaProtocol>(input)
    }

    #[test]
    fn answers_parse_and_are_consumed() {
        let (found, left) = parsed(b"EN\r\nVA 1\r\nx\r\n");
        assert_eq!(found.unwrap().unwrap().unwrap(), Found::Miss);
        assert_eq!(left, 9, "only the first answer is consumed");
        let (found, left) = parsed(b"VA 5 t299\r\nhello\r\n");
        assert_eq!(
            found.unwrap().unwrap().unwrap(),
            Found::Hit {
                value: Bytes::from_static(b"hello"),
                ttl: Some(299)
            }
        );
        assert_eq!(left, 0);
        let (found, _) = parsed(b"VA 2 t-1\r\n\r\n\r\n");
        assert_eq!(
            found.unwrap().unwrap().unwrap(),
            Found::Hit {
                value: Bytes::from_static(b"\r\n"),
                ttl: Some(-1)
            }
        );
    }

    #[test]
    fn partial_answers_wait_for_the_rest() {
        assert_partial::<MetaProtocol>(&[
            b"VA 5",
            b"VA 5\r\nhel",
            b"VA 5\r\nhello",
            b"VA 5\r\nhello\r",
            b"E",
        ]);
    }

    #[test]
    fn refusals_and_broken_answers() {
        let (found, left) = parsed(b"SERVER_ERROR out of memory\r\nEN\r\n");
        let refused = found.unwrap().unwrap().unwrap_err();
        assert_eq!(refused.message, "SERVER_ERROR out of memory");
        assert!(!refused.fatal);
        assert_eq!(left, 4);
        let (found, _) = parsed(b"CLIENT_ERROR bad command line format\r\n");
        assert!(found.unwrap().unwrap().unwrap_err().fatal);
        let (found, _) = parsed(b"HD\r\n");
        assert!(found.unwrap().unwrap().unwrap_err().fatal);
        for broken in [&b"VA x\r\n"[..], b"VA 99999999999\r\n", b"VA 1\r\nxyz\r\n"] {
            let (found, _) = parsed(broken);
            assert!(found.is_err(), "{broken:?}");
        }
        let (found, _) = parsed(&[b'a'; 9000]);
        assert!(found.is_err(), "an endless line");
    }
}
