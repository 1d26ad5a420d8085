//! Request coalescing in one process (single flight): while one request for
//! a page is being answered by the inner service, the others for the same
//! page wait for its response instead of calling the service too.
//!
//! The first request for a key leads: it holds a [`Leader`], which publishes
//! the response once its body has been read whole and found storable (or
//! publishes that there is nothing to share). The others follow: they wait,
//! at most the configured bound, and then serve the shared response if it
//! applies to them (same values of the headers it varies on, a coding they
//! accept), or call the service themselves.
//!
//! Cancellation: a leader dropped before publishing (its client went away)
//! publishes `Abandoned` and leaves the table; one of the followers then
//! leads in its place, so at worst one more call reaches the service. A
//! follower dropped while waiting leaves nothing behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::http::key::{Md5Hex, VaryHeaders};
use crate::http::stored::StoredResponse;

/// A response a leader shares with its followers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) stored: StoredResponse,
    /// The headers the response varies on, and the leader's hash of them:
    /// a follower whose hash differs is not answered with it.
    pub(crate) vary: VaryHeaders,
    pub(crate) vary_hash: Md5Hex,
}

#[derive(Debug, Clone)]
enum State {
    Pending,
    /// The leader's response, or `None` when it is not to be shared.
    Done(Option<Arc<Shared>>),
    /// The leader went away without an answer.
    Abandoned,
}

/// The flights in progress, by key.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    table: Mutex<HashMap<String, watch::Sender<State>>>,
    /// How many flights have ended. A request whose read missed while a
    /// flight was storing its page, and that joins after the flight ended,
    /// would lead a flight of its own and call the service again: it
    /// compares this count before its read and when it leads, and reads
    /// again when a flight ended in between.
    ended: AtomicU64,
}

/// What joining a flight made of a request.
pub(crate) enum Joined {
    Leader(Leader),
    Follower(Follower),
}

impl Flights {
    /// Leads the flight for `key`, or follows the one in progress.
    pub(crate) fn join(self: &Arc<Self>, key: String) -> Joined {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = table.get(&key) {
            return Joined::Follower(Follower {
                receiver: sender.subscribe(),
            });
        }
        let (sender, _) = watch::channel(State::Pending);
        table.insert(key.clone(), sender.clone());
        Joined::Leader(Leader {
            flights: self.clone(),
            key,
            sender,
        })
    }

    /// How many flights have ended so far: read before a lookup's first
    /// read, and compared with [`ended_since`](Flights::ended_since) when the
    /// request comes to lead.
    pub(crate) fn ended(&self) -> u64 {
        self.ended.load(Ordering::Acquire)
    }

    /// Whether a flight ended after [`ended`](Flights::ended) gave `before`.
    pub(crate) fn ended_since(&self, before: u64) -> bool {
        self.ended() != before
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

/// The request that calls the inner service for a key. Dropping it without
/// [`publish`](Leader::publish) tells the followers it was abandoned.
#[derive(Debug)]
pub(crate) struct Leader {
    flights: Arc<Flights>,
    key: String,
    sender: watch::Sender<State>,
}

impl Leader {
    /// Hands the followers the response (`None`: nothing to share; they
    /// call the service themselves). The flight ends when the leader is
    /// dropped: until then, requests that join it get the same answer at
    /// once (so a page published but not yet stored is not fetched again).
    pub(crate) fn publish(&self, shared: Option<Arc<Shared>>) {
        self.sender.send_replace(State::Done(shared));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut table = self.flights.table.lock().unwrap_or_else(|e| e.into_inner());
        if table
            .get(&self.key)
            .is_some_and(|s| s.same_channel(&self.sender))
        {
            table.remove(&self.key);
        }
        // Counted under the lock: a request that joins after this removal
        // sees the count moved.
        self.flights.ended.fetch_add(1, Ordering::AcqRel);
        drop(table);
        self.sender.send_if_modified(|state| {
            let pending = matches!(state, State::Pending);
            if pending {
                *state = State::Abandoned;
            }
            pending
        });
    }
}

/// A request waiting for a leader's response.
pub(crate) struct Follower {
    receiver: watch::Receiver<State>,
}

/// What a follower got.
pub(crate) enum Waited {
    /// The leader's response.
    Shared(Arc<Shared>),
    /// Nothing to share, or the wait bound passed: call the service.
    Alone,
    /// The leader went away: join again (one follower leads next).
    Again,
}

impl Follower {
    /// Waits at most `bound` for the leader.
    pub(crate) async fn wait(mut self, bound: Duration) -> Waited {
        let done = self
            .receiver
            .wait_for(|state| !matches!(state, State::Pending));
        match tokio::time::timeout(bound, done).await {
            Ok(Ok(state)) => match &*state {
                State::Done(Some(shared)) => Waited::Shared(shared.clone()),
                State::Done(None) => Waited::Alone,
                State::Abandoned | State::Pending => Waited::Again,
            },
            // The sender is gone: only after the leader's drop published.
            Ok(Err(_)) => Waited::Again,
            Err(_elapsed) => Waited::Alone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::stored::Freshness;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            stored: StoredResponse::new(
                StatusCode::OK,
                HeaderMap::new(),
                Bytes::from_static(b"x"),
                Freshness::default(),
            ),
            vary: VaryHeaders::default(),
            vary_hash: Md5Hex::digest(b""),
        })
    }

    #[tokio::test]
    async fn followers_get_the_leaders_response_and_the_table_empties() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join("k".into()) else {
            panic!("first joiner leads")
        };
        let Joined::Follower(follower) = flights.join("k".into()) else {
            panic!("second follows")
        };
        let waiting = tokio::spawn(follower.wait(Duration::from_secs(5)));
        leader.publish(Some(shared()));
        assert!(matches!(waiting.await.unwrap(), Waited::Shared(_)));
        // Until the leader is dropped (its page stored), joiners get it too.
        let Joined::Follower(late) = flights.join("k".into()) else {
            panic!("the flight lasts until the leader is dropped")
        };
        assert!(matches!(
            late.wait(Duration::from_secs(5)).await,
            Waited::Shared(_)
        ));
        let before = flights.ended();
        drop(leader);
        assert_eq!(flights.len(), 0);
        assert!(flights.ended_since(before), "an ended flight is counted");
    }

    #[tokio::test]
    async fn a_dropped_leader_lets_a_follower_lead() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(leader) = flights.join("k".into()) else {
            panic!()
        };
        let Joined::Follower(follower) = flights.join("k".into()) else {
            panic!()
        };
        drop(leader);
        assert!(matches!(
            follower.wait(Duration::from_secs(5)).await,
            Waited::Again
        ));
        assert!(matches!(flights.join("k".into()), Joined::Leader(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded_and_dropped_followers_leave_nothing() {
        let flights = Arc::new(Flights::default());
        let Joined::Leader(_leader) = flights.join("k".into()) else {
            panic!()
        };
        let Joined::Follower(follower) = flights.join("k".into()) else {
            panic!()
        };
        assert!(matches!(
            follower.wait(Duration::from_secs(5)).await,
            Waited::Alone
        ));
        let Joined::Follower(dropped) = flights.join("k".into()) else {
            panic!()
        };
        drop(dropped);
        assert_eq!(flights.len(), 1, "only the leader's entry");
    }
}
