//! RESP2, as the read lanes speak it: the commands `GET`, `MGET`, `PTTL`,
//! `EXISTS` (and `AUTH`, `SELECT` to set up a connection), and their
//! answers: a bulk string or nil, an array of those, an integer, a status.
//!
//! The lanes never send `HELLO`, so a connection stays on RESP2 whatever
//! the URL's `protocol` asks of the redis crate's connections.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use deadpool_redis::redis::RedisConnectionInfo;

use crate::backends::lanes::{Greeting, Parsed, Protocol, Refused, line_end, take_value};

/// Redis's longest string (`proto-max-bulk-len` at most 512 MiB): a longer
/// length is a broken answer, not a value to allocate for.
const MAX_BULK_LENGTH: usize = 512 << 20;

/// The longest header line of an array element (`$`, a length, CRLF).
const MAX_ELEMENT_HEADER: usize = 32;

/// The longest first line of an answer (an error's message, say).
const MAX_LINE: usize = 8 * 1024;

/// The protocol of the read lanes.
pub(super) struct RespProtocol;

/// One answer.
#[derive(Debug, PartialEq)]
pub(super) enum Reply {
    /// A bulk string, or nil (`GET`).
    Value(Option<Bytes>),
    /// An array of bulk strings or nils (`MGET`).
    Values(Vec<Option<Bytes>>),
    /// An integer (`PTTL`, `EXISTS`).
    Integer(i64),
    /// A status (`+OK`).
    Status,
}

impl Reply {
    /// What kind of answer this is, for an error (never the value).
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Reply::Value(_) => "a string",
            Reply::Values(_) => "an array",
            Reply::Integer(_) => "an integer",
            Reply::Status => "a status",
        }
    }
}

impl Protocol for RespProtocol {
    type Answer = Reply;

    fn parse(buffer: &mut BytesMut) -> Parsed<Reply> {
        parse(buffer)
    }
}

/// A command as RESP writes it: an array of bulk strings. An iterator, so
/// that `MGET`'s keys need no vector of their own on a hit.
pub(super) fn command<'a, I>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: Clone,
{
    let args = args.into_iter();
    let (count, bytes) = args
        .clone()
        .fold((0, 0), |(count, bytes), arg| (count + 1, bytes + arg.len()));
    let mut line = Vec::with_capacity(16 + bytes + 16 * count);
    let mut digits = itoa::Buffer::new();
    line.push(b'*');
    line.extend_from_slice(digits.format(count).as_bytes());
    line.extend_from_slice(b"\r\n");
    for arg in args {
        line.push(b'$');
        line.extend_from_slice(digits.format(arg.len()).as_bytes());
        line.extend_from_slice(b"\r\n");
        line.extend_from_slice(arg);
        line.extend_from_slice(b"\r\n");
    }
    line
}

/// What a new connection sends first, as the redis crate's connections do:
/// `AUTH` when the URL has a password (with its user name, if any), and
/// `SELECT` for a database other than 0.
pub(super) fn greeting(settings: &RedisConnectionInfo) -> Greeting {
    let mut greeting = Greeting::default();
    if let Some(password) = settings.password() {
        let auth = match settings.username() {
            Some(user) => command([b"AUTH".as_slice(), user.as_bytes(), password.as_bytes()]),
            None => command([b"AUTH".as_slice(), password.as_bytes()]),
        };
        greeting.commands.extend_from_slice(&auth);
        greeting.answers += 1;
    }
    if settings.db() != 0 {
        let db = itoa::Buffer::new().format(settings.db()).to_owned();
        greeting
            .commands
            .extend_from_slice(&command([b"SELECT".as_slice(), db.as_bytes()]));
        greeting.answers += 1;
    }
    greeting
}

