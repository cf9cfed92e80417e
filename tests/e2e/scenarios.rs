//! The scenarios, each run against every mode and backend set.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::{Fault, openai_error_body};

pub use crate::control::{
    a_provider_key_stored_with_ctl_is_used_upstream_and_never_shown,
    a_saved_config_file_change_applies_within_a_second_and_a_bad_one_is_refused,
    ctl_creates_a_key_sets_a_budget_and_revokes_the_key_within_a_second,
    export_applies_back_without_a_diff_and_changes_apply_atomically,
    the_admin_listener_serves_the_admin_api_with_reflection,
};
pub use crate::hot_reload::fifty_config_changes_under_load_fail_no_request_and_split_none;
pub use crate::money::{
    a_stream_cut_short_is_charged_for_what_was_streamed, a_streams_usage_carries_its_cost,
    a_whole_answer_carries_its_exact_cost_and_tokens,
};
pub use crate::observability::{
    dashboards_and_alerts_name_only_exported_series, metrics_move_as_requests_flow,
    the_gateway_overhead_is_reported_without_the_providers_time,
};
pub use crate::routing::{
    a_deployment_at_its_concurrency_sends_the_next_request_elsewhere,
    a_deployment_over_the_routes_cost_ceiling_is_never_called,
    a_deployment_slower_than_the_routes_slo_is_demoted_behind_the_next,
    a_deployment_whose_provider_limit_is_used_up_rests_until_the_reset,
    a_deployment_with_probes_is_asked_without_traffic_and_counted,
    a_feature_a_provider_cannot_express_skips_it_without_a_call,
    a_first_token_later_than_the_routes_timeout_falls_back_and_one_in_time_is_served,
    a_keys_tier_picks_its_route_and_its_team_bounds_its_models,
    a_model_the_provider_no_longer_knows_goes_to_its_successor,
    a_provider_account_at_its_concurrency_bounds_all_its_deployments,
    a_retry_in_place_waits_the_providers_retry_after,
    a_slow_first_token_is_hedged_to_the_next_deployment,
    a_stream_cut_after_its_first_token_is_never_sent_elsewhere,
    an_open_breaker_keeps_requests_off_a_failing_deployment,
    deprecation_is_announced_and_a_sunset_shifts_to_the_successor,
    rules_send_requests_to_the_route_their_features_ask_for,
    shadow_traffic_is_recorded_with_the_request_and_never_returned,
    with_every_deployment_hanging_the_client_gets_a_timeout_within_the_routes_bound,
};
use crate::{
    cluster::{Backends, TestCluster, UPSTREAM_KEY},
    ledger::wait_for_usage_rows,
};

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello there"}
    ]})
}

async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got: {text}"))
}

/// Splits an SSE body into its `data:` payloads.
pub(crate) fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("SSE data event, got: {event:?}"))
                .to_owned()
        })
        .collect()
}

fn assert_openai_error(body: &Value, kind: &str) {
    let error = &body["error"];
    assert_eq!(error["type"], kind, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
}

pub async fn non_streaming_completion(cluster: &TestCluster) {
    let response = cluster.chat(&hello("gpt-test")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-provider"], "fake-openai");
    assert_eq!(response.headers()["x-switchyard-cache"], "miss");
    assert!(response.headers().contains_key("x-request-id"));
    let body = json_body(response).await;
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello there"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // Words: "You are terse." (3) + "hello there" (2); reply "Echo: hello there" (3).
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(body["usage"]["total_tokens"], 8);

    let requests = cluster.upstream.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.body["messages"], hello("gpt-test")["messages"]);
}

pub async fn streaming_completion_with_usage(cluster: &TestCluster) {
    let mut request = hello("gpt-test");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = cluster.chat(&request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.expect("stream body");
    let events = sse_data(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).expect("chunk JSON"))
        .collect();
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk")
    );
    let ids: std::collections::HashSet<_> =
        chunks.iter().map(|chunk| chunk["id"].clone()).collect();
    assert_eq!(ids.len(), 1, "one id per stream");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Echo: hello there");
    assert!(chunks.len() >= 4, "streamed in pieces: {body}");
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["stop"]);
    let usage_chunk = chunks.last().expect("usage chunk");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["total_tokens"], 8);
    // Chunks before the usage chunk carry `"usage": null`, as OpenAI's do.
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|chunk| chunk["usage"].is_null())
    );

    let sent = &cluster.upstream.requests()[0];
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
}

