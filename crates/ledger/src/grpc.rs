//! [`LedgerGrpc`]: the `LedgerService` implementation.

use std::sync::Arc;

use switchyard_common::client::DirectLedger;
use switchyard_proto::v1::{RecordRequest, RecordResponse, ledger_service_server::LedgerService};
use tonic::{Request, Response, Status};

use crate::{
    error::{Error, Result},
    event::UsageRow,
    sink::UsageSink,
};

/// Most events one `Record` call may carry.
pub const MAX_EVENTS_PER_RECORD: usize = 10_000;

/// Serves `LedgerService` over a [`UsageSink`].
#[derive(Clone)]
pub struct LedgerGrpc {
    sink: Arc<dyn UsageSink>,
}

impl LedgerGrpc {
    /// Creates the service over `sink`.
    pub fn new(sink: Arc<dyn UsageSink>) -> Self {
        Self { sink }
    }

    /// Validates every event, then writes the batch in one insert. An invalid
    /// event rejects the whole batch before anything is written.
    async fn record_events(&self, request: &RecordRequest) -> Result<u32> {
        let count = request.events.len();
        if count > MAX_EVENTS_PER_RECORD {
            return Err(Error::BatchTooLarge {
                max: MAX_EVENTS_PER_RECORD,
                got: count,
            });
        }
        let rows = request
            .events
            .iter()
            .enumerate()
            .map(|(index, event)| UsageRow::from_event(index, event))
            .collect::<Result<Vec<_>>>()?;
        self.sink.insert(&rows).await?;
        u32::try_from(count).map_err(|_| Error::BatchTooLarge {
            max: MAX_EVENTS_PER_RECORD,
            got: count,
        })
    }
}

impl std::fmt::Debug for LedgerGrpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerGrpc")
            .field("sink", &self.sink.name())
            .finish()
    }
}

#[tonic::async_trait]
impl DirectLedger for LedgerGrpc {
    async fn record(&self, request: &RecordRequest) -> Result<RecordResponse, Status> {
        match self.record_events(request).await {
            Ok(accepted) => Ok(RecordResponse { accepted }),
            Err(error) => {
                let service_error = error.to_service_error();
                if service_error.class == switchyard_common::ErrorClass::InvalidRequest {
                    tracing::debug!(%error, "rejected a usage batch");
                } else {
                    tracing::error!(sink = self.sink.name(), %error, "failed to record usage events");
                }
                Err(service_error.to_status())
            }
        }
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerGrpc {
    async fn record(
        &self,
        request: Request<RecordRequest>,
    ) -> Result<Response<RecordResponse>, Status> {
        DirectLedger::record(self, request.get_ref())
            .await
            .map(Response::new)
    }
}
