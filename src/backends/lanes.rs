//! Reads over one pipelined connection per server, for the shared backends
//! whose protocols answer a connection's commands in order (memcached,
//! Redis).
//!
//! A read is a command written to its server's connection behind the reads
//! already in flight there, and answered in the order written. Concurrent
//! reads share the connection: their commands go out in one write and their
//! answers come back in one read, where a pool would take a connection from
//! a queue for each and make a system call pair for each, and the server
//! makes one pair for the batch too. A connection is made on the first read
//! and again after it fails; each answer is awaited at most the command
//! timeout.
//!
//! What a protocol brings ([`Protocol`]): the parser of one answer, and the
//! commands a new connection sends first ([`Greeting`]: Redis's `AUTH` and
//! `SELECT`). Commands come encoded.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

/// How many reads go out in one write, at most.
const BATCH: usize = 64;

/// The read buffer's first size; it grows to hold the longest answer.
const READ_BUFFER: usize = 16 * 1024;

/// A value shorter than this is copied out of the read buffer: a slice
/// would keep the whole buffer alive for as long as the value lives (in a
/// cache, or in the caller's hands), and make the buffer reallocate on the
/// next read. A longer value is most of its allocation anyway.
const COPY_BELOW: usize = READ_BUFFER;

/// A wire protocol whose answers come in the order of its commands.
pub(crate) trait Protocol: 'static {
    /// One parsed answer.
    type Answer: Send + 'static;

    /// One answer from the front of `buffer`, consumed; `None` when it is
    /// not all there yet (nothing consumed; room may be reserved for the
    /// rest). An error means the stream cannot be read on: the connection
    /// ends.
    fn parse(buffer: &mut BytesMut) -> io::Result<Option<Result<Self::Answer, Refused>>>;
}

/// An answer that is not a value: the server's message, and whether the
/// connection can go on after it.
#[derive(Debug, PartialEq)]
pub(crate) struct Refused {
    pub(crate) message: String,
    /// The stream may be out of step with the commands (an answer this
    /// client does not expect): the connection ends.
    pub(crate) fatal: bool,
}

/// What a new connection writes before any read, and how many answers that
/// gets; each must be a success, or the connection is refused.
#[derive(Clone, Default)]
pub(crate) struct Greeting {
    pub(crate) commands: Vec<u8>,
    pub(crate) answers: usize,
}

// By hand: the commands may hold a password.
impl fmt::Debug for Greeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greeting")
            .field("answers", &self.answers)
            .finish_non_exhaustive()
    }
}

/// Why a read has no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The server could not be reached, or the connection broke.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server refused the command.
    #[error("refused: {0}")]
    Refused(String),
}

// Only memcached reads an unreachable server as a miss (Django's
// memcached caches do; its Redis cache raises).
#[cfg(feature = "memcached")]
impl ReadError {
    /// Whether the server could not be reached or did not answer, rather
    /// than refused the read.
    pub(crate) fn unreachable(&self) -> bool {
        matches!(self, ReadError::Io(_) | ReadError::Timeout(_))
    }
}

type Reply<A> = oneshot::Sender<Result<A, ReadError>>;

/// An answer on its way: what [`Lanes::send`] gives, for [`Lanes::answer`].
pub(crate) type Pending<A> = oneshot::Receiver<Result<A, ReadError>>;

/// A read on its way to a connection: the command and where its answer goes.
struct Command<A> {
    line: Vec<u8>,
    reply: Reply<A>,
}

/// One pipelined connection per server.
pub(crate) struct Lanes<P: Protocol> {
    lanes: Box<[Lane<P::Answer>]>,
    connect_timeout: Duration,
    command_timeout: Duration,
    protocol: PhantomData<fn() -> P>,
}

struct Lane<A> {
    server: String,
    greeting: Arc<Greeting>,
    /// The connection's queue; `None`, or closed, when there is no live
    /// connection (the next read makes one).
    queue: Mutex<Option<mpsc::UnboundedSender<Command<A>>>>,
}

