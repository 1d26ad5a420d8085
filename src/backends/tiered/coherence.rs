//! Keeping the L1s of every app instance coherent through Redis pub/sub.
//!
//! Every write, delete or clear made through a tiered backend is announced
//! with one `PUBLISH` on the cache's channel, naming the keys (or "all").
//! Each process keeps **one subscriber connection per Redis deployment and
//! channel** (per tokio runtime: a process normally has one), shared by
//! every tiered backend of the process on that channel; a message removes
//! its keys from each of their L1s.
//!
//! # Guarantees
//!
//! * **When a write returns, every L1 of this process is coherent with
//!   it.** The writer waits until its own message comes back through the
//!   process's subscriber (one round trip, as the `PUBLISH` answer itself),
//!   which has by then applied it to every L1 of the process. Redis hands a
//!   message to every subscriber's connection before it answers the
//!   `PUBLISH`, so other processes have it on their sockets too: on loopback
//!   they apply it within a millisecond.
//! * **While the subscriber is down, no L1 of the process is used**: on a
//!   disconnect (or a ping without answer, or a message of ours that did
//!   not come back in time) every L1 is cleared, and reads go to the shared
//!   tier without filling L1 until the subscription is back. Messages
//!   published meanwhile are lost, but nothing they would have removed is
//!   left to serve.
//! * A message that cannot be read clears the L1s (it fails closed).
//! * The writer's own message comes back to it too and removes the keys
//!   again: harmless, since a write never fills L1 (at worst a read that
//!   refilled the key in between reads it once more).
//!
//! # Redis Cluster
//!
//! Classic `PUBLISH`/`SUBSCRIBE`, not sharded pub/sub: a cluster forwards a
//! classic message to every node over its bus, so one subscriber connection
//! to any node sees every message, whichever node it was published on. It
//! costs one bus message per node per publish, which invalidations, rare
//! beside reads, can afford; sharded pub/sub would need a subscriber that
//! follows the channel's slot through failovers and resharding. When the
//! node the subscriber uses fails, the subscriber moves to the next node
//! of the URL (clearing the L1s meanwhile, as for any disconnect).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use deadpool_redis::redis::aio::{PubSubSink, PubSubStream};
use deadpool_redis::redis::{self, ConnectionInfo, Value};
use futures_util::StreamExt;
use tokio::sync::{Notify, oneshot};

use super::l1::{Invalidation, L1};
use crate::backends::RedisBackend;
use crate::error::{ConfigError, Result};

/// How often the subscriber pings Redis, so that a connection lost without
/// a word (a network partition) is noticed: within about twice this.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The first wait before connecting again, doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The first word of every message: the layout's name and version.
const MAGIC: &str = "tower_cache.l1.v1";

/// Invalidations of a tiered backend's L1s, carried by Redis pub/sub; give
/// it to [`TieredBackendBuilder::coherence`](super::TieredBackendBuilder::coherence).
///
/// The Redis may be the tiered backend's shared tier or another one: a
/// tiered memcached or database cache can announce its writes through a
/// Redis too. Every app instance of one cache must use the same Redis and
/// channel.
///
/// ```no_run
/// use std::sync::Arc;
/// use tower_cache::Cache;
/// use tower_cache::backends::{RedisBackend, RedisInvalidation, TieredBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tower_cache::Result<()> {
/// let redis = RedisBackend::builder(["redis://127.0.0.1:6379/0"]).build().await?;
/// let tiered = TieredBackend::builder(Arc::new(redis.clone()))
///     .l1_max_bytes(64 * 1024 * 1024)
///     .coherence(RedisInvalidation::new(&redis))
///     .build()
///     .await?;
/// let cache = Cache::new(Arc::new(tiered));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisInvalidation {
    redis: RedisBackend,
    channel: Option<String>,
}

impl RedisInvalidation {
    /// Invalidations through `redis`'s servers (the primary, or any node of
    /// a cluster), on the default channel.
    pub fn new(redis: &RedisBackend) -> RedisInvalidation {
        RedisInvalidation {
            redis: redis.clone(),
            channel: None,
        }
    }

    /// The pub/sub channel (default `tower_cache.l1.db<N>`, `N` the URL's
    /// database number). Keys in messages are whole made keys (prefix and
    /// version included), so caches with different prefixes may share a
    /// channel; pub/sub ignores database numbers, which is why the default
    /// names one. Name a channel of your own to keep other applications'
    /// messages (harmless, but extra work) away.
    #[must_use]
    pub fn channel(mut self, channel: impl Into<String>) -> RedisInvalidation {
        self.channel = Some(channel.into());
        self
    }

