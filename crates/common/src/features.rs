//! Request features not every provider's wire format can express, and
//! which provider kinds cannot.
//!
//! The adapters refuse such a request before calling the provider (a 400
//! naming the field); the control plane resolves this table into each
//! deployment's capabilities, so the router never plans a request onto a
//! deployment that would refuse it. The adapters' tests hold both to the
//! same answer.

/// A request feature some provider kinds cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Token log probabilities (OpenAI `logprobs`, `top_logprobs`).
    Logprobs,
    /// Several choices in one answer (OpenAI `n` greater than 1).
    MultipleChoices,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 2] = [Feature::Logprobs, Feature::MultipleChoices];

    /// The request parameter that asks for it.
    pub fn param(self) -> &'static str {
        match self {
            Feature::Logprobs => "logprobs",
            Feature::MultipleChoices => "n",
        }
    }
}

/// Whether a provider of `kind` (`providers[].kind`) can express `feature`.
/// Unknown kinds are assumed able: the provider will say otherwise.
pub fn expressed_by(kind: &str, feature: Feature) -> bool {
    !matches!(
        (kind, feature),
        ("anthropic" | "bedrock", _)
            | ("gemini" | "vertex" | "mistral", Feature::Logprobs)
            | ("groq", Feature::MultipleChoices)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_expresses_everything_and_anthropic_neither() {
        for feature in Feature::ALL {
            assert!(expressed_by("openai", feature));
            assert!(!expressed_by("anthropic", feature));
        }
        assert!(expressed_by("gemini", Feature::MultipleChoices));
        assert!(!expressed_by("gemini", Feature::Logprobs));
    }
}
