//! Reads over one pipelined connection per memcached server.
//!
//! A read is one meta get (`mg <key> v`, with `t` for the lifetime) written
//! to its server's connection behind the reads already in flight there, and
//! answered in the order written (memcached answers a connection's commands
//! in order). Concurrent reads share the connection: their commands go out
//! in one write and their answers come back in one read, where a pool would
//! take a connection from a queue for each and make a system call pair for
//! each. A connection is made on the first read and again after it fails;
//! each answer is awaited at most the command timeout.
//!
//! Keys are written as `memcache::exp` writes them (raw when every byte is
//! above space and not DEL, else base64 with the `b` flag), so a key written
//! through its pool is the key read here.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

/// memcached's longest key on the wire.
const MAX_KEY_LENGTH: usize = 250;

/// The longest value accepted from a server (memcached's `-I` allows at most
/// 1 GiB): a longer length is a broken answer, not a value to allocate for.
const MAX_VALUE_LENGTH: usize = 1 << 30;

/// How many reads go out in one write, at most.
const BATCH: usize = 64;

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

/// Why a read has no answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// The server could not be reached, or the connection broke.
    #[error("memcached connection: {0}")]
    Io(#[from] io::Error),
    /// No answer within the timeout.
    #[error("memcached did not answer within {0:?}")]
    Timeout(Duration),
    /// The server refused the command (`SERVER_ERROR`, `CLIENT_ERROR`).
    #[error("memcached refused the read: {0}")]
    Refused(String),
    /// The key is longer than memcached allows.
    #[error("the key is {0} bytes on the wire; memcached allows 250")]
    KeyTooLong(usize),
}

impl ReadError {
    /// Whether the server could not be reached or did not answer, rather
    /// than refused the read.
    pub(super) fn unreachable(&self) -> bool {
        matches!(self, ReadError::Io(_) | ReadError::Timeout(_))
    }
}

type Reply = oneshot::Sender<Result<Found, ReadError>>;

/// A read on its way to a connection: the command and where its answer goes.
struct Command {
    line: Vec<u8>,
    reply: Reply,
}

/// One pipelined connection per server, in the order of the backend's
/// server list.
#[derive(Debug)]
pub(super) struct Lanes {
    lanes: Box<[Lane]>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

#[derive(Debug)]
struct Lane {
    server: String,
    /// The connection's queue; `None`, or closed, when there is no live
    /// connection (the next read makes one).
    queue: Mutex<Option<mpsc::UnboundedSender<Command>>>,
}

impl Lanes {
    pub(super) fn new(
        servers: &[String],
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Lanes {
        Lanes {
            lanes: servers
                .iter()
                .map(|server| Lane {
                    server: server.clone(),
                    queue: Mutex::new(None),
                })
                .collect(),
            connect_timeout,
            command_timeout,
        }
    }

    /// Writes the read of `key` (with its lifetime when `ttl`) to server
    /// `lane`'s connection; the answer is awaited with [`answer`](Lanes::answer).
    /// Sending first and awaiting after lets several reads share a write.
    pub(super) fn send(
        &self,
        lane: usize,
        key: &str,
        ttl: bool,
    ) -> Result<oneshot::Receiver<Result<Found, ReadError>>, ReadError> {
        let line = get_line(key.as_bytes(), ttl)?;
        let (reply, answer) = oneshot::channel();
        let lane = &self.lanes[lane];
        let mut queue = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut command = Command { line, reply };
        if let Some(sender) = queue.as_ref() {
            match sender.send(command) {
                Ok(()) => return Ok(answer),
                // The connection ended: make another.
                Err(mpsc::error::SendError(back)) => command = back,
            }
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        // A new receiver cannot be closed: the send succeeds.
        let _ = sender.send(command);
        *queue = Some(sender);
        tokio::spawn(connection(
            lane.server.clone(),
            receiver,
            self.connect_timeout,
            self.command_timeout,
        ));
        Ok(answer)
    }

    /// The answer to a read [`send`](Lanes::send) wrote. No timer of its
    /// own: the connection task bounds the connect and every answer, and
    /// answers every read it took when it ends.
    pub(super) async fn answer(
        &self,
        answer: oneshot::Receiver<Result<Found, ReadError>>,
    ) -> Result<Found, ReadError> {
        answer.await.unwrap_or_else(|_| {
            Err(ReadError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the memcached connection closed",
            )))
        })
    }

