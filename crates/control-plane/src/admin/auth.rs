//! Who is calling the admin API: the bootstrap token of the config file, or
//! an admin token stored by hash. Failures are counted and logged without
//! the token.

use switchyard_common::metrics::prometheus_client::metrics::counter::Counter;
use tonic::{Status, metadata::MetadataMap};

use crate::{AdminRole, ConfigStore, ObjectKind, crypto::sha256_hex};

/// The actor recorded for the configured bootstrap token.
pub const BOOTSTRAP_ACTOR: &str = "bootstrap";

/// An authenticated admin caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The token's id, recorded as the actor of its actions.
    pub token_id: String,
    /// What it may do.
    pub role: AdminRole,
}

impl Caller {
    /// Refuses the call unless the caller's role is at least `needed`.
    pub fn require(&self, needed: AdminRole, what: &str) -> Result<(), Status> {
        if self.role >= needed {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "{what} needs the {} role; token `{}` is {}",
            needed.as_str(),
            self.token_id,
            self.role.as_str()
        )))
    }

    /// Refuses a change to an object of `kind` the caller's role may not make:
    /// operators change keys, budgets and rate limits; admins everything.
    pub fn require_write(&self, kind: ObjectKind) -> Result<(), Status> {
        let needed = match kind {
            ObjectKind::ApiKey | ObjectKind::Budget | ObjectKind::RateLimit => AdminRole::Operator,
            _ => AdminRole::Admin,
        };
        self.require(needed, &format!("changing a {}", kind.as_str()))
    }
}

/// Checks admin tokens.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    bootstrap_sha256: String,
    store: ConfigStore,
    failures: Counter,
}

impl AdminAuth {
    /// Accepts the token whose hash is `bootstrap_sha256` as an admin, and
    /// tokens stored in `store` with their roles. Failures count in `failures`.
    pub fn new(bootstrap_sha256: String, store: ConfigStore, failures: Counter) -> Self {
        Self {
            bootstrap_sha256,
            store,
            failures,
        }
    }

    /// Returns the caller whose bearer token `metadata` carries.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let token = metadata
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(switchyard_common::auth::bearer);
        self.authenticate_token(token).await
    }

    /// Returns the caller `token` (a bearer token, if any) proves.
    pub async fn authenticate_token(&self, token: Option<&str>) -> Result<Caller, Status> {
        let Some(token) = token else {
            return Err(self.refuse("no admin token"));
        };
        let sha256 = sha256_hex(token);
        if sha256 == self.bootstrap_sha256 {
            return Ok(Caller {
                token_id: BOOTSTRAP_ACTOR.to_owned(),
                role: AdminRole::Admin,
            });
        }
        match self.store.token_by_hash(&sha256).await {
            Ok(Some(stored)) => Ok(Caller {
                token_id: stored.id,
                role: stored.role,
            }),
            Ok(None) => Err(self.refuse("unknown admin token")),
            Err(error) => {
                tracing::warn!(%error, "cannot check an admin token");
                Err(Status::unavailable(
                    "cannot check the admin token: the config database is unavailable",
                ))
            }
        }
    }

    fn refuse(&self, reason: &'static str) -> Status {
        self.failures.inc();
        tracing::warn!(reason, "admin call refused");
        Status::unauthenticated(
            "the admin API needs `authorization: Bearer <admin token>` with a valid token",
        )
    }
}
