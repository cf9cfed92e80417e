//! The scenarios against a real Redis, one namespace per test.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use switchyard_cache::CacheConfig;
use switchyard_common::GrpcChannel;
use switchyard_proto::v1::cache_service_client::CacheServiceClient;

use super::scenarios::{self, Client, lookup, response, store, unique_namespace};

/// Returns a cache client over Redis and a direct Redis connection when Redis
/// answers; fails, naming the command that starts Redis, when it does not
/// (a test never passes without having run).
async fn redis_backend() -> Option<(Client, MultiplexedConnection)> {
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let connection = match redis::Client::open(url.as_str()) {
        Ok(client) => tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()
        .and_then(Result::ok),
        Err(_) => None,
    };
    let Some(connection) = connection else {
        panic!("Redis is not reachable at {url}; start it with `bash .ci/services.sh`");
    };
    let config = CacheConfig {
        redis_url: Some(url),
        ..CacheConfig::default()
    };
    let server = switchyard_cache::build(&config)
        .await
        .expect("the Redis cache builds");
    Some((
        CacheServiceClient::new(GrpcChannel::in_process(server)),
        connection,
    ))
}

/// Deletes every key of `namespace`.
async fn delete_namespace(connection: &mut MultiplexedConnection, namespace: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("switchyard:cache:v1:{namespace}*"))
        .query_async(connection)
        .await
        .expect("KEYS works");
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(connection)
            .await
            .expect("DEL works");
    }
}

macro_rules! redis_scenario {
    ($name:ident, $scenario:path) => {
        #[tokio::test]
        async fn $name() {
            let Some((client, mut connection)) = redis_backend().await else {
                return;
            };
            let namespace = unique_namespace();
            $scenario(&client, &namespace).await;
            delete_namespace(&mut connection, &namespace).await;
        }
    };
}

redis_scenario!(
    redis_store_then_lookup_hits,
    scenarios::store_then_lookup_hits
);
redis_scenario!(redis_unknown_key_misses, scenarios::unknown_key_misses);
redis_scenario!(redis_entries_expire, scenarios::entries_expire);
redis_scenario!(
    redis_namespaces_are_isolated,
    scenarios::namespaces_are_isolated
);
redis_scenario!(
    redis_rejects_invalid_requests,
    scenarios::rejects_invalid_requests
);

#[tokio::test]
async fn redis_stores_under_the_documented_key_with_a_ttl() {
    let Some((client, mut connection)) = redis_backend().await else {
        return;
    };
    let namespace = unique_namespace();
    store(
        &client,
        &namespace,
        "abc123",
        response("hello"),
        Duration::from_secs(60),
    )
    .await;
    let digest = switchyard_cache::exact_key(Some(scenarios::query(&namespace, "abc123")))
        .expect("valid query")
        .key()
        .to_owned();
    let redis_key = format!("switchyard:cache:v1:{namespace}:{digest}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut connection)
        .await
        .expect("PTTL works");
    assert!(pttl > 0 && pttl <= 60_000, "PTTL of {redis_key} is {pttl}");
    delete_namespace(&mut connection, &namespace).await;
}

#[tokio::test]
async fn redis_undecodable_value_is_a_miss() {
    let Some((client, mut connection)) = redis_backend().await else {
        return;
    };
    let namespace = unique_namespace();
    let digest = switchyard_cache::exact_key(Some(scenarios::query(&namespace, "bad")))
        .expect("valid query")
        .key()
        .to_owned();
    redis::cmd("SET")
        .arg(format!("switchyard:cache:v1:{namespace}:{digest}"))
        .arg(vec![0xff_u8, 0xff, 0xff])
        .arg("PX")
        .arg(60_000)
        .query_async::<()>(&mut connection)
        .await
        .expect("SET works");
    assert_eq!(lookup(&client, &namespace, "bad").await, None);
    delete_namespace(&mut connection, &namespace).await;
}
