//! Traces across every service, received by an OTLP/gRPC collector from
//! real processes: `switchyard serve`, and one process per service.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::json;
use switchyard_test_support::{
    FakeOpenAi, Fault,
    collector::{CollectedSpan, Collector},
    launch::{Launch, Processes},
    openai_error_body,
};

/// How long the test waits for a trace's spans to arrive.
const PATIENCE: Duration = Duration::from_secs(10);

/// A client `traceparent` in a trace of its own; `sampled` sets its flag.
fn client_traceparent(sampled: bool) -> (String, String, String) {
    let trace_id = uuid::Uuid::now_v7().simple().to_string();
    let span_id = trace_id[..16].to_owned();
    let flags = if sampled { "01" } else { "00" };
    (
        format!("00-{trace_id}-{span_id}-{flags}"),
        trace_id,
        span_id,
    )
}

fn unix_nanos(time: SystemTime) -> u64 {
    u64::try_from(
        time.duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos(),
    )
    .expect("fits")
}

/// The one span named `name` (by its prefix), with what there was.
fn one<'a>(spans: &'a [CollectedSpan], name: &str) -> &'a CollectedSpan {
    let found: Vec<&CollectedSpan> = spans.iter().filter(|s| s.name.starts_with(name)).collect();
    assert_eq!(found.len(), 1, "one `{name}` span in {spans:#?}");
    found[0]
}

fn children<'a>(spans: &'a [CollectedSpan], parent: &CollectedSpan) -> Vec<&'a CollectedSpan> {
    spans
        .iter()
        .filter(|span| span.parent_span_id == parent.span_id)
        .collect()
}

struct Gateway {
    processes: Processes,
    http: reqwest::Client,
    key: String,
}

impl Gateway {
    async fn chat(&self, prompt: &str, stream: bool, traceparent: &str) -> reqwest::Response {
        self.http
            .post(format!(
                "http://{}/v1/chat/completions",
                self.processes.edge_address
            ))
            .bearer_auth(&self.key)
            .header("traceparent", traceparent)
            .header("tracestate", "client=1")
            .json(&json!({
                "model": "gpt-test",
                "stream": stream,
                "stream_options": if stream { json!({"include_usage": true}) } else { json!(null) },
                "messages": [{"role": "user", "content": prompt}],
            }))
            .send()
            .await
            .expect("the edge answers")
    }
}

