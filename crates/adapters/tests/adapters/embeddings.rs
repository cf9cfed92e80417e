//! Embeddings through the adapters: OpenAI, Mistral and Gemini against their
//! fakes (what goes upstream, what comes back, errors), the mock, and kinds
//! without embeddings.

use std::time::Duration;

use serde_json::json;
use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{
    AdapterEmbedRequest, EmbedRequest, EmbedResponse, RequestContext, TokenIds,
};
use switchyard_test_support::{
    FakeFlavor, FakeGeminiEmbeddings, FakeOpenAi, Fault, fake_embedding, openai_error_body,
};

use crate::{API_KEY, API_KEY_VARIABLE, Harness, Target, env_key};

/// Sends one embeddings attempt.
async fn embed(
    harness: &Harness,
    target: Target,
    request: EmbedRequest,
) -> Result<EmbedResponse, ServiceError> {
    let mut client = harness.client.clone();
    client
        .embed(AdapterEmbedRequest {
            context: Some(RequestContext {
                request_id: "req-1".to_owned(),
                ..RequestContext::default()
            }),
            request: Some(request),
            deployment_id: harness.deploy(&target),
            timeouts: None,
        })
        .await
        .map(|response| {
            response
                .into_inner()
                .response
                .expect("every answer has a response")
        })
        .map_err(|status| ServiceError::from_status(&status))
}

fn texts(model: &str, texts: &[&str]) -> EmbedRequest {
    EmbedRequest {
        model: model.to_owned(),
        input: texts.iter().map(|text| (*text).to_owned()).collect(),
        ..EmbedRequest::default()
    }
}

fn target(kind: &str, base_url: String, model: &str) -> Target {
    Target {
        provider: format!("fake-{kind}"),
        kind: kind.to_owned(),
        base_url,
        upstream_model: model.to_owned(),
        api_key: Some(env_key(API_KEY_VARIABLE)),
        ..Target::default()
    }
}

fn values(response: &EmbedResponse) -> Vec<Vec<f32>> {
    response
        .data
        .iter()
        .map(|embedding| embedding.values.clone())
        .collect()
}

#[tokio::test]
async fn openai_texts_are_sent_with_options_and_answered_in_order() {
    let harness = Harness::start().await;
    let mut request = texts(
        "text-embedding-3-small",
        &["hello world", "good night moon"],
    );
    request.dimensions = Some(4);
    request.user = "user-7".to_owned();
    request.encoding_format = "base64".to_owned();
    request.extra_json = r#"{"priority":"high"}"#.to_owned();
    let target = target("openai", harness.fake.base_url(), "text-embedding-3-small");

    let response = embed(&harness, target, request).await.expect("answered");

    let received = harness.fake.requests();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(
        (upstream.method.as_str(), upstream.path.as_str()),
        ("POST", "/v1/embeddings")
    );
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert_eq!(upstream.headers["content-type"], "application/json");
    // Floats are always asked for: the edge encodes base64 itself.
    assert_eq!(
        upstream.body,
        json!({"model": "text-embedding-3-small", "input": ["hello world", "good night moon"],
               "encoding_format": "float", "dimensions": 4, "user": "user-7", "priority": "high"})
    );
    assert_eq!(
        values(&response),
        [
            fake_embedding(b"hello world", 4),
            fake_embedding(b"good night moon", 4)
        ]
    );
    assert_eq!(
        response
            .data
            .iter()
            .map(|embedding| embedding.index)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(response.model, "text-embedding-3-small");
    let usage = response.usage.expect("usage");
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (5, 0, 5)
    );
}

#[tokio::test]
async fn openai_token_inputs_are_sent_as_arrays_of_ids() {
    let harness = Harness::start().await;
    let request = EmbedRequest {
        model: "text-embedding-3-small".to_owned(),
        input_tokens: vec![
            TokenIds {
                ids: vec![9906, 1917],
            },
            TokenIds { ids: vec![42] },
        ],
        ..EmbedRequest::default()
    };
    let target = target("openai", harness.fake.base_url(), "text-embedding-3-small");
    let response = embed(&harness, target, request).await.expect("answered");
    assert_eq!(
        harness.fake.requests()[0].body["input"],
        json!([[9906, 1917], [42]])
    );
    assert_eq!(response.data.len(), 2);
    assert_eq!(response.data[0].values.len(), 8);
    assert_eq!(response.usage.map(|usage| usage.prompt_tokens), Some(3));
}