    /// Reads one key from server `lane`.
    pub(super) async fn get(&self, lane: usize, key: &str, ttl: bool) -> Result<Found, ReadError> {
        let answer = self.send(lane, key, ttl)?;
        self.answer(answer).await
    }
}

/// `mg <key> [b] v [t]\r\n`, the key as `memcache::exp` writes it.
fn get_line(key: &[u8], ttl: bool) -> Result<Vec<u8>, ReadError> {
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
        return Err(ReadError::KeyTooLong(wire.len()));
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

/// One connection's life: connect, then write the queue's commands and read
/// their answers in order, until the queue's senders are gone or the
/// connection fails. Every read still waiting then gets the error.
async fn connection(
    server: String,
    mut queue: mpsc::UnboundedReceiver<Command>,
    connect_timeout: Duration,
    command_timeout: Duration,
) {
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(&server)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return fail_queued(&mut queue, || ReadError::Io(copy(&error))),
        Err(_) => return fail_queued(&mut queue, || ReadError::Timeout(connect_timeout)),
    };
    // Reads are small and latency-bound.
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let waiting = Arc::new(Mutex::new(VecDeque::<Reply>::new()));
    let (wake, woken) = mpsc::channel(1);
    let failure = tokio::select! {
        failure = writer(write, &mut queue, &waiting, wake) => failure,
        failure = reader(read, &waiting, woken, command_timeout) => failure,
    };
    // Later reads make a new connection; these get the error.
    queue.close();
    let pending: Vec<Reply> = waiting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    if let Some(failure) = failure {
        for reply in pending {
            let _ = reply.send(Err(failure.again()));
        }
        fail_queued(&mut queue, || failure.again());
    }
}

/// Why a connection ended, for every read it leaves unanswered.
enum Failure {
    Io(io::ErrorKind, String),
    Timeout(Duration),
}

impl Failure {
    fn again(&self) -> ReadError {
        match self {
            Failure::Io(kind, message) => ReadError::Io(io::Error::new(*kind, message.clone())),
            Failure::Timeout(after) => ReadError::Timeout(*after),
        }
    }
}

fn copy(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}

fn fail_queued(queue: &mut mpsc::UnboundedReceiver<Command>, error: impl Fn() -> ReadError) {
    queue.close();
    while let Ok(command) = queue.try_recv() {
        let _ = command.reply.send(Err(error()));
    }
}

/// Writes the queued commands, as many as are waiting in one write, after
/// putting their replies in `waiting` (in the same order). Ends (`None`)
/// when the queue's senders are gone, or with the write's failure.
async fn writer(
    mut write: OwnedWriteHalf,
    queue: &mut mpsc::UnboundedReceiver<Command>,
    waiting: &Mutex<VecDeque<Reply>>,
    wake: mpsc::Sender<()>,
) -> Option<Failure> {
    let mut batch = Vec::with_capacity(BATCH);
    let mut out = Vec::new();
    loop {
        if queue.recv_many(&mut batch, BATCH).await == 0 {
            // Nothing more will be sent (the backend is gone): the reader
            // answers what is waiting, then ends the connection.
            drop(wake);
            return std::future::pending().await;
        }
        out.clear();
        {
            let mut waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
            for command in batch.drain(..) {
                out.extend_from_slice(&command.line);
                waiting.push_back(command.reply);
            }
        }
        // At most one wake-up is pending: the reader takes them all.
        let _ = wake.try_send(());
        if let Err(error) = write.write_all(&out).await {
            return Some(Failure::Io(error.kind(), error.to_string()));
        }
    }
}

/// Reads answers and hands each to the oldest waiting reply. Each answer is
/// awaited at most `command_timeout`. Ends with the failure that broke the
/// connection, or `None` when the writer is done and nothing waits.
async fn reader(
    mut read: OwnedReadHalf,
    waiting: &Mutex<VecDeque<Reply>>,
    mut woken: mpsc::Receiver<()>,
    command_timeout: Duration,
) -> Option<Failure> {
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    loop {
        let next = waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        let Some(reply) = next else {
            if woken.recv().await.is_none() {
                // The writer is done; a last batch may have come with it.
                if waiting.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                    return None;
                }
            }
            continue;
        };
        let answer = tokio::time::timeout(command_timeout, read_answer(&mut read, &mut buffer));
        match answer.await {
            Ok(Ok(Ok(found))) => {
                let _ = reply.send(Ok(found));
            }
            Ok(Ok(Err(Refused { message, fatal }))) => {
                let _ = reply.send(Err(ReadError::Refused(message.clone())));
                if fatal {
                    // An answer this client does not expect: the stream
                    // may be out of step with the commands.
                    return Some(Failure::Io(io::ErrorKind::InvalidData, message));
                }
            }
            Ok(Err(error)) => {
                let failure = Failure::Io(error.kind(), error.to_string());
                let _ = reply.send(Err(failure.again()));
                return Some(failure);
            }
            Err(_) => {
                let _ = reply.send(Err(ReadError::Timeout(command_timeout)));
                return Some(Failure::Timeout(command_timeout));
            }
        }
    }
}

