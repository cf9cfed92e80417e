//! The `ledger` section of the config file.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_common::SecretSource;

/// Ledger settings.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// gRPC listen address when the ledger runs as its own process.
    pub listen: SocketAddr,
    /// SQLite database used when `clickhouse` is not set; the file is created
    /// if missing (e.g. `sqlite://switchyard-ledger.db`).
    pub sqlite_url: String,
    /// When set, usage events go to ClickHouse instead of SQLite.
    pub clickhouse: Option<ClickHouseConfig>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7005)),
            sqlite_url: "sqlite://switchyard-ledger.db".to_owned(),
            clickhouse: None,
        }
    }
}

/// How to reach ClickHouse over its HTTP interface.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// Base URL of the HTTP interface, without credentials.
    pub url: String,
    /// Database holding the `usage_events` table; created if missing.
    /// Letters, digits and `_` only.
    pub database: String,
    /// User to authenticate as; ClickHouse's `default` user when unset.
    pub user: Option<String>,
    /// Reference to the user's password (`{env: NAME}` or `{file: PATH}`).
    pub password: Option<SecretSource>,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".to_owned(),
            database: "switchyard".to_owned(),
            user: None,
            password: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_common::config::{Environment, load_yaml};

    #[test]
    fn clickhouse_section_fills_defaults() {
        let config: LedgerConfig = load_yaml(
            "ledger.yaml",
            "clickhouse: {database: usage}",
            &Environment::new(),
        )
        .expect("valid ledger section");
        let clickhouse = config.clickhouse.expect("clickhouse is set");
        assert_eq!(clickhouse.url, "http://127.0.0.1:8123");
        assert_eq!(clickhouse.database, "usage");
        assert_eq!(config.listen.port(), 7005);
    }
}
