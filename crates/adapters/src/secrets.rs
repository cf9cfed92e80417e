//! Resolution of targets' API keys from the adapters' own environment.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

use switchyard_common::{
    ErrorClass, Secret, SecretSource, ServiceError, config::Environment, secret::SecretError,
};
use switchyard_proto::v1::{SecretRef, secret_ref::Source};

/// Resolves secret references, remembering what it resolved so a key file
/// is read once, not per request. A reference that fails is retried on the
/// next request.
#[derive(Debug)]
pub struct SecretResolver {
    environment: Environment,
    resolved: Mutex<HashMap<SecretSource, Secret>>,
}

impl SecretResolver {
    /// Creates a resolver reading variables from `environment`.
    pub fn new(environment: Environment) -> Self {
        Self {
            environment,
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
        if let Some(secret) = self.lock().get(&source) {
            return Ok(Some(secret.clone()));
        }
        // Resolved outside the lock: reading a file must not block other requests.
        let secret = source
            .resolve(&self.environment)
            .map_err(|error| unresolved(provider, &error))?;
        self.lock().insert(source, secret.clone());
        Ok(Some(secret))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SecretSource, Secret>> {
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
        let resolver =
            SecretResolver::new(Environment::from([("KEY".to_owned(), "sk-1".to_owned())]));
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
}
