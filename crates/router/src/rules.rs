//! Routing rules: request features that send a request to another route
//! (reasoning to one model, code to another, classification to a cheap
//! one). A route's rules are tried in order before its strategy; the first
//! whose conditions all hold wins, and the decision record names it.

use std::collections::BTreeMap;

use regex::Regex;
use switchyard_proto::v1::{ChatRequest, ResponseFormatType, Role, RouteRule, content_part::Part};

use crate::estimate::Estimate;

/// One rule, its regular expressions compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, for the decision record.
    pub name: String,
    /// The route matching requests go to.
    pub route: String,
    tools: Option<bool>,
    response_format: Option<ResponseFormatType>,
    min_prompt_tokens: u32,
    max_prompt_tokens: Option<u32>,
    metadata: BTreeMap<String, String>,
    system_matches: Option<Regex>,
    last_user_matches: Option<Regex>,
    tier: Option<String>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.route == other.route
    }
}

impl Rule {
    /// Compiles a published rule; `None` (logged) when a pattern does not
    /// compile, which the control plane's validation prevents.
    pub fn compile(rule: RouteRule) -> Option<Self> {
        let when = rule.when.unwrap_or_default();
        let pattern = |text: &str| -> Result<Option<Regex>, regex::Error> {
            (!text.is_empty()).then(|| Regex::new(text)).transpose()
        };
        let (system_matches, last_user_matches) = match (
            pattern(&when.system_matches),
            pattern(&when.last_user_matches),
        ) {
            (Ok(system), Ok(last_user)) => (system, last_user),
            _ => {
                tracing::warn!(rule = %rule.name, "routing rule with an invalid pattern; ignored");
                return None;
            }
        };
        let response_format = match when.response_format.as_str() {
            "text" => Some(ResponseFormatType::Text),
            "json_object" => Some(ResponseFormatType::JsonObject),
            "json_schema" => Some(ResponseFormatType::JsonSchema),
            _ => None,
        };
        Some(Self {
            name: rule.name,
            route: rule.route,
            tools: when.tools,
            response_format,
            min_prompt_tokens: when.min_prompt_tokens,
            max_prompt_tokens: (when.max_prompt_tokens > 0).then_some(when.max_prompt_tokens),
            metadata: when.metadata,
            system_matches,
            last_user_matches,
            tier: (!when.tier.is_empty()).then_some(when.tier),
        })
    }

    /// Whether `request` (estimated as `estimate`, from a key of `tier`)
    /// shows everything the rule asks for.
    pub fn matches(&self, request: &ChatRequest, estimate: &Estimate, tier: &str) -> bool {
        if self.tier.as_deref().is_some_and(|wanted| wanted != tier) {
            return false;
        }
        if self
            .tools
            .is_some_and(|tools| tools == request.tools.is_empty())
        {
            return false;
        }
        if let Some(format) = self.response_format {
            let asked = request
                .response_format
                .as_ref()
                .map_or(ResponseFormatType::Text as i32, |format| format.r#type);
            if asked != format as i32 {
                return false;
            }
        }
        if estimate.prompt_tokens < self.min_prompt_tokens
            || self
                .max_prompt_tokens
                .is_some_and(|most| estimate.prompt_tokens > most)
        {
            return false;
        }
        if !self
            .metadata
            .iter()
            .all(|(key, value)| request.metadata.get(key) == Some(value))
        {
            return false;
        }
        let matches = |pattern: &Option<Regex>, role: &[Role], last: bool| {
            let Some(pattern) = pattern else {
                return true;
            };
            let mut messages = request
                .messages
                .iter()
                .filter(|message| role.iter().any(|role| message.role == *role as i32));
            let text_of = |message: &switchyard_proto::v1::Message| {
                message
                    .content
                    .iter()
                    .filter_map(|part| match &part.part {
                        Some(Part::Text(text)) => Some(text.as_str()),
                        _ => None,
                    })
                    .any(|text| pattern.is_match(text))
            };
            if last {
                messages.next_back().is_some_and(text_of)
            } else {
                messages.any(text_of)
            }
        };
        matches(
            &self.system_matches,
            &[Role::System, Role::Developer],
            false,
        ) && matches(&self.last_user_matches, &[Role::User], true)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_proto::v1::{ContentPart, Message, RuleCondition, Tool};

    use super::*;

    fn message(role: Role, text: &str) -> Message {
        Message {
            role: role as i32,
            content: vec![ContentPart {
                part: Some(Part::Text(text.to_owned())),
            }],
            ..Message::default()
        }
    }

    fn rule(when: RuleCondition) -> Rule {
        Rule::compile(RouteRule {
            name: "r".to_owned(),
            route: "target".to_owned(),
            when: Some(when),
        })
        .expect("compiles")
    }

    #[test]
    fn conditions_must_all_hold() {
        let code = rule(RuleCondition {
            last_user_matches: r"(?i)\bfn\b|def |```".to_owned(),
            ..RuleCondition::default()
        });
        let reasoning = rule(RuleCondition {
            system_matches: "(?i)step by step".to_owned(),
            tools: Some(false),
            ..RuleCondition::default()
        });
        let tagged = rule(RuleCondition {
            metadata: [("task".to_owned(), "classify".to_owned())].into(),
            max_prompt_tokens: 100,
            ..RuleCondition::default()
        });
        let request = |system: &str, user: &str| ChatRequest {
            messages: vec![
                message(Role::System, system),
                message(Role::User, "earlier: def old()"),
                message(Role::User, user),
            ],
            ..ChatRequest::default()
        };
        let estimate = Estimate::default();
        assert!(code.matches(&request("", "fix this: fn main() {}"), &estimate, ""));
        assert!(
            !code.matches(
                &request("", "what is the capital of France?"),
                &estimate,
                ""
            ),
            "only the last user message counts"
        );
        assert!(reasoning.matches(&request("Think Step By Step.", "hi"), &estimate, ""));
        let with_tools = ChatRequest {
            tools: vec![Tool::default()],
            ..request("think step by step", "hi")
        };
        assert!(!reasoning.matches(&with_tools, &estimate, ""));
        let classify = ChatRequest {
            metadata: [("task".to_owned(), "classify".to_owned())].into(),
            ..request("", "spam or not?")
        };
        assert!(tagged.matches(&classify, &estimate, ""));
        let long = Estimate {
            prompt_tokens: 101,
            output_tokens: 0,
        };
        assert!(!tagged.matches(&classify, &long, ""));
        assert!(!tagged.matches(&request("", "spam?"), &estimate, ""));
        let free = rule(RuleCondition {
            tier: "free".to_owned(),
            ..RuleCondition::default()
        });
        assert!(free.matches(&request("", "hi"), &estimate, "free"));
        assert!(!free.matches(&request("", "hi"), &estimate, "premium"));
        assert!(!free.matches(&request("", "hi"), &estimate, ""));
    }
}