pub async fn usage_event_lands_in_the_ledger(cluster: &TestCluster) {
    let response = cluster.chat(&hello("gpt-test")).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let mut streamed = hello("gpt-test");
    streamed["stream"] = json!(true);
    streamed["messages"][1]["content"] = json!("a different question");
    let response = cluster.chat(&streamed).await;
    assert_eq!(response.status(), 200);
    let _ = response.text().await.expect("drain stream");

    let rows = wait_for_usage_rows(cluster, 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let first = &rows[0];
    assert_eq!(first.request_id, request_id);
    assert_eq!(first.key_id, "test-key");
    assert_eq!(first.team_id, cluster.team);
    assert_eq!(first.model, "gpt-test");
    assert_eq!(first.provider, "fake-openai");
    assert_eq!(first.upstream_model, "gpt-4o-mini");
    assert_eq!(
        (
            first.prompt_tokens,
            first.completion_tokens,
            first.total_tokens
        ),
        (5, 3, 8)
    );
    // 5 × $2.50 + 3 × $10.00 per million tokens = 12,500 + 30,000 nano-dollars.
    assert_eq!(first.cost_nanos, 42_500);
    assert_eq!(first.route_id, "gpt-test");
    assert_eq!(first.deployment_id, "gpt-test/fake-openai/gpt-4o-mini");
    assert!(first.snapshot_version >= 1);
    assert_eq!(first.currency, "USD");
    assert_eq!((first.cache_hit, first.stream), (0, 0));
    assert_eq!(first.error_class, "");
    let second = &rows[1];
    assert_eq!(second.stream, 1);
    // Usage of a stream is recorded even though the client did not ask for it.
    assert_eq!((second.prompt_tokens, second.completion_tokens), (6, 4));
}

pub async fn repeat_request_is_served_from_the_cache(cluster: &TestCluster) {
    let first = cluster.chat(&hello("gpt-test")).await;
    assert_eq!(first.headers()["x-switchyard-cache"], "miss");
    let first = json_body(first).await;
    // The store happens after the response; wait until it is visible.
    // Asks sent before it is visible are misses and go upstream.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (second, upstream_calls) = loop {
        let mut streamed = hello("gpt-test");
        streamed["stream"] = json!(false);
        let upstream_calls = cluster.upstream.requests().len();
        let response = cluster.chat(&streamed).await;
        if response.headers()["x-switchyard-cache"] == "hit" {
            break (response, upstream_calls);
        }
        assert!(tokio::time::Instant::now() < deadline, "no cache hit");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(second.headers()["x-switchyard-provider"], "cache");
    let second = json_body(second).await;
    assert_eq!(second["choices"], first["choices"]);
    assert_eq!(second["usage"], first["usage"]);
    assert_ne!(second["id"], first["id"], "each response has its own id");
    assert_eq!(
        cluster.upstream.requests().len(),
        upstream_calls,
        "served without the upstream"
    );

    // A streamed ask of the same question is a hit too.
    let mut streamed = hello("gpt-test");
    streamed["stream"] = json!(true);
    let response = cluster.chat(&streamed).await;
    assert_eq!(response.headers()["x-switchyard-cache"], "hit");
    let body = response.text().await.expect("body");
    assert!(body.contains("Echo: hello there") && body.ends_with("data: [DONE]\n\n"));
    assert_eq!(cluster.upstream.requests().len(), upstream_calls);

    // Cache-Control: no-cache goes upstream.
    let response = cluster
        .http
        .post(format!("{}/v1/chat/completions", cluster.base_url))
        .bearer_auth(&cluster.api_key)
        .header("cache-control", "no-cache")
        .json(&hello("gpt-test"))
        .send()
        .await
        .expect("edge answers");
    assert_eq!(response.headers()["x-switchyard-cache"], "miss");
    assert_eq!(cluster.upstream.requests().len(), upstream_calls + 1);

    if cluster.backends == Backends::Production {
        let client = redis::Client::open(crate::backends::redis_url()).expect("redis url");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("switchyard:cache:v1:team:{}:*", cluster.team))
            .query_async(&mut connection)
            .await
            .expect("KEYS");
        assert_eq!(keys.len(), 1, "the hit was stored in Redis: {keys:?}");
    }
    let rows = wait_for_usage_rows(cluster, 4).await;
    let hits: Vec<_> = rows.iter().filter(|row| row.cache_hit == 1).collect();
    assert!(!hits.is_empty());
    assert!(
        hits.iter()
            .all(|row| row.cost_nanos == 0 && row.provider.is_empty())
    );
}

/// Sends a good request and waits for its usage row, proving that nothing
/// before it left a row.
async fn assert_only_one_usage_row_after_a_good_request(cluster: &TestCluster) {
    let response = cluster.chat(&hello("demo")).await;
    assert_eq!(response.status(), 200);
    let rows = wait_for_usage_rows(cluster, 1).await;
    assert_eq!(rows.len(), 1, "rejected requests left usage rows: {rows:?}");
    assert_eq!(rows[0].model, "demo");
}

