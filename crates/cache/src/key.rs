//! Cache keys, derived here from what the caller asks about.
//!
//! The router sends a [`CacheQuery`]: a namespace, the route and the request
//! it has already normalized. The exact key is the hex SHA-256 of the route
//! and the request's deterministic protobuf encoding, so two requests share
//! an entry exactly when they would be sent upstream the same way. Deriving
//! keys here, not in the router, is what lets a semantic lookup (over the
//! same query) live beside the exact one later.

use prost::Message;
use sha2::{Digest, Sha256};
use switchyard_proto::v1::CacheQuery;

use crate::{
    error::{Error, Result},
    store::EntryKey,
};

/// Returns the exact-match key of `query`: namespace plus digest.
pub fn exact_key(query: Option<CacheQuery>) -> Result<EntryKey> {
    let query = query.ok_or(Error::InvalidRequest {
        field: "query",
        reason: "is required",
    })?;
    let request = query.request.ok_or(Error::InvalidRequest {
        field: "query.request",
        reason: "is required",
    })?;
    let mut digest = Sha256::new();
    // Length-prefixed, so no route and request pair can collide with another.
    digest.update((query.route.len() as u64).to_le_bytes());
    digest.update(query.route.as_bytes());
    digest.update(request.encode_to_vec());
    EntryKey::new(query.namespace, hex::encode(digest.finalize()))
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::ChatRequest;

    use super::*;

    fn query(route: &str, model: &str) -> CacheQuery {
        CacheQuery {
            namespace: "team:a".to_owned(),
            request: Some(ChatRequest {
                model: model.to_owned(),
                ..ChatRequest::default()
            }),
            route: route.to_owned(),
        }
    }

    #[test]
    fn keys_follow_route_and_request() {
        let key = |q| exact_key(Some(q)).expect("valid").key().to_owned();
        assert_eq!(key(query("r", "m")), key(query("r", "m")));
        assert_ne!(key(query("r", "m")), key(query("r", "n")));
        assert_ne!(key(query("r", "m")), key(query("s", "m")));
        assert_eq!(key(query("r", "m")).len(), 64);
    }

    #[test]
    fn missing_parts_are_named() {
        let error = exact_key(None).expect_err("no query");
        assert!(matches!(
            error,
            Error::InvalidRequest { field: "query", .. }
        ));
        let mut empty = query("r", "m");
        empty.request = None;
        let error = exact_key(Some(empty)).expect_err("no request");
        assert!(matches!(
            error,
            Error::InvalidRequest {
                field: "query.request",
                ..
            }
        ));
    }
}
