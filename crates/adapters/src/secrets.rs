//! Resolution of providers' secret references from the adapters' own
//! environment and files.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use switchyard_common::{
    ErrorClass, Secret, SecretSource, ServiceError,
    config::Environment,
    envelope::{Keyring, Sealed},
    secret::SecretError,
};
use switchyard_proto::v1::{Credential, CredentialRead, SecretRef, secret_ref::Source};

use crate::credential_reads::CredentialReads;

/// Resolves secret references, remembering what it resolved for `refresh`
/// so a key file is read at most once per interval, not per request, and a
/// rotated key is picked up within that interval without a restart. A
/// reference that fails is retried on the next request.
#[derive(Debug)]
pub struct SecretResolver {
    environment: Environment,
    refresh: Duration,
    resolved: Mutex<HashMap<SecretSource, (Secret, Instant)>>,
    /// Opens stored credentials; `None` when no master keys are configured.
    keyring: Option<Keyring>,
    /// Decrypted stored credentials by id and revision: each revision is
    /// decrypted (and audited) once.
    opened: Mutex<HashMap<(String, u64), Secret>>,
    /// Where decryptions are reported for the control plane's audit log;
    /// `None` without a control plane (tests of the adapters alone).
    reads: Option<CredentialReads>,
}

impl SecretResolver {
    /// Creates a resolver reading variables from `environment` and re-reading
    /// each secret once it is older than `refresh`.
    pub fn new(environment: Environment, refresh: Duration) -> Self {
        Self {
            environment,
            refresh,
            resolved: Mutex::new(HashMap::new()),
            keyring: None,
            opened: Mutex::new(HashMap::new()),
            reads: None,
        }
    }

    /// Reports every decryption to `reads`.
    pub fn with_reads(mut self, reads: Option<CredentialReads>) -> Self {
        self.reads = reads;
        self
    }

    /// Opens stored credentials with `keyring`.
    pub fn with_keyring(mut self, keyring: Option<Keyring>) -> Self {
        self.keyring = keyring;
        self
    }

    /// Returns the key `reference` points to; `None` when the target has no
    /// key. A stored credential is looked up in `credentials` (the snapshot's)
    /// and decrypted.
    pub fn resolve(
        &self,
        provider: &str,
        reference: Option<&SecretRef>,
        credentials: &HashMap<String, Arc<Credential>>,
    ) -> Result<Option<Secret>, ServiceError> {
        if let Some(Source::Credential(id)) = reference.and_then(|r| r.source.as_ref()) {
            return self.open(provider, id, credentials).map(Some);
        }
        let Some(source) = reference.and_then(source_of) else {
            return Ok(None);
        };
        if let Some((secret, read_at)) = self.lock().get(&source)
            && read_at.elapsed() < self.refresh
        {
            return Ok(Some(secret.clone()));
        }
        // Resolved outside the lock: reading a file must not block other requests.
        let secret = source
            .resolve(&self.environment)
            .map_err(|error| unresolved(provider, &error))?;
        self.lock().insert(source, (secret.clone(), Instant::now()));
        Ok(Some(secret))
    }