pub async fn an_answer_over_the_cache_limit_is_answered_but_not_cached(cluster: &TestCluster) {
    // The fake echoes the prompt: an answer well over the router's limit
    // on what it keeps for the cache.
    let words = crate::cluster::MAX_CACHED_ANSWER_BYTES / 2;
    let long = json!({"model": "gpt-test", "stream": true, "messages": [
        {"role": "user", "content": "word ".repeat(words)}
    ]});
    let first = cluster.chat(&long).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-switchyard-cache"], "miss");
    let first = first.text().await.expect("the whole stream");
    assert!(first.ends_with("data: [DONE]\n\n"), "answered in full");

    // A short answer asked after it is cached: the store pipeline has run.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let short = hello("gpt-test");
    while cluster.chat(&short).await.headers()["x-switchyard-cache"] != "hit" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the short answer is cached"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = cluster.upstream.requests().len();
    let again = cluster.chat(&long).await;
    assert_eq!(again.headers()["x-switchyard-cache"], "miss");
    let again = again.text().await.expect("the whole stream");
    assert!(again.ends_with("data: [DONE]\n\n"), "answered in full");
    assert_eq!(
        cluster.upstream.requests().len(),
        calls + 1,
        "went upstream again"
    );
}

pub async fn bad_key_is_rejected_without_usage(cluster: &TestCluster) {
    let url = format!("{}/v1/chat/completions", cluster.base_url);
    let wrong = cluster
        .http
        .post(&url)
        .bearer_auth("sk-not-a-key")
        .json(&hello("gpt-test"))
        .send()
        .await
        .expect("edge answers");
    assert_eq!(wrong.status(), 401);
    assert_openai_error(&json_body(wrong).await, "authentication_error");
    let missing = cluster
        .http
        .post(&url)
        .json(&hello("gpt-test"))
        .send()
        .await
        .expect("edge answers");
    assert_eq!(missing.status(), 401);
    assert_openai_error(&json_body(missing).await, "authentication_error");
    assert!(cluster.upstream.requests().is_empty());
    assert_only_one_usage_row_after_a_good_request(cluster).await;
}

pub async fn unknown_model_is_not_found_without_usage(cluster: &TestCluster) {
    let response = cluster.chat(&hello("no-such-model")).await;
    assert_eq!(response.status(), 404);
    let body = json_body(response).await;
    assert_openai_error(&body, "invalid_request_error");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-model"))
    );
    // A model the key may not use is refused the same way, so a key
    // cannot probe the catalogue.
    let response = cluster.chat(&hello("forbidden")).await;
    assert_eq!(response.status(), 404);
    let forbidden = json_body(response).await;
    assert_eq!(forbidden["error"]["code"], "model_not_found");
    assert_eq!(
        forbidden["error"]["message"]
            .as_str()
            .map(|m| m.replace("forbidden", "no-such-model")),
        body["error"]["message"].as_str().map(str::to_owned)
    );
    assert_only_one_usage_row_after_a_good_request(cluster).await;
}

pub async fn malformed_json_is_a_clear_400(cluster: &TestCluster) {
    let url = format!("{}/v1/chat/completions", cluster.base_url);
    let cases: [(&str, &str); 5] = [
        (r#"{"model": "gpt-test", "messages": ["#, "parse"),
        (
            r#"{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}xyz"#,
            "parse",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}]}"#,
            "model",
        ),
        (r#"{"model": "gpt-test"}"#, "messages"),
        (
            r#"{"model": "gpt-test", "messages": [{"role": "user", "content": 42}]}"#,
            "messages[0]",
        ),
    ];
    for (body, mentioned) in cases {
        let response = cluster
            .http
            .post(&url)
            .bearer_auth(&cluster.api_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("edge answers");
        assert_eq!(response.status(), 400, "{body}");
        let error = json_body(response).await;
        assert_openai_error(&error, "invalid_request_error");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(mentioned), "{body} -> {message}");
    }
    assert!(cluster.upstream.requests().is_empty());
    assert_only_one_usage_row_after_a_good_request(cluster).await;
}

