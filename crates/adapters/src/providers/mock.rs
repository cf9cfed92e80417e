//! The mock provider: a deterministic, network-free stand-in for demos and
//! tests. It is clearly labelled in every answer.
//!
//! - It answers `This is a mock response from Switchyard. You said: <text>`,
//!   where `<text>` is the last user message's text parts joined with a space
//!   (`(nothing)` when there is no user message).
//! - Streamed, the answer comes one word per chunk (spaces kept, so the
//!   pieces concatenate to the whole text), then a chunk with finish reason
//!   `stop`, then a usage-only chunk.
//! - Usage counts whitespace-separated words: the prompt's over all
//!   messages, the completion's over the answer.
//! - A last user message of exactly `mock:error:<class>` (a class name such
//!   as `rate_limited`, `timeout` or `context_length_exceeded`) fails the
//!   attempt with that error class, to exercise error paths. `rate_limited`
//!   and `overloaded` carry a one-second retry-after.

mod embeddings;

use std::time::Duration;

use futures::StreamExt;
use switchyard_common::{ErrorClass, ServiceError};
use switchyard_proto::v1::{
    ChatChunk, ChatRequest, FinishReason, Message, Role, Usage, content_part::Part,
};

pub use self::embeddings::embed;
use crate::provider::{Attempt, ChunkStream};

/// Prefix of a user message that makes the mock fail with an error class.
pub const ERROR_TRIGGER_PREFIX: &str = "mock:error:";

/// Answers an attempt without any network.
pub fn chat(attempt: &Attempt) -> Result<ChunkStream, ServiceError> {
    let request = &attempt.request;
    let said = last_user_text(request);
    if let Some(class_name) = said
        .as_deref()
        .and_then(|text| text.strip_prefix(ERROR_TRIGGER_PREFIX))
    {
        return Err(triggered_error(&attempt.provider, class_name));
    }
    let reply = format!(
        "This is a mock response from Switchyard. You said: {}",
        said.as_deref().unwrap_or("(nothing)")
    );
    let prompt_tokens = request.messages.iter().map(message_words).sum::<usize>();
    let completion_tokens = reply.split_whitespace().count();
    let usage = Usage {
        prompt_tokens: saturating_u32(prompt_tokens),
        completion_tokens: saturating_u32(completion_tokens),
        total_tokens: saturating_u32(prompt_tokens + completion_tokens),
        ..Usage::default()
    };
    let model = attempt.upstream_model.clone();
    let chunks = if request.stream {
        streamed_chunks(&reply, model, usage)
    } else {
        vec![ChatChunk {
            role: Role::Assistant as i32,
            content: reply,
            finish_reason: FinishReason::Stop as i32,
            usage: Some(usage),
            model,
            ..ChatChunk::default()
        }]
    };
    Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
}

fn streamed_chunks(reply: &str, model: String, usage: Usage) -> Vec<ChatChunk> {
    let mut chunks: Vec<ChatChunk> = reply
        .split_inclusive(' ')
        .map(|word| ChatChunk {
            content: word.to_owned(),
            ..ChatChunk::default()
        })
        .collect();
    if let Some(first) = chunks.first_mut() {
        first.role = Role::Assistant as i32;
        first.model = model;
    }
    chunks.push(ChatChunk {
        finish_reason: FinishReason::Stop as i32,
        ..ChatChunk::default()
    });
    chunks.push(ChatChunk {
        usage: Some(usage),
        ..ChatChunk::default()
    });
    chunks
}

fn last_user_text(request: &ChatRequest) -> Option<String> {
    let message = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role() == Role::User)?;
    Some(texts(message).collect::<Vec<_>>().join(" "))
}

fn texts(message: &Message) -> impl Iterator<Item = &str> {
    message.content.iter().filter_map(|part| match &part.part {
        Some(Part::Text(text)) => Some(text.as_str()),
        _ => None,
    })
}

fn message_words(message: &Message) -> usize {
    texts(message)
        .map(|text| text.split_whitespace().count())
        .sum()
}

fn saturating_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn triggered_error(provider: &str, class_name: &str) -> ServiceError {
    let Some(class) = ErrorClass::from_name(class_name) else {
        return ServiceError::invalid_request(format!(
            "mock provider: unknown error class `{class_name}` after `{ERROR_TRIGGER_PREFIX}`"
        ))
        .with_provider(provider);
    };
    let error = ServiceError::new(
        class,
        format!("mock provider: `{class}` error triggered by `{ERROR_TRIGGER_PREFIX}{class}`"),
    )
    .with_provider(provider);
    match class {
        ErrorClass::RateLimited | ErrorClass::Overloaded => {
            error.with_retry_after(Duration::from_secs(1))
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::ContentPart;

    use super::*;

    fn user(text: &str) -> Message {
        Message {
            role: Role::User as i32,
            content: vec![ContentPart {
                part: Some(Part::Text(text.to_owned())),
            }],
            content_is_text: true,
            ..Message::default()
        }
    }

    #[test]
    fn stream_pieces_concatenate_to_the_reply() {
        let reply = "This is a mock response";
        let chunks = streamed_chunks(reply, "m".to_owned(), Usage::default());
        let text: String = chunks.iter().map(|chunk| chunk.content.as_str()).collect();
        assert_eq!(text, reply);
        assert_eq!(chunks.len(), 5 + 2);
        assert_eq!(chunks[0].content, "This ");
        assert_eq!(chunks[5].finish_reason(), FinishReason::Stop);
        assert!(chunks[6].usage.is_some());
    }

    #[test]
    fn last_user_message_is_quoted_and_missing_one_is_nothing() {
        let request = ChatRequest {
            messages: vec![user("first"), user("second one")],
            ..ChatRequest::default()
        };
        assert_eq!(last_user_text(&request).as_deref(), Some("second one"));
        assert_eq!(last_user_text(&ChatRequest::default()), None);
    }

    #[test]
    fn unknown_trigger_class_is_an_invalid_request() {
        assert_eq!(
            triggered_error("p", "nope").class,
            ErrorClass::InvalidRequest
        );
        let error = triggered_error("p", "rate_limited");
        assert_eq!(error.class, ErrorClass::RateLimited);
        assert_eq!(error.retry_after, Some(Duration::from_secs(1)));
    }
}
