//! [`MemoryStore`]: a bounded in-process store, the embedded default.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use switchyard_proto::v1::CachedResponse;
use tokio::time::Instant;

use super::{EntryKey, ResponseStore, StoreFuture};
use crate::error::{Error, Result};

/// Holds at most `max_entries` responses. Expired entries are dropped when
/// read; when full, an expired entry is evicted first, else the oldest stored.
#[derive(Debug)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
}

#[derive(Debug)]
struct Entries {
    max_entries: usize,
    by_key: HashMap<EntryKey, Entry>,
    /// Store order: sequence number → key; the first is the oldest.
    by_age: BTreeMap<u64, EntryKey>,
    /// Expiry order: the first is the next to expire.
    by_expiry: BTreeSet<(Instant, u64)>,
    next_sequence: u64,
}

#[derive(Debug)]
struct Entry {
    response: CachedResponse,
    expires_at: Instant,
    sequence: u64,
}

impl MemoryStore {
    /// Creates an empty store holding at most `max_entries` responses.
    pub fn new(max_entries: usize) -> Result<Self> {
        if max_entries == 0 {
            return Err(Error::Config("`max_entries` must be positive"));
        }
        Ok(Self {
            entries: Mutex::new(Entries {
                max_entries,
                by_key: HashMap::new(),
                by_age: BTreeMap::new(),
                by_expiry: BTreeSet::new(),
                next_sequence: 0,
            }),
        })
    }

    /// Returns how many entries are held, expired ones included.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the fresh response under `key` as of `now`.
    fn lookup_at(&self, key: &EntryKey, now: Instant) -> Option<CachedResponse> {
        let mut entries = self.lock();
        let expires_at = entries.by_key.get(key)?.expires_at;
        if expires_at <= now {
            entries.remove(key);
            return None;
        }
        entries.by_key.get(key).map(|entry| entry.response.clone())
    }

    /// Stores `response` under `key` until `now + ttl`.
    fn store_at(&self, key: &EntryKey, response: &CachedResponse, ttl: Duration, now: Instant) {
        // TTLs are capped by the gRPC layer; saturate rather than panic anyway.
        let expires_at = now.checked_add(ttl).unwrap_or_else(|| now + super::MAX_TTL);
        let mut entries = self.lock();
        entries.remove(key);
        while entries.by_key.len() >= entries.max_entries {
            entries.evict_one(now);
        }
        let sequence = entries.next_sequence;
        entries.next_sequence += 1;
        entries.by_age.insert(sequence, key.clone());
        entries.by_expiry.insert((expires_at, sequence));
        entries.by_key.insert(
            key.clone(),
            Entry {
                response: response.clone(),
                expires_at,
                sequence,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The maps stay consistent between statements, so a panic elsewhere
        // never leaves them half-updated: recover from poisoning.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    fn remove(&mut self, key: &EntryKey) {
        if let Some(entry) = self.by_key.remove(key) {
            self.by_age.remove(&entry.sequence);
            self.by_expiry.remove(&(entry.expires_at, entry.sequence));
        }
    }

    /// Evicts the next entry to expire if it has expired, else the oldest.
    fn evict_one(&mut self, now: Instant) {
        let expired = self
            .by_expiry
            .first()
            .filter(|(expires_at, _)| *expires_at <= now)
            .map(|(_, sequence)| *sequence);
        let sequence = expired.or_else(|| self.by_age.first_key_value().map(|(seq, _)| *seq));
        let key = sequence.and_then(|sequence| self.by_age.get(&sequence).cloned());
        match key {
            Some(key) => self.remove(&key),
            None => self.by_key.clear(),
        }
    }
}

impl ResponseStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn lookup<'a>(&'a self, key: &'a EntryKey) -> StoreFuture<'a, Option<CachedResponse>> {
        let found = self.lookup_at(key, Instant::now());
        Box::pin(async move { Ok(found) })
    }

    fn store<'a>(
        &'a self,
        key: &'a EntryKey,
        response: &'a CachedResponse,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        self.store_at(key, response, ttl, Instant::now());
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn key(n: u32) -> EntryKey {
        EntryKey::new("team".to_owned(), format!("{n:x}")).expect("valid key")
    }

    fn response(stored_at_unix_ms: u64) -> CachedResponse {
        CachedResponse {
            chunks: Vec::new(),
            stored_at_unix_ms,
        }
    }

    #[test]
    fn returns_fresh_entries_and_drops_expired_ones() {
        let store = MemoryStore::new(10).expect("positive bound");
        let now = Instant::now();
        store.store_at(&key(1), &response(1), MINUTE, now);
        assert_eq!(
            store.lookup_at(&key(1), now + MINUTE / 2),
            Some(response(1))
        );
        assert_eq!(store.lookup_at(&key(1), now + MINUTE), None);
        assert!(store.is_empty());
    }

    #[test]
    fn evicts_the_oldest_when_full() {
        let store = MemoryStore::new(2).expect("positive bound");
        let now = Instant::now();
        store.store_at(&key(1), &response(1), MINUTE, now);
        store.store_at(&key(2), &response(2), MINUTE, now);
        store.store_at(&key(3), &response(3), MINUTE, now);
        assert_eq!(store.len(), 2);
        assert_eq!(store.lookup_at(&key(1), now), None);
        assert_eq!(store.lookup_at(&key(3), now), Some(response(3)));
    }

    #[test]
    fn evicts_expired_entries_before_older_fresh_ones() {
        let store = MemoryStore::new(2).expect("positive bound");
        let now = Instant::now();
        store.store_at(&key(1), &response(1), MINUTE * 10, now);
        store.store_at(&key(2), &response(2), MINUTE, now);
        let later = now + MINUTE * 2;
        store.store_at(&key(3), &response(3), MINUTE, later);
        assert_eq!(store.lookup_at(&key(1), later), Some(response(1)));
        assert_eq!(store.lookup_at(&key(2), later), None);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn replacing_an_entry_does_not_evict_others() {
        let store = MemoryStore::new(2).expect("positive bound");
        let now = Instant::now();
        store.store_at(&key(1), &response(1), MINUTE, now);
        store.store_at(&key(2), &response(2), MINUTE, now);
        store.store_at(&key(2), &response(22), MINUTE, now);
        assert_eq!(store.lookup_at(&key(1), now), Some(response(1)));
        assert_eq!(store.lookup_at(&key(2), now), Some(response(22)));
    }

    #[test]
    fn zero_entries_is_a_config_error() {
        assert!(matches!(MemoryStore::new(0), Err(Error::Config(_))));
    }
}
