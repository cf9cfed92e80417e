//! Observability scenarios: the admin listener's `/metrics`, scraped and
//! parsed, moving as requests flow.

use std::time::Duration;

use serde_json::json;
use switchyard_test_support::{Fault, openai_error_body};

use crate::cluster::TestCluster;

/// One scrape, parsed: every sample with its labels.
#[derive(Debug)]
pub struct Scrape {
    samples: Vec<Sample>,
    text: String,
}

#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Scrape {
    /// Parses the Prometheus text format (no escapes in label values; the
    /// gateway's values are names and classes).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line
                    .rsplit_once(' ')
                    .unwrap_or_else(|| panic!("a sample line, got {line:?}"));
                let value: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("a number in {line:?}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => {
                        let inner = rest.strip_suffix('}').expect("closing brace");
                        let labels = inner
                            .split("\",")
                            .filter(|pair| !pair.is_empty())
                            .map(|pair| {
                                let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
                                (key.to_owned(), value.trim_end_matches('"').to_owned())
                            })
                            .collect();
                        (name.to_owned(), labels)
                    }
                    None => (series.to_owned(), Vec::new()),
                };
                Sample {
                    name,
                    labels,
                    value,
                }
            })
            .collect();
        Self {
            samples,
            text: text.to_owned(),
        }
    }

    /// The sum of every sample named `name` whose labels include all of
    /// `labels`; 0 when there is none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.iter().any(|(k, v)| k == key && v == value))
            })
            .map(|sample| sample.value)
            .sum()
    }

    /// Whether any sample is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|sample| sample.name == name)
    }

    /// The text as scraped, for failure messages.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Scrapes `role` until `done` holds for the scrape (the router records a
/// request when it settles, just after the client has its answer).
async fn scrape_until(cluster: &TestCluster, role: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = Scrape::parse(&cluster.scrape(role).await);
        if done(&scrape) || tokio::time::Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ask(model: &str, prompt: &str, stream: bool) -> serde_json::Value {
    json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}],
    })
}

/// A chat request with a key the gateway does not know: a 401.
async fn ask_with_a_bad_key(cluster: &TestCluster) {
    let refused = cluster
        .http
        .post(format!("{}/v1/chat/completions", cluster.base_url))
        .bearer_auth("sk-not-a-key")
        .json(&ask("gpt-test", "hi", false))
        .send()
        .await
        .expect("edge answers");
    assert_eq!(refused.status(), 401);
}

