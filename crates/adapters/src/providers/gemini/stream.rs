//! A streamed Gemini answer (`streamGenerateContent?alt=sse`): one
//! `data: <GenerateContentResponse>` event per increment, translated to
//! canonical chunks as it arrives. Gemini ends the stream by closing it
//! (there is no `[DONE]`); the usage of the last event that had one goes
//! out once, as a usage-only chunk, at the end.

use std::collections::VecDeque;

use futures::StreamExt;
use switchyard_common::{Secret, ServiceError};
use switchyard_proto::v1::ChatChunk;

use super::{
    response::{GenerateContentResponse, Translator},
    upstream_error,
};
use crate::{
    classify,
    http::{BodyReader, EventReader},
    provider::ChunkStream,
};

/// Returns the canonical chunks of a streamed response body.
pub fn chunks(provider: &str, body: BodyReader, api_key: Option<Secret>) -> ChunkStream {
    let state = StreamState {
        provider: provider.to_owned(),
        api_key,
        events: body.into_events(),
        translator: Translator::new(provider),
        pending: VecDeque::new(),
        ended: false,
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
    translator: Translator,
    /// Chunks translated from the last event, not yet yielded.
    pending: VecDeque<ChatChunk>,
    /// Nothing more is read once the stream ended, normally or not.
    ended: bool,
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
                    if let Err(error) = self.handle(&event.data) {
                        self.ended = true;
                        return Some(Err(error));
                    }
                }
                Ok(None) => {
                    self.ended = true;
                    if !self.translator.finished() {
                        return Some(Err(classify::malformed_response(
                            &self.provider,
                            "a stream that ended before the answer was complete",
                        )));
                    }
                    if let Some(usage) = self.translator.take_usage() {
                        self.pending.push_back(ChatChunk {
                            usage: Some(usage),
                            ..ChatChunk::default()
                        });
                    }
                }
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            }
        }
    }

    fn handle(&mut self, data: &str) -> Result<(), ServiceError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let mut response: GenerateContentResponse = serde_json::from_str(data).map_err(|_| {
            classify::malformed_response(&self.provider, "a stream event that is not valid JSON")
        })?;
        if let Some(error) = response.error.take() {
            return Err(upstream_error::in_band_error(
                &self.provider,
                error,
                self.api_key.as_ref(),
            ));
        }
        self.pending.extend(self.translator.translate(response)?);
        Ok(())
    }
}
