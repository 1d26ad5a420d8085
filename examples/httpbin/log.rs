//! Stdout for the demo's log, off the request path: `tracing-appender`'s
//! non-blocking writer, with a writer behind it that lets lines gather.
//!
//! `tracing_appender::non_blocking` hands each line to a thread of its own
//! through a queue; that thread writes what is queued, flushes, and sleeps
//! until the next line. Under load that is one wake-up per line, paid for by
//! the request that logs it (a futex call) and by the writing thread (a
//! context switch): about 2 µs of CPU a request, a tenth of a cached page's
//! cost. [`Paced`] pauses for [`PAUSE`] after each flush instead, so the
//! thread finds the next lines already queued and writes them in one go:
//! at most 50 wake-ups a second, however busy the server is. A line waits
//! at most [`PAUSE`]; the first after a quiet spell prints at once.

use std::io::{self, BufWriter, Stdout, Write};
use std::time::Duration;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

/// How long the writing thread lets lines gather after a flush.
pub(crate) const PAUSE: Duration = Duration::from_millis(20);

/// A non-blocking stdout: lines stay in order and none is lost (a full queue,
/// 128,000 lines, makes the request wait). Keep the guard until the end:
/// dropping it writes what is still queued.
pub(crate) fn stdout() -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log")
        .finish(Paced(BufWriter::with_capacity(64 * 1024, io::stdout())))
}

/// Buffered stdout that pauses after each flush; `tracing-appender`'s thread
/// flushes when it has emptied the queue.
struct Paced(BufWriter<Stdout>);

impl Write for Paced {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.0.write(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        std::thread::sleep(PAUSE);
        Ok(())
    }
}
