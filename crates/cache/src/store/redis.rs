//! [`RedisStore`]: cached responses in Redis, shared by every router.

use std::time::Duration;

use prost::Message;
use redis::{
    Client,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use switchyard_proto::v1::CachedResponse;

use super::{EntryKey, ResponseStore, StoreFuture};
use crate::error::{Error, Result};

/// Prefix of every key; the version changes if the value format does.
const KEY_PREFIX: &str = "switchyard:cache:v1";

/// Longest connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest one Redis command may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Stores prost-encoded [`CachedResponse`]s under
/// `switchyard:cache:v1:{namespace}:{key}` with `SET … PX ttl`.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl RedisStore {
    /// Connects to the Redis server at `url` (e.g. `redis://127.0.0.1:6379`);
    /// reconnects by itself afterwards.
    pub async fn connect(url: &str) -> Result<Self> {
        let client =
            Client::open(url).map_err(|_| Error::Config("`redis_url` is not a Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { connection })
    }

    /// Returns the Redis key of an entry.
    pub fn redis_key(key: &EntryKey) -> String {
        format!("{KEY_PREFIX}:{}:{}", key.namespace(), key.key())
    }

    async fn get(&self, key: &EntryKey) -> Result<Option<CachedResponse>> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(Self::redis_key(key))
            .query_async(&mut connection)
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        match CachedResponse::decode(value.as_slice()) {
            Ok(response) => Ok(Some(response)),
            Err(error) => {
                tracing::warn!(
                    namespace = key.namespace(),
                    key = key.key(),
                    %error,
                    "undecodable cached response; treating it as a miss"
                );
                Ok(None)
            }
        }
    }

    async fn set(&self, key: &EntryKey, response: &CachedResponse, ttl: Duration) -> Result<()> {
        let mut connection = self.connection.clone();
        // Redis rejects `PX 0`; a sub-millisecond TTL still stores briefly.
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(Self::redis_key(key))
            .arg(response.encode_to_vec())
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

impl ResponseStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn lookup<'a>(&'a self, key: &'a EntryKey) -> StoreFuture<'a, Option<CachedResponse>> {
        Box::pin(self.get(key))
    }

    fn store<'a>(
        &'a self,
        key: &'a EntryKey,
        response: &'a CachedResponse,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.set(key, response, ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_and_namespaced() {
        let key = EntryKey::new("team-1".to_owned(), "abc123".to_owned()).expect("valid key");
        assert_eq!(
            RedisStore::redis_key(&key),
            "switchyard:cache:v1:team-1:abc123"
        );
    }
}
