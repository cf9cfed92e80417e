//! The official `openai` Python SDK against `switchyard serve` started from
//! the example config, as a user would run it.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

/// The repository's root directory.
pub fn repository_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Whether `python3` can import the openai SDK; fails, naming the command
/// that installs it, when not (a test never passes without having run).
pub fn openai_sdk_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import openai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        available,
        "python3 cannot import the openai SDK; install it with \
         `python3 -m pip install -r tests/python/requirements.txt`"
    );
    available
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_talks_to_switchyard_serve_with_the_example_config() {
    if !openai_sdk_available() {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let root = repository_root();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(directory.path())
        .arg("--config")
        .arg(root.join("config/switchyard.yaml"))
        .arg("serve")
        .env("SWITCHYARD__EDGE__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchyard serve");
    let stdout = gateway.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("switchyard starts in time")
    .expect("read stdout")
    .expect("startup line");
    let announced: serde_json::Value = serde_json::from_str(&line).expect("startup JSON");
    let address = announced["address"].as_str().expect("address");

    let output = Command::new("python3")
        .arg(root.join("tests/python/openai_sdk_check.py"))
        .env("SWITCHYARD_BASE_URL", format!("http://{address}/v1"))
        .env("SWITCHYARD_API_KEY", "sk-switchyard-demo")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("non-streaming ok") && stdout.contains("streaming ok"),
        "{stdout}"
    );
}
