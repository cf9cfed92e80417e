//! [`Estimate`]: a request's expected size before it is sent, for the
//! cost strategy, capacity, the context-window check and the cost ceiling.
//!
//! Two ways to count the prompt:
//! - [`Estimate::chat`], on every request: one token per four bytes of text
//!   plus four per message (role and framing), and an image as 85 (OpenAI's
//!   low-detail charge). Close for English text on today's tokenizers
//!   (text in other scripts takes more bytes and more tokens per character
//!   alike), O(1) per message part. Since no token is shorter than a byte,
//!   the real count is at most four times this one.
//! - [`Estimate::counted`], when a decision depends on it (a context window
//!   or cost ceiling the prompt may cross, see
//!   [`crate::constraints::Needs::may_cross`]): the text counted with
//!   OpenAI's `o200k_base` tokenizer ([`crate::tokens`]), plus OpenAI's
//!   documented framing: three tokens per message and its role (one more
//!   for a name), and three to prime the answer. Exact for OpenAI's current models; for
//!   other providers' models, whose tokenizers are not public, it stands as
//!   the estimate (Anthropic's and Google's count English within about
//!   10-20 % of it).
//!
//! Either way the provider's own count settles the real cost. Output is
//! the request's `max_tokens`, else [`DEFAULT_OUTPUT_TOKENS`].

use switchyard_proto::v1::{ChatRequest, Deployment, EmbedRequest, content_part::Part};

/// Output tokens expected of a request that sets no `max_tokens`.
pub const DEFAULT_OUTPUT_TOKENS: u32 = 256;
/// Bytes of text per estimated token.
const BYTES_PER_TOKEN: usize = 4;
/// Tokens of framing per message.
const TOKENS_PER_MESSAGE: u32 = 4;
/// Tokens per image.
const TOKENS_PER_IMAGE: u32 = 85;
/// OpenAI's framing of each message, counted exactly: three tokens, and
/// one for the role (every role's name is one token).
const COUNTED_PER_MESSAGE: u32 = 4;
/// OpenAI's framing of a message's `name`.
const COUNTED_PER_NAME: u32 = 1;
/// OpenAI's priming of the answer.
const COUNTED_REPLY: u32 = 3;

/// A request's expected size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
}

impl Estimate {
    /// Estimates a chat request from its size in bytes.
    pub fn chat(request: &ChatRequest) -> Self {
        let mut text_bytes = 0_usize;
        let framing = walk(request, TOKENS_PER_MESSAGE, 0, |text| {
            text_bytes += text.len()
        });
        let text_tokens = u32::try_from(text_bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u32::MAX);
        Self {
            prompt_tokens: framing.saturating_add(text_tokens),
            output_tokens: request.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS),
        }
    }

    /// Counts a chat request's prompt with OpenAI's tokenizer and framing.
    pub fn counted(request: &ChatRequest) -> Self {
        let mut text_tokens = 0_u32;
        let framing = walk(request, COUNTED_PER_MESSAGE, COUNTED_PER_NAME, |text| {
            text_tokens = text_tokens.saturating_add(crate::tokens::count(text));
        });
        Self {
            prompt_tokens: framing
                .saturating_add(COUNTED_REPLY)
                .saturating_add(text_tokens),
            output_tokens: request.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS),
        }
    }
}

/// Hands every text of `request` (message parts, tool calls, tool
/// definitions) to `text`, and returns the tokens of everything else:
/// `per_message` for each message, `per_name` for each named one, and
/// [`TOKENS_PER_IMAGE`] for each image.
fn walk(request: &ChatRequest, per_message: u32, per_name: u32, mut text: impl FnMut(&str)) -> u32 {
    let mut tokens = 0_u32;
    for message in &request.messages {
        tokens = tokens.saturating_add(per_message);
        if !message.name.is_empty() {
            tokens = tokens.saturating_add(per_name);
            text(&message.name);
        }
        for part in &message.content {
            match &part.part {
                Some(Part::Text(part)) => text(part),
                Some(Part::ImageUrl(_)) => tokens = tokens.saturating_add(TOKENS_PER_IMAGE),
                None => {}
            }
        }
        for call in &message.tool_calls {
            text(&call.name);
            text(&call.arguments);
        }
    }
    for tool in &request.tools {
        if let Some(function) = &tool.function {
            text(&function.name);
            text(&function.description);
            text(&function.parameters_json);
        }
    }
    tokens
}

impl Estimate {
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

    fn user_says(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![Message {
                content: vec![ContentPart {
                    part: Some(Part::Text(text.to_owned())),
                }],
                ..Message::default()
            }],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn a_counted_prompt_is_what_openai_reports() {
        // OpenAI reports 9 prompt tokens for one user message "hello world"
        // on gpt-4o: 3 of framing, 1 for the role, 2 of text, 3 of priming.
        assert_eq!(
            Estimate::counted(&user_says("hello world")).prompt_tokens,
            9
        );
        // Digits go in threes: 1,000 of them are 334 tokens, where the
        // quick estimate reads 250.
        let digits = user_says(&"1234567890".repeat(100));
        assert_eq!(Estimate::counted(&digits).prompt_tokens, 4 + 334 + 3);
        assert_eq!(Estimate::chat(&digits).prompt_tokens, 4 + 250);
    }

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
