//! Config loading: YAML text, then `SWITCHYARD__` overrides from an explicit
//! environment map, then typed deserialization that names the full path of
//! any bad field.
//!
//! `SWITCHYARD__LEDGER__CLICKHOUSE__URL=http://ch:8123` sets
//! `ledger.clickhouse.url`; the value is read as a YAML scalar, so numbers and
//! booleans keep their types.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

/// Prefix of environment variables that override config fields.
pub const ENV_PREFIX: &str = "SWITCHYARD__";

/// An environment passed explicitly, so tests never mutate the process's.
pub type Environment = BTreeMap<String, String>;

/// Returns the process environment as an [`Environment`].
pub fn process_environment() -> Environment {
    std::env::vars().collect()
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid YAML.
    #[error("{source_name}: not valid YAML: {message}")]
    Syntax {
        /// File name or other label of the text.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// An override variable names an impossible path.
    #[error("{variable}: cannot override `{path}`: {reason}")]
    Override {
        /// The environment variable.
        variable: String,
        /// The dotted path it addresses.
        path: String,
        /// Why it cannot be applied.
        reason: String,
    },
    /// A field has the wrong type or value, or is unknown.
    #[error("{source_name}: at `{path}`: {message}")]
    Invalid {
        /// File name or other label of the text.
        source_name: String,
        /// Dotted path of the bad field.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Parses `text` as `T`, applying overrides from `environment`.
pub fn load_yaml<T: DeserializeOwned>(
    source_name: &str,
    text: &str,
    environment: &Environment,
) -> Result<T, ConfigError> {
    let mut value: Value = if text.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_yaml::from_str(text).map_err(|error| ConfigError::Syntax {
            source_name: source_name.to_owned(),
            message: error.to_string(),
        })?
    };
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    apply_overrides(&mut value, environment)?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = if names_a_secret(&path) {
            // serde would quote the offending value, which may be a secret
            // pasted where a reference belongs.
            "expected a secret reference: {env: NAME} or {file: PATH}".to_owned()
        } else {
            error.into_inner().to_string()
        };
        ConfigError::Invalid {
            source_name: source_name.to_owned(),
            path,
            message,
        }
    })
}

/// Whether a config path names a secret reference (whose bad value must not
/// be echoed in errors).
fn names_a_secret(path: &str) -> bool {
    path.split('.').any(|segment| {
        let segment = segment.split('[').next().unwrap_or(segment);
        matches!(segment, "secret" | "secrets" | "api_key" | "password")
    })
}

fn apply_overrides(root: &mut Value, environment: &Environment) -> Result<(), ConfigError> {
    for (variable, raw) in environment {
        let Some(rest) = variable.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let segments: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        let path = segments.join(".");
        let fail = |reason: &str| ConfigError::Override {
            variable: variable.clone(),
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if segments.iter().any(String::is_empty) {
            return Err(fail("empty path segment"));
        }
        let new_value: Value =
            serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        let mut node = &mut *root;
        for (position, segment) in segments.iter().enumerate() {
            if node.is_null() {
                *node = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(mapping) = node else {
                return Err(fail("a parent field is not a mapping"));
            };
            let key = Value::String(segment.clone());
            if position + 1 == segments.len() {
                mapping.insert(key, new_value);
                break;
            }
            node = mapping.entry(key).or_insert(Value::Null);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        ledger: Ledger,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Ledger {
        url: String,
        batch: u32,
    }

    #[test]
    fn environment_overrides_nested_fields_with_typed_values() {
        let environment = Environment::from([
            ("SWITCHYARD__LEDGER__BATCH".to_owned(), "64".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ]);
        let config: Outer =
            load_yaml("test.yaml", "ledger: {url: a}", &environment).expect("valid config");
        assert_eq!(config.ledger.url, "a");
        assert_eq!(config.ledger.batch, 64);
    }

    #[test]
    fn bad_field_names_its_full_path() {
        let error = load_yaml::<Outer>("x.yaml", "ledger: {batch: many}", &Environment::new())
            .expect_err("batch is not a number");
        assert!(error.to_string().contains("at `ledger.batch`"), "{error}");
    }

    #[derive(Debug, Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    struct WithSecret {
        api_key: Option<crate::SecretSource>,
    }

    #[test]
    fn a_literal_where_a_secret_reference_belongs_is_not_echoed() {
        let error = load_yaml::<WithSecret>("x.yaml", "api_key: sk-live-123", &Environment::new())
            .expect_err("a literal is not a reference");
        let text = error.to_string();
        assert!(
            text.contains("api_key") && !text.contains("sk-live-123"),
            "{text}"
        );
    }

    #[test]
    fn unknown_field_is_an_error() {
        let error = load_yaml::<Outer>("x.yaml", "ledger: {bogus: 1}", &Environment::new())
            .expect_err("unknown field");
        assert!(error.to_string().contains("bogus"), "{error}");
    }
}
