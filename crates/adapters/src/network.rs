//! Per-provider networking: an HTTP client for each provider that sets an
//! egress proxy or a CA bundle, or whose attempts set their own connect
//! timeout, made once and kept while its settings stay. Providers without
//! any share the adapters' one pooled client.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::Provider;

use crate::{config::AdapterConfig, http::HttpClient};

/// What a provider's own client is built from: proxy URL, CA bundle file,
/// connect timeout.
type NetworkSettings = (String, String, Option<Duration>);

/// The clients of providers with their own network settings.
#[derive(Debug)]
pub struct NetworkClients {
    config: AdapterConfig,
    /// By (proxy URL, CA bundle file). Locked only to look up or insert, never
    /// across an await.
    clients: Mutex<HashMap<NetworkSettings, HttpClient>>,
}

impl NetworkClients {
    /// No clients yet; they are built with `config`'s settings as needed.
    pub fn new(config: &AdapterConfig) -> Arc<Self> {
        Arc::new(Self {
            config: config.clone(),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The client an attempt at `provider` with `connect` timeout (`None`:
    /// the adapters' own) needs: `None` for the shared one, else its own,
    /// built the first time (reading its CA bundle then). A bundle that
    /// cannot be read or parsed fails the attempt, naming the provider and
    /// file.
    pub fn for_provider(
        &self,
        provider: &Provider,
        connect: Option<Duration>,
    ) -> Result<Option<HttpClient>, ServiceError> {
        let connect = connect.filter(|&connect| connect != self.config.connect_timeout);
        if provider.proxy_url.is_empty() && provider.ca_bundle_file.is_empty() && connect.is_none()
        {
            return Ok(None);
        }
        let settings = (
            provider.proxy_url.clone(),
            provider.ca_bundle_file.clone(),
            connect,
        );
        if let Some(client) = self.lock().get(&settings) {
            return Ok(Some(client.clone()));
        }
        let refuse = |reason: String| {
            ServiceError::new(
                ErrorClass::UpstreamUnavailable,
                format!("provider `{}`: {reason}", provider.name),
            )
            .with_provider(&provider.name)
        };
        let ca_pem = if provider.ca_bundle_file.is_empty() {
            Vec::new()
        } else {
            std::fs::read(&provider.ca_bundle_file).map_err(|error| {
                refuse(format!(
                    "cannot read the CA bundle `{}`: {error}",
                    provider.ca_bundle_file
                ))
            })?
        };
        let mut config = self.config.clone();
        if let Some(connect) = connect {
            config.connect_timeout = connect;
        }
        let client = HttpClient::with_network(&config, &provider.proxy_url, &ca_pem)
            .map_err(|error| refuse(format!("cannot set up its proxy or CA bundle: {error}")))?;
        self.lock().insert(settings, client.clone());
        Ok(Some(client))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NetworkSettings, HttpClient>> {
        // A panic while holding the lock leaves a usable map.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(proxy: &str, bundle: &str) -> Provider {
        Provider {
            name: "private".to_owned(),
            proxy_url: proxy.to_owned(),
            ca_bundle_file: bundle.to_owned(),
            ..Provider::default()
        }
    }

    #[test]
    fn providers_without_settings_share_the_client_and_others_get_one_each() {
        let clients = NetworkClients::new(&AdapterConfig::default());
        assert!(
            clients
                .for_provider(&provider("", ""), None)
                .expect("ok")
                .is_none()
        );
        assert!(
            clients
                .for_provider(&provider("http://proxy.internal:3128", ""), None)
                .expect("a proxied client")
                .is_some()
        );
        assert_eq!(clients.lock().len(), 1);
        clients
            .for_provider(&provider("http://proxy.internal:3128", ""), None)
            .expect("the same one");
        assert_eq!(clients.lock().len(), 1, "built once");
        // An attempt with its own connect timeout gets a client with it,
        // shared by attempts with the same; the adapters' own is no change.
        let quick = Some(Duration::from_millis(250));
        assert!(
            clients
                .for_provider(&provider("", ""), quick)
                .expect("a client")
                .is_some()
        );
        clients
            .for_provider(&provider("", ""), quick)
            .expect("the same one");
        assert_eq!(clients.lock().len(), 2);
        let usual = Some(AdapterConfig::default().connect_timeout);
        assert!(
            clients
                .for_provider(&provider("", ""), usual)
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn an_unreadable_or_invalid_bundle_fails_naming_provider_and_file() {
        let clients = NetworkClients::new(&AdapterConfig::default());
        let error = clients
            .for_provider(&provider("", "/nonexistent/ca.pem"), None)
            .expect_err("no such file");
        assert!(
            error.message.contains("private") && error.message.contains("/nonexistent/ca.pem"),
            "{}",
            error.message
        );
        let directory = tempfile::tempdir().expect("dir");
        let bundle = directory.path().join("ca.pem");
        std::fs::write(
            &bundle,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let error = clients
            .for_provider(&provider("", &bundle.display().to_string()), None)
            .expect_err("not a certificate");
        assert!(error.message.contains("CA bundle"), "{}", error.message);
    }
}
