//! Clients of the router's two stores: the response cache and the ledger.
//! The cache client runs over a [`GrpcChannel`] (remote, or the server in
//! this process). The ledger client is remote, or calls an in-process ledger
//! directly: a usage batch is the largest message the router sends, and
//! encoding it, decoding it and copying it for a possible retry cost more
//! than the ledger's write itself (BENCHMARKS.md).

use std::sync::Arc;

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

/// `LedgerService.Record` made directly on an in-process ledger. The batch
/// is borrowed, so a retry sends it again without copying it.
#[tonic::async_trait]
pub trait DirectLedger: Send + Sync + 'static {
    /// Records every event of `request`, or none of them.
    async fn record(&self, request: &RecordRequest) -> Result<RecordResponse, Status>;
}

/// A client of the usage ledger: remote over gRPC, or direct in-process.
#[derive(Clone)]
pub enum LedgerClient {
    /// Over a [`GrpcChannel`].
    Remote(LedgerServiceClient<GrpcChannel>),
    /// Calls on the ledger in this process.
    Direct(Arc<dyn DirectLedger>),
}

impl LedgerClient {
    /// A client over `channel`.
    pub fn remote(channel: GrpcChannel) -> Self {
        Self::Remote(
            LedgerServiceClient::new(channel)
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
        )
    }

    /// A client calling `ledger` directly.
    pub fn direct<T: DirectLedger>(ledger: Arc<T>) -> Self {
        Self::Direct(ledger)
    }

    /// `LedgerService.Record`: a batch of events from many requests, so it
    /// carries no single request's context.
    pub async fn record(&self, message: &RecordRequest) -> Result<RecordResponse, Status> {
        match self {
            Self::Remote(client) => Ok(client.clone().record(message.clone()).await?.into_inner()),
            Self::Direct(ledger) => ledger.record(message).await,
        }
    }
}