pub async fn metrics_move_as_requests_flow(cluster: &TestCluster) {
    let ok = [("route", "gpt-test"), ("status", "ok")];
    let unavailable = [("route", "gpt-test"), ("status", "upstream_unavailable")];
    // A process just started may not hold its first snapshot yet.
    let before = scrape_until(cluster, "router", |scrape| {
        scrape.sum("switchyard_snapshot_version", &[("role", "router")]) >= 1.0
    })
    .await;
    let edge_before = Scrape::parse(&cluster.scrape("edge").await);
    assert!(
        before.sum("switchyard_snapshot_version", &[("role", "router")]) >= 1.0,
        "{}",
        before.text()
    );
    assert_eq!(
        before.sum("switchyard_snapshot_watch_connected", &[("role", "router")]),
        1.0
    );
    let control_plane = Scrape::parse(&cluster.scrape("control-plane").await);
    assert_eq!(
        control_plane.sum("switchyard_config_version", &[]),
        before.sum("switchyard_snapshot_version", &[("role", "router")]),
        "the router holds the published version: {}",
        control_plane.text()
    );

    // Distinct prompts: the route caches, and each must go upstream.
    let prompt = format!("metrics {}", uuid::Uuid::now_v7());
    let response = cluster.chat(&ask("gpt-test", &prompt, false)).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("body");
    let response = cluster
        .chat(&ask("gpt-test", &format!("{prompt} streamed"), true))
        .await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("stream");
    cluster.upstream.push_fault(Fault::Status {
        status: 503,
        body: openai_error_body("The engine is overloaded.", "server_error", "overloaded"),
        headers: Vec::new(),
    });
    let response = cluster
        .chat(&ask("gpt-test", &format!("{prompt} failing"), false))
        .await;
    assert!(response.status().is_server_error(), "{}", response.status());
    ask_with_a_bad_key(cluster).await;

    let moved = |name: &str, labels: &[(&str, &str)], scrape: &Scrape| {
        scrape.sum(name, labels) - before.sum(name, labels)
    };
    let after = scrape_until(cluster, "router", |scrape| {
        moved("switchyard_requests_total", &ok, scrape) >= 2.0
            && moved("switchyard_requests_total", &unavailable, scrape) >= 1.0
    })
    .await;
    let text = after.text();
    assert_eq!(
        moved("switchyard_requests_total", &ok, &after),
        2.0,
        "{text}"
    );
    assert_eq!(
        moved("switchyard_requests_total", &unavailable, &after),
        1.0,
        "{text}"
    );
    let answered = [
        ("route", "gpt-test"),
        ("deployment", "gpt-test/fake-openai/gpt-4o-mini"),
        ("provider", "fake-openai"),
        ("model", "gpt-4o-mini"),
        ("status", "ok"),
    ];
    assert_eq!(
        moved("switchyard_requests_total", &answered, &after),
        2.0,
        "{text}"
    );
    assert_eq!(
        moved("switchyard_request_duration_seconds_count", &ok, &after),
        2.0,
        "{text}"
    );
    assert!(moved("switchyard_request_duration_seconds_sum", &ok, &after) > 0.0);
    assert_eq!(
        moved(
            "switchyard_time_to_first_token_seconds_count",
            &[("route", "gpt-test")],
            &after
        ),
        1.0,
        "only the stream has a first token: {text}"
    );
    assert_eq!(
        moved(
            "switchyard_upstream_attempts_total",
            &[
                ("route", "gpt-test"),
                ("reason", "first"),
                ("status", "upstream_unavailable")
            ],
            &after
        ),
        1.0,
        "{text}"
    );
    for kind in ["input", "output"] {
        assert!(
            moved(
                "switchyard_tokens_total",
                &[("provider", "fake-openai"), ("kind", kind)],
                &after
            ) > 0.0,
            "{kind} tokens: {text}"
        );
    }
    assert!(
        moved(
            "switchyard_cost_total",
            &[("model", "gpt-4o-mini"), ("currency", "USD")],
            &after
        ) > 0.0,
        "{text}"
    );
    assert_eq!(
        moved(
            "switchyard_cache_lookups_total",
            &[("route", "gpt-test"), ("kind", "exact"), ("result", "miss")],
            &after
        ),
        3.0,
        "{text}"
    );
    assert!(after.has("switchyard_usage_queue_depth"), "{text}");

    let edge = Scrape::parse(&cluster.scrape("edge").await);
    for class in ["authentication", "upstream_unavailable"] {
        let labels = [("class", class)];
        assert_eq!(
            edge.sum("switchyard_errors_total", &labels)
                - edge_before.sum("switchyard_errors_total", &labels),
            1.0,
            "{class}: {}",
            edge.text()
        );
    }
    assert!(!edge.text().contains("sk-not-a-key"));
}

/// The overhead a response reports, in milliseconds: three decimals.
pub fn overhead_header(response: &reqwest::Response) -> f64 {
    let text = response
        .headers()
        .get("x-switchyard-overhead-ms")
        .unwrap_or_else(|| panic!("an overhead header: {:?}", response.headers()))
        .to_str()
        .expect("ascii");
    let (whole, fraction) = text.split_once('.').expect("a decimal");
    assert!(
        !whole.is_empty() && fraction.len() == 3,
        "milliseconds to the microsecond: {text}"
    );
    text.parse().expect("a number")
}

/// The `data:` payloads of an SSE body, `[DONE]` left out.
fn stream_chunks(body: &str) -> Vec<serde_json::Value> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("chunk JSON"))
        .collect()
}

