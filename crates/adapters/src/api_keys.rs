//! [`KeyRotation`]: which of a provider's several API keys (`api_keys`) an
//! attempt uses, and resting one the provider refused.
//!
//! Attempts go round the provider's keys in id order, skipping keys that
//! rest. A key rests when the provider refuses it: after a 429 for as long
//! as the provider asked (`Retry-After`), else [`RATE_LIMITED_REST`]; after
//! a 401 or 403 for [`REFUSED_REST`], logged at warning since an operator
//! must replace it. When every key rests, the one whose rest ends first is
//! tried: the router's breakers, not the adapters, decide when a provider
//! is down. An attempt is never retried here with another key; the router
//! sees every refusal, with the key's id.
//!
//! The state is per process: each adapter replica learns for itself, at the
//! cost of one refused attempt per replica and key.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use switchyard_common::{ErrorClass, ServiceError};

/// How long a key rests after a 429 that did not say how long to wait.
pub const RATE_LIMITED_REST: Duration = Duration::from_secs(30);
/// The longest rest a provider's `Retry-After` may ask for.
pub const LONGEST_RATE_LIMITED_REST: Duration = Duration::from_secs(300);
/// How long a key rests after the provider refused it (401, 403).
pub const REFUSED_REST: Duration = Duration::from_secs(300);

/// The round-robin position and resting keys of every provider with
/// several keys.
#[derive(Debug, Default)]
pub struct KeyRotation {
    providers: Mutex<HashMap<String, ProviderKeys>>,
    rests: Family<RestLabels, Counter>,
}

#[derive(Debug, Default)]
struct ProviderKeys {
    /// How many attempts have picked a key, for the round robin.
    picked: usize,
    /// Keys resting until the instant given.
    resting: HashMap<String, Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RestLabels {
    provider: String,
    key: String,
    reason: &'static str,
}

impl KeyRotation {
    /// Creates the rotation, registering its series in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let rotation = Self::default();
        registry.register(
            "provider_key_rests",
            "Times a provider API key was rested after the provider refused it, by reason (`rate_limited`, `refused`)",
            rotation.rests.clone(),
        );
        rotation
    }

    /// Picks the key of `provider` for the next attempt among `ids`, sorted
    /// and not empty: the next one in turn that is not resting, else the
    /// one whose rest ends first.
    pub fn pick<'a>(&self, provider: &str, ids: &'a [String]) -> &'a str {
        if let [only] = ids {
            return only;
        }
        let now = Instant::now();
        let mut providers = self.lock();
        let keys = providers.entry(provider.to_owned()).or_default();
        keys.resting.retain(|_, until| *until > now);
        let start = keys.picked % ids.len().max(1);
        keys.picked = keys.picked.wrapping_add(1);
        let in_turn = ids.iter().cycle().skip(start).take(ids.len());
        let awake = in_turn
            .clone()
            .find(|id| !keys.resting.contains_key(id.as_str()));
        let chosen = awake.or_else(|| {
            in_turn.min_by_key(|id| keys.resting.get(id.as_str()).copied().unwrap_or(now))
        });
        chosen.map_or("", String::as_str)
    }

    /// Rests `key` of `provider` when `error` says the provider refused
    /// that key; returns how long it rests.
    pub fn failed(&self, provider: &str, key: &str, error: &ServiceError) -> Option<Duration> {
        let (rest, reason) = match error.class {
            ErrorClass::RateLimited => (
                error
                    .retry_after
                    .map_or(RATE_LIMITED_REST, |wait| {
                        wait.min(LONGEST_RATE_LIMITED_REST)
                    })
                    .max(Duration::from_secs(1)),
                "rate_limited",
            ),
            ErrorClass::ProviderAuth => (REFUSED_REST, "refused"),
            _ => return None,
        };
        if reason == "refused" {
            tracing::warn!(
                provider,
                key,
                rest_seconds = rest.as_secs(),
                "the provider refused an API key; it rests while the provider's other keys serve"
            );
        } else {
            tracing::info!(
                provider,
                key,
                rest_seconds = rest.as_secs(),
                "an API key was rate limited; it rests while the provider's other keys serve"
            );
        }
        self.rests
            .get_or_create(&RestLabels {
                provider: provider.to_owned(),
                key: key.to_owned(),
                reason,
            })
            .inc();
        self.lock()
            .entry(provider.to_owned())
            .or_default()
            .resting
            .insert(key.to_owned(), Instant::now() + rest);
        Some(rest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProviderKeys>> {
        // The map holds no invariant a panic could break.
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn attempts_go_round_the_keys_in_turn() {
        let rotation = KeyRotation::default();
        let keys = ids(&["a", "b", "c"]);
        let picked: Vec<&str> = (0..6).map(|_| rotation.pick("p", &keys)).collect();
        assert_eq!(picked, ["a", "b", "c", "a", "b", "c"]);
        // Each provider keeps its own turn.
        assert_eq!(rotation.pick("q", &keys), "a");
    }

    #[test]
    fn a_refused_key_rests_while_the_others_serve() {
        let rotation = KeyRotation::default();
        let keys = ids(&["a", "b"]);
        let limited = ServiceError::new(ErrorClass::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(7));
        assert_eq!(
            rotation.failed("p", "a", &limited),
            Some(Duration::from_secs(7))
        );
        assert!((0..4).all(|_| rotation.pick("p", &keys) == "b"));
        let refused = ServiceError::new(ErrorClass::ProviderAuth, "bad key");
        assert_eq!(rotation.failed("p", "b", &refused), Some(REFUSED_REST));
        // Both rest: the one whose rest ends first is tried.
        assert_eq!(rotation.pick("p", &keys), "a");
        // A provider-wide failure rests no key.
        let down = ServiceError::new(ErrorClass::UpstreamUnavailable, "502");
        assert_eq!(rotation.failed("p", "a", &down), None);
    }

    #[test]
    fn a_rest_ends() {
        let rotation = KeyRotation::default();
        let keys = ids(&["a", "b"]);
        let limited = ServiceError::new(ErrorClass::RateLimited, "slow down")
            .with_retry_after(Duration::from_millis(1));
        // Rests are at least a second, whatever the provider said.
        assert_eq!(
            rotation.failed("p", "a", &limited),
            Some(Duration::from_secs(1))
        );
        assert_eq!(rotation.pick("p", &keys), "b");
        rotation
            .lock()
            .get_mut("p")
            .expect("known")
            .resting
            .insert("a".to_owned(), Instant::now());
        let picked: Vec<&str> = (0..2).map(|_| rotation.pick("p", &keys)).collect();
        assert!(picked.contains(&"a"), "{picked:?}");
    }
}
