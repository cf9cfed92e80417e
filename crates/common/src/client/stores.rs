//! Clients of the router's two stores: the response cache and the ledger.
//! They run over a [`GrpcChannel`]: remote, or the server in this process.

use switchyard_proto::v1::{
    LookupRequest, LookupResponse, RecordRequest, RecordResponse, StoreRequest, StoreResponse,
    cache_service_client::CacheServiceClient, ledger_service_client::LedgerServiceClient,
};
use tonic::Status;

use super::outbound;
use crate::{GrpcChannel, channel::MAX_GRPC_MESSAGE_BYTES};

/// A client of the response cache.
#[derive(Clone)]
pub struct CacheClient {
    inner: CacheServiceClient<GrpcChannel>,
}

impl CacheClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self {
            inner: CacheServiceClient::new(channel)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        }
    }

    /// `CacheService.Lookup`.
    pub async fn lookup(&self, message: LookupRequest) -> Result<LookupResponse, Status> {
        let mut client = self.inner.clone();
        outbound::call(message, |request| async move {
            Ok(client.lookup(request).await?.into_inner())
        })
        .await
    }

    /// `CacheService.Store`.
    pub async fn store(&self, message: StoreRequest) -> Result<StoreResponse, Status> {
        let mut client = self.inner.clone();
        outbound::call(message, |request| async move {
            Ok(client.store(request).await?.into_inner())
        })
        .await
    }
}

/// A client of the usage ledger.
#[derive(Clone)]
pub struct LedgerClient {
    inner: LedgerServiceClient<GrpcChannel>,
}

impl LedgerClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self {
            inner: LedgerServiceClient::new(channel)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        }
    }

    /// `LedgerService.Record`: a batch of events from many requests, so it
    /// carries no single request's context.
    pub async fn record(&self, message: RecordRequest) -> Result<RecordResponse, Status> {
        Ok(self.inner.clone().record(message).await?.into_inner())
    }
}
