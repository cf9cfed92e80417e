//! A service on the request path that has died: clients get a clear error
//! in OpenAI's shape, with a request id, within the deadline.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

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

/// What the load generator saw while a service was down and back.
#[derive(Debug, Default)]
struct Seen {
    ok: usize,
    errors: std::collections::BTreeMap<u16, usize>,
    slowest: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_killed_and_restarted_under_load_fails_clearly_and_comes_back() {
    let Some(mut cluster) = TestCluster::start(Mode::Distributed, Backends::Embedded).await else {
        return;
    };
    let deadline = Duration::from_secs(REQUEST_TIMEOUT_SECS);
    // The load needs only a client; the cluster itself is borrowed to kill
    // and restart its processes meanwhile.
    let url = format!("{}/v1/chat/completions", cluster.base_url);
    let (http, key) = (cluster.http.clone(), cluster.api_key.clone());
    let chat = |body: Value| {
        let request = http.post(&url).bearer_auth(&key).json(&body);
        async move { request.send().await.expect("the edge answers") }
    };
    for role in ["ledger", "cache", "control-plane", "adapter", "router"] {
        let stop = AtomicBool::new(false);
        let counter = AtomicU64::new(0);
        // Steady load: one request after another, each with a new prompt
        // so the cache cannot answer it, until the service is back.
        let load = async {
            let mut seen = Seen::default();
            while !stop.load(Ordering::Relaxed) {
                let number = counter.fetch_add(1, Ordering::Relaxed);
                let request = json!({"model": "gpt-test", "messages": [
                    {"role": "user", "content": format!("{role} {number}")}]});
                let started = Instant::now();
                let response = chat(request).await;
                let took = started.elapsed();
                seen.slowest = seen.slowest.max(took);
                assert!(
                    took < deadline + Duration::from_secs(1),
                    "{role}: a request hung for {took:?}"
                );
                let status = response.status().as_u16();
                if status == 200 {
                    seen.ok += 1;
                } else {
                    // Never a hang, never the client's fault: a 5xx in OpenAI's shape.
                    assert!(status >= 500, "{role}: answered {status}");
                    let body: Value = response.json().await.expect("an OpenAI error body");
                    assert_eq!(body["error"]["type"], "server_error", "{role}: {body}");
                    *seen.errors.entry(status).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        };
        let faults = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let processes = cluster.processes_mut().expect("distributed");
            processes.kill(role).await.expect("the process dies");
            tokio::time::sleep(Duration::from_secs(1)).await;
            processes
                .restart(role)
                .await
                .expect("the process starts again");
            let restarted = Instant::now();
            // Back within 5 s: a request after the restart succeeds.
            let request = json!({"model": "gpt-test", "messages": [
                {"role": "user", "content": format!("{role} back")}]});
            loop {
                if chat(request.clone()).await.status() == 200 {
                    break;
                }
                assert!(
                    restarted.elapsed() < Duration::from_secs(5),
                    "{role} not back within 5 s of its restart"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::Relaxed);
            restarted.elapsed()
        };
        let (seen, back_after) = tokio::join!(load, faults);
        eprintln!(
            "{role}: killed and restarted; clients saw {} answers and errors {:?} (slowest {:?}); back {:?} after the restart",
            seen.ok, seen.errors, seen.slowest, back_after
        );
    }
}
