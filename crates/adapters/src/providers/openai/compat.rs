//! The OpenAI-compatible family: servers that speak Chat Completions with
//! small differences, each a [`Flavor`] of the one OpenAI provider.
//!
//! | kind        | default `base_url`                                   | quirks |
//! |-------------|------------------------------------------------------|--------|
//! | `openai`    | `https://api.openai.com/v1`                          | none (the reference) |
//! | `azure`     | none (the resource endpoint, `https://{resource}.openai.azure.com`) | deployment URL + `api-version` query, `api-key` header |
//! | `deepseek`  | `https://api.deepseek.com`                           | `max_tokens` only; cache hits in `usage.prompt_cache_hit_tokens` |
//! | `qwen`      | `https://dashscope-intl.aliyuncs.com/compatible-mode/v1` | `max_tokens` only |
//! | `mistral`   | `https://api.mistral.ai/v1`                          | `random_seed`, tool choice `any`, 9-character tool call ids, no `stream_options`, no `user`/`logprobs`/... |
//! | `groq`      | `https://api.groq.com/openai/v1`                     | `n` must be 1; stream usage in `x_groq.usage` |
//! | `together`  | `https://api.together.xyz/v1`                        | `max_tokens` only |
//! | `fireworks` | `https://api.fireworks.ai/inference/v1`              | `max_tokens` only; usage on the last choice chunk |
//! | `vllm`      | `http://127.0.0.1:8000/v1`                           | keyless unless a key is configured |
//! | `ollama`    | `http://127.0.0.1:11434/v1`                          | keyless; `max_tokens` only |
//! | `llamacpp`  | `http://127.0.0.1:8080/v1`                           | keyless; `max_tokens` only |
//!
//! Every flavor other than `openai` and `azure` receives the `developer`
//! role as `system` (they do not know it). A flavor without a key sends no
//! `Authorization` header at all.
//!
//! Options (`Provider.options`):
//! - `api_version` (azure): the `api-version` query parameter, default
//!   [`AZURE_API_VERSION`]; `v1` selects Azure's versionless
//!   `{base_url}/openai/v1/chat/completions` instead of deployment URLs.
//! - `deployment` (azure): the deployment name, default the upstream model.
//! - `stream_usage` (every flavor): `false` stops sending
//!   `stream_options.include_usage` for servers that reject it; default
//!   `true` (`false` and not configurable for mistral, which rejects it and
//!   reports usage on its last chunk anyway).
//!
//! Answers are read tolerantly for every flavor, since the extra fields do
//! not collide: DeepSeek's `prompt_cache_hit_tokens` counts as cached
//! prompt tokens, Groq's `x_groq.usage` as the stream's usage, Azure's
//! `prompt_filter_results` chunks (no choices) are skipped, flat error
//! bodies (`{"object":"error","message":...}`, Mistral and vLLM) are
//! understood, and unknown finish reasons (`eos`, `eos_token`, ...) end the
//! choice as `stop`. A server that reports no usage leaves usage absent;
//! no numbers are invented. DeepSeek's `reasoning_content` has no place in a
//! canonical chunk: it is dropped from the visible answer, and its tokens
//! still count through `completion_tokens_details.reasoning_tokens`.

use std::{borrow::Cow, collections::BTreeMap};

use reqwest::{Url, header::HeaderValue};
use serde_json::value::RawValue;
use switchyard_common::{Secret, ServiceError};
use switchyard_proto::v1::ChatRequest;

use crate::{
    http::{self, HttpClient},
    provider::Attempt,
};

/// The Azure OpenAI data-plane API version used when `api_version` is not set
/// (the latest generally available one).
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// One OpenAI-compatible server family (`Provider.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI itself.
    OpenAi,
    /// Azure OpenAI.
    Azure,
    /// DeepSeek.
    DeepSeek,
    /// Alibaba Qwen through DashScope's compatible mode.
    Qwen,
    /// Mistral La Plateforme.
    Mistral,
    /// Groq.
    Groq,
    /// Together AI.
    Together,
    /// Fireworks AI.
    Fireworks,
    /// A self-hosted vLLM server.
    Vllm,
    /// A self-hosted Ollama server.
    Ollama,
    /// A self-hosted llama.cpp server.
    LlamaCpp,
}

/// Every flavor, for parsing.
const FLAVORS: [Flavor; 11] = [
    Flavor::OpenAi,
    Flavor::Azure,
    Flavor::DeepSeek,
    Flavor::Qwen,
    Flavor::Mistral,
    Flavor::Groq,
    Flavor::Together,
    Flavor::Fireworks,
    Flavor::Vllm,
    Flavor::Ollama,
    Flavor::LlamaCpp,
];