pub async fn every_error_carries_its_request_id(cluster: &TestCluster) {
    let chat = format!("{}/v1/chat/completions", cluster.base_url);
    let good = hello("gpt-test").to_string();
    let requests = [
        // No key: 401.
        cluster.http.post(&chat).body(good.clone()),
        // Bad JSON: 400.
        cluster
            .http
            .post(&chat)
            .bearer_auth(&cluster.api_key)
            .body("{"),
        // Unknown model: 404 from the router.
        cluster
            .http
            .post(&chat)
            .bearer_auth(&cluster.api_key)
            .body(hello("no-such-model").to_string()),
        // Unknown route and wrong method: the edge's fallbacks.
        cluster.http.get(format!("{}/v1/nothing", cluster.base_url)),
        cluster.http.get(&chat),
        // A refused upstream call: 429 through the router.
        cluster
            .http
            .post(&chat)
            .bearer_auth(&cluster.api_key)
            .body(good.clone()),
    ];
    cluster.upstream.push_fault(Fault::Status {
        status: 429,
        body: openai_error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
        headers: Vec::new(),
    });
    let mut seen = std::collections::HashSet::new();
    for request in requests {
        let response = request
            .header("content-type", "application/json")
            .send()
            .await
            .expect("edge answers");
        let status = response.status();
        assert!(status.is_client_error(), "{status}");
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("a {status} without x-request-id"));
        assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
        assert!(seen.insert(id), "request ids are unique");
        let body = json_body(response).await;
        let kind = body["error"]["type"].as_str().unwrap_or_default();
        assert!(kind.ends_with("_error"), "{status}: {body}");
    }
}

pub async fn a_slow_reader_does_not_stall_other_requests(cluster: &TestCluster) {
    // The fake echoes the prompt a word per event: four streams of about
    // 6 MB each (the prompt fits the test edge's 64 KiB body limit) that
    // this client never reads, more than the socket buffers on the way
    // hold, so the rest waits in the gRPC hops' flow-control windows.
    let prompt = "a ".repeat(30_000);
    let large = json!({
        "model": "gpt-test",
        "stream": true,
        "messages": [{"role": "user", "content": prompt}],
    });
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let response = cluster.chat(&large).await;
        assert_eq!(response.status(), 200);
        stalled.push(response);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A guard against a hang, not a latency bound (BENCHMARKS.md has that).
    let other = tokio::time::timeout(Duration::from_secs(30), async {
        let response = cluster.chat(&hello("gpt-test")).await;
        let status = response.status();
        (status, json_body(response).await)
    })
    .await
    .expect("another request completes while a slow reader stays connected");
    assert_eq!(other.0, 200, "{}", other.1);
    assert_eq!(
        other.1["choices"][0]["message"]["content"],
        "Echo: hello there"
    );
    drop(stalled);
}

/// A raw TCP connection to the cluster's edge.
async fn raw_connection(cluster: &TestCluster) -> tokio::net::TcpStream {
    let address = cluster
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    tokio::net::TcpStream::connect(address)
        .await
        .expect("the edge accepts TCP connections")
}

/// Reads what the edge sends until it closes the connection (or `guard`
/// passes, which fails the test).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, guard: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    tokio::time::timeout(guard, stream.read_to_end(&mut answer))
        .await
        .expect("the edge closed the connection in time")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

pub async fn requests_hyper_refuses_get_openai_errors_with_request_ids(cluster: &TestCluster) {
    use tokio::io::AsyncWriteExt;
    let many_headers: String = (0..120).map(|n| format!("x-h{n}: v\r\n")).collect();
    let cases = [
        (
            "duplicate Content-Length",
            "POST /v1/chat/completions HTTP/1.1\r\nhost: edge\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"
                .to_owned(),
            "400",
        ),
        (
            "bad Content-Length",
            "POST /v1/chat/completions HTTP/1.1\r\nhost: edge\r\ncontent-length: 2x\r\n\r\n{}"
                .to_owned(),
            "400",
        ),
        (
            "bare CR",
            "GET /v1/models HTTP/1.1\r\nhost: edge\rx-a: b\r\n\r\n".to_owned(),
            "400",
        ),
        (
            "folded header",
            "GET /v1/models HTTP/1.1\r\nhost: edge\r\nx-a: b\r\n c\r\n\r\n".to_owned(),
            "400",
        ),
        (
            "NUL in a header",
            "GET /v1/models HTTP/1.1\r\nhost: edge\r\nx-a: b\0c\r\n\r\n".to_owned(),
            "400",
        ),
        (
            "URI too long",
            format!(
                "GET /v1/models?q={} HTTP/1.1\r\nhost: edge\r\n\r\n",
                "a".repeat(70_000)
            ),
            "414",
        ),
        (
            "too many headers",
            format!("GET /v1/models HTTP/1.1\r\nhost: edge\r\n{many_headers}\r\n"),
            "431",
        ),
    ];
    for (case, request, status) in cases {
        let mut stream = raw_connection(cluster).await;
        stream
            .write_all(request.as_bytes())
            .await
            .expect("the edge reads");
        let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{case}: {answer}"
        );
        assert!(answer.contains("x-request-id: "), "{case}: {answer}");
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default();
        let error: Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("{case}: an OpenAI error body, got {answer}"));
        assert_eq!(error["error"]["type"], "invalid_request_error", "{case}");
    }
    assert!(cluster.upstream.requests().is_empty());
}