pub async fn the_gateway_overhead_is_reported_without_the_providers_time(cluster: &TestCluster) {
    let before = Scrape::parse(&cluster.scrape("edge").await);
    // A provider that takes 300 ms: the client waits that long, but the
    // gateway reports only its own share.
    cluster
        .upstream
        .push_fault(Fault::Delay(Duration::from_millis(300)));
    let prompt = format!("overhead {}", uuid::Uuid::now_v7());
    let started = std::time::Instant::now();
    let response = cluster.chat(&ask("gpt-test", &prompt, false)).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 200);
    let overhead = overhead_header(&response);
    assert!(waited >= Duration::from_millis(300));
    // The provider held the request at least 300 ms of the client's wait,
    // so the gateway's share is at most the rest (however loaded the
    // machine is; the header rounds down to the microsecond).
    let at_most = waited.as_secs_f64() * 1000.0 - 300.0;
    assert!(
        overhead <= at_most,
        "the provider's 300 ms are not the gateway's: {overhead} ms of {waited:?}"
    );

    // Streams carry it in their last chunk, with or without usage.
    for include_usage in [true, false] {
        let mut request = ask("gpt-test", &format!("{prompt} {include_usage}"), true);
        request["stream_options"] = json!({"include_usage": include_usage});
        let response = cluster.chat(&request).await;
        assert_eq!(response.status(), 200);
        let body = response.text().await.expect("stream");
        let chunks = stream_chunks(&body);
        let (last, earlier) = chunks.split_last().expect("chunks");
        assert!(
            last["x-switchyard-overhead-ms"]
                .as_f64()
                .is_some_and(|ms| ms >= 0.0),
            "{body}"
        );
        assert!(
            earlier
                .iter()
                .all(|chunk| chunk.get("x-switchyard-overhead-ms").is_none()),
            "{body}"
        );
        if include_usage {
            assert!(last["usage"].is_object(), "{body}");
        } else {
            assert_eq!(last["choices"][0]["finish_reason"], "stop", "{body}");
        }
    }

    let response = cluster
        .http
        .post(format!("{}/v1/embeddings", cluster.base_url))
        .bearer_auth(&cluster.api_key)
        .json(&json!({"model": "demo", "input": "hello"}))
        .send()
        .await
        .expect("edge answers");
    assert_eq!(response.status(), 200);
    overhead_header(&response);

    // Error answers carry it too: one the edge refused, one a provider did.
    let started = std::time::Instant::now();
    let refused = cluster
        .http
        .post(format!("{}/v1/chat/completions", cluster.base_url))
        .bearer_auth("sk-not-a-key")
        .json(&ask("gpt-test", &prompt, false))
        .send()
        .await
        .expect("edge answers");
    let waited = started.elapsed();
    assert_eq!(refused.status(), 401);
    assert!(overhead_header(&refused) <= waited.as_secs_f64() * 1000.0);
    cluster.upstream.push_fault(Fault::Status {
        status: 400,
        body: openai_error_body(
            "Invalid value for 'top_p'.",
            "invalid_request_error",
            "invalid_value",
        ),
        headers: Vec::new(),
    });
    let started = std::time::Instant::now();
    let failed = cluster
        .chat(&ask("gpt-test", &format!("{prompt} refused"), false))
        .await;
    let waited = started.elapsed();
    assert_eq!(failed.status(), 400);
    assert!(overhead_header(&failed) <= waited.as_secs_f64() * 1000.0);

    let after = Scrape::parse(&cluster.scrape("edge").await);
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert_eq!(
        moved(
            "switchyard_overhead_seconds_count",
            &[("operation", "chat")]
        ),
        1.0,
        "{}",
        after.text()
    );
    assert_eq!(
        moved(
            "switchyard_overhead_seconds_count",
            &[("operation", "embeddings")]
        ),
        1.0
    );
    assert_eq!(
        moved("switchyard_overhead_first_token_seconds_count", &[]),
        2.0
    );
    assert_eq!(
        moved("switchyard_overhead_chunk_gap_seconds_count", &[]),
        2.0
    );
    // The recorded overhead leaves the provider's 300 ms out too.
    let recorded = moved("switchyard_overhead_seconds_sum", &[("operation", "chat")]);
    assert!(recorded * 1000.0 <= at_most, "{recorded} s of {waited:?}");
}

