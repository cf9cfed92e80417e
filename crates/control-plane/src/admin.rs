//! [`AdminGrpc`]: the `AdminService` implementation. Every call is
//! authenticated ([`auth`]), checked against the caller's role, made through
//! [`ConfigStore::transact`] (which audits it), and then published at once.

pub mod auth;
pub mod secrets;

use std::sync::Arc;

use switchyard_common::envelope::{EnvelopeError, Keyring, Sealed};
use switchyard_proto::v1::{self as pb, admin_service_server::AdminService};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{
    AdminRole, AuditRecord, Change, ConfigStore, Error, ObjectChange, ObjectKind, StoredConfig,
    StoredObject, StoredToken, crypto::secret_hint, crypto::sha256_hex,
};
use auth::{AdminAuth, Caller};

/// Serves the admin API over the config store.
#[derive(Debug, Clone)]
pub struct AdminGrpc {
    store: ConfigStore,
    auth: AdminAuth,
    /// Seals credential values; `None` when no master keys are configured.
    keyring: Option<Keyring>,
    /// Wakes the publisher after a committed change.
    changed: Arc<Notify>,
}

impl AdminGrpc {
    /// Creates the service; `changed` is notified after every committed change.
    pub(crate) fn new(
        store: ConfigStore,
        auth: AdminAuth,
        keyring: Option<Keyring>,
        changed: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            auth,
            keyring,
            changed,
        }
    }

    fn keyring(&self) -> Result<&Keyring, Status> {
        self.keyring.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "stored credentials need master keys: set `credentials.master_keys`",
            )
        })
    }

    /// The newest `limit` audit records for a caller presenting `token` (the
    /// console's `GET /admin/audit`); any role may read them.
    pub async fn audit_for(
        &self,
        token: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, Status> {
        self.auth.authenticate_token(token).await?;
        self.store.audit(limit).await.map_err(status)
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.auth.authenticate(request.metadata()).await
    }

    /// Makes `change` as `caller` and wakes the publisher if it committed.
    async fn transact(&self, caller: &Caller, change: Change) -> Result<crate::Outcome, Status> {
        let dry_run = change.is_dry_run();
        let outcome = self
            .store
            .transact(&caller.token_id, change)
            .await
            .map_err(status)?;
        if !dry_run && !outcome.changes.is_empty() {
            self.changed.notify_one();
            tracing::info!(
                actor = caller.token_id,
                version = outcome.version,
                changed = outcome.changes.len(),
                "admin change committed"
            );
        }
        Ok(outcome)
    }

    /// The stored entry of `kind` and `id`, with its meta.
    async fn stored(&self, kind: ObjectKind, id: &str) -> Result<pb::ConfigObject, Status> {
        let (_, entries) = self.store.entries().await.map_err(status)?;
        entries
            .get(&(kind, id.to_owned()))
            .map(shown)
            .ok_or_else(|| {
                status(Error::NotFound {
                    kind: kind.as_str(),
                    id: id.to_owned(),
                })
            })
    }
}

/// A stored object as the API shows it: with its meta, and a credential
/// without its (encrypted) value.
fn shown(entry: &crate::StoredEntry) -> pb::ConfigObject {
    let mut object = entry.object_with_meta();
    if let StoredObject::Credential(credential) = &mut object {
        credential.sealed = None;
    }
    object.into_proto()
}

/// The stored object a change leaves, with its meta, as the API returns it.
fn after_of(change: Option<&ObjectChange>) -> Option<pb::ConfigObject> {
    change.and_then(|change| change.after.as_ref()).map(shown)
}

fn kind_of(kind: i32) -> Result<ObjectKind, Status> {
    pb::ObjectKind::try_from(kind)
        .ok()
        .and_then(ObjectKind::from_proto)
        .ok_or_else(|| Status::invalid_argument("`kind` must name an object kind"))
}

fn object_of(object: Option<pb::ConfigObject>) -> Result<StoredObject, Status> {
    object
        .and_then(StoredObject::from_proto)
        .ok_or_else(|| Status::invalid_argument("`object` must hold an object"))
}

