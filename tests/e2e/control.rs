//! The control plane from the operator's side: `switchyard ctl` against a
//! running gateway (keys, budgets, revocation, apply and export, exit
//! codes), and `grpcurl`'s view of the admin listener (reflection).

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::cluster::TestCluster;

/// What one `switchyard ctl` run did.
pub struct CtlRun {
    /// The exit code.
    pub code: i32,
    /// What it printed for scripts.
    pub stdout: String,
    /// What it printed for people.
    pub stderr: String,
}

/// Runs `switchyard ctl ARGS` against the cluster's admin API with `token`,
/// feeding `stdin` when given. The user's own `~/.config` is kept out.
pub async fn ctl_with(
    cluster: &TestCluster,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> CtlRun {
    let home = tempfile::tempdir().expect("a home");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .arg("ctl")
        .arg("--server")
        .arg(cluster.admin_api_url())
        .args(args)
        .env("SWITCHYARD_ADMIN_TOKEN", token)
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("SWITCHYARD_SERVER")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("ctl starts");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).await.expect("write stdin");
        drop(input);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("ctl finishes")
        .expect("ctl runs");
    CtlRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `switchyard ctl ARGS` with the bootstrap admin token.
pub async fn ctl(cluster: &TestCluster, args: &[&str]) -> CtlRun {
    ctl_with(cluster, &cluster.admin_token, args, None).await
}

fn chat_body() -> Value {
    json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]})
}

async fn chat_with(cluster: &TestCluster, key: &str) -> reqwest::StatusCode {
    cluster
        .http
        .post(format!("{}/v1/chat/completions", cluster.base_url))
        .bearer_auth(key)
        .json(&chat_body())
        .send()
        .await
        .expect("edge answers")
        .status()
}