/// Every series name a scrape declares (`# TYPE` lines), histograms with
/// their `_bucket`, `_sum` and `_count` series.
fn exported_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(declaration) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = declaration.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name.to_owned());
    }
    names
}

/// The `switchyard_…` series named in a dashboard or rule file.
fn named_series(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("switchyard_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

pub async fn dashboards_and_alerts_name_only_exported_series(cluster: &TestCluster) {
    // A family appears once it has a series: an answer of each kind and
    // an error make every one of today's appear.
    let prompt = format!("names {}", uuid::Uuid::now_v7());
    for stream in [false, true] {
        let response = cluster
            .chat(&ask("gpt-test", &format!("{prompt} {stream}"), stream))
            .await;
        assert_eq!(response.status(), 200);
        response.text().await.expect("body");
    }
    ask_with_a_bad_key(cluster).await;
    // A provider key refused upstream rests (the backup answers).
    cluster.upstream.revoke_key(crate::cluster::POOL_KEY_ALPHA);
    let response = cluster.chat(&ask("pooled", &prompt, false)).await;
    assert_eq!(response.status(), 200);
    // A deployment with a declared capacity shows it.
    let response = cluster.chat(&ask("single", &prompt, false)).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("body");
    // A deployment whose provider says its limit is used up rests.
    cluster.upstream.limit_requests(0, "1s");
    let response = cluster.chat(&ask("impatient", &prompt, false)).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("body");
    // The router records a request as it settles, just after the answer.
    scrape_until(cluster, "router", |scrape| {
        scrape.has("switchyard_time_to_first_token_seconds_count")
    })
    .await;
    let mut exported = std::collections::BTreeSet::new();
    for role in cluster.admin_urls.keys() {
        exported.extend(exported_names(&cluster.scrape(role).await));
    }
    let root = crate::python_sdk::repository_root();
    for file in [
        "deploy/grafana/switchyard.json",
        "deploy/prometheus/alerts.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("deploy file");
        let named = named_series(&text);
        assert!(named.len() >= 5, "{file} names series: {named:?}");
        let unknown: Vec<_> = named.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} names series the gateway does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
}

/// The alert rules load in Prometheus and their unit tests pass.
#[tokio::test]
async fn alert_rules_pass_promtool() {
    let directory = crate::python_sdk::repository_root().join("deploy/prometheus");
    for arguments in [
        ["check", "rules", "alerts.yaml"],
        ["test", "rules", "alerts.test.yaml"],
    ] {
        let output = tokio::process::Command::new("promtool")
            .args(arguments)
            .current_dir(&directory)
            .output()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "promtool is missing ({error}): install Debian's `prometheus` package, \
                     or run `bash .ci/services.sh`"
                )
            });
        assert!(
            output.status.success(),
            "promtool {}: {}{}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Runs requests carrying a canary string in every place a prompt can be
/// (a whole answer, a stream, a provider error that echoes it, a malformed
/// body, a refused key) against real processes at the default log level,
/// then searches every process's log for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_prompt_text_reaches_the_logs() {
    use switchyard_test_support::{FakeOpenAi, launch::Launch};

    let canary = format!("canary-{}", uuid::Uuid::now_v7().simple());
    let upstream = FakeOpenAi::start().await;
    let directory = tempfile::tempdir().expect("temporary directory");
    let config = format!(
        r#"
control_plane: {{database_url: "sqlite://{dir}/control.db"}}
ledger: {{sqlite_url: "sqlite://{dir}/ledger.db"}}
router: {{usage_flush_interval: 20ms}}
providers:
  - {{name: fake-openai, kind: openai, base_url: "{url}", api_key: {{env: UPSTREAM_KEY}}}}
models:
  - name: gpt-test
    targets: [{{provider: fake-openai, model: gpt-4o-mini}}]
    pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}
teams: [{{id: canary-team}}]
keys:
  - {{id: canary-key, team: canary-team, secret: {{env: CLIENT_KEY}}}}
"#,
        dir = directory.path().display(),
        url = upstream.base_url(),
    );
    let config_path = directory.path().join("switchyard.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let client_key = format!("sk-client-{}", uuid::Uuid::now_v7().simple());
    let upstream_key = format!("sk-upstream-{}", uuid::Uuid::now_v7().simple());
    let environment = std::collections::BTreeMap::from([
        ("UPSTREAM_KEY".to_owned(), upstream_key.clone()),
        ("CLIENT_KEY".to_owned(), client_key.clone()),
        // The default level, whatever the test runner's environment says.
        ("RUST_LOG".to_owned(), "info".to_owned()),
        // The serve process's admin listener on any free port.
        (
            "SWITCHYARD__ADMIN__LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
    ]);
    let http = reqwest::Client::new();
    for distributed in [false, true] {
        let logs = directory
            .path()
            .join(if distributed { "distributed" } else { "serve" });
        std::fs::create_dir_all(&logs).expect("log directory");
        let launch = Launch {
            binary: std::path::Path::new(env!("CARGO_BIN_EXE_switchyard")),
            config: &config_path,
            environment: &environment,
            cpus: None,
            log_directory: Some(&logs),
        };
        let processes = if distributed {
            launch.distributed().await
        } else {
            launch.all_in_one().await
        }
        .expect("the gateway starts");
        let url = format!("http://{}/v1/chat/completions", processes.edge_address);
        let chat = |body: serde_json::Value, key: &str| {
            http.post(&url).bearer_auth(key).json(&body).send()
        };
        let prompt = format!("Please repeat {canary} back to me.");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        // The first answer also waits for the gateway's first snapshot.
        loop {
            let response = chat(ask("gpt-test", &prompt, false), &client_key)
                .await
                .expect("edge answers");
            if response.status() == 200 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                response.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let streamed = chat(ask("gpt-test", &prompt, true), &client_key)
            .await
            .expect("edge answers");
        assert_eq!(streamed.status(), 200);
        streamed.text().await.expect("stream");
        upstream.push_fault(Fault::Status {
            status: 400,
            body: openai_error_body(
                &format!("Invalid prompt: '{canary}' is not allowed."),
                "invalid_request_error",
                "invalid_prompt",
            ),
            headers: Vec::new(),
        });
        let refused_upstream = chat(
            ask("gpt-test", &format!("{prompt} again"), false),
            &client_key,
        )
        .await
        .expect("edge answers");
        assert_eq!(refused_upstream.status(), 400);
        let malformed = http
            .post(&url)
            .bearer_auth(&client_key)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"model": "gpt-test", "messages": [{{"role": "user", "content": "{canary}"#
            ))
            .send()
            .await
            .expect("edge answers");
        assert_eq!(malformed.status(), 400);
        let bad_key = chat(ask("gpt-test", &prompt, false), &format!("sk-{canary}"))
            .await
            .expect("edge answers");
        assert_eq!(bad_key.status(), 401);
        // The log thread writes within milliseconds; then stop the processes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(processes);

        let mut text = String::new();
        for entry in std::fs::read_dir(&logs).expect("logs") {
            let path = entry.expect("log file").path();
            text.push_str(&std::fs::read_to_string(&path).expect("log text"));
        }
        // The logs were written: every request left its line.
        let request_lines = text
            .lines()
            .filter(|line| line.contains(r#""request_id""#))
            .count();
        assert!(request_lines >= 5, "distributed: {distributed}\n{text}");
        for secret in [&canary, &client_key, &upstream_key] {
            assert!(
                !text.contains(secret.as_str()),
                "distributed: {distributed}: a log line holds {secret}:\n{text}"
            );
        }
    }
}