/// Credentials change through `SetCredential`, which encrypts the value.
fn refuse_credential(object: &StoredObject) -> Result<(), Status> {
    if object.kind() == ObjectKind::Credential {
        return Err(Status::invalid_argument(
            "credentials are set with SetCredential, which encrypts the value",
        ));
    }
    Ok(())
}

/// A sealed value as stored in a credential.
fn to_proto_sealed(sealed: Sealed) -> (pb::SealedSecret, String) {
    (
        pb::SealedSecret {
            wrapped_key: sealed.wrapped_key,
            key_nonce: sealed.key_nonce,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        },
        sealed.master_key_id,
    )
}

/// A credential's stored value, for rewrapping.
fn from_proto_sealed(credential: &pb::Credential) -> Option<Sealed> {
    let sealed = credential.sealed.clone()?;
    Some(Sealed {
        master_key_id: credential.master_key_id.clone(),
        wrapped_key: sealed.wrapped_key,
        key_nonce: sealed.key_nonce,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
    })
}

/// Maps a sealing failure; it never names a key or a value.
fn envelope_status(error: EnvelopeError) -> Status {
    tracing::error!(%error, "credential encryption failed");
    Status::failed_precondition(error.to_string())
}

fn require_id(id: &str, what: &str) -> Result<(), Status> {
    if id.trim().is_empty() {
        return Err(Status::invalid_argument(format!(
            "{what} must not be empty"
        )));
    }
    Ok(())
}

/// Maps a control-plane error to the status a client acts on. Messages name
/// objects and fields, never secrets.
fn status(error: Error) -> Status {
    let message = error.to_string();
    match error {
        Error::InvalidConfig { .. } => Status::invalid_argument(message),
        Error::NotFound { .. } => Status::not_found(message),
        Error::AlreadyExists { .. } => Status::already_exists(message),
        Error::StaleRevision { .. } | Error::OwnedByFile { .. } | Error::OwnedByApi { .. } => {
            Status::failed_precondition(message)
        }
        Error::Database(_) | Error::ConcurrentChanges | Error::UnsupportedDatabase => {
            tracing::warn!(error = message, "admin call failed");
            Status::unavailable("the config database is unavailable")
        }
        Error::Migrate(_) | Error::Corrupt { .. } | Error::Random(_) => {
            tracing::error!(error = message, "admin call failed");
            Status::internal(message)
        }
    }
}

fn role_to_proto(role: AdminRole) -> pb::AdminRole {
    match role {
        AdminRole::Viewer => pb::AdminRole::Viewer,
        AdminRole::Operator => pb::AdminRole::Operator,
        AdminRole::Admin => pb::AdminRole::Admin,
    }
}

fn token_to_proto(token: StoredToken) -> pb::AdminToken {
    pb::AdminToken {
        id: token.id,
        role: role_to_proto(token.role) as i32,
        hint: token.hint,
        created_at: token.created_at,
        created_by: token.created_by,
    }
}

