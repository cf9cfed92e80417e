//! What the caller sets reaches the service the same way whether it runs
//! in this process (direct) or behind a socket (remote, authenticated).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use switchyard_proto::v1::{
    AdapterChatRequest, AdapterChatResponse, AdapterEmbedRequest, AdapterEmbedResponse,
    RequestContext,
    adapter_service_client::AdapterServiceClient,
    adapter_service_server::{AdapterService, AdapterServiceServer},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status, service::Routes};

use super::{AdapterClient, outbound};
use crate::{
    GrpcChannel,
    auth::{CallerRole, ServiceRole},
    grpc::serve_grpc,
    secret::Secret,
    service_auth::{CallerVerifier, ServiceCredential},
};

/// What the service saw of one call.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// From the message's `RequestContext`, which the service reads.
    request_id: String,
    traceparent: String,
    deadline_unix_ms: u64,
    /// From gRPC metadata, which layers in front of a remote service read.
    wire_request_id: Option<String>,
    wire_traceparent: Option<String>,
    caller: Option<ServiceRole>,
}

/// An adapter service that records what each call carried, and answers
/// `slow` requests only after a long wait.
#[derive(Default)]
struct RecordingAdapter {
    seen: Mutex<Vec<Seen>>,
}

#[tonic::async_trait]
impl AdapterService for RecordingAdapter {
    type ChatStream =
        futures::stream::Iter<std::vec::IntoIter<Result<AdapterChatResponse, Status>>>;

    async fn chat(
        &self,
        request: Request<AdapterChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let context = request.get_ref().context.clone().unwrap_or_default();
        let seen = Seen {
            request_id: context.request_id,
            traceparent: context.traceparent,
            deadline_unix_ms: context.deadline_unix_ms,
            wire_request_id: outbound::request_id(&request).map(str::to_owned),
            wire_traceparent: outbound::traceparent(&request).map(str::to_owned),
            caller: request.extensions().get::<CallerRole>().map(|role| role.0),
        };
        self.seen.lock().expect("not poisoned").push(seen);
        if request.get_ref().deployment_id == "slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let chunks = vec![Ok(AdapterChatResponse::default())];
        Ok(Response::new(futures::stream::iter(chunks)))
    }

    async fn embed(
        &self,
        _request: Request<AdapterEmbedRequest>,
    ) -> Result<Response<AdapterEmbedResponse>, Status> {
        Ok(Response::new(AdapterEmbedResponse::default()))
    }
}

fn secret(text: &str) -> Secret {
    Secret::new(text.to_owned())
}

fn router_token() -> Secret {
    secret("the-router-role-token")
}

/// The adapter served on a loopback port, accepting the router's token.
async fn serve_remote(service: Arc<RecordingAdapter>, shutdown: CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let callers = CallerVerifier::new(
        [(ServiceRole::Router, router_token())],
        [(ServiceRole::Edge, secret("the-edge-role-token"))],
    );
    let routes = Routes::new(AdapterServiceServer::from_arc(service));
    crate::task::spawn_detached(
        "the adapter under test, stopped by the token",
        serve_grpc(listener, routes, callers, shutdown),
    );
    url
}