    fn channel_name(&self) -> String {
        self.channel
            .clone()
            .unwrap_or_else(|| format!("tower_cache.l1.db{}", self.redis.database()))
    }
}

/// A tiered backend's membership in its process's subscriber, and what it
/// publishes through.
pub(super) struct Channel {
    hub: Arc<Hub>,
    publisher: RedisBackend,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("channel", &self.hub.channel)
            .field("live", &self.is_live())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Joins (or starts) the process's subscriber for `config`'s
    /// deployment and channel; `l1` receives its invalidations. Waits for
    /// the subscriber's first attempt to connect (at most the connect and
    /// command timeouts), so that a backend built while Redis is up uses
    /// its L1 from the first request; never fails because Redis is down.
    pub(super) async fn join(config: &RedisInvalidation, l1: &Arc<L1>) -> Result<Channel> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ConfigError::InvalidOption {
                backend: "tiered",
                option: "coherence".into(),
                value: config.channel_name(),
                reason: "build a tiered backend inside a tokio runtime: its subscriber runs there"
                    .into(),
            })?;
        let channel = config.channel_name();
        let targets = config.redis.subscribe_to().to_vec();
        let (connect_timeout, command_timeout) = config.redis.timeouts();
        let mut key = format!("{}|{channel}", runtime.id());
        for target in &targets {
            key.push('|');
            key.push_str(&target.addr().to_string());
            key.push('/');
            key.push_str(&target.redis_settings().db().to_string());
        }
        let hub = {
            let mut hubs = HUBS.lock().unwrap_or_else(PoisonError::into_inner);
            match hubs.get(&key).and_then(Weak::upgrade) {
                Some(hub) => hub,
                None => {
                    let hub = Arc::new(Hub {
                        key: key.clone(),
                        channel,
                        targets,
                        connect_timeout,
                        command_timeout,
                        origin: fastrand::u64(..),
                        next_seq: AtomicU64::new(0),
                        state: AtomicU8::new(DOWN),
                        attempted: AtomicBool::new(false),
                        first_attempt: Notify::new(),
                        reconnect: Arc::new(Notify::new()),
                        members: Mutex::new(Vec::new()),
                        waiters: Mutex::new(HashMap::new()),
                        task: Mutex::new(None),
                    });
                    let task =
                        runtime.spawn(subscribe(Arc::downgrade(&hub), Arc::clone(&hub.reconnect)));
                    *hub.task.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(task.abort_handle());
                    hubs.insert(key, Arc::downgrade(&hub));
                    hub
                }
            }
        };
        hub.lock_members().push(Arc::downgrade(l1));
        {
            let notified = hub.first_attempt.notified();
            if !hub.attempted.load(Ordering::SeqCst) {
                let _ = tokio::time::timeout(connect_timeout + command_timeout, notified).await;
            }
        }
        Ok(Channel {
            hub,
            publisher: config.redis.clone(),
        })
    }

    /// Whether the subscriber is up, so that L1 may be used.
    pub(super) fn is_live(&self) -> bool {
        self.hub.state.load(Ordering::SeqCst) == UP
    }

    /// Announces `what` to every instance, and waits until the process's
    /// own subscriber has applied it (see the module docs).
    ///
    /// # Errors
    ///
    /// The `PUBLISH` failed: other instances may keep their copies for up
    /// to their L1 lifetime.
    pub(super) async fn publish(&self, what: Invalidation<'_>) -> Result<()> {
        let hub = &self.hub;
        let seq = hub.next_seq.fetch_add(1, Ordering::Relaxed);
        let message = encode(hub.origin, seq, what);
        let echo = self.is_live().then(|| {
            let (sender, receiver) = oneshot::channel();
            hub.lock_waiters().insert(seq, sender);
            receiver
        });
        if let Err(err) = self.publisher.publish(&hub.channel, message).await {
            hub.lock_waiters().remove(&seq);
            return Err(err);
        }
        let Some(echo) = echo else {
            return Ok(());
        };
        match tokio::time::timeout(hub.command_timeout, echo).await {
            // Applied; or the subscriber went down meanwhile, which cleared
            // the L1s.
            Ok(_) => {}
            Err(_) => {
                hub.lock_waiters().remove(&seq);
                tracing::warn!(
                    channel = %hub.channel,
                    after = ?hub.command_timeout,
                    "an L1 invalidation did not come back through the subscriber; \
                     clearing the L1s and subscribing again"
                );
                hub.set_down();
                hub.reconnect.notify_one();
            }
        }
        Ok(())
    }
}

