//! Where cached responses live: [`EntryKey`] and the [`ResponseStore`] trait.

mod memory;
mod redis;

use std::{future::Future, pin::Pin, time::Duration};

use switchyard_proto::v1::CachedResponse;

pub use self::redis::RedisStore;
pub use memory::MemoryStore;

use crate::error::{Error, Result};

/// Longest namespace accepted, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 256;

/// Longest key accepted, in hex digits (a SHA-512 digest is 128).
pub const MAX_KEY_DIGITS: usize = 128;

/// Longest time a response may be cached.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The future a [`ResponseStore`] returns; boxed so stores can sit behind `dyn`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A validated cache address: a tenant namespace and a lowercase hex key.
///
/// Keys never contain `:`, so `{namespace}:{key}` is unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryKey {
    namespace: String,
    key: String,
}

impl EntryKey {
    /// Validates `namespace` (non-empty, at most [`MAX_NAMESPACE_BYTES`]) and
    /// `key` (non-empty lowercase hex, at most [`MAX_KEY_DIGITS`] digits).
    pub fn new(namespace: String, key: String) -> Result<Self> {
        if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_BYTES {
            return Err(Error::InvalidRequest {
                field: "namespace",
                reason: "must be 1 to 256 bytes long",
            });
        }
        let is_hex = key
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if key.is_empty() || key.len() > MAX_KEY_DIGITS || !is_hex {
            return Err(Error::InvalidRequest {
                field: "key",
                reason: "must be 1 to 128 lowercase hex digits",
            });
        }
        Ok(Self { namespace, key })
    }

    /// Returns the tenant namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Returns the hex key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// A store of cached responses with per-entry time to live.
pub trait ResponseStore: Send + Sync + 'static {
    /// Returns a short name for logs (`memory`, `redis`).
    fn name(&self) -> &'static str;

    /// Returns the response stored under `key`, if present and fresh.
    fn lookup<'a>(&'a self, key: &'a EntryKey) -> StoreFuture<'a, Option<CachedResponse>>;

    /// Stores `response` under `key` for `ttl`, replacing any previous entry.
    fn store<'a>(
        &'a self,
        key: &'a EntryKey,
        response: &'a CachedResponse,
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_key(namespace: &str, key: &str) -> Result<EntryKey> {
        EntryKey::new(namespace.to_owned(), key.to_owned())
    }

    #[test]
    fn accepts_lowercase_hex_keys() {
        let key = entry_key("team-1", "0123456789abcdef").expect("valid key");
        assert_eq!((key.namespace(), key.key()), ("team-1", "0123456789abcdef"));
    }

    #[test]
    fn rejects_bad_namespaces_and_keys() {
        for (namespace, key, field) in [
            ("", "ab", "namespace"),
            ("team", "", "key"),
            ("team", "ABCD", "key"),
            ("team", "ab:cd", "key"),
            ("team", "xyz", "key"),
        ] {
            match entry_key(namespace, key) {
                Err(Error::InvalidRequest { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{namespace:?}/{key:?} should be rejected, got {other:?}"),
            }
        }
        let long_namespace = "n".repeat(MAX_NAMESPACE_BYTES + 1);
        assert!(entry_key(&long_namespace, "ab").is_err());
        assert!(entry_key("team", &"a".repeat(MAX_KEY_DIGITS + 1)).is_err());
    }
}