/// OpenAI request fields (passed through `extra_json`) Mistral has no
/// equivalent for.
const MISTRAL_UNSUPPORTED_EXTRA: [&str; 8] = [
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "service_tier",
    "store",
    "modalities",
    "audio",
    "web_search_options",
];

impl Flavor {
    /// Parses a `Provider.kind` of the family.
    pub fn from_kind(kind: &str) -> Option<Self> {
        FLAVORS.into_iter().find(|flavor| flavor.kind() == kind)
    }

    /// Returns the `Provider.kind` naming this flavor.
    pub fn kind(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Azure => "azure",
            Self::DeepSeek => "deepseek",
            Self::Qwen => "qwen",
            Self::Mistral => "mistral",
            Self::Groq => "groq",
            Self::Together => "together",
            Self::Fireworks => "fireworks",
            Self::Vllm => "vllm",
            Self::Ollama => "ollama",
            Self::LlamaCpp => "llamacpp",
        }
    }

    /// Returns the base URL used when the target sets none (Azure has
    /// none: every resource has its own endpoint).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("https://api.openai.com/v1"),
            Self::Azure => None,
            Self::DeepSeek => Some("https://api.deepseek.com"),
            Self::Qwen => Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
            Self::Mistral => Some("https://api.mistral.ai/v1"),
            Self::Groq => Some("https://api.groq.com/openai/v1"),
            Self::Together => Some("https://api.together.xyz/v1"),
            Self::Fireworks => Some("https://api.fireworks.ai/inference/v1"),
            Self::Vllm => Some("http://127.0.0.1:8000/v1"),
            Self::Ollama => Some("http://127.0.0.1:11434/v1"),
            Self::LlamaCpp => Some("http://127.0.0.1:8080/v1"),
        }
    }

    /// Returns the URL of an operation (`chat/completions`, `embeddings`)
    /// for `attempt`: below the base URL, or Azure's deployment URL.
    pub fn url<R>(self, attempt: &Attempt<R>, operation: &str) -> Result<String, ServiceError> {
        let base_url = match attempt.base_url.trim() {
            "" => self.default_base_url().ok_or_else(|| {
                ServiceError::internal(format!(
                    "provider `{}` of kind `{}` needs a base_url",
                    attempt.provider,
                    self.kind()
                ))
            })?,
            configured => configured,
        };
        if self != Self::Azure {
            return Ok(http::endpoint(base_url, operation));
        }
        let api_version = option(attempt, "api_version").unwrap_or(AZURE_API_VERSION);
        let deployment = option(attempt, "deployment")
            .or_else(|| Some(attempt.upstream_model.as_str()).filter(|name| !name.is_empty()))
            .ok_or_else(|| {
                ServiceError::internal(format!(
                    "provider `{}` names no Azure deployment",
                    attempt.provider
                ))
            })?;
        let mut url = Url::parse(base_url).map_err(|_| {
            ServiceError::internal(format!(
                "the base_url of provider `{}` is not a URL",
                attempt.provider
            ))
        })?;
        {
            let mut segments = url.path_segments_mut().map_err(|_| {
                ServiceError::internal(format!(
                    "the base_url of provider `{}` cannot have a path",
                    attempt.provider
                ))
            })?;
            segments.pop_if_empty();
            if api_version == "v1" {
                segments.extend(["openai", "v1"]);
            } else {
                segments.extend(["openai", "deployments", deployment]);
            }
            segments.extend(operation.split('/'));
        }
        if api_version != "v1" {
            url.query_pairs_mut()
                .append_pair("api-version", api_version);
        }
        Ok(url.into())
    }

    /// Starts the JSON `POST`, with the flavor's credentials header when a
    /// key is given (a bearer token; Azure's `api-key`).
    pub fn post_json(
        self,
        client: &HttpClient,
        url: &str,
        api_key: Option<&Secret>,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        if self != Self::Azure {
            return client.post_json(url, api_key, body);
        }
        let request = client.post_json(url, None, body);
        match api_key.and_then(|key| HeaderValue::from_str(key.expose()).ok()) {
            Some(mut value) => {
                value.set_sensitive(true);
                request.header("api-key", value)
            }
            None => request,
        }
    }

    /// Fails with `invalid_request` when the request uses a feature this
    /// flavor cannot express, naming the feature.
    pub fn check(self, request: &ChatRequest) -> Result<(), ServiceError> {
        match self {
            Self::Groq if request.n.is_some_and(|n| n != 1) => Err(unsupported(self, "n", "n")),
            Self::Mistral => {
                if !request.user.is_empty() {
                    return Err(unsupported(self, "user", "user"));
                }
                if request.extra_json.trim().is_empty() {
                    return Ok(());
                }
                let extra: BTreeMap<Cow<'_, str>, &RawValue> =
                    serde_json::from_str(&request.extra_json).map_err(|_| {
                        ServiceError::invalid_request("extra request fields are not a JSON object")
                    })?;
                match MISTRAL_UNSUPPORTED_EXTRA
                    .into_iter()
                    .find(|name| extra.contains_key(*name))
                {
                    Some(name) => Err(unsupported(self, name, name)),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Returns how this flavor spells the request body, with the attempt's
    /// options applied.
    pub fn dialect<R>(self, attempt: &Attempt<R>) -> Result<Dialect, ServiceError> {
        let mut dialect = Dialect::default();
        if !matches!(self, Self::OpenAi | Self::Azure) {
            dialect.developer_role = "system";
        }
        if matches!(
            self,
            Self::DeepSeek
                | Self::Qwen
                | Self::Mistral
                | Self::Together
                | Self::Fireworks
                | Self::Ollama
                | Self::LlamaCpp
        ) {
            dialect.max_tokens_key = Some("max_tokens");
        }
        match option(attempt, "stream_usage") {
            None | Some("true") => {}
            Some("false") => dialect.stream_usage = false,
            Some(_) => {
                return Err(ServiceError::internal(format!(
                    "option `stream_usage` of provider `{}` must be `true` or `false`",
                    attempt.provider
                )));
            }
        }
        if self == Self::Mistral {
            dialect.seed_key = "random_seed";
            dialect.required_tool_choice = "any";
            dialect.stream_usage = false;
            dialect.tool_call_ids = ToolCallIds::NineAlphanumeric;
        }
        Ok(dialect)
    }
}

/// How a server spells the parts of a Chat Completions body that differ
/// between compatible servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// Name of the seed field (`seed`, Mistral `random_seed`).
    pub seed_key: &'static str,
    /// Name of the token limit field; `None` keeps the client's spelling.
    pub max_tokens_key: Option<&'static str>,
    /// The tool choice that forces some tool call (`required`, Mistral `any`).
    pub required_tool_choice: &'static str,
    /// The role `developer` messages are sent as.
    pub developer_role: &'static str,
    /// Whether a stream asks for usage (`stream_options.include_usage`).
    pub stream_usage: bool,
    /// How tool call ids in the conversation are sent.
    pub tool_call_ids: ToolCallIds,
}

impl Default for Dialect {
    /// OpenAI's own spelling.
    fn default() -> Self {
        Self {
            seed_key: "seed",
            max_tokens_key: None,
            required_tool_choice: "required",
            developer_role: "developer",
            stream_usage: true,
            tool_call_ids: ToolCallIds::AsIs,
        }
    }
}

/// How tool call ids of a conversation are sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallIds {
    /// Unchanged.
    AsIs,
    /// Exactly nine ASCII letters or digits (Mistral rejects anything else).
    /// Conforming ids, such as those Mistral itself issues, pass unchanged,
    /// so ids in answers need no mapping back; any other id becomes a hash of
    /// itself, the same in the assistant's call and in the tool's answer.
    NineAlphanumeric,
}

impl ToolCallIds {
    /// Returns the id to send for `id`.
    pub fn apply(self, id: &str) -> Cow<'_, str> {
        match self {
            Self::AsIs => Cow::Borrowed(id),
            Self::NineAlphanumeric
                if id.is_empty()
                    || (id.len() == 9 && id.bytes().all(|byte| byte.is_ascii_alphanumeric())) =>
            {
                Cow::Borrowed(id)
            }
            Self::NineAlphanumeric => Cow::Owned(nine_alphanumeric(id)),
        }
    }
}