fn unix_ms_in(ahead: Duration) -> u64 {
    let at = SystemTime::now() + ahead;
    u64::try_from(
        at.duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

fn chat(deployment: &str, deadline_unix_ms: u64) -> AdapterChatRequest {
    AdapterChatRequest {
        context: Some(RequestContext {
            request_id: "0190a5c8-7e1b-7000-8000-000000000001".to_owned(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
            deadline_unix_ms,
            ..RequestContext::default()
        }),
        deployment_id: deployment.to_owned(),
        ..AdapterChatRequest::default()
    }
}

async fn both_clients(shutdown: &CancellationToken) -> (Arc<RecordingAdapter>, [AdapterClient; 2]) {
    let service = Arc::new(RecordingAdapter::default());
    let url = serve_remote(service.clone(), shutdown.clone()).await;
    let credential = ServiceCredential::new(ServiceRole::Router, &router_token()).expect("valid");
    let remote = AdapterClient::remote(GrpcChannel::connect_lazy(&url, credential).expect("url"));
    let direct = AdapterClient::direct(service.clone());
    (service, [direct, remote])
}

#[tokio::test]
async fn request_id_trace_context_and_deadline_reach_the_service_in_both_modes() {
    let shutdown = CancellationToken::new();
    let (service, clients) = both_clients(&shutdown).await;
    let deadline = unix_ms_in(Duration::from_secs(60));
    for client in &clients {
        let _answer = client.chat(chat("fast", deadline)).await.expect("answered");
    }
    let seen = service.seen.lock().expect("not poisoned").clone();
    let request_id = "0190a5c8-7e1b-7000-8000-000000000001";
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let direct = Seen {
        request_id: request_id.to_owned(),
        traceparent: traceparent.to_owned(),
        deadline_unix_ms: deadline,
        // A direct call has no wire and no layers in front of the service.
        wire_request_id: None,
        wire_traceparent: None,
        // In-process calls prove no role.
        caller: None,
    };
    let remote = Seen {
        wire_request_id: Some(request_id.to_owned()),
        wire_traceparent: Some(traceparent.to_owned()),
        caller: Some(ServiceRole::Router),
        ..direct.clone()
    };
    assert_eq!(seen, [direct, remote]);
    shutdown.cancel();
}

#[tokio::test]
async fn a_remote_call_still_waiting_after_the_deadline_fails_as_a_timeout() {
    // A remote callee may hang on a broken network; an in-process one is our
    // own code and enforces the deadline itself (the e2e deadline scenario).
    let shutdown = CancellationToken::new();
    let (_service, [_direct, remote]) = both_clients(&shutdown).await;
    {
        let client = &remote;
        let started = Instant::now();
        let error = client
            .chat(chat("slow", unix_ms_in(Duration::from_millis(300))))
            .await
            .err()
            .expect("deadline passed");
        assert_eq!(error.code(), Code::DeadlineExceeded);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "bounded by the deadline"
        );
    }
    shutdown.cancel();
}

#[tokio::test]
async fn the_remote_service_refuses_calls_without_an_accepted_token() {
    let shutdown = CancellationToken::new();
    let url = serve_remote(Arc::new(RecordingAdapter::default()), shutdown.clone()).await;
    let bare = tonic::transport::Endpoint::from_shared(url.clone())
        .expect("url")
        .connect_lazy();
    let error = AdapterServiceClient::new(bare)
        .chat(chat("fast", 0))
        .await
        .expect_err("no credentials");
    assert_eq!(error.code(), Code::Unauthenticated);
    let edge =
        ServiceCredential::new(ServiceRole::Edge, &secret("the-edge-role-token")).expect("valid");
    let client = AdapterClient::remote(GrpcChannel::connect_lazy(&url, edge).expect("url"));
    let error = client
        .chat(chat("fast", 0))
        .await
        .err()
        .expect("the edge may not call adapters");
    assert_eq!(error.code(), Code::PermissionDenied);
    shutdown.cancel();
}

/// A kubelet's gRPC probe carries no credential: the health service answers
/// it. Reflection lists the contract's services, to callers only.
#[tokio::test]
async fn health_answers_any_probe_and_reflection_answers_callers() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let shutdown = CancellationToken::new();
    let url = serve_remote(Arc::new(RecordingAdapter::default()), shutdown.clone()).await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("a probe without a credential is answered")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let list_services = || {
        futures::stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }])
    };
    let refused = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(list_services())
        .await
        .expect_err("reflection needs a credential");
    assert_eq!(refused.code(), Code::Unauthenticated);

    let mut request = Request::new(list_services());
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", router_token().expose())
            .parse()
            .expect("ascii"),
    );
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(request)
        .await
        .expect("a caller may reflect")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("an answer")
        .expect("one message");
    let Some(MessageResponse::ListServicesResponse(listed)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = listed.service.iter().map(|s| s.name.as_str()).collect();
    for service in [
        "switchyard.v1.AdapterService",
        "switchyard.v1.RouterService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&service), "{names:?}");
    }
    shutdown.cancel();
}
