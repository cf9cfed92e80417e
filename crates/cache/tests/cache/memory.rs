//! The scenarios against the in-memory store.

use switchyard_cache::CacheConfig;
use switchyard_common::GrpcChannel;
use switchyard_proto::v1::cache_service_client::CacheServiceClient;

use super::scenarios::{self, Client, unique_namespace};

async fn client() -> Client {
    let server = switchyard_cache::build(&CacheConfig::default())
        .await
        .expect("the memory cache builds");
    CacheServiceClient::new(GrpcChannel::in_process(server))
}

#[tokio::test]
async fn memory_store_then_lookup_hits() {
    scenarios::store_then_lookup_hits(&client().await, &unique_namespace()).await;
}

#[tokio::test]
async fn memory_unknown_key_misses() {
    scenarios::unknown_key_misses(&client().await, &unique_namespace()).await;
}

#[tokio::test]
async fn memory_entries_expire() {
    scenarios::entries_expire(&client().await, &unique_namespace()).await;
}

#[tokio::test]
async fn memory_namespaces_are_isolated() {
    scenarios::namespaces_are_isolated(&client().await, &unique_namespace()).await;
}

#[tokio::test]
async fn memory_rejects_invalid_requests() {
    scenarios::rejects_invalid_requests(&client().await, &unique_namespace()).await;
}

#[tokio::test]
async fn memory_zero_max_entries_is_rejected() {
    let config = CacheConfig {
        max_entries: 0,
        ..CacheConfig::default()
    };
    assert!(switchyard_cache::build(&config).await.is_err());
}
