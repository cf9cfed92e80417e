//! Service authentication: every internal gRPC call carries its caller's
//! per-role token, and every internal gRPC server refuses calls without one.
//!
//! Without it, anything that can reach the router could claim any key or
//! team in `RequestContext`, and anything that can reach the ledger could
//! forge usage. Each calling role (edge, router, adapter) has its own token;
//! a server accepts only the roles that [`ServiceRole::callers`] names, and
//! records the proven role as a [`CallerRole`] request extension (the
//! control plane serves that role's snapshot view, whatever the request
//! asks for). A call without a token gets `UNAUTHENTICATED`; a valid token
//! of a role that may not call this service gets `PERMISSION_DENIED`.
//!
//! In-process hops (`switchyard serve`) cross no network and carry none.
//! Tokens are read at startup: rotating one means restarting the pods.

use std::{
    collections::BTreeMap,
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use crate::{
    SecretSource,
    auth::{CallerRole, ServiceRole},
    config::Environment,
    secret::{Secret, SecretError},
};

/// Shortest token accepted: a guessable token is no authentication.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The `service_auth` section of the config file.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceAuthConfig {
    /// Each calling role's token, by role name (`edge`, `router`,
    /// `adapter`). A role left out reads `SWITCHYARD_SERVICE_TOKEN_<ROLE>`.
    pub tokens: BTreeMap<ServiceRole, SecretSource>,
}

impl Default for ServiceAuthConfig {
    fn default() -> Self {
        let tokens = ServiceRole::CALLERS
            .into_iter()
            .map(|role| (role, SecretSource::env(default_token_variable(role))))
            .collect();
        Self { tokens }
    }
}

/// The environment variable a role's token is read from by default.
pub fn default_token_variable(role: ServiceRole) -> String {
    format!(
        "SWITCHYARD_SERVICE_TOKEN_{}",
        role.as_str().replace('-', "_").to_uppercase()
    )
}

/// Why service credentials could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAuthError {
    /// Two roles hold the same token, so a server could not tell them apart.
    #[error(
        "service_auth.tokens.{first} and service_auth.tokens.{second} are the same token; every role needs its own"
    )]
    SharedToken {
        /// One role.
        first: &'static str,
        /// The other role.
        second: &'static str,
    },
    /// The token's reference cannot be resolved.
    #[error(
        "service_auth.tokens.{role}: {source} (every internal call carries its role's token; generate one with `openssl rand -hex 32`)"
    )]
    Unresolved {
        /// The role whose token is missing.
        role: &'static str,
        /// Why resolving failed.
        source: SecretError,
    },
    /// The token is too short or not a valid header value.
    #[error(
        "service_auth.tokens.{role}: a token needs at least {MIN_TOKEN_CHARS} visible ASCII characters"
    )]
    Weak {
        /// The role whose token is unusable.
        role: &'static str,
    },
}

impl ServiceAuthConfig {
    fn token(
        &self,
        role: ServiceRole,
        environment: &Environment,
    ) -> Result<Secret, ServiceAuthError> {
        let name = role.as_str();
        let default = SecretSource::env(default_token_variable(role));
        let source = self.tokens.get(&role).unwrap_or(&default);
        let token = source
            .resolve(environment)
            .map_err(|source| ServiceAuthError::Unresolved { role: name, source })?;
        let usable = token.expose().len() >= MIN_TOKEN_CHARS
            && token.expose().bytes().all(|byte| byte.is_ascii_graphic());
        if !usable {
            return Err(ServiceAuthError::Weak { role: name });
        }
        Ok(token)
    }

    /// Every calling role's token as this process can resolve it, refusing
    /// two roles that hold the same one: the role a server checked first
    /// would be credited with the other's calls.
    fn resolve_all(
        &self,
        environment: &Environment,
    ) -> Result<Vec<(ServiceRole, TokenResult)>, ServiceAuthError> {
        let all: Vec<_> = ServiceRole::CALLERS
            .into_iter()
            .map(|role| (role, self.token(role, environment)))
            .collect();
        let held: Vec<(ServiceRole, &Secret)> = all
            .iter()
            .filter_map(|(role, token)| Some((*role, token.as_ref().ok()?)))
            .collect();
        for (index, (first, token)) in held.iter().enumerate() {
            if let Some((second, _)) = held[index + 1..].iter().find(|(_, other)| other == token) {
                return Err(ServiceAuthError::SharedToken {
                    first: first.as_str(),
                    second: second.as_str(),
                });
            }
        }
        Ok(all)
    }