/// The process's subscribers, by runtime, deployment and channel.
static HUBS: LazyLock<Mutex<HashMap<String, Weak<Hub>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Subscriber states.
const DOWN: u8 = 0;
const UP: u8 = 1;
/// The subscriber's runtime is gone: L1s stay unused.
const DEAD: u8 = 2;

/// One subscriber connection and the L1s it serves.
struct Hub {
    key: String,
    channel: String,
    targets: Vec<ConnectionInfo>,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// Tells this process's messages from others'.
    origin: u64,
    next_seq: AtomicU64,
    state: AtomicU8,
    attempted: AtomicBool,
    first_attempt: Notify,
    /// Asks the subscriber to drop its connection and subscribe again.
    reconnect: Arc<Notify>,
    members: Mutex<Vec<Weak<L1>>>,
    /// Publishers waiting for their message to come back, by sequence.
    waiters: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Hub {
    fn lock_members(&self) -> std::sync::MutexGuard<'_, Vec<Weak<L1>>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live members (the others are forgotten).
    fn members(&self) -> Vec<Arc<L1>> {
        let mut members = self.lock_members();
        members.retain(|member| member.strong_count() > 0);
        members.iter().filter_map(Weak::upgrade).collect()
    }

    fn attempted(&self) {
        self.attempted.store(true, Ordering::SeqCst);
        self.first_attempt.notify_waiters();
    }

    /// The subscriber is down (or gone, with `state` [`DEAD`]): L1s stop
    /// being used, then are cleared; waiting publishers are let go.
    fn set_state_and_clear(&self, state: u8) {
        self.state.store(state, Ordering::SeqCst);
        for member in self.members() {
            member.invalidate_all();
        }
        self.lock_waiters().clear();
    }

    fn set_down(&self) {
        self.set_state_and_clear(DOWN);
    }

    /// Applies a message to every L1, then lets its publisher go if it is
    /// ours.
    async fn receive(&self, payload: &[u8]) {
        let (sender, what) = decode(payload);
        let keys: Vec<&str>;
        let what = match what {
            Decoded::Keys(text) => {
                keys = text.split('\n').collect();
                Invalidation::Keys(&keys)
            }
            Decoded::All => Invalidation::All,
        };
        for member in self.members() {
            member.invalidate(what).await;
        }
        let ours = sender.filter(|&(origin, _)| origin == self.origin);
        let waiter = ours.and_then(|(_, seq)| self.lock_waiters().remove(&seq));
        if let Some(waiter) = waiter {
            let _ = waiter.send(());
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        let mut hubs = HUBS.lock().unwrap_or_else(PoisonError::into_inner);
        // A new hub may have taken the key since this one's last user left.
        if hubs
            .get(&self.key)
            .is_some_and(|hub| hub.strong_count() == 0)
        {
            hubs.remove(&self.key);
        }
    }
}

/// Marks the hub dead when the subscriber task is dropped while the hub
/// lives on: its runtime shut down.
struct DeadOnDrop(Weak<Hub>);

impl Drop for DeadOnDrop {
    fn drop(&mut self) {
        if let Some(hub) = self.0.upgrade() {
            hub.set_state_and_clear(DEAD);
        }
    }
}

/// The subscriber: connects, subscribes, applies messages until the
/// connection is lost, and starts again, for as long as the hub lives.
async fn subscribe(hub: Weak<Hub>, reconnect: Arc<Notify>) {
    let _dead = DeadOnDrop(hub.clone());
    let mut backoff = MIN_BACKOFF;
    let mut target = 0;
    let mut was_up = true;
    loop {
        let Some((info, channel, timeouts)) = hub.upgrade().and_then(|hub| {
            let info = hub.targets.get(target % hub.targets.len().max(1))?.clone();
            let timeouts = (hub.connect_timeout, hub.command_timeout);
            Some((info, hub.channel.clone(), timeouts))
        }) else {
            return;
        };
        let connected = connect(&info, &channel, timeouts).await;
        let Some(strong) = hub.upgrade() else {
            return;
        };
        match connected {
            Ok((sink, stream)) => {
                strong.state.store(UP, Ordering::SeqCst);
                strong.attempted();
                drop(strong);
                tracing::debug!(%channel, server = %info.addr(), "L1 invalidations: subscribed");
                backoff = MIN_BACKOFF;
                was_up = true;
                let why = listen(&hub, &reconnect, sink, stream).await;
                tracing::warn!(%channel, server = %info.addr(), reason = why,
                    "L1 invalidations: subscriber lost; L1 cleared and bypassed until subscribed again");
                match hub.upgrade() {
                    Some(hub) => hub.set_down(),
                    None => return,
                }
            }
            Err(error) => {
                strong.attempted();
                drop(strong);
                if was_up {
                    tracing::warn!(%channel, server = %info.addr(), %error,
                        "L1 invalidations: cannot subscribe; L1 bypassed until subscribed");
                    was_up = false;
                }
                target += 1;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn connect(
    info: &ConnectionInfo,
    channel: &str,
    (connect_timeout, command_timeout): (Duration, Duration),
) -> Result<(PubSubSink, PubSubStream), redis::RedisError> {
    let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let client = redis::Client::open(info.clone())?;
    let pubsub = tokio::time::timeout(connect_timeout, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    let (mut sink, stream) = pubsub.split();
    tokio::time::timeout(command_timeout, sink.subscribe(channel))
        .await
        .map_err(|_| timed_out())??;
    Ok((sink, stream))
}

/// Applies messages until the connection is lost; returns why it ended.
async fn listen(
    hub: &Weak<Hub>,
    reconnect: &Notify,
    sink: PubSubSink,
    mut stream: PubSubStream,
) -> &'static str {
    let heartbeat = heartbeat(sink);
    tokio::pin!(heartbeat);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return "the connection closed";
                };
                let Some(hub) = hub.upgrade() else {
                    return "the last tiered backend is gone";
                };
                hub.receive(message.get_payload_bytes()).await;
            }
            why = &mut heartbeat => return why,
            () = reconnect.notified() => return "a message of ours did not come back in time",
        }
    }
}

/// Pings every [`HEARTBEAT`]; returns when an answer does not come within
/// another.
async fn heartbeat(mut sink: PubSubSink) -> &'static str {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        match tokio::time::timeout(HEARTBEAT, sink.ping::<Value>()).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return "a ping failed",
            Err(_) => return "a ping got no answer",
        }
    }
}

