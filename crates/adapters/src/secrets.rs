//! Resolution of providers' secret references from the adapters' own
//! environment and files.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use switchyard_common::{
    ErrorClass, Secret, SecretSource, ServiceError, config::Environment, secret::SecretError,
};
use switchyard_proto::v1::{SecretRef, secret_ref::Source};

/// Resolves secret references, remembering what it resolved for `refresh`
/// so a key file is read at most once per interval, not per request, and a
/// rotated key is picked up within that interval without a restart. A
/// reference that fails is retried on the next request.
#[derive(Debug)]
pub struct SecretResolver {
    environment: Environment,
    refresh: Duration,
    resolved: Mutex<HashMap<SecretSource, (Secret, Instant)>>,
}

impl SecretResolver {
    /// Creates a resolver reading variables from `environment` and re-reading
    /// each secret once it is older than `refresh`.
    pub fn new(environment: Environment, refresh: Duration) -> Self {
        Self {
            environment,
            refresh,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the key `reference` points to; `None` when the target has no key.
    pub fn resolve(
        &self,
        provider: &str,
        reference: Option<&SecretRef>,
    ) -> Result<Option<Secret>, ServiceError> {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SecretSource, (Secret, Instant)>> {
        // The map holds no invariant a panic could break.
        self.resolved.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Converts the wire reference to the config type.
fn source_of(reference: &SecretRef) -> Option<SecretSource> {
    match reference.source.as_ref()? {
        Source::Env(name) => Some(SecretSource::env(name.clone())),
        Source::File(path) => Some(SecretSource {
            env: None,
            file: Some(PathBuf::from(path)),
        }),
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
            .resolve("p", Some(&env_ref("KEY")))
            .expect("set")
            .expect("a key");
        assert_eq!(secret.expose(), "sk-1");
        assert_eq!(resolver.resolve("p", None).expect("no key"), None);
        let error = resolver
            .resolve("p", Some(&env_ref("MISSING")))
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
                .resolve("p", Some(&reference))
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
