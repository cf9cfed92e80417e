//! Validation of the declarative objects, producing the records to store.
//!
//! Every error names the object (`models[demo]`) and field at fault.

use std::{collections::BTreeSet, time::Duration};

use switchyard_common::{SecretSource, config::Environment};

use crate::{
    Declarative, Error, KeyConfig, ModelConfig, ProviderConfig, Result,
    crypto::{normalize_sha256_hex, sha256_hex},
    price::parse_price_micros,
    records::{
        KeyRecord, ModelRecord, PricingRecord, ProviderRecord, SecretRefRecord, StoredConfig,
        TargetRecord,
    },
};

/// Owner of models that name none.
const DEFAULT_OWNED_BY: &str = "switchyard";

impl StoredConfig {
    /// Validates `declarative` and returns its records in canonical order.
    /// Key secrets are resolved from `environment` and hashed; provider
    /// secrets are only checked for shape (the adapters resolve them).
    pub fn from_declarative(declarative: &Declarative, environment: &Environment) -> Result<Self> {
        let mut provider_names = BTreeSet::new();
        let mut providers = Vec::with_capacity(declarative.providers.len());
        for (index, provider) in declarative.providers.iter().enumerate() {
            let path = object_path("providers", index, &provider.name);
            if !provider_names.insert(provider.name.as_str()) {
                return Err(Error::invalid(path, "duplicate provider name"));
            }
            providers.push(provider_record(provider, &path)?);
        }

        let mut model_names = BTreeSet::new();
        let mut models = Vec::with_capacity(declarative.models.len());
        for (index, model) in declarative.models.iter().enumerate() {
            let path = object_path("models", index, &model.name);
            if !model_names.insert(model.name.as_str()) {
                return Err(Error::invalid(path, "duplicate model name"));
            }
            models.push(model_record(model, &path, &provider_names)?);
        }

        let mut key_ids = BTreeSet::new();
        let mut key_hashes = BTreeSet::new();
        let mut keys = Vec::with_capacity(declarative.keys.len());
        for (index, key) in declarative.keys.iter().enumerate() {
            let path = object_path("keys", index, &key.id);
            if !key_ids.insert(key.id.as_str()) {
                return Err(Error::invalid(path, "duplicate key id"));
            }
            let record = key_record(key, &path, &model_names, environment)?;
            if !key_hashes.insert(record.sha256.clone()) {
                return Err(Error::invalid(path, "has the same secret as another key"));
            }
            keys.push(record);
        }

        let mut config = StoredConfig {
            providers,
            models,
            keys,
        };
        config.sort();
        Ok(config)
    }
}

/// Names an object by its name, or by its index when the name is empty.
fn object_path(section: &str, index: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{section}[{index}]")
    } else {
        format!("{section}[{name}]")
    }
}

fn require_non_empty(value: &str, path: &str, field: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(
            format!("{path}.{field}"),
            "must not be empty",
        ));
    }
    Ok(())
}

fn duration_millis(duration: Duration, path: &str, field: &str) -> Result<i64> {
    i64::try_from(duration.as_millis())
        .map_err(|_| Error::invalid(format!("{path}.{field}"), "is too long"))
}

fn provider_record(provider: &ProviderConfig, path: &str) -> Result<ProviderRecord> {
    require_non_empty(&provider.name, path, "name")?;
    require_non_empty(&provider.kind, path, "kind")?;
    let base_url = match &provider.base_url {
        Some(base_url) => {
            let parsed = url::Url::parse(base_url)
                .map_err(|error| Error::invalid(format!("{path}.base_url"), error.to_string()))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::invalid(
                    format!("{path}.base_url"),
                    "must be an http or https URL",
                ));
            }
            base_url.clone()
        }
        None => String::new(),
    };
    let api_key = provider
        .api_key
        .as_ref()
        .map(|source| secret_ref_record(source, &format!("{path}.api_key")))
        .transpose()?;
    let timeout_ms = match provider.timeout {
        Some(timeout) => {
            let millis = duration_millis(timeout, path, "timeout")?;
            if millis == 0 {
                return Err(Error::invalid(
                    format!("{path}.timeout"),
                    "must be at least 1ms",
                ));
            }
            millis
        }
        None => 0,
    };
    let secrets = provider
        .secrets
        .iter()
        .map(|(name, source)| {
            require_non_empty(name, &format!("{path}.secrets"), "name")?;
            let record = secret_ref_record(source, &format!("{path}.secrets.{name}"))?;
            Ok((name.clone(), record))
        })
        .collect::<Result<_>>()?;
    Ok(ProviderRecord {
        name: provider.name.clone(),
        kind: provider.kind.clone(),
        base_url,
        api_key,
        timeout_ms,
        options: provider.options.clone(),
        secrets,
    })
}

fn secret_ref_record(source: &SecretSource, path: &str) -> Result<SecretRefRecord> {
    match (&source.env, &source.file) {
        (Some(name), None) if !name.is_empty() => Ok(SecretRefRecord::Env(name.clone())),
        (None, Some(file)) => file
            .to_str()
            .filter(|file| !file.is_empty())
            .map(|file| SecretRefRecord::File(file.to_owned()))
            .ok_or_else(|| Error::invalid(path, "file path must be non-empty UTF-8")),
        _ => Err(Error::invalid(
            path,
            "needs exactly one non-empty `env` or `file`",
        )),
    }
}

