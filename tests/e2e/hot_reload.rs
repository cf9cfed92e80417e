//! Config changes while requests flow: every request is served by one
//! snapshot from start to settlement, none fails during a swap, and the data
//! path keeps serving while the control plane is down.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use serde_json::json;
use switchyard_proto::v1::{
    ApiKey, ConfigObject, CreateKeyRequest, CreateObjectRequest, Deployment, FallbackStrategy,
    GetObjectRequest, ListObjectsRequest, Money, ObjectKind, Pricing, Route, UpdateObjectRequest,
    admin_service_client::AdminServiceClient, config_object::Object, route::Strategy,
};
use tonic::transport::Channel;

use crate::{
    cluster::{Backends, Mode, TestCluster},
    control::ctl,
    ledger::wait_for_usage_rows,
};

/// Config changes made while the load runs.
const CHANGES: i64 = 50;
/// Requests in flight at once.
const CONCURRENCY: usize = 4;

/// An admin API client and the token its requests carry.
struct Admin {
    client: AdminServiceClient<Channel>,
    token: String,
}

impl Admin {
    async fn connect(cluster: &TestCluster) -> Self {
        let channel = tonic::transport::Endpoint::from_shared(cluster.admin_api_url().to_owned())
            .expect("a URL")
            .connect()
            .await
            .expect("the admin listener answers");
        let client = AdminServiceClient::new(channel);
        Self {
            client,
            token: cluster.admin_token.clone(),
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().expect("ascii"),
        );
        request
    }

    /// The config version now.
    async fn version(&mut self) -> u64 {
        let request = self.request(ListObjectsRequest {
            kind: ObjectKind::Team as i32,
        });
        self.client
            .list(request)
            .await
            .expect("list")
            .into_inner()
            .version
    }
}

/// A deployment at the fake OpenAI provider, its prompt tokens at `dollars`
/// per million and its completion tokens free.
fn priced_deployment(dollars: i64, revision: u64) -> ConfigObject {
    let usd = |nanos| Money {
        nanos,
        currency: "USD".to_owned(),
    };
    ConfigObject {
        object: Some(Object::Deployment(Deployment {
            id: "hot-deployment".to_owned(),
            provider: "fake-openai".to_owned(),
            upstream_model: "gpt-4o-mini".to_owned(),
            pricing: Some(Pricing {
                input_per_million: Some(usd(dollars * 1_000_000_000)),
                output_per_million: Some(usd(0)),
                ..Pricing::default()
            }),
            meta: Some(switchyard_proto::v1::ObjectMeta { owner: 0, revision }),
            ..Deployment::default()
        })),
    }
}

