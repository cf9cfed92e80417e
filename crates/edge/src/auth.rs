//! Bearer-key authentication against the snapshot's key hashes.

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use switchyard_common::ErrorClass;
use switchyard_proto::v1::Snapshot;

use crate::error::ApiError;

/// An authenticated key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyEntry {
    /// Key id, recorded in usage events.
    pub id: String,
    /// Team id; empty when none.
    pub team_id: String,
    /// Configured user the key belongs to; empty when none.
    pub user_id: String,
    /// Models the key may use; `None` means all.
    pub allowed_models: Option<HashSet<String>>,
    disabled: bool,
    /// Unix seconds after which the key is refused; `None` means never.
    expires_at: Option<i64>,
    /// Whether answers carry the routing decision record.
    pub debug: bool,
}

/// A listed model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// The alias clients ask for.
    pub name: String,
    /// Shown as `owned_by`.
    pub owned_by: String,
}

/// The edge's index of a snapshot: keys by hash, and the model list.
#[derive(Debug, Default)]
pub struct EdgeIndex {
    keys: HashMap<[u8; 32], KeyEntry>,
    /// Models in snapshot order.
    pub models: Vec<ModelEntry>,
}

impl EdgeIndex {
    /// Indexes a snapshot. Keys with malformed hashes are skipped.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        // Teams that limit their keys' routes.
        let team_routes: HashMap<String, HashSet<String>> = snapshot
            .teams
            .into_iter()
            .filter(|team| !team.allowed_models.is_empty())
            .map(|team| (team.id, team.allowed_models.into_iter().collect()))
            .collect();
        let keys = snapshot
            .api_keys
            .into_iter()
            .filter_map(|key| {
                let mut hash = [0_u8; 32];
                hex::decode_to_slice(&key.sha256, &mut hash).ok()?;
                let own: Option<HashSet<String>> = (!key.allowed_models.is_empty())
                    .then(|| key.allowed_models.into_iter().collect());
                // A key may use what both it and its team allow.
                let allowed_models = match (own, team_routes.get(&key.team_id)) {
                    (own, None) => own,
                    (None, Some(team)) => Some(team.clone()),
                    (Some(own), Some(team)) => Some(
                        own.into_iter()
                            .filter(|route| team.contains(route))
                            .collect(),
                    ),
                };
                let entry = KeyEntry {
                    id: key.id,
                    team_id: key.team_id,
                    user_id: key.user_id,
                    allowed_models,
                    disabled: key.disabled,
                    expires_at: (key.expires_at > 0).then_some(key.expires_at),
                    debug: key.debug,
                };
                Some((hash, entry))
            })
            .collect();
        let models = snapshot
            .routes
            .into_iter()
            .map(|model| ModelEntry {
                owned_by: if model.owned_by.is_empty() {
                    "switchyard".to_owned()
                } else {
                    model.owned_by
                },
                name: model.name,
            })
            .collect();
        Self { keys, models }
    }

    /// Returns the key presented in the `Authorization: Bearer` header.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&KeyEntry, ApiError> {
        let secret = bearer_token(headers).ok_or_else(|| {
            ApiError::new(
                ErrorClass::Authentication,
                "You didn't provide an API key. Provide it in the Authorization header as `Bearer YOUR_KEY`.",
            )
        })?;
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        match self.keys.get(&hash) {
            Some(entry) if entry.disabled => Err(ApiError::new(
                ErrorClass::Authentication,
                "This API key has been disabled.",
            )),
            Some(entry) if entry.is_expired() => Err(ApiError::new(
                ErrorClass::Authentication,
                "This API key has expired.",
            )),
            Some(entry) => Ok(entry),
            None => Err(ApiError::new(
                ErrorClass::Authentication,
                "Incorrect API key provided.",
            )),
        }
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

impl KeyEntry {
    /// Whether the key's expiry has passed (the clock is read only for keys
    /// that have one).
    fn is_expired(&self) -> bool {
        self.expires_at
            .is_some_and(|expires_at| unix_now() >= expires_at)
    }

    /// Whether the key may use `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|models| models.contains(model))
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    switchyard_common::auth::bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use switchyard_proto::v1::ApiKey;

    use super::*;

    fn index() -> EdgeIndex {
        let key = |id: &str, secret: &str, disabled: bool, expires_at: i64| ApiKey {
            id: id.to_owned(),
            sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            disabled,
            expires_at,
            ..ApiKey::default()
        };
        EdgeIndex::from_snapshot(Snapshot {
            version: 1,
            api_keys: vec![
                key("good", "sk-good", false, 0),
                key("off", "sk-off", true, 0),
                key("expired", "sk-expired", false, 1_600_000_000),
                key("later", "sk-later", false, unix_now() + 3600),
            ],
            ..Snapshot::default()
        })
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("valid header"),
        );
        headers
    }

    #[test]
    fn accepts_a_known_key_in_any_scheme_case() {
        let index = index();
        let entry = index
            .authenticate(&headers("bearer sk-good"))
            .expect("known key");
        assert_eq!(entry.id, "good");
        let entry = index
            .authenticate(&headers("Bearer sk-later"))
            .expect("a key that expires later");
        assert_eq!(entry.id, "later");
    }

    #[test]
    fn rejects_missing_unknown_and_disabled_keys() {
        let index = index();
        for value in [
            "Bearer sk-bad",
            "Bearer sk-off",
            "Bearer sk-expired",
            "Basic sk-good",
            "Bearer ",
        ] {
            let error = index.authenticate(&headers(value)).expect_err(value);
            assert_eq!(error.error.class, ErrorClass::Authentication, "{value}");
        }
        let error = index
            .authenticate(&HeaderMap::new())
            .expect_err("no header");
        assert_eq!(error.error.class, ErrorClass::Authentication);
    }

    #[test]
    fn a_teams_routes_narrow_its_keys() {
        let key = |id: &str, models: &[&str]| ApiKey {
            id: id.to_owned(),
            sha256: hex::encode(Sha256::digest(format!("sk-{id}").as_bytes())),
            team_id: "frugal".to_owned(),
            allowed_models: models.iter().map(|&model| model.to_owned()).collect(),
            ..ApiKey::default()
        };
        let index = EdgeIndex::from_snapshot(Snapshot {
            api_keys: vec![key("open", &[]), key("narrow", &["a", "c"])],
            teams: vec![switchyard_proto::v1::Team {
                id: "frugal".to_owned(),
                allowed_models: vec!["a".to_owned(), "b".to_owned()],
                ..switchyard_proto::v1::Team::default()
            }],
            ..Snapshot::default()
        });
        let may = |secret: &str, model: &str| {
            index
                .authenticate(&headers(&format!("Bearer {secret}")))
                .expect("known key")
                .may_use(model)
        };
        assert!(may("sk-open", "a") && may("sk-open", "b") && !may("sk-open", "c"));
        assert!(may("sk-narrow", "a") && !may("sk-narrow", "b") && !may("sk-narrow", "c"));
    }
}
