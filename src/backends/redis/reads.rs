//! Reads over the backend's own pipelined connections (see
//! [`Lanes`](crate::backends::lanes)): the lanes of a topology, the
//! commands, and the answers as the backend's values and errors.

use std::time::Duration;

use bytes::Bytes;
use deadpool_redis::redis;

use super::resp::{self, Reply, RespProtocol};
use super::{NAME, RedisBackend, Role, pttl};
use crate::backends::lanes::{Lanes, ReadError};
use crate::error::{CacheError, Result};

/// The read lanes of one server or a primary with replicas (in the order
/// of `infos`), when every server is reached over plain TCP.
pub(super) fn read_lanes(
    infos: &[redis::ConnectionInfo],
    connect_timeout: Duration,
    command_timeout: Duration,
) -> Option<Lanes<RespProtocol>> {
    let servers = infos
        .iter()
        .map(|info| match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => {
                let address = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                Some((address, resp::greeting(info.redis_settings())))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Lanes::new(servers, connect_timeout, command_timeout))
}

/// A read lane's failure as the cache's error.
fn read_failed(operation: &'static str, error: ReadError) -> CacheError {
    match error {
        ReadError::Timeout(after) => CacheError::Timeout {
            backend: NAME,
            after,
        },
        error => CacheError::backend(NAME, operation, error),
    }
}

/// An answer of a kind the command does not have.
fn unexpected(operation: &'static str, reply: &Reply) -> CacheError {
    let message = format!("redis answered {operation} with {}", reply.kind());
    CacheError::backend(
        NAME,
        operation,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    )
}

/// A `GET`'s answer.
pub(super) fn value_of(operation: &'static str, reply: Reply) -> Result<Option<Bytes>> {
    match reply {
        Reply::Value(value) => Ok(value),
        other => Err(unexpected(operation, &other)),
    }
}

/// An `MGET`'s answer, one value (or nil) per key.
pub(super) fn values_of(
    operation: &'static str,
    reply: Reply,
    keys: usize,
) -> Result<Vec<Option<Bytes>>> {
    match reply {
        Reply::Values(values) if values.len() == keys => Ok(values),
        other => Err(unexpected(operation, &other)),
    }
}

/// A `PTTL`'s or an `EXISTS`'s answer.
pub(super) fn integer_of(operation: &'static str, reply: Reply) -> Result<i64> {
    match reply {
        Reply::Integer(integer) => Ok(integer),
        other => Err(unexpected(operation, &other)),
    }
}

/// `MGET` of `keys`, for a read lane.
pub(super) fn mget(keys: &[&str]) -> Vec<u8> {
    let keys = keys.iter().map(|key| key.as_bytes());
    resp::command(std::iter::once(b"MGET".as_slice()).chain(keys))
}

impl RedisBackend {
    /// `line`, a read, over its server's lane, and its answer.
    pub(super) async fn read_one(
        &self,
        lanes: &Lanes<RespProtocol>,
        operation: &'static str,
        line: Vec<u8>,
    ) -> Result<Reply> {
        let lane = self.server_for(Role::Read);
        lanes
            .get(lane, line)
            .await
            .map_err(|e| read_failed(operation, e))
    }

    /// `lines`, reads, over one server's lane in one batch, and their
    /// answers in order.
    pub(super) async fn read_all(
        &self,
        lanes: &Lanes<RespProtocol>,
        operation: &'static str,
        lines: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Vec<Reply>> {
        let lane = self.server_for(Role::Read);
        let sent: Vec<_> = lines
            .into_iter()
            .map(|line| lanes.send(lane, line))
            .collect();
        let mut replies = Vec::with_capacity(sent.len());
        for answer in sent {
            let reply = lanes.answer(answer).await;
            replies.push(reply.map_err(|e| read_failed(operation, e))?);
        }
        Ok(replies)
    }

    /// `keys`' values and remaining lifetimes: `MGET` and a `PTTL` per key,
    /// in one batch on one server's lane.
    pub(super) async fn read_with_ttl(
        &self,
        lanes: &Lanes<RespProtocol>,
        operation: &'static str,
        keys: &[&str],
    ) -> Result<Vec<Option<(Bytes, Option<Duration>)>>> {
        let ttls = keys
            .iter()
            .map(|key| resp::command([b"PTTL".as_slice(), key.as_bytes()]));
        let lines = std::iter::once(mget(keys)).chain(ttls);
        let mut replies = self.read_all(lanes, operation, lines).await?.into_iter();
        let values = values_of(operation, replies.next().expect("an MGET"), keys.len())?;
        let mut found = Vec::with_capacity(values.len());
        for (value, ttl) in values.into_iter().zip(replies) {
            let ttl = integer_of(operation, ttl)?;
            found.push(value.map(|value| (value, pttl(ttl))));
        }
        Ok(found)
    }
}
