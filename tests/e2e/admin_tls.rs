//! The admin listener over TLS with client certificates (`admin.tls`): `ctl`
//! and scrapers with a certificate from the configured CA get in; without
//! one, with another CA's, or over plain HTTP they are refused at the
//! handshake, before any token is read.

use std::{collections::BTreeMap, path::Path, process::Stdio, time::Duration};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use switchyard::{SwitchyardConfig, admin::Listeners, serve::run_all_in_one};
use tokio_util::sync::CancellationToken;

/// A CA and one certificate it signed, as PEM.
struct Issued {
    ca: String,
    cert: String,
    key: String,
}

/// A new CA and a certificate it issues for `names`.
fn issue(names: &[&str]) -> Issued {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    Issued {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn write(directory: &Path, name: &str, text: &str) -> String {
    let path = directory.join(name);
    std::fs::write(&path, text).expect("write PEM");
    path.display().to_string()
}

/// Runs `switchyard ctl whoami` against `server` with `args`; its exit code.
async fn whoami(server: &str, token: &str, args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().expect("a home");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["ctl", "--server", server, "whoami"])
        .args(args)
        .env("SWITCHYARD_ADMIN_TOKEN", token)
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("SWITCHYARD_SERVER")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("ctl finishes")
        .expect("ctl runs");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_requires_a_client_certificate_from_its_ca() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let dir = directory.path();
    let server = issue(&["localhost", "127.0.0.1"]);
    let client = issue(&["ops-laptop"]);
    let stranger = issue(&["someone-else"]);
    let server_ca = write(dir, "server-ca.pem", &server.ca);
    let server_cert = write(dir, "server.pem", &server.cert);
    let server_key = write(dir, "server.key", &server.key);
    let client_ca = write(dir, "client-ca.pem", &client.ca);
    let client_cert = write(dir, "client.pem", &client.cert);
    let client_key = write(dir, "client.key", &client.key);
    let stranger_cert = write(dir, "stranger.pem", &stranger.cert);
    let stranger_key = write(dir, "stranger.key", &stranger.key);
    let control = dir.join("control.db").display().to_string();
    let ledger = dir.join("ledger.db").display().to_string();
    let config_text = format!(
        r#"
edge: {{listen: "127.0.0.1:0"}}
control_plane: {{database_url: "sqlite://{control}", admin_token: {{env: ADMIN_TOKEN}}}}
ledger: {{sqlite_url: "sqlite://{ledger}"}}
admin: {{tls: {{cert: "{server_cert}", key: "{server_key}", client_ca: "{client_ca}"}}}}
telemetry: {{log_filter: error}}
models:
  - name: demo
    targets: [{{provider: mock, model: mock-1}}]
providers:
  - {{name: mock, kind: mock}}
"#
    );
    let token = "sy-admin-tls-test-token";
    let environment = BTreeMap::from([("ADMIN_TOKEN".to_owned(), token.to_owned())]);
    let config =
        SwitchyardConfig::parse("tls.yaml", &config_text, &environment).expect("valid config");
    let any = "127.0.0.1:0".parse().expect("address");
    let listeners = Listeners::bind(any, any).await.expect("bind");
    let admin = listeners.admin.local_addr().expect("admin address");
    let shutdown = CancellationToken::new();
    let served = switchyard_common::task::spawn_detached(
        "the gateway under test",
        run_all_in_one(config, environment, None, listeners, shutdown.clone()),
    );
    let https = format!("https://localhost:{}", admin.port());

    let with_certificate = [
        "--ca-cert",
        &server_ca,
        "--client-cert",
        &client_cert,
        "--client-key",
        &client_key,
    ];
    // The gateway may still be starting: the first good call is retried.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, output) = whoami(&https, token, &with_certificate).await;
        if code == 0 {
            assert!(output.contains("admin"), "{output}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{code}: {output}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (refused, args) in [
        ("no client certificate", vec!["--ca-cert", &server_ca]),
        (
            "another CA's certificate",
            vec![
                "--ca-cert",
                &server_ca,
                "--client-cert",
                &stranger_cert,
                "--client-key",
                &stranger_key,
            ],
        ),
    ] {
        let (code, output) = whoami(&https, token, &args).await;
        assert_eq!(code, 5, "{refused}: {output}");
        assert!(!output.contains(token), "{output}");
    }
    let (code, output) = whoami(&format!("http://{admin}"), token, &[]).await;
    assert_eq!(code, 5, "plain HTTP: {output}");

    // Prometheus scrapes with a certificate too.
    let identity = reqwest::Identity::from_pem(format!("{}{}", client.cert, client.key).as_bytes())
        .expect("identity");
    let ca = reqwest::Certificate::from_pem(server.ca.as_bytes()).expect("CA");
    let scraper = reqwest::Client::builder()
        .add_root_certificate(ca.clone())
        .identity(identity)
        .build()
        .expect("client");
    let metrics = scraper
        .get(format!("{https}/metrics"))
        .send()
        .await
        .expect("scrape over mTLS");
    assert_eq!(metrics.status(), 200);
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    assert!(
        anonymous
            .get(format!("{https}/metrics"))
            .send()
            .await
            .is_err(),
        "a scrape without a certificate is refused"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the gateway stops")
        .expect("joins")
        .expect("serves cleanly");
}