impl<P: Protocol> fmt::Debug for Lanes<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<&str> = self.lanes.iter().map(|lane| lane.server.as_str()).collect();
        f.debug_struct("Lanes")
            .field("servers", &servers)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl<P: Protocol> Lanes<P> {
    /// A lane for each server (`host:port`), in order, each greeting its
    /// new connections with its [`Greeting`].
    pub(crate) fn new(
        servers: impl IntoIterator<Item = (String, Greeting)>,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Lanes<P> {
        Lanes {
            lanes: servers
                .into_iter()
                .map(|(server, greeting)| Lane {
                    server,
                    greeting: Arc::new(greeting),
                    queue: Mutex::new(None),
                })
                .collect(),
            connect_timeout,
            command_timeout,
            protocol: PhantomData,
        }
    }

    /// Writes `line`, one encoded command, to server `lane`'s connection;
    /// the answer is awaited with [`answer`](Lanes::answer). Sending first
    /// and awaiting after lets several reads share a write.
    pub(crate) fn send(&self, lane: usize, line: Vec<u8>) -> Pending<P::Answer> {
        let (reply, answer) = oneshot::channel();
        let lane = &self.lanes[lane];
        let mut queue = lane.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut command = Command { line, reply };
        if let Some(sender) = queue.as_ref() {
            match sender.send(command) {
                Ok(()) => return answer,
                // The connection ended: make another.
                Err(mpsc::error::SendError(back)) => command = back,
            }
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        // A new receiver cannot be closed: the send succeeds.
        let _ = sender.send(command);
        *queue = Some(sender);
        tokio::spawn(connection::<P>(
            lane.server.clone(),
            Arc::clone(&lane.greeting),
            receiver,
            self.connect_timeout,
            self.command_timeout,
        ));
        answer
    }

    /// The answer to a read [`send`](Lanes::send) wrote. No timer of its
    /// own: the connection task bounds the connect and every answer, and
    /// answers every read it took when it ends.
    pub(crate) async fn answer(&self, answer: Pending<P::Answer>) -> Result<P::Answer, ReadError> {
        answer.await.unwrap_or_else(|_| {
            Err(ReadError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection closed",
            )))
        })
    }

    /// Sends `line` to server `lane` and awaits its answer.
    pub(crate) async fn get(&self, lane: usize, line: Vec<u8>) -> Result<P::Answer, ReadError> {
        let answer = self.send(lane, line);
        self.answer(answer).await
    }
}

/// One connection's life: connect and greet, then write the queue's
/// commands and read their answers in order, until the queue's senders are
/// gone or the connection fails. Every read still waiting then gets the
/// error.
async fn connection<P: Protocol>(
    server: String,
    greeting: Arc<Greeting>,
    mut queue: mpsc::UnboundedReceiver<Command<P::Answer>>,
    connect_timeout: Duration,
    command_timeout: Duration,
) {
    let mut buffer = BytesMut::with_capacity(READ_BUFFER);
    let opened = open::<P>(&server, &greeting, &mut buffer);
    let stream = match tokio::time::timeout(connect_timeout, opened).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(failure)) => return fail_queued(&mut queue, || failure.again()),
        Err(_) => return fail_queued(&mut queue, || ReadError::Timeout(connect_timeout)),
    };
    let (read, write) = stream.into_split();
    let waiting = Arc::new(Mutex::new(VecDeque::<Reply<P::Answer>>::new()));
    let (wake, woken) = mpsc::channel(1);
    let failure = tokio::select! {
        failure = writer(write, &mut queue, &waiting, wake) => failure,
        failure = reader::<P>(read, buffer, &waiting, woken, command_timeout) => failure,
    };
    // Later reads make a new connection; these get the error.
    queue.close();
    let pending: Vec<Reply<P::Answer>> = waiting
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

/// Connects to `server` and sends the greeting, reading its answers (into
/// `buffer`, which keeps whatever came after them).
async fn open<P: Protocol>(
    server: &str,
    greeting: &Greeting,
    buffer: &mut BytesMut,
) -> Result<TcpStream, Failure> {
    let mut stream = TcpStream::connect(server).await.map_err(Failure::io)?;
    // Reads are small and latency-bound.
    let _ = stream.set_nodelay(true);
    if greeting.answers > 0 {
        stream
            .write_all(&greeting.commands)
            .await
            .map_err(Failure::io)?;
        for _ in 0..greeting.answers {
            if let Err(refused) = read_answer::<P, _>(&mut stream, buffer)
                .await
                .map_err(Failure::io)?
            {
                return Err(Failure::Refused(format!(
                    "{} (setting up the connection)",
                    refused.message
                )));
            }
        }
    }
    Ok(stream)
}