/// Hashes `id` (64-bit FNV-1a) into nine base-62 digits.
fn nine_alphanumeric(id: &str) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let digit = DIGITS[usize::try_from(hash % 62).unwrap_or(0)];
            hash /= 62;
            char::from(digit)
        })
        .collect()
}

fn option<'a, R>(attempt: &'a Attempt<R>, name: &str) -> Option<&'a str> {
    attempt
        .options
        .get(name)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
}

fn unsupported(flavor: Flavor, feature: &str, param: &str) -> ServiceError {
    ServiceError::invalid_request(format!(
        "`{feature}` is not supported by provider kind `{}`",
        flavor.kind()
    ))
    .with_param(param)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use switchyard_common::ErrorClass;
    use tokio::time::Instant;

    use super::*;
    use crate::http::AttemptLimits;

    fn attempt(base_url: &str, options: &[(&str, &str)]) -> Attempt {
        Attempt {
            provider: "p".to_owned(),
            base_url: base_url.to_owned(),
            upstream_model: "gpt-4o".to_owned(),
            api_key: None,
            options: options
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            secrets: BTreeMap::new(),
            limits: AttemptLimits::new(Instant::now(), std::time::Duration::from_secs(1)),
            trace: None,
            request: ChatRequest::default(),
            http: None,
        }
    }

    #[test]
    fn kinds_round_trip_and_unknown_kinds_are_not_flavors() {
        for flavor in FLAVORS {
            assert_eq!(Flavor::from_kind(flavor.kind()), Some(flavor));
        }
        assert_eq!(Flavor::from_kind("anthropic"), None);
    }

    #[test]
    fn empty_base_urls_take_the_flavor_default() {
        let empty = attempt("", &[]);
        assert_eq!(
            Flavor::OpenAi
                .url(&empty, "chat/completions")
                .expect("default"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            Flavor::DeepSeek
                .url(&empty, "chat/completions")
                .expect("default"),
            "https://api.deepseek.com/chat/completions"
        );
        assert_eq!(
            Flavor::Ollama
                .url(&empty, "chat/completions")
                .expect("default"),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        let error = Flavor::Azure
            .url(&empty, "chat/completions")
            .expect_err("azure has no default");
        assert_eq!(error.class, ErrorClass::Internal);
    }

    #[test]
    fn azure_urls_name_the_deployment_and_version() {
        let plain = attempt("https://r.openai.azure.com/", &[]);
        assert_eq!(
            Flavor::Azure.url(&plain, "chat/completions").expect("url"),
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        let configured = attempt(
            "https://r.openai.azure.com",
            &[
                ("deployment", "prod chat"),
                ("api_version", "2025-01-01-preview"),
            ],
        );
        assert_eq!(
            Flavor::Azure
                .url(&configured, "chat/completions")
                .expect("url"),
            "https://r.openai.azure.com/openai/deployments/prod%20chat/chat/completions?api-version=2025-01-01-preview"
        );
        let v1 = attempt("https://r.openai.azure.com", &[("api_version", "v1")]);
        assert_eq!(
            Flavor::Azure.url(&v1, "chat/completions").expect("url"),
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
    }

    #[test]
    fn dialects_follow_the_flavor_and_options() {
        let plain = attempt("", &[]);
        assert_eq!(
            Flavor::OpenAi.dialect(&plain).expect("dialect"),
            Dialect::default()
        );
        let mistral = Flavor::Mistral.dialect(&plain).expect("dialect");
        assert_eq!(
            (
                mistral.seed_key,
                mistral.required_tool_choice,
                mistral.stream_usage
            ),
            ("random_seed", "any", false)
        );
        let quiet = attempt("", &[("stream_usage", "false")]);
        assert!(
            !Flavor::Ollama
                .dialect(&quiet)
                .expect("dialect")
                .stream_usage
        );
        let bad = attempt("", &[("stream_usage", "no")]);
        assert!(Flavor::Vllm.dialect(&bad).is_err());
    }

    #[test]
    fn nine_character_ids_pass_and_others_hash_deterministically() {
        let ids = ToolCallIds::NineAlphanumeric;
        assert_eq!(ids.apply("D681PevKs"), "D681PevKs");
        let mapped = ids.apply("call_abc123");
        assert_eq!(mapped.len(), 9);
        assert!(mapped.bytes().all(|byte| byte.is_ascii_alphanumeric()));
        assert_eq!(mapped, ids.apply("call_abc123"));
        assert_ne!(mapped, ids.apply("call_abc124"));
        assert_eq!(ToolCallIds::AsIs.apply("call_abc123"), "call_abc123");
    }

    #[test]
    fn unsupported_features_are_named() {
        let groq = ChatRequest {
            n: Some(2),
            ..ChatRequest::default()
        };
        let error = Flavor::Groq.check(&groq).expect_err("n > 1");
        assert_eq!(
            (error.class, error.param.as_deref()),
            (ErrorClass::InvalidRequest, Some("n"))
        );
        assert!(Flavor::OpenAi.check(&groq).is_ok());
        let mistral = ChatRequest {
            extra_json: r#"{"safe_prompt":true,"logprobs":true}"#.to_owned(),
            ..ChatRequest::default()
        };
        let error = Flavor::Mistral.check(&mistral).expect_err("logprobs");
        assert!(error.message.contains("`logprobs`"), "{}", error.message);
    }
}