/// One answer from the front of `buffer`, consumed; `None` when it is not
/// all there yet (nothing consumed; room is reserved for the rest when its
/// length is known).
fn parse(buffer: &mut BytesMut) -> Parsed<Reply> {
    let Some(end) = line_end(buffer, 0) else {
        if buffer.len() > MAX_LINE {
            return Err(invalid("an answer line over 8 KiB"));
        }
        return Ok(None);
    };
    let reply = match buffer[0] {
        b'+' => Reply::Status,
        b'-' => {
            let message = String::from_utf8_lossy(&buffer[1..end]).into_owned();
            buffer.advance(end + 2);
            // An error answers one command: the stream stays in step.
            return Ok(Some(Err(Refused {
                message,
                fatal: false,
            })));
        }
        b':' => Reply::Integer(number(&buffer[1..end])?),
        b'$' => {
            return Ok(match bulk_at(buffer, 0)? {
                Bulk::Whole { value, next } => {
                    let value = take(buffer, 0, value, next);
                    Some(Ok(Reply::Value(value)))
                }
                Bulk::Partial { needs } => {
                    reserve(buffer, needs);
                    None
                }
            });
        }
        b'*' => {
            let count = usize::try_from(number(&buffer[1..end])?)
                .map_err(|_| invalid("an array of no length"))?;
            let mut places = Vec::with_capacity(count.min(1024));
            let mut at = end + 2;
            for _ in 0..count {
                match bulk_at(buffer, at)? {
                    Bulk::Whole { value, next } => {
                        places.push(value);
                        at = next;
                    }
                    Bulk::Partial { needs } => {
                        reserve(buffer, needs);
                        return Ok(None);
                    }
                }
            }
            // Consumed element by element: each value is taken out, what is
            // between them skipped.
            let mut consumed = 0;
            let values = places
                .into_iter()
                .map(|place| {
                    place.map(|(start, length)| {
                        buffer.advance(start - consumed);
                        consumed = start + length;
                        take_value(buffer, length)
                    })
                })
                .collect();
            buffer.advance(at - consumed);
            return Ok(Some(Ok(Reply::Values(values))));
        }
        _ => return Err(invalid("an answer of an unknown type")),
    };
    buffer.advance(end + 2);
    Ok(Some(Ok(reply)))
}

/// A bulk string in the buffer, from its header on.
enum Bulk {
    /// All there: the value's start and length (`None`: nil), and where
    /// the next answer or element starts.
    Whole {
        value: Option<(usize, usize)>,
        next: usize,
    },
    /// Not all there: the buffer needs at least this many bytes.
    Partial { needs: usize },
}

/// The bulk string whose header starts at `at`.
fn bulk_at(buffer: &[u8], at: usize) -> io::Result<Bulk> {
    let Some(end) = line_end(buffer, at) else {
        if buffer.len() - at > MAX_ELEMENT_HEADER {
            return Err(invalid("a string header that does not end"));
        }
        return Ok(Bulk::Partial {
            needs: buffer.len() + 1,
        });
    };
    if buffer[at] != b'$' {
        return Err(invalid("a value that is not a string"));
    }
    let length = number(&buffer[at + 1..end])?;
    if length == -1 {
        return Ok(Bulk::Whole {
            value: None,
            next: end + 2,
        });
    }
    let length = usize::try_from(length)
        .ok()
        .filter(|&length| length <= MAX_BULK_LENGTH)
        .ok_or_else(|| invalid("a string length out of range"))?;
    let start = end + 2;
    let next = start + length + 2;
    if buffer.len() < next {
        return Ok(Bulk::Partial { needs: next });
    }
    if &buffer[next - 2..next] != b"\r\n" {
        return Err(invalid("a string not followed by CRLF"));
    }
    Ok(Bulk::Whole {
        value: Some((start, length)),
        next,
    })
}

/// Takes the bulk string `value` (at `from` in the buffer) out, and
/// consumes the buffer up to `next`.
fn take(
    buffer: &mut BytesMut,
    from: usize,
    value: Option<(usize, usize)>,
    next: usize,
) -> Option<Bytes> {
    let Some((start, length)) = value else {
        buffer.advance(next - from);
        return None;
    };
    buffer.advance(start - from);
    let value = take_value(buffer, length);
    buffer.advance(next - start - length);
    Some(value)
}

fn reserve(buffer: &mut BytesMut, needs: usize) {
    if needs > buffer.len() {
        buffer.reserve(needs - buffer.len());
    }
}

