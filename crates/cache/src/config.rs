//! The `cache` section of the config file.

use std::{fmt, net::SocketAddr};

use schemars::JsonSchema;
use serde::Deserialize;

/// Response cache settings.
#[derive(Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// gRPC listen address when the cache runs as its own process.
    pub listen: SocketAddr,
    /// When set, responses are stored in Redis (e.g. `redis://127.0.0.1:6379`)
    /// and shared by every router; otherwise in this process's memory.
    pub redis_url: Option<String>,
    /// Most responses the in-memory store holds; beyond it, expired entries
    /// and then the oldest are evicted. Must be positive.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7004)),
            redis_url: None,
            max_entries: 10_000,
        }
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("listen", &self.listen)
            .field("redis_url", &self.redis_url.as_deref().map(redact_password))
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

/// Returns `url` with the password of its user info (if any) replaced, so a
/// Redis URL can be logged.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|index| index + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &rest[..at];
    let user = user_info
        .split_once(':')
        .map_or(user_info, |(user, _)| user);
    format!("{}{user}:[redacted]{}", &url[..scheme_end], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_redis_password() {
        let config = CacheConfig {
            redis_url: Some("redis://cache:s3cret@redis:6379/0".to_owned()),
            ..CacheConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(
            debug.contains("redis://cache:[redacted]@redis:6379/0"),
            "{debug}"
        );
    }

    #[test]
    fn urls_without_user_info_are_unchanged() {
        assert_eq!(
            redact_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