#[tokio::test]
async fn openai_errors_are_classified() {
    let harness = Harness::start().await;
    let target = || target("openai", harness.fake.base_url(), "text-embedding-3-small");
    let request = || texts("text-embedding-3-small", &["hi"]);

    harness.fake.push_fault(Fault::Status {
        status: 429,
        body: openai_error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
        headers: vec![("retry-after".to_owned(), "7".to_owned())],
    });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("rate limited");
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(error.provider.as_deref(), Some("fake-openai"));

    harness.fake.push_fault(Fault::Status {
        status: 401,
        body: openai_error_body(
            &format!("Incorrect API key provided: {API_KEY}"),
            "invalid_request_error",
            "invalid_api_key",
        ),
        headers: Vec::new(),
    });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("rejected key");
    assert_eq!(error.class, ErrorClass::ProviderAuth);
    assert!(!error.message.contains(API_KEY), "{}", error.message);

    harness.fake.push_fault(Fault::Status {
        status: 200,
        body: r#"{"object":"list","data":[],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}"#
            .to_owned(),
        headers: Vec::new(),
    });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("no embedding for the input");
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);

    harness
        .fake
        .push_fault(Fault::DropMidStream { after_chunks: 1 });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("cut body");
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);

    // The fake's own validation: an empty input is OpenAI's 400.
    let error = embed(&harness, target(), texts("text-embedding-3-small", &[""]))
        .await
        .expect_err("empty input");
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert!(error.message.contains("input"), "{}", error.message);
}

#[tokio::test]
async fn mistral_gets_its_dialect_and_refuses_token_ids() {
    let harness = Harness::start().await;
    let mistral = FakeOpenAi::start_flavor(FakeFlavor::Mistral).await;
    let target = || target("mistral", mistral.base_url(), "mistral-embed");
    let mut request = texts("mistral-embed", &["bonjour le monde"]);
    request.dimensions = Some(6);
    request.user = "user-7".to_owned();

    let response = embed(&harness, target(), request).await.expect("answered");

    let received = mistral.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/embeddings");
    assert_eq!(
        received[0].headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert_eq!(
        received[0].body,
        json!({"model": "mistral-embed", "input": ["bonjour le monde"],
               "encoding_format": "float", "output_dimension": 6})
    );
    assert_eq!(values(&response), [fake_embedding(b"bonjour le monde", 6)]);
    assert_eq!(response.usage.map(|usage| usage.prompt_tokens), Some(3));

    let tokens = EmbedRequest {
        model: "mistral-embed".to_owned(),
        input_tokens: vec![TokenIds { ids: vec![1] }],
        ..EmbedRequest::default()
    };
    let error = embed(&harness, target(), tokens)
        .await
        .expect_err("no token ids");
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("input"));
    assert_eq!(mistral.requests().len(), 1, "refused before sending");

    // A passthrough field Mistral does not know: its 422 reaches the client.
    let mut unknown = texts("mistral-embed", &["a"]);
    unknown.extra_json = r#"{"priority":"high"}"#.to_owned();
    let error = embed(&harness, target(), unknown)
        .await
        .expect_err("Mistral's 422");
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert!(error.message.contains("Extra inputs"), "{}", error.message);
}

#[tokio::test]
async fn gemini_batches_texts_with_its_key_header() {
    let harness = Harness::start().await;
    let gemini = FakeGeminiEmbeddings::start().await;
    let mut request = texts("gemini-embedding-001", &["hello world", "abcdefghi"]);
    request.dimensions = Some(5);
    request.user = "user-7".to_owned();
    request.extra_json = r#"{"task_type":"RETRIEVAL_QUERY"}"#.to_owned();
    let target = target("gemini", gemini.base_url(), "gemini-embedding-001");

    let response = embed(&harness, target, request).await.expect("answered");

    let received = gemini.requests();
    assert_eq!(received.len(), 1);
    let upstream = &received[0];
    assert_eq!(
        upstream.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(upstream.headers["x-goog-api-key"], API_KEY);
    assert!(!upstream.headers.contains_key("authorization"));
    let one = |text: &str| {
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]},
               "outputDimensionality": 5, "taskType": "RETRIEVAL_QUERY"})
    };
    assert_eq!(
        upstream.body,
        json!({"requests": [one("hello world"), one("abcdefghi")]})
    );
    assert_eq!(
        values(&response),
        [
            fake_embedding(b"hello world", 5),
            fake_embedding(b"abcdefghi", 5)
        ]
    );
    assert_eq!(response.model, "gemini-embedding-001");
    // Estimated: 11 characters -> 3 tokens, 9 characters -> 3 tokens.
    assert_eq!(response.usage.map(|usage| usage.prompt_tokens), Some(6));
}

