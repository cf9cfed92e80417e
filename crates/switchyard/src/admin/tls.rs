//! TLS on the admin listener, with optional client certificates (mTLS).
//!
//! With `admin.tls` set, every admin listener of the process (metrics,
//! health and, on the control plane, the admin API) speaks TLS only, and
//! offers HTTP/2 (for gRPC) and HTTP/1.1 by ALPN. With `client_ca` set too, a
//! client must present a certificate that chains to it before any request
//! is read: the admin token then still decides what the caller may do.
//! Certificate files are read when the listener starts; a renewed
//! certificate takes a restart.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may finish their requests after shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// `admin.tls`: the admin listener's certificate, and the CA its clients'
/// certificates must chain to.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminTls {
    /// PEM file of the listener's certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file of its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file of the CA certificates client certificates must chain to;
    /// when set, a client without such a certificate is refused at the
    /// handshake (mTLS). Absent: TLS without client certificates.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

impl AdminTls {
    /// Reads the files into an acceptor offering `h2` and `http/1.1`.
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading admin.tls.cert `{}`", self.cert.display()))?;
        anyhow::ensure!(
            !chain.is_empty(),
            "admin.tls.cert `{}` holds no certificate",
            self.cert.display()
        );
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("reading admin.tls.key `{}`", self.key.display()))?;
        let builder = ServerConfig::builder();
        let builder = match &self.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let certificates = CertificateDer::pem_file_iter(path)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .with_context(|| format!("reading admin.tls.client_ca `{}`", path.display()))?;
                for certificate in certificates {
                    roots.add(certificate).with_context(|| {
                        format!("a certificate in admin.tls.client_ca `{}`", path.display())
                    })?;
                }
                let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .context("admin.tls.client_ca")?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .context("admin.tls: the certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "the admin listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    // A client without an accepted certificate ends here.
                    tracing::warn!(%peer, %error, "admin TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "admin TLS handshake timed out");
                    return;
                }
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(app));
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "admin connection closed with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_DEADLINE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("admin requests still open after the drain deadline; closing them");
    }
    Ok(())
}
