//! Service roles, and the role a caller proved.
//!
//! A server that authenticates its callers records the role they proved as a
//! [`CallerRole`] request extension; the control plane then serves that
//! role's snapshot view whatever the request asks for. In-process calls cross
//! no network and carry none. [`crate::service_auth`] sets the extension on
//! every internal gRPC server.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_proto::v1::SnapshotAudience;

/// The token of an `Authorization: Bearer …` value (any case of `Bearer`);
/// `None` for another scheme or an empty token.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A Switchyard service role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceRole {
    /// The HTTP edge.
    Edge,
    /// The router.
    Router,
    /// The provider adapters.
    Adapter,
    /// The control plane.
    ControlPlane,
    /// The usage ledger.
    Ledger,
    /// The response cache.
    Cache,
}

impl ServiceRole {
    /// Every role.
    pub const ALL: [Self; 6] = [
        Self::Edge,
        Self::Router,
        Self::Adapter,
        Self::ControlPlane,
        Self::Ledger,
        Self::Cache,
    ];

    /// The roles that call other services, and so hold a service token.
    pub const CALLERS: [Self; 3] = [Self::Edge, Self::Router, Self::Adapter];

    /// The roles allowed to call this role's gRPC server.
    pub fn callers(self) -> &'static [Self] {
        match self {
            Self::Router => &[Self::Edge],
            Self::Adapter | Self::Cache | Self::Ledger => &[Self::Router],
            Self::ControlPlane => &[Self::Edge, Self::Router, Self::Adapter],
            Self::Edge => &[],
        }
    }

    /// The role's name, as on the command line (`switchyard run control-plane`)
    /// and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edge => "edge",
            Self::Router => "router",
            Self::Adapter => "adapter",
            Self::ControlPlane => "control-plane",
            Self::Ledger => "ledger",
            Self::Cache => "cache",
        }
    }

    /// The snapshot view this role receives from the control plane.
    pub fn audience(self) -> SnapshotAudience {
        match self {
            Self::Edge => SnapshotAudience::Edge,
            Self::Router => SnapshotAudience::Router,
            Self::Adapter => SnapshotAudience::Adapter,
            Self::ControlPlane | Self::Ledger | Self::Cache => SnapshotAudience::Unspecified,
        }
    }
}

impl fmt::Display for ServiceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceRole {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|role| role.as_str()).collect();
                format!(
                    "unknown role `{name}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The role an authenticated caller proved; a request extension on servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerRole(pub ServiceRole);

impl CallerRole {
    /// The snapshot view the caller receives.
    pub fn audience(self) -> SnapshotAudience {
        self.0.audience()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_their_names() {
        for role in ServiceRole::ALL {
            assert_eq!(role.to_string().parse::<ServiceRole>(), Ok(role));
        }
        let error = "gateway".parse::<ServiceRole>().expect_err("unknown");
        assert!(error.contains("control-plane"), "{error}");
    }
}