fn model_record(
    model: &ModelConfig,
    path: &str,
    provider_names: &BTreeSet<&str>,
) -> Result<ModelRecord> {
    require_non_empty(&model.name, path, "name")?;
    if model.targets.is_empty() {
        return Err(Error::invalid(
            format!("{path}.targets"),
            "needs at least one target",
        ));
    }
    let mut targets = Vec::with_capacity(model.targets.len());
    for (index, target) in model.targets.iter().enumerate() {
        let target_path = format!("{path}.targets[{index}]");
        if !provider_names.contains(target.provider.as_str()) {
            return Err(Error::invalid(
                format!("{target_path}.provider"),
                format!("names unknown provider `{}`", target.provider),
            ));
        }
        require_non_empty(&target.model, &target_path, "model")?;
        targets.push(TargetRecord {
            provider: target.provider.clone(),
            model: target.model.clone(),
        });
    }
    let cache_ttl_ms = match model.cache_ttl {
        Some(ttl) => duration_millis(ttl, path, "cache_ttl")?,
        None => 0,
    };
    let pricing = match &model.pricing {
        Some(pricing) => {
            let currency = &pricing.currency;
            if currency.len() != 3 || !currency.bytes().all(|byte| byte.is_ascii_uppercase()) {
                return Err(Error::invalid(
                    format!("{path}.pricing.currency"),
                    "must be a three-letter ISO 4217 code like `USD`",
                ));
            }
            let price = |text: &str, field: &str| {
                parse_price_micros(text)
                    .map_err(|reason| Error::invalid(format!("{path}.pricing.{field}"), reason))
            };
            Some(PricingRecord {
                currency: currency.clone(),
                input_micros: price(&pricing.input_per_million, "input_per_million")?,
                output_micros: price(&pricing.output_per_million, "output_per_million")?,
            })
        }
        None => None,
    };
    let owned_by = match &model.owned_by {
        Some(owned_by) => {
            require_non_empty(owned_by, path, "owned_by")?;
            owned_by.clone()
        }
        None => DEFAULT_OWNED_BY.to_owned(),
    };
    Ok(ModelRecord {
        name: model.name.clone(),
        targets,
        cache_ttl_ms,
        pricing,
        owned_by,
    })
}

fn key_record(
    key: &KeyConfig,
    path: &str,
    model_names: &BTreeSet<&str>,
    environment: &Environment,
) -> Result<KeyRecord> {
    require_non_empty(&key.id, path, "id")?;
    let sha256 = match (&key.sha256, &key.secret) {
        (Some(hash), None) => normalize_sha256_hex(hash)
            .map_err(|reason| Error::invalid(format!("{path}.sha256"), reason))?,
        (None, Some(source)) => {
            let secret = source
                .resolve(environment)
                .map_err(|error| Error::invalid(format!("{path}.secret"), error.to_string()))?;
            sha256_hex(secret.expose())
        }
        (None, None) => {
            return Err(Error::invalid(path, "needs `sha256` or `secret`"));
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                path,
                "sets both `sha256` and `secret`; keep one",
            ));
        }
    };
    let mut seen = BTreeSet::new();
    for (index, model) in key.models.iter().enumerate() {
        let model_path = format!("{path}.models[{index}]");
        if !model_names.contains(model.as_str()) {
            return Err(Error::invalid(
                model_path,
                format!("names unknown model `{model}`"),
            ));
        }
        if !seen.insert(model.as_str()) {
            return Err(Error::invalid(model_path, format!("lists `{model}` twice")));
        }
    }
    Ok(KeyRecord {
        id: key.id.clone(),
        sha256,
        name: key.name.clone().unwrap_or_default(),
        team_id: key.team.clone().unwrap_or_default(),
        allowed_models: key.models.clone(),
        disabled: key.disabled,
    })
}

#[cfg(test)]
mod tests {
    use switchyard_common::config::load_yaml;

    use super::*;

    const EXAMPLE: &str = r#"
providers:
  - name: mock
    kind: mock
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: {env: OPENAI_API_KEY}
    timeout: 60s
models:
  - name: demo
    targets: [{provider: mock, model: mock-1}]
    cache_ttl: 5m
    pricing: {input_per_million: "0.15", output_per_million: "0.60"}
keys:
  - id: demo
    name: Demo key
    team: default
    sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
  - id: from-env
    models: [demo]
    secret: {env: SWITCHYARD_DEMO_KEY}
"#;

    fn environment() -> Environment {
        Environment::from([("SWITCHYARD_DEMO_KEY".to_owned(), "sk-demo".to_owned())])
    }

    fn example() -> Declarative {
        load_yaml("example.yaml", EXAMPLE, &Environment::new()).expect("example parses")
    }

    fn error_text(declarative: &Declarative) -> String {
        declarative
            .validate(&environment())
            .expect_err("config is invalid")
            .to_string()
    }

