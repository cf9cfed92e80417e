//! Where `switchyard ctl` connects, with which token and TLS files: a flag,
//! else the environment, else `~/.config/switchyard/ctl.yaml`, else the local
//! default. An `https://` server is reached over TLS, presenting a client
//! certificate when one is given.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;
use switchyard_proto::v1::admin_service_client::AdminServiceClient;
use tonic::{
    metadata::MetadataValue,
    service::interceptor::InterceptedService,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use super::CtlError;

/// The admin listener of a local `switchyard serve`.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9400";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// `~/.config/switchyard/ctl.yaml`: defaults for `--server` and `--token`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CtlFile {
    server: Option<String>,
    token: Option<String>,
    ca_cert: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

/// The PEM files of an `https://` connection: the CA the server's
/// certificate chains to, and the client certificate and key for an admin
/// listener that requires one.
#[derive(Debug, Default, Clone)]
pub struct TlsFiles {
    /// The CA certificate(s) of the server.
    pub ca_cert: Option<PathBuf>,
    /// The client certificate.
    pub client_cert: Option<PathBuf>,
    /// Its private key.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Each file from the flag or environment, else from ctl.yaml.
    fn or(self, file: &CtlFile) -> Self {
        Self {
            ca_cert: self.ca_cert.or_else(|| file.ca_cert.clone()),
            client_cert: self.client_cert.or_else(|| file.client_cert.clone()),
            client_key: self.client_key.or_else(|| file.client_key.clone()),
        }
    }

    /// The client TLS settings these files make.
    fn config(&self) -> Result<ClientTlsConfig, CtlError> {
        let read = |path: &PathBuf, what: &str| {
            std::fs::read(path)
                .map_err(|error| CtlError::usage(format!("{what} `{}`: {error}", path.display())))
        };
        let mut config = ClientTlsConfig::new();
        if let Some(path) = &self.ca_cert {
            config = config.ca_certificate(Certificate::from_pem(read(path, "--ca-cert")?));
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                config = config.identity(Identity::from_pem(
                    read(cert, "--client-cert")?,
                    read(key, "--client-key")?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(CtlError::usage(
                    "--client-cert and --client-key go together",
                ));
            }
        }
        Ok(config)
    }
}

/// The admin API client `ctl` calls through: every call carries the token.
pub type Admin = AdminServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The file `ctl` reads defaults from: `$XDG_CONFIG_HOME/switchyard/ctl.yaml`
/// or `~/.config/switchyard/ctl.yaml`.
fn ctl_file_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("switchyard").join("ctl.yaml"))
}

fn read_ctl_file() -> Result<CtlFile, CtlError> {
    let Some(path) = ctl_file_path() else {
        return Ok(CtlFile::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map_err(|error| CtlError::usage(format!("{}: {error}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(CtlFile::default()),
        Err(error) => Err(CtlError::usage(format!("{}: {error}", path.display()))),
    }
}

/// Connects to the admin API at `server` (flag or environment) or the
/// configured default, sending `token` (likewise) with every call.
pub async fn connect(
    server: Option<&str>,
    token: Option<&str>,
    tls: TlsFiles,
) -> Result<Admin, CtlError> {
    let file = if server.is_none() || token.is_none() || tls.ca_cert.is_none() {
        read_ctl_file()?
    } else {
        CtlFile::default()
    };
    let tls = tls.or(&file);
    let server = server
        .map(str::to_owned)
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let token = token.map(str::to_owned).or(file.token);
    let header =
        match token {
            Some(token) => Some(format!("Bearer {}", token.trim()).parse().map_err(|_| {
                CtlError::usage("the admin token holds characters a header cannot")
            })?),
            None => None,
        };
    let mut endpoint = Endpoint::from_shared(server.clone())
        .map_err(|_| CtlError::usage(format!("--server `{server}` is not a URL")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if server.starts_with("https://") {
        endpoint = endpoint
            .tls_config(tls.config()?)
            .map_err(|error| CtlError::usage(format!("TLS settings: {error}")))?;
    }
    let channel = endpoint.connect().await.map_err(|error| {
        CtlError::unreachable(format!(
            "cannot reach the admin API at {server} ({error}); is `switchyard serve` running, \
             with `control_plane.admin_token` set?"
        ))
    })?;
    Ok(
        AdminServiceClient::with_interceptor(channel, BearerToken(header))
            .max_decoding_message_size(switchyard_common::channel::MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(switchyard_common::channel::MAX_GRPC_MESSAGE_BYTES),
    )
}
