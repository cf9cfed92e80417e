//! Scenarios every store must pass, through the gRPC client.

use std::time::Duration;

use switchyard_common::{ErrorClass, GrpcChannel, ServiceError};
use switchyard_proto::v1::{
    CacheQuery, CachedResponse, ChatChunk, ChatRequest, ContentPart, LookupRequest, Message,
    RequestContext, Role, StoreRequest, cache_service_client::CacheServiceClient,
    content_part::Part,
};

/// A client of the cache under test.
pub type Client = CacheServiceClient<GrpcChannel>;

/// A unique namespace, so tests sharing a Redis never collide.
pub fn unique_namespace() -> String {
    format!("test-{}", uuid::Uuid::now_v7())
}

/// A response distinct per `text`.
pub fn response(text: &str) -> CachedResponse {
    CachedResponse {
        chunks: vec![ChatChunk {
            content: text.to_owned(),
            model: "gpt-4o-mini".to_owned(),
            ..ChatChunk::default()
        }],
        stored_at_unix_ms: 1_763_700_000_000,
    }
}

/// A query in `namespace` whose request asks `question`.
pub fn query(namespace: &str, question: &str) -> CacheQuery {
    CacheQuery {
        namespace: namespace.to_owned(),
        request: Some(ChatRequest {
            model: "demo".to_owned(),
            messages: vec![Message {
                role: Role::User as i32,
                content: vec![ContentPart {
                    part: Some(Part::Text(question.to_owned())),
                }],
                content_is_text: true,
                ..Message::default()
            }],
            ..ChatRequest::default()
        }),
        route: "demo".to_owned(),
    }
}

fn context() -> Option<RequestContext> {
    Some(RequestContext {
        request_id: "req-1".to_owned(),
        ..RequestContext::default()
    })
}

/// Stores `response` for the question `key` in `namespace` for `ttl`.
pub async fn store(
    client: &Client,
    namespace: &str,
    key: &str,
    response: CachedResponse,
    ttl: Duration,
) {
    client
        .clone()
        .store(StoreRequest {
            context: context(),
            query: Some(query(namespace, key)),
            response: Some(response),
            ttl_ms: u64::try_from(ttl.as_millis()).expect("a short TTL"),
        })
        .await
        .expect("a valid store succeeds");
}

/// Looks the question `key` up in `namespace`.
pub async fn lookup(client: &Client, namespace: &str, key: &str) -> Option<CachedResponse> {
    client
        .clone()
        .lookup(LookupRequest {
            context: context(),
            query: Some(query(namespace, key)),
        })
        .await
        .expect("a valid lookup succeeds")
        .into_inner()
        .response
}

/// A stored response is found under its key.
pub async fn store_then_lookup_hits(client: &Client, namespace: &str) {
    store(
        client,
        namespace,
        "abc123",
        response("hello"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        lookup(client, namespace, "abc123").await,
        Some(response("hello"))
    );
}

/// A key never stored misses.
pub async fn unknown_key_misses(client: &Client, namespace: &str) {
    assert_eq!(lookup(client, namespace, "deadbeef").await, None);
}

/// An entry is gone once its TTL has passed.
pub async fn entries_expire(client: &Client, namespace: &str) {
    store(
        client,
        namespace,
        "0ff1ce",
        response("brief"),
        Duration::from_millis(100),
    )
    .await;
    assert!(lookup(client, namespace, "0ff1ce").await.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lookup(client, namespace, "0ff1ce").await, None);
}

/// The same key in two namespaces holds two entries.
pub async fn namespaces_are_isolated(client: &Client, namespace: &str) {
    let other = format!("{namespace}-other");
    store(
        client,
        namespace,
        "cafe",
        response("first"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(lookup(client, &other, "cafe").await, None);
    store(
        client,
        &other,
        "cafe",
        response("second"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        lookup(client, namespace, "cafe").await,
        Some(response("first"))
    );
    assert_eq!(
        lookup(client, &other, "cafe").await,
        Some(response("second"))
    );
}

/// Bad namespaces, missing queries, TTLs and missing responses are invalid requests.
pub async fn rejects_invalid_requests(client: &Client, namespace: &str) {
    let mut no_request = query(namespace, "x");
    no_request.request = None;
    let cases = [
        (
            Some(query("", "x")),
            Some(response("x")),
            1_000,
            "namespace",
        ),
        (None, Some(response("x")), 1_000, "query"),
        (
            Some(no_request),
            Some(response("x")),
            1_000,
            "query.request",
        ),
        (Some(query(namespace, "x")), None, 1_000, "response"),
        (
            Some(query(namespace, "x")),
            Some(response("x")),
            0,
            "ttl_ms",
        ),
    ];
    for (query, response, ttl_ms, field) in cases {
        let status = client
            .clone()
            .store(StoreRequest {
                context: context(),
                query,
                response,
                ttl_ms,
            })
            .await
            .expect_err("an invalid store is rejected");
        let error = ServiceError::from_status(&status);
        assert_eq!(error.class, ErrorClass::InvalidRequest, "{field}");
        assert_eq!(error.param.as_deref(), Some(field));
    }
    let status = client
        .clone()
        .lookup(LookupRequest {
            context: context(),
            query: None,
        })
        .await
        .expect_err("an invalid lookup is rejected");
    assert_eq!(
        ServiceError::from_status(&status).class,
        ErrorClass::InvalidRequest
    );
}