/// A decimal integer (a length, a count, an integer answer). By hand: a
/// reply has two or three of them, and `str::parse` after a UTF-8 check
/// cost a tenth of the read.
fn number(digits: &[u8]) -> io::Result<i64> {
    let (negative, digits) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    let broken = || invalid("a number that does not parse");
    if digits.is_empty() {
        return Err(broken());
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(broken());
        }
        value = value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(digit - b'0')))
            .ok_or_else(broken)?;
    }
    Ok(if negative { -value } else { value })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("redis sent {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::lanes::{assert_partial, parse_once};

    fn parsed(input: &[u8]) -> (Parsed<Reply>, usize) {
        parse_once::<RespProtocol>(input)
    }

    fn reply(input: &[u8]) -> Reply {
        parsed(input).0.unwrap().unwrap().unwrap()
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command([b"GET".as_slice(), b"k"]),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
        assert_eq!(
            command([b"MGET".as_slice(), b"a b", b""]),
            b"*3\r\n$4\r\nMGET\r\n$3\r\na b\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn greetings_authenticate_and_select() {
        let info = |url: &str| {
            deadpool_redis::redis::IntoConnectionInfo::into_connection_info(url)
                .unwrap()
                .redis_settings()
                .clone()
        };
        let plain = greeting(&info("redis://h:6379/0"));
        assert_eq!((plain.commands.as_slice(), plain.answers), (&b""[..], 0));
        let full = greeting(&info("redis://me:pw@h:6379/3"));
        assert_eq!(
            full.commands,
            b"*3\r\n$4\r\nAUTH\r\n$2\r\nme\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
        );
        assert_eq!(full.answers, 2);
        let password = greeting(&info("redis://:pw@h:6379"));
        assert_eq!(password.commands, b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    }

    #[test]
    fn answers_parse_and_are_consumed() {
        let (found, left) = parsed(b"$5\r\nhello\r\n:1\r\n");
        assert_eq!(
            found.unwrap().unwrap().unwrap(),
            Reply::Value(Some(Bytes::from_static(b"hello")))
        );
        assert_eq!(left, 4, "only the first answer is consumed");
        assert_eq!(reply(b"$-1\r\n"), Reply::Value(None));
        assert_eq!(
            reply(b"$2\r\n\r\n\r\n"),
            Reply::Value(Some(Bytes::from_static(b"\r\n")))
        );
        assert_eq!(reply(b":-2\r\n"), Reply::Integer(-2));
        assert_eq!(reply(b"+OK\r\n"), Reply::Status);
        let (found, left) = parsed(b"*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n+OK\r\n");
        assert_eq!(
            found.unwrap().unwrap().unwrap(),
            Reply::Values(vec![
                Some(Bytes::from_static(b"a")),
                None,
                Some(Bytes::new())
            ])
        );
        assert_eq!(left, 5);
        assert_eq!(reply(b"*0\r\n"), Reply::Values(Vec::new()));
    }

    #[test]
    fn a_long_value_is_taken_whole() {
        let value = vec![b'x'; 100_000];
        let mut input = format!("*1\r\n${}\r\n", value.len()).into_bytes();
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
        assert_eq!(reply(&input), Reply::Values(vec![Some(Bytes::from(value))]));
    }

    #[test]
    fn partial_answers_wait_for_the_rest() {
        assert_partial::<RespProtocol>(&[
            b"$5",
            b"$5\r\nhel",
            b"$5\r\nhello",
            b"$5\r\nhello\r",
            b"*2\r\n$1\r\na\r\n",
            b"*2\r\n$1\r\na\r\n$",
            b":1",
            b"+O",
        ]);
    }

    #[test]
    fn errors_answer_one_command() {
        let (found, left) = parsed(b"-WRONGTYPE Operation against a key\r\n$-1\r\n");
        let refused = found.unwrap().unwrap().unwrap_err();
        assert_eq!(refused.message, "WRONGTYPE Operation against a key");
        assert!(!refused.fatal);
        assert_eq!(left, 5);
    }

    #[test]
    fn broken_answers_end_the_connection() {
        for broken in [
            &b"$x\r\n"[..],
            b"$\r\n",
            b"$+1\r\n",
            b":99999999999999999999\r\n",
            b"$-2\r\n",
            b"$99999999999\r\n",
            b"$1\r\nxyz\r\n",
            b"*-1\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n*0\r\n",
            b"%1\r\n",
            b"\r\n",
        ] {
            assert!(parsed(broken).0.is_err(), "{broken:?}");
        }
        assert!(parsed(&[b'+'; 9000]).0.is_err(), "an endless line");
        assert!(
            parsed(b"*1\r\n$11111111111111111111111111111111111")
                .0
                .is_err(),
            "an endless element header"
        );
    }
}
