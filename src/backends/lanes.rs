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
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How many reads go out in one write, at most.
const BATCH: usize = 64;

/// The read buffer's first size; it grows to hold the longest answer.
const READ_BUFFER: usize = 16 * 1024;

/// A read buffer grown past this for a long answer is let go once it is
/// drained, rather than kept at its largest for the connection's life.
const KEEP_BUFFER: usize = 4 * READ_BUFFER;

/// What parsing the front of a read buffer gives: an answer or a refusal,
/// `None` when the answer is not all there yet, or an error when the
/// stream cannot be read on.
pub(crate) type Parsed<A> = io::Result<Option<Result<A, Refused>>>;

/// A wire protocol whose answers come in the order of its commands.
pub(crate) trait Protocol: 'static {
    /// One parsed answer.
    type Answer: Send + 'static;

    /// One answer from the front of `buffer`, consumed; `None` when it is
    /// not all there yet (nothing consumed; room may be reserved for the
    /// rest). An error means the stream cannot be read on: the connection
    /// ends.
    fn parse(buffer: &mut BytesMut) -> Parsed<Self::Answer>;
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

/// One connection's life: connect and greet, then [`serve`] the queue's
/// reads, until the queue's senders are gone or the connection fails. Every
/// read still waiting then gets the error.
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
    let mut waiting = VecDeque::new();
    let failure = serve::<P>(stream, buffer, &mut queue, &mut waiting, command_timeout).await;
    // Later reads make a new connection; these get the error.
    queue.close();
    if let Some(failure) = failure {
        for reply in waiting.drain(..) {
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

    fn broken(what: &str) -> Failure {
        Failure::Io(io::ErrorKind::InvalidData, what.to_owned())
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

/// Writes the queue's commands and reads their answers, in one loop on
/// one task: commands waiting in the queue (while reads are in flight,
/// after one turn of the scheduler, for more to come) go out in one write
/// (as much of it as the socket takes, the rest when it takes more,
/// reading answers meanwhile), their replies wait in `waiting` in the same
/// order, and every whole answer a read brings is handed to the oldest
/// waiting reply.
///
/// One timer serves the whole connection: an answer is awaited at most
/// `command_timeout` after the last progress (an answer, or a write while
/// nothing waited). The timer is moved only when it goes off before that,
/// not for every read: a timer per read cost more than the read's parsing.
///
/// Ends with the failure that broke the connection, or `None` when the
/// queue's senders are gone and nothing waits.
async fn serve<P: Protocol>(
    mut stream: TcpStream,
    mut buffer: BytesMut,
    queue: &mut mpsc::UnboundedReceiver<Command<P::Answer>>,
    waiting: &mut VecDeque<Reply<P::Answer>>,
    command_timeout: Duration,
) -> Option<Failure> {
    let (mut read, mut write) = stream.split();
    let mut batch = Vec::with_capacity(BATCH);
    let mut out: Vec<u8> = Vec::new();
    let mut written = 0;
    let mut senders = true;
    let mut progress = Instant::now();
    let deadline = tokio::time::sleep_until(progress + command_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            // Answers first: they free their callers. Read also when no
            // read waits, to see the server close an idle connection (a
            // restart, an idle timeout): the next read then connects again
            // instead of failing on the closed one.
            got = read.read_buf(&mut buffer) => {
                match got {
                    Ok(0) => {
                        return Some(Failure::Io(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection".into(),
                        ));
                    }
                    Ok(_) => {}
                    Err(error) => return Some(Failure::io(error)),
                }
                if let Some(failure) = hand_out::<P>(&mut buffer, waiting) {
                    return Some(failure);
                }
                progress = Instant::now();
                if buffer.is_empty() && buffer.capacity() > KEEP_BUFFER {
                    buffer = BytesMut::with_capacity(READ_BUFFER);
                } else if buffer.capacity() == buffer.len() {
                    buffer.reserve(READ_BUFFER);
                }
            }
            wrote = write.write(&out[written..]), if written < out.len() => {
                match wrote {
                    Ok(0) => return Some(Failure::io(io::ErrorKind::WriteZero.into())),
                    Ok(n) => written += n,
                    Err(error) => return Some(Failure::io(error)),
                }
                if written == out.len() {
                    out.clear();
                    written = 0;
                }
            }
            // New commands once the last batch is out.
            taken = queue.recv_many(&mut batch, BATCH), if senders && out.is_empty() => {
                if taken == 0 {
                    // The backend is gone: answer what waits, then end.
                    senders = false;
                } else {
                    let busy = !waiting.is_empty();
                    if !busy {
                        progress = Instant::now();
                    }
                    // While other reads are in flight, a batch that is not
                    // full waits one turn of the scheduler: the requests
                    // ready on this worker send their reads meanwhile, and
                    // they go out in the same write. Under 50 connections
                    // on Redis, that took the writes per read from 0.58 to
                    // 0.08 and the hits per second up by a tenth. A read
                    // alone goes at once: the turn cost it 2,500
                    // instructions and a wake-up, for nothing to join it.
                    if busy && taken < BATCH {
                        tokio::task::yield_now().await;
                        while batch.len() < BATCH {
                            match queue.try_recv() {
                                Ok(command) => batch.push(command),
                                Err(_) => break,
                            }
                        }
                    }
                    for command in batch.drain(..) {
                        out.extend_from_slice(&command.line);
                        waiting.push_back(command.reply);
                    }
                }
            }
            () = &mut deadline, if !waiting.is_empty() => {
                let due = progress + command_timeout;
                if Instant::now() >= due {
                    return Some(Failure::Timeout(command_timeout));
                }
                deadline.as_mut().reset(due);
            }
        }
        if !senders && waiting.is_empty() {
            return None;
        }
    }
}

/// Hands every whole answer in `buffer` to the oldest waiting reply. A
/// failure when the stream cannot be read on: a broken answer, a refusal
/// that may leave it out of step, or an answer no read waits for.
fn hand_out<P: Protocol>(
    buffer: &mut BytesMut,
    waiting: &mut VecDeque<Reply<P::Answer>>,
) -> Option<Failure> {
    while !waiting.is_empty() {
        let answer = match P::parse(buffer) {
            Ok(Some(answer)) => answer,
            Ok(None) => return None,
            Err(error) => return Some(Failure::io(error)),
        };
        let reply = waiting.pop_front()?;
        match answer {
            Ok(found) => {
                let _ = reply.send(Ok(found));
            }
            Err(Refused { message, fatal }) => {
                let _ = reply.send(Err(ReadError::Refused(message.clone())));
                if fatal {
                    return Some(Failure::Io(io::ErrorKind::InvalidData, message));
                }
            }
        }
    }
    (!buffer.is_empty()).then(|| Failure::broken("an answer to no read"))
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

/// The `length` bytes at the front of `buffer`, consumed, copied into an
/// allocation of their own. A slice of the buffer would keep the whole
/// buffer alive for as long as the value lives (in an L1, or in the
/// caller's hands: a 1 KiB page would hold 16 KiB, a 20 KiB one up to
/// 40 KiB, past what a byte bound counts) and make the buffer reallocate on
/// the next read.
pub(crate) fn take_value(buffer: &mut BytesMut, length: usize) -> Bytes {
    let value = Bytes::copy_from_slice(&buffer[..length]);
    buffer.advance(length);
    value
}

/// One parse of `input` by `P`, and how many bytes it left.
#[cfg(test)]
pub(crate) fn parse_once<P: Protocol>(input: &[u8]) -> (Parsed<P::Answer>, usize) {
    let mut buffer = BytesMut::from(input);
    let parsed = P::parse(&mut buffer);
    (parsed, buffer.len())
}

/// Checks that `P` waits for the rest of each of `inputs`, consuming none
/// of it.
#[cfg(test)]
pub(crate) fn assert_partial<P: Protocol>(inputs: &[&[u8]]) {
    for input in inputs {
        let (parsed, left) = parse_once::<P>(input);
        assert!(parsed.unwrap().is_none(), "{input:?}");
        assert_eq!(left, input.len(), "nothing consumed from {input:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::AsyncBufReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A protocol of lines: every line is an answer; `ERR ...` is a
    /// refusal, fatal when it says `ERR fatal`.
    struct Lines;

    impl Protocol for Lines {
        type Answer = Bytes;

        fn parse(buffer: &mut BytesMut) -> Parsed<Bytes> {
            let Some(end) = line_end(buffer, 0) else {
                return Ok(None);
            };
            let line = take_value(buffer, end);
            buffer.advance(2);
            Ok(Some(match line.strip_prefix(b"ERR ") {
                Some(message) => Err(Refused {
                    message: String::from_utf8_lossy(message).into_owned(),
                    fatal: message == b"fatal",
                }),
                None => Ok(line),
            }))
        }
    }

    /// What the fake server has seen.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        reads: AtomicUsize,
        lines: AtomicUsize,
    }

    /// A server on a free port that answers each line with what `answer`
    /// makes of it (`None`: no answer), and counts its connections, its
    /// reads of the socket and the lines.
    async fn server(
        answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> (String, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Seen::default());
        let answer = Arc::new(answer);
        let counts = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let (counts, answer) = (Arc::clone(&counts), Arc::clone(&answer));
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = tokio::io::BufReader::new(read);
                    loop {
                        let Ok(got) = read.fill_buf().await else {
                            return;
                        };
                        if got.is_empty() {
                            return;
                        }
                        counts.reads.fetch_add(1, Ordering::SeqCst);
                        let got = got.to_vec();
                        read.consume(got.len());
                        let mut out = String::new();
                        let mut bye = false;
                        for line in String::from_utf8(got).unwrap().split_terminator("\r\n") {
                            counts.lines.fetch_add(1, Ordering::SeqCst);
                            bye |= line == "BYE";
                            if let Some(reply) = answer(line) {
                                out.push_str(&reply);
                                out.push_str("\r\n");
                            }
                        }
                        if write.write_all(out.as_bytes()).await.is_err() || bye {
                            return;
                        }
                    }
                });
            }
        });
        (address, seen)
    }

    #[test]
    fn values_own_their_allocation() {
        let mut buffer = BytesMut::from(&[b'x'; 100_000][..]);
        let small = take_value(&mut buffer, 10);
        let large = take_value(&mut buffer, 50_000);
        assert!(
            small.is_unique() && large.is_unique(),
            "not slices of the buffer"
        );
        assert_eq!(
            (small.len(), large.len(), buffer.len()),
            (10, 50_000, 49_990)
        );
    }

    fn lanes(address: &str, greeting: Greeting, command_timeout: Duration) -> Lanes<Lines> {
        Lanes::new(
            [(address.to_owned(), greeting)],
            Duration::from_secs(1),
            command_timeout,
        )
    }

    fn line(text: &str) -> Vec<u8> {
        format!("{text}\r\n").into_bytes()
    }

    #[tokio::test]
    async fn concurrent_reads_share_writes_and_each_gets_its_answer() {
        let (address, seen) = server(|line| {
            Some(match line.strip_prefix("read ") {
                Some(n) => format!("READ {n}"),
                None => line.to_owned(),
            })
        })
        .await;
        let lanes = lanes(&address, Greeting::default(), Duration::from_secs(5));
        // Every read sent before any answer is awaited: one batch.
        let sent: Vec<_> = (0..50)
            .map(|i| lanes.send(0, line(&format!("read {i}"))))
            .collect();
        for (i, answer) in sent.into_iter().enumerate() {
            let answer = lanes.answer(answer).await.unwrap();
            assert_eq!(answer, format!("READ {i}"));
        }
        assert_eq!(seen.lines.load(Ordering::SeqCst), 50);
        assert!(seen.reads.load(Ordering::SeqCst) < 50, "one write per read");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        // A refusal answers its read alone; a fatal one ends the connection,
        // and the next read makes another.
        let refused = lanes.get(0, line("ERR not this one")).await.unwrap_err();
        assert!(matches!(refused, ReadError::Refused(m) if m == "not this one"));
        assert_eq!(lanes.get(0, line("still")).await.unwrap(), "still");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        assert!(lanes.get(0, line("ERR fatal")).await.is_err());
        assert_eq!(lanes.get(0, line("again")).await.unwrap(), "again");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_made_again_without_an_error() {
        let (address, seen) = server(|line| Some(line.to_owned())).await;
        let lanes = lanes(&address, Greeting::default(), Duration::from_secs(5));
        // The server answers, then closes the connection (a restart, an
        // idle timeout).
        assert_eq!(lanes.get(0, line("BYE")).await.unwrap(), "BYE");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(lanes.get(0, line("next")).await.unwrap(), "next");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_silent_server_times_every_waiting_read_out_once() {
        let answering = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let on = Arc::clone(&answering);
        let (address, seen) =
            server(move |line| on.load(Ordering::SeqCst).then(|| line.to_owned())).await;
        let timeout = Duration::from_millis(300);
        let lanes = lanes(&address, Greeting::default(), timeout);
        // A read after the connection idled past the timeout still gets
        // its whole timeout.
        answering.store(true, Ordering::SeqCst);
        assert_eq!(lanes.get(0, line("first")).await.unwrap(), "first");
        tokio::time::sleep(timeout * 2).await;
        answering.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let sent: Vec<_> = (0..3)
            .map(|i| lanes.send(0, line(&i.to_string())))
            .collect();
        for answer in sent {
            assert!(matches!(
                lanes.answer(answer).await,
                Err(ReadError::Timeout(after)) if after == timeout
            ));
        }
        let waited = started.elapsed();
        assert!(
            waited >= timeout && waited < timeout * 2,
            "the reads waited {waited:?}"
        );
        // The connection was closed; the next read makes another.
        answering.store(true, Ordering::SeqCst);
        assert_eq!(lanes.get(0, line("back")).await.unwrap(), "back");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_greeting_fails_the_reads_and_answers_to_no_read_end_the_connection() {
        let (address, seen) = server(|line| match line {
            "HELLO" => Some("ERR who are you".into()),
            "TWICE" => Some("one\r\ntwo".into()),
            other => Some(other.to_owned()),
        })
        .await;
        let greeting = Greeting {
            commands: line("HELLO"),
            answers: 1,
        };
        let refused = lanes(&address, greeting, Duration::from_secs(5));
        let err = refused.get(0, line("read")).await.unwrap_err();
        assert!(
            matches!(&err, ReadError::Refused(m) if m == "who are you (setting up the connection)"),
            "{err:?}"
        );
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        // Two answers (in one write) to one read: the stream is out of step,
        // so the connection ends; the next read makes another.
        let lanes = lanes(&address, Greeting::default(), Duration::from_secs(5));
        assert_eq!(lanes.get(0, line("TWICE")).await.unwrap(), "one");
        assert_eq!(lanes.get(0, line("next")).await.unwrap(), "next");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }
}
