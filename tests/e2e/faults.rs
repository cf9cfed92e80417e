//! A service on the request path that has died: clients get a clear error
//! in OpenAI's shape, with a request id, within the deadline.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Backends, Mode, REQUEST_TIMEOUT_SECS, TestCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_router_or_adapter_is_a_503_with_a_request_id() {
    for role in ["adapter", "router"] {
        let Some(mut cluster) = TestCluster::start(Mode::Distributed, Backends::Embedded).await
        else {
            return;
        };
        let request = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(
            cluster.chat(&request).await.status(),
            200,
            "before killing {role}"
        );
        cluster
            .processes_mut()
            .expect("distributed")
            .kill(role)
            .await
            .expect("the process dies");

        // Another prompt, so the cache cannot answer it.
        let request =
            json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi again"}]});
        let started = Instant::now();
        let response = cluster.chat(&request).await;
        assert!(started.elapsed() < Duration::from_secs(REQUEST_TIMEOUT_SECS));
        assert_eq!(response.status(), 503, "{role} killed");
        assert!(response.headers().contains_key("x-request-id"), "{role}");
        let body: Value = response.json().await.expect("an OpenAI error body");
        assert_eq!(body["error"]["type"], "server_error", "{role}: {body}");
    }
}