/// The README's CLI flow: create a key, use it, set a budget, revoke the key;
/// the edge refuses it within a second of the revocation.
pub async fn ctl_creates_a_key_sets_a_budget_and_revokes_the_key_within_a_second(
    cluster: &TestCluster,
) {
    let created = ctl(
        cluster,
        &[
            "keys",
            "create",
            "--id",
            "ci-bot",
            "--team",
            &cluster.team,
            "--models",
            "gpt-test",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let created: Value = serde_json::from_str(&created.stdout).expect("json");
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    assert!(secret.starts_with("sk-sy-"), "{secret}");

    // The new key reaches the edge as quickly as a revocation does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while chat_with(cluster, &secret).await != reqwest::StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key works within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let listed = ctl(cluster, &["keys", "list"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let hint = format!("sk-sy-…{}", &secret[secret.len() - 4..]);
    assert!(listed.stdout.contains(&hint), "{}", listed.stdout);
    assert!(
        !listed.stdout.contains(&secret[6..]),
        "listing shows no key"
    );

    let scope = format!("team:{}", cluster.team);
    let budget = ctl(
        cluster,
        &[
            "budgets", "set", "launch", "--scope", &scope, "--limit", "250.00",
        ],
    )
    .await;
    assert_eq!(budget.code, 0, "{}", budget.stderr);
    assert!(
        budget.stdout.contains("250.00 USD monthly"),
        "{}",
        budget.stdout
    );
    let raised = ctl(
        cluster,
        &[
            "budgets", "set", "launch", "--scope", &scope, "--limit", "400",
        ],
    )
    .await;
    assert_eq!(raised.code, 0, "{}", raised.stderr);
    let shown = ctl(cluster, &["budgets", "show", "launch", "-o", "yaml"]).await;
    assert!(shown.stdout.contains("limit: '400'"), "{}", shown.stdout);

    let revoked = ctl(cluster, &["keys", "revoke", "ci-bot"]).await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    let revoked_at = tokio::time::Instant::now();
    loop {
        let status = chat_with(cluster, &secret).await;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "the revoked key still answers {status} after a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let audit = ctl(cluster, &["audit", "-o", "json"]).await;
    let entries: Value = serde_json::from_str(&audit.stdout).expect("json");
    let actions: Vec<(&str, &str)> = entries
        .as_array()
        .expect("entries")
        .iter()
        .take(4)
        .map(|entry| {
            (
                entry["action"].as_str().unwrap_or_default(),
                entry["id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("update", "ci-bot"),
            ("update", "launch"),
            ("create", "launch"),
            ("create", "ci-bot"),
        ]
    );
    assert!(
        !audit.stdout.contains(&secret[6..]),
        "the audit log holds no key"
    );
    let http_audit = cluster
        .http
        .get(format!("{}/admin/audit?limit=1", cluster.admin_api_url()))
        .bearer_auth(&cluster.admin_token)
        .send()
        .await
        .expect("the admin listener answers");
    assert!(http_audit.status().is_success());
    let body: Value = http_audit.json().await.expect("json");
    assert_eq!(body["entries"][0]["id"], "ci-bot");
    let refused = cluster
        .http
        .get(format!("{}/admin/audit", cluster.admin_api_url()))
        .send()
        .await
        .expect("the admin listener answers");
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
}

/// The README's GitOps flow: what `export` writes, `apply --dry-run` reads
/// back with no diff; a change shows as a diff and applies; bad files and
/// bad tokens exit with the codes scripts rely on.
pub async fn export_applies_back_without_a_diff_and_changes_apply_atomically(
    cluster: &TestCluster,
) {
    let exported = ctl(cluster, &["export"]).await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let dry = ctl_with(
        cluster,
        &cluster.admin_token,
        &["apply", "-f", "-", "--dry-run", "--prune"],
        Some(&exported.stdout),
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.stdout, "", "export | apply --dry-run shows no diff");
    assert!(dry.stderr.contains("no changes"), "{}", dry.stderr);
    let diff = ctl_with(
        cluster,
        &cluster.admin_token,
        &["diff", "-f", "-"],
        Some(&exported.stdout),
    )
    .await;
    assert_eq!(diff.code, 0, "no differences: {}", diff.stdout);

    // Edit the file: a route's cache TTL changes.
    let edited = exported.stdout.replacen("ttl: 1m", "ttl: 2m", 1);
    assert_ne!(
        edited, exported.stdout,
        "the export holds the gpt-test route's cache"
    );
    let diff = ctl_with(
        cluster,
        &cluster.admin_token,
        &["diff", "-f", "-"],
        Some(&edited),
    )
    .await;
    assert_eq!(diff.code, 1, "differences exit 1: {}", diff.stderr);
    assert!(
        diff.stdout.contains("~ route gpt-test (update)")
            && diff.stdout.contains("-     ttl: 1m")
            && diff.stdout.contains("+     ttl: 2m"),
        "{}",
        diff.stdout
    );
    let applied = ctl_with(
        cluster,
        &cluster.admin_token,
        &["apply", "-f", "-"],
        Some(&edited),
    )
    .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    assert!(
        applied.stderr.contains("1 object(s) changed"),
        "{}",
        applied.stderr
    );
    let described = ctl(cluster, &["describe", "route", "gpt-test"]).await;
    assert!(
        described.stdout.contains("ttl: 2m") && described.stdout.contains("revision: 2"),
        "{}",
        described.stdout
    );

    // A file naming a missing deployment is refused, the field named.
    let broken = edited.replacen(
        "- gpt-test/fake-openai/gpt-4o-mini",
        "- no-such-deployment",
        1,
    );
    let refused = ctl_with(
        cluster,
        &cluster.admin_token,
        &["apply", "-f", "-"],
        Some(&broken),
    )
    .await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("strategy.fallback[0]")
            && refused.stderr.contains("no-such-deployment"),
        "{}",
        refused.stderr
    );
    // An API-owned object cannot be deleted by pruning or changed by a file.
    let file_owned = ctl(cluster, &["delete", "route", "demo"]).await;
    assert_eq!(file_owned.code, 3, "{}", file_owned.stderr);
    let unknown = ctl_with(cluster, "sy-admin-wrong", &["get", "routes"], None).await;
    assert_eq!(unknown.code, 4, "{}", unknown.stderr);
    assert!(!unknown.stderr.contains("sy-admin-wrong"));
}

/// `grpcurl -plaintext ADMIN list` works without .proto files: the admin
/// listener serves reflection beside `AdminService`.
pub async fn the_admin_listener_serves_the_admin_api_with_reflection(cluster: &TestCluster) {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let channel = tonic::transport::Endpoint::from_shared(cluster.admin_api_url().to_owned())
        .expect("url")
        .connect()
        .await
        .expect("the admin listener speaks HTTP/2");
    let request = futures::stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }]);
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(request)
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.message().await.expect("ok").expect("an answer");
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = listed.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"switchyard.v1.AdminService"), "{names:?}");
    // And the same port still answers /metrics over HTTP/1.1.
    let metrics = cluster
        .http
        .get(format!("{}/metrics", cluster.admin_api_url()))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("admin_auth_failures_total"),
        "the control plane's admin listener counts refusals"
    );
}

/// Whether the admin API lists route `name`.
async fn route_exists(cluster: &TestCluster, name: &str) -> bool {
    ctl(cluster, &["get", "route", name, "-o", "json"])
        .await
        .code
        == 0
}