pub async fn slowloris_is_closed_within_the_header_timeout(cluster: &TestCluster) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = raw_connection(cluster).await;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: edge\r\n")
        .await
        .expect("the edge reads");
    let timeout = Duration::from_secs(crate::cluster::EDGE_READ_TIMEOUT_SECS);
    let guard = tokio::time::Instant::now() + timeout + Duration::from_secs(5);
    let mut buffer = [0_u8; 1024];
    // One header byte every 200 ms: never silent, never finished.
    loop {
        tokio::select! {
            read = reader.read(&mut buffer) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let _ = writer.write_all(b"x").await;
            }
        }
        assert!(
            tokio::time::Instant::now() < guard,
            "a slowloris connection is still open after the header timeout"
        );
    }
}

pub async fn a_transfer_coding_other_than_chunked_is_refused(cluster: &TestCluster) {
    use tokio::io::AsyncWriteExt;
    let mut stream = raw_connection(cluster).await;
    let body = hello("gpt-test").to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ntransfer-encoding: gzip, chunked\r\n\
         connection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        cluster.api_key,
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the edge reads");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 501 "), "{answer}");
    assert!(answer.contains("x-request-id: "), "{answer}");
    assert!(answer.contains("\"invalid_request_error\""), "{answer}");
    assert!(cluster.upstream.requests().is_empty());
}

pub async fn a_stalled_body_is_answered_408(cluster: &TestCluster) {
    use tokio::io::AsyncWriteExt;
    let mut stream = raw_connection(cluster).await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: edge\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\":",
        cluster.api_key
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("the edge reads");
    let timeout = Duration::from_secs(crate::cluster::EDGE_READ_TIMEOUT_SECS);
    let answer = read_until_closed(&mut stream, timeout + Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("x-request-id: "), "{answer}");
    assert!(answer.contains("\"invalid_request_error\""), "{answer}");
    assert!(cluster.upstream.requests().is_empty());
}

pub async fn the_connection_limit_answers_503(cluster: &TestCluster) {
    let mut held = Vec::new();
    for _ in 0..crate::cluster::EDGE_MAX_CONNECTIONS {
        held.push(raw_connection(cluster).await);
    }
    let mut refused = raw_connection(cluster).await;
    let answer = read_until_closed(&mut refused, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("x-request-id: "), "{answer}");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    let error: Value = serde_json::from_str(body).expect("an OpenAI error body");
    assert_eq!(error["error"]["type"], "server_error");
    // The admin listener is not behind the limit, and counts the refusal.
    let scrape = crate::observability::Scrape::parse(&cluster.scrape("edge").await);
    assert!(
        scrape.sum("switchyard_edge_connections_refused_total", &[]) >= 1.0,
        "{}",
        scrape.text()
    );
    #[allow(clippy::cast_precision_loss)]
    let limit = crate::cluster::EDGE_MAX_CONNECTIONS as f64;
    assert_eq!(scrape.sum("switchyard_edge_connections_open", &[]), limit);
    // Closing connections makes room again.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = cluster.chat(&hello("gpt-test")).await;
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after closing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn oversized_body_is_413(cluster: &TestCluster) {
    let mut request = hello("gpt-test");
    request["messages"][1]["content"] = json!("x".repeat(70_000));
    let response = cluster.chat(&request).await;
    assert_eq!(response.status(), 413);
    assert_openai_error(&json_body(response).await, "invalid_request_error");
    assert!(cluster.upstream.requests().is_empty());
    // The gateway is still serving.
    assert_eq!(cluster.chat(&hello("gpt-test")).await.status(), 200);
}

pub async fn upstream_rate_limit_maps_to_429(cluster: &TestCluster) {
    cluster.upstream.push_fault(Fault::Status {
        status: 429,
        body: openai_error_body(
            "Rate limit reached for gpt-4o-mini.",
            "requests",
            "rate_limit_exceeded",
        ),
        headers: vec![("retry-after".to_owned(), "7".to_owned())],
    });
    let response = cluster.chat(&hello("gpt-test")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body = json_body(response).await;
    assert_openai_error(&body, "rate_limit_error");
    assert!(!body.to_string().contains(UPSTREAM_KEY));
    let rows = wait_for_usage_rows(cluster, 1).await;
    assert_eq!(rows[0].error_class, "rate_limited");
    assert_eq!(rows[0].cost_nanos, 0);
}

pub async fn models_are_listed_for_the_key(cluster: &TestCluster) {
    let response = cluster
        .http
        .get(format!("{}/v1/models", cluster.base_url))
        .bearer_auth(&cluster.api_key)
        .send()
        .await
        .expect("edge answers");
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["object"], "list");
    let ids: Vec<_> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|model| model["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "aging",
            "auto",
            "capped",
            "demo",
            "fallback",
            "gpt-test",
            "hedged",
            "impatient",
            "patient",
            "pooled",
            "premium",
            "refused-first",
            "retired",
            "shadowed",
            "shared",
            "single",
            "steady",
            "twice"
        ],
        "only the key's models, by name"
    );
    let unauthenticated = cluster
        .http
        .get(format!("{}/v1/models", cluster.base_url))
        .send()
        .await
        .expect("edge answers");
    assert_eq!(unauthenticated.status(), 401);
}

