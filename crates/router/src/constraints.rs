//! Hard constraints: what a deployment must be able to do for a request to
//! be sent there at all. A deployment that fails one is skipped without
//! being called, and no later step, retry or fallback brings it back.
//!
//! A deployment that declares no `capabilities` is assumed able (the
//! provider will say otherwise); one that declares them is held to them. A
//! context window of 0 is unknown and never rules a deployment out.

use switchyard_proto::v1::{ChatRequest, Deployment, ResponseFormatType, content_part::Part};

use switchyard_proto::v1::Usage;

use crate::{
    estimate::Estimate,
    pricing::{scaled_cost, scaled_nanos},
};

/// What a request needs of a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Its expected size.
    pub estimate: Estimate,
    /// The output tokens the request asks room for (`max_tokens`, else 0).
    pub reserved_output: u32,
    /// Whether it offers tools.
    pub tools: bool,
    /// Whether it sends images.
    pub images: bool,
    /// Whether it asks for a JSON-schema response.
    pub json_schema: bool,
    /// Whether it asks for token log probabilities.
    pub logprobs: bool,
    /// Whether it asks for several choices (`n` > 1).
    pub multiple_choices: bool,
}

impl Needs {
    /// What a chat request needs.
    pub fn chat(request: &ChatRequest) -> Self {
        Self {
            estimate: Estimate::chat(request),
            reserved_output: request.max_tokens.unwrap_or(0),
            tools: !request.tools.is_empty(),
            images: request.messages.iter().any(|message| {
                message
                    .content
                    .iter()
                    .any(|part| matches!(part.part, Some(Part::ImageUrl(_))))
            }),
            json_schema: request
                .response_format
                .as_ref()
                .is_some_and(|format| format.r#type == ResponseFormatType::JsonSchema as i32),
            logprobs: asks_for_logprobs(&request.extra_json),
            multiple_choices: request.n.is_some_and(|n| n > 1),
        }
    }

    /// What an embeddings request needs: room for its input.
    pub fn embed(request: &switchyard_proto::v1::EmbedRequest) -> Self {
        Self {
            estimate: Estimate::embed(request),
            ..Self::default()
        }
    }

    /// Whether the prompt may cross `deployment`'s context window or the
    /// route's cost `ceiling` there, for all the quick estimate can tell
    /// (the real count is at most four times it): then the decision needs
    /// the prompt counted ([`Self::counted`]).
    pub fn may_cross(&self, deployment: &Deployment, ceiling: Option<i64>) -> bool {
        let most = Estimate {
            prompt_tokens: self.estimate.prompt_tokens.saturating_mul(4),
            ..self.estimate
        };
        let window = deployment.context_window;
        (window > 0
            && u64::from(most.prompt_tokens) + u64::from(self.reserved_output) > u64::from(window))
            || over_cost_ceiling(ceiling, &most, deployment)
    }

    /// The same needs with the prompt of `request` counted exactly.
    pub fn counted(&self, request: &ChatRequest) -> Self {
        Self {
            estimate: Estimate::counted(request),
            ..*self
        }
    }

    /// Why `deployment` cannot serve the request; `None` when it can.
    pub fn unmet_by(&self, deployment: &Deployment) -> Option<&'static str> {
        if let Some(capabilities) = &deployment.capabilities {
            if self.tools && !capabilities.tools {
                return Some("no_tools");
            }
            if self.images && !capabilities.vision {
                return Some("no_vision");
            }
            if self.json_schema && !capabilities.json_schema {
                return Some("no_json_schema");
            }
            if self.logprobs && !capabilities.logprobs {
                return Some("no_logprobs");
            }
            if self.multiple_choices && !capabilities.multiple_choices {
                return Some("no_multiple_choices");
            }
        }
        let window = deployment.context_window;
        if window > 0
            && u64::from(self.estimate.prompt_tokens) + u64::from(self.reserved_output)
                > u64::from(window)
        {
            return Some("context_window");
        }
        None
    }
}