    /// Decrypts the stored credential `id` of `provider`, once per revision.
    /// Every decryption is written to the audit log (`switchyard::audit`)
    /// with the reader's identity; the value never is.
    fn open(
        &self,
        provider: &str,
        id: &str,
        credentials: &HashMap<String, Arc<Credential>>,
    ) -> Result<Secret, ServiceError> {
        let refuse = |reason: String| {
            ServiceError::new(
                ErrorClass::Authentication,
                format!(
                    "the credential `{id}` of provider `{provider}` is not available: {reason}"
                ),
            )
            .with_provider(provider)
        };
        let credential = credentials
            .get(id)
            .filter(|credential| credential.provider == provider)
            .ok_or_else(|| refuse("it is not stored for this provider".to_owned()))?;
        let revision = credential.meta.map_or(0, |meta| meta.revision);
        let key = (id.to_owned(), revision);
        if let Some(secret) = self.opened_lock().get(&key) {
            return Ok(secret.clone());
        }
        let keyring = self.keyring.as_ref().ok_or_else(|| {
            refuse("no master keys are configured (`credentials.master_keys`)".to_owned())
        })?;
        let sealed = credential
            .sealed
            .as_ref()
            .ok_or_else(|| refuse("it holds no value".to_owned()))?;
        let sealed = Sealed {
            master_key_id: credential.master_key_id.clone(),
            wrapped_key: sealed.wrapped_key.clone(),
            key_nonce: sealed.key_nonce.clone(),
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
        };
        let value = keyring
            .open(id, &sealed)
            .map_err(|error| refuse(error.to_string()))?;
        let value = String::from_utf8(value).map_err(|_| refuse("it is not UTF-8".to_owned()))?;
        let reader = self
            .reads
            .as_ref()
            .map_or("adapter", CredentialReads::reader);
        tracing::info!(
            target: "switchyard::audit",
            credential = id,
            provider,
            revision,
            master_key_id = credential.master_key_id,
            reader,
            pid = std::process::id(),
            "stored credential decrypted"
        );
        if let Some(reads) = &self.reads {
            reads.record(CredentialRead {
                credential_id: id.to_owned(),
                revision,
                master_key_id: credential.master_key_id.clone(),
                reader: reader.to_owned(),
                at_unix_ms: i64::try_from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis(),
                )
                .unwrap_or(i64::MAX),
            });
        }
        let secret = Secret::new(value);
        self.opened_lock().insert(key, secret.clone());
        Ok(secret)
    }

    fn opened_lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Secret>> {
        // The map holds no invariant a panic could break.
        self.opened.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SecretSource, (Secret, Instant)>> {
        // The map holds no invariant a panic could break.
        self.resolved.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Converts the wire reference to the config type.
fn source_of(reference: &SecretRef) -> Option<SecretSource> {
    match reference.source.as_ref()? {
        Source::Env(name) => Some(SecretSource::env(name.clone())),
        Source::File(path) => Some(SecretSource::file(path.clone())),
        Source::Credential(id) => Some(SecretSource::credential(id.clone())),
    }
}

/// Names the provider and the reference, never a value.
fn unresolved(provider: &str, error: &SecretError) -> ServiceError {
    ServiceError::new(
        ErrorClass::Authentication,
        format!("the API key of provider `{provider}` is not available: {error}"),
    )
    .with_provider(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_ref(name: &str) -> SecretRef {
        SecretRef {
            source: Some(Source::Env(name.to_owned())),
        }
    }

    #[test]
    fn resolves_and_reports_missing_variables_by_name() {
        let resolver = SecretResolver::new(
            Environment::from([("KEY".to_owned(), "sk-1".to_owned())]),
            Duration::from_secs(5),
        );
        let secret = resolver
            .resolve("p", Some(&env_ref("KEY")), &HashMap::new())
            .expect("set")
            .expect("a key");
        assert_eq!(secret.expose(), "sk-1");
        assert_eq!(
            resolver
                .resolve("p", None, &HashMap::new())
                .expect("no key"),
            None
        );
        let error = resolver
            .resolve("p", Some(&env_ref("MISSING")), &HashMap::new())
            .expect_err("not set");
        assert_eq!(error.class, ErrorClass::Authentication);
        assert!(error.message.contains("`p`") && error.message.contains("MISSING"));
    }

    #[test]
    fn a_rotated_file_is_read_again_after_the_refresh_interval() {
        let directory =
            std::env::temp_dir().join(format!("switchyard-secret-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temporary directory");
        let path = directory.join("key");
        std::fs::write(&path, "sk-old\n").expect("write key");
        let reference = SecretRef {
            source: Some(Source::File(path.display().to_string())),
        };
        let resolver = SecretResolver::new(Environment::new(), Duration::from_millis(50));
        let read = |resolver: &SecretResolver| {
            resolver
                .resolve("p", Some(&reference), &HashMap::new())
                .expect("readable")
                .expect("a key")
                .expose()
                .to_owned()
        };
        assert_eq!(read(&resolver), "sk-old");
        std::fs::write(&path, "sk-new\n").expect("rotate key");
        assert_eq!(read(&resolver), "sk-old", "cached within the interval");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(read(&resolver), "sk-new", "re-read after the interval");
        std::fs::remove_dir_all(&directory).expect("clean up");
    }
}