pub async fn mock_provider_serves_demo(cluster: &TestCluster) {
    let response = cluster.chat(&hello("demo")).await;
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(
        content.contains("mock") && content.contains("hello there"),
        "{content}"
    );
    assert!(cluster.upstream.requests().is_empty());
}

pub async fn embeddings_round_trip(cluster: &TestCluster) {
    let embed = |body: Value| {
        cluster
            .http
            .post(format!("{}/v1/embeddings", cluster.base_url))
            .bearer_auth(&cluster.api_key)
            .json(&body)
            .send()
    };
    let response = embed(json!({"model": "demo", "input": ["hello there", "general kenobi"]}))
        .await
        .expect("edge answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-provider"], "mock");
    assert_eq!(response.headers()["content-type"], "application/json");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = json_body(response).await;
    assert_eq!(body["object"], "list", "{body}");
    assert_eq!(body["model"], "mock-1");
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        let values = item["embedding"].as_array().expect("float embedding");
        assert_eq!(values.len(), 8);
        assert!(values.iter().all(Value::is_f64), "{item}");
    }
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "total_tokens": 4})
    );

    // What the OpenAI SDK asks for by default: base64 of little-endian f32s.
    let response =
        embed(json!({"model": "demo", "input": "hello there", "encoding_format": "base64"}))
            .await
            .expect("edge answers");
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    let encoded = body["data"][0]["embedding"].as_str().expect("base64 text");
    assert_eq!(encoded.len(), 44, "8 × 4 bytes in base64: {encoded}");

    let rows = wait_for_usage_rows(cluster, 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let first = &rows[0];
    assert_eq!(first.request_id, request_id);
    assert_eq!(first.key_id, "test-key");
    assert_eq!(first.model, "demo");
    assert_eq!(first.provider, "mock");
    assert_eq!(first.upstream_model, "mock-1");
    assert_eq!(
        (
            first.prompt_tokens,
            first.completion_tokens,
            first.total_tokens
        ),
        (4, 0, 4)
    );
    assert_eq!((first.cache_hit, first.stream), (0, 0));
    assert_eq!(first.error_class, "");
    assert!(cluster.upstream.requests().is_empty());
}

pub async fn provider_refusing_the_gateway_is_a_502_not_the_clients_401(cluster: &TestCluster) {
    let mut request = hello("demo");
    request["messages"][1]["content"] = json!("mock:error:authentication");
    let response = cluster.chat(&request).await;
    assert_eq!(response.status(), 502);
    let body = json_body(response).await;
    assert_openai_error(&body, "server_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("mock")),
        "{body}"
    );
    let rows = wait_for_usage_rows(cluster, 1).await;
    assert_eq!(rows[0].error_class, "provider_auth");
}

pub async fn client_leaving_early_is_recorded_as_cancelled(cluster: &TestCluster) {
    cluster
        .upstream
        .push_fault(Fault::Delay(std::time::Duration::from_secs(3)));
    let gave_up = cluster
        .http
        .post(format!("{}/v1/chat/completions", cluster.base_url))
        .bearer_auth(&cluster.api_key)
        .timeout(std::time::Duration::from_millis(300))
        .json(&hello("gpt-test"))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    let rows = wait_for_usage_rows(cluster, 1).await;
    assert_eq!(rows[0].error_class, "cancelled");
    assert_eq!(rows[0].provider, "", "no target had answered yet");
    assert_eq!(rows[0].cost_nanos, 0);
}