    #[test]
    fn example_parses_into_records() {
        let config =
            StoredConfig::from_declarative(&example(), &environment()).expect("example is valid");
        let names: Vec<&str> = config.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["mock", "openai"]);
        let openai = &config.providers[1];
        assert_eq!(openai.timeout_ms, 60_000);
        assert_eq!(
            openai.api_key,
            Some(SecretRefRecord::Env("OPENAI_API_KEY".to_owned()))
        );
        let demo = &config.models[0];
        assert_eq!(demo.cache_ttl_ms, 300_000);
        assert_eq!(demo.owned_by, "switchyard");
        assert_eq!(
            demo.pricing,
            Some(PricingRecord {
                currency: "USD".to_owned(),
                input_micros: 150_000,
                output_micros: 600_000,
            })
        );
        assert_eq!(config.keys[1].id, "from-env");
        assert_eq!(config.keys[1].sha256, sha256_hex("sk-demo"));
        assert_eq!(config.keys[0].team_id, "default");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = "models: [{name: a, targets: [], colour: red}]";
        let error = load_yaml::<Declarative>("x.yaml", text, &Environment::new())
            .expect_err("unknown field");
        assert!(error.to_string().contains("colour"), "{error}");
    }

    #[test]
    fn unresolvable_provider_secret_is_fine() {
        // OPENAI_API_KEY is not in the environment: the adapters resolve it.
        assert!(example().validate(&environment()).is_ok());
    }

    #[test]
    fn duplicate_names_are_named() {
        let mut declarative = example();
        declarative.providers.push(declarative.providers[0].clone());
        assert!(error_text(&declarative).contains("providers[mock]"));

        let mut declarative = example();
        declarative.models.push(declarative.models[0].clone());
        assert!(error_text(&declarative).contains("models[demo]"));

        let mut declarative = example();
        declarative.keys[1].id = "demo".to_owned();
        assert!(error_text(&declarative).contains("duplicate key id"));
    }

    #[test]
    fn target_naming_unknown_provider_is_named() {
        let mut declarative = example();
        declarative.models[0].targets[0].provider = "nope".to_owned();
        let error = error_text(&declarative);
        assert!(
            error.contains("models[demo].targets[0].provider") && error.contains("nope"),
            "{error}"
        );
    }

    #[test]
    fn model_without_targets_is_rejected() {
        let mut declarative = example();
        declarative.models[0].targets.clear();
        assert!(error_text(&declarative).contains("models[demo].targets"));
    }

    #[test]
    fn empty_kind_is_rejected() {
        let mut declarative = example();
        declarative.providers[1].kind = String::new();
        assert!(error_text(&declarative).contains("providers[openai].kind"));
    }

    #[test]
    fn key_needs_exactly_one_of_hash_and_secret() {
        let mut declarative = example();
        declarative.keys[0].secret = Some(SecretSource::env("SWITCHYARD_DEMO_KEY"));
        assert!(error_text(&declarative).contains("both"));

        let mut declarative = example();
        declarative.keys[0].sha256 = None;
        assert!(error_text(&declarative).contains("keys[demo]"));
    }

    #[test]
    fn bad_sha256_is_named() {
        let mut declarative = example();
        declarative.keys[0].sha256 = Some("xyz".to_owned());
        assert!(error_text(&declarative).contains("keys[demo].sha256"));
    }

    #[test]
    fn unresolvable_key_secret_names_the_variable_not_a_value() {
        let error = example()
            .validate(&Environment::new())
            .expect_err("secret is missing")
            .to_string();
        assert!(
            error.contains("keys[from-env].secret") && error.contains("SWITCHYARD_DEMO_KEY"),
            "{error}"
        );
    }

    #[test]
    fn two_keys_with_one_secret_are_rejected() {
        let mut declarative = example();
        declarative.keys[0].sha256 = Some(sha256_hex("sk-demo"));
        assert!(error_text(&declarative).contains("same secret"));
    }

    #[test]
    fn key_naming_unknown_model_is_named() {
        let mut declarative = example();
        declarative.keys[1].models = vec!["gpt-9".to_owned()];
        assert!(error_text(&declarative).contains("keys[from-env].models[0]"));
    }

    #[test]
    fn price_with_seven_decimals_is_named() {
        let mut declarative = example();
        if let Some(pricing) = declarative.models[0].pricing.as_mut() {
            pricing.input_per_million = "0.1234567".to_owned();
        }
        let error = error_text(&declarative);
        assert!(
            error.contains("models[demo].pricing.input_per_million"),
            "{error}"
        );
    }

    #[test]
    fn bad_base_url_and_currency_are_named() {
        let mut declarative = example();
        declarative.providers[1].base_url = Some("ftp://x".to_owned());
        assert!(error_text(&declarative).contains("providers[openai].base_url"));

        let mut declarative = example();
        if let Some(pricing) = declarative.models[0].pricing.as_mut() {
            pricing.currency = "usd".to_owned();
        }
        assert!(error_text(&declarative).contains("pricing.currency"));
    }
}
