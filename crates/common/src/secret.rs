//! Secret references (`{env: NAME}` or `{file: PATH}`) and a redacting wrapper.
//!
//! Config files and snapshots carry only references; the process that needs
//! a secret resolves it from its own environment, so secrets never cross the
//! wire and never appear in logs.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a secret lives. Exactly one field is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Name of an environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Path of a file whose trimmed content is the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Id of a credential stored (encrypted) by the control plane, for a
    /// provider's secrets only; the adapters decrypt it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Why a secret could not be resolved. Names the reference, never the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretError {
    /// The reference sets none or several of `env`, `file` and `credential`.
    #[error("a secret reference needs exactly one of `env`, `file` or `credential`")]
    Ambiguous,
    /// The environment variable is not set or empty.
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    /// The reference names a stored credential, which only the adapters
    /// decrypt from their snapshot.
    #[error("`{0}` is a stored credential; only a provider's secrets may name one")]
    Stored(String),
    /// The file cannot be read or is empty.
    #[error("secret file `{path}` cannot be read: {reason}")]
    File {
        /// The file's path.
        path: String,
        /// Why reading failed.
        reason: String,
    },
}

impl SecretSource {
    /// A reference to an environment variable.
    pub fn env(name: impl Into<String>) -> Self {
        Self {
            env: Some(name.into()),
            file: None,
            credential: None,
        }
    }

    /// A reference to a file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            env: None,
            file: Some(path.into()),
            credential: None,
        }
    }

    /// A reference to a stored credential.
    pub fn credential(id: impl Into<String>) -> Self {
        Self {
            env: None,
            file: None,
            credential: Some(id.into()),
        }
    }

    /// Checks that exactly one source is set.
    pub fn validate(&self) -> Result<(), SecretError> {
        match (&self.env, &self.file, &self.credential) {
            (Some(_), None, None) | (None, Some(_), None) | (None, None, Some(_)) => Ok(()),
            _ => Err(SecretError::Ambiguous),
        }
    }

    /// Reads the secret from `environment` or the file system.
    pub fn resolve(&self, environment: &BTreeMap<String, String>) -> Result<Secret, SecretError> {
        if let Some(id) = &self.credential {
            return Err(match (&self.env, &self.file) {
                (None, None) => SecretError::Stored(id.clone()),
                _ => SecretError::Ambiguous,
            });
        }
        match (&self.env, &self.file) {
            (Some(name), None) => environment
                .get(name)
                .filter(|value| !value.is_empty())
                .map(|value| Secret::new(value.clone()))
                .ok_or_else(|| SecretError::MissingEnv(name.clone())),
            (None, Some(path)) => {
                let content = std::fs::read_to_string(path).map_err(|error| SecretError::File {
                    path: path.display().to_string(),
                    reason: error.kind().to_string(),
                })?;
                let trimmed = content.trim();
                if trimmed.is_empty() {
                    return Err(SecretError::File {
                        path: path.display().to_string(),
                        reason: "empty".to_owned(),
                    });
                }
                Ok(Secret::new(trimmed.to_owned()))
            }
            _ => Err(SecretError::Ambiguous),
        }
    }
}

/// A secret value. `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Returns the secret itself; call only where it is sent to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_from_the_given_environment() {
        let environment = BTreeMap::from([("KEY".to_owned(), "sk-123".to_owned())]);
        let secret = SecretSource::env("KEY")
            .resolve(&environment)
            .expect("variable is set");
        assert_eq!(secret.expose(), "sk-123");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
    }

    #[test]
    fn missing_variable_names_the_variable() {
        let error = SecretSource::env("NOPE")
            .resolve(&BTreeMap::new())
            .expect_err("variable is not set");
        assert_eq!(error, SecretError::MissingEnv("NOPE".to_owned()));
    }

    #[test]
    fn both_sources_is_an_error() {
        let source = SecretSource {
            env: Some("A".to_owned()),
            file: Some(PathBuf::from("/x")),
            credential: None,
        };
        assert_eq!(source.validate(), Err(SecretError::Ambiguous));
    }
}