    /// The credential `role` presents on its outgoing calls.
    pub fn credential(
        &self,
        role: ServiceRole,
        environment: &Environment,
    ) -> Result<ServiceCredential, ServiceAuthError> {
        let token = self
            .resolve_all(environment)?
            .into_iter()
            .find_map(|(caller, token)| (caller == role).then_some(token))
            .unwrap_or_else(|| self.token(role, environment))?;
        ServiceCredential::new(role, &token)
    }

    /// The verifier a `server` role's gRPC server checks callers with.
    pub fn verifier(
        &self,
        server: ServiceRole,
        environment: &Environment,
    ) -> Result<CallerVerifier, ServiceAuthError> {
        let mut accepted = Vec::new();
        let mut known = Vec::new();
        for (role, token) in self.resolve_all(environment)? {
            if server.callers().contains(&role) {
                accepted.push((role, token?));
            } else if let Ok(token) = token {
                known.push((role, token));
            }
        }
        Ok(CallerVerifier::new(accepted, known))
    }
}

/// One role's token, or why it could not be resolved.
type TokenResult = Result<Secret, ServiceAuthError>;

/// What a calling role sends on every remote call: `authorization: Bearer`.
#[derive(Clone)]
pub struct ServiceCredential {
    role: ServiceRole,
    header: HeaderValue,
}

impl ServiceCredential {
    /// The credential of `role` holding `token`.
    pub fn new(role: ServiceRole, token: &Secret) -> Result<Self, ServiceAuthError> {
        let mut header =
            HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                ServiceAuthError::Weak {
                    role: role.as_str(),
                }
            })?;
        header.set_sensitive(true);
        Ok(Self { role, header })
    }

    /// The role presenting it.
    pub fn role(&self) -> ServiceRole {
        self.role
    }

    /// Adds the credential to an outgoing request's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(AUTHORIZATION, self.header.clone());
    }
}

impl fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceCredential({}, [redacted])", self.role)
    }
}

/// Checks the credential of every call a server receives.
///
/// Holds SHA-256 digests of the tokens, never the tokens: comparing digests
/// tells a timing observer nothing that helps forge a token.
#[derive(Clone)]
pub struct CallerVerifier {
    accepted: Arc<[(ServiceRole, [u8; 32])]>,
    known: Arc<[(ServiceRole, [u8; 32])]>,
}

impl CallerVerifier {
    /// A verifier accepting the `accepted` roles' tokens; `known` tokens of
    /// other roles (those this process holds) are recognised so their calls
    /// are told they may not call here (`PERMISSION_DENIED`) rather than
    /// that they lack credentials.
    pub fn new(
        accepted: impl IntoIterator<Item = (ServiceRole, Secret)>,
        known: impl IntoIterator<Item = (ServiceRole, Secret)>,
    ) -> Self {
        let digest = |(role, token): (ServiceRole, Secret)| (role, digest(token.expose()));
        Self {
            accepted: accepted.into_iter().map(digest).collect(),
            known: known.into_iter().map(digest).collect(),
        }
    }