#[tokio::test]
async fn gemini_errors_are_classified_and_token_ids_refused() {
    let harness = Harness::start().await;
    let gemini = FakeGeminiEmbeddings::start().await;
    let target = || target("gemini", gemini.base_url(), "gemini-embedding-001");
    let request = || texts("gemini-embedding-001", &["hi"]);

    gemini.push_fault(Fault::Status {
        status: 429,
        body: json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}})
        .to_string(),
        headers: Vec::new(),
    });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("rate limited");
    assert_eq!(error.class, ErrorClass::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(37)));

    gemini.push_fault(Fault::Status {
        status: 400,
        body: json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}]}})
        .to_string(),
        headers: Vec::new(),
    });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("bad key");
    assert_eq!(error.class, ErrorClass::ProviderAuth);

    gemini.push_fault(Fault::Status {
        status: 503,
        body: json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
            .to_string(),
        headers: Vec::new(),
    });
    let error = embed(&harness, target(), request())
        .await
        .expect_err("unavailable");
    assert_eq!(error.class, ErrorClass::UpstreamUnavailable);

    // Without a key the fake answers Gemini's 403.
    let keyless = Target {
        api_key: None,
        ..target()
    };
    let error = embed(&harness, keyless, request())
        .await
        .expect_err("no key");
    assert_eq!(error.class, ErrorClass::ProviderAuth);

    let tokens = EmbedRequest {
        model: "gemini-embedding-001".to_owned(),
        input_tokens: vec![TokenIds { ids: vec![1] }],
        ..EmbedRequest::default()
    };
    let error = embed(&harness, target(), tokens)
        .await
        .expect_err("no token ids");
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert_eq!(error.param.as_deref(), Some("input"));
    assert_eq!(gemini.requests().len(), 4, "token ids never sent");
}

#[tokio::test]
async fn mock_embeddings_are_deterministic_and_can_fail_on_demand() {
    let harness = Harness::start().await;
    let mock = || Target {
        provider: "mock".to_owned(),
        kind: "mock".to_owned(),
        upstream_model: "mock-1".to_owned(),
        ..Target::default()
    };
    let first = embed(&harness, mock(), texts("mock-1", &["same text", "other"]))
        .await
        .expect("answered");
    let second = embed(&harness, mock(), texts("mock-1", &["same text"]))
        .await
        .expect("answered");
    assert_eq!(first.data.len(), 2);
    assert_eq!(first.data[0].values.len(), 8);
    assert_eq!(first.data[0].values, second.data[0].values);
    assert_ne!(first.data[0].values, first.data[1].values);
    assert_eq!(first.model, "mock-1");
    assert_eq!(first.usage.map(|usage| usage.prompt_tokens), Some(3));
    let mut wide = texts("mock-1", &["x"]);
    wide.dimensions = Some(32);
    let wide = embed(&harness, mock(), wide).await.expect("answered");
    assert_eq!(wide.data[0].values.len(), 32);

    let error = embed(
        &harness,
        mock(),
        texts("mock-1", &["mock:error:overloaded"]),
    )
    .await
    .expect_err("triggered");
    assert_eq!(error.class, ErrorClass::Overloaded);
}

#[tokio::test]
async fn kinds_without_embeddings_refuse_them() {
    let harness = Harness::start().await;
    let anthropic = target("anthropic", harness.fake.base_url(), "claude-sonnet-4-5");
    let error = embed(&harness, anthropic, texts("claude-sonnet-4-5", &["hi"]))
        .await
        .expect_err("no embeddings");
    assert_eq!(error.class, ErrorClass::InvalidRequest);
    assert_eq!(
        error.message,
        "provider kind `anthropic` does not offer embeddings"
    );
    assert!(harness.fake.requests().is_empty());
}