/// `tower_cache.l1.v1 <origin> <seq> keys|all`, then one key per line.
fn encode(origin: u64, seq: u64, what: Invalidation<'_>) -> Vec<u8> {
    let mut message = format!("{MAGIC} {origin:016x} {seq} ");
    match what {
        Invalidation::Keys(keys) => {
            message.push_str("keys");
            for key in keys {
                message.push('\n');
                message.push_str(key);
            }
        }
        Invalidation::All => message.push_str("all"),
    }
    message.into_bytes()
}

/// What a message asks to remove.
#[derive(Debug, PartialEq, Eq)]
enum Decoded<'a> {
    /// Keys, one per line (keys hold no white space).
    Keys(&'a str),
    All,
}

/// The sender (origin, sequence) and the invalidation of a message; a
/// message that cannot be read removes everything.
fn decode(payload: &[u8]) -> (Option<(u64, u64)>, Decoded<'_>) {
    let unreadable = (None, Decoded::All);
    let Ok(text) = std::str::from_utf8(payload) else {
        return unreadable;
    };
    let (header, keys) = text.split_once('\n').unwrap_or((text, ""));
    let mut words = header.split(' ');
    let (Some(MAGIC), Some(origin), Some(seq), Some(kind), None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return unreadable;
    };
    let (Ok(origin), Ok(seq)) = (u64::from_str_radix(origin, 16), seq.parse()) else {
        return unreadable;
    };
    match kind {
        "keys" if !keys.is_empty() => (Some((origin, seq)), Decoded::Keys(keys)),
        "all" => (Some((origin, seq)), Decoded::All),
        _ => unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let keys = [":1:a", "p:2:b"];
        let message = encode(0xabc, 7, Invalidation::Keys(&keys));
        assert_eq!(
            message,
            b"tower_cache.l1.v1 0000000000000abc 7 keys\n:1:a\np:2:b"
        );
        assert_eq!(
            decode(&message),
            (Some((0xabc, 7)), Decoded::Keys(":1:a\np:2:b"))
        );
        let all = encode(1, 2, Invalidation::All);
        assert_eq!(decode(&all), (Some((1, 2)), Decoded::All));
    }

    #[test]
    fn unreadable_messages_clear_everything() {
        for junk in [
            &b""[..],
            b"hello",
            b"tower_cache.l1.v2 01 1 keys\nk",
            b"tower_cache.l1.v1 zz 1 keys\nk",
            b"tower_cache.l1.v1 01 1 keys",
            b"tower_cache.l1.v1 01 1 some\nk",
            b"\xff\xfe",
        ] {
            assert_eq!(decode(junk), (None, Decoded::All), "{junk:?}");
        }
    }
}
