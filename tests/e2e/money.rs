//! Money scenarios: what each answer cost, told to the client exactly as
//! the ledger records it.

use serde_json::json;
use switchyard_test_support::Fault;

use crate::{cluster::TestCluster, ledger::wait_for_usage_rows};

fn hello(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

/// Nano-dollars as the cost headers and `usage.cost` write them.
fn decimal(nanos: i64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// A whole answer carries its exact cost and token counts in headers, the
/// same to the nano-dollar as its usage event.
pub async fn a_whole_answer_carries_its_exact_cost_and_tokens(cluster: &TestCluster) {
    let response = cluster.chat(&hello("gpt-test")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body: serde_json::Value = response.json().await.expect("JSON");
    let usage = &body["usage"];
    assert!(usage.get("cost").is_none(), "the body stays OpenAI's own");
    for (header, field) in [
        ("x-switchyard-prompt-tokens", &usage["prompt_tokens"]),
        (
            "x-switchyard-completion-tokens",
            &usage["completion_tokens"],
        ),
        (
            "x-switchyard-cached-tokens",
            &usage["prompt_tokens_details"]["cached_tokens"],
        ),
    ] {
        assert_eq!(headers[header].to_str().expect("ASCII"), field.to_string());
    }
    let rows = wait_for_usage_rows(cluster, 1).await;
    // $2.50 in and $10 out per million tokens.
    let expected = rows[0].prompt_tokens * 2_500 + rows[0].completion_tokens * 10_000;
    assert!(expected > 0);
    assert_eq!(rows[0].cost_nanos, expected);
    assert_eq!(headers["x-switchyard-cost-usd"], decimal(expected).as_str());
}

/// A stream's usage event carries `usage.cost`, an exact decimal number,
/// and who was paid, as fields the OpenAI SDK keeps as extras.
pub async fn a_streams_usage_carries_its_cost(cluster: &TestCluster) {
    let mut request = hello("gpt-test");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = cluster.chat(&request).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("stream");
    let usage_event = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str::<serde_json::Value>(data).expect("JSON event"))
        .find(|event| event["usage"].is_object())
        .expect("a usage event");
    let usage = &usage_event["usage"];
    let rows = wait_for_usage_rows(cluster, 1).await;
    let cost = rows[0].cost_nanos;
    assert!(cost > 0);
    // The number is written with every nano-dollar, as in the header.
    assert!(
        text.contains(&format!("\"cost\":{}", decimal(cost))),
        "{text}"
    );
    assert_eq!(usage["cost_details"]["currency"], "USD");
    assert_eq!(usage["cost_details"]["provider"], "fake-openai");
    assert_eq!(usage["cost_details"]["route"], "gpt-test");
    assert_eq!(usage["prompt_tokens"], rows[0].prompt_tokens);
}

/// A client that leaves a stream half-way is charged what the provider
/// produced until then: the prompt and the streamed words, counted with
/// the tokenizer, since the provider never sent its usage.
pub async fn a_stream_cut_short_is_charged_for_what_was_streamed(cluster: &TestCluster) {
    cluster
        .upstream
        .push_fault(Fault::Trickle(std::time::Duration::from_millis(2)));
    let mut request = hello("gpt-test");
    request["stream"] = json!(true);
    let mut response = cluster.chat(&request).await;
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    // Read until a word of the answer has arrived, then leave.
    while !seen.contains("\"content\":\"Echo") {
        let chunk = response
            .chunk()
            .await
            .expect("readable")
            .expect("more before the end");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    let rows = wait_for_usage_rows(cluster, 1).await;
    let row = &rows[0];
    assert_eq!(row.error_class, "cancelled");
    assert_eq!(
        row.deployment_id, "gpt-test/fake-openai/gpt-4o-mini",
        "{row:?}"
    );
    // "hello there" is 2 tokens; OpenAI frames a message in 4 more and
    // primes the answer with 3.
    assert_eq!(row.prompt_tokens, 9, "{row:?}");
    assert!(row.completion_tokens >= 1, "{row:?}");
    assert_eq!(
        row.cost_nanos,
        row.prompt_tokens * 2_500 + row.completion_tokens * 10_000
    );
}