/// Whether a request's passed-through fields (`extra_json`) ask for log
/// probabilities: `logprobs: true`, or any `top_logprobs`. Most requests
/// never mention them and are not parsed.
fn asks_for_logprobs(extra_json: &str) -> bool {
    if !extra_json.contains("logprobs") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Asked {
        #[serde(default)]
        logprobs: Option<bool>,
        #[serde(default)]
        top_logprobs: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Asked>(extra_json)
        .is_ok_and(|asked| asked.logprobs == Some(true) || asked.top_logprobs.is_some())
}

/// Whether a request of `estimate` is expected to cost more at
/// `deployment` than the route's ceiling (nano-units; `None` for none): its
/// estimated prompt and output at the deployment's prices, long-context
/// tier included. An unpriced deployment is never over it.
pub fn over_cost_ceiling(
    ceiling: Option<i64>,
    estimate: &Estimate,
    deployment: &Deployment,
) -> bool {
    let (Some(ceiling), Some(pricing)) = (ceiling, deployment.pricing.as_ref()) else {
        return false;
    };
    let usage = Usage {
        prompt_tokens: estimate.prompt_tokens,
        completion_tokens: estimate.output_tokens,
        ..Usage::default()
    };
    scaled_cost(&usage, pricing).is_some_and(|(expected, _)| expected > scaled_nanos(ceiling))
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{Capabilities, ContentPart, Message, Tool};

    use super::*;

    #[test]
    fn declared_capabilities_and_the_context_window_are_held_to() {
        let request = ChatRequest {
            messages: vec![Message {
                content: vec![ContentPart {
                    part: Some(Part::Text("x".repeat(4000))),
                }],
                ..Message::default()
            }],
            tools: vec![Tool::default()],
            max_tokens: Some(1000),
            ..ChatRequest::default()
        };
        let needs = Needs::chat(&request);
        assert!(needs.tools && !needs.images && !needs.json_schema);
        let undeclared = Deployment::default();
        assert_eq!(needs.unmet_by(&undeclared), None);
        let no_tools = Deployment {
            capabilities: Some(Capabilities::default()),
            ..Deployment::default()
        };
        assert_eq!(needs.unmet_by(&no_tools), Some("no_tools"));
        // 1004 prompt tokens and 1000 reserved do not fit 2000.
        let small = Deployment {
            context_window: 2000,
            ..Deployment::default()
        };
        assert_eq!(needs.unmet_by(&small), Some("context_window"));
        let large = Deployment {
            context_window: 2004,
            ..Deployment::default()
        };
        assert_eq!(needs.unmet_by(&large), None);
    }

    #[test]
    fn log_probabilities_and_several_choices_need_a_deployment_that_can_express_them() {
        let asks = |extra: &str, n| {
            Needs::chat(&ChatRequest {
                extra_json: extra.to_owned(),
                n,
                ..ChatRequest::default()
            })
        };
        assert!(asks(r#"{"logprobs":true}"#, None).logprobs);
        assert!(asks(r#"{"top_logprobs":2,"logprobs":true}"#, None).logprobs);
        assert!(!asks(r#"{"logprobs":false,"top_logprobs":null}"#, None).logprobs);
        assert!(!asks(r#"{"store":true}"#, None).logprobs);
        assert!(!asks("", Some(1)).multiple_choices);
        assert!(asks("", Some(3)).multiple_choices);

        let cannot = Deployment {
            capabilities: Some(Capabilities {
                tools: true,
                vision: true,
                json_schema: true,
                ..Capabilities::default()
            }),
            ..Deployment::default()
        };
        let both = Needs {
            logprobs: true,
            multiple_choices: true,
            ..Needs::default()
        };
        assert_eq!(both.unmet_by(&cannot), Some("no_logprobs"));
        let choices = Needs {
            logprobs: false,
            ..both
        };
        assert_eq!(choices.unmet_by(&cannot), Some("no_multiple_choices"));
        assert_eq!(both.unmet_by(&Deployment::default()), None);
    }

    #[test]
    fn a_prompt_is_counted_only_when_it_may_cross_a_window_or_the_ceiling() {
        let needs = |prompt_tokens| Needs {
            estimate: Estimate {
                prompt_tokens,
                output_tokens: 100,
            },
            reserved_output: 100,
            ..Needs::default()
        };
        let window = |context_window| Deployment {
            context_window,
            ..Deployment::default()
        };
        assert!(!needs(1_000).may_cross(&window(128_000), None));
        assert!(!needs(1_000).may_cross(&window(0), None), "unknown window");
        // Up to 4,000 real tokens and 100 out do not surely fit 4,000.
        assert!(needs(1_000).may_cross(&window(4_000), None));
        assert!(!needs(1_000).may_cross(&window(4_100), None));
        // A ceiling the prompt may cross at four times the estimate.
        let priced = Deployment {
            pricing: Some(switchyard_proto::v1::Pricing {
                input_per_million: Some(switchyard_proto::v1::Money {
                    nanos: 1_000_000_000,
                    currency: "USD".to_owned(),
                }),
                output_per_million: Some(switchyard_proto::v1::Money::default()),
                ..switchyard_proto::v1::Pricing::default()
            }),
            ..Deployment::default()
        };
        // $1 per million: 4,000 tokens cost 4,000,000 nano-dollars.
        assert!(needs(1_000).may_cross(&priced, Some(3_999_999)));
        assert!(!needs(1_000).may_cross(&priced, Some(4_000_000)));
    }

    #[test]
    fn the_cost_ceiling_holds_the_expected_cost_at_each_deployments_own_prices() {
        let money = |nanos| {
            Some(switchyard_proto::v1::Money {
                nanos,
                currency: "USD".to_owned(),
            })
        };
        // $1 in and $2 out per million; $10 and $20 above 1,000 prompt tokens.
        let priced = Deployment {
            pricing: Some(switchyard_proto::v1::Pricing {
                input_per_million: money(1_000_000_000),
                output_per_million: money(2_000_000_000),
                long_context: Some(switchyard_proto::v1::LongContextPricing {
                    above_prompt_tokens: 1_000,
                    input_per_million: money(10_000_000_000),
                    output_per_million: money(20_000_000_000),
                }),
                ..switchyard_proto::v1::Pricing::default()
            }),
            ..Deployment::default()
        };
        let small = Estimate {
            prompt_tokens: 1_000,
            output_tokens: 500,
        };
        // 1,000 × 1,000 + 500 × 2,000 = 2,000,000 nano-dollars exactly.
        assert!(!over_cost_ceiling(Some(2_000_000), &small, &priced));
        assert!(over_cost_ceiling(Some(1_999_999), &small, &priced));
        // One more prompt token crosses into the long-context tier.
        let long = Estimate {
            prompt_tokens: 1_001,
            ..small
        };
        assert!(over_cost_ceiling(Some(2_000_000), &long, &priced));
        assert!(!over_cost_ceiling(Some(20_010_000), &long, &priced));
        assert!(!over_cost_ceiling(None, &long, &priced));
        assert!(!over_cost_ceiling(Some(1), &long, &Deployment::default()));
    }
}