/// An answer that is not a value: the server's message, and whether the
/// connection can go on after it.
#[derive(Debug, PartialEq)]
struct Refused {
    message: String,
    fatal: bool,
}

/// Reads one answer, from `buffer` and then the connection.
async fn read_answer(
    read: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
) -> io::Result<Result<Found, Refused>> {
    loop {
        if let Some(answer) = parse(buffer)? {
            return Ok(answer);
        }
        if read.read_buf(buffer).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "memcached closed the connection",
            ));
        }
    }
}

/// One answer to `mg <key> v [t]` from the front of `buffer`, consumed;
/// `None` when it is not all there yet (room is reserved for the rest).
fn parse(buffer: &mut BytesMut) -> io::Result<Option<Result<Found, Refused>>> {
    let Some(end) = buffer.windows(2).position(|pair| pair == b"\r\n") else {
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
        let value = buffer.split_to(length).freeze();
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

    #[test]
    fn keys_are_written_as_memcache_exp_writes_them() {
        assert_eq!(get_line(b"a:1:k", false).unwrap(), b"mg a:1:k v\r\n");
        assert_eq!(get_line(b"k", true).unwrap(), b"mg k v t\r\n");
        // A space, a control byte or DEL: base64 with the b flag.
        assert_eq!(get_line(b"a b", false).unwrap(), b"mg YSBi b v\r\n");
        assert_eq!(get_line(b"\x7f", true).unwrap(), b"mg fw== b v t\r\n");
        assert!(matches!(
            get_line(&[b'k'; 251], false),
            Err(ReadError::KeyTooLong(251))
        ));
        // Base64 makes a key longer: the limit is on the wire.
        assert!(matches!(
            get_line(&[b' '; 190], false),
            Err(ReadError::KeyTooLong(256))
        ));
    }

    fn parsed(input: &[u8]) -> (io::Result<Option<Result<Found, Refused>>>, usize) {
        let mut buffer = BytesMut::from(input);
        let result = parse(&mut buffer);
        (result, buffer.len())
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
        for input in [
            &b"VA 5"[..],
            b"VA 5\r\nhel",
            b"VA 5\r\nhello",
            b"VA 5\r\nhello\r",
            b"E",
        ] {
            let (found, left) = parsed(input);
            assert!(found.unwrap().is_none(), "{input:?}");
            assert_eq!(left, input.len(), "nothing consumed");
        }
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
