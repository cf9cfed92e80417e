//! [`ControlPlaneGrpc`]: the `ControlPlaneService` implementation. Every
//! caller receives the view of its role ([`view_for`]).

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use switchyard_proto::v1::{
    GetSnapshotRequest, GetSnapshotResponse, RecordCredentialReadsRequest,
    RecordCredentialReadsResponse, SnapshotAudience, WatchRequest, WatchResponse,
    control_plane_service_server::ControlPlaneService,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    ConfigStore,
    audience::view_for,
    delta::{delta_view, since},
    snapshot::Published,
};

/// The audience a call is served: the role its service credential proved
/// when it crossed the network, else (in-process) the one it asked for.
fn audience_of<T>(request: &Request<T>, asked: i32) -> SnapshotAudience {
    if let Some(role) = request
        .extensions()
        .get::<switchyard_common::auth::CallerRole>()
    {
        return role.audience();
    }
    SnapshotAudience::try_from(asked).unwrap_or(SnapshotAudience::Unspecified)
}

/// Most credential reads one `RecordCredentialReads` call may report.
const MAX_CREDENTIAL_READS_PER_CALL: usize = 1000;

/// Serves the newest published snapshot to `GetSnapshot` and `Watch`
/// callers, and writes the credential reads adapters report to the audit log.
#[derive(Debug, Clone)]
pub struct ControlPlaneGrpc {
    snapshots: watch::Receiver<Arc<Published>>,
    store: ConfigStore,
    shutdown: CancellationToken,
}

impl ControlPlaneGrpc {
    /// Creates the service over the published snapshots and the `store`
    /// whose audit log credential reads go to; `Watch` streams end when
    /// `shutdown` is cancelled.
    pub(crate) fn new(
        snapshots: watch::Receiver<Arc<Published>>,
        store: ConfigStore,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            snapshots,
            store,
            shutdown,
        }
    }
}

/// The stream of `Watch` responses.
type WatchResponseStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ControlPlaneService for ControlPlaneGrpc {
    async fn get_snapshot(
        &self,
        request: Request<GetSnapshotRequest>,
    ) -> Result<Response<GetSnapshotResponse>, Status> {
        let audience = audience_of(&request, request.get_ref().audience);
        let published = self.snapshots.borrow().clone();
        Ok(Response::new(GetSnapshotResponse {
            snapshot: Some(view_for(&published.snapshot, audience)),
        }))
    }

    async fn record_credential_reads(
        &self,
        request: Request<RecordCredentialReadsRequest>,
    ) -> Result<Response<RecordCredentialReadsResponse>, Status> {
        // Only adapters decrypt credentials: another proven role has none
        // to report. In-process callers carry no role and are the adapters'.
        let audience = audience_of(&request, SnapshotAudience::Adapter as i32);
        if audience != SnapshotAudience::Adapter {
            return Err(Status::permission_denied(
                "only adapters report credential reads",
            ));
        }
        let reads = request.into_inner().reads;
        if reads.len() > MAX_CREDENTIAL_READS_PER_CALL {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_CREDENTIAL_READS_PER_CALL} reads per call"
            )));
        }
        self.store
            .record_credential_reads(&reads)
            .await
            .map_err(|error| {
                tracing::warn!(%error, reads = reads.len(), "credential reads not written to the audit log");
                Status::unavailable("the audit log could not be written; report again")
            })?;
        Ok(Response::new(RecordCredentialReadsResponse {}))
    }

    type WatchStream = WatchResponseStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let audience = audience_of(&request, request.get_ref().audience);
        let known_version = request.into_inner().known_version;
        let state = (self.snapshots.clone(), known_version, self.shutdown.clone());
        let stream = futures::stream::unfold(
            state,
            move |(mut snapshots, mut sent, shutdown)| async move {
                loop {
                    let published = snapshots.borrow_and_update().clone();
                    let current = published.snapshot.version;
                    if current != sent {
                        // The changes since the caller's version when they
                        // are still kept, else the whole view.
                        let delta = (sent != 0)
                            .then(|| since(&published.deltas, sent, current))
                            .flatten();
                        let response = match delta {
                            Some(delta) => WatchResponse {
                                snapshot: None,
                                delta: Some(delta_view(&delta, audience)),
                            },
                            None => WatchResponse {
                                snapshot: Some(view_for(&published.snapshot, audience)),
                                delta: None,
                            },
                        };
                        sent = current;
                        return Some((Ok(response), (snapshots, sent, shutdown)));
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        changed = snapshots.changed() => {
                            // An error means the publisher stopped: end the stream.
                            changed.ok()?;
                        }
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
