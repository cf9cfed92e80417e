//! The `control_plane` section of the config file.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_common::SecretSource;

use crate::{Error, Result};

/// Settings of the control-plane service (`control_plane` section).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ControlPlaneConfig {
    /// Address the gRPC server listens on when run as its own process.
    pub listen: SocketAddr,
    /// Where config state lives: `sqlite://FILE` (created if missing) or
    /// `postgres://…` / `postgresql://…`.
    pub database_url: String,
    /// How often the stored version is checked for changes written by other
    /// replicas or admins (e.g. `2s`).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// Where the bootstrap admin token is read (`{env: SWITCHYARD_ADMIN_TOKEN}`
    /// or `{file: …}`): a token with the admin role, which can create others.
    /// The admin API is off until this is set. Only its hash is kept.
    pub admin_token: Option<SecretSource>,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7003)),
            database_url: "sqlite://switchyard-control.db".to_owned(),
            poll_interval: Duration::from_secs(2),
            admin_token: None,
        }
    }
}

impl ControlPlaneConfig {
    /// Checks the settings that serde cannot.
    pub fn validate(&self) -> Result<()> {
        if self.poll_interval.is_zero() {
            return Err(Error::invalid(
                "control_plane.poll_interval",
                "must be positive",
            ));
        }
        if self.database_url.trim().is_empty() {
            return Err(Error::invalid("control_plane.database_url", "is empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use switchyard_common::config::{Environment, load_yaml};

    use super::*;

    #[test]
    fn defaults_fill_missing_fields() {
        let config: ControlPlaneConfig =
            load_yaml("t.yaml", "poll_interval: 500ms", &Environment::new()).expect("valid");
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.listen.port(), 7003);
        assert_eq!(config.database_url, "sqlite://switchyard-control.db");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn zero_poll_interval_is_rejected() {
        let config = ControlPlaneConfig {
            poll_interval: Duration::ZERO,
            ..ControlPlaneConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