/// One request crossing every service gives one trace, under the client's
/// span: edge → router → cache and attempts → adapters, with the GenAI
/// attributes; a fallback shows two sibling attempts; a stream's spans end
/// after its last chunk; at a ratio of 0 a failed request still exports
/// its failed spans and a good one exports none; no span holds the prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_crosses_every_service_in_both_modes() {
    let collector = Collector::start().await;
    let upstream = FakeOpenAi::start().await;
    let directory = tempfile::tempdir().expect("temporary directory");
    let config = format!(
        r#"
control_plane: {{database_url: "sqlite://{dir}/control.db"}}
ledger: {{sqlite_url: "sqlite://{dir}/ledger.db"}}
router: {{usage_flush_interval: 20ms}}
telemetry: {{otlp_endpoint: "{collector}", trace_sample_ratio: 0.0, trace_batch_delay: 50ms}}
providers:
  - {{name: primary, kind: openai, base_url: "{url}", api_key: {{env: UPSTREAM_KEY}}}}
  - {{name: backup, kind: openai, base_url: "{url}", api_key: {{env: UPSTREAM_KEY}}}}
models:
  - name: gpt-test
    targets: [{{provider: primary, model: gpt-4o-mini}}, {{provider: backup, model: gpt-4o-mini}}]
    cache_ttl: 1m
    pricing: {{input_per_million: "2.50", output_per_million: "10.00"}}
teams: [{{id: trace-team}}]
keys:
  - {{id: trace-key, team: trace-team, secret: {{env: CLIENT_KEY}}}}
"#,
        dir = directory.path().display(),
        url = upstream.base_url(),
        collector = collector.endpoint(),
    );
    let config_path = directory.path().join("switchyard.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let key = format!("sk-client-{}", uuid::Uuid::now_v7().simple());
    let environment = BTreeMap::from([
        ("UPSTREAM_KEY".to_owned(), "sk-upstream".to_owned()),
        ("CLIENT_KEY".to_owned(), key.clone()),
        (
            "SWITCHYARD__ADMIN__LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
    ]);
    for distributed in [false, true] {
        let launch = Launch {
            binary: std::path::Path::new(env!("CARGO_BIN_EXE_switchyard")),
            config: &config_path,
            environment: &environment,
            cpus: None,
            log_directory: None,
        };
        let processes = if distributed {
            launch.distributed().await
        } else {
            launch.all_in_one().await
        }
        .expect("the gateway starts");
        let gateway = Gateway {
            processes,
            http: reqwest::Client::new(),
            key: key.clone(),
        };
        let canary = format!("canary-{}", uuid::Uuid::now_v7().simple());
        // The first answer also waits for the gateway's first snapshot.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while gateway
            .chat(
                &format!("warm up {canary}"),
                false,
                &client_traceparent(false).0,
            )
            .await
            .status()
            != 200
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the gateway never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        if distributed {
            every_grpc_role_answers_a_health_probe(&gateway.processes).await;
        }
        a_whole_answer_is_one_trace(&gateway, &collector, &canary, distributed).await;
        a_fallback_shows_two_attempts(&gateway, &upstream, &collector, &canary).await;
        a_stream_span_ends_after_its_last_chunk(&gateway, &upstream, &collector, &canary).await;
        unsampled_failures_are_still_exported(&gateway, &upstream, &collector, &canary).await;

        for span in collector.spans() {
            for value in span.attributes.values() {
                assert!(
                    !value.to_string().contains(&canary),
                    "a span holds the prompt: {span:#?}"
                );
            }
        }
        drop(gateway);
    }
}

async fn a_whole_answer_is_one_trace(
    gateway: &Gateway,
    collector: &Collector,
    canary: &str,
    distributed: bool,
) {
    let (traceparent, trace_id, client_span) = client_traceparent(true);
    let response = gateway
        .chat(&format!("whole {canary}"), false, &traceparent)
        .await;
    assert_eq!(response.status(), 200);
    let spans = collector
        .trace(&trace_id, PATIENCE, |spans| {
            ["POST", "route", "attempt", "chat", "cache lookup"]
                .iter()
                .all(|name| spans.iter().any(|s| s.name.starts_with(name)))
        })
        .await;

    let edge = one(&spans, "POST /v1/chat/completions");
    assert_eq!(
        edge.parent_span_id, client_span,
        "the client's span is the parent"
    );
    assert_eq!(edge.kind, 2, "server");
    assert_eq!(edge.integer("http.response.status_code"), Some(200));
    assert_eq!(edge.text("gen_ai.request.model"), Some("gpt-test"));
    let router = one(&spans, "route chat");
    assert_eq!(router.parent_span_id, edge.span_id);
    assert_eq!(router.text("switchyard.route"), Some("gpt-test"));
    assert_eq!(router.text("gen_ai.response.model"), Some("gpt-4o-mini"));
    assert!(
        router
            .text("switchyard.cost")
            .is_some_and(|cost| cost.ends_with(" USD"))
    );
    assert_eq!(
        router.attributes.get("switchyard.cache.hit"),
        Some(&json!(false))
    );
    let lookup = one(&spans, "cache lookup");
    assert_eq!(lookup.parent_span_id, router.span_id);
    let attempt = one(&spans, "attempt");
    assert_eq!(attempt.parent_span_id, router.span_id);
    assert_eq!(attempt.text("switchyard.attempt.reason"), Some("first"));
    let provider = one(&spans, "chat gpt-4o-mini");
    assert_eq!(provider.parent_span_id, attempt.span_id);
    assert_eq!(provider.kind, 3, "client");
    assert_eq!(provider.text("gen_ai.system"), Some("openai"));
    assert_eq!(provider.text("gen_ai.operation.name"), Some("chat"));
    assert_eq!(provider.text("gen_ai.request.model"), Some("gpt-4o-mini"));
    assert!(
        provider
            .text("gen_ai.response.model")
            .is_some_and(|m| m.starts_with("gpt-4o-mini"))
    );
    assert!(
        provider
            .integer("gen_ai.usage.input_tokens")
            .is_some_and(|n| n > 0)
    );
    assert!(
        provider
            .integer("gen_ai.usage.output_tokens")
            .is_some_and(|n| n > 0)
    );
    assert_eq!(
        provider.attributes.get("gen_ai.response.finish_reasons"),
        Some(&json!(["stop"]))
    );
    assert!(spans.iter().all(|span| !span.failed), "{spans:#?}");
    let services: Vec<(&str, &str)> = [edge, router, lookup, provider]
        .iter()
        .map(|span| (span.name.as_str(), span.service.as_str()))
        .collect();
    let expected = if distributed {
        [
            "switchyard-edge",
            "switchyard-router",
            "switchyard-cache",
            "switchyard-adapter",
        ]
    } else {
        ["switchyard"; 4]
    };
    assert_eq!(
        services
            .iter()
            .map(|(_, service)| *service)
            .collect::<Vec<_>>(),
        expected,
        "{services:?}"
    );
}

async fn a_fallback_shows_two_attempts(
    gateway: &Gateway,
    upstream: &FakeOpenAi,
    collector: &Collector,
    canary: &str,
) {
    upstream.push_fault(unavailable());
    let (traceparent, trace_id, _) = client_traceparent(true);
    let response = gateway
        .chat(&format!("fallback {canary}"), false, &traceparent)
        .await;
    assert_eq!(response.status(), 200);
    let spans = collector
        .trace(&trace_id, PATIENCE, |spans| {
            spans.iter().filter(|s| s.name.starts_with("chat ")).count() == 2
                && spans.iter().any(|s| s.name.starts_with("POST"))
        })
        .await;
    let router = one(&spans, "route chat");
    let mut attempts: Vec<&CollectedSpan> = children(&spans, router)
        .into_iter()
        .filter(|span| span.name.starts_with("attempt"))
        .collect();
    attempts.sort_by_key(|span| span.integer("switchyard.attempt.position"));
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    assert_eq!(attempts[0].text("switchyard.provider"), Some("primary"));
    assert!(attempts[0].failed);
    assert_eq!(attempts[0].text("error.type"), Some("upstream_unavailable"));
    assert_eq!(attempts[1].text("switchyard.provider"), Some("backup"));
    assert_eq!(
        attempts[1].text("switchyard.attempt.reason"),
        Some("fallback")
    );
    assert!(!attempts[1].failed);
    for attempt in attempts {
        assert_eq!(children(&spans, attempt).len(), 1, "one provider call each");
    }
    assert_eq!(router.integer("switchyard.attempts"), Some(2));
    assert_eq!(router.text("switchyard.provider"), Some("backup"));
}

async fn a_stream_span_ends_after_its_last_chunk(
    gateway: &Gateway,
    upstream: &FakeOpenAi,
    collector: &Collector,
    canary: &str,
) {
    // One byte at a time: the stream lasts long after its first chunk.
    upstream.push_fault(Fault::Trickle(Duration::from_millis(1)));
    let (traceparent, trace_id, _) = client_traceparent(true);
    let mut response = gateway
        .chat(&format!("stream {canary}"), true, &traceparent)
        .await;
    assert_eq!(response.status(), 200);
    let mut first = None;
    while let Some(_bytes) = response.chunk().await.expect("the stream reads") {
        first.get_or_insert_with(SystemTime::now);
    }
    let last = unix_nanos(SystemTime::now());
    let first = unix_nanos(first.expect("a chunk"));
    let spans = collector
        .trace(&trace_id, PATIENCE, |spans| {
            ["POST", "route", "chat"]
                .iter()
                .all(|name| spans.iter().any(|s| s.name.starts_with(name)))
        })
        .await;
    let halfway = first + (last - first) / 2;
    for name in ["POST", "route chat", "chat gpt-4o-mini"] {
        let span = one(&spans, name);
        assert!(
            span.end_unix_nanos > halfway,
            "`{name}` ended {} ms before the stream's last chunk",
            (last - span.end_unix_nanos) / 1_000_000
        );
    }
    let provider = one(&spans, "chat gpt-4o-mini");
    assert!(
        provider
            .integer("gen_ai.usage.output_tokens")
            .is_some_and(|n| n > 0)
    );
}

async fn unsampled_failures_are_still_exported(
    gateway: &Gateway,
    upstream: &FakeOpenAi,
    collector: &Collector,
    canary: &str,
) {
    let (traceparent, quiet_trace, _) = client_traceparent(false);
    let response = gateway
        .chat(&format!("quiet {canary}"), false, &traceparent)
        .await;
    assert_eq!(response.status(), 200);

    upstream.push_fault(unavailable());
    upstream.push_fault(unavailable());
    let (traceparent, trace_id, client_span) = client_traceparent(false);
    let response = gateway
        .chat(&format!("failing {canary}"), false, &traceparent)
        .await;
    assert_eq!(response.status(), 502);
    let spans = collector
        .trace(&trace_id, PATIENCE, |spans| {
            spans
                .iter()
                .filter(|s| s.name.starts_with("attempt"))
                .count()
                == 2
                && ["POST", "route"]
                    .iter()
                    .all(|name| spans.iter().any(|s| s.name.starts_with(name)))
        })
        .await;
    let edge = one(&spans, "POST");
    assert_eq!(edge.parent_span_id, client_span);
    assert!(edge.failed);
    assert_eq!(edge.text("error.type"), Some("upstream_unavailable"));
    let router = one(&spans, "route chat");
    assert!(router.failed && router.parent_span_id == edge.span_id);
    let attempts = children(&spans, router);
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    assert!(attempts.iter().all(|attempt| attempt.failed));
    assert!(
        spans.iter().all(|span| span.failed),
        "only failed spans: {spans:#?}"
    );
    // The good request's spans went nowhere, though it came first.
    assert!(
        collector
            .spans()
            .iter()
            .all(|span| span.trace_id != quiet_trace),
        "an unsampled request that succeeded was exported"
    );
}

fn unavailable() -> Fault {
    Fault::Status {
        status: 503,
        body: openai_error_body("The server is overloaded.", "server_error", "overloaded"),
        headers: Vec::new(),
    }
}

/// Kubernetes probes a gRPC role with the standard health service and no
/// credential; every role answers SERVING.
async fn every_grpc_role_answers_a_health_probe(processes: &Processes) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let roles: Vec<_> = processes
        .addresses
        .iter()
        .filter(|(role, _)| role.as_str() != "edge")
        .collect();
    assert!(roles.len() >= 5, "{roles:?}");
    for (role, address) in roles {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .expect("address")
            .connect()
            .await
            .unwrap_or_else(|error| panic!("{role}: {error}"));
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .unwrap_or_else(|status| panic!("{role}: {status:?}"))
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{role}");
    }
}
