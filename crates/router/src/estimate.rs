//! [`Estimate`]: a request's expected size before it is sent, for the
//! cost strategy and the context-window check.
//!
//! Prompt tokens are estimated as one per four bytes of text plus four per
//! message (role and framing), and an image as 85 (OpenAI's low-detail
//! charge): close for English text on today's tokenizers (text in other
//! scripts takes more bytes and more tokens per character alike), O(1) per
//! message part, and deliberately simple, since the provider's count
//! settles the real cost.
//! Output is the request's `max_tokens`, else [`DEFAULT_OUTPUT_TOKENS`].

use switchyard_proto::v1::{ChatRequest, Deployment, EmbedRequest, content_part::Part};

/// Output tokens expected of a request that sets no `max_tokens`.
pub const DEFAULT_OUTPUT_TOKENS: u32 = 256;
/// Bytes of text per estimated token.
const BYTES_PER_TOKEN: usize = 4;
/// Tokens of framing per message.
const TOKENS_PER_MESSAGE: u32 = 4;
/// Tokens per image.
const TOKENS_PER_IMAGE: u32 = 85;

/// A request's expected size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
}

impl Estimate {
    /// Estimates a chat request.
    pub fn chat(request: &ChatRequest) -> Self {
        let mut text_bytes = 0_usize;
        let mut tokens = 0_u32;
        for message in &request.messages {
            tokens = tokens.saturating_add(TOKENS_PER_MESSAGE);
            for part in &message.content {
                match &part.part {
                    Some(Part::Text(text)) => text_bytes += text.len(),
                    Some(Part::ImageUrl(_)) => tokens = tokens.saturating_add(TOKENS_PER_IMAGE),
                    None => {}
                }
            }
            for call in &message.tool_calls {
                text_bytes += call.name.len() + call.arguments.len();
            }
        }
        for tool in &request.tools {
            if let Some(function) = &tool.function {
                text_bytes += function.name.len()
                    + function.description.len()
                    + function.parameters_json.len();
            }
        }
        let text_tokens = u32::try_from(text_bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX);
        Self {
            prompt_tokens: tokens.saturating_add(text_tokens),
            output_tokens: request.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS),
        }
    }

    /// Estimates an embeddings request (no output).
    pub fn embed(request: &EmbedRequest) -> Self {
        let text_bytes: usize = request.input.iter().map(String::len).sum();
        Self {
            prompt_tokens: u32::try_from(text_bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX),
            output_tokens: 0,
        }
    }

    /// The expected cost at `deployment`'s price, in nano-units (0 when it
    /// is unpriced).
    pub fn cost_nanos(&self, deployment: &Deployment) -> f64 {
        let Some(pricing) = &deployment.pricing else {
            return 0.0;
        };
        let per_million = |money: &Option<switchyard_proto::v1::Money>| {
            money.as_ref().map_or(0.0, |money| money.nanos as f64) / 1e6
        };
        per_million(&pricing.input_per_million) * f64::from(self.prompt_tokens)
            + per_million(&pricing.output_per_million) * f64::from(self.output_tokens)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{ContentPart, Message, Money, Pricing};

    use super::*;

    #[test]
    fn a_chat_request_is_estimated_from_its_text_and_max_tokens() {
        let request = ChatRequest {
            messages: vec![Message {
                content: vec![ContentPart {
                    part: Some(Part::Text("a".repeat(400))),
                }],
                ..Message::default()
            }],
            max_tokens: Some(50),
            ..ChatRequest::default()
        };
        assert_eq!(
            Estimate::chat(&request),
            Estimate {
                prompt_tokens: 104,
                output_tokens: 50
            }
        );
        let unpriced = Deployment::default();
        assert_eq!(Estimate::chat(&request).cost_nanos(&unpriced), 0.0);
        let priced = Deployment {
            pricing: Some(Pricing {
                input_per_million: Some(Money {
                    nanos: 1_000_000_000,
                    currency: "USD".to_owned(),
                }),
                output_per_million: Some(Money {
                    nanos: 2_000_000_000,
                    currency: "USD".to_owned(),
                }),
                ..Pricing::default()
            }),
            ..Deployment::default()
        };
        // 104 × 1000 + 50 × 2000 nano-dollars.
        assert_eq!(Estimate::chat(&request).cost_nanos(&priced), 204_000.0);
    }
}