/// GitOps without a restart: a saved change to the config file is applied
/// within a second; an invalid one is refused and the running config kept.
pub async fn a_saved_config_file_change_applies_within_a_second_and_a_bad_one_is_refused(
    cluster: &TestCluster,
) {
    let anchor = "  - name: refused-first\n";
    assert!(cluster.config_text.contains(anchor));
    let added = cluster.config_text.replacen(
        anchor,
        &format!("  - name: hot-added\n    strategy: {{fallback: [openai-backup]}}\n{anchor}"),
        1,
    );
    std::fs::write(&cluster.config_path, &added).expect("save the file");
    let saved_at = tokio::time::Instant::now();
    while !route_exists(cluster, "hot-added").await {
        assert!(
            saved_at.elapsed() < Duration::from_secs(1),
            "the saved change is not applied within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A route to a deployment that does not exist: refused, nothing changes.
    let broken = added.replacen(
        "strategy: {fallback: [openai-backup]}",
        "strategy: {fallback: [no-such-deployment]}",
        1,
    );
    std::fs::write(&cluster.config_path, &broken).expect("save the file");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let shown = ctl(cluster, &["get", "route", "hot-added", "-o", "yaml"]).await;
    assert!(shown.stdout.contains("openai-backup"), "{}", shown.stdout);
    assert_eq!(
        chat_with(cluster, &cluster.api_key).await,
        reqwest::StatusCode::OK,
        "the running config still serves"
    );

    // Fixed again: the route leaves with the file.
    std::fs::write(&cluster.config_path, &cluster.config_text).expect("save the file");
    let saved_at = tokio::time::Instant::now();
    while route_exists(cluster, "hot-added").await {
        assert!(
            saved_at.elapsed() < Duration::from_secs(1),
            "the removal is not applied within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A provider's key stored through `ctl` instead of an environment
/// variable: the control plane seals it, the adapters open it, and requests
/// carry it upstream; nothing shows it.
/// The provider key stored with `ctl credentials set` (unlike the one in the
/// environment, so the upstream shows which was sent).
const STORED_KEY: &str = "sk-stored-7c1d9e0f2a4b";

pub async fn a_provider_key_stored_with_ctl_is_used_upstream_and_never_shown(
    cluster: &TestCluster,
) {
    let set = ctl_with(
        cluster,
        &cluster.admin_token,
        &[
            "credentials",
            "set",
            "openai-stored",
            "--provider",
            "fake-openai",
        ],
        Some(STORED_KEY),
    )
    .await;
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(set.stdout.contains("master_key=k1"), "{}", set.stdout);
    // The file switches the provider to the stored credential.
    let uses_it = cluster.config_text.replacen(
        "api_key: {env: FAKE_OPENAI_KEY}, timeout: 10s",
        "api_key: {credential: openai-stored}, timeout: 10s",
        1,
    );
    assert_ne!(uses_it, cluster.config_text);
    std::fs::write(&cluster.config_path, &uses_it).expect("save the file");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let provider = ctl(cluster, &["get", "provider", "fake-openai", "-o", "yaml"]).await;
        if provider.stdout.contains("credential: openai-stored") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            provider.stdout
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The adapters use the stored value once their snapshot has the change.
    // Each try asks something new: `gpt-test` caches, and a cached answer
    // calls no provider.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for attempt in 0.. {
        let body = json!({"model": "gpt-test",
            "messages": [{"role": "user", "content": format!("stored key {attempt}")}]});
        let response = cluster.chat(&body).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, reqwest::StatusCode::OK, "{text}");
        let sent = cluster.upstream.requests();
        let last = sent.last().expect("the upstream was called");
        if last.headers["authorization"] == format!("Bearer {STORED_KEY}") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stored key was not used"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The adapters' decryption is in the control plane's audit log, by the
    // adapter process that read it; it is reported in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let decrypted = loop {
        let audit = ctl(cluster, &["audit", "-o", "json"]).await.stdout;
        let entries: Value = serde_json::from_str(&audit).expect("JSON");
        let read = entries.as_array().and_then(|entries| {
            entries
                .iter()
                .find(|entry| entry["action"] == "decrypt" && entry["id"] == "openai-stored")
                .cloned()
        });
        if let Some(read) = read {
            break read;
        }
        assert!(tokio::time::Instant::now() < deadline, "{audit}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(decrypted["kind"], "credential");
    assert!(
        decrypted["actor"]
            .as_str()
            .is_some_and(|actor| actor.starts_with("adapter ") && actor.contains(" pid ")),
        "{decrypted}"
    );
    assert!(
        decrypted["after"]
            .as_str()
            .is_some_and(|after| after.contains("\"master_key_id\":\"k1\"")),
        "{decrypted}"
    );
    for shown in [
        ctl(cluster, &["credentials", "list", "-o", "json"])
            .await
            .stdout,
        ctl(cluster, &["audit", "-o", "json"]).await.stdout,
        ctl(cluster, &["export"]).await.stdout,
    ] {
        assert!(!shown.contains(STORED_KEY), "{shown}");
    }
}
