//! How long a provider took for one attempt, as the adapters measure it:
//! from sending the request to the first chunk and to the end of the
//! answer. The router sums it over attempts; the edge subtracts the sum
//! from the client's wait to report the gateway's own overhead.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt};
use switchyard_common::{ServiceError, trace::HopSpan};
use switchyard_proto::v1::{AdapterChatResponse, ChatChunk, UpstreamTiming};

use crate::{rate_limits::LimitReport, spans::Observed};

/// Whole microseconds of `duration`, saturating.
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The timing of an answer that arrived whole at `ended`.
pub(crate) fn whole(started: Instant) -> UpstreamTiming {
    let total = micros(started.elapsed());
    UpstreamTiming {
        first_chunk_micros: total,
        total_micros: total,
    }
}

/// An attempt's chunks as adapter messages, followed by one last message
/// with the attempt's [`UpstreamTiming`] when the answer ends (not after an
/// error: a failed attempt's time is measured by the router). The call's
/// span is held until then, and records what the answer showed, or its
/// error.
pub(crate) struct Timed<S> {
    chunks: S,
    started: Instant,
    first_chunk: Option<Instant>,
    done: bool,
    span: HopSpan,
    observed: Observed,
    /// The id of the provider key the attempt used, for the last message.
    credential: String,
    /// What the provider's rate-limit headers said, for the last message.
    limits: LimitReport,
}

impl<S> Timed<S> {
    /// Times `chunks`, an answer whose request was sent at `started` with
    /// the provider key `credential` (empty when it has one), under the
    /// call's `span`; the last message reports the provider's `limits`.
    pub(crate) fn new(
        chunks: S,
        started: Instant,
        span: HopSpan,
        credential: String,
        limits: LimitReport,
    ) -> Self {
        Self {
            chunks,
            started,
            first_chunk: None,
            done: false,
            span,
            observed: Observed::default(),
            credential,
            limits,
        }
    }

    /// Ends the call's span, recording what was seen.
    fn end_span(&mut self, error: Option<&ServiceError>) {
        let span = std::mem::replace(&mut self.span, HopSpan::none());
        if span.is_sampled() {
            std::mem::take(&mut self.observed).record(&span);
        }
        if let Some(error) = error {
            span.fail(error.class.as_str());
        }
    }
}

impl<S> Stream for Timed<S>
where
    S: Stream<Item = Result<ChatChunk, ServiceError>> + Unpin,
{
    type Item = Result<AdapterChatResponse, ServiceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match ready!(self.chunks.poll_next_unpin(cx)) {
            Some(Ok(chunk)) => {
                self.first_chunk.get_or_insert_with(Instant::now);
                if self.span.is_sampled() {
                    self.observed.chunk(&chunk);
                }
                Ok(AdapterChatResponse {
                    chunk: Some(chunk),
                    upstream: None,
                    credential: String::new(),
                    provider_exhausted_ms: 0,
                })
            }
            Some(Err(error)) => {
                self.done = true;
                self.end_span(Some(&error));
                Err(error)
            }
            None => {
                self.done = true;
                self.end_span(None);
                let total = self.started.elapsed();
                let first = self
                    .first_chunk
                    .map_or(total, |at| at.saturating_duration_since(self.started));
                Ok(AdapterChatResponse {
                    chunk: None,
                    upstream: Some(UpstreamTiming {
                        first_chunk_micros: micros(first),
                        total_micros: micros(total),
                    }),
                    credential: std::mem::take(&mut self.credential),
                    provider_exhausted_ms: self.limits.exhausted_ms(),
                })
            }
        };
        Poll::Ready(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    #[tokio::test]
    async fn the_timing_follows_the_last_chunk_and_never_an_error() {
        let chunks = stream::iter(vec![Ok(ChatChunk::default()), Ok(ChatChunk::default())]);
        let limits = LimitReport::default();
        limits.used_up_for(Duration::from_millis(1_500));
        let messages: Vec<_> = Timed::new(
            chunks,
            Instant::now(),
            HopSpan::none(),
            String::new(),
            limits,
        )
        .collect()
        .await;
        assert_eq!(messages.len(), 3);
        assert!(messages[..2].iter().all(|message| {
            message
                .as_ref()
                .is_ok_and(|m| m.chunk.is_some() && m.upstream.is_none())
        }));
        let last = messages[2].as_ref().expect("timing");
        let timing = last.upstream.expect("timing");
        assert!(last.chunk.is_none());
        assert!(timing.first_chunk_micros <= timing.total_micros);
        assert_eq!(
            last.provider_exhausted_ms, 1_500,
            "the provider's limits come last"
        );

        let failing = stream::iter(vec![
            Ok(ChatChunk::default()),
            Err(ServiceError::internal("cut")),
        ]);
        let messages: Vec<_> = Timed::new(
            failing,
            Instant::now(),
            HopSpan::none(),
            String::new(),
            LimitReport::default(),
        )
        .collect()
        .await;
        assert_eq!(messages.len(), 2);
        assert!(messages[1].is_err());
    }
}
