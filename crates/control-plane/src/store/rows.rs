//! Reading and writing the config tables, row by row.

use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::{
    Error, Result,
    records::{
        KeyRecord, ModelRecord, PricingRecord, ProviderRecord, SecretRefRecord, StoredConfig,
        TargetRecord,
    },
};

/// Returns the stored config version.
pub(crate) async fn read_version(connection: &mut AnyConnection) -> Result<u64> {
    let version: i64 = sqlx::query_scalar("SELECT version FROM config_version WHERE id = 1")
        .fetch_one(&mut *connection)
        .await?;
    u64::try_from(version).map_err(|_| corrupt("config_version.version", "is negative"))
}

/// Sets the stored config version.
pub(crate) async fn write_version(connection: &mut AnyConnection, version: u64) -> Result<()> {
    let version = i64::try_from(version)
        .map_err(|_| corrupt("config_version.version", "does not fit BIGINT"))?;
    sqlx::query("UPDATE config_version SET version = $1 WHERE id = 1")
        .bind(version)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Reads every stored object, in canonical order.
pub(crate) async fn read_config(connection: &mut AnyConnection) -> Result<StoredConfig> {
    let providers = sqlx::query(
        "SELECT name, kind, base_url, api_key_env, api_key_file, timeout_ms, options, secrets \
         FROM providers",
    )
    .fetch_all(&mut *connection)
    .await?
    .iter()
    .map(provider_from_row)
    .collect::<Result<_>>()?;
    let models = sqlx::query(
        "SELECT name, targets, cache_ttl_ms, price_currency, input_price_micros, \
         output_price_micros, owned_by FROM models",
    )
    .fetch_all(&mut *connection)
    .await?
    .iter()
    .map(model_from_row)
    .collect::<Result<_>>()?;
    let keys =
        sqlx::query("SELECT id, sha256, name, team_id, allowed_models, disabled FROM api_keys")
            .fetch_all(&mut *connection)
            .await?
            .iter()
            .map(key_from_row)
            .collect::<Result<_>>()?;
    let mut config = StoredConfig {
        providers,
        models,
        keys,
    };
    config.sort();
    Ok(config)
}

/// Deletes every stored object and inserts `config` instead.
pub(crate) async fn replace_config(
    connection: &mut AnyConnection,
    config: &StoredConfig,
) -> Result<()> {
    for statement in [
        "DELETE FROM api_keys",
        "DELETE FROM models",
        "DELETE FROM providers",
    ] {
        sqlx::query(statement).execute(&mut *connection).await?;
    }
    for provider in &config.providers {
        let (env, file) = match &provider.api_key {
            Some(SecretRefRecord::Env(name)) => (Some(name.as_str()), None),
            Some(SecretRefRecord::File(path)) => (None, Some(path.as_str())),
            None => (None, None),
        };
        sqlx::query(
            "INSERT INTO providers (name, kind, base_url, api_key_env, api_key_file, timeout_ms, \
             options, secrets) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&provider.name)
        .bind(&provider.kind)
        .bind(&provider.base_url)
        .bind(env)
        .bind(file)
        .bind(provider.timeout_ms)
        .bind(to_json(&provider.options)?)
        .bind(to_json(&provider.secrets)?)
        .execute(&mut *connection)
        .await?;
    }
    for model in &config.models {
        let pricing = model.pricing.as_ref();
        sqlx::query(
            "INSERT INTO models (name, targets, cache_ttl_ms, price_currency, \
             input_price_micros, output_price_micros, owned_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&model.name)
        .bind(to_json(&model.targets)?)
        .bind(model.cache_ttl_ms)
        .bind(pricing.map(|pricing| pricing.currency.as_str()))
        .bind(pricing.map(|pricing| pricing.input_micros))
        .bind(pricing.map(|pricing| pricing.output_micros))
        .bind(&model.owned_by)
        .execute(&mut *connection)
        .await?;
    }
    for key in &config.keys {
        sqlx::query(
            "INSERT INTO api_keys (id, sha256, name, team_id, allowed_models, disabled) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.id)
        .bind(&key.sha256)
        .bind(&key.name)
        .bind(&key.team_id)
        .bind(to_json(&key.allowed_models)?)
        .bind(i64::from(key.disabled))
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

fn corrupt(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.into(),
        reason: reason.into(),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| corrupt("json", error.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, path: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| corrupt(path, error.to_string()))
}

fn non_negative(value: i64, path: &str) -> Result<i64> {
    if value < 0 {
        return Err(corrupt(path, "is negative"));
    }
    Ok(value)
}

fn provider_from_row(row: &AnyRow) -> Result<ProviderRecord> {
    let name: String = row.try_get("name")?;
    let path = format!("providers[{name}]");
    let env: Option<String> = row.try_get("api_key_env")?;
    let file: Option<String> = row.try_get("api_key_file")?;
    let api_key = match (env, file) {
        (Some(env), None) => Some(SecretRefRecord::Env(env)),
        (None, Some(file)) => Some(SecretRefRecord::File(file)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(corrupt(
                format!("{path}.api_key"),
                "both env and file are set",
            ));
        }
    };
    let options: String = row.try_get("options")?;
    let secrets: String = row.try_get("secrets")?;
    Ok(ProviderRecord {
        options: from_json(&options, &format!("{path}.options"))?,
        secrets: from_json(&secrets, &format!("{path}.secrets"))?,
        kind: row.try_get("kind")?,
        base_url: row.try_get("base_url")?,
        api_key,
        timeout_ms: non_negative(row.try_get("timeout_ms")?, &format!("{path}.timeout_ms"))?,
        name,
    })
}

fn model_from_row(row: &AnyRow) -> Result<ModelRecord> {
    let name: String = row.try_get("name")?;
    let path = format!("models[{name}]");
    let targets: String = row.try_get("targets")?;
    let targets: Vec<TargetRecord> = from_json(&targets, &format!("{path}.targets"))?;
    let currency: Option<String> = row.try_get("price_currency")?;
    let input: Option<i64> = row.try_get("input_price_micros")?;
    let output: Option<i64> = row.try_get("output_price_micros")?;
    let pricing = match (currency, input, output) {
        (Some(currency), Some(input_micros), Some(output_micros)) => Some(PricingRecord {
            currency,
            input_micros: non_negative(input_micros, &format!("{path}.input_price_micros"))?,
            output_micros: non_negative(output_micros, &format!("{path}.output_price_micros"))?,
        }),
        (None, None, None) => None,
        _ => {
            return Err(corrupt(
                format!("{path}.pricing"),
                "price columns are partly set",
            ));
        }
    };
    Ok(ModelRecord {
        targets,
        cache_ttl_ms: non_negative(
            row.try_get("cache_ttl_ms")?,
            &format!("{path}.cache_ttl_ms"),
        )?,
        pricing,
        owned_by: row.try_get("owned_by")?,
        name,
    })
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord> {
    let id: String = row.try_get("id")?;
    let allowed_models: String = row.try_get("allowed_models")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(KeyRecord {
        allowed_models: from_json(&allowed_models, &format!("keys[{id}].allowed_models"))?,
        sha256: row.try_get("sha256")?,
        name: row.try_get("name")?,
        team_id: row.try_get("team_id")?,
        disabled: disabled != 0,
        id,
    })
}
