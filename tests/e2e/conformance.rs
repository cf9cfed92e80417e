//! Provider conformance: the official `openai` Python SDK gets the same shape
//! of answer, tool calls and usage from every provider family, through the
//! edge, against fakes speaking each provider's real wire format.

use std::{collections::BTreeMap, time::Duration};

use switchyard::{SwitchyardConfig, admin::Listeners, serve::run_all_in_one};
use switchyard_test_support::{
    FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY, FakeAnthropic, FakeBedrock, FakeGemini,
    FakeOpenAi, Fault,
};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::{
    cluster::LOCAL_ANY_PORT,
    python_sdk::{openai_sdk_available, repository_root},
};

const CLIENT_KEY: &str = "sk-conformance-client";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_answers_the_openai_sdk_in_the_same_shape() {
    if !openai_sdk_available() {
        return;
    }
    let openai = FakeOpenAi::start().await;
    let anthropic = FakeAnthropic::start().await;
    let gemini = FakeGemini::start().await;
    let bedrock = FakeBedrock::start().await;
    let directory = tempfile::tempdir().expect("temporary directory");
    let config = format!(
        r#"
control_plane: {{database_url: "sqlite://{control}"}}
ledger: {{sqlite_url: "sqlite://{ledger}"}}
telemetry: {{log_filter: warn}}
providers:
  - {{name: openai, kind: openai, base_url: "{openai}", api_key: {{env: OPENAI_KEY}}}}
  - {{name: anthropic, kind: anthropic, base_url: "{anthropic}", api_key: {{env: ANTHROPIC_KEY}}}}
  - {{name: gemini, kind: gemini, base_url: "{gemini}", api_key: {{env: GEMINI_KEY}}}}
  - name: bedrock
    kind: bedrock
    base_url: "{bedrock}"
    options: {{region: us-east-1}}
    secrets:
      aws_access_key_id: {{env: AWS_KEY_ID}}
      aws_secret_access_key: {{env: AWS_SECRET}}
models:
  - {{name: openai-model, targets: [{{provider: openai, model: gpt-4o-mini}}]}}
  - {{name: anthropic-model, targets: [{{provider: anthropic, model: claude-sonnet-4-5}}]}}
  - {{name: gemini-model, targets: [{{provider: gemini, model: gemini-2.5-flash}}]}}
  - {{name: bedrock-model, targets: [{{provider: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}}]}}
keys:
  - {{id: conformance, secret: {{env: CLIENT_KEY}}}}
"#,
        control = directory.path().join("control.db").display(),
        ledger = directory.path().join("ledger.db").display(),
        openai = openai.base_url(),
        anthropic = anthropic.base_url(),
        gemini = gemini.base_url(),
        bedrock = bedrock.base_url(),
    );
    let environment = BTreeMap::from([
        ("OPENAI_KEY".to_owned(), "sk-openai-upstream".to_owned()),
        ("ANTHROPIC_KEY".to_owned(), "sk-ant-upstream".to_owned()),
        ("GEMINI_KEY".to_owned(), "gemini-upstream-key".to_owned()),
        ("AWS_KEY_ID".to_owned(), FAKE_AWS_ACCESS_KEY_ID.to_owned()),
        (
            "AWS_SECRET".to_owned(),
            FAKE_AWS_SECRET_ACCESS_KEY.to_owned(),
        ),
        ("CLIENT_KEY".to_owned(), CLIENT_KEY.to_owned()),
    ]);
    let config = SwitchyardConfig::parse("conformance.yaml", &config, &environment)
        .expect("valid conformance config");
    let listeners = Listeners::bind(LOCAL_ANY_PORT, LOCAL_ANY_PORT)
        .await
        .expect("bind edge and admin");
    let address = listeners.service.local_addr().expect("edge address");
    let shutdown = CancellationToken::new();
    let server = switchyard_common::task::spawn_detached(
        "the gateway under test, aborted when the test ends",
        run_all_in_one(config, environment, None, listeners, shutdown.clone()),
    );

    // The script's first request is a stream the provider cuts off.
    openai.push_fault(Fault::DropMidStream { after_chunks: 3 });
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("python3")
            .arg(repository_root().join("tests/python/provider_conformance.py"))
            .env("SWITCHYARD_BASE_URL", format!("http://{address}/v1"))
            .env("SWITCHYARD_API_KEY", CLIENT_KEY)
            .output(),
    )
    .await
    .expect("the conformance script finishes")
    .expect("run python");
    shutdown.cancel();
    let _ = server.await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "conformance failed:\n{stdout}\n{stderr}"
    );
    for model in [
        "openai-model",
        "anthropic-model",
        "gemini-model",
        "bedrock-model",
    ] {
        assert!(
            stdout.contains(&format!("{model}: ok")),
            "{model} not checked:\n{stdout}"
        );
    }
    // Every provider was really called, in its own wire format.
    assert!(
        openai
            .requests()
            .iter()
            .any(|r| r.path == "/v1/chat/completions")
    );
    assert!(
        anthropic
            .requests()
            .iter()
            .any(|r| r.path == "/v1/messages")
    );
    assert!(
        gemini
            .requests()
            .iter()
            .any(|r| r.path.ends_with(":streamGenerateContent?alt=sse"))
    );
    assert!(
        bedrock
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/converse-stream"))
    );
}