    /// The role whose token `headers` carry, or the status refusing the call.
    pub fn verify(&self, headers: &HeaderMap) -> Result<ServiceRole, Status> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("internal call without service credentials"))?;
        let presented = digest(token);
        if let Some((role, _)) = self.accepted.iter().find(|(_, d)| *d == presented) {
            return Ok(*role);
        }
        match self.known.iter().find(|(_, d)| *d == presented) {
            Some((role, _)) => Err(Status::permission_denied(format!(
                "the {role} role may not call this service"
            ))),
            None => Err(Status::unauthenticated("unknown service credentials")),
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A tower layer that refuses calls the [`CallerVerifier`] does not accept.
#[derive(Clone)]
pub struct RequireCaller {
    verifier: CallerVerifier,
}

impl RequireCaller {
    /// Requires callers `verifier` accepts.
    pub fn new(verifier: CallerVerifier) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for RequireCaller {
    type Service = RequireCallerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireCallerService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The path prefix of the standard health service's calls.
const HEALTH_PATH: &str = "/grpc.health.v1.Health/";

/// The service [`RequireCaller`] wraps around a gRPC server.
#[derive(Clone)]
pub struct RequireCallerService<S> {
    inner: S,
    verifier: CallerVerifier,
}

impl<S, B> Service<http::Request<B>> for RequireCallerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Health checks come from probes (the kubelet's) that carry no
        // credential, and reveal nothing but that the server runs.
        if request.uri().path().starts_with(HEALTH_PATH) {
            return Box::pin(self.inner.call(request));
        }
        match self.verifier.verify(request.headers()) {
            Ok(role) => {
                request.extensions_mut().insert(CallerRole(role));
                Box::pin(self.inner.call(request))
            }
            Err(status) => {
                tracing::warn!(
                    code = ?status.code(),
                    path = request.uri().path(),
                    "refused an internal call"
                );
                Box::pin(futures::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment() -> Environment {
        ServiceRole::CALLERS
            .into_iter()
            .map(|role| {
                (
                    default_token_variable(role),
                    format!("token-of-the-{role}-role"),
                )
            })
            .collect()
    }

    fn headers(credential: &ServiceCredential) -> HeaderMap {
        let mut headers = HeaderMap::new();
        credential.apply(&mut headers);
        headers
    }

    #[test]
    fn a_server_accepts_its_callers_and_names_their_role() {
        let config = ServiceAuthConfig::default();
        let environment = environment();
        let ledger = config
            .verifier(ServiceRole::Ledger, &environment)
            .expect("tokens set");
        let router = config
            .credential(ServiceRole::Router, &environment)
            .expect("token set");
        assert_eq!(
            ledger.verify(&headers(&router)).ok(),
            Some(ServiceRole::Router)
        );
        let control_plane = config
            .verifier(ServiceRole::ControlPlane, &environment)
            .expect("tokens set");
        let adapter = config
            .credential(ServiceRole::Adapter, &environment)
            .expect("token set");
        assert_eq!(
            control_plane.verify(&headers(&adapter)).ok(),
            Some(ServiceRole::Adapter)
        );
    }

    #[test]
    fn calls_without_a_valid_token_are_refused() {
        let config = ServiceAuthConfig::default();
        let environment = environment();
        let ledger = config
            .verifier(ServiceRole::Ledger, &environment)
            .expect("tokens set");
        let missing = ledger.verify(&HeaderMap::new()).expect_err("no token");
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        let mut forged = HeaderMap::new();
        forged.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer guessed-token-123"),
        );
        let forged = ledger.verify(&forged).expect_err("unknown token");
        assert_eq!(forged.code(), tonic::Code::Unauthenticated);
        let edge = config
            .credential(ServiceRole::Edge, &environment)
            .expect("token set");
        let denied = ledger.verify(&headers(&edge)).expect_err("edge may not");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn missing_or_weak_tokens_name_the_role_and_never_the_value() {
        let config = ServiceAuthConfig::default();
        let error = config
            .credential(ServiceRole::Router, &Environment::new())
            .expect_err("unset");
        let message = error.to_string();
        assert!(message.contains("service_auth.tokens.router"), "{message}");
        assert!(
            message.contains("SWITCHYARD_SERVICE_TOKEN_ROUTER"),
            "{message}"
        );
        let weak = Environment::from([(
            "SWITCHYARD_SERVICE_TOKEN_EDGE".to_owned(),
            "short".to_owned(),
        )]);
        let error = config
            .credential(ServiceRole::Edge, &weak)
            .expect_err("too short");
        assert!(!error.to_string().contains("short"), "{error}");
        assert!(matches!(error, ServiceAuthError::Weak { role: "edge" }));
    }

    #[test]
    fn a_token_shared_by_two_roles_is_refused() {
        let mut environment = environment();
        environment.insert(
            "SWITCHYARD_SERVICE_TOKEN_ROUTER".to_owned(),
            "token-of-the-edge-role".to_owned(),
        );
        let config = ServiceAuthConfig::default();
        let error = config
            .verifier(ServiceRole::Ledger, &environment)
            .err()
            .expect("edge and router share a token");
        assert!(matches!(
            error,
            ServiceAuthError::SharedToken {
                first: "edge",
                second: "router"
            }
        ));
        assert!(
            config
                .credential(ServiceRole::Adapter, &environment)
                .is_err()
        );
    }

    #[test]
    fn a_role_left_out_of_the_tokens_reads_its_default_variable() {
        let config = ServiceAuthConfig {
            tokens: BTreeMap::from([(
                ServiceRole::Router,
                SecretSource::env("ROUTER_TOKEN_ELSEWHERE"),
            )]),
        };
        let mut environment = environment();
        environment.remove("SWITCHYARD_SERVICE_TOKEN_ROUTER");
        environment.insert(
            "ROUTER_TOKEN_ELSEWHERE".to_owned(),
            "the-router-token-moved".to_owned(),
        );
        let control_plane = config
            .verifier(ServiceRole::ControlPlane, &environment)
            .expect("edge and adapter from their defaults");
        let router = config
            .credential(ServiceRole::Router, &environment)
            .expect("from the configured variable");
        assert_eq!(
            control_plane.verify(&headers(&router)).ok(),
            Some(ServiceRole::Router)
        );
    }

    #[test]
    fn credentials_never_print_their_token() {
        let credential = ServiceAuthConfig::default()
            .credential(ServiceRole::Edge, &environment())
            .expect("token set");
        assert!(!format!("{credential:?}").contains("token-of"));
    }
}