/// Why a connection ended, for every read it leaves unanswered.
enum Failure {
    Io(io::ErrorKind, String),
    Timeout(Duration),
    Refused(String),
}

impl Failure {
    fn io(error: io::Error) -> Failure {
        Failure::Io(error.kind(), error.to_string())
    }

    fn again(&self) -> ReadError {
        match self {
            Failure::Io(kind, message) => ReadError::Io(io::Error::new(*kind, message.clone())),
            Failure::Timeout(after) => ReadError::Timeout(*after),
            Failure::Refused(message) => ReadError::Refused(message.clone()),
        }
    }
}

fn fail_queued<A>(queue: &mut mpsc::UnboundedReceiver<Command<A>>, error: impl Fn() -> ReadError) {
    queue.close();
    while let Ok(command) = queue.try_recv() {
        let _ = command.reply.send(Err(error()));
    }
}

/// Writes the queued commands, as many as are waiting in one write, after
/// putting their replies in `waiting` (in the same order). Ends (`None`)
/// when the queue's senders are gone, or with the write's failure.
async fn writer<A>(
    mut write: OwnedWriteHalf,
    queue: &mut mpsc::UnboundedReceiver<Command<A>>,
    waiting: &Mutex<VecDeque<Reply<A>>>,
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
            return Some(Failure::io(error));
        }
    }
}

/// Reads answers and hands each to the oldest waiting reply. An answer
/// already read (a batch's answers come together) is handed on at once;
/// one still to come is awaited at most `command_timeout`. Ends with the
/// failure that broke the connection, or `None` when the writer is done and
/// nothing waits.
async fn reader<P: Protocol>(
    mut read: OwnedReadHalf,
    mut buffer: BytesMut,
    waiting: &Mutex<VecDeque<Reply<P::Answer>>>,
    mut woken: mpsc::Receiver<()>,
    command_timeout: Duration,
) -> Option<Failure> {
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
        let answer = match P::parse(&mut buffer) {
            Ok(Some(answer)) => Ok(Ok(answer)),
            Ok(None) => {
                let more = read_answer::<P, _>(&mut read, &mut buffer);
                tokio::time::timeout(command_timeout, more).await
            }
            Err(error) => Ok(Err(error)),
        };
        match answer {
            Ok(Ok(Ok(found))) => {
                let _ = reply.send(Ok(found));
            }
            Ok(Ok(Err(Refused { message, fatal }))) => {
                let _ = reply.send(Err(ReadError::Refused(message.clone())));
                if fatal {
                    return Some(Failure::Io(io::ErrorKind::InvalidData, message));
                }
            }
            Ok(Err(error)) => {
                let failure = Failure::io(error);
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

/// Reads one answer, from `buffer` and then the connection.
async fn read_answer<P: Protocol, R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
    buffer: &mut BytesMut,
) -> io::Result<Result<P::Answer, Refused>> {
    loop {
        if let Some(answer) = P::parse(buffer)? {
            return Ok(answer);
        }
        if read.read_buf(buffer).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    }
}

/// Where the first CRLF at or after `from` starts, if there is one.
pub(crate) fn line_end(buffer: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(found) = memchr::memchr(b'\r', &buffer[at..]) {
        let cr = at + found;
        if buffer.get(cr + 1) == Some(&b'\n') {
            return Some(cr);
        }
        at = cr + 1;
    }
    None
}

/// The `length` bytes at the front of `buffer`, consumed: copied when short
/// (see [`COPY_BELOW`]), else split off without a copy.
pub(crate) fn take_value(buffer: &mut BytesMut, length: usize) -> Bytes {
    if length < COPY_BELOW {
        let value = Bytes::copy_from_slice(&buffer[..length]);
        buffer.advance(length);
        value
    } else {
        buffer.split_to(length).freeze()
    }
}