pub async fn fallback_goes_to_the_next_deployment_on_retryable_failures(cluster: &TestCluster) {
    use switchyard_test_support::anthropic_error_body;
    let status = |status: u16, kind: &str| Fault::Status {
        status,
        body: anthropic_error_body(kind, "scripted"),
        headers: Vec::new(),
    };
    // 429, 503, 529 and a timeout (the primary's provider allows 1 s) each
    // go to the backup deployment at another provider; an overload (529)
    // is first tried once more in place, after a short backoff.
    let faults = [
        vec![status(429, "rate_limit_error")],
        vec![status(503, "api_error")],
        vec![
            status(529, "overloaded_error"),
            status(529, "overloaded_error"),
        ],
        vec![Fault::Delay(Duration::from_secs(3))],
    ];
    let outcomes = [
        "rate_limited",
        "upstream_unavailable",
        "overloaded",
        "timeout",
    ];
    let mut primary_calls = 0;
    for (round, round_faults) in faults.into_iter().enumerate() {
        let tries = round_faults.len();
        for fault in round_faults {
            cluster.primary.push_fault(fault);
        }
        primary_calls += tries;
        let response = cluster.chat(&hello("fallback")).await;
        assert_eq!(response.status(), 200, "round {round}");
        assert_eq!(response.headers()["x-switchyard-provider"], "fake-openai");
        assert_eq!(
            response.headers()["x-switchyard-deployment"],
            "openai-backup"
        );
        assert_eq!(
            response.headers()["x-switchyard-attempts"],
            (tries + 1).to_string().as_str()
        );
        let body = json_body(response).await;
        assert!(body["choices"][0]["message"]["content"].is_string());
        assert_eq!(cluster.primary.requests().len(), primary_calls);
        assert_eq!(cluster.upstream.requests().len(), round + 1);
    }
    // A connection refused goes to the backup too.
    let response = cluster.chat(&hello("refused-first")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(cluster.upstream.requests().len(), 5);
    // A client error does not: the request is wrong wherever it goes.
    cluster
        .primary
        .push_fault(status(400, "invalid_request_error"));
    let response = cluster.chat(&hello("fallback")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        cluster.upstream.requests().len(),
        5,
        "no fallback after a 400"
    );

    let rows = wait_for_usage_rows(cluster, 6).await;
    for (row, outcome) in rows.iter().zip(outcomes) {
        assert_eq!(row.route_id, "fallback");
        assert_eq!(row.deployment_id, "openai-backup");
        assert_eq!(row.provider, "fake-openai");
        assert_eq!(row.error_class, "");
        // Costed at the answering deployment's price: 5 × $2.50 + 3 × $10.00
        // per million, not the primary's $100 / $200.
        assert_eq!((row.prompt_tokens, row.completion_tokens), (5, 3));
        assert_eq!(row.cost_nanos, 42_500);
        let attempts: serde_json::Value = serde_json::from_str(&row.attempts).expect("JSON");
        let attempts = attempts.as_array().expect("an array");
        let (answer, failed) = attempts.split_last().expect("attempts");
        for attempt in failed {
            assert_eq!(attempt["deployment_id"], "anthropic-primary");
            assert_eq!(attempt["outcome"], outcome);
            assert_eq!(attempt["cost_nanos"], 0);
        }
        assert_eq!(answer["deployment_id"], "openai-backup");
        assert_eq!(answer["outcome"], "");
        assert_eq!(answer["cost_nanos"], 42_500);
    }
    let refused = &rows[4];
    assert_eq!(refused.route_id, "refused-first");
    let attempts: serde_json::Value = serde_json::from_str(&refused.attempts).expect("JSON");
    assert_eq!(attempts[0]["deployment_id"], "refused-primary");
    assert_eq!(attempts[0]["outcome"], "upstream_unavailable");
    let client_error = &rows[5];
    assert_eq!(client_error.error_class, "invalid_request");
    assert_eq!(client_error.deployment_id, "");
    let attempts: serde_json::Value = serde_json::from_str(&client_error.attempts).expect("JSON");
    assert_eq!(attempts.as_array().map(Vec::len), Some(1));
}

pub async fn a_refused_provider_key_rests_while_the_providers_other_key_serves(
    cluster: &TestCluster,
) {
    // The provider of `pooled`'s first deployment holds two keys; the
    // upstream has revoked the first.
    cluster.upstream.revoke_key(crate::cluster::POOL_KEY_ALPHA);
    for round in 0..3 {
        let response = cluster.chat(&hello("pooled")).await;
        assert_eq!(response.status(), 200, "round {round}");
        let expected = if round == 0 {
            // The refused key is the gateway's problem: the backup answers.
            ("openai-backup", "2")
        } else {
            // The refused key rests; the other serves the same deployment.
            ("pool-mini", "1")
        };
        assert_eq!(
            (
                response.headers()["x-switchyard-deployment"]
                    .to_str()
                    .expect("ASCII"),
                response.headers()["x-switchyard-attempts"]
                    .to_str()
                    .expect("ASCII"),
            ),
            expected,
            "round {round}"
        );
    }
    let keys: Vec<String> = cluster
        .upstream
        .requests()
        .iter()
        .map(|request| request.headers["authorization"].clone())
        .collect();
    let alpha = format!("Bearer {}", crate::cluster::POOL_KEY_ALPHA);
    let bravo = format!("Bearer {UPSTREAM_KEY}");
    // The refused attempt, the backup (its own key), then the second key twice.
    assert_eq!(keys, [alpha, bravo.clone(), bravo.clone(), bravo]);

    let rows = wait_for_usage_rows(cluster, 3).await;
    let credentials: Vec<Vec<(String, String)>> = rows
        .iter()
        .map(|row| {
            let attempts: Value = serde_json::from_str(&row.attempts).expect("JSON");
            attempts
                .as_array()
                .expect("an array")
                .iter()
                .map(|attempt| {
                    (
                        attempt["outcome"].as_str().unwrap_or_default().to_owned(),
                        attempt["credential"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .collect();
    let pair = |outcome: &str, credential: &str| (outcome.to_owned(), credential.to_owned());
    assert_eq!(
        credentials,
        [
            vec![pair("provider_auth", "alpha"), pair("", "")],
            vec![pair("", "bravo")],
            vec![pair("", "bravo")],
        ]
    );
}

pub async fn a_request_that_fell_back_twice_explains_itself(cluster: &TestCluster) {
    use switchyard_test_support::anthropic_error_body;
    // The first deployment answers 503 and the second refuses connections;
    // the third answers.
    cluster.primary.push_fault(Fault::Status {
        status: 503,
        body: anthropic_error_body("api_error", "scripted"),
        headers: Vec::new(),
    });
    let response = cluster.chat(&hello("twice")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchyard-attempts"], "3");
    assert_eq!(
        response.headers()["x-switchyard-deployment"],
        "openai-backup"
    );
    // The key may see how it was routed.
    let header = crate::routing::decision_header(&response);
    assert!(
        header.starts_with(
            "strategy=priority; order=anthropic-primary,refused-primary,openai-backup; \
             attempts=anthropic-primary(upstream_unavailable,"
        ),
        "{header}"
    );
    assert!(
        header.contains(",refused-primary(upstream_unavailable,")
            && header.contains(",openai-backup(ok,"),
        "{header}"
    );
    json_body(response).await;

    let rows = wait_for_usage_rows(cluster, 1).await;
    let row = &rows[0];
    assert_eq!(row.route_id, "twice");
    let decision: Value = serde_json::from_str(&row.decision).expect("JSON");
    assert_eq!(decision["strategies"], json!(["priority"]));
    assert_eq!(
        decision["order"],
        json!(["anthropic-primary", "refused-primary", "openai-backup"])
    );
    let attempts: Value = serde_json::from_str(&row.attempts).expect("JSON");
    let outcomes = crate::ledger::outcomes(&attempts);
    assert_eq!(
        outcomes,
        [
            ("anthropic-primary", "upstream_unavailable"),
            ("refused-primary", "upstream_unavailable"),
            ("openai-backup", ""),
        ]
    );
}

pub async fn the_edge_deadline_bounds_a_slow_upstream(cluster: &TestCluster) {
    // The provider allows 10 s; the edge's 5 s request timeout becomes the
    // request's deadline, carried to the adapter, which stops waiting then.
    cluster
        .upstream
        .push_fault(Fault::Delay(Duration::from_secs(12)));
    let started = std::time::Instant::now();
    let response = cluster.chat(&hello("gpt-test")).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 504);
    let limit = Duration::from_secs(crate::cluster::REQUEST_TIMEOUT_SECS);
    assert!(
        waited >= limit - Duration::from_millis(500) && waited < limit + Duration::from_secs(3),
        "answered after {waited:?}, the deadline was {limit:?}"
    );
    // Nearly all of the wait was the provider's: the overhead the error
    // answer reports leaves it out.
    let overhead = crate::observability::overhead_header(&response);
    assert!(
        overhead < 1000.0,
        "{overhead} ms of {waited:?} reported as the gateway's"
    );
    assert_openai_error(&json_body(response).await, "timeout_error");
    let rows = wait_for_usage_rows(cluster, 1).await;
    assert_eq!(rows[0].error_class, "timeout");
}