/// Requests flow while the deployment's price changes 50 times: none fails,
/// and each is costed at the price of the snapshot version its usage event
/// records, so planning and settling saw one snapshot.
pub async fn fifty_config_changes_under_load_fail_no_request_and_split_none(cluster: &TestCluster) {
    let mut admin = Admin::connect(cluster).await;
    let request = admin.request(CreateObjectRequest {
        object: Some(priced_deployment(1, 0)),
    });
    admin.client.create(request).await.expect("deployment");
    let request = admin.request(CreateObjectRequest {
        object: Some(ConfigObject {
            object: Some(Object::Route(Route {
                name: "hot-route".to_owned(),
                strategy: Some(Strategy::Fallback(FallbackStrategy {
                    deployments: vec!["hot-deployment".to_owned()],
                })),
                ..Route::default()
            })),
        }),
    });
    admin.client.create(request).await.expect("route");
    let request = admin.request(CreateKeyRequest {
        key: Some(ApiKey {
            id: "hot-key".to_owned(),
            team_id: cluster.team.clone(),
            allowed_models: vec!["hot-route".to_owned()],
            ..ApiKey::default()
        }),
    });
    let key = admin
        .client
        .create_key(request)
        .await
        .expect("key")
        .into_inner()
        .secret;
    let mut prices = BTreeMap::from([(admin.version().await, 1_i64)]);

    let url = format!("{}/v1/chat/completions", cluster.base_url);
    let sent = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let send = |number: usize| {
        let request = cluster.http.post(&url).bearer_auth(&key).json(&json!({
            "model": "hot-route",
            "messages": [{"role": "user", "content": format!("hot reload {number}")}]
        }));
        async move { request.send().await.expect("the edge answers").status() }
    };
    // The key and route reach the edge and router.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let number = sent.fetch_add(1, Ordering::Relaxed);
        if send(number).await == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new route never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failures_before_load = sent.load(Ordering::Relaxed) - 1;

    let worker = || async {
        let mut failed = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let number = sent.fetch_add(1, Ordering::Relaxed);
            let status = send(number).await;
            if status != 200 {
                failed.push(status);
            }
        }
        failed
    };
    let changes = async {
        for dollars in 2..=CHANGES + 1 {
            let request = admin.request(GetObjectRequest {
                kind: ObjectKind::Deployment as i32,
                id: "hot-deployment".to_owned(),
            });
            let current = admin.client.get(request).await.expect("get").into_inner();
            let Some(Object::Deployment(current)) = current.object else {
                panic!("a deployment");
            };
            let revision = current.meta.expect("meta").revision;
            let request = admin.request(UpdateObjectRequest {
                object: Some(priced_deployment(dollars, revision)),
            });
            admin.client.update(request).await.expect("update");
            prices.insert(admin.version().await, dollars);
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        stop.store(true, Ordering::Relaxed);
    };
    let (failed, ()) = tokio::join!(
        futures::future::join_all((0..CONCURRENCY).map(|_| worker())),
        changes
    );
    let failed: Vec<_> = failed.into_iter().flatten().collect();
    assert!(
        failed.is_empty(),
        "requests failed during swaps: {failed:?}"
    );

    let answered = sent.load(Ordering::Relaxed) - failures_before_load;
    let rows: Vec<_> = wait_for_usage_rows(cluster, answered)
        .await
        .into_iter()
        .filter(|row| row.route_id == "hot-route")
        .collect();
    assert_eq!(rows.len(), answered);
    let mut versions_seen = std::collections::BTreeSet::new();
    for row in &rows {
        let version = u64::try_from(row.snapshot_version).expect("a version");
        // The price in force at that version: the newest change at or below it.
        let dollars = prices
            .range(..=version)
            .next_back()
            .map(|(_, dollars)| *dollars)
            .expect("a version at or after the route was created");
        assert_eq!(
            row.cost_nanos,
            row.prompt_tokens * dollars * 1000,
            "request {} at version {version} was costed at another snapshot's price",
            row.request_id
        );
        versions_seen.insert(version);
    }
    assert!(
        versions_seen.len() > 5,
        "the load spanned the changes: {versions_seen:?}"
    );
}

/// The control plane is killed while requests flow: none fails; changes are
/// refused while it is down (exit 5) and take effect after it restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_path_keeps_serving_while_the_control_plane_is_down() {
    let Some(mut cluster) = TestCluster::start(Mode::Distributed, Backends::Embedded).await else {
        return;
    };
    let url = format!("{}/v1/chat/completions", cluster.base_url);
    let (http, key) = (cluster.http.clone(), cluster.api_key.clone());
    let stop = AtomicBool::new(false);
    let counter = AtomicUsize::new(0);
    let load = async {
        let mut statuses = BTreeMap::<u16, usize>::new();
        while !stop.load(Ordering::Relaxed) {
            let number = counter.fetch_add(1, Ordering::Relaxed);
            let status = http
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({"model": "gpt-test", "messages": [
                    {"role": "user", "content": format!("control plane down {number}")}]}))
                .send()
                .await
                .expect("the edge answers")
                .status()
                .as_u16();
            *statuses.entry(status).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        statuses
    };
    let faults = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let processes = cluster.processes_mut().expect("distributed");
        processes.kill("control-plane").await.expect("killed");
        tokio::time::sleep(Duration::from_millis(800)).await;
        stop.store(true, Ordering::Relaxed);
    };
    let (statuses, ()) = tokio::join!(load, faults);
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "every request was served with the control plane down: {statuses:?}"
    );

    let refused = ctl(&cluster, &["keys", "create", "--team", &cluster.team]).await;
    assert_eq!(refused.code, 5, "{}", refused.stderr);

    cluster
        .processes_mut()
        .expect("distributed")
        .restart("control-plane")
        .await
        .expect("restarted");
    let created = ctl(&cluster, &["keys", "create", "--team", &cluster.team]).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let secret = created.stdout.trim().to_owned();
    // The edge reconnects (with backoff) and learns the new key.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = http
            .post(&url)
            .bearer_auth(&secret)
            .json(
                &json!({"model": "gpt-test", "messages": [{"role": "user", "content": "new key"}]}),
            )
            .send()
            .await
            .expect("the edge answers")
            .status();
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "changes did not resume after the restart ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
