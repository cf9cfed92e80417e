//! The client of the control plane's snapshot service.

use switchyard_proto::v1::{
    GetSnapshotRequest, GetSnapshotResponse, RecordCredentialReadsRequest, WatchRequest,
    WatchResponse, control_plane_service_client::ControlPlaneServiceClient,
};
use tonic::{Status, codec::Streaming};

use crate::{GrpcChannel, channel::MAX_GRPC_MESSAGE_BYTES};

/// A client of the control plane: remote, or the server in this process.
#[derive(Clone)]
pub struct ControlPlaneClient {
    inner: ControlPlaneServiceClient<GrpcChannel>,
}

impl ControlPlaneClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self {
            inner: ControlPlaneServiceClient::new(channel)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        }
    }

    /// `ControlPlaneService.Watch`: the current snapshot, then every newer one.
    pub async fn watch(&self, message: WatchRequest) -> Result<Streaming<WatchResponse>, Status> {
        Ok(self.inner.clone().watch(message).await?.into_inner())
    }

    /// `ControlPlaneService.GetSnapshot`.
    pub async fn get_snapshot(
        &self,
        message: GetSnapshotRequest,
    ) -> Result<GetSnapshotResponse, Status> {
        Ok(self.inner.clone().get_snapshot(message).await?.into_inner())
    }

    /// `ControlPlaneService.RecordCredentialReads`.
    pub async fn record_credential_reads(
        &self,
        message: RecordCredentialReadsRequest,
    ) -> Result<(), Status> {
        self.inner.clone().record_credential_reads(message).await?;
        Ok(())
    }
}
