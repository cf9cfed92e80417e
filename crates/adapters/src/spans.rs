//! The adapters' span: one per provider call, the GenAI client span of the
//! OpenTelemetry semantic conventions, under the router's attempt span.
//! It carries the provider, the requested and answering models, the token
//! counts and the finish reasons; never the prompt or the answer. A
//! streamed call's span ends with the stream.

use switchyard_common::trace::{HopSpan, Opening, SpanKind};
use switchyard_proto::v1::{ChatChunk, FinishReason, Provider, RequestContext};

/// Opens the span of one `operation` (`chat`, `embeddings`) call, as the
/// child of the attempt span `context` names.
pub fn open(operation: &'static str, context: Option<&RequestContext>) -> HopSpan {
    let Some(context) = context else {
        return HopSpan::none();
    };
    HopSpan::follow_context(context, move || {
        Opening::new(operation, SpanKind::Client).with("gen_ai.operation.name", operation)
    })
}

/// Names the provider and model a call goes to. Not on an unsampled span:
/// the attempt span above it names them if it fails.
pub fn addressed(span: &HopSpan, operation: &'static str, provider: &Provider, model: &str) {
    if !span.is_sampled() {
        return;
    }
    span.rename(format!("{operation} {model}"));
    span.record("gen_ai.system", gen_ai_system(&provider.kind).to_owned());
    span.record("gen_ai.request.model", model.to_owned());
    span.record("switchyard.provider", provider.name.clone());
    if let Some(host) = reqwest::Url::parse(&provider.base_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
    {
        span.record("server.address", host);
    }
}

/// The `gen_ai.system` value of a provider kind, as the semantic
/// conventions name the well-known ones.
fn gen_ai_system(kind: &str) -> &str {
    match kind {
        "bedrock" => "aws.bedrock",
        "gemini" => "gcp.gemini",
        "vertex" => "gcp.vertex_ai",
        "azure" => "azure.ai.openai",
        "mistral" => "mistral_ai",
        other => other,
    }
}

/// What a streamed answer has shown so far, recorded on its span when it
/// ends.
#[derive(Debug, Default)]
pub struct Observed {
    model: Option<String>,
    finish_reasons: Vec<String>,
    tokens: Option<(u32, u32)>,
}

impl Observed {
    /// Notes what `chunk` says about the answer.
    pub fn chunk(&mut self, chunk: &ChatChunk) {
        if self.model.is_none() && !chunk.model.is_empty() {
            self.model = Some(chunk.model.clone());
        }
        if let Some(reason) = finish_reason(chunk.finish_reason) {
            self.finish_reasons.push(reason.to_owned());
        }
        if let Some(usage) = &chunk.usage {
            self.tokens = Some((usage.prompt_tokens, usage.completion_tokens));
        }
    }

    /// Records what was seen on `span`.
    pub fn record(self, span: &HopSpan) {
        if span.is_off() {
            return;
        }
        if let Some(model) = self.model {
            span.record("gen_ai.response.model", model);
        }
        if let Some((input, output)) = self.tokens {
            span.record("gen_ai.usage.input_tokens", i64::from(input));
            span.record("gen_ai.usage.output_tokens", i64::from(output));
        }
        span.record_strings("gen_ai.response.finish_reasons", self.finish_reasons);
    }
}

/// The OpenAI name of a finish reason; `None` when the chunk ends nothing.
fn finish_reason(value: i32) -> Option<&'static str> {
    match FinishReason::try_from(value).ok()? {
        FinishReason::Unspecified => None,
        FinishReason::Stop => Some("stop"),
        FinishReason::Length => Some("length"),
        FinishReason::ToolCalls => Some("tool_calls"),
        FinishReason::ContentFilter => Some("content_filter"),
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::Usage;

    use super::*;

    #[test]
    fn an_answer_shows_its_model_reasons_and_tokens() {
        let mut observed = Observed::default();
        observed.chunk(&ChatChunk {
            model: "gpt-4o-mini-2024-07-18".to_owned(),
            content: "Hello".to_owned(),
            ..ChatChunk::default()
        });
        observed.chunk(&ChatChunk {
            finish_reason: FinishReason::Stop as i32,
            usage: Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 2,
                ..Usage::default()
            }),
            ..ChatChunk::default()
        });
        assert_eq!(observed.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(observed.finish_reasons, ["stop"]);
        assert_eq!(observed.tokens, Some((9, 2)));
        assert_eq!(gen_ai_system("bedrock"), "aws.bedrock");
        assert_eq!(gen_ai_system("openai"), "openai");
    }
}