fn audit_to_proto(record: AuditRecord) -> pb::AuditEntry {
    pb::AuditEntry {
        sequence: record.sequence,
        at_ms: record.at_ms,
        actor: record.actor,
        action: record.action,
        kind: record.kind,
        id: record.id,
        before_revision: record.before_revision,
        after_revision: record.after_revision,
        version: record.version,
        before: record.before,
        after: record.after,
    }
}

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    async fn list(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListObjectsResponse>, Status> {
        self.caller(&request).await?;
        let kind = kind_of(request.get_ref().kind)?;
        let (version, entries) = self.store.entries().await.map_err(status)?;
        let objects = entries
            .values()
            .filter(|entry| entry.object.kind() == kind)
            .map(shown)
            .collect();
        Ok(Response::new(pb::ListObjectsResponse { objects, version }))
    }

    async fn get(
        &self,
        request: Request<pb::GetObjectRequest>,
    ) -> Result<Response<pb::ConfigObject>, Status> {
        self.caller(&request).await?;
        let kind = kind_of(request.get_ref().kind)?;
        Ok(Response::new(
            self.stored(kind, &request.get_ref().id).await?,
        ))
    }

    async fn create(
        &self,
        request: Request<pb::CreateObjectRequest>,
    ) -> Result<Response<pb::ConfigObject>, Status> {
        let caller = self.caller(&request).await?;
        let object = object_of(request.into_inner().object)?;
        caller.require_write(object.kind())?;
        require_id(object.id(), "the object's id")?;
        refuse_credential(&object)?;
        if let StoredObject::ApiKey(key) = &object
            && key.sha256.is_empty()
        {
            return Err(Status::invalid_argument(
                "a key needs `sha256`; use CreateKey to have the control plane draw its secret",
            ));
        }
        let outcome = self.transact(&caller, Change::Create { object }).await?;
        after_of(outcome.changes.first())
            .map(Response::new)
            .ok_or_else(|| Status::internal("the created object was not stored"))
    }

    async fn update(
        &self,
        request: Request<pb::UpdateObjectRequest>,
    ) -> Result<Response<pb::ConfigObject>, Status> {
        let caller = self.caller(&request).await?;
        let object = object_of(request.into_inner().object)?;
        caller.require_write(object.kind())?;
        refuse_credential(&object)?;
        let (kind, id) = (object.kind(), object.id().to_owned());
        let outcome = self.transact(&caller, Change::Update { object }).await?;
        match after_of(outcome.changes.first()) {
            Some(object) => Ok(Response::new(object)),
            // Nothing changed: the stored object is the answer.
            None => Ok(Response::new(self.stored(kind, &id).await?)),
        }
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteObjectRequest>,
    ) -> Result<Response<pb::DeleteObjectResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let kind = kind_of(request.kind)?;
        caller.require_write(kind)?;
        let outcome = self
            .transact(
                &caller,
                Change::Delete {
                    kind,
                    id: request.id,
                    revision: request.revision,
                },
            )
            .await?;
        Ok(Response::new(pb::DeleteObjectResponse {
            version: outcome.version,
        }))
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        if request.dry_run {
            caller.require(AdminRole::Viewer, "a dry-run apply")?;
        } else {
            caller.require(AdminRole::Admin, "apply")?;
        }
        let mut desired = StoredConfig::default();
        for object in request.objects {
            let object = object_of(Some(object))?.without_meta();
            // A file has no credentials; their values come only through SetCredential.
            refuse_credential(&object)?;
            let (kind, id) = (object.kind().as_str(), object.id().to_owned());
            if !desired.insert(object) {
                return Err(Status::invalid_argument(format!(
                    "the file declares {kind} `{id}` twice"
                )));
            }
        }
        let outcome = self
            .transact(
                &caller,
                Change::Apply {
                    desired,
                    prune: request.prune,
                    dry_run: request.dry_run,
                },
            )
            .await?;
        let changes = outcome
            .changes
            .into_iter()
            .map(|change| {
                let action = match (&change.before, &change.after) {
                    (None, _) => pb::ChangeAction::Create,
                    (Some(_), Some(_)) => pb::ChangeAction::Update,
                    (Some(_), None) => pb::ChangeAction::Delete,
                };
                pb::ObjectChange {
                    action: action as i32,
                    before: change.before.as_ref().map(shown),
                    after: change.after.as_ref().map(shown),
                }
            })
            .collect();
        Ok(Response::new(pb::ApplyResponse {
            changes,
            version: outcome.version,
        }))
    }

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<pb::ExportResponse>, Status> {
        self.caller(&request).await?;
        let (version, entries) = self.store.entries().await.map_err(status)?;
        let objects = entries.values().map(shown).collect();
        Ok(Response::new(pb::ExportResponse { objects, version }))
    }

    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        caller.require_write(ObjectKind::ApiKey)?;
        let mut key = request.into_inner().key.unwrap_or_default();
        if !key.sha256.is_empty() {
            return Err(Status::invalid_argument(
                "CreateKey draws the secret: leave `sha256` empty",
            ));
        }
        if key.id.is_empty() {
            key.id = secrets::draw_id("key-").map_err(status)?;
        }
        let secret = secrets::draw_secret(secrets::KEY_PREFIX).map_err(status)?;
        key.sha256 = sha256_hex(&secret);
        key.hint = secret_hint(&secret);
        let outcome = self
            .transact(
                &caller,
                Change::Create {
                    object: StoredObject::ApiKey(key),
                },
            )
            .await?;
        let Some(pb::ConfigObject {
            object: Some(pb::config_object::Object::Key(key)),
        }) = after_of(outcome.changes.first())
        else {
            return Err(Status::internal("the created key was not stored"));
        };
        Ok(Response::new(pb::CreateKeyResponse {
            key: Some(key),
            secret,
        }))
    }

    async fn revoke_key(
        &self,
        request: Request<pb::RevokeKeyRequest>,
    ) -> Result<Response<pb::ConfigObject>, Status> {
        let caller = self.caller(&request).await?;
        caller.require_write(ObjectKind::ApiKey)?;
        let id = request.into_inner().id;
        // Dropped before the change, which then updates the stored objects
        // in place.
        let stored = {
            let (_, entries) = self.store.entries().await.map_err(status)?;
            entries.get(&(ObjectKind::ApiKey, id.clone())).cloned()
        };
        let Some(entry) = stored else {
            return Err(status(Error::NotFound { kind: "key", id }));
        };
        let mut object = entry.object_with_meta();
        if let StoredObject::ApiKey(key) = &mut object {
            key.disabled = true;
        }
        let outcome = self.transact(&caller, Change::Update { object }).await?;
        match after_of(outcome.changes.first()) {
            Some(object) => Ok(Response::new(object)),
            None => Ok(Response::new(self.stored(ObjectKind::ApiKey, &id).await?)),
        }
    }

    async fn create_admin_token(
        &self,
        request: Request<pb::CreateAdminTokenRequest>,
    ) -> Result<Response<pb::CreateAdminTokenResponse>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(AdminRole::Admin, "creating an admin token")?;
        let request = request.into_inner();
        let role = match pb::AdminRole::try_from(request.role) {
            Ok(pb::AdminRole::Viewer) => AdminRole::Viewer,
            Ok(pb::AdminRole::Operator) => AdminRole::Operator,
            Ok(pb::AdminRole::Admin) => AdminRole::Admin,
            _ => {
                return Err(Status::invalid_argument(
                    "`role` must be viewer, operator or admin",
                ));
            }
        };
        let id = if request.id.is_empty() {
            secrets::draw_id("token-").map_err(status)?
        } else {
            request.id
        };
        if id == auth::BOOTSTRAP_ACTOR {
            return Err(Status::invalid_argument(
                "`bootstrap` names the configured token; choose another id",
            ));
        }
        let secret = secrets::draw_secret(secrets::ADMIN_TOKEN_PREFIX).map_err(status)?;
        let token = StoredToken {
            id,
            role,
            hint: secret_hint(&secret),
            created_at: crate::timestamp::now_ms() / 1000,
            created_by: caller.token_id.clone(),
        };
        self.store
            .insert_token(&token, &sha256_hex(&secret), &caller.token_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateAdminTokenResponse {
            token: Some(token_to_proto(token)),
            secret,
        }))
    }

    async fn list_admin_tokens(
        &self,
        request: Request<pb::ListAdminTokensRequest>,
    ) -> Result<Response<pb::ListAdminTokensResponse>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(AdminRole::Admin, "listing admin tokens")?;
        let tokens = self.store.tokens().await.map_err(status)?;
        Ok(Response::new(pb::ListAdminTokensResponse {
            tokens: tokens.into_iter().map(token_to_proto).collect(),
        }))
    }

    async fn revoke_admin_token(
        &self,
        request: Request<pb::RevokeAdminTokenRequest>,
    ) -> Result<Response<pb::RevokeAdminTokenResponse>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(AdminRole::Admin, "revoking an admin token")?;
        let id = request.into_inner().id;
        if !self
            .store
            .revoke_token(&id, &caller.token_id)
            .await
            .map_err(status)?
        {
            return Err(status(Error::NotFound {
                kind: "admin_token",
                id,
            }));
        }
        Ok(Response::new(pb::RevokeAdminTokenResponse {}))
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        self.caller(&request).await?;
        let records = self
            .store
            .audit(request.get_ref().limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListAuditResponse {
            entries: records.into_iter().map(audit_to_proto).collect(),
        }))
    }

    async fn set_credential(
        &self,
        request: Request<pb::SetCredentialRequest>,
    ) -> Result<Response<pb::ConfigObject>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(AdminRole::Admin, "setting a credential")?;
        let request = request.into_inner();
        require_id(&request.id, "the credential's id")?;
        if request.value.is_empty() {
            return Err(Status::invalid_argument("the credential's value is empty"));
        }
        let sealed = self
            .keyring()?
            .seal(&request.id, request.value.as_bytes())
            .map_err(envelope_status)?;
        let (sealed, master_key_id) = to_proto_sealed(sealed);
        let mut credential = pb::Credential {
            id: request.id.clone(),
            provider: request.provider,
            sealed: Some(sealed),
            hint: secret_hint(&request.value),
            meta: None,
            master_key_id,
        };
        // Created, or its value replaced at the revision it has now.
        let stored = {
            let (_, entries) = self.store.entries().await.map_err(status)?;
            entries
                .get(&(ObjectKind::Credential, request.id.clone()))
                .map(|entry| entry.revision)
        };
        let change = match stored {
            Some(revision) => {
                credential.meta = Some(pb::ObjectMeta { owner: 0, revision });
                Change::Update {
                    object: StoredObject::Credential(credential),
                }
            }
            None => Change::Create {
                object: StoredObject::Credential(credential),
            },
        };
        let outcome = self.transact(&caller, change).await?;
        match outcome
            .changes
            .first()
            .and_then(|change| change.after.as_ref())
        {
            Some(entry) => Ok(Response::new(shown(entry))),
            None => Ok(Response::new(
                self.stored(ObjectKind::Credential, &request.id).await?,
            )),
        }
    }

    async fn rewrap_credentials(
        &self,
        request: Request<pb::RewrapCredentialsRequest>,
    ) -> Result<Response<pb::RewrapCredentialsResponse>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(AdminRole::Admin, "rewrapping credentials")?;
        let keyring = self.keyring()?;
        let current = keyring.current_key_id().map_err(envelope_status)?;
        let stale: Vec<crate::StoredEntry> = {
            let (_, entries) = self.store.entries().await.map_err(status)?;
            entries
                .values()
                .filter(|entry| {
                    matches!(&entry.object, StoredObject::Credential(credential) if credential.master_key_id != current)
                })
                .cloned()
                .collect()
        };
        let mut rewrapped = 0;
        for entry in stale {
            let StoredObject::Credential(mut credential) = entry.object_with_meta() else {
                continue;
            };
            let Some(sealed) = from_proto_sealed(&credential) else {
                continue;
            };
            let (sealed, master_key_id) =
                to_proto_sealed(keyring.rewrap(&sealed).map_err(envelope_status)?);
            credential.sealed = Some(sealed);
            credential.master_key_id = master_key_id;
            self.transact(
                &caller,
                Change::Update {
                    object: StoredObject::Credential(credential),
                },
            )
            .await?;
            rewrapped += 1;
        }
        Ok(Response::new(pb::RewrapCredentialsResponse {
            rewrapped,
            master_key_id: current,
        }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = self.caller(&request).await?;
        Ok(Response::new(pb::WhoAmIResponse {
            token_id: caller.token_id,
            role: role_to_proto(caller.role) as i32,
        }))
    }
}
