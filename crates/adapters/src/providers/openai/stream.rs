//! A streamed OpenAI answer: server-sent `chat.completion.chunk` events
//! translated to canonical chunks as they arrive.

use std::collections::VecDeque;

use futures::StreamExt;
use switchyard_common::{Secret, ServiceError};
use switchyard_proto::v1::{ChatChunk, FinishReason, Usage};

use super::response::StreamChunk;
use crate::{
    classify::{self, UpstreamErrorDetail},
    http::{BodyReader, EventReader},
    provider::ChunkStream,
    sse::SseEvent,
};

/// Returns the canonical chunks of a streamed response body.
pub fn chunks(provider: &str, body: BodyReader, api_key: Option<Secret>) -> ChunkStream {
    let state = StreamState {
        provider: provider.to_owned(),
        api_key,
        events: body.into_events(),
        pending: VecDeque::new(),
        ended: false,
        finished_a_choice: false,
        reported: Reported::default(),
        usage: None,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
    .boxed()
}

struct StreamState {
    provider: String,
    /// Kept to scrub provider messages that might echo it.
    api_key: Option<Secret>,
    events: EventReader,
    /// Chunks translated from the last event, not yet yielded.
    pending: VecDeque<ChatChunk>,
    /// Nothing more is read once the stream ended, normally or not.
    ended: bool,
    /// Whether any choice reported a finish reason (tells a clean end
    /// without `[DONE]` from a truncated stream).
    finished_a_choice: bool,
    reported: Reported,
    /// Usage seen on choice chunks (some servers send it on every chunk),
    /// yielded once at the end unless a usage-only chunk came.
    usage: Option<Usage>,
}

/// Which response-level fields were already passed on: each goes out once,
/// on the first chunk after the provider reports it.
#[derive(Default)]
struct Reported {
    model: bool,
    id: bool,
    fingerprint: bool,
}

impl StreamState {
    async fn next(&mut self) -> Option<Result<ChatChunk, ServiceError>> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(Ok(chunk));
            }
            if self.ended {
                return None;
            }
            match self.events.next().await {
                Ok(Some(event)) => {
                    if let Err(error) = self.handle(&event) {
                        self.ended = true;
                        return Some(Err(error));
                    }
                }
                Ok(None) => {
                    self.ended = true;
                    if !self.finished_a_choice {
                        return Some(Err(classify::malformed_response(
                            &self.provider,
                            "a stream that ended before the answer was complete",
                        )));
                    }
                    self.flush_usage();
                }
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            }
        }
    }

    fn handle(&mut self, event: &SseEvent) -> Result<(), ServiceError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.ended = true;
            self.flush_usage();
            return Ok(());
        }
        let chunk: StreamChunk<'_> = serde_json::from_str(data).map_err(|_| {
            classify::malformed_response(&self.provider, "a stream event that is not valid JSON")
        })?;
        if let Some(error) = chunk.error {
            return Err(classify::in_band_error(
                &self.provider,
                &error.into_detail(),
                self.api_key.as_ref(),
            ));
        }
        let (groq_usage, groq_error) = chunk
            .x_groq
            .map(|x_groq| (x_groq.usage, x_groq.error))
            .unwrap_or_default();
        if let Some(message) = groq_error {
            let detail = UpstreamErrorDetail {
                message: Some(message),
                ..UpstreamErrorDetail::default()
            };
            return Err(classify::in_band_error(
                &self.provider,
                &detail,
                self.api_key.as_ref(),
            ));
        }
        if event.event.as_deref() == Some("error") {
            return Err(classify::malformed_response(
                &self.provider,
                "an error event",
            ));
        }
        let usage = chunk.usage.or(groq_usage).map(|usage| usage.into_usage());
        if chunk.choices.is_empty() {
            if let Some(usage) = usage {
                self.usage = None;
                self.pending.push_back(ChatChunk {
                    usage: Some(usage),
                    ..ChatChunk::default()
                });
            }
        } else if usage.is_some() {
            self.usage = usage;
        }
        for choice in chunk.choices {
            let translated = choice.into_chunk();
            if translated.finish_reason() != FinishReason::Unspecified {
                self.finished_a_choice = true;
            }
            // Deltas that carry nothing canonical (Azure's late content
            // filter results, DeepSeek's `reasoning_content`) are not passed on.
            if translated
                != (ChatChunk {
                    index: translated.index,
                    ..ChatChunk::default()
                })
            {
                self.pending.push_back(translated);
            }
        }
        // Response-level fields ride on the first chunk of this event.
        if let Some(first) = self.pending.front_mut() {
            report_once(&mut self.reported.model, &mut first.model, chunk.model);
            report_once(
                &mut self.reported.id,
                &mut first.provider_response_id,
                chunk.id,
            );
            report_once(
                &mut self.reported.fingerprint,
                &mut first.system_fingerprint,
                chunk.system_fingerprint,
            );
        }
        Ok(())
    }

    /// Queues usage seen only on choice chunks as a final usage-only chunk.
    fn flush_usage(&mut self) {
        if let Some(usage) = self.usage.take() {
            self.pending.push_back(ChatChunk {
                usage: Some(usage),
                ..ChatChunk::default()
            });
        }
    }
}

fn report_once(reported: &mut bool, field: &mut String, value: Option<std::borrow::Cow<'_, str>>) {
    if *reported {
        return;
    }
    if let Some(value) = value.filter(|value| !value.is_empty()) {
        *field = value.into_owned();
        *reported = true;
    }
}
