//! Shadow traffic: a route may copy a share of its requests to another
//! deployment, to evaluate a candidate model on live traffic. The copy
//! runs beside the request, is read to its end, and its answer is never
//! returned: it is recorded as an attempt of the request (reason
//! `shadow`, with its own usage, latency, outcome and cost), so the usage
//! event waits for it. When the client leaves early, the copy is cancelled
//! with the request and recorded as `cancelled`.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use switchyard_common::{ErrorClass, trace::HopSpan};
use switchyard_proto::v1::{AttemptTimeouts, ChatRequest, Deployment, RequestContext};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::attempt::{Adapters, AttemptRecord, open_record};

/// Whether a request is copied, at `percent` of 100.
pub fn picked(percent: u32) -> bool {
    // The random low bits of a version-7 UUID.
    let random = (uuid::Uuid::now_v7().as_u128() as u64) % 100;
    random < u64::from(percent)
}

/// A copy of a request on its way to the shadow deployment.
pub struct Shadow {
    running: JoinHandle<AttemptRecord>,
    cancel: CancellationToken,
}

/// What a shadow attempt needs.
pub struct Copy<'a> {
    /// The request's context (its deadline bounds the copy too).
    pub context: &'a RequestContext,
    /// The request's span, the copy's parent.
    pub parent: &'a HopSpan,
    /// Where the copy goes.
    pub deployment: Arc<Deployment>,
    /// The copy.
    pub request: ChatRequest,
    /// The copy's timeouts.
    pub timeouts: Option<AttemptTimeouts>,
    /// Its share of the shadow deployment's capacity, when it declares one.
    pub permit: Option<crate::capacity::Permit>,
}

impl Shadow {
    /// Sends `copy` on `tasks` (tracked: shutdown waits for it).
    pub fn start(
        copy: Copy<'_>,
        adapters: &Adapters,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let Copy {
            context,
            parent,
            deployment,
            request,
            timeouts,
            permit,
        } = copy;
        let (mut record, sent) = open_record(context, parent, &deployment, 0, "shadow");
        record.permit = permit.map(Arc::new);
        let cancel = CancellationToken::new();
        let cancelled = cancel.clone();
        let adapters = adapters.clone();
        let running = tasks.spawn(async move {
            let read = async {
                let open = adapters
                    .open_chat(sent, &deployment, request, timeouts)
                    .await
                    .map_err(|error| error.class)?;
                let mut messages = futures::stream::iter([Ok(open.first)]).chain(open.rest);
                while let Some(message) = messages.next().await {
                    let message = message.map_err(|status| {
                        switchyard_common::ServiceError::from_status(&status).class
                    })?;
                    record.first_chunk_at.get_or_insert_with(Instant::now);
                    match message.chunk {
                        Some(chunk) => {
                            if let Some(usage) = chunk.usage {
                                record.usage = usage;
                            }
                        }
                        None => {
                            record.upstream = message.upstream.or(record.upstream);
                            if !message.credential.is_empty() {
                                record.credential = message.credential;
                            }
                        }
                    }
                }
                Ok::<(), ErrorClass>(())
            };
            let outcome = tokio::select! {
                outcome = read => outcome,
                () = cancelled.cancelled() => Err(ErrorClass::Cancelled),
            };
            match outcome {
                Ok(()) => {
                    record.ended = Some(Instant::now());
                    record.span = HopSpan::none();
                }
                Err(class) => record.fail(class),
            }
            record
        });
        Self { running, cancel }
    }

    /// The copy's record once it ends; cancelled first when the request
    /// itself did not reach its end (the client left).
    pub async fn finish(self, completed: bool) -> Option<AttemptRecord> {
        if !completed {
            self.cancel.cancel();
        }
        self.running.await.ok()
    }
}
