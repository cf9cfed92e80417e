//! Distributed mode: every internal gRPC server refuses calls that carry no
//! accepted service credential, so nothing that merely reaches a port can
//! claim a key, forge usage or read the adapters' snapshot.

use switchyard_common::auth::ServiceRole;
use switchyard_common::service_auth::default_token_variable;
use switchyard_proto::v1::{
    AdapterChatRequest, GetSnapshotRequest, LookupRequest, RecordRequest, RouterChatRequest,
    SnapshotAudience, adapter_service_client::AdapterServiceClient,
    cache_service_client::CacheServiceClient,
    control_plane_service_client::ControlPlaneServiceClient,
    ledger_service_client::LedgerServiceClient, router_service_client::RouterServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::MetadataValue,
    transport::{Channel, Endpoint},
};

use crate::cluster::{Backends, Mode, TestCluster};

/// A call to `role`'s server, with `token` if any.
async fn call(channel: Channel, role: &str, token: Option<&str>) -> Result<(), Status> {
    fn request<T>(message: T, token: Option<&str>) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = token {
            let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ASCII");
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
    match role {
        "router" => RouterServiceClient::new(channel)
            .chat(request(RouterChatRequest::default(), token))
            .await
            .map(drop),
        "adapter" => AdapterServiceClient::new(channel)
            .chat(request(AdapterChatRequest::default(), token))
            .await
            .map(drop),
        "cache" => CacheServiceClient::new(channel)
            .lookup(request(LookupRequest::default(), token))
            .await
            .map(drop),
        "ledger" => LedgerServiceClient::new(channel)
            .record(request(RecordRequest::default(), token))
            .await
            .map(drop),
        "control-plane" => ControlPlaneServiceClient::new(channel)
            .get_snapshot(request(
                GetSnapshotRequest {
                    audience: SnapshotAudience::Adapter as i32,
                },
                token,
            ))
            .await
            .map(drop),
        other => panic!("no gRPC server for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_internal_service_refuses_calls_without_service_credentials() {
    let Some(cluster) = TestCluster::start(Mode::Distributed, Backends::Embedded).await else {
        return;
    };
    let processes = cluster.processes().expect("distributed");
    let token =
        |role: ServiceRole| processes.service_tokens[&default_token_variable(role)].as_str();
    let servers = ["router", "adapter", "cache", "ledger", "control-plane"];
    for role in servers {
        let address = &processes.addresses[role];
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .expect("address")
            .connect_lazy();
        let missing = call(channel.clone(), role, None).await.expect_err(role);
        assert_eq!(missing.code(), Code::Unauthenticated, "{role}: {missing:?}");
        let guessed = call(channel.clone(), role, Some("a-guessed-token-0000"))
            .await
            .expect_err(role);
        assert_eq!(guessed.code(), Code::Unauthenticated, "{role}: {guessed:?}");
        // A real token of a role this service does not serve is refused too:
        // the adapters' credentials open only the control plane.
        let other = call(channel.clone(), role, Some(token(ServiceRole::Adapter))).await;
        if role == "control-plane" {
            other.expect("the adapters watch the control plane");
        } else {
            let denied = other.expect_err(role);
            assert_eq!(denied.code(), Code::PermissionDenied, "{role}: {denied:?}");
        }
    }
    // The router's own credential reaches the ledger (an empty batch).
    let ledger = Endpoint::from_shared(format!("http://{}", processes.addresses["ledger"]))
        .expect("address")
        .connect_lazy();
    call(ledger, "ledger", Some(token(ServiceRole::Router)))
        .await
        .expect("the router may record usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_serves_the_view_of_the_role_a_caller_proved() {
    let Some(cluster) = TestCluster::start(Mode::Distributed, Backends::Embedded).await else {
        return;
    };
    let processes = cluster.processes().expect("distributed");
    let address = &processes.addresses["control-plane"];
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .expect("address")
        .connect_lazy();
    // The edge asks for the adapters' view, with provider endpoints and
    // credential references; it gets its own, which has neither.
    let token = &processes.service_tokens[&default_token_variable(ServiceRole::Edge)];
    let mut request = Request::new(GetSnapshotRequest {
        audience: SnapshotAudience::Adapter as i32,
    });
    let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("ASCII");
    request.metadata_mut().insert("authorization", value);
    let snapshot = ControlPlaneServiceClient::new(channel)
        .get_snapshot(request)
        .await
        .expect("the edge may read its view")
        .into_inner()
        .snapshot
        .expect("a snapshot");
    assert!(snapshot.providers.is_empty(), "no provider endpoints");
    assert!(!snapshot.api_keys.is_empty(), "the edge's keys");
    assert_eq!(snapshot.audience, SnapshotAudience::Edge as i32);
}
